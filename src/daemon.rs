//! `stxd run`: the daemon over local drop folders (first slice of issue 5).
//!
//! Takes a validated [`Config`] and the intents of the process's signals;
//! runs the one-shot pipeline ([`app::scan`], [`app::process_files`],
//! [`app::resume`]) over every inbox of the config: at start, every
//! `[daemon] scan_seconds`, and soon after a folder event. Events only
//! trigger a listing: the listing decides what is complete. The blocking
//! work (SQLite, fsync) runs on `spawn_blocking`, one scan at a time; a stop
//! intent is honoured between two files, so the file in hand is finished
//! (each file is applied in one transaction). One daemon per state
//! directory: an exclusive `flock` on `<state_dir>/stxd.lock`.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, error, info, warn};

use crate::app;
use crate::config::{self, Config};
use crate::inbound::apply::Outcome;

/// What the process's signals ask of the daemon (STYLE.md §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Stop taking new files, finish the one in hand, exit.
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
    // SAFETY: flock on a file descriptor this function owns and keeps open.
    let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
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

/// The daemon: locks the state directory, opens (and on first start
/// bootstraps) every store, then scans until a [`Intent::Shutdown`] arrives
/// or the intent channel closes. Returns once the scan in hand is finished,
/// or at once on [`Intent::Quit`].
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
    watcher.watch_inboxes(&config)?;
    info!(
        state_dir = %config.state_dir.display(),
        lock = %lock.path().display(),
        institutions = config.institutions.len(),
        links = config.links.len(),
        scan_seconds = config.daemon.scan_seconds,
        pid = std::process::id(),
        "ready"
    );

    let mut tick = new_interval(config.daemon.scan_seconds);
    let stop = Arc::new(AtomicBool::new(false));
    let mut state = ScanState::default();
    let mut running: Option<tokio::task::JoinHandle<ScanState>> = None;
    let mut pending = true;
    let mut debounce: Option<Instant> = None;
    loop {
        if pending && running.is_none() {
            pending = false;
            let (config, stop, prior) = (config.clone(), stop.clone(), std::mem::take(&mut state));
            running = Some(tokio::task::spawn_blocking(move || {
                scan_once(&config, &stop, prior)
            }));
        }
        tokio::select! {
            intent = intents.recv() => match intent {
                Some(Intent::Reload) => {
                    if sd_ready { sd.reloading(); }
                    if let Some(new) = reload(&config, config_path.as_deref()) {
                        if new.daemon.scan_seconds != config.daemon.scan_seconds {
                            tick = new_interval(new.daemon.scan_seconds);
                        }
                        config = Arc::new(new);
                        if let Err(e) = watcher.watch_inboxes(&config) {
                            error!(error = %format!("{e:#}"), "cannot watch the inboxes of the new config; the periodic listing still runs");
                        }
                        state.resume_parked = true;
                        pending = true;
                    }
                    if sd_ready { sd.ready(&crate::systemd::summary(&config)); } // not before recovery
                }
                Some(Intent::Quit) => {
                    sd.stopping("quitting now");
                    warn!("quitting now: the file in hand, if any, is rolled back");
                    return Ok(Exit::Quit);
                }
                Some(Intent::Shutdown) | None => {
                    sd.stopping("stopping: finishing the file in hand");
                    info!(scan_in_hand = running.is_some(), "stopping: no new files are taken");
                    stop.store(true, Ordering::SeqCst);
                    if let Some(mut scan) = running.take() {
                        loop {
                            tokio::select! {
                                _ = &mut scan => break,
                                intent = intents.recv() => match intent {
                                    Some(Intent::Quit) => {
                                        warn!("second stop signal: quitting now; the file in hand is rolled back");
                                        return Ok(Exit::Quit);
                                    }
                                    Some(_) => {}
                                    None => {
                                        let _ = scan.await;
                                        break;
                                    }
                                },
                            }
                        }
                    }
                    info!("stopped");
                    return Ok(Exit::Stopped);
                }
            },
            _ = tick.tick() => pending = true,
            _ = crate::systemd::next_tick(&mut sd_watchdog) => sd.watchdog(),
            Some(()) = kick_rx.recv() => {
                debounce.get_or_insert_with(|| Instant::now() + DEBOUNCE);
            }
            _ = sleep_until(debounce), if debounce.is_some() => {
                debounce = None;
                pending = true;
            }
            done = wait(&mut running), if running.is_some() => {
                running = None;
                match done {
                    Ok(next) => state = next,
                    Err(e) => error!(error = %e, "the scan task failed; the next listing retries"),
                }
                if !std::mem::replace(&mut sd_ready, true) {
                    info!(systemd = sd.enabled(), "first listing done: recovered, ready");
                    sd.ready(&crate::systemd::summary(&config));
                }
            }
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

async fn wait(
    running: &mut Option<tokio::task::JoinHandle<ScanState>>,
) -> Result<ScanState, tokio::task::JoinError> {
    match running {
        Some(handle) => handle.await,
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
            info!(config = %path.display(), "config reloaded");
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
fn scan_once(config: &Config, stop: &AtomicBool, mut state: ScanState) -> ScanState {
    let now = fingerprints(config);
    let resume = !state.started || state.resume_parked || now != state.stores;
    state.started = true;
    state.resume_parked = false;
    if resume {
        match app::folders_to_scan(config, None, |f| f.parked.clone())
            .and_then(|dirs| app::scan(&dirs))
        {
            Ok(files) => {
                process(config, stop, &files, &mut state);
            }
            Err(e) => error!(error = %format!("{e:#}"), "cannot list the parked folders"),
        }
    }
    let applied = match app::folders_to_scan(config, None, |f| f.inbox.clone())
        .and_then(|dirs| app::scan(&dirs))
    {
        Ok(files) => process(config, stop, &files, &mut state),
        Err(e) => {
            error!(error = %format!("{e:#}"), "cannot list the inboxes");
            0
        }
    };
    // A file applied now (a seat plan) may be what a parked one (a
    // catalogue) was waiting for.
    if applied > 0 {
        match app::folders_to_scan(config, None, |f| f.parked.clone())
            .and_then(|dirs| app::scan(&dirs))
        {
            Ok(files) => {
                process(config, stop, &files, &mut state);
            }
            Err(e) => error!(error = %format!("{e:#}"), "cannot list the parked folders"),
        }
    }
    // Forget files that left the folders, so the map stays small.
    state.logged.retain(|file, _| file.exists());
    state.stores = fingerprints(config);
    state
}

/// Processes `files` one at a time, stopping between two when asked to;
/// returns how many were applied.
fn process(config: &Config, stop: &AtomicBool, files: &[PathBuf], state: &mut ScanState) -> usize {
    let mut applied = 0;
    for file in files {
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
                    log_handled(h, &mut state.logged);
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
/// is logged at debug only.
fn log_handled(h: &app::Handled, logged: &mut HashMap<PathBuf, &'static str>) {
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

/// The folder watcher: any event (or error, or overflow) on an inbox only
/// asks for a listing.
struct Watcher {
    inner: notify::RecommendedWatcher,
    watched: Vec<PathBuf>,
}

impl Watcher {
    fn new(kick: mpsc::Sender<()>) -> anyhow::Result<Watcher> {
        let inner = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if let Err(e) = &event {
                warn!(error = %e, "folder watch error: listing the inboxes");
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

    /// Watches every inbox of `config` (non-recursively, creating it when
    /// missing) and stops watching the ones it no longer names.
    fn watch_inboxes(&mut self, config: &Config) -> anyhow::Result<()> {
        use notify::{RecursiveMode, Watcher as _};
        let wanted = app::folders_to_scan(config, None, |f| f.inbox.clone())?;
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
        drop(first);
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

    #[tokio::test]
    async fn a_quit_intent_returns_at_once_with_130() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tx.send(Intent::Quit).unwrap();
        let exit = run(temp_config(dir.path()), None, rx).await.unwrap();
        assert_eq!(exit.code(), 130);
    }
}
