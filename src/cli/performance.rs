//! `stxd performance cancel|close PERF --link L`: the manager cancels or
//! closes a performance. Calls [`crate::domain::lifecycle`] on the manager's
//! store of the link; decides nothing itself. A refusal is written to the
//! execution log as a failed run and exits 1.

use std::io::Write;

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;

use super::EXIT_OK;
use crate::app;
use crate::config::Config;
use crate::domain::DomainError;
use crate::domain::lifecycle::{self, Ending, StateChange};
use crate::store::Role;

#[derive(Debug, Subcommand)]
pub enum PerformanceCommand {
    /// Cancel a performance: the next catalogue file stops its sales at the
    /// distributor, which refunds its tickets; a sale made after now is
    /// rejected at reintegration (performance-cancelled).
    Cancel {
        /// The performance: technical id (1701) or code (TRAV0115).
        performance: String,
        /// The link, as named in the config (its manager's store).
        #[arg(long)]
        link: String,
    },
    /// Close a performance's sales: the next catalogue file stops them at
    /// the distributor; a sale made after now is rejected at reintegration
    /// (performance-closed).
    Close {
        /// The performance: technical id (1701) or code (TRAV0115).
        performance: String,
        /// The link, as named in the config (its manager's store).
        #[arg(long)]
        link: String,
    },
}

/// Runs a `performance` subcommand.
pub fn run(config: &Config, json: bool, cmd: PerformanceCommand) -> anyhow::Result<u8> {
    let (performance, link, ending) = match cmd {
        PerformanceCommand::Cancel { performance, link } => (performance, link, Ending::Cancel),
        PerformanceCommand::Close { performance, link } => (performance, link, Ending::Close),
    };
    let (link, _, mut store) = app::open_side(config, &link, Role::Manager)?;
    let result = store.write(|tx| lifecycle::end(tx, &link.name, &performance, ending));
    let mut out = super::out::stdout();
    match result {
        Ok(c) => {
            print_change(&mut out, json, &link.name, &c)?;
            Ok(EXIT_OK)
        }
        Err(e @ DomainError::Invalid { .. }) => {
            let run = store
                .write(|tx| lifecycle::log_refusal(tx, ending, &link.name, &e))
                .ok();
            super::print_refusal(&mut out, json, &e, run, link.manager.as_str())
        }
        Err(e) => Err(e).context("cannot change the performance's state"),
    }
}

fn print_change(
    out: &mut impl Write,
    json: bool,
    link: &str,
    c: &StateChange,
) -> std::io::Result<()> {
    if json {
        return writeln!(out, "{:#}", json!({"changed": true, "result": c}));
    }
    writeln!(
        out,
        "performance {} {} ({}): {} → {} at {} (run {})",
        c.performance, c.code, c.start, c.previous, c.state, c.changed, c.run
    )?;
    writeln!(out, "next: stxd export catalogue --link {link}")
}
