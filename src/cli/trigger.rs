//! `stxd trigger JOB --link L [--now]`: asks the daemon to run a job now by
//! dropping the job's trigger file in the link's control folder
//! (`<state_dir>/control/<link>/<job>`), and says whether a daemon holds the
//! state lock to take it; when one does, waits (10 s by default, `--wait`,
//! none with `--no-wait`) for the job to run and says what it did
//! (`trigger_wait.rs`). With `--now`, runs the job in this process through
//! [`app::run_job`], the daemon's own code path, instead. An export with
//! nothing to send is an answer, not a refusal: exit 0, either way.

use std::path::Path;
use std::time::Duration;

use clap::Args;
use serde_json::json;

use super::trigger_wait::{self, Logged, Waited};
use super::{EXIT_FINDINGS, EXIT_OK, EXIT_USAGE};
use crate::app::{self, JobDone, TriggerWritten};
use crate::config::Config;
use crate::schedule::Job;
use crate::state_lock::Probe;
use crate::store::runs::RunStatus;

#[derive(Debug, Args)]
pub struct TriggerArgs {
    /// The job: export-seatplan, export-catalogue, export-contingent,
    /// export-sales, poll, apply-seatplan, apply-catalogue, apply-contingent,
    /// apply-sales.
    job: String,
    /// The link, as named in the config.
    #[arg(long)]
    link: String,
    /// Run the job in this process now instead of asking the daemon.
    #[arg(long)]
    now: bool,
    /// Return once the trigger is written, without waiting for the daemon
    /// to run the job.
    #[arg(long, conflicts_with_all = ["now", "wait"])]
    no_wait: bool,
    /// Wait at most this many seconds for the daemon to run the job and
    /// report what it did.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 10,
        conflicts_with = "now"
    )]
    wait: u64,
}

pub fn run(config: &Config, json: bool, args: TriggerArgs) -> anyhow::Result<u8> {
    let job = match args.job.parse::<Job>() {
        Ok(job) => job,
        Err(problem) => {
            eprintln!("stxd: unknown job: {problem}");
            return Ok(EXIT_USAGE);
        }
    };
    // An unknown link is a usage error (exit 2), as for `stxd status`.
    if let Err(problem) = config.require_link(&args.link) {
        eprintln!("stxd: {problem}");
        return Ok(EXIT_USAGE);
    }
    if args.now {
        return run_now(config, json, &args.link, job);
    }
    let daemon = match crate::state_lock::probe(&config.state_dir) {
        Probe::Held { pid } => Some(pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string())),
        Probe::Free | Probe::Unknown { .. } => None,
    };
    // Where the job's runs will be told from the older ones: read before
    // the trigger exists, and only when there is a daemon to wait for (no
    // store is opened otherwise).
    let marks = match &daemon {
        Some(_) if !args.no_wait => Some(trigger_wait::mark(config, &args.link, job)?),
        _ => None,
    };
    let (path, written) = app::write_trigger(config, &args.link, job)?;
    let waited = match &marks {
        Some(marks) => Some(trigger_wait::wait(
            config,
            &args.link,
            job,
            marks,
            Duration::from_secs(args.wait),
        )?),
        None => None,
    };
    let asked = Asked {
        job,
        link: &args.link,
        path: &path,
        written,
        daemon: daemon.as_deref(),
    };
    if json {
        outln!("{:#}", asked.json(waited.as_ref()));
    } else {
        asked.print(config, waited.as_ref());
    }
    Ok(waited.as_ref().map_or(EXIT_OK, exit_code))
}

/// A trigger written for the daemon.
struct Asked<'a> {
    job: Job,
    link: &'a str,
    path: &'a Path,
    written: TriggerWritten,
    daemon: Option<&'a str>,
}

/// 1 when a run the job logged failed, else 0 (nothing to send, a job
/// still pending or a stopped daemon included).
fn exit_code(waited: &Waited) -> u8 {
    match waited {
        Waited::Done(logged) if logged.iter().any(|l| l.run.status == RunStatus::Failed) => {
            EXIT_FINDINGS
        }
        _ => EXIT_OK,
    }
}

/// What a job that ran did, in a word: `written`, `refused`,
/// `nothing-to-send` (an export); `files` (a poll, an apply window);
/// `ran` (a reconciliation).
fn result(job: Job, logged: &[Logged]) -> &'static str {
    match (job, logged.last()) {
        (Job::Export(_), None) => "nothing-to-send",
        (Job::Export(_), Some(l)) if l.run.status == RunStatus::Failed => "refused",
        (Job::Export(_), Some(_)) => "written",
        (Job::Reconcile, _) => "ran",
        _ => "files",
    }
}

impl Asked<'_> {
    fn json(&self, waited: Option<&Waited>) -> serde_json::Value {
        let mut doc = json!({
            "trigger": self.path.display().to_string(), "job": self.job.name(), "link": self.link,
            "already_waiting": self.written == TriggerWritten::AlreadyWaiting,
            "daemon_pid": self.daemon,
        });
        let (state, result, runs, taken) = match waited {
            None => ("not-waited", None, Vec::new(), None),
            Some(Waited::DaemonStopped) => ("daemon-stopped", None, Vec::new(), None),
            Some(Waited::Pending { taken }) => ("pending", None, Vec::new(), Some(*taken)),
            Some(Waited::Done(logged)) => {
                let runs = logged
                    .iter()
                    .map(|l| {
                        json!({"institution": l.institution, "run": l.run.id, "kind": l.run.kind,
                            "status": l.run.status.as_str(), "file": l.run.file, "error": l.error})
                    })
                    .collect();
                ("done", Some(result(self.job, logged)), runs, None)
            }
        };
        doc["state"] = json!(state);
        doc["result"] = json!(result);
        doc["runs"] = json!(runs);
        doc["taken"] = json!(taken);
        doc
    }

    fn print(&self, config: &Config, waited: Option<&Waited>) {
        let (job, link) = (self.job, self.link);
        match self.written {
            TriggerWritten::Created => outln!("trigger:   {}", self.path.display()),
            TriggerWritten::AlreadyWaiting => {
                outln!("trigger:   {} (already waiting)", self.path.display())
            }
        }
        let Some(pid) = self.daemon else {
            outln!(
                "daemon:    none holds {}: {job} runs when the daemon starts (or run it here with --now)",
                crate::state_lock::path(&config.state_dir).display()
            );
            return;
        };
        match waited {
            None => outln!(
                "daemon:    running (pid {pid}): it runs {job} on {link} shortly; its log tells the result"
            ),
            Some(Waited::DaemonStopped) => outln!(
                "daemon:    (pid {pid}) stopped before running {job}: it runs at the daemon's next start"
            ),
            Some(Waited::Pending { taken }) => outln!(
                "daemon:    running (pid {pid}): {job} on {link} is {} after the wait; its log (or stxd runs list --link {link}) tells the result",
                if *taken {
                    "taken, queued or running"
                } else {
                    "not taken yet"
                }
            ),
            Some(Waited::Done(logged)) => {
                outln!("daemon:    running (pid {pid}): {job} on {link} ran");
                print_done(job, logged);
            }
        }
    }
}

/// The outcome of a job the daemon ran, from the runs it logged.
fn print_done(job: Job, logged: &[Logged]) {
    match result(job, logged) {
        "nothing-to-send" => outln!("result:    nothing to send: no file written"),
        "ran" => outln!(
            "result:    see stxd report reconcile --link (the daemon's log says whether the stores differ)"
        ),
        "files" if logged.is_empty() => outln!("result:    no file handled"),
        word => outln!("result:    {word}"),
    }
    for l in logged {
        outln!(
            "  run {} of {}: {} {}{}{}",
            l.run.id,
            l.institution,
            l.run.kind,
            l.run.status.as_str(),
            l.run
                .file
                .as_deref()
                .map(|f| format!(" {f}"))
                .unwrap_or_default(),
            l.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
    }
}

fn run_now(config: &Config, json: bool, link: &str, job: Job) -> anyhow::Result<u8> {
    // In place of the daemon, so not beside it (a poll would race on its
    // temporary names): the state lock, as `stxd run` takes it.
    let _lock = crate::state_lock::lock(&config.state_dir).map_err(|e| {
        anyhow::Error::new(e).context(format!(
            "--now runs a job only when no daemon does; without --now the daemon runs it: stxd trigger {job} --link {link}"
        ))
    })?;
    let now = time::OffsetDateTime::now_utc();
    let done = app::run_job(
        config,
        link,
        job,
        now,
        &mut app::Shares::default(),
        &|| false,
        &crate::transport::progress::Watch::none(),
    )?;
    let code = match &done {
        JobDone::Exported(e) => {
            let m = &e.manifest;
            if json {
                outln!(
                    "{:#}",
                    json!({"job": job.name(), "link": link, "written": true,
                        "manifest": e.outbox.join(m.manifest_name()).display().to_string(),
                        "sequence": m.sequence, "records": m.records, "run": e.run_id})
                );
            } else {
                outln!(
                    "{job}: written {} (sequence {}, {} records, run {})",
                    e.outbox.join(m.manifest_name()).display(),
                    m.sequence,
                    m.records,
                    e.run_id
                );
            }
            EXIT_OK
        }
        JobDone::Reconciled(report) => {
            if json {
                let mut doc = serde_json::to_value(report.as_ref())?;
                if let Some(obj) = doc.as_object_mut() {
                    obj.insert("consistent".into(), report.is_consistent().into());
                }
                outln!("{doc:#}");
            } else {
                out!("{}", crate::report::render_text(report));
            }
            if report.is_consistent() {
                EXIT_OK
            } else {
                EXIT_FINDINGS
            }
        }
        JobDone::Refused(e) if e.is_nothing_to_send() => {
            if json {
                outln!(
                    "{:#}",
                    json!({"job": job.name(), "link": link, "written": false,
                        "code": e.code(), "reason": e.to_string(), "run": e.run_id})
                );
            } else {
                outln!("{job}: nothing to send: {e}");
            }
            EXIT_OK
        }
        JobDone::Refused(e) => {
            if json {
                outln!(
                    "{:#}",
                    json!({"job": job.name(), "link": link, "written": false,
                        "code": e.code(), "reason": e.to_string(), "run": e.run_id})
                );
            } else {
                outln!("{job}: {}: {e} (code {})", super::export::said(e), e.code());
            }
            super::export::exit_code(e)
        }
        JobDone::Files {
            polled,
            handled,
            held,
        } => {
            let transfers = polled.as_ref().map(super::poll::transfers_json);
            if json {
                let held: Vec<_> = held
                    .iter()
                    .map(|h| json!({"file": crate::inbound::claim::display_name(&h.file), "reason": h.reason()}))
                    .collect();
                outln!(
                    "{:#}",
                    json!({"job": job.name(), "link": link, "transfers": transfers,
                        "handled": super::handled_json(handled), "held": held})
                );
            } else {
                if let Some(report) = polled {
                    super::poll::print_transfers(report);
                }
                if handled.is_empty() && held.is_empty() {
                    outln!("{job}: no file waiting");
                }
                super::print_handled(handled, "");
                for h in held {
                    outln!(
                        "{job}: {}: held: {}",
                        crate::inbound::claim::display_name(&h.file),
                        h.reason()
                    );
                }
            }
            if polled.as_ref().is_some_and(super::poll::transfers_failed) {
                EXIT_FINDINGS
            } else {
                super::handled_exit(handled)
            }
        }
    };
    Ok(code)
}
