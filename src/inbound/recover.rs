//! Recover: before a listed file is claimed, find the archive move a crash
//! cut, as the journal decides.
//!
//! Takes a listed [`Pair`] and the folders of its link side; returns the
//! [`Due`] move, if any, for [`archive`] to finish. An archive move leaves the
//! manifest where it was listed until its last step, so a cut move is listed
//! again, and its traces say where to look: a `.reason` in `error/` naming
//! this very manifest (written before a rejection moves anything) sends the
//! pair on to `error/`; the payload gone from beside its manifest, or a
//! second hard link on either file, make the store's journal decide: a file
//! journaled applied or ignored with the payload digest its (authentic)
//! manifest carries goes on to `done/`, one journaled parked goes on to
//! `parked/`. A trace the journal does not explain (a hard link made by
//! someone else, a payload that never came) is no move of ours: the file is
//! claimed as a new one, and refused there. Reads the store, never writes
//! it; moves nothing.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::InboundError;
use super::archive::{self, Pair};
use crate::config::{Folders, Link};
use crate::format::Limits;
use crate::format::envelope::{self, MANIFEST_MAX, Manifest, Secret};
use crate::store::Store;
use crate::store::journal::{self, Direction, FileState};
use crate::transport::local;

/// A move a crash cut, to finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// The pair to move: the listed one, or (for a manifest listed in
    /// `parked/` whose inbox name is still there) the inbox's.
    pub pair: Pair,
    pub to: Destination,
}

/// Where a [`Due`] move goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// Journaled applied or ignored with this payload digest: `done/`.
    Done { sequence: u64, sha256: [u8; 32] },
    /// Journaled parked, or already linked into `parked/`: `parked/`
    /// (the digest finds a payload moved there already).
    Parked { sha256: Option<[u8; 32]> },
    /// Rejected: the `.reason` at this slot of `error/` names the manifest.
    Error { slot: u32 },
}

/// The move a crash cut on `pair`, if any (see the module's doc).
pub fn due(
    store: &Store,
    link: &Link,
    secret: &Secret,
    pair: &Pair,
    folders: &Folders,
    limits: &Limits,
) -> Result<Option<Due>, InboundError> {
    let name = super::claim::display_name(&pair.manifest);
    let io = |source| InboundError::Io {
        file: name.clone(),
        source,
    };
    if let Some(slot) = archive::rejection_slot(pair, &folders.error).map_err(io)? {
        return Ok(Some(Due {
            pair: pair.clone(),
            to: Destination::Error { slot },
        }));
    }
    if !traced(pair).map_err(io)? {
        return Ok(None);
    }
    let listed_in_parked = pair.is_in(&folders.parked);
    // The inbox's move into parked/ linked the manifest (so the payload was
    // there already) and was cut before removing the inbox's name.
    if listed_in_parked {
        let inbox = pair.in_folder(&folders.inbox);
        if local::same_file(&inbox.manifest, &pair.manifest).map_err(io)? {
            return Ok(Some(Due {
                pair: inbox,
                to: Destination::Parked { sha256: None },
            }));
        }
    }
    let Some(manifest) = authentic(pair, link, secret) else {
        return Ok(None);
    };
    let entry = store.read(|conn| {
        journal::lookup(
            conn,
            &link.name,
            manifest.kind,
            Direction::In,
            manifest.sequence,
        )
    })?;
    let Some(entry) = entry.filter(|e| e.sha256 == hex::encode(manifest.sha256)) else {
        return Ok(None);
    };
    let to = match entry.state {
        FileState::Applied | FileState::Ignored if payload_matches(pair, &manifest, limits) => {
            Destination::Done {
                sequence: manifest.sequence,
                sha256: manifest.sha256,
            }
        }
        FileState::Parked if !listed_in_parked => Destination::Parked {
            sha256: Some(manifest.sha256),
        },
        _ => return Ok(None),
    };
    Ok(Some(Due {
        pair: pair.clone(),
        to,
    }))
}

/// Whether the folders show a trace of a cut move on `pair` (the manifest's
/// `.reason` aside): its payload gone, or a second hard link on either file.
/// File-system only: the daemon asks it of files it would hold for an apply
/// window, so a cut move is finished at the next listing anyway.
pub fn traced(pair: &Pair) -> std::io::Result<bool> {
    let Some(payload) = &pair.payload else {
        return Ok(false);
    };
    let links = |path: &Path| match std::fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(meta.nlink())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    };
    let Some(manifest) = links(&pair.manifest)? else {
        return Ok(false);
    };
    Ok(manifest > 1 || links(payload)?.is_none_or(|n| n > 1))
}

/// Whether a move into `error/` started on `pair` or the folders show a trace
/// of another cut move: [`due`] would look at the store.
pub fn unfinished(pair: &Pair, folders: &Folders) -> bool {
    traced(pair).unwrap_or(true)
        || archive::rejection_slot(pair, &folders.error).is_ok_and(|slot| slot.is_some())
}

/// The pair's manifest, read whatever its link count (a second link may be
/// our own cut move), authenticated with the link's secret and matching what
/// the link expects; `None` otherwise (then the file is claimed as new, and
/// refused there with the reason).
fn authentic(pair: &Pair, link: &Link, secret: &Secret) -> Option<Manifest> {
    let name = super::claim::display_name(&pair.manifest);
    let (file, _) = local::open_regular_linked(&pair.manifest, MANIFEST_MAX as u64).ok()?;
    let mut bytes = Vec::new();
    file.take(MANIFEST_MAX as u64 + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    let manifest = envelope::authenticate(&bytes, &name, secret).ok()?;
    manifest
        .expect(&link.expectation(manifest.kind), &name)
        .ok()?;
    Some(manifest)
}

/// Whether the payload still beside the manifest (if any) is the one it
/// announces: only then does the pair go to `done/` as applied.
fn payload_matches(pair: &Pair, manifest: &Manifest, limits: &Limits) -> bool {
    let Some(path) = &pair.payload else {
        return false;
    };
    match local::open_regular_linked(path, limits.max_file_bytes) {
        Ok((mut file, _)) => envelope::check_payload(
            manifest,
            &mut file,
            &super::claim::display_name(path),
            limits.max_file_bytes,
        )
        .is_ok(),
        // Moved into done/ already: found there by its digest.
        Err(local::OpenError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(_) => false,
    }
}
