//! `stxd run` under a pretend systemd: the test binds the notification
//! socket, starts the real binary with `NOTIFY_SOCKET` (and
//! `WATCHDOG_USEC`) pointing at it, and reads what the daemon announces.
//! Every wait polls with a generous deadline.

use std::ffi::OsStr;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::util::{DEADLINE, Daemon, Sandbox, manifests};

/// The socket systemd would listen on.
struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
    seen: Vec<String>,
}

impl NotifySocket {
    fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .expect("read timeout");
        NotifySocket {
            socket,
            path,
            seen: Vec::new(),
        }
    }

    /// Reads datagrams until one satisfies `want`; returns it. Fails with
    /// everything seen (and the daemon's log) after the deadline.
    #[track_caller]
    fn wait_for(&mut self, want: impl Fn(&str) -> bool, log: impl Fn() -> String) -> String {
        let start = Instant::now();
        let mut buf = [0u8; 4096];
        loop {
            assert!(
                start.elapsed() < DEADLINE,
                "no matching notification after {DEADLINE:?}; seen {:?}; daemon log:\n{}",
                self.seen,
                log()
            );
            match self.socket.recv(&mut buf) {
                Ok(n) => {
                    let message = String::from_utf8_lossy(&buf[..n]).into_owned();
                    self.seen.push(message.clone());
                    if want(&message) {
                        return message;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => panic!("recv: {e}"),
            }
        }
    }
}

/// `stxd run` with `NOTIFY_SOCKET` at `notify` and, when given,
/// `WATCHDOG_USEC`: the harness's daemon, not waiting for "ready" (the
/// test reads READY=1 on the socket).
fn start(sb: &Sandbox, notify: &Path, watchdog_usec: Option<&str>) -> Daemon {
    let mut env = vec![("NOTIFY_SOCKET", notify.as_os_str())];
    if let Some(usec) = watchdog_usec {
        env.push(("WATCHDOG_USEC", OsStr::new(usec)));
    }
    Daemon::spawn(sb, &[], "info", &env)
}

#[test]
fn ready_comes_after_recovery_then_watchdog_then_stopping_on_sigterm() {
    let sb = Sandbox::new();
    sb.ready();
    sb.stxd(&["mapping", "import", "samples/tourism/mapping.csv"])
        .expect_code(0);
    // A file waiting since before the start: READY=1 must wait for it.
    sb.stxd(&["export", "seatplan", "--link", "opera-tourism"])
        .expect_code(0);
    let exchange = sb.path().join("var/exchange/opera-tourism/to-distributor");
    assert_eq!(manifests(&exchange, "SEATPLAN").len(), 1);
    // The manager's store (made by `check`) is removed: the daemon creates it
    // again before READY=1. The mappings live in the distributor's.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(sb.path().join(format!("var/state/OPERA.sqlite{suffix}")));
    }
    assert!(!sb.path().join("var/state/OPERA.sqlite").exists());

    let mut notify = NotifySocket::bind(sb.path());
    let mut daemon = start(&sb, &notify.path, Some("200000"));
    let ready = notify.wait_for(|m| m.lines().any(|l| l == "READY=1"), || daemon.log());
    // At READY=1 the stores exist and the waiting file has been handled.
    assert!(
        sb.path().join("var/state/OPERA.sqlite").is_file(),
        "store created before READY=1"
    );
    assert!(
        manifests(&exchange, "SEATPLAN").is_empty(),
        "inbox listed before READY=1"
    );
    assert_eq!(manifests(&exchange.join("done"), "SEATPLAN").len(), 1);
    assert!(
        ready.contains("STATUS=ready: 2 institutions, 1 link"),
        "{ready}"
    );
    let before_ready = notify.seen.len() - 1;
    assert!(
        notify.seen[..before_ready]
            .iter()
            .all(|m| !m.contains("READY=1")),
        "{:?}",
        notify.seen
    );

    // WATCHDOG_USEC=200000: a keep-alive every 100 ms, again and again.
    for _ in 0..3 {
        notify.wait_for(|m| m == "WATCHDOG=1", || daemon.log());
    }

    // `stxd status` sees the daemon (and its probe disturbs nothing).
    let status = sb.stxd(&["--json", "status"]);
    status.expect_code(0);
    let status: serde_json::Value = serde_json::from_str(&status.stdout()).expect("json");
    assert_eq!(status["daemon"]["running"], true, "{status:#}");
    assert_eq!(status["daemon"]["pid"], daemon.pid(), "{status:#}");
    notify.wait_for(|m| m == "WATCHDOG=1", || daemon.log());

    daemon.signal(libc::SIGTERM);
    notify.wait_for(|m| m.lines().any(|l| l == "STOPPING=1"), || daemon.log());
    assert_eq!(daemon.wait_exit(), Some(0), "{}", daemon.log());
}

#[test]
fn without_a_watchdog_no_keepalive_is_sent_and_a_reload_is_announced() {
    let sb = Sandbox::new();
    let mut notify = NotifySocket::bind(sb.path());
    let mut daemon = start(&sb, &notify.path, None);
    notify.wait_for(|m| m.lines().any(|l| l == "READY=1"), || daemon.log());
    daemon.signal(libc::SIGHUP);
    notify.wait_for(
        |m| m.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        || daemon.log(),
    );
    notify.wait_for(|m| m.lines().any(|l| l == "READY=1"), || daemon.log());
    daemon.signal(libc::SIGTERM);
    notify.wait_for(|m| m.lines().any(|l| l == "STOPPING=1"), || daemon.log());
    assert_eq!(daemon.wait_exit(), Some(0), "{}", daemon.log());
    assert!(
        notify.seen.iter().all(|m| m != "WATCHDOG=1"),
        "{:?}",
        notify.seen
    );
}
