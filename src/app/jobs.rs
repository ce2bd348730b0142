//! Jobs: one job of a link run now ([`run_job`], the code path of
//! schedules, trigger files and `stxd trigger --now` alike), the trigger
//! file that asks the daemon for one ([`write_trigger`]), and what the
//! daemon and `stxd status` read about jobs (next runs, the sequence a
//! receiver waits for).

use std::path::PathBuf;

use super::{
    AppError, Handled, PollReport, Shares, WindowHeld, folders_to_scan, open_side, poll_with,
    process_files_watched, require_secret, scan, split_by_window,
};
use crate::config::Config;
use crate::exchange::FileName;
use crate::format::Kind;
use crate::inbound;
use crate::schedule::Job;
use crate::transport;
use crate::transport::progress::Watch;

/// The next fire of every `[[schedule]]` line (for `stxd status`),
/// earliest first.
pub fn next_runs(config: &Config, now: time::OffsetDateTime) -> Vec<crate::schedule::NextRun> {
    crate::schedule::next_runs(&config.schedules, now)
}

/// What [`run_job`] did.
#[derive(Debug)]
pub enum JobDone {
    /// An export wrote its file (boxed: the manifest is large).
    Exported(Box<crate::outbound::export::Exported>),
    /// An export was refused (nothing to sell, setup, a store error): no
    /// sequence used; the run, when logged, says why.
    Refused(crate::outbound::export::ExportError),
    /// A reconciliation of the link's two stores (boxed: it is large).
    Reconciled(Box<crate::domain::reconcile::Report>),
    /// A poll or an apply window: the files handled, and (for a poll) the
    /// share's sync and the files left waiting for their apply window.
    Files {
        /// What a poll moved to and from an SFTP share (`None` for an apply
        /// window; no sides for a local transport).
        polled: Option<PollReport>,
        handled: Vec<Handled>,
        held: Vec<WindowHeld>,
    },
}

impl JobDone {
    /// The job met a store another process kept busy past this process's
    /// wait: an export that could not begin (nothing staged, no sequence
    /// used), or files left where they were. Run again, it does what it
    /// could not.
    pub fn found_busy(&self) -> bool {
        match self {
            JobDone::Refused(e) => e.is_busy(),
            JobDone::Files { handled, .. } => handled.iter().any(|h| {
                h.processed
                    .as_ref()
                    .is_err_and(inbound::InboundError::is_busy)
            }),
            JobDone::Exported(_) | JobDone::Reconciled(_) => false,
        }
    }
}

/// Runs one job on a link now: the code path of `stxd trigger --now`, of
/// trigger files and of schedules alike.
///
/// - `export-<kind>`: the link's next file of that kind, as `stxd export`;
///   a contingent export covers the performances whose allotment changed
///   since its last export (`nothing-to-send` when none did).
/// - `poll`: syncs an SFTP share ([`poll_with`], sessions kept in
///   `shares`), then lists the link's inboxes and processes the complete
///   files, holding those of a kind with an apply window.
/// - `apply-<kind>`: processes the link's parked and waiting files of that
///   kind, in sequence order, window or not.
/// - `reconcile`: compares the link's two stores ([`reconcile`]).
pub fn run_job(
    config: &Config,
    link_name: &str,
    job: crate::schedule::Job,
    now: time::OffsetDateTime,
    shares: &mut Shares,
    stop: &dyn Fn() -> bool,
    watch: &Watch,
) -> Result<JobDone, AppError> {
    let link = config
        .require_link(link_name)
        .map_err(AppError::UnknownLink)?;
    match job {
        Job::Export(kind) => {
            let (link, _, mut store) = open_side(config, &link.name, kind.sender())?;
            let secret = require_secret(link)?;
            // A job sends only the contingents that changed: a schedule
            // never repeats a snapshot the distributor already has.
            let result = match kind {
                Kind::Contingent => crate::outbound::export::export_with(
                    &mut store,
                    link,
                    &crate::outbound::contingent::ContingentPayload::changed(),
                    &secret,
                    now,
                ),
                _ => crate::outbound::export(&mut store, link, kind, &secret, now),
            };
            Ok(match result {
                Ok(done) => JobDone::Exported(Box::new(done)),
                Err(e) => JobDone::Refused(e),
            })
        }
        Job::Poll => {
            let polled = poll_with(config, &link.name, shares, std::time::Instant::now())?;
            let dirs = folders_to_scan(config, Some(&link.name), |f| f.inbox.clone())?;
            let (ready, held) = split_by_window(config, scan(&dirs)?, now);
            Ok(JobDone::Files {
                polled: Some(polled),
                handled: process_files_watched(config, &ready, stop, watch)?,
                held,
            })
        }
        Job::Reconcile => Ok(JobDone::Reconciled(Box::new(reconcile(
            config, &link.name,
        )?))),
        Job::Apply(kind) => {
            served(config, link, job)?;
            let mut dirs = folders_to_scan(config, Some(&link.name), |f| f.parked.clone())?;
            dirs.extend(folders_to_scan(config, Some(&link.name), |f| {
                f.inbox.clone()
            })?);
            let mut files: Vec<(u64, PathBuf)> = scan(&dirs)?
                .into_iter()
                .filter_map(|file| {
                    let name = inbound::claim::display_name(&file);
                    match FileName::parse_manifest(&name) {
                        Ok(n) if n.kind == kind => Some((n.sequence, file)),
                        _ => None,
                    }
                })
                .collect();
            files.sort();
            let files: Vec<PathBuf> = files.into_iter().map(|(_, f)| f).collect();
            Ok(JobDone::Files {
                polled: None,
                handled: process_files_watched(config, &files, stop, watch)?,
                held: Vec::new(),
            })
        }
    }
}

/// Refuses a job whose side(s) this config does not serve.
fn served(config: &Config, link: &crate::config::Link, job: Job) -> Result<(), AppError> {
    match job
        .sides()
        .iter()
        .find(|&&side| config.institution(link.side_code(side)).is_none())
    {
        Some(&side) => Err(AppError::ApplyNotServed {
            job,
            side,
            link: link.name.clone(),
        }),
        None => Ok(()),
    }
}

/// Reconciles `link` between its two stores, both served by this config
/// (the `reconcile` job; `stxd report reconcile` also takes copies of a
/// store served elsewhere).
pub fn reconcile(
    config: &Config,
    link_name: &str,
) -> Result<crate::domain::reconcile::Report, AppError> {
    let link = config
        .require_link(link_name)
        .map_err(AppError::UnknownLink)?;
    served(config, link, Job::Reconcile)?;
    let (_, _, manager) = open_side(config, &link.name, crate::store::Role::Manager)?;
    let (_, _, distributor) = open_side(config, &link.name, crate::store::Role::Distributor)?;
    manager
        .read(|m| {
            distributor.read(|d| {
                crate::domain::reconcile::reconcile(m, d, &link.name, link.manager.as_str())
            })
        })
        .map_err(|e| AppError::Reconcile {
            link: link.name.clone(),
            source: Box::new(e),
        })
}

/// The sequence of `kind` a receiver on `link` waits for next (the last
/// applied + 1), read from its store: for gap alerts.
pub fn expected_sequence(config: &Config, link: &str, kind: Kind) -> Result<u64, AppError> {
    let side = kind.sender().peer();
    let (_, _, store) = open_side(config, link, side)?;
    Ok(store.read(|conn| crate::store::journal::next_in(conn, link, kind))?)
}

/// Whether [`write_trigger`] created the file or found it already waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerWritten {
    Created,
    AlreadyWaiting,
}

/// Drops the trigger file of `job` in `link`'s control folder (creating the
/// folder, mode 0700): an empty file created new (never replacing one),
/// synced, and its folder synced. Checks first that the job can run here.
pub fn write_trigger(
    config: &Config,
    link: &str,
    job: crate::schedule::Job,
) -> Result<(PathBuf, TriggerWritten), AppError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let l = config.require_link(link).map_err(AppError::UnknownLink)?;
    for &side in job.sides() {
        let code = l.side_code(side);
        if config.institution(code).is_none() {
            return Err(AppError::TriggerNotServed {
                job,
                side,
                link: link.to_owned(),
                code: code.to_owned(),
            });
        }
    }
    let dir = config.control_dir(link);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|source| AppError::ControlDir {
            dir: dir.clone(),
            source,
        })?;
    let path = dir.join(job.name());
    let written = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
    {
        Ok(file) => {
            file.sync_all().map_err(|source| AppError::Sync {
                path: path.clone(),
                source,
            })?;
            TriggerWritten::Created
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => TriggerWritten::AlreadyWaiting,
        Err(e) => {
            return Err(AppError::CreateTrigger { path, source: e });
        }
    };
    transport::local::sync_dir(&dir).map_err(|source| AppError::Sync {
        path: dir.clone(),
        source,
    })?;
    Ok((path, written))
}
