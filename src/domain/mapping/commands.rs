//! Ops commands on the mapping table: [`list`], [`set`], [`ignore`],
//! [`unset`] and [`check`].
//!
//! Each takes the caller's connection or transaction and a manager, kind and
//! id (and for `set` the local object's code); the changes return a
//! [`Change`] (the row before and after) for the run log, `check` returns the
//! pending and broken rows as setup [`Finding`]s. Only the kinds ops map by
//! hand can be changed here.
//!
//! Ops may fill or ignore a mapping before any file names the manager object
//! (the manual's step 3 comes before the first catalogue). Such a row has no
//! manager code or label yet: it is stored with the code [`UNSEEN_CODE`] and
//! the label [`UNSEEN_LABEL`], first and last seen at the time ops created it
//! and no first file; the first file that names the object refreshes code and
//! label ([`resolve`](super::resolve()) does) and keeps what ops chose.

use std::fmt;

use rusqlite::{Connection, OptionalExtension, Transaction};

use super::{is_mapped_by_hand, local_table};
use crate::domain::DomainError;
use crate::domain::setup::{Finding, Severity};
use crate::ident::TechId;
use crate::store::mapping::{MappingKind, MappingStatus};

/// Manager code of a row ops created before any file named the object.
pub const UNSEEN_CODE: &str = "?";
/// Label of a row ops created before any file named the object.
pub const UNSEEN_LABEL: &str = "(not yet seen)";

/// Most local codes quoted in an "unknown local code" message.
const MAX_CODES_QUOTED: usize = 40;

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
pub(super) fn for_each_row(
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
pub(super) enum LocalLookup {
    Unknown(String),
    Ambiguous(String),
}

impl LocalLookup {
    pub(super) fn code(&self) -> &'static str {
        match self {
            LocalLookup::Unknown(_) => "unknown-local-code",
            LocalLookup::Ambiguous(_) => "ambiguous-local-code",
        }
    }

    pub(super) fn problem(self) -> String {
        match self {
            LocalLookup::Unknown(p) | LocalLookup::Ambiguous(p) => p,
        }
    }
}

/// The manual's rule, quoted when a logical seat category is given where a
/// physical one is mapped.
pub const PHYSICAL_ONLY: &str = "the manual: \"map the physical seat categories, not the logical ones\"; a logical seat category sells the physical one it names, which is what is mapped";

/// Why a `seat_category` mapping of `manager_id` to `local_code` is refused
/// when either is a logical seat category: the manager's id is one its
/// catalogues sent as a logical seat category, or the local code is only a
/// local logical seat category's. `None` for any other kind, or when
/// neither is.
pub(super) fn logical_category(
    conn: &Connection,
    kind: MappingKind,
    manager_id: i64,
    local_code: &str,
) -> Result<Option<String>, DomainError> {
    if kind != MappingKind::SeatCategory {
        return Ok(None);
    }
    let by_id: Option<(String, i64)> = conn
        .prepare_cached(
            "SELECT code, seat_category FROM logical_seat_category WHERE manager_id = ?1
             ORDER BY id LIMIT 1",
        )?
        .query_row([manager_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((code, physical)) = by_id {
        let physical: String = conn
            .prepare_cached("SELECT code FROM seat_category WHERE id = ?1")?
            .query_row([physical], |r| r.get(0))?;
        return Ok(Some(format!(
            "manager id {manager_id} is the logical seat category {code} (of physical seat category {physical}), not a physical one: {PHYSICAL_ONLY}; map the manager's physical seat category instead"
        )));
    }
    let local_logical = conn
        .prepare_cached(
            "SELECT 1 FROM logical_seat_category WHERE code = ?1
             AND NOT EXISTS (SELECT 1 FROM seat_category WHERE code = ?1)",
        )?
        .exists([local_code])?;
    Ok(local_logical.then(|| {
        format!(
            "local code {:?} is a logical seat category, not a physical one: {PHYSICAL_ONLY}",
            crate::ident::shorten(local_code)
        )
    }))
}

/// The local object of `kind` whose code is `code`.
pub(super) fn find_local(
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
pub(super) fn import_of(kind: MappingKind) -> &'static str {
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
pub(super) fn current(
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
pub(super) fn put(
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
    if let Some(problem) = logical_category(tx, kind, manager_id.get(), local_code)? {
        return Err(DomainError::Invalid {
            object: format!("mapping {kind} {manager_id} of {manager}"),
            problem,
        });
    }
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

/// One local object a mapping of a kind can point to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalCode {
    pub id: i64,
    /// The code `set` takes (a seat's number).
    pub code: String,
    /// Rows and seats have none.
    pub name: Option<String>,
}

/// The local objects a mapping of `kind` can point to, by code (seats by
/// number; rows and seats have no name): the codes [`set`] takes.
pub fn local_codes(conn: &Connection, kind: MappingKind) -> Result<Vec<LocalCode>, DomainError> {
    let (code, name) = match kind {
        MappingKind::Seat => ("number", "NULL"),
        MappingKind::Row => ("code", "NULL"),
        _ => ("code", "name"),
    };
    let sql = format!(
        "SELECT id, {code}, {name} FROM {} ORDER BY {code}, id",
        kind.local_table()
    );
    let mut st = conn.prepare(&sql)?;
    let rows = st
        .query_map([], |r| {
            Ok(LocalCode {
                id: r.get(0)?,
                code: r.get(1)?,
                name: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
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
