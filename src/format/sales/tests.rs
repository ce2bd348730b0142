//! The SALES reader's and writer's unit tests.

use std::io::{self, BufReader, Read};

use super::*;
use crate::format::csv::meter;

const HEADER: &str = "line;operation;time;order;refund_of;performance;block;row;seat;zone;seat_category;tariff_type;audience_subcategory;amount;currency;vat_code;contingent_version\n";
const SAMPLE: &str = include_str!("../../../samples/payloads/sales.csv");

fn read(input: &[u8]) -> Result<Vec<Line>, FormatError> {
    Reader::new(input, "sales.csv", Limits::default()).collect()
}

fn write(lines: &[Line]) -> Result<Vec<u8>, WriteError> {
    let mut w = Writer::new(Vec::new())?;
    for l in lines {
        w.write(l)?;
    }
    Ok(w.finish()?.0)
}

/// Generates a sales payload line by line: a SALE, then its REFUND one
/// line in four, a zone sale one in four, an ACK one in a thousand.
struct Generator {
    lines: u64,
    n: u64,
    buf: Vec<u8>,
    pos: usize,
}

impl Generator {
    fn new(lines: u64) -> Generator {
        Generator {
            lines,
            n: 0,
            buf: HEADER.as_bytes().to_vec(),
            pos: 0,
        }
    }
}

impl Read for Generator {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        use std::io::Write as _;
        if self.pos == self.buf.len() {
            if self.n == self.lines {
                return Ok(0);
            }
            self.n += 1;
            let n = self.n;
            self.buf.clear();
            self.pos = 0;
            match n % 4 {
                _ if n.is_multiple_of(1000) => writeln!(self.buf, ";ACK;;;;1701;;;;;;;;;;;{n}"),
                0 => writeln!(
                    self.buf,
                    "{n};REFUND;2026-12-01T11:00:00Z;T-{:06};{};1701;3301;A;{};;2001;1201;1301;8500;EUR;1101;",
                    n - 1,
                    n - 1,
                    (n - 1) % 20 + 1
                ),
                1 => writeln!(
                    self.buf,
                    "{n};SALE;2026-12-01T10:30:00Z;T-{n:06};;1701;;;;3201;2004;1201;1301;2500;EUR;1101;"
                ),
                _ => writeln!(
                    self.buf,
                    "{n};SALE;2026-12-01T10:15:00Z;T-{n:06};;1701;3301;A;{};;2001;1201;1301;8500;EUR;1101;",
                    n % 20 + 1
                ),
            }?;
        }
        let rest = self.buf.get(self.pos..).unwrap_or(&[]);
        let k = rest.len().min(out.len());
        out[..k].copy_from_slice(&rest[..k]);
        self.pos += k;
        Ok(k)
    }
}

/// Two million lines from a generator, never a file: the count is
/// right, and the reader's heap does not grow after the first thousand
/// lines (it keeps no set of line ids, only the last one).
#[test]
fn streams_two_million_lines_in_flat_memory() {
    const LINES: u64 = 2_000_000;
    let mut reader = Reader::new(
        BufReader::new(Generator::new(LINES)),
        "gen.csv",
        Limits::default(),
    );
    let (mut tickets, mut acks, mut refunds) = (0u64, 0u64, 0u64);
    let mut baseline = None;
    let mut peak_growth = 0i64;
    while let Some(line) = reader.next() {
        match line.unwrap() {
            Line::Ticket(t) => {
                tickets += 1;
                if t.operation == Operation::Refund {
                    refunds += 1;
                }
            }
            Line::Ack(_) => acks += 1,
        }
        let seen = reader.records();
        if seen == 1_000 {
            baseline = Some(meter::live());
        } else if let Some(base) = baseline
            && seen % 1_000 == 0
        {
            peak_growth = peak_growth.max(meter::live() - base);
        }
    }
    assert_eq!(reader.records(), LINES);
    assert_eq!(tickets + acks, LINES);
    assert_eq!(acks, LINES / 1000);
    assert_eq!(refunds, LINES / 4 - LINES / 1000);
    assert!(baseline.is_some());
    // A set of line ids would hold megabytes by now.
    assert!(
        peak_growth <= 1024,
        "reader heap grew by {peak_growth} bytes"
    );
}

#[test]
fn the_sample_round_trips() {
    let lines = read(SAMPLE.as_bytes()).unwrap();
    assert_eq!(lines.len(), 6);
    assert_eq!(write(&lines).unwrap(), SAMPLE.as_bytes());
}

#[test]
fn spreadsheet_spellings_read_the_same_and_re_export_canonical() {
    // BOM, CRLF, columns in another order, quoted fields, no final newline.
    let mut rows: Vec<Vec<&str>> = SAMPLE.lines().map(|l| l.split(';').collect()).collect();
    for row in &mut rows {
        row.reverse();
    }
    let mut text = String::from("\u{feff}");
    let body: Vec<String> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|f| {
                    if f.is_empty() {
                        String::new()
                    } else {
                        format!("\"{f}\"")
                    }
                })
                .collect::<Vec<_>>()
                .join(";")
        })
        .collect();
    text.push_str(&body.join("\r\n"));
    let lines = read(text.as_bytes()).unwrap();
    assert_eq!(lines, read(SAMPLE.as_bytes()).unwrap());
    assert_eq!(write(&lines).unwrap(), SAMPLE.as_bytes());
}

#[test]
fn header_only_is_an_empty_file() {
    let mut r = Reader::new(HEADER.as_bytes(), "sales.csv", Limits::default());
    assert!(r.next().is_none());
    assert_eq!(r.records(), 0);
    assert_eq!(write(&[]).unwrap(), HEADER.as_bytes());
}

#[test]
fn the_reader_stops_after_its_first_error() {
    let text = format!("{HEADER}x;SALE\n1;ACK\n");
    let mut r = Reader::new(text.as_bytes(), "sales.csv", Limits::default());
    let e = r.next().unwrap().unwrap_err();
    assert_eq!(
        (e.code, e.position.to_string()),
        ("csv-field-count", "line 2".into())
    );
    assert!(r.next().is_none());
    assert_eq!(r.records(), 1);
}

#[test]
fn order_refs_refuse_a_leading_dash() {
    assert!(OrderRef::new("T-000001").is_some());
    assert!(OrderRef::new("2026/12/A.1_b").is_some());
    for bad in ["-1", "-T1", "", "=1", "+1", "@A", "T 1", &"x".repeat(33)] {
        assert!(OrderRef::new(bad).is_none(), "{bad:?} accepted");
    }
}

fn ticket() -> Ticket {
    match read(SAMPLE.as_bytes()).unwrap().remove(0) {
        Line::Ticket(t) => *t,
        Line::Ack(_) => unreachable!("the sample starts with a sale"),
    }
}

#[test]
fn the_writer_refuses_what_the_reader_would_refuse() {
    let refuse = |t: Ticket| write(&[Line::Ticket(Box::new(t))]).is_err();
    assert!(!refuse(ticket()));
    assert!(refuse(Ticket {
        line: 0,
        ..ticket()
    }));
    assert!(refuse(Ticket {
        amount: -1,
        ..ticket()
    }));
    assert!(refuse(Ticket {
        amount: AMOUNT_MAX + 1,
        ..ticket()
    }));
    assert!(refuse(Ticket {
        refund_of: Some(1),
        ..ticket()
    }));
    assert!(refuse(Ticket {
        operation: Operation::Refund,
        ..ticket()
    }));
    assert!(refuse(Ticket {
        line: 5,
        operation: Operation::Refund,
        refund_of: Some(5),
        ..ticket()
    }));
    assert!(refuse(Ticket {
        time: ticket().time.to_offset(time::macros::offset!(+1)),
        ..ticket()
    }));
    let ack = Line::Ack(Ack {
        performance: TechId::new(1701).unwrap(),
        contingent_version: 0,
    });
    assert!(write(&[ack]).is_err());
    // Line ids must increase across writes.
    let mut w = Writer::new(Vec::new()).unwrap();
    w.write(&Line::Ticket(Box::new(ticket()))).unwrap();
    assert!(w.write(&Line::Ticket(Box::new(ticket()))).is_err());
    let (out, n) = w.finish().unwrap();
    assert_eq!(n, 1);
    assert_eq!(read(&out).unwrap().len(), 1);
}

/// The canonical text is the data line a version 1 file holds, for every
/// ticket of the sample (seats, a zone, refunds), and the same when the
/// ticket carries the columns of version 2: booked lines are compared by a
/// digest of it, so it must never change.
#[test]
fn the_canonical_text_is_the_line_a_version_1_file_writes() {
    let tickets: Vec<Ticket> = read(SAMPLE.as_bytes())
        .unwrap()
        .into_iter()
        .filter_map(|l| match l {
            Line::Ticket(t) => Some(*t),
            Line::Ack(_) => None,
        })
        .collect();
    assert!(tickets.len() >= 4);
    assert!(
        tickets
            .iter()
            .any(|t| matches!(t.place, Place::Zone { .. }))
    );
    assert!(tickets.iter().any(|t| t.operation == Operation::Refund));
    for t in tickets {
        let mut w = Writer::new(Vec::new()).unwrap();
        w.write(&Line::Ticket(Box::new(t.clone()))).unwrap();
        let (out, _) = w.finish().unwrap();
        let out = String::from_utf8(out).unwrap();
        let (_, written) = out.split_once('\n').unwrap();
        let canonical = canonical_text(&t).unwrap();
        assert_eq!(format!("{canonical}\n"), written);
        let v2 = Ticket {
            rate_version: Some(3),
            logical_seat_category: matches!(t.place, Place::Seat { .. })
                .then(|| TechId::new(4401).unwrap()),
            ..t.clone()
        };
        assert_eq!(canonical_text(&v2).unwrap(), canonical);
    }
    assert!(
        canonical_text(&Ticket {
            line: 0,
            ..ticket()
        })
        .is_err()
    );
}
