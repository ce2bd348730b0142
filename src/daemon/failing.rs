//! Files the daemon could not process for a cause outside them (the
//! payload unreadable now, `EIO`; the store's disk full or failing): each
//! is tried again after a wait that doubles at each failure in a row, one
//! listing period first, then two, four… up to [`LONGEST_WAIT`], so that a
//! big file whose read or write keeps failing does not cost a whole read at
//! every listing for as long as the cause lasts. A file changed since it
//! failed (dropped again, touched) is tried at the next listing, and a
//! daemon's start tries every file. A busy store is not such a cause: the
//! file waits for another process to let go of it, and is tried at every
//! listing. Pure bookkeeping: the clock is the caller's, and
//! [`super::report`] writes the lines.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use time::format_description::well_known::Rfc3339;

use crate::app::Handled;
use crate::inbound::archive::{Pair, Stamp};
use crate::inbound::claim::display_name;
use crate::retrying::RetryingFile;

/// The longest wait between two tries of a failing file.
pub(super) const LONGEST_WAIT: Duration = Duration::from_secs(300);

/// The files failing for a cause outside them, across listings.
#[derive(Debug, Default)]
pub(super) struct Failing {
    files: HashMap<PathBuf, Failure>,
    /// Whether the list changed since it was last recorded.
    changed: bool,
}

/// One failing file.
#[derive(Debug, Clone)]
struct Failure {
    /// Failures in a row.
    count: u32,
    /// When the last one ended.
    at: Instant,
    /// How long after it the next try waits.
    wait: Duration,
    /// The pair as it stood after the last failure: a change makes it due.
    stamp: Stamp,
    /// What the last failure said, and its code, for the alert kept
    /// raised while the file waits.
    error: String,
    code: &'static str,
}

/// A failing file not tried at this listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Waiting {
    /// What its last failure said, and its code.
    pub(super) error: String,
    pub(super) code: &'static str,
    /// How long until its next try.
    pub(super) left: Duration,
}

impl Failing {
    /// Whether `manifest` waits at `now` after an earlier failure (its
    /// wait not over, the pair unchanged since); `None` when it is to be
    /// tried.
    pub(super) fn waiting(&self, manifest: &Path, now: Instant) -> Option<Waiting> {
        let f = self.files.get(manifest)?;
        let due = f.at + f.wait;
        if now >= due || Pair::of(manifest).stamp() != f.stamp {
            return None;
        }
        Some(Waiting {
            error: f.error.clone(),
            code: f.code,
            left: due - now,
        })
    }

    /// Records how the try of a file ended at `now`, `period` being the
    /// listing period: a failure for a cause outside the file sets its next
    /// try and returns the wait; a busy store (which says nothing of that
    /// cause) changes nothing; any other end (applied, held, refused)
    /// forgets its failures.
    pub(super) fn tried(
        &mut self,
        h: &Handled,
        now: Instant,
        period: Duration,
    ) -> Option<Duration> {
        let e = match &h.processed {
            Err(e) if e.is_busy() => return None,
            Err(e) => e,
            Ok(_) => {
                self.changed |= self.files.remove(&h.file).is_some();
                return None;
            }
        };
        let stamp = Pair::of(&h.file).stamp();
        let count = match self.files.get(&h.file) {
            // The same pair failing again: the wait doubles.
            Some(f) if f.stamp == stamp => f.count.saturating_add(1),
            // A first failure, or a pair changed since the last one.
            _ => 1,
        };
        let wait = crate::backoff::doubling(period, count - 1, LONGEST_WAIT, 1.0);
        self.changed = true;
        self.files.insert(
            h.file.clone(),
            Failure {
                count,
                at: now,
                wait,
                stamp,
                error: e.to_string(),
                code: e.code(),
            },
        );
        Some(wait)
    }

    /// Forgets the files that left their folders, so the map stays small.
    pub(super) fn retain_present(&mut self) {
        let before = self.files.len();
        self.files.retain(|file, _| file.exists());
        self.changed |= self.files.len() != before;
    }

    /// The files tried again later, as `stxd status` shows them, when the
    /// list changed since it was last [recorded](Failing::recorded) (`now`
    /// and `wall` being the same instant on both clocks); `None` when it
    /// did not.
    pub(super) fn changes(
        &self,
        now: Instant,
        wall: time::OffsetDateTime,
    ) -> Option<Vec<RetryingFile>> {
        if !self.changed {
            return None;
        }
        let mut files: Vec<RetryingFile> = self
            .files
            .iter()
            .map(|(manifest, f)| {
                let left = (f.at + f.wait).saturating_duration_since(now);
                let next = (wall + left).replace_nanosecond(0).unwrap_or(wall);
                RetryingFile {
                    file: display_name(manifest),
                    error: f.error.clone(),
                    code: f.code.to_owned(),
                    failures: f.count,
                    next_try: next.format(&Rfc3339).unwrap_or_default(),
                }
            })
            .collect();
        files.sort_by(|a, b| a.file.cmp(&b.file));
        Some(files)
    }

    /// The list [`Failing::changes`] gave was recorded.
    pub(super) fn recorded(&mut self) {
        self.changed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::{InboundError, Outcome, Processed};

    fn handled(file: &Path, processed: Result<Processed, InboundError>) -> Handled {
        Handled {
            institution: "OPERA".into(),
            file: file.to_owned(),
            processed,
        }
    }

    fn io_error(file: &Path) -> Result<Processed, InboundError> {
        Err(InboundError::Io {
            file: file.display().to_string(),
            source: std::io::Error::other("byte 0: read failed: Input/output error"),
        })
    }

    fn busy() -> Result<Processed, InboundError> {
        Err(InboundError::StoreBusy {
            institution: "OPERA".into(),
        })
    }

    fn archived(file: &Path) -> Result<Processed, InboundError> {
        Ok(Processed {
            location: file.to_owned(),
            outcome: Outcome::AlreadyApplied { sequence: 1 },
        })
    }

    fn pair(dir: &Path) -> PathBuf {
        let manifest = dir.join("opera-tourism.SALES.00000001.stx");
        std::fs::write(&manifest, "manifest").unwrap();
        std::fs::write(dir.join("opera-tourism.SALES.00000001.csv"), "payload").unwrap();
        manifest
    }

    #[test]
    fn a_failing_file_waits_twice_as_long_after_each_failure_up_to_the_longest_wait() {
        let dir = tempfile::tempdir().unwrap();
        let file = pair(dir.path());
        let period = Duration::from_secs(5);
        let mut failing = Failing::default();
        let t0 = Instant::now();
        assert_eq!(failing.waiting(&file, t0), None, "never failed: tried");
        let mut now = t0;
        let mut waits = Vec::new();
        for _ in 0..9 {
            let wait = failing.tried(&handled(&file, io_error(&file)), now, period);
            let wait = wait.expect("a failure outside the file sets a wait");
            waits.push(wait.as_secs());
            let just_before = now + wait - Duration::from_millis(1);
            let w = failing.waiting(&file, just_before).expect("waits");
            assert_eq!(w.left, Duration::from_millis(1));
            assert_eq!(w.code, "io");
            assert!(w.error.contains("Input/output error"), "{}", w.error);
            now += wait;
            assert_eq!(
                failing.waiting(&file, now),
                None,
                "due once its wait is over"
            );
        }
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(LONGEST_WAIT, Duration::from_secs(300));
    }

    #[test]
    fn a_changed_file_is_tried_at_once_and_its_waits_start_again() {
        let dir = tempfile::tempdir().unwrap();
        let file = pair(dir.path());
        let period = Duration::from_secs(5);
        let mut failing = Failing::default();
        let t0 = Instant::now();
        failing.tried(&handled(&file, io_error(&file)), t0, period);
        let t1 = t0 + period;
        assert_eq!(
            failing.tried(&handled(&file, io_error(&file)), t1, period),
            Some(period * 2)
        );
        assert!(failing.waiting(&file, t1 + period).is_some());
        // The payload rewritten (dropped again): due now, and a failure of
        // the new pair waits one period again.
        let payload = dir.path().join("opera-tourism.SALES.00000001.csv");
        std::fs::write(&payload, "another payload").unwrap();
        assert_eq!(failing.waiting(&file, t1 + period), None);
        assert_eq!(
            failing.tried(&handled(&file, io_error(&file)), t1 + period, period),
            Some(period)
        );
        // The manifest touched alone does it too.
        let later = std::time::SystemTime::now() + Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(&file)
            .unwrap()
            .set_modified(later)
            .unwrap();
        assert_eq!(failing.waiting(&file, t1 + period * 2), None);
    }

    #[test]
    fn a_busy_store_changes_nothing_and_another_outcome_forgets_the_failures() {
        let dir = tempfile::tempdir().unwrap();
        let file = pair(dir.path());
        let period = Duration::from_secs(5);
        let mut failing = Failing::default();
        let t0 = Instant::now();
        // Busy from the start: tried at every listing.
        assert_eq!(failing.tried(&handled(&file, busy()), t0, period), None);
        assert_eq!(failing.waiting(&file, t0), None);
        failing.tried(&handled(&file, io_error(&file)), t0, period);
        let t1 = t0 + period;
        failing.tried(&handled(&file, io_error(&file)), t1, period);
        let t2 = t1 + period * 2;
        // Found busy once due: its wait and count stay as they were.
        assert_eq!(failing.tried(&handled(&file, busy()), t2, period), None);
        assert_eq!(failing.waiting(&file, t2), None, "still due");
        assert_eq!(
            failing.tried(&handled(&file, io_error(&file)), t2, period),
            Some(period * 4),
            "the third failure of the same pair"
        );
        // Gone through: forgotten, a new failure waits one period.
        assert_eq!(
            failing.tried(&handled(&file, archived(&file)), t2, period),
            None
        );
        assert_eq!(failing.waiting(&file, t2), None);
        assert_eq!(
            failing.tried(&handled(&file, io_error(&file)), t2, period),
            Some(period)
        );
        // Gone from its folder: forgotten.
        std::fs::remove_file(&file).unwrap();
        failing.retain_present();
        assert!(failing.files.is_empty());
    }

    #[test]
    fn the_list_is_given_for_the_record_only_when_it_changed() {
        use time::macros::datetime;
        let dir = tempfile::tempdir().unwrap();
        let file = pair(dir.path());
        let period = Duration::from_secs(5);
        let mut failing = Failing::default();
        let (t0, wall) = (Instant::now(), datetime!(2026-12-06 10:00:00.25 UTC));
        assert_eq!(failing.changes(t0, wall), None, "nothing yet");
        failing.tried(&handled(&file, io_error(&file)), t0, period);
        failing.tried(&handled(&file, io_error(&file)), t0, period);
        let listed = failing.changes(t0, wall).expect("changed");
        assert_eq!(
            failing.changes(t0, wall).as_ref(),
            Some(&listed),
            "given again until recorded"
        );
        failing.recorded();
        assert_eq!(listed.len(), 1);
        let f = &listed[0];
        assert_eq!(f.file, "opera-tourism.SALES.00000001.stx");
        assert_eq!((f.failures, f.code.as_str()), (2, "io"));
        assert!(f.error.contains("Input/output error"), "{}", f.error);
        assert_eq!(
            f.next_try, "2026-12-06T10:00:10Z",
            "10 s after the second failure"
        );
        assert_eq!(failing.changes(t0, wall), None, "unchanged since");
        // Found busy: nothing changes.
        failing.tried(&handled(&file, busy()), t0, period);
        assert_eq!(failing.changes(t0, wall), None);
        // Gone through: an empty list, once recorded.
        failing.tried(&handled(&file, archived(&file)), t0, period);
        assert_eq!(failing.changes(t0, wall), Some(Vec::new()));
        failing.recorded();
        assert_eq!(failing.changes(t0, wall), None);
    }
}
