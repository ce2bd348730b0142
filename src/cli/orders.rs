//! `stxd orders list|show`: the manager's view of the orders its
//! reintegration booked, with their tickets, seats, prices, point of sale,
//! pending-account payment and the SALES file and line of each ticket.
//! Reads through [`crate::domain::orders`]; changes nothing, decides
//! nothing.

use std::io::Write;

use clap::Subcommand;
use serde_json::json;

use super::{EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, Usage};
use crate::app;
use crate::config::{Config, Link};
use crate::domain::DomainError;
use crate::domain::orders::{self, OrderFilter, OrderState, OrderView, SaleDays, Source, Total};
use crate::format::xml::{format_date, parse_date};
use crate::store::Role;

#[derive(Debug, Subcommand)]
pub enum OrdersCommand {
    /// The reintegrated orders, one a line (with --json, every ticket).
    /// The filters combine: an order is listed when it passes them all.
    List {
        /// Only this link's orders (default: the only link whose manager
        /// this config serves, every link of its store).
        #[arg(long, value_name = "LINK")]
        link: Option<String>,
        /// Only the orders with a ticket of this performance (the
        /// manager's id or code).
        #[arg(long)]
        performance: Option<String>,
        /// Only the orders sold on this day (UTC): their first ticket's
        /// sale time. Same as --from DAY --to DAY.
        #[arg(long, value_name = "YYYY-MM-DD", value_parser = day, conflicts_with_all = ["from", "to"])]
        date: Option<time::Date>,
        /// Only the orders sold on this day (UTC) or later.
        #[arg(long, value_name = "YYYY-MM-DD", value_parser = day)]
        from: Option<time::Date>,
        /// Only the orders sold on this day (UTC) or earlier.
        #[arg(long, value_name = "YYYY-MM-DD", value_parser = day)]
        to: Option<time::Date>,
        /// Only the orders in this state: valid (no ticket refunded),
        /// partly-cancelled (some refunded), cancelled (all refunded).
        #[arg(long, value_parser = state)]
        state: Option<OrderState>,
    },
    /// One order with its tickets.
    Show {
        /// The order's id or the distributor's order reference (T-000001).
        order: String,
        /// The link whose manager store holds it (default: the only link
        /// whose manager this config serves).
        #[arg(long, value_name = "LINK")]
        link: Option<String>,
    },
}

/// A `--date`, `--from` or `--to` value: a calendar day.
fn day(s: &str) -> Result<time::Date, String> {
    parse_date(s).ok_or_else(|| "expected a date YYYY-MM-DD (a UTC day)".to_owned())
}

/// A `--state` value.
fn state(s: &str) -> Result<OrderState, String> {
    s.parse()
}

/// The link whose manager store to open: the one named, else the only one
/// whose manager this config serves.
pub(super) fn manager_link<'c>(
    config: &'c Config,
    named: Option<&str>,
) -> Result<&'c Link, String> {
    if let Some(name) = named {
        return config.require_link(name);
    }
    let served: Vec<&Link> = config
        .links
        .iter()
        .filter(|l| config.institution(l.manager.as_str()).is_some())
        .collect();
    match served.as_slice() {
        [one] => Ok(one),
        [] => Err("no link of this config has its manager served here; run this command on the manager's server".to_owned()),
        many => Err(format!(
            "several links have their manager served here ({}): name one with --link",
            many.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(", ")
        )),
    }
}

/// Runs an `orders` subcommand.
pub fn run(config: &Config, json: bool, cmd: OrdersCommand) -> anyhow::Result<u8> {
    let named = match &cmd {
        OrdersCommand::List { link, .. } | OrdersCommand::Show { link, .. } => link.clone(),
    };
    // The days are checked before any store is opened.
    let days = match &cmd {
        OrdersCommand::List { date, from, to, .. } => {
            let (from, to) = match date {
                Some(d) => (Some(*d), Some(*d)),
                None => (*from, *to),
            };
            SaleDays::new(from, to).map_err(|e| Usage::err(format!("--from/--to: {e}")))?
        }
        OrdersCommand::Show { .. } => SaleDays::default(),
    };
    let link = match manager_link(config, named.as_deref()) {
        Ok(l) => l.name.clone(),
        Err(e) => {
            eprintln!("stxd: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    let (_, _, store) = app::open_side(config, &link, Role::Manager)?;
    let only = named.as_deref();
    let mut out = super::out::stdout();
    match cmd {
        OrdersCommand::List {
            performance, state, ..
        } => {
            let filter = OrderFilter {
                link: only,
                performance: performance.as_deref(),
                sold: days,
                state,
            };
            let found = match store.read(|c| orders::orders(c, &filter)) {
                Ok(found) => found,
                Err(e @ DomainError::Invalid { .. }) => return refused(&e),
                Err(e) => return Err(e.into()),
            };
            if json {
                let day = |d: Option<time::Date>| d.and_then(|d| format_date(d).ok());
                let filter = json!({
                    "link": filter.link,
                    "performance": filter.performance,
                    "from": day(filter.sold.from()),
                    "to": day(filter.sold.to()),
                    "state": filter.state,
                });
                writeln!(out, "{:#}", json!({"filter": filter, "orders": found}))?;
            } else if found.is_empty() {
                if filter.is_open() {
                    writeln!(out, "no reintegrated order")?;
                } else {
                    writeln!(out, "no reintegrated order passes these filters")?;
                }
            } else {
                for o in &found {
                    writeln!(
                        out,
                        "{:>6}  {:<14} {:<12} sold {}  {:<16} {} ticket(s), {} valid{}  pending account {}  {}",
                        o.id,
                        o.link,
                        o.reference,
                        o.sold_at.as_deref().unwrap_or("-"),
                        o.state.as_str(),
                        o.tickets.len(),
                        o.valid,
                        if o.to_refund > 0 {
                            format!(" ({} to refund)", o.to_refund)
                        } else {
                            String::new()
                        },
                        money(&o.pending_account),
                        files(o)
                    )?;
                }
            }
        }
        OrdersCommand::Show { order, .. } => {
            let found = match store.read(|c| orders::order(c, &order, only)) {
                Ok(found) => found,
                Err(e @ DomainError::Invalid { .. }) => return refused(&e),
                Err(e) => return Err(e.into()),
            };
            if json {
                writeln!(out, "{:#}", json!({"order": found}))?;
            } else {
                show(&mut out, &found)?;
            }
        }
    }
    Ok(EXIT_OK)
}

fn refused(e: &DomainError) -> anyhow::Result<u8> {
    eprintln!("stxd: {e}");
    Ok(EXIT_FINDINGS)
}

/// `85.00 EUR`, several currencies joined, `0` for none.
pub(super) fn money(totals: &[Total]) -> String {
    if totals.is_empty() {
        return "0".to_owned();
    }
    totals
        .iter()
        .map(|t| t.amount.as_str())
        .collect::<Vec<_>>()
        .join(" + ")
}

/// The SALES files an order's tickets came from.
fn files(o: &OrderView) -> String {
    let mut names: Vec<&str> = o
        .tickets
        .iter()
        .filter_map(|t| t.sale.file.as_deref())
        .collect();
    names.dedup();
    names.join(", ")
}

fn source(s: &Source) -> String {
    match (&s.file, &s.position) {
        (Some(f), Some(p)) => format!("line id {} ({f}, {p})", s.line),
        _ => format!("line id {}", s.line),
    }
}

fn show(out: &mut impl Write, o: &OrderView) -> std::io::Result<()> {
    writeln!(out, "order {} {} (link {})", o.id, o.reference, o.link)?;
    writeln!(out, "  state:          {}", o.state)?;
    writeln!(
        out,
        "  sold:           {}",
        o.sold_at.as_deref().unwrap_or("-")
    )?;
    writeln!(out, "  created:        {}", o.created)?;
    writeln!(out, "  channel:        {}", o.channel)?;
    writeln!(out, "  point of sale:  {}", o.point_of_sale)?;
    writeln!(out, "  payment:        {}", o.payment_method)?;
    writeln!(out, "  contact:        {}", o.contact)?;
    writeln!(out, "  pending account: {}", money(&o.pending_account))?;
    for t in &o.tickets {
        writeln!(
            out,
            "  ticket {}: performance {} {} ({}), {} ({}), {} {}, {}, {}",
            t.id,
            t.performance,
            t.performance_code,
            t.performance_state,
            t.place,
            t.seat_category,
            t.tariff_type,
            t.audience_subcategory,
            t.price,
            if t.to_refund {
                "valid, to refund (performance cancelled)"
            } else {
                &t.state
            }
        )?;
        writeln!(out, "    sold at {}: {}", t.sold_at, source(&t.sale))?;
        if let Some(r) = &t.refund {
            writeln!(
                out,
                "    refunded{}: {}",
                t.cancelled_at
                    .as_deref()
                    .map(|c| format!(" at {c}"))
                    .unwrap_or_default(),
                source(r)
            )?;
        }
    }
    Ok(())
}
