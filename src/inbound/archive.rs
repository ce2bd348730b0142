//! Archive: move a handled pair out of the way, durably, after the store has
//! committed.
//!
//! Takes the manifest path of a pair and a destination folder (`done/`,
//! `parked/` or `error/`); moves the manifest first (so the folder it leaves
//! stops presenting the pair as complete), then the payload, never replacing
//! a file already in the destination, and fsyncs both folders. A rejected
//! pair gets a `<manifest>.reason` file beside it saying why. This stage only
//! moves files; what they meant is already in the store.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::InboundError;
use crate::format::envelope::Manifest;
use crate::transport::local::{self, Placed, sync_dir};

/// Moves the pair of `manifest` (and its payload, if present) into `dest`.
/// Returns the new manifest path.
pub fn move_pair(manifest: &Path, payload: Option<&Path>, dest: &Path) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dest)?;
    let moved = move_one(manifest, dest)?;
    if let Some(payload) = payload
        && payload.exists()
    {
        move_one(payload, dest)?;
    }
    sync_dir(dest)?;
    if let Some(src_dir) = manifest.parent() {
        sync_dir(src_dir)?;
    }
    Ok(moved)
}

/// Moves one file into `dest` under its name; if that name is taken by a
/// file with other content, under `<name>.<n>` (nothing is ever replaced).
fn move_one(file: &Path, dest: &Path) -> io::Result<PathBuf> {
    let name = file
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let mut target = dest.join(name);
    for n in 1.. {
        match local::link_new(file, &target) {
            Ok(Placed::Linked | Placed::Same) => break,
            Ok(Placed::Other) => target = dest.join(format!("{}.{n}", name.to_string_lossy())),
            // Archived meanwhile by another stxd process that handled it too
            // (the journal made sure only one applied it).
            Err(e) if e.kind() == io::ErrorKind::NotFound && !file.exists() => return Ok(target),
            Err(e) => return Err(e),
        }
    }
    match std::fs::remove_file(file) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    Ok(target)
}

/// Writes `<manifest>.reason` beside a rejected pair in `error/`.
pub fn write_reason(moved_manifest: &Path, error: &InboundError) -> io::Result<()> {
    let mut name = moved_manifest.as_os_str().to_owned();
    name.push(".reason");
    let path = PathBuf::from(name);
    let mut text = format!(
        "file: {}\ncode: {}\nreason: {error}\nat: {}\n",
        moved_manifest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        error.code(),
        crate::store::now(),
    );
    if let InboundError::Rejected(f) = error {
        text.push_str(&format!("position: {}\n", f.position));
    }
    let tmp = path.with_extension("reason.part");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    drop(file);
    #[allow(clippy::disallowed_methods)] // our own temporary file, replaced on purpose
    std::fs::rename(&tmp, &path)?;
    Ok(())
}

/// The payload path of a manifest path, from its name (it may be missing).
pub fn payload_of(manifest: &Path) -> Option<PathBuf> {
    let name = manifest.file_name()?.to_str()?;
    let (link, kind, seq) = super::claim::parse_manifest_name(name).ok()?;
    Some(manifest.with_file_name(Manifest::payload_name(&link, kind, seq)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_never_replaces_other_content() {
        let dir = tempfile::tempdir().unwrap();
        let done = dir.path().join("done");
        let a = dir.path().join("a.SALES.00000001.stx");
        std::fs::write(&a, "one").unwrap();
        move_pair(&a, None, &done).unwrap();
        std::fs::write(&a, "two").unwrap();
        let second = move_pair(&a, None, &done).unwrap();
        assert_eq!(second, done.join("a.SALES.00000001.stx.1"));
        assert_eq!(
            std::fs::read_to_string(done.join("a.SALES.00000001.stx")).unwrap(),
            "one"
        );
        std::fs::write(&a, "one").unwrap();
        assert_eq!(
            move_pair(&a, None, &done).unwrap(),
            done.join("a.SALES.00000001.stx")
        );
        assert!(!a.exists());
    }
}
