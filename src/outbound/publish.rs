//! Publish: write a payload and its manifest into a folder, durably and
//! without ever overwriting, in two steps an export can put a commit between.
//!
//! [`stage`] streams the payload into `.<payload>.part` and writes the signed
//! manifest into `.<manifest>.part`, both fsynced: nothing is visible to a
//! reader yet (dot names are never taken). [`place`] then gives each staged
//! file its final name by an atomic rename that never replaces (payload
//! first, manifest last: the manifest is the completion marker), and fsyncs
//! the folder. An export commits the sequence between the two steps (see
//! `outbound::export`), so a sequence is never visible before the store has
//! bound it to one content; after a crash, `place` is simply called again:
//! a staged file still there is renamed, a staged file gone was placed
//! already. Nothing is ever re-created. [`publish`] is both steps at once,
//! for pairs no store journals (test fixtures, samples).
//!
//! A final name that already exists is never replaced: the same bytes mean
//! "already placed", other bytes are an error for a person to look at.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::failpoint;
use crate::format::envelope::{Manifest, STREAM_BUFFER, Sealing, Secret};
use crate::format::{Kind, WriteError};
use crate::transport::local::{self, Placed, sync_dir};

/// The folder an SFTP push moves published pairs into, inside the outbox.
pub const SENT: &str = "sent";

/// Who sends what to whom, and where in the link's sequence.
#[derive(Debug, Clone)]
pub struct Header {
    pub kind: Kind,
    /// The payload's format version (see [`crate::format::max_format_version`]).
    pub format_version: u32,
    pub link: String,
    pub sender: String,
    pub recipient: String,
    pub login: String,
    pub sequence: u64,
    pub created: OffsetDateTime,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write the payload: {0}")]
    Payload(WriteError),
    #[error(
        "{path} already exists with other content: a file of this link, kind and sequence was published before with different content; it was left untouched, investigate before re-exporting"
    )]
    Conflict { path: PathBuf },
    #[error("cannot mark the placed pair published: {0}")]
    Store(#[from] crate::store::StoreError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> PublishError + use<> {
    let path = path.to_owned();
    move |source| PublishError::Io { path, source }
}

/// A payload written and synced under its temporary name, with the signed
/// manifest that will describe it.
#[derive(Debug, Clone)]
pub struct Staged {
    pub manifest: Manifest,
    /// The manifest file's exact bytes (what an export records).
    pub manifest_text: String,
}

/// The temporary name of a file `name` while it is staged or written.
pub fn part_name(name: &str) -> String {
    format!(".{name}.part")
}

/// Whether `dir` holds a staged name of link `link` (`.<link>.….part`):
/// an export prepared, rolled back or cut before its names were placed.
/// None means every committed export of the link in `dir` is placed (only
/// its state may be left to mark, which the next export does). A folder
/// that cannot be read counts as holding one: the caller then looks in the
/// store.
pub fn has_staged(dir: &std::path::Path, link: &str) -> bool {
    let prefix = format!(".{link}.");
    match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(Result::ok).any(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".part"))
        }),
        Err(e) => e.kind() != std::io::ErrorKind::NotFound,
    }
}

/// Streams `<dir>/.<link>.<KIND>.<sequence>.<ext>.part` with the bytes
/// `write` produces (it returns the number of records), fsyncs it and signs
/// its manifest. Nothing gets a final name.
pub fn stage<F>(
    dir: &Path,
    header: &Header,
    secret: &Secret,
    write: F,
) -> Result<Staged, PublishError>
where
    F: FnOnce(&mut dyn Write) -> Result<u64, WriteError>,
{
    let payload_name = Manifest::payload_name(&header.link, header.kind, header.sequence);
    let tmp = dir.join(part_name(&payload_name));
    let file = create_temp(&tmp).map_err(io_err(&tmp))?;
    let mut out = Sealing::new(BufWriter::with_capacity(STREAM_BUFFER, file));
    let records = match write(&mut out) {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(match e {
                WriteError::Io(source) => PublishError::Io { path: tmp, source },
                e => PublishError::Payload(e),
            });
        }
    };
    let (buffered, bytes, sha256) = out.finish();
    let file = buffered
        .into_inner()
        .map_err(|e| io_err(&tmp)(e.into_error()))?;
    file.sync_all().map_err(io_err(&tmp))?;
    drop(file);
    let manifest = Manifest {
        kind: header.kind,
        format_version: header.format_version,
        link: header.link.clone(),
        sender: header.sender.clone(),
        recipient: header.recipient.clone(),
        login: header.login.clone(),
        sequence: header.sequence,
        created: header
            .created
            .replace_nanosecond(0)
            .unwrap_or(header.created),
        payload: payload_name,
        records,
        bytes,
        sha256,
    };
    let manifest_text = manifest.render(secret);
    let tmp = dir.join(part_name(&manifest.manifest_name()));
    let mut file = create_temp(&tmp).map_err(io_err(&tmp))?;
    file.write_all(manifest_text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_err(&tmp))?;
    drop(file);
    sync_dir(dir).map_err(io_err(dir))?;
    Ok(Staged {
        manifest,
        manifest_text,
    })
}

/// The final names of a staged pair, and the manifest bytes its export
/// recorded (checked against the staged manifest before it is placed).
#[derive(Debug, Clone)]
pub struct Pair<'a> {
    pub payload: String,
    pub manifest: String,
    pub manifest_text: &'a [u8],
}

impl Staged {
    pub fn pair(&self) -> Pair<'_> {
        Pair {
            payload: self.manifest.payload.clone(),
            manifest: self.manifest.manifest_name(),
            manifest_text: self.manifest_text.as_bytes(),
        }
    }
}

/// Places a staged pair: the payload, then the manifest, each renamed from
/// its staged name without replacing anything, then fsyncs `dir`.
/// Idempotent: a staged file already gone was placed before (its final name
/// may since have been taken by the peer or pushed); a final name holding
/// the same bytes is kept and the staged copy dropped.
pub fn place(dir: &Path, pair: &Pair<'_>) -> Result<(), PublishError> {
    check_staged_manifest(dir, pair)?;
    move_staged(dir, &pair.payload)?;
    failpoint::hit("export.payload-placed");
    move_staged(dir, &pair.manifest)?;
    failpoint::hit("export.manifest-placed");
    sync_dir(dir).map_err(io_err(dir))
}

/// Removes the staged copies of a pair whose sequence nothing binds (its
/// export rolled back). A leftover is harmless: dot names are never taken,
/// and the next export of that sequence starts them again.
pub fn discard(dir: &Path, pair: &Pair<'_>) -> Result<(), PublishError> {
    for name in [&pair.payload, &pair.manifest] {
        let tmp = dir.join(part_name(name));
        local::remove_name(&tmp).map_err(io_err(&tmp))?;
    }
    sync_dir(dir).map_err(io_err(dir))
}

/// The staged manifest, when still there, must hold the bytes the export
/// committed: anything else is not ours to publish.
fn check_staged_manifest(dir: &Path, pair: &Pair<'_>) -> Result<(), PublishError> {
    let staged = dir.join(part_name(&pair.manifest));
    match std::fs::read(&staged) {
        Ok(bytes) if bytes == pair.manifest_text => Ok(()),
        Ok(_) => Err(PublishError::Conflict { path: staged }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(&staged)(e)),
    }
}

/// Renames `.<name>.part` to `name` in `dir`, never replacing.
fn move_staged(dir: &Path, name: &str) -> Result<(), PublishError> {
    let (staged, target) = (dir.join(part_name(name)), dir.join(name));
    match local::rename_new(&staged, &target) {
        Ok(Placed::Linked) => Ok(()),
        Ok(Placed::Same) => std::fs::remove_file(&staged).map_err(io_err(&staged)),
        Ok(Placed::Other) => Err(PublishError::Conflict { path: target }),
        // Placed by an earlier attempt (or another process finishing the
        // same export): the staged name only ever leaves by this rename.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(&target)(e)),
    }
}

/// Both steps at once: a pair no store journals (fixtures, samples).
pub fn publish<F>(
    dir: &Path,
    header: &Header,
    secret: &Secret,
    write: F,
) -> Result<Manifest, PublishError>
where
    F: FnOnce(&mut dyn Write) -> Result<u64, WriteError>,
{
    let staged = stage(dir, header, secret, write)?;
    place(dir, &staged.pair())?;
    Ok(staged.manifest)
}

fn create_temp(path: &Path) -> io::Result<File> {
    // A leftover from a crash is ours: start it again.
    local::remove_name(path)?;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::envelope;

    fn header(sequence: u64) -> Header {
        Header {
            format_version: 1,
            kind: Kind::Sales,
            link: "opera-tourism".into(),
            sender: "TOURISM".into(),
            recipient: "OPERA".into(),
            login: "TOURISM_OPE@TOURISM".into(),
            sequence,
            created: time::macros::datetime!(2026-11-28 15:20:00.5 UTC),
        }
    }

    fn secret() -> Secret {
        Secret::new(b"a shared secret of enough bytes".to_vec())
    }

    fn body(text: &'static str) -> impl FnOnce(&mut dyn Write) -> Result<u64, WriteError> {
        move |w| {
            w.write_all(text.as_bytes())?;
            Ok(text.lines().count() as u64)
        }
    }

    #[test]
    fn publishes_a_verifiable_pair_and_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let m = publish(dir.path(), &header(7), &secret(), body("a\nb\n")).unwrap();
        assert_eq!((m.records, m.bytes), (2, 4));
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "opera-tourism.SALES.00000007.csv",
                "opera-tourism.SALES.00000007.stx"
            ]
        );
        let text = std::fs::read(dir.path().join(m.manifest_name())).unwrap();
        let back = envelope::authenticate(&text, &m.manifest_name(), &secret()).unwrap();
        assert_eq!(back, m);
        let mut payload = File::open(dir.path().join(&m.payload)).unwrap();
        envelope::check_payload(&back, &mut payload, "p", u64::MAX).unwrap();
    }

    #[test]
    fn republishing_the_same_bytes_is_a_no_op_and_other_bytes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        publish(dir.path(), &header(1), &secret(), body("same\n")).unwrap();
        publish(dir.path(), &header(1), &secret(), body("same\n")).unwrap();
        let e = publish(dir.path(), &header(1), &secret(), body("other\n")).unwrap_err();
        assert!(matches!(e, PublishError::Conflict { .. }), "{e}");
        let kept = std::fs::read_to_string(dir.path().join("opera-tourism.SALES.00000001.csv"));
        assert_eq!(kept.unwrap(), "same\n");
    }

    #[test]
    fn a_failing_payload_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let e = publish(dir.path(), &header(1), &secret(), |w| {
            w.write_all(b"half")?;
            Err(WriteError::Invalid("boom".into()))
        });
        assert!(e.is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
