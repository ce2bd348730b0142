//! The manager's exports against real stores and folders: the OPERA demo
//! link's catalogue and seat plan, re-read through the inbound stages; the
//! sequence and the journal; refusals that write nothing and use no
//! sequence; the execution log; and the same through the `stxd` binary.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use stxd::config::{Link, Transport};
use stxd::domain::export::{self as domain, ExportError as DomainExportError, Report};
use stxd::format::catalogue::{self as cat, PerformanceState};
use stxd::format::envelope::Secret;
use stxd::format::seatplan as sp;
use stxd::format::{Kind, Limits};
use stxd::ident::{Code, TechId};
use stxd::inbound::{self, Record};
use stxd::outbound::export::{self, Cause, Exported};
use stxd::outbound::{Produced, Producer};
use stxd::store::journal::{self, Direction, FileState};
use stxd::store::runs::{self, Level, RunStatus};
use stxd::store::{Role, Store, StoreError};
use time::macros::datetime;

use crate::util::{Sandbox, repo, test_secret};

// ------------------------------------------------------------------ harness

/// OPERA's store loaded with its samples, and a link into `dir/exchange`.
struct Manager {
    _dir: tempfile::TempDir,
    store: Store,
    link: Link,
    secret: Secret,
}

impl Manager {
    fn new(products: Option<Vec<i64>>) -> Manager {
        let dir = tempfile::tempdir().unwrap();
        let mut store =
            Store::open(&dir.path().join("OPERA.sqlite"), "OPERA", Role::Manager).unwrap();
        let files: Vec<PathBuf> = ["seatplan.xml", "catalogue.xml", "setup.toml"]
            .iter()
            .map(|f| repo().join("samples/opera").join(f))
            .collect();
        stxd::app::load(&mut store, &files).unwrap();
        let link = Link {
            name: "opera-tourism".into(),
            manager: Code::new("OPERA").unwrap(),
            distributor: Code::new("TOURISM").unwrap(),
            login: "TOURISM_OPE@TOURISM".into(),
            secret_file: dir.path().join("unused.key"),
            generate_secret: false,
            secret_overlap_days: 7,
            products: products.map(|ps| ps.into_iter().map(|p| TechId::new(p).unwrap()).collect()),
            transport: Transport::Local {
                dir: dir.path().join("exchange"),
            },
        };
        Manager {
            _dir: dir,
            store,
            link,
            secret: test_secret(),
        }
    }

    fn outbox(&self) -> PathBuf {
        self.link.folders(Role::Manager).outbox
    }

    fn export(&mut self, kind: Kind) -> Result<Exported, export::ExportError> {
        stxd::outbound::export(
            &mut self.store,
            &self.link,
            kind,
            &self.secret,
            datetime!(2026-11-28 10:00:00 UTC),
        )
    }

    fn sql(&mut self, sql: &str) {
        self.store
            .write(|tx| -> Result<(), StoreError> {
                tx.execute_batch(sql)?;
                Ok(())
            })
            .unwrap();
    }

    fn last_sequence(&self, kind: Kind) -> Option<u64> {
        self.store
            .read(|c| journal::last_sequence(c, "opera-tourism", kind, Direction::Out))
            .unwrap()
    }

    fn run(&self, id: i64) -> runs::RunDetail {
        self.store
            .read(|c| runs::get(c, id))
            .unwrap()
            .expect("run exists")
    }

    /// Re-reads a published file through claim, verify and parse.
    fn reread(&self, done: &Exported) -> Vec<Record> {
        let limits = Limits::default();
        let manifest = done.outbox.join(done.manifest.manifest_name());
        let claimed = inbound::claim::claim(&manifest, &limits).unwrap();
        let expect = self.link.expectation(done.manifest.kind);
        let verified = inbound::verify::verify(claimed, &self.secret, &expect, &limits).unwrap();
        inbound::parse::parse(verified, &limits)
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    }

    /// What the domain emits for this link, collected.
    fn catalogue_items(&self) -> (Vec<cat::Item>, Report) {
        let scope = stxd::outbound::produce::scope(&self.link);
        self.store
            .read(|c| -> Result<_, DomainExportError> {
                let mut items = Vec::new();
                let report = domain::catalogue(c, &scope, &mut |i| {
                    items.push(i.clone());
                    Ok(())
                })?;
                Ok((items, report))
            })
            .unwrap()
    }
}

/// The files of `dir` (not its archive subfolders), sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(Result::unwrap)
            .filter(|e| !e.file_type().unwrap().is_dir())
            .map(|e| e.file_name().into_string().unwrap())
            .collect(),
        Err(_) => Vec::new(),
    };
    out.sort();
    out
}

fn catalogue_records(records: Vec<Record>) -> Vec<cat::Item> {
    records
        .into_iter()
        .map(|r| match r {
            Record::Catalogue(i) => i,
            other => panic!("not a catalogue record: {other:?}"),
        })
        .collect()
}

fn excluded<'a>(report: &'a Report, object: &str) -> &'a str {
    report
        .excluded
        .iter()
        .find(|x| x.object == object)
        .map(|x| x.reason.as_str())
        .unwrap_or_else(|| panic!("{object} not excluded: {:#?}", report.excluded))
}

// ------------------------------------------------------------------ catalogue

#[test]
fn catalogue_holds_exactly_what_the_channel_may_sell() {
    let mut m = Manager::new(None);
    let done = m.export(Kind::Catalogue).unwrap();
    assert_eq!(done.manifest.sequence, 1);
    assert_eq!(done.manifest.sender, "OPERA");
    assert_eq!(done.manifest.recipient, "TOURISM");
    assert_eq!(done.manifest.login, "TOURISM_OPE@TOURISM");
    assert_eq!(done.manifest.link, "opera-tourism");
    let items = catalogue_records(m.reread(&done));
    assert_eq!(items.len() as u64, done.manifest.records);

    let products: Vec<(i64, &str)> = items
        .iter()
        .filter_map(|i| match i {
            cat::Item::Product(p) => Some((p.id.get(), p.code.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(products, [(1901, "TRAV-BIL")]);
    let refs: Vec<(i64, i64)> = items
        .iter()
        .filter_map(|i| match i {
            cat::Item::PerformanceRef(r) => Some((r.product.get(), r.performance.get())),
            _ => None,
        })
        .collect();
    assert_eq!(refs, [(1901, 1701), (1901, 1702)]);
    let performances: Vec<(i64, PerformanceState)> = items
        .iter()
        .filter_map(|i| match i {
            cat::Item::Performance(p) => Some((p.id.get(), p.state)),
            _ => None,
        })
        .collect();
    assert_eq!(
        performances,
        [
            (1701, PerformanceState::InOperation),
            (1702, PerformanceState::InOperation)
        ]
    );
    let audiences: Vec<&str> = items
        .iter()
        .filter_map(|i| match i {
            cat::Item::AudienceSubcategory(a) => Some(a.code.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(audiences, ["ADULTE", "ENFANT"]);
    let rate_tables: Vec<i64> = items
        .iter()
        .filter_map(|i| match i {
            cat::Item::RateTable(r) => Some(r.id.get()),
            _ => None,
        })
        .collect();
    assert_eq!(rate_tables, [1801]);
    let activities: Vec<i64> = items
        .iter()
        .filter_map(|i| match i {
            cat::Item::Activity(a) => Some(a.id.get()),
            _ => None,
        })
        .collect();
    assert_eq!(activities, [1401]);
    let tariff_types: Vec<&str> = items
        .iter()
        .filter_map(|i| match i {
            cat::Item::TariffType(t) => Some(t.code.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(tariff_types, ["PLEIN", "REDUIT"]);

    // Rate table 1801: ADULTE and ENFANT prices only, every one of them.
    let prices: BTreeSet<(i64, i64, i64, i64)> = items
        .iter()
        .filter_map(|i| match i {
            cat::Item::Price(p) => Some((
                p.seat_category.get(),
                p.tariff_type.get(),
                p.audience_subcategory.get(),
                p.amount,
            )),
            _ => None,
        })
        .collect();
    let mut expected = BTreeSet::new();
    for (sc, amounts) in [
        (2001, [8500, 4250, 6500, 3250]),
        (2002, [6000, 3000, 4500, 2250]),
        (2003, [3500, 1750, 2500, 1250]),
    ] {
        expected.insert((sc, 1201, 1301, amounts[0]));
        expected.insert((sc, 1201, 1302, amounts[1]));
        expected.insert((sc, 1202, 1301, amounts[2]));
        expected.insert((sc, 1202, 1302, amounts[3]));
    }
    expected.insert((2004, 1201, 1301, 2500));
    expected.insert((2004, 1201, 1302, 1250));
    assert_eq!(prices, expected);

    // The reasons of what was left out.
    let r = &done.report;
    assert!(excluded(r, "product 1902 CARM-BIL").contains("not in the product profiles"));
    assert!(excluded(r, "performance 1703 TRAV0120 of product 1901 TRAV-BIL").contains("planned"));
    assert!(
        excluded(
            r,
            "2 price(s) of rate table 1801 TRAV-RT for audience subcategory 1303 ETUDIANT"
        )
        .contains("not allowed")
    );
    assert!(excluded(r, "audience subcategory 1303 ETUDIANT").contains("not allowed"));
    assert!(excluded(r, "activity 1402 CARMEN").contains("activity profiles"));
    assert!(excluded(r, "rate table 1802 CARM-RT").contains("no exported product"));
    assert_eq!(r.included("products"), 1);
    assert_eq!(r.included("prices"), 14);
    assert_eq!(r.total(), done.manifest.records);

    // The file holds exactly what the domain emits, in the same order.
    let (direct, direct_report) = m.catalogue_items();
    assert_eq!(items, direct);
    assert_eq!(&direct_report, r);
}

#[test]
fn sequences_go_one_two_three_with_one_published_journal_row_each() {
    let mut m = Manager::new(None);
    let mut shas = Vec::new();
    for expected in 1..=3u64 {
        let done = m.export(Kind::Catalogue).unwrap();
        assert_eq!(done.manifest.sequence, expected);
        shas.push(hex::encode(done.manifest.sha256));
    }
    for (i, sha) in shas.iter().enumerate() {
        let seq = i as u64 + 1;
        let entry = m
            .store
            .read(|c| journal::lookup(c, "opera-tourism", Kind::Catalogue, Direction::Out, seq))
            .unwrap()
            .expect("journaled");
        assert_eq!(entry.state, FileState::Published);
        assert_eq!(&entry.sha256, sha);
        assert_eq!(
            entry.file_name,
            format!("opera-tourism.CATALOGUE.{seq:08}.xml")
        );
    }
    let rows: i64 = m
        .store
        .read(|c| -> Result<i64, StoreError> {
            Ok(c.query_row(
                "SELECT count(*) FROM file_journal WHERE kind = 'CATALOGUE' AND direction = 'out'",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(rows, 3);
    assert_eq!(m.last_sequence(Kind::Catalogue), Some(3));
    // Another kind has its own sequence.
    assert_eq!(m.export(Kind::Seatplan).unwrap().manifest.sequence, 1);
    assert_eq!(names(&m.outbox()).len(), 8);
}

/// Decision: a selection that leaves nothing to sell is refused, not
/// exported as an empty catalogue (a catalogue is a full snapshot: an empty
/// one would withdraw every product at the distributor).
#[test]
fn a_link_restricted_to_an_unsellable_product_is_refused_with_the_reasons() {
    let mut m = Manager::new(Some(vec![1902]));
    let e = m.export(Kind::Catalogue).unwrap_err();
    assert_eq!(e.code(), "nothing-to-sell", "{e}");
    let report = e.report().expect("exclusions");
    assert!(excluded(report, "product 1901 TRAV-BIL").contains("link's product list"));
    assert!(excluded(report, "product 1902 CARM-BIL").contains("not in the product profiles"));
    assert!(names(&m.outbox()).is_empty(), "{:?}", names(&m.outbox()));
    assert_eq!(m.last_sequence(Kind::Catalogue), None);
    // The seat plan follows the same selection.
    assert_eq!(
        m.export(Kind::Seatplan).unwrap_err().code(),
        "nothing-to-sell"
    );

    let run = m.run(e.run_id.expect("failed run logged"));
    assert_eq!(run.run.kind, "export-catalogue");
    assert_eq!(run.run.status, RunStatus::Failed);
    assert_eq!(run.run.file, None);
    assert!(run.messages.iter().any(|x| x.level == Level::Error
        && x.code == "nothing-to-sell"
        && x.text.contains("nothing to sell")));
    assert!(run.messages.iter().any(|x| x.code == "excluded"
        && x.location.as_deref() == Some("product 1901 TRAV-BIL")));
}

#[test]
fn a_link_restricted_to_a_sellable_product_exports_it() {
    let mut m = Manager::new(Some(vec![1901]));
    let done = m.export(Kind::Catalogue).unwrap();
    assert_eq!(done.report.included("products"), 1);
    assert!(excluded(&done.report, "product 1902 CARM-BIL").contains("product profiles"));
}

#[test]
fn an_allowed_audience_without_price_is_named_and_not_exported() {
    let mut m = Manager::new(None);
    m.sql("INSERT INTO product_profile_audience (product_profile, audience_subcategory) VALUES (5701, 1304)");
    let done = m.export(Kind::Catalogue).unwrap();
    let reason = excluded(
        &done.report,
        "audience subcategory 1304 SENIOR for product 1901 TRAV-BIL",
    );
    assert!(reason.contains("no price"), "{reason}");
    assert!(
        excluded(&done.report, "audience subcategory 1304 SENIOR").contains("no exported price")
    );
    assert_eq!(done.report.included("audience subcategories"), 2);
}

/// A product whose performances are all planned is left out; a cancelled or
/// closed performance is sent with its state (the distributor follows it).
#[test]
fn a_product_without_a_performance_in_operation_is_left_out() {
    let mut m = Manager::new(None);
    m.sql("UPDATE performance SET state = 'planned' WHERE id IN (1701, 1702)");
    let e = m.export(Kind::Catalogue).unwrap_err();
    assert_eq!(e.code(), "nothing-to-sell");
    let r = e.report().unwrap();
    assert!(
        excluded(r, "product 1901 TRAV-BIL").contains("none of its performances is in operation")
    );
    assert!(excluded(r, "performance 1701 TRAV0115 of product 1901 TRAV-BIL").contains("planned"));
}

// ------------------------------------------------------------------ seat plan

#[test]
fn seat_plan_holds_the_venue_its_zone_and_384_seats() {
    let mut m = Manager::new(None);
    let done = m.export(Kind::Seatplan).unwrap();
    let items: Vec<sp::Item> = m
        .reread(&done)
        .into_iter()
        .map(|r| match r {
            Record::Seatplan(i) => i,
            other => panic!("not a seat plan record: {other:?}"),
        })
        .collect();
    let venues: Vec<i64> = items
        .iter()
        .filter_map(|i| match i {
            sp::Item::Venue(v) => Some(v.id.get()),
            _ => None,
        })
        .collect();
    assert_eq!(venues, [3001]);
    let zones: Vec<(i64, &str, i64, u32)> = items
        .iter()
        .filter_map(|i| match i {
            sp::Item::Zone(z) => Some((
                z.id.get(),
                z.code.as_str(),
                z.seat_category.get(),
                z.capacity,
            )),
            _ => None,
        })
        .collect();
    assert_eq!(zones, [(3201, "FOSSE", 2004, 150)]);
    let seats: Vec<i64> = items
        .iter()
        .filter_map(|i| match i {
            sp::Item::Seat(s) => Some(s.id.get()),
            _ => None,
        })
        .collect();
    assert_eq!(seats.len(), 384);
    assert_eq!(seats.first(), Some(&50001));
    assert_eq!(seats.last(), Some(&50384));
    let rows = items
        .iter()
        .filter(|i| matches!(i, sp::Item::Row(_)))
        .count();
    assert_eq!(rows, 20);
    assert_eq!(done.report.included("seats"), 384);
    assert_eq!(done.manifest.records, 4 + 1 + 1 + 1 + 2 + 20 + 384);
    // The export is the sample seat plan, record for record.
    let sample = std::io::BufReader::new(
        std::fs::File::open(repo().join("samples/opera/seatplan.xml")).unwrap(),
    );
    let original: Vec<sp::Item> = sp::Reader::new(sample, "seatplan.xml", Limits::default())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(items, original);
}

#[test]
fn a_venue_no_exported_performance_uses_is_left_out() {
    let mut m = Manager::new(None);
    m.sql(
        "INSERT INTO venue (id, code, name) VALUES (3002, 'PETIT', 'Petite salle');
         INSERT INTO configuration (id, venue, code, name) VALUES (3102, 3002, 'STD', 'Standard');",
    );
    let done = m.export(Kind::Seatplan).unwrap();
    assert!(excluded(&done.report, "venue 3002 PETIT").contains("no exported performance"));
    assert_eq!(done.report.included("venues"), 1);
}

// ------------------------------------------------------------------ refusals

#[test]
fn a_channel_out_of_operation_is_refused_and_uses_no_sequence() {
    let mut m = Manager::new(None);
    m.export(Kind::Catalogue).unwrap();
    let before = names(&m.outbox());
    m.sql("UPDATE sales_channel SET in_operation = 0 WHERE id = 5001");
    for kind in [Kind::Catalogue, Kind::Seatplan] {
        let e = m.export(kind).unwrap_err();
        assert_eq!(e.code(), "channel-not-in-operation", "{e}");
        assert!(e.to_string().contains("not in operation"), "{e}");
        assert!(
            e.to_string().contains("put the channel in operation"),
            "{e}"
        );
        assert!(matches!(*e.cause, Cause::Refused(_)));
        let run = m.run(e.run_id.unwrap());
        assert_eq!(run.run.status, RunStatus::Failed);
        assert!(
            run.messages
                .iter()
                .any(|x| x.code == "channel-not-in-operation")
        );
    }
    assert_eq!(names(&m.outbox()), before);
    assert_eq!(m.last_sequence(Kind::Catalogue), Some(1));
    assert_eq!(m.last_sequence(Kind::Seatplan), None);
    m.sql("UPDATE sales_channel SET in_operation = 1 WHERE id = 5001");
    assert_eq!(m.export(Kind::Catalogue).unwrap().manifest.sequence, 2);
}

#[test]
fn a_missing_or_foreign_interface_is_refused_with_the_fix() {
    let mut m = Manager::new(None);
    m.link.login = "OTHER_OPE@TOURISM".into();
    let e = m.export(Kind::Catalogue).unwrap_err();
    assert_eq!(e.code(), "no-interface");
    assert!(e.to_string().contains("external_sales_interface"), "{e}");
    m.link.login = "TOURISM_OPE@TOURISM".into();
    m.sql("UPDATE external_sales_interface SET distributor = 'AGENCY' WHERE id = 5401");
    assert_eq!(
        m.export(Kind::Catalogue).unwrap_err().code(),
        "interface-distributor"
    );
    m.sql(
        "UPDATE external_sales_interface SET distributor = 'TOURISM' WHERE id = 5401;
         UPDATE sales_channel SET kind = 'internet' WHERE id = 5001;",
    );
    assert_eq!(
        m.export(Kind::Catalogue).unwrap_err().code(),
        "channel-kind"
    );
    assert!(names(&m.outbox()).is_empty());
}

/// A producer that writes half a payload, then fails.
struct Failing;

impl Producer for Failing {
    fn kind(&self) -> Kind {
        Kind::Catalogue
    }

    fn produce(
        &self,
        _conn: &Connection,
        _link: &Link,
        out: &mut dyn Write,
    ) -> Result<Produced, DomainExportError> {
        out.write_all(b"<?xml version=\"1.0\"?>\n<catalogue")
            .map_err(stxd::format::WriteError::from)?;
        Err(DomainExportError::BadData {
            object: "product 1901 TRAV-BIL".into(),
            problem: "broken on purpose".into(),
        })
    }
}

#[test]
fn a_producer_failing_mid_file_leaves_no_file_and_no_sequence() {
    let mut m = Manager::new(None);
    let e = export::export_with(
        &mut m.store,
        &m.link,
        &Failing,
        &m.secret,
        datetime!(2026-11-28 10:00:00 UTC),
    )
    .unwrap_err();
    assert_eq!(e.code(), "bad-data");
    assert!(e.to_string().contains("broken on purpose"), "{e}");
    assert!(names(&m.outbox()).is_empty(), "{:?}", names(&m.outbox()));
    assert_eq!(m.last_sequence(Kind::Catalogue), None);
    assert_eq!(m.export(Kind::Catalogue).unwrap().manifest.sequence, 1);
}

#[test]
fn an_unjournaled_file_in_the_way_is_never_overwritten() {
    let mut m = Manager::new(None);
    std::fs::create_dir_all(m.outbox()).unwrap();
    let stray = m.outbox().join("opera-tourism.CATALOGUE.00000001.xml");
    std::fs::write(&stray, b"left by a crash").unwrap();
    let e = m.export(Kind::Catalogue).unwrap_err();
    assert_eq!(e.code(), "orphan-file", "{e}");
    assert!(e.to_string().contains("move it"), "{e}");
    assert_eq!(std::fs::read(&stray).unwrap(), b"left by a crash");
    assert_eq!(m.last_sequence(Kind::Catalogue), None);
}

#[test]
fn a_distributor_store_cannot_export_manager_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut store =
        Store::open(&dir.path().join("T.sqlite"), "TOURISM", Role::Distributor).unwrap();
    let m = Manager::new(None);
    let e = stxd::outbound::export(
        &mut store,
        &m.link,
        Kind::Catalogue,
        &m.secret,
        datetime!(2026-11-28 10:00:00 UTC),
    )
    .unwrap_err();
    assert_eq!(e.code(), "wrong-store", "{e}");
    assert!(!m.outbox().exists());
}

// ------------------------------------------------------------------ execution log

#[test]
fn each_export_leaves_a_run_with_its_messages() {
    let mut m = Manager::new(None);
    let cat = m.export(Kind::Catalogue).unwrap();
    let run = m.run(cat.run_id);
    assert_eq!(run.run.kind, "export-catalogue");
    assert_eq!(run.run.status, RunStatus::Ok);
    assert_eq!(run.run.link.as_deref(), Some("opera-tourism"));
    assert_eq!(run.run.file.as_deref(), Some(cat.manifest.payload.as_str()));
    assert_eq!(run.run.counts.total, cat.manifest.records);
    let excluded: Vec<_> = run
        .messages
        .iter()
        .filter(|x| x.code == "excluded")
        .collect();
    assert_eq!(excluded.len(), cat.report.excluded.len());
    assert!(excluded.iter().all(|x| x.level == Level::Info));
    assert!(
        excluded
            .iter()
            .any(|x| x.location.as_deref() == Some("product 1902 CARM-BIL")
                && x.text.contains("product profiles"))
    );
    assert!(run.messages.iter().any(|x| x.code == "included"
        && x.location.as_deref() == Some("prices")
        && x.text == "14 exported"));

    let plan = m.export(Kind::Seatplan).unwrap();
    let run = m.run(plan.run_id);
    assert_eq!(run.run.kind, "export-seatplan");
    assert_eq!(run.run.status, RunStatus::Ok);
    assert!(run.messages.iter().any(|x| x.code == "included"
        && x.location.as_deref() == Some("seats")
        && x.text == "384 exported"));
}

// ------------------------------------------------------------------ the binary

#[test]
fn cli_exports_catalogue_and_seat_plan_into_the_outbox() {
    let sb = Sandbox::new();
    sb.ready();
    let run = sb.stxd(&["export", "catalogue", "--link", "opera-tourism"]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(out.contains("sequence:  1"), "{out}");
    assert!(out.contains("records:   36"), "{out}");
    assert!(
        out.contains("product 1902 CARM-BIL: not in the product profiles"),
        "{out}"
    );

    let run = sb.stxd(&["--json", "export", "catalogue", "--link", "opera-tourism"]);
    run.expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(doc["written"], true);
    assert_eq!(doc["sequence"], 2);
    assert_eq!(doc["records_by_type"]["products"], 1);
    assert!(
        doc["excluded"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["object"] == "audience subcategory 1303 ETUDIANT")
    );
    let manifest = doc["manifest"].as_str().unwrap();
    sb.stxd(&["inspect", manifest]).expect_code(0);

    let run = sb.stxd(&["--json", "export", "seatplan", "--link", "opera-tourism"]);
    run.expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(doc["sequence"], 1);
    assert_eq!(doc["records_by_type"]["seats"], 384);

    let outbox = sb.path().join("var/exchange/opera-tourism/to-distributor");
    assert_eq!(
        names(&outbox),
        [
            "opera-tourism.CATALOGUE.00000001.stx",
            "opera-tourism.CATALOGUE.00000001.xml",
            "opera-tourism.CATALOGUE.00000002.stx",
            "opera-tourism.CATALOGUE.00000002.xml",
            "opera-tourism.SEATPLAN.00000001.stx",
            "opera-tourism.SEATPLAN.00000001.xml",
        ]
    );
    // The distributor's side reads them with the link's secret.
    let secret = sb.demo_secret();
    let limits = Limits::default();
    let claimed =
        inbound::claim::claim(&outbox.join("opera-tourism.SEATPLAN.00000001.stx"), &limits)
            .unwrap();
    let link = Link {
        name: "opera-tourism".into(),
        manager: Code::new("OPERA").unwrap(),
        distributor: Code::new("TOURISM").unwrap(),
        login: "TOURISM_OPE@TOURISM".into(),
        secret_file: PathBuf::new(),
        generate_secret: false,
        secret_overlap_days: 7,
        products: None,
        transport: Transport::Local {
            dir: PathBuf::new(),
        },
    };
    let expect = link.expectation(Kind::Seatplan);
    inbound::verify::verify(claimed, &secret, &expect, &limits).unwrap();
}

#[test]
fn cli_refuses_a_channel_out_of_operation_and_writes_nothing() {
    let sb = Sandbox::new();
    let setup = sb.path().join("samples/opera/setup.toml");
    let text = std::fs::read_to_string(&setup).unwrap();
    assert!(text.contains("in_operation = true\n\n# Reintegrated"));
    std::fs::write(
        &setup,
        text.replacen(
            "in_operation = true\n\n# Reintegrated",
            "in_operation = false\n\n# Reintegrated",
            1,
        ),
    )
    .unwrap();
    let run = sb.stxd(&["export", "catalogue", "--link", "opera-tourism"]);
    run.expect_code(1);
    assert!(run.stdout().contains("refused:"), "{}", run.stdout());
    assert!(
        run.stdout().contains("not in operation"),
        "{}",
        run.stdout()
    );
    let run = sb.stxd(&["--json", "export", "seatplan", "--link", "opera-tourism"]);
    run.expect_code(1);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(doc["written"], false);
    assert_eq!(doc["code"], "channel-not-in-operation");
    assert!(doc["run"].as_i64().is_some());
    assert_eq!(
        names(&sb.path().join("var/exchange/opera-tourism/to-distributor")),
        Vec::<String>::new()
    );
}

#[test]
fn cli_export_of_an_unknown_link_says_which_links_exist() {
    let sb = Sandbox::new();
    let run = sb.stxd(&["export", "catalogue", "--link", "nope"]);
    // A usage error, as for every command that names a link.
    run.expect_code(2);
    assert!(run.stderr().contains("opera-tourism"), "{}", run.stderr());
}

#[test]
fn a_failure_after_publishing_takes_the_pair_back() {
    let mut m = Manager::new(None);
    m.sql(
        "CREATE TRIGGER refuse_journal BEFORE INSERT ON file_journal
         BEGIN SELECT RAISE(ABORT, 'journal refused for the test'); END;",
    );
    let e = m.export(Kind::Catalogue).unwrap_err();
    assert_eq!(e.code(), "database", "{e}");
    assert!(
        e.to_string().contains("journal refused for the test"),
        "{e}"
    );
    assert!(names(&m.outbox()).is_empty(), "{:?}", names(&m.outbox()));
    let run = m.run(e.run_id.unwrap());
    assert_eq!(run.run.status, RunStatus::Failed);
    m.sql("DROP TRIGGER refuse_journal");
    assert_eq!(m.export(Kind::Catalogue).unwrap().manifest.sequence, 1);
}
