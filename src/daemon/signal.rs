//! The process's signals turned into [`Intent`]s for the daemon's loop:
//! SIGTERM and SIGINT ask for a shutdown (a second one for a quit), SIGHUP
//! for a reload. Tests send intents on the channel instead.

use tokio::sync::mpsc;

use super::DaemonError;

/// What the process's signals ask of the daemon: each signal is turned into
/// an intent that the daemon's loop acts on between two steps, never in
/// the signal handler itself.
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

/// Listens to SIGTERM, SIGINT and SIGHUP and sends the matching intents.
pub(super) fn intents(
    tx: mpsc::UnboundedSender<Intent>,
) -> Result<tokio::task::JoinHandle<()>, DaemonError> {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind: SignalKind, name: &'static str| {
        signal(kind).map_err(|source| DaemonError::Signal {
            signal: name,
            source,
        })
    };
    let mut term = listen(SignalKind::terminate(), "SIGTERM")?;
    let mut int = listen(SignalKind::interrupt(), "SIGINT")?;
    let mut hup = listen(SignalKind::hangup(), "SIGHUP")?;
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
