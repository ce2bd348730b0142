//! The manual's first use #1–#3 between two servers over SFTP: a manager
//! daemon (OPERA, the SFTP client) and a distributor daemon (TOURISM, whose
//! local exchange folder is the share a real SFTP server serves: OpenSSH's
//! sshd, then ProFTPD's `mod_sftp`), each with its own
//! config and state. They are driven only by schedules (the manager's poll,
//! the distributor's sales export), hand-dropped files (a trigger file in a
//! control folder) and CLI commands; the reconciliation then shows no
//! difference.

use crate::servers::Kind;
use crate::two_daemons::{LINK, Servers, eventually, json};

on_both_servers!(two_daemons_play_the_whole_manual_over_sftp);

fn two_daemons_play_the_whole_manual_over_sftp(kind: Kind) {
    let sshd = crate::servers::start(kind);
    let servers = Servers::new(sshd.as_ref());
    let s = &servers;
    let mut manager = s.daemon("manager.toml");
    let mut distributor = s.daemon("distributor.toml");
    let logs = [&manager, &distributor];

    // #1 and #2, manager: seat plan and catalogue, asked of the daemon from
    // the CLI; its poll schedule pushes them to the share.
    s.m(&["trigger", "export-seatplan", "--link", LINK])
        .expect_code(0);
    s.m(&["trigger", "export-catalogue", "--link", LINK])
        .expect_code(0);
    // Distributor: both park, naming the mappings they need.
    eventually(
        "seat plan and catalogue parked at the distributor",
        &logs,
        || s.manifests("share/to-distributor/parked").len() == 2,
    );
    assert_eq!(
        s.manifests("manager/exchange/outbox/sent"),
        [
            format!("{LINK}.CATALOGUE.00000001.stx"),
            format!("{LINK}.SEATPLAN.00000001.stx")
        ]
    );
    let status = s.d(&["--json", "status"]);
    let status = json(status.expect_code(0));
    assert_eq!(status["links"][0]["parked"]["count"], 2, "{status:#}");

    // Ops fill the mappings: the parked files resume and apply.
    s.d(&["mapping", "import", "samples/tourism/mapping.csv"])
        .expect_code(0);
    eventually("seat plan and catalogue applied", &logs, || {
        s.manifests("share/to-distributor/done").len() == 2
    });
    s.d(&["catalogue", "validate", "--all"]).expect_code(0);
    s.d(&["catalogue", "assign-profile", "1", "GUICHET"])
        .expect_code(0);

    // #3, manager: a contingent for the first Traviata, exported by a
    // trigger file dropped by hand in the control folder.
    let link = ["--link", LINK, "--performance", "1701"];
    s.m(&[
        &["contingent", "allocate"][..],
        &link,
        &["--seats", "PARTERRE:A:1-10"],
    ]
    .concat())
        .expect_code(0);
    s.m(&[
        &["contingent", "allocate"][..],
        &link,
        &["--zone", "FOSSE", "--quantity", "5"],
    ]
    .concat())
        .expect_code(0);
    let control = s.root().join("manager/state/control").join(LINK);
    std::fs::create_dir_all(&control).unwrap();
    std::fs::write(control.join("export-contingent"), b"").unwrap();
    eventually("contingent applied at the distributor", &logs, || {
        s.manifests("share/to-distributor/done")
            .contains(&format!("{LINK}.CONTINGENT.00000001.stx"))
    });
    assert!(
        !control.join("export-contingent").exists(),
        "trigger consumed"
    );

    // Distributor: two seats and a standing place sold, one seat refunded.
    let sell = |place: &[&str], audience: &str| -> i64 {
        let args = [
            &[
                "--json",
                "sale",
                "sell",
                "--performance",
                "TRAV0115",
                "--tariff",
                "NORMAL",
                "--audience",
                audience,
            ][..],
            place,
        ]
        .concat();
        json(s.d(&args).expect_code(0))["line"]["line"]
            .as_i64()
            .unwrap()
    };
    sell(&["--seat", "PARTERRE:A:1"], "ADULT");
    let a2 = sell(&["--seat", "PARTERRE:A:2"], "CHILD");
    sell(&["--zone", "FOSSE"], "ADULT");
    s.d(&["sale", "refund", &a2.to_string()]).expect_code(0);

    // The distributor's schedule writes the sales file into the share; the
    // manager's poll fetches it and its daemon books it.
    eventually("sales reintegrated at the manager", &logs, || {
        s.count("manager/state/OPERA.sqlite", "SELECT count(*) FROM ticket") == 3
            && s.count(
                "manager/state/OPERA.sqlite",
                "SELECT count(*) FROM allotment WHERE acknowledged = exported",
            ) == 1
    });
    assert_eq!(
        s.count(
            "manager/state/OPERA.sqlite",
            "SELECT sum(amount) FROM pending_account_entry"
        ),
        8500 + 2500,
        "the pending account holds the two valid tickets"
    );
    assert!(
        s.manifests("share/to-manager").is_empty(),
        "every remote original was fetched and removed"
    );

    // Both daemons stop cleanly.
    for daemon in [&manager, &distributor] {
        daemon.signal(libc::SIGTERM);
    }
    assert_eq!(manager.wait_exit(), Some(0), "{}", manager.log());
    assert_eq!(distributor.wait_exit(), Some(0), "{}", distributor.log());

    // The reconciliation, on the manager's server with the distributor's
    // store (opened read-only), shows no difference.
    let copy = s.root().join("distributor/state/TOURISM.sqlite");
    let report = s.m(&[
        "--json",
        "report",
        "reconcile",
        "--link",
        LINK,
        "--distributor-store",
        copy.to_str().unwrap(),
    ]);
    let report = json(report.expect_code(0));
    assert_eq!(report["consistent"], true, "{report:#}");
    // Nothing went to error/ on either side.
    assert!(s.manifests("share/to-distributor/error").is_empty());
    assert!(s.manifests("manager/exchange/inbox/error").is_empty());
}
