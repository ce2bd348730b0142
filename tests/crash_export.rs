//! Exports killed at every step, by failpoint and at exact system calls: a
//! sequence carries one content forever, every sale line and contingent
//! version reaches the peer once, and nothing is left half-placed.
//!
//! Each case plays the same story in one direction: an export killed at a
//! point, the peer processing whatever is there, one more change, a normal
//! export (which finishes the interrupted one first), the peer processing
//! again. The ends are checked, not the paths: all lines booked, the
//! reconciliation consistent, no temporary name, nothing in `error/`.

use std::path::Path;

use serde_json::Value;

use crate::util::{Sandbox, Tmpfs};

const LINK: &str = "opera-tourism";

/// Every boundary of an export, in the order it reaches them.
const POINTS: [&str; 5] = [
    "export.staged",
    "export.committed",
    "export.payload-placed",
    "export.manifest-placed",
    "export.published",
];

fn query(sb: &Sandbox, db: &str, sql: &str) -> Vec<i64> {
    let conn = rusqlite::Connection::open(sb.path().join("var/state").join(db)).unwrap();
    let mut st = conn.prepare(sql).unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Every name under the exchange folder, relative to it.
fn names(dir: &Path, base: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            names(&e.path(), base, out);
        } else {
            out.push(
                e.path()
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
}

/// Nothing waits, nothing was refused, no temporary name is left, every
/// manifest has its payload in the same folder, and both sides agree.
#[track_caller]
fn assert_clean_and_consistent(sb: &Sandbox, why: &str) {
    let exchange = sb.path().join("var/exchange").join(LINK);
    let mut all = Vec::new();
    names(&exchange, &exchange, &mut all);
    all.sort();
    for name in &all {
        let file = Path::new(name).file_name().unwrap().to_string_lossy();
        assert!(
            !file.starts_with('.'),
            "{why}: temporary {name} left: {all:?}"
        );
        assert!(!name.contains("/error/"), "{why}: {name} refused: {all:?}");
        let parent = Path::new(name).parent().unwrap();
        assert!(
            parent.ends_with("done"),
            "{why}: {name} is not in done/: {all:?}"
        );
        if let Some(stem) = file.strip_suffix(".stx") {
            let ext = if stem.contains(".SALES.") || stem.contains(".CONTINGENT.") {
                "csv"
            } else {
                "xml"
            };
            let payload = parent.join(format!("{stem}.{ext}"));
            assert!(
                all.contains(&payload.to_string_lossy().into_owned()),
                "{why}: {name} without its payload: {all:?}"
            );
        }
    }
    let run = sb.stxd(&["--json", "report", "reconcile", "--link", LINK]);
    let doc: Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(doc["consistent"], true, "{why}: {doc:#}");
}

/// An export of `kind` run with `kill` (a failpoint name, or `syscall:N`
/// for strace); says whether the process really died.
fn killed_export(sb: &Sandbox, kind: &str, kill: &str) -> bool {
    let args = ["export", kind, "--link", LINK];
    let run = match kill.split_once(':') {
        Some((syscall, n)) => sb.stxd_killed_at(syscall, n.parse().unwrap(), &args),
        None => sb.stxd_env(&args, &[("STXD_FAILPOINT", kill)]),
    };
    if !run.killed() {
        run.expect_code(0);
    }
    run.killed()
}

/// The sales direction: the recipe that lost a line before the export
/// bound its sequence first (a kill after placing, before committing).
fn sales_story(kill: &str) -> bool {
    let sb = Sandbox::new();
    sb.first_use_done();
    sb.allot("PARTERRE:A:1-10");
    sb.json(&["export", "contingent", "--link", LINK]);
    sb.json(&["process"]);

    let first = sb.sell("PARTERRE:A:1");
    let died = killed_export(&sb, "sales", kill);
    // The manager takes whatever was placed (a complete pair or nothing).
    sb.stxd(&["process"]).expect_code(0);
    let second = sb.sell("PARTERRE:A:2");
    sb.json(&["export", "sales", "--link", LINK]);
    sb.stxd(&["process"]).expect_code(0);

    let booked = query(
        &sb,
        "OPERA.sqlite",
        "SELECT line FROM sales_line WHERE status = 'booked' ORDER BY line",
    );
    assert_eq!(booked, [first, second], "{kill}: every line booked once");
    // Each sequence was journaled once at each end, with the same digest.
    let sent = query(
        &sb,
        "TOURISM.sqlite",
        "SELECT sequence FROM file_journal WHERE kind = 'SALES' AND direction = 'out' AND state = 'published' ORDER BY sequence",
    );
    let applied = query(
        &sb,
        "OPERA.sqlite",
        "SELECT sequence FROM file_journal WHERE kind = 'SALES' AND direction = 'in' AND state = 'applied' ORDER BY sequence",
    );
    assert_eq!(sent, applied, "{kill}: every sequence sent is applied");
    assert_clean_and_consistent(&sb, kill);
    died
}

/// The contingent direction: a version killed in its export still reaches
/// the distributor, which can then sell what the next version added.
fn contingent_story(kill: &str) -> bool {
    let sb = Sandbox::new();
    sb.first_use_done();
    sb.allot("PARTERRE:A:1-5");
    let died = killed_export(&sb, "contingent", kill);
    sb.stxd(&["process"]).expect_code(0);
    sb.allot("PARTERRE:A:6-10");
    sb.json(&["export", "contingent", "--link", LINK]);
    sb.stxd(&["process"]).expect_code(0);

    let seats = query(
        &sb,
        "TOURISM.sqlite",
        "SELECT count(*) FROM contingent_seat WHERE performance = 1",
    );
    assert_eq!(seats, [10], "{kill}: both versions applied");
    let first = sb.sell("PARTERRE:A:3");
    let second = sb.sell("PARTERRE:A:8");
    sb.json(&["export", "sales", "--link", LINK]);
    sb.stxd(&["process"]).expect_code(0);
    let booked = query(
        &sb,
        "OPERA.sqlite",
        "SELECT line FROM sales_line WHERE status = 'booked' ORDER BY line",
    );
    assert_eq!(booked, [first, second], "{kill}");
    assert_clean_and_consistent(&sb, kill);
    died
}

#[test]
fn a_sales_export_killed_at_any_of_its_points_loses_no_line() {
    for point in POINTS {
        assert!(sales_story(point), "{point} was never reached");
    }
}

#[test]
fn a_contingent_export_killed_at_any_of_its_points_loses_no_version() {
    for point in POINTS {
        assert!(contingent_story(point), "{point} was never reached");
    }
}

/// Exact system calls of a sales export: every fsync and every rename it
/// makes (the staged files, the store's commit, each placement).
#[test]
fn a_sales_export_killed_at_each_fsync_and_link_loses_no_line() {
    let mut kills = 0;
    for syscall in ["fsync", "renameat2"] {
        for n in 1..=8 {
            if sales_story(&format!("{syscall}:{n}")) {
                kills += 1;
            }
        }
    }
    // The export makes at least 5 fsyncs (payload, manifest, folder, WAL
    // commits) and 2 renames: most of these cases did kill.
    assert!(kills >= 7, "only {kills} kills landed");
}

/// The recipe of the old defect, step by step: the pair is never visible
/// before the commit, so the peer cannot apply a sequence the sender then
/// rolls back and reuses.
#[test]
fn a_sequence_is_never_visible_before_its_commit() {
    let sb = Sandbox::new();
    sb.first_use_done();
    sb.allot("PARTERRE:A:1-10");
    sb.json(&["export", "contingent", "--link", LINK]);
    sb.json(&["process"]);
    sb.sell("PARTERRE:A:1");
    assert!(killed_export(&sb, "sales", "export.staged"));
    let to_manager = sb.path().join("var/exchange").join(LINK).join("to-manager");
    let visible: Vec<String> = std::fs::read_dir(&to_manager)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.') && n.contains(".SALES."))
        .collect();
    assert_eq!(
        visible,
        Vec::<String>::new(),
        "nothing placed before the commit"
    );
    let journaled = query(
        &sb,
        "TOURISM.sqlite",
        "SELECT count(*) FROM file_journal WHERE kind = 'SALES' AND direction = 'out'",
    );
    assert_eq!(journaled, [0], "the rolled-back export bound no sequence");
}

/// `stxd process` places an export a crash left committed but unplaced
/// before it lists the inboxes, as the daemon's listing does: the peer
/// applies it without waiting for the next export.
#[test]
fn process_places_a_committed_export_before_listing() {
    let sb = Sandbox::new();
    sb.first_use_done();
    sb.allot("PARTERRE:A:1-10");
    sb.json(&["export", "contingent", "--link", LINK]);
    sb.json(&["process"]);
    let line = sb.sell("PARTERRE:A:1");
    assert!(killed_export(&sb, "sales", "export.committed"));
    sb.stxd(&["process"]).expect_code(0);
    let booked = query(
        &sb,
        "OPERA.sqlite",
        "SELECT line FROM sales_line WHERE status = 'booked' ORDER BY line",
    );
    assert_eq!(booked, [line]);
    assert_clean_and_consistent(&sb, "process after export.committed");
}

/// An export between its commit and its placement whose process is alive
/// is that process's to place: a listing beside it (`stxd process`, the
/// daemon's) leaves it alone instead of "finishing" it as a crash's. The
/// live writer is stood in for by this test holding the lock an export
/// holds (`stxd::store::in_hand`), over an export killed after its
/// commit; once the lock is free, the next listing places it.
#[test]
fn a_listing_leaves_an_export_to_its_live_writer() {
    let sb = Sandbox::new();
    sb.first_use_done();
    sb.allot("PARTERRE:A:1-10");
    sb.json(&["export", "contingent", "--link", LINK]);
    sb.json(&["process"]);
    let line = sb.sell("PARTERRE:A:1");
    assert!(killed_export(&sb, "sales", "export.committed"));
    let inbox = sb.path().join("var/exchange").join(LINK).join("to-manager");
    let manifest = format!("{LINK}.SALES.00000001.stx");
    let writer = stxd::store::in_hand::in_hand(&sb.path().join("var/state/TOURISM.sqlite"));
    sb.stxd(&["process"]).expect_code(0);
    assert!(
        !inbox.join(&manifest).exists() && !inbox.join("done").join(&manifest).exists(),
        "a listing placed an export whose writer is alive"
    );
    let prepared = query(
        &sb,
        "TOURISM.sqlite",
        "SELECT sequence FROM file_journal WHERE kind = 'SALES' AND state = 'prepared'",
    );
    assert_eq!(prepared, [1]);
    drop(writer);
    sb.stxd(&["process"]).expect_code(0);
    let booked = query(
        &sb,
        "OPERA.sqlite",
        "SELECT line FROM sales_line WHERE status = 'booked' ORDER BY line",
    );
    assert_eq!(booked, [line]);
    assert_clean_and_consistent(&sb, "process once the writer let go");
}

/// A line sold at the distributor with the sandbox's `folder` on a tmpfs of
/// `size`, then that disk filled to its last byte by a dot name no listing
/// takes.
struct FullDisk {
    /// Held for the test, dropped (unmounted) before the sandbox goes.
    _disk: Tmpfs,
    sb: Sandbox,
    filler: std::path::PathBuf,
    line: i64,
}

fn sold_on_a_full_disk(folder: &str, size: &str) -> FullDisk {
    let sb = Sandbox::new();
    let dir = sb.path().join(folder);
    std::fs::create_dir_all(&dir).unwrap();
    let disk = Tmpfs::mount(&dir, size);
    sb.first_use_done();
    sb.allot("PARTERRE:A:1-10");
    sb.json(&["export", "contingent", "--link", LINK]);
    sb.json(&["process"]);
    let line = sb.sell("PARTERRE:A:1");
    let filler = dir.join(".filler");
    let free = usize::try_from(disk.free()).unwrap();
    std::fs::write(&filler, vec![0u8; free]).expect("fill the disk");
    assert_eq!(disk.free(), 0);
    FullDisk {
        _disk: disk,
        sb,
        filler,
        line,
    }
}

/// After an export that failed on the full disk: nothing in the outbox (its
/// folders and the filler aside), no sequence taken; then, space freed, the
/// next export carries the line as sequence 1 and the manager books it once.
#[track_caller]
fn nothing_exported_then_once_freed(full: FullDisk, why: &str) {
    let sb = &full.sb;
    let outbox = sb.path().join("var/exchange").join(LINK).join("to-manager");
    let left: Vec<String> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".filler" && !outbox.join(n).is_dir())
        .collect();
    assert_eq!(left, Vec::<String>::new(), "{why}: nothing in the outbox");
    std::fs::remove_file(&full.filler).unwrap();
    let journaled = query(
        sb,
        "TOURISM.sqlite",
        "SELECT sequence FROM file_journal WHERE kind = 'SALES' AND direction = 'out'",
    );
    assert_eq!(journaled, Vec::<i64>::new(), "{why}: no sequence taken");
    let out = sb.json(&["export", "sales", "--link", LINK]);
    assert_eq!(out["sequence"], 1, "{why}: {out:#}");
    sb.stxd(&["process"]).expect_code(0);
    let booked = query(
        sb,
        "OPERA.sqlite",
        "SELECT line FROM sales_line WHERE status = 'booked' ORDER BY line",
    );
    assert_eq!(booked, [full.line], "{why}: the line booked once");
    assert_clean_and_consistent(sb, why);
}

/// The outbox's disk full (the folder the distributor's sales go to): the
/// sales export fails saying which file it could not write, as a runtime
/// failure; it leaves no temporary name and takes no sequence; once space
/// is freed the next export carries the line once.
#[test]
fn a_sales_export_on_a_full_disk_takes_no_sequence_and_loses_no_line() {
    let full = sold_on_a_full_disk("var/exchange/opera-tourism/to-manager", "1m");
    let run = full.sb.stxd(&["export", "sales", "--link", LINK]);
    let said = run.stdout();
    assert_eq!(run.code(), 3, "a runtime failure: {said}");
    let part = full
        .filler
        .with_file_name(".opera-tourism.SALES.00000001.csv.part");
    assert!(
        said.starts_with("failed:")
            && said.contains(&format!(
                "cannot write {}: No space left on device",
                part.display()
            ))
            && said.contains("code:      publish-failed"),
        "{said}"
    );
    nothing_exported_then_once_freed(full, "full outbox disk");
}

/// The stores' disk full (the state folder): the sales export cannot open
/// its store; it fails as a runtime failure naming the store and the disk's
/// space, leaves nothing in the outbox and takes no sequence; once space is
/// freed the next export carries the line once.
#[test]
fn a_sales_export_whose_store_disk_is_full_takes_no_sequence_and_loses_no_line() {
    let full = sold_on_a_full_disk("var/state", "16m");
    let run = full.sb.stxd(&["export", "sales", "--link", LINK]);
    let said = run.stderr();
    assert_eq!(run.code(), 3, "a runtime failure: {said}");
    let store = full.filler.with_file_name("TOURISM.sqlite");
    assert!(
        said.contains(&format!("cannot open the database {}", store.display()))
            && said.contains("the space left on its disk"),
        "{said}"
    );
    nothing_exported_then_once_freed(full, "full store disk");
}
