//! The local file system as a transport: opening files safely, placing them
//! without ever replacing another, and making folder changes durable.
//!
//! These are the primitives every stage that touches a folder uses (claim,
//! publish, archive, master-data loading, trigger files), so the rules for
//! opening safely and for durable folder changes are written once. A name
//! is placed by hard link and the old one removed by its caller, never by a
//! rename that could replace a file: between the two steps both names hold
//! the same inode, which [`same_file`] recognises, so whoever finishes a move
//! a crash cut can tell its own second link from someone else's file. Nothing
//! here knows what a file means.

use std::fs::File;
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use sha2::{Digest, Sha256};

/// Why a path was not opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The path is not something stxd reads (permanent), with a stable code.
    #[error("{problem}")]
    Refused { code: &'static str, problem: String },
    /// Could not be opened now (transient).
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// Opens a path for reading if and only if it is a regular file with a single
/// link and at most `max` bytes; never follows a symlink, never blocks (a
/// FIFO cannot hang the caller). Returns the handle and the size; later reads
/// go through the handle, so a file swapped afterwards is not the one read.
pub fn open_regular(path: &Path, max: u64) -> Result<(File, u64), OpenError> {
    open_limited(path, max, true)
}

/// [`open_regular`] for a file that may have a second hard link of our own
/// (a move a crash cut between its link and its unlink): any link count.
/// Only for files the caller recognises otherwise; a new file goes through
/// [`open_regular`].
pub fn open_regular_linked(path: &Path, max: u64) -> Result<(File, u64), OpenError> {
    open_limited(path, max, false)
}

fn open_limited(path: &Path, max: u64, one_link: bool) -> Result<(File, u64), OpenError> {
    let refuse = |code: &'static str, problem: String| OpenError::Refused { code, problem };
    let (file, meta) = open_file(path)?;
    if one_link && meta.nlink() != 1 {
        return Err(refuse(
            "hard-link",
            format!(
                "refused a file with {} hard links: copy or move the file in, do not link it",
                meta.nlink()
            ),
        ));
    }
    if meta.len() > max {
        return Err(refuse(
            "too-large",
            format!("expected at most {max} bytes, found {}", meta.len()),
        ));
    }
    Ok((file, meta.len()))
}

/// Opens a path for reading without following a symlink or blocking, if it
/// is a regular file (any number of links, any size).
fn open_file(path: &Path) -> Result<(File, std::fs::Metadata), OpenError> {
    let refuse = |code: &'static str, problem: String| OpenError::Refused { code, problem };
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(refuse(
                "symlink",
                "refused a symbolic link: drop the file itself, not a link to it".into(),
            ));
        }
        Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
            return Err(refuse(
                "not-regular",
                "refused a socket or FIFO: expected a regular file".into(),
            ));
        }
        Err(e) => return Err(OpenError::Io(e)),
    };
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(refuse(
            "not-regular",
            "refused: expected a regular file, found a directory, FIFO, socket or device".into(),
        ));
    }
    Ok((file, meta))
}

/// What [`link_new`] found at the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// The target did not exist; it now names the source's content.
    Linked,
    /// The target already held the same bytes.
    Same,
    /// The target holds other bytes; nothing was changed.
    Other,
}

/// Gives `source` the name `target` unless `target` exists: a hard link fails
/// on an existing name where a rename would replace it. The source name is
/// left for the caller to remove. An existing `target` is [`Placed::Same`]
/// when it is the source's own inode (a link placed before a crash) or holds
/// the same bytes.
pub fn link_new(source: &Path, target: &Path) -> io::Result<Placed> {
    match std::fs::hard_link(source, target) {
        Ok(()) => Ok(Placed::Linked),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match compare(source, target)? {
            Found::Same => Ok(Placed::Same),
            Found::Nothing | Found::Other => Ok(Placed::Other),
        },
        Err(e) => Err(e),
    }
}

/// [`link_new`], or [`rename_new`] where the kernel refuses the link:
/// Linux's `fs.protected_hardlinks` (on by default) forbids a hard link to a
/// file its caller neither owns nor may write, such as a pair the peer's own
/// account uploaded into a share it reads through a group. After a rename
/// the source name is gone already, which removing it next tolerates
/// ([`remove_name`]).
pub fn link_or_rename_new(source: &Path, target: &Path) -> io::Result<Placed> {
    match link_new(source, target) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => rename_new(source, target),
        other => other,
    }
}

/// Renames `source` to `target` unless `target` exists, atomically: the file
/// never has two names (a reader that refuses hard-linked files never sees
/// it linked), and a crash leaves it under one name or the other. An
/// existing target is compared by content ([`Placed::Same`] leaves the
/// source for the caller to remove). On a file system without
/// `RENAME_NOREPLACE`, falls back to [`link_new`] then removing the source.
#[allow(unsafe_code)]
pub fn rename_new(source: &Path, target: &Path) -> io::Result<Placed> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in a path"))
    };
    let (from, to) = (c(source)?, c(target)?);
    // SAFETY: both pointers come from live, NUL-terminated CStrings that
    // outlive the call; AT_FDCWD makes the paths relative to the working
    // directory as for any std::fs call; renameat2 writes no memory of ours.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(Placed::Linked);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EEXIST) => match compare(source, target)? {
            Found::Same => Ok(Placed::Same),
            Found::Nothing | Found::Other => Ok(Placed::Other),
        },
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP) => {
            let placed = link_new(source, target)?;
            if placed == Placed::Linked {
                std::fs::remove_file(source)?;
            }
            Ok(placed)
        }
        _ => Err(e),
    }
}

/// What a name holds, compared with a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// No entry under that name.
    Nothing,
    /// The source's own inode, or a regular file with the same bytes.
    Same,
    /// Anything else.
    Other,
}

/// Compares what `target` holds with `source`, as [`link_new`] would, without
/// placing anything. Only regular files are compared by content (opened
/// without following a link or blocking on a FIFO); a symlink, FIFO or
/// folder is the same only as its own inode.
pub fn compare(source: &Path, target: &Path) -> io::Result<Found> {
    let target_meta = match std::fs::symlink_metadata(target) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(e) => return Err(e),
    };
    let source_meta = std::fs::symlink_metadata(source)?;
    if (source_meta.dev(), source_meta.ino()) == (target_meta.dev(), target_meta.ino()) {
        return Ok(Found::Same);
    }
    if source_meta.len() != target_meta.len() {
        return Ok(Found::Other);
    }
    match (regular_digest(source)?, regular_digest(target)?) {
        (Some(a), Some(b)) if a == b => Ok(Found::Same),
        _ => Ok(Found::Other),
    }
}

/// Whether two names are one inode (both exist and are hard links of each
/// other); never follows a symlink.
pub fn same_file(a: &Path, b: &Path) -> io::Result<bool> {
    let (a, b) = match (std::fs::symlink_metadata(a), std::fs::symlink_metadata(b)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    Ok((a.dev(), a.ino()) == (b.dev(), b.ino()))
}

/// The SHA-256 of a regular file's content; `None` when `path` is missing or
/// not a regular file (never followed nor blocked on).
pub fn digest_of(path: &Path) -> io::Result<Option<[u8; 32]>> {
    match regular_digest(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        other => other,
    }
}

/// Removes a name, durably once the caller syncs its folder; a name already
/// gone is not an error (another stxd process, or the step before a crash,
/// removed it).
pub fn remove_name(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// SHA-256 of a regular file's content; `None` for a symlink, FIFO, socket,
/// device or folder (never opened in a way that follows or blocks).
fn regular_digest(path: &Path) -> io::Result<Option<[u8; 32]>> {
    let mut file = match open_file(path) {
        Ok((file, _)) => file,
        Err(OpenError::Refused { .. }) => return Ok(None),
        Err(OpenError::Io(e)) => return Err(e),
    };
    let mut hasher = Sha256::new();
    io::copy(&mut file, &mut hasher)?;
    Ok(Some(hasher.finalize().into()))
}

/// Makes a folder's entries (new names, removed names) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: Result<(File, u64), OpenError>) -> &'static str {
        match r {
            Err(OpenError::Refused { code, .. }) => code,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    #[allow(unsafe_code)]
    fn only_single_link_regular_files_open() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"data").unwrap();
        assert_eq!(open_regular(&file, 10).unwrap().1, 4);
        assert_eq!(code(open_regular(&file, 3)), "too-large");

        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(code(open_regular(&link, 10)), "symlink");

        assert_eq!(code(open_regular(dir.path(), 10)), "not-regular");

        let fifo = dir.path().join("p");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert_eq!(code(open_regular(&fifo, 10)), "not-regular");

        std::fs::hard_link(&file, dir.path().join("h")).unwrap();
        assert_eq!(code(open_regular(&file, 10)), "hard-link");
    }

    #[test]
    fn linking_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        std::fs::write(&a, "x").unwrap();
        std::fs::write(&c, "y").unwrap();
        assert_eq!(link_new(&a, &b).unwrap(), Placed::Linked);
        assert_eq!(link_new(&a, &b).unwrap(), Placed::Same);
        assert_eq!(link_new(&a, &c).unwrap(), Placed::Other);
        assert_eq!(std::fs::read_to_string(&c).unwrap(), "y");
    }

    #[test]
    #[allow(unsafe_code)]
    fn a_fifo_or_symlink_at_the_target_is_other_and_never_opened() {
        let dir = tempfile::tempdir().unwrap();
        let (src, fifo, link) = (
            dir.path().join("s"),
            dir.path().join("f"),
            dir.path().join("l"),
        );
        std::fs::write(&src, "x").unwrap();
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        std::os::unix::fs::symlink(&src, &link).unwrap();
        // Would block forever if the FIFO were opened for reading.
        assert_eq!(link_new(&src, &fifo).unwrap(), Placed::Other);
        // Same bytes behind the link, but a link is not the file.
        assert_eq!(link_new(&src, &link).unwrap(), Placed::Other);
    }
}
