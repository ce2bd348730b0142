//! The SALES file the distributor sends back: every sale and refund line not
//! yet sent, then one ACK per contingent snapshot applied.
//!
//! [`export_sales`] reads the lines over the caller's connection, translates
//! the local ids to the manager's through the mapping table (reverse
//! lookups, each kind's rows read once for the file), hands each record to
//! `emit`, marks the lines with the file's sequence and returns the export
//! [`Report`].

use rusqlite::Connection;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::domain::DomainError;
use crate::domain::export::{ExportError, Report, bad};
use crate::domain::mapping::ManagerIds;
use crate::format::WriteError;
use crate::format::sales::{self, OrderRef};
use crate::ident::{Code, TechId};
use crate::money::Currency;
use crate::store::mapping::MappingKind;

/// The manager's id of a local object a line names, or a refusal naming the
/// mapping to fix.
fn manager_id(
    ids: &mut ManagerIds<'_>,
    manager: &str,
    kind: MappingKind,
    local: i64,
    line: &str,
) -> Result<TechId, ExportError> {
    match ids.get(kind, local) {
        Ok(Some(id)) => Ok(id),
        Ok(None) => Err(bad(
            line,
            format!(
                "local {kind} {local} maps to no {manager} object; fill its mapping (stxd mapping list --kind {kind}) and export again"
            ),
        )),
        Err(DomainError::Invalid { object, problem }) => {
            Err(bad(format!("{line}: {object}"), problem))
        }
        Err(DomainError::Sql(e)) => Err(ExportError::Sql(e)),
        Err(DomainError::Store(e)) => Err(ExportError::Store(e)),
        Err(e) => Err(bad(line, e.to_string())),
    }
}

/// Emits the link's sales file: every line not yet exported, in line order,
/// in the manager's ids, then one ACK per contingent snapshot applied; marks
/// the lines `exported_in = sequence`. Nothing at all to send is refused.
pub fn export_sales(
    conn: &Connection,
    link: &str,
    manager: &str,
    sequence: u64,
    emit: &mut dyn FnMut(&sales::Line) -> Result<(), WriteError>,
) -> Result<Report, ExportError> {
    let mut report = Report::default();
    let mut st = conn.prepare(
        "SELECT l.id, l.operation, l.time, l.order_ref, l.refund_of, l.performance,
                l.seat, b.id, r.code, s.number, l.zone, l.seat_category, l.tariff_type,
                l.audience_subcategory, l.amount, l.currency, l.vat_code, l.rate_version,
                c.manager_id, l.logical_seat_category
           FROM sale_line l
           LEFT JOIN logical_seat_category c ON c.id = l.logical_seat_category
           LEFT JOIN seat s ON s.id = l.seat
           LEFT JOIN seat_row r ON r.id = s.row
           LEFT JOIN block b ON b.id = r.block
          WHERE l.link = ?1 AND l.exported_in IS NULL
          ORDER BY l.id",
    )?;
    // Each kind's mapping rows are read once for the file, not once a line.
    let mut ids = ManagerIds::new(conn, manager);
    let mut rows = st.query([link])?;
    while let Some(r) = rows.next()? {
        let ticket = ticket(&mut ids, manager, r)?;
        let operation = ticket.operation;
        emit(&sales::Line::Ticket(Box::new(ticket)))?;
        report.count(match operation {
            sales::Operation::Sale => "sales",
            sales::Operation::Refund => "refunds",
        });
    }
    drop(rows);

    // Every applied version is acknowledged in every file (the manager
    // takes a repeated acknowledgement as a no-op); a file with no line is
    // written only when one of them was never sent.
    let mut st = conn.prepare(
        "SELECT performance, version, ack_sent FROM contingent_snapshot WHERE link = ?1 ORDER BY performance",
    )?;
    let snapshots: Vec<(i64, i64, Option<i64>)> = st
        .query_map([link], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let lines = !report.included.is_empty();
    let new_ack = snapshots
        .iter()
        .any(|&(_, version, sent)| sent.is_none_or(|s| s < version));
    let mut acks: Vec<(TechId, u64)> = Vec::with_capacity(snapshots.len());
    for (local, version, _) in snapshots {
        let object = format!("contingent of performance {local}");
        let performance = manager_id(&mut ids, manager, MappingKind::Performance, local, &object)?;
        let version =
            u64::try_from(version).map_err(|_| bad(&object, format!("version {version}")))?;
        acks.push((performance, version));
    }
    // The manager's order, whatever the local ids.
    acks.sort();
    for (performance, contingent_version) in acks {
        emit(&sales::Line::Ack(sales::Ack {
            performance,
            contingent_version,
        }))?;
        report.count("acks");
    }
    if !lines && !new_ack {
        return Err(ExportError::NothingToSend {
            problem: format!(
                "nothing to send on link {link}: no sale or refund waiting and no contingent version to acknowledge"
            ),
            fix: "sell, refund or import a contingent first".to_owned(),
        });
    }
    let sequence = i64::try_from(sequence).map_err(|_| bad("sales file", "sequence too large"))?;
    conn.prepare_cached(
        "UPDATE sale_line SET exported_in = ?2 WHERE link = ?1 AND exported_in IS NULL",
    )?
    .execute((link, sequence))?;
    conn.prepare_cached("UPDATE contingent_snapshot SET ack_sent = version WHERE link = ?1")?
        .execute([link])?;
    Ok(report)
}

/// One sale or refund line of the query in [`export_sales`], as a SALES
/// ticket in the manager's ids.
fn ticket(
    ids: &mut ManagerIds<'_>,
    manager: &str,
    r: &rusqlite::Row<'_>,
) -> Result<sales::Ticket, ExportError> {
    let id: i64 = r.get(0)?;
    let object = format!("sale line {id}");
    let operation: String = r.get(1)?;
    let operation = match operation.as_str() {
        "SALE" => sales::Operation::Sale,
        "REFUND" => sales::Operation::Refund,
        other => return Err(bad(&object, format!("operation {other:?}"))),
    };
    let time_text: String = r.get(2)?;
    let time = OffsetDateTime::parse(&time_text, &Rfc3339)
        .map_err(|e| bad(&object, format!("time {time_text:?}: {e}")))?;
    let order_text: String = r.get(3)?;
    let order = OrderRef::new(&order_text)
        .ok_or_else(|| bad(&object, format!("order reference {order_text:?}")))?;
    let refund_of: Option<i64> = r.get(4)?;
    let refund_of = refund_of
        .map(|v| u64::try_from(v).map_err(|_| bad(&object, format!("refund_of {v}"))))
        .transpose()?;
    let mut map = |kind, local: i64| manager_id(ids, manager, kind, local, &object);
    let performance = map(MappingKind::Performance, r.get(5)?)?;
    let seat: Option<i64> = r.get(6)?;
    let place = match seat {
        Some(_) => {
            let block: i64 = r.get(7)?;
            let row: String = r.get(8)?;
            let number: String = r.get(9)?;
            sales::Place::Seat {
                block: map(MappingKind::Block, block)?,
                row: Code::new(&row).map_err(|e| bad(&object, e.to_string()))?,
                seat: Code::new(&number).map_err(|e| bad(&object, e.to_string()))?,
            }
        }
        None => {
            let zone: i64 = r.get(10)?;
            sales::Place::Zone {
                zone: map(MappingKind::Zone, zone)?,
            }
        }
    };
    let currency: String = r.get(15)?;
    Ok(sales::Ticket {
        line: u64::try_from(id).map_err(|_| bad(&object, "negative line id"))?,
        operation,
        time,
        order,
        refund_of,
        performance,
        place,
        seat_category: map(MappingKind::SeatCategory, r.get(11)?)?,
        tariff_type: map(MappingKind::TariffType, r.get(12)?)?,
        audience_subcategory: map(MappingKind::AudienceSubcategory, r.get(13)?)?,
        amount: r.get(14)?,
        currency: Currency::new(&currency).map_err(|e| bad(&object, e.to_string()))?,
        vat_code: map(MappingKind::VatCode, r.get(16)?)?,
        rate_version: r
            .get::<_, Option<i64>>(17)?
            .map(|v| u64::try_from(v).map_err(|_| bad(&object, format!("rate version {v}"))))
            .transpose()?,
        logical_seat_category: match (r.get::<_, Option<i64>>(18)?, r.get::<_, Option<i64>>(19)?) {
            (Some(manager), _) => Some(id_of(manager, &object)?),
            (None, None) => None,
            (None, Some(local)) => {
                return Err(bad(
                    &object,
                    format!(
                        "local logical seat category {local} has no manager id (it came from no catalogue of the manager): import the manager's catalogue again"
                    ),
                ));
            }
        },
    })
}

fn id_of(v: i64, object: &str) -> Result<TechId, ExportError> {
    TechId::new(v).map_err(|e| bad(object, e.to_string()))
}

/// Whether a line of `link` not yet sent names a logical seat category:
/// its SALES file then has the `logical_seat_category` column.
pub fn sales_name_logical(conn: &Connection, link: &str) -> Result<bool, ExportError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM sale_line WHERE link = ?1 AND exported_in IS NULL
               AND logical_seat_category IS NOT NULL",
        )?
        .exists([link])?)
}
