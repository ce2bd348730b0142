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

use crate::ident::{Code, Name, TechId};
use crate::money::Currency;

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
