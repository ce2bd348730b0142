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
//! `performance;version;type;block;row;seat;zone;quantity;seat_category`
//!
//! Rules, with the error code of each:
//! - `type` is `PERFORMANCE`, `SEAT` or `ZONE` (`bad-value`; empty:
//!   `missing-field`).
//! - Every line: `performance` a technical id (`bad-id`), `version` a whole
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

use std::collections::HashMap;
use std::io::{BufRead, Write};

use super::csv::{CsvReader, CsvWriter, Row};
use super::{FormatError, Limits, WriteError};
use crate::ident::{Code, TechId};

/// The largest contingent version: 999,999,999,999,999 (15 digits, like the
/// largest amount). Versions grow by one at each change of a performance's
/// allotment, so real ones stay far below it (a change a second for thirty
/// million years), it is exact in a JSON number (below 2^53) and in the
/// stores' integers, and a version at `u64::MAX` or `i64::MAX`, which would
/// make every later snapshot "older" and freeze the performance, is refused
/// as the file is read. The distributor also refuses a version far ahead of
/// the one it applied (`domain::selling::MAX_VERSION_JUMP`).
pub const MAX_VERSION: u64 = 999_999_999_999_999;

/// The header, in the order the writer emits it.
pub const COLUMNS: [&str; 9] = [
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
}

impl Type {
    fn as_str(self) -> &'static str {
        match self {
            Type::Performance => "PERFORMANCE",
            Type::Seat => "SEAT",
            Type::Zone => "ZONE",
        }
    }
}

const TYPES: [(&str, Type); 3] = [
    ("PERFORMANCE", Type::Performance),
    ("SEAT", Type::Seat),
    ("ZONE", Type::Zone),
];

/// A place of a snapshot, to find one listed twice.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum PlaceKey {
    Seat(TechId, Code, Code),
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
}

impl Groups {
    fn line(&mut self, row: &Row<'_>) -> Result<Line, FormatError> {
        let ty = row.choice(TYPE, &TYPES)?;
        let kind = ty.as_str();
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
                let key = PlaceKey::Seat(block, r.clone(), seat.clone());
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
        if let Some(first) = self.places.get(&key) {
            let what = match &key {
                PlaceKey::Seat(b, r, s) => format!("seat {b} {r} {s}"),
                PlaceKey::Zone(z) => format!("zone {z}"),
            };
            return Err(row.error(
                col,
                "contingent-duplicate-seat",
                format!(
                    "{what} is already in this snapshot on line {first}; expected each place once per performance"
                ),
            ));
        }
        if self.places.len() >= MAX_GROUP_PLACES {
            return Err(row.error(
                col,
                "contingent-group-too-large",
                format!("expected at most {MAX_GROUP_PLACES} places in one performance's snapshot"),
            ));
        }
        self.places.insert(key, row.line());
        Ok(line)
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
            csv: CsvReader::new(input, file, limits, &COLUMNS),
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
}

impl<W: Write> Writer<W> {
    /// Writes the header.
    pub fn new(out: W) -> Result<Self, WriteError> {
        Ok(Writer {
            csv: CsvWriter::new(out, &COLUMNS)?,
            open: None,
        })
    }

    pub fn write(&mut self, line: &Line) -> Result<(), WriteError> {
        let invalid = |m: String| Err(WriteError::Invalid(m));
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
        }
        w.end_line()
    }

    /// Flushes; returns the output and the number of data lines written.
    pub fn finish(self) -> Result<(W, u64), WriteError> {
        self.csv.finish()
    }
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    const HEADER: &str = "performance;version;type;block;row;seat;zone;quantity;seat_category\n";
    const SAMPLE: &str = include_str!("../../samples/payloads/contingent.csv");

    fn read(input: &str) -> Result<Vec<Line>, FormatError> {
        Reader::new(input.as_bytes(), "contingent.csv", Limits::default()).collect()
    }

    fn write(lines: &[Line]) -> Result<Vec<u8>, WriteError> {
        let mut w = Writer::new(Vec::new())?;
        for l in lines {
            w.write(l)?;
        }
        Ok(w.finish()?.0)
    }

    fn id(v: i64) -> TechId {
        TechId::new(v).unwrap()
    }

    #[test]
    fn the_sample_round_trips() {
        let lines = read(SAMPLE).unwrap();
        assert_eq!(lines.len(), 29);
        assert_eq!(
            lines[0],
            Line::Performance {
                performance: id(1701),
                version: 1
            }
        );
        assert_eq!(
            lines[17],
            Line::Zone {
                performance: id(1701),
                version: 1,
                zone: id(3201),
                quantity: 20,
                seat_category: id(2004)
            }
        );
        assert_eq!(write(&lines).unwrap(), SAMPLE.as_bytes());
    }

    #[test]
    fn an_empty_snapshot_takes_everything_back() {
        let text = format!("{HEADER}1701;2;PERFORMANCE;;;;;;\n1702;1;PERFORMANCE;;;;;;\n");
        let lines = read(&text).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(write(&lines).unwrap(), text.as_bytes());
    }

    #[test]
    fn columns_in_any_order_read_the_same() {
        let text = "seat_category;quantity;zone;seat;row;block;type;version;performance\n\
                    ;;;;;;PERFORMANCE;1;1701\n\
                    2001;;;1;A;3301;SEAT;1;1701\n\
                    2004;20;3201;;;;ZONE;1;1701\n";
        let expected = format!(
            "{HEADER}1701;1;PERFORMANCE;;;;;;\n1701;1;SEAT;3301;A;1;;;2001\n1701;1;ZONE;;;;3201;20;2004\n"
        );
        assert_eq!(write(&read(text).unwrap()).unwrap(), expected.as_bytes());
    }

    #[test]
    fn the_same_seat_may_appear_in_two_performances() {
        let text = format!(
            "{HEADER}1701;1;PERFORMANCE;;;;;;\n1701;1;SEAT;3301;A;1;;;2001\n1702;1;PERFORMANCE;;;;;;\n1702;1;SEAT;3301;A;1;;;2001\n"
        );
        assert_eq!(read(&text).unwrap().len(), 4);
    }

    /// The per-snapshot set is emptied by each PERFORMANCE line: memory is
    /// bounded by one venue, not by the file.
    #[test]
    fn the_place_set_holds_one_snapshot_only() {
        let mut text = String::from(HEADER);
        for p in 1..=50 {
            let _ = writeln!(text, "{p};1;PERFORMANCE;;;;;;");
            for s in 1..=20 {
                let _ = writeln!(text, "{p};1;SEAT;3301;A;{s};;;2001");
            }
        }
        let mut r = Reader::new(text.as_bytes(), "c.csv", Limits::default());
        let mut most = 0;
        while let Some(line) = r.next() {
            line.unwrap();
            most = most.max(r.groups.places.len());
        }
        assert_eq!(r.records(), 50 * 21);
        assert_eq!(most, 20);
        assert_eq!(r.groups.seen.len(), 50);
    }

    #[test]
    fn a_snapshot_larger_than_any_venue_is_refused() {
        let mut text = String::from(HEADER);
        text.push_str("1701;1;PERFORMANCE;;;;;;\n");
        for s in 1..=MAX_GROUP_PLACES + 1 {
            let _ = writeln!(text, "1701;1;SEAT;3301;A;{s};;;2001");
        }
        let e = read(&text).unwrap_err();
        assert_eq!(e.code, "contingent-group-too-large");
        assert_eq!(
            e.position.to_string(),
            format!("line {}, field seat", MAX_GROUP_PLACES + 3)
        );
    }

    #[test]
    fn more_performances_than_any_catalogue_are_refused() {
        let mut text = String::from(HEADER);
        for p in 1..=MAX_PERFORMANCES + 1 {
            let _ = writeln!(text, "{p};1;PERFORMANCE;;;;;;");
        }
        let e = read(&text).unwrap_err();
        assert_eq!(e.code, "contingent-too-many-performances");
        assert_eq!(
            e.position.to_string(),
            format!("line {}, field performance", MAX_PERFORMANCES + 2)
        );
    }

    #[test]
    fn the_reader_stops_after_its_first_error() {
        let text = format!("{HEADER}1701;1;SEAT;3301;A;1;;;2001\n1701;1;PERFORMANCE;;;;;;\n");
        let mut r = Reader::new(text.as_bytes(), "c.csv", Limits::default());
        let e = r.next().unwrap().unwrap_err();
        assert_eq!(e.code, "contingent-group");
        assert_eq!(e.file, "c.csv");
        assert!(r.next().is_none());
        assert_eq!(r.records(), 1);
    }

    #[test]
    fn the_writer_refuses_what_the_reader_would_refuse() {
        let perf = Line::Performance {
            performance: id(1701),
            version: 1,
        };
        let seat = |row: &str, version: u64| Line::Seat {
            performance: id(1701),
            version,
            block: id(3301),
            row: Code::new(row).unwrap(),
            seat: Code::new("1").unwrap(),
            seat_category: id(2001),
        };
        let zone = |quantity: u32| Line::Zone {
            performance: id(1701),
            version: 1,
            zone: id(3201),
            quantity,
            seat_category: id(2004),
        };
        assert!(write(&[perf.clone(), seat("A", 1), zone(1)]).is_ok());
        assert!(
            write(&[seat("A", 1)]).is_err(),
            "seat before its PERFORMANCE line"
        );
        assert!(
            write(&[perf.clone(), seat("A", 2)]).is_err(),
            "other version"
        );
        assert!(write(&[perf.clone(), zone(0)]).is_err(), "quantity 0");
        let v0 = Line::Performance {
            performance: id(1701),
            version: 0,
        };
        assert!(write(&[v0]).is_err(), "version 0");
        // A refused line leaves nothing half-written.
        let mut w = Writer::new(Vec::new()).unwrap();
        w.write(&perf).unwrap();
        assert!(w.write(&seat("A", 2)).is_err());
        w.write(&seat("A", 1)).unwrap();
        let (out, n) = w.finish().unwrap();
        assert_eq!(n, 2);
        assert_eq!(read(std::str::from_utf8(&out).unwrap()).unwrap().len(), 2);
    }
}
