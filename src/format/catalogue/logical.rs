//! Logical seat categories per seat in a CATALOGUE (version 2): the seat
//! ranges of a logical configuration and the prices of logical seat
//! categories, the reader's checks of them (no overlap, a known logical
//! category whose physical parent the document declares) and the writer's.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Write};

use super::{AMOUNT_MAX, LogicalSeatCategory, Reader, Reference, Writer};
use crate::format::xml::Element;
use crate::format::{FormatError, WriteError};
use crate::ident::{Code, TechId};

/// Version 2: the logical seat category of the seats `from` to `to` of one
/// row of a block, in a logical configuration (the parent). `from` and
/// `to` are seat numbers: both whole numbers (`1`, `12`, no leading zero),
/// `from` ≤ `to`, for the row's seats numbered from `from` to `to`; or one
/// same label (`12bis`) for that seat alone. A seat no range covers sells
/// as its physical seat category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatRange {
    pub logical_configuration: TechId,
    pub block: TechId,
    pub row: Code,
    pub from: Code,
    pub to: Code,
    pub logical_seat_category: TechId,
}

/// The seats a [`SeatRange`] covers in its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Span<'a> {
    /// The seats numbered `lo..=hi` (whole numbers).
    Numbers(u32, u32),
    /// The one seat with this label.
    Label(&'a str),
}

impl Span<'_> {
    /// Whether the seat numbered `number` is in the span.
    pub fn covers(&self, number: &str) -> bool {
        match *self {
            Span::Numbers(lo, hi) => whole_number(number).is_some_and(|n| (lo..=hi).contains(&n)),
            Span::Label(l) => l == number,
        }
    }

    fn overlaps(&self, other: &Span<'_>) -> bool {
        match (*self, *other) {
            (Span::Numbers(a, b), Span::Numbers(c, d)) => a <= d && c <= b,
            (Span::Label(a), Span::Label(b)) => a == b,
            _ => false,
        }
    }
}

/// A seat number that is a whole number without leading zero (`7`, `12`).
pub fn whole_number(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 9 || s.starts_with('0') || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl SeatRange {
    /// The seats it covers, or why `from` and `to` make no range.
    pub fn span(&self) -> Result<Span<'_>, String> {
        let (from, to) = (self.from.as_str(), self.to.as_str());
        match (whole_number(from), whole_number(to)) {
            (Some(lo), Some(hi)) if lo <= hi => Ok(Span::Numbers(lo, hi)),
            (Some(lo), Some(hi)) => Err(format!("expected from ({lo}) not after to ({hi})")),
            _ if from == to => Ok(Span::Label(from)),
            _ => Err(format!(
                "expected two whole seat numbers (from ≤ to) or one same seat label twice, found from {from:?} and to {to:?}"
            )),
        }
    }
}

/// Version 2: a price of a rate table (the parent) for a logical seat
/// category. A seat whose logical configuration gives it a logical seat
/// category is priced by these prices only (the logical category is the
/// priced one); other seats by the physical [`Price`]s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalPrice {
    pub rate_table: TechId,
    pub logical_seat_category: TechId,
    pub tariff_type: TechId,
    pub audience_subcategory: TechId,
    pub amount: i64,
}

/// The most seat ranges one logical configuration may hold (the reader
/// remembers them to refuse overlaps).
pub const MAX_SEAT_RANGES: usize = 100_000;

/// The most seat categories and logical seat categories a document may
/// declare (the reader remembers them to check what ranges and logical
/// prices name).
pub const MAX_DECLARED: usize = 100_000;

/// A seat range read: (from, to, its record).
type RangeSeen = (Code, Code, u64);

/// What the reader remembers to check seat ranges and logical prices: the
/// physical seat categories declared, the logical seat categories (their
/// logical configuration and physical parent), and the seat ranges of the
/// open logical configuration by (block, row): (from, to, record).
#[derive(Debug, Default)]
pub(super) struct Declared {
    pub(super) categories: HashSet<TechId>,
    pub(super) logical: HashMap<TechId, (TechId, TechId)>,
    pub(super) ranges: HashMap<(TechId, Code), Vec<RangeSeen>>,
    pub(super) range_count: usize,
}

impl<R: BufRead> Reader<R> {
    /// A physical seat category, remembered.
    pub(super) fn seat_category(&mut self, el: &Element) -> Result<Reference, FormatError> {
        let r = Self::reference(el)?;
        self.declare(el, |d| d.categories.insert(r.id))?;
        Ok(r)
    }

    /// A logical seat category of the open logical configuration, remembered
    /// with its physical parent.
    pub(super) fn logical_seat_category(
        &mut self,
        el: &Element,
    ) -> Result<LogicalSeatCategory, FormatError> {
        let l = LogicalSeatCategory {
            id: el.tech_id("id")?,
            logical_configuration: Self::parent(el, self.logical_configuration)?,
            code: el.code("code")?,
            name: el.label("name")?,
            seat_category: el.tech_id("seatCategory")?,
        };
        let value = (l.logical_configuration, l.seat_category);
        self.declare(el, |d| d.logical.insert(l.id, value).is_none())?;
        Ok(l)
    }

    /// A logical price of the open rate table, of a known logical category.
    pub(super) fn logical_price(&mut self, el: &Element) -> Result<LogicalPrice, FormatError> {
        let p = LogicalPrice {
            rate_table: Self::parent(el, self.rate_table)?,
            logical_seat_category: el.tech_id("logicalSeatCategory")?,
            tariff_type: el.tech_id("tariffType")?,
            audience_subcategory: el.tech_id("audienceSubcategory")?,
            amount: el.amount("amount")?,
        };
        self.known_logical(el, p.logical_seat_category, None)?;
        Ok(p)
    }

    /// Remembers a declaration (`insert` false: declared twice, which the
    /// importers refuse with both records named; the reader lets it pass).
    pub(super) fn declare(
        &mut self,
        el: &Element,
        insert: impl FnOnce(&mut Declared) -> bool,
    ) -> Result<(), FormatError> {
        if self.logical.categories.len() + self.logical.logical.len() >= MAX_DECLARED {
            return Err(el.error(
                "id",
                "catalogue-too-many-categories",
                format!("expected at most {MAX_DECLARED} seat categories and logical seat categories in one document"),
            ));
        }
        insert(&mut self.logical);
        Ok(())
    }

    /// A logical seat category a range or a logical price names: declared
    /// before it (in logical configuration `lc` for a range), its physical
    /// parent declared in the document's `seatCategory` section.
    fn known_logical(
        &self,
        el: &Element,
        id: TechId,
        lc: Option<TechId>,
    ) -> Result<(), FormatError> {
        let attr = "logicalSeatCategory";
        let Some(&(of, parent)) = self.logical.logical.get(&id) else {
            return Err(el.error(
                attr,
                "logical-category-unknown",
                format!("expected a logical seat category declared before it in the document, found {id}"),
            ));
        };
        if let Some(lc) = lc
            && of != lc
        {
            return Err(el.error(
                attr,
                "logical-category-unknown",
                format!("expected a logical seat category of logical configuration {lc}, found {id} of logical configuration {of}"),
            ));
        }
        if !self.logical.categories.contains(&parent) {
            return Err(el.error(
                attr,
                "logical-category-parent-unknown",
                format!("logical seat category {id} sells physical seat category {parent}, which the document does not declare: expected a <seatCategory id=\"{parent}\"> before it"),
            ));
        }
        Ok(())
    }

    /// A seat range of the open logical configuration: a real range of a
    /// known logical seat category, overlapping no earlier range.
    pub(super) fn seat_range(&mut self, el: &Element) -> Result<SeatRange, FormatError> {
        let lc = Self::parent(el, self.logical_configuration)?;
        let r = SeatRange {
            logical_configuration: lc,
            block: el.tech_id("block")?,
            row: el.code("row")?,
            from: el.code("from")?,
            to: el.code("to")?,
            logical_seat_category: el.tech_id("logicalSeatCategory")?,
        };
        let span = r.span().map_err(|e| el.error("to", "bad-range", e))?;
        self.known_logical(el, r.logical_seat_category, Some(lc))?;
        if self.logical.range_count >= MAX_SEAT_RANGES {
            return Err(el.error(
                "block",
                "catalogue-too-many-ranges",
                format!(
                    "expected at most {MAX_SEAT_RANGES} seat ranges in one logical configuration"
                ),
            ));
        }
        let record = self.records + 1;
        let row = self
            .logical
            .ranges
            .entry((r.block, r.row.clone()))
            .or_default();
        for (from, to, at) in row.iter() {
            let other = SeatRange {
                from: from.clone(),
                to: to.clone(),
                ..r.clone()
            };
            if other.span().is_ok_and(|o| o.overlaps(&span)) {
                return Err(el.error(
                    "from",
                    "seat-range-overlap",
                    format!(
                        "expected each seat in one range of its logical configuration, found block {} row {} seats {}-{} overlapping seats {from}-{to} of record {at}",
                        r.block, r.row, r.from, r.to
                    ),
                ));
            }
        }
        row.push((r.from.clone(), r.to.clone(), record));
        self.logical.range_count += 1;
        Ok(r)
    }
}

impl<W: Write> Writer<W> {
    /// A seat range of the open logical configuration (version 2), a real
    /// range (overlaps are the reader's to refuse).
    pub(super) fn write_seat_range(&mut self, r: &SeatRange) -> Result<(), WriteError> {
        if !self.v2 {
            return Err(WriteError::Invalid(
                "a seat range in a version 1 document".to_owned(),
            ));
        }
        r.span().map_err(|e| {
            WriteError::Invalid(format!(
                "seat range of block {} row {}: {e}",
                r.block, r.row
            ))
        })?;
        self.xml.element(
            "seatRange",
            Some(r.logical_configuration),
            None,
            &[
                &r.block.to_string(),
                r.row.as_str(),
                r.from.as_str(),
                r.to.as_str(),
                &r.logical_seat_category.to_string(),
            ],
        )
    }

    /// A price of the open rate table for a logical seat category (version 2).
    pub(super) fn write_logical_price(&mut self, p: &LogicalPrice) -> Result<(), WriteError> {
        if !self.v2 {
            return Err(WriteError::Invalid(
                "a logical price in a version 1 document".to_owned(),
            ));
        }
        if !(0..=AMOUNT_MAX).contains(&p.amount) {
            return Err(WriteError::Invalid(format!(
                "price amount {} is outside 0..={AMOUNT_MAX}",
                p.amount
            )));
        }
        self.xml.element(
            "logicalPrice",
            Some(p.rate_table),
            None,
            &[
                &p.logical_seat_category.to_string(),
                &p.tariff_type.to_string(),
                &p.audience_subcategory.to_string(),
                &p.amount.to_string(),
            ],
        )
    }
}
