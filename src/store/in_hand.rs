//! Which committed changes still have a live process finishing their file
//! step: the lock that keeps a listing from "finishing" what another
//! process is finishing itself.
//!
//! Two changes commit in the store first and then move files: an export
//! binds its sequence, then places its pair (`outbound::export`); an
//! incoming file is applied (or refused, or parked) with its journal row,
//! then archived into `done/`, `error/` or `parked/` (`inbound::archive`).
//! Between the two steps the store says the file step is due, exactly as
//! if the process had died there, and the store alone cannot tell the two
//! apart: ops run `stxd export` or `stxd mapping import` by hand while the
//! daemon lists every few seconds. So such a process holds a shared
//! advisory lock (`flock`) on `<store>.in-hand.lock` from before its
//! transaction until its files are in place ([`in_hand`]), and whoever
//! finishes a due step takes the exclusive lock first ([`settling`]):
//! granted, no process is between a commit and its file step, and every due
//! step is a crash's to finish; refused, a process is alive and finishes
//! its own.
//!
//! The kernel frees a lock when its process ends, however it ends, so a
//! killed process never keeps its step from being finished. The lock only
//! decides *who* finishes a step, never *whether* it is finished right:
//! both steps are idempotent (a name already holding the same bytes counts
//! as placed; a move already made is found made), so when the lock file
//! cannot be opened or locked (a read-only state directory, an exotic file
//! system) the process goes on without it, with a warning, and at worst two
//! processes finish the same step.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{StoreError, wait};

/// The lock file of the store at `store`: `<store>.in-hand.lock`.
pub fn lock_path(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".in-hand.lock");
    PathBuf::from(name)
}

/// Held by a process from before the transaction of a change until the
/// change's files are in place. Shared: other changes of the same store,
/// in this process or another, hold it beside it.
#[derive(Debug)]
pub struct InHand {
    _file: Option<File>,
}

/// Held while due file steps are finished: no process of the store is
/// between a commit and its file step meanwhile.
#[derive(Debug)]
pub struct Settling {
    _file: Option<File>,
}

/// Takes the shared lock for a change of the store at `store`, waiting
/// while due file steps are being finished.
pub fn in_hand(store: &Path) -> InHand {
    let file = open(store).and_then(|(file, path)| match file.lock_shared() {
        Ok(()) => Some(file),
        Err(e) => {
            unlocked(&path, &e);
            None
        }
    });
    InHand { _file: file }
}

/// Takes the exclusive lock to finish the due file steps of the store at
/// `store`; `None` when a process is in hand (a listing: that process
/// finishes its own).
pub fn settling(store: &Path) -> Option<Settling> {
    let Some((file, path)) = open(store) else {
        return Some(Settling { _file: None });
    };
    match file.try_lock() {
        Ok(()) => Some(Settling { _file: Some(file) }),
        Err(TryLockError::WouldBlock) => None,
        Err(TryLockError::Error(e)) => {
            unlocked(&path, &e);
            Some(Settling { _file: None })
        }
    }
}

/// As [`settling`], waiting for the processes in hand to finish their
/// steps: an export, which must place what precedes its own sequence. A
/// daemon applying a large file has its change in hand all along, so a
/// command (a process with a [`wait::Patience`]) waits as it waits for the
/// store's lock: up to its limit, told every [`wait::STEP`], then gives up
/// having begun nothing. The daemon waits until the lock is free, as its
/// exports always did: a command's change in hand ends with the command.
pub fn settling_waiting(store: &Path) -> Result<Settling, StoreError> {
    let Some((file, path)) = open(store) else {
        return Ok(Settling { _file: None });
    };
    let Some(patience) = wait::patience() else {
        return Ok(match file.lock() {
            Ok(()) => Settling { _file: Some(file) },
            Err(e) => {
                unlocked(&path, &e);
                Settling { _file: None }
            }
        });
    };
    let started = Instant::now();
    let mut told = Duration::ZERO;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Settling { _file: Some(file) }),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => {
                unlocked(&path, &e);
                return Ok(Settling { _file: None });
            }
        }
        let waited = started.elapsed();
        if waited >= patience.limit {
            return Err(StoreError::InHand);
        }
        if waited >= told + wait::STEP {
            told = waited;
            (patience.notice)(store, waited);
        }
        std::thread::sleep(POLL);
    }
}

/// How often a waiting export tries the lock again.
const POLL: Duration = Duration::from_millis(20);

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
        "cannot lock the in-hand lock file; going on without it (a committed file step may then be finished by two processes, which they allow)"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_in_hand_keeps_a_listing_from_settling_and_an_export_waits_for_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("TOURISM.sqlite");
        assert_eq!(
            lock_path(&store),
            dir.path().join("TOURISM.sqlite.in-hand.lock")
        );
        let a = in_hand(&store);
        // Two changes of one store hold the lock side by side.
        let b = in_hand(&store);
        assert!(settling(&store).is_none(), "a writer is alive");
        drop(a);
        assert!(settling(&store).is_none(), "one writer is left");
        drop(b);
        let settled = settling(&store).expect("no writer left");
        // While prepared exports are finished, a listing does not settle
        // beside it.
        assert!(settling(&store).is_none());
        drop(settled);
        // An export waits for the writer to place its pair, then settles.
        let w = in_hand(&store);
        let waiter = std::thread::spawn({
            let store = store.clone();
            move || settling_waiting(&store).is_ok()
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
