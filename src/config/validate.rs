//! The checks of a deserialised config, section by section.
//!
//! Each section (log, daemon, institutions, links, schedules, alerts, http) is
//! turned into its validated type; every problem is collected with its key
//! path, so that all are reported at once.

use std::collections::BTreeSet;

use super::raw::{RawConfig, RawDaemon, RawInstitution, RawLink, RawSchedule, RawTransport};
use super::{
    Config, ConfigError, Daemon, Institution, Link, RemoteFsync, SftpAuth, Transport, alert,
};
use crate::exchange::Role;
use crate::ident::{Code, TechId};

/// Checks a deserialised config whole: a [`Config`], or every problem.
pub(super) fn validate(raw: RawConfig) -> Result<Config, Vec<ConfigError>> {
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
    let daemon = validate_daemon(&raw.daemon, &mut err);
    let institutions = validate_institutions(raw.institutions, &mut err);
    let links = validate_links(raw.links, &institutions, &mut err);
    let schedules = validate_schedules(
        raw.schedules,
        &links,
        &institutions,
        daemon.timezone,
        &mut err,
    );
    let alerts = alert::validate(raw.alerts, &mut err);
    let http = super::http::validate(raw.http, &mut err);

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
            http,
        })
    } else {
        Err(errors)
    }
}

/// The `[daemon]` table: each key within its bounds, or its default.
fn validate_daemon(raw: &RawDaemon, e: &mut dyn FnMut(String, String)) -> Daemon {
    let defaults = Daemon::default();
    let scan_seconds = bounded(
        "scan_seconds",
        raw.scan_seconds,
        1..=3600,
        defaults.scan_seconds,
        "seconds between two listings of the inboxes",
        e,
    );
    let shutdown_grace_seconds = bounded(
        "shutdown_grace_seconds",
        raw.shutdown_grace_seconds,
        1..=3600,
        defaults.shutdown_grace_seconds,
        "seconds for the work in hand to finish after a stop signal",
        e,
    );
    let gap_alert_minutes = bounded(
        "gap_alert_minutes",
        raw.gap_alert_minutes,
        1..=10080,
        defaults.gap_alert_minutes,
        "minutes a file may wait for a missing sequence before an error is logged",
        e,
    );
    let payload_grace_seconds = bounded(
        "payload_grace_seconds",
        raw.payload_grace_seconds,
        0..=3600,
        defaults.payload_grace_seconds,
        "seconds a manifest may wait for its payload before it is refused",
        e,
    );
    let archive_days = bounded(
        "archive_days",
        raw.archive_days,
        0..=36500,
        defaults.archive_days,
        "days the files archived in done/ and sent/ are kept (0: for ever)",
        e,
    );
    let timezone = match raw.timezone.as_deref() {
        None => defaults.timezone,
        Some(name) => timezone(name).unwrap_or_else(|problem| {
            e("daemon.timezone".into(), problem);
            defaults.timezone
        }),
    };
    Daemon {
        scan_seconds,
        timezone,
        shutdown_grace_seconds,
        gap_alert_minutes,
        payload_grace_seconds,
        archive_days,
    }
}

/// A `[daemon]` key: `value` if within `range`, `default` if absent;
/// otherwise a problem, and `default`.
fn bounded(
    key: &str,
    value: Option<i64>,
    range: std::ops::RangeInclusive<u64>,
    default: u64,
    what: &str,
    e: &mut dyn FnMut(String, String),
) -> u64 {
    match value {
        None => default,
        Some(n) => match u64::try_from(n) {
            Ok(v) if range.contains(&v) => v,
            _ => {
                e(
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
    }
}

/// The `[[institution]]` tables: at least one, valid codes, each once.
fn validate_institutions(
    raw: Vec<RawInstitution>,
    e: &mut dyn FnMut(String, String),
) -> Vec<Institution> {
    if raw.is_empty() {
        e(
            "institution".into(),
            "expected at least one [[institution]] table: the institutions this process serves"
                .into(),
        );
    }
    let mut institutions = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, inst) in raw.into_iter().enumerate() {
        let at = format!("institution #{} ({:?})", i + 1, inst.code);
        match Code::new(&inst.code) {
            Ok(code) => {
                if !seen.insert(code.clone()) {
                    e(
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
            Err(err) => e(at, err.to_string()),
        }
    }
    institutions
}

/// The `[[link]]` tables, each checked whole; those without a problem in
/// their parties or transport are kept.
fn validate_links(
    raw: Vec<RawLink>,
    institutions: &[Institution],
    e: &mut dyn FnMut(String, String),
) -> Vec<Link> {
    let mut links = Vec::new();
    let mut names = BTreeSet::new();
    for raw_link in raw {
        if let Some(link) = validate_link(raw_link, institutions, &mut names, e) {
            links.push(link);
        }
    }
    links
}

/// One `[[link]]` table: its rules, parties, transport, secret and
/// products.
fn validate_link(
    raw_link: RawLink,
    institutions: &[Institution],
    names: &mut BTreeSet<String>,
    e: &mut dyn FnMut(String, String),
) -> Option<Link> {
    let at = format!("link {:?}", raw_link.name);
    check_link_rules(institutions, &raw_link, names, e);
    let (Ok(manager), Ok(distributor)) = (
        Code::new(&raw_link.manager),
        Code::new(&raw_link.distributor),
    ) else {
        e(at, "expected manager and distributor to be institution codes (1 to 8 characters among A-Z a-z 0-9 _ - .)".into());
        return None;
    };
    let transport = validate_transport(&at, raw_link.transport, e);
    if raw_link.generate_secret {
        let both_local = [&manager, &distributor]
            .iter()
            .all(|c| institutions.iter().any(|i| &&i.code == c));
        if !both_local {
            e(
                format!("{at}.generate_secret"),
                "a secret can only be generated when both institutions of the link are in this config (same slot); otherwise agree on one with the peer and write it to secret_file".into(),
            );
        }
    }
    let products = validate_products(&at, raw_link.products.as_deref(), e);
    let secret_overlap_days = match raw_link.secret_overlap_days {
        None => 7,
        Some(d) if (1..=365).contains(&d) => d as u32,
        Some(d) => {
            e(
                format!("{at}.secret_overlap_days"),
                format!("expected 1 to 365 days, found {d}"),
            );
            7
        }
    };
    transport.map(|transport| Link {
        name: raw_link.name,
        manager,
        distributor,
        login: raw_link.login,
        secret_file: raw_link.secret_file,
        generate_secret: raw_link.generate_secret,
        secret_overlap_days,
        products,
        transport,
    })
}

/// A link's `transport`: a local folder, or an SFTP share with its
/// timeouts, authentication and an absolute remote folder.
fn validate_transport(
    at: &str,
    raw: RawTransport,
    e: &mut dyn FnMut(String, String),
) -> Option<Transport> {
    match raw {
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
            remote_fsync,
        } => {
            let connect_timeout = std::time::Duration::from_secs(seconds(
                at,
                "connect_timeout_seconds",
                connect_timeout_seconds,
                10,
                600,
                e,
            ));
            let io_timeout = std::time::Duration::from_secs(seconds(
                at,
                "io_timeout_seconds",
                io_timeout_seconds,
                30,
                3600,
                e,
            ));
            let auth = sftp_auth(at, key_file, password_file, e);
            check_sftp_share(at, &host, &user, &remote_dir, e);
            let remote_fsync = match remote_fsync.as_deref() {
                None | Some("auto") => RemoteFsync::Auto,
                Some("required") => RemoteFsync::Required,
                Some(other) => {
                    e(
                        format!("{at}.transport.remote_fsync"),
                        format!(
                            "expected \"auto\" (sync uploads on the server when it offers fsync@openssh.com, the default) or \"required\" (refuse a server without it), found {other:?}"
                        ),
                    );
                    RemoteFsync::Auto
                }
            };
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
                remote_fsync,
            })
        }
    }
}

/// How a link logs in to its SFTP share: a key file or a password file,
/// exactly one.
fn sftp_auth(
    at: &str,
    key_file: Option<std::path::PathBuf>,
    password_file: Option<std::path::PathBuf>,
    e: &mut dyn FnMut(String, String),
) -> Option<SftpAuth> {
    match (key_file, password_file) {
        (Some(k), None) => Some(SftpAuth::KeyFile(k)),
        (None, Some(p)) => Some(SftpAuth::PasswordFile(p)),
        (Some(_), Some(_)) => {
            e(
                format!("{at}.transport"),
                "set key_file or password_file, not both (key authentication is preferred)".into(),
            );
            None
        }
        (None, None) => {
            e(
                format!("{at}.transport"),
                "expected key_file (preferred) or password_file for SFTP authentication".into(),
            );
            None
        }
    }
}

/// Where an SFTP share is: a host, a login and an absolute remote folder.
fn check_sftp_share(
    at: &str,
    host: &str,
    user: &str,
    remote_dir: &str,
    e: &mut dyn FnMut(String, String),
) {
    if host.is_empty() {
        e(
            format!("{at}.transport.host"),
            "expected the SFTP server's host name or address".into(),
        );
    }
    if user.is_empty() {
        e(
            format!("{at}.transport.user"),
            "expected the SFTP login".into(),
        );
    }
    if !remote_dir.starts_with('/') {
        e(
            format!("{at}.transport.remote_dir"),
            format!(
                "expected an absolute remote path (SFTP paths are otherwise relative to the login's home), found {remote_dir:?}"
            ),
        );
    }
}

/// An SFTP timeout key: `value` if within 1 to `max` seconds, `default` if
/// absent; otherwise a problem, and `default`.
fn seconds(
    at: &str,
    key: &str,
    value: Option<i64>,
    default: u64,
    max: i64,
    e: &mut dyn FnMut(String, String),
) -> u64 {
    match value {
        None => default,
        Some(v) if (1..=max).contains(&v) => v as u64,
        Some(v) => {
            e(
                format!("{at}.transport.{key}"),
                format!("expected 1 to {max} seconds, found {v}"),
            );
            default
        }
    }
}

/// A link's `products`: absent (every product), or at least one valid id.
fn validate_products(
    at: &str,
    raw: Option<&[i64]>,
    e: &mut dyn FnMut(String, String),
) -> Option<Vec<TechId>> {
    match raw {
        None => None,
        Some([]) => {
            e(format!("{at}.products"), "expected at least one product id; remove the key to sell every product the channel allows".into());
            None
        }
        Some(ids) => {
            let parsed: Result<Vec<_>, _> = ids.iter().map(|&i| TechId::new(i)).collect();
            match parsed {
                Ok(list) => Some(list),
                Err(err) => {
                    e(format!("{at}.products"), err.to_string());
                    None
                }
            }
        }
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
        let needs = job.map_or(&[][..], Job::sides);
        for (link, job, &side) in needs.iter().filter_map(|s| Some((link?, job?, s))) {
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
