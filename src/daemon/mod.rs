//! `stxd run`: the daemon over local drop folders, schedules and triggers.
//!
//! Takes a validated [`Config`] and the intents of the process's signals;
//! serves one queue of work, one item at a time on `spawn_blocking`
//! (SQLite has one writer per store):
//!
//! - *scans*: the one-shot pipeline ([`app::scan`](crate::app::scan),
//!   [`app::process_files`](crate::app::process_files),
//!   [`app::resume`](crate::app::resume)) over every inbox: at start, every
//!   `[daemon] scan_seconds`, and soon after a folder event (events only
//!   trigger a listing: the listing decides what is complete). Files of a
//!   kind with an apply window (`[[schedule]] job = "apply-<kind>"`) stay in
//!   the inbox;
//! - *jobs* ([`app::run_job`](crate::app::run_job), the code path of
//!   `stxd trigger`): fired by [`Schedules`](crate::schedule::Schedules)
//!   (missed fires not replayed, a job never overlapping itself) or by a
//!   trigger file in
//!   `<state_dir>/control/<link>/`. A trigger is taken (given the private
//!   name `.taken.<job>`) when its job is queued, and removed once the job
//!   ran to its end: a taken trigger left by a kill or a stop is queued
//!   again by the next start.
//!
//! A stop intent is honoured between two files; the item in hand gets
//! `[daemon] shutdown_grace_seconds`, then is abandoned (its transaction is
//! rolled back when the process ends). Files held for a sequence gap are
//! warned about once, and logged as errors once past `[daemon]
//! gap_alert_minutes`. One daemon per state directory
//! ([`crate::state_lock`]). No business rule lives here.
//!
//! The files, each one role:
//!
//! - `main_loop`: the `Daemon` itself: its state, and
//!   one method per step of its loop (next work, an intent, a finished
//!   item…);
//! - `signal`: the process's signals turned into [`Intent`]s;
//! - `watch`: the folder watcher, which only asks for listings;
//! - `control`: trigger files, taken and removed;
//! - `work`: the items of work and how the worker serves them;
//! - `scan`: one listing of every inbox and parked folder;
//! - `report`: what the daemon logs about the work done;
//! - `progress`: what it logs while a file takes long to read;
//! - `log_once`: the bookkeeping that logs a file held again only once;
//! - `error`: [`DaemonError`], why the daemon could not start.
//!
//! A [`Sidecar`] (the `[http]` console, built by a layer above) is started
//! once the stores are open and runs on the same runtime until the daemon
//! ends; the daemon only hands it what it shares ([`Shared`]).

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::sync::mpsc;

use crate::config::Config;

// The daemon's log macros, in scope in every file of the daemon (defined
// before the modules): tracing's, with the one target `stxd::daemon`
// whichever file writes the line, so that filters and searches on that
// target see every line the daemon writes.
macro_rules! debug { ($($arg:tt)+) => { tracing::debug!(target: "stxd::daemon", $($arg)+) }; }
macro_rules! info { ($($arg:tt)+) => { tracing::info!(target: "stxd::daemon", $($arg)+) }; }
macro_rules! warn { ($($arg:tt)+) => { tracing::warn!(target: "stxd::daemon", $($arg)+) }; }
macro_rules! error { ($($arg:tt)+) => { tracing::error!(target: "stxd::daemon", $($arg)+) }; }

mod alerts;
mod control;
mod error;
mod failing;
mod log_once;
mod main_loop;
mod progress;
mod report;
mod retention;
mod scan;
mod signal;
mod watch;
mod work;

pub use error::DaemonError;
pub use signal::Intent;

/// What the daemon shares with a [`Sidecar`].
#[derive(Debug, Clone)]
pub struct Shared {
    /// The config the daemon started with (a reload does not change what
    /// a sidecar was given).
    pub config: Arc<Config>,
    /// Set once the first listing (the recovery of what a previous run
    /// left) is done: the daemon is ready.
    pub ready: Arc<AtomicBool>,
    /// When the daemon started.
    pub started: time::OffsetDateTime,
    /// Runs a sidecar's writes on the daemon's worker.
    pub worker: Worker,
}

/// A write the daemon's worker runs in its turn (the console's).
pub(crate) type Task = Box<dyn FnOnce() + Send>;

/// Hands work to the daemon's worker, which runs one item at a time (a
/// listing, a job, a console write): a store then has one writer, and a
/// console write waits for the file in hand instead of for SQLite's busy
/// timeout.
#[derive(Clone)]
pub struct Worker {
    tasks: tokio::sync::mpsc::UnboundedSender<Task>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Worker")
    }
}

/// The daemon stopped before it ran the work: nothing was done.
#[derive(Debug, thiserror::Error)]
#[error("the daemon is stopping: the request was not run")]
pub struct Stopping;

impl Worker {
    /// Runs `f` on the worker after the items queued before it; its result.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Stopping> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task: Task = Box::new(move || {
            // The asker may have gone (a closed connection): the work is
            // done all the same.
            let _ = tx.send(f());
        });
        self.tasks.send(task).map_err(|_| Stopping)?;
        rx.await.map_err(|_| Stopping)
    }
}

/// A service started beside the daemon's loop, on its runtime (the
/// console): `start` is called inside the runtime once the state directory
/// is locked and the stores open; a refusal is a start error. Its task is
/// aborted when the daemon ends.
pub trait Sidecar: Send {
    fn start(self: Box<Self>, shared: Shared) -> Result<tokio::task::JoinHandle<()>, String>;
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

/// `stxd run`: builds the runtime, turns signals into intents and runs the
/// daemon until it stops. SIGTERM/SIGINT → shutdown (a second one quits at
/// once, exit code 130); SIGHUP → reload `config_path`.
pub fn main(
    config: Config,
    config_path: crate::config::Located,
    sidecar: Option<Box<dyn Sidecar>>,
) -> Result<Exit, DaemonError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(DaemonError::Runtime)?;
    let result = runtime.block_on(async move {
        let (tx, rx) = mpsc::unbounded_channel();
        let signals = signal::intents(tx)?;
        let result = run_with(config, config_path, rx, sidecar).await;
        signals.abort();
        result
    });
    // On a quit, a file may still be in hand on a blocking thread: do not
    // wait for it (its transaction is rolled back when the process ends).
    runtime.shutdown_background();
    result
}

/// The daemon: locks the state directory, opens (and on first start
/// bootstraps) every store, then serves its work queue (listings, scheduled
/// jobs, trigger files) until a [`Intent::Shutdown`] arrives or the intent
/// channel closes. Returns once the item in hand is finished (or
/// `[daemon] shutdown_grace_seconds` have passed), or at once on
/// [`Intent::Quit`].
pub async fn run(
    config: Config,
    config_path: crate::config::Located,
    intents: mpsc::UnboundedReceiver<Intent>,
) -> Result<Exit, DaemonError> {
    run_with(config, config_path, intents, None).await
}

/// [`run`], with a [`Sidecar`] started once the stores are open.
pub async fn run_with(
    config: Config,
    config_path: crate::config::Located,
    intents: mpsc::UnboundedReceiver<Intent>,
    sidecar: Option<Box<dyn Sidecar>>,
) -> Result<Exit, DaemonError> {
    let daemon = main_loop::Daemon::start(config, config_path, intents)?;
    let sidecar = match sidecar {
        Some(s) => Some(s.start(daemon.shared()).map_err(DaemonError::Console)?),
        None => None,
    };
    let exit = daemon.serve().await;
    if let Some(task) = sidecar {
        task.abort();
    }
    Ok(exit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    use crate::config;

    /// A config serving the distributor's side of one local link, with its
    /// state and exchange folders under `dir`.
    pub(super) fn temp_config(dir: &Path) -> Config {
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

    /// The file the daemon reloads on SIGHUP (absent: the reload is logged
    /// and the running config kept).
    fn located(dir: &std::path::Path) -> config::Located {
        config::Located {
            path: dir.join("stxd.toml"),
            origin: config::Origin::Named,
        }
    }

    #[tokio::test]
    async fn an_injected_shutdown_stops_the_daemon_and_frees_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let config = temp_config(dir.path());
        let (tx, rx) = mpsc::unbounded_channel();
        tx.send(Intent::Reload).unwrap();
        tx.send(Intent::Shutdown).unwrap();
        let exit = run(config.clone(), located(dir.path()), rx).await.unwrap();
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
        crate::state_lock::lock(&config.state_dir).expect("lock released");
    }

    #[tokio::test]
    async fn a_quit_intent_returns_at_once_with_130() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        tx.send(Intent::Quit).unwrap();
        let exit = run(temp_config(dir.path()), located(dir.path()), rx)
            .await
            .unwrap();
        assert_eq!(exit.code(), 130);
    }
}
