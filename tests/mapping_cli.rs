//! `stxd mapping …` as the distributor's ops use it on the demo: import the
//! samples' mapping CSV, list, set, ignore, check, the export → import round
//! trip, and every invalid mapping CSV refused with its line and reason and
//! nothing changed.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::util::{Sandbox, repo};

const SAMPLE: &str = "samples/tourism/mapping.csv";

/// A sandbox with both demo stores created from the samples.
fn demo() -> Sandbox {
    let sb = Sandbox::new();
    sb.ready();
    sb
}

/// A digest of every column of every row of TOURISM's mapping table.
fn mapping_digest(sb: &Sandbox) -> String {
    let conn = rusqlite::Connection::open(sb.path().join("var/state/TOURISM.sqlite")).unwrap();
    let mut st = conn
        .prepare(
            "SELECT id, manager, kind, manager_id, manager_code, manager_label, local_id, status,
                    first_seen, last_seen, coalesce(first_file, '') FROM mapping ORDER BY id",
        )
        .unwrap();
    let mut hash = Sha256::new();
    let mut rows = st.query([]).unwrap();
    while let Some(r) = rows.next().unwrap() {
        for i in 0..11 {
            let v: rusqlite::types::Value = r.get(i).unwrap();
            hash.update(format!("{v:?}\u{1f}").as_bytes());
        }
        hash.update(b"\n");
    }
    hex::encode(hash.finalize())
}

/// The runs of a kind in TOURISM's store: (status, records_total).
fn runs_of(sb: &Sandbox, kind: &str) -> Vec<(String, i64)> {
    let conn = rusqlite::Connection::open(sb.path().join("var/state/TOURISM.sqlite")).unwrap();
    let mut st = conn
        .prepare("SELECT status, records_total FROM run WHERE kind = ?1 ORDER BY id")
        .unwrap();
    st.query_map([kind], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn list_json(sb: &Sandbox, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["--json", "mapping", "list"];
    args.extend_from_slice(extra);
    let run = sb.stxd(&args);
    run.expect_code(0);
    serde_json::from_str::<serde_json::Value>(&run.stdout())
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn the_samples_mapping_completes_the_demo_and_checks_clean() {
    let sb = demo();
    // Nothing seen yet: no rows, nothing pending.
    assert!(list_json(&sb, &[]).is_empty());
    let run = sb.stxd(&["mapping", "import", SAMPLE]);
    run.expect_code(0);
    assert!(
        run.stdout().contains("14 row(s), 14 created, 0 changed"),
        "{}",
        run.stdout()
    );
    let rows = list_json(&sb, &[]);
    let got: Vec<(String, i64, String, String, Option<String>)> = rows
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_owned(),
                r["manager_id"].as_i64().unwrap(),
                r["manager_code"].as_str().unwrap().to_owned(),
                r["status"].as_str().unwrap().to_owned(),
                r["local_code"].as_str().map(str::to_owned),
            )
        })
        .collect();
    let want = [
        ("season", 1001, "S3637", "filled", Some("T3637")),
        ("activity", 1401, "TRAVIATA", "filled", Some("OPERA-TR")),
        ("vat_code", 1101, "TVA55", "filled", Some("TVA-R")),
        ("tariff_type", 1201, "PLEIN", "filled", Some("NORMAL")),
        ("tariff_type", 1202, "REDUIT", "filled", Some("REDUIT")),
        ("tariff_type", 1203, "GROUPE", "ignored", None),
        (
            "audience_subcategory",
            1301,
            "ADULTE",
            "filled",
            Some("ADULT"),
        ),
        (
            "audience_subcategory",
            1302,
            "ENFANT",
            "filled",
            Some("CHILD"),
        ),
        ("audience_subcategory", 1303, "ETUDIANT", "ignored", None),
        ("audience_subcategory", 1304, "SENIOR", "ignored", None),
        ("seat_category", 2001, "CAT1", "filled", Some("PREM")),
        ("seat_category", 2002, "CAT2", "filled", Some("SECONDE")),
        ("seat_category", 2003, "CAT3", "filled", Some("TROIS")),
        ("seat_category", 2004, "DEBOUT", "filled", Some("DEBOUT")),
    ];
    let want: Vec<_> = want
        .iter()
        .map(|(k, id, c, s, l)| {
            (
                (*k).to_owned(),
                *id,
                (*c).to_owned(),
                (*s).to_owned(),
                l.map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(got, want);
    let audience = list_json(&sb, &["--kind", "audience_subcategory"]);
    assert_eq!(audience.len(), 4);
    assert_eq!(audience[0]["local_id"], 7401);
    assert!(list_json(&sb, &["--pending"]).is_empty());
    sb.stxd(&["mapping", "check", "--link", "opera-tourism"])
        .expect_code(0);
    assert_eq!(runs_of(&sb, "mapping-import"), vec![("ok".to_owned(), 14)]);
}

#[test]
fn set_ignore_and_unset_change_one_row_and_check_reports_what_is_pending() {
    let sb = demo();
    sb.stxd(&["mapping", "import", SAMPLE]).expect_code(0);
    let run = sb.stxd(&["mapping", "set", "tariff_type", "1203", "NORMAL"]);
    run.expect_code(0);
    assert!(
        run.stdout()
            .contains("tariff_type 1203: ignored → filled NORMAL (7301)"),
        "{}",
        run.stdout()
    );
    let run = sb.stxd(&["--json", "mapping", "unset", "tariff_type", "1203"]);
    run.expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(doc["after"]["status"], "pending");
    assert_eq!(doc["before"]["local_code"], "NORMAL");
    let pending = list_json(&sb, &["--pending"]);
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["manager_id"], 1203);
    let run = sb.stxd(&["mapping", "check", "--link", "opera-tourism"]);
    run.expect_code(1);
    assert!(
        run.stdout().contains("tariff_type mapping 1203 GROUPE"),
        "{}",
        run.stdout()
    );
    assert!(
        run.stdout()
            .contains("stxd mapping ignore tariff_type 1203"),
        "{}",
        run.stdout()
    );
    let run = sb.stxd(&["--json", "mapping", "check"]);
    run.expect_code(1);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["findings"].as_array().unwrap().len(), 1);
    sb.stxd(&["mapping", "ignore", "tariff_type", "1203"])
        .expect_code(0);
    sb.stxd(&["mapping", "check"]).expect_code(0);
    for kind in ["mapping-set", "mapping-unset", "mapping-ignore"] {
        assert_eq!(runs_of(&sb, kind), vec![("ok".to_owned(), 1)], "{kind}");
    }
}

#[test]
fn refused_hand_changes_say_why_and_change_nothing() {
    let sb = demo();
    sb.stxd(&["mapping", "import", SAMPLE]).expect_code(0);
    let before = mapping_digest(&sb);
    let run = sb.stxd(&["mapping", "set", "logical_seat_category", "1601", "PREM"]);
    run.expect_code(2);
    assert!(run.stderr().contains("physical"), "{}", run.stderr());
    let run = sb.stxd(&["mapping", "set", "seat_category", "2001", "PREMIERE"]);
    run.expect_code(1);
    assert!(
        run.stderr().contains("DEBOUT, PREM, SECONDE, TROIS"),
        "{}",
        run.stderr()
    );
    let run = sb.stxd(&["mapping", "set", "performance", "1701", "TRAV0115"]);
    run.expect_code(1);
    assert!(
        run.stderr().contains("catalogue import"),
        "{}",
        run.stderr()
    );
    sb.stxd(&["mapping", "set", "season", "01001", "T3637"])
        .expect_code(2);
    sb.stxd(&["mapping", "list", "--link", "nowhere"])
        .expect_code(2);
    assert_eq!(mapping_digest(&sb), before);
}

#[test]
fn export_then_import_is_a_round_trip_that_changes_nothing() {
    let sb = demo();
    sb.stxd(&["mapping", "import", SAMPLE]).expect_code(0);
    let before = mapping_digest(&sb);
    let stdout = sb.stxd(&["mapping", "export"]);
    stdout.expect_code(0);
    sb.stxd(&["mapping", "export", "exported.csv"])
        .expect_code(0);
    // An existing file is never replaced.
    let run = sb.stxd(&["mapping", "export", "exported.csv"]);
    run.expect_code(1);
    assert!(run.stderr().contains("never replaces"), "{}", run.stderr());
    assert!(!sb.path().join(".exported.csv.part").exists());
    let file = std::fs::read(sb.path().join("exported.csv")).unwrap();
    assert_eq!(
        file, stdout.0.stdout,
        "stdout and FILE hold the same export"
    );
    let text = String::from_utf8(file).unwrap();
    let text = text.strip_prefix('\u{feff}').expect("a byte order mark");
    // The export is the sample, row for row (same order, same cells).
    let sample = std::fs::read_to_string(repo().join(SAMPLE)).unwrap();
    assert_eq!(text, sample);
    let run = sb.stxd(&["mapping", "import", "exported.csv"]);
    run.expect_code(0);
    assert!(
        run.stdout().contains("0 created, 0 changed, 14 unchanged"),
        "{}",
        run.stdout()
    );
    assert_eq!(mapping_digest(&sb), before);
}

/// The invalid samples, each with its expected (code, position).
fn invalid_samples() -> Vec<(PathBuf, String, String)> {
    let dir = repo().join("samples/mapping/invalid");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "csv") {
            let (code, position) = expected(&path.with_extension("csv.expected"));
            out.push((path, code, position));
        }
    }
    out.sort();
    out
}

fn expected(path: &Path) -> (String, String) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (mut code, mut position) = (None, None);
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
        code.expect("a code: line"),
        position.expect("a position: line"),
    )
}

#[test]
fn every_invalid_mapping_csv_is_refused_with_its_line_and_reason_and_changes_nothing() {
    let sb = demo();
    sb.stxd(&["mapping", "import", SAMPLE]).expect_code(0);
    let before = mapping_digest(&sb);
    let samples = invalid_samples();
    assert!(samples.len() >= 9, "{} samples", samples.len());
    let mut wrong = Vec::new();
    for (path, code, position) in &samples {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let file = path.to_str().unwrap();
        let run = sb.stxd(&["--json", "mapping", "import", file]);
        if run.code() != 1 {
            wrong.push(format!("{name}: exit {}: {}", run.code(), run.stderr()));
            continue;
        }
        let doc: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
        let first = &doc["errors"][0];
        if doc["imported"] != false
            || first["code"] != code.as_str()
            || first["position"] != position.as_str()
        {
            wrong.push(format!(
                "{name}: expected {code} at {position}, found {doc}"
            ));
        }
        // The human output names the line and the reason too.
        let run = sb.stxd(&["mapping", "import", file]);
        run.expect_code(1);
        let want = format!("{position}: {code}: ");
        if !run.stderr().contains(&want) || !run.stderr().contains("nothing changed") {
            wrong.push(format!("{name}: stderr lacks {want:?}: {}", run.stderr()));
        }
        assert_eq!(
            mapping_digest(&sb),
            before,
            "{name} changed the mapping table"
        );
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Each refusal is in the execution log as a failed run.
    let failed = runs_of(&sb, "mapping-import")
        .into_iter()
        .filter(|(status, _)| status == "failed")
        .count();
    assert_eq!(failed, samples.len() * 2);
}

#[test]
fn every_invalid_sample_has_its_expected_file() {
    let dir = repo().join("samples/mapping/invalid");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Some(sample) = name.strip_suffix(".expected") {
            assert!(dir.join(sample).is_file(), "{name} without its sample");
        } else {
            assert!(
                path.with_extension("csv.expected").is_file(),
                "{name} without its .expected"
            );
        }
    }
}
