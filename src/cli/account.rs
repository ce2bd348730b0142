//! `stxd account show --link L`: the manager's pending account of a link
//! ("compte d'attente"), entry by entry, and its balance. Reads through
//! [`crate::domain::orders::account`]; changes nothing.

use std::io::Write;

use clap::Subcommand;
use serde_json::json;

use super::orders::{manager_link, money};
use super::{EXIT_OK, EXIT_USAGE};
use crate::app;
use crate::config::Config;
use crate::domain::orders;
use crate::store::Role;

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// The link's pending-account entries (+ a sale's price, − its refund)
    /// and the balance per currency.
    Show {
        /// The link (default: the only link whose manager this config
        /// serves).
        #[arg(long, value_name = "LINK")]
        link: Option<String>,
    },
}

/// Runs an `account` subcommand.
pub fn run(config: &Config, json: bool, cmd: AccountCommand) -> anyhow::Result<u8> {
    let AccountCommand::Show { link } = cmd;
    let link = match manager_link(config, link.as_deref()) {
        Ok(l) => l.name.clone(),
        Err(e) => {
            eprintln!("stxd: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    let (_, _, store) = app::open_side(config, &link, Role::Manager)?;
    let account = store.read(|c| orders::account(c, &link))?;
    let mut out = super::out::stdout();
    if json {
        writeln!(out, "{:#}", json!({"account": account}))?;
        return Ok(EXIT_OK);
    }
    writeln!(out, "pending account of link {}", account.link)?;
    for e in &account.entries {
        writeln!(
            out,
            "{:>6}  {}  {:<6} order {:<12} ticket {:<6} line id {:<6} {:>14}",
            e.id, e.created, e.kind, e.order, e.ticket, e.line, e.amount
        )?;
    }
    writeln!(
        out,
        "balance: {} ({} entr{})",
        money(&account.balance),
        account.entries.len(),
        if account.entries.len() == 1 {
            "y"
        } else {
            "ies"
        }
    )?;
    Ok(EXIT_OK)
}
