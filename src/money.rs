//! Money without floats: an amount in integer minor units (cents) and an ISO
//! 4217 currency code.
//!
//! Every price that enters stxd, from a file, a master-data load or the CLI,
//! goes through [`parse_minor_units`] and [`Currency::new`]; nothing else
//! parses money. The error says what was wrong in the terms an operator uses
//! (a decimal point, a thousands separator, a sign, an exponent).

use std::fmt;

/// Largest amount accepted, in minor units: 10^15 − 1 (ten thousand billion
/// euros), far above any ticket and far below `i64::MAX`, so sums of millions of
/// lines cannot overflow.
pub const AMOUNT_MAX: i64 = 999_999_999_999_999;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("expected an amount in minor units (digits only), found an empty value")]
    Empty,
    #[error("negative amounts are refused (a refund is its own line), found {0:?}")]
    Negative(String),
    #[error("expected an amount in minor units, found an exponent in {0:?}")]
    Exponent(String),
    #[error(
        "expected an amount in minor units without decimals (write 4550 for 45.50), found {0:?}"
    )]
    Decimals(String),
    #[error("expected an amount in minor units without thousands separators, found {0:?}")]
    Separator(String),
    #[error("expected an amount in minor units (digits only), found {0:?}")]
    NotDigits(String),
    #[error("amount {0:?} is larger than the maximum {AMOUNT_MAX}")]
    TooLarge(String),
    #[error("expected a three-letter ISO 4217 currency code in capitals (EUR, CHF), found {0:?}")]
    Currency(String),
}

impl MoneyError {
    /// Stable short code, used in rejection reasons and run logs.
    pub fn code(&self) -> &'static str {
        match self {
            MoneyError::Empty => "money-empty",
            MoneyError::Negative(_) => "money-negative",
            MoneyError::Exponent(_) => "money-exponent",
            MoneyError::Decimals(_) => "money-decimals",
            MoneyError::Separator(_) => "money-separator",
            MoneyError::NotDigits(_) => "money-not-digits",
            MoneyError::TooLarge(_) => "money-too-large",
            MoneyError::Currency(_) => "bad-currency",
        }
    }
}

/// Parses an amount written in minor units: ASCII digits only, no sign, no
/// leading zeros except `0` itself.
pub fn parse_minor_units(s: &str) -> Result<i64, MoneyError> {
    let shown = || crate::ident::shorten(s);
    if s.is_empty() {
        return Err(MoneyError::Empty);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        if s.len() > 1 && s.starts_with('0') {
            return Err(MoneyError::NotDigits(shown()));
        }
        if s.len() > 15 {
            return Err(MoneyError::TooLarge(shown()));
        }
        // 15 digits always fit in i64.
        let v: i64 = s.parse().map_err(|_| MoneyError::NotDigits(shown()))?;
        return Ok(v);
    }
    let t = s.trim();
    if t.starts_with('-') || t.starts_with('\u{2212}') {
        return Err(MoneyError::Negative(shown()));
    }
    if t.contains(['e', 'E']) && t.chars().any(|c| c.is_ascii_digit()) && !t.contains(['.', ','])
        || t.contains(['e', 'E']) && t.contains('.')
    {
        return Err(MoneyError::Exponent(shown()));
    }
    let digits_and = |sep: &[char]| t.chars().all(|c| c.is_ascii_digit() || sep.contains(&c));
    if digits_and(&['.'])
        || digits_and(&[',']) && t.matches(',').count() == 1 && !looks_grouped(t, ',')
    {
        return Err(MoneyError::Decimals(shown()));
    }
    if digits_and(&[',', '.', ' ', '\u{a0}', '\u{202f}', '\'', '_']) {
        return Err(MoneyError::Separator(shown()));
    }
    Err(MoneyError::NotDigits(shown()))
}

/// `1,234` or `12,345,678`: groups of three after the first separator.
fn looks_grouped(t: &str, sep: char) -> bool {
    let mut parts = t.split(sep);
    let first = parts.next().unwrap_or("");
    !first.is_empty() && first.len() <= 3 && parts.all(|p| p.len() == 3)
}

/// An ISO 4217 alphabetic code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn new(s: &str) -> Result<Currency, MoneyError> {
        match s.as_bytes() {
            [a, b, c] if [a, b, c].iter().all(|x| x.is_ascii_uppercase()) => {
                Ok(Currency([*a, *b, *c]))
            }
            _ => Err(MoneyError::Currency(crate::ident::shorten(s))),
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII capitals are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An amount with its currency. Arithmetic across currencies is not offered:
/// totals are kept per currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl fmt::Display for Money {
    /// `45.50 EUR`: for people, never parsed back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{:02} {}",
            self.minor / 100,
            (self.minor % 100).abs(),
            self.currency
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_units_are_plain_digits() {
        assert_eq!(parse_minor_units("0"), Ok(0));
        assert_eq!(parse_minor_units("4550"), Ok(4550));
        assert_eq!(parse_minor_units("999999999999999"), Ok(AMOUNT_MAX));
    }

    #[test]
    fn each_malformed_amount_gets_its_own_reason() {
        let code = |s: &str| parse_minor_units(s).unwrap_err().code();
        assert_eq!(code(""), "money-empty");
        assert_eq!(code("-4550"), "money-negative");
        assert_eq!(code("4.55e3"), "money-exponent");
        assert_eq!(code("1e309"), "money-exponent");
        assert_eq!(code("45.50"), "money-decimals");
        assert_eq!(code("45.505"), "money-decimals");
        assert_eq!(code("45,50"), "money-decimals");
        assert_eq!(code("1,234"), "money-separator");
        assert_eq!(code("1 234"), "money-separator");
        assert_eq!(code("1'234"), "money-separator");
        assert_eq!(code("1234567890123456"), "money-too-large");
        assert_eq!(code("NaN"), "money-not-digits");
        assert_eq!(code("007"), "money-not-digits");
        assert_eq!(code("+45"), "money-not-digits");
    }

    #[test]
    fn currency_is_three_capitals() {
        assert_eq!(Currency::new("EUR").unwrap().as_str(), "EUR");
        for bad in ["eur", "EURO", "E1R", ""] {
            assert!(Currency::new(bad).is_err());
        }
    }

    #[test]
    fn display_is_for_people() {
        let m = Money {
            minor: 4550,
            currency: Currency::new("EUR").unwrap(),
        };
        assert_eq!(m.to_string(), "45.50 EUR");
    }
}
