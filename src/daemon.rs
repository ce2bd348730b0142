//! `stxd run`: the daemon over local drop folders, schedules and triggers.
//!
//! Takes a validated [`Config`] and the intents of the process's signals;
//! serves one queue of work, one item at a time on `spawn_blocking`
//! (SQLite has one writer per store):
//!
//! - *scans*: the one-shot pipeline ([`app::scan`], [`app::process_files`],
//!   [`app::resume`]) over every inbox: at start, every `[daemon]
//!   scan_seconds`, and soon after a folder event (events only trigger a
//!   listing: the listing decides what is complete). Files of a kind with an
//!   apply window (`[[schedule]] job = "apply-<kind>"`) stay in the inbox;
//! - *jobs* ([`app::run_job`], the code path of `stxd trigger`): fired by
//!   [`Schedules`] (missed fires not replayed, a job never overlapping
//!   itself) or by a trigger file in `<state_dir>/control/<link>/`. A
//!   trigger is taken (given the private name `.taken.<job>`) when its job
//!   is queued, and removed once the job ran to its end: a taken trigger
//!   left by a kill or a stop is queued again by the next start.
//!
//! A stop intent is honoured between two files; the item in hand gets
//! `[daemon] shutdown_grace_seconds`, then is abandoned (its transaction is
//! rolled back when the process ends). Files held for a sequence gap are
//! warned about once, and logged as errors once past `[daemon]
//! gap_alert_minutes`. One daemon per state directory: an exclusive `flock`
//! on `<state_dir>/stxd.lock`. No business rule lives here.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, error, info, warn};

use crate::app;
use crate::config::{self, Config};
use crate::inbound::apply::Outcome;
use crate::schedule::{Job, Schedules};

/// What the process's signals ask of the daemon (STYLE.md §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Stop taking new work, finish the item in hand (within the shutdown
    /// grace), exit.
    Shutdown,
    /// Read the config file again; keep the running one if it is invalid.
    Reload,
    /// Quit now, without waiting for the file in hand (its transaction is
    /// not committed, so the store is as before it).
    Quit,
}

/// How the daemon ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Stopped after the file in hand (exit code 0).
    Stopped,
    /// Quit at once on a second stop signal (exit code 130).
    Quit,
}

impl Exit {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Stopped => 0,
            Exit::Quit => 130,
        }
    }
}

/// How long folder events are gathered before a listing.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// The exclusive lock of a state directory, held while the file stays open.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
    path: PathBuf,
}

impl StateLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Takes the exclusive lock on `<state_dir>/stxd.lock` (creating the
/// directory) and writes this process's id into it. Fails naming the state
/// directory and the holder's pid when another daemon runs there.
pub fn lock_state_dir(state_dir: &Path) -> anyhow::Result<StateLock> {
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .with_context(|| format!("cannot create {}", state_dir.display()))?;
    let path = state_dir.join("stxd.lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .with_context(|| format!("cannot open the lock file {}", path.display()))?;
    // `stxd status` and `stxd trigger` probe the lock with a shared lock
    // held for an instant: a few tries keep such a probe from refusing a
    // starting daemon.
    let mut locked = -1;
    for attempt in 0..5 {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        // SAFETY: flock on a file descriptor this function owns and keeps open.
        locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if locked == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EWOULDBLOCK)
        {
            break;
        }
    }
    if locked != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut text = String::new();
            let _ = file.take(32).read_to_string(&mut text);
            let pid = text.trim();
            let pid = if pid.is_empty() { "unknown" } else { pid };
            anyhow::bail!(
                "another stxd is running on {} (pid {pid}); lock file {}",
                state_dir.display(),
                path.display()
            );
        }
        return Err(e).with_context(|| format!("cannot lock {}", path.display()));
    }
    let write = |file: &mut File| -> std::io::Result<()> {
        file.set_len(0)?;
        file.rewind()?;
        writeln!(file, "{}", std::process::id())?;
        file.sync_all()
    };
    write(&mut file).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(StateLock { _file: file, path })
}

/// `stxd run`: builds the runtime, turns signals into intents and runs the
/// daemon until it stops. SIGTERM/SIGINT → shutdown (a second one quits at
/// once, exit code 130); SIGHUP → reload `config_path`.
pub fn main(config: Config, config_path: Option<PathBuf>) -> anyhow::Result<Exit> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(async move {
        let (tx, rx) = mpsc::unbounded_channel();
        let signals = signal_intents(tx)?;
        let result = run(config, config_path, rx).await;
        signals.abort();
        result
    });
    // On a quit, a file may still be in hand on a blocking thread: do not
    // wait for it (its transaction is rolled back when the process ends).
    runtime.shutdown_background();
    result
}

/// Listens to SIGTERM, SIGINT and SIGHUP and sends the matching intents.
fn signal_intents(
    tx: mpsc::UnboundedSender<Intent>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot listen to SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen to SIGINT")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot listen to SIGHUP")?;
    Ok(tokio::spawn(async move {
        let mut stopping = false;
        loop {
            let stop = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
                _ = hup.recv() => {
                    let _ = tx.send(Intent::Reload);
                    continue;
                }
            };
            let intent = if stopping {
                Intent::Quit
            } else {
                Intent::Shutdown
            };
            stopping = true;
            debug!(signal = stop, ?intent, "stop signal");
            let _ = tx.send(intent);
        }
    }))
}

/// One item of work for the blocking worker. Items run one at a time, in
/// the order queued (SQLite has one writer per store; one worker keeps it
/// simple and safe).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Work {
    /// A listing of every inbox (and, when worth it, parked folder).
    Scan,
    /// A job of a link, from a schedule or a trigger file.
    Job {
        link: String,
        job: Job,
        origin: &'static str,
    },
}

impl Work {
    fn label(&self) -> String {
        match self {
            Work::Scan => "scan".to_owned(),
            Work::Job { link, job, origin } => format!("{job} on {link} ({origin})"),
        }
    }

    fn is_job(&self, link: &str, job: Job) -> bool {
        matches!(self, Work::Job { link: l, job: j, .. } if l == link && *j == job)
    }
}

/// The item in the worker's hands.
struct InHand {
    work: Work,
    handle: tokio::task::JoinHandle<ScanState>,
}

/// The daemon: locks the state directory, opens (and on first start
/// bootstraps) every store, then serves its work queue (listings, scheduled
/// jobs, trigger files) until a [`Intent::Shutdown`] arrives or the intent
/// channel closes. Returns once the item in hand is finished (or
/// `[daemon] shutdown_grace_seconds` have passed), or at once on
/// [`Intent::Quit`].
pub async fn run(
    config: Config,
    config_path: Option<PathBuf>,
    mut intents: mpsc::UnboundedReceiver<Intent>,
) -> anyhow::Result<Exit> {
    let lock = lock_state_dir(&config.state_dir)?;
    // systemd: READY=1 once the first listing (recovery) is done; STOPPING=1; WATCHDOG=1 from this loop.
    let (sd, mut sd_ready) = (crate::systemd::Notifier::from_env(), false);
    let mut sd_watchdog = crate::systemd::watchdog_timer(&sd);
    sd.status("starting: opening the stores and listing the inboxes");
    for inst in &config.institutions {
        app::open_store(&config, inst)?;
    }
    for link in &config.links {
        // Generated here on first start when the config allows it.
        if let Err(e) = app::link_secret(link) {
            error!(link = %link.name, error = %e, "the link's files cannot be verified or signed until its secret is fixed");
        }
    }
    let mut config = Arc::new(config);
    let (kick_tx, mut kick_rx) = mpsc::channel::<()>(1);
    let mut watcher = Watcher::new(kick_tx)?;
    watcher.watch(&config)?;
    let mut schedules = Schedules::new(&config.schedules, OffsetDateTime::now_utc());
    // Started: the stores are open and the folders watched. "ready" is
    // logged once the first listing has recovered what a previous run left.
    info!(
        state_dir = %config.state_dir.display(),
        lock = %lock.path().display(),
        institutions = config.institutions.len(),
        links = config.links.len(),
        schedules = config.schedules.len(),
        scan_seconds = config.daemon.scan_seconds,
        pid = std::process::id(),
        "started: stores open, folders watched; first listing running"
    );

    let mut tick = new_interval(config.daemon.scan_seconds);
    let stop = Arc::new(AtomicBool::new(false));
    let mut state = ScanState::default();
    let mut control = Control::default();
    let mut queue: VecDeque<Work> = VecDeque::new();
    let mut in_hand: Option<InHand> = None;
    let mut scan_wanted = true;
    let mut resume_wanted = false;
    let mut last_was_job = false;
    let mut triggers_wanted = true;
    let mut debounce: Option<Instant> = None;
    loop {
        let now = OffsetDateTime::now_utc();
        let fired = schedules.due(now, |link, job| {
            in_hand.as_ref().is_some_and(|h| h.work.is_job(link, job))
                || queue.iter().any(|w| w.is_job(link, job))
        });
        for skipped in fired.skipped {
            info!(link = %skipped.link, job = %skipped.job, "scheduled run skipped: the same job is still queued or running");
        }
        for due in fired.due {
            debug!(link = %due.link, job = %due.job, "schedule fired");
            queue.push_back(Work::Job {
                link: due.link,
                job: due.job,
                origin: "schedule",
            });
        }
        if triggers_wanted {
            triggers_wanted = false;
            let busy: Vec<(String, Job)> = in_hand
                .iter()
                .map(|h| &h.work)
                .chain(queue.iter())
                .filter_map(|w| match w {
                    Work::Job { link, job, .. } => Some((link.clone(), *job)),
                    Work::Scan => None,
                })
                .collect();
            let (cfg, ctl) = (config.clone(), std::mem::take(&mut control));
            match tokio::task::spawn_blocking(move || take_triggers(&cfg, &busy, ctl)).await {
                Ok((ctl, taken)) => {
                    control = ctl;
                    queue.extend(taken.into_iter().map(|(link, job)| Work::Job {
                        link,
                        job,
                        origin: TRIGGER,
                    }));
                }
                Err(e) => {
                    error!(error = %e, "listing the control folders failed; the next listing retries")
                }
            }
        }
        if in_hand.is_none() {
            // Recovery (the first listing) comes before any job, and a
            // listing wanted takes its turn after each job, so a busy
            // schedule never starves the inboxes.
            let scan_first = scan_wanted && (!sd_ready || last_was_job);
            let next = if scan_first { None } else { queue.pop_front() }
                .or_else(|| std::mem::take(&mut scan_wanted).then_some(Work::Scan));
            if let Some(work) = next {
                last_was_job = !matches!(work, Work::Scan);
                state.resume_parked |= std::mem::take(&mut resume_wanted);
                let (config, stop, prior) =
                    (config.clone(), stop.clone(), std::mem::take(&mut state));
                let item = work.clone();
                let handle = tokio::task::spawn_blocking(move || {
                    serve(&config, &stop, prior, &item, OffsetDateTime::now_utc())
                });
                in_hand = Some(InHand { work, handle });
            }
        }
        // Wake for the next fire; at least every minute, so a change of the
        // wall clock is noticed.
        let wake = schedules.next_wake().map(|at| {
            let left = at - OffsetDateTime::now_utc();
            Duration::try_from(left)
                .unwrap_or(Duration::ZERO)
                .min(Duration::from_secs(60))
        });
        tokio::select! {
            intent = intents.recv() => match intent {
                Some(Intent::Reload) => {
                    if sd_ready { sd.reloading(); }
                    if let Some(new) = reload(&config, config_path.as_deref()) {
                        if new.daemon.scan_seconds != config.daemon.scan_seconds {
                            tick = new_interval(new.daemon.scan_seconds);
                        }
                        if new.schedules != config.schedules {
                            schedules = Schedules::new(&new.schedules, OffsetDateTime::now_utc());
                        }
                        config = Arc::new(new);
                        if let Err(e) = watcher.watch(&config) {
                            error!(error = %format!("{e:#}"), "cannot watch the folders of the new config; the periodic listing still runs");
                        }
                        // The scan state may be in the worker now: the
                        // next item takes this flag.
                        resume_wanted = true;
                        scan_wanted = true;
                        triggers_wanted = true;
                    }
                    if sd_ready { sd.ready(&crate::systemd::summary(&config)); } // not before recovery
                }
                Some(Intent::Quit) => {
                    sd.stopping("quitting now");
                    warn!(work_in_hand = %in_hand.as_ref().map_or_else(|| "none".to_owned(), |h| h.work.label()),
                        "quitting now: the file in hand, if any, is rolled back");
                    left_taken(in_hand.iter().map(|h| &h.work).chain(queue.iter()));
                    return Ok(Exit::Quit);
                }
                Some(Intent::Shutdown) | None => {
                    sd.stopping("stopping: finishing the work in hand");
                    stop.store(true, Ordering::SeqCst);
                    let abandoned: Vec<String> = queue.iter().map(Work::label).collect();
                    // "none" rather than an empty field an operator cannot read.
                    info!(
                        work_in_hand = %in_hand.as_ref().map_or_else(|| "none".to_owned(), |h| h.work.label()),
                        not_started = %if abandoned.is_empty() { "none".to_owned() } else { abandoned.join(", ") },
                        "stopping: no new work is taken"
                    );
                    left_taken(queue.iter());
                    if let Some(hand) = in_hand.take() {
                        let grace = Duration::from_secs(config.daemon.shutdown_grace_seconds);
                        match finish_in_hand(hand.handle, grace, &mut intents).await {
                            Finish::Done => {}
                            Finish::GraceElapsed => {
                                warn!(
                                    work = %hand.work.label(),
                                    grace_seconds = config.daemon.shutdown_grace_seconds,
                                    "shutdown grace elapsed: the work in hand is abandoned; its uncommitted transaction is rolled back when the process ends"
                                );
                                left_taken(std::iter::once(&hand.work));
                            }
                            Finish::Quit => {
                                warn!(work = %hand.work.label(), "second stop signal: quitting now; the file in hand is rolled back");
                                left_taken(std::iter::once(&hand.work));
                                return Ok(Exit::Quit);
                            }
                        }
                    }
                    info!("stopped");
                    return Ok(Exit::Stopped);
                }
            },
            _ = tick.tick() => {
                scan_wanted = true;
                triggers_wanted = true;
            }
            _ = crate::systemd::next_tick(&mut sd_watchdog) => sd.watchdog(),
            Some(()) = kick_rx.recv() => {
                debounce.get_or_insert_with(|| Instant::now() + DEBOUNCE);
            }
            _ = sleep_until(debounce), if debounce.is_some() => {
                debounce = None;
                scan_wanted = true;
                triggers_wanted = true;
            }
            _ = tokio::time::sleep(wake.unwrap_or(Duration::ZERO)), if wake.is_some() => {}
            done = wait(&mut in_hand), if in_hand.is_some() => {
                let work = in_hand.take().map(|h| h.work);
                match done {
                    Ok(next) => state = next,
                    Err(e) => error!(work = %work.as_ref().map(Work::label).unwrap_or_default(), error = %e,
                        "the work item failed; the next listing retries"),
                }
                if matches!(work, Some(Work::Scan)) && !std::mem::replace(&mut sd_ready, true) {
                    info!(systemd = sd.enabled(), "first listing done: recovered, ready");
                    sd.ready(&crate::systemd::summary(&config));
                }
                // A job may have emptied or filled folders.
                if !matches!(work, Some(Work::Scan) | None) {
                    scan_wanted = true;
                }
            }
        }
    }
}

/// Says which triggered jobs will not run now (queued, or abandoned at
/// shutdown): their triggers stay taken, and the next start queues them
/// again ([`take_triggers`]). Nothing to write: a crash leaves them the same.
fn left_taken<'w>(work: impl Iterator<Item = &'w Work>) {
    for w in work {
        if let Work::Job {
            link,
            job,
            origin: TRIGGER,
        } = w
        {
            info!(link = %link, job = %job, "triggered job not run: its trigger stays taken and the next start runs it");
        }
    }
}

/// How the item in hand ended after a stop signal.
#[derive(Debug, PartialEq, Eq)]
enum Finish {
    Done,
    GraceElapsed,
    Quit,
}

/// Waits for the item in hand at most `grace`; a [`Intent::Quit`] ends the
/// wait at once.
async fn finish_in_hand<T>(
    mut handle: tokio::task::JoinHandle<T>,
    grace: Duration,
    intents: &mut mpsc::UnboundedReceiver<Intent>,
) -> Finish {
    let deadline = tokio::time::sleep(grace);
    tokio::pin!(deadline);
    let mut open = true;
    loop {
        tokio::select! {
            _ = &mut handle => return Finish::Done,
            _ = &mut deadline => return Finish::GraceElapsed,
            intent = intents.recv(), if open => match intent {
                Some(Intent::Quit) => return Finish::Quit,
                Some(_) => {}
                None => open = false,
            },
        }
    }
}
fn new_interval(secs: u64) -> tokio::time::Interval {
    let period = Duration::from_secs(secs);
    // The first listing runs at start; the interval's first tick is one period later.
    let mut tick = tokio::time::interval_at(Instant::now() + period, period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    tick
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

async fn wait(in_hand: &mut Option<InHand>) -> Result<ScanState, tokio::task::JoinError> {
    match in_hand {
        Some(hand) => (&mut hand.handle).await,
        None => std::future::pending().await,
    }
}

/// Reads the config file again. `None` (with the reason logged) keeps the
/// running config.
fn reload(running: &Config, path: Option<&Path>) -> Option<Config> {
    let Some(path) = path else {
        warn!("reload asked, but the daemon runs on the built-in config: nothing to read");
        return None;
    };
    match config::load(path) {
        Ok(new) if new.state_dir != running.state_dir => {
            error!(
                config = %path.display(),
                running = %running.state_dir.display(),
                new = %new.state_dir.display(),
                "config not reloaded: state_dir cannot change while running (restart stxd); the running config is kept"
            );
            None
        }
        Ok(new) => {
            info!(
                config = %path.display(),
                institutions = new.institutions.len(),
                links = new.links.len(),
                schedules = new.schedules.len(),
                scan_seconds = new.daemon.scan_seconds,
                "config reloaded"
            );
            Some(new)
        }
        Err(e) => {
            let problems: Vec<String> = e.errors.iter().map(ToString::to_string).collect();
            error!(
                config = %path.display(),
                problems = %problems.join("; "),
                "config not reloaded: the file is invalid; the running config is kept"
            );
            None
        }
    }
}

/// What one scan hands to the next.
#[derive(Debug, Default)]
struct ScanState {
    /// Retry the parked files on the next scan.
    resume_parked: bool,
    /// The stores' files as the last scan left them: a change made by
    /// someone else (a CLI command filling mappings) makes parked files
    /// worth retrying; retrying them unchanged would only log a new run.
    stores: Vec<Fingerprint>,
    /// The last state logged per file, so a file held in the inbox is
    /// reported once, not at every listing.
    logged: HashMap<PathBuf, &'static str>,
    /// Files held for a sequence gap: since when, and whether the error
    /// past `[daemon] gap_alert_minutes` was logged.
    gaps: HashMap<PathBuf, Gap>,
    /// The SFTP sessions kept across polls, with their backoff.
    shares: app::Shares,
    started: bool,
}

/// A file held for a sequence gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Gap {
    since: OffsetDateTime,
    alerted: bool,
}

/// How to log a file held for a sequence gap this time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GapLog {
    /// First seen: a warning.
    First,
    /// Held longer than the alert delay, for the first time: an error.
    Alert { since: OffsetDateTime },
    /// Already reported.
    Quiet,
}

/// Tracks a file held for a gap at `now`; says how to log it. Pure: the
/// clock is the caller's.
fn watch_gap(
    gaps: &mut HashMap<PathBuf, Gap>,
    file: &Path,
    now: OffsetDateTime,
    alert_after: time::Duration,
) -> GapLog {
    match gaps.get_mut(file) {
        None => {
            gaps.insert(
                file.to_owned(),
                Gap {
                    since: now,
                    alerted: false,
                },
            );
            GapLog::First
        }
        Some(gap) if !gap.alerted && now - gap.since >= alert_after => {
            gap.alerted = true;
            GapLog::Alert { since: gap.since }
        }
        Some(_) => GapLog::Quiet,
    }
}

/// Serves one work item on the blocking worker.
fn serve(
    config: &Config,
    stop: &AtomicBool,
    state: ScanState,
    work: &Work,
    now: OffsetDateTime,
) -> ScanState {
    match work {
        Work::Scan => scan_once(config, stop, state, now),
        Work::Job { link, job, origin } => {
            let mut state = state;
            let span = tracing::info_span!("job", link = %link, job = %job, origin);
            let _entered = span.enter();
            let ended = run_job(config, stop, link, *job, now, &mut state);
            if *origin == TRIGGER {
                if ended {
                    crate::failpoint::hit("trigger.job-done");
                    let dir = config.control_dir(link);
                    remove_trigger(&dir.join(taken_name(*job)), &dir);
                } else {
                    info!(
                        "triggered job cut short by the stop: its trigger stays taken and the next start runs the job again"
                    );
                }
            }
            state
        }
    }
}

/// Runs a job through [`app::run_job`] (the code path of `stxd trigger`)
/// and logs what it did, at the level of what ops must do. Returns whether
/// the job ran to its end (failed or not): a listing job (poll, apply
/// window) stops between two files once the daemon stops, and is then not
/// finished.
fn run_job(
    config: &Config,
    stop: &AtomicBool,
    link: &str,
    job: Job,
    now: OffsetDateTime,
    state: &mut ScanState,
) -> bool {
    let stopping = || stop.load(Ordering::SeqCst);
    let done = app::run_job(config, link, job, now, &mut state.shares, &stopping);
    let cut_short = stopping() && matches!(&done, Ok(app::JobDone::Files { .. }));
    match done {
        Ok(app::JobDone::Exported(done)) => {
            let m = &done.manifest;
            info!(file = %m.manifest_name(), sequence = m.sequence, records = m.records,
                run = done.run_id, excluded = done.report.excluded.len(), "job done: file exported");
        }
        Ok(app::JobDone::Refused(e)) => match e.code() {
            "nothing-to-send" => {
                debug!(code = e.code(), reason = %e, "job done: nothing new to export")
            }
            "nothing-to-sell" => {
                info!(code = e.code(), reason = %e, run = e.run_id, "job done: nothing to export")
            }
            "database" | "orphan-file" | "publish-failed" | "outbox" => {
                error!(code = e.code(), reason = %e, run = e.run_id, "job failed: export refused")
            }
            _ => warn!(code = e.code(), reason = %e, run = e.run_id, "job done: export refused"),
        },
        Ok(app::JobDone::Files {
            polled,
            handled,
            held,
        }) => {
            if let Some(report) = &polled {
                log_polled(report);
            }
            for h in &handled {
                log_handled(config, h, state, now);
            }
            log_window_held(&held, &mut state.logged);
            info!(
                files = handled.len(),
                waiting_for_window = held.len(),
                "job done"
            );
        }
        Err(e) => error!(error = %format!("{e:#}"), "job failed"),
    }
    !cut_short
}

/// Logs a share's sync: info when files moved, warn for an alert (a final
/// name already holding other bytes: someone must look), error for a
/// failure (debug while the backoff defers the next try).
fn log_polled(report: &app::PollReport) {
    for side in &report.sides {
        let (link, institution) = (&report.link, &side.institution);
        match &side.synced {
            app::Synced::Moved(m) => {
                if !m.pushed.is_empty() || !m.pulled.is_empty() {
                    info!(%link, %institution, pushed = %m.pushed.join(", "), pulled = %m.pulled.join(", "),
                        "share synced");
                }
                for alert in &m.alerts {
                    warn!(%link, %institution, alert = %alert, "share: file left in place");
                }
            }
            app::Synced::Deferred(d) => {
                debug!(%link, %institution, retry_in_seconds = d.as_secs(), "share not retried yet (backoff)")
            }
            app::Synced::Failed(e) => {
                error!(%link, %institution, permanent = e.is_permanent(), error = %e,
                "share not synced: the next poll retries after a backoff")
            }
        }
    }
}

/// Logs files held for an apply window: once per file, at info (nothing to
/// do, the window opens by itself).
fn log_window_held(held: &[app::WindowHeld], logged: &mut HashMap<PathBuf, &'static str>) {
    for w in held {
        let file = crate::inbound::claim::display_name(&w.file);
        if logged.insert(w.file.clone(), "window") != Some("window") {
            info!(%file, link = %w.link, state = "held", code = "apply-window", reason = %w.reason(),
                "file held until its apply window");
        }
    }
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
fn scan_once(
    config: &Config,
    stop: &AtomicBool,
    mut state: ScanState,
    now: OffsetDateTime,
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
                error!(error = %format!("{e:#}"), "cannot place a committed export; the next listing retries")
            }
        }
    }
    sync_unscheduled_shares(config, stop, &mut state);
    let stores = fingerprints(config);
    let resume = !state.started || state.resume_parked || stores != state.stores;
    state.started = true;
    state.resume_parked = false;
    let pass = |pick: fn(&config::Folders) -> PathBuf, what: &str, state: &mut ScanState| {
        match app::folders_to_scan(config, None, pick).and_then(|dirs| app::scan(&dirs)) {
            Ok(files) => process(config, stop, files, state, now),
            Err(e) => {
                error!(error = %format!("{e:#}"), "cannot list the {what}");
                0
            }
        }
    };
    let parked = |f: &config::Folders| f.parked.clone();
    if resume {
        pass(parked, "parked folders", &mut state);
    }
    // A file applied now (a seat plan) may be what a parked one (a
    // catalogue) was waiting for.
    if pass(|f| f.inbox.clone(), "inboxes", &mut state) > 0 {
        pass(parked, "parked folders", &mut state);
    }
    // Forget files that left the folders, so the map stays small.
    state.logged.retain(|file, _| file.exists());
    state.gaps.retain(|file, _| file.exists());
    state.stores = fingerprints(config);
    state
}

/// Syncs the SFTP shares of links without a `poll` schedule: they move
/// files at every listing (a `poll` schedule sets another pace). Sessions
/// are kept between listings; a failing share backs off.
fn sync_unscheduled_shares(config: &Config, stop: &AtomicBool, state: &mut ScanState) {
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
            Ok(report) => log_polled(&report),
            Err(e) => error!(link = %link.name, error = %format!("{e:#}"), "share not synced"),
        }
    }
}

/// Processes `files` one at a time, stopping between two when asked to,
/// except those of a kind waiting for an apply window; returns how many
/// were applied.
fn process(
    config: &Config,
    stop: &AtomicBool,
    files: Vec<PathBuf>,
    state: &mut ScanState,
    now: OffsetDateTime,
) -> usize {
    let (files, held) = app::split_by_window(config, files, now);
    log_window_held(&held, &mut state.logged);
    let mut applied = 0;
    for file in &files {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        match app::process_files(config, std::slice::from_ref(file)) {
            Ok(handled) => {
                for h in &handled {
                    if matches!(&h.processed, Ok(p) if matches!(p.outcome, Ok(Outcome::Applied { .. })))
                    {
                        applied += 1;
                    }
                    log_handled(config, h, state, now);
                }
            }
            Err(e) => error!(
                file = %crate::inbound::claim::display_name(file),
                error = %format!("{e:#}"),
                "file not processed; the next listing retries"
            ),
        }
    }
    applied
}

/// Logs one handled file: error for a rejected one (someone must act), warn
/// for parked or held, info for applied. A file held again in the same state
/// is logged at debug only; one held for a sequence gap longer than
/// `[daemon] gap_alert_minutes` is logged once more, at error level.
fn log_handled(config: &Config, h: &app::Handled, state: &mut ScanState, now: OffsetDateTime) {
    let logged = &mut state.logged;
    if !matches!(&h.processed, Ok(p) if matches!(p.outcome, Ok(Outcome::Held { code: "sequence-gap", .. })))
    {
        state.gaps.remove(&h.file);
    }
    let file = crate::inbound::claim::display_name(&h.file);
    let institution = h.institution.as_str();
    let p = match &h.processed {
        Ok(p) => p,
        Err(e) => {
            // Transient (I/O, a busy store): the file stays where it is.
            if logged.insert(h.file.clone(), "failed") == Some("failed") {
                debug!(%file, institution, state = "failed", error = %e, "file still failing");
            } else {
                error!(%file, institution, state = "failed", error = %e, code = e.code(),
                    "file not processed: it stays in place and the next listing retries");
            }
            return;
        }
    };
    match &p.outcome {
        Ok(Outcome::Applied { run, .. }) => {
            logged.remove(&h.file);
            info!(%file, institution, state = "applied", run, "file applied");
        }
        Ok(Outcome::AlreadyApplied { sequence }) => {
            logged.remove(&h.file);
            info!(%file, institution, state = "already-applied", sequence, "file already applied: archived again");
        }
        Ok(Outcome::Parked { run, missing }) => {
            let pending: Vec<String> = missing
                .iter()
                .map(|m| format!("{} {} {}", m.kind, m.manager_id, m.code))
                .collect();
            if logged.insert(p.location.clone(), "parked") == Some("parked") {
                debug!(%file, institution, state = "parked", run, "file still parked");
            } else {
                warn!(%file, institution, state = "parked", run, missing = %pending.join(", "),
                    "file parked: mappings pending (stxd mapping list --pending)");
            }
        }
        Ok(Outcome::Held { code: "taken", .. }) => {
            // Another process is finishing it: nothing for ops to do.
            debug!(%file, institution, state = "held", code = "taken", "file taken by another stxd process");
        }
        Ok(Outcome::Held {
            code: "sequence-gap",
            reason,
        }) => {
            logged.insert(h.file.clone(), "held");
            let alert_after = time::Duration::minutes(
                i64::try_from(config.daemon.gap_alert_minutes).unwrap_or(i64::MAX / 60),
            );
            match watch_gap(&mut state.gaps, &h.file, now, alert_after) {
                GapLog::First => {
                    warn!(%file, institution, state = "held", code = "sequence-gap", reason = %reason,
                        "file held in the inbox: an earlier file is missing")
                }
                GapLog::Alert { since } => {
                    let parsed = crate::exchange::FileName::parse_manifest(&file).ok();
                    let (link, kind, found) = match &parsed {
                        Some(n) => (n.link.as_str(), n.kind.as_str(), n.sequence),
                        None => ("", "", 0),
                    };
                    let expected = match &parsed {
                        Some(n) => match app::expected_sequence(config, &n.link, n.kind) {
                            Ok(n) => n.to_string(),
                            Err(e) => format!("unknown ({e:#})"),
                        },
                        None => "unknown".to_owned(),
                    };
                    let since = since
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default();
                    error!(%file, institution, %link, kind, %expected, found, %since,
                        alert_minutes = config.daemon.gap_alert_minutes, reason = %reason,
                        "file held for a sequence gap too long: ask the sender for the missing file");
                }
                GapLog::Quiet => {
                    debug!(%file, institution, state = "held", code = "sequence-gap", "file still held")
                }
            }
        }
        Ok(Outcome::Held { code, reason }) => {
            if logged.insert(h.file.clone(), "held") == Some("held") {
                debug!(%file, institution, state = "held", code, "file still held");
            } else {
                warn!(%file, institution, state = "held", code, reason = %reason, "file held in the inbox");
            }
        }
        Err(e) => {
            logged.remove(&h.file);
            error!(%file, institution, state = "rejected", error = %e, code = e.code(),
                location = %p.location.display(), "file rejected");
        }
    }
}

/// What the control folders' listings remember: the entries already
/// reported as refused, so each is logged once.
#[derive(Debug, Default)]
struct Control {
    reported: HashSet<PathBuf>,
}

/// The origin of a job queued from a trigger file.
const TRIGGER: &str = "trigger";

/// The prefix of a trigger's private name while its job is queued or
/// running: a dot-name, never taken as a new trigger.
const TAKEN: &str = ".taken.";

/// A job's taken trigger, in its link's control folder.
fn taken_name(job: Job) -> String {
    format!("{TAKEN}{}", job.name())
}

/// Lists every link's control folder (creating it, mode 0700) and takes the
/// trigger files: each names a job to run now. Taking a trigger gives it a
/// private name in the same folder, `.taken.<job>` (hard link, unlink of the
/// trigger's name, folder synced), then queues its job; the worker removes
/// the taken name once the job ran to its end ([`serve`]). So a taken
/// trigger found here whose job is neither queued nor running was left by an
/// earlier run (killed, or stopped before the job ran or finished): its job
/// is queued again. A trigger whose job is queued or running (`busy`), or
/// taken already, stays for a later listing, so a job never overlaps itself
/// and no trigger is lost. An unknown name, or a job this config cannot run
/// on the link, is logged as an error and removed. Other dot-names are
/// ignored; symlinks, folders and other non-regular entries are refused
/// (logged once) and left alone.
fn take_triggers(
    config: &Config,
    busy: &[(String, Job)],
    mut control: Control,
) -> (Control, Vec<(String, Job)>) {
    use std::os::unix::fs::DirBuilderExt;
    let mut taken = Vec::new();
    let mut seen = HashSet::new();
    for link in &config.links {
        let dir = config.control_dir(&link.name);
        if let Err(e) = std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
        {
            if control.reported.insert(dir.clone()) {
                error!(dir = %dir.display(), error = %e, "cannot create the control folder: trigger files of this link are not taken");
            }
            continue;
        }
        let mut names: Vec<String> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(e) => {
                if control.reported.insert(dir.clone()) {
                    error!(dir = %dir.display(), error = %e, "cannot list the control folder");
                }
                continue;
            }
        };
        names.sort();
        let is_busy = |job: Job| busy.iter().any(|(l, j)| *l == link.name && *j == job);
        // Only regular files are triggers: anything else is reported once.
        let mut regular = |path: &Path| {
            seen.insert(path.to_owned());
            let ok = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file());
            if !ok && control.reported.insert(path.to_owned()) {
                error!(file = %path.display(), link = %link.name,
                    "not a trigger: only regular empty files are taken (symlinks and folders are refused); remove it");
            }
            ok
        };
        // Taken before: the job did not run to its end.
        let mut pending = HashSet::new();
        for name in names.iter().filter_map(|n| n.strip_prefix(TAKEN)) {
            let path = dir.join(format!("{TAKEN}{name}"));
            if !regular(&path) {
                continue;
            }
            let Some(job) = runnable(config, link, name, &path, &dir) else {
                continue;
            };
            pending.insert(job);
            if !is_busy(job) {
                info!(link = %link.name, job = %job,
                    "taken trigger found: its job did not run to its end before the last stop; queued again");
                taken.push((link.name.clone(), job));
            }
        }
        for name in names.iter().filter(|n| !n.starts_with('.')) {
            let path = dir.join(name);
            if !regular(&path) {
                continue;
            }
            let Some(job) = runnable(config, link, name, &path, &dir) else {
                continue;
            };
            let taken_path = dir.join(taken_name(job));
            if pending.contains(&job) {
                // One file under both names: a take cut between its link and
                // its unlink. The taken name stands for it.
                if crate::transport::local::same_file(&path, &taken_path).unwrap_or(false) {
                    remove_trigger(&path, &dir);
                } else {
                    debug!(file = %path.display(), "trigger waits: the same job is taken already");
                }
                continue;
            }
            if is_busy(job) {
                debug!(file = %path.display(), "trigger waits: the same job is queued or running");
                continue;
            }
            if take_trigger(&path, &taken_path, &dir) {
                crate::failpoint::hit("trigger.taken");
                info!(link = %link.name, job = %job, "trigger taken: job queued");
                taken.push((link.name.clone(), job));
            }
        }
    }
    control.reported.retain(|p| seen.contains(p) || p.is_dir());
    (control, taken)
}

/// The job a trigger file names, if this config can run it on `link`; else
/// the file is logged as an error and removed.
fn runnable(
    config: &Config,
    link: &config::Link,
    name: &str,
    path: &Path,
    dir: &Path,
) -> Option<Job> {
    let job = match name.parse::<Job>() {
        Ok(job) => job,
        Err(_) => {
            error!(file = %path.display(), link = %link.name, valid = %Job::names(),
                "unknown trigger file removed: name it after a job");
            remove_trigger(path, dir);
            return None;
        }
    };
    if let Some(side) = job.side() {
        let code = link.side_code(side);
        if config.institution(code).is_none() {
            error!(file = %path.display(), link = %link.name, job = %job,
                "trigger removed: the job runs on the {side}'s side ({code}), which this config does not serve");
            remove_trigger(path, dir);
            return None;
        }
    }
    Some(job)
}

/// Takes a trigger durably: its taken name linked (never replacing a file),
/// its own name removed, the folder synced. `false`, logged, when it cannot
/// (the job is then not queued; the trigger stays for a later listing).
fn take_trigger(path: &Path, taken: &Path, dir: &Path) -> bool {
    use crate::transport::local::{self, Placed};
    let took = local::link_new(path, taken).and_then(|placed| match placed {
        Placed::Linked | Placed::Same => {
            std::fs::remove_file(path).and_then(|()| local::sync_dir(dir))
        }
        Placed::Other => Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("{} holds something else", taken.display()),
        )),
    });
    match took {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            error!(file = %path.display(), error = %e,
                "cannot take the trigger file: its job is not run; check the control folder's permissions");
            false
        }
    }
}

/// Removes a trigger file (or a taken one) durably (the folder is synced);
/// `false`, logged, when it cannot be removed.
fn remove_trigger(path: &Path, dir: &Path) -> bool {
    match std::fs::remove_file(path).and_then(|()| crate::transport::local::sync_dir(dir)) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            error!(file = %path.display(), error = %e,
                "cannot remove the trigger file: check the control folder's permissions");
            false
        }
    }
}

/// Whether a folder event may mean new work: anything but an open, a read
/// or a close after reading (a queue overflow comes as `Other`/`Any`).
fn worth_a_listing(kind: &notify::EventKind) -> bool {
    use notify::event::{AccessKind, AccessMode, EventKind};
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// The folder watcher: any event (or error, or overflow) on an inbox or a
/// control folder only asks for a listing.
struct Watcher {
    inner: notify::RecommendedWatcher,
    watched: Vec<PathBuf>,
}

impl Watcher {
    fn new(kick: mpsc::Sender<()>) -> anyhow::Result<Watcher> {
        let inner = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            match &event {
                Err(e) => warn!(error = %e, "folder watch error: listing the inboxes"),
                // Opening or reading a folder or file (our own listings
                // do) changes nothing: only a write, a new name or a
                // removal is worth a listing, else the daemon would wake
                // itself up forever.
                Ok(ev) if !worth_a_listing(&ev.kind) => return,
                Ok(_) => {}
            }
            // A full channel already holds a request: nothing is lost.
            let _ = kick.try_send(());
        })
        .context("cannot start the folder watcher")?;
        Ok(Watcher {
            inner,
            watched: Vec::new(),
        })
    }

    /// Watches every inbox and control folder of `config`
    /// (non-recursively, creating them when missing) and stops watching the
    /// ones it no longer names.
    fn watch(&mut self, config: &Config) -> anyhow::Result<()> {
        use notify::{RecursiveMode, Watcher as _};
        use std::os::unix::fs::DirBuilderExt;
        let mut wanted = app::folders_to_scan(config, None, |f| f.inbox.clone())?;
        for link in &config.links {
            let dir = config.control_dir(&link.name);
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .with_context(|| format!("cannot create the control folder {}", dir.display()))?;
            wanted.push(dir);
        }
        for old in std::mem::take(&mut self.watched) {
            if !wanted.contains(&old) {
                let _ = self.inner.unwatch(&old);
            } else {
                self.watched.push(old);
            }
        }
        for dir in wanted {
            if self.watched.contains(&dir) {
                continue;
            }
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create the inbox {}", dir.display()))?;
            self.inner
                .watch(&dir, RecursiveMode::NonRecursive)
                .with_context(|| format!("cannot watch {}", dir.display()))?;
            debug!(dir = %dir.display(), "watching");
            self.watched.push(dir);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Kind;

    #[test]
    fn a_second_lock_on_the_same_state_dir_is_refused_with_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let first = lock_state_dir(&state).unwrap();
        let pid = std::fs::read_to_string(first.path()).unwrap();
        assert_eq!(pid.trim(), std::process::id().to_string());
        let e = lock_state_dir(&state).unwrap_err().to_string();
        assert!(e.contains("another stxd is running on"), "{e}");
        assert!(e.contains(&format!("(pid {})", std::process::id())), "{e}");
        let seen = crate::status::daemon_state(&state);
        assert!(seen.running);
        assert_eq!(seen.pid, Some(std::process::id()));
        drop(first);
        assert!(!crate::status::daemon_state(&state).running);
        lock_state_dir(&state).expect("free again once the holder is gone");
    }

    fn temp_config(dir: &Path) -> Config {
        let text = format!(
            r#"
state_dir = "{d}/state"
[daemon]
scan_seconds = 1
[[institution]]
code = "TOURISM"
role = "distributor"
[[link]]
name = "opera-tourism"
manager = "OPERA"
distributor = "TOURISM"
login = "TOURISM_OPE@TOURISM"
secret_file = "{d}/s.key"
transport = {{ kind = "local", dir = "{d}/x" }}
"#,
            d = dir.display()
        );
        config::parse(&text, "t").unwrap()
    }

    #[tokio::test]
    async fn an_injected_shutdown_stops_the_daemon_and_frees_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let config = temp_config(dir.path());
        let (tx, rx) = mpsc::unbounded_channel();
        tx.send(Intent::Reload).unwrap();
        tx.send(Intent::Shutdown).unwrap();
        let exit = run(config.clone(), None, rx).await.unwrap();
        assert_eq!(exit, Exit::Stopped);
        assert_eq!(exit.code(), 0);
        assert!(
            dir.path().join("x/to-distributor").is_dir(),
            "inbox created"
        );
        assert!(
            dir.path().join("state/TOURISM.sqlite").is_file(),
            "store created"
        );
        lock_state_dir(&config.state_dir).expect("lock released");
    }

    /// An item that runs until the test releases it. A task rather than a
    /// blocking thread: tokio does not advance paused time while a
    /// `spawn_blocking` task runs.
    fn long_item() -> (
        tokio::task::JoinHandle<()>,
        tokio::sync::oneshot::Sender<()>,
    ) {
        let (release, wait) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let _ = wait.await;
        });
        (handle, release)
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_grace_abandons_a_long_item_when_it_elapses() {
        let (handle, release) = long_item();
        let (_tx, mut rx) = mpsc::unbounded_channel();
        let finish = finish_in_hand(handle, Duration::from_secs(30), &mut rx).await;
        assert_eq!(finish, Finish::GraceElapsed);
        let _ = release.send(());
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_grace_waits_for_an_item_that_finishes_and_a_quit_ends_it() {
        let (handle, release) = long_item();
        let _ = release.send(());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let finish = finish_in_hand(handle, Duration::from_secs(3600), &mut rx).await;
        assert_eq!(finish, Finish::Done);

        let (handle, release) = long_item();
        tx.send(Intent::Reload).unwrap();
        tx.send(Intent::Quit).unwrap();
        let finish = finish_in_hand(handle, Duration::from_secs(3600), &mut rx).await;
        assert_eq!(finish, Finish::Quit);
        let _ = release.send(());
    }

    fn control_names(config: &Config) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(config.control_dir("opera-tourism"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn taken_triggers_left_by_a_stop_or_a_kill_are_queued_again() {
        let dir = tempfile::tempdir().unwrap();
        let config = temp_config(dir.path());
        let control = config.control_dir("opera-tourism");
        std::fs::create_dir_all(&control).unwrap();
        // Two jobs taken by an earlier run; a third trigger whose take was
        // cut between its link and its unlink (one file, two names); a new
        // trigger of a job already taken waits.
        for name in [".taken.poll", ".taken.apply-seatplan", "poll"] {
            std::fs::write(control.join(name), "").unwrap();
        }
        std::fs::write(control.join("apply-catalogue"), "").unwrap();
        std::fs::hard_link(
            control.join("apply-catalogue"),
            control.join(".taken.apply-catalogue"),
        )
        .unwrap();
        let (ctl, mut taken) = take_triggers(&config, &[], Control::default());
        taken.sort();
        let link = "opera-tourism".to_owned();
        assert_eq!(
            taken,
            vec![
                (link.clone(), Job::Poll),
                (link.clone(), Job::Apply(Kind::Seatplan)),
                (link.clone(), Job::Apply(Kind::Catalogue)),
            ]
        );
        assert_eq!(
            control_names(&config),
            [
                ".taken.apply-catalogue",
                ".taken.apply-seatplan",
                ".taken.poll",
                "poll"
            ],
            "taken names stay until their job ran; the cut take is finished"
        );
        // While queued or running, they are not queued twice.
        let (_, again) = take_triggers(&config, &taken, ctl);
        assert!(again.is_empty(), "{again:?}");
    }

    #[test]
    fn a_gap_is_warned_once_then_alerted_once_past_the_delay() {
        use time::macros::datetime;
        let mut gaps = HashMap::new();
        let file = Path::new("in/opera-tourism.CATALOGUE.00000003.stx");
        let t0 = datetime!(2026-11-28 10:00:00 UTC);
        let after = time::Duration::minutes(30);
        assert_eq!(watch_gap(&mut gaps, file, t0, after), GapLog::First);
        let t = t0 + time::Duration::minutes(29);
        assert_eq!(watch_gap(&mut gaps, file, t, after), GapLog::Quiet);
        let t = t0 + time::Duration::minutes(30);
        assert_eq!(
            watch_gap(&mut gaps, file, t, after),
            GapLog::Alert { since: t0 }
        );
        let t = t0 + time::Duration::hours(5);
        assert_eq!(watch_gap(&mut gaps, file, t, after), GapLog::Quiet);
        // Another file has its own clock.
        let other = Path::new("in/opera-tourism.CATALOGUE.00000004.stx");
        assert_eq!(watch_gap(&mut gaps, other, t, after), GapLog::First);
    }

    #[test]
    fn trigger_files_are_taken_once_and_bad_ones_refused() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let config = temp_config(dir.path());
        let control = config.control_dir("opera-tourism");
        std::fs::create_dir_all(&control).unwrap();
        for name in [
            "poll",
            "apply-catalogue",
            "export-catalogue",
            "reboot",
            ".hidden",
        ] {
            std::fs::write(control.join(name), "").unwrap();
        }
        std::fs::create_dir(control.join("export-sales")).unwrap();
        symlink("/etc/passwd", control.join("apply-seatplan")).unwrap();
        // apply-catalogue is already queued: its trigger waits.
        let busy = vec![("opera-tourism".to_owned(), Job::Apply(Kind::Catalogue))];
        let (ctl, mut taken) = take_triggers(&config, &busy, Control::default());
        taken.sort();
        assert_eq!(
            taken,
            vec![("opera-tourism".to_owned(), Job::Poll)],
            "export-catalogue is the manager's job, not served here"
        );
        let mut left: Vec<String> = std::fs::read_dir(&control)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".hidden",
                ".taken.poll",
                "apply-catalogue",
                "apply-seatplan",
                "export-sales"
            ],
            "poll taken, reboot and export-catalogue removed, the rest left"
        );
        assert_eq!(ctl.reported.len(), 2, "symlink and folder reported once");
        // Poll is queued now: its taken trigger is not queued twice.
        let busy = vec![("opera-tourism".to_owned(), Job::Poll)];
        let (_, taken) = take_triggers(&config, &busy, ctl);
        assert_eq!(
            taken,
            vec![("opera-tourism".to_owned(), Job::Apply(Kind::Catalogue))]
        );
        assert!(
            std::fs::metadata("/etc/passwd").is_ok(),
            "symlink target untouched"
        );
    }

    #[tokio::test]
    async fn a_quit_intent_returns_at_once_with_130() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tx.send(Intent::Quit).unwrap();
        let exit = run(temp_config(dir.path()), None, rx).await.unwrap();
        assert_eq!(exit.code(), 130);
    }
}
