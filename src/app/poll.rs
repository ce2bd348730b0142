//! SFTP shares and polls: the sessions a process keeps per link side, and
//! one sync of a link's share (push the outbox, pull what this side
//! receives), for `stxd poll`, the daemon's `poll` job and its listings of
//! links without a `poll` schedule.

use super::{AppError, waiting_files};
use crate::config::{self, Config, Institution, Link};
use crate::exchange::FileName;
use crate::format::Limits;
use crate::format::envelope;
use crate::store::Role;
use crate::transport;

/// The SFTP shares of a process, one per link side, kept across polls so a
/// daemon reuses each session and its backoff (a one-shot command uses a
/// fresh one).
#[derive(Default)]
pub struct Shares {
    shares: std::collections::HashMap<(String, Role), transport::sftp::Share>,
}

impl std::fmt::Debug for Shares {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.shares.keys()).finish()
    }
}

impl Shares {
    /// The share of `link`'s `side`, if a poll created it.
    pub fn get(&self, link: &str, side: Role) -> Option<&transport::sftp::Share> {
        self.shares.get(&(link.to_owned(), side))
    }

    /// Forgets the shares of links no longer in the config (after a reload).
    pub fn retain_links(&mut self, config: &Config) {
        self.shares
            .retain(|(link, _), _| config.link(link).is_some());
    }
}

/// What one poll did for one side of a link.
#[derive(Debug)]
pub enum Synced {
    /// Pushed and pulled (the pulled pairs wait in the inbox).
    Moved(transport::sftp::Moved),
    /// Not attempted: an earlier failure's backoff runs until then.
    Deferred(std::time::Duration),
    Failed(transport::sftp::SftpError),
}

/// One side of a link in a [`PollReport`].
#[derive(Debug)]
pub struct SidePoll {
    pub institution: String,
    pub side: Role,
    pub synced: Synced,
}

/// What [`poll`] did on a link: one entry per side this config serves with
/// an SFTP transport (none for a local transport).
#[derive(Debug)]
pub struct PollReport {
    pub link: String,
    pub sides: Vec<SidePoll>,
}

impl PollReport {
    /// Whether a side failed (deferred sides count: their last try failed).
    pub fn failed(&self) -> bool {
        self.sides
            .iter()
            .any(|s| !matches!(s.synced, Synced::Moved(_)))
    }
}

/// Syncs `link`'s SFTP share once with fresh sessions: see [`poll_with`].
pub fn poll(config: &Config, link: &str) -> Result<PollReport, AppError> {
    poll_with(
        config,
        link,
        &mut Shares::default(),
        std::time::Instant::now(),
    )
}

/// Syncs `link`'s SFTP share for each side of it this config serves: pushes
/// the complete pairs of the side's outbox (then moves them to
/// `outbox/sent/`), then pulls the pairs the side receives into its inbox,
/// where [`process_files`](super::process_files) takes them. Sessions and backoff live in
/// `shares`; a side whose backoff runs past `now` is deferred. A local
/// transport has nothing to sync. Blocking (network I/O).
pub fn poll_with(
    config: &Config,
    link: &str,
    shares: &mut Shares,
    now: std::time::Instant,
) -> Result<PollReport, AppError> {
    use transport::sftp::{Endpoint, Job, Pair, Share};
    let link = config.require_link(link).map_err(AppError::UnknownLink)?;
    let mut report = PollReport {
        link: link.name.clone(),
        sides: Vec::new(),
    };
    let Some(endpoint) = Endpoint::of(link) else {
        return Ok(report);
    };
    let limits = Limits::default();
    for (_, inst, side) in config.served(Some(&link.name)) {
        let peer = side.peer();
        let share = shares
            .shares
            .entry((link.name.clone(), side))
            .or_insert_with(|| Share::new(endpoint.clone()));
        share.update(&endpoint);
        let mut record = |synced| {
            report.sides.push(SidePoll {
                institution: inst.code.to_string(),
                side,
                synced,
            })
        };
        if let Some(at) = share.retry_at().filter(|_| !share.due(now)) {
            record(Synced::Deferred(at.saturating_duration_since(now)));
            continue;
        }
        let folders = link.folders(side);
        let outgoing: Vec<Pair> = waiting_files(&folders.outbox)
            .map_err(|source| AppError::List {
                dir: folders.outbox.clone(),
                source,
            })?
            .into_iter()
            .filter_map(|manifest| {
                let name = manifest.file_name()?.to_str()?.to_owned();
                let n = FileName::parse_manifest(&name).ok()?;
                (n.link == link.name && n.kind.sender() == side).then(|| Pair {
                    payload: n.to_payload().to_string(),
                    manifest: name,
                })
            })
            .collect();
        let accept = |name: &str| {
            let n = FileName::parse_manifest(name).ok()?;
            (n.link == link.name && n.kind.sender() == peer).then(|| n.to_payload().to_string())
        };
        let received = |name: &str, manifest: &[u8]| received(config, link, inst, name, manifest);
        let (remote_out, remote_in) = (format!("to-{peer}"), format!("to-{side}"));
        let job = Job {
            side,
            outbox: &folders.outbox,
            outgoing: &outgoing,
            remote_out: &remote_out,
            remote_in: &remote_in,
            inbox: &folders.inbox,
            accept: &accept,
            max_bytes: limits.max_file_bytes,
            received: &received,
        };
        let synced = match share.sync(&job, now, jitter()) {
            Ok(moved) => Synced::Moved(moved),
            Err(e) => {
                if e.is_permanent() {
                    error!(link = %link.name, error = %e, "sftp poll failed: a person must act");
                } else {
                    warn!(link = %link.name, error = %e, retry_in_seconds = share.retry_at().map_or(0, |at| at.saturating_duration_since(now).as_secs()), "sftp poll failed; retried later");
                }
                Synced::Failed(e)
            }
        };
        record(synced);
    }
    Ok(report)
}

/// Whether `inst` (the receiving side of `link`) journaled the file of the
/// manifest `name` (its bytes, as found on a share without its payload):
/// the manifest authenticates with the link's secret, names this link and
/// a kind `inst` receives, and the journal holds that sequence inbound with
/// the same payload digest, in any state (applied, ignored, parked or
/// rejected: this very file was taken, and its copy is in `done/`,
/// `parked/` or `error/`). Read-only; `false` when anything is missing.
fn received(config: &Config, link: &Link, inst: &Institution, name: &str, manifest: &[u8]) -> bool {
    use crate::store::journal::{self, Direction};
    let Ok(keys) = config::rotation::link_keys(link, time::OffsetDateTime::now_utc()) else {
        return false;
    };
    let Ok(m) = envelope::authenticate(manifest, name, &keys.secret) else {
        return false;
    };
    if m.link != link.name
        || m.manifest_name() != name
        || link.side_code(m.kind.sender().peer()) != inst.code.as_str()
    {
        return false;
    }
    let path = config.store_path(&inst.code);
    if !path.exists() {
        return false;
    }
    let found = crate::store::open_read_only(&path)
        .and_then(|conn| journal::lookup(&conn, &link.name, m.kind, Direction::In, m.sequence));
    match found {
        Ok(entry) => entry.is_some_and(|e| e.sha256 == hex::encode(m.sha256)),
        Err(e) => {
            warn!(link = %link.name, file = %name, error = %e, "cannot read the journal to tell whether a manifest left on the share was received; it stays there");
            false
        }
    }
}

/// A random fraction in 0..1 for backoff jitter (0.5 if no randomness).
fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    match getrandom::fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
        Err(_) => 0.5,
    }
}
