//! Labels that move inside one master-data seat plan (rows renumbered, seats swapped or moved): a label another row or seat still carries is set aside until the file reaches that one.
//!
//! `seat_row` is unique on (block, code) and `seat` on (row, number), and
//! SQLite checks it at every statement, so a swap loaded record by record
//! would clash half way. The holder of a label a record takes gets a
//! temporary label (`~` and a number: a code never starts with `~`) and is
//! noted in a TEMP table of the loading transaction. When the file ends
//! ([`seatplan_done`]), every noted object must carry a real label again;
//! one that does not lost its label to another object of the file and got
//! no other (two seats of one row with one number, or a row whose code a
//! new row took): the load is refused, naming both, and rolls back.

use rusqlite::{Connection, OptionalExtension};

use crate::domain::DomainError;

/// Where a label lives: the table, its label column and the words for it.
#[derive(Clone, Copy)]
pub(super) struct Labelled {
    pub table: &'static str,
    pub label: &'static str,
    pub parent: &'static str,
    pub words: &'static str,
}

pub(super) const ROW: Labelled = Labelled {
    table: "seat_row",
    label: "code",
    parent: "block",
    words: "row",
};

pub(super) const SEAT: Labelled = Labelled {
    table: "seat",
    label: "number",
    parent: "row",
    words: "seat",
};

/// Frees `label` in `parent` for the object `me`: the object carrying it
/// (if another) is set aside under a temporary label.
pub(super) fn free(
    conn: &Connection,
    what: Labelled,
    parent: i64,
    label: &str,
    me: i64,
) -> Result<(), DomainError> {
    let holder: Option<i64> = conn
        .prepare_cached(&format!(
            "SELECT id FROM {t} WHERE {p} = ?1 AND {l} = ?2 AND id <> ?3",
            t = what.table,
            p = what.parent,
            l = what.label
        ))?
        .query_row((parent, label, me), |r| r.get(0))
        .optional()?;
    let Some(holder) = holder else {
        return Ok(());
    };
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS load_set_aside (
             tbl      TEXT NOT NULL,
             id       INTEGER NOT NULL,
             old      TEXT NOT NULL,
             taken_by INTEGER NOT NULL,
             seq      INTEGER NOT NULL,
             PRIMARY KEY (tbl, id)
         );",
    )?;
    let seq: i64 = conn.query_row(
        "SELECT coalesce(max(seq), 0) + 1 FROM temp.load_set_aside",
        [],
        |r| r.get(0),
    )?;
    if seq > 0x0FFF_FFFF {
        return Err(DomainError::Invalid {
            object: format!("{} {holder}", what.words),
            problem: "the file relabels more rows and seats than one load can set aside".to_owned(),
        });
    }
    conn.prepare_cached(&format!(
        "UPDATE {t} SET {l} = ?2 WHERE id = ?1",
        t = what.table,
        l = what.label
    ))?
    .execute((holder, format!("~{seq:x}")))?;
    conn.prepare_cached(
        "INSERT OR REPLACE INTO temp.load_set_aside (tbl, id, old, taken_by, seq)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute((what.table, holder, label, me, seq))?;
    Ok(())
}

/// Ends a seat plan file: refuses it when an object set aside got no label
/// back (see the module documentation); forgets the notes otherwise.
pub fn seatplan_done(conn: &Connection, file: &str) -> Result<(), DomainError> {
    let noted: bool = conn
        .prepare_cached(
            "SELECT 1 FROM sqlite_temp_master WHERE type = 'table' AND name = 'load_set_aside'",
        )?
        .exists([])?;
    if !noted {
        return Ok(());
    }
    for what in [ROW, SEAT] {
        let lost: Option<(i64, String, i64, i64)> = conn
            .prepare(&format!(
                "SELECT a.id, a.old, a.taken_by, x.{p} FROM temp.load_set_aside a
                 JOIN {t} x ON x.id = a.id
                 WHERE a.tbl = ?1 AND x.{l} GLOB '~*' ORDER BY a.seq LIMIT 1",
                t = what.table,
                l = what.label,
                p = what.parent
            ))?
            .query_row([what.table], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?;
        if let Some((id, old, taken_by, parent)) = lost {
            return Err(DomainError::Invalid {
                object: format!("{file}: {} {id}", what.words),
                problem: format!(
                    "its {label} {old} in {parent_words} {parent} goes to {words} {taken_by} in this file, and the file gives {words} {id} no other {label}; give each {words} of a {parent_words} its own {label} (a swap sends both with their new {label}s)",
                    parent_words = what.parent.replace('_', " "),
                    label = what.label,
                    words = what.words,
                ),
            });
        }
    }
    conn.execute_batch("DELETE FROM temp.load_set_aside")?;
    Ok(())
}
