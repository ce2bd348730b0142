//! `stxd runs`: the execution logs (the manual's "logs d'exécution") of every
//! run, export, import and command that changed a store.

use clap::Subcommand;
use serde_json::json;

use super::Usage;
use crate::app;
use crate::config::Config;
use crate::store::runs::{self, Filter, RunDetail, RunStatus};

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List runs, newest first.
    List {
        /// Only runs of this kind (import-catalogue, export-seatplan…).
        #[arg(long)]
        kind: Option<String>,
        /// Only runs with this status: running, ok, partial, failed, parked.
        #[arg(long)]
        status: Option<String>,
        /// Only runs of this link.
        #[arg(long)]
        link: Option<String>,
        /// Only this institution's runs (default: every institution of the config).
        #[arg(long)]
        institution: Option<String>,
        /// At most this many per institution.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Show one run with every message.
    Show {
        /// The run's id (stxd runs list).
        id: i64,
        /// The institution whose run it is: needed only when the id is a
        /// run of several institutions of the config.
        #[arg(long)]
        institution: Option<String>,
    },
}

pub fn run(config: &Config, json: bool, cmd: RunsCommand) -> anyhow::Result<u8> {
    match cmd {
        RunsCommand::List {
            kind,
            status,
            link,
            institution,
            limit,
        } => {
            let status = match status.as_deref() {
                None => None,
                Some(s) => Some(RunStatus::parse(s).ok_or_else(|| {
                    Usage::err(format!(
                        "--status: expected one of running, ok, partial, failed, parked, found {s:?}"
                    ))
                })?),
            };
            let filter = Filter {
                kind: kind.as_deref(),
                link: link.as_deref(),
                status,
                since: None,
                limit: Some(limit),
            };
            let mut rows = Vec::new();
            for inst in institutions(config, institution.as_deref())? {
                let store = app::open_store(config, inst)?;
                for r in store.read(|c| runs::list(c, &filter))? {
                    rows.push((inst.code.to_string(), r));
                }
            }
            rows.sort_by(|a, b| b.1.started.cmp(&a.1.started));
            if json {
                let list: Vec<_> = rows
                    .iter()
                    .map(|(i, r)| {
                        json!({"institution": i, "id": r.id, "kind": r.kind, "link": r.link,
                            "file": r.file, "started": r.started, "ended": r.ended,
                            "status": r.status.as_str(), "records": r.counts.total,
                            "ok": r.counts.ok, "rejected": r.counts.rejected})
                    })
                    .collect();
                outln!("{:#}", serde_json::Value::Array(list));
            } else {
                // The kind column fits the longest kind listed
                // (catalogue-assign-profile is 24 characters).
                let kind_width = rows.iter().map(|(_, r)| r.kind.len()).fold(20, usize::max);
                outln!(
                    "{:<8} {:>5}  {:<kind_width$} {:<8} {:<27} {:>7}  file",
                    "inst",
                    "run",
                    "kind",
                    "status",
                    "started",
                    "records"
                );
                for (i, r) in &rows {
                    outln!(
                        "{:<8} {:>5}  {:<kind_width$} {:<8} {:<27} {:>7}  {}",
                        i,
                        r.id,
                        r.kind,
                        r.status.as_str(),
                        r.started,
                        r.counts.total,
                        r.file.as_deref().unwrap_or("")
                    );
                }
            }
            Ok(0)
        }
        RunsCommand::Show { id, institution } => show(config, json, id, institution.as_deref()),
    }
}

/// `runs show ID`: the run of the one institution (of `--institution`, or
/// of the config) whose store has it; exit 1 when none has, 2 when several
/// do and `--institution` does not say whose.
fn show(config: &Config, json: bool, id: i64, institution: Option<&str>) -> anyhow::Result<u8> {
    let mut found = Vec::new();
    let insts = institutions(config, institution)?;
    for inst in &insts {
        let store = app::open_store(config, inst)?;
        if let Some(detail) = store.read(|c| runs::get(c, id))? {
            found.push((inst.code.to_string(), detail));
        }
    }
    match found.as_slice() {
        [(code, detail)] => {
            print_detail(code, detail, json);
            Ok(0)
        }
        [] => {
            let codes: Vec<String> = insts.iter().map(|i| i.code.to_string()).collect();
            eprintln!("stxd: no run {id} in {}", codes.join(" or "));
            Ok(super::EXIT_FINDINGS)
        }
        several => {
            let codes: Vec<&str> = several.iter().map(|(c, _)| c.as_str()).collect();
            let options: Vec<String> = codes.iter().map(|c| format!("--institution {c}")).collect();
            Err(Usage::err(format!(
                "run {id} exists in {}: add {}",
                join_and(&codes),
                options.join(" or ")
            )))
        }
    }
}

/// `A`, `A and B`, `A, B and C`.
fn join_and(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

fn institutions<'c>(
    config: &'c Config,
    only: Option<&str>,
) -> anyhow::Result<Vec<&'c crate::config::Institution>> {
    match only {
        None => Ok(config.institutions.iter().collect()),
        Some(code) => config.institution(code).map(|i| vec![i]).ok_or_else(|| {
            let known: Vec<String> = config
                .institutions
                .iter()
                .map(|i| i.code.to_string())
                .collect();
            Usage::err(format!(
                "institution {code:?} is not in the config (it has: {})",
                known.join(", ")
            ))
        }),
    }
}

fn print_detail(institution: &str, d: &RunDetail, json: bool) {
    let r = &d.run;
    if json {
        let messages: Vec<_> = d
            .messages
            .iter()
            .map(|m| json!({"seq": m.seq, "level": m.level.as_str(), "code": m.code, "location": m.location, "text": m.text}))
            .collect();
        outln!(
            "{:#}",
            json!({"institution": institution, "id": r.id, "kind": r.kind, "link": r.link,
                "file": r.file, "started": r.started, "ended": r.ended, "status": r.status.as_str(),
                "records": r.counts.total, "ok": r.counts.ok, "rejected": r.counts.rejected,
                "messages": messages})
        );
        return;
    }
    outln!(
        "run {} of {institution}: {} — {}",
        r.id,
        r.kind,
        r.status.as_str()
    );
    if let Some(link) = &r.link {
        outln!("link:     {link}");
    }
    if let Some(file) = &r.file {
        outln!("file:     {file}");
    }
    outln!("started:  {}", r.started);
    outln!("ended:    {}", r.ended.as_deref().unwrap_or("(running)"));
    outln!(
        "records:  {} ({} ok, {} rejected)",
        r.counts.total,
        r.counts.ok,
        r.counts.rejected
    );
    for m in &d.messages {
        let at = m
            .location
            .as_deref()
            .map(|l| format!(" [{l}]"))
            .unwrap_or_default();
        outln!("  {:<7} {}{at}: {}", m.level.as_str(), m.code, m.text);
    }
}
