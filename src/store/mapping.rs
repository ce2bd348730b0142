//! The vocabulary of the mapping table (manager object ↔ distributor object):
//! which kinds of manager object are mapped, and the status of a mapping row.
//!
//! Only the names live here, so every layer spells them the same way; creating
//! pending rows, filling and resolving them is later work of the domain layer.

use std::fmt;

/// The kinds of manager object a distributor maps to its own objects.
///
/// Reference data (season, activity, VAT code, tariff type, audience
/// subcategory, physical seat category: never logical ones), the seat plan
/// (venue, configuration, zone, block, row, seat) and the objects a catalogue
/// import creates at the distributor (performance — the manual's "events" —,
/// logical configuration, rate table, product).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MappingKind {
    Season,
    Activity,
    Performance,
    VatCode,
    TariffType,
    AudienceSubcategory,
    SeatCategory,
    Venue,
    Configuration,
    Zone,
    Block,
    Row,
    Seat,
    LogicalConfiguration,
    RateTable,
    Product,
}

impl MappingKind {
    pub const ALL: [MappingKind; 16] = [
        MappingKind::Season,
        MappingKind::Activity,
        MappingKind::Performance,
        MappingKind::VatCode,
        MappingKind::TariffType,
        MappingKind::AudienceSubcategory,
        MappingKind::SeatCategory,
        MappingKind::Venue,
        MappingKind::Configuration,
        MappingKind::Zone,
        MappingKind::Block,
        MappingKind::Row,
        MappingKind::Seat,
        MappingKind::LogicalConfiguration,
        MappingKind::RateTable,
        MappingKind::Product,
    ];

    /// The spelling stored in `mapping.kind` and used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            MappingKind::Season => "season",
            MappingKind::Activity => "activity",
            MappingKind::Performance => "performance",
            MappingKind::VatCode => "vat_code",
            MappingKind::TariffType => "tariff_type",
            MappingKind::AudienceSubcategory => "audience_subcategory",
            MappingKind::SeatCategory => "seat_category",
            MappingKind::Venue => "venue",
            MappingKind::Configuration => "configuration",
            MappingKind::Zone => "zone",
            MappingKind::Block => "block",
            MappingKind::Row => "row",
            MappingKind::Seat => "seat",
            MappingKind::LogicalConfiguration => "logical_configuration",
            MappingKind::RateTable => "rate_table",
            MappingKind::Product => "product",
        }
    }

    pub fn parse(s: &str) -> Option<MappingKind> {
        MappingKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The distributor's table holding local objects of this kind: the
    /// kind's own name, except rows, which live in `seat_row`.
    pub fn local_table(self) -> &'static str {
        match self {
            MappingKind::Row => "seat_row",
            other => other.as_str(),
        }
    }
}

impl fmt::Display for MappingKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a mapping row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MappingStatus {
    /// Seen in a file, not yet mapped: files that need it are parked.
    Pending,
    /// Mapped to a local object (`local_id`).
    Filled,
    /// Deliberately not mapped: records naming it are skipped, not parked.
    Ignored,
}

impl MappingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MappingStatus::Pending => "pending",
            MappingStatus::Filled => "filled",
            MappingStatus::Ignored => "ignored",
        }
    }

    pub fn parse(s: &str) -> Option<MappingStatus> {
        [
            MappingStatus::Pending,
            MappingStatus::Filled,
            MappingStatus::Ignored,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

impl fmt::Display for MappingStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Role, Store, StoreError};

    #[test]
    fn every_kind_round_trips_and_is_accepted_by_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(&dir.path().join("d.db"), "TOURISM", Role::Distributor).unwrap();
        for (i, k) in MappingKind::ALL.into_iter().enumerate() {
            assert_eq!(MappingKind::parse(k.as_str()), Some(k));
            s.write(|tx| -> Result<(), StoreError> {
                tx.execute(
                    "INSERT INTO mapping (manager, kind, manager_id, manager_code, manager_label,
                         status, first_seen, last_seen)
                     VALUES ('OPERA', ?1, ?2, 'X', 'x', 'pending', 'now', 'now')",
                    (k.as_str(), i as i64 + 1),
                )?;
                Ok(())
            })
            .unwrap();
        }
        assert!(MappingKind::parse("logical_seat_category").is_none());
        let bad = s.write(|tx| -> Result<(), StoreError> {
            tx.execute(
                "INSERT INTO mapping (manager, kind, manager_id, manager_code, manager_label,
                     status, first_seen, last_seen)
                 VALUES ('OPERA', 'season', 99, 'X', 'x', 'filled', 'now', 'now')",
                [],
            )?;
            Ok(())
        });
        assert!(bad.is_err(), "a filled mapping needs its local id");
        for st in [
            MappingStatus::Pending,
            MappingStatus::Filled,
            MappingStatus::Ignored,
        ] {
            assert_eq!(MappingStatus::parse(st.as_str()), Some(st));
        }
    }

    #[test]
    fn every_kind_names_a_local_table_of_the_schema() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("d.db"), "TOURISM", Role::Distributor).unwrap();
        for k in MappingKind::ALL {
            let tables: i64 = s
                .read(|c| {
                    c.query_row(
                        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                        [k.local_table()],
                        |r| r.get(0),
                    )
                    .map_err(StoreError::from)
                })
                .unwrap();
            assert_eq!(tables, 1, "{k}: {}", k.local_table());
        }
        assert_eq!(MappingKind::Row.local_table(), "seat_row");
    }
}
