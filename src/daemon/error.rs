//! Why the daemon could not start: [`DaemonError`]. Once started it logs
//! what fails and goes on; only a stop ends it.

use std::path::PathBuf;

use crate::app::AppError;
use crate::state_lock::LockError;

/// Why `stxd run` could not start (or set up its folders).
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The state directory is locked by another process, or cannot be.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// A store cannot be opened or bootstrapped, a link's folders listed.
    #[error(transparent)]
    App(#[from] AppError),
    /// An `[[alert]]` destination cannot be started (a token file missing
    /// or readable by others, a command that cannot run): every problem,
    /// with its key path (`alert[0].webhook_token_file: …`).
    #[error("cannot start the alerts: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Alert(Vec<crate::config::ConfigError>),
    /// The `[http]` console cannot start (its token refused, its address
    /// taken, its certificate unreadable): the reason, fix included.
    #[error("cannot start the console ([http]): {0}")]
    Console(String),
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot listen to {signal}")]
    Signal {
        signal: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the folder watcher")]
    Watcher(#[source] notify::Error),
    #[error("cannot create the control folder {}", .dir.display())]
    ControlDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the inbox {}", .dir.display())]
    Inbox {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot watch {}", .dir.display())]
    Watch {
        dir: PathBuf,
        #[source]
        source: notify::Error,
    },
}
