//! A start tag's attributes, split in place: [`AttrScan`] yields each
//! `name="value"` (or `name='value'`) of the bytes after the tag's name,
//! the value still escaped, and refuses what XML's grammar refuses there
//! (a missing `=`, an unquoted or unclosed value, two attributes without
//! whitespace between them). Which names are known, whether one comes twice
//! and what a value holds are the reader's to judge.
//!
//! quick-xml's own attribute iterator does the same, with more cases (HTML's
//! unquoted values, recovery after an error) and a copy of each attribute
//! through a `Result` on the way: on a seat plan, whose elements are mostly
//! attributes, this scan is about a tenth of the parse's time less.

use crate::ident::shorten;

/// The attributes of one start tag, from `BytesStart::attributes_raw`: the
/// text after the tag's name (empty, or starting with whitespace, since the
/// name ends there). After an error, the scan ends.
pub(super) struct AttrScan<'a> {
    rest: &'a str,
}

impl<'a> AttrScan<'a> {
    pub(super) fn new(raw: &'a str) -> AttrScan<'a> {
        AttrScan { rest: raw }
    }

    fn split(&mut self) -> Result<Option<(&'a str, &'a str)>, String> {
        let rest = self.rest;
        let b = rest.as_bytes();
        let ws = b.iter().take_while(|c| is_space(**c)).count();
        if ws == b.len() {
            return Ok(None);
        }
        // Every cut below is at an ASCII byte, hence at a character boundary.
        let key_len = b[ws..]
            .iter()
            .position(|c| *c == b'=' || is_space(*c))
            .unwrap_or(b.len() - ws);
        let key = &rest[ws..ws + key_len];
        if key.is_empty() {
            return Err("expected an attribute name before '='".to_owned());
        }
        if ws == 0 {
            return Err(format!("expected whitespace before {:?}", shorten(key)));
        }
        let mut i = skip_space(b, ws + key_len);
        if b.get(i) != Some(&b'=') {
            return Err(format!("expected '=' after {:?}", shorten(key)));
        }
        i = skip_space(b, i + 1);
        let Some(quote) = b.get(i).copied().filter(|q| matches!(q, b'"' | b'\'')) else {
            return Err(format!(
                "expected the value of {:?} in quotes",
                shorten(key)
            ));
        };
        let from = i + 1;
        let Some(len) = b[from..].iter().position(|c| *c == quote) else {
            return Err(format!(
                "the value of {:?} has no closing quote",
                shorten(key)
            ));
        };
        self.rest = &rest[from + len + 1..];
        Ok(Some((key, &rest[from..from + len])))
    }
}

impl<'a> Iterator for AttrScan<'a> {
    /// The name and the raw value, or what is malformed.
    type Item = Result<(&'a str, &'a str), String>;

    fn next(&mut self) -> Option<Self::Item> {
        let found = self.split();
        if found.is_err() {
            self.rest = "";
        }
        found.transpose()
    }
}

/// XML's whitespace (`S`).
pub(super) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn skip_space(b: &[u8], mut i: usize) -> usize {
    while b.get(i).copied().is_some_and(is_space) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::AttrScan;

    fn scan(raw: &str) -> Vec<Result<(&str, &str), String>> {
        AttrScan::new(raw).collect()
    }

    #[test]
    fn each_attribute_comes_with_its_raw_value() {
        assert_eq!(scan(""), vec![]);
        assert_eq!(scan("  \t\r\n "), vec![]);
        assert_eq!(
            scan(r#" id="1"  code='A"b'	name = "x &amp; y" "#),
            vec![
                Ok(("id", "1")),
                Ok(("code", "A\"b")),
                Ok(("name", "x &amp; y")),
            ]
        );
        assert_eq!(scan("\nk\n=\n''"), vec![Ok(("k", ""))]);
        assert_eq!(scan(" name=\"Caté 😀 >\""), vec![Ok(("name", "Caté 😀 >"))]);
    }

    #[test]
    fn malformed_attributes_are_named_and_end_the_scan() {
        let cases = [
            (r#" a="1"b="2""#, r#"expected whitespace before "b""#),
            (r#" ="1""#, "expected an attribute name before '='"),
            (" a", r#"expected '=' after "a""#),
            (" a b=\"1\"", r#"expected '=' after "a""#),
            (" a=1", r#"expected the value of "a" in quotes"#),
            (" a=", r#"expected the value of "a" in quotes"#),
            (" a=\"1", r#"the value of "a" has no closing quote"#),
            (" a='1\"", r#"the value of "a" has no closing quote"#),
        ];
        for (raw, what) in cases {
            let got = scan(raw);
            assert_eq!(got.last(), Some(&Err(what.to_owned())), "{raw:?}");
            assert_eq!(got.iter().filter(|r| r.is_err()).count(), 1, "{raw:?}");
        }
        // What came before the error is still told.
        assert_eq!(
            scan(r#" a="1" b"#),
            vec![Ok(("a", "1")), Err(r#"expected '=' after "b""#.to_owned())]
        );
    }

    #[test]
    fn any_text_is_split_without_a_panic() {
        // Every cut of a tag with multi-byte characters and quotes.
        let tag = r#" é="ü'" ö='"😀' x = "a""#;
        for end in (0..=tag.len()).filter(|i| tag.is_char_boundary(*i)) {
            for start in (0..=end).filter(|i| tag.is_char_boundary(*i)) {
                let got = scan(&tag[start..end]);
                let errors = got.iter().filter(|r| r.is_err()).count();
                assert!(errors <= 1, "{:?}", &tag[start..end]);
                assert!(errors == 0 || got.last().is_some_and(Result::is_err));
                for (key, _) in got.iter().flatten() {
                    assert!(!key.is_empty());
                    assert!(!key.bytes().any(|b| b == b'=' || super::is_space(b)));
                }
            }
        }
    }
}
