//! `stxd runs`: the execution logs (the manual's "logs d'exécution") of every
//! run, export, import and command that changed a store.

use clap::Subcommand;
use serde_json::json;

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
        id: i64,
        /// The institution whose run it is (needed when the config serves several).
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
                    anyhow::anyhow!(
                        "expected a status among running, ok, partial, failed, parked, found {s:?}"
                    )
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
                    "inst", "run", "kind", "status", "started", "records"
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
        RunsCommand::Show { id, institution } => {
            let insts = institutions(config, institution.as_deref())?;
            let [inst] = insts.as_slice() else {
                anyhow::bail!(
                    "this config serves several institutions: say whose run with --institution"
                );
            };
            let store = app::open_store(config, inst)?;
            let Some(detail) = store.read(|c| runs::get(c, id))? else {
                eprintln!("stxd: {} has no run {id}", inst.code);
                return Ok(1);
            };
            print_detail(&inst.code.to_string(), &detail, json);
            Ok(0)
        }
    }
}

fn institutions<'c>(
    config: &'c Config,
    only: Option<&str>,
) -> anyhow::Result<Vec<&'c crate::config::Institution>> {
    match only {
        None => Ok(config.institutions.iter().collect()),
        Some(code) => config
            .institution(code)
            .map(|i| vec![i])
            .ok_or_else(|| anyhow::anyhow!("institution {code:?} is not in the config")),
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
        r.counts.total, r.counts.ok, r.counts.rejected
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
