//! systemd's service notification protocol (`sd_notify`), spoken directly.
//!
//! Takes the environment systemd gives a `Type=notify` service
//! (`NOTIFY_SOCKET`, `WATCHDOG_USEC`, `WATCHDOG_PID`) and sends its state
//! messages as datagrams on that socket: `READY=1`, `RELOADING=1`,
//! `STOPPING=1`, `WATCHDOG=1`, `STATUS=…`, `EXTEND_TIMEOUT_USEC=…`. With no
//! `NOTIFY_SOCKET` (a terminal, a test, another supervisor) every call is a
//! no-op. A failed send is logged, never returned: the daemon's work does
//! not depend on systemd hearing it. This module decides nothing about
//! *when* to send; [`crate::daemon`] does. It never changes the environment
//! (children do not exist, and `set_var`/`remove_var` are racy).
//!
//! Hand-written rather than the `sd-notify` crate: the protocol is one
//! datagram per message, `std` has abstract socket addresses, and an
//! explicit [`Notifier::from_vars`] lets tests inject the environment
//! without touching the process's.

use std::ffi::OsStr;
use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Where state messages go, and the watchdog period systemd expects.
#[derive(Debug)]
pub struct Notifier {
    target: Option<Target>,
    watchdog: Option<Duration>,
    /// A failed send is logged at warn once, then at debug.
    warned: AtomicBool,
}

#[derive(Debug)]
struct Target {
    socket: UnixDatagram,
    addr: SocketAddr,
    /// As given, for messages.
    name: String,
}

impl Notifier {
    /// A notifier that sends nothing.
    pub fn disabled() -> Notifier {
        Notifier {
            target: None,
            watchdog: None,
            warned: AtomicBool::new(false),
        }
    }

    /// The notifier systemd set up for this process: `NOTIFY_SOCKET`,
    /// `WATCHDOG_USEC` and `WATCHDOG_PID` from the environment. A socket
    /// that cannot be used is logged and gives a disabled notifier.
    pub fn from_env() -> Notifier {
        let socket = std::env::var_os("NOTIFY_SOCKET");
        let usec = std::env::var("WATCHDOG_USEC").ok();
        let pid = std::env::var("WATCHDOG_PID").ok();
        match Notifier::from_vars(
            socket.as_deref(),
            usec.as_deref(),
            pid.as_deref(),
            std::process::id(),
        ) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "systemd notifications disabled");
                Notifier::disabled()
            }
        }
    }

    /// A notifier from explicit values of `NOTIFY_SOCKET`, `WATCHDOG_USEC`
    /// and `WATCHDOG_PID`, for a process whose id is `pid`. A socket path
    /// starting with `@` is an abstract socket. The watchdog is on when
    /// `WATCHDOG_USEC` is a positive number and `WATCHDOG_PID`, if set,
    /// names this process (systemd sets it so a child does not inherit the
    /// duty).
    pub fn from_vars(
        notify_socket: Option<&OsStr>,
        watchdog_usec: Option<&str>,
        watchdog_pid: Option<&str>,
        pid: u32,
    ) -> io::Result<Notifier> {
        let target = match notify_socket {
            None => None,
            Some(s) if s.is_empty() => None,
            Some(s) => Some(Target {
                addr: socket_addr(s)?,
                socket: UnixDatagram::unbound()?,
                name: s.to_string_lossy().into_owned(),
            }),
        };
        let for_us = watchdog_pid.is_none_or(|p| p.trim().parse::<u32>().ok() == Some(pid));
        let watchdog = watchdog_usec
            .and_then(|u| u.trim().parse::<u64>().ok())
            .filter(|&u| u > 0 && for_us)
            .map(Duration::from_micros);
        Ok(Notifier {
            target,
            watchdog,
            warned: AtomicBool::new(false),
        })
    }

    /// Whether messages go anywhere.
    pub fn enabled(&self) -> bool {
        self.target.is_some()
    }

    /// How often to send [`Notifier::watchdog`]: half the period systemd
    /// expects (`WatchdogSec=`), so one late tick is not fatal. `None` when
    /// systemd expects no keep-alive.
    pub fn watchdog_interval(&self) -> Option<Duration> {
        self.watchdog.map(|p| p / 2)
    }

    /// `READY=1` (with a status line): start-up is complete.
    pub fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={}", one_line(status)));
    }

    /// `RELOADING=1` with `MONOTONIC_USEC`: a reload started; send
    /// [`Notifier::ready`] when it ends.
    pub fn reloading(&self) {
        self.send(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
    }

    /// `STOPPING=1` (with a status line): shutdown started.
    pub fn stopping(&self, status: &str) {
        self.send(&format!("STOPPING=1\nSTATUS={}", one_line(status)));
    }

    /// `WATCHDOG=1`: the main loop is alive.
    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    /// `STATUS=…`: a short line shown by `systemctl status`.
    pub fn status(&self, text: &str) {
        self.send(&format!("STATUS={}", one_line(text)));
    }

    /// Runs `work`, asking systemd every `every` for three times that long
    /// again (`EXTEND_TIMEOUT_USEC`) until it returns: start-up work that
    /// can outlast `TimeoutStartSec=` on a large store (a schema migration
    /// rewrites tables) without systemd killing it and starting it over.
    /// Only a live process asks: a hung one is still stopped in time.
    pub fn extending<T>(&self, every: Duration, work: impl FnOnce() -> T) -> T {
        if self.target.is_none() {
            return work();
        }
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let message = format!(
            "EXTEND_TIMEOUT_USEC={}",
            every.saturating_mul(3).as_micros()
        );
        std::thread::scope(|s| {
            s.spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(every)
                {
                    self.send(&message);
                }
            });
            let out = work();
            drop(done);
            out
        })
    }

    /// Sends one raw message (newline-separated `KEY=VALUE` lines). Failures
    /// are logged (warn the first time, then debug) and otherwise ignored.
    pub fn send(&self, message: &str) {
        let Some(t) = &self.target else {
            return;
        };
        if let Err(e) = t.socket.send_to_addr(message.as_bytes(), &t.addr) {
            let first = !self.warned.swap(true, Ordering::Relaxed);
            let what = message.lines().next().unwrap_or_default();
            if first {
                tracing::warn!(socket = %t.name, message = what, error = %e,
                    "cannot notify systemd; check NOTIFY_SOCKET and NotifyAccess=");
            } else {
                tracing::debug!(socket = %t.name, message = what, error = %e, "cannot notify systemd");
            }
        }
    }
}

/// An interval ticking at [`Notifier::watchdog_interval`] (missed ticks
/// skipped), or `None` when systemd expects no keep-alive. Poll it with
/// [`next_tick`] in the daemon's main loop, so a hung loop stops the
/// keep-alives and systemd restarts the service.
pub fn watchdog_timer(notifier: &Notifier) -> Option<tokio::time::Interval> {
    notifier.watchdog_interval().map(|period| {
        let mut timer = tokio::time::interval(period);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        timer
    })
}

/// The next tick of an optional timer; never resolves for `None`.
pub async fn next_tick(timer: &mut Option<tokio::time::Interval>) {
    match timer {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// The `STATUS=` line of a running daemon: what it serves.
pub fn summary(config: &crate::config::Config) -> String {
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let (i, l) = (config.institutions.len(), config.links.len());
    format!(
        "ready: {i} institution{}, {l} link{}; inboxes listed every {}s",
        plural(i),
        plural(l),
        config.daemon.scan_seconds
    )
}

/// A status text on one line (a newline would start another assignment).
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

fn socket_addr(s: &OsStr) -> io::Result<SocketAddr> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = s.as_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        return abstract_addr(name);
    }
    if bytes.first() != Some(&b'/') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "NOTIFY_SOCKET must be an absolute path or start with '@', found {:?}",
                s.to_string_lossy()
            ),
        ));
    }
    SocketAddr::from_pathname(s)
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_addr(name: &[u8]) -> io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn abstract_addr(_name: &[u8]) -> io::Result<SocketAddr> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract NOTIFY_SOCKET addresses exist on Linux only",
    ))
}

/// `CLOCK_MONOTONIC` in microseconds, as `RELOADING=1` wants it.
#[allow(unsafe_code)]
fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    if rc != 0 {
        return 0;
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    secs.saturating_mul(1_000_000).saturating_add(nanos / 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound() -> (tempfile::TempDir, UnixDatagram, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        (dir, socket, path)
    }

    fn recv(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 4096];
        let n = socket.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn each_state_arrives_as_one_datagram_on_a_path_socket() {
        let (_dir, socket, path) = bound();
        let n = Notifier::from_vars(Some(path.as_os_str()), None, None, 1).unwrap();
        assert!(n.enabled());
        n.ready("ready: 2 institutions");
        assert_eq!(recv(&socket), "READY=1\nSTATUS=ready: 2 institutions");
        n.watchdog();
        assert_eq!(recv(&socket), "WATCHDOG=1");
        n.status("scanning\nline two");
        assert_eq!(recv(&socket), "STATUS=scanning line two");
        n.reloading();
        let reloading = recv(&socket);
        let usec = reloading
            .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
            .unwrap();
        assert!(usec.parse::<u64>().unwrap() > 0, "{reloading}");
        n.stopping("stopping");
        assert_eq!(recv(&socket), "STOPPING=1\nSTATUS=stopping");
    }

    #[test]
    fn long_work_extends_the_start_timeout_until_it_returns() {
        let (_dir, socket, path) = bound();
        let n = Notifier::from_vars(Some(path.as_os_str()), None, None, 1).unwrap();
        let every = Duration::from_millis(40);
        let out = n.extending(every, || {
            std::thread::sleep(Duration::from_millis(300));
            7
        });
        assert_eq!(out, 7);
        n.status("after");
        let mut extended = 0;
        loop {
            match recv(&socket).as_str() {
                "EXTEND_TIMEOUT_USEC=120000" => extended += 1,
                "STATUS=after" => break,
                other => panic!("unexpected message {other:?}"),
            }
        }
        // About one per 40 ms of the 300 (fewer on a loaded machine), and
        // none once the work returned: the status came last.
        assert!(extended >= 2, "{extended}");
        // Quick work sends nothing.
        n.extending(every, || ());
        n.status("again");
        assert_eq!(recv(&socket), "STATUS=again");
    }

    #[test]
    fn an_abstract_socket_is_reached_with_its_at_name() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!(
            "stxd-test-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        );
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&addr).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let var = format!("@{name}");
        let n = Notifier::from_vars(Some(OsStr::new(&var)), None, None, 1).unwrap();
        n.ready("ok");
        assert_eq!(recv(&socket), "READY=1\nSTATUS=ok");
    }

    #[test]
    fn without_a_socket_nothing_is_sent_and_nothing_fails() {
        let n = Notifier::from_vars(None, Some("30000000"), None, 7).unwrap();
        assert!(!n.enabled());
        n.ready("x");
        n.watchdog();
        n.stopping("x");
        assert_eq!(n.watchdog_interval(), Some(Duration::from_secs(15)));
        let empty = Notifier::from_vars(Some(OsStr::new("")), None, None, 7).unwrap();
        assert!(!empty.enabled());
    }

    #[test]
    fn a_relative_socket_path_is_refused_with_what_to_check() {
        let e = Notifier::from_vars(Some(OsStr::new("notify.sock")), None, None, 1).unwrap_err();
        assert!(
            e.to_string().contains("absolute path or start with '@'"),
            "{e}"
        );
    }

    #[test]
    fn a_socket_nobody_listens_on_is_logged_not_fatal() {
        let (dir, socket, path) = bound();
        drop(socket);
        let n = Notifier::from_vars(Some(path.as_os_str()), None, None, 1).unwrap();
        n.ready("x");
        n.watchdog();
        assert!(n.warned.load(Ordering::Relaxed));
        drop(dir);
    }

    #[test]
    fn the_watchdog_is_half_the_period_and_only_for_the_named_pid() {
        let on = |usec: Option<&str>, pid: Option<&str>| {
            Notifier::from_vars(None, usec, pid, 42)
                .unwrap()
                .watchdog_interval()
        };
        assert_eq!(on(Some("200000"), None), Some(Duration::from_millis(100)));
        assert_eq!(
            on(Some("60000000"), Some("42")),
            Some(Duration::from_secs(30))
        );
        assert_eq!(on(Some("60000000"), Some("43")), None, "another process's");
        assert_eq!(on(Some("0"), None), None);
        assert_eq!(on(Some("soon"), None), None);
        assert_eq!(on(None, Some("42")), None);
    }

    #[test]
    fn a_status_keeps_its_unicode() {
        let (_dir, socket, path) = bound();
        let n = Notifier::from_vars(Some(path.as_os_str()), None, None, 1).unwrap();
        n.status("é ✓");
        assert_eq!(recv(&socket), "STATUS=é ✓");
    }
}
