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

/// The header of version 2: version 1's and `rate_version`, the version of
/// the rate table a line was priced with.
pub const COLUMNS_V2: [&str; 18] = {
    let mut columns = [""; 18];
    let mut i = 0;
    while i < COLUMNS.len() {
        columns[i] = COLUMNS[i];
        i += 1;
    }
    columns[COLUMNS.len()] = "rate_version";
    columns
};

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
}

/// The distributor has applied this contingent version of this performance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub performance: TechId,
    pub contingent_version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Ticket(Ticket),
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
        Ok(Line::Ticket(Ticket {
            rate_version,
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
        }))
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
            csv: CsvReader::new(input, file, limits, &COLUMNS).with_later(&[&COLUMNS_V2]),
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
}

impl<W: Write> Writer<W> {
    /// Writes the header of version 1 (no `rate_version`: a line carrying
    /// one is refused).
    pub fn new(out: W) -> Result<Self, WriteError> {
        Ok(Writer {
            csv: CsvWriter::new(out, &COLUMNS)?,
            last: None,
            v2: false,
        })
    }

    /// Writes the header of version 2 (`rate_version` last).
    pub fn new_v2(out: W) -> Result<Self, WriteError> {
        Ok(Writer {
            csv: CsvWriter::new(out, &COLUMNS_V2)?,
            last: None,
            v2: true,
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
        w.end_line()
    }

    fn write_ticket(&mut self, t: &Ticket) -> Result<(), WriteError> {
        let invalid = |m: String| Err(WriteError::Invalid(format!("line {}: {m}", t.line)));
        if t.line == 0 {
            return invalid("line id 0".into());
        }
        if let Some(last) = self.last
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
        match t.rate_version {
            Some(v) if !self.v2 => {
                return invalid(format!("rate version {v} in a version 1 file"));
            }
            Some(v) if !(1..=RATE_VERSION_MAX).contains(&v) => {
                return invalid(format!("rate version {v} out of 1..={RATE_VERSION_MAX}"));
            }
            _ => {}
        }
        let time = format_time(t.time)?;
        let w = &mut self.csv;
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
        if self.v2 {
            match t.rate_version {
                Some(v) => w.field(v)?,
                None => w.empty(),
            }
        }
        w.end_line()?;
        self.last = Some(t.line);
        Ok(())
    }

    /// Flushes; returns the output and the number of data lines written.
    pub fn finish(self) -> Result<(W, u64), WriteError> {
        self.csv.finish()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{self, BufReader, Read};

    use super::*;
    use crate::format::csv::meter;

    const HEADER: &str = "line;operation;time;order;refund_of;performance;block;row;seat;zone;seat_category;tariff_type;audience_subcategory;amount;currency;vat_code;contingent_version\n";
    const SAMPLE: &str = include_str!("../../samples/payloads/sales.csv");

    fn read(input: &[u8]) -> Result<Vec<Line>, FormatError> {
        Reader::new(input, "sales.csv", Limits::default()).collect()
    }

    fn write(lines: &[Line]) -> Result<Vec<u8>, WriteError> {
        let mut w = Writer::new(Vec::new())?;
        for l in lines {
            w.write(l)?;
        }
        Ok(w.finish()?.0)
    }

    /// Generates a sales payload line by line: a SALE, then its REFUND one
    /// line in four, a zone sale one in four, an ACK one in a thousand.
    struct Generator {
        lines: u64,
        n: u64,
        buf: Vec<u8>,
        pos: usize,
    }

    impl Generator {
        fn new(lines: u64) -> Generator {
            Generator {
                lines,
                n: 0,
                buf: HEADER.as_bytes().to_vec(),
                pos: 0,
            }
        }
    }

    impl Read for Generator {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            use std::io::Write as _;
            if self.pos == self.buf.len() {
                if self.n == self.lines {
                    return Ok(0);
                }
                self.n += 1;
                let n = self.n;
                self.buf.clear();
                self.pos = 0;
                match n % 4 {
                    _ if n.is_multiple_of(1000) => writeln!(self.buf, ";ACK;;;;1701;;;;;;;;;;;{n}"),
                    0 => writeln!(
                        self.buf,
                        "{n};REFUND;2026-12-01T11:00:00Z;T-{:06};{};1701;3301;A;{};;2001;1201;1301;8500;EUR;1101;",
                        n - 1,
                        n - 1,
                        (n - 1) % 20 + 1
                    ),
                    1 => writeln!(
                        self.buf,
                        "{n};SALE;2026-12-01T10:30:00Z;T-{n:06};;1701;;;;3201;2004;1201;1301;2500;EUR;1101;"
                    ),
                    _ => writeln!(
                        self.buf,
                        "{n};SALE;2026-12-01T10:15:00Z;T-{n:06};;1701;3301;A;{};;2001;1201;1301;8500;EUR;1101;",
                        n % 20 + 1
                    ),
                }?;
            }
            let rest = self.buf.get(self.pos..).unwrap_or(&[]);
            let k = rest.len().min(out.len());
            out[..k].copy_from_slice(&rest[..k]);
            self.pos += k;
            Ok(k)
        }
    }

    /// Two million lines from a generator, never a file: the count is
    /// right, and the reader's heap does not grow after the first thousand
    /// lines (it keeps no set of line ids, only the last one).
    #[test]
    fn streams_two_million_lines_in_flat_memory() {
        const LINES: u64 = 2_000_000;
        let mut reader = Reader::new(
            BufReader::new(Generator::new(LINES)),
            "gen.csv",
            Limits::default(),
        );
        let (mut tickets, mut acks, mut refunds) = (0u64, 0u64, 0u64);
        let mut baseline = None;
        let mut peak_growth = 0i64;
        while let Some(line) = reader.next() {
            match line.unwrap() {
                Line::Ticket(t) => {
                    tickets += 1;
                    if t.operation == Operation::Refund {
                        refunds += 1;
                    }
                }
                Line::Ack(_) => acks += 1,
            }
            let seen = reader.records();
            if seen == 1_000 {
                baseline = Some(meter::live());
            } else if let Some(base) = baseline
                && seen % 1_000 == 0
            {
                peak_growth = peak_growth.max(meter::live() - base);
            }
        }
        assert_eq!(reader.records(), LINES);
        assert_eq!(tickets + acks, LINES);
        assert_eq!(acks, LINES / 1000);
        assert_eq!(refunds, LINES / 4 - LINES / 1000);
        assert!(baseline.is_some());
        // A set of line ids would hold megabytes by now.
        assert!(
            peak_growth <= 1024,
            "reader heap grew by {peak_growth} bytes"
        );
    }

    #[test]
    fn the_sample_round_trips() {
        let lines = read(SAMPLE.as_bytes()).unwrap();
        assert_eq!(lines.len(), 6);
        assert_eq!(write(&lines).unwrap(), SAMPLE.as_bytes());
    }

    #[test]
    fn spreadsheet_spellings_read_the_same_and_re_export_canonical() {
        // BOM, CRLF, columns in another order, quoted fields, no final newline.
        let mut rows: Vec<Vec<&str>> = SAMPLE.lines().map(|l| l.split(';').collect()).collect();
        for row in &mut rows {
            row.reverse();
        }
        let mut text = String::from("\u{feff}");
        let body: Vec<String> = rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|f| {
                        if f.is_empty() {
                            String::new()
                        } else {
                            format!("\"{f}\"")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(";")
            })
            .collect();
        text.push_str(&body.join("\r\n"));
        let lines = read(text.as_bytes()).unwrap();
        assert_eq!(lines, read(SAMPLE.as_bytes()).unwrap());
        assert_eq!(write(&lines).unwrap(), SAMPLE.as_bytes());
    }

    #[test]
    fn header_only_is_an_empty_file() {
        let mut r = Reader::new(HEADER.as_bytes(), "sales.csv", Limits::default());
        assert!(r.next().is_none());
        assert_eq!(r.records(), 0);
        assert_eq!(write(&[]).unwrap(), HEADER.as_bytes());
    }

    #[test]
    fn the_reader_stops_after_its_first_error() {
        let text = format!("{HEADER}x;SALE\n1;ACK\n");
        let mut r = Reader::new(text.as_bytes(), "sales.csv", Limits::default());
        let e = r.next().unwrap().unwrap_err();
        assert_eq!(
            (e.code, e.position.to_string()),
            ("csv-field-count", "line 2".into())
        );
        assert!(r.next().is_none());
        assert_eq!(r.records(), 1);
    }

    #[test]
    fn order_refs_refuse_a_leading_dash() {
        assert!(OrderRef::new("T-000001").is_some());
        assert!(OrderRef::new("2026/12/A.1_b").is_some());
        for bad in ["-1", "-T1", "", "=1", "+1", "@A", "T 1", &"x".repeat(33)] {
            assert!(OrderRef::new(bad).is_none(), "{bad:?} accepted");
        }
    }

    fn ticket() -> Ticket {
        match read(SAMPLE.as_bytes()).unwrap().remove(0) {
            Line::Ticket(t) => t,
            Line::Ack(_) => unreachable!("the sample starts with a sale"),
        }
    }

    #[test]
    fn the_writer_refuses_what_the_reader_would_refuse() {
        let refuse = |t: Ticket| write(&[Line::Ticket(t)]).is_err();
        assert!(!refuse(ticket()));
        assert!(refuse(Ticket {
            line: 0,
            ..ticket()
        }));
        assert!(refuse(Ticket {
            amount: -1,
            ..ticket()
        }));
        assert!(refuse(Ticket {
            amount: AMOUNT_MAX + 1,
            ..ticket()
        }));
        assert!(refuse(Ticket {
            refund_of: Some(1),
            ..ticket()
        }));
        assert!(refuse(Ticket {
            operation: Operation::Refund,
            ..ticket()
        }));
        assert!(refuse(Ticket {
            line: 5,
            operation: Operation::Refund,
            refund_of: Some(5),
            ..ticket()
        }));
        assert!(refuse(Ticket {
            time: ticket().time.to_offset(time::macros::offset!(+1)),
            ..ticket()
        }));
        let ack = Line::Ack(Ack {
            performance: TechId::new(1701).unwrap(),
            contingent_version: 0,
        });
        assert!(write(&[ack]).is_err());
        // Line ids must increase across writes.
        let mut w = Writer::new(Vec::new()).unwrap();
        w.write(&Line::Ticket(ticket())).unwrap();
        assert!(w.write(&Line::Ticket(ticket())).is_err());
        let (out, n) = w.finish().unwrap();
        assert_eq!(n, 1);
        assert_eq!(read(&out).unwrap().len(), 1);
    }
}
