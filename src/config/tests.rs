//! Unit tests of the config: texts parsed and validated whole.
//!
//! Each problem with its place, and the folders and operator rule derived
//! from a valid config.

use super::*;

const MINIMAL: &str = r#"
state_dir = "var"
[[institution]]
code = "TOURISM"
role = "distributor"
[[link]]
name = "opera-tourism"
manager = "OPERA"
distributor = "TOURISM"
login = "TOURISM_OPE@TOURISM"
secret_file = "s.key"
transport = { kind = "local", dir = "x" }
"#;

#[test]
fn embedded_default_is_valid() {
    let c = parse(EMBEDDED, "embedded").unwrap();
    assert_eq!(c.institutions.len(), 2);
    assert_eq!(c.links.len(), 1);
}

#[test]
fn minimal_config_is_valid() {
    let c = parse(MINIMAL, "t").unwrap();
    assert_eq!(c.links[0].operator(), "TOURISM_OPE");
    assert_eq!(
        c.store_path(&c.institutions[0].code),
        Path::new("var/TOURISM.sqlite")
    );
}

#[test]
fn sftp_timeouts_default_and_are_bounded() {
    let sftp = |extra: &str| {
        MINIMAL.replace(
            "transport = { kind = \"local\", dir = \"x\" }",
            &format!(
                "transport = {{ kind = \"sftp\", host = \"h\", user = \"u\", key_file = \"k\", known_hosts = \"kh\", remote_dir = \"/r\", local_dir = \"l\"{extra} }}"
            ),
        )
    };
    let c = parse(&sftp(""), "t").unwrap();
    let Transport::Sftp {
        port,
        connect_timeout,
        io_timeout,
        ..
    } = &c.links[0].transport
    else {
        panic!("{:?}", c.links[0].transport)
    };
    assert_eq!(*port, 22);
    assert_eq!(*connect_timeout, std::time::Duration::from_secs(10));
    assert_eq!(*io_timeout, std::time::Duration::from_secs(30));
    let c = parse(
        &sftp(", connect_timeout_seconds = 3, io_timeout_seconds = 7"),
        "t",
    )
    .unwrap();
    assert!(
        matches!(&c.links[0].transport, Transport::Sftp { connect_timeout, io_timeout, .. }
        if connect_timeout.as_secs() == 3 && io_timeout.as_secs() == 7)
    );
    let e = parse(
        &sftp(", connect_timeout_seconds = 0, io_timeout_seconds = 3601"),
        "t",
    )
    .unwrap_err();
    assert_eq!(e.errors.len(), 2, "{e}");
    assert!(
        e.to_string().contains("expected 1 to 600 seconds, found 0"),
        "{e}"
    );
}

#[test]
fn remote_fsync_is_auto_by_default_required_on_demand_and_nothing_else() {
    let sftp = |extra: &str| {
        MINIMAL.replace(
            "transport = { kind = \"local\", dir = \"x\" }",
            &format!(
                "transport = {{ kind = \"sftp\", host = \"h\", user = \"u\", key_file = \"k\", known_hosts = \"kh\", remote_dir = \"/r\", local_dir = \"l\"{extra} }}"
            ),
        )
    };
    let fsync = |extra: &str| match parse(&sftp(extra), "t").unwrap().links[0].transport {
        Transport::Sftp { remote_fsync, .. } => remote_fsync,
        Transport::Local { .. } => panic!("sftp expected"),
    };
    assert_eq!(fsync(""), RemoteFsync::Auto);
    assert_eq!(fsync(", remote_fsync = \"auto\""), RemoteFsync::Auto);
    assert_eq!(
        fsync(", remote_fsync = \"required\""),
        RemoteFsync::Required
    );
    let e = parse(&sftp(", remote_fsync = \"always\""), "t").unwrap_err();
    assert_eq!(e.errors.len(), 1, "{e}");
    assert!(
        e.errors[0].at.ends_with(".transport.remote_fsync")
            && e.errors[0].problem.contains("\"required\"")
            && e.errors[0].problem.contains("\"always\""),
        "{e}"
    );
}

#[test]
fn unknown_key_is_refused_with_its_line() {
    let text = MINIMAL.replace(
        "role = \"distributor\"",
        "role = \"distributor\"\ncolour = 1",
    );
    let e = parse(&text, "t").unwrap_err();
    assert_eq!(e.errors.len(), 1);
    assert!(e.errors[0].problem.contains("colour"), "{e}");
    assert_eq!(e.errors[0].at, "line 6, column 1");
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = MINIMAL
        .replace("TOURISM_OPE@TOURISM", "TOURISM_OPERATOR1@TOURISM")
        .replace("opera-tourism", "Opera Tourism")
        .replace("dir = \"x\"", "dir = \"x\" }\ngenerate_secret = true\n#");
    let e = parse(&text, "t").unwrap_err();
    let all = e.to_string();
    assert_eq!(e.errors.len(), 3, "{all}");
    assert!(all.contains("12 at most"), "{all}");
    assert!(all.contains("1 to 32 characters"), "{all}");
    assert!(all.contains("same slot"), "{all}");
}

#[test]
fn each_sides_outbox_is_the_others_inbox() {
    let c = parse(MINIMAL, "t").unwrap();
    let link = &c.links[0];
    let m = link.folders(Role::Manager);
    let d = link.folders(Role::Distributor);
    assert_eq!(m.outbox, d.inbox);
    assert_eq!(d.outbox, m.inbox);
    assert_eq!(d.inbox, Path::new("x/to-distributor"));
    assert_eq!(d.parked, Path::new("x/to-distributor/parked"));
    assert_eq!(
        link.side_of(&Code::new("OPERA").unwrap()),
        Some(Role::Manager)
    );
}

#[test]
fn daemon_table_is_checked() {
    assert_eq!(parse(MINIMAL, "t").unwrap().daemon.scan_seconds, 5);
    let text = format!("{MINIMAL}\n[daemon]\nscan_seconds = 60\n");
    assert_eq!(parse(&text, "t").unwrap().daemon.scan_seconds, 60);
    for bad in ["0", "3601", "-1"] {
        let text = format!("{MINIMAL}\n[daemon]\nscan_seconds = {bad}\n");
        let e = parse(&text, "t").unwrap_err();
        assert_eq!(e.errors[0].at, "daemon.scan_seconds", "{e}");
    }
    let text = format!("{MINIMAL}\n[daemon]\nscan_secs = 6\n");
    assert!(
        parse(&text, "t")
            .unwrap_err()
            .to_string()
            .contains("scan_secs")
    );
}

#[test]
fn daemon_timing_keys_have_defaults_and_bounds() {
    let d = parse(MINIMAL, "t").unwrap().daemon;
    assert_eq!(d.timezone, chrono_tz::Tz::UTC);
    assert_eq!((d.shutdown_grace_seconds, d.gap_alert_minutes), (30, 30));
    assert_eq!(d.archive_days, 0, "archives kept for ever by default");
    let text = format!(
        "{MINIMAL}\n[daemon]\ntimezone = \"Europe/Paris\"\nshutdown_grace_seconds = 5\ngap_alert_minutes = 90\narchive_days = 400\n"
    );
    let d = parse(&text, "t").unwrap().daemon;
    assert_eq!(d.timezone, chrono_tz::Europe::Paris);
    assert_eq!((d.shutdown_grace_seconds, d.gap_alert_minutes), (5, 90));
    assert_eq!(d.archive_days, 400);
    let text = format!(
        "{MINIMAL}\n[daemon]\ntimezone = \"Mars/Olympus\"\nshutdown_grace_seconds = 0\ngap_alert_minutes = 10081\narchive_days = -1\n"
    );
    let e = parse(&text, "t").unwrap_err();
    let at: Vec<_> = e.errors.iter().map(|e| e.at.as_str()).collect();
    assert_eq!(
        at,
        [
            "daemon.shutdown_grace_seconds",
            "daemon.gap_alert_minutes",
            "daemon.archive_days",
            "daemon.timezone"
        ],
        "{e}"
    );
}

#[test]
fn schedules_are_checked_whole() {
    let ok = format!(
        "{MINIMAL}\n[[schedule]]\nlink = \"opera-tourism\"\njob = \"export-sales\"\ncron = \"0 2 * * 1-5\"\n\n[[schedule]]\nlink = \"opera-tourism\"\njob = \"apply-catalogue\"\ncron = \"0 0 3 * * *\"\ntimezone = \"Europe/Paris\"\n"
    );
    let c = parse(&ok, "t").unwrap();
    assert_eq!(c.schedules.len(), 2);
    assert_eq!(
        c.schedules[0].job,
        crate::schedule::Job::Export(crate::format::Kind::Sales)
    );
    assert_eq!(c.schedules[0].cron.timezone(), chrono_tz::Tz::UTC);
    assert_eq!(c.schedules[1].cron.timezone(), chrono_tz::Europe::Paris);
    let bad = format!(
        "{MINIMAL}\n[[schedule]]\nlink = \"opera-tourism\"\njob = \"export-catalogue\"\ncron = \"0 2 * *\"\n\n[[schedule]]\nlink = \"nowhere\"\njob = \"reboot\"\ncron = \"0 2 * * *\"\ntimezone = \"Paris\"\n"
    );
    let e = parse(&bad, "t").unwrap_err();
    let all = e.to_string();
    let at: Vec<_> = e.errors.iter().map(|e| e.at.as_str()).collect();
    assert_eq!(
        at,
        [
            "schedule[0].job",
            "schedule[0].cron",
            "schedule[1].link",
            "schedule[1].job",
            "schedule[1].timezone"
        ],
        "{all}"
    );
    assert!(
        all.contains("the manager OPERA is not an [[institution]]"),
        "{all}"
    );
    assert!(all.contains("\"0 2 * *\""), "{all}");
    assert!(all.contains("expected 5 fields"), "{all}");
    assert!(all.contains("export-seatplan, export-catalogue"), "{all}");
    let unknown = format!(
        "{MINIMAL}\n[[schedule]]\nlink = \"opera-tourism\"\njob = \"poll\"\ncron = \"* * * * *\"\nwhen = 1\n"
    );
    assert!(
        parse(&unknown, "t")
            .unwrap_err()
            .to_string()
            .contains("when")
    );
}

#[test]
fn operator_rule_follows_the_manual() {
    assert_eq!(operator_rule("TOURISM_OPE", "TOURISM"), None);
    assert!(operator_rule("TOURISM_OPER", "TOURISM").is_none());
    assert!(
        operator_rule("TOURISM_OPERA", "TOURISM")
            .unwrap()
            .contains("12")
    );
    assert!(operator_rule("OPE", "TOURISM").is_some());
    assert!(operator_rule("TOURISM_", "TOURISM").is_some());
}

#[test]
fn a_reconcile_schedule_needs_both_sides_served() {
    let one_side = format!(
        "{MINIMAL}\n[[schedule]]\nlink = \"opera-tourism\"\njob = \"reconcile\"\ncron = \"0 6 * * *\"\n"
    );
    let e = parse(&one_side, "t").unwrap_err();
    let all = e.to_string();
    assert_eq!(
        e.errors.iter().map(|e| e.at.as_str()).collect::<Vec<_>>(),
        ["schedule[0].job"],
        "{all}"
    );
    assert!(
        all.contains("reconcile runs on the manager's side of link opera-tourism"),
        "{all}"
    );
    let demo = format!(
        "{}\n[[schedule]]\nlink = \"opera-tourism\"\njob = \"reconcile\"\ncron = \"0 6 * * *\"\n",
        super::EMBEDDED
    );
    let c = parse(&demo, "t").unwrap();
    assert_eq!(
        c.schedules.last().map(|s| s.job),
        Some(crate::schedule::Job::Reconcile)
    );
}

#[test]
fn relative_paths_resolve_from_the_config_files_folder() {
    let root = tempfile::tempdir().unwrap();
    let root = std::fs::canonicalize(root.path()).unwrap();
    std::fs::create_dir(root.join("etc")).unwrap();
    let text = MINIMAL
        .replace("state_dir = \"var\"", "state_dir = \"../var/state\"")
        .replace("dir = \"x\"", "dir = \"./x\"")
        .replace("secret_file = \"s.key\"", "secret_file = \"/abs/s.key\"");
    assert!(text.contains("../var/state"), "{text}");
    let file = root.join("etc/stxd.toml");
    std::fs::write(&file, text).unwrap();
    // From another working folder, through a relative name with `..` in it.
    let c = super::load(&root.join("etc/../etc/stxd.toml")).unwrap();
    assert_eq!(c.state_dir, root.join("var/state"));
    assert_eq!(c.links[0].secret_file, Path::new("/abs/s.key"));
    match &c.links[0].transport {
        super::Transport::Local { dir } => assert_eq!(dir, &root.join("etc/x")),
        other => panic!("{other:?}"),
    }
    // Parsed text with no file keeps its paths as written.
    let parsed = parse(MINIMAL, "t").unwrap();
    assert!(parsed.state_dir.is_relative());
}

#[test]
fn the_secret_overlap_defaults_to_7_days_and_is_bounded() {
    assert_eq!(parse(MINIMAL, "t").unwrap().links[0].secret_overlap_days, 7);
    let with = |days: &str| {
        MINIMAL.replace(
            "secret_file = \"s.key\"",
            &format!("secret_file = \"s.key\"\nsecret_overlap_days = {days}"),
        )
    };
    assert_eq!(
        parse(&with("30"), "t").unwrap().links[0].secret_overlap_days,
        30
    );
    for bad in ["0", "366", "-1"] {
        let e = parse(&with(bad), "t").unwrap_err();
        assert_eq!(e.errors.len(), 1, "{e}");
        assert_eq!(e.errors[0].at, "link \"opera-tourism\".secret_overlap_days");
        assert!(e.errors[0].problem.contains("1 to 365 days"), "{e}");
    }
}
