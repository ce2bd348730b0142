//! The technical ids one imported file declared, in a TEMP table of the applying transaction: a duplicate is named with both its positions, and memory stays flat however large the file.
//!
//! The table lives on the store's connection (SQLite's temporary storage, not
//! the process heap) and is emptied when an importer starts. It is created
//! inside the applying transaction, so a rollback takes it away with the rest.
//! Each row keeps the record the id was first read at and, once applied, the
//! local object it became; the seat plan import reads those back to find the
//! rows and seats a file no longer holds.

use rusqlite::{Connection, OptionalExtension};

use crate::domain::DomainError;
use crate::format::Position;

/// Creates (or empties) the table for a new file.
pub(super) fn reset(conn: &Connection) -> Result<(), DomainError> {
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS import_seen (
             kind   TEXT NOT NULL,
             id     INTEGER NOT NULL,
             record INTEGER NOT NULL,
             what   TEXT NOT NULL,
             local  INTEGER,
             skipped INTEGER NOT NULL DEFAULT 0,
             PRIMARY KEY (kind, id)
         ) WITHOUT ROWID;
         CREATE INDEX IF NOT EXISTS temp.import_seen_local ON import_seen (kind, local);
         DELETE FROM temp.import_seen;",
    )?;
    Ok(())
}

/// Records that `record` (`what`, e.g. "seat 50001") declares the manager's
/// `id` of `kind`; refuses the file when an earlier record declared it too
/// (code `duplicate-id`, both positions named).
pub(super) fn declare(
    conn: &Connection,
    file: &str,
    kind: &'static str,
    id: i64,
    record: u64,
    what: &str,
) -> Result<(), DomainError> {
    // One statement for the common case, a new id; the first record is
    // read back only to name it when the id was declared already.
    let inserted = conn
        .prepare_cached(
            "INSERT INTO temp.import_seen (kind, id, record, what) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (kind, id) DO NOTHING",
        )?
        .execute((kind, id, i64::try_from(record).unwrap_or(i64::MAX), what))?;
    if inserted == 1 {
        return Ok(());
    }
    let (first, first_what): (i64, String) = conn
        .prepare_cached("SELECT record, what FROM temp.import_seen WHERE kind = ?1 AND id = ?2")?
        .query_row((kind, id), |r| Ok((r.get(0)?, r.get(1)?)))?;
    Err(DomainError::content(
        file,
        Position::record(record, what),
        "duplicate-id",
        format!(
            "{kind} {id} appears at record {first} ({first_what}) and at record {record} ({what}); expected each {kind} id once per file: the manager's export must not repeat an object"
        ),
    ))
}

/// The local object the manager's `id` of `kind` became in this file;
/// `skipped` when the file kept it as it was (a seat of an ignored seat
/// category): it is not removed, but the file did not give it its label.
pub(super) fn set_local(
    conn: &Connection,
    kind: &'static str,
    id: i64,
    local: i64,
    skipped: bool,
) -> Result<(), DomainError> {
    conn.prepare_cached(
        "UPDATE temp.import_seen SET local = ?3, skipped = ?4 WHERE kind = ?1 AND id = ?2",
    )?
    .execute((kind, id, local, skipped))?;
    Ok(())
}

/// The record (and its name) that made `local` the object of `kind` in this
/// file and gave it its label, if one did.
pub(super) fn record_of_local(
    conn: &Connection,
    kind: &'static str,
    local: i64,
) -> Result<Option<(u64, String)>, DomainError> {
    Ok(conn
        .prepare_cached("SELECT record, what FROM temp.import_seen WHERE kind = ?1 AND local = ?2")?
        .query_row((kind, local), |r| {
            Ok((u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0), r.get(1)?))
        })
        .optional()?)
}
