//! The manager's view: `stxd orders list|show` and `stxd account
//! show`, through the binary, against the rows of the manager's store.

use serde_json::Value;

use crate::free_tariff::allot;
use crate::util::{Sandbox, json, rows};

fn sell(sb: &Sandbox, seat: &str, audience: &str, order: Option<&str>) -> i64 {
    let mut args = vec![
        "sale",
        "sell",
        "--performance",
        "1",
        "--seat",
        seat,
        "--tariff",
        "NORMAL",
        "--audience",
        audience,
    ];
    if let Some(o) = order {
        args.extend(["--order", o]);
    }
    json(sb, &args, 0)["line"]["line"].as_i64().unwrap()
}

/// Two orders booked from one SALES file: ORD-1 (A:1 adult, A:2 child,
/// refunded) and T-<line> (A:3 adult).
fn booked() -> (Sandbox, [i64; 3]) {
    let sb = Sandbox::new();
    sb.first_use_done();
    allot(&sb, "1-3");
    let a1 = sell(&sb, "PARTERRE:A:1", "ADULT", Some("ORD-1"));
    let a2 = sell(&sb, "PARTERRE:A:2", "CHILD", Some("ORD-1"));
    let a3 = sell(&sb, "PARTERRE:A:3", "ADULT", None);
    sb.stxd(&["sale", "refund", &a2.to_string()]).expect_code(0);
    sb.stxd(&["export", "sales", "--link", "opera-tourism"])
        .expect_code(0);
    sb.stxd(&["process"]).expect_code(0);
    (sb, [a1, a2, a3])
}

#[test]
fn orders_list_and_show_each_ticket_with_its_source() {
    let (sb, [a1, a2, a3]) = booked();
    let listed = json(&sb, &["orders", "list"], 0);
    let orders = listed["orders"].as_array().unwrap();
    let refs: Vec<&str> = orders
        .iter()
        .map(|o| o["reference"].as_str().unwrap())
        .collect();
    let t3 = format!("T-{a3:06}");
    assert_eq!(refs, ["ORD-1", t3.as_str()], "{listed:#}");
    assert_eq!(
        rows(
            &sb,
            "OPERA.sqlite",
            "SELECT reference FROM sales_order ORDER BY id"
        ),
        ["ORD-1".to_owned(), t3.clone()]
    );
    assert_eq!(orders[0]["valid"], 1, "{listed:#}");
    assert_eq!(orders[0]["tickets"].as_array().unwrap().len(), 2);
    assert_eq!(orders[0]["pending_account"][0]["minor"], 8500, "{listed:#}");
    assert!(
        orders[0]["point_of_sale"]
            .as_str()
            .unwrap()
            .starts_with("5101 "),
        "{listed:#}"
    );
    // By performance: 1701 has both, 1702 none; an unknown one is refused.
    let by = |p: &str| json(&sb, &["orders", "list", "--performance", p], 0)["orders"].clone();
    assert_eq!(by("TRAV0115").as_array().unwrap().len(), 2);
    assert_eq!(by("1702"), Value::Array(vec![]));
    let unknown = sb.stxd(&["orders", "list", "--performance", "NOPE"]);
    unknown.expect_code(1);
    assert!(unknown.stderr().contains("NOPE"), "{}", unknown.stderr());

    let shown = json(&sb, &["orders", "show", "ORD-1"], 0);
    let o = &shown["order"];
    assert_eq!(o["link"], "opera-tourism");
    assert!(o["payment_method"].as_str().unwrap().len() > 1, "{o:#}");
    let t = o["tickets"].as_array().unwrap();
    assert_eq!(t[0]["place"], "PARTERRE A 1", "{o:#}");
    assert_eq!(t[0]["price"], "85.00 EUR", "{o:#}");
    assert_eq!(t[0]["state"], "valid");
    assert_eq!(t[0]["sale"]["line"], a1);
    assert_eq!(t[0]["sale"]["file"], "opera-tourism.SALES.00000001.csv");
    assert_eq!(t[1]["state"], "cancelled");
    assert_eq!(t[1]["audience_subcategory"], "ENFANT");
    assert_eq!(t[1]["sale"]["line"], a2);
    assert_eq!(t[1]["refund"]["file"], "opera-tourism.SALES.00000001.csv");
    let positions = rows(
        &sb,
        "OPERA.sqlite",
        &format!("SELECT 'line ' || position FROM sales_line WHERE line = {a1}"),
    );
    assert_eq!(t[0]["sale"]["position"], positions[0].as_str());

    // The same by id, and as text.
    let id = o["id"].as_i64().unwrap().to_string();
    assert_eq!(json(&sb, &["orders", "show", &id], 0)["order"], *o);
    let text = sb.stxd(&["orders", "show", "ORD-1"]);
    text.expect_code(0);
    for want in [
        "PARTERRE A 1",
        "85.00 EUR",
        "SALES.00000001.csv",
        "refunded",
    ] {
        assert!(text.stdout().contains(want), "{want}: {}", text.stdout());
    }
    let missing = sb.stxd(&["orders", "show", "NO-SUCH"]);
    missing.expect_code(1);
    assert!(missing.stderr().contains("NO-SUCH"), "{}", missing.stderr());
}

#[test]
fn account_show_lists_entries_and_the_balance() {
    let (sb, [a1, a2, a3]) = booked();
    let doc = json(&sb, &["account", "show", "--link", "opera-tourism"], 0);
    let entries = doc["account"]["entries"].as_array().unwrap();
    let seen: Vec<(i64, &str, i64)> = entries
        .iter()
        .map(|e| {
            (
                e["line"].as_i64().unwrap(),
                e["kind"].as_str().unwrap(),
                e["minor"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (a1, "sale", 8500),
            (a2, "sale", 4250),
            (a3, "sale", 8500),
            (a2, "refund", -4250)
        ]
    );
    assert_eq!(
        rows(
            &sb,
            "OPERA.sqlite",
            "SELECT sum(amount) FROM pending_account_entry"
        ),
        ["17000"]
    );
    assert_eq!(doc["account"]["balance"][0]["minor"], 17000, "{doc:#}");
    let text = sb.stxd(&["account", "show"]);
    text.expect_code(0);
    assert!(
        text.stdout().contains("balance: 170.00 EUR (4 entries)"),
        "{}",
        text.stdout()
    );
}

/// Four orders for the filters, each with its sale time set in the
/// manager's store (every sale of a test is made now):
///
/// | order         | link          | performance | tickets            | state            | first sold (UTC)            |
/// |---------------|---------------|-------------|--------------------|------------------|-----------------------------|
/// | ORD-1         | opera-tourism | 1701        | A1, A2 (refunded)  | partly-cancelled | 2026-12-01 09:00 (A2: 12-03)|
/// | T-<a3>        | opera-tourism | 1701        | A3                 | valid            | 2026-12-01 23:59:59.999999  |
/// | T-<a4>        | opera-tourism | 1701        | A4 (refunded)      | cancelled        | 2026-12-02 00:00:00         |
/// | X-1           | other-link    | 1702        | C1                 | valid            | 2026-12-02 12:00            |
///
/// X-1 is written into the store directly: the demo config has one link.
/// Returns the references in that order.
fn four_orders() -> (Sandbox, [String; 4]) {
    let sb = Sandbox::new();
    sb.first_use_done();
    allot(&sb, "1-4");
    let a1 = sell(&sb, "PARTERRE:A:1", "ADULT", Some("ORD-1"));
    let a2 = sell(&sb, "PARTERRE:A:2", "CHILD", Some("ORD-1"));
    let a3 = sell(&sb, "PARTERRE:A:3", "ADULT", None);
    let a4 = sell(&sb, "PARTERRE:A:4", "ADULT", None);
    sb.stxd(&["sale", "refund", &a2.to_string()]).expect_code(0);
    sb.stxd(&["sale", "refund", &a4.to_string()]).expect_code(0);
    sb.stxd(&["export", "sales", "--link", "opera-tourism"])
        .expect_code(0);
    sb.stxd(&["process"]).expect_code(0);
    let conn = rusqlite::Connection::open(sb.path().join("var/state/OPERA.sqlite")).unwrap();
    conn.pragma_update(None, "foreign_keys", "ON").unwrap();
    let micros = |t: time::OffsetDateTime| stxd::store::unix_micros(t).to_string();
    for (line, at) in [
        (a1, time::macros::datetime!(2026-12-01 09:00 UTC)),
        (a2, time::macros::datetime!(2026-12-03 10:00 UTC)),
        (a3, time::macros::datetime!(2026-12-01 23:59:59.999999 UTC)),
        (a4, time::macros::datetime!(2026-12-02 00:00 UTC)),
    ] {
        let changed = conn
            .execute(
                "UPDATE ticket SET sold_at = ?1 WHERE link = 'opera-tourism' AND line = ?2",
                (micros(at), line),
            )
            .unwrap();
        assert_eq!(changed, 1, "line {line}");
    }
    conn.execute_batch(&format!(
        "INSERT INTO sales_order (link, reference, channel, point_of_sale, payment_method, contact, created)
             VALUES ('other-link', 'X-1', 5001, 5101, 5201, 5301, {});
         INSERT INTO ticket (sales_order, link, line, performance, seat, seat_category, tariff_type,
                             audience_subcategory, amount, currency, vat_code, sold_at, state)
             SELECT id, 'other-link', 1, 1702, 50041, 2001, 1201, 1301, 8500, 'EUR', 1101, {}, 'valid'
             FROM sales_order WHERE reference = 'X-1';",
        micros(time::macros::datetime!(2026-12-02 12:05 UTC)),
        micros(time::macros::datetime!(2026-12-02 12:00 UTC))
    ))
    .unwrap();
    let refs = [
        "ORD-1".to_owned(),
        format!("T-{a3:06}"),
        format!("T-{a4:06}"),
        "X-1".to_owned(),
    ];
    (sb, refs)
}

/// The references `orders list ARGS` lists, in order.
fn listed(sb: &Sandbox, args: &[&str]) -> Vec<String> {
    let doc = json(sb, &[&["orders", "list"], args].concat(), 0);
    doc["orders"]
        .as_array()
        .unwrap_or_else(|| panic!("{doc:#}"))
        .iter()
        .map(|o| o["reference"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn orders_list_filters_by_link_performance_days_and_state() {
    let (sb, refs) = four_orders();
    let [ord1, t3, t4, x1] = [0, 1, 2, 3].map(|i| refs[i].as_str());
    let all = listed(&sb, &[]);
    assert_eq!(all, [ord1, t3, t4, x1]);

    // Each order's state and sale time, as the filters see them.
    let doc = json(&sb, &["orders", "list"], 0);
    let seen: Vec<(&str, &str)> = doc["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["state"].as_str().unwrap(), o["sold_at"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            ("partly-cancelled", "2026-12-01T09:00:00.000000Z"),
            ("valid", "2026-12-01T23:59:59.999999Z"),
            ("cancelled", "2026-12-02T00:00:00.000000Z"),
            ("valid", "2026-12-02T12:00:00.000000Z"),
        ],
        "{doc:#}"
    );

    // --link: the other link's order goes.
    assert_eq!(listed(&sb, &["--link", "opera-tourism"]), [ord1, t3, t4]);
    // --performance: 1702 is only X-1's.
    assert_eq!(listed(&sb, &["--performance", "1702"]), [x1]);
    assert_eq!(listed(&sb, &["--performance", "TRAV0115"]), [ord1, t3, t4]);

    // Days: UTC days, both ends included; an order is dated by its first
    // sale (ORD-1 sold A2 on the 3rd, but was opened on the 1st).
    assert_eq!(listed(&sb, &["--date", "2026-12-01"]), [ord1, t3]);
    assert_eq!(listed(&sb, &["--date", "2026-12-02"]), [t4, x1]);
    assert_eq!(listed(&sb, &["--date", "2026-12-03"]), Vec::<String>::new());
    assert_eq!(listed(&sb, &["--from", "2026-12-02"]), [t4, x1]);
    assert_eq!(listed(&sb, &["--to", "2026-12-01"]), [ord1, t3]);
    assert_eq!(
        listed(&sb, &["--from", "2026-12-01", "--to", "2026-12-02"]),
        [ord1, t3, t4, x1]
    );
    // A range before every sale, one after: nothing.
    assert_eq!(
        listed(&sb, &["--from", "2026-11-01", "--to", "2026-11-30"]),
        Vec::<String>::new()
    );
    assert_eq!(listed(&sb, &["--from", "2026-12-04"]), Vec::<String>::new());

    // --state.
    assert_eq!(listed(&sb, &["--state", "valid"]), [t3, x1]);
    assert_eq!(listed(&sb, &["--state", "partly-cancelled"]), [ord1]);
    assert_eq!(listed(&sb, &["--state", "cancelled"]), [t4]);

    // Combined, every filter must pass.
    assert_eq!(
        listed(&sb, &["--link", "opera-tourism", "--state", "valid"]),
        [t3]
    );
    assert_eq!(
        listed(&sb, &["--date", "2026-12-02", "--state", "valid"]),
        [x1]
    );
    assert_eq!(
        listed(&sb, &["--performance", "1701", "--from", "2026-12-02"]),
        [t4]
    );
    assert_eq!(
        listed(
            &sb,
            &[
                "--link",
                "opera-tourism",
                "--performance",
                "TRAV0115",
                "--to",
                "2026-12-01",
                "--state",
                "partly-cancelled"
            ]
        ),
        [ord1]
    );
    assert_eq!(
        listed(&sb, &["--performance", "1702", "--state", "cancelled"]),
        Vec::<String>::new()
    );

    // The JSON says which filters were applied.
    let doc = json(
        &sb,
        &[
            "orders",
            "list",
            "--date",
            "2026-12-02",
            "--state",
            "cancelled",
        ],
        0,
    );
    assert_eq!(
        doc["filter"],
        serde_json::json!({
            "link": null, "performance": null,
            "from": "2026-12-02", "to": "2026-12-02", "state": "cancelled"
        }),
        "{doc:#}"
    );

    // As text: one line per order with its sale time and state.
    let text = sb.stxd(&["orders", "list", "--state", "cancelled"]);
    text.expect_code(0);
    let stdout = text.stdout();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{}", text.stdout());
    assert!(lines[0].contains(t4), "{}", lines[0]);
    assert!(
        lines[0].contains("sold 2026-12-02T00:00:00.000000Z  cancelled"),
        "{}",
        lines[0]
    );
    let none = sb.stxd(&["orders", "list", "--from", "2026-12-04"]);
    none.expect_code(0);
    assert_eq!(
        none.stdout(),
        "no reintegrated order passes these filters\n"
    );
    let shown = sb.stxd(&["orders", "show", "ORD-1"]);
    shown.expect_code(0);
    for want in [
        "state:          partly-cancelled",
        "sold:           2026-12-01T09:00:00.000000Z",
    ] {
        assert!(shown.stdout().contains(want), "{want}: {}", shown.stdout());
    }
}

#[test]
fn orders_list_refuses_a_bad_state_or_day_naming_what_it_expects() {
    let sb = Sandbox::new();
    sb.first_use_done();
    let refused = |args: &[&str], wants: &[&str]| {
        let run = sb.stxd(&[&["orders", "list"], args].concat());
        run.expect_code(2);
        for want in wants {
            assert!(run.stderr().contains(want), "{want}: {}", run.stderr());
        }
        assert_eq!(run.stdout(), "");
    };
    refused(
        &["--state", "refunded"],
        &["--state", "refunded", "valid, partly-cancelled, cancelled"],
    );
    for bad in [
        "2026-13-01",
        "2026-02-30",
        "01/12/2026",
        "2026-12-1",
        "yesterday",
    ] {
        refused(&["--from", bad], &["--from", bad, "YYYY-MM-DD"]);
        refused(&["--to", bad], &["--to", bad, "YYYY-MM-DD"]);
        refused(&["--date", bad], &["--date", bad, "YYYY-MM-DD"]);
    }
    refused(
        &["--from", "2026-12-02", "--to", "2026-12-01"],
        &["--from/--to", "2026-12-02", "comes after", "2026-12-01"],
    );
    refused(
        &["--date", "2026-12-02", "--from", "2026-12-01"],
        &["--date", "--from"],
    );
    refused(&["--link", "no-such-link"], &["no-such-link"]);
}
