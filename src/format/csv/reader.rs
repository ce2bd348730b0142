//! The CSV reader: [`CsvReader`] takes a payload's bytes (through the
//! [`Guard`]), checks the header against the payload's
//! canonical columns and every field's size and characters, and yields one
//! [`Row`] at a time; a [`Row`] gives each field by canonical column, parsed
//! by the field parsers, with errors naming the file, line and column.

use std::io::BufRead;

use csv::{ByteRecord, StringRecord};
use time::OffsetDateTime;

use super::fields::*;
use super::guard::Guard;
use crate::format::{FormatError, Limits, Position};
use crate::ident::{Code, TechId, shorten};
use crate::money::Currency;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Body,
    Done,
}

/// Reads a CSV payload one record at a time, the columns mapped to
/// `columns` (the payload's canonical header).
pub struct CsvReader<R: BufRead> {
    rdr: csv::Reader<Guard<R>>,
    file: String,
    limits: Limits,
    columns: &'static [&'static str],
    /// The canonical columns of the format's later versions (2, 3…): a
    /// header naming a column only a later version has is read as that
    /// version.
    later: &'static [&'static [&'static str]],
    /// The format version the header showed (1 until it is read).
    version: u32,
    /// The first `required` columns must be in the header; the others may
    /// be missing (a later format's columns, absent from earlier files),
    /// and then read as empty.
    required: usize,
    /// Canonical column → position in the file.
    index: Vec<usize>,
    /// Position in the file → canonical column name.
    names: Vec<&'static str>,
    record: StringRecord,
    /// Physical line of the current record.
    line: u64,
    records: u64,
    state: State,
}

impl<R: BufRead> CsvReader<R> {
    /// No input is read until the first [`CsvReader::next_row`].
    pub fn new(
        input: R,
        file: &str,
        limits: Limits,
        columns: &'static [&'static str],
    ) -> CsvReader<R> {
        let rdr = csv::ReaderBuilder::new()
            .delimiter(b';')
            .quote(b'"')
            .quoting(true)
            .double_quote(true)
            .escape(None)
            .comment(None)
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::None)
            .terminator(csv::Terminator::CRLF)
            .from_reader(Guard::new(input, &limits));
        CsvReader {
            rdr,
            file: file.to_owned(),
            limits,
            columns,
            later: &[],
            version: 1,
            required: columns.len(),
            index: Vec::new(),
            names: Vec::new(),
            record: StringRecord::new(),
            line: 0,
            records: 0,
            state: State::Start,
        }
    }

    /// Only the first `required` columns must be in the header; a missing
    /// later one reads as empty on every line (columns a later version of
    /// the payload added, absent from files of earlier versions).
    pub fn optional_after(mut self, required: usize) -> CsvReader<R> {
        self.required = required.min(self.columns.len());
        self
    }

    /// Data records read so far (the header not counted).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Also reads the later versions of the format, whose canonical columns
    /// are `later` (version 2 first); each must keep the columns of the
    /// version before it, in the same order, and add its own after them.
    pub fn with_later(mut self, later: &'static [&'static [&'static str]]) -> Self {
        self.later = later;
        self
    }

    /// The format version of the file, as its header shows (1 before the
    /// header is read).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Whether the header names canonical column `col` (an optional
    /// column may be absent), once the header is read.
    pub fn has_column(&self, col: usize) -> bool {
        self.index.get(col).is_some_and(|p| *p != usize::MAX)
    }

    /// The file name given to [`CsvReader::new`], for error messages.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The next data record, `Ok(None)` at the end. After an error or the
    /// end, always `Ok(None)`.
    pub fn next_row(&mut self) -> Result<Option<Row<'_>>, FormatError> {
        let step = match self.state {
            State::Done => Ok(false),
            State::Start => self.read_header().and_then(|()| self.advance()),
            State::Body => self.advance(),
        };
        match step {
            Ok(true) => Ok(Some(Row {
                file: &self.file,
                line: self.line,
                columns: self.columns,
                index: &self.index,
                record: &self.record,
                version: self.version,
            })),
            Ok(false) => {
                self.state = State::Done;
                Ok(None)
            }
            Err(e) => {
                self.state = State::Done;
                Err(e)
            }
        }
    }

    fn error(&self, position: Position, code: &'static str, problem: String) -> FormatError {
        FormatError::new(self.file.as_str(), position, code, problem)
    }

    /// Reads the next physical record into `bytes`.
    fn read_raw(&mut self, bytes: &mut ByteRecord) -> Result<bool, FormatError> {
        match self.rdr.read_byte_record(bytes) {
            Ok(more) => Ok(more),
            Err(e) => Err(self.read_error(&e)),
        }
    }

    fn read_error(&self, e: &csv::Error) -> FormatError {
        if let Some(g) = &self.rdr.get_ref().lex.error {
            let position = match g.line {
                None => Position::File,
                Some(line) => match g.field {
                    Some(i) if line > 1 => match self.names.get(i) {
                        Some(name) => Position::field(line, *name),
                        None => Position::line(line),
                    },
                    _ => Position::line(line),
                },
            };
            return self.error(position, g.code, g.problem.clone());
        }
        let line = self.line + 1;
        match e.kind() {
            csv::ErrorKind::Io(io) => self.error(
                Position::line(line),
                crate::format::READ_FAILED,
                format!("read failed: {io}"),
            ),
            _ => self.error(Position::line(line), "csv-syntax", format!("{e}")),
        }
    }

    /// Checks every field of a raw record: size, UTF-8, characters.
    fn check_fields(&self, bytes: &ByteRecord, line: u64) -> Result<(), FormatError> {
        // Fast path: printable ASCII throughout needs no UTF-8 or character
        // check, only the sizes.
        let all = bytes.as_slice();
        let mut k = 0;
        while k < all.len() && (0x20..0x7f).contains(&all[k]) {
            k += 1;
        }
        let plain = k == all.len();
        for (i, field) in bytes.iter().enumerate() {
            let position = || match self.names.get(i) {
                Some(name) if line > 1 => Position::field(line, *name),
                _ => Position::line(line),
            };
            if field.len() > self.limits.max_field_bytes {
                return Err(self.error(
                    position(),
                    "csv-too-long",
                    format!(
                        "the field is {} bytes long, the limit is {}",
                        field.len(),
                        self.limits.max_field_bytes
                    ),
                ));
            }
            if plain {
                continue;
            }
            let text = std::str::from_utf8(field).map_err(|e| {
                self.error(
                    position(),
                    "csv-utf8",
                    format!(
                        "expected UTF-8 text, found an invalid byte sequence at byte {} of the field",
                        e.valid_up_to()
                    ),
                )
            })?;
            if let Some(c) = text.chars().find(|c| *c == '\u{feff}' || c.is_control()) {
                let (code, problem) = if c == '\u{feff}' {
                    (
                        "csv-bom",
                        format!(
                            "found a byte order mark (U+FEFF) inside the field {:?}; one is allowed only as the first bytes of the file",
                            shorten(text)
                        ),
                    )
                } else {
                    (
                        "csv-control",
                        format!(
                            "expected text without control characters, found U+{:04X} in {:?}",
                            u32::from(c),
                            shorten(text)
                        ),
                    )
                };
                return Err(self.error(position(), code, problem));
            }
        }
        Ok(())
    }

    fn read_header(&mut self) -> Result<(), FormatError> {
        let mut bytes = ByteRecord::new();
        if !self.read_raw(&mut bytes)? {
            return Err(self.error(
                Position::line(1),
                "csv-empty",
                "expected the header line, found an empty file".into(),
            ));
        }
        self.line = 1;
        self.check_fields(&bytes, 1)?;
        let header = StringRecord::from_byte_record(bytes)
            .map_err(|_| self.error(Position::line(1), "csv-utf8", "expected UTF-8 text".into()))?;
        // The latest version one of whose own columns the header names.
        let v1 = self.columns;
        if let Some((i, cols)) = self
            .later
            .iter()
            .enumerate()
            .rev()
            .find(|(_, cols)| header.iter().any(|h| cols.contains(&h) && !v1.contains(&h)))
        {
            self.columns = cols;
            self.version = u32::try_from(i).unwrap_or(u32::MAX).saturating_add(2);
        }
        let expected = self.columns.join(";");
        if header.len() == 1
            && let Some(first) = header.get(0)
            && let Some(sep) = [',', '\t', '|'].into_iter().find(|c| first.contains(*c))
        {
            return Err(self.error(
                        Position::line(1),
                        "csv-delimiter",
                        format!(
                            "expected ';' between columns, found {sep:?} in the header (expected {expected})"
                        ),
                    ));
        }
        let mut index = vec![usize::MAX; self.columns.len()];
        let mut names = Vec::with_capacity(header.len());
        for (pos, name) in header.iter().enumerate() {
            let Some(c) = self.columns.iter().position(|col| *col == name) else {
                return Err(self.error(
                    Position::field(1, shorten(name)),
                    "csv-unknown-column",
                    format!(
                        "unknown column {:?}; expected the columns {expected}",
                        shorten(name)
                    ),
                ));
            };
            match index.get_mut(c) {
                Some(slot) if *slot != usize::MAX => {
                    return Err(self.error(
                        Position::field(1, name),
                        "csv-duplicate-column",
                        format!(
                            "column {name} appears twice (columns {} and {}); expected each of {expected} once",
                            *slot + 1,
                            pos + 1
                        ),
                    ));
                }
                Some(slot) => *slot = pos,
                None => {}
            }
            if let Some(col) = self.columns.get(c) {
                names.push(*col);
            }
        }
        if let Some(c) = index
            .iter()
            .take(self.required)
            .position(|p| *p == usize::MAX)
        {
            let name = self.columns.get(c).copied().unwrap_or("?");
            return Err(self.error(
                Position::field(1, name),
                "csv-missing-column",
                format!("missing column {name}; expected the columns {expected}"),
            ));
        }
        self.index = index;
        self.names = names;
        self.state = State::Body;
        Ok(())
    }

    /// Reads and checks the next data record into `self.record`.
    fn advance(&mut self) -> Result<bool, FormatError> {
        let mut bytes = std::mem::take(&mut self.record).into_byte_record();
        if !self.read_raw(&mut bytes)? {
            return Ok(false);
        }
        self.line += 1;
        self.records += 1;
        if self.records > self.limits.max_records {
            return Err(self.error(
                Position::File,
                "csv-too-many-records",
                format!(
                    "the file has more than the limit of {} records",
                    self.limits.max_records
                ),
            ));
        }
        if bytes.len() != self.names.len() {
            return Err(self.error(
                Position::line(self.line),
                "csv-field-count",
                format!(
                    "expected {} fields as in the header, found {}",
                    self.names.len(),
                    bytes.len()
                ),
            ));
        }
        self.check_fields(&bytes, self.line)?;
        self.record = StringRecord::from_byte_record(bytes).map_err(|e| {
            let field = e.utf8_error().field();
            let position = match self.names.get(field) {
                Some(name) => Position::field(self.line, *name),
                None => Position::line(self.line),
            };
            self.error(position, "csv-utf8", "expected UTF-8 text".into())
        })?;
        Ok(true)
    }
}

/// One data record, its columns in the payload's canonical order. Each
/// accessor takes the canonical column index (the payload's `COLUMNS`) and a
/// line type for messages ("expected a value in block on SEAT lines").
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    file: &'a str,
    line: u64,
    columns: &'static [&'static str],
    index: &'a [usize],
    record: &'a StringRecord,
    version: u32,
}

impl<'a> Row<'a> {
    /// Physical line, 1-based (the header is line 1).
    pub fn line(&self) -> u64 {
        self.line
    }

    /// The format version of the file (see [`CsvReader::version`]).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The column's name.
    pub fn name(&self, col: usize) -> &'static str {
        self.columns.get(col).copied().unwrap_or("?")
    }

    /// The column's raw text (never trimmed).
    pub fn text(&self, col: usize) -> &'a str {
        self.index
            .get(col)
            .and_then(|p| self.record.get(*p))
            .unwrap_or("")
    }

    pub fn is_empty(&self, col: usize) -> bool {
        self.text(col).is_empty()
    }

    /// An error at this line and column.
    pub fn error(&self, col: usize, code: &'static str, problem: impl Into<String>) -> FormatError {
        FormatError::new(
            self.file,
            Position::field(self.line, self.name(col)),
            code,
            problem,
        )
    }

    /// An error at this line, no column.
    pub fn line_error(&self, code: &'static str, problem: impl Into<String>) -> FormatError {
        FormatError::new(self.file, Position::line(self.line), code, problem)
    }

    /// The column must be empty for this line type (`unexpected-field`).
    pub fn forbid(&self, col: usize, kind: &str) -> Result<(), FormatError> {
        let v = self.text(col);
        if v.is_empty() {
            Ok(())
        } else {
            Err(self.error(
                col,
                "unexpected-field",
                format!(
                    "expected {} empty on {kind} lines, found {:?}",
                    self.name(col),
                    shorten(v)
                ),
            ))
        }
    }

    /// The column must have a value for this line type (`missing-field`).
    pub fn require(&self, col: usize, kind: &str) -> Result<&'a str, FormatError> {
        let v = self.text(col);
        if v.is_empty() {
            Err(self.error(
                col,
                "missing-field",
                format!("expected a value in {} on {kind} lines", self.name(col)),
            ))
        } else {
            Ok(v)
        }
    }

    /// A required column of free text (a reason): any character but the
    /// two that would need quoting, `;` and `"`, which the writer never
    /// writes (a quoted field or a quote inside a field is refused here,
    /// so what is read can be written back as read).
    pub fn free_text(&self, col: usize, kind: &str) -> Result<&'a str, FormatError> {
        let v = self.require(col, kind)?;
        match v.chars().find(|c| matches!(c, ';' | '"')) {
            Some(c) => Err(self.error(
                col,
                "bad-value",
                format!(
                    "expected text without ';' or '\"' in {} (files are written without quoting), found {c:?}",
                    self.name(col)
                ),
            )),
            None => Ok(v),
        }
    }

    /// A required column parsed by `parse`.
    pub fn parse<T>(
        &self,
        col: usize,
        kind: &str,
        parse: impl FnOnce(&str) -> Result<T, FieldError>,
    ) -> Result<T, FormatError> {
        let v = self.require(col, kind)?;
        parse(v).map_err(|e| self.error(col, e.code, e.problem))
    }

    pub fn id(&self, col: usize, kind: &str) -> Result<TechId, FormatError> {
        self.parse(col, kind, parse_id)
    }

    pub fn code(&self, col: usize, kind: &str) -> Result<Code, FormatError> {
        self.parse(col, kind, parse_code)
    }

    pub fn number(&self, col: usize, kind: &str) -> Result<u64, FormatError> {
        self.parse(col, kind, parse_number)
    }

    pub fn quantity(&self, col: usize, kind: &str) -> Result<u32, FormatError> {
        self.parse(col, kind, parse_quantity)
    }

    /// An amount; an empty one is `missing-field`, like any required value.
    pub fn amount(&self, col: usize, kind: &str) -> Result<i64, FormatError> {
        self.parse(col, kind, parse_amount)
    }

    pub fn currency(&self, col: usize, kind: &str) -> Result<Currency, FormatError> {
        self.parse(col, kind, parse_currency)
    }

    pub fn time(&self, col: usize, kind: &str) -> Result<OffsetDateTime, FormatError> {
        self.parse(col, kind, parse_time)
    }

    /// The column that says what the line is: required on every line.
    pub fn choice<T: Copy>(&self, col: usize, choices: &[(&str, T)]) -> Result<T, FormatError> {
        self.parse(col, "all", |s| parse_choice(s, choices))
    }
}
