//! Archive: move a handled pair out of the way, durably, once its fate is
//! recorded; and finish such a move when a crash cut it.
//!
//! Takes a [`Pair`] (a manifest and, beside it, its payload) and a
//! destination: `done/` or `parked/` ([`move_pair`]), or `error/` with the
//! reason ([`reject_pair`]); returns the manifest's new path. Each file moves
//! by hard link then unlink of the old name, never replacing a file already
//! in the destination; the payload moves first and the manifest last, each
//! step made durable (the folders synced) before the next. While a move is
//! unfinished its manifest is still where it was listed, so the next listing
//! takes the pair again, [`super::recover`] says which move is due, and this
//! stage finishes it: every step finds its work done (the payload already
//! there, a second link that is the file's own inode) and goes on. Both files
//! of a pair keep one suffix (`name`, then `name.1`, `name.2`…: the first
//! slot where neither name holds other content). A rejected pair's
//! `<manifest>.reason` is written first, before anything moves, and names the
//! manifest (inode, size, modification time), so a rejection a crash cut is
//! finished into the same slot, beside its reason. This stage only moves
//! files; what they meant is already in the store (or in the reason).

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::InboundError;
use crate::failpoint;
use crate::transport::local::{self, Found, Placed, sync_dir};

/// A manifest and the payload its name pairs it with, in one folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub manifest: PathBuf,
    /// `None` when the manifest's name does not follow the pattern (a file
    /// given by hand): only the manifest moves.
    pub payload: Option<PathBuf>,
}

impl Pair {
    /// The pair of a manifest path (its payload found beside it by name).
    pub fn of(manifest: &Path) -> Pair {
        Pair {
            manifest: manifest.to_owned(),
            payload: payload_of(manifest),
        }
    }

    /// The same names in `dir`.
    pub fn in_folder(&self, dir: &Path) -> Pair {
        let moved = |p: &Path| {
            p.file_name()
                .map_or_else(|| dir.to_owned(), |n| dir.join(n))
        };
        Pair {
            manifest: moved(&self.manifest),
            payload: self.payload.as_deref().map(moved),
        }
    }

    /// The folder the pair is in.
    pub fn folder(&self) -> &Path {
        match self.manifest.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        }
    }

    /// Whether the pair is in `dir` (the same folder, however it is spelt:
    /// a relative and an absolute path compare equal).
    pub fn is_in(&self, dir: &Path) -> bool {
        let id = |p: &Path| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
        self.folder() == dir || id(self.folder()).is_some_and(|a| Some(a) == id(dir))
    }

    /// The pair as it stands on disk now: see [`Stamp`].
    pub fn stamp(&self) -> Stamp {
        let id = |p: &Path| FileId::of(p).ok();
        Stamp(id(&self.manifest), self.payload.as_deref().and_then(id))
    }

    /// The payload, if it is (still) beside the manifest.
    fn payload_here(&self) -> io::Result<Option<&Path>> {
        match &self.payload {
            Some(p) if present(p)? => Ok(Some(p)),
            _ => Ok(None),
        }
    }
}

/// Moves `pair` into `dest` (`done/` or `parked/`), payload first, manifest
/// last, or finishes that move when an earlier one was cut: a payload no
/// longer beside its manifest is found in `dest` by `payload_sha256` (the
/// digest its manifest announces). Returns the manifest's new path.
pub fn move_pair(
    pair: &Pair,
    dest: &Path,
    payload_sha256: Option<&[u8; 32]>,
) -> io::Result<PathBuf> {
    make_folder(dest)?;
    let moved = pair
        .payload_here()
        .and_then(|payload| {
            let slot = slot_for(pair, payload, dest, payload_sha256)?;
            move_at(pair, payload, dest, slot)
        })
        .or_else(|e| taken_meanwhile(pair, dest, e))?;
    Ok(moved)
}

/// Moves a rejected `pair` into `error_dir`, its `<manifest>.reason` written
/// (durably) before anything moves. A rejection of this very manifest already
/// started (its reason there, the move cut by a crash or being finished by
/// another stxd process) is finished into its slot, its reason kept.
pub fn reject_pair(pair: &Pair, error_dir: &Path, error: &InboundError) -> io::Result<PathBuf> {
    make_folder(error_dir)?;
    let slot = match rejection_slot(pair, error_dir) {
        Ok(Some(slot)) => slot,
        Ok(None) => {
            let slot = free_slot(pair, error_dir)?;
            if let Err(e) = write_reason(pair, &slotted(error_dir, &pair.manifest, slot), error) {
                return taken_meanwhile(pair, error_dir, e);
            }
            failpoint::hit("archive.reason-written");
            slot
        }
        Err(e) => return taken_meanwhile(pair, error_dir, e),
    };
    finish_rejection(pair, error_dir, slot)
}

/// Finishes the rejection whose `.reason` is at `slot` of `error_dir` (see
/// [`rejection_slot`]).
pub fn finish_rejection(pair: &Pair, error_dir: &Path, slot: u32) -> io::Result<PathBuf> {
    let manifest = slotted(error_dir, &pair.manifest, slot);
    // A reason's write cut between its link and its unlink left this name.
    local::remove_name(&temporary(&reason_path(&manifest)))
        .and_then(|()| pair.payload_here())
        .and_then(|payload| move_at(pair, payload, error_dir, slot))
        .or_else(|e| taken_meanwhile(pair, error_dir, e))
}

/// The slot of `error_dir` whose `.reason` names this very manifest (same
/// inode, size and modification time): a rejection that started before.
/// `None` for a manifest no reason names (or that is gone).
pub fn rejection_slot(pair: &Pair, error_dir: &Path) -> io::Result<Option<u32>> {
    let id = match FileId::of(&pair.manifest) {
        Ok(id) => id.to_string(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    for slot in 0.. {
        let manifest = slotted(error_dir, &pair.manifest, slot);
        let reason = reason_path(&manifest);
        if !present(&reason)? {
            if !occupied(pair, error_dir, slot)? {
                break;
            }
            continue;
        }
        if named_id(&reason)?.as_deref() == Some(id.as_str()) {
            return Ok(Some(slot));
        }
    }
    Ok(None)
}

/// The `.reason` file of a manifest path.
pub fn reason_path(manifest: &Path) -> PathBuf {
    let mut name = manifest.as_os_str().to_owned();
    name.push(".reason");
    PathBuf::from(name)
}

/// The payload path of a manifest path, from its name (it may be missing).
pub fn payload_of(manifest: &Path) -> Option<PathBuf> {
    let name = manifest.file_name()?.to_str()?;
    let name = crate::exchange::FileName::parse_manifest(name).ok()?;
    Some(manifest.with_file_name(name.to_payload().to_string()))
}

/// An archived name split into the exchange name it stands for and its
/// slot: `x.SALES.00000001.stx.2` is slot 2 of `x.SALES.00000001.stx`;
/// `None` for a name that is neither (a `.reason`, a stranger).
pub fn unslotted(name: &str) -> Option<(crate::exchange::FileName, u32)> {
    use crate::exchange::FileName;
    if let Ok(n) = FileName::parse(name) {
        return Some((n, 0));
    }
    let (base, slot) = name.rsplit_once('.')?;
    if slot.is_empty() || !slot.bytes().all(|b| b.is_ascii_digit()) || slot.starts_with('0') {
        return None;
    }
    Some((FileName::parse(base).ok()?, slot.parse().ok()?))
}

/// The archived pair at `slot` of `dir` for the file named `name` (its
/// manifest and payload names with the slot's suffix).
pub fn archived(dir: &Path, name: &crate::exchange::FileName, slot: u32) -> Pair {
    let at = |n: crate::exchange::FileName| slotted(dir, Path::new(&n.to_string()), slot);
    Pair {
        manifest: at(name.to_manifest()),
        payload: Some(at(name.to_payload())),
    }
}

/// Puts an archived pair (from `error/` or `quarantine/`, at any slot)
/// back into `inbox` under its own names, for another try. Its `.reason`
/// goes first (the caller recorded its words in the retry's run before),
/// then the payload, then the manifest (a listing never takes a payload
/// alone), each moved by an atomic rename that never replaces a file (the
/// same bytes already there count as moved), each step made durable before
/// the next. A file never has two names, so a crash never leaves a
/// hard-linked file for a listing to refuse. A cut retry leaves the pair
/// whole in the inbox, or its manifest (alone, or with its payload and no
/// `.reason`) still archived: running the retry again finishes it. Returns
/// the manifest's path in the inbox.
pub fn restore_pair(pair: &Pair, inbox: &Path) -> io::Result<PathBuf> {
    let name = pair
        .manifest
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(unslotted)
        .map(|(n, _)| n.to_manifest())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not an archived manifest", pair.manifest.display()),
            )
        })?;
    let source = pair.folder().to_owned();
    make_folder(inbox)?;
    local::remove_name(&reason_path(&pair.manifest))?;
    sync_dir(&source)?;
    failpoint::hit("retry.reason-removed");
    if let Some(from) = pair.payload_here()? {
        rename_back(from, &inbox.join(name.to_payload().to_string()))?;
        sync_dir(inbox)?;
        sync_dir(&source)?;
        failpoint::hit("retry.payload-moved");
    }
    let to = inbox.join(name.to_string());
    rename_back(&pair.manifest, &to)?;
    sync_dir(inbox)?;
    sync_dir(&source)?;
    Ok(to)
}

/// Renames `from` to `to` unless `to` holds other bytes; the same bytes
/// already there (a move finished before a crash by another name) count as
/// moved, and `from` is removed.
fn rename_back(from: &Path, to: &Path) -> io::Result<()> {
    match local::rename_new(from, to)? {
        Placed::Linked => Ok(()),
        Placed::Same => local::remove_name(from),
        Placed::Other => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} holds other content and is never replaced: move it out of the way, then retry again",
                to.display()
            ),
        )),
    }
}

/// `file`'s name in `dir` at `slot`: the name itself for 0, else
/// `<name>.<slot>`.
fn slotted(dir: &Path, file: &Path, slot: u32) -> PathBuf {
    let mut name: OsString = file.file_name().unwrap_or(file.as_os_str()).to_owned();
    if slot > 0 {
        name.push(format!(".{slot}"));
    }
    dir.join(name)
}

/// Whether any name of the pair's `slot` in `dir` exists (manifest, payload,
/// reason).
fn occupied(pair: &Pair, dir: &Path, slot: u32) -> io::Result<bool> {
    let manifest = slotted(dir, &pair.manifest, slot);
    if present(&manifest)? || present(&reason_path(&manifest))? {
        return Ok(true);
    }
    match &pair.payload {
        Some(p) => present(&slotted(dir, p, slot)),
        None => Ok(false),
    }
}

/// The first slot of `error_dir` where none of the pair's names exists: a
/// rejection never shares its reason with another.
fn free_slot(pair: &Pair, error_dir: &Path) -> io::Result<u32> {
    let mut slot = 0;
    while occupied(pair, error_dir, slot)? {
        slot += 1;
    }
    Ok(slot)
}

/// The slot of `dest` for `pair`: where a cut move already linked the
/// manifest; else where it already placed the payload (the slot holding the
/// announced digest, when the payload is no longer beside the manifest);
/// else the first slot where both names are free or hold the same files.
fn slot_for(
    pair: &Pair,
    payload: Option<&Path>,
    dest: &Path,
    payload_sha256: Option<&[u8; 32]>,
) -> io::Result<u32> {
    let manifest_at = |slot| slotted(dest, &pair.manifest, slot);
    let payload_at = |slot| pair.payload.as_deref().map(|p| slotted(dest, p, slot));
    let mut slot = 0;
    while occupied(pair, dest, slot)? {
        if local::same_file(&pair.manifest, &manifest_at(slot))? {
            return Ok(slot);
        }
        slot += 1;
    }
    if payload.is_none()
        && let Some(sha) = payload_sha256
    {
        let mut slot = 0;
        while occupied(pair, dest, slot)? {
            if let Some(at) = payload_at(slot)
                && local::digest_of(&at)?.as_ref() == Some(sha)
                && local::compare(&pair.manifest, &manifest_at(slot))? != Found::Other
            {
                return Ok(slot);
            }
            slot += 1;
        }
    }
    let mut slot = 0;
    loop {
        let manifest_fits = local::compare(&pair.manifest, &manifest_at(slot))? != Found::Other;
        let payload_fits = match (payload, payload_at(slot)) {
            (Some(from), Some(at)) => local::compare(from, &at)? != Found::Other,
            (None, Some(at)) => !present(&at)?,
            (_, None) => true,
        };
        if manifest_fits && payload_fits {
            return Ok(slot);
        }
        slot += 1;
    }
}

/// The steps of a move into `slot` of `dest`, each durable before the next:
/// the payload (when still beside the manifest), then the manifest.
fn move_at(pair: &Pair, payload: Option<&Path>, dest: &Path, slot: u32) -> io::Result<PathBuf> {
    let source = pair.folder();
    // Linking a file to its own name and removing the old one would lose it.
    if pair.is_in(dest) {
        return Ok(pair.manifest.clone());
    }
    if let Some(from) = payload {
        let to = slotted(dest, from, slot);
        if std::fs::symlink_metadata(from)?.is_file() {
            place(from, &to)?;
            sync_dir(dest)?;
            local::remove_name(from)?;
        } else {
            // A folder, symlink, FIFO or socket under the payload's name
            // (a refused pair) cannot be hard-linked: it moves by one
            // rename, which never replaces and never leaves two names.
            match local::rename_new(from, &to)? {
                Placed::Linked => {}
                Placed::Same | Placed::Other => {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        format!(
                            "{} is taken and is never replaced: move it out of the way and the next listing finishes the move",
                            to.display()
                        ),
                    ));
                }
            }
            sync_dir(dest)?;
        }
        sync_dir(source)?;
    }
    failpoint::hit("archive.payload-moved");
    let target = slotted(dest, &pair.manifest, slot);
    place(&pair.manifest, &target)?;
    sync_dir(dest)?;
    local::remove_name(&pair.manifest)?;
    failpoint::hit("archive.manifest-moved");
    sync_dir(source)?;
    Ok(target)
}

/// Links `from` as `to` (renames it where the kernel refuses the link: a
/// file another account uploaded); `to` may already be `from` (a link a
/// crash left) or hold the same bytes.
fn place(from: &Path, to: &Path) -> io::Result<()> {
    match local::link_or_rename_new(from, to)? {
        Placed::Linked | Placed::Same => Ok(()),
        Placed::Other => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} holds other content and is never replaced: move it out of the way and the next listing finishes the move",
                to.display()
            ),
        )),
    }
}

/// A move that failed because the manifest left meanwhile was finished by
/// another stxd process that handled the file too (the journal made sure
/// only one applied it).
fn taken_meanwhile(pair: &Pair, dest: &Path, e: io::Error) -> io::Result<PathBuf> {
    if e.kind() == io::ErrorKind::NotFound && !present(&pair.manifest)? {
        return Ok(slotted(dest, &pair.manifest, 0));
    }
    Err(e)
}

/// Creates a destination folder, durably, when it is missing.
fn make_folder(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    match dir.parent() {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

/// Whether a name exists (without following a symlink).
fn present(path: &Path) -> io::Result<bool> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// A pair as it stood on disk: each file's [`FileId`] (none for a name
/// not there). Two stamps of one pair differ once either file was
/// replaced, rewritten or touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp(Option<FileId>, Option<FileId>);

/// What names one file across its hard links: its inode, size and
/// modification time (an inode number alone may be reused once freed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl FileId {
    fn of(path: &Path) -> io::Result<FileId> {
        let m = std::fs::symlink_metadata(path)?;
        Ok(FileId {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec(),
        })
    }
}

impl std::fmt::Display for FileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}.{:09}",
            self.dev, self.ino, self.size, self.mtime, self.mtime_nsec
        )
    }
}

/// The line of a `.reason` naming the manifest it explains (the last one:
/// written after every other line, so no quoted text can stand for it).
const ID_LINE: &str = "manifest-id: ";

/// The manifest a `.reason` names (its last `manifest-id:` line).
fn named_id(reason: &Path) -> io::Result<Option<String>> {
    let mut text = String::new();
    match std::fs::File::open(reason) {
        Ok(file) => {
            // A reason is a few lines; anything longer is not ours.
            let _ = file.take(64 * 1024).read_to_string(&mut text);
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    }
    Ok(text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix(ID_LINE))
        .map(str::to_owned))
}

/// The private name a file is written under before it is linked to `path`.
fn temporary(path: &Path) -> PathBuf {
    let mut name = OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(".part");
    path.with_file_name(name)
}

/// Writes `<moved_manifest>.reason` durably (a private temporary name,
/// synced, linked to the final name, never replacing one, the folder synced),
/// naming the manifest it explains.
fn write_reason(pair: &Pair, moved_manifest: &Path, error: &InboundError) -> io::Result<()> {
    let path = reason_path(moved_manifest);
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut text = format!(
        "file: {}\ncode: {}\nreason: {error}\nat: {}\n",
        moved_manifest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        error.code(),
        crate::store::now(),
    );
    if let Some(position) = error.position() {
        text.push_str(&format!("position: {position}\n"));
    }
    text.push_str(&format!("{ID_LINE}{}\n", FileId::of(&pair.manifest)?));
    let tmp = temporary(&path);
    let written = std::fs::File::create(&tmp).and_then(|mut file| {
        file.write_all(text.as_bytes())?;
        file.sync_all()
    });
    if let Err(e) = written {
        // A full disk: the file stays in its folder, nothing is left here.
        let _ = local::remove_name(&tmp);
        return Err(io::Error::new(
            e.kind(),
            format!("cannot write {}: {e}", tmp.display()),
        ));
    }
    let placed = local::link_new(&tmp, &path);
    local::remove_name(&tmp)?;
    match placed? {
        Placed::Linked | Placed::Same => {}
        Placed::Other => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} appeared meanwhile (another stxd process rejecting the file too?); the next listing finishes the move",
                    path.display()
                ),
            ));
        }
    }
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{FormatError, Position};

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().file_name().into_string().unwrap())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    fn pair_in(dir: &Path, manifest: &str, payload: &str) -> Pair {
        let pair = Pair::of(&dir.join("l.SALES.00000001.stx"));
        std::fs::write(&pair.manifest, manifest).unwrap();
        std::fs::write(pair.payload.as_ref().unwrap(), payload).unwrap();
        pair
    }

    fn refused() -> InboundError {
        FormatError::new(
            "l.SALES.00000001.stx",
            Position::File,
            "envelope-hmac",
            "bad",
        )
        .into()
    }

    #[test]
    fn moving_never_replaces_other_content() {
        let dir = tempfile::tempdir().unwrap();
        let done = dir.path().join("done");
        let a = dir.path().join("a.SALES.00000001.stx");
        std::fs::write(&a, "one").unwrap();
        move_pair(&Pair::of(&a), &done, None).unwrap();
        std::fs::write(&a, "two").unwrap();
        let second = move_pair(&Pair::of(&a), &done, None).unwrap();
        assert_eq!(second, done.join("a.SALES.00000001.stx.1"));
        assert_eq!(
            std::fs::read_to_string(done.join("a.SALES.00000001.stx")).unwrap(),
            "one"
        );
        std::fs::write(&a, "one").unwrap();
        assert_eq!(
            move_pair(&Pair::of(&a), &done, None).unwrap(),
            done.join("a.SALES.00000001.stx")
        );
        assert!(!a.exists());
    }

    #[test]
    fn a_pair_keeps_one_suffix_for_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let done = dir.path().join("done");
        let first = pair_in(dir.path(), "m1", "p");
        move_pair(&first, &done, None).unwrap();
        // Another manifest, the same payload bytes: both go to slot 1.
        let second = pair_in(dir.path(), "m2", "p");
        assert_eq!(
            move_pair(&second, &done, None).unwrap(),
            done.join("l.SALES.00000001.stx.1")
        );
        assert_eq!(
            names(&done),
            [
                "l.SALES.00000001.csv",
                "l.SALES.00000001.csv.1",
                "l.SALES.00000001.stx",
                "l.SALES.00000001.stx.1"
            ]
        );
        assert!(names(dir.path()).iter().all(|n| n == "done"));
    }

    #[test]
    fn a_move_cut_after_any_step_is_finished_in_its_slot() {
        use sha2::Digest;
        let sha: [u8; 32] = sha2::Sha256::digest(b"payload").into();
        // Each cut: which of (payload linked, payload unlinked, manifest linked) ran.
        for cut in 0..=3 {
            let dir = tempfile::tempdir().unwrap();
            let done = dir.path().join("done");
            std::fs::create_dir(&done).unwrap();
            // Slot 0 is taken by another file of that name.
            std::fs::write(done.join("l.SALES.00000001.stx"), "other").unwrap();
            let pair = pair_in(dir.path(), "manifest", "payload");
            let payload = pair.payload.clone().unwrap();
            if cut >= 1 {
                std::fs::hard_link(&payload, done.join("l.SALES.00000001.csv.1")).unwrap();
            }
            if cut >= 2 {
                std::fs::remove_file(&payload).unwrap();
            }
            if cut >= 3 {
                std::fs::hard_link(&pair.manifest, done.join("l.SALES.00000001.stx.1")).unwrap();
            }
            let moved = move_pair(&pair, &done, Some(&sha)).unwrap();
            assert_eq!(moved, done.join("l.SALES.00000001.stx.1"), "cut {cut}");
            assert_eq!(
                names(&done),
                [
                    "l.SALES.00000001.csv.1",
                    "l.SALES.00000001.stx",
                    "l.SALES.00000001.stx.1"
                ],
                "cut {cut}"
            );
            assert_eq!(names(dir.path()), ["done"], "cut {cut}");
            let meta = std::fs::metadata(done.join("l.SALES.00000001.csv.1")).unwrap();
            assert_eq!(meta.nlink(), 1, "cut {cut}");
        }
    }

    #[test]
    fn a_pair_moved_into_its_own_folder_stays_whole() {
        let dir = tempfile::tempdir().unwrap();
        let pair = pair_in(dir.path(), "m", "p");
        // The folder under another path (a symlink to it) is the same one.
        let same = dir.path().join("alias");
        std::os::unix::fs::symlink(dir.path(), &same).unwrap();
        assert_eq!(move_pair(&pair, &same, None).unwrap(), pair.manifest);
        assert_eq!(
            names(dir.path()),
            ["alias", "l.SALES.00000001.csv", "l.SALES.00000001.stx"]
        );
    }

    #[test]
    fn a_reason_is_written_first_and_names_its_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let error = dir.path().join("error");
        let old = pair_in(dir.path(), "old", "x");
        reject_pair(&old, &error, &refused()).unwrap();
        let pair = pair_in(dir.path(), "new", "y");
        assert_eq!(rejection_slot(&pair, &error).unwrap(), None);
        // A crash right after the reason: only the reason is there, in slot 1.
        write_reason(&pair, &error.join("l.SALES.00000001.stx.1"), &refused()).unwrap();
        assert_eq!(rejection_slot(&pair, &error).unwrap(), Some(1));
        // The same name with other content (a new drop) is not that file.
        let other = dir.path().join("other");
        std::fs::create_dir(&other).unwrap();
        let stranger = pair_in(&other, "new", "y");
        assert_eq!(rejection_slot(&stranger, &error).unwrap(), None);
        // Rejecting again finishes in slot 1, the reason kept.
        let reason = std::fs::read_to_string(error.join("l.SALES.00000001.stx.1.reason")).unwrap();
        assert_eq!(
            reject_pair(&pair, &error, &refused()).unwrap(),
            error.join("l.SALES.00000001.stx.1")
        );
        assert_eq!(
            std::fs::read_to_string(error.join("l.SALES.00000001.stx.1.reason")).unwrap(),
            reason
        );
        assert!(reason.contains("code: envelope-hmac"), "{reason}");
        assert_eq!(names(&error).len(), 6, "{:?}", names(&error));
        assert_eq!(names(dir.path()), ["error", "other"]);
    }
}
