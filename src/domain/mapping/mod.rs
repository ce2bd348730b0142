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
//!
//! For ops (the distributor's side of `stxd mapping`): [`list`], [`set`],
//! [`ignore`], [`unset`] (kinds mapped by hand only, the local object named by
//! its code), [`check`] (pending and broken rows, as findings) and the CSV
//! round trip [`export`] / [`import`]. The CSV: `;`-separated UTF-8 (the
//! export starts with a byte order mark so spreadsheets read accents), the
//! header `manager;kind;manager_id;manager_code;manager_label;status;local_code`
//! (columns by name, in any order, each once), one row per manager object;
//! `status` is pending, filled or ignored and `local_code` is given exactly for
//! filled rows. Every cell a spreadsheet would read as a formula is written
//! with a leading `'`, which the import strips. The import checks every row
//! and applies all or nothing; its error codes are stable (`unknown-kind`,
//! `logical-seat-category`, `bad-id`, `bad-status`, `unknown-local-code`,
//! `ambiguous-local-code`, `missing-local-code`, `local-code-not-allowed`,
//! `duplicate-row`, `formula-cell`, `other-manager`, `automatic-kind`,
//! `bad-code`, `bad-name`, and the CSV layer's `csv-*`).

use std::borrow::Cow;
use std::fmt;
use std::io::{BufReader, Read, Write};

use rusqlite::{Connection, OptionalExtension, Transaction};

use super::DomainError;
use super::setup::{Finding, Severity};
use crate::format::csv::{CsvReader, Row as CsvRow};
use crate::format::{FormatError, Limits};
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

/// The manager's id of a local object, through the filled mapping rows of
/// `manager` and `kind`. `None` when no row maps to it; an error when several
/// manager objects map to the same local one (the file could not say which).
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
    match ids.as_slice() {
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
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

fn local_exists(
    conn: &rusqlite::Connection,
    kind: MappingKind,
    id: i64,
) -> Result<bool, DomainError> {
    let sql = format!("SELECT 1 FROM {} WHERE id = ?1", local_table(kind));
    Ok(conn.prepare_cached(&sql)?.exists([id])?)
}

// ---------------------------------------------------------------------------
// Ops management: list, set, ignore, unset, check, and the CSV round trip.
//
// Ops may fill or ignore a mapping before any file names the manager object
// (the manual's step 3 comes before the first catalogue). Such a row has no
// manager code or label yet: it is stored with the code [`UNSEEN_CODE`] and
// the label [`UNSEEN_LABEL`], first and last seen at the time ops created it
// and no first file; the first file that names the object refreshes code and
// label ([`resolve`] does) and keeps what ops chose.
// ---------------------------------------------------------------------------

/// Manager code of a row ops created before any file named the object.
pub const UNSEEN_CODE: &str = "?";
/// Label of a row ops created before any file named the object.
pub const UNSEEN_LABEL: &str = "(not yet seen)";

/// The columns of the mapping CSV, in the order [`export`] writes them.
pub const CSV_COLUMNS: [&str; 7] = [
    "manager",
    "kind",
    "manager_id",
    "manager_code",
    "manager_label",
    "status",
    "local_code",
];

const COL_MANAGER: usize = 0;
const COL_KIND: usize = 1;
const COL_ID: usize = 2;
const COL_CODE: usize = 3;
const COL_LABEL: usize = 4;
const COL_STATUS: usize = 5;
const COL_LOCAL: usize = 6;

/// Most problems an import lists before it stops reading; most changes an
/// import summary lists (the counts are always complete).
pub const MAX_LISTED: usize = 200;

/// Most local codes quoted in an "unknown local code" message.
const MAX_CODES_QUOTED: usize = 40;

/// Longest manager label the table holds, in characters.
const LABEL_MAX: usize = 200;

/// Which rows [`list`] returns; `None` does not filter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filter<'a> {
    pub manager: Option<&'a str>,
    pub kind: Option<MappingKind>,
    pub status: Option<MappingStatus>,
}

/// One row of the mapping table, with the local object's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub manager: String,
    pub kind: MappingKind,
    pub manager_id: i64,
    pub manager_code: String,
    pub manager_label: String,
    pub local_id: Option<i64>,
    /// The local object's code (a seat's number); `None` when not filled or
    /// when the local object no longer exists (broken).
    pub local_code: Option<String>,
    pub status: MappingStatus,
    pub first_seen: String,
    pub last_seen: String,
    /// `None` for a row ops created before any file named the object.
    pub first_file: Option<String>,
}

impl Row {
    /// Filled, but the local object no longer exists.
    pub fn is_broken(&self) -> bool {
        self.status == MappingStatus::Filled && self.local_code.is_none()
    }
}

/// Where a mapping row stands: its status and local object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    pub status: MappingStatus,
    pub local_id: Option<i64>,
    pub local_code: Option<String>,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.local_code, self.local_id) {
            (Some(code), Some(id)) => write!(f, "{} {code} ({id})", self.status),
            (None, Some(id)) => write!(f, "{} (local id {id}, missing)", self.status),
            _ => write!(f, "{}", self.status),
        }
    }
}

/// What a change did to one row, for the run log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: MappingKind,
    pub manager_id: i64,
    /// `None`: the row did not exist and was created.
    pub before: Option<State>,
    pub after: State,
}

impl Change {
    /// Whether the row actually changed.
    pub fn changed(&self) -> bool {
        self.before.as_ref() != Some(&self.after)
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.before {
            None => write!(
                f,
                "{} {}: created {}",
                self.kind, self.manager_id, self.after
            ),
            Some(b) if b == &self.after => {
                write!(f, "{} {}: unchanged {}", self.kind, self.manager_id, b)
            }
            Some(b) => write!(
                f,
                "{} {}: {} → {}",
                self.kind, self.manager_id, b, self.after
            ),
        }
    }
}

/// The column holding a local object's code (seats have a number instead).
fn local_code_column(kind: MappingKind) -> &'static str {
    match kind {
        MappingKind::Seat => "number",
        _ => "code",
    }
}

/// `ORDER BY` expression putting kinds in [`MappingKind::ALL`] order.
fn kind_order() -> String {
    let mut s = String::from("CASE kind");
    for (i, k) in MappingKind::ALL.iter().enumerate() {
        s.push_str(&format!(" WHEN '{}' THEN {i}", k.as_str()));
    }
    s.push_str(" END");
    s
}

/// The code of a local object, `None` when it does not exist.
fn local_code(
    conn: &Connection,
    kind: MappingKind,
    id: i64,
) -> Result<Option<String>, DomainError> {
    let sql = format!(
        "SELECT {} FROM {} WHERE id = ?1",
        local_code_column(kind),
        local_table(kind)
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], |r| r.get(0))
        .optional()?)
}

const ROW_COLUMNS: &str = "manager, kind, manager_id, manager_code, manager_label, local_id, status, first_seen, last_seen, first_file";

fn read_row(conn: &Connection, r: &rusqlite::Row<'_>) -> Result<Row, DomainError> {
    let kind: String = r.get(1)?;
    let status: String = r.get(6)?;
    let kind = MappingKind::parse(&kind).ok_or_else(|| {
        DomainError::Store(crate::store::StoreError::Corrupt(format!(
            "mapping kind {kind:?}"
        )))
    })?;
    let status = MappingStatus::parse(&status).ok_or_else(|| {
        DomainError::Store(crate::store::StoreError::Corrupt(format!(
            "mapping status {status:?}"
        )))
    })?;
    let local_id: Option<i64> = r.get(5)?;
    let local_code = match local_id {
        Some(id) => local_code(conn, kind, id)?,
        None => None,
    };
    Ok(Row {
        manager: r.get(0)?,
        kind,
        manager_id: r.get(2)?,
        manager_code: r.get(3)?,
        manager_label: r.get(4)?,
        local_id,
        local_code,
        status,
        first_seen: r.get(7)?,
        last_seen: r.get(8)?,
        first_file: r.get(9)?,
    })
}

/// Calls `each` on every row matching `filter`, in manager, kind
/// ([`MappingKind::ALL`] order) and manager id order, one row at a time.
fn for_each_row(
    conn: &Connection,
    filter: &Filter<'_>,
    mut each: impl FnMut(Row) -> Result<(), DomainError>,
) -> Result<(), DomainError> {
    let sql = format!(
        "SELECT {ROW_COLUMNS} FROM mapping
         WHERE (?1 IS NULL OR manager = ?1) AND (?2 IS NULL OR kind = ?2)
           AND (?3 IS NULL OR status = ?3)
         ORDER BY manager, {}, manager_id",
        kind_order()
    );
    let mut st = conn.prepare_cached(&sql)?;
    let mut rows = st.query((
        filter.manager,
        filter.kind.map(MappingKind::as_str),
        filter.status.map(MappingStatus::as_str),
    ))?;
    while let Some(r) = rows.next()? {
        each(read_row(conn, r)?)?;
    }
    Ok(())
}

/// The rows matching `filter`, in manager, kind and manager id order.
pub fn list(conn: &Connection, filter: &Filter<'_>) -> Result<Vec<Row>, DomainError> {
    let mut out = Vec::new();
    for_each_row(conn, filter, |row| {
        out.push(row);
        Ok(())
    })?;
    Ok(out)
}

/// Why a local code names no single local object.
enum LocalLookup {
    Unknown(String),
    Ambiguous(String),
}

impl LocalLookup {
    fn code(&self) -> &'static str {
        match self {
            LocalLookup::Unknown(_) => "unknown-local-code",
            LocalLookup::Ambiguous(_) => "ambiguous-local-code",
        }
    }

    fn problem(self) -> String {
        match self {
            LocalLookup::Unknown(p) | LocalLookup::Ambiguous(p) => p,
        }
    }
}

/// The local object of `kind` whose code is `code`.
fn find_local(
    conn: &Connection,
    kind: MappingKind,
    code: &str,
) -> Result<Result<i64, LocalLookup>, DomainError> {
    let table = local_table(kind);
    let column = local_code_column(kind);
    let ids: Vec<i64> = conn
        .prepare_cached(&format!(
            "SELECT id FROM {table} WHERE {column} = ?1 ORDER BY id LIMIT {}",
            MAX_CODES_QUOTED + 1
        ))?
        .query_map([code], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    match ids.as_slice() {
        [id] => Ok(Ok(*id)),
        [] => {
            let codes: Vec<String> = conn
                .prepare_cached(&format!(
                    "SELECT DISTINCT {column} FROM {table} ORDER BY {column} LIMIT {}",
                    MAX_CODES_QUOTED + 1
                ))?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let problem = if codes.is_empty() {
                format!(
                    "no local {kind} has code {:?}: there is no {kind} at all; load your reference data first (stxd load)",
                    crate::ident::shorten(code)
                )
            } else {
                let more = if codes.len() > MAX_CODES_QUOTED {
                    ", …"
                } else {
                    ""
                };
                let shown: Vec<&str> = codes
                    .iter()
                    .take(MAX_CODES_QUOTED)
                    .map(String::as_str)
                    .collect();
                format!(
                    "no local {kind} has code {:?}; the codes that exist are {}{more}",
                    crate::ident::shorten(code),
                    shown.join(", ")
                )
            };
            Ok(Err(LocalLookup::Unknown(problem)))
        }
        many => {
            let shown: Vec<String> = many
                .iter()
                .take(MAX_CODES_QUOTED)
                .map(i64::to_string)
                .collect();
            Ok(Err(LocalLookup::Ambiguous(format!(
                "several local {kind} objects have code {code:?} (ids {}); give each a unique code first",
                shown.join(", ")
            ))))
        }
    }
}

fn refuse_automatic(kind: MappingKind) -> Result<(), DomainError> {
    if is_mapped_by_hand(kind) {
        return Ok(());
    }
    Err(DomainError::Invalid {
        object: format!("mapping kind {kind}"),
        problem: format!(
            "{kind} mappings are filled by the {} import, never by hand; import the manager's file instead",
            import_of(kind)
        ),
    })
}

/// The import that fills an automatic kind.
fn import_of(kind: MappingKind) -> &'static str {
    match kind {
        MappingKind::Venue
        | MappingKind::Configuration
        | MappingKind::Zone
        | MappingKind::Block
        | MappingKind::Row
        | MappingKind::Seat => "seat plan",
        _ => "catalogue",
    }
}

/// The current state of a row, if it exists.
fn current(
    conn: &Connection,
    manager: &str,
    kind: MappingKind,
    manager_id: i64,
) -> Result<Option<State>, DomainError> {
    let row: Option<(String, Option<i64>)> = conn
        .prepare_cached(
            "SELECT status, local_id FROM mapping WHERE manager = ?1 AND kind = ?2 AND manager_id = ?3",
        )?
        .query_row((manager, kind.as_str(), manager_id), |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let Some((status, local_id)) = row else {
        return Ok(None);
    };
    let status = MappingStatus::parse(&status).ok_or_else(|| {
        DomainError::Store(crate::store::StoreError::Corrupt(format!(
            "mapping status {status:?}"
        )))
    })?;
    let local_code = match local_id {
        Some(id) => local_code(conn, kind, id)?,
        None => None,
    };
    Ok(Some(State {
        status,
        local_id,
        local_code,
    }))
}

/// Puts a row in `after`'s state, creating it (with `seen` as its manager
/// code and label) when it does not exist.
fn put(
    tx: &Transaction<'_>,
    manager: &str,
    kind: MappingKind,
    manager_id: i64,
    after: State,
    seen: (&str, &str),
) -> Result<Change, DomainError> {
    let before = current(tx, manager, kind, manager_id)?;
    match &before {
        Some(b) if b.status == after.status && b.local_id == after.local_id => {}
        Some(_) => {
            tx.prepare_cached(
                "UPDATE mapping SET status = ?4, local_id = ?5
                 WHERE manager = ?1 AND kind = ?2 AND manager_id = ?3",
            )?
            .execute((
                manager,
                kind.as_str(),
                manager_id,
                after.status.as_str(),
                after.local_id,
            ))?;
        }
        None => {
            let now = crate::store::now();
            tx.prepare_cached(
                "INSERT INTO mapping (manager, kind, manager_id, manager_code, manager_label,
                     local_id, status, first_seen, last_seen, first_file)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, NULL)",
            )?
            .execute((
                manager,
                kind.as_str(),
                manager_id,
                seen.0,
                seen.1,
                after.local_id,
                after.status.as_str(),
                &now,
            ))?;
        }
    }
    Ok(Change {
        kind,
        manager_id,
        before,
        after,
    })
}

/// Maps a manager object of a kind ops map by hand to the local object whose
/// code is `local_code`, creating the row when no file named the object yet.
/// Refuses automatic kinds, an unknown code (listing the codes that exist)
/// and a code several local objects share (listing their ids).
pub fn set(
    tx: &Transaction<'_>,
    manager: &str,
    kind: MappingKind,
    manager_id: TechId,
    local_code: &str,
) -> Result<Change, DomainError> {
    refuse_automatic(kind)?;
    let local_id = find_local(tx, kind, local_code)?.map_err(|e| DomainError::Invalid {
        object: format!("mapping {kind} {manager_id} of {manager}"),
        problem: e.problem(),
    })?;
    let after = State {
        status: MappingStatus::Filled,
        local_id: Some(local_id),
        local_code: Some(local_code.to_owned()),
    };
    put(
        tx,
        manager,
        kind,
        manager_id.get(),
        after,
        (UNSEEN_CODE, UNSEEN_LABEL),
    )
}

/// Marks a manager object as deliberately not mapped (records naming it are
/// skipped), creating the row when no file named the object yet.
pub fn ignore(
    tx: &Transaction<'_>,
    manager: &str,
    kind: MappingKind,
    manager_id: TechId,
) -> Result<Change, DomainError> {
    refuse_automatic(kind)?;
    let after = State {
        status: MappingStatus::Ignored,
        local_id: None,
        local_code: None,
    };
    put(
        tx,
        manager,
        kind,
        manager_id.get(),
        after,
        (UNSEEN_CODE, UNSEEN_LABEL),
    )
}

/// Puts a filled or ignored row back to pending (files that need it park
/// again). Refuses a row that does not exist.
pub fn unset(
    tx: &Transaction<'_>,
    manager: &str,
    kind: MappingKind,
    manager_id: TechId,
) -> Result<Change, DomainError> {
    refuse_automatic(kind)?;
    if current(tx, manager, kind, manager_id.get())?.is_none() {
        return Err(DomainError::Invalid {
            object: format!("mapping {kind} {manager_id} of {manager}"),
            problem:
                "there is no such mapping row; nothing to reset (stxd mapping list shows the rows)"
                    .to_owned(),
        });
    }
    let after = State {
        status: MappingStatus::Pending,
        local_id: None,
        local_code: None,
    };
    put(
        tx,
        manager,
        kind,
        manager_id.get(),
        after,
        (UNSEEN_CODE, UNSEEN_LABEL),
    )
}

/// Checks the mappings of one manager (SecuTix's "check mappings"): every
/// pending row and every filled row whose local object no longer exists is an
/// error. Clean → empty.
pub fn check(conn: &Connection, manager: &str) -> Result<Vec<Finding>, DomainError> {
    let mut findings = Vec::new();
    let filter = Filter {
        manager: Some(manager),
        ..Filter::default()
    };
    for_each_row(conn, &filter, |row| {
        let object = format!(
            "{} mapping {} {} {:?} of {}",
            row.kind, row.manager_id, row.manager_code, row.manager_label, row.manager
        );
        let fix = if is_mapped_by_hand(row.kind) {
            format!(
                "stxd mapping set {kind} {id} LOCAL_CODE, or stxd mapping ignore {kind} {id}",
                kind = row.kind,
                id = row.manager_id
            )
        } else {
            format!(
                "import the manager's {} again: it fills {} mappings",
                import_of(row.kind),
                row.kind
            )
        };
        if row.status == MappingStatus::Pending {
            findings.push(Finding {
                severity: Severity::Error,
                object,
                problem: "pending: not mapped yet, so files that need it are parked".to_owned(),
                fix,
            });
        } else if row.is_broken() {
            findings.push(Finding {
                severity: Severity::Error,
                object,
                problem: format!(
                    "broken: mapped to local {} {}, which no longer exists; files that need it are parked",
                    row.kind,
                    row.local_id.unwrap_or_default()
                ),
                fix,
            });
        }
        Ok(())
    })?;
    Ok(findings)
}

// ---------------------------------------------------------------- CSV export

/// Makes a cell safe to open in a spreadsheet: control characters become
/// spaces (the import refuses them), and a cell a spreadsheet would read as a formula (`= + - @`, tab,
/// CR) — or one starting with `'`, so the import's stripping gives it back
/// unchanged — gets a leading `'`.
pub fn neutralise(cell: &str) -> Cow<'_, str> {
    let cleaned: Cow<'_, str> = if cell.chars().any(char::is_control) {
        Cow::Owned(
            cell.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(cell)
    };
    // Decided on the original cell: a leading tab or CR is replaced above, and
    // the cell is still marked as one a spreadsheet would have misread.
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r', '\'']) {
        Cow::Owned(format!("'{cleaned}"))
    } else {
        cleaned
    }
}

/// Writes the mapping rows of `manager` as the ops CSV (`;`, UTF-8 with a
/// byte order mark so spreadsheets read the accents, LF line ends, quoted only
/// where needed, every cell neutralised), one row at a time. Returns the
/// number of rows written.
pub fn export(conn: &Connection, manager: &str, out: impl Write) -> Result<u64, DomainError> {
    let io = |e: csv::Error| DomainError::Io {
        file: "the mapping export".to_owned(),
        source: std::io::Error::other(e),
    };
    let mut out = out;
    out.write_all(b"\xEF\xBB\xBF")
        .map_err(|e| DomainError::Io {
            file: "the mapping export".to_owned(),
            source: e,
        })?;
    let mut w = csv::WriterBuilder::new()
        .delimiter(b';')
        .terminator(csv::Terminator::Any(b'\n'))
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(out);
    w.write_record(CSV_COLUMNS).map_err(io)?;
    let mut n = 0u64;
    let filter = Filter {
        manager: Some(manager),
        ..Filter::default()
    };
    for_each_row(conn, &filter, |row| {
        let id = row.manager_id.to_string();
        let local = row.local_code.as_deref().unwrap_or("");
        let cells = [
            neutralise(&row.manager),
            Cow::Borrowed(row.kind.as_str()),
            Cow::Borrowed(id.as_str()),
            neutralise(&row.manager_code),
            neutralise(&row.manager_label),
            Cow::Borrowed(row.status.as_str()),
            neutralise(local),
        ];
        w.write_record(cells.iter().map(|c| c.as_bytes()))
            .map_err(io)?;
        n += 1;
        Ok(())
    })?;
    w.flush().map_err(|e| DomainError::Io {
        file: "the mapping export".to_owned(),
        source: e,
    })?;
    Ok(n)
}

// ---------------------------------------------------------------- CSV import

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Data rows read.
    pub rows: u64,
    /// Rows created (no file had named the object yet).
    pub created: u64,
    /// Existing rows whose status or local object changed.
    pub changed: u64,
    /// Rows left as they were.
    pub unchanged: u64,
    /// The created and changed rows, at most [`MAX_LISTED`].
    pub changes: Vec<Change>,
}

/// A mapping CSV refused: every problem found, each with its line (and
/// column) and a stable code. Nothing was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: mapping file refused, nothing changed ({} problem(s){}): {}", errors.len(), if *truncated { ", more not listed" } else { "" }, errors.iter().map(|e| format!("{}: {} [{}]", e.position, e.problem, e.code)).collect::<Vec<_>>().join("; "))]
pub struct MappingCsvErrors {
    pub file: String,
    pub errors: Vec<FormatError>,
    /// More problems than [`MAX_LISTED`]: reading stopped there.
    pub truncated: bool,
}

/// Why [`import`] applied nothing.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file is wrong: every bad row is listed.
    #[error(transparent)]
    Rejected(MappingCsvErrors),
    /// The store failed.
    #[error(transparent)]
    Domain(#[from] DomainError),
}

impl From<crate::store::StoreError> for ImportError {
    fn from(e: crate::store::StoreError) -> ImportError {
        ImportError::Domain(DomainError::Store(e))
    }
}

impl From<rusqlite::Error> for ImportError {
    fn from(e: rusqlite::Error) -> ImportError {
        ImportError::Domain(DomainError::Sql(e))
    }
}

/// Imports the ops CSV for `manager`: validates every row and applies them
/// in `tx`; any bad row makes the whole import fail (the caller's
/// transaction then rolls back, so nothing changes), listing every bad row.
///
/// The rules, row by row:
/// - `manager` is the link's manager; `kind` a mapping kind (a logical seat
///   category is refused: physical categories only); `manager_id` a technical
///   id; `status` pending, filled or ignored; `local_code` the code of a
///   local object of the kind, given exactly when the status is filled;
/// - one row per manager, kind and manager id;
/// - a leading `'` is the export's neutralisation and is stripped; a cell
///   still starting with `= + - @` is refused as a formula;
/// - kinds filled by the imports may appear but must stay as exported;
/// - `manager_code` and `manager_label` are the manager's: they are only
///   used for a row that does not exist yet (empty: [`UNSEEN_CODE`],
///   [`UNSEEN_LABEL`]); files refresh them.
///
/// A structural problem (field count, invalid UTF-8, a bad header, a line
/// too long) ends the reading: what follows cannot be trusted to line up.
pub fn import(
    tx: &Transaction<'_>,
    manager: &str,
    input: impl Read,
    file: &str,
) -> Result<ImportSummary, ImportError> {
    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS mapping_import_seen (
             kind TEXT NOT NULL, manager_id INTEGER NOT NULL, line INTEGER NOT NULL,
             PRIMARY KEY (kind, manager_id)) WITHOUT ROWID;
         DELETE FROM temp.mapping_import_seen;",
    )?;
    let mut reader = CsvReader::new(BufReader::new(input), file, Limits::default(), &CSV_COLUMNS);
    let mut summary = ImportSummary::default();
    let mut errors = Vec::new();
    let mut truncated = false;
    loop {
        match reader.next_row() {
            Ok(Some(row)) => {
                summary.rows += 1;
                match import_row(tx, manager, &row)? {
                    Ok(change) => {
                        match &change.before {
                            None => summary.created += 1,
                            Some(_) if change.changed() => summary.changed += 1,
                            Some(_) => summary.unchanged += 1,
                        }
                        if change.changed() && summary.changes.len() < MAX_LISTED {
                            summary.changes.push(change);
                        }
                    }
                    Err(e) => {
                        if errors.len() >= MAX_LISTED {
                            truncated = true;
                            break;
                        }
                        errors.push(e);
                    }
                }
            }
            Ok(None) => break,
            Err(e) => {
                errors.push(e);
                break;
            }
        }
    }
    tx.execute_batch("DROP TABLE temp.mapping_import_seen")?;
    if errors.is_empty() {
        Ok(summary)
    } else {
        Err(ImportError::Rejected(MappingCsvErrors {
            file: file.to_owned(),
            errors,
            truncated,
        }))
    }
}

/// The cell of `col` with the export's neutralisation stripped; refuses a
/// cell a spreadsheet would read as a formula.
fn cell<'a>(row: &CsvRow<'a>, col: usize) -> Result<&'a str, FormatError> {
    let raw = row.text(col);
    if let Some(rest) = raw.strip_prefix('\'') {
        return Ok(rest);
    }
    if let Some(c) = raw
        .chars()
        .next()
        .filter(|c| matches!(c, '=' | '+' | '-' | '@'))
    {
        return Err(row.error(
            col,
            "formula-cell",
            format!(
                "the cell starts with {c:?}, which a spreadsheet runs as a formula: {:?}; write it with a leading ' if it is text",
                crate::ident::shorten(raw)
            ),
        ));
    }
    Ok(raw)
}

/// Validates and applies one row. The outer error is the store's; the inner
/// one the row's problem.
fn import_row(
    tx: &Transaction<'_>,
    manager: &str,
    row: &CsvRow<'_>,
) -> Result<Result<Change, FormatError>, DomainError> {
    let mut cells = [""; CSV_COLUMNS.len()];
    for (col, slot) in cells.iter_mut().enumerate() {
        match cell(row, col) {
            Ok(v) => *slot = v,
            Err(e) => return Ok(Err(e)),
        }
    }
    let [m, kind, id, code, label, status, local] = cells;
    if m != manager {
        return Ok(Err(row.error(
            COL_MANAGER,
            "other-manager",
            format!(
                "expected the link's manager {manager}, found {:?}; import each manager's mappings through its own link",
                crate::ident::shorten(m)
            ),
        )));
    }
    let kind = match parse_kind(kind) {
        Ok(k) => k,
        Err(e) => {
            let code = if MappingKind::parse(kind).is_none()
                && kind.contains("logical")
                && kind.contains("seat")
            {
                "logical-seat-category"
            } else {
                "unknown-kind"
            };
            let problem = match e {
                DomainError::Invalid { problem, .. } => problem,
                other => other.to_string(),
            };
            return Ok(Err(row.error(COL_KIND, code, problem)));
        }
    };
    let id = match crate::format::csv::parse_id(id) {
        Ok(id) => id.get(),
        Err(e) => return Ok(Err(row.error(COL_ID, e.code, e.problem))),
    };
    let fresh = tx
        .prepare_cached(
            "INSERT INTO temp.mapping_import_seen (kind, manager_id, line) VALUES (?1, ?2, ?3)
             ON CONFLICT (kind, manager_id) DO NOTHING",
        )?
        .execute((kind.as_str(), id, row.line()))?;
    if fresh == 0 {
        let first: i64 = tx
            .prepare_cached(
                "SELECT line FROM temp.mapping_import_seen WHERE kind = ?1 AND manager_id = ?2",
            )?
            .query_row((kind.as_str(), id), |r| r.get(0))?;
        return Ok(Err(row.line_error(
            "duplicate-row",
            format!(
                "{kind} {id} of {manager} already has a row at line {first}; keep one row per manager, kind and manager_id"
            ),
        )));
    }
    let Some(status) = MappingStatus::parse(status) else {
        return Ok(Err(row.error(
            COL_STATUS,
            "bad-status",
            format!(
                "expected pending, filled or ignored, found {:?}",
                crate::ident::shorten(status)
            ),
        )));
    };
    match (status, local.is_empty()) {
        (MappingStatus::Filled, true) => {
            return Ok(Err(row.error(
                COL_LOCAL,
                "missing-local-code",
                "a filled row needs the local code it maps to; give it, or set the status to ignored or pending",
            )));
        }
        (MappingStatus::Pending | MappingStatus::Ignored, false) => {
            return Ok(Err(row.error(
                COL_LOCAL,
                "local-code-not-allowed",
                format!(
                    "a row with status {status} maps to nothing, found local code {:?}; set the status to filled to map it, or empty the local code",
                    crate::ident::shorten(local)
                ),
            )));
        }
        _ => {}
    }
    let before = current(tx, manager, kind, id)?;
    if !is_mapped_by_hand(kind) {
        return Ok(match before {
            Some(b) if b.status == status && b.local_code.as_deref().unwrap_or("") == local => {
                Ok(Change {
                    kind,
                    manager_id: id,
                    before: Some(b.clone()),
                    after: b,
                })
            }
            other => {
                let now = match &other {
                    Some(b) => format!("{} {}", b.status, b.local_code.as_deref().unwrap_or(""))
                        .trim_end()
                        .to_owned(),
                    None => "no row".to_owned(),
                };
                Err(row.error(
                    COL_STATUS,
                    "automatic-kind",
                    format!(
                        "{kind} mappings are filled by the {} import and cannot be changed here (the table has: {now}); keep the row as exported or delete it from the file",
                        import_of(kind)
                    ),
                ))
            }
        });
    }
    let after = match status {
        MappingStatus::Filled => match find_local(tx, kind, local)? {
            Ok(local_id) => State {
                status,
                local_id: Some(local_id),
                local_code: Some(local.to_owned()),
            },
            Err(e) => return Ok(Err(row.error(COL_LOCAL, e.code(), e.problem()))),
        },
        _ => State {
            status,
            local_id: None,
            local_code: None,
        },
    };
    if before.is_none() {
        if !code.is_empty() && code != UNSEEN_CODE {
            if let Err(e) = Code::new(code) {
                return Ok(Err(row.error(COL_CODE, e.code(), e.to_string())));
            }
        }
        if label.chars().count() > LABEL_MAX || label.trim() != label {
            return Ok(Err(row.error(
                COL_LABEL,
                "bad-name",
                format!(
                    "expected a label of at most {LABEL_MAX} characters without spaces around it, found {:?}",
                    crate::ident::shorten(label)
                ),
            )));
        }
    }
    let seen = (
        if code.is_empty() { UNSEEN_CODE } else { code },
        if label.is_empty() {
            UNSEEN_LABEL
        } else {
            label
        },
    );
    Ok(Ok(put(tx, manager, kind, id, after, seen)?))
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

    // ------------------------------------------------------- ops management

    fn tourism(dir: &std::path::Path) -> Store {
        let mut s = store(dir);
        s.write(|tx| -> Result<(), DomainError> {
            tx.execute_batch(
                "INSERT INTO tariff_type (id, code, name) VALUES (7301, 'NORMAL', 'Normal'), (7302, 'REDUIT', 'Réduit');
                 INSERT INTO seat_category (id, code, name) VALUES (7501, 'PREM', 'Première');",
            )?;
            Ok(())
        })
        .unwrap();
        s
    }

    fn id(v: i64) -> TechId {
        TechId::new(v).unwrap()
    }

    fn rows(s: &Store) -> Vec<Row> {
        s.read(|c| list(c, &Filter::default())).unwrap()
    }

    fn import_text(s: &mut Store, text: &str) -> Result<ImportSummary, ImportError> {
        s.write(|tx| import(tx, "OPERA", text.as_bytes(), "m.csv"))
    }

    const HEADER: &str = "manager;kind;manager_id;manager_code;manager_label;status;local_code\n";

    #[test]
    fn set_before_any_file_uses_a_placeholder_that_the_first_file_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = tourism(dir.path());
        let c = s
            .write(|tx| set(tx, "OPERA", MappingKind::TariffType, id(1201), "NORMAL"))
            .unwrap();
        assert!(c.before.is_none() && c.changed());
        let r = &rows(&s)[0];
        assert_eq!(
            (r.manager_code.as_str(), r.manager_label.as_str()),
            (UNSEEN_CODE, UNSEEN_LABEL)
        );
        assert_eq!(r.first_file, None);
        assert_eq!(r.local_code.as_deref(), Some("NORMAL"));
        let code = Code::new("PLEIN").unwrap();
        let seen = Seen {
            manager: "OPERA",
            kind: MappingKind::TariffType,
            manager_id: id(1201),
            code: &code,
            label: "Plein tarif",
            file: "f1",
        };
        assert_eq!(
            s.write(|tx| resolve(tx, &seen)).unwrap(),
            Resolved::Local(7301)
        );
        let r = &rows(&s)[0];
        assert_eq!(
            (r.manager_code.as_str(), r.manager_label.as_str()),
            ("PLEIN", "Plein tarif")
        );
        assert_eq!(r.status, MappingStatus::Filled);
    }

    #[test]
    fn set_names_the_codes_that_exist_or_the_ids_sharing_a_code() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = tourism(dir.path());
        let e = s
            .write(|tx| set(tx, "OPERA", MappingKind::TariffType, id(1201), "PLAIN"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"PLAIN\"") && e.contains("NORMAL, REDUIT"),
            "{e}"
        );
        s.write(|tx| -> Result<(), DomainError> {
            tx.execute(
                "INSERT INTO tariff_type (id, code, name) VALUES (7309, 'NORMAL', 'Normal bis')",
                [],
            )?;
            Ok(())
        })
        .unwrap();
        let e = s
            .write(|tx| set(tx, "OPERA", MappingKind::TariffType, id(1201), "NORMAL"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("7301, 7309"), "{e}");
        assert!(rows(&s).is_empty());
    }

    #[test]
    fn automatic_kinds_are_refused_by_hand_with_the_import_that_fills_them() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = tourism(dir.path());
        let e = s
            .write(|tx| set(tx, "OPERA", MappingKind::Seat, id(50001), "1"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("seat plan import"), "{e}");
        let e = s
            .write(|tx| ignore(tx, "OPERA", MappingKind::Product, id(1901)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("catalogue import"), "{e}");
        assert!(rows(&s).is_empty());
    }

    #[test]
    fn ignore_and_unset_change_the_status_and_unset_needs_a_row() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = tourism(dir.path());
        let e = s
            .write(|tx| unset(tx, "OPERA", MappingKind::TariffType, id(1203)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("no such mapping row"), "{e}");
        s.write(|tx| ignore(tx, "OPERA", MappingKind::TariffType, id(1203)))
            .unwrap();
        assert_eq!(rows(&s)[0].status, MappingStatus::Ignored);
        let again = s
            .write(|tx| ignore(tx, "OPERA", MappingKind::TariffType, id(1203)))
            .unwrap();
        assert!(!again.changed());
        let c = s
            .write(|tx| unset(tx, "OPERA", MappingKind::TariffType, id(1203)))
            .unwrap();
        assert_eq!(c.after.status, MappingStatus::Pending);
        assert_eq!(rows(&s)[0].status, MappingStatus::Pending);
    }

    #[test]
    fn check_reports_pending_and_broken_rows_and_nothing_when_clean() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = tourism(dir.path());
        assert!(s.read(|c| check(c, "OPERA")).unwrap().is_empty());
        let code = Code::new("GROUPE").unwrap();
        let seen = Seen {
            manager: "OPERA",
            kind: MappingKind::TariffType,
            manager_id: id(1203),
            code: &code,
            label: "Tarif groupe",
            file: "f",
        };
        s.write(|tx| resolve(tx, &seen)).unwrap();
        s.write(|tx| set(tx, "OPERA", MappingKind::SeatCategory, id(2001), "PREM"))
            .unwrap();
        s.write(|tx| -> Result<(), DomainError> {
            tx.execute("DELETE FROM seat_category WHERE id = 7501", [])?;
            Ok(())
        })
        .unwrap();
        let findings = s.read(|c| check(c, "OPERA")).unwrap();
        assert_eq!(findings.len(), 2, "{findings:?}");
        assert!(
            findings[0]
                .object
                .contains("tariff_type mapping 1203 GROUPE")
        );
        assert!(findings[0].problem.starts_with("pending"));
        assert!(
            findings[0]
                .fix
                .contains("stxd mapping set tariff_type 1203")
        );
        assert!(
            findings[1].problem.starts_with("broken"),
            "{:?}",
            findings[1]
        );
        assert!(rows(&s)[1].is_broken());
        // Another manager's rows are not this link's business.
        assert!(s.read(|c| check(c, "BALLET")).unwrap().is_empty());
    }

    #[test]
    fn neutralise_protects_formulas_and_the_apostrophe_itself() {
        assert_eq!(neutralise("Adulte"), "Adulte");
        assert_eq!(neutralise("=1+1"), "'=1+1");
        assert_eq!(neutralise("-5"), "'-5");
        assert_eq!(neutralise("+x"), "'+x");
        assert_eq!(neutralise("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(neutralise("\tx"), "' x");
        assert_eq!(neutralise("'Tis"), "''Tis");
        assert_eq!(neutralise("a\nb"), "a b");
    }

    #[test]
    fn export_then_import_changes_nothing_even_with_hostile_labels() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = tourism(dir.path());
        for (mid, label) in [
            (1201, "=HYPERLINK(\"http://x\";\"y\")"),
            (1202, "'Tis; \"quoted\""),
            (1203, "-1"),
        ] {
            let code = Code::new("T").unwrap();
            let seen = Seen {
                manager: "OPERA",
                kind: MappingKind::TariffType,
                manager_id: id(mid),
                code: &code,
                label,
                file: "f",
            };
            s.write(|tx| resolve(tx, &seen)).unwrap();
        }
        s.write(|tx| set(tx, "OPERA", MappingKind::TariffType, id(1201), "NORMAL"))
            .unwrap();
        s.write(|tx| ignore(tx, "OPERA", MappingKind::TariffType, id(1203)))
            .unwrap();
        let mut out = Vec::new();
        let n = s.read(|c| export(c, "OPERA", &mut out)).unwrap();
        assert_eq!(n, 3);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("\u{feff}manager;kind;"), "{text}");
        assert!(
            text.contains("OPERA;tariff_type;1201;T;\"'=HYPERLINK(\"\"http://x\"\";\"\"y\"\")\";filled;NORMAL\n"),
            "{text}"
        );
        assert!(text.contains(";'-1;ignored;\n"), "{text}");
        let before = rows(&s);
        let summary = import_text(&mut s, &text).unwrap();
        assert_eq!((summary.rows, summary.unchanged), (3, 3));
        assert!(summary.changes.is_empty());
        assert_eq!(rows(&s), before);
    }

    #[test]
    fn import_lists_every_bad_row_and_applies_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = tourism(dir.path());
        let text = format!(
            "{HEADER}OPERA;tariff_type;1201;PLEIN;Plein tarif;filled;NORMAL\n\
             OPERA;tariff_type;1202;REDUIT;Tarif réduit;filled;REDUITE\n\
             OPERA;colour;1;X;x;ignored;\n\
             OPERA;tariff_type;1201;PLEIN;Plein tarif;ignored;\n\
             OPERA;seat_category;2001;CAT1;@cat;filled;PREM\n"
        );
        let Err(ImportError::Rejected(e)) = import_text(&mut s, &text) else {
            panic!("accepted");
        };
        let got: Vec<(String, &str)> = e
            .errors
            .iter()
            .map(|e| (e.position.to_string(), e.code))
            .collect();
        assert_eq!(
            got,
            vec![
                ("line 3, field local_code".to_owned(), "unknown-local-code"),
                ("line 4, field kind".to_owned(), "unknown-kind"),
                ("line 5".to_owned(), "duplicate-row"),
                ("line 6, field manager_label".to_owned(), "formula-cell"),
            ]
        );
        assert!(rows(&s).is_empty(), "nothing applied");
        // The temporary table went with the rollback: a good import works.
        let ok = import_text(
            &mut s,
            &format!("{HEADER}OPERA;tariff_type;1201;PLEIN;Plein tarif;filled;NORMAL\n"),
        )
        .unwrap();
        assert_eq!(ok.created, 1);
    }

    #[test]
    fn import_creates_unseen_rows_with_their_codes_and_keeps_the_managers_label_of_known_ones() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = tourism(dir.path());
        let code = Code::new("PLEIN").unwrap();
        let seen = Seen {
            manager: "OPERA",
            kind: MappingKind::TariffType,
            manager_id: id(1201),
            code: &code,
            label: "Plein tarif",
            file: "f",
        };
        s.write(|tx| resolve(tx, &seen)).unwrap();
        let summary = import_text(
            &mut s,
            &format!(
                "{HEADER}OPERA;tariff_type;1201;EDITED;Edited by ops;filled;NORMAL\n\
                 OPERA;tariff_type;1202;;;filled;REDUIT\n\
                 OPERA;tariff_type;1203;GROUPE;'-Groupe;ignored;\n"
            ),
        )
        .unwrap();
        assert_eq!((summary.created, summary.changed), (2, 1));
        let r = rows(&s);
        assert_eq!(
            (r[0].manager_code.as_str(), r[0].manager_label.as_str()),
            ("PLEIN", "Plein tarif")
        );
        assert_eq!(r[0].local_code.as_deref(), Some("NORMAL"));
        assert_eq!(
            (r[1].manager_code.as_str(), r[1].manager_label.as_str()),
            (UNSEEN_CODE, UNSEEN_LABEL)
        );
        assert_eq!(r[2].manager_label, "-Groupe");
        assert_eq!(r[2].status, MappingStatus::Ignored);
    }

    #[test]
    fn automatic_rows_may_come_back_unchanged_but_not_changed() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = tourism(dir.path());
        s.write(|tx| -> Result<(), DomainError> {
            tx.execute(
                "INSERT INTO venue (id, code, name) VALUES (9001, 'GTH', 'Grand Théâtre')",
                [],
            )?;
            tx.execute(
                "INSERT INTO venue (id, code, name) VALUES (9002, 'AUTRE', 'Autre')",
                [],
            )?;
            let code = Code::new("GTHEATRE").unwrap();
            let seen = Seen {
                manager: "OPERA",
                kind: MappingKind::Venue,
                manager_id: id(3001),
                code: &code,
                label: "Grand Théâtre",
                file: "f",
            };
            fill_auto(tx, &seen, 9001)
        })
        .unwrap();
        let same = format!("{HEADER}OPERA;venue;3001;GTHEATRE;Grand Théâtre;filled;GTH\n");
        assert_eq!(import_text(&mut s, &same).unwrap().unchanged, 1);
        let changed = format!("{HEADER}OPERA;venue;3001;GTHEATRE;Grand Théâtre;filled;AUTRE\n");
        let Err(ImportError::Rejected(e)) = import_text(&mut s, &changed) else {
            panic!("accepted");
        };
        assert_eq!(e.errors[0].code, "automatic-kind");
        assert!(
            e.errors[0].problem.contains("filled GTH"),
            "{}",
            e.errors[0].problem
        );
        assert_eq!(rows(&s)[0].local_id, Some(9001));
    }

    #[test]
    fn list_filters_by_kind_and_status() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = tourism(dir.path());
        s.write(|tx| set(tx, "OPERA", MappingKind::SeatCategory, id(2001), "PREM"))
            .unwrap();
        s.write(|tx| ignore(tx, "OPERA", MappingKind::TariffType, id(1203)))
            .unwrap();
        s.write(|tx| set(tx, "OPERA", MappingKind::TariffType, id(1201), "NORMAL"))
            .unwrap();
        let all = rows(&s);
        // Kinds in MappingKind::ALL order, then ids.
        let keys: Vec<(MappingKind, i64)> = all.iter().map(|r| (r.kind, r.manager_id)).collect();
        assert_eq!(
            keys,
            vec![
                (MappingKind::TariffType, 1201),
                (MappingKind::TariffType, 1203),
                (MappingKind::SeatCategory, 2001)
            ]
        );
        let ignored = s
            .read(|c| {
                list(
                    c,
                    &Filter {
                        status: Some(MappingStatus::Ignored),
                        ..Filter::default()
                    },
                )
            })
            .unwrap();
        assert_eq!(ignored.len(), 1);
        let seats = s
            .read(|c| {
                list(
                    c,
                    &Filter {
                        manager: Some("OPERA"),
                        kind: Some(MappingKind::SeatCategory),
                        status: None,
                    },
                )
            })
            .unwrap();
        assert_eq!(seats[0].local_code.as_deref(), Some("PREM"));
    }
}
