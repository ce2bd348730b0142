//! Safe XML pull reading and canonical XML writing shared by the XML payloads
//! (`SEATPLAN`, `CATALOGUE`): no DOCTYPE, no entity declarations, bounded
//! depth and sizes, complete documents only.
//!
//! [`XmlReader`] takes bytes and a [`Schema`] (which elements exist, where they
//! nest, in which order, with which attributes) and yields one validated
//! [`Element`] at a time; the payload modules turn elements into records and
//! fill parent ids from the nesting. [`XmlWriter`] writes the canonical form
//! of the same schema. This module knows nothing of records, files on disk or
//! the store.
//!
//! What the reader accepts, in short: UTF-8 only (an optional UTF-8 byte order
//! mark, then `<?xml version="1.0" encoding="UTF-8"?>`, the encoding being
//! optional); elements and attributes only (whitespace between tags, comments
//! ignored); the five predefined entities and numeric character references in
//! attribute values. Everything else is refused with a stable code:
//!
//! | code | meaning |
//! |---|---|
//! | `xml-empty` | the file holds no byte (or only a byte order mark) |
//! | `xml-encoding` | UTF-16/UTF-32 byte order mark or layout, or a declared encoding other than UTF-8 |
//! | `xml-utf8` | a byte sequence that is not UTF-8 |
//! | `xml-char` | NUL or another control character XML forbids |
//! | `xml-declaration` | missing, misplaced or wrong `<?xml …?>` declaration (version must be 1.0) |
//! | `xml-doctype` | any DOCTYPE, hence any entity declaration (internal, external, parameter) |
//! | `xml-entity` | a reference other than `&lt; &gt; &amp; &quot; &apos;` and `&#…;`, or a bad one |
//! | `xml-pi` | a processing instruction other than the declaration |
//! | `xml-cdata` | a CDATA section |
//! | `xml-text` | text content other than whitespace (the formats are attribute-only) |
//! | `xml-syntax` | malformed markup (attribute without quotes, `<` in a value…) |
//! | `xml-end-tag` | an end tag that does not match the open element |
//! | `xml-truncated` | the file ends inside markup or before the root element is closed |
//! | `xml-trailing` | anything but whitespace and comments after the root element |
//! | `xml-depth` | nesting deeper than `Limits::max_depth` |
//! | `xml-too-large` | the file is larger than `Limits::max_file_bytes` |
//! | `xml-tag-too-large` | one tag (or text run, comment) longer than `Limits::max_record_bytes` |
//! | `xml-attribute-too-large` | an attribute value longer than `Limits::max_field_bytes` |
//! | `xml-too-many-records` | more elements than `Limits::max_records` |
//! | `xml-unknown-element` | an element the format does not define |
//! | `xml-unknown-attribute` | an attribute the element does not define |
//! | `xml-duplicate-attribute` | the same attribute twice on one element |
//! | `xml-missing-attribute` | a required attribute is absent (all attributes are required) |
//! | `xml-nesting` | a known element in the wrong place |
//! | `xml-order` | an element before a sibling that must precede it (section order) |
//! | `bad-root` | the root element is not the payload's |
//! | `bad-version` | the root's `version` is not `1` |
//! | `bad-id`, `bad-code`, `bad-name` | identifier attributes ([`crate::ident`]) |
//! | `money-*`, `money-zero`, `bad-currency` | amounts and currencies ([`crate::money`]; a price of 0 is refused) |
//! | `bad-number` | a count or rate that is not plain digits within its range |
//! | `bad-date` | a date, date-time or date range that is not as documented |
//! | `bad-state` | an unknown performance state |
//! | `io` | the input could not be read |
//!
//! Positions are `Position::Byte` with the 1-based line: the offset of the
//! `<` of the offending tag, or of the offending byte.

use std::collections::VecDeque;
use std::io::{self, BufRead, Read, Write};
use std::sync::Arc;

use quick_xml::XmlVersion;
use quick_xml::errors::{Error as QxError, IllFormedError, SyntaxError};
use quick_xml::escape::EscapeError;
use quick_xml::events::attributes::AttrError;
use quick_xml::events::{BytesStart, Event};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{FormatError, Limits, Position, WriteError};
use crate::ident::{Code, Name, TechId, shorten};
use crate::money::{Currency, parse_minor_units};

/// The only value of the root's `version` attribute this build reads and writes.
pub const VERSION: &str = "1";

/// One element a payload defines.
#[derive(Debug)]
pub struct ElementSpec {
    /// Element name, camelCase, exactly as written.
    pub name: &'static str,
    /// The element it must be a child of; `None` for a child of the root.
    pub parent: Option<&'static str>,
    /// Section rank among its siblings: a sibling of lower rank may not follow
    /// one of higher rank.
    pub rank: u8,
    /// Every attribute, all required, in canonical (written) order.
    pub attributes: &'static [&'static str],
}

/// The elements of one payload; the root carries exactly `version="1"`.
#[derive(Debug)]
pub struct Schema {
    pub root: &'static str,
    pub elements: &'static [ElementSpec],
}

impl Schema {
    fn find(&self, name: &str) -> Option<&'static ElementSpec> {
        self.elements.iter().find(|e| e.name == name)
    }
}

/// A validated element: known name, right place, every attribute present once.
#[derive(Debug, Clone)]
pub struct Element {
    spec: &'static ElementSpec,
    /// Unescaped values, in `spec.attributes` order.
    values: Vec<String>,
    position: Position,
    file: Arc<str>,
}

impl Element {
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    pub fn position(&self) -> &Position {
        &self.position
    }

    /// The unescaped value of an attribute of the element's spec (empty for an
    /// attribute the spec does not define, which is a bug in the caller).
    pub fn value(&self, attr: &str) -> &str {
        self.spec
            .attributes
            .iter()
            .position(|a| *a == attr)
            .and_then(|i| self.values.get(i))
            .map_or("", String::as_str)
    }

    /// A rejection of this element's attribute `attr`.
    pub fn error(&self, attr: &str, code: &'static str, problem: impl AsRef<str>) -> FormatError {
        FormatError::new(
            &*self.file,
            self.position.clone(),
            code,
            format!(
                "<{}> attribute {attr}: {}",
                self.spec.name,
                problem.as_ref()
            ),
        )
    }

    pub fn tech_id(&self, attr: &str) -> Result<TechId, FormatError> {
        TechId::parse(self.value(attr)).map_err(|e| self.error(attr, e.code(), e.to_string()))
    }

    pub fn code(&self, attr: &str) -> Result<Code, FormatError> {
        Code::new(self.value(attr)).map_err(|e| self.error(attr, e.code(), e.to_string()))
    }

    pub fn label(&self, attr: &str) -> Result<Name, FormatError> {
        Name::new(self.value(attr)).map_err(|e| self.error(attr, e.code(), e.to_string()))
    }

    /// Plain decimal digits, no sign, no leading zero, within `min..=max`.
    pub fn number(&self, attr: &str, min: u32, max: u32) -> Result<u32, FormatError> {
        let s = self.value(attr);
        let plain = !s.is_empty()
            && s.len() <= 10
            && s.bytes().all(|b| b.is_ascii_digit())
            && (s == "0" || !s.starts_with('0'));
        match s.parse::<u64>() {
            Ok(v) if plain && v >= u64::from(min) && v <= u64::from(max) => {
                u32::try_from(v).map_err(|_| self.number_error(attr, min, max))
            }
            _ => Err(self.number_error(attr, min, max)),
        }
    }

    fn number_error(&self, attr: &str, min: u32, max: u32) -> FormatError {
        self.error(
            attr,
            "bad-number",
            format!(
                "expected a whole number from {min} to {max} in plain digits, found {:?}",
                shorten(self.value(attr))
            ),
        )
    }

    /// A calendar date written `YYYY-MM-DD`.
    pub fn date(&self, attr: &str) -> Result<time::Date, FormatError> {
        let s = self.value(attr);
        parse_date(s).ok_or_else(|| {
            self.error(
                attr,
                "bad-date",
                format!("expected a date YYYY-MM-DD, found {:?}", shorten(s)),
            )
        })
    }

    /// An RFC 3339 date-time with its UTC offset, whole seconds.
    pub fn date_time(&self, attr: &str) -> Result<OffsetDateTime, FormatError> {
        let s = self.value(attr);
        let bad = || {
            self.error(
                attr,
                "bad-date",
                format!(
                    "expected an RFC 3339 date-time with offset and whole seconds \
                     (2027-01-15T20:00:00+01:00), found {:?}",
                    shorten(s)
                ),
            )
        };
        let t = OffsetDateTime::parse(s, &Rfc3339).map_err(|_| bad())?;
        if t.nanosecond() != 0 || s.contains('.') {
            return Err(bad());
        }
        Ok(t)
    }

    /// A positive amount in minor units.
    pub fn amount(&self, attr: &str) -> Result<i64, FormatError> {
        let v = parse_minor_units(self.value(attr))
            .map_err(|e| self.error(attr, e.code(), e.to_string()))?;
        if v == 0 {
            return Err(self.error(
                attr,
                "money-zero",
                "a price of 0 is refused (expected a positive amount in minor units)",
            ));
        }
        Ok(v)
    }

    pub fn currency(&self, attr: &str) -> Result<Currency, FormatError> {
        Currency::new(self.value(attr)).map_err(|e| self.error(attr, e.code(), e.to_string()))
    }
}

/// `YYYY-MM-DD`, four-digit year.
fn parse_date(s: &str) -> Option<time::Date> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !shape {
        return None;
    }
    let year: i32 = s.get(0..4)?.parse().ok()?;
    let month: u8 = s.get(5..7)?.parse().ok()?;
    let day: u8 = s.get(8..10)?.parse().ok()?;
    let month = time::Month::try_from(month).ok()?;
    time::Date::from_calendar_date(year, month, day).ok()
}

/// Canonical `YYYY-MM-DD`; years outside 0000..=9999 cannot be written.
pub fn format_date(d: time::Date) -> Result<String, WriteError> {
    if !(0..=9999).contains(&d.year()) {
        return Err(WriteError::Invalid(format!(
            "date {d} has a year outside 0000-9999"
        )));
    }
    Ok(format!(
        "{:04}-{:02}-{:02}",
        d.year(),
        u8::from(d.month()),
        d.day()
    ))
}

/// Canonical RFC 3339 with offset; refuses fractions of a second.
pub fn format_date_time(t: OffsetDateTime) -> Result<String, WriteError> {
    if t.nanosecond() != 0 {
        return Err(WriteError::Invalid(format!(
            "date-time {t} has a fraction of a second; the format takes whole seconds"
        )));
    }
    t.format(&Rfc3339)
        .map_err(|e| WriteError::Invalid(format!("date-time {t} cannot be written: {e}")))
}

// ---------------------------------------------------------------------------
// The byte guard: every byte quick-xml sees went through here first.
// ---------------------------------------------------------------------------

const GUARD_BUF: usize = 64 * 1024;

/// An error found by the guard, at an absolute byte offset.
#[derive(Debug, Clone)]
struct GuardError {
    offset: u64,
    code: &'static str,
    problem: String,
}

/// A `BufRead` adapter between the input and quick-xml that validates UTF-8,
/// refuses NUL and control characters, enforces the file size and the size of
/// one event (a tag, a text run, a comment) *before* quick-xml buffers it, and
/// records newline offsets so any offset of the current event maps to a line.
struct Guard<R> {
    inner: R,
    buf: Box<[u8]>,
    /// Unconsumed bytes are `buf[start..end]`; `buf[start..ready]` are valid
    /// complete characters quick-xml may see.
    start: usize,
    ready: usize,
    end: usize,
    /// Absolute offset of `buf[start]`.
    consumed: u64,
    /// Absolute offset of `buf[end]` (bytes read from the input so far).
    read: u64,
    eof: bool,
    started: bool,
    /// UTF-8 decoder: continuation bytes still expected, the range of the
    /// next one, and where the sequence began.
    need: u8,
    lo: u8,
    hi: u8,
    seq_start: u64,
    error: Option<GuardError>,
    /// Start of the current event and the budget for it.
    event_start: u64,
    max_event: u64,
    max_file: u64,
    /// Line at `base_offset`, and the newlines seen at or after it.
    base_offset: u64,
    base_line: u64,
    newlines: VecDeque<u64>,
}

impl<R: Read> Guard<R> {
    fn new(inner: R, limits: &Limits) -> Guard<R> {
        Guard {
            inner,
            buf: vec![0u8; GUARD_BUF].into_boxed_slice(),
            start: 0,
            ready: 0,
            end: 0,
            consumed: 0,
            read: 0,
            eof: false,
            started: false,
            need: 0,
            lo: 0x80,
            hi: 0xBF,
            seq_start: 0,
            error: None,
            event_start: 0,
            max_event: u64::try_from(limits.max_record_bytes).unwrap_or(u64::MAX),
            max_file: limits.max_file_bytes,
            base_offset: 0,
            base_line: 1,
            newlines: VecDeque::new(),
        }
    }

    /// Called before each event: the budget restarts and lines before the
    /// event are forgotten (positions are never asked for earlier bytes).
    fn begin_event(&mut self) {
        self.event_start = self.consumed;
        while let Some(&nl) = self.newlines.front() {
            if nl >= self.consumed {
                break;
            }
            self.newlines.pop_front();
            self.base_line += 1;
        }
        self.base_offset = self.consumed;
    }

    /// 1-based line of an absolute offset at or after the current event start.
    fn line_at(&self, offset: u64) -> u64 {
        self.base_line + self.newlines.iter().take_while(|&&nl| nl < offset).count() as u64
    }

    fn fail(&mut self, offset: u64, code: &'static str, problem: String) {
        if self.error.is_none() {
            self.error = Some(GuardError {
                offset,
                code,
                problem,
            });
        }
    }

    /// Reads more input into the buffer and validates it.
    fn refill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.ready -= self.start;
            self.start = 0;
        }
        let room = self.buf.len() - self.end;
        if room == 0 {
            // Cannot happen: at most 3 incomplete bytes stay unready.
            self.fail(self.read, "io", "internal buffer full".to_owned());
            return Ok(());
        }
        let mut n = self.read_at(self.end)?;
        if !self.started {
            // Look at the first four bytes at once for a byte order mark.
            while n > 0 && n < 4 {
                let more = self.read_at(self.end + n)?;
                if more == 0 {
                    break;
                }
                n += more;
            }
        }
        if n == 0 {
            self.eof = true;
            if self.need > 0 {
                let at = self.seq_start;
                self.fail(
                    at,
                    "xml-utf8",
                    "invalid utf-8: the file ends inside a multi-byte character".to_owned(),
                );
            }
            return Ok(());
        }
        let first = self.read;
        let mut stop = self.end + n;
        self.read += n as u64;
        if self.read > self.max_file {
            let over = usize::try_from(self.read - self.max_file).unwrap_or(n);
            stop -= over.min(n);
        }
        let from = self.end;
        self.end += n;
        let over_limit = self.read > self.max_file;
        if !self.started {
            self.started = true;
            if let Some(skip) = self.check_start(from, stop) {
                self.start = skip;
                self.ready = skip;
                self.consumed = skip as u64;
                self.base_offset = self.consumed;
                self.event_start = self.consumed;
                self.seq_start = self.consumed;
            }
        }
        let scan_from = from.max(self.start);
        self.validate(scan_from, stop, first + (scan_from - from) as u64);
        if over_limit {
            let limit = self.max_file;
            self.fail(
                limit,
                "xml-too-large",
                format!("the file is larger than the limit of {limit} bytes"),
            );
        }
        Ok(())
    }

    fn read_at(&mut self, at: usize) -> io::Result<usize> {
        let Some(room) = self.buf.get_mut(at..) else {
            return Ok(0);
        };
        loop {
            match self.inner.read(room) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Looks at the first bytes: UTF-8 byte order mark (skipped), UTF-16 or
    /// UTF-32 (refused). Returns the number of bytes to skip.
    fn check_start(&mut self, from: usize, stop: usize) -> Option<usize> {
        let head = self.buf.get(from..stop).unwrap_or(&[]);
        let utf16 = head.starts_with(&[0xFE, 0xFF])
            || head.starts_with(&[0xFF, 0xFE])
            || head.starts_with(&[0x00, 0x00, 0xFE, 0xFF])
            || head.starts_with(b"<\0")
            || head.starts_with(b"\0<");
        if utf16 {
            self.fail(
                0,
                "xml-encoding",
                "expected utf-8, found a utf-16 or utf-32 byte order mark or layout".to_owned(),
            );
            self.ready = from;
            return None;
        }
        if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
            return Some(from + 3);
        }
        None
    }

    /// Validates `buf[from..stop]` (absolute offset `abs` for `buf[from]`).
    fn validate(&mut self, from: usize, stop: usize, abs: u64) {
        if self.error.is_some() {
            // Nothing after an error is ever shown.
            return;
        }
        let mut i = from;
        while i < stop {
            let b = self.buf[i];
            let at = abs + (i - from) as u64;
            if self.need > 0 {
                if b < self.lo || b > self.hi {
                    let s = self.seq_start;
                    // `ready` already stops before the sequence.
                    self.fail(s, "xml-utf8", format!("invalid utf-8 byte 0x{b:02x}"));
                    return;
                }
                self.lo = 0x80;
                self.hi = 0xBF;
                self.need -= 1;
                if self.need == 0 {
                    self.ready = i + 1;
                }
                i += 1;
                continue;
            }
            match b {
                b'\n' => {
                    self.newlines.push_back(at);
                }
                b'\t' | b'\r' | 0x20..=0x7E => {}
                0x00 => {
                    self.fail(
                        at,
                        "xml-char",
                        "found a nul byte, which xml forbids".to_owned(),
                    );
                    return;
                }
                0x01..=0x1F | 0x7F => {
                    self.fail(
                        at,
                        "xml-char",
                        format!("found control character 0x{b:02x}, which xml forbids"),
                    );
                    return;
                }
                0xC2..=0xDF => self.begin_seq(at, 1, 0x80, 0xBF),
                0xE0 => self.begin_seq(at, 2, 0xA0, 0xBF),
                0xE1..=0xEC | 0xEE..=0xEF => self.begin_seq(at, 2, 0x80, 0xBF),
                0xED => self.begin_seq(at, 2, 0x80, 0x9F),
                0xF0 => self.begin_seq(at, 3, 0x90, 0xBF),
                0xF1..=0xF3 => self.begin_seq(at, 3, 0x80, 0xBF),
                0xF4 => self.begin_seq(at, 3, 0x80, 0x8F),
                _ => {
                    self.fail(at, "xml-utf8", format!("invalid utf-8 byte 0x{b:02x}"));
                    return;
                }
            }
            if self.need == 0 {
                self.ready = i + 1;
            }
            i += 1;
        }
    }

    fn begin_seq(&mut self, at: u64, need: u8, lo: u8, hi: u8) {
        self.need = need;
        self.lo = lo;
        self.hi = hi;
        self.seq_start = at;
    }

    fn take_error(&mut self) -> Option<GuardError> {
        self.error.take()
    }
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for Guard<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.start >= self.ready {
            if self.error.is_some() {
                return Err(io::Error::other("input refused"));
            }
            if self.eof {
                return Ok(&[]);
            }
            self.refill()?;
        }
        let used = self.consumed - self.event_start;
        if used >= self.max_event {
            let (start, max) = (self.event_start, self.max_event);
            self.fail(
                start,
                "xml-tag-too-large",
                format!("a tag, text run or comment is longer than the limit of {max} bytes"),
            );
            return Err(io::Error::other("input refused"));
        }
        let budget = usize::try_from(self.max_event - used).unwrap_or(usize::MAX);
        let stop = self.ready.min(self.start.saturating_add(budget));
        Ok(&self.buf[self.start..stop])
    }

    fn consume(&mut self, amt: usize) {
        let amt = amt.min(self.ready - self.start);
        self.start += amt;
        self.consumed += amt as u64;
    }
}

// ---------------------------------------------------------------------------
// The reader.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing read yet: the declaration must come first.
    Start,
    /// After the declaration, before the root.
    Prolog,
    /// Inside the root element.
    Body,
    /// After the root element's end.
    Epilog,
    /// The document ended cleanly or an error was returned.
    Done,
}

/// One open element: its spec (`None` for the root) and the highest section
/// rank among the children seen so far.
#[derive(Debug, Clone, Copy)]
struct Open {
    spec: Option<&'static ElementSpec>,
    last_rank: Option<u8>,
}

/// A streaming, validating XML reader for one [`Schema`]: yields each element
/// (except the root) once validated; holds one tag at a time.
pub struct XmlReader<R: BufRead> {
    reader: quick_xml::Reader<Guard<R>>,
    schema: &'static Schema,
    file: Arc<str>,
    limits: Limits,
    buf: Vec<u8>,
    stack: Vec<Open>,
    phase: Phase,
    elements: u64,
}

impl<R: BufRead> XmlReader<R> {
    pub fn new(input: R, file: &str, limits: Limits, schema: &'static Schema) -> XmlReader<R> {
        let mut reader = quick_xml::Reader::from_reader(Guard::new(input, &limits));
        let config = reader.config_mut();
        config.check_end_names = true;
        config.allow_unmatched_ends = false;
        config.allow_dangling_amp = false;
        config.expand_empty_elements = false;
        config.trim_text(false);
        XmlReader {
            reader,
            schema,
            file: Arc::from(file),
            limits,
            buf: Vec::new(),
            stack: Vec::new(),
            phase: Phase::Start,
            elements: 0,
        }
    }

    /// The file name used in errors.
    pub fn file(&self) -> &str {
        &self.file
    }

    fn position(&self, offset: u64) -> Position {
        Position::Byte {
            offset,
            line: Some(self.reader.get_ref().line_at(offset)),
        }
    }

    fn err(&mut self, offset: u64, code: &'static str, problem: impl Into<String>) -> FormatError {
        self.phase = Phase::Done;
        FormatError::new(&*self.file, self.position(offset), code, problem)
    }

    /// The next element of the document, `Ok(None)` once the root is closed
    /// and only whitespace or comments followed. After an error, `Ok(None)`.
    pub fn next_element(&mut self) -> Result<Option<Element>, FormatError> {
        loop {
            if self.phase == Phase::Done {
                return Ok(None);
            }
            self.reader.get_mut().begin_event();
            let start = self.reader.get_ref().consumed;
            self.buf.clear();
            let event = self.reader.read_event_into(&mut self.buf);
            let event = match event {
                Ok(ev) => ev.into_owned(),
                Err(e) => return Err(self.map_error(e, start)),
            };
            match (self.phase, event) {
                (Phase::Start, Event::Decl(d)) => {
                    self.check_declaration(&d, start)?;
                    self.phase = Phase::Prolog;
                }
                (Phase::Start, Event::Eof) => {
                    return Err(self.err(start, "xml-empty", "the file is empty"));
                }
                (Phase::Start, _) => {
                    return Err(self.err(
                        start,
                        "xml-declaration",
                        "expected the declaration <?xml version=\"1.0\" encoding=\"UTF-8\"?> \
                         at the start of the file",
                    ));
                }
                (_, Event::Decl(_)) => {
                    return Err(self.err(
                        start,
                        "xml-declaration",
                        "found an xml declaration that is not at the start of the file",
                    ));
                }
                (_, Event::Comment(_)) => {}
                (Phase::Epilog, Event::Text(t)) if is_blank(t.as_bytes()) => {}
                (_, Event::Text(t)) => {
                    let skip = t.bytes().take_while(|b| b.is_ascii_whitespace()).count();
                    let at = start + skip as u64;
                    if is_blank(t.as_bytes()) {
                        continue;
                    }
                    let found = t.get(skip..).unwrap_or_default().to_owned();
                    return Err(match self.phase {
                        Phase::Epilog => self.err(
                            at,
                            "xml-trailing",
                            format!(
                                "expected nothing after the root element, found text {:?}",
                                shorten(&found)
                            ),
                        ),
                        _ => self.err(
                            at,
                            "xml-text",
                            format!(
                                "expected only elements and attributes, found text {:?}",
                                shorten(&found)
                            ),
                        ),
                    });
                }
                (_, Event::GeneralRef(r)) => {
                    let name = r.to_string();
                    let known = r.is_char_ref()
                        || matches!(name.as_str(), "lt" | "gt" | "amp" | "quot" | "apos");
                    return Err(if known {
                        self.err(
                            start,
                            "xml-text",
                            format!("expected only elements and attributes, found text &{name};"),
                        )
                    } else {
                        self.err(
                            start,
                            "xml-entity",
                            format!(
                                "found a reference to undeclared entity &{};",
                                shorten(&name)
                            ),
                        )
                    });
                }
                (_, Event::DocType(_)) => {
                    return Err(self.err(
                        start,
                        "xml-doctype",
                        "found a DOCTYPE; DOCTYPE and entity declarations are refused",
                    ));
                }
                (_, Event::PI(_)) => {
                    return Err(self.err(
                        start,
                        "xml-pi",
                        "found a processing instruction; only the xml declaration is allowed",
                    ));
                }
                (_, Event::CData(_)) => {
                    return Err(self.err(
                        start,
                        "xml-cdata",
                        "found a CDATA section; the format has no text content",
                    ));
                }
                (Phase::Prolog, Event::Start(s)) => self.open_root(&s, start, false)?,
                (Phase::Prolog, Event::Empty(s)) => self.open_root(&s, start, true)?,
                (Phase::Body, Event::Start(s)) => return self.open(&s, start, false).map(Some),
                (Phase::Body, Event::Empty(s)) => return self.open(&s, start, true).map(Some),
                (Phase::Epilog, Event::Start(s) | Event::Empty(s)) => {
                    let name = s.name().as_ref().to_owned();
                    return Err(self.err(
                        start,
                        "xml-trailing",
                        format!(
                            "expected nothing after the root element, found <{}>",
                            shorten(&name)
                        ),
                    ));
                }
                (Phase::Body, Event::End(_)) => {
                    self.stack.pop();
                    if self.stack.is_empty() {
                        self.phase = Phase::Epilog;
                    }
                }
                (Phase::Epilog, Event::Eof) => {
                    self.phase = Phase::Done;
                    return Ok(None);
                }
                (Phase::Prolog, Event::Eof) => {
                    let root = self.schema.root;
                    return Err(self.err(
                        start,
                        "xml-truncated",
                        format!("the file ends before the root element <{root}>"),
                    ));
                }
                (Phase::Body, Event::Eof) => {
                    let open = self
                        .stack
                        .last()
                        .and_then(|o| o.spec)
                        .map_or(self.schema.root, |s| s.name);
                    return Err(self.err(
                        start,
                        "xml-truncated",
                        format!("the file ends before </{open}> closes the element"),
                    ));
                }
                (_, Event::End(e)) => {
                    let name = e.name().as_ref().to_owned();
                    return Err(self.err(
                        start,
                        "xml-end-tag",
                        format!("found end tag </{}> with no open element", shorten(&name)),
                    ));
                }
                (_, Event::Start(_) | Event::Empty(_) | Event::Eof) => {
                    // Phases Start and Done are handled above.
                    return Err(self.err(start, "xml-syntax", "unexpected markup"));
                }
            }
        }
    }

    fn check_declaration(
        &mut self,
        d: &quick_xml::events::BytesDecl<'_>,
        start: u64,
    ) -> Result<(), FormatError> {
        match d.version() {
            Ok(v) if v == "1.0" => {}
            Ok(v) => {
                let v = v.into_owned();
                return Err(self.err(
                    start,
                    "xml-declaration",
                    format!("expected xml version 1.0, found {:?}", shorten(&v)),
                ));
            }
            Err(_) => {
                return Err(self.err(
                    start,
                    "xml-declaration",
                    "expected <?xml version=\"1.0\" encoding=\"UTF-8\"?>, found a declaration \
                     without a readable version",
                ));
            }
        }
        match d.encoding() {
            None => Ok(()),
            Some(Ok(e)) if e.eq_ignore_ascii_case("UTF-8") => Ok(()),
            Some(Ok(e)) => {
                let e = e.into_owned();
                Err(self.err(
                    start,
                    "xml-encoding",
                    format!("expected encoding UTF-8, found {:?}", shorten(&e)),
                ))
            }
            Some(Err(_)) => Err(self.err(
                start,
                "xml-declaration",
                "the declaration's encoding cannot be read",
            )),
        }
    }

    fn open_root(
        &mut self,
        s: &BytesStart<'_>,
        start: u64,
        empty: bool,
    ) -> Result<(), FormatError> {
        let root = self.schema.root;
        let name = s.name().as_ref().to_owned();
        if name != root {
            return Err(self.err(
                start,
                "bad-root",
                format!("expected root element <{root}>, found <{}>", shorten(&name)),
            ));
        }
        let mut version: Option<String> = None;
        for attr in s.attributes() {
            let attr = attr.map_err(|e| self.attr_error(e, root, start))?;
            let key = attr.key.as_ref().to_owned();
            if key != "version" {
                return Err(self.err(
                    start,
                    "xml-unknown-attribute",
                    format!(
                        "<{root}> has no attribute {:?} (only version)",
                        shorten(&key)
                    ),
                ));
            }
            version = Some(self.attr_value(&attr, root, "version", start)?);
        }
        match version {
            None => {
                return Err(self.err(
                    start,
                    "xml-missing-attribute",
                    format!("<{root}> attribute version is missing"),
                ));
            }
            Some(v) if v != VERSION => {
                return Err(self.err(
                    start,
                    "bad-version",
                    format!(
                        "<{root}> attribute version: expected \"{VERSION}\", found {:?}",
                        shorten(&v)
                    ),
                ));
            }
            Some(_) => {}
        }
        if empty {
            self.phase = Phase::Epilog;
        } else {
            self.stack.push(Open {
                spec: None,
                last_rank: None,
            });
            self.phase = Phase::Body;
        }
        Ok(())
    }

    fn open(
        &mut self,
        s: &BytesStart<'_>,
        start: u64,
        empty: bool,
    ) -> Result<Element, FormatError> {
        let name = s.name().as_ref().to_owned();
        if self.stack.len() >= self.limits.max_depth {
            let max = self.limits.max_depth;
            return Err(self.err(
                start,
                "xml-depth",
                format!(
                    "<{}> is nested deeper than the limit of {max}",
                    shorten(&name)
                ),
            ));
        }
        let Some(spec) = self.schema.find(&name) else {
            let root = self.schema.root;
            return Err(self.err(
                start,
                "xml-unknown-element",
                format!("<{root}> defines no element <{}>", shorten(&name)),
            ));
        };
        let parent_name = self
            .stack
            .last()
            .and_then(|o| o.spec)
            .map_or(self.schema.root, |p| p.name);
        let expected_parent = spec.parent.unwrap_or(self.schema.root);
        if parent_name != expected_parent {
            return Err(self.err(
                start,
                "xml-nesting",
                format!(
                    "<{}> must be inside <{expected_parent}>, found it inside <{parent_name}>",
                    spec.name
                ),
            ));
        }
        let last_rank = self.stack.last().and_then(|o| o.last_rank);
        if let Some(last) = last_rank
            && last > spec.rank
        {
            let after: Vec<&str> = self
                .schema
                .elements
                .iter()
                .filter(|e| e.parent == spec.parent && e.rank > spec.rank && e.rank <= last)
                .map(|e| e.name)
                .collect();
            return Err(self.err(
                start,
                "xml-order",
                format!(
                    "<{}> must come before every <{}> in <{parent_name}>",
                    spec.name,
                    after.join(">, <")
                ),
            ));
        }
        if self.elements >= self.limits.max_records {
            let max = self.limits.max_records;
            return Err(self.err(
                start,
                "xml-too-many-records",
                format!("the file has more than the limit of {max} elements"),
            ));
        }
        let mut values: Vec<Option<String>> = vec![None; spec.attributes.len()];
        for attr in s.attributes() {
            let attr = attr.map_err(|e| self.attr_error(e, spec.name, start))?;
            let key = attr.key.as_ref().to_owned();
            let Some(i) = spec.attributes.iter().position(|a| *a == key) else {
                return Err(self.err(
                    start,
                    "xml-unknown-attribute",
                    format!(
                        "<{}> has no attribute {:?} (expected {})",
                        spec.name,
                        shorten(&key),
                        spec.attributes.join(", ")
                    ),
                ));
            };
            let v = self.attr_value(&attr, spec.name, spec.attributes[i], start)?;
            if let Some(slot) = values.get_mut(i) {
                *slot = Some(v);
            }
        }
        let mut out = Vec::with_capacity(values.len());
        for (i, v) in values.into_iter().enumerate() {
            match v {
                Some(v) => out.push(v),
                None => {
                    let attr = spec.attributes.get(i).copied().unwrap_or("?");
                    return Err(self.err(
                        start,
                        "xml-missing-attribute",
                        format!("<{}> attribute {attr} is missing", spec.name),
                    ));
                }
            }
        }
        if let Some(top) = self.stack.last_mut() {
            top.last_rank = Some(spec.rank);
        }
        if !empty {
            self.stack.push(Open {
                spec: Some(spec),
                last_rank: None,
            });
        }
        self.elements += 1;
        Ok(Element {
            spec,
            values: out,
            position: self.position(start),
            file: Arc::clone(&self.file),
        })
    }

    fn attr_value(
        &mut self,
        attr: &quick_xml::events::attributes::Attribute<'_>,
        element: &str,
        key: &str,
        start: u64,
    ) -> Result<String, FormatError> {
        let raw: &[u8] = attr.value.as_bytes();
        if raw.len() > self.limits.max_field_bytes {
            let max = self.limits.max_field_bytes;
            return Err(self.err(
                start,
                "xml-attribute-too-large",
                format!(
                    "<{element}> attribute {key}: the value is longer than the limit of {max} bytes"
                ),
            ));
        }
        if raw.contains(&b'<') {
            return Err(self.err(
                start,
                "xml-syntax",
                format!("<{element}> attribute {key}: a raw '<' must be written &lt;"),
            ));
        }
        match attr.normalized_value(XmlVersion::Explicit1_0) {
            Ok(v) => Ok(v.into_owned()),
            Err(QxError::Escape(e)) => {
                let what = match &e {
                    EscapeError::UnrecognizedEntity(_, name) => {
                        format!("found a reference to undeclared entity &{};", shorten(name))
                    }
                    other => format!("bad reference: {other}"),
                };
                Err(self.err(
                    start,
                    "xml-entity",
                    format!("<{element}> attribute {key}: {what}"),
                ))
            }
            Err(other) => Err(self.err(
                start,
                "xml-syntax",
                format!("<{element}> attribute {key}: {other}"),
            )),
        }
    }

    fn attr_error(&mut self, e: AttrError, element: &str, start: u64) -> FormatError {
        match e {
            AttrError::Duplicated(..) => self.err(
                start,
                "xml-duplicate-attribute",
                format!("<{element}> has the same attribute twice"),
            ),
            other => self.err(
                start,
                "xml-syntax",
                format!("<{element}> has a malformed attribute: {other}"),
            ),
        }
    }

    fn map_error(&mut self, e: QxError, start: u64) -> FormatError {
        if let Some(g) = self.reader.get_mut().take_error() {
            return self.err(g.offset, g.code, g.problem);
        }
        let bom = self.bom_len();
        let at = (self.reader.error_position() + bom).max(start);
        match e {
            QxError::Io(io) => self.err(start, "io", format!("read failed: {io}")),
            QxError::Syntax(SyntaxError::InvalidBangMarkup) => self.err(
                at,
                "xml-syntax",
                "expected a comment, CDATA or DOCTYPE after '<!'",
            ),
            QxError::Syntax(s) => {
                self.err(at, "xml-truncated", format!("the file ends early: {s}"))
            }
            QxError::IllFormed(IllFormedError::MismatchedEndTag { expected, found }) => self.err(
                at,
                "xml-end-tag",
                format!(
                    "expected </{}>, found </{}>",
                    shorten(&expected),
                    shorten(&found)
                ),
            ),
            QxError::IllFormed(IllFormedError::UnmatchedEndTag(name)) => self.err(
                at,
                "xml-end-tag",
                format!("found end tag </{}> with no open element", shorten(&name)),
            ),
            QxError::IllFormed(IllFormedError::MissingEndTag(name)) => self.err(
                at,
                "xml-truncated",
                format!("the file ends before </{}>", shorten(&name)),
            ),
            QxError::IllFormed(
                IllFormedError::MissingDeclVersion(_) | IllFormedError::UnknownVersion,
            ) => self.err(
                at,
                "xml-declaration",
                "expected <?xml version=\"1.0\" encoding=\"UTF-8\"?>",
            ),
            QxError::IllFormed(IllFormedError::MissingDoctypeName) => self.err(
                at,
                "xml-doctype",
                "found a DOCTYPE; DOCTYPE and entity declarations are refused",
            ),
            QxError::IllFormed(IllFormedError::UnclosedReference) => self.err(
                at,
                "xml-entity",
                "found '&' not starting a reference (write &amp;)",
            ),
            QxError::Encoding(e) => self.err(at, "xml-utf8", format!("invalid utf-8: {e}")),
            QxError::Escape(e) => self.err(at, "xml-entity", format!("bad reference: {e}")),
            other => self.err(at, "xml-syntax", format!("malformed xml: {other}")),
        }
    }

    fn bom_len(&self) -> u64 {
        // quick-xml counts offsets after the byte order mark the guard skipped.
        let g = self.reader.get_ref();
        g.consumed.saturating_sub(self.reader.buffer_position())
    }

    /// Capacity of the event buffer (tests: it must not grow with the input).
    #[cfg(test)]
    pub(crate) fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }
}

fn is_blank(t: &[u8]) -> bool {
    t.iter().all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

// ---------------------------------------------------------------------------
// The writer.
// ---------------------------------------------------------------------------

/// One open element on the writer's stack.
#[derive(Debug)]
struct WOpen {
    spec: Option<&'static ElementSpec>,
    id: Option<TechId>,
    last_rank: Option<u8>,
}

/// Writes the canonical document of a [`Schema`]: the declaration, 2-space
/// indentation, one element per line, attributes in spec order, self-closing
/// when childless, `& < > "` escaped, LF line ends, a final newline.
///
/// Writes one line at a time to `out`; give it a buffered writer.
pub struct XmlWriter<W: Write> {
    out: W,
    schema: &'static Schema,
    stack: Vec<WOpen>,
    /// The last start tag, not yet terminated (`>` or `/>` depends on
    /// whether a child follows).
    pending: Option<String>,
    records: u64,
}

impl<W: Write> XmlWriter<W> {
    pub fn new(mut out: W, schema: &'static Schema) -> Result<XmlWriter<W>, WriteError> {
        out.write_all(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")?;
        Ok(XmlWriter {
            out,
            schema,
            stack: vec![WOpen {
                spec: None,
                id: None,
                last_rank: None,
            }],
            pending: Some(format!("<{} version=\"{VERSION}\"", schema.root)),
            records: 0,
        })
    }

    /// Writes element `name` under the open element of its parent kind whose
    /// id is `parent` (`None` for children of the root). `id` identifies the
    /// element for its own children; `values` follow the spec's attribute
    /// order.
    pub fn element(
        &mut self,
        name: &str,
        parent: Option<TechId>,
        id: Option<TechId>,
        values: &[&str],
    ) -> Result<(), WriteError> {
        let Some(spec) = self.schema.find(name) else {
            return Err(WriteError::Invalid(format!(
                "<{}> defines no element <{name}>",
                self.schema.root
            )));
        };
        if values.len() != spec.attributes.len() {
            return Err(WriteError::Invalid(format!(
                "<{name}> takes {} attributes, given {}",
                spec.attributes.len(),
                values.len()
            )));
        }
        // Find the parent on the stack before changing anything.
        let Some(level) = self
            .stack
            .iter()
            .rposition(|o| o.spec.map(|s| s.name) == spec.parent)
        else {
            return Err(WriteError::Invalid(format!(
                "<{name}> needs an open <{}>, none is open",
                spec.parent.unwrap_or(self.schema.root)
            )));
        };
        if let Some(open) = self.stack.get(level) {
            if spec.parent.is_some() && open.id != parent {
                return Err(WriteError::Invalid(format!(
                    "<{name}> belongs to <{}> {}, but the open one is {}",
                    spec.parent.unwrap_or(self.schema.root),
                    parent.map_or("(none)".to_owned(), |p| p.to_string()),
                    open.id.map_or("(none)".to_owned(), |p| p.to_string()),
                )));
            }
            if let Some(last) = open.last_rank
                && last > spec.rank
            {
                return Err(WriteError::Invalid(format!(
                    "<{name}> comes after a later section of <{}>; write items in section order",
                    spec.parent.unwrap_or(self.schema.root)
                )));
            }
        }
        while self.stack.len() > level + 1 {
            self.close_top()?;
        }
        if let Some(p) = self.pending.take() {
            self.out.write_all(p.as_bytes())?;
            self.out.write_all(b">\n")?;
        }
        if let Some(open) = self.stack.last_mut() {
            open.last_rank = Some(spec.rank);
        }
        let mut line = "  ".repeat(self.stack.len());
        line.push('<');
        line.push_str(name);
        for (key, value) in spec.attributes.iter().zip(values) {
            line.push(' ');
            line.push_str(key);
            line.push_str("=\"");
            escape_into(&mut line, value);
            line.push('"');
        }
        self.pending = Some(line);
        self.stack.push(WOpen {
            spec: Some(spec),
            id,
            last_rank: None,
        });
        self.records += 1;
        Ok(())
    }

    fn close_top(&mut self) -> Result<(), WriteError> {
        let Some(top) = self.stack.pop() else {
            return Ok(());
        };
        if let Some(p) = self.pending.take() {
            self.out.write_all(p.as_bytes())?;
            self.out.write_all(b"/>\n")?;
        } else {
            let name = top.spec.map_or(self.schema.root, |s| s.name);
            let line = format!("{}</{name}>\n", "  ".repeat(self.stack.len()));
            self.out.write_all(line.as_bytes())?;
        }
        Ok(())
    }

    /// Closes every open element, flushes, and returns the output with the
    /// number of elements written (the root excluded).
    pub fn finish(mut self) -> Result<(W, u64), WriteError> {
        while !self.stack.is_empty() {
            self.close_top()?;
        }
        self.out.flush()?;
        Ok((self.out, self.records))
    }
}

/// Escapes an attribute value for double quotes.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::seatplan::SCHEMA;
    use std::io::BufReader;

    /// Hands out one byte per read, so every multi-byte character and every
    /// tag is split across reads.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), out.first_mut()) {
                (Some((b, rest)), Some(o)) => {
                    *o = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    fn names(doc: &[u8]) -> Result<Vec<String>, FormatError> {
        let mut r = XmlReader::new(
            BufReader::with_capacity(1, Trickle(doc)),
            "t.xml",
            Limits::default(),
            &SCHEMA,
        );
        let mut out = Vec::new();
        while let Some(el) = r.next_element()? {
            out.push(format!("{}@{}", el.value("name"), el.position()));
        }
        Ok(out)
    }

    const DOC: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!-- plan -->\n\
        <seatplan version=\"1\">\n  <seatCategory id=\"1\" code=\"A\" name=\"Caté 😀 1\"/>\n\
        <seatCategory\n id=\"2\" code=\"B\" name=\"B &amp; &#x1F600;\"/>\n</seatplan>\n<!-- end -->\n";

    #[test]
    fn split_characters_and_tags_read_the_same_with_positions() {
        let got = names(DOC.as_bytes()).unwrap();
        assert_eq!(
            got,
            ["Caté 😀 1@line 4 (byte 78)", "B & 😀@line 5 (byte 130)"]
        );
        // With a UTF-8 byte order mark, offsets count it.
        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice(DOC.as_bytes());
        let got = names(&bom).unwrap();
        assert_eq!(got[1], "B & 😀@line 5 (byte 133)");
    }

    #[test]
    fn bad_bytes_are_reported_where_they_are() {
        let at = |doc: &[u8]| {
            let e = names(doc).unwrap_err();
            (e.code, e.position.to_string())
        };
        let mut doc = DOC.as_bytes().to_vec();
        let e_acute = DOC.find('é').unwrap();
        // A lone continuation byte, an overlong form, a surrogate, a cut sequence.
        for (bytes, code) in [
            (&[0x80][..], "xml-utf8"),
            (&[0xC0, 0xA9][..], "xml-utf8"),
            (&[0xED, 0xA0][..], "xml-utf8"),
            (&[0xF0, 0x9F][..], "xml-utf8"),
            (&[0x00][..], "xml-char"),
            (&[0x07][..], "xml-char"),
        ] {
            doc.splice(e_acute..e_acute + 2, bytes.iter().copied());
            assert_eq!(
                at(&doc),
                (code, format!("line 4 (byte {e_acute})")),
                "{bytes:?}"
            );
            doc = DOC.as_bytes().to_vec();
        }
        // A sequence cut by the end of the file.
        assert_eq!(
            at(&[b'<', 0xE2, 0x82]),
            ("xml-utf8", "line 1 (byte 1)".to_owned())
        );
        // UTF-16 with and without a byte order mark.
        assert_eq!(at(&[0xFF, 0xFE, b'<', 0]).0, "xml-encoding");
        assert_eq!(at(b"<\0?\0x\0").0, "xml-encoding");
        assert_eq!(at(b"").0, "xml-empty");
        assert_eq!(
            at(b"\n<?xml version=\"1.0\"?><seatplan version=\"1\"/>").0,
            "xml-declaration"
        );
        assert_eq!(
            at(b"<?xml version=\"1.1\"?><seatplan version=\"1\"/>").0,
            "xml-declaration"
        );
        assert_eq!(
            at(b"<?xml version=\"1.0\" encoding=\"UTF-16\"?><seatplan version=\"1\"/>").0,
            "xml-encoding"
        );
    }

    #[test]
    fn structure_errors_name_element_and_attribute() {
        let doc = |body: &str| {
            format!("<?xml version=\"1.0\"?>\n<seatplan version=\"1\">\n{body}\n</seatplan>\n")
        };
        let err = |body: &str| names(doc(body).as_bytes()).unwrap_err();
        let e = err(r#"<seatCategory id="1" code="A"/>"#);
        assert_eq!(e.code, "xml-missing-attribute");
        assert_eq!(e.position.to_string(), "line 3 (byte 45)");
        assert!(e.problem.contains("<seatCategory> attribute name"), "{e}");
        let e = err(r#"<seatCategory id="1" code="A" name="n" colour="red"/>"#);
        assert_eq!(e.code, "xml-unknown-attribute");
        assert!(e.problem.contains("colour"), "{e}");
        let e = err(r#"<seatCategory id="1" code="A" name="n" code="B"/>"#);
        assert_eq!(e.code, "xml-duplicate-attribute");
        assert_eq!(
            err(r#"<seatCategory id=1 code="A" name="n"/>"#).code,
            "xml-syntax"
        );
        assert_eq!(
            err("<seat id=\"1\" number=\"1\" seatCategory=\"1\"/>").code,
            "xml-nesting"
        );
        assert_eq!(err("text").code, "xml-text");
        assert_eq!(err("&amp;").code, "xml-text");
        assert_eq!(err("&nbsp;").code, "xml-entity");
        assert_eq!(err("<![CDATA[x]]>").code, "xml-cdata");
        assert_eq!(err("<?php x?>").code, "xml-pi");
        assert_eq!(err("<?xml version=\"1.0\"?>").code, "xml-declaration");
        assert_eq!(err("</venue>").code, "xml-end-tag");
        let e = names(b"<?xml version=\"1.0\"?><seatplan version=\"1\" lang=\"fr\"/>").unwrap_err();
        assert_eq!(e.code, "xml-unknown-attribute");
        let e = names(b"<?xml version=\"1.0\"?><seatplan/>").unwrap_err();
        assert_eq!(e.code, "xml-missing-attribute");
        let e = names(b"<?xml version=\"1.0\"?><seatplan version=\"1\"/>trailing").unwrap_err();
        assert_eq!(e.code, "xml-trailing");
        assert_eq!(
            names(b"<?xml version=\"1.0\"?><seatplan version=\"1\"/>\n<!-- ok -->\n \n").unwrap(),
            Vec::<String>::new()
        );
    }

    #[test]
    fn escaping_covers_markup_and_line_breaks() {
        let mut s = String::new();
        escape_into(&mut s, "a&b<c>d\"e'f\tg\nh\ri");
        assert_eq!(s, "a&amp;b&lt;c&gt;d&quot;e'f&#9;g&#10;h&#13;i");
    }
}
