//! The console's other writes: *retry* a file of `error/` or `quarantine/`
//! (`stxd retry`'s code path) and *trigger* a job (a trigger file, exactly
//! as `stxd trigger` drops it). Each is a run marked "via console".

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use axum::{Extension, Form};

use super::auth::{Principal, csrf_refused};
use super::page::{answered, esc, refusal};
use super::{AppState, on_worker};
use crate::app;
use crate::config::Config;
use crate::exchange::Role;
use crate::schedule::Job;

#[derive(Debug, serde::Deserialize)]
pub(crate) struct RetryForm {
    #[serde(default)]
    csrf: String,
    link: String,
    side: String,
    folder: String,
    file: String,
}

fn side(s: &str) -> Result<Role, String> {
    match s {
        "manager" => Ok(Role::Manager),
        "distributor" => Ok(Role::Distributor),
        other => Err(format!("side {other:?}: expected manager or distributor")),
    }
}

fn answer(p: &Principal, title: &str, done: Result<Result<String, String>, Response>) -> Response {
    let back = "<p><a href=\"/\">Links</a> · <a href=\"/files\">Files</a></p>";
    let done = done.map(|r| r.map_err(|e| refusal(&e)));
    answered(&p.csrf, title, back, done)
}

/// Puts one file of a side's `error/` or `quarantine/` back into its inbox.
pub(crate) async fn retry(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Form(form): Form<RetryForm>,
) -> Response {
    if let Some(r) = csrf_refused(&p, &form.csrf) {
        return r;
    }
    let config = Arc::clone(&state.shared.config);
    let done = on_worker(&state, move || put_back(&config, &form)).await;
    answer(&p, "Retried", done)
}

fn put_back(config: &Config, form: &RetryForm) -> Result<String, String> {
    let side = side(&form.side)?;
    let link = config.require_link(&form.link)?;
    if form.file.is_empty() || form.file.contains('/') || form.file.starts_with('.') {
        return Err(format!("{:?} is not a file name", form.file));
    }
    let folders = link.folders(side);
    let dir = match form.folder.as_str() {
        "error" => folders.error,
        "quarantine" => folders.quarantine,
        other => return Err(format!("folder {other:?}: expected error or quarantine")),
    };
    let retried = app::retry_files(config, &[dir.join(&form.file)], Some(app::VIA_CONSOLE))
        .map_err(|e| app::chain(&e))?;
    let mut out = String::from("<ul id=\"retried\">");
    for r in &retried {
        out.push_str(&format!(
            "<li>{} put back into {} (run {})</li>",
            esc(&r.from.display().to_string()),
            esc(&r.to.display().to_string()),
            r.run
        ));
    }
    out.push_str("</ul><p>The next listing takes it.</p>");
    Ok(out)
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct TriggerForm {
    #[serde(default)]
    csrf: String,
    link: String,
    job: String,
}

/// Queues a job of a link as its trigger file does.
pub(crate) async fn trigger(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Form(form): Form<TriggerForm>,
) -> Response {
    if let Some(r) = csrf_refused(&p, &form.csrf) {
        return r;
    }
    let config = Arc::clone(&state.shared.config);
    // On the worker: the trigger's run is a write like any other.
    let done = on_worker(&state, move || queue(&config, &form)).await;
    answer(&p, "Triggered", done)
}

fn queue(config: &Config, form: &TriggerForm) -> Result<String, String> {
    let job: Job = form.job.parse().map_err(|e: String| e)?;
    let link = config.require_link(&form.link)?;
    if !super::views::triggers(config, link).contains(&job) {
        return Err(format!(
            "job {} cannot be triggered here for link {}",
            job.name(),
            link.name
        ));
    }
    let (path, written) =
        app::write_trigger(config, &link.name, job).map_err(|e| app::chain(&e))?;
    // Recorded in the store of the side that runs it (a poll: the first
    // side served).
    let side = job
        .sides()
        .first()
        .copied()
        .or_else(|| config.served(Some(&link.name)).map(|(_, _, s)| s).next());
    let what = format!(
        "{} of link {} queued ({written:?}): {}",
        job.name(),
        link.name,
        path.display()
    );
    if let Some(side) = side {
        app::record_action(
            config,
            &link.name,
            side,
            "console-trigger",
            app::VIA_CONSOLE,
            &what,
        )
        .map_err(|e| app::chain(&e))?;
    }
    Ok(format!(
        "<p class=\"note\" id=\"triggered\">{}</p>",
        esc(&what)
    ))
}
