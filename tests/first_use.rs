//! The manual's "first use" #1 and #2, end to end through the `stxd` binary
//! on the same-slot demo: the manager exports its seat plan and catalogue,
//! the distributor imports them, the catalogue parks on exactly the mappings
//! ops must fill, the samples' mapping CSV fills them, the files resume, and
//! the products created are validated and assigned to a sales profile.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::util::{Sandbox, json, rows};

/// (kind, manager id) of the rows `mapping list --pending` shows.
fn pending(sb: &Sandbox) -> BTreeSet<(String, i64)> {
    json(sb, &["mapping", "list", "--pending"], 0)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap().to_owned(),
                r["manager_id"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn states(processed: &Value) -> Vec<(String, String)> {
    processed
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["file"].as_str().unwrap().to_owned(),
                p["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn first_use_one_and_two() {
    let sb = Sandbox::new();
    sb.ready();

    // #2 at the manager: the seat plan and a catalogue export (sequence 1 each).
    let seatplan = json(&sb, &["export", "seatplan", "--link", "opera-tourism"], 0);
    assert_eq!(seatplan["sequence"], 1, "{seatplan}");
    let catalogue = json(&sb, &["export", "catalogue", "--link", "opera-tourism"], 0);
    assert_eq!(catalogue["sequence"], 1, "{catalogue}");

    // #1 at the distributor: the files arrive and wait for the mappings.
    let processed = json(&sb, &["process", "--link", "opera-tourism"], 0);
    assert_eq!(
        states(&processed),
        [
            (
                "opera-tourism.SEATPLAN.00000001.stx".to_owned(),
                "parked".to_owned()
            ),
            (
                "opera-tourism.CATALOGUE.00000001.stx".to_owned(),
                "parked".to_owned()
            ),
        ]
    );
    let expected: BTreeSet<(String, i64)> = [
        ("season", 1001),
        ("activity", 1401),
        ("vat_code", 1101),
        ("tariff_type", 1201),
        ("tariff_type", 1202),
        ("audience_subcategory", 1301),
        ("audience_subcategory", 1302),
        ("seat_category", 2001),
        ("seat_category", 2002),
        ("seat_category", 2003),
        ("seat_category", 2004),
        ("configuration", 3101),
    ]
    .into_iter()
    .map(|(k, i)| (k.to_owned(), i))
    .collect();
    assert_eq!(pending(&sb), expected);
    let parked = sb
        .path()
        .join("var/exchange/opera-tourism/to-distributor/parked");
    assert!(
        parked
            .join("opera-tourism.CATALOGUE.00000001.stx")
            .is_file()
    );
    assert!(
        parked
            .join("opera-tourism.CATALOGUE.00000001.xml")
            .is_file()
    );
    // Nothing of the catalogue was applied.
    let products = json(&sb, &["catalogue", "list"], 0);
    assert_eq!(
        products["products"].as_array().unwrap().len(),
        0,
        "{products}"
    );

    // Ops fill the mapping from the samples' CSV; the parked files resume by
    // themselves (the seat plan first: the catalogue needs its configuration).
    let imported = json(
        &sb,
        &["mapping", "import", "samples/tourism/mapping.csv"],
        0,
    );
    let resumed = imported["resumed"]
        .as_array()
        .expect("resumed files listed");
    assert_eq!(resumed.len(), 2, "{imported}");
    assert!(
        resumed.iter().all(|r| r["state"] == "applied"),
        "{imported}"
    );
    assert!(pending(&sb).is_empty());
    assert!(!parked.join("opera-tourism.CATALOGUE.00000001.stx").exists());

    // What the catalogue created, to validate.
    let products = json(&sb, &["catalogue", "list", "--to-validate"], 0);
    let products = products["products"].as_array().unwrap().clone();
    assert_eq!(products.len(), 1, "{products:?}");
    assert_eq!(products[0]["code"], "TRAV-BIL");
    assert_eq!(products[0]["performances"].as_array().unwrap().len(), 2);
    let id = products[0]["id"].as_i64().unwrap().to_string();

    sb.stxd(&["catalogue", "validate", "--all"]).expect_code(0);
    sb.stxd(&["catalogue", "assign-profile", &id, "GUICHET"])
        .expect_code(0);
    let listed = json(&sb, &["catalogue", "list"], 0);
    assert_eq!(listed["products"][0]["state"], "validated", "{listed}");
    assert_eq!(
        json(&sb, &["catalogue", "list", "--to-validate"], 0)["products"],
        Value::Array(vec![])
    );
    sb.stxd(&["mapping", "check", "--link", "opera-tourism"])
        .expect_code(0);

    // Re-exporting the unchanged catalogue changes nothing at the distributor.
    json(&sb, &["export", "catalogue", "--link", "opera-tourism"], 0);
    let again = json(&sb, &["process", "--link", "opera-tourism"], 0);
    assert_eq!(
        states(&again),
        [(
            "opera-tourism.CATALOGUE.00000002.stx".to_owned(),
            "applied".to_owned()
        )]
    );
    let listed = json(&sb, &["catalogue", "list"], 0);
    assert_eq!(listed["products"][0]["state"], "validated", "{listed}");

    // Every step left an execution log.
    let runs = json(&sb, &["runs", "list", "--institution", "TOURISM"], 0);
    let kinds: Vec<(&str, &str)> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["kind"].as_str().unwrap(), r["status"].as_str().unwrap()))
        .collect();
    assert!(kinds.contains(&("import-catalogue", "parked")), "{kinds:?}");
    assert!(kinds.contains(&("import-catalogue", "ok")), "{kinds:?}");
    assert!(kinds.contains(&("mapping-import", "ok")), "{kinds:?}");
    let parked_run = runs
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "import-catalogue" && r["status"] == "parked")
        .unwrap()["id"]
        .as_i64()
        .unwrap()
        .to_string();
    let shown = json(
        &sb,
        &["runs", "show", &parked_run, "--institution", "TOURISM"],
        0,
    );
    let missing = shown["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["code"] == "mapping-pending")
        .count();
    assert_eq!(missing, 12, "{shown}");
}

#[test]
#[allow(clippy::disallowed_methods)] // the test plays an operator moving files by hand
fn a_replayed_file_is_applied_once_and_a_gap_is_held() {
    let sb = Sandbox::new();
    sb.ready();
    sb.stxd(&["mapping", "import", "samples/tourism/mapping.csv"])
        .expect_code(0);
    json(&sb, &["export", "seatplan", "--link", "opera-tourism"], 0);
    let first = json(&sb, &["process"], 0);
    assert_eq!(
        states(&first),
        [(
            "opera-tourism.SEATPLAN.00000001.stx".to_owned(),
            "applied".to_owned()
        )]
    );

    // The same pair dropped again by hand: recognised, nothing applied twice.
    let done = sb
        .path()
        .join("var/exchange/opera-tourism/to-distributor/done");
    let inbox = sb.path().join("var/exchange/opera-tourism/to-distributor");
    for ext in ["stx", "xml"] {
        let name = format!("opera-tourism.SEATPLAN.00000001.{ext}");
        std::fs::copy(done.join(&name), inbox.join(&name)).unwrap();
    }
    let replay = json(&sb, &["process"], 0);
    assert_eq!(
        states(&replay),
        [(
            "opera-tourism.SEATPLAN.00000001.stx".to_owned(),
            "already-applied".to_owned()
        )]
    );

    // Sequence 3 before 2: held in the inbox until 2 arrives.
    json(&sb, &["export", "seatplan", "--link", "opera-tourism"], 0);
    json(&sb, &["export", "seatplan", "--link", "opera-tourism"], 0);
    let hidden = sb.path().join("hidden");
    std::fs::create_dir_all(&hidden).unwrap();
    for ext in ["stx", "xml"] {
        let name = format!("opera-tourism.SEATPLAN.00000002.{ext}");
        std::fs::rename(inbox.join(&name), hidden.join(&name)).unwrap();
    }
    let held = json(&sb, &["process"], 0);
    assert_eq!(
        states(&held),
        [(
            "opera-tourism.SEATPLAN.00000003.stx".to_owned(),
            "held".to_owned()
        )]
    );
    assert!(inbox.join("opera-tourism.SEATPLAN.00000003.stx").is_file());
    for ext in ["stx", "xml"] {
        let name = format!("opera-tourism.SEATPLAN.00000002.{ext}");
        std::fs::rename(hidden.join(&name), inbox.join(&name)).unwrap();
    }
    let both = json(&sb, &["process"], 0);
    assert_eq!(
        states(&both),
        [
            (
                "opera-tourism.SEATPLAN.00000002.stx".to_owned(),
                "applied".to_owned()
            ),
            (
                "opera-tourism.SEATPLAN.00000003.stx".to_owned(),
                "applied".to_owned()
            ),
        ]
    );
}

#[test]
fn a_tampered_file_ends_in_error_with_its_reason_and_changes_nothing() {
    let sb = Sandbox::new();
    sb.ready();
    json(&sb, &["export", "seatplan", "--link", "opera-tourism"], 0);
    let inbox = sb.path().join("var/exchange/opera-tourism/to-distributor");
    let payload = inbox.join("opera-tourism.SEATPLAN.00000001.xml");
    let mut bytes = std::fs::read(&payload).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x20;
    std::fs::write(&payload, bytes).unwrap();
    let run = sb.stxd(&["--json", "process"]);
    run.expect_code(1);
    let out: Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(out[0]["state"], "rejected", "{out}");
    let reason =
        std::fs::read_to_string(inbox.join("error/opera-tourism.SEATPLAN.00000001.stx.reason"))
            .unwrap();
    assert!(reason.contains("code: envelope-digest"), "{reason}");
    assert!(
        inbox
            .join("error/opera-tourism.SEATPLAN.00000001.xml")
            .is_file()
    );
    assert!(
        pending(&sb).is_empty(),
        "a rejected file creates no mapping row"
    );
    let runs = json(
        &sb,
        &[
            "runs",
            "list",
            "--institution",
            "TOURISM",
            "--status",
            "failed",
        ],
        0,
    );
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");
}

#[test]
fn the_harness_reaches_first_use_done() {
    let sb = Sandbox::new();
    sb.first_use_done();
    let listed = json(&sb, &["catalogue", "list"], 0);
    assert_eq!(listed["products"][0]["state"], "validated", "{listed}");
    assert_eq!(listed["products"][0]["profiles"][0], "GUICHET", "{listed}");
}

/// Rows of a manager-store query, as strings, for exact assertions.

#[test]
fn first_use_three_seats_and_money() {
    let sb = Sandbox::new();
    sb.first_use_done();
    let link = ["--link", "opera-tourism"];

    // Manager: allot 10 seats of row A and 5 places of the standing zone
    // for performance 1701, then export the contingent.
    let mut args = vec![
        "contingent",
        "allocate",
        "--performance",
        "1701",
        "--seats",
        "PARTERRE:A:1-10",
    ];
    args.extend(link);
    sb.stxd(&args).expect_code(0);
    let mut args = vec![
        "contingent",
        "allocate",
        "--performance",
        "1701",
        "--zone",
        "FOSSE",
        "--quantity",
        "5",
    ];
    args.extend(link);
    sb.stxd(&args).expect_code(0);
    json(&sb, &["export", "contingent", "--link", "opera-tourism"], 0);

    // Distributor: import, sell two seats and a standing place, refund one seat.
    let processed = json(&sb, &["process"], 0);
    assert_eq!(
        states(&processed),
        [(
            "opera-tourism.CONTINGENT.00000001.stx".to_owned(),
            "applied".to_owned()
        )]
    );
    let sell = |place: &[&str], audience: &str| {
        let mut args = vec![
            "sale",
            "sell",
            "--performance",
            "1",
            "--tariff",
            "NORMAL",
            "--audience",
            audience,
        ];
        args.extend_from_slice(place);
        json(&sb, &args, 0)["line"]["line"].as_i64().unwrap()
    };
    let a1 = sell(&["--seat", "PARTERRE:A:1"], "ADULT");
    let a2 = sell(&["--seat", "PARTERRE:A:2"], "CHILD");
    let _standing = sell(&["--zone", "FOSSE"], "ADULT");
    // A seat outside the contingent and a seat already sold are refused.
    sb.stxd(&[
        "sale",
        "sell",
        "--performance",
        "1",
        "--tariff",
        "NORMAL",
        "--audience",
        "ADULT",
        "--seat",
        "PARTERRE:B:1",
    ])
    .expect_code(1);
    sb.stxd(&[
        "sale",
        "sell",
        "--performance",
        "1",
        "--tariff",
        "NORMAL",
        "--audience",
        "ADULT",
        "--seat",
        "PARTERRE:A:1",
    ])
    .expect_code(1);
    sb.stxd(&["sale", "refund", &a2.to_string()]).expect_code(0);
    json(&sb, &["export", "sales", "--link", "opera-tourism"], 0);

    // Manager: reintegration.
    let processed = json(&sb, &["process"], 0);
    assert_eq!(
        states(&processed),
        [(
            "opera-tourism.SALES.00000001.stx".to_owned(),
            "applied".to_owned()
        )]
    );

    // One order per distributor order, on the stx_file channel, its point
    // of sale, the pending account, the authorised contact.
    assert_eq!(
        rows(
            &sb,
            "OPERA.sqlite",
            "SELECT reference, channel, point_of_sale, payment_method, contact FROM sales_order ORDER BY reference"
        ),
        [
            format!("T-{a1:06}|5001|5101|5201|5301"),
            format!("T-{a2:06}|5001|5101|5201|5301"),
            format!("T-{:06}|5001|5101|5201|5301", a2 + 1),
        ]
    );
    // Tickets: seat A1 valid (8500, adult full price), seat A2 cancelled by
    // its refund (4250, child), one standing place valid (2500).
    assert_eq!(
        rows(
            &sb,
            "OPERA.sqlite",
            "SELECT coalesce(seat, 'zone ' || zone), amount, currency, state FROM ticket ORDER BY line"
        ),
        [
            "50001|8500|EUR|valid",
            "50002|4250|EUR|cancelled",
            "zone 3201|2500|EUR|valid"
        ]
    );
    // The pending account holds the two valid tickets.
    assert_eq!(
        rows(
            &sb,
            "OPERA.sqlite",
            "SELECT sum(amount) FROM pending_account_entry"
        ),
        ["11000"]
    );
    // Seat states: A1 sold (a valid ticket), A2 back in the distributor's
    // contingent, the other eight still allotted; the contingent version is acknowledged.
    assert_eq!(
        rows(
            &sb,
            "OPERA.sqlite",
            "SELECT count(*), min(state), max(state) FROM allotment_seat WHERE performance = 1701"
        ),
        ["10|allotted|allotted"]
    );
    assert_eq!(
        rows(
            &sb,
            "OPERA.sqlite",
            "SELECT version, exported, acknowledged FROM allotment WHERE performance = 1701"
        ),
        ["2|2|2"]
    );

    // The reconciliation shows no difference.
    let html = sb.path().join("reconcile.html");
    let report = json(
        &sb,
        &[
            "report",
            "reconcile",
            "--link",
            "opera-tourism",
            "--html",
            html.to_str().unwrap(),
        ],
        0,
    );
    assert_eq!(report["consistent"], true, "{report:#}");
    assert!(std::fs::read_to_string(&html).unwrap().contains("<svg"));

    // Replaying the same sales file books nothing twice.
    let done = sb.path().join("var/exchange/opera-tourism/to-manager/done");
    let inbox = sb.path().join("var/exchange/opera-tourism/to-manager");
    for ext in ["stx", "csv"] {
        let name = format!("opera-tourism.SALES.00000001.{ext}");
        std::fs::copy(done.join(&name), inbox.join(&name)).unwrap();
    }
    let replay = json(&sb, &["process"], 0);
    assert_eq!(
        states(&replay),
        [(
            "opera-tourism.SALES.00000001.stx".to_owned(),
            "already-applied".to_owned()
        )]
    );

    // A second file repeating earlier lines (the distributor's export marks
    // are reset, as after a restore) books only what is new.
    let conn = rusqlite::Connection::open(sb.path().join("var/state/TOURISM.sqlite")).unwrap();
    conn.execute("UPDATE sale_line SET exported_in = NULL", [])
        .unwrap();
    drop(conn);
    sell(&["--seat", "PARTERRE:A:3"], "ADULT");
    json(&sb, &["export", "sales", "--link", "opera-tourism"], 0);
    json(&sb, &["process"], 0);
    assert_eq!(
        rows(
            &sb,
            "OPERA.sqlite",
            "SELECT count(*), sum(state = 'valid') FROM ticket"
        ),
        ["4|3"]
    );
    assert_eq!(
        rows(
            &sb,
            "OPERA.sqlite",
            "SELECT sum(amount) FROM pending_account_entry"
        ),
        ["19500"]
    );
    let report = json(&sb, &["report", "reconcile", "--link", "opera-tourism"], 0);
    assert_eq!(report["consistent"], true, "{report:#}");

    // Safe shrink: two unsold seats taken back are held until the
    // distributor acknowledges the new version, then returned.
    let mut args = vec![
        "contingent",
        "release",
        "--performance",
        "1701",
        "--seats",
        "PARTERRE:A:9-10",
    ];
    args.extend(link);
    sb.stxd(&args).expect_code(0);
    let held = "SELECT count(*) FROM allotment_seat WHERE performance = 1701 AND state = 'held'";
    assert_eq!(rows(&sb, "OPERA.sqlite", held), ["2"]);
    json(&sb, &["export", "contingent", "--link", "opera-tourism"], 0);
    json(&sb, &["process"], 0); // the distributor applies the new snapshot
    assert_eq!(
        rows(&sb, "OPERA.sqlite", held),
        ["2"],
        "held until acknowledged"
    );
    json(&sb, &["export", "sales", "--link", "opera-tourism"], 0);
    json(&sb, &["process"], 0); // the acknowledgement reaches the manager
    assert_eq!(rows(&sb, "OPERA.sqlite", held), ["0"]);
    let report = json(&sb, &["report", "reconcile", "--link", "opera-tourism"], 0);
    assert_eq!(report["consistent"], true, "{report:#}");
    let cat1 = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["seat_category_code"] == "CAT1")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(cat1["manager"]["returned"], 2, "{report:#}");
    assert_eq!(cat1["manager"]["allotted"], 8, "{report:#}");
}

#[test]
fn a_signed_sales_file_with_structural_damage_applies_nothing() {
    let sb = Sandbox::new();
    sb.first_use_done();
    sb.allot("PARTERRE:A:1-4");
    json(&sb, &["export", "contingent", "--link", "opera-tourism"], 0);
    json(&sb, &["process"], 0);
    for seat in ["PARTERRE:A:1", "PARTERRE:A:2"] {
        sb.stxd(&[
            "sale",
            "sell",
            "--performance",
            "1",
            "--seat",
            seat,
            "--tariff",
            "NORMAL",
            "--audience",
            "ADULT",
        ])
        .expect_code(0);
    }
    json(&sb, &["export", "sales", "--link", "opera-tourism"], 0);

    // The distributor's own, correctly signed file, but its last sale line
    // has a malformed amount: the first line is valid, yet nothing applies.
    let inbox = sb.path().join("var/exchange/opera-tourism/to-manager");
    let payload = std::fs::read_to_string(inbox.join("opera-tourism.SALES.00000001.csv")).unwrap();
    let damaged =
        payload
            .replacen(";8500;EUR;", ";85.00;EUR;", 2)
            .replacen(";85.00;EUR;", ";8500;EUR;", 1);
    assert_ne!(damaged, payload);
    for ext in ["stx", "csv"] {
        std::fs::remove_file(inbox.join(format!("opera-tourism.SALES.00000001.{ext}"))).unwrap();
    }
    let records = damaged.lines().count() as u64 - 1;
    crate::util::seal(
        &inbox,
        &sb.demo_secret(),
        stxd::format::Kind::Sales,
        1,
        damaged.as_bytes(),
        records,
    );

    let out = sb.stxd(&["--json", "process"]);
    out.expect_code(1);
    let processed: Value = serde_json::from_str(&out.stdout()).unwrap();
    assert_eq!(processed[0]["state"], "rejected", "{processed}");
    assert_eq!(processed[0]["code"], "money-decimals", "{processed}");
    for table in [
        "ticket",
        "sales_order",
        "sales_line",
        "pending_account_entry",
    ] {
        assert_eq!(
            rows(
                &sb,
                "OPERA.sqlite",
                &format!("SELECT count(*) FROM {table}")
            ),
            ["0"],
            "{table}"
        );
    }
    assert_eq!(
        rows(
            &sb,
            "OPERA.sqlite",
            "SELECT state FROM file_journal WHERE kind = 'SALES'"
        ),
        ["rejected"]
    );
    let reason =
        std::fs::read_to_string(inbox.join("error/opera-tourism.SALES.00000001.stx.reason"))
            .unwrap();
    assert!(
        reason.contains("position: line 3, field amount"),
        "{reason}"
    );
}
