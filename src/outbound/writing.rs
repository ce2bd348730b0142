//! Which committed exports still have a live writer: the lock that keeps a
//! listing from "finishing" an export its own process is placing.
//!
//! An export binds its sequence in one transaction, then places its pair
//! (step 3 of [`super::export`]). Between the two it is *prepared* in the
//! store, exactly as if its process had died there; the store alone cannot
//! tell the two apart. So an export holds a shared advisory lock (`flock`)
//! on `<store>.exports.lock` from before that transaction until its pair is
//! placed, and whoever finishes prepared exports takes the exclusive lock
//! first: granted, no process is between a commit and its placement, and
//! every prepared export is a crash's to finish; refused, a writer is alive
//! and places its own pair.
//!
//! The kernel frees a lock when its process ends, however it ends, so a
//! killed writer never keeps its export from being finished. The lock only
//! decides *who* places a pair, never *whether* it is placed right: placing
//! is idempotent (a name already holding the same bytes counts as placed),
//! so when the lock file cannot be opened or locked (a read-only state
//! directory, an exotic file system) the export goes on without it, with a
//! warning, and at worst two processes place the same bytes.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The lock file of the store at `store`: `<store>.exports.lock`.
pub fn lock_path(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".exports.lock");
    PathBuf::from(name)
}

/// Held by an export from before the transaction that binds its sequence
/// until its pair is placed. Shared: exports of other kinds and links of
/// the same store hold it beside it.
#[derive(Debug)]
pub struct Writing {
    _file: Option<File>,
}

/// Held while prepared exports are finished: no export of the store is
/// between its commit and its placement meanwhile.
#[derive(Debug)]
pub struct Settling {
    _file: Option<File>,
}

/// Takes the shared lock for an export of the store at `store`, waiting
/// while prepared exports are being finished.
pub fn writing(store: &Path) -> Writing {
    let file = open(store).and_then(|(file, path)| match file.lock_shared() {
        Ok(()) => Some(file),
        Err(e) => {
            unlocked(&path, &e);
            None
        }
    });
    Writing { _file: file }
}

/// Takes the exclusive lock to finish the prepared exports of the store at
/// `store`. `wait`: wait for the exports being written to place their
/// pairs (an export that must finish what precedes its own sequence);
/// otherwise `None` when one is being written (a listing: that export's
/// process places its pair itself).
pub fn settling(store: &Path, wait: bool) -> Option<Settling> {
    let Some((file, path)) = open(store) else {
        return Some(Settling { _file: None });
    };
    let locked = if wait {
        file.lock().map_err(TryLockError::Error)
    } else {
        file.try_lock()
    };
    match locked {
        Ok(()) => Some(Settling { _file: Some(file) }),
        Err(TryLockError::WouldBlock) => None,
        Err(TryLockError::Error(e)) => {
            unlocked(&path, &e);
            Some(Settling { _file: None })
        }
    }
}

fn open(store: &Path) -> Option<(File, PathBuf)> {
    let path = lock_path(store);
    match OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
    {
        Ok(file) => Some((file, path)),
        Err(e) => {
            unlocked(&path, &e);
            None
        }
    }
}

fn unlocked(path: &Path, e: &std::io::Error) {
    tracing::warn!(
        lock = %path.display(),
        error = %e,
        "cannot lock the exports' lock file; going on without it (a committed export may then be placed by two processes, with the same bytes)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writer_keeps_a_listing_from_settling_and_an_export_waits_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("TOURISM.sqlite");
        assert_eq!(
            lock_path(&store),
            dir.path().join("TOURISM.sqlite.exports.lock")
        );
        let a = writing(&store);
        // Two writers of one store hold the lock side by side.
        let b = writing(&store);
        assert!(settling(&store, false).is_none(), "a writer is alive");
        drop(a);
        assert!(settling(&store, false).is_none(), "one writer is left");
        drop(b);
        let settled = settling(&store, false).expect("no writer left");
        // While prepared exports are finished, a listing does not settle
        // beside it.
        assert!(settling(&store, false).is_none());
        drop(settled);
        // An export waits for the writer to place its pair, then settles.
        let w = writing(&store);
        let waiter = std::thread::spawn({
            let store = store.clone();
            move || settling(&store, true).is_some()
        });
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!waiter.is_finished(), "the export waits for the writer");
        drop(w);
        assert!(waiter.join().unwrap());
        let mode = std::fs::metadata(lock_path(&store)).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
    }
}
