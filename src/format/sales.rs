//! `SALES` payload (CSV): the distributor's sales and refunds, one line each,
//! plus its acknowledgement of the contingent versions it has applied.
//!
//! Takes bytes, yields [`Line`]s one at a time; writes them back to the
//! canonical file. Every id is the manager's technical id (the distributor
//! translates back through its mapping table before writing). Shape checks
//! only: whether a line may be booked is the domain's business, not this
//! module's.
//!
//! Columns, `;`-separated, header first (see `samples/README.md`; the CSV
//! dialect is [`super::csv`]'s):
//! `line;operation;time;order;refund_of;performance;block;row;seat;zone;seat_category;tariff_type;audience_subcategory;amount;currency;vat_code;contingent_version`
//!
//! Rules, with the error code of each:
//! - `operation` is `SALE`, `REFUND` or `ACK` (`bad-value`; empty:
//!   `missing-field`).
//! - `SALE` and `REFUND` need `line` (whole number ≥ 1, `bad-number`), `time`
//!   (`2026-12-01T10:15:00Z`: RFC 3339, UTC `Z`, whole seconds, `bad-time`),
//!   `order` (1 to 32 of A-Z a-z 0-9 `_ - . /`, not starting with `-`,
//!   `bad-order`), `performance`, `seat_category`, `tariff_type`,
//!   `audience_subcategory`, `vat_code` (ids, `bad-id`), `amount` (minor
//!   units, never negative: a refund repeats the sale's positive amount;
//!   `money-*`), `currency` (`bad-currency`), and a place: `block` + `row` +
//!   `seat` or `zone`, never both, never neither (`sales-place`; a partial
//!   seat is `missing-field`). `contingent_version` stays empty.
//! - `SALE` leaves `refund_of` empty; `REFUND` needs it: the line id of the
//!   sale it cancels, smaller than its own line id (`sales-refund-of`).
//! - `ACK` needs `performance` and `contingent_version` (≥ 1) and nothing
//!   else; it has no line id.
//! - Any column a line type does not use must be empty (`unexpected-field`);
//!   any it needs must be filled (`missing-field`).
//! - Line ids strictly increase within a file (`sales-line-order`). This
//!   catches a line id repeated within a file while the reader remembers one
//!   number only; a line id repeated across files is the store's to catch.
//!
//! A cell a spreadsheet would read as a formula (starting with `=`, `+`, `-`,
//! `@`, tab or CR) never passes: ids, numbers, amounts and times are digits
//! first, codes and order references refuse those characters (and a leading
//! `-`), and the CSV layer refuses control characters.

use std::fmt;
use std::io::{BufRead, Write};

use super::csv::{CsvReader, CsvWriter, Row, format_time};
use super::{FormatError, Limits, WriteError};
use crate::ident::{Code, TechId, shorten};
use crate::money::{AMOUNT_MAX, Currency};

/// The largest line id: the stores keep line ids as SQLite integers
/// (`i64`), so a larger one is refused by the reader (`bad-number`, with its
/// line) rather than by the store.
pub const MAX_LINE_ID: u64 = i64::MAX as u64;

/// The header, in the order the writer emits it.
pub const COLUMNS: [&str; 17] = [
    "line",
    "operation",
    "time",
    "order",
    "refund_of",
    "performance",
    "block",
    "row",
    "seat",
    "zone",
    "seat_category",
    "tariff_type",
    "audience_subcategory",
    "amount",
    "currency",
    "vat_code",
    "contingent_version",
];

/// `base` and one more column after it.
const fn then<const N: usize, const M: usize>(
    base: [&'static str; N],
    last: &'static str,
) -> [&'static str; M] {
    let mut columns = [""; M];
    let mut i = 0;
    while i < N {
        columns[i] = base[i];
        i += 1;
    }
    columns[N] = last;
    columns
}

/// The header of version 2: version 1's and `rate_version`, the version of
/// the rate table a line was priced with.
pub const COLUMNS_V2: [&str; 18] = then(COLUMNS, "rate_version");

/// The header of version 2 with its optional last column,
/// `logical_seat_category`: the logical seat category a seat was priced in
/// (a file whose lines name none is written without it, as before).
pub const COLUMNS_V2_LOGICAL: [&str; 19] = then(COLUMNS_V2, "logical_seat_category");

/// The largest rate table version a line carries.
pub const RATE_VERSION_MAX: u64 = 999_999_999;

/// The distributor's order reference: 1 to 32 characters among A-Z a-z 0-9
/// `_ - . /`, not starting with `-` (a spreadsheet would read `-…` as a
/// formula).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrderRef(String);

impl OrderRef {
    pub const MAX: usize = 32;

    pub fn new(s: &str) -> Option<OrderRef> {
        let ok = (1..=Self::MAX).contains(&s.len())
            && !s.starts_with('-')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'));
        ok.then(|| OrderRef(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrderRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Sale,
    Refund,
}

/// Where the ticket sits: a numbered seat or a place in an unnumbered zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Seat {
        block: TechId,
        row: Code,
        seat: Code,
    },
    Zone {
        zone: TechId,
    },
}

/// A sale or a refund. A refund repeats the sold ticket's fields and names the
/// sale line it cancels in `refund_of`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The distributor's line id, unique across all its sales files.
    pub line: u64,
    pub operation: Operation,
    /// When the distributor recorded it, UTC, RFC 3339 with `Z`.
    pub time: time::OffsetDateTime,
    pub order: OrderRef,
    /// Only for refunds: the line id of the sale cancelled.
    pub refund_of: Option<u64>,
    pub performance: TechId,
    pub place: Place,
    pub seat_category: TechId,
    pub tariff_type: TechId,
    pub audience_subcategory: TechId,
    /// Price in minor units of `currency`; never negative, for refunds too.
    pub amount: i64,
    pub currency: Currency,
    pub vat_code: TechId,
    /// Version 2: the version of the rate table the line was priced with
    /// (a refund repeats its sale's); `None` in a version 1 file, or when
    /// the distributor's prices came from a version 1 catalogue.
    pub rate_version: Option<u64>,
    /// Version 2, optional column: the manager's logical seat category the
    /// seat was priced in; `None` for a seat priced in its physical seat
    /// category, a zone, or a file without the column.
    pub logical_seat_category: Option<TechId>,
}

/// The distributor has applied this contingent version of this performance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub performance: TechId,
    pub contingent_version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// Boxed: a ticket is about twice the size of the largest other record
    /// of any file, and every record the inbound stage parses (a seat plan's
    /// seats too) is moved at the size of the largest.
    Ticket(Box<Ticket>),
    Ack(Ack),
}

// Canonical column indexes.
const LINE: usize = 0;
const OPERATION: usize = 1;
const TIME: usize = 2;
const ORDER: usize = 3;
const REFUND_OF: usize = 4;
const PERFORMANCE: usize = 5;
const BLOCK: usize = 6;
const ROW: usize = 7;
const SEAT: usize = 8;
const ZONE: usize = 9;
const SEAT_CATEGORY: usize = 10;
const TARIFF_TYPE: usize = 11;
const AUDIENCE_SUBCATEGORY: usize = 12;
const AMOUNT: usize = 13;
const CURRENCY: usize = 14;
const VAT_CODE: usize = 15;
const CONTINGENT_VERSION: usize = 16;
const RATE_VERSION: usize = 17;
const LOGICAL_SEAT_CATEGORY: usize = 18;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Sale,
    Refund,
    Ack,
}

const OPERATIONS: [(&str, Op); 3] = [("SALE", Op::Sale), ("REFUND", Op::Refund), ("ACK", Op::Ack)];

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Sale => "SALE",
            Operation::Refund => "REFUND",
        }
    }
}

/// Everything the reader remembers between lines: one number (and the
/// file's version).
#[derive(Debug, Default)]
struct LineOrder {
    /// The last ticket line id and its physical line.
    last: Option<(u64, u64)>,
}

impl LineOrder {
    fn line(&mut self, row: &Row<'_>) -> Result<Line, FormatError> {
        let op = row.choice(OPERATION, &OPERATIONS)?;
        let rate_version = if row.version() >= 2 {
            rate_version(row, op)?
        } else {
            None
        };
        let operation = match op {
            Op::Ack => return ack(row),
            Op::Sale => Operation::Sale,
            Op::Refund => Operation::Refund,
        };
        let kind = operation.as_str();
        let line = row.number(LINE, kind)?;
        if line > MAX_LINE_ID {
            return Err(row.error(
                LINE,
                "bad-number",
                format!(
                    "expected a line id of 1 to {MAX_LINE_ID} (the largest integer the stores hold), found {line}"
                ),
            ));
        }
        if let Some((last, at)) = self.last
            && line <= last
        {
            // Ids strictly increase, so a repeat is always of the line just
            // before: both positions are known without remembering the file.
            let problem = if line == last {
                format!(
                    "line id {line} appears at line {at} and line {}; expected each line id once per file (a line already booked from an earlier file is a harmless duplicate, a repeat inside one file is an error of the file)",
                    row.line()
                )
            } else {
                format!(
                    "expected a line id greater than {last} (line {at}), found {line}; line ids strictly increase within a file"
                )
            };
            return Err(row.error(LINE, "sales-line-order", problem));
        }
        self.last = Some((line, row.line()));
        let time = row.time(TIME, kind)?;
        let order = row.parse(ORDER, kind, |s| {
            OrderRef::new(s).ok_or_else(|| {
                super::csv::FieldError::new(
                    "bad-order",
                    format!(
                        "expected an order reference of 1 to {} characters among A-Z a-z 0-9 _ - . / not starting with '-', found {:?}",
                        OrderRef::MAX,
                        shorten(s)
                    ),
                )
            })
        })?;
        let refund_of = match operation {
            Operation::Sale => {
                row.forbid(REFUND_OF, kind)?;
                None
            }
            Operation::Refund => {
                let of = row.number(REFUND_OF, kind)?;
                if of >= line {
                    return Err(row.error(
                        REFUND_OF,
                        "sales-refund-of",
                        format!(
                            "expected the line id of an earlier sale (less than {line}), found {of}"
                        ),
                    ));
                }
                Some(of)
            }
        };
        let performance = row.id(PERFORMANCE, kind)?;
        let place = place(row, kind)?;
        let seat_category = row.id(SEAT_CATEGORY, kind)?;
        let tariff_type = row.id(TARIFF_TYPE, kind)?;
        let audience_subcategory = row.id(AUDIENCE_SUBCATEGORY, kind)?;
        let amount = row.amount(AMOUNT, kind)?;
        let currency = row.currency(CURRENCY, kind)?;
        let vat_code = row.id(VAT_CODE, kind)?;
        row.forbid(CONTINGENT_VERSION, kind)?;
        let logical_seat_category = match (&place, row.is_empty(LOGICAL_SEAT_CATEGORY)) {
            (_, true) => None,
            (Place::Seat { .. }, false) => Some(row.id(LOGICAL_SEAT_CATEGORY, kind)?),
            (Place::Zone { .. }, false) => {
                row.forbid(LOGICAL_SEAT_CATEGORY, "zone")?;
                None
            }
        };
        Ok(Line::Ticket(Box::new(Ticket {
            rate_version,
            logical_seat_category,
            line,
            operation,
            time,
            order,
            refund_of,
            performance,
            place,
            seat_category,
            tariff_type,
            audience_subcategory,
            amount,
            currency,
            vat_code,
        })))
    }
}

/// Version 2's `rate_version`: empty or 1 to [`RATE_VERSION_MAX`] on a
/// `SALE` or `REFUND`, empty on an `ACK`.
fn rate_version(row: &Row<'_>, op: Op) -> Result<Option<u64>, FormatError> {
    if op == Op::Ack {
        row.forbid(RATE_VERSION, "ACK")?;
        return Ok(None);
    }
    if row.text(RATE_VERSION).is_empty() {
        return Ok(None);
    }
    let kind = if op == Op::Refund { "REFUND" } else { "SALE" };
    let v = row.number(RATE_VERSION, kind)?;
    if !(1..=RATE_VERSION_MAX).contains(&v) {
        return Err(row.error(
            RATE_VERSION,
            "version-out-of-range",
            format!("expected a rate table version of 1 to {RATE_VERSION_MAX}, found {v}"),
        ));
    }
    Ok(Some(v))
}

/// An `ACK` line: performance and contingent version, nothing else.
fn ack(row: &Row<'_>) -> Result<Line, FormatError> {
    const KIND: &str = "ACK";
    for col in [LINE, TIME, ORDER, REFUND_OF] {
        row.forbid(col, KIND)?;
    }
    let performance = row.id(PERFORMANCE, KIND)?;
    for col in BLOCK..=VAT_CODE {
        row.forbid(col, KIND)?;
    }
    row.forbid(LOGICAL_SEAT_CATEGORY, KIND)?;
    let contingent_version = row.number(CONTINGENT_VERSION, KIND)?;
    if contingent_version > super::contingent::MAX_VERSION {
        return Err(row.error(
            CONTINGENT_VERSION,
            "version-out-of-range",
            format!(
                "expected a contingent version of 1 to {}, found {contingent_version}",
                super::contingent::MAX_VERSION
            ),
        ));
    }
    Ok(Line::Ack(Ack {
        performance,
        contingent_version,
    }))
}

/// A numbered seat (block, row, seat) or an unnumbered zone, never both.
fn place(row: &Row<'_>, kind: &str) -> Result<Place, FormatError> {
    let seat_given = [BLOCK, ROW, SEAT].iter().any(|c| !row.is_empty(*c));
    let zone_given = !row.is_empty(ZONE);
    match (seat_given, zone_given) {
        (true, true) => Err(row.error(
            ZONE,
            "sales-place",
            format!(
                "expected either a seat (block, row, seat) or a zone, found both (zone {:?})",
                shorten(row.text(ZONE))
            ),
        )),
        (false, false) => Err(row.error(
            BLOCK,
            "sales-place",
            format!(
                "expected a place on {kind} lines: block, row and seat, or zone; found neither"
            ),
        )),
        (true, false) => Ok(Place::Seat {
            block: row.id(BLOCK, kind)?,
            row: row.code(ROW, kind)?,
            seat: row.code(SEAT, kind)?,
        }),
        (false, true) => Ok(Place::Zone {
            zone: row.id(ZONE, kind)?,
        }),
    }
}

/// Reads a `SALES` payload, one [`Line`] at a time, in memory that does not
/// grow with the file (the last line id is all it remembers). After the
/// first error, yields nothing more.
pub struct Reader<R: BufRead> {
    csv: CsvReader<R>,
    order: LineOrder,
    done: bool,
}

impl<R: BufRead> Reader<R> {
    /// `file` names the payload in errors. Nothing is read yet.
    pub fn new(input: R, file: &str, limits: Limits) -> Self {
        Reader {
            csv: CsvReader::new(input, file, limits, &COLUMNS).with_later(&[&COLUMNS_V2_LOGICAL]),
            order: LineOrder::default(),
            done: false,
        }
    }

    /// Data lines read so far (the header not counted).
    pub fn records(&self) -> u64 {
        self.csv.records()
    }

    /// The file's format version (1 or 2), once its header is read.
    pub fn version(&self) -> u32 {
        self.csv.version()
    }

    /// Whether the header has the optional `logical_seat_category` column
    /// (version 2), once it is read.
    pub fn has_logical_column(&self) -> bool {
        self.csv.has_column(LOGICAL_SEAT_CATEGORY)
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<Line, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self
            .csv
            .next_row()
            .and_then(|row| row.map(|row| self.order.line(&row)).transpose());
        super::stop_after_error(&mut self.done, next)
    }
}

/// Writes the canonical `SALES` payload, refusing any line the reader would
/// refuse (line ids not increasing, a refund without an earlier `refund_of`,
/// a negative amount, a time not UTC to the second, a version 0…).
pub struct Writer<W: Write> {
    csv: CsvWriter<W>,
    last: Option<u64>,
    v2: bool,
    logical: bool,
}

impl<W: Write> Writer<W> {
    /// Writes the header of version 1 (no `rate_version`: a line carrying
    /// one is refused).
    pub fn new(out: W) -> Result<Self, WriteError> {
        Ok(Writer {
            csv: CsvWriter::new(out, &COLUMNS)?,
            last: None,
            v2: false,
            logical: false,
        })
    }

    /// Writes the header of version 2 (`rate_version` last).
    pub fn new_v2(out: W) -> Result<Self, WriteError> {
        Ok(Writer {
            csv: CsvWriter::new(out, &COLUMNS_V2)?,
            last: None,
            v2: true,
            logical: false,
        })
    }

    /// Writes the header of version 2 with `logical_seat_category` last:
    /// for a file a line of which names a logical seat category.
    pub fn new_v2_logical(out: W) -> Result<Self, WriteError> {
        Ok(Writer {
            csv: CsvWriter::new(out, &COLUMNS_V2_LOGICAL)?,
            last: None,
            v2: true,
            logical: true,
        })
    }

    pub fn write(&mut self, line: &Line) -> Result<(), WriteError> {
        match line {
            Line::Ack(a) => self.write_ack(a),
            Line::Ticket(t) => self.write_ticket(t),
        }
    }

    fn write_ack(&mut self, a: &Ack) -> Result<(), WriteError> {
        if a.contingent_version == 0 {
            return Err(WriteError::Invalid(format!(
                "ack of performance {}: contingent version 0",
                a.performance
            )));
        }
        let w = &mut self.csv;
        w.empty();
        w.field("ACK")?;
        for _ in TIME..PERFORMANCE {
            w.empty();
        }
        w.field(a.performance)?;
        for _ in BLOCK..CONTINGENT_VERSION {
            w.empty();
        }
        w.field(a.contingent_version)?;
        if self.v2 {
            w.empty();
        }
        if self.logical {
            w.empty();
        }
        w.end_line()
    }

    fn write_ticket(&mut self, t: &Ticket) -> Result<(), WriteError> {
        check_ticket(t, self.last)?;
        let invalid = |m: String| Err(WriteError::Invalid(format!("line {}: {m}", t.line)));
        match t.rate_version {
            Some(v) if !self.v2 => {
                return invalid(format!("rate version {v} in a version 1 file"));
            }
            Some(v) if !(1..=RATE_VERSION_MAX).contains(&v) => {
                return invalid(format!("rate version {v} out of 1..={RATE_VERSION_MAX}"));
            }
            _ => {}
        }
        match (t.logical_seat_category, &t.place) {
            (Some(_), _) if !self.logical => {
                return invalid("a logical seat category in a file without its column".into());
            }
            (Some(_), Place::Zone { .. }) => {
                return invalid("a logical seat category on a zone".into());
            }
            _ => {}
        }
        ticket_fields(&mut self.csv, t, self.v2, self.logical)?;
        self.csv.end_line()?;
        self.last = Some(t.line);
        Ok(())
    }

    /// Flushes; returns the output and the number of data lines written.
    pub fn finish(self) -> Result<(W, u64), WriteError> {
        self.csv.finish()
    }
}

/// The canonical text of a ticket line: its fields as a version 1 file
/// writes them, without header or line end (`rate_version` and
/// `logical_seat_category` left out, whatever they hold, so that a line
/// reads the same in every version). What a rejected line keeps, and what
/// a booked line's digest is taken of.
pub fn canonical_text(t: &Ticket) -> Result<String, WriteError> {
    check_ticket(t, None)?;
    let mut w = CsvWriter::headless(std::io::sink(), &COLUMNS);
    ticket_fields(&mut w, t, false, false)?;
    w.take_line()
}

/// The rules of a ticket line every version shares; `last` is the line id
/// written before it in the file, if any.
fn check_ticket(t: &Ticket, last: Option<u64>) -> Result<(), WriteError> {
    let invalid = |m: String| Err(WriteError::Invalid(format!("line {}: {m}", t.line)));
    if t.line == 0 {
        return invalid("line id 0".into());
    }
    if let Some(last) = last
        && t.line <= last
    {
        return invalid(format!("line ids must increase, previous {last}"));
    }
    match (t.operation, t.refund_of) {
        (Operation::Sale, None) => {}
        (Operation::Refund, Some(of)) if of > 0 && of < t.line => {}
        (op, of) => return invalid(format!("{} with refund_of {of:?}", op.as_str())),
    }
    if !(0..=AMOUNT_MAX).contains(&t.amount) {
        return invalid(format!("amount {} out of 0..={AMOUNT_MAX}", t.amount));
    }
    Ok(())
}

/// A ticket line's fields, in the columns of the file's version.
fn ticket_fields<W: Write>(
    w: &mut CsvWriter<W>,
    t: &Ticket,
    v2: bool,
    logical: bool,
) -> Result<(), WriteError> {
    let time = format_time(t.time)?;
    w.field(t.line)?;
    w.field(t.operation.as_str())?;
    w.field(time)?;
    w.field(&t.order)?;
    match t.refund_of {
        Some(of) => w.field(of)?,
        None => w.empty(),
    }
    w.field(t.performance)?;
    match &t.place {
        Place::Seat { block, row, seat } => {
            w.field(block)?;
            w.field(row)?;
            w.field(seat)?;
            w.empty();
        }
        Place::Zone { zone } => {
            w.empty();
            w.empty();
            w.empty();
            w.field(zone)?;
        }
    }
    w.field(t.seat_category)?;
    w.field(t.tariff_type)?;
    w.field(t.audience_subcategory)?;
    w.field(t.amount)?;
    w.field(t.currency)?;
    w.field(t.vat_code)?;
    w.empty();
    if v2 {
        match t.rate_version {
            Some(v) => w.field(v)?,
            None => w.empty(),
        }
    }
    if logical {
        match t.logical_seat_category {
            Some(l) => w.field(l)?,
            None => w.empty(),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
