//! Logical seat categories per seat (docs/catalogue-changes.md): the
//! CATALOGUE's `seatRange` and `logicalPrice` (reader refusals with their
//! position, the round trip), a manager store pricing a "reduced view" part
//! of CAT1 in its logical category, and the whole flow through the `stxd`
//! binary on the demo: seats A:1-A:2 of CAT1 sold and booked at the
//! reduced-view price, A:5 at the full one, the reconciliation consistent.

use std::path::PathBuf;

use serde_json::Value;
use stxd::domain::DomainError;
use stxd::domain::reintegration::{Context, SalesImport, SalesOutcome};
use stxd::format::Limits;
use stxd::format::catalogue::{Item, Reader, Writer};
use stxd::format::sales::{Line, Operation, OrderRef, Place, Ticket};
use stxd::ident::{Code, TechId};
use stxd::money::Currency;
use stxd::store::runs;
use stxd::store::{Role, Store};

use crate::util::{Sandbox, repo, rows};

const SAMPLE: &str = "samples/payloads/catalogue-logical.xml";

fn read(doc: &str) -> Result<Vec<Item>, stxd::format::FormatError> {
    Reader::new(doc.as_bytes(), "c.xml", Limits::default()).collect()
}

/// A version 2 document: CAT1 and CAT2, logical configuration 1501 with
/// `children`, then `after` (sections after the logical configurations).
fn doc(children: &str, after: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<catalogue version=\"2\">\n\
         <seatCategory id=\"2001\" code=\"CAT1\" name=\"Cat 1\"/>\n\
         <seatCategory id=\"2002\" code=\"CAT2\" name=\"Cat 2\"/>\n\
         <logicalConfiguration id=\"1501\" code=\"STD\" name=\"Std\" configuration=\"3101\">\n\
         <logicalSeatCategory id=\"1601\" code=\"L1\" name=\"L1\" seatCategory=\"2001\"/>\n\
         <logicalSeatCategory id=\"1605\" code=\"L1RV\" name=\"L1 RV\" seatCategory=\"2001\"/>\n\
         <logicalSeatCategory id=\"1609\" code=\"LX\" name=\"LX\" seatCategory=\"2999\"/>\n\
         {children}\n</logicalConfiguration>\n{after}\n</catalogue>\n"
    )
}

fn refused(doc: &str) -> stxd::format::FormatError {
    match read(doc) {
        Ok(items) => panic!("accepted: {items:?}"),
        Err(e) => e,
    }
}

#[test]
fn the_reader_refuses_overlaps_unknown_categories_and_parents_with_their_position() {
    let range = |b: &str, from: &str, to: &str, l: &str| {
        format!(
            "<seatRange block=\"{b}\" row=\"A\" from=\"{from}\" to=\"{to}\" logicalSeatCategory=\"{l}\"/>"
        )
    };
    // Overlap: seats 2-4 after 1-2 of the same row (line 10: the second range).
    let e = refused(&doc(
        &format!(
            "{}\n{}",
            range("3301", "1", "2", "1605"),
            range("3301", "2", "4", "1601")
        ),
        "",
    ));
    assert_eq!(e.code, "seat-range-overlap", "{e}");
    assert_eq!(e.file, "c.xml");
    assert!(e.to_string().contains("line 10"), "{e}");
    assert!(e.problem.contains("of record 7"), "{e}");
    // Not an overlap: another row, another block, a label.
    let ok = doc(
        &format!(
            "{}\n{}\n{}\n<seatRange block=\"3301\" row=\"B\" from=\"1\" to=\"9\" logicalSeatCategory=\"1605\"/>",
            range("3301", "1", "2", "1605"),
            range("3302", "1", "2", "1605"),
            range("3301", "2bis", "2bis", "1605")
        ),
        "",
    );
    assert_eq!(read(&ok).unwrap().len(), 10);
    // A logical category of no logical configuration, or unknown.
    let e = refused(&doc(&range("3301", "1", "2", "1777"), ""));
    assert_eq!(e.code, "logical-category-unknown", "{e}");
    assert!(e.to_string().contains("line 9"), "{e}");
    assert!(e.problem.contains("logicalSeatCategory"), "{e}");
    // Its physical parent is not declared in the document.
    let e = refused(&doc(&range("3301", "1", "2", "1609"), ""));
    assert_eq!(e.code, "logical-category-parent-unknown", "{e}");
    assert!(e.problem.contains("2999"), "{e}");
    // A range backwards, a range of labels.
    let e = refused(&doc(&range("3301", "4", "2", "1605"), ""));
    assert_eq!(e.code, "bad-range", "{e}");
    let e = refused(&doc(&range("3301", "1", "2bis", "1605"), ""));
    assert_eq!(e.code, "bad-range", "{e}");
    // A logical price of an unknown logical category.
    let e = refused(&doc(
        "",
        "<rateTable id=\"1801\" code=\"RT\" name=\"RT\" currency=\"EUR\" version=\"1\">\n\
         <logicalPrice logicalSeatCategory=\"1777\" tariffType=\"1201\" audienceSubcategory=\"1301\" amount=\"100\"/>\n\
         </rateTable>",
    ));
    assert_eq!(e.code, "logical-category-unknown", "{e}");
    // Version 1 has neither element.
    let v1 = doc(&range("3301", "1", "2", "1605"), "").replace("version=\"2\"", "version=\"1\"");
    assert_eq!(refused(&v1).code, "xml-unknown-element");
}

#[test]
fn the_sample_round_trips_byte_for_byte() {
    let bytes = std::fs::read(repo().join(SAMPLE)).unwrap();
    let items: Vec<Item> = Reader::new(&bytes[..], SAMPLE, Limits::default())
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(items.iter().any(|i| matches!(i, Item::SeatRange(_))));
    assert_eq!(
        items
            .iter()
            .filter(|i| matches!(i, Item::LogicalPrice(_)))
            .count(),
        4
    );
    let mut w = Writer::new_v2(Vec::new()).unwrap();
    for i in &items {
        w.write(i).unwrap();
    }
    let (out, n) = w.finish().unwrap();
    assert_eq!(n, items.len() as u64);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        String::from_utf8(bytes).unwrap()
    );
    // A version 1 writer refuses them.
    let mut w1 = Writer::new(Vec::new()).unwrap();
    let range = items
        .iter()
        .find(|i| matches!(i, Item::SeatRange(_)))
        .unwrap();
    let lc = items
        .iter()
        .find(|i| matches!(i, Item::LogicalConfiguration(_)))
        .unwrap();
    w1.write(&items[0]).unwrap();
    w1.write(lc).unwrap();
    assert!(w1.write(range).is_err());
}

fn id(v: i64) -> TechId {
    TechId::new(v).unwrap()
}

/// A SALE of PARTERRE A`seat` of 1701, CAT1 PLEIN ADULTE at `amount` EUR,
/// priced in version 2 of TRAV-RT (the one with the logical prices).
fn sale(line: u64, seat: &str, amount: i64) -> Ticket {
    Ticket {
        rate_version: Some(2),
        logical_seat_category: None,
        line,
        operation: Operation::Sale,
        time: time::macros::datetime!(2026-12-02 09:00:00 UTC),
        order: OrderRef::new(&format!("T-{line}")).unwrap(),
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
        amount,
        currency: Currency::new("EUR").unwrap(),
        vat_code: id(1101),
    }
}

fn reintegrate(store: &mut Store, tickets: &[Ticket]) -> (SalesOutcome, i64) {
    store
        .write(|tx| {
            let run = runs::start(tx, "import-sales", Some("opera-tourism"), Some("s.csv"))?;
            let ctx = Context {
                link: "opera-tourism",
                login: "TOURISM_OPE@TOURISM",
                distributor: "TOURISM",
                file: "s.csv",
                run,
            };
            let mut import = SalesImport::new(tx, ctx)?;
            for (i, t) in tickets.iter().enumerate() {
                import.line(&Line::Ticket(Box::new(t.clone())), i as u64 + 2)?;
            }
            Ok::<_, DomainError>((import.finish()?, run))
        })
        .unwrap()
}

#[test]
fn the_manager_prices_a_reduced_view_seat_in_its_logical_category() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("OPERA.sqlite"), "OPERA", Role::Manager).unwrap();
    let files: Vec<PathBuf> = [
        "opera/seatplan.xml",
        "opera/catalogue.xml",
        "opera/setup.toml",
    ]
    .iter()
    .map(|f| repo().join("samples").join(f))
    .chain([repo().join(SAMPLE)])
    .collect();
    stxd::app::load(&mut store, &files).unwrap();
    // A range naming a block outside the logical configuration's
    // configuration, or a row the block does not have: refused with the
    // file and the record, nothing loaded.
    for (block, row, code) in [
        ("9999", "A", "unknown-block"),
        ("3301", "ZZ", "unknown-row"),
    ] {
        let bad = dir.path().join("bad.xml");
        let text = std::fs::read_to_string(repo().join(SAMPLE))
            .unwrap()
            .replace(
                "block=\"3301\" row=\"A\"",
                &format!("block=\"{block}\" row=\"{row}\""),
            );
        std::fs::write(&bad, text).unwrap();
        match stxd::app::load(&mut store, &[bad]) {
            Err(DomainError::Content(e)) => {
                assert_eq!(e.code, code, "{e}");
                assert!(e.file.ends_with("bad.xml"), "{e}");
                assert!(e.to_string().contains("record 8"), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }
    store
        .write(|tx| {
            tx.execute_batch(
                "INSERT INTO allotment (link, performance, version, exported)
                   VALUES ('opera-tourism', 1701, 1, 1);
                 INSERT INTO allotment_seat (performance, seat, link, state)
                   SELECT 1701, s.id, 'opera-tourism', 'allotted' FROM seat s
                     JOIN seat_row r ON r.id = s.row
                    WHERE r.block = 3301 AND r.code = 'A' AND s.number IN ('1', '2', '5')",
            )
            .map_err(DomainError::from)
        })
        .unwrap();
    // A:1 claiming the CAT1 full price: refused, naming the logical category.
    let (out, _) = reintegrate(&mut store, &[sale(1, "1", 8500)]);
    assert_eq!((out.booked, out.rejected), (0, 1));
    let (code, reason): (String, String) = store
        .read(|c| {
            c.query_row(
                "SELECT code, reason FROM sales_line WHERE line = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(DomainError::from)
        })
        .unwrap();
    assert_eq!(code, "price-differs");
    assert!(reason.contains("logical seat category 1605"), "{reason}");
    assert!(
        reason.contains("expected 6000 EUR, found 8500 EUR"),
        "{reason}"
    );
    // Fixed, it is booked; A:5 (no logical category) at the full price.
    let (out, _) = reintegrate(&mut store, &[sale(1, "1", 6000), sale(2, "5", 8500)]);
    assert_eq!((out.booked, out.rejected), (2, 0));
    let tickets: Vec<(i64, Option<i64>)> = store
        .read(|c| {
            let mut st =
                c.prepare("SELECT amount, logical_seat_category FROM ticket ORDER BY line")?;
            let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<Result<_, _>>().map_err(DomainError::from)
        })
        .unwrap();
    assert_eq!(tickets, [(6000, Some(1605)), (8500, None)]);
    // A:2 at the full price, and lines naming another logical category
    // than the seat's, are refused.
    let named = |line, seat, l: Option<i64>, amount| Ticket {
        logical_seat_category: l.map(id),
        ..sale(line, seat, amount)
    };
    let (out, _) = reintegrate(
        &mut store,
        &[
            sale(3, "2", 8500),
            named(4, "2", Some(1601), 8500),
            named(5, "2", None, 8500),
        ],
    );
    assert_eq!((out.booked, out.rejected), (0, 3));
    let codes: Vec<String> = store
        .read(|c| {
            let mut st = c.prepare("SELECT code FROM sales_line WHERE line >= 3 ORDER BY line")?;
            let rows = st.query_map([], |r| r.get(0))?;
            rows.collect::<Result<_, _>>().map_err(DomainError::from)
        })
        .unwrap();
    assert_eq!(
        codes,
        ["price-differs", "logical-category-differs", "price-differs"]
    );
    // Named right, it is booked.
    let (out, _) = reintegrate(&mut store, &[named(6, "2", Some(1605), 6000)]);
    assert_eq!((out.booked, out.rejected), (1, 0));
}

#[test]
fn a_sales_line_names_its_logical_category_in_an_optional_column() {
    use stxd::format::sales::{Reader as SalesReader, Writer as SalesWriter};
    let header = "line;operation;time;order;refund_of;performance;block;row;seat;zone;seat_category;tariff_type;audience_subcategory;amount;currency;vat_code;contingent_version;rate_version;logical_seat_category";
    let file = format!(
        "{header}\n\
         1;SALE;2026-12-04T10:15:00Z;T-000001;;1701;3301;A;1;;2001;1201;1301;6000;EUR;1101;;2;1605\n\
         2;SALE;2026-12-04T10:16:00Z;T-000002;;1701;3301;A;5;;2001;1201;1301;8500;EUR;1101;;2;\n\
         ;ACK;;;;1701;;;;;;;;;;;1;;\n"
    );
    // The sample is this file.
    let sample =
        std::fs::read_to_string(repo().join("samples/payloads/sales-logical.csv")).unwrap();
    assert_eq!(sample, file);
    let mut reader = SalesReader::new(file.as_bytes(), "s.csv", Limits::default());
    let lines: Vec<Line> = reader.by_ref().collect::<Result<_, _>>().unwrap();
    assert!(reader.has_logical_column());
    match &lines[0] {
        Line::Ticket(t) => assert_eq!(t.logical_seat_category, Some(id(1605))),
        other => panic!("{other:?}"),
    }
    let mut w = SalesWriter::new_v2_logical(Vec::new()).unwrap();
    for l in &lines {
        w.write(l).unwrap();
    }
    assert_eq!(String::from_utf8(w.finish().unwrap().0).unwrap(), file);
    // Without the column, a line naming one is refused by the writer.
    let mut w = SalesWriter::new_v2(Vec::new()).unwrap();
    assert!(w.write(&lines[0]).is_err());
    // On a zone or an ACK: unexpected-field, with its line.
    for bad in [
        "3;SALE;2026-12-04T10:15:00Z;T-3;;1701;;;;3201;2004;1201;1301;2500;EUR;1101;;2;1605",
        ";ACK;;;;1701;;;;;;;;;;;1;;1605",
    ] {
        let text = format!("{header}\n{bad}\n");
        let e = SalesReader::new(text.as_bytes(), "s.csv", Limits::default())
            .find_map(Result::err)
            .unwrap_or_else(|| panic!("accepted {bad}"));
        assert_eq!(e.code, "unexpected-field", "{e}");
        assert!(
            e.to_string()
                .contains("line 2, field logical_seat_category"),
            "{e}"
        );
    }
}

fn json(sb: &Sandbox, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let run = sb.stxd(&all);
    run.expect_code(0);
    serde_json::from_str(&run.stdout()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout()))
}

#[test]
fn a_reduced_view_seat_is_sold_and_booked_at_its_logical_price() {
    let sb = Sandbox::new();
    sb.first_use_done();
    // The manager makes seats A:1-A:2 of CAT1 "reduced view", sends its
    // catalogue; the distributor sees the change and validates it.
    sb.stxd(&["load", "OPERA", SAMPLE]).expect_code(0);
    sb.stxd(&["export", "catalogue", "--link", "opera-tourism"])
        .expect_code(0);
    let processed = json(&sb, &["process"]);
    assert_eq!(processed[0]["state"], "applied", "{processed}");
    let pending = rows(
        &sb,
        "TOURISM.sqlite",
        "SELECT kind, difference FROM catalogue_change ORDER BY id",
    );
    assert!(
        pending
            .iter()
            .any(|d| d.starts_with("logical_configuration|seat PARTERRE A 1: logical seat category its physical seat category → L-CAT1RV")),
        "{pending:?}"
    );
    assert!(
        pending
            .iter()
            .any(|d| d
                .starts_with("rate_table|logical price L-CAT1RV/PLEIN/ADULTE added: 60.00 EUR")),
        "{pending:?}"
    );
    sb.stxd(&["catalogue", "validate", "--all"]).expect_code(0);
    assert_eq!(
        rows(
            &sb,
            "TOURISM.sqlite",
            "SELECT b.code || ':' || r.code || ':' || s.number, c.code FROM logical_seat l
               JOIN seat s ON s.id = l.seat JOIN seat_row r ON r.id = s.row
               JOIN block b ON b.id = r.block
               JOIN logical_seat_category c ON c.id = l.logical_seat_category ORDER BY s.number"
        ),
        ["PARTERRE:A:1|L-CAT1RV", "PARTERRE:A:2|L-CAT1RV"]
    );

    // First use to the contingent; the distributor sells A:1 and A:5.
    crate::free_tariff::allot(&sb, "1-5");
    let reduced = crate::free_tariff::sell(&sb, "PARTERRE:A:1", "NORMAL", "ADULT");
    assert_eq!(reduced["line"]["amount"], 6000, "{reduced}");
    assert_eq!(
        reduced["line"]["logical_seat_category"], "L-CAT1RV",
        "{reduced}"
    );
    let full = crate::free_tariff::sell(&sb, "PARTERRE:A:5", "NORMAL", "ADULT");
    assert_eq!(full["line"]["amount"], 8500, "{full}");
    assert_eq!(full["line"]["logical_seat_category"], Value::Null, "{full}");
    sb.stxd(&["export", "sales", "--link", "opera-tourism"])
        .expect_code(0);
    let processed = json(&sb, &["process"]);
    assert_eq!(processed[0]["state"], "applied", "{processed}");
    // The SALES file named the logical category of A:1, not of A:5.
    let sent = std::fs::read_to_string(
        sb.path()
            .join("var/exchange/opera-tourism/to-manager/done/opera-tourism.SALES.00000001.csv"),
    )
    .unwrap();
    assert!(
        sent.starts_with("line;")
            && sent
                .lines()
                .next()
                .unwrap()
                .ends_with(";rate_version;logical_seat_category"),
        "{sent}"
    );
    assert!(
        sent.contains(";3301;A;1;;2001;1201;1301;6000;EUR;1101;;2;1605\n"),
        "{sent}"
    );
    assert!(
        sent.contains(";3301;A;5;;2001;1201;1301;8500;EUR;1101;;2;\n"),
        "{sent}"
    );
    // Both booked at their own prices, once.
    assert_eq!(
        rows(
            &sb,
            "OPERA.sqlite",
            "SELECT seat, amount, logical_seat_category, state FROM ticket ORDER BY line"
        ),
        ["50001|6000|1605|valid", "50005|8500|NULL|valid"]
    );
    assert_eq!(
        rows(
            &sb,
            "OPERA.sqlite",
            "SELECT status, count(*) FROM sales_line GROUP BY status"
        ),
        ["booked|2"]
    );
    let report = json(&sb, &["report", "reconcile", "--link", "opera-tourism"]);
    assert_eq!(report["consistent"], true, "{report:#}");

    // The manager extends the reduced view to A:3: a change of the logical
    // configuration, which stops selling its performances until validated.
    let wider = sb.path().join("wider.xml");
    let text = std::fs::read_to_string(repo().join(SAMPLE))
        .unwrap()
        .replace("from=\"1\" to=\"2\"", "from=\"1\" to=\"3\"");
    std::fs::write(&wider, text).unwrap();
    sb.stxd(&["load", "OPERA", wider.to_str().unwrap()])
        .expect_code(0);
    sb.stxd(&["export", "catalogue", "--link", "opera-tourism"])
        .expect_code(0);
    let processed = json(&sb, &["process"]);
    assert_eq!(processed[0]["state"], "applied", "{processed}");
    assert_eq!(
        rows(
            &sb,
            "TOURISM.sqlite",
            "SELECT l.state, c.difference FROM catalogue_change c
               JOIN logical_configuration l ON l.id = c.object
              WHERE c.kind = 'logical_configuration' AND c.difference LIKE 'seat PARTERRE A 3%'"
        ),
        [
            "to_validate|seat PARTERRE A 3: logical seat category its physical seat category → L-CAT1RV"
        ]
    );
    let run = sb.stxd(&[
        "sale",
        "sell",
        "--performance",
        "1",
        "--seat",
        "PARTERRE:A:3",
        "--tariff",
        "NORMAL",
        "--audience",
        "ADULT",
    ]);
    let why = format!("{}{}", run.stdout(), run.stderr());
    assert_eq!(run.code(), 1, "{why}");
    assert!(
        why.contains("its logical configuration TRAV-STD is to_validate"),
        "{why}"
    );
    sb.stxd(&["catalogue", "validate", "--all"]).expect_code(0);
    let third = crate::free_tariff::sell(&sb, "PARTERRE:A:3", "NORMAL", "ADULT");
    assert_eq!(third["line"]["amount"], 6000, "{third}");
}
