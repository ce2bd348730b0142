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
//!   <season id="1001" code="S3637" name="Saison 2036-2037" start="2036-09-01" end="2037-07-31"/>
//!   <vatCode id="1101" code="TVA55" name="TVA 5,5 %" rate="550"/>
//!   <tariffType id="1201" code="PLEIN" name="Plein tarif"/>
//!   <audienceSubcategory id="1301" code="ADULTE" name="Adulte"/>
//!   <seatCategory id="2001" code="CAT1" name="Catégorie 1"/>
//!   <activity id="1401" code="TRAVIATA" name="La Traviata" season="1001" vatCode="1101"/>
//!   <logicalConfiguration id="1501" code="TRAV-STD" name="Traviata standard" configuration="3101">
//!     <logicalSeatCategory id="1601" code="L-CAT1" name="Cat. 1" seatCategory="2001"/>
//!   </logicalConfiguration>
//!   <performance id="1701" code="TRAV0115" name="La Traviata 15/01" activity="1401"
//!       start="2037-01-15T20:00:00+01:00" configuration="3101" logicalConfiguration="1501" state="in_operation"/>
//!   <rateTable id="1801" code="TRAV-RT" name="Tarifs Traviata" currency="EUR">
//!     <price seatCategory="2001" tariffType="1201" audienceSubcategory="1301" amount="8500"/>
//!   </rateTable>
//!   <product id="1901" code="TRAV-BIL" name="Billet La Traviata" activity="1401" rateTable="1801">
//!     <performanceRef id="1701"/>
//!   </product>
//! </catalogue>
//! ```
//!
//! Version 2 (`version="2"`) adds each rate table's `version`, and two
//! optional elements for logical seat categories per seat (module
//! `logical`): `seatRange` in a logical configuration and `logicalPrice` in
//! a rate table.

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
    /// The version of its prices (format version 2: required, 1 to
    /// [`RATE_VERSION_MAX`]); `None` in a version 1 document.
    pub version: Option<u32>,
}

/// The largest rate table version.
pub const RATE_VERSION_MAX: u32 = 999_999_999;

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
    SeatRange(SeatRange),
    Performance(Performance),
    RateTable(RateTable),
    Price(Price),
    LogicalPrice(LogicalPrice),
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
    version: "1",
    elements: &ELEMENTS_V1,
    next: Some(&SCHEMA_V2),
};

/// Version 2: each `rateTable` carries the `version` of its prices; a
/// logical configuration may give seats logical seat categories
/// (`seatRange`) and a rate table price them (`logicalPrice`).
pub static SCHEMA_V2: Schema = Schema {
    root: "catalogue",
    version: "2",
    elements: &ELEMENTS_V2,
    next: None,
};

const ELEMENTS_V1: [ElementSpec; 13] = [
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
];

static ELEMENTS_V2: [ElementSpec; 15] = {
    let [
        season,
        vat,
        tariff,
        audience,
        category,
        activity,
        lc,
        lsc,
        perf,
        _,
        price,
        product,
        pref,
    ] = ELEMENTS_V1;
    [
        season,
        vat,
        tariff,
        audience,
        category,
        activity,
        lc,
        lsc,
        ElementSpec {
            name: "seatRange",
            parent: Some("logicalConfiguration"),
            rank: 1,
            attributes: &["block", "row", "from", "to", "logicalSeatCategory"],
        },
        perf,
        ElementSpec {
            name: "rateTable",
            parent: None,
            rank: 8,
            attributes: &["id", "code", "name", "currency", "version"],
        },
        price,
        ElementSpec {
            name: "logicalPrice",
            parent: Some("rateTable"),
            rank: 1,
            attributes: &[
                "logicalSeatCategory",
                "tariffType",
                "audienceSubcategory",
                "amount",
            ],
        },
        product,
        pref,
    ]
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
    logical: Declared,
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
            logical: Declared::default(),
        }
    }

    /// Items yielded so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The document's format version (`"1"`, `"2"`), once its root is read.
    pub fn version(&self) -> &'static str {
        self.xml.version()
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
            "seatCategory" => Item::SeatCategory(self.seat_category(el)?),
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
                self.logical.ranges.clear();
                self.logical.range_count = 0;
                Item::LogicalConfiguration(l)
            }
            "logicalSeatCategory" => Item::LogicalSeatCategory(self.logical_seat_category(el)?),
            "seatRange" => Item::SeatRange(self.seat_range(el)?),
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
                    version: match self.xml.version() {
                        "1" => None,
                        _ => Some(el.number("version", 1, RATE_VERSION_MAX)?),
                    },
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
            "logicalPrice" => Item::LogicalPrice(self.logical_price(el)?),
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
        let next = XmlReader::next_record(self, |r| &mut r.xml, Self::item);
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
    v2: bool,
}

impl<W: Write> Writer<W> {
    /// A version 1 document (no rate table versions).
    pub fn new(out: W) -> Result<Writer<W>, WriteError> {
        Ok(Writer {
            xml: XmlWriter::new(out, &SCHEMA)?,
            v2: false,
        })
    }

    /// A version 2 document: every rate table must carry its version.
    pub fn new_v2(out: W) -> Result<Writer<W>, WriteError> {
        Ok(Writer {
            xml: XmlWriter::new(out, &SCHEMA_V2)?,
            v2: true,
        })
    }

    fn rate_table(&mut self, r: &RateTable) -> Result<(), WriteError> {
        let id = r.id.to_string();
        let mut values = vec![
            id.as_str(),
            r.code.as_str(),
            r.name.as_str(),
            r.currency.as_str(),
        ];
        let version = r.version.map(|v| v.to_string());
        match (self.v2, &version) {
            (true, Some(v)) if (1..=RATE_VERSION_MAX).contains(&r.version.unwrap_or(0)) => {
                values.push(v);
            }
            (false, None) => {}
            _ => {
                return Err(WriteError::Invalid(format!(
                    "rate table {}: version {:?} in a version {} document (version 1 has none, version 2 needs 1 to {RATE_VERSION_MAX})",
                    r.id,
                    r.version,
                    if self.v2 { 2 } else { 1 }
                )));
            }
        }
        self.xml.element("rateTable", None, Some(r.id), &values)
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
            Item::SeatRange(r) => self.write_seat_range(r),
            Item::RateTable(r) => self.rate_table(r),
            Item::Price(p) => self.price(p),
            Item::LogicalPrice(p) => self.write_logical_price(p),
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

mod logical;
use logical::Declared;
pub use logical::{LogicalPrice, MAX_DECLARED, MAX_SEAT_RANGES, SeatRange, Span, whole_number};

#[cfg(test)]
mod tests;
