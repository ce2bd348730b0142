//! Claim: open a manifest and its payload safely, before anything is trusted.
//!
//! Takes the path of a manifest (`<link>.<KIND>.<sequence>.stx`) and returns a
//! [`Claimed`] pair: the manifest's bytes and an open handle on the payload.
//! Both are opened without following symlinks and without blocking (a FIFO
//! cannot hang us), and must be regular files with one link, under the size
//! limits. The handles, not the names, are what later stages read, so a file
//! swapped after this point is not the one we read. Moving the pair into a
//! private folder (so two workers never take the same file) is the
//! transports' job; this stage only opens.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::InboundError;
use crate::exchange::FileName;
use crate::format::envelope::MANIFEST_MAX;
use crate::format::{FormatError, Limits, Position};
use crate::transport::local;
use crate::transport::progress::{Counted, Watch};

/// A manifest read and its payload opened.
#[derive(Debug)]
pub struct Claimed {
    pub manifest_path: PathBuf,
    pub manifest: Vec<u8>,
    pub payload_path: PathBuf,
    /// Counted as it is read, for the [`Watch`] given to [`claim`].
    pub payload: Counted<File>,
    /// The payload's size when opened.
    pub payload_len: u64,
}

impl Claimed {
    /// The manifest's name as written in errors.
    pub fn manifest_name(&self) -> String {
        display_name(&self.manifest_path)
    }

    /// The payload's name as written in errors.
    pub fn payload_name(&self) -> String {
        display_name(&self.payload_path)
    }
}

/// [`local::open_regular`], with its refusal as a rejection of the file.
pub fn open_regular(path: &Path, max: u64) -> Result<(File, u64), InboundError> {
    let name = display_name(path);
    local::open_regular(path, max).map_err(|e| match e {
        local::OpenError::Refused { code, problem } => {
            FormatError::new(&name, Position::File, code, problem).into()
        }
        local::OpenError::Io(source) => InboundError::Io { file: name, source },
    })
}

pub fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Opens a manifest and its payload (found beside it by name).
pub fn claim(manifest_path: &Path, limits: &Limits) -> Result<Claimed, InboundError> {
    claim_watched(manifest_path, limits, &Watch::none())
}

/// [`claim`], `watch` hearing how far the stages after this one read the
/// payload (a one-shot command's progress bar).
pub fn claim_watched(
    manifest_path: &Path,
    limits: &Limits,
    watch: &Watch,
) -> Result<Claimed, InboundError> {
    let manifest_name = display_name(manifest_path);
    let name = FileName::parse_manifest(&manifest_name).map_err(|problem| {
        FormatError::new(
            &manifest_name,
            Position::File,
            "bad-file-name",
            problem.to_string(),
        )
    })?;
    let (mut manifest_file, manifest_len) = open_regular(manifest_path, MANIFEST_MAX as u64)?;
    let mut manifest = Vec::with_capacity(manifest_len as usize);
    (&mut manifest_file)
        .take(MANIFEST_MAX as u64 + 1)
        .read_to_end(&mut manifest)
        .map_err(|source| InboundError::Io {
            file: manifest_name.clone(),
            source,
        })?;
    let payload_name = name.to_payload().to_string();
    let payload_path = manifest_path.with_file_name(&payload_name);
    let (payload, payload_len) = match open_regular(&payload_path, limits.max_file_bytes) {
        Err(InboundError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(FormatError::new(
                &manifest_name,
                Position::File,
                "missing-payload",
                format!("expected the payload {payload_name} beside the manifest, found nothing"),
            )
            .into());
        }
        other => other?,
    };
    Ok(Claimed {
        manifest_path: manifest_path.to_owned(),
        manifest,
        payload: watch.reader(payload, &payload_name, payload_len),
        payload_path,
        payload_len,
    })
}
