//! The catalogue reader's and writer's unit tests.

use super::*;
use time::macros::{date, datetime};

fn id(v: i64) -> TechId {
    TechId::new(v).unwrap()
}

fn reference(i: i64, c: &str, n: &str) -> Reference {
    Reference {
        id: id(i),
        code: Code::new(c).unwrap(),
        name: Name::new(n).unwrap(),
    }
}

fn code(s: &str) -> Code {
    Code::new(s).unwrap()
}

fn name(s: &str) -> Name {
    Name::new(s).unwrap()
}

/// All of OPERA's catalogue as the common brief describes it.
fn opera_items() -> Vec<Item> {
    let mut items = opera_references();
    opera_performances(&mut items);
    opera_rates_and_products(&mut items);
    items
}

/// OPERA's season, VAT code, tariff types, audience subcategories, seat
/// categories and activities.
fn opera_references() -> Vec<Item> {
    let mut items = vec![
        Item::Season(Season {
            id: id(1001),
            code: code("S3637"),
            name: name("Saison 2036-2037"),
            start: date!(2036 - 09 - 01),
            end: date!(2037 - 07 - 31),
        }),
        Item::VatCode(VatCode {
            id: id(1101),
            code: code("TVA55"),
            name: name("TVA 5,5 %"),
            rate_bp: 550,
        }),
    ];
    for (i, c, n) in [
        (1201, "PLEIN", "Plein tarif"),
        (1202, "REDUIT", "Tarif réduit"),
        (1203, "GROUPE", "Tarif groupe"),
    ] {
        items.push(Item::TariffType(reference(i, c, n)));
    }
    for (i, c, n) in [
        (1301, "ADULTE", "Adulte"),
        (1302, "ENFANT", "Enfant"),
        (1303, "ETUDIANT", "Étudiant"),
        (1304, "SENIOR", "Senior"),
    ] {
        items.push(Item::AudienceSubcategory(reference(i, c, n)));
    }
    for (i, c, n) in [
        (2001, "CAT1", "Catégorie 1"),
        (2002, "CAT2", "Catégorie 2"),
        (2003, "CAT3", "Catégorie 3"),
        (2004, "DEBOUT", "Debout"),
    ] {
        items.push(Item::SeatCategory(reference(i, c, n)));
    }
    for (i, c, n) in [
        (1401, "TRAVIATA", "La Traviata"),
        (1402, "CARMEN", "Carmen"),
    ] {
        items.push(Item::Activity(Activity {
            id: id(i),
            code: code(c),
            name: name(n),
            season: id(1001),
            vat_code: id(1101),
        }));
    }
    items
}

/// OPERA's logical configuration, its seat categories and the
/// performances.
fn opera_performances(items: &mut Vec<Item>) {
    items.push(Item::LogicalConfiguration(LogicalConfiguration {
        id: id(1501),
        code: code("TRAV-STD"),
        name: name("Traviata standard"),
        configuration: id(3101),
    }));
    for (i, c, n, physical) in [
        (1601, "L-CAT1", "Catégorie 1", 2001),
        (1602, "L-CAT2", "Catégorie 2", 2002),
        (1603, "L-CAT3", "Catégorie 3", 2003),
        (1604, "L-DEBOUT", "Debout", 2004),
    ] {
        items.push(Item::LogicalSeatCategory(LogicalSeatCategory {
            id: id(i),
            logical_configuration: id(1501),
            code: code(c),
            name: name(n),
            seat_category: id(physical),
        }));
    }
    for (i, c, n, activity, start, state) in [
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
        items.push(Item::Performance(Performance {
            id: id(i),
            code: code(c),
            name: name(n),
            activity: id(activity),
            start,
            configuration: id(3101),
            logical_configuration: id(1501),
            state,
        }));
    }
}

/// OPERA's rate tables with their prices, and the products with the
/// performances they sell.
fn opera_rates_and_products(items: &mut Vec<Item>) {
    let eur = Currency::new("EUR").unwrap();
    let price = |table: i64, cat: i64, tariff: i64, audience: i64, amount: i64| {
        Item::Price(Price {
            rate_table: id(table),
            seat_category: id(cat),
            tariff_type: id(tariff),
            audience_subcategory: id(audience),
            amount,
        })
    };
    items.push(Item::RateTable(RateTable {
        version: None,
        id: id(1801),
        code: code("TRAV-RT"),
        name: name("Tarifs La Traviata"),
        currency: eur,
    }));
    for (cat, amounts) in [
        (2001, [8500, 4250, 6500, 3250]),
        (2002, [6000, 3000, 4500, 2250]),
        (2003, [3500, 1750, 2500, 1250]),
    ] {
        let cells = [(1201, 1301), (1201, 1302), (1202, 1301), (1202, 1302)];
        for ((tariff, audience), amount) in cells.into_iter().zip(amounts) {
            items.push(price(1801, cat, tariff, audience, amount));
        }
    }
    items.push(price(1801, 2004, 1201, 1301, 2500));
    items.push(price(1801, 2004, 1201, 1302, 1250));
    items.push(price(1801, 2001, 1202, 1303, 5000));
    items.push(price(1801, 2002, 1202, 1303, 3500));
    items.push(Item::RateTable(RateTable {
        version: None,
        id: id(1802),
        code: code("CARM-RT"),
        name: name("Tarifs Carmen"),
        currency: eur,
    }));
    items.push(price(1802, 2001, 1201, 1301, 9000));
    items.push(price(1802, 2002, 1201, 1301, 6500));
    for (i, c, n, activity, table, performances) in [
        (
            1901,
            "TRAV-BIL",
            "Billet La Traviata",
            1401,
            1801,
            &[1701, 1702, 1703][..],
        ),
        (1902, "CARM-BIL", "Billet Carmen", 1402, 1802, &[1704][..]),
    ] {
        items.push(Item::Product(Product {
            id: id(i),
            code: code(c),
            name: name(n),
            activity: id(activity),
            rate_table: id(table),
        }));
        for p in performances {
            items.push(Item::PerformanceRef(PerformanceRef {
                product: id(i),
                performance: id(*p),
            }));
        }
    }
}

/// TOURISM's own reference data.
fn tourism_items() -> Vec<Item> {
    let mut items = vec![
        Item::Season(Season {
            id: id(7001),
            code: code("T3637"),
            name: name("Saison culturelle 2036-2037"),
            start: date!(2036 - 09 - 01),
            end: date!(2037 - 07 - 31),
        }),
        Item::VatCode(VatCode {
            id: id(7201),
            code: code("TVA-R"),
            name: name("TVA réduite"),
            rate_bp: 550,
        }),
        Item::TariffType(reference(7301, "NORMAL", "Normal")),
        Item::TariffType(reference(7302, "REDUIT", "Réduit")),
        Item::AudienceSubcategory(reference(7401, "ADULT", "Adulte")),
        Item::AudienceSubcategory(reference(7402, "CHILD", "Enfant")),
    ];
    for (i, c, n) in [
        (7501, "PREM", "Première"),
        (7502, "SECONDE", "Seconde"),
        (7503, "TROIS", "Troisième"),
        (7504, "DEBOUT", "Debout"),
    ] {
        items.push(Item::SeatCategory(reference(i, c, n)));
    }
    items.push(Item::Activity(Activity {
        id: id(7101),
        code: code("OPERA-TR"),
        name: name("Opéra – La Traviata"),
        season: id(7001),
        vat_code: id(7201),
    }));
    items
}

fn write_all(items: &[Item]) -> Vec<u8> {
    let mut w = Writer::new(Vec::new()).unwrap();
    for item in items {
        w.write(item).unwrap();
    }
    let (out, n) = w.finish().unwrap();
    assert_eq!(n, items.len() as u64);
    out
}

fn read_all(bytes: &[u8]) -> Result<Vec<Item>, FormatError> {
    Reader::new(bytes, "test.xml", Limits::default()).collect()
}

fn read_err(bytes: &[u8]) -> FormatError {
    Reader::new(bytes, "test.xml", Limits::default())
        .find_map(Result::err)
        .expect("the document must be refused")
}

fn check_sample(path: &str, items: &[Item]) {
    let bytes = write_all(items);
    if std::env::var_os("STXD_WRITE_SAMPLES").is_some() {
        std::fs::write(path, &bytes).unwrap();
    }
    let committed = std::fs::read(path).unwrap();
    assert!(committed == bytes, "{path} is stale");
    assert_eq!(read_all(&bytes).unwrap(), items);
}

#[test]
fn opera_sample_is_the_canonical_output_of_the_brief_catalogue() {
    let items = opera_items();
    let prices = items.iter().filter(|i| matches!(i, Item::Price(_))).count();
    assert_eq!(prices, 12 + 2 + 2 + 2);
    check_sample(
        concat!(env!("CARGO_MANIFEST_DIR"), "/samples/opera/catalogue.xml"),
        &items,
    );
}

#[test]
fn tourism_sample_is_the_canonical_output_of_its_reference_data() {
    check_sample(
        concat!(env!("CARGO_MANIFEST_DIR"), "/samples/tourism/reference.xml"),
        &tourism_items(),
    );
}

#[test]
fn parents_come_from_the_nesting() {
    let items = read_all(&write_all(&opera_items())).unwrap();
    let refs: Vec<(i64, i64)> = items
        .iter()
        .filter_map(|i| match i {
            Item::PerformanceRef(r) => Some((r.product.get(), r.performance.get())),
            _ => None,
        })
        .collect();
    assert_eq!(
        refs,
        [(1901, 1701), (1901, 1702), (1901, 1703), (1902, 1704)]
    );
    assert!(
        items
            .iter()
            .any(|i| matches!(i, Item::Price(p) if p.rate_table.get() == 1802 && p.amount == 6500))
    );
}

#[test]
fn writer_enforces_section_order_and_values() {
    let items = opera_items();
    let mut w = Writer::new(Vec::new()).unwrap();
    w.write(&items[1]).unwrap(); // vat code
    assert!(matches!(w.write(&items[0]), Err(WriteError::Invalid(_)))); // season after it
    let mut w = Writer::new(Vec::new()).unwrap();
    let price = |amount| {
        Item::Price(Price {
            rate_table: id(1801),
            seat_category: id(2001),
            tariff_type: id(1201),
            audience_subcategory: id(1301),
            amount,
        })
    };
    w.write(&Item::RateTable(RateTable {
        version: None,
        id: id(1801),
        code: code("T"),
        name: name("T"),
        currency: Currency::new("EUR").unwrap(),
    }))
    .unwrap();
    // A free tariff is written; a negative amount is not.
    w.write(&price(0)).unwrap();
    assert!(matches!(w.write(&price(-1)), Err(WriteError::Invalid(_))));
    let mut w = Writer::new(Vec::new()).unwrap();
    let mut p = match &items[22] {
        Item::Performance(p) => p.clone(),
        other => panic!("{other:?}"),
    };
    p.start += time::Duration::milliseconds(500);
    assert!(matches!(
        w.write(&Item::Performance(p)),
        Err(WriteError::Invalid(_))
    ));
}

#[test]
fn attribute_values_are_checked() {
    let doc = |attrs: &str| {
        format!(
            "<?xml version=\"1.0\"?>\n<catalogue version=\"1\">\n  \
             <rateTable id=\"1\" code=\"T\" name=\"T\" currency=\"EUR\">\n    \
             <price seatCategory=\"1\" tariffType=\"1\" audienceSubcategory=\"1\" {attrs}/>\n  \
             </rateTable>\n</catalogue>\n"
        )
    };
    for (amount, code) in [
        ("-100", "money-negative"),
        ("NaN", "money-not-digits"),
        ("1e309", "money-exponent"),
        ("45.50", "money-decimals"),
        ("99999999999999999999", "money-too-large"),
    ] {
        let e = read_err(doc(&format!("amount=\"{amount}\"")).as_bytes());
        assert_eq!(e.code, code, "{amount}");
        assert_eq!(e.position.to_string(), "line 4 (byte 104)");
        assert!(e.problem.contains("<price> attribute amount"), "{e}");
    }
    // A free tariff (invitations) reads as an amount of 0.
    let free = read_all(doc("amount=\"0\"").as_bytes()).unwrap();
    assert!(
        free.iter()
            .any(|i| matches!(i, Item::Price(p) if p.amount == 0)),
        "{free:?}"
    );
    let season = |start: &str, end: &str| {
        format!(
            "<?xml version=\"1.0\"?><catalogue version=\"1\"><season id=\"1\" code=\"S\" \
             name=\"S\" start=\"{start}\" end=\"{end}\"/></catalogue>"
        )
    };
    assert!(read_all(season("2036-09-01", "2036-09-01").as_bytes()).is_ok());
    for (s, e) in [
        ("2036-02-30", "2037-01-01"),
        ("2036-9-01", "2037-01-01"),
        ("+2036-09-01", "2037-01-01"),
        ("2036-09-01T00:00:00", "2037-01-01"),
        ("2037-09-01", "2036-09-01"),
    ] {
        assert_eq!(
            read_err(season(s, e).as_bytes()).code,
            "bad-date",
            "{s} {e}"
        );
    }
    let perf = |start: &str, state: &str| {
        format!(
            "<?xml version=\"1.0\"?><catalogue version=\"1\"><performance id=\"1\" code=\"P\" \
             name=\"P\" activity=\"2\" start=\"{start}\" configuration=\"3\" \
             logicalConfiguration=\"4\" state=\"{state}\"/></catalogue>"
        )
    };
    let ok = read_all(perf("2037-01-15T20:00:00+01:00", "closed").as_bytes()).unwrap();
    assert!(matches!(&ok[0], Item::Performance(p)
        if p.start == datetime!(2037-01-15 20:00:00 +01:00)
        && p.state == PerformanceState::Closed));
    for start in [
        "2037-01-15T20:00:00",
        "2037-01-15T20:00:00.5+01:00",
        "2037-01-15 20:00",
        "2037-01-15",
    ] {
        let e = read_err(perf(start, "planned").as_bytes());
        assert_eq!(e.code, "bad-date", "{start}");
    }
    assert_eq!(
        read_err(perf("2037-01-15T20:00:00Z", "open").as_bytes()).code,
        "bad-state"
    );
    let vat = |rate: &str| {
        format!(
            "<?xml version=\"1.0\"?><catalogue version=\"1\"><vatCode id=\"1\" code=\"V\" \
             name=\"V\" rate=\"{rate}\"/></catalogue>"
        )
    };
    assert!(read_all(vat("0").as_bytes()).is_ok());
    for rate in ["10001", "-1", "05", "5.5", "", "99999999999999999999"] {
        assert_eq!(read_err(vat(rate).as_bytes()).code, "bad-number", "{rate}");
    }
}

#[test]
fn undeclared_and_predefined_references_in_attributes() {
    let doc = |n: &str| {
        format!(
            "<?xml version=\"1.0\"?><catalogue version=\"1\"><tariffType id=\"1\" code=\"T\" \
             name=\"{n}\"/></catalogue>"
        )
    };
    let items =
        read_all(doc("A &amp; B &lt;&gt; &quot;x&quot; &apos;&#233;&#xE9;").as_bytes()).unwrap();
    assert!(matches!(&items[0], Item::TariffType(r) if r.name.as_str() == "A & B <> \"x\" 'éé"));
    assert_eq!(read_err(doc("&x;").as_bytes()).code, "xml-entity");
    assert_eq!(read_err(doc("a & b").as_bytes()).code, "xml-entity");
    assert_eq!(read_err(doc("&#0;").as_bytes()).code, "xml-entity");
    assert_eq!(read_err(doc("a < b").as_bytes()).code, "xml-syntax");
    // A character reference to a control character makes a bad name.
    assert_eq!(read_err(doc("a&#1;").as_bytes()).code, "bad-name");
}
