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
use super::export::{ExportError, Report};
use crate::format::{WriteError, contingent};
use crate::ident::{Code, TechId};
use crate::store::StoreError;
use crate::store::runs::{self, Counts, Level, RunStatus};

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

// ------------------------------------------------------------------ changes

/// Allots seats or zone places of a performance to a link, all or nothing.
/// Refused (naming every offending seat): a seat that does not exist in the
/// performance's configuration, is sold (a valid ticket), is held after a
/// release, or is in an allotment (this link's or another's); a zone
/// quantity above the free places; a performance not in operation. Bumps the
/// allotment's version (creating the allotment) and records a
/// `contingent-allocate` run.
pub fn allocate(
    tx: &Transaction<'_>,
    link: &str,
    performance: TechId,
    what: Places,
) -> Result<Allocation, DomainError> {
    check_link(link)?;
    let perf = perf_or_refuse(tx, performance)?;
    if perf.state != "in_operation" {
        return Err(invalid(
            perf.label(),
            format!(
                "is {}: only a performance in operation can be allotted",
                perf.state
            ),
        ));
    }
    let mut problems = Vec::new();
    match what {
        Places::Seats(ranges) => {
            let seats = seats_of(tx, &perf, &ranges, &mut problems)?;
            for seat in &seats {
                if let Some(p) = seat_taken(tx, perf.id, seat, link)? {
                    problems.push(p);
                }
            }
            if seats.is_empty() && problems.is_empty() {
                problems.push("no seat named".to_owned());
            }
            if !problems.is_empty() {
                return Err(refusal("allotment", &perf, link, &problems));
            }
            let version = bump(tx, link, perf.id)?;
            let run = runs::start(tx, RUN_ALLOCATE, Some(link), None)?;
            let mut insert = tx.prepare_cached(
                "INSERT INTO allotment_seat (performance, seat, link, state) VALUES (?1, ?2, ?3, 'allotted')",
            )?;
            for seat in &seats {
                insert.execute((perf.id, seat.id, link))?;
            }
            let n = seats.len() as u64;
            for range in &ranges {
                runs::message(
                    tx,
                    run,
                    Level::Info,
                    "allotted",
                    Some(&perf.label()),
                    &format!("seats {range} allotted to link {link}"),
                )?;
            }
            finish_run(tx, run, &perf, version, n)?;
            Ok(Allocation {
                run,
                link: link.to_owned(),
                performance: perf.id,
                performance_code: perf.code,
                version,
                seats: n,
                zone: None,
            })
        }
        Places::Zone { zone, quantity } => {
            let (zid, zcode, capacity) = zone_of(tx, &perf, &zone)?;
            if quantity == 0 {
                return Err(refusal(
                    "allotment",
                    &perf,
                    link,
                    &[format!("zone {zcode}: expected a quantity of at least 1")],
                ));
            }
            let free = zone_free(tx, perf.id, zid, capacity)?;
            if u64::from(quantity) > free {
                return Err(refusal(
                    "allotment",
                    &perf,
                    link,
                    &[format!(
                        "zone {zcode}: {quantity} place(s) asked, {free} free (capacity {capacity}, the rest allotted, held or sold)"
                    )],
                ));
            }
            let version = bump(tx, link, perf.id)?;
            let run = runs::start(tx, RUN_ALLOCATE, Some(link), None)?;
            tx.prepare_cached(
                "INSERT INTO allotment_zone (performance, zone, link, quantity) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (performance, zone, link) DO UPDATE SET quantity = quantity + excluded.quantity",
            )?
            .execute((perf.id, zid, link, quantity))?;
            runs::message(
                tx,
                run,
                Level::Info,
                "allotted",
                Some(&perf.label()),
                &format!("{quantity} place(s) of zone {zcode} allotted to link {link}"),
            )?;
            finish_run(tx, run, &perf, version, u64::from(quantity))?;
            Ok(Allocation {
                run,
                link: link.to_owned(),
                performance: perf.id,
                performance_code: perf.code,
                version,
                seats: 0,
                zone: Some((zid, zcode, quantity)),
            })
        }
    }
}

fn finish_run(
    tx: &Transaction<'_>,
    run: i64,
    perf: &Perf,
    version: u64,
    n: u64,
) -> Result<(), DomainError> {
    runs::message(
        tx,
        run,
        Level::Info,
        "version",
        Some(&perf.label()),
        &format!("allotment now at version {version}; export it with stxd export contingent"),
    )?;
    runs::finish(
        tx,
        run,
        RunStatus::Ok,
        Counts {
            total: n,
            ok: n,
            rejected: 0,
        },
    )?;
    Ok(())
}

/// Why a seat cannot be allotted to `link`, if it cannot.
fn seat_taken(
    conn: &Connection,
    perf: i64,
    seat: &SeatAt,
    link: &str,
) -> Result<Option<String>, DomainError> {
    let ticket: Option<(i64, String)> = conn
        .prepare_cached(
            "SELECT id, link FROM ticket WHERE performance = ?1 AND seat = ?2 AND state = 'valid'",
        )?
        .query_row((perf, seat.id), |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((ticket, by)) = ticket {
        return Ok(Some(format!(
            "seat {} is sold (valid ticket {ticket}, link {by})",
            seat.label
        )));
    }
    let holder: Option<(String, String, Option<i64>)> = conn
        .prepare_cached(
            "SELECT link, state, released_in FROM allotment_seat WHERE performance = ?1 AND seat = ?2",
        )?
        .query_row((perf, seat.id), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    Ok(holder.map(|(holder, state, released_in)| match (state.as_str(), released_in) {
        ("held", Some(v)) => format!(
            "seat {} is held: released from link {holder}'s allotment by version {v}, it returns once that distributor acknowledges version {v}",
            seat.label
        ),
        _ if holder == link => format!("seat {} is already in this link's allotment", seat.label),
        _ => format!("seat {} is in the allotment of link {holder}", seat.label),
    }))
}

/// Takes seats or zone places back from a link, all or nothing. Seats go
/// `held` with the new version as `released_in` (never straight back to the
/// manager); zone places move to the held quantity until the new version is
/// acknowledged. Refused: a seat not allotted to this link (or already
/// held), a quantity above what the link has allotted. Bumps the version and
/// records a `contingent-release` run. Zone places released while earlier
/// ones are still held join them and are all held until the new version is
/// acknowledged (later, never earlier, than each one's own version).
pub fn release(
    tx: &Transaction<'_>,
    link: &str,
    performance: TechId,
    what: Places,
) -> Result<Allocation, DomainError> {
    check_link(link)?;
    let perf = perf_or_refuse(tx, performance)?;
    match what {
        Places::Seats(ranges) => release_seats(tx, link, perf, &ranges),
        Places::Zone { zone, quantity } => release_zone(tx, link, perf, &zone, quantity),
    }
}

/// Takes numbered seats back from a link: each must be allotted to it (not
/// already held); they become held until the version is acknowledged.
fn release_seats(
    tx: &Transaction<'_>,
    link: &str,
    perf: Perf,
    ranges: &[SeatRange],
) -> Result<Allocation, DomainError> {
    let mut problems = Vec::new();
    let seats = seats_of(tx, &perf, ranges, &mut problems)?;
    for seat in &seats {
        let holder: Option<(String, String, Option<i64>)> = tx
            .prepare_cached(
                "SELECT link, state, released_in FROM allotment_seat WHERE performance = ?1 AND seat = ?2",
            )?
            .query_row((perf.id, seat.id), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        match holder {
            Some((l, s, _)) if l == link && s == "allotted" => {}
            Some((l, _, Some(v))) if l == link => problems.push(format!(
                "seat {} is already released (held until version {v} is acknowledged)",
                seat.label
            )),
            Some((l, _, _)) => problems.push(format!(
                "seat {} is not allotted to this link (it is link {l}'s)",
                seat.label
            )),
            None => problems.push(format!("seat {} is not allotted to this link", seat.label)),
        }
    }
    if seats.is_empty() && problems.is_empty() {
        problems.push("no seat named".to_owned());
    }
    if !problems.is_empty() {
        return Err(refusal("release", &perf, link, &problems));
    }
    let version = bump(tx, link, perf.id)?;
    let run = runs::start(tx, RUN_RELEASE, Some(link), None)?;
    let mut hold = tx.prepare_cached(
        "UPDATE allotment_seat SET state = 'held', released_in = ?3
         WHERE performance = ?1 AND seat = ?2",
    )?;
    let v = to_i64(version, "version")?;
    for seat in &seats {
        hold.execute((perf.id, seat.id, v))?;
    }
    for range in ranges {
        runs::message(
            tx,
            run,
            Level::Info,
            "held",
            Some(&perf.label()),
            &format!(
                "seats {range} released from link {link}: held until the distributor acknowledges version {version}"
            ),
        )?;
    }
    let n = seats.len() as u64;
    finish_run(tx, run, &perf, version, n)?;
    Ok(Allocation {
        run,
        link: link.to_owned(),
        performance: perf.id,
        performance_code: perf.code,
        version,
        seats: n,
        zone: None,
    })
}

/// Takes zone places back from a link: at most what is allotted to it; they
/// become held until the version is acknowledged.
fn release_zone(
    tx: &Transaction<'_>,
    link: &str,
    perf: Perf,
    zone: &Ref,
    quantity: u32,
) -> Result<Allocation, DomainError> {
    let (zid, zcode, _) = zone_of(tx, &perf, zone)?;
    let allotted: i64 = tx
        .prepare_cached(
            "SELECT coalesce((SELECT quantity FROM allotment_zone
                 WHERE performance = ?1 AND zone = ?2 AND link = ?3), 0)",
        )?
        .query_row((perf.id, zid, link), |r| r.get(0))?;
    if quantity == 0 || i64::from(quantity) > allotted {
        return Err(refusal(
            "release",
            &perf,
            link,
            &[format!(
                "zone {zcode}: {quantity} place(s) to take back, expected 1 to {allotted} (allotted to this link)"
            )],
        ));
    }
    let version = bump(tx, link, perf.id)?;
    let run = runs::start(tx, RUN_RELEASE, Some(link), None)?;
    tx.prepare_cached(
        "UPDATE allotment_zone SET quantity = quantity - ?4, held = held + ?4, held_until = ?5
         WHERE performance = ?1 AND zone = ?2 AND link = ?3",
    )?
    .execute((perf.id, zid, link, quantity, to_i64(version, "version")?))?;
    runs::message(
        tx,
        run,
        Level::Info,
        "held",
        Some(&perf.label()),
        &format!(
            "{quantity} place(s) of zone {zcode} released from link {link}: held until the distributor acknowledges version {version}"
        ),
    )?;
    finish_run(tx, run, &perf, version, u64::from(quantity))?;
    Ok(Allocation {
        run,
        link: link.to_owned(),
        performance: perf.id,
        performance_code: perf.code,
        version,
        seats: 0,
        zone: Some((zid, zcode, quantity)),
    })
}

/// Records a refused allocation or release as a failed run, in the caller's
/// (second) transaction, so ops read why in the execution log.
pub fn log_refusal(
    tx: &Transaction<'_>,
    kind: &str,
    link: &str,
    error: &DomainError,
) -> Result<i64, StoreError> {
    runs::failed(
        tx,
        kind,
        Some(link),
        None,
        "refused",
        None,
        &error.to_string(),
    )
}

/// Applies the distributor's acknowledgement of `version` of a performance's
/// allotment (an `ACK` line of its sales file, after the file's ticket
/// lines): `acknowledged` becomes the larger of the two; held seats released
/// in a version ≤ `version` return to the manager (a seat with a valid
/// ticket simply stays sold by it); held zone places whose version is
/// acknowledged are freed. An ACK of a version never exported is refused.
pub fn acknowledge(
    tx: &Transaction<'_>,
    link: &str,
    performance: TechId,
    version: u64,
) -> Result<AckOutcome, DomainError> {
    let object = format!(
        "acknowledgement of version {version} of performance {performance}'s allotment to link {link}"
    );
    let row: Option<(i64, i64)> = tx
        .prepare_cached(
            "SELECT exported, acknowledged FROM allotment WHERE link = ?1 AND performance = ?2",
        )?
        .query_row((link, performance.get()), |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((exported, acknowledged)) = row else {
        return Err(invalid(
            object,
            "this link has no allotment for the performance: no contingent was ever exported for it",
        ));
    };
    let (exported, acknowledged) = (to_u64(exported), to_u64(acknowledged));
    if version == 0 || version > exported {
        return Err(invalid(
            object,
            format!(
                "version {version} was never exported (last exported: {exported}); the distributor cannot have applied it"
            ),
        ));
    }
    let v = to_i64(version, "version")?;
    let already = version <= acknowledged;
    tx.prepare_cached(
        "UPDATE allotment SET acknowledged = max(acknowledged, ?3) WHERE link = ?1 AND performance = ?2",
    )?
    .execute((link, performance.get(), v))?;
    // What goes back to the manager unsold is recorded as returned; a held
    // seat sold before this acknowledgement stays held by its ticket.
    let now = crate::store::now();
    tx.prepare_cached(
        "INSERT INTO allotment_return (link, performance, seat, quantity, version, returned)
         SELECT a.link, a.performance, a.seat, 1, a.released_in, ?4 FROM allotment_seat a
          WHERE a.link = ?1 AND a.performance = ?2 AND a.state = 'held' AND a.released_in <= ?3
            AND NOT EXISTS (SELECT 1 FROM ticket t WHERE t.performance = a.performance
                               AND t.seat = a.seat AND t.state = 'valid')",
    )?
    .execute((link, performance.get(), v, &now))?;
    tx.prepare_cached(
        "INSERT INTO allotment_return (link, performance, zone, quantity, version, returned)
         SELECT link, performance, zone, held, held_until, ?4 FROM allotment_zone
          WHERE link = ?1 AND performance = ?2 AND held > 0 AND held_until <= ?3",
    )?
    .execute((link, performance.get(), v, &now))?;
    let seats_freed = tx
        .prepare_cached(
            "DELETE FROM allotment_seat
             WHERE link = ?1 AND performance = ?2 AND state = 'held' AND released_in <= ?3",
        )?
        .execute((link, performance.get(), v))? as u64;
    let zone_places_freed: i64 = tx
        .prepare_cached(
            "SELECT coalesce(sum(held), 0) FROM allotment_zone
             WHERE link = ?1 AND performance = ?2 AND held > 0 AND held_until <= ?3",
        )?
        .query_row((link, performance.get(), v), |r| r.get(0))?;
    tx.prepare_cached(
        "UPDATE allotment_zone SET held = 0, held_until = NULL
         WHERE link = ?1 AND performance = ?2 AND held > 0 AND held_until <= ?3",
    )?
    .execute((link, performance.get(), v))?;
    tx.prepare_cached(
        "DELETE FROM allotment_zone
         WHERE link = ?1 AND performance = ?2 AND quantity = 0 AND held = 0",
    )?
    .execute((link, performance.get()))?;
    Ok(AckOutcome {
        performance: performance.get(),
        version,
        acknowledged: acknowledged.max(version),
        seats_freed,
        zone_places_freed: to_u64(zone_places_freed),
        already,
    })
}

// ------------------------------------------------------------------ reading

/// The link's allotments (of one performance, or all), by performance id.
pub fn show(
    conn: &Connection,
    link: &str,
    performance: Option<TechId>,
) -> Result<Vec<AllotmentView>, DomainError> {
    let mut st = conn.prepare_cached(
        "SELECT a.performance, p.code, p.start, a.version, a.exported, a.acknowledged
         FROM allotment a JOIN performance p ON p.id = a.performance
         WHERE a.link = ?1 AND (?2 IS NULL OR a.performance = ?2)
         ORDER BY a.performance",
    )?;
    let heads: Vec<(i64, String, String, i64, i64, i64)> = st
        .query_map((link, performance.map(TechId::get)), |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?
        .collect::<Result<_, _>>()?;
    let mut views = Vec::with_capacity(heads.len());
    for (pid, code, start, version, exported, acknowledged) in heads {
        let seats = seat_runs(conn, link, pid)?;
        let count = |state: &str| {
            seats
                .iter()
                .filter(|s| s.state == state)
                .map(|s| s.seats)
                .sum()
        };
        let mut zs = conn.prepare_cached(
            "SELECT a.zone, z.code, a.quantity, a.held, a.held_until
             FROM allotment_zone a JOIN zone z ON z.id = a.zone
             WHERE a.link = ?1 AND a.performance = ?2 ORDER BY a.zone",
        )?;
        let zones = zs
            .query_map((link, pid), |r| {
                Ok(ZoneView {
                    zone: r.get(0)?,
                    code: r.get(1)?,
                    quantity: to_u64(r.get(2)?),
                    held: to_u64(r.get(3)?),
                    held_until: r.get::<_, Option<i64>>(4)?.map(to_u64),
                })
            })?
            .collect::<Result<_, _>>()?;
        views.push(AllotmentView {
            link: link.to_owned(),
            performance: pid,
            performance_code: code,
            start,
            version: to_u64(version),
            exported: to_u64(exported),
            acknowledged: to_u64(acknowledged),
            seats_allotted: count("allotted"),
            seats_held: count("held"),
            seats,
            zones,
        });
    }
    Ok(views)
}

/// The link's seats of a performance in document order, grouped into runs of
/// consecutive seats of one row in one state.
fn seat_runs(conn: &Connection, link: &str, perf: i64) -> Result<Vec<SeatRun>, DomainError> {
    let mut st = conn.prepare_cached(
        "SELECT b.id, b.code, r.code, s.id, s.number, a.state, a.released_in
         FROM allotment_seat a JOIN seat s ON s.id = a.seat
         JOIN seat_row r ON r.id = s.row JOIN block b ON b.id = r.block
         WHERE a.link = ?1 AND a.performance = ?2
         ORDER BY b.id, r.id, s.id",
    )?;
    let mut rows = st.query((link, perf))?;
    let mut out: Vec<SeatRun> = Vec::new();
    let mut last_seat: i64 = 0;
    while let Some(r) = rows.next()? {
        let (block, block_code, row, seat, number, state, released_in): (
            i64,
            String,
            String,
            i64,
            String,
            String,
            Option<i64>,
        ) = (
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
        );
        let released_in = released_in.map(to_u64);
        match out.last_mut() {
            Some(run)
                if run.block == block
                    && run.row == row
                    && run.state == state
                    && run.released_in == released_in
                    && seat == last_seat + 1 =>
            {
                run.to = number;
                run.seats += 1;
            }
            _ => out.push(SeatRun {
                block,
                block_code,
                row,
                from: number.clone(),
                to: number,
                seats: 1,
                state,
                released_in,
            }),
        }
        last_seat = seat;
    }
    Ok(out)
}

/// The performances the link has an allotment for, by id.
pub fn performances(conn: &Connection, link: &str) -> Result<Vec<TechId>, DomainError> {
    ids(
        conn,
        link,
        "SELECT performance FROM allotment WHERE link = ?1 ORDER BY performance",
    )
}

/// The performances whose allotment to `link` changed since its last
/// export (version above the one exported), in id order: what a scheduled
/// export sends, so an unchanged contingent is not sent again.
pub fn changed_performances(conn: &Connection, link: &str) -> Result<Vec<TechId>, DomainError> {
    ids(
        conn,
        link,
        "SELECT performance FROM allotment WHERE link = ?1 AND version > exported ORDER BY performance",
    )
}

fn ids(conn: &Connection, link: &str, sql: &str) -> Result<Vec<TechId>, DomainError> {
    let mut st = conn.prepare_cached(sql)?;
    let ids: Vec<i64> = st
        .query_map([link], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    ids.into_iter()
        .map(|id| TechId::new(id).map_err(|e| invalid(format!("performance {id}"), e.to_string())))
        .collect()
}

/// Streams the snapshot of one performance's allotment to `link`: its
/// `PERFORMANCE` line (with the version), then the allotted (not held) seats
/// by block, row and seat with their physical seat category, then the zones
/// with a quantity allotted now; and records `exported = version`. Call it in
/// the export's write transaction, so the mark commits with the file's
/// journal row. A performance without an allotment for the link is refused.
pub fn snapshot(
    conn: &Connection,
    link: &str,
    performance: TechId,
    emit: &mut dyn FnMut(&contingent::Line) -> Result<(), WriteError>,
) -> Result<Snapshot, ExportError> {
    let version: Option<i64> = conn
        .prepare_cached("SELECT version FROM allotment WHERE link = ?1 AND performance = ?2")?
        .query_row((link, performance.get()), |r| r.get(0))
        .optional()?;
    let Some(version) = version.map(to_u64).filter(|v| *v >= 1) else {
        return Err(ExportError::Setup {
            code: "no-allotment",
            problem: format!("link {link} has no allotment for performance {performance}"),
            fix: "allot seats or zone places first (stxd contingent allocate)".to_owned(),
        });
    };
    emit(&contingent::Line::Performance {
        performance,
        version,
    })?;
    let bad = |object: String, problem: String| ExportError::BadData { object, problem };
    let mut seats = 0;
    {
        let mut st = conn.prepare_cached(
            "SELECT b.id, r.code, s.number, s.seat_category, s.id
             FROM allotment_seat a JOIN seat s ON s.id = a.seat
             JOIN seat_row r ON r.id = s.row JOIN block b ON b.id = r.block
             WHERE a.link = ?1 AND a.performance = ?2 AND a.state = 'allotted'
             ORDER BY b.id, r.id, s.id",
        )?;
        let mut rows = st.query((link, performance.get()))?;
        while let Some(r) = rows.next()? {
            let (block, row, number, category, sid): (i64, String, String, i64, i64) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
            let object = || format!("seat {sid}");
            let line = contingent::Line::Seat {
                performance,
                version,
                block: TechId::new(block).map_err(|e| bad(object(), e.to_string()))?,
                row: Code::new(&row).map_err(|e| bad(object(), e.to_string()))?,
                seat: Code::new(&number).map_err(|e| bad(object(), e.to_string()))?,
                seat_category: TechId::new(category).map_err(|e| bad(object(), e.to_string()))?,
            };
            emit(&line)?;
            seats += 1;
        }
    }
    let mut zones = 0;
    {
        let mut st = conn.prepare_cached(
            "SELECT a.zone, a.quantity, z.seat_category
             FROM allotment_zone a JOIN zone z ON z.id = a.zone
             WHERE a.link = ?1 AND a.performance = ?2 AND a.quantity > 0
             ORDER BY a.zone",
        )?;
        let mut rows = st.query((link, performance.get()))?;
        while let Some(r) = rows.next()? {
            let (zone, quantity, category): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let object = || format!("zone {zone}");
            let line = contingent::Line::Zone {
                performance,
                version,
                zone: TechId::new(zone).map_err(|e| bad(object(), e.to_string()))?,
                quantity: u32::try_from(quantity)
                    .map_err(|_| bad(object(), format!("quantity {quantity} is out of range")))?,
                seat_category: TechId::new(category).map_err(|e| bad(object(), e.to_string()))?,
            };
            emit(&line)?;
            zones += 1;
        }
    }
    conn.prepare_cached(
        "UPDATE allotment SET exported = version WHERE link = ?1 AND performance = ?2",
    )?
    .execute((link, performance.get()))?;
    Ok(Snapshot {
        version,
        seats,
        zones,
    })
}

/// Records emitted, as an export [`Report`] counts them.
pub fn report_of(snapshots: &[Snapshot]) -> Report {
    let mut report = Report::default();
    let mut add = |label: &str, n: u64| {
        if n > 0 {
            report.included.push((label.to_owned(), n));
        }
    };
    add("performances", snapshots.len() as u64);
    add("seats", snapshots.iter().map(|s| s.seats).sum());
    add("zones", snapshots.iter().map(|s| s.zones).sum());
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fixtures::opera as store;

    fn id(v: i64) -> TechId {
        TechId::new(v).unwrap()
    }

    fn seats(block: &str, row: &str, from: u32, to: u32) -> Places {
        Places::Seats(vec![SeatRange {
            block: Ref::parse(block).unwrap(),
            row: Code::new(row).unwrap(),
            from,
            to,
        }])
    }

    #[test]
    fn refs_parse_ids_then_codes() {
        assert_eq!(Ref::parse("3301").unwrap(), Ref::Id(id(3301)));
        assert_eq!(
            Ref::parse("PARTERRE").unwrap(),
            Ref::Code(Code::new("PARTERRE").unwrap())
        );
        assert!(Ref::parse("").is_err());
    }

    #[test]
    fn seat_runs_group_consecutive_seats() {
        let (_d, mut s) = store();
        s.write(|tx| {
            allocate(tx, "l", id(1701), seats("PARTERRE", "A", 1, 3))?;
            allocate(tx, "l", id(1701), seats("3301", "A", 5, 6))?;
            release(tx, "l", id(1701), seats("PARTERRE", "A", 2, 2))
        })
        .unwrap();
        let v = s.read(|c| show(c, "l", None)).unwrap();
        assert_eq!(v.len(), 1);
        let runs: Vec<_> = v[0]
            .seats
            .iter()
            .map(|r| format!("{} {} {}-{} {}", r.block_code, r.row, r.from, r.to, r.state))
            .collect();
        assert_eq!(
            runs,
            [
                "PARTERRE A 1-1 allotted",
                "PARTERRE A 2-2 held",
                "PARTERRE A 3-3 allotted",
                "PARTERRE A 5-6 allotted"
            ]
        );
        assert_eq!(
            (v[0].seats_allotted, v[0].seats_held, v[0].version),
            (4, 1, 3)
        );
    }

    #[test]
    fn a_reversed_or_unknown_range_is_refused_whole() {
        let (_d, mut s) = store();
        let e = s
            .write(|tx| {
                allocate(
                    tx,
                    "l",
                    id(1701),
                    Places::Seats(vec![
                        SeatRange {
                            block: Ref::parse("PARTERRE").unwrap(),
                            row: Code::new("A").unwrap(),
                            from: 5,
                            to: 2,
                        },
                        SeatRange {
                            block: Ref::parse("PARTERRE").unwrap(),
                            row: Code::new("Z").unwrap(),
                            from: 1,
                            to: 1,
                        },
                        SeatRange {
                            block: Ref::parse("NOPE").unwrap(),
                            row: Code::new("A").unwrap(),
                            from: 1,
                            to: 1,
                        },
                        SeatRange {
                            block: Ref::parse("BALCON").unwrap(),
                            row: Code::new("A").unwrap(),
                            from: 18,
                            to: 19,
                        },
                    ]),
                )
            })
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected FROM ≤ TO"), "{e}");
        assert!(e.contains("block PARTERRE has no row Z"), "{e}");
        assert!(e.contains("block NOPE is not in configuration 3101"), "{e}");
        assert!(e.contains("seat BALCON A 19 does not exist"), "{e}");
        assert!(!e.contains("BALCON A 18 "), "{e}");
        assert!(s.read(|c| show(c, "l", None)).unwrap().is_empty());
    }

    /// A link's zone tickets are counted inside its allotment; tickets
    /// beyond it (or of a link without one) take places of their own.
    #[test]
    fn zone_tickets_are_not_counted_twice() {
        let (_d, mut s) = store();
        s.write(|tx| -> Result<(), DomainError> {
            allocate(tx, "a", id(1701), Places::Zone { zone: Ref::parse("FOSSE").unwrap(), quantity: 10 })?;
            tx.execute_batch(
                "INSERT INTO sales_order (id, link, reference, channel, point_of_sale, payment_method, contact, created)
                     VALUES (1, 'a', 'R', 5001, 5101, 5201, 5301, 'now');
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 8)
                 INSERT INTO ticket (sales_order, link, line, performance, zone, seat_category, tariff_type,
                     audience_subcategory, amount, currency, vat_code, sold_at, state)
                 SELECT 1, CASE WHEN i <= 4 THEN 'a' ELSE 'b' END, i, 1701, 3201, 2004, 1201, 1301,
                     2500, 'EUR', 1101, 'now', 'valid' FROM n;",
            )?;
            Ok(())
        })
        .unwrap();
        // 150 − 10 (link a, its 4 tickets inside) − 4 (link b's tickets).
        assert_eq!(s.read(|c| zone_free(c, 1701, 3201, 150)).unwrap(), 136);
        assert_eq!(s.read(|c| zone_free(c, 1702, 3201, 150)).unwrap(), 150);
    }

    #[test]
    fn a_planned_performance_cannot_be_allotted() {
        let (_d, mut s) = store();
        let e = s
            .write(|tx| allocate(tx, "l", id(1703), seats("PARTERRE", "A", 1, 1)))
            .unwrap_err();
        assert!(e.to_string().contains("is planned"), "{e}");
    }
}
