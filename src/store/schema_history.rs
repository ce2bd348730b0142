//! Migration 19, apart from `schema.rs`: what `/metrics`, `stxd status`
//! and the console read of the file journal and the run log, kept as files
//! and runs are written or found by index, so that they read a few rows
//! instead of every file and run of the store's history
//! (`docs/performance.md`, "Reads that do not grow with the history").
//! Listed in [`super::schema::MIGRATIONS`] like every other step; never
//! edited once released.

use super::schema::Migration;

pub(super) const HISTORY_COUNTED: Migration = Migration {
    version: 19,
    name: "history read in a few rows: the journal's files by state, each run kind's last success and the import durations kept as they are written; a link's last file and a file's failed run found by index",
    sql: SQL,
};

// Each table starts from the rows there are (one read of the journal and
// of the run log, at the first start of this version), then triggers keep
// it in the transaction that writes a journal row or ends a run: both
// commit or neither does, whoever writes. A trigger costs a statement per
// file or run, not per line, which no file's apply can measure (unlike
// `sales_line_count`, migration 18, kept by the reintegration's code).
//
// Runs are never deleted and end once (`running` to an outcome); journal
// rows change state and are not deleted, but the triggers would keep the
// count right if they were.
const SQL: &str = r#"
-- The file journal (`file_journal`) counted by link, kind, direction and
-- state. A state a file left keeps its row at 0.
CREATE TABLE file_journal_count (
    link      TEXT NOT NULL,
    kind      TEXT NOT NULL,
    direction TEXT NOT NULL,
    state     TEXT NOT NULL,
    files     INTEGER NOT NULL CHECK (files >= 0),
    PRIMARY KEY (link, kind, direction, state)
) STRICT, WITHOUT ROWID;
INSERT INTO file_journal_count (link, kind, direction, state, files)
    SELECT link, kind, direction, state, count(*) FROM file_journal
     GROUP BY link, kind, direction, state;

CREATE TRIGGER file_journal_counted_insert AFTER INSERT ON file_journal
BEGIN
    INSERT INTO file_journal_count (link, kind, direction, state, files)
        VALUES (new.link, new.kind, new.direction, new.state, 1)
        ON CONFLICT DO UPDATE SET files = files + 1;
END;
CREATE TRIGGER file_journal_counted_update AFTER UPDATE OF link, kind, direction, state ON file_journal
WHEN old.link <> new.link OR old.kind <> new.kind OR old.direction <> new.direction
  OR old.state <> new.state
BEGIN
    UPDATE file_journal_count SET files = files - 1
     WHERE link = old.link AND kind = old.kind AND direction = old.direction AND state = old.state;
    INSERT INTO file_journal_count (link, kind, direction, state, files)
        VALUES (new.link, new.kind, new.direction, new.state, 1)
        ON CONFLICT DO UPDATE SET files = files + 1;
END;
CREATE TRIGGER file_journal_counted_delete AFTER DELETE ON file_journal
BEGIN
    UPDATE file_journal_count SET files = files - 1
     WHERE link = old.link AND kind = old.kind AND direction = old.direction AND state = old.state;
END;

-- A link's last file of a kind and direction (`stxd status`, the
-- console): the row last changed, found without sorting the link's files.
CREATE INDEX file_journal_last ON file_journal (link, kind, direction, updated, sequence);

-- The end of the last run of each link and kind that ended `ok` (runs of
-- no link are not kept). `ended` is `run.ended`: fixed-width RFC 3339,
-- so the text's order is the time's.
CREATE TABLE run_last_success (
    link  TEXT NOT NULL,
    kind  TEXT NOT NULL,
    ended TEXT NOT NULL,
    PRIMARY KEY (link, kind)
) STRICT, WITHOUT ROWID;

-- How long file imports (`import-…` runs, whatever their outcome) took:
-- the runs and their seconds summed, by the histogram bucket of the
-- duration, the smallest upper bound `le` (seconds) at or above it. The
-- bounds are these rows: 5 ms doubling up to 40.96 s, then infinity
-- (9e999). A run whose times do not read as instants is not counted; a
-- negative duration (the clock set back) counts as 0.
CREATE TABLE import_duration (
    le      REAL PRIMARY KEY,
    runs    INTEGER NOT NULL DEFAULT 0 CHECK (runs >= 0),
    seconds REAL NOT NULL DEFAULT 0
) STRICT, WITHOUT ROWID;
INSERT INTO import_duration (le) VALUES
    (0.005), (0.01), (0.02), (0.04), (0.08), (0.16), (0.32), (0.64),
    (1.28), (2.56), (5.12), (10.24), (20.48), (40.96), (9e999);

-- What a run's end changes in the two tables above, written once: the
-- body of this view's trigger, which the two triggers on `run` below call
-- by inserting into the view (it holds no rows).
CREATE VIEW run_end (kind, link, status, started, ended) AS
    SELECT kind, link, status, started, ended FROM run WHERE 0;
CREATE TRIGGER run_end_kept INSTEAD OF INSERT ON run_end
BEGIN
    INSERT INTO run_last_success (link, kind, ended)
        SELECT new.link, new.kind, new.ended
         WHERE new.status = 'ok' AND new.link IS NOT NULL AND new.ended IS NOT NULL
        ON CONFLICT DO UPDATE SET ended = max(ended, excluded.ended);
    UPDATE import_duration
       SET runs = runs + 1,
           seconds = seconds + max(0.0, (julianday(new.ended) - julianday(new.started)) * 86400.0)
     WHERE new.kind LIKE 'import-%'
       AND le = (SELECT min(b.le) FROM import_duration b
                  WHERE b.le >= max(0.0, (julianday(new.ended) - julianday(new.started)) * 86400.0));
END;
-- Both start from the runs there are.
INSERT INTO run_end (kind, link, status, started, ended)
    SELECT kind, link, status, started, ended FROM run WHERE status <> 'running';

-- A run ends once, from `running` to its outcome (`runs::finish`); one
-- written already ended counts the same.
CREATE TRIGGER run_ended AFTER UPDATE OF status ON run
WHEN old.status = 'running' AND new.status <> 'running'
BEGIN
    INSERT INTO run_end (kind, link, status, started, ended)
        VALUES (new.kind, new.link, new.status, new.started, new.ended);
END;
CREATE TRIGGER run_inserted_ended AFTER INSERT ON run
WHEN new.status <> 'running'
BEGIN
    INSERT INTO run_end (kind, link, status, started, ended)
        VALUES (new.kind, new.link, new.status, new.started, new.ended);
END;

-- The failed run of a file in `error/` (`stxd status`, the console: one
-- look-up a refused file), without reading the link's runs.
CREATE INDEX run_failed_file ON run (link, file) WHERE status = 'failed';
"#;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rusqlite::Connection;

    use super::super::journal::{self, Direction, FileState, NewEntry};
    use super::super::runs::{self, Counts, RunStatus};
    use super::super::schema::migrate_to;
    use super::super::schema::tests::{at_version, rows, user_version};
    use super::super::stats::{self, Durations};
    use super::super::{Role, Store, StoreError};
    use crate::exchange::Kind;

    /// The journal counted from its rows, as `/metrics` read it before.
    const JOURNAL: &str =
        "SELECT link || ' ' || kind || ' ' || direction || ' ' || state || ' ' || count(*)
                           FROM file_journal GROUP BY link, kind, direction, state ORDER BY 1";
    const JOURNAL_KEPT: &str =
        "SELECT link || ' ' || kind || ' ' || direction || ' ' || state || ' ' || files
                                FROM file_journal_count WHERE files > 0 ORDER BY 1";
    /// The last successes from the runs, as `/metrics` read them before.
    const LAST: &str = "SELECT link || ' ' || kind || ' ' || max(ended) FROM run
                        WHERE status = 'ok' AND link IS NOT NULL AND ended IS NOT NULL
                        GROUP BY link, kind ORDER BY 1";
    const LAST_KEPT: &str =
        "SELECT link || ' ' || kind || ' ' || ended FROM run_last_success ORDER BY 1";

    /// The import durations from every run, bucketed as `/metrics` did
    /// before (5 ms doubling fourteen times, then infinity; the first
    /// bound at or above the duration).
    fn durations_of_every_run(conn: &Connection) -> Durations {
        let mut bounds: Vec<f64> = (0..14).map(|k| 0.005 * f64::from(1 << k)).collect();
        bounds.push(f64::INFINITY);
        let mut d = Durations {
            buckets: bounds.iter().map(|&b| (b, 0)).collect(),
            sum: 0.0,
        };
        for s in rows::<Option<f64>>(
            conn,
            "SELECT (julianday(ended) - julianday(started)) * 86400.0 FROM run
             WHERE kind LIKE 'import-%' AND ended IS NOT NULL",
        )
        .into_iter()
        .flatten()
        {
            let s = s.max(0.0);
            let i = bounds.iter().position(|&b| b >= s).unwrap();
            d.buckets[i].1 += 1;
            d.sum += s;
        }
        d
    }

    /// What the kept tables say equals what the rows say.
    fn assert_kept(conn: &Connection, when: &str) {
        assert_eq!(
            rows::<String>(conn, JOURNAL_KEPT),
            rows::<String>(conn, JOURNAL),
            "{when}: journal"
        );
        assert_eq!(
            rows::<String>(conn, LAST_KEPT),
            rows::<String>(conn, LAST),
            "{when}: last successes"
        );
        let (kept, actual) = (
            stats::import_durations(conn).unwrap(),
            durations_of_every_run(conn),
        );
        assert_eq!(kept.buckets, actual.buckets, "{when}: durations");
        assert!(
            (kept.sum - actual.sum).abs() <= 1e-9 * actual.sum.max(1.0),
            "{when}: {} s kept, {} s in the runs",
            kept.sum,
            actual.sum
        );
    }

    /// Each kept table starts from the rows of the store it is added to:
    /// runs of every outcome, of no link, still running, whose times do
    /// not read, with the clock set back, past the last bound, a success
    /// older than one before it.
    #[test]
    fn the_kept_history_starts_from_the_rows_there_are() {
        let mut conn = at_version(18);
        conn.execute_batch(
            "INSERT INTO run (id, kind, link, started, ended, status) VALUES
                 (1, 'import-sales', 'a-b', '2026-01-01T10:00:00.000000Z', '2026-01-01T10:00:00.003000Z', 'ok'),
                 (2, 'import-sales', 'a-b', '2026-01-02T10:00:00.000000Z', '2026-01-02T10:00:00.200000Z', 'ok'),
                 (3, 'import-sales', 'a-b', '2026-01-03T10:00:00.000000Z', '2026-01-03T10:01:00.000000Z', 'failed'),
                 (4, 'import-contingent', 'c-d', '2026-01-04T10:00:00.000000Z', '2026-01-04T09:59:00.000000Z', 'parked'),
                 (5, 'export-sales', 'a-b', '2026-01-05T10:00:00.000000Z', '2026-01-05T10:00:02.000000Z', 'ok'),
                 (6, 'import-sales', NULL, '2026-01-06T10:00:00.000000Z', '2026-01-06T10:00:01.500000Z', 'ok'),
                 (7, 'import-seatplan', 'a-b', 'x', 'x', 'ok'),
                 (8, 'import-sales', 'a-b', '2026-01-08T10:00:00.000000Z', NULL, 'running'),
                 (9, 'import-sales', 'a-b', '2025-12-31T10:00:00.000000Z', '2025-12-31T10:00:00.001000Z', 'ok');
             INSERT INTO file_journal (link, kind, direction, sequence, sha256, file_name, state, created, updated) VALUES
                 ('a-b', 'SALES', 'in', 1, printf('%064d', 1), 'f1', 'applied', 'x', 'x'),
                 ('a-b', 'SALES', 'in', 2, printf('%064d', 2), 'f2', 'applied', 'x', 'x'),
                 ('a-b', 'SALES', 'in', 3, printf('%064d', 3), 'f3', 'rejected', 'x', 'x'),
                 ('a-b', 'CONTINGENT', 'out', 1, printf('%064d', 4), 'f4', 'published', 'x', 'x'),
                 ('c-d', 'SEATPLAN', 'in', 1, printf('%064d', 5), 'f5', 'parked', 'x', 'x');",
        )
        .unwrap();
        migrate_to(&mut conn, Path::new(":memory:"), 19).unwrap();
        assert_eq!(user_version(&conn), 19);
        assert_kept(&conn, "migrated");
        // The figures themselves, not only their agreement.
        assert_eq!(
            rows::<String>(&conn, JOURNAL_KEPT),
            [
                "a-b CONTINGENT out published 1",
                "a-b SALES in applied 2",
                "a-b SALES in rejected 1",
                "c-d SEATPLAN in parked 1"
            ]
        );
        assert_eq!(
            rows::<String>(&conn, LAST_KEPT),
            [
                "a-b export-sales 2026-01-05T10:00:02.000000Z",
                "a-b import-sales 2026-01-02T10:00:00.200000Z",
                "a-b import-seatplan x"
            ]
        );
        let d = stats::import_durations(&conn).unwrap();
        let at = |le: f64| d.buckets.iter().find(|b| b.0 == le).unwrap().1;
        // 3 ms, 1 ms and the clock set back (0); 200 ms; 1.5 s; 60 s past
        // the last bound.
        assert_eq!(
            (at(0.005), at(0.32), at(2.56), at(f64::INFINITY)),
            (3, 1, 1, 1)
        );
        assert_eq!(d.count(), 6);
    }

    fn entry(link: &str, kind: Kind, sequence: u64, state: FileState) -> NewEntry<'_> {
        NewEntry {
            link,
            kind,
            direction: Direction::In,
            sequence,
            sha256: "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12",
            file_name: "f",
            state,
            run_id: None,
        }
    }

    /// Every way a journal row or a run is written keeps the counts: a file
    /// recorded, moved to another state, a refused one received again, a
    /// row deleted; a run ended with each outcome, one written ended.
    #[test]
    fn the_kept_history_follows_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("T.sqlite");
        let mut store = Store::open(&path, "T", Role::Manager).unwrap();
        let mut step =
            |when: &str, f: &dyn Fn(&rusqlite::Transaction<'_>) -> Result<(), StoreError>| {
                store.write(|tx| f(tx)).unwrap();
                store
                    .read(|c| -> Result<(), StoreError> {
                        assert_kept(c, when);
                        Ok(())
                    })
                    .unwrap();
            };
        step("a file parked, one refused", &|tx| {
            journal::record(tx, &entry("a-b", Kind::Seatplan, 1, FileState::Parked))?;
            journal::record(tx, &entry("a-b", Kind::Sales, 1, FileState::Rejected))?;
            Ok(())
        });
        step("the parked file applied", &|tx| {
            let id = journal::lookup(tx, "a-b", Kind::Seatplan, Direction::In, 1)?
                .unwrap()
                .id;
            journal::set_state(tx, id, FileState::Applied, None)
        });
        step("the refused one received again and applied", &|tx| {
            journal::record(tx, &entry("a-b", Kind::Sales, 1, FileState::Applied))?;
            Ok(())
        });
        step("runs of each outcome", &|tx| {
            for (kind, link, status) in [
                ("import-sales", Some("a-b"), RunStatus::Ok),
                ("import-sales", Some("a-b"), RunStatus::Failed),
                ("import-catalogue", Some("a-b"), RunStatus::Parked),
                ("export-contingent", Some("a-b"), RunStatus::Ok),
                ("import-sales", None, RunStatus::Ok),
            ] {
                let run = runs::start(tx, kind, link, None)?;
                runs::finish(tx, run, status, Counts::default())?;
            }
            runs::start(tx, "import-sales", Some("a-b"), None)?;
            Ok(())
        });
        step("a run written ended, a row deleted", &|tx| {
            tx.execute_batch(
                "INSERT INTO run (kind, link, started, ended, status)
                     VALUES ('import-sales', 'c-d', '2026-01-01T10:00:00.000000Z',
                             '2026-01-01T10:00:30.000000Z', 'ok');
                 DELETE FROM file_journal WHERE kind = 'SALES';",
            )?;
            Ok(())
        });
        let figures = store
            .read(|c| -> Result<_, StoreError> {
                Ok((
                    rows::<String>(c, JOURNAL_KEPT),
                    rows::<String>(
                        c,
                        "SELECT link || ' ' || kind FROM run_last_success ORDER BY 1",
                    ),
                    stats::import_durations(c)?.count(),
                ))
            })
            .unwrap();
        assert_eq!(
            figures,
            (
                vec!["a-b SEATPLAN in applied 1".to_owned()],
                vec![
                    "a-b export-contingent".to_owned(),
                    "a-b import-sales".to_owned(),
                    "c-d import-sales".to_owned()
                ],
                5
            )
        );
    }
}
