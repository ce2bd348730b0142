//! Free tariffs: a price of 0 (an invitation) travels in the
//! catalogue, is sold at the distributor and booked at the manager at 0,
//! and the reconciliation counts it as free. Negative prices stay refused
//! (`samples/invalid/catalogue-price-negative.xml`).

use serde_json::Value;

use crate::util::{Sandbox, rows};

fn json(sb: &Sandbox, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let run = sb.stxd(&all);
    run.expect_code(0);
    serde_json::from_str(&run.stdout()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout()))
}

/// `stxd sale sell` of one seat of the distributor's performance 1.
pub fn sell(sb: &Sandbox, seat: &str, tariff: &str, audience: &str) -> Value {
    json(
        sb,
        &[
            "sale",
            "sell",
            "--performance",
            "1",
            "--seat",
            seat,
            "--tariff",
            tariff,
            "--audience",
            audience,
        ],
    )
}

/// Seats PARTERRE:A:`seats` of 1701 allotted to the demo link and imported.
pub fn allot(sb: &Sandbox, seats: &str) {
    sb.allot(&format!("PARTERRE:A:{seats}"));
    sb.stxd(&["export", "contingent", "--link", "opera-tourism"])
        .expect_code(0);
    sb.stxd(&["process"]).expect_code(0);
}

#[test]
fn a_free_tariff_is_sold_booked_at_zero_and_counted_free() {
    let sb = Sandbox::new();
    sb.first_use_done();
    // The manager makes the reduced child price of category 1 free, and
    // sends its catalogue; the distributor validates the changed product.
    sb.stxd(&[
        "load",
        "OPERA",
        "samples/payloads/catalogue-free-tariff.xml",
    ])
    .expect_code(0);
    assert_eq!(
        rows(
            &sb,
            "OPERA.sqlite",
            "SELECT amount FROM price WHERE rate_table = 1801 AND seat_category = 2001
             AND tariff_type = 1202 AND audience_subcategory = 1302"
        ),
        ["0"]
    );
    sb.stxd(&["export", "catalogue", "--link", "opera-tourism"])
        .expect_code(0);
    let processed = json(&sb, &["process"]);
    assert_eq!(processed[0]["state"], "applied", "{processed}");
    sb.stxd(&["catalogue", "validate", "--all"]).expect_code(0);
    assert_eq!(
        rows(
            &sb,
            "TOURISM.sqlite",
            "SELECT p.amount FROM price p JOIN tariff_type t ON t.id = p.tariff_type
             JOIN audience_subcategory a ON a.id = p.audience_subcategory
             JOIN seat_category c ON c.id = p.seat_category
             WHERE t.code = 'REDUIT' AND a.code = 'CHILD' AND c.code = 'PREM'"
        ),
        ["0"]
    );

    // The distributor sells one invitation and one paid seat.
    allot(&sb, "1-2");
    let free = sell(&sb, "PARTERRE:A:1", "REDUIT", "CHILD");
    assert_eq!(free["line"]["amount"], 0, "{free}");
    assert_eq!(free["line"]["price"], "0.00 EUR", "{free}");
    let paid = sell(&sb, "PARTERRE:A:2", "NORMAL", "ADULT");
    assert_eq!(paid["line"]["amount"], 8500, "{paid}");
    sb.stxd(&["export", "sales", "--link", "opera-tourism"])
        .expect_code(0);
    let processed = json(&sb, &["process"]);
    assert_eq!(processed[0]["state"], "applied", "{processed}");

    // The manager booked both, the invitation at 0.
    assert_eq!(
        rows(
            &sb,
            "OPERA.sqlite",
            "SELECT seat, tariff_type, audience_subcategory, amount, currency, state FROM ticket ORDER BY line"
        ),
        [
            "50001|1202|1302|0|EUR|valid",
            "50002|1201|1301|8500|EUR|valid"
        ]
    );
    assert_eq!(
        rows(
            &sb,
            "OPERA.sqlite",
            "SELECT status, count(*) FROM sales_line GROUP BY status"
        ),
        ["booked|2"]
    );
    assert_eq!(
        rows(
            &sb,
            "OPERA.sqlite",
            "SELECT amount FROM pending_account_entry ORDER BY run, position"
        ),
        ["0", "8500"]
    );

    // The reconciliation agrees and counts one free ticket on each side.
    let report = json(&sb, &["report", "reconcile", "--link", "opera-tourism"]);
    assert_eq!(report["consistent"], true, "{report:#}");
    let totals = &report["totals"];
    assert_eq!(totals["manager"]["free"], 1, "{report:#}");
    assert_eq!(totals["distributor"]["free"], 1, "{report:#}");
    assert_eq!(totals["manager"]["sold"], 2, "{report:#}");
    let cat1 = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["performance"] == 1701 && r["seat_category"] == 2001)
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(cat1["manager"]["free"], 1, "{report:#}");
    assert_eq!(cat1["manager"]["amounts"][0]["minor"], 8500, "{report:#}");
    let text = sb.stxd(&["report", "reconcile", "--link", "opera-tourism"]);
    text.expect_code(0);
    // The text names the column for what it counts (not free places), and
    // the totals line shows the one invitation on each side.
    let out = text.stdout();
    let header = out.lines().nth(1).unwrap_or_default();
    let columns = |l: &str| -> Vec<Vec<String>> {
        l.split('|')
            .map(|part| part.split_whitespace().map(str::to_owned).collect())
            .collect()
    };
    let head = columns(header);
    assert_eq!(head[1][5], "invited", "{out}");
    assert_eq!(head[2][3], "invited", "{out}");
    let total = out
        .lines()
        .find(|l| l.starts_with("total"))
        .unwrap_or_else(|| panic!("{out}"));
    let total = columns(total);
    assert_eq!(
        (total[1][5].as_str(), total[2][3].as_str()),
        ("1", "1"),
        "{out}"
    );
}
