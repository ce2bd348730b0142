//! The technical ids one imported file declared, in TEMP tables of the applying transaction: a duplicate is named with both its positions, and memory stays flat however large the file.
//!
//! The tables live on the store's connection (SQLite's temporary storage, not
//! the process heap) and are emptied when an importer starts. They are created
//! inside the applying transaction, so a rollback takes them away with the
//! rest. `import_seen` keeps the record each id was first read at (its
//! kind, id and rank only: a refusal names an earlier record by its rank and
//! its id, which finds it in the file; a description of each record, kept
//! for that, made its rows about three times as long and a 1.6-million-seat
//! plan's apply about 7% slower);
//! `import_local`, once the record is applied, the local object it became
//! (the seat plan import leaves out the rows and seats the file created:
//! `seat_changes::Before`). The seat plan import reads those back to find
//! the rows and seats a file no longer holds.

use rusqlite::{Connection, OptionalExtension, Statement};

use crate::domain::{DomainError, held};
use crate::format::Position;

/// The ids one file declared and the local objects they became, with the
/// two statements that write them at every record held for the file.
pub(super) struct FileIds<'t> {
    conn: &'t Connection,
    declare: Option<Statement<'t>>,
    set_local: Option<Statement<'t>>,
}

impl<'t> FileIds<'t> {
    /// Creates (or empties) the tables for a new file: `import_seen`, the
    /// ids the file declared, and `import_local`, the local objects they
    /// became. Two tables, each written once per record, rather than one
    /// row updated with its local object and indexed by it: that update and
    /// its index cost as much as the rest of a seat's bookkeeping.
    pub(super) fn new(conn: &'t Connection) -> Result<FileIds<'t>, DomainError> {
        conn.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS import_seen (
                 kind   TEXT NOT NULL,
                 id     INTEGER NOT NULL,
                 record INTEGER NOT NULL,
                 PRIMARY KEY (kind, id)
             ) WITHOUT ROWID;
             CREATE TEMP TABLE IF NOT EXISTS import_local (
                 kind  TEXT NOT NULL,
                 local INTEGER NOT NULL,
                 id    INTEGER NOT NULL,
                 PRIMARY KEY (kind, local, id)
             ) WITHOUT ROWID;
             DELETE FROM temp.import_seen;
             DELETE FROM temp.import_local;",
        )?;
        Ok(FileIds {
            conn,
            declare: None,
            set_local: None,
        })
    }

    /// Records that `record` declares the manager's `id` of `kind`; refuses
    /// the file when an earlier record declared it too (code
    /// `duplicate-id`, both positions named, this one as `what` says it,
    /// e.g. "seat 3 of row PARTERRE A, id 50001").
    pub(super) fn declare(
        &mut self,
        file: &str,
        kind: &'static str,
        id: i64,
        record: u64,
        what: impl FnOnce() -> String,
    ) -> Result<(), DomainError> {
        // One statement for the common case, a new id; the first record is
        // read back only to name it when the id was declared already.
        let inserted = held(
            &mut self.declare,
            self.conn,
            "INSERT INTO temp.import_seen (kind, id, record) VALUES (?1, ?2, ?3)
             ON CONFLICT (kind, id) DO NOTHING",
        )?
        .execute((kind, id, i64::try_from(record).unwrap_or(i64::MAX)))?;
        if inserted == 1 {
            return Ok(());
        }
        let first: i64 = self
            .conn
            .prepare_cached("SELECT record FROM temp.import_seen WHERE kind = ?1 AND id = ?2")?
            .query_row((kind, id), |r| r.get(0))?;
        let what = what();
        Err(DomainError::content(
            file,
            Position::record(record, &what),
            "duplicate-id",
            format!(
                "{kind} {id} appears at record {first} and at record {record} ({what}); expected each {kind} id once per file: the manager's export must not repeat an object"
            ),
        ))
    }

    /// The local object the manager's `id` of `kind` became in this file,
    /// with the labels the file gave it (a seat skipped for its ignored
    /// seat category included: it keeps its category, not its labels).
    pub(super) fn set_local(
        &mut self,
        kind: &'static str,
        id: i64,
        local: i64,
    ) -> Result<(), DomainError> {
        held(
            &mut self.set_local,
            self.conn,
            "INSERT INTO temp.import_local (kind, local, id) VALUES (?1, ?3, ?2)
             ON CONFLICT DO NOTHING",
        )?
        .execute((kind, id, local))?;
        Ok(())
    }
}

/// The record that made `local` the object of `kind` in this file and gave
/// it its label, if one did, with its kind and id ("row 4001").
pub(super) fn record_of_local(
    conn: &Connection,
    kind: &'static str,
    local: i64,
) -> Result<Option<(u64, String)>, DomainError> {
    Ok(conn
        .prepare_cached(
            "SELECT s.record, s.kind || ' ' || s.id FROM temp.import_local l
             JOIN temp.import_seen s ON s.kind = l.kind AND s.id = l.id
             WHERE l.kind = ?1 AND l.local = ?2
             ORDER BY s.record LIMIT 1",
        )?
        .query_row((kind, local), named_record)
        .optional()?)
}

/// The record (with its kind and id) that declared `local`, an object of `kind`
/// this file created for `manager` and did not record in `import_local`
/// ([`super::seat_changes::Before`]): found through its mapping row. Only a
/// file refused for naming two objects with one label asks, so the mapping
/// is read without an index on its local ids.
pub(super) fn record_of_created(
    conn: &Connection,
    manager: &str,
    kind: &'static str,
    local: i64,
) -> Result<Option<(u64, String)>, DomainError> {
    Ok(conn
        .prepare_cached(
            "SELECT s.record, s.kind || ' ' || s.id FROM mapping m
             JOIN temp.import_seen s ON s.kind = m.kind AND s.id = m.manager_id
             WHERE m.manager = ?1 AND m.kind = ?2 AND m.local_id = ?3
             ORDER BY s.record LIMIT 1",
        )?
        .query_row((manager, kind, local), named_record)
        .optional()?)
}

/// A record's rank and its kind and id, as the two look-ups above select them.
fn named_record(r: &rusqlite::Row<'_>) -> rusqlite::Result<(u64, String)> {
    Ok((u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0), r.get(1)?))
}
