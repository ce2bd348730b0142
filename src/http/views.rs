//! The read-only pages: links (what `stxd status` says, with the trigger
//! buttons), runs (filterable, each with its messages), files (by folder,
//! with reasons and retry) and the live reconciliation report.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::auth::{Principal, button};
use super::page::{esc, layout, url};
use super::{AppState, blocking};
use crate::config::{Config, Link, Transport};
use crate::exchange::Role;
use crate::schedule::Job;
use crate::status::{self, Folder, LinkStatus};
use crate::store::runs::{self, RunStatus};

/// The jobs a console may trigger.
const TRIGGERS: [&str; 6] = [
    "export-seatplan",
    "export-catalogue",
    "export-contingent",
    "export-sales",
    "poll",
    "reconcile",
];

/// The jobs of `link` this config can run (each side it needs served).
pub(crate) fn triggers(config: &Config, link: &Link) -> Vec<Job> {
    TRIGGERS
        .iter()
        .filter_map(|n| n.parse::<Job>().ok())
        .filter(|job| match job {
            Job::Poll => matches!(link.transport, Transport::Sftp { .. }),
            _ => job
                .sides()
                .iter()
                .all(|s| config.institution(link.side_code(*s)).is_some()),
        })
        .collect()
}

fn folder_line(name: &str, f: &Folder) -> String {
    let problem = f
        .problem
        .as_deref()
        .map(|p| format!(" <span class=\"bad\">{}</span>", esc(p)))
        .unwrap_or_default();
    format!("{name}: {}{problem}", f.count)
}

fn link_block(config: &Config, l: &LinkStatus, out: &mut String, csrf: &str) {
    let _ = write!(
        out,
        "<h2>{} · {} ({})</h2>",
        esc(&l.link),
        l.side,
        esc(&l.institution)
    );
    if let Some(p) = &l.problem {
        let _ = write!(out, "<p class=\"err\">{}</p>", esc(p));
    }
    out.push_str("<table><tr><th>way</th><th>kind</th><th>last file</th></tr>");
    let ways = [("in", &l.last_in), ("out", &l.last_out)];
    for (way, last) in ways
        .iter()
        .flat_map(|(w, v)| v.iter().map(move |f| (*w, f)))
    {
        let file = match &last.file {
            Some(f) => format!(
                "#{} {} <em>{}</em> {}",
                f.sequence,
                esc(&f.name),
                esc(&f.state),
                esc(&f.time)
            ),
            None => "-".to_owned(),
        };
        let _ = write!(
            out,
            "<tr><td>{way}</td><td>{}</td><td>{file}</td></tr>",
            last.kind
        );
    }
    out.push_str("</table><ul>");
    let _ = write!(
        out,
        "<li>transport: {}</li><li>{}</li><li>{}</li><li>{}</li><li>{}</li><li>quarantine: {}</li>",
        l.transport,
        folder_line("inbox", &l.inbox),
        folder_line("parked", &l.parked),
        folder_line("outbox", &l.outbox),
        folder_line("error", &l.error),
        l.quarantine.len()
    );
    if let Some(n) = l.pending_mappings {
        let _ = write!(
            out,
            "<li>pending mappings: <a href=\"/mapping?link={}\">{n}</a></li>",
            url(&l.link)
        );
    }
    for h in &l.held {
        let _ = write!(out, "<li>held: {}: {}</li>", esc(&h.file), esc(&h.reason));
    }
    out.push_str("</ul>");
    if let Some(link) = config.links.iter().find(|k| k.name == l.link) {
        for job in triggers(config, link) {
            if job.sides().first().is_none_or(|s| *s == l.side) {
                let b = button(
                    csrf,
                    "/trigger",
                    &[("link", &l.link), ("job", job.name())],
                    job.name(),
                );
                let id = format!("<button id=\"trigger-{}-{}\" ", l.side, job.name());
                out.push_str(&b.replace("<button ", &id));
                out.push(' ');
            }
        }
        if triggers(config, link).contains(&Job::Reconcile) && l.side == Role::Manager {
            let _ = write!(
                out,
                " <a href=\"/reconcile/{}\">reconciliation report</a>",
                url(&l.link)
            );
        }
    }
}

/// What `stxd status` says, per link and side.
pub(crate) async fn links(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Response {
    let config = Arc::clone(&state.shared.config);
    let csrf = p.csrf.clone();
    let body = blocking(move || {
        let mut out = String::new();
        match status::collect(&config, None, time::OffsetDateTime::now_utc()) {
            Ok(s) => {
                if let Some(r) = &s.daemon.reading {
                    let _ = write!(
                        out,
                        "<p class=\"note\" id=\"reading\">The daemon is {}; a change asked now waits for it.</p>",
                        esc(&r.describe())
                    );
                }
                if !s.daemon.retrying.is_empty() {
                    out.push_str("<div class=\"note\" id=\"retrying\"><p>Files the daemon tries again later:</p><ul>");
                    for f in &s.daemon.retrying {
                        let _ = write!(out, "<li>{}</li>", esc(&f.describe()));
                    }
                    out.push_str("</ul></div>");
                }
                for l in &s.links {
                    link_block(&config, l, &mut out, &csrf);
                }
                if !s.next_runs.is_empty() {
                    out.push_str("<h2>Next runs</h2><ul>");
                    for n in &s.next_runs {
                        let _ = write!(
                            out,
                            "<li>{} {} at {}</li>",
                            esc(&n.link),
                            esc(&n.job),
                            esc(&n.at)
                        );
                    }
                    out.push_str("</ul>");
                }
            }
            Err(e) => {
                let _ = write!(out, "<p class=\"err\">{}</p>", esc(&e));
            }
        }
        out
    })
    .await;
    match body {
        Ok(b) => layout("Links", Some(&p.csrf), &b).into_response(),
        Err(r) => r,
    }
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct RunParams {
    institution: Option<String>,
    link: Option<String>,
    kind: Option<String>,
    status: Option<String>,
}

fn some(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// The run log of every store (or one), newest first, filtered.
pub(crate) async fn runs(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<RunParams>,
) -> Response {
    let config = Arc::clone(&state.shared.config);
    let body = blocking(move || {
        let status = some(&q.status).and_then(RunStatus::parse);
        let mut out = String::from("<form method=\"get\" action=\"/runs\">");
        for (name, v) in [
            ("institution", &q.institution),
            ("link", &q.link),
            ("kind", &q.kind),
            ("status", &q.status),
        ] {
            let _ = write!(
                out,
                "{name} <input name=\"{name}\" value=\"{}\" size=\"14\"> ",
                esc(v.as_deref().unwrap_or(""))
            );
        }
        out.push_str("<button type=\"submit\">Filter</button></form>");
        for inst in &config.institutions {
            if some(&q.institution).is_some_and(|i| i != inst.code.as_str()) {
                continue;
            }
            let _ = write!(out, "<h2>{}</h2>", esc(inst.code.as_str()));
            let listed = crate::store::open_read_only(&config.store_path(&inst.code))
                .and_then(|c| {
                    runs::list(
                        &c,
                        &runs::Filter {
                            kind: some(&q.kind),
                            link: some(&q.link),
                            status,
                            since: None,
                            limit: Some(200),
                        },
                    )
                });
            match listed {
                Ok(list) => {
                    out.push_str("<table><tr><th>run</th><th>kind</th><th>link</th><th>file</th><th>started</th><th>status</th><th>records ok/rejected/total</th></tr>");
                    for r in list {
                        let _ = write!(
                            out,
                            "<tr><td><a href=\"/runs/{}/{id}\">{id}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}/{}/{}</td></tr>",
                            url(inst.code.as_str()),
                            esc(&r.kind),
                            esc(r.link.as_deref().unwrap_or("")),
                            esc(r.file.as_deref().unwrap_or("")),
                            esc(&r.started),
                            r.status.as_str(),
                            r.counts.ok,
                            r.counts.rejected,
                            r.counts.total,
                            id = r.id
                        );
                    }
                    out.push_str("</table>");
                }
                Err(e) => {
                    let _ = write!(out, "<p class=\"err\">{}</p>", esc(&e.to_string()));
                }
            }
        }
        out
    })
    .await;
    match body {
        Ok(b) => layout("Runs", Some(&p.csrf), &b).into_response(),
        Err(r) => r,
    }
}

/// One run with its messages.
pub(crate) async fn run(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path((institution, id)): Path<(String, i64)>,
) -> Response {
    let config = Arc::clone(&state.shared.config);
    let body = blocking(move || -> Result<String, String> {
        let inst = config
            .institution(&institution)
            .ok_or_else(|| format!("no institution {institution} in this config"))?;
        let conn = crate::store::open_read_only(&config.store_path(&inst.code))
            .map_err(|e| e.to_string())?;
        let d = runs::get(&conn, id)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("no run {id} in the store of {institution}"))?;
        let r = &d.run;
        let mut out = format!(
            "<p>{} · link {} · file {} · started {} · ended {} · <strong>{}</strong> · records {}/{}/{}</p>",
            esc(&r.kind),
            esc(r.link.as_deref().unwrap_or("-")),
            esc(r.file.as_deref().unwrap_or("-")),
            esc(&r.started),
            esc(r.ended.as_deref().unwrap_or("-")),
            r.status.as_str(),
            r.counts.ok,
            r.counts.rejected,
            r.counts.total
        );
        out.push_str("<table><tr><th>#</th><th>level</th><th>code</th><th>where</th><th>message</th></tr>");
        for m in &d.messages {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                m.seq,
                m.level.as_str(),
                esc(&m.code),
                esc(m.location.as_deref().unwrap_or("")),
                esc(&m.text)
            );
        }
        out.push_str("</table>");
        Ok(out)
    })
    .await;
    match body {
        Ok(Ok(b)) => layout(&format!("Run {id}"), Some(&p.csrf), &b).into_response(),
        Ok(Err(e)) => (
            StatusCode::NOT_FOUND,
            layout(
                "No such run",
                Some(&p.csrf),
                &format!("<p class=\"err\">{}</p>", esc(&e)),
            ),
        )
            .into_response(),
        Err(r) => r,
    }
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct FileParams {
    link: Option<String>,
    page: Option<usize>,
}

/// Files shown per page of `done/`.
const PAGE: usize = 50;

/// The `.reason` of a manifest in `error/`, at most 4 KiB of it.
fn reason_of(dir: &std::path::Path, manifest: &str) -> String {
    use std::io::Read;
    let mut text = String::new();
    if let Ok(f) = std::fs::File::open(dir.join(format!("{manifest}.reason"))) {
        let _ = f.take(4096).read_to_string(&mut text);
    }
    text
}

/// A received file's journal state and a link to the run that put it
/// where it is, or nothing when the journal does not hold it.
fn run_of(l: &LinkStatus, r: Option<&status::Received>) -> String {
    match r {
        Some(r) => {
            let run = r.run.map_or(String::new(), |run| {
                format!(
                    " <a href=\"/runs/{}/{run}\">run {run}</a>",
                    url(&l.institution)
                )
            });
            format!(" <span class=\"state\">{}</span>{run}", esc(&r.state))
        }
        None => String::new(),
    }
}

fn files_block(config: &Config, l: &LinkStatus, page: usize, csrf: &str, out: &mut String) {
    let _ = write!(out, "<h2>{} · {}</h2>", esc(&l.link), l.side);
    let Some(link) = config.links.iter().find(|k| k.name == l.link) else {
        return;
    };
    // The page of done/ shown, and what the store says of it and of the
    // files of parked/ and error/; a store that cannot be read shows the
    // files alone.
    let names = status::archived_newest_first(&link.folders(l.side).done);
    let shown: Vec<String> = names.iter().skip(page * PAGE).take(PAGE).cloned().collect();
    let runs = status::file_runs(
        config,
        link,
        l.side,
        &l.parked.files,
        &l.error.files,
        &shown,
    )
    .unwrap_or_else(|_| status::FileRuns {
        parked: vec![None; l.parked.files.len()],
        error: vec![None; l.error.files.len()],
        done: vec![None; shown.len()],
    });
    let _ = write!(out, "<h3>inbox ({})</h3><ul>", l.inbox.count);
    for file in &l.inbox.files {
        let _ = write!(out, "<li>{}</li>", esc(file));
    }
    out.push_str("</ul><h3>held</h3><ul>");
    for h in &l.held {
        let _ = write!(out, "<li>{}: {}</li>", esc(&h.file), esc(&h.reason));
    }
    out.push_str("</ul>");
    let _ = write!(out, "<h3>parked ({})</h3><ul>", l.parked.count);
    for (file, r) in l.parked.files.iter().zip(&runs.parked) {
        let _ = write!(
            out,
            "<li>{}{}: waits for mappings; fill them on the <a href=\"/mapping?link={}\">mapping table</a> and it resumes</li>",
            esc(file),
            run_of(l, r.as_ref()),
            url(&l.link)
        );
    }
    out.push_str("</ul>");
    let side = l.side.as_str();
    let _ = write!(out, "<h3>error ({})</h3><ul>", l.error.count);
    for (file, r) in l.error.files.iter().zip(&runs.error) {
        let _ = write!(
            out,
            "<li>{}{} <pre>{}</pre>fix the cause the reason names, then {}</li>",
            esc(file),
            run_of(l, r.as_ref()),
            esc(&reason_of(&l.error.path, file)),
            button(
                csrf,
                "/retry",
                &[
                    ("link", &l.link),
                    ("side", side),
                    ("folder", "error"),
                    ("file", file)
                ],
                "retry"
            )
        );
    }
    out.push_str("</ul>");
    let _ = write!(out, "<h3>quarantine ({})</h3><ul>", l.quarantine.len());
    for q in &l.quarantine {
        let _ = write!(
            out,
            "<li>{} {}: {} {}</li>",
            esc(&q.file),
            esc(q.code.as_deref().unwrap_or("")),
            esc(q.reason.as_deref().unwrap_or("")),
            button(
                csrf,
                "/retry",
                &[
                    ("link", &l.link),
                    ("side", side),
                    ("folder", "quarantine"),
                    ("file", &q.file)
                ],
                "retry"
            )
        );
    }
    out.push_str("</ul>");
    let _ = write!(
        out,
        "<h3>done ({}, newest first; page {})</h3><ul class=\"done\">",
        names.len(),
        page + 1
    );
    for (n, r) in shown.iter().zip(&runs.done) {
        let _ = write!(out, "<li>{}{}</li>", esc(n), run_of(l, r.as_ref()));
    }
    out.push_str("</ul>");
    if page > 0 {
        let _ = write!(
            out,
            "<a href=\"/files?link={}&amp;page={}\">previous page</a> ",
            url(&l.link),
            page - 1
        );
    }
    if names.len() > (page + 1) * PAGE {
        let _ = write!(
            out,
            "<a href=\"/files?link={}&amp;page={}\">next page</a>",
            url(&l.link),
            page + 1
        );
    }
}

/// The files of each served link side, folder by folder.
pub(crate) async fn files(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<FileParams>,
) -> Response {
    let config = Arc::clone(&state.shared.config);
    let csrf = p.csrf.clone();
    let body = blocking(move || {
        let mut out = String::new();
        let now = time::OffsetDateTime::now_utc();
        match status::collect(&config, some(&q.link), now) {
            Ok(s) => {
                for l in &s.links {
                    files_block(&config, l, q.page.unwrap_or(0), &csrf, &mut out);
                }
            }
            Err(e) => {
                let _ = write!(out, "<p class=\"err\">{}</p>", esc(&e));
            }
        }
        out
    })
    .await;
    match body {
        Ok(b) => layout("Files", Some(&p.csrf), &b).into_response(),
        Err(r) => r,
    }
}

/// The reconciliation report of a link, computed now.
pub(crate) async fn reconcile(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(link): Path<String>,
) -> Response {
    let config = Arc::clone(&state.shared.config);
    let report =
        blocking(move || crate::app::reconcile(&config, &link).map_err(|e| crate::app::chain(&e)))
            .await;
    match report {
        Ok(Ok(r)) => Html(crate::report::render_html(&r)).into_response(),
        Ok(Err(e)) => (
            StatusCode::NOT_FOUND,
            layout(
                "No reconciliation",
                Some(&p.csrf),
                &format!("<p class=\"err\">{}</p>", esc(&e)),
            ),
        )
            .into_response(),
        Err(r) => r,
    }
}
