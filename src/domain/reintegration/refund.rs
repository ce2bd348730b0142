//! A refund line booked: the sale it refunds found and checked, then the
//! refund written.

use rusqlite::OptionalExtension;

use super::super::DomainError;
use super::{Booked, SalesImport, Spot, Stop, place_text, reject, resolve, sql_id};
use crate::format::sales::Ticket;
use crate::store::unix_micros;

impl<'t> SalesImport<'t> {
    pub(super) fn refund(&mut self, t: &Ticket) -> Result<Booked, Stop> {
        let tx = self.tx;
        let link = self.ctx.link;
        let (of, sold) = match self.refunded_sale(t)? {
            Refunded::Booked(of, sold) => (of, sold),
            Refunded::Unbooked { sale, code, reason } => {
                return Ok(Booked::UnbookedRefund { sale, code, reason });
            }
        };
        type Sold = (
            i64,
            i64,
            Option<i64>,
            Option<i64>,
            i64,
            String,
            String,
            Option<i64>,
        );
        // The ticket the sale's line booked (its `sales_line` row names it).
        let ticket: Option<Sold> = match sold {
            None => None,
            Some(id) => tx
                .prepare_cached(
                    "SELECT id, performance, seat, zone, amount, currency, state, refund_line
                       FROM ticket WHERE id = ?1",
                )?
                .query_row([id], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                    ))
                })
                .optional()?,
        };
        let Some((ticket, perf, seat, zone, amount, currency, state, refund_line)) = ticket else {
            return Err(Stop::Fail(DomainError::Invalid {
                object: format!("sale line id {of} of link {link}"),
                problem: "booked without a ticket: the store is inconsistent".to_owned(),
            }));
        };
        if state != "valid" {
            return Err(reject(
                "refund-twice",
                format!(
                    "sale line id {of} was already refunded by line id {}",
                    refund_line.unwrap_or_default()
                ),
            ));
        }
        if perf != t.performance.get() {
            return Err(reject(
                "refund-differs",
                format!(
                    "sale line id {of} is for performance {perf}, the refund names {}",
                    t.performance
                ),
            ));
        }
        let configuration: i64 = tx
            .prepare_cached("SELECT configuration FROM performance WHERE id = ?1")?
            .query_row([perf], |r| r.get(0))?;
        let sold_spot = match (seat, zone) {
            (Some(s), _) => Spot::Seat(s),
            (None, Some(z)) => Spot::Zone(z),
            (None, None) => {
                return Err(Stop::Fail(DomainError::Invalid {
                    object: format!("ticket {ticket}"),
                    problem: "has neither seat nor zone".to_owned(),
                }));
            }
        };
        let same_place = match resolve(tx, &t.place, configuration, perf) {
            Ok((spot, _)) => spot == sold_spot,
            Err(Stop::Reject { .. }) => false,
            Err(e) => return Err(e),
        };
        if !same_place {
            return Err(reject(
                "refund-differs",
                format!(
                    "sale line id {of} is for another place than {}",
                    place_text(&t.place)
                ),
            ));
        }
        if amount != t.amount || currency != t.currency.as_str() {
            return Err(reject(
                "refund-amount-differs",
                format!(
                    "expected the amount of sale line id {of} ({amount} {currency}), found {} {}",
                    t.amount, t.currency
                ),
            ));
        }
        tx.prepare_cached(
            "UPDATE ticket SET state = 'cancelled', refund_line = ?2, cancelled_at = ?3
              WHERE id = ?1 AND state = 'valid'",
        )?
        .execute((ticket, sql_id(t.line)?, unix_micros(t.time)))?;
        if let Spot::Zone(z) = sold_spot {
            self.cache.zone_booked((perf, z), -1);
        }
        // The pending account takes the amount back through the view: the
        // ticket is cancelled by this line's row.
        Ok(Booked::Refund(ticket))
    }

    /// The sale a REFUND line cancels: a SALE line of the link, booked
    /// (its line id as written and the ticket its row names), or received
    /// and never booked.
    fn refunded_sale(&self, t: &Ticket) -> Result<Refunded, Stop> {
        let tx = self.tx;
        let link = self.ctx.link;
        let Some(of) = t.refund_of else {
            return Err(reject(
                "refund-unknown-sale",
                "a refund without the line id of its sale",
            ));
        };
        let of_id = sql_id(of)?;
        type Line = (String, String, Option<String>, Option<String>, Option<i64>);
        let sale: Option<Line> = tx
            .prepare_cached(
                "SELECT operation, status, code, reason, ticket FROM sales_line WHERE link = ?1 AND line = ?2",
            )?
            .query_row((link, of_id), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .optional()?;
        match sale {
            None => Err(reject(
                "refund-unknown-sale",
                format!("refunds line id {of}, a sale never received from link {link}"),
            )),
            Some((op, ..)) if op != "SALE" => Err(reject(
                "refund-unknown-sale",
                format!("refunds line id {of}, which is a {op}, not a sale"),
            )),
            Some((_, status, code, reason, _)) if status != "booked" => Ok(Refunded::Unbooked {
                sale: of_id,
                code: code.unwrap_or_default(),
                reason: reason.unwrap_or_default(),
            }),
            Some((.., ticket)) => Ok(Refunded::Booked(of, ticket)),
        }
    }
}

/// The sale a refund names.
enum Refunded {
    /// Booked: its line id as written, and the ticket its line names
    /// (`None` only in an inconsistent store).
    Booked(u64, Option<i64>),
    /// Received and rejected (open or resolved): never booked.
    Unbooked {
        sale: i64,
        code: String,
        reason: String,
    },
}
