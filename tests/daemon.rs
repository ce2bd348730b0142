//! `stxd run`: the real binary as a daemon in a sandbox, driven by CLI
//! commands and signals. Every wait polls with a generous deadline (the
//! harness and its waits are in `util`).

use std::time::Duration;

use crate::util::{Daemon, Sandbox, manifests, rows, wait_for_file, wait_until_gone};

#[test]
fn the_daemon_applies_exported_files_by_itself() {
    let sb = Sandbox::new();
    sb.ready();
    let daemon = Daemon::start(&sb);
    sb.stxd(&["mapping", "import", "samples/tourism/mapping.csv"])
        .expect_code(0);
    sb.stxd(&["export", "seatplan", "--link", "opera-tourism"])
        .expect_code(0);
    sb.stxd(&["export", "catalogue", "--link", "opera-tourism"])
        .expect_code(0);
    // Nobody runs `stxd process`: the daemon takes both files.
    let done = sb
        .path()
        .join("var/exchange/opera-tourism/to-distributor/done");
    wait_for_file(&done, "seatplan", || daemon.log());
    wait_for_file(&done, "catalogue", || daemon.log());
    daemon.wait_log_n("file applied", 2);
    let inbox = sb.path().join("var/exchange/opera-tourism/to-distributor");
    assert!(manifests(&inbox, "").is_empty(), "inbox emptied");
    // The products the catalogue created are there to validate.
    let list = sb.stxd(&["--json", "catalogue", "list", "--to-validate"]);
    list.expect_code(0);
    assert!(list.stdout().contains("TRAV-BIL"), "{}", list.stdout());
}

#[test]
fn a_parked_file_resumes_when_the_daemon_applies_what_it_waited_for() {
    let sb = Sandbox::new();
    sb.ready();
    let daemon = Daemon::start_with(&sb, "info,stxd::daemon=debug");
    let exchange = sb.path().join("var/exchange/opera-tourism/to-distributor");
    // The catalogue parks: mappings pending, and the seat plan's
    // configuration 3101 unknown.
    sb.stxd(&["export", "catalogue", "--link", "opera-tourism"])
        .expect_code(0);
    wait_for_file(&exchange.join("parked"), "catalogue", || daemon.log());
    daemon.wait_log("file parked");
    // Filling the mappings is not enough (the CLI's own resume parks it again).
    sb.stxd(&["mapping", "import", "samples/tourism/mapping.csv"])
        .expect_code(0);
    assert!(manifests(&exchange.join("done"), "catalogue").is_empty());
    // The seat plan arrives: the daemon applies it, then resumes the catalogue.
    sb.stxd(&["export", "seatplan", "--link", "opera-tourism"])
        .expect_code(0);
    wait_for_file(&exchange.join("done"), "seatplan", || daemon.log());
    wait_for_file(&exchange.join("done"), "catalogue", || daemon.log());
    // The move links into done/ before it unlinks from parked/.
    wait_until_gone(&exchange.join("parked"), "", || daemon.log());
    // The daemon took it itself: two listings later, its log does not say
    // that someone else did.
    two_listings(&daemon);
    assert!(!daemon.log().contains(NO_LONGER_WAITS), "{}", daemon.log());
}

const LISTING: &str = "listing the inboxes";
const NO_LONGER_WAITS: &str = "file no longer waits";

/// Waits for two more listings of `daemon` (its log at debug).
fn two_listings(daemon: &Daemon) {
    let listings = daemon.log().matches(LISTING).count();
    daemon.wait_log_n(LISTING, listings + 2);
}

/// A file the daemon warned about that a command then takes (here `stxd
/// mapping import`, which applies the parked files itself) leaves its
/// folder behind the daemon's back: its log says so once, with the state
/// it was logged in. A file the daemon moves itself (from failing in the
/// inbox to parked) is not said to be gone.
#[test]
fn the_daemon_says_once_when_a_file_it_warned_about_was_taken_by_a_command() {
    let sb = Sandbox::new();
    sb.ready();
    let daemon = Daemon::start_with(&sb, "info,stxd::daemon=debug");
    let exchange = sb.path().join("var/exchange/opera-tourism/to-distributor");
    // Another program holds the distributor's store: the catalogue fails,
    // then parks once the store is free.
    let tourism = rusqlite::Connection::open(sb.path().join("var/state/TOURISM.sqlite")).unwrap();
    tourism.execute_batch("BEGIN EXCLUSIVE").unwrap();
    sb.stxd(&["export", "catalogue", "--link", "opera-tourism"])
        .expect_code(0);
    daemon.wait_log("file not processed");
    tourism.execute_batch("ROLLBACK").unwrap();
    daemon.wait_log("file parked");
    sb.stxd(&["export", "seatplan", "--link", "opera-tourism"])
        .expect_code(0);
    daemon.wait_log_n("file parked", 2);
    two_listings(&daemon);
    assert!(!daemon.log().contains(NO_LONGER_WAITS), "{}", daemon.log());

    let out = sb.stxd(&["mapping", "import", "samples/tourism/mapping.csv"]);
    out.expect_code(0);
    // The files the command applied (both, unless a periodic listing of
    // the daemon, seeing the store change, took one in the moment between
    // the import and the command's resume: the daemon then says it applied
    // it, and it is not gone behind its back).
    let stdout = out.stdout();
    let resumed: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.split_once("resumed ")?.1.split_once(": applied"))
        .map(|(file, _)| file)
        .collect();
    assert!(!resumed.is_empty(), "{stdout}");
    wait_until_gone(&exchange.join("parked"), "", || daemon.log());
    daemon.wait_log_n(NO_LONGER_WAITS, resumed.len());
    let log = daemon.log();
    let said: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(NO_LONGER_WAITS))
        .collect();
    assert_eq!(said.len(), resumed.len(), "{log}");
    for file in &resumed {
        assert!(
            said.iter().any(|line| line.contains(" INFO ")
                && line.contains(&format!("file={file} "))
                && line.contains("was=\"parked\"")),
            "{file}: {log}"
        );
    }
    // Said once.
    two_listings(&daemon);
    assert_eq!(daemon.log().matches(NO_LONGER_WAITS).count(), resumed.len());
}

/// After a change to a store made elsewhere (here the manager's, by a CLI
/// command beside the daemon), the daemon looks at the parked files again,
/// but applies only those whose missing mappings the change filled: the
/// others would only park again, each retry reading the payload and adding
/// a parked run.
#[test]
fn a_parked_file_is_applied_again_only_once_a_mapping_it_waits_for_changes() {
    let sb = Sandbox::new();
    sb.ready();
    let daemon = Daemon::start_with(&sb, "info,stxd::app=debug");
    let exchange = sb.path().join("var/exchange/opera-tourism/to-distributor");
    sb.stxd(&["export", "catalogue", "--link", "opera-tourism"])
        .expect_code(0);
    wait_for_file(&exchange.join("parked"), "catalogue", || daemon.log());
    daemon.wait_log("file parked");
    let parked_runs = || {
        rows(
            &sb,
            "TOURISM.sqlite",
            "SELECT count(*) FROM run WHERE kind = 'import-catalogue' AND status = 'parked'",
        )
    };
    assert_eq!(parked_runs(), ["1"]);
    // The manager allots seats: its store changes, none of the
    // distributor's mappings does.
    let skipped = "parked file not retried";
    let before = daemon.log().matches(skipped).count();
    sb.allot("PARTERRE:A:1-2");
    daemon.wait_log_n(skipped, before + 1);
    assert_eq!(parked_runs(), ["1"], "{}", daemon.log());
    // A mapping the catalogue waits for changes behind the daemon's back
    // (not through stxd, whose own commands apply parked files themselves):
    // the daemon applies the file again. Others are still pending: it parks.
    let changed = rows(
        &sb,
        "TOURISM.sqlite",
        "UPDATE mapping SET status = 'ignored'
         WHERE kind = 'season' AND manager_id = 1001 AND status = 'pending'
         RETURNING kind",
    );
    assert_eq!(changed, ["season"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while parked_runs() != ["2"] {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?} parked runs:\n{}",
            parked_runs(),
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The second run waits for every mapping the first did, but the season.
    let missing = |nth: usize| {
        rows(
            &sb,
            "TOURISM.sqlite",
            &format!(
                "SELECT m.location FROM run_message m
                 WHERE m.code = 'mapping-pending' AND m.run = (
                     SELECT id FROM run WHERE kind = 'import-catalogue' ORDER BY id LIMIT 1 OFFSET {nth})
                 ORDER BY m.location"
            ),
        )
    };
    let (first, second) = (missing(0), missing(1));
    assert!(first.contains(&"season 1001".to_owned()), "{first:?}");
    let expected: Vec<String> = first.into_iter().filter(|l| l != "season 1001").collect();
    assert_eq!(second, expected);
    assert!(manifests(&exchange.join("done"), "catalogue").is_empty());
}

#[test]
fn a_second_daemon_on_the_same_state_dir_refuses_to_start() {
    let sb = Sandbox::new();
    let daemon = Daemon::start(&sb);
    let second = sb.stxd(&["run"]);
    second.expect_code(1);
    let err = second.stderr();
    assert!(err.contains("another stxd is running on"), "{err}");
    assert!(err.contains(&format!("(pid {})", daemon.pid())), "{err}");
    assert!(err.contains("var/state"), "{err}");
}

#[test]
fn sigterm_stops_the_daemon_with_exit_code_0() {
    let sb = Sandbox::new();
    let mut daemon = Daemon::start(&sb);
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(), Some(0), "{}", daemon.log());
    let log = daemon.log();
    assert!(log.contains("stopping"), "{log}");
    assert!(log.contains("stopped"), "{log}");
    // Every field of the stopping line says something ("none" when idle).
    let line = log
        .lines()
        .find(|l| l.contains("stopping: no new work is taken"))
        .unwrap_or_default();
    for field in ["work_in_hand=", "not_started="] {
        let value = line.split(field).nth(1).unwrap_or_default();
        assert!(
            !value.is_empty() && !value.starts_with(' '),
            "{field} empty in {line:?}"
        );
    }
    // The lock is released: a new daemon starts on the same state.
    let mut again = Daemon::start(&sb);
    again.signal(libc::SIGINT);
    assert_eq!(again.wait_exit(), Some(0), "{}", again.log());
}

#[test]
fn an_idle_daemon_does_not_wake_itself_up() {
    // Its own listings open the watched folders; those events must not ask
    // for another listing (which would loop every debounce period).
    let sb = Sandbox::new();
    let daemon = Daemon::start_with(&sb, "info,stxd::daemon=debug");
    let first = daemon.log().matches("listing the inboxes").count();
    std::thread::sleep(Duration::from_secs(3));
    let later = daemon.log().matches("listing the inboxes").count();
    // scan_seconds is 5 in the demo: at most one periodic listing more.
    assert!(
        later - first <= 1,
        "{} listings in 3 s while idle:\n{}",
        later - first,
        daemon.log()
    );
}

#[test]
fn sighup_keeps_the_running_config_when_the_file_is_broken() {
    let sb = Sandbox::new();
    let mut daemon = Daemon::start(&sb);
    let path = sb.path().join("config/stxd.toml");
    let good = std::fs::read_to_string(&path).expect("config");
    let broken = good.replace("scan_seconds = 5", "scan_seconds = 0\ncolour = 1");
    assert_ne!(broken, good);
    std::fs::write(&path, &broken).expect("write config");
    daemon.signal(libc::SIGHUP);
    daemon.wait_log("config not reloaded");
    assert!(daemon.running(), "{}", daemon.log());
    assert!(daemon.log().contains("colour"), "{}", daemon.log());

    std::fs::write(&path, good.replace("scan_seconds = 5", "scan_seconds = 7"))
        .expect("write config");
    daemon.signal(libc::SIGHUP);
    daemon.wait_log("config reloaded");
    assert!(daemon.running(), "{}", daemon.log());
    // The reload line says what the daemon now runs with.
    assert!(daemon.log().contains("scan_seconds=7"), "{}", daemon.log());
    // Still working on the reloaded config.
    sb.stxd(&["mapping", "import", "samples/tourism/mapping.csv"])
        .expect_code(0);
    sb.stxd(&["export", "seatplan", "--link", "opera-tourism"])
        .expect_code(0);
    let done = sb
        .path()
        .join("var/exchange/opera-tourism/to-distributor/done");
    wait_for_file(&done, "seatplan", || daemon.log());
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(), Some(0), "{}", daemon.log());
}

/// `store` as version 18 left it: migration 19 undone by hand (a later
/// migration must be undone here too).
fn back_to_version_18(store: &std::path::Path) {
    assert_eq!(
        stxd::store::schema::latest(),
        19,
        "undo the later migrations here too"
    );
    rusqlite::Connection::open(store)
        .unwrap()
        .execute_batch(
            "DROP TRIGGER file_journal_counted_insert;
             DROP TRIGGER file_journal_counted_update;
             DROP TRIGGER file_journal_counted_delete;
             DROP TRIGGER run_ended;
             DROP TRIGGER run_inserted_ended;
             DROP VIEW run_end;
             DROP TABLE file_journal_count;
             DROP TABLE run_last_success;
             DROP TABLE import_duration;
             DROP INDEX file_journal_last;
             DROP INDEX run_failed_file;
             PRAGMA user_version = 18;",
        )
        .unwrap();
}

fn user_version(store: &std::path::Path) -> i64 {
    rusqlite::Connection::open(store)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

/// A new version's first start brings every store to its schema while
/// systemd gives the start more time, even a store no file of the first
/// listing opens: not later, in a listing or in a command run beside the
/// daemon (which waits only SQLite's 10 s for the lock a migration takes).
#[test]
fn the_start_migrates_every_store_even_one_no_file_needs() {
    let sb = Sandbox::new();
    sb.ready();
    let opera = sb.path().join("var/state/OPERA.sqlite");
    back_to_version_18(&opera);
    assert_eq!(user_version(&opera), 18);
    let daemon = Daemon::start(&sb);
    assert_eq!(user_version(&opera), 19, "{}", daemon.log());
    // Ops see the upgrade and what it took; the distributor's store,
    // already at the latest version, is not said to be upgraded.
    let log = daemon.log();
    let upgraded: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("store upgraded"))
        .collect();
    assert!(
        upgraded.len() == 1
            && upgraded[0].contains("OPERA.sqlite")
            && upgraded[0].contains("from=18 to=19")
            && upgraded[0].contains("ms="),
        "{log}"
    );
}

/// A store another process holds through its pending migration stops
/// nothing else at the start: the daemon starts and says so, and the store
/// is migrated by the next process that opens it once it is free.
#[test]
fn a_store_held_through_its_migration_at_start_is_said_and_stops_nothing_else() {
    let sb = Sandbox::new();
    sb.ready();
    let opera = sb.path().join("var/state/OPERA.sqlite");
    back_to_version_18(&opera);
    let holder = rusqlite::Connection::open(&opera).unwrap();
    holder
        .execute_batch("BEGIN IMMEDIATE; UPDATE institution SET code = code;")
        .unwrap();
    let daemon = Daemon::start(&sb);
    let log = daemon.log();
    assert!(
        log.lines()
            .any(|l| l.contains("a store cannot be opened at start")
                && l.contains("OPERA")
                && l.contains("migration 19")),
        "{log}"
    );
    assert_eq!(user_version(&opera), 18);
    holder.execute_batch("ROLLBACK").unwrap();
    // The daemon runs meanwhile; the manager's store is migrated by the
    // next process that opens it to write.
    sb.stxd(&["status"]).expect_code(0);
    sb.stxd(&["export", "seatplan", "--link", "opera-tourism"])
        .expect_code(0);
    assert_eq!(user_version(&opera), 19, "{}", daemon.log());
}
