//! The point of sale's lines for people: [`list`] returns them as
//! [`LineView`]s with local codes; a cancelled performance's valid sales
//! are the tickets to refund ([`Filter::to_refund`]), refunded all at once
//! by [`refund_performance`].

use rusqlite::{Connection, Transaction};
use serde::Serialize;

use super::sell::{SaleReceipt, SaleRefusal, by_id_or_code, refund};
use crate::domain::DomainError;
use crate::money::{Currency, Money};

/// The local performance named (id or code), which must be cancelled: its
/// id and code.
pub(super) fn cancelled_performance(
    conn: &Connection,
    key: &str,
) -> Result<(i64, String), SaleRefusal> {
    let Some((id, code)) = by_id_or_code(conn, "performance", key, None)? else {
        return Err(SaleRefusal::UnknownPerformance(key.to_owned()));
    };
    let state: String = conn
        .prepare_cached("SELECT state FROM performance WHERE id = ?1")?
        .query_row([id], |r| r.get(0))?;
    if state != "cancelled" {
        return Err(SaleRefusal::NotCancelled {
            performance: code,
            state,
        });
    }
    Ok((id, code))
}

/// Refunds every valid sale of a cancelled performance (`key`: its local id
/// or code) on `link`, all or nothing: one ordinary REFUND line each, sent
/// with the next sales file. None to refund is not an error (an empty list).
pub fn refund_performance(
    tx: &Transaction<'_>,
    link: &str,
    key: &str,
) -> Result<Vec<SaleReceipt>, SaleRefusal> {
    let (perf, _) = cancelled_performance(tx, key)?;
    let lines: Vec<i64> = tx
        .prepare_cached(
            "SELECT id FROM sale_line
             WHERE performance = ?1 AND link = ?2 AND operation = 'SALE' AND active = 1
             ORDER BY id",
        )?
        .query_map((perf, link), |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    lines.into_iter().map(|line| refund(tx, line)).collect()
}

/// Which lines [`list`] returns.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter<'a> {
    pub link: Option<&'a str>,
    /// A local performance's id or code.
    pub performance: Option<&'a str>,
    /// Only the lines not yet sent to the manager.
    pub unexported: bool,
    /// Only the valid sales of a cancelled performance (`performance` must
    /// name one): the tickets to refund.
    pub to_refund: bool,
    /// Only the lines the manager resolved (accepted or dismissed after
    /// rejecting them), as told in its CONTINGENT files.
    pub disputed: bool,
}

/// The manager's decision on a line, as its CONTINGENT file told it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolutionView {
    /// `accepted` or `dismissed`.
    pub decision: String,
    pub reason: String,
    /// When the manager decided (UTC).
    pub decided: String,
    /// The CONTINGENT payload that told it.
    pub file: String,
}

/// A sale or refund line, with local codes, for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineView {
    pub id: i64,
    pub link: String,
    pub operation: String,
    pub time: String,
    pub order: String,
    pub refund_of: Option<i64>,
    pub product: String,
    pub performance: String,
    pub place: String,
    pub seat_category: String,
    pub tariff: String,
    pub audience: String,
    pub amount: i64,
    pub currency: String,
    pub price: String,
    pub active: bool,
    pub exported_in: Option<i64>,
    /// The manager's decision on the line, when it rejected it and then
    /// resolved it.
    pub resolution: Option<ResolutionView>,
}

impl LineView {
    /// The line's state in words: sold, refunded, refund of N, and what the
    /// manager decided ("dismissed by the manager: <reason>").
    pub fn state(&self) -> String {
        let mut state = match (self.operation.as_str(), self.active) {
            ("REFUND", _) => format!("refund of {}", self.refund_of.unwrap_or(0)),
            (_, true) => "sold".to_owned(),
            (_, false) => "refunded".to_owned(),
        };
        match &self.resolution {
            Some(r) if r.decision == "dismissed" => {
                state.push_str(&format!(", dismissed by the manager: {}", r.reason));
            }
            Some(r) => state.push_str(&format!(", accepted by the manager ({})", r.reason)),
            None => {}
        }
        state
    }
}

const VIEW_SQL: &str = "SELECT l.id, l.link, l.operation, l.time, l.order_ref, l.refund_of,
        p.code, f.code,
        CASE WHEN l.seat IS NOT NULL THEN b.code || ' ' || r.code || ' ' || s.number ELSE z.code END,
        c.code, t.code, a.code, l.amount, l.currency, l.active, l.exported_in,
        x.decision, x.reason, x.decided, x.file
   FROM sale_line l
   LEFT JOIN sale_line_resolution x ON x.line = l.id
   JOIN product p ON p.id = l.product
   JOIN performance f ON f.id = l.performance
   LEFT JOIN seat s ON s.id = l.seat
   LEFT JOIN seat_row r ON r.id = s.row
   LEFT JOIN block b ON b.id = r.block
   LEFT JOIN zone z ON z.id = l.zone
   JOIN seat_category c ON c.id = l.seat_category
   JOIN tariff_type t ON t.id = l.tariff_type
   JOIN audience_subcategory a ON a.id = l.audience_subcategory";

fn view_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LineView> {
    let amount: i64 = r.get(12)?;
    let currency: String = r.get(13)?;
    let price = match Currency::new(&currency) {
        Ok(c) => Money {
            minor: amount,
            currency: c,
        }
        .to_string(),
        Err(_) => format!("{amount} {currency}"),
    };
    Ok(LineView {
        id: r.get(0)?,
        link: r.get(1)?,
        operation: r.get(2)?,
        time: r.get(3)?,
        order: r.get(4)?,
        refund_of: r.get(5)?,
        product: r.get(6)?,
        performance: r.get(7)?,
        place: r.get(8)?,
        seat_category: r.get(9)?,
        tariff: r.get(10)?,
        audience: r.get(11)?,
        amount,
        currency,
        price,
        active: r.get::<_, i64>(14)? == 1,
        exported_in: r.get(15)?,
        resolution: match r.get::<_, Option<String>>(16)? {
            Some(decision) => Some(ResolutionView {
                decision,
                reason: r.get(17)?,
                decided: r.get(18)?,
                file: r.get(19)?,
            }),
            None => None,
        },
    })
}

pub(super) fn view_of(conn: &Connection, line: i64) -> Result<LineView, rusqlite::Error> {
    conn.prepare_cached(&format!("{VIEW_SQL} WHERE l.id = ?1"))?
        .query_row([line], view_row)
}

/// The sale and refund lines, in line order.
pub fn list(conn: &Connection, filter: &Filter<'_>) -> Result<Vec<LineView>, DomainError> {
    if filter.to_refund {
        let Some(key) = filter.performance else {
            return Err(DomainError::Invalid {
                object: "the tickets to refund".to_owned(),
                problem: "expected the cancelled performance whose tickets to list".to_owned(),
            });
        };
        cancelled_performance(conn, key).map_err(|e| match e {
            SaleRefusal::Domain(d) => d,
            other => DomainError::Invalid {
                object: format!("performance {key:?}"),
                problem: other.to_string(),
            },
        })?;
    }
    let performance = match filter.performance {
        None => None,
        Some(key) => match by_id_or_code(conn, "performance", key, None)? {
            Some((id, _)) => Some(id),
            None => {
                return Err(DomainError::Invalid {
                    object: format!("performance {key:?}"),
                    problem: "expected a local performance id or code (stxd catalogue list)"
                        .to_owned(),
                });
            }
        },
    };
    let sql = format!(
        "{VIEW_SQL} WHERE (?1 IS NULL OR l.link = ?1) AND (?2 IS NULL OR l.performance = ?2)
           AND (?3 = 0 OR l.exported_in IS NULL)
           AND (?4 = 0 OR (l.operation = 'SALE' AND l.active = 1))
           AND (?5 = 0 OR x.decision IS NOT NULL) ORDER BY l.id"
    );
    let rows = conn
        .prepare(&sql)?
        .query_map(
            (
                filter.link,
                performance,
                i64::from(filter.unexported),
                i64::from(filter.to_refund),
                i64::from(filter.disputed),
            ),
            view_row,
        )?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}
