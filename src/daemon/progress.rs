//! The daemon's watch on the files it reads: a file that takes long says
//! how far it is. Applying a seat plan of 100 MB takes about 16 s, a sales
//! file of 10M lines about two minutes, and the store's write lock is held
//! all that time; without a word, the log of that time reads like a daemon
//! that hangs.
//!
//! [`Progress`] is given each pass over a payload (`verify`, then `parse`,
//! which is also the apply: records are applied as they are read). Once a
//! pass has run for [`EVERY`], and then every [`EVERY`], it logs the file,
//! the pass, how much of it was read and for how long. A file read faster
//! logs nothing more than it did.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::transport::progress;

/// How long a pass runs before it says how far it is, and then how often.
pub(super) const EVERY: Duration = Duration::from_secs(10);

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

/// The pass being read.
struct Pass {
    file: String,
    pass: &'static str,
    bytes: u64,
    read: u64,
    lines: u64,
    started: Instant,
    said: Instant,
}

/// Logs, through `say`, each pass that runs past `every`.
pub(super) struct Progress<F> {
    every: Duration,
    say: F,
    pass: Mutex<Option<Pass>>,
}

impl<F: Fn(&Line) + Send + Sync> Progress<F> {
    pub(super) fn new(every: Duration, say: F) -> Progress<F> {
        Progress {
            every,
            say,
            pass: Mutex::new(None),
        }
    }
}

/// The daemon's: lines at info, beside its other lines about files.
pub(super) fn logged() -> progress::Watch {
    progress::Watch::new(Progress::new(EVERY, |l: &Line| {
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
    }))
}

impl<F: Fn(&Line) + Send + Sync> progress::Progress for Progress<F> {
    fn start(&self, file: &str, what: &'static str, bytes: u64) {
        let now = Instant::now();
        // A poisoned lock only means a `say` panicked: the count goes on.
        *self.pass.lock().unwrap_or_else(|p| p.into_inner()) = Some(Pass {
            file: file.to_owned(),
            pass: what,
            bytes,
            read: 0,
            lines: 0,
            started: now,
            said: now,
        });
    }

    fn advance(&self, bytes: u64, lines: u64) {
        let mut pass = self.pass.lock().unwrap_or_else(|p| p.into_inner());
        let Some(p) = pass.as_mut() else {
            return;
        };
        p.read = p.read.saturating_add(bytes);
        p.lines = p.lines.saturating_add(lines);
        let now = Instant::now();
        if now.duration_since(p.said) < self.every {
            return;
        }
        p.said = now;
        let line = Line {
            file: p.file.clone(),
            pass: p.pass,
            read: p.read,
            bytes: p.bytes,
            lines: p.lines,
            seconds: now.duration_since(p.started).as_secs(),
        };
        drop(pass);
        (self.say)(&line);
    }

    fn finish(&self) {
        *self.pass.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::progress::Progress as _;
    use std::sync::Arc;

    /// What a test's `say` heard.
    type Heard = Arc<Mutex<Vec<Line>>>;

    fn heard(every: Duration) -> (Progress<impl Fn(&Line) + Send + Sync>, Heard) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let p = Progress::new(every, move |l: &Line| sink.lock().unwrap().push(l.clone()));
        (p, lines)
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
        let said = lines.lock().unwrap().clone();
        let short: Vec<(&str, u64, u64, u64)> = said
            .iter()
            .map(|l| (l.pass, l.read, l.lines, l.percent()))
            .collect();
        assert_eq!(
            short,
            [
                ("verify", 100, 3, 25),
                ("parse", 100, 3, 25),
                ("parse", 300, 8, 75)
            ]
        );
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
}
