//! The lock of a state directory: one daemon per state directory (and no
//! `stxd poll` or `stxd trigger --now` beside it), and the probe that tells
//! `stxd status` and `stxd trigger` whether a daemon runs.
//!
//! The lock is `<state_dir>/stxd.lock`, locked exclusively by its holder
//! for as long as it runs, with the holder's pid written inside. It is an
//! advisory lock of the open file (`flock`, through std's
//! [`File::try_lock`] and [`File::try_lock_shared`]): the kernel frees it
//! when the holder's file closes, however the process ends, so a killed
//! daemon never leaves a stale lock. A probe takes a shared lock for an
//! instant: refused, a daemon holds the exclusive one.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The lock file of `state_dir`.
pub fn path(state_dir: &Path) -> PathBuf {
    state_dir.join("stxd.lock")
}

/// The exclusive lock of a state directory, held while this value lives.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
    path: PathBuf,
}

impl StateLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Why the state directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot create {}", .dir.display())]
    CreateDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the lock file {}", .path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Another process holds the lock: its pid as it wrote it (`unknown`
    /// when it wrote none yet).
    #[error(
        "another stxd is running on {} (pid {pid}); lock file {}",
        .state_dir.display(),
        .path.display()
    )]
    Held {
        state_dir: PathBuf,
        pid: String,
        path: PathBuf,
    },
    #[error("cannot lock {}", .path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}", .path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// How many times [`lock`] tries before it says another process holds the
/// lock, and how long it waits between two tries: a probe holds its shared
/// lock for an instant, and must not make a starting daemon give up.
const TRIES: u32 = 5;
const BETWEEN_TRIES: Duration = Duration::from_millis(20);

/// Takes the exclusive lock on `<state_dir>/stxd.lock` (creating the
/// directory, mode 0700, and the file, mode 0600) and writes this process's
/// id into it. Fails naming the state directory and the holder's pid when
/// another process holds it.
pub fn lock(state_dir: &Path) -> Result<StateLock, LockError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .map_err(|source| LockError::CreateDir {
            dir: state_dir.to_owned(),
            source,
        })?;
    let path = path(state_dir);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|source| LockError::Open {
            path: path.clone(),
            source,
        })?;
    let mut tries = 1;
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) if tries < TRIES => {
                tries += 1;
                std::thread::sleep(BETWEEN_TRIES);
            }
            Err(TryLockError::WouldBlock) => {
                let pid = holder_pid(&mut file);
                return Err(LockError::Held {
                    state_dir: state_dir.to_owned(),
                    pid: pid.unwrap_or_else(|| "unknown".to_owned()),
                    path,
                });
            }
            Err(TryLockError::Error(source)) => return Err(LockError::Lock { path, source }),
        }
    }
    let write = |file: &mut File| -> std::io::Result<()> {
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{}", std::process::id())?;
        file.sync_all()
    };
    write(&mut file).map_err(|source| LockError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(StateLock { _file: file, path })
}

/// What a probe of the lock found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// No process holds the lock (or there is no lock file yet).
    Free,
    /// A process holds it: a daemon, a `stxd poll` or a `--now` job; its
    /// pid when the file holds one.
    Held { pid: Option<u32> },
    /// The lock could not be probed: why, and what to do.
    Unknown { problem: String },
}

/// Probes `<state_dir>/stxd.lock` without holding it: a shared,
/// non-blocking lock that is refused means another process holds the
/// exclusive one (its pid is in the file); one that is granted is released
/// at once. Creates nothing.
pub fn probe(state_dir: &Path) -> Probe {
    let path = path(state_dir);
    let mut file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Probe::Free,
        Err(e) => {
            return Probe::Unknown {
                problem: format!(
                    "cannot open {}: {e}; run status as stxd's user",
                    path.display()
                ),
            };
        }
    };
    match file.try_lock_shared() {
        Ok(()) => {
            // Closing the file would release it too; say so explicitly.
            let _ = file.unlock();
            Probe::Free
        }
        Err(TryLockError::WouldBlock) => Probe::Held {
            pid: holder_pid(&mut file).and_then(|pid| pid.parse().ok()),
        },
        Err(TryLockError::Error(e)) => Probe::Unknown {
            problem: format!("cannot probe the lock {}: {e}", path.display()),
        },
    }
}

/// The pid the holder wrote in the lock file, as written; `None` when the
/// file is empty (a holder that has not written it yet) or unreadable.
fn holder_pid(file: &mut File) -> Option<String> {
    let mut text = String::new();
    let _ = file.rewind();
    let _ = Read::by_ref(file).take(32).read_to_string(&mut text);
    let pid = text.trim();
    (!pid.is_empty()).then(|| pid.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lock as lock_state_dir;

    #[test]
    fn a_second_lock_on_the_same_state_dir_is_refused_with_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let first = lock_state_dir(&state).unwrap();
        let pid = std::fs::read_to_string(first.path()).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());
        let e = lock_state_dir(&state).unwrap_err().to_string();
        assert!(e.contains("another stxd is running on"), "{e}");
        assert!(e.contains(&format!("(pid {})", std::process::id())), "{e}");
        let seen = crate::status::daemon_state(&state);
        assert!(seen.running);
        assert_eq!(seen.pid, Some(std::process::id()));
        drop(first);
        assert!(!crate::status::daemon_state(&state).running);
        lock_state_dir(&state).expect("free again once the holder is gone");
    }

    #[test]
    fn a_probe_creates_nothing_and_leaves_nothing_held() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        assert_eq!(probe(&state), Probe::Free, "no lock file yet");
        assert!(!state.exists(), "a probe creates nothing");
        let held = lock(&state).unwrap();
        assert_eq!(
            probe(&state),
            Probe::Held {
                pid: Some(std::process::id())
            }
        );
        drop(held);
        assert_eq!(probe(&state), Probe::Free);
        lock(&state).expect("lock free after probing");
        std::fs::remove_file(path(&state)).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", path(&state)).unwrap();
        assert!(
            matches!(probe(&state), Probe::Unknown { .. }),
            "a symlinked lock file is not followed"
        );
        assert!(lock(&state).is_err(), "nor taken");
    }
}
