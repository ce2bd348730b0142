//! Migrations 16 and 17, apart from `schema.rs` for their length: the
//! mapping table's checks written as comparisons (`docs/performance.md`,
//! "The seat plan at the distributor, second step"), and its index of
//! statuses kept for the pending rows alone ("A venue's first seat plan").
//! Listed in [`super::schema::MIGRATIONS`] like every other step; never
//! edited once released.

use super::schema::Migration;

pub(super) const MAPPING_CHECKS_AS_COMPARISONS: Migration = Migration {
    version: 16,
    name: "mapping checks as comparisons: a seat plan maps each seat without SQLite building a temporary index per row",
    sql: SQL,
};

// SQLite evaluates `x IN ('a', 'b', 'c', …)` with three values or more in a
// CHECK constraint by filling a temporary index with the list, again for
// every row written; the mapping table's `kind IN (sixteen kinds)` and
// `status IN (three)` cost more than the rest of the insert, and the seat
// plan import writes one mapping row per seat. The same rules, written as
// comparisons joined by OR, are evaluated in place. Nothing else of the
// table changes: same columns, same values, same unique key and index.
//
// The rows are kept aside, the table made again and the rows put back with
// their ids; they are counted before and after, and the step fails whole
// (the store stays at version 15) if one is missing. Nothing refers to
// `mapping` by a foreign key.
const SQL: &str = r#"
CREATE TEMP TABLE old_mapping AS SELECT * FROM mapping;
DROP TABLE mapping;
-- A manager object (kind, id) of a link's manager and the local object that
-- stands for it at the distributor. status: 'pending' (not mapped yet),
-- 'filled' (local_id set), 'ignored' (records naming it are skipped).
-- The lists of values are comparisons joined by OR, never `IN (…)`: SQLite
-- builds a temporary index of an IN list of three values or more for every
-- row it checks.
CREATE TABLE mapping (
    id            INTEGER PRIMARY KEY,
    manager       TEXT NOT NULL CHECK (length(manager) BETWEEN 1 AND 8),
    kind          TEXT NOT NULL CHECK (
                      kind = 'season' OR kind = 'activity' OR kind = 'performance'
                      OR kind = 'vat_code' OR kind = 'tariff_type'
                      OR kind = 'audience_subcategory' OR kind = 'seat_category'
                      OR kind = 'venue' OR kind = 'configuration' OR kind = 'zone'
                      OR kind = 'block' OR kind = 'row' OR kind = 'seat'
                      OR kind = 'logical_configuration' OR kind = 'rate_table'
                      OR kind = 'product'),
    manager_id    INTEGER NOT NULL CHECK (manager_id > 0),
    manager_code  TEXT NOT NULL CHECK (length(manager_code) BETWEEN 1 AND 8),
    manager_label TEXT NOT NULL CHECK (length(manager_label) BETWEEN 1 AND 200),
    local_id      INTEGER CHECK (local_id IS NULL OR local_id > 0),
    status        TEXT NOT NULL CHECK (status = 'pending' OR status = 'filled' OR status = 'ignored'),
    first_seen    TEXT NOT NULL,
    last_seen     TEXT NOT NULL,
    first_file    TEXT,
    UNIQUE (manager, kind, manager_id),
    CHECK ((status = 'filled') = (local_id IS NOT NULL))
) STRICT;
INSERT INTO mapping (id, manager, kind, manager_id, manager_code, manager_label, local_id,
                     status, first_seen, last_seen, first_file)
    SELECT id, manager, kind, manager_id, manager_code, manager_label, local_id,
           status, first_seen, last_seen, first_file
    FROM temp.old_mapping
    ORDER BY id;
CREATE INDEX mapping_status ON mapping (status);
-- Every row came through, or the migration fails whole.
CREATE TEMP TABLE kept (every_mapping_kept INTEGER CHECK (every_mapping_kept = 1));
INSERT INTO temp.kept (every_mapping_kept)
    SELECT (SELECT count(*) FROM mapping) = (SELECT count(*) FROM temp.old_mapping);
DROP TABLE temp.kept;
DROP TABLE temp.old_mapping;
"#;

pub(super) const PENDING_MAPPINGS_INDEXED: Migration = Migration {
    version: 17,
    name: "pending mappings indexed alone: a seat plan writes no status index entry for each seat it maps",
    sql: PENDING_SQL,
};

// Every row a seat plan fills (one per row and seat) also went into
// `mapping_status`, an index of a column with three values that only the
// count of a manager's pending rows (`stxd status`, the console) reads. A
// partial index of the pending rows by manager serves that count alone, and
// a filled row, nearly every row of a big venue, is not written into it.
// Listing the rows of one status (`stxd mapping list --pending`) reads the
// table in its key's order, as it already did.
const PENDING_SQL: &str = "
DROP INDEX mapping_status;
CREATE INDEX mapping_pending ON mapping (manager) WHERE status = 'pending';
";

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rusqlite::Connection;

    use super::super::schema::migrate_to;
    use super::super::schema::tests::{at_version, rows, user_version};

    /// A distributor store as version 15 wrote it: a pending, a filled and
    /// an ignored mapping, of two managers.
    fn version_15() -> Connection {
        let conn = at_version(15);
        conn.execute_batch(
            "INSERT INTO mapping (id, manager, kind, manager_id, manager_code, manager_label, local_id,
                                  status, first_seen, last_seen, first_file)
             VALUES (3, 'OPERA', 'seat_category', 11, 'CAT1', 'Category 1', NULL, 'pending',
                     '2026-12-01T10:00:00.000001Z', '2026-12-02T10:00:00.000001Z', 'a.stx'),
                    (5, 'OPERA', 'seat', 50001, '12', 'ORCH A 12', 7, 'filled',
                     '2026-12-01T10:00:00.000001Z', '2026-12-01T10:00:00.000001Z', 'a.stx'),
                    (9, 'BALLET', 'tariff_type', 4, 'RED', 'Reduced', NULL, 'ignored',
                     '2026-12-03T10:00:00.000001Z', '2026-12-03T10:00:00.000001Z', NULL);",
        )
        .unwrap();
        conn
    }

    const ALL: &str =
        "SELECT id || ' ' || manager || ' ' || kind || ' ' || manager_id || ' ' || manager_code
            || ' ' || manager_label || ' ' || ifnull(local_id, '-') || ' ' || status || ' '
            || first_seen || ' ' || last_seen || ' ' || ifnull(first_file, '-')
         FROM mapping ORDER BY id";

    #[test]
    fn every_row_is_kept_and_the_rules_still_hold() {
        let mut conn = version_15();
        let before = rows::<String>(&conn, ALL);
        migrate_to(&mut conn, Path::new(":memory:"), 16).unwrap();
        assert_eq!(user_version(&conn), 16);
        assert_eq!(rows::<String>(&conn, ALL), before);
        assert_eq!(before.len(), 3);
        let indexes = rows::<String>(
            &conn,
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'mapping' ORDER BY name",
        );
        assert_eq!(indexes, ["mapping_status", "sqlite_autoindex_mapping_1"]);
        // The same refusals as before: an unknown kind or status, a filled
        // row without its local object, a second row of one object.
        for (bad, rule) in [
            (
                "'OPERA', 'logical_seat_category', 1, 'X', 'X', NULL, 'pending'",
                "kind",
            ),
            ("'OPERA', 'seat', 1, 'X', 'X', NULL, 'mapped'", "status"),
            ("'OPERA', 'seat', 1, 'X', 'X', NULL, 'filled'", "filled"),
            ("'OPERA', 'seat', 50001, 'X', 'X', 8, 'filled'", "UNIQUE"),
        ] {
            let err = conn
                .execute(
                    &format!(
                        "INSERT INTO mapping (manager, kind, manager_id, manager_code, manager_label,
                                              local_id, status, first_seen, last_seen)
                         VALUES ({bad}, 't', 't')"
                    ),
                    [],
                )
                .unwrap_err()
                .to_string();
            assert!(err.contains(rule), "{bad}: {err}");
        }
        // Every kind the code writes is still accepted.
        for (i, kind) in crate::store::mapping::MappingKind::ALL.iter().enumerate() {
            conn.execute(
                "INSERT INTO mapping (manager, kind, manager_id, manager_code, manager_label,
                                      local_id, status, first_seen, last_seen)
                 VALUES ('NEW', ?1, ?2, 'X', 'X', NULL, 'pending', 't', 't')",
                (kind.as_str(), i64::try_from(i).unwrap() + 1),
            )
            .unwrap();
        }
    }

    /// What the step is for: writing a mapping row no longer fills a
    /// temporary index with the lists of kinds and statuses (SQLite's
    /// `OpenEphemeral`), which version 15's checks did for every row.
    #[test]
    fn writing_a_mapping_row_builds_no_temporary_index() {
        let upsert =
            "EXPLAIN INSERT INTO mapping (manager, kind, manager_id, manager_code, manager_label,
                 local_id, status, first_seen, last_seen, first_file)
             VALUES ('OPERA', 'seat', 1, 'A', 'B', 5, 'filled', 't', 't', 'f')
             ON CONFLICT (manager, kind, manager_id) DO UPDATE SET
                 manager_code = excluded.manager_code, local_id = excluded.local_id,
                 status = 'filled', last_seen = excluded.last_seen";
        let ephemeral = |conn: &Connection| {
            let mut explain = conn.prepare(upsert).unwrap();
            let opcodes = explain.query_map([], |r| r.get::<_, String>(1)).unwrap();
            opcodes
                .filter(|op| op.as_deref() == Ok("OpenEphemeral"))
                .count()
        };
        let mut conn = version_15();
        assert!(
            ephemeral(&conn) > 0,
            "version 15 built one (the test's premise)"
        );
        migrate_to(&mut conn, Path::new(":memory:"), 16).unwrap();
        assert_eq!(ephemeral(&conn), 0);
    }

    /// A row that does not come through (here one the new checks refuse,
    /// written into version 15 with its checks off) refuses the whole
    /// step: the store stays at version 15, its rows untouched.
    #[test]
    fn a_row_the_new_table_refuses_fails_the_whole_step() {
        let mut conn = version_15();
        conn.execute_batch(
            "PRAGMA ignore_check_constraints = ON;
             INSERT INTO mapping (manager, kind, manager_id, manager_code, manager_label, local_id,
                                  status, first_seen, last_seen)
                 VALUES ('OPERA', 'stand', 1, 'X', 'X', NULL, 'pending', 't', 't');
             PRAGMA ignore_check_constraints = OFF;",
        )
        .unwrap();
        let before = rows::<String>(&conn, ALL);
        assert!(migrate_to(&mut conn, Path::new("x.db"), 16).is_err());
        assert_eq!(user_version(&conn), 15);
        assert_eq!(rows::<String>(&conn, ALL), before);
    }

    /// Migration 17: the rows are kept; the index of statuses is gone, and
    /// the count of a manager's pending rows reads the partial index.
    #[test]
    fn the_pending_rows_are_indexed_alone_and_counted_through_that_index() {
        let mut conn = version_15();
        migrate_to(&mut conn, Path::new(":memory:"), 16).unwrap();
        conn.execute_batch(
            "INSERT INTO mapping (manager, kind, manager_id, manager_code, manager_label,
                                  local_id, status, first_seen, last_seen)
             VALUES ('OPERA', 'tariff_type', 12, 'RED', 'Reduced', NULL, 'pending', 't', 't'),
                    ('BALLET', 'tariff_type', 13, 'RED', 'Reduced', NULL, 'pending', 't', 't');",
        )
        .unwrap();
        let before = rows::<String>(&conn, ALL);
        migrate_to(&mut conn, Path::new(":memory:"), 17).unwrap();
        assert_eq!(user_version(&conn), 17);
        assert_eq!(rows::<String>(&conn, ALL), before);
        let indexes = rows::<String>(
            &conn,
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'mapping' ORDER BY name",
        );
        assert_eq!(indexes, ["mapping_pending", "sqlite_autoindex_mapping_1"]);
        let pending = "SELECT count(*) FROM mapping WHERE manager = ?1 AND status = 'pending'";
        for (manager, expected) in [("OPERA", 2), ("BALLET", 1), ("NONE", 0)] {
            let n: i64 = conn.query_row(pending, [manager], |r| r.get(0)).unwrap();
            assert_eq!(n, expected, "{manager}");
        }
        let plan = super::super::query_plan(&conn, pending, ["OPERA"]);
        assert!(
            plan.iter().any(|p| p.contains("mapping_pending")),
            "{plan:?}"
        );
    }
}
