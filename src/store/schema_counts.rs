//! Migration 18, apart from `schema.rs`: the manager's sales lines counted
//! by link and status as they are written, so that
//! `/metrics` reads a few rows instead of every line the link ever sent
//! (`docs/performance.md`, "Metrics that do not read every line").
//! Listed in [`super::schema::MIGRATIONS`] like every other step; never
//! edited once released.

use super::schema::Migration;

pub(super) const SALES_LINES_COUNTED: Migration = Migration {
    version: 18,
    name: "sales lines counted: the count of a link's lines by status kept with the lines, not read from every line",
    sql: SQL,
};

// The count starts from the lines there are (one read of the table, at the
// first start of this version). Then the one statement that writes a line
// (`domain::reintegration`, a line received: inserted, or a rejected line
// written over) is followed, in the same transaction, by the file's change
// to the count: both commit or neither does. Triggers would keep it as
// well, whoever writes, but they cost the reintegration 5% of its time,
// an upsert for every line.
const SQL: &str = r#"
-- How many lines of each link have each status (`sales_line`), kept by the
-- reintegration in the transaction that writes the lines.
CREATE TABLE sales_line_count (
    link   TEXT NOT NULL,
    status TEXT NOT NULL,
    lines  INTEGER NOT NULL CHECK (lines >= 0),
    PRIMARY KEY (link, status)
) STRICT, WITHOUT ROWID;
INSERT INTO sales_line_count (link, status, lines)
    SELECT link, status, count(*) FROM sales_line GROUP BY link, status;
"#;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::schema::migrate_to;
    use super::super::schema::tests::{at_version, rows, user_version};

    const COUNTED: &str = "SELECT link || ' ' || status || ' ' || lines FROM sales_line_count
                           WHERE lines > 0 ORDER BY link, status";
    const ACTUAL: &str = "SELECT link || ' ' || status || ' ' || count(*) FROM sales_line
                          GROUP BY link, status ORDER BY link, status";

    /// The count starts from the lines a store has.
    #[test]
    fn the_count_starts_from_the_lines_there_are() {
        let mut conn = at_version(17);
        conn.execute_batch(
            "INSERT INTO run (id, kind, started, ended, status)
                 VALUES (1, 'import-sales', 'x', 'x', 'ok');
             INSERT INTO sales_line (link, line, operation, status, run, position, code, record)
                 VALUES ('a-b', 1, 'SALE', 'booked', 1, 2, NULL, ''),
                        ('a-b', 2, 'SALE', 'rejected', 1, 3, 'unknown-seat', 'x'),
                        ('a-b', 3, 'SALE', 'booked', 1, 4, NULL, ''),
                        ('c-d', 1, 'SALE', 'booked', 1, 2, NULL, '');",
        )
        .unwrap();
        migrate_to(&mut conn, Path::new(":memory:"), 18).unwrap();
        assert_eq!(user_version(&conn), 18);
        assert_eq!(
            rows::<String>(&conn, COUNTED),
            ["a-b booked 2", "a-b rejected 1", "c-d booked 1"]
        );
        assert_eq!(
            rows::<String>(&conn, COUNTED),
            rows::<String>(&conn, ACTUAL)
        );
    }
}
