//! The items of work and how the worker serves them: one at a time, on a
//! blocking thread (SQLite has one writer per store; one worker keeps it
//! simple and safe), a listing through [`super::scan`], a job through
//! [`app::run_job`] (the code path of `stxd trigger`), its trigger removed
//! once it ran to its end.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

use time::OffsetDateTime;

use super::scan::{self, ScanState};
use super::{control, report};
use crate::alert::{self, Alerter, Event, Incident};
use crate::app;
use crate::config::Config;
use crate::schedule::Job;

/// Where a job came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Origin {
    /// A `[[schedule]]` line fired.
    Schedule,
    /// A trigger file was taken ([`control`]): its taken name is removed
    /// once the job ran to its end.
    Trigger,
}

impl Origin {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Origin::Schedule => "schedule",
            Origin::Trigger => "trigger",
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One item of work for the blocking worker. Items run one at a time, in
/// the order queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Work {
    /// A listing of every inbox (and, when worth it, parked folder): at
    /// start, periodically, and after folder events.
    Scan,
    /// A job of a link, from a schedule or a trigger file.
    Job {
        link: String,
        job: Job,
        origin: Origin,
    },
    /// A console write, by its number; the loop keeps the task itself.
    Console(u64),
}

impl Work {
    /// The item in words, for the log.
    pub(super) fn label(&self) -> String {
        match self {
            Work::Scan => "scan".to_owned(),
            Work::Job { link, job, origin } => format!("{job} on {link} ({origin})"),
            Work::Console(n) => format!("console request {n}"),
        }
    }

    pub(super) fn is_job(&self, link: &str, job: Job) -> bool {
        matches!(self, Work::Job { link: l, job: j, .. } if l == link && *j == job)
    }

    pub(super) fn is_scan(&self) -> bool {
        matches!(self, Work::Scan)
    }
}

/// What serving an item hands back to the loop: the listings' state, and
/// why a job met a busy store, when it did (the loop runs it again).
pub(super) type Served = (ScanState, Option<String>);

/// Serves one work item on the blocking worker.
pub(super) fn serve(
    config: &Config,
    stop: &AtomicBool,
    state: ScanState,
    work: &Work,
    now: OffsetDateTime,
    alerter: &Alerter,
) -> Served {
    match work {
        Work::Scan => (scan::scan_once(config, stop, state, now, alerter), None),
        // Served by the loop with its task (`main_loop`); one whose task
        // is gone has nothing left to do.
        Work::Console(_) => (state, None),
        Work::Job { link, job, origin } => {
            let mut state = state;
            let span =
                tracing::info_span!("job", link = %link, job = %job, origin = origin.as_str());
            let _entered = span.enter();
            let ran = run_job(config, stop, link, *job, now, &mut state, alerter);
            if *origin == Origin::Trigger {
                match &ran {
                    Ran::Ended => control::job_ran(config, link, *job),
                    Ran::CutShort => info!(
                        "triggered job cut short by the stop: its trigger stays taken and the next start runs the job again"
                    ),
                    // The loop runs it again; its trigger stays taken
                    // until then, so that a stop meanwhile loses nothing.
                    Ran::Busy(_) => {}
                }
            }
            let busy = match ran {
                Ran::Busy(reason) => Some(reason),
                Ran::Ended | Ran::CutShort => None,
            };
            (state, busy)
        }
    }
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ran {
    /// To its end, failed or not.
    Ended,
    /// Stopped between two files by the daemon's stop (a listing job: poll,
    /// apply window).
    CutShort,
    /// It met a store another process kept busy ([`app::JobDone::found_busy`]),
    /// for this reason: the loop runs it again at its next periodic listing.
    Busy(String),
}

/// Runs a job through [`app::run_job`] (the code path of `stxd trigger`)
/// and logs what it did, at the level of what ops must do. A failure (an
/// error, an export refused by a failure of the machinery) raises
/// `job-failed` keyed by the link and job; a job that ran without one
/// resolves it. A job that found its store busy does neither: it runs
/// again soon, and the loop raises the alert if the store stays busy
/// (`main_loop`, [`BUSY_ALERT`]).
fn run_job(
    config: &Config,
    stop: &AtomicBool,
    link: &str,
    job: Job,
    now: OffsetDateTime,
    state: &mut ScanState,
    alerter: &Alerter,
) -> Ran {
    let stopping = || stop.load(Ordering::SeqCst);
    let watch = super::progress::logged(&config.state_dir);
    let done = app::run_job(config, link, job, now, &mut state.shares, &stopping, &watch);
    let cut_short = stopping() && matches!(&done, Ok(app::JobDone::Files { .. }));
    if let Ok(done) = &done
        && done.found_busy()
        && !cut_short
    {
        // The loop says it, once per wait (`main_loop`).
        return Ran::Busy(match done {
            app::JobDone::Refused(e) => e.to_string(),
            _ => {
                report::job_done(config, done, &mut state.log, now, alerter);
                "it left files their store was too busy for".to_owned()
            }
        });
    }
    let job_name = job.to_string();
    let key = alert::key(Event::JobFailed, &[link, &job_name]);
    let failed = match done {
        Ok(done) => {
            report::job_done(config, &done, &mut state.log, now, alerter);
            match &done {
                app::JobDone::Refused(e) if e.is_failure() => {
                    Some((e.code().to_owned(), e.to_string()))
                }
                _ => None,
            }
        }
        Err(e) => {
            let reason = app::chain(&e);
            error!(error = %reason, "job failed");
            Some(("job-failed".to_owned(), reason))
        }
    };
    match failed {
        Some((code, reason)) => alerter.raise(
            Incident::new(
                Event::JobFailed,
                key,
                format!("job {job} on link {link} failed: {reason}"),
            )
            .link(link)
            .code(code)
            .fix(format!(
                "see the daemon's log; `stxd trigger {job} --link {link}` runs it again"
            )),
        ),
        None => alerter.resolve(&key),
    }
    if cut_short { Ran::CutShort } else { Ran::Ended }
}

/// How long a job may keep finding its store busy before `job-failed` is
/// raised: as long as a command waits for a busy store by default
/// (`--busy-wait`).
pub(super) const BUSY_ALERT: std::time::Duration = std::time::Duration::from_secs(600);

/// The incident of a job that found its store busy for longer than
/// [`BUSY_ALERT`]; the job's next end resolves it as any `job-failed`.
pub(super) fn busy_incident(link: &str, job: Job, waited: std::time::Duration) -> Incident {
    let job_name = job.to_string();
    Incident::new(
        Event::JobFailed,
        alert::key(Event::JobFailed, &[link, &job_name]),
        format!(
            "job {job} on link {link} has found its store busy for {} s: another process keeps writing it (an stxd command applying a big file by hand?); the daemon runs the job again at each listing",
            waited.as_secs()
        ),
    )
    .link(link)
    .code("store-busy")
    .fix("see which stxd command holds the store (`ps`); once it ends, the job runs at the next listing")
}
