//! Refused content: a technical id twice in one file, for every payload
//! (refused whole, the two positions named, nothing applied; seat plans are
//! in `seat_changes`), and an importer's refusal through the whole pipeline
//! (its own code and its position in the `.reason`, never `refused` or
//! `store`).

use stxd::domain::DomainError;
use stxd::format::{FormatError, Limits, catalogue, contingent, sales};

use crate::import::{
    applied, distributor, exported_catalogue, import_catalogue, import_seatplan,
    map_catalogue_references, map_seat_categories, scalar, seatplan_items,
};

fn content(e: DomainError) -> (&'static str, String) {
    match &e {
        DomainError::Content(f) => (f.code, e.to_string()),
        other => panic!("expected a content refusal, got {other:?}: {other}"),
    }
}

/// The catalogue the manager exports, with the record `pick` chooses
/// repeated after the last of its kind (same id, another code).
fn repeated(pick: fn(&catalogue::Item) -> bool) -> (Vec<catalogue::Item>, usize, usize) {
    let mut items = exported_catalogue();
    let first = items.iter().position(pick).unwrap();
    let mut copy = items[first].clone();
    match &mut copy {
        catalogue::Item::Performance(p) => p.code = stxd::ident::Code::new("OTHER").unwrap(),
        catalogue::Item::Product(p) => p.code = stxd::ident::Code::new("OTHER").unwrap(),
        _ => {}
    }
    let last = items
        .iter()
        .rposition(|i| std::mem::discriminant(i) == std::mem::discriminant(&items[first]));
    let at = last.unwrap() + 1;
    // A product's performance references follow it: the copy goes after them.
    let at = items[at..]
        .iter()
        .position(|i| !matches!(i, catalogue::Item::PerformanceRef(_)))
        .map_or(items.len(), |n| at + n);
    items.insert(at, copy);
    (items, first + 1, at + 1)
}

#[test]
fn a_catalogue_repeating_a_performance_or_a_product_is_refused_with_both_records() {
    let is_performance: fn(&catalogue::Item) -> bool =
        |i| matches!(i, catalogue::Item::Performance(_));
    let is_product: fn(&catalogue::Item) -> bool = |i| matches!(i, catalogue::Item::Product(_));
    for (kind, pick) in [("performance", is_performance), ("product", is_product)] {
        let dir = tempfile::tempdir().unwrap();
        let mut s = distributor(dir.path());
        let (items, first, second) = repeated(pick);
        let err =
            import_catalogue(&mut s, &items, "opera-tourism.CATALOGUE.00000001.xml").unwrap_err();
        let (code, text) = content(err);
        assert_eq!(code, "duplicate-id", "{text}");
        assert!(
            text.contains(&format!(
                "appears at record {first} and at record {second} ({kind} OTHER"
            )),
            "{kind}: {text}"
        );
        assert!(
            text.starts_with("opera-tourism.CATALOGUE.00000001.xml: record "),
            "{text}"
        );
        assert_eq!(
            scalar(&s, "SELECT count(*) FROM mapping"),
            0,
            "nothing kept"
        );
    }
}

/// A record with no id of its own that the importer refuses (a price given
/// twice in its rate table) is named by its rank and in words.
#[test]
fn a_price_given_twice_is_refused_at_its_record_named_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = distributor(dir.path());
    map_seat_categories(&mut s);
    applied(import_seatplan(&mut s, &seatplan_items()).unwrap().0);
    map_catalogue_references(&mut s);
    let mut items = exported_catalogue();
    let first = items
        .iter()
        .position(|i| matches!(i, catalogue::Item::Price(_)))
        .unwrap();
    let catalogue::Item::Price(p) = items[first].clone() else {
        unreachable!("a price")
    };
    items.insert(first + 1, catalogue::Item::Price(p.clone()));
    let err = import_catalogue(&mut s, &items, "opera-tourism.CATALOGUE.00000001.xml").unwrap_err();
    let (code, text) = content(err);
    assert_eq!(code, "mapping-collision", "{text}");
    let words = format!(
        "record {} (price of rate table {} for seat category {}, tariff type {}, audience subcategory {})",
        first + 2,
        p.rate_table,
        p.seat_category,
        p.tariff_type,
        p.audience_subcategory
    );
    assert!(text.contains(&words), "{text}");
    assert_eq!(
        scalar(&s, "SELECT count(*) FROM rate_table"),
        0,
        "nothing kept"
    );
}

fn read_contingent(text: &str) -> Result<Vec<contingent::Line>, FormatError> {
    contingent::Reader::new(text.as_bytes(), "c.csv", Limits::default()).collect()
}

fn read_sales(text: &str) -> Result<Vec<sales::Line>, FormatError> {
    sales::Reader::new(text.as_bytes(), "s.csv", Limits::default()).collect()
}

#[test]
fn a_contingent_repeating_a_performance_or_a_seat_names_both_lines() {
    let head = "performance;version;type;block;row;seat;zone;quantity;seat_category\n";
    let twice = format!(
        "{head}1701;1;PERFORMANCE;;;;;;\n1701;1;SEAT;3301;A;1;;;2001\n1701;1;SEAT;3301;A;1;;;2001\n"
    );
    let e = read_contingent(&twice).unwrap_err();
    assert_eq!(e.code, "contingent-duplicate-seat");
    assert!(
        e.to_string().contains("line 4") && e.to_string().contains("on line 3"),
        "{e}"
    );
    let again = format!(
        "{head}1701;1;PERFORMANCE;;;;;;\n1702;1;PERFORMANCE;;;;;;\n1701;1;PERFORMANCE;;;;;;\n"
    );
    let e = read_contingent(&again).unwrap_err();
    assert_eq!(e.code, "contingent-duplicate-performance");
    assert!(
        e.to_string().contains("line 4") && e.to_string().contains("on line 2"),
        "{e}"
    );
}

const SALES_HEADER: &str = "line;operation;time;order;refund_of;performance;block;row;seat;zone;seat_category;tariff_type;audience_subcategory;amount;currency;vat_code;contingent_version\n";

fn sale(line: &str) -> String {
    format!(
        "{line};SALE;2026-12-01T10:15:00Z;T-000001;;1701;3301;A;1;;2001;1201;1301;8500;EUR;1101;\n"
    )
}

#[test]
fn a_sales_file_repeating_a_line_id_names_both_lines_and_a_huge_id_its_limit() {
    let twice = format!("{SALES_HEADER}{}{}", sale("7"), sale("7"));
    let e = read_sales(&twice).unwrap_err();
    assert_eq!(e.code, "sales-line-order");
    assert_eq!(e.position.to_string(), "line 3, field line");
    assert!(
        e.problem.contains("line id 7 appears at line 2 and line 3"),
        "{e}"
    );
    let huge = format!("{SALES_HEADER}{}", sale("9223372036854775808"));
    let e = read_sales(&huge).unwrap_err();
    assert_eq!(e.code, "bad-number");
    assert_eq!(e.to_string().split(": ").next(), Some("s.csv"));
    assert_eq!(e.position.to_string(), "line 2, field line");
    assert!(e.problem.contains("1 to 9223372036854775807"), "{e}");
    let largest = format!("{SALES_HEADER}{}", sale("9223372036854775807"));
    assert_eq!(read_sales(&largest).unwrap().len(), 1);
}

#[test]
fn a_contingent_version_far_ahead_goes_to_error_with_its_code_and_line_and_the_real_one_applies() {
    use crate::util::{Sandbox, seal};
    let sb = Sandbox::new();
    sb.first_use_done();
    crate::drop_folders::manager_ready(&sb);
    let inbox = sb.path().join("var/exchange/opera-tourism/to-distributor");
    let payload = "performance;version;type;block;row;seat;zone;quantity;seat_category\n\
                   1701;5000000;PERFORMANCE;;;;;;\n\
                   1701;5000000;SEAT;3301;A;1;;;2001\n";
    let m = seal(
        &inbox,
        &sb.demo_secret(),
        stxd::format::Kind::Contingent,
        1,
        payload.as_bytes(),
        2,
    );
    sb.stxd(&["process"]);
    let reason = std::fs::read_to_string(
        inbox
            .join("error")
            .join(format!("{}.reason", m.manifest_name())),
    )
    .expect("refused into error/ with its reason");
    assert!(reason.contains("code: version-out-of-range"), "{reason}");
    assert!(reason.contains("position: line 2\n"), "{reason}");
    assert!(
        reason.contains("opera-tourism.CONTINGENT.00000001.csv: line 2: performance 1701: version 5000000 is more than 1000000 ahead"),
        "{reason}"
    );
    let tourism = rusqlite::Connection::open(sb.path().join("var/state/TOURISM.sqlite")).unwrap();
    let snapshots = |c: &rusqlite::Connection| -> i64 {
        c.query_row("SELECT count(*) FROM contingent_snapshot", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(snapshots(&tourism), 0, "nothing applied");
    // The manager's own export takes sequence 1 again and applies.
    sb.stxd(&["export", "contingent", "--link", "opera-tourism"])
        .expect_code(0);
    sb.stxd(&["process"]).expect_code(0);
    assert_eq!(snapshots(&tourism), 1);
    let version: i64 = tourism
        .query_row("SELECT version FROM contingent_snapshot", [], |r| r.get(0))
        .unwrap();
    assert!(version < 10, "{version}");
}
