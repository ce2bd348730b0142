//! What the daemon is reading now, for `stxd status` and the commands
//! waiting for its store: a file that takes long (a 100 MB seat plan,
//! millions of sales lines) keeps its store locked for as long as it
//! takes, and the inbox shows it waiting all that time. The daemon writes
//! `<state_dir>/reading.json` once a pass over such a file has run for a
//! second, and then every second (`daemon::progress`), and removes it when
//! the pass ends; `stxd status`, the console and a waiting command show it
//! while the daemon that wrote it still runs.
//!
//! The file is advice, never a decision: it is replaced whole (written
//! aside, then renamed), never synced, and a reader ignores one written by
//! another process than the running daemon, or long ago (a removal that
//! failed).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;

/// How long the daemon reads a file before it records how far it is, and
/// then how often: a command that waits for the store says what it waits
/// for after a second.
pub const SOON: std::time::Duration = std::time::Duration::from_secs(1);

/// How long the daemon reads a file before it logs how far it is, and then
/// how often; also how often a waiting command says so.
pub const EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// How old a record may be and still be shown: three of those intervals.
pub const FRESH: time::Duration = time::Duration::seconds(3 * EVERY.as_secs() as i64);

/// A pass over a file, still running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reading {
    /// The daemon that reads it.
    pub pid: u32,
    pub file: String,
    /// `verify`, or `parse` (which applies the records as it reads them).
    pub pass: String,
    pub percent: u64,
    pub read_bytes: u64,
    pub bytes: u64,
    /// How long the pass has run, seconds.
    pub seconds: u64,
    /// When this was written (RFC 3339, UTC).
    pub at: String,
}

impl Reading {
    /// In words, as `stxd status`, the console and a waiting command show
    /// it. The store is locked only by the pass that applies (`parse`): the
    /// signature's check (`verify`) runs before the file's transaction.
    pub fn describe(&self) -> String {
        let why = if self.pass == "parse" {
            "its store stays locked until it is applied"
        } else {
            "its signature is checked before it is applied"
        };
        format!(
            "reading {} for {} s ({} {}% of {:.1} MiB): {why}",
            self.file,
            self.seconds,
            self.pass,
            self.percent,
            self.bytes as f64 / 1_048_576.0
        )
    }
}

/// `<state_dir>/reading.json`.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("reading.json")
}

/// Replaces the record with `reading`.
pub fn write(state_dir: &Path, reading: &Reading) -> std::io::Result<()> {
    replace(state_dir, "reading.json", reading)
}

/// Removes the record; none is fine.
pub fn clear(state_dir: &Path) -> std::io::Result<()> {
    remove(&path(state_dir))
}

/// Replaces the record `<state_dir>/<name>` with `value`, whole: written
/// aside, then renamed (a record of advice: never synced).
pub(crate) fn replace(state_dir: &Path, name: &str, value: &impl Serialize) -> std::io::Result<()> {
    let aside = state_dir.join(format!(".{name}.tmp"));
    let text = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    std::fs::write(&aside, text)?;
    // Replacing on purpose: the record is the latest word, and the
    // temporary name keeps a reader from seeing half of one.
    #[allow(clippy::disallowed_methods)]
    std::fs::rename(&aside, state_dir.join(name))
}

/// Removes a record; none is fine.
pub(crate) fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The record, when the daemon running now (`pid`) wrote it less than
/// [`FRESH`] before `now`.
pub fn current(state_dir: &Path, pid: Option<u32>, now: time::OffsetDateTime) -> Option<Reading> {
    let text = std::fs::read(path(state_dir)).ok()?;
    let reading: Reading = serde_json::from_slice(&text).ok()?;
    let at = time::OffsetDateTime::parse(&reading.at, &Rfc3339).ok()?;
    let fresh = now - at <= FRESH && at - now <= FRESH;
    (pid == Some(reading.pid) && fresh).then_some(reading)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(pid: u32, at: time::OffsetDateTime) -> Reading {
        Reading {
            pid,
            file: "opera-tourism.SEATPLAN.00000001.xml".into(),
            pass: "parse".into(),
            percent: 80,
            read_bytes: 80,
            bytes: 100,
            seconds: 10,
            at: at.format(&Rfc3339).unwrap(),
        }
    }

    #[test]
    fn the_running_daemons_fresh_record_is_shown_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let now = time::OffsetDateTime::now_utc();
        assert_eq!(current(dir.path(), Some(7), now), None, "no record");
        write(dir.path(), &reading(7, now)).unwrap();
        assert_eq!(current(dir.path(), Some(7), now), Some(reading(7, now)));
        assert_eq!(
            reading(7, now).describe(),
            "reading opera-tourism.SEATPLAN.00000001.xml for 10 s (parse 80% of 0.0 MiB): its store stays locked until it is applied"
        );
        let verifying = Reading {
            pass: "verify".into(),
            ..reading(7, now)
        };
        assert_eq!(
            verifying.describe(),
            "reading opera-tourism.SEATPLAN.00000001.xml for 10 s (verify 80% of 0.0 MiB): its signature is checked before it is applied"
        );
        // Another process's record (a daemon killed mid-file, then
        // restarted), or no daemon at all.
        assert_eq!(current(dir.path(), Some(8), now), None);
        assert_eq!(current(dir.path(), None, now), None);
        // Written long ago: a removal that failed.
        let later = now + FRESH + time::Duration::seconds(1);
        assert_eq!(current(dir.path(), Some(7), later), None);
        write(dir.path(), &reading(7, later)).unwrap();
        assert_eq!(current(dir.path(), Some(7), later), Some(reading(7, later)));
        clear(dir.path()).unwrap();
        assert_eq!(current(dir.path(), Some(7), later), None);
        clear(dir.path()).unwrap();
        // Half a record (written by hand, say) is no record.
        std::fs::write(path(dir.path()), b"{\"pid\": 7").unwrap();
        assert_eq!(current(dir.path(), Some(7), now), None);
    }
}
