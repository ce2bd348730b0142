//! `SALES` payload (CSV): the distributor's sales and refunds, one line each,
//! plus its acknowledgement of the contingent versions it has applied.
//!
//! Takes bytes, yields [`Line`]s one at a time; writes them back to the
//! canonical file. Every id is the manager's technical id (the distributor
//! translates back through its mapping table before writing). Shape checks
//! only: whether a line may be booked is the domain's business, not this
//! module's.
//!
//! Columns, `;`-separated, header first (see `samples/README.md`):
//! `line;operation;time;order;refund_of;performance;block;row;seat;zone;seat_category;tariff_type;audience_subcategory;amount;currency;vat_code;contingent_version`

use std::fmt;

use crate::ident::{Code, TechId};
use crate::money::Currency;

/// The header, in the order the writer emits it.
pub const COLUMNS: [&str; 17] = [
    "line",
    "operation",
    "time",
    "order",
    "refund_of",
    "performance",
    "block",
    "row",
    "seat",
    "zone",
    "seat_category",
    "tariff_type",
    "audience_subcategory",
    "amount",
    "currency",
    "vat_code",
    "contingent_version",
];

/// The distributor's order reference: 1 to 32 characters among A-Z a-z 0-9
/// `_ - . /`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OrderRef(String);

impl OrderRef {
    pub const MAX: usize = 32;

    pub fn new(s: &str) -> Option<OrderRef> {
        let ok = (1..=Self::MAX).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/'));
        ok.then(|| OrderRef(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for OrderRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Sale,
    Refund,
}

/// Where the ticket sits: a numbered seat or a place in an unnumbered zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Seat {
        block: TechId,
        row: Code,
        seat: Code,
    },
    Zone {
        zone: TechId,
    },
}

/// A sale or a refund. A refund repeats the sold ticket's fields and names the
/// sale line it cancels in `refund_of`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The distributor's line id, unique across all its sales files.
    pub line: u64,
    pub operation: Operation,
    /// When the distributor recorded it, UTC, RFC 3339 with `Z`.
    pub time: time::OffsetDateTime,
    pub order: OrderRef,
    /// Only for refunds: the line id of the sale cancelled.
    pub refund_of: Option<u64>,
    pub performance: TechId,
    pub place: Place,
    pub seat_category: TechId,
    pub tariff_type: TechId,
    pub audience_subcategory: TechId,
    /// Price in minor units of `currency`; never negative, for refunds too.
    pub amount: i64,
    pub currency: Currency,
    pub vat_code: TechId,
}

/// The distributor has applied this contingent version of this performance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    pub performance: TechId,
    pub contingent_version: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Ticket(Ticket),
    Ack(Ack),
}
