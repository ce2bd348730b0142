//! Stray, foreign and misrouted files in the inboxes (set aside into
//! `quarantine/`, never stopping the genuine files), a manifest landing
//! before its payload (`[daemon] payload_grace_seconds`), and `stxd retry`
//! of a refused file once its cause is fixed. The real binary over real
//! folders and stores.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::Value;
use stxd::format::Kind;

use crate::drop_folders::{inbox, journal, manager_ready, manifests, sealed};
use crate::util::{Sandbox, copy_tree, seal};

const SALES_HEADER: &str = "line;operation;time;order;refund_of;performance;block;row;seat;zone;seat_category;tariff_type;audience_subcategory;amount;currency;vat_code;contingent_version\n";

/// SALES file `seq`: one sale of seat 3301 A1 of 1701 and its refund (it
/// books whatever the files before it did), its order unique to `seq`.
fn sale_and_refund(seq: u64) -> (Vec<u8>, u64) {
    let mut out = SALES_HEADER.as_bytes().to_vec();
    writeln!(
        out,
        "1;SALE;2026-12-01T10:15:00Z;S-{seq:07};;1701;3301;A;1;;2001;1201;1301;8500;EUR;1101;"
    )
    .expect("write");
    writeln!(
        out,
        "2;REFUND;2026-12-01T11:00:00Z;S-{seq:07};1;1701;3301;A;1;;2001;1201;1301;8500;EUR;1101;"
    )
    .expect("write");
    (out, 2)
}

/// Seals SALES file `seq` straight into the manager's inbox.
fn genuine(sb: &Sandbox, seq: u64) -> (PathBuf, PathBuf) {
    let (payload, records) = sale_and_refund(seq);
    sealed(sb, &inbox(sb), seq, &payload, records)
}

/// Sets a `[daemon]` key of the sandbox's config.
fn daemon_setting(sb: &Sandbox, line: &str) {
    let path = sb.path().join("config/stxd.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    let set = text.replacen("[daemon]\n", &format!("[daemon]\n{line}\n"), 1);
    assert_ne!(set, text, "the demo config has a [daemon] table");
    std::fs::write(&path, set).expect("write config");
}

fn quarantine(sb: &Sandbox) -> PathBuf {
    inbox(sb).join("quarantine")
}

fn error(sb: &Sandbox) -> PathBuf {
    inbox(sb).join("error")
}

fn names(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

/// Moves the seat plan pair waiting in `from` into `to`, as a careless
/// operator would.
#[allow(
    clippy::disallowed_methods,
    reason = "a person moving a pair by hand into the wrong folder: what stxd must cope with"
)]
fn misroute_seatplan(from: &Path, to: &Path) {
    for name in names(from) {
        if name.contains(".SEATPLAN.") {
            std::fs::rename(from.join(&name), to.join(&name)).expect("misroute");
        }
    }
}

fn status_json(sb: &Sandbox) -> Value {
    let run = sb.stxd(&["--json", "status"]);
    run.expect_code(0);
    serde_json::from_str(&run.stdout()).expect("status JSON")
}

/// The manager side's entry of `stxd status --json`.
fn manager_status(status: &Value) -> &Value {
    status["links"]
        .as_array()
        .expect("links")
        .iter()
        .find(|l| l["side"] == "manager")
        .expect("manager side")
}

/// A stray (an empty manifest of a link nobody has, sequence 0), a foreign
/// file (sealed for another link, with its payload) and a misrouted one (a
/// seat plan moved into the manager's inbox), dropped among 100 genuine
/// SALES files.
fn drop_the_three(sb: &Sandbox) {
    let inbox = inbox(sb);
    std::fs::write(inbox.join("zz.SALES.00000000.stx"), b"").expect("stray");
    let elsewhere = sb.path().join("elsewhere");
    let (payload, records) = sale_and_refund(1);
    let m = seal(
        &elsewhere,
        &sb.demo_secret(),
        Kind::Sales,
        1,
        &payload,
        records,
    );
    // Named for another link (the envelope's link is what the name says).
    for (from, to) in [
        (
            m.manifest_name(),
            "opera-other.SALES.00000001.stx".to_owned(),
        ),
        (
            m.payload.clone(),
            "opera-other.SALES.00000001.csv".to_owned(),
        ),
    ] {
        std::fs::copy(elsewhere.join(from), inbox.join(to)).expect("foreign");
    }
    // The seat plan the manager exported, moved into the manager's inbox.
    sb.stxd(&["export", "seatplan", "--link", "opera-tourism"])
        .expect_code(0);
    let to_distributor = sb.path().join("var/exchange/opera-tourism/to-distributor");
    misroute_seatplan(&to_distributor, &inbox);
    assert_eq!(
        manifests(&inbox)
            .iter()
            .filter(|n| n.contains("SEATPLAN"))
            .count(),
        1
    );
}

#[test]
fn a_stray_a_foreign_and_a_misrouted_file_among_100_genuine_ones_stop_nothing() {
    let sb = Sandbox::new();
    manager_ready(&sb);
    for seq in 1..=100 {
        genuine(&sb, seq);
    }
    drop_the_three(&sb);

    let run = sb.stxd(&["--json", "process"]);
    run.expect_code(0);
    let handled: Value = serde_json::from_str(&run.stdout()).expect("process JSON");
    let states: Vec<&str> = handled
        .as_array()
        .expect("handled")
        .iter()
        .map(|h| h["state"].as_str().expect("state"))
        .collect();
    assert_eq!(states.iter().filter(|s| **s == "applied").count(), 100);
    assert_eq!(
        states.iter().filter(|s| **s == "quarantined").count(),
        3,
        "{handled:#}"
    );

    // The 100 applied, in sequence order.
    let expected: Vec<(i64, String)> = (1..=100).map(|s| (s, "applied".to_owned())).collect();
    assert_eq!(journal(&sb), expected);
    assert_eq!(manifests(&inbox(&sb)), Vec::<String>::new());
    assert_eq!(manifests(&inbox(&sb).join("done")).len(), 100);
    // The distributor applied no seat plan.
    let tourism = rusqlite::Connection::open_with_flags(
        sb.path().join("var/state/TOURISM.sqlite"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("TOURISM store");
    let seatplans: i64 = tourism
        .query_row(
            "SELECT count(*) FROM file_journal WHERE kind = 'SEATPLAN' AND direction = 'in'",
            [],
            |r| r.get(0),
        )
        .expect("journal");
    assert_eq!(seatplans, 0);

    // Set aside whole, each with its reason.
    let q = names(&quarantine(&sb));
    for name in [
        "zz.SALES.00000000.stx",
        "zz.SALES.00000000.stx.reason",
        "opera-other.SALES.00000001.stx",
        "opera-other.SALES.00000001.csv",
        "opera-other.SALES.00000001.stx.reason",
        "opera-tourism.SEATPLAN.00000001.stx",
        "opera-tourism.SEATPLAN.00000001.xml",
        "opera-tourism.SEATPLAN.00000001.stx.reason",
    ] {
        assert!(q.contains(&name.to_owned()), "{name} not in {q:?}");
    }

    // stxd status lists them with their reasons, in JSON and in words.
    let status = status_json(&sb);
    let set_aside = manager_status(&status)["quarantine"]
        .as_array()
        .expect("quarantine list")
        .clone();
    let by_file = |file: &str| {
        set_aside
            .iter()
            .find(|q| q["file"] == file)
            .unwrap_or_else(|| panic!("{file} not listed: {set_aside:?}"))
            .clone()
    };
    assert_eq!(set_aside.len(), 3, "{set_aside:?}");
    // Never "nothing to do" while files sit in quarantine/.
    assert_eq!(manager_status(&status)["attention"], 3, "{status:#}");
    let stray = by_file("zz.SALES.00000000.stx");
    assert_eq!(stray["code"], "unknown-link");
    assert!(
        stray["reason"].as_str().expect("reason").contains("\"zz\""),
        "{stray}"
    );
    assert_eq!(
        by_file("opera-other.SALES.00000001.stx")["code"],
        "unknown-link"
    );
    let misrouted = by_file("opera-tourism.SEATPLAN.00000001.stx");
    assert_eq!(misrouted["code"], "wrong-folder");
    assert!(
        misrouted["reason"]
            .as_str()
            .expect("reason")
            .contains("SEATPLAN files go to the distributor"),
        "{misrouted}"
    );
    let words = sb.stxd(&["status"]);
    words.expect_code(0);
    let out = words.stdout();
    assert!(out.contains("quarantine: 3 files set aside"), "{out}");
    assert!(
        out.contains(
            "needs attention: 3 files (0 in error/, 3 in quarantine/, 0 held in the inbox)"
        ),
        "{out}"
    );
    assert!(
        out.contains("quarantine/opera-tourism.SEATPLAN.00000001.stx  wrong-folder: "),
        "{out}"
    );
    assert!(
        out.contains("quarantine/zz.SALES.00000000.stx  unknown-link: "),
        "{out}"
    );
}

#[test]
fn process_exits_by_the_genuine_files_not_by_a_stray() {
    let sb = Sandbox::new();
    manager_ready(&sb);
    let inbox = inbox(&sb);
    std::fs::create_dir_all(&inbox).expect("inbox");
    // A stray alone: set aside, exit 0.
    std::fs::write(inbox.join("zz.SALES.00000000.stx"), b"").expect("stray");
    let run = sb.stxd(&["process"]);
    run.expect_code(0);
    assert!(run.stdout().contains("quarantined"), "{}", run.stdout());
    assert!(
        !run.stderr().contains("is not in the config"),
        "{}",
        run.stderr()
    );
    // A stray beside a genuine file that applies: exit 0, the file applied.
    std::fs::write(inbox.join("zz.SALES.00000001.stx"), b"").expect("stray");
    genuine(&sb, 1);
    sb.stxd(&["process"]).expect_code(0);
    assert_eq!(journal(&sb), vec![(1, "applied".to_owned())]);
    // A stray beside a genuine file that is refused (its payload altered):
    // exit 1, for the genuine file.
    std::fs::write(inbox.join("zz.SALES.00000002.stx"), b"").expect("stray");
    let (_, payload) = genuine(&sb, 2);
    let mut bytes = std::fs::read(&payload).expect("payload");
    bytes[SALES_HEADER.len()] = b'9';
    std::fs::write(&payload, bytes).expect("alter");
    sb.stxd(&["process"]).expect_code(1);
    assert_eq!(manifests(&error(&sb)), ["opera-tourism.SALES.00000002.stx"]);
    assert_eq!(
        manifests(&quarantine(&sb)),
        [
            "zz.SALES.00000000.stx",
            "zz.SALES.00000001.stx",
            "zz.SALES.00000002.stx"
        ]
    );
}

#[test]
fn a_seat_plan_dropped_into_to_manager_is_quarantined_not_applied() {
    let sb = Sandbox::new();
    sb.ready();
    sb.stxd(&["export", "seatplan", "--link", "opera-tourism"])
        .expect_code(0);
    let to_distributor = sb.path().join("var/exchange/opera-tourism/to-distributor");
    let inbox = inbox(&sb);
    std::fs::create_dir_all(&inbox).expect("inbox");
    misroute_seatplan(&to_distributor, &inbox);
    let run = sb.stxd(&["process", "--link", "opera-tourism"]);
    run.expect_code(0);
    assert!(run.stdout().contains("quarantined"), "{}", run.stdout());
    assert_eq!(
        manifests(&quarantine(&sb)),
        ["opera-tourism.SEATPLAN.00000001.stx"]
    );
    assert!(manifests(&to_distributor.join("done")).is_empty());
    let seatplan = sb.stxd(&["--json", "status"]);
    let status: Value = serde_json::from_str(&seatplan.stdout()).expect("status");
    let distributor = status["links"]
        .as_array()
        .expect("links")
        .iter()
        .find(|l| l["side"] == "distributor")
        .expect("distributor side");
    let last_in = distributor["last_in"].as_array().expect("last_in");
    assert!(
        last_in.iter().all(|l| l["file"].is_null()),
        "nothing applied to the distributor: {last_in:?}"
    );
}

#[test]
fn a_manifest_first_waits_for_its_payload_then_applies_or_is_refused_after_the_grace() {
    let sb = Sandbox::new();
    daemon_setting(&sb, "payload_grace_seconds = 3");
    manager_ready(&sb);
    let inbox = inbox(&sb);
    std::fs::create_dir_all(&inbox).expect("inbox");
    let outside = sb.path().join("outside");
    // Manifest first, payload 2 s later: applied.
    let (payload, records) = sale_and_refund(1);
    let (manifest, payload_path) = sealed(&sb, &outside, 1, &payload, records);
    let name = |p: &Path| p.file_name().expect("name").to_owned();
    std::fs::copy(&manifest, inbox.join(name(&manifest))).expect("manifest");
    let run = sb.stxd(&["process"]);
    run.expect_code(0);
    assert!(
        run.stdout().contains("held: payload-pending"),
        "{}",
        run.stdout()
    );
    assert_eq!(manifests(&inbox), ["opera-tourism.SALES.00000001.stx"]);
    std::thread::sleep(std::time::Duration::from_secs(2));
    std::fs::copy(&payload_path, inbox.join(name(&payload_path))).expect("payload");
    sb.stxd(&["process"]).expect_code(0);
    assert_eq!(journal(&sb), vec![(1, "applied".to_owned())]);

    // A manifest whose payload never comes: held, then refused after the grace.
    let (payload, records) = sale_and_refund(2);
    let (manifest, _) = sealed(&sb, &outside, 2, &payload, records);
    std::fs::copy(&manifest, inbox.join(name(&manifest))).expect("manifest");
    let run = sb.stxd(&["process"]);
    run.expect_code(0);
    assert!(
        run.stdout().contains("held: payload-pending"),
        "{}",
        run.stdout()
    );
    assert!(manifests(&error(&sb)).is_empty());
    std::thread::sleep(std::time::Duration::from_millis(3200));
    let run = sb.stxd(&["--json", "process"]);
    run.expect_code(1);
    let handled: Value = serde_json::from_str(&run.stdout()).expect("process JSON");
    assert_eq!(handled[0]["state"], "rejected", "{handled:#}");
    assert_eq!(handled[0]["code"], "missing-payload", "{handled:#}");
    assert_eq!(manifests(&error(&sb)), ["opera-tourism.SALES.00000002.stx"]);
}

#[test]
fn retry_puts_a_refused_file_back_once_its_cause_is_fixed() {
    let sb = Sandbox::new();
    daemon_setting(&sb, "payload_grace_seconds = 0");
    manager_ready(&sb);
    let inbox = inbox(&sb);
    std::fs::create_dir_all(&inbox).expect("inbox");
    let outside = sb.path().join("outside");
    let (payload, records) = sale_and_refund(1);
    let (manifest, payload_path) = sealed(&sb, &outside, 1, &payload, records);
    let manifest_name = "opera-tourism.SALES.00000001.stx";
    std::fs::copy(&manifest, inbox.join(manifest_name)).expect("manifest");
    // No grace: refused at once.
    sb.stxd(&["process"]).expect_code(1);
    let refused = error(&sb).join(manifest_name);
    assert!(refused.exists());
    let reason = std::fs::read_to_string(error(&sb).join(format!("{manifest_name}.reason")))
        .expect("reason");
    assert!(reason.contains("code: missing-payload"), "{reason}");

    // Only files of an error/ or quarantine/ folder are retried.
    let outside_file = sb.stxd(&["retry", manifest.to_str().expect("path")]);
    outside_file.expect_code(2);
    assert!(
        outside_file
            .stderr()
            .contains("not in an error/ or quarantine/ folder"),
        "{}",
        outside_file.stderr()
    );
    assert!(refused.exists(), "nothing moved");
    sb.stxd(&["retry", "--link", "nope"]).expect_code(2);

    // The cause fixed (the payload found and put beside it), retried.
    std::fs::copy(
        &payload_path,
        error(&sb).join("opera-tourism.SALES.00000001.csv"),
    )
    .expect("payload");
    let run = sb.stxd(&["retry", refused.to_str().expect("path")]);
    run.expect_code(0);
    assert!(run.stdout().contains("missing-payload"), "{}", run.stdout());
    assert_eq!(names(&error(&sb)), Vec::<String>::new(), "reason removed");
    assert_eq!(manifests(&inbox), [manifest_name]);
    // The run log keeps the old reason.
    let runs = sb.stxd(&["--json", "runs", "list"]);
    runs.expect_code(0);
    let runs: Value = serde_json::from_str(&runs.stdout()).expect("runs");
    let retry = runs
        .as_array()
        .expect("runs")
        .iter()
        .find(|r| r["kind"] == "retry")
        .unwrap_or_else(|| panic!("a retry run: {runs:#}"))
        .clone();
    let detail = sb.stxd(&[
        "--json",
        "runs",
        "show",
        "--institution",
        "OPERA",
        &retry["id"].as_i64().expect("id").to_string(),
    ]);
    detail.expect_code(0);
    assert!(
        detail.stdout().contains("missing-payload"),
        "{}",
        detail.stdout()
    );
    // It goes through the normal pipeline and applies.
    sb.stxd(&["process"]).expect_code(0);
    assert_eq!(journal(&sb), vec![(1, "applied".to_owned())]);
}

#[test]
fn the_daemon_sets_a_stray_aside_once_and_applies_the_genuine_files() {
    let sb = Sandbox::new();
    daemon_setting(&sb, "scan_seconds = 1");
    let config = sb.path().join("config/stxd.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, text.replacen("scan_seconds = 5\n", "", 1)).expect("config");
    manager_ready(&sb);
    let inbox = inbox(&sb);
    std::fs::create_dir_all(&inbox).expect("inbox");
    std::fs::write(inbox.join("zz.SALES.00000000.stx"), b"").expect("stray");
    genuine(&sb, 1);
    genuine(&sb, 2);
    let mut daemon = crate::util::Daemon::start(&sb);
    let start = std::time::Instant::now();
    while manifests(&inbox.join("done")).len() < 2 || !manifests(&inbox).is_empty() {
        assert!(
            start.elapsed() < crate::util::DEADLINE,
            "not applied:\n{}",
            daemon.log()
        );
        std::thread::sleep(crate::util::POLL);
    }
    // A stray dropped while it runs, among listings every second.
    std::fs::write(inbox.join("zz.SALES.00000001.stx"), b"").expect("stray");
    genuine(&sb, 3);
    daemon.wait_log_n("file applied", 3);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(
        journal(&sb),
        (1..=3)
            .map(|s| (s, "applied".to_owned()))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        manifests(&quarantine(&sb)),
        ["zz.SALES.00000000.stx", "zz.SALES.00000001.stx"]
    );
    let log = daemon.log();
    assert_eq!(
        log.matches("file set aside into quarantine").count(),
        2,
        "{log}"
    );
    assert!(!log.contains("ERROR"), "{log}");
    assert!(!log.contains("is not in the config"), "{log}");
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(), Some(0), "{}", daemon.log());
}

#[test]
fn retry_applies_a_file_whose_journaled_rejection_was_fixed() {
    let sb = Sandbox::new();
    sb.ready();
    sb.stxd(&["mapping", "import", "samples/tourism/mapping.csv"])
        .expect_code(0);
    let link = ["--link", "opera-tourism"];
    let mut allot = vec![
        "contingent",
        "allocate",
        "--performance",
        "1701",
        "--seats",
        "PARTERRE:A:1-2",
    ];
    allot.extend(link);
    sb.stxd(&allot).expect_code(0);
    sb.stxd(&["export", "contingent", "--link", "opera-tourism"])
        .expect_code(0);
    // Taken by hand before the catalogue that maps its performance: refused
    // for good, journaled rejected.
    let to_distributor = sb.path().join("var/exchange/opera-tourism/to-distributor");
    let contingent = to_distributor.join("opera-tourism.CONTINGENT.00000001.stx");
    let run = sb.stxd(&["process", contingent.to_str().expect("utf-8")]);
    run.expect_code(1);
    let journal = || {
        let conn = rusqlite::Connection::open(sb.path().join("var/state/TOURISM.sqlite"))
            .expect("TOURISM");
        conn.query_row(
            "SELECT state FROM file_journal WHERE kind = 'CONTINGENT' AND sequence = 1",
            [],
            |r| r.get::<_, String>(0),
        )
        .expect("journaled")
    };
    assert_eq!(journal(), "rejected");
    let error = to_distributor.join("error");
    assert_eq!(manifests(&error), ["opera-tourism.CONTINGENT.00000001.stx"]);
    // The fix: the seat plan and the catalogue arrive and apply.
    sb.stxd(&["export", "seatplan", "--link", "opera-tourism"])
        .expect_code(0);
    sb.stxd(&["export", "catalogue", "--link", "opera-tourism"])
        .expect_code(0);
    sb.stxd(&["process"]).expect_code(0);
    // Every refused file of the link put back, its old reason quoted.
    let run = sb.stxd(&["retry", "--link", "opera-tourism"]);
    run.expect_code(0);
    assert!(
        run.stdout().contains("not known here"),
        "the old reason quoted: {}",
        run.stdout()
    );
    assert!(names(&error).is_empty(), "{:?}", names(&error));
    // The same digest, journaled rejected, applies now.
    sb.stxd(&["process"]).expect_code(0);
    assert_eq!(journal(), "applied");
    assert_eq!(
        manifests(&to_distributor.join("done"))
            .into_iter()
            .filter(|m| m.contains("CONTINGENT"))
            .collect::<Vec<_>>(),
        ["opera-tourism.CONTINGENT.00000001.stx"]
    );
}

/// The distributor's state right before a retry: its CONTINGENT 1, taken
/// before the catalogue that maps its performance, refused and journaled
/// rejected in `error/`; then the seat plan and catalogue applied (the fix).
fn refused_contingent_fixed() -> Sandbox {
    let sb = Sandbox::new();
    sb.ready();
    sb.stxd(&["mapping", "import", "samples/tourism/mapping.csv"])
        .expect_code(0);
    sb.stxd(&[
        "contingent",
        "allocate",
        "--performance",
        "1701",
        "--seats",
        "PARTERRE:A:1-2",
        "--link",
        "opera-tourism",
    ])
    .expect_code(0);
    sb.stxd(&["export", "contingent", "--link", "opera-tourism"])
        .expect_code(0);
    let contingent = to_distributor(&sb).join("opera-tourism.CONTINGENT.00000001.stx");
    sb.stxd(&["process", contingent.to_str().expect("utf-8")])
        .expect_code(1);
    sb.stxd(&["export", "seatplan", "--link", "opera-tourism"])
        .expect_code(0);
    sb.stxd(&["export", "catalogue", "--link", "opera-tourism"])
        .expect_code(0);
    sb.stxd(&["process"]).expect_code(0);
    sb
}

fn to_distributor(sb: &Sandbox) -> PathBuf {
    sb.path().join("var/exchange/opera-tourism/to-distributor")
}

/// A retry killed at each of its steps (its failpoints, and every exact
/// system call that moves or syncs a name) is finished by running it again:
/// the contingent applies once, the old reason stays in the run log, and no
/// name is left behind in `error/` or the inbox.
#[test]
fn a_retry_cut_at_any_step_is_finished_by_running_it_again() {
    let template = refused_contingent_fixed();
    let kills: Vec<(String, Option<(&str, u32)>)> = ["retry.reason-removed", "retry.payload-moved"]
        .iter()
        .map(|fp| (format!("failpoint {fp}"), None))
        .chain(
            [("unlink", 1), ("renameat2", 1), ("renameat2", 2)]
                .into_iter()
                .chain((1..=8).map(|n| ("fsync", n)))
                .map(|(call, n)| (format!("{call} #{n}"), Some((call, n)))),
        )
        .collect();
    for (label, syscall) in kills {
        let sb = Sandbox::new();
        copy_tree(&template.path().join("var"), &sb.path().join("var"));
        let args = ["retry", "--link", "opera-tourism"];
        let cut = match syscall {
            Some((call, n)) => sb.stxd_killed_at(call, n, &args),
            None => {
                let fp = label.trim_start_matches("failpoint ");
                sb.stxd_env(&args, &[("STXD_FAILPOINT", fp)])
            }
        };
        let must_die = syscall.is_none_or(|(call, _)| call == "renameat2");
        assert!(!must_die || cut.killed(), "{label}: not killed");
        let error = to_distributor(&sb).join("error");
        if cut.killed() {
            // Whatever is left archived is retried again, as ops would.
            if !manifests(&error).is_empty() {
                sb.stxd(&args).expect_code(0);
            }
        } else {
            cut.expect_code(0);
        }
        let conn = rusqlite::Connection::open(sb.path().join("var/state/TOURISM.sqlite"))
            .expect("TOURISM");
        let quoted: i64 = conn
            .query_row(
                "SELECT count(*) FROM run_message WHERE code = 'retry' AND text LIKE '%not known here%'",
                [],
                |r| r.get(0),
            )
            .expect("runs");
        assert!(
            quoted >= 1,
            "{label}: the old reason is kept in the run log"
        );
        sb.stxd(&["process"]).expect_code(0);
        let state: String = conn
            .query_row(
                "SELECT state FROM file_journal WHERE kind = 'CONTINGENT' AND sequence = 1",
                [],
                |r| r.get(0),
            )
            .expect("journaled");
        assert_eq!(state, "applied", "{label}");
        assert!(names(&error).is_empty(), "{label}: {:?}", names(&error));
        let inbox_left: Vec<String> = names(&to_distributor(&sb))
            .into_iter()
            .filter(|n| n.starts_with("opera-tourism.") || n.starts_with('.'))
            .collect();
        assert!(inbox_left.is_empty(), "{label}: {inbox_left:?}");
        let applied: i64 = conn
            .query_row("SELECT count(*) FROM contingent_snapshot", [], |r| r.get(0))
            .expect("snapshots");
        assert_eq!(applied, 1, "{label}");
    }
}
