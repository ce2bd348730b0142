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
//! (items in flight alone are not differences).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use rusqlite::{Connection, OpenFlags};

use super::{EXIT_FINDINGS, EXIT_OK};
use crate::app;
use crate::config::Config;
use crate::domain::mapping::neutralise;
use crate::domain::reconcile::{self, Item, Report, Sides, format_amounts, format_sums};
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
            let mut out = std::io::stdout().lock();
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
    let link = config.require_link(link_name).map_err(anyhow::Error::msg)?;
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
        anyhow::bail!(
            "the {role} {code} of link {link} is not served by this config: give a copy of its store with {flag} PATH"
        );
    }
    let (_, _, store) = app::open_side(config, link, role)?;
    Ok(Side::Store(store))
}

/// Opens a copy of another server's store read-only and checks it is the
/// store of `code` in `role` at this build's schema.
fn open_copy(path: &Path, role: Role, code: &str) -> anyhow::Result<Connection> {
    let shown = path.display();
    if !path.is_file() {
        anyhow::bail!(
            "{shown}: no such store file (expected a copy of the {role} {code}'s SQLite file)"
        );
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open {shown} read-only"))?;
    let app_id: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .with_context(|| format!("{shown}: not a readable SQLite database"))?;
    if app_id != store::APPLICATION_ID {
        anyhow::bail!("{shown}: not an stxd store (application id {app_id:#x})");
    }
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version != store::schema::latest() {
        anyhow::bail!(
            "{shown}: store at schema version {version}, this stxd reads version {}: use the same stxd version on both servers",
            store::schema::latest()
        );
    }
    let (found, found_role): (String, String) = conn
        .query_row("SELECT code, role FROM institution WHERE id = 1", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .with_context(|| format!("{shown}: no institution recorded"))?;
    if found != code || found_role != role.as_str() {
        anyhow::bail!(
            "{shown}: the store of {found} ({found_role}), expected the {role} {code} of the link"
        );
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

// ------------------------------------------------------------------ text

fn render_text(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "reconciliation of link {} ({} manager, {} distributor)",
        r.link, r.manager, r.distributor
    );
    let _ = writeln!(
        out,
        "{:<14} {:<25} {:<8} | {:>8} {:>8} {:>8} {:>5} {:>8} | {:>10} {:>5} {:>8} {:>8}",
        "performance",
        "start",
        "category",
        "allotted",
        "await",
        "returned",
        "sold",
        "refunded",
        "contingent",
        "sold",
        "refunded",
        "unsent"
    );
    let line = |out: &mut String, p: &str, start: &str, c: &str, s: &Sides| {
        let _ = writeln!(
            out,
            "{:<14} {:<25} {:<8} | {:>8} {:>8} {:>8} {:>5} {:>8} | {:>10} {:>5} {:>8} {:>8}",
            p,
            start,
            c,
            s.manager.allotted,
            s.manager.awaiting_ack,
            s.manager.returned,
            s.manager.sold,
            s.manager.refunded,
            s.distributor.in_contingent,
            s.distributor.sold,
            s.distributor.refunded,
            s.distributor.not_exported
        );
        let (m, d) = (
            format_amounts(&s.manager.amounts),
            format_amounts(&s.distributor.amounts),
        );
        if !m.is_empty() || !d.is_empty() {
            let _ = writeln!(
                out,
                "{:<50}   amounts: manager {} | distributor {}",
                "",
                if m.is_empty() { "-" } else { &m },
                if d.is_empty() { "-" } else { &d }
            );
        }
    };
    for row in &r.rows {
        line(
            &mut out,
            &format!("{} {}", row.performance, row.performance_code),
            &row.start,
            &row.seat_category_code,
            &row.sides,
        );
    }
    line(&mut out, "total", "", "", &r.totals);
    for v in &r.versions {
        let applied = v
            .applied
            .map_or_else(|| "none".to_owned(), |a| a.to_string());
        let _ = writeln!(
            out,
            "contingent {} {}: manager version {} (exported {}, acknowledged {}), distributor applied {applied}",
            v.performance, v.performance_code, v.version, v.exported, v.acknowledged
        );
    }
    let pa = &r.pending_account;
    let _ = writeln!(
        out,
        "pending account: manager {} (valid tickets {}); distributor active sales {}, of which in flight {}",
        format_sums(&pa.manager_balance),
        format_sums(&pa.manager_valid_tickets),
        format_sums(&pa.distributor_active_sales),
        format_sums(&pa.in_flight)
    );
    for (title, items) in [("difference", &r.differences), ("in flight", &r.in_flight)] {
        for i in items {
            let _ = writeln!(out, "{title}: {}: {}", i.code, i.detail);
        }
    }
    let _ = writeln!(
        out,
        "{}: {} difference(s), {} item(s) in flight",
        if r.is_consistent() {
            "consistent"
        } else {
            "NOT CONSISTENT"
        },
        r.differences.len(),
        r.in_flight.len()
    );
    out
}

// ------------------------------------------------------------------- csv

/// The CSV columns: one table, the `section` column saying what a row is
/// (`row`, `total`, `pending-account`, `difference`, `in-flight`).
pub const CSV_COLUMNS: [&str; 21] = [
    "section",
    "performance",
    "performance_code",
    "start",
    "seat_category",
    "seat_category_code",
    "manager_allotted",
    "manager_awaiting_ack",
    "manager_returned",
    "manager_sold",
    "manager_refunded",
    "manager_amounts",
    "distributor_in_contingent",
    "distributor_sold",
    "distributor_refunded",
    "distributor_not_exported",
    "distributor_amounts",
    "pending_account",
    "line",
    "code",
    "detail",
];

fn write_csv(r: &Report, out: &mut Vec<u8>) -> anyhow::Result<()> {
    out.extend_from_slice("\u{feff}".as_bytes());
    let mut w = csv::WriterBuilder::new().delimiter(b';').from_writer(out);
    w.write_record(CSV_COLUMNS)?;
    let counts = |s: &Sides| -> [String; 11] {
        [
            s.manager.allotted.to_string(),
            s.manager.awaiting_ack.to_string(),
            s.manager.returned.to_string(),
            s.manager.sold.to_string(),
            s.manager.refunded.to_string(),
            format_amounts(&s.manager.amounts),
            s.distributor.in_contingent.to_string(),
            s.distributor.sold.to_string(),
            s.distributor.refunded.to_string(),
            s.distributor.not_exported.to_string(),
            format_amounts(&s.distributor.amounts),
        ]
    };
    let mut record = |cells: Vec<String>| -> csv::Result<()> {
        w.write_record(cells.iter().map(|c| neutralise(c).into_owned()))
    };
    for row in &r.rows {
        let mut cells = vec![
            "row".to_owned(),
            row.performance.to_string(),
            row.performance_code.clone(),
            row.start.clone(),
            row.seat_category.to_string(),
            row.seat_category_code.clone(),
        ];
        cells.extend(counts(&row.sides));
        cells.extend([String::new(), String::new(), String::new(), String::new()]);
        record(cells)?;
    }
    let mut cells = vec!["total".to_owned()];
    cells.extend(std::iter::repeat_n(String::new(), 5));
    cells.extend(counts(&r.totals));
    cells.extend([String::new(), String::new(), String::new(), String::new()]);
    record(cells)?;
    let pa = &r.pending_account;
    for (code, sums) in [
        ("manager-balance", &pa.manager_balance),
        ("manager-valid-tickets", &pa.manager_valid_tickets),
        ("distributor-active-sales", &pa.distributor_active_sales),
        ("in-flight", &pa.in_flight),
    ] {
        let mut cells = vec!["pending-account".to_owned()];
        // Blank up to the last four columns (pending_account, line, code, detail).
        cells.extend(std::iter::repeat_n(String::new(), CSV_COLUMNS.len() - 5));
        cells.extend([
            format_sums(sums),
            String::new(),
            code.to_owned(),
            String::new(),
        ]);
        record(cells)?;
    }
    for (section, items) in [("difference", &r.differences), ("in-flight", &r.in_flight)] {
        for i in items {
            let mut cells = vec![
                section.to_owned(),
                i.performance.map(|p| p.to_string()).unwrap_or_default(),
            ];
            // Blank up to the last three columns (line, code, detail).
            cells.extend(std::iter::repeat_n(String::new(), CSV_COLUMNS.len() - 5));
            cells.extend([
                i.line.map(|l| l.to_string()).unwrap_or_default(),
                i.code.to_owned(),
                i.detail.clone(),
            ]);
            record(cells)?;
        }
    }
    w.flush()?;
    Ok(())
}

// ------------------------------------------------------------------ html

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}\
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right}\
th{background:#f2f2f2}td.l,th.l{text-align:left}tr.total td{font-weight:bold;background:#fafafa}\
.ok{color:#1a7f37;font-weight:bold}.bad{color:#b42318;font-weight:bold}\
li.diff{color:#b42318}li.fly{color:#9a6700}.code{font-family:monospace}\
.banner{padding:.6em 1em;border-radius:4px;display:inline-block}\
.banner.ok{background:#dafbe1}.banner.bad{background:#ffebe9}";

const SOLD: &str = "#2f6fba";
const UNSOLD: &str = "#9cc3e6";
const AWAIT: &str = "#e3a21a";

/// Per performance: (label, has difference, manager bar, distributor bar).
type Bars = (String, bool, [u64; 3], [u64; 2]);

fn bars(r: &Report) -> Vec<Bars> {
    let mut out: Vec<Bars> = Vec::new();
    for row in &r.rows {
        let m = &row.sides.manager;
        let d = &row.sides.distributor;
        let m_sold = m.sold.saturating_sub(m.refunded);
        let d_sold = d.sold.saturating_sub(d.refunded);
        let label = format!("{} {}", row.performance_code, row.start);
        let flagged = r
            .differences
            .iter()
            .any(|i| i.performance == Some(row.performance));
        let add_m = [m_sold, m.allotted.saturating_sub(m_sold), m.awaiting_ack];
        let add_d = [d_sold, d.in_contingent.saturating_sub(d_sold)];
        match out.last_mut() {
            Some(last) if last.0 == label => {
                for (a, b) in last.2.iter_mut().zip(add_m) {
                    *a += b;
                }
                for (a, b) in last.3.iter_mut().zip(add_d) {
                    *a += b;
                }
            }
            _ => out.push((label, flagged, add_m, add_d)),
        }
    }
    out
}

/// Stacked horizontal bars per performance: the manager's view (sold,
/// allotted unsold, awaiting acknowledgement) over the distributor's (sold,
/// in contingent unsold). Integer geometry only.
fn chart(r: &Report) -> String {
    const LABEL: u64 = 80;
    const WIDTH: u64 = 640;
    const ROW: u64 = 64;
    let data = bars(r);
    let max = data
        .iter()
        .map(|(_, _, m, d)| m.iter().sum::<u64>().max(d.iter().sum()))
        .max()
        .unwrap_or(0)
        .max(1);
    let height = 30 + ROW * data.len() as u64;
    let total_w = LABEL + WIDTH + 150;
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg width=\"{total_w}\" height=\"{height}\" role=\"img\" aria-label=\"places per performance\">"
    );
    let legend = [
        (SOLD, "sold"),
        (UNSOLD, "in contingent, unsold"),
        (AWAIT, "awaiting acknowledgement"),
    ];
    let mut x = 0;
    for (colour, text) in legend {
        let _ = write!(
            s,
            "<rect x=\"{x}\" y=\"4\" width=\"12\" height=\"12\" fill=\"{colour}\"/><text x=\"{}\" y=\"14\" font-size=\"12\">{text}</text>",
            x + 16
        );
        x += 40 + 8 * text.len() as u64;
    }
    for (i, (label, flagged, m, d)) in data.iter().enumerate() {
        let y = 26 + ROW * i as u64;
        let colour = if *flagged { "#b42318" } else { "#222" };
        let mark = if *flagged { " (differences)" } else { "" };
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{}\" font-size=\"13\" font-weight=\"bold\" fill=\"{colour}\">{}{mark}</text>",
            y + 12,
            esc(label)
        );
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{}\" font-size=\"11\">manager</text><text x=\"0\" y=\"{}\" font-size=\"11\">distributor</text>",
            y + 30,
            y + 48
        );
        for (row_y, values, colours) in [
            (y + 19, &m[..], &[SOLD, UNSOLD, AWAIT][..]),
            (y + 37, &d[..], &[SOLD, UNSOLD][..]),
        ] {
            let mut x = LABEL;
            for (v, colour) in values.iter().zip(colours) {
                let w = v * WIDTH / max;
                if w > 0 {
                    let _ = write!(
                        s,
                        "<rect x=\"{x}\" y=\"{row_y}\" width=\"{w}\" height=\"14\" fill=\"{colour}\"><title>{v}</title></rect>"
                    );
                }
                x += w;
            }
            let numbers: Vec<String> = values.iter().map(u64::to_string).collect();
            let _ = write!(
                s,
                "<text x=\"{}\" y=\"{}\" font-size=\"11\">{}</text>",
                x + 6,
                row_y + 11,
                numbers.join(" / ")
            );
        }
    }
    s.push_str("</svg>");
    s
}

fn render_html(r: &Report) -> String {
    let mut h = String::new();
    let title = format!("Reconciliation of link {}", r.link);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{CSS}</style></head><body>",
        esc(&title)
    );
    let _ = write!(
        h,
        "<h1>{}</h1><p>{} (manager) and {} (distributor).</p>",
        esc(&title),
        esc(&r.manager),
        esc(&r.distributor)
    );
    if r.is_consistent() {
        let _ = write!(
            h,
            "<p class=\"banner ok\">No difference between the two institutions' records ({} item(s) in flight).</p>",
            r.in_flight.len()
        );
    } else {
        let _ = write!(
            h,
            "<p class=\"banner bad\">{} difference(s) between the two institutions' records, listed below.</p>",
            r.differences.len()
        );
    }
    h.push_str("<h2>Places per performance</h2>");
    h.push_str(&chart(r));
    h.push_str("<h2>Per performance and seat category</h2><table><tr><th class=\"l\">performance</th><th class=\"l\">start</th><th class=\"l\">category</th>\
<th>allotted</th><th>awaiting ack</th><th>returned</th><th>sold</th><th>refunded</th><th class=\"l\">amounts (manager)</th>\
<th>in contingent</th><th>sold</th><th>refunded</th><th>not exported</th><th class=\"l\">amounts (distributor)</th></tr>");
    let cells = |h: &mut String, s: &Sides| {
        let (m, d) = (&s.manager, &s.distributor);
        let _ = write!(
            h,
            "<td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"l\">{}</td></tr>",
            m.allotted,
            m.awaiting_ack,
            m.returned,
            m.sold,
            m.refunded,
            esc(&format_amounts(&m.amounts)),
            d.in_contingent,
            d.sold,
            d.refunded,
            d.not_exported,
            esc(&format_amounts(&d.amounts))
        );
    };
    for row in &r.rows {
        let _ = write!(
            h,
            "<tr><td class=\"l\">{} {}</td><td class=\"l\">{}</td><td class=\"l\">{}</td>",
            row.performance,
            esc(&row.performance_code),
            esc(&row.start),
            esc(&row.seat_category_code)
        );
        cells(&mut h, &row.sides);
    }
    h.push_str("<tr class=\"total\"><td class=\"l\" colspan=\"3\">total</td>");
    cells(&mut h, &r.totals);
    h.push_str("</table>");
    let pa = &r.pending_account;
    let balance_class = if r
        .differences
        .iter()
        .any(|i| i.code.starts_with("pending-account"))
    {
        "bad"
    } else {
        "ok"
    };
    let _ = write!(
        h,
        "<h2>Pending account</h2><table><tr><th class=\"l\">balance at the manager</th><td class=\"{balance_class}\">{}</td></tr>\
<tr><th class=\"l\">valid tickets at the manager</th><td>{}</td></tr>\
<tr><th class=\"l\">active sales at the distributor</th><td>{}</td></tr>\
<tr><th class=\"l\">of which not yet at the manager (in flight)</th><td>{}</td></tr></table>",
        esc(&format_sums(&pa.manager_balance)),
        esc(&format_sums(&pa.manager_valid_tickets)),
        esc(&format_sums(&pa.distributor_active_sales)),
        esc(&format_sums(&pa.in_flight))
    );
    h.push_str("<h2>Contingent versions</h2><table><tr><th class=\"l\">performance</th><th>manager version</th><th>exported</th><th>acknowledged</th><th>applied by the distributor</th></tr>");
    for v in &r.versions {
        let _ = write!(
            h,
            "<tr><td class=\"l\">{} {}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            v.performance,
            esc(&v.performance_code),
            v.version,
            v.exported,
            v.acknowledged,
            v.applied
                .map_or_else(|| "none".to_owned(), |a| a.to_string())
        );
    }
    h.push_str("</table>");
    let list = |h: &mut String, title: &str, class: &str, items: &[Item], none: &str| {
        let _ = write!(h, "<h2>{title} ({})</h2>", items.len());
        if items.is_empty() {
            let _ = write!(h, "<p>{none}</p>");
            return;
        }
        h.push_str("<ul>");
        for i in items {
            let _ = write!(
                h,
                "<li class=\"{class}\"><span class=\"code\">{}</span>: {}</li>",
                esc(i.code),
                esc(&i.detail)
            );
        }
        h.push_str("</ul>");
    };
    list(
        &mut h,
        "Differences",
        "diff",
        &r.differences,
        "None: both institutions' records agree.",
    );
    list(
        &mut h,
        "In flight",
        "fly",
        &r.in_flight,
        "Nothing travelling.",
    );
    h.push_str("</body></html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::reconcile::{
        Amount, DistributorSide, ManagerSide, PendingAccount, Row, Sum,
    };

    fn report(differences: Vec<Item>) -> Report {
        let sides = Sides {
            manager: ManagerSide {
                allotted: 10,
                awaiting_ack: 2,
                returned: 0,
                sold: 3,
                refunded: 1,
                amounts: vec![Amount {
                    vat_code: 1101,
                    vat: "TVA55".into(),
                    currency: "EUR".into(),
                    minor: 123_450,
                }],
            },
            distributor: DistributorSide {
                in_contingent: 10,
                sold: 3,
                refunded: 1,
                not_exported: 0,
                amounts: vec![],
            },
        };
        Report {
            link: "opera-tourism".into(),
            manager: "OPERA".into(),
            distributor: "TOURISM".into(),
            rows: vec![Row {
                performance: 1701,
                performance_code: "<TRAV>".into(),
                start: "2027-01-15T20:00:00+01:00".into(),
                seat_category: 2001,
                seat_category_code: "=CAT1".into(),
                sides: sides.clone(),
            }],
            totals: sides,
            versions: vec![],
            pending_account: PendingAccount {
                manager_balance: vec![Sum {
                    currency: "EUR".into(),
                    minor: 123_450,
                }],
                ..PendingAccount::default()
            },
            differences,
            in_flight: vec![],
        }
    }

    #[test]
    fn html_escapes_and_flags() {
        let item = Item {
            code: "amount-differs",
            performance: Some(1701),
            line: Some(3),
            detail: "a <b> & c".into(),
        };
        let h = render_html(&report(vec![item]));
        assert!(h.contains("&lt;TRAV&gt;"));
        assert!(h.contains("a &lt;b&gt; &amp; c"));
        assert!(h.contains("1,234.50 EUR"));
        assert!(h.contains("banner bad"));
        assert!(h.contains("<svg"));
        assert!(!h.contains("<script"));
    }

    #[test]
    fn csv_neutralises_formula_cells_and_keeps_one_width() {
        let mut buf = Vec::new();
        write_csv(&report(vec![]), &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(text.contains("'=CAT1"));
        let mut rd = csv::ReaderBuilder::new()
            .delimiter(b';')
            .from_reader(text.as_bytes());
        assert_eq!(rd.headers().unwrap().len(), CSV_COLUMNS.len());
        let widths: Vec<usize> = rd.records().map(|r| r.unwrap().len()).collect();
        // one row, the total, four pending-account rows
        assert_eq!(widths, vec![CSV_COLUMNS.len(); 1 + 1 + 4]);
    }
}
