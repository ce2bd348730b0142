//! `stxd sales …`: the manager's ops look at what the reintegration of a
//! link's SALES files refused.
//!
//! Parses arguments, opens the link's manager store and calls
//! [`crate::domain::reintegration`]: `rejects` changes nothing, so it
//! records no run; `resolve` accepts or dismisses one rejected line, in a
//! run (a refused resolution in a failed run). No business rule lives here.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;

use super::{EXIT_OK, EXIT_USAGE};
use crate::app;
use crate::config::Config;
use crate::domain::reintegration::{self as domain, Rejected};
use crate::format::sales::COLUMNS;
use crate::store::Role;

#[derive(Debug, Subcommand)]
pub enum SalesCommand {
    /// The distributor's sale and refund lines the manager rejected, with
    /// their reasons, as a CSV for ops to fix and resubmit (the SALES columns
    /// plus file;position;code;reason; formula-looking cells get a leading ').
    Rejects {
        /// The link whose rejected lines to list.
        #[arg(long, value_name = "LINK")]
        link: String,
        /// Write the CSV to FILE (never replaced if it exists) instead of
        /// stdout.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Resolve a rejected line: --accept books it with the rule it was
    /// rejected for set aside (only price-differs, no-price,
    /// performance-closed, performance-started can be), --dismiss closes it
    /// unbooked. Recorded with who, when and why, in the run log and the
    /// reconciliation.
    Resolve {
        /// The distributor's line id (the `line` column of `sales rejects`).
        line: i64,
        /// The link (needed when several links have their manager here).
        #[arg(long, value_name = "LINK")]
        link: Option<String>,
        /// Book the line, overriding the rule it was rejected for.
        #[arg(long, conflicts_with = "dismiss", required_unless_present = "dismiss")]
        accept: bool,
        /// Close the line without booking it.
        #[arg(long)]
        dismiss: bool,
        /// Why (recorded, shown in the reconciliation).
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// Who decided (default: the Unix user, $USER).
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
        /// With --accept: also set aside this overridable rule, when the
        /// line breaks it too (repeatable).
        #[arg(long = "override", value_name = "CODE", requires = "accept")]
        also_override: Vec<String>,
    },
}

/// Runs a `stxd sales` command; returns the exit code.
pub fn run(config: &Config, json: bool, cmd: SalesCommand) -> anyhow::Result<u8> {
    match cmd {
        SalesCommand::Rejects { link, output } => rejects(config, &link, output.as_deref(), json),
        SalesCommand::Resolve {
            line,
            link,
            accept,
            dismiss: _,
            reason,
            by,
            also_override,
        } => {
            let decision = if accept {
                domain::Decision::Accept { also_override }
            } else {
                domain::Decision::Dismiss
            };
            super::sales_resolve::run(config, json, link.as_deref(), line, &decision, &reason, by)
        }
    }
}

fn rejects(config: &Config, link: &str, output: Option<&Path>, json: bool) -> anyhow::Result<u8> {
    if let Err(problem) = config.require_link(link) {
        eprintln!("stxd: {problem}");
        return Ok(EXIT_USAGE);
    }
    let (link, _, store) = app::open_side(config, link, Role::Manager)?;
    if json {
        let mut lines = Vec::new();
        store.read(|c| {
            domain::for_each_rejected(c, &link.name, |r| {
                lines.push(rejected_json(&r));
                Ok(())
            })
        })?;
        let doc = json!({"link": link.name, "count": lines.len(), "rejected": lines});
        match output {
            Some(path) => {
                let mut f = create_new(path)?;
                writeln!(f, "{doc:#}")
                    .with_context(|| format!("cannot write {}", path.display()))?;
                f.sync_all()
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            None => outln!("{doc:#}"),
        }
        return Ok(EXIT_OK);
    }
    match output {
        Some(path) => {
            let mut f = create_new(path)?;
            let n = store.read(|c| domain::export_rejects(c, &link.name, &mut f))?;
            f.sync_all()
                .with_context(|| format!("cannot write {}", path.display()))?;
            outln!(
                "{n} rejected line{} of link {} written to {}",
                if n == 1 { "" } else { "s" },
                link.name,
                path.display()
            );
        }
        None => {
            let out = super::out::stdout();
            store.read(|c| domain::export_rejects(c, &link.name, out))?;
        }
    }
    Ok(EXIT_OK)
}

fn create_new(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| {
            let problem = format!(
                "cannot create {} (an existing file is never replaced)",
                path.display()
            );
            // An existing file is refused input (1), anything else a
            // failure to write (3).
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                super::Refused::err(format!("{problem}: {e}"))
            } else {
                anyhow::Error::new(e).context(problem)
            }
        })
}

fn rejected_json(r: &Rejected) -> serde_json::Value {
    let record: serde_json::Map<String, serde_json::Value> = COLUMNS
        .iter()
        .zip(&r.fields)
        .map(|(k, v)| ((*k).to_owned(), json!(v)))
        .collect();
    json!({
        "line": r.line,
        "operation": r.operation,
        "file": r.file,
        "position": r.position,
        "code": r.code,
        "reason": r.reason,
        "updated": r.updated,
        "record": record,
    })
}
