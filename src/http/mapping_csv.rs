//! The mapping table as a CSV, from the mapping page: *export* downloads
//! `stxd mapping export`'s file, *import* takes a CSV pasted in a textarea
//! through `stxd mapping import`'s code path ([`app::import_mapping`]): the
//! same validation, all or nothing, a run marked "via console" (a refused
//! file a failed run listing its problems), then the link's parked files
//! resumed. A refusal lists every bad row with its line, field and reason
//! and changes nothing.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};

use super::auth::{Principal, csrf_refused};
use super::mapping::{describe_resumed, links};
use super::page::{answered, csrf_field, esc, url};
use super::{AppState, blocking, on_worker};
use crate::app;
use crate::config::Link;
use crate::domain::mapping::{self as domain, ImportError};

/// The import and export forms of the mapping page of `link`.
pub(crate) fn forms(link: &Link, csrf: &str) -> String {
    format!(
        "<h2>CSV</h2><p><a id=\"export\" href=\"/mapping/export?link={l}\">Export the mapping table (CSV)</a></p>\
<form method=\"post\" action=\"/mapping/import\">{}<input type=\"hidden\" name=\"link\" value=\"{}\">\
<p><label for=\"import-csv\">Import a mapping CSV (the export's columns; all rows or none):</label><br>\
<textarea name=\"csv\" id=\"import-csv\" rows=\"8\" cols=\"100\"></textarea><br>\
<button type=\"submit\" id=\"import\">Import</button></p></form>",
        csrf_field(csrf),
        esc(&link.name),
        l = url(&link.name)
    )
}

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct ExportParams {
    link: Option<String>,
}

/// The mapping table of the link's manager as `stxd mapping export` writes
/// it, as a download.
pub(crate) async fn export(
    State(state): State<AppState>,
    Query(q): Query<ExportParams>,
) -> Response {
    let config = Arc::clone(&state.shared.config);
    let done = blocking(move || -> Result<(String, Vec<u8>), String> {
        let all = links(&config);
        let link = match q.link.as_deref().filter(|l| !l.is_empty()) {
            Some(name) => all.iter().copied().find(|l| l.name == name),
            None => all.first().copied(),
        }
        .ok_or("no link whose distributor this config serves")?;
        let conn = crate::store::open_read_only(&config.store_path(&link.distributor))
            .map_err(|e| e.to_string())?;
        // The table is bounded by the manager's master data, not by a
        // file's size: it is written whole, then sent.
        let mut csv = Vec::new();
        domain::export(&conn, link.manager.as_str(), &mut csv).map_err(|e| e.to_string())?;
        Ok((link.name.clone(), csv))
    })
    .await;
    match done {
        Ok(Ok((link, csv))) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{}-mapping.csv\"", url(&link)),
                ),
            ],
            csv,
        )
            .into_response(),
        Ok(Err(e)) => (StatusCode::NOT_FOUND, format!("{e}\n")).into_response(),
        Err(r) => r,
    }
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct ImportForm {
    #[serde(default)]
    csrf: String,
    link: String,
    #[serde(default)]
    csv: String,
}

/// The name a pasted CSV goes by in messages and the run log.
const PASTED: &str = "console-import.csv";

/// Imports a pasted CSV into the link's mapping table, all or nothing.
pub(crate) async fn import(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Form(form): Form<ImportForm>,
) -> Response {
    if let Some(r) = csrf_refused(&p, &form.csrf) {
        return r;
    }
    let config = Arc::clone(&state.shared.config);
    let back = format!(
        "<p><a id=\"back\" href=\"/mapping?link={}\">Back to the mapping table</a></p>",
        url(&form.link)
    );
    let done = on_worker(&state, move || -> Result<String, String> {
        let refused = |e: String| format!("<p class=\"err\">{}</p>", esc(&e));
        let link = links(&config)
            .into_iter()
            .find(|l| l.name == form.link)
            .ok_or_else(|| {
                refused(format!(
                    "no link {} whose distributor this config serves",
                    form.link
                ))
            })?;
        match app::import_mapping(
            &config,
            link,
            form.csv.as_bytes(),
            PASTED,
            Some(app::VIA_CONSOLE),
        )
        .map_err(|e| refused(app::chain(&e)))?
        {
            Ok(done) => {
                let s = &done.summary;
                let mut out = format!(
                    "<p class=\"note\" id=\"changed\">imported {PASTED}: {} row(s), {} created, {} changed, {} unchanged (run {})</p><ul>",
                    s.rows, s.created, s.changed, s.unchanged, done.run
                );
                for c in &s.changes {
                    let _ = write!(out, "<li>{}</li>", esc(&c.to_string()));
                }
                out.push_str("</ul>");
                out.push_str(&describe_resumed(&done.resumed));
                Ok(out)
            }
            Err(ImportError::Rejected(errs)) => {
                let mut out = format!(
                    "<p class=\"err\">{PASTED} refused, nothing changed ({} problem(s){}):</p><table id=\"import-errors\"><tr><th>line</th><th>field</th><th>code</th><th>reason</th></tr>",
                    errs.errors.len(),
                    if errs.truncated { ", more not listed" } else { "" }
                );
                for e in &errs.errors {
                    let (line, field) = match &e.position {
                        crate::format::Position::Line { line, field } => {
                            (line.to_string(), field.clone().unwrap_or_default())
                        }
                        other => (other.to_string(), String::new()),
                    };
                    let _ = write!(
                        out,
                        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(&line),
                        esc(&field),
                        esc(e.code),
                        esc(&e.problem)
                    );
                }
                out.push_str("</table>");
                Err(out)
            }
            Err(ImportError::Domain(e)) => Err(refused(e.to_string())),
        }
    })
    .await;
    answered(&p.csrf, "Mapping imported", &back, done)
}
