//! The CONTINGENT reader and writer against the samples and hand-made
//! files.

use std::fmt::Write as _;

use super::*;

const HEADER: &str = "performance;version;type;block;row;seat;zone;quantity;seat_category\n";
const SAMPLE: &str = include_str!("../../../samples/payloads/contingent.csv");

fn read(input: &str) -> Result<Vec<Line>, FormatError> {
    Reader::new(input.as_bytes(), "contingent.csv", Limits::default()).collect()
}

fn write(lines: &[Line]) -> Result<Vec<u8>, WriteError> {
    let mut w = Writer::new(Vec::new())?;
    for l in lines {
        w.write(l)?;
    }
    Ok(w.finish()?.0)
}

fn id(v: i64) -> TechId {
    TechId::new(v).unwrap()
}

#[test]
fn the_sample_round_trips() {
    let lines = read(SAMPLE).unwrap();
    assert_eq!(lines.len(), 29);
    assert_eq!(
        lines[0],
        Line::Performance {
            performance: id(1701),
            version: 1
        }
    );
    assert_eq!(
        lines[17],
        Line::Zone {
            performance: id(1701),
            version: 1,
            zone: id(3201),
            quantity: 20,
            seat_category: id(2004)
        }
    );
    assert_eq!(write(&lines).unwrap(), SAMPLE.as_bytes());
}

const FULL: &str = "performance;version;type;block;row;seat;zone;quantity;seat_category;line;decision;reason;decided\n";
const RESOLUTIONS: &str = include_str!("../../../samples/payloads/contingent-resolutions.csv");

#[test]
fn resolutions_follow_the_snapshots_and_round_trip() {
    let lines = read(RESOLUTIONS).unwrap();
    let told: Vec<_> = lines
        .iter()
        .filter_map(|l| match l {
            Line::Resolution { line, decision, .. } => Some((*line, *decision)),
            _ => None,
        })
        .collect();
    assert_eq!(
        told,
        vec![(4, Decision::Dismissed), (7, Decision::Accepted)]
    );
    let mut w = Writer::with_resolutions(Vec::new()).unwrap();
    for l in &lines {
        w.write(l).unwrap();
    }
    assert_eq!(w.finish().unwrap().0, RESOLUTIONS.as_bytes());
}

#[test]
fn a_file_without_resolutions_is_written_as_version_1() {
    let lines = read(SAMPLE).unwrap();
    let mut w = Writer::new(Vec::new()).unwrap();
    for l in &lines {
        w.write(l).unwrap();
    }
    assert_eq!(w.finish().unwrap().0, SAMPLE.as_bytes());
    let resolution = Line::Resolution {
        line: 4,
        decision: Decision::Dismissed,
        reason: "sold after the cancellation".to_owned(),
        decided: time::macros::datetime!(2026-12-02 09:30:00 UTC),
    };
    let mut w = Writer::new(Vec::new()).unwrap();
    assert!(w.write(&resolution).is_err(), "no column for it");
}

#[test]
fn a_bad_resolution_is_refused_with_its_place() {
    let cases = [
        (
            "4;dismissed;why;2026-12-02T09:30:00Z",
            "1701;1;",
            "unexpected-field",
            "line 2, field performance",
        ),
        (
            "0;dismissed;why;2026-12-02T09:30:00Z",
            ";;",
            "bad-number",
            "line 2, field line",
        ),
        (
            "4;maybe;why;2026-12-02T09:30:00Z",
            ";;",
            "bad-value",
            "line 2, field decision",
        ),
        (
            "4;dismissed;;2026-12-02T09:30:00Z",
            ";;",
            "missing-field",
            "line 2, field reason",
        ),
        (
            "4;dismissed;why;2026-12-02",
            ";;",
            "bad-time",
            "line 2, field decided",
        ),
    ];
    for (tail, head, code, at) in cases {
        let text = format!("{FULL}{head}RESOLUTION;;;;;;;{tail}\n");
        let e = read(&text).unwrap_err();
        assert_eq!(
            (e.code, e.position.to_string()),
            (code, at.to_owned()),
            "{text}"
        );
    }
    let twice = format!(
        "{FULL};;RESOLUTION;;;;;;;4;dismissed;a;2026-12-02T09:30:00Z\n;;RESOLUTION;;;;;;;4;accepted;b;2026-12-02T09:31:00Z\n"
    );
    assert_eq!(
        read(&twice).unwrap_err().code,
        "contingent-duplicate-resolution"
    );
    let inside = format!(
        "{FULL}1701;1;PERFORMANCE;;;;;;;;;;\n;;RESOLUTION;;;;;;;4;dismissed;a;2026-12-02T09:30:00Z\n1701;1;SEAT;3301;A;1;;;2001;;;;\n"
    );
    assert_eq!(read(&inside).unwrap_err().code, "contingent-group");
    let on_seat = format!("{FULL}1701;1;PERFORMANCE;;;;;;;4;;;\n");
    assert_eq!(read(&on_seat).unwrap_err().code, "unexpected-field");
}

#[test]
fn an_empty_snapshot_takes_everything_back() {
    let text = format!("{HEADER}1701;2;PERFORMANCE;;;;;;\n1702;1;PERFORMANCE;;;;;;\n");
    let lines = read(&text).unwrap();
    assert_eq!(lines.len(), 2);
    assert_eq!(write(&lines).unwrap(), text.as_bytes());
}

#[test]
fn columns_in_any_order_read_the_same() {
    let text = "seat_category;quantity;zone;seat;row;block;type;version;performance\n\
                ;;;;;;PERFORMANCE;1;1701\n\
                2001;;;1;A;3301;SEAT;1;1701\n\
                2004;20;3201;;;;ZONE;1;1701\n";
    let expected = format!(
        "{HEADER}1701;1;PERFORMANCE;;;;;;\n1701;1;SEAT;3301;A;1;;;2001\n1701;1;ZONE;;;;3201;20;2004\n"
    );
    assert_eq!(write(&read(text).unwrap()).unwrap(), expected.as_bytes());
}

#[test]
fn the_same_seat_may_appear_in_two_performances() {
    let text = format!(
        "{HEADER}1701;1;PERFORMANCE;;;;;;\n1701;1;SEAT;3301;A;1;;;2001\n1702;1;PERFORMANCE;;;;;;\n1702;1;SEAT;3301;A;1;;;2001\n"
    );
    assert_eq!(read(&text).unwrap().len(), 4);
}

/// The per-snapshot set is emptied by each PERFORMANCE line: memory is
/// bounded by one venue, not by the file.
#[test]
fn the_place_set_holds_one_snapshot_only() {
    let mut text = String::from(HEADER);
    for p in 1..=50 {
        let _ = writeln!(text, "{p};1;PERFORMANCE;;;;;;");
        for s in 1..=20 {
            let _ = writeln!(text, "{p};1;SEAT;3301;A;{s};;;2001");
        }
    }
    let mut r = Reader::new(text.as_bytes(), "c.csv", Limits::default());
    let mut most = 0;
    while let Some(line) = r.next() {
        line.unwrap();
        most = most.max(r.groups.places.len());
    }
    assert_eq!(r.records(), 50 * 21);
    assert_eq!(most, 20);
    assert_eq!(r.groups.seen.len(), 50);
}

#[test]
fn a_snapshot_larger_than_any_venue_is_refused() {
    let mut text = String::from(HEADER);
    text.push_str("1701;1;PERFORMANCE;;;;;;\n");
    for s in 1..=MAX_GROUP_PLACES + 1 {
        let _ = writeln!(text, "1701;1;SEAT;3301;A;{s};;;2001");
    }
    let e = read(&text).unwrap_err();
    assert_eq!(e.code, "contingent-group-too-large");
    assert_eq!(
        e.position.to_string(),
        format!("line {}, field seat", MAX_GROUP_PLACES + 3)
    );
}

#[test]
fn more_performances_than_any_catalogue_are_refused() {
    let mut text = String::from(HEADER);
    for p in 1..=MAX_PERFORMANCES + 1 {
        let _ = writeln!(text, "{p};1;PERFORMANCE;;;;;;");
    }
    let e = read(&text).unwrap_err();
    assert_eq!(e.code, "contingent-too-many-performances");
    assert_eq!(
        e.position.to_string(),
        format!("line {}, field performance", MAX_PERFORMANCES + 2)
    );
}

#[test]
fn the_reader_stops_after_its_first_error() {
    let text = format!("{HEADER}1701;1;SEAT;3301;A;1;;;2001\n1701;1;PERFORMANCE;;;;;;\n");
    let mut r = Reader::new(text.as_bytes(), "c.csv", Limits::default());
    let e = r.next().unwrap().unwrap_err();
    assert_eq!(e.code, "contingent-group");
    assert_eq!(e.file, "c.csv");
    assert!(r.next().is_none());
    assert_eq!(r.records(), 1);
}

#[test]
fn the_writer_refuses_what_the_reader_would_refuse() {
    let perf = Line::Performance {
        performance: id(1701),
        version: 1,
    };
    let seat = |row: &str, version: u64| Line::Seat {
        performance: id(1701),
        version,
        block: id(3301),
        row: Code::new(row).unwrap(),
        seat: Code::new("1").unwrap(),
        seat_category: id(2001),
    };
    let zone = |quantity: u32| Line::Zone {
        performance: id(1701),
        version: 1,
        zone: id(3201),
        quantity,
        seat_category: id(2004),
    };
    assert!(write(&[perf.clone(), seat("A", 1), zone(1)]).is_ok());
    assert!(
        write(&[seat("A", 1)]).is_err(),
        "seat before its PERFORMANCE line"
    );
    assert!(
        write(&[perf.clone(), seat("A", 2)]).is_err(),
        "other version"
    );
    assert!(write(&[perf.clone(), zone(0)]).is_err(), "quantity 0");
    let v0 = Line::Performance {
        performance: id(1701),
        version: 0,
    };
    assert!(write(&[v0]).is_err(), "version 0");
    // A refused line leaves nothing half-written.
    let mut w = Writer::new(Vec::new()).unwrap();
    w.write(&perf).unwrap();
    assert!(w.write(&seat("A", 2)).is_err());
    w.write(&seat("A", 1)).unwrap();
    let (out, n) = w.finish().unwrap();
    assert_eq!(n, 2);
    assert_eq!(read(std::str::from_utf8(&out).unwrap()).unwrap().len(), 2);
}
