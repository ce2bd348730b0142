//! The store and the domain layer against real SQLite files: opening and
//! migrating, durability pragmas, ownership checks, transactions, master-data
//! loading of the sample institutions and the setup check, object by object.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use stxd::domain::DomainError;
use stxd::domain::load::{catalogue_item, seatplan_item, setup_file};
use stxd::domain::setup::{Finding, LinkFacts, Severity, check};
use stxd::format::catalogue::{self as cat, PerformanceState};
use stxd::format::seatplan as sp;
use stxd::ident::{Code, Name, TechId};
use stxd::money::Currency;
use stxd::store::{Role, Store, StoreError};
use time::macros::{date, datetime};

// ------------------------------------------------------------------ sample data

fn id(v: i64) -> TechId {
    TechId::new(v).unwrap()
}

fn code(s: &str) -> Code {
    Code::new(s).unwrap()
}

fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

fn reference(i: i64, c: &str, n: &str) -> cat::Reference {
    cat::Reference {
        id: id(i),
        code: code(c),
        name: name(n),
    }
}

/// OPERA's seat plan, as the common brief describes it.
fn opera_seatplan() -> Vec<sp::Item> {
    let mut items = Vec::new();
    for (i, c, n) in [
        (2001, "CAT1", "Catégorie 1"),
        (2002, "CAT2", "Catégorie 2"),
        (2003, "CAT3", "Catégorie 3"),
        (2004, "DEBOUT", "Debout"),
    ] {
        items.push(sp::Item::SeatCategory(sp::SeatCategory {
            id: id(i),
            code: code(c),
            name: name(n),
        }));
    }
    items.push(sp::Item::Venue(sp::Venue {
        id: id(3001),
        code: code("GTHEATRE"),
        name: name("Grand Théâtre de l'Opéra"),
    }));
    items.push(sp::Item::Configuration(sp::Configuration {
        id: id(3101),
        venue: id(3001),
        code: code("STD"),
        name: name("Configuration standard"),
    }));
    items.push(sp::Item::Zone(sp::Zone {
        id: id(3201),
        configuration: id(3101),
        code: code("FOSSE"),
        name: name("Fosse debout"),
        seat_category: id(2004),
        capacity: 150,
    }));
    let (mut row_id, mut seat_id) = (4001, 50001);
    // (block id, code, name, rows, seats per row, category of rows by index)
    type BlockSpec = (
        i64,
        &'static str,
        &'static str,
        usize,
        u32,
        fn(usize) -> i64,
    );
    let blocks: [BlockSpec; 2] = [
        (3301, "PARTERRE", "Parterre", 12, 20, |r| {
            2001 + (r / 4) as i64
        }),
        (3302, "BALCON", "Balcon", 8, 18, |r| 2002 + (r / 4) as i64),
    ];
    for (bid, bcode, bname, rows, seats, category) in blocks {
        items.push(sp::Item::Block(sp::Block {
            id: id(bid),
            configuration: id(3101),
            code: code(bcode),
            name: name(bname),
        }));
        for r in 0..rows {
            let label = ((b'A' + r as u8) as char).to_string();
            items.push(sp::Item::Row(sp::Row {
                id: id(row_id),
                block: id(bid),
                code: code(&label),
            }));
            for n in 1..=seats {
                items.push(sp::Item::Seat(sp::Seat {
                    id: id(seat_id),
                    row: id(row_id),
                    number: code(&n.to_string()),
                    seat_category: id(category(r)),
                }));
                seat_id += 1;
            }
            row_id += 1;
        }
    }
    items
}

/// OPERA's catalogue, as the common brief describes it.
fn opera_catalogue() -> Vec<cat::Item> {
    use cat::Item;
    let eur = Currency::new("EUR").unwrap();
    let mut items = vec![
        Item::Season(cat::Season {
            id: id(1001),
            code: code("S3637"),
            name: name("Saison 2036-2037"),
            start: date!(2036 - 09 - 01),
            end: date!(2037 - 07 - 31),
        }),
        Item::VatCode(cat::VatCode {
            id: id(1101),
            code: code("TVA55"),
            name: name("TVA 5,5 %"),
            rate_bp: 550,
        }),
        Item::TariffType(reference(1201, "PLEIN", "Plein tarif")),
        Item::TariffType(reference(1202, "REDUIT", "Tarif réduit")),
        Item::TariffType(reference(1203, "GROUPE", "Tarif groupe")),
        Item::AudienceSubcategory(reference(1301, "ADULTE", "Adulte")),
        Item::AudienceSubcategory(reference(1302, "ENFANT", "Enfant")),
        Item::AudienceSubcategory(reference(1303, "ETUDIANT", "Étudiant")),
        Item::AudienceSubcategory(reference(1304, "SENIOR", "Senior")),
        Item::SeatCategory(reference(2001, "CAT1", "Catégorie 1")),
        Item::SeatCategory(reference(2002, "CAT2", "Catégorie 2")),
        Item::SeatCategory(reference(2003, "CAT3", "Catégorie 3")),
        Item::SeatCategory(reference(2004, "DEBOUT", "Debout")),
        Item::Activity(cat::Activity {
            id: id(1401),
            code: code("TRAVIATA"),
            name: name("La Traviata"),
            season: id(1001),
            vat_code: id(1101),
        }),
        Item::Activity(cat::Activity {
            id: id(1402),
            code: code("CARMEN"),
            name: name("Carmen"),
            season: id(1001),
            vat_code: id(1101),
        }),
        Item::LogicalConfiguration(cat::LogicalConfiguration {
            id: id(1501),
            code: code("TRAV-STD"),
            name: name("Traviata standard"),
            configuration: id(3101),
        }),
    ];
    for (i, c, sc) in [
        (1601, "L-CAT1", 2001),
        (1602, "L-CAT2", 2002),
        (1603, "L-CAT3", 2003),
        (1604, "L-DEBOUT", 2004),
    ] {
        items.push(Item::LogicalSeatCategory(cat::LogicalSeatCategory {
            id: id(i),
            logical_configuration: id(1501),
            code: code(c),
            name: name(c),
            seat_category: id(sc),
        }));
    }
    for (i, c, n, a, start, state) in [
        (
            1701,
            "TRAV0115",
            "La Traviata – 15 janvier",
            1401,
            datetime!(2037-01-15 20:00:00 +01:00),
            PerformanceState::InOperation,
        ),
        (
            1702,
            "TRAV0117",
            "La Traviata – 17 janvier",
            1401,
            datetime!(2037-01-17 15:00:00 +01:00),
            PerformanceState::InOperation,
        ),
        (
            1703,
            "TRAV0120",
            "La Traviata – 20 janvier",
            1401,
            datetime!(2037-01-20 20:00:00 +01:00),
            PerformanceState::Planned,
        ),
        (
            1704,
            "CARM0210",
            "Carmen – 10 février",
            1402,
            datetime!(2037-02-10 20:00:00 +01:00),
            PerformanceState::InOperation,
        ),
    ] {
        items.push(Item::Performance(cat::Performance {
            id: id(i),
            code: code(c),
            name: name(n),
            activity: id(a),
            start,
            configuration: id(3101),
            logical_configuration: id(1501),
            state,
        }));
    }
    items.push(Item::RateTable(cat::RateTable {
        version: None,
        id: id(1801),
        code: code("TRAV-RT"),
        name: name("Tarifs La Traviata"),
        currency: eur,
    }));
    let price = |rt, sc, tt, aud, amount| {
        Item::Price(cat::Price {
            rate_table: id(rt),
            seat_category: id(sc),
            tariff_type: id(tt),
            audience_subcategory: id(aud),
            amount,
        })
    };
    for (sc, amounts) in [
        (2001, [8500, 4250, 6500, 3250]),
        (2002, [6000, 3000, 4500, 2250]),
        (2003, [3500, 1750, 2500, 1250]),
    ] {
        items.push(price(1801, sc, 1201, 1301, amounts[0]));
        items.push(price(1801, sc, 1201, 1302, amounts[1]));
        items.push(price(1801, sc, 1202, 1301, amounts[2]));
        items.push(price(1801, sc, 1202, 1302, amounts[3]));
    }
    items.push(price(1801, 2004, 1201, 1301, 2500));
    items.push(price(1801, 2004, 1201, 1302, 1250));
    items.push(price(1801, 2001, 1202, 1303, 5000));
    items.push(price(1801, 2002, 1202, 1303, 3500));
    items.push(Item::RateTable(cat::RateTable {
        version: None,
        id: id(1802),
        code: code("CARM-RT"),
        name: name("Tarifs Carmen"),
        currency: eur,
    }));
    items.push(price(1802, 2001, 1201, 1301, 9000));
    items.push(price(1802, 2002, 1201, 1301, 6500));
    items.push(Item::Product(cat::Product {
        id: id(1901),
        code: code("TRAV-BIL"),
        name: name("Billet La Traviata"),
        activity: id(1401),
        rate_table: id(1801),
    }));
    for p in [1701, 1702, 1703] {
        items.push(Item::PerformanceRef(cat::PerformanceRef {
            product: id(1901),
            performance: id(p),
        }));
    }
    items.push(Item::Product(cat::Product {
        id: id(1902),
        code: code("CARM-BIL"),
        name: name("Billet Carmen"),
        activity: id(1402),
        rate_table: id(1802),
    }));
    items.push(Item::PerformanceRef(cat::PerformanceRef {
        product: id(1902),
        performance: id(1704),
    }));
    items
}

/// TOURISM's own reference data.
fn tourism_catalogue() -> Vec<cat::Item> {
    use cat::Item;
    vec![
        Item::Season(cat::Season {
            id: id(7001),
            code: code("T3637"),
            name: name("Saison culturelle 2036-2037"),
            start: date!(2036 - 09 - 01),
            end: date!(2037 - 07 - 31),
        }),
        Item::VatCode(cat::VatCode {
            id: id(7201),
            code: code("TVA-R"),
            name: name("TVA réduite"),
            rate_bp: 550,
        }),
        Item::Activity(cat::Activity {
            id: id(7101),
            code: code("OPERA-TR"),
            name: name("Opéra – La Traviata"),
            season: id(7001),
            vat_code: id(7201),
        }),
        Item::TariffType(reference(7301, "NORMAL", "Normal")),
        Item::TariffType(reference(7302, "REDUIT", "Réduit")),
        Item::AudienceSubcategory(reference(7401, "ADULT", "Adulte")),
        Item::AudienceSubcategory(reference(7402, "CHILD", "Enfant")),
        Item::SeatCategory(reference(7501, "PREM", "Première")),
        Item::SeatCategory(reference(7502, "SECONDE", "Seconde")),
        Item::SeatCategory(reference(7503, "TROIS", "Troisième")),
        Item::SeatCategory(reference(7504, "DEBOUT", "Debout")),
    ]
}

fn sample(institution: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(institution)
        .join("setup.toml")
}

fn link(login: &str) -> LinkFacts {
    LinkFacts {
        name: "opera-tourism".to_owned(),
        manager: "OPERA".to_owned(),
        distributor: "TOURISM".to_owned(),
        login: login.to_owned(),
    }
}

// ---------------------------------------------------------------- helpers

fn open_opera(dir: &Path) -> Store {
    Store::open(&dir.join("opera.db"), "OPERA", Role::Manager).unwrap()
}

fn open_tourism(dir: &Path) -> Store {
    Store::open(&dir.join("tourism.db"), "TOURISM", Role::Distributor).unwrap()
}

fn load_opera_master(store: &mut Store) {
    store
        .write(|tx| -> Result<(), DomainError> {
            for i in &opera_seatplan() {
                seatplan_item(tx, i)?;
            }
            for i in &opera_catalogue() {
                catalogue_item(tx, i)?;
            }
            Ok(())
        })
        .unwrap();
}

fn load_tourism_master(store: &mut Store) {
    store
        .write(|tx| -> Result<(), DomainError> {
            for i in &tourism_catalogue() {
                catalogue_item(tx, i)?;
            }
            Ok(())
        })
        .unwrap();
}

/// The sample setup of `institution`, edited by `edit`, written to `dir`.
fn edited_setup(dir: &Path, institution: &str, edit: impl FnOnce(&mut toml::Table)) -> PathBuf {
    let text = std::fs::read_to_string(sample(institution)).unwrap();
    let mut table: toml::Table = text.parse().unwrap();
    edit(&mut table);
    let path = dir.join(format!("{institution}-setup.toml"));
    std::fs::write(&path, toml::to_string(&table).unwrap()).unwrap();
    path
}

/// The first entry of array-of-tables `section`.
fn entry<'a>(t: &'a mut toml::Table, section: &str) -> &'a mut toml::Table {
    t.get_mut(section)
        .and_then(|v| v.as_array_mut())
        .and_then(|a| a.first_mut())
        .and_then(|v| v.as_table_mut())
        .unwrap_or_else(|| panic!("sample has no [[{section}]]"))
}

/// Removes the entry of `section` whose `key` is `value`.
fn remove_where(t: &mut toml::Table, section: &str, key: &str, value: toml::Value) {
    let arr = t.get_mut(section).and_then(|v| v.as_array_mut()).unwrap();
    let before = arr.len();
    arr.retain(|e| e.get(key) != Some(&value));
    assert_eq!(
        arr.len() + 1,
        before,
        "no [[{section}]] with {key} = {value}"
    );
}

fn manager_findings(dir: &Path, edit: impl FnOnce(&mut toml::Table)) -> Vec<Finding> {
    let mut store = open_opera(dir);
    load_opera_master(&mut store);
    let path = edited_setup(dir, "opera", edit);
    store.write(|tx| setup_file(tx, &path)).unwrap();
    store
        .read(|c| -> Result<_, StoreError> {
            Ok(check(c, Role::Manager, &[link("TOURISM_OPE@TOURISM")]))
        })
        .unwrap()
}

fn distributor_findings(
    dir: &Path,
    login: &str,
    edit: impl FnOnce(&mut toml::Table),
) -> Vec<Finding> {
    let mut store = open_tourism(dir);
    load_tourism_master(&mut store);
    let path = edited_setup(dir, "tourism", edit);
    store.write(|tx| setup_file(tx, &path)).unwrap();
    store
        .read(|c| -> Result<_, StoreError> { Ok(check(c, Role::Distributor, &[link(login)])) })
        .unwrap()
}

fn errors(findings: &[Finding]) -> Vec<&Finding> {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .collect()
}

/// Exactly one error, about the object named `object` (a prefix), with a fix.
fn assert_only_error(findings: &[Finding], object: &str) {
    let errs = errors(findings);
    assert_eq!(
        errs.len(),
        1,
        "expected one error about {object:?}, got: {:#?}",
        errs
    );
    assert!(
        errs[0].object.starts_with(object),
        "expected an error about {object:?}, got {}",
        errs[0]
    );
    assert!(!errs[0].problem.is_empty() && !errs[0].fix.is_empty());
}

/// Every row of every table, as text, per table: equal digests mean equal data.
fn digest(store: &Store) -> BTreeMap<String, Vec<String>> {
    store
        .read(|c| -> Result<_, StoreError> {
            let tables: Vec<String> = c
                .prepare(
                    "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
                )?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let mut out = BTreeMap::new();
            for t in tables {
                let mut st = c.prepare(&format!("SELECT * FROM {t}"))?;
                let n = st.column_count();
                let mut rows: Vec<String> = st
                    .query_map([], |r| {
                        let mut line = String::new();
                        for i in 0..n {
                            line.push_str(&format!("{:?}|", r.get_ref(i)?));
                        }
                        Ok(line)
                    })?
                    .collect::<Result<_, _>>()?;
                rows.sort();
                out.insert(t, rows);
            }
            Ok(out)
        })
        .unwrap()
}

fn count(store: &Store, table: &str) -> i64 {
    store
        .read(|c| -> Result<i64, StoreError> {
            Ok(c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?)
        })
        .unwrap()
}

// ------------------------------------------------------------------ the store

#[test]
fn open_migrates_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opera.db");
    {
        let store = Store::open(&path, "OPERA", Role::Manager).unwrap();
        assert_eq!(store.institution().as_str(), "OPERA");
        assert_eq!(store.role(), Role::Manager);
    }
    assert!(path.is_file());
    let store = Store::open(&path, "OPERA", Role::Manager).unwrap();
    let (version, code, role): (i64, String, String) = store
        .read(|c| -> Result<_, StoreError> {
            let v = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
            let (code, role) = c.query_row("SELECT code, role FROM institution", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
            Ok((v, code, role))
        })
        .unwrap();
    assert_eq!(version, stxd::store::schema::latest());
    assert_eq!((code.as_str(), role.as_str()), ("OPERA", "manager"));
    assert_eq!(count(&store, "institution"), 1);
}

#[test]
fn durability_pragmas_are_set() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opera.db");
    let store = Store::open(&path, "OPERA", Role::Manager).unwrap();
    let (mode, sync, fk, timeout): (String, i64, i64, i64) = store
        .read(|c| -> Result<_, StoreError> {
            Ok((
                c.pragma_query_value(None, "journal_mode", |r| r.get(0))?,
                c.pragma_query_value(None, "synchronous", |r| r.get(0))?,
                c.pragma_query_value(None, "foreign_keys", |r| r.get(0))?,
                c.pragma_query_value(None, "busy_timeout", |r| r.get(0))?,
            ))
        })
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(sync, 2, "synchronous must be FULL (2)");
    assert_eq!(fk, 1);
    assert!(timeout >= 1000);
    // WAL is recorded in the file itself: another connection sees it.
    let other = rusqlite::Connection::open(&path).unwrap();
    let mode: String = other
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn another_institution_or_role_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("opera.db");
    drop(Store::open(&path, "OPERA", Role::Manager).unwrap());

    let err = Store::open(&path, "TOURISM", Role::Manager).unwrap_err();
    assert!(matches!(err, StoreError::WrongInstitution { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("OPERA") && msg.contains("TOURISM"), "{msg}");

    let err = Store::open(&path, "OPERA", Role::Distributor).unwrap_err();
    assert!(matches!(err, StoreError::WrongRole { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("manager") && msg.contains("distributor"),
        "{msg}"
    );

    // Still usable by its owner.
    assert!(Store::open(&path, "OPERA", Role::Manager).is_ok());
}

#[test]
fn a_failing_write_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open_opera(dir.path());
    let err = store
        .write(|tx| -> Result<(), DomainError> {
            for i in &opera_seatplan() {
                seatplan_item(tx, i)?;
            }
            // A catalogue record naming a season that is not loaded.
            catalogue_item(
                tx,
                &cat::Item::Activity(cat::Activity {
                    id: id(1401),
                    code: code("TRAVIATA"),
                    name: name("La Traviata"),
                    season: id(9999),
                    vat_code: id(1101),
                }),
            )
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "activity 1401 names season 9999, which is not loaded; load it first (seat plan, then catalogue, then setup)"
    );
    for t in [
        "seat_category",
        "venue",
        "block",
        "seat_row",
        "seat",
        "activity",
    ] {
        assert_eq!(count(&store, t), 0, "{t} kept rows of a rolled-back write");
    }
}

// ------------------------------------------------------------------- loading

#[test]
fn sample_master_data_and_setups_load() {
    let dir = tempfile::tempdir().unwrap();
    let mut opera = open_opera(dir.path());
    load_opera_master(&mut opera);
    let summary = opera.write(|tx| setup_file(tx, &sample("opera"))).unwrap();
    assert_eq!(summary.objects, 9);
    for (table, n) in [
        ("seat_category", 4),
        ("zone", 1),
        ("block", 2),
        ("seat_row", 20),
        ("seat", 384),
        ("performance", 4),
        ("price", 18),
        ("product_performance", 4),
        ("product", 2),
        ("point_of_sale_payment_method", 1),
        ("product_profile_audience", 2),
    ] {
        assert_eq!(count(&opera, table), n, "{table}");
    }
    let (state, start): (String, String) = opera
        .read(|c| -> Result<_, StoreError> {
            Ok(c.query_row(
                "SELECT p.state, f.start FROM product p, performance f WHERE p.id = 1901 AND f.id = 1701",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .unwrap();
    assert_eq!(state, "active");
    assert_eq!(start, "2037-01-15T20:00:00+01:00");

    let mut tourism = open_tourism(dir.path());
    load_tourism_master(&mut tourism);
    let summary = tourism
        .write(|tx| setup_file(tx, &sample("tourism")))
        .unwrap();
    assert_eq!(summary.objects, 3);
    assert_eq!(count(&tourism, "virtual_operator"), 1);
}

#[test]
fn loading_the_same_data_twice_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open_opera(dir.path());
    load_opera_master(&mut store);
    store.write(|tx| setup_file(tx, &sample("opera"))).unwrap();
    let first = digest(&store);
    load_opera_master(&mut store);
    store.write(|tx| setup_file(tx, &sample("opera"))).unwrap();
    assert_eq!(first, digest(&store));
    assert_eq!(first["seat"].len(), 384);

    let mut tourism = open_tourism(dir.path());
    load_tourism_master(&mut tourism);
    tourism
        .write(|tx| setup_file(tx, &sample("tourism")))
        .unwrap();
    let first = digest(&tourism);
    load_tourism_master(&mut tourism);
    tourism
        .write(|tx| setup_file(tx, &sample("tourism")))
        .unwrap();
    assert_eq!(first, digest(&tourism));
}

#[test]
fn changed_data_is_updated_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open_opera(dir.path());
    load_opera_master(&mut store);
    store
        .write(|tx| {
            catalogue_item(
                tx,
                &cat::Item::Price(cat::Price {
                    rate_table: id(1801),
                    seat_category: id(2001),
                    tariff_type: id(1201),
                    audience_subcategory: id(1301),
                    amount: 8800,
                }),
            )
        })
        .unwrap();
    let amount: i64 = store
        .read(|c| -> Result<_, StoreError> {
            Ok(c.query_row(
                "SELECT amount FROM price WHERE rate_table = 1801 AND seat_category = 2001 AND tariff_type = 1201 AND audience_subcategory = 1301",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(amount, 8800);
    assert_eq!(count(&store, "price"), 18);
}

#[test]
fn referential_and_conflict_errors_name_both_objects() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open_opera(dir.path());
    load_opera_master(&mut store);
    let err = store
        .write(|tx| {
            seatplan_item(
                tx,
                &sp::Item::Seat(sp::Seat {
                    id: id(59999),
                    row: id(4001),
                    number: code("1"),
                    seat_category: id(2001),
                }),
            )?;
            // Seat 50001 keeps number 1 unless the file renumbers it: the
            // end of the file says which.
            stxd::domain::load::seatplan_done(tx, "seatplan.xml")
        })
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("seat 59999") && msg.contains("row 4001") && msg.contains("50001"),
        "{msg}"
    );
    let err = store
        .write(|tx| {
            catalogue_item(
                tx,
                &cat::Item::PerformanceRef(cat::PerformanceRef {
                    product: id(1901),
                    performance: id(1799),
                }),
            )
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "product 1901 names performance 1799, which is not loaded; load it first (seat plan, then catalogue, then setup)"
    );
}

#[test]
fn distributor_catalogue_objects_start_to_validate() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open_tourism(dir.path());
    load_tourism_master(&mut store);
    store
        .write(|tx| -> Result<(), DomainError> {
            catalogue_item(
                tx,
                &cat::Item::RateTable(cat::RateTable {
                    version: None,
                    id: id(7801),
                    code: code("TR-RT"),
                    name: name("Tarifs"),
                    currency: Currency::new("EUR").unwrap(),
                }),
            )?;
            catalogue_item(
                tx,
                &cat::Item::Product(cat::Product {
                    id: id(7901),
                    code: code("TR-BIL"),
                    name: name("Billet"),
                    activity: id(7101),
                    rate_table: id(7801),
                }),
            )
        })
        .unwrap();
    let state: String = store
        .read(|c| -> Result<_, StoreError> {
            Ok(
                c.query_row("SELECT state FROM product WHERE id = 7901", [], |r| {
                    r.get(0)
                })?,
            )
        })
        .unwrap();
    assert_eq!(state, "to_validate");
}

#[test]
fn setup_file_problems_are_all_reported_and_nothing_loads() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open_opera(dir.path());
    load_opera_master(&mut store);

    // Unknown key: refused with its line.
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "institution = \"OPERA\"\nrole = \"manager\"\n[[contact]]\nid = 1\ncode = \"C\"\nname = \"C\"\npending_account_authorised = true\ncolour = \"red\"\n",
    )
    .unwrap();
    let err = store.write(|tx| setup_file(tx, &path)).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("line 8") && msg.contains("colour"), "{msg}");

    // Several problems at once; nothing of the file is kept.
    let path = edited_setup(dir.path(), "opera", |t| {
        entry(t, "sales_channel").insert("code".into(), "MUCH TOO LONG".into());
        entry(t, "contingent").insert("channel".into(), 9999.into());
        entry(t, "product_profile").insert("products".into(), vec![toml::Value::from(1999)].into());
    });
    let err = store.write(|tx| setup_file(tx, &path)).unwrap_err();
    let DomainError::Setup { problems, .. } = &err else {
        panic!("{err}")
    };
    let all = problems.join("\n");
    assert!(
        all.contains("[[sales_channel]] #1 (id 5001): code"),
        "{all}"
    );
    assert!(all.contains("channel names sales channel 9999"), "{all}");
    assert!(all.contains("products names product 1999"), "{all}");
    assert_eq!(count(&store, "payment_method"), 0);
    assert_eq!(count(&store, "contact"), 0);

    // Another institution's or role's file is refused.
    let err = store
        .write(|tx| setup_file(tx, &sample("tourism")))
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("TOURISM") && msg.contains("OPERA"), "{msg}");
    assert!(msg.contains("external_manager"), "{msg}");
    assert_eq!(count(&store, "external_manager"), 0);
}

// ----------------------------------------------------------------- the check

#[test]
fn samples_pass_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let findings = manager_findings(dir.path(), |_| {});
    assert!(errors(&findings).is_empty(), "{findings:#?}");
    let findings = distributor_findings(dir.path(), "TOURISM_OPE@TOURISM", |_| {});
    assert!(errors(&findings).is_empty(), "{findings:#?}");
}

#[test]
fn check_names_each_missing_manager_object() {
    type Edit = Box<dyn FnOnce(&mut toml::Table)>;
    let cases: Vec<(&str, Edit, &str)> = vec![
        (
            "no stx_file channel",
            Box::new(|t| {
                entry(t, "sales_channel").insert("kind".into(), "box_office".into());
            }),
            "sales channel of kind stx_file",
        ),
        (
            "channel not in operation",
            Box::new(|t| {
                entry(t, "sales_channel").insert("in_operation".into(), false.into());
            }),
            "sales channel 5001 STXTOUR",
        ),
        (
            "no point of sale",
            Box::new(|t| {
                t.remove("point_of_sale");
                entry(t, "external_sales_interface").remove("point_of_sale");
            }),
            "point of sale on sales channel 5001 STXTOUR",
        ),
        (
            "point of sale not in operation",
            Box::new(|t| {
                entry(t, "point_of_sale").insert("in_operation".into(), false.into());
            }),
            "point of sale 5101 PDV-TOUR",
        ),
        (
            "no pending-account payment method",
            Box::new(|t| {
                remove_where(t, "payment_method", "id", 5201.into());
                entry(t, "point_of_sale").insert(
                    "payment_methods".into(),
                    vec![toml::Value::from(5202)].into(),
                );
            }),
            "payment method allowing the pending account",
        ),
        (
            "payment method does not allow the pending account",
            Box::new(|t| {
                entry(t, "payment_method").insert("allows_pending_account".into(), false.into());
            }),
            "payment method allowing the pending account",
        ),
        (
            "no authorised contact",
            Box::new(|t| {
                t.remove("contact");
                entry(t, "external_sales_interface").remove("contact");
            }),
            "contact authorised for the pending account",
        ),
        (
            "contact not authorised",
            Box::new(|t| {
                entry(t, "contact").insert("pending_account_authorised".into(), false.into());
            }),
            "contact 5301 TOURISM",
        ),
        (
            "no external sales interface",
            Box::new(|t| {
                t.remove("external_sales_interface");
            }),
            "external sales interface for distributor TOURISM",
        ),
        (
            "external sales interface with another login",
            Box::new(|t| {
                entry(t, "external_sales_interface")
                    .insert("login".into(), "TOURISM_XYZ@TOURISM".into());
            }),
            "external sales interface 5401",
        ),
        (
            "no contingent",
            Box::new(|t| {
                t.remove("contingent");
            }),
            "contingent linked to sales channel 5001 STXTOUR",
        ),
        (
            "no activity profile",
            Box::new(|t| {
                t.remove("activity_profile");
            }),
            "activity profile linked to sales channel 5001 STXTOUR",
        ),
        (
            "no product profile",
            Box::new(|t| {
                t.remove("product_profile");
            }),
            "product profile linked to sales channel 5001 STXTOUR",
        ),
    ];
    for (what, edit, object) in cases {
        let dir = tempfile::tempdir().unwrap();
        let findings = manager_findings(dir.path(), edit);
        eprintln!("case: {what}");
        assert_only_error(&findings, object);
    }
}

#[test]
fn unlimited_audience_subcategories_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let findings = manager_findings(dir.path(), |t| {
        entry(t, "product_profile").remove("audience_subcategories");
    });
    assert!(errors(&findings).is_empty(), "{findings:#?}");
    let warnings: Vec<_> = findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert_eq!(warnings[0].object, "product profile 5701 PP-TOUR");
    assert!(warnings[0].fix.contains("audience_subcategories"));
}

#[test]
fn check_names_each_missing_distributor_object() {
    type Edit = Box<dyn FnOnce(&mut toml::Table)>;
    let cases: Vec<(&str, &str, Edit, &str)> = vec![
        (
            "no external manager",
            "TOURISM_OPE@TOURISM",
            Box::new(|t| {
                t.remove("external_manager");
                t.remove("virtual_operator");
            }),
            "external manager OPERA",
        ),
        (
            "no virtual operator",
            "TOURISM_OPE@TOURISM",
            Box::new(|t| {
                t.remove("virtual_operator");
            }),
            "virtual operator TOURISM_OPE on external manager 8001 OPERA",
        ),
        (
            "virtual operator too long",
            "TOURISM_OPERA1@TOURISM",
            Box::new(|t| {
                entry(t, "virtual_operator").insert("login".into(), "TOURISM_OPERA1".into());
            }),
            "virtual operator TOURISM_OPERA1",
        ),
        (
            "virtual operator badly named",
            "OPE_TOURISM@TOURISM",
            Box::new(|t| {
                entry(t, "virtual_operator").insert("login".into(), "OPE_TOURISM".into());
            }),
            "virtual operator OPE_TOURISM",
        ),
    ];
    for (what, login, edit, object) in cases {
        let dir = tempfile::tempdir().unwrap();
        let findings = distributor_findings(dir.path(), login, edit);
        eprintln!("case: {what}");
        assert_only_error(&findings, object);
    }
}

#[test]
fn too_long_virtual_operator_says_how_long() {
    let dir = tempfile::tempdir().unwrap();
    let findings = distributor_findings(dir.path(), "TOURISM_OPERA1@TOURISM", |t| {
        entry(t, "virtual_operator").insert("login".into(), "TOURISM_OPERA1".into());
    });
    let errs = errors(&findings);
    assert!(errs[0].problem.contains("14 characters"), "{}", errs[0]);
    assert!(errs[0].fix.contains("12"), "{}", errs[0]);
}

#[test]
fn check_with_the_wrong_role_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_opera(dir.path());
    let findings = store
        .read(|c| -> Result<_, StoreError> {
            Ok(check(c, Role::Distributor, &[link("TOURISM_OPE@TOURISM")]))
        })
        .unwrap();
    assert_only_error(&findings, "store of OPERA");
}
