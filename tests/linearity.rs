//! Sales reintegration stays linear in the shape of its file: for each shape
//! (one standing zone, numbered seats over many performances, one big order,
//! sales then their refunds, acknowledgements), a file of 2n lines costs at
//! most ~2.3× a file of n lines, each applied to a fresh copy of the same
//! manager store. A ratio measured within one run, never an absolute time:
//! the CPU time of the applying thread (other processes of a busy machine
//! do not count in it), the best of three per size, and a shape measured
//! again, up to three times, before it is called slow. A quadratic step (a
//! per-line scan of every ticket) shows as ~4× every time and fails.
//!
//! At the distributor, the passes over a link's lines (the SALES export,
//! the reconciliation) translate each line's objects back to the manager's
//! ids through the mapping table, which grows with every catalogue and seat
//! plan: their cost must not grow with it.

use std::path::{Path, PathBuf};

use stxd::domain::DomainError;
use stxd::domain::reintegration::{Context, SalesImport};
use stxd::format::sales::{Ack, Line, Operation, OrderRef, Place, Ticket};
use stxd::ident::{Code, TechId};
use stxd::money::Currency;
use stxd::store::runs;
use stxd::store::{Role, Store};

use crate::util::{Sandbox, repo};

const LINK: &str = "opera-tourism";
const N: u64 = 2_000;
/// Seats of the bench block, allotted for every extra performance.
const SEATS: u64 = 1_000;
const PERFS: i64 = 8;

/// OPERA's store from samples/opera, grown by a block of `SEATS` seats and
/// `PERFS` performances allotted whole to the link with a large zone.
fn base(dir: &Path) -> PathBuf {
    let path = dir.join("base.sqlite");
    let mut store = Store::open(&path, "OPERA", Role::Manager).unwrap();
    let files: Vec<PathBuf> = ["seatplan.xml", "catalogue.xml", "setup.toml"]
        .iter()
        .map(|f| repo().join("samples/opera").join(f))
        .collect();
    stxd::app::load(&mut store, &files).unwrap();
    let sql = format!(
        "INSERT INTO block (id, configuration, code, name) VALUES (9900001, 3101, 'BIG', 'Big');
         WITH RECURSIVE r(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM r WHERE i + 1 < {rows})
         INSERT INTO seat_row (id, block, code) SELECT 9910000 + i, 9900001, 'R' || i FROM r;
         WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < {SEATS})
         INSERT INTO seat (id, row, number, seat_category)
           SELECT 20000000 + i, 9910000 + i / 100, CAST(i % 100 + 1 AS TEXT), 2001 FROM s;
         WITH RECURSIVE p(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM p WHERE i + 1 < {PERFS})
         INSERT INTO performance (id, code, name, activity, start, configuration, logical_configuration, state)
           SELECT 100000 + i, 'B' || i, 'Big ' || i, activity, start, configuration,
                  logical_configuration, state FROM p, performance WHERE id = 1701;
         INSERT INTO product_performance (product, performance)
           SELECT pp.product, p.id FROM product_performance pp, performance p
            WHERE pp.performance = 1701 AND p.id >= 100000;
         INSERT INTO allotment (link, performance, version, exported)
           SELECT '{LINK}', id, 1, 1 FROM performance WHERE id >= 100000;
         INSERT INTO allotment_seat (performance, seat, link, state)
           SELECT p.id, s.id, '{LINK}', 'allotted' FROM performance p, seat s
            WHERE p.id >= 100000 AND s.id >= 20000000;
         INSERT INTO allotment_zone (performance, zone, link, quantity)
           SELECT id, 3201, '{LINK}', 1000000 FROM performance WHERE id >= 100000;",
        rows = SEATS / 100,
    );
    store
        .write(|tx| tx.execute_batch(&sql).map_err(DomainError::from))
        .unwrap();
    drop(store);
    path
}

fn id(v: i64) -> TechId {
    TechId::new(v).unwrap()
}

/// The `n`-th seat (0-based) of the big block, performance after
/// performance.
fn seated(line: u64, n: u64, order: &str) -> Ticket {
    let seat = n % SEATS;
    Ticket {
        rate_version: None,
        logical_seat_category: None,
        line,
        operation: Operation::Sale,
        time: time::macros::datetime!(2026-12-02 09:00:00 UTC),
        order: OrderRef::new(order).unwrap(),
        refund_of: None,
        performance: id(100_000 + (n / SEATS) as i64),
        place: Place::Seat {
            block: id(9_900_001),
            row: Code::new(&format!("R{}", seat / 100)).unwrap(),
            seat: Code::new(&(seat % 100 + 1).to_string()).unwrap(),
        },
        seat_category: id(2001),
        tariff_type: id(1201),
        audience_subcategory: id(1301),
        amount: 8500,
        currency: Currency::new("EUR").unwrap(),
        vat_code: id(1101),
    }
}

/// The lines of a file of `n` ticket lines of `shape`.
fn file(shape: &str, n: u64) -> Vec<Line> {
    let order = |i: u64| format!("T-{i:09}");
    let mut out = Vec::new();
    for i in 1..=n {
        let t = match shape {
            "standing zone" => Ticket {
                place: Place::Zone { zone: id(3201) },
                seat_category: id(2004),
                amount: 2500,
                ..seated(i, 0, &order(i))
            },
            "many performances" => seated(i, i - 1, &order(i)),
            "one big order" => seated(i, i - 1, "BIG-ORDER"),
            "refunds" if i > n / 2 => {
                let of = seated(i - n / 2, i - n / 2 - 1, &order(i - n / 2));
                Ticket {
                    line: i,
                    operation: Operation::Refund,
                    refund_of: Some(of.line),
                    ..of
                }
            }
            "refunds" => seated(i, i - 1, &order(i)),
            _ => {
                // Acknowledgements: a ticket line and an ACK line each.
                out.push(Line::Ack(Ack {
                    performance: id(100_000 + (i % PERFS as u64) as i64),
                    contingent_version: 1,
                }));
                seated(i, i - 1, &order(i))
            }
        };
        out.push(Line::Ticket(Box::new(t)));
    }
    out
}

/// CPU seconds of the calling thread so far.
fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the local above.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime: {}", std::io::Error::last_os_error());
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// CPU seconds to apply `lines` to a fresh copy of the base store (the
/// best of three); every ticket line must be booked.
fn apply(dir: &Path, base: &Path, lines: &[Line]) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..3 {
        let path = dir.join("run.sqlite");
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
        }
        std::fs::copy(base, &path).unwrap();
        let mut store = Store::open(&path, "OPERA", Role::Manager).unwrap();
        let start = thread_cpu();
        let outcome = store
            .write(|tx| {
                let run = runs::start(tx, "import-sales", Some(LINK), Some("SALES_1.csv"))?;
                let ctx = Context {
                    link: LINK,
                    login: "TOURISM_OPE@TOURISM",
                    distributor: "TOURISM",
                    file: "SALES_1.csv",
                    run,
                };
                let mut import = SalesImport::new(tx, ctx)?;
                for (i, line) in lines.iter().enumerate() {
                    import.line(line, i as u64 + 2)?;
                }
                import.finish()
            })
            .unwrap();
        best = best.min(thread_cpu() - start);
        let tickets = lines
            .iter()
            .filter(|l| matches!(l, Line::Ticket(_)))
            .count() as u64;
        assert_eq!(
            (outcome.booked + outcome.refunded, outcome.rejected),
            (tickets, 0)
        );
    }
    best
}

#[test]
fn doubling_the_lines_at_most_doubles_the_time_in_every_shape() {
    let dir = tempfile::tempdir().unwrap();
    let base = base(dir.path());
    let mut report = Vec::new();
    for shape in [
        "standing zone",
        "many performances",
        "one big order",
        "refunds",
        "acknowledgements",
    ] {
        let (small, large) = (file(shape, N), file(shape, 2 * N));
        let mut tries = Vec::new();
        for _ in 0..3 {
            let once = apply(dir.path(), &base, &small);
            let twice = apply(dir.path(), &base, &large);
            tries.push((once, twice, twice / once));
            if twice / once <= 2.3 {
                break;
            }
        }
        let last = tries[tries.len() - 1];
        report.push((shape, last.0, last.1, last.2));
    }
    let slow: Vec<_> = report.iter().filter(|r| r.3 > 2.3).collect();
    assert!(
        slow.is_empty(),
        "not linear (shape, {N} lines s, {} lines s, ratio): {slow:?} of {report:?}",
        2 * N
    );
}

/// CPU seconds of `pass` over a copy of `store` (the best of three), each
/// run inside a transaction rolled back after it.
fn pass_time(
    dir: &Path,
    store: &Path,
    pass: &dyn Fn(&rusqlite::Connection) -> usize,
    expect: usize,
) -> f64 {
    let path = dir.join("pass.sqlite");
    for ext in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{ext}", path.display()));
    }
    std::fs::copy(store, &path).unwrap();
    let mut conn = rusqlite::Connection::open(&path).unwrap();
    let mut best = f64::MAX;
    for _ in 0..3 {
        let tx = conn.transaction().unwrap();
        let start = thread_cpu();
        let counted = pass(&tx);
        best = best.min(thread_cpu() - start);
        assert_eq!(counted, expect);
        tx.rollback().unwrap();
    }
    best
}

#[test]
fn a_distributors_passes_over_its_lines_do_not_grow_with_its_mapping_table() {
    const LINES: usize = 20_000;
    const ROWS_PER_KIND: i64 = 1_000;
    let sb = Sandbox::new();
    sb.contingent_applied();
    let line = sb.sell("PARTERRE:A:1");
    let state = sb.path().join("var/state");
    let lines = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {extra})
         INSERT INTO sale_line (link, operation, time, order_ref, product, performance, seat,
                                seat_category, tariff_type, audience_subcategory, amount,
                                currency, vat_code, active)
           SELECT link, operation, time, 'T-L' || i, product, performance, seat,
                  seat_category, tariff_type, audience_subcategory, amount,
                  currency, vat_code, 0
           FROM sale_line, n WHERE sale_line.id = {line};",
        extra = LINES - 1
    );
    let small = state.join("TOURISM.sqlite");
    rusqlite::Connection::open(&small)
        .unwrap()
        .execute_batch(&lines)
        .unwrap();
    // The same store after years of catalogues and seat plans: many more
    // filled rows of every kind a line names, for other local objects.
    let large = sb.path().join("large.sqlite");
    std::fs::copy(&small, &large).unwrap();
    let grown: String = [
        "performance",
        "seat",
        "block",
        "zone",
        "seat_category",
        "tariff_type",
        "audience_subcategory",
        "vat_code",
    ]
    .iter()
    .enumerate()
    .map(|(k, kind)| {
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {ROWS_PER_KIND})
             INSERT INTO mapping (manager, kind, manager_id, manager_code, manager_label,
                                  local_id, status, first_seen, last_seen)
               SELECT 'OPERA', '{kind}', {base} + i, 'M' || i, 'grown ' || i, {base} + i,
                      'filled', 'x', 'x' FROM n;",
            base = 10_000_000 * (k as i64 + 1)
        )
    })
    .collect();
    rusqlite::Connection::open(&large)
        .unwrap()
        .execute_batch(&grown)
        .unwrap();
    let manager = rusqlite::Connection::open(state.join("OPERA.sqlite")).unwrap();

    let export = |c: &rusqlite::Connection| {
        let mut tickets = 0;
        stxd::domain::selling::export_sales(c, LINK, "OPERA", 99, &mut |l| {
            tickets += usize::from(matches!(l, Line::Ticket(_)));
            Ok(())
        })
        .unwrap();
        tickets
    };
    let reconcile = |c: &rusqlite::Connection| {
        let report = stxd::domain::reconcile::reconcile(&manager, c, LINK, "OPERA").unwrap();
        report
            .in_flight
            .iter()
            .filter(|i| i.code == "not-exported")
            .count()
    };
    let dir = tempfile::tempdir().unwrap();
    let mut report = Vec::new();
    for (name, pass, expect) in [
        (
            "SALES export",
            &export as &dyn Fn(&rusqlite::Connection) -> usize,
            LINES,
        ),
        ("reconciliation", &reconcile, LINES),
    ] {
        let mut tries = Vec::new();
        for _ in 0..3 {
            let before = pass_time(dir.path(), &small, pass, expect);
            let after = pass_time(dir.path(), &large, pass, expect);
            tries.push((before, after, after / before));
            if after / before <= 1.5 {
                break;
            }
        }
        report.push((name, tries[tries.len() - 1]));
    }
    let slow: Vec<_> = report.iter().filter(|r| r.1.2 > 1.5).collect();
    assert!(
        slow.is_empty(),
        "slower with {ROWS_PER_KIND} more mapping rows of each kind (pass, (s before, s after, ratio)): {slow:?} of {report:?}"
    );
}
