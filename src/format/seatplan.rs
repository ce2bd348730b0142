//! `SEATPLAN` payload (XML): the manager's physical seat plans.
//!
//! Takes bytes, yields [`Item`]s in document order, one at a time; writes the
//! same items back to the canonical document. Parent ids are filled in by the
//! reader from the nesting, so a consumer never tracks the tree itself.
//! Shape (see `samples/README.md` for every attribute):
//!
//! ```xml
//! <?xml version="1.0" encoding="UTF-8"?>
//! <seatplan version="1">
//!   <seatCategory id="2001" code="CAT1" name="Catégorie 1"/>
//!   <venue id="3001" code="GTHEATRE" name="Grand Théâtre">
//!     <configuration id="3101" code="STD" name="Standard">
//!       <zone id="3201" code="FOSSE" name="Fosse debout" seatCategory="2004" capacity="150"/>
//!       <block id="3301" code="PARTERRE" name="Parterre">
//!         <row id="3401" code="A">
//!           <seat id="3501" number="1" seatCategory="2001"/>
//! ```

use std::io::{BufRead, Write};

use super::xml::{Element, ElementSpec, Schema, XmlReader, XmlWriter};
use super::{FormatError, Limits, WriteError};
use crate::ident::{Code, Name, TechId};

/// A physical seat category (the manual: map these, never the logical ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatCategory {
    pub id: TechId,
    pub code: Code,
    pub name: Name,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Venue {
    pub id: TechId,
    pub code: Code,
    pub name: Name,
}

/// A physical configuration of a venue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configuration {
    pub id: TechId,
    pub venue: TechId,
    pub code: Code,
    pub name: Name,
}

/// An unnumbered area sold by quantity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub id: TechId,
    pub configuration: TechId,
    pub code: Code,
    pub name: Name,
    pub seat_category: TechId,
    pub capacity: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub id: TechId,
    pub configuration: TechId,
    pub code: Code,
    pub name: Name,
}

/// A row of a block; `code` is its label (`A`, `12`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub id: TechId,
    pub block: TechId,
    pub code: Code,
}

/// A numbered seat; `number` is its label within the row (`1`, `12bis`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seat {
    pub id: TechId,
    pub row: TechId,
    pub number: Code,
    pub seat_category: TechId,
}

/// One record of a seat plan, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    SeatCategory(SeatCategory),
    Venue(Venue),
    Configuration(Configuration),
    Zone(Zone),
    Block(Block),
    Row(Row),
    Seat(Seat),
}

// ---------------------------------------------------------------------------
// Reading and writing.
// ---------------------------------------------------------------------------

/// Elements of a seat plan. Root children: every `seatCategory` before any
/// `venue`; inside a configuration, zones before blocks. Attributes are
/// written in the order listed.
pub static SCHEMA: Schema = Schema {
    root: "seatplan",
    version: "1",
    next: None,
    elements: &[
        ElementSpec {
            name: "seatCategory",
            parent: None,
            rank: 0,
            attributes: &["id", "code", "name"],
        },
        ElementSpec {
            name: "venue",
            parent: None,
            rank: 1,
            attributes: &["id", "code", "name"],
        },
        ElementSpec {
            name: "configuration",
            parent: Some("venue"),
            rank: 0,
            attributes: &["id", "code", "name"],
        },
        ElementSpec {
            name: "zone",
            parent: Some("configuration"),
            rank: 0,
            attributes: &["id", "code", "name", "seatCategory", "capacity"],
        },
        ElementSpec {
            name: "block",
            parent: Some("configuration"),
            rank: 1,
            attributes: &["id", "code", "name"],
        },
        ElementSpec {
            name: "row",
            parent: Some("block"),
            rank: 0,
            attributes: &["id", "code"],
        },
        ElementSpec {
            name: "seat",
            parent: Some("row"),
            rank: 0,
            attributes: &["id", "number", "seatCategory"],
        },
    ],
};

/// Largest zone capacity accepted.
pub const CAPACITY_MAX: u32 = 1_000_000;

/// Streams the [`Item`]s of a `SEATPLAN` payload in document order, parents
/// filled from the nesting. After the first error, yields `None`.
pub struct Reader<R: BufRead> {
    xml: XmlReader<R>,
    venue: Option<TechId>,
    configuration: Option<TechId>,
    block: Option<TechId>,
    row: Option<TechId>,
    records: u64,
    done: bool,
}

impl<R: BufRead> Reader<R> {
    pub fn new(input: R, file: &str, limits: Limits) -> Reader<R> {
        Reader {
            xml: XmlReader::new(input, file, limits, &SCHEMA),
            venue: None,
            configuration: None,
            block: None,
            row: None,
            records: 0,
            done: false,
        }
    }

    /// Items yielded so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    fn parent(el: &Element, slot: Option<TechId>) -> Result<TechId, FormatError> {
        // The xml layer checked the nesting, so the parent slot is filled.
        slot.ok_or_else(|| el.error("id", "xml-nesting", "no open parent element"))
    }

    fn item(&mut self, el: &Element) -> Result<Item, FormatError> {
        // Seats first: a seat plan is mostly seats.
        Ok(match el.name() {
            "seat" => Item::Seat(Seat {
                id: el.tech_id("id")?,
                row: Self::parent(el, self.row)?,
                number: el.code("number")?,
                seat_category: el.tech_id("seatCategory")?,
            }),
            "seatCategory" => Item::SeatCategory(SeatCategory {
                id: el.tech_id("id")?,
                code: el.code("code")?,
                name: el.label("name")?,
            }),
            "venue" => {
                let v = Venue {
                    id: el.tech_id("id")?,
                    code: el.code("code")?,
                    name: el.label("name")?,
                };
                self.venue = Some(v.id);
                Item::Venue(v)
            }
            "configuration" => {
                let c = Configuration {
                    id: el.tech_id("id")?,
                    venue: Self::parent(el, self.venue)?,
                    code: el.code("code")?,
                    name: el.label("name")?,
                };
                self.configuration = Some(c.id);
                Item::Configuration(c)
            }
            "zone" => Item::Zone(Zone {
                id: el.tech_id("id")?,
                configuration: Self::parent(el, self.configuration)?,
                code: el.code("code")?,
                name: el.label("name")?,
                seat_category: el.tech_id("seatCategory")?,
                capacity: el.number("capacity", 1, CAPACITY_MAX)?,
            }),
            "block" => {
                let b = Block {
                    id: el.tech_id("id")?,
                    configuration: Self::parent(el, self.configuration)?,
                    code: el.code("code")?,
                    name: el.label("name")?,
                };
                self.block = Some(b.id);
                Item::Block(b)
            }
            "row" => {
                let r = Row {
                    id: el.tech_id("id")?,
                    block: Self::parent(el, self.block)?,
                    code: el.code("code")?,
                };
                self.row = Some(r.id);
                Item::Row(r)
            }
            other => {
                return Err(el.error(
                    "id",
                    "xml-unknown-element",
                    format!("no record for element <{other}>"),
                ));
            }
        })
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<Item, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = XmlReader::next_record(self, |r| &mut r.xml, Self::item);
        let item = super::stop_after_error(&mut self.done, next);
        self.records += u64::from(matches!(item, Some(Ok(_))));
        item
    }
}

/// Writes the canonical `SEATPLAN` document. Items must come in document
/// order (a seat right after its row or a sibling seat); an item whose parent
/// is not the open one is refused with [`WriteError::Invalid`], after which
/// the writer must not be used.
pub struct Writer<W: Write> {
    xml: XmlWriter<W>,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Result<Writer<W>, WriteError> {
        Ok(Writer {
            xml: XmlWriter::new(out, &SCHEMA)?,
        })
    }

    pub fn write(&mut self, item: &Item) -> Result<(), WriteError> {
        match item {
            Item::SeatCategory(c) => self.xml.element(
                "seatCategory",
                None,
                Some(c.id),
                &[&c.id.to_string(), c.code.as_str(), c.name.as_str()],
            ),
            Item::Venue(v) => self.xml.element(
                "venue",
                None,
                Some(v.id),
                &[&v.id.to_string(), v.code.as_str(), v.name.as_str()],
            ),
            Item::Configuration(c) => self.xml.element(
                "configuration",
                Some(c.venue),
                Some(c.id),
                &[&c.id.to_string(), c.code.as_str(), c.name.as_str()],
            ),
            Item::Zone(z) => {
                if !(1..=CAPACITY_MAX).contains(&z.capacity) {
                    return Err(WriteError::Invalid(format!(
                        "zone {} capacity {} is outside 1..={CAPACITY_MAX}",
                        z.id, z.capacity
                    )));
                }
                self.xml.element(
                    "zone",
                    Some(z.configuration),
                    Some(z.id),
                    &[
                        &z.id.to_string(),
                        z.code.as_str(),
                        z.name.as_str(),
                        &z.seat_category.to_string(),
                        &z.capacity.to_string(),
                    ],
                )
            }
            Item::Block(b) => self.xml.element(
                "block",
                Some(b.configuration),
                Some(b.id),
                &[&b.id.to_string(), b.code.as_str(), b.name.as_str()],
            ),
            Item::Row(r) => self.xml.element(
                "row",
                Some(r.block),
                Some(r.id),
                &[&r.id.to_string(), r.code.as_str()],
            ),
            Item::Seat(s) => self.xml.element(
                "seat",
                Some(s.row),
                Some(s.id),
                &[
                    &s.id.to_string(),
                    s.number.as_str(),
                    &s.seat_category.to_string(),
                ],
            ),
        }
    }

    /// Closes the document; returns the output and the number of records.
    pub fn finish(self) -> Result<(W, u64), WriteError> {
        self.xml.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Position;
    use std::io::{BufReader, Read};

    fn id(v: i64) -> TechId {
        TechId::new(v).unwrap()
    }

    fn code(s: &str) -> Code {
        Code::new(s).unwrap()
    }

    fn name(s: &str) -> Name {
        Name::new(s).unwrap()
    }

    /// OPERA's seat plan as the common brief describes it.
    pub(crate) fn opera_items() -> Vec<Item> {
        let mut items = Vec::new();
        for (i, c, n) in [
            (2001, "CAT1", "Catégorie 1"),
            (2002, "CAT2", "Catégorie 2"),
            (2003, "CAT3", "Catégorie 3"),
            (2004, "DEBOUT", "Debout"),
        ] {
            items.push(Item::SeatCategory(SeatCategory {
                id: id(i),
                code: code(c),
                name: name(n),
            }));
        }
        items.push(Item::Venue(Venue {
            id: id(3001),
            code: code("GTHEATRE"),
            name: name("Grand Théâtre de l'Opéra"),
        }));
        items.push(Item::Configuration(Configuration {
            id: id(3101),
            venue: id(3001),
            code: code("STD"),
            name: name("Configuration standard"),
        }));
        items.push(Item::Zone(Zone {
            id: id(3201),
            configuration: id(3101),
            code: code("FOSSE"),
            name: name("Fosse debout"),
            seat_category: id(2004),
            capacity: 150,
        }));
        let mut row_id = 4001;
        let mut seat_id = 50001;
        // (block id, code, name, rows, seats per row, category of each row)
        type BlockPlan = (
            i64,
            &'static str,
            &'static str,
            &'static str,
            u32,
            fn(usize) -> i64,
        );
        let blocks: [BlockPlan; 2] = [
            (
                3301,
                "PARTERRE",
                "Parterre",
                "ABCDEFGHIJKL",
                20,
                |r| match r {
                    0..=3 => 2001,
                    4..=7 => 2002,
                    _ => 2003,
                },
            ),
            (3302, "BALCON", "Balcon", "ABCDEFGH", 18, |r| match r {
                0..=3 => 2002,
                _ => 2003,
            }),
        ];
        for (block, c, n, rows, seats, category) in blocks {
            items.push(Item::Block(Block {
                id: id(block),
                configuration: id(3101),
                code: code(c),
                name: name(n),
            }));
            for (r, label) in rows.chars().enumerate() {
                items.push(Item::Row(Row {
                    id: id(row_id),
                    block: id(block),
                    code: code(&label.to_string()),
                }));
                for number in 1..=seats {
                    items.push(Item::Seat(Seat {
                        id: id(seat_id),
                        row: id(row_id),
                        number: code(&number.to_string()),
                        seat_category: id(category(r)),
                    }));
                    seat_id += 1;
                }
                row_id += 1;
            }
        }
        items
    }

    fn write_all(items: &[Item]) -> Vec<u8> {
        let mut w = Writer::new(Vec::new()).unwrap();
        for item in items {
            w.write(item).unwrap();
        }
        let (out, n) = w.finish().unwrap();
        assert_eq!(n, items.len() as u64);
        out
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<Item>, FormatError> {
        Reader::new(bytes, "test.xml", Limits::default()).collect()
    }

    fn read_err(bytes: &[u8], limits: Limits) -> FormatError {
        Reader::new(bytes, "test.xml", limits)
            .find_map(Result::err)
            .expect("the document must be refused")
    }

    #[test]
    fn opera_sample_is_the_canonical_output_of_the_brief_plan() {
        let items = opera_items();
        let seats = items.iter().filter(|i| matches!(i, Item::Seat(_))).count();
        let rows = items.iter().filter(|i| matches!(i, Item::Row(_))).count();
        assert_eq!((seats, rows), (384, 20));
        let bytes = write_all(&items);
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/samples/opera/seatplan.xml");
        if std::env::var_os("STXD_WRITE_SAMPLES").is_some() {
            std::fs::write(path, &bytes).unwrap();
        }
        let committed = std::fs::read(path).unwrap();
        assert!(committed == bytes, "samples/opera/seatplan.xml is stale");
        assert_eq!(read_all(&bytes).unwrap(), items);
        // Last seat: BALCON H18.
        assert!(
            matches!(items.last(), Some(Item::Seat(s)) if s.id.get() == 50384 && s.row.get() == 4020)
        );
    }

    #[test]
    fn parents_come_from_the_nesting() {
        let doc = br#"<?xml version="1.0" encoding="UTF-8"?>
<seatplan version="1">
  <venue id="7" code="V" name="V">
    <configuration id="8" code="C" name="C">
      <block id="9" code="B" name="B">
        <row id="10" code="A">
          <seat id="11" number="1" seatCategory="5"/>
        </row>
      </block>
    </configuration>
  </venue>
</seatplan>
"#;
        let items = read_all(doc).unwrap();
        assert_eq!(items.len(), 5);
        assert!(matches!(&items[1], Item::Configuration(c) if c.venue.get() == 7));
        assert!(matches!(&items[2], Item::Block(b) if b.configuration.get() == 8));
        assert!(matches!(&items[3], Item::Row(r) if r.block.get() == 9));
        assert!(matches!(&items[4], Item::Seat(s) if s.row.get() == 10));
    }

    #[test]
    fn awkward_names_round_trip() {
        for n in [
            "Grand Théâtre de l'Opéra",
            "Salle \"Pleyel\" & Co <bis>",
            "<![CDATA[x]]> &amp; &#233;",
            "a > b < c ' \" &",
            "日本語 — ümlaut",
        ] {
            let items = vec![Item::Venue(Venue {
                id: id(1),
                code: code("V"),
                name: name(n),
            })];
            let bytes = write_all(&items);
            assert_eq!(read_all(&bytes).unwrap(), items, "{n}");
        }
    }

    #[test]
    fn writer_refuses_an_item_whose_parent_is_not_open() {
        let mut w = Writer::new(Vec::new()).unwrap();
        let items = opera_items();
        for item in items.iter().take(9) {
            w.write(item).unwrap();
        }
        // items[8] is row 4001; a seat of row 4002 cannot follow.
        let stray = Item::Seat(Seat {
            id: id(99),
            row: id(4002),
            number: code("1"),
            seat_category: id(2001),
        });
        assert!(matches!(w.write(&stray), Err(WriteError::Invalid(_))));
        // A seat category after the venue breaks the section order.
        let mut w = Writer::new(Vec::new()).unwrap();
        w.write(&items[4]).unwrap();
        assert!(matches!(w.write(&items[0]), Err(WriteError::Invalid(_))));
        // A seat without any open row.
        let mut w = Writer::new(Vec::new()).unwrap();
        assert!(matches!(w.write(&items[10]), Err(WriteError::Invalid(_))));
    }

    #[test]
    fn empty_plan_is_a_self_closing_root() {
        let bytes = write_all(&[]);
        assert_eq!(
            bytes,
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<seatplan version=\"1\"/>\n"
        );
        assert_eq!(read_all(&bytes).unwrap(), vec![]);
    }

    #[test]
    fn limits_are_enforced() {
        let bytes = write_all(&opera_items());
        let small = |f: fn(&mut Limits)| {
            let mut l = Limits::default();
            f(&mut l);
            read_err(&bytes, l)
        };
        let e = small(|l| l.max_depth = 4);
        assert_eq!(e.code, "xml-depth");
        assert_eq!(e.position.to_string(), "line 11 (byte 596)");
        assert_eq!(small(|l| l.max_records = 100).code, "xml-too-many-records");
        assert_eq!(small(|l| l.max_file_bytes = 1000).code, "xml-too-large");
        assert_eq!(
            small(|l| l.max_field_bytes = 10).code,
            "xml-attribute-too-large"
        );
        assert_eq!(small(|l| l.max_record_bytes = 40).code, "xml-tag-too-large");
        // One byte over the file limit is refused where the limit falls.
        let over = Limits {
            max_file_bytes: bytes.len() as u64 - 1,
            ..Limits::default()
        };
        let e = read_err(&bytes, over);
        assert_eq!(e.code, "xml-too-large");
        assert!(
            matches!(e.position, Position::Byte { offset, .. } if offset == bytes.len() as u64 - 1)
        );
        // Exactly at the file limit is fine.
        let l = Limits {
            max_file_bytes: bytes.len() as u64,
            ..Limits::default()
        };
        assert_eq!(
            Reader::new(&bytes[..], "t", l)
                .filter(Result::is_ok)
                .count(),
            opera_items().len()
        );
    }

    #[test]
    fn a_huge_tag_is_refused_without_buffering_it() {
        /// `<?xml …?><seatplan version="1"><venue name="xxxx…` without end.
        struct Endless(usize);
        impl Read for Endless {
            fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
                let head = b"<?xml version=\"1.0\"?>\n<seatplan version=\"1\">\n<venue name=\"";
                if self.0 < head.len() {
                    let n = (head.len() - self.0).min(out.len());
                    out[..n].copy_from_slice(&head[self.0..self.0 + n]);
                    self.0 += n;
                    return Ok(n);
                }
                out.fill(b'x');
                self.0 += out.len();
                Ok(out.len())
            }
        }
        let mut r = XmlReader::new(
            BufReader::new(Endless(0)),
            "endless.xml",
            Limits::default(),
            &SCHEMA,
        );
        let e = r.next_element().unwrap_err();
        assert_eq!(e.code, "xml-tag-too-large");
        assert_eq!(e.position.to_string(), "line 3 (byte 45)");
        assert!(r.buffer_capacity() <= 2 * Limits::default().max_record_bytes);
    }

    /// Generates a seat plan of `rows` × 1000 seats on the fly.
    struct Generated {
        rows: u64,
        row: u64,
        pending: Vec<u8>,
        at: usize,
        finished: bool,
    }

    impl Generated {
        fn new(rows: u64) -> Generated {
            Generated {
                rows,
                row: 0,
                pending: b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<seatplan version=\"1\">\n  \
                <venue id=\"1\" code=\"V\" name=\"V\">\n    <configuration id=\"2\" code=\"C\" name=\"C\">\n      \
                <block id=\"3\" code=\"B\" name=\"B\">\n"
                    .to_vec(),
                at: 0,
                finished: false,
            }
        }

        fn next_chunk(&mut self) {
            self.pending.clear();
            self.at = 0;
            if self.row == self.rows {
                self.pending.extend_from_slice(
                    b"      </block>\n    </configuration>\n  </venue>\n</seatplan>\n",
                );
                self.finished = true;
                return;
            }
            let row = self.row + 10;
            self.pending.extend_from_slice(
                format!("        <row id=\"{row}\" code=\"R{}\">\n", self.row).as_bytes(),
            );
            for s in 0..1000u64 {
                let seat = 1_000_000 + self.row * 1000 + s;
                self.pending.extend_from_slice(
                    format!(
                        "          <seat id=\"{seat}\" number=\"{}\" seatCategory=\"9\"/>\n",
                        s + 1
                    )
                    .as_bytes(),
                );
            }
            self.pending.extend_from_slice(b"        </row>\n");
            self.row += 1;
        }
    }

    impl Read for Generated {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            if self.at == self.pending.len() {
                if self.finished {
                    return Ok(0);
                }
                self.next_chunk();
            }
            let n = (self.pending.len() - self.at).min(out.len());
            out[..n].copy_from_slice(&self.pending[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    #[test]
    fn a_million_seats_stream_through_bounded_memory() {
        let mut reader = Reader::new(
            BufReader::new(Generated::new(1000)),
            "big.xml",
            Limits::default(),
        );
        let mut seats = 0u64;
        let mut last_row = None;
        for item in reader.by_ref() {
            if let Item::Seat(s) = item.unwrap() {
                seats += 1;
                last_row = Some(s.row.get());
            }
        }
        assert_eq!(seats, 1_000_000);
        assert_eq!(last_row, Some(1009));
        assert_eq!(reader.records(), 1_000_000 + 1000 + 3);
        assert!(reader.xml.buffer_capacity() <= 1024);
    }

    #[test]
    fn deep_nesting_is_refused_early() {
        let mut doc = b"<?xml version=\"1.0\"?>\n<seatplan version=\"1\">".to_vec();
        for _ in 0..40_000 {
            doc.extend_from_slice(b"<venue id=\"1\" code=\"V\" name=\"V\">");
        }
        let e = read_err(&doc, Limits::default());
        assert_eq!(e.code, "xml-nesting");
        // The second venue, inside the first.
        assert_eq!(e.position.to_string(), "line 2 (byte 76)");
        let mut doc = b"<?xml version=\"1.0\"?>\n<seatplan version=\"1\">".to_vec();
        for _ in 0..40_000 {
            doc.extend_from_slice(b"<x>");
        }
        assert_eq!(
            read_err(&doc, Limits::default()).code,
            "xml-unknown-element"
        );
    }

    #[test]
    fn unclosed_document_is_truncated() {
        let bytes = write_all(&opera_items());
        for cut in [bytes.len() - 2, bytes.len() - 12, bytes.len() / 2, 60] {
            let e = read_err(&bytes[..cut], Limits::default());
            assert_eq!(e.code, "xml-truncated", "cut at {cut}: {e}");
        }
    }
}
