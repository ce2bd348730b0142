//! `stxd report reconcile`: both stores filled by direct SQL after first use
//! #1–#2 (a consistent state, then each kind of difference), the report read
//! through the real binary.

use std::path::Path;

use rusqlite::Connection;
use serde_json::Value;

use crate::util::Sandbox;

const LINK: &str = "opera-tourism";

fn db(sb: &Sandbox, code: &str) -> Connection {
    let conn = Connection::open(sb.path().join(format!("var/state/{code}.sqlite"))).unwrap();
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    conn
}

/// The consistent state: OPERA allotted PARTERRE A1–A4 and 10 FOSSE places of
/// performance 1701 (version 1, exported and acknowledged); TOURISM applied
/// version 1, sold A1 (85.00), a FOSSE place (25.00) and A2 (42.50, child),
/// refunded A2; all four lines went in SALES file 1, which OPERA applied.
fn consistent() -> Sandbox {
    let sb = Sandbox::new();
    sb.first_use_done();
    let m = db(&sb, "OPERA");
    m.execute_batch(
        "INSERT INTO allotment (link, performance, version, exported, acknowledged)
             VALUES ('opera-tourism', 1701, 1, 1, 1);
         INSERT INTO allotment_seat (performance, seat, link, state)
             SELECT 1701, id, 'opera-tourism', 'allotted' FROM seat WHERE id BETWEEN 50001 AND 50004;
         INSERT INTO allotment_zone (performance, zone, link, quantity) VALUES (1701, 3201, 'opera-tourism', 10);
         INSERT INTO sales_order (id, link, reference, channel, point_of_sale, payment_method, contact, created)
             VALUES (1, 'opera-tourism', 'T-000001', 5001, 5101, 5201, 5301, 1796119200000000);
         INSERT INTO ticket (id, sales_order, link, line, performance, seat, zone, seat_category, tariff_type,
                 audience_subcategory, amount, currency, vat_code, sold_at, state, refund_line, cancelled_at) VALUES
             (1, 1, 'opera-tourism', 1, 1701, 50001, NULL, 2001, 1201, 1301, 8500, 'EUR', 1101, 1796119200000000, 'valid', NULL, NULL),
             (2, 1, 'opera-tourism', 2, 1701, NULL, 3201, 2004, 1201, 1301, 2500, 'EUR', 1101, 1796119200000000, 'valid', NULL, NULL),
             (3, 1, 'opera-tourism', 3, 1701, 50002, NULL, 2001, 1201, 1302, 4250, 'EUR', 1101, 1796119200000000, 'cancelled', 4, 1796122800000000);
         INSERT INTO run (id, kind, link, file, started, ended, status)
             VALUES (900, 'import-sales', 'opera-tourism', 'f1', '2026-12-01T12:00:00Z', '2026-12-01T12:00:00Z', 'ok');
         INSERT INTO sales_line (link, line, operation, status, run, position, record, ticket) VALUES
             ('opera-tourism', 1, 'SALE', 'booked', 900, 2, 'r', 1),
             ('opera-tourism', 2, 'SALE', 'booked', 900, 3, 'r', 2),
             ('opera-tourism', 3, 'SALE', 'booked', 900, 4, 'r', 3),
             ('opera-tourism', 4, 'REFUND', 'booked', 900, 5, 'r', 3);",
    )
    .unwrap();
    journal_sales(&m, 1, "applied");
    let d = db(&sb, "TOURISM");
    d.execute_batch(
        "INSERT INTO contingent_snapshot (performance, link, version, applied) VALUES (1, 'opera-tourism', 1, 'x');
         INSERT INTO contingent_seat (performance, seat)
             SELECT 1, local_id FROM mapping WHERE kind = 'seat' AND manager_id BETWEEN 50001 AND 50004;
         INSERT INTO contingent_zone (performance, zone, quantity) VALUES (1, 1, 10);",
    )
    .unwrap();
    sale(
        &d,
        1,
        "SALE",
        None,
        Some(50001),
        7501,
        7401,
        8500,
        true,
        Some(1),
    );
    sale(&d, 2, "SALE", None, None, 7504, 7401, 2500, true, Some(1));
    sale(
        &d,
        3,
        "SALE",
        None,
        Some(50002),
        7501,
        7402,
        4250,
        false,
        Some(1),
    ); // refunded by 4
    sale(
        &d,
        4,
        "REFUND",
        Some(3),
        Some(50002),
        7501,
        7402,
        4250,
        false,
        Some(1),
    );
    sb
}

fn journal_sales(m: &Connection, sequence: i64, state: &str) {
    m.execute(
        "INSERT INTO file_journal (link, kind, direction, sequence, sha256, file_name, state, created, updated)
         VALUES ('opera-tourism', 'SALES', 'in', ?1, ?2, ?3, ?4, 'x', 'x')",
        (
            sequence,
            format!("{sequence:064x}"),
            format!("opera-tourism.SALES.{sequence:08}.csv"),
            state,
        ),
    )
    .unwrap();
}

/// A distributor line of performance 1701 (local 1), tariff NORMAL, VAT
/// TVA-R: a seat (by its manager id), or FOSSE when `seat` is None.
#[allow(clippy::too_many_arguments)]
fn sale(
    d: &Connection,
    id: i64,
    operation: &str,
    refund_of: Option<i64>,
    seat: Option<i64>,
    category: i64,
    audience: i64,
    amount: i64,
    active: bool,
    exported_in: Option<i64>,
) {
    let local_seat: Option<i64> = seat.map(|s| {
        d.query_row(
            "SELECT local_id FROM mapping WHERE kind = 'seat' AND manager_id = ?1",
            [s],
            |r| r.get(0),
        )
        .unwrap()
    });
    let zone = if seat.is_none() { Some(1) } else { None };
    d.execute(
        "INSERT INTO sale_line (id, link, operation, time, order_ref, refund_of, product, performance, seat, zone,
             seat_category, tariff_type, audience_subcategory, amount, currency, vat_code, active, exported_in)
         VALUES (?1, 'opera-tourism', ?2, '2026-12-01T10:00:00Z', 'T-000001', ?3, 1, 1, ?4, ?5, ?6, 7301, ?7, ?8, 'EUR', 7201, ?9, ?10)",
        (
            id,
            operation,
            refund_of,
            local_seat,
            zone,
            category,
            audience,
            amount,
            i64::from(active),
            exported_in,
        ),
    )
    .unwrap();
}

fn reconcile_json(sb: &Sandbox, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["--json", "report", "reconcile", "--link", LINK];
    args.extend_from_slice(extra);
    let run = sb.stxd(&args);
    let doc: Value = serde_json::from_str(&run.stdout()).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): stdout:\n{}\nstderr:\n{}",
            run.stdout(),
            run.stderr()
        )
    });
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

fn item<'a>(doc: &'a Value, list: &str, code: &str) -> &'a Value {
    doc[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["code"] == code)
        .unwrap_or_else(|| panic!("no {code} in {list}: {doc:#}"))
}

fn row(doc: &Value, performance: i64, category: i64) -> &Value {
    doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["performance"] == performance && r["seat_category"] == category)
        .unwrap_or_else(|| panic!("no row {performance} × {category}: {doc:#}"))
}

#[test]
fn a_consistent_state_has_no_difference() {
    let sb = consistent();
    let (code, doc) = reconcile_json(&sb, &[]);
    assert_eq!(codes(&doc, "differences"), Vec::<String>::new(), "{doc:#}");
    assert_eq!(codes(&doc, "in_flight"), Vec::<String>::new(), "{doc:#}");
    assert_eq!(code, 0);
    assert_eq!(doc["consistent"], true);

    let cat1 = row(&doc, 1701, 2001);
    assert_eq!(cat1["performance_code"], "TRAV0115");
    assert_eq!(cat1["start"], "2037-01-15T20:00:00+01:00");
    assert_eq!(cat1["seat_category_code"], "CAT1");
    let (m, d) = (&cat1["manager"], &cat1["distributor"]);
    assert_eq!(
        (
            &m["allotted"],
            &m["awaiting_ack"],
            &m["sold"],
            &m["refunded"]
        ),
        (&4.into(), &0.into(), &2.into(), &1.into())
    );
    assert_eq!(
        (
            &d["in_contingent"],
            &d["sold"],
            &d["refunded"],
            &d["not_exported"]
        ),
        (&4.into(), &2.into(), &1.into(), &0.into())
    );
    assert_eq!(m["amounts"][0]["vat"], "TVA55");
    assert_eq!(m["amounts"][0]["minor"], 8500);
    assert_eq!(d["amounts"], m["amounts"]);
    let fosse = row(&doc, 1701, 2004);
    assert_eq!(fosse["manager"]["allotted"], 10);
    assert_eq!(fosse["distributor"]["in_contingent"], 10);
    assert_eq!(fosse["manager"]["amounts"][0]["minor"], 2500);
    assert_eq!(doc["totals"]["manager"]["amounts"][0]["minor"], 11000);
    let pa = &doc["pending_account"];
    assert_eq!(pa["manager_balance"][0]["minor"], 11000);
    assert_eq!(pa["distributor_active_sales"][0]["minor"], 11000);

    let text = sb.stxd(&["report", "reconcile", "--link", LINK]);
    text.expect_code(0);
    assert!(text.stdout().contains("110.00 EUR"), "{}", text.stdout());
    assert!(text.stdout().contains("consistent: 0 difference(s)"));
}

#[test]
fn a_line_missing_at_the_manager_is_flagged() {
    let sb = consistent();
    // Line 5 went in SALES file 1, which the manager applied: it should be there.
    sale(
        &db(&sb, "TOURISM"),
        5,
        "SALE",
        None,
        Some(50003),
        7501,
        7401,
        8500,
        true,
        Some(1),
    );
    let (code, doc) = reconcile_json(&sb, &[]);
    assert_eq!(code, 1);
    let it = item(&doc, "differences", "missing-at-manager");
    assert_eq!(it["line"], 5);
    assert_eq!(it["performance"], 1701);
    assert!(it["detail"].as_str().unwrap().contains("SALES file 1"));
    // The money is short too, and said so.
    let pa = item(&doc, "differences", "pending-account-mismatch");
    assert!(
        pa["detail"].as_str().unwrap().contains("off by -85.00 EUR"),
        "{pa}"
    );
    assert_eq!(doc["differences"].as_array().unwrap().len(), 2, "{doc:#}");
}

#[test]
fn an_amount_that_differs_is_flagged() {
    let sb = consistent();
    let m = db(&sb, "OPERA");
    m.execute_batch("UPDATE ticket SET amount = 8000 WHERE line = 1;")
        .unwrap();
    let (code, doc) = reconcile_json(&sb, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        codes(&doc, "differences"),
        ["amount-differs", "pending-account-mismatch"],
        "{doc:#}"
    );
    let it = item(&doc, "differences", "amount-differs");
    assert_eq!(it["line"], 1);
    let detail = it["detail"].as_str().unwrap();
    assert!(
        detail.contains("85.00 EUR at the distributor, 80.00 EUR at the manager"),
        "{detail}"
    );
}

#[test]
fn a_line_rejected_at_the_manager_is_flagged_with_its_reason() {
    let sb = consistent();
    sale(
        &db(&sb, "TOURISM"),
        5,
        "SALE",
        None,
        Some(50003),
        7501,
        7401,
        8000,
        true,
        Some(1),
    );
    db(&sb, "OPERA")
        .execute(
            "INSERT INTO sales_line (link, line, operation, status, run, position, code, reason, record)
             VALUES ('opera-tourism', 5, 'SALE', 'rejected', 900, 6, 'price-differs',
                     'price differs from the rate table (expected 8500 EUR, found 8000)', 'r')",
            [],
        )
        .unwrap();
    let (code, doc) = reconcile_json(&sb, &[]);
    assert_eq!(code, 1);
    let it = item(&doc, "differences", "rejected-at-manager");
    assert_eq!(it["line"], 5);
    let detail = it["detail"].as_str().unwrap();
    assert!(detail.contains("price-differs"), "{detail}");
    assert!(detail.contains("expected 8500 EUR, found 8000"), "{detail}");
    assert!(!codes(&doc, "differences").contains(&"missing-at-manager".to_owned()));
}

#[test]
fn a_ticket_unknown_to_the_distributor_is_flagged() {
    let sb = consistent();
    db(&sb, "OPERA")
        .execute_batch(
            "INSERT INTO ticket (id, sales_order, link, line, performance, seat, zone, seat_category, tariff_type,
                 audience_subcategory, amount, currency, vat_code, sold_at, state)
             VALUES (9, 1, 'opera-tourism', 9, 1701, 50004, NULL, 2001, 1201, 1301, 8500, 'EUR', 1101, 1796119200000000, 'valid');
             INSERT INTO sales_line (link, line, operation, status, run, position, record, ticket)
             VALUES ('opera-tourism', 9, 'SALE', 'booked', 900, 9, 'r', 9);",
        )
        .unwrap();
    let (code, doc) = reconcile_json(&sb, &[]);
    assert_eq!(code, 1);
    let it = item(&doc, "differences", "unknown-at-distributor");
    assert_eq!(it["line"], 9);
    assert_eq!(it["performance"], 1701);
    assert!(it["detail"].as_str().unwrap().contains("ticket 9"));
}

/// The pending account is read from the tickets through the lines that
/// booked them (the `pending_account_entry` view): a booked line's row lost
/// at the manager (here the refund's, taken out by hand) leaves a ticket
/// cancelled whose amount the account never took back, and a line missing.
#[test]
fn a_pending_account_mismatch_is_flagged() {
    let sb = consistent();
    db(&sb, "OPERA")
        .execute_batch(
            "PRAGMA foreign_keys = OFF;
             DELETE FROM sales_line WHERE link = 'opera-tourism' AND line = 4;",
        )
        .unwrap();
    let (code, doc) = reconcile_json(&sb, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        codes(&doc, "differences"),
        [
            "missing-at-manager",
            "pending-account-mismatch",
            "pending-account-vs-tickets"
        ],
        "{doc:#}"
    );
    assert_eq!(item(&doc, "differences", "missing-at-manager")["line"], 4);
    let detail = item(&doc, "differences", "pending-account-mismatch")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(detail.contains("152.50 EUR at the manager"), "{detail}");
    assert!(detail.contains("expected 110.00 EUR"), "{detail}");
    assert_eq!(doc["pending_account"]["manager_balance"][0]["minor"], 15250);
    assert_eq!(
        doc["pending_account"]["manager_valid_tickets"][0]["minor"],
        11000
    );
}

#[test]
fn lines_and_versions_in_flight_are_not_differences() {
    let sb = consistent();
    let d = db(&sb, "TOURISM");
    // Line 5: sold, not exported yet. Line 6: in SALES file 2, not yet at the manager.
    sale(
        &d,
        5,
        "SALE",
        None,
        Some(50003),
        7501,
        7401,
        8500,
        true,
        None,
    );
    sale(&d, 6, "SALE", None, None, 7504, 7402, 1250, true, Some(2));
    // The manager took A4 back (version 2, exported); the distributor has not
    // applied it yet: A4 awaits the acknowledgement.
    db(&sb, "OPERA")
        .execute_batch(
            "UPDATE allotment SET version = 2, exported = 2 WHERE performance = 1701;
             UPDATE allotment_seat SET state = 'held', released_in = 2 WHERE seat = 50004;",
        )
        .unwrap();
    let (code, doc) = reconcile_json(&sb, &[]);
    assert_eq!(codes(&doc, "differences"), Vec::<String>::new(), "{doc:#}");
    assert_eq!(code, 0);
    let mut flying = codes(&doc, "in_flight");
    flying.sort();
    assert_eq!(
        flying,
        ["not-exported", "not-yet-applied", "version-not-applied"]
    );
    assert_eq!(item(&doc, "in_flight", "not-exported")["line"], 5);
    assert_eq!(item(&doc, "in_flight", "not-yet-applied")["line"], 6);
    assert_eq!(doc["pending_account"]["in_flight"][0]["minor"], 9750);
    let cat1 = row(&doc, 1701, 2001);
    assert_eq!(cat1["manager"]["allotted"], 3);
    assert_eq!(cat1["manager"]["awaiting_ack"], 1);
    assert_eq!(cat1["distributor"]["not_exported"], 1);

    // Once the distributor applies version 2 but the ACK has not come back:
    // still in flight.
    d.execute_batch(
        "UPDATE contingent_snapshot SET version = 2;
         DELETE FROM contingent_seat WHERE seat = (SELECT local_id FROM mapping WHERE kind = 'seat' AND manager_id = 50004);",
    )
    .unwrap();
    let (code, doc) = reconcile_json(&sb, &[]);
    assert_eq!(code, 0, "{doc:#}");
    assert!(codes(&doc, "in_flight").contains(&"ack-pending".to_owned()));
}

#[test]
fn a_seat_allotted_at_the_manager_and_missing_at_the_distributor_is_flagged() {
    let sb = consistent();
    db(&sb, "OPERA")
        .execute(
            "INSERT INTO allotment_seat (performance, seat, link, state) VALUES (1701, 50005, 'opera-tourism', 'allotted')",
            [],
        )
        .unwrap();
    let (code, doc) = reconcile_json(&sb, &[]);
    assert_eq!(code, 1);
    assert_eq!(codes(&doc, "differences"), ["seat-missing-at-distributor"]);
    let detail = item(&doc, "differences", "seat-missing-at-distributor")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(detail.contains("PARTERRE A 5"), "{detail}");
}

#[test]
fn html_is_one_self_contained_page_and_csv_parses() {
    let sb = consistent();
    sale(
        &db(&sb, "TOURISM"),
        5,
        "SALE",
        None,
        Some(50003),
        7501,
        7401,
        8500,
        true,
        Some(1),
    );
    let out = sb.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let run = sb.stxd(&[
        "report",
        "reconcile",
        "--link",
        LINK,
        "--html",
        "out/report.html",
        "--csv",
        "out/report.csv",
    ]);
    run.expect_code(1);
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["report.csv", "report.html"]);

    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(!html.to_lowercase().contains("<script"));
    assert!(!html.contains("http"));
    assert!(!html.contains(" src="));
    assert!(html.contains("<svg"));
    assert!(html.contains("<style>"));
    assert!(html.contains("missing-at-manager"));
    assert!(html.contains("110.00 EUR"));

    let mut rd = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_path(out.join("report.csv"))
        .unwrap();
    let headers = rd.headers().unwrap().clone();
    assert_eq!(&headers[0], "section");
    let records: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
    let sections: Vec<&str> = records.iter().map(|r| r.get(0).unwrap()).collect();
    assert_eq!(sections.iter().filter(|s| **s == "row").count(), 2);
    assert!(sections.contains(&"total"));
    assert!(sections.contains(&"pending-account"));
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let diff = records
        .iter()
        .find(|r| {
            r.get(0) == Some("difference") && r.get(col("code")) == Some("missing-at-manager")
        })
        .expect("the difference row");
    assert_eq!(diff.get(col("line")), Some("5"));
    let cat1 = records
        .iter()
        .find(|r| r.get(0) == Some("row") && r.get(col("seat_category")) == Some("2001"))
        .unwrap();
    assert_eq!(cat1.get(col("manager_allotted")), Some("4"));
    assert_eq!(cat1.get(col("manager_returned")), Some("0"));
    assert_eq!(cat1.get(col("manager_amounts")), Some("TVA55 85.00 EUR"));
}

#[test]
fn the_other_side_can_be_a_read_only_copy_of_its_store() {
    let sb = consistent();
    let copy = sb.path().join("TOURISM-copy.sqlite");
    db(&sb, "TOURISM")
        .execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
        .unwrap();
    // A difference made in the copy only shows the copy was read.
    Connection::open(&copy)
        .unwrap()
        .execute("UPDATE sale_line SET amount = 9000 WHERE id = 1", [])
        .unwrap();
    let (code, doc) = reconcile_json(&sb, &["--distributor-store", copy.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(item(&doc, "differences", "amount-differs")["line"], 1);
    let (code, _) = reconcile_json(&sb, &[]);
    assert_eq!(code, 0);

    // The manager's store is not a distributor's.
    let run = sb.stxd(&[
        "report",
        "reconcile",
        "--link",
        LINK,
        "--distributor-store",
        "var/state/OPERA.sqlite",
    ]);
    run.expect_code(1);
    assert!(
        run.stderr().contains("expected the distributor TOURISM"),
        "{}",
        run.stderr()
    );
    assert!(!Path::new(&sb.path().join("nothing")).exists());
}

#[test]
fn a_rejected_file_and_a_zone_quantity_that_differs_are_flagged() {
    let sb = consistent();
    let d = db(&sb, "TOURISM");
    sale(
        &d,
        5,
        "SALE",
        None,
        Some(50003),
        7501,
        7401,
        8500,
        true,
        Some(2),
    );
    d.execute("UPDATE contingent_zone SET quantity = 9", [])
        .unwrap();
    journal_sales(&db(&sb, "OPERA"), 2, "rejected");
    let (code, doc) = reconcile_json(&sb, &[]);
    assert_eq!(code, 1);
    let mut found = codes(&doc, "differences");
    found.sort();
    assert_eq!(
        found,
        [
            "file-rejected",
            "pending-account-mismatch",
            "zone-quantity-differs"
        ],
        "{doc:#}"
    );
    assert_eq!(item(&doc, "differences", "file-rejected")["line"], 5);
    let zone = item(&doc, "differences", "zone-quantity-differs")["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        zone.contains("10 place(s) allotted at the manager, 9"),
        "{zone}"
    );
}
