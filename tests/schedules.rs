//! Schedules, trigger files, `stxd trigger` and apply windows, with the real
//! daemon (`stxd run`) in a sandbox. Every wait polls with a generous
//! deadline; no test sleeps for a schedule to fire at a given time.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::util::Daemon;
use crate::util::Sandbox;
use crate::util::{DEADLINE, POLL, manifests, wait_for_file, wait_until_gone};

/// Appends `[[schedule]]` lines to the sandbox's config.
pub(crate) fn add_schedules(sb: &Sandbox, lines: &[(&str, &str)]) {
    let path = sb.path().join("config/stxd.toml");
    let mut text = std::fs::read_to_string(&path).expect("config");
    for (job, cron) in lines {
        text.push_str(&format!(
            "\n[[schedule]]\nlink = \"opera-tourism\"\njob = \"{job}\"\ncron = \"{cron}\"\n"
        ));
    }
    std::fs::write(&path, text).expect("write config");
}

pub(crate) fn to_distributor(sb: &Sandbox) -> PathBuf {
    sb.path().join("var/exchange/opera-tourism/to-distributor")
}

pub(crate) fn control(sb: &Sandbox) -> PathBuf {
    sb.path().join("var/state/control/opera-tourism")
}

/// The manifests of `kind` in the distributor's inbox and the folders
/// the daemon moves them to.
pub(crate) fn exported(sb: &Sandbox, kind: &str) -> usize {
    let inbox = to_distributor(sb);
    ["", "done", "parked", "error"]
        .iter()
        .map(|sub| manifests(&inbox.join(sub), kind).len())
        .sum()
}

#[track_caller]
pub(crate) fn wait_until(what: &str, cond: impl Fn() -> bool, log: impl Fn() -> String) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < DEADLINE,
            "{what} not seen after {DEADLINE:?}; daemon log:\n{}",
            log()
        );
        std::thread::sleep(POLL);
    }
}

fn gone(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_err()
}

#[test]
fn a_schedule_every_second_exports_the_catalogue() {
    let sb = Sandbox::new();
    add_schedules(&sb, &[("export-catalogue", "* * * * * *")]);
    sb.ready();
    let mut daemon = Daemon::start(&sb);
    // Two runs at least: it fires again, one run at a time.
    daemon.wait_log_n("job done: file exported", 2);
    assert!(exported(&sb, "catalogue") >= 2, "{}", daemon.log());
    assert!(
        daemon.log().contains("job=export-catalogue"),
        "{}",
        daemon.log()
    );
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(), Some(0), "{}", daemon.log());
}

#[test]
fn a_trigger_file_runs_its_job_and_disappears() {
    let sb = Sandbox::new();
    sb.ready();
    let daemon = Daemon::start(&sb);
    let trigger = control(&sb).join("export-seatplan");
    assert!(
        control(&sb).is_dir(),
        "the daemon creates the control folder"
    );
    std::fs::write(&trigger, "").expect("drop the trigger");
    wait_until("the trigger taken", || gone(&trigger), || daemon.log());
    wait_until(
        "a seat plan exported",
        || exported(&sb, "seatplan") == 1,
        || daemon.log(),
    );
    daemon.wait_log("trigger taken: job queued");
    // An unknown name is refused with the valid ones, and removed.
    let bad = control(&sb).join("export-everything");
    std::fs::write(&bad, "").expect("drop a bad trigger");
    wait_until("the bad trigger removed", || gone(&bad), || daemon.log());
    daemon.wait_log("unknown trigger file removed");
    assert!(daemon.log().contains("apply-catalogue"), "{}", daemon.log());
    assert_eq!(exported(&sb, "seatplan"), 1, "{}", daemon.log());
}

#[test]
fn stxd_trigger_asks_the_daemon_or_runs_now() {
    let sb = Sandbox::new();
    sb.ready();
    // No daemon yet: the trigger waits for it.
    let out = sb.stxd(&["trigger", "export-seatplan", "--link", "opera-tourism"]);
    out.expect_code(0);
    assert!(
        out.stdout().contains("runs when the daemon starts"),
        "{}",
        out.stdout()
    );
    assert!(control(&sb).join("export-seatplan").is_file());
    let mut daemon = Daemon::start(&sb);
    wait_until(
        "the waiting trigger's seat plan",
        || exported(&sb, "seatplan") == 1,
        || daemon.log(),
    );
    let out = sb.stxd(&["trigger", "export-catalogue", "--link", "opera-tourism"]);
    out.expect_code(0);
    assert!(
        out.stdout()
            .contains(&format!("running (pid {})", daemon.pid())),
        "{}",
        out.stdout()
    );
    wait_until(
        "the catalogue",
        || exported(&sb, "catalogue") == 1,
        || daemon.log(),
    );
    wait_until(
        "the trigger taken",
        || gone(&control(&sb).join("export-catalogue")),
        || daemon.log(),
    );
    // --now runs the job in the command, so never beside a daemon.
    let now_args = [
        "trigger",
        "export-catalogue",
        "--link",
        "opera-tourism",
        "--now",
    ];
    let refused = sb.stxd(&now_args);
    refused.expect_code(1);
    assert!(
        refused.stderr().contains("only when no daemon does"),
        "{}",
        refused.stderr()
    );
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(), Some(0));
    // Without one, it runs here, through the same job runner.
    let now = sb.stxd(&now_args);
    now.expect_code(0);
    assert!(now.stdout().contains("sequence 2"), "{}", now.stdout());
    // Usage errors: an unknown job, a job of the other side's server.
    let bad = sb.stxd(&["trigger", "reboot", "--link", "opera-tourism"]);
    bad.expect_code(2);
    assert!(bad.stderr().contains("export-seatplan"), "{}", bad.stderr());
    // An unknown link is a usage error too (exit 2, as `stxd status`), and
    // leaves no control folder behind.
    let bad = sb.stxd(&["trigger", "poll", "--link", "nowhere"]);
    bad.expect_code(2);
    assert!(!sb.path().join("var/state/control/nowhere").exists());
    assert!(
        bad.stderr().contains("not in the config"),
        "{}",
        bad.stderr()
    );
}

#[test]
fn an_apply_window_holds_the_catalogue_until_its_trigger() {
    let sb = Sandbox::new();
    // A window that opens on January 1st only: it does not fire during the test.
    add_schedules(&sb, &[("apply-catalogue", "0 3 1 1 *")]);
    sb.ready();
    sb.stxd(&["mapping", "import", "samples/tourism/mapping.csv"])
        .expect_code(0);
    let daemon = Daemon::start(&sb);
    let inbox = to_distributor(&sb);
    sb.stxd(&["export", "seatplan", "--link", "opera-tourism"])
        .expect_code(0);
    // Seat plans have no window: applied at once.
    wait_for_file(&inbox.join("done"), "seatplan", || daemon.log());
    sb.stxd(&["export", "catalogue", "--link", "opera-tourism"])
        .expect_code(0);
    daemon.wait_log("file held until its apply window");
    assert!(daemon.log().contains("apply-window"), "{}", daemon.log());
    assert_eq!(manifests(&inbox, "catalogue").len(), 1, "{}", daemon.log());
    assert!(manifests(&inbox.join("done"), "catalogue").is_empty());
    sb.stxd(&["trigger", "apply-catalogue", "--link", "opera-tourism"])
        .expect_code(0);
    wait_for_file(&inbox.join("done"), "catalogue", || daemon.log());
    // The move links into done/ before it unlinks from the inbox.
    wait_until_gone(&inbox, "catalogue", || daemon.log());
    assert_eq!(
        daemon
            .log()
            .matches("file held until its apply window")
            .count(),
        1,
        "{}",
        daemon.log()
    );
    // The products the catalogue created are there to validate.
    let list = sb.stxd(&["--json", "catalogue", "list", "--to-validate"]);
    list.expect_code(0);
    assert!(list.stdout().contains("TRAV-BIL"), "{}", list.stdout());
}

#[test]
fn the_contingent_job_sends_only_what_changed_since_its_last_export() {
    let sb = Sandbox::new();
    sb.first_use_done();
    let allocate = |performance: &str, seats: &str| {
        sb.stxd(&[
            "contingent",
            "allocate",
            "--link",
            "opera-tourism",
            "--performance",
            performance,
            "--seats",
            seats,
        ])
        .expect_code(0);
    };
    let job = || {
        sb.stxd(&[
            "--json",
            "trigger",
            "export-contingent",
            "--link",
            "opera-tourism",
            "--now",
        ])
    };
    allocate("1701", "PARTERRE:A:1-4");
    allocate("1702", "PARTERRE:B:1-4");
    job().expect_code(0);
    assert_eq!(exported(&sb, "contingent"), 1);
    // Nothing changed: a schedule firing again writes nothing; an answer,
    // not a refusal (exit 0).
    let again = job();
    again.expect_code(0);
    assert!(
        again.stdout().contains("nothing-to-send"),
        "{}",
        again.stdout()
    );
    assert_eq!(exported(&sb, "contingent"), 1);
    // One performance changed: only its snapshot goes.
    allocate("1702", "PARTERRE:C:1-2");
    let run = job();
    run.expect_code(0);
    let done: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(done["sequence"], 2, "{done:#}");
    let payload =
        std::fs::read_to_string(to_distributor(&sb).join("opera-tourism.CONTINGENT.00000002.csv"))
            .unwrap();
    assert!(payload.contains("\n1702;"), "{payload}");
    assert!(!payload.contains("\n1701;"), "{payload}");
    // `stxd export contingent` still sends every performance, by hand.
    sb.stxd(&["export", "contingent", "--link", "opera-tourism"])
        .expect_code(0);
    let all =
        std::fs::read_to_string(to_distributor(&sb).join("opera-tourism.CONTINGENT.00000003.csv"))
            .unwrap();
    assert!(all.contains("\n1701;") && all.contains("\n1702;"), "{all}");
}
