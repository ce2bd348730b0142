//! The command line's edges, with the real binary: a closed pipe, exit codes, run ids, objects by code or id, `mapping codes`, trigger feedback.

use std::process::{Command, Stdio};

use crate::util::{Daemon, Run, Sandbox};

const LINK: &str = "opera-tourism";

fn json(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout())
        .unwrap_or_else(|e| panic!("{e}: not JSON:\n{}\n{}", run.stdout(), run.stderr()))
}

/// Runs `stxd ARGS…` with standard output a pipe whose only reader is
/// closed before stxd writes anything: every write gets EPIPE, as behind
/// `| head -1` once head has its line.
fn stxd_into_closed_pipe(sb: &Sandbox, args: &[&str]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stxd"))
        .args(args)
        .current_dir(sb.path())
        .env("STXD_CONFIG", "config/stxd.toml")
        .env("STXD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn stxd");
    drop(child.stdout.take());
    Run(child.wait_with_output().expect("wait for stxd"))
}

#[test]
fn a_closed_pipe_ends_the_output_quietly_with_141() {
    let sb = Sandbox::new();
    sb.first_use_done();
    for args in [
        &["--json", "runs", "list"][..],
        &["runs", "list"],
        &["status"],
        &["mapping", "export"],
        &["check"],
    ] {
        let run = stxd_into_closed_pipe(&sb, args);
        assert_eq!(run.code(), 141, "{args:?}: {}", run.stderr());
        assert!(
            !run.stderr().contains("panicked") && !run.stderr().contains("Broken pipe"),
            "{args:?}: {}",
            run.stderr()
        );
    }
    // A command whose reader goes away after its change still made it
    // whole: the sale is booked, only its receipt was not read.
    let run = stxd_into_closed_pipe(&sb, &["catalogue", "assign-profile", "TRAV-BIL", "GUICHET"]);
    assert_eq!(run.code(), 141, "{}", run.stderr());
    // The shell's own `| head -1`: one line, no panic.
    let script = format!(
        "set -o pipefail; '{}' --json runs list | head -n 1",
        env!("CARGO_BIN_EXE_stxd")
    );
    let out = Command::new("bash")
        .args(["-c", &script])
        .current_dir(sb.path())
        .env("STXD_CONFIG", "config/stxd.toml")
        .env("STXD_LOG", "warn")
        .output()
        .expect("bash");
    let run = Run(out);
    assert_eq!(run.stdout(), "[\n", "{}", run.stderr());
    assert!(matches!(run.code(), 0 | 141), "{}", run.stderr());
    assert!(!run.stderr().contains("panicked"), "{}", run.stderr());
}

#[test]
fn exit_codes_tell_findings_usage_and_runtime_failures_apart() {
    let sb = Sandbox::new();
    let help = sb.stxd(&["--help"]);
    help.expect_code(0);
    for line in [
        "0    ok",
        "1    findings or refused input",
        "2    usage error or config problem",
        "3    runtime failure",
        "141  standard output closed",
    ] {
        assert!(help.stdout().contains(line), "{line}: {}", help.stdout());
    }
    sb.ready();
    // Usage: a bad option value, an unknown institution.
    let run = sb.stxd(&["runs", "list", "--status", "nope"]);
    run.expect_code(2);
    assert!(run.stderr().contains("--status"), "{}", run.stderr());
    sb.stxd(&["runs", "list", "--institution", "NOBODY"])
        .expect_code(2);
    // Findings: a refused input.
    sb.stxd(&["catalogue", "validate", "999"]).expect_code(1);
    // Runtime: a store that is not a database any more.
    std::fs::write(sb.path().join("var/state/OPERA.sqlite"), vec![b'x'; 8192]).unwrap();
    let run = sb.stxd(&["runs", "list", "--institution", "OPERA"]);
    run.expect_code(3);
    assert!(run.stderr().contains("OPERA"), "{}", run.stderr());
    let run = sb.stxd(&["export", "seatplan", "--link", LINK]);
    run.expect_code(3);
    // The other institution's store still answers.
    sb.stxd(&["runs", "list", "--institution", "TOURISM"])
        .expect_code(0);
}

#[test]
fn a_run_id_needs_no_institution_unless_two_have_it() {
    let sb = Sandbox::new();
    sb.first_use_done();
    let list = json(&sb.stxd(&["--json", "runs", "list", "--limit", "1000"]));
    let rows = list.as_array().unwrap();
    let owners = |id: i64| -> Vec<String> {
        rows.iter()
            .filter(|r| r["id"] == id)
            .map(|r| r["institution"].as_str().unwrap().to_owned())
            .collect()
    };
    // Run 1 is in both stores: the error names both candidates.
    assert_eq!(owners(1).len(), 2, "{list:#}");
    let run = sb.stxd(&["runs", "show", "1"]);
    run.expect_code(2);
    let err = run.stderr();
    assert!(
        err.contains(
            "run 1 exists in OPERA and TOURISM: add --institution OPERA or --institution TOURISM"
        ) || err.contains(
            "run 1 exists in TOURISM and OPERA: add --institution TOURISM or --institution OPERA"
        ),
        "{err}"
    );
    let run = sb.stxd(&["--json", "runs", "show", "1", "--institution", "TOURISM"]);
    run.expect_code(0);
    assert_eq!(json(&run)["institution"], "TOURISM");
    // An id only one store has: shown without --institution.
    let single = rows
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .find(|&id| owners(id).len() == 1)
        .expect("a run id of one institution only");
    let run = sb.stxd(&["--json", "runs", "show", &single.to_string()]);
    run.expect_code(0);
    assert_eq!(json(&run)["id"], single);
    assert_eq!(json(&run)["institution"], owners(single)[0].as_str());
    // None has it: a finding, naming where it looked.
    let run = sb.stxd(&["runs", "show", "99999"]);
    run.expect_code(1);
    assert!(run.stderr().contains("no run 99999"), "{}", run.stderr());
}

#[test]
fn performances_products_and_blocks_go_by_code_or_either_sides_id() {
    let sb = Sandbox::new();
    sb.first_use_done();
    // The manager by its code (as the distributor's commands always did).
    sb.stxd(&[
        "contingent",
        "allocate",
        "--link",
        LINK,
        "--performance",
        "TRAV0115",
        "--seats",
        "PARTERRE:A:1-4",
    ])
    .expect_code(0);
    sb.stxd(&["export", "contingent", "--link", LINK])
        .expect_code(0);
    sb.stxd(&["process"]).expect_code(0);
    // The distributor by the manager's ids (performance 1701, block 3301).
    let run = sb.stxd(&[
        "--json",
        "sale",
        "sell",
        "--performance",
        "1701",
        "--seat",
        "3301:A:1",
        "--tariff",
        "NORMAL",
        "--audience",
        "ADULT",
    ]);
    run.expect_code(0);
    let line = json(&run)["line"].clone();
    assert_eq!(line["performance"], "TRAV0115", "{line}");
    // And by its local code, the block by code.
    sb.stxd(&[
        "sale",
        "sell",
        "--performance",
        "TRAV0115",
        "--seat",
        "PARTERRE:A:2",
        "--tariff",
        "NORMAL",
        "--audience",
        "ADULT",
    ])
    .expect_code(0);
    let by_manager_id = json(&sb.stxd(&["--json", "sale", "list", "--performance", "1701"]));
    let by_code = json(&sb.stxd(&["--json", "sale", "list", "--performance", "TRAV0115"]));
    assert_eq!(by_manager_id["lines"].as_array().unwrap().len(), 2);
    assert_eq!(by_manager_id, by_code);
    // Products: local code, the manager's id, the local id.
    for product in ["TRAV-BIL", "1901", "1"] {
        let run = sb.stxd(&["--json", "catalogue", "assign-profile", product, "GUICHET"]);
        run.expect_code(0);
        assert_eq!(json(&run)["product_code"], "TRAV-BIL", "{product}");
    }
    let run = sb.stxd(&["catalogue", "assign-profile", "NOSUCH", "GUICHET"]);
    run.expect_code(1);
    assert!(run.stderr().contains("NOSUCH"), "{}", run.stderr());
    let run = sb.stxd(&["--json", "catalogue", "validate", "TRAV-BIL"]);
    run.expect_code(0);
}

#[test]
fn mapping_codes_lists_the_local_objects_a_kind_can_point_to() {
    let sb = Sandbox::new();
    sb.ready();
    let run = sb.stxd(&["mapping", "codes", "tariff_type"]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(out.contains("NORMAL"), "{out}");
    assert!(out.contains("local tariff_type(s)"), "{out}");
    let doc = json(&sb.stxd(&["--json", "mapping", "codes", "seat_category"]));
    assert_eq!(doc["kind"], "seat_category");
    let codes = doc["codes"].as_array().unwrap();
    assert!(!codes.is_empty(), "{doc}");
    for c in codes {
        assert!(
            c["id"].is_i64() && c["code"].is_string() && c["name"].is_string(),
            "{c}"
        );
    }
    // Every code listed is one `mapping set` takes.
    let pending = json(&sb.stxd(&["--json", "mapping", "list", "--kind", "tariff_type"]));
    if let Some(row) = pending.as_array().unwrap().first() {
        let id = row["manager_id"].to_string();
        sb.stxd(&["mapping", "set", "tariff_type", &id, "NORMAL"])
            .expect_code(0);
    }
    sb.stxd(&["mapping", "codes", "nope"]).expect_code(2);
}

#[test]
fn a_trigger_reports_what_the_daemon_did_with_it() {
    let sb = Sandbox::new();
    sb.first_use_done();
    let daemon = Daemon::start(&sb);
    let trigger = |job: &str| sb.stxd(&["--json", "trigger", job, "--link", LINK, "--wait", "60"]);
    // Written: the run that wrote it.
    let run = trigger("export-seatplan");
    run.expect_code(0);
    let doc = json(&run);
    assert_eq!(doc["state"], "done", "{doc}\n{}", daemon.log());
    assert_eq!(doc["result"], "written", "{doc}");
    assert_eq!(doc["runs"][0]["kind"], "export-seatplan", "{doc}");
    assert_eq!(doc["runs"][0]["status"], "ok", "{doc}");
    // Refused: no allotment yet; the run's reason, exit 1.
    let run = trigger("export-contingent");
    run.expect_code(1);
    let doc = json(&run);
    assert_eq!(doc["result"], "refused", "{doc}");
    assert!(
        doc["runs"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("no allotment")),
        "{doc}"
    );
    // Nothing to send: an answer, exit 0, in words too.
    let run = sb.stxd(&["trigger", "export-sales", "--link", LINK, "--wait", "60"]);
    run.expect_code(0);
    assert!(run.stdout().contains("nothing to send"), "{}", run.stdout());
    // --no-wait returns at once.
    let run = sb.stxd(&[
        "--json",
        "trigger",
        "export-sales",
        "--link",
        LINK,
        "--no-wait",
    ]);
    run.expect_code(0);
    assert_eq!(json(&run)["state"], "not-waited");
    drop(daemon);
    // --now, without a daemon: nothing to send is exit 0 as well.
    let now = sb.stxd(&["trigger", "export-sales", "--link", LINK, "--now"]);
    now.expect_code(0);
    assert!(now.stdout().contains("nothing to send"), "{}", now.stdout());
}
