//! How long a writer of this process waits for a store whose write lock
//! another process holds, and what it says meanwhile.
//!
//! In WAL mode only a write transaction's start (`BEGIN IMMEDIATE`) waits
//! for another process; reads never do. The daemon applying a large file
//! holds its store's lock for as long as that takes: seconds for a big seat
//! plan, minutes for millions of sales lines.
//!
//! - The daemon waits [`BUSY_TIMEOUT`] and moves on: the file stays in its
//!   inbox for the next listing, a job fails with words and runs again. Its
//!   one worker must not sit behind a command.
//! - A command (someone at a terminal, a script) is given a [`Patience`]
//!   by the command line: it waits up to its limit, and is told every
//!   second how long it has waited so that it can say what it waits for.
//!   Behind a long apply, waiting is what the user would do anyway;
//!   failing only makes them guess when to try again.
//!
//! The patience is the process's, set once before any store is opened,
//! as a logging subscriber is: the stores a command opens are opened deep
//! in the layers below it, the same code the daemon runs.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use super::BUSY_TIMEOUT;

/// How often a patient writer tries the lock again, and is told so.
pub const STEP: Duration = Duration::from_secs(1);

/// What a waiting writer is told: the store, and how long it has waited.
pub type Notice = Box<dyn Fn(&Path, Duration) + Send + Sync>;

/// How a command waits for a busy store.
pub struct Patience {
    /// How long in all one write waits before it gives up.
    pub limit: Duration,
    /// Told after each [`STEP`] spent waiting: the store and how long this
    /// write has waited so far.
    pub notice: Notice,
}

static PATIENCE: OnceLock<Patience> = OnceLock::new();

/// Makes this process's writers wait with `patience` rather than
/// [`BUSY_TIMEOUT`]. Only the first call counts.
pub fn wait_patiently(patience: Patience) {
    let _ = PATIENCE.set(patience);
}

/// This process's patience, when it has one.
pub(super) fn patience() -> Option<&'static Patience> {
    PATIENCE.get()
}

/// How long a write of this process waits for another's lock before it
/// gives up.
pub fn limit() -> Duration {
    patience().map_or(BUSY_TIMEOUT, |p| p.limit)
}

/// A wait in words: `10 s`, `90 s`, `10 min`.
pub fn words(wait: Duration) -> String {
    let s = wait.as_secs();
    if s >= 120 && s.is_multiple_of(60) {
        format!("{} min", s / 60)
    } else {
        format!("{s} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_read_in_seconds_or_whole_minutes() {
        assert_eq!(words(Duration::from_secs(0)), "0 s");
        assert_eq!(words(Duration::from_secs(10)), "10 s");
        assert_eq!(words(Duration::from_secs(90)), "90 s");
        assert_eq!(words(Duration::from_secs(600)), "10 min");
        assert_eq!(words(Duration::from_secs(601)), "601 s");
    }
}
