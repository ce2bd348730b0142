//! The seat-plan export: the seat categories and the venues, configurations,
//! zones, blocks, rows and seats the selected performances use.

use std::collections::BTreeSet;

use rusqlite::Connection;

use super::selection::{id_set, select};
use super::{ExportError, Report, Scope, bad, code, emit_with, id, name};
use crate::format::{WriteError, seatplan};
use crate::ident::TechId;

/// Streams the seat plans of the configurations the link's exported
/// performances use (same selection as
/// [`catalogue()`](super::catalogue())): their seat categories, then each
/// venue with those configurations, zones, blocks, rows and seats, all in
/// id order.
pub fn seatplan(
    conn: &Connection,
    scope: &Scope<'_>,
    emit: &mut dyn FnMut(&seatplan::Item) -> Result<(), WriteError>,
) -> Result<Report, ExportError> {
    use seatplan::Item;
    let sel = select(conn, scope)?;
    let mut report = Report::default();

    let mut configurations = BTreeSet::new();
    for p in &sel.performances {
        let c: i64 = conn
            .prepare_cached("SELECT configuration FROM performance WHERE id = ?1")?
            .query_row([p], |r| r.get(0))?;
        configurations.insert(c);
    }
    let mut venues = BTreeSet::new();
    let mut seat_categories = BTreeSet::new();
    for c in &configurations {
        let v: i64 = conn
            .prepare_cached("SELECT venue FROM configuration WHERE id = ?1")?
            .query_row([c], |r| r.get(0))?;
        venues.insert(v);
        seat_categories.extend(id_set(
            conn,
            "SELECT seat_category FROM zone WHERE configuration = ?1 AND capacity > 0
             UNION
             SELECT s.seat_category FROM seat s JOIN seat_row r ON r.id = s.row
             JOIN block b ON b.id = r.block WHERE b.configuration = ?1",
            *c,
        )?);
    }

    {
        let mut st = conn.prepare_cached("SELECT id, code, name FROM seat_category ORDER BY id")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let (sid, c, n): (i64, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
            if !seat_categories.contains(&sid) {
                continue;
            }
            let object = format!("seat category {sid} {c}");
            let item = Item::SeatCategory(seatplan::SeatCategory {
                id: id(sid, &object)?,
                code: code(&c, &object)?,
                name: name(&n, &object)?,
            });
            emit_with(emit, &mut report, "seat categories", &item)?;
        }
    }

    let mut st = conn.prepare_cached("SELECT id, code, name FROM venue ORDER BY id")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let (vid, c, n): (i64, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
        let object = format!("venue {vid} {c}");
        if !venues.contains(&vid) {
            report.exclude(object, "no exported performance takes place in it");
            continue;
        }
        let venue = id(vid, &object)?;
        let item = Item::Venue(seatplan::Venue {
            id: venue,
            code: code(&c, &object)?,
            name: name(&n, &object)?,
        });
        emit_with(emit, &mut report, "venues", &item)?;

        let mut cs = conn.prepare_cached(
            "SELECT id, code, name FROM configuration WHERE venue = ?1 ORDER BY id",
        )?;
        let mut conf_rows = cs.query([vid])?;
        while let Some(cr) = conf_rows.next()? {
            let (cid, cc, cn): (i64, String, String) = (cr.get(0)?, cr.get(1)?, cr.get(2)?);
            let object = format!("configuration {cid} {cc} of venue {vid} {c}");
            if !configurations.contains(&cid) {
                report.exclude(object, "no exported performance uses it");
                continue;
            }
            let configuration = id(cid, &object)?;
            let item = Item::Configuration(seatplan::Configuration {
                id: configuration,
                venue,
                code: code(&cc, &object)?,
                name: name(&cn, &object)?,
            });
            emit_with(emit, &mut report, "configurations", &item)?;
            configuration_contents(conn, configuration, emit, &mut report)?;
        }
    }
    Ok(report)
}

/// Zones, then blocks with their rows and seats, of one configuration.
fn configuration_contents(
    conn: &Connection,
    configuration: TechId,
    emit: &mut dyn FnMut(&seatplan::Item) -> Result<(), WriteError>,
    report: &mut Report,
) -> Result<(), ExportError> {
    use seatplan::Item;
    let mut zs = conn.prepare_cached(
        "SELECT id, code, name, seat_category, capacity FROM zone
         WHERE configuration = ?1 ORDER BY id",
    )?;
    let mut zone_rows = zs.query([configuration.get()])?;
    while let Some(r) = zone_rows.next()? {
        let (zid, c, n, sc, cap): (i64, String, String, i64, i64) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
        let object = format!("zone {zid} {c}");
        if cap == 0 {
            report.exclude(object, "its capacity is 0: nothing to sell");
            continue;
        }
        let item = Item::Zone(seatplan::Zone {
            id: id(zid, &object)?,
            configuration,
            code: code(&c, &object)?,
            name: name(&n, &object)?,
            seat_category: id(sc, &object)?,
            capacity: u32::try_from(cap)
                .map_err(|_| bad(&object, format!("capacity {cap} is out of range")))?,
        });
        emit_with(emit, report, "zones", &item)?;
    }
    drop(zone_rows);

    let mut bs = conn
        .prepare_cached("SELECT id, code, name FROM block WHERE configuration = ?1 ORDER BY id")?;
    let mut block_rows = bs.query([configuration.get()])?;
    while let Some(r) = block_rows.next()? {
        let (bid, c, n): (i64, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
        let object = format!("block {bid} {c}");
        let block = id(bid, &object)?;
        let item = Item::Block(seatplan::Block {
            id: block,
            configuration,
            code: code(&c, &object)?,
            name: name(&n, &object)?,
        });
        emit_with(emit, report, "blocks", &item)?;
        let mut rs =
            conn.prepare_cached("SELECT id, code FROM seat_row WHERE block = ?1 ORDER BY id")?;
        let mut row_rows = rs.query([bid])?;
        while let Some(rr) = row_rows.next()? {
            let (rid, rc): (i64, String) = (rr.get(0)?, rr.get(1)?);
            let object = format!("row {rid} {rc} of block {bid} {c}");
            let row = id(rid, &object)?;
            let item = Item::Row(seatplan::Row {
                id: row,
                block,
                code: code(&rc, &object)?,
            });
            emit_with(emit, report, "rows", &item)?;
            let mut ss = conn.prepare_cached(
                "SELECT id, number, seat_category FROM seat WHERE row = ?1 ORDER BY id",
            )?;
            let mut seat_rows = ss.query([rid])?;
            while let Some(sr) = seat_rows.next()? {
                let (sid, num, sc): (i64, String, i64) = (sr.get(0)?, sr.get(1)?, sr.get(2)?);
                let object = format!("seat {sid} {num} of row {rid} {rc}");
                let item = Item::Seat(seatplan::Seat {
                    id: id(sid, &object)?,
                    row,
                    number: code(&num, &object)?,
                    seat_category: id(sc, &object)?,
                });
                emit_with(emit, report, "seats", &item)?;
            }
        }
    }
    Ok(())
}
