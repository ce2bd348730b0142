//! The changes to a link's contingents: seats or zone places allotted and
//! released (all or nothing, each a run), refusals logged, and the
//! distributor's acknowledgements recorded.

use rusqlite::{Connection, OptionalExtension, Transaction};

use super::{
    AckOutcome, Allocation, Perf, Places, RUN_ALLOCATE, RUN_RELEASE, Ref, SeatAt, SeatRange, bump,
    check_link, invalid, perf_or_refuse, refusal, seats_of, to_i64, to_u64, zone_free, zone_of,
};
use crate::domain::DomainError;
use crate::ident::TechId;
use crate::store::StoreError;
use crate::store::runs::{self, Counts, Level, RunStatus};

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
