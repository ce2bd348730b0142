//! The technical ids one imported file declared, in TEMP tables of the applying transaction: a duplicate is named with both its positions, and memory stays flat however large the file.
//!
//! The tables live on the store's connection (SQLite's temporary storage, not
//! the process heap) and are emptied when an importer starts. They are created
//! inside the applying transaction, so a rollback takes them away with the
//! rest.
//!
//! `import_seen` keeps the ids the file declared as *runs*: records that
//! follow one another, of one kind, whose ids follow one another too, up or
//! down (the seats of a row, in the order the manager numbered them). A run
//! is one row (its kind, its lowest and highest id, the id it started with
//! and the rank of the record that declared it), so the record that declared
//! any id of it is known. The run being read is held in memory until a
//! record breaks it, with what is known of the written runs on either side:
//! the ids carrying it on are looked up only once they reach a written run.
//! A record whose id is above every id of its kind so far cannot repeat one
//! and is not looked up. A seat plan's seats thus cost a row per row of
//! seats instead of a row each (a row, and its look-up, per record made a
//! 1.6-million-seat plan's apply about a tenth slower).
//!
//! A record out of any order is written at once, as a run of one, by the
//! statement that refuses an id some run starts with; only a longer run can
//! hold it otherwise, and a fixed-size filter of those runs' ids (1 MiB)
//! says which ids none holds, so that most are written without a look-up:
//! a file in no order costs about what it did when every id had its row.
//!
//! A refusal names an earlier record by its rank and its id, which finds it
//! in the file. `import_local`, once the record is applied, keeps the local
//! object it became (the seat plan import leaves out the rows and seats the
//! file created: `seat_changes::Before`). The seat plan import reads those
//! back to find the rows and seats a file no longer holds.

use rusqlite::{Connection, OptionalExtension, Statement};

use crate::domain::{DomainError, held};
use crate::format::Position;

/// Records that follow one another, of one kind, whose ids follow one
/// another up or down: `record` declared `first`, the next record the id
/// next to it, and so on to `last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Run {
    kind: &'static str,
    first: i64,
    last: i64,
    record: u64,
}

impl Run {
    fn low(&self) -> i64 {
        self.first.min(self.last)
    }

    fn high(&self) -> i64 {
        self.first.max(self.last)
    }

    /// The record that declared `id`, when the run holds it.
    fn record_of(&self, id: i64) -> Option<u64> {
        if !(self.low()..=self.high()).contains(&id) {
            return None;
        }
        Some(self.record.saturating_add(id.abs_diff(self.first)))
    }

    /// Whether `record`, declaring `id` of `kind`, carries the run on, and
    /// which way.
    fn carried_by(&self, kind: &'static str, id: i64, record: u64) -> Option<Way> {
        let next = self
            .record
            .checked_add(self.first.abs_diff(self.last))?
            .checked_add(1)?;
        if self.kind != kind || record != next {
            return None;
        }
        if self.last >= self.first && self.last.checked_add(1) == Some(id) {
            Some(Way::Up)
        } else if self.last <= self.first && self.last.checked_sub(1) == Some(id) {
            Some(Way::Down)
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Way {
    Up,
    Down,
}

/// The run being read, not yet written, and what is known of the written
/// runs of its kind around it: none holds an id between `below` and the
/// run, nor between the run and `above` (both excluded; `None`: not
/// looked up yet). The ids that carry it on are checked against those
/// bounds, and the table is read again only once they are reached.
#[derive(Debug, Clone, Copy)]
struct Open {
    run: Run,
    below: Option<i64>,
    above: Option<i64>,
}

/// A fixed-size set of bits, one per id of the runs longer than one
/// written so far (several ids can share a bit): an id whose bit is clear
/// is in none of them. 1 MiB, taken at the first such run, however large
/// the file; the more ids share it, the more look-ups are made.
#[derive(Default)]
struct Filter {
    bits: Vec<u64>,
}

impl Filter {
    const BITS: u32 = 23;

    /// The word and the bit of `id` of `kind` (a multiplicative hash).
    fn slot(kind: &str, id: i64) -> (usize, u64) {
        let kind = kind
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        let h = (id.cast_unsigned() ^ kind.rotate_left(32)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            >> (64 - Self::BITS);
        (usize::try_from(h >> 6).unwrap_or(0), 1 << (h & 63))
    }

    fn add(&mut self, run: &Run) {
        if run.first == run.last {
            return;
        }
        if self.bits.is_empty() {
            self.bits = vec![0; 1 << (Self::BITS - 6)];
        }
        for id in run.low()..=run.high() {
            let (word, bit) = Self::slot(run.kind, id);
            if let Some(w) = self.bits.get_mut(word) {
                *w |= bit;
            }
        }
    }

    fn may_hold(&self, kind: &str, id: i64) -> bool {
        let (word, bit) = Self::slot(kind, id);
        self.bits.get(word).is_some_and(|w| w & bit != 0)
    }
}

/// The ids one file declared and the local objects they became, with the
/// statements that write them.
pub(super) struct FileIds<'t> {
    conn: &'t Connection,
    open: Option<Open>,
    /// Per kind, the highest id declared so far (a handful of kinds).
    highest: Vec<(&'static str, i64)>,
    /// The last id declared: its kind, the id and its record.
    previous: Option<(&'static str, i64, u64)>,
    /// The ids of the written runs longer than one.
    longer: Filter,
    write_run: Option<Statement<'t>>,
    write_one: Option<Statement<'t>>,
    run_at_or_below: Option<Statement<'t>>,
    run_at_or_above: Option<Statement<'t>>,
    set_local: Option<Statement<'t>>,
}

impl<'t> FileIds<'t> {
    /// Creates (or empties) the tables for a new file: `import_seen`, the
    /// runs of ids the file declared, and `import_local`, the local objects
    /// they became. Two tables, each written apart, rather than one row
    /// updated with its local object and indexed by it: that update and its
    /// index cost as much as the rest of a seat's bookkeeping.
    pub(super) fn new(conn: &'t Connection) -> Result<FileIds<'t>, DomainError> {
        conn.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS import_seen (
                 kind   TEXT NOT NULL,
                 low    INTEGER NOT NULL,
                 high   INTEGER NOT NULL,
                 first  INTEGER NOT NULL,
                 record INTEGER NOT NULL,
                 PRIMARY KEY (kind, low)
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
            open: None,
            highest: Vec::new(),
            previous: None,
            longer: Filter::default(),
            write_run: None,
            write_one: None,
            run_at_or_below: None,
            run_at_or_above: None,
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
        let Some(first) = self.add(kind, id, record)? else {
            return Ok(());
        };
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

    /// Adds `id` of `kind`, declared by `record`, unless an earlier record
    /// declared it: then that record.
    fn add(
        &mut self,
        kind: &'static str,
        id: i64,
        record: u64,
    ) -> Result<Option<u64>, DomainError> {
        // Above every id of its kind so far, it cannot be one of them.
        let above_all = match self.highest.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, h)) if id <= *h => false,
            Some((_, h)) => {
                *h = id;
                true
            }
            None => {
                self.highest.push((kind, id));
                true
            }
        };
        let previous = self.previous.replace((kind, id, record));
        if let Some(mut open) = self.open
            && let Some(way) = open.run.carried_by(kind, id, record)
        {
            // The run's own ids are on its other side: only a written run
            // can hold this one, and then as its end nearest the run.
            if !above_all {
                match way {
                    Way::Up if open.above.is_none_or(|a| id >= a) => {
                        let next = self.written_run(kind, id, Way::Up)?;
                        if let Some(earlier) = next.and_then(|n| n.record_of(id)) {
                            return Ok(Some(earlier));
                        }
                        open.above = Some(next.map_or(i64::MAX, |n| n.low()));
                    }
                    Way::Down if open.below.is_none_or(|b| id <= b) => {
                        let next = self.written_run(kind, id, Way::Down)?;
                        if let Some(earlier) = next.and_then(|n| n.record_of(id)) {
                            return Ok(Some(earlier));
                        }
                        open.below = Some(next.map_or(i64::MIN, |n| n.high()));
                    }
                    _ => {}
                }
            }
            open.run.last = id;
            self.open = Some(open);
            return Ok(None);
        }
        // The run being read ends: written first, so that the look-ups
        // below see it.
        self.flush()?;
        let follows = previous.is_some_and(|(k, i, r)| {
            k == kind && i.abs_diff(id) == 1 && r.checked_add(1) == Some(record)
        });
        if !(above_all || follows) {
            // Out of order: written at once, as a run of one (a record
            // carrying it on starts the next run). Only a longer run can
            // hold it without having it as its first id, and the filter
            // says which ids none holds: most are written with no look-up.
            if self.longer.may_hold(kind, id)
                && let Some(earlier) = self.record_of(kind, id)?
            {
                return Ok(Some(earlier));
            }
            let written = held(
                &mut self.write_one,
                self.conn,
                "INSERT INTO temp.import_seen (kind, low, high, first, record)
                 VALUES (?1, ?2, ?2, ?2, ?3) ON CONFLICT DO NOTHING",
            )?
            .execute((kind, id, i64::try_from(record).unwrap_or(i64::MAX)))?;
            if written == 1 {
                return Ok(None);
            }
            // Not written: a run starts with it.
            let earlier = self
                .record_of(kind, id)?
                .ok_or(rusqlite::Error::QueryReturnedNoRows)?;
            return Ok(Some(earlier));
        }
        // A new run, held until a record breaks it.
        let mut below = None;
        if !above_all {
            let run = self.written_run(kind, id, Way::Down)?;
            if let Some(earlier) = run.and_then(|r| r.record_of(id)) {
                return Ok(Some(earlier));
            }
            below = Some(run.map_or(i64::MIN, |r| r.high()));
        }
        self.open = Some(Open {
            run: Run {
                kind,
                first: id,
                last: id,
                record,
            },
            below,
            above: above_all.then_some(i64::MAX),
        });
        Ok(None)
    }

    /// The written run of `kind` nearest `id`, starting at or below it
    /// (`Down`: the only one that can hold it, runs never overlap) or at or
    /// above it (`Up`).
    fn written_run(
        &mut self,
        kind: &'static str,
        id: i64,
        way: Way,
    ) -> Result<Option<Run>, DomainError> {
        let (slot, sql) = match way {
            Way::Down => (
                &mut self.run_at_or_below,
                "SELECT first, low, high, record FROM temp.import_seen
                 WHERE kind = ?1 AND low <= ?2 ORDER BY low DESC LIMIT 1",
            ),
            Way::Up => (
                &mut self.run_at_or_above,
                "SELECT first, low, high, record FROM temp.import_seen
                 WHERE kind = ?1 AND low >= ?2 ORDER BY low LIMIT 1",
            ),
        };
        Ok(held(slot, self.conn, sql)?
            .query_row((kind, id), |r| {
                let (first, low, high): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
                Ok(Run {
                    kind,
                    first,
                    // The end it did not start with.
                    last: if first == low { high } else { low },
                    record: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                })
            })
            .optional()?)
    }

    /// Writes the run being read.
    fn flush(&mut self) -> Result<(), DomainError> {
        if let Some(Open { run, .. }) = self.open.take() {
            self.longer.add(&run);
            held(
                &mut self.write_run,
                self.conn,
                "INSERT INTO temp.import_seen (kind, low, high, first, record)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute((
                run.kind,
                run.low(),
                run.high(),
                run.first,
                i64::try_from(run.record).unwrap_or(i64::MAX),
            ))?;
        }
        Ok(())
    }

    /// The record of this file that declared `id` of `kind`, if one did
    /// (the run being read written first).
    fn record_of(&mut self, kind: &'static str, id: i64) -> Result<Option<u64>, DomainError> {
        self.flush()?;
        Ok(self
            .written_run(kind, id, Way::Down)?
            .and_then(|run| run.record_of(id)))
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

    /// The record that made `local` the object of `kind` in this file and
    /// gave it its label, if one did, with its kind and id ("row 4001").
    pub(super) fn record_of_local(
        &mut self,
        kind: &'static str,
        local: i64,
    ) -> Result<Option<(u64, String)>, DomainError> {
        let ids = self
            .conn
            .prepare_cached("SELECT id FROM temp.import_local WHERE kind = ?1 AND local = ?2")?
            .query_map((kind, local), |r| r.get(0))?
            .collect::<Result<Vec<i64>, _>>()?;
        self.earliest(kind, ids)
    }

    /// The record (with its kind and id) that declared `local`, an object of
    /// `kind` this file created for `manager` and did not record in
    /// `import_local` ([`super::seat_changes::Before`]): found through its
    /// mapping row. Only a file refused for naming two objects with one
    /// label asks, so the mapping is read without an index on its local ids.
    pub(super) fn record_of_created(
        &mut self,
        manager: &str,
        kind: &'static str,
        local: i64,
    ) -> Result<Option<(u64, String)>, DomainError> {
        let ids = self
            .conn
            .prepare_cached(
                "SELECT manager_id FROM mapping WHERE manager = ?1 AND kind = ?2 AND local_id = ?3",
            )?
            .query_map((manager, kind, local), |r| r.get(0))?
            .collect::<Result<Vec<i64>, _>>()?;
        self.earliest(kind, ids)
    }

    /// The earliest record of this file that declared one of `ids`, with its
    /// kind and id. `ids` are the manager objects mapped to one local
    /// object: one, or a few when a mapping was edited by hand.
    fn earliest(
        &mut self,
        kind: &'static str,
        ids: Vec<i64>,
    ) -> Result<Option<(u64, String)>, DomainError> {
        let mut earliest: Option<(u64, i64)> = None;
        for id in ids {
            if let Some(record) = self.record_of(kind, id)?
                && earliest.is_none_or(|(r, _)| record < r)
            {
                earliest = Some((record, id));
            }
        }
        Ok(earliest.map(|(record, id)| (record, format!("{kind} {id}"))))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    const KINDS: [&str; 2] = ["seat", "row"];

    /// Declares `ids` as records 1, 2, … (a record with no id declares
    /// none, as a catalogue's prices); the error at the first repeat, or the
    /// ids table once every record is declared.
    fn declare_all<'c>(
        conn: &'c Connection,
        ids: &[Option<(&'static str, i64)>],
    ) -> Result<FileIds<'c>, String> {
        let mut seen = FileIds::new(conn).expect("tables");
        for (record, (kind, id)) in (1..).zip(ids).filter_map(|(r, d)| Some((r, (*d)?))) {
            seen.declare("plan.xml", kind, id, record, || format!("{kind} {id}"))
                .map_err(|e| e.to_string())?;
        }
        Ok(seen)
    }

    /// Each step: a record with no id, or a kind and the id above or below
    /// that kind's last one, or any id of a small range (so that ids
    /// repeat, runs break and resume).
    fn steps() -> impl Strategy<Value = Vec<Option<(&'static str, i64)>>> {
        prop::collection::vec((0..3usize, 0..3u8, 20..40i64), 0..120).prop_map(|steps| {
            let mut last = [30i64; 2];
            steps
                .into_iter()
                .map(|(k, way, id)| {
                    let kind = KINDS.get(k)?;
                    let id = match way {
                        0 => last[k] + 1,
                        1 => last[k] - 1,
                        _ => id,
                    };
                    last[k] = id;
                    Some((*kind, id))
                })
                .collect()
        })
    }

    proptest! {
        /// Against a map of every id declared and its first record: the file
        /// is refused exactly at its first repeat, naming both records, and
        /// otherwise every id's record is found again, whether its run was
        /// written or is still being read.
        #[test]
        fn ids_are_refused_at_their_first_repeat_and_found_again(ids in steps()) {
            let conn = Connection::open_in_memory().expect("memory");
            conn.execute_batch(
                "CREATE TABLE mapping (manager TEXT, kind TEXT, manager_id INTEGER, local_id INTEGER)",
            ).expect("mapping");
            let mut first = HashMap::new();
            let mut repeat = None;
            for (record, (kind, id)) in (1u64..).zip(&ids).filter_map(|(r, d)| Some((r, d.as_ref()?))) {
                if let Some(earlier) = first.get(&(*kind, *id)) {
                    repeat = Some(format!("{kind} {id} appears at record {earlier} and at record {record} ("));
                    break;
                }
                first.insert((*kind, *id), record);
            }
            match (declare_all(&conn, &ids), repeat) {
                (Err(e), Some(expected)) => prop_assert!(e.contains(&expected), "{e}\nexpected: {expected}"),
                (Err(e), None) => prop_assert!(false, "refused without a repeat: {e}"),
                (Ok(_), Some(expected)) => prop_assert!(false, "not refused: {expected}"),
                (Ok(mut seen), None) => {
                    for ((kind, id), record) in &first {
                        // Local objects numbered apart from the ids; created
                        // ones found through the mapping.
                        seen.set_local(kind, *id, id + 1000).expect("local");
                        conn.execute(
                            "INSERT INTO mapping VALUES ('OPERA', ?1, ?2, ?3)",
                            (kind, id, id + 2000),
                        ).expect("mapping row");
                        let named = Some((*record, format!("{kind} {id}")));
                        prop_assert_eq!(seen.record_of_local(kind, id + 1000).expect("local"), named.clone());
                        prop_assert_eq!(seen.record_of_created("OPERA", kind, id + 2000).expect("created"), named);
                    }
                    prop_assert_eq!(seen.record_of_local("seat", 0).expect("none"), None);
                }
            }
        }
    }

    /// A seat plan's seats, numbered in order row after row, up or down,
    /// take one row of the table per row of seats; a record out of order
    /// starts a run.
    #[test]
    fn ids_that_follow_one_another_are_kept_as_one_run() {
        let conn = Connection::open_in_memory().expect("memory");
        let mut ids = Vec::new();
        for row in 0..3 {
            ids.push(Some(("row", 4001 + row)));
            let seats = (1..=20).map(|n| Some(("seat", 50_000 + row * 20 + n)));
            if row == 1 {
                ids.extend(seats.rev());
            } else {
                ids.extend(seats);
            }
        }
        // Out of order: a run of one, written at once; the record after it
        // starts the next run, which a record with no id breaks.
        ids.extend([
            Some(("seat", 10)),
            Some(("seat", 11)),
            Some(("seat", 12)),
            None,
            Some(("seat", 13)),
        ]);
        let mut seen = declare_all(&conn, &ids).expect("no repeat");
        seen.flush().expect("written");
        let runs: Vec<(String, i64, i64, i64)> = conn
            .prepare("SELECT kind, first, low + high - first, record FROM temp.import_seen ORDER BY record")
            .and_then(|mut st| {
                st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                    .collect()
            })
            .expect("runs");
        let run = |kind: &str, first, last, record| (kind.to_owned(), first, last, record);
        assert_eq!(
            runs,
            [
                run("row", 4001, 4001, 1),
                run("seat", 50_001, 50_020, 2),
                run("row", 4002, 4002, 22),
                run("seat", 50_040, 50_021, 23),
                run("row", 4003, 4003, 43),
                run("seat", 50_041, 50_060, 44),
                run("seat", 10, 10, 64),
                run("seat", 11, 12, 65),
                run("seat", 13, 13, 68),
            ]
        );
        let e = seen
            .declare("plan.xml", "seat", 50_030, 69, || "seat 10 of row B".into())
            .expect_err("a repeat")
            .to_string();
        assert!(
            e.contains("seat 50030 appears at record 33 and at record 69 (seat 10 of row B)"),
            "{e}"
        );
    }

    /// A run carried up or down onto the id a written run starts or ends
    /// with: the look-up that bounds the run's free neighbourhood finds it.
    #[test]
    fn a_run_carried_onto_a_written_one_is_refused() {
        let conn = Connection::open_in_memory().expect("memory");
        for (ids, expected) in [
            (
                [29, 26, 27, 28, 29],
                "seat 29 appears at record 1 and at record 5",
            ),
            (
                [25, 28, 27, 26, 25],
                "seat 25 appears at record 1 and at record 5",
            ),
        ] {
            let ids: Vec<_> = ids.iter().map(|id| Some(("seat", *id))).collect();
            let e = declare_all(&conn, &ids).err().expect("a repeat");
            assert!(e.contains(expected), "{e}\nexpected: {expected}");
        }
    }
}
