//! A link's keys around a secret rotation: which secret signs, which others
//! are accepted, which are retired; and the rotation itself.
//!
//! Three files, all beside the link's `secret_file` (call it `P`), each
//! private (mode 600) and read as [`super::read_secret`] reads one:
//!
//! - `P`: the secret this side signs with, and accepts;
//! - `P.next`: a new secret *staged*: accepted, not signing yet;
//! - `P.previous`: the secret before the last rotation, accepted for the
//!   link's `secret_overlap_days` counted from its modification time (the
//!   rotation sets it), then *retired*: a file signed with it is refused
//!   with a message naming its key id and the fix.
//!
//! [`link_keys`] reads them at an instant and returns the [`Secret`] the
//! flows use (signing with `P`, also accepting the others while they are
//! accepted). [`rotate`] stages a new secret (generated, or copied from a
//! file the peer sent) and, unless only staging, promotes it: `P` copied
//! to `P.previous` (temporary name, fsync, no-replace link, folder fsync),
//! its time set to now, then `P.next` renamed onto `P` and the folder
//! synced. Every state a crash can leave is one of the states above: the
//! new secret staged (and `P.previous` equal to `P`), which runs as staged
//! and which running the command again finishes; never a lost secret.
//! This module reads and writes only these files; the time is passed in.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::secret::read_secret_bytes;
use super::{Link, SecretError, generate_secret, read_secret, write_secret};
use crate::format::envelope::Secret;

/// `P.next`: the staged secret of the secret file `P`.
pub fn next_path(secret_file: &Path) -> PathBuf {
    suffixed(secret_file, "next")
}

/// `P.previous`: the secret before the last rotation of the secret file `P`.
pub fn previous_path(secret_file: &Path) -> PathBuf {
    suffixed(secret_file, "previous")
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".");
    name.push(suffix);
    PathBuf::from(name)
}

/// The keys of a link at an instant.
#[derive(Debug, Clone)]
pub struct LinkKeys {
    /// Signs with `P`; also accepts the staged and the previous secret
    /// while they are accepted, and names the previous one once retired.
    pub secret: Secret,
    /// A new secret staged in `P.next`.
    pub next: Option<KeyFile>,
    /// The secret before the last rotation, in `P.previous` (absent when
    /// that file is missing, or holds the same secret as `P`: a promotion
    /// cut by a crash, which runs as staged).
    pub previous: Option<PreviousKey>,
}

/// A secret file and its key id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFile {
    pub path: PathBuf,
    pub key_id: String,
}

/// The previous secret and its overlap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousKey {
    pub file: KeyFile,
    /// When the rotation happened (the file's modification time).
    pub rotated: OffsetDateTime,
    /// The end of the overlap: `rotated` + `secret_overlap_days`.
    pub until: OffsetDateTime,
    /// Still accepted at the instant asked (`now < until`).
    pub accepted: bool,
}

/// Whole seconds, RFC 3339, UTC: how times are shown in messages.
pub fn show_time(t: OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// Reads a link's secret files at `now`: its secret (required), a staged
/// one and the previous one (each when present). A present file that
/// cannot be used (readable by others, too short) is an error naming it.
pub fn link_keys(link: &Link, now: OffsetDateTime) -> Result<LinkKeys, SecretError> {
    let current = read_secret(&link.secret_file)?;
    let current_id = current.key_id();
    let mut secret = current;
    let next_file = next_path(&link.secret_file);
    let next = match read_secret(&next_file) {
        Ok(staged) => {
            let key_id = staged.key_id();
            secret = secret.also_accepting(staged);
            Some(KeyFile {
                path: next_file,
                key_id,
            })
        }
        Err(SecretError::Missing(_)) => None,
        Err(e) => return Err(e),
    };
    let previous_file = previous_path(&link.secret_file);
    let previous = match read_secret(&previous_file) {
        Ok(old) if old.key_id() == current_id => None,
        Ok(old) => {
            let rotated = modified(&previous_file)?;
            let until = rotated + time::Duration::days(i64::from(link.secret_overlap_days));
            let accepted = now < until;
            let key_id = old.key_id();
            secret = if accepted {
                secret.also_accepting(old)
            } else {
                secret.retired(
                    key_id.clone(),
                    retired_why(link, &previous_file, rotated, until, &current_id),
                )
            };
            Some(PreviousKey {
                file: KeyFile {
                    path: previous_file,
                    key_id,
                },
                rotated,
                until,
                accepted,
            })
        }
        Err(SecretError::Missing(_)) => None,
        Err(e) => return Err(e),
    };
    Ok(LinkKeys {
        secret,
        next,
        previous,
    })
}

/// Why a file signed with the retired previous secret is refused, and the
/// two ways out.
fn retired_why(
    link: &Link,
    path: &Path,
    rotated: OffsetDateTime,
    until: OffsetDateTime,
    current_id: &str,
) -> String {
    format!(
        "no longer accepted since {} (the rotation of {} plus secret_overlap_days = {}); the sender still signs with its old secret: it must sign with the new one (key id {current_id:?}), with stxd link rotate-secret --link {} on its side (see docs/secret-rotation.md); to take this file anyway, raise secret_overlap_days of the link here (the old secret is still in {}) and run stxd retry on it",
        show_time(until),
        show_time(rotated),
        link.secret_overlap_days,
        link.name,
        path.display()
    )
}

fn modified(path: &Path) -> Result<OffsetDateTime, SecretError> {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map(OffsetDateTime::from)
        .map_err(|e| SecretError::Io(path.to_owned(), e))
}

/// Why a rotation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RotateError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("cannot write {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error(
        "a rotation is in progress: the previous secret {path} (key id {key_id:?}) is accepted until {until}; rotate again after that, or remove {path} first once the peer signs with the current secret (key id {current:?})"
    )]
    InProgress {
        path: PathBuf,
        key_id: String,
        until: String,
        current: String,
    },
    #[error(
        "{path} already holds a staged secret (key id {staged:?}), not the one of {from} (key id {given:?}): promote the staged one (stxd link rotate-secret without --from) or remove {path} first"
    )]
    OtherStaged {
        path: PathBuf,
        staged: String,
        from: PathBuf,
        given: String,
    },
    #[error(
        "the new secret (key id {key_id:?}, {from}) is already the link's secret: a rotation needs another one"
    )]
    SameAsCurrent { from: PathBuf, key_id: String },
}

impl RotateError {
    /// A refusal (the files as they are do not allow it), not a failure.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            RotateError::InProgress { .. }
                | RotateError::OtherStaged { .. }
                | RotateError::SameAsCurrent { .. }
        )
    }
}

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// The new secret: staged in `P.next`, or (promoted) now in `P`.
    pub new: KeyFile,
    /// Whether the new secret was written now (generated or copied), rather
    /// than found staged.
    pub written: bool,
    /// Set when promoted: the previous secret and the end of its overlap.
    pub previous: Option<(KeyFile, OffsetDateTime)>,
}

/// Stages a new secret for `link` (copied from `from`, or generated; one
/// already staged is kept) and, unless `stage_only`, promotes it: this side
/// signs with it from then on and accepts the previous secret for
/// `secret_overlap_days`. Refused while a previous secret is still in its
/// overlap (unless finishing a promotion a crash cut).
pub fn rotate(
    link: &Link,
    from: Option<&Path>,
    stage_only: bool,
    now: OffsetDateTime,
) -> Result<Rotated, RotateError> {
    let secret_file = &link.secret_file;
    let keys = link_keys(link, now)?;
    let current_id = read_secret(secret_file)?.key_id();
    let next_file = next_path(secret_file);
    let previous_file = previous_path(secret_file);
    if !stage_only && let Some(previous) = keys.previous.as_ref().filter(|p| p.accepted) {
        return Err(RotateError::InProgress {
            path: previous.file.path.clone(),
            key_id: previous.file.key_id.clone(),
            until: show_time(previous.until),
            current: current_id,
        });
    }
    let (new, written) = stage(&keys, &next_file, from, &current_id)?;
    if stage_only {
        return Ok(Rotated {
            new,
            written,
            previous: None,
        });
    }
    // A retired previous secret makes room for this one.
    if keys.previous.is_some() {
        remove_durably(&previous_file)?;
    }
    let io = |path: &Path| {
        let path = path.to_owned();
        move |e| RotateError::Io(path, e)
    };
    // P.previous: a copy of P (kept when a cut promotion left it), its time
    // the rotation's: the overlap counts from it.
    write_secret(&previous_file, &read_secret_bytes(secret_file)?).map_err(io(&previous_file))?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&previous_file)
        .map_err(io(&previous_file))?;
    file.set_modified(now.into()).map_err(io(&previous_file))?;
    file.sync_all().map_err(io(&previous_file))?;
    drop(file);
    // P's content is durable in P.previous: P.next takes P's name. A
    // replacing rename on purpose: the config names P, so the new
    // secret must end there, and what it replaces is already kept whole.
    #[allow(clippy::disallowed_methods)]
    std::fs::rename(&next_file, secret_file).map_err(io(secret_file))?;
    sync_dir(secret_file).map_err(io(secret_file))?;
    let until = now + time::Duration::days(i64::from(link.secret_overlap_days));
    Ok(Rotated {
        new: KeyFile {
            path: secret_file.clone(),
            key_id: new.key_id,
        },
        written,
        previous: Some((
            KeyFile {
                path: previous_file,
                key_id: current_id,
            },
            until,
        )),
    })
}

/// The staged secret `P.next`: kept when there (and equal to `from` when
/// given), else copied from `from` or generated.
fn stage(
    keys: &LinkKeys,
    next_file: &Path,
    from: Option<&Path>,
    current_id: &str,
) -> Result<(KeyFile, bool), RotateError> {
    let given = match from {
        Some(path) => Some((path, read_secret_bytes(path)?)),
        None => None,
    };
    let given_id = given
        .as_ref()
        .map(|(_, bytes)| Secret::new(bytes.clone()).key_id());
    if let Some(staged) = &keys.next {
        if let (Some((path, _)), Some(id)) = (&given, &given_id)
            && *id != staged.key_id
        {
            return Err(RotateError::OtherStaged {
                path: staged.path.clone(),
                staged: staged.key_id.clone(),
                from: path.to_path_buf(),
                given: id.clone(),
            });
        }
        if staged.key_id == current_id {
            return Err(RotateError::SameAsCurrent {
                from: staged.path.clone(),
                key_id: staged.key_id.clone(),
            });
        }
        return Ok((staged.clone(), false));
    }
    let io = |e| RotateError::Io(next_file.to_owned(), e);
    match (&given, given_id) {
        (Some((path, bytes)), Some(id)) => {
            if id == current_id {
                return Err(RotateError::SameAsCurrent {
                    from: path.to_path_buf(),
                    key_id: id,
                });
            }
            write_secret(next_file, bytes).map_err(io)?;
        }
        _ => {
            generate_secret(next_file).map_err(io)?;
        }
    }
    let key_id = read_secret(next_file)?.key_id();
    Ok((
        KeyFile {
            path: next_file.to_owned(),
            key_id,
        },
        true,
    ))
}

fn remove_durably(path: &Path) -> Result<(), RotateError> {
    match std::fs::remove_file(path) {
        Ok(()) => sync_dir(path).map_err(|e| RotateError::Io(path.to_owned(), e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RotateError::Io(path.to_owned(), e)),
    }
}

fn sync_dir(path: &Path) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(dir: &Path) -> Link {
        let text = format!(
            "state_dir = \"{d}/state\"\n[[institution]]\ncode = \"OPERA\"\nrole = \"manager\"\n\
             [[link]]\nname = \"l\"\nmanager = \"OPERA\"\ndistributor = \"TOURISM\"\nlogin = \"TOURISM_OPE@TOURISM\"\n\
             secret_file = \"{d}/s.key\"\nsecret_overlap_days = 2\ntransport = {{ kind = \"local\", dir = \"{d}/x\" }}\n",
            d = dir.display()
        );
        crate::config::parse(&text, "test").unwrap().links.remove(0)
    }

    #[test]
    fn a_rotation_stages_promotes_then_retires_the_previous_secret() {
        let dir = tempfile::tempdir().unwrap();
        let link = link(dir.path());
        assert!(generate_secret(&link.secret_file).unwrap());
        let now = OffsetDateTime::now_utc();
        let old = link_keys(&link, now).unwrap();
        assert!(old.next.is_none() && old.previous.is_none());
        let old_id = old.secret.key_id();

        // Staged: still signs with the old key, accepts the new one.
        let staged = rotate(&link, None, true, now).unwrap();
        assert!(staged.written && staged.previous.is_none());
        let keys = link_keys(&link, now).unwrap();
        assert_eq!(keys.secret.key_id(), old_id);
        assert_eq!(
            keys.secret.accepted_key_ids(),
            vec![staged.new.key_id.clone()]
        );
        // Staging again keeps the staged secret.
        assert_eq!(rotate(&link, None, true, now).unwrap().new, staged.new);

        // Promoted: signs with the new key, accepts the old one for 2 days.
        let promoted = rotate(&link, None, false, now).unwrap();
        assert!(!promoted.written);
        assert_eq!(promoted.new.key_id, staged.new.key_id);
        let keys = link_keys(&link, now).unwrap();
        assert_eq!(keys.secret.key_id(), staged.new.key_id);
        assert_eq!(keys.secret.accepted_key_ids(), vec![old_id.clone()]);
        assert!(keys.next.is_none());
        let previous = keys.previous.unwrap();
        assert!(previous.accepted);
        assert_eq!(previous.file.key_id, old_id);

        // A second rotation in the overlap is refused, and changes nothing.
        let e = rotate(&link, None, false, now).unwrap_err();
        assert!(e.is_refusal(), "{e}");
        assert!(!next_path(&link.secret_file).exists());

        // After the overlap the old key is retired, then a new rotation
        // replaces it.
        let later = now + time::Duration::days(2) + time::Duration::seconds(1);
        let keys = link_keys(&link, later).unwrap();
        assert!(keys.secret.accepted_key_ids().is_empty());
        assert!(!keys.previous.as_ref().unwrap().accepted);
        let again = rotate(&link, None, false, later).unwrap();
        assert_eq!(again.previous.unwrap().0.key_id, staged.new.key_id);
    }

    #[test]
    fn a_promotion_cut_by_a_crash_runs_as_staged_and_finishes_when_run_again() {
        let dir = tempfile::tempdir().unwrap();
        let link = link(dir.path());
        generate_secret(&link.secret_file).unwrap();
        let now = OffsetDateTime::now_utc();
        let old_id = read_secret(&link.secret_file).unwrap().key_id();
        let staged = rotate(&link, None, true, now).unwrap();
        // The crash: P.previous written, P.next not renamed yet.
        let bytes = read_secret_bytes(&link.secret_file).unwrap();
        write_secret(&previous_path(&link.secret_file), &bytes).unwrap();
        let keys = link_keys(&link, now).unwrap();
        assert_eq!(keys.secret.key_id(), old_id);
        assert!(keys.previous.is_none(), "equal to P: not a previous secret");
        assert_eq!(keys.next.unwrap().key_id, staged.new.key_id);
        let done = rotate(&link, None, false, now).unwrap();
        assert_eq!(done.new.key_id, staged.new.key_id);
        assert_eq!(done.previous.unwrap().0.key_id, old_id);
    }

    #[test]
    fn a_secret_from_the_peer_is_staged_once_and_never_the_current_one() {
        let dir = tempfile::tempdir().unwrap();
        let link = link(dir.path());
        generate_secret(&link.secret_file).unwrap();
        let now = OffsetDateTime::now_utc();
        let e = rotate(&link, Some(&link.secret_file), true, now).unwrap_err();
        assert!(matches!(e, RotateError::SameAsCurrent { .. }), "{e}");
        let theirs = dir.path().join("theirs.key");
        generate_secret(&theirs).unwrap();
        let staged = rotate(&link, Some(&theirs), true, now).unwrap();
        assert_eq!(staged.new.key_id, read_secret(&theirs).unwrap().key_id());
        let other = dir.path().join("other.key");
        generate_secret(&other).unwrap();
        let e = rotate(&link, Some(&other), false, now).unwrap_err();
        assert!(matches!(e, RotateError::OtherStaged { .. }), "{e}");
        let done = rotate(&link, Some(&theirs), false, now).unwrap();
        assert_eq!(done.new.key_id, staged.new.key_id);
    }
}
