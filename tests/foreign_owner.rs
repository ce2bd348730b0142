//! A pair uploaded by the peer's own account (another Unix user, the file
//! readable by the receiving stxd through the share's group only, as the
//! production quick start sets it up) is applied and archived like any
//! other. Linux's `fs.protected_hardlinks` (on by default on Debian) refuses
//! a hard link to a file its caller neither owns nor may write, so the
//! archive cannot move such a file by link and unlink: it renames it. The
//! same holds for a trigger file another account dropped.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::Command;

use crate::servers::Account;
use crate::util::{Sandbox, manifests, rows};

const LINK: &str = "opera-tourism";

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).expect("chown");
    if path.is_dir() && !path.is_symlink() {
        for e in std::fs::read_dir(path).expect("read_dir").flatten() {
            chown_tree(&e.path(), uid, gid);
        }
    }
}

/// The demo with one sale exported: its SALES pair in the manager's inbox,
/// owned by the peer's account and group-readable only, the rest of the
/// sandbox owned by the account stxd runs as.
struct Foreign {
    sb: Sandbox,
    stxd_user: Account,
    _peer: Account,
    line: i64,
}

impl Foreign {
    fn new() -> Foreign {
        let protected = std::fs::read_to_string("/proc/sys/fs/protected_hardlinks")
            .expect("/proc/sys/fs/protected_hardlinks");
        assert_eq!(
            protected.trim(),
            "1",
            "this test needs fs.protected_hardlinks = 1 (Debian's default): sysctl -w fs.protected_hardlinks=1"
        );
        let sb = Sandbox::new();
        sb.contingent_applied();
        let line = sb.sell("PARTERRE:A:1");
        sb.json(&["export", "sales", "--link", LINK]);

        let stxd_user = Account::create();
        let peer = Account::create();
        chown_tree(sb.path(), stxd_user.uid, stxd_user.gid);
        let f = Foreign {
            sb,
            stxd_user,
            _peer: peer,
            line,
        };
        let pair: Vec<_> = std::fs::read_dir(f.inbox())
            .expect("inbox")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        assert_eq!(
            pair.len(),
            2,
            "the SALES pair in the manager's inbox: {pair:?}"
        );
        for p in &pair {
            std::os::unix::fs::chown(p, Some(f._peer.uid), Some(f.stxd_user.gid)).expect("chown");
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        }
        // What protected_hardlinks does to the receiving account: no link.
        let probe = Command::new("ln")
            .arg(&pair[0])
            .arg(f.inbox().join("probe"))
            .uid(f.stxd_user.uid)
            .gid(f.stxd_user.gid)
            .output()
            .expect("ln");
        assert!(
            !probe.status.success(),
            "a hard link to the peer's file was allowed: protected_hardlinks is not in force"
        );
        f
    }

    fn inbox(&self) -> std::path::PathBuf {
        self.sb
            .path()
            .join("var/exchange")
            .join(LINK)
            .join("to-manager")
    }

    /// `stxd process` as stxd's account; under strace (run as root, the
    /// command as that account) killed at the `nth` `call` when given.
    fn process(&self, kill: Option<(&str, u32)>) -> std::process::Output {
        let mut cmd = match kill {
            Some((call, nth)) => {
                let mut c = Command::new("/usr/bin/strace");
                c.args(["-f", "-qq", "-o", "/dev/null", "-u"])
                    .arg(&self.stxd_user.name)
                    .arg("-e")
                    .arg(format!("inject={call}:signal=KILL:when={nth}"))
                    .arg(env!("CARGO_BIN_EXE_stxd"));
                c
            }
            None => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_stxd"));
                c.uid(self.stxd_user.uid).gid(self.stxd_user.gid);
                c
            }
        };
        cmd.arg("process")
            .current_dir(self.sb.path())
            .env("STXD_CONFIG", "config/stxd.toml")
            .env_remove("STXD_FAILPOINT")
            .env("STXD_LOG", "warn")
            .output()
            .expect("run stxd")
    }

    /// Applied once, both files in `done/`, nothing left or refused.
    fn assert_archived(&self, said: &str) {
        let inbox = self.inbox();
        assert!(
            manifests(&inbox, "SALES").is_empty(),
            "left in the inbox: {said}"
        );
        let done: Vec<String> = std::fs::read_dir(inbox.join("done"))
            .expect("done/")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".SALES."))
            .collect();
        assert_eq!(
            done.len(),
            2,
            "both files of the pair in done/: {done:?} {said}"
        );
        assert!(
            manifests(&inbox.join("error"), "SALES").is_empty(),
            "refused: {said}"
        );
        assert_eq!(
            rows(
                &self.sb,
                "OPERA.sqlite",
                "SELECT line || ' ' || status FROM sales_line ORDER BY line"
            ),
            [format!("{} booked", self.line)]
        );
    }
}

fn said(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn a_pair_owned_by_the_peers_account_is_applied_and_archived() {
    let f = Foreign::new();
    let out = f.process(None);
    let said = said(&out);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stxd process as its account: {said}"
    );
    f.assert_archived(&said);
}

/// The archive's renames of a foreign pair, killed at each: the next
/// `stxd process` finishes the move; the sale is booked once.
#[test]
fn a_foreign_pair_archived_by_rename_survives_a_kill_at_each_step() {
    let kills = [
        ("renameat2", 1),
        ("renameat2", 2),
        ("fsync", 4),
        ("fsync", 6),
        ("fsync", 8),
        ("unlink", 1),
    ];
    for (call, nth) in kills {
        let f = Foreign::new();
        let cut = f.process(Some((call, nth)));
        let killed = cut.status.signal() == Some(libc::SIGKILL)
            || String::from_utf8_lossy(&cut.stderr).contains("+++ killed by SIGKILL");
        if call == "renameat2" {
            assert!(killed, "{call} #{nth}: not killed: {}", said(&cut));
        }
        let out = f.process(None);
        let said = said(&out);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{call} #{nth}, then process: {said}"
        );
        f.assert_archived(&format!("{call} #{nth}: {said}"));
    }
}

/// A trigger file another account dropped (owned by it, 0644) is taken and
/// its job run by a daemon that runs as its own account.
#[test]
fn a_trigger_owned_by_another_account_is_taken_and_run() {
    let sb = Sandbox::new();
    sb.first_use_done();
    sb.allot("PARTERRE:A:1-4");
    sb.stxd(&["trigger", "export-contingent", "--link", LINK])
        .expect_code(0);
    let stxd_user = Account::create();
    let ops = Account::create();
    chown_tree(sb.path(), stxd_user.uid, stxd_user.gid);
    let control = sb.path().join("var/state/control").join(LINK);
    let triggers: Vec<_> = std::fs::read_dir(&control)
        .expect("control folder")
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(triggers.len(), 1, "{triggers:?}");
    std::os::unix::fs::chown(&triggers[0], Some(ops.uid), Some(ops.gid)).expect("chown");
    std::fs::set_permissions(&triggers[0], std::fs::Permissions::from_mode(0o644)).expect("chmod");

    let log = sb.path().join("daemon.log");
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_stxd"))
        .arg("run")
        .current_dir(sb.path())
        .env("STXD_CONFIG", "config/stxd.toml")
        .env_remove("STXD_FAILPOINT")
        .env_remove("NOTIFY_SOCKET")
        .env("STXD_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .uid(stxd_user.uid)
        .gid(stxd_user.gid)
        .spawn()
        .expect("stxd run");
    let done = sb
        .path()
        .join("var/exchange")
        .join(LINK)
        .join("to-distributor/done");
    let start = std::time::Instant::now();
    while manifests(&done, "CONTINGENT").is_empty()
        && start.elapsed() < std::time::Duration::from_secs(20)
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = daemon.kill();
    let _ = daemon.wait();
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    assert_eq!(
        manifests(&done, "CONTINGENT").len(),
        1,
        "the triggered contingent export, applied: {said}"
    );
    let left: Vec<_> = std::fs::read_dir(&control)
        .expect("control folder")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "trigger files left: {left:?}\n{said}");
}
