//! Resolution: which local object stands for a manager object a file names.
//!
//! Takes a sighting ([`Seen`]) inside the importing transaction and returns
//! its [`Resolved`] mapping, creating the pending row the first time and
//! refreshing its label and last seen afterwards; [`fill_auto`] maps the
//! objects an import creates from the manager's own; [`lookup`] and
//! [`manager_id_of`] read a mapping either way without recording anything.
//! An importer that looks up and fills at every record holds both for the
//! file in a [`FileMappings`]; a pass that translates many local objects
//! back holds a [`ManagerIds`].
//! Also the vocabulary the other parts share: [`local_table`],
//! [`is_mapped_by_hand`], [`parse_kind`].

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use rusqlite::{Connection, OptionalExtension, Statement, Transaction};

use crate::domain::DomainError;
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

/// The distributor's table holding objects of a mapping kind (the name is
/// [`MappingKind::local_table`]'s, kept here for the domain's callers).
pub fn local_table(kind: MappingKind) -> &'static str {
    kind.local_table()
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
    conn: &Connection,
    manager: &str,
    kind: MappingKind,
    manager_id: TechId,
) -> Result<Option<Resolved>, DomainError> {
    let mut st = conn.prepare_cached(&lookup_sql(kind))?;
    read_lookup(&mut st, manager, kind, manager_id)
}

/// The look-up of a mapping of `kind`, with whether its local object
/// exists, in one statement.
fn lookup_sql(kind: MappingKind) -> String {
    format!(
        "SELECT m.status, m.local_id, EXISTS (SELECT 1 FROM {t} WHERE id = m.local_id)
         FROM mapping m WHERE m.manager = ?1 AND m.kind = ?2 AND m.manager_id = ?3",
        t = kind.local_table()
    )
}

fn read_lookup(
    st: &mut Statement<'_>,
    manager: &str,
    kind: MappingKind,
    manager_id: TechId,
) -> Result<Option<Resolved>, DomainError> {
    let row: Option<(Option<MappingStatus>, Option<i64>, bool)> = st
        .query_row((manager, kind.as_str(), manager_id.get()), |r| {
            let status = r.get_ref(0)?.as_str().map(MappingStatus::parse)?;
            Ok((status, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    let Some((status, local, exists)) = row else {
        return Ok(None);
    };
    Ok(Some(match (status, local) {
        (Some(MappingStatus::Filled), Some(id)) if exists => Resolved::Local(id),
        (Some(MappingStatus::Filled), Some(id)) => Resolved::Broken(id),
        (Some(MappingStatus::Ignored), _) => Resolved::Ignored,
        _ => Resolved::Pending,
    }))
}

/// Maps a manager object to a local object the import created from it
/// (status filled), recording the sighting.
pub fn fill_auto(tx: &Transaction<'_>, seen: &Seen<'_>, local_id: i64) -> Result<(), DomainError> {
    let mut st = tx.prepare_cached(FILL_AUTO)?;
    write_fill(&mut st, seen, local_id, &crate::store::now())
}

const FILL_AUTO: &str =
    "INSERT INTO mapping (manager, kind, manager_id, manager_code, manager_label,
         local_id, status, first_seen, last_seen, first_file)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'filled', ?7, ?7, ?8)
     ON CONFLICT (manager, kind, manager_id) DO UPDATE SET
         manager_code = excluded.manager_code,
         manager_label = excluded.manager_label,
         local_id = excluded.local_id,
         status = 'filled',
         last_seen = excluded.last_seen";

fn write_fill(
    st: &mut Statement<'_>,
    seen: &Seen<'_>,
    local_id: i64,
    at: &str,
) -> Result<(), DomainError> {
    st.execute((
        seen.manager,
        seen.kind.as_str(),
        seen.manager_id.get(),
        seen.code.as_str(),
        seen.label,
        local_id,
        at,
        seen.file,
    ))?;
    Ok(())
}

/// The look-ups and automatic fills of one imported file, for the objects
/// an import creates from the manager's own (venues to seats, performances,
/// logical configurations, rate tables, products). A seat plan runs both at
/// every seat, so their statements are prepared once and held for the file
/// rather than found by their text in the statement cache each time; every
/// row the file fills is stamped with the one time its import started.
pub struct FileMappings<'c> {
    conn: &'c Connection,
    at: String,
    lookups: HashMap<MappingKind, Statement<'c>>,
    /// Per kind, the manager whose mapping rows of it were counted at the
    /// kind's first [`Self::lookup_declared`], and whether there were none.
    none_before: HashMap<MappingKind, (String, bool)>,
    fill: Option<Statement<'c>>,
    refresh: Option<Statement<'c>>,
}

impl<'c> FileMappings<'c> {
    pub fn new(conn: &'c Connection) -> FileMappings<'c> {
        FileMappings {
            conn,
            at: crate::store::now(),
            lookups: HashMap::new(),
            none_before: HashMap::new(),
            fill: None,
            refresh: None,
        }
    }

    /// What the manager's `manager_id` of `kind` maps to now, as [`lookup`].
    pub fn lookup(
        &mut self,
        manager: &str,
        kind: MappingKind,
        manager_id: TechId,
    ) -> Result<Option<Resolved>, DomainError> {
        let st = match self.lookups.entry(kind) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(self.conn.prepare(&lookup_sql(kind))?),
        };
        read_lookup(st, manager, kind, manager_id)
    }

    /// What an object maps to, as [`Self::lookup`], for an object of the
    /// record being applied, whose id the file declares there for the first
    /// time (the import refuses an id declared twice): the file has not
    /// filled its mapping yet. When `manager` had no mapping row of `kind`
    /// before the file's first object of that kind, none of the file's
    /// objects of it can have one: the answer is `None` without a look-up.
    /// That is a venue's first seat plan, where every seat is new.
    pub fn lookup_declared(
        &mut self,
        manager: &str,
        kind: MappingKind,
        manager_id: TechId,
    ) -> Result<Option<Resolved>, DomainError> {
        let none_before = match self.none_before.get(&kind) {
            Some((m, none)) if m == manager => *none,
            _ => {
                let none = !self
                    .conn
                    .prepare_cached(
                        "SELECT EXISTS (SELECT 1 FROM mapping WHERE manager = ?1 AND kind = ?2)",
                    )?
                    .query_row((manager, kind.as_str()), |r| r.get::<_, bool>(0))?;
                self.none_before.insert(kind, (manager.to_owned(), none));
                none
            }
        };
        if none_before {
            return Ok(None);
        }
        self.lookup(manager, kind, manager_id)
    }

    /// Maps a manager object to the local object the import created from
    /// it, as [`fill_auto`].
    pub fn fill(&mut self, seen: &Seen<'_>, local_id: i64) -> Result<(), DomainError> {
        let st = crate::domain::held(&mut self.fill, self.conn, FILL_AUTO)?;
        write_fill(st, seen, local_id, &self.at)
    }

    /// Records a sighting of a manager object whose row [`Self::lookup`]
    /// found filled with the local object the import kept: what
    /// [`Self::fill`] would write, its code, label and last sighting,
    /// without the insert it tries first and without touching the index of
    /// the row's status, which stays `filled`.
    pub fn refresh(&mut self, seen: &Seen<'_>) -> Result<(), DomainError> {
        crate::domain::held(
            &mut self.refresh,
            self.conn,
            "UPDATE mapping SET manager_code = ?4, manager_label = ?5, last_seen = ?6
             WHERE manager = ?1 AND kind = ?2 AND manager_id = ?3",
        )?
        .execute((
            seen.manager,
            seen.kind.as_str(),
            seen.manager_id.get(),
            seen.code.as_str(),
            seen.label,
            &self.at,
        ))?;
        Ok(())
    }
}

/// The manager's id of a local object, through the filled mapping rows of
/// `manager` and `kind`. `None` when no row maps to it; an error when several
/// manager objects map to the same local one (the file could not say which).
/// One look-up reads every row of `manager` and `kind` (there is no index by
/// local id: a seat plan would write an entry per seat into it); a pass that
/// asks for many objects holds a [`ManagerIds`] instead.
pub fn manager_id_of(
    conn: &Connection,
    manager: &str,
    kind: MappingKind,
    local_id: i64,
) -> Result<Option<TechId>, DomainError> {
    let mut st = conn.prepare_cached(
        "SELECT manager_id FROM mapping
         WHERE manager = ?1 AND kind = ?2 AND local_id = ?3 AND status = 'filled'
         ORDER BY manager_id LIMIT 3",
    )?;
    let ids: Vec<i64> = st
        .query_map((manager, kind.as_str(), local_id), |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    single_manager_id(manager, kind, local_id, &ids)
}

/// The one manager object behind a local one, given the manager ids of the
/// filled rows naming it in increasing order: the rule [`manager_id_of`] and
/// [`ManagerIds::get`] share.
fn single_manager_id(
    manager: &str,
    kind: MappingKind,
    local_id: i64,
    ids: &[i64],
) -> Result<Option<TechId>, DomainError> {
    match ids {
        [] => Ok(None),
        [one] => TechId::new(*one)
            .map(Some)
            .map_err(|e| DomainError::Invalid {
                object: format!("mapping {kind} of manager {manager}"),
                problem: e.to_string(),
            }),
        many => Err(DomainError::Invalid {
            object: format!("local {kind} {local_id}"),
            problem: format!(
                "several {manager} objects map to it ({}); a line cannot say which one it is: map each manager object to its own local object (stxd mapping set)",
                many.iter()
                    .take(3)
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

/// [`manager_id_of`] for a pass that translates many local objects of one
/// manager (a SALES export, a reconciliation): each kind's filled rows are
/// read once, at its first question, and held sorted by local id, so a
/// question costs a binary search instead of a read of every row of its
/// kind. 16 bytes per filled row of the kinds asked for (a venue's seats
/// when seats are asked for); the answers are those of the rows as they
/// were at that first read, which is what a pass inside one transaction or
/// snapshot sees anyway.
pub struct ManagerIds<'c> {
    conn: &'c Connection,
    manager: String,
    /// Per kind read, (local id, manager id) in increasing order.
    by_kind: HashMap<MappingKind, Vec<(i64, i64)>>,
}

impl<'c> ManagerIds<'c> {
    pub fn new(conn: &'c Connection, manager: &str) -> ManagerIds<'c> {
        ManagerIds {
            conn,
            manager: manager.to_owned(),
            by_kind: HashMap::new(),
        }
    }

    /// The manager's id of local object `local_id` of `kind`, as
    /// [`manager_id_of`] answers it.
    pub fn get(&mut self, kind: MappingKind, local_id: i64) -> Result<Option<TechId>, DomainError> {
        let rows = match self.by_kind.entry(kind) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let mut st = self.conn.prepare_cached(
                    "SELECT local_id, manager_id FROM mapping
                     WHERE manager = ?1 AND kind = ?2 AND status = 'filled'",
                )?;
                let mut rows: Vec<(i64, i64)> = st
                    .query_map((self.manager.as_str(), kind.as_str()), |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })?
                    .collect::<Result<_, _>>()?;
                rows.sort_unstable();
                rows.shrink_to_fit();
                e.insert(rows)
            }
        };
        let from = rows.partition_point(|&(local, _)| local < local_id);
        let ids: Vec<i64> = rows[from..]
            .iter()
            .take_while(|&&(local, _)| local == local_id)
            .map(|&(_, manager_id)| manager_id)
            .collect();
        single_manager_id(&self.manager, kind, local_id, &ids)
    }
}

fn local_exists(
    conn: &rusqlite::Connection,
    kind: MappingKind,
    id: i64,
) -> Result<bool, DomainError> {
    Ok(crate::domain::exists(conn, kind.local_table(), id)?)
}
