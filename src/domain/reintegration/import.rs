//! The import of one SALES file: the link's setup found, each line taken
//! as a ticket (booked or rejected), the orders and the pending account
//! written, and the outcome counted.

use rusqlite::OptionalExtension;

use super::super::{DomainError, held};
use super::cache::Cache;
use super::{
    Booked, Context, DUPLICATE_MESSAGES, IMPORT_CACHE_KIB, SalesImport, SalesOutcome, Setup, Stop,
    op_str, record_digest, record_text, setup, sql_id,
};
use crate::format::sales;
use crate::format::sales::Line;
use crate::format::sales::Operation;
use crate::format::sales::Ticket;
use crate::store::runs;
use crate::store::runs::Level;
use crate::store::unix_micros;
use rusqlite::Transaction;
use std::collections::BTreeMap;

/// A line received: booked, or rejected (a rejected line received again is
/// written over; a booked one never is).
const RECEIVED_LINE: &str = "INSERT INTO sales_line (link, line, operation, status, run, position, code, reason, record, digest, ticket)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
     ON CONFLICT (link, line) DO UPDATE SET
         operation = excluded.operation, status = excluded.status, run = excluded.run,
         position = excluded.position, code = excluded.code, reason = excluded.reason,
         record = excluded.record, digest = excluded.digest, ticket = excluded.ticket
     WHERE sales_line.status = 'rejected'";

/// A line received before, as a repeat of it names it: the file, the
/// position in it, the text (lines booked before the digest was kept) and
/// the digest.
type Received = (String, String, String, Option<i64>);

/// The link's order of a distributor's order reference.
const FIND_ORDER: &str = "SELECT id FROM sales_order WHERE link = ?1 AND reference = ?2";

/// A new order of the link, on its setup.
const ADD_ORDER: &str = "INSERT INTO sales_order (link, reference, channel, point_of_sale, payment_method, contact, created)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";

impl<'t> SalesImport<'t> {
    /// Finds the link's setup; a missing piece fails the file.
    pub fn new(tx: &'t Transaction<'t>, ctx: Context<'t>) -> Result<Self, DomainError> {
        let setup = setup(tx, &ctx)?;
        let cache_size: i64 = tx.pragma_query_value(None, "cache_size", |r| r.get(0))?;
        tx.pragma_update(None, "cache_size", -IMPORT_CACHE_KIB)?;
        Ok(SalesImport {
            tx,
            ctx,
            setup,
            outcome: SalesOutcome::default(),
            acks: BTreeMap::new(),
            quiet_duplicates: 0,
            overrides: Vec::new(),
            overridden: Vec::new(),
            cache: Cache::default(),
            now: time::OffsetDateTime::now_utc(),
            cache_size,
            statements: super::LineStatements::default(),
            counted: super::LineCounts::default(),
        })
    }

    /// The setup lines are booked on.
    pub fn setup(&self) -> Setup {
        self.setup
    }

    /// Books, rejects or skips one line. `line` = the physical line number in
    /// the file (for positions in messages). An `Err` fails the whole file.
    pub fn line(&mut self, record: &Line, line: u64) -> Result<(), DomainError> {
        match record {
            Line::Ack(a) => {
                let v = self.acks.entry(a.performance.get()).or_insert(0);
                *v = (*v).max(a.contingent_version);
                Ok(())
            }
            Line::Ticket(t) => self
                .ticket(t, line)
                .map_err(|e| e.locate(self.ctx.file, || crate::format::Position::line(line))),
        }
    }

    /// Ends the import and returns what it did.
    pub fn finish(mut self) -> Result<SalesOutcome, DomainError> {
        if self.quiet_duplicates > DUPLICATE_MESSAGES {
            let more = self.quiet_duplicates - DUPLICATE_MESSAGES;
            runs::message(
                self.tx,
                self.ctx.run,
                Level::Info,
                "already-booked",
                Some(self.ctx.file),
                &format!(
                    "{more} more line{} already booked before; nothing done (only the first {DUPLICATE_MESSAGES} are listed)",
                    if more == 1 { "" } else { "s" }
                ),
            )?;
        }
        self.counted.write(self.tx, self.ctx.link)?;
        let mut outcome = std::mem::take(&mut self.outcome);
        for (performance, version) in std::mem::take(&mut self.acks) {
            let performance =
                crate::ident::TechId::new(performance).map_err(|e| DomainError::Invalid {
                    object: format!("ack of performance {performance}"),
                    problem: e.to_string(),
                })?;
            outcome.acks.push(sales::Ack {
                performance,
                contingent_version: version,
            });
        }
        // Acknowledgements apply after every ticket line of the file: a seat
        // sold before its release was acknowledged is booked first, then the
        // release frees what is left (safe contingent shrink).
        for ack in &outcome.acks {
            let done = crate::domain::contingent::acknowledge(
                self.tx,
                self.ctx.link,
                ack.performance,
                ack.contingent_version,
            );
            match done {
                Ok(done) => outcome.acknowledged.push(done),
                Err(e @ (DomainError::Invalid { .. } | DomainError::Missing { .. })) => {
                    runs::message(
                        self.tx,
                        self.ctx.run,
                        Level::Warning,
                        "ack-refused",
                        Some(&format!("performance {}", ack.performance)),
                        &e.to_string(),
                    )?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(outcome)
    }

    fn ticket(&mut self, t: &Ticket, line: u64) -> Result<(), DomainError> {
        let record = record_text(t)?;
        let digest = record_digest(&record);
        let position = format!("line {line}");
        let id = sql_id(t.line)?;
        let tx = self.tx;
        let ctx = self.ctx;
        // A line id above every one received (the usual case: the
        // distributor numbers its lines in order) has no row to look up.
        let seen = self.cache.maybe_received(tx, ctx.link, id)?;
        // Whether the line was received before and rejected: the write
        // below is then its second status, not a new line (the count).
        let mut was_rejected = false;
        if seen {
            let previous: Option<(String, Received)> = tx
                .prepare_cached(
                    "SELECT l.status, coalesce(r.file, '?'), 'line ' || l.position, l.record, l.digest
                     FROM sales_line l JOIN run r ON r.id = l.run
                     WHERE l.link = ?1 AND l.line = ?2",
                )?
                .query_row((ctx.link, id), |r| {
                    Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
                })
                .optional()?;
            match previous {
                Some((status, booked)) if status == "booked" => {
                    return self.duplicate(t, &position, booked, (&record, digest));
                }
                Some(_) => was_rejected = true,
                None => {}
            }
            // A resolution names a received line (its foreign key).
            if self.dismissed_again(t, id, &position)? {
                return Ok(());
            }
        }
        let result = match t.operation {
            Operation::Sale => self.sale(t, &position),
            Operation::Refund => self.refund(t),
        };
        let mut unbooked = None;
        let (status, ticket, code, reason) = match result {
            Ok(Booked::Sale(ticket)) => {
                self.outcome.booked += 1;
                ("booked", Some(ticket), None, None)
            }
            Ok(Booked::Refund(ticket)) => {
                self.outcome.refunded += 1;
                ("booked", Some(ticket), None, None)
            }
            Ok(Booked::UnbookedRefund { sale, code, reason }) => {
                self.outcome.unbooked_refunds += 1;
                let why = super::unbooked::why(sale, &code, &reason);
                unbooked = Some((sale, code));
                ("rejected", None, Some(super::unbooked::CODE), Some(why))
            }
            Err(Stop::Fail(e)) => return Err(e),
            Err(Stop::Reject { code, reason }) => {
                self.outcome.rejected += 1;
                runs::message(
                    tx,
                    ctx.run,
                    Level::Error,
                    code,
                    Some(&position),
                    &format!(
                        "line id {} ({} of order {}) rejected: {reason}",
                        t.line,
                        op_str(t.operation),
                        t.order
                    ),
                )?;
                ("rejected", None, Some(code), Some(reason))
            }
        };
        // A booked line keeps the digest of its text and names its ticket
        // (sold or cancelled); a rejected one keeps its text too (`stxd
        // sales rejects` lists it).
        let kept = if code.is_some() { record.as_str() } else { "" };
        held(&mut self.statements.line, tx, RECEIVED_LINE)?.execute(rusqlite::params![
            ctx.link,
            id,
            op_str(t.operation),
            status,
            ctx.run,
            i64::try_from(line).unwrap_or(i64::MAX),
            code,
            reason,
            kept,
            digest,
            ticket,
        ])?;
        self.cache.received(id);
        self.counted.received(status, was_rejected);
        if let Some((sale, sale_code)) = unbooked {
            self.close_unbooked(t, id, &position, sale, &sale_code)?;
        }
        Ok(())
    }

    /// A line already booked: nothing done, a message (an info when the
    /// line is the same, a warning when its line id was reused for another).
    fn duplicate(
        &mut self,
        t: &Ticket,
        position: &str,
        (file, at, before, before_digest): Received,
        (record, digest): (&str, i64),
    ) -> Result<(), DomainError> {
        let (tx, ctx) = (self.tx, self.ctx);
        self.outcome.duplicates += 1;
        // Lines booked before the digest was kept have their text.
        let same = match before_digest {
            Some(d) => d == digest,
            None => before == record,
        };
        if same {
            self.quiet_duplicates += 1;
            if self.quiet_duplicates > DUPLICATE_MESSAGES {
                return Ok(());
            }
            runs::message(
                tx,
                ctx.run,
                Level::Info,
                "already-booked",
                Some(position),
                &format!(
                    "line id {} already booked in {file} ({at}); nothing done",
                    t.line
                ),
            )?;
        } else {
            let booked = if before.is_empty() {
                String::new()
            } else {
                format!("booked: {before}; ")
            };
            runs::message(
                tx,
                ctx.run,
                Level::Warning,
                "already-booked-differs",
                Some(position),
                &format!(
                    "line id {} was booked from {file} ({at}) with other content; this line is ignored: the distributor reused a line id ({booked}found: {record})",
                    t.line
                ),
            )?;
        }
        Ok(())
    }

    /// The manager's order for the distributor's order reference, created on
    /// the link's setup the first time.
    pub(super) fn order(&mut self, t: &Ticket) -> Result<i64, Stop> {
        let tx = self.tx;
        let link = self.ctx.link;
        let reference = t.order.as_str();
        if let Some((last, id)) = &self.cache.last_order
            && last == reference
        {
            return Ok(*id);
        }
        let found: Option<i64> = held(&mut self.statements.find_order, tx, FIND_ORDER)?
            .query_row((link, reference), |r| r.get(0))
            .optional()?;
        if let Some(id) = found {
            self.cache.last_order = Some((reference.to_owned(), id));
            return Ok(id);
        }
        let s = self.setup;
        held(&mut self.statements.add_order, tx, ADD_ORDER)?.execute((
            link,
            reference,
            s.channel,
            s.point_of_sale,
            s.payment_method,
            s.contact,
            unix_micros(self.now),
        ))?;
        let id = tx.last_insert_rowid();
        self.cache.last_order = Some((reference.to_owned(), id));
        Ok(id)
    }
}
