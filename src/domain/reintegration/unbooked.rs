//! Lines that must never be booked, whatever comes next: a line id the
//! manager dismissed, sent again (even fixed), is refused (`line-dismissed`),
//! and the refund of a sale never booked is closed with it.
//!
//! # A dismissed line sent again
//!
//! A dismissal is final: the distributor was told (a RESOLUTION line of a
//! CONTINGENT file), and the customer was refunded or will be. The same line
//! id coming again is refused line by line with the date of the dismissal
//! and the way to sell again: a new sale, with a new line id. Its
//! `sales_line` row is left as the dismissal found it.
//!
//! # The refund of an unbooked sale
//!
//! A REFUND whose SALE line was received but rejected (still open, or
//! dismissed) has no ticket to cancel, and rejecting it (`refund-unknown-sale`)
//! would leave a difference no one can close: the distributor's sale is no
//! longer active, while the manager never booked it. So the refund is closed
//! instead: its `sales_line` row is `rejected` with the code
//! [`CODE`] (for the record), and a `dismissed` resolution by `stxd` closes
//! it; the sale, when still open, is dismissed with it. The reconciliation
//! sets dismissed lines aside (sales minus refunds): the pair nets to zero,
//! and both travel to the distributor in the next CONTINGENT file like any
//! resolution.

use rusqlite::OptionalExtension;

use super::super::DomainError;
use super::{SalesImport, op_str};
use crate::format::sales::Ticket;
use crate::store::format_timestamp;
use crate::store::runs::{self, Level};

/// The code a refund of an unbooked sale is closed with.
pub(super) const CODE: &str = "refund-of-unbooked-sale";

/// Who closes such lines in `sales_line_resolution.by_user`.
const BY: &str = "stxd";

/// The reason recorded on the refund line.
pub(super) fn why(sale: i64, code: &str, reason: &str) -> String {
    format!(
        "refund of an unbooked sale: line id {sale} was rejected ({code}: {reason}); nothing to cancel, refund and sale closed together"
    )
}

impl SalesImport<'_> {
    /// A line id the manager dismissed, sent again: refused (an error in
    /// the run, counted rejected), its row untouched. `true` when it was.
    pub(super) fn dismissed_again(
        &mut self,
        t: &Ticket,
        id: i64,
        position: &str,
    ) -> Result<bool, DomainError> {
        let (tx, ctx) = (self.tx, self.ctx);
        let dismissed: Option<(String, String, String)> = tx
            .prepare_cached(
                "SELECT at, by_user, reason FROM sales_line_resolution
                 WHERE link = ?1 AND line = ?2 AND decision = 'dismissed'",
            )?
            .query_row((ctx.link, id), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let Some((at, by, reason)) = dismissed else {
            return Ok(false);
        };
        self.outcome.rejected += 1;
        let day = at.get(..10).unwrap_or(&at);
        runs::message(
            tx,
            ctx.run,
            Level::Error,
            "line-dismissed",
            Some(position),
            &format!(
                "line id {} ({} of order {}) rejected: it was dismissed by {by} on {day} ({reason}) and is never booked, even sent again; to sell the place again, make a new sale (it gets a new line id)",
                t.line,
                op_str(t.operation),
                t.order
            ),
        )?;
        Ok(true)
    }

    /// Closes the refund `refund` (just recorded as rejected with [`CODE`])
    /// of the unbooked sale `sale`: both dismissed by `stxd`, the sale only
    /// if no one resolved it yet.
    pub(super) fn close_unbooked(
        &mut self,
        t: &Ticket,
        refund: i64,
        position: &str,
        sale: i64,
        sale_code: &str,
    ) -> Result<(), DomainError> {
        let (tx, ctx) = (self.tx, self.ctx);
        let mut insert = tx.prepare_cached(
            "INSERT INTO sales_line_resolution
                 (link, line, decision, code, overridden, reason, by_user, at, run, operation, amount, currency)
             VALUES (?1, ?2, 'dismissed', ?3, NULL, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (link, line) DO NOTHING",
        )?;
        let code = if sale_code.is_empty() {
            "rejected"
        } else {
            sale_code
        };
        let sale_closed = insert.execute(rusqlite::params![
            ctx.link,
            sale,
            code,
            format!(
                "refunded at the distributor by line id {} before it was resolved: never booked",
                t.line
            ),
            BY,
            format_timestamp(self.now),
            ctx.run,
            "SALE",
            t.amount,
            t.currency.as_str(),
        ])?;
        insert.execute(rusqlite::params![
            ctx.link,
            refund,
            CODE,
            format!("refund of line id {sale}, a sale never booked: nothing to cancel"),
            BY,
            format_timestamp(self.now),
            ctx.run,
            "REFUND",
            t.amount,
            t.currency.as_str(),
        ])?;
        let sale_too = if sale_closed == 1 {
            format!("; sale line id {sale} ({code}) dismissed with it")
        } else {
            format!("; sale line id {sale} was already resolved")
        };
        runs::message(
            tx,
            ctx.run,
            Level::Warning,
            CODE,
            Some(position),
            &format!(
                "line id {} (REFUND of order {}) closed without booking: it refunds line id {sale}, a sale the manager never booked{sale_too}",
                t.line, t.order
            ),
        )?;
        Ok(())
    }
}
