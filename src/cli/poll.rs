//! `stxd poll --link L`: sync a link's SFTP share once, then process the
//! inbox like `stxd process --link L`.
//!
//! Parses arguments and prints; the work is [`crate::app::poll`] (the code
//! path the daemon's poll job takes) and [`crate::app::process_files`]. For a
//! link over a local folder only the processing happens. The printing of a
//! share's sync is shared with `stxd trigger poll --now`.

use serde_json::{Value, json};

use super::{EXIT_FINDINGS, handled_exit, handled_json, print_handled};
use crate::app::{self, PollReport, Synced};
use crate::config::Config;

/// Runs `stxd poll`; returns the exit code: 1 when the share could not be
/// synced or a file was rejected or must be retried.
pub fn run(config: &Config, link: &str, json: bool) -> anyhow::Result<u8> {
    // One poller per state directory: two would race on the same temporary
    // names (a daemon polls by itself; `stxd trigger poll` asks it to).
    let _lock = crate::state_lock::lock(&config.state_dir).map_err(|e| {
        anyhow::Error::new(e).context(format!(
            "stxd poll runs only when no daemon does; ask the daemon instead: stxd trigger poll --link {link}"
        ))
    })?;
    let report = app::poll(config, link)?;
    let dirs = app::folders_to_scan(config, Some(link), |f| f.inbox.clone())?;
    let handled = app::process_files(config, &app::scan(&dirs)?)?;
    if json {
        outln!(
            "{:#}",
            json!({"link": report.link, "transfers": transfers_json(&report), "files": handled_json(&handled)})
        );
    } else {
        print_transfers(&report);
        if handled.is_empty() {
            outln!("nothing to process");
        } else {
            print_handled(&handled, "");
        }
    }
    if transfers_failed(&report) {
        return Ok(EXIT_FINDINGS);
    }
    Ok(handled_exit(&handled))
}

/// Each side's sync as JSON.
pub(super) fn transfers_json(report: &PollReport) -> Vec<Value> {
    report
        .sides
        .iter()
        .map(|s| {
            let mut v = json!({"institution": s.institution, "side": s.side.to_string()});
            match &s.synced {
                Synced::Moved(m) => {
                    v["state"] = json!("synced");
                    v["pushed"] = json!(m.pushed);
                    v["pulled"] = json!(m.pulled);
                    v["cleaned"] = json!(m.cleaned);
                    v["alerts"] = json!(m.alerts);
                }
                Synced::Deferred(d) => {
                    v["state"] = json!("deferred");
                    v["retry_in_seconds"] = json!(d.as_secs());
                }
                Synced::Failed(e) => {
                    v["state"] = json!("failed");
                    v["permanent"] = json!(e.is_permanent());
                    v["error"] = json!(e.to_string());
                }
            }
            v
        })
        .collect()
}

/// Each side's sync for people; failures on standard error.
pub(super) fn print_transfers(report: &PollReport) {
    if report.sides.is_empty() {
        outln!("{}: local folder, nothing to transfer", report.link);
    }
    for s in &report.sides {
        match &s.synced {
            Synced::Moved(m) => {
                outln!(
                    "{}: {}: pushed {}, pulled {}",
                    s.institution,
                    report.link,
                    m.pushed.len(),
                    m.pulled.len()
                );
                for alert in &m.alerts {
                    outln!("{}: alert: {alert}", s.institution);
                }
            }
            Synced::Deferred(d) => outln!(
                "{}: {}: not retried yet (in {}s)",
                s.institution,
                report.link,
                d.as_secs()
            ),
            Synced::Failed(e) => eprintln!("stxd: {}: {e}", s.institution),
        }
    }
}

/// Whether a side failed, was deferred, or raised an alert.
pub(super) fn transfers_failed(report: &PollReport) -> bool {
    report.failed()
        || report
            .sides
            .iter()
            .any(|s| matches!(&s.synced, Synced::Moved(m) if !m.alerts.is_empty()))
}
