//! Migration 14, apart from `schema.rs` for its length: the pending account
//! derived from the tickets instead of stored beside them
//! (`docs/performance.md`, "Store size, fourth step"). Listed in
//! [`super::schema::MIGRATIONS`] like every other step; never edited once
//! released.

use super::schema::Migration;

pub(super) const DERIVED_PENDING_ACCOUNT: Migration = Migration {
    version: 14,
    name: "derived pending account: each booked line's entry read from its ticket, not stored twice",
    sql: SQL,
};

// Every pending-account entry was a copy of what the ticket and the line
// that booked it already hold: a sale adds the ticket's amount, the refund
// that cancels it subtracts it, in the ticket's currency, written by the run
// of that line. The table and its index by ticket (about 35 bytes a line)
// give way to a view of the same name, which ops' own queries keep reading.
//
// The view is made first, then compared with the table's rows, kept aside:
// every entry must be one the view gives and the counts equal, or the step
// fails whole and the store stays at version 13.
const SQL: &str = r#"
CREATE TEMP TABLE old_entry AS SELECT ticket, amount, currency, run FROM pending_account_entry;
DROP INDEX pending_account_entry_ticket;
DROP TABLE pending_account_entry;
-- The pending account of the manager: one entry per booked SALE line (its
-- ticket's amount) and per booked REFUND line (the amount taken back), in
-- the ticket's currency; `run` wrote the line, `position` is the line's
-- number in that run's file. `id` is the ticket's id times two, plus one for
-- the refund. Its balance is the amount of the valid tickets whose lines
-- are there (the reconciliation's `pending-account-vs-tickets` otherwise).
CREATE VIEW pending_account_entry (id, link, line, operation, ticket, sales_order, amount, currency, run, position) AS
    SELECT t.id * 2, t.link, t.line, 'SALE', t.id, t.sales_order, t.amount, t.currency, l.run, l.position
    FROM ticket t JOIN sales_line l ON l.link = t.link AND l.line = t.line
    UNION ALL
    SELECT t.id * 2 + 1, t.link, t.refund_line, 'REFUND', t.id, t.sales_order, -t.amount, t.currency,
           l.run, l.position
    FROM ticket t JOIN sales_line l ON l.link = t.link AND l.line = t.refund_line
    WHERE t.state = 'cancelled';
CREATE TEMP TABLE derived (every_entry_derived INTEGER CHECK (every_entry_derived = 1));
INSERT INTO temp.derived (every_entry_derived)
    SELECT (SELECT count(*) FROM temp.old_entry) = (SELECT count(*) FROM pending_account_entry)
       AND NOT EXISTS (SELECT ticket, amount, currency, run FROM temp.old_entry
                       EXCEPT SELECT ticket, amount, currency, run FROM pending_account_entry)
       AND NOT EXISTS (SELECT ticket, amount, currency, run FROM pending_account_entry
                       EXCEPT SELECT ticket, amount, currency, run FROM temp.old_entry);
DROP TABLE temp.derived;
DROP TABLE temp.old_entry;
"#;

#[cfg(test)]
mod tests {
    use std::path::Path;

    use rusqlite::Connection;

    use super::super::schema::migrate_to;
    use super::super::schema::tests::{at_version, rows, user_version};

    /// A manager store as version 13 wrote it: a ticket sold and refunded
    /// in one file, a free one, one of another link booked by a later run,
    /// a rejected line, and their pending-account entries.
    fn version_13() -> Connection {
        let conn = at_version(13);
        conn.execute_batch(
            "INSERT INTO run (id, kind, link, file, started, ended, status) VALUES
                 (1, 'import-sales', 'L', 'S1.csv', '2026-12-01T10:00:00.000001Z', '2026-12-01T10:00:01.000000Z', 'ok'),
                 (2, 'import-sales', 'M', 'S1.csv', '2026-12-02T10:00:00.000001Z', '2026-12-02T10:00:01.000000Z', 'ok');
             INSERT INTO ticket (id, sales_order, link, line, performance, seat, zone, seat_category, tariff_type,
                     audience_subcategory, amount, currency, vat_code, sold_at, state, refund_line, cancelled_at)
                 VALUES
                 (1, 1, 'L', 1, 1, 1, NULL, 1, 1, 1, 8500, 'EUR', 1, 1, 'cancelled', 3, 2),
                 (2, 1, 'L', 2, 1, NULL, 7, 1, 1, 1, 0, 'EUR', 1, 1, 'valid', NULL, NULL),
                 (3, 2, 'M', 1, 1, 3, NULL, 1, 1, 1, 4250, 'CHF', 1, 3, 'valid', NULL, NULL);
             INSERT INTO sales_line (link, line, operation, status, run, position, code, reason, record, digest, ticket) VALUES
                 ('L', 1, 'SALE', 'booked', 1, 2, NULL, NULL, '', 11, 1),
                 ('L', 2, 'SALE', 'booked', 1, 3, NULL, NULL, '', 12, 2),
                 ('L', 3, 'REFUND', 'booked', 1, 4, NULL, NULL, '', 13, 1),
                 ('L', 4, 'SALE', 'rejected', 1, 5, 'price-differs', 'why', '4;SALE;…', 14, NULL),
                 ('M', 1, 'SALE', 'booked', 2, 2, NULL, NULL, '', 15, 3);
             INSERT INTO pending_account_entry (id, ticket, amount, currency, run) VALUES
                 (1, 1, 8500, 'EUR', 1), (2, 2, 0, 'EUR', 1), (3, 1, -8500, 'EUR', 1), (4, 3, 4250, 'CHF', 2);",
        )
        .unwrap();
        conn
    }

    #[test]
    fn the_view_gives_every_entry_the_table_held() {
        let mut conn = version_13();
        migrate_to(&mut conn, Path::new(":memory:"), 14).unwrap();
        assert_eq!(user_version(&conn), 14);
        let entries = rows::<String>(
            &conn,
            "SELECT id || ' ' || link || line || ' ' || operation || ' t' || ticket || ' o' || sales_order
                    || ' ' || amount || currency || ' r' || run || ' p' || position
             FROM pending_account_entry ORDER BY run, position",
        );
        assert_eq!(
            entries,
            [
                "2 L1 SALE t1 o1 8500EUR r1 p2",
                "4 L2 SALE t2 o1 0EUR r1 p3",
                "3 L3 REFUND t1 o1 -8500EUR r1 p4",
                "6 M1 SALE t3 o2 4250CHF r2 p2",
            ]
        );
        let kinds = rows::<String>(
            &conn,
            "SELECT type || ' ' || name FROM sqlite_schema WHERE name LIKE 'pending_account%' ORDER BY name",
        );
        assert_eq!(kinds, ["view pending_account_entry"]);
    }

    /// An entry the tickets do not explain (here an amount changed by hand)
    /// refuses the whole step: the store stays at version 13, its table
    /// and every entry kept.
    #[test]
    fn an_entry_the_tickets_do_not_explain_refuses_the_whole_step() {
        for broken in [
            "UPDATE pending_account_entry SET amount = 8000 WHERE id = 1",
            "DELETE FROM pending_account_entry WHERE id = 3",
            "INSERT INTO pending_account_entry (ticket, amount, currency, run) VALUES (2, 0, 'EUR', 1)",
        ] {
            let mut conn = version_13();
            conn.execute(broken, []).unwrap();
            let before = rows::<String>(
                &conn,
                "SELECT id || ' ' || amount FROM pending_account_entry ORDER BY id",
            );
            let err = migrate_to(&mut conn, Path::new("x.db"), 14).unwrap_err();
            let text = format!("{err}: {:?}", std::error::Error::source(&err));
            assert!(text.contains("every_entry_derived"), "{broken}: {text}");
            assert_eq!(user_version(&conn), 13, "{broken}");
            let after = rows::<String>(
                &conn,
                "SELECT id || ' ' || amount FROM pending_account_entry ORDER BY id",
            );
            assert_eq!(after, before, "{broken}");
        }
    }
}
