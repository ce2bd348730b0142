//! A setup problem is not a bad file: a sales file that arrives while the
//! manager's booking setup is incomplete waits in the inbox, its sequence
//! not consumed, with the fix named; it applies once the setup is fixed.
//! And the operations whose failure would only show later (allotting
//! places, exporting a contingent or a catalogue) refuse at once, in the
//! words of `stxd check`.

use serde_json::Value;

use crate::util::{Sandbox, json};

const LINK: [&str; 2] = ["--link", "opera-tourism"];

fn side(status: &Value, side: &str) -> Value {
    status["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["link"] == "opera-tourism" && l["side"] == side)
        .unwrap_or_else(|| panic!("no {side} side in {status:#}"))
        .clone()
}

fn manager_sql(sb: &Sandbox, sql: &str) {
    let conn = rusqlite::Connection::open(sb.path().join("var/state/OPERA.sqlite")).unwrap();
    conn.execute_batch(sql).unwrap();
}

fn manager_count(sb: &Sandbox, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(sb.path().join("var/state/OPERA.sqlite")).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// (file, state, code) of each file `process --json` handled.
fn handled(processed: &Value) -> Vec<(String, String, Option<String>)> {
    processed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["file"].as_str().unwrap().to_owned(),
                p["state"].as_str().unwrap().to_owned(),
                p["code"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// The demo after first use, with seats A:1-10 of performance 1701 allotted
/// and the contingent applied at the distributor.
fn selling_demo() -> Sandbox {
    let sb = Sandbox::new();
    sb.first_use_done();
    sb.allot("PARTERRE:A:1-10");
    let mut args = vec!["export", "contingent"];
    args.extend(LINK);
    sb.stxd(&args).expect_code(0);
    sb.stxd(&["process"]).expect_code(0);
    sb
}

#[test]
fn a_sales_file_waits_for_a_missing_pending_account_setup_then_applies_in_order() {
    let sb = selling_demo();
    // Ops break the manager's setup: no payment method allows the pending
    // account any more.
    manager_sql(&sb, "UPDATE payment_method SET allows_pending_account = 0");
    sb.sell("PARTERRE:A:1");
    let mut args = vec!["export", "sales"];
    args.extend(LINK);
    sb.stxd(&args).expect_code(0);

    let processed = json(&sb, &["process"], 0);
    assert_eq!(
        handled(&processed),
        [(
            "opera-tourism.SALES.00000001.stx".to_owned(),
            "held".to_owned(),
            Some("setup".to_owned())
        )],
        "{processed:#}"
    );
    let detail = processed[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("pending account") && detail.contains("stxd check"),
        "{detail}"
    );
    // Still in the inbox, nothing in error/, the sequence not consumed and
    // nothing booked.
    let inbox = sb.path().join("var/exchange/opera-tourism/to-manager");
    assert!(inbox.join("opera-tourism.SALES.00000001.stx").is_file());
    assert!(
        !inbox
            .join("error/opera-tourism.SALES.00000001.stx")
            .exists()
    );
    assert_eq!(
        manager_count(
            &sb,
            "SELECT count(*) FROM file_journal WHERE kind = 'SALES' AND direction = 'in'"
        ),
        0
    );
    assert_eq!(manager_count(&sb, "SELECT count(*) FROM ticket"), 0);

    // stxd status says why, and counts it as needing attention.
    let status = json(&sb, &["status"], 0);
    let manager = side(&status, "manager");
    assert_eq!(manager["attention"], 1, "{manager:#}");
    let held = &manager["held"][0];
    assert_eq!(
        held["file"], "opera-tourism.SALES.00000001.stx",
        "{manager:#}"
    );
    assert!(
        held["reason"]
            .as_str()
            .unwrap()
            .starts_with("held for setup: "),
        "{manager:#}"
    );

    // A later sales file waits behind it, for its turn.
    sb.sell("PARTERRE:A:2");
    sb.stxd(&args).expect_code(0);
    let processed = json(&sb, &["process"], 0);
    assert_eq!(
        handled(&processed),
        [
            (
                "opera-tourism.SALES.00000001.stx".to_owned(),
                "held".to_owned(),
                Some("setup".to_owned())
            ),
            (
                "opera-tourism.SALES.00000002.stx".to_owned(),
                "held".to_owned(),
                Some("sequence-gap".to_owned())
            )
        ],
        "{processed:#}"
    );

    // The fix: both apply, in order, every sale booked once.
    manager_sql(&sb, "UPDATE payment_method SET allows_pending_account = 1");
    let processed = json(&sb, &["process"], 0);
    assert_eq!(
        handled(&processed),
        [
            (
                "opera-tourism.SALES.00000001.stx".to_owned(),
                "applied".to_owned(),
                None
            ),
            (
                "opera-tourism.SALES.00000002.stx".to_owned(),
                "applied".to_owned(),
                None
            )
        ],
        "{processed:#}"
    );
    assert_eq!(
        manager_count(&sb, "SELECT count(*) FROM ticket WHERE state = 'valid'"),
        2
    );
    let status = json(&sb, &["status"], 0);
    assert_eq!(side(&status, "manager")["attention"], 0, "{status:#}");
}

#[test]
fn allotting_and_exporting_refuse_while_the_setup_has_an_error_in_the_words_of_check() {
    let sb = Sandbox::new();
    sb.first_use_done();
    // A point of sale out of operation: the channel has no ready one.
    manager_sql(&sb, "UPDATE point_of_sale SET in_operation = 0");
    let check = sb.stxd(&["check"]);
    check.expect_code(1);
    let finding = check
        .stdout()
        .lines()
        .find(|l| l.contains("is not in operation"))
        .unwrap_or_else(|| panic!("{}", check.stdout()))
        .trim()
        .to_owned();
    // The finding's object and problem, as check prints them.
    let words = finding
        .strip_prefix("error")
        .unwrap_or(&finding)
        .trim()
        .to_owned();

    let mut args = vec![
        "contingent",
        "allocate",
        "--performance",
        "1701",
        "--seats",
        "PARTERRE:A:1-2",
    ];
    args.extend(LINK);
    let allot = sb.stxd(&args);
    allot.expect_code(1);
    assert!(
        allot
            .stdout()
            .contains("refused: allotment on link opera-tourism")
            && allot.stdout().contains(&words),
        "{words}\n{}",
        allot.stdout()
    );
    assert_eq!(manager_count(&sb, "SELECT count(*) FROM allotment_seat"), 0);

    for kind in ["catalogue", "contingent"] {
        let mut args = vec!["export", kind];
        args.extend(LINK);
        let export = sb.stxd(&args);
        assert_ne!(export.code(), 0, "{kind}: {}", export.stdout());
        let said = format!("{}{}", export.stdout(), export.stderr());
        assert!(
            said.contains(&format!("{kind} export on link opera-tourism")) && said.contains(&words),
            "{kind}: {words}\n{said}"
        );
    }
    // No sequence was used by the refused exports: the next ones are 2
    // (catalogue, after first use's 1) and 1 (contingent).
    manager_sql(&sb, "UPDATE point_of_sale SET in_operation = 1");
    sb.stxd(&args).expect_code(0);
    let catalogue = json(&sb, &["export", "catalogue", "--link", "opera-tourism"], 0);
    assert_eq!(catalogue["sequence"], 2, "{catalogue}");
    let contingent = json(&sb, &["export", "contingent", "--link", "opera-tourism"], 0);
    assert_eq!(contingent["sequence"], 1, "{contingent}");
}
