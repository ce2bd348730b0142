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
//! | `xml-syntax` | malformed markup (attribute without quotes or `=`, two attributes without whitespace between them, `<` in a value…) |
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
//! | `money-*`, `bad-currency` | amounts and currencies ([`crate::money`]; a price of 0 is a free tariff) |
//! | `bad-number` | a count or rate that is not plain digits within its range |
//! | `bad-date` | a date, date-time or date range that is not as documented |
//! | `bad-state` | an unknown performance state |
//! | `read-failed` | the input could not be read (the inbound stages retry the file) |
//!
//! Positions are `Position::Byte` with the 1-based line: the offset of the
//! `<` of the offending tag, or of the offending byte.

//!
//! One file per part: `schema` (what a payload defines, the validated
//! [`Element`] and the date formats), `guard` (the byte guard), `attrs` (a
//! start tag's attributes, split in place), `reader` ([`XmlReader`]) and
//! `writer` ([`XmlWriter`]); this module re-exports their public items.

mod attrs;
mod guard;
mod reader;
mod schema;
mod writer;

pub use reader::XmlReader;
pub use schema::{Element, ElementSpec, Schema, format_date, format_date_time, parse_date};
pub use writer::XmlWriter;

#[cfg(test)]
mod tests {
    use std::io::{self, Read};

    use super::writer::escape_into;
    use super::*;
    use crate::format::seatplan::SCHEMA;
    use crate::format::{FormatError, Limits};
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
        names_from(BufReader::with_capacity(1, Trickle(doc)))
    }

    /// The name and position of each element `input` holds.
    fn names_from(input: impl io::BufRead) -> Result<Vec<String>, FormatError> {
        let mut r = XmlReader::new(input, "t.xml", Limits::default(), &SCHEMA);
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
    fn positions_hold_in_a_long_document_read_in_blocks_or_byte_by_byte() {
        // Thousands of lines of ASCII runs (which the guard checks a block
        // at a time) broken by multi-byte characters, tabs and CR LF.
        let mut doc = String::from("<?xml version=\"1.0\"?>\r\n<seatplan version=\"1\">");
        let mut expected = Vec::new();
        for i in 0..3000 {
            let name = match i % 4 {
                0 => format!("Catégorie {i}"),
                1 => format!("a long name with no accent at all, number {i}"),
                2 => format!("😀{i}é"),
                _ => format!("n{i}"),
            };
            doc.push_str(if i % 7 == 0 { "\r\n\t" } else { "\n  " });
            let line = 1 + doc.matches('\n').count();
            expected.push(format!("{name}@line {line} (byte {})", doc.len()));
            doc.push_str(&format!(
                "<seatCategory id=\"{}\" code=\"C{i}\" name=\"{name}\"/>",
                i + 1
            ));
        }
        doc.push_str("\n</seatplan>\n");
        let whole = names_from(doc.as_bytes()).unwrap();
        assert_eq!(whole, expected);
        assert_eq!(names(doc.as_bytes()).unwrap(), expected);
        // A control character on the last element's line, far into the file.
        let at = doc.rfind("n2999").unwrap();
        let line = 1 + doc[..at].matches('\n').count();
        let mut bad = doc.into_bytes();
        bad[at] = 0x01;
        for e in [names_from(&bad[..]).unwrap_err(), names(&bad).unwrap_err()] {
            assert_eq!(e.code, "xml-char");
            assert_eq!(e.position.to_string(), format!("line {line} (byte {at})"));
        }
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
    fn what_follows_whitespace_is_placed_past_it() {
        // The body starts at byte 45, on line 3.
        let doc = |body: &str| {
            format!("<?xml version=\"1.0\"?>\n<seatplan version=\"1\">\n{body}\n</seatplan>\n")
        };
        let at = |doc: &str| {
            let e = names(doc.as_bytes()).unwrap_err();
            (e.code, e.position.to_string())
        };
        let line_4 = "line 4 (byte 51)".to_owned();
        assert_eq!(at(&doc("  \n   text")), ("xml-text", line_4.clone()));
        assert_eq!(at(&doc("  \n   &amp;")), ("xml-text", line_4.clone()));
        assert_eq!(at(&doc("  \n   &nbsp;")), ("xml-entity", line_4.clone()));
        assert_eq!(
            at(&doc("  \n   <chair/>")),
            ("xml-unknown-element", line_4.clone())
        );
        let e = names(doc("  \n   <seatCategory id=\"1\" code=\"A\" name=\"n\"/>").as_bytes());
        assert_eq!(e.unwrap(), ["n@line 4 (byte 51)"]);
        // The end of a file cut after whitespace is where it ends.
        assert_eq!(
            at("<?xml version=\"1.0\"?>\n<seatplan version=\"1\">\n  \n"),
            ("xml-truncated", "line 4 (byte 48)".to_owned())
        );
        // Whitespace before the declaration is still refused.
        assert_eq!(
            at(" <?xml version=\"1.0\"?><seatplan version=\"1\"/>").0,
            "xml-declaration"
        );
    }

    /// Elements of different shapes read one after the other into the same
    /// recycled element keep their own values.
    #[test]
    fn a_recycled_element_holds_only_its_own_values() {
        let doc = "<?xml version=\"1.0\"?>\n<seatplan version=\"1\">\n\
            <seatCategory id=\"1\" code=\"A\" name=\"Long name &amp; more\"/>\n\
            <venue name=\"V\" code=\"VC\" id=\"30\">\n<configuration id=\"31\" code=\"C\" name=\"c\">\n\
            <zone id=\"32\" code=\"Z\" name=\"z\" seatCategory=\"1\" capacity=\"7\"/>\n\
            </configuration>\n</venue>\n</seatplan>\n";
        let mut r = XmlReader::new(doc.as_bytes(), "t.xml", Limits::default(), &SCHEMA);
        let mut seen = Vec::new();
        while let Some(el) = r.next_element().unwrap() {
            let attrs = el.spec.attributes;
            seen.push(
                attrs
                    .iter()
                    .map(|a| el.value(a).to_owned())
                    .collect::<Vec<_>>(),
            );
            r.recycle(el);
        }
        assert_eq!(
            seen,
            [
                vec!["1", "A", "Long name & more"],
                vec!["30", "VC", "V"],
                vec!["31", "C", "c"],
                vec!["32", "Z", "z", "1", "7"],
            ]
        );
    }

    #[test]
    fn escaping_covers_markup_and_line_breaks() {
        let mut s = String::new();
        escape_into(&mut s, "a&b<c>d\"e'f\tg\nh\ri");
        assert_eq!(s, "a&amp;b&lt;c&gt;d&quot;e'f&#9;g&#10;h&#13;i");
    }
}
