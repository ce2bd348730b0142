//! `stxd check`: every link's secret and SFTP prerequisites, and every
//! institution's store and setup against the manual's checklist, reported
//! at once. Only reads (it runs as the service's `ExecStartPre=`): what is
//! missing is reported with its fix, `stxd init` creates it.

use super::AppError;
use crate::config::{self, Config, Link};
use crate::domain::setup::{self, Finding, LinkFacts, Severity};
use crate::store::Role;
use crate::transport;

/// Everything `stxd check` found, grouped by where it applies.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// Link-level findings (secrets).
    pub links: Vec<Finding>,
    /// Per institution: code, role and its setup findings.
    pub institutions: Vec<(String, Role, Vec<Finding>)>,
}

impl CheckReport {
    pub fn count(&self, severity: Severity) -> usize {
        self.links
            .iter()
            .chain(self.institutions.iter().flat_map(|(_, _, f)| f))
            .filter(|f| f.severity == severity)
            .count()
    }
}

/// Checks every link's secret and every institution's store and setup
/// against the manual's checklist. Creates and changes nothing.
pub fn check(config: &Config) -> Result<CheckReport, AppError> {
    let mut report = CheckReport::default();
    for link in &config.links {
        report.links.extend(rotation_findings(link));
        if let Err(e) = crate::config::read_secret(&link.secret_file) {
            let same_slot = config.institution(link.manager.as_str()).is_some()
                && config.institution(link.distributor.as_str()).is_some();
            let fix = if same_slot && !link.secret_file.exists() {
                "both sides are served here: stxd init --generate-secret creates it (mode 600)"
            } else {
                "write the virtual operator's password to the secret file, readable by stxd's user only"
            };
            report.links.push(Finding {
                severity: Severity::Error,
                object: format!("link {} shared secret", link.name),
                problem: e.to_string(),
                fix: fix.into(),
            });
        }
        report.links.extend(sftp_findings(link));
    }
    if let Some(http) = &config.http {
        // The console's token: missing is made by init or the daemon's
        // first start; unreadable by others only, or the start refuses it.
        match crate::config::read_token(&http.token_file) {
            Ok(_) => {}
            Err(e @ crate::config::SecretError::Missing(_)) => report.links.push(Finding {
                severity: Severity::Warning,
                object: "console token ([http] token_file)".into(),
                problem: e.to_string(),
                fix: "stxd init (or the daemon's first start) writes a random one (mode 600)"
                    .into(),
            }),
            Err(e) => report.links.push(Finding {
                severity: Severity::Error,
                object: "console token ([http] token_file)".into(),
                problem: e.to_string(),
                fix: "make it a file of printable ASCII readable by stxd's user only (chmod 600)"
                    .into(),
            }),
        }
    }
    for inst in &config.institutions {
        let findings = institution_findings(config, inst);
        report
            .institutions
            .push((inst.code.to_string(), inst.role, findings));
    }
    Ok(report)
}

/// Where a link's secret rotation stands (`config::rotation`): a secret
/// staged, a previous one in its overlap or retired (warnings: the link
/// works), a staged or previous file that cannot be used (an error).
fn rotation_findings(link: &Link) -> Vec<Finding> {
    use crate::config::rotation::{self, show_time};
    let finding = |severity, problem: String, fix: String| Finding {
        severity,
        object: format!("link {} secret rotation", link.name),
        problem,
        fix,
    };
    // The secret itself is checked (and reported) by the caller.
    if crate::config::read_secret(&link.secret_file).is_err() {
        return Vec::new();
    }
    let keys = match rotation::link_keys(link, time::OffsetDateTime::now_utc()) {
        Ok(keys) => keys,
        Err(e) => {
            return vec![finding(
                Severity::Error,
                e.to_string(),
                "fix or remove that file: it is a staged (.next) or previous (.previous) secret of the link".into(),
            )];
        }
    };
    let current = keys.secret.key_id();
    let mut found = Vec::new();
    if let Some(next) = &keys.next {
        found.push(finding(
            Severity::Warning,
            format!(
                "a new secret is staged in {} (key id {:?}): accepted, but this side still signs with key id {current:?}",
                next.path.display(),
                next.key_id
            ),
            format!(
                "once the peer has staged it too, run stxd link rotate-secret --link {} on each side (docs/secret-rotation.md)",
                link.name
            ),
        ));
    }
    if let Some(previous) = &keys.previous {
        let (problem, fix) = if previous.accepted {
            (
                format!(
                    "rotation in progress: the previous secret (key id {:?}, {}) is accepted until {}",
                    previous.file.key_id,
                    previous.file.path.display(),
                    show_time(previous.until)
                ),
                format!(
                    "make sure the peer signs with the new secret (key id {current:?}) before then; nothing to do afterwards"
                ),
            )
        } else {
            (
                format!(
                    "the previous secret (key id {:?}, {}) is retired since {} (secret_overlap_days = {}): files signed with it are refused",
                    previous.file.key_id,
                    previous.file.path.display(),
                    show_time(previous.until),
                    link.secret_overlap_days
                ),
                format!(
                    "remove {} once the peer signs with key id {current:?}, or raise secret_overlap_days to accept it again",
                    previous.file.path.display()
                ),
            )
        };
        found.push(finding(Severity::Warning, problem, fix));
    }
    found
}

/// One institution's store, opened read-only, and its setup; a store that
/// does not exist yet (or cannot be read) is the finding.
fn institution_findings(config: &Config, inst: &crate::config::Institution) -> Vec<Finding> {
    let path = config.store_path(&inst.code);
    let missing = |problem: String, fix: &str| {
        vec![Finding {
            severity: Severity::Error,
            object: format!("store of {}", inst.code),
            problem,
            fix: fix.to_owned(),
        }]
    };
    if !path.exists() {
        return missing(
            format!("{} does not exist yet", path.display()),
            "run stxd init: it creates the store and loads the config's load files",
        );
    }
    let conn = match crate::store::open_read_only(&path) {
        Ok(conn) => conn,
        Err(e) => {
            return missing(
                e.to_string(),
                "check the path and its permissions (stxd init creates a missing store)",
            );
        }
    };
    let facts: Vec<LinkFacts> = config.links_of(&inst.code).map(LinkFacts::from).collect();
    setup::check(&conn, inst.role, &facts)
}

/// An SFTP link's local prerequisites, checked before any connection: the
/// key (or password) file is private and regular, and `known_hosts` names
/// the server (stxd never adds a host key).
fn sftp_findings(link: &Link) -> Vec<Finding> {
    let Some(ep) = transport::sftp::Endpoint::of(link) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut error = |object: &str, problem: String, fix: &str| {
        found.push(Finding {
            severity: Severity::Error,
            object: format!("link {} {object}", link.name),
            problem,
            fix: fix.to_owned(),
        })
    };
    let secret = match &ep.auth {
        config::SftpAuth::KeyFile(p) | config::SftpAuth::PasswordFile(p) => p,
    };
    if let Err(problem) = transport::sftp::check_secret_file(secret) {
        error(
            "SFTP login",
            problem,
            "give stxd's user its own private key file, mode 600",
        );
    }
    match std::fs::read_to_string(&ep.known_hosts) {
        Err(e) => error(
            "known_hosts",
            format!("cannot read {}: {e}", ep.known_hosts.display()),
            "write the server's host key there (ssh-keyscan, then compare the fingerprint with the peer's admin)",
        ),
        Ok(text) if transport::sftp::pinned_algorithms(&text, &ep.host, ep.port).is_none() => {
            error(
                "known_hosts",
                format!(
                    "{} holds no key for {}",
                    ep.known_hosts.display(),
                    ep.address()
                ),
                "add the server's host key (ssh-keyscan -p PORT HOST), checked with the peer's admin",
            )
        }
        Ok(_) => {}
    }
    found
}
