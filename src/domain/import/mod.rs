//! The distributor's imports of the manager's files: seat plans and
//! catalogues, translated through the mapping table.
//!
//! Takes the records of one file, pushed one at a time by the inbound pipeline
//! inside the transaction that also journals the file and holds its run, and
//! returns an [`Outcome`]: applied (with a [`Summary`]) or parked (with every
//! [`Missing`] mapping). It never reads files, never commits and never
//! finishes the run: the pipeline does.
//!
//! # All or nothing, with the pending rows kept
//!
//! Each importer opens a SAVEPOINT in the caller's transaction when it is
//! created. Records are applied as they stream in; the reference objects the
//! manager maps by hand (season, activity, VAT code, tariff type, physical
//! seat category, audience subcategory) come first in both formats, so a
//! missing mapping is usually known before anything is written, and from then
//! on nothing more is applied (the records are only read for what they
//! reference). At [`CatalogueImport::finish`] / [`SeatplanImport::finish`] a
//! file with a pending or broken mapping rolls back to the savepoint, then
//! records its sightings again (so the pending rows ops must fill exist, with
//! the manager's code and label) and one error message per missing mapping in
//! the run; an applied file releases the savepoint. Dropping an importer
//! without `finish` rolls back to the savepoint too.
//!
//! # What is needed
//!
//! Every reference object a file declares is looked up (and recorded) when it
//! is declared: the manager's export declares exactly the objects its records
//! use, so a declared object that is pending parks the file, whether or not
//! the records naming it are later skipped. A record naming an object the file
//! does not declare is refused ([`DomainError::Invalid`](super::DomainError::Invalid)): the file is not a
//! coherent snapshot. The physical configuration a logical configuration or a
//! performance names is not declared by a catalogue: it comes from the seat
//! plan import ("import the seat plan first" while it is not mapped).
//!
//! Ignored mappings skip the records naming them (a price for an ignored
//! audience subcategory, a performance or product of an ignored activity…),
//! each with an info message. Objects created at the distributor get new
//! local ids (never the manager's) and are mapped automatically.
//!
//! # Catalogue snapshots
//!
//! A catalogue is the full snapshot of what the link sells. Logical
//! configurations, rate tables and products are created `to_validate`; an
//! unchanged object keeps its state; a changed one returns to `to_validate`
//! with each difference as an info message (code `changed`) and a
//! `catalogue_change` row ops review until they validate it. Validation is
//! per object (`docs/catalogue-changes.md` says what "unchanged" means): a
//! changed logical configuration or rate table does not send its products
//! back; a performance added to a product, or whose own data changed, leaves
//! the product validated and only its link (`product_performance.validated`)
//! to validate. A product mapped before and absent from the file is
//! `suspended` (warning `withdrawn`), never deleted. Prices and performance
//! links no longer sent are removed (they are cells and links, not objects);
//! logical seat categories no longer sent are kept and reported.
//!
//! # Files
//!
//! One file per part: `savepoint` (the SAVEPOINT of all or nothing), `refs`
//! (the references seen and the helpers both importers share), `seatplan`
//! ([`SeatplanImport`]) and `catalogue` ([`CatalogueImport`]); this module
//! holds the types they return and re-exports the importers.

mod catalogue;
mod refs;
mod savepoint;
mod seat_changes;
mod seatplan;
mod seen;

pub use catalogue::CatalogueImport;
pub use refs::still_missing;
pub use seatplan::SeatplanImport;

use crate::ident::TechId;
use crate::store::mapping::MappingKind;

/// Who and what an import works for.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The external manager's code (the link's manager institution, `OPERA`).
    pub manager: &'a str,
    /// The file being imported (recorded as the first file of new mapping rows).
    pub file: &'a str,
    /// The run the pipeline started for this file; messages go there.
    pub run: i64,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Applied: the counts of local objects touched.
    Applied(Summary),
    /// Nothing applied but the pending mapping rows and the run messages:
    /// every mapping the file needs and lacks.
    Parked(Vec<Missing>),
}

/// Counts of the records an applied import wrote, per effect. Seat plans count
/// venues, configurations, zones, blocks, rows and seats; catalogues count
/// logical configurations and their seat categories, performances, rate
/// tables, prices, products and their performance links. Reference objects
/// (mapped by hand) are not counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Products withdrawn by the manager (absent from the snapshot).
    pub suspended: u64,
    /// Records skipped because they name an ignored mapping.
    pub skipped: u64,
}

impl Summary {
    /// Records applied (created, updated or unchanged).
    pub fn records(&self) -> u64 {
        self.created + self.updated + self.unchanged
    }
}

/// A mapping a parked file needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub kind: MappingKind,
    pub manager_id: TechId,
    /// The manager's code for the object.
    pub code: String,
    /// The manager's name for it.
    pub label: String,
    /// The first record of the file that needs it.
    pub needed_by: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Created,
    Updated,
    Unchanged,
}

impl Summary {
    fn add(&mut self, change: Change) {
        match change {
            Change::Created => self.created += 1,
            Change::Updated => self.updated += 1,
            Change::Unchanged => self.unchanged += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DomainError;
    use crate::domain::fixtures::tourism as store;
    use crate::domain::mapping::{self, Seen};
    use crate::format::seatplan;
    use crate::ident::Code;
    use crate::store::Store;
    use crate::store::runs;

    fn code(s: &str) -> Code {
        Code::new(s).unwrap()
    }

    fn id(n: i64) -> TechId {
        TechId::new(n).unwrap()
    }

    fn plan(category: i64) -> Vec<seatplan::Item> {
        use seatplan::*;
        vec![
            Item::SeatCategory(SeatCategory {
                id: id(2001),
                code: code("CAT1"),
                name: crate::ident::Name::new("Catégorie 1").unwrap(),
            }),
            Item::Venue(Venue {
                id: id(3001),
                code: code("V"),
                name: crate::ident::Name::new("Venue").unwrap(),
            }),
            Item::Configuration(Configuration {
                id: id(3101),
                venue: id(3001),
                code: code("STD"),
                name: crate::ident::Name::new("Std").unwrap(),
            }),
            Item::Block(Block {
                id: id(3301),
                configuration: id(3101),
                code: code("B"),
                name: crate::ident::Name::new("Block").unwrap(),
            }),
            Item::Row(Row {
                id: id(4001),
                block: id(3301),
                code: code("A"),
            }),
            Item::Seat(Seat {
                id: id(50001),
                row: id(4001),
                number: code("1"),
                seat_category: id(category),
            }),
        ]
    }

    fn run_plan(s: &mut Store, items: &[seatplan::Item]) -> Result<Outcome, DomainError> {
        s.write(|tx| {
            let run = runs::start(tx, "import-seatplan", None, Some("f"))?;
            let mut imp = SeatplanImport::new(
                tx,
                Context {
                    manager: "OPERA",
                    file: "f",
                    run,
                },
            )?;
            for item in items {
                imp.item(item)?;
            }
            imp.finish()
        })
    }

    #[test]
    fn a_pending_seat_category_parks_the_plan_and_keeps_only_the_pending_row() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        let out = run_plan(&mut s, &plan(2001)).unwrap();
        let Outcome::Parked(missing) = out else {
            panic!("expected parked, got {out:?}")
        };
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].kind, MappingKind::SeatCategory);
        assert_eq!(missing[0].needed_by, "seat B A 1");
        let (venues, mappings): (i64, i64) = s
            .read(|c| {
                Ok::<_, DomainError>((
                    c.query_row("SELECT count(*) FROM venue", [], |r| r.get(0))?,
                    c.query_row("SELECT count(*) FROM mapping", [], |r| r.get(0))?,
                ))
            })
            .unwrap();
        assert_eq!((venues, mappings), (0, 1));
    }

    #[test]
    fn a_mapped_plan_applies_with_new_ids_and_again_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        s.write(|tx| -> Result<(), DomainError> {
            tx.execute(
                "INSERT INTO seat_category (id, code, name) VALUES (7501, 'PREM', 'Première')",
                [],
            )?;
            mapping::fill_auto(
                tx,
                &Seen {
                    manager: "OPERA",
                    kind: MappingKind::SeatCategory,
                    manager_id: id(2001),
                    code: &code("CAT1"),
                    label: "Catégorie 1",
                    file: "x",
                },
                7501,
            )
        })
        .unwrap();
        let Outcome::Applied(first) = run_plan(&mut s, &plan(2001)).unwrap() else {
            panic!("expected applied")
        };
        assert_eq!((first.created, first.updated), (5, 0));
        let seat: (i64, i64) = s
            .read(|c| -> Result<_, DomainError> {
                Ok(c.query_row("SELECT id, seat_category FROM seat", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?)
            })
            .unwrap();
        assert_ne!(seat.0, 50001, "the manager's id is never reused");
        assert_eq!(seat.1, 7501);
        let Outcome::Applied(again) = run_plan(&mut s, &plan(2001)).unwrap() else {
            panic!("expected applied")
        };
        assert_eq!((again.created, again.updated, again.unchanged), (0, 0, 5));
    }

    #[test]
    fn a_parked_run_is_still_missing_its_mappings_until_one_is_filled_or_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        let Outcome::Parked(_) = run_plan(&mut s, &plan(2001)).unwrap() else {
            panic!("expected parked")
        };
        let still = |s: &Store| {
            s.read(|c| -> Result<_, DomainError> {
                let run: i64 = c.query_row("SELECT max(id) FROM run", [], |r| r.get(0))?;
                still_missing(c, "OPERA", run)
            })
            .unwrap()
        };
        let set = |s: &mut Store, sql: &str| {
            s.write(|tx| -> Result<(), DomainError> {
                tx.execute_batch(sql)?;
                Ok(())
            })
            .unwrap();
        };
        // Pending.
        assert_eq!(still(&s), Some(true));
        // Another manager's mapping of the same id changes nothing.
        assert_eq!(
            s.read(|c| -> Result<_, DomainError> {
                let run: i64 = c.query_row("SELECT max(id) FROM run", [], |r| r.get(0))?;
                still_missing(c, "OTHER", run)
            })
            .unwrap(),
            Some(true)
        );
        // Filled: the file would apply.
        set(
            &mut s,
            "INSERT INTO seat_category (id, code, name) VALUES (7501, 'PREM', 'Première');
             UPDATE mapping SET status = 'filled', local_id = 7501 WHERE manager_id = 2001;",
        );
        assert_eq!(still(&s), Some(false));
        // Broken (its local object deleted): missing again.
        set(&mut s, "DELETE FROM seat_category WHERE id = 7501;");
        assert_eq!(still(&s), Some(true));
        // Ignored: the file would apply, skipping the seat.
        set(
            &mut s,
            "UPDATE mapping SET status = 'ignored', local_id = NULL WHERE manager_id = 2001;",
        );
        assert_eq!(still(&s), Some(false));
        // Gone from the table: a retry would park again.
        set(&mut s, "DELETE FROM mapping WHERE manager_id = 2001;");
        assert_eq!(still(&s), Some(true));
        // A run that names no missing mapping: only applying can tell.
        let other = s
            .write(|tx| -> Result<i64, DomainError> {
                Ok(runs::start(tx, "import-seatplan", None, Some("g"))?)
            })
            .unwrap();
        let none = s
            .read(|c| -> Result<_, DomainError> { still_missing(c, "OPERA", other) })
            .unwrap();
        assert_eq!(none, None);
    }

    #[test]
    fn an_undeclared_seat_category_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        let e = run_plan(&mut s, &plan(2999)).unwrap_err().to_string();
        assert!(e.contains("does not declare"), "{e}");
    }

    #[test]
    fn dropping_an_import_unfinished_rolls_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        s.write(|tx| -> Result<(), DomainError> {
            let mut imp = SeatplanImport::new(
                tx,
                Context {
                    manager: "OPERA",
                    file: "f",
                    run: 1,
                },
            )?;
            imp.item(&plan(2001)[1])?;
            drop(imp);
            Ok(())
        })
        .unwrap();
        let venues: i64 = s
            .read(|c| -> Result<i64, DomainError> {
                Ok(c.query_row("SELECT count(*) FROM venue", [], |r| r.get(0))?)
            })
            .unwrap();
        assert_eq!(venues, 0);
    }
}
