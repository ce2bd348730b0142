//! One rejected sales line resolved by the manager's ops (accepted or
//! dismissed), the code path of `stxd sales resolve` and of the console's
//! sales page: the domain's resolution in one transaction, marked with who
//! asked when it came through the console; a refusal recorded as a failed
//! run of its own, after the rollback.

use super::{AppError, VIA_CODE, open_side};
use crate::config::Config;
use crate::domain::DomainError;
use crate::domain::reintegration::{self as domain, Context, Decision, Resolution};
use crate::store::Role;
use crate::store::runs::{self, Level};

/// A resolution that did not happen: nothing changed. For a refusal
/// (`DomainError::Invalid`), `run` is the failed run that records why (none
/// when even that could not be written).
#[derive(Debug)]
pub struct ResolveRefused {
    pub error: DomainError,
    pub run: Option<i64>,
}

/// Resolves the rejected line `line` of `link` at its manager, decided by
/// `by` for `reason`; `via` (the console) is added to the run. The inner
/// error is the domain's: a refusal is recorded in a failed `resolve-line`
/// run.
pub fn resolve_line(
    config: &Config,
    link: &str,
    line: i64,
    decision: &Decision,
    reason: &str,
    by: &str,
    via: Option<&str>,
) -> Result<Result<Resolution, ResolveRefused>, AppError> {
    let (link, _, mut store) = open_side(config, link, Role::Manager)?;
    let ctx = Context {
        link: &link.name,
        login: &link.login,
        distributor: link.distributor.as_str(),
        file: "",
        run: 0,
    };
    let result = store.write(|tx| -> Result<Resolution, DomainError> {
        let r = domain::resolve_line(tx, ctx, line, decision, reason, by)?;
        if let Some(via) = via {
            runs::message(tx, r.run, Level::Info, VIA_CODE, None, via)?;
        }
        Ok(r)
    });
    match result {
        Ok(r) => Ok(Ok(r)),
        Err(error @ DomainError::Invalid { .. }) => {
            let problem = error.to_string();
            let run = store
                .write(|tx| -> Result<i64, crate::store::StoreError> {
                    let run = runs::failed(
                        tx,
                        "resolve-line",
                        Some(&link.name),
                        None,
                        "refused",
                        Some(&format!("line id {line}")),
                        &problem,
                    )?;
                    if let Some(via) = via {
                        runs::message(tx, run, Level::Info, VIA_CODE, None, via)?;
                    }
                    Ok(run)
                })
                .ok();
            Ok(Err(ResolveRefused { error, run }))
        }
        Err(error) => Ok(Err(ResolveRefused { error, run: None })),
    }
}
