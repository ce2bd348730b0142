//! Unit tests of the contingents (on the opera fixture).
//!
//! References by id or code, seat runs, allotments refused whole, zone
//! tickets counted once.

use super::*;
use crate::domain::fixtures::opera as store;

fn id(v: i64) -> TechId {
    TechId::new(v).unwrap()
}

fn seats(block: &str, row: &str, from: u32, to: u32) -> Places {
    Places::Seats(vec![SeatRange {
        block: Ref::parse(block).unwrap(),
        row: Code::new(row).unwrap(),
        from,
        to,
    }])
}

#[test]
fn refs_parse_ids_then_codes() {
    assert_eq!(Ref::parse("3301").unwrap(), Ref::Id(id(3301)));
    assert_eq!(
        Ref::parse("PARTERRE").unwrap(),
        Ref::Code(Code::new("PARTERRE").unwrap())
    );
    assert!(Ref::parse("").is_err());
}

#[test]
fn seat_runs_group_consecutive_seats() {
    let (_d, mut s) = store();
    s.write(|tx| {
        allocate(tx, "l", id(1701), seats("PARTERRE", "A", 1, 3))?;
        allocate(tx, "l", id(1701), seats("3301", "A", 5, 6))?;
        release(tx, "l", id(1701), seats("PARTERRE", "A", 2, 2))
    })
    .unwrap();
    let v = s.read(|c| show(c, "l", None)).unwrap();
    assert_eq!(v.len(), 1);
    let runs: Vec<_> = v[0]
        .seats
        .iter()
        .map(|r| format!("{} {} {}-{} {}", r.block_code, r.row, r.from, r.to, r.state))
        .collect();
    assert_eq!(
        runs,
        [
            "PARTERRE A 1-1 allotted",
            "PARTERRE A 2-2 held",
            "PARTERRE A 3-3 allotted",
            "PARTERRE A 5-6 allotted"
        ]
    );
    assert_eq!(
        (v[0].seats_allotted, v[0].seats_held, v[0].version),
        (4, 1, 3)
    );
}

#[test]
fn a_reversed_or_unknown_range_is_refused_whole() {
    let (_d, mut s) = store();
    let e = s
        .write(|tx| {
            allocate(
                tx,
                "l",
                id(1701),
                Places::Seats(vec![
                    SeatRange {
                        block: Ref::parse("PARTERRE").unwrap(),
                        row: Code::new("A").unwrap(),
                        from: 5,
                        to: 2,
                    },
                    SeatRange {
                        block: Ref::parse("PARTERRE").unwrap(),
                        row: Code::new("Z").unwrap(),
                        from: 1,
                        to: 1,
                    },
                    SeatRange {
                        block: Ref::parse("NOPE").unwrap(),
                        row: Code::new("A").unwrap(),
                        from: 1,
                        to: 1,
                    },
                    SeatRange {
                        block: Ref::parse("BALCON").unwrap(),
                        row: Code::new("A").unwrap(),
                        from: 18,
                        to: 19,
                    },
                ]),
            )
        })
        .unwrap_err()
        .to_string();
    assert!(e.contains("expected FROM ≤ TO"), "{e}");
    assert!(e.contains("block PARTERRE has no row Z"), "{e}");
    assert!(e.contains("block NOPE is not in configuration 3101"), "{e}");
    assert!(e.contains("seat BALCON A 19 does not exist"), "{e}");
    assert!(!e.contains("BALCON A 18 "), "{e}");
    assert!(s.read(|c| show(c, "l", None)).unwrap().is_empty());
}

/// A link's zone tickets are counted inside its allotment; tickets
/// beyond it (or of a link without one) take places of their own.
#[test]
fn zone_tickets_are_not_counted_twice() {
    let (_d, mut s) = store();
    s.write(|tx| -> Result<(), DomainError> {
        allocate(tx, "a", id(1701), Places::Zone { zone: Ref::parse("FOSSE").unwrap(), quantity: 10 })?;
        tx.execute_batch(
            "INSERT INTO sales_order (id, link, reference, channel, point_of_sale, payment_method, contact, created)
                 VALUES (1, 'a', 'R', 5001, 5101, 5201, 5301, 1);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 8)
             INSERT INTO ticket (sales_order, link, line, performance, zone, seat_category, tariff_type,
                 audience_subcategory, amount, currency, vat_code, sold_at, state)
             SELECT 1, CASE WHEN i <= 4 THEN 'a' ELSE 'b' END, i, 1701, 3201, 2004, 1201, 1301,
                 2500, 'EUR', 1101, 1796119200000000, 'valid' FROM n;",
        )?;
        Ok(())
    })
    .unwrap();
    // 150 − 10 (link a, its 4 tickets inside) − 4 (link b's tickets).
    assert_eq!(s.read(|c| zone_free(c, 1701, 3201, 150)).unwrap(), 136);
    assert_eq!(s.read(|c| zone_free(c, 1702, 3201, 150)).unwrap(), 150);
}

#[test]
fn a_planned_performance_cannot_be_allotted() {
    let (_d, mut s) = store();
    let e = s
        .write(|tx| allocate(tx, "l", id(1703), seats("PARTERRE", "A", 1, 1)))
        .unwrap_err();
    assert!(e.to_string().contains("is planned"), "{e}");
}
