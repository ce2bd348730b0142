//! Contingents and selling at the distributor, on the demo after first use
//! #1–#2: CONTINGENT lines pushed into the importer (as the inbound pipeline
//! does), sales and refunds through the `stxd` binary with every refusal's
//! reason, and the SALES file re-read through claim, verify and parse.

use std::io::BufReader;
use std::path::PathBuf;

use serde_json::Value;
use stxd::domain::DomainError;
use stxd::domain::import::Context;
use stxd::domain::selling::{ContingentImport, ContingentOutcome};
use stxd::format::sales::{self, Operation, Place};
use stxd::format::{Kind, Limits, contingent};
use stxd::ident::{Code, TechId};
use stxd::inbound::{self, Record};
use stxd::store::runs::{self, Level, RunDetail, RunStatus};
use stxd::store::{Role, Store, StoreError};

use crate::util::{Sandbox, repo};

const LINK: &str = "opera-tourism";

fn id(v: i64) -> TechId {
    TechId::new(v).unwrap()
}

fn tourism(sb: &Sandbox) -> Store {
    Store::open(
        &sb.path().join("var/state/TOURISM.sqlite"),
        "TOURISM",
        Role::Distributor,
    )
    .unwrap()
}

/// Feeds a CONTINGENT payload into the importer in one transaction with its
/// run, as the pipeline does; returns the outcome and the run.
fn apply_contingent(
    sb: &Sandbox,
    csv: &str,
) -> Result<(ContingentOutcome, RunDetail), DomainError> {
    let mut store = tourism(sb);
    let (outcome, run) = store.write(|tx| -> Result<_, DomainError> {
        let run = runs::start(tx, "import-contingent", Some(LINK), Some("contingent.csv"))?;
        let ctx = Context {
            manager: "OPERA",
            file: "contingent.csv",
            run,
        };
        let mut import = ContingentImport::new(tx, ctx, LINK);
        let reader = contingent::Reader::new(
            BufReader::new(csv.as_bytes()),
            "contingent.csv",
            Limits::default(),
        );
        for line in reader {
            import.item(&line?)?;
        }
        Ok((import.finish()?, run))
    })?;
    let detail = store.read(|c| runs::get(c, run)).unwrap().unwrap();
    Ok((outcome, detail))
}

/// The sample's CONTINGENT payload.
fn sample_contingent() -> String {
    std::fs::read_to_string(repo().join("samples/payloads/contingent.csv")).unwrap()
}

/// A snapshot of performance 1701 at `version` with the given PARTERRE row A
/// seats and FOSSE quantity (0: no zone line).
fn snapshot_1701(version: u64, seats: &[u32], fosse: u32) -> String {
    let mut s =
        String::from("performance;version;type;block;row;seat;zone;quantity;seat_category\n");
    s.push_str(&format!("1701;{version};PERFORMANCE;;;;;;\n"));
    for n in seats {
        s.push_str(&format!("1701;{version};SEAT;3301;A;{n};;;2001\n"));
    }
    if fosse > 0 {
        s.push_str(&format!("1701;{version};ZONE;;;;3201;{fosse};2004\n"));
    }
    s
}

fn json(run: &crate::util::Run) -> Value {
    serde_json::from_str(&run.stdout()).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}):\n{}\nstderr:\n{}",
            run.stdout(),
            run.stderr()
        )
    })
}

/// `stxd --json sale sell …`: the line id sold.
fn sell(sb: &Sandbox, args: &[&str]) -> i64 {
    let mut all = vec!["--json", "sale", "sell"];
    all.extend_from_slice(args);
    let run = sb.stxd(&all);
    run.expect_code(0);
    json(&run)["line"]["line"].as_i64().unwrap()
}

/// `stxd --json sale …` refused: its code and reason.
fn refused(sb: &Sandbox, args: &[&str]) -> (String, String) {
    let mut all = vec!["--json", "sale"];
    all.extend_from_slice(args);
    let run = sb.stxd(&all);
    run.expect_code(1);
    let v = json(&run);
    assert_eq!(v["done"], false);
    (
        v["code"].as_str().unwrap().to_owned(),
        v["reason"].as_str().unwrap().to_owned(),
    )
}

fn query_i64(sb: &Sandbox, sql: &str) -> i64 {
    tourism(sb)
        .read(|c| -> Result<i64, StoreError> { Ok(c.query_row(sql, [], |r| r.get(0))?) })
        .unwrap()
}

/// Re-reads the link's SALES file `sequence` through claim, verify, parse.
fn read_sales(sb: &Sandbox, sequence: u64) -> Vec<sales::Line> {
    let config = stxd::config::load(&sb.path().join("config/stxd.toml")).unwrap();
    let link = config.link(LINK).unwrap();
    let limits = Limits::default();
    let outbox: PathBuf = sb.path().join("var/exchange/opera-tourism/to-manager");
    let manifest = outbox.join(format!("opera-tourism.SALES.{sequence:08}.stx"));
    let claimed = inbound::claim::claim(&manifest, &limits).unwrap();
    let verified = inbound::verify::verify(
        claimed,
        &sb.demo_secret(),
        &link.expectation(Kind::Sales),
        &limits,
    )
    .unwrap();
    inbound::parse::parse(verified, &limits)
        .map(|r| match r.unwrap() {
            Record::Sales(l) => l,
            other => panic!("not a sales line: {other:?}"),
        })
        .collect()
}

fn ticket(line: &sales::Line) -> &sales::Ticket {
    match line {
        sales::Line::Ticket(t) => t,
        other => panic!("expected a ticket, found {other:?}"),
    }
}

fn seat_place(block: i64, row: &str, seat: &str) -> Place {
    Place::Seat {
        block: id(block),
        row: Code::new(row).unwrap(),
        seat: Code::new(seat).unwrap(),
    }
}

fn acks(lines: &[sales::Line]) -> Vec<(i64, u64)> {
    lines
        .iter()
        .filter_map(|l| match l {
            sales::Line::Ack(a) => Some((a.performance.get(), a.contingent_version)),
            _ => None,
        })
        .collect()
}

#[test]
fn the_sample_contingent_makes_its_seats_sellable() {
    let sb = Sandbox::new();
    sb.first_use_done();
    let (outcome, run) = apply_contingent(&sb, &sample_contingent()).unwrap();
    assert_eq!(outcome.applied, vec![(id(1701), 1), (id(1702), 1)]);
    assert!(outcome.ignored.is_empty());
    assert_eq!(outcome.kept_sold, 0);
    assert!(
        run.messages
            .iter()
            .any(|m| m.text == "version 1 applied: 16 seat(s), 20 zone place(s)"),
        "{:?}",
        run.messages
    );
    assert_eq!(query_i64(&sb, "SELECT count(*) FROM contingent_seat"), 26);
    assert_eq!(
        query_i64(
            &sb,
            "SELECT quantity FROM contingent_zone WHERE performance = 1"
        ),
        20
    );
    assert_eq!(
        query_i64(
            &sb,
            "SELECT count(*) FROM contingent_snapshot WHERE version = 1 AND link = 'opera-tourism'"
        ),
        2
    );
}

#[test]
fn sell_refund_and_export_sales_in_the_managers_ids() {
    let sb = Sandbox::new();
    sb.first_use_done();
    apply_contingent(&sb, &sample_contingent()).unwrap();

    // Two seats (one order) and a zone place; the prices of the rate table.
    let run = sb.stxd(&[
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
    ]);
    run.expect_code(0);
    assert!(run.stdout().contains("sold: line 1"), "{}", run.stdout());
    assert!(
        run.stdout().contains("price: 85.00 EUR"),
        "{}",
        run.stdout()
    );
    assert!(run.stdout().contains("order: T-000001"), "{}", run.stdout());
    let second = sell(
        &sb,
        &[
            "--performance",
            "1",
            "--seat",
            "PARTERRE:A:2",
            "--tariff",
            "NORMAL",
            "--audience",
            "CHILD",
            "--order",
            "T-000001",
        ],
    );
    assert_eq!(second, 2);
    let zone = sell(
        &sb,
        &[
            "--performance",
            "TRAV0115",
            "--zone",
            "FOSSE",
            "--tariff",
            "NORMAL",
            "--audience",
            "ADULT",
        ],
    );
    assert_eq!(zone, 3);

    // Refund the child's seat: a REFUND line, the seat sellable again.
    let run = sb.stxd(&["--json", "sale", "refund", "2"]);
    run.expect_code(0);
    let v = json(&run);
    assert_eq!(v["line"]["line"], 4);
    assert_eq!(v["line"]["refund_of"], 2);
    assert_eq!(v["line"]["amount"], 4250);
    assert_eq!(
        query_i64(&sb, "SELECT active FROM sale_line WHERE id = 2"),
        0
    );

    let list = json(&sb.stxd(&["--json", "sale", "list"]));
    let lines = list["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["price"], "85.00 EUR");
    assert_eq!(lines[1]["order"], "T-000001");
    assert_eq!(lines[2]["place"], "FOSSE");
    assert_eq!(lines[2]["order"], "T-000003");
    assert_eq!(lines[3]["operation"], "REFUND");

    // The SALES file: the lines in manager ids, then the ACKs.
    sb.stxd(&["export", "sales", "--link", LINK]).expect_code(0);
    let file = read_sales(&sb, 1);
    assert_eq!(file.len(), 6, "{file:?}");
    let t1 = ticket(&file[0]);
    assert_eq!(
        (t1.line, t1.operation, t1.order.as_str(), t1.refund_of),
        (1, Operation::Sale, "T-000001", None)
    );
    assert_eq!(t1.performance, id(1701));
    assert_eq!(t1.place, seat_place(3301, "A", "1"));
    assert_eq!(
        (
            t1.seat_category.get(),
            t1.tariff_type.get(),
            t1.audience_subcategory.get(),
            t1.vat_code.get()
        ),
        (2001, 1201, 1301, 1101)
    );
    assert_eq!((t1.amount, t1.currency.as_str()), (8500, "EUR"));
    let t2 = ticket(&file[1]);
    assert_eq!((t2.line, t2.amount), (2, 4250));
    assert_eq!(t2.audience_subcategory, id(1302));
    assert_eq!(t2.order.as_str(), "T-000001");
    let t3 = ticket(&file[2]);
    assert_eq!(t3.place, Place::Zone { zone: id(3201) });
    assert_eq!((t3.seat_category.get(), t3.amount), (2004, 2500));
    let t4 = ticket(&file[3]);
    assert_eq!(
        (t4.line, t4.operation, t4.refund_of, t4.amount),
        (4, Operation::Refund, Some(2), 4250)
    );
    assert_eq!(t4.place, seat_place(3301, "A", "2"));
    assert_eq!(acks(&file), vec![(1701, 1), (1702, 1)]);
    assert_eq!(
        query_i64(&sb, "SELECT count(*) FROM sale_line WHERE exported_in = 1"),
        4
    );

    // A second file carries only the new lines (and the ACKs again).
    sell(
        &sb,
        &[
            "--performance",
            "TRAV0117",
            "--seat",
            "PARTERRE:B:1",
            "--tariff",
            "REDUIT",
            "--audience",
            "ADULT",
        ],
    );
    sb.stxd(&["export", "sales", "--link", LINK]).expect_code(0);
    let file = read_sales(&sb, 2);
    assert_eq!(file.len(), 3, "{file:?}");
    let t5 = ticket(&file[0]);
    assert_eq!((t5.line, t5.performance, t5.amount), (5, id(1702), 6500));
    assert_eq!(t5.tariff_type, id(1202));
    assert_eq!(acks(&file), vec![(1701, 1), (1702, 1)]);
    let unsent = json(&sb.stxd(&["--json", "sale", "list", "--unexported"]));
    assert_eq!(unsent["lines"].as_array().unwrap().len(), 0);
}

#[test]
fn a_file_with_only_acks_is_sent_and_nothing_at_all_is_refused() {
    let sb = Sandbox::new();
    sb.first_use_done();
    let run = sb.stxd(&["--json", "export", "sales", "--link", LINK]);
    run.expect_code(1);
    let v = json(&run);
    assert_eq!(v["code"], "nothing-to-send");
    assert!(
        v["reason"].as_str().unwrap().contains("nothing to send"),
        "{v}"
    );
    assert!(
        !sb.path()
            .join("var/exchange/opera-tourism/to-manager/opera-tourism.SALES.00000001.stx")
            .exists()
    );

    apply_contingent(&sb, &sample_contingent()).unwrap();
    sb.stxd(&["export", "sales", "--link", LINK]).expect_code(0);
    let file = read_sales(&sb, 1);
    assert_eq!(acks(&file), vec![(1701, 1), (1702, 1)]);
    assert_eq!(file.len(), 2);

    // Acknowledged already and nothing sold: a schedule writes nothing more.
    let run = sb.stxd(&["--json", "export", "sales", "--link", LINK]);
    run.expect_code(1);
    assert_eq!(json(&run)["code"], "nothing-to-send");
    // A new version applied needs its acknowledgement: a file again, with
    // every applied version.
    apply_contingent(&sb, &snapshot_1701(2, &[1, 2], 1)).unwrap();
    sb.stxd(&["export", "sales", "--link", LINK]).expect_code(0);
    assert_eq!(acks(&read_sales(&sb, 2)), vec![(1701, 2), (1702, 1)]);
}

#[test]
fn each_refusal_names_its_reason_and_writes_nothing() {
    let sb = Sandbox::new();
    sb.first_use_done();
    // FOSSE has one place in this snapshot.
    apply_contingent(&sb, &snapshot_1701(1, &[1, 2, 3], 1)).unwrap();
    fn seat(s: &'static str, tariff: &'static str, audience: &'static str) -> Vec<&'static str> {
        vec![
            "sell",
            "--performance",
            "TRAV0115",
            "--seat",
            s,
            "--tariff",
            tariff,
            "--audience",
            audience,
        ]
    }

    // Seat outside the contingent.
    let (code, reason) = refused(&sb, &seat("PARTERRE:A:4", "NORMAL", "ADULT"));
    assert_eq!(code, "seat-outside-contingent");
    assert!(reason.contains("PARTERRE A 4"), "{reason}");
    // A seat that does not exist.
    let (code, _) = refused(&sb, &seat("PARTERRE:Z:1", "NORMAL", "ADULT"));
    assert_eq!(code, "unknown-place");
    // Unknown tariff type, unknown audience subcategory.
    let (code, reason) = refused(&sb, &seat("PARTERRE:A:1", "GROUPE", "ADULT"));
    assert_eq!(code, "unknown-tariff");
    assert!(reason.contains("GROUPE"), "{reason}");
    let (code, _) = refused(&sb, &seat("PARTERRE:A:1", "NORMAL", "SENIOR"));
    assert_eq!(code, "unknown-audience");

    // Sold twice.
    sell(&sb, &seat("PARTERRE:A:1", "NORMAL", "ADULT")[1..]);
    let (code, reason) = refused(&sb, &seat("PARTERRE:A:1", "REDUIT", "CHILD"));
    assert_eq!(code, "seat-sold");
    assert!(reason.contains("already sold (line 1)"), "{reason}");

    let zone = [
        "sell",
        "--performance",
        "TRAV0115",
        "--zone",
        "FOSSE",
        "--tariff",
        "NORMAL",
        "--audience",
        "ADULT",
    ];
    // No price for the combination (DEBOUT is sold at the full tariff only).
    let mut reduced = zone.to_vec();
    reduced[6] = "REDUIT";
    let (code, _) = refused(&sb, &reduced);
    assert_eq!(code, "no-price");

    // Zone exhausted after its one place.
    sell(&sb, &zone[1..]);
    let (code, reason) = refused(&sb, &zone);
    assert_eq!(code, "zone-exhausted");
    assert!(
        reason.contains("1 place(s) sold of the 1 allotted"),
        "{reason}"
    );

    // A performance without a contingent.
    let (code, _) = refused(
        &sb,
        &[
            "sell",
            "--performance",
            "TRAV0117",
            "--seat",
            "PARTERRE:B:1",
            "--tariff",
            "NORMAL",
            "--audience",
            "ADULT",
        ],
    );
    assert_eq!(code, "no-contingent");

    // Refunds: unknown line, refund twice, refund of a refund.
    let (code, _) = refused(&sb, &["refund", "99"]);
    assert_eq!(code, "unknown-line");
    let r = sb.stxd(&["sale", "refund", "1"]);
    r.expect_code(0);
    assert!(
        r.stdout().contains("refunded line 1: line 3"),
        "{}",
        r.stdout()
    );
    let (code, reason) = refused(&sb, &["refund", "1"]);
    assert_eq!(code, "already-refunded");
    assert!(reason.contains("refund line 3"), "{reason}");
    let (code, _) = refused(&sb, &["refund", "3"]);
    assert_eq!(code, "refund-of-refund");
    // Refunded, the seat sells again.
    sell(&sb, &seat("PARTERRE:A:1", "REDUIT", "CHILD")[1..]);

    // Product not validated.
    tourism(&sb)
        .write(|tx| -> Result<(), StoreError> {
            tx.execute_batch("UPDATE product SET state = 'to_validate' WHERE id = 1")?;
            Ok(())
        })
        .unwrap();
    let (code, reason) = refused(&sb, &seat("PARTERRE:A:2", "NORMAL", "ADULT"));
    assert_eq!(code, "not-sellable");
    assert!(reason.contains("not validated"), "{reason}");

    // Refusals wrote no line, only failed runs.
    assert_eq!(query_i64(&sb, "SELECT count(*) FROM sale_line"), 4);
    let failed = tourism(&sb)
        .read(|c| {
            runs::list(
                c,
                &runs::Filter {
                    kind: Some("sale-sell"),
                    status: Some(RunStatus::Failed),
                    ..Default::default()
                },
            )
        })
        .unwrap();
    assert_eq!(failed.len(), 9);
}

#[test]
fn a_product_in_no_sales_profile_is_not_sellable() {
    let sb = Sandbox::new();
    sb.first_use_done();
    apply_contingent(&sb, &sample_contingent()).unwrap();
    tourism(&sb)
        .write(|tx| -> Result<(), StoreError> {
            tx.execute_batch("DELETE FROM sales_profile_product")?;
            Ok(())
        })
        .unwrap();
    let (code, reason) = refused(
        &sb,
        &[
            "sell",
            "--performance",
            "TRAV0115",
            "--seat",
            "PARTERRE:A:1",
            "--tariff",
            "NORMAL",
            "--audience",
            "ADULT",
        ],
    );
    assert_eq!(code, "not-sellable");
    assert!(reason.contains("no sales profile"), "{reason}");
}

#[test]
fn an_older_snapshot_is_ignored_and_logged() {
    let sb = Sandbox::new();
    sb.first_use_done();
    apply_contingent(&sb, &snapshot_1701(2, &[1, 2], 5)).unwrap();
    let (outcome, run) = apply_contingent(&sb, &snapshot_1701(3, &[1, 2, 3], 5)).unwrap();
    assert_eq!(outcome.applied, vec![(id(1701), 3)]);

    let (outcome, run2) = apply_contingent(&sb, &snapshot_1701(2, &[7], 1)).unwrap();
    assert!(outcome.applied.is_empty());
    assert_eq!(outcome.ignored, vec![(id(1701), 2, 3)]);
    let m = run2
        .messages
        .iter()
        .find(|m| m.code == "older-snapshot")
        .expect("logged");
    assert_eq!(m.level, Level::Warning);
    assert_eq!(m.text, "version 2 ignored, version 3 already applied");
    assert_eq!(m.location.as_deref(), Some("performance 1701"));
    // The same version again is not newer either.
    let (outcome, _) = apply_contingent(&sb, &snapshot_1701(3, &[], 0)).unwrap();
    assert_eq!(outcome.ignored, vec![(id(1701), 3, 3)]);

    // Version 3's places are still the ones applied.
    assert_eq!(query_i64(&sb, "SELECT count(*) FROM contingent_seat"), 3);
    assert_eq!(
        query_i64(
            &sb,
            "SELECT version FROM contingent_snapshot WHERE performance = 1"
        ),
        3
    );
    assert_eq!(query_i64(&sb, "SELECT quantity FROM contingent_zone"), 5);
    assert!(run.messages.iter().all(|m| m.code != "older-snapshot"));
}

#[test]
fn a_snapshot_taking_back_sold_places_keeps_them_sold() {
    let sb = Sandbox::new();
    sb.first_use_done();
    apply_contingent(&sb, &snapshot_1701(1, &[1, 2, 3], 3)).unwrap();
    let base: [&'static str; 6] = [
        "--performance",
        "TRAV0115",
        "--tariff",
        "NORMAL",
        "--audience",
        "ADULT",
    ];
    let with = |extra: [&'static str; 2]| -> Vec<&'static str> {
        let mut v = base.to_vec();
        v.extend_from_slice(&extra);
        v
    };
    let a1 = sell(&sb, &with(["--seat", "PARTERRE:A:1"]));
    sell(&sb, &with(["--zone", "FOSSE"]));
    sell(&sb, &with(["--zone", "FOSSE"]));

    // Version 2 takes A1 back and leaves FOSSE one place.
    let (outcome, run) = apply_contingent(&sb, &snapshot_1701(2, &[2, 3], 1)).unwrap();
    assert_eq!(outcome.applied, vec![(id(1701), 2)]);
    // A1, and one FOSSE place above the new quantity.
    assert_eq!(outcome.kept_sold, 2);
    let kept: Vec<_> = run
        .messages
        .iter()
        .filter(|m| m.code == "kept-sold")
        .collect();
    assert_eq!(kept.len(), 2, "{:?}", run.messages);
    assert!(kept.iter().all(|m| m.level == Level::Warning));
    assert!(kept[0].text.contains("1 seat(s)"), "{}", kept[0].text);
    assert!(kept[0].text.contains("PARTERRE A 1"), "{}", kept[0].text);
    assert!(
        kept[1]
            .text
            .contains("zone FOSSE 1 place(s) but 2 are sold"),
        "{}",
        kept[1].text
    );
    // Still sold (an active line), still exported to the manager.
    assert_eq!(
        query_i64(
            &sb,
            &format!("SELECT active FROM sale_line WHERE id = {a1}")
        ),
        1
    );
    let (code, _) = refused(
        &sb,
        &[&["sell"][..], &with(["--seat", "PARTERRE:A:1"])].concat(),
    );
    assert_eq!(code, "seat-sold");
    // Refunded, it is no longer sellable: outside the contingent now.
    sb.stxd(&["sale", "refund", &a1.to_string()]).expect_code(0);
    let (code, _) = refused(
        &sb,
        &[&["sell"][..], &with(["--seat", "PARTERRE:A:1"])].concat(),
    );
    assert_eq!(code, "seat-outside-contingent");
    let (code, _) = refused(&sb, &[&["sell"][..], &with(["--zone", "FOSSE"])].concat());
    assert_eq!(code, "zone-exhausted");

    // Version 3 drops FOSSE: its two places sold stay sold.
    let (outcome, _) = apply_contingent(&sb, &snapshot_1701(3, &[3], 0)).unwrap();
    assert_eq!(outcome.kept_sold, 2);
    assert_eq!(outcome.applied, vec![(id(1701), 3)]);
}

/// A place the distributor cannot take is refused with its line, after
/// earlier lines that named the same block and seat categories were
/// accepted (the import reads each mapping once per file), and the file
/// writes nothing.
#[test]
fn a_place_the_distributor_cannot_take_is_refused_at_its_line_after_good_ones() {
    let sb = Sandbox::new();
    sb.first_use_done();
    let head = "performance;version;type;block;row;seat;zone;quantity;seat_category\n\
                1701;1;PERFORMANCE;;;;;;\n\
                1701;1;SEAT;3301;A;1;;;2001\n\
                1701;1;SEAT;3301;A;2;;;2001\n";
    let cases = [
        (
            "1701;1;SEAT;3301;Z;99;;;2001",
            "unknown-seat",
            "seat 3301 Z 99",
        ),
        (
            "1701;1;SEAT;3301;A;3;;;2004",
            "seat-category-differs",
            "seat 3301 A 3",
        ),
        (
            "1701;1;ZONE;;;;3201;5;2001",
            "seat-category-differs",
            "zone 3201",
        ),
        (
            "1701;1;SEAT;9999;A;1;;;2001",
            "unmapped-block",
            "seat 9999 A 1",
        ),
        ("1701;1;ZONE;;;;9999;5;2004", "unmapped-zone", "zone 9999"),
    ];
    for (bad, code, object) in cases {
        let text = format!("{head}{bad}\n1701;1;SEAT;3301;A;4;;;2001\n");
        let err = apply_contingent(&sb, &text).map(|_| ()).expect_err(bad);
        let DomainError::Content(f) = &err else {
            panic!("{bad}: not a content refusal: {err}");
        };
        assert_eq!(f.code, code, "{bad}: {err}");
        let text = err.to_string();
        for part in ["contingent.csv", "line 5", object] {
            assert!(text.contains(part), "{bad}: {part:?} missing from: {text}");
        }
        assert_eq!(
            query_i64(&sb, "SELECT count(*) FROM contingent_snapshot"),
            0,
            "{bad}: nothing applied"
        );
        assert_eq!(query_i64(&sb, "SELECT count(*) FROM contingent_seat"), 0);
    }
    // The same lines without the bad one apply.
    let (outcome, _) = apply_contingent(&sb, head).expect("the good lines apply");
    assert_eq!(outcome.applied, vec![(id(1701), 1)], "{outcome:?}");
    assert_eq!(query_i64(&sb, "SELECT count(*) FROM contingent_seat"), 2);
}

/// A venue's seat comes back in the snapshot of every performance of a
/// file; the import finds it once and keeps it for the file. Each
/// snapshot must still get the seat its line names, and a line must still
/// be checked against that seat's category, found earlier or not.
#[test]
fn a_seat_named_by_several_performances_is_the_same_local_seat_in_each() {
    let sb = Sandbox::new();
    sb.first_use_done();
    let text = |category_of_a1_in_1702: u32| {
        format!(
            "performance;version;type;block;row;seat;zone;quantity;seat_category\n\
             1701;1;PERFORMANCE;;;;;;\n\
             1701;1;SEAT;3301;A;1;;;2001\n\
             1701;1;SEAT;3301;A;2;;;2001\n\
             1702;1;PERFORMANCE;;;;;;\n\
             1702;1;SEAT;3301;B;1;;;2001\n\
             1702;1;SEAT;3301;A;1;;;{category_of_a1_in_1702}\n\
             1702;1;SEAT;3301;A;2;;;2001\n"
        )
    };
    let err = apply_contingent(&sb, &text(2004)).expect_err("A 1 is not of category 2004");
    let DomainError::Content(f) = &err else {
        panic!("not a content refusal: {err}");
    };
    assert_eq!(f.code, "seat-category-differs", "{err}");
    let said = err.to_string();
    for part in ["contingent.csv", "line 7", "seat 3301 A 1"] {
        assert!(said.contains(part), "{part:?} missing from: {said}");
    }
    assert_eq!(query_i64(&sb, "SELECT count(*) FROM contingent_seat"), 0);

    let (outcome, _) = apply_contingent(&sb, &text(2001)).expect("the file applies");
    assert_eq!(outcome.applied, vec![(id(1701), 1), (id(1702), 1)]);
    assert_eq!(query_i64(&sb, "SELECT count(*) FROM contingent_seat"), 5);
    assert_eq!(
        query_i64(&sb, "SELECT count(DISTINCT seat) FROM contingent_seat"),
        3
    );
    // Every place of both snapshots is the local seat of its labels.
    assert_eq!(
        query_i64(
            &sb,
            "SELECT count(*) FROM contingent_seat c
             JOIN seat s ON s.id = c.seat JOIN seat_row r ON r.id = s.row
             JOIN performance p ON p.id = c.performance
             JOIN mapping m ON m.kind = 'performance' AND m.local_id = p.id
             WHERE (m.manager_id = 1701 AND r.code = 'A' AND s.number IN ('1', '2'))
                OR (m.manager_id = 1702 AND ((r.code = 'A' AND s.number IN ('1', '2'))
                                          OR (r.code = 'B' AND s.number = '1')))"
        ),
        5
    );
}

#[test]
fn a_contingent_for_an_unknown_performance_asks_for_the_catalogue() {
    let sb = Sandbox::new();
    sb.first_use_done();
    let text = "performance;version;type;block;row;seat;zone;quantity;seat_category\n\
                1703;1;PERFORMANCE;;;;;;\n";
    let err = apply_contingent(&sb, text).unwrap_err();
    assert!(
        err.to_string().contains("import the catalogue first"),
        "{err}"
    );
    // Nothing applied.
    assert_eq!(
        query_i64(&sb, "SELECT count(*) FROM contingent_snapshot"),
        0
    );
}

#[test]
fn a_contingent_version_out_of_range_or_far_ahead_is_refused_and_the_performance_stays_open() {
    let sb = Sandbox::new();
    sb.first_use_done();
    // The reader bounds versions: i64::MAX would freeze the performance.
    let frozen = snapshot_1701(i64::MAX as u64, &[1], 0);
    let e = apply_contingent(&sb, &frozen).unwrap_err();
    let DomainError::Format(f) = &e else {
        panic!("expected the reader's refusal, got {e:?}")
    };
    assert_eq!(f.code, "version-out-of-range", "{e}");
    assert_eq!(f.position.to_string(), "line 2, field version");
    assert!(f.problem.contains("1 to 999999999999999"), "{e}");

    apply_contingent(&sb, &snapshot_1701(1, &[1, 2], 0)).unwrap();
    // More than a million versions ahead of the applied one: refused.
    let jump = stxd::domain::selling::MAX_VERSION_JUMP;
    let e = apply_contingent(&sb, &snapshot_1701(1 + jump + 1, &[1], 0)).unwrap_err();
    let DomainError::Content(f) = &e else {
        panic!("expected a content refusal, got {e:?}")
    };
    assert_eq!(f.code, "version-out-of-range", "{e}");
    assert_eq!(f.file, "contingent.csv");
    assert_eq!(f.position.to_string(), "line 2");
    assert!(
        f.problem
            .contains("more than 1000000 ahead of the version applied here (1)"),
        "{e}"
    );
    assert_eq!(
        query_i64(&sb, "SELECT version FROM contingent_snapshot"),
        1,
        "nothing applied"
    );
    // The performance is not frozen: the next real versions apply, up to
    // exactly a million ahead.
    let (out, _) = apply_contingent(&sb, &snapshot_1701(2, &[3], 0)).unwrap();
    assert_eq!(out.applied, vec![(id(1701), 2)]);
    let (out, _) = apply_contingent(&sb, &snapshot_1701(2 + jump, &[4], 0)).unwrap();
    assert_eq!(out.applied, vec![(id(1701), 2 + jump)]);
}
