//! `stxd export seatplan|catalogue|contingent|sales --link L`: the manager's exports
//! and the distributor's sales file, one file each time, through
//! [`crate::outbound::export`] (the daemon's code path), on the store of the
//! side that sends the kind. Prints the file written, its sequence, its
//! record count and every object left out with the reason; exit 0 when
//! written, 1 when refused.

use clap::Subcommand;
use serde_json::json;

use super::{EXIT_FINDINGS, EXIT_OK};
use crate::app;
use crate::config::Config;
use crate::domain::export::Report;
use crate::format::Kind;
use crate::outbound::contingent::ContingentPayload;
use crate::outbound::export::{self, Exported};

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Write the seat plans of the venues the link's products use to the
    /// link's outbox, with the next sequence number.
    Seatplan {
        /// The link, as named in the config.
        #[arg(long)]
        link: String,
    },
    /// Write the catalogue the link's stx_file channel may sell to the
    /// link's outbox, with the next sequence number.
    Catalogue {
        /// The link, as named in the config.
        #[arg(long)]
        link: String,
    },
    /// Write the link's contingent snapshots (each with its version) to the
    /// link's outbox: one performance, or every performance with an
    /// allotment for the link.
    Contingent {
        /// The link, as named in the config.
        #[arg(long)]
        link: String,
        /// Only this performance (technical id or code).
        #[arg(long)]
        performance: Option<String>,
    },
    /// Write the distributor's next SALES file for a link: every sale and
    /// refund not yet sent, plus the contingent versions applied (the
    /// acknowledgement).
    Sales {
        /// The link, as named in the config.
        #[arg(long)]
        link: String,
    },
}

pub fn run(config: &Config, json: bool, cmd: ExportCommand) -> anyhow::Result<u8> {
    let (kind, link_name) = match &cmd {
        ExportCommand::Seatplan { link } => (Kind::Seatplan, link),
        ExportCommand::Catalogue { link } => (Kind::Catalogue, link),
        ExportCommand::Contingent { link, .. } => (Kind::Contingent, link),
        ExportCommand::Sales { link } => (Kind::Sales, link),
    };
    let (link, inst, mut store) = app::open_side(config, link_name, kind.sender())?;
    let secret = app::link_secret(link)
        .map_err(|e| anyhow::Error::new(e).context(format!("link {}", link.name)))?;
    let now = time::OffsetDateTime::now_utc();
    let result = match &cmd {
        ExportCommand::Contingent {
            performance: Some(p),
            ..
        } => export::export_with(&mut store, link, &ContingentPayload::one(p), &secret, now),
        _ => crate::outbound::export(&mut store, link, kind, &secret, now),
    };
    match result {
        Ok(done) => {
            print_exported(json, &done);
            Ok(EXIT_OK)
        }
        Err(e) => {
            let empty = Report::default();
            let report = e.report().unwrap_or(&empty);
            if json {
                outln!(
                    "{:#}",
                    json!({
                        "written": false, "link": link.name, "kind": kind.as_str(),
                        "code": e.code(), "reason": e.to_string(), "run": e.run_id,
                        "excluded": report.excluded,
                    })
                );
            } else {
                outln!("{:<10} {e}", format!("{}:", said(&e)));
                outln!("code:      {}", e.code());
                if let Some(run) = e.run_id {
                    outln!(
                        "run:       {run} (stxd runs show {run} --institution {})",
                        inst.code
                    );
                }
                if !report.excluded.is_empty() {
                    print_exclusions(report);
                }
            }
            Ok(exit_code(&e))
        }
    }
}

/// What an export that did not happen was: the rules' answer
/// (`refused`), or a failure of the machinery (`failed`).
pub(super) fn said(e: &crate::outbound::export::ExportError) -> &'static str {
    if e.is_failure() { "failed" } else { "refused" }
}

/// The exit code of an export that did not happen: a runtime failure (the
/// disk, a folder, the database) is 3, to run it again once the cause is
/// fixed; a refusal 1.
pub(super) fn exit_code(e: &crate::outbound::export::ExportError) -> u8 {
    if e.is_runtime() {
        super::exit::EXIT_RUNTIME
    } else {
        EXIT_FINDINGS
    }
}

fn print_exported(json: bool, done: &Exported) {
    let m = &done.manifest;
    let payload = done.outbox.join(&m.payload);
    let manifest = done.outbox.join(m.manifest_name());
    if json {
        let by_type: serde_json::Map<_, _> = done
            .report
            .included
            .iter()
            .map(|(l, n)| (l.clone(), json!(n)))
            .collect();
        outln!(
            "{:#}",
            json!({
                "written": true, "link": m.link, "kind": m.kind.as_str(),
                "payload": payload.display().to_string(),
                "manifest": manifest.display().to_string(),
                "sequence": m.sequence, "records": m.records, "bytes": m.bytes,
                "sha256": hex::encode(m.sha256), "records_by_type": by_type,
                "run": done.run_id, "excluded": done.report.excluded,
            })
        );
    } else {
        let by_type: Vec<String> = done
            .report
            .included
            .iter()
            .map(|(l, n)| format!("{l} {n}"))
            .collect();
        outln!("written:   {}", payload.display());
        outln!("manifest:  {}", manifest.display());
        outln!("kind:      {} (link {})", m.kind, m.link);
        outln!("sequence:  {}", m.sequence);
        outln!("records:   {} ({})", m.records, by_type.join(", "));
        outln!(
            "run:       {} (stxd runs show {} --institution {})",
            done.run_id,
            done.run_id,
            m.sender
        );
        print_exclusions(&done.report);
    }
}

fn print_exclusions(report: &Report) {
    if report.excluded.is_empty() {
        outln!("excluded:  none");
        return;
    }
    outln!("excluded:  {} object(s)", report.excluded.len());
    for x in &report.excluded {
        outln!("  {}: {}", x.object, x.reason);
    }
}
