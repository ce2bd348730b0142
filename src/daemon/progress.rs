//! The daemon's watch on the files it reads: a file that takes long says
//! how far it is. Applying a seat plan of 100 MB takes about 16 s, a sales
//! file of 10M lines about two minutes, and the store's write lock is held
//! all that time; without a word, the log of that time reads like a daemon
//! that hangs.
//!
//! [`Progress`] is given each pass over a payload (`verify`, then `parse`,
//! which is also the apply: records are applied as they are read). Once a
//! pass has run for [`reading::SOON`] (1 s), and then as often, it writes
//! the file, the pass, how much of it was read and for how long for `stxd
//! status` and the commands waiting for the store ([`crate::reading`]),
//! removed when the pass ends; once it has run for [`reading::EVERY`]
//! (10 s), and then as often, it logs the same. A file read faster logs
//! and writes nothing more than it did.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::reading;
use crate::transport::progress;

/// One line of progress: a pass over `file` still running.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Line {
    pub(super) file: String,
    pub(super) pass: &'static str,
    pub(super) read: u64,
    pub(super) bytes: u64,
    pub(super) lines: u64,
    pub(super) seconds: u64,
}

impl Line {
    /// Whole percent of the file read (100 for an empty file).
    pub(super) fn percent(&self) -> u64 {
        match self.bytes {
            0 => 100,
            total => self.read.saturating_mul(100) / total,
        }
    }
}

/// The pass being read: its line as far as it went, and when it began,
/// last spoke and was last logged.
struct Pass {
    line: Line,
    started: Instant,
    said: Instant,
    logged: Instant,
    /// It said it was still running: its end is said too.
    spoke: bool,
}

/// What a pass says: still running (and whether to log it now), and, when
/// it said so, its end.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Said<'a> {
    Still { line: &'a Line, log: bool },
    Ended,
}

/// Tells `say` of each pass that runs past `every`, and then as often; a
/// line is to be logged once the pass ran past `log`, and then as often.
pub(super) struct Progress<F> {
    every: Duration,
    log: Duration,
    say: F,
    pass: Mutex<Option<Pass>>,
}

impl<F: Fn(Said<'_>) + Send + Sync> Progress<F> {
    pub(super) fn new(every: Duration, log: Duration, say: F) -> Progress<F> {
        Progress {
            every,
            log,
            say,
            pass: Mutex::new(None),
        }
    }
}

/// The daemon's: the record `stxd status` and waiting commands read in
/// `state_dir`, and lines at info, beside its other lines about files. The
/// record is advice: a failure to write or remove it is only a debug line.
pub(super) fn logged(state_dir: &Path) -> progress::Watch {
    let state_dir = state_dir.to_path_buf();
    let progress = Progress::new(reading::SOON, reading::EVERY, move |said: Said<'_>| {
        let recorded = match said {
            Said::Still { line: l, log } => {
                if log {
                    info!(
                        file = %l.file,
                        pass = l.pass,
                        percent = l.percent(),
                        read_bytes = l.read,
                        bytes = l.bytes,
                        lines = l.lines,
                        seconds = l.seconds,
                        "file still being read: its store stays locked until it is applied"
                    );
                }
                let record = reading::Reading {
                    pid: std::process::id(),
                    file: l.file.clone(),
                    pass: l.pass.to_owned(),
                    percent: l.percent(),
                    read_bytes: l.read,
                    bytes: l.bytes,
                    seconds: l.seconds,
                    at: crate::store::now(),
                };
                reading::write(&state_dir, &record)
            }
            Said::Ended => reading::clear(&state_dir),
        };
        if let Err(e) = recorded {
            debug!(error = %e, state_dir = %state_dir.display(), "cannot record the file being read for stxd status");
        }
    });
    progress::Watch::new(progress)
}

impl<F: Fn(Said<'_>) + Send + Sync> progress::Progress for Progress<F> {
    fn start(&self, file: &str, what: &'static str, bytes: u64) {
        let now = Instant::now();
        // A poisoned lock only means a `say` panicked: the count goes on.
        *self.pass.lock().unwrap_or_else(|p| p.into_inner()) = Some(Pass {
            line: Line {
                file: file.to_owned(),
                pass: what,
                read: 0,
                bytes,
                lines: 0,
                seconds: 0,
            },
            started: now,
            said: now,
            logged: now,
            spoke: false,
        });
    }

    fn advance(&self, bytes: u64, lines: u64) {
        let mut pass = self.pass.lock().unwrap_or_else(|p| p.into_inner());
        let Some(p) = pass.as_mut() else {
            return;
        };
        p.line.read = p.line.read.saturating_add(bytes);
        p.line.lines = p.line.lines.saturating_add(lines);
        let now = Instant::now();
        if now.duration_since(p.said) < self.every {
            return;
        }
        p.said = now;
        p.spoke = true;
        let log = now.duration_since(p.logged) >= self.log;
        if log {
            p.logged = now;
        }
        p.line.seconds = now.duration_since(p.started).as_secs();
        let line = p.line.clone();
        drop(pass);
        (self.say)(Said::Still { line: &line, log });
    }

    fn finish(&self) {
        let pass = self.pass.lock().unwrap_or_else(|p| p.into_inner()).take();
        if pass.is_some_and(|p| p.spoke) {
            (self.say)(Said::Ended);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::progress::Progress as _;
    use std::sync::Arc;

    /// What a test's `say` heard: each line, `None` for an end.
    type Heard = Arc<Mutex<Vec<Option<Line>>>>;

    /// Whether each line heard was to be logged.
    type Logs = Arc<Mutex<Vec<bool>>>;

    fn heard(every: Duration) -> (Progress<impl Fn(Said<'_>) + Send + Sync>, Heard) {
        let (p, heard, _) = heard_logged(every, Duration::ZERO);
        (p, heard)
    }

    /// As [`heard`], logging past `log`; and which lines were to be logged.
    fn heard_logged(
        every: Duration,
        log: Duration,
    ) -> (Progress<impl Fn(Said<'_>) + Send + Sync>, Heard, Logs) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (sink, logged) = (lines.clone(), logs.clone());
        let p = Progress::new(every, log, move |said: Said<'_>| {
            sink.lock().unwrap().push(match said {
                Said::Still { line, log } => {
                    logged.lock().unwrap().push(log);
                    Some(line.clone())
                }
                Said::Ended => None,
            })
        });
        (p, lines, logs)
    }

    #[test]
    fn a_pass_faster_than_the_interval_says_nothing() {
        let (p, lines) = heard(Duration::from_secs(3600));
        p.start("x.SALES.00000001.csv", "parse", 1000);
        for _ in 0..10 {
            p.advance(100, 2);
        }
        p.finish();
        assert!(lines.lock().unwrap().is_empty());
    }

    #[test]
    fn a_long_pass_says_its_file_pass_and_how_far_it_is() {
        let (p, lines) = heard(Duration::ZERO);
        p.start("x.SEATPLAN.00000001.xml", "verify", 400);
        p.advance(100, 3);
        p.finish();
        p.start("x.SEATPLAN.00000001.xml", "parse", 400);
        p.advance(100, 3);
        p.advance(200, 5);
        // Past the end of a pass, or with no pass begun, nothing is said.
        p.finish();
        p.advance(50, 1);
        let heard = lines.lock().unwrap().clone();
        let short: Vec<Option<(&str, u64, u64, u64)>> = heard
            .iter()
            .map(|l| l.as_ref().map(|l| (l.pass, l.read, l.lines, l.percent())))
            .collect();
        assert_eq!(
            short,
            [
                Some(("verify", 100, 3, 25)),
                None,
                Some(("parse", 100, 3, 25)),
                Some(("parse", 300, 8, 75)),
                None,
            ]
        );
        let said: Vec<Line> = heard.into_iter().flatten().collect();
        assert!(
            said.iter()
                .all(|l| l.file == "x.SEATPLAN.00000001.xml" && l.bytes == 400)
        );
        let empty = Line {
            bytes: 0,
            ..said[0].clone()
        };
        assert_eq!(empty.percent(), 100);
    }

    #[test]
    fn a_pass_is_recorded_at_every_interval_and_logged_only_past_the_longer_one() {
        let (p, lines, logs) = heard_logged(Duration::ZERO, Duration::from_secs(3600));
        p.start("x.SALES.00000001.csv", "parse", 400);
        p.advance(100, 3);
        p.advance(100, 3);
        p.finish();
        assert_eq!(lines.lock().unwrap().len(), 3, "two lines and the end");
        assert_eq!(*logs.lock().unwrap(), [false, false]);
        let (p, _, logs) = heard_logged(Duration::ZERO, Duration::ZERO);
        p.start("x.SALES.00000001.csv", "parse", 400);
        p.advance(100, 3);
        p.advance(100, 3);
        assert_eq!(*logs.lock().unwrap(), [true, true]);
    }
}
