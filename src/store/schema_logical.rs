//! Migration 11, apart from `schema.rs` for its length: logical seat
//! categories per seat (`docs/catalogue-changes.md`, "Logical seat
//! categories per seat"). Listed in [`super::schema::MIGRATIONS`] like every
//! other step; never edited once released.

use super::schema::Migration;

pub(super) const LOGICAL_SEATS: Migration = Migration {
    version: 11,
    name: "logical seat categories per seat: seat assignments, prices of logical categories, the logical category a line was priced in",
    sql: SQL,
};

const SQL: &str = r#"
-- Both roles: the logical seat category a logical configuration gives a
-- seat (a seat without a row here sells as its physical seat category).
-- One lookup per seat sold: the primary key.
CREATE TABLE logical_seat (
    logical_configuration INTEGER NOT NULL REFERENCES logical_configuration (id),
    seat                  INTEGER NOT NULL REFERENCES seat (id),
    logical_seat_category INTEGER NOT NULL REFERENCES logical_seat_category (id),
    PRIMARY KEY (logical_configuration, seat)
) STRICT, WITHOUT ROWID;
CREATE INDEX logical_seat_seat ON logical_seat (seat);
CREATE INDEX logical_seat_category_of ON logical_seat (logical_seat_category);
-- Both roles: the prices of a rate table for logical seat categories (a
-- seat given a logical seat category is priced by these only).
CREATE TABLE logical_price (
    rate_table            INTEGER NOT NULL REFERENCES rate_table (id),
    logical_seat_category INTEGER NOT NULL REFERENCES logical_seat_category (id),
    tariff_type           INTEGER NOT NULL REFERENCES tariff_type (id),
    audience_subcategory  INTEGER NOT NULL REFERENCES audience_subcategory (id),
    amount                INTEGER NOT NULL CHECK (amount >= 0 AND amount <= 999999999999999),
    PRIMARY KEY (rate_table, logical_seat_category, tariff_type, audience_subcategory)
) STRICT, WITHOUT ROWID;
CREATE INDEX logical_price_category ON logical_price (logical_seat_category);
-- Manager: the logical prices of each rate table version.
CREATE TABLE rate_table_version_logical_price (
    rate_table            INTEGER NOT NULL,
    version               INTEGER NOT NULL,
    logical_seat_category INTEGER NOT NULL REFERENCES logical_seat_category (id),
    tariff_type           INTEGER NOT NULL REFERENCES tariff_type (id),
    audience_subcategory  INTEGER NOT NULL REFERENCES audience_subcategory (id),
    amount                INTEGER NOT NULL CHECK (amount >= 0 AND amount <= 999999999999999),
    PRIMARY KEY (rate_table, version, logical_seat_category, tariff_type, audience_subcategory),
    FOREIGN KEY (rate_table, version) REFERENCES rate_table_version (rate_table, version)
) STRICT, WITHOUT ROWID;
-- The logical seat category a line was priced in (NULL: its physical
-- one): the distributor's sales line and the manager's ticket.
ALTER TABLE sale_line ADD COLUMN logical_seat_category INTEGER
    REFERENCES logical_seat_category (id);
ALTER TABLE ticket ADD COLUMN logical_seat_category INTEGER
    REFERENCES logical_seat_category (id);
"#;
