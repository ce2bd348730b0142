//! Pushing: every outgoing pair uploaded (payload, then manifest, each
//! under a temporary name first, never replacing a file), then moved into
//! `outbox/sent/`.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use ssh2::{ErrorCode, OpenFlags, OpenType};

use super::errors::{SFTP_OP_UNSUPPORTED, error};
use super::local::{self, Placed};
use super::{BUFFER, Fault, Io, Job, Moved, Pair, SftpError, part_name, remote_path};
use crate::config::RemoteFsync;
use crate::failpoint;

/// What an upload found.
enum Uploaded {
    Done,
    /// The final name holds other bytes: an alert, nothing overwritten.
    Conflict(String),
}

impl Io<'_> {
    /// SHA-256 of a remote file's content.
    fn remote_digest(&self, path: &Path) -> Result<[u8; 32], SftpError> {
        let mut file = self
            .sftp
            .open(path)
            .map_err(|e| self.remote("open", path, e))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; BUFFER];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| self.stream("read", path, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(hasher.finalize().into())
    }

    /// Pushes every outgoing pair (payload, then manifest) and moves each
    /// pushed pair into `outbox/sent/`. A pair whose manifest `sent/`
    /// already holds as the very file in the outbox (same inode) was pushed
    /// whole before a crash cut [`Io::to_sent`] short: only the move is
    /// finished, nothing is uploaded again (the peer may have taken the
    /// pair off the share meanwhile).
    pub(super) fn push(&self, job: &Job<'_>, moved: &mut Moved) -> Result<(), SftpError> {
        if job.outgoing.is_empty() {
            return Ok(());
        }
        let folder = remote_path(&self.ep.remote_dir, job.remote_out, "");
        if self.stat(&folder)?.is_none() {
            self.sftp
                .mkdir(&folder, 0o755)
                .map_err(|e| self.remote("create the folder", &folder, e))?;
        }
        'pairs: for pair in job.outgoing {
            if moved_to_sent(job.outbox, pair) {
                tracing::info!(link = %self.ep.link, file = %pair.manifest, "pair pushed before a crash: finishing its move to sent/");
            } else {
                for name in [&pair.payload, &pair.manifest] {
                    let local_path = job.outbox.join(name);
                    let remote = remote_path(&self.ep.remote_dir, job.remote_out, name);
                    match self.upload(&local_path, &remote, name)? {
                        Uploaded::Done => {}
                        Uploaded::Conflict(alert) => {
                            tracing::error!(link = %self.ep.link, file = %name, problem = %alert, "pair not pushed");
                            moved.alerts.push(alert);
                            continue 'pairs;
                        }
                    }
                    if name == &pair.payload {
                        failpoint::hit("sftp.push.payload-renamed");
                    }
                }
                failpoint::hit("sftp.push.manifest-renamed");
            }
            match self.to_sent(job.outbox, pair)? {
                None => {
                    tracing::info!(link = %self.ep.link, file = %pair.manifest, server = %self.ep.address(), "pair pushed");
                    moved.pushed.push(pair.manifest.clone());
                }
                Some(alert) => {
                    tracing::error!(link = %self.ep.link, file = %pair.manifest, problem = %alert, "pair pushed but kept in the outbox");
                    moved.alerts.push(alert);
                }
            }
        }
        Ok(())
    }

    /// Uploads one file under `.<name>.part`, synced and closed, then renames
    /// it to its final name (which libssh2 never overwrites).
    fn upload(&self, local_path: &Path, remote: &Path, name: &str) -> Result<Uploaded, SftpError> {
        if self.stat(remote)?.is_some() {
            return self.compare(remote, local_path);
        }
        let part = remote.with_file_name(part_name(name));
        let mut input = File::open(local_path).map_err(|e| self.local("open", local_path, e))?;
        let mut file = self.create_part(&part)?;
        let mut buf = vec![0u8; BUFFER];
        let mut sent = 0u64;
        loop {
            let n = input
                .read(&mut buf)
                .map_err(|e| self.local("read", local_path, e))?;
            if n == 0 {
                break;
            }
            if let Err(e) = file.write_all(&buf[..n]) {
                drop(file);
                return Err(self.write_failed(&part, sent, e));
            }
            sent += n as u64;
            self.traffic.sent(n as u64);
        }
        self.fsync(&mut file, &part)?;
        file.close().map_err(|e| self.remote("close", &part, e))?;
        drop(file);
        let size = self.stat(&part)?.and_then(|s| s.size);
        if size != Some(sent) {
            return Err(error(
                self.ep,
                Fault::Transient,
                false,
                format!(
                    "{} holds {size:?} bytes after the upload, expected {sent}; the upload is retried",
                    part.display()
                ),
            ));
        }
        if let Err(e) = self.sftp.rename(&part, remote, None) {
            // The final name appeared meanwhile (another attempt's rename):
            // the bytes decide.
            if self.stat(remote)?.is_some() {
                let _ = self.sftp.unlink(&part);
                return self.compare(remote, local_path);
            }
            return Err(self.remote("rename into place", &part, e));
        }
        Ok(Uploaded::Done)
    }

    /// Creates (or truncates) the temporary file of an upload. A leftover
    /// of a cut upload that the server refuses to overwrite (ProFTPD's
    /// default `AllowOverwrite off`) is removed and the file created again.
    fn create_part(&self, part: &Path) -> Result<ssh2::File, SftpError> {
        // Group-writable (less the server's umask: `internal-sftp -u
        // 0007`): the peer's stxd, another user in the share's group, moves
        // the pair into done/ with hard links, and Linux refuses to link a
        // file of another user one cannot write (fs.protected_hardlinks).
        let create = || {
            self.sftp.open_mode(
                part,
                OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE,
                0o660,
                OpenType::File,
            )
        };
        match create() {
            Ok(file) => Ok(file),
            Err(e) => {
                if matches!(e.code(), ErrorCode::SFTP(_))
                    && self.stat(part)?.is_some()
                    && self.sftp.unlink(part).is_ok()
                {
                    tracing::info!(link = %self.ep.link, file = %part.display(), "leftover of a cut upload removed from the share");
                    return create().map_err(|e| self.remote("create", part, e));
                }
                Err(self.remote("create", part, e))
            }
        }
    }

    /// A write into the temporary file failed. When the session still
    /// answers, the server refused the bytes (a full disk, a quota, a size
    /// limit): the temporary file is removed and the fault is transient,
    /// named as such. Otherwise the connection failed.
    fn write_failed(&self, part: &Path, sent: u64, e: io::Error) -> SftpError {
        if self.stat(part).is_err() {
            return self.stream("write", part, e);
        }
        let _ = self.sftp.unlink(part);
        error(
            self.ep,
            Fault::Transient,
            false,
            format!(
                "{} refused to write {} after {sent} bytes: {e}; the share is full or over a quota or file size limit: ask the peer's admin to free space or raise the limit (the partial file was removed; the upload is retried)",
                self.ep.address(),
                part.display()
            ),
        )
    }

    /// Syncs an upload on the server with `fsync@openssh.com`. A server
    /// without it: with `remote_fsync = "auto"`, the uploads of this
    /// session go without it (one warning); with "required", a permanent
    /// fault naming the setting.
    fn fsync(&self, file: &mut ssh2::File, part: &Path) -> Result<(), SftpError> {
        if self.no_fsync.get() {
            return Ok(());
        }
        match file.fsync() {
            Ok(()) => Ok(()),
            Err(e) if e.code() == ErrorCode::SFTP(SFTP_OP_UNSUPPORTED) => {
                match self.ep.remote_fsync {
                    RemoteFsync::Auto => {
                        self.no_fsync.set(true);
                        tracing::warn!(link = %self.ep.link, server = %self.ep.address(), "the server does not support fsync@openssh.com: this session's uploads are not synced on the server before their rename (the receiver still checks each file's size and SHA-256); set the link's transport.remote_fsync = \"required\" to refuse such a server");
                        Ok(())
                    }
                    RemoteFsync::Required => Err(error(
                        self.ep,
                        Fault::Permanent,
                        false,
                        format!(
                            "cannot fsync {}: the server does not support fsync@openssh.com and the link's transport.remote_fsync is \"required\"; ask the peer's admin to enable it, or set remote_fsync = \"auto\" to push without a remote fsync",
                            part.display()
                        ),
                    )),
                }
            }
            Err(e) => Err(self.remote("fsync", part, e)),
        }
    }

    /// An existing remote final name: done when it holds our bytes. (The
    /// outgoing file is read for its digest only then: most uploads never
    /// meet a name already there.)
    fn compare(&self, remote: &Path, local_path: &Path) -> Result<Uploaded, SftpError> {
        let local_digest = file_digest(local_path)
            .map_err(|e| self.local("read the outgoing file", local_path, e))?;
        if self.remote_digest(remote)? == local_digest {
            Ok(Uploaded::Done)
        } else {
            Ok(Uploaded::Conflict(format!(
                "{} already exists on {} with other content than {}: nothing was overwritten and the local pair stays in the outbox; compare both with the peer before doing anything",
                remote.display(),
                self.ep.address(),
                local_path.display()
            )))
        }
    }

    /// Moves a pushed pair into `outbox/sent/` ([`move_to_sent`]). `Some`
    /// alert when `sent/` already holds other bytes under a name.
    fn to_sent(&self, outbox: &Path, pair: &Pair) -> Result<Option<String>, SftpError> {
        move_to_sent(outbox, pair).map_err(|(what, path, e)| self.local(what, &path, e))
    }
}

fn file_digest(path: &Path) -> io::Result<[u8; 32]> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; BUFFER];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

/// Moves a pushed pair into `outbox/sent/`: links the payload, then the
/// manifest, into `sent/` (never replacing), syncs `sent/`, then unlinks the
/// payload, then the manifest, from the outbox and syncs it. The manifest
/// goes last both ways: while it is in the outbox the pair is listed again
/// and this move finished, and once it is in `sent/` as the same file the
/// push is known complete ([`moved_to_sent`]). A name already gone from the
/// outbox but in `sent/` was moved by a run a crash cut short. `Some` alert
/// when `sent/` already holds other bytes under a name; a local failure as
/// (what failed, on which path, why).
fn move_to_sent(
    outbox: &Path,
    pair: &Pair,
) -> Result<Option<String>, (&'static str, PathBuf, io::Error)> {
    let sent = outbox.join("sent");
    std::fs::create_dir_all(&sent).map_err(|e| ("create", sent.clone(), e))?;
    for name in [&pair.payload, &pair.manifest] {
        let (from, to) = (outbox.join(name), sent.join(name));
        let placed = match local::link_new(&from, &to) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && to.is_file() => Placed::Same,
            placed => placed.map_err(|e| ("move into sent/", from.clone(), e))?,
        };
        match placed {
            Placed::Linked | Placed::Same => {}
            Placed::Other => {
                return Ok(Some(format!(
                    "{} already holds other content than {}: the pushed pair stays in the outbox; compare them",
                    to.display(),
                    from.display()
                )));
            }
        }
    }
    local::sync_dir(&sent).map_err(|e| ("sync", sent.clone(), e))?;
    failpoint::hit("sftp.push.sent-linked");
    for name in [&pair.payload, &pair.manifest] {
        let from = outbox.join(name);
        match std::fs::remove_file(&from) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(("remove", from, e)),
            _ => {}
        }
    }
    local::sync_dir(outbox).map_err(|e| ("sync", outbox.to_owned(), e))?;
    Ok(None)
}

/// Whether `outbox/sent/` holds the pair's manifest as the very file in the
/// outbox (a hard link [`Io::to_sent`] made): the pair was pushed whole and
/// only its move out of the outbox was cut short.
fn moved_to_sent(outbox: &Path, pair: &Pair) -> bool {
    let meta = |p: PathBuf| std::fs::symlink_metadata(p).ok().filter(|m| m.is_file());
    match (
        meta(outbox.join(&pair.manifest)),
        meta(outbox.join("sent").join(&pair.manifest)),
    ) {
        (Some(a), Some(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outbox_pair(outbox: &Path) -> Pair {
        std::fs::create_dir_all(outbox).unwrap();
        let pair = Pair {
            payload: "l.CONTINGENT.00000001.csv".into(),
            manifest: "l.CONTINGENT.00000001.stx".into(),
        };
        std::fs::write(outbox.join(&pair.payload), "payload").unwrap();
        std::fs::write(outbox.join(&pair.manifest), "manifest").unwrap();
        pair
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_move_to_sent_cut_short_anywhere_is_finished_by_the_next_one() {
        // What a crash leaves after each step of the move: links into
        // sent/ (payload, manifest), then unlinks from the outbox (payload,
        // manifest).
        for steps in 0..=3 {
            let dir = tempfile::tempdir().unwrap();
            let outbox = dir.path().join("outbox");
            let pair = outbox_pair(&outbox);
            let sent = outbox.join("sent");
            std::fs::create_dir_all(&sent).unwrap();
            let names = [&pair.payload, &pair.manifest];
            for name in names.iter().take(steps.min(2)) {
                std::fs::hard_link(outbox.join(name), sent.join(name)).unwrap();
            }
            if steps == 3 {
                std::fs::remove_file(outbox.join(&pair.payload)).unwrap();
            }
            // Pushed whole is known once the manifest is in sent/.
            assert_eq!(moved_to_sent(&outbox, &pair), steps >= 2, "{steps}");
            assert_eq!(move_to_sent(&outbox, &pair).unwrap(), None, "{steps}");
            assert_eq!(entries(&outbox), ["sent"], "{steps}");
            assert_eq!(
                entries(&sent),
                [pair.payload.clone(), pair.manifest.clone()],
                "{steps}"
            );
            for (name, bytes) in [(&pair.payload, "payload"), (&pair.manifest, "manifest")] {
                let path = sent.join(name);
                assert_eq!(std::fs::read_to_string(&path).unwrap(), bytes);
                assert_eq!(std::fs::metadata(&path).unwrap().nlink(), 1, "{steps}");
            }
        }
    }

    #[test]
    fn only_the_very_manifest_in_sent_marks_a_pair_pushed() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = dir.path().join("outbox");
        let pair = outbox_pair(&outbox);
        std::fs::create_dir_all(outbox.join("sent")).unwrap();
        assert!(!moved_to_sent(&outbox, &pair));
        // Same bytes, another file (a copy): not the mark of a push.
        std::fs::copy(
            outbox.join(&pair.manifest),
            outbox.join("sent").join(&pair.manifest),
        )
        .unwrap();
        assert!(!moved_to_sent(&outbox, &pair));
        // Other bytes in sent/: an alert, the pair stays in the outbox.
        std::fs::write(outbox.join("sent").join(&pair.manifest), "other").unwrap();
        let alert = move_to_sent(&outbox, &pair).unwrap().unwrap();
        assert!(alert.contains("other content"), "{alert}");
        assert_eq!(entries(&outbox).len(), 3);
    }
}
