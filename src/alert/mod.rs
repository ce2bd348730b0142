//! Alerts: telling people, through a command or a webhook, that a link is
//! stuck, once per incident, and when it cleared.
//!
//! The daemon [`Alerter::raise`]s an [`Incident`] each time it sees a
//! condition (a file refused, parked or held too long, a sequence gap, a
//! failed job, a share down) and [`Alerter::resolve`]s its key when the
//! condition is gone. Each `[[alert]]` destination sends one notification
//! when an incident opens, a reminder at most once per `rate_limit_seconds`
//! while it stays open, and one resolution; raising a key again, or
//! resolving one never sent, sends nothing. Those decisions are made at
//! once, under a lock, by [`ledger`] (pure, `now` passed in); the sending
//! happens on one thread per destination with a bounded queue, so a slow
//! webhook never delays a file. A failed delivery is retried, then logged
//! at error level: an alert never stops the daemon.
//!
//! # The notification
//!
//! One JSON object, stable (fields may be added, never renamed):
//!
//! ```text
//! {"stxd": 1, "event": "file-refused", "state": "open", "reminder": false,
//!  "key": "refused:opera-tourism:<file>", "link": "opera-tourism",
//!  "side": "distributor", "file": "<file name>", "code": "bad-signature",
//!  "summary": "…", "fix": "…", "since": "2026-12-01T09:00:00Z",
//!  "host": "stx1", "at": "2026-12-01T09:00:05Z"}
//! ```
//!
//! `event` is what happened (the names of [`Event`]); `state` is `open` or
//! `resolved` (the resolution carries the incident's last details); `link`,
//! `side`, `file`, `code`, `fix` and `since` are `null` when they do not
//! apply. A webhook gets it as the body of a POST (`Content-Type:
//! application/json`, `Authorization: Bearer <token>` with a token file); a
//! command on its standard input, with `STXD_ALERT_EVENT`, `STXD_ALERT_STATE`
//! and `STXD_ALERT_KEY` in its environment. A 2xx answer, or exit code 0, is
//! a delivery.
//!
//! Sits below the daemon and above [`crate::config`]; knows nothing of
//! stores or folders.

mod deliver;
mod ledger;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use time::OffsetDateTime;

use crate::config::ConfigError;
pub use crate::config::alert::{Alert, Event, Target};
use crate::exchange::Role;
use deliver::{Notification, Sink};
pub use deliver::{Options, Stats};
use ledger::{Ledger, Send};

/// Something people should hear of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    /// Names the incident: raising the same key again is the same incident
    /// (`refused:<link>:<file>`; see [`key`]).
    pub key: String,
    pub event: Event,
    pub link: Option<String>,
    /// The side of the link that saw it.
    pub side: Option<Role>,
    /// The file concerned (its name), if any.
    pub file: Option<String>,
    /// A short machine-readable reason (`bad-signature`, `sequence-gap`).
    pub code: Option<String>,
    /// One line for people.
    pub summary: String,
    /// What to do about it.
    pub fix: Option<String>,
    /// When the condition began. Thresholded events (`file-parked`,
    /// `file-held`, `sftp-down`) are sent once it lasted their threshold;
    /// without it, the condition has just begun.
    pub since: Option<OffsetDateTime>,
}

impl Incident {
    /// An incident with only its key, event and summary.
    pub fn new(event: Event, key: impl Into<String>, summary: impl Into<String>) -> Incident {
        Incident {
            key: key.into(),
            event,
            link: None,
            side: None,
            file: None,
            code: None,
            summary: summary.into(),
            fix: None,
            since: None,
        }
    }

    pub fn link(mut self, link: impl Into<String>) -> Incident {
        self.link = Some(link.into());
        self
    }

    pub fn side(mut self, side: Role) -> Incident {
        self.side = Some(side);
        self
    }

    pub fn file(mut self, file: impl Into<String>) -> Incident {
        self.file = Some(file.into());
        self
    }

    pub fn code(mut self, code: impl Into<String>) -> Incident {
        self.code = Some(code.into());
        self
    }

    pub fn fix(mut self, fix: impl Into<String>) -> Incident {
        self.fix = Some(fix.into());
        self
    }

    pub fn since(mut self, since: OffsetDateTime) -> Incident {
        self.since = Some(since);
        self
    }
}

/// The key of an incident: a prefix per event and the parts that tell two
/// incidents of that event apart, joined by `:`
/// (`key(Event::FileRefused, &[link, file])` is `refused:<link>:<file>`).
pub fn key(event: Event, parts: &[&str]) -> String {
    let prefix = match event {
        Event::FileRefused => "refused",
        Event::FileParked => "parked",
        Event::FileHeld => "held",
        Event::SequenceGap => "gap",
        Event::JobFailed => "job",
        Event::SftpDown => "sftp",
        Event::ReconcileDifference => "reconcile",
        Event::Resolved => "resolved",
    };
    std::iter::once(prefix)
        .chain(parts.iter().copied())
        .collect::<Vec<_>>()
        .join(":")
}

/// Sends the incidents of the daemon to the `[[alert]]` destinations.
/// Cheap to clone (the clones share the destinations); the delivery threads
/// end once the last clone is dropped and their queues are empty.
#[derive(Clone)]
pub struct Alerter {
    inner: Arc<Inner>,
}

struct Inner {
    sinks: Vec<Sink>,
    ledgers: Vec<Mutex<Ledger>>,
    /// Keys raised and not resolved, whatever the destinations did with
    /// them: what the daemon checks for conditions that cleared.
    open: Mutex<BTreeSet<String>>,
    host: String,
}

impl Drop for Inner {
    fn drop(&mut self) {
        for sink in &self.sinks {
            sink.close();
        }
    }
}

impl std::fmt::Debug for Alerter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.inner.sinks.iter().map(Sink::name).collect();
        f.debug_struct("Alerter").field("alerts", &names).finish()
    }
}

impl Alerter {
    /// An alerter with no destination (a config without `[[alert]]`): it
    /// keeps track of open keys and sends nothing.
    pub fn none() -> Alerter {
        Alerter::start_with(&[], Options::default()).unwrap_or_else(|_| unreachable!())
    }

    /// Starts a delivery thread per destination, after [`check`]ing their
    /// token files and programs; every problem found, with its key path.
    pub fn start(alerts: &[Alert]) -> Result<Alerter, Vec<ConfigError>> {
        Alerter::start_with(alerts, Options::default())
    }

    /// [`Alerter::start`] with other delivery settings (queue length, retry
    /// delays).
    pub fn start_with(alerts: &[Alert], options: Options) -> Result<Alerter, Vec<ConfigError>> {
        let (tokens, errors) = read_files(alerts);
        if !errors.is_empty() {
            return Err(errors);
        }
        let sinks: Vec<Sink> = alerts
            .iter()
            .zip(tokens)
            .map(|(alert, token)| Sink::start(alert.clone(), token, options.clone()))
            .collect::<Result<_, _>>()
            .map_err(|(name, e): (String, String)| {
                vec![ConfigError {
                    at: format!("alert {name:?}"),
                    problem: e,
                }]
            })?;
        Ok(Alerter {
            inner: Arc::new(Inner {
                ledgers: sinks.iter().map(|_| Mutex::default()).collect(),
                sinks,
                open: Mutex::default(),
                host: hostname(),
            }),
        })
    }

    /// Raises `incident` now; see [`Alerter::raise_at`].
    pub fn raise(&self, incident: Incident) {
        self.raise_at(incident, OffsetDateTime::now_utc());
    }

    /// Raises `incident` at `now`: each destination that takes its event
    /// (and whose threshold it passed) sends it if it is new there, or if
    /// its rate limit passed since it last sent it. Never blocks on a
    /// delivery. An incident of event [`Event::Resolved`] resolves its key.
    pub fn raise_at(&self, incident: Incident, now: OffsetDateTime) {
        if incident.event == Event::Resolved {
            return self.resolve_at(&incident.key, now);
        }
        lock(&self.inner.open).insert(incident.key.clone());
        for (sink, ledger) in self.inner.sinks.iter().zip(&self.inner.ledgers) {
            let send = lock(ledger).raise(sink.alert(), &incident, now);
            if let Some(send) = send {
                sink.push(self.notification(send, now));
            }
        }
    }

    /// Resolves the incident `key` now; see [`Alerter::resolve_at`].
    pub fn resolve(&self, key: &str) {
        self.resolve_at(key, OffsetDateTime::now_utc());
    }

    /// The incident `key` cleared at `now`: each destination that sent its
    /// opening sends one resolution. A key never raised, or already
    /// resolved, sends nothing.
    pub fn resolve_at(&self, key: &str, now: OffsetDateTime) {
        if !lock(&self.inner.open).remove(key) {
            return;
        }
        for (sink, ledger) in self.inner.sinks.iter().zip(&self.inner.ledgers) {
            let send = lock(ledger).resolve(sink.alert(), key, now);
            if let Some(send) = send {
                sink.push(self.notification(send, now));
            }
        }
    }

    /// The keys raised and not resolved that start with `prefix` (`""` for
    /// all): the daemon resolves those whose condition it no longer sees.
    pub fn open_keys(&self, prefix: &str) -> Vec<String> {
        lock(&self.inner.open)
            .range(prefix.to_owned()..)
            .take_while(|k| k.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// Waits until every destination's queue is empty and its delivery
    /// done, at most `timeout`; whether they all are (a stopping daemon
    /// gives its last alerts a moment).
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        self.inner.sinks.iter().all(|s| s.flush(deadline))
    }

    /// What each destination did so far, by name.
    pub fn stats(&self) -> Vec<(String, Stats)> {
        self.inner
            .sinks
            .iter()
            .map(|s| (s.name().to_owned(), s.stats()))
            .collect()
    }

    fn notification(&self, send: Send, now: OffsetDateTime) -> Notification {
        let (incident, resolved, reminder) = match send {
            Send::Open { incident, reminder } => (incident, false, reminder),
            Send::Resolved(incident) => (incident, true, false),
        };
        Notification::new(&incident, resolved, reminder, &self.inner.host, now)
    }
}

/// Checks what the `[[alert]]` tables name outside the config: each token
/// file is private and holds a token, each command's program is an
/// executable file. Every problem, with its key path (`alert[1].command`).
pub fn check(alerts: &[Alert]) -> Vec<ConfigError> {
    read_files(alerts).1
}

/// The token of each alert (if it has one) and the problems found.
fn read_files(alerts: &[Alert]) -> (Vec<Option<deliver::Token>>, Vec<ConfigError>) {
    use std::os::unix::fs::PermissionsExt;
    let mut errors = Vec::new();
    let mut tokens = Vec::new();
    for (i, alert) in alerts.iter().enumerate() {
        let mut token = None;
        match &alert.target {
            Target::Webhook {
                token_file: Some(path),
                ..
            } => match crate::config::read_token(path) {
                Ok(t) => token = Some(deliver::Token(t)),
                Err(e) => errors.push(ConfigError {
                    at: format!("alert[{i}].webhook_token_file"),
                    problem: match e {
                        crate::config::SecretError::Missing(path) => format!(
                            "token file {} is missing: write the webhook's bearer token there, readable by stxd's user only (chmod 600)",
                            path.display()
                        ),
                        crate::config::SecretError::Permissions { path, mode } => format!(
                            "token file {} is readable by others (mode {mode:o}): run chmod 600 {}",
                            path.display(),
                            path.display()
                        ),
                        other => other.to_string(),
                    },
                }),
            },
            Target::Webhook { .. } => {}
            Target::Command(argv) => {
                let program = std::path::Path::new(&argv[0]);
                let problem = match std::fs::metadata(program) {
                    Err(e) => Some(format!("cannot run {}: {e}", program.display())),
                    Ok(m) if !m.is_file() => {
                        Some(format!("{} is not a regular file", program.display()))
                    }
                    Ok(m) if m.permissions().mode() & 0o111 == 0 => Some(format!(
                        "{} is not executable: chmod +x it",
                        program.display()
                    )),
                    Ok(_) => None,
                };
                if let Some(problem) = problem {
                    errors.push(ConfigError {
                        at: format!("alert[{i}].command"),
                        problem,
                    });
                }
            }
        }
        tokens.push(token);
    }
    (tokens, errors)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding it left plain data, still usable.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// This host's name, for the `host` field (empty if it cannot be read).
#[allow(unsafe_code)]
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname(2) writes at most `buf.len()` bytes into the buffer
    // we own.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_event_and_the_parts() {
        assert_eq!(
            key(Event::FileRefused, &["opera-tourism", "f.stx"]),
            "refused:opera-tourism:f.stx"
        );
        assert_eq!(key(Event::SftpDown, &["l"]), "sftp:l");
    }

    #[test]
    fn open_keys_are_tracked_without_destinations() {
        let a = Alerter::none();
        a.raise(Incident::new(Event::FileRefused, "refused:l:a", "x"));
        a.raise(Incident::new(Event::FileRefused, "refused:l:b", "x"));
        a.raise(Incident::new(Event::FileRefused, "refused:m:c", "x"));
        a.raise(Incident::new(Event::JobFailed, "job:l:poll", "x"));
        assert_eq!(a.open_keys("refused:l:"), ["refused:l:a", "refused:l:b"]);
        a.raise(Incident::new(Event::Resolved, "refused:l:a", ""));
        a.resolve("refused:l:b");
        a.resolve("never:raised");
        assert_eq!(a.open_keys(""), ["job:l:poll", "refused:m:c"]);
        assert!(a.flush(Duration::from_millis(1)));
        assert!(!hostname().is_empty());
    }
}
