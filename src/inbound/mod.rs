//! Inbound: a Fichier SecuTix file from arrival to its records.
//!
//! The stages and the type each one returns, data moving forward only:
//!
//! `Candidate` (a manifest path) → [`claim`] → [`Claimed`] (both files opened
//! safely, manifest read) → [`verify`] → [`Verified`] (HMAC, expectations,
//! size and digest checked) → [`parse`] → [`Records`] (a streaming iterator
//! that re-hashes what it parses and checks the record count at its end).
//!
//! Before claim, [`recover`] looks for an archive move a crash cut on the
//! listed pair ([`recover::Due`]); [`archive`] finishes it. After parse,
//! applying (one store transaction with the journal row, [`apply`]) and
//! archiving ([`archive`]: `done/`, `parked/`, or `error/` with a `.reason`)
//! follow. [`process`] chains the stages (and logs a file refused before
//! apply as a failed run); the stages below it do the reading, writing and
//! moving.

pub mod apply;
pub mod archive;
pub mod claim;
pub mod outcome;
pub mod parse;
pub mod read_ahead;
pub mod recover;
pub mod verify;

pub use claim::Claimed;
pub use outcome::{Hold, Outcome, Stray};
pub use parse::{Record, Records};
pub use verify::Verified;

use std::path::{Path, PathBuf};

use crate::config::Link;
use crate::format::envelope::Secret;
use crate::format::{FormatError, Limits};
use crate::store::{Role, Store};
use crate::transport::progress::Watch;

/// How [`process`] reads a file: the formats' limits, how long a manifest
/// waits for its payload, and who watches the payload being read (the
/// command line's progress bar; nobody in the daemon).
#[derive(Debug, Clone, Copy)]
pub struct Reading<'a> {
    pub limits: &'a Limits,
    pub payload_grace: std::time::Duration,
    pub watch: &'a Watch,
}

/// Why an inbound file did not get through a stage, and what happens next.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    /// The file is bad: it goes to `error/` with this reason; retrying cannot
    /// help. (A reader's [`FormatError`] that only says the payload could not
    /// be read becomes [`InboundError::Io`] instead.)
    #[error(transparent)]
    Rejected(FormatError),
    /// The domain refused the records (permanent), or the store failed
    /// (transient).
    #[error(transparent)]
    Domain(#[from] crate::domain::DomainError),
    /// The file could not be read now (I/O, permissions being fixed, disk):
    /// retry later; the file stays where it is.
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// Rejected before a crash cut its move into `error/`: the move is
    /// finished now; the `.reason` written before it says why.
    #[error(
        "{file}: rejected before a restart, its reason in {reason}; the move into error/ is finished now"
    )]
    RejectedEarlier { file: String, reason: String },
    /// Not tried: the store stayed busy for an earlier file of the same
    /// listing (another process holds its write lock), so this one would
    /// only wait as long again. The file stays where it is.
    #[error(
        "not tried, the store of {institution} stayed busy for a file before it in this listing; the next listing tries it again"
    )]
    StoreBusy { institution: String },
}

impl From<FormatError> for InboundError {
    /// A rejection, unless the payload could not be read (a disk or network
    /// file system failing now): that says nothing of the file, which stays
    /// where it is for the next listing.
    fn from(e: FormatError) -> InboundError {
        if e.is_read_failure() {
            let source = std::io::Error::other(format!("{}: {}", e.position, e.problem));
            return InboundError::Io {
                file: e.file.clone(),
                source,
            };
        }
        InboundError::Rejected(e)
    }
}

impl InboundError {
    /// A permanent error rejects the file; a transient one is retried.
    pub fn is_permanent(&self) -> bool {
        use crate::domain::DomainError as D;
        match self {
            InboundError::Rejected(_) => true,
            InboundError::Domain(e) => !matches!(
                e,
                D::Store(_) | D::Sql(_) | D::Io { .. } | D::Unready { .. }
            ),
            InboundError::Io { .. } | InboundError::StoreBusy { .. } => false,
            InboundError::RejectedEarlier { .. } => true,
        }
    }

    /// The store stayed busy past its timeout: another process held its
    /// write lock all along, and nothing of the file was written.
    pub fn is_busy(&self) -> bool {
        use crate::domain::DomainError as D;
        match self {
            InboundError::Domain(D::Store(e)) => e.is_busy(),
            InboundError::Domain(D::Sql(e)) => crate::store::is_busy(e),
            InboundError::StoreBusy { .. } => true,
            _ => false,
        }
    }

    /// The stable code of the reason (`io` for transient errors).
    pub fn code(&self) -> &'static str {
        match self {
            InboundError::Rejected(e) => e.code,
            InboundError::Domain(crate::domain::DomainError::Format(e)) => e.code,
            InboundError::Domain(crate::domain::DomainError::Unready { .. }) => "setup",
            InboundError::Domain(crate::domain::DomainError::Content(e)) => e.code,
            InboundError::Domain(e) if self.is_permanent() => match e {
                crate::domain::DomainError::Missing { .. } => "unknown-reference",
                _ => "refused",
            },
            InboundError::Domain(_) | InboundError::StoreBusy { .. } => "store",
            InboundError::Io { .. } => "io",
            InboundError::RejectedEarlier { .. } => "rejected-earlier",
        }
    }
}

impl InboundError {
    /// Where in the file the problem is, when a reader or an importer said.
    pub fn position(&self) -> Option<&crate::format::Position> {
        use crate::domain::DomainError as D;
        match self {
            InboundError::Rejected(f)
            | InboundError::Domain(D::Format(f))
            | InboundError::Domain(D::Content(f)) => Some(&f.position),
            _ => None,
        }
    }
}

/// What [`process`] did with a file, and where the file is now.
#[derive(Debug)]
pub struct Processed {
    /// The manifest's path after archiving (unchanged when held).
    pub location: PathBuf,
    /// The file's fate: applied, parked, already applied, held, set aside,
    /// or rejected for good (it is then in `error/` with a `.reason` file).
    pub outcome: Outcome,
}

/// Takes one file through every stage: recover (finish an archive move a
/// crash cut: into `done/` or `error/` ends here, into `parked/` goes on from
/// there) → claim → verify → apply (parse, map, journal, in one transaction)
/// → archive into the receiving side's `done/`, `parked/` or `error/`. A
/// transient failure (I/O, a busy store) returns `Err` and leaves the file
/// where it is, to be retried. Everything runs in one `file` span (file,
/// link, kind, seq; run once apply has started it). A directory named like a
/// manifest is held where it is, never moved. A manifest whose payload is
/// not beside it is held in place for `payload_grace` after it landed (the
/// payload may come a moment later), then refused `missing-payload`.
pub fn process(
    store: &mut Store,
    link: &Link,
    side: Role,
    secret: &Secret,
    manifest: &Path,
    reading: &Reading<'_>,
) -> Result<Processed, InboundError> {
    let Reading {
        limits,
        payload_grace,
        watch,
    } = *reading;
    let folders = link.folders(side);
    let name = claim::display_name(manifest);
    let parsed = crate::exchange::FileName::parse_manifest(&name).ok();
    let kind = parsed.as_ref().map(|n| n.kind);
    // One span per file: every log line of its handling names it; the run
    // is recorded once apply has started it.
    let span = tracing::info_span!(
        "file",
        file = %name,
        link = %link.name,
        kind = tracing::field::Empty,
        seq = tracing::field::Empty,
        run = tracing::field::Empty,
    );
    if let Some(n) = &parsed {
        span.record("kind", n.kind.as_str());
        span.record("seq", n.sequence);
    }
    let _in_file = span.enter();
    tracing::debug!(side = %side, "file taken");
    // A directory cannot be read nor moved like a file: it stays where it
    // is, held, for ops to remove (the daemon logs a held file once).
    if std::fs::symlink_metadata(manifest).is_ok_and(|m| m.is_dir()) {
        tracing::debug!("a directory named like a manifest: left in place");
        return Ok(held(
            manifest,
            Hold::Directory,
            "a directory named like a manifest: stxd neither reads nor moves it; remove or rename it".to_owned(),
        ));
    }
    let io = |source| InboundError::Io {
        file: name.clone(),
        source,
    };
    let pair = match recover_cut_move(store, link, secret, manifest, &folders, limits)? {
        Recovered::Ended(processed) => return Ok(processed),
        Recovered::GoOn(pair) => pair,
    };
    let manifest = pair.manifest.as_path();
    if let Some(waited) = payload_pending(&pair, payload_grace).map_err(io)? {
        tracing::debug!("payload not beside its manifest yet: held");
        return Ok(held(
            manifest,
            Hold::PayloadPending,
            format!(
                "its payload is not beside it yet (waited {}s of the {}s grace, [daemon] payload_grace_seconds); refused missing-payload after that",
                waited.as_secs(),
                payload_grace.as_secs()
            ),
        ));
    }
    let verified = claim::claim_watched(manifest, limits, watch).and_then(|claimed| match kind {
        Some(kind) => verify::verify(claimed, secret, &link.expectation(kind), limits),
        None => unreachable_name(&name),
    });
    // Another stxd process (the daemon, or a command run by hand) may have
    // taken the file between the listing and now: it is theirs to finish.
    if verified.is_err() && taken(manifest) {
        tracing::debug!("file taken by another stxd process meanwhile");
        return Ok(held(
            manifest,
            Hold::Taken,
            "no longer in the folder: another stxd process took it and finishes it".to_owned(),
        ));
    }
    // From before its transaction until its move: a listing meanwhile
    // leaves this file's archiving to this process (`store::in_hand`).
    let _in_hand = crate::store::in_hand::in_hand(store.path());
    // A transient failure leaves the file where it is, for a retry.
    let outcome = match verified {
        Ok(verified) => apply::apply(store, &target(link, side), verified, limits)?,
        Err(e) if e.is_permanent() => {
            store
                .write(|tx| apply::log_rejection(tx, &link.name, kind, &name, &e))
                .map_err(InboundError::from)?;
            Outcome::Rejected(e)
        }
        Err(e) => return Err(e),
    };
    let location = archive_by_outcome(&pair, &folders, &outcome).map_err(io)?;
    tracing::debug!(
        location = %location.display(),
        outcome = outcome.word(),
        "file handled"
    );
    Ok(Processed { location, outcome })
}

/// Whether the parked pair of `manifest` would only park again if applied
/// now ([`apply::parks_again`]), judged from its manifest and the store
/// `conn` of `side`, without reading its payload. Any doubt (a manifest
/// that cannot be read or is not authentic, a store that cannot be read)
/// answers no: applying the file is what tells.
pub fn parks_again(
    conn: &rusqlite::Connection,
    (link, side): (&Link, Role),
    secret: &Secret,
    manifest: &Path,
    limits: &Limits,
) -> bool {
    let Ok(claimed) = claim::claim(manifest, limits) else {
        return false;
    };
    let name = claimed.manifest_name();
    let Ok(m) = crate::format::envelope::authenticate(&claimed.manifest, &name, secret) else {
        return false;
    };
    apply::parks_again(conn, &target(link, side), &m).unwrap_or(false)
}

/// The receiving end of `link` on `side`, as apply needs it.
fn target(link: &Link, side: Role) -> apply::Target<'_> {
    apply::Target {
        link: &link.name,
        manager: link.manager.as_str(),
        distributor: link.distributor.as_str(),
        login: &link.login,
        side,
    }
}

/// A file left where it is, and why.
fn held(manifest: &Path, hold: Hold, reason: String) -> Processed {
    Processed {
        location: manifest.to_owned(),
        outcome: Outcome::Held { hold, reason },
    }
}

/// What [`recover_cut_move`] left to do.
enum Recovered {
    /// The file's handling ended with the finished move.
    Ended(Processed),
    /// The pair to go on with (where it was listed, or in `parked/`).
    GoOn(archive::Pair),
}

/// Finishes an archive move a crash cut on the listed pair, if the journal
/// says one is due: into `done/` or `error/` ends the file's handling; into
/// `parked/` goes on from there, as a resume would.
fn recover_cut_move(
    store: &mut Store,
    link: &Link,
    secret: &Secret,
    manifest: &Path,
    folders: &crate::config::Folders,
    limits: &Limits,
) -> Result<Recovered, InboundError> {
    let pair = archive::Pair::of(manifest);
    if recover::due(store, link, secret, &pair, folders, limits)?.is_none() {
        return Ok(Recovered::GoOn(pair));
    }
    // The move may be another process's, between its commit and its move
    // (the daemon and a command run by hand): theirs to finish
    // (`store::in_hand`). Once no process is in hand, asked again.
    let Some(_settling) = crate::store::in_hand::settling(store.path()) else {
        return Ok(Recovered::Ended(held(
            manifest,
            Hold::Taken,
            "another stxd process applied it and is archiving it".to_owned(),
        )));
    };
    let Some(due) = recover::due(store, link, secret, &pair, folders, limits)? else {
        return Ok(Recovered::GoOn(pair));
    };
    let name = claim::display_name(manifest);
    let location = finish(&due, folders).map_err(|source| InboundError::Io {
        file: name.clone(),
        source,
    })?;
    tracing::info!(location = %location.display(), "archive move cut by a crash finished");
    crate::failpoint::hit("archive.recovered");
    let outcome = match due.to {
        recover::Destination::Done { sequence, .. } => Outcome::AlreadyApplied { sequence },
        recover::Destination::Error { .. } => Outcome::Rejected(InboundError::RejectedEarlier {
            file: name,
            reason: archive::reason_path(&location).display().to_string(),
        }),
        recover::Destination::Parked { .. } => {
            return Ok(Recovered::GoOn(archive::Pair::of(&location)));
        }
    };
    Ok(Recovered::Ended(Processed { location, outcome }))
}

/// Moves the pair where its fate, now in the store (or, rejected before
/// apply, in the `.reason` written first), puts it; returns the manifest's
/// path after the move (unchanged for a file that stays).
fn archive_by_outcome(
    pair: &archive::Pair,
    folders: &crate::config::Folders,
    outcome: &Outcome,
) -> std::io::Result<PathBuf> {
    match outcome {
        Outcome::Applied { .. } | Outcome::AlreadyApplied { .. } => {
            archive::move_pair(pair, &folders.done, None)
        }
        Outcome::Parked { .. } if !pair.is_in(&folders.parked) => {
            archive::move_pair(pair, &folders.parked, None)
        }
        Outcome::Rejected(e) => archive::reject_pair(pair, &folders.error, e),
        Outcome::Parked { .. } | Outcome::Held { .. } | Outcome::Quarantined { .. } => {
            Ok(pair.manifest.clone())
        }
    }
}

/// How long the manifest of `pair` has waited for a payload that is not
/// beside it yet, while that is under `grace`; `None` once the payload is
/// there, the grace is over, or the manifest is gone (claim then decides).
/// Only a regular file waits (claim refuses anything else at once). Its
/// wait counts from when it landed in this folder: the later of its
/// modification and status-change times (a rename into the folder changes
/// the latter, and a sender cannot set it back).
fn payload_pending(
    pair: &archive::Pair,
    grace: std::time::Duration,
) -> std::io::Result<Option<std::time::Duration>> {
    use std::os::unix::fs::MetadataExt;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};
    let Some(payload) = &pair.payload else {
        return Ok(None);
    };
    if grace.is_zero() || std::fs::symlink_metadata(payload).is_ok() {
        return Ok(None);
    }
    let meta = match std::fs::symlink_metadata(&pair.manifest) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    // A symlink, FIFO or other non-file under a manifest's name is refused
    // at once by claim, whatever comes beside it.
    if !meta.is_file() {
        return Ok(None);
    }
    let changed = u64::try_from(meta.ctime())
        .ok()
        .map(|s| UNIX_EPOCH + Duration::new(s, u32::try_from(meta.ctime_nsec()).unwrap_or(0)));
    let landed = [meta.modified().ok(), changed]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(UNIX_EPOCH);
    let waited = SystemTime::now()
        .duration_since(landed)
        .unwrap_or(Duration::ZERO);
    Ok((waited < grace).then_some(waited))
}

/// Sets a stray, foreign or misrouted file aside: the pair moves whole into
/// `quarantine` (its `.reason` written first, naming `code` and `reason`,
/// as [`archive::reject_pair`] moves a rejected pair into `error/`, and
/// finished the same way after a crash). Nothing of it is read; nothing is
/// recorded in a store (its link may be none of ours). Logged once, at
/// warn: the file leaves the inbox.
pub fn quarantine(
    manifest: &Path,
    quarantine: &Path,
    stray: Stray,
    reason: String,
) -> Result<Processed, InboundError> {
    let code = stray.code();
    let name = claim::display_name(manifest);
    let why = InboundError::Rejected(FormatError::new(
        &name,
        crate::format::Position::File,
        code,
        reason.clone(),
    ));
    let location =
        archive::reject_pair(&archive::Pair::of(manifest), quarantine, &why).map_err(|source| {
            InboundError::Io {
                file: name.clone(),
                source,
            }
        })?;
    tracing::warn!(
        file = %name,
        code,
        reason = %reason,
        location = %location.display(),
        "file set aside into quarantine: not for this folder (stxd status lists it; stxd retry puts it back)"
    );
    Ok(Processed {
        location,
        outcome: Outcome::Quarantined { stray, reason },
    })
}

/// Finishes the move `due` names; returns the manifest's new path.
fn finish(due: &recover::Due, folders: &crate::config::Folders) -> std::io::Result<PathBuf> {
    match &due.to {
        recover::Destination::Done { sha256, .. } => {
            archive::move_pair(&due.pair, &folders.done, Some(sha256))
        }
        recover::Destination::Parked { sha256 } => {
            archive::move_pair(&due.pair, &folders.parked, sha256.as_ref())
        }
        recover::Destination::Error { slot } => {
            archive::finish_rejection(&due.pair, &folders.error, *slot)
        }
    }
}

/// The manifest is no longer where it was listed.
fn taken(manifest: &Path) -> bool {
    std::fs::symlink_metadata(manifest).is_err()
}

/// Claim checked the name already; kept total for the compiler.
fn unreachable_name(name: &str) -> Result<Verified, InboundError> {
    Err(FormatError::new(
        name,
        crate::format::Position::File,
        "bad-file-name",
        "unrecognised manifest name",
    )
    .into())
}
