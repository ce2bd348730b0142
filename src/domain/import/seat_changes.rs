//! The seat plan changes a manager makes to a venue (rows renumbered, seats relabelled, swapped, moved or removed), applied at the distributor without breaking the schema's one-label-per-place rule.
//!
//! `seat_row` is unique on (block, code) and `seat` on (row, number), and
//! SQLite checks that at every statement. A file that swaps the labels of
//! two seats, or gives row A's code to a new row, would break it half way.
//! So when a row or seat takes a label another local object still carries,
//! that occupant is first set aside under a temporary label (`~` and a
//! number: a code never starts with `~`); the file gives it its new label
//! when it reaches it. At the end of an applied file, every row and seat of
//! the file's configurations that the file did not declare (a set-aside one
//! included) is gone at the manager:
//!
//! - a seat that a contingent holds, an active sale sold, or a sale or
//!   refund line not yet sent to the manager names, refuses the file
//!   (`seat-held`, the seat named): the manager takes it back first, the
//!   distributor sends its sales (a line names its seat by its labels);
//! - a seat nothing refers to is deleted, with its mapping row;
//! - a seat only history refers to (a refunded sale, an older contingent
//!   row at the manager) is kept under the label `#` and its local id in
//!   base 36, out of the way of every real label;
//! - a row left without seats is deleted with its mapping row, one with
//!   kept seats is relabelled the same way.
//!
//! Two objects of the file with one label in one parent are refused
//! (`duplicate-code`, `duplicate-number`) with both records.

use rusqlite::{OptionalExtension, Transaction};

use super::seen::FileIds;
use crate::domain::DomainError;

/// Temporary labels fit the schema's 8 characters: `~` and 7 hex digits.
const MAX_SET_ASIDE: u64 = 0x0FFF_FFFF;

/// Where a label lives: the table, its label column, its parent column, and
/// the words for messages.
#[derive(Clone, Copy)]
pub(super) struct Place {
    pub table: &'static str,
    pub label: &'static str,
    pub parent: &'static str,
    /// The kind in `seen` ("row", "seat").
    pub kind: &'static str,
    /// What a duplicate label is refused as.
    pub duplicate: &'static str,
}

pub(super) const ROW: Place = Place {
    table: "seat_row",
    label: "code",
    parent: "block",
    kind: "row",
    duplicate: "duplicate-code",
};

pub(super) const SEAT: Place = Place {
    table: "seat",
    label: "number",
    parent: "row",
    kind: "seat",
    duplicate: "duplicate-number",
};

/// Tells the rows and seats a file created from the others: their local ids
/// are above the highest ones of their tables when the file started.
/// SQLite gives a new row of a table whose key is an `INTEGER PRIMARY KEY`
/// the id after the highest one (`seat`, `seat_row`), and while a seat plan
/// is applied only its declarations create rows and seats. An object the
/// file created is one it declared, so it can never be absent from it: the
/// import does not record it in `temp.import_local` (one write less per new
/// seat, and a venue's first seat plan is only new ones), and the removals'
/// search leaves it out. Should SQLite ever give an id below the highest
/// (it does once an id reaches the largest integer), the object is simply
/// recorded as any other.
#[derive(Debug, Clone, Copy)]
pub(super) struct Before<'t> {
    /// The manager whose file it is (its mapping rows name the objects).
    manager: &'t str,
    row: i64,
    seat: i64,
}

impl<'t> Before<'t> {
    /// The highest ids now: call it before the file's first record.
    pub(super) fn read(tx: &Transaction<'_>, manager: &'t str) -> Result<Before<'t>, DomainError> {
        let highest = |table: &str| -> Result<i64, DomainError> {
            Ok(tx.query_row(
                &format!("SELECT coalesce(max(id), 0) FROM {table}"),
                [],
                |r| r.get(0),
            )?)
        };
        Ok(Before {
            manager,
            row: highest(ROW.table)?,
            seat: highest(SEAT.table)?,
        })
    }

    fn highest(&self, place: Place) -> i64 {
        if place.table == SEAT.table {
            self.seat
        } else {
            self.row
        }
    }

    /// Whether the file created `local`, an object of `place`.
    pub(super) fn created(&self, place: Place, local: i64) -> bool {
        local > self.highest(place)
    }
}

/// Runs `write`, the record's insert or update and its mapping, taking
/// `label` in `parent` for the local object `me` (None: a new one). When
/// another object carries that label, SQLite refuses the write and undoes
/// it (the unique rule of `place`): the label is freed ([`free_label`]) and
/// `write` runs again. Most records keep or take a label no other object
/// has; they need no look-up first. `before` and `ids` are what the file
/// did so far: they tell a label this file gave already (a refusal naming
/// the record that gave it) from one it finds.
pub(super) fn with_label<T>(
    tx: &Transaction<'_>,
    (before, ids): (Before<'_>, &mut FileIds<'_>),
    place: Place,
    (parent, label, me): (i64, &str, Option<i64>),
    parent_words: &dyn Fn() -> String,
    set_aside: &mut u64,
    mut write: impl FnMut() -> Result<T, DomainError>,
) -> Result<T, DomainError> {
    match write() {
        Err(DomainError::Sql(rusqlite::Error::SqliteFailure(f, Some(message))))
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                && message.starts_with(&format!("UNIQUE constraint failed: {}.", place.table)) =>
        {
            free_label(
                tx,
                (before, ids),
                place,
                parent,
                label,
                me,
                &parent_words(),
                set_aside,
            )?;
            write()
        }
        done => done,
    }
}

/// Frees `label` in `parent` for the local object `me` (None: a new one):
/// another object carrying it is set aside under a temporary label, unless
/// this file already gave it that label (then the file names two objects
/// with one label, and is refused).
#[allow(
    clippy::too_many_arguments,
    reason = "the parts of one label change, each used once"
)]
fn free_label(
    tx: &Transaction<'_>,
    (before, ids): (Before<'_>, &mut FileIds<'_>),
    place: Place,
    parent: i64,
    label: &str,
    me: Option<i64>,
    parent_words: &str,
    set_aside: &mut u64,
) -> Result<(), DomainError> {
    let occupant: Option<i64> = tx
        .prepare_cached(&format!(
            "SELECT id FROM {t} WHERE {p} = ?1 AND {l} = ?2 AND id IS NOT ?3",
            t = place.table,
            p = place.parent,
            l = place.label
        ))?
        .query_row((parent, label, me), |r| r.get(0))
        .optional()?;
    let Some(other) = occupant else {
        return Ok(());
    };
    // The file gave it this label: it names two objects with one label.
    let given = if before.created(place, other) {
        ids.record_of_created(before.manager, place.kind, other)?
    } else {
        ids.record_of_local(place.kind, other)?
    };
    if let Some((record, what)) = given {
        return Err(DomainError::refused(
            place.duplicate,
            format!("{parent_words} {} {label}", place.label),
            format!(
                "{what} at record {record} already has this {label_word} in {parent_words}; expected each {label_word} once per {parent}",
                label_word = place.label,
                parent = place.parent
            ),
        ));
    }
    *set_aside += 1;
    if *set_aside > MAX_SET_ASIDE {
        return Err(DomainError::refused(
            "too-many-changes",
            format!("{parent_words} {} {label}", place.label),
            format!("the file relabels more than {MAX_SET_ASIDE} rows and seats"),
        ));
    }
    tx.prepare_cached(&format!(
        "UPDATE {t} SET {l} = ?2 WHERE id = ?1",
        t = place.table,
        l = place.label
    ))?
    .execute((other, format!("~{set_aside:x}")))?;
    Ok(())
}

/// The label a kept object gets once the manager removed it: `#` and its
/// local id in base 36, when that fits the schema's 8 characters.
fn retired_label(id: i64) -> Option<String> {
    let mut n = u64::try_from(id).ok()?;
    let mut digits = Vec::new();
    loop {
        let d = u32::try_from(n % 36).ok()?;
        digits.push(char::from_digit(d, 36)?.to_ascii_uppercase());
        n /= 36;
        if n == 0 {
            break;
        }
    }
    if digits.len() > 7 {
        return None;
    }
    Some(
        std::iter::once('#')
            .chain(digits.into_iter().rev())
            .collect(),
    )
}

/// Seats of the file's configurations that it did not declare (the
/// candidates for removal), into `temp.import_gone`.
/// `?1`: the highest seat id before the file ([`Before`]).
const GONE_SEATS: &str = "
    INSERT INTO temp.import_gone (id)
    SELECT s.id FROM seat s
    JOIN seat_row r ON r.id = s.row
    JOIN block b ON b.id = r.block
    WHERE b.configuration IN
              (SELECT local FROM temp.import_local WHERE kind = 'configuration')
      AND s.id <= ?1
      AND NOT EXISTS
              (SELECT 1 FROM temp.import_local t WHERE t.kind = 'seat' AND t.local = s.id)";

/// Rows of the file's configurations that it did not declare, into
/// `temp.import_gone`.
/// `?1`: the highest row id before the file ([`Before`]).
const GONE_ROWS: &str = "
    INSERT INTO temp.import_gone (id)
    SELECT r.id FROM seat_row r JOIN block b ON b.id = r.block
    WHERE b.configuration IN
              (SELECT local FROM temp.import_local WHERE kind = 'configuration')
      AND r.id <= ?1
      AND NOT EXISTS
              (SELECT 1 FROM temp.import_local t WHERE t.kind = 'row' AND t.local = r.id)";

/// A seat holds a place in history when any of these refers to it.
const SEAT_REFERRED: &str = "
    EXISTS (SELECT 1 FROM contingent_seat x WHERE x.seat = g.id)
    OR EXISTS (SELECT 1 FROM sale_line x WHERE x.seat = g.id)
    OR EXISTS (SELECT 1 FROM allotment_seat x WHERE x.seat = g.id)
    OR EXISTS (SELECT 1 FROM ticket x WHERE x.seat = g.id)
    OR EXISTS (SELECT 1 FROM allotment_return x WHERE x.seat = g.id)";

/// Applies the removals of an applied seat plan (see the module
/// documentation). `manager` is the external manager whose mapping rows of
/// removed objects are deleted; `set_aside` is how many rows and seats the
/// file set aside under a temporary label. Returns how many seats and rows
/// were removed or kept relabelled.
///
/// A temporary label exists only while the file that set it is applied
/// (this function ends each one), so one is looked for, across every venue,
/// only when the file set some aside; otherwise only the file's
/// configurations are read.
pub(super) fn remove_absent(
    tx: &Transaction<'_>,
    before: Before<'_>,
    set_aside: u64,
) -> Result<u64, DomainError> {
    let manager = before.manager;
    tx.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS import_gone (id INTEGER PRIMARY KEY);
         DELETE FROM temp.import_gone;",
    )?;
    tx.execute(GONE_SEATS, [before.seat])?;
    if set_aside > 0 {
        gone_set_aside(tx, SEAT)?;
    }
    refuse_held(tx, manager)?;
    tx.execute(
        &format!(
            "DELETE FROM mapping WHERE manager = ?1 AND kind = 'seat' AND local_id IN
                 (SELECT g.id FROM temp.import_gone g WHERE NOT ({SEAT_REFERRED}))"
        ),
        [manager],
    )?;
    // A removed seat leaves the logical configurations that named it.
    tx.execute(
        &format!(
            "DELETE FROM logical_seat WHERE seat IN
                 (SELECT g.id FROM temp.import_gone g WHERE NOT ({SEAT_REFERRED}))"
        ),
        [],
    )?;
    let mut changed = tx.execute(
        &format!(
            "DELETE FROM seat WHERE id IN
                 (SELECT g.id FROM temp.import_gone g WHERE NOT ({SEAT_REFERRED}))"
        ),
        [],
    )? as u64;
    changed += retire(tx, "seat", "number", "SELECT id FROM temp.import_gone")?;

    tx.execute("DELETE FROM temp.import_gone", [])?;
    tx.execute(GONE_ROWS, [before.row])?;
    if set_aside > 0 {
        gone_set_aside(tx, ROW)?;
    }
    let empty = "SELECT g.id FROM temp.import_gone g WHERE NOT EXISTS (SELECT 1 FROM seat s WHERE s.row = g.id)";
    tx.execute(
        &format!(
            "DELETE FROM mapping WHERE manager = ?1 AND kind = 'row' AND local_id IN ({empty})"
        ),
        [manager],
    )?;
    changed += tx.execute(&format!("DELETE FROM seat_row WHERE id IN ({empty})"), [])? as u64;
    changed += retire(tx, "seat_row", "code", "SELECT id FROM temp.import_gone")?;
    Ok(changed)
}

/// Adds to `temp.import_gone` every object of `place` left under a
/// temporary label, whatever its venue.
fn gone_set_aside(tx: &Transaction<'_>, place: Place) -> Result<(), DomainError> {
    tx.execute(
        &format!(
            "INSERT OR IGNORE INTO temp.import_gone (id) SELECT id FROM {t} WHERE {l} GLOB '~*'",
            t = place.table,
            l = place.label
        ),
        [],
    )?;
    Ok(())
}

/// Gives every object `ids` selects its retired label, unless it has it.
fn retire(
    tx: &Transaction<'_>,
    table: &'static str,
    label: &'static str,
    ids: &str,
) -> Result<u64, DomainError> {
    let mut n = 0;
    loop {
        // A batch at a time, so memory stays flat however many are kept.
        let batch: Vec<(i64, String)> = tx
            .prepare(&format!(
                "SELECT t.id, t.{label} FROM {table} t WHERE t.id IN ({ids}) AND t.{label} NOT GLOB '#*' LIMIT 500"
            ))?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        if batch.is_empty() {
            return Ok(n);
        }
        for (id, old) in batch {
            let Some(new) = retired_label(id) else {
                return Err(DomainError::refused(
                    "seat-referenced",
                    format!("local {table} {id} ({old})"),
                    "the manager removed it, sales history refers to it, and its local id is too large for a retired label; tell the stxd maintainers",
                ));
            };
            tx.prepare_cached(&format!("UPDATE {table} SET {label} = ?2 WHERE id = ?1"))?
                .execute((id, new))?;
            n += 1;
        }
    }
}

/// Refuses the file when a removed seat is held by a contingent or an
/// active sale, naming the first such seat and how many there are.
fn refuse_held(tx: &Transaction<'_>, manager: &str) -> Result<(), DomainError> {
    let held = "SELECT g.id FROM temp.import_gone g WHERE
                    EXISTS (SELECT 1 FROM contingent_seat x WHERE x.seat = g.id)
                    OR EXISTS (SELECT 1 FROM sale_line x WHERE x.seat = g.id
                                   AND (x.active = 1 OR x.exported_in IS NULL))
                    OR EXISTS (SELECT 1 FROM allotment_seat x WHERE x.seat = g.id)
                    OR EXISTS (SELECT 1 FROM ticket x WHERE x.seat = g.id AND x.state = 'valid')";
    let count: i64 = tx.query_row(&format!("SELECT count(*) FROM ({held})"), [], |r| r.get(0))?;
    if count == 0 {
        return Ok(());
    }
    let (id, block, row, number, manager_id, by): (i64, String, String, String, Option<i64>, String) = tx.query_row(
        &format!(
            "SELECT s.id, b.code, r.code, s.number,
                    (SELECT m.manager_id FROM mapping m
                     WHERE m.manager = ?1 AND m.kind = 'seat' AND m.local_id = s.id),
                    coalesce(
                        (SELECT 'the contingent of performance ' || p.code FROM contingent_seat x
                         JOIN performance p ON p.id = x.performance WHERE x.seat = s.id LIMIT 1),
                        (SELECT 'sale line ' || x.id || ' (performance ' || p.code || ')' FROM sale_line x
                         JOIN performance p ON p.id = x.performance WHERE x.seat = s.id AND x.active = 1 LIMIT 1),
                        (SELECT 'sale line ' || x.id || ' (not sent to the manager yet)' FROM sale_line x
                         WHERE x.seat = s.id AND x.exported_in IS NULL LIMIT 1),
                        'an allotment or a ticket')
             FROM seat s JOIN seat_row r ON r.id = s.row JOIN block b ON b.id = r.block
             WHERE s.id = ({held} LIMIT 1)"
        ),
        [manager],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
    )?;
    let manager_id = manager_id.map_or_else(|| "unknown".to_owned(), |m| m.to_string());
    let label = if number.starts_with('~') {
        "relabelled".to_owned()
    } else {
        format!("{block} {row} {number}")
    };
    Err(DomainError::refused(
        "seat-held",
        format!("seat {manager_id} (local seat {id}, {label})"),
        format!(
            "the seat plan no longer has this seat, but {by} holds it ({count} held seat(s) removed in all); the manager must take the seats back from the contingent, the sales on them be refunded and every line on them sent to the manager (stxd export sales) before the seat plan removes them; then send it again"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::retired_label;

    #[test]
    fn retired_labels_fit_eight_characters_and_never_look_like_codes() {
        assert_eq!(retired_label(1).as_deref(), Some("#1"));
        assert_eq!(retired_label(36).as_deref(), Some("#10"));
        assert_eq!(
            retired_label(36_i64.pow(7) - 1).as_deref(),
            Some("#ZZZZZZZ")
        );
        assert_eq!(retired_label(36_i64.pow(7)), None);
        assert_eq!(retired_label(-1), None);
    }
}
