//! `stxd status`: the real binary on a sandbox after the manual's flows.

use serde_json::Value;
use stxd::format::Kind;

use crate::util::{Sandbox, seal, test_secret};

fn status(sb: &Sandbox) -> Value {
    let run = sb.stxd(&["--json", "status"]);
    run.expect_code(0);
    serde_json::from_str(&run.stdout()).expect("status JSON")
}

/// The side `side` of the demo link.
fn side<'a>(status: &'a Value, side: &str) -> &'a Value {
    status["links"]
        .as_array()
        .expect("links")
        .iter()
        .find(|l| l["link"] == "opera-tourism" && l["side"] == side)
        .unwrap_or_else(|| panic!("no {side} side in {status:#}"))
}

fn last<'a>(link: &'a Value, way: &str, kind: &str) -> &'a Value {
    link[way]
        .as_array()
        .expect("files")
        .iter()
        .find(|f| f["kind"] == kind)
        .map(|f| &f["file"])
        .unwrap_or_else(|| panic!("no {kind} in {way}: {link:#}"))
}

#[test]
fn status_shows_the_last_seat_plan_and_catalogue_in_and_out() {
    let sb = Sandbox::new();
    sb.first_use_done();
    let s = status(&sb);
    assert_eq!(s["daemon"]["running"], false, "{s:#}");
    assert!(s["next_runs"].as_array().expect("next_runs").is_empty());

    let manager = side(&s, "manager");
    assert_eq!(manager["institution"], "OPERA");
    for kind in ["SEATPLAN", "CATALOGUE"] {
        let out = last(manager, "last_out", kind);
        assert_eq!(out["sequence"], 1, "{kind}: {manager:#}");
        assert_eq!(out["state"], "published", "{kind}");
    }
    assert_eq!(last(manager, "last_out", "CONTINGENT"), &Value::Null);
    assert_eq!(last(manager, "last_in", "SALES"), &Value::Null);
    assert_eq!(manager["pending_mappings"], Value::Null);

    let distributor = side(&s, "distributor");
    for kind in ["SEATPLAN", "CATALOGUE"] {
        let inbound = last(distributor, "last_in", kind);
        assert_eq!(inbound["sequence"], 1, "{kind}: {distributor:#}");
        assert_eq!(inbound["state"], "applied", "{kind}");
        assert!(
            inbound["name"].as_str().unwrap().contains(kind),
            "{inbound}"
        );
    }
    assert_eq!(distributor["pending_mappings"], 0);
    assert_eq!(distributor["parked"]["count"], 0);
    assert_eq!(distributor["inbox"]["count"], 0);
    assert!(
        distributor["errors_24h"]["runs"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // The human table says the same.
    let human = sb.stxd(&["status", "--link", "opera-tourism"]);
    human.expect_code(0);
    let text = human.stdout();
    assert!(text.contains("daemon: not running"), "{text}");
    assert!(
        text.contains("link opera-tourism: TOURISM (distributor), local"),
        "{text}"
    );
    let seatplan_in = text
        .lines()
        .find(|l| l.contains("in ") && l.contains("SEATPLAN"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(seatplan_in.contains("seq 1"), "{seatplan_in}");
    assert!(seatplan_in.contains("applied"), "{seatplan_in}");
}

#[test]
fn status_counts_a_parked_catalogue_and_its_pending_mappings() {
    let sb = Sandbox::new();
    sb.ready();
    sb.stxd(&["export", "catalogue", "--link", "opera-tourism"])
        .expect_code(0);
    // Waiting in the inbox until processed.
    let before = status(&sb);
    let inbox = &side(&before, "distributor")["inbox"];
    assert_eq!(inbox["count"], 1, "{inbox:#}");
    assert_eq!(side(&before, "manager")["outbox"]["count"], 1);

    sb.stxd(&["process"]).expect_code(0);
    let s = status(&sb);
    let d = side(&s, "distributor");
    assert_eq!(d["inbox"]["count"], 0, "{d:#}");
    assert_eq!(d["parked"]["count"], 1, "{d:#}");
    let parked = d["parked"]["files"][0].as_str().unwrap();
    assert!(parked.contains("CATALOGUE"), "{parked}");
    assert!(d["pending_mappings"].as_u64().unwrap() > 0, "{d:#}");
    assert_eq!(last(d, "last_in", "CATALOGUE")["state"], "parked");

    let text = sb.stxd(&["status"]).stdout();
    assert!(text.contains("parked: 1 waiting for mappings"), "{text}");
}

#[test]
fn status_lists_a_rejected_file_among_the_errors_of_the_last_24_hours() {
    let sb = Sandbox::new();
    sb.ready();
    // A sales file signed with another secret than the link's.
    let inbox = sb.path().join("var/exchange/opera-tourism/to-manager");
    let payload = std::fs::read(crate::util::repo().join("samples/payloads/sales.csv")).unwrap();
    let m = seal(&inbox, &test_secret(), Kind::Sales, 1, &payload, 1);
    sb.stxd(&["process"]).expect_code(1);

    let s = status(&sb);
    let manager = side(&s, "manager");
    let errors = &manager["errors_24h"];
    let runs = errors["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "{errors:#}");
    assert_eq!(runs[0]["kind"], "import-sales");
    assert_eq!(runs[0]["file"], m.manifest_name());
    assert!(runs[0]["code"].as_str().is_some(), "{errors:#}");
    assert!(runs[0]["reason"].as_str().is_some(), "{errors:#}");
    assert_eq!(errors["files"], serde_json::json!([m.manifest_name()]));
    // The distributor side saw nothing wrong.
    let d = side(&s, "distributor");
    assert!(d["errors_24h"]["runs"].as_array().unwrap().is_empty());

    let text = sb.stxd(&["status"]).stdout();
    assert!(
        text.contains("errors (24h): 1 failed run, 1 file put in error/"),
        "{text}"
    );
    assert!(
        text.contains(&format!("error/{}", m.manifest_name())),
        "{text}"
    );
}

#[test]
fn status_of_an_unknown_link_is_a_usage_error() {
    let sb = Sandbox::new();
    let run = sb.stxd(&["status", "--link", "nope"]);
    run.expect_code(2);
    assert!(
        run.stderr().contains("link \"nope\" is not in the config"),
        "{}",
        run.stderr()
    );
}

/// A stray file in an inbox (a note, a payload whose manifest never came)
/// is never taken: status names it instead of saying the inbox is empty.
#[test]
fn status_names_the_files_an_inbox_holds_but_never_takes() {
    let sb = Sandbox::new();
    sb.ready();
    sb.stxd(&["export", "catalogue", "--link", "opera-tourism"])
        .expect_code(0);
    let inbox = sb.path().join("var/exchange/opera-tourism/to-distributor");
    std::fs::write(inbox.join("notes.txt"), "hello").unwrap();
    std::fs::write(inbox.join("opera-tourism.SALES.00000009.csv"), "x").unwrap();
    std::fs::write(inbox.join(".being-written.part"), "x").unwrap();
    let s = status(&sb);
    let d = side(&s, "distributor");
    // The complete catalogue pair waits; its payload is not "other".
    assert_eq!(d["inbox"]["count"], 1, "{d:#}");
    assert_eq!(
        d["inbox"]["others"],
        serde_json::json!(["notes.txt", "opera-tourism.SALES.00000009.csv"]),
        "{d:#}"
    );
    let text = sb.stxd(&["status"]).stdout();
    assert!(
        text.contains("inbox: 2 other files never taken")
            && text.contains("notes.txt, opera-tourism.SALES.00000009.csv"),
        "{text}"
    );
}

/// A file that waits in the inbox says why: a missing earlier sequence, or
/// its kind's apply window.
#[test]
fn status_says_why_an_inbox_file_waits() {
    let sb = Sandbox::new();
    let config = sb.path().join("config/stxd.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(
        "\n[[schedule]]\nlink = \"opera-tourism\"\njob = \"apply-catalogue\"\ncron = \"30 3 * * *\"\n",
    );
    std::fs::write(&config, text).unwrap();
    sb.ready();
    sb.stxd(&["export", "catalogue", "--link", "opera-tourism"])
        .expect_code(0);
    let inbox = sb.path().join("var/exchange/opera-tourism/to-distributor");
    seal(&inbox, &sb.demo_secret(), Kind::Contingent, 3, b"x", 0);
    let s = status(&sb);
    let held = side(&s, "distributor")["held"].clone();
    assert_eq!(held.as_array().map(Vec::len), Some(2), "{held:#}");
    assert_eq!(held[0]["file"], "opera-tourism.CATALOGUE.00000001.stx");
    assert!(
        held[0]["reason"]
            .as_str()
            .unwrap()
            .contains("apply window apply-catalogue, next at"),
        "{held:#}"
    );
    assert_eq!(held[1]["file"], "opera-tourism.CONTINGENT.00000003.stx");
    assert!(
        held[1]["reason"]
            .as_str()
            .unwrap()
            .contains("waits for CONTINGENT sequence 1"),
        "{held:#}"
    );
    let text = sb.stxd(&["status"]).stdout();
    assert!(
        text.contains("    opera-tourism.CONTINGENT.00000003.stx: waits for"),
        "{text}"
    );
}

#[test]
fn a_file_refused_days_ago_still_shows_while_it_sits_in_error() {
    let sb = Sandbox::new();
    sb.ready();
    let inbox = sb.path().join("var/exchange/opera-tourism/to-manager");
    let payload = std::fs::read(crate::util::repo().join("samples/payloads/sales.csv")).unwrap();
    let m = seal(&inbox, &test_secret(), Kind::Sales, 1, &payload, 1);
    sb.stxd(&["process"]).expect_code(1);
    // Refused three days ago: the run and the .reason moved back.
    let conn = rusqlite::Connection::open(sb.path().join("var/state/OPERA.sqlite")).unwrap();
    let moved = conn
        .execute(
            "UPDATE run SET started = '2000-01-01T00:00:00Z' WHERE status = 'failed'",
            [],
        )
        .unwrap();
    assert_eq!(moved, 1);
    drop(conn);
    let reason = inbox
        .join("error")
        .join(format!("{}.reason", m.manifest_name()));
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3 * 24 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&reason)
        .unwrap()
        .set_modified(old)
        .unwrap();

    let s = status(&sb);
    let manager = side(&s, "manager");
    assert!(
        manager["errors_24h"]["runs"].as_array().unwrap().is_empty(),
        "{manager:#}"
    );
    assert!(
        manager["errors_24h"]["files"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{manager:#}"
    );
    assert_eq!(manager["error"]["count"], 1, "{manager:#}");
    assert_eq!(
        manager["error"]["files"],
        serde_json::json!([m.manifest_name()])
    );
    assert_eq!(
        manager["error"]["others"],
        serde_json::json!([]),
        "{manager:#}"
    );
    assert_eq!(manager["attention"], 1, "{manager:#}");
    assert_eq!(side(&s, "distributor")["attention"], 0);

    let run = sb.stxd(&["status"]);
    run.expect_code(0);
    let text = run.stdout();
    assert!(
        text.contains(&format!(
            "error/ now: 1 refused, waiting for ops (read each .reason; fix the cause, then stxd retry FILE; or remove the pair): {}",
            m.manifest_name()
        )),
        "{text}"
    );
    assert!(
        text.contains(
            "needs attention: 1 file (1 in error/, 0 in quarantine/, 0 held in the inbox)"
        ),
        "{text}"
    );

    // Once ops remove it, nothing is left to show.
    for entry in std::fs::read_dir(inbox.join("error")).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let s = status(&sb);
    assert_eq!(side(&s, "manager")["error"]["count"], 0);
    assert_eq!(side(&s, "manager")["attention"], 0);
    assert!(!sb.stxd(&["status"]).stdout().contains("needs attention"));
}
