//! Disputed lines (`stxd sales resolve`) on the same-slot demo: a late sale
//! accepted, booked through the reintegration with only its rule set aside
//! and the reconciliation consistent; a sale on a cancelled performance
//! that can never be accepted, then dismissed, the reconciliation
//! consistent too; each resolution in the run log, with who and why.

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

fn reconcile(sb: &Sandbox) -> (i32, Value) {
    let run = sb.stxd(&["--json", "report", "reconcile", "--link", LINK]);
    let doc =
        serde_json::from_str(&run.stdout()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout()));
    (run.code(), doc)
}

fn codes(doc: &Value, list: &str) -> Vec<String> {
    doc[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["code"].as_str().unwrap().to_owned())
        .collect()
}

/// The demo with seats A:1-4 allotted and A:1 sold and booked; then the
/// manager `ends` performance 1701 (`close` or `cancel`) and the
/// distributor, not told yet, sells A:2, which the manager rejects. Returns
/// A:2's line id.
fn rejected_late_sale(ends: &str) -> (Sandbox, i64) {
    let sb = Sandbox::new();
    sb.first_use_done();
    allot(&sb, "1-4");
    sell(&sb, "PARTERRE:A:1", "NORMAL", "ADULT");
    send_sales(&sb);
    next_second();
    sb.stxd(&["performance", ends, "TRAV0115", "--link", LINK])
        .expect_code(0);
    next_second();
    let line = sell(&sb, "PARTERRE:A:2", "NORMAL", "ADULT")["line"]["line"]
        .as_i64()
        .unwrap();
    send_sales(&sb);
    (sb, line)
}

#[test]
fn an_accepted_late_sale_is_booked_once_and_the_reconciliation_is_consistent() {
    let (sb, line) = rejected_late_sale("close");
    let id = line.to_string();
    let (code, doc) = reconcile(&sb);
    assert_eq!(code, 1, "{doc:#}");
    assert!(codes(&doc, "differences").contains(&"rejected-at-manager".to_owned()));
    // The count of lines by status the store keeps (`/metrics` reads it).
    let counted = |sb: &Sandbox| {
        rows(
            sb,
            "OPERA.sqlite",
            "SELECT link || ' ' || status || ' ' || lines FROM sales_line_count
              WHERE lines > 0 ORDER BY 1",
        )
    };
    assert_eq!(
        counted(&sb),
        ["opera-tourism booked 1", "opera-tourism rejected 1"]
    );

    let run = sb.stxd(&[
        "--json",
        "sales",
        "resolve",
        &id,
        "--accept",
        "--reason",
        "sold before the doors closed, sent late",
        "--by",
        "alice",
    ]);
    run.expect_code(0);
    let done: Value = serde_json::from_str(&run.stdout()).unwrap();
    let r = &done["resolution"];
    assert_eq!(r["decision"], "accepted");
    assert_eq!(r["code"], "performance-closed");
    assert_eq!(r["overridden"], serde_json::json!(["performance-closed"]));
    assert_eq!(r["by"], "alice");
    assert!(r["ticket"].is_i64(), "{done:#}");
    assert_eq!(
        rows(
            &sb,
            "OPERA.sqlite",
            &format!(
                "SELECT l.status, t.state, t.amount, r.decision, r.by_user, r.reason
                   FROM sales_line l JOIN ticket t ON t.line = l.line
                   JOIN sales_line_resolution r ON r.line = l.line WHERE l.line = {line}"
            )
        ),
        ["booked|valid|8500|accepted|alice|sold before the doors closed, sent late"]
    );
    assert_eq!(counted(&sb), ["opera-tourism booked 2"]);
    // The run log has it, and the reconciliation is consistent, the line
    // listed as resolved.
    let runs = sb.json(&[
        "runs",
        "list",
        "--institution",
        "OPERA",
        "--kind",
        "resolve-line",
    ]);
    assert_eq!(runs[0]["status"], "ok", "{runs:#}");
    let (code, doc) = reconcile(&sb);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(codes(&doc, "resolved"), ["line-accepted"]);
    let rejects = sb.stxd(&["sales", "rejects", "--link", LINK]);
    rejects.expect_code(0);
    assert_eq!(
        rejects.stdout().lines().count(),
        1,
        "only the header: {}",
        rejects.stdout()
    );

    // Resolved once: a second resolution is refused; one ticket.
    let again = sb.stxd(&["sales", "resolve", &id, "--dismiss", "--reason", "x"]);
    again.expect_code(1);
    assert!(
        again
            .stdout()
            .contains("already resolved: accepted by alice"),
        "{}",
        again.stdout()
    );
    assert_eq!(
        rows(
            &sb,
            "OPERA.sqlite",
            &format!("SELECT count(*) FROM ticket WHERE line = {line}")
        ),
        ["1"]
    );
}

#[test]
fn a_sale_on_a_cancelled_performance_cannot_be_accepted_and_is_dismissed() {
    let (sb, line) = rejected_late_sale("cancel");
    let id = line.to_string();
    let state = |sb: &Sandbox| {
        rows(
            sb,
            "OPERA.sqlite",
            &format!(
                "SELECT l.status, l.code, (SELECT count(*) FROM ticket t WHERE t.line = l.line),
                        (SELECT count(*) FROM sales_line_resolution r WHERE r.line = l.line)
                   FROM sales_line l WHERE l.line = {line}"
            ),
        )
    };
    assert_eq!(state(&sb), ["rejected|performance-cancelled|0|0"]);

    // Never overridden: refused, nothing changed, the refusal in a failed run.
    let refused = sb.stxd(&["sales", "resolve", &id, "--accept", "--reason", "please"]);
    refused.expect_code(1);
    assert!(
        refused
            .stdout()
            .contains("performance-cancelled can never be overridden"),
        "{}",
        refused.stdout()
    );
    assert_eq!(state(&sb), ["rejected|performance-cancelled|0|0"]);
    let runs = sb.json(&[
        "runs",
        "list",
        "--institution",
        "OPERA",
        "--kind",
        "resolve-line",
    ]);
    assert_eq!(runs[0]["status"], "failed", "{runs:#}");
    // Nor can a rule be named that may not be overridden.
    sb.stxd(&[
        "sales",
        "resolve",
        &id,
        "--accept",
        "--reason",
        "x",
        "--override",
        "seat-sold-twice",
    ])
    .expect_code(1);

    // Dismissed: closed, with who and why; the reconciliation is
    // consistent, the line listed as resolved.
    let run = sb.stxd_env(
        &[
            "--json",
            "sales",
            "resolve",
            &id,
            "--dismiss",
            "--reason",
            "the show is cancelled",
        ],
        &[("USER", "bob")],
    );
    run.expect_code(0);
    let done: Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(done["resolution"]["decision"], "dismissed");
    assert_eq!(done["resolution"]["by"], "bob");
    assert_eq!(state(&sb), ["rejected|performance-cancelled|0|1"]);
    let (code, doc) = reconcile(&sb);
    assert_eq!(code, 0, "{doc:#}");
    assert_eq!(codes(&doc, "resolved"), ["line-dismissed"]);
    assert_eq!(
        doc["pending_account"]["dismissed"][0]["minor"], 8500,
        "{doc:#}"
    );
    let rejects = sb.stxd(&["sales", "rejects", "--link", LINK]);
    assert_eq!(rejects.stdout().lines().count(), 1, "{}", rejects.stdout());
}

#[test]
fn only_a_rejected_line_can_be_resolved() {
    let sb = Sandbox::new();
    sb.first_use_done();
    let run = sb.stxd(&["sales", "resolve", "42", "--dismiss", "--reason", "x"]);
    run.expect_code(1);
    assert!(run.stdout().contains("no such line"), "{}", run.stdout());
    // --accept or --dismiss, exactly one; a reason always.
    sb.stxd(&["sales", "resolve", "42", "--reason", "x"])
        .expect_code(2);
    sb.stxd(&[
        "sales",
        "resolve",
        "42",
        "--accept",
        "--dismiss",
        "--reason",
        "x",
    ])
    .expect_code(2);
    sb.stxd(&["sales", "resolve", "42", "--dismiss"])
        .expect_code(2);
}
