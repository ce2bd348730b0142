//! What the daemon logs about the work done, at the level of what ops must
//! do: error when someone must act (a rejected file, a failed export, a
//! gap held too long), warn when something waits for a person (a parked
//! file, a held one), info for progress, debug for a state logged already
//! ([`LogOnce`] remembers which). What someone must hear of is also raised
//! on the [`Alerter`] (a refused file, a parked or held one, a sequence gap,
//! a failed export, a share down), and resolved here when it clears in the
//! same place (a share synced, a file applied); [`super::alerts::sweep`]
//! resolves the files that left their folder.

use time::OffsetDateTime;

use super::alerts::{file_incident, file_key};
use super::log_once::{GapLog, LogOnce, Logged};
use crate::alert::{self, Alerter, Event, Incident};
use crate::app;
use crate::config::Config;
use crate::inbound::Outcome;
use crate::inbound::claim::display_name;
use crate::outbound::export::ExportError;

/// Logs what a job did.
pub(super) fn job_done(
    config: &Config,
    done: &app::JobDone,
    log: &mut LogOnce,
    now: OffsetDateTime,
    alerter: &Alerter,
) {
    match done {
        app::JobDone::Exported(done) => {
            let m = &done.manifest;
            info!(file = %m.manifest_name(), sequence = m.sequence, records = m.records,
                run = done.run_id, excluded = done.report.excluded.len(), "job done: file exported");
        }
        app::JobDone::Refused(e) => refused(e),
        app::JobDone::Reconciled(report) => reconciled(report, alerter),
        app::JobDone::Files {
            polled,
            handled: files,
            held,
        } => {
            if let Some(report) = polled {
                self::polled(report, log, now, alerter);
            }
            // A file failing here is tried at the next listing, where
            // its waits start ([`super::failing`]).
            for h in files {
                handled(config, h, None, log, now, alerter);
            }
            window_held(held, log);
            info!(
                files = files.len(),
                waiting_for_window = held.len(),
                "job done"
            );
        }
    }
}

/// Logs a reconciliation: a difference is raised (warn, a
/// `reconcile-difference` alert keyed by the link) until a later one finds
/// the stores consistent, which resolves it.
fn reconciled(report: &crate::domain::reconcile::Report, alerter: &Alerter) {
    let link = report.link.as_str();
    let key = alert::key(Event::ReconcileDifference, &[link]);
    if report.is_consistent() {
        info!(%link, in_flight = report.in_flight.len(), "job done: reconciliation consistent");
        alerter.resolve(&key);
        return;
    }
    let first = &report.differences[0];
    warn!(%link, differences = report.differences.len(), first = %first.detail, code = first.code,
        "job done: the reconciliation found differences (stxd report reconcile --link shows them)");
    alerter.raise(
        Incident::new(
            Event::ReconcileDifference,
            key,
            format!(
                "the reconciliation of link {link} found {} difference(s); the first: {}",
                report.differences.len(),
                first.detail
            ),
        )
        .link(link)
        .code(first.code)
        .fix(format!(
            "read stxd report reconcile --link {link} (--html for a page), then fix the records or resend the files that differ"
        )),
    );
}

/// Logs an export refused: nothing new to send is routine (debug), nothing
/// to sell is an answer (info), a failure of the machinery needs someone
/// (error), any other refusal asks for a fix of the setup or data (warn).
fn refused(e: &ExportError) {
    if e.is_nothing_to_send() {
        debug!(code = e.code(), reason = %e, "job done: nothing new to export")
    } else if e.is_nothing_to_sell() {
        info!(code = e.code(), reason = %e, run = e.run_id, "job done: nothing to export")
    } else if e.is_failure() {
        error!(code = e.code(), reason = %e, run = e.run_id, "job failed: export refused")
    } else {
        warn!(code = e.code(), reason = %e, run = e.run_id, "job done: export refused")
    }
}

/// Logs a share's sync: info when files moved, warn for an alert (a final
/// name already holding other bytes: someone must look), error for a
/// failure (debug while the backoff defers the next try).
pub(super) fn polled(
    report: &app::PollReport,
    log: &mut LogOnce,
    now: OffsetDateTime,
    alerter: &Alerter,
) {
    for side in &report.sides {
        let (link, institution) = (&report.link, &side.institution);
        let key = alert::key(Event::SftpDown, &[link, institution]);
        match &side.synced {
            app::Synced::Moved(m) => {
                log.up(&key);
                alerter.resolve(&key);
                if !m.pushed.is_empty() || !m.pulled.is_empty() {
                    info!(%link, %institution, pushed = %m.pushed.join(", "), pulled = %m.pulled.join(", "),
                        "share synced");
                }
                for alert in &m.alerts {
                    warn!(%link, %institution, alert = %alert, "share: file left in place");
                }
            }
            app::Synced::Deferred(d) => {
                debug!(%link, %institution, retry_in_seconds = d.as_secs(), "share not retried yet (backoff)")
            }
            app::Synced::Failed(e) => {
                error!(%link, %institution, permanent = e.is_permanent(), error = %e,
                "share not synced: the next poll retries after a backoff");
                let since = log.down_since(&key, now);
                alerter.raise(
                    Incident::new(
                        Event::SftpDown,
                        key,
                        format!("the SFTP share of link {link} ({institution}) does not sync: {e}"),
                    )
                    .link(link.as_str())
                    .code(if e.is_permanent() { "sftp-refused" } else { "sftp-failed" })
                    .fix("check the share's host, credentials and known_hosts (stxd poll --link shows the error)")
                    .since(since),
                );
            }
        }
    }
}

/// Logs files held for an apply window: once per file, at info (nothing to
/// do, the window opens by itself).
pub(super) fn window_held(held: &[app::WindowHeld], log: &mut LogOnce) {
    for w in held {
        let file = display_name(&w.file);
        if !log.again(&w.file, Logged::Window) {
            info!(%file, link = %w.link, state = "held", code = "apply-window", reason = %w.reason(),
                "file held until its apply window");
        }
    }
}

/// Whether a handled file was applied.
pub(super) fn applied(h: &app::Handled) -> bool {
    matches!(&h.processed, Ok(p) if matches!(p.outcome, Outcome::Applied { .. }))
}

/// Logs one handled file: error for a rejected one (someone must act), warn
/// for parked or held, info for applied. A file held again in the same state
/// is logged at debug only; one held for a sequence gap longer than
/// `[daemon] gap_alert_minutes` is logged once more, at error level.
pub(super) fn handled(
    config: &Config,
    h: &app::Handled,
    retry_in: Option<std::time::Duration>,
    log: &mut LogOnce,
    now: OffsetDateTime,
    alerter: &Alerter,
) {
    let gap = matches!(&h.processed, Ok(p) if p.outcome.is_sequence_gap());
    let file = display_name(&h.file);
    if !gap {
        log.gap_closed(&h.file);
        alerter.resolve(&file_key(Event::SequenceGap, &file));
    }
    // A file failing transiently stays in place too: held, as far as
    // alerts go.
    let held_now = match &h.processed {
        Ok(p) => matches!(p.outcome, Outcome::Held { .. }),
        Err(_) => true,
    };
    if !held_now {
        alerter.resolve(&file_key(Event::FileHeld, &file));
    }
    let parked_now = matches!(&h.processed, Ok(p) if matches!(p.outcome, Outcome::Parked { .. }));
    if !parked_now {
        alerter.resolve(&file_key(Event::FileParked, &file));
    }
    let institution = h.institution.as_str();
    let p = match &h.processed {
        Ok(p) => p,
        Err(e) => {
            // Transient (I/O, a busy store): the file stays where it is,
            // tried again after a wait that grows while it keeps failing
            // (at the next listing for a busy store).
            let next_try = match retry_in {
                Some(wait) => format!("in {} s", wait.as_secs()),
                None => "at the next listing".to_owned(),
            };
            if log.again(&h.file, Logged::Failed) {
                debug!(%file, institution, state = "failed", error = %e, %next_try, "file still failing");
            } else {
                error!(%file, institution, state = "failed", error = %e, code = e.code(), %next_try,
                    "file not processed now: it stays in place and is tried again later");
            }
            raise_failing(&h.file, &e.to_string(), e.code(), log, now, alerter);
            return;
        }
    };
    // A file the daemon moved (to parked/, done/, error/) is remembered,
    // if at all, where it went: never said to have left behind its back.
    if p.location != h.file {
        log.forget(&h.file);
    }
    match &p.outcome {
        Outcome::Applied { run, .. } => {
            log.forget(&h.file);
            info!(%file, institution, state = "applied", run, "file applied");
        }
        Outcome::AlreadyApplied { sequence } => {
            log.forget(&h.file);
            info!(%file, institution, state = "already-applied", sequence, "file already applied: archived again");
        }
        Outcome::Parked { run, missing } => {
            let pending: Vec<String> = missing
                .iter()
                .map(|m| format!("{} {} {}", m.kind, m.manager_id, m.code))
                .collect();
            if log.again(&p.location, Logged::Parked) {
                debug!(%file, institution, state = "parked", run, "file still parked");
            } else {
                warn!(%file, institution, state = "parked", run, missing = %pending.join(", "),
                    "file parked: mappings pending (stxd mapping list --pending)");
            }
            let since = log.waiting_since(&p.location, now);
            alerter.raise(
                file_incident(
                    Event::FileParked,
                    &file,
                    format!("file {file} is parked: {} mapping(s) pending", pending.len()),
                )
                .code("mappings-pending")
                .fix("fill the mappings (stxd mapping list --pending): the daemon then applies the file")
                .since(since),
            );
        }
        outcome @ Outcome::Held { .. } => held(config, h, outcome, log, now, alerter),
        // Warned once where it was set aside (it left the inbox).
        Outcome::Quarantined { .. } => log.forget(&h.file),
        Outcome::Rejected(e) => {
            log.forget(&h.file);
            error!(%file, institution, state = "rejected", error = %e, code = e.code(),
                location = %p.location.display(), "file rejected");
            // Keyed by the name it has in error/, as the sweep sees it.
            let name = display_name(&p.location);
            alerter.raise(
                file_incident(
                    Event::FileRefused,
                    &name,
                    format!("file {name} was refused and put in error/: {e}"),
                )
                .code(e.code())
                .fix(format!(
                    "read {}.reason, ask the sender for a corrected file, then remove the file from error/",
                    p.location.display()
                )),
            );
        }
    }
}

/// A file failing for a cause outside it, not tried at this listing (its
/// wait since its last failure is not over): debug only, and its
/// `file-held` incident raised again, so that its threshold and reminders
/// count while it waits.
pub(super) fn waiting_to_retry(
    path: &std::path::Path,
    waiting: &super::failing::Waiting,
    log: &mut LogOnce,
    now: OffsetDateTime,
    alerter: &Alerter,
) {
    let file = display_name(path);
    debug!(%file, state = "failed", next_try_in_s = waiting.left.as_secs(), "file not tried at this listing: it waits after its last failure");
    raise_failing(path, &waiting.error, waiting.code, log, now, alerter);
}

/// Raises a file failing for a cause outside it as held, since it was
/// first seen failing (sent once it has lasted `held_minutes`).
fn raise_failing(
    path: &std::path::Path,
    error: &str,
    code: &str,
    log: &mut LogOnce,
    now: OffsetDateTime,
    alerter: &Alerter,
) {
    let file = display_name(path);
    let since = log.waiting_since(path, now);
    alerter.raise(
        file_incident(
            Event::FileHeld,
            &file,
            format!("file {file} cannot be processed now and stays in the inbox: {error}"),
        )
        .code(code)
        .fix("it is tried again, less often while it keeps failing (touch it to have it tried at the next listing); if it lasts, check the disk, the permissions and the store (stxd status)")
        .since(since),
    );
}

/// Logs a file whose side could not even be opened (its store locked or
/// unreadable, its secret missing): an error once, then debug while it
/// lasts; raised as held (with the error's code) for the alerts, sent once
/// it has lasted `held_minutes`, resolved when the file goes through.
pub(super) fn not_processed(
    path: &std::path::Path,
    e: &app::AppError,
    log: &mut LogOnce,
    now: OffsetDateTime,
    alerter: &Alerter,
) {
    let file = display_name(path);
    if log.again(path, Logged::Failed) {
        debug!(%file, error = %app::chain(e), "file still not processed");
    } else {
        error!(%file, error = %app::chain(e), code = e.code(),
            "file not processed; the next listing retries");
    }
    let since = log.waiting_since(path, now);
    alerter.raise(
        file_incident(
            Event::FileHeld,
            &file,
            format!("file {file} cannot be processed now and stays in the inbox: {}", app::chain(e)),
        )
        .code(e.code())
        .fix("the next listings retry it; if it lasts, check the store, the disk and the permissions (stxd check, stxd status)")
        .since(since),
    );
}

/// Logs a file held in the inbox: taken by another process (debug: nothing
/// to do), held for a sequence gap (warned once, alerted once past the
/// delay), or held for another reason (warned once).
fn held(
    config: &Config,
    h: &app::Handled,
    outcome: &Outcome,
    log: &mut LogOnce,
    now: OffsetDateTime,
    alerter: &Alerter,
) {
    let Outcome::Held { hold, reason } = outcome else {
        return;
    };
    let code = hold.code();
    let file = display_name(&h.file);
    let institution = h.institution.as_str();
    if outcome.is_taken() {
        // Another process is finishing it: nothing for ops to do.
        debug!(%file, institution, state = "held", code, "file taken by another stxd process");
        return;
    }
    // Held for a gap or another reason: raised with when it was first seen
    // held (sent once it lasted `held_minutes`).
    let since = log.waiting_since(&h.file, now);
    alerter.raise(
        file_incident(
            Event::FileHeld,
            &file,
            format!("file {file} is held in the inbox: {reason}"),
        )
        .code(code.to_string())
        .fix("see the reason: a missing earlier file to ask the sender for, or a setup to fix")
        .since(since),
    );
    if outcome.is_sequence_gap() {
        log.again(&h.file, Logged::Held);
        let alert_after = time::Duration::minutes(
            i64::try_from(config.daemon.gap_alert_minutes).unwrap_or(i64::MAX / 60),
        );
        match log.gap(&h.file, now, alert_after) {
            GapLog::First => {
                warn!(%file, institution, state = "held", code, reason = %reason,
                    "file held in the inbox: an earlier file is missing")
            }
            GapLog::Alert { since } => {
                gap_alert(config, &file, institution, reason, since);
                alerter.raise(
                    file_incident(
                        Event::SequenceGap,
                        &file,
                        format!("file {file} waits for a missing earlier sequence: {reason}"),
                    )
                    .code(code.to_string())
                    .fix("ask the sender for the missing file")
                    .since(since),
                );
            }
            GapLog::Quiet => {
                debug!(%file, institution, state = "held", code, "file still held")
            }
        }
    } else if log.again(&h.file, Logged::Held) {
        debug!(%file, institution, state = "held", code, "file still held");
    } else {
        warn!(%file, institution, state = "held", code, reason = %reason, "file held in the inbox");
    }
}

/// The error for a file held for a sequence gap past `[daemon]
/// gap_alert_minutes`: which sequence the receiver waits for, which one
/// came, since when.
fn gap_alert(config: &Config, file: &str, institution: &str, reason: &str, since: OffsetDateTime) {
    let parsed = crate::exchange::FileName::parse_manifest(file).ok();
    let (link, kind, found) = match &parsed {
        Some(n) => (n.link.as_str(), n.kind.as_str(), n.sequence),
        None => ("", "", 0),
    };
    let expected = match &parsed {
        Some(n) => match app::expected_sequence(config, &n.link, n.kind) {
            Ok(n) => n.to_string(),
            Err(e) => format!("unknown ({})", app::chain(&e)),
        },
        None => "unknown".to_owned(),
    };
    let since = since
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    error!(%file, institution, %link, kind, %expected, found, %since,
        alert_minutes = config.daemon.gap_alert_minutes, reason = %reason,
        "file held for a sequence gap too long: ask the sender for the missing file");
}
