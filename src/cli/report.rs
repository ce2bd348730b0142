//! `stxd report reconcile --link L [--csv FILE] [--html FILE]`: the manager's
//! and the distributor's records of a link side by side, every difference
//! named ([`crate::domain::reconcile`]).
//!
//! Opens both stores (each from the config when it serves that side, else
//! from a copy given with `--manager-store` / `--distributor-store`, opened
//! read-only), reads one snapshot of each, and prints the report: a table,
//! or JSON with `--json`; `--csv` and `--html` also write it to files (the
//! HTML is one self-contained page: inline CSS and SVG, no script, nothing
//! fetched). Exit 0 when the records agree, 1 when there is a difference
//! (items in flight alone are not differences). The renderers are
//! [`crate::report`]'s; this module parses the arguments, opens the stores,
//! writes the files, prints and picks the exit code.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use rusqlite::{Connection, OpenFlags};

use super::{EXIT_FINDINGS, EXIT_OK, Refused, Usage};
use crate::app;
use crate::config::Config;
use crate::domain::reconcile::{self, Report};
use crate::report::{render_html, render_text, write_csv};
use crate::store::{self, Role, Store};

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Compare the manager's and the distributor's records of a link: per
    /// performance × seat category, allotted, awaiting acknowledgement, sold,
    /// refunded, amounts by VAT code; the pending-account balance; every
    /// difference flagged, files still travelling listed as in flight.
    /// Exit 0 when they agree, 1 when they differ.
    Reconcile {
        /// The link, as named in the config.
        #[arg(long)]
        link: String,
        /// Also write the report as CSV (`;`-separated, UTF-8 with BOM).
        #[arg(long, value_name = "FILE")]
        csv: Option<PathBuf>,
        /// Also write the report as one self-contained HTML page.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// The manager's store, when this config does not serve the manager:
        /// a copy of its SQLite file (make it with `sqlite3 FILE ".backup
        /// COPY"`), opened read-only.
        #[arg(long, value_name = "PATH")]
        manager_store: Option<PathBuf>,
        /// The distributor's store, when this config does not serve the
        /// distributor: a copy of its SQLite file, opened read-only.
        #[arg(long, value_name = "PATH")]
        distributor_store: Option<PathBuf>,
    },
}

pub fn run(config: &Config, json: bool, cmd: ReportCommand) -> anyhow::Result<u8> {
    match cmd {
        ReportCommand::Reconcile {
            link,
            csv,
            html,
            manager_store,
            distributor_store,
        } => {
            let report = reconcile(
                config,
                &link,
                manager_store.as_deref(),
                distributor_store.as_deref(),
            )?;
            if let Some(path) = &csv {
                let mut buf = Vec::new();
                write_csv(&report, &mut buf)?;
                write_file(path, &buf)?;
            }
            if let Some(path) = &html {
                write_file(path, render_html(&report).as_bytes())?;
            }
            // Written, not printed: a closed pipe (`| head`) is an error
            // to report, not a panic.
            let mut out = super::out::stdout();
            if json {
                let mut doc = serde_json::to_value(&report)?;
                if let Some(obj) = doc.as_object_mut() {
                    obj.insert("consistent".into(), report.is_consistent().into());
                }
                writeln!(out, "{doc:#}")?;
            } else {
                out.write_all(render_text(&report).as_bytes())?;
                for (what, path) in [("csv", &csv), ("html", &html)] {
                    if let Some(p) = path {
                        writeln!(out, "{what} written: {}", p.display())?;
                    }
                }
            }
            out.flush()?;
            Ok(if report.is_consistent() {
                EXIT_OK
            } else {
                EXIT_FINDINGS
            })
        }
    }
}

/// One side's store: the config's, or a read-only copy.
enum Side {
    Store(Store),
    Copy(Connection),
}

impl Side {
    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, crate::domain::DomainError>,
    ) -> Result<T, crate::domain::DomainError> {
        match self {
            Side::Store(s) => s.read(f),
            Side::Copy(c) => {
                let tx = c.unchecked_transaction()?;
                let value = f(&tx);
                let _ = tx.rollback();
                value
            }
        }
    }
}

fn reconcile(
    config: &Config,
    link_name: &str,
    manager_store: Option<&Path>,
    distributor_store: Option<&Path>,
) -> anyhow::Result<Report> {
    let link = config.require_link(link_name).map_err(Usage::err)?;
    let manager = open(
        config,
        link_name,
        Role::Manager,
        link.manager.as_str(),
        manager_store,
    )?;
    let distributor = open(
        config,
        link_name,
        Role::Distributor,
        link.distributor.as_str(),
        distributor_store,
    )?;
    let report = manager.read(|m| {
        distributor.read(|d| reconcile::reconcile(m, d, &link.name, link.manager.as_str()))
    })?;
    Ok(report)
}

fn open(
    config: &Config,
    link: &str,
    role: Role,
    code: &str,
    path: Option<&Path>,
) -> anyhow::Result<Side> {
    if let Some(path) = path {
        return open_copy(path, role, code).map(Side::Copy);
    }
    if config.institution(code).is_none() {
        let flag = match role {
            Role::Manager => "--manager-store",
            Role::Distributor => "--distributor-store",
        };
        return Err(Usage::err(format!(
            "the {role} {code} of link {link} is not served by this config: give a copy of its store with {flag} PATH"
        )));
    }
    let (_, _, store) = app::open_side(config, link, role)?;
    Ok(Side::Store(store))
}

/// Opens a copy of another server's store read-only and checks it is the
/// store of `code` in `role` at this build's schema.
fn open_copy(path: &Path, role: Role, code: &str) -> anyhow::Result<Connection> {
    let shown = path.display();
    if !path.is_file() {
        return Err(Refused::err(format!(
            "{shown}: no such store file (expected a copy of the {role} {code}'s SQLite file)"
        )));
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open {shown} read-only"))?;
    let app_id: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(|e| Refused::err(format!("{shown}: not a readable SQLite database: {e}")))?;
    if app_id != store::APPLICATION_ID {
        return Err(Refused::err(format!(
            "{shown}: not an stxd store (application id {app_id:#x})"
        )));
    }
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version != store::schema::latest() {
        return Err(Refused::err(format!(
            "{shown}: store at schema version {version}, this stxd reads version {}: use the same stxd version on both servers",
            store::schema::latest()
        )));
    }
    let (found, found_role): (String, String) = conn
        .query_row("SELECT code, role FROM institution WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .with_context(|| format!("{shown}: no institution recorded"))?;
    if found != code || found_role != role.as_str() {
        return Err(Refused::err(format!(
            "{shown}: the store of {found} ({found_role}), expected the {role} {code} of the link"
        )));
    }
    Ok(conn)
}

/// Writes `bytes` to `path` whole or not at all: a temporary name beside it,
/// synced, then renamed.
fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file name", path.display()))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(".part");
    let tmp = path.with_file_name(tmp_name);
    // A report the user names is replaced on purpose (a rerun refreshes
    // it); the temporary name keeps a reader from seeing half a page.
    #[allow(clippy::disallowed_methods)]
    let result = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}
