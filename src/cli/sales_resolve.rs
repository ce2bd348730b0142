//! `stxd sales resolve LINE --accept|--dismiss --reason TEXT`: the
//! manager's ops resolve one rejected line of a link.
//!
//! Finds the link (named, or the only one whose manager this config
//! serves), who decides (`--by`, else `$USER`, else the uid), calls
//! [`crate::app::resolve_line`] (the domain's resolution in one transaction)
//! and prints the resolution; a refusal is logged in a failed run and exits 1.

use std::io::Write;

use serde_json::json;

use super::{EXIT_FINDINGS, EXIT_OK, EXIT_USAGE};
use crate::app;
use crate::config::Config;
use crate::domain::DomainError;
use crate::domain::reintegration::Decision;

/// Runs `stxd sales resolve`; returns the exit code.
pub fn run(
    config: &Config,
    json: bool,
    link: Option<&str>,
    line: i64,
    decision: &Decision,
    reason: &str,
    by: Option<String>,
) -> anyhow::Result<u8> {
    let link = match manager_link(config, link) {
        Ok(name) => name,
        Err(problem) => {
            eprintln!("stxd: {problem}");
            return Ok(EXIT_USAGE);
        }
    };
    let by = by.unwrap_or_else(user);
    if by.is_empty() || by.chars().count() > 64 {
        eprintln!("stxd: --by: expected a name of 1 to 64 characters");
        return Ok(EXIT_USAGE);
    }
    let result = app::resolve_line(config, &link, line, decision, reason, &by, None)?;
    let mut out = super::out::stdout();
    match result {
        Ok(r) => {
            if json {
                writeln!(out, "{:#}", json!({"resolved": true, "resolution": r}))?;
            } else {
                let what = match &r.ticket {
                    Some(t) => format!(
                        "booked as ticket {t}, {} overridden",
                        r.overridden.join(", ")
                    ),
                    None => {
                        "closed without booking; the line stays sold at the distributor: tell its ops (the reconciliation lists it as dismissed)"
                            .to_owned()
                    }
                };
                writeln!(
                    out,
                    "line {} of link {} (rejected {}): {} by {} at {}: {what}",
                    r.line, r.link, r.code, r.decision, r.by, r.at
                )?;
                writeln!(out, "run:     {} (stxd runs show {})", r.run, r.run)?;
            }
            Ok(EXIT_OK)
        }
        Err(app::ResolveRefused {
            error: e @ DomainError::Invalid { .. },
            run,
        }) => {
            let text = e.to_string();
            if json {
                writeln!(
                    out,
                    "{:#}",
                    json!({"resolved": false, "reason": text, "run": run})
                )?;
            } else {
                writeln!(out, "refused: {text}")?;
            }
            Ok(EXIT_FINDINGS)
        }
        Err(app::ResolveRefused { error, .. }) => {
            Err(anyhow::Error::new(error).context("cannot resolve the line"))
        }
    }
}

/// The link named, or the only one whose manager this config serves.
fn manager_link(config: &Config, named: Option<&str>) -> Result<String, String> {
    if let Some(name) = named {
        return config.require_link(name).map(|l| l.name.clone());
    }
    let served: Vec<&str> = config
        .links
        .iter()
        .filter(|l| config.institution(l.manager.as_str()).is_some())
        .map(|l| l.name.as_str())
        .collect();
    match served.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => Err("no link of this config has its manager served here; run this command on the manager's server".into()),
        many => Err(format!(
            "several links have their manager served here ({}): name one with --link",
            many.join(", ")
        )),
    }
}

/// Who runs the command: `$USER`, else `$LOGNAME`, else `uid N`.
fn user() -> String {
    use std::os::unix::fs::MetadataExt;
    for var in ["USER", "LOGNAME"] {
        if let Ok(v) = std::env::var(var)
            && !v.trim().is_empty()
        {
            return v.trim().chars().take(64).collect();
        }
    }
    match std::fs::metadata("/proc/self") {
        Ok(m) => format!("uid {}", m.uid()),
        Err(_) => "unknown".to_owned(),
    }
}
