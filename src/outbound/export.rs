//! Export: one link's next file of a kind, from the store to the outbox, with
//! its journal row and its run; a sequence carries one content forever.
//!
//! Takes the sending side's open store, the link, a payload [`Producer`]
//! (one per kind, in the sibling modules), the link's secret and the creation time; returns what was
//! [`Exported`]. The protocol (argued crash point by crash point in
//! `docs/crash-safety/export.md`):
//!
//! 1. Finish first every export of the link and kind left *prepared* by a
//!    crash ([`finish_prepared`]).
//! 2. In ONE store write transaction: allocate the next outbound sequence
//!    (refusing if its final names are taken by a file the journal does not
//!    know), start a run, stream the producer's records into a staged
//!    payload `.<name>.part` (fsynced; dot names are never taken), sign the
//!    manifest, and journal the file as *prepared* with the manifest's
//!    exact bytes, together with whatever the producer marked (sales lines
//!    sent in this sequence, contingent versions exported). Commit. The
//!    write lock is held while the file is written, so the records are one
//!    consistent snapshot and no other export takes the same sequence.
//! 3. Only then place the final names (payload, then manifest: the
//!    completion marker), fsync the folder, mark the file *published*, and
//!    remove the staged copies.
//!
//! Nothing is visible to the peer before the commit that binds the sequence
//! to its content; after it, the same bytes are placed again however often
//! a crash interrupts step 3. On a failure before the commit the transaction
//! rolls back (the sequence is not used), the staged copy is removed, and a
//! failed run is written in a transaction of its own with the reason.

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::produce::{Produced, Producer};
use super::publish::{Header, Pair, PublishError, SENT, Staged, discard, place, stage};
use crate::config::Link;
use crate::domain::export::{self as domain, Report};
use crate::exchange::FileName;
use crate::failpoint;
use crate::format::envelope::{Manifest, Secret};
use crate::format::{Kind, WriteError};
use crate::store::journal::{self, Direction, FileState, NewEntry};
use crate::store::runs::{self, Counts, Level, RunStatus};
use crate::store::{Role, Store, StoreError};

/// A file published and journaled.
#[derive(Debug)]
pub struct Exported {
    pub manifest: Manifest,
    /// Where the pair was written.
    pub outbox: PathBuf,
    pub run_id: i64,
    pub report: Report,
}

/// Why an export did not happen.
#[derive(Debug, thiserror::Error)]
pub enum Cause {
    /// The domain refused (setup, nothing to sell, bad data) or the payload
    /// could not be written.
    #[error("{0}")]
    Refused(domain::ExportError),
    #[error(
        "{kind} files are written by the {side} {expected} of the link, but this store belongs to {found} ({role}); run the export with the {side}'s store"
    )]
    WrongStore {
        kind: Kind,
        side: Role,
        expected: String,
        found: String,
        role: Role,
    },
    #[error("{0} files cannot be exported by this build yet")]
    Unsupported(Kind),
    #[error(
        "cannot create the outbox {path}: {source}; check the link's folder and its permissions"
    )]
    Outbox {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} already exists with other content but the journal has no outbound file with sequence {sequence}: a crash between writing and committing left it there; if the peer never received it, move it (and its pair) out of the outbox, then export again"
    )]
    Orphan { path: PathBuf, sequence: u64 },
    #[error("{0}")]
    Publish(PublishError),
    #[error(
        "sequence {sequence} is committed with its content but its pair is not in place yet: {error}; the next export or daemon listing places it from its recorded bytes (fix the cause if it persists)"
    )]
    Unplaced {
        sequence: u64,
        error: Box<PublishError>,
    },
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl Cause {
    /// Stable short code, for run logs and `--json`.
    pub fn code(&self) -> &'static str {
        match self {
            Cause::Refused(e) => e.code(),
            Cause::WrongStore { .. } => "wrong-store",
            Cause::Unsupported(_) => "unsupported-kind",
            Cause::Outbox { .. } => "outbox",
            Cause::Orphan { .. } => "orphan-file",
            Cause::Publish(_) => "publish-failed",
            Cause::Unplaced { .. } => "not-yet-placed",
            Cause::Store(_) => "database",
        }
    }
}

/// An export that did not happen (nothing journaled, no sequence used), or
/// whose committed pair is not placed yet ([`Cause::Unplaced`]).
#[derive(Debug, thiserror::Error)]
#[error("{kind} export of link {link} failed: {cause}")]
pub struct ExportError {
    pub link: String,
    pub kind: Kind,
    /// Boxed: an error is rare, the `Ok` path should stay small.
    pub cause: Box<Cause>,
    /// The failed run logged for it, when that could be written.
    pub run_id: Option<i64>,
}

impl Cause {
    /// The store stayed busy past this process's wait (its write lock, or
    /// a change another process had in hand) before the export's
    /// transaction began: nothing was staged, nothing binds a sequence,
    /// and a run could not be written now either.
    fn is_busy(&self) -> bool {
        matches!(self, Cause::Store(e) if e.is_busy())
    }

    fn is_nothing_to_send(&self) -> bool {
        matches!(
            self,
            Cause::Refused(domain::ExportError::NothingToSend { .. })
        )
    }
}

impl ExportError {
    pub fn code(&self) -> &'static str {
        self.cause.code()
    }

    /// Nothing changed since the last export
    /// ([`domain::ExportError::NothingToSend`]): no run was logged, nothing
    /// is wrong.
    pub fn is_nothing_to_send(&self) -> bool {
        self.cause.is_nothing_to_send()
    }

    /// Every product was left out by the rules: a refusal with a run whose
    /// log says why, product by product.
    pub fn is_nothing_to_sell(&self) -> bool {
        matches!(
            self.cause.as_ref(),
            Cause::Refused(domain::ExportError::NothingToSell(_))
        )
    }

    /// The store stayed busy past this process's wait before the export
    /// began: nothing was staged and no sequence used; run again later, it
    /// exports what it would have.
    pub fn is_busy(&self) -> bool {
        self.cause.is_busy()
    }

    /// A failure of the machinery rather than a refusal by the rules: the
    /// database, the outbox, a file of another content under the next
    /// name, a placement. Someone must look; the others are answers.
    pub fn is_failure(&self) -> bool {
        match self.cause.as_ref() {
            Cause::Store(_)
            | Cause::Outbox { .. }
            | Cause::Orphan { .. }
            | Cause::Publish(_)
            | Cause::Unplaced { .. } => true,
            Cause::Refused(e) => matches!(
                e,
                domain::ExportError::Sql(_) | domain::ExportError::Store(_)
            ),
            Cause::WrongStore { .. } | Cause::Unsupported(_) => false,
        }
    }

    /// A failure of the disk, the folder or the database (not of the
    /// rules, nor a file in the way): the command exits as a runtime
    /// failure, to be run again once the cause is fixed.
    pub fn is_runtime(&self) -> bool {
        match self.cause.as_ref() {
            Cause::Store(_) | Cause::Outbox { .. } | Cause::Unplaced { .. } => true,
            Cause::Publish(e) => matches!(
                e,
                PublishError::Io { .. }
                    | PublishError::Payload(WriteError::Io(_))
                    | PublishError::Store(_)
            ),
            Cause::Refused(e) => matches!(
                e,
                domain::ExportError::Sql(_) | domain::ExportError::Store(_)
            ),
            Cause::Orphan { .. } | Cause::WrongStore { .. } | Cause::Unsupported(_) => false,
        }
    }

    /// The exclusions behind a refusal ("nothing to sell"), when there are.
    pub fn report(&self) -> Option<&Report> {
        match self.cause.as_ref() {
            Cause::Refused(e) => e.report(),
            _ => None,
        }
    }
}

/// The run kind of an export: `export-catalogue`, `export-seatplan`…
pub fn run_kind(kind: Kind) -> String {
    format!("export-{}", kind.as_str().to_ascii_lowercase())
}

/// Exports the link's next file with any producer; see the module docs.
pub fn export_with(
    store: &mut Store,
    link: &Link,
    producer: &dyn Producer,
    secret: &Secret,
    now: OffsetDateTime,
) -> Result<Exported, ExportError> {
    let kind = producer.kind();
    // One span per export: its log lines name the link, kind and, once
    // allocated, the sequence and run.
    let span = tracing::info_span!(
        "export",
        link = %link.name,
        kind = kind.as_str(),
        seq = tracing::field::Empty,
        run = tracing::field::Empty,
    );
    let _in_export = span.enter();
    let fail = |cause: Cause, run_id: Option<i64>| ExportError {
        link: link.name.clone(),
        kind,
        cause: Box::new(cause),
        run_id,
    };
    let side = kind.sender();
    let (sender, recipient) = match side {
        Role::Manager => (&link.manager, &link.distributor),
        Role::Distributor => (&link.distributor, &link.manager),
    };
    if store.role() != side || store.institution() != sender {
        return Err(fail(
            Cause::WrongStore {
                kind,
                side,
                expected: sender.to_string(),
                found: store.institution().to_string(),
                role: store.role(),
            },
            None,
        ));
    }
    let outbox = link.folders(side).outbox;
    if let Err(source) = std::fs::create_dir_all(&outbox) {
        let cause = Cause::Outbox {
            path: outbox.clone(),
            source,
        };
        let run_id = log_failure(store, link, kind, &cause);
        return Err(fail(cause, run_id));
    }

    // Finish first what a crash left between a commit and its placement:
    // that sequence is bound to its recorded content and must reach the
    // peer before the next one.
    if let Err(cause) = finish_prepared(store, link, kind, true) {
        let run_id = log_failure(store, link, kind, &cause);
        return Err(fail(cause, run_id));
    }

    let parties = Parties {
        link,
        kind,
        sender: sender.as_str(),
        recipient: recipient.as_str(),
        outbox: &outbox,
        now,
    };
    let staged_in =
        |tx: &rusqlite::Transaction<'_>| stage_and_bind(tx, &parties, producer, secret, &span);
    // From before the commit until the pair is placed: a listing meanwhile
    // leaves this export to this process (`store::in_hand`).
    let _in_hand = crate::store::in_hand::in_hand(store.path());
    match store.write(staged_in) {
        Ok((exported, staged, entry)) => {
            failpoint::hit("export.committed");
            // Committed: the sequence carries this content forever. A
            // failure from here on leaves it prepared, and the next export
            // or listing places it from its recorded bytes.
            if let Err(error) = publish_committed(store, &outbox, entry, &staged.pair()) {
                let cause = Cause::Unplaced {
                    sequence: exported.manifest.sequence,
                    error: Box::new(error),
                };
                let run_id = log_failure(store, link, kind, &cause);
                return Err(fail(cause, run_id));
            }
            // Debug: every caller reports the export itself (the CLI on
            // stdout, the daemon's "job done" line); at info this line only
            // doubled theirs.
            tracing::debug!(
                link = %link.name,
                kind = %kind,
                sequence = exported.manifest.sequence,
                records = exported.manifest.records,
                "file exported"
            );
            Ok(exported)
        }
        Err(cause) => {
            // Nothing was placed: only the staged copy, under a dot name no
            // reader takes, may remain; the sequence is not bound. A busy
            // store never began the transaction that stages it.
            if !cause.is_busy() {
                discard_unbound(&outbox, &link.name, kind, store);
            }
            // A sales export with nothing new is the normal answer of a
            // schedule between two sales: no failed run for it.
            let run_id = match &cause {
                cause if cause.is_nothing_to_send() => None,
                _ => log_failure(store, link, kind, &cause),
            };
            Err(fail(cause, run_id))
        }
    }
}

/// Who a file goes from and to, and where it is staged.
struct Parties<'a> {
    link: &'a Link,
    kind: Kind,
    sender: &'a str,
    recipient: &'a str,
    outbox: &'a Path,
    now: OffsetDateTime,
}

/// Step 2 of the protocol, inside the export's write transaction: allocate
/// the sequence, stage the pair, journal it as prepared with its manifest
/// bytes and the run. Returns what was exported, the staged pair and its
/// journal row.
fn stage_and_bind(
    tx: &rusqlite::Transaction<'_>,
    p: &Parties<'_>,
    producer: &dyn Producer,
    secret: &Secret,
    span: &tracing::Span,
) -> Result<(Exported, Staged, i64), Cause> {
    let (link, kind, outbox) = (p.link, p.kind, p.outbox);
    let sequence = journal::next_out(tx, &link.name, kind)?;
    let file = Manifest::payload_name(&link.name, kind, sequence);
    refuse_unknown_names(outbox, &link.name, kind, sequence)?;
    let run_id = runs::start(tx, &run_kind(kind), Some(&link.name), Some(&file))?;
    span.record("seq", sequence);
    span.record("run", run_id);
    let header = Header {
        kind,
        format_version: producer.format_version(),
        link: link.name.clone(),
        sender: p.sender.to_owned(),
        recipient: p.recipient.to_owned(),
        login: link.login.clone(),
        sequence,
        created: p.now,
    };
    let mut refused: Option<domain::ExportError> = None;
    let mut produced: Option<Produced> = None;
    let staged = stage(outbox, &header, secret, |out| {
        match producer.produce(tx, link, out) {
            Ok(p) => {
                let records = p.records;
                produced = Some(p);
                Ok(records)
            }
            // The payload's write failed (a full disk): not a refusal of
            // the export, a failure of its file.
            Err(domain::ExportError::Write(e @ WriteError::Io(_))) => Err(e),
            Err(e) => {
                refused = Some(e);
                Err(WriteError::Invalid("the export was refused".to_owned()))
            }
        }
    })
    .map_err(|e| match (refused, e) {
        (Some(r), _) => Cause::Refused(r),
        (None, e) => Cause::Publish(e),
    })?;
    let Some(Produced { records, report }) = produced else {
        return Err(Cause::Store(StoreError::Invalid(
            "the payload producer returned without output".to_owned(),
        )));
    };
    let entry = journal::record(
        tx,
        &NewEntry {
            link: &link.name,
            kind,
            direction: Direction::Out,
            sequence,
            sha256: &hex::encode(staged.manifest.sha256),
            file_name: &file,
            state: FileState::Prepared,
            run_id: Some(run_id),
        },
    )?;
    journal::record_manifest(tx, entry, &staged.manifest_text)?;
    log_run(tx, run_id, &file, sequence, &report, records, outbox)?;
    // The defect this design removes, kept behind a feature so the crash
    // harness can show what it costs: final names placed while the
    // transaction that binds the sequence is still open.
    #[cfg(feature = "publish-before-commit")]
    place(outbox, &staged.pair()).map_err(Cause::Publish)?;
    failpoint::hit("export.staged");
    let exported = Exported {
        manifest: staged.manifest.clone(),
        outbox: outbox.to_owned(),
        run_id,
        report,
    };
    Ok((exported, staged, entry))
}

/// The final names of `sequence` must be free: a pair there that the
/// journal does not know (left by hand, or by an older build) is never
/// replaced, and the sequence is not bound while it is there.
fn refuse_unknown_names(outbox: &Path, link: &str, kind: Kind, sequence: u64) -> Result<(), Cause> {
    for name in [
        Manifest::payload_name(link, kind, sequence),
        manifest_name(link, kind, sequence),
    ] {
        for path in [outbox.join(&name), outbox.join(SENT).join(&name)] {
            if std::fs::symlink_metadata(&path).is_ok() {
                return Err(Cause::Orphan { path, sequence });
            }
        }
    }
    Ok(())
}

/// The run's messages (exclusions, counts, where the file went) and its end.
fn log_run(
    tx: &rusqlite::Transaction<'_>,
    run_id: i64,
    file: &str,
    sequence: u64,
    report: &Report,
    records: u64,
    outbox: &Path,
) -> Result<(), StoreError> {
    for e in &report.excluded {
        runs::message(
            tx,
            run_id,
            Level::Info,
            "excluded",
            Some(&e.object),
            &e.reason,
        )?;
    }
    for (what, n) in &report.included {
        runs::message(
            tx,
            run_id,
            Level::Info,
            "included",
            Some(what),
            &format!("{n} exported"),
        )?;
    }
    runs::message(
        tx,
        run_id,
        Level::Info,
        "published",
        Some(file),
        &format!(
            "sequence {sequence}, {records} record(s), published in {}",
            outbox.display()
        ),
    )?;
    runs::finish(
        tx,
        run_id,
        RunStatus::Ok,
        Counts {
            total: records,
            ok: records,
            rejected: 0,
        },
    )
}

/// `<link>.<KIND>.<sequence>.stx`.
fn manifest_name(link: &str, kind: Kind, sequence: u64) -> String {
    FileName::manifest(link, kind, sequence).to_string()
}

/// Places a committed export and marks it published: the one path of a
/// fresh export and of recovery.
fn publish_committed(
    store: &mut Store,
    outbox: &Path,
    entry: i64,
    pair: &Pair<'_>,
) -> Result<(), PublishError> {
    place(outbox, pair)?;
    store
        .write(|tx| journal::set_state(tx, entry, FileState::Published, None))
        .map_err(PublishError::Store)?;
    failpoint::hit("export.published");
    Ok(())
}

/// Removes the staged copies of the sequence an export would have used,
/// after its transaction rolled back (nothing binds that sequence). Done
/// under the store's write lock: another process's export stages that same
/// sequence only inside its own write transaction, so its staged files are
/// never removed from under it.
fn discard_unbound(outbox: &Path, link: &str, kind: Kind, store: &mut Store) {
    let discarded = store.write(|tx| -> Result<(), PublishError> {
        let sequence = journal::next_out(tx, link, kind)?;
        let pair = Pair {
            payload: Manifest::payload_name(link, kind, sequence),
            manifest: manifest_name(link, kind, sequence),
            manifest_text: &[],
        };
        discard(outbox, &pair)
    });
    if let Err(e) = discarded {
        tracing::warn!(folder = %outbox.display(), error = %e, "cannot remove the staged copy of an export that did not happen; it is never taken and the next export replaces it");
    }
}

/// Finishes every export of `link` and `kind` that committed its sequence
/// but did not place its pair (a crash, a failed placement): each is
/// placed from its staged payload and recorded manifest, marked published,
/// and its staged copies removed. Idempotent: a name already holding the
/// same bytes (in the outbox or `sent/`) counts as placed. An export whose
/// process is still placing it is left to that process
/// ([`crate::store::in_hand`]): `wait` waits for it to finish (an export must
/// not overtake the sequences before its own; a command's export for as long
/// as it waits for a busy store, [`crate::store::wait`]), otherwise it is
/// skipped (a listing). Returns the sequences finished.
pub fn finish_prepared(
    store: &mut Store,
    link: &Link,
    kind: Kind,
    wait: bool,
) -> Result<Vec<u64>, Cause> {
    use crate::store::in_hand;
    let _settling = if wait {
        in_hand::settling_waiting(store.path())?
    } else {
        match in_hand::settling(store.path()) {
            Some(settling) => settling,
            None => return Ok(Vec::new()),
        }
    };
    let prepared = store.read(|conn| journal::prepared(conn, &link.name, kind))?;
    if prepared.is_empty() {
        return Ok(Vec::new());
    }
    let outbox = link.folders(kind.sender()).outbox;
    let mut finished = Vec::new();
    for (entry, text) in prepared {
        let pair = Pair {
            payload: entry.file_name.clone(),
            manifest: manifest_name(&link.name, kind, entry.sequence),
            manifest_text: text.as_bytes(),
        };
        publish_committed(store, &outbox, entry.id, &pair).map_err(|error| Cause::Unplaced {
            sequence: entry.sequence,
            error: Box::new(error),
        })?;
        tracing::info!(link = %link.name, kind = %kind, sequence = entry.sequence, "export finished after an interruption: pair placed from its recorded content");
        failpoint::hit("export.recovered");
        finished.push(entry.sequence);
    }
    Ok(finished)
}

/// Writes a failed run with the reason (and the exclusions behind a
/// refusal) in a transaction of its own; `None` if even that fails, and
/// for a busy store, which would make the run wait for the same lock: the
/// caller's error says the store was busy.
fn log_failure(store: &mut Store, link: &Link, kind: Kind, cause: &Cause) -> Option<i64> {
    if cause.is_busy() {
        return None;
    }
    let logged = store.write(|tx| -> Result<i64, StoreError> {
        let run_id = runs::start(tx, &run_kind(kind), Some(&link.name), None)?;
        if let Cause::Refused(e) = cause
            && let Some(report) = e.report()
        {
            for x in &report.excluded {
                runs::message(
                    tx,
                    run_id,
                    Level::Info,
                    "excluded",
                    Some(&x.object),
                    &x.reason,
                )?;
            }
        }
        runs::message(
            tx,
            run_id,
            Level::Error,
            cause.code(),
            None,
            &cause.to_string(),
        )?;
        runs::finish(tx, run_id, RunStatus::Failed, Counts::default())?;
        Ok(run_id)
    });
    match logged {
        Ok(id) => Some(id),
        Err(e) => {
            tracing::error!(link = %link.name, kind = %kind, error = %e, "cannot log the failed export");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kinds_of_refusal_follow_their_codes() {
        let setup = |code| {
            Cause::Refused(domain::ExportError::Setup {
                code,
                problem: "p".into(),
                fix: "f".into(),
            })
        };
        let causes = vec![
            Cause::Refused(domain::ExportError::NothingToSend {
                problem: "p".into(),
                fix: "f".into(),
            }),
            setup("no-interface"),
            Cause::Refused(domain::ExportError::NothingToSell(Report::default())),
            Cause::Refused(domain::ExportError::Sql(rusqlite::Error::InvalidQuery)),
            Cause::Unsupported(Kind::Sales),
            Cause::Outbox {
                path: "out".into(),
                source: std::io::Error::other("x"),
            },
            Cause::Orphan {
                path: "out/l.SALES.00000001.stx".into(),
                sequence: 1,
            },
        ];
        for cause in causes {
            let e = ExportError {
                link: "l".into(),
                kind: Kind::Sales,
                cause: Box::new(cause),
                run_id: None,
            };
            let code = e.code();
            assert_eq!(e.is_nothing_to_send(), code == "nothing-to-send", "{code}");
            assert_eq!(e.is_nothing_to_sell(), code == "nothing-to-sell", "{code}");
            assert_eq!(
                e.is_failure(),
                matches!(
                    code,
                    "database" | "orphan-file" | "publish-failed" | "outbox"
                ),
                "{code}"
            );
            assert_eq!(
                e.is_runtime(),
                matches!(code, "database" | "outbox"),
                "{code}"
            );
        }
    }

    #[test]
    fn a_payload_that_cannot_be_written_is_a_runtime_failure_a_file_in_the_way_is_not() {
        let e = |cause| ExportError {
            link: "l".into(),
            kind: Kind::Sales,
            cause: Box::new(cause),
            run_id: None,
        };
        let full = e(Cause::Publish(PublishError::Io {
            path: "out/.l.SALES.00000001.csv.part".into(),
            source: std::io::Error::from_raw_os_error(28),
        }));
        assert!(full.is_failure() && full.is_runtime());
        assert!(
            full.to_string()
                .contains("cannot write out/.l.SALES.00000001.csv.part: No space left on device"),
            "{full}"
        );
        let conflict = e(Cause::Publish(PublishError::Conflict {
            path: "out/l.SALES.00000001.stx".into(),
        }));
        assert!(conflict.is_failure() && !conflict.is_runtime());
        // Records the format cannot write: a bug to look at, not to retry.
        let invalid = e(Cause::Publish(PublishError::Payload(WriteError::Invalid(
            "a seat before its row".into(),
        ))));
        assert!(invalid.is_failure() && !invalid.is_runtime());
    }
}
