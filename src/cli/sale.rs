//! `stxd sale …`: the distributor's point of sale. Sells and refunds through
//! [`crate::domain::selling`] on the distributor institution of a link and
//! lists the lines; decides nothing itself. A refusal prints its reason, is
//! recorded in a failed run and exits 1.

use std::io::Write;

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;

use super::{EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, names};
use crate::app;
use crate::config::Config;
use crate::domain::selling::{self, Filter, Place, Sale, SaleReceipt, SaleRefusal};
use crate::format::sales::OrderRef;
use crate::store::mapping::MappingKind;
use crate::store::{Role, Store};

#[derive(Debug, Subcommand)]
pub enum SaleCommand {
    /// Sell one ticket of a performance's contingent at the rate table's
    /// price: a numbered seat or a place in an unnumbered zone.
    Sell {
        /// The local performance's id or code (stxd catalogue list).
        #[arg(long)]
        performance: String,
        /// A numbered seat: BLOCK:ROW:NUMBER (block code or id).
        #[arg(
            long,
            value_name = "BLOCK:ROW:N",
            required_unless_present = "zone",
            conflicts_with = "zone"
        )]
        seat: Option<String>,
        /// An unnumbered zone (code or id).
        #[arg(long, value_name = "Z")]
        zone: Option<String>,
        /// The local tariff type's code.
        #[arg(long)]
        tariff: String,
        /// The local audience subcategory's code.
        #[arg(long)]
        audience: String,
        /// The order the ticket belongs to (default: a new order T-<line>).
        #[arg(long, value_name = "REF")]
        order: Option<String>,
        /// The link (default: the only link whose distributor is in the config).
        #[arg(long, value_name = "LINK")]
        link: Option<String>,
    },
    /// Refund a sale: the seat or place is sellable again. With
    /// `--performance P --all`: every valid sale of the cancelled
    /// performance P, all or nothing.
    Refund {
        /// The sale's line id (stxd sale list).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        line: Option<i64>,
        /// The cancelled performance (local id or code), with --all.
        #[arg(long, requires = "all")]
        performance: Option<String>,
        /// Refund every valid sale of --performance.
        #[arg(long, requires = "performance")]
        all: bool,
        /// The link (default: the only link whose distributor is in the config).
        #[arg(long, value_name = "LINK")]
        link: Option<String>,
    },
    /// List the sale and refund lines.
    List {
        /// Only this performance (local id or code).
        #[arg(long)]
        performance: Option<String>,
        /// Only the lines not yet sent to the manager.
        #[arg(long)]
        unexported: bool,
        /// Only the valid sales of the cancelled --performance: the tickets
        /// to refund.
        #[arg(long, requires = "performance")]
        to_refund: bool,
        /// Only the lines the manager rejected and then accepted or
        /// dismissed (told in its CONTINGENT files).
        #[arg(long)]
        disputed: bool,
        /// The link (default: the only link whose distributor is in the config).
        #[arg(long, value_name = "LINK")]
        link: Option<String>,
    },
}

/// Runs a `sale` subcommand.
pub fn run(config: &Config, json: bool, cmd: SaleCommand) -> anyhow::Result<u8> {
    let named = match &cmd {
        SaleCommand::Sell { link, .. }
        | SaleCommand::Refund { link, .. }
        | SaleCommand::List { link, .. } => link.clone(),
    };
    let link = match config
        .distributor_link(named.as_deref())
        .map(|l| l.name.clone())
    {
        Ok(l) => l,
        Err(e) => {
            eprintln!("stxd: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    let (link_cfg, _, mut store) = app::open_side(config, &link, Role::Distributor)?;
    let manager = link_cfg.manager.to_string();
    // Local ids and codes, or the manager's ids (names.rs).
    let local = |kind: MappingKind, key: &str| -> anyhow::Result<String> {
        store.read(|c| names::local_key(c, &manager, kind, key))
    };
    match cmd {
        SaleCommand::Sell {
            performance,
            seat,
            zone,
            tariff,
            audience,
            order,
            ..
        } => {
            let Some(place) = place_of(seat, zone) else {
                return Ok(EXIT_USAGE);
            };
            // The refusal's run names the place as the command named it.
            let what = format!("performance {performance}, {place}");
            let place = match place {
                Place::Seat { block, row, number } => Place::Seat {
                    block: local(MappingKind::Block, &block)?,
                    row,
                    number,
                },
                Place::Zone { zone } => Place::Zone {
                    zone: local(MappingKind::Zone, &zone)?,
                },
            };
            let performance = local(MappingKind::Performance, &performance)?;
            let Ok(order) = order_of(order.as_deref()) else {
                return Ok(EXIT_USAGE);
            };
            let sale = Sale {
                performance,
                place,
                tariff,
                audience,
                order,
            };
            let done = store.write(|tx| selling::sell(tx, &link, &sale));
            report(json, &mut store, "sale-sell", &link, &what, done)
        }
        SaleCommand::Refund {
            line: None,
            performance: Some(performance),
            ..
        } => {
            let done = store.write(|tx| selling::refund_performance(tx, &link, &performance));
            refunded_all(json, &mut store, &link, &performance, done)
        }
        SaleCommand::Refund { line, .. } => {
            let Some(line) = line else {
                eprintln!("stxd: give a sale's line id, or --performance P --all");
                return Ok(EXIT_USAGE);
            };
            let done = store.write(|tx| selling::refund(tx, line));
            report(
                json,
                &mut store,
                "sale-refund",
                &link,
                &format!("line {line}"),
                done,
            )
        }
        SaleCommand::List {
            performance,
            unexported,
            to_refund,
            disputed,
            ..
        } => {
            let performance = match performance {
                Some(p) => Some(local(MappingKind::Performance, &p)?),
                None => None,
            };
            let filter = Filter {
                link: Some(&link),
                performance: performance.as_deref(),
                unexported,
                to_refund,
                disputed,
            };
            list(json, &store, &link, &filter)
        }
    }
}

/// The place of `sale sell`'s `--seat` or `--zone`; `None` (the problem
/// printed) when neither or a malformed seat is given.
fn place_of(seat: Option<String>, zone: Option<String>) -> Option<Place> {
    match (seat, zone) {
        (Some(seat), None) => {
            let place = parse_seat(&seat);
            if place.is_none() {
                eprintln!("stxd: --seat {seat:?}: expected BLOCK:ROW:NUMBER, e.g. PARTERRE:A:1");
            }
            place
        }
        (None, Some(zone)) => Some(Place::Zone { zone }),
        _ => {
            eprintln!("stxd: give either --seat BLOCK:ROW:N or --zone Z");
            None
        }
    }
}

/// The order of `sale sell`'s `--order`, if given; `Err` (the problem
/// printed) when it is not an order reference.
fn order_of(order: Option<&str>) -> Result<Option<OrderRef>, ()> {
    match order.map(|o| (o, OrderRef::new(o))) {
        None => Ok(None),
        Some((_, Some(o))) => Ok(Some(o)),
        Some((o, None)) => {
            eprintln!(
                "stxd: --order {o:?}: expected 1 to {} characters among A-Z a-z 0-9 _ - . / not starting with '-'",
                OrderRef::MAX
            );
            Err(())
        }
    }
}

/// `sale refund --performance P --all`: the refunds written, or the
/// refusal (recorded in a failed run; nothing written).
fn refunded_all(
    json: bool,
    store: &mut Store,
    link: &str,
    performance: &str,
    done: Result<Vec<SaleReceipt>, SaleRefusal>,
) -> anyhow::Result<u8> {
    let receipts = match done {
        Ok(r) => r,
        Err(e) => {
            let what = format!("performance {performance}, all");
            return report(json, store, "sale-refund", link, &what, Err(e));
        }
    };
    let mut out = super::out::stdout();
    if json {
        writeln!(
            out,
            "{:#}",
            json!({"done": true, "performance": performance, "refunds": receipts})
        )?;
        return Ok(EXIT_OK);
    }
    if receipts.is_empty() {
        writeln!(out, "performance {performance}: no valid sale to refund")?;
        return Ok(EXIT_OK);
    }
    for r in &receipts {
        writeln!(
            out,
            "refunded line {}: line {}  {} {}  {}",
            r.refund_of.unwrap_or(0),
            r.line,
            r.place,
            r.order,
            r.price
        )?;
    }
    writeln!(
        out,
        "{} sale(s) of performance {performance} refunded; next: stxd export sales --link {link}",
        receipts.len()
    )?;
    Ok(EXIT_OK)
}

/// `sale list`: the lines of `filter`, one a line.
fn list(json: bool, store: &Store, link: &str, filter: &Filter<'_>) -> anyhow::Result<u8> {
    let rows = match store.read(|c| selling::list(c, filter)) {
        Ok(rows) => rows,
        Err(e @ crate::domain::DomainError::Invalid { .. }) => {
            eprintln!("stxd: {e}");
            return Ok(EXIT_FINDINGS);
        }
        Err(e) => return Err(e.into()),
    };
    let mut out = super::out::stdout();
    if json {
        writeln!(out, "{:#}", json!({"link": link, "lines": rows}))?;
    } else if rows.is_empty() {
        writeln!(out, "no sale line on link {link}")?;
    } else {
        for l in &rows {
            let state = l.state();
            let sent = l
                .exported_in
                .map_or("not sent".to_owned(), |s| format!("sent in {s}"));
            writeln!(
                out,
                "{:>6}  {:<6} {}  {:<10} {:<8} {:<14} {:<8} {:<8} {:<8} {:>12}  {}  {}",
                l.id,
                l.operation,
                l.time,
                l.order,
                l.performance,
                l.place,
                l.seat_category,
                l.tariff,
                l.audience,
                l.price,
                state,
                sent
            )?;
        }
    }
    Ok(EXIT_OK)
}

/// `PARTERRE:A:1` → a seat place.
fn parse_seat(s: &str) -> Option<Place> {
    let mut parts = s.split(':');
    let (block, row, number) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || [block, row, number].iter().any(|p| p.trim().is_empty()) {
        return None;
    }
    Some(Place::Seat {
        block: block.trim().to_owned(),
        row: row.trim().to_owned(),
        number: number.trim().to_owned(),
    })
}

/// Prints a receipt, or the refusal (recorded in a failed run).
fn report(
    json: bool,
    store: &mut Store,
    kind: &str,
    link: &str,
    what: &str,
    done: Result<SaleReceipt, SaleRefusal>,
) -> anyhow::Result<u8> {
    let mut out = super::out::stdout();
    match done {
        Ok(r) => {
            if json {
                writeln!(out, "{:#}", json!({"done": true, "line": r}))?;
            } else {
                let verb = if r.operation == "REFUND" {
                    format!("refunded line {}", r.refund_of.unwrap_or(0))
                } else {
                    "sold".to_owned()
                };
                writeln!(out, "{verb}: line {}", r.line)?;
                writeln!(
                    out,
                    "  performance {} ({}), {} ({}{}), {} {}",
                    r.performance,
                    r.product,
                    r.place,
                    r.seat_category,
                    r.logical_seat_category
                        .as_ref()
                        .map(|c| format!(", logical {c}"))
                        .unwrap_or_default(),
                    r.tariff,
                    r.audience
                )?;
                writeln!(out, "  price: {}", r.price)?;
                writeln!(out, "  order: {}", r.order)?;
                writeln!(out, "  run:   {}", r.run)?;
            }
            Ok(EXIT_OK)
        }
        Err(SaleRefusal::Domain(e)) => Err(e).context(format!("{kind} failed")),
        Err(refusal) => {
            let run = store
                .write(|tx| selling::log_refusal(tx, kind, Some(link), what, &refusal))
                .ok();
            if json {
                writeln!(
                    out,
                    "{:#}",
                    json!({"done": false, "code": refusal.code(), "reason": refusal.to_string(), "run": run})
                )?;
            } else {
                writeln!(out, "refused: {refusal}")?;
                writeln!(out, "code:    {}", refusal.code())?;
                if let Some(run) = run {
                    writeln!(out, "run:     {run}")?;
                }
            }
            Ok(EXIT_FINDINGS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seat_is_block_row_number() {
        assert_eq!(
            parse_seat("PARTERRE:A:1"),
            Some(Place::Seat {
                block: "PARTERRE".into(),
                row: "A".into(),
                number: "1".into()
            })
        );
        for bad in ["PARTERRE:A", "PARTERRE:A:1:2", ":A:1", "PARTERRE::1", ""] {
            assert_eq!(parse_seat(bad), None, "{bad}");
        }
    }
}
