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
//! A booked line's row keeps only the digest of its canonical line
//! ([`record_digest`]), which tells a repeated line from a reused line id.
//!
//! # Per file, not per line
//!
//! What every line looks up (the performance, the ids that exist, prices,
//! the link's tickets of a standing zone, the previous order) is read once
//! per file and kept in memory for its transaction (`cache`), and the page
//! cache is enlarged while the file is applied: the cost of a line does not
//! grow with the store or the file (`tests/linearity.rs`).
//!
//! # What a sale must satisfy (codes of the rejections)
//!
//! In this order: the performance exists (`unknown-performance`); it was
//! sold while on sale: not after the performance was cancelled or closed
//! (`performance-cancelled`, `performance-closed`) nor at or after its start
//! (`performance-started`), see [`crate::domain::lifecycle`] (a sale made
//! before a cancellation is booked, with a `to-refund` warning); the seat
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
//! Found once, when the import starts; a missing piece holds the whole file
//! in its inbox ([`DomainError::Unready`]; `stxd check` names the fix):
//! nothing can be booked without it, and nothing of the file is consumed.

use std::collections::BTreeMap;

use rusqlite::{Connection, OptionalExtension, Transaction};

use super::DomainError;
use crate::format::sales::{self, Operation, Place, Ticket};
use crate::store::StoreError;

mod cache;
mod import;
mod notices;
mod refund;
mod rejects;
mod resolve;
mod sale;
mod unbooked;

pub use notices::{on_the_wire, tell, untold};
pub use rejects::{
    REJECT_COLUMNS, Rejected, Resolved, export_rejects, for_each_rejected, resolutions,
};
pub use resolve::{Decision, NEVER_OVERRIDDEN, OVERRIDABLE, Resolution, resolve_line};

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
    /// Refunds of a sale never booked: closed, nothing to cancel.
    pub unbooked_refunds: u64,
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
        self.booked + self.refunded + self.duplicates + self.rejected + self.unbooked_refunds
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

/// The booking setup is not ready: a setup to fix, not a bad file. Nothing
/// of the file is booked and its sequence is not consumed: it waits.
fn setup_error(ctx: &Context<'_>, problem: String) -> DomainError {
    DomainError::Unready {
        object: format!("sales reintegration of link {}", ctx.link),
        problem: format!("{problem}; nothing of {} was booked", ctx.file),
        fix:
            "stxd check names what to add or put in operation; load the corrected setup (stxd load)"
                .to_owned(),
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
    /// A sale: its new ticket.
    Sale(i64),
    /// A refund: the ticket it cancelled.
    Refund(i64),
    /// A refund of a sale the manager never booked (rejected, or
    /// dismissed): nothing to cancel; the refund and the sale are closed
    /// as dismissed (`unbooked`).
    UnbookedRefund {
        /// The sale's line id, its rejection code and reason.
        sale: i64,
        code: String,
        reason: String,
    },
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
    /// Rules a resolution may set aside (empty for a file: see `resolve`).
    overrides: Vec<&'static str>,
    /// The rules set aside so far, with the reason each would have given.
    overridden: Vec<(&'static str, String)>,
    /// Master data and counts the lines look up, read once per file.
    cache: cache::Cache,
    /// When the file is applied: the `created` of its orders, the time of
    /// the resolutions it makes.
    now: time::OffsetDateTime,
    /// The connection's page cache before the import enlarged it.
    cache_size: i64,
    /// The statements run at every line, held for the file.
    statements: LineStatements<'t>,
    /// What the file's lines change in the link's count of lines.
    counted: LineCounts,
}

/// The change a file makes to its link's count of received lines by status
/// (`sales_line_count`, read by `/metrics` instead of every line): written
/// once, when the file's lines are, in the same transaction.
#[derive(Default)]
struct LineCounts {
    booked: i64,
    rejected: i64,
}

impl LineCounts {
    /// A line written with `status`: a new line, or one received before
    /// and rejected, written over.
    fn received(&mut self, status: &str, was_rejected: bool) {
        match status {
            "booked" => self.booked += 1,
            _ => self.rejected += 1,
        }
        if was_rejected {
            self.rejected -= 1;
        }
    }

    /// Adds the changes to the link's count; each status's row is made by
    /// its first line.
    fn write(&mut self, tx: &Transaction<'_>, link: &str) -> Result<(), DomainError> {
        for (status, change) in [("booked", self.booked), ("rejected", self.rejected)] {
            if change == 0 {
                continue;
            }
            let updated = tx
                .prepare_cached(
                    "UPDATE sales_line_count SET lines = lines + ?3 WHERE link = ?1 AND status = ?2",
                )?
                .execute((link, status, change))?;
            if updated == 0 {
                tx.prepare_cached(
                    "INSERT INTO sales_line_count (link, status, lines) VALUES (?1, ?2, ?3)",
                )?
                .execute((link, status, change))?;
            }
        }
        *self = LineCounts::default();
        Ok(())
    }
}

/// The statements run at every line: its received line for each ticket
/// line (sale or refund, booked or rejected); its seat's facts, its ticket
/// and its order for a sale. Each is prepared at its first use and held for
/// the file (the statement cache would look it up by its text at every
/// line).
#[derive(Default)]
struct LineStatements<'t> {
    seat_facts: Option<rusqlite::Statement<'t>>,
    ticket: Option<rusqlite::Statement<'t>>,
    line: Option<rusqlite::Statement<'t>>,
    find_order: Option<rusqlite::Statement<'t>>,
    add_order: Option<rusqlite::Statement<'t>>,
}

/// The page cache of a reintegration, KiB (SQLite's default is 2 MiB): the
/// indexes a big file walks stay in memory; bounded, whatever the file.
/// 32 MiB: 64 took 3% less time at 1M lines and 4% more at 10M, for 37 MiB
/// more memory (`docs/performance.md`, "Page cache").
const IMPORT_CACHE_KIB: i64 = 32 * 1024;

impl Drop for SalesImport<'_> {
    fn drop(&mut self) {
        // The connection outlives the import (the daemon keeps it): give the
        // memory back. A failure only leaves the larger cache.
        let _ = self.tx.pragma_update(None, "cache_size", self.cache_size);
    }
}

/// Identical duplicates logged one by one; beyond, one summary message (a
/// large overlapping file must not flood the execution log).
const DUPLICATE_MESSAGES: u64 = 100;

fn op_str(op: Operation) -> &'static str {
    match op {
        Operation::Sale => "SALE",
        Operation::Refund => "REFUND",
    }
}

fn sql_id(v: u64) -> Result<i64, DomainError> {
    i64::try_from(v).map_err(|_| {
        DomainError::refused(
            "bad-number",
            format!("line id {v}"),
            format!(
                "is too large: expected at most {} (the largest integer the store holds)",
                crate::format::sales::MAX_LINE_ID
            ),
        )
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

/// The digest a booked line keeps instead of its text: the first 8 bytes of
/// the SHA-256 of its canonical line ([`record_text`]), as an integer. It
/// tells a repeated line (same digest) from a reused line id.
pub fn record_digest(record: &str) -> i64 {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(record.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    i64::from_be_bytes(first)
}

/// The canonical SALES line of a ticket (no header, no line end): what a
/// rejected line keeps, and what tells a repeated line from a reused id.
pub fn record_text(t: &Ticket) -> Result<String, DomainError> {
    // Version 1's text, whatever the file's version and its optional
    // columns: a line repeated from before version 2 existed is still the
    // same line.
    sales::canonical_text(t).map_err(|e| DomainError::Invalid {
        object: format!("line id {}", t.line),
        problem: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::sales::Line;
    use crate::ident::{Code, TechId};
    use crate::money::Currency;

    fn ticket() -> Ticket {
        Ticket {
            rate_version: None,
            logical_seat_category: None,
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
        assert_eq!(lines, vec![Line::Ticket(Box::new(t))]);
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
            unbooked_refunds: 5,
            acks: Vec::new(),
            acknowledged: Vec::new(),
        };
        assert_eq!(o.lines(), 15);
    }
}
