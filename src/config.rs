//! Configuration: the TOML file, checked whole.
//!
//! Takes the text of a config file, returns a validated [`Config`] or every
//! problem found at once ([`ConfigErrors`]); the same function backs `stxd
//! check`, the daemon's start and its reload. The raw, deserialised types
//! (`Raw*`) are kept apart from the validated ones, so code past this module
//! never sees an unchecked value. Unknown keys are refused. Secrets are never
//! in the file itself: [`read_secret`] reads them from files that only their
//! owner can read. This module does not touch the stores or the exchange
//! folders. Every key is documented in `config/stxd.toml`.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::exchange::Role;
use crate::format::envelope::Secret;
use crate::ident::{Code, TechId};

pub mod alert;

/// The embedded default: the same-slot demo of `config/stxd.toml`.
pub const EMBEDDED: &str = include_str!("../config/stxd.toml");

/// Where the config comes from, in the order tried when `--config` is absent.
pub const SEARCH_PATHS: [&str; 2] = ["./config/stxd.toml", "/etc/stxd/stxd.toml"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    state_dir: PathBuf,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    daemon: RawDaemon,
    #[serde(default, rename = "institution")]
    institutions: Vec<RawInstitution>,
    #[serde(default, rename = "link")]
    links: Vec<RawLink>,
    #[serde(default, rename = "schedule")]
    schedules: Vec<RawSchedule>,
    #[serde(default, rename = "alert")]
    alerts: Vec<alert::RawAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    link: String,
    job: String,
    cron: String,
    timezone: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: Option<LogFormat>,
    level: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDaemon {
    scan_seconds: Option<i64>,
    timezone: Option<String>,
    shutdown_grace_seconds: Option<i64>,
    gap_alert_minutes: Option<i64>,
    payload_grace_seconds: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInstitution {
    code: String,
    role: Role,
    #[serde(default)]
    load: Vec<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    name: String,
    manager: String,
    distributor: String,
    login: String,
    secret_file: PathBuf,
    #[serde(default)]
    generate_secret: bool,
    #[serde(default)]
    products: Option<Vec<i64>>,
    transport: RawTransport,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "lowercase")]
enum RawTransport {
    Local {
        dir: PathBuf,
    },
    Sftp {
        host: String,
        #[serde(default = "default_ssh_port")]
        port: u16,
        user: String,
        key_file: Option<PathBuf>,
        password_file: Option<PathBuf>,
        known_hosts: PathBuf,
        remote_dir: String,
        local_dir: PathBuf,
        connect_timeout_seconds: Option<i64>,
        io_timeout_seconds: Option<i64>,
    },
}

fn default_ssh_port() -> u16 {
    22
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One line per event for people.
    #[default]
    Human,
    /// One JSON object per event for log collectors.
    Json,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the stores live: `<state_dir>/<INSTITUTION>.sqlite`.
    pub state_dir: PathBuf,
    pub log_format: LogFormat,
    /// A `tracing` filter directive, `info` by default.
    pub log_level: String,
    pub institutions: Vec<Institution>,
    pub links: Vec<Link>,
    /// The `[daemon]` table: how `stxd run` works.
    pub daemon: Daemon,
    /// The `[[schedule]]` lines: jobs `stxd run` runs by itself, and the
    /// apply windows.
    pub schedules: Vec<crate::schedule::Entry>,
    /// The `[[alert]]` tables: where `stxd run` reports a stuck link.
    pub alerts: Vec<alert::Alert>,
}

/// Settings of `stxd run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Daemon {
    /// Seconds between two full listings of the inboxes (1 to 3600; 5 by
    /// default). Folder events trigger a listing sooner.
    pub scan_seconds: u64,
    /// The timezone of the schedules that name none (UTC by default).
    pub timezone: chrono_tz::Tz,
    /// On SIGTERM/SIGINT, how long the work in hand may still run before
    /// the daemon exits anyway (1 to 3600; 30 by default).
    pub shutdown_grace_seconds: u64,
    /// A file held for a sequence gap longer than this is logged at error
    /// level, once (1 to 10080; 30 by default).
    pub gap_alert_minutes: u64,
    /// A manifest whose payload is not beside it yet waits this long in the
    /// inbox (the payload may land a moment later), then is refused
    /// `missing-payload` (0 to 3600 seconds; 60 by default).
    pub payload_grace_seconds: u64,
}

impl Default for Daemon {
    fn default() -> Daemon {
        Daemon {
            scan_seconds: 5,
            timezone: chrono_tz::Tz::UTC,
            shutdown_grace_seconds: 30,
            gap_alert_minutes: 30,
            payload_grace_seconds: 60,
        }
    }
}

/// An institution this process serves.
#[derive(Debug, Clone)]
pub struct Institution {
    pub code: Code,
    pub role: Role,
    /// Master-data files loaded when the store is created (the demo's
    /// bootstrap); empty in production, where `stxd load` is explicit.
    pub load: Vec<PathBuf>,
}

/// A link between a manager and a distributor.
#[derive(Debug, Clone)]
pub struct Link {
    pub name: String,
    pub manager: Code,
    pub distributor: Code,
    /// `OPERATOR@DISTRIBUTOR`: the manager's external sales interface login.
    pub login: String,
    pub secret_file: PathBuf,
    /// Create the secret when it is missing (only when both institutions are
    /// served by this config, as in the same-slot demo).
    pub generate_secret: bool,
    /// Restricts the link to these manager products (the manual: "start with
    /// one product"); `None` sells everything the channel's profiles allow.
    pub products: Option<Vec<TechId>>,
    pub transport: Transport,
}

#[derive(Debug, Clone)]
pub enum Transport {
    /// A folder both sides reach (same server, or a shared mount).
    Local { dir: PathBuf },
    /// An SFTP share on the peer's server; `local_dir` holds this side's
    /// folders.
    Sftp {
        host: String,
        port: u16,
        user: String,
        auth: SftpAuth,
        known_hosts: PathBuf,
        remote_dir: String,
        local_dir: PathBuf,
        /// Limit on opening the TCP connection (`connect_timeout_seconds`,
        /// 1 to 600, 10 by default).
        connect_timeout: std::time::Duration,
        /// Limit on any network read or write, and on each SSH operation
        /// (`io_timeout_seconds`, 1 to 3600, 30 by default).
        io_timeout: std::time::Duration,
    },
}

#[derive(Debug, Clone)]
pub enum SftpAuth {
    KeyFile(PathBuf),
    PasswordFile(PathBuf),
}

impl Config {
    /// The store file of an institution.
    pub fn store_path(&self, institution: &Code) -> PathBuf {
        self.state_dir.join(format!("{institution}.sqlite"))
    }

    /// The control folder of a link, where an empty file named after a job
    /// (`export-catalogue`, `poll`, `apply-catalogue`…) makes the daemon run
    /// it now. Under the state directory, never in the exchange folder: a
    /// peer who can write to the share must not run this side's jobs.
    pub fn control_dir(&self, link: &str) -> PathBuf {
        self.state_dir.join("control").join(link)
    }

    pub fn institution(&self, code: &str) -> Option<&Institution> {
        self.institutions.iter().find(|i| i.code.as_str() == code)
    }

    pub fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }

    /// The link named `name`, or an error naming the links the config has.
    pub fn require_link(&self, name: &str) -> Result<&Link, String> {
        self.link(name).ok_or_else(|| {
            let known: Vec<_> = self.links.iter().map(|l| l.name.as_str()).collect();
            format!(
                "link {name:?} is not in the config (it has: {})",
                known.join(", ")
            )
        })
    }

    /// Every side this config serves, on every link or only on `link`: the
    /// link, the institution and the role it plays there.
    pub fn served<'a>(
        &'a self,
        link: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a Link, &'a Institution, Role)> + 'a {
        self.links
            .iter()
            .filter(move |l| link.is_none_or(|n| n == l.name))
            .flat_map(move |l| {
                self.institutions
                    .iter()
                    .filter_map(move |i| l.side_of(&i.code).map(|side| (l, i, side)))
            })
    }

    /// The link a distributor-side command works on: the one named, or else
    /// the only link whose distributor this config serves.
    pub fn distributor_link(&self, named: Option<&str>) -> Result<&Link, String> {
        if let Some(name) = named {
            return self.require_link(name);
        }
        let served: Vec<&Link> = self
            .links
            .iter()
            .filter(|l| self.institution(l.distributor.as_str()).is_some())
            .collect();
        match served.as_slice() {
            [one] => Ok(one),
            [] => Err("no link of this config has its distributor served here; run this command on the distributor's server".to_owned()),
            many => Err(format!(
                "several links have their distributor served here ({}): name one with --link",
                many.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(", ")
            )),
        }
    }

    /// The links an institution of this config takes part in, with its side.
    pub fn links_of<'a>(&'a self, code: &'a Code) -> impl Iterator<Item = &'a Link> + 'a {
        self.links
            .iter()
            .filter(move |l| &l.manager == code || &l.distributor == code)
    }
}

/// One side's folders on a link. Files this side receives arrive in
/// `inbox` and end in `done`, `error` (with a `.reason` file) or `parked`;
/// files it sends are published in `outbox`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Folders {
    pub inbox: PathBuf,
    pub outbox: PathBuf,
    pub done: PathBuf,
    pub error: PathBuf,
    pub parked: PathBuf,
    /// Stray, foreign and misrouted files set aside from the inbox (an
    /// unknown link, a kind this side does not receive, another link's
    /// name, sequence 0), each with its `.reason`.
    pub quarantine: PathBuf,
}

impl Folders {
    fn around(inbox: PathBuf, outbox: PathBuf) -> Folders {
        Folders {
            done: inbox.join("done"),
            error: inbox.join("error"),
            parked: inbox.join("parked"),
            quarantine: inbox.join("quarantine"),
            inbox,
            outbox,
        }
    }
}

impl Link {
    /// The folders of `side` on this link. With a local transport both sides
    /// share `dir`: `dir/to-distributor` is the manager's outbox and the
    /// distributor's inbox, `dir/to-manager` the other way round. With SFTP,
    /// `local_dir/inbox` and `local_dir/outbox` are this side's, and the
    /// transport moves files between them and the share.
    pub fn folders(&self, side: Role) -> Folders {
        match &self.transport {
            Transport::Local { dir } => {
                let to = |role: Role| dir.join(format!("to-{role}"));
                let other = side.peer();
                Folders::around(to(side), to(other))
            }
            Transport::Sftp { local_dir, .. } => {
                Folders::around(local_dir.join("inbox"), local_dir.join("outbox"))
            }
        }
    }

    /// What a receiver on this link expects of a file of `kind`.
    pub fn expectation(&self, kind: crate::format::Kind) -> crate::format::envelope::Expect<'_> {
        let (sender, recipient) = match kind.sender() {
            Role::Manager => (&self.manager, &self.distributor),
            Role::Distributor => (&self.distributor, &self.manager),
        };
        crate::format::envelope::Expect {
            link: &self.name,
            sender: sender.as_str(),
            recipient: recipient.as_str(),
            login: &self.login,
            kind: Some(kind),
        }
    }

    /// The institution code of `side` on this link.
    pub fn side_code(&self, side: Role) -> &str {
        match side {
            Role::Manager => self.manager.as_str(),
            Role::Distributor => self.distributor.as_str(),
        }
    }

    /// The side `institution` plays on this link, if it takes part.
    pub fn side_of(&self, institution: &Code) -> Option<Role> {
        if &self.manager == institution {
            Some(Role::Manager)
        } else if &self.distributor == institution {
            Some(Role::Distributor)
        } else {
            None
        }
    }

    /// The operator part of the login (`TOURISM_OPE` of `TOURISM_OPE@TOURISM`).
    pub fn operator(&self) -> &str {
        self.login.split('@').next().unwrap_or("")
    }
}

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where: `link "opera-tourism"`, `line 12, column 3`…
    pub at: String,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.problem)
    }
}

/// Every problem of a config file, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors {
    pub source_name: String,
    pub errors: Vec<ConfigError>,
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} problem{}",
            self.source_name,
            self.errors.len(),
            if self.errors.len() == 1 { "" } else { "s" }
        )?;
        for e in &self.errors {
            write!(f, "\n  {e}")?;
        }
        Ok(())
    }
}

/// Parses and validates a config text. `source_name` names it in errors.
pub fn parse(text: &str, source_name: &str) -> Result<Config, ConfigErrors> {
    let fail = |errors| ConfigErrors {
        source_name: source_name.to_owned(),
        errors,
    };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let at = match e.span() {
            Some(span) => {
                let (line, col) = line_col(text, span.start);
                format!("line {line}, column {col}")
            }
            None => "file".to_owned(),
        };
        fail(vec![ConfigError {
            at,
            problem: e.message().to_owned(),
        }])
    })?;
    validate(raw).map_err(fail)
}

/// Reads and validates a config file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
        source_name: name.clone(),
        errors: vec![ConfigError {
            at: "file".into(),
            problem: format!("cannot read: {e}"),
        }],
    })?;
    parse(&text, &name)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn validate(raw: RawConfig) -> Result<Config, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut err = |at: String, problem: String| errors.push(ConfigError { at, problem });

    let log_level = raw.log.level.unwrap_or_else(|| "info".to_owned());
    if tracing_subscriber::EnvFilter::try_new(&log_level).is_err() {
        err(
            "log.level".into(),
            format!(
                "expected a log filter such as \"info\" or \"stxd=debug\", found {log_level:?}"
            ),
        );
    }
    let defaults = Daemon::default();
    let mut bounded = |key: &str,
                       value: Option<i64>,
                       range: std::ops::RangeInclusive<u64>,
                       default: u64,
                       what: &str| match value {
        None => default,
        Some(n) => match u64::try_from(n) {
            Ok(v) if range.contains(&v) => v,
            _ => {
                err(
                    format!("daemon.{key}"),
                    format!(
                        "expected {} to {} {what}, found {n}",
                        range.start(),
                        range.end()
                    ),
                );
                default
            }
        },
    };
    let scan_seconds = bounded(
        "scan_seconds",
        raw.daemon.scan_seconds,
        1..=3600,
        defaults.scan_seconds,
        "seconds between two listings of the inboxes",
    );
    let shutdown_grace_seconds = bounded(
        "shutdown_grace_seconds",
        raw.daemon.shutdown_grace_seconds,
        1..=3600,
        defaults.shutdown_grace_seconds,
        "seconds for the work in hand to finish after a stop signal",
    );
    let gap_alert_minutes = bounded(
        "gap_alert_minutes",
        raw.daemon.gap_alert_minutes,
        1..=10080,
        defaults.gap_alert_minutes,
        "minutes a file may wait for a missing sequence before an error is logged",
    );
    let payload_grace_seconds = bounded(
        "payload_grace_seconds",
        raw.daemon.payload_grace_seconds,
        0..=3600,
        defaults.payload_grace_seconds,
        "seconds a manifest may wait for its payload before it is refused",
    );
    let timezone = match raw.daemon.timezone.as_deref() {
        None => defaults.timezone,
        Some(name) => timezone(name).unwrap_or_else(|problem| {
            err("daemon.timezone".into(), problem);
            defaults.timezone
        }),
    };
    let daemon = Daemon {
        scan_seconds,
        timezone,
        shutdown_grace_seconds,
        gap_alert_minutes,
        payload_grace_seconds,
    };
    if raw.institutions.is_empty() {
        err(
            "institution".into(),
            "expected at least one [[institution]] table: the institutions this process serves"
                .into(),
        );
    }

    let mut institutions = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, inst) in raw.institutions.into_iter().enumerate() {
        let at = format!("institution #{} ({:?})", i + 1, inst.code);
        match Code::new(&inst.code) {
            Ok(code) => {
                if !seen.insert(code.clone()) {
                    err(
                        at,
                        "institution code used twice: each institution is served once".into(),
                    );
                } else {
                    institutions.push(Institution {
                        code,
                        role: inst.role,
                        load: inst.load,
                    });
                }
            }
            Err(e) => err(at, e.to_string()),
        }
    }

    let mut links = Vec::new();
    let mut names = BTreeSet::new();
    for raw_link in raw.links {
        let at = format!("link {:?}", raw_link.name);
        check_link_rules(&institutions, &raw_link, &mut names, &mut |a, p| err(a, p));
        let (Ok(manager), Ok(distributor)) = (
            Code::new(&raw_link.manager),
            Code::new(&raw_link.distributor),
        ) else {
            err(at, "expected manager and distributor to be institution codes (1 to 8 characters among A-Z a-z 0-9 _ - .)".into());
            continue;
        };
        let transport = match raw_link.transport {
            RawTransport::Local { dir } => Some(Transport::Local { dir }),
            RawTransport::Sftp {
                host,
                port,
                user,
                key_file,
                password_file,
                known_hosts,
                remote_dir,
                local_dir,
                connect_timeout_seconds,
                io_timeout_seconds,
            } => {
                let mut seconds =
                    |key: &str, value: Option<i64>, default: u64, max: i64| match value {
                        None => default,
                        Some(v) if (1..=max).contains(&v) => v as u64,
                        Some(v) => {
                            err(
                                format!("{at}.transport.{key}"),
                                format!("expected 1 to {max} seconds, found {v}"),
                            );
                            default
                        }
                    };
                let connect_timeout = std::time::Duration::from_secs(seconds(
                    "connect_timeout_seconds",
                    connect_timeout_seconds,
                    10,
                    600,
                ));
                let io_timeout = std::time::Duration::from_secs(seconds(
                    "io_timeout_seconds",
                    io_timeout_seconds,
                    30,
                    3600,
                ));
                let auth = match (key_file, password_file) {
                    (Some(k), None) => Some(SftpAuth::KeyFile(k)),
                    (None, Some(p)) => Some(SftpAuth::PasswordFile(p)),
                    (Some(_), Some(_)) => {
                        err(format!("{at}.transport"), "set key_file or password_file, not both (key authentication is preferred)".into());
                        None
                    }
                    (None, None) => {
                        err(format!("{at}.transport"), "expected key_file (preferred) or password_file for SFTP authentication".into());
                        None
                    }
                };
                if host.is_empty() {
                    err(
                        format!("{at}.transport.host"),
                        "expected the SFTP server's host name or address".into(),
                    );
                }
                if user.is_empty() {
                    err(
                        format!("{at}.transport.user"),
                        "expected the SFTP login".into(),
                    );
                }
                if !remote_dir.starts_with('/') {
                    err(
                        format!("{at}.transport.remote_dir"),
                        format!(
                            "expected an absolute remote path (SFTP paths are otherwise relative to the login's home), found {remote_dir:?}"
                        ),
                    );
                }
                auth.map(|auth| Transport::Sftp {
                    host,
                    port,
                    user,
                    auth,
                    known_hosts,
                    remote_dir,
                    local_dir,
                    connect_timeout,
                    io_timeout,
                })
            }
        };
        if raw_link.generate_secret {
            let both_local = [&manager, &distributor]
                .iter()
                .all(|c| institutions.iter().any(|i| &&i.code == c));
            if !both_local {
                err(
                    format!("{at}.generate_secret"),
                    "a secret can only be generated when both institutions of the link are in this config (same slot); otherwise agree on one with the peer and write it to secret_file".into(),
                );
            }
        }
        let products = match raw_link.products.as_deref() {
            None => None,
            Some([]) => {
                err(format!("{at}.products"), "expected at least one product id; remove the key to sell every product the channel allows".into());
                None
            }
            Some(ids) => {
                let parsed: Result<Vec<_>, _> = ids.iter().map(|&i| TechId::new(i)).collect();
                match parsed {
                    Ok(list) => Some(list),
                    Err(e) => {
                        err(format!("{at}.products"), e.to_string());
                        None
                    }
                }
            }
        };
        if let Some(transport) = transport {
            links.push(Link {
                name: raw_link.name,
                manager,
                distributor,
                login: raw_link.login,
                secret_file: raw_link.secret_file,
                generate_secret: raw_link.generate_secret,
                products,
                transport,
            });
        }
    }

    let schedules = validate_schedules(
        raw.schedules,
        &links,
        &institutions,
        daemon.timezone,
        &mut |a, p| err(a, p),
    );
    let alerts = alert::validate(raw.alerts, &mut |a, p| err(a, p));

    if errors.is_empty() {
        Ok(Config {
            state_dir: raw.state_dir,
            log_format: raw.log.format.unwrap_or_default(),
            log_level,
            institutions,
            links,
            daemon,
            schedules,
            alerts,
        })
    } else {
        Err(errors)
    }
}

/// An IANA timezone name (`UTC`, `Europe/Paris`), or what was expected.
fn timezone(name: &str) -> Result<chrono_tz::Tz, String> {
    name.parse().map_err(|_| {
        format!(
            "expected an IANA timezone name such as \"UTC\" or \"Europe/Paris\", found {name:?}"
        )
    })
}

/// The `[[schedule]]` lines: a known link, a job this config can run on it
/// (the side it needs is served here), a valid cron line and timezone.
fn validate_schedules(
    raw: Vec<RawSchedule>,
    links: &[Link],
    institutions: &[Institution],
    default_tz: chrono_tz::Tz,
    e: &mut dyn FnMut(String, String),
) -> Vec<crate::schedule::Entry> {
    use crate::schedule::{Cron, Entry, Job};
    let mut out = Vec::new();
    for (i, s) in raw.into_iter().enumerate() {
        let at = format!("schedule[{i}]");
        let link = links.iter().find(|l| l.name == s.link);
        if link.is_none() {
            let known: Vec<_> = links.iter().map(|l| l.name.as_str()).collect();
            e(
                format!("{at}.link"),
                format!(
                    "expected the name of a [[link]] of this config ({}), found {:?}",
                    known.join(", "),
                    s.link
                ),
            );
        }
        let job = match s.job.parse::<Job>() {
            Ok(job) => Some(job),
            Err(problem) => {
                e(format!("{at}.job"), problem);
                None
            }
        };
        if let (Some(link), Some(job), Some(side)) = (link, job, job.and_then(Job::side)) {
            let code = match side {
                Role::Manager => &link.manager,
                Role::Distributor => &link.distributor,
            };
            if !institutions.iter().any(|i| &i.code == code) {
                e(
                    format!("{at}.job"),
                    format!(
                        "{job} runs on the {side}'s side of link {}, but the {side} {code} is not an [[institution]] of this config: schedule it on the {side}'s server",
                        link.name
                    ),
                );
            }
        }
        let tz = match s.timezone.as_deref() {
            None => Some(default_tz),
            Some(name) => match timezone(name) {
                Ok(tz) => Some(tz),
                Err(problem) => {
                    e(format!("{at}.timezone"), problem);
                    None
                }
            },
        };
        let cron = match Cron::parse(&s.cron, tz.unwrap_or(default_tz)) {
            Ok(cron) => Some(cron),
            Err(problem) => {
                e(format!("{at}.cron"), problem);
                None
            }
        };
        if let (Some(_), Some(job), Some(_), Some(cron)) = (link, job, tz, cron) {
            out.push(Entry {
                link: s.link,
                job,
                cron,
            });
        }
    }
    out
}

/// The checks of one link that need no I/O: name, parties and login rules.
fn check_link_rules(
    institutions: &[Institution],
    link: &RawLink,
    names: &mut BTreeSet<String>,
    e: &mut dyn FnMut(String, String),
) {
    let at = format!("link {:?}", link.name);
    let name_ok = (1..=32).contains(&link.name.len())
        && link
            .name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !link.name.starts_with('-');
    if !name_ok {
        e(
            at.clone(),
            "expected a link name of 1 to 32 characters among a-z 0-9 - (it is part of every file name)".into(),
        );
    }
    if !names.insert(link.name.clone()) {
        e(at.clone(), "link name used twice".into());
    }
    let side = |code: &str, role: Role| {
        institutions
            .iter()
            .find(|i| i.code.as_str() == code)
            .map(|i| i.role == role)
    };
    let m = side(&link.manager, Role::Manager);
    let d = side(&link.distributor, Role::Distributor);
    if m == Some(false) {
        e(
            format!("{at}.manager"),
            format!(
                "institution {} is not a manager in this config",
                link.manager
            ),
        );
    }
    if d == Some(false) {
        e(
            format!("{at}.distributor"),
            format!(
                "institution {} is not a distributor in this config",
                link.distributor
            ),
        );
    }
    if m.is_none() && d.is_none() {
        e(
            at.clone(),
            format!(
                "neither {} nor {} is an [[institution]] of this config: a link needs at least one local side",
                link.manager, link.distributor
            ),
        );
    }
    if link.manager == link.distributor {
        e(
            at.clone(),
            "manager and distributor must be different institutions".into(),
        );
    }
    match link.login.split_once('@') {
        Some((operator, distributor)) if distributor == link.distributor => {
            if let Some(problem) = operator_rule(operator, &link.distributor) {
                e(format!("{at}.login"), problem);
            }
        }
        _ => e(
            format!("{at}.login"),
            format!(
                "expected OPERATOR@{} (the manager's external sales interface login), found {:?}",
                link.distributor, link.login
            ),
        ),
    }
}

/// The manual's rule for the distributor's virtual operator:
/// `<DISTRIBUTOR>_<Name>`, 12 characters at most in total. `None` when it holds.
pub fn operator_rule(operator: &str, distributor: &str) -> Option<String> {
    let prefix = format!("{distributor}_");
    let ok_chars = operator
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !operator.starts_with(&prefix) || operator.len() == prefix.len() || !ok_chars {
        Some(format!(
            "expected the virtual operator to be named {distributor}_<Name> (letters, digits, _), found {operator:?}"
        ))
    } else if operator.chars().count() > 12 {
        Some(format!(
            "the virtual operator {operator:?} has {} characters; the manual allows 12 at most in total: shorten <Name>",
            operator.chars().count()
        ))
    } else {
        None
    }
}

/// Why a secret file was refused.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "secret file {0} is missing: write the link's shared secret (the virtual operator's password) there, readable by stxd's user only (chmod 600)"
    )]
    Missing(PathBuf),
    #[error("cannot read secret file {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("secret file {path} is readable by others (mode {mode:o}): run chmod 600 {path}")]
    Permissions { path: PathBuf, mode: u32 },
    #[error("secret file {0} is not a regular file")]
    NotRegular(PathBuf),
    #[error("secret in {0} is shorter than {min} bytes: use a long random value (e.g. head -c 32 /dev/urandom | base64)", min = Secret::MIN_LEN)]
    TooShort(PathBuf),
    #[error("token file {0}: {1}")]
    BadToken(PathBuf, &'static str),
}

/// Reads a secret (a link's shared secret, an SFTP password) from a file that
/// only its owner can read. A single trailing line break is not part of it.
pub fn read_secret(path: &Path) -> Result<Secret, SecretError> {
    let bytes = read_private(path)?;
    if bytes.len() < Secret::MIN_LEN {
        return Err(SecretError::TooShort(path.to_owned()));
    }
    Ok(Secret::new(bytes))
}

/// Reads a bearer token (an `[[alert]]`'s `webhook_token_file`) from a file
/// that only its owner can read: printable ASCII without spaces, as an HTTP
/// header carries it. A single trailing line break is not part of it.
pub fn read_token(path: &Path) -> Result<String, SecretError> {
    let bytes = read_private(path)?;
    if bytes.is_empty() {
        return Err(SecretError::BadToken(path.to_owned(), "the file is empty"));
    }
    if !bytes.iter().all(|b| b.is_ascii_graphic()) {
        return Err(SecretError::BadToken(
            path.to_owned(),
            "expected printable ASCII without spaces or line breaks",
        ));
    }
    String::from_utf8(bytes)
        .map_err(|_| SecretError::BadToken(path.to_owned(), "expected printable ASCII"))
}

/// The bytes of a regular file that neither its group nor others can read,
/// without one trailing line break.
fn read_private(path: &Path) -> Result<Vec<u8>, SecretError> {
    use std::os::unix::fs::MetadataExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SecretError::Missing(path.to_owned()));
        }
        Err(e) => return Err(SecretError::Io(path.to_owned(), e)),
    };
    if !meta.file_type().is_file() {
        return Err(SecretError::NotRegular(path.to_owned()));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SecretError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    let mut bytes = std::fs::read(path).map_err(|e| SecretError::Io(path.to_owned(), e))?;
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    Ok(bytes)
}

/// Creates a random secret file (mode 0600, never overwriting) for a link
/// whose config allows it. Returns `false` when the file already existed.
pub fn generate_secret(path: &Path) -> std::io::Result<bool> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    if std::fs::symlink_metadata(path).is_ok() {
        return Ok(false);
    }
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(std::io::Error::other)?;
    // Written whole under a temporary name, synced, then given its final
    // name (never replacing one) and the folder synced: a crash leaves the
    // secret complete or absent, never short.
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name"))?;
    let tmp = dir.join(format!(".{}.part", name.to_string_lossy()));
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    writeln!(file, "{}", hex::encode(raw))?;
    file.sync_all()?;
    drop(file);
    let placed = match std::fs::hard_link(&tmp, path) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(e) => return Err(e),
    };
    std::fs::remove_file(&tmp)?;
    std::fs::File::open(&dir)?.sync_all()?;
    Ok(placed)
}

#[cfg(test)]
mod tests {
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
        let text = format!(
            "{MINIMAL}\n[daemon]\ntimezone = \"Europe/Paris\"\nshutdown_grace_seconds = 5\ngap_alert_minutes = 90\n"
        );
        let d = parse(&text, "t").unwrap().daemon;
        assert_eq!(d.timezone, chrono_tz::Europe::Paris);
        assert_eq!((d.shutdown_grace_seconds, d.gap_alert_minutes), (5, 90));
        let text = format!(
            "{MINIMAL}\n[daemon]\ntimezone = \"Mars/Olympus\"\nshutdown_grace_seconds = 0\ngap_alert_minutes = 10081\n"
        );
        let e = parse(&text, "t").unwrap_err();
        let at: Vec<_> = e.errors.iter().map(|e| e.at.as_str()).collect();
        assert_eq!(
            at,
            [
                "daemon.shutdown_grace_seconds",
                "daemon.gap_alert_minutes",
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
    fn secrets_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        assert!(matches!(read_secret(&path), Err(SecretError::Missing(_))));
        assert!(generate_secret(&path).unwrap());
        assert!(!generate_secret(&path).unwrap(), "never overwrites");
        let s = read_secret(&path).unwrap();
        assert_eq!(s.len(), 64);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            read_secret(&path),
            Err(SecretError::Permissions { .. })
        ));
        std::fs::write(dir.path().join("short"), "abc\n").unwrap();
        std::fs::set_permissions(
            dir.path().join("short"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        assert!(matches!(
            read_secret(&dir.path().join("short")),
            Err(SecretError::TooShort(_))
        ));
    }
}
