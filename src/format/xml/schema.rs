//! What a payload defines and what the reader yields: a [`Schema`] (one
//! [`ElementSpec`] per element: name, parent, section rank, attributes) and
//! the validated [`Element`], whose typed accessors take an attribute name
//! and return its value parsed (ids, codes, names, numbers, dates, amounts,
//! currencies) or a [`FormatError`] naming the element and attribute. Also
//! the date formats the writers share.

use std::ops::Range;
use std::sync::Arc;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::format::{FormatError, Position, WriteError};
use crate::ident::{Code, Name, TechId, shorten};
use crate::money::{Currency, parse_minor_units};

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

/// The elements of one payload in one format version; the root carries
/// exactly `version="<version>"`.
#[derive(Debug)]
pub struct Schema {
    pub root: &'static str,
    /// The format version this schema reads and writes (`"1"`, `"2"`).
    pub version: &'static str,
    pub elements: &'static [ElementSpec],
    /// The schema of the next format version of the same payload, which the
    /// reader also accepts (a document says its version on its root).
    pub next: Option<&'static Schema>,
}

impl Schema {
    pub(super) fn find(&self, name: &str) -> Option<&'static ElementSpec> {
        self.elements.iter().find(|e| e.name == name)
    }
}

/// A validated element: known name, right place, every attribute present once.
///
/// Its values are kept in one string, so that reading an element allocates
/// nothing once the reader has an element to reuse (see
/// [`XmlReader::recycle`](super::XmlReader::recycle)).
#[derive(Debug, Clone)]
pub struct Element {
    pub(super) spec: &'static ElementSpec,
    /// The unescaped values, one after the other.
    pub(super) text: String,
    /// Where the value of each attribute of `spec.attributes` lies in
    /// `text`, in the spec's order (every one filled once validated).
    pub(super) spans: Vec<Option<Range<usize>>>,
    pub(super) position: Position,
    pub(super) file: Arc<str>,
}

/// The spec of an element not read yet.
static NONE: ElementSpec = ElementSpec {
    name: "",
    parent: None,
    rank: 0,
    attributes: &[],
};

impl Element {
    /// An element to read into.
    pub(super) fn empty(file: Arc<str>) -> Element {
        Element {
            spec: &NONE,
            text: String::new(),
            spans: Vec::new(),
            position: Position::File,
            file,
        }
    }

    /// Starts reading the element `spec` found at `position`: no value yet.
    pub(super) fn reset(&mut self, spec: &'static ElementSpec, position: Position) {
        self.spec = spec;
        self.text.clear();
        self.spans.clear();
        self.spans.resize(spec.attributes.len(), None);
        self.position = position;
    }

    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    pub fn position(&self) -> &Position {
        &self.position
    }

    /// The unescaped value of an attribute of the element's spec (empty for an
    /// attribute the spec does not define, which is a bug in the caller).
    pub fn value(&self, attr: &str) -> &str {
        // Callers name attributes with the literals the specs hold, which
        // the compiler stores once: the same address is the same name.
        self.spec
            .attributes
            .iter()
            .position(|a| std::ptr::eq(*a, attr) || *a == attr)
            .and_then(|i| self.spans.get(i))
            .and_then(|span| self.text.get(span.clone()?))
            .unwrap_or("")
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
                     (2037-01-15T20:00:00+01:00), found {:?}",
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

    /// An amount in minor units, 0 included (a free tariff: invitations).
    pub fn amount(&self, attr: &str) -> Result<i64, FormatError> {
        parse_minor_units(self.value(attr)).map_err(|e| self.error(attr, e.code(), e.to_string()))
    }

    pub fn currency(&self, attr: &str) -> Result<Currency, FormatError> {
        Currency::new(self.value(attr)).map_err(|e| self.error(attr, e.code(), e.to_string()))
    }
}

/// `YYYY-MM-DD`, four-digit year: a date of the files' formats, and of the
/// command line's date options.
pub fn parse_date(s: &str) -> Option<time::Date> {
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
