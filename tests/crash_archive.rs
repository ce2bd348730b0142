//! Crashes in the middle of archiving and of triggered jobs: the real `stxd`
//! killed with SIGKILL at a named failpoint (`STXD_FAILPOINT`) or, through
//! strace, at an exact system call, then run again normally. Every test
//! asserts the end state in the real folders and the real SQLite store: the
//! pair whole in `done/` (or in `error/` beside its first reason, or in
//! `parked/`), nothing left in the inbox, nothing applied twice, a taken
//! trigger's job run and its taken name gone. A payload whose read fails
//! (an I/O error injected through strace) is no crash and no bad file: it
//! stays in the inbox for the next run.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Instant;

use serde_json::Value;

use crate::drop_folders::{
    count, inbox, journal, manager_ready, manifests, opera, sample_sales, sealed,
};
use crate::schedules::{add_schedules, control, exported, to_distributor, wait_until};
use crate::util::{DEADLINE, Daemon, POLL, Sandbox, Tmpfs, copy_tree};

const MANIFEST: &str = "opera-tourism.SALES.00000001.stx";
const PAYLOAD: &str = "opera-tourism.SALES.00000001.csv";

/// A manager ready to book the sample SALES file, sealed into its inbox.
fn sales_waiting() -> Sandbox {
    let sb = Sandbox::new();
    manager_ready(&sb);
    let (payload, records) = sample_sales();
    sealed(&sb, &inbox(&sb), 1, &payload, records);
    sb
}

/// [`sales_waiting`] with one payload byte flipped: rejected for its digest.
fn tampered_sales_waiting() -> Sandbox {
    let sb = sales_waiting();
    let path = inbox(&sb).join(PAYLOAD);
    let mut bytes = std::fs::read(&path).expect("payload");
    let i = bytes.len() / 2;
    bytes[i] ^= 0x20;
    std::fs::write(&path, bytes).expect("tamper");
    sb
}

/// Runs `cmd` to its end (killed past the deadline); its status and stderr.
fn run_to_end(mut cmd: Command) -> (ExitStatus, String) {
    let err = tempfile::NamedTempFile::new().expect("stderr file");
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::from(err.reopen().expect("reopen")))
        .spawn()
        .expect("spawn");
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if start.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "still running after {DEADLINE:?}:\n{}",
                std::fs::read_to_string(err.path()).unwrap_or_default()
            );
        }
        std::thread::sleep(POLL);
    };
    (
        status,
        std::fs::read_to_string(err.path()).unwrap_or_default(),
    )
}

/// `stxd ARGS…` in the sandbox, as [`Sandbox::stxd`] runs it, plus `env`.
fn stxd(sb: &Sandbox, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stxd"));
    cmd.args(args)
        .current_dir(sb.path())
        .env("STXD_CONFIG", "config/stxd.toml")
        .env("STXD_LOG", "info")
        .env("NO_COLOR", "1")
        .envs(env.iter().copied());
    cmd
}

/// Runs `stxd ARGS…` with the failpoint `point` armed and asserts it died
/// there, by SIGKILL.
#[track_caller]
fn killed_at(sb: &Sandbox, point: &str, args: &[&str]) {
    let (status, err) = run_to_end(stxd(sb, args, &[("STXD_FAILPOINT", point)]));
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}:\n{err}");
    assert!(err.contains(&format!("failpoint {point}")), "{err}");
}

/// `stxd --json process`: its exit code and its handled files.
fn process_json(sb: &Sandbox) -> (i32, Value) {
    let run = sb.stxd(&["--json", "process"]);
    let out = if run.stdout().trim().starts_with('[') {
        serde_json::from_str(&run.stdout()).expect("json")
    } else {
        Value::Null
    };
    (run.code(), out)
}

/// Every entry of `dir` (files and folders), sorted; none when missing.
fn entries(dir: &Path) -> Vec<String> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = read
        .map(|e| e.expect("entry").file_name().into_string().expect("name"))
        .collect();
    names.sort();
    names
}

/// The inbox's own files (its subfolders aside).
fn inbox_files(sb: &Sandbox) -> Vec<String> {
    entries(&inbox(sb))
        .into_iter()
        .filter(|n| !inbox(sb).join(n).is_dir())
        .collect()
}

/// The sample SALES file applied exactly once and archived whole.
#[track_caller]
fn applied_once(sb: &Sandbox) {
    let inbox = inbox(sb);
    assert_eq!(inbox_files(sb), Vec::<String>::new(), "inbox emptied");
    assert_eq!(entries(&inbox.join("done")), [PAYLOAD, MANIFEST]);
    assert_eq!(entries(&inbox.join("error")), Vec::<String>::new());
    assert_eq!(entries(&inbox.join("parked")), Vec::<String>::new());
    assert_eq!(journal(sb), vec![(1, "applied".to_owned())]);
    let conn = opera(sb);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM sales_line WHERE status = 'booked'"
        ),
        4,
        "booked once"
    );
    assert_eq!(count(&conn, "SELECT count(*) FROM ticket"), 3);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM run WHERE kind = 'import-sales'"
        ),
        1,
        "one run: applied once, never refused"
    );
}

/// The tampered SALES file in `error/` beside its first reason, nothing
/// applied, its rejection logged once.
#[track_caller]
fn rejected_once(sb: &Sandbox) {
    rejected(sb, 1..=1);
}

/// The tampered SALES file in `error/` beside its first reason, nothing
/// applied, its rejection logged `runs` times: a kill after the failed run
/// is committed but before the reason is written makes the next run refuse
/// the file again, and log it again.
#[track_caller]
fn rejected(sb: &Sandbox, runs: std::ops::RangeInclusive<i64>) {
    let error = inbox(sb).join("error");
    assert_eq!(inbox_files(sb), Vec::<String>::new(), "inbox emptied");
    assert_eq!(
        entries(&error),
        [PAYLOAD, MANIFEST, &format!("{MANIFEST}.reason")]
    );
    let reason = std::fs::read_to_string(error.join(format!("{MANIFEST}.reason"))).expect("reason");
    assert!(reason.contains("code: envelope-digest"), "{reason}");
    let conn = opera(sb);
    assert_eq!(count(&conn, "SELECT count(*) FROM sales_line"), 0);
    let failed = count(
        &conn,
        "SELECT count(*) FROM run WHERE kind = 'import-sales' AND status = 'failed'",
    );
    assert!(
        runs.contains(&failed),
        "{failed} failed runs, expected {runs:?}"
    );
    assert_eq!(entries(&inbox(sb).join("done")), Vec::<String>::new());
}

#[test]
fn a_kill_after_the_payload_moved_into_done_is_finished_by_the_next_run() {
    let sb = sales_waiting();
    killed_at(&sb, "archive.payload-moved", &["process"]);
    // Committed; the payload in done/, the manifest still in the inbox.
    assert_eq!(journal(&sb), vec![(1, "applied".to_owned())]);
    assert_eq!(inbox_files(&sb), [MANIFEST]);
    assert_eq!(entries(&inbox(&sb).join("done")), [PAYLOAD]);
    let (code, out) = process_json(&sb);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out[0]["state"], "already-applied", "{out}");
    applied_once(&sb);
}

#[test]
fn a_kill_after_the_manifest_moved_leaves_nothing_to_do() {
    let sb = sales_waiting();
    killed_at(&sb, "archive.manifest-moved", &["process"]);
    let run = sb.stxd(&["process"]);
    run.expect_code(0);
    assert!(
        run.stdout().contains("nothing to process"),
        "{}",
        run.stdout()
    );
    applied_once(&sb);
}

#[test]
fn a_kill_right_after_a_cut_move_was_finished_leaves_nothing_to_do() {
    let sb = sales_waiting();
    killed_at(&sb, "archive.payload-moved", &["process"]);
    killed_at(&sb, "archive.recovered", &["process"]);
    applied_once(&sb);
    sb.stxd(&["process"]).expect_code(0);
    applied_once(&sb);
}

#[test]
fn a_rejection_killed_after_its_reason_was_written_ends_in_error_with_that_reason() {
    let sb = tampered_sales_waiting();
    killed_at(&sb, "archive.reason-written", &["process"]);
    // The reason first, before anything moved.
    assert_eq!(inbox_files(&sb), [PAYLOAD, MANIFEST]);
    assert_eq!(
        entries(&inbox(&sb).join("error")),
        [format!("{MANIFEST}.reason")]
    );
    let (code, out) = process_json(&sb);
    assert_eq!(code, 1, "{out}");
    assert_eq!(out[0]["state"], "rejected", "{out}");
    assert_eq!(out[0]["code"], "rejected-earlier", "{out}");
    rejected_once(&sb);
}

#[test]
fn a_rejection_killed_after_its_payload_moved_keeps_its_first_reason() {
    let sb = tampered_sales_waiting();
    killed_at(&sb, "archive.payload-moved", &["process"]);
    assert_eq!(inbox_files(&sb), [MANIFEST]);
    // Claimed again, the manifest alone would be refused for its missing
    // payload: the reason written before the move decides instead.
    let (code, out) = process_json(&sb);
    assert_eq!(code, 1, "{out}");
    rejected_once(&sb);
}

/// The state of the seat plan file in the distributor's journal.
fn seatplan_state(sb: &Sandbox) -> Vec<String> {
    let conn = rusqlite::Connection::open_with_flags(
        sb.path().join("var/state/TOURISM.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open TOURISM");
    let mut stmt = conn
        .prepare("SELECT state FROM file_journal WHERE kind = 'SEATPLAN' AND direction = 'in'")
        .expect("prepare");
    stmt.query_map([], |r| r.get(0))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

const SEATPLAN: [&str; 2] = [
    "opera-tourism.SEATPLAN.00000001.stx",
    "opera-tourism.SEATPLAN.00000001.xml",
];

/// A seat plan exported to the distributor, whose mappings are not filled:
/// it parks.
fn seatplan_waiting() -> Sandbox {
    let sb = Sandbox::new();
    sb.ready();
    sb.stxd(&["export", "seatplan", "--link", "opera-tourism"])
        .expect_code(0);
    sb
}

/// The parked seat plan resumes once its mappings are filled, into done/.
#[track_caller]
fn resumes_into_done(sb: &Sandbox) {
    sb.stxd(&["mapping", "import", "samples/tourism/mapping.csv"])
        .expect_code(0);
    sb.stxd(&["resume"]).expect_code(0);
    let inbox = to_distributor(sb);
    assert_eq!(entries(&inbox.join("done")), [SEATPLAN[0], SEATPLAN[1]]);
    assert_eq!(entries(&inbox.join("parked")), Vec::<String>::new());
    assert!(manifests(&inbox).is_empty());
    assert_eq!(entries(&inbox.join("error")), Vec::<String>::new());
    assert_eq!(seatplan_state(sb), ["applied"]);
}

#[test]
fn a_move_into_parked_cut_by_a_kill_is_finished_and_the_file_resumes_later() {
    let sb = seatplan_waiting();
    killed_at(&sb, "archive.payload-moved", &["process"]);
    let inbox = to_distributor(&sb);
    assert_eq!(manifests(&inbox), [SEATPLAN[0]]);
    assert_eq!(entries(&inbox.join("parked")), [SEATPLAN[1]]);
    let (code, out) = process_json(&sb);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out[0]["state"], "parked", "{out}");
    assert!(manifests(&inbox).is_empty());
    assert_eq!(entries(&inbox.join("parked")), SEATPLAN);
    assert_eq!(seatplan_state(&sb), ["parked"]);
    resumes_into_done(&sb);
}

/// The sample SALES payload's `nth` read fails with EIO (strace): 1 is
/// the verification's first read, 3 the parse's (the small payload is read
/// in one chunk, then its end, by each). Neither rejects the file: it stays
/// in the inbox, nothing is applied or logged as refused, and the next run
/// applies it once.
#[test]
fn a_payload_that_cannot_be_read_now_stays_in_the_inbox_and_the_next_run_applies_it() {
    for (nth, stage, at) in [(1, "verification", "byte 0"), (3, "parse", "line 1")] {
        let sb = sales_waiting();
        let payload = inbox(&sb).join(PAYLOAD).display().to_string();
        let inject = format!("inject=read:error=EIO:when={nth}");
        let options = [
            "-qq",
            "-o",
            "/dev/null",
            "-P",
            &payload,
            "-e",
            "trace=read",
            "-e",
            &inject,
        ];
        let out = under_strace(&sb, &options, &["process"])
            .output()
            .expect("run strace");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            said.contains("retry: not processed now, will be retried")
                && said.contains(&format!("{at}: read failed: Input/output error")),
            "{stage}: {:?}: {said}",
            out.status
        );
        assert_ne!(out.status.code(), Some(0), "{stage}: {said}");
        assert_eq!(
            inbox_files(&sb),
            [PAYLOAD, MANIFEST],
            "{stage}: left in place"
        );
        assert_eq!(entries(&inbox(&sb).join("error")), Vec::<String>::new());
        assert_eq!(journal(&sb), Vec::<(i64, String)>::new(), "{stage}");
        let conn = opera(&sb);
        assert_eq!(count(&conn, "SELECT count(*) FROM sales_line"), 0);
        assert_eq!(
            count(
                &conn,
                "SELECT count(*) FROM run WHERE kind = 'import-sales'"
            ),
            0,
            "{stage}: no run logged for a file not read"
        );
        sb.stxd(&["process"]).expect_code(0);
        applied_once(&sb);
    }
}

/// `stxd ARGS…` in the sandbox under `strace -f OPTIONS…`. strace is
/// required (CI installs it): a missing one fails the test, saying so.
fn under_strace(sb: &Sandbox, options: &[&str], args: &[&str]) -> Command {
    const STRACE: &str = "/usr/bin/strace";
    assert!(
        Path::new(STRACE).is_file(),
        "{STRACE} is missing: these tests kill stxd at exact system calls with strace; install it (apt-get install strace), as CI does"
    );
    let mut cmd = Command::new(STRACE);
    cmd.arg("-f")
        .args(options)
        .arg(env!("CARGO_BIN_EXE_stxd"))
        .args(args)
        .current_dir(sb.path())
        .env("STXD_CONFIG", "config/stxd.toml")
        .env("STXD_LOG", "warn");
    cmd
}

/// `stxd ARGS…` killed by SIGKILL on entry to its `n`-th call of
/// `syscall`; its status and stderr.
fn killed_at_call(sb: &Sandbox, syscall: &str, n: usize, args: &[&str]) -> (ExitStatus, String) {
    let inject = format!("inject={syscall}:signal=KILL:when={n}");
    run_to_end(under_strace(sb, &["-o", "/dev/null", "-e", &inject], args))
}

/// How many calls of each of `syscalls` `stxd ARGS…` makes (traced on a
/// copy of `sb`, which is left as it was).
fn calls(sb: &Sandbox, syscalls: &[&str], args: &[&str]) -> Vec<usize> {
    let copy = copy_of(sb);
    let trace = copy.path().join("trace");
    let (trace_arg, filter) = (
        trace.display().to_string(),
        format!("trace={}", syscalls.join(",")),
    );
    let (status, err) = run_to_end(under_strace(
        &copy,
        &["-o", &trace_arg, "-e", &filter],
        args,
    ));
    assert!(status.code().is_some(), "{status:?}: {err}");
    let text = std::fs::read_to_string(&trace).expect("trace");
    syscalls
        .iter()
        .map(|s| {
            // One line per call (an interrupted call's "resumed" line
            // does not repeat its name followed by a parenthesis).
            text.lines()
                .filter(|l| l.contains(&format!(" {s}(")))
                .count()
        })
        .collect()
}

/// A fresh sandbox holding a copy of `sb`'s state and exchange folders.
fn copy_of(sb: &Sandbox) -> Sandbox {
    let copy = Sandbox::new();
    copy_tree(&sb.path().join("var"), &copy.path().join("var"));
    copy
}

/// Kills `stxd ARGS…` at every call of each syscall in turn (each on a
/// fresh copy of `template`), runs `then` normally, and checks the end
/// state with `settled`.
fn kill_at_every_call(
    template: &Sandbox,
    syscalls: &[&str],
    args: &[&str],
    then: &[&str],
    settled: impl Fn(&Sandbox),
) {
    for (syscall, n_calls) in syscalls.iter().zip(calls(template, syscalls, args)) {
        assert!(n_calls > 0, "{syscall}: never called");
        for n in 1..=n_calls {
            let sb = copy_of(template);
            let (status, err) = killed_at_call(&sb, syscall, n, args);
            assert_eq!(
                status.signal(),
                Some(libc::SIGKILL),
                "{syscall} call {n} of {n_calls}: {status:?}\n{err}"
            );
            sb.stxd(then);
            eprintln!("{syscall} call {n} of {n_calls}: killed, then settled");
            settled(&sb);
        }
    }
}

#[test]
fn an_apply_killed_at_any_link_unlink_or_fsync_is_applied_once_and_archived_whole() {
    let template = sales_waiting();
    kill_at_every_call(
        &template,
        &["linkat", "unlink", "fsync"],
        &["process"],
        &["process"],
        applied_once,
    );
}

#[test]
fn a_rejection_killed_at_any_link_unlink_or_fsync_ends_in_error_with_its_reason() {
    let template = tampered_sales_waiting();
    kill_at_every_call(
        &template,
        &["linkat", "unlink", "fsync"],
        &["process"],
        &["process"],
        |sb| rejected(sb, 1..=2),
    );
}

#[test]
fn a_move_into_parked_killed_before_the_inbox_name_is_removed_is_finished_from_parked() {
    // The second unlink is the manifest's in the inbox: at that instant
    // the manifest has a name in the inbox and one in parked/ (one inode).
    let sb = seatplan_waiting();
    let (status, err) = killed_at_call(&sb, "unlink", 2, &["process"]);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}\n{err}");
    let inbox = to_distributor(&sb);
    assert_eq!(manifests(&inbox), [SEATPLAN[0]]);
    assert_eq!(entries(&inbox.join("parked")), SEATPLAN);
    // `stxd resume` lists parked/ only: a manifest with two links is not
    // refused there as a hard link, its move is finished.
    let run = sb.stxd(&["--json", "resume"]);
    run.expect_code(0);
    let out: Value = serde_json::from_str(&run.stdout()).expect("json");
    assert_eq!(out[0]["state"], "parked", "{out}");
    assert!(manifests(&inbox).is_empty());
    assert_eq!(entries(&inbox.join("parked")), SEATPLAN);
    assert_eq!(entries(&inbox.join("error")), Vec::<String>::new());
    resumes_into_done(&sb);
}

#[test]
fn a_move_cut_in_an_apply_window_is_finished_by_the_next_start_not_the_next_window() {
    let sb = sales_waiting();
    // The window opens once a year: the file applies only when triggered.
    add_schedules(&sb, &[("apply-sales", "0 3 1 1 *")]);
    killed_at(
        &sb,
        "archive.payload-moved",
        &["trigger", "apply-sales", "--link", "opera-tourism", "--now"],
    );
    assert_eq!(inbox_files(&sb), [MANIFEST]);
    let mut daemon = Daemon::start(&sb);
    let done = inbox(&sb).join("done");
    wait_until(
        "the move finished",
        || entries(&done) == [PAYLOAD, MANIFEST],
        || daemon.log(),
    );
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(), Some(0), "{}", daemon.log());
    assert!(
        !daemon.log().contains("file held until its apply window"),
        "{}",
        daemon.log()
    );
    applied_once(&sb);
}

#[test]
fn a_triggered_job_killed_once_taken_runs_after_the_restart() {
    let sb = Sandbox::new();
    sb.ready();
    sb.stxd(&["trigger", "export-seatplan", "--link", "opera-tourism"])
        .expect_code(0);
    killed_at(&sb, "trigger.taken", &["run"]);
    // Taken durably, not run: the trigger under its private name only.
    assert_eq!(entries(&control(&sb)), [".taken.export-seatplan"]);
    assert_eq!(exported(&sb, "seatplan"), 0);
    let mut daemon = Daemon::start(&sb);
    wait_until(
        "the taken trigger's job run",
        || exported(&sb, "seatplan") == 1 && entries(&control(&sb)).is_empty(),
        || daemon.log(),
    );
    daemon.wait_log("taken trigger found");
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(), Some(0), "{}", daemon.log());
    assert_eq!(exported(&sb, "seatplan"), 1, "run once");
    assert!(entries(&control(&sb)).is_empty());
}

#[test]
fn a_triggered_job_killed_after_it_ran_runs_again_harmlessly_and_its_trigger_goes() {
    let sb = Sandbox::new();
    manager_ready(&sb);
    sb.stxd(&["trigger", "export-contingent", "--link", "opera-tourism"])
        .expect_code(0);
    killed_at(&sb, "trigger.job-done", &["run"]);
    assert_eq!(exported(&sb, "contingent"), 1, "the job ran");
    assert_eq!(entries(&control(&sb)), [".taken.export-contingent"]);
    let mut daemon = Daemon::start_with(&sb, "info,stxd::daemon=debug");
    wait_until(
        "the taken trigger removed",
        || entries(&control(&sb)).is_empty(),
        || daemon.log(),
    );
    daemon.wait_log("taken trigger found");
    daemon.wait_log("nothing new to export");
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(), Some(0), "{}", daemon.log());
    assert_eq!(exported(&sb, "contingent"), 1, "nothing exported twice");
}

/// A move due after an apply whose process is alive is that process's to
/// finish: a listing beside it (`stxd process`, the daemon's) holds the
/// file (`taken`) instead of "finishing a move a crash cut". The live
/// process is stood in for by this test holding the lock every apply holds
/// until its move (`stxd::store::in_hand`), over an apply killed between
/// its two moves; once the lock is free, the next listing finishes it.
#[test]
fn a_listing_leaves_an_archive_move_to_its_live_process() {
    let sb = sales_waiting();
    killed_at(&sb, "archive.payload-moved", &["process"]);
    let live = stxd::store::in_hand::in_hand(&sb.path().join("var/state/OPERA.sqlite"));
    let (code, out) = process_json(&sb);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out[0]["state"], "held", "{out}");
    assert_eq!(
        inbox_files(&sb),
        [MANIFEST],
        "the move is left to its process"
    );
    assert_eq!(entries(&inbox(&sb).join("done")), [PAYLOAD]);
    drop(live);
    let (code, out) = process_json(&sb);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out[0]["state"], "already-applied", "{out}");
    applied_once(&sb);
}

/// SALES file 2 held in the inbox behind a missing file 1 (a one-shot
/// `process` leaves it there), then file 1 arriving: the next `process`
/// applies 1, then 2. File 2 sells the two seats file 1 leaves free.
fn held_behind_a_missing_sequence() -> Sandbox {
    let sb = Sandbox::new();
    manager_ready(&sb);
    let second = format!(
        "{}5;SALE;2026-12-01T12:00:00Z;T-000003;;1701;3301;A;3;;2001;1201;1301;8500;EUR;1101;\n\
         6;SALE;2026-12-01T12:00:00Z;T-000003;;1701;3301;A;4;;2001;1201;1301;8500;EUR;1101;\n",
        crate::drop_folders::SALES_HEADER
    );
    sealed(&sb, &inbox(&sb), 2, second.as_bytes(), 2);
    let (code, out) = process_json(&sb);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out[0]["state"], "held", "{out}");
    assert_eq!(journal(&sb), Vec::<(i64, String)>::new());
    let (payload, records) = sample_sales();
    sealed(&sb, &inbox(&sb), 1, &payload, records);
    sb
}

#[test]
fn a_held_file_and_the_one_it_waits_for_killed_at_any_link_unlink_or_fsync_are_applied_once_in_order()
 {
    let template = held_behind_a_missing_sequence();
    kill_at_every_call(
        &template,
        &["linkat", "unlink", "fsync"],
        &["process"],
        &["process"],
        |sb| {
            assert_eq!(inbox_files(sb), Vec::<String>::new(), "inbox emptied");
            assert_eq!(manifests(&inbox(sb).join("done")).len(), 2);
            assert_eq!(entries(&inbox(sb).join("error")), Vec::<String>::new());
            assert_eq!(
                journal(sb),
                [(1, "applied".to_owned()), (2, "applied".to_owned())]
            );
            let conn = opera(sb);
            assert_eq!(
                count(
                    &conn,
                    "SELECT count(*) FROM sales_line WHERE status = 'booked'"
                ),
                6,
                "each line booked once"
            );
            assert_eq!(count(&conn, "SELECT count(*) FROM ticket"), 5);
            assert_eq!(
                count(
                    &conn,
                    "SELECT count(*) FROM run WHERE kind = 'import-sales'"
                ),
                2,
                "each file applied by one run"
            );
        },
    );
}

/// The inbox's disk full when a file is rejected (its `.reason` cannot be
/// written): the file is neither lost nor half moved: it stays in the
/// inbox, not processed now, and nothing is left in `error/`; once space
/// is freed it is rejected whole, its reason beside it.
#[test]
fn a_file_rejected_on_a_full_disk_stays_in_the_inbox_until_its_reason_can_be_written() {
    let sb = Sandbox::new();
    let inbox = inbox(&sb);
    std::fs::create_dir_all(&inbox).expect("inbox");
    let disk = Tmpfs::mount(&inbox, "1m");
    manager_ready(&sb);
    let (payload, records) = sample_sales();
    sealed(&sb, &inbox, 1, &payload, records);
    let path = inbox.join(PAYLOAD);
    let mut bytes = std::fs::read(&path).expect("payload");
    let i = bytes.len() / 2;
    bytes[i] ^= 0x20;
    std::fs::write(&path, bytes).expect("tamper");
    // A dot name: no listing takes it.
    let filler = inbox.join(".filler");
    let free = usize::try_from(disk.free()).expect("size");
    std::fs::write(&filler, vec![0u8; free]).expect("fill the disk");
    assert_eq!(disk.free(), 0);

    let run = sb.stxd(&["process"]);
    let said = run.stdout();
    assert_eq!(run.code(), 3, "a runtime failure: {said}");
    let part = inbox.join("error").join(format!(".{MANIFEST}.reason.part"));
    assert!(
        said.contains("not processed now, will be retried")
            && said.contains(&format!(
                "cannot write {}: No space left on device",
                part.display()
            )),
        "{said}"
    );
    assert_eq!(inbox_files(&sb), [".filler", PAYLOAD, MANIFEST], "{said}");
    assert_eq!(
        entries(&inbox.join("error")),
        Vec::<String>::new(),
        "{said}"
    );

    std::fs::remove_file(&filler).expect("free the disk");
    let (code, out) = process_json(&sb);
    assert_eq!(code, 1, "{out}");
    assert_eq!(out[0]["state"], "rejected", "{out}");
    let reason = format!("{MANIFEST}.reason");
    assert_eq!(
        entries(&inbox.join("error")),
        [PAYLOAD, MANIFEST, reason.as_str()]
    );
    assert_eq!(inbox_files(&sb), Vec::<String>::new());
    assert_eq!(journal(&sb), Vec::<(i64, String)>::new());
}
