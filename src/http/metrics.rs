//! `/metrics` in the OpenMetrics text format (which Prometheus scrapes),
//! computed at scrape time from the stores, the folders and the run log:
//! the stores' figures are the counts each store keeps in the transactions
//! that write its rows (`store::stats`), so a scrape reads a few rows
//! whatever the history, and no figure can drift from what `stxd status`
//! says. Counters are the store's counts of terminal states (a
//! journaled file applied, ignored, rejected or published stays so);
//! everything that can go down is a gauge. The one exception is the SFTP
//! transport's own counters (connection failures, bytes moved), which no
//! store records: read from the transport, they count since the daemon
//! started. Every metric is listed in docs/console.md.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::{AppState, blocking};
use crate::config::Config;
use crate::exchange::Role;
use crate::store::stats;

type Labels = Vec<(String, String)>;
type FGauge = Gauge<f64, AtomicU64>;

/// The journal states that never change again: their counts only grow.
const TERMINAL: [&str; 4] = ["applied", "ignored", "rejected", "published"];

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The import durations of every store, summed: a histogram whose buckets
/// the stores keep (`stats::import_durations`), encoded as they are.
#[derive(Debug, Default)]
struct Durations(std::sync::Mutex<stats::Durations>);

impl Durations {
    fn add(&self, store: &stats::Durations) {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .add(store);
    }
}

impl EncodeMetric for Durations {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let d = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        encoder.encode_histogram::<NoLabelSet>(d.sum, d.count(), &d.buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// Every metric, filled from the stores and folders.
struct Metrics {
    files: Family<Labels, Counter>,
    sales_lines: Family<Labels, Gauge>,
    pending: Family<Labels, Gauge>,
    waiting: Family<Labels, Gauge>,
    oldest: Family<Labels, FGauge>,
    last_success: Family<Labels, FGauge>,
    apply: Durations,
    problems: Family<Labels, Gauge>,
    sftp_failures: Family<Labels, Counter>,
    sftp_bytes: Family<Labels, Counter>,
}

impl Metrics {
    fn new() -> Metrics {
        Metrics {
            files: Family::default(),
            sales_lines: Family::default(),
            pending: Family::default(),
            waiting: Family::default(),
            oldest: Family::default(),
            last_success: Family::default(),
            apply: Durations::default(),
            problems: Family::default(),
            sftp_failures: Family::default(),
            sftp_bytes: Family::default(),
        }
    }

    fn register(self, reg: &mut Registry) {
        reg.register(
            "stxd_files",
            "Journaled files that reached a final state, by link, side, kind, direction and outcome",
            self.files,
        );
        reg.register(
            "stxd_sales_lines",
            "Sales lines at the manager by link and status (booked, rejected)",
            self.sales_lines,
        );
        reg.register(
            "stxd_pending_mappings",
            "Mapping rows waiting for ops, by link",
            self.pending,
        );
        reg.register(
            "stxd_files_waiting",
            "Files in a folder of a link side: inbox, held, parked, error, quarantine, outbox",
            self.waiting,
        );
        reg.register(
            "stxd_oldest_waiting_file_age_seconds",
            "Age of the oldest file waiting in the inbox or parked folder of a link side",
            self.oldest,
        );
        reg.register(
            "stxd_last_success_timestamp_seconds",
            "When the last successful run of each kind (import-*, export-*, mapping-*, ...) of a link side ended, Unix time",
            self.last_success,
        );
        reg.register(
            "stxd_apply_duration_seconds",
            "How long each inbound file's apply run took",
            self.apply,
        );
        reg.register(
            "stxd_sftp_connection_failures",
            "SFTP connection attempts that failed (TCP, handshake, host key, login), by link and side, since the daemon started",
            self.sftp_failures,
        );
        reg.register(
            "stxd_sftp_transfer_bytes",
            "Bytes moved over SFTP by link, side and direction (in: pulled into the inbox, out: pushed from the outbox), since the daemon started",
            self.sftp_bytes,
        );
        reg.register(
            "stxd_scrape_problems",
            "Stores or folders the scrape could not read (1 each), by what",
            self.problems,
        );
    }
}

/// The side `institution` plays on `link`.
fn side_of(config: &Config, link: &str, institution: &str) -> Option<Role> {
    let l = config.link(link)?;
    if l.manager.as_str() == institution {
        Some(Role::Manager)
    } else if l.distributor.as_str() == institution {
        Some(Role::Distributor)
    } else {
        None
    }
}

fn from_stores(config: &Config, m: &Metrics) {
    for inst in &config.institutions {
        let code = inst.code.as_str();
        let conn = match crate::store::open_read_only(&config.store_path(&inst.code)) {
            Ok(c) => c,
            Err(_) => {
                m.problems
                    .get_or_create(&labels(&[("what", &format!("store {code}"))]))
                    .set(1);
                continue;
            }
        };
        let read = (|| -> Result<(), crate::store::StoreError> {
            for c in stats::journal_counts(&conn)? {
                let Some(side) = side_of(config, &c.link, code) else {
                    continue;
                };
                if TERMINAL.contains(&c.state.as_str()) {
                    m.files
                        .get_or_create(&labels(&[
                            ("link", &c.link),
                            ("side", side.as_str()),
                            ("kind", &c.kind.to_lowercase()),
                            ("direction", &c.direction),
                            ("outcome", &c.state),
                        ]))
                        .inc_by(c.count);
                }
            }
            for (link, status, n) in stats::sales_line_counts(&conn)? {
                let Some(side) = side_of(config, &link, code) else {
                    continue;
                };
                m.sales_lines
                    .get_or_create(&labels(&[
                        ("link", &link),
                        ("side", side.as_str()),
                        ("status", &status),
                    ]))
                    .set(i64::try_from(n).unwrap_or(i64::MAX));
            }
            for (link, kind, at) in stats::last_successes(&conn)? {
                let Some(side) = side_of(config, &link, code) else {
                    continue;
                };
                m.last_success
                    .get_or_create(&labels(&[
                        ("link", &link),
                        ("side", side.as_str()),
                        ("run_kind", &kind),
                    ]))
                    .set(at);
            }
            let durations = stats::import_durations(&conn)?;
            m.apply.add(&durations);
            Ok(())
        })();
        if read.is_err() {
            m.problems
                .get_or_create(&labels(&[("what", &format!("store {code}"))]))
                .set(1);
        }
    }
}

/// The age of the oldest manifest among `files` of `dir`.
fn oldest(dir: &std::path::Path, files: &[String], now: std::time::SystemTime) -> Option<f64> {
    files
        .iter()
        .filter_map(|f| {
            std::fs::metadata(dir.join(f))
                .and_then(|m| m.modified())
                .ok()
        })
        .filter_map(|t| now.duration_since(t).ok())
        .map(|d| d.as_secs_f64())
        .reduce(f64::max)
}

fn from_status(config: &Config, m: &Metrics) {
    let Ok(status) = crate::status::collect(config, None, time::OffsetDateTime::now_utc()) else {
        return;
    };
    let now = std::time::SystemTime::now();
    for l in &status.links {
        let side = l.side.as_str();
        let at = |folder: &str| labels(&[("link", &l.link), ("side", side), ("folder", folder)]);
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        m.waiting
            .get_or_create(&at("inbox"))
            .set(count(l.inbox.count));
        m.waiting
            .get_or_create(&at("held"))
            .set(count(l.held.len()));
        m.waiting
            .get_or_create(&at("parked"))
            .set(count(l.parked.count));
        m.waiting
            .get_or_create(&at("error"))
            .set(count(l.error.count));
        m.waiting
            .get_or_create(&at("quarantine"))
            .set(count(l.quarantine.len()));
        m.waiting
            .get_or_create(&at("outbox"))
            .set(count(l.outbox.count));
        for (what, f) in [
            ("inbox", &l.inbox),
            ("parked", &l.parked),
            ("error", &l.error),
        ] {
            if f.problem.is_some() {
                m.problems
                    .get_or_create(&labels(&[("what", &format!("{} {side} {what}", l.link))]))
                    .set(1);
            }
        }
        let age = [
            oldest(&l.inbox.path, &l.inbox.files, now),
            oldest(&l.parked.path, &l.parked.files, now),
        ]
        .into_iter()
        .flatten()
        .reduce(f64::max)
        .unwrap_or(0.0);
        m.oldest
            .get_or_create(&labels(&[("link", &l.link), ("side", side)]))
            .set(age);
        if let Some(n) = l.pending_mappings {
            m.pending
                .get_or_create(&labels(&[("link", &l.link)]))
                .set(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}

/// The SFTP transport's own counters (this process's, since it started):
/// every served SFTP link side at 0 until it moves or fails.
fn from_transport(config: &Config, m: &Metrics) {
    for (link, _, side) in config.served(None) {
        if matches!(link.transport, crate::config::Transport::Sftp { .. }) {
            let side = side.as_str();
            m.sftp_failures
                .get_or_create(&labels(&[("link", &link.name), ("side", side)]))
                .inc_by(0);
            for direction in ["in", "out"] {
                m.sftp_bytes
                    .get_or_create(&labels(&[
                        ("link", &link.name),
                        ("side", side),
                        ("direction", direction),
                    ]))
                    .inc_by(0);
            }
        }
    }
    for t in crate::transport::sftp::traffic_counts() {
        let side = t.side.as_str();
        m.sftp_failures
            .get_or_create(&labels(&[("link", &t.link), ("side", side)]))
            .inc_by(t.connection_failures);
        for (direction, n) in [("in", t.bytes_in), ("out", t.bytes_out)] {
            m.sftp_bytes
                .get_or_create(&labels(&[
                    ("link", &t.link),
                    ("side", side),
                    ("direction", direction),
                ]))
                .inc_by(n);
        }
    }
}

/// The whole exposition.
fn render(config: &Config, started: f64, ready: bool) -> Result<String, std::fmt::Error> {
    let mut reg = Registry::default();
    let m = Metrics::new();
    from_stores(config, &m);
    from_status(config, &m);
    from_transport(config, &m);
    m.register(&mut reg);
    let start: FGauge = Gauge::default();
    start.set(started);
    reg.register(
        "stxd_start_time_seconds",
        "When the daemon started, Unix time",
        start,
    );
    let ready_g: Gauge = Gauge::default();
    ready_g.set(i64::from(ready));
    reg.register(
        "stxd_ready",
        "1 once the first listing (recovery) is done",
        ready_g,
    );
    let info: Family<Labels, Gauge> = Family::default();
    info.get_or_create(&labels(&[("version", env!("CARGO_PKG_VERSION"))]))
        .set(1);
    reg.register("stxd_build_info", "The build of stxd (value 1)", info);
    let mut out = String::new();
    encode(&mut out, &reg)?;
    Ok(out)
}

pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let config = Arc::clone(&state.shared.config);
    let started = state.shared.started.unix_timestamp_nanos() as f64 / 1e9;
    let ready = state.shared.ready.load(Ordering::Acquire);
    match blocking(move || render(&config, started, ready)).await {
        Ok(Ok(text)) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Ok(Err(_)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot encode the metrics\n",
        )
            .into_response(),
        Err(r) => r,
    }
}
