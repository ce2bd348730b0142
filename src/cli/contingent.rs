//! `stxd contingent allocate|release|show`: the manager sets seats and zone
//! places aside for a link's distributor, takes them back, and reviews its
//! allotments. Calls [`crate::domain::contingent`] on the manager's store of
//! the link; decides nothing itself. A refusal is written to the execution
//! log as a failed run and exits 1.

use std::io::Write;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;

use super::{EXIT_FINDINGS, EXIT_OK, EXIT_USAGE};
use crate::app;
use crate::config::Config;
use crate::domain::contingent::{self, Allocation, Places, Ref, SeatRange};
use crate::domain::{DomainError, setup};
use crate::ident::{Code, TechId};
use crate::store::{Role, StoreError};

#[derive(Debug, Subcommand)]
pub enum ContingentCommand {
    /// Allot numbered seats or zone places of a performance to the link's
    /// distributor, all or nothing; bumps the allotment's version.
    Allocate(Selector),
    /// Take seats or zone places back: they stay held (neither sellable nor
    /// re-allottable) until the distributor acknowledges the new version.
    Release(Selector),
    /// The link's allotments: version, exported, acknowledged, seats and
    /// zones, allotted and held.
    Show {
        /// The link, as named in the config.
        #[arg(long)]
        link: String,
        /// Only this performance (technical id or code).
        #[arg(long)]
        performance: Option<String>,
    },
}

/// Which places of which performance.
#[derive(Debug, Args)]
pub struct Selector {
    /// The link, as named in the config.
    #[arg(long)]
    link: String,
    /// The performance: technical id (1701) or code (TRAV0115).
    #[arg(long)]
    performance: String,
    /// Seats BLOCK:ROW:FROM-TO (or BLOCK:ROW:N); BLOCK by code or id.
    /// Repeatable.
    #[arg(
        long = "seats",
        value_name = "BLOCK:ROW:FROM-TO",
        required_unless_present = "zone",
        conflicts_with = "zone"
    )]
    seats: Vec<String>,
    /// An unnumbered zone, by code or id (with --quantity).
    #[arg(long, requires = "quantity")]
    zone: Option<String>,
    /// Places of the zone.
    #[arg(long, requires = "zone")]
    quantity: Option<u32>,
}

/// Parses `BLOCK:ROW:FROM-TO` or `BLOCK:ROW:N`.
pub fn parse_seats(spec: &str) -> Result<SeatRange, String> {
    let expected = "expected BLOCK:ROW:FROM-TO or BLOCK:ROW:N (e.g. PARTERRE:A:1-10)";
    let parts: Vec<&str> = spec.split(':').collect();
    let [block, row, numbers] = parts.as_slice() else {
        return Err(format!("{expected}, found {spec:?}"));
    };
    let block = Ref::parse(block).map_err(|e| format!("block in {spec:?}: {e}"))?;
    let row = Code::new(row).map_err(|e| format!("row in {spec:?}: {e}"))?;
    let number = |s: &str| {
        s.parse::<u32>()
            .map_err(|_| format!("{expected}: seat number {s:?} in {spec:?} is not a whole number"))
    };
    let (from, to) = match numbers.split_once('-') {
        Some((a, b)) => (number(a)?, number(b)?),
        None => {
            let n = number(numbers)?;
            (n, n)
        }
    };
    Ok(SeatRange {
        block,
        row,
        from,
        to,
    })
}

fn places(sel: &Selector) -> Result<Places, String> {
    match (&sel.zone, sel.quantity) {
        (Some(zone), Some(quantity)) => Ok(Places::Zone {
            zone: Ref::parse(zone).map_err(|e| format!("zone {zone:?}: {e}"))?,
            quantity,
        }),
        (Some(_), None) | (None, Some(_)) => Err("--zone and --quantity go together".to_owned()),
        (None, None) => sel
            .seats
            .iter()
            .map(|s| parse_seats(s))
            .collect::<Result<Vec<_>, _>>()
            .map(Places::Seats),
    }
}

/// Runs a `contingent` subcommand.
pub fn run(config: &Config, json: bool, cmd: ContingentCommand) -> anyhow::Result<u8> {
    let mut out = super::out::stdout();
    match cmd {
        ContingentCommand::Allocate(sel) => change(config, json, &sel, true),
        ContingentCommand::Release(sel) => change(config, json, &sel, false),
        ContingentCommand::Show { link, performance } => {
            let (link, _, store) = app::open_side(config, &link, Role::Manager)?;
            let views = store.read(|c| -> Result<_, DomainError> {
                let p = match &performance {
                    Some(p) => Some(contingent::performance_id(c, p)?),
                    None => None,
                };
                contingent::show(c, &link.name, p)
            });
            let views = match views {
                Ok(v) => v,
                Err(e @ DomainError::Invalid { .. }) => {
                    eprintln!("stxd: {e}");
                    return Ok(EXIT_FINDINGS);
                }
                Err(e) => return Err(e).context("cannot read the allotments"),
            };
            if json {
                writeln!(out, "{:#}", json!({"link": link.name, "allotments": views}))?;
                return Ok(EXIT_OK);
            }
            if views.is_empty() {
                writeln!(out, "link {}: no allotment", link.name)?;
                return Ok(EXIT_OK);
            }
            for v in &views {
                writeln!(
                    out,
                    "performance {} {} ({}): version {}, exported {}, acknowledged {}",
                    v.performance,
                    v.performance_code,
                    v.start,
                    v.version,
                    v.exported,
                    v.acknowledged
                )?;
                writeln!(
                    out,
                    "  seats: {} allotted, {} held",
                    v.seats_allotted, v.seats_held
                )?;
                for s in &v.seats {
                    let range = if s.from == s.to {
                        s.from.clone()
                    } else {
                        format!("{}-{}", s.from, s.to)
                    };
                    let state = match s.released_in {
                        Some(n) => format!("held until version {n} is acknowledged"),
                        None => s.state.clone(),
                    };
                    writeln!(
                        out,
                        "    {}:{}:{range}  {} seat(s) {state}",
                        s.block_code, s.row, s.seats
                    )?;
                }
                for z in &v.zones {
                    write!(out, "  zone {} {}: {} allotted", z.zone, z.code, z.quantity)?;
                    match z.held_until {
                        Some(n) => {
                            writeln!(out, ", {} held until version {n} is acknowledged", z.held)?
                        }
                        None => writeln!(out)?,
                    }
                }
            }
            Ok(EXIT_OK)
        }
    }
}

fn change(config: &Config, json: bool, sel: &Selector, allocate: bool) -> anyhow::Result<u8> {
    let what = match places(sel) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("stxd: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    let (link, _, mut store) = app::open_side(config, &sel.link, Role::Manager)?;
    let kind = if allocate {
        contingent::RUN_ALLOCATE
    } else {
        contingent::RUN_RELEASE
    };
    let result = store.write(|tx| -> Result<Allocation, DomainError> {
        let p: TechId = contingent::performance_id(tx, &sel.performance)?;
        if allocate {
            // Refused now, in the words of `stxd check`, rather than later
            // as refused sales at the manager.
            setup::require_ready(
                tx,
                Role::Manager,
                &setup::LinkFacts::from(link),
                "allotment",
            )?;
            contingent::allocate(tx, &link.name, p, what)
        } else {
            contingent::release(tx, &link.name, p, what)
        }
    });
    let mut out = super::out::stdout();
    match result {
        Ok(a) => {
            if json {
                writeln!(out, "{:#}", json!({"changed": true, "result": a}))?;
            } else {
                let places = match &a.zone {
                    Some((id, code, n)) => format!("{n} place(s) of zone {id} {code}"),
                    None => format!("{} seat(s)", a.seats),
                };
                let done = if allocate {
                    "allotted to"
                } else {
                    "held (until acknowledged) from"
                };
                writeln!(
                    out,
                    "{places} of performance {} {} {done} link {}: version {} (run {})",
                    a.performance, a.performance_code, a.link, a.version, a.run
                )?;
                writeln!(
                    out,
                    "next: stxd export contingent --link {} --performance {}",
                    a.link, a.performance
                )?;
            }
            Ok(EXIT_OK)
        }
        Err(e @ (DomainError::Invalid { .. } | DomainError::Unready { .. })) => {
            let run = store
                .write(|tx| -> Result<i64, StoreError> {
                    contingent::log_refusal(tx, kind, &link.name, &e)
                })
                .ok();
            super::print_refusal(&mut out, json, &e, run, link.manager.as_str())
        }
        Err(e) => Err(e).context("cannot change the allotment"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seat_specs_parse() {
        let r = parse_seats("PARTERRE:A:1-10").unwrap();
        assert_eq!(
            (r.block.to_string(), r.row.as_str(), r.from, r.to),
            ("PARTERRE".to_owned(), "A", 1, 10)
        );
        let r = parse_seats("3302:H:7").unwrap();
        assert_eq!(r.block, Ref::Id(TechId::new(3302).unwrap()));
        assert_eq!((r.from, r.to), (7, 7));
        for bad in [
            "PARTERRE:A",
            "PARTERRE:A:1-x",
            "PARTERRE:A:-1",
            ":A:1",
            "P:A:1:2",
            "P: :1",
        ] {
            assert!(parse_seats(bad).is_err(), "{bad}");
        }
    }
}
