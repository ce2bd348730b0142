//! Commands beside a long write: the daemon applying a large file holds its
//! store's write lock for as long as that takes (seconds for a big seat
//! plan, minutes for millions of sales lines). A command that only reads
//! does not wait for it; one that writes waits SQLite's busy timeout, then
//! says the store is busy and that it wrote nothing, and works once the
//! lock is gone.

use std::path::Path;

use crate::util::Sandbox;

/// Another process's write transaction on a store, held until dropped.
struct Writer(rusqlite::Connection);

impl Writer {
    fn hold(db: &Path) -> Writer {
        let conn = rusqlite::Connection::open(db).unwrap();
        conn.execute_batch("BEGIN IMMEDIATE; UPDATE institution SET code = code;")
            .unwrap();
        Writer(conn)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.0.execute_batch("ROLLBACK");
    }
}

/// The demo's stores with the distributor's mappings filled, and the
/// seat plan and catalogue waiting in its inbox.
fn plan_and_catalogue_waiting() -> Sandbox {
    let sb = Sandbox::new();
    sb.ready();
    sb.stxd(&["mapping", "import", "samples/tourism/mapping.csv"])
        .expect_code(0);
    for kind in ["seatplan", "catalogue"] {
        sb.stxd(&["export", kind, "--link", "opera-tourism"])
            .expect_code(0);
    }
    sb
}

fn store(sb: &Sandbox, code: &str) -> std::path::PathBuf {
    sb.path().join(format!("var/state/{code}.sqlite"))
}

#[test]
fn commands_that_only_read_do_not_wait_for_another_process_writing_the_store() {
    let sb = Sandbox::new();
    sb.first_use_done();
    let _manager = Writer::hold(&store(&sb, "OPERA"));
    let _distributor = Writer::hold(&store(&sb, "TOURISM"));
    for args in [
        &["mapping", "list", "--link", "opera-tourism"][..],
        &["mapping", "check", "--link", "opera-tourism"],
        &["runs", "list"],
        &["orders", "list"],
        &["account", "show", "--link", "opera-tourism"],
        &["sale", "list", "--link", "opera-tourism"],
        &["sales", "rejects", "--link", "opera-tourism"],
        &["contingent", "show", "--link", "opera-tourism"],
        &["catalogue", "list"],
        &["report", "reconcile", "--link", "opera-tourism"],
        &["status"],
        &["check"],
    ] {
        let run = sb.stxd(args);
        assert_eq!(
            run.code(),
            0,
            "stxd {} beside a writer: {}",
            args.join(" "),
            run.stderr()
        );
    }
    let listed = sb.stxd(&["catalogue", "list"]).stdout();
    assert!(listed.contains("TRAV-BIL"), "{listed}");
    let runs = sb.stxd(&["runs", "list"]).stdout();
    assert!(runs.contains("import-seatplan"), "{runs}");
}

#[test]
fn a_command_that_writes_beside_a_long_write_says_the_store_is_busy_and_changes_nothing() {
    let sb = Sandbox::new();
    sb.first_use_done();
    let allot = crate::util::allot_args("PARTERRE:A:1-2");
    let allotted = |sb: &Sandbox| {
        let conn = rusqlite::Connection::open(store(sb, "OPERA")).unwrap();
        conn.query_row("SELECT count(*) FROM allotment_seat", [], |r| {
            r.get::<_, i64>(0)
        })
        .unwrap()
    };
    let manager = Writer::hold(&store(&sb, "OPERA"));
    let run = sb.stxd(&allot);
    assert_ne!(run.code(), 0, "{}", run.stdout());
    let said = run.stderr();
    assert!(
        said.contains("the store is busy")
            && said.contains("held its write lock")
            && said.contains("wrote nothing, try again"),
        "{said}"
    );
    drop(manager);
    assert_eq!(allotted(&sb), 0, "the busy command wrote nothing");
    sb.stxd(&allot).expect_code(0);
    assert_eq!(allotted(&sb), 2);
}

#[test]
fn an_export_beside_a_long_write_gives_up_without_staging_anything() {
    let sb = Sandbox::new();
    sb.ready();
    let outbox = sb.path().join("var/exchange/opera-tourism/to-distributor");
    let names = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&outbox)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    };
    let before = names();
    let export = ["export", "seatplan", "--link", "opera-tourism"];
    let manager = Writer::hold(&store(&sb, "OPERA"));
    let run = sb.stxd(&export);
    assert_ne!(run.code(), 0, "{}", run.stdout());
    let said = format!("{}{}", run.stdout(), run.stderr());
    assert!(said.contains("the store is busy"), "{said}");
    // Its transaction never began: nothing staged to clean up, no second
    // wait for the lock to try.
    assert!(!said.contains("staged copy"), "{said}");
    drop(manager);
    assert_eq!(names(), before, "the outbox is as it was");
    let done = sb.json(&export);
    assert_eq!(done["sequence"], 1, "{done}");
}

#[test]
fn a_listing_waits_for_a_busy_store_once_and_leaves_its_other_files_for_the_next() {
    let sb = plan_and_catalogue_waiting();
    let distributor = Writer::hold(&store(&sb, "TOURISM"));
    let run = sb.stxd(&["process"]);
    assert_ne!(run.code(), 0, "{}", run.stdout());
    let said = run.stdout();
    let line = |kind: &str| {
        said.lines()
            .find(|l| l.contains(&format!("opera-tourism.{kind}.00000001.stx")))
            .unwrap_or_else(|| panic!("no line for the {kind}: {said}"))
            .to_owned()
    };
    // The seat plan comes first: it waited and found the store busy; the
    // catalogue after it was not tried.
    assert!(line("SEATPLAN").contains("the store is busy"), "{said}");
    let catalogue = line("CATALOGUE");
    assert!(
        catalogue.contains("not tried, the store of TOURISM stayed busy"),
        "{said}"
    );
    drop(distributor);
    let inbox = sb.path().join("var/exchange/opera-tourism/to-distributor");
    for kind in ["SEATPLAN", "CATALOGUE"] {
        assert!(
            inbox
                .join(format!("opera-tourism.{kind}.00000001.stx"))
                .exists(),
            "the {kind} stays in the inbox"
        );
    }
    let run = sb.stxd(&["process"]);
    run.expect_code(0);
    assert!(
        inbox
            .join("done/opera-tourism.CATALOGUE.00000001.stx")
            .exists(),
        "{}",
        run.stdout()
    );
}

#[test]
fn the_daemon_waits_for_a_store_held_by_a_command_once_per_listing_and_applies_after() {
    let sb = plan_and_catalogue_waiting();
    let distributor = Writer::hold(&store(&sb, "TOURISM"));
    let daemon = crate::util::Daemon::start(&sb);
    // One listing: the seat plan waits for the lock and gives up, the
    // catalogue behind it is not tried.
    daemon.wait_log("not tried, the store of TOURISM stayed busy");
    let log = daemon.log();
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("file not processed"))
        .collect();
    assert!(
        failed
            .iter()
            .any(|l| l.contains("SEATPLAN.00000001") && l.contains("the store is busy")),
        "{log}"
    );
    assert!(
        failed
            .iter()
            .any(|l| l.contains("CATALOGUE.00000001") && l.contains("not tried")),
        "{log}"
    );
    drop(distributor);
    crate::util::wait_for_file(
        &sb.path()
            .join("var/exchange/opera-tourism/to-distributor/done"),
        "CATALOGUE",
        || daemon.log(),
    );
}
