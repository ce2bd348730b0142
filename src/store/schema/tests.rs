//! The migrations' own tests: order, an empty database, data carried
//! across steps, a newer database refused.

use super::*;

/// An empty database brought to `version` by the migrations' SQL alone
/// (foreign keys off, `user_version` set): the fixture a migration's test
/// fills with rows as that version wrote them.
pub(in crate::store) fn at_version(version: i64) -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    conn.pragma_update(None, "foreign_keys", "OFF").unwrap();
    for m in MIGRATIONS.iter().filter(|m| m.version <= version) {
        conn.execute_batch(m.sql).unwrap();
    }
    conn.pragma_update(None, "user_version", version).unwrap();
    conn
}

/// The schema version `conn` is at (`PRAGMA user_version`).
pub(in crate::store) fn user_version(conn: &Connection) -> i64 {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

/// The first column of every row `sql` returns.
pub(in crate::store) fn rows<T: rusqlite::types::FromSql>(conn: &Connection, sql: &str) -> Vec<T> {
    conn.prepare(sql)
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn versions_are_consecutive_from_one() {
    for (i, m) in MIGRATIONS.iter().enumerate() {
        assert_eq!(m.version, i as i64 + 1, "migration {}", m.name);
    }
    assert_eq!(latest(), MIGRATIONS.len() as i64);
}

#[test]
fn every_migration_applies_to_an_empty_database() {
    let mut conn = Connection::open_in_memory().unwrap();
    migrate(&mut conn, Path::new(":memory:")).unwrap();
    let v: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(v, latest());
    // Applying again is a no-op.
    migrate(&mut conn, Path::new(":memory:")).unwrap();
    let fk: Vec<(String, i64)> = {
        let mut st = conn.prepare("PRAGMA foreign_key_check").unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    assert!(fk.is_empty());
}

/// A manager store from before the price versions: its rate tables'
/// prices become version 1, in force since always.
#[test]
fn prices_loaded_before_the_versions_become_version_1() {
    let mut conn = Connection::open_in_memory().unwrap();
    for m in MIGRATIONS.iter().filter(|m| m.version <= 8) {
        conn.execute_batch(m.sql).unwrap();
    }
    conn.execute_batch(
        "PRAGMA user_version = 8;
         INSERT INTO seat_category VALUES (1, 'C', 'C');
         INSERT INTO tariff_type VALUES (1, 'T', 'T');
         INSERT INTO audience_subcategory VALUES (1, 'A', 'A');
         INSERT INTO rate_table VALUES (7, 'R', 'R', 'EUR', 'active');
         INSERT INTO rate_table VALUES (8, 'D', 'D', 'EUR', 'validated');
         INSERT INTO price VALUES (7, 1, 1, 1, 8500);
         INSERT INTO price VALUES (8, 1, 1, 1, 8000);",
    )
    .unwrap();
    migrate(&mut conn, Path::new(":memory:")).unwrap();
    let rows: Vec<(i64, i64, String, i64)> = conn
        .prepare(
            "SELECT v.rate_table, v.version, v.valid_from, p.amount FROM rate_table_version v
             JOIN rate_table_version_price p USING (rate_table, version)",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        [(7, 1, "0000-01-01T00:00:00.000000Z".to_owned(), 8500)]
    );
    let versions: Vec<Option<i64>> = conn
        .prepare("SELECT version FROM rate_table ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(versions, [Some(1), None]);
}

#[test]
fn newer_database_is_refused() {
    let mut conn = Connection::open_in_memory().unwrap();
    conn.pragma_update(None, "user_version", latest() + 1)
        .unwrap();
    let err = migrate(&mut conn, Path::new("x.db")).unwrap_err();
    assert!(matches!(err, StoreError::TooNew { .. }), "{err}");
    assert!(err.to_string().contains("upgrade stxd"));
}
