//! The archives' retention (`[daemon] archive_days`): the files archived
//! in a served inbox's `done/` (received and applied, or received again)
//! and in an SFTP outbox's `sent/` (pushed to the share) are deleted once
//! they were archived that many days ago. Off by default: the archives are
//! the institution's copy of what was exchanged, and how long to keep them
//! is its decision.
//!
//! Nothing else is touched: the inboxes, `parked/`, `error/`,
//! `quarantine/` and the outboxes hold files still waiting for something
//! or someone. What exactly once rests on is in the store (the file
//! journal), never in an archive, so deleting one changes nothing of what
//! is applied or sent next.
//!
//! A file's age is counted from its inode's last change (`ctime`): moving
//! a file into `done/` or `sent/` links it there, which sets it, whatever
//! the file's own modification time (a pair parked for a month is archived
//! today). Nobody can set a `ctime` back, so a file is never deleted
//! early; a `chmod` or a restore from a backup only makes it kept longer.
//! Dot-names are skipped (no archive has one; a temporary file of another
//! program might). A kill in the middle leaves the rest for the next pass.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::config::{Config, Transport};
use crate::outbound::publish::SENT;

/// How often the daemon looks for archives past their retention.
pub(super) const EVERY: Duration = Duration::from_secs(3600);

/// What one pass deleted in one folder.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pruned {
    pub(super) files: u64,
    pub(super) bytes: u64,
}

/// Deletes the regular files of `dir` (not its subfolders, links or
/// dot-names) whose inode last changed before `cutoff`. A folder that does
/// not exist holds nothing to delete.
pub(super) fn prune(dir: &Path, cutoff: SystemTime) -> io::Result<Pruned> {
    let cutoff = cutoff.duration_since(UNIX_EPOCH).map_or(i128::MIN, |d| {
        i128::try_from(d.as_nanos()).unwrap_or(i128::MAX)
    });
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Pruned::default()),
        Err(e) => return Err(e),
    };
    let mut pruned = Pruned::default();
    for entry in entries {
        let entry = entry?;
        if entry.file_name().as_encoded_bytes().starts_with(b".") {
            continue;
        }
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            // Gone meanwhile (another pass, a person).
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let changed = i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec());
        if !meta.file_type().is_file() || changed >= cutoff {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => {
                pruned.files += 1;
                pruned.bytes += meta.len();
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    if pruned.files > 0 {
        crate::transport::local::sync_dir(dir)?;
    }
    Ok(pruned)
}

/// The archive folders of every side `config` serves: each inbox's
/// `done/`, and each SFTP outbox's `sent/` (a local link has none: its
/// outbox is the peer's inbox).
pub(super) fn archives(config: &Config) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for (link, _, side) in config.served(None) {
        let folders = link.folders(side);
        dirs.push(folders.done);
        if matches!(link.transport, Transport::Sftp { .. }) {
            dirs.push(folders.outbox.join(SENT));
        }
    }
    dirs.sort();
    dirs.dedup();
    dirs
}

/// When the daemon last looked, so that a pass runs at most once per
/// [`EVERY`] (and at the first listing after the start).
#[derive(Debug, Default)]
pub(super) struct Retention {
    last: Option<Instant>,
}

impl Retention {
    /// Deletes what is past `[daemon] archive_days` in every archive
    /// folder, if it is on and a pass is due; logs each folder it deleted
    /// from, and each it could not read or write.
    pub(super) fn run(&mut self, config: &Config) {
        let days = config.daemon.archive_days;
        if days == 0 || self.last.is_some_and(|t| t.elapsed() < EVERY) {
            return;
        }
        self.last = Some(Instant::now());
        let cutoff = SystemTime::now()
            .checked_sub(Duration::from_secs(days.saturating_mul(86_400)))
            .unwrap_or(UNIX_EPOCH);
        for dir in archives(config) {
            match prune(&dir, cutoff) {
                Ok(p) if p.files > 0 => {
                    info!(folder = %dir.display(), files = p.files, bytes = p.bytes, archive_days = days,
                        "archived files deleted past their retention");
                }
                Ok(_) => {}
                Err(e) => {
                    warn!(folder = %dir.display(), error = %e,
                        "archived files past their retention not deleted: check the folder's permissions; tried again in an hour");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_archived_before_the_cutoff_go() {
        let dir = tempfile::tempdir().unwrap();
        let write =
            |name: &str, bytes: &[u8]| std::fs::write(dir.path().join(name), bytes).unwrap();
        write("opera-tourism.SALES.00000001.csv", b"12345");
        write("opera-tourism.SALES.00000001.stx", b"123");
        write(".opera-tourism.SALES.00000002.csv.part", b"old temp");
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("link")).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let cutoff = SystemTime::now();
        std::thread::sleep(Duration::from_millis(20));
        write("opera-tourism.SALES.00000002.stx", b"new");
        // A file written long ago but archived (linked) after the cutoff
        // is kept: its age is its archiving's.
        let old = dir.path().join("opera-tourism.SALES.00000001.csv");
        std::fs::hard_link(&old, dir.path().join("opera-tourism.SALES.00000009.csv")).unwrap();

        let none = prune(dir.path(), UNIX_EPOCH).unwrap();
        assert_eq!(none, Pruned::default());
        let pruned = prune(dir.path(), cutoff).unwrap();
        assert_eq!(pruned, Pruned { files: 1, bytes: 3 });
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".opera-tourism.SALES.00000002.csv.part",
                "link",
                "opera-tourism.SALES.00000001.csv",
                "opera-tourism.SALES.00000002.stx",
                "opera-tourism.SALES.00000009.csv",
                "sub"
            ]
        );
        assert!(Path::new("/etc/hostname").exists());
        // A missing folder holds nothing.
        assert_eq!(
            prune(&dir.path().join("missing"), cutoff).unwrap(),
            Pruned::default()
        );
    }

    #[test]
    fn the_archives_are_each_served_inboxs_done_and_each_sftp_outboxs_sent() {
        let root = std::fs::canonicalize(env!("CARGO_MANIFEST_DIR")).unwrap();
        let read = |name: &str| crate::config::load(&root.join("config").join(name)).unwrap();
        // The demo: one local link, both sides served, no sent/.
        let demo = read("stxd.toml");
        let exchange = root.join("var/exchange/opera-tourism");
        assert_eq!(
            archives(&demo),
            [
                exchange.join("to-distributor/done"),
                exchange.join("to-manager/done")
            ]
        );
        // A manager on SFTP: its inbox's done/ and its outbox's sent/.
        let manager = read("examples/manager-sftp.toml");
        let dirs = archives(&manager);
        assert_eq!(dirs.len(), 2, "{dirs:?}");
        assert!(dirs[0].ends_with("inbox/done"), "{dirs:?}");
        assert!(dirs[1].ends_with("outbox/sent"), "{dirs:?}");
    }
}
