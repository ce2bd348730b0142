//! One change to a link's mapping table (set, ignore, unset), or a whole
//! CSV imported, recorded as a run, then the link's parked files resumed:
//! the code path of `stxd mapping set|ignore|unset|import` and of the
//! console's mapping page.

use super::{AppError, Handled, open_side, resume};
use crate::config::{Config, Link};
use crate::domain::DomainError;
use crate::domain::mapping::{Change, ImportError, ImportSummary, MappingCsvErrors};
use crate::ident::TechId;
use crate::store::Role;
use crate::store::mapping::MappingKind;
use crate::store::runs::{self, Counts, Level, RunStatus};

/// The text of the message that marks a run as asked for through the
/// console (code [`VIA_CODE`]).
pub const VIA_CONSOLE: &str = "via console";
/// The code of the message that says through what a run was asked for.
pub const VIA_CODE: &str = "via";

/// A change made, and the parked files resumed after it.
#[derive(Debug)]
pub struct MappingChanged {
    pub change: Change,
    pub run: i64,
    pub resumed: Vec<Handled>,
}

/// Applies one change `f` to the mapping table of `link`'s manager in the
/// distributor's store, recorded in the same transaction as a run
/// `run_kind` (`mapping-set`…) with, when `via` is given, a message saying
/// through what it was asked; then resumes the link's parked files. The
/// inner error is the domain's refusal (nothing changed).
pub fn change_mapping(
    config: &Config,
    link: &Link,
    run_kind: &str,
    via: Option<&str>,
    kind: MappingKind,
    id: TechId,
    f: impl FnOnce(&rusqlite::Transaction<'_>, &str, MappingKind, TechId) -> Result<Change, DomainError>,
) -> Result<Result<MappingChanged, DomainError>, AppError> {
    let manager = link.manager.to_string();
    let (_, _, mut store) = open_side(config, &link.name, Role::Distributor)?;
    let outcome = store.write(|tx| -> Result<(Change, i64), DomainError> {
        let c = f(tx, &manager, kind, id)?;
        let run = runs::start(tx, run_kind, Some(&link.name), None)?;
        if let Some(via) = via {
            runs::message(tx, run, Level::Info, VIA_CODE, None, via)?;
        }
        runs::message(
            tx,
            run,
            Level::Info,
            if c.changed() {
                "mapping-changed"
            } else {
                "mapping-unchanged"
            },
            Some(&format!("{kind} {id}")),
            &c.to_string(),
        )?;
        let n = u64::from(c.changed());
        runs::finish(
            tx,
            run,
            RunStatus::Ok,
            Counts {
                total: 1,
                ok: n,
                rejected: 0,
            },
        )?;
        Ok((c, run))
    });
    drop(store);
    match outcome {
        Ok((change, run)) => {
            let resumed = resume(config, Some(&link.name))?;
            Ok(Ok(MappingChanged {
                change,
                run,
                resumed,
            }))
        }
        Err(e) => Ok(Err(e)),
    }
}

/// A mapping CSV imported, and the parked files resumed after it.
#[derive(Debug)]
pub struct MappingImported {
    pub summary: ImportSummary,
    pub run: i64,
    pub resumed: Vec<Handled>,
}

/// Imports the mapping CSV `input` (named `name` in messages) into the
/// mapping table of `link`'s manager, all or nothing, recorded in the same
/// transaction as a run `mapping-import` (with, when `via` is given, a
/// message saying through what it was asked); then resumes the link's
/// parked files. A refused file changes nothing and is recorded as a
/// failed run listing its problems, after the rollback; the inner error
/// says why.
pub fn import_mapping(
    config: &Config,
    link: &Link,
    input: impl std::io::Read,
    name: &str,
    via: Option<&str>,
) -> Result<Result<MappingImported, ImportError>, AppError> {
    let manager = link.manager.to_string();
    let (_, _, mut store) = open_side(config, &link.name, Role::Distributor)?;
    let outcome = store.write(|tx| -> Result<_, ImportError> {
        let summary = crate::domain::mapping::import(tx, &manager, input, name)?;
        let run = runs::start(tx, "mapping-import", Some(&link.name), Some(name))?;
        if let Some(via) = via {
            runs::message(tx, run, Level::Info, VIA_CODE, None, via)?;
        }
        for c in &summary.changes {
            runs::message(
                tx,
                run,
                Level::Info,
                "mapping-changed",
                Some(&format!("{} {}", c.kind, c.manager_id)),
                &c.to_string(),
            )?;
        }
        runs::finish(
            tx,
            run,
            RunStatus::Ok,
            Counts {
                total: summary.rows,
                ok: summary.rows,
                rejected: 0,
            },
        )?;
        Ok((summary, run))
    });
    match outcome {
        Ok((summary, run)) => {
            drop(store);
            // Filled mappings let parked files resume now.
            let resumed = resume(config, Some(&link.name))?;
            Ok(Ok(MappingImported {
                summary,
                run,
                resumed,
            }))
        }
        Err(ImportError::Rejected(errs)) => {
            record_refusal(&mut store, &link.name, &errs, via);
            Ok(Err(ImportError::Rejected(errs)))
        }
        Err(e) => Ok(Err(e)),
    }
}

/// Records a refused import as a failed run listing its problems; a failure
/// to record is logged, not fatal (the refusal is the caller's to show).
fn record_refusal(
    store: &mut crate::store::Store,
    link: &str,
    errs: &MappingCsvErrors,
    via: Option<&str>,
) {
    let recorded = store.write(|tx| -> Result<(), crate::store::StoreError> {
        let run = runs::start(tx, "mapping-import", Some(link), Some(&errs.file))?;
        if let Some(via) = via {
            runs::message(tx, run, Level::Info, VIA_CODE, None, via)?;
        }
        for e in &errs.errors {
            runs::message(
                tx,
                run,
                Level::Error,
                e.code,
                Some(&e.position.to_string()),
                &e.problem,
            )?;
        }
        let n = errs.errors.len() as u64;
        runs::finish(
            tx,
            run,
            RunStatus::Failed,
            Counts {
                total: n,
                ok: 0,
                rejected: n,
            },
        )
    });
    if let Err(e) = recorded {
        warn!(error = %e, "cannot record the refused mapping import as a run");
    }
}

/// Records, in `side`'s store of `link`, a run `kind` for an action asked
/// through `via` (the console's trigger, retry): one info message `via`
/// and one saying what was done. Returns the run.
pub fn record_action(
    config: &Config,
    link: &str,
    side: Role,
    kind: &str,
    via: &str,
    what: &str,
) -> Result<i64, AppError> {
    let (link, _, mut store) = open_side(config, link, side)?;
    let run = store.write(|tx| -> Result<i64, crate::store::StoreError> {
        let run = runs::start(tx, kind, Some(&link.name), None)?;
        runs::message(tx, run, Level::Info, VIA_CODE, None, via)?;
        runs::message(tx, run, Level::Info, "action", None, what)?;
        runs::finish(tx, run, RunStatus::Ok, Counts::ONE_OK)?;
        Ok(run)
    })?;
    Ok(run)
}
