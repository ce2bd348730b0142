//! The schema, as an ordered list of migrations, and the code that applies them.
//!
//! `PRAGMA user_version` holds the number of the last migration applied. Each
//! migration runs in its own `BEGIN IMMEDIATE` transaction together with the
//! version bump, so a crash leaves the database at one version or the next,
//! never between. Later work appends to [`MIGRATIONS`]; a migration already
//! released is never edited.
//!
//! One schema serves both roles; each institution fills its part. Technical ids
//! are the objects' SecuTix ids (`id INTEGER PRIMARY KEY`); codes (1..8
//! characters) and names (1..60) are validated in Rust by `crate::ident` and
//! bounded again here by CHECK constraints. Tables are STRICT, booleans are
//! INTEGER 0/1, money is INTEGER minor units, instants are RFC 3339 text
//! (or INTEGER microseconds since 1970 where a sales file writes one per
//! line: tickets and orders, migrations 13 and 15).
//!
//! A new table written once per record of a big file writes a CHECK's list
//! of three values or more as comparisons joined by OR, not `IN (…)`:
//! SQLite fills a temporary index with an IN list for every row it checks
//! (migration 16 did so for `mapping`).

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use super::{APPLICATION_ID, StoreError};

/// One step of the schema.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// 1, 2, 3…: the `user_version` after this step.
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order. Append only.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial schema: master data, setup, mapping, journal, runs",
        sql: V1,
    },
    Migration {
        version: 2,
        name: "seats and money: allotments, holds, orders, tickets, pending account, contingents and sales at the distributor",
        sql: V2,
    },
    Migration {
        version: 3,
        name: "returned places: what a link gave back to the manager once acknowledged",
        sql: V3,
    },
    Migration {
        version: 4,
        name: "acknowledgements sent: a sales file only for news",
        sql: V4,
    },
    Migration {
        version: 5,
        name: "outbound manifests: an export is finished from its recorded bytes after a crash",
        sql: V5,
    },
    Migration {
        version: 6,
        name: "performance state changes: when a performance was cancelled or closed",
        sql: V6,
    },
    Migration {
        version: 7,
        name: "disputed lines: a rejected sales line accepted or dismissed by the manager",
        sql: V7,
    },
    Migration {
        version: 8,
        name: "reintegration speed: a digest instead of the text of each booked sales line, and the valid tickets of a zone indexed",
        sql: SALES_DIGEST_AND_ZONE_INDEX,
    },
    Migration {
        version: 9,
        name: "resolutions told: the contingent file that carries each resolution to the distributor, and the resolutions the distributor applied",
        sql: V9,
    },
    Migration {
        version: 10,
        name: "catalogue changes keep selling: validation per object, pending differences, versioned prices",
        sql: super::schema_prices::PER_OBJECT_VALIDATION_AND_PRICE_VERSIONS,
    },
    super::schema_logical::LOGICAL_SEATS,
    super::schema_compact::COMPACT_SALES_ROWS,
    super::schema_tickets::COMPACT_TICKETS,
    super::schema_ledger::DERIVED_PENDING_ACCOUNT,
    super::schema_orders::INTEGER_ORDER_TIMES,
    super::schema_mapping::MAPPING_CHECKS_AS_COMPARISONS,
    super::schema_mapping::PENDING_MAPPINGS_INDEXED,
    super::schema_counts::SALES_LINES_COUNTED,
    super::schema_history::HISTORY_COUNTED,
];

/// The schema version this build writes.
pub fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// Brings the database to [`latest`], one transaction per migration.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    migrate_to(conn, path, latest())
}

/// Brings the database to version `target` (at most [`latest`]); a test
/// of one migration stops after it.
pub(super) fn migrate_to(
    conn: &mut Connection,
    path: &Path,
    target: i64,
) -> Result<(), StoreError> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > latest() {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: current,
            known: latest(),
        });
    }
    let started = std::time::Instant::now();
    let mut reached = current;
    for m in MIGRATIONS
        .iter()
        .filter(|m| m.version > current && m.version <= target)
    {
        let fail = |source| StoreError::Migration {
            path: path.to_path_buf(),
            version: m.version,
            previous: m.version - 1,
            name: m.name,
            source,
        };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        // Another process may have migrated between our read and our lock.
        let now_at: i64 = tx
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(fail)?;
        if now_at >= m.version {
            continue;
        }
        tx.execute_batch(m.sql).map_err(fail)?;
        tx.pragma_update(None, "user_version", m.version)
            .map_err(fail)?;
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(fail)?;
        tx.commit().map_err(fail)?;
        reached = m.version;
    }
    // A new store's creation is said by its caller; an upgrade of one in
    // use is said here, with its time: on a store of a long history it can
    // take seconds, which the first start after an update would otherwise
    // spend in silence.
    if current > 0 && reached > current {
        tracing::info!(
            store = %path.display(),
            from = current,
            to = reached,
            ms = started.elapsed().as_millis(),
            "store upgraded"
        );
    }
    Ok(())
}

const V9: &str = r#"
-- Manager: the CONTINGENT sequence that told the distributor of this
-- resolution, set by the export in the transaction that binds the sequence
-- (NULL: not told yet, the next contingent file carries it).
ALTER TABLE sales_line_resolution ADD COLUMN told_in INTEGER CHECK (told_in IS NULL OR told_in >= 1);
CREATE INDEX sales_line_resolution_untold ON sales_line_resolution (link, told_in);
-- Distributor: the manager's decision on one of its sale lines, from the
-- RESOLUTION line of a CONTINGENT file, applied with the rest of the file.
-- `decided`: the manager's time; `file`: the payload that carried it.
CREATE TABLE sale_line_resolution (
    line     INTEGER PRIMARY KEY REFERENCES sale_line (id),
    link     TEXT NOT NULL CHECK (length(link) BETWEEN 1 AND 64),
    decision TEXT NOT NULL CHECK (decision IN ('accepted', 'dismissed')),
    reason   TEXT NOT NULL CHECK (length(reason) BETWEEN 1 AND 1024),
    decided  TEXT NOT NULL CHECK (length(decided) = 20),
    file     TEXT NOT NULL CHECK (length(file) BETWEEN 1 AND 255),
    applied  TEXT NOT NULL
) STRICT;
"#;

const V7: &str = r#"
-- A rejected sales line the manager's ops resolved (stxd sales resolve):
-- 'accepted' (booked through the reintegration with the rules named in
-- `overridden`, comma-separated, set aside) or 'dismissed' (closed, never
-- booked). Who, when and why, and the run that did it. `operation`,
-- `amount` and `currency` are the line's: the reconciliation sets a
-- dismissed line's amount aside (a sale the manager will never book, or a
-- refund it will never apply). A dismissed line keeps its sales_line row
-- ('rejected', its code and reason): this row is what closes it.
CREATE TABLE sales_line_resolution (
    link       TEXT NOT NULL CHECK (length(link) BETWEEN 1 AND 64),
    line       INTEGER NOT NULL CHECK (line >= 1),
    decision   TEXT NOT NULL CHECK (decision IN ('accepted', 'dismissed')),
    code       TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 64),
    overridden TEXT CHECK (overridden IS NULL OR length(overridden) BETWEEN 1 AND 400),
    reason     TEXT NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    by_user    TEXT NOT NULL CHECK (length(by_user) BETWEEN 1 AND 64),
    at         TEXT NOT NULL CHECK (length(at) = 27),
    run        INTEGER NOT NULL REFERENCES run (id),
    operation  TEXT NOT NULL CHECK (operation IN ('SALE', 'REFUND')),
    amount     INTEGER NOT NULL CHECK (amount >= 0),
    currency   TEXT NOT NULL CHECK (length(currency) = 3),
    PRIMARY KEY (link, line),
    FOREIGN KEY (link, line) REFERENCES sales_line (link, line),
    CHECK ((decision = 'accepted') = (overridden IS NOT NULL))
) STRICT, WITHOUT ROWID;
"#;

// Numbered by its place in MIGRATIONS only: the SQL names no version.

const SALES_DIGEST_AND_ZONE_INDEX: &str = r#"
-- A booked sales line keeps the digest of its canonical text (the first 8
-- bytes of its SHA-256, big-endian, as a signed integer) instead of the text:
-- enough to tell a repeated line from a reused line id. A rejected line keeps
-- its text too, for `stxd sales rejects`. Lines booked before this migration
-- keep their text and no digest; both are compared.
ALTER TABLE sales_line ADD COLUMN digest INTEGER;
-- The valid tickets of a standing zone, counted once per file by the
-- reintegration (the zone's quantity rule): without it each count read
-- every ticket of the store.
CREATE INDEX ticket_zone_valid ON ticket (performance, zone, link)
    WHERE state = 'valid' AND zone IS NOT NULL;
"#;

const V6: &str = r#"
-- When each performance last changed state (cancelled, closed, back in
-- operation…), UTC, RFC 3339 to the second. Kept by the trigger below on
-- every path that changes a state (stxd performance cancel|close, a master
-- data load, a catalogue import), so no writer can forget it. The manager's
-- reintegration rejects a sale made after its performance was cancelled or
-- closed; a performance that never changed state since this table exists
-- has no row.
CREATE TABLE performance_state_change (
    performance INTEGER PRIMARY KEY REFERENCES performance (id),
    state       TEXT NOT NULL CHECK (state IN ('planned', 'in_operation', 'closed', 'cancelled')),
    changed     TEXT NOT NULL CHECK (length(changed) = 20)
) STRICT;
CREATE TRIGGER performance_state_changed AFTER UPDATE OF state ON performance
WHEN OLD.state IS NOT NEW.state
BEGIN
    INSERT OR REPLACE INTO performance_state_change (performance, state, changed)
    VALUES (NEW.id, NEW.state, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'));
END;
"#;

const V5: &str = r#"
-- The exact manifest of each outbound file, committed with its sequence and
-- its journal row ('prepared') before the pair gets its final names: after a
-- crash, a prepared export is placed again from these bytes and its staged
-- payload, never re-created, so a sequence carries one content forever.
CREATE TABLE outbound_manifest (
    file     INTEGER PRIMARY KEY REFERENCES file_journal (id),
    manifest TEXT NOT NULL CHECK (length(manifest) BETWEEN 1 AND 4096)
) STRICT;
"#;

const V4: &str = r#"
-- The contingent version the distributor last acknowledged in a sales file:
-- a scheduled sales export with no new line writes a file only when a
-- snapshot applied since still needs its acknowledgement.
ALTER TABLE contingent_snapshot ADD COLUMN ack_sent INTEGER CHECK (ack_sent IS NULL OR ack_sent >= 1);
"#;

const V3: &str = r#"
-- Places a link gave back to the manager, recorded when the distributor
-- acknowledges the release that took them (the allotment rows are gone by
-- then). A held seat sold before the acknowledgement is not returned: its
-- ticket holds it. Read by the reconciliation ("returned").
CREATE TABLE allotment_return (
    id          INTEGER PRIMARY KEY,
    link        TEXT NOT NULL CHECK (length(link) BETWEEN 1 AND 64),
    performance INTEGER NOT NULL REFERENCES performance (id),
    seat        INTEGER REFERENCES seat (id),
    zone        INTEGER REFERENCES zone (id),
    quantity    INTEGER NOT NULL CHECK (quantity >= 1),
    version     INTEGER NOT NULL CHECK (version >= 1),
    returned    TEXT NOT NULL,
    CHECK ((seat IS NULL) <> (zone IS NULL)),
    CHECK (seat IS NULL OR quantity = 1)
) STRICT;
CREATE INDEX allotment_return_link ON allotment_return (link, performance);
"#;

const V2: &str = r#"
-- ================================================================= manager
-- The allotment of one performance to one link's distributor: a versioned
-- snapshot. `version` grows at every change of its seats or zones;
-- `exported` is the last version written to a CONTINGENT file; `acknowledged`
-- the last version the distributor says it applied (ACK lines of its sales
-- files).
CREATE TABLE allotment (
    link         TEXT NOT NULL CHECK (length(link) BETWEEN 1 AND 64),
    performance  INTEGER NOT NULL REFERENCES performance (id),
    version      INTEGER NOT NULL DEFAULT 0 CHECK (version >= 0),
    exported     INTEGER NOT NULL DEFAULT 0 CHECK (exported >= 0 AND exported <= version),
    acknowledged INTEGER NOT NULL DEFAULT 0 CHECK (acknowledged >= 0),
    PRIMARY KEY (link, performance)
) STRICT, WITHOUT ROWID;

-- A numbered seat of a performance set aside for a link. One holder per seat
-- and performance (the primary key). 'allotted': the distributor may sell it.
-- 'held': taken back by version `released_in`, but not resellable by the
-- manager nor re-allottable until the distributor acknowledges that version
-- (a sale it made before is still accepted).
CREATE TABLE allotment_seat (
    performance INTEGER NOT NULL REFERENCES performance (id),
    seat        INTEGER NOT NULL REFERENCES seat (id),
    link        TEXT NOT NULL CHECK (length(link) BETWEEN 1 AND 64),
    state       TEXT NOT NULL CHECK (state IN ('allotted', 'held')),
    released_in INTEGER CHECK (released_in IS NULL OR released_in >= 1),
    PRIMARY KEY (performance, seat),
    CHECK ((state = 'held') = (released_in IS NOT NULL))
) STRICT, WITHOUT ROWID;
CREATE INDEX allotment_seat_link ON allotment_seat (link, performance);

-- Places of an unnumbered zone set aside for a link: `quantity` allotted now;
-- `held` taken back and not yet acknowledged (freed when version
-- `held_until` is acknowledged).
CREATE TABLE allotment_zone (
    performance INTEGER NOT NULL REFERENCES performance (id),
    zone        INTEGER NOT NULL REFERENCES zone (id),
    link        TEXT NOT NULL CHECK (length(link) BETWEEN 1 AND 64),
    quantity    INTEGER NOT NULL CHECK (quantity >= 0),
    held        INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0),
    held_until  INTEGER CHECK (held_until IS NULL OR held_until >= 1),
    PRIMARY KEY (performance, zone, link),
    CHECK ((held > 0) = (held_until IS NOT NULL))
) STRICT, WITHOUT ROWID;

-- One order at the manager per distributor order, on the link's stx_file
-- channel and point of sale, paid with the pending account, booked to the
-- authorised contact.
CREATE TABLE sales_order (
    id             INTEGER PRIMARY KEY,
    link           TEXT NOT NULL CHECK (length(link) BETWEEN 1 AND 64),
    reference      TEXT NOT NULL CHECK (length(reference) BETWEEN 1 AND 32),
    channel        INTEGER NOT NULL REFERENCES sales_channel (id),
    point_of_sale  INTEGER NOT NULL REFERENCES point_of_sale (id),
    payment_method INTEGER NOT NULL REFERENCES payment_method (id),
    contact        INTEGER NOT NULL REFERENCES contact (id),
    created        TEXT NOT NULL,
    UNIQUE (link, reference)
) STRICT;

-- A ticket booked from a distributor's sale line; a refund line cancels it.
-- `line` is the distributor's line id: a line is booked once (UNIQUE), and a
-- seat has one valid ticket per performance.
CREATE TABLE ticket (
    id                   INTEGER PRIMARY KEY,
    sales_order          INTEGER NOT NULL REFERENCES sales_order (id),
    link                 TEXT NOT NULL CHECK (length(link) BETWEEN 1 AND 64),
    line                 INTEGER NOT NULL CHECK (line >= 1),
    performance          INTEGER NOT NULL REFERENCES performance (id),
    seat                 INTEGER REFERENCES seat (id),
    zone                 INTEGER REFERENCES zone (id),
    seat_category        INTEGER NOT NULL REFERENCES seat_category (id),
    tariff_type          INTEGER NOT NULL REFERENCES tariff_type (id),
    audience_subcategory INTEGER NOT NULL REFERENCES audience_subcategory (id),
    amount               INTEGER NOT NULL CHECK (amount >= 0 AND amount <= 999999999999999),
    currency             TEXT NOT NULL CHECK (length(currency) = 3),
    vat_code             INTEGER NOT NULL REFERENCES vat_code (id),
    sold_at              TEXT NOT NULL,
    state                TEXT NOT NULL CHECK (state IN ('valid', 'cancelled')),
    refund_line          INTEGER CHECK (refund_line IS NULL OR refund_line >= 1),
    cancelled_at         TEXT,
    UNIQUE (link, line),
    CHECK ((seat IS NULL) <> (zone IS NULL)),
    CHECK ((state = 'cancelled') = (refund_line IS NOT NULL))
) STRICT;
CREATE UNIQUE INDEX ticket_seat_valid ON ticket (performance, seat)
    WHERE state = 'valid' AND seat IS NOT NULL;
CREATE UNIQUE INDEX ticket_refund_line ON ticket (link, refund_line)
    WHERE refund_line IS NOT NULL;
CREATE INDEX ticket_order ON ticket (sales_order);

-- Every sale or refund line the manager received, by the distributor's line
-- id: 'booked' exactly once, or 'rejected' with its reason (a rejected line
-- may come again, fixed, and then be booked).
CREATE TABLE sales_line (
    link      TEXT NOT NULL CHECK (length(link) BETWEEN 1 AND 64),
    line      INTEGER NOT NULL CHECK (line >= 1),
    operation TEXT NOT NULL CHECK (operation IN ('SALE', 'REFUND')),
    status    TEXT NOT NULL CHECK (status IN ('booked', 'rejected')),
    file      TEXT NOT NULL,
    position  TEXT NOT NULL,
    code      TEXT,
    reason    TEXT,
    record    TEXT NOT NULL,
    updated   TEXT NOT NULL,
    PRIMARY KEY (link, line),
    CHECK ((status = 'rejected') = (code IS NOT NULL))
) STRICT, WITHOUT ROWID;

-- Movements of the pending account ("compte d'attente"): + the price of a
-- booked sale, − when its refund cancels it. Settled outside stxd.
CREATE TABLE pending_account_entry (
    id       INTEGER PRIMARY KEY,
    link     TEXT NOT NULL CHECK (length(link) BETWEEN 1 AND 64),
    ticket   INTEGER NOT NULL REFERENCES ticket (id),
    amount   INTEGER NOT NULL,
    currency TEXT NOT NULL CHECK (length(currency) = 3),
    created  TEXT NOT NULL
) STRICT;
CREATE INDEX pending_account_entry_link ON pending_account_entry (link);

-- ============================================================= distributor
-- The contingent snapshot applied per (local) performance, and its places.
CREATE TABLE contingent_snapshot (
    performance INTEGER PRIMARY KEY REFERENCES performance (id),
    link        TEXT NOT NULL CHECK (length(link) BETWEEN 1 AND 64),
    version     INTEGER NOT NULL CHECK (version >= 1),
    applied     TEXT NOT NULL
) STRICT;

CREATE TABLE contingent_seat (
    performance INTEGER NOT NULL REFERENCES performance (id),
    seat        INTEGER NOT NULL REFERENCES seat (id),
    PRIMARY KEY (performance, seat)
) STRICT, WITHOUT ROWID;

CREATE TABLE contingent_zone (
    performance INTEGER NOT NULL REFERENCES performance (id),
    zone        INTEGER NOT NULL REFERENCES zone (id),
    quantity    INTEGER NOT NULL CHECK (quantity >= 0),
    PRIMARY KEY (performance, zone)
) STRICT, WITHOUT ROWID;

-- The distributor's sales and refunds (local ids), one row per line; `id` is
-- the line id sent to the manager. `active`: a sale not refunded (a seat has
-- one active sale per performance). `exported_in`: the SALES file sequence
-- that carried the line, NULL until exported.
CREATE TABLE sale_line (
    id                   INTEGER PRIMARY KEY,
    link                 TEXT NOT NULL CHECK (length(link) BETWEEN 1 AND 64),
    operation            TEXT NOT NULL CHECK (operation IN ('SALE', 'REFUND')),
    time                 TEXT NOT NULL,
    order_ref            TEXT NOT NULL CHECK (length(order_ref) BETWEEN 1 AND 32),
    refund_of            INTEGER REFERENCES sale_line (id),
    product              INTEGER NOT NULL REFERENCES product (id),
    performance          INTEGER NOT NULL REFERENCES performance (id),
    seat                 INTEGER REFERENCES seat (id),
    zone                 INTEGER REFERENCES zone (id),
    seat_category        INTEGER NOT NULL REFERENCES seat_category (id),
    tariff_type          INTEGER NOT NULL REFERENCES tariff_type (id),
    audience_subcategory INTEGER NOT NULL REFERENCES audience_subcategory (id),
    amount               INTEGER NOT NULL CHECK (amount >= 0 AND amount <= 999999999999999),
    currency             TEXT NOT NULL CHECK (length(currency) = 3),
    vat_code             INTEGER NOT NULL REFERENCES vat_code (id),
    active               INTEGER NOT NULL CHECK (active IN (0, 1)),
    exported_in          INTEGER CHECK (exported_in IS NULL OR exported_in >= 1),
    CHECK ((seat IS NULL) <> (zone IS NULL)),
    CHECK ((operation = 'REFUND') = (refund_of IS NOT NULL)),
    CHECK (operation = 'SALE' OR active = 0)
) STRICT;
CREATE UNIQUE INDEX sale_line_seat_active ON sale_line (performance, seat)
    WHERE active = 1 AND seat IS NOT NULL;
CREATE UNIQUE INDEX sale_line_refund ON sale_line (refund_of) WHERE refund_of IS NOT NULL;
CREATE INDEX sale_line_unexported ON sale_line (link, exported_in);
"#;

const V1: &str = r#"
-- The institution this database belongs to: exactly one row.
CREATE TABLE institution (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    code    TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 8),
    role    TEXT NOT NULL CHECK (role IN ('manager', 'distributor')),
    created TEXT NOT NULL
) STRICT;

-- ---------------------------------------------------------------- catalogue
CREATE TABLE season (
    id         INTEGER PRIMARY KEY,
    code       TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 8),
    name       TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
    start_date TEXT NOT NULL,
    end_date   TEXT NOT NULL,
    CHECK (start_date <= end_date)
) STRICT;

CREATE TABLE vat_code (
    id      INTEGER PRIMARY KEY,
    code    TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 8),
    name    TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
    rate_bp INTEGER NOT NULL CHECK (rate_bp BETWEEN 0 AND 10000)
) STRICT;

CREATE TABLE tariff_type (
    id   INTEGER PRIMARY KEY,
    code TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 8),
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 60)
) STRICT;

CREATE TABLE audience_subcategory (
    id   INTEGER PRIMARY KEY,
    code TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 8),
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 60)
) STRICT;

-- Physical seat categories only (logical ones are logical_seat_category).
CREATE TABLE seat_category (
    id   INTEGER PRIMARY KEY,
    code TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 8),
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 60)
) STRICT;

-- ---------------------------------------------------------------- seat plan
CREATE TABLE venue (
    id   INTEGER PRIMARY KEY,
    code TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 8),
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 60)
) STRICT;

CREATE TABLE configuration (
    id    INTEGER PRIMARY KEY,
    venue INTEGER NOT NULL REFERENCES venue (id),
    code  TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 8),
    name  TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 60)
) STRICT;
CREATE INDEX configuration_venue ON configuration (venue);

-- An unnumbered area sold by quantity.
CREATE TABLE zone (
    id            INTEGER PRIMARY KEY,
    configuration INTEGER NOT NULL REFERENCES configuration (id),
    code          TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 8),
    name          TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
    seat_category INTEGER NOT NULL REFERENCES seat_category (id),
    capacity      INTEGER NOT NULL CHECK (capacity >= 0)
) STRICT;
CREATE INDEX zone_configuration ON zone (configuration);
CREATE INDEX zone_seat_category ON zone (seat_category);

CREATE TABLE block (
    id            INTEGER PRIMARY KEY,
    configuration INTEGER NOT NULL REFERENCES configuration (id),
    code          TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 8),
    name          TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 60)
) STRICT;
CREATE INDEX block_configuration ON block (configuration);

CREATE TABLE seat_row (
    id    INTEGER PRIMARY KEY,
    block INTEGER NOT NULL REFERENCES block (id),
    code  TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 8),
    UNIQUE (block, code)
) STRICT;

CREATE TABLE seat (
    id            INTEGER PRIMARY KEY,
    row           INTEGER NOT NULL REFERENCES seat_row (id),
    number        TEXT NOT NULL CHECK (length(number) BETWEEN 1 AND 8),
    seat_category INTEGER NOT NULL REFERENCES seat_category (id),
    UNIQUE (row, number)
) STRICT;
CREATE INDEX seat_seat_category ON seat (seat_category);

-- ------------------------------------------------------- catalogue (cont.)
CREATE TABLE activity (
    id       INTEGER PRIMARY KEY,
    code     TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 8),
    name     TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
    season   INTEGER NOT NULL REFERENCES season (id),
    vat_code INTEGER NOT NULL REFERENCES vat_code (id)
) STRICT;
CREATE INDEX activity_season ON activity (season);
CREATE INDEX activity_vat_code ON activity (vat_code);

-- state: 'active' at the manager; 'to_validate' | 'validated' | 'suspended' at
-- the distributor (the same vocabulary for rate_table and product).
CREATE TABLE logical_configuration (
    id            INTEGER PRIMARY KEY,
    code          TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 8),
    name          TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
    configuration INTEGER NOT NULL REFERENCES configuration (id),
    state         TEXT NOT NULL CHECK (state IN ('active', 'to_validate', 'validated', 'suspended'))
) STRICT;
CREATE INDEX logical_configuration_configuration ON logical_configuration (configuration);

CREATE TABLE logical_seat_category (
    id                    INTEGER PRIMARY KEY,
    logical_configuration INTEGER NOT NULL REFERENCES logical_configuration (id),
    code                  TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 8),
    name                  TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
    seat_category         INTEGER NOT NULL REFERENCES seat_category (id)
) STRICT;
CREATE INDEX logical_seat_category_lc ON logical_seat_category (logical_configuration);
CREATE INDEX logical_seat_category_sc ON logical_seat_category (seat_category);

CREATE TABLE performance (
    id                    INTEGER PRIMARY KEY,
    code                  TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 8),
    name                  TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
    activity              INTEGER NOT NULL REFERENCES activity (id),
    start                 TEXT NOT NULL,
    configuration         INTEGER NOT NULL REFERENCES configuration (id),
    logical_configuration INTEGER NOT NULL REFERENCES logical_configuration (id),
    state                 TEXT NOT NULL CHECK (state IN ('planned', 'in_operation', 'closed', 'cancelled'))
) STRICT;
CREATE INDEX performance_activity ON performance (activity);
CREATE INDEX performance_configuration ON performance (configuration);
CREATE INDEX performance_logical_configuration ON performance (logical_configuration);

CREATE TABLE rate_table (
    id       INTEGER PRIMARY KEY,
    code     TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 8),
    name     TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
    currency TEXT NOT NULL CHECK (length(currency) = 3 AND currency NOT GLOB '*[^A-Z]*'),
    state    TEXT NOT NULL CHECK (state IN ('active', 'to_validate', 'validated', 'suspended'))
) STRICT;

CREATE TABLE price (
    rate_table           INTEGER NOT NULL REFERENCES rate_table (id),
    seat_category        INTEGER NOT NULL REFERENCES seat_category (id),
    tariff_type          INTEGER NOT NULL REFERENCES tariff_type (id),
    audience_subcategory INTEGER NOT NULL REFERENCES audience_subcategory (id),
    amount               INTEGER NOT NULL CHECK (amount >= 0 AND amount <= 999999999999999),
    PRIMARY KEY (rate_table, seat_category, tariff_type, audience_subcategory)
) STRICT, WITHOUT ROWID;
CREATE INDEX price_seat_category ON price (seat_category);
CREATE INDEX price_tariff_type ON price (tariff_type);
CREATE INDEX price_audience_subcategory ON price (audience_subcategory);

CREATE TABLE product (
    id         INTEGER PRIMARY KEY,
    code       TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 8),
    name       TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
    activity   INTEGER NOT NULL REFERENCES activity (id),
    rate_table INTEGER NOT NULL REFERENCES rate_table (id),
    state      TEXT NOT NULL CHECK (state IN ('active', 'to_validate', 'validated', 'suspended'))
) STRICT;
CREATE INDEX product_activity ON product (activity);
CREATE INDEX product_rate_table ON product (rate_table);

CREATE TABLE product_performance (
    product     INTEGER NOT NULL REFERENCES product (id),
    performance INTEGER NOT NULL REFERENCES performance (id),
    PRIMARY KEY (product, performance)
) STRICT, WITHOUT ROWID;
CREATE INDEX product_performance_performance ON product_performance (performance);

-- ------------------------------------------------------------ manager setup
-- kind: 'stx_file' (the Fichier SecuTix channel) | 'box_office' | 'internet'
--       | 'call_centre' | 'other'.
CREATE TABLE sales_channel (
    id           INTEGER PRIMARY KEY,
    code         TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 8),
    name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
    kind         TEXT NOT NULL CHECK (kind IN ('stx_file', 'box_office', 'internet', 'call_centre', 'other')),
    in_operation INTEGER NOT NULL CHECK (in_operation IN (0, 1))
) STRICT;

CREATE TABLE point_of_sale (
    id           INTEGER PRIMARY KEY,
    code         TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 8),
    name         TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
    channel      INTEGER NOT NULL REFERENCES sales_channel (id),
    in_operation INTEGER NOT NULL CHECK (in_operation IN (0, 1))
) STRICT;
CREATE INDEX point_of_sale_channel ON point_of_sale (channel);

CREATE TABLE payment_method (
    id                     INTEGER PRIMARY KEY,
    code                   TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 8),
    name                   TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
    allows_pending_account INTEGER NOT NULL CHECK (allows_pending_account IN (0, 1))
) STRICT;

CREATE TABLE point_of_sale_payment_method (
    point_of_sale  INTEGER NOT NULL REFERENCES point_of_sale (id),
    payment_method INTEGER NOT NULL REFERENCES payment_method (id),
    PRIMARY KEY (point_of_sale, payment_method)
) STRICT, WITHOUT ROWID;
CREATE INDEX pos_payment_method_pm ON point_of_sale_payment_method (payment_method);

CREATE TABLE contact (
    id                         INTEGER PRIMARY KEY,
    code                       TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 8),
    name                       TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
    pending_account_authorised INTEGER NOT NULL CHECK (pending_account_authorised IN (0, 1))
) STRICT;

-- The manager's endpoint for one distributor. login = OPERATOR@DISTRIBUTOR.
-- The password is the link's shared secret: it lives in the configuration's
-- secret file, never in the store.
CREATE TABLE external_sales_interface (
    id            INTEGER PRIMARY KEY,
    login         TEXT NOT NULL UNIQUE CHECK (length(login) BETWEEN 3 AND 64),
    url           TEXT NOT NULL CHECK (length(url) BETWEEN 1 AND 200),
    channel       INTEGER NOT NULL REFERENCES sales_channel (id),
    distributor   TEXT NOT NULL CHECK (length(distributor) BETWEEN 1 AND 8),
    contact       INTEGER REFERENCES contact (id),
    point_of_sale INTEGER REFERENCES point_of_sale (id)
) STRICT;
CREATE INDEX external_sales_interface_channel ON external_sales_interface (channel);

CREATE TABLE contingent (
    id      INTEGER PRIMARY KEY,
    code    TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 8),
    name    TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
    channel INTEGER NOT NULL REFERENCES sales_channel (id)
) STRICT;
CREATE INDEX contingent_channel ON contingent (channel);

CREATE TABLE activity_profile (
    id      INTEGER PRIMARY KEY,
    code    TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 8),
    name    TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
    channel INTEGER NOT NULL REFERENCES sales_channel (id)
) STRICT;
CREATE INDEX activity_profile_channel ON activity_profile (channel);

CREATE TABLE activity_profile_activity (
    activity_profile INTEGER NOT NULL REFERENCES activity_profile (id),
    activity         INTEGER NOT NULL REFERENCES activity (id),
    PRIMARY KEY (activity_profile, activity)
) STRICT, WITHOUT ROWID;
CREATE INDEX activity_profile_activity_a ON activity_profile_activity (activity);

CREATE TABLE product_profile (
    id      INTEGER PRIMARY KEY,
    code    TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 8),
    name    TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
    channel INTEGER NOT NULL REFERENCES sales_channel (id)
) STRICT;
CREATE INDEX product_profile_channel ON product_profile (channel);

CREATE TABLE product_profile_product (
    product_profile INTEGER NOT NULL REFERENCES product_profile (id),
    product         INTEGER NOT NULL REFERENCES product (id),
    PRIMARY KEY (product_profile, product)
) STRICT, WITHOUT ROWID;
CREATE INDEX product_profile_product_p ON product_profile_product (product);

-- No row for a profile = every audience subcategory allowed.
CREATE TABLE product_profile_audience (
    product_profile      INTEGER NOT NULL REFERENCES product_profile (id),
    audience_subcategory INTEGER NOT NULL REFERENCES audience_subcategory (id),
    PRIMARY KEY (product_profile, audience_subcategory)
) STRICT, WITHOUT ROWID;
CREATE INDEX product_profile_audience_a ON product_profile_audience (audience_subcategory);

-- -------------------------------------------------------- distributor setup
CREATE TABLE external_manager (
    id   INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE CHECK (length(code) BETWEEN 1 AND 8),
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 60),
    url  TEXT CHECK (url IS NULL OR length(url) BETWEEN 1 AND 200)
) STRICT;

-- The password is the link's shared secret: configuration, never the store.
CREATE TABLE virtual_operator (
    id               INTEGER PRIMARY KEY,
    external_manager INTEGER NOT NULL REFERENCES external_manager (id),
    login            TEXT NOT NULL UNIQUE CHECK (length(login) BETWEEN 1 AND 64)
) STRICT;
CREATE INDEX virtual_operator_em ON virtual_operator (external_manager);

CREATE TABLE sales_profile (
    id   INTEGER PRIMARY KEY,
    code TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 8),
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 60)
) STRICT;

CREATE TABLE sales_profile_product (
    sales_profile INTEGER NOT NULL REFERENCES sales_profile (id),
    product       INTEGER NOT NULL REFERENCES product (id),
    PRIMARY KEY (sales_profile, product)
) STRICT, WITHOUT ROWID;
CREATE INDEX sales_profile_product_p ON sales_profile_product (product);

-- Manager object ↔ distributor object, per external manager and kind. A row
-- is created 'pending' the first time a file names a manager object without a
-- mapping; ops fill it (local_id) or ignore it. Kinds: see
-- crate::store::mapping::MappingKind.
CREATE TABLE mapping (
    id            INTEGER PRIMARY KEY,
    manager       TEXT NOT NULL CHECK (length(manager) BETWEEN 1 AND 8),
    kind          TEXT NOT NULL CHECK (kind IN (
                      'season', 'activity', 'performance', 'vat_code', 'tariff_type',
                      'audience_subcategory', 'seat_category', 'venue', 'configuration',
                      'zone', 'block', 'row', 'seat', 'logical_configuration',
                      'rate_table', 'product')),
    manager_id    INTEGER NOT NULL CHECK (manager_id > 0),
    manager_code  TEXT NOT NULL CHECK (length(manager_code) BETWEEN 1 AND 8),
    manager_label TEXT NOT NULL CHECK (length(manager_label) BETWEEN 1 AND 200),
    local_id      INTEGER CHECK (local_id IS NULL OR local_id > 0),
    status        TEXT NOT NULL CHECK (status IN ('pending', 'filled', 'ignored')),
    first_seen    TEXT NOT NULL,
    last_seen     TEXT NOT NULL,
    first_file    TEXT,
    UNIQUE (manager, kind, manager_id),
    CHECK ((status = 'filled') = (local_id IS NOT NULL))
) STRICT;
CREATE INDEX mapping_status ON mapping (status);

-- ---------------------------------------------------- exchange bookkeeping
CREATE TABLE run (
    id               INTEGER PRIMARY KEY,
    kind             TEXT NOT NULL CHECK (length(kind) BETWEEN 1 AND 40),
    link             TEXT,
    file             TEXT,
    started          TEXT NOT NULL,
    ended            TEXT,
    status           TEXT NOT NULL CHECK (status IN ('running', 'ok', 'partial', 'failed', 'parked')),
    records_total    INTEGER NOT NULL DEFAULT 0 CHECK (records_total >= 0),
    records_ok       INTEGER NOT NULL DEFAULT 0 CHECK (records_ok >= 0),
    records_rejected INTEGER NOT NULL DEFAULT 0 CHECK (records_rejected >= 0),
    CHECK ((status = 'running') = (ended IS NULL))
) STRICT;
CREATE INDEX run_started ON run (started);
CREATE INDEX run_link ON run (link, started);

CREATE TABLE run_message (
    run      INTEGER NOT NULL REFERENCES run (id),
    seq      INTEGER NOT NULL CHECK (seq >= 1),
    level    TEXT NOT NULL CHECK (level IN ('error', 'warning', 'info')),
    code     TEXT NOT NULL CHECK (length(code) BETWEEN 1 AND 64),
    location TEXT,
    text     TEXT NOT NULL,
    PRIMARY KEY (run, seq)
) STRICT, WITHOUT ROWID;

-- One row per file of a link, kind and direction, keyed by its sequence.
-- state: 'prepared' (out, sequence allocated, file written, not yet published)
--      | 'published' (out) | 'applied' | 'ignored' (in, an older snapshot)
--      | 'parked' (in, waiting for mappings) | 'rejected' (in, nothing applied).
CREATE TABLE file_journal (
    id        INTEGER PRIMARY KEY,
    link      TEXT NOT NULL CHECK (length(link) BETWEEN 1 AND 64),
    kind      TEXT NOT NULL CHECK (kind IN ('SEATPLAN', 'CATALOGUE', 'CONTINGENT', 'SALES')),
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    sequence  INTEGER NOT NULL CHECK (sequence >= 1),
    sha256    TEXT NOT NULL CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),
    file_name TEXT NOT NULL CHECK (length(file_name) BETWEEN 1 AND 255),
    state     TEXT NOT NULL CHECK (state IN ('prepared', 'published', 'applied', 'ignored', 'parked', 'rejected')),
    created   TEXT NOT NULL,
    updated   TEXT NOT NULL,
    run_id    INTEGER REFERENCES run (id),
    UNIQUE (link, kind, direction, sequence)
) STRICT;
CREATE INDEX file_journal_sha256 ON file_journal (sha256);
CREATE INDEX file_journal_run ON file_journal (run_id);
"#;

#[cfg(test)]
pub(super) mod tests;
