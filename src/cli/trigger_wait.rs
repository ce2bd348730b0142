//! `stxd trigger JOB --link L` without `--now`: waits for the running daemon to run the job, then says what it did, from the stores' run logs.
//!
//! The signal that the job ran: the daemon takes a trigger only by giving
//! it the private name `.taken.<job>`, and removes that name only once the
//! job ran to its end, failed or not (`daemon/control.rs`). So once neither
//! `<job>` nor `.taken.<job>` is in the link's control folder, the job asked
//! for has run (a trigger already waiting for the same job counts as this
//! one: the daemon runs it once for both). It is robust to a busy daemon
//! (the name stays while the job is queued) and to a crash (a taken name
//! left behind is run again at the next start, and the wait ends when the
//! daemon's lock is free).
//!
//! What the job did is then read from the run log of each store it writes
//! to: the runs of the link with an id above the newest one before the
//! trigger was written. An export logs one run (written, or refused with
//! its reason) except when it had nothing to send, the one outcome it does
//! not log; a poll or an apply window logs a run per file it handled. A
//! reconciliation logs no run: its report is `stxd report reconcile`.

use std::time::{Duration, Instant};

use crate::app;
use crate::config::Config;
use crate::schedule::Job;
use crate::state_lock::Probe;
use crate::store::Role;
use crate::store::runs::{self, Filter, Level, Run};

/// How often the control folder is looked at while waiting.
const POLL: Duration = Duration::from_millis(100);

/// The newest run of each store a job writes to, before its trigger.
pub(super) struct Marks(Vec<(Role, i64)>);

/// How the wait ended.
pub(super) enum Waited {
    /// The job ran; the runs it logged (institution, run, its first error).
    Done(Vec<Logged>),
    /// Still queued or running when the wait ended; whether it was taken.
    Pending { taken: bool },
    /// The daemon stopped (its lock is free) before the job ran.
    DaemonStopped,
}

/// A run the job logged.
pub(super) struct Logged {
    pub institution: String,
    pub run: Run,
    /// The run's first error message, when it has one.
    pub error: Option<String>,
}

/// The sides whose stores `job` logs its runs in, among those this config
/// serves: the sender of an export, the receiver of an apply window, both
/// for a poll; none for a reconciliation. (A job of a side not served is
/// refused by [`app::write_trigger`], in its own words.)
fn sides(config: &Config, link: &str, job: Job) -> Vec<Role> {
    let candidates: &[Role] = match job {
        Job::Export(_) | Job::Apply(_) => job.sides(),
        Job::Reconcile => &[],
        Job::Poll => &[Role::Manager, Role::Distributor],
    };
    let Ok(l) = config.require_link(link) else {
        return Vec::new();
    };
    candidates
        .iter()
        .copied()
        .filter(|&side| config.institution(l.side_code(side)).is_some())
        .collect()
}

/// Reads the newest run of each store `job` writes to (before its trigger
/// is written).
pub(super) fn mark(config: &Config, link: &str, job: Job) -> anyhow::Result<Marks> {
    let mut marks = Vec::new();
    for side in sides(config, link, job) {
        let (_, _, store) = app::open_side(config, link, side)?;
        marks.push((side, store.read(runs::last_id)?));
    }
    Ok(Marks(marks))
}

/// Waits up to `timeout` for the daemon to run `job` on `link`; see the
/// module docs.
pub(super) fn wait(
    config: &Config,
    link: &str,
    job: Job,
    marks: &Marks,
    timeout: Duration,
) -> anyhow::Result<Waited> {
    let dir = config.control_dir(link);
    let present = |name: &str| std::fs::symlink_metadata(dir.join(name)).is_ok();
    let taken_name = format!(".taken.{}", job.name());
    let deadline = Instant::now() + timeout;
    loop {
        let (waiting, taken) = (present(job.name()), present(&taken_name));
        if !waiting && !taken {
            return logged(config, link, job, marks).map(Waited::Done);
        }
        if !matches!(
            crate::state_lock::probe(&config.state_dir),
            Probe::Held { .. }
        ) {
            return Ok(Waited::DaemonStopped);
        }
        if Instant::now() >= deadline {
            return Ok(Waited::Pending { taken });
        }
        std::thread::sleep(POLL);
    }
}

/// The runs of `link` logged after `marks` (an export's of its own kind
/// only), oldest first.
fn logged(config: &Config, link: &str, job: Job, marks: &Marks) -> anyhow::Result<Vec<Logged>> {
    let kind = match job {
        Job::Export(kind) => Some(crate::outbound::export::run_kind(kind)),
        _ => None,
    };
    let filter = Filter {
        kind: kind.as_deref(),
        link: Some(link),
        status: None,
        since: None,
        limit: Some(1000),
    };
    let mut found = Vec::new();
    for &(side, last) in &marks.0 {
        let (_, inst, store) = app::open_side(config, link, side)?;
        let new: Vec<Run> = store
            .read(|c| runs::list(c, &filter))?
            .into_iter()
            .filter(|r| r.id > last)
            .collect();
        for run in new {
            let error = store
                .read(|c| runs::get(c, run.id))?
                .and_then(|d| d.messages.into_iter().find(|m| m.level == Level::Error))
                .map(|m| m.text);
            found.push(Logged {
                institution: inst.code.to_string(),
                run,
                error,
            });
        }
    }
    found.sort_by_key(|l| (l.run.started.clone(), l.run.id));
    Ok(found)
}
