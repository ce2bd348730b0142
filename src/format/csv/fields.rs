//! The field parsers the CSV payloads share: each takes one field's text and
//! returns the typed value or a [`FieldError`] (a stable code and a
//! sentence); [`Row`](super::Row) adds the file, line and column.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::format::WriteError;
use crate::ident::{Code, TechId, shorten};
use crate::money::{self, Currency, MoneyError};

/// Why a single field was refused; [`Row`](super::Row) adds the file and position.
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
