//! `[daemon] archive_days`: the real daemon deletes the files archived in
//! `done/` once they are older than that, and nothing else. A file's age
//! is its archiving's, which a test cannot set back; the daemon runs under
//! libfaketime (Debian's `faketime`, installed by `.ci/run`) two days
//! ahead of the machine, so that everything archived before looks two days
//! old.

use std::path::{Path, PathBuf};

use crate::util::{Daemon, Sandbox, every_path, manifests, rows};

const LINK: &str = "opera-tourism";
const DELETED: &str = "archived files deleted past their retention";

/// libfaketime's library for programs with threads, wherever Debian's
/// multiarch layout put it.
fn libfaketime() -> PathBuf {
    std::fs::read_dir("/usr/lib")
        .unwrap()
        .map(|e| e.unwrap().path().join("faketime/libfaketimeMT.so.1"))
        .find(|p| p.exists())
        .expect("libfaketime is missing: apt-get install faketime (.ci/run does)")
}

/// `stxd run` two days ahead of the machine's clock (its monotonic clock,
/// which its timers use, left alone), waiting for "ready".
fn daemon_two_days_ahead(sb: &Sandbox) -> Daemon {
    let lib = libfaketime();
    let daemon = Daemon::spawn(
        sb,
        &[],
        "info,stxd::daemon=debug",
        &[
            ("LD_PRELOAD", lib.as_os_str()),
            ("FAKETIME", "+2d".as_ref()),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1".as_ref()),
        ],
    );
    daemon.wait_log("ready");
    daemon
}

fn stop(mut daemon: Daemon) -> String {
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(), Some(0), "{}", daemon.log());
    daemon.log()
}

/// Every path under `dir`, folders included, relative to it.
fn tree(dir: &Path) -> Vec<PathBuf> {
    every_path(dir)
        .into_iter()
        .map(|p| p.strip_prefix(dir).unwrap().to_path_buf())
        .collect()
}

#[test]
fn the_daemon_deletes_the_archives_past_their_retention_and_nothing_else() {
    let sb = Sandbox::new();
    sb.contingent_applied();
    let line = sb.sell("PARTERRE:A:1");
    sb.json(&["export", "sales", "--link", LINK]);
    sb.stxd(&["process"]).expect_code(0);
    let exchange = sb.path().join("var/exchange").join(LINK);
    let (to_distributor, to_manager) =
        (exchange.join("to-distributor"), exchange.join("to-manager"));
    assert_eq!(manifests(&to_distributor.join("done"), "").len(), 3);
    let sales = manifests(&to_manager.join("done"), "SALES");
    assert_eq!(sales.len(), 1);
    // A copy of the SALES pair, to send again once its archive is gone.
    let resend = sb.path().join("resend");
    std::fs::create_dir(&resend).unwrap();
    for name in [&sales[0], &sales[0].replace(".stx", ".csv")] {
        std::fs::copy(to_manager.join("done").join(name), resend.join(name)).unwrap();
    }
    // What the retention must never touch, as old as the archives.
    for folder in ["parked", "error", "quarantine"] {
        std::fs::write(to_distributor.join(folder).join("kept.txt"), folder).unwrap();
    }

    // Off by default: two days later, everything is still there.
    let before = tree(&exchange);
    let daemon = daemon_two_days_ahead(&sb);
    let listings = daemon.log().matches("listing the inboxes").count();
    daemon.wait_log_n("listing the inboxes", listings + 2);
    let log = stop(daemon);
    assert!(!log.contains(DELETED), "{log}");
    assert_eq!(tree(&exchange), before);

    // One day: both done/ folders are emptied at the first listing.
    let config = sb.path().join("config/stxd.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replacen(
        "scan_seconds = 5\n",
        "scan_seconds = 5\narchive_days = 1\n",
        1,
    );
    assert!(
        text.contains("archive_days = 1"),
        "the demo's [daemon] table moved"
    );
    std::fs::write(&config, text).unwrap();
    let daemon = daemon_two_days_ahead(&sb);
    daemon.wait_log_n(DELETED, 2);
    let log = daemon.log();
    for (folder, files) in [(&to_distributor, 6), (&to_manager, 2)] {
        let done = folder.join("done");
        assert!(
            log.lines().any(|l| l.contains(DELETED)
                && l.contains(&format!("folder={} ", done.display()))
                && l.contains(&format!("files={files} "))
                && l.contains("archive_days=1")),
            "{log}"
        );
        assert_eq!(tree(&done), Vec::<PathBuf>::new());
    }
    let expected: Vec<PathBuf> = before
        .iter()
        .filter(|p| {
            let p = p.to_string_lossy();
            !(p.starts_with("to-distributor/done/") || p.starts_with("to-manager/done/"))
        })
        .cloned()
        .collect();
    assert_eq!(tree(&exchange), expected, "only done/ lost files");

    // The journal, not the archive, says what was applied: the same SALES
    // pair sent again is archived again, its line booked once.
    for e in std::fs::read_dir(&resend).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to_manager.join(e.file_name())).unwrap();
    }
    daemon.wait_log("file already applied: archived again");
    let listings = daemon.log().matches("listing the inboxes").count();
    daemon.wait_log_n("listing the inboxes", listings + 2);
    let log = stop(daemon);
    assert_eq!(
        log.matches(DELETED).count(),
        2,
        "one pass an hour, not one per listing: {log}"
    );
    assert_eq!(manifests(&to_manager.join("done"), "SALES"), sales);
    assert_eq!(
        rows(
            &sb,
            "OPERA.sqlite",
            "SELECT line || ':' || status FROM sales_line ORDER BY line"
        ),
        [format!("{line}:booked")]
    );
}
