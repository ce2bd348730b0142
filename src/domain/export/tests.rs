//! Unit tests of the exports (on the opera fixture).
//!
//! Audiences, the report, and what the catalogue and seat-plan exports
//! leave out or refuse.

use super::*;
use crate::domain::fixtures::opera as store;
use crate::format::{catalogue, seatplan};
use crate::store::{Store, StoreError};

fn sql(store: &mut Store, sql: &str) {
    store
        .write(|tx| -> Result<(), StoreError> { Ok(tx.execute_batch(sql)?) })
        .unwrap();
}

const SCOPE: Scope<'static> = Scope {
    distributor: "TOURISM",
    login: "TOURISM_OPE@TOURISM",
    products: None,
};

fn catalogue_of(store: &Store) -> Result<(Vec<catalogue::Item>, Report), ExportError> {
    store.read(|c| {
        let mut items = Vec::new();
        let report = catalogue(c, &SCOPE, &mut |i| {
            items.push(i.clone());
            Ok(())
        })?;
        Ok((items, report))
    })
}

#[test]
fn audiences_intersect_and_allow() {
    let only = |v: &[i64]| Audiences::Only(v.iter().copied().collect());
    assert_eq!(Audiences::All.intersect(&only(&[1])), only(&[1]));
    assert_eq!(only(&[1, 2]).intersect(&only(&[2, 3])), only(&[2]));
    assert!(Audiences::All.allows(7));
    assert!(!only(&[1]).allows(2));
}

#[test]
fn report_counts_by_label_in_first_seen_order() {
    let mut r = Report::default();
    for l in ["a", "b", "a"] {
        r.count(l);
    }
    assert_eq!(r.included, [("a".to_owned(), 2), ("b".to_owned(), 1)]);
    assert_eq!((r.included("a"), r.included("z"), r.total()), (2, 0, 3));
}

#[test]
fn a_profile_without_audiences_allows_every_priced_one() {
    let (_dir, mut store) = store();
    sql(
        &mut store,
        "DELETE FROM product_profile_audience WHERE product_profile = 5701",
    );
    let (items, report) = catalogue_of(&store).unwrap();
    let prices = items
        .iter()
        .filter(|i| matches!(i, catalogue::Item::Price(_)))
        .count();
    assert_eq!(prices, 16);
    assert_eq!(report.included("audience subcategories"), 3);
    assert!(
        !report
            .excluded
            .iter()
            .any(|x| x.object.contains("price(s)"))
    );
}

#[test]
fn a_rate_table_with_no_allowed_price_leaves_its_product_out() {
    let (_dir, mut store) = store();
    sql(
        &mut store,
        "DELETE FROM product_profile_audience WHERE product_profile = 5701;
         INSERT INTO product_profile_audience VALUES (5701, 1304);",
    );
    let ExportError::NothingToSell(report) = catalogue_of(&store).unwrap_err() else {
        panic!("expected nothing to sell");
    };
    let reason = &report
        .excluded
        .iter()
        .find(|x| x.object == "product 1901 TRAV-BIL")
        .unwrap()
        .reason;
    assert!(reason.contains("no price"), "{reason}");
    assert!(
        reason.contains("audience subcategory 1304 SENIOR"),
        "{reason}"
    );
}

#[test]
fn an_empty_zone_is_left_out_of_the_seat_plan() {
    let (_dir, mut store) = store();
    sql(&mut store, "UPDATE zone SET capacity = 0 WHERE id = 3201");
    let (zones, report) = store
        .read(|c| -> Result<_, ExportError> {
            let mut zones = 0;
            let report = seatplan(c, &SCOPE, &mut |i| {
                zones += u32::from(matches!(i, seatplan::Item::Zone(_)));
                Ok(())
            })?;
            Ok((zones, report))
        })
        .unwrap();
    assert_eq!(zones, 0);
    assert_eq!(report.excluded.len(), 1);
    assert_eq!(report.excluded[0].object, "zone 3201 FOSSE");
    // Its seat category is named by no remaining seat: not exported.
    assert_eq!(report.included("seat categories"), 3);
}

#[test]
fn a_hand_edited_code_is_reported_with_its_object() {
    let (_dir, mut store) = store();
    sql(
        &mut store,
        "UPDATE tariff_type SET code = 'BAD CODE' WHERE id = 1201",
    );
    let e = catalogue_of(&store).unwrap_err();
    assert_eq!(e.code(), "bad-data");
    assert!(
        e.to_string().starts_with("tariff type 1201 BAD CODE:"),
        "{e}"
    );
}
