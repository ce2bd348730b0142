//! Identifiers as SecuTix spells them: a numeric technical id per object, a
//! code of at most 8 characters and a name of at most 60.
//!
//! This module only validates and carries values; it knows nothing of files or
//! of the store. Every reader and every loader builds these through
//! [`TechId::parse`], [`Code::new`] and [`Name::new`], so the rules live here once.

use std::fmt;

/// Longest code SecuTix accepts, in characters.
pub const CODE_MAX: usize = 8;
/// Longest name SecuTix accepts, in characters.
pub const NAME_MAX: usize = 60;

/// Why an identifier was refused; the caller adds the file and position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentError {
    #[error("expected a technical id (1 to 18 digits, not starting with 0), found {0:?}")]
    TechId(String),
    #[error(
        "expected a code of 1 to {CODE_MAX} characters among A-Z a-z 0-9 _ - . starting with a letter or digit, found {0:?}"
    )]
    Code(String),
    #[error(
        "expected a name of 1 to {NAME_MAX} characters without control characters, found {0:?}"
    )]
    Name(String),
}

impl IdentError {
    /// Stable short code, used in rejection reasons and run logs.
    pub fn code(&self) -> &'static str {
        match self {
            IdentError::TechId(_) => "bad-id",
            IdentError::Code(_) => "bad-code",
            IdentError::Name(_) => "bad-name",
        }
    }
}

/// A SecuTix technical id: a positive integer, unique per object kind within
/// one institution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TechId(i64);

impl TechId {
    /// Parses the decimal form used in files: digits only, no sign, no leading
    /// zero, at most 18 digits (so it always fits SQLite's signed 64 bits).
    pub fn parse(s: &str) -> Result<TechId, IdentError> {
        let ok = !s.is_empty()
            && s.len() <= 18
            && s.bytes().all(|b| b.is_ascii_digit())
            && !s.starts_with('0');
        if !ok {
            return Err(IdentError::TechId(shorten(s)));
        }
        s.parse::<i64>()
            .map(TechId)
            .map_err(|_| IdentError::TechId(shorten(s)))
    }

    /// Builds an id from a value already known to be positive (from the store).
    pub fn new(v: i64) -> Result<TechId, IdentError> {
        if v > 0 {
            Ok(TechId(v))
        } else {
            Err(IdentError::TechId(v.to_string()))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for TechId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A short business code (`CAT1`, `ADULT`, `TOURISM`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Code(String);

impl Code {
    pub fn new(s: &str) -> Result<Code, IdentError> {
        let n = s.chars().count();
        // The first character is a letter or digit: a code can never read as
        // a spreadsheet formula (`-1`, `=…`, `@…`) or a command-line option.
        let ok = (1..=CODE_MAX).contains(&n)
            && s.starts_with(|c: char| c.is_ascii_alphanumeric())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if ok {
            Ok(Code(s.to_owned()))
        } else {
            Err(IdentError::Code(shorten(s)))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A human-readable label; any printable Unicode, trimmed by the writer, never
/// empty.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(String);

impl Name {
    pub fn new(s: &str) -> Result<Name, IdentError> {
        let n = s.chars().count();
        let ok = (1..=NAME_MAX).contains(&n) && s.trim() == s && !s.chars().any(char::is_control);
        if ok {
            Ok(Name(s.to_owned()))
        } else {
            Err(IdentError::Name(shorten(s)))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Keeps error messages short when the offending value is huge.
pub(crate) fn shorten(s: &str) -> String {
    const KEEP: usize = 40;
    if s.chars().count() <= KEEP {
        s.to_owned()
    } else {
        let head: String = s.chars().take(KEEP).collect();
        format!("{head}… ({} bytes)", s.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tech_id_accepts_plain_positive_decimals_only() {
        assert_eq!(TechId::parse("10000001").unwrap().get(), 10_000_001);
        for bad in [
            "",
            "0",
            "012",
            "-1",
            "+1",
            "1e3",
            "1 2",
            "9999999999999999999",
            "١٢",
        ] {
            assert!(TechId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn code_is_at_most_eight_safe_characters() {
        assert!(Code::new("CAT1").is_ok());
        assert!(Code::new("ABCDEFGH").is_ok());
        for bad in [
            "",
            "ABCDEFGHI",
            "A B",
            "=SUM",
            "-1+1",
            "_x",
            ".x",
            "É",
            "a/b",
        ] {
            assert!(Code::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn name_is_at_most_sixty_characters_without_controls() {
        assert!(Name::new("Catégorie 1 — Parterre").is_ok());
        assert!(Name::new(&"é".repeat(60)).is_ok());
        for bad in ["", " lead", "trail ", "a\nb", "nul\0"] {
            assert!(Name::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Name::new(&"x".repeat(61)).is_err());
    }
}
