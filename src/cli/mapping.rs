//! `stxd mapping …`: the distributor's ops manage the mapping table of one
//! link's manager (list, set, ignore, unset, CSV export and import, check).
//!
//! Parses arguments, opens the link's distributor store and calls
//! [`crate::domain::mapping`]; every command that changes the table records a
//! run (`mapping-set`, `mapping-ignore`, `mapping-unset`, `mapping-import`) in
//! the same transaction as the change. A refused import also records a failed
//! run, in its own transaction after the rollback, so ops find its reasons in
//! `runs`. No business rule lives here.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;

use super::{EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, findings_json, print_findings};
use crate::app;
use crate::config::{Config, Link};
use crate::domain::mapping::{self as domain, Change, Filter, ImportError, Row};
use crate::format::{FormatError, Position};
use crate::ident::TechId;
use crate::store::mapping::{MappingKind, MappingStatus};
use crate::store::{Role, Store};

/// The link whose distributor's mappings a command works on.
#[derive(Debug, Args)]
pub struct Target {
    /// The link (default: the only link whose distributor this config serves).
    #[arg(long, value_name = "LINK")]
    link: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum MappingCommand {
    /// List the mapping rows of the link's manager.
    List {
        #[command(flatten)]
        target: Target,
        /// Only the rows waiting for ops (status pending).
        #[arg(long)]
        pending: bool,
        /// Only rows of this kind (season, activity, vat_code, …).
        #[arg(long, value_name = "KIND")]
        kind: Option<String>,
    },
    /// Map a manager object to the local object with code LOCAL_CODE (kinds
    /// ops map by hand only: season, activity, vat_code, tariff_type,
    /// seat_category, audience_subcategory).
    Set {
        #[command(flatten)]
        target: Target,
        /// The mapping kind (season, activity, vat_code, tariff_type,
        /// seat_category, audience_subcategory).
        kind: String,
        /// The manager's technical id of the object (stxd mapping list).
        manager_id: String,
        /// The local object's code (stxd mapping codes KIND lists them).
        local_code: String,
    },
    /// Deliberately leave a manager object unmapped: records naming it are
    /// skipped instead of parking their file.
    Ignore {
        #[command(flatten)]
        target: Target,
        /// The mapping kind (stxd mapping list shows each row's).
        kind: String,
        /// The manager's technical id of the object.
        manager_id: String,
    },
    /// Put a filled or ignored mapping back to pending.
    Unset {
        #[command(flatten)]
        target: Target,
        /// The mapping kind (stxd mapping list shows each row's).
        kind: String,
        /// The manager's technical id of the object.
        manager_id: String,
    },
    /// Write the mapping rows as a CSV for a spreadsheet (stdout when FILE is
    /// absent; an existing FILE is never replaced).
    Export {
        #[command(flatten)]
        target: Target,
        /// The CSV file to write (created new; stdout when absent).
        file: Option<PathBuf>,
    },
    /// Apply an edited mapping CSV: every row is checked, and all apply or
    /// none does.
    Import {
        #[command(flatten)]
        target: Target,
        /// The edited CSV (the columns of `mapping export`).
        file: PathBuf,
    },
    /// List the local objects a mapping of KIND can point to (id, code,
    /// name): the codes `mapping set` and the CSV's local_code take.
    Codes {
        #[command(flatten)]
        target: Target,
        /// The mapping kind: season, activity, vat_code, tariff_type,
        /// seat_category, audience_subcategory (or any kind of
        /// `mapping list`).
        kind: String,
    },
    /// Check that no mapping is pending or points at a missing local object
    /// (exit 1 with findings).
    Check {
        #[command(flatten)]
        target: Target,
    },
}

/// Runs a `stxd mapping` command; returns the exit code.
pub fn run(config: &Config, json: bool, cmd: MappingCommand) -> anyhow::Result<u8> {
    match cmd {
        MappingCommand::List {
            target,
            pending,
            kind,
        } => {
            let kind = match kind.as_deref().map(parse_kind).transpose() {
                Ok(k) => k,
                Err(code) => return Ok(code),
            };
            let Some((_, manager, store)) = open(config, &target)? else {
                return Ok(EXIT_USAGE);
            };
            let filter = Filter {
                manager: Some(&manager),
                kind,
                status: pending.then_some(MappingStatus::Pending),
            };
            let rows = store.read(|c| domain::list(c, &filter))?;
            print_rows(&rows, json)?;
            Ok(EXIT_OK)
        }
        MappingCommand::Set {
            target,
            kind,
            manager_id,
            local_code,
        } => change(
            config,
            &target,
            "mapping-set",
            &kind,
            &manager_id,
            json,
            |tx, m, k, id| domain::set(tx, m, k, id, &local_code),
        ),
        MappingCommand::Ignore {
            target,
            kind,
            manager_id,
        } => change(
            config,
            &target,
            "mapping-ignore",
            &kind,
            &manager_id,
            json,
            domain::ignore,
        ),
        MappingCommand::Unset {
            target,
            kind,
            manager_id,
        } => change(
            config,
            &target,
            "mapping-unset",
            &kind,
            &manager_id,
            json,
            domain::unset,
        ),
        MappingCommand::Export { target, file } => export(config, &target, file.as_deref()),
        MappingCommand::Import { target, file } => import(config, &target, &file, json),
        MappingCommand::Codes { target, kind } => codes(config, &target, &kind, json),
        MappingCommand::Check { target } => {
            let Some((link, manager, store)) = open(config, &target)? else {
                return Ok(EXIT_USAGE);
            };
            let findings = store.read(|c| domain::check(c, &manager))?;
            if json {
                outln!(
                    "{:#}",
                    json!({"link": link.name, "manager": manager, "ok": findings.is_empty(),
                           "findings": findings_json(&findings)})
                );
            } else {
                let mut out = super::out::stdout();
                print_findings(
                    &mut out,
                    &format!("mappings of {manager} on link {}", link.name),
                    &findings,
                )?;
            }
            Ok(if findings.is_empty() {
                EXIT_OK
            } else {
                EXIT_FINDINGS
            })
        }
    }
}

/// `mapping codes KIND`: the distributor's objects of the kind's table, by
/// code (seats by number; rows and seats have no name).
fn codes(config: &Config, target: &Target, kind: &str, json: bool) -> anyhow::Result<u8> {
    let kind = match parse_kind(kind) {
        Ok(k) => k,
        Err(code) => return Ok(code),
    };
    let Some((link, _, store)) = open(config, target)? else {
        return Ok(EXIT_USAGE);
    };
    let rows = store.read(|c| domain::local_codes(c, kind))?;
    if json {
        let codes: Vec<_> = rows
            .iter()
            .map(|r| json!({"id": r.id, "code": r.code, "name": r.name}))
            .collect();
        outln!(
            "{:#}",
            json!({"link": link.name, "kind": kind.as_str(), "codes": codes})
        );
    } else if rows.is_empty() {
        outln!("no local {kind} yet: load your reference data first (stxd load)");
    } else {
        outln!("{:>8}  {:<8}  name", "id", "code");
        for r in &rows {
            outln!(
                "{:>8}  {:<8}  {}",
                r.id,
                r.code,
                r.name.as_deref().unwrap_or("")
            );
        }
        outln!("{} local {kind}(s)", rows.len());
    }
    Ok(EXIT_OK)
}

/// Parses a kind as ops type it; prints the refusal (a logical seat category
/// gets the manual's reason) and gives the usage exit code.
fn parse_kind(s: &str) -> Result<MappingKind, u8> {
    domain::parse_kind(s).map_err(|e| {
        eprintln!("stxd: {e}");
        EXIT_USAGE
    })
}

/// Opens the distributor store of the target link; `None` after printing a
/// usage problem.
fn open<'c>(
    config: &'c Config,
    target: &Target,
) -> anyhow::Result<Option<(&'c Link, String, Store)>> {
    let link = match config.distributor_link(target.link.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("stxd: {e}");
            return Ok(None);
        }
    };
    let (link, _, store) = app::open_side(config, &link.name, Role::Distributor)?;
    Ok(Some((link, link.manager.to_string(), store)))
}

/// Runs one single-row change and records it as a run.
fn change(
    config: &Config,
    target: &Target,
    run_kind: &str,
    kind: &str,
    manager_id: &str,
    json: bool,
    f: impl FnOnce(
        &rusqlite::Transaction<'_>,
        &str,
        MappingKind,
        TechId,
    ) -> Result<Change, crate::domain::DomainError>,
) -> anyhow::Result<u8> {
    let kind = match parse_kind(kind) {
        Ok(k) => k,
        Err(code) => return Ok(code),
    };
    let id = match TechId::parse(manager_id) {
        Ok(id) => id,
        Err(e) => {
            eprintln!("stxd: manager id: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    let link = match config.distributor_link(target.link.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("stxd: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    match app::change_mapping(config, link, run_kind, None, kind, id, f)? {
        Ok(done) => {
            let (c, resumed) = (done.change, done.resumed);
            if json {
                let mut doc = change_json(&c);
                doc["resumed"] = super::handled_json(&resumed);
                outln!("{doc:#}");
            } else {
                outln!("{c}");
                super::print_handled(&resumed, "resumed");
            }
            Ok(super::handled_exit(&resumed))
        }
        Err(e) => {
            eprintln!("stxd: nothing changed: {e}");
            Ok(EXIT_FINDINGS)
        }
    }
}

fn change_json(c: &Change) -> serde_json::Value {
    let state = |s: &domain::State| json!({"status": s.status.as_str(), "local_id": s.local_id, "local_code": s.local_code});
    json!({
        "kind": c.kind.as_str(),
        "manager_id": c.manager_id,
        "created": c.before.is_none(),
        "changed": c.changed(),
        "before": c.before.as_ref().map(state),
        "after": state(&c.after),
    })
}

fn print_rows(rows: &[Row], json: bool) -> anyhow::Result<()> {
    if json {
        let doc: Vec<_> = rows
            .iter()
            .map(|r| {
                json!({
                    "manager": r.manager,
                    "kind": r.kind.as_str(),
                    "manager_id": r.manager_id,
                    "manager_code": r.manager_code,
                    "manager_label": r.manager_label,
                    "status": r.status.as_str(),
                    "local_id": r.local_id,
                    "local_code": r.local_code,
                    "broken": r.is_broken(),
                    "first_seen": r.first_seen,
                    "last_seen": r.last_seen,
                    "first_file": r.first_file,
                })
            })
            .collect();
        outln!("{:#}", serde_json::Value::Array(doc));
        return Ok(());
    }
    let mut out = super::out::stdout();
    if rows.is_empty() {
        writeln!(out, "no mapping rows")?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<21} {:>12} {:<8} {:<8} {:<14} label",
        "kind", "manager_id", "code", "status", "local"
    )?;
    for r in rows {
        let local = match (&r.local_code, r.local_id) {
            (Some(code), _) => code.clone(),
            (None, Some(id)) => format!("BROKEN({id})"),
            (None, None) => "-".to_owned(),
        };
        writeln!(
            out,
            "{:<21} {:>12} {:<8} {:<8} {:<14} {}",
            r.kind.as_str(),
            r.manager_id,
            r.manager_code,
            r.status.as_str(),
            local,
            r.manager_label
        )?;
    }
    let pending = rows
        .iter()
        .filter(|r| r.status == MappingStatus::Pending)
        .count();
    writeln!(out, "{} row(s), {pending} pending", rows.len())?;
    Ok(())
}

/// Writes the export to FILE (through a temporary name, linked to FILE when
/// complete; an existing FILE is refused, never replaced) or to stdout.
fn export(config: &Config, target: &Target, file: Option<&Path>) -> anyhow::Result<u8> {
    let Some((_, manager, store)) = open(config, target)? else {
        return Ok(EXIT_USAGE);
    };
    let Some(path) = file else {
        let out = super::out::stdout();
        store.read(|c| domain::export(c, &manager, out))?;
        return Ok(EXIT_OK);
    };
    let name = path
        .file_name()
        .ok_or_else(|| super::Usage::err(format!("{} is not a file name", path.display())))?;
    let mut part_name = std::ffi::OsString::from(".");
    part_name.push(name);
    part_name.push(".part");
    let part = path.with_file_name(part_name);
    let written = (|| -> anyhow::Result<u64> {
        let f = std::fs::File::create(&part)
            .with_context(|| format!("cannot create {}", part.display()))?;
        let mut w = std::io::BufWriter::new(f);
        let n = store.read(|c| domain::export(c, &manager, &mut w))?;
        let f = w
            .into_inner()
            .map_err(|e| e.into_error())
            .with_context(|| format!("cannot write {}", part.display()))?;
        f.sync_all()
            .with_context(|| format!("cannot write {}", part.display()))?;
        // Linked, never renamed over: an existing file is never replaced
        // (the project's rule for every file it writes).
        std::fs::hard_link(&part, path).map_err(|e| {
            let problem = format!(
                "cannot write {} (if it exists, remove it or choose another name: an export never replaces a file): {e}",
                path.display()
            );
            // An existing FILE is refused input (1); anything else is a
            // failure to write (3).
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                super::Refused::err(problem)
            } else {
                anyhow::Error::new(e).context(problem)
            }
        })?;
        let _ = std::fs::remove_file(&part);
        Ok(n)
    })();
    match written {
        Ok(n) => {
            eprintln!(
                "stxd: {n} mapping row(s) of {manager} written to {}",
                path.display()
            );
            Ok(EXIT_OK)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            Err(e)
        }
    }
}

fn position_json(p: &Position) -> (serde_json::Value, serde_json::Value) {
    match p {
        Position::Line { line, field } => (json!(line), json!(field)),
        Position::Byte { line, .. } => (json!(line), serde_json::Value::Null),
        Position::File | Position::Record { .. } => {
            (serde_json::Value::Null, serde_json::Value::Null)
        }
    }
}

fn error_json(e: &FormatError) -> serde_json::Value {
    let (line, field) = position_json(&e.position);
    json!({"line": line, "field": field, "position": e.position.to_string(), "code": e.code, "problem": e.problem})
}

fn import(config: &Config, target: &Target, file: &Path, json: bool) -> anyhow::Result<u8> {
    // Opened here for the usage checks (which link, a store that opens);
    // the import opens its own.
    let Some((link, _, store)) = open(config, target)? else {
        return Ok(EXIT_USAGE);
    };
    let input = match std::fs::File::open(file) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("stxd: cannot read {}: {e}", file.display());
            return Ok(EXIT_FINDINGS);
        }
    };
    drop(store);
    let name = file.display().to_string();
    let outcome = app::import_mapping(config, link, input, &name, None)?;
    match outcome {
        Ok(app::MappingImported {
            summary: s,
            resumed,
            ..
        }) => {
            if json {
                let changes: Vec<_> = s.changes.iter().map(change_json).collect();
                outln!(
                    "{:#}",
                    json!({"file": name, "imported": true, "rows": s.rows, "created": s.created,
                           "changed": s.changed, "unchanged": s.unchanged, "changes": changes,
                           "resumed": super::handled_json(&resumed)})
                );
            } else {
                for c in &s.changes {
                    outln!("{c}");
                }
                outln!(
                    "imported {name}: {} row(s), {} created, {} changed, {} unchanged",
                    s.rows,
                    s.created,
                    s.changed,
                    s.unchanged
                );
                super::print_handled(&resumed, "resumed");
            }
            Ok(super::handled_exit(&resumed))
        }
        Err(ImportError::Rejected(errs)) => {
            if json {
                let errors: Vec<_> = errs.errors.iter().map(error_json).collect();
                outln!(
                    "{:#}",
                    json!({"file": name, "imported": false, "errors": errors, "more": errs.truncated})
                );
            } else {
                eprintln!(
                    "stxd: {name} refused, nothing changed ({} problem(s){}):",
                    errs.errors.len(),
                    if errs.truncated {
                        ", more not listed"
                    } else {
                        ""
                    }
                );
                for e in &errs.errors {
                    eprintln!("  {}: {}: {}", e.position, e.code, e.problem);
                }
            }
            Ok(EXIT_FINDINGS)
        }
        Err(ImportError::Domain(e)) => Err(e.into()),
    }
}
