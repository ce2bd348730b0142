//! What the SFTP transport moved and how often it could not connect, per
//! link and side, counted by this process since it started (the console's
//! `/metrics` reads them; nothing else does). Counters only grow; a
//! restart starts them at 0, as Prometheus expects of a counter.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::exchange::Role;

/// The counters of one link side.
#[derive(Debug, Default)]
pub struct Traffic {
    connection_failures: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

impl Traffic {
    pub(super) fn connection_failed(&self) {
        self.connection_failures.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn received(&self, bytes: u64) {
        self.bytes_in.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(super) fn sent(&self, bytes: u64) {
        self.bytes_out.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// One link side's counters, read at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafficCount {
    pub link: String,
    pub side: Role,
    /// Connection attempts that failed (TCP, handshake, host key, login).
    pub connection_failures: u64,
    /// Bytes downloaded from the share into the inbox (payloads and
    /// manifests).
    pub bytes_in: u64,
    /// Bytes uploaded from the outbox to the share.
    pub bytes_out: u64,
}

type Table = Mutex<HashMap<(String, Role), Arc<Traffic>>>;

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(Table::default)
}

/// The counters of `link`'s `side`, created at 0 on first use.
pub(super) fn traffic(link: &str, side: Role) -> Arc<Traffic> {
    let mut t = table()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Arc::clone(t.entry((link.to_owned(), side)).or_default())
}

/// Every link side's counters (those that polled at least once), by link
/// and side.
pub fn traffic_counts() -> Vec<TrafficCount> {
    let t = table()
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut all: Vec<TrafficCount> = t
        .iter()
        .map(|((link, side), c)| TrafficCount {
            link: link.clone(),
            side: *side,
            connection_failures: c.connection_failures.load(Ordering::Relaxed),
            bytes_in: c.bytes_in.load(Ordering::Relaxed),
            bytes_out: c.bytes_out.load(Ordering::Relaxed),
        })
        .collect();
    all.sort_by(|a, b| (&a.link, a.side.as_str()).cmp(&(&b.link, b.side.as_str())));
    all
}
