//! Golden files of the CSV payloads (`CONTINGENT`, `SALES`): every valid
//! payload parses to what it says and re-exports byte for byte; every invalid
//! sample is refused with exactly the code and position written beside it.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use stxd::format::sales::{Operation, Place};
use stxd::format::{FormatError, Limits, contingent, sales};

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

/// The sample files of one directory whose name starts with `prefix` and
/// ends with `.csv`, sorted.
fn csv_files(dir: &str, prefix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(samples().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with(prefix) && name.ends_with(".csv")
        })
        .collect();
    files.sort();
    files
}

fn read_contingent(bytes: &[u8], file: &str) -> Result<Vec<contingent::Line>, FormatError> {
    let mut reader = contingent::Reader::new(bytes, file, Limits::default());
    let lines = reader.by_ref().collect::<Result<Vec<_>, _>>()?;
    assert_eq!(reader.records(), lines.len() as u64);
    assert!(reader.next().is_none(), "reader yields after its end");
    Ok(lines)
}

fn read_sales(bytes: &[u8], file: &str) -> Result<Vec<sales::Line>, FormatError> {
    let mut reader = sales::Reader::new(bytes, file, Limits::default());
    let lines = reader.by_ref().collect::<Result<Vec<_>, _>>()?;
    assert_eq!(reader.records(), lines.len() as u64);
    assert!(reader.next().is_none(), "reader yields after its end");
    Ok(lines)
}

/// Written with the RESOLUTION columns only when a line needs them, as the
/// export does.
fn write_contingent(lines: &[contingent::Line]) -> Vec<u8> {
    let told = lines
        .iter()
        .any(|l| matches!(l, contingent::Line::Resolution { .. }));
    let mut w = if told {
        contingent::Writer::with_resolutions(Vec::new()).unwrap()
    } else {
        contingent::Writer::new(Vec::new()).unwrap()
    };
    for line in lines {
        w.write(line).unwrap();
    }
    let (out, n) = w.finish().unwrap();
    assert_eq!(n, lines.len() as u64);
    out
}

/// Writes `lines` in format version 2 when `v2`, else 1.
fn write_sales(lines: &[sales::Line], v2: bool) -> Vec<u8> {
    let mut w = if v2 {
        sales::Writer::new_v2(Vec::new()).unwrap()
    } else {
        sales::Writer::new(Vec::new()).unwrap()
    };
    for line in lines {
        w.write(line).unwrap();
    }
    let (out, n) = w.finish().unwrap();
    assert_eq!(n, lines.len() as u64);
    out
}

#[test]
fn valid_contingent_payloads_re_export_byte_for_byte() {
    let files = csv_files("payloads", "contingent");
    assert!(!files.is_empty());
    for path in files {
        let bytes = fs::read(&path).unwrap();
        let lines = read_contingent(&bytes, "contingent.csv")
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(write_contingent(&lines), bytes, "{}", path.display());
    }
}

#[test]
fn valid_sales_payloads_re_export_byte_for_byte() {
    let files = csv_files("payloads", "sales");
    assert!(!files.is_empty());
    for path in files {
        let bytes = fs::read(&path).unwrap();
        let lines =
            read_sales(&bytes, "sales.csv").unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let v2 = bytes.starts_with(sales::COLUMNS_V2.join(";").as_bytes());
        let out = if bytes.starts_with(sales::COLUMNS_V2_LOGICAL.join(";").as_bytes()) {
            // Version 2 with its optional `logical_seat_category` column.
            let mut w = sales::Writer::new_v2_logical(Vec::new()).unwrap();
            for line in &lines {
                w.write(line).unwrap();
            }
            w.finish().unwrap().0
        } else {
            write_sales(&lines, v2)
        };
        assert_eq!(out, bytes, "{}", path.display());
    }
}

/// Version 2 of SALES (`rate_version` last) holds the same lines as the
/// version 1 sample, each with the rate table version it was priced with
/// (none on line 3: priced from a version 1 catalogue); the reader says
/// which version it read.
#[test]
fn the_sales_v2_sample_carries_rate_versions_and_version_1_still_reads() {
    let v1 = fs::read(samples().join("payloads/sales.csv")).unwrap();
    let v2 = fs::read(samples().join("payloads/sales-v2.csv")).unwrap();
    let mut r1 = sales::Reader::new(&v1[..], "sales.csv", Limits::default());
    let old: Vec<sales::Line> = r1.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(r1.version(), 1);
    let mut r2 = sales::Reader::new(&v2[..], "sales-v2.csv", Limits::default());
    let new: Vec<sales::Line> = r2.by_ref().collect::<Result<_, _>>().unwrap();
    assert_eq!(r2.version(), 2);
    assert_eq!(old.len(), new.len());
    let versions: Vec<Option<u64>> = new
        .iter()
        .filter_map(|l| match l {
            sales::Line::Ticket(t) => Some(t.rate_version),
            sales::Line::Ack(_) => None,
        })
        .collect();
    assert_eq!(versions, [Some(1), Some(1), None, Some(1)]);
    for (o, n) in old.iter().zip(&new) {
        match (o, n) {
            (sales::Line::Ticket(o), sales::Line::Ticket(n)) => {
                assert_eq!(
                    **o,
                    sales::Ticket {
                        rate_version: None,
                        logical_seat_category: None,
                        ..(**n).clone()
                    }
                );
                assert_eq!(o.rate_version, None);
            }
            (o, n) => assert_eq!(o, n),
        }
    }
    // A version 1 writer refuses a line with a version.
    let mut w = sales::Writer::new(Vec::new()).unwrap();
    assert!(w.write(&new[0]).is_err());
}

#[test]
fn the_contingent_sample_holds_the_documented_snapshots() {
    use contingent::Line;
    let bytes = fs::read(samples().join("payloads/contingent.csv")).unwrap();
    let lines = read_contingent(&bytes, "contingent.csv").unwrap();
    assert_eq!(lines.len(), 29);
    let mut seats = std::collections::BTreeMap::new();
    let mut zones = Vec::new();
    let mut performances = Vec::new();
    for line in &lines {
        match line {
            Line::Performance {
                performance,
                version,
            } => performances.push((performance.get(), *version)),
            Line::Seat {
                performance,
                version,
                block,
                row,
                seat_category,
                ..
            } => {
                assert_eq!(*version, 1);
                *seats
                    .entry((
                        performance.get(),
                        block.get(),
                        row.as_str().to_owned(),
                        seat_category.get(),
                    ))
                    .or_insert(0) += 1;
            }
            Line::Zone {
                performance,
                zone,
                quantity,
                seat_category,
                ..
            } => zones.push((
                performance.get(),
                zone.get(),
                *quantity,
                seat_category.get(),
            )),
            Line::Resolution { line, .. } => panic!("no resolution in version 1: {line}"),
        }
    }
    assert_eq!(performances, vec![(1701, 1), (1702, 1)]);
    let seats: Vec<_> = seats.into_iter().collect();
    assert_eq!(
        seats,
        vec![
            ((1701, 3301, "A".to_owned(), 2001), 10),
            ((1701, 3302, "A".to_owned(), 2002), 6),
            ((1702, 3301, "B".to_owned(), 2001), 10),
        ]
    );
    assert_eq!(zones, vec![(1701, 3201, 20, 2004)]);
}

#[test]
fn the_sales_sample_holds_the_documented_lines() {
    use sales::Line;
    let bytes = fs::read(samples().join("payloads/sales.csv")).unwrap();
    let lines = read_sales(&bytes, "sales.csv").unwrap();
    assert_eq!(lines.len(), 6);
    let tickets: Vec<_> = lines
        .iter()
        .filter_map(|l| match l {
            Line::Ticket(t) => Some(t),
            Line::Ack(_) => None,
        })
        .collect();
    let summary: Vec<_> = tickets
        .iter()
        .map(|t| {
            let place = match &t.place {
                Place::Seat { block, row, seat } => format!("{block} {row} {seat}"),
                Place::Zone { zone } => format!("zone {zone}"),
            };
            (
                t.line,
                t.operation,
                t.order.as_str().to_owned(),
                t.refund_of,
                place,
                t.audience_subcategory.get(),
                t.amount,
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                1,
                Operation::Sale,
                "T-000001".into(),
                None,
                "3301 A 1".into(),
                1301,
                8500
            ),
            (
                2,
                Operation::Sale,
                "T-000001".into(),
                None,
                "3301 A 2".into(),
                1302,
                4250
            ),
            (
                3,
                Operation::Sale,
                "T-000002".into(),
                None,
                "zone 3201".into(),
                1301,
                2500
            ),
            (
                4,
                Operation::Refund,
                "T-000001".into(),
                Some(2),
                "3301 A 2".into(),
                1302,
                4250
            ),
        ]
    );
    for t in &tickets {
        assert_eq!(t.performance.get(), 1701);
        assert_eq!(t.tariff_type.get(), 1201);
        assert_eq!(t.vat_code.get(), 1101);
        assert_eq!(t.currency.as_str(), "EUR");
        assert!(t.time.offset().is_utc());
    }
    assert_eq!(
        tickets[3].time,
        time::macros::datetime!(2026-12-01 11:00:00 UTC)
    );
    let acks: Vec<_> = lines
        .iter()
        .filter_map(|l| match l {
            Line::Ack(a) => Some((a.performance.get(), a.contingent_version)),
            Line::Ticket(_) => None,
        })
        .collect();
    assert_eq!(acks, vec![(1701, 1), (1702, 1)]);
}

/// `code: …` and `position: …` from a `.expected` file.
fn expected(path: &Path) -> (String, String) {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut code = None;
    let mut position = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("code: ") {
            code = Some(v.to_owned());
        } else if let Some(v) = line.strip_prefix("position: ") {
            position = Some(v.to_owned());
        } else {
            panic!("{}: unexpected line {line:?}", path.display());
        }
    }
    (
        code.unwrap_or_else(|| panic!("{}: no code", path.display())),
        position.unwrap_or_else(|| panic!("{}: no position", path.display())),
    )
}

/// Reads every invalid sample with `read`; returns how many were checked.
/// All mismatches are reported at once.
fn check_invalid(prefix: &str, read: fn(&[u8], &str) -> Option<FormatError>) -> usize {
    let files = csv_files("invalid", prefix);
    let mut wrong = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_str().unwrap();
        let (code, position) = expected(&path.with_extension("csv.expected"));
        let bytes = fs::read(path).unwrap();
        let Some(err) = read(&bytes, name) else {
            wrong.push(format!("{name}: accepted, expected {code} at {position}"));
            continue;
        };
        if (err.code, err.position.to_string()) != (code.as_str(), position.clone()) {
            wrong.push(format!(
                "{name}: expected {code} at {position}, found {} at {}: {}",
                err.code, err.position, err.problem
            ));
        }
        assert_eq!(err.file, name);
        assert!(
            err.problem.starts_with(|c: char| c.is_lowercase()),
            "{name}: message not lowercase: {}",
            err.problem
        );
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    files.len()
}

#[test]
fn every_invalid_contingent_sample_is_refused_as_expected() {
    let n = check_invalid("contingent-", |bytes, name| {
        read_contingent(bytes, name).err()
    });
    assert!(n >= 20, "only {n} samples");
}

#[test]
fn every_invalid_sales_sample_is_refused_as_expected() {
    let n = check_invalid("sales-", |bytes, name| read_sales(bytes, name).err());
    assert!(n >= 40, "only {n} samples");
}

#[test]
fn every_expected_file_has_its_sample() {
    for entry in fs::read_dir(samples().join("invalid")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if let Some(sample) = name.strip_suffix(".expected") {
            assert!(
                samples().join("invalid").join(sample).exists(),
                "{name} without its sample"
            );
        } else if name.starts_with("contingent-") || name.starts_with("sales-") {
            assert!(
                path.with_extension("csv.expected").exists(),
                "{name} without its .expected"
            );
        }
    }
}

/// A 10 MB field is refused once the line passes the record limit, without
/// being buffered: the input is a generator, never a 10 MB buffer.
#[test]
fn a_ten_megabyte_field_is_refused() {
    const TEN_MB: u64 = 10 * 1024 * 1024;
    let head = "line;operation;time;order;refund_of;performance;block;row;seat;zone;seat_category;tariff_type;audience_subcategory;amount;currency;vat_code;contingent_version\n1;SALE;2026-12-01T10:15:00Z;T-";
    let tail = ";;1701;3301;A;1;;2001;1201;1301;8500;EUR;1101;\n";
    let input = head
        .as_bytes()
        .chain(io::repeat(b'0').take(TEN_MB))
        .chain(tail.as_bytes());
    let mut reader = sales::Reader::new(io::BufReader::new(input), "sales.csv", Limits::default());
    let err = reader.next().unwrap().unwrap_err();
    assert_eq!(err.code, "csv-too-long");
    assert_eq!(err.position.to_string(), "line 2, field order");
    assert!(reader.next().is_none());

    let head = "performance;version;type;block;row;seat;zone;quantity;seat_category\n1701;1;PERFORMANCE;;;;;;\n1701;1;SEAT;3301;";
    let input = head
        .as_bytes()
        .chain(io::repeat(b'A').take(TEN_MB))
        .chain(&b";1;;;2001\n"[..]);
    let mut reader = contingent::Reader::new(
        io::BufReader::new(input),
        "contingent.csv",
        Limits::default(),
    );
    assert!(reader.next().unwrap().is_ok());
    let err = reader.next().unwrap().unwrap_err();
    assert_eq!(err.code, "csv-too-long");
    assert_eq!(err.position.to_string(), "line 3, field row");
}
