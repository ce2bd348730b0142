//! Safe CSV reading and writing shared by the CSV payloads (`CONTINGENT`,
//! `SALES`): `;`-separated UTF-8 with a header row, every field checked with
//! its line and column.
//!
//! Takes bytes from a [`BufRead`], yields one [`Row`] at a time (the columns
//! already mapped by name to the payload's canonical order), and offers the
//! field parsers the payloads share. It knows nothing of what a line means:
//! which fields a line type needs is the payload module's business.
//!
//! The dialect, strictly:
//! - `;` between fields, `"` quotes fields (a doubled `""` inside), nothing
//!   after a closing quote but `;` or the line end;
//! - UTF-8; one leading byte order mark (U+FEFF, written by spreadsheets) is
//!   skipped; U+FEFF anywhere else, NUL and every other control character
//!   (tab included) in a field are refused;
//! - line ends are LF or CRLF, one kind per file; no blank line; no line break
//!   inside a quoted field (no field of ours needs one), so one record is one
//!   physical line and line numbers are physical lines, header = line 1;
//! - header first, columns mapped by name in any order; unknown, missing and
//!   duplicated columns are refused; a header alone is a valid empty file;
//! - fields are never trimmed: a space is an error of the field's type.
//!
//! Memory is bounded before anything is buffered: the input passes through a
//! guard that counts bytes per physical line and per file and stops at
//! [`Limits::max_record_bytes`] / [`Limits::max_file_bytes`], so a 10 MB line
//! is refused after 16 KiB, not after reading it. The guard also enforces the
//! quoting and line-end rules above, which the `csv` crate would accept
//! silently (it skips blank lines, accepts a bare CR as a line end, text after
//! a closing quote and an unclosed quote at end of file).
//!
//! A file cut short in the middle of a field (`45` for `4500`) still reads as
//! a valid file: catching truncation is the envelope's job (size, count,
//! digest), never this parser's.
//!
//! Writing is the mirror: [`CsvWriter`] emits the header in canonical order,
//! `;`, LF, a final newline and no quoting, and refuses any value that would
//! need quoting (validated values never do).

use std::fmt::{self, Write as _};
use std::io::{self, BufRead, Read, Write};

use csv::{ByteRecord, StringRecord};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{FormatError, Limits, Position, WriteError};
use crate::ident::{Code, TechId, shorten};
use crate::money::{self, Currency, MoneyError};

/// The UTF-8 byte order mark, accepted once at the very start of a file.
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// Why a single field was refused; [`Row`] adds the file and position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub code: &'static str,
    pub problem: String,
}

impl FieldError {
    pub fn new(code: &'static str, problem: impl Into<String>) -> FieldError {
        FieldError {
            code,
            problem: problem.into(),
        }
    }
}

impl From<crate::ident::IdentError> for FieldError {
    fn from(e: crate::ident::IdentError) -> FieldError {
        FieldError::new(e.code(), e.to_string())
    }
}

impl From<MoneyError> for FieldError {
    fn from(e: MoneyError) -> FieldError {
        FieldError::new(e.code(), e.to_string())
    }
}

// ---------------------------------------------------------------------------
// Field parsers
// ---------------------------------------------------------------------------

/// A technical id (`bad-id`).
pub fn parse_id(s: &str) -> Result<TechId, FieldError> {
    Ok(TechId::parse(s)?)
}

/// A code (`bad-code`); [`Code::new`] already refuses anything a spreadsheet
/// would read as a formula.
pub fn parse_code(s: &str) -> Result<Code, FieldError> {
    Ok(Code::new(s)?)
}

/// An amount in minor units (`money-*`). A value with spaces around it is
/// `money-not-digits` (the shared parser trims before classifying, which would
/// call ` 8500` a decimal problem).
pub fn parse_amount(s: &str) -> Result<i64, FieldError> {
    if !s.is_empty() && s.trim() != s {
        return Err(MoneyError::NotDigits(shorten(s)).into());
    }
    Ok(money::parse_minor_units(s)?)
}

/// An ISO 4217 currency (`bad-currency`).
pub fn parse_currency(s: &str) -> Result<Currency, FieldError> {
    Ok(Currency::new(s)?)
}

/// Digits only, no sign, exponent, separator or leading zero.
fn plain_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && !(s.len() > 1 && s.starts_with('0'))
}

/// A version or a line id (`bad-number`): a positive integer that fits 64
/// bits, digits only, no leading zero.
pub fn parse_number(s: &str) -> Result<u64, FieldError> {
    match s.parse::<u64>() {
        Ok(v) if v > 0 && plain_digits(s) => Ok(v),
        _ => Err(FieldError::new(
            "bad-number",
            format!(
                "expected a whole number from 1 to {} (digits only, no sign, separator or leading zero), found {:?}",
                u64::MAX,
                shorten(s)
            ),
        )),
    }
}

/// A quantity of places (`bad-number`): 1 to `u32::MAX`.
pub fn parse_quantity(s: &str) -> Result<u32, FieldError> {
    match s.parse::<u32>() {
        Ok(v) if v > 0 && plain_digits(s) => Ok(v),
        _ => Err(FieldError::new(
            "bad-number",
            format!(
                "expected a quantity from 1 to {} (digits only), found {:?}",
                u32::MAX,
                shorten(s)
            ),
        )),
    }
}

/// A time (`bad-time`): RFC 3339 in UTC with `Z` and whole seconds, exactly
/// as [`format_time`] writes it (`2026-12-01T10:15:00Z`).
pub fn parse_time(s: &str) -> Result<OffsetDateTime, FieldError> {
    let bad = || {
        FieldError::new(
            "bad-time",
            format!(
                "expected a UTC time in RFC 3339 with whole seconds and Z (2026-12-01T10:15:00Z), found {:?}",
                shorten(s)
            ),
        )
    };
    // Only the canonical spelling passes: `YYYY-MM-DDTHH:MM:SSZ`, so no
    // `+00:00`, no `.000`, no `t`/`z`; RFC 3339 parsing checks the calendar.
    const SHAPE: &[u8; 20] = b"0000-00-00T00:00:00Z";
    let shaped = s.len() == SHAPE.len()
        && s.bytes().zip(SHAPE.iter()).all(|(b, want)| {
            if *want == b'0' {
                b.is_ascii_digit()
            } else {
                b == *want
            }
        });
    if !shaped {
        return Err(bad());
    }
    let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| bad())?;
    // A leap second (`:60`) parses to a fraction of a second: refused too.
    if !t.offset().is_utc() || t.nanosecond() != 0 {
        return Err(bad());
    }
    Ok(t)
}

/// Writes a time the way [`parse_time`] reads it; refuses what it would not
/// read back (another offset, fractions of seconds, years beyond 9999).
pub fn format_time(t: OffsetDateTime) -> Result<String, WriteError> {
    if !t.offset().is_utc() || t.nanosecond() != 0 {
        return Err(WriteError::Invalid(format!(
            "time {t} is not UTC with whole seconds"
        )));
    }
    t.format(&Rfc3339)
        .map_err(|e| WriteError::Invalid(format!("time {t} cannot be written: {e}")))
}

/// One of a fixed set of words (`bad-value`).
pub fn parse_choice<T: Copy>(s: &str, choices: &[(&str, T)]) -> Result<T, FieldError> {
    choices
        .iter()
        .find(|(word, _)| *word == s)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let words: Vec<&str> = choices.iter().map(|(w, _)| *w).collect();
            FieldError::new(
                "bad-value",
                format!(
                    "expected one of {}, found {:?}",
                    words.join(", "),
                    shorten(s)
                ),
            )
        })
}

// ---------------------------------------------------------------------------
// The guard: bounded, strict physical lines
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ends {
    Lf,
    CrLf,
}

impl fmt::Display for Ends {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ends::Lf => "LF",
            Ends::CrLf => "CRLF",
        })
    }
}

/// The bytes the guard looks at one by one (LF, CR, `"`, `;`); every other
/// byte only counts.
const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'\n' as usize] = true;
    t[b'\r' as usize] = true;
    t[b'"' as usize] = true;
    t[b';' as usize] = true;
    t
};

/// Where the lexer is within a field, mirroring the `csv` crate's reading
/// (so both agree where fields start and end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quote {
    FieldStart,
    Unquoted,
    Quoted,
    /// A `"` seen inside a quoted field: either the closing quote or the
    /// first half of a doubled one.
    Closing,
}

/// A problem the guard found; the field is an index (the header may not be
/// known yet) that [`CsvReader`] turns into a column name.
#[derive(Debug, Clone)]
struct GuardError {
    /// `None`: the file as a whole.
    line: Option<u64>,
    field: Option<usize>,
    code: &'static str,
    problem: String,
}

/// Byte-level state of the guard, apart from the input so the input's buffer
/// can be borrowed while it changes.
#[derive(Debug)]
struct Lexer {
    max_record_bytes: usize,
    max_file_bytes: u64,
    total: u64,
    /// Current physical line, 1-based.
    line: u64,
    /// Bytes of the current line so far, terminator included.
    line_bytes: usize,
    /// Field index within the current line, 0-based.
    field: usize,
    quote: Quote,
    /// The previous byte was a CR outside quotes.
    cr: bool,
    ends: Option<Ends>,
    error: Option<GuardError>,
}

impl Lexer {
    fn fail(&self, field: bool, code: &'static str, problem: String) -> GuardError {
        GuardError {
            line: Some(self.line),
            field: field.then_some(self.field),
            code,
            problem,
        }
    }

    /// Copies bytes from `src` to `out` until one is full or a line ends
    /// (so the `csv` reader never holds more than the line it is reading).
    /// Returns how many bytes were taken; on a problem, records it in
    /// `self.error`. Runs of ordinary bytes are taken in one step.
    fn scan(&mut self, src: &[u8], out: &mut [u8]) -> usize {
        let end = src.len().min(out.len());
        let (Some(src_part), Some(out_part)) = (src.get(..end), out.get_mut(..end)) else {
            return 0;
        };
        let mut i = 0;
        while i < end {
            // A plain loop: this is the hot path, and iterator adaptors are
            // slow in unoptimised (test) builds. `j < end` bounds the index.
            let mut j = i;
            while j < end && !SPECIAL[usize::from(src_part[j])] {
                j += 1;
            }
            let run = j - i;
            if run > 0 {
                if let Err(e) = self.ordinary(run, src_part.get(i).copied().unwrap_or(0)) {
                    self.error = Some(e);
                    return i;
                }
                if let (Some(dst), Some(from)) =
                    (out_part.get_mut(i..i + run), src_part.get(i..i + run))
                {
                    dst.copy_from_slice(from);
                }
                i += run;
            }
            let Some(&b) = src_part.get(i) else {
                break;
            };
            // Keep a CR that ends the available input for the next call, so
            // it is judged together with the byte after it.
            if b == b'\r' && i > 0 && i + 1 == src.len() {
                return i;
            }
            if let Err(e) = self.step(b) {
                self.error = Some(e);
                return i;
            }
            if let Some(o) = out_part.get_mut(i) {
                *o = b;
            }
            i += 1;
            if b == b'\n' {
                return i;
            }
        }
        end
    }

    /// `run` bytes that are neither a line end, a quote nor a separator,
    /// the first being `first`: only counters and the quote state change.
    fn ordinary(&mut self, run: usize, first: u8) -> Result<(), GuardError> {
        self.total += run as u64;
        if self.total > self.max_file_bytes {
            return Err(self.file_too_large());
        }
        if self.cr {
            return Err(self.bare_cr());
        }
        self.line_bytes += run;
        if self.line_bytes > self.max_record_bytes {
            return Err(self.too_long());
        }
        match self.quote {
            Quote::FieldStart => self.quote = Quote::Unquoted,
            Quote::Closing => return Err(self.after_closing_quote(first)),
            Quote::Unquoted | Quote::Quoted => {}
        }
        Ok(())
    }

    fn file_too_large(&self) -> GuardError {
        GuardError {
            line: None,
            field: None,
            code: "csv-file-too-large",
            problem: format!(
                "the payload is larger than the limit of {} bytes",
                self.max_file_bytes
            ),
        }
    }

    fn bare_cr(&self) -> GuardError {
        self.fail(
            false,
            "csv-line-ends",
            "found a carriage return (CR) not followed by a line feed (LF); line ends must be LF or CRLF".into(),
        )
    }

    fn too_long(&self) -> GuardError {
        self.fail(
            true,
            "csv-too-long",
            format!(
                "the line is longer than the limit of {} bytes",
                self.max_record_bytes
            ),
        )
    }

    fn after_closing_quote(&self, b: u8) -> GuardError {
        self.fail(
            true,
            "csv-quote",
            format!(
                "expected ';' or the end of the line after a closing quote, found {:?}",
                char::from(b)
            ),
        )
    }

    /// One byte that is [`SPECIAL`].
    fn step(&mut self, b: u8) -> Result<(), GuardError> {
        self.total += 1;
        if self.total > self.max_file_bytes {
            return Err(self.file_too_large());
        }
        if self.cr && b != b'\n' {
            return Err(self.bare_cr());
        }
        self.line_bytes += 1;
        if self.line_bytes > self.max_record_bytes {
            return Err(self.too_long());
        }
        match b {
            b'\n' => {
                if self.quote == Quote::Quoted {
                    return Err(self.line_break());
                }
                let ends = if self.cr { Ends::CrLf } else { Ends::Lf };
                match self.ends {
                    None => self.ends = Some(ends),
                    Some(first) if first != ends => {
                        return Err(self.fail(
                            false,
                            "csv-line-ends",
                            format!("expected {first} line ends as on line 1, found {ends}"),
                        ));
                    }
                    Some(_) => {}
                }
                if self.line_bytes == 1 + usize::from(self.cr) {
                    return Err(self.fail(
                        false,
                        "csv-blank-line",
                        "expected a record, found a blank line".into(),
                    ));
                }
                self.line += 1;
                self.line_bytes = 0;
                self.field = 0;
                self.quote = Quote::FieldStart;
                self.cr = false;
            }
            b'\r' => {
                if self.quote == Quote::Quoted {
                    return Err(self.line_break());
                }
                self.cr = true;
            }
            b'"' => {
                self.quote = match self.quote {
                    Quote::FieldStart | Quote::Closing => Quote::Quoted,
                    Quote::Quoted => Quote::Closing,
                    // A quote inside an unquoted field is a plain character,
                    // as for the csv crate; no value of ours accepts it, so
                    // the field's parser refuses it with its column.
                    Quote::Unquoted => Quote::Unquoted,
                };
            }
            // b';'
            _ => {
                if self.quote != Quote::Quoted {
                    self.field += 1;
                    self.quote = Quote::FieldStart;
                }
            }
        }
        Ok(())
    }

    fn line_break(&self) -> GuardError {
        self.fail(
            true,
            "csv-line-break",
            "found a line break inside a quoted field (or a quote never closed on its line); fields may not span lines".into(),
        )
    }

    /// End of input: nothing may be left open.
    fn finish(&mut self) {
        if self.error.is_some() {
            return;
        }
        if self.cr {
            self.error = Some(self.fail(
                false,
                "csv-line-ends",
                "the file ends with a carriage return (CR) not followed by a line feed (LF)".into(),
            ));
        } else if self.quote == Quote::Quoted {
            self.error = Some(self.fail(
                true,
                "csv-unclosed-quote",
                "the file ends inside a quoted field: expected a closing quote".into(),
            ));
        }
    }
}

/// How the first bytes (a possible BOM) are handled.
#[derive(Debug)]
enum Head {
    Unread,
    /// First bytes that were not a BOM, to pass on before the rest.
    Replay {
        buf: [u8; 3],
        pos: usize,
        len: usize,
    },
    Done,
}

/// A [`Read`] over the caller's [`BufRead`] that delivers at most one
/// physical line per call and fails as soon as a line, or the file, passes
/// its limit, or breaks the quoting and line-end rules, without buffering the
/// offending line.
#[derive(Debug)]
struct Guard<R> {
    inner: R,
    head: Head,
    lex: Lexer,
}

impl<R: BufRead> Guard<R> {
    fn new(inner: R, limits: &Limits) -> Guard<R> {
        Guard {
            inner,
            head: Head::Unread,
            lex: Lexer {
                max_record_bytes: limits.max_record_bytes,
                max_file_bytes: limits.max_file_bytes,
                total: 0,
                line: 1,
                line_bytes: 0,
                field: 0,
                quote: Quote::FieldStart,
                cr: false,
                ends: None,
                error: None,
            },
        }
    }

    /// Reads until `buf` is full or the input ends.
    fn fill(&mut self, buf: &mut [u8; 3]) -> io::Result<usize> {
        let mut len = 0;
        while len < buf.len() {
            let avail = self.inner.fill_buf()?;
            if avail.is_empty() {
                break;
            }
            let take = avail.len().min(buf.len() - len);
            if let (Some(dst), Some(src)) = (buf.get_mut(len..len + take), avail.get(..take)) {
                dst.copy_from_slice(src);
            }
            self.inner.consume(take);
            len += take;
        }
        Ok(len)
    }

    /// Drops a leading BOM. The `csv` crate would silently drop a BOM at the
    /// start of what it is given too, so a second one is refused here rather
    /// than left for it to swallow.
    fn read_head(&mut self) -> io::Result<()> {
        let mut buf = [0u8; 3];
        let mut len = self.fill(&mut buf)?;
        if len == BOM.len() && buf == BOM {
            self.lex.total += BOM.len() as u64;
            len = self.fill(&mut buf)?;
            if len == BOM.len() && buf == BOM {
                self.lex.error = Some(self.lex.fail(
                    true,
                    "csv-bom",
                    "found a second byte order mark (U+FEFF); one is allowed as the first bytes of the file".into(),
                ));
            }
        }
        self.head = Head::Replay { buf, pos: 0, len };
        Ok(())
    }

    fn stopped() -> io::Error {
        io::Error::other("csv input refused by the guard")
    }
}

impl<R: BufRead> Read for Guard<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.lex.error.is_some() {
            return Err(Self::stopped());
        }
        if out.is_empty() {
            return Ok(0);
        }
        if let Head::Unread = self.head {
            self.read_head()?;
            if self.lex.error.is_some() {
                return Err(Self::stopped());
            }
        }
        if let Head::Replay { buf, pos, len } = &mut self.head {
            let src = buf.get(*pos..*len).unwrap_or(&[]);
            let n = self.lex.scan(src, out);
            *pos += n;
            if *pos >= *len {
                self.head = Head::Done;
            }
            if self.lex.error.is_some() {
                return Err(Self::stopped());
            }
            if n > 0 {
                return Ok(n);
            }
        }
        let avail = self.inner.fill_buf()?;
        let n = if avail.is_empty() {
            self.lex.finish();
            0
        } else {
            let n = self.lex.scan(avail, out);
            self.inner.consume(n);
            n
        };
        if self.lex.error.is_some() {
            return Err(Self::stopped());
        }
        Ok(n)
    }
}

// ---------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------

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
            index: Vec::new(),
            names: Vec::new(),
            record: StringRecord::new(),
            line: 0,
            records: 0,
            state: State::Start,
        }
    }

    /// Data records read so far (the header not counted).
    pub fn records(&self) -> u64 {
        self.records
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
                "read-failed",
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
        let expected = self.columns.join(";");
        if header.len() == 1 {
            if let Some(first) = header.get(0) {
                if let Some(sep) = [',', '\t', '|'].into_iter().find(|c| first.contains(*c)) {
                    return Err(self.error(
                        Position::line(1),
                        "csv-delimiter",
                        format!(
                            "expected ';' between columns, found {sep:?} in the header (expected {expected})"
                        ),
                    ));
                }
            }
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
        if let Some(c) = index.iter().position(|p| *p == usize::MAX) {
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
}

impl<'a> Row<'a> {
    /// Physical line, 1-based (the header is line 1).
    pub fn line(&self) -> u64 {
        self.line
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

// ---------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------

/// Writes the canonical form: header in canonical order, `;`, no quoting,
/// LF, a final newline. One `write_all` per line; wrap `out` in a
/// `BufWriter` for files.
pub struct CsvWriter<W: Write> {
    out: W,
    columns: &'static [&'static str],
    buf: String,
    fields: usize,
    lines: u64,
}

impl<W: Write> CsvWriter<W> {
    /// Writes the header.
    pub fn new(mut out: W, columns: &'static [&'static str]) -> Result<CsvWriter<W>, WriteError> {
        let mut header = columns.join(";");
        header.push('\n');
        out.write_all(header.as_bytes())?;
        Ok(CsvWriter {
            out,
            columns,
            buf: String::new(),
            fields: 0,
            lines: 0,
        })
    }

    fn separate(&mut self) {
        if self.fields > 0 {
            self.buf.push(';');
        }
        self.fields += 1;
    }

    /// Appends a field; refuses a value that would need quoting or that the
    /// reader refuses (`;`, `"`, control characters, U+FEFF).
    pub fn field(&mut self, value: impl fmt::Display) -> Result<(), WriteError> {
        self.separate();
        let start = self.buf.len();
        // Writing to a String cannot fail.
        let _ = write!(self.buf, "{value}");
        let written = self.buf.get(start..).unwrap_or("");
        if let Some(c) = written
            .chars()
            .find(|c| matches!(c, ';' | '"' | '\u{feff}') || c.is_control())
        {
            let col = self.columns.get(self.fields - 1).copied().unwrap_or("?");
            let problem = format!("value {:?} of {col} contains {c:?}", shorten(written));
            self.buf.clear();
            self.fields = 0;
            return Err(WriteError::Invalid(problem));
        }
        Ok(())
    }

    /// Appends an empty field.
    pub fn empty(&mut self) {
        self.separate();
    }

    /// Ends the line and writes it.
    pub fn end_line(&mut self) -> Result<(), WriteError> {
        if self.fields != self.columns.len() {
            let problem = format!(
                "line has {} fields, the header {}",
                self.fields,
                self.columns.len()
            );
            self.buf.clear();
            self.fields = 0;
            return Err(WriteError::Invalid(problem));
        }
        self.buf.push('\n');
        let r = self.out.write_all(self.buf.as_bytes());
        self.buf.clear();
        self.fields = 0;
        r?;
        self.lines += 1;
        Ok(())
    }

    /// Data lines written so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Flushes and returns the output and the number of data lines written.
    pub fn finish(mut self) -> Result<(W, u64), WriteError> {
        self.out.flush()?;
        Ok((self.out, self.lines))
    }
}

/// Counts the heap bytes each thread holds, so streaming tests can assert
/// that a reader's memory stays flat. Installed as the global allocator of
/// the library's unit-test binary only.
#[cfg(test)]
pub(crate) mod meter {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static LIVE: Cell<i64> = const { Cell::new(0) };
    }

    fn add(delta: i64) {
        // During thread teardown the counter may be gone: nothing to count.
        let _ = LIVE.try_with(|c| c.set(c.get() + delta));
    }

    /// Heap bytes allocated and not yet freed by the calling thread.
    pub(crate) fn live() -> i64 {
        LIVE.try_with(Cell::get).unwrap_or(0)
    }

    pub(crate) struct Meter;

    // SAFETY: every call is forwarded unchanged to the system allocator; the
    // counting touches a thread-local `Cell` only.
    unsafe impl GlobalAlloc for Meter {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: same contract as ours.
            let p = unsafe { System.alloc(layout) };
            if !p.is_null() {
                add(layout.size() as i64);
            }
            p
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            // SAFETY: same contract as ours.
            let p = unsafe { System.alloc_zeroed(layout) };
            if !p.is_null() {
                add(layout.size() as i64);
            }
            p
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: same contract as ours.
            unsafe { System.dealloc(ptr, layout) };
            add(-(layout.size() as i64));
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: same contract as ours.
            let p = unsafe { System.realloc(ptr, layout, new_size) };
            if !p.is_null() {
                add(new_size as i64 - layout.size() as i64);
            }
            p
        }
    }

    #[global_allocator]
    static METER: Meter = Meter;
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const COLS: [&str; 3] = ["a", "b", "c"];

    type Rows = Vec<(u64, Vec<String>)>;
    type Failure = (String, String);

    /// Reads every row of `input` as (line, [a, b, c]), or the first error
    /// as (code, position).
    fn read_all(input: &[u8], limits: Limits) -> Result<Rows, Failure> {
        let mut r = CsvReader::new(input, "t.csv", limits, &COLS);
        let mut rows = Vec::new();
        loop {
            match r.next_row() {
                Ok(Some(row)) => {
                    rows.push((row.line(), (0..3).map(|c| row.text(c).to_owned()).collect()))
                }
                Ok(None) => return Ok(rows),
                Err(e) => return Err((e.code.to_owned(), e.position.to_string())),
            }
        }
    }

    fn err(input: &[u8]) -> Failure {
        match read_all(input, Limits::default()) {
            Ok(rows) => panic!("accepted: {rows:?}"),
            Err(e) => e,
        }
    }

    fn ok(input: &[u8]) -> Rows {
        match read_all(input, Limits::default()) {
            Ok(rows) => rows,
            Err(e) => panic!("refused: {e:?}"),
        }
    }

    fn e(code: &str, pos: &str) -> Failure {
        (code.to_owned(), pos.to_owned())
    }

    #[test]
    fn maps_columns_by_name_in_any_order() {
        let rows = ok(b"c;a;b\n3;1;2\n\"z\";\"x\"\"\";y\n");
        assert_eq!(rows[0], (2, vec!["1".into(), "2".into(), "3".into()]));
        assert_eq!(rows[1], (3, vec!["x\"".into(), "y".into(), "z".into()]));
    }

    #[test]
    fn header_alone_is_an_empty_file_and_no_header_is_an_error() {
        assert!(ok(b"a;b;c\n").is_empty());
        assert!(ok(b"a;b;c").is_empty());
        assert_eq!(err(b""), e("csv-empty", "line 1"));
        assert_eq!(err(b"\xEF\xBB\xBF"), e("csv-empty", "line 1"));
    }

    #[test]
    fn accepts_one_leading_bom_crlf_and_a_missing_final_newline() {
        let rows = ok(b"\xEF\xBB\xBFa;b;c\r\n1;2;3\r\n4;5;6");
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1], (3, vec!["4".into(), "5".into(), "6".into()]));
        assert_eq!(
            err(b"\xEF\xBB\xBF\xEF\xBB\xBFa;b;c\n"),
            e("csv-bom", "line 1")
        );
        assert_eq!(
            err(b"a;b;c\n1;\xEF\xBB\xBF2;3\n"),
            e("csv-bom", "line 2, field b")
        );
    }

    #[test]
    fn a_short_first_read_is_not_mistaken_for_a_bom() {
        // One byte per read at the head: the replay path.
        let input = io::BufReader::with_capacity(1, &b"a;b;c\n1;2;3\n"[..]);
        let mut r = CsvReader::new(input, "t.csv", Limits::default(), &COLS);
        let row = r.next_row().unwrap().unwrap();
        assert_eq!(row.text(2), "3");
        assert!(r.next_row().unwrap().is_none());
        assert_eq!(r.records(), 1);
    }

    #[test]
    fn header_problems_are_named() {
        assert_eq!(err(b"a;b;x\n"), e("csv-unknown-column", "line 1, field x"));
        assert_eq!(
            err(b"a;b;b;c\n"),
            e("csv-duplicate-column", "line 1, field b")
        );
        assert_eq!(err(b"a;c\n"), e("csv-missing-column", "line 1, field b"));
        assert_eq!(err(b"a,b,c\n"), e("csv-delimiter", "line 1"));
        assert_eq!(
            err(b"a;b;c \n"),
            e("csv-unknown-column", "line 1, field c ")
        );
    }

    #[test]
    fn record_shape_problems_carry_the_line() {
        assert_eq!(err(b"a;b;c\n1;2;3\n1;2\n"), e("csv-field-count", "line 3"));
        assert_eq!(err(b"a;b;c\n1;2;3;4\n"), e("csv-field-count", "line 2"));
        assert_eq!(
            err(b"a;b;c\n1;2;3\n\n4;5;6\n"),
            e("csv-blank-line", "line 3")
        );
        assert_eq!(err(b"a;b;c\n1;2;3\n\n"), e("csv-blank-line", "line 3"));
        assert_eq!(
            err(b"a;b;c\n1;\"2\"x;3\n"),
            e("csv-quote", "line 2, field b")
        );
    }

    #[test]
    fn quotes_may_not_span_lines_nor_stay_open() {
        assert_eq!(
            err(b"a;b;c\n1;\"2\n\";3\n"),
            e("csv-line-break", "line 2, field b")
        );
        assert_eq!(
            err(b"a;b;c\n1;2;\"3\r\n\"\n"),
            e("csv-line-break", "line 2, field c")
        );
        assert_eq!(
            err(b"a;b;c\n1;2;\"3"),
            e("csv-unclosed-quote", "line 2, field c")
        );
    }

    #[test]
    fn line_ends_are_lf_or_crlf_never_mixed() {
        assert_eq!(err(b"a;b;c\n1;2;3\r\n"), e("csv-line-ends", "line 2"));
        assert_eq!(err(b"a;b;c\r\n1;2;3\n"), e("csv-line-ends", "line 2"));
        assert_eq!(err(b"a;b;c\r1;2;3\r"), e("csv-line-ends", "line 1"));
        assert_eq!(err(b"a;b;c\n1;2;3\r"), e("csv-line-ends", "line 2"));
    }

    #[test]
    fn a_cr_split_from_its_lf_across_reads_is_still_a_crlf() {
        let input = io::BufReader::with_capacity(4, &b"a;b;c\r\n1;2;3\r\n"[..]);
        let rows = read_all_buf(input);
        assert_eq!(rows, vec![(2, vec!["1".into(), "2".into(), "3".into()])]);
    }

    fn read_all_buf<R: BufRead>(input: R) -> Rows {
        let mut r = CsvReader::new(input, "t.csv", Limits::default(), &COLS);
        let mut rows = Vec::new();
        while let Some(row) = r.next_row().unwrap() {
            rows.push((row.line(), (0..3).map(|c| row.text(c).to_owned()).collect()));
        }
        rows
    }

    #[test]
    fn fields_are_checked_for_utf8_and_control_characters() {
        assert_eq!(err(b"a;b;c\n1;2;\xff\n"), e("csv-utf8", "line 2, field c"));
        assert_eq!(
            err(b"a;b;c\n1;\x002;3\n"),
            e("csv-control", "line 2, field b")
        );
        assert_eq!(
            err(b"a;b;c\n\t1;2;3\n"),
            e("csv-control", "line 2, field a")
        );
        // Fields are not trimmed.
        assert_eq!(ok(b"a;b;c\n 1;2;3 \n")[0].1, vec![" 1", "2", "3 "]);
    }

    #[test]
    fn limits_stop_before_buffering() {
        let limits = Limits {
            max_field_bytes: 4,
            max_record_bytes: 12,
            max_file_bytes: 40,
            max_records: 2,
            ..Limits::default()
        };
        let run = |input: &[u8]| read_all(input, limits).map(|r| r.len());
        assert_eq!(run(b"a;b;c\n1;2;3\n"), Ok(1));
        assert_eq!(
            run(b"a;b;c\n1;12345;3\n"),
            Err(e("csv-too-long", "line 2, field b"))
        );
        assert_eq!(
            run(b"a;b;c\n1;2;34567890\n"),
            Err(e("csv-too-long", "line 2, field c"))
        );
        assert_eq!(
            run(b"a;b;c\n1;2;3\n1;2;3\n1;2;3\n"),
            Err(e("csv-too-many-records", "whole file"))
        );
        assert_eq!(
            run(b"a;b;c\n1;2;3\n1;2;3\n1;2;3\n1;2;3\n1;2;3\n"),
            Err(e("csv-too-many-records", "whole file"))
        );
        let big = Limits {
            max_file_bytes: 14,
            ..Limits::default()
        };
        assert_eq!(
            read_all(b"a;b;c\n1;2;3\n4;5;6\n", big).map(|r| r.len()),
            Err(e("csv-file-too-large", "whole file"))
        );
    }

    /// An endless line: if the guard buffered before checking, this would
    /// never return.
    #[test]
    fn an_endless_line_is_refused_at_the_limit() {
        let endless = b"a;b;c\n1;".chain(io::repeat(b'x'));
        let mut r = CsvReader::new(
            io::BufReader::new(endless),
            "t.csv",
            Limits::default(),
            &COLS,
        );
        let e = r.next_row().unwrap_err();
        assert_eq!(e.code, "csv-too-long");
        assert_eq!(e.position, Position::field(2, "b"));
        assert!(
            r.next_row().unwrap().is_none(),
            "reader goes on after an error"
        );
    }

    #[test]
    fn number_parsers_accept_plain_digits_only() {
        assert_eq!(parse_number("1"), Ok(1));
        assert_eq!(parse_number("18446744073709551615"), Ok(u64::MAX));
        for bad in [
            "",
            "0",
            "01",
            "+1",
            "-1",
            "1e3",
            "1.0",
            "1,000",
            "1 000",
            " 1",
            "18446744073709551616",
        ] {
            assert_eq!(parse_number(bad).unwrap_err().code, "bad-number", "{bad:?}");
        }
        assert_eq!(parse_quantity("20"), Ok(20));
        for bad in ["0", "4294967296", "-2", "020"] {
            assert_eq!(
                parse_quantity(bad).unwrap_err().code,
                "bad-number",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn codes_and_amounts_refuse_formula_and_spaced_values() {
        assert!(parse_code("A").is_ok());
        for bad in ["-1", "=1", "+1", "@A", "A B", " A"] {
            assert_eq!(parse_code(bad).unwrap_err().code, "bad-code", "{bad:?}");
        }
        assert_eq!(parse_amount("8500"), Ok(8500));
        assert_eq!(parse_amount(" 8500").unwrap_err().code, "money-not-digits");
        assert_eq!(parse_amount("8500 ").unwrap_err().code, "money-not-digits");
        assert_eq!(parse_amount("=8500").unwrap_err().code, "money-not-digits");
        assert_eq!(parse_amount("-8500").unwrap_err().code, "money-negative");
    }

    #[test]
    fn times_are_canonical_utc_whole_seconds() {
        let t = parse_time("2026-12-01T10:15:00Z").unwrap();
        assert_eq!(format_time(t).unwrap(), "2026-12-01T10:15:00Z");
        for bad in [
            "2026-12-01T10:15:00+00:00",
            "2026-12-01T10:15:00+01:00",
            "2026-12-01T10:15:00.5Z",
            "2026-12-01T10:15:00.000Z",
            "2026-12-01t10:15:00z",
            "2026-12-01 10:15:00Z",
            "2026-12-01T10:15Z",
            "2026-12-01",
            "",
        ] {
            assert_eq!(parse_time(bad).unwrap_err().code, "bad-time", "{bad:?}");
        }
        let paris = t.to_offset(time::macros::offset!(+1));
        assert!(format_time(paris).is_err());
    }

    #[test]
    fn choice_lists_the_expected_words() {
        let e = parse_choice("X", &[("SALE", 1), ("ACK", 2)]).unwrap_err();
        assert_eq!(e.code, "bad-value");
        assert_eq!(e.problem, "expected one of SALE, ACK, found \"X\"");
    }

    #[test]
    fn writer_is_canonical_and_refuses_values_needing_quotes() {
        let mut w = CsvWriter::new(Vec::new(), &COLS).unwrap();
        w.field(1).unwrap();
        w.empty();
        w.field("x").unwrap();
        w.end_line().unwrap();
        assert!(w.field("a;b").is_err());
        w.field("a").unwrap();
        assert!(w.end_line().is_err(), "short line accepted");
        let (out, n) = w.finish().unwrap();
        assert_eq!(n, 1);
        assert_eq!(out, b"a;b;c\n1;;x\n");
    }
}
