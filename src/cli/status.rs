//! `stxd status [--link L]`: prints [`crate::status::collect`]'s result, a
//! compact block per link and side, or the stable JSON object (`--json`).
//! Reads only; safe while the daemon runs.

use std::io::Write;

use crate::config::Config;
use crate::status::{self, Folder, LastFile, LinkStatus, Status};

use super::{EXIT_FINDINGS, EXIT_OK, EXIT_USAGE};

/// `config_name` is the file the config came from (printed first, so ops
/// see which one was read).
pub fn run(
    config: &Config,
    config_name: &str,
    json: bool,
    link: Option<&str>,
) -> anyhow::Result<u8> {
    let status = match status::collect(config, link, time::OffsetDateTime::now_utc()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("stxd: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    let mut out = super::out::stdout();
    if json {
        let mut value = serde_json::to_value(&status)?;
        if let Some(object) = value.as_object_mut() {
            object.insert("config".into(), config_name.into());
        }
        writeln!(out, "{}", serde_json::to_string_pretty(&value)?)?;
    } else {
        writeln!(out, "config: {config_name}")?;
        print(&mut out, &status)?;
    }
    let unreadable = status.links.iter().any(|l| {
        l.problem.is_some()
            || [&l.inbox, &l.parked, &l.outbox]
                .iter()
                .any(|f| f.problem.is_some())
    });
    Ok(if unreadable { EXIT_FINDINGS } else { EXIT_OK })
}

fn print(out: &mut impl Write, s: &Status) -> std::io::Result<()> {
    let daemon = match (&s.daemon.problem, s.daemon.running, s.daemon.pid) {
        (Some(p), _, _) => format!("unknown ({p})"),
        (None, true, Some(pid)) => format!("running (pid {pid})"),
        (None, true, None) => "running (pid unknown)".to_owned(),
        (None, false, _) => "not running".to_owned(),
    };
    writeln!(out, "daemon: {daemon}; state {}", s.state_dir.display())?;
    if let Some(r) = &s.daemon.reading {
        writeln!(out, "        {}", r.describe())?;
    }
    for f in &s.daemon.retrying {
        writeln!(out, "        {}", f.describe())?;
    }
    writeln!(out, "at:     {}", s.generated)?;
    for l in &s.links {
        writeln!(out)?;
        print_link(out, l)?;
    }
    writeln!(out)?;
    if s.next_runs.is_empty() {
        writeln!(out, "next scheduled runs: none")?;
    } else {
        writeln!(out, "next scheduled runs:")?;
        for r in &s.next_runs {
            let link = &r.link;
            writeln!(out, "  {}  {:<20} {link}", r.at, r.job)?;
        }
    }
    Ok(())
}

fn print_link(out: &mut impl Write, l: &LinkStatus) -> std::io::Result<()> {
    writeln!(
        out,
        "link {}: {} ({}), {}",
        l.link, l.institution, l.side, l.transport
    )?;
    if let Some(p) = &l.problem {
        writeln!(out, "  problem: {p}")?;
    }
    print_files(out, "in", &l.last_in)?;
    print_files(out, "out", &l.last_out)?;
    if let Some(n) = l.pending_mappings {
        let hint = if n > 0 {
            " (stxd mapping list --pending)"
        } else {
            ""
        };
        writeln!(out, "  pending mappings: {n}{hint}")?;
    }
    print_folder(out, "inbox", "waiting", &l.inbox)?;
    for h in &l.held {
        writeln!(out, "    {}: {}", h.file, h.reason)?;
    }
    print_folder(out, "parked", "waiting for mappings", &l.parked)?;
    print_folder(out, "outbox", "not yet taken by the peer", &l.outbox)?;
    // Whatever its age: a refused file waits in error/ until ops retry or
    // remove it.
    print_folder(
        out,
        "error/ now",
        "refused, waiting for ops (read each .reason; fix the cause, then stxd retry FILE; or remove the pair)",
        &l.error,
    )?;
    if l.attention > 0 {
        writeln!(
            out,
            "  needs attention: {} file{} ({} in error/, {} in quarantine/, {} held in the inbox)",
            l.attention,
            if l.attention == 1 { "" } else { "s" },
            l.error.count,
            l.quarantine.len(),
            l.held.len()
        )?;
    }
    let e = &l.errors_24h;
    writeln!(
        out,
        "  errors (24h): {} failed run{}, {} file{} put in error/",
        e.runs.len(),
        if e.runs.len() == 1 { "" } else { "s" },
        e.files.len(),
        if e.files.len() == 1 { "" } else { "s" },
    )?;
    for r in &e.runs {
        writeln!(
            out,
            "    {}  run {:<5} {:<18} {}  {}: {}",
            r.started,
            r.run,
            r.kind,
            r.file.as_deref().unwrap_or("-"),
            r.code.as_deref().unwrap_or("-"),
            r.reason.as_deref().unwrap_or("(no message)")
        )?;
    }
    for f in &e.files {
        writeln!(out, "    error/{f}")?;
    }
    if !l.quarantine.is_empty() {
        writeln!(
            out,
            "  quarantine: {} file{} set aside (not for this folder; fix the cause, then stxd retry):",
            l.quarantine.len(),
            if l.quarantine.len() == 1 { "" } else { "s" }
        )?;
        for q in &l.quarantine {
            writeln!(
                out,
                "    quarantine/{}  {}: {}",
                q.file,
                q.code.as_deref().unwrap_or("-"),
                q.reason.as_deref().unwrap_or("(no reason)")
            )?;
        }
    }
    Ok(())
}

fn print_files(out: &mut impl Write, way: &str, files: &[LastFile]) -> std::io::Result<()> {
    for (i, f) in files.iter().enumerate() {
        let label = if i == 0 { way } else { "" };
        match &f.file {
            Some(j) => writeln!(
                out,
                "  {label:<4} {:<10} seq {:<5} {:<9} {}  {}",
                f.kind, j.sequence, j.state, j.time, j.name
            )?,
            None => writeln!(out, "  {label:<4} {:<10} -", f.kind)?,
        }
    }
    Ok(())
}

fn print_folder(out: &mut impl Write, name: &str, what: &str, f: &Folder) -> std::io::Result<()> {
    if let Some(p) = &f.problem {
        return writeln!(out, "  {name}: {p}");
    }
    write!(out, "  {name}: {} {what}", f.count)?;
    const SHOWN: usize = 5;
    if !f.files.is_empty() {
        let more = f.files.len().saturating_sub(SHOWN);
        let names = f.files[..f.files.len().min(SHOWN)].join(", ");
        if more > 0 {
            write!(out, ": {names} and {more} more")?;
        } else {
            write!(out, ": {names}")?;
        }
    }
    writeln!(out)?;
    if !f.others.is_empty() {
        let more = f.others.len().saturating_sub(SHOWN);
        let names = f.others[..f.others.len().min(SHOWN)].join(", ");
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        writeln!(
            out,
            "  {name}: {} other file{} never taken (no manifest beside it, or not a manifest name): {names}{more}",
            f.others.len(),
            if f.others.len() == 1 { "" } else { "s" }
        )?;
    }
    Ok(())
}
