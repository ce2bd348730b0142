//! The distributor told of the manager's resolutions: each accepted or
//! dismissed line goes out once, as a RESOLUTION line of the next CONTINGENT
//! file (alone if need be), is recorded on the distributor's sale line in
//! the file's transaction and shown by `stxd sale list`; a line the
//! distributor does not have refuses the file; a dismissed line id sent
//! again is never booked; the refund of a sale never booked is closed with
//! it, and the reconciliation stays consistent.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::free_tariff::{allot, sell};
use crate::util::{Sandbox, rows};

const LINK: &str = "opera-tourism";

fn next_second() {
    std::thread::sleep(std::time::Duration::from_millis(1100));
}

fn send_sales(sb: &Sandbox) {
    sb.stxd(&["export", "sales", "--link", LINK]).expect_code(0);
    sb.stxd(&["process"]).expect_code(0);
}

fn json(sb: &Sandbox, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let run = sb.stxd(&all);
    serde_json::from_str(&run.stdout()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout()))
}

fn reconcile(sb: &Sandbox) -> (i32, Value) {
    let run = sb.stxd(&["--json", "report", "reconcile", "--link", LINK]);
    let doc =
        serde_json::from_str(&run.stdout()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout()));
    (run.code(), doc)
}

fn resolve(sb: &Sandbox, line: i64, decision: &str, reason: &str) {
    sb.stxd(&[
        "sales",
        "resolve",
        &line.to_string(),
        decision,
        "--reason",
        reason,
        "--by",
        "alice",
    ])
    .expect_code(0);
}

/// Seats A:1-4 of 1701 allotted, A:1 sold and booked; then the manager
/// `ends` 1701 and the distributor, not told yet, sells `late` seats, each
/// rejected. Returns their line ids.
fn rejected_late_sales(ends: &str, late: &[&str]) -> (Sandbox, Vec<i64>) {
    let sb = Sandbox::new();
    sb.first_use_done();
    allot(&sb, "1-4");
    sell(&sb, "PARTERRE:A:1", "NORMAL", "ADULT");
    send_sales(&sb);
    next_second();
    sb.stxd(&["performance", ends, "TRAV0115", "--link", LINK])
        .expect_code(0);
    next_second();
    let lines = late
        .iter()
        .map(|seat| {
            sell(&sb, seat, "NORMAL", "ADULT")["line"]["line"]
                .as_i64()
                .unwrap()
        })
        .collect();
    send_sales(&sb);
    (sb, lines)
}

/// Every CONTINGENT payload under the sandbox, by name (sequence order).
fn contingent_payloads(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, found);
            } else if let Some(n) = p.file_name().and_then(|n| n.to_str())
                && n.contains(".CONTINGENT.")
                && n.ends_with(".csv")
                && !n.starts_with('.')
            {
                found.push(p);
            }
        }
    }
    let mut found = Vec::new();
    walk(&dir.join("var"), &mut found);
    found.sort_by_key(|p| p.file_name().map(|n| n.to_owned()));
    found.dedup_by_key(|p| p.file_name().map(|n| n.to_owned()));
    found
}

fn last_contingent(sb: &Sandbox) -> String {
    let all = contingent_payloads(sb.path());
    std::fs::read_to_string(all.last().expect("a contingent file")).unwrap()
}

#[test]
fn the_distributor_is_told_each_resolution_once_and_lists_it() {
    let (sb, lines) = rejected_late_sales("close", &["PARTERRE:A:2", "PARTERRE:A:3"]);
    let (accepted, dismissed) = (lines[0], lines[1]);
    resolve(&sb, accepted, "--accept", "sold before the doors closed");
    resolve(&sb, dismissed, "--dismiss", "sold after closing; refund it");
    // Nothing told yet.
    assert_eq!(
        json(&sb, &["sale", "list", "--disputed"])["lines"],
        serde_json::json!([])
    );

    // The next contingent file carries both; the distributor records them.
    sb.stxd(&["export", "contingent", "--link", LINK])
        .expect_code(0);
    let text = last_contingent(&sb);
    assert!(
        text.starts_with(
            "performance;version;type;block;row;seat;zone;quantity;seat_category;line;decision;reason;decided\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            ";;RESOLUTION;;;;;;;{accepted};accepted;sold before the doors closed;"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            ";;RESOLUTION;;;;;;;{dismissed};dismissed;sold after closing, refund it;"
        )),
        "{text}"
    );
    sb.stxd(&["process"]).expect_code(0);
    let told = rows(
        &sb,
        "OPERA.sqlite",
        "SELECT line, told_in FROM sales_line_resolution ORDER BY line",
    );
    let seq = rows(
        &sb,
        "OPERA.sqlite",
        "SELECT max(sequence) FROM file_journal WHERE kind = 'CONTINGENT' AND direction = 'out'",
    )[0]
    .clone();
    assert_eq!(
        told,
        [format!("{accepted}|{seq}"), format!("{dismissed}|{seq}")]
    );

    let listed = json(&sb, &["sale", "list", "--disputed"]);
    let got: Vec<(i64, String, String)> = listed["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["id"].as_i64().unwrap(),
                l["resolution"]["decision"].as_str().unwrap().to_owned(),
                l["resolution"]["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                accepted,
                "accepted".to_owned(),
                "sold before the doors closed".to_owned()
            ),
            (
                dismissed,
                "dismissed".to_owned(),
                "sold after closing, refund it".to_owned()
            ),
        ]
    );
    let text = sb.stxd(&["sale", "list"]);
    text.expect_code(0);
    let out = text.stdout();
    assert!(
        out.contains("sold, dismissed by the manager: sold after closing, refund it"),
        "{out}"
    );
    assert!(
        out.contains("sold, accepted by the manager (sold before the doors closed)"),
        "{out}"
    );
    assert_eq!(out.lines().count(), 3, "{out}");

    // Told once: the next contingent file is a version 1 file again, and
    // the distributor still has one row per line.
    sb.stxd(&["export", "contingent", "--link", LINK])
        .expect_code(0);
    let again = last_contingent(&sb);
    assert!(!again.contains("RESOLUTION"), "{again}");
    assert!(
        again.starts_with("performance;version;type;block;row;seat;zone;quantity;seat_category\n")
    );
    sb.stxd(&["process"]).expect_code(0);
    assert_eq!(
        rows(
            &sb,
            "TOURISM.sqlite",
            "SELECT count(*) FROM sale_line_resolution"
        ),
        ["2"]
    );
    let (code, doc) = reconcile(&sb);
    assert_eq!(code, 0, "{doc:#}");
}

#[test]
fn a_resolution_alone_is_a_reason_to_send_a_contingent_file() {
    let (sb, lines) = rejected_late_sales("close", &["PARTERRE:A:2"]);
    // Every snapshot is already exported: the job has nothing to send.
    let nothing = sb.stxd(&["trigger", "export-contingent", "--link", LINK, "--now"]);
    assert!(
        nothing.stdout().contains("nothing") || nothing.stderr().contains("nothing"),
        "{}{}",
        nothing.stdout(),
        nothing.stderr()
    );
    let files = || {
        rows(
            &sb,
            "OPERA.sqlite",
            "SELECT count(*) FROM file_journal WHERE kind = 'CONTINGENT' AND direction = 'out'",
        )
    };
    let before = files();
    resolve(&sb, lines[0], "--dismiss", "late");
    sb.stxd(&["trigger", "export-contingent", "--link", LINK, "--now"])
        .expect_code(0);
    assert_ne!(files(), before);
    let text = last_contingent(&sb);
    assert_eq!(
        text.lines().count(),
        2,
        "header and the resolution only: {text}"
    );
    sb.stxd(&["process"]).expect_code(0);
    assert_eq!(
        rows(
            &sb,
            "TOURISM.sqlite",
            "SELECT line, decision, reason FROM sale_line_resolution"
        ),
        [format!("{}|dismissed|late", lines[0])]
    );
}

#[test]
fn a_resolution_of_a_line_the_distributor_does_not_have_refuses_the_file() {
    let (sb, lines) = rejected_late_sales("close", &["PARTERRE:A:2"]);
    resolve(&sb, lines[0], "--dismiss", "late");
    // The distributor's store lost the line (a store restored from before
    // the sale): the notice names a line it does not have.
    let db = rusqlite::Connection::open(sb.path().join("var/state/TOURISM.sqlite")).unwrap();
    db.execute("DELETE FROM sale_line WHERE id = ?1", [lines[0]])
        .unwrap();
    drop(db);
    sb.stxd(&["export", "contingent", "--link", LINK])
        .expect_code(0);
    let run = sb.stxd(&["process"]);
    let reason = contingent_reasons(sb.path());
    assert!(
        reason.contains("resolution-unknown-line")
            && reason.contains(&format!("no line {}", lines[0]))
            && reason.contains("line 2"),
        "{reason}\n{}{}",
        run.stdout(),
        run.stderr()
    );
    // Nothing of the file applied.
    assert_eq!(
        rows(
            &sb,
            "TOURISM.sqlite",
            "SELECT count(*) FROM sale_line_resolution"
        ),
        ["0"]
    );
}

/// The `.reason` files of refused CONTINGENT files.
fn contingent_reasons(dir: &Path) -> String {
    fn walk(dir: &Path, out: &mut String) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if let Some(n) = p.file_name().and_then(|n| n.to_str())
                && n.contains(".CONTINGENT.")
                && n.ends_with(".reason")
            {
                out.push_str(&std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    let mut out = String::new();
    walk(&dir.join("var"), &mut out);
    out
}

#[test]
fn a_dismissed_line_sent_again_is_never_booked() {
    let (sb, lines) = rejected_late_sales("close", &["PARTERRE:A:2"]);
    let line = lines[0];
    resolve(&sb, line, "--dismiss", "sold after closing");
    // The same line id sent again (the distributor's export mark undone,
    // as by a restored store): refused line by line, the date and the way
    // to sell again in the reason.
    let db = rusqlite::Connection::open(sb.path().join("var/state/TOURISM.sqlite")).unwrap();
    db.execute(
        "UPDATE sale_line SET exported_in = NULL WHERE id = ?1",
        [line],
    )
    .unwrap();
    drop(db);
    sb.stxd(&["export", "sales", "--link", LINK]).expect_code(0);
    sb.stxd(&["process"]).expect_code(0);
    let today = rows(
        &sb,
        "OPERA.sqlite",
        "SELECT substr(at, 1, 10) FROM sales_line_resolution",
    )[0]
    .clone();
    let messages = rows(
        &sb,
        "OPERA.sqlite",
        "SELECT m.text FROM run_message m JOIN run r ON r.id = m.run
          WHERE m.code = 'line-dismissed' AND r.kind LIKE '%sales%'",
    );
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].contains(&format!("dismissed by alice on {today}"))
            && messages[0].contains("make a new sale"),
        "{messages:?}"
    );
    assert_eq!(
        rows(
            &sb,
            "OPERA.sqlite",
            &format!(
                "SELECT (SELECT count(*) FROM ticket WHERE line = {line}), status, code FROM sales_line WHERE line = {line}"
            )
        ),
        ["0|rejected|performance-closed"]
    );
}

#[test]
fn the_refund_of_a_sale_never_booked_is_closed_and_nets_to_zero() {
    // A:2 rejected and left open, A:3 rejected and dismissed; the
    // distributor refunds both.
    let (sb, lines) = rejected_late_sales("cancel", &["PARTERRE:A:2", "PARTERRE:A:3"]);
    let (open, dismissed) = (lines[0], lines[1]);
    resolve(&sb, dismissed, "--dismiss", "the show is cancelled");
    let refund = |line: i64| {
        sb.stxd(&["--json", "sale", "refund", &line.to_string()])
            .expect_code(0);
    };
    refund(open);
    refund(dismissed);
    send_sales(&sb);
    let closed = rows(
        &sb,
        "OPERA.sqlite",
        "SELECT r.line, r.operation, r.decision, r.by_user, r.code FROM sales_line_resolution r ORDER BY r.line",
    );
    let (r_open, r_dismissed) = (open + 2, open + 3);
    assert_eq!(
        closed,
        [
            format!("{open}|SALE|dismissed|stxd|performance-cancelled"),
            format!("{dismissed}|SALE|dismissed|alice|performance-cancelled"),
            format!("{r_open}|REFUND|dismissed|stxd|refund-of-unbooked-sale"),
            format!("{r_dismissed}|REFUND|dismissed|stxd|refund-of-unbooked-sale"),
        ]
    );
    // Not a rejection left to resolve, not a difference: the pair nets to
    // zero.
    let rejects = sb.stxd(&["sales", "rejects", "--link", LINK]);
    assert_eq!(rejects.stdout().lines().count(), 1, "{}", rejects.stdout());
    let (code, doc) = reconcile(&sb);
    assert_eq!(code, 0, "{doc:#}");
    let set_aside: i64 = doc["pending_account"]["dismissed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["minor"].as_i64().unwrap())
        .sum();
    assert_eq!(set_aside, 0, "{doc:#}");
    // The distributor is told of all four.
    sb.stxd(&["export", "contingent", "--link", LINK])
        .expect_code(0);
    sb.stxd(&["process"]).expect_code(0);
    assert_eq!(
        rows(
            &sb,
            "TOURISM.sqlite",
            "SELECT count(*) FROM sale_line_resolution WHERE decision = 'dismissed'"
        ),
        ["4"]
    );
}

/// A crash anywhere in the export neither loses nor doubles a notice:
/// before the commit the resolution stays untold (the next file carries
/// it); after it, the recorded file is placed and carries it, and the next
/// file does not.
#[test]
fn a_crash_in_the_export_neither_loses_nor_doubles_a_notice() {
    for point in ["export.staged", "export.committed", "export.payload-placed"] {
        let (sb, lines) = rejected_late_sales("close", &["PARTERRE:A:2"]);
        resolve(&sb, lines[0], "--dismiss", "late");
        let killed = sb.stxd_env(
            &["export", "contingent", "--link", LINK],
            &[("STXD_FAILPOINT", point)],
        );
        assert!(
            killed.killed(),
            "{point}: {}{}",
            killed.stdout(),
            killed.stderr()
        );
        let told = || {
            rows(
                &sb,
                "OPERA.sqlite",
                "SELECT coalesce(told_in, 'NULL') FROM sales_line_resolution",
            )
        };
        let committed = point != "export.staged";
        assert_eq!(told() != ["NULL"], committed, "{point}: {:?}", told());
        // The next export (placing a committed one first), twice, then the
        // distributor takes everything.
        for _ in 0..2 {
            sb.stxd(&["export", "contingent", "--link", LINK])
                .expect_code(0);
        }
        sb.stxd(&["process"]).expect_code(0);
        let carrying: Vec<String> = contingent_payloads(sb.path())
            .iter()
            .filter(|p| std::fs::read_to_string(p).unwrap().contains("RESOLUTION"))
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(carrying.len(), 1, "{point}: {carrying:?}");
        let seq = told()[0].clone();
        assert!(
            carrying[0].contains(&format!(".CONTINGENT.{:0>8}.", seq)),
            "{point}: {carrying:?} told in {seq}"
        );
        assert_eq!(
            rows(
                &sb,
                "TOURISM.sqlite",
                "SELECT line, decision FROM sale_line_resolution"
            ),
            [format!("{}|dismissed", lines[0])],
            "{point}"
        );
    }
}
