//! Seat plan changes a manager makes to a venue (rows renumbered, seats
//! swapped, moved, removed, a row replaced by a new id), loaded at the
//! manager and applied at the distributor, with allotments and tickets still on the same physical
//! seats; and seat plans the schema could not hold (duplicate ids, two
//! seats with one number, a removed seat still held) refused as content,
//! with their code and position, never retried as a store error.

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use stxd::domain::DomainError;
use stxd::format::{Kind, Limits, seatplan};
use stxd::ident::{Code, TechId};

use crate::import::{applied, distributor, import_seatplan, map_seat_categories, seatplan_items};
use crate::util::{Sandbox, seal};

fn db(sb: &Sandbox, code: &str) -> Connection {
    Connection::open(sb.path().join(format!("var/state/{code}.sqlite"))).expect("open store")
}

fn one(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn text(conn: &Connection, sql: &str) -> String {
    conn.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The distributor's local seat mapped to the manager's seat `id`.
fn local_seat(conn: &Connection, id: i64) -> i64 {
    one(
        conn,
        &format!(
            "SELECT local_id FROM mapping WHERE manager = 'OPERA' AND kind = 'seat' AND manager_id = {id}"
        ),
    )
}

/// "ROW NUMBER" of a local seat.
fn label(conn: &Connection, seat: i64) -> String {
    text(
        conn,
        &format!(
            "SELECT r.code || ' ' || s.number FROM seat s JOIN seat_row r ON r.id = s.row WHERE s.id = {seat}"
        ),
    )
}

/// The records of a seat plan payload, as its manifest counts them.
fn count(xml: &str) -> u64 {
    seatplan::Reader::new(xml.as_bytes(), "seatplan.xml", Limits::default()).count() as u64
}

fn to_distributor(sb: &Sandbox) -> PathBuf {
    sb.path().join("var/exchange/opera-tourism/to-distributor")
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// First use done, seats 1 to 4 of PARTERRE A allotted to 1701 and applied
/// at the distributor, seat A1 sold there.
fn allotted_and_sold(sb: &Sandbox) {
    sb.first_use_done();
    crate::drop_folders::manager_ready(sb);
    sb.stxd(&["export", "contingent", "--link", "opera-tourism"])
        .expect_code(0);
    sb.stxd(&["process"]).expect_code(0);
    sb.stxd(&[
        "sale",
        "sell",
        "--performance",
        "TRAV0115",
        "--seat",
        "PARTERRE:A:1",
        "--tariff",
        "NORMAL",
        "--audience",
        "ADULT",
    ])
    .expect_code(0);
}

/// The distributor's allotted seats, in id order.
fn allotted(c: &Connection) -> Vec<i64> {
    let mut st = c
        .prepare("SELECT seat FROM contingent_seat ORDER BY seat")
        .unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The venue changes at the manager, loaded as ops load master data: rows A
/// and B of PARTERRE swap their labels, and seats 1 and 2 of (the former)
/// row A swap their numbers, in one seat plan file.
fn load_swapped_venue(sb: &Sandbox) {
    let changed = sb.path().join("seatplan-changed.xml");
    std::fs::write(
        &changed,
        std::fs::read_to_string(sb.path().join("samples/opera/seatplan.xml"))
            .unwrap()
            .replace(
                "<row id=\"4001\" code=\"A\">",
                "<row id=\"4001\" code=\"B\">",
            )
            .replace(
                "<row id=\"4002\" code=\"B\">",
                "<row id=\"4002\" code=\"A\">",
            )
            .replace(
                "<seat id=\"50001\" number=\"1\"",
                "<seat id=\"50001\" number=\"2\"",
            )
            .replace(
                "<seat id=\"50002\" number=\"2\"",
                "<seat id=\"50002\" number=\"1\"",
            ),
    )
    .unwrap();
    sb.stxd(&["load", "OPERA", "seatplan-changed.xml"])
        .expect_code(0);
    let opera = db(sb, "OPERA");
    assert_eq!(
        text(&opera, "SELECT code FROM seat_row WHERE id = 4001"),
        "B"
    );
    assert_eq!(
        text(&opera, "SELECT number FROM seat WHERE id = 50001"),
        "2"
    );
}

#[test]
fn renumbered_rows_and_swapped_seats_apply_and_keep_allotments_and_tickets_on_their_seats() {
    let sb = Sandbox::new();
    allotted_and_sold(&sb);

    let tourism = db(&sb, "TOURISM");
    let seat1 = local_seat(&tourism, 50001);
    let seat2 = local_seat(&tourism, 50002);
    assert_eq!(label(&tourism, seat1), "A 1");
    assert_eq!(
        one(&tourism, "SELECT seat FROM sale_line WHERE active = 1"),
        seat1
    );
    let before = allotted(&tourism);
    assert_eq!(before.len(), 4, "{before:?}");
    let rows_before = one(&tourism, "SELECT count(*) FROM seat_row");

    load_swapped_venue(&sb);
    sb.stxd(&["export", "seatplan", "--link", "opera-tourism"])
        .expect_code(0);
    let run = sb.stxd(&["process"]);
    run.expect_code(0);

    assert!(
        names(&to_distributor(&sb).join("error")).is_empty(),
        "{}",
        run.stderr()
    );
    assert_eq!(
        text(
            &tourism,
            "SELECT state FROM file_journal WHERE kind = 'SEATPLAN' AND sequence = 2"
        ),
        "applied"
    );
    // Same physical seats, same local ids, new labels.
    assert_eq!(local_seat(&tourism, 50001), seat1);
    assert_eq!(local_seat(&tourism, 50002), seat2);
    assert_eq!(label(&tourism, seat1), "B 2");
    assert_eq!(label(&tourism, seat2), "B 1");
    assert_eq!(
        one(&tourism, "SELECT seat FROM sale_line WHERE active = 1"),
        seat1,
        "the ticket is still on the seat it sold"
    );
    assert_eq!(allotted(&tourism), before, "the allotment did not move");
    assert_eq!(
        one(&tourism, "SELECT count(*) FROM seat_row"),
        rows_before,
        "rows relabelled, none created or removed"
    );
    assert_eq!(
        one(
            &tourism,
            "SELECT count(*) FROM seat WHERE number GLOB '[~#]*'"
        ) + one(
            &tourism,
            "SELECT count(*) FROM seat_row WHERE code GLOB '[~#]*'"
        ),
        0,
        "no temporary label left"
    );
}

fn id(n: i64) -> TechId {
    TechId::new(n).unwrap()
}

fn code(s: &str) -> Code {
    Code::new(s).unwrap()
}

/// A distributor store with the sample seat plan applied; its items.
fn applied_plan(dir: &Path) -> (stxd::store::Store, Vec<seatplan::Item>) {
    let mut s = distributor(dir);
    map_seat_categories(&mut s);
    let items = seatplan_items();
    applied(import_seatplan(&mut s, &items).unwrap().0);
    (s, items)
}

fn conn(dir: &Path) -> Connection {
    Connection::open(dir.join("tourism.sqlite")).unwrap()
}

/// The refusal of a content error: its code and text (never a store error).
fn refusal(e: DomainError) -> (&'static str, String) {
    match &e {
        DomainError::Content(f) => (f.code, e.to_string()),
        other => panic!("expected a content refusal, got {other:?}: {other}"),
    }
}

#[test]
fn a_row_given_a_new_id_with_the_same_code_takes_over_its_seats() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, items) = applied_plan(dir.path());
    let c = conn(dir.path());
    let seat = local_seat(&c, 50001);
    let old_row = one(&c, &format!("SELECT row FROM seat WHERE id = {seat}"));
    let changed: Vec<seatplan::Item> = items
        .into_iter()
        .map(|item| match item {
            seatplan::Item::Row(mut r) if r.id == id(4001) => {
                r.id = id(4999);
                seatplan::Item::Row(r)
            }
            seatplan::Item::Seat(mut x) if x.row == id(4001) => {
                x.row = id(4999);
                seatplan::Item::Seat(x)
            }
            other => other,
        })
        .collect();
    applied(import_seatplan(&mut s, &changed).unwrap().0);
    assert_eq!(local_seat(&c, 50001), seat, "the seat keeps its local id");
    assert_eq!(label(&c, seat), "A 1");
    let new_row = one(&c, &format!("SELECT row FROM seat WHERE id = {seat}"));
    assert_ne!(new_row, old_row);
    assert_eq!(
        one(
            &c,
            &format!("SELECT count(*) FROM seat_row WHERE id = {old_row}")
        ),
        0,
        "the emptied row is removed"
    );
    assert_eq!(
        one(
            &c,
            "SELECT count(*) FROM mapping WHERE kind = 'row' AND manager_id = 4001"
        ),
        0
    );
}

#[test]
fn a_moved_seat_and_a_removed_seat_apply_when_nothing_holds_them() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, items) = applied_plan(dir.path());
    let c = conn(dir.path());
    let moved = local_seat(&c, 50001);
    let removed = local_seat(&c, 50003);
    let seats = one(&c, "SELECT count(*) FROM seat");
    // Seat 50001 moves to row B (4002) as seat 1 and seat 50021 (B 1) goes.
    let b1 = one(
        &c,
        "SELECT manager_id FROM mapping WHERE kind = 'seat' AND manager_label = 'PARTERRE B 1'",
    );
    let changed: Vec<seatplan::Item> = items
        .into_iter()
        .filter(
            |item| !matches!(item, seatplan::Item::Seat(x) if x.id == id(50003) || x.id == id(b1)),
        )
        .map(|item| match item {
            seatplan::Item::Seat(mut x) if x.id == id(50001) => {
                x.row = id(4002);
                seatplan::Item::Seat(x)
            }
            other => other,
        })
        .collect();
    // The moved seat must follow its new row in document order.
    let mut changed: Vec<seatplan::Item> = changed
        .into_iter()
        .filter(|i| !matches!(i, seatplan::Item::Seat(x) if x.id == id(50001)))
        .collect();
    let at = changed
        .iter()
        .position(|i| matches!(i, seatplan::Item::Row(r) if r.id == id(4002)))
        .unwrap();
    changed.insert(
        at + 1,
        seatplan::Item::Seat(seatplan::Seat {
            id: id(50001),
            row: id(4002),
            number: code("1"),
            seat_category: id(2001),
        }),
    );
    applied(import_seatplan(&mut s, &changed).unwrap().0);
    assert_eq!(local_seat(&c, 50001), moved);
    assert_eq!(label(&c, moved), "B 1");
    // Its mapping row keeps its local seat and takes the file's label.
    assert_eq!(
        text(
            &c,
            "SELECT manager_label || ' ' || local_id || ' ' || status FROM mapping
             WHERE kind = 'seat' AND manager_id = 50001"
        ),
        format!("PARTERRE B 1 {moved} filled")
    );
    assert_eq!(
        one(
            &c,
            &format!("SELECT count(*) FROM seat WHERE id = {removed}")
        ),
        0
    );
    assert_eq!(one(&c, "SELECT count(*) FROM seat"), seats - 2);
}

/// A file that creates a configuration but moves blocks the store already
/// has into it is not a first seat plan: the seats of those blocks it no
/// longer names are removed, as in any configuration it names.
#[test]
fn a_new_configuration_given_the_stores_blocks_loses_the_seats_the_file_no_longer_has() {
    new_configuration_loses_the_seats_the_file_no_longer_has(false);
}

/// The same with new blocks too: the rows they take are the store's.
#[test]
fn new_blocks_given_the_stores_rows_lose_the_seats_the_file_no_longer_has() {
    new_configuration_loses_the_seats_the_file_no_longer_has(true);
}

/// The sample seat plan applied, then again under a new configuration id
/// (and new block ids if `new_blocks`), without seat 50003.
fn new_configuration_loses_the_seats_the_file_no_longer_has(new_blocks: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, items) = applied_plan(dir.path());
    let c = conn(dir.path());
    let kept = local_seat(&c, 50001);
    let removed = local_seat(&c, 50003);
    let seats = one(&c, "SELECT count(*) FROM seat");
    let changed: Vec<seatplan::Item> = items
        .into_iter()
        .filter(|item| !matches!(item, seatplan::Item::Seat(x) if x.id == id(50003)))
        .map(|item| match item {
            seatplan::Item::Configuration(mut x) => {
                x.id = id(3199);
                x.code = code("NEW");
                seatplan::Item::Configuration(x)
            }
            seatplan::Item::Zone(mut x) => {
                x.configuration = id(3199);
                seatplan::Item::Zone(x)
            }
            seatplan::Item::Block(mut x) => {
                x.configuration = id(3199);
                if new_blocks {
                    x.id = id(x.id.get() + 90);
                }
                seatplan::Item::Block(x)
            }
            seatplan::Item::Row(mut x) if new_blocks => {
                x.block = id(x.block.get() + 90);
                seatplan::Item::Row(x)
            }
            other => other,
        })
        .collect();
    applied(import_seatplan(&mut s, &changed).unwrap().0);
    let new_configuration = one(
        &c,
        "SELECT local_id FROM mapping WHERE kind = 'configuration' AND manager_id = 3199",
    );
    assert_eq!(
        one(
            &c,
            &format!(
                "SELECT b.configuration FROM seat s JOIN seat_row r ON r.id = s.row
                 JOIN block b ON b.id = r.block WHERE s.id = {kept}"
            )
        ),
        new_configuration,
        "the block moved with its seats"
    );
    assert_eq!(
        one(
            &c,
            &format!("SELECT count(*) FROM seat WHERE id = {removed}")
        ),
        0,
        "the seat the file no longer has is removed"
    );
    assert_eq!(one(&c, "SELECT count(*) FROM seat"), seats - 1);
}

#[test]
fn a_duplicate_row_id_is_refused_with_both_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = distributor(dir.path());
    map_seat_categories(&mut s);
    let items: Vec<seatplan::Item> = seatplan_items()
        .into_iter()
        .map(|item| match item {
            seatplan::Item::Row(mut r) if r.id == id(4002) => {
                r.id = id(4001);
                seatplan::Item::Row(r)
            }
            seatplan::Item::Seat(mut x) if x.row == id(4002) => {
                x.row = id(4001);
                seatplan::Item::Seat(x)
            }
            other => other,
        })
        .collect();
    let first = 1 + items
        .iter()
        .position(|i| matches!(i, seatplan::Item::Row(r) if r.id == id(4001)))
        .unwrap();
    let second = 1 + items
        .iter()
        .position(|i| matches!(i, seatplan::Item::Row(r) if r.code.as_str() == "B"))
        .unwrap();
    let (code, text) = refusal(import_seatplan(&mut s, &items).unwrap_err());
    assert_eq!(code, "duplicate-id", "{text}");
    assert!(
        text.contains(&format!(
            "row 4001 appears at record {first} and at record {second} (row PARTERRE B, id 4001)"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("record {second} (row PARTERRE B, id 4001): ")),
        "the position: {text}"
    );
    assert_eq!(
        one(&conn(dir.path()), "SELECT count(*) FROM seat"),
        0,
        "nothing applied"
    );
}

#[test]
fn two_seats_with_one_number_in_a_row_are_refused_with_both_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = distributor(dir.path());
    map_seat_categories(&mut s);
    let items: Vec<seatplan::Item> = seatplan_items()
        .into_iter()
        .map(|item| match item {
            seatplan::Item::Seat(mut x) if x.id == id(50002) => {
                x.number = code("1");
                seatplan::Item::Seat(x)
            }
            other => other,
        })
        .collect();
    let at = |n: i64| {
        1 + items
            .iter()
            .position(|i| matches!(i, seatplan::Item::Seat(x) if x.id == id(n)))
            .unwrap()
    };
    let (code, text) = refusal(import_seatplan(&mut s, &items).unwrap_err());
    assert_eq!(code, "duplicate-number", "{text}");
    assert!(
        text.contains(&format!(
            "record {} (seat PARTERRE A 1, id 50002)",
            at(50002)
        )) && text.contains(&format!(
            "seat 50001 at record {} already has this number",
            at(50001)
        )),
        "{text}"
    );
    assert_eq!(one(&conn(dir.path()), "SELECT count(*) FROM seat"), 0);
}

#[test]
fn two_new_rows_with_one_code_in_a_block_are_refused_with_both_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = distributor(dir.path());
    map_seat_categories(&mut s);
    let items: Vec<seatplan::Item> = seatplan_items()
        .into_iter()
        .map(|item| match item {
            seatplan::Item::Row(mut r) if r.id == id(4002) => {
                r.code = code("A");
                seatplan::Item::Row(r)
            }
            other => other,
        })
        .collect();
    let at = |n: i64| {
        1 + items
            .iter()
            .position(|i| matches!(i, seatplan::Item::Row(r) if r.id == id(n)))
            .unwrap()
    };
    let (code, text) = refusal(import_seatplan(&mut s, &items).unwrap_err());
    assert_eq!(code, "duplicate-code", "{text}");
    assert!(
        text.contains(&format!("record {} (row PARTERRE A, id 4002)", at(4002)))
            && text.contains(&format!(
                "row 4001 at record {} already has this code",
                at(4001)
            )),
        "{text}"
    );
    assert_eq!(one(&conn(dir.path()), "SELECT count(*) FROM seat_row"), 0);
}

/// A later seat plan that adds a seat to a row, and a row with a seat to a
/// block, while it removes another seat: the objects it creates are never
/// taken for absent ones (the removals' search leaves out what the file
/// created), the absent one goes.
#[test]
fn rows_and_seats_a_later_seat_plan_adds_stay_beside_its_removals() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, items) = applied_plan(dir.path());
    let c = conn(dir.path());
    let (seats, rows) = (
        one(&c, "SELECT count(*) FROM seat"),
        one(&c, "SELECT count(*) FROM seat_row"),
    );
    let removed = local_seat(&c, 50003);
    let mut changed: Vec<seatplan::Item> = items
        .into_iter()
        .filter(|i| !matches!(i, seatplan::Item::Seat(x) if x.id == id(50003)))
        .collect();
    // Seat A 99 at the end of row A, then row ZZ with seat ZZ 1 in the
    // same block, before row B.
    let after_a = changed
        .iter()
        .position(|i| matches!(i, seatplan::Item::Row(r) if r.id == id(4002)))
        .unwrap();
    changed.insert(
        after_a,
        seatplan::Item::Seat(seatplan::Seat {
            id: id(59001),
            row: id(4001),
            number: code("99"),
            seat_category: id(2001),
        }),
    );
    let block = changed
        .iter()
        .find_map(|i| match i {
            seatplan::Item::Row(r) if r.id == id(4001) => Some(r.block),
            _ => None,
        })
        .unwrap();
    changed.splice(
        after_a + 1..after_a + 1,
        [
            seatplan::Item::Row(seatplan::Row {
                id: id(4998),
                block,
                code: code("ZZ"),
            }),
            seatplan::Item::Seat(seatplan::Seat {
                id: id(59002),
                row: id(4998),
                number: code("1"),
                seat_category: id(2001),
            }),
        ],
    );
    applied(import_seatplan(&mut s, &changed).unwrap().0);
    assert_eq!(label(&c, local_seat(&c, 59001)), "A 99");
    assert_eq!(label(&c, local_seat(&c, 59002)), "ZZ 1");
    assert_eq!(
        one(
            &c,
            &format!("SELECT count(*) FROM seat WHERE id = {removed}")
        ),
        0,
        "the seat the file no longer has is removed"
    );
    assert_eq!(one(&c, "SELECT count(*) FROM seat"), seats + 1);
    assert_eq!(one(&c, "SELECT count(*) FROM seat_row"), rows + 1);
    // Applied again unchanged, it changes nothing.
    applied(import_seatplan(&mut s, &changed).unwrap().0);
    assert_eq!(one(&c, "SELECT count(*) FROM seat"), seats + 1);
    assert_eq!(one(&c, "SELECT count(*) FROM seat_row"), rows + 1);
}

#[test]
fn ids_at_the_documented_maximum_apply_and_apply_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = distributor(dir.path());
    map_seat_categories(&mut s);
    const MAX: i64 = 999_999_999_999_999_999;
    let items: Vec<seatplan::Item> = seatplan_items()
        .into_iter()
        .map(|item| match item {
            seatplan::Item::Seat(mut x) if x.id == id(50001) => {
                x.id = id(MAX);
                x.row = id(MAX);
                seatplan::Item::Seat(x)
            }
            seatplan::Item::Row(mut r) if r.id == id(4001) => {
                r.id = id(MAX);
                seatplan::Item::Row(r)
            }
            seatplan::Item::Seat(mut x) if x.row == id(4001) => {
                x.row = id(MAX);
                seatplan::Item::Seat(x)
            }
            other => other,
        })
        .collect();
    applied(import_seatplan(&mut s, &items).unwrap().0);
    let c = conn(dir.path());
    let seat = local_seat(&c, MAX);
    assert_eq!(label(&c, seat), "A 1");
    // The same plan again, then with the seat's number changed.
    applied(import_seatplan(&mut s, &items).unwrap().0);
    let renumbered: Vec<seatplan::Item> = items
        .into_iter()
        .map(|item| match item {
            seatplan::Item::Seat(mut x) if x.id == id(MAX) => {
                x.number = code("1bis");
                seatplan::Item::Seat(x)
            }
            other => other,
        })
        .collect();
    applied(import_seatplan(&mut s, &renumbered).unwrap().0);
    assert_eq!(local_seat(&c, MAX), seat);
    assert_eq!(label(&c, seat), "A 1bis");
}

#[test]
fn a_removed_seat_still_allotted_is_refused_naming_it_and_a_bad_plan_goes_to_error() {
    let sb = Sandbox::new();
    sb.first_use_done();
    crate::drop_folders::manager_ready(&sb);
    sb.stxd(&["export", "contingent", "--link", "opera-tourism"])
        .expect_code(0);
    sb.stxd(&["process"]).expect_code(0);
    let tourism = db(&sb, "TOURISM");
    let seats = one(&tourism, "SELECT count(*) FROM seat");

    // Seat plan 2 without seat 50003 (PARTERRE A 3, allotted to 1701).
    let manifest = seal_plan_without(&sb, 2, &[50003]);
    sb.stxd(&["process"]);
    let reason = std::fs::read_to_string(
        to_distributor(&sb)
            .join("error")
            .join(format!("{manifest}.reason")),
    )
    .expect("the refused plan is in error/ with its reason");
    assert!(reason.contains("code: seat-held"), "{reason}");
    assert!(
        reason.contains("seat 50003") && reason.contains("PARTERRE A 3"),
        "{reason}"
    );
    assert!(
        reason.contains("the contingent of performance TRAV0115"),
        "{reason}"
    );
    assert!(reason.contains("position: whole file"), "{reason}");
    assert_eq!(one(&tourism, "SELECT count(*) FROM seat"), seats);

    // Seat plan 2 again, fixed but repeating seat 50004: refused as content.
    let xml =
        std::fs::read_to_string(crate::util::repo().join("samples/opera/seatplan.xml")).unwrap();
    let repeated = xml.replace(
        "<seat id=\"50005\" number=\"5\"",
        "<seat id=\"50004\" number=\"5\"",
    );
    let m = seal(
        &to_distributor(&sb),
        &sb.demo_secret(),
        Kind::Seatplan,
        2,
        repeated.as_bytes(),
        count(&repeated),
    );
    assert!(m.manifest_name().contains("SEATPLAN.00000002"));
    sb.stxd(&["process"]);
    let error = to_distributor(&sb).join("error");
    let reason = names(&error)
        .into_iter()
        .filter(|n| n.ends_with(".reason"))
        .map(|n| std::fs::read_to_string(error.join(n)).unwrap())
        .find(|r| r.contains("code: duplicate-id"))
        .unwrap_or_else(|| panic!("no duplicate-id reason in {:?}", names(&error)));
    assert!(
        reason.contains("seat 50004 appears at record") && reason.contains("position: record "),
        "{reason}"
    );
}

#[test]
fn seats_of_a_category_ignored_later_are_kept_not_removed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut s, items) = applied_plan(dir.path());
    let c = conn(dir.path());
    let seats = one(&c, "SELECT count(*) FROM seat");
    let of_2003 = one(
        &c,
        "SELECT count(*) FROM seat WHERE seat_category =
             (SELECT local_id FROM mapping WHERE kind = 'seat_category' AND manager_id = 2003)",
    );
    assert!(of_2003 > 0);
    c.execute(
        "UPDATE mapping SET status = 'ignored', local_id = NULL
         WHERE kind = 'seat_category' AND manager_id = 2003",
        [],
    )
    .unwrap();
    let summary = applied(import_seatplan(&mut s, &items).unwrap().0);
    assert_eq!(summary.skipped, of_2003 as u64);
    assert_eq!(one(&c, "SELECT count(*) FROM seat"), seats);
}

#[test]
fn a_master_seat_plan_giving_one_number_to_two_seats_is_refused_and_loads_nothing() {
    let sb = Sandbox::new();
    sb.ready();
    let bad = sb.path().join("seatplan-bad.xml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(sb.path().join("samples/opera/seatplan.xml"))
            .unwrap()
            .replace(
                "<seat id=\"50002\" number=\"2\"",
                "<seat id=\"50002\" number=\"1\"",
            ),
    )
    .unwrap();
    let run = sb.stxd(&["load", "OPERA", "seatplan-bad.xml"]);
    assert_ne!(run.code(), 0);
    let out = format!("{}{}", run.stdout(), run.stderr());
    assert!(
        out.contains("seat 50001")
            && out.contains("its number 1 in row 4001 goes to seat 50002 in this file"),
        "{out}"
    );
    let opera = db(&sb, "OPERA");
    assert_eq!(
        text(&opera, "SELECT number FROM seat WHERE id = 50001"),
        "1"
    );
    assert_eq!(
        text(&opera, "SELECT number FROM seat WHERE id = 50002"),
        "2"
    );
}

/// The sample seat plan without the seats whose ids are listed, sealed as
/// SEATPLAN `sequence` into the distributor's inbox; its manifest's name.
fn seal_plan_without(sb: &Sandbox, sequence: u64, seats: &[i64]) -> String {
    let xml =
        std::fs::read_to_string(crate::util::repo().join("samples/opera/seatplan.xml")).unwrap();
    let kept: String = xml
        .lines()
        .filter(|l| !seats.iter().any(|s| l.contains(&format!("id=\"{s}\""))))
        .map(|l| format!("{l}\n"))
        .collect();
    seal(
        &to_distributor(sb),
        &sb.demo_secret(),
        Kind::Seatplan,
        sequence,
        kept.as_bytes(),
        count(&kept),
    )
    .manifest_name()
}

#[test]
fn a_removed_seat_only_history_refers_to_is_kept_under_a_retired_label_and_a_free_one_is_deleted() {
    let sb = Sandbox::new();
    allotted_and_sold(&sb);
    // A1 refunded, then taken back by the manager: no longer in the
    // distributor's contingent.
    sb.stxd(&["sale", "refund", "1"]).expect_code(0);
    sb.stxd(&[
        "contingent",
        "release",
        "--link",
        "opera-tourism",
        "--performance",
        "1701",
        "--seats",
        "3301:A:1",
    ])
    .expect_code(0);
    sb.stxd(&["export", "contingent", "--link", "opera-tourism"])
        .expect_code(0);
    sb.stxd(&["process"]).expect_code(0);
    let tourism = db(&sb, "TOURISM");
    let a1 = local_seat(&tourism, 50001);
    let a10 = local_seat(&tourism, 50010);
    assert!(!allotted(&tourism).contains(&a1));
    let seats = one(&tourism, "SELECT count(*) FROM seat");

    // While the refund is not sent to the manager, the seat is held: a line
    // names its seat by its labels.
    let manifest = seal_plan_without(&sb, 2, &[50001, 50010]);
    sb.stxd(&["process"]);
    let reason = std::fs::read_to_string(
        to_distributor(&sb)
            .join("error")
            .join(format!("{manifest}.reason")),
    )
    .unwrap();
    assert!(
        reason.contains("code: seat-held") && reason.contains("(not sent to the manager yet)"),
        "{reason}"
    );
    sb.stxd(&["export", "sales", "--link", "opera-tourism"])
        .expect_code(0);
    seal_plan_without(&sb, 2, &[50001, 50010]);
    sb.stxd(&["process"]).expect_code(0);
    assert_eq!(
        text(
            &tourism,
            "SELECT state FROM file_journal WHERE kind = 'SEATPLAN' AND sequence = 2"
        ),
        "applied"
    );
    // A1: its refunded sale still names it, so it stays, out of the way.
    assert!(
        label(&tourism, a1).starts_with("A #"),
        "{}",
        label(&tourism, a1)
    );
    assert_eq!(
        one(
            &tourism,
            "SELECT count(*) FROM sale_line WHERE seat = (SELECT seat FROM sale_line WHERE id = 1)"
        ),
        2,
        "the sale and its refund still name the seat"
    );
    // A10: nothing refers to it: deleted with its mapping row.
    assert_eq!(
        one(
            &tourism,
            &format!("SELECT count(*) FROM seat WHERE id = {a10}")
        ),
        0
    );
    assert_eq!(
        one(
            &tourism,
            "SELECT count(*) FROM mapping WHERE kind = 'seat' AND manager_id = 50010"
        ),
        0
    );
    assert_eq!(one(&tourism, "SELECT count(*) FROM seat"), seats - 1);
}

/// A seat whose seat category is ignored keeps its local seat and category,
/// but takes the number the manager now gives it, so the number it leaves
/// is free for another seat of the file, read before it or after it.
#[test]
fn a_seat_of_an_ignored_category_renumbered_frees_its_number_for_another() {
    for new_seat_first in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, items) = applied_plan(dir.path());
        let c = conn(dir.path());
        c.execute(
            "UPDATE mapping SET status = 'ignored', local_id = NULL
             WHERE kind = 'seat_category' AND manager_id = 2003",
            [],
        )
        .unwrap();
        let old = items
            .iter()
            .find_map(|i| match i {
                seatplan::Item::Seat(x) if x.seat_category == id(2003) => Some(x.clone()),
                _ => None,
            })
            .expect("a seat of category 2003");
        let kept = local_seat(&c, old.id.get());
        let category = one(
            &c,
            &format!("SELECT seat_category FROM seat WHERE id = {kept}"),
        );
        let seats = one(&c, "SELECT count(*) FROM seat");
        // The manager renumbers it 99 and gives its number to a new seat.
        let newcomer = seatplan::Item::Seat(seatplan::Seat {
            id: id(59999),
            row: old.row,
            number: old.number.clone(),
            seat_category: id(2001),
        });
        let mut changed = Vec::new();
        for item in items {
            match item {
                seatplan::Item::Seat(mut x) if x.id == old.id => {
                    x.number = code("99");
                    if new_seat_first {
                        changed.push(newcomer.clone());
                    }
                    changed.push(seatplan::Item::Seat(x));
                    if !new_seat_first {
                        changed.push(newcomer.clone());
                    }
                }
                other => changed.push(other),
            }
        }
        let summary = applied(
            import_seatplan(&mut s, &changed)
                .unwrap_or_else(|e| panic!("new seat first: {new_seat_first}: {e}"))
                .0,
        );
        assert!(summary.skipped > 0, "{summary:?}");
        assert_eq!(one(&c, "SELECT count(*) FROM seat"), seats + 1);
        assert_eq!(local_seat(&c, old.id.get()), kept, "the same local seat");
        assert!(label(&c, kept).ends_with(" 99"), "{}", label(&c, kept));
        assert_eq!(
            one(
                &c,
                &format!("SELECT seat_category FROM seat WHERE id = {kept}")
            ),
            category,
            "its category is kept"
        );
        let taken = local_seat(&c, 59999);
        assert_eq!(
            label(&c, taken),
            label(&c, kept).replace(" 99", &format!(" {}", old.number)),
            "the newcomer has the old number in the same row"
        );
        assert_eq!(
            one(&c, "SELECT count(*) FROM seat WHERE number GLOB '[~#]*'"),
            0,
            "nothing set aside or retired"
        );
    }
}
