//! Apply: a verified file into the store, exactly once.
//!
//! Takes a [`Verified`] file and the receiving side of its link; returns what
//! became of it ([`Outcome`]). Everything happens in one store transaction:
//! the sequence decision against the file journal, the execution log (run),
//! the records streamed from the parse stage into the domain importer (which
//! maps them), and the journal row. A crash or an error at any point leaves
//! the store as if the file had never been seen; a structurally bad file is
//! then journaled as rejected in a transaction of its own.
//!
//! Sequence rules (the exchange's exactly-once rule): the next sequence applies; a sequence
//! already applied with the same digest is "already applied" (acknowledged
//! again, nothing done); with another digest it is a replay or tampering and
//! is rejected; a gap, or an earlier file still parked, holds the file in the
//! inbox until its turn.

use rusqlite::{Connection, Transaction};

use super::outcome::{Hold, Outcome};
use super::parse::{self, Record};
use super::{InboundError, Verified};
use crate::domain::DomainError;
use crate::domain::import::{
    CatalogueImport, Context, Outcome as Imported, SeatplanImport, Summary, still_missing,
};
use crate::domain::reintegration::{self, SalesImport, SalesOutcome};
use crate::domain::selling::{ContingentImport, ContingentOutcome};
use crate::format::envelope::Manifest;
use crate::format::{FormatError, Kind, Limits, Position};
use crate::store::journal::{self, Direction, FileState, NewEntry};
use crate::store::runs::{self, Counts, RunStatus};
use crate::store::{Role, Store, StoreError};

/// The receiving end of a link.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub link: &'a str,
    /// The manager's institution code (the distributor's external manager).
    pub manager: &'a str,
    pub distributor: &'a str,
    /// The link's login (`OPERATOR@DISTRIBUTOR`).
    pub login: &'a str,
    pub side: Role,
}

/// What an applied file did, by kind.
#[derive(Debug)]
pub enum Applied {
    /// A seat plan or catalogue at the distributor.
    Import(Summary),
    /// A contingent file at the distributor: snapshots applied or ignored
    /// (older than the one applied).
    Contingent(ContingentOutcome),
    /// A sales file at the manager: lines booked, duplicates, rejected lines
    /// (kept with their reasons), acknowledgements applied.
    Sales(SalesOutcome),
}

impl std::fmt::Display for Applied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Applied::Import(s) => write!(
                f,
                "{} created, {} updated, {} unchanged, {} suspended, {} skipped (ignored mappings)",
                s.created, s.updated, s.unchanged, s.suspended, s.skipped
            ),
            Applied::Contingent(c) => write!(
                f,
                "{} snapshot(s) applied, {} older one(s) ignored, {} sold place(s) kept outside the new contingent, {} resolution(s) of the manager recorded",
                c.applied.len(),
                c.ignored.len(),
                c.kept_sold,
                c.resolutions.len()
            ),
            Applied::Sales(o) => write!(
                f,
                "{} line(s): {} booked, {} already booked, {} rejected (stxd sales rejects), {} acknowledgement(s) applied",
                o.lines(),
                o.booked,
                o.duplicates,
                o.rejected,
                o.acknowledged.len()
            )
            .and_then(|()| match o.unbooked_refunds {
                0 => Ok(()),
                n => write!(f, ", {n} refund(s) of unbooked sales closed"),
            }),
        }
    }
}

/// The kinds each side applies.
fn accepts(side: Role, kind: Kind) -> bool {
    match side {
        Role::Distributor => matches!(kind, Kind::Seatplan | Kind::Catalogue | Kind::Contingent),
        Role::Manager => kind == Kind::Sales,
    }
}

/// Applies `verified` for `target` in one store transaction. A file refused
/// for good is journaled as rejected and returned as
/// [`Outcome::Rejected`]; one whose setup is not ready is
/// [`Outcome::Held`] with nothing kept; `Err` is a transient failure.
pub fn apply(
    store: &mut Store,
    target: &Target<'_>,
    verified: Verified,
    limits: &Limits,
) -> Result<Outcome, InboundError> {
    let manifest = verified.manifest.clone();
    let payload_name = verified.payload_name.clone();
    if !accepts(target.side, manifest.kind) {
        return Ok(Outcome::Held {
            hold: Hold::KindNotHandled,
            reason: format!(
                "this version of stxd does not apply {} files on the {} side yet; the file is kept in the inbox",
                manifest.kind, target.side
            ),
        });
    }
    let result = store.write(|tx| -> Result<Outcome, InboundError> {
        let resuming = match decide(tx, target, &manifest)? {
            Decision::Apply { resuming } => resuming,
            Decision::Done(outcome) => return Ok(outcome),
        };
        let run = runs::start(
            tx,
            &format!("import-{}", manifest.kind.as_str().to_lowercase()),
            Some(target.link),
            Some(&payload_name),
        )?;
        // The caller's file span (inbound::process) carries the run from now on.
        tracing::Span::current().record("run", run);
        tracing::debug!(run, "applying");
        let done = import(
            tx,
            target,
            &manifest,
            &payload_name,
            run,
            parse::parse(verified, limits),
        )?;
        let sha256 = hex::encode(manifest.sha256);
        match resuming {
            Some(id) => journal::set_state(tx, id, done.state, Some(run))?,
            None => {
                journal::record(
                    tx,
                    &NewEntry {
                        link: target.link,
                        kind: manifest.kind,
                        direction: Direction::In,
                        sequence: manifest.sequence,
                        sha256: &sha256,
                        file_name: &payload_name,
                        state: done.state,
                        run_id: Some(run),
                    },
                )?;
            }
        }
        runs::finish(tx, run, done.status, done.counts)?;
        crate::failpoint::hit("apply.before-commit");
        Ok(done.outcome)
    });
    if result.is_ok() {
        crate::failpoint::hit("apply.committed");
    }
    match result {
        // Nothing of it was kept: it waits, its sequence not consumed,
        // until the setup is fixed (the next listing tries again).
        Err(InboundError::Domain(e @ DomainError::Unready { .. })) => Ok(Outcome::Held {
            hold: Hold::Setup,
            reason: format!("{e}; the file waits in the inbox and applies once this is fixed"),
        }),
        Err(e) if e.is_permanent() => {
            record_rejection(store, target, &manifest, &payload_name, &e)?;
            Ok(Outcome::Rejected(e))
        }
        other => other,
    }
}

/// What an importer did: the journal state, the run's status and counts,
/// and the outcome for the caller.
struct Done {
    state: FileState,
    status: RunStatus,
    counts: Counts,
    outcome: Outcome,
}

/// Streams the records into the importer of the file's kind, inside the
/// applying transaction.
fn import(
    tx: &Transaction<'_>,
    target: &Target<'_>,
    manifest: &Manifest,
    payload_name: &str,
    run: i64,
    records: parse::Records,
) -> Result<Done, InboundError> {
    let all = Counts {
        total: manifest.records,
        ok: manifest.records,
        rejected: 0,
    };
    let imported = |i: Imported| match i {
        Imported::Applied(s) => Done {
            state: FileState::Applied,
            status: RunStatus::Ok,
            counts: all,
            outcome: Outcome::Applied {
                run,
                summary: Applied::Import(s),
            },
        },
        Imported::Parked(missing) => Done {
            state: FileState::Parked,
            status: RunStatus::Parked,
            counts: all,
            outcome: Outcome::Parked { run, missing },
        },
    };
    let ctx = Context {
        manager: target.manager,
        file: payload_name,
        run,
    };
    match manifest.kind {
        Kind::Seatplan => {
            let mut import = SeatplanImport::new(tx, ctx)?;
            for record in records {
                match record? {
                    Record::Seatplan(item) => import.item(&item)?,
                    other => return Err(wrong_record(payload_name, &other)),
                }
            }
            Ok(imported(import.finish()?))
        }
        Kind::Catalogue => {
            let mut import = CatalogueImport::new(tx, ctx)?;
            for record in records {
                match record? {
                    Record::Catalogue(item) => import.item(&item)?,
                    other => return Err(wrong_record(payload_name, &other)),
                }
            }
            Ok(imported(import.finish()?))
        }
        Kind::Contingent => {
            let mut import = ContingentImport::new(tx, ctx, target.link);
            for record in records {
                match record? {
                    Record::Contingent(line) => import.item(&line)?,
                    other => return Err(wrong_record(payload_name, &other)),
                }
            }
            let outcome = import.finish()?;
            // A file whose every snapshot was older than what is applied
            // changed nothing: journaled as ignored, said so in its run.
            let state = if outcome.applied.is_empty()
                && outcome.resolutions.is_empty()
                && !outcome.ignored.is_empty()
            {
                FileState::Ignored
            } else {
                FileState::Applied
            };
            Ok(Done {
                state,
                status: RunStatus::Ok,
                counts: all,
                outcome: Outcome::Applied {
                    run,
                    summary: Applied::Contingent(outcome),
                },
            })
        }
        Kind::Sales => sales(tx, target, payload_name, run, records),
    }
}

/// A sales file at the manager: every line booked once or rejected with its
/// reason, then the acknowledgements.
fn sales(
    tx: &Transaction<'_>,
    target: &Target<'_>,
    payload_name: &str,
    run: i64,
    records: parse::Records,
) -> Result<Done, InboundError> {
    let ctx = reintegration::Context {
        link: target.link,
        login: target.login,
        distributor: target.distributor,
        file: payload_name,
        run,
    };
    let mut import = SalesImport::new(tx, ctx)?;
    // One record per line after the header: the reader refuses blank lines
    // and line breaks inside fields.
    for (i, record) in records.enumerate() {
        match record? {
            Record::Sales(line) => import.line(&line, i as u64 + 2)?,
            other => return Err(wrong_record(payload_name, &other)),
        }
    }
    let outcome = import.finish()?;
    let lines = outcome.lines();
    Ok(Done {
        state: FileState::Applied,
        status: if outcome.rejected > 0 {
            RunStatus::Partial
        } else {
            RunStatus::Ok
        },
        counts: Counts {
            total: lines,
            ok: lines - outcome.rejected,
            rejected: outcome.rejected,
        },
        outcome: Outcome::Applied {
            run,
            summary: Applied::Sales(outcome),
        },
    })
}

enum Decision {
    /// Apply it; `Some(id)` when it is a parked file resuming.
    Apply {
        resuming: Option<i64>,
    },
    Done(Outcome),
}

/// The sequence rules, against the journal, inside the applying transaction.
fn decide(
    tx: &Transaction<'_>,
    target: &Target<'_>,
    m: &Manifest,
) -> Result<Decision, InboundError> {
    let sha256 = hex::encode(m.sha256);
    let reject = |code: &'static str, problem: String| -> InboundError {
        FormatError::new(m.manifest_name(), Position::File, code, problem).into()
    };
    if let Some(entry) = journal::lookup(tx, target.link, m.kind, Direction::In, m.sequence)? {
        let same = entry.sha256 == sha256;
        match entry.state {
            FileState::Applied | FileState::Ignored if same => {
                return Ok(Decision::Done(Outcome::AlreadyApplied {
                    sequence: m.sequence,
                }));
            }
            FileState::Parked if same => {
                return Ok(Decision::Apply {
                    resuming: Some(entry.id),
                });
            }
            FileState::Rejected => {}
            state => {
                return Err(reject(
                    "sequence-conflict",
                    format!(
                        "{} sequence {} is already {state} with other content (sha256 {}…): a replay or a tampered file; nothing was applied — ask the sender which file is right",
                        m.kind,
                        m.sequence,
                        &entry.sha256[..12]
                    ),
                ));
            }
        }
    }
    let last = journal::last_sequence(tx, target.link, m.kind, Direction::In)?.unwrap_or(0);
    if m.sequence <= last {
        return Err(reject(
            "sequence-old",
            format!(
                "{} sequence {} is at or below the last one applied ({last}) and unknown to the journal: a replay; nothing was applied",
                m.kind, m.sequence
            ),
        ));
    }
    if m.sequence > last + 1 {
        let parked = journal::in_state(tx, target.link, m.kind, Direction::In, FileState::Parked)?;
        let reason = match parked.iter().map(|e| e.sequence).min() {
            Some(p) if p < m.sequence => format!(
                "waiting for {} sequence {p}, parked until its mappings are filled (stxd mapping list --pending)",
                m.kind
            ),
            _ => format!(
                "waiting for {} sequence {} (the last applied is {last}): a file is missing or late",
                m.kind,
                last + 1
            ),
        };
        return Ok(Decision::Done(Outcome::Held {
            hold: Hold::SequenceGap,
            reason,
        }));
    }
    Ok(Decision::Apply { resuming: None })
}

/// Whether the parked file `m` would only park again if applied now: the
/// journal holds it as parked with this content, and every mapping its
/// last run found missing is missing still ([`still_missing`]). Not sure
/// (another state or content, a run naming no mapping it can read back):
/// no.
pub fn parks_again(
    conn: &Connection,
    target: &Target<'_>,
    m: &Manifest,
) -> Result<bool, InboundError> {
    let Some(entry) = journal::lookup(conn, target.link, m.kind, Direction::In, m.sequence)? else {
        return Ok(false);
    };
    if entry.state != FileState::Parked || entry.sha256 != hex::encode(m.sha256) {
        return Ok(false);
    }
    let Some(run) = entry.run_id else {
        return Ok(false);
    };
    Ok(still_missing(conn, target.manager, run)?.unwrap_or(false))
}

fn wrong_record(file: &str, record: &Record) -> InboundError {
    FormatError::new(
        file,
        Position::File,
        "wrong-record",
        format!("found a record of another kind: {record:?}"),
    )
    .into()
}

/// Journals a rejected file and logs why, in a transaction of its own (the
/// applying one rolled back).
fn record_rejection(
    store: &mut Store,
    target: &Target<'_>,
    m: &Manifest,
    payload_name: &str,
    error: &InboundError,
) -> Result<(), InboundError> {
    store.write(|tx| -> Result<(), StoreError> {
        let run = log_rejection(tx, target.link, Some(m.kind), payload_name, error)?;
        // A file rejected for its sequence must not take the place of the
        // file journaled under that number.
        if matches!(error.code(), "sequence-conflict" | "sequence-old") {
            return Ok(());
        }
        let sha256 = hex::encode(m.sha256);
        match journal::lookup(tx, target.link, m.kind, Direction::In, m.sequence)? {
            // A parked file that fails when it resumes: its parked row
            // becomes the rejection, so the real reason is what ops see.
            Some(parked) if parked.state == FileState::Parked && parked.sha256 == sha256 => {
                journal::set_state(tx, parked.id, FileState::Rejected, Some(run))?;
            }
            _ => {
                journal::record(
                    tx,
                    &NewEntry {
                        link: target.link,
                        kind: m.kind,
                        direction: Direction::In,
                        sequence: m.sequence,
                        sha256: &sha256,
                        file_name: payload_name,
                        state: FileState::Rejected,
                        run_id: Some(run),
                    },
                )?;
            }
        }
        Ok(())
    })?;
    Ok(())
}

/// Logs a rejected file as a failed run with one error message; returns the
/// run. Used for files refused before or while applying.
pub fn log_rejection(
    tx: &Transaction<'_>,
    link: &str,
    kind: Option<Kind>,
    file: &str,
    error: &InboundError,
) -> Result<i64, StoreError> {
    let run_kind = match kind {
        Some(k) => format!("import-{}", k.as_str().to_lowercase()),
        None => "import".to_owned(),
    };
    let location = error.position().map(ToString::to_string);
    let text = error.to_string();
    runs::failed(
        tx,
        &run_kind,
        Some(link),
        Some(file),
        error.code(),
        location.as_deref(),
        &text,
    )
}

impl From<StoreError> for InboundError {
    fn from(e: StoreError) -> InboundError {
        InboundError::Domain(DomainError::Store(e))
    }
}
