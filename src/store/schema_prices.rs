//! Migration 10's SQL, apart from `schema.rs` for its length: catalogue
//! changes keep selling (validation per object, the differences pending
//! review) and versioned prices (`docs/catalogue-changes.md`). Listed in
//! [`super::schema::MIGRATIONS`] like every other step; never edited once
//! released.

pub(super) const PER_OBJECT_VALIDATION_AND_PRICE_VERSIONS: &str = r#"
-- Distributor: a product's link to a performance is validated apart from the
-- product (a performance the manager adds to a validated product, or whose
-- own data changed, waits for validation while the others keep selling).
-- Links that exist already were validated with their product.
ALTER TABLE product_performance ADD COLUMN validated INTEGER NOT NULL DEFAULT 1
    CHECK (validated IN (0, 1));
-- Distributor: each difference a catalogue import found in an object that
-- returned to to_validate, kept until the object is validated: what ops
-- review (the difference from the last validated version). `kind` is the
-- object's table; `object` its local id.
CREATE TABLE catalogue_change (
    id         INTEGER PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('logical_configuration', 'rate_table', 'product')),
    object     INTEGER NOT NULL,
    difference TEXT NOT NULL CHECK (length(difference) BETWEEN 1 AND 2000),
    file       TEXT NOT NULL CHECK (length(file) BETWEEN 1 AND 255),
    at         TEXT NOT NULL
) STRICT;
CREATE INDEX catalogue_change_object ON catalogue_change (kind, object);
-- The version of a rate table's prices. Manager: its current version (1 on
-- the first load; +1 at each load that changes a price). Distributor: the
-- manager's version its prices are (NULL when they came from a version 1
-- catalogue, which names none).
ALTER TABLE rate_table ADD COLUMN version INTEGER CHECK (version IS NULL OR version >= 1);
-- Manager: every version of every rate table, its prices, and when it came
-- into force (RFC 3339 UTC with microseconds, as store::now writes); a
-- version is in force from its `valid_from` until the next one's.
CREATE TABLE rate_table_version (
    rate_table INTEGER NOT NULL REFERENCES rate_table (id),
    version    INTEGER NOT NULL CHECK (version >= 1),
    valid_from TEXT NOT NULL,
    PRIMARY KEY (rate_table, version)
) STRICT, WITHOUT ROWID;
CREATE TABLE rate_table_version_price (
    rate_table           INTEGER NOT NULL,
    version              INTEGER NOT NULL,
    seat_category        INTEGER NOT NULL REFERENCES seat_category (id),
    tariff_type          INTEGER NOT NULL REFERENCES tariff_type (id),
    audience_subcategory INTEGER NOT NULL REFERENCES audience_subcategory (id),
    amount               INTEGER NOT NULL CHECK (amount >= 0 AND amount <= 999999999999999),
    PRIMARY KEY (rate_table, version, seat_category, tariff_type, audience_subcategory),
    FOREIGN KEY (rate_table, version) REFERENCES rate_table_version (rate_table, version)
) STRICT, WITHOUT ROWID;
-- A manager's rate tables loaded before this migration: their prices are
-- version 1, in force since always.
INSERT INTO rate_table_version (rate_table, version, valid_from)
    SELECT id, 1, '0000-01-01T00:00:00.000000Z' FROM rate_table WHERE state = 'active';
INSERT INTO rate_table_version_price
    SELECT p.rate_table, 1, p.seat_category, p.tariff_type, p.audience_subcategory, p.amount
    FROM price p JOIN rate_table r ON r.id = p.rate_table WHERE r.state = 'active';
UPDATE rate_table SET version = 1 WHERE state = 'active';
-- The rate table version a sales line was priced with: the distributor's
-- line (NULL: priced from a version 1 catalogue) and the manager's ticket
-- (the version it was booked at; NULL for tickets booked before).
ALTER TABLE sale_line ADD COLUMN rate_version INTEGER
    CHECK (rate_version IS NULL OR rate_version >= 1);
ALTER TABLE ticket ADD COLUMN rate_version INTEGER
    CHECK (rate_version IS NULL OR rate_version >= 1);
-- Distributor: the manager's id of each logical seat category its
-- catalogues sent (NULL for those imported before), so that a logical id
-- given where a physical seat category is mapped is refused by name.
ALTER TABLE logical_seat_category ADD COLUMN manager_id INTEGER;
CREATE INDEX logical_seat_category_manager_id ON logical_seat_category (manager_id);
"#;
