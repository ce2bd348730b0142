//! The mapping table's rules, at the distributor: which local object stands
//! for a manager's object.
//!
//! Takes the manager objects a file names and returns what they map to
//! ([`Resolved`]). The first time a manager object is seen without a mapping,
//! a *pending* row is created with the manager's id, code and name as its
//! label, first and last seen and the file it was first seen in (the manual:
//! "the rows are initialised on the first calls"); every later sighting
//! refreshes the label and last seen, so a renamed manager object shows its
//! new name. Objects the distributor creates from the manager's own (seat
//! plan objects, performances, logical configurations, rate tables, products)
//! are mapped automatically ([`fill_auto`]). Ops fill or ignore the rest.
//! This module never creates catalogue objects; the import does.
//!
//! For ops (the distributor's side of `stxd mapping`): [`list`], [`set`],
//! [`ignore`], [`unset`] (kinds mapped by hand only, the local object named by
//! its code), [`check`] (pending and broken rows, as findings) and the CSV
//! round trip [`export`] / [`import`]. The CSV: `;`-separated UTF-8 (the
//! export starts with a byte order mark so spreadsheets read accents), the
//! header `manager;kind;manager_id;manager_code;manager_label;status;local_code`
//! (columns by name, in any order, each once), one row per manager object;
//! `status` is pending, filled or ignored and `local_code` is given exactly for
//! filled rows. Every cell a spreadsheet would read as a formula is written
//! with a leading `'`, which the import strips. The import checks every row
//! and applies all or nothing; its error codes are stable (`unknown-kind`,
//! `logical-seat-category`, `bad-id`, `bad-status`, `unknown-local-code`,
//! `ambiguous-local-code`, `missing-local-code`, `local-code-not-allowed`,
//! `duplicate-row`, `formula-cell`, `other-manager`, `automatic-kind`,
//! `bad-code`, `bad-name`, and the CSV layer's `csv-*`).
//!
//! One file per part: `resolve` (sightings and lookups, for the imports and
//! exports), `commands` (the ops commands) and `csv` (the CSV round trip);
//! this module re-exports their public items, so the paths stay
//! `domain::mapping::…`.

mod commands;
mod csv;
mod resolve;

pub use commands::{
    Change, Filter, LocalCode, Row, State, UNSEEN_CODE, UNSEEN_LABEL, check, ignore, list,
    local_codes, set, unset,
};
pub use csv::{
    CSV_COLUMNS, ImportError, ImportSummary, MAX_LISTED, MappingCsvErrors, export, import,
    neutralise,
};
pub use resolve::{
    FileMappings, ManagerIds, Resolved, Seen, fill_auto, is_mapped_by_hand, local_table, lookup,
    manager_id_of, parse_kind, resolve,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DomainError;
    use crate::domain::fixtures::tourism as store;
    use crate::ident::{Code, TechId};
    use crate::store::Store;
    use crate::store::mapping::{MappingKind, MappingStatus};

    #[test]
    fn first_sighting_creates_a_pending_row_and_later_ones_refresh_the_label() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        let code = Code::new("PLEIN").unwrap();
        let seen = Seen {
            manager: "OPERA",
            kind: MappingKind::TariffType,
            manager_id: TechId::new(1201).unwrap(),
            code: &code,
            label: "Plein tarif",
            file: "f1",
        };
        let r = s.write(|tx| resolve(tx, &seen)).unwrap();
        assert_eq!(r, Resolved::Pending);
        let renamed = Seen {
            label: "Tarif plein",
            file: "f2",
            ..seen
        };
        assert_eq!(
            s.write(|tx| resolve(tx, &renamed)).unwrap(),
            Resolved::Pending
        );
        let (label, first_file): (String, String) = s
            .read(|c| {
                c.query_row("SELECT manager_label, first_file FROM mapping", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(crate::store::StoreError::from)
            })
            .unwrap();
        assert_eq!((label.as_str(), first_file.as_str()), ("Tarif plein", "f1"));
    }

    #[test]
    fn a_mapping_to_a_deleted_local_object_is_broken() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        let code = Code::new("ADULTE").unwrap();
        let seen = Seen {
            manager: "OPERA",
            kind: MappingKind::AudienceSubcategory,
            manager_id: TechId::new(1301).unwrap(),
            code: &code,
            label: "Adulte",
            file: "f",
        };
        s.write(|tx| -> Result<(), DomainError> {
            tx.execute("INSERT INTO audience_subcategory (id, code, name) VALUES (7401, 'ADULT', 'Adulte')", [])?;
            fill_auto(tx, &seen, 7401)
        })
        .unwrap();
        assert_eq!(
            s.write(|tx| resolve(tx, &seen)).unwrap(),
            Resolved::Local(7401)
        );
        s.write(|tx| -> Result<(), DomainError> {
            tx.execute("DELETE FROM audience_subcategory", [])?;
            Ok(())
        })
        .unwrap();
        assert_eq!(
            s.write(|tx| resolve(tx, &seen)).unwrap(),
            Resolved::Broken(7401)
        );
    }

    /// A venue with one block and its rows 4 (A) and 5 (B).
    const ROWS_4_AND_5: &str = "INSERT INTO venue (id, code, name) VALUES (1, 'V', 'V');
         INSERT INTO configuration (id, venue, code, name) VALUES (2, 1, 'C', 'C');
         INSERT INTO block (id, configuration, code, name) VALUES (3, 2, 'B', 'B');
         INSERT INTO seat_row (id, block, code) VALUES (4, 3, 'A'), (5, 3, 'B');";

    #[test]
    fn a_files_held_look_up_reads_every_state_as_the_free_one_and_its_fills_share_one_time() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        let id = |n| TechId::new(n).unwrap();
        let code = Code::new("A").unwrap();
        s.write(|tx| -> Result<(), DomainError> {
            tx.execute_batch(&format!(
                "{ROWS_4_AND_5}
                 INSERT INTO mapping (manager, kind, manager_id, manager_code, manager_label,
                     local_id, status, first_seen, last_seen)
                 VALUES ('OPERA', 'row', 3003, 'C', 'B C', NULL, 'ignored', 't', 't'),
                        ('OPERA', 'row', 3004, 'D', 'B D', NULL, 'pending', 't', 't');"
            ))?;
            let mut maps = FileMappings::new(tx);
            for (manager_id, local) in [(3001, 4), (3002, 5)] {
                let seen = Seen {
                    manager: "OPERA",
                    kind: MappingKind::Row,
                    manager_id: id(manager_id),
                    code: &code,
                    label: "B A",
                    file: "f",
                };
                maps.fill(&seen, local)?;
            }
            tx.execute("DELETE FROM seat_row WHERE id = 5", [])?;
            for (manager_id, expected) in [
                (3001, Some(Resolved::Local(4))),
                (3002, Some(Resolved::Broken(5))),
                (3003, Some(Resolved::Ignored)),
                (3004, Some(Resolved::Pending)),
                (3005, None),
            ] {
                let held = maps.lookup("OPERA", MappingKind::Row, id(manager_id))?;
                let free = lookup(tx, "OPERA", MappingKind::Row, id(manager_id))?;
                assert_eq!((held, free), (expected, expected), "row {manager_id}");
            }
            let stamps: Vec<(String, String)> = tx
                .prepare(
                    "SELECT first_seen, last_seen FROM mapping WHERE status = 'filled'
                     ORDER BY manager_id",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            assert_eq!(stamps.len(), 2);
            assert!(
                stamps.iter().all(|t| *t == stamps[0] && t.0 == t.1),
                "{stamps:?}"
            );
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn a_declared_objects_look_up_reads_the_store_only_when_its_kind_had_rows_before_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        let id = |n| TechId::new(n).unwrap();
        let code = Code::new("A").unwrap();
        let row = |manager_id| Seen {
            manager: "OPERA",
            kind: MappingKind::Row,
            manager_id: id(manager_id),
            code: &code,
            label: "B A",
            file: "f",
        };
        s.write(|tx| -> Result<(), DomainError> {
            tx.execute_batch(&format!(
                "{ROWS_4_AND_5}
                 INSERT INTO mapping (manager, kind, manager_id, manager_code, manager_label,
                     local_id, status, first_seen, last_seen)
                 VALUES ('BALLET', 'row', 3001, 'A', 'B A', 4, 'filled', 't', 't');"
            ))?;
            // A first file: OPERA had no row mapped when it began (BALLET's
            // does not count). Its rows are new, whatever it fills meanwhile.
            let mut maps = FileMappings::new(tx);
            assert_eq!(
                maps.lookup_declared("OPERA", MappingKind::Row, id(3001))?,
                None
            );
            maps.fill(&row(3001), 4)?;
            assert_eq!(
                maps.lookup_declared("OPERA", MappingKind::Row, id(3002))?,
                None
            );
            // Not read at all: even the row just filled (an id the import
            // never declares twice in a file) is not looked up again.
            assert_eq!(
                maps.lookup_declared("OPERA", MappingKind::Row, id(3001))?,
                None
            );
            assert_eq!(
                maps.lookup("OPERA", MappingKind::Row, id(3001))?,
                Some(Resolved::Local(4))
            );
            // BALLET had one: its look-ups read the store.
            assert_eq!(
                maps.lookup_declared("BALLET", MappingKind::Row, id(3001))?,
                Some(Resolved::Local(4))
            );
            // The next file finds OPERA's row, and reads every one as the
            // free look-up does.
            let mut next = FileMappings::new(tx);
            for manager_id in [3001, 3002] {
                assert_eq!(
                    next.lookup_declared("OPERA", MappingKind::Row, id(manager_id))?,
                    lookup(tx, "OPERA", MappingKind::Row, id(manager_id))?,
                    "row {manager_id}"
                );
            }
            assert_eq!(
                next.lookup_declared("OPERA", MappingKind::Row, id(3001))?,
                Some(Resolved::Local(4))
            );
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn logical_seat_categories_are_refused_with_the_manuals_reason() {
        let e = parse_kind("logical_seat_category").unwrap_err().to_string();
        assert!(e.contains("physical"), "{e}");
        assert!(
            parse_kind("colour")
                .unwrap_err()
                .to_string()
                .contains("seat_category")
        );
        assert_eq!(parse_kind("tariff_type").unwrap(), MappingKind::TariffType);
    }

    // ------------------------------------------------------- ops management

    fn tourism(dir: &std::path::Path) -> Store {
        let mut s = store(dir);
        s.write(|tx| -> Result<(), DomainError> {
            tx.execute_batch(
                "INSERT INTO tariff_type (id, code, name) VALUES (7301, 'NORMAL', 'Normal'), (7302, 'REDUIT', 'Réduit');
                 INSERT INTO seat_category (id, code, name) VALUES (7501, 'PREM', 'Première');",
            )?;
            Ok(())
        })
        .unwrap();
        s
    }

    fn id(v: i64) -> TechId {
        TechId::new(v).unwrap()
    }

    fn rows(s: &Store) -> Vec<Row> {
        s.read(|c| list(c, &Filter::default())).unwrap()
    }

    fn import_text(s: &mut Store, text: &str) -> Result<ImportSummary, ImportError> {
        s.write(|tx| import(tx, "OPERA", text.as_bytes(), "m.csv"))
    }

    const HEADER: &str = "manager;kind;manager_id;manager_code;manager_label;status;local_code\n";

    #[test]
    fn set_before_any_file_uses_a_placeholder_that_the_first_file_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = tourism(dir.path());
        let c = s
            .write(|tx| set(tx, "OPERA", MappingKind::TariffType, id(1201), "NORMAL"))
            .unwrap();
        assert!(c.before.is_none() && c.changed());
        let r = &rows(&s)[0];
        assert_eq!(
            (r.manager_code.as_str(), r.manager_label.as_str()),
            (UNSEEN_CODE, UNSEEN_LABEL)
        );
        assert_eq!(r.first_file, None);
        assert_eq!(r.local_code.as_deref(), Some("NORMAL"));
        let code = Code::new("PLEIN").unwrap();
        let seen = Seen {
            manager: "OPERA",
            kind: MappingKind::TariffType,
            manager_id: id(1201),
            code: &code,
            label: "Plein tarif",
            file: "f1",
        };
        assert_eq!(
            s.write(|tx| resolve(tx, &seen)).unwrap(),
            Resolved::Local(7301)
        );
        let r = &rows(&s)[0];
        assert_eq!(
            (r.manager_code.as_str(), r.manager_label.as_str()),
            ("PLEIN", "Plein tarif")
        );
        assert_eq!(r.status, MappingStatus::Filled);
    }

    #[test]
    fn set_names_the_codes_that_exist_or_the_ids_sharing_a_code() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = tourism(dir.path());
        let e = s
            .write(|tx| set(tx, "OPERA", MappingKind::TariffType, id(1201), "PLAIN"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"PLAIN\"") && e.contains("NORMAL, REDUIT"),
            "{e}"
        );
        s.write(|tx| -> Result<(), DomainError> {
            tx.execute(
                "INSERT INTO tariff_type (id, code, name) VALUES (7309, 'NORMAL', 'Normal bis')",
                [],
            )?;
            Ok(())
        })
        .unwrap();
        let e = s
            .write(|tx| set(tx, "OPERA", MappingKind::TariffType, id(1201), "NORMAL"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("7301, 7309"), "{e}");
        assert!(rows(&s).is_empty());
    }

    #[test]
    fn automatic_kinds_are_refused_by_hand_with_the_import_that_fills_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = tourism(dir.path());
        let e = s
            .write(|tx| set(tx, "OPERA", MappingKind::Seat, id(50001), "1"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("seat plan import"), "{e}");
        let e = s
            .write(|tx| ignore(tx, "OPERA", MappingKind::Product, id(1901)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("catalogue import"), "{e}");
        assert!(rows(&s).is_empty());
    }

    #[test]
    fn ignore_and_unset_change_the_status_and_unset_needs_a_row() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = tourism(dir.path());
        let e = s
            .write(|tx| unset(tx, "OPERA", MappingKind::TariffType, id(1203)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no such mapping row"), "{e}");
        s.write(|tx| ignore(tx, "OPERA", MappingKind::TariffType, id(1203)))
            .unwrap();
        assert_eq!(rows(&s)[0].status, MappingStatus::Ignored);
        let again = s
            .write(|tx| ignore(tx, "OPERA", MappingKind::TariffType, id(1203)))
            .unwrap();
        assert!(!again.changed());
        let c = s
            .write(|tx| unset(tx, "OPERA", MappingKind::TariffType, id(1203)))
            .unwrap();
        assert_eq!(c.after.status, MappingStatus::Pending);
        assert_eq!(rows(&s)[0].status, MappingStatus::Pending);
    }

    #[test]
    fn check_reports_pending_and_broken_rows_and_nothing_when_clean() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = tourism(dir.path());
        assert!(s.read(|c| check(c, "OPERA")).unwrap().is_empty());
        let code = Code::new("GROUPE").unwrap();
        let seen = Seen {
            manager: "OPERA",
            kind: MappingKind::TariffType,
            manager_id: id(1203),
            code: &code,
            label: "Tarif groupe",
            file: "f",
        };
        s.write(|tx| resolve(tx, &seen)).unwrap();
        s.write(|tx| set(tx, "OPERA", MappingKind::SeatCategory, id(2001), "PREM"))
            .unwrap();
        s.write(|tx| -> Result<(), DomainError> {
            tx.execute("DELETE FROM seat_category WHERE id = 7501", [])?;
            Ok(())
        })
        .unwrap();
        let findings = s.read(|c| check(c, "OPERA")).unwrap();
        assert_eq!(findings.len(), 2, "{findings:?}");
        assert!(
            findings[0]
                .object
                .contains("tariff_type mapping 1203 GROUPE")
        );
        assert!(findings[0].problem.starts_with("pending"));
        assert!(
            findings[0]
                .fix
                .contains("stxd mapping set tariff_type 1203")
        );
        assert!(
            findings[1].problem.starts_with("broken"),
            "{:?}",
            findings[1]
        );
        assert!(rows(&s)[1].is_broken());
        // Another manager's rows are not this link's business.
        assert!(s.read(|c| check(c, "BALLET")).unwrap().is_empty());
    }

    #[test]
    fn neutralise_protects_formulas_and_the_apostrophe_itself() {
        assert_eq!(neutralise("Adulte"), "Adulte");
        assert_eq!(neutralise("=1+1"), "'=1+1");
        assert_eq!(neutralise("-5"), "'-5");
        assert_eq!(neutralise("+x"), "'+x");
        assert_eq!(neutralise("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(neutralise("\tx"), "' x");
        assert_eq!(neutralise("'Tis"), "''Tis");
        assert_eq!(neutralise("a\nb"), "a b");
    }

    #[test]
    fn export_then_import_changes_nothing_even_with_hostile_labels() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = tourism(dir.path());
        for (mid, label) in [
            (1201, "=HYPERLINK(\"http://x\";\"y\")"),
            (1202, "'Tis; \"quoted\""),
            (1203, "-1"),
        ] {
            let code = Code::new("T").unwrap();
            let seen = Seen {
                manager: "OPERA",
                kind: MappingKind::TariffType,
                manager_id: id(mid),
                code: &code,
                label,
                file: "f",
            };
            s.write(|tx| resolve(tx, &seen)).unwrap();
        }
        s.write(|tx| set(tx, "OPERA", MappingKind::TariffType, id(1201), "NORMAL"))
            .unwrap();
        s.write(|tx| ignore(tx, "OPERA", MappingKind::TariffType, id(1203)))
            .unwrap();
        let mut out = Vec::new();
        let n = s.read(|c| export(c, "OPERA", &mut out)).unwrap();
        assert_eq!(n, 3);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("\u{feff}manager;kind;"), "{text}");
        assert!(
            text.contains("OPERA;tariff_type;1201;T;\"'=HYPERLINK(\"\"http://x\"\";\"\"y\"\")\";filled;NORMAL\n"),
            "{text}"
        );
        assert!(text.contains(";'-1;ignored;\n"), "{text}");
        let before = rows(&s);
        let summary = import_text(&mut s, &text).unwrap();
        assert_eq!((summary.rows, summary.unchanged), (3, 3));
        assert!(summary.changes.is_empty());
        assert_eq!(rows(&s), before);
    }

    #[test]
    fn import_lists_every_bad_row_and_applies_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = tourism(dir.path());
        let text = format!(
            "{HEADER}OPERA;tariff_type;1201;PLEIN;Plein tarif;filled;NORMAL\n\
             OPERA;tariff_type;1202;REDUIT;Tarif réduit;filled;REDUITE\n\
             OPERA;colour;1;X;x;ignored;\n\
             OPERA;tariff_type;1201;PLEIN;Plein tarif;ignored;\n\
             OPERA;seat_category;2001;CAT1;@cat;filled;PREM\n"
        );
        let Err(ImportError::Rejected(e)) = import_text(&mut s, &text) else {
            panic!("accepted");
        };
        let got: Vec<(String, &str)> = e
            .errors
            .iter()
            .map(|e| (e.position.to_string(), e.code))
            .collect();
        assert_eq!(
            got,
            vec![
                ("line 3, field local_code".to_owned(), "unknown-local-code"),
                ("line 4, field kind".to_owned(), "unknown-kind"),
                ("line 5".to_owned(), "duplicate-row"),
                ("line 6, field manager_label".to_owned(), "formula-cell"),
            ]
        );
        assert!(rows(&s).is_empty(), "nothing applied");
        // The temporary table went with the rollback: a good import works.
        let ok = import_text(
            &mut s,
            &format!("{HEADER}OPERA;tariff_type;1201;PLEIN;Plein tarif;filled;NORMAL\n"),
        )
        .unwrap();
        assert_eq!(ok.created, 1);
    }

    #[test]
    fn import_creates_unseen_rows_with_their_codes_and_keeps_the_managers_label_of_known_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = tourism(dir.path());
        let code = Code::new("PLEIN").unwrap();
        let seen = Seen {
            manager: "OPERA",
            kind: MappingKind::TariffType,
            manager_id: id(1201),
            code: &code,
            label: "Plein tarif",
            file: "f",
        };
        s.write(|tx| resolve(tx, &seen)).unwrap();
        let summary = import_text(
            &mut s,
            &format!(
                "{HEADER}OPERA;tariff_type;1201;EDITED;Edited by ops;filled;NORMAL\n\
                 OPERA;tariff_type;1202;;;filled;REDUIT\n\
                 OPERA;tariff_type;1203;GROUPE;'-Groupe;ignored;\n"
            ),
        )
        .unwrap();
        assert_eq!((summary.created, summary.changed), (2, 1));
        let r = rows(&s);
        assert_eq!(
            (r[0].manager_code.as_str(), r[0].manager_label.as_str()),
            ("PLEIN", "Plein tarif")
        );
        assert_eq!(r[0].local_code.as_deref(), Some("NORMAL"));
        assert_eq!(
            (r[1].manager_code.as_str(), r[1].manager_label.as_str()),
            (UNSEEN_CODE, UNSEEN_LABEL)
        );
        assert_eq!(r[2].manager_label, "-Groupe");
        assert_eq!(r[2].status, MappingStatus::Ignored);
    }

    #[test]
    fn automatic_rows_may_come_back_unchanged_but_not_changed() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = tourism(dir.path());
        s.write(|tx| -> Result<(), DomainError> {
            tx.execute(
                "INSERT INTO venue (id, code, name) VALUES (9001, 'GTH', 'Grand Théâtre')",
                [],
            )?;
            tx.execute(
                "INSERT INTO venue (id, code, name) VALUES (9002, 'AUTRE', 'Autre')",
                [],
            )?;
            let code = Code::new("GTHEATRE").unwrap();
            let seen = Seen {
                manager: "OPERA",
                kind: MappingKind::Venue,
                manager_id: id(3001),
                code: &code,
                label: "Grand Théâtre",
                file: "f",
            };
            fill_auto(tx, &seen, 9001)
        })
        .unwrap();
        let same = format!("{HEADER}OPERA;venue;3001;GTHEATRE;Grand Théâtre;filled;GTH\n");
        assert_eq!(import_text(&mut s, &same).unwrap().unchanged, 1);
        let changed = format!("{HEADER}OPERA;venue;3001;GTHEATRE;Grand Théâtre;filled;AUTRE\n");
        let Err(ImportError::Rejected(e)) = import_text(&mut s, &changed) else {
            panic!("accepted");
        };
        assert_eq!(e.errors[0].code, "automatic-kind");
        assert!(
            e.errors[0].problem.contains("filled GTH"),
            "{}",
            e.errors[0].problem
        );
        assert_eq!(rows(&s)[0].local_id, Some(9001));
    }

    #[test]
    fn list_filters_by_kind_and_status() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = tourism(dir.path());
        s.write(|tx| set(tx, "OPERA", MappingKind::SeatCategory, id(2001), "PREM"))
            .unwrap();
        s.write(|tx| ignore(tx, "OPERA", MappingKind::TariffType, id(1203)))
            .unwrap();
        s.write(|tx| set(tx, "OPERA", MappingKind::TariffType, id(1201), "NORMAL"))
            .unwrap();
        let all = rows(&s);
        // Kinds in MappingKind::ALL order, then ids.
        let keys: Vec<(MappingKind, i64)> = all.iter().map(|r| (r.kind, r.manager_id)).collect();
        assert_eq!(
            keys,
            vec![
                (MappingKind::TariffType, 1201),
                (MappingKind::TariffType, 1203),
                (MappingKind::SeatCategory, 2001)
            ]
        );
        let ignored = s
            .read(|c| {
                list(
                    c,
                    &Filter {
                        status: Some(MappingStatus::Ignored),
                        ..Filter::default()
                    },
                )
            })
            .unwrap();
        assert_eq!(ignored.len(), 1);
        let seats = s
            .read(|c| {
                list(
                    c,
                    &Filter {
                        manager: Some("OPERA"),
                        kind: Some(MappingKind::SeatCategory),
                        status: None,
                    },
                )
            })
            .unwrap();
        assert_eq!(seats[0].local_code.as_deref(), Some("PREM"));
    }

    /// A pass's reverse map answers every question as the look-up of one
    /// object does: none, one, several (named the same way), only filled
    /// rows, only its manager's, whatever the order the rows were written in.
    #[test]
    fn a_passs_reverse_map_answers_as_the_single_look_up() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        s.write(|tx| -> Result<(), DomainError> {
            let mut st = tx.prepare(
                "INSERT INTO mapping (manager, kind, manager_id, manager_code, manager_label,
                     local_id, status, first_seen, last_seen)
                 VALUES (?1, ?2, ?3, 'C', 'L', ?4, ?5, 'x', 'x')",
            )?;
            // Manager ids written in a scrambled order; local ids 1 to 12,
            // each named by (local % 5) filled rows of OPERA (4 is named by
            // four: more than the three the message lists), beside pending
            // and ignored rows and another manager's.
            let mut n: i64 = 0;
            for local in 1..=12_i64 {
                for k in 0..local % 5 {
                    n += 1;
                    let manager_id = 9_000 + (n * 37) % 101;
                    st.execute(("OPERA", "zone", manager_id + k * 1_000, local, "filled"))?;
                }
                st.execute((
                    "OPERA",
                    "zone",
                    20_000 + local,
                    Option::<i64>::None,
                    "pending",
                ))?;
                st.execute(("OTHER", "zone", 30_000 + local, local, "filled"))?;
            }
            st.execute(("OPERA", "zone", 40_000, Option::<i64>::None, "ignored"))?;
            st.execute(("OPERA", "block", 50_000, 3, "filled"))?;
            Ok(())
        })
        .unwrap();
        s.read(|c| -> Result<(), DomainError> {
            let mut ids = ManagerIds::new(c, "OPERA");
            let mut answers = [0; 3];
            for kind in [MappingKind::Zone, MappingKind::Block, MappingKind::Seat] {
                for local in 0..=13 {
                    let one = manager_id_of(c, "OPERA", kind, local);
                    let pass = ids.get(kind, local);
                    match (&one, &pass) {
                        (Ok(a), Ok(b)) => {
                            assert_eq!(a, b, "{kind} {local}");
                            answers[usize::from(a.is_some())] += 1;
                        }
                        (Err(a), Err(b)) => {
                            assert_eq!(a.to_string(), b.to_string(), "{kind} {local}");
                            answers[2] += 1;
                        }
                        _ => panic!("{kind} {local}: {one:?} against {pass:?}"),
                    }
                }
            }
            // None, one and several each answered: the comparison above
            // covered every case.
            assert!(answers.iter().all(|&n| n > 0), "{answers:?}");
            let four = ids.get(MappingKind::Zone, 4).unwrap_err().to_string();
            assert_eq!(four.matches(", ").count(), 2, "three ids listed: {four}");
            Ok(())
        })
        .unwrap();
    }
}
