//! Sales reintegration at the manager: the distributor's SALES file booked
//! exactly once.
//!
//! Takes the lines of one SALES file, pushed one at a time by the inbound
//! pipeline inside the transaction that also journals the file and holds its
//! run, and books them on the link's setup: one `sales_order` per distributor
//! order on the external sales interface's `stx_file` channel, its point of
//! sale, a payment method of that point of sale that allows the pending
//! account, and the authorised contact. It returns a [`SalesOutcome`] with the
//! counts and the contingent acknowledgements (ACK lines) for the caller to
//! apply after the tickets. It never reads files, never commits and never
//! finishes the run.
//!
//! # Exactly once, line by line
//!
//! Every SALE or REFUND line is keyed by the distributor's line id in
//! `sales_line`, per link. A line already booked (in this file or any other)
//! is a duplicate: nothing is done, an info message says where it was booked
//! (a warning when its content differs: the distributor reused a line id);
//! beyond the first 100 identical duplicates of a file, one summary message
//! counts the rest. A line that breaks a business rule is rejected: its row keeps the code, the
//! reason and the record (the canonical SALES line, for `stxd sales rejects`)
//! and the run gets an error message; the good lines of the file are booked.
//! A rejected line that comes again, fixed, is booked (its row updated).
//!
//! # What a sale must satisfy (codes of the rejections)
//!
//! In this order: the performance exists (`unknown-performance`); the seat
//! category, tariff type, audience subcategory and VAT code exist
//! (`unknown-seat-category`, `unknown-tariff-type`,
//! `unknown-audience-subcategory`, `unknown-vat-code`); the seat (block, row
//! code, seat number) or zone exists in the performance's configuration
//! (`unknown-seat`, `unknown-zone`) and has the line's seat category
//! (`seat-category-differs`); the seat is in this link's contingent, allotted
//! or held — a seat released but not yet acknowledged was still the
//! distributor's when it sold it (`seat-not-in-contingent`); for a zone, the
//! link's valid tickets stay within its quantity plus the places held
//! (`zone-not-in-contingent`, `zone-quantity-exhausted`); the seat has no
//! valid ticket (`seat-sold-twice`); a product of the performance is in a
//! product profile of the channel (`product-not-on-channel`) and allows the
//! audience subcategory (`audience-not-allowed`); the amount and currency
//! equal the price of its rate table (`no-price`, `price-differs`); the VAT
//! code is the activity's (`vat-code-differs`).
//!
//! # What a refund must satisfy
//!
//! `refund_of` names a booked SALE line of this link (`refund-unknown-sale`)
//! whose ticket is still valid (`refund-twice`); the refund repeats the sale's
//! performance and place (`refund-differs`) and its amount and currency
//! (`refund-amount-differs`). It cancels the ticket and puts the negative
//! amount on the pending account; the seat stays in the distributor's
//! contingent (its allotment row is not touched), so the distributor may sell
//! it again.
//!
//! # The setup
//!
//! Found once, when the import starts; a missing piece fails the whole file
//! ([`DomainError::Invalid`]; `stxd check` names the fix): nothing can be
//! booked without it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::Write;

use rusqlite::{Connection, OptionalExtension, Transaction};

use super::DomainError;
use crate::format::sales::{self, Line, Operation, Place, Ticket};
use crate::store::runs::{self, Level};
use crate::store::{StoreError, format_timestamp, now};

/// Who and what a reintegration works for.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The link's name (`opera-tourism`): the key of orders, tickets and lines.
    pub link: &'a str,
    /// The link's login (`TOURISM_OPE@TOURISM`): finds the external sales
    /// interface.
    pub login: &'a str,
    /// The distributor's institution code (`TOURISM`): finds the interface
    /// when no login matches, and must be the interface's distributor.
    pub distributor: &'a str,
    /// The payload being applied (named in duplicates and rejected lines).
    pub file: &'a str,
    /// The run the pipeline started for this file; messages go there.
    pub run: i64,
}

/// What a reintegration did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SalesOutcome {
    /// SALE lines booked (a ticket each).
    pub booked: u64,
    /// REFUND lines booked (a ticket cancelled each).
    pub refunded: u64,
    /// Lines already booked before: nothing done.
    pub duplicates: u64,
    /// Lines rejected, each kept with its reason.
    pub rejected: u64,
    /// The contingent versions the distributor acknowledges, the highest per
    /// performance, by performance id.
    pub acks: Vec<sales::Ack>,
    /// What each acknowledgement did, applied by [`SalesImport::finish`]
    /// after every ticket line (one refused is logged as a warning).
    pub acknowledged: Vec<super::contingent::AckOutcome>,
}

impl SalesOutcome {
    /// Ticket lines read (ACK lines not counted).
    pub fn lines(&self) -> u64 {
        self.booked + self.refunded + self.duplicates + self.rejected
    }
}

/// Where the link's reintegrated sales are booked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setup {
    pub interface: i64,
    pub channel: i64,
    pub point_of_sale: i64,
    pub payment_method: i64,
    pub contact: i64,
}

fn setup_error(ctx: &Context<'_>, problem: String) -> DomainError {
    DomainError::Invalid {
        object: format!("sales reintegration of link {}", ctx.link),
        problem: format!(
            "{problem}; nothing of {} was booked (stxd check names the fix)",
            ctx.file
        ),
    }
}

/// The link's booking setup: its external sales interface (by login, else by
/// distributor), the interface's `stx_file` channel in operation, its point of
/// sale (or else the first of the channel) in operation with a payment method
/// that allows the pending account, and its contact (or else the first one)
/// authorised for the pending account.
pub fn setup(conn: &Connection, ctx: &Context<'_>) -> Result<Setup, DomainError> {
    type Esi = (i64, String, i64, Option<i64>, Option<i64>);
    let row = |r: &rusqlite::Row<'_>| -> rusqlite::Result<Esi> {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    };
    const ESI: &str =
        "SELECT id, distributor, channel, point_of_sale, contact FROM external_sales_interface";
    let by_login = conn
        .prepare_cached(&format!("{ESI} WHERE login = ?1"))?
        .query_row([ctx.login], row)
        .optional()?;
    let esi = match by_login {
        Some(e) => Some(e),
        None => conn
            .prepare_cached(&format!("{ESI} WHERE distributor = ?1 ORDER BY id LIMIT 1"))?
            .query_row([ctx.distributor], row)
            .optional()?,
    };
    let Some((interface, distributor, channel, pos, contact)) = esi else {
        return Err(setup_error(
            ctx,
            format!(
                "no external sales interface has login {} or distributor {}",
                ctx.login, ctx.distributor
            ),
        ));
    };
    if distributor != ctx.distributor {
        return Err(setup_error(
            ctx,
            format!(
                "external sales interface {interface} names distributor {distributor}, not {}",
                ctx.distributor
            ),
        ));
    }
    let kind: Option<(String, bool)> = conn
        .prepare_cached("SELECT kind, in_operation FROM sales_channel WHERE id = ?1")?
        .query_row([channel], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match kind {
        Some((k, true)) if k == "stx_file" => {}
        Some((k, in_op)) => {
            return Err(setup_error(
                ctx,
                format!(
                    "sales channel {channel} of external sales interface {interface} is {}of kind {k}; expected an stx_file channel in operation",
                    if in_op { "" } else { "not in operation and " }
                ),
            ));
        }
        None => {
            return Err(setup_error(
                ctx,
                format!(
                    "sales channel {channel} of external sales interface {interface} does not exist"
                ),
            ));
        }
    }
    // The point of sale: the interface's, else the first ready one of the
    // channel; with its first payment method allowing the pending account.
    let ready = conn
        .prepare_cached(
            "SELECT p.id, min(m.id) FROM point_of_sale p
               LEFT JOIN point_of_sale_payment_method pm ON pm.point_of_sale = p.id
               LEFT JOIN payment_method m ON m.id = pm.payment_method AND m.allows_pending_account = 1
             WHERE p.channel = ?1 AND p.in_operation = 1 AND (?2 IS NULL OR p.id = ?2)
             GROUP BY p.id HAVING min(m.id) IS NOT NULL ORDER BY p.id LIMIT 1",
        )?
        .query_row((channel, pos), |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))
        .optional()?;
    let Some((point_of_sale, payment_method)) = ready else {
        return Err(setup_error(
            ctx,
            match pos {
                Some(p) => format!(
                    "point of sale {p} of external sales interface {interface} is not on channel {channel}, not in operation, or has no payment method allowing the pending account"
                ),
                None => format!(
                    "channel {channel} has no point of sale in operation with a payment method allowing the pending account"
                ),
            },
        ));
    };
    let contact_id: Option<i64> = conn
        .prepare_cached(
            "SELECT id FROM contact WHERE pending_account_authorised = 1 AND (?1 IS NULL OR id = ?1)
             ORDER BY id LIMIT 1",
        )?
        .query_row([contact], |r| r.get(0))
        .optional()?;
    let Some(contact) = contact_id else {
        return Err(setup_error(
            ctx,
            match contact {
                Some(c) => format!(
                    "contact {c} of external sales interface {interface} does not exist or is not authorised for the pending account"
                ),
                None => "no contact is authorised for the pending account".to_owned(),
            },
        ));
    };
    Ok(Setup {
        interface,
        channel,
        point_of_sale,
        payment_method,
        contact,
    })
}

// ------------------------------------------------------------------ import

/// Why a line is not booked, or why the whole file fails.
enum Stop {
    Reject { code: &'static str, reason: String },
    Fail(DomainError),
}

impl From<DomainError> for Stop {
    fn from(e: DomainError) -> Stop {
        Stop::Fail(e)
    }
}

impl From<rusqlite::Error> for Stop {
    fn from(e: rusqlite::Error) -> Stop {
        Stop::Fail(e.into())
    }
}

impl From<StoreError> for Stop {
    fn from(e: StoreError) -> Stop {
        Stop::Fail(e.into())
    }
}

fn reject(code: &'static str, reason: impl Into<String>) -> Stop {
    Stop::Reject {
        code,
        reason: reason.into(),
    }
}

/// What a booked line was.
enum Booked {
    Sale,
    Refund,
}

/// A place resolved in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spot {
    Seat(i64),
    Zone(i64),
}

/// A SALES file being reintegrated. Create it, push every line with
/// [`SalesImport::line`], then [`SalesImport::finish`].
pub struct SalesImport<'t> {
    tx: &'t Transaction<'t>,
    ctx: Context<'t>,
    setup: Setup,
    outcome: SalesOutcome,
    /// Highest acknowledged version per performance.
    acks: BTreeMap<i64, u64>,
    /// Identical lines already booked, seen in this file.
    quiet_duplicates: u64,
}

/// Identical duplicates logged one by one; beyond, one summary message (a
/// large overlapping file must not flood the execution log).
const DUPLICATE_MESSAGES: u64 = 100;

impl<'t> SalesImport<'t> {
    /// Finds the link's setup; a missing piece fails the file.
    pub fn new(tx: &'t Transaction<'t>, ctx: Context<'t>) -> Result<Self, DomainError> {
        let setup = setup(tx, &ctx)?;
        Ok(SalesImport {
            tx,
            ctx,
            setup,
            outcome: SalesOutcome::default(),
            acks: BTreeMap::new(),
            quiet_duplicates: 0,
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
            Line::Ticket(t) => self.ticket(t, line),
        }
    }

    /// Ends the import and returns what it did.
    pub fn finish(self) -> Result<SalesOutcome, DomainError> {
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
        let mut outcome = self.outcome;
        for (performance, version) in self.acks {
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
            let done = super::contingent::acknowledge(
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
        let position = format!("line {line}");
        let id = sql_id(t.line)?;
        let tx = self.tx;
        let ctx = self.ctx;
        let previous: Option<(String, String, String)> = tx
            .prepare_cached(
                "SELECT file, position, record FROM sales_line
                 WHERE link = ?1 AND line = ?2 AND status = 'booked'",
            )?
            .query_row((ctx.link, id), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        if let Some((file, at, before)) = previous {
            self.outcome.duplicates += 1;
            if before == record {
                self.quiet_duplicates += 1;
                if self.quiet_duplicates > DUPLICATE_MESSAGES {
                    return Ok(());
                }
                runs::message(
                    tx,
                    ctx.run,
                    Level::Info,
                    "already-booked",
                    Some(&position),
                    &format!(
                        "line id {} already booked in {file} ({at}); nothing done",
                        t.line
                    ),
                )?;
            } else {
                runs::message(
                    tx,
                    ctx.run,
                    Level::Warning,
                    "already-booked-differs",
                    Some(&position),
                    &format!(
                        "line id {} was booked from {file} ({at}) with other content; this line is ignored: the distributor reused a line id (booked: {before}; found: {record})",
                        t.line
                    ),
                )?;
            }
            return Ok(());
        }
        let result = match t.operation {
            Operation::Sale => self.sale(t, &position),
            Operation::Refund => self.refund(t),
        };
        let (status, code, reason) = match result {
            Ok(Booked::Sale) => {
                self.outcome.booked += 1;
                ("booked", None, None)
            }
            Ok(Booked::Refund) => {
                self.outcome.refunded += 1;
                ("booked", None, None)
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
                ("rejected", Some(code), Some(reason))
            }
        };
        tx.prepare_cached(
            "INSERT INTO sales_line (link, line, operation, status, file, position, code, reason, record, updated)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (link, line) DO UPDATE SET
                 operation = excluded.operation, status = excluded.status, file = excluded.file,
                 position = excluded.position, code = excluded.code, reason = excluded.reason,
                 record = excluded.record, updated = excluded.updated
             WHERE sales_line.status = 'rejected'",
        )?
        .execute((
            ctx.link,
            id,
            op_str(t.operation),
            status,
            ctx.file,
            &position,
            code,
            reason,
            &record,
            now(),
        ))?;
        Ok(())
    }

    fn sale(&mut self, t: &Ticket, position: &str) -> Result<Booked, Stop> {
        let tx = self.tx;
        let link = self.ctx.link;
        let perf = t.performance.get();
        let found: Option<(i64, i64)> = tx
            .prepare_cached("SELECT configuration, activity FROM performance WHERE id = ?1")?
            .query_row([perf], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((configuration, activity)) = found else {
            return Err(reject(
                "unknown-performance",
                format!("performance {perf} is unknown here"),
            ));
        };
        for (table, code, what, id) in [
            (
                "seat_category",
                "unknown-seat-category",
                "seat category",
                t.seat_category,
            ),
            (
                "tariff_type",
                "unknown-tariff-type",
                "tariff type",
                t.tariff_type,
            ),
            (
                "audience_subcategory",
                "unknown-audience-subcategory",
                "audience subcategory",
                t.audience_subcategory,
            ),
            ("vat_code", "unknown-vat-code", "VAT code", t.vat_code),
        ] {
            if !super::exists(tx, table, id.get()).map_err(StoreError::Sql)? {
                return Err(reject(code, format!("{what} {id} is unknown here")));
            }
        }
        let (spot, category) = resolve(tx, &t.place, configuration, perf)?;
        if category != t.seat_category.get() {
            return Err(reject(
                "seat-category-differs",
                format!(
                    "{} is of seat category {category}, not {}",
                    place_text(&t.place),
                    t.seat_category
                ),
            ));
        }
        match spot {
            Spot::Seat(seat) => self.check_seat(t, seat, perf, position)?,
            Spot::Zone(zone) => self.check_zone(zone, perf)?,
        }
        self.check_price(t, perf)?;
        let vat: i64 = tx
            .prepare_cached("SELECT vat_code FROM activity WHERE id = ?1")?
            .query_row([activity], |r| r.get(0))?;
        if vat != t.vat_code.get() {
            return Err(reject(
                "vat-code-differs",
                format!(
                    "the VAT code of activity {activity} is {vat}, found {}",
                    t.vat_code
                ),
            ));
        }
        // Book it.
        let order = self.order(t)?;
        let (seat, zone) = match spot {
            Spot::Seat(s) => (Some(s), None),
            Spot::Zone(z) => (None, Some(z)),
        };
        tx.prepare_cached(
            "INSERT INTO ticket (sales_order, link, line, performance, seat, zone, seat_category,
                 tariff_type, audience_subcategory, amount, currency, vat_code, sold_at, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 'valid')",
        )?
        .execute(rusqlite::params![
            order,
            link,
            sql_id(t.line)?,
            perf,
            seat,
            zone,
            t.seat_category.get(),
            t.tariff_type.get(),
            t.audience_subcategory.get(),
            t.amount,
            t.currency.as_str(),
            t.vat_code.get(),
            format_timestamp(t.time),
        ])?;
        let ticket = tx.last_insert_rowid();
        self.pending(ticket, t.amount, t.currency.as_str())?;
        Ok(Booked::Sale)
    }

    /// A SALE line's seat: in the link's contingent (held is accepted, with
    /// an info message) and not sold yet.
    fn check_seat(&self, t: &Ticket, seat: i64, perf: i64, position: &str) -> Result<(), Stop> {
        let tx = self.tx;
        let link = self.ctx.link;
        let held: Option<(String, Option<i64>)> = tx
            .prepare_cached(
                "SELECT state, released_in FROM allotment_seat
                 WHERE performance = ?1 AND seat = ?2 AND link = ?3",
            )?
            .query_row((perf, seat, link), |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((state, released_in)) = held else {
            return Err(reject(
                "seat-not-in-contingent",
                format!(
                    "{} of performance {perf} is not in the contingent of link {link}",
                    place_text(&t.place)
                ),
            ));
        };
        let sold: Option<(String, i64)> = tx
            .prepare_cached(
                "SELECT link, line FROM ticket
                 WHERE performance = ?1 AND seat = ?2 AND state = 'valid'",
            )?
            .query_row((perf, seat), |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((by, line)) = sold {
            return Err(reject(
                "seat-sold-twice",
                format!(
                    "{} of performance {perf} is already sold (line id {line} of link {by})",
                    place_text(&t.place)
                ),
            ));
        }
        if state == "held" {
            runs::message(
                tx,
                self.ctx.run,
                Level::Info,
                "sold-while-held",
                Some(position),
                &format!(
                    "{} of performance {perf} was released in contingent version {} not yet acknowledged; a sale made before the acknowledgement is accepted",
                    place_text(&t.place),
                    released_in.unwrap_or_default()
                ),
            )?;
        }
        Ok(())
    }

    /// A SALE line's zone: in the link's contingent, with a place left
    /// (allotted plus held, less the valid tickets of the link).
    fn check_zone(&self, zone: i64, perf: i64) -> Result<(), Stop> {
        let tx = self.tx;
        let link = self.ctx.link;
        let allotted: Option<(i64, i64)> = tx
            .prepare_cached(
                "SELECT quantity, held FROM allotment_zone
                 WHERE performance = ?1 AND zone = ?2 AND link = ?3",
            )?
            .query_row((perf, zone, link), |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((quantity, held)) = allotted else {
            return Err(reject(
                "zone-not-in-contingent",
                format!(
                    "zone {zone} of performance {perf} has no places in the contingent of link {link}"
                ),
            ));
        };
        let sold: i64 = tx
            .prepare_cached(
                "SELECT count(*) FROM ticket
                 WHERE link = ?1 AND performance = ?2 AND zone = ?3 AND state = 'valid'",
            )?
            .query_row((link, perf, zone), |r| r.get(0))?;
        let limit = quantity.saturating_add(held);
        if sold >= limit {
            return Err(reject(
                "zone-quantity-exhausted",
                format!(
                    "zone {zone} of performance {perf}: all {limit} places of the contingent of link {link} are sold ({quantity} allotted, {held} held)"
                ),
            ));
        }
        Ok(())
    }

    /// The amount must be the price of the rate table of a product of the
    /// performance sold on the channel, for an audience the channel allows.
    fn check_price(&self, t: &Ticket, perf: i64) -> Result<(), Stop> {
        let tx = self.tx;
        let channel = self.setup.channel;
        // Products of the performance in a product profile of the channel,
        // with whether one of those profiles allows the audience.
        let mut st = tx.prepare_cached(
            "SELECT p.id, p.rate_table, rt.code, rt.currency,
                    max(NOT EXISTS (SELECT 1 FROM product_profile_audience a
                                     WHERE a.product_profile = pf.id)
                        OR EXISTS (SELECT 1 FROM product_profile_audience a
                                    WHERE a.product_profile = pf.id
                                      AND a.audience_subcategory = ?3))
               FROM product_performance pp
               JOIN product p ON p.id = pp.product
               JOIN rate_table rt ON rt.id = p.rate_table
               JOIN product_profile_product ppp ON ppp.product = p.id
               JOIN product_profile pf ON pf.id = ppp.product_profile AND pf.channel = ?2
              WHERE pp.performance = ?1
              GROUP BY p.id ORDER BY p.id",
        )?;
        type Candidate = (i64, i64, String, String, bool);
        let rows = st.query_map((perf, channel, t.audience_subcategory.get()), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
        let mut candidates: Vec<Candidate> = Vec::new();
        for r in rows {
            candidates.push(r?);
        }
        if candidates.is_empty() {
            return Err(reject(
                "product-not-on-channel",
                format!(
                    "no product of performance {perf} is in a product profile of sales channel {channel}"
                ),
            ));
        }
        candidates.retain(|c| c.4);
        if candidates.is_empty() {
            return Err(reject(
                "audience-not-allowed",
                format!(
                    "audience subcategory {} is not allowed on sales channel {channel} for performance {perf}",
                    t.audience_subcategory
                ),
            ));
        }
        let mut expected: Option<(i64, String, i64, String)> = None;
        for (_, rate_table, rt_code, currency, _) in &candidates {
            let amount: Option<i64> = tx
                .prepare_cached(
                    "SELECT amount FROM price WHERE rate_table = ?1 AND seat_category = ?2
                       AND tariff_type = ?3 AND audience_subcategory = ?4",
                )?
                .query_row(
                    (
                        rate_table,
                        t.seat_category.get(),
                        t.tariff_type.get(),
                        t.audience_subcategory.get(),
                    ),
                    |r| r.get(0),
                )
                .optional()?;
            let Some(amount) = amount else { continue };
            if amount == t.amount && currency == t.currency.as_str() {
                return Ok(());
            }
            if expected.is_none() {
                expected = Some((*rate_table, rt_code.clone(), amount, currency.clone()));
            }
        }
        match expected {
            Some((id, code, amount, currency)) => Err(reject(
                "price-differs",
                format!(
                    "price differs from the rate table {id} {code} (expected {amount} {currency}, found {} {})",
                    t.amount, t.currency
                ),
            )),
            None => Err(reject(
                "no-price",
                format!(
                    "the rate table of performance {perf} has no price for seat category {}, tariff type {}, audience subcategory {}",
                    t.seat_category, t.tariff_type, t.audience_subcategory
                ),
            )),
        }
    }

    fn refund(&mut self, t: &Ticket) -> Result<Booked, Stop> {
        let tx = self.tx;
        let link = self.ctx.link;
        let (of, of_id) = self.refunded_sale(t)?;
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
        let ticket: Option<Sold> = tx
            .prepare_cached(
                "SELECT id, performance, seat, zone, amount, currency, state, refund_line
                   FROM ticket WHERE link = ?1 AND line = ?2",
            )?
            .query_row((link, of_id), |r| {
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
            .optional()?;
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
        .execute((ticket, sql_id(t.line)?, format_timestamp(t.time)))?;
        let negative = amount.checked_neg().ok_or_else(|| DomainError::Invalid {
            object: format!("ticket {ticket}"),
            problem: format!("amount {amount} cannot be refunded"),
        })?;
        self.pending(ticket, negative, &currency)?;
        Ok(Booked::Refund)
    }

    /// The sale a REFUND line cancels: a SALE line of the link, booked.
    /// Returns its line id (as written and as stored).
    fn refunded_sale(&self, t: &Ticket) -> Result<(u64, i64), Stop> {
        let tx = self.tx;
        let link = self.ctx.link;
        let Some(of) = t.refund_of else {
            return Err(reject(
                "refund-unknown-sale",
                "a refund without the line id of its sale",
            ));
        };
        let of_id = sql_id(of)?;
        let sale: Option<(String, String, Option<String>, Option<String>)> = tx
            .prepare_cached(
                "SELECT operation, status, code, reason FROM sales_line WHERE link = ?1 AND line = ?2",
            )?
            .query_row((link, of_id), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?;
        match sale {
            None => {
                return Err(reject(
                    "refund-unknown-sale",
                    format!("refunds line id {of}, a sale never received from link {link}"),
                ));
            }
            Some((op, _, _, _)) if op != "SALE" => {
                return Err(reject(
                    "refund-unknown-sale",
                    format!("refunds line id {of}, which is a {op}, not a sale"),
                ));
            }
            Some((_, status, code, reason)) if status != "booked" => {
                return Err(reject(
                    "refund-unknown-sale",
                    format!(
                        "refunds line id {of}, a sale that was rejected ({}: {})",
                        code.unwrap_or_default(),
                        reason.unwrap_or_default()
                    ),
                ));
            }
            Some(_) => {}
        }
        Ok((of, of_id))
    }

    /// The manager's order for the distributor's order reference, created on
    /// the link's setup the first time.
    fn order(&self, t: &Ticket) -> Result<i64, Stop> {
        let tx = self.tx;
        let link = self.ctx.link;
        let reference = t.order.as_str();
        let found: Option<i64> = tx
            .prepare_cached("SELECT id FROM sales_order WHERE link = ?1 AND reference = ?2")?
            .query_row((link, reference), |r| r.get(0))
            .optional()?;
        if let Some(id) = found {
            return Ok(id);
        }
        let s = self.setup;
        tx.prepare_cached(
            "INSERT INTO sales_order (link, reference, channel, point_of_sale, payment_method, contact, created)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute((
            link,
            reference,
            s.channel,
            s.point_of_sale,
            s.payment_method,
            s.contact,
            now(),
        ))?;
        Ok(tx.last_insert_rowid())
    }

    fn pending(&self, ticket: i64, amount: i64, currency: &str) -> Result<(), Stop> {
        self.tx
            .prepare_cached(
                "INSERT INTO pending_account_entry (link, ticket, amount, currency, created)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute((self.ctx.link, ticket, amount, currency, now()))?;
        Ok(())
    }
}

fn op_str(op: Operation) -> &'static str {
    match op {
        Operation::Sale => "SALE",
        Operation::Refund => "REFUND",
    }
}

fn sql_id(v: u64) -> Result<i64, DomainError> {
    i64::try_from(v).map_err(|_| DomainError::Invalid {
        object: format!("line id {v}"),
        problem: "is too large".to_owned(),
    })
}

fn place_text(place: &Place) -> String {
    match place {
        Place::Seat { block, row, seat } => format!("seat {block}:{row}:{seat}"),
        Place::Zone { zone } => format!("zone {zone}"),
    }
}

/// The seat or zone a line names, in the performance's configuration, with
/// its seat category.
fn resolve(
    conn: &Connection,
    place: &Place,
    configuration: i64,
    perf: i64,
) -> Result<(Spot, i64), Stop> {
    match place {
        Place::Seat { block, row, seat } => {
            let found: Option<(i64, i64, i64)> = conn
                .prepare_cached(
                    "SELECT s.id, s.seat_category, b.configuration FROM block b
                       JOIN seat_row r ON r.block = b.id
                       JOIN seat s ON s.row = r.id
                      WHERE b.id = ?1 AND r.code = ?2 AND s.number = ?3",
                )?
                .query_row((block.get(), row.as_str(), seat.as_str()), |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()?;
            match found {
                Some((id, category, c)) if c == configuration => Ok((Spot::Seat(id), category)),
                Some(_) => Err(reject(
                    "unknown-seat",
                    format!(
                        "{} is not in the configuration {configuration} of performance {perf}",
                        place_text(place)
                    ),
                )),
                None => Err(reject(
                    "unknown-seat",
                    format!("{} does not exist", place_text(place)),
                )),
            }
        }
        Place::Zone { zone } => {
            let found: Option<(i64, i64)> = conn
                .prepare_cached("SELECT seat_category, configuration FROM zone WHERE id = ?1")?
                .query_row([zone.get()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            match found {
                Some((category, c)) if c == configuration => Ok((Spot::Zone(zone.get()), category)),
                Some(_) => Err(reject(
                    "unknown-zone",
                    format!(
                        "zone {zone} is not in the configuration {configuration} of performance {perf}"
                    ),
                )),
                None => Err(reject(
                    "unknown-zone",
                    format!("zone {zone} does not exist"),
                )),
            }
        }
    }
}

/// The canonical SALES line of a ticket (no header, no line end): what a
/// rejected line keeps, and what tells a repeated line from a reused id.
pub fn record_text(t: &Ticket) -> Result<String, DomainError> {
    let invalid = |e: crate::format::WriteError| DomainError::Invalid {
        object: format!("line id {}", t.line),
        problem: e.to_string(),
    };
    let mut w = sales::Writer::new(Vec::new()).map_err(invalid)?;
    w.write(&Line::Ticket(t.clone())).map_err(invalid)?;
    let (bytes, _) = w.finish().map_err(invalid)?;
    let text = String::from_utf8(bytes).map_err(|e| DomainError::Invalid {
        object: format!("line id {}", t.line),
        problem: e.to_string(),
    })?;
    let body = text
        .split_once('\n')
        .map(|(_, rest)| rest)
        .unwrap_or_default();
    Ok(body.trim_end_matches(['\n', '\r']).to_owned())
}

// ---------------------------------------------------------------- rejects

/// The columns of `stxd sales rejects`: the SALES columns
/// ([`sales::COLUMNS`]), then where the line came from and why it was
/// rejected.
pub const REJECT_COLUMNS: [&str; sales::COLUMNS.len() + 4] = {
    const WHY: [&str; 4] = ["file", "position", "code", "reason"];
    let mut all = [""; sales::COLUMNS.len() + WHY.len()];
    let mut i = 0;
    while i < sales::COLUMNS.len() {
        all[i] = sales::COLUMNS[i];
        i += 1;
    }
    let mut j = 0;
    while j < WHY.len() {
        all[i + j] = WHY[j];
        j += 1;
    }
    all
};

/// A rejected line of a link, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub line: u64,
    pub operation: String,
    pub file: String,
    pub position: String,
    pub code: String,
    pub reason: String,
    /// The SALES columns of the line, in [`sales::COLUMNS`] order.
    pub fields: Vec<String>,
    pub updated: String,
}

/// Calls `f` with each rejected line of `link`, by line id; returns how many.
pub fn for_each_rejected(
    conn: &Connection,
    link: &str,
    mut f: impl FnMut(Rejected) -> Result<(), DomainError>,
) -> Result<u64, DomainError> {
    let mut st = conn.prepare_cached(
        "SELECT line, operation, file, position, code, reason, record, updated
           FROM sales_line WHERE link = ?1 AND status = 'rejected' ORDER BY line",
    )?;
    let mut rows = st.query([link])?;
    let mut n = 0u64;
    while let Some(r) = rows.next()? {
        let line: i64 = r.get(0)?;
        let record: String = r.get(6)?;
        let mut fields: Vec<String> = record.split(';').map(str::to_owned).collect();
        fields.resize(sales::COLUMNS.len(), String::new());
        f(Rejected {
            line: u64::try_from(line)
                .map_err(|_| StoreError::Corrupt(format!("sales line id {line}")))?,
            operation: r.get(1)?,
            file: r.get(2)?,
            position: r.get(3)?,
            code: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
            reason: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
            fields,
            updated: r.get(7)?,
        })?;
        n += 1;
    }
    Ok(n)
}

/// Writes the rejected lines of `link` as a CSV for ops (`;`, UTF-8 with a
/// byte order mark, LF line ends, quoted where needed, every cell a
/// spreadsheet would read as a formula neutralised with a leading `'`), one
/// line at a time. Returns the number of lines written.
pub fn export_rejects(conn: &Connection, link: &str, out: impl Write) -> Result<u64, DomainError> {
    let io = |source: std::io::Error| DomainError::Io {
        file: "the rejected lines export".to_owned(),
        source,
    };
    let mut out = out;
    out.write_all(b"\xEF\xBB\xBF").map_err(io)?;
    let mut w = csv::WriterBuilder::new()
        .delimiter(b';')
        .terminator(csv::Terminator::Any(b'\n'))
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(out);
    let csv_err = |e: csv::Error| io(std::io::Error::other(e));
    w.write_record(REJECT_COLUMNS).map_err(csv_err)?;
    let n = for_each_rejected(conn, link, |r| {
        let cells: Vec<Cow<'_, str>> = r
            .fields
            .iter()
            .map(String::as_str)
            .chain([
                r.file.as_str(),
                r.position.as_str(),
                r.code.as_str(),
                r.reason.as_str(),
            ])
            .map(super::mapping::neutralise)
            .collect();
        w.write_record(cells.iter().map(|c| c.as_bytes()))
            .map_err(csv_err)
    })?;
    w.flush().map_err(io)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ident::{Code, TechId};
    use crate::money::Currency;

    fn ticket() -> Ticket {
        Ticket {
            line: 7,
            operation: Operation::Refund,
            time: time::macros::datetime!(2026-12-01 10:15:00 UTC),
            order: sales::OrderRef::new("T-1").unwrap(),
            refund_of: Some(3),
            performance: TechId::new(1701).unwrap(),
            place: Place::Seat {
                block: TechId::new(3301).unwrap(),
                row: Code::new("A").unwrap(),
                seat: Code::new("1").unwrap(),
            },
            seat_category: TechId::new(2001).unwrap(),
            tariff_type: TechId::new(1201).unwrap(),
            audience_subcategory: TechId::new(1301).unwrap(),
            amount: 8500,
            currency: Currency::new("EUR").unwrap(),
            vat_code: TechId::new(1101).unwrap(),
        }
    }

    #[test]
    fn record_text_is_the_canonical_line_without_header() {
        let text = record_text(&ticket()).unwrap();
        assert_eq!(
            text,
            "7;REFUND;2026-12-01T10:15:00Z;T-1;3;1701;3301;A;1;;2001;1201;1301;8500;EUR;1101;"
        );
        assert_eq!(text.split(';').count(), sales::COLUMNS.len());
    }

    #[test]
    fn record_text_reads_back_as_the_same_line() {
        let t = ticket();
        let text = format!(
            "{}\n{}\n",
            sales::COLUMNS.join(";"),
            record_text(&t).unwrap()
        );
        let lines: Vec<Line> =
            sales::Reader::new(text.as_bytes(), "x.csv", crate::format::Limits::default())
                .collect::<Result<_, _>>()
                .unwrap();
        assert_eq!(lines, vec![Line::Ticket(t)]);
    }

    #[test]
    fn reject_columns_are_the_sales_columns_then_where_and_why() {
        assert_eq!(REJECT_COLUMNS[..sales::COLUMNS.len()], sales::COLUMNS);
        assert_eq!(
            REJECT_COLUMNS[sales::COLUMNS.len()..],
            ["file", "position", "code", "reason"]
        );
    }

    #[test]
    fn outcome_counts_ticket_lines() {
        let o = SalesOutcome {
            booked: 2,
            refunded: 1,
            duplicates: 3,
            rejected: 4,
            acks: Vec::new(),
            acknowledged: Vec::new(),
        };
        assert_eq!(o.lines(), 10);
    }
}
