//! The performance lifecycle, through the `stxd` binary on the
//! same-slot demo: the manager cancels or closes a performance, the state
//! travels in the next catalogue file and the distributor stops selling at
//! once; the reintegration rejects a sale made after the cancellation, the
//! closure or the start, and books (flagged for refund) one made before; the
//! distributor lists and refunds a cancelled performance's tickets in one
//! command.

use serde_json::Value;

use crate::free_tariff::{allot, sell};
use crate::util::{Sandbox, json, rows};

/// Lets the clock pass a second: line and state-change times are whole
/// seconds, and a sale in the very second of a change counts as before it.
fn next_second() {
    std::thread::sleep(std::time::Duration::from_millis(1100));
}

fn export_and_process(sb: &Sandbox, kind: &str) -> Value {
    sb.stxd(&["export", kind, "--link", "opera-tourism"])
        .expect_code(0);
    json(sb, &["process"], 0)
}

/// (code, text) of the messages of the last run of `kind` at `institution`.
fn messages(sb: &Sandbox, institution: &str, kind: &str) -> Vec<(String, String)> {
    let runs = json(
        sb,
        &["runs", "list", "--institution", institution, "--kind", kind],
        0,
    );
    let id = runs.as_array().unwrap()[0]["id"]
        .as_i64()
        .unwrap()
        .to_string();
    let shown = json(sb, &["runs", "show", &id, "--institution", institution], 0);
    shown["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["code"].as_str().unwrap().to_owned(),
                m["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_cancelled_performance_stops_selling_rejects_later_sales_and_refunds_all() {
    let sb = Sandbox::new();
    sb.first_use_done();
    allot(&sb, "1-4");

    // A:1 sold before the cancellation, A:2 after it (the distributor does
    // not know yet); neither reported before the cancellation.
    let a1 = sell(&sb, "PARTERRE:A:1", "NORMAL", "ADULT")["line"]["line"]
        .as_i64()
        .unwrap();
    next_second();
    let cancelled = json(
        &sb,
        &["performance", "cancel", "1701", "--link", "opera-tourism"],
        0,
    );
    assert_eq!(
        cancelled["result"]["previous"], "in_operation",
        "{cancelled}"
    );
    assert_eq!(cancelled["result"]["state"], "cancelled", "{cancelled}");
    assert_eq!(
        rows(
            &sb,
            "OPERA.sqlite",
            "SELECT p.state, c.state, length(c.changed) FROM performance p
             JOIN performance_state_change c ON c.performance = p.id WHERE p.id = 1701"
        ),
        ["cancelled|cancelled|20"]
    );
    // Cancelling again is refused, and changes nothing.
    let again = json(
        &sb,
        &[
            "performance",
            "cancel",
            "TRAV0115",
            "--link",
            "opera-tourism",
        ],
        1,
    );
    assert!(
        again["reason"]
            .as_str()
            .unwrap()
            .contains("already cancelled"),
        "{again}"
    );
    next_second();
    let a2 = sell(&sb, "PARTERRE:A:2", "NORMAL", "ADULT")["line"]["line"]
        .as_i64()
        .unwrap();

    // The manager books A:1 (flagged for refund) and rejects A:2.
    let processed = export_and_process(&sb, "sales");
    assert_eq!(processed[0]["state"], "applied", "{processed}");
    assert_eq!(
        rows(
            &sb,
            "OPERA.sqlite",
            "SELECT line, status, coalesce(code, '-') FROM sales_line ORDER BY line"
        ),
        [
            format!("{a1}|booked|-"),
            format!("{a2}|rejected|performance-cancelled")
        ]
    );
    assert_eq!(
        rows(
            &sb,
            "OPERA.sqlite",
            "SELECT line, seat, amount, state FROM ticket"
        ),
        [format!("{a1}|50001|8500|valid")]
    );
    let order = json(&sb, &["orders", "show", &format!("T-{a1:06}")], 0);
    assert_eq!(order["order"]["to_refund"], 1, "{order:#}");
    assert_eq!(order["order"]["tickets"][0]["to_refund"], true, "{order:#}");
    let said = messages(&sb, "OPERA", "import-sales");
    assert!(
        said.iter()
            .any(|(c, t)| c == "to-refund" && t.contains(&format!("line id {a1}"))),
        "{said:?}"
    );
    assert!(
        said.iter().any(|(c, t)| c == "performance-cancelled"
            && t.contains("after performance 1701 TRAV0115 was cancelled")),
        "{said:?}"
    );

    // The catalogue carries the state; the distributor follows at once,
    // and its product stays validated (a state is not a change to review).
    let processed = export_and_process(&sb, "catalogue");
    assert_eq!(processed[0]["state"], "applied", "{processed}");
    assert_eq!(
        rows(
            &sb,
            "TOURISM.sqlite",
            "SELECT f.state, p.state FROM performance f
             JOIN product_performance pp ON pp.performance = f.id
             JOIN product p ON p.id = pp.product WHERE f.id = 1"
        ),
        ["cancelled|validated"]
    );
    let refused = json(
        &sb,
        &[
            "sale",
            "sell",
            "--performance",
            "1",
            "--seat",
            "PARTERRE:A:3",
            "--tariff",
            "NORMAL",
            "--audience",
            "ADULT",
        ],
        1,
    );
    assert_eq!(refused["code"], "not-sellable", "{refused}");
    assert!(
        refused["reason"]
            .as_str()
            .unwrap()
            .contains("it is cancelled"),
        "{refused}"
    );
    assert_eq!(
        rows(&sb, "TOURISM.sqlite", "SELECT count(*) FROM sale_line"),
        ["2"]
    );

    // The reconciliation shows 1701 apart: A:1's ticket to refund at the
    // manager, two sales active at the distributor (A:2 rejected there);
    // in text, CSV and HTML.
    let report = json(&sb, &["report", "reconcile", "--link", "opera-tourism"], 1);
    assert_eq!(report["cancelled"][0]["performance"], 1701, "{report:#}");
    assert_eq!(report["cancelled"][0]["to_refund"], 1, "{report:#}");
    assert_eq!(
        report["cancelled"][0]["active_at_distributor"], 2,
        "{report:#}"
    );
    sb.stxd(&[
        "report",
        "reconcile",
        "--link",
        "opera-tourism",
        "--csv",
        "out.csv",
        "--html",
        "out.html",
    ]);
    let csv = std::fs::read_to_string(sb.path().join("out.csv")).unwrap();
    let row = csv
        .lines()
        .find(|l| l.starts_with("cancelled;"))
        .unwrap_or_else(|| panic!("{csv}"));
    assert_eq!(row.split(';').count(), 23, "{row}");
    assert!(
        row.starts_with("cancelled;1701;TRAV0115;")
            && row.contains(";tickets-to-refund;performance 1701 TRAV0115 cancelled at "),
        "{row}"
    );
    let html = std::fs::read_to_string(sb.path().join("out.html")).unwrap();
    assert!(
        html.contains("Cancelled performances (1)")
            && html.contains("1 ticket(s) still to refund at the manager"),
        "{html}"
    );

    // The tickets to refund, then all refunded in one command.
    let listed = json(
        &sb,
        &["sale", "list", "--performance", "1", "--to-refund"],
        0,
    );
    let ids: Vec<i64> = listed["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [a1, a2], "{listed}");
    let done = json(&sb, &["sale", "refund", "--performance", "1", "--all"], 0);
    assert_eq!(done["refunds"].as_array().unwrap().len(), 2, "{done}");
    assert_eq!(
        rows(
            &sb,
            "TOURISM.sqlite",
            "SELECT operation, coalesce(refund_of, 0), active, coalesce(exported_in, 0)
             FROM sale_line ORDER BY id"
        ),
        [
            "SALE|0|0|1".to_owned(),
            "SALE|0|0|1".to_owned(),
            format!("REFUND|{a1}|0|0"),
            format!("REFUND|{a2}|0|0"),
        ]
    );
    let none = json(
        &sb,
        &["sale", "list", "--performance", "1", "--to-refund"],
        0,
    );
    assert_eq!(none["lines"], Value::Array(vec![]), "{none}");

    // The refunds travel back: A:1's ticket is cancelled, the pending
    // account is back to 0.
    export_and_process(&sb, "sales");
    assert_eq!(
        rows(&sb, "OPERA.sqlite", "SELECT line, state FROM ticket"),
        [format!("{a1}|cancelled")]
    );
    assert_eq!(
        rows(
            &sb,
            "OPERA.sqlite",
            "SELECT sum(amount) FROM pending_account_entry"
        ),
        ["0"]
    );
    // The sale never booked and its refund closed together: consistent.
    let report = json(&sb, &["report", "reconcile", "--link", "opera-tourism"], 0);
    assert_eq!(report["consistent"], true, "{report:#}");
    assert_eq!(report["cancelled"][0]["to_refund"], 0, "{report:#}");
    assert_eq!(report["cancelled"][0]["refunded"], 1, "{report:#}");
    assert_eq!(
        report["cancelled"][0]["active_at_distributor"], 0,
        "{report:#}"
    );
}

#[test]
fn refunding_all_needs_a_cancelled_performance() {
    let sb = Sandbox::new();
    sb.first_use_done();
    allot(&sb, "1-2");
    sell(&sb, "PARTERRE:A:1", "NORMAL", "ADULT");
    let refused = json(&sb, &["sale", "refund", "--performance", "1", "--all"], 1);
    assert_eq!(refused["code"], "not-cancelled", "{refused}");
    let listed = sb.stxd(&["sale", "list", "--performance", "1", "--to-refund"]);
    listed.expect_code(1);
    assert!(
        listed.stderr().contains("not cancelled"),
        "{}",
        listed.stderr()
    );
    assert_eq!(
        rows(
            &sb,
            "TOURISM.sqlite",
            "SELECT operation, active FROM sale_line"
        ),
        ["SALE|1"]
    );
}

#[test]
fn a_sale_after_the_closure_is_rejected_and_the_distributor_stops_selling() {
    let sb = Sandbox::new();
    sb.first_use_done();
    allot(&sb, "1-2");
    let a1 = sell(&sb, "PARTERRE:A:1", "NORMAL", "ADULT")["line"]["line"]
        .as_i64()
        .unwrap();
    next_second();
    json(
        &sb,
        &[
            "performance",
            "close",
            "TRAV0115",
            "--link",
            "opera-tourism",
        ],
        0,
    );
    next_second();
    let a2 = sell(&sb, "PARTERRE:A:2", "NORMAL", "ADULT")["line"]["line"]
        .as_i64()
        .unwrap();
    export_and_process(&sb, "sales");
    assert_eq!(
        rows(
            &sb,
            "OPERA.sqlite",
            "SELECT line, status, coalesce(code, '-') FROM sales_line ORDER BY line"
        ),
        [
            format!("{a1}|booked|-"),
            format!("{a2}|rejected|performance-closed")
        ]
    );
    // A sale before a closure needs no refund.
    let said = messages(&sb, "OPERA", "import-sales");
    assert!(!said.iter().any(|(c, _)| c == "to-refund"), "{said:?}");

    export_and_process(&sb, "catalogue");
    assert_eq!(
        rows(
            &sb,
            "TOURISM.sqlite",
            "SELECT state FROM performance WHERE id = 1"
        ),
        ["closed"]
    );
    let refused = sb.stxd(&[
        "sale",
        "sell",
        "--performance",
        "1",
        "--zone",
        "FOSSE",
        "--tariff",
        "NORMAL",
        "--audience",
        "ADULT",
    ]);
    refused.expect_code(1);
    assert!(
        refused.stdout().contains("it is closed"),
        "{}",
        refused.stdout()
    );
}

#[test]
fn a_sale_dated_at_or_after_the_start_is_rejected() {
    let sb = Sandbox::new();
    sb.first_use_done();
    allot(&sb, "1-2");
    let a1 = sell(&sb, "PARTERRE:A:1", "NORMAL", "ADULT")["line"]["line"]
        .as_i64()
        .unwrap();
    let a2 = sell(&sb, "PARTERRE:A:2", "NORMAL", "ADULT")["line"]["line"]
        .as_i64()
        .unwrap();
    sb.stxd(&["export", "sales", "--link", "opera-tourism"])
        .expect_code(0);

    // The distributor's own file, A:1's line dated 30 minutes after the
    // start of 1701 (2037-01-15T20:00:00+01:00), sealed again.
    let inbox = sb.path().join("var/exchange/opera-tourism/to-manager");
    let payload = std::fs::read_to_string(inbox.join("opera-tourism.SALES.00000001.csv")).unwrap();
    let late: String = payload
        .lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split(';').collect();
            if f[0] == a1.to_string() {
                f[2] = "2037-01-15T19:30:00Z";
            }
            format!("{}\n", f.join(";"))
        })
        .collect();
    assert_ne!(late, payload);
    for ext in ["stx", "csv"] {
        std::fs::remove_file(inbox.join(format!("opera-tourism.SALES.00000001.{ext}"))).unwrap();
    }
    crate::util::seal(
        &inbox,
        &sb.demo_secret(),
        stxd::format::Kind::Sales,
        1,
        late.as_bytes(),
        late.lines().count() as u64 - 1,
    );
    let processed = json(&sb, &["process"], 0);
    assert_eq!(processed[0]["state"], "applied", "{processed}");
    assert_eq!(
        rows(
            &sb,
            "OPERA.sqlite",
            "SELECT line, status, coalesce(code, '-') FROM sales_line ORDER BY line"
        ),
        [
            format!("{a1}|rejected|performance-started"),
            format!("{a2}|booked|-")
        ]
    );
    assert_eq!(
        rows(&sb, "OPERA.sqlite", "SELECT line FROM ticket"),
        [a2.to_string()]
    );
}

/// `samples/payloads/catalogue-cancelled.xml`: a master-data load that
/// cancels 1702 is a state change like `stxd performance cancel` (recorded
/// with its time), sent in the next catalogue (version 2, the performance
/// with `state="cancelled"`), followed at once by the distributor.
#[test]
fn the_cancelled_sample_cancels_through_the_catalogue() {
    let sb = Sandbox::new();
    sb.first_use_done();
    sb.stxd(&["load", "OPERA", "samples/payloads/catalogue-cancelled.xml"])
        .expect_code(0);
    assert_eq!(
        rows(
            &sb,
            "OPERA.sqlite",
            "SELECT p.state, c.state FROM performance p
             JOIN performance_state_change c ON c.performance = p.id WHERE p.id = 1702"
        ),
        ["cancelled|cancelled"]
    );
    let processed = export_and_process(&sb, "catalogue");
    assert_eq!(processed[0]["state"], "applied", "{processed}");
    let done = sb
        .path()
        .join("var/exchange/opera-tourism/to-distributor/done");
    let sent = std::fs::read_to_string(done.join("opera-tourism.CATALOGUE.00000002.xml")).unwrap();
    assert!(sent.contains("<catalogue version=\"2\">"), "{sent}");
    assert!(
        sent.lines()
            .any(|l| l.contains("id=\"1702\"") && l.contains("state=\"cancelled\"")),
        "{sent}"
    );
    assert_eq!(
        rows(
            &sb,
            "TOURISM.sqlite",
            "SELECT f.code, f.state, p.state FROM performance f
             JOIN product_performance pp ON pp.performance = f.id
             JOIN product p ON p.id = pp.product ORDER BY f.code"
        ),
        [
            "TRAV0115|in_operation|validated",
            "TRAV0117|cancelled|validated"
        ]
    );
}
