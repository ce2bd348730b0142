//! The catalogue export: the selected products with their seasons, VAT
//! codes, reference objects, activities, configurations, performances and
//! rate tables, streamed in the format's section order.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::Connection;

use super::selection::{id_set, select};
use super::{ExportError, Report, Scope, Selection, bad, code, date, emit_with, id, label, name};
use crate::format::WriteError;
use crate::format::catalogue::{self, PerformanceState};
use crate::money::Currency;

/// Streams the catalogue the link's channel may sell into `emit`, in section
/// order. See the module documentation for the selection.
pub fn catalogue(
    conn: &Connection,
    scope: &Scope<'_>,
    emit: &mut dyn FnMut(&catalogue::Item) -> Result<(), WriteError>,
) -> Result<Report, ExportError> {
    let mut sel = select(conn, scope)?;
    let mut report = std::mem::take(&mut sel.report);
    let named = named(conn, &sel)?;
    emit_seasons(conn, &named, emit, &mut report)?;
    emit_vat_codes(conn, &named, emit, &mut report)?;
    emit_references(conn, &sel, &named, emit, &mut report)?;
    emit_activities(conn, &sel, emit, &mut report)?;
    emit_logical_configurations(conn, &named, emit, &mut report)?;
    emit_performances(conn, &sel, emit, &mut report)?;
    emit_rate_tables(conn, &sel, emit, &mut report)?;
    emit_products(conn, &sel, emit, &mut report)?;
    Ok(report)
}

/// What the exported records name beyond the selection: seasons and VAT
/// codes of the activities, logical configurations of the performances,
/// and the seat categories, tariff types and audience subcategories of the
/// prices exported and of those logical configurations.
struct Named {
    seasons: BTreeSet<i64>,
    vat_codes: BTreeSet<i64>,
    logical_configurations: BTreeSet<i64>,
    tariff_types: BTreeSet<i64>,
    audiences: BTreeSet<i64>,
    seat_categories: BTreeSet<i64>,
}

/// Reads what the selected records name.
fn named(conn: &Connection, sel: &Selection) -> Result<Named, ExportError> {
    let mut seasons = BTreeSet::new();
    let mut vat_codes = BTreeSet::new();
    for a in &sel.activities {
        let (s, v): (i64, i64) = conn
            .prepare_cached("SELECT season, vat_code FROM activity WHERE id = ?1")?
            .query_row([a], |r| Ok((r.get(0)?, r.get(1)?)))?;
        seasons.insert(s);
        vat_codes.insert(v);
    }
    let mut logical_configurations = BTreeSet::new();
    for p in &sel.performances {
        let l: i64 = conn
            .prepare_cached("SELECT logical_configuration FROM performance WHERE id = ?1")?
            .query_row([p], |r| r.get(0))?;
        logical_configurations.insert(l);
    }
    let mut tariff_types = BTreeSet::new();
    let mut audiences = BTreeSet::new();
    let mut seat_categories = BTreeSet::new();
    for (rt, allowed) in &sel.rate_tables {
        let mut st = conn.prepare_cached(
            "SELECT DISTINCT seat_category, tariff_type, audience_subcategory
             FROM price WHERE rate_table = ?1",
        )?;
        let mut rows = st.query([rt])?;
        while let Some(r) = rows.next()? {
            let (sc, tt, au): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            if allowed.allows(au) {
                seat_categories.insert(sc);
                tariff_types.insert(tt);
                audiences.insert(au);
            }
        }
    }
    for (rt, allowed) in &sel.rate_tables {
        let mut st = conn.prepare_cached(
            "SELECT DISTINCT tariff_type, audience_subcategory FROM logical_price WHERE rate_table = ?1",
        )?;
        let mut rows = st.query([rt])?;
        while let Some(r) = rows.next()? {
            let (tt, au): (i64, i64) = (r.get(0)?, r.get(1)?);
            if allowed.allows(au) {
                tariff_types.insert(tt);
                audiences.insert(au);
            }
        }
    }
    for l in &logical_configurations {
        seat_categories.extend(id_set(
            conn,
            "SELECT seat_category FROM logical_seat_category WHERE logical_configuration = ?1",
            *l,
        )?);
    }
    Ok(Named {
        seasons,
        vat_codes,
        logical_configurations,
        tariff_types,
        audiences,
        seat_categories,
    })
}

/// The seasons the exported activities are in; the others left out.
fn emit_seasons(
    conn: &Connection,
    named: &Named,
    emit: &mut dyn FnMut(&catalogue::Item) -> Result<(), WriteError>,
    report: &mut Report,
) -> Result<(), ExportError> {
    use catalogue::Item;
    let mut st =
        conn.prepare_cached("SELECT id, code, name, start_date, end_date FROM season ORDER BY id")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let (sid, c, n, s, e): (i64, String, String, String, String) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
        let object = format!("season {sid} {c}");
        if !named.seasons.contains(&sid) {
            report.exclude(object, "no exported activity is in this season");
            continue;
        }
        let item = Item::Season(catalogue::Season {
            id: id(sid, &object)?,
            code: code(&c, &object)?,
            name: name(&n, &object)?,
            start: date(&s, &object)?,
            end: date(&e, &object)?,
        });
        emit_with(emit, report, "seasons", &item)?;
    }
    Ok(())
}

/// The VAT codes the exported activities use; the others left out.
fn emit_vat_codes(
    conn: &Connection,
    named: &Named,
    emit: &mut dyn FnMut(&catalogue::Item) -> Result<(), WriteError>,
    report: &mut Report,
) -> Result<(), ExportError> {
    use catalogue::Item;
    let mut st = conn.prepare_cached("SELECT id, code, name, rate_bp FROM vat_code ORDER BY id")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let (vid, c, n, rate): (i64, String, String, i64) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        let object = format!("VAT code {vid} {c}");
        if !named.vat_codes.contains(&vid) {
            report.exclude(object, "no exported activity uses it");
            continue;
        }
        let item = Item::VatCode(catalogue::VatCode {
            id: id(vid, &object)?,
            code: code(&c, &object)?,
            name: name(&n, &object)?,
            rate_bp: u32::try_from(rate)
                .map_err(|_| bad(&object, format!("rate {rate} is out of range")))?,
        });
        emit_with(emit, report, "VAT codes", &item)?;
    }
    Ok(())
}

/// Tariff types, audience subcategories and seat categories (id, code, name) the exported records name; the others left out, with the reason.
fn emit_references(
    conn: &Connection,
    sel: &Selection,
    named: &Named,
    emit: &mut dyn FnMut(&catalogue::Item) -> Result<(), WriteError>,
    report: &mut Report,
) -> Result<(), ExportError> {
    use catalogue::Item;
    let references: [(&str, &str, &str, &BTreeSet<i64>); 3] = [
        (
            "tariff_type",
            "tariff type",
            "tariff types",
            &named.tariff_types,
        ),
        (
            "audience_subcategory",
            "audience subcategory",
            "audience subcategories",
            &named.audiences,
        ),
        (
            "seat_category",
            "seat category",
            "seat categories",
            &named.seat_categories,
        ),
    ];
    for (table, what, plural, used) in references {
        let mut st =
            conn.prepare_cached(&format!("SELECT id, code, name FROM {table} ORDER BY id"))?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let (rid, c, n): (i64, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let object = format!("{what} {rid} {c}");
            if !used.contains(&rid) {
                let reason =
                    if table == "audience_subcategory" && !sel.allowed_audiences.allows(rid) {
                        format!(
                            "not allowed on the product profiles of {}",
                            sel.channel.label
                        )
                    } else if table == "seat_category" {
                        "no exported price or logical seat category uses it".to_owned()
                    } else {
                        "no exported price uses it".to_owned()
                    };
                report.exclude(object, reason);
                continue;
            }
            let reference = catalogue::Reference {
                id: id(rid, &object)?,
                code: code(&c, &object)?,
                name: name(&n, &object)?,
            };
            let item = match table {
                "tariff_type" => Item::TariffType(reference),
                "audience_subcategory" => Item::AudienceSubcategory(reference),
                _ => Item::SeatCategory(reference),
            };
            emit_with(emit, report, plural, &item)?;
        }
    }
    Ok(())
}

/// The activities of the exported products; the others left out.
fn emit_activities(
    conn: &Connection,
    sel: &Selection,
    emit: &mut dyn FnMut(&catalogue::Item) -> Result<(), WriteError>,
    report: &mut Report,
) -> Result<(), ExportError> {
    use catalogue::Item;
    let mut st =
        conn.prepare_cached("SELECT id, code, name, season, vat_code FROM activity ORDER BY id")?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let (aid, c, n, s, v): (i64, String, String, i64, i64) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
        let object = format!("activity {aid} {c}");
        if !sel.activities.contains(&aid) {
            let reason = if sel.profile_activities.contains(&aid) {
                "no exported product is of this activity".to_owned()
            } else {
                format!("not in the activity profiles of {}", sel.channel.label)
            };
            report.exclude(object, reason);
            continue;
        }
        let item = Item::Activity(catalogue::Activity {
            id: id(aid, &object)?,
            code: code(&c, &object)?,
            name: name(&n, &object)?,
            season: id(s, &object)?,
            vat_code: id(v, &object)?,
        });
        emit_with(emit, report, "activities", &item)?;
    }
    Ok(())
}

/// The logical configurations of the exported performances, each followed by its logical seat categories; the others left out.
fn emit_logical_configurations(
    conn: &Connection,
    named: &Named,
    emit: &mut dyn FnMut(&catalogue::Item) -> Result<(), WriteError>,
    report: &mut Report,
) -> Result<(), ExportError> {
    use catalogue::Item;
    let mut st = conn.prepare_cached(
        "SELECT id, code, name, configuration FROM logical_configuration ORDER BY id",
    )?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let (lid, c, n, conf): (i64, String, String, i64) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        let object = format!("logical configuration {lid} {c}");
        if !named.logical_configurations.contains(&lid) {
            report.exclude(object, "no exported performance uses it");
            continue;
        }
        let item = Item::LogicalConfiguration(catalogue::LogicalConfiguration {
            id: id(lid, &object)?,
            code: code(&c, &object)?,
            name: name(&n, &object)?,
            configuration: id(conf, &object)?,
        });
        emit_with(emit, report, "logical configurations", &item)?;
        let mut cats = conn.prepare_cached(
            "SELECT id, code, name, seat_category FROM logical_seat_category
             WHERE logical_configuration = ?1 ORDER BY id",
        )?;
        let mut cat_rows = cats.query([lid])?;
        while let Some(cr) = cat_rows.next()? {
            let (cid, cc, cn, sc): (i64, String, String, i64) =
                (cr.get(0)?, cr.get(1)?, cr.get(2)?, cr.get(3)?);
            let object = format!("logical seat category {cid} {cc}");
            let item = Item::LogicalSeatCategory(catalogue::LogicalSeatCategory {
                id: id(cid, &object)?,
                logical_configuration: id(lid, &object)?,
                code: code(&cc, &object)?,
                name: name(&cn, &object)?,
                seat_category: id(sc, &object)?,
            });
            emit_with(emit, report, "logical seat categories", &item)?;
        }
        emit_seat_ranges(conn, lid, emit, report)?;
    }
    Ok(())
}

/// The seat ranges of a logical configuration: its seats with a logical
/// seat category, by block and row, consecutive seat numbers of one logical
/// seat category as one range, a seat labelled otherwise (`12bis`) alone.
fn emit_seat_ranges(
    conn: &Connection,
    lid: i64,
    emit: &mut dyn FnMut(&catalogue::Item) -> Result<(), WriteError>,
    report: &mut Report,
) -> Result<(), ExportError> {
    let mut st = conn.prepare_cached(
        "SELECT r.block, r.code, s.number, ls.logical_seat_category
           FROM logical_seat ls
           JOIN seat s ON s.id = ls.seat
           JOIN seat_row r ON r.id = s.row
          WHERE ls.logical_configuration = ?1
          ORDER BY r.block, r.code",
    )?;
    let rows: Vec<(i64, String, String, i64)> = st
        .query_map([lid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    let object = format!("seat ranges of logical configuration {lid}");
    let mut at = 0;
    while at < rows.len() {
        let (block, row) = (rows[at].0, rows[at].1.clone());
        let end = rows[at..]
            .iter()
            .position(|x| x.0 != block || x.1 != row)
            .map_or(rows.len(), |n| at + n);
        // (number or None for a label, label, logical seat category)
        let mut seats: Vec<(Option<u32>, &str, i64)> = rows[at..end]
            .iter()
            .map(|x| (catalogue::whole_number(&x.2), x.2.as_str(), x.3))
            .collect();
        seats.sort_by(|a, b| (a.0.is_none(), a.0, a.1).cmp(&(b.0.is_none(), b.0, b.1)));
        let mut i = 0;
        while i < seats.len() {
            let (first, label, category) = seats[i];
            let mut j = i;
            if let Some(n) = first {
                while let Some(&(Some(next), _, c)) = seats.get(j + 1)
                    && c == category
                    && u64::from(next) == u64::from(n) + (j + 1 - i) as u64
                {
                    j += 1;
                }
            }
            let last = seats[j].1;
            let item = catalogue::Item::SeatRange(catalogue::SeatRange {
                logical_configuration: id(lid, &object)?,
                block: id(block, &object)?,
                row: code(&row, &object)?,
                from: code(label, &object)?,
                to: code(last, &object)?,
                logical_seat_category: id(category, &object)?,
            });
            emit_with(emit, report, "seat ranges", &item)?;
            i = j + 1;
        }
        at = end;
    }
    Ok(())
}

/// The prices of a rate table for logical seat categories, for the
/// audiences allowed (those left out are counted with the physical ones).
fn emit_logical_prices(
    conn: &Connection,
    (rid, object): (i64, &str),
    allowed: &super::Audiences,
    emit: &mut dyn FnMut(&catalogue::Item) -> Result<(), WriteError>,
    report: &mut Report,
) -> Result<(), ExportError> {
    let mut prices = conn.prepare_cached(
        "SELECT logical_seat_category, tariff_type, audience_subcategory, amount
           FROM logical_price WHERE rate_table = ?1
          ORDER BY logical_seat_category, tariff_type, audience_subcategory",
    )?;
    let mut rows = prices.query([rid])?;
    while let Some(pr) = rows.next()? {
        let (lc, tt, au, amount): (i64, i64, i64, i64) =
            (pr.get(0)?, pr.get(1)?, pr.get(2)?, pr.get(3)?);
        if !allowed.allows(au) {
            continue;
        }
        let at = format!("logical price of {object} ({lc}, {tt}, {au})");
        let item = catalogue::Item::LogicalPrice(catalogue::LogicalPrice {
            rate_table: id(rid, &at)?,
            logical_seat_category: id(lc, &at)?,
            tariff_type: id(tt, &at)?,
            audience_subcategory: id(au, &at)?,
            amount,
        });
        emit_with(emit, report, "logical prices", &item)?;
    }
    Ok(())
}

/// The performances the exported products sell; the others left out (unless the selection already said why).
fn emit_performances(
    conn: &Connection,
    sel: &Selection,
    emit: &mut dyn FnMut(&catalogue::Item) -> Result<(), WriteError>,
    report: &mut Report,
) -> Result<(), ExportError> {
    use catalogue::Item;
    let mut st = conn.prepare_cached(
        "SELECT id, code, name, activity, start, configuration, logical_configuration, state
         FROM performance ORDER BY id",
    )?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let fid: i64 = r.get(0)?;
        let c: String = r.get(1)?;
        let object = format!("performance {fid} {c}");
        if !sel.performances.contains(&fid) {
            if !sel.reported_performances.contains(&fid) {
                report.exclude(object, "no exported product sells it");
            }
            continue;
        }
        let (n, a, start, conf, lc, state): (String, i64, String, i64, i64, String) = (
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
        );
        let item = Item::Performance(catalogue::Performance {
            id: id(fid, &object)?,
            code: code(&c, &object)?,
            name: name(&n, &object)?,
            activity: id(a, &object)?,
            start: time::OffsetDateTime::parse(
                &start,
                &time::format_description::well_known::Rfc3339,
            )
            .map_err(|e| bad(&object, format!("start {start:?} is not RFC 3339: {e}")))?,
            configuration: id(conf, &object)?,
            logical_configuration: id(lc, &object)?,
            state: PerformanceState::parse(&state)
                .ok_or_else(|| bad(&object, format!("unknown state {state:?}")))?,
        });
        emit_with(emit, report, "performances", &item)?;
    }
    Ok(())
}

/// The rate tables of the exported products, each followed by its prices for the audience subcategories allowed; the others left out, and the prices left out counted per audience subcategory.
fn emit_rate_tables(
    conn: &Connection,
    sel: &Selection,
    emit: &mut dyn FnMut(&catalogue::Item) -> Result<(), WriteError>,
    report: &mut Report,
) -> Result<(), ExportError> {
    use catalogue::Item;
    let mut st = conn.prepare_cached(
        "SELECT id, code, name, currency, coalesce(version, 1) FROM rate_table ORDER BY id",
    )?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        let (rid, c, n, cur): (i64, String, String, String) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        let version: i64 = r.get(4)?;
        let object = format!("rate table {rid} {c}");
        let Some(allowed) = sel.rate_tables.get(&rid) else {
            report.exclude(object, "no exported product uses it");
            continue;
        };
        let item = Item::RateTable(catalogue::RateTable {
            id: id(rid, &object)?,
            code: code(&c, &object)?,
            name: name(&n, &object)?,
            currency: Currency::new(&cur).map_err(|e| bad(&object, e.to_string()))?,
            version: Some(
                u32::try_from(version).map_err(|_| bad(&object, format!("version {version}")))?,
            ),
        });
        emit_with(emit, report, "rate tables", &item)?;
        // Left-out prices, counted per audience subcategory.
        let mut left_out: BTreeMap<i64, u64> = BTreeMap::new();
        let mut prices = conn.prepare_cached(
            "SELECT seat_category, tariff_type, audience_subcategory, amount FROM price
             WHERE rate_table = ?1
             ORDER BY seat_category, tariff_type, audience_subcategory",
        )?;
        let mut price_rows = prices.query([rid])?;
        while let Some(pr) = price_rows.next()? {
            let (sc, tt, au, amount): (i64, i64, i64, i64) =
                (pr.get(0)?, pr.get(1)?, pr.get(2)?, pr.get(3)?);
            if !allowed.allows(au) {
                *left_out.entry(au).or_default() += 1;
                continue;
            }
            let at = format!("price of {object} ({sc}, {tt}, {au})");
            let item = Item::Price(catalogue::Price {
                rate_table: id(rid, &at)?,
                seat_category: id(sc, &at)?,
                tariff_type: id(tt, &at)?,
                audience_subcategory: id(au, &at)?,
                amount,
            });
            emit_with(emit, report, "prices", &item)?;
        }
        emit_logical_prices(conn, (rid, &object), allowed, emit, report)?;
        for (au, n) in left_out {
            let audience = label(conn, "audience_subcategory", au)?;
            report.exclude(
                format!("{n} price(s) of {object} for {audience}"),
                format!(
                    "{audience} is not allowed on the product profiles of {} for the products using this rate table",
                    sel.channel.label
                ),
            );
        }
    }
    Ok(())
}

/// The exported products, each followed by the performances it sells.
fn emit_products(
    conn: &Connection,
    sel: &Selection,
    emit: &mut dyn FnMut(&catalogue::Item) -> Result<(), WriteError>,
    report: &mut Report,
) -> Result<(), ExportError> {
    use catalogue::Item;
    for pid in &sel.products {
        let (c, n, a, rt): (String, String, i64, i64) = conn
            .prepare_cached("SELECT code, name, activity, rate_table FROM product WHERE id = ?1")?
            .query_row([pid], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        let object = format!("product {pid} {c}");
        let product = id(*pid, &object)?;
        let item = Item::Product(catalogue::Product {
            id: product,
            code: code(&c, &object)?,
            name: name(&n, &object)?,
            activity: id(a, &object)?,
            rate_table: id(rt, &object)?,
        });
        emit_with(emit, report, "products", &item)?;
        for f in sel.product_performances.get(pid).into_iter().flatten() {
            let item = Item::PerformanceRef(catalogue::PerformanceRef {
                product,
                performance: id(*f, &object)?,
            });
            emit_with(emit, report, "product performances", &item)?;
        }
    }
    Ok(())
}
