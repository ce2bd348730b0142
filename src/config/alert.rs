//! The `[[alert]]` tables: where `stxd run` tells people that a link is
//! stuck, and when.
//!
//! Each table is one destination: a `command` (an argv, run without a
//! shell) or a `webhook` (an `http://` or `https://` URL that gets a POST),
//! never both, so that every failure names one destination. Its `events`
//! filter, rate limit and thresholds are its own. What is checked here needs
//! no I/O; the token file and the command's program are checked by
//! [`crate::alert::check`] (`stxd check`, and the daemon when it starts its
//! alerter), so that `stxd status` never needs the alert token.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAlert {
    name: String,
    command: Option<Vec<String>>,
    webhook: Option<String>,
    webhook_token_file: Option<PathBuf>,
    events: Option<Vec<String>>,
    timeout_seconds: Option<i64>,
    retries: Option<i64>,
    rate_limit_seconds: Option<i64>,
    parked_minutes: Option<i64>,
    held_minutes: Option<i64>,
    sftp_down_minutes: Option<i64>,
}

/// What happened: the `event` of a notification, and the names an
/// `[[alert]]`'s `events` filter lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Event {
    /// A file was put in `error/` with its `.reason`.
    FileRefused,
    /// A file has waited in `parked/` (mappings pending) longer than
    /// `parked_minutes`.
    FileParked,
    /// A file has waited in the inbox (an apply window, another process
    /// holding it) longer than `held_minutes`.
    FileHeld,
    /// A file has waited for a missing earlier sequence longer than
    /// `[daemon] gap_alert_minutes`.
    SequenceGap,
    /// A job (export, poll, apply window) failed.
    JobFailed,
    /// A link's SFTP share has failed to sync for longer than
    /// `sftp_down_minutes`.
    SftpDown,
    /// The reconciliation of a link found a difference.
    ReconcileDifference,
    /// An incident cleared. As a filter name: send the resolutions of the
    /// incidents the other names let through.
    Resolved,
}

impl Event {
    /// Every event, in the order the docs list them.
    pub const ALL: [Event; 8] = [
        Event::FileRefused,
        Event::FileParked,
        Event::FileHeld,
        Event::SequenceGap,
        Event::JobFailed,
        Event::SftpDown,
        Event::ReconcileDifference,
        Event::Resolved,
    ];

    /// The name in the config and in the JSON body (`file-refused`).
    pub fn name(self) -> &'static str {
        match self {
            Event::FileRefused => "file-refused",
            Event::FileParked => "file-parked",
            Event::FileHeld => "file-held",
            Event::SequenceGap => "sequence-gap",
            Event::JobFailed => "job-failed",
            Event::SftpDown => "sftp-down",
            Event::ReconcileDifference => "reconcile-difference",
            Event::Resolved => "resolved",
        }
    }

    /// The event named `name`, if any.
    pub fn from_name(name: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.name() == name)
    }

    /// Every name, comma-separated, for error messages.
    pub fn names() -> String {
        Event::ALL.map(Event::name).join(", ")
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One validated `[[alert]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// Names the destination in logs (1 to 32 characters among a-z 0-9 -).
    pub name: String,
    pub target: Target,
    /// The events sent; `None` (no `events` key) sends them all.
    pub events: Option<BTreeSet<Event>>,
    /// Limit on one delivery: the command is killed, the request dropped
    /// (`timeout_seconds`, 1 to 300, 10 by default).
    pub timeout: Duration,
    /// Attempts after the first failed one (`retries`, 0 to 10, 3 by
    /// default), spaced by a growing, capped, jittered delay.
    pub retries: u32,
    /// The least time between two notifications opening or recalling the
    /// same incident (`rate_limit_seconds`, 1 to 604800, 300 by default).
    pub rate_limit: Duration,
    /// How long a file waits in `parked/` before `file-parked`
    /// (`parked_minutes`, 0 to 10080, 60 by default).
    pub parked_after: Duration,
    /// How long a file is held in the inbox before `file-held`
    /// (`held_minutes`, 0 to 10080, 60 by default).
    pub held_after: Duration,
    /// How long a share fails before `sftp-down` (`sftp_down_minutes`, 0 to
    /// 10080, 15 by default).
    pub sftp_down_after: Duration,
}

/// Where an alert goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A program and its arguments (the program an absolute path), run
    /// without a shell; the JSON body on its standard input.
    Command(Vec<String>),
    /// A URL that gets the JSON body by POST, with `Authorization: Bearer`
    /// and the token of `token_file` when there is one.
    Webhook {
        url: String,
        token_file: Option<PathBuf>,
    },
}

impl Alert {
    /// Whether this destination takes `event`.
    pub fn wants(&self, event: Event) -> bool {
        self.events.as_ref().is_none_or(|set| set.contains(&event))
    }

    /// How long the condition of `event` must last before this destination
    /// hears of it (zero for the events sent at once).
    pub fn threshold(&self, event: Event) -> Duration {
        match event {
            Event::FileParked => self.parked_after,
            Event::FileHeld => self.held_after,
            Event::SftpDown => self.sftp_down_after,
            _ => Duration::ZERO,
        }
    }
}

/// Validates the `[[alert]]` tables; each problem goes to `e` with its key
/// path (`alert[0].webhook`).
pub(super) fn validate(raw: Vec<RawAlert>, e: &mut dyn FnMut(String, String)) -> Vec<Alert> {
    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    for (i, a) in raw.into_iter().enumerate() {
        let mut problems = Problems {
            at: format!("alert[{i}]"),
            ok: true,
            e: &mut *e,
        };
        if let Some(alert) = validate_one(a, &mut names, &mut problems) {
            out.push(alert);
        }
    }
    out
}

/// Where the problems of one `[[alert]]` table go, each under its key path;
/// `ok` until the first.
struct Problems<'e> {
    at: String,
    ok: bool,
    e: &'e mut dyn FnMut(String, String),
}

impl Problems<'_> {
    /// A problem of `key` (of the table itself when `key` is empty).
    fn fail(&mut self, key: &str, problem: String) {
        let at = if key.is_empty() {
            self.at.clone()
        } else {
            format!("{}.{key}", self.at)
        };
        (self.e)(at, problem);
        self.ok = false;
    }

    /// `value` if it is within `min..=max`, `default` if absent; otherwise a
    /// problem, and `default`.
    fn bounded(&mut self, key: &str, value: Option<i64>, max: u64, min: u64, default: u64) -> u64 {
        match value {
            None => default,
            Some(n) => match u64::try_from(n) {
                Ok(v) if (min..=max).contains(&v) => v,
                _ => {
                    self.fail(key, format!("expected {min} to {max}, found {n}"));
                    default
                }
            },
        }
    }
}

/// One `[[alert]]` table, or `None` when it has a problem.
fn validate_one(
    a: RawAlert,
    names: &mut BTreeSet<String>,
    problems: &mut Problems<'_>,
) -> Option<Alert> {
    check_name(&a.name, names, problems);
    let target = target(a.command, a.webhook, &a.webhook_token_file, problems);
    if a.webhook_token_file.is_some() && matches!(target, Some(Target::Command(_))) {
        problems.fail(
            "webhook_token_file",
            "a token file goes with a webhook, not a command".into(),
        );
    }
    let events = events(a.events, problems);
    let timeout = problems.bounded("timeout_seconds", a.timeout_seconds, 300, 1, 10);
    let retries = problems.bounded("retries", a.retries, 10, 0, 3);
    let rate_limit = problems.bounded("rate_limit_seconds", a.rate_limit_seconds, 604_800, 1, 300);
    let parked = problems.bounded("parked_minutes", a.parked_minutes, 10_080, 0, 60);
    let held = problems.bounded("held_minutes", a.held_minutes, 10_080, 0, 60);
    let sftp_down = problems.bounded("sftp_down_minutes", a.sftp_down_minutes, 10_080, 0, 15);
    match (problems.ok, target) {
        (true, Some(target)) => Some(Alert {
            name: a.name,
            target,
            events,
            timeout: Duration::from_secs(timeout),
            retries: u32::try_from(retries).unwrap_or(3),
            rate_limit: Duration::from_secs(rate_limit),
            parked_after: Duration::from_secs(parked * 60),
            held_after: Duration::from_secs(held * 60),
            sftp_down_after: Duration::from_secs(sftp_down * 60),
        }),
        _ => None,
    }
}

/// The `name` key: its characters, and used once among `names`.
fn check_name(name: &str, names: &mut BTreeSet<String>, problems: &mut Problems<'_>) {
    let name_ok = (1..=32).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    if !name_ok {
        problems.fail(
            "name",
            format!(
                "expected 1 to 32 characters among a-z 0-9 - (it names the destination in logs), found {name:?}"
            ),
        );
    } else if !names.insert(name.to_owned()) {
        problems.fail("name", format!("alert name {name:?} used twice"));
    }
}

/// The destination: a `command` or a `webhook` (with its token file), one
/// of them and valid.
fn target(
    command: Option<Vec<String>>,
    webhook: Option<String>,
    token_file: &Option<PathBuf>,
    problems: &mut Problems<'_>,
) -> Option<Target> {
    match (command, webhook) {
        (Some(_), Some(_)) => {
            problems.fail(
                "",
                "set command or webhook, not both: each [[alert]] is one destination (write two tables for two)".into(),
            );
            None
        }
        (None, None) => {
            problems.fail(
                "",
                "expected command = [\"/path/to/program\", \"arg\"…] or webhook = \"https://…\""
                    .into(),
            );
            None
        }
        (Some(argv), None) => command_target(argv, problems),
        (None, Some(url)) => match webhook_url(&url) {
            Ok(()) => Some(Target::Webhook {
                url,
                token_file: token_file.clone(),
            }),
            Err(problem) => {
                problems.fail("webhook", problem);
                None
            }
        },
    }
}

/// A `command` target: an absolute program path and arguments without NUL.
fn command_target(argv: Vec<String>, problems: &mut Problems<'_>) -> Option<Target> {
    match argv.first() {
        None => {
            problems.fail(
                "command",
                "expected the program and its arguments, found an empty list".into(),
            );
            None
        }
        Some(program) if !program.starts_with('/') => {
            problems.fail(
                "command",
                format!(
                    "expected the program as an absolute path (no shell, no PATH search), found {program:?}"
                ),
            );
            None
        }
        Some(_) if argv.iter().any(|arg| arg.contains('\0')) => {
            problems.fail("command", "an argument contains a NUL character".into());
            None
        }
        Some(_) => Some(Target::Command(argv)),
    }
}

/// The `events` filter: `None` (all events) when absent, else known names,
/// at least one.
fn events(list: Option<Vec<String>>, problems: &mut Problems<'_>) -> Option<BTreeSet<Event>> {
    match list {
        None => None,
        Some(list) if list.is_empty() => {
            problems.fail(
                "events",
                "expected at least one event; remove the key to send them all".into(),
            );
            None
        }
        Some(list) => {
            let mut set = BTreeSet::new();
            for name in &list {
                match Event::from_name(name) {
                    Some(event) => {
                        set.insert(event);
                    }
                    None => problems.fail(
                        "events",
                        format!(
                            "expected event names among {}, found {name:?}",
                            Event::names()
                        ),
                    ),
                }
            }
            Some(set)
        }
    }
}

/// An `http://` or `https://` URL with a host, without credentials (the
/// token goes in its file) or a fragment; what was expected otherwise.
fn webhook_url(url: &str) -> Result<(), String> {
    let expected = |why: &str| {
        Err(format!(
            "expected an http:// or https:// URL{why}, found {url:?}"
        ))
    };
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return expected("");
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return expected(" without spaces");
    }
    if url.contains('#') {
        return expected(" without a #fragment");
    }
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    if authority.contains('@') {
        return expected(" without user:password@ (put a bearer token in webhook_token_file)");
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((addr, rest)) if addr.parse::<std::net::Ipv6Addr>().is_ok() => {
                (addr, rest.strip_prefix(':'))
            }
            _ => return expected(" with a host"),
        },
        None => match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
    if !host_ok {
        return expected(" with a host");
    }
    if port.is_some_and(|p| p.parse::<u16>().map_or(true, |p| p == 0)) {
        return expected(" with a port from 1 to 65535");
    }
    match ureq::http::Uri::try_from(url) {
        Ok(_) => Ok(()),
        Err(e) => expected(&format!(" ({e})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls() {
        for good in [
            "http://127.0.0.1:8080/hook",
            "https://alerts.example.org/api/v1/stxd?team=ops",
            "https://[::1]:9000",
        ] {
            assert_eq!(webhook_url(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("ftp://host/x", "http:// or https://"),
            ("https://", "with a host"),
            ("https:///path", "with a host"),
            ("https://user:pw@host/x", "webhook_token_file"),
            ("https://host/a b", "without spaces"),
            ("https://host/x#frag", "fragment"),
            ("https://host:port/x", "port from 1 to 65535"),
            ("http://host:0/x", "port from 1 to 65535"),
            ("http://[fe80::zz]/x", "with a host"),
            ("hooks.example.org", "http:// or https://"),
        ] {
            let e = webhook_url(bad).unwrap_err();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn event_names_round_trip() {
        for e in Event::ALL {
            assert_eq!(Event::from_name(e.name()), Some(e));
        }
        assert_eq!(Event::from_name("file_refused"), None);
    }
}
