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
        let digits = s.as_bytes();
        let bad = || IdentError::TechId(shorten(s));
        if !(1..=18).contains(&digits.len()) || digits.first() == Some(&b'0') {
            return Err(bad());
        }
        // 18 digits cannot overflow: the value is summed as read.
        digits
            .iter()
            .try_fold(0i64, |v, b| {
                b.is_ascii_digit().then(|| v * 10 + i64::from(b - b'0'))
            })
            .map(TechId)
            .ok_or_else(bad)
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
///
/// Held in place, not on the heap: a code is at most [`CODE_MAX`] ASCII
/// characters, none of them NUL, so its bytes padded with zeros say it
/// whole. Two codes compare as their texts do (a shorter code's padding
/// sorts before any character), and a record's code costs no allocation.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Code([u8; CODE_MAX]);

impl Code {
    pub fn new(s: &str) -> Result<Code, IdentError> {
        // Every character a code allows is ASCII, so its bytes are its
        // characters. The first is a letter or digit: a code can never read
        // as a spreadsheet formula (`-1`, `=…`, `@…`) or a command-line
        // option.
        let b = s.as_bytes();
        let ok = (1..=CODE_MAX).contains(&b.len())
            && b.first().is_some_and(u8::is_ascii_alphanumeric)
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'));
        if ok {
            let mut bytes = [0u8; CODE_MAX];
            bytes[..b.len()].copy_from_slice(b);
            Ok(Code(bytes))
        } else {
            Err(IdentError::Code(shorten(s)))
        }
    }

    pub fn as_str(&self) -> &str {
        let len = self.0.iter().position(|&b| b == 0).unwrap_or(CODE_MAX);
        // ASCII by construction: never the empty fallback.
        std::str::from_utf8(&self.0[..len]).unwrap_or_default()
    }

    /// The code as one number, its bytes in order: a code is at most eight
    /// ASCII characters, none of them NUL, so two codes are equal exactly
    /// when their packed numbers are.
    pub fn packed(&self) -> u64 {
        const { assert!(CODE_MAX == 8) };
        u64::from_be_bytes(self.0)
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Code").field(&self.as_str()).finish()
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
        assert_eq!(
            TechId::parse("999999999999999999").unwrap().get(),
            999_999_999_999_999_999
        );
        for bad in [
            "",
            "0",
            "012",
            "-1",
            "+1",
            "1e3",
            "1 2",
            "9999999999999999999",
            "1000000000000000000",
            "10000000000000000000",
            "١٢",
        ] {
            assert!(TechId::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    proptest::proptest! {
        /// The byte-wise checks agree with the rules said in characters: an
        /// id is what `str::parse` reads from plain digits without a leading
        /// zero, at most 18 of them; a code is 1 to 8 characters among
        /// `A-Z a-z 0-9 _ - .`, the first a letter or digit.
        #[test]
        fn ids_and_codes_follow_their_rules_in_characters(
            s in "[0-9]{0,20}|[-+ 0-9a-zA-Z_.é١]{0,10}|\\PC{0,10}"
        ) {
            let id = (!s.is_empty() && s.len() <= 18 && s.chars().all(|c| c.is_ascii_digit())
                && !s.starts_with('0'))
                .then(|| s.parse::<i64>().ok())
                .flatten();
            proptest::prop_assert_eq!(TechId::parse(&s).ok().map(TechId::get), id);
            let n = s.chars().count();
            let code = (1..=CODE_MAX).contains(&n)
                && s.starts_with(|c: char| c.is_ascii_alphanumeric())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            proptest::prop_assert_eq!(Code::new(&s).is_ok(), code, "{:?}", s);
        }

        /// Two codes are equal exactly when their packed numbers are; held
        /// in place, a code gives back its text and compares as it does.
        #[test]
        fn codes_are_told_apart_by_their_packed_numbers(
            a in "[A-Za-z0-9][A-Za-z0-9_.-]{0,7}",
            b in "[A-Za-z0-9][A-Za-z0-9_.-]{0,7}|[A-Za-z0-9]{1,3}",
        ) {
            let (ca, cb) = (Code::new(&a).unwrap(), Code::new(&b).unwrap());
            proptest::prop_assert_eq!(ca.packed() == cb.packed(), a == b);
            proptest::prop_assert_eq!(ca.as_str(), a.as_str());
            proptest::prop_assert_eq!(ca.to_string(), a.clone());
            proptest::prop_assert_eq!(format!("{ca:?}"), format!("Code({a:?})"));
            proptest::prop_assert_eq!(ca == cb, a == b);
            proptest::prop_assert_eq!(ca.cmp(&cb), a.cmp(&b));
            // A code and any longer code it begins.
            for end in 1..a.len() {
                let head = Code::new(&a[..end]).unwrap();
                proptest::prop_assert_ne!(head.packed(), ca.packed());
            }
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
