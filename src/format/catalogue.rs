//! `CATALOGUE` payload (XML): the manager's reference data and products, as a
//! full snapshot of what one link may sell.
//!
//! Takes bytes, yields [`Item`]s in document order, one at a time; writes the
//! same items back to the canonical document. Parent ids (the logical
//! configuration of a logical seat category, the rate table of a price, the
//! product of a performance reference) are filled in by the reader from the
//! nesting. Shape (see `samples/README.md` for every attribute):
//!
//! ```xml
//! <?xml version="1.0" encoding="UTF-8"?>
//! <catalogue version="1">
//!   <season id="1001" code="S2627" name="Saison 2026-2027" start="2026-09-01" end="2027-07-31"/>
//!   <vatCode id="1101" code="TVA55" name="TVA 5,5 %" rate="550"/>
//!   <tariffType id="1201" code="PLEIN" name="Plein tarif"/>
//!   <audienceSubcategory id="1301" code="ADULTE" name="Adulte"/>
//!   <seatCategory id="2001" code="CAT1" name="Catégorie 1"/>
//!   <activity id="1401" code="TRAVIATA" name="La Traviata" season="1001" vatCode="1101"/>
//!   <logicalConfiguration id="1501" code="TRAV-STD" name="Traviata standard" configuration="3101">
//!     <logicalSeatCategory id="1601" code="L-CAT1" name="Cat. 1" seatCategory="2001"/>
//!   </logicalConfiguration>
//!   <performance id="1701" code="TRAV0115" name="La Traviata 15/01" activity="1401"
//!       start="2027-01-15T20:00:00+01:00" configuration="3101" logicalConfiguration="1501" state="in_operation"/>
//!   <rateTable id="1801" code="TRAV-RT" name="Tarifs Traviata" currency="EUR">
//!     <price seatCategory="2001" tariffType="1201" audienceSubcategory="1301" amount="8500"/>
//!   </rateTable>
//!   <product id="1901" code="TRAV-BIL" name="Billet La Traviata" activity="1401" rateTable="1801">
//!     <performanceRef id="1701"/>
//!   </product>
//! </catalogue>
//! ```

use std::io::{BufRead, Write};

use super::xml::{
    Element, ElementSpec, Schema, XmlReader, XmlWriter, format_date, format_date_time,
};
use super::{FormatError, Limits, WriteError};
use crate::ident::{Code, Name, TechId, shorten};
use crate::money::{AMOUNT_MAX, Currency};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Season {
    pub id: TechId,
    pub code: Code,
    pub name: Name,
    pub start: time::Date,
    pub end: time::Date,
}

/// A VAT code; `rate_bp` in hundredths of a percent (550 = 5.5 %).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VatCode {
    pub id: TechId,
    pub code: Code,
    pub name: Name,
    pub rate_bp: u32,
}

/// A tariff type (full price, reduced…), an audience subcategory (adult,
/// child…) or a physical seat category: the same three fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub id: TechId,
    pub code: Code,
    pub name: Name,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub id: TechId,
    pub code: Code,
    pub name: Name,
    pub season: TechId,
    pub vat_code: TechId,
}

/// Per venue configuration: which seats are sellable, through its logical seat
/// categories.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalConfiguration {
    pub id: TechId,
    pub code: Code,
    pub name: Name,
    /// The physical configuration (from the seat plan).
    pub configuration: TechId,
}

/// A logical seat category: sells the seats of one physical category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalSeatCategory {
    pub id: TechId,
    pub logical_configuration: TechId,
    pub code: Code,
    pub name: Name,
    pub seat_category: TechId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PerformanceState {
    /// Defined, not yet on sale.
    Planned,
    /// On sale (the manual's "en exploitation").
    InOperation,
    /// Sales stopped; kept for history.
    Closed,
    Cancelled,
}

impl PerformanceState {
    pub fn as_str(self) -> &'static str {
        match self {
            PerformanceState::Planned => "planned",
            PerformanceState::InOperation => "in_operation",
            PerformanceState::Closed => "closed",
            PerformanceState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<PerformanceState> {
        [
            PerformanceState::Planned,
            PerformanceState::InOperation,
            PerformanceState::Closed,
            PerformanceState::Cancelled,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Performance {
    pub id: TechId,
    pub code: Code,
    pub name: Name,
    pub activity: TechId,
    /// Local date and time with its UTC offset, RFC 3339, whole seconds.
    pub start: time::OffsetDateTime,
    pub configuration: TechId,
    pub logical_configuration: TechId,
    pub state: PerformanceState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateTable {
    pub id: TechId,
    pub code: Code,
    pub name: Name,
    pub currency: Currency,
}

/// One cell of a rate table: physical seat category × tariff type × audience
/// subcategory → amount in minor units of the table's currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    pub rate_table: TechId,
    pub seat_category: TechId,
    pub tariff_type: TechId,
    pub audience_subcategory: TechId,
    pub amount: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub id: TechId,
    pub code: Code,
    pub name: Name,
    pub activity: TechId,
    pub rate_table: TechId,
}

/// A performance sold by a product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerformanceRef {
    pub product: TechId,
    pub performance: TechId,
}

/// One record of a catalogue, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Season(Season),
    VatCode(VatCode),
    TariffType(Reference),
    AudienceSubcategory(Reference),
    SeatCategory(Reference),
    Activity(Activity),
    LogicalConfiguration(LogicalConfiguration),
    LogicalSeatCategory(LogicalSeatCategory),
    Performance(Performance),
    RateTable(RateTable),
    Price(Price),
    Product(Product),
    PerformanceRef(PerformanceRef),
}

// ---------------------------------------------------------------------------
// Reading and writing.
// ---------------------------------------------------------------------------

/// Elements of a catalogue. Root children come in section order: season,
/// vatCode, tariffType, audienceSubcategory, seatCategory, activity,
/// logicalConfiguration, performance, rateTable, product (several of one
/// kind in a row). Attributes are written in the order listed.
pub static SCHEMA: Schema = Schema {
    root: "catalogue",
    elements: &[
        ElementSpec {
            name: "season",
            parent: None,
            rank: 0,
            attributes: &["id", "code", "name", "start", "end"],
        },
        ElementSpec {
            name: "vatCode",
            parent: None,
            rank: 1,
            attributes: &["id", "code", "name", "rate"],
        },
        ElementSpec {
            name: "tariffType",
            parent: None,
            rank: 2,
            attributes: &["id", "code", "name"],
        },
        ElementSpec {
            name: "audienceSubcategory",
            parent: None,
            rank: 3,
            attributes: &["id", "code", "name"],
        },
        ElementSpec {
            name: "seatCategory",
            parent: None,
            rank: 4,
            attributes: &["id", "code", "name"],
        },
        ElementSpec {
            name: "activity",
            parent: None,
            rank: 5,
            attributes: &["id", "code", "name", "season", "vatCode"],
        },
        ElementSpec {
            name: "logicalConfiguration",
            parent: None,
            rank: 6,
            attributes: &["id", "code", "name", "configuration"],
        },
        ElementSpec {
            name: "logicalSeatCategory",
            parent: Some("logicalConfiguration"),
            rank: 0,
            attributes: &["id", "code", "name", "seatCategory"],
        },
        ElementSpec {
            name: "performance",
            parent: None,
            rank: 7,
            attributes: &[
                "id",
                "code",
                "name",
                "activity",
                "start",
                "configuration",
                "logicalConfiguration",
                "state",
            ],
        },
        ElementSpec {
            name: "rateTable",
            parent: None,
            rank: 8,
            attributes: &["id", "code", "name", "currency"],
        },
        ElementSpec {
            name: "price",
            parent: Some("rateTable"),
            rank: 0,
            attributes: &[
                "seatCategory",
                "tariffType",
                "audienceSubcategory",
                "amount",
            ],
        },
        ElementSpec {
            name: "product",
            parent: None,
            rank: 9,
            attributes: &["id", "code", "name", "activity", "rateTable"],
        },
        ElementSpec {
            name: "performanceRef",
            parent: Some("product"),
            rank: 0,
            attributes: &["id"],
        },
    ],
};

/// Largest VAT rate, in hundredths of a percent (100 %).
pub const VAT_RATE_MAX: u32 = 10_000;

/// Streams the [`Item`]s of a `CATALOGUE` payload in document order, parents
/// filled from the nesting. After the first error, yields `None`.
pub struct Reader<R: BufRead> {
    xml: XmlReader<R>,
    logical_configuration: Option<TechId>,
    rate_table: Option<TechId>,
    product: Option<TechId>,
    records: u64,
    done: bool,
}

impl<R: BufRead> Reader<R> {
    pub fn new(input: R, file: &str, limits: Limits) -> Reader<R> {
        Reader {
            xml: XmlReader::new(input, file, limits, &SCHEMA),
            logical_configuration: None,
            rate_table: None,
            product: None,
            records: 0,
            done: false,
        }
    }

    /// Items yielded so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    fn parent(el: &Element, slot: Option<TechId>) -> Result<TechId, FormatError> {
        // The xml layer checked the nesting, so the parent slot is filled.
        slot.ok_or_else(|| el.error("id", "xml-nesting", "no open parent element"))
    }

    fn reference(el: &Element) -> Result<Reference, FormatError> {
        Ok(Reference {
            id: el.tech_id("id")?,
            code: el.code("code")?,
            name: el.label("name")?,
        })
    }

    fn item(&mut self, el: &Element) -> Result<Item, FormatError> {
        Ok(match el.name() {
            "season" => {
                let s = Season {
                    id: el.tech_id("id")?,
                    code: el.code("code")?,
                    name: el.label("name")?,
                    start: el.date("start")?,
                    end: el.date("end")?,
                };
                if s.end < s.start {
                    return Err(el.error(
                        "end",
                        "bad-date",
                        format!("the season ends ({}) before it starts ({})", s.end, s.start),
                    ));
                }
                Item::Season(s)
            }
            "vatCode" => Item::VatCode(VatCode {
                id: el.tech_id("id")?,
                code: el.code("code")?,
                name: el.label("name")?,
                rate_bp: el.number("rate", 0, VAT_RATE_MAX)?,
            }),
            "tariffType" => Item::TariffType(Self::reference(el)?),
            "audienceSubcategory" => Item::AudienceSubcategory(Self::reference(el)?),
            "seatCategory" => Item::SeatCategory(Self::reference(el)?),
            "activity" => Item::Activity(Activity {
                id: el.tech_id("id")?,
                code: el.code("code")?,
                name: el.label("name")?,
                season: el.tech_id("season")?,
                vat_code: el.tech_id("vatCode")?,
            }),
            "logicalConfiguration" => {
                let l = LogicalConfiguration {
                    id: el.tech_id("id")?,
                    code: el.code("code")?,
                    name: el.label("name")?,
                    configuration: el.tech_id("configuration")?,
                };
                self.logical_configuration = Some(l.id);
                Item::LogicalConfiguration(l)
            }
            "logicalSeatCategory" => Item::LogicalSeatCategory(LogicalSeatCategory {
                id: el.tech_id("id")?,
                logical_configuration: Self::parent(el, self.logical_configuration)?,
                code: el.code("code")?,
                name: el.label("name")?,
                seat_category: el.tech_id("seatCategory")?,
            }),
            "performance" => {
                let state = el.value("state");
                Item::Performance(Performance {
                    id: el.tech_id("id")?,
                    code: el.code("code")?,
                    name: el.label("name")?,
                    activity: el.tech_id("activity")?,
                    start: el.date_time("start")?,
                    configuration: el.tech_id("configuration")?,
                    logical_configuration: el.tech_id("logicalConfiguration")?,
                    state: PerformanceState::parse(state).ok_or_else(|| {
                        el.error(
                            "state",
                            "bad-state",
                            format!(
                                "expected planned, in_operation, closed or cancelled, found {:?}",
                                shorten(state)
                            ),
                        )
                    })?,
                })
            }
            "rateTable" => {
                let r = RateTable {
                    id: el.tech_id("id")?,
                    code: el.code("code")?,
                    name: el.label("name")?,
                    currency: el.currency("currency")?,
                };
                self.rate_table = Some(r.id);
                Item::RateTable(r)
            }
            "price" => Item::Price(Price {
                rate_table: Self::parent(el, self.rate_table)?,
                seat_category: el.tech_id("seatCategory")?,
                tariff_type: el.tech_id("tariffType")?,
                audience_subcategory: el.tech_id("audienceSubcategory")?,
                amount: el.amount("amount")?,
            }),
            "product" => {
                let p = Product {
                    id: el.tech_id("id")?,
                    code: el.code("code")?,
                    name: el.label("name")?,
                    activity: el.tech_id("activity")?,
                    rate_table: el.tech_id("rateTable")?,
                };
                self.product = Some(p.id);
                Item::Product(p)
            }
            "performanceRef" => Item::PerformanceRef(PerformanceRef {
                product: Self::parent(el, self.product)?,
                performance: el.tech_id("id")?,
            }),
            other => {
                return Err(el.error(
                    "id",
                    "xml-unknown-element",
                    format!("no record for element <{other}>"),
                ));
            }
        })
    }
}

impl<R: BufRead> Iterator for Reader<R> {
    type Item = Result<Item, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self
            .xml
            .next_element()
            .and_then(|el| el.map(|el| self.item(&el)).transpose());
        let item = super::stop_after_error(&mut self.done, next);
        self.records += u64::from(matches!(item, Some(Ok(_))));
        item
    }
}

/// Writes the canonical `CATALOGUE` document. Items must come in section
/// order, children right after their parent; anything else is refused with
/// [`WriteError::Invalid`], after which the writer must not be used.
pub struct Writer<W: Write> {
    xml: XmlWriter<W>,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Result<Writer<W>, WriteError> {
        Ok(Writer {
            xml: XmlWriter::new(out, &SCHEMA)?,
        })
    }

    fn reference(&mut self, element: &str, r: &Reference) -> Result<(), WriteError> {
        self.xml.element(
            element,
            None,
            Some(r.id),
            &[&r.id.to_string(), r.code.as_str(), r.name.as_str()],
        )
    }

    /// A season, which must not end before it starts.
    fn season(&mut self, s: &Season) -> Result<(), WriteError> {
        if s.end < s.start {
            return Err(WriteError::Invalid(format!(
                "season {} ends before it starts",
                s.id
            )));
        }
        self.xml.element(
            "season",
            None,
            Some(s.id),
            &[
                &s.id.to_string(),
                s.code.as_str(),
                s.name.as_str(),
                &format_date(s.start)?,
                &format_date(s.end)?,
            ],
        )
    }

    /// A VAT code, its rate at most `VAT_RATE_MAX`.
    fn vat_code(&mut self, v: &VatCode) -> Result<(), WriteError> {
        if v.rate_bp > VAT_RATE_MAX {
            return Err(WriteError::Invalid(format!(
                "vat code {} rate {} is above {VAT_RATE_MAX}",
                v.id, v.rate_bp
            )));
        }
        self.xml.element(
            "vatCode",
            None,
            Some(v.id),
            &[
                &v.id.to_string(),
                v.code.as_str(),
                v.name.as_str(),
                &v.rate_bp.to_string(),
            ],
        )
    }

    /// A price of the open rate table, its amount in `0..=AMOUNT_MAX` (0:
    /// a free tariff).
    fn price(&mut self, p: &Price) -> Result<(), WriteError> {
        if !(0..=AMOUNT_MAX).contains(&p.amount) {
            return Err(WriteError::Invalid(format!(
                "price amount {} is outside 0..={AMOUNT_MAX}",
                p.amount
            )));
        }
        self.xml.element(
            "price",
            Some(p.rate_table),
            None,
            &[
                &p.seat_category.to_string(),
                &p.tariff_type.to_string(),
                &p.audience_subcategory.to_string(),
                &p.amount.to_string(),
            ],
        )
    }

    pub fn write(&mut self, item: &Item) -> Result<(), WriteError> {
        match item {
            Item::Season(s) => self.season(s),
            Item::VatCode(v) => self.vat_code(v),
            Item::TariffType(r) => self.reference("tariffType", r),
            Item::AudienceSubcategory(r) => self.reference("audienceSubcategory", r),
            Item::SeatCategory(r) => self.reference("seatCategory", r),
            Item::Activity(a) => self.xml.element(
                "activity",
                None,
                Some(a.id),
                &[
                    &a.id.to_string(),
                    a.code.as_str(),
                    a.name.as_str(),
                    &a.season.to_string(),
                    &a.vat_code.to_string(),
                ],
            ),
            Item::LogicalConfiguration(l) => self.xml.element(
                "logicalConfiguration",
                None,
                Some(l.id),
                &[
                    &l.id.to_string(),
                    l.code.as_str(),
                    l.name.as_str(),
                    &l.configuration.to_string(),
                ],
            ),
            Item::LogicalSeatCategory(l) => self.xml.element(
                "logicalSeatCategory",
                Some(l.logical_configuration),
                Some(l.id),
                &[
                    &l.id.to_string(),
                    l.code.as_str(),
                    l.name.as_str(),
                    &l.seat_category.to_string(),
                ],
            ),
            Item::Performance(p) => self.xml.element(
                "performance",
                None,
                Some(p.id),
                &[
                    &p.id.to_string(),
                    p.code.as_str(),
                    p.name.as_str(),
                    &p.activity.to_string(),
                    &format_date_time(p.start)?,
                    &p.configuration.to_string(),
                    &p.logical_configuration.to_string(),
                    p.state.as_str(),
                ],
            ),
            Item::RateTable(r) => self.xml.element(
                "rateTable",
                None,
                Some(r.id),
                &[
                    &r.id.to_string(),
                    r.code.as_str(),
                    r.name.as_str(),
                    r.currency.as_str(),
                ],
            ),
            Item::Price(p) => self.price(p),
            Item::Product(p) => self.xml.element(
                "product",
                None,
                Some(p.id),
                &[
                    &p.id.to_string(),
                    p.code.as_str(),
                    p.name.as_str(),
                    &p.activity.to_string(),
                    &p.rate_table.to_string(),
                ],
            ),
            Item::PerformanceRef(r) => self.xml.element(
                "performanceRef",
                Some(r.product),
                None,
                &[&r.performance.to_string()],
            ),
        }
    }

    /// Closes the document; returns the output and the number of records.
    pub fn finish(self) -> Result<(W, u64), WriteError> {
        self.xml.finish()
    }
}

#[cfg(test)]
mod tests {
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
                code: code("S2627"),
                name: name("Saison 2026-2027"),
                start: date!(2026 - 09 - 01),
                end: date!(2027 - 07 - 31),
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
                datetime!(2027-01-15 20:00:00 +01:00),
                PerformanceState::InOperation,
            ),
            (
                1702,
                "TRAV0117",
                "La Traviata – 17 janvier",
                1401,
                datetime!(2027-01-17 15:00:00 +01:00),
                PerformanceState::InOperation,
            ),
            (
                1703,
                "TRAV0120",
                "La Traviata – 20 janvier",
                1401,
                datetime!(2027-01-20 20:00:00 +01:00),
                PerformanceState::Planned,
            ),
            (
                1704,
                "CARM0210",
                "Carmen – 10 février",
                1402,
                datetime!(2027-02-10 20:00:00 +01:00),
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
                code: code("T2627"),
                name: name("Saison culturelle 2026-2027"),
                start: date!(2026 - 09 - 01),
                end: date!(2027 - 07 - 31),
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
        assert!(items.iter().any(
            |i| matches!(i, Item::Price(p) if p.rate_table.get() == 1802 && p.amount == 6500)
        ));
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
        assert!(read_all(season("2026-09-01", "2026-09-01").as_bytes()).is_ok());
        for (s, e) in [
            ("2026-02-30", "2027-01-01"),
            ("2026-9-01", "2027-01-01"),
            ("+2026-09-01", "2027-01-01"),
            ("2026-09-01T00:00:00", "2027-01-01"),
            ("2027-09-01", "2026-09-01"),
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
        let ok = read_all(perf("2027-01-15T20:00:00+01:00", "closed").as_bytes()).unwrap();
        assert!(matches!(&ok[0], Item::Performance(p)
            if p.start == datetime!(2027-01-15 20:00:00 +01:00)
            && p.state == PerformanceState::Closed));
        for start in [
            "2027-01-15T20:00:00",
            "2027-01-15T20:00:00.5+01:00",
            "2027-01-15 20:00",
            "2027-01-15",
        ] {
            let e = read_err(perf(start, "planned").as_bytes());
            assert_eq!(e.code, "bad-date", "{start}");
        }
        assert_eq!(
            read_err(perf("2027-01-15T20:00:00Z", "open").as_bytes()).code,
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
        let items = read_all(doc("A &amp; B &lt;&gt; &quot;x&quot; &apos;&#233;&#xE9;").as_bytes())
            .unwrap();
        assert!(
            matches!(&items[0], Item::TariffType(r) if r.name.as_str() == "A & B <> \"x\" 'éé")
        );
        assert_eq!(read_err(doc("&x;").as_bytes()).code, "xml-entity");
        assert_eq!(read_err(doc("a & b").as_bytes()).code, "xml-entity");
        assert_eq!(read_err(doc("&#0;").as_bytes()).code, "xml-entity");
        assert_eq!(read_err(doc("a < b").as_bytes()).code, "xml-syntax");
        // A character reference to a control character makes a bad name.
        assert_eq!(read_err(doc("a&#1;").as_bytes()).code, "bad-name");
    }
}
