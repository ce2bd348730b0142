//! Golden files for the XML payloads: every sample under `samples/opera` and
//! `samples/tourism` parses and re-exports byte for byte; every
//! `samples/invalid/{seatplan,catalogue}-*.xml` is refused with exactly the
//! code and position written beside it in `<file>.expected`.

use std::path::{Path, PathBuf};

use stxd::format::{FormatError, Limits, catalogue, seatplan};

fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples")
}

fn xml_files(dir: &Path, prefixes: &[&str]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.ends_with(".xml") && prefixes.iter().any(|pre| name.starts_with(pre))
        })
        .collect();
    files.sort();
    files
}

fn is_seatplan(bytes: &[u8]) -> bool {
    bytes.windows(10).any(|w| w == b"<seatplan ")
}

/// Reads then rewrites through the matching Writer.
fn round_trip(bytes: &[u8], file: &str) -> (Vec<u8>, u64) {
    if is_seatplan(bytes) {
        let mut w = seatplan::Writer::new(Vec::new()).unwrap();
        let mut reader = seatplan::Reader::new(bytes, file, Limits::default());
        for item in reader.by_ref() {
            w.write(&item.unwrap_or_else(|e| panic!("{e}"))).unwrap();
        }
        let (out, n) = w.finish().unwrap();
        assert_eq!(reader.records(), n);
        (out, n)
    } else {
        let v2 = bytes.windows(22).any(|w| w == b"<catalogue version=\"2\"");
        let mut w = if v2 {
            catalogue::Writer::new_v2(Vec::new()).unwrap()
        } else {
            catalogue::Writer::new(Vec::new()).unwrap()
        };
        let mut reader = catalogue::Reader::new(bytes, file, Limits::default());
        for item in reader.by_ref() {
            w.write(&item.unwrap_or_else(|e| panic!("{e}"))).unwrap();
        }
        let (out, n) = w.finish().unwrap();
        assert_eq!(reader.records(), n);
        (out, n)
    }
}

#[test]
fn valid_samples_round_trip_byte_for_byte() {
    let mut seen = Vec::new();
    for dir in ["opera", "tourism"] {
        for path in xml_files(&samples().join(dir), &[""]) {
            let bytes = std::fs::read(&path).unwrap();
            let name = path.display().to_string();
            let (out, n) = round_trip(&bytes, &name);
            assert!(out == bytes, "{name} does not re-export byte for byte");
            seen.push((path.file_name().unwrap().to_str().unwrap().to_owned(), n));
        }
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            ("catalogue.xml".to_owned(), 50),
            ("reference.xml".to_owned(), 11),
            ("seatplan.xml".to_owned(), 4 + 1 + 1 + 1 + 2 + 20 + 384),
        ]
    );
}

/// Version 2 of CATALOGUE: the demo catalogue with the version of each rate
/// table's prices; it re-exports byte for byte, holds the same records as
/// version 1, and a version 1 writer refuses its rate tables.
#[test]
fn the_catalogue_v2_sample_carries_rate_table_versions() {
    let v2 = std::fs::read(samples().join("payloads/catalogue-v2.xml")).unwrap();
    let (out, n) = round_trip(&v2, "catalogue-v2.xml");
    assert!(
        out == v2,
        "catalogue-v2.xml does not re-export byte for byte"
    );
    assert_eq!(n, 50);
    let mut reader = catalogue::Reader::new(&v2[..], "v2", Limits::default());
    let items: Vec<catalogue::Item> = reader.by_ref().map(Result::unwrap).collect();
    assert_eq!(reader.version(), "2");
    let versions: Vec<(i64, Option<u32>)> = items
        .iter()
        .filter_map(|i| match i {
            catalogue::Item::RateTable(r) => Some((r.id.get(), r.version)),
            _ => None,
        })
        .collect();
    assert_eq!(versions, [(1801, Some(1)), (1802, Some(2))]);
    let v1 = std::fs::read(samples().join("opera/catalogue.xml")).unwrap();
    let mut reader = catalogue::Reader::new(&v1[..], "v1", Limits::default());
    let old: Vec<catalogue::Item> = reader.by_ref().map(Result::unwrap).collect();
    assert_eq!(reader.version(), "1");
    let stripped: Vec<catalogue::Item> = items
        .iter()
        .cloned()
        .map(|i| match i {
            catalogue::Item::RateTable(r) => {
                catalogue::Item::RateTable(catalogue::RateTable { version: None, ..r })
            }
            other => other,
        })
        .collect();
    assert_eq!(old, stripped);
    let mut w = catalogue::Writer::new(Vec::new()).unwrap();
    let rt = items
        .iter()
        .find(|i| matches!(i, catalogue::Item::RateTable(_)))
        .unwrap();
    assert!(w.write(rt).is_err());
}

/// A free tariff (a price of 0) is a valid price: the fragment in
/// `samples/payloads` reads and re-exports byte for byte, its amount 0.
#[test]
fn the_free_tariff_sample_round_trips_with_its_price_of_zero() {
    let path = samples().join("payloads/catalogue-free-tariff.xml");
    let bytes = std::fs::read(&path).unwrap();
    let (out, n) = round_trip(&bytes, "catalogue-free-tariff.xml");
    assert!(
        out == bytes,
        "the free tariff sample does not re-export byte for byte"
    );
    assert_eq!(n, 2);
    let prices: Vec<i64> = catalogue::Reader::new(&bytes[..], "f", Limits::default())
        .filter_map(|i| match i.unwrap() {
            catalogue::Item::Price(p) => Some(p.amount),
            _ => None,
        })
        .collect();
    assert_eq!(prices, [0]);
}

/// The second week's catalogue fragments (`samples/payloads`: a price
/// change with a free tariff, a cancelled performance) read and re-export
/// byte for byte.
#[test]
fn the_second_week_samples_round_trip() {
    for (name, records) in [
        ("catalogue-price-change.xml", 3),
        ("catalogue-cancelled.xml", 1),
    ] {
        let bytes = std::fs::read(samples().join("payloads").join(name)).unwrap();
        let (out, n) = round_trip(&bytes, name);
        assert!(out == bytes, "{name} does not re-export byte for byte");
        assert_eq!(n, records, "{name}");
    }
}

fn first_error(bytes: &[u8], file: &str, seatplan_kind: bool) -> Option<FormatError> {
    if seatplan_kind {
        seatplan::Reader::new(bytes, file, Limits::default()).find_map(Result::err)
    } else {
        catalogue::Reader::new(bytes, file, Limits::default()).find_map(Result::err)
    }
}

#[test]
fn invalid_samples_are_refused_with_their_expected_reason() {
    let files = xml_files(&samples().join("invalid"), &["seatplan-", "catalogue-"]);
    assert!(
        files.len() >= 20,
        "only {} invalid xml samples",
        files.len()
    );
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_str().unwrap();
        let bytes = std::fs::read(path).unwrap();
        let got = first_error(&bytes, name, name.starts_with("seatplan-"));
        let got = match got {
            Some(e) => {
                assert_eq!(e.file, name);
                assert!(!e.problem.is_empty());
                format!("code: {}\nposition: {}\n", e.code, e.position)
            }
            None => "accepted\n".to_owned(),
        };
        let expected_path = path.with_extension("xml.expected");
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if got != expected {
            failures.push(format!("{name}: expected\n{expected}got\n{got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn thirty_thousand_nested_elements_are_refused_at_once() {
    for (root, child) in [
        ("seatplan", r#"<venue id="1" code="C" name="N">"#),
        (
            "catalogue",
            r#"<rateTable id="1" code="C" name="N" currency="EUR">"#,
        ),
    ] {
        let mut doc = format!("<?xml version=\"1.0\"?>\n<{root} version=\"1\">\n").into_bytes();
        for _ in 0..30_001 {
            doc.extend_from_slice(child.as_bytes());
        }
        let e = first_error(&doc, "deep.xml", root == "seatplan").unwrap();
        assert_eq!(e.code, "xml-nesting", "{root}: {e}");
        // The second element, nested in the first.
        let second = 22 + root.len() + 15 + child.len();
        assert_eq!(e.position.to_string(), format!("line 3 (byte {second})"));
    }
}
