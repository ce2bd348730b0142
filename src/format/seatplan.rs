//! `SEATPLAN` payload (XML): the manager's physical seat plans.
//!
//! Takes bytes, yields [`Item`]s in document order, one at a time; writes the
//! same items back to the canonical document. Parent ids are filled in by the
//! reader from the nesting, so a consumer never tracks the tree itself.
//! Shape (see `samples/README.md` for every attribute):
//!
//! ```xml
//! <?xml version="1.0" encoding="UTF-8"?>
//! <seatplan version="1">
//!   <seatCategory id="2001" code="CAT1" name="Catégorie 1"/>
//!   <venue id="3001" code="GTHEATRE" name="Grand Théâtre">
//!     <configuration id="3101" code="STD" name="Standard">
//!       <zone id="3201" code="FOSSE" name="Fosse debout" seatCategory="2004" capacity="150"/>
//!       <block id="3301" code="PARTERRE" name="Parterre">
//!         <row id="3401" code="A">
//!           <seat id="3501" number="1" seatCategory="2001"/>
//! ```

use crate::ident::{Code, Name, TechId};

/// A physical seat category (the manual: map these, never the logical ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatCategory {
    pub id: TechId,
    pub code: Code,
    pub name: Name,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Venue {
    pub id: TechId,
    pub code: Code,
    pub name: Name,
}

/// A physical configuration of a venue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configuration {
    pub id: TechId,
    pub venue: TechId,
    pub code: Code,
    pub name: Name,
}

/// An unnumbered area sold by quantity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    pub id: TechId,
    pub configuration: TechId,
    pub code: Code,
    pub name: Name,
    pub seat_category: TechId,
    pub capacity: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub id: TechId,
    pub configuration: TechId,
    pub code: Code,
    pub name: Name,
}

/// A row of a block; `code` is its label (`A`, `12`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub id: TechId,
    pub block: TechId,
    pub code: Code,
}

/// A numbered seat; `number` is its label within the row (`1`, `12bis`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seat {
    pub id: TechId,
    pub row: TechId,
    pub number: Code,
    pub seat_category: TechId,
}

/// One record of a seat plan, in document order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    SeatCategory(SeatCategory),
    Venue(Venue),
    Configuration(Configuration),
    Zone(Zone),
    Block(Block),
    Row(Row),
    Seat(Seat),
}
