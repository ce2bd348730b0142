//! The ops CSV round trip of the mapping table: [`export`] writes a
//! manager's rows, [`import`] reads them back and applies them all or
//! nothing.
//!
//! `export` takes a connection and a writer and returns the number of rows
//! written; `import` takes the caller's transaction and a reader and returns
//! an [`ImportSummary`], or an [`ImportError`] listing every bad row
//! ([`MappingCsvErrors`]) with its line, column and stable code. The format
//! and the rules are in the parent module's documentation.

use std::borrow::Cow;
use std::io::{BufReader, Read, Write};

use rusqlite::{Connection, Transaction};

use super::commands::{current, find_local, for_each_row, import_of, logical_category, put};
use super::{Change, Filter, State, UNSEEN_CODE, UNSEEN_LABEL, is_mapped_by_hand, parse_kind};
use crate::domain::DomainError;
use crate::format::csv::{CsvReader, Row as CsvRow};
use crate::format::{FormatError, Limits};
use crate::ident::Code;
use crate::store::mapping::{MappingKind, MappingStatus};

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

/// Longest manager label the table holds, in characters.
const LABEL_MAX: usize = 200;

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
    apply_row(
        tx,
        manager,
        row,
        (kind, id, status),
        Given { code, label, local },
    )
}

/// The manager's code and label and the local code a row gives.
struct Given<'a> {
    code: &'a str,
    label: &'a str,
    local: &'a str,
}

/// Applies a row whose key and status are valid: a kind filled by the
/// imports must stay as it is; a kind mapped by hand is put in the row's
/// state (its local code looked up), the row created with the manager's
/// code and label when no file named the object yet. The outer error is the
/// store's; the inner one the row's problem.
fn apply_row(
    tx: &Transaction<'_>,
    manager: &str,
    row: &CsvRow<'_>,
    (kind, id, status): (MappingKind, i64, MappingStatus),
    given: Given<'_>,
) -> Result<Result<Change, FormatError>, DomainError> {
    let Given { code, label, local } = given;
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
    if status == MappingStatus::Filled
        && let Some(problem) = logical_category(tx, kind, id, local)?
    {
        return Ok(Err(row.error(COL_LOCAL, "logical-seat-category", problem)));
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
        if !code.is_empty()
            && code != UNSEEN_CODE
            && let Err(e) = Code::new(code)
        {
            return Ok(Err(row.error(COL_CODE, e.code(), e.to_string())));
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
