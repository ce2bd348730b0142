//! Pulling: every complete pair this side receives downloaded into the
//! inbox (payload first, manifest last, never replacing a file), then the
//! remote originals removed once the local pair is durable.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use ssh2::ErrorCode;

use super::errors::{SFTP_NO_SUCH_FILE, error};
use super::local::{self, Placed};
use super::{
    BUFFER, DOWNLOAD_SUFFIX, Fault, Io, Job, Moved, SftpError, download_name, listable, remote_path,
};
use crate::failpoint;

/// The most bytes read of a manifest found without its payload: far above
/// any manifest (the envelope caps them at a few KiB); a larger file is no
/// manifest and stays where it is.
const LONE_MANIFEST_MAX: u64 = 64 * 1024;

impl Io<'_> {
    /// Pulls every complete pair this side receives into the inbox, then
    /// removes the remote originals: payload first, manifest last, so a
    /// crash between the two leaves a manifest without its payload, which
    /// the peer's uploads (payload first, manifest last) never show and
    /// which [`Io::lone_manifest`] removes once this side holds the pair.
    pub(super) fn pull(&self, job: &Job<'_>, moved: &mut Moved) -> Result<(), SftpError> {
        std::fs::create_dir_all(job.inbox).map_err(|e| self.local("create", job.inbox, e))?;
        remove_leftover_parts(job.inbox).map_err(|e| self.local("clean", job.inbox, e))?;
        let folder = remote_path(&self.ep.remote_dir, job.remote_in, "");
        let entries = match self.sftp.readdir(&folder) {
            Ok(entries) => entries,
            Err(e) if e.code() == ErrorCode::SFTP(SFTP_NO_SUCH_FILE) => return Ok(()),
            Err(e) => return Err(self.remote("list", &folder, e)),
        };
        let files: BTreeMap<String, u64> = entries
            .into_iter()
            .filter(|(_, stat)| stat.is_file())
            .filter_map(|(path, stat)| {
                let name = path.file_name()?.to_str()?.to_owned();
                listable(&name).then_some((name, stat.size.unwrap_or(0)))
            })
            .collect();
        for (manifest, &manifest_size) in &files {
            let Some(payload) = (job.accept)(manifest) else {
                continue;
            };
            let Some(&payload_size) = files.get(&payload) else {
                self.lone_manifest(job, manifest, manifest_size, &payload, moved)?;
                continue;
            };
            if payload_size > job.max_bytes || manifest_size > job.max_bytes {
                let alert = format!(
                    "{} on {} is larger than {} bytes: not downloaded, left on the share; ask the peer about it",
                    remote_path(&self.ep.remote_dir, job.remote_in, &payload).display(),
                    self.ep.address(),
                    job.max_bytes
                );
                tracing::error!(link = %self.ep.link, file = %payload, "file too large to pull");
                moved.alerts.push(alert);
                continue;
            }
            let mut placed_all = true;
            for (name, size) in [(&payload, payload_size), (manifest, manifest_size)] {
                let remote = remote_path(&self.ep.remote_dir, job.remote_in, name);
                if let Some(alert) = self.download(&remote, size, job.inbox, name)? {
                    tracing::error!(link = %self.ep.link, file = %name, problem = %alert, "pair not pulled");
                    moved.alerts.push(alert);
                    placed_all = false;
                    break;
                }
            }
            if !placed_all {
                continue;
            }
            local::sync_dir(job.inbox).map_err(|e| self.local("sync", job.inbox, e))?;
            failpoint::hit("sftp.pull.placed");
            // Durable locally: now the originals may go.
            self.remove_remote(job.remote_in, &payload)?;
            failpoint::hit("sftp.pull.first-removed");
            self.remove_remote(job.remote_in, manifest)?;
            tracing::info!(link = %self.ep.link, file = %manifest, server = %self.ep.address(), "pair pulled");
            moved.pulled.push(manifest.clone());
        }
        Ok(())
    }

    /// Removes a pulled file from the share; one already gone (removed by
    /// an earlier run) is fine.
    fn remove_remote(&self, folder: &str, name: &str) -> Result<(), SftpError> {
        let remote = remote_path(&self.ep.remote_dir, folder, name);
        match self.sftp.unlink(&remote) {
            Ok(()) => Ok(()),
            Err(e) if e.code() == ErrorCode::SFTP(SFTP_NO_SUCH_FILE) => Ok(()),
            Err(e) => Err(self.remote("remove the pulled", &remote, e)),
        }
    }

    /// A manifest on the share without its payload: the leftover of a pull
    /// that a crash stopped between its two removals (or of a peer pushing
    /// again a pair this side already took). It is removed when this side
    /// holds that very pair: the inbox has the same manifest bytes and the
    /// payload, or the caller's [`Job::received`] recognises it (the
    /// receiver's journal). Anything else stays, with a warning, for a
    /// person.
    fn lone_manifest(
        &self,
        job: &Job<'_>,
        manifest: &str,
        size: u64,
        payload: &str,
        moved: &mut Moved,
    ) -> Result<(), SftpError> {
        let remote = remote_path(&self.ep.remote_dir, job.remote_in, manifest);
        let bytes = if size <= LONE_MANIFEST_MAX {
            self.read_small(&remote, LONE_MANIFEST_MAX)?
        } else {
            None
        };
        let held = bytes.as_deref().is_some_and(|bytes| {
            inbox_holds(job.inbox, manifest, payload, bytes) || (job.received)(manifest, bytes)
        });
        if !held {
            tracing::warn!(link = %self.ep.link, file = %manifest, payload = %payload, "manifest without its payload on the share; left there");
            return Ok(());
        }
        // The peer may be pushing that pair again right now (its own crash
        // recovery): a payload that appeared since the listing makes it a
        // complete pair, pulled (and found already applied) next time.
        let remote_payload = remote_path(&self.ep.remote_dir, job.remote_in, payload);
        if self.stat(&remote_payload)?.is_some() {
            return Ok(());
        }
        self.remove_remote(job.remote_in, manifest)?;
        tracing::info!(link = %self.ep.link, file = %manifest, server = %self.ep.address(), "manifest left by an interrupted pull removed from the share: this side holds its pair");
        moved.cleaned.push(manifest.to_owned());
        Ok(())
    }

    /// A remote file's content when it holds at most `max` bytes; `None`
    /// when it is larger or gone.
    fn read_small(&self, path: &Path, max: u64) -> Result<Option<Vec<u8>>, SftpError> {
        let mut file = match self.sftp.open(path) {
            Ok(file) => file,
            Err(e) if e.code() == ErrorCode::SFTP(SFTP_NO_SUCH_FILE) => return Ok(None),
            Err(e) => return Err(self.remote("open", path, e)),
        };
        let mut bytes = Vec::new();
        (&mut file)
            .take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| self.stream("read", path, e))?;
        Ok((bytes.len() as u64 <= max).then_some(bytes))
    }

    /// Downloads a remote file to `inbox/.<name>.stxd-download`, checks its size,
    /// syncs it and renames it to `inbox/<name>` (never replacing). `Some`
    /// alert when the inbox holds other bytes under that name.
    fn download(
        &self,
        remote: &Path,
        size: u64,
        inbox: &Path,
        name: &str,
    ) -> Result<Option<String>, SftpError> {
        let part = inbox.join(download_name(name));
        let target = inbox.join(name);
        // A name already held with another size is a conflict without
        // downloading it again (a share polled every few seconds would
        // otherwise fetch the whole file each time).
        if let Ok(meta) = std::fs::symlink_metadata(&target)
            && (!meta.is_file() || meta.len() != size)
        {
            return Ok(Some(format!(
                "{} already holds other content than {} on {} ({} bytes there, {size} on the share): nothing was overwritten and the remote file stays on the share; compare both with the peer",
                target.display(),
                remote.display(),
                self.ep.address(),
                meta.len()
            )));
        }
        let result = self.download_part(remote, size, &part);
        if let Err(e) = result {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
        match place_download(&part, &target).map_err(|e| self.local("place", &target, e))? {
            Placed::Linked | Placed::Same => Ok(None),
            Placed::Other => Ok(Some(format!(
                "{} already holds other content than {} on {}: nothing was overwritten and the remote file stays on the share; compare both with the peer",
                target.display(),
                remote.display(),
                self.ep.address()
            ))),
        }
    }

    fn download_part(&self, remote: &Path, size: u64, part: &Path) -> Result<(), SftpError> {
        let mut input = self
            .sftp
            .open(remote)
            .map_err(|e| self.remote("open", remote, e))?;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(part)
            .map_err(|e| self.local("create", part, e))?;
        let mut buf = vec![0u8; BUFFER];
        let mut got = 0u64;
        loop {
            let n = input
                .read(&mut buf)
                .map_err(|e| self.stream("read", remote, e))?;
            if n == 0 {
                break;
            }
            got += n as u64;
            self.traffic.received(n as u64);
            if got > size {
                break;
            }
            out.write_all(&buf[..n])
                .map_err(|e| self.local("write", part, e))?;
        }
        if got != size {
            return Err(error(
                self.ep,
                Fault::Transient,
                false,
                format!(
                    "{} changed while downloading (listed with {size} bytes, read {got}): retried at the next poll",
                    remote.display()
                ),
            ));
        }
        out.sync_all().map_err(|e| self.local("sync", part, e))
    }
}

/// Removes the `.<name>.stxd-download` files a crashed download left in
/// the inbox (only this transport writes that suffix).
fn remove_leftover_parts(inbox: &Path) -> io::Result<()> {
    let mut removed = false;
    for entry in std::fs::read_dir(inbox)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(DOWNLOAD_SUFFIX) && entry.file_type()?.is_file()
        {
            std::fs::remove_file(entry.path())?;
            tracing::info!(file = %entry.path().display(), "leftover partial download removed");
            removed = true;
        }
    }
    if removed {
        local::sync_dir(inbox)?;
    }
    Ok(())
}

/// Gives a synced download its final name in the inbox without ever
/// replacing a file ([`local::rename_new`]: the placed file never has two
/// names, which the claim stage would refuse), then drops the temporary
/// name if it is still there (the name was taken: the bytes decide).
fn place_download(part: &Path, target: &Path) -> io::Result<Placed> {
    let placed = local::rename_new(part, target);
    let _ = std::fs::remove_file(part);
    placed
}

/// Whether the inbox holds a pair whose manifest has exactly these bytes
/// (placed by a pull, not yet processed).
fn inbox_holds(inbox: &Path, manifest: &str, payload: &str, bytes: &[u8]) -> bool {
    let regular = |name: &str| {
        std::fs::symlink_metadata(inbox.join(name))
            .ok()
            .filter(|m| m.is_file())
    };
    regular(payload).is_some()
        && regular(manifest).is_some_and(|m| m.len() == bytes.len() as u64)
        && std::fs::read(inbox.join(manifest)).is_ok_and(|held| held == bytes)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;

    #[test]
    fn a_download_gets_its_name_alone_and_never_replaces_one() {
        let dir = tempfile::tempdir().unwrap();
        let (part, target) = (dir.path().join(".f.stxd-download"), dir.path().join("f"));
        std::fs::write(&part, "bytes").unwrap();
        assert_eq!(place_download(&part, &target).unwrap(), Placed::Linked);
        assert!(!part.exists());
        assert_eq!(std::fs::metadata(&target).unwrap().nlink(), 1);
        std::fs::write(&part, "bytes").unwrap();
        assert_eq!(place_download(&part, &target).unwrap(), Placed::Same);
        assert!(!part.exists());
        std::fs::write(&part, "other").unwrap();
        assert_eq!(place_download(&part, &target).unwrap(), Placed::Other);
        assert!(!part.exists());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "bytes");
    }

    #[test]
    fn the_inbox_holds_a_pair_only_with_the_same_manifest_bytes_and_a_payload() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = dir.path();
        std::fs::write(inbox.join("m.stx"), "manifest").unwrap();
        assert!(!inbox_holds(inbox, "m.stx", "m.csv", b"manifest"));
        std::fs::write(inbox.join("m.csv"), "payload").unwrap();
        assert!(inbox_holds(inbox, "m.stx", "m.csv", b"manifest"));
        assert!(!inbox_holds(inbox, "m.stx", "m.csv", b"manifesT"));
        assert!(!inbox_holds(inbox, "m.stx", "m.csv", b"manifest, longer"));
    }
}
