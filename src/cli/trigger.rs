//! `stxd trigger JOB --link L [--now]`: asks the daemon to run a job now by
//! dropping the job's trigger file in the link's control folder
//! (`<state_dir>/control/<link>/<job>`), and says whether a daemon holds the
//! state lock to take it. With `--now`, runs the job in this process
//! through [`app::run_job`], the daemon's own code path, instead.

use clap::Args;
use serde_json::json;

use super::{EXIT_FINDINGS, EXIT_OK, EXIT_USAGE};
use crate::app::{self, JobDone, TriggerWritten};
use crate::config::Config;
use crate::schedule::Job;
use crate::state_lock::Probe;

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
    let (path, written) = app::write_trigger(config, &args.link, job)?;
    let daemon = match crate::state_lock::probe(&config.state_dir) {
        Probe::Held { pid } => Some(pid.map_or_else(|| "unknown".to_owned(), |p| p.to_string())),
        Probe::Free | Probe::Unknown { .. } => None,
    };
    if json {
        outln!(
            "{:#}",
            json!({
                "trigger": path.display().to_string(), "job": job.name(), "link": args.link,
                "already_waiting": written == TriggerWritten::AlreadyWaiting,
                "daemon_pid": daemon,
            })
        );
    } else {
        match written {
            TriggerWritten::Created => outln!("trigger:   {}", path.display()),
            TriggerWritten::AlreadyWaiting => {
                outln!("trigger:   {} (already waiting)", path.display())
            }
        }
        match &daemon {
            Some(pid) => outln!(
                "daemon:    running (pid {pid}): it runs {job} on {} shortly; its log tells the result",
                args.link
            ),
            None => outln!(
                "daemon:    none holds {}: {job} runs when the daemon starts (or run it here with --now)",
                crate::state_lock::path(&config.state_dir).display()
            ),
        }
    }
    Ok(EXIT_OK)
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
    let done = app::run_job(config, link, job, now, &mut app::Shares::default(), &|| {
        false
    })?;
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
        JobDone::Refused(e) => {
            if json {
                outln!(
                    "{:#}",
                    json!({"job": job.name(), "link": link, "written": false,
                        "code": e.code(), "reason": e.to_string(), "run": e.run_id})
                );
            } else {
                outln!("{job}: refused: {e} (code {})", e.code());
            }
            EXIT_FINDINGS
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
