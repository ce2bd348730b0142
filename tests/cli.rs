//! The `stxd` binary as an operator uses it: check, load, inspect, exit codes.

use std::os::unix::fs::PermissionsExt;

use stxd::format::Kind;

use crate::util::{Sandbox, seal};

#[test]
fn check_creates_nothing_then_init_creates_what_is_missing_and_check_is_ok() {
    let sb = Sandbox::new();
    // On a fresh install, check only reads: it says what is missing.
    let run = sb.stxd(&["check"]);
    run.expect_code(1);
    let out = run.stdout();
    assert!(out.contains("store of OPERA"), "{out}");
    assert!(out.contains("does not exist yet"), "{out}");
    assert!(out.contains("run stxd init"), "{out}");
    assert!(out.contains("stxd init --generate-secret"), "{out}");
    assert!(!sb.path().join("var").exists(), "check created something");

    let run = sb.stxd(&["init"]);
    run.expect_code(0);
    let out = run.stdout();
    for store in ["var/state/OPERA.sqlite", "var/state/TOURISM.sqlite"] {
        assert!(sb.path().join(store).is_file(), "{store} not created");
        assert!(out.contains(store), "{out}");
    }
    let key = std::fs::metadata(sb.path().join("var/secrets/opera-tourism.key")).unwrap();
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    // The local link's exchange folders: group-writable, setgid, whatever
    // the umask.
    for dir in ["to-manager", "to-distributor", "to-manager/error"] {
        let meta =
            std::fs::metadata(sb.path().join("var/exchange/opera-tourism").join(dir)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o2770, "{dir}");
    }
    let run = sb.stxd(&["check"]);
    run.expect_code(0);
    assert!(run.stdout().contains("ok: 0 errors"), "{}", run.stdout());
    // A second init finds everything there.
    let again = sb.stxd(&["init"]);
    again.expect_code(0);
    assert!(
        again.stdout().contains("nothing to create"),
        "{}",
        again.stdout()
    );
}

#[test]
fn check_names_the_missing_setup_object() {
    let sb = Sandbox::new();
    let setup = sb.path().join("samples/opera/setup.toml");
    let text = std::fs::read_to_string(&setup).unwrap();
    // Drop the external sales interface table from the manager's setup.
    let start = text
        .find("[[external_sales_interface]]")
        .expect("sample has an interface");
    let end = text[start + 1..]
        .find("\n[")
        .map_or(text.len(), |i| start + 1 + i);
    std::fs::write(&setup, format!("{}{}", &text[..start], &text[end..])).unwrap();
    sb.stxd(&["init"]).expect_code(0);
    let run = sb.stxd(&["check"]);
    run.expect_code(1);
    let out = run.stdout();
    assert!(out.contains("external sales interface"), "{out}");
    assert!(out.contains("TOURISM_OPE@TOURISM"), "{out}");
    assert!(out.contains("not ready: 1 error"), "{out}");
    // The fix says where it goes and how it is loaded.
    assert!(
        out.contains("in your setup file, then stxd load OPERA setup.toml (stxd template manager writes a commented one)"),
        "{out}"
    );
}

#[test]
fn template_writes_starting_files_that_load_and_never_replaces_one() {
    let sb = Sandbox::new();
    sb.ready();
    let run = sb.stxd(&["template", "manager", "--dir", "venue"]);
    run.expect_code(0);
    for file in ["seatplan.xml", "catalogue.xml", "setup.toml"] {
        assert!(sb.path().join("venue").join(file).is_file(), "{file}");
        assert!(run.stdout().contains(file), "{}", run.stdout());
    }
    assert!(run.stdout().contains("next: "), "{}", run.stdout());
    let run = sb.stxd(&["template", "distributor", "--dir", "shop"]);
    run.expect_code(0);
    for file in ["setup.toml", "mapping.csv"] {
        assert!(sb.path().join("shop").join(file).is_file(), "{file}");
    }
    // The files are loadable as written.
    sb.stxd(&[
        "load",
        "OPERA",
        "venue/seatplan.xml",
        "venue/catalogue.xml",
        "venue/setup.toml",
    ])
    .expect_code(0);
    sb.stxd(&["load", "TOURISM", "shop/setup.toml"])
        .expect_code(0);
    sb.stxd(&["mapping", "import", "shop/mapping.csv"])
        .expect_code(0);
    sb.stxd(&["check"]).expect_code(0);
    // Never replaces: a second run refuses and writes nothing.
    std::fs::write(sb.path().join("venue/setup.toml"), "edited by ops").unwrap();
    let again = sb.stxd(&["template", "manager", "--dir", "venue"]);
    again.expect_code(1);
    assert!(
        again.stdout().contains("never replaced"),
        "{}",
        again.stdout()
    );
    assert_eq!(
        std::fs::read_to_string(sb.path().join("venue/setup.toml")).unwrap(),
        "edited by ops"
    );
}

/// `stxd template` killed at each write, sync and rename: run again, it
/// finishes (the files written whole before the kill are kept, the others
/// written), every file equal to a run never killed, no temporary left.
#[test]
fn template_killed_at_any_step_is_finished_by_running_it_again() {
    let reference = Sandbox::new();
    reference
        .stxd(&["template", "manager", "--dir", "venue"])
        .expect_code(0);
    let files = ["seatplan.xml", "catalogue.xml", "setup.toml"];
    let want: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(reference.path().join("venue").join(f)).unwrap())
        .collect();
    for (call, nth) in [
        ("write", 1),
        ("fsync", 1),
        ("fsync", 2),
        ("renameat2", 1),
        ("renameat2", 2),
        ("renameat2", 3),
    ] {
        let sb = Sandbox::new();
        let cut = sb.stxd_killed_at(call, nth, &["template", "manager", "--dir", "venue"]);
        assert!(cut.killed(), "{call} #{nth}: not killed");
        sb.stxd(&["template", "manager", "--dir", "venue"])
            .expect_code(0);
        let dir = sb.path().join("venue");
        for (f, w) in files.iter().zip(&want) {
            assert_eq!(
                &std::fs::read(dir.join(f)).unwrap(),
                w,
                "{call} #{nth}: {f}"
            );
        }
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["catalogue.xml", "seatplan.xml", "setup.toml"],
            "{call} #{nth}"
        );
    }
}

#[test]
fn check_reports_json() {
    let sb = Sandbox::new();
    sb.stxd(&["init"]).expect_code(0);
    let run = sb.stxd(&["--json", "check"]);
    run.expect_code(0);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["institutions"].as_array().unwrap().len(), 2);
}

#[test]
fn a_secret_readable_by_others_is_refused() {
    let sb = Sandbox::new();
    sb.ready();
    let key = sb.path().join("var/secrets/opera-tourism.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let run = sb.stxd(&["check"]);
    run.expect_code(1);
    assert!(run.stdout().contains("chmod 600"), "{}", run.stdout());
}

#[test]
fn loading_the_same_master_data_again_changes_nothing() {
    let sb = Sandbox::new();
    sb.ready();
    let db = sb.path().join("var/state/OPERA.sqlite");
    let before = table_digest(&db);
    sb.stxd(&[
        "load",
        "OPERA",
        "samples/opera/seatplan.xml",
        "samples/opera/catalogue.xml",
        "samples/opera/setup.toml",
    ])
    .expect_code(0);
    assert_eq!(table_digest(&db), before);
}

#[test]
fn a_bad_master_data_file_loads_nothing() {
    let sb = Sandbox::new();
    sb.ready();
    let db = sb.path().join("var/state/OPERA.sqlite");
    let before = table_digest(&db);
    let run = sb.stxd(&[
        "load",
        "OPERA",
        "samples/opera/seatplan.xml",
        "samples/invalid/catalogue-xxe.xml",
    ]);
    run.expect_code(1);
    let err = run.stderr();
    assert!(err.contains("catalogue-xxe.xml: line 2 (byte 39)"), "{err}");
    assert!(err.contains("DOCTYPE"), "{err}");
    assert_eq!(table_digest(&db), before);
}

#[test]
fn inspect_summarises_a_valid_file_and_names_a_tampered_one() {
    let sb = Sandbox::new();
    sb.ready();
    let payload = std::fs::read(sb.path().join("samples/payloads/sales.csv")).unwrap();
    let inbox = sb.path().join("inbox");
    let m = seal(&inbox, &sb.demo_secret(), Kind::Sales, 3, &payload, 6);
    let manifest = format!("inbox/{}", m.manifest_name());
    let run = sb.stxd(&["inspect", &manifest]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(out.contains("kind:      SALES"), "{out}");
    assert!(out.contains("sequence:  3"), "{out}");
    assert!(
        out.contains("sales 3, refunds 1, acknowledgements 2"),
        "{out}"
    );
    // The payload's name works as well as the manifest's.
    sb.stxd(&["inspect", &format!("inbox/{}", m.payload)])
        .expect_code(0);

    let path = inbox.join(&m.payload);
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    let run = sb.stxd(&["--json", "inspect", &manifest]);
    run.expect_code(1);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(doc["code"], "envelope-digest");
    assert!(doc["reason"].as_str().unwrap().contains(&m.payload));
}

#[test]
fn inspect_refuses_a_file_signed_with_another_secret() {
    let sb = Sandbox::new();
    sb.ready();
    let payload = std::fs::read(sb.path().join("samples/payloads/sales.csv")).unwrap();
    let m = seal(
        &sb.path().join("inbox"),
        &crate::util::test_secret(),
        Kind::Sales,
        1,
        &payload,
        6,
    );
    let run = sb.stxd(&["inspect", &format!("inbox/{}", m.manifest_name())]);
    run.expect_code(1);
    assert!(run.stdout().contains("envelope-key-id"), "{}", run.stdout());
}

#[test]
fn usage_errors_and_unreadable_configs_exit_2() {
    let sb = Sandbox::new();
    sb.stxd(&["no-such-command"]).expect_code(2);
    let run = sb.stxd(&["--config", "missing.toml", "check"]);
    run.expect_code(2);
    assert!(run.stderr().contains("missing.toml"), "{}", run.stderr());
    std::fs::write(sb.path().join("bad.toml"), "state_dir = 1\n").unwrap();
    let run = sb.stxd(&["--config", "bad.toml", "check"]);
    run.expect_code(2);
    assert!(run.stderr().contains("line 1"), "{}", run.stderr());
    sb.stxd(&["load", "NOBODY", "x.xml"]).expect_code(2);
}

/// A digest of every row of every table, to prove "nothing changed".
fn table_digest(db: &std::path::Path) -> String {
    use sha2::{Digest, Sha256};
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // Execution logs and the journal record that a load ran; the data must not move.
    tables.retain(|t| {
        !t.starts_with("sqlite_") && !matches!(t.as_str(), "run" | "run_message" | "file_journal")
    });
    let mut hasher = Sha256::new();
    for table in tables {
        let mut stmt = conn
            .prepare(&format!("SELECT * FROM \"{table}\" ORDER BY 1"))
            .unwrap();
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        hasher.update(table.as_bytes());
        while let Some(row) = rows.next().unwrap() {
            for i in 0..columns {
                let v: rusqlite::types::Value = row.get(i).unwrap();
                hasher.update(format!("{v:?}|").as_bytes());
            }
        }
    }
    hex::encode(hasher.finalize())
}

/// Logs written to a file or a pipe (the journal, a collector) are plain
/// text: no terminal colour codes around the fields.
#[test]
fn logs_to_a_file_carry_no_colour_codes() {
    let sb = Sandbox::new();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_stxd"))
        .arg("init")
        .current_dir(sb.path())
        .env("STXD_CONFIG", "config/stxd.toml")
        .env_remove("NO_COLOR")
        .env("STXD_LOG", "info")
        .output()
        .expect("run stxd");
    assert_eq!(output.status.code(), Some(0));
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(log.contains("store created"), "{log}");
    assert!(
        log.contains("institution=OPERA"),
        "fields as plain key=value: {log}"
    );
    assert!(!log.contains('\u{1b}'), "colour codes in {log:?}");
}

/// `stxd init` killed between making a folder and giving it its mode, or
/// before renaming it into place: the next `init` still leaves every
/// exchange folder at mode 2770 and no temporary folder behind.
#[test]
fn init_killed_between_mkdir_and_chmod_still_ends_with_the_right_modes() {
    for (call, nth) in [
        ("chmod", 1),
        ("chmod", 3),
        ("renameat2", 1),
        ("renameat2", 3),
    ] {
        let sb = Sandbox::new();
        let cut = sb.stxd_killed_at(call, nth, &["init"]);
        assert!(cut.killed(), "{call} #{nth}: not killed");
        sb.stxd(&["init"]).expect_code(0);
        let link = sb.path().join("var/exchange/opera-tourism");
        for dir in [
            "",
            "to-manager",
            "to-distributor",
            "to-manager/done",
            "to-manager/error",
            "to-distributor/parked",
            "to-distributor/quarantine",
        ] {
            let meta = std::fs::metadata(link.join(dir)).unwrap();
            assert_eq!(
                meta.permissions().mode() & 0o7777,
                0o2770,
                "{call} #{nth}: {dir}"
            );
        }
        let leftovers: Vec<String> = crate::util::every_path(&sb.path().join("var"))
            .into_iter()
            .map(|p| p.display().to_string())
            .filter(|p| p.ends_with(".init"))
            .collect();
        assert!(leftovers.is_empty(), "{call} #{nth}: {leftovers:?}");
        sb.stxd(&["check"]).expect_code(0);
    }
}
