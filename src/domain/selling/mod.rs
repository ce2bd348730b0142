//! Contingents and selling at the distributor: the seats the manager set
//! aside become sellable, the point of sale sells and refunds them at the
//! validated rate table's prices, and the lines go back to the manager.
//!
//! Three parts, each over the caller's transaction (never reading files or
//! config, never committing):
//!
//! - [`ContingentImport`]: the CONTINGENT file's lines, pushed one at a time
//!   by the inbound pipeline. Each performance's snapshot replaces the one
//!   applied before, unless it is not newer (then it is ignored and logged,
//!   `older-snapshot`). A seat the snapshot takes back but that is sold here
//!   stays sold, only no longer sellable; a zone whose new quantity is below
//!   its sales keeps them (both reported, `kept-sold`).
//! - [`sell()`], [`refund`], [`refund_performance`], [`list`]: the point of
//!   sale (a cancelled performance's tickets are listed with
//!   `Filter::to_refund` and refunded all at once). A sale is refused,
//!   with a [`SaleRefusal`] naming the reason, unless the product selling the
//!   performance is validated and in a sales profile, the place is in the
//!   contingent and free, and the rate table has a price for it. Each change
//!   records a run (`sale-sell`, `sale-refund`) in the same transaction;
//!   [`log_refusal`] records a refused attempt in a failed run.
//! - [`export_sales`]: every line not yet sent, translated to the manager's
//!   ids through the mapping table (reverse lookups, each kind's rows read
//!   once for the file: [`ManagerIds`](crate::domain::mapping::ManagerIds)), then one ACK
//!   per contingent snapshot applied; the lines are marked with the file's
//!   sequence.
//!
//! One file per part (`contingent_import`, `sell`, `lines`, `export`); this module
//! re-exports their public items, so the paths stay `domain::selling::…`.

mod contingent_import;
mod export;
mod lines;
mod sell;

pub use contingent_import::{ContingentImport, ContingentOutcome, MAX_VERSION_JUMP};
pub use export::{export_sales, sales_name_logical};
pub use lines::{Filter, LineView, ResolutionView, list, refund_performance};
pub use sell::{Place, Sale, SaleReceipt, SaleRefusal, log_refusal, refund, sell};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DomainError;
    use crate::domain::fixtures;
    use crate::domain::import::Context;
    use crate::domain::mapping;
    use crate::format::contingent;
    use crate::ident::{Code, TechId};
    use crate::store::Store;
    use crate::store::mapping::MappingKind;
    use crate::store::runs;

    /// A distributor store with one performance, two seats, a zone, a
    /// validated product and the mappings of a few manager objects.
    fn store(dir: &std::path::Path) -> Store {
        let mut s = fixtures::tourism(dir);
        s.write(|tx| -> Result<(), DomainError> {
            tx.execute_batch(
                "INSERT INTO season VALUES (1, 'S', 'S', '2026-01-01', '2026-12-31');
                 INSERT INTO vat_code VALUES (1, 'V', 'V', 550);
                 INSERT INTO tariff_type VALUES (1, 'NORMAL', 'Normal');
                 INSERT INTO audience_subcategory VALUES (1, 'ADULT', 'Adulte');
                 INSERT INTO seat_category VALUES (1, 'PREM', 'Premiere');
                 INSERT INTO seat_category VALUES (2, 'SECONDE', 'Seconde');
                 INSERT INTO activity VALUES (1, 'A', 'A', 1, 1);
                 INSERT INTO venue VALUES (1, 'V', 'V');
                 INSERT INTO configuration VALUES (1, 1, 'C', 'C');
                 INSERT INTO block VALUES (1, 1, 'PARTERRE', 'Parterre');
                 INSERT INTO seat_row VALUES (1, 1, 'A');
                 INSERT INTO seat VALUES (1, 1, '1', 1);
                 INSERT INTO seat VALUES (2, 1, '2', 1);
                 INSERT INTO zone VALUES (1, 1, 'FOSSE', 'Fosse', 2, 150);
                 INSERT INTO logical_configuration VALUES (1, 'L', 'L', 1, 'validated');
                 INSERT INTO performance VALUES (1, 'P1', 'P1', 1, '2037-01-15T20:00:00+01:00', 1, 1, 'in_operation');
                 INSERT INTO rate_table VALUES (1, 'R', 'R', 'EUR', 'validated', NULL);
                 INSERT INTO price VALUES (1, 1, 1, 1, 8500);
                 INSERT INTO product VALUES (1, 'X', 'X', 1, 1, 'validated');
                 INSERT INTO product_performance VALUES (1, 1, 1);
                 INSERT INTO sales_profile VALUES (8201, 'GUICHET', 'Guichet');
                 INSERT INTO sales_profile_product VALUES (8201, 1);
                 INSERT INTO mapping (manager, kind, manager_id, manager_code, manager_label,
                     local_id, status, first_seen, last_seen)
                 VALUES ('OPERA', 'performance', 1701, 'P', 'P', 1, 'filled', 'x', 'x'),
                        ('OPERA', 'block', 3301, 'B', 'B', 1, 'filled', 'x', 'x'),
                        ('OPERA', 'zone', 3201, 'Z', 'Z', 1, 'filled', 'x', 'x'),
                        ('OPERA', 'seat_category', 2001, 'C1', 'C1', 1, 'filled', 'x', 'x'),
                        ('OPERA', 'seat_category', 2002, 'C2', 'C2', 2, 'filled', 'x', 'x'),
                        ('OPERA', 'audience_subcategory', 1301, 'A', 'A', 1, 'filled', 'x', 'x'),
                        ('OPERA', 'vat_code', 1101, 'V', 'V', 1, 'filled', 'x', 'x');",
            )?;
            Ok(())
        })
        .unwrap();
        s
    }

    fn import(s: &mut Store, lines: &[contingent::Line]) -> Result<ContingentOutcome, DomainError> {
        s.write(|tx| {
            let run = runs::start(tx, "import-contingent", Some("l"), Some("f"))?;
            let ctx = Context {
                manager: "OPERA",
                file: "f",
                run,
            };
            let mut i = ContingentImport::new(tx, ctx, "l");
            for l in lines {
                i.item(l)?;
            }
            i.finish()
        })
    }

    fn id(v: i64) -> TechId {
        TechId::new(v).unwrap()
    }

    fn seat_line(version: u64, seat: &str, category: i64) -> contingent::Line {
        contingent::Line::Seat {
            performance: id(1701),
            version,
            block: id(3301),
            row: Code::new("A").unwrap(),
            seat: Code::new(seat).unwrap(),
            seat_category: id(category),
        }
    }

    fn perf_line(version: u64) -> contingent::Line {
        contingent::Line::Performance {
            performance: id(1701),
            version,
        }
    }

    #[test]
    fn reverse_lookup_finds_one_none_or_refuses_several() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        s.read(|c| -> Result<(), DomainError> {
            assert_eq!(
                mapping::manager_id_of(c, "OPERA", MappingKind::Block, 1)?,
                Some(id(3301))
            );
            assert_eq!(
                mapping::manager_id_of(c, "OPERA", MappingKind::TariffType, 1)?,
                None
            );
            assert_eq!(
                mapping::manager_id_of(c, "OTHER", MappingKind::Block, 1)?,
                None
            );
            Ok(())
        })
        .unwrap();
        s.write(|tx| -> Result<(), DomainError> {
            tx.execute_batch(
                "INSERT INTO mapping (manager, kind, manager_id, manager_code, manager_label,
                     local_id, status, first_seen, last_seen)
                 VALUES ('OPERA', 'tariff_type', 1201, 'T', 'T', 1, 'filled', 'x', 'x'),
                        ('OPERA', 'tariff_type', 1203, 'G', 'G', 1, 'filled', 'x', 'x')",
            )?;
            Ok(())
        })
        .unwrap();
        let e = s
            .read(|c| mapping::manager_id_of(c, "OPERA", MappingKind::TariffType, 1))
            .unwrap_err();
        assert!(e.to_string().contains("1201, 1203"), "{e}");
    }

    #[test]
    fn a_seat_whose_category_differs_from_the_local_plan_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        let e = import(&mut s, &[perf_line(1), seat_line(1, "1", 2002)]).unwrap_err();
        assert!(e.to_string().contains("seat category 2002"), "{e}");
        let e = import(&mut s, &[perf_line(1), seat_line(1, "9", 2001)]).unwrap_err();
        assert!(e.to_string().contains("no such seat"), "{e}");
        let o = import(&mut s, &[perf_line(1), seat_line(1, "1", 2001)]).unwrap();
        assert_eq!(o.applied, vec![(id(1701), 1)]);
    }

    /// A sale of seat A 1 of PARTERRE for P1, full adult price.
    fn seat_a1() -> Sale {
        Sale {
            performance: "P1".into(),
            place: Place::Seat {
                block: "PARTERRE".into(),
                row: "A".into(),
                number: "1".into(),
            },
            tariff: "NORMAL".into(),
            audience: "ADULT".into(),
            order: None,
        }
    }

    #[test]
    fn a_performance_that_started_is_not_sold() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        import(&mut s, &[perf_line(1), seat_line(1, "1", 2001)]).unwrap();
        let sale = seat_a1();
        let started = |s: &mut Store, start: &str| {
            s.write(|tx| -> Result<(), DomainError> {
                tx.execute("UPDATE performance SET start = ?1 WHERE id = 1", [start])?;
                Ok(())
            })
            .unwrap();
        };
        started(&mut s, "2025-01-15T20:00:00+01:00");
        let e = s.write(|tx| sell(tx, "l", &sale)).unwrap_err();
        assert_eq!(e.code(), "not-sellable");
        assert!(
            e.to_string()
                .contains("it started at 2025-01-15T20:00:00+01:00"),
            "{e}"
        );
        // Nothing was written: the seat sells once the start is ahead.
        started(&mut s, "2099-01-15T20:00:00+01:00");
        let r = s.write(|tx| sell(tx, "l", &sale)).unwrap();
        assert_eq!(r.line, 1);
    }

    #[test]
    fn an_export_with_an_unmapped_object_is_refused_and_marks_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        import(&mut s, &[perf_line(1), seat_line(1, "1", 2001)]).unwrap();
        let sale = seat_a1();
        let r = s.write(|tx| sell(tx, "l", &sale)).unwrap();
        assert_eq!(
            (r.line, r.price.as_str(), r.order.as_str()),
            (1, "85.00 EUR", "T-000001")
        );
        // The tariff type is not mapped: the export cannot name it.
        let e = s
            .write(|tx| export_sales(tx, "l", "OPERA", 1, &mut |_| Ok(())))
            .unwrap_err();
        assert_eq!(e.code(), "bad-data");
        assert!(e.to_string().contains("local tariff_type 1"), "{e}");
        let unsent = s
            .read(|c| {
                list(
                    c,
                    &Filter {
                        unexported: true,
                        ..Filter::default()
                    },
                )
            })
            .unwrap();
        assert_eq!(unsent.len(), 1);
    }
}
