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
