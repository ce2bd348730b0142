//! The bookkeeping that keeps the daemon's log readable: a file that stays
//! in its folder (failing, parked, held, waiting for its apply window) is
//! logged when it enters that state, then only at debug level while it
//! stays in it; a file held for a sequence gap is warned about once, and
//! logged as an error once more past `[daemon] gap_alert_minutes`. Pure
//! bookkeeping: the clock is the caller's, and [`super::report`] writes the
//! lines.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

/// The state a file was last logged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Logged {
    /// Not processed (I/O, a busy store): tried again later.
    Failed,
    /// Parked, waiting for mappings.
    Parked,
    /// Held in the inbox (a gap, a kind not handled…).
    Held,
    /// Held until its apply window.
    Window,
}

impl Logged {
    /// The state, as the log's `was` field says it.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Logged::Failed => "failing",
            Logged::Parked => "parked",
            Logged::Held => "held",
            Logged::Window => "waiting-for-its-window",
        }
    }
}

/// What the daemon remembers of the files it logged, across listings.
#[derive(Debug, Default)]
pub(super) struct LogOnce {
    /// The last state logged per file, so a file held in the inbox is
    /// reported once, not at every listing.
    logged: HashMap<PathBuf, Logged>,
    /// Files held for a sequence gap: since when, and whether the error
    /// past `[daemon] gap_alert_minutes` was logged.
    gaps: HashMap<PathBuf, Gap>,
    /// When each file was first seen waiting where it is (parked, held in
    /// the inbox): the `since` of its alert.
    waiting: HashMap<PathBuf, OffsetDateTime>,
    /// When each failing share (by alert key) first failed.
    down: HashMap<String, OffsetDateTime>,
}

impl LogOnce {
    /// Records that `file` is now in `state`; `true` when it was already
    /// logged in that state (say it again at debug level only).
    pub(super) fn again(&mut self, file: &Path, state: Logged) -> bool {
        self.logged.insert(file.to_owned(), state) == Some(state)
    }

    /// Forgets the state of `file`: it left its folder's waiting states
    /// (applied, rejected).
    pub(super) fn forget(&mut self, file: &Path) {
        self.logged.remove(file);
    }

    /// Forgets that `file` was held for a gap: it no longer is.
    pub(super) fn gap_closed(&mut self, file: &Path) {
        self.gaps.remove(file);
    }

    /// Tracks `file`, held for a gap at `now`; says how to log it.
    pub(super) fn gap(
        &mut self,
        file: &Path,
        now: OffsetDateTime,
        alert_after: time::Duration,
    ) -> GapLog {
        watch_gap(&mut self.gaps, file, now, alert_after)
    }

    /// When `file` was first seen waiting at its path (`now` if this is
    /// the first time).
    pub(super) fn waiting_since(&mut self, file: &Path, now: OffsetDateTime) -> OffsetDateTime {
        *self.waiting.entry(file.to_owned()).or_insert(now)
    }

    /// When the share of alert key `key` first failed (`now` if it just
    /// did).
    pub(super) fn down_since(&mut self, key: &str, now: OffsetDateTime) -> OffsetDateTime {
        *self.down.entry(key.to_owned()).or_insert(now)
    }

    /// The share of alert key `key` synced: its next failure starts anew.
    pub(super) fn up(&mut self, key: &str) {
        self.down.remove(key);
    }

    /// Forgets the files that left the folders, so the maps stay small;
    /// returns those still remembered, with the state they were logged
    /// in. The daemon forgets a file it applies, refuses or moves itself,
    /// so a file that left its folder while remembered was taken by
    /// someone else: a command that applied it, a person who removed it.
    pub(super) fn retain_present(&mut self) -> Vec<(PathBuf, Logged)> {
        let mut gone = Vec::new();
        self.logged.retain(|file, state| {
            let present = file.exists();
            if !present {
                gone.push((file.clone(), *state));
            }
            present
        });
        self.gaps.retain(|file, _| file.exists());
        self.waiting.retain(|file, _| file.exists());
        gone.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        gone
    }
}

/// A file held for a sequence gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Gap {
    since: OffsetDateTime,
    alerted: bool,
}

/// How to log a file held for a sequence gap this time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GapLog {
    /// First seen: a warning.
    First,
    /// Held longer than the alert delay, for the first time: an error.
    Alert { since: OffsetDateTime },
    /// Already reported.
    Quiet,
}

/// Tracks a file held for a gap at `now`; says how to log it. Pure: the
/// clock is the caller's.
fn watch_gap(
    gaps: &mut HashMap<PathBuf, Gap>,
    file: &Path,
    now: OffsetDateTime,
    alert_after: time::Duration,
) -> GapLog {
    match gaps.get_mut(file) {
        None => {
            gaps.insert(
                file.to_owned(),
                Gap {
                    since: now,
                    alerted: false,
                },
            );
            GapLog::First
        }
        Some(gap) if !gap.alerted && now - gap.since >= alert_after => {
            gap.alerted = true;
            GapLog::Alert { since: gap.since }
        }
        Some(_) => GapLog::Quiet,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gap_is_warned_once_then_alerted_once_past_the_delay() {
        use time::macros::datetime;
        let mut gaps = HashMap::new();
        let file = Path::new("in/opera-tourism.CATALOGUE.00000003.stx");
        let t0 = datetime!(2026-11-28 10:00:00 UTC);
        let after = time::Duration::minutes(30);
        assert_eq!(watch_gap(&mut gaps, file, t0, after), GapLog::First);
        let t = t0 + time::Duration::minutes(29);
        assert_eq!(watch_gap(&mut gaps, file, t, after), GapLog::Quiet);
        let t = t0 + time::Duration::minutes(30);
        assert_eq!(
            watch_gap(&mut gaps, file, t, after),
            GapLog::Alert { since: t0 }
        );
        let t = t0 + time::Duration::hours(5);
        assert_eq!(watch_gap(&mut gaps, file, t, after), GapLog::Quiet);
        // Another file has its own clock.
        let other = Path::new("in/opera-tourism.CATALOGUE.00000004.stx");
        assert_eq!(watch_gap(&mut gaps, other, t, after), GapLog::First);
    }

    #[test]
    fn a_file_is_logged_again_only_in_another_state() {
        let mut log = LogOnce::default();
        let file = Path::new("in/opera-tourism.SALES.00000002.stx");
        assert!(!log.again(file, Logged::Held));
        assert!(log.again(file, Logged::Held));
        assert!(!log.again(file, Logged::Failed), "a new state is logged");
        log.forget(file);
        assert!(!log.again(file, Logged::Failed), "forgotten: logged anew");
    }

    #[test]
    fn a_file_that_left_without_the_daemon_is_returned_once_with_its_state() {
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, "").unwrap();
            path
        };
        let (taken, applied, stays, held) = (
            file("opera-tourism.CATALOGUE.00000001.stx"),
            file("opera-tourism.SEATPLAN.00000001.stx"),
            file("opera-tourism.CATALOGUE.00000002.stx"),
            file("opera-tourism.SALES.00000004.stx"),
        );
        let mut log = LogOnce::default();
        for parked in [&taken, &applied, &stays] {
            log.again(parked, Logged::Parked);
        }
        log.again(&held, Logged::Held);
        // The daemon applied one itself (and forgot it); a command took
        // another and a held one.
        log.forget(&applied);
        for gone in [&taken, &applied, &held] {
            std::fs::remove_file(gone).unwrap();
        }
        assert_eq!(
            log.retain_present(),
            vec![(taken.clone(), Logged::Parked), (held, Logged::Held)]
        );
        assert_eq!(log.retain_present(), Vec::new(), "once");
        assert!(log.again(&stays, Logged::Parked), "still remembered");
    }
}
