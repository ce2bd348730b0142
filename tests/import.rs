//! The distributor's seat plan and catalogue imports on real stores loaded
//! from the samples: parked with exactly the by-hand mappings missing, then
//! applied, validated, assigned and sellable. The helpers here also drive
//! `mapping_cases`.

use std::path::Path;

use stxd::domain::DomainError;
use stxd::domain::catalogue::{self as cat, Selection};
use stxd::domain::import::{CatalogueImport, Context, Missing, Outcome, SeatplanImport, Summary};
use stxd::format::{Limits, catalogue, seatplan};
use stxd::store::runs::{self, Counts, RunStatus};
use stxd::store::{Role, Store};

use crate::util::repo;

pub const MANAGER: &str = "OPERA";

/// A TOURISM store loaded from samples/tourism.
pub fn distributor(dir: &Path) -> Store {
    let mut s = Store::open(&dir.join("tourism.sqlite"), "TOURISM", Role::Distributor).unwrap();
    let files = [
        repo().join("samples/tourism/reference.xml"),
        repo().join("samples/tourism/setup.toml"),
    ];
    stxd::app::load(&mut s, &files).unwrap();
    s
}

/// The OPERA seat plan sample, as records.
pub fn seatplan_items() -> Vec<seatplan::Item> {
    let path = repo().join("samples/opera/seatplan.xml");
    let input = std::io::BufReader::new(std::fs::File::open(&path).unwrap());
    seatplan::Reader::new(input, "seatplan.xml", Limits::default())
        .collect::<Result<_, _>>()
        .unwrap()
}

/// Parses a catalogue payload.
pub fn catalogue_items(xml: &[u8], name: &str) -> Vec<catalogue::Item> {
    catalogue::Reader::new(xml, name, Limits::default())
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The OPERA catalogue sample cut down as the manager's export for the demo
/// link sends it: product 1901 with performances 1701 and 1702, audiences
/// ADULTE and ENFANT only, and the reference objects these need.
pub fn exported_catalogue() -> Vec<catalogue::Item> {
    use catalogue::Item;
    let xml = std::fs::read(repo().join("samples/opera/catalogue.xml")).unwrap();
    let keep_audience = |id: i64| id == 1301 || id == 1302;
    catalogue_items(&xml, "catalogue.xml")
        .into_iter()
        .filter(|item| match item {
            Item::TariffType(t) => t.id.get() != 1203,
            Item::AudienceSubcategory(a) => keep_audience(a.id.get()),
            Item::Activity(a) => a.id.get() == 1401,
            Item::Performance(p) => matches!(p.id.get(), 1701 | 1702),
            Item::RateTable(r) => r.id.get() == 1801,
            Item::Price(p) => {
                p.rate_table.get() == 1801 && keep_audience(p.audience_subcategory.get())
            }
            Item::Product(p) => p.id.get() == 1901,
            Item::PerformanceRef(r) => r.product.get() == 1901 && r.performance.get() != 1703,
            _ => true,
        })
        .collect()
}

/// One import as the pipeline runs it: one transaction, a run started,
/// records pushed, finished; the run finished with the outcome.
pub fn import_seatplan(
    store: &mut Store,
    items: &[seatplan::Item],
) -> Result<(Outcome, i64), DomainError> {
    store.write(|tx| {
        let run = runs::start(
            tx,
            "import-seatplan",
            Some("opera-tourism"),
            Some("SEATPLAN"),
        )?;
        let ctx = Context {
            manager: MANAGER,
            file: "opera-tourism.SEATPLAN.00000001.xml",
            run,
        };
        let mut imp = SeatplanImport::new(tx, ctx)?;
        for item in items {
            imp.item(item)?;
        }
        let out = imp.finish()?;
        finish_run(tx, run, &out, items.len())?;
        Ok((out, run))
    })
}

pub fn import_catalogue(
    store: &mut Store,
    items: &[catalogue::Item],
    file: &str,
) -> Result<(Outcome, i64), DomainError> {
    store.write(|tx| {
        let run = runs::start(tx, "import-catalogue", Some("opera-tourism"), Some(file))?;
        let ctx = Context {
            manager: MANAGER,
            file,
            run,
        };
        let mut imp = CatalogueImport::new(tx, ctx)?;
        for item in items {
            imp.item(item)?;
        }
        let out = imp.finish()?;
        finish_run(tx, run, &out, items.len())?;
        Ok((out, run))
    })
}

fn finish_run(
    tx: &rusqlite::Transaction<'_>,
    run: i64,
    out: &Outcome,
    n: usize,
) -> Result<(), DomainError> {
    let status = match out {
        Outcome::Applied(_) => RunStatus::Ok,
        Outcome::Parked(_) => RunStatus::Parked,
    };
    runs::finish(
        tx,
        run,
        status,
        Counts {
            total: n as u64,
            ok: n as u64,
            rejected: 0,
        },
    )?;
    Ok(())
}

pub fn applied(out: Outcome) -> Summary {
    match out {
        Outcome::Applied(s) => s,
        Outcome::Parked(m) => panic!("expected applied, parked for {m:?}"),
    }
}

pub fn parked(out: Outcome) -> Vec<Missing> {
    match out {
        Outcome::Parked(m) => m,
        Outcome::Applied(s) => panic!("expected parked, applied {s:?}"),
    }
}

/// "kind id" of each missing mapping, sorted.
pub fn missing_keys(missing: &[Missing]) -> Vec<String> {
    let mut keys: Vec<String> = missing
        .iter()
        .map(|m| format!("{} {}", m.kind, m.manager_id))
        .collect();
    keys.sort();
    keys
}

/// Fills a mapping row (creating it) to the local object with this code.
pub fn map(store: &mut Store, kind: &str, manager_id: i64, local_code: &str) {
    store
        .write(|tx| -> Result<(), DomainError> {
            let kind_ = stxd::domain::mapping::parse_kind(kind)?;
            let table = stxd::domain::mapping::local_table(kind_);
            let local: i64 = tx.query_row(&format!("SELECT id FROM {table} WHERE code = ?1"), [local_code], |r| r.get(0))?;
            tx.execute(
                "INSERT INTO mapping (manager, kind, manager_id, manager_code, manager_label, local_id,
                     status, first_seen, last_seen)
                 VALUES ('OPERA', ?1, ?2, 'PRESET', '(set by the test)', ?3, 'filled', 'now', 'now')
                 ON CONFLICT (manager, kind, manager_id) DO UPDATE SET local_id = ?3, status = 'filled'",
                (kind, manager_id, local),
            )?;
            Ok(())
        })
        .unwrap();
}

/// The demo's seat category mappings (OPERA 2001..2004 → PREM, SECONDE, TROIS, DEBOUT).
pub fn map_seat_categories(store: &mut Store) {
    for (id, code) in [
        (2001, "PREM"),
        (2002, "SECONDE"),
        (2003, "TROIS"),
        (2004, "DEBOUT"),
    ] {
        map(store, "seat_category", id, code);
    }
}

/// The demo's other by-hand mappings (samples/tourism/mapping.csv's).
pub fn map_catalogue_references(store: &mut Store) {
    for (kind, id, code) in [
        ("season", 1001, "T3637"),
        ("vat_code", 1101, "TVA-R"),
        ("tariff_type", 1201, "NORMAL"),
        ("tariff_type", 1202, "REDUIT"),
        ("audience_subcategory", 1301, "ADULT"),
        ("audience_subcategory", 1302, "CHILD"),
        ("activity", 1401, "OPERA-TR"),
    ] {
        map(store, kind, id, code);
    }
}

pub fn scalar(store: &Store, sql: &str) -> i64 {
    store
        .read(|c| -> Result<i64, DomainError> { Ok(c.query_row(sql, [], |r| r.get(0))?) })
        .unwrap()
}

pub fn messages(store: &Store, run: i64) -> Vec<runs::Message> {
    store.read(|c| runs::get(c, run)).unwrap().unwrap().messages
}

#[test]
fn seat_plan_parks_until_its_seat_categories_are_mapped_then_maps_every_seat_with_new_ids() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = distributor(dir.path());
    let items = seatplan_items();

    let (out, run) = import_seatplan(&mut s, &items).unwrap();
    let missing = parked(out);
    assert_eq!(
        missing_keys(&missing),
        [
            "seat_category 2001",
            "seat_category 2002",
            "seat_category 2003",
            "seat_category 2004"
        ]
    );
    assert_eq!(missing[3].needed_by, "zone FOSSE");
    assert_eq!(missing[0].needed_by, "seat PARTERRE A 1");
    assert_eq!(
        scalar(&s, "SELECT count(*) FROM venue"),
        0,
        "nothing applied"
    );
    assert_eq!(
        scalar(&s, "SELECT count(*) FROM mapping WHERE status = 'pending'"),
        4
    );
    let msgs = messages(&s, run);
    assert_eq!(
        msgs.iter().filter(|m| m.code == "mapping-pending").count(),
        4
    );

    map_seat_categories(&mut s);
    let (out, _) = import_seatplan(&mut s, &items).unwrap();
    let first = applied(out);
    // venue, configuration, zone, 2 blocks, 20 rows, 384 seats
    assert_eq!(first.created, 1 + 1 + 1 + 2 + 20 + 384);
    assert_eq!(scalar(&s, "SELECT count(*) FROM seat"), 384);
    assert_eq!(
        scalar(
            &s,
            "SELECT count(DISTINCT local_id) FROM mapping WHERE kind = 'seat' AND status = 'filled'"
        ),
        384
    );
    assert_eq!(
        scalar(
            &s,
            "SELECT count(*) FROM seat WHERE id BETWEEN 50001 AND 50384"
        ),
        0,
        "local ids are the distributor's own"
    );
    // PARTERRE row A seat 1 (manager 50001) is in the local first category.
    assert_eq!(
        scalar(
            &s,
            "SELECT s.seat_category FROM mapping m JOIN seat s ON s.id = m.local_id
             WHERE m.kind = 'seat' AND m.manager_id = 50001"
        ),
        7501
    );
    assert_eq!(
        scalar(&s, "SELECT capacity FROM zone WHERE seat_category = 7504"),
        150
    );

    let (out, _) = import_seatplan(&mut s, &items).unwrap();
    let again = applied(out);
    assert_eq!(
        (again.created, again.updated, again.unchanged),
        (0, 0, first.created)
    );
    assert_eq!(scalar(&s, "SELECT count(*) FROM seat"), 384);
}

#[test]
fn first_use_catalogue_parks_with_exactly_the_by_hand_mappings_then_applies_validates_and_sells() {
    let dir = tempfile::tempdir().unwrap();
    // The manager's store, for the facts the distributor must end up with.
    let mut opera = Store::open(&dir.path().join("opera.sqlite"), "OPERA", Role::Manager).unwrap();
    let files = ["seatplan.xml", "catalogue.xml", "setup.toml"]
        .map(|f| repo().join("samples/opera").join(f));
    stxd::app::load(&mut opera, &files).unwrap();
    assert_eq!(scalar(&opera, "SELECT count(*) FROM seat"), 384);

    let mut s = distributor(dir.path());
    map_seat_categories(&mut s);
    applied(import_seatplan(&mut s, &seatplan_items()).unwrap().0);

    let items = exported_catalogue();
    let (out, run) =
        import_catalogue(&mut s, &items, "opera-tourism.CATALOGUE.00000001.xml").unwrap();
    let missing = parked(out);
    assert_eq!(
        missing_keys(&missing),
        [
            "activity 1401",
            "audience_subcategory 1301",
            "audience_subcategory 1302",
            "season 1001",
            "tariff_type 1201",
            "tariff_type 1202",
            "vat_code 1101",
        ]
    );
    let plein = missing.iter().find(|m| m.manager_id.get() == 1201).unwrap();
    assert_eq!(
        (plein.code.as_str(), plein.label.as_str()),
        ("PLEIN", "Plein tarif")
    );
    assert!(
        plein.needed_by.contains("price CAT1/PLEIN/ADULTE"),
        "{}",
        plein.needed_by
    );
    for table in [
        "product",
        "rate_table",
        "logical_configuration",
        "performance",
        "price",
    ] {
        assert_eq!(
            scalar(&s, &format!("SELECT count(*) FROM {table}")),
            0,
            "{table}: nothing applied"
        );
    }
    assert_eq!(
        scalar(
            &s,
            "SELECT count(*) FROM mapping WHERE status = 'pending' AND first_file LIKE '%CATALOGUE%'"
        ),
        7,
        "the pending rows ops must fill are kept"
    );
    let msgs = messages(&s, run);
    let pending: Vec<_> = msgs
        .iter()
        .filter(|m| m.code == "mapping-pending")
        .collect();
    assert_eq!(pending.len(), 7);
    assert!(pending.iter().all(|m| m.level == runs::Level::Error));
    assert!(
        pending
            .iter()
            .any(|m| m.location.as_deref() == Some("tariff_type 1201")
                && m.text.contains("PLEIN")
                && m.text.contains("Plein tarif")),
        "{pending:?}"
    );

    map_catalogue_references(&mut s);
    let (out, run) =
        import_catalogue(&mut s, &items, "opera-tourism.CATALOGUE.00000001.xml").unwrap();
    let summary = applied(out);
    assert_eq!(summary.suspended, 0);
    assert_eq!(
        scalar(
            &s,
            "SELECT count(*) FROM product WHERE state = 'to_validate'"
        ),
        1
    );
    assert_eq!(scalar(&s, "SELECT count(*) FROM price"), 14);
    assert_eq!(scalar(&s, "SELECT count(*) FROM product_performance"), 2);
    assert_eq!(
        scalar(
            &s,
            "SELECT count(*) FROM logical_seat_category l JOIN seat_category c ON c.id = l.seat_category"
        ),
        4
    );
    assert_eq!(
        scalar(
            &s,
            "SELECT amount FROM price p JOIN seat_category c ON c.id = p.seat_category
             JOIN tariff_type t ON t.id = p.tariff_type JOIN audience_subcategory a ON a.id = p.audience_subcategory
             WHERE c.code = 'PREM' AND t.code = 'NORMAL' AND a.code = 'ADULT'"
        ),
        8500
    );
    assert!(messages(&s, run).iter().any(|m| m.code == "applied"));

    let products = s.read(|c| cat::list(c, true)).unwrap();
    assert_eq!(products.len(), 1);
    let product = &products[0];
    assert_eq!(product.code, "TRAV-BIL");
    assert_eq!(product.performances.len(), 2);
    assert!(!s.read(|c| cat::is_sellable(c, product.id)).unwrap());

    let v = s
        .write(|tx| cat::validate(tx, Selection::Ids(&[product.id])))
        .unwrap();
    assert!(v.refused.is_empty());
    assert_eq!((v.rate_tables, v.logical_configurations), (1, 1));
    s.write(|tx| cat::assign_profile(tx, product.id, "8201"))
        .unwrap();
    assert!(s.read(|c| cat::is_sellable(c, product.id)).unwrap());

    // The same snapshot again: nothing changes, the validation holds.
    let again = applied(
        import_catalogue(&mut s, &items, "opera-tourism.CATALOGUE.00000002.xml")
            .unwrap()
            .0,
    );
    assert_eq!((again.created, again.updated, again.suspended), (0, 0, 0));
    assert!(again.unchanged > 0);
    assert!(s.read(|c| cat::is_sellable(c, product.id)).unwrap());
}

#[test]
fn catalogue_cli_lists_validates_and_assigns_on_the_demo_distributor() {
    let sb = crate::util::Sandbox::new();
    sb.ready();
    // The config keeps each institution's store as <state_dir>/<CODE>.sqlite.
    let db = sb.path().join("var/state/TOURISM.sqlite");
    {
        let mut s = Store::open(&db, "TOURISM", Role::Distributor).unwrap();
        map_seat_categories(&mut s);
        map_catalogue_references(&mut s);
        applied(import_seatplan(&mut s, &seatplan_items()).unwrap().0);
        applied(
            import_catalogue(&mut s, &exported_catalogue(), "c.xml")
                .unwrap()
                .0,
        );
    }
    let out = sb.stxd(&["catalogue", "list", "--to-validate", "--json"]);
    out.expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
    let id = doc["products"][0]["id"].as_i64().unwrap();
    assert_eq!(doc["products"][0]["state"], "to_validate");
    assert_eq!(doc["products"][0]["rate_table"]["prices"], 14);

    sb.stxd(&["catalogue", "assign-profile", &id.to_string(), "NOPE"])
        .expect_code(1);
    sb.stxd(&["catalogue", "validate", "999"]).expect_code(1);
    let v = sb.stxd(&["catalogue", "validate", "--all"]);
    v.expect_code(0);
    assert!(v.stdout().contains("TRAV-BIL"), "{}", v.stdout());
    let a = sb.stxd(&["catalogue", "assign-profile", &id.to_string(), "GUICHET"]);
    a.expect_code(0);
    assert!(a.stdout().contains("sellable"), "{}", a.stdout());
    let list = sb.stxd(&["catalogue", "list"]);
    list.expect_code(0);
    assert!(
        list.stdout().contains("validated") && list.stdout().contains("GUICHET"),
        "{}",
        list.stdout()
    );
    let none = sb.stxd(&["catalogue", "list", "--to-validate"]);
    assert!(
        none.stdout().contains("no product to validate"),
        "{}",
        none.stdout()
    );
}

/// A parked file that fails when it resumes shows its real reason: its
/// parked journal row becomes the rejection, the pair goes to `error/` with
/// that reason, and nothing is reported as "already journaled".
#[test]
fn a_parked_file_failing_on_resume_is_rejected_with_its_real_reason() {
    let sb = crate::util::Sandbox::new();
    sb.ready();
    sb.stxd(&["export", "seatplan", "--link", "opera-tourism"])
        .expect_code(0);
    sb.stxd(&["export", "catalogue", "--link", "opera-tourism"])
        .expect_code(0);
    sb.stxd(&["process"]).expect_code(0);
    // Two manager seat categories mapped to one local one: two prices of the
    // rate table then collide.
    let csv = sb.path().join("samples/tourism/mapping.csv");
    let text = std::fs::read_to_string(&csv).unwrap().replace(
        "OPERA;seat_category;2002;CAT2;Catégorie 2;filled;SECONDE",
        "OPERA;seat_category;2002;CAT2;Catégorie 2;filled;PREM",
    );
    std::fs::write(&csv, text).unwrap();
    // Filling the mappings resumes the parked files: the seat plan applies,
    // the catalogue is refused for what is really wrong with it.
    let resumed = sb.stxd(&["mapping", "import", "samples/tourism/mapping.csv"]);
    resumed.expect_code(1);
    assert!(
        !resumed.stdout().contains("already journaled"),
        "{}",
        resumed.stdout()
    );
    assert!(
        resumed
            .stdout()
            .contains("maps to the same local seat category"),
        "{}",
        resumed.stdout()
    );
    let error = sb
        .path()
        .join("var/exchange/opera-tourism/to-distributor/error");
    let reason =
        std::fs::read_to_string(error.join("opera-tourism.CATALOGUE.00000001.stx.reason")).unwrap();
    assert!(
        reason.contains("maps to the same local seat category"),
        "{reason}"
    );
    assert!(error.join("opera-tourism.CATALOGUE.00000001.xml").exists());
    let conn = rusqlite::Connection::open(sb.path().join("var/state/TOURISM.sqlite")).unwrap();
    let state: String = conn
        .query_row(
            "SELECT state FROM file_journal WHERE kind = 'CATALOGUE' AND direction = 'in' AND sequence = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(state, "rejected");
    let status = sb.stxd(&["status"]);
    assert!(
        status.stdout().contains("1 file put in error/"),
        "{}",
        status.stdout()
    );
}
