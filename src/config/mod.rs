//! Configuration: the TOML file, checked whole, and the validated types.
//!
//! Takes the text of a config file, returns a validated [`Config`] or every
//! problem found at once ([`ConfigErrors`]); the same function backs `stxd
//! check`, the daemon's start and its reload. The raw, deserialised types
//! (`Raw*`, in `raw`) are kept apart from the validated ones, so code past
//! this module never sees an unchecked value; `validate` checks them, table
//! by table, and `alert` the `[[alert]]` tables. Unknown keys are refused.
//! Secrets are never in the file itself: [`read_secret`] (in `secret`) reads
//! them from files that only their owner can read, and [`rotation`] the keys
//! of a link during a secret rotation. This module does not
//! touch the stores or the exchange folders. Every key is documented in
//! `config/stxd.toml`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::exchange::Role;
use crate::ident::{Code, TechId};

pub mod alert;
mod http;
mod locate;
mod raw;
pub mod rotation;
mod secret;
mod validate;

pub use http::{Http, Tls};
pub use locate::{DEMO, LocateError, Located, Origin, SYSTEM, locate};
pub use secret::{SecretError, generate_secret, read_secret, read_token, write_secret};
pub use validate::operator_rule;

/// The same-slot demo of `config/stxd.toml`, for the unit tests.
#[cfg(test)]
const EMBEDDED: &str = include_str!("../../config/stxd.toml");

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
    /// The `[http]` table: the console and metrics of `stxd run` (`None`:
    /// nothing listens).
    pub http: Option<Http>,
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
    /// The daemon deletes the files archived in `done/` and `sent/` this
    /// many days after they were archived (0 to 36500; 0, the default,
    /// keeps them for ever); the daemon's `retention` module says how.
    pub archive_days: u64,
}

impl Default for Daemon {
    fn default() -> Daemon {
        Daemon {
            scan_seconds: 5,
            timezone: chrono_tz::Tz::UTC,
            shutdown_grace_seconds: 30,
            gap_alert_minutes: 30,
            payload_grace_seconds: 60,
            archive_days: 0,
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
    /// After a secret rotation, how many days the previous secret is still
    /// accepted (`secret_overlap_days`, 1 to 365, 7 by default), counted
    /// from the rotation (see [`rotation`]).
    pub secret_overlap_days: u32,
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
        /// Whether an upload may go without a remote fsync when the server
        /// lacks `fsync@openssh.com` (`remote_fsync`, "auto" by default).
        remote_fsync: RemoteFsync,
    },
}

/// `remote_fsync` of an SFTP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RemoteFsync {
    /// Sync each upload on the server when it offers `fsync@openssh.com`;
    /// otherwise push without it, with one warning per session (the
    /// receiver's check of size and SHA-256 is the end-to-end guarantee).
    #[default]
    Auto,
    /// Refuse to push to a server without `fsync@openssh.com` (a
    /// permanent fault naming this setting).
    Required,
}

#[derive(Debug, Clone)]
pub enum SftpAuth {
    KeyFile(PathBuf),
    PasswordFile(PathBuf),
}

impl Config {
    /// Makes every relative path of the config relative to `base` (the
    /// config file's folder); absolute ones stay.
    fn resolve_from(&mut self, base: &Path) {
        // `base` is canonical (no symbolic link in it), so a leading `..`
        // is its real parent and is taken off here: logs then show
        // `/srv/stxd/var/state`, not `/srv/stxd/config/../var/state`.
        let at = |p: &mut PathBuf| {
            if p.is_relative() {
                let mut joined = base.to_path_buf();
                let mut leading = true;
                for part in p.components() {
                    match part {
                        std::path::Component::ParentDir if leading => {
                            joined.pop();
                        }
                        std::path::Component::CurDir => {}
                        other => {
                            leading = false;
                            joined.push(other);
                        }
                    }
                }
                *p = joined;
            }
        };
        at(&mut self.state_dir);
        for institution in &mut self.institutions {
            institution.load.iter_mut().for_each(at);
        }
        for link in &mut self.links {
            at(&mut link.secret_file);
            match &mut link.transport {
                Transport::Local { dir } => at(dir),
                Transport::Sftp {
                    auth,
                    known_hosts,
                    local_dir,
                    ..
                } => {
                    at(known_hosts);
                    at(local_dir);
                    match auth {
                        SftpAuth::KeyFile(p) | SftpAuth::PasswordFile(p) => at(p),
                    }
                }
            }
        }
        for alert in &mut self.alerts {
            if let alert::Target::Webhook {
                token_file: Some(p),
                ..
            } = &mut alert.target
            {
                at(p);
            }
        }
        if let Some(http) = &mut self.http {
            at(&mut http.token_file);
            if let Some(tls) = &mut http.tls {
                at(&mut tls.cert);
                at(&mut tls.key);
            }
        }
    }

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
    let raw: raw::RawConfig = toml::from_str(text).map_err(|e| {
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
    validate::validate(raw).map_err(fail)
}

/// Reads and validates a config file. Its relative paths (state, secrets,
/// folders, load files, keys) resolve from the file's folder, wherever the
/// command runs from.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
        source_name: name.clone(),
        errors: vec![ConfigError {
            at: "file".into(),
            problem: format!("cannot read: {e}"),
        }],
    })?;
    let mut config = parse(&text, &name)?;
    // The file was just read, so its folder exists and canonicalises.
    let folder = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .and_then(|dir| std::fs::canonicalize(dir).ok())
        .unwrap_or_default();
    config.resolve_from(&folder);
    Ok(config)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests;
