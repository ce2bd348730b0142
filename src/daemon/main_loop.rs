//! The [`Daemon`]: everything its loop keeps between two steps, and one
//! method per step. Each turn of the loop queues the schedules that fired
//! and the trigger files found, hands the next item to the worker when it
//! is free, then waits for one [`Event`] (an intent, the periodic tick, a
//! folder event, the watchdog, the item in hand finished…) and acts on it.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinHandle};
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::control::{self, Control};
use super::scan::ScanState;
use super::watch::{DEBOUNCE, Watcher};
use super::work::{self, Origin, Served, Work};
use super::{DaemonError, Exit, Intent};
use crate::alert::Alerter;
use crate::app;
use crate::config::{self, Config};
use crate::schedule::{Job, Schedules};
use crate::state_lock::StateLock;
use crate::systemd::Notifier;

/// The item in the worker's hands.
struct InHand {
    work: Work,
    handle: JoinHandle<Served>,
}

/// A job that found its store busy: queued again at each periodic listing
/// until it runs without meeting the busy store.
struct Waiting {
    work: Work,
    since: Instant,
    /// `job-failed` raised for it ([`work::BUSY_ALERT`]).
    alerted: bool,
}

/// What [`note_end`] found worth saying.
#[derive(Debug, PartialEq, Eq)]
enum Noted {
    Nothing,
    /// The job has found its store busy for this long, past
    /// [`work::BUSY_ALERT`] (said once per wait).
    StillBusy(Duration),
    /// The job ran after waiting this long for its store.
    RanAfter(Duration),
}

/// Notes the end of a job in `waiting` at `now`: one that found its store
/// busy is kept (from its first such end), one that ran is forgotten.
fn note_end(waiting: &mut Vec<Waiting>, work: &Work, busy: bool, now: Instant) -> Noted {
    let Work::Job { link, job, .. } = work else {
        return Noted::Nothing;
    };
    let at = waiting.iter().position(|w| w.work.is_job(link, *job));
    match (busy, at) {
        (true, None) => {
            waiting.push(Waiting {
                work: work.clone(),
                since: now,
                alerted: false,
            });
            Noted::Nothing
        }
        (true, Some(i)) => {
            let w = &mut waiting[i];
            let waited = now.saturating_duration_since(w.since);
            if w.alerted || waited < work::BUSY_ALERT {
                return Noted::Nothing;
            }
            w.alerted = true;
            Noted::StillBusy(waited)
        }
        (false, Some(i)) => {
            let w = waiting.remove(i);
            Noted::RanAfter(now.saturating_duration_since(w.since))
        }
        (false, None) => Noted::Nothing,
    }
}

/// What the next listing should do, asked for since the last one.
#[derive(Debug, Clone, Copy)]
struct Wanted {
    /// A listing of the inboxes.
    scan: bool,
    /// The parked folders retried too (the config changed).
    resume: bool,
    /// The control folders listed for trigger files.
    triggers: bool,
}

/// What woke the loop.
enum Event {
    Intent(Option<Intent>),
    /// The periodic listing is due (`[daemon] scan_seconds`).
    Tick,
    /// systemd expects a keep-alive.
    Watchdog,
    /// A watched folder changed: a listing soon, once events settle.
    FolderChanged,
    /// Folder events settled.
    Debounced,
    /// A schedule may fire now (or a minute passed).
    Wake,
    /// The item in hand finished.
    Done(Box<Result<Served, JoinError>>),
    /// A console write, to queue.
    Console(super::Task),
}

/// The running daemon: what its loop keeps from one step to the next.
pub(super) struct Daemon {
    config: Arc<Config>,
    config_path: config::Located,
    intents: mpsc::UnboundedReceiver<Intent>,
    /// Folder events, each only asking for a listing.
    kick: mpsc::Receiver<()>,
    watcher: Watcher,
    schedules: Schedules,
    /// The periodic listing.
    tick: Interval,
    /// systemd: READY=1 once the first listing (recovery) is done;
    /// STOPPING=1; WATCHDOG=1 from this loop.
    sd: Notifier,
    sd_ready: bool,
    /// [`Self::sd_ready`], shared with a sidecar (the console's `/readyz`).
    ready: Arc<AtomicBool>,
    started: OffsetDateTime,
    sd_watchdog: Option<Interval>,
    /// Set on a stop: the worker stops between two files.
    stop: Arc<AtomicBool>,
    /// The listings' state, in the worker's hands while an item runs.
    state: ScanState,
    control: Control,
    queue: VecDeque<Work>,
    /// The jobs that found their store busy, to run again.
    waiting: Vec<Waiting>,
    /// The console writes queued ([`Work::Console`]), by number.
    tasks: HashMap<u64, super::Task>,
    task_numbers: u64,
    /// Where the console's writes arrive, and what hands them in.
    task_rx: mpsc::UnboundedReceiver<super::Task>,
    task_tx: mpsc::UnboundedSender<super::Task>,
    in_hand: Option<InHand>,
    wanted: Wanted,
    last_was_job: bool,
    /// When gathered folder events ask for their listing.
    debounce: Option<Instant>,
    /// Sends the incidents the work raises, from its own threads; built
    /// from `[[alert]]` at start, rebuilt when a reload changes them.
    alerter: Alerter,
    /// Held until the daemon ends.
    _lock: StateLock,
}

/// How long a stopping daemon gives its last alerts.
const ALERT_FLUSH: Duration = Duration::from_secs(5);

/// How often the daemon asks systemd for more start-up time while it opens
/// (and migrates) its stores; each request is for three times this.
const START_EXTENSION: Duration = Duration::from_secs(30);

impl Daemon {
    /// Locks the state directory, opens (and on first start bootstraps)
    /// every store, checks the links' secrets and watches the folders.
    pub(super) fn start(
        config: Config,
        config_path: config::Located,
        intents: mpsc::UnboundedReceiver<Intent>,
    ) -> Result<Daemon, DaemonError> {
        // A destination that cannot start is a config problem: refused
        // before anything is locked or opened.
        let alerter = Alerter::start(&config.alerts).map_err(DaemonError::Alert)?;
        let lock = crate::state_lock::lock(&config.state_dir)?;
        // A daemon killed in the middle of a long file left its record of
        // it (status ignores it: another pid); it goes now.
        let _ = crate::reading::clear(&config.state_dir);
        let sd = Notifier::from_env();
        let sd_watchdog = crate::systemd::watchdog_timer(&sd);
        sd.status("starting: opening the stores (the first start of a new version may migrate them: minutes on a large store)");
        // What `stxd init` creates, created here on first start too.
        // Opening a store brings its schema to this version's, which
        // rewrites tables: minutes for millions of sales lines, beyond
        // `TimeoutStartSec=` (systemd would kill the start and try again,
        // rolling the migration back each time).
        let (created, unopened) = sd.extending(START_EXTENSION, || {
            let created = app::init(&config, false)?;
            Ok::<_, app::AppError>((created, app::open_every_store(&config)))
        })?;
        for created in created {
            info!(created = %created, "created at start");
        }
        for e in unopened {
            error!(error = %app::chain(&e),
                "a store cannot be opened at start: its files wait until it opens, tried again at each listing");
        }
        sd.status("starting: listing the inboxes");
        for link in &config.links {
            // Generated here on first start when the config allows it.
            if let Err(e) = app::link_secret(link) {
                error!(link = %link.name, error = %e, "the link's files cannot be verified or signed until its secret is fixed");
            }
        }
        let config = Arc::new(config);
        let (kick_tx, kick) = mpsc::channel::<()>(1);
        let (task_tx, task_rx) = mpsc::unbounded_channel();
        let mut watcher = Watcher::new(kick_tx)?;
        watcher.watch(&config)?;
        let schedules = Schedules::new(&config.schedules, OffsetDateTime::now_utc());
        // Started: the stores are open and the folders watched. "ready" is
        // logged once the first listing has recovered what a previous run left.
        info!(
            config = %config_path,
            state_dir = %config.state_dir.display(),
            lock = %lock.path().display(),
            institutions = config.institutions.len(),
            links = config.links.len(),
            schedules = config.schedules.len(),
            scan_seconds = config.daemon.scan_seconds,
            pid = std::process::id(),
            "started: stores open, folders watched; first listing running"
        );
        Ok(Daemon {
            tick: new_interval(config.daemon.scan_seconds),
            config,
            config_path,
            intents,
            kick,
            watcher,
            schedules,
            sd,
            sd_ready: false,
            ready: Arc::new(AtomicBool::new(false)),
            started: OffsetDateTime::now_utc(),
            sd_watchdog,
            stop: Arc::new(AtomicBool::new(false)),
            state: ScanState::default(),
            control: Control::default(),
            queue: VecDeque::new(),
            waiting: Vec::new(),
            tasks: HashMap::new(),
            task_numbers: 0,
            task_rx,
            task_tx,
            in_hand: None,
            wanted: Wanted {
                scan: true,
                resume: false,
                triggers: true,
            },
            last_was_job: false,
            debounce: None,
            alerter,
            _lock: lock,
        })
    }

    /// What a sidecar is given.
    pub(super) fn shared(&self) -> super::Shared {
        super::Shared {
            config: Arc::clone(&self.config),
            ready: Arc::clone(&self.ready),
            started: self.started,
            worker: super::Worker {
                tasks: self.task_tx.clone(),
            },
        }
    }

    /// Serves the work queue until a stop; how the daemon ended. The state
    /// lock is released when this returns.
    pub(super) async fn serve(mut self) -> Exit {
        loop {
            self.queue_due();
            if std::mem::take(&mut self.wanted.triggers) {
                self.take_triggers().await;
            }
            if self.in_hand.is_none() {
                self.next_work();
            }
            let event = self.next_event().await;
            if let Some(exit) = self.on_event(event).await {
                if exit == Exit::Stopped {
                    self.flush_alerts().await;
                }
                return exit;
            }
        }
    }

    /// Queues the jobs whose schedule fired, unless the same job is queued,
    /// running or waiting for its store (then the fire is skipped, not
    /// replayed).
    fn queue_due(&mut self) {
        let now = OffsetDateTime::now_utc();
        let (in_hand, queue, waiting) = (&self.in_hand, &self.queue, &self.waiting);
        let fired = self.schedules.due(now, |link, job| {
            in_hand.as_ref().is_some_and(|h| h.work.is_job(link, job))
                || queue.iter().any(|w| w.is_job(link, job))
                || waiting.iter().any(|w| w.work.is_job(link, job))
        });
        for skipped in fired.skipped {
            info!(link = %skipped.link, job = %skipped.job, "scheduled run skipped: the same job is still queued or running");
        }
        for due in fired.due {
            debug!(link = %due.link, job = %due.job, "schedule fired");
            self.queue.push_back(Work::Job {
                link: due.link,
                job: due.job,
                origin: Origin::Schedule,
            });
        }
    }

    /// Takes the trigger files of every control folder (on a blocking
    /// thread) and queues their jobs.
    async fn take_triggers(&mut self) {
        let busy: Vec<(String, Job)> = self
            .in_hand
            .iter()
            .map(|h| &h.work)
            .chain(self.queue.iter())
            .chain(self.waiting.iter().map(|w| &w.work))
            .filter_map(|w| match w {
                Work::Job { link, job, .. } => Some((link.clone(), *job)),
                Work::Scan | Work::Console(_) => None,
            })
            .collect();
        let (cfg, ctl) = (self.config.clone(), std::mem::take(&mut self.control));
        match tokio::task::spawn_blocking(move || control::take_triggers(&cfg, &busy, ctl)).await {
            Ok((ctl, taken)) => {
                self.control = ctl;
                self.queue
                    .extend(taken.into_iter().map(|(link, job)| Work::Job {
                        link,
                        job,
                        origin: Origin::Trigger,
                    }));
            }
            Err(e) => {
                error!(error = %e, "listing the control folders failed; the next listing retries")
            }
        }
    }

    /// Hands the next item to the worker. Recovery (the first listing)
    /// comes before any job, and a listing wanted takes its turn after each
    /// job, so a busy schedule never starves the inboxes.
    fn next_work(&mut self) {
        let scan_first = self.wanted.scan && (!self.sd_ready || self.last_was_job);
        let next = if scan_first {
            None
        } else {
            self.queue.pop_front()
        }
        .or_else(|| std::mem::take(&mut self.wanted.scan).then_some(Work::Scan));
        let Some(work) = next else {
            return;
        };
        self.last_was_job = !work.is_scan();
        self.state.resume_parked |= std::mem::take(&mut self.wanted.resume);
        let (config, stop, prior) = (
            self.config.clone(),
            self.stop.clone(),
            std::mem::take(&mut self.state),
        );
        let item = work.clone();
        let alerter = self.alerter.clone();
        let task = match &work {
            Work::Console(n) => self.tasks.remove(n),
            _ => None,
        };
        let handle = tokio::task::spawn_blocking(move || match task {
            Some(task) => {
                task();
                (prior, None)
            }
            None => work::serve(
                &config,
                &stop,
                prior,
                &item,
                OffsetDateTime::now_utc(),
                &alerter,
            ),
        });
        self.in_hand = Some(InHand { work, handle });
    }

    /// How long until a schedule may fire: at most a minute, so a change of
    /// the wall clock is noticed; `None` without schedules.
    fn wake(&self) -> Option<Duration> {
        self.schedules.next_wake().map(|at| {
            let left = at - OffsetDateTime::now_utc();
            Duration::try_from(left)
                .unwrap_or(Duration::ZERO)
                .min(Duration::from_secs(60))
        })
    }

    /// Waits for what happens next.
    async fn next_event(&mut self) -> Event {
        let wake = self.wake();
        tokio::select! {
            intent = self.intents.recv() => Event::Intent(intent),
            _ = self.tick.tick() => Event::Tick,
            _ = crate::systemd::next_tick(&mut self.sd_watchdog) => Event::Watchdog,
            Some(()) = self.kick.recv() => Event::FolderChanged,
            _ = sleep_until(self.debounce), if self.debounce.is_some() => Event::Debounced,
            _ = tokio::time::sleep(wake.unwrap_or(Duration::ZERO)), if wake.is_some() => Event::Wake,
            done = wait(&mut self.in_hand), if self.in_hand.is_some() => Event::Done(Box::new(done)),
            Some(task) = self.task_rx.recv() => Event::Console(task),
        }
    }

    /// Acts on an event; `Some` when the daemon ends.
    async fn on_event(&mut self, event: Event) -> Option<Exit> {
        match event {
            Event::Intent(Some(Intent::Reload)) => self.on_reload(),
            Event::Intent(Some(Intent::Quit)) => return Some(self.on_quit()),
            Event::Intent(Some(Intent::Shutdown) | None) => return Some(self.on_shutdown().await),
            Event::Tick => {
                self.want_listing();
                self.queue_waiting();
            }
            Event::Debounced => {
                self.debounce = None;
                self.want_listing();
            }
            Event::Watchdog => self.sd.watchdog(),
            Event::FolderChanged => {
                self.debounce
                    .get_or_insert_with(|| Instant::now() + DEBOUNCE);
            }
            Event::Wake => {}
            Event::Done(done) => self.on_done(*done),
            Event::Console(task) => {
                self.task_numbers += 1;
                self.tasks.insert(self.task_numbers, task);
                self.queue.push_back(Work::Console(self.task_numbers));
            }
        }
        None
    }

    /// Reads the config file again; on success, applies it (listing pace,
    /// schedules, watched folders) and asks for a full listing.
    fn on_reload(&mut self) {
        if self.sd_ready {
            self.sd.reloading();
        }
        let new = reload(&self.config, &self.config_path.path)
            .and_then(|new| self.reload_alerts(&new).then_some(new));
        if let Some(new) = new {
            if new.daemon.scan_seconds != self.config.daemon.scan_seconds {
                self.tick = new_interval(new.daemon.scan_seconds);
            }
            if new.schedules != self.config.schedules {
                self.schedules = Schedules::new(&new.schedules, OffsetDateTime::now_utc());
            }
            self.config = Arc::new(new);
            if let Err(e) = self.watcher.watch(&self.config) {
                error!(error = %app::chain(&e), "cannot watch the folders of the new config; the periodic listing still runs");
            }
            // The scan state may be in the worker now: the next item takes
            // this flag.
            self.wanted = Wanted {
                scan: true,
                resume: true,
                triggers: true,
            };
        }
        if self.sd_ready {
            // Not before recovery.
            self.sd.ready(&crate::systemd::summary(&self.config));
        }
    }

    /// Starts the alerter of `new` when its `[[alert]]` tables differ from
    /// the running ones; whether the reload may go on (a destination that
    /// cannot start keeps the running config and alerter). The incidents
    /// still open are raised again to the new destinations by the next
    /// listings.
    fn reload_alerts(&mut self, new: &Config) -> bool {
        if new.alerts == self.config.alerts {
            return true;
        }
        match Alerter::start(&new.alerts) {
            Ok(alerter) => {
                info!(
                    alerts = new.alerts.len(),
                    "alerts restarted with the new [[alert]] tables"
                );
                // The old one's threads end once its queues are empty.
                self.alerter = alerter;
                true
            }
            Err(errors) => {
                let problems: Vec<String> = errors.iter().map(ToString::to_string).collect();
                error!(problems = %problems.join("; "),
                    "config not reloaded: an [[alert]] cannot start; the running config and alerts are kept");
                false
            }
        }
    }

    /// Gives the alerts still queued at most [`ALERT_FLUSH`] to go out.
    async fn flush_alerts(&self) {
        let alerter = self.alerter.clone();
        let flushed = tokio::task::spawn_blocking(move || alerter.flush(ALERT_FLUSH))
            .await
            .unwrap_or(false);
        if !flushed {
            warn!(
                seconds = ALERT_FLUSH.as_secs(),
                "alerts still queued at the stop were not all delivered"
            );
        }
    }

    /// A quit: ends at once, the item in hand (if any) rolled back when the
    /// process ends.
    fn on_quit(&mut self) -> Exit {
        self.sd.stopping("quitting now");
        warn!(work_in_hand = %self.in_hand_label(),
            "quitting now: the file in hand, if any, is rolled back");
        control::left_taken(
            self.in_hand
                .iter()
                .map(|h| &h.work)
                .chain(self.queue.iter())
                .chain(self.waiting_only()),
        );
        Exit::Quit
    }

    /// A shutdown: no new work; the item in hand gets the shutdown grace
    /// (a quit during it ends at once).
    async fn on_shutdown(&mut self) -> Exit {
        self.sd.stopping("stopping: finishing the work in hand");
        self.stop.store(true, Ordering::SeqCst);
        let abandoned: Vec<String> = self
            .queue
            .iter()
            .chain(self.waiting_only())
            .map(Work::label)
            .collect();
        // "none" rather than an empty field an operator cannot read.
        info!(
            work_in_hand = %self.in_hand_label(),
            not_started = %if abandoned.is_empty() { "none".to_owned() } else { abandoned.join(", ") },
            "stopping: no new work is taken"
        );
        control::left_taken(self.queue.iter().chain(self.waiting_only()));
        if let Some(hand) = self.in_hand.take() {
            let grace_seconds = self.config.daemon.shutdown_grace_seconds;
            let grace = Duration::from_secs(grace_seconds);
            match finish_in_hand(hand.handle, grace, &mut self.intents).await {
                Finish::Done => {}
                Finish::GraceElapsed => {
                    warn!(
                        work = %hand.work.label(),
                        grace_seconds,
                        "shutdown grace elapsed: the work in hand is abandoned; its uncommitted transaction is rolled back when the process ends"
                    );
                    control::left_taken(std::iter::once(&hand.work));
                }
                Finish::Quit => {
                    warn!(work = %hand.work.label(), "second stop signal: quitting now; the file in hand is rolled back");
                    control::left_taken(std::iter::once(&hand.work));
                    return Exit::Quit;
                }
            }
        }
        info!("stopped");
        Exit::Stopped
    }

    /// The item in hand finished: its state is the listings' again; the
    /// first listing done makes the daemon ready; a job asks for a listing.
    fn on_done(&mut self, done: Result<Served, JoinError>) {
        let work = self.in_hand.take().map(|h| h.work);
        match done {
            Ok((next, busy)) => {
                self.state = next;
                if let Some(job) = &work {
                    self.job_ended(job, busy);
                }
            }
            Err(e) => {
                error!(work = %work.as_ref().map(Work::label).unwrap_or_default(), error = %e,
                "the work item failed; the next listing retries")
            }
        }
        if matches!(work, Some(Work::Scan)) && !std::mem::replace(&mut self.sd_ready, true) {
            self.ready.store(true, Ordering::Release);
            info!(
                systemd = self.sd.enabled(),
                "first listing done: recovered, ready"
            );
            self.sd.ready(&crate::systemd::summary(&self.config));
        }
        // A job may have emptied or filled folders.
        if !matches!(work, Some(Work::Scan) | None) {
            self.wanted.scan = true;
        }
    }

    /// Keeps a job that found its store busy (`busy`: why) to run again,
    /// saying so at warn once per wait and at debug at each try (raising
    /// `job-failed` once it has waited [`work::BUSY_ALERT`]); forgets one
    /// that ran.
    fn job_ended(&mut self, work: &Work, busy: Option<String>) {
        let Work::Job { link, job, .. } = work else {
            return;
        };
        if let Some(reason) = &busy {
            let words = "job found its store busy (another process writing it): it runs again at each periodic listing until the store is free";
            if self.waiting.iter().any(|w| w.work.is_job(link, *job)) {
                debug!(link = %link, job = %job, reason = %reason, "{words}");
            } else {
                warn!(link = %link, job = %job, reason = %reason, "{words}");
            }
        }
        match note_end(&mut self.waiting, work, busy.is_some(), Instant::now()) {
            Noted::Nothing => {}
            Noted::StillBusy(waited) => {
                self.alerter.raise(work::busy_incident(link, *job, waited));
            }
            Noted::RanAfter(waited) => {
                info!(link = %link, job = %job, waited_seconds = waited.as_secs(),
                    "job ran once its store was free");
            }
        }
    }

    /// Queues again the jobs waiting for their store, unless queued or in
    /// hand already.
    fn queue_waiting(&mut self) {
        for w in &self.waiting {
            let Work::Job { link, job, .. } = &w.work else {
                continue;
            };
            let queued = self.queue.iter().any(|q| q.is_job(link, *job))
                || self
                    .in_hand
                    .as_ref()
                    .is_some_and(|h| h.work.is_job(link, *job));
            if !queued {
                self.queue.push_back(w.work.clone());
            }
        }
    }

    /// The waiting jobs not queued again yet (for the words of a stop).
    fn waiting_only(&self) -> impl Iterator<Item = &Work> {
        self.waiting.iter().map(|w| &w.work).filter(|w| {
            !self.queue.contains(w) && !self.in_hand.as_ref().is_some_and(|h| h.work == **w)
        })
    }

    /// A listing of the inboxes and the control folders, at the next turn.
    fn want_listing(&mut self) {
        self.wanted.scan = true;
        self.wanted.triggers = true;
    }

    /// The item in hand in words ("none" when idle).
    fn in_hand_label(&self) -> String {
        self.in_hand
            .as_ref()
            .map_or_else(|| "none".to_owned(), |h| h.work.label())
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
    mut handle: JoinHandle<T>,
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

fn new_interval(secs: u64) -> Interval {
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

async fn wait(in_hand: &mut Option<InHand>) -> Result<Served, JoinError> {
    match in_hand {
        Some(hand) => (&mut hand.handle).await,
        None => std::future::pending().await,
    }
}

/// Reads the config file again. `None` (with the reason logged) keeps the
/// running config.
fn reload(running: &Config, path: &Path) -> Option<Config> {
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

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_job_that_finds_its_store_busy_waits_is_alerted_once_past_the_limit_and_forgotten_once_it_ran()
     {
        let job = |job| Work::Job {
            link: "opera-tourism".to_owned(),
            job,
            origin: Origin::Schedule,
        };
        let export = job(Job::Export(crate::format::Kind::Seatplan));
        let other = job(Job::Reconcile);
        let start = Instant::now();
        let at = |secs| start + Duration::from_secs(secs);
        let mut waiting = Vec::new();
        assert_eq!(note_end(&mut waiting, &export, true, at(0)), Noted::Nothing);
        assert_eq!(note_end(&mut waiting, &other, false, at(5)), Noted::Nothing);
        assert_eq!(waiting.len(), 1, "the busy job waits, the other ran");
        assert_eq!(
            note_end(&mut waiting, &export, true, at(599)),
            Noted::Nothing
        );
        assert_eq!(
            note_end(&mut waiting, &export, true, at(600)),
            Noted::StillBusy(Duration::from_secs(600))
        );
        assert_eq!(
            note_end(&mut waiting, &export, true, at(605)),
            Noted::Nothing,
            "once"
        );
        assert_eq!(
            note_end(&mut waiting, &export, false, at(610)),
            Noted::RanAfter(Duration::from_secs(610))
        );
        assert!(waiting.is_empty());
        // A new wait starts from its own first busy end.
        assert_eq!(
            note_end(&mut waiting, &export, true, at(700)),
            Noted::Nothing
        );
        assert_eq!(
            note_end(&mut waiting, &export, true, at(1299)),
            Noted::Nothing
        );
        assert_eq!(
            note_end(&mut waiting, &export, false, at(1300)),
            Noted::RanAfter(Duration::from_secs(600))
        );
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
}
