//! A command beside a long write: it waits for the store (`--busy-wait`,
//! [`crate::store::wait`]) and says on stderr, after a second and then
//! every 10 s, what it waits for: the file the daemon is reading and how
//! far it is, when the daemon has said so (`crate::reading`), or another
//! process.

use std::path::Path;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::reading;
use crate::store::wait::{self, Patience};

/// Makes every write of this command wait up to `limit` for a store
/// another process is writing, saying so on stderr.
pub fn wait_for_stores(state_dir: &Path, limit: Duration) {
    let state_dir = state_dir.to_path_buf();
    let said: Mutex<Option<Duration>> = Mutex::new(None);
    wait::wait_patiently(Patience {
        limit,
        notice: Box::new(move |store, waited| {
            let mut said = said.lock().unwrap_or_else(PoisonError::into_inner);
            // After the first second of each wait, then every 10 s.
            if said.is_some_and(|at| waited > at && waited < at + reading::EVERY) {
                return;
            }
            *said = Some(waited);
            eprintln!("stxd: {}", notice(&state_dir, store, waited, limit));
        }),
    });
}

/// What a command waiting for `store` says after `waited`.
fn notice(state_dir: &Path, store: &Path, waited: Duration, limit: Duration) -> String {
    let holder = crate::status::daemon_state(state_dir)
        .reading
        .map(|r| format!("the daemon is {}", r.describe()))
        .unwrap_or_else(|| {
            "another process is writing it (the daemon applying a file, or another stxd command)"
                .to_owned()
        });
    format!(
        "waiting for the store {}: {holder}; waited {} of up to {} (--busy-wait), nothing written yet",
        store.display(),
        wait::words(waited),
        wait::words(limit)
    )
}
