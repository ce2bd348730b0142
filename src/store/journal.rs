//! The file journal: one row per exchanged file of a link, kind and direction,
//! keyed by its sequence number, with its SHA-256 and what became of it.
//!
//! The inbound pipeline records a file in the same transaction that applies it
//! (so "applied" and "journaled" cannot disagree after a crash); the outbound
//! one records the sequence it allocates in the transaction that snapshots the
//! rows. This module only stores and finds rows; the sequence rules (apply,
//! already done, replay, gap) belong to the pipelines.

use std::fmt;
use std::str::FromStr;

use rusqlite::{Connection, OptionalExtension, Transaction};

use super::{StoreError, now};
use crate::exchange::Kind;

/// Which way a file travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }

    pub fn parse(s: &str) -> Option<Direction> {
        match s {
            "in" => Some(Direction::In),
            "out" => Some(Direction::Out),
            _ => None,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What became of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileState {
    /// Outbound: sequence allocated and file written, not yet published.
    Prepared,
    /// Outbound: handed to the transport.
    Published,
    /// Inbound: applied entirely.
    Applied,
    /// Inbound: valid but superseded (an older contingent snapshot); nothing applied.
    Ignored,
    /// Inbound: waiting for pending mappings; nothing applied yet.
    Parked,
    /// Inbound: refused whole; nothing applied. The same sequence may arrive again.
    Rejected,
}

impl FileState {
    pub const ALL: [FileState; 6] = [
        FileState::Prepared,
        FileState::Published,
        FileState::Applied,
        FileState::Ignored,
        FileState::Parked,
        FileState::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FileState::Prepared => "prepared",
            FileState::Published => "published",
            FileState::Applied => "applied",
            FileState::Ignored => "ignored",
            FileState::Parked => "parked",
            FileState::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<FileState> {
        FileState::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Whether the file used up its sequence number: the next file of the link
    /// and kind carries the next one.
    pub fn consumes_sequence(self) -> bool {
        matches!(
            self,
            FileState::Prepared | FileState::Published | FileState::Applied | FileState::Ignored
        )
    }
}

impl fmt::Display for FileState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A file to journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry<'a> {
    pub link: &'a str,
    pub kind: Kind,
    pub direction: Direction,
    pub sequence: u64,
    /// Lowercase hex SHA-256 of the payload.
    pub sha256: &'a str,
    pub file_name: &'a str,
    pub state: FileState,
    pub run_id: Option<i64>,
}

/// A journaled file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub id: i64,
    pub link: String,
    pub kind: Kind,
    pub direction: Direction,
    pub sequence: u64,
    pub sha256: String,
    pub file_name: String,
    pub state: FileState,
    pub created: String,
    pub updated: String,
    pub run_id: Option<i64>,
}

fn check_sha256(s: &str) -> Result<(), StoreError> {
    if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "expected a SHA-256 as 64 lowercase hex digits, found {:?}",
            crate::ident::shorten(s)
        )))
    }
}

fn seq_to_sql(sequence: u64) -> Result<i64, StoreError> {
    match i64::try_from(sequence) {
        Ok(v) if v >= 1 => Ok(v),
        _ => Err(StoreError::Invalid(format!(
            "expected a sequence number from 1 to {}, found {sequence}",
            i64::MAX
        ))),
    }
}

/// Records a file. A row already present for the same link, kind, direction
/// and sequence is replaced only when it was `rejected` (a refused file does not
/// hold its sequence); otherwise [`StoreError::JournalDuplicate`].
pub fn record(tx: &Transaction<'_>, e: &NewEntry<'_>) -> Result<i64, StoreError> {
    check_sha256(e.sha256)?;
    let seq = seq_to_sql(e.sequence)?;
    if let Some(old) = lookup(tx, e.link, e.kind, e.direction, e.sequence)? {
        if old.state != FileState::Rejected {
            return Err(StoreError::JournalDuplicate {
                link: e.link.to_owned(),
                kind: e.kind.to_string(),
                direction: e.direction.to_string(),
                sequence: e.sequence,
                state: old.state.to_string(),
            });
        }
        tx.prepare_cached(
            "UPDATE file_journal SET sha256 = ?2, file_name = ?3, state = ?4, updated = ?5, run_id = ?6
             WHERE id = ?1",
        )?
        .execute((
            old.id,
            e.sha256,
            e.file_name,
            e.state.as_str(),
            now(),
            e.run_id,
        ))?;
        return Ok(old.id);
    }
    let ts = now();
    tx.prepare_cached(
        "INSERT INTO file_journal
            (link, kind, direction, sequence, sha256, file_name, state, created, updated, run_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9)",
    )?
    .execute((
        e.link,
        e.kind.as_str(),
        e.direction.as_str(),
        seq,
        e.sha256,
        e.file_name,
        e.state.as_str(),
        ts,
        e.run_id,
    ))?;
    Ok(tx.last_insert_rowid())
}

/// Moves a journaled file to another state (parked → applied, prepared →
/// published), optionally attaching the run that did it.
pub fn set_state(
    tx: &Transaction<'_>,
    id: i64,
    state: FileState,
    run_id: Option<i64>,
) -> Result<(), StoreError> {
    let n = tx
        .prepare_cached(
            "UPDATE file_journal SET state = ?2, updated = ?3, run_id = coalesce(?4, run_id)
             WHERE id = ?1",
        )?
        .execute((id, state.as_str(), now(), run_id))?;
    if n == 0 {
        return Err(StoreError::NotFound {
            what: "journal entry",
            id,
        });
    }
    Ok(())
}

const COLUMNS: &str =
    "id, link, kind, direction, sequence, sha256, file_name, state, created, updated, run_id";

fn entry(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Entry, StoreError>> {
    let kind: String = r.get(2)?;
    let direction: String = r.get(3)?;
    let sequence: i64 = r.get(4)?;
    let state: String = r.get(7)?;
    let built = (|| {
        Ok(Entry {
            id: r.get(0)?,
            link: r.get(1)?,
            kind: Kind::from_str(&kind).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            direction: Direction::parse(&direction)
                .ok_or_else(|| StoreError::Corrupt(format!("journal direction {direction:?}")))?,
            sequence: u64::try_from(sequence)
                .map_err(|_| StoreError::Corrupt(format!("journal sequence {sequence}")))?,
            sha256: r.get(5)?,
            file_name: r.get(6)?,
            state: FileState::parse(&state)
                .ok_or_else(|| StoreError::Corrupt(format!("journal state {state:?}")))?,
            created: r.get(8)?,
            updated: r.get(9)?,
            run_id: r.get(10)?,
        })
    })();
    Ok(built)
}

/// The file of a link, kind and direction with this sequence, if journaled.
pub fn lookup(
    conn: &Connection,
    link: &str,
    kind: Kind,
    direction: Direction,
    sequence: u64,
) -> Result<Option<Entry>, StoreError> {
    let Ok(seq) = i64::try_from(sequence) else {
        return Ok(None);
    };
    let found = conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM file_journal
             WHERE link = ?1 AND kind = ?2 AND direction = ?3 AND sequence = ?4"
        ))?
        .query_row((link, kind.as_str(), direction.as_str(), seq), entry)
        .optional()?;
    found.transpose()
}

/// Every journaled file with this digest (a file dropped twice under two names).
pub fn by_sha256(conn: &Connection, sha256: &str) -> Result<Vec<Entry>, StoreError> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM file_journal WHERE sha256 = ?1 ORDER BY id"
    ))?;
    let rows = st.query_map([sha256], entry)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r??);
    }
    Ok(out)
}

/// The files of a link, kind and direction in a state (e.g. the parked ones),
/// in sequence order.
pub fn in_state(
    conn: &Connection,
    link: &str,
    kind: Kind,
    direction: Direction,
    state: FileState,
) -> Result<Vec<Entry>, StoreError> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM file_journal
         WHERE link = ?1 AND kind = ?2 AND direction = ?3 AND state = ?4 ORDER BY sequence"
    ))?;
    let rows = st.query_map(
        (link, kind.as_str(), direction.as_str(), state.as_str()),
        entry,
    )?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r??);
    }
    Ok(out)
}

/// Records the exact manifest bytes of an outbound file (its journal row
/// `file`), in the transaction that allocates its sequence.
pub fn record_manifest(tx: &Transaction<'_>, file: i64, manifest: &str) -> Result<(), StoreError> {
    tx.prepare_cached("INSERT INTO outbound_manifest (file, manifest) VALUES (?1, ?2)")?
        .execute((file, manifest))?;
    Ok(())
}

/// The outbound files of a link and kind still `prepared` (committed, not
/// yet known placed), each with its recorded manifest, in sequence order.
pub fn prepared(
    conn: &Connection,
    link: &str,
    kind: Kind,
) -> Result<Vec<(Entry, String)>, StoreError> {
    let mut out = Vec::new();
    for e in in_state(conn, link, kind, Direction::Out, FileState::Prepared)? {
        let text: Option<String> = conn
            .prepare_cached("SELECT manifest FROM outbound_manifest WHERE file = ?1")?
            .query_row([e.id], |r| r.get(0))
            .optional()?;
        let text = text.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "outbound {} sequence {} of link {} is prepared without its recorded manifest",
                e.kind, e.sequence, e.link
            ))
        })?;
        out.push((e, text));
    }
    Ok(out)
}

/// The sequence of `kind` a receiver on `link` waits for next: the last
/// one received that used up its sequence, plus one.
pub fn next_in(conn: &Connection, link: &str, kind: Kind) -> Result<u64, StoreError> {
    Ok(last_sequence(conn, link, kind, Direction::In)?.unwrap_or(0) + 1)
}

/// The sequence the next outbound file of `kind` on `link` takes: the last
/// one that used up its sequence, plus one. Read inside the export's
/// transaction, by the export and by a producer that marks rows with it.
pub fn next_out(conn: &Connection, link: &str, kind: Kind) -> Result<u64, StoreError> {
    last_sequence(conn, link, kind, Direction::Out)?
        .unwrap_or(0)
        .checked_add(1)
        .ok_or_else(|| StoreError::Corrupt("outbound sequence overflow".to_owned()))
}

/// The highest sequence of a link, kind and direction whose file used it up
/// ([`FileState::consumes_sequence`]): parked and rejected files do not count.
/// `None` when no file did.
pub fn last_sequence(
    conn: &Connection,
    link: &str,
    kind: Kind,
    direction: Direction,
) -> Result<Option<u64>, StoreError> {
    let v: Option<i64> = conn
        .prepare_cached(
            "SELECT max(sequence) FROM file_journal
             WHERE link = ?1 AND kind = ?2 AND direction = ?3
               AND state IN ('prepared', 'published', 'applied', 'ignored')",
        )?
        .query_row((link, kind.as_str(), direction.as_str()), |r| r.get(0))?;
    v.map(|s| u64::try_from(s).map_err(|_| StoreError::Corrupt(format!("journal sequence {s}"))))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Role, Store};

    const SHA_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const SHA_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    fn entry_for(seq: u64, sha: &'static str, state: FileState) -> NewEntry<'static> {
        NewEntry {
            link: "opera-tourism",
            kind: Kind::Sales,
            direction: Direction::In,
            sequence: seq,
            sha256: sha,
            file_name: "SALES_1.csv",
            state,
            run_id: None,
        }
    }

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("m.db"), "OPERA", Role::Manager).unwrap();
        (dir, s)
    }

    #[test]
    fn record_then_lookup_and_last_sequence() {
        let (_d, mut s) = store();
        s.write(|tx| -> Result<(), StoreError> {
            record(tx, &entry_for(1, SHA_A, FileState::Applied))?;
            record(tx, &entry_for(2, SHA_B, FileState::Applied))?;
            record(tx, &entry_for(3, SHA_B, FileState::Parked))?;
            Ok(())
        })
        .unwrap();
        s.read(|c| -> Result<(), StoreError> {
            let e = lookup(c, "opera-tourism", Kind::Sales, Direction::In, 2)?.unwrap();
            assert_eq!(e.sha256, SHA_B);
            assert_eq!(e.state, FileState::Applied);
            assert!(lookup(c, "opera-tourism", Kind::Sales, Direction::Out, 2)?.is_none());
            assert!(lookup(c, "other", Kind::Sales, Direction::In, 2)?.is_none());
            assert_eq!(
                last_sequence(c, "opera-tourism", Kind::Sales, Direction::In)?,
                Some(2)
            );
            assert_eq!(
                last_sequence(c, "opera-tourism", Kind::Catalogue, Direction::In)?,
                None
            );
            let parked = in_state(
                c,
                "opera-tourism",
                Kind::Sales,
                Direction::In,
                FileState::Parked,
            )?;
            assert_eq!(parked.len(), 1);
            assert_eq!(by_sha256(c, SHA_B)?.len(), 2);
            Ok(())
        })
        .unwrap();
    }

    #[test]
    fn duplicate_sequence_is_refused_unless_rejected() {
        let (_d, mut s) = store();
        let err = s
            .write(|tx| -> Result<(), StoreError> {
                record(tx, &entry_for(1, SHA_A, FileState::Applied))?;
                record(tx, &entry_for(1, SHA_B, FileState::Applied))?;
                Ok(())
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::JournalDuplicate { .. }), "{err}");
        s.write(|tx| -> Result<(), StoreError> {
            let id = record(tx, &entry_for(1, SHA_A, FileState::Rejected))?;
            let again = record(tx, &entry_for(1, SHA_B, FileState::Applied))?;
            assert_eq!(id, again);
            Ok(())
        })
        .unwrap();
        let e = s
            .read(|c| lookup(c, "opera-tourism", Kind::Sales, Direction::In, 1))
            .unwrap()
            .unwrap();
        assert_eq!((e.sha256.as_str(), e.state), (SHA_B, FileState::Applied));
    }

    #[test]
    fn set_state_moves_parked_to_applied() {
        let (_d, mut s) = store();
        let id = s
            .write(|tx| record(tx, &entry_for(1, SHA_A, FileState::Parked)))
            .unwrap();
        assert_eq!(
            s.read(|c| last_sequence(c, "opera-tourism", Kind::Sales, Direction::In))
                .unwrap(),
            None
        );
        s.write(|tx| set_state(tx, id, FileState::Applied, None))
            .unwrap();
        assert_eq!(
            s.read(|c| last_sequence(c, "opera-tourism", Kind::Sales, Direction::In))
                .unwrap(),
            Some(1)
        );
        let err = s
            .write(|tx| set_state(tx, 999, FileState::Applied, None))
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }));
    }

    #[test]
    fn bad_digest_and_sequence_are_refused() {
        let (_d, mut s) = store();
        for (seq, sha) in [(1, "ABC"), (0, SHA_A), (u64::MAX, SHA_A)] {
            let mut e = entry_for(seq, SHA_A, FileState::Applied);
            e.sha256 = sha;
            let err = s.write(|tx| record(tx, &e)).unwrap_err();
            assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        }
    }
}
