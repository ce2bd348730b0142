//! A new store's birth killed at any step: `stxd init` run again builds it
//! whole. Before, a kill after the store file was made and before its `load`
//! files were in left a store without master data that every later start
//! took as made.

use std::collections::BTreeMap;

use crate::util::{Sandbox, rows};

/// Every table of both stores with its row count.
fn counts(sb: &Sandbox) -> BTreeMap<String, String> {
    let mut all = BTreeMap::new();
    for db in ["OPERA.sqlite", "TOURISM.sqlite"] {
        for table in rows(
            sb,
            db,
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        ) {
            let n = rows(sb, db, &format!("SELECT count(*) FROM \"{table}\""));
            all.insert(format!("{db} {table}"), n.join(""));
        }
    }
    all
}

#[test]
fn a_store_creation_killed_at_any_step_is_built_whole_by_the_next_start() {
    let reference = Sandbox::new();
    reference.stxd(&["init"]).expect_code(0);
    let want = counts(&reference);
    assert!(
        want.iter().any(|(t, n)| t.ends_with(" seat") && n != "0"),
        "the demo's manager store holds its seats: {want:?}"
    );
    // pwrite64: pages of the store or its log, early and deep into the
    // `load` files; fsync: the log's commits and the checkpoint; renameat2:
    // the store placed; unlink: the log removed at close.
    let kills = [
        ("pwrite64", 2),
        ("pwrite64", 60),
        ("pwrite64", 400),
        ("fsync", 1),
        ("fsync", 4),
        ("fsync", 8),
        ("renameat2", 1),
        ("unlink", 1),
    ];
    for (call, nth) in kills {
        let sb = Sandbox::new();
        let cut = sb.stxd_killed_at(call, nth, &["init"]);
        if matches!(
            (call, nth),
            ("pwrite64", 2 | 60) | ("fsync", 1) | ("renameat2", 1)
        ) {
            assert!(cut.killed(), "{call} #{nth}: stxd init was not killed");
        }
        sb.stxd(&["init"]).expect_code(0);
        sb.stxd(&["check"]).expect_code(0);
        assert_eq!(
            counts(&sb),
            want,
            "{call} #{nth}: the store after a second init"
        );
        let state = sb.path().join("var/state");
        let left: Vec<String> = std::fs::read_dir(&state)
            .expect("state dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".creating."))
            .collect();
        assert!(
            left.is_empty(),
            "{call} #{nth}: builds left in {}: {left:?}",
            state.display()
        );
    }
}
