//! Contingents at the manager (allocation and export) on the demo after first
//! use #1–#2: allocation of seats and zone places, every refusal, the safe
//! shrink (released places held until the distributor acknowledges the
//! version that removed them), and the CONTINGENT export of one performance
//! or of all, re-read through the inbound stages.

use std::path::Path;

use stxd::domain::DomainError;
use stxd::domain::contingent::{self, AllotmentView, Places, Ref, SeatRange};
use stxd::format::contingent::Line;
use stxd::format::{Kind, Limits};
use stxd::ident::{Code, TechId};
use stxd::inbound::{self, Record};
use stxd::store::{Role, Store, StoreError};

use crate::util::{Sandbox, json};

const LINK: &str = "opera-tourism";

fn id(v: i64) -> TechId {
    TechId::new(v).unwrap()
}

fn seats(block: &str, row: &str, from: u32, to: u32) -> Places {
    Places::Seats(vec![range(block, row, from, to)])
}

fn range(block: &str, row: &str, from: u32, to: u32) -> SeatRange {
    SeatRange {
        block: Ref::parse(block).unwrap(),
        row: Code::new(row).unwrap(),
        from,
        to,
    }
}

fn zone(z: &str, quantity: u32) -> Places {
    Places::Zone {
        zone: Ref::parse(z).unwrap(),
        quantity,
    }
}

fn opera(sb: &Sandbox) -> Store {
    Store::open(
        &sb.path().join("var/state/OPERA.sqlite"),
        "OPERA",
        Role::Manager,
    )
    .unwrap()
}

fn show(store: &Store, link: &str, perf: i64) -> Option<AllotmentView> {
    store
        .read(|c| contingent::show(c, link, Some(id(perf))))
        .unwrap()
        .into_iter()
        .next()
}

fn allocate(store: &mut Store, link: &str, perf: i64, what: Places) -> Result<u64, DomainError> {
    store
        .write(|tx| contingent::allocate(tx, link, id(perf), what))
        .map(|a| a.version)
}

fn release(store: &mut Store, link: &str, perf: i64, what: Places) -> Result<u64, DomainError> {
    store
        .write(|tx| contingent::release(tx, link, id(perf), what))
        .map(|a| a.version)
}

fn ack(store: &mut Store, perf: i64, version: u64) -> Result<contingent::AckOutcome, DomainError> {
    store.write(|tx| contingent::acknowledge(tx, LINK, id(perf), version))
}

fn sql(store: &mut Store, sql: &str) {
    store
        .write(|tx| -> Result<(), StoreError> { Ok(tx.execute_batch(sql)?) })
        .unwrap();
}

fn count(store: &Store, query: &str) -> i64 {
    store
        .read(|c| -> Result<i64, StoreError> { Ok(c.query_row(query, [], |r| r.get(0))?) })
        .unwrap()
}

/// Marks the allotment exported up to its version (as an export would).
fn mark_exported(store: &mut Store, perf: i64) {
    sql(
        store,
        &format!("UPDATE allotment SET exported = version WHERE performance = {perf}"),
    );
}

/// Re-reads a published CONTINGENT file (by its manifest) through claim,
/// verify and parse.
fn reread(sb: &Sandbox, manifest: &Path) -> Vec<Line> {
    let config = stxd::config::load(&sb.path().join("config/stxd.toml")).unwrap();
    let link = config.link(LINK).unwrap();
    let limits = Limits::default();
    let claimed = inbound::claim::claim(manifest, &limits).unwrap();
    let verified = inbound::verify::verify(
        claimed,
        &sb.demo_secret(),
        &link.expectation(Kind::Contingent),
        &limits,
    )
    .unwrap();
    inbound::parse::parse(verified, &limits)
        .map(|r| match r.unwrap() {
            Record::Contingent(l) => l,
            other => panic!("not a contingent line: {other:?}"),
        })
        .collect()
}

fn seat_line(perf: i64, version: u64, block: i64, row: &str, seat: u32, cat: i64) -> Line {
    Line::Seat {
        performance: id(perf),
        version,
        block: id(block),
        row: Code::new(row).unwrap(),
        seat: Code::new(&seat.to_string()).unwrap(),
        seat_category: id(cat),
    }
}

#[test]
fn allocate_seats_and_a_zone_through_the_cli_and_show_them() {
    let sb = Sandbox::new();
    sb.first_use_done();
    let a = json(
        &sb,
        &[
            "contingent",
            "allocate",
            "--link",
            LINK,
            "--performance",
            "TRAV0115",
            "--seats",
            "PARTERRE:A:1-10",
            "--seats",
            "3302:E:3",
        ],
        0,
    );
    assert_eq!(a["result"]["seats"], 11, "{a}");
    assert_eq!(a["result"]["version"], 1, "{a}");
    let z = json(
        &sb,
        &[
            "contingent",
            "allocate",
            "--link",
            LINK,
            "--performance",
            "1701",
            "--zone",
            "FOSSE",
            "--quantity",
            "20",
        ],
        0,
    );
    assert_eq!(z["result"]["version"], 2, "{z}");
    assert_eq!(z["result"]["zone"], serde_json::json!([3201, "FOSSE", 20]));

    let s = json(&sb, &["contingent", "show", "--link", LINK], 0);
    let all = s["allotments"].as_array().unwrap();
    assert_eq!(all.len(), 1, "{s}");
    let v = &all[0];
    assert_eq!(v["performance"], 1701);
    assert_eq!(
        (v["version"].as_u64(), v["exported"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(v["seats_allotted"], 11);
    assert_eq!(v["seats_held"], 0);
    assert_eq!(v["seats"][0]["block_code"], "PARTERRE");
    assert_eq!(
        (v["seats"][0]["from"].as_str(), v["seats"][0]["to"].as_str()),
        (Some("1"), Some("10"))
    );
    assert_eq!(v["zones"][0]["quantity"], 20);

    // The human view names the ranges.
    let text = sb.stxd(&["contingent", "show", "--link", LINK]);
    text.expect_code(0);
    assert!(
        text.stdout()
            .contains("PARTERRE:A:1-10  10 seat(s) allotted"),
        "{}",
        text.stdout()
    );
    assert!(
        text.stdout().contains("zone 3201 FOSSE: 20 allotted"),
        "{}",
        text.stdout()
    );

    // Each change is a run.
    let store = opera(&sb);
    let kinds: Vec<String> = store
        .read(|c| -> Result<_, StoreError> {
            let mut st = c.prepare(
                "SELECT kind, status FROM run WHERE kind LIKE 'contingent-%' ORDER BY id",
            )?;
            st.query_map([], |r| {
                Ok(format!(
                    "{} {}",
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?
                ))
            })?
            .collect::<Result<_, _>>()
            .map_err(StoreError::from)
        })
        .unwrap();
    assert_eq!(kinds, ["contingent-allocate ok", "contingent-allocate ok"]);
}

#[test]
fn a_refused_allocation_changes_nothing_and_is_logged() {
    let sb = Sandbox::new();
    sb.first_use_done();
    let r = sb.stxd(&[
        "contingent",
        "allocate",
        "--link",
        LINK,
        "--performance",
        "1701",
        "--seats",
        "PARTERRE:A:19-21",
    ]);
    r.expect_code(1);
    assert!(
        r.stdout().contains("seat PARTERRE A 21 does not exist"),
        "{}",
        r.stdout()
    );
    let store = opera(&sb);
    assert!(
        show(&store, LINK, 1701).is_none(),
        "nothing allotted, no version"
    );
    let failed: i64 = count(
        &store,
        "SELECT count(*) FROM run WHERE kind = 'contingent-allocate' AND status = 'failed'",
    );
    assert_eq!(failed, 1);
    // A planned performance, an unknown performance, bad selectors.
    sb.stxd(&[
        "contingent",
        "allocate",
        "--link",
        LINK,
        "--performance",
        "TRAV0120",
        "--seats",
        "PARTERRE:A:1",
    ])
    .expect_code(1);
    sb.stxd(&[
        "contingent",
        "allocate",
        "--link",
        LINK,
        "--performance",
        "NOPE",
        "--seats",
        "PARTERRE:A:1",
    ])
    .expect_code(1);
    sb.stxd(&[
        "contingent",
        "allocate",
        "--link",
        LINK,
        "--performance",
        "1701",
        "--seats",
        "PARTERRE:A",
    ])
    .expect_code(2);
    sb.stxd(&[
        "contingent",
        "allocate",
        "--link",
        LINK,
        "--performance",
        "1701",
        "--zone",
        "FOSSE",
    ])
    .expect_code(2);
}

#[test]
fn allocation_refuses_sold_held_and_other_links_seats_all_or_nothing() {
    let sb = Sandbox::new();
    sb.first_use_done();
    let mut store = opera(&sb);
    assert_eq!(
        allocate(&mut store, LINK, 1701, seats("PARTERRE", "A", 1, 4)).unwrap(),
        1
    );
    // Another link's allotment.
    assert_eq!(
        allocate(&mut store, "other-link", 1701, seats("PARTERRE", "B", 1, 2)).unwrap(),
        1
    );
    // A sold seat: PARTERRE C 1 (seat 50041) has a valid ticket.
    sql(
        &mut store,
        "INSERT INTO sales_order (id, link, reference, channel, point_of_sale, payment_method, contact, created)
             VALUES (1, 'other-link', 'X-1', 5001, 5101, 5201, 5301, 1796119200000000);
         INSERT INTO ticket (sales_order, link, line, performance, seat, seat_category, tariff_type,
                             audience_subcategory, amount, currency, vat_code, sold_at, state)
             VALUES (1, 'other-link', 1, 1701, 50041, 2001, 1201, 1301, 8500, 'EUR', 1101,
                     1796119200000000, 'valid');",
    );
    // A held seat: A 4 released from this link.
    assert_eq!(
        release(&mut store, LINK, 1701, seats("PARTERRE", "A", 4, 4)).unwrap(),
        2
    );

    let e = allocate(
        &mut store,
        LINK,
        1701,
        Places::Seats(vec![
            range("PARTERRE", "A", 3, 5),
            range("PARTERRE", "B", 2, 3),
            range("3301", "C", 1, 2),
        ]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("seat PARTERRE A 3 is already in this link's allotment"),
        "{e}"
    );
    assert!(
        e.contains("seat PARTERRE A 4 is held: released from link opera-tourism's allotment by version 2, it returns once that distributor acknowledges version 2"),
        "{e}"
    );
    assert!(
        e.contains("seat PARTERRE B 2 is in the allotment of link other-link"),
        "{e}"
    );
    assert!(e.contains("seat PARTERRE C 1 is sold (valid ticket"), "{e}");
    assert!(e.contains("(4 problem(s))"), "{e}");
    // All or nothing: the free seats of the request (A 5, B 3, C 2) were not taken.
    let v = show(&store, LINK, 1701).unwrap();
    assert_eq!((v.version, v.seats_allotted, v.seats_held), (2, 3, 1));
    // The other link cannot take the held seat either.
    let e = allocate(&mut store, "other-link", 1701, seats("PARTERRE", "A", 4, 4))
        .unwrap_err()
        .to_string();
    assert!(e.contains("is held"), "{e}");
    // A cancelled ticket does not make a seat sold.
    sql(
        &mut store,
        "UPDATE ticket SET state = 'cancelled', refund_line = 2, cancelled_at = 1796205600000000",
    );
    assert_eq!(
        allocate(&mut store, LINK, 1701, seats("PARTERRE", "C", 1, 1)).unwrap(),
        3
    );
    // The same seat in another performance is another seat.
    assert_eq!(
        allocate(&mut store, "other-link", 1702, seats("PARTERRE", "A", 1, 4)).unwrap(),
        1
    );
}

#[test]
fn zone_quantities_stay_within_capacity() {
    let sb = Sandbox::new();
    sb.first_use_done();
    let mut store = opera(&sb);
    allocate(&mut store, LINK, 1701, zone("FOSSE", 100)).unwrap();
    allocate(&mut store, "other-link", 1701, zone("3201", 30)).unwrap();
    let e = allocate(&mut store, LINK, 1701, zone("FOSSE", 21))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("zone FOSSE: 21 place(s) asked, 20 free (capacity 150"),
        "{e}"
    );
    // Held places count as taken until acknowledged.
    mark_exported(&mut store, 1701);
    let v = release(&mut store, LINK, 1701, zone("FOSSE", 10)).unwrap();
    assert_eq!(v, 2);
    let e = allocate(&mut store, LINK, 1701, zone("FOSSE", 21))
        .unwrap_err()
        .to_string();
    assert!(e.contains("20 free"), "{e}");
    // Releasing more than allotted is refused.
    let e = release(&mut store, LINK, 1701, zone("FOSSE", 91))
        .unwrap_err()
        .to_string();
    assert!(e.contains("expected 1 to 90"), "{e}");
    // Acknowledging the release frees the held places.
    mark_exported(&mut store, 1701);
    let a = ack(&mut store, 1701, 2).unwrap();
    assert_eq!(a.zone_places_freed, 10);
    let z = &show(&store, LINK, 1701).unwrap().zones[0];
    assert_eq!((z.quantity, z.held, z.held_until), (90, 0, None));
    assert_eq!(
        allocate(&mut store, LINK, 1701, zone("FOSSE", 30)).unwrap(),
        3
    );
    let e = allocate(&mut store, LINK, 1701, zone("FOSSE", 1))
        .unwrap_err()
        .to_string();
    assert!(e.contains("0 free"), "{e}");
    // Not a zone of the performance's configuration.
    let e = allocate(&mut store, LINK, 1701, zone("PARTERRE", 1))
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a zone of configuration 3101"), "{e}");
}

#[test]
fn a_released_seat_is_held_until_its_version_is_acknowledged() {
    let sb = Sandbox::new();
    sb.first_use_done();
    let mut store = opera(&sb);
    assert_eq!(
        allocate(&mut store, LINK, 1701, seats("PARTERRE", "A", 1, 5)).unwrap(),
        1
    );
    // Releasing a seat that is not this link's is refused.
    let e = release(&mut store, LINK, 1701, seats("PARTERRE", "A", 5, 6))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("seat PARTERRE A 6 is not allotted to this link"),
        "{e}"
    );
    assert_eq!(
        release(&mut store, LINK, 1701, seats("PARTERRE", "A", 4, 5)).unwrap(),
        2
    );
    assert_eq!(
        release(&mut store, LINK, 1701, seats("PARTERRE", "A", 3, 3)).unwrap(),
        3
    );
    let e = release(&mut store, LINK, 1701, seats("PARTERRE", "A", 3, 3))
        .unwrap_err()
        .to_string();
    assert!(e.contains("already released (held until version 3"), "{e}");
    let v = show(&store, LINK, 1701).unwrap();
    assert_eq!((v.seats_allotted, v.seats_held), (2, 3));
    let held: Vec<_> = v
        .seats
        .iter()
        .filter(|s| s.state == "held")
        .map(|s| (s.from.clone(), s.to.clone(), s.released_in))
        .collect();
    assert_eq!(
        held,
        [
            ("3".into(), "3".into(), Some(3)),
            ("4".into(), "5".into(), Some(2))
        ]
    );

    // An ACK of a version never exported is refused.
    let e = ack(&mut store, 1701, 1).unwrap_err().to_string();
    assert!(
        e.contains("version 1 was never exported (last exported: 0)"),
        "{e}"
    );
    mark_exported(&mut store, 1701);
    let e = ack(&mut store, 1701, 4).unwrap_err().to_string();
    assert!(e.contains("never exported (last exported: 3)"), "{e}");
    let e = store
        .write(|tx| contingent::acknowledge(tx, LINK, id(1702), 1))
        .unwrap_err()
        .to_string();
    assert!(e.contains("no allotment"), "{e}");

    // Below the release version: still held, still not re-allottable.
    let a = ack(&mut store, 1701, 1).unwrap();
    assert_eq!((a.acknowledged, a.seats_freed, a.already), (1, 0, false));
    assert!(allocate(&mut store, "other-link", 1701, seats("PARTERRE", "A", 4, 4)).is_err());
    // At version 2: A 4-5 return to the manager; A 3 (version 3) stays held.
    let a = ack(&mut store, 1701, 2).unwrap();
    assert_eq!((a.acknowledged, a.seats_freed), (2, 2));
    let v = show(&store, LINK, 1701).unwrap();
    assert_eq!((v.acknowledged, v.seats_allotted, v.seats_held), (2, 2, 1));
    assert_eq!(
        allocate(&mut store, "other-link", 1701, seats("PARTERRE", "A", 4, 5)).unwrap(),
        1
    );
    assert!(allocate(&mut store, "other-link", 1701, seats("PARTERRE", "A", 3, 3)).is_err());
    // A late, older ACK changes nothing; a newer one frees the rest.
    let a = ack(&mut store, 1701, 1).unwrap();
    assert_eq!((a.acknowledged, a.seats_freed, a.already), (2, 0, true));
    let a = ack(&mut store, 1701, 3).unwrap();
    assert_eq!((a.acknowledged, a.seats_freed), (3, 1));
    assert_eq!(show(&store, LINK, 1701).unwrap().seats_held, 0);
    // Back with the manager, the seat can be allotted again (to this link too).
    assert_eq!(
        allocate(&mut store, LINK, 1701, seats("PARTERRE", "A", 3, 3)).unwrap(),
        4
    );
}

#[test]
fn export_contingent_of_one_performance_and_of_all() {
    let sb = Sandbox::new();
    sb.first_use_done();
    // Nothing allotted: nothing to export, no sequence used.
    let r = json(&sb, &["export", "contingent", "--link", LINK], 1);
    assert_eq!(r["code"], "no-allotment", "{r}");
    assert!(
        r["reason"]
            .as_str()
            .unwrap()
            .contains("no allotment on any performance"),
        "{r}"
    );
    let r = json(
        &sb,
        &[
            "export",
            "contingent",
            "--link",
            LINK,
            "--performance",
            "TRAV0117",
        ],
        1,
    );
    assert_eq!(r["code"], "no-allotment", "{r}");
    let r = json(
        &sb,
        &[
            "export",
            "contingent",
            "--link",
            LINK,
            "--performance",
            "NOPE",
        ],
        1,
    );
    assert_eq!(r["code"], "unknown-performance", "{r}");

    let mut store = opera(&sb);
    allocate(&mut store, LINK, 1701, seats("BALCON", "E", 2, 3)).unwrap();
    allocate(&mut store, LINK, 1701, seats("PARTERRE", "A", 1, 2)).unwrap();
    allocate(&mut store, LINK, 1701, zone("FOSSE", 20)).unwrap();
    release(&mut store, LINK, 1701, seats("PARTERRE", "A", 2, 2)).unwrap();
    allocate(&mut store, LINK, 1702, seats("PARTERRE", "L", 20, 20)).unwrap();
    // Another link's allotment is not in this link's file.
    allocate(&mut store, "other-link", 1704, seats("PARTERRE", "A", 1, 1)).unwrap();
    drop(store);

    // One performance ("from the seat plan").
    let one = json(
        &sb,
        &[
            "export",
            "contingent",
            "--link",
            LINK,
            "--performance",
            "TRAV0115",
        ],
        0,
    );
    assert_eq!(one["sequence"], 1, "{one}");
    assert_eq!(one["records"], 5, "{one}");
    let lines = reread(&sb, &sb.path().join(one["manifest"].as_str().unwrap()));
    let perf = |p: i64, version: u64| Line::Performance {
        performance: id(p),
        version,
    };
    let expected = vec![
        perf(1701, 4),
        seat_line(1701, 4, 3301, "A", 1, 2001),
        seat_line(1701, 4, 3302, "E", 2, 2003),
        seat_line(1701, 4, 3302, "E", 3, 2003),
        Line::Zone {
            performance: id(1701),
            version: 4,
            zone: id(3201),
            quantity: 20,
            seat_category: id(2004),
        },
    ];
    assert_eq!(lines, expected);
    let store = opera(&sb);
    assert_eq!(show(&store, LINK, 1701).unwrap().exported, 4);
    assert_eq!(show(&store, LINK, 1702).unwrap().exported, 0);
    drop(store);

    // All the link's performances ("from Tools / external sales").
    let all = json(&sb, &["export", "contingent", "--link", LINK], 0);
    assert_eq!(all["sequence"], 2, "{all}");
    assert_eq!(all["records_by_type"]["performances"], 2, "{all}");
    let lines = reread(&sb, &sb.path().join(all["manifest"].as_str().unwrap()));
    let mut expected_all = expected.clone();
    expected_all.push(perf(1702, 1));
    expected_all.push(seat_line(1702, 1, 3301, "L", 20, 2003));
    assert_eq!(lines, expected_all);

    // Versions bump on every change; the export records what it sent.
    let mut store = opera(&sb);
    assert_eq!(show(&store, LINK, 1702).unwrap().exported, 1);
    assert_eq!(
        release(&mut store, LINK, 1702, seats("PARTERRE", "L", 20, 20)).unwrap(),
        2
    );
    let v = show(&store, LINK, 1702).unwrap();
    assert_eq!((v.version, v.exported), (2, 1));
    drop(store);
    // Everything taken back: an empty snapshot, still with its version.
    let again = json(
        &sb,
        &[
            "export",
            "contingent",
            "--link",
            LINK,
            "--performance",
            "1702",
        ],
        0,
    );
    assert_eq!(again["sequence"], 3);
    let lines = reread(&sb, &sb.path().join(again["manifest"].as_str().unwrap()));
    assert_eq!(lines, [perf(1702, 2)]);
    let mut store = opera(&sb);
    // Acknowledging it frees the seat for the manager.
    let a = ack(&mut store, 1702, 2).unwrap();
    assert_eq!(a.seats_freed, 1);
    assert!(show(&store, LINK, 1702).unwrap().seats.is_empty());

    // The default export kind dispatch exports every performance too.
    let runs: i64 = count(
        &store,
        "SELECT count(*) FROM run WHERE kind = 'export-contingent' AND status = 'ok'",
    );
    assert_eq!(runs, 3);
}
