//! Commands beside a long write: the daemon applying a large file holds its
//! store's write lock for as long as that takes (seconds for a big seat
//! plan, minutes for millions of sales lines). A command that only reads
//! does not wait for it; one that writes waits for it (`--busy-wait`, 10
//! min by default), saying what it waits for, and goes on once the lock is
//! gone; past its wait, it says the store is busy and that it wrote
//! nothing. The daemon waits 10 s and tries again at its next listing.

use std::path::Path;
use std::time::{Duration, Instant};

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

/// The seats the manager allotted to the distributor so far.
fn allotted(sb: &Sandbox) -> i64 {
    let conn = rusqlite::Connection::open(store(sb, "OPERA")).unwrap();
    conn.query_row("SELECT count(*) FROM allotment_seat", [], |r| r.get(0))
        .unwrap()
}

/// A command run in the background, its stdout and stderr in one file of
/// the sandbox.
struct Background {
    child: std::process::Child,
    output: std::path::PathBuf,
    started: Instant,
}

/// How long a background command may take at most in these tests.
const DEADLINE: Duration = Duration::from_secs(120);

impl Background {
    /// Starts `stxd ARGS…` in the sandbox, with the default busy wait.
    fn start(sb: &Sandbox, args: &[&str]) -> Background {
        let output = sb.path().join(format!("bg-{}.out", crate::util::unique()));
        let out = std::fs::File::create(&output).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_stxd"))
            .args(args)
            .current_dir(sb.path())
            .env("STXD_CONFIG", "config/stxd.toml")
            .env("STXD_LOG", "warn")
            .env_remove("STXD_BUSY_WAIT")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        Background {
            child,
            output,
            started: Instant::now(),
        }
    }

    fn said(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }

    /// Waits until it says `text`; returns all it said.
    #[track_caller]
    fn wait_for(&self, text: &str) -> String {
        while !self.said().contains(text) {
            assert!(
                self.started.elapsed() < DEADLINE,
                "no {text:?}: {}",
                self.said()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        self.said()
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits for it to end; its exit code.
    #[track_caller]
    fn finish(&mut self) -> Option<i32> {
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                self.started.elapsed() < DEADLINE,
                "still running: {}",
                self.said()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_command_that_writes_waits_for_the_store_saying_so_and_goes_on_once_it_is_free() {
    let sb = Sandbox::new();
    sb.first_use_done();
    let manager = Writer::hold(&store(&sb, "OPERA"));
    let mut allot = Background::start(&sb, &crate::util::allot_args("PARTERRE:A:1-2"));
    let notice = allot.wait_for("waiting for the store");
    assert!(
        notice.contains("OPERA.sqlite: another process is writing it")
            && notice.contains("of up to 10 min (--busy-wait), nothing written yet"),
        "{notice}"
    );
    // It waits, and writes nothing meanwhile.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(allot.running(), "{}", allot.said());
    assert_eq!(allotted(&sb), 0);
    drop(manager);
    assert_eq!(allot.finish(), Some(0), "{}", allot.said());
    assert_eq!(allotted(&sb), 2);
}

/// The files in the manager's outbox, sorted.
fn outbox(sb: &Sandbox) -> Vec<String> {
    let dir = sb.path().join("var/exchange/opera-tourism/to-distributor");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// An export waits for every change of its store another process has in
/// hand (between its commit and its file step), so as never to overtake
/// a sequence before its own; the daemon applying a large file has its
/// change in hand all along. That wait is a busy store's too.
#[test]
fn an_export_waits_for_a_change_in_hand_saying_so_and_gives_up_past_its_busy_wait() {
    let sb = Sandbox::new();
    sb.ready();
    let before = outbox(&sb);
    let export = ["export", "seatplan", "--link", "opera-tourism"];
    let live = stxd::store::in_hand::in_hand(&store(&sb, "OPERA"));
    // In the background: an export that would wait for ever fails here.
    let mut short = Background::start(&sb, &[&["--busy-wait", "2"][..], &export].concat());
    assert_ne!(short.finish(), Some(0));
    let said = short.said();
    assert!(
        said.contains("stxd: waiting for the store")
            && said.contains("OPERA.sqlite: another process is writing it"),
        "{said}"
    );
    assert!(
        said.contains(
            "the store is busy: another process was applying or placing a file of it for over 2 s"
        ) && said.contains("this step wrote nothing"),
        "{said}"
    );
    assert_eq!(outbox(&sb), before, "the outbox is as it was");
    // With the default wait, it goes on once the change is done.
    let mut waiting = Background::start(&sb, &export);
    waiting.wait_for("waiting for the store");
    assert!(waiting.running());
    drop(live);
    assert_eq!(waiting.finish(), Some(0), "{}", waiting.said());
    assert_eq!(outbox(&sb).len(), before.len() + 2, "{:?}", outbox(&sb));
    let runs = sb.stxd(&["runs", "list"]).stdout();
    assert_eq!(
        runs.lines()
            .filter(|l| l.contains("export-seatplan"))
            .count(),
        1,
        "the export that gave up records no run: {runs}"
    );
}

#[test]
fn a_command_waiting_for_the_store_names_the_file_the_daemon_is_reading() {
    let sb = Sandbox::new();
    sb.first_use_done();
    let daemon = crate::util::Daemon::start(&sb);
    // What the daemon writes while a file takes long (every 10 s), here by
    // hand: a file that long has no place in a test.
    let record = stxd::reading::Reading {
        pid: u32::try_from(daemon.pid()).unwrap(),
        file: "opera-tourism.SALES.00000007.csv".into(),
        pass: "parse".into(),
        percent: 42,
        read_bytes: 440_401_920,
        bytes: 1_048_576_000,
        seconds: 50,
        at: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap(),
    };
    stxd::reading::write(&sb.path().join("var/state"), &record).unwrap();
    let _manager = Writer::hold(&store(&sb, "OPERA"));
    let run = sb.stxd(
        &[
            &["--busy-wait", "2"][..],
            &crate::util::allot_args("PARTERRE:A:1-2"),
        ]
        .concat(),
    );
    assert_ne!(run.code(), 0, "{}", run.stdout());
    let said = run.stderr();
    assert!(
        said.contains("waiting for the store")
            && said.contains("the daemon is reading opera-tourism.SALES.00000007.csv for 50 s (parse 42% of 1000.0 MiB)")
            && said.contains("of up to 2 s (--busy-wait)"),
        "{said}"
    );
    // Past its wait, it gives up having written nothing.
    assert!(said.contains("held its write lock for over 2 s"), "{said}");
    assert_eq!(allotted(&sb), 0);
}

#[test]
fn a_command_that_writes_gives_up_past_its_busy_wait_and_changes_nothing() {
    let sb = Sandbox::new();
    sb.first_use_done();
    let allot = crate::util::allot_args("PARTERRE:A:1-2");
    let manager = Writer::hold(&store(&sb, "OPERA"));
    let run = sb.stxd(&[&["--busy-wait", "1"][..], &allot].concat());
    assert_ne!(run.code(), 0, "{}", run.stdout());
    let said = run.stderr();
    assert!(
        said.contains("the store is busy")
            && said.contains("held its write lock for over 1 s")
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
    let before = outbox(&sb);
    let export = ["export", "seatplan", "--link", "opera-tourism"];
    let manager = Writer::hold(&store(&sb, "OPERA"));
    let run = sb.stxd(&[&["--busy-wait", "1"][..], &export].concat());
    assert_ne!(run.code(), 0, "{}", run.stdout());
    let said = format!("{}{}", run.stdout(), run.stderr());
    assert!(said.contains("the store is busy"), "{said}");
    // Its transaction never began: nothing staged to clean up, no second
    // wait for the lock to try.
    assert!(!said.contains("staged copy"), "{said}");
    drop(manager);
    assert_eq!(outbox(&sb), before, "the outbox is as it was");
    let done = sb.json(&export);
    assert_eq!(done["sequence"], 1, "{done}");
}

#[test]
fn a_listing_waits_for_a_busy_store_once_and_leaves_its_other_files_for_the_next() {
    let sb = plan_and_catalogue_waiting();
    let distributor = Writer::hold(&store(&sb, "TOURISM"));
    let run = sb.stxd(&["--busy-wait", "1", "process"]);
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

/// A job of the daemon that finds its store busy (a command holding it
/// past the daemon's 10 s) is not lost: it runs again at the next periodic
/// listing, once the store is free. Its trigger stays taken until then.
#[test]
fn a_triggered_export_that_finds_its_store_busy_runs_again_once_the_store_is_free() {
    let sb = Sandbox::new();
    sb.ready();
    sb.stxd(&["mapping", "import", "samples/tourism/mapping.csv"])
        .expect_code(0);
    let daemon = crate::util::Daemon::start(&sb);
    let before = outbox(&sb);
    let manager = Writer::hold(&store(&sb, "OPERA"));
    sb.stxd(&[
        "trigger",
        "export-seatplan",
        "--link",
        "opera-tourism",
        "--no-wait",
    ])
    .expect_code(0);
    daemon.wait_log("job found its store busy");
    assert_eq!(
        outbox(&sb),
        before,
        "nothing staged while the store is held"
    );
    assert!(
        !before.iter().any(|n| n.contains("SEATPLAN")),
        "no seat plan before the job: {before:?}"
    );
    let control = sb.path().join("var/state/control/opera-tourism");
    let triggers = || {
        std::fs::read_dir(&control)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.contains("export-seatplan"))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        triggers().len(),
        1,
        "the trigger stays taken while the job waits"
    );
    drop(manager);
    daemon.wait_log("job ran once its store was free");
    // Exported, then applied: the demo's daemon serves both sides.
    let done = sb
        .path()
        .join("var/exchange/opera-tourism/to-distributor/done");
    crate::util::wait_for_file(&done, "SEATPLAN", || daemon.log());
    assert_eq!(
        triggers(),
        Vec::<String>::new(),
        "the trigger is removed once the job ran"
    );
    let log = daemon.log();
    assert!(!log.contains("job failed"), "{log}");
}
