//! One change to a link's mapping table (set, ignore, unset), recorded as a
//! run, then the link's parked files resumed: the code path of `stxd
//! mapping set|ignore|unset` and of the console's mapping page.

use super::{AppError, Handled, open_side, resume};
use crate::config::{Config, Link};
use crate::domain::DomainError;
use crate::domain::mapping::Change;
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

/// Adds to run `run` of `side`'s store of `link` the message saying through
/// what it was asked (a retry through the console).
pub fn mark_via(
    config: &Config,
    link: &str,
    side: Role,
    run: i64,
    via: &str,
) -> Result<(), AppError> {
    let (_, _, mut store) = open_side(config, link, side)?;
    store.write(|tx| runs::message(tx, run, Level::Info, VIA_CODE, None, via).map(|_| ()))?;
    Ok(())
}
