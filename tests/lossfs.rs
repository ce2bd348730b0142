//! LossFs: an in-memory file system, mounted with FUSE, on which a test
//! can cut the power under the real `stxd` (SQLite in WAL mode with
//! `synchronous=FULL`, fsync of files and of folders, rename, link and
//! unlink) and see what a disk would still hold afterwards.
//!
//! Beside the current ("volatile") state, which every process sees through
//! the mount, LossFs keeps what would survive a power cut ("durable"
//! state). A cut yields a [`Tree`] of the survivors; the caller then mounts
//! a fresh LossFs from that tree (the machine reboots) and runs stxd again.
//! From the cut on, every request of a process other than the test fails
//! with EIO (the power is off), the one the cut fell on included. The
//! mount is served by a child process ([`LossFs`] says why).
//!
//! # The durability model
//!
//! - File data. Each regular file has its data (volatile) and what it held
//!   at its last fsync or fdatasync ("synced"; empty for a file never
//!   synced). An fsync, with or without datasync, makes synced equal to
//!   the data. A truncate (setattr of the size) and fallocate change the
//!   data only.
//! - Names. Durable changes of the namespace follow a journaling file
//!   system with ordered metadata (ext4, xfs): every namespace operation
//!   (create, mknod, mkdir, unlink, rmdir, rename, link, symlink) is
//!   appended to a log of pending operations, and an fsync of ANY folder
//!   commits all of them, in order, to the durable namespace. The fsync of
//!   a regular file commits none: POSIX asks for the fsync of its folder
//!   before a new name is durable, and the model holds a program to it.
//! - A cut. What survives is chosen by [`Losses`]: `All` (the most hostile
//!   disk: the durable namespace without any pending operation, every file
//!   holding what it held at its last fsync), `None` (everything survives,
//!   as after a clean shutdown or a SIGKILL), or `Seeded(seed)`: a
//!   deterministic generator keeps a prefix of the pending log, of a length
//!   drawn uniformly from 0 to its length (a journal may have committed
//!   more than it was asked to), and for each file whose data differs from
//!   what was synced a coin keeps the data or reverts to the synced bytes.
//!   The survivors are the durable namespace with that prefix applied and
//!   the files' contents so chosen; hard links stay one inode, symlinks
//!   keep their target (a symlink's target is written with its creation).
//!
//! # Limits
//!
//! - Torn writes are not simulated: a file survives whole at one of its two
//!   states (its data, or what was synced), never a mix of both.
//! - The kernel's page cache is no disk cache here: without the writeback
//!   cache (not enabled), each write(2) reaches LossFs before it returns,
//!   so what a process wrote is what LossFs holds. Only pages written
//!   through a shared mmap (SQLite's `-shm`, never synced) reach it later,
//!   when the kernel writes them back.
//! - Owners and modes survive as they are at the cut; times do not (after
//!   a cut every file's times are those of the new mount); inodes are
//!   never freed while mounted (tests are small); extended attributes,
//!   device nodes, FIFOs and sockets are not supported.
//! - Durability calls are numbered in the order the kernel delivers them
//!   (one FUSE thread): with several processes at work, the same run may
//!   number them differently from one time to the next.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::ffi::{CString, OsStr, OsString};
use std::fmt;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use fuser::{
    AccessFlags, BackgroundSession, Config, Errno, FileAttr, FileHandle, FileType, Filesystem,
    FopenFlags, Generation, INodeNo, LockOwner, MountOption, OpenFlags, RenameFlags, ReplyAttr,
    ReplyCreate, ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs,
    ReplyWrite, Request, SessionACL, TimeOrNow, WriteFlags,
};

/// What a power cut loses of what was not made durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Losses {
    /// Everything not durable: no pending namespace operation survives, and
    /// every file holds what it held at its last fsync.
    All,
    /// Nothing: what every process saw survives (a clean shutdown, or a
    /// SIGKILL with the machine up).
    None,
    /// A prefix of the pending namespace operations and, file by file,
    /// either the data or the synced bytes, drawn from this seed.
    Seeded(u64),
}

/// A directory tree held in memory: what a cut left, or a real folder read in.
#[derive(Clone)]
pub struct Tree {
    /// `nodes[0]` is the root folder; a folder names its entries by index,
    /// so two names of one index are hard links.
    nodes: Vec<Node>,
}

#[derive(Clone)]
struct Node {
    perm: u16,
    uid: u32,
    gid: u32,
    kind: NodeKind,
}

#[derive(Clone)]
enum NodeKind {
    File(Vec<u8>),
    Dir(BTreeMap<OsString, usize>),
    Symlink(OsString),
}

impl Tree {
    pub fn empty() -> Tree {
        Tree {
            nodes: vec![Node {
                perm: 0o755,
                uid: 0,
                gid: 0,
                kind: NodeKind::Dir(BTreeMap::new()),
            }],
        }
    }

    /// Reads a real folder (files, folders, symlinks, hard links kept as one inode, modes).
    pub fn read(dir: &Path) -> io::Result<Tree> {
        let meta = std::fs::metadata(dir)?;
        if !meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a folder", dir.display()),
            ));
        }
        let mut tree = Tree {
            nodes: vec![node_of(&meta, NodeKind::Dir(BTreeMap::new()))],
        };
        tree.read_dir(dir, 0, &mut HashMap::new())?;
        Ok(tree)
    }

    fn read_dir(
        &mut self,
        dir: &Path,
        at: usize,
        seen: &mut HashMap<(u64, u64), usize>,
    ) -> io::Result<()> {
        let mut entries = BTreeMap::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            let meta = std::fs::symlink_metadata(&path)?;
            let key = (meta.dev(), meta.ino());
            if let Some(&known) = seen.get(&key) {
                entries.insert(entry.file_name(), known);
                continue;
            }
            let kind = if meta.is_dir() {
                NodeKind::Dir(BTreeMap::new())
            } else if meta.file_type().is_symlink() {
                NodeKind::Symlink(std::fs::read_link(&path)?.into_os_string())
            } else if meta.is_file() {
                NodeKind::File(std::fs::read(&path)?)
            } else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "{}: a tree holds files, folders and symlinks only",
                        path.display()
                    ),
                ));
            };
            let index = self.nodes.len();
            self.nodes.push(node_of(&meta, kind));
            if meta.is_dir() {
                self.read_dir(&path, index, seen)?;
            } else if meta.nlink() > 1 {
                seen.insert(key, index);
            }
            entries.insert(entry.file_name(), index);
        }
        self.nodes[at].kind = NodeKind::Dir(entries);
        Ok(())
    }

    /// Writes the tree into `into` (an existing folder, may be non-empty:
    /// entries are created/overwritten), with modes and hard links; fsync
    /// not needed. The mode of `into` itself is left as it is.
    pub fn write(&self, into: &Path) -> io::Result<()> {
        self.write_dir(0, into, &mut HashMap::new())
    }

    fn write_dir(
        &self,
        at: usize,
        dir: &Path,
        written: &mut HashMap<usize, PathBuf>,
    ) -> io::Result<()> {
        let NodeKind::Dir(entries) = &self.nodes[at].kind else {
            return Ok(());
        };
        for (name, &index) in entries {
            let path = dir.join(name);
            let node = &self.nodes[index];
            match &node.kind {
                NodeKind::Dir(_) => {
                    if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                        remove(&path)?;
                        std::fs::create_dir(&path)?;
                    }
                    self.write_dir(index, &path, written)?;
                }
                kind => {
                    remove(&path)?;
                    if let Some(first) = written.get(&index) {
                        std::fs::hard_link(first, &path)?;
                        continue;
                    }
                    match kind {
                        NodeKind::Symlink(target) => {
                            std::os::unix::fs::symlink(target, &path)?;
                            owned(&path, node)?;
                            written.insert(index, path);
                            // A symlink has no mode of its own to set.
                            continue;
                        }
                        _ => std::fs::write(&path, file_data(kind))?,
                    }
                    written.insert(index, path.clone());
                }
            }
            // After the content: a folder or file without write permission
            // is filled first.
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(node.perm.into()))?;
            owned(&path, node)?;
        }
        Ok(())
    }

    /// Every regular file's path relative to the root with its content (for tests).
    pub fn files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let mut files = BTreeMap::new();
        self.walk(0, Path::new(""), &mut |path, node| {
            if let NodeKind::File(data) = &node.kind {
                files.insert(path.to_path_buf(), data.clone());
            }
        });
        files
    }

    fn walk(&self, at: usize, prefix: &Path, visit: &mut dyn FnMut(&Path, &Node)) {
        if let NodeKind::Dir(entries) = &self.nodes[at].kind {
            for (name, &index) in entries {
                let path = prefix.join(name);
                visit(&path, &self.nodes[index]);
                self.walk(index, &path, visit);
            }
        }
    }
}

impl fmt::Debug for Tree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut paths = Vec::new();
        self.walk(0, Path::new(""), &mut |path, _| {
            paths.push(path.to_path_buf())
        });
        f.debug_struct("Tree").field("paths", &paths).finish()
    }
}

fn node_of(meta: &std::fs::Metadata, kind: NodeKind) -> Node {
    Node {
        perm: (meta.mode() & 0o7777) as u16,
        uid: meta.uid(),
        gid: meta.gid(),
        kind,
    }
}

fn file_data(kind: &NodeKind) -> &[u8] {
    match kind {
        NodeKind::File(data) => data,
        _ => &[],
    }
}

/// Gives `path` the node's owner; a process that may not (not root, another
/// owner) leaves the file its own.
fn owned(path: &Path, node: &Node) -> io::Result<()> {
    match std::os::unix::fs::lchown(path, Some(node.uid), Some(node.gid)) {
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Ok(()),
        other => other,
    }
}

/// Removes whatever `path` names, if anything.
fn remove(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
    }
}

/// A tiny deterministic generator (splitmix64): the seeded losses must
/// replay exactly, and a rand crate would be one more dependency.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (the modulo bias is below 2^-50 for our sizes).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Attributes and entries live for a second in the kernel: every change
/// goes through the mount, so the kernel is never surprised.
const TTL: Duration = Duration::from_secs(1);
/// Files are held in memory: refuse sizes no test needs.
const MAX_SIZE: u64 = 1 << 32;
const ROOT: u64 = 1;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    File,
    Dir,
    Symlink,
}

struct Inode {
    kind: Kind,
    perm: u16,
    uid: u32,
    gid: u32,
    atime: SystemTime,
    mtime: SystemTime,
    ctime: SystemTime,
    /// Names in the volatile namespace.
    nlink: u32,
    /// A file's content, a symlink's target.
    data: Vec<u8>,
    /// A file's content at its last fsync.
    synced: Vec<u8>,
    /// A folder's entries in the volatile namespace.
    entries: BTreeMap<OsString, u64>,
    /// A folder's parent in the volatile namespace (for "..").
    parent: u64,
}

impl Inode {
    fn new(kind: Kind, perm: u16, uid: u32, gid: u32) -> Inode {
        let now = SystemTime::now();
        Inode {
            kind,
            perm: perm & 0o7777,
            uid,
            gid,
            atime: now,
            mtime: now,
            ctime: now,
            nlink: 0,
            data: Vec::new(),
            synced: Vec::new(),
            entries: BTreeMap::new(),
            parent: ROOT,
        }
    }
}

/// One namespace operation, applied atomically: each (folder, name) gets
/// the inode, or loses its entry with `None`. A rename is two of them.
type Op = Vec<(u64, OsString, Option<u64>)>;

/// A durability call, as the cut's description names it.
#[derive(Clone, Copy)]
enum Call {
    Fsync { datasync: bool },
    FsyncDir,
}

struct State {
    /// Inode `n` is `inodes[n - 1]`; inode 1 is the root.
    inodes: Vec<Inode>,
    /// The durable namespace: each folder's committed entries.
    durable: HashMap<u64, BTreeMap<OsString, u64>>,
    /// Namespace operations not yet committed by a folder's fsync.
    pending: Vec<Op>,
    /// Durability calls seen since the mount.
    calls: u64,
    /// The durability call (counted from the mount) a cut is armed on.
    armed: Option<(u64, Losses)>,
    /// The survivors of the cut, and where it was taken.
    cut: Option<(Tree, String)>,
    /// Each open folder's listing, taken when it is read from the start,
    /// so that the offsets of a listing read in several calls stay valid.
    listings: HashMap<u64, Vec<(u64, FileType, OsString)>>,
    next_fh: u64,
}

impl State {
    fn from_tree(tree: Tree) -> State {
        let mut inodes: Vec<Inode> = tree
            .nodes
            .iter()
            .map(|node| {
                let kind = match node.kind {
                    NodeKind::File(_) => Kind::File,
                    NodeKind::Dir(_) => Kind::Dir,
                    NodeKind::Symlink(_) => Kind::Symlink,
                };
                Inode::new(kind, node.perm, node.uid, node.gid)
            })
            .collect();
        let mut durable = HashMap::new();
        inodes[0].nlink = 1;
        for (index, node) in tree.nodes.into_iter().enumerate() {
            let ino = index as u64 + 1;
            match node.kind {
                NodeKind::File(data) => {
                    inodes[index].synced.clone_from(&data);
                    inodes[index].data = data;
                }
                NodeKind::Symlink(target) => inodes[index].data = target.into_vec(),
                NodeKind::Dir(entries) => {
                    let entries: BTreeMap<OsString, u64> = entries
                        .into_iter()
                        .map(|(name, child)| (name, child as u64 + 1))
                        .collect();
                    for &child in entries.values() {
                        let child = &mut inodes[(child - 1) as usize];
                        child.nlink += 1;
                        child.parent = ino;
                    }
                    inodes[index].entries = entries.clone();
                    durable.insert(ino, entries);
                }
            }
        }
        State {
            inodes,
            durable,
            pending: Vec::new(),
            calls: 0,
            armed: None,
            cut: None,
            listings: HashMap::new(),
            next_fh: 1,
        }
    }

    fn get(&self, ino: u64) -> Result<&Inode, Errno> {
        ino.checked_sub(1)
            .and_then(|i| self.inodes.get(usize::try_from(i).ok()?))
            .ok_or(Errno::ENOENT)
    }

    fn get_mut(&mut self, ino: u64) -> Result<&mut Inode, Errno> {
        ino.checked_sub(1)
            .and_then(|i| self.inodes.get_mut(usize::try_from(i).ok()?))
            .ok_or(Errno::ENOENT)
    }

    fn kind(&self, ino: u64) -> Result<Kind, Errno> {
        Ok(self.get(ino)?.kind)
    }

    fn dir(&self, ino: u64) -> Result<&BTreeMap<OsString, u64>, Errno> {
        let node = self.get(ino)?;
        if node.kind != Kind::Dir {
            return Err(Errno::ENOTDIR);
        }
        Ok(&node.entries)
    }

    fn child(&self, parent: u64, name: &OsStr) -> Result<u64, Errno> {
        self.dir(parent)?.get(name).copied().ok_or(Errno::ENOENT)
    }

    fn attr(&self, ino: u64) -> Result<FileAttr, Errno> {
        let node = self.get(ino)?;
        let (kind, size, nlink) = match node.kind {
            Kind::File => (FileType::RegularFile, node.data.len() as u64, node.nlink),
            Kind::Symlink => (FileType::Symlink, node.data.len() as u64, node.nlink),
            Kind::Dir => {
                let subdirs = node
                    .entries
                    .values()
                    .filter(|&&c| self.kind(c) == Ok(Kind::Dir))
                    .count();
                // A removed folder still open has no link left.
                let nlink = if node.nlink == 0 {
                    0
                } else {
                    2 + u32::try_from(subdirs).unwrap_or(u32::MAX - 2)
                };
                (FileType::Directory, 4096, nlink)
            }
        };
        Ok(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(4096) * 8,
            atime: node.atime,
            mtime: node.mtime,
            ctime: node.ctime,
            crtime: node.ctime,
            kind,
            perm: node.perm,
            nlink,
            uid: node.uid,
            gid: node.gid,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }

    /// Applies a namespace operation to the volatile namespace, with its
    /// links and times, and logs it until a folder's fsync commits it.
    fn change(&mut self, op: Op) {
        let now = SystemTime::now();
        for (dir, name, new) in &op {
            let Ok(parent) = self.get_mut(*dir) else {
                continue;
            };
            parent.mtime = now;
            parent.ctime = now;
            let old = match new {
                Some(ino) => parent.entries.insert(name.clone(), *ino),
                None => parent.entries.remove(name),
            };
            if let Some(Ok(old)) = old.map(|o| self.get_mut(o)) {
                old.nlink = old.nlink.saturating_sub(1);
                old.ctime = now;
            }
            if let Some(Ok(new)) = new.map(|n| self.get_mut(n)) {
                new.nlink += 1;
                new.ctime = now;
                new.parent = *dir;
            }
        }
        self.pending.push(op);
    }

    fn check_new(&self, parent: u64, name: &OsStr) -> Result<(), Errno> {
        if name.len() > 255 {
            return Err(Errno::ENAMETOOLONG);
        }
        if self.dir(parent)?.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        Ok(())
    }

    fn make(&mut self, parent: u64, name: &OsStr, inode: Inode) -> Result<FileAttr, Errno> {
        self.check_new(parent, name)?;
        self.inodes.push(inode);
        let ino = self.inodes.len() as u64;
        self.change(vec![(parent, name.to_owned(), Some(ino))]);
        self.attr(ino)
    }

    fn remove(&mut self, parent: u64, name: &OsStr, dir: bool) -> Result<(), Errno> {
        let ino = self.child(parent, name)?;
        match (self.get(ino)?, dir) {
            (node, false) if node.kind == Kind::Dir => return Err(Errno::EISDIR),
            (node, true) if node.kind != Kind::Dir => return Err(Errno::ENOTDIR),
            (node, true) if !node.entries.is_empty() => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        self.change(vec![(parent, name.to_owned(), None)]);
        Ok(())
    }

    /// Whether folder `dir` is `ancestor` or lies inside it.
    fn is_within(&self, mut dir: u64, ancestor: u64) -> bool {
        for _ in 0..=self.inodes.len() {
            if dir == ancestor {
                return true;
            }
            if dir == ROOT {
                return false;
            }
            match self.get(dir) {
                Ok(node) => dir = node.parent,
                Err(_) => return false,
            }
        }
        false
    }

    fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        flags: RenameFlags,
    ) -> Result<(), Errno> {
        let exchange = flags.contains(RenameFlags::RENAME_EXCHANGE);
        let noreplace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        if flags.contains(RenameFlags::RENAME_WHITEOUT)
            || (exchange && noreplace)
            || !RenameFlags::all().contains(flags)
        {
            return Err(Errno::EINVAL);
        }
        if new_name.len() > 255 {
            return Err(Errno::ENAMETOOLONG);
        }
        let src = self.child(parent, name)?;
        let dst = self.dir(new_parent)?.get(new_name).copied();
        let src_dir = self.kind(src)? == Kind::Dir;
        if exchange {
            let dst = dst.ok_or(Errno::ENOENT)?;
            if src == dst {
                return Ok(());
            }
            let dst_dir = self.kind(dst)? == Kind::Dir;
            if (src_dir && self.is_within(new_parent, src))
                || (dst_dir && self.is_within(parent, dst))
            {
                return Err(Errno::EINVAL);
            }
            self.change(vec![
                (parent, name.to_owned(), Some(dst)),
                (new_parent, new_name.to_owned(), Some(src)),
            ]);
            return Ok(());
        }
        if let Some(dst) = dst {
            if noreplace {
                return Err(Errno::EEXIST);
            }
            // Two names of one file: POSIX has rename do nothing.
            if dst == src {
                return Ok(());
            }
            let target = self.get(dst)?;
            match (src_dir, target.kind == Kind::Dir) {
                (true, true) if !target.entries.is_empty() => return Err(Errno::ENOTEMPTY),
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                _ => {}
            }
        }
        if src_dir && self.is_within(new_parent, src) {
            return Err(Errno::EINVAL);
        }
        self.change(vec![
            (parent, name.to_owned(), None),
            (new_parent, new_name.to_owned(), Some(src)),
        ]);
        Ok(())
    }

    fn link(&mut self, ino: u64, new_parent: u64, new_name: &OsStr) -> Result<FileAttr, Errno> {
        if self.kind(ino)? == Kind::Dir {
            return Err(Errno::EPERM);
        }
        self.check_new(new_parent, new_name)?;
        self.change(vec![(new_parent, new_name.to_owned(), Some(ino))]);
        self.attr(ino)
    }

    #[allow(clippy::too_many_arguments)]
    fn setattr(
        &mut self,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        ctime: Option<SystemTime>,
    ) -> Result<FileAttr, Errno> {
        let now = SystemTime::now();
        let node = self.get_mut(ino)?;
        // Every check before any change: a refused call changes nothing.
        let size = match (size, node.kind) {
            (None, _) => None,
            (Some(_), Kind::Dir) => return Err(Errno::EISDIR),
            (Some(_), Kind::Symlink) => return Err(Errno::EINVAL),
            (Some(size), Kind::File) if size > MAX_SIZE => return Err(Errno::EFBIG),
            (Some(size), Kind::File) => Some(usize::try_from(size).map_err(|_| Errno::EFBIG)?),
        };
        if let Some(size) = size {
            node.data.resize(size, 0);
            node.mtime = now;
            node.ctime = now;
        }
        if let Some(mode) = mode {
            node.perm = (mode & 0o7777) as u16;
            node.ctime = now;
        }
        if let Some(uid) = uid {
            node.uid = uid;
            node.ctime = now;
        }
        if let Some(gid) = gid {
            node.gid = gid;
            node.ctime = now;
        }
        let at = |t: TimeOrNow| match t {
            TimeOrNow::SpecificTime(t) => t,
            TimeOrNow::Now => now,
        };
        if let Some(atime) = atime {
            node.atime = at(atime);
            node.ctime = now;
        }
        if let Some(mtime) = mtime {
            node.mtime = at(mtime);
            node.ctime = now;
        }
        if let Some(ctime) = ctime {
            node.ctime = ctime;
        }
        self.attr(ino)
    }

    fn file_mut(&mut self, ino: u64) -> Result<&mut Inode, Errno> {
        let node = self.get_mut(ino)?;
        match node.kind {
            Kind::File => Ok(node),
            Kind::Dir => Err(Errno::EISDIR),
            Kind::Symlink => Err(Errno::EINVAL),
        }
    }

    fn read(&self, ino: u64, offset: u64, size: u32) -> Result<&[u8], Errno> {
        let node = self.get(ino)?;
        match node.kind {
            Kind::File => {}
            Kind::Dir => return Err(Errno::EISDIR),
            Kind::Symlink => return Err(Errno::EINVAL),
        }
        let len = node.data.len();
        let start = usize::try_from(offset).unwrap_or(len).min(len);
        let end = start.saturating_add(size as usize).min(len);
        Ok(&node.data[start..end])
    }

    /// Grows a file to `end` bytes (zeros), if shorter; the new length.
    fn extend(node: &mut Inode, offset: u64, len: u64) -> Result<usize, Errno> {
        let end = offset
            .checked_add(len)
            .filter(|&end| end <= MAX_SIZE)
            .ok_or(Errno::EFBIG)?;
        let end = usize::try_from(end).map_err(|_| Errno::EFBIG)?;
        if node.data.len() < end {
            node.data.resize(end, 0);
        }
        Ok(end)
    }

    fn write(&mut self, ino: u64, offset: u64, data: &[u8]) -> Result<u32, Errno> {
        let written = u32::try_from(data.len()).map_err(|_| Errno::EINVAL)?;
        let node = self.file_mut(ino)?;
        let end = State::extend(node, offset, data.len() as u64)?;
        node.data[end - data.len()..end].copy_from_slice(data);
        let now = SystemTime::now();
        node.mtime = now;
        node.ctime = now;
        Ok(written)
    }

    fn fallocate(&mut self, ino: u64, offset: u64, length: u64, mode: i32) -> Result<(), Errno> {
        let node = self.file_mut(ino)?;
        // Mode 0 only: what posix_fallocate asks. Hole punching, zeroing and
        // KEEP_SIZE would need a model of their own.
        if mode != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let before = node.data.len();
        if State::extend(node, offset, length)? > before {
            let now = SystemTime::now();
            node.mtime = now;
            node.ctime = now;
        }
        Ok(())
    }

    /// Counts a durability call, takes the armed cut on entry to it, then
    /// lets it take effect.
    fn durability(&mut self, ino: u64, call: Call) -> Result<(), Errno> {
        let kind = self.kind(ino)?;
        self.calls += 1;
        if let Some((nth, losses)) = self.armed
            && nth <= self.calls
        {
            self.armed = None;
            if self.cut.is_none() {
                let what = match call {
                    Call::Fsync { datasync: false } => "fsync of",
                    Call::Fsync { datasync: true } => "fdatasync of",
                    Call::FsyncDir => "fsync of directory",
                };
                let at = format!(
                    "{what} {} (durability call #{} since the mount)",
                    self.path_of(ino),
                    self.calls
                );
                self.cut = Some((self.survivors(losses), at));
            }
        }
        match (call, kind) {
            (Call::Fsync { .. }, Kind::File) => {
                let Inode { data, synced, .. } = self.get_mut(ino)?;
                synced.clone_from(data);
            }
            // A journal commits every pending operation, whichever folder
            // was asked for.
            (Call::FsyncDir, Kind::Dir) => {
                for op in std::mem::take(&mut self.pending) {
                    apply(&mut self.durable, &op);
                }
            }
            // Nothing to make durable in a symlink; fsync of a folder
            // arrives as fsyncdir.
            (Call::Fsync { .. }, _) => {}
            (Call::FsyncDir, _) => return Err(Errno::ENOTDIR),
        }
        Ok(())
    }

    /// A cut on the `nth` durability call from now; 0 cuts now.
    fn arm(&mut self, nth: u64, losses: Losses) {
        if nth == 0 {
            self.cut_now(losses);
        } else {
            self.armed = Some((self.calls + nth, losses));
        }
    }

    fn cut_now(&mut self, losses: Losses) {
        if self.cut.is_none() {
            self.armed = None;
            let at = format!("a cut taken after {} durability calls", self.calls);
            self.cut = Some((self.survivors(losses), at));
        }
    }

    /// What a cut now leaves, as `losses` says.
    fn survivors(&self, losses: Losses) -> Tree {
        let mut rng = SplitMix64(match losses {
            Losses::Seeded(seed) => seed,
            Losses::All | Losses::None => 0,
        });
        let kept = match losses {
            Losses::All => 0,
            Losses::None => self.pending.len(),
            Losses::Seeded(_) => rng.below(self.pending.len() as u64 + 1) as usize,
        };
        let mut names = self.durable.clone();
        for op in &self.pending[..kept] {
            apply(&mut names, op);
        }
        let mut tree = Tree { nodes: Vec::new() };
        let mut index = HashMap::new();
        self.survivor(ROOT, &names, losses, &mut rng, &mut tree, &mut index);
        tree
    }

    /// Adds inode `ino` and, for a folder, what it names in `names` to
    /// `tree`; its index there, or `None` for a folder already added (a
    /// folder has one name).
    fn survivor(
        &self,
        ino: u64,
        names: &HashMap<u64, BTreeMap<OsString, u64>>,
        losses: Losses,
        rng: &mut SplitMix64,
        tree: &mut Tree,
        index: &mut HashMap<u64, usize>,
    ) -> Option<usize> {
        let node = self.get(ino).ok()?;
        if let Some(&known) = index.get(&ino) {
            return (node.kind != Kind::Dir).then_some(known);
        }
        let at = tree.nodes.len();
        tree.nodes.push(Node {
            perm: node.perm,
            uid: node.uid,
            gid: node.gid,
            kind: NodeKind::Dir(BTreeMap::new()),
        });
        index.insert(ino, at);
        let kind = match node.kind {
            Kind::File => NodeKind::File(match losses {
                Losses::All => node.synced.clone(),
                Losses::None => node.data.clone(),
                Losses::Seeded(_) if node.data == node.synced || rng.next() & 1 == 0 => {
                    node.data.clone()
                }
                Losses::Seeded(_) => node.synced.clone(),
            }),
            Kind::Symlink => NodeKind::Symlink(OsString::from_vec(node.data.clone())),
            Kind::Dir => {
                let mut entries = BTreeMap::new();
                for (name, &child) in names.get(&ino).into_iter().flatten() {
                    if let Some(child) = self.survivor(child, names, losses, rng, tree, index) {
                        entries.insert(name.clone(), child);
                    }
                }
                NodeKind::Dir(entries)
            }
        };
        tree.nodes[at].kind = kind;
        Some(at)
    }

    /// A name of `ino` in the volatile namespace, relative to the root.
    fn path_of(&self, ino: u64) -> String {
        if ino == ROOT {
            return ".".to_owned();
        }
        let mut queue = VecDeque::from([(ROOT, PathBuf::new())]);
        let mut seen = HashSet::from([ROOT]);
        while let Some((dir, path)) = queue.pop_front() {
            for (name, &child) in self.dir(dir).into_iter().flatten() {
                let path = path.join(name);
                if child == ino {
                    return path.display().to_string();
                }
                if self.kind(child) == Ok(Kind::Dir) && seen.insert(child) {
                    queue.push_back((child, path));
                }
            }
        }
        format!("an unlinked inode (#{ino})")
    }

    fn listing(&self, ino: u64) -> Result<Vec<(u64, FileType, OsString)>, Errno> {
        let entries = self.dir(ino)?;
        let mut listing = vec![
            (ino, FileType::Directory, ".".into()),
            (self.get(ino)?.parent, FileType::Directory, "..".into()),
        ];
        for (name, &child) in entries {
            let kind = match self.kind(child)? {
                Kind::File => FileType::RegularFile,
                Kind::Dir => FileType::Directory,
                Kind::Symlink => FileType::Symlink,
            };
            listing.push((child, kind, name.clone()));
        }
        Ok(listing)
    }
}

fn apply(names: &mut HashMap<u64, BTreeMap<OsString, u64>>, op: &Op) {
    for (dir, name, ino) in op {
        let entries = names.entry(*dir).or_default();
        match ino {
            Some(ino) => entries.insert(name.clone(), *ino),
            None => entries.remove(name),
        };
    }
}

/// The FUSE side: the kernel's requests on the shared state.
struct Server {
    state: Arc<Mutex<State>>,
    /// The process that mounted LossFs (the test), whose requests are
    /// answered after a cut: it reads what the processes it runs left.
    harness: u32,
}

impl Server {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The reply, unless the power is cut: then a request of any process
    /// but the harness fails with EIO (a reply dropped unsent is answered
    /// so by fuser). With the power off nothing a process asks of the disk
    /// succeeds, so a process that ends successfully after a cut had done
    /// all it asked of the disk before it. (Never answering instead would
    /// leave a killed process in an uninterruptible wait for the answer.)
    fn admit<R>(&self, req: &Request, reply: R) -> Option<R> {
        let st = self.lock();
        (st.cut.is_none() || self.is_harness(req.pid())).then_some(reply)
    }

    /// Whether thread `tid` (FUSE names the calling thread) is one of the
    /// harness's.
    fn is_harness(&self, tid: u32) -> bool {
        Path::new(&format!("/proc/{}/task/{tid}", self.harness)).exists()
    }

    /// A durability call, answered unless it is the one the cut fell on.
    fn durability(&self, req: &Request, ino: INodeNo, call: Call, reply: ReplyEmpty) {
        let Some(reply) = self.admit(req, reply) else {
            return;
        };
        let mut st = self.lock();
        let result = st.durability(ino.0, call);
        let cut = st.cut.is_some();
        drop(st);
        if cut && !self.is_harness(req.pid()) {
            // The call the cut fell on does not succeed either.
            reply.error(Errno::EIO);
            return;
        }
        empty(reply, result);
    }
}

fn entry(reply: ReplyEntry, attr: Result<FileAttr, Errno>) {
    match attr {
        Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
        Err(e) => reply.error(e),
    }
}

fn empty(reply: ReplyEmpty, result: Result<(), Errno>) {
    match result {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(e),
    }
}

impl Filesystem for Server {
    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let Some(reply) = self.admit(req, reply) else {
            return;
        };
        let st = self.lock();
        let attr = st.child(parent.0, name).and_then(|ino| st.attr(ino));
        drop(st);
        entry(reply, attr);
    }

    // Inodes are never freed: nothing to forget.
    fn forget(&self, _req: &Request, _ino: INodeNo, _nlookup: u64) {}

    fn getattr(&self, req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        let Some(reply) = self.admit(req, reply) else {
            return;
        };
        let attr = self.lock().attr(ino.0);
        match attr {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let Some(reply) = self.admit(req, reply) else {
            return;
        };
        let attr = self
            .lock()
            .setattr(ino.0, mode, uid, gid, size, atime, mtime, ctime);
        match attr {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, req: &Request, ino: INodeNo, reply: ReplyData) {
        let Some(reply) = self.admit(req, reply) else {
            return;
        };
        let st = self.lock();
        match st.get(ino.0) {
            Ok(node) if node.kind == Kind::Symlink => reply.data(&node.data),
            Ok(_) => reply.error(Errno::EINVAL),
            Err(e) => reply.error(e),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        let Some(reply) = self.admit(req, reply) else {
            return;
        };
        if mode & libc::S_IFMT != libc::S_IFREG {
            return reply.error(Errno::EPERM);
        }
        let inode = Inode::new(Kind::File, mode as u16, req.uid(), req.gid());
        entry(reply, self.lock().make(parent.0, name, inode));
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        let Some(reply) = self.admit(req, reply) else {
            return;
        };
        let inode = Inode::new(Kind::Dir, mode as u16, req.uid(), req.gid());
        entry(reply, self.lock().make(parent.0, name, inode));
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let Some(reply) = self.admit(req, reply) else {
            return;
        };
        empty(reply, self.lock().remove(parent.0, name, false));
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let Some(reply) = self.admit(req, reply) else {
            return;
        };
        empty(reply, self.lock().remove(parent.0, name, true));
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        let Some(reply) = self.admit(req, reply) else {
            return;
        };
        let mut inode = Inode::new(Kind::Symlink, 0o777, req.uid(), req.gid());
        inode.data = target.as_os_str().as_bytes().to_vec();
        entry(reply, self.lock().make(parent.0, link_name, inode));
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        let Some(reply) = self.admit(req, reply) else {
            return;
        };
        let result = self
            .lock()
            .rename(parent.0, name, newparent.0, newname, flags);
        empty(reply, result);
    }

    fn link(
        &self,
        req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let Some(reply) = self.admit(req, reply) else {
            return;
        };
        entry(reply, self.lock().link(ino.0, newparent.0, newname));
    }

    fn open(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let Some(reply) = self.admit(req, reply) else {
            return;
        };
        let kind = self.lock().kind(ino.0);
        match kind {
            // No direct I/O, no flags: the kernel keeps its page cache, which
            // SQLite's shared mmap of its -shm file needs.
            Ok(_) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(e),
        }
    }

    fn read(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let Some(reply) = self.admit(req, reply) else {
            return;
        };
        let st = self.lock();
        match st.read(ino.0, offset, size) {
            Ok(data) => reply.data(data),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        let Some(reply) = self.admit(req, reply) else {
            return;
        };
        let written = self.lock().write(ino.0, offset, data);
        match written {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(e),
        }
    }

    fn flush(
        &self,
        req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        let Some(reply) = self.admit(req, reply) else {
            return;
        };
        reply.ok();
    }

    fn fsync(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.durability(req, ino, Call::Fsync { datasync }, reply);
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let Some(reply) = self.admit(req, reply) else {
            return;
        };
        let mut st = self.lock();
        if let Err(e) = st.dir(ino.0) {
            drop(st);
            return reply.error(e);
        }
        let fh = st.next_fh;
        st.next_fh += 1;
        drop(st);
        reply.opened(FileHandle(fh), FopenFlags::empty());
    }

    fn readdir(
        &self,
        req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        reply: ReplyDirectory,
    ) {
        let Some(mut reply) = self.admit(req, reply) else {
            return;
        };
        let mut st = self.lock();
        // From the start (also after a rewinddir): a fresh listing.
        if offset == 0 || !st.listings.contains_key(&fh.0) {
            match st.listing(ino.0) {
                Ok(listing) => {
                    st.listings.insert(fh.0, listing);
                }
                Err(e) => {
                    drop(st);
                    return reply.error(e);
                }
            }
        }
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        for (i, (child, kind, name)) in st.listings[&fh.0].iter().enumerate().skip(skip) {
            // The offset of an entry is that of the next one to read.
            if reply.add(INodeNo(*child), i as u64 + 1, *kind, name) {
                break;
            }
        }
        drop(st);
        reply.ok();
    }

    fn releasedir(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        let Some(reply) = self.admit(req, reply) else {
            return;
        };
        self.lock().listings.remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        self.durability(req, ino, Call::FsyncDir, reply);
    }

    fn statfs(&self, req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let Some(reply) = self.admit(req, reply) else {
            return;
        };
        // Generous: a test never runs out of room.
        reply.statfs(1 << 20, 1 << 20, 1 << 20, 1 << 20, 1 << 20, 4096, 255, 4096);
    }

    fn access(&self, req: &Request, ino: INodeNo, _mask: AccessFlags, reply: ReplyEmpty) {
        let Some(reply) = self.admit(req, reply) else {
            return;
        };
        let kind = self.lock().kind(ino.0);
        empty(reply, kind.map(|_| ()));
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _flags: i32,
        reply: ReplyCreate,
    ) {
        let Some(reply) = self.admit(req, reply) else {
            return;
        };
        let inode = Inode::new(Kind::File, mode as u16, req.uid(), req.gid());
        let attr = self.lock().make(parent.0, name, inode);
        match attr {
            Ok(attr) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(0),
                FopenFlags::empty(),
            ),
            Err(e) => reply.error(e),
        }
    }

    fn fallocate(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        let Some(reply) = self.admit(req, reply) else {
            return;
        };
        empty(reply, self.lock().fallocate(ino.0, offset, length, mode));
    }
}

/// An in-memory file system mounted with FUSE, on which the power can be
/// cut: a handle to the process that serves it.
///
/// The mount is served by a child process (this test binary again, see
/// [`serve`]), never by the process that uses it: a thread of the test
/// faulting in a page of a file mapped from the mount (SQLite maps its
/// `-shm`) holds the process's memory-map lock while it waits for the
/// server, and a server thread in the same process that then needs that
/// lock to grow its heap waits for ever (seen: the crash harness hung).
pub struct LossFs {
    /// `None` once the server has unmounted and exited.
    child: Option<std::process::Child>,
    conn: Mutex<Conn>,
    /// The mount point, canonical.
    at: PathBuf,
}

struct Conn {
    reader: io::BufReader<UnixStream>,
    writer: UnixStream,
}

/// The variable that makes this test binary a LossFs server: the socket
/// to serve on.
const SERVE: &str = "STXD_LOSSFS_SERVE";
/// The test that is the server's entry when [`SERVE`] is set.
const ENTRY: &str = "lossfs::tests::a_child_process_serves_the_mount";

impl LossFs {
    /// Mounts at `at` (an existing folder; it is hidden while mounted) a
    /// file system holding `tree`, all of it durable.
    pub fn mount(at: &Path, tree: Tree) -> io::Result<LossFs> {
        let at = at.canonicalize()?;
        // The tree goes to the server through a real folder beside the
        // mount point, with the socket.
        let parent = at.parent().unwrap_or(Path::new("/"));
        let staging = tempfile::Builder::new()
            .prefix(".lossfs-")
            .tempdir_in(parent)?;
        let tree_dir = staging.path().join("tree");
        std::fs::create_dir(&tree_dir)?;
        tree.write(&tree_dir)?;
        let socket = staging.path().join("socket");
        let listener = UnixListener::bind(&socket)?;
        listener.set_nonblocking(true)?;
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .args([ENTRY, "--exact", "--nocapture", "--test-threads=1", "-q"])
            .env(SERVE, &socket)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        let stream = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    if let Some(status) = child.try_wait()? {
                        return Err(io::Error::other(format!(
                            "the LossFs server exited before it served ({status})"
                        )));
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(io::Error::new(e.kind(), format!("the LossFs server: {e}")));
                }
            }
        };
        stream.set_nonblocking(false)?;
        let fs = LossFs {
            child: Some(child),
            conn: Mutex::new(Conn {
                reader: io::BufReader::new(stream.try_clone()?),
                writer: stream,
            }),
            at,
        };
        fs.ask(&format!(
            "mount\t{}\t{}",
            fs.at.display(),
            tree_dir.display()
        ))?;
        Ok(fs)
    }

    /// Sends one request line; the answer's text after `ok`.
    fn ask(&self, request: &str) -> io::Result<String> {
        use std::io::{BufRead, Write};
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        conn.writer.write_all(format!("{request}\n").as_bytes())?;
        let mut line = String::new();
        conn.reader.read_line(&mut line)?;
        let line = line.trim_end_matches('\n');
        match line.split_once('\t').unwrap_or((line, "")) {
            ("ok", rest) => Ok(rest.to_owned()),
            ("err", message) => Err(io::Error::other(message.to_owned())),
            _ => Err(io::Error::other(format!(
                "the LossFs server of {} answered {line:?} to {request:?} (did it die?)",
                self.at.display()
            ))),
        }
    }

    fn ask_or_panic(&self, request: &str) -> String {
        self.ask(request)
            .unwrap_or_else(|e| panic!("LossFs at {}: {request}: {e}", self.at.display()))
    }

    /// Durability calls (fsync, fdatasync, fsync of a directory) seen since the mount.
    pub fn durability_calls(&self) -> u64 {
        let n = self.ask_or_panic("calls");
        n.parse()
            .unwrap_or_else(|_| panic!("LossFs: {n:?} is no count of calls"))
    }

    /// Arms a cut on the `nth` durability call from now (1 = the next one;
    /// 0 cuts now): the surviving tree is taken on entry to that call,
    /// BEFORE it takes effect (the call itself then proceeds normally, as
    /// does everything after: it is all lost anyway).
    pub fn arm(&self, nth: u64, losses: Losses) {
        self.ask_or_panic(&format!("arm\t{nth}\t{}", losses.word()));
    }

    /// Drops an armed cut not taken yet (a cut already taken stays): the
    /// crash harness calls it once the command it armed for is over.
    pub fn disarm(&self) {
        self.ask_or_panic("disarm");
    }

    /// Takes the cut now (if no armed cut happened yet; a second cut is ignored).
    pub fn cut_now(&self, losses: Losses) {
        self.ask_or_panic(&format!("cut\t{}", losses.word()));
    }

    /// Whether a cut was taken (armed or now), and where: the durability
    /// call it was taken on entry to, e.g. "fsync of
    /// var/state/manager.sqlite-wal (durability call #37 since the mount)",
    /// or "a cut taken after 12 durability calls" for [`LossFs::cut_now`].
    pub fn cut_at(&self) -> Option<String> {
        let at = self.ask_or_panic("cut_at");
        (!at.is_empty()).then_some(at)
    }

    /// Unmounts (waits until the kernel released it) and returns the tree
    /// that survived the cut, or, if there was no cut, the whole volatile
    /// state (a clean shutdown). Every process using the mount must be dead
    /// by then.
    pub fn unmount(mut self) -> io::Result<Tree> {
        let parent = self.at.parent().unwrap_or(Path::new("/")).to_owned();
        let out = tempfile::Builder::new()
            .prefix(".lossfs-")
            .tempdir_in(parent)?;
        let tree = out.path().join("tree");
        self.ask(&format!("unmount\t{}", tree.display()))?;
        if let Some(mut child) = self.child.take() {
            child.wait()?;
        }
        Tree::read(&tree)
    }
}

impl Drop for LossFs {
    /// Unmounts without keeping anything; if the server cannot, it is
    /// killed and the mount lazily detached (a dead server's mount only
    /// answers "not connected").
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if self.ask("unmount\t").is_ok() {
            let _ = child.wait();
            return;
        }
        let _ = child.kill();
        let _ = child.wait();
        let _ = umount(&self.at);
    }
}

impl Losses {
    fn word(self) -> String {
        match self {
            Losses::All => "all".to_owned(),
            Losses::None => "none".to_owned(),
            Losses::Seeded(seed) => seed.to_string(),
        }
    }

    fn from_word(word: &str) -> Option<Losses> {
        match word {
            "all" => Some(Losses::All),
            "none" => Some(Losses::None),
            seed => seed.parse().ok().map(Losses::Seeded),
        }
    }
}

/// The server: when this test binary runs with [`SERVE`] set (by
/// [`LossFs::mount`]), its [`ENTRY`] test calls this, which serves one
/// mount on the socket's requests until it is unmounted or the test is
/// gone.
fn serve(socket: &Path) {
    use std::io::{BufRead, Write};
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and changes
    // only this process: the server dies with the test that started it.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    let stream = UnixStream::connect(socket)
        .unwrap_or_else(|e| panic!("LossFs server: {}: {e}", socket.display()));
    let mut reader = io::BufReader::new(stream.try_clone().expect("the socket"));
    let mut writer = stream;
    let mut served: Option<Served> = None;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            // The test is gone: unmount (dropped) and end.
            return;
        }
        let request: Vec<&str> = line.trim_end_matches('\n').split('\t').collect();
        let answer: io::Result<String> = match (request.as_slice(), &served) {
            (["mount", at, tree], None) => Tree::read(Path::new(tree))
                .and_then(|tree| Served::mount(Path::new(at), tree))
                .map(|fs| {
                    served = Some(fs);
                    String::new()
                }),
            (["calls"], Some(fs)) => Ok(fs.lock().calls.to_string()),
            (["arm", nth, losses], Some(fs)) => {
                match (nth.parse::<u64>(), Losses::from_word(losses)) {
                    (Ok(nth), Some(losses)) => {
                        fs.lock().arm(nth, losses);
                        Ok(String::new())
                    }
                    _ => Err(io::Error::other("arm: expected a count and losses")),
                }
            }
            (["disarm"], Some(fs)) => {
                fs.lock().armed = None;
                Ok(String::new())
            }
            (["cut", losses], Some(fs)) => match Losses::from_word(losses) {
                Some(losses) => {
                    fs.lock().cut_now(losses);
                    Ok(String::new())
                }
                None => Err(io::Error::other("cut: expected losses")),
            },
            (["cut_at"], Some(fs)) => Ok(fs
                .lock()
                .cut
                .as_ref()
                .map(|(_, at)| at.clone())
                .unwrap_or_default()),
            (["unmount", into], Some(_)) => {
                let fs = served.take().expect("served");
                let result = fs.unmount().and_then(|tree| {
                    if into.is_empty() {
                        Ok(())
                    } else {
                        std::fs::create_dir(into).and_then(|()| tree.write(Path::new(into)))
                    }
                });
                let answer = match result {
                    Ok(()) => "ok\n".to_owned(),
                    Err(e) => format!("err\t{e}\n"),
                };
                let _ = writer.write_all(answer.as_bytes());
                return;
            }
            _ => Err(io::Error::other(format!("unexpected request {line:?}"))),
        };
        let answer = match answer {
            Ok(text) if text.is_empty() => "ok\n".to_owned(),
            Ok(text) => format!("ok\t{text}\n"),
            Err(e) => format!("err\t{}\n", e.to_string().replace('\n', " ")),
        };
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

/// The mount itself, in the process that serves it.
struct Served {
    state: Arc<Mutex<State>>,
    /// `None` once unmounted.
    session: Option<BackgroundSession>,
    /// The mount point, canonical.
    at: PathBuf,
    /// The mount's device, which names its FUSE connection.
    dev: u64,
}

impl Served {
    fn mount(at: &Path, tree: Tree) -> io::Result<Served> {
        const NEEDS: &str = "LossFs needs FUSE: the /dev/fuse device and the right to mount \
                             (root, or CAP_SYS_ADMIN; fusermount is not used)";
        if !Path::new("/dev/fuse").exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{NEEDS}; /dev/fuse is missing (modprobe fuse, or give it to the container)"
                ),
            ));
        }
        let at = at.canonicalize()?;
        let state = Arc::new(Mutex::new(State::from_tree(tree)));
        let mut config = Config::default();
        // default_permissions: the kernel checks modes against the
        // attributes, as on a disk. allow_other (SessionACL::All): stxd may
        // run as another user than the test.
        config.mount_options = vec![
            MountOption::FSName("lossfs".to_owned()),
            MountOption::DefaultPermissions,
        ];
        config.acl = SessionACL::All;
        let server = Server {
            state: Arc::clone(&state),
            harness: std::os::unix::process::parent_id(),
        };
        let session = fuser::spawn_mount(server, &at, &config).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("mounting LossFs at {}: {e}. {NEEDS}", at.display()),
            )
        })?;
        let mut fs = Served {
            state,
            session: Some(session),
            at,
            dev: 0,
        };
        // Through the mount: also proves that it answers.
        fs.dev = std::fs::metadata(&fs.at)?.dev();
        Ok(fs)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn unmount(mut self) -> io::Result<Tree> {
        self.detach()?;
        let mut st = self.lock();
        Ok(match st.cut.take() {
            Some((tree, _)) => tree,
            None => st.survivors(Losses::None),
        })
    }

    fn detach(&mut self) -> io::Result<()> {
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        if let Err(e) = umount(&self.at) {
            self.session = Some(session);
            return Err(e);
        }
        // The session's thread ends when the kernel ends the connection,
        // which it does once the last user of a lazily detached mount is
        // gone too.
        let mut finished = wait_for(&session, Duration::from_secs(10));
        if !finished && abort_connection(self.dev) {
            finished = wait_for(&session, Duration::from_secs(5));
        }
        if !finished {
            // Never dropped: its drop would unmount again, maybe what was
            // mounted at the same place since.
            std::mem::forget(session);
            return Err(io::Error::other(format!(
                "LossFs at {} detached but still in use after 15 s: its FUSE connection \
                 is left serving (is a process still using it?)",
                self.at.display()
            )));
        }
        match session.join() {
            // The kernel ended the connection after the unmount: with ENODEV
            // (which fuser takes for the end) or, now and then on Linux
            // 6.18, with ECONNABORTED (which it passes on).
            Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => Ok(()),
            other => other,
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.detach();
    }
}

fn wait_for(session: &BackgroundSession, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while !session.guard.is_finished() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}

/// Unmounts `at`: plainly, or lazily detached when busy.
fn umount(at: &Path) -> io::Result<()> {
    let path = CString::new(at.as_os_str().as_bytes())?;
    // SAFETY: `path` is a NUL-terminated string alive across the call,
    // which only reads it.
    if unsafe { libc::umount2(path.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EBUSY) => {
            // SAFETY: as above.
            if unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) } == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        }
        // Not a mount point any more: someone unmounted it already.
        Some(libc::EINVAL) => Ok(()),
        _ => Err(err),
    }
}

/// Aborts the FUSE connection of device `dev` through fusectl, if mounted
/// (/sys/fs/fuse/connections); whether it could.
fn abort_connection(dev: u64) -> bool {
    // fusectl names a connection by the kernel's device number.
    let kernel_dev = (u64::from(libc::major(dev)) << 20) | u64::from(libc::minor(dev));
    std::fs::write(format!("/sys/fs/fuse/connections/{kernel_dev}/abort"), "1").is_ok()
}

#[cfg(test)]
mod tests {
    use std::fs::{File, OpenOptions};
    use std::io::Write;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::time::{Duration, Instant};

    use tempfile::TempDir;

    use super::*;

    /// The server's entry ([`serve`]) when [`SERVE`] is set. As a test:
    /// the mount is served by a child process, not by this one; when that
    /// process dies the mount answers "not connected", and dropping the
    /// handle detaches it.
    #[test]
    fn a_child_process_serves_the_mount() {
        if let Some(socket) = std::env::var_os(SERVE) {
            serve(Path::new(&socket));
            return;
        }
        let (dir, mut fs) = mounted(Tree::empty());
        std::fs::write(dir.path().join("f"), b"served").unwrap();
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"served");
        let child = fs.child.as_mut().unwrap();
        assert_ne!(child.id(), std::process::id());
        let fuse_open = std::fs::read_dir(format!("/proc/{}/fd", child.id()))
            .unwrap()
            .any(|fd| {
                std::fs::read_link(fd.unwrap().path()).is_ok_and(|t| t == Path::new("/dev/fuse"))
            });
        assert!(fuse_open, "the child holds /dev/fuse");
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(errno(std::fs::read(dir.path().join("f"))), libc::ENOTCONN);
        drop(fs);
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
        let at = dir.path().canonicalize().unwrap();
        assert!(!mounts.contains(&format!(" {} ", at.display())), "{mounts}");
    }

    /// After a cut, every call of a process other than the harness fails,
    /// the call the cut fell on included, while the harness still reads
    /// what they left.
    #[test]
    fn after_a_cut_no_other_process_gets_anything_from_the_disk() {
        let (dir, fs) = mounted(Tree::empty());
        fs.arm(1, Losses::All);
        let run = |script: &str| {
            std::process::Command::new("/bin/sh")
                .args(["-c", script])
                .current_dir(dir.path())
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap()
        };
        let wrote = run("printf a > f && sync f; synced=$?; printf b >> f; exit $synced");
        assert!(!wrote.success(), "the fsync the cut fell on failed");
        assert_eq!(
            fs.cut_at().as_deref(),
            Some("fsync of f (durability call #1 since the mount)")
        );
        assert_eq!(std::fs::read(dir.path().join("f")).unwrap(), b"a");
        assert!(!run("cat f > /dev/null").success());
        assert!(fs.unmount().unwrap().files().is_empty());
    }

    fn mounted(tree: Tree) -> (TempDir, LossFs) {
        let dir = tempfile::tempdir().unwrap();
        let fs = LossFs::mount(dir.path(), tree).unwrap();
        (dir, fs)
    }

    fn write_synced(path: &Path, data: &[u8]) {
        let mut f = File::create(path).unwrap();
        f.write_all(data).unwrap();
        f.sync_all().unwrap();
    }

    fn sync_dir(path: &Path) {
        File::open(path).unwrap().sync_all().unwrap();
    }

    fn files(list: &[(&str, &[u8])]) -> BTreeMap<PathBuf, Vec<u8>> {
        list.iter()
            .map(|(p, d)| (PathBuf::from(p), d.to_vec()))
            .collect()
    }

    fn errno(result: io::Result<impl Sized>) -> i32 {
        match result {
            Ok(_) => 0,
            Err(e) => e.raw_os_error().unwrap_or(-1),
        }
    }

    #[test]
    fn a_new_name_survives_only_once_its_folder_is_synced() {
        let (dir, fs) = mounted(Tree::empty());
        let f = dir.path().join("f");
        write_synced(&f, b"one");
        assert_eq!(std::fs::read(&f).unwrap(), b"one");
        fs.cut_now(Losses::All);
        assert!(fs.unmount().unwrap().files().is_empty());

        let fs = LossFs::mount(dir.path(), Tree::empty()).unwrap();
        write_synced(&f, b"one");
        sync_dir(dir.path());
        fs.cut_now(Losses::All);
        let synced = fs.unmount().unwrap();
        assert_eq!(synced.files(), files(&[("f", b"one")]));

        for (losses, survives) in [(Losses::All, &b"one"[..]), (Losses::None, b"onetwo")] {
            let fs = LossFs::mount(dir.path(), synced.clone()).unwrap();
            let mut out = OpenOptions::new().append(true).open(&f).unwrap();
            out.write_all(b"two").unwrap();
            drop(out);
            assert_eq!(std::fs::read(&f).unwrap(), b"onetwo");
            fs.cut_now(losses);
            assert_eq!(fs.unmount().unwrap().files(), files(&[("f", survives)]));
        }
    }

    #[test]
    #[allow(
        clippy::disallowed_methods,
        reason = "renames are what the file system under test must keep or lose"
    )]
    fn a_rename_survives_once_either_folder_is_synced() {
        let base = {
            let (dir, fs) = mounted(Tree::empty());
            std::fs::create_dir_all(dir.path().join("x")).unwrap();
            std::fs::create_dir_all(dir.path().join("y")).unwrap();
            std::fs::write(dir.path().join("a"), b"A").unwrap();
            std::fs::write(dir.path().join("x/f"), b"F").unwrap();
            fs.unmount().unwrap()
        };
        let (dir, fs) = mounted(base.clone());
        let root = dir.path().to_path_buf();
        std::fs::rename(root.join("a"), root.join("b")).unwrap();
        assert!(!root.join("a").exists());
        assert_eq!(std::fs::read(root.join("b")).unwrap(), b"A");
        fs.cut_now(Losses::All);
        let lost = fs.unmount().unwrap().files();
        assert!(lost.contains_key(Path::new("a")) && !lost.contains_key(Path::new("b")));

        let fs = LossFs::mount(&root, base.clone()).unwrap();
        std::fs::rename(root.join("a"), root.join("b")).unwrap();
        sync_dir(&root);
        fs.cut_now(Losses::All);
        let kept = fs.unmount().unwrap().files();
        assert!(!kept.contains_key(Path::new("a")) && kept.contains_key(Path::new("b")));

        for synced in ["x", "y"] {
            let fs = LossFs::mount(&root, base.clone()).unwrap();
            std::fs::rename(root.join("x/f"), root.join("y/f")).unwrap();
            sync_dir(&root.join(synced));
            fs.cut_now(Losses::All);
            let moved = fs.unmount().unwrap().files();
            assert!(!moved.contains_key(Path::new("x/f")), "synced {synced}");
            assert_eq!(moved[Path::new("y/f")], b"F", "synced {synced}");
        }
    }

    #[test]
    fn a_hard_link_stays_one_inode() {
        let (dir, fs) = mounted(Tree::empty());
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        write_synced(&a, b"shared");
        std::fs::hard_link(&a, &b).unwrap();
        let (ma, mb) = (
            std::fs::metadata(&a).unwrap(),
            std::fs::metadata(&b).unwrap(),
        );
        assert_eq!(ma.ino(), mb.ino());
        assert_eq!(ma.nlink(), 2);
        sync_dir(dir.path());
        fs.cut_now(Losses::All);
        let tree = fs.unmount().unwrap();

        let out = tempfile::tempdir().unwrap();
        tree.write(out.path()).unwrap();
        let (ma, mb) = (
            std::fs::metadata(out.path().join("a")).unwrap(),
            std::fs::metadata(out.path().join("b")).unwrap(),
        );
        assert_eq!(ma.ino(), mb.ino());
        assert_eq!(std::fs::read(out.path().join("b")).unwrap(), b"shared");
        // And read back, still one inode.
        let again = Tree::read(out.path()).unwrap();
        assert_eq!(again.nodes.len(), 2, "{again:?}");
    }

    #[test]
    fn an_armed_cut_takes_the_state_on_entry_to_that_call() {
        let (dir, fs) = mounted(Tree::empty());
        let root = dir.path();
        fs.arm(2, Losses::All);
        let mut f = File::create(root.join("f1")).unwrap();
        sync_dir(root); // #1: the name is durable, the file empty
        assert_eq!(fs.cut_at(), None);
        f.write_all(b"data").unwrap();
        f.sync_all().unwrap(); // #2: the cut, before "data" is synced
        assert_eq!(
            fs.cut_at().as_deref(),
            Some("fsync of f1 (durability call #2 since the mount)")
        );
        f.write_all(b"more").unwrap();
        f.sync_all().unwrap(); // #3
        sync_dir(root); // #4
        assert_eq!(fs.durability_calls(), 4);
        drop(f);
        // The call and what followed proceeded: the mount still shows it all.
        assert_eq!(std::fs::read(root.join("f1")).unwrap(), b"datamore");
        assert_eq!(fs.unmount().unwrap().files(), files(&[("f1", b"")]));
    }

    /// Inserts row `n` in a transaction of its own.
    fn commit(conn: &rusqlite::Connection, n: i64) {
        conn.execute("INSERT INTO t(n) VALUES (?1)", [n]).unwrap();
    }

    fn rows(conn: &rusqlite::Connection) -> Vec<i64> {
        let mut stmt = conn.prepare("SELECT n FROM t ORDER BY n").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn integrity(conn: &rusqlite::Connection) -> String {
        conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap()
    }

    fn open_wal(path: &Path) -> rusqlite::Connection {
        let conn = rusqlite::Connection::open(path).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        conn.pragma_update(None, "synchronous", "FULL").unwrap();
        conn
    }

    #[test]
    fn sqlite_in_wal_mode_keeps_its_commits_through_a_cut() {
        let (dir, fs) = mounted(Tree::empty());
        let db = dir.path().join("db.sqlite");
        let conn = open_wal(&db);
        conn.execute("CREATE TABLE t(n INTEGER)", []).unwrap();
        for n in 0..3 {
            commit(&conn, n);
        }
        fs.cut_now(Losses::All);
        drop(conn);
        let survivors = fs.unmount().unwrap();
        assert!(survivors.files().contains_key(Path::new("db.sqlite-wal")));

        let fs = LossFs::mount(dir.path(), survivors).unwrap();
        let conn = rusqlite::Connection::open(&db).unwrap();
        assert_eq!(rows(&conn), [0, 1, 2]);
        assert_eq!(integrity(&conn), "ok");
        drop(conn);
        fs.unmount().unwrap();
    }

    #[test]
    fn sqlite_loses_no_returned_commit_at_any_call() {
        const COMMITS: i64 = 5;
        const SEEDS: u64 = 20;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db.sqlite");
        let base = {
            let fs = LossFs::mount(dir.path(), Tree::empty()).unwrap();
            let conn = open_wal(&db);
            conn.execute("CREATE TABLE t(n INTEGER)", []).unwrap();
            drop(conn);
            fs.unmount().unwrap()
        };
        // The run once without a cut: how many durability calls it makes.
        let calls = {
            let fs = LossFs::mount(dir.path(), base.clone()).unwrap();
            let conn = open_wal(&db);
            let before = fs.durability_calls();
            for n in 0..COMMITS {
                commit(&conn, n);
            }
            let calls = fs.durability_calls() - before;
            drop(conn);
            fs.unmount().unwrap();
            calls
        };
        assert!(calls >= COMMITS as u64, "{calls} durability calls");
        let mut trials = 0;
        let mut spread = BTreeMap::new();
        for nth in 1..=calls {
            for seed in 0..SEEDS {
                let fs = LossFs::mount(dir.path(), base.clone()).unwrap();
                let conn = open_wal(&db);
                fs.arm(nth, Losses::Seeded(seed * 1000 + nth));
                let mut returned = 0;
                for n in 0..COMMITS {
                    commit(&conn, n);
                    if fs.cut_at().is_none() {
                        returned += 1;
                    }
                }
                let at = fs.cut_at().expect("the cut was taken");
                drop(conn);
                let survivors = fs.unmount().unwrap();

                let fs = LossFs::mount(dir.path(), survivors).unwrap();
                let conn = rusqlite::Connection::open(&db).unwrap();
                assert_eq!(integrity(&conn), "ok", "cut at {at}, seed {seed}");
                let kept = rows(&conn);
                let k = kept.len() as i64;
                assert_eq!(kept, (0..k).collect::<Vec<_>>(), "cut at {at}, seed {seed}");
                assert!(k >= returned, "{k} rows, {returned} commits returned; {at}");
                *spread.entry(k - returned).or_insert(0) += 1;
                drop(conn);
                fs.unmount().unwrap();
                trials += 1;
            }
        }
        assert_eq!(trials, calls * SEEDS);
        // Not vacuous: some cuts lost the commit in flight, some kept it.
        assert!(
            spread.contains_key(&0) && spread.contains_key(&1),
            "(rows - commits returned, trials): {spread:?}"
        );
    }

    #[test]
    fn a_large_folder_lists_completely() {
        let (dir, fs) = mounted(Tree::empty());
        let many = dir.path().join("many");
        std::fs::create_dir(&many).unwrap();
        for i in 0..500 {
            std::fs::write(many.join(format!("file-{i:03}-with-a-longish-name")), []).unwrap();
        }
        let listed: HashSet<_> = std::fs::read_dir(&many)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(listed.len(), 500);
        assert!(listed.contains(OsStr::new("file-499-with-a-longish-name")));
        // Removing while listing: every name left is still listed once.
        for (i, e) in std::fs::read_dir(&many).unwrap().enumerate() {
            if i % 2 == 0 {
                std::fs::remove_file(e.unwrap().path()).unwrap();
            }
        }
        assert_eq!(std::fs::read_dir(&many).unwrap().count(), 250);
        drop(fs);
    }

    #[test]
    fn a_real_folder_round_trips_through_a_tree_and_the_mount() {
        let src = tempfile::tempdir().unwrap();
        let s = src.path();
        std::fs::create_dir_all(s.join("sub/deeper")).unwrap();
        std::fs::write(s.join("sub/deeper/f"), b"deep").unwrap();
        std::fs::write(s.join("secret"), b"s").unwrap();
        std::fs::set_permissions(s.join("secret"), std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::set_permissions(s.join("sub"), std::fs::Permissions::from_mode(0o750)).unwrap();
        std::os::unix::fs::symlink("sub/deeper/f", s.join("link")).unwrap();
        let tree = Tree::read(s).unwrap();

        let check = |root: &Path| {
            let mode = |p: &str| std::fs::metadata(root.join(p)).unwrap().mode() & 0o7777;
            assert_eq!(mode("secret"), 0o600);
            assert_eq!(mode("sub"), 0o750);
            assert_eq!(
                std::fs::read_link(root.join("link")).unwrap(),
                Path::new("sub/deeper/f")
            );
            assert_eq!(std::fs::read(root.join("link")).unwrap(), b"deep");
        };
        let (dir, fs) = mounted(tree.clone());
        check(dir.path());
        assert_eq!(fs.unmount().unwrap().files(), tree.files());

        let out = tempfile::tempdir().unwrap();
        std::fs::write(out.path().join("secret"), b"overwritten").unwrap();
        tree.write(out.path()).unwrap();
        check(out.path());
        assert_eq!(Tree::read(out.path()).unwrap().files(), tree.files());
        assert_eq!(
            tree.files(),
            files(&[("secret", b"s"), ("sub/deeper/f", b"deep")])
        );
    }

    #[test]
    fn a_busy_mount_is_detached_and_released_when_its_last_file_closes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("underneath"), b"hidden while mounted").unwrap();
        let fs = LossFs::mount(dir.path(), Tree::empty()).unwrap();
        assert!(!dir.path().join("underneath").exists());
        std::fs::write(dir.path().join("open"), b"kept open").unwrap();
        let held = File::open(dir.path().join("open")).unwrap();
        // A process dying late: its files close after the unmount began.
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(held);
        });
        let started = Instant::now();
        let tree = fs.unmount().unwrap();
        closer.join().unwrap();
        assert!(started.elapsed() >= Duration::from_millis(250));
        assert_eq!(tree.files(), files(&[("open", b"kept open")]));
        assert!(dir.path().join("underneath").exists());
        assert!(!dir.path().join("open").exists());
    }

    #[test]
    fn inotify_sees_a_file_created_through_the_mount() {
        use notify::{RecursiveMode, Watcher};
        let (dir, fs) = mounted(Tree::empty());
        let (tx, rx) = std::sync::mpsc::channel();
        let mut watcher = notify::recommended_watcher(move |event| {
            let _ = tx.send(event);
        })
        .unwrap();
        watcher
            .watch(dir.path(), RecursiveMode::NonRecursive)
            .unwrap();
        std::fs::write(dir.path().join("new"), b"x").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let seen = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Ok(event)) if event.paths.iter().any(|p| p.ends_with("new")) => break true,
                Ok(_) => {}
                Err(_) => break false,
            }
        };
        drop(watcher);
        assert!(
            seen,
            "no inotify event for a file created through the mount"
        );
        drop(fs);
    }

    #[test]
    #[allow(
        clippy::disallowed_methods,
        reason = "the replacing rename is one of the calls under test"
    )]
    fn posix_errors_and_the_fallbacks_of_what_is_not_implemented() {
        let (dir, fs) = mounted(Tree::empty());
        let root = dir.path();
        let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).unwrap();
        std::fs::create_dir(root.join("d")).unwrap();
        std::fs::create_dir(root.join("e")).unwrap();
        std::fs::write(root.join("d/f"), b"F").unwrap();
        std::fs::write(root.join("g"), b"G").unwrap();

        assert_eq!(errno(std::fs::remove_dir(root.join("d"))), libc::ENOTEMPTY);
        assert_eq!(errno(std::fs::remove_file(root.join("d"))), libc::EISDIR);
        assert_eq!(errno(std::fs::create_dir(root.join("d"))), libc::EEXIST);
        assert_eq!(errno(std::fs::read(root.join("nothing"))), libc::ENOENT);
        assert_eq!(
            errno(std::fs::rename(root.join("g"), root.join("e"))),
            libc::EISDIR
        );
        assert_eq!(
            errno(std::fs::rename(root.join("e"), root.join("g"))),
            libc::ENOTDIR
        );
        assert_eq!(
            errno(std::fs::rename(root.join("e"), root.join("d"))),
            libc::ENOTEMPTY
        );
        assert_eq!(
            errno(std::fs::hard_link(root.join("d"), root.join("h"))),
            libc::EPERM
        );

        let renameat2 = |from: &Path, to: &Path, flags: u32| {
            let (from, to) = (c(from), c(to));
            // SAFETY: two NUL-terminated paths alive across the call.
            let rc = unsafe {
                libc::renameat2(
                    libc::AT_FDCWD,
                    from.as_ptr(),
                    libc::AT_FDCWD,
                    to.as_ptr(),
                    flags,
                )
            };
            if rc == 0 {
                0
            } else {
                io::Error::last_os_error().raw_os_error().unwrap_or(-1)
            }
        };
        let (f, g) = (root.join("d/f"), root.join("g"));
        assert_eq!(renameat2(&f, &g, libc::RENAME_NOREPLACE), libc::EEXIST);
        assert_eq!(renameat2(&f, &g, libc::RENAME_EXCHANGE), 0);
        assert_eq!(std::fs::read(&f).unwrap(), b"G");
        assert_eq!(std::fs::read(&g).unwrap(), b"F");
        assert_eq!(renameat2(&f, &g, libc::RENAME_WHITEOUT), libc::EINVAL);
        std::fs::rename(root.join("e"), root.join("d/e")).unwrap();
        assert_eq!(
            errno(std::fs::rename(root.join("d"), root.join("d/e/inside"))),
            libc::EINVAL
        );

        // Only regular files: no FIFO.
        let fifo = c(&root.join("fifo"));
        // SAFETY: a NUL-terminated path alive across the call.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, -1);
        assert_eq!(io::Error::last_os_error().raw_os_error(), Some(libc::EPERM));

        // fallocate: mode 0 grows the file; the others are refused.
        let file = OpenOptions::new().write(true).open(&g).unwrap();
        let fd = std::os::fd::AsRawFd::as_raw_fd(&file);
        // SAFETY: `fd` is open for the whole call.
        assert_eq!(unsafe { libc::fallocate(fd, 0, 0, 8192) }, 0);
        assert_eq!(file.metadata().unwrap().len(), 8192);
        // SAFETY: as above.
        let rc = unsafe { libc::fallocate(fd, libc::FALLOC_FL_KEEP_SIZE, 0, 16384) };
        assert_eq!(rc, -1);
        assert_eq!(
            io::Error::last_os_error().raw_os_error(),
            Some(libc::EOPNOTSUPP)
        );
        file.set_len(1).unwrap();
        drop(file);
        assert_eq!(std::fs::read(&g).unwrap(), b"F");

        // Left to ENOSYS: extended attributes (which the kernel reports as
        // unsupported) and copy_file_range, which std::fs::copy does without.
        let name = CString::new("user.x").unwrap();
        let path = c(&g);
        // SAFETY: NUL-terminated strings alive across the call; no buffer (size 0).
        let rc = unsafe { libc::getxattr(path.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) };
        assert_eq!(rc, -1);
        assert_eq!(
            io::Error::last_os_error().raw_os_error(),
            Some(libc::EOPNOTSUPP)
        );
        assert_eq!(std::fs::copy(&g, root.join("copy")).unwrap(), 1);
        assert_eq!(std::fs::read(root.join("copy")).unwrap(), b"F");

        // statfs has room, and the times move.
        let before = std::fs::metadata(root.join("d"))
            .unwrap()
            .modified()
            .unwrap();
        std::thread::sleep(Duration::from_millis(5));
        std::fs::write(root.join("d/new"), b"").unwrap();
        let after = std::fs::metadata(root.join("d"))
            .unwrap()
            .modified()
            .unwrap();
        assert!(after > before);
        let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
        let rootc = c(root);
        // SAFETY: a NUL-terminated path and a buffer of the right type.
        assert_eq!(unsafe { libc::statvfs(rootc.as_ptr(), st.as_mut_ptr()) }, 0);
        // SAFETY: statvfs succeeded, so it filled the buffer.
        let st = unsafe { st.assume_init() };
        assert!(st.f_bavail > 0 && st.f_ffree > 0);
        drop(fs);
    }
}
