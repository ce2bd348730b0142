//! The mapping table's rules, at the distributor: which local object stands
//! for a manager's object.
//!
//! Takes the manager objects a file names and returns what they map to
//! ([`Resolved`]). The first time a manager object is seen without a mapping,
//! a *pending* row is created with the manager's id, code and name as its
//! label, first and last seen and the file it was first seen in (the manual:
//! "the rows are initialised on the first calls"); every later sighting
//! refreshes the label and last seen, so a renamed manager object shows its
//! new name. Objects the distributor creates from the manager's own (seat
//! plan objects, performances, logical configurations, rate tables, products)
//! are mapped automatically ([`fill_auto`]). Ops fill or ignore the rest.
//! This module never creates catalogue objects; the import does.

use rusqlite::{OptionalExtension, Transaction};

use super::DomainError;
use crate::ident::{Code, TechId};
use crate::store::mapping::{MappingKind, MappingStatus};

/// What a manager object maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolved {
    /// The local object's id.
    Local(i64),
    /// Ops chose not to map it: records naming it are skipped.
    Ignored,
    /// Not mapped yet: a file that needs it is parked.
    Pending,
    /// Mapped to a local object that no longer exists: treated as pending
    /// until ops fix it.
    Broken(i64),
}

/// A manager object named by a file.
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    /// The external manager's code (its institution code).
    pub manager: &'a str,
    pub kind: MappingKind,
    pub manager_id: TechId,
    pub code: &'a Code,
    /// The manager's name for it, kept as the row's label.
    pub label: &'a str,
    /// The file it was seen in.
    pub file: &'a str,
}

/// The distributor's table holding objects of a mapping kind.
pub fn local_table(kind: MappingKind) -> &'static str {
    match kind {
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
        MappingKind::Row => "seat_row",
        MappingKind::Seat => "seat",
        MappingKind::LogicalConfiguration => "logical_configuration",
        MappingKind::RateTable => "rate_table",
        MappingKind::Product => "product",
    }
}

/// The kinds ops map by hand (the manual's list); the others are filled by
/// the imports.
pub fn is_mapped_by_hand(kind: MappingKind) -> bool {
    matches!(
        kind,
        MappingKind::Season
            | MappingKind::Activity
            | MappingKind::VatCode
            | MappingKind::TariffType
            | MappingKind::SeatCategory
            | MappingKind::AudienceSubcategory
    )
}

/// Parses a mapping kind as ops type it, explaining the refusals the manual
/// calls for.
pub fn parse_kind(s: &str) -> Result<MappingKind, DomainError> {
    if let Some(kind) = MappingKind::parse(s) {
        return Ok(kind);
    }
    let problem = if s.contains("logical") && s.contains("seat") {
        "logical seat categories are never mapped (the manual: map the physical seat categories, not the logical ones); map kind seat_category instead".to_owned()
    } else {
        let all: Vec<_> = MappingKind::ALL.iter().map(|k| k.as_str()).collect();
        format!("expected a mapping kind among {}", all.join(", "))
    };
    Err(DomainError::Invalid {
        object: format!("mapping kind {s:?}"),
        problem,
    })
}

/// Records a sighting of a manager object and returns its mapping. Creates a
/// pending row the first time; refreshes the label and last seen afterwards.
pub fn resolve(tx: &Transaction<'_>, seen: &Seen<'_>) -> Result<Resolved, DomainError> {
    let now = crate::store::now();
    tx.prepare_cached(
        "INSERT INTO mapping (manager, kind, manager_id, manager_code, manager_label,
             local_id, status, first_seen, last_seen, first_file)
         VALUES (?1, ?2, ?3, ?4, ?5, NULL, 'pending', ?6, ?6, ?7)
         ON CONFLICT (manager, kind, manager_id) DO UPDATE SET
             manager_code = excluded.manager_code,
             manager_label = excluded.manager_label,
             last_seen = excluded.last_seen",
    )?
    .execute((
        seen.manager,
        seen.kind.as_str(),
        seen.manager_id.get(),
        seen.code.as_str(),
        seen.label,
        &now,
        seen.file,
    ))?;
    let (status, local): (String, Option<i64>) = tx
        .prepare_cached(
            "SELECT status, local_id FROM mapping WHERE manager = ?1 AND kind = ?2 AND manager_id = ?3",
        )?
        .query_row(
            (seen.manager, seen.kind.as_str(), seen.manager_id.get()),
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
    Ok(match (MappingStatus::parse(&status), local) {
        (Some(MappingStatus::Filled), Some(id)) => {
            if local_exists(tx, seen.kind, id)? {
                Resolved::Local(id)
            } else {
                Resolved::Broken(id)
            }
        }
        (Some(MappingStatus::Ignored), _) => Resolved::Ignored,
        _ => Resolved::Pending,
    })
}

/// Looks a mapping up without recording a sighting.
pub fn lookup(
    tx: &rusqlite::Connection,
    manager: &str,
    kind: MappingKind,
    manager_id: TechId,
) -> Result<Option<Resolved>, DomainError> {
    let row: Option<(String, Option<i64>)> = tx
        .prepare_cached(
            "SELECT status, local_id FROM mapping WHERE manager = ?1 AND kind = ?2 AND manager_id = ?3",
        )?
        .query_row((manager, kind.as_str(), manager_id.get()), |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let Some((status, local)) = row else {
        return Ok(None);
    };
    Ok(Some(match (MappingStatus::parse(&status), local) {
        (Some(MappingStatus::Filled), Some(id)) => {
            if local_exists(tx, kind, id)? {
                Resolved::Local(id)
            } else {
                Resolved::Broken(id)
            }
        }
        (Some(MappingStatus::Ignored), _) => Resolved::Ignored,
        _ => Resolved::Pending,
    }))
}

/// Maps a manager object to a local object the import created from it
/// (status filled), recording the sighting.
pub fn fill_auto(tx: &Transaction<'_>, seen: &Seen<'_>, local_id: i64) -> Result<(), DomainError> {
    let now = crate::store::now();
    tx.prepare_cached(
        "INSERT INTO mapping (manager, kind, manager_id, manager_code, manager_label,
             local_id, status, first_seen, last_seen, first_file)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'filled', ?7, ?7, ?8)
         ON CONFLICT (manager, kind, manager_id) DO UPDATE SET
             manager_code = excluded.manager_code,
             manager_label = excluded.manager_label,
             local_id = excluded.local_id,
             status = 'filled',
             last_seen = excluded.last_seen",
    )?
    .execute((
        seen.manager,
        seen.kind.as_str(),
        seen.manager_id.get(),
        seen.code.as_str(),
        seen.label,
        local_id,
        &now,
        seen.file,
    ))?;
    Ok(())
}

fn local_exists(
    conn: &rusqlite::Connection,
    kind: MappingKind,
    id: i64,
) -> Result<bool, DomainError> {
    let sql = format!("SELECT 1 FROM {} WHERE id = ?1", local_table(kind));
    Ok(conn.prepare_cached(&sql)?.exists([id])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Role, Store};

    fn store(dir: &std::path::Path) -> Store {
        Store::open(&dir.join("t.sqlite"), "TOURISM", Role::Distributor).unwrap()
    }

    #[test]
    fn first_sighting_creates_a_pending_row_and_later_ones_refresh_the_label() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        let code = Code::new("PLEIN").unwrap();
        let seen = Seen {
            manager: "OPERA",
            kind: MappingKind::TariffType,
            manager_id: TechId::new(1201).unwrap(),
            code: &code,
            label: "Plein tarif",
            file: "f1",
        };
        let r = s.write(|tx| resolve(tx, &seen)).unwrap();
        assert_eq!(r, Resolved::Pending);
        let renamed = Seen {
            label: "Tarif plein",
            file: "f2",
            ..seen
        };
        assert_eq!(
            s.write(|tx| resolve(tx, &renamed)).unwrap(),
            Resolved::Pending
        );
        let (label, first_file): (String, String) = s
            .read(|c| {
                c.query_row("SELECT manager_label, first_file FROM mapping", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(crate::store::StoreError::from)
            })
            .unwrap();
        assert_eq!((label.as_str(), first_file.as_str()), ("Tarif plein", "f1"));
    }

    #[test]
    fn a_mapping_to_a_deleted_local_object_is_broken() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        let code = Code::new("ADULTE").unwrap();
        let seen = Seen {
            manager: "OPERA",
            kind: MappingKind::AudienceSubcategory,
            manager_id: TechId::new(1301).unwrap(),
            code: &code,
            label: "Adulte",
            file: "f",
        };
        s.write(|tx| -> Result<(), DomainError> {
            tx.execute("INSERT INTO audience_subcategory (id, code, name) VALUES (7401, 'ADULT', 'Adulte')", [])?;
            fill_auto(tx, &seen, 7401)
        })
        .unwrap();
        assert_eq!(
            s.write(|tx| resolve(tx, &seen)).unwrap(),
            Resolved::Local(7401)
        );
        s.write(|tx| -> Result<(), DomainError> {
            tx.execute("DELETE FROM audience_subcategory", [])?;
            Ok(())
        })
        .unwrap();
        assert_eq!(
            s.write(|tx| resolve(tx, &seen)).unwrap(),
            Resolved::Broken(7401)
        );
    }

    #[test]
    fn logical_seat_categories_are_refused_with_the_manuals_reason() {
        let e = parse_kind("logical_seat_category").unwrap_err().to_string();
        assert!(e.contains("physical"), "{e}");
        assert!(
            parse_kind("colour")
                .unwrap_err()
                .to_string()
                .contains("seat_category")
        );
        assert_eq!(parse_kind("tariff_type").unwrap(), MappingKind::TariffType);
    }
}
