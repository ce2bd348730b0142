//! Catalogue changes keep selling: validation is per object (logical
//! configuration, rate table, product and its performances), so a change
//! the manager makes stops only what changed, through the `stxd` binary on
//! the same-slot demo.

use crate::free_tariff::{allot, sell};
use crate::util::{Sandbox, json};

/// The manager loads a catalogue fragment and sends its catalogue; the
/// distributor imports it.
pub fn manager_changes(sb: &Sandbox, name: &str, fragment: &str) {
    let path = sb.path().join(name);
    std::fs::write(
        &path,
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<catalogue version=\"1\">\n{fragment}\n</catalogue>\n"),
    )
    .unwrap();
    sb.stxd(&["load", "OPERA", path.to_str().unwrap()])
        .expect_code(0);
    sb.stxd(&["export", "catalogue", "--link", "opera-tourism"])
        .expect_code(0);
    let processed = json(sb, &["process"], 0);
    assert_eq!(processed[0]["state"], "applied", "{processed}");
}

/// `stxd sale sell` of one seat of a performance (by code), refused: its
/// output.
fn refused_sale(sb: &Sandbox, performance: &str, seat: &str) -> String {
    let run = sb.stxd(&[
        "sale",
        "sell",
        "--performance",
        performance,
        "--seat",
        seat,
        "--tariff",
        "NORMAL",
        "--audience",
        "ADULT",
    ]);
    run.expect_code(1);
    format!("{}{}", run.stdout(), run.stderr())
}

const MOVED_1702: &str = r#"  <performance id="1702" code="TRAV0117" name="La Traviata – 17 janvier" activity="1401" start="2037-01-17T16:00:00+01:00" configuration="3101" logicalConfiguration="1501" state="in_operation"/>"#;

#[test]
fn a_product_with_one_changed_performance_keeps_selling_the_others() {
    let sb = Sandbox::new();
    sb.first_use_done();
    allot(&sb, "1-3");
    // The manager moves the 17 January performance an hour later.
    manager_changes(&sb, "moved.xml", MOVED_1702);

    // The product and its other performances keep selling.
    let sold = sell(&sb, "PARTERRE:A:1", "NORMAL", "ADULT");
    assert_eq!(sold["line"]["amount"], 8500, "{sold}");
    // The moved one waits for validation, and says so.
    let why = refused_sale(&sb, "TRAV0117", "PARTERRE:A:1");
    assert!(
        why.contains("the manager added or changed it in product TRAV-BIL"),
        "{why}"
    );

    // Ops see what waits, with the difference.
    let listed = json(&sb, &["catalogue", "list", "--to-validate"], 0);
    let products = listed["products"].as_array().unwrap();
    assert_eq!(products.len(), 1, "{listed}");
    let p = &products[0];
    assert_eq!(p["code"], "TRAV-BIL", "{p}");
    assert_eq!(p["state"], "validated", "{p}");
    let links: Vec<(String, bool)> = p["performances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_owned(),
                f["validated"].as_bool().unwrap(),
            )
        })
        .collect();
    assert!(links.contains(&("TRAV0115".to_owned(), true)), "{links:?}");
    assert!(links.contains(&("TRAV0117".to_owned(), false)), "{links:?}");
    let changes = p["changes"].to_string();
    assert!(
        changes.contains(
            "start \\\"2037-01-17T15:00:00+01:00\\\" → \\\"2037-01-17T16:00:00+01:00\\\""
        ),
        "{changes}"
    );
    let text = sb.stxd(&["catalogue", "list", "--to-validate"]);
    text.expect_code(0);
    assert!(
        text.stdout()
            .contains("to validate: product TRAV-BIL: performance TRAV0117"),
        "{}",
        text.stdout()
    );

    // Validated, it sells again: the next refusal is its contingent's (none
    // was allotted on it), not the catalogue's.
    let v = json(&sb, &["catalogue", "validate", "TRAV-BIL"], 0);
    assert_eq!(v["performances"], 1, "{v}");
    let why = refused_sale(&sb, "TRAV0117", "PARTERRE:A:1");
    assert!(!why.contains("validate"), "{why}");
    assert!(
        json(&sb, &["catalogue", "list", "--to-validate"], 0)["products"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_changed_price_stops_its_rate_table_only_until_it_is_validated() {
    let sb = Sandbox::new();
    sb.first_use_done();
    allot(&sb, "1-3");
    manager_changes(
        &sb,
        "price.xml",
        r#"  <rateTable id="1801" code="TRAV-RT" name="Tarifs La Traviata" currency="EUR">
    <price seatCategory="2001" tariffType="1201" audienceSubcategory="1301" amount="9000"/>
  </rateTable>"#,
    );
    let listed = json(&sb, &["catalogue", "list", "--to-validate"], 0);
    let p = &listed["products"][0];
    assert_eq!(p["state"], "validated", "{p}");
    assert_eq!(p["rate_table"]["state"], "to_validate", "{p}");
    let changes = p["changes"].to_string();
    assert!(
        changes.contains("rate table TRAV-RT") && changes.contains("85.00 EUR → 90.00 EUR"),
        "{changes}"
    );
    let why = refused_sale(&sb, "TRAV0115", "PARTERRE:A:1");
    assert!(why.contains("rate table TRAV-RT is to_validate"), "{why}");

    // The rate table alone is validated: the product sells at the new price.
    let v = json(
        &sb,
        &["catalogue", "validate", "--rate-table", "TRAV-RT"],
        0,
    );
    assert_eq!(v["rate_tables"], 1, "{v}");
    assert_eq!(v["objects"][0], "rate table 1 TRAV-RT", "{v}");
    assert!(v["validated"].as_array().unwrap().is_empty(), "{v}");
    let sold = sell(&sb, "PARTERRE:A:1", "NORMAL", "ADULT");
    assert_eq!(sold["line"]["amount"], 9000, "{sold}");
}

/// The price changes from 85.00 to 90.00 EUR while a sale made at 85.00 is
/// not reported yet: the manager books it at 85.00 (the rate table version
/// its line carries), its refund follows it, and later sales are at 90.00.
#[test]
fn a_sale_made_before_a_price_change_is_booked_at_its_price() {
    let sb = Sandbox::new();
    sb.first_use_done();
    allot(&sb, "1-3");
    let old = sell(&sb, "PARTERRE:A:1", "NORMAL", "ADULT");
    assert_eq!(old["line"]["amount"], 8500, "{old}");
    // The manager changes the price and sends its catalogue before the sale
    // is reported.
    manager_changes(
        &sb,
        "price.xml",
        r#"  <rateTable id="1801" code="TRAV-RT" name="Tarifs La Traviata" currency="EUR">
    <price seatCategory="2001" tariffType="1201" audienceSubcategory="1301" amount="9000"/>
  </rateTable>"#,
    );
    assert_eq!(
        crate::util::rows(
            &sb,
            "OPERA.sqlite",
            "SELECT version FROM rate_table WHERE id = 1801"
        ),
        ["2"]
    );
    assert_eq!(
        crate::util::rows(
            &sb,
            "TOURISM.sqlite",
            "SELECT id, rate_version FROM sale_line"
        ),
        ["1|1"]
    );
    sb.stxd(&["export", "sales", "--link", "opera-tourism"])
        .expect_code(0);
    let processed = json(&sb, &["process"], 0);
    assert_eq!(processed[0]["state"], "applied", "{processed}");
    assert_eq!(
        crate::util::rows(
            &sb,
            "OPERA.sqlite",
            "SELECT line, amount, rate_version, state FROM ticket ORDER BY line"
        ),
        ["1|8500|1|valid"]
    );

    // Validated, the new price sells, in version 2; the old sale's refund
    // follows it.
    sb.stxd(&["catalogue", "validate", "--rate-table", "TRAV-RT"])
        .expect_code(0);
    let new = sell(&sb, "PARTERRE:A:2", "NORMAL", "ADULT");
    assert_eq!(new["line"]["amount"], 9000, "{new}");
    sb.stxd(&["sale", "refund", "1"]).expect_code(0);
    sb.stxd(&["export", "sales", "--link", "opera-tourism"])
        .expect_code(0);
    let processed = json(&sb, &["process"], 0);
    assert_eq!(processed[0]["state"], "applied", "{processed}");
    assert_eq!(
        crate::util::rows(
            &sb,
            "OPERA.sqlite",
            "SELECT line, amount, rate_version, state FROM ticket ORDER BY line"
        ),
        ["1|8500|1|cancelled", "2|9000|2|valid"]
    );
    assert_eq!(
        crate::util::rows(
            &sb,
            "OPERA.sqlite",
            "SELECT count(*) FROM sales_line WHERE status = 'rejected'"
        ),
        ["0"]
    );
    assert_eq!(
        crate::util::rows(
            &sb,
            "OPERA.sqlite",
            "SELECT sum(amount) FROM pending_account_entry"
        ),
        ["9000"]
    );
}

/// The manual maps physical seat categories only: a logical seat category's
/// manager id (from the catalogue) or a local logical seat category's code
/// is refused under `seat_category`, quoting the rule.
#[test]
fn mapping_set_seat_category_refuses_a_logical_category() {
    let sb = Sandbox::new();
    sb.first_use_done();
    // 1601 is OPERA's logical seat category L-CAT1 (of CAT1).
    let run = sb.stxd(&["mapping", "set", "seat_category", "1601", "PREM"]);
    run.expect_code(1);
    let text = format!("{}{}", run.stdout(), run.stderr());
    assert!(
        text.contains("logical seat category L-CAT1")
            && text.contains("map the physical seat categories, not the logical ones"),
        "{text}"
    );
    // A local logical seat category's code is refused too.
    let run = sb.stxd(&["mapping", "set", "seat_category", "2001", "L-CAT1"]);
    run.expect_code(1);
    let text = format!("{}{}", run.stdout(), run.stderr());
    assert!(text.contains("is a logical seat category"), "{text}");
    // The same through a mapping CSV: the row is refused with its line.
    let csv = sb.path().join("logical.csv");
    std::fs::write(
        &csv,
        "manager;kind;manager_id;manager_code;manager_label;status;local_code\n\
         OPERA;seat_category;1601;L-CAT1;Catégorie 1;filled;PREM\n",
    )
    .unwrap();
    let run = sb.stxd(&["mapping", "import", csv.to_str().unwrap()]);
    run.expect_code(1);
    let text = format!("{}{}", run.stdout(), run.stderr());
    assert!(
        text.contains("logical-seat-category") && text.contains("line 2"),
        "{text}"
    );
    // The physical one is still mapped as before.
    sb.stxd(&["mapping", "set", "seat_category", "2001", "PREM"])
        .expect_code(0);
}

/// A version 1 SALES file (no rate versions, `format-version: 1`) from a
/// distributor that has not upgraded is still read and applied: its line is
/// priced in the version in force when it was sold.
#[test]
fn a_version_1_sales_file_is_still_applied() {
    let sb = Sandbox::new();
    sb.first_use_done();
    allot(&sb, "1-2");
    let payload = "line;operation;time;order;refund_of;performance;block;row;seat;zone;seat_category;tariff_type;audience_subcategory;amount;currency;vat_code;contingent_version\n\
        1;SALE;2026-12-01T10:15:00Z;T-000001;;1701;3301;A;1;;2001;1201;1301;8500;EUR;1101;\n";
    let inbox = sb.path().join("var/exchange/opera-tourism/to-manager");
    let m = crate::util::seal(
        &inbox,
        &sb.demo_secret(),
        stxd::format::Kind::Sales,
        1,
        payload.as_bytes(),
        1,
    );
    assert_eq!(m.format_version, 1);
    let processed = json(&sb, &["process"], 0);
    assert_eq!(processed[0]["state"], "applied", "{processed}");
    assert_eq!(
        crate::util::rows(
            &sb,
            "OPERA.sqlite",
            "SELECT line, amount, rate_version, state FROM ticket"
        ),
        ["1|8500|1|valid"]
    );
}
