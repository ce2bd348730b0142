//! Folder watching: every inbox and control folder of the config watched
//! (non-recursively), each event that may mean new work only asking the
//! loop for a listing. The listing decides what is there: an event is never
//! trusted to say which file is complete, and a missed one only delays the
//! work until the periodic listing.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;

use super::DaemonError;
use crate::app;
use crate::config::Config;

/// How long folder events are gathered before a listing: a burst of events
/// (a pair arriving, a big file being written) makes one listing, and a
/// file waits no longer than this for it. No more is needed: the listing
/// takes a pair only once its manifest, written last, is there.
pub(super) const DEBOUNCE: Duration = Duration::from_millis(5);

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
pub(super) struct Watcher {
    inner: notify::RecommendedWatcher,
    watched: Vec<PathBuf>,
}

impl Watcher {
    /// A watcher that sends on `kick` (never blocking: a full channel
    /// already holds a request) for each event worth a listing.
    pub(super) fn new(kick: mpsc::Sender<()>) -> Result<Watcher, DaemonError> {
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
        .map_err(DaemonError::Watcher)?;
        Ok(Watcher {
            inner,
            watched: Vec::new(),
        })
    }

    /// Watches every inbox and control folder of `config`
    /// (non-recursively, creating them when missing) and stops watching the
    /// ones it no longer names.
    pub(super) fn watch(&mut self, config: &Config) -> Result<(), DaemonError> {
        use notify::{RecursiveMode, Watcher as _};
        use std::os::unix::fs::DirBuilderExt;
        let mut wanted = app::folders_to_scan(config, None, |f| f.inbox.clone())?;
        for link in &config.links {
            let dir = config.control_dir(&link.name);
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|source| DaemonError::ControlDir {
                    dir: dir.clone(),
                    source,
                })?;
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
            std::fs::create_dir_all(&dir).map_err(|source| DaemonError::Inbox {
                dir: dir.clone(),
                source,
            })?;
            self.inner
                .watch(&dir, RecursiveMode::NonRecursive)
                .map_err(|source| DaemonError::Watch {
                    dir: dir.clone(),
                    source,
                })?;
            debug!(dir = %dir.display(), "watching");
            self.watched.push(dir);
        }
        Ok(())
    }
}
