//! `CONTINGENT` payload (CSV): for each performance, a snapshot of the seats
//! the manager has set aside for the distributor, with the snapshot's version.
//!
//! Takes bytes, yields [`Line`]s one at a time; writes them back to the
//! canonical file. A performance's snapshot starts with a `PERFORMANCE` line
//! (so an empty snapshot, "everything taken back", is expressible) followed by
//! its `SEAT` and `ZONE` lines; the reader checks that every line repeats the
//! open performance and version and that a performance appears only once.
//! Whether the seats exist or may be allotted is the domain's business.
//!
//! Columns, `;`-separated, header first (see `samples/README.md`; the CSV
//! dialect is [`super::csv`]'s):
//! `performance;version;type;block;row;seat;zone;quantity;seat_category`,
//! then, only in a file that carries `RESOLUTION` lines,
//! `line;decision;reason;decided` ([`COLUMNS`]). A file without them (every
//! version 1 file) reads as before; the writer leaves them out of a file
//! with no resolution ([`Writer::new`]), so such a file is byte for byte a
//! version 1 file.
//!
//! Rules, with the error code of each:
//! - `type` is `PERFORMANCE`, `SEAT`, `ZONE` or `RESOLUTION` (`bad-value`;
//!   empty: `missing-field`).
//! - `RESOLUTION` (the manager's decision on one of the distributor's
//!   rejected sales lines): `line` (the distributor's line id, 1 to
//!   [`MAX_LINE_ID`], `bad-number`), `decision` (`accepted` or `dismissed`,
//!   `bad-value`), `reason` (text, never empty), `decided` (UTC time, whole
//!   seconds) required; every other column empty (`unexpected-field`). It
//!   closes the open snapshot (a `SEAT`/`ZONE` line after it is
//!   `contingent-group`), and a line id is told once per file
//!   (`contingent-duplicate-resolution`, at most [`MAX_RESOLUTIONS`]
//!   remembered, `contingent-too-many-resolutions`).
//! - `line`, `decision`, `reason`, `decided` are empty on every other line.
//! - Every other line: `performance` a technical id (`bad-id`), `version` a whole
//!   number ≥ 1 (`bad-number`) and at most [`MAX_VERSION`]
//!   (`version-out-of-range`).
//! - `PERFORMANCE`: nothing else; any other column filled is
//!   `unexpected-field`.
//! - `SEAT`: `block` (id), `row` and `seat` (codes, `bad-code`, never
//!   starting with `-`), `seat_category` (id) required (`missing-field`);
//!   `zone` and `quantity` empty (`unexpected-field`).
//! - `ZONE`: `zone` (id), `quantity` (1 to 4294967295, `bad-number`),
//!   `seat_category` (id) required; `block`, `row`, `seat` empty.
//! - A `SEAT`/`ZONE` line follows the `PERFORMANCE` line of its snapshot and
//!   repeats its performance and version (`contingent-group`).
//! - A performance has one snapshot per file
//!   (`contingent-duplicate-performance`); the reader remembers the
//!   performances seen, at most [`MAX_PERFORMANCES`]
//!   (`contingent-too-many-performances`).
//! - A seat (block, row, seat) or a zone appears once per snapshot
//!   (`contingent-duplicate-seat`); the reader remembers the open snapshot's
//!   places only, at most [`MAX_GROUP_PLACES`] (`contingent-group-too-large`).

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};

use time::OffsetDateTime;

use super::csv::{CsvReader, CsvWriter, Row, format_time};
use super::{FormatError, Limits, WriteError};
use crate::ident::{Code, TechId};

pub use super::sales::MAX_LINE_ID;

/// The largest contingent version: 999,999,999,999,999 (15 digits, like the
/// largest amount). Versions grow by one at each change of a performance's
/// allotment, so real ones stay far below it (a change a second for thirty
/// million years), it is exact in a JSON number (below 2^53) and in the
/// stores' integers, and a version at `u64::MAX` or `i64::MAX`, which would
/// make every later snapshot "older" and freeze the performance, is refused
/// as the file is read. The distributor also refuses a version far ahead of
/// the one it applied (`domain::selling::MAX_VERSION_JUMP`).
pub const MAX_VERSION: u64 = 999_999_999_999_999;

/// The header of a file with `RESOLUTION` lines, in the order the writer
/// emits it; the first [`V1_COLUMNS`] are every file's (version 1).
pub const COLUMNS: [&str; 13] = [
    "performance",
    "version",
    "type",
    "block",
    "row",
    "seat",
    "zone",
    "quantity",
    "seat_category",
    "line",
    "decision",
    "reason",
    "decided",
];

/// How many of [`COLUMNS`] every file has: the version 1 header.
pub const V1_COLUMNS: usize = 9;

const HEADER_V1: &[&str] = &[
    "performance",
    "version",
    "type",
    "block",
    "row",
    "seat",
    "zone",
    "quantity",
    "seat_category",
];

/// Most `RESOLUTION` lines one file may hold (the reader remembers their
/// line ids to refuse one told twice).
pub const MAX_RESOLUTIONS: usize = 1_000_000;

/// The manager's decision on a rejected sales line of the distributor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Booked at the manager with the rejection overridden.
    Accepted,
    /// Closed at the manager without booking: never booked.
    Dismissed,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Accepted => "accepted",
            Decision::Dismissed => "dismissed",
        }
    }

    /// `accepted` or `dismissed`.
    pub fn parse(s: &str) -> Option<Decision> {
        DECISIONS.iter().find(|(w, _)| *w == s).map(|(_, d)| *d)
    }
}

const DECISIONS: [(&str, Decision); 2] = [
    ("accepted", Decision::Accepted),
    ("dismissed", Decision::Dismissed),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// Opens the snapshot of one performance at one version.
    Performance { performance: TechId, version: u64 },
    /// A numbered seat of the snapshot.
    Seat {
        performance: TechId,
        version: u64,
        block: TechId,
        row: Code,
        seat: Code,
        seat_category: TechId,
    },
    /// A quantity of places in an unnumbered zone.
    Zone {
        performance: TechId,
        version: u64,
        zone: TechId,
        quantity: u32,
        seat_category: TechId,
    },
    /// The manager's decision on one of the distributor's rejected lines.
    Resolution {
        /// The distributor's line id.
        line: u64,
        decision: Decision,
        reason: String,
        /// When the manager decided, UTC, whole seconds.
        decided: OffsetDateTime,
    },
}

// Canonical column indexes.
const PERFORMANCE: usize = 0;
const VERSION: usize = 1;
const TYPE: usize = 2;
const BLOCK: usize = 3;
const ROW: usize = 4;
const SEAT: usize = 5;
const ZONE: usize = 6;
const QUANTITY: usize = 7;
const SEAT_CATEGORY: usize = 8;
const LINE: usize = 9;
const DECISION: usize = 10;
const REASON: usize = 11;
const DECIDED: usize = 12;

/// Most performances one file may hold. The reader remembers every
/// performance it has seen (to refuse a second snapshot of one), which is
/// bounded by the catalogue, not by the file; this caps it anyway.
pub const MAX_PERFORMANCES: usize = 100_000;

/// Most `SEAT`/`ZONE` lines in one performance's snapshot. The reader keeps
/// the places of the open snapshot (to refuse a seat twice), which is bounded
/// by the venue; this caps it anyway, above the largest stadiums.
pub const MAX_GROUP_PLACES: usize = 250_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Performance,
    Seat,
    Zone,
    Resolution,
}

impl Type {
    fn as_str(self) -> &'static str {
        match self {
            Type::Performance => "PERFORMANCE",
            Type::Seat => "SEAT",
            Type::Zone => "ZONE",
            Type::Resolution => "RESOLUTION",
        }
    }
}

const TYPES: [(&str, Type); 4] = [
    ("PERFORMANCE", Type::Performance),
    ("SEAT", Type::Seat),
    ("ZONE", Type::Zone),
    ("RESOLUTION", Type::Resolution),
];

/// A place of a snapshot, to find one listed twice: a seat by its block and
/// its row's and its own labels, each packed into a number
/// ([`Code::packed`]), so that a key is copied and hashed without a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum PlaceKey {
    Seat(TechId, u64, u64),
    Zone(TechId),
}

/// The snapshot being read: its `PERFORMANCE` line and its places so far.
#[derive(Debug, Default)]
struct Groups {
    /// The open snapshot: performance, version, line of its PERFORMANCE line.
    open: Option<(TechId, u64, u64)>,
    /// Every performance seen in the file, with its PERFORMANCE line.
    seen: HashMap<TechId, u64>,
    /// Places of the open snapshot, with their line.
    places: HashMap<PlaceKey, u64>,
    /// Line ids of the RESOLUTION lines read.
    resolved: HashSet<u64>,
}

impl Groups {
    fn line(&mut self, row: &Row<'_>) -> Result<Line, FormatError> {
        let ty = row.choice(TYPE, &TYPES)?;
        let kind = ty.as_str();
        if ty == Type::Resolution {
            return self.resolution(row, kind);
        }
        for col in [LINE, DECISION, REASON, DECIDED] {
            row.forbid(col, kind)?;
        }
        let performance = row.id(PERFORMANCE, kind)?;
        let version = row.number(VERSION, kind)?;
        if version > MAX_VERSION {
            return Err(row.error(
                VERSION,
                "version-out-of-range",
                format!("expected a version of 1 to {MAX_VERSION}, found {version}"),
            ));
        }
        if ty == Type::Performance {
            return self.open_snapshot(row, performance, version, kind);
        }

        // SEAT or ZONE: inside the snapshot opened by the PERFORMANCE line.
        self.check_open(row, performance, version, kind)?;

        let (line, key, col) = match ty {
            Type::Seat => {
                let block = row.id(BLOCK, kind)?;
                let r = row.code(ROW, kind)?;
                let seat = row.code(SEAT, kind)?;
                row.forbid(ZONE, kind)?;
                row.forbid(QUANTITY, kind)?;
                let seat_category = row.id(SEAT_CATEGORY, kind)?;
                let key = PlaceKey::Seat(block, r.packed(), seat.packed());
                let line = Line::Seat {
                    performance,
                    version,
                    block,
                    row: r,
                    seat,
                    seat_category,
                };
                (line, key, SEAT)
            }
            _ => {
                for col in [BLOCK, ROW, SEAT] {
                    row.forbid(col, kind)?;
                }
                let zone = row.id(ZONE, kind)?;
                let quantity = row.quantity(QUANTITY, kind)?;
                let seat_category = row.id(SEAT_CATEGORY, kind)?;
                let line = Line::Zone {
                    performance,
                    version,
                    zone,
                    quantity,
                    seat_category,
                };
                (line, PlaceKey::Zone(zone), ZONE)
            }
        };
        let full = self.places.len() >= MAX_GROUP_PLACES;
        match self.places.entry(key) {
            Entry::Occupied(first) => {
                let what = match &line {
                    Line::Seat {
                        block, row, seat, ..
                    } => format!("seat {block} {row} {seat}"),
                    Line::Zone { zone, .. } => format!("zone {zone}"),
                    other => format!("{other:?}"),
                };
                Err(row.error(
                    col,
                    "contingent-duplicate-seat",
                    format!(
                        "{what} is already in this snapshot on line {}; expected each place once per performance",
                        first.get()
                    ),
                ))
            }
            Entry::Vacant(_) if full => Err(row.error(
                col,
                "contingent-group-too-large",
                format!("expected at most {MAX_GROUP_PLACES} places in one performance's snapshot"),
            )),
            Entry::Vacant(slot) => {
                slot.insert(row.line());
                Ok(line)
            }
        }
    }

    /// A RESOLUTION line: the manager's decision on one line id, told once
    /// per file; it closes the open snapshot.
    fn resolution(&mut self, row: &Row<'_>, kind: &str) -> Result<Line, FormatError> {
        for col in [
            PERFORMANCE,
            VERSION,
            BLOCK,
            ROW,
            SEAT,
            ZONE,
            QUANTITY,
            SEAT_CATEGORY,
        ] {
            row.forbid(col, kind)?;
        }
        let line = row.number(LINE, kind)?;
        if line > MAX_LINE_ID {
            return Err(row.error(
                LINE,
                "bad-number",
                format!("expected a line id of 1 to {MAX_LINE_ID}, found {line}"),
            ));
        }
        let text = row.require(DECISION, kind)?;
        let decision = Decision::parse(text).ok_or_else(|| {
            row.error(
                DECISION,
                "bad-value",
                format!(
                    "expected accepted or dismissed, found {:?}",
                    crate::ident::shorten(text)
                ),
            )
        })?;
        let reason = row.free_text(REASON, kind)?.to_owned();
        let decided = row.time(DECIDED, kind)?;
        if self.resolved.contains(&line) {
            return Err(row.error(
                LINE,
                "contingent-duplicate-resolution",
                format!(
                    "line id {line} is already resolved in this file; expected each line id once"
                ),
            ));
        }
        if self.resolved.len() >= MAX_RESOLUTIONS {
            return Err(row.error(
                LINE,
                "contingent-too-many-resolutions",
                format!("expected at most {MAX_RESOLUTIONS} RESOLUTION lines in one file"),
            ));
        }
        self.resolved.insert(line);
        self.open = None;
        self.places.clear();
        Ok(Line::Resolution {
            line,
            decision,
            reason,
            decided,
        })
    }

    /// A PERFORMANCE line: opens its snapshot (each performance once per
    /// file, at most `MAX_PERFORMANCES`).
    fn open_snapshot(
        &mut self,
        row: &Row<'_>,
        performance: TechId,
        version: u64,
        kind: &str,
    ) -> Result<Line, FormatError> {
        for col in [BLOCK, ROW, SEAT, ZONE, QUANTITY, SEAT_CATEGORY] {
            row.forbid(col, kind)?;
        }
        if let Some(first) = self.seen.get(&performance) {
            return Err(row.error(
                PERFORMANCE,
                "contingent-duplicate-performance",
                format!(
                    "performance {performance} already has its snapshot on line {first}; expected each performance once per file"
                ),
            ));
        }
        if self.seen.len() >= MAX_PERFORMANCES {
            return Err(row.error(
                PERFORMANCE,
                "contingent-too-many-performances",
                format!("expected at most {MAX_PERFORMANCES} performances in one file"),
            ));
        }
        self.seen.insert(performance, row.line());
        self.open = Some((performance, version, row.line()));
        self.places.clear();
        Ok(Line::Performance {
            performance,
            version,
        })
    }

    /// A SEAT or ZONE line must belong to the open snapshot: same
    /// performance, same version.
    fn check_open(
        &self,
        row: &Row<'_>,
        performance: TechId,
        version: u64,
        kind: &str,
    ) -> Result<(), FormatError> {
        match self.open {
            None => {
                return Err(row.error(
                    PERFORMANCE,
                    "contingent-group",
                    format!(
                        "expected a PERFORMANCE line for performance {performance} before its {kind} lines, found none"
                    ),
                ));
            }
            Some((open, _, at)) if open != performance => {
                return Err(row.error(
                    PERFORMANCE,
                    "contingent-group",
                    format!(
                        "expected performance {open} (the snapshot opened on line {at}), found {performance}; each snapshot starts with its own PERFORMANCE line"
                    ),
                ));
            }
            Some((_, open, at)) if open != version => {
                return Err(row.error(
                    VERSION,
                    "contingent-group",
                    format!(
                        "expected version {open} (as on the PERFORMANCE line, line {at}), found {version}"
                    ),
                ));
            }
            Some(_) => {}
        }
        Ok(())
    }
}

/// Reads a `CONTINGENT` payload, one [`Line`] at a time. After the first
/// error, yields nothing more.
pub struct Reader<R: BufRead> {
    csv: CsvReader<R>,
    groups: Groups,
    done: bool,
}

impl<R: BufRead> Reader<R> {
    /// `file` names the payload in errors. Nothing is read yet.
    pub fn new(input: R, file: &str, limits: Limits) -> Self {
        Reader {
            csv: CsvReader::new(input, file, limits, &COLUMNS).optional_after(V1_COLUMNS),
            groups: Groups::default(),
            done: false,
        }
    }

    /// Data lines read so far (the header not counted).
    pub fn records(&self) -> u64 {
        self.csv.records()
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
            .and_then(|row| row.map(|row| self.groups.line(&row)).transpose());
        super::stop_after_error(&mut self.done, next)
    }
}

/// Writes the canonical `CONTINGENT` payload. Checks what it can without
/// memory (version ≥ 1, quantity ≥ 1, each SEAT/ZONE line inside the
/// snapshot of its PERFORMANCE line); a performance or a place given twice is
/// the caller's to avoid (the store's keys make it impossible).
pub struct Writer<W: Write> {
    csv: CsvWriter<W>,
    open: Option<(TechId, u64)>,
    /// The header has the RESOLUTION columns.
    resolutions: bool,
}

impl<W: Write> Writer<W> {
    /// Writes the version 1 header: no RESOLUTION line may follow.
    pub fn new(out: W) -> Result<Self, WriteError> {
        Ok(Writer {
            csv: CsvWriter::new(out, HEADER_V1)?,
            open: None,
            resolutions: false,
        })
    }

    /// Writes the whole header ([`COLUMNS`]): for a file that carries
    /// RESOLUTION lines.
    pub fn with_resolutions(out: W) -> Result<Self, WriteError> {
        Ok(Writer {
            csv: CsvWriter::new(out, &COLUMNS)?,
            open: None,
            resolutions: true,
        })
    }

    pub fn write(&mut self, line: &Line) -> Result<(), WriteError> {
        let invalid = |m: String| Err(WriteError::Invalid(m));
        if let Line::Resolution { .. } = line {
            return self.write_resolution(line);
        }
        let (performance, version) = match line {
            Line::Performance {
                performance,
                version,
            }
            | Line::Seat {
                performance,
                version,
                ..
            }
            | Line::Zone {
                performance,
                version,
                ..
            } => (*performance, *version),
            Line::Resolution { .. } => return invalid("a resolution".to_owned()),
        };
        if version == 0 || version > MAX_VERSION {
            return invalid(format!(
                "performance {performance}: version {version} (versions go from 1 to {MAX_VERSION})"
            ));
        }
        match line {
            Line::Performance { .. } => self.open = Some((performance, version)),
            _ if self.open != Some((performance, version)) => {
                return invalid(format!(
                    "a place of performance {performance} version {version} outside its snapshot (write its PERFORMANCE line first)"
                ));
            }
            _ => {}
        }
        match line {
            Line::Zone { zone, quantity, .. } if *quantity == 0 => {
                return invalid(format!("zone {zone}: quantity 0"));
            }
            _ => {}
        }
        let w = &mut self.csv;
        w.field(performance)?;
        w.field(version)?;
        match line {
            Line::Performance { .. } => {
                w.field("PERFORMANCE")?;
                for _ in 0..6 {
                    w.empty();
                }
            }
            Line::Seat {
                block,
                row,
                seat,
                seat_category,
                ..
            } => {
                w.field("SEAT")?;
                w.field(block)?;
                w.field(row)?;
                w.field(seat)?;
                w.empty();
                w.empty();
                w.field(seat_category)?;
            }
            Line::Zone {
                zone,
                quantity,
                seat_category,
                ..
            } => {
                w.field("ZONE")?;
                for _ in 0..3 {
                    w.empty();
                }
                w.field(zone)?;
                w.field(quantity)?;
                w.field(seat_category)?;
            }
            Line::Resolution { .. } => {}
        }
        if self.resolutions {
            for _ in 0..4 {
                w.empty();
            }
        }
        w.end_line()
    }

    fn write_resolution(&mut self, line: &Line) -> Result<(), WriteError> {
        let Line::Resolution {
            line,
            decision,
            reason,
            decided,
        } = line
        else {
            return Err(WriteError::Invalid("not a resolution".to_owned()));
        };
        if !self.resolutions {
            return Err(WriteError::Invalid(format!(
                "line id {line}: a RESOLUTION line in a file written without its columns (Writer::with_resolutions)"
            )));
        }
        if *line == 0 || *line > MAX_LINE_ID {
            return Err(WriteError::Invalid(format!(
                "line id {line} (line ids go from 1 to {MAX_LINE_ID})"
            )));
        }
        if reason.is_empty() {
            return Err(WriteError::Invalid(format!("line id {line}: empty reason")));
        }
        let decided = format_time(*decided)?;
        self.open = None;
        let w = &mut self.csv;
        for _ in 0..2 {
            w.empty();
        }
        w.field("RESOLUTION")?;
        for _ in 0..6 {
            w.empty();
        }
        w.field(line)?;
        w.field(decision.as_str())?;
        w.field(reason)?;
        w.field(decided)?;
        w.end_line()
    }

    /// Flushes; returns the output and the number of data lines written.
    pub fn finish(self) -> Result<(W, u64), WriteError> {
        self.csv.finish()
    }
}

#[cfg(test)]
mod tests;
