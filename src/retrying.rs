//! The files the daemon tries again later, for `stxd status` and the
//! console: a file that could not be processed for a cause outside it (its
//! payload unreadable now, its store's disk full) stays in its inbox and
//! waits ever longer between tries (`daemon::failing`); the inbox shows it
//! waiting all that time, and this says why and until when. The daemon
//! writes `<state_dir>/retrying.json` when that list changes, and removes
//! it when the list is empty; a reader shows it while the daemon that wrote
//! it still runs.
//!
//! Advice, never a decision: replaced whole (written aside, then renamed),
//! never synced; a record of another process than the running daemon is
//! ignored.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The files a daemon tries again later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retrying {
    /// The daemon that tries them.
    pub pid: u32,
    pub files: Vec<RetryingFile>,
}

/// One file tried again later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryingFile {
    /// The manifest's name.
    pub file: String,
    /// What its last try said, and its code.
    pub error: String,
    pub code: String,
    /// Failures in a row.
    pub failures: u32,
    /// When it is tried next (RFC 3339, UTC).
    pub next_try: String,
}

impl RetryingFile {
    /// In words, as `stxd status` and the console show it.
    pub fn describe(&self) -> String {
        format!(
            "{}: not processed now ({} failure(s) in a row, code {}): {}; tried again at {} (touch it to have it tried at the next listing)",
            self.file, self.failures, self.code, self.error, self.next_try
        )
    }
}

/// `<state_dir>/retrying.json`.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("retrying.json")
}

/// Replaces the record with `retrying`, or removes it when no file is
/// tried again later.
pub fn write(state_dir: &Path, retrying: &Retrying) -> std::io::Result<()> {
    if retrying.files.is_empty() {
        return crate::reading::remove(&path(state_dir));
    }
    crate::reading::replace(state_dir, "retrying.json", retrying)
}

/// The files the daemon running now (`pid`) tries again later; none when
/// another process wrote the record, or none did.
pub fn current(state_dir: &Path, pid: Option<u32>) -> Vec<RetryingFile> {
    let Ok(text) = std::fs::read(path(state_dir)) else {
        return Vec::new();
    };
    match serde_json::from_slice::<Retrying>(&text) {
        Ok(r) if Some(r.pid) == pid => r.files,
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retrying(pid: u32) -> Retrying {
        Retrying {
            pid,
            files: vec![RetryingFile {
                file: "opera-tourism.SALES.00000001.stx".into(),
                error: "database error: database or disk is full".into(),
                code: "store".into(),
                failures: 3,
                next_try: "2026-12-06T10:00:20Z".into(),
            }],
        }
    }

    #[test]
    fn the_running_daemons_record_is_shown_and_an_empty_one_removed() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(current(dir.path(), Some(7)), Vec::new(), "no record");
        write(dir.path(), &retrying(7)).unwrap();
        assert_eq!(current(dir.path(), Some(7)), retrying(7).files);
        assert_eq!(
            retrying(7).files[0].describe(),
            "opera-tourism.SALES.00000001.stx: not processed now (3 failure(s) in a row, code store): database error: database or disk is full; tried again at 2026-12-06T10:00:20Z (touch it to have it tried at the next listing)"
        );
        // Another process's record (a daemon killed, then restarted), or
        // no daemon at all.
        assert_eq!(current(dir.path(), Some(8)), Vec::new());
        assert_eq!(current(dir.path(), None), Vec::new());
        // No file left: no record (and none to remove is fine).
        let none = Retrying {
            pid: 7,
            files: Vec::new(),
        };
        write(dir.path(), &none).unwrap();
        assert!(!path(dir.path()).exists());
        write(dir.path(), &none).unwrap();
        // Half a record is no record.
        std::fs::write(path(dir.path()), b"{\"pid\": 7").unwrap();
        assert_eq!(current(dir.path(), Some(7)), Vec::new());
    }
}
