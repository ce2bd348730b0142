//! Publish: write a payload and its manifest into a folder, durably and
//! without ever overwriting.
//!
//! Takes a [`Header`] (link, parties, kind, sequence), the link's secret and
//! a closure that streams the payload; returns the [`Manifest`] written. The
//! order makes a half-written file invisible to any reader: payload to
//! `.<name>.part`, fsync, link to its final name; then the manifest the same
//! way; then fsync the folder. A final name that already exists is never
//! replaced: the same bytes mean "already published" (a retry after a crash),
//! other bytes are an error for a person to look at.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::format::envelope::{Manifest, STREAM_BUFFER, Sealing, Secret};
use crate::format::{FORMAT_VERSION, Kind, WriteError};
use crate::transport::local::{self, Placed, sync_dir};

/// Who sends what to whom, and where in the link's sequence.
#[derive(Debug, Clone)]
pub struct Header {
    pub kind: Kind,
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
}

/// Writes `<dir>/<link>.<KIND>.<sequence>.<ext>` with the bytes `write`
/// produces (it returns the number of records), then its manifest.
pub fn publish<F>(
    dir: &Path,
    header: &Header,
    secret: &Secret,
    write: F,
) -> Result<Manifest, PublishError>
where
    F: FnOnce(&mut dyn Write) -> Result<u64, WriteError>,
{
    let payload_name = Manifest::payload_name(&header.link, header.kind, header.sequence);
    let payload_path = dir.join(&payload_name);
    let tmp = dir.join(format!(".{payload_name}.part"));
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| PublishError::Io { path, source }
    };

    let file = create_temp(&tmp).map_err(io_err(&tmp))?;
    let mut out = Sealing::new(BufWriter::with_capacity(STREAM_BUFFER, file));
    let records = match write(&mut out) {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            return Err(PublishError::Payload(e));
        }
    };
    let (buffered, bytes, sha256) = out.finish();
    let file = buffered
        .into_inner()
        .map_err(|e| io_err(&tmp)(e.into_error()))?;
    file.sync_all().map_err(io_err(&tmp))?;
    drop(file);
    place(&tmp, &payload_path)?;

    let manifest = Manifest {
        kind: header.kind,
        format_version: FORMAT_VERSION,
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
    let manifest_path = dir.join(manifest.manifest_name());
    let tmp = dir.join(format!(".{}.part", manifest.manifest_name()));
    let mut file = create_temp(&tmp).map_err(io_err(&tmp))?;
    file.write_all(manifest.render(secret).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_err(&tmp))?;
    drop(file);
    place(&tmp, &manifest_path)?;
    sync_dir(dir).map_err(io_err(dir))?;
    Ok(manifest)
}

fn create_temp(path: &Path) -> io::Result<File> {
    // A leftover from a crash is ours: start it again.
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o640)
        .open(path)
}

/// Moves `tmp` to `target` unless `target` exists with other content.
fn place(tmp: &Path, target: &Path) -> Result<(), PublishError> {
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| PublishError::Io { path, source }
    };
    match local::link_new(tmp, target).map_err(io_err(target))? {
        Placed::Linked | Placed::Same => {}
        Placed::Other => {
            return Err(PublishError::Conflict {
                path: target.to_owned(),
            });
        }
    }
    std::fs::remove_file(tmp).map_err(io_err(tmp))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::envelope;

    fn header(sequence: u64) -> Header {
        Header {
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
