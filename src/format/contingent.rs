//! `CONTINGENT` payload (CSV): for each performance, a snapshot of the seats
//! the manager has set aside for the distributor, with the snapshot's version.
//!
//! Takes bytes, yields [`Line`]s one at a time; writes them back to the
//! canonical file. A performance's snapshot starts with a `PERFORMANCE` line
//! (so an empty snapshot, "everything taken back", is expressible) followed by
//! its `SEAT` and `ZONE` lines; the reader checks that every line repeats the
//! open performance and version and that a performance appears only once.
//!
//! Columns, `;`-separated, header first (see `samples/README.md`):
//! `performance;version;type;block;row;seat;zone;quantity;seat_category`

use crate::ident::{Code, TechId};

/// The header, in the order the writer emits it.
pub const COLUMNS: [&str; 9] = [
    "performance",
    "version",
    "type",
    "block",
    "row",
    "seat",
    "zone",
    "quantity",
    "seat_category",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// Opens the snapshot of one performance at one version.
    Performance { performance: TechId, version: u64 },
    /// A numbered seat of the snapshot.
    Seat {
        performance: TechId,
        version: u64,
        block: TechId,
        row: Code,
        seat: Code,
        seat_category: TechId,
    },
    /// A quantity of places in an unnumbered zone.
    Zone {
        performance: TechId,
        version: u64,
        zone: TechId,
        quantity: u32,
        seat_category: TechId,
    },
}
