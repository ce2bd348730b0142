//! The manager's rate table versions: after a catalogue load, each rate
//! table whose prices differ from its latest version gets a new version
//! (the first one, version 1, in force since always), with a copy of its
//! prices and the instant it came into force. The reintegration prices a
//! sales line with the version it names, or with the version in force when
//! the sale was made (`docs/catalogue-changes.md`).

use rusqlite::Connection;

use super::store_role;
use crate::domain::DomainError;
use crate::store::Role;

/// When version 1 of a rate table is in force from: always.
pub const SINCE_ALWAYS: &str = "0000-01-01T00:00:00.000000Z";

/// Records a new version of every rate table whose prices changed (at a
/// manager; a no-op at a distributor, which takes the manager's versions
/// from its catalogues). Returns the number of versions recorded.
pub fn catalogue_done(conn: &Connection) -> Result<u64, DomainError> {
    if store_role(conn)? != Role::Manager {
        return Ok(0);
    }
    let tables: Vec<(i64, Option<i64>)> = conn
        .prepare_cached(
            "SELECT r.id, (SELECT max(version) FROM rate_table_version v WHERE v.rate_table = r.id)
             FROM rate_table r ORDER BY r.id",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut recorded = 0;
    for (rt, latest) in tables {
        let (version, from) = match latest {
            None => (1, SINCE_ALWAYS.to_owned()),
            Some(v) if differs(conn, rt, v)? => (v + 1, crate::store::now()),
            Some(_) => continue,
        };
        conn.prepare_cached(
            "INSERT INTO rate_table_version (rate_table, version, valid_from) VALUES (?1, ?2, ?3)",
        )?
        .execute((rt, version, &from))?;
        conn.prepare_cached(
            "INSERT INTO rate_table_version_price
                 SELECT rate_table, ?2, seat_category, tariff_type, audience_subcategory, amount
                 FROM price WHERE rate_table = ?1",
        )?
        .execute((rt, version))?;
        conn.prepare_cached(
            "INSERT INTO rate_table_version_logical_price
                 SELECT rate_table, ?2, logical_seat_category, tariff_type, audience_subcategory,
                     amount
                 FROM logical_price WHERE rate_table = ?1",
        )?
        .execute((rt, version))?;
        conn.prepare_cached("UPDATE rate_table SET version = ?2 WHERE id = ?1")?
            .execute((rt, version))?;
        recorded += 1;
    }
    Ok(recorded)
}

/// The current prices of a rate table (physical and logical) differ from
/// those of its `version`.
fn differs(conn: &Connection, rt: i64, version: i64) -> Result<bool, DomainError> {
    let logical = conn
        .prepare_cached(
            "SELECT 1 FROM (
                 SELECT logical_seat_category, tariff_type, audience_subcategory, amount
                     FROM logical_price WHERE rate_table = ?1
                 EXCEPT SELECT logical_seat_category, tariff_type, audience_subcategory, amount
                     FROM rate_table_version_logical_price WHERE rate_table = ?1 AND version = ?2)
             UNION ALL SELECT 1 FROM (
                 SELECT logical_seat_category, tariff_type, audience_subcategory, amount
                     FROM rate_table_version_logical_price WHERE rate_table = ?1 AND version = ?2
                 EXCEPT SELECT logical_seat_category, tariff_type, audience_subcategory, amount
                     FROM logical_price WHERE rate_table = ?1)",
        )?
        .exists((rt, version))?;
    Ok(logical
        || conn
            .prepare_cached(
                "SELECT 1 FROM (
                 SELECT seat_category, tariff_type, audience_subcategory, amount
                     FROM price WHERE rate_table = ?1
                 EXCEPT SELECT seat_category, tariff_type, audience_subcategory, amount
                     FROM rate_table_version_price WHERE rate_table = ?1 AND version = ?2)
             UNION ALL SELECT 1 FROM (
                 SELECT seat_category, tariff_type, audience_subcategory, amount
                     FROM rate_table_version_price WHERE rate_table = ?1 AND version = ?2
                 EXCEPT SELECT seat_category, tariff_type, audience_subcategory, amount
                     FROM price WHERE rate_table = ?1)",
            )?
            .exists((rt, version))?)
}
