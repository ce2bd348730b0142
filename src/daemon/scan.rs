//! One listing of every inbox (and, when worth it, of the parked folders):
//! committed exports placed first, the SFTP shares of links without a
//! `poll` schedule synced, then each complete file through the one-shot
//! pipeline, stopping between two files when the daemon stops. What one
//! listing hands to the next is a [`ScanState`].

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use time::OffsetDateTime;

use super::failing::Failing;
use super::log_once::LogOnce;
use super::retention::Retention;
use super::{alerts, report};
use crate::alert::Alerter;
use crate::app;
use crate::config::{self, Config};
use crate::inbound::claim::display_name;
use crate::schedule::Job;

/// What one scan hands to the next.
#[derive(Debug, Default)]
pub(super) struct ScanState {
    /// Retry the parked files on the next scan.
    pub(super) resume_parked: bool,
    /// The stores' files as the last scan left them: a change made by
    /// someone else (a CLI command filling mappings) makes parked files
    /// worth retrying; retrying them unchanged would only log a new run.
    stores: Vec<Fingerprint>,
    /// The files logged in a waiting state, so each is reported once.
    pub(super) log: LogOnce,
    /// The SFTP sessions kept across polls, with their backoff.
    pub(super) shares: app::Shares,
    /// The files failing for a cause outside them, with their waits.
    failing: Failing,
    /// When the archives past `[daemon] archive_days` were last deleted.
    retention: Retention,
    started: bool,
}

type Fingerprint = (PathBuf, Option<(SystemTime, u64)>);

fn fingerprints(config: &Config) -> Vec<Fingerprint> {
    let mut out = Vec::new();
    for inst in &config.institutions {
        let store = config.store_path(&inst.code);
        for suffix in ["", "-wal"] {
            let mut p = store.as_os_str().to_owned();
            p.push(suffix);
            let p = PathBuf::from(p);
            let meta = std::fs::metadata(&p)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())));
            out.push((p, meta));
        }
    }
    out
}

/// One listing of every inbox (and, when worth it, the parked folders),
/// each file processed through the one-shot pipeline, stopping between
/// files when asked to.
pub(super) fn scan_once(
    config: &Config,
    stop: &AtomicBool,
    mut state: ScanState,
    now: OffsetDateTime,
    alerter: &Alerter,
) -> ScanState {
    debug!("listing the inboxes");
    // Exports committed but not placed (a one-shot export killed after its
    // commit, a placement that failed) go out before anything else.
    for finished in app::finish_exports(config) {
        match finished {
            Ok(f) => {
                info!(link = %f.link, kind = %f.kind, sequences = ?f.sequences, "committed export placed after an interruption")
            }
            Err(e) => {
                error!(error = %app::chain(&e), "cannot place a committed export; the next listing retries")
            }
        }
    }
    sync_unscheduled_shares(config, stop, &mut state, now, alerter);
    let stores = fingerprints(config);
    // Every parked file is retried at the start and when asked (the
    // console filled mappings); after another change to a store, only
    // those whose missing mappings it filled.
    let resume = if !state.started || state.resume_parked {
        Some(Retry::All)
    } else {
        (stores != state.stores).then_some(Retry::Filled)
    };
    state.started = true;
    state.resume_parked = false;
    let pass =
        |pick: fn(&config::Folders) -> PathBuf, what: &str, retry: Retry, state: &mut ScanState| {
            match app::folders_to_scan(config, None, pick).and_then(|dirs| app::scan(&dirs)) {
                Ok(files) => {
                    let files = match retry {
                        Retry::All => files,
                        Retry::Filled => app::parked_worth_retrying(config, files),
                    };
                    process(config, stop, files, state, now, alerter)
                }
                Err(e) => {
                    error!(error = %app::chain(&e), "cannot list the {what}");
                    0
                }
            }
        };
    let parked = |f: &config::Folders| f.parked.clone();
    if let Some(retry) = resume {
        pass(parked, "parked folders", retry, &mut state);
    }
    // A file applied now (a seat plan) may be what a parked one (a
    // catalogue) was waiting for.
    if pass(|f| f.inbox.clone(), "inboxes", Retry::All, &mut state) > 0 {
        pass(parked, "parked folders", Retry::Filled, &mut state);
    }
    // Forget files that left the folders, so the maps stay small. A file
    // logged as waiting (parked, held, failing) that left without the
    // daemon is said once, so that its log does not end on the warning.
    for (gone, was) in state.log.retain_present() {
        info!(file = %display_name(&gone), was = was.as_str(),
            "file no longer waits: a command applied or moved it, or it was removed (stxd status and stxd runs list say how it ended)");
    }
    state.failing.retain_present();
    record_retrying(config, &mut state);
    // Files put in error/ by others are raised; incidents whose file left
    // its folder are resolved.
    alerts::sweep(config, alerter);
    // After the listing: a move into done/ that a kill cut is finished
    // from the journal first.
    state.retention.run(config);
    state.stores = fingerprints(config);
    state
}

/// Records the files tried again later for `stxd status` and the console
/// when their list changed ([`crate::retrying`]). The record is advice: one
/// that cannot be written (its disk full, most likely what the files fail
/// for) is said at debug level and written at the next listing.
fn record_retrying(config: &Config, state: &mut ScanState) {
    let now = (Instant::now(), OffsetDateTime::now_utc());
    let Some(files) = state.failing.changes(now.0, now.1) else {
        return;
    };
    let record = crate::retrying::Retrying {
        pid: std::process::id(),
        files,
    };
    match crate::retrying::write(&config.state_dir, &record) {
        Ok(()) => state.failing.recorded(),
        Err(e) => debug!(error = %e, dir = %config.state_dir.display(),
            "cannot record the files tried again later for stxd status; the next listing tries again"),
    }
}

/// Which files of a listing to take: all of them, or (parked files) only
/// those whose missing mappings were filled since they parked.
#[derive(Debug, Clone, Copy)]
enum Retry {
    All,
    Filled,
}

/// Syncs the SFTP shares of links without a `poll` schedule: they move
/// files at every listing (a `poll` schedule sets another pace). Sessions
/// are kept between listings; a failing share backs off.
fn sync_unscheduled_shares(
    config: &Config,
    stop: &AtomicBool,
    state: &mut ScanState,
    now: OffsetDateTime,
    alerter: &Alerter,
) {
    state.shares.retain_links(config);
    for link in &config.links {
        let scheduled = config
            .schedules
            .iter()
            .any(|e| e.link == link.name && e.job == Job::Poll);
        if scheduled || !matches!(link.transport, config::Transport::Sftp { .. }) {
            continue;
        }
        if stop.load(Ordering::SeqCst) {
            return;
        }
        match app::poll_with(
            config,
            &link.name,
            &mut state.shares,
            std::time::Instant::now(),
        ) {
            Ok(polled) => report::polled(&polled, &mut state.log, now, alerter),
            Err(e) => error!(link = %link.name, error = %app::chain(&e), "share not synced"),
        }
    }
}

/// Processes `files` one at a time, stopping between two when asked to,
/// except those of a kind waiting for an apply window and those failing
/// for a cause outside them whose wait is not over ([`Failing`]); returns
/// how many were applied.
fn process(
    config: &Config,
    stop: &AtomicBool,
    files: Vec<PathBuf>,
    state: &mut ScanState,
    now: OffsetDateTime,
    alerter: &Alerter,
) -> usize {
    let (files, held) = app::split_by_window(config, files, now);
    report::window_held(&held, &mut state.log);
    let mut applied = 0;
    let mut busy = app::BusyStores::default();
    let watch = super::progress::logged(&config.state_dir);
    let period = Duration::from_secs(config.daemon.scan_seconds);
    for file in &files {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        if let Some(waiting) = state.failing.waiting(file, Instant::now()) {
            report::waiting_to_retry(file, &waiting, &mut state.log, now, alerter);
            continue;
        }
        match app::process_listed(config, std::slice::from_ref(file), &watch, &mut busy) {
            Ok(handled) => {
                for h in &handled {
                    if report::applied(h) {
                        applied += 1;
                    }
                    let retry_in = state.failing.tried(h, Instant::now(), period);
                    report::handled(config, h, retry_in, &mut state.log, now, alerter);
                }
            }
            Err(e) => report::not_processed(file, &e, &mut state.log, now, alerter),
        }
    }
    applied
}
