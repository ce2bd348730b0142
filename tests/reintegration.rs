//! Sales reintegration at the manager against a real SQLite store loaded from
//! samples/opera: the sample SALES payload booked exactly once, replays and
//! overlapping files, every per-line rejection reason, held seats, fixed
//! resubmissions, the setup, and the rejects export (domain and CLI).

use std::path::PathBuf;

use rusqlite::Connection;
use stxd::domain::DomainError;
use stxd::domain::reintegration::{Context, SalesImport, SalesOutcome, export_rejects};
use stxd::format::Limits;
use stxd::format::sales::{self, Line, Operation, OrderRef, Place, Ticket};
use stxd::ident::{Code, TechId};
use stxd::money::Currency;
use stxd::store::runs;
use stxd::store::{Role, Store};

use crate::util::{Sandbox, repo};

const LINK: &str = "opera-tourism";

struct Manager {
    _dir: tempfile::TempDir,
    store: Store,
}

/// OPERA's store from samples/opera, with PARTERRE A1–A4 of 1701 allotted to
/// the link and 10 places of zone FOSSE.
fn manager() -> Manager {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("OPERA.sqlite"), "OPERA", Role::Manager).unwrap();
    let files: Vec<PathBuf> = ["seatplan.xml", "catalogue.xml", "setup.toml"]
        .iter()
        .map(|f| repo().join("samples/opera").join(f))
        .collect();
    stxd::app::load(&mut store, &files).unwrap();
    sql(
        &mut store,
        "INSERT INTO allotment (link, performance, version, exported)
           VALUES ('opera-tourism', 1701, 1, 1), ('opera-tourism', 1702, 1, 1);
         INSERT INTO allotment_seat (performance, seat, link, state)
           SELECT 1701, s.id, 'opera-tourism', 'allotted' FROM seat s
             JOIN seat_row r ON r.id = s.row
            WHERE r.block = 3301 AND r.code = 'A' AND s.number IN ('1', '2', '3', '4');
         INSERT INTO allotment_zone (performance, zone, link, quantity) VALUES (1701, 3201, 'opera-tourism', 10);",
    );
    Manager { _dir: dir, store }
}

fn sql(store: &mut Store, batch: &str) {
    store
        .write(|tx| tx.execute_batch(batch).map_err(DomainError::from))
        .unwrap();
}

/// Runs a read-only query on the store.
fn query<T>(store: &Store, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> T {
    store.read(|c| f(c).map_err(DomainError::from)).unwrap()
}

fn count(store: &Store, sql: &str) -> i64 {
    query(store, |c| c.query_row(sql, [], |r| r.get(0)))
}

fn sample_lines() -> Vec<(Line, u64)> {
    let bytes = std::fs::read(repo().join("samples/payloads/sales.csv")).unwrap();
    sales::Reader::new(&bytes[..], "sales.csv", Limits::default())
        .enumerate()
        .map(|(i, l)| (l.unwrap(), i as u64 + 2))
        .collect()
}

/// Reintegrates `lines` as file `file` in one transaction, as the pipeline
/// does; returns the outcome and the run.
fn reintegrate(
    store: &mut Store,
    file: &str,
    lines: &[(Line, u64)],
) -> Result<(SalesOutcome, i64), DomainError> {
    store.write(|tx| {
        let run = runs::start(tx, "import-sales", Some(LINK), Some(file))?;
        let ctx = Context {
            link: LINK,
            login: "TOURISM_OPE@TOURISM",
            distributor: "TOURISM",
            file,
            run,
        };
        let mut import = SalesImport::new(tx, ctx)?;
        for (line, at) in lines {
            import.line(line, *at)?;
        }
        Ok((import.finish()?, run))
    })
}

fn messages(store: &Store, run: i64) -> Vec<runs::Message> {
    store.read(|c| runs::get(c, run)).unwrap().unwrap().messages
}

fn id(v: i64) -> TechId {
    TechId::new(v).unwrap()
}

/// A SALE of PARTERRE A`seat` of 1701, CAT1 PLEIN ADULTE at 8500 EUR.
fn sale(line: u64, order: &str, seat: &str) -> Ticket {
    Ticket {
        rate_version: None,
        logical_seat_category: None,
        line,
        operation: Operation::Sale,
        time: time::macros::datetime!(2026-12-02 09:00:00 UTC),
        order: OrderRef::new(order).unwrap(),
        refund_of: None,
        performance: id(1701),
        place: Place::Seat {
            block: id(3301),
            row: Code::new("A").unwrap(),
            seat: Code::new(seat).unwrap(),
        },
        seat_category: id(2001),
        tariff_type: id(1201),
        audience_subcategory: id(1301),
        amount: 8500,
        currency: Currency::new("EUR").unwrap(),
        vat_code: id(1101),
    }
}

/// A SALE of one place of zone FOSSE of 1701, DEBOUT PLEIN ADULTE 2500 EUR.
fn zone_sale(line: u64, order: &str) -> Ticket {
    Ticket {
        place: Place::Zone { zone: id(3201) },
        seat_category: id(2004),
        amount: 2500,
        ..sale(line, order, "1")
    }
}

fn refund(line: u64, of: &Ticket) -> Ticket {
    Ticket {
        line,
        operation: Operation::Refund,
        refund_of: Some(of.line),
        ..of.clone()
    }
}

fn lines(tickets: &[Ticket]) -> Vec<(Line, u64)> {
    tickets
        .iter()
        .enumerate()
        .map(|(i, t)| (Line::Ticket(Box::new(t.clone())), i as u64 + 2))
        .collect()
}

fn balance(store: &Store) -> i64 {
    count(
        store,
        "SELECT coalesce(sum(e.amount), 0) FROM pending_account_entry e JOIN ticket t ON t.id = e.ticket
          WHERE t.link = 'opera-tourism'",
    )
}

/// The single rejected line's code and reason after reintegrating `tickets`
/// (after the sample file).
fn rejected_after_sample(tickets: &[Ticket]) -> (SalesOutcome, String, String, Vec<runs::Message>) {
    let mut m = manager();
    reintegrate(&mut m.store, "SALES_1.csv", &sample_lines()).unwrap();
    let (out, run) = reintegrate(&mut m.store, "SALES_2.csv", &lines(tickets)).unwrap();
    let last = tickets.last().unwrap().line as i64;
    let (code, reason): (String, String) = query(&m.store, |c| {
        c.query_row(
                "SELECT code, reason FROM sales_line WHERE link = ?1 AND line = ?2 AND status = 'rejected'",
                (LINK, last),
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
    });
    (out, code, reason, messages(&m.store, run))
}

// ------------------------------------------------------------------- tests

#[test]
fn the_sample_file_books_two_tickets_one_refund_on_the_setup() {
    let mut m = manager();
    let (out, run) = reintegrate(&mut m.store, "SALES_1.csv", &sample_lines()).unwrap();
    assert_eq!(
        (out.booked, out.refunded, out.duplicates, out.rejected),
        (3, 1, 0, 0)
    );
    assert_eq!(
        out.acks,
        vec![
            sales::Ack {
                performance: id(1701),
                contingent_version: 1
            },
            sales::Ack {
                performance: id(1702),
                contingent_version: 1
            },
        ]
    );
    let s = &m.store;
    let orders: Vec<(String, i64, i64, i64, i64)> = query(s, |c| {
        let mut st = c.prepare(
            "SELECT reference, channel, point_of_sale, payment_method, contact
                   FROM sales_order WHERE link = 'opera-tourism' ORDER BY reference",
        )?;
        let rows = st.query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
        rows.collect::<Result<Vec<_>, _>>()
    });
    assert_eq!(
        orders,
        vec![
            ("T-000001".to_owned(), 5001, 5101, 5201, 5301),
            ("T-000002".to_owned(), 5001, 5101, 5201, 5301),
        ]
    );
    assert_eq!(
        count(s, "SELECT count(*) FROM ticket WHERE state = 'valid'"),
        2
    );
    assert_eq!(
        count(
            s,
            "SELECT count(*) FROM ticket WHERE state = 'cancelled' AND line = 2 AND refund_line = 4 AND cancelled_at IS NOT NULL"
        ),
        1
    );
    assert_eq!(
        count(
            s,
            "SELECT count(*) FROM ticket t JOIN sales_order o ON o.id = t.sales_order
              WHERE o.reference = 'T-000002' AND t.zone = 3201 AND t.seat IS NULL"
        ),
        1
    );
    assert_eq!(balance(s), 8500 + 2500);
    assert_eq!(
        count(s, "SELECT count(*) FROM pending_account_entry"),
        4,
        "three sales in, one refund out"
    );
    assert_eq!(
        count(
            s,
            "SELECT count(*) FROM pending_account_entry WHERE amount = -4250"
        ),
        1
    );
    assert_eq!(
        count(
            s,
            "SELECT count(*) FROM sales_line l JOIN run r ON r.id = l.run
              WHERE l.status = 'booked' AND r.file = 'SALES_1.csv'"
        ),
        4
    );
    // The refunded seat is still the distributor's.
    assert_eq!(
        count(
            s,
            "SELECT count(*) FROM allotment_seat a JOIN seat x ON x.id = a.seat
              JOIN seat_row r ON r.id = x.row
             WHERE r.block = 3301 AND r.code = 'A' AND x.number = '2' AND a.state = 'allotted'"
        ),
        1
    );
    assert!(messages(s, run).is_empty());
}

#[test]
fn replaying_the_same_lines_books_nothing() {
    let mut m = manager();
    reintegrate(&mut m.store, "SALES_1.csv", &sample_lines()).unwrap();
    let (out, run) = reintegrate(&mut m.store, "SALES_1.csv", &sample_lines()).unwrap();
    assert_eq!(
        (out.booked, out.refunded, out.duplicates, out.rejected),
        (0, 0, 4, 0)
    );
    assert_eq!(count(&m.store, "SELECT count(*) FROM ticket"), 3);
    assert_eq!(count(&m.store, "SELECT count(*) FROM sales_order"), 2);
    assert_eq!(balance(&m.store), 11000);
    let msgs = messages(&m.store, run);
    assert_eq!(msgs.len(), 4);
    assert!(msgs.iter().all(|m| m.code == "already-booked"
        && m.level == runs::Level::Info
        && m.text.contains("already booked in SALES_1.csv")));
    assert_eq!(msgs[0].location.as_deref(), Some("line 2"));
}

#[test]
fn a_second_file_repeating_some_lines_books_only_the_new_ones() {
    let mut m = manager();
    reintegrate(&mut m.store, "SALES_1.csv", &sample_lines()).unwrap();
    let mut second = sample_lines();
    second.truncate(2); // lines 1 and 2 again
    let a3 = sale(5, "T-000003", "3");
    let a2 = sale(6, "T-000003", "2"); // refunded in the first file: sellable again
    second.extend(lines(&[a3, a2]));
    let (out, _) = reintegrate(&mut m.store, "SALES_2.csv", &second).unwrap();
    assert_eq!(
        (out.booked, out.refunded, out.duplicates, out.rejected),
        (2, 0, 2, 0)
    );
    assert_eq!(
        count(
            &m.store,
            "SELECT count(*) FROM ticket WHERE state = 'valid'"
        ),
        4
    );
    assert_eq!(count(&m.store, "SELECT count(*) FROM sales_order"), 3);
    assert_eq!(balance(&m.store), 11000 + 8500 + 8500);
}

/// Line ids out of order: a gap left by one file and filled by the next is
/// booked, and a line repeated in the same file, before or after a higher
/// id, is booked once (the reintegration looks up only ids it may have
/// received: at most the highest one with a row).
#[test]
fn line_ids_out_of_order_or_repeated_in_one_file_are_booked_once() {
    let mut m = manager();
    let (a2, a3, a4) = (
        sale(2, "T-1", "2"),
        sale(3, "T-1", "3"),
        sale(4, "T-2", "4"),
    );
    let (out, _) = reintegrate(
        &mut m.store,
        "SALES_1.csv",
        &lines(&[a4.clone(), a2.clone()]),
    )
    .unwrap();
    assert_eq!((out.booked, out.duplicates, out.rejected), (2, 0, 0));
    // Line 3 was never received (below the highest id, 4): booked. Line 2
    // again, line 3 again in the same file, line 4, and line 9 (above every
    // id received before this file) again: duplicates.
    let a9 = sale(9, "T-3", "1");
    let (out, run) = reintegrate(
        &mut m.store,
        "SALES_2.csv",
        &lines(&[a3.clone(), a2, a3, a9.clone(), a4, a9]),
    )
    .unwrap();
    assert_eq!((out.booked, out.duplicates, out.rejected), (2, 4, 0));
    let codes: Vec<String> = messages(&m.store, run)
        .into_iter()
        .map(|m| m.code)
        .collect();
    assert_eq!(codes, ["already-booked"; 4]);
    assert_eq!(
        count(
            &m.store,
            "SELECT count(*) FROM ticket WHERE state = 'valid'"
        ),
        4
    );
    assert_eq!(
        count(
            &m.store,
            "SELECT count(*) FROM sales_line l JOIN ticket t ON t.id = l.ticket
             WHERE l.status = 'booked' AND t.line = l.line"
        ),
        4,
        "each booked line names its own ticket"
    );
}

#[test]
fn a_line_id_reused_with_other_content_is_ignored_with_a_warning() {
    let mut m = manager();
    reintegrate(&mut m.store, "SALES_1.csv", &sample_lines()).unwrap();
    let (out, run) =
        reintegrate(&mut m.store, "SALES_2.csv", &lines(&[sale(1, "T-9", "3")])).unwrap();
    assert_eq!((out.booked, out.duplicates), (0, 1));
    let msgs = messages(&m.store, run);
    assert_eq!(msgs[0].code, "already-booked-differs");
    assert_eq!(msgs[0].level, runs::Level::Warning);
    assert_eq!(count(&m.store, "SELECT count(*) FROM ticket"), 3);
}

#[test]
fn rejects_a_seat_not_in_the_contingent() {
    let (out, code, reason, msgs) = rejected_after_sample(&[sale(5, "T-3", "5")]);
    assert_eq!((out.booked, out.rejected), (0, 1));
    assert_eq!(code, "seat-not-in-contingent");
    assert!(reason.contains("seat 3301:A:5"), "{reason}");
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].level, runs::Level::Error);
    assert_eq!(msgs[0].code, "seat-not-in-contingent");
    assert_eq!(msgs[0].location.as_deref(), Some("line 2"));
}

#[test]
fn rejects_a_seat_sold_twice() {
    let (out, code, reason, _) = rejected_after_sample(&[sale(5, "T-3", "1")]);
    assert_eq!(out.rejected, 1);
    assert_eq!(code, "seat-sold-twice");
    assert!(reason.contains("line id 1"), "{reason}");
}

#[test]
fn rejects_a_price_that_differs_from_the_rate_table() {
    let t = Ticket {
        amount: 8000,
        ..sale(5, "T-3", "3")
    };
    let (out, code, reason, _) = rejected_after_sample(&[t]);
    assert_eq!(out.rejected, 1);
    assert_eq!(code, "price-differs");
    assert!(
        reason.contains("(expected 8500 EUR, found 8000 EUR)"),
        "{reason}"
    );
}

#[test]
fn rejects_a_currency_that_differs_from_the_rate_table() {
    let t = Ticket {
        currency: Currency::new("USD").unwrap(),
        ..sale(5, "T-3", "3")
    };
    let (_, code, reason, _) = rejected_after_sample(&[t]);
    assert_eq!(code, "price-differs");
    assert!(
        reason.contains("expected 8500 EUR, found 8500 USD"),
        "{reason}"
    );
}

#[test]
fn rejects_an_unknown_performance() {
    let t = Ticket {
        performance: id(1799),
        ..sale(5, "T-3", "3")
    };
    let (_, code, reason, _) = rejected_after_sample(&[t]);
    assert_eq!(code, "unknown-performance");
    assert!(reason.contains("1799"), "{reason}");
}

#[test]
fn rejects_a_seat_category_that_is_not_the_seats() {
    // CAT3 prices for a CAT1 seat: cheaper, and refused.
    let t = Ticket {
        seat_category: id(2003),
        amount: 3500,
        ..sale(5, "T-3", "3")
    };
    let (_, code, _, _) = rejected_after_sample(&[t]);
    assert_eq!(code, "seat-category-differs");
}

#[test]
fn rejects_an_audience_the_channel_does_not_allow() {
    let t = Ticket {
        tariff_type: id(1202),
        audience_subcategory: id(1303),
        amount: 5000,
        ..sale(5, "T-3", "3")
    };
    let (_, code, _, _) = rejected_after_sample(&[t]);
    assert_eq!(code, "audience-not-allowed");
}

#[test]
fn rejects_a_refund_of_an_unknown_sale() {
    let t = Ticket {
        refund_of: Some(4),
        ..refund(99, &sale(5, "T-3", "3"))
    };
    // refund_of 4 is a refund line of the sample, 98 was never received.
    let unknown = Ticket {
        refund_of: Some(98),
        ..t.clone()
    };
    let (out, code, reason, _) = rejected_after_sample(&[unknown]);
    assert_eq!(out.rejected, 1);
    assert_eq!(code, "refund-unknown-sale");
    assert!(reason.contains("never received"), "{reason}");
    let (_, code, reason, _) = rejected_after_sample(&[t]);
    assert_eq!(code, "refund-unknown-sale");
    assert!(reason.contains("not a sale"), "{reason}");
}

#[test]
fn closes_the_refund_of_a_rejected_sale_with_it() {
    let bad = Ticket {
        amount: 1,
        ..sale(5, "T-3", "3")
    };
    let (out, code, reason, messages) = rejected_after_sample(&[bad.clone(), refund(6, &bad)]);
    assert_eq!((out.rejected, out.unbooked_refunds), (1, 1));
    assert_eq!(code, "refund-of-unbooked-sale");
    assert!(
        reason.contains("refund of an unbooked sale: line id 5 was rejected (price-differs"),
        "{reason}"
    );
    assert!(
        messages.iter().any(|m| m.code == "refund-of-unbooked-sale"
            && m.text
                .contains("sale line id 5 (price-differs) dismissed with it")),
        "{messages:?}"
    );
}

#[test]
fn rejects_a_refund_twice() {
    let a2 = sale(2, "T-000001", "2");
    let again = Ticket {
        amount: 4250,
        audience_subcategory: id(1302),
        ..refund(5, &a2)
    };
    let (out, code, reason, _) = rejected_after_sample(&[again]);
    assert_eq!((out.refunded, out.rejected), (0, 1));
    assert_eq!(code, "refund-twice");
    assert!(reason.contains("already refunded by line id 4"), "{reason}");
}

#[test]
fn rejects_a_refund_whose_amount_or_place_differs() {
    let a1 = sale(1, "T-000001", "1");
    let (_, code, _, _) = rejected_after_sample(&[Ticket {
        amount: 100,
        ..refund(5, &a1)
    }]);
    assert_eq!(code, "refund-amount-differs");
    let (_, code, _, _) = rejected_after_sample(&[refund(5, &sale(1, "T-000001", "3"))]);
    assert_eq!(code, "refund-differs");
}

#[test]
fn rejects_a_zone_sale_over_the_quantity() {
    let mut m = manager();
    sql(
        &mut m.store,
        "UPDATE allotment_zone SET quantity = 1, held = 1, held_until = 2",
    );
    let (out, run) = reintegrate(
        &mut m.store,
        "SALES_1.csv",
        &lines(&[
            zone_sale(1, "Z-1"),
            zone_sale(2, "Z-1"),
            zone_sale(3, "Z-1"),
        ]),
    )
    .unwrap();
    assert_eq!((out.booked, out.rejected), (2, 1), "quantity 1 + 1 held");
    let msgs = messages(&m.store, run);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].code, "zone-quantity-exhausted");
    assert_eq!(msgs[0].location.as_deref(), Some("line 4"));
    // A refund gives the place back to the distributor's contingent.
    let (out, _) = reintegrate(
        &mut m.store,
        "SALES_2.csv",
        &lines(&[refund(4, &zone_sale(1, "Z-1")), zone_sale(5, "Z-2")]),
    )
    .unwrap();
    assert_eq!((out.refunded, out.booked, out.rejected), (1, 1, 0));
}

#[test]
fn rejects_a_zone_not_in_the_contingent() {
    let mut m = manager();
    sql(&mut m.store, "DELETE FROM allotment_zone");
    let (out, run) = reintegrate(&mut m.store, "S.csv", &lines(&[zone_sale(1, "Z-1")])).unwrap();
    assert_eq!(out.rejected, 1);
    assert_eq!(messages(&m.store, run)[0].code, "zone-not-in-contingent");
}

#[test]
fn a_held_seat_sold_before_the_acknowledgement_is_accepted() {
    let mut m = manager();
    sql(
        &mut m.store,
        "UPDATE allotment SET version = 2;
         UPDATE allotment_seat SET state = 'held', released_in = 2
          WHERE seat = (SELECT s.id FROM seat s JOIN seat_row r ON r.id = s.row
                         WHERE r.block = 3301 AND r.code = 'A' AND s.number = '4')",
    );
    let (out, run) = reintegrate(&mut m.store, "S.csv", &lines(&[sale(1, "T-1", "4")])).unwrap();
    assert_eq!((out.booked, out.rejected), (1, 0));
    let msgs = messages(&m.store, run);
    assert_eq!(msgs[0].code, "sold-while-held");
    assert_eq!(msgs[0].level, runs::Level::Info);
}

#[test]
fn a_rejected_line_resubmitted_fixed_is_booked() {
    let mut m = manager();
    let bad = Ticket {
        amount: 8000,
        ..sale(1, "T-1", "1")
    };
    let (out, _) = reintegrate(&mut m.store, "S1.csv", &lines(&[bad])).unwrap();
    assert_eq!(out.rejected, 1);
    assert_eq!(count(&m.store, "SELECT count(*) FROM sales_order"), 0);
    // Still wrong: still rejected, the row follows the latest file.
    let still = Ticket {
        amount: 7000,
        ..sale(1, "T-1", "1")
    };
    let (out, _) = reintegrate(&mut m.store, "S2.csv", &lines(&[still])).unwrap();
    assert_eq!((out.rejected, out.duplicates), (1, 0));
    let (out, _) = reintegrate(&mut m.store, "S3.csv", &lines(&[sale(1, "T-1", "1")])).unwrap();
    assert_eq!((out.booked, out.rejected, out.duplicates), (1, 0, 0));
    let row: (String, String, Option<String>, Option<String>) = query(&m.store, |c| {
        c.query_row(
            "SELECT l.status, r.file, l.code, l.reason FROM sales_line l JOIN run r ON r.id = l.run
             WHERE l.line = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
    });
    assert_eq!(row, ("booked".into(), "S3.csv".into(), None, None));
    assert_eq!(balance(&m.store), 8500);
    // And once booked, the same line is a duplicate.
    let (out, _) = reintegrate(&mut m.store, "S4.csv", &lines(&[sale(1, "T-1", "1")])).unwrap();
    assert_eq!((out.booked, out.duplicates), (0, 1));
}

#[test]
fn a_missing_setup_books_nothing_and_is_a_setup_problem_not_a_bad_file() {
    let mut m = manager();
    sql(
        &mut m.store,
        "UPDATE payment_method SET allows_pending_account = 0",
    );
    let err = reintegrate(&mut m.store, "S.csv", &sample_lines()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, DomainError::Unready { .. }), "{text}");
    assert!(text.contains("pending account"), "{text}");
    assert!(text.contains("nothing of S.csv was booked"), "{text}");
    assert_eq!(count(&m.store, "SELECT count(*) FROM ticket"), 0);
    assert_eq!(count(&m.store, "SELECT count(*) FROM sales_line"), 0);

    let mut m = manager();
    let err = m
        .store
        .write(|tx| {
            let ctx = Context {
                link: LINK,
                login: "NOBODY_X@NOBODY",
                distributor: "NOBODY",
                file: "S.csv",
                run: 1,
            };
            SalesImport::new(tx, ctx).map(|_| ())
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("no external sales interface"),
        "{err}"
    );
}

#[test]
fn rejects_export_as_csv_with_formula_cells_neutralised() {
    let mut m = manager();
    let bad = Ticket {
        amount: 8000,
        ..sale(1, "T-1", "1")
    };
    reintegrate(
        &mut m.store,
        "=HYPERLINK.csv",
        &lines(&[bad, sale(2, "T-1", "2")]),
    )
    .unwrap();
    let mut out = Vec::new();
    let n = m.store.read(|c| export_rejects(c, LINK, &mut out)).unwrap();
    assert_eq!(n, 1);
    let text = String::from_utf8(out).unwrap();
    let text = text.strip_prefix('\u{feff}').unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(
        rows[0],
        format!("{};file;position;code;reason", sales::COLUMNS.join(";"))
    );
    assert_eq!(rows.len(), 2);
    assert!(
        rows[1].starts_with(
            "1;SALE;2026-12-02T09:00:00Z;T-1;;1701;3301;A;1;;2001;1201;1301;8000;EUR;1101;;'=HYPERLINK.csv;line 2;price-differs;"
        ),
        "{}",
        rows[1]
    );
    assert!(rows[1].contains("expected 8500 EUR, found 8000 EUR"));
}

#[test]
fn cli_sales_rejects_lists_the_rejected_lines() {
    let sb = Sandbox::new();
    sb.ready();
    let db = sb.path().join("var/state/OPERA.sqlite");
    let conn = Connection::open(&db).unwrap();
    conn.execute_batch(
        "INSERT INTO run (id, kind, link, file, started, ended, status)
         VALUES (900, 'import-sales', 'opera-tourism', 'SALES_3.csv', '2026-12-01T00:00:00.000000Z',
                 '2026-12-01T00:00:00.000000Z', 'partial');
         INSERT INTO sales_line (link, line, operation, status, run, position, code, reason, record)
         VALUES ('opera-tourism', 7, 'SALE', 'rejected', 900, 8, 'seat-not-in-contingent',
                 '+seat 3301:A:9 is not in the contingent',
                 '7;SALE;2026-12-01T10:15:00Z;T-7;;1701;3301;A;9;;2001;1201;1301;8500;EUR;1101;')",
    )
    .unwrap();
    drop(conn);
    let run = sb.stxd(&["sales", "rejects", "--link", "opera-tourism"]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(out.contains("line;operation;"), "{out}");
    assert!(
        out.contains("7;SALE;2026-12-01T10:15:00Z;T-7;;1701;3301;A;9;;2001;1201;1301;8500;EUR;1101;;SALES_3.csv;line 8;seat-not-in-contingent;'+seat 3301:A:9"),
        "{out}"
    );
    let run = sb.stxd(&["--json", "sales", "rejects", "--link", "opera-tourism"]);
    run.expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(doc["count"], 1);
    assert_eq!(doc["rejected"][0]["code"], "seat-not-in-contingent");
    assert_eq!(doc["rejected"][0]["record"]["seat"], "9");
    let file = sb.path().join("rejects.csv");
    let f = file.to_str().unwrap();
    sb.stxd(&["sales", "rejects", "--link", "opera-tourism", "--output", f])
        .expect_code(0);
    assert!(std::fs::read_to_string(&file).unwrap().contains("T-7"));
    // An existing file is never replaced.
    sb.stxd(&["sales", "rejects", "--link", "opera-tourism", "--output", f])
        .expect_code(1);
    sb.stxd(&["sales", "rejects", "--link", "nope"])
        .expect_code(2);
}

#[test]
fn rejects_unknown_references_and_places() {
    let cases = [
        (
            Ticket {
                tariff_type: id(1299),
                ..sale(5, "T-3", "3")
            },
            "unknown-tariff-type",
        ),
        (
            Ticket {
                audience_subcategory: id(1399),
                ..sale(5, "T-3", "3")
            },
            "unknown-audience-subcategory",
        ),
        (
            Ticket {
                vat_code: id(1199),
                ..sale(5, "T-3", "3")
            },
            "unknown-vat-code",
        ),
        (sale(5, "T-3", "99"), "unknown-seat"),
        (
            Ticket {
                place: Place::Zone { zone: id(3299) },
                ..zone_sale(5, "T-3")
            },
            "unknown-zone",
        ),
    ];
    for (t, expected) in cases {
        let (out, code, _, _) = rejected_after_sample(&[t]);
        assert_eq!(out.rejected, 1, "{expected}");
        assert_eq!(code, expected);
    }
}

#[test]
fn many_duplicates_are_summarised_in_the_run() {
    let mut m = manager();
    sql(&mut m.store, "UPDATE allotment_zone SET quantity = 150");
    let tickets: Vec<Ticket> = (1..=120).map(|n| zone_sale(n, "Z-1")).collect();
    let (out, _) = reintegrate(&mut m.store, "S1.csv", &lines(&tickets)).unwrap();
    assert_eq!(out.booked, 120);
    let (out, run) = reintegrate(&mut m.store, "S2.csv", &lines(&tickets)).unwrap();
    assert_eq!((out.booked, out.duplicates), (0, 120));
    let msgs = messages(&m.store, run);
    assert_eq!(msgs.len(), 101);
    let last = msgs.last().unwrap();
    assert!(
        last.text.starts_with("20 more lines already booked"),
        "{}",
        last.text
    );
    assert_eq!(balance(&m.store), 120 * 2500);
}

/// Versioned prices: the manager's price of CAT1 PLEIN ADULTE goes from
/// 85.00 to 90.00 EUR (rate table 1801, version 2, in force from
/// 2026-06-01). A line naming its version is priced in it; a version 1 line
/// (no version) in the version in force when it was sold; a refund follows
/// its sale.
#[test]
fn a_line_is_priced_in_its_rate_table_version_or_the_one_in_force_when_sold() {
    let mut m = manager();
    let dir = tempfile::tempdir().unwrap();
    let fragment = dir.path().join("price.xml");
    std::fs::write(
        &fragment,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<catalogue version="1">
  <rateTable id="1801" code="TRAV-RT" name="Tarifs La Traviata" currency="EUR">
    <price seatCategory="2001" tariffType="1201" audienceSubcategory="1301" amount="9000"/>
  </rateTable>
</catalogue>
"#,
    )
    .unwrap();
    stxd::app::load(&mut m.store, std::slice::from_ref(&fragment)).unwrap();
    // Loading the same prices again records no version.
    stxd::app::load(&mut m.store, &[fragment]).unwrap();
    assert_eq!(
        count(
            &m.store,
            "SELECT count(*) * 10 + max(version) FROM rate_table_version WHERE rate_table = 1801"
        ),
        22
    );
    sql(
        &mut m.store,
        "UPDATE rate_table_version SET valid_from = '2026-06-01T00:00:00.000000Z'
         WHERE rate_table = 1801 AND version = 2",
    );
    let before = time::macros::datetime!(2026-05-01 10:00:00 UTC);
    let after = time::macros::datetime!(2026-07-01 10:00:00 UTC);
    let v1_before = Ticket {
        time: before,
        ..sale(10, "O10", "1")
    };
    let v1_after_old = Ticket {
        time: after,
        ..sale(11, "O11", "2")
    };
    let v1_after_new = Ticket {
        time: after,
        amount: 9000,
        ..sale(12, "O12", "2")
    };
    let v2_old = Ticket {
        time: after,
        rate_version: Some(1),
        ..sale(13, "O13", "3")
    };
    let v2_wrong = Ticket {
        time: before,
        rate_version: Some(2),
        ..sale(14, "O14", "4")
    };
    let refund_of_old = Ticket {
        time: after,
        ..refund(15, &v2_old)
    };
    let tickets = [
        v1_before,
        v1_after_old,
        v1_after_new,
        v2_old,
        v2_wrong,
        refund_of_old,
    ];
    reintegrate(&mut m.store, "SALES_9.csv", &lines(&tickets)).unwrap();
    let booked: Vec<String> = query(&m.store, |c| {
        c.prepare("SELECT line || '|' || amount || '|' || coalesce(rate_version, 'NULL') || '|' || state FROM ticket ORDER BY line")?
            .query_map([], |r| r.get(0))?
            .collect()
    });
    assert_eq!(
        booked,
        ["10|8500|1|valid", "12|9000|2|valid", "13|8500|1|cancelled"]
    );
    let rejected: Vec<String> = query(&m.store, |c| {
        c.prepare("SELECT line || '|' || code || '|' || reason FROM sales_line WHERE status = 'rejected' ORDER BY line")?
            .query_map([], |r| r.get(0))?
            .collect()
    });
    assert_eq!(rejected.len(), 2, "{rejected:?}");
    assert!(
        rejected[0].starts_with("11|price-differs|")
            && rejected[0].contains("in version 2, in force when it was sold (expected 9000 EUR"),
        "{rejected:?}"
    );
    assert!(
        rejected[1].starts_with("14|price-differs|")
            && rejected[1].contains("in version 2, the line's (expected 9000 EUR"),
        "{rejected:?}"
    );
    assert_eq!(balance(&m.store), 8500 + 9000);
}
