//! Issue 4's property test, extended by issue 13: random interleavings of
//! allocate, release, contingent export/import, sell, refund, sales export,
//! reintegration, performance cancellations, refunds of their tickets,
//! dismissals, price changes (new rate table versions) and their
//! validation, and delayed, reordered and duplicated deliveries
//! ([`model`]), on copies of one first-use-done template made through the
//! binary.

use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;
use stxd::format::Kind;

use crate::util::{Sandbox, copy_tree};

pub(crate) mod model;

use model::{Op, Pick, Spot, Sql, What, play, universe};

/// One sandbox brought to first use #1–#2 through the binary, per test
/// process; its `config/` and `var/` are kept under cargo's target tmp dir
/// (a static is never dropped: a leftover stays out of the system's /tmp).
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<tempfile::TempDir> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let sb = Sandbox::new();
            sb.first_use_done();
            let dir = tempfile::Builder::new()
                .prefix("interleavings-template-")
                .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
                .expect("template dir");
            copy_tree(&sb.path().join("config"), &dir.path().join("config"));
            copy_tree(&sb.path().join("var"), &dir.path().join("var"));
            dir
        })
        .path()
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![Just(Pick::Oldest), any::<usize>().prop_map(Pick::Any)]
}

fn what(seats: usize) -> impl Strategy<Value = What> {
    prop_oneof![
        3 => prop::collection::vec(0..seats, 1..4).prop_map(What::Seats),
        1 => (1u32..=3).prop_map(What::Zone),
    ]
}

fn spot(seats: usize) -> impl Strategy<Value = Spot> {
    prop_oneof![
        5 => any::<usize>().prop_map(Spot::Contingent),
        1 => (0..seats).prop_map(Spot::Any),
        2 => Just(Spot::Zone),
    ]
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![Just(Kind::Contingent), Just(Kind::Sales)]
}

fn op() -> impl Strategy<Value = Op> {
    let n = universe().len();
    prop_oneof![
        4 => (0..2usize, what(n)).prop_map(|(perf, what)| Op::Allocate { perf, what }),
        2 => (0..2usize, what(64)).prop_map(|(perf, what)| Op::Release { perf, what }),
        2 => Just(Op::ExportContingent),
        3 => pick().prop_map(|pick| Op::Deliver { kind: Kind::Contingent, pick }),
        6 => (0..2usize, spot(n), any::<bool>(), any::<bool>())
            .prop_map(|(perf, seat, reduced, child)| Op::Sell { perf, seat, reduced, child }),
        2 => any::<usize>().prop_map(Op::Refund),
        2 => Just(Op::ExportSales),
        3 => pick().prop_map(|pick| Op::Deliver { kind: Kind::Sales, pick }),
        1 => (kind(), any::<usize>()).prop_map(|(kind, pick)| Op::Duplicate { kind, pick }),
        1 => (0..2usize).prop_map(Op::Cancel),
        2 => Just(Op::ExportCatalogue),
        2 => pick().prop_map(|pick| Op::Deliver { kind: Kind::Catalogue, pick }),
        2 => (0..model::PRICE_SETS.len()).prop_map(Op::PriceChange),
        2 => Just(Op::ValidatePrices),
        1 => (0..2usize).prop_map(Op::RefundCancelled),
        1 => any::<usize>().prop_map(Op::Dismiss),
    ]
}

/// One step, or now and then a price change as ops play it on a good day:
/// new prices at the manager, its catalogue sent and taken, the new version
/// validated at the distributor (single ops of each kind are drawn too, in
/// any order, so most changes arrive late or wait for validation; these
/// arcs make sure that sales at the new prices are played as well).
fn step() -> impl Strategy<Value = Vec<Op>> {
    prop_oneof![
        14 => op().prop_map(|op| vec![op]),
        1 => (0..model::PRICE_SETS.len()).prop_map(|set| vec![
            Op::PriceChange(set),
            Op::ExportCatalogue,
            Op::Deliver { kind: Kind::Catalogue, pick: Pick::Oldest },
            Op::ValidatePrices,
        ]),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn random_interleavings_keep_seats_and_money_straight(
        first in prop::collection::vec((0..2usize, what(universe().len())), 1..=3),
        steps in prop::collection::vec(step(), 5..=25),
    ) {
        // A first contingent on its way, so that most cases sell something.
        let mut all: Vec<Op> = first
            .into_iter()
            .map(|(perf, what)| Op::Allocate { perf, what })
            .collect();
        all.push(Op::ExportContingent);
        all.push(Op::Deliver { kind: Kind::Contingent, pick: Pick::Oldest });
        all.extend(steps.into_iter().flatten());
        play(template(), &all);
    }
}

/// A fixed interleaving exercising every kind of step once, so a regression
/// shows up without waiting for the random cases.
#[test]
fn a_fixed_interleaving_with_reordering_and_duplicates() {
    let ops = [
        Op::Allocate {
            perf: 0,
            what: What::Seats(vec![0, 1, 2]),
        },
        Op::Allocate {
            perf: 0,
            what: What::Zone(3),
        },
        Op::ExportContingent,
        Op::Release {
            perf: 0,
            what: What::Seats(vec![0]),
        },
        Op::ExportContingent,
        Op::Deliver {
            kind: Kind::Contingent,
            pick: Pick::Any(1),
        },
        Op::Deliver {
            kind: Kind::Contingent,
            pick: Pick::Oldest,
        },
        Op::Sell {
            perf: 0,
            seat: Spot::Contingent(1),
            reduced: false,
            child: false,
        },
        Op::Sell {
            perf: 0,
            seat: Spot::Zone,
            reduced: false,
            child: true,
        },
        Op::ExportSales,
        Op::Refund(0),
        Op::ExportSales,
        Op::Deliver {
            kind: Kind::Sales,
            pick: Pick::Any(1),
        },
        Op::Deliver {
            kind: Kind::Sales,
            pick: Pick::Oldest,
        },
        Op::Duplicate {
            kind: Kind::Sales,
            pick: 0,
        },
        Op::Duplicate {
            kind: Kind::Contingent,
            pick: 0,
        },
    ];
    let world = play(template(), &ops);
    // A2 sold then refunded, a child's standing place kept; seat A1, taken
    // back while the distributor still had it, is free again once the ACK
    // of the release came back.
    let tickets: Vec<(Option<i64>, i64, String)> = world
        .manager
        .sql(|c| {
            c.prepare("SELECT seat, amount, state FROM ticket ORDER BY line")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .expect("tickets");
    assert_eq!(
        tickets,
        [
            (Some(50002), 8500, "cancelled".to_owned()),
            (None, 1250, "valid".to_owned()),
        ]
    );
    let pending: i64 = world
        .manager
        .sql(|c| {
            c.query_row("SELECT sum(amount) FROM pending_account_entry", [], |r| {
                r.get(0)
            })
        })
        .expect("pending account");
    assert_eq!(pending, 1250);
    let seats: Vec<(i64, String)> = world
        .manager
        .sql(|c| {
            c.prepare(
                "SELECT seat, state FROM allotment_seat WHERE performance = 1701 ORDER BY seat",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect()
        })
        .expect("allotted seats");
    assert_eq!(
        seats,
        [
            (50002, "allotted".to_owned()),
            (50003, "allotted".to_owned())
        ]
    );
}

/// A cancellation crossing a sale: A:1 sold before it (booked, then
/// refunded with the others), A:2 sold after it by a distributor not told
/// yet (rejected, dismissed, its refund closed with it), a refund of every
/// ticket of the cancelled performance; the invariants hold at the end.
#[test]
fn a_fixed_interleaving_with_a_cancellation_and_a_dismissal() {
    let ops = vec![
        Op::Allocate {
            perf: 0,
            what: What::Seats(vec![0, 1, 2]),
        },
        Op::ExportContingent,
        Op::Deliver {
            kind: Kind::Contingent,
            pick: Pick::Oldest,
        },
        Op::Sell {
            perf: 0,
            seat: Spot::Contingent(0),
            reduced: false,
            child: false,
        },
        Op::ExportSales,
        Op::NextSecond,
        Op::Cancel(0),
        Op::NextSecond,
        Op::Sell {
            perf: 0,
            seat: Spot::Contingent(1),
            reduced: false,
            child: false,
        },
        Op::ExportSales,
        Op::Deliver {
            kind: Kind::Sales,
            pick: Pick::Oldest,
        },
        Op::Deliver {
            kind: Kind::Sales,
            pick: Pick::Oldest,
        },
        Op::Dismiss(0),
        Op::ExportCatalogue,
        Op::Deliver {
            kind: Kind::Catalogue,
            pick: Pick::Oldest,
        },
        Op::RefundCancelled(0),
    ];
    let world = play(template(), &ops);
    let resolutions = world
        .manager
        .sql(|c| {
            c.prepare("SELECT operation, code, by_user FROM sales_line_resolution ORDER BY line")?
                .query_map([], |r| {
                    Ok(format!(
                        "{}|{}|{}",
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap();
    assert_eq!(
        resolutions,
        [
            "SALE|performance-cancelled|ops",
            "REFUND|refund-of-unbooked-sale|stxd"
        ]
    );
}

/// Found by the random cases: a seat released by the manager, sold by the
/// distributor before the shrink reached it, on a performance the manager
/// cancelled a second before the sale.
#[test]
fn a_sale_of_a_released_seat_after_a_cancellation() {
    for spot in 0..5 {
        let ops = vec![
            Op::Allocate {
                perf: 0,
                what: What::Seats(vec![21, 22]),
            },
            Op::Allocate {
                perf: 0,
                what: What::Seats(vec![5, 11, 10]),
            },
            Op::ExportContingent,
            Op::Deliver {
                kind: Kind::Contingent,
                pick: Pick::Oldest,
            },
            Op::Release {
                perf: 0,
                what: What::Seats(vec![35, 22, 28]),
            },
            Op::Cancel(0),
            Op::NextSecond,
            Op::Sell {
                perf: 0,
                seat: Spot::Contingent(spot),
                reduced: false,
                child: false,
            },
            Op::ExportSales,
            Op::Deliver {
                kind: Kind::Sales,
                pick: Pick::Oldest,
            },
            Op::RefundCancelled(0),
        ];
        play(template(), &ops);
    }
}

/// A price change crossing a sale: A:1 sold at 85.00 before the new prices
/// reach the distributor (booked at 85.00, version 1, after them), A:2 at
/// 90.00 and A:3 free once they are validated; a refund of A:1 follows its
/// sale's price; a second change while A:4 waits, sold in version 2.
#[test]
fn a_fixed_interleaving_with_price_changes() {
    let sell = |seat: usize, reduced: bool, child: bool| Op::Sell {
        perf: 0,
        seat: Spot::Any(seat),
        reduced,
        child,
    };
    let deliver = |kind: Kind| Op::Deliver {
        kind,
        pick: Pick::Oldest,
    };
    let ops = vec![
        Op::Allocate {
            perf: 0,
            what: What::Seats(vec![0, 1, 2, 3]),
        },
        Op::ExportContingent,
        deliver(Kind::Contingent),
        sell(0, false, false),
        Op::PriceChange(0),
        Op::ExportCatalogue,
        deliver(Kind::Catalogue),
        // Refused: the changed rate table waits for validation.
        sell(1, false, false),
        Op::ExportSales,
        deliver(Kind::Sales),
        Op::ValidatePrices,
        sell(1, false, false),
        sell(2, true, true),
        sell(3, false, false),
        Op::Refund(0),
        Op::PriceChange(1),
        Op::ExportCatalogue,
        Op::ExportSales,
        deliver(Kind::Sales),
    ];
    let world = play(template(), &ops);
    let tickets: Vec<String> = world
        .manager
        .sql(|c| {
            c.prepare("SELECT seat, amount, rate_version, state FROM ticket ORDER BY line")?
                .query_map([], |r| {
                    Ok(format!(
                        "{}|{}|{}|{}",
                        r.get::<_, i64>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap();
    assert_eq!(
        tickets,
        [
            "50001|8500|1|cancelled",
            "50002|9000|2|valid",
            "50003|0|2|valid",
            "50004|9000|2|valid",
        ]
    );
    let versions: i64 = world
        .manager
        .sql(|c| {
            c.query_row(
                "SELECT max(version) FROM rate_table_version WHERE rate_table = 1801",
                [],
                |r| r.get(0),
            )
        })
        .unwrap();
    assert_eq!(versions, 3);
}
