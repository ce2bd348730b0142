//! Delivery: one thread per destination takes notifications from a bounded
//! queue (a full queue drops its oldest, said once) and runs the command or
//! POSTs to the webhook, within the timeout, retrying with a growing,
//! capped, jittered delay; a failure is logged, never returned.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tracing::{error, warn};

use super::{Alert, Event, Incident, Target, lock};

/// Delivery settings that are not in the config.
#[derive(Debug, Clone)]
pub struct Options {
    /// Notifications waiting per destination before the oldest is dropped.
    pub queue: usize,
    /// The wait after the first failed attempt (doubling after each).
    pub first_retry: Duration,
    /// The longest wait between two attempts.
    pub max_retry: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            queue: 1000,
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(60),
        }
    }
}

/// What a destination did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Notifications delivered.
    pub sent: u64,
    /// Notifications given up on after their retries (each logged).
    pub failed: u64,
    /// Notifications dropped from a full queue.
    pub dropped: u64,
}

/// A bearer token; never printed.
pub(super) struct Token(pub(super) String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

/// One notification, its body built when it was decided.
#[derive(Debug)]
pub(super) struct Notification {
    event: Event,
    state: &'static str,
    key: String,
    body: String,
}

/// The JSON body, in the documented field order.
#[derive(Serialize)]
struct Body<'a> {
    stxd: u32,
    event: &'static str,
    state: &'static str,
    reminder: bool,
    key: &'a str,
    link: Option<&'a str>,
    side: Option<&'static str>,
    file: Option<&'a str>,
    code: Option<&'a str>,
    summary: &'a str,
    fix: Option<&'a str>,
    since: Option<String>,
    host: &'a str,
    at: String,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_else(|_| t.to_string())
}

impl Notification {
    pub(super) fn new(
        incident: &Incident,
        resolved: bool,
        reminder: bool,
        host: &str,
        at: OffsetDateTime,
    ) -> Notification {
        let state = if resolved { "resolved" } else { "open" };
        let body = Body {
            stxd: 1,
            event: incident.event.name(),
            state,
            reminder,
            key: &incident.key,
            link: incident.link.as_deref(),
            side: incident.side.map(|s| s.as_str()),
            file: incident.file.as_deref(),
            code: incident.code.as_deref(),
            summary: &incident.summary,
            fix: incident.fix.as_deref(),
            since: incident.since.map(rfc3339),
            host,
            at: rfc3339(at),
        };
        Notification {
            event: incident.event,
            state,
            key: incident.key.clone(),
            body: serde_json::to_string(&body).unwrap_or_default(),
        }
    }
}

/// One destination: its settings, its queue and its thread.
pub(super) struct Sink {
    alert: Arc<Alert>,
    queue: Arc<Queue>,
}

struct Queue {
    state: Mutex<QueueState>,
    /// Signalled when a notification is pushed or the queue is closed.
    ready: Condvar,
    /// Signalled when the thread finished a delivery with nothing queued.
    idle: Condvar,
    capacity: usize,
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

#[derive(Default)]
struct QueueState {
    items: VecDeque<Notification>,
    /// The thread is delivering one.
    busy: bool,
    closed: bool,
    /// Dropped since the queue last emptied (the drop is logged once).
    dropping: u64,
}

impl Sink {
    pub(super) fn start(
        alert: Alert,
        token: Option<Token>,
        options: Options,
    ) -> Result<Sink, (String, String)> {
        let alert = Arc::new(alert);
        let queue = Arc::new(Queue {
            state: Mutex::default(),
            ready: Condvar::new(),
            idle: Condvar::new(),
            capacity: options.queue.max(1),
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        });
        let worker = Worker {
            transport: Transport::new(&alert, token),
            alert: Arc::clone(&alert),
            queue: Arc::clone(&queue),
            options,
        };
        // The thread logs where its starter logs (a test's subscriber too).
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        std::thread::Builder::new()
            .name(format!("alert-{}", alert.name))
            .spawn(move || tracing::dispatcher::with_default(&dispatch, || worker.run()))
            .map_err(|e| {
                (
                    alert.name.clone(),
                    format!("cannot start its delivery thread: {e}"),
                )
            })?;
        Ok(Sink { alert, queue })
    }

    pub(super) fn name(&self) -> &str {
        &self.alert.name
    }

    pub(super) fn alert(&self) -> &Alert {
        &self.alert
    }

    /// Queues `n`; when the queue is full, drops the oldest (logged once
    /// until the queue empties again).
    pub(super) fn push(&self, n: Notification) {
        let mut st = lock(&self.queue.state);
        if st.items.len() >= self.queue.capacity {
            st.items.pop_front();
            self.queue.dropped.fetch_add(1, Ordering::Relaxed);
            st.dropping += 1;
            if st.dropping == 1 {
                error!(alert = %self.alert.name, capacity = self.queue.capacity,
                    "alert queue full: dropping the oldest notifications until it empties (is the destination slow or down?)");
            }
        }
        st.items.push_back(n);
        self.queue.ready.notify_one();
    }

    /// Waits until nothing is queued or being delivered, or `deadline`.
    pub(super) fn flush(&self, deadline: Instant) -> bool {
        let mut st = lock(&self.queue.state);
        while st.busy || !st.items.is_empty() {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            st = self
                .queue
                .idle
                .wait_timeout(st, left)
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .0;
        }
        true
    }

    /// The thread delivers what is queued, then ends.
    pub(super) fn close(&self) {
        lock(&self.queue.state).closed = true;
        self.queue.ready.notify_all();
    }

    pub(super) fn stats(&self) -> Stats {
        Stats {
            sent: self.queue.sent.load(Ordering::Relaxed),
            failed: self.queue.failed.load(Ordering::Relaxed),
            dropped: self.queue.dropped.load(Ordering::Relaxed),
        }
    }
}

struct Worker {
    alert: Arc<Alert>,
    queue: Arc<Queue>,
    transport: Transport,
    options: Options,
}

impl Worker {
    fn run(self) {
        while let Some(n) = self.next() {
            self.deliver(&n);
            let mut st = lock(&self.queue.state);
            st.busy = false;
            if st.items.is_empty() {
                if st.dropping > 0 {
                    warn!(alert = %self.alert.name, dropped = st.dropping,
                        "alert queue emptied again; notifications were dropped meanwhile");
                    st.dropping = 0;
                }
                self.queue.idle.notify_all();
            }
        }
    }

    /// The next notification (marking the thread busy); `None` once the
    /// queue is closed and empty.
    fn next(&self) -> Option<Notification> {
        let mut st = lock(&self.queue.state);
        loop {
            if let Some(n) = st.items.pop_front() {
                st.busy = true;
                return Some(n);
            }
            if st.closed {
                return None;
            }
            st = self
                .queue
                .ready
                .wait(st)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    fn deliver(&self, n: &Notification) {
        let a = &self.alert;
        let mut attempt = 0;
        loop {
            let problem = match self.transport.send(n, a.timeout) {
                Ok(()) => {
                    self.queue.sent.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Err(problem) => problem,
            };
            if problem.permanent || attempt >= a.retries {
                self.queue.failed.fetch_add(1, Ordering::Relaxed);
                error!(alert = %a.name, destination = %self.transport, event = %n.event, state = n.state,
                    key = %n.key, attempts = attempt + 1, error = %problem.what,
                    "alert not delivered");
                return;
            }
            let wait = retry_delay(&self.options, attempt, jitter());
            warn!(alert = %a.name, destination = %self.transport, event = %n.event, key = %n.key,
                attempt = attempt + 1, retry_in_ms = wait.as_millis() as u64, error = %problem.what,
                "alert delivery failed; retrying");
            std::thread::sleep(wait);
            attempt += 1;
        }
    }
}

/// The wait before attempt `attempt + 2`: doubling from `first_retry`,
/// capped at `max_retry`, scaled by `0.5 + jitter / 2` (`jitter` in 0..=1).
fn retry_delay(options: &Options, attempt: u32, jitter: f64) -> Duration {
    crate::backoff::doubling(options.first_retry, attempt, options.max_retry, jitter)
}

/// A random fraction in 0..1 (0.5 without randomness).
fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    match getrandom::fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
        Err(_) => 0.5,
    }
}

/// Why an attempt failed, and whether trying again can help.
struct Problem {
    what: String,
    permanent: bool,
}

impl Problem {
    fn retry(what: impl Into<String>) -> Problem {
        Problem {
            what: what.into(),
            permanent: false,
        }
    }

    fn permanent(what: impl Into<String>) -> Problem {
        Problem {
            what: what.into(),
            permanent: true,
        }
    }
}

enum Transport {
    Command(Vec<String>),
    Webhook {
        url: String,
        token: Option<Token>,
        agent: ureq::Agent,
    },
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Command(argv) => write!(f, "command {}", argv[0]),
            Transport::Webhook { url, .. } => write!(f, "webhook {url}"),
        }
    }
}

impl Transport {
    fn new(alert: &Alert, token: Option<Token>) -> Transport {
        match &alert.target {
            Target::Command(argv) => Transport::Command(argv.clone()),
            Target::Webhook { url, .. } => {
                use ureq::tls::{RootCerts, TlsConfig, TlsProvider};
                // The system's OpenSSL (already linked for SSH) and its
                // trust store, where an internal CA is installed.
                let tls = TlsConfig::builder()
                    .provider(TlsProvider::NativeTls)
                    .root_certs(RootCerts::PlatformVerifier)
                    .build();
                let agent = ureq::Agent::config_builder()
                    .tls_config(tls)
                    .timeout_global(Some(alert.timeout))
                    .http_status_as_error(false)
                    // A redirect could carry the token elsewhere.
                    .max_redirects(0)
                    .user_agent(concat!("stxd/", env!("CARGO_PKG_VERSION")))
                    .build()
                    .into();
                Transport::Webhook {
                    url: url.clone(),
                    token,
                    agent,
                }
            }
        }
    }

    fn send(&self, n: &Notification, timeout: Duration) -> Result<(), Problem> {
        match self {
            Transport::Command(argv) => run_command(argv, n, timeout),
            Transport::Webhook { url, token, agent } => post(agent, url, token.as_ref(), n),
        }
    }
}

fn post(
    agent: &ureq::Agent,
    url: &str,
    token: Option<&Token>,
    n: &Notification,
) -> Result<(), Problem> {
    let mut request = agent.post(url).header("Content-Type", "application/json");
    if let Some(Token(token)) = token {
        request = request.header("Authorization", &format!("Bearer {token}"));
    }
    let mut response = match request.send(n.body.as_bytes()) {
        Ok(r) => r,
        Err(e) => return Err(Problem::retry(e.to_string())),
    };
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let mut text = String::new();
    let _ = response
        .body_mut()
        .as_reader()
        .take(300)
        .read_to_string(&mut text);
    let what = format!("HTTP {status}: {}", text.trim());
    // A server error, an overload or a timeout may pass; a refusal will not.
    if status.is_server_error() || matches!(status.as_u16(), 408 | 429) {
        Err(Problem::retry(what))
    } else {
        Err(Problem::permanent(what))
    }
}

/// Runs the command with the body on its standard input, in a process
/// group of its own (killed whole after `timeout`), its standard error kept
/// (the first 2 kB) for the log.
#[allow(unsafe_code)]
fn run_command(argv: &[String], n: &Notification, timeout: Duration) -> Result<(), Problem> {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let deadline = Instant::now() + timeout;
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .env("STXD_ALERT_EVENT", n.event.name())
        .env("STXD_ALERT_STATE", n.state)
        .env("STXD_ALERT_KEY", &n.key)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .map_err(|e| {
            let what = format!("cannot run {}: {e}", argv[0]);
            // ETXTBSY: the program is being written (or another thread's
            // fork still holds it open for writing) and will run soon.
            if e.raw_os_error() == Some(libc::ETXTBSY) {
                Problem::retry(what)
            } else {
                Problem::permanent(what)
            }
        })?;
    let pid = child.id() as libc::pid_t;
    // Written and read aside, so that a command that reads nothing, or
    // writes much, cannot hold us past the timeout.
    if let Some(mut stdin) = child.stdin.take() {
        let body = n.body.clone();
        std::thread::spawn(move || {
            let _ = stdin.write_all(body.as_bytes());
        });
    }
    let (tx, rx) = std::sync::mpsc::channel();
    if let Some(mut stderr) = child.stderr.take() {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(k) = stderr.read(&mut buf) {
                if k == 0 {
                    break;
                }
                let room = 2048usize.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..k.min(room)]);
            }
            let _ = tx.send(String::from_utf8_lossy(&kept).into_owned());
        });
    }
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                // SAFETY: kill(2) on the process group of a child we spawned
                // with process_group(0) and have not reaped.
                unsafe { libc::kill(-pid, libc::SIGKILL) };
                let _ = child.wait();
                return Err(Problem::retry(format!(
                    "killed after the timeout of {}s",
                    timeout.as_secs()
                )));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(Problem::retry(format!("cannot wait for the command: {e}"))),
        }
    };
    if status.success() {
        return Ok(());
    }
    let stderr = rx
        .recv_timeout(Duration::from_millis(500))
        .unwrap_or_default();
    let how = match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit code {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    };
    Err(Problem::retry(if stderr.trim().is_empty() {
        how
    } else {
        format!("{how}: {}", stderr.trim())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_double_are_capped_and_jittered() {
        let o = Options {
            queue: 1,
            first_retry: Duration::from_secs(1),
            max_retry: Duration::from_secs(60),
        };
        assert_eq!(retry_delay(&o, 0, 1.0), Duration::from_secs(1));
        assert_eq!(retry_delay(&o, 3, 1.0), Duration::from_secs(8));
        assert_eq!(retry_delay(&o, 10, 1.0), Duration::from_secs(60));
        assert_eq!(retry_delay(&o, 40, 0.0), Duration::from_secs(30));
        assert_eq!(retry_delay(&o, 0, f64::NAN), Duration::from_millis(500));
    }

    #[test]
    fn the_body_has_every_field_in_order() {
        let i = Incident::new(Event::FileRefused, "refused:l:f", "bad")
            .link("l")
            .side(crate::exchange::Role::Distributor)
            .file("f")
            .code("bad-signature");
        let at = time::macros::datetime!(2026-12-01 09:00:05 UTC);
        let n = Notification::new(&i, false, false, "stx1", at);
        assert_eq!(
            n.body,
            r#"{"stxd":1,"event":"file-refused","state":"open","reminder":false,"key":"refused:l:f","link":"l","side":"distributor","file":"f","code":"bad-signature","summary":"bad","fix":null,"since":null,"host":"stx1","at":"2026-12-01T09:00:05Z"}"#
        );
        let n = Notification::new(&i, true, false, "stx1", at);
        assert_eq!((n.state, n.event), ("resolved", Event::FileRefused));
    }
}
