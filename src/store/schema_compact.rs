//! Migration 12, apart from `schema.rs` for its length: the rows a booked
//! sales line leaves at the manager, made smaller (`docs/performance.md`,
//! "Store size"). Listed in [`super::schema::MIGRATIONS`] like every other
//! step; never edited once released.

use super::schema::Migration;

pub(super) const COMPACT_SALES_ROWS: Migration = Migration {
    version: 12,
    name: "compact sales rows: a sales line and a pending-account entry name their run instead of copying its file and time",
    sql: SQL,
};

// Both tables are rebuilt: SQLite cannot change a STRICT column's type. The
// rows referring to `sales_line` (`sales_line_resolution`) stay; foreign keys
// are checked once, at the commit (`defer_foreign_keys`), so the migration
// commits only if every one of them finds its line again. The rows are
// counted before and after: a step that would lose one fails whole.
const SQL: &str = r#"
PRAGMA defer_foreign_keys = ON;

-- The run that last wrote each line: the import (or the resolution) whose
-- `file` the line names, the latest to start no later than the line's
-- `updated` time, else any run of that file; a line no run explains (none
-- is expected) gets a run of its own, saying so.
CREATE TEMP TABLE line_source AS
    SELECT DISTINCT link, file, updated, NULL AS run FROM sales_line;
CREATE UNIQUE INDEX temp.line_source_key ON line_source (link, file, updated);
UPDATE temp.line_source SET run = coalesce(
    (SELECT max(r.id) FROM run r
     WHERE r.link = line_source.link AND r.file = line_source.file
       AND r.started <= line_source.updated),
    (SELECT max(r.id) FROM run r
     WHERE r.link = line_source.link AND r.file = line_source.file));
INSERT INTO run (kind, link, file, started, ended, status)
    SELECT 'migrated-sales-lines', link, file, updated, updated, 'ok'
    FROM temp.line_source WHERE run IS NULL;
UPDATE temp.line_source SET run =
    (SELECT max(r.id) FROM run r
     WHERE r.kind = 'migrated-sales-lines' AND r.link = line_source.link
       AND r.file = line_source.file AND r.started = line_source.updated)
    WHERE run IS NULL;

CREATE TEMP TABLE old_sales_line AS SELECT * FROM sales_line;
DROP TABLE sales_line;
-- One row per distributor line id and link, booked or rejected: the
-- exactly-once key. `run` is the run that last wrote it (its `file` and
-- `started` are the line's file and time); `position` the line's number in
-- that file (0: not known). A booked line keeps the digest of its text, a
-- rejected one its text too (`stxd sales rejects`).
CREATE TABLE sales_line (
    link      TEXT NOT NULL CHECK (length(link) BETWEEN 1 AND 64),
    line      INTEGER NOT NULL CHECK (line >= 1),
    operation TEXT NOT NULL CHECK (operation IN ('SALE', 'REFUND')),
    status    TEXT NOT NULL CHECK (status IN ('booked', 'rejected')),
    run       INTEGER NOT NULL REFERENCES run (id),
    position  INTEGER NOT NULL CHECK (position >= 0),
    code      TEXT,
    reason    TEXT,
    record    TEXT NOT NULL,
    digest    INTEGER,
    PRIMARY KEY (link, line),
    CHECK ((status = 'rejected') = (code IS NOT NULL))
) STRICT, WITHOUT ROWID;
INSERT INTO sales_line (link, line, operation, status, run, position, code, reason, record, digest)
    SELECT o.link, o.line, o.operation, o.status, s.run,
           CASE WHEN o.position GLOB 'line [0-9]*' THEN CAST(substr(o.position, 6) AS INTEGER)
                ELSE 0 END,
           o.code, o.reason, o.record, o.digest
    FROM temp.old_sales_line o
    JOIN temp.line_source s ON s.link = o.link AND s.file = o.file AND s.updated = o.updated;
-- Every line came through, or the migration fails whole.
CREATE TEMP TABLE kept (every_sales_line_kept INTEGER CHECK (every_sales_line_kept = 1),
                        every_pending_entry_kept INTEGER CHECK (every_pending_entry_kept = 1));
INSERT INTO temp.kept (every_sales_line_kept)
    SELECT (SELECT count(*) FROM sales_line) = (SELECT count(*) FROM temp.old_sales_line);
DROP TABLE temp.old_sales_line;
DROP TABLE temp.line_source;

-- A pending-account entry names its ticket (whose link it is) and the run
-- that booked it (its `started` is the entry's time): the sale's entry is
-- the ticket's first, the refund's its second, each written by the run of
-- its line.
CREATE TEMP TABLE old_entry AS SELECT * FROM pending_account_entry;
CREATE INDEX temp.old_entry_ticket ON old_entry (ticket, id);
DROP INDEX pending_account_entry_link;
DROP TABLE pending_account_entry;
CREATE TABLE pending_account_entry (
    id       INTEGER PRIMARY KEY,
    ticket   INTEGER NOT NULL REFERENCES ticket (id),
    amount   INTEGER NOT NULL,
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    run      INTEGER NOT NULL REFERENCES run (id)
) STRICT;
CREATE INDEX pending_account_entry_ticket ON pending_account_entry (ticket);
INSERT INTO pending_account_entry (id, ticket, amount, currency, run)
    SELECT e.id, e.ticket, e.amount, e.currency, coalesce(
        (SELECT l.run FROM sales_line l
         WHERE l.link = t.link
           AND l.line = CASE WHEN EXISTS (SELECT 1 FROM temp.old_entry p
                                          WHERE p.ticket = e.ticket AND p.id < e.id)
                             THEN t.refund_line ELSE t.line END),
        (SELECT l.run FROM sales_line l WHERE l.link = t.link AND l.line = t.line))
    FROM temp.old_entry e JOIN ticket t ON t.id = e.ticket;
INSERT INTO temp.kept (every_pending_entry_kept)
    SELECT (SELECT count(*) FROM pending_account_entry) = (SELECT count(*) FROM temp.old_entry);
DROP TABLE temp.old_entry;
DROP TABLE temp.kept;
"#;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rusqlite::Connection;

    use super::super::schema::migrate_to;
    use super::super::schema::tests::{at_version, rows, user_version};

    /// A manager store as version 11 wrote it: lines of two files, a
    /// refund, a rejected line, a line accepted by a resolution (its run
    /// names the file of the line), a line no run explains, and their
    /// pending-account entries.
    fn version_11() -> Connection {
        let conn = at_version(11);
        // Master data is left out: its foreign keys are not the migration's.
        conn.execute_batch(
            "INSERT INTO run (id, kind, link, file, started, ended, status) VALUES
                 (1, 'import-sales', 'L', 'S1.csv', '2026-12-01T10:00:00.000001Z', '2026-12-01T10:00:01.000000Z', 'ok'),
                 (2, 'import-sales', 'M', 'S1.csv', '2026-12-01T10:30:00.000000Z', '2026-12-01T10:30:01.000000Z', 'ok'),
                 (3, 'import-sales', 'L', 'S2.csv', '2026-12-01T11:00:00.000000Z', '2026-12-01T11:00:01.000000Z', 'partial'),
                 (4, 'resolve-line', 'L', 'S2.csv', '2026-12-01T12:00:00.000000Z', '2026-12-01T12:00:00.500000Z', 'ok');
             INSERT INTO sales_line (link, line, operation, status, file, position, code, reason, record, updated, digest) VALUES
                 ('L', 1, 'SALE', 'booked', 'S1.csv', 'line 2', NULL, NULL, '', '2026-12-01T10:00:00.000002Z', 11),
                 ('L', 2, 'SALE', 'booked', 'S1.csv', 'line 3', NULL, NULL, 'text before digests', '2026-12-01T10:00:00.000002Z', NULL),
                 ('M', 1, 'SALE', 'booked', 'S1.csv', 'line 2', NULL, NULL, '', '2026-12-01T10:30:00.000001Z', 12),
                 ('L', 3, 'REFUND', 'booked', 'S2.csv', 'line 2', NULL, NULL, '', '2026-12-01T11:00:00.000001Z', 13),
                 ('L', 4, 'SALE', 'rejected', 'S2.csv', 'line 3', 'price-differs', 'why', '4;SALE;…', '2026-12-01T11:00:00.000001Z', 14),
                 ('L', 5, 'SALE', 'booked', 'S2.csv', 'line 4', NULL, NULL, '', '2026-12-01T12:00:00.000001Z', 15),
                 ('L', 6, 'SALE', 'rejected', 'lost.csv', 'somewhere', 'x', 'y', 'r', '2026-12-01T09:00:00.000000Z', NULL);
             INSERT INTO sales_line_resolution (link, line, decision, code, overridden, reason, by_user, at, run, operation, amount, currency)
                 VALUES ('L', 5, 'accepted', 'price-differs', 'price-differs', 'ok', 'ops', '2026-12-01T12:00:00.000002Z', 4, 'SALE', 8000, 'EUR');
             INSERT INTO sales_order (id, link, reference, channel, point_of_sale, payment_method, contact, created)
                 VALUES (1, 'L', 'T-1', 1, 1, 1, 1, 'x'), (2, 'M', 'T-1', 1, 1, 1, 1, 'x');
             INSERT INTO ticket (id, sales_order, link, line, performance, seat, zone, seat_category, tariff_type,
                     audience_subcategory, amount, currency, vat_code, sold_at, state, refund_line, cancelled_at) VALUES
                 (1, 1, 'L', 1, 1, 1, NULL, 1, 1, 1, 8500, 'EUR', 1, 'x', 'cancelled', 3, 'y'),
                 (2, 1, 'L', 2, 1, 2, NULL, 1, 1, 1, 0, 'EUR', 1, 'x', 'valid', NULL, NULL),
                 (3, 2, 'M', 1, 1, 3, NULL, 1, 1, 1, 8500, 'EUR', 1, 'x', 'valid', NULL, NULL),
                 (4, 1, 'L', 5, 1, 4, NULL, 1, 1, 1, 8000, 'EUR', 1, 'x', 'valid', NULL, NULL);
             INSERT INTO pending_account_entry (id, link, ticket, amount, currency, created) VALUES
                 (1, 'L', 1, 8500, 'EUR', 'a'), (2, 'L', 2, 0, 'EUR', 'a'), (3, 'M', 3, 8500, 'EUR', 'a'),
                 (4, 'L', 1, -8500, 'EUR', 'b'), (5, 'L', 4, 8000, 'EUR', 'c');",
        )
        .unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        conn
    }

    #[test]
    fn each_line_and_entry_finds_the_run_that_wrote_it() {
        let mut conn = version_11();
        migrate_to(&mut conn, Path::new(":memory:"), 12).unwrap();
        let lines: Vec<String> = rows(
            &conn,
            "SELECT l.link || l.line || ' ' || l.status || ' run ' || l.run || ' ' || r.file || ' line ' || l.position
                    || ' ' || coalesce(l.code, '-') || ' ' || l.record || ' ' || coalesce(l.digest, '-')
             FROM sales_line l JOIN run r ON r.id = l.run ORDER BY l.link, l.line",
        );
        assert_eq!(
            lines,
            [
                "L1 booked run 1 S1.csv line 2 -  11",
                "L2 booked run 1 S1.csv line 3 - text before digests -",
                "L3 booked run 3 S2.csv line 2 -  13",
                "L4 rejected run 3 S2.csv line 3 price-differs 4;SALE;… 14",
                "L5 booked run 4 S2.csv line 4 -  15",
                "L6 rejected run 5 lost.csv line 0 x r -",
                "M1 booked run 2 S1.csv line 2 -  12",
            ]
        );
        let made: Vec<String> = rows(
            &conn,
            "SELECT kind || ' ' || link || ' ' || file || ' ' || started FROM run WHERE id = 5",
        );
        assert_eq!(
            made,
            ["migrated-sales-lines L lost.csv 2026-12-01T09:00:00.000000Z"]
        );
        // The sale's entry is the ticket's first (run of its line), the
        // refund's the second (run of the refund line), even at 0.
        let entries: Vec<String> = rows(
            &conn,
            "SELECT id || ': ticket ' || ticket || ' ' || amount || ' ' || currency || ' run ' || run
             FROM pending_account_entry ORDER BY id",
        );
        assert_eq!(
            entries,
            [
                "1: ticket 1 8500 EUR run 1",
                "2: ticket 2 0 EUR run 1",
                "3: ticket 3 8500 EUR run 2",
                "4: ticket 1 -8500 EUR run 3",
                "5: ticket 4 8000 EUR run 4",
            ]
        );
        let resolution: Vec<String> = rows(
            &conn,
            "SELECT link || line || ' ' || decision FROM sales_line_resolution",
        );
        assert_eq!(resolution, ["L5 accepted"]);
        let broken: Vec<String> = rows(&conn, "SELECT \"table\" FROM pragma_foreign_key_check");
        // Only the master data this fixture left out.
        assert!(
            broken.iter().all(|t| t == "ticket" || t == "sales_order"),
            "{broken:?}"
        );
        assert_eq!(user_version(&conn), 12);
    }

    /// An entry whose ticket is gone (a store written with foreign keys
    /// off) cannot be placed: the migration refuses the whole step and the
    /// store stays at version 11, untouched.
    #[test]
    fn an_entry_the_migration_cannot_place_refuses_the_whole_step() {
        let mut conn = version_11();
        conn.execute_batch(
            "PRAGMA foreign_keys = OFF;
             INSERT INTO pending_account_entry (id, link, ticket, amount, currency, created)
                 VALUES (6, 'L', 77, 100, 'EUR', 'd');
             PRAGMA foreign_keys = ON;",
        )
        .unwrap();
        let err = migrate_to(&mut conn, Path::new("x.db"), 12).unwrap_err();
        let text = format!("{err}: {:?}", std::error::Error::source(&err));
        assert!(text.contains("every_pending_entry_kept"), "{text}");
        assert_eq!(user_version(&conn), 11, "nothing of the migration was kept");
        let old: Vec<String> = rows(
            &conn,
            "SELECT file FROM sales_line WHERE line = 1 AND link = 'L'",
        );
        assert_eq!(old, ["S1.csv"]);
    }
}
