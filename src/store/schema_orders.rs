//! Migration 15, apart from `schema.rs` for its length: an order's creation
//! time as an integer (`docs/performance.md`, "Store size, fourth step").
//! Listed in [`super::schema::MIGRATIONS`] like every other step; never
//! edited once released.

use super::schema::Migration;

pub(super) const INTEGER_ORDER_TIMES: Migration = Migration {
    version: 15,
    name: "integer order times: an order's creation in microseconds since 1970, not 27 characters of text",
    sql: SQL,
};

// The table is rebuilt (SQLite cannot change a STRICT column's type): its
// `created` becomes microseconds since 1970-01-01 UTC, as the tickets' times
// did in migration 13. Tickets refer to orders, so foreign keys are checked
// once, at the commit (`defer_foreign_keys`); rows are counted before and
// after, and a time that cannot be read fails the step (NOT NULL): nothing
// is lost, or the store stays at version 14.
const SQL: &str = r#"
PRAGMA defer_foreign_keys = ON;

CREATE TEMP TABLE old_order AS SELECT * FROM sales_order;
DROP TABLE sales_order;
-- An order of the manager, one per distributor order reference and link.
-- `created`: when the file that made it was applied, microseconds since
-- 1970-01-01 UTC.
CREATE TABLE sales_order (
    id             INTEGER PRIMARY KEY,
    link           TEXT NOT NULL CHECK (length(link) BETWEEN 1 AND 64),
    reference      TEXT NOT NULL CHECK (length(reference) BETWEEN 1 AND 32),
    channel        INTEGER NOT NULL REFERENCES sales_channel (id),
    point_of_sale  INTEGER NOT NULL REFERENCES point_of_sale (id),
    payment_method INTEGER NOT NULL REFERENCES payment_method (id),
    contact        INTEGER NOT NULL REFERENCES contact (id),
    created        INTEGER NOT NULL,
    UNIQUE (link, reference)
) STRICT;
-- Times as earlier versions wrote them ('2026-12-01T10:00:00.000001Z'), or
-- whole seconds in any form SQLite reads; anything else is NULL.
INSERT INTO sales_order (id, link, reference, channel, point_of_sale, payment_method, contact, created)
    SELECT id, link, reference, channel, point_of_sale, payment_method, contact,
           CASE WHEN created GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'
                THEN unixepoch(substr(created, 1, 19)) * 1000000 + CAST(substr(created, 21, 6) AS INTEGER)
                ELSE unixepoch(created) * 1000000 END
    FROM temp.old_order
    ORDER BY id;
-- Every order came through, or the migration fails whole.
CREATE TEMP TABLE kept (every_order_kept INTEGER CHECK (every_order_kept = 1));
INSERT INTO temp.kept (every_order_kept)
    SELECT (SELECT count(*) FROM sales_order) = (SELECT count(*) FROM temp.old_order);
DROP TABLE temp.kept;
DROP TABLE temp.old_order;
"#;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rusqlite::Connection;

    use super::super::schema::migrate_to;
    use super::super::schema::tests::{at_version, rows, user_version};

    /// A manager store as version 14 wrote it: two orders (one with a
    /// ticket), their times with and without microseconds.
    fn version_14() -> Connection {
        let conn = at_version(14);
        // The setup an order refers to (a ticket's own references left
        // out: the migration does not write tickets).
        conn.execute_batch(
            "INSERT INTO sales_channel VALUES (1, 'C', 'C', 'stx_file', 1);
             INSERT INTO point_of_sale VALUES (1, 'P', 'P', 1, 1);
             INSERT INTO payment_method VALUES (1, 'M', 'M', 1);
             INSERT INTO contact VALUES (1, 'K', 'K', 1);
             INSERT INTO sales_order (id, link, reference, channel, point_of_sale, payment_method, contact, created)
                 VALUES (1, 'L', 'T-1', 1, 1, 1, 1, '2026-12-01T10:00:00.250001Z'),
                        (2, 'M', 'T-1', 1, 1, 1, 1, '2026-12-02T10:00:00Z');
             INSERT INTO ticket (id, sales_order, link, line, performance, seat, zone, seat_category, tariff_type,
                     audience_subcategory, amount, currency, vat_code, sold_at, state)
                 VALUES (1, 2, 'M', 1, 1, 1, NULL, 1, 1, 1, 8500, 'EUR', 1, 1, 'valid');",
        )
        .unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        conn
    }

    #[test]
    fn orders_keep_every_column_with_integer_times() {
        let mut conn = version_14();
        migrate_to(&mut conn, Path::new(":memory:"), 15).unwrap();
        assert_eq!(user_version(&conn), 15);
        let orders = rows::<String>(
            &conn,
            "SELECT id || ' ' || link || ' ' || reference || ' ' || created || ' ' || typeof(created)
             FROM sales_order ORDER BY id",
        );
        assert_eq!(
            orders,
            [
                "1 L T-1 1796119200250001 integer",
                "2 M T-1 1796205600000000 integer"
            ]
        );
        let ticket = rows::<String>(
            &conn,
            "SELECT o.reference || ' ' || o.link FROM ticket t JOIN sales_order o ON o.id = t.sales_order",
        );
        assert_eq!(ticket, ["T-1 M"]);
        let indexes = rows::<String>(
            &conn,
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'sales_order'",
        );
        assert_eq!(indexes, ["sqlite_autoindex_sales_order_1"]);
    }

    /// A creation time the migration cannot read refuses the whole step:
    /// the store stays at version 14, its orders untouched.
    #[test]
    fn a_time_the_migration_cannot_read_refuses_the_whole_step() {
        let mut conn = version_14();
        conn.execute("UPDATE sales_order SET created = 'soon' WHERE id = 1", [])
            .unwrap();
        let err = migrate_to(&mut conn, Path::new("x.db"), 15).unwrap_err();
        let text = format!("{err}: {:?}", std::error::Error::source(&err));
        assert!(text.contains("sales_order.created"), "{text}");
        assert_eq!(user_version(&conn), 14);
        let old = rows::<String>(&conn, "SELECT created FROM sales_order ORDER BY id");
        assert_eq!(old, ["soon", "2026-12-02T10:00:00Z"]);
    }
}
