//! Migration 13, apart from `schema.rs` for its length: a ticket made
//! smaller (`docs/performance.md`, "Store size, third step"). Listed in
//! [`super::schema::MIGRATIONS`] like every other step; never edited once
//! released.

use super::schema::Migration;

pub(super) const COMPACT_TICKETS: Migration = Migration {
    version: 13,
    name: "compact tickets: a sales line names its ticket, a ticket's times are integers",
    sql: SQL,
};

// The ticket table is rebuilt (SQLite cannot change a STRICT column's
// type): its times become microseconds since 1970-01-01 UTC, and its
// `UNIQUE (link, line)` index and `(link, refund_line)` index go. The line a
// ticket was booked from and the one that cancelled it are found from the
// line instead: `sales_line.ticket`, the exactly-once key's row, which was
// the one place to check a line id anyway.
//
// Order matters: the ticket table is dropped and filled again while only
// `pending_account_entry` (indexed by ticket) refers to it, so each row put
// back finds its entries by index; `sales_line.ticket` is added and filled
// after. Foreign keys are checked once, at the commit (`defer_foreign_keys`);
// rows are counted before and after, and a time that cannot be read fails
// the step (NOT NULL): nothing is lost, or the store stays at version 12.
const SQL: &str = r#"
PRAGMA defer_foreign_keys = ON;

CREATE TEMP TABLE old_ticket AS SELECT * FROM ticket;
DROP TABLE ticket;
-- A ticket booked from a distributor's sale line; a refund line cancels it.
-- `line` is the sale's line id, `refund_line` the refund's: the line's
-- `sales_line` row (primary key: link and line id) names the ticket, and
-- makes a line booked once. A seat has one valid ticket per performance.
-- `sold_at` and `cancelled_at`: microseconds since 1970-01-01 UTC.
CREATE TABLE ticket (
    id                    INTEGER PRIMARY KEY,
    sales_order           INTEGER NOT NULL REFERENCES sales_order (id),
    link                  TEXT NOT NULL CHECK (length(link) BETWEEN 1 AND 64),
    line                  INTEGER NOT NULL CHECK (line >= 1),
    performance           INTEGER NOT NULL REFERENCES performance (id),
    seat                  INTEGER REFERENCES seat (id),
    zone                  INTEGER REFERENCES zone (id),
    seat_category         INTEGER NOT NULL REFERENCES seat_category (id),
    tariff_type           INTEGER NOT NULL REFERENCES tariff_type (id),
    audience_subcategory  INTEGER NOT NULL REFERENCES audience_subcategory (id),
    amount                INTEGER NOT NULL CHECK (amount >= 0 AND amount <= 999999999999999),
    currency              TEXT NOT NULL CHECK (length(currency) = 3),
    vat_code              INTEGER NOT NULL REFERENCES vat_code (id),
    sold_at               INTEGER NOT NULL,
    state                 TEXT NOT NULL CHECK (state IN ('valid', 'cancelled')),
    refund_line           INTEGER CHECK (refund_line IS NULL OR refund_line >= 1),
    cancelled_at          INTEGER,
    rate_version          INTEGER CHECK (rate_version IS NULL OR rate_version >= 1),
    logical_seat_category INTEGER REFERENCES logical_seat_category (id),
    CHECK ((seat IS NULL) <> (zone IS NULL)),
    CHECK ((state = 'cancelled') = (refund_line IS NOT NULL))
) STRICT;
-- Times as version 12 wrote them ('2026-12-01T10:00:00.000001Z'), or
-- whole seconds in any form SQLite reads; anything else is NULL.
CREATE TEMP VIEW old_ticket_times AS
    SELECT id,
           CASE WHEN sold_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'
                THEN unixepoch(substr(sold_at, 1, 19)) * 1000000 + CAST(substr(sold_at, 21, 6) AS INTEGER)
                ELSE unixepoch(sold_at) * 1000000 END AS sold_at,
           CASE WHEN cancelled_at GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'
                THEN unixepoch(substr(cancelled_at, 1, 19)) * 1000000 + CAST(substr(cancelled_at, 21, 6) AS INTEGER)
                ELSE unixepoch(cancelled_at) * 1000000 END AS cancelled_at
    FROM temp.old_ticket;
INSERT INTO ticket (id, sales_order, link, line, performance, seat, zone, seat_category, tariff_type,
        audience_subcategory, amount, currency, vat_code, sold_at, state, refund_line, cancelled_at,
        rate_version, logical_seat_category)
    SELECT o.id, o.sales_order, o.link, o.line, o.performance, o.seat, o.zone, o.seat_category,
           o.tariff_type, o.audience_subcategory, o.amount, o.currency, o.vat_code, n.sold_at,
           o.state, o.refund_line, n.cancelled_at, o.rate_version, o.logical_seat_category
    FROM temp.old_ticket o JOIN temp.old_ticket_times n ON n.id = o.id
    ORDER BY o.id;
DROP VIEW temp.old_ticket_times;
CREATE UNIQUE INDEX ticket_seat_valid ON ticket (performance, seat)
    WHERE state = 'valid' AND seat IS NOT NULL;
CREATE INDEX ticket_order ON ticket (sales_order);
CREATE INDEX ticket_zone_valid ON ticket (performance, zone, link)
    WHERE state = 'valid' AND zone IS NOT NULL;
-- Every ticket came through, or the migration fails whole.
CREATE TEMP TABLE kept (every_ticket_kept INTEGER CHECK (every_ticket_kept = 1));
INSERT INTO temp.kept (every_ticket_kept)
    SELECT (SELECT count(*) FROM ticket) = (SELECT count(*) FROM temp.old_ticket);
DROP TABLE temp.kept;

-- A booked line names its ticket: the one it sold, or the one it
-- cancelled. A rejected line, none.
ALTER TABLE sales_line ADD COLUMN ticket INTEGER REFERENCES ticket (id);
CREATE INDEX temp.old_ticket_line ON old_ticket (link, line);
CREATE INDEX temp.old_ticket_refund ON old_ticket (link, refund_line) WHERE refund_line IS NOT NULL;
UPDATE sales_line SET ticket =
    (SELECT o.id FROM temp.old_ticket o WHERE o.link = sales_line.link AND o.line = sales_line.line)
    WHERE status = 'booked' AND operation = 'SALE';
UPDATE sales_line SET ticket =
    (SELECT o.id FROM temp.old_ticket o
     WHERE o.link = sales_line.link AND o.refund_line = sales_line.line)
    WHERE status = 'booked' AND operation = 'REFUND';
DROP TABLE temp.old_ticket;
"#;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rusqlite::Connection;

    use super::super::schema::migrate_to;
    use super::super::schema::tests::{at_version, rows, user_version};

    /// A manager store as version 12 wrote it: a ticket sold and refunded,
    /// one sold, one booked before the times had microseconds, their
    /// lines (a rejected one too) and pending-account entries.
    fn version_12() -> Connection {
        let conn = at_version(12);
        // The rows a ticket refers to (their own references left out: they
        // are not the migration's).
        conn.execute_batch(
            "INSERT INTO performance VALUES (1, 'P', 'P', 1, '2037-01-01T20:00:00Z', 1, 1, 'in_operation');
             INSERT INTO seat_category VALUES (1, 'C', 'C');
             INSERT INTO seat VALUES (1, 1, '1', 1), (3, 1, '3', 1);
             INSERT INTO zone VALUES (7, 1, 'Z', 'Z', 1, 10);
             INSERT INTO tariff_type VALUES (1, 'T', 'T');
             INSERT INTO audience_subcategory VALUES (1, 'A', 'A');
             INSERT INTO vat_code VALUES (1, 'V', 'V', 0);
             INSERT INTO run (id, kind, link, file, started, ended, status) VALUES
                 (1, 'import-sales', 'L', 'S1.csv', '2026-12-01T10:00:00.000001Z', '2026-12-01T10:00:01.000000Z', 'ok');
             INSERT INTO sales_order (id, link, reference, channel, point_of_sale, payment_method, contact, created)
                 VALUES (1, 'L', 'T-1', 1, 1, 1, 1, 'x'), (2, 'M', 'T-1', 1, 1, 1, 1, 'x');
             INSERT INTO ticket (id, sales_order, link, line, performance, seat, zone, seat_category, tariff_type,
                     audience_subcategory, amount, currency, vat_code, sold_at, state, refund_line, cancelled_at,
                     rate_version) VALUES
                 (1, 1, 'L', 1, 1, 1, NULL, 1, 1, 1, 8500, 'EUR', 1, '2026-11-30T09:15:00.250001Z', 'cancelled', 3,
                  '2026-11-30T09:20:00.000002Z', 2),
                 (2, 1, 'L', 2, 1, NULL, 7, 1, 1, 1, 0, 'EUR', 1, '2026-11-30T09:16:00.000000Z', 'valid', NULL, NULL, NULL),
                 (3, 2, 'M', 1, 1, 3, NULL, 1, 1, 1, 8500, 'EUR', 1, '2026-12-02T10:00:00Z', 'valid', NULL, NULL, 1);
             INSERT INTO sales_line (link, line, operation, status, run, position, code, reason, record, digest) VALUES
                 ('L', 1, 'SALE', 'booked', 1, 2, NULL, NULL, '', 11),
                 ('L', 2, 'SALE', 'booked', 1, 3, NULL, NULL, '', 12),
                 ('L', 3, 'REFUND', 'booked', 1, 4, NULL, NULL, '', 13),
                 ('L', 4, 'SALE', 'rejected', 1, 5, 'price-differs', 'why', '4;SALE;…', 14),
                 ('M', 1, 'SALE', 'booked', 1, 2, NULL, NULL, '', 15);
             INSERT INTO pending_account_entry (id, ticket, amount, currency, run) VALUES
                 (1, 1, 8500, 'EUR', 1), (2, 2, 0, 'EUR', 1), (3, 1, -8500, 'EUR', 1), (4, 3, 8500, 'EUR', 1);",
        )
        .unwrap();
        // As a store opens: foreign keys on, so the migration's rebuild is
        // checked at its commit.
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        conn
    }

    #[test]
    fn tickets_keep_every_column_and_lines_find_their_ticket() {
        let mut conn = version_12();
        migrate_to(&mut conn, Path::new(":memory:"), 13).unwrap();
        let tickets = rows::<String>(
            &conn,
            "SELECT id || ' ' || link || line || ' ' || coalesce(seat, 'z' || zone) || ' ' || amount || currency
                    || ' ' || sold_at || ' ' || state || ' ' || coalesce(refund_line, '-') || ' '
                    || coalesce(cancelled_at, '-') || ' v' || coalesce(rate_version, '-')
             FROM ticket ORDER BY id",
        );
        assert_eq!(
            tickets,
            [
                "1 L1 1 8500EUR 1796030100250001 cancelled 3 1796030400000002 v2",
                "2 L2 z7 0EUR 1796030160000000 valid - - v-",
                "3 M1 3 8500EUR 1796205600000000 valid - - v1",
            ]
        );
        let lines = rows::<String>(
            &conn,
            "SELECT link || line || ' ' || operation || ' ' || status || ' ' || coalesce(ticket, '-')
             FROM sales_line ORDER BY link, line",
        );
        assert_eq!(
            lines,
            [
                "L1 SALE booked 1",
                "L2 SALE booked 2",
                "L3 REFUND booked 1",
                "L4 SALE rejected -",
                "M1 SALE booked 3",
            ]
        );
        // The entries still find their tickets; no index of the old table
        // is left behind.
        let entries = rows::<String>(
            &conn,
            "SELECT e.id || ' ' || t.link || t.line || ' ' || e.amount FROM pending_account_entry e
             JOIN ticket t ON t.id = e.ticket ORDER BY e.id",
        );
        assert_eq!(entries, ["1 L1 8500", "2 L2 0", "3 L1 -8500", "4 M1 8500"]);
        let indexes = rows::<String>(
            &conn,
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'ticket' ORDER BY name",
        );
        assert_eq!(
            indexes,
            ["ticket_order", "ticket_seat_valid", "ticket_zone_valid"]
        );
        let broken = rows::<String>(
            &conn,
            "SELECT DISTINCT \"table\" FROM pragma_foreign_key_check",
        );
        // Only the master data's own references, which this fixture left out.
        assert!(
            broken
                .iter()
                .all(|t| ["performance", "seat", "zone", "sales_order"].contains(&t.as_str())),
            "{broken:?}"
        );
        assert_eq!(user_version(&conn), 13);
    }

    /// A sale time the migration cannot read refuses the whole step: the
    /// store stays at version 12, its tickets untouched.
    #[test]
    fn a_time_the_migration_cannot_read_refuses_the_whole_step() {
        let mut conn = version_12();
        conn.execute("UPDATE ticket SET sold_at = 'yesterday' WHERE id = 2", [])
            .unwrap();
        let err = migrate_to(&mut conn, Path::new("x.db"), 13).unwrap_err();
        let text = format!("{err}: {:?}", std::error::Error::source(&err));
        assert!(text.contains("ticket.sold_at"), "{text}");
        assert_eq!(user_version(&conn), 12, "nothing of the migration was kept");
        let old = rows::<String>(&conn, "SELECT sold_at FROM ticket ORDER BY id");
        assert_eq!(
            old,
            [
                "2026-11-30T09:15:00.250001Z",
                "yesterday",
                "2026-12-02T10:00:00Z"
            ]
        );
    }
}
