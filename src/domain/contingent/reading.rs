//! Reading a link's contingents: the allotments shown, the performances
//! with contingents (or changed ones), and the snapshots exported.

use rusqlite::{Connection, OptionalExtension};

use super::{AllotmentView, SeatRun, Snapshot, ZoneView, invalid, to_u64};
use crate::domain::DomainError;
use crate::domain::export::{ExportError, Report};
use crate::format::{WriteError, contingent};
use crate::ident::{Code, TechId};

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
