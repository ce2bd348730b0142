//! The manager's contingents (allotments): which seats and zone places of a
//! performance are set aside for one link's distributor, as a versioned
//! snapshot, and the safe shrink that takes them back.
//!
//! Takes the caller's transaction (or connection) and a link name; never
//! reads files or config. [`allocate`] and [`release`] change an allotment
//! all or nothing and bump its version (one run each, kinds
//! `contingent-allocate` / `contingent-release`, in the same transaction);
//! [`snapshot`] streams the allotment of one performance as `CONTINGENT`
//! lines and records the version exported; [`acknowledge`] applies the
//! distributor's acknowledgement of a version (an `ACK` line of its sales
//! file) and frees what that version took back; [`show`] is the ops view.
//!
//! The safe shrink, so that a seat is never sold twice while a CONTINGENT
//! file and a SALES file cross: a released seat does not go straight back to
//! the manager. It stays `held` by the link, tagged with the version that
//! removed it, and can be neither re-allotted nor sold by the manager until
//! the distributor acknowledges that version (a sale it made before that is
//! still accepted by the reintegration). Zone places work the same way with
//! a held quantity.
//!
//! Free places of an unnumbered zone: its capacity minus, for each link, the
//! larger of (allotted + held) and that link's valid tickets in the zone.
//! Tickets sold by a distributor are counted inside its allotment (the
//! reintegration accepts a zone sale while the link's valid tickets stay
//! under allotted + held), so they are not subtracted twice.

use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension, Transaction};
use serde::Serialize;

use super::DomainError;
use crate::ident::{Code, TechId};

mod changes;
mod reading;

pub use changes::{acknowledge, allocate, log_refusal, release};
pub use reading::{changed_performances, performances, report_of, show, snapshot};

/// Run kind of [`allocate`].
pub const RUN_ALLOCATE: &str = "contingent-allocate";
/// Run kind of [`release`].
pub const RUN_RELEASE: &str = "contingent-release";

/// Most seats one request may name (a range is expanded seat by seat).
pub const MAX_SEATS_PER_REQUEST: u64 = 100_000;

/// An object of the seat plan named by its technical id or by its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    Id(TechId),
    Code(Code),
}

impl Ref {
    /// A technical id when the text is one, else a code.
    pub fn parse(s: &str) -> Result<Ref, crate::ident::IdentError> {
        match TechId::parse(s) {
            Ok(id) => Ok(Ref::Id(id)),
            Err(_) => Code::new(s).map(Ref::Code),
        }
    }
}

impl std::fmt::Display for Ref {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ref::Id(id) => write!(f, "{id}"),
            Ref::Code(c) => write!(f, "{c}"),
        }
    }
}

/// Seats `from..=to` (numeric seat labels) of one row of one block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatRange {
    pub block: Ref,
    pub row: Code,
    pub from: u32,
    pub to: u32,
}

impl std::fmt::Display for SeatRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.from == self.to {
            write!(f, "{}:{}:{}", self.block, self.row, self.from)
        } else {
            write!(f, "{}:{}:{}-{}", self.block, self.row, self.from, self.to)
        }
    }
}

/// What an allocation or a release is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Places {
    /// Numbered seats.
    Seats(Vec<SeatRange>),
    /// A quantity of places in an unnumbered zone.
    Zone { zone: Ref, quantity: u32 },
}

/// What [`allocate`] or [`release`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Allocation {
    pub run: i64,
    pub link: String,
    pub performance: i64,
    pub performance_code: String,
    /// The allotment's version after the change.
    pub version: u64,
    /// Seats allotted (allocate) or put on hold (release).
    pub seats: u64,
    /// The zone and its places allotted (allocate) or put on hold (release).
    pub zone: Option<(i64, String, u32)>,
}

/// What [`acknowledge`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AckOutcome {
    pub performance: i64,
    /// The version acknowledged by this ACK.
    pub version: u64,
    /// The allotment's acknowledged version now (the larger of the old and
    /// this one).
    pub acknowledged: u64,
    /// Held seats returned to the manager.
    pub seats_freed: u64,
    /// Held zone places returned to the manager.
    pub zone_places_freed: u64,
    /// This version was already acknowledged: nothing changed.
    pub already: bool,
}

/// Consecutive seats of one row in one state, for display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeatRun {
    pub block: i64,
    pub block_code: String,
    pub row: String,
    /// First and last seat labels of the run.
    pub from: String,
    pub to: String,
    pub seats: u64,
    /// `allotted` or `held`.
    pub state: String,
    /// For held seats: the version that released them (they return to the
    /// manager once the distributor acknowledges it).
    pub released_in: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ZoneView {
    pub zone: i64,
    pub code: String,
    pub quantity: u64,
    pub held: u64,
    pub held_until: Option<u64>,
}

/// One performance's allotment to a link, as ops read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AllotmentView {
    pub link: String,
    pub performance: i64,
    pub performance_code: String,
    pub start: String,
    pub version: u64,
    pub exported: u64,
    pub acknowledged: u64,
    pub seats_allotted: u64,
    pub seats_held: u64,
    pub seats: Vec<SeatRun>,
    pub zones: Vec<ZoneView>,
}

/// What [`snapshot`] emitted for one performance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub version: u64,
    pub seats: u64,
    pub zones: u64,
}

// ------------------------------------------------------------------ helpers

fn invalid(object: impl Into<String>, problem: impl Into<String>) -> DomainError {
    DomainError::Invalid {
        object: object.into(),
        problem: problem.into(),
    }
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn to_i64(v: u64, what: &str) -> Result<i64, DomainError> {
    i64::try_from(v).map_err(|_| invalid(what, format!("{v} is out of range")))
}

/// A performance of the manager's store.
#[derive(Debug, Clone)]
struct Perf {
    id: i64,
    code: String,
    configuration: i64,
    state: String,
}

impl Perf {
    fn label(&self) -> String {
        format!("performance {} {}", self.id, self.code)
    }
}

fn perf(conn: &Connection, id: i64) -> Result<Option<Perf>, DomainError> {
    Ok(conn
        .prepare_cached("SELECT id, code, configuration, state FROM performance WHERE id = ?1")?
        .query_row([id], |r| {
            Ok(Perf {
                id: r.get(0)?,
                code: r.get(1)?,
                configuration: r.get(2)?,
                state: r.get(3)?,
            })
        })
        .optional()?)
}

fn perf_or_refuse(conn: &Connection, performance: TechId) -> Result<Perf, DomainError> {
    perf(conn, performance.get())?.ok_or_else(|| {
        invalid(
            format!("performance {performance}"),
            "no such performance in the manager's store; see the catalogue's performances",
        )
    })
}

/// The performance named by its technical id or its code.
pub fn performance_id(conn: &Connection, named: &str) -> Result<TechId, DomainError> {
    let by_id = match TechId::parse(named) {
        Ok(id) => conn
            .prepare_cached("SELECT id FROM performance WHERE id = ?1")?
            .query_row([id.get()], |r| r.get::<_, i64>(0))
            .optional()?,
        Err(_) => None,
    };
    let found = match by_id {
        Some(id) => Some(id),
        None => {
            let mut st = conn.prepare_cached("SELECT id FROM performance WHERE code = ?1")?;
            let ids: Vec<i64> = st
                .query_map([named], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            match ids.as_slice() {
                [] => None,
                [one] => Some(*one),
                _ => {
                    return Err(invalid(
                        format!("performance {named}"),
                        format!(
                            "the code names {} performances; give the technical id",
                            ids.len()
                        ),
                    ));
                }
            }
        }
    };
    let id = found.ok_or_else(|| {
        invalid(
            format!("performance {named:?}"),
            "no performance has this id or code in the manager's store",
        )
    })?;
    TechId::new(id).map_err(|e| invalid(format!("performance {id}"), e.to_string()))
}

/// Resolves a block or zone of a configuration by id, else by code.
fn resolve(
    conn: &Connection,
    table: &str,
    configuration: i64,
    named: &Ref,
) -> Result<Option<(i64, String)>, DomainError> {
    let by_id = format!("SELECT id, code FROM {table} WHERE id = ?1 AND configuration = ?2");
    let by_code = format!("SELECT id, code FROM {table} WHERE code = ?1 AND configuration = ?2");
    let row = |r: &rusqlite::Row<'_>| Ok((r.get(0)?, r.get(1)?));
    if let Ref::Id(id) = named {
        let found = conn
            .prepare_cached(&by_id)?
            .query_row((id.get(), configuration), row)
            .optional()?;
        if found.is_some() {
            return Ok(found);
        }
    }
    let text = named.to_string();
    Ok(conn
        .prepare_cached(&by_code)?
        .query_row((text.as_str(), configuration), row)
        .optional()?)
}

/// A seat a request names, resolved.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct SeatAt {
    id: i64,
    label: String,
}

/// Expands and resolves the seat ranges in the performance's configuration;
/// every seat that does not exist is added to `problems`.
fn seats_of(
    conn: &Connection,
    perf: &Perf,
    ranges: &[SeatRange],
    problems: &mut Vec<String>,
) -> Result<BTreeSet<SeatAt>, DomainError> {
    let mut total: u64 = 0;
    let mut seats = BTreeSet::new();
    for range in ranges {
        if range.from > range.to {
            problems.push(format!(
                "{range}: expected FROM ≤ TO, found {} > {}",
                range.from, range.to
            ));
            continue;
        }
        total += u64::from(range.to - range.from) + 1;
        if total > MAX_SEATS_PER_REQUEST {
            return Err(invalid(
                format!("seats of {}", perf.label()),
                format!("expected at most {MAX_SEATS_PER_REQUEST} seats in one request"),
            ));
        }
        let Some((block, block_code)) = resolve(conn, "block", perf.configuration, &range.block)?
        else {
            problems.push(format!(
                "{range}: block {} is not in configuration {} of {}",
                range.block,
                perf.configuration,
                perf.label()
            ));
            continue;
        };
        let row: Option<i64> = conn
            .prepare_cached("SELECT id FROM seat_row WHERE block = ?1 AND code = ?2")?
            .query_row((block, range.row.as_str()), |r| r.get(0))
            .optional()?;
        let Some(row) = row else {
            problems.push(format!(
                "{range}: block {block_code} has no row {}",
                range.row
            ));
            continue;
        };
        for n in range.from..=range.to {
            let number = n.to_string();
            let label = format!("{block_code} {} {number}", range.row);
            let seat: Option<i64> = conn
                .prepare_cached("SELECT id FROM seat WHERE row = ?1 AND number = ?2")?
                .query_row((row, number.as_str()), |r| r.get(0))
                .optional()?;
            match seat {
                Some(id) => {
                    seats.insert(SeatAt { id, label });
                }
                None => problems.push(format!("seat {label} does not exist in the seat plan")),
            }
        }
    }
    Ok(seats)
}

/// Bumps (creating it at version 1) the allotment of `perf` to `link`;
/// returns the new version.
fn bump(tx: &Transaction<'_>, link: &str, perf: i64) -> Result<u64, DomainError> {
    let v: i64 = tx
        .prepare_cached(
            "INSERT INTO allotment (link, performance, version) VALUES (?1, ?2, 1)
             ON CONFLICT (link, performance) DO UPDATE SET version = version + 1
             RETURNING version",
        )?
        .query_row((link, perf), |r| r.get(0))?;
    Ok(to_u64(v))
}

fn check_link(link: &str) -> Result<(), DomainError> {
    if link.is_empty() || link.len() > 64 {
        return Err(invalid(
            format!("link {link:?}"),
            "expected a link name of 1 to 64 bytes",
        ));
    }
    Ok(())
}

/// The refusal of a whole request, naming every offending place.
fn refusal(verb: &str, perf: &Perf, link: &str, problems: &[String]) -> DomainError {
    invalid(
        format!("{verb} of {} for link {link}", perf.label()),
        format!(
            "refused, nothing changed ({} problem(s)): {}",
            problems.len(),
            problems.join("; ")
        ),
    )
}

/// A zone of the performance's configuration, with its capacity.
fn zone_of(conn: &Connection, perf: &Perf, zone: &Ref) -> Result<(i64, String, u64), DomainError> {
    let Some((id, code)) = resolve(conn, "zone", perf.configuration, zone)? else {
        return Err(invalid(
            format!("zone {zone}"),
            format!(
                "not a zone of configuration {} of {}",
                perf.configuration,
                perf.label()
            ),
        ));
    };
    let capacity: i64 = conn
        .prepare_cached("SELECT capacity FROM zone WHERE id = ?1")?
        .query_row([id], |r| r.get(0))?;
    Ok((id, code, to_u64(capacity)))
}

/// Places of a zone not taken by any link nor sold, for one performance.
fn zone_free(conn: &Connection, perf: i64, zone: i64, capacity: u64) -> Result<u64, DomainError> {
    let taken: i64 = conn
        .prepare_cached(
            "WITH links AS (
                 SELECT link FROM allotment_zone WHERE performance = ?1 AND zone = ?2
                 UNION SELECT link FROM ticket WHERE performance = ?1 AND zone = ?2 AND state = 'valid'
             )
             SELECT coalesce(sum(max(
                 coalesce((SELECT quantity + held FROM allotment_zone a
                           WHERE a.performance = ?1 AND a.zone = ?2 AND a.link = l.link), 0),
                 (SELECT count(*) FROM ticket t WHERE t.performance = ?1 AND t.zone = ?2
                      AND t.state = 'valid' AND t.link = l.link))), 0)
             FROM links l",
        )?
        .query_row((perf, zone), |r| r.get(0))?;
    Ok(capacity.saturating_sub(to_u64(taken)))
}

#[cfg(test)]
mod tests;
