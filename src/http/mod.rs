//! The ops console of `stxd run`: an HTTP listener (axum, on the daemon's
//! runtime) serving health checks, Prometheus metrics and server-rendered
//! pages, started when the config has an `[http]` table.
//!
//! Every handler that reads or writes a store does it on `spawn_blocking`
//! with connections of its own, through the same `app`, `status` and
//! `domain` calls as the CLI (a mapping set from the console is `stxd
//! mapping set`'s code path, a retry `stxd retry`'s, a trigger `stxd
//! trigger`'s file); nothing is kept open between two requests, so the
//! console never holds a store's write lock while it renders.
//!
//! The files, one role each:
//!
//! - `auth`: the bearer token, the login session cookie, the CSRF check;
//! - `page`: HTML escaping, the layout and its stylesheet;
//! - `views`: the read-only pages (links, runs, files, reconciliation);
//! - `mapping`: the mapping table page and its changes;
//! - `mapping_csv`: the mapping table exported and imported as a CSV;
//! - `sales`: rejected lines resolved, resolutions and orders at the
//!   manager, sales lines with their state at the distributor;
//! - `catalogue`: the products to validate, validated and assigned to a
//!   sales profile;
//! - `actions`: retry and trigger;
//! - `metrics`: `/metrics`, computed from the stores at scrape time;
//! - `tls`: the HTTPS listener when `tls_cert`/`tls_key` are set.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::daemon::{Shared, Sidecar};

mod actions;
mod auth;
mod catalogue;
mod mapping;
mod mapping_csv;
mod metrics;
mod page;
mod sales;
mod tls;
mod views;

/// The console, started by `stxd run` beside its loop when `[http]` is set.
#[derive(Debug, Default)]
pub struct Console;

impl Sidecar for Console {
    fn start(self: Box<Self>, shared: Shared) -> Result<tokio::task::JoinHandle<()>, String> {
        start(shared)
    }
}

/// What every handler shares.
pub(crate) struct State {
    pub(crate) shared: Shared,
    /// The bearer token (`[http] token_file`).
    token: String,
    /// Signs the CSRF tokens (random, per process).
    csrf_key: [u8; 32],
    /// Open login sessions: id → when it ends.
    sessions: Mutex<HashMap<String, std::time::Instant>>,
    /// HTTPS: the session cookie is `Secure`.
    tls: bool,
}

pub(crate) type AppState = Arc<State>;

/// The shortest token the console accepts.
const MIN_TOKEN_LEN: usize = 16;

fn start(shared: Shared) -> Result<tokio::task::JoinHandle<()>, String> {
    let Some(http) = shared.config.http.clone() else {
        return Err("the config has no [http] table".to_owned());
    };
    let token = crate::config::read_token(&http.token_file)
        .map_err(|e| format!("{e} (stxd init creates a random token file when it is missing)"))?;
    if token.len() < MIN_TOKEN_LEN {
        return Err(format!(
            "token file {}: the token is shorter than {MIN_TOKEN_LEN} characters: use a long random value (e.g. head -c 32 /dev/urandom | xxd -p -c 64)",
            http.token_file.display()
        ));
    }
    let tls = http.tls.as_ref().map(tls::acceptor).transpose()?;
    let listener = std::net::TcpListener::bind(http.listen)
        .and_then(|l| l.set_nonblocking(true).map(|()| l))
        .and_then(tokio::net::TcpListener::from_std)
        .map_err(|e| {
            format!(
                "cannot listen on {} (http.listen): {e}; is another process using it?",
                http.listen
            )
        })?;
    let mut csrf_key = [0u8; 32];
    getrandom::fill(&mut csrf_key).map_err(|e| format!("no random numbers: {e}"))?;
    let state = Arc::new(State {
        shared,
        token,
        csrf_key,
        sessions: Mutex::new(HashMap::new()),
        tls: tls.is_some(),
    });
    let app = router(state);
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(target: "stxd::http", listen = %http.listen, token_file = %http.token_file.display(),
        "console listening on {scheme}://{} (log in with the token of its token_file)", http.listen);
    Ok(tokio::spawn(async move {
        let served = match tls {
            None => axum::serve(listener, app).await,
            Some(acceptor) => axum::serve(tls::Listener::new(listener, acceptor), app).await,
        };
        if let Err(e) = served {
            tracing::error!(target: "stxd::http", error = %e, "the console stopped");
        }
    }))
}

/// Every route: `/healthz` and the login page open, the rest behind
/// [`auth::require`].
fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route("/", get(views::links))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/runs", get(views::runs))
        .route("/runs/{institution}/{id}", get(views::run))
        .route("/files", get(views::files))
        .route("/reconcile/{link}", get(views::reconcile))
        .route("/mapping", get(mapping::page))
        .route("/mapping/change", post(mapping::change))
        .route("/mapping/export", get(mapping_csv::export))
        .route("/mapping/import", post(mapping_csv::import))
        .route("/sales", get(sales::page))
        .route("/sales/resolve", post(sales::resolve))
        .route("/catalogue", get(catalogue::page))
        .route("/catalogue/validate", post(catalogue::validate))
        .route("/catalogue/assign", post(catalogue::assign))
        .route("/retry", post(actions::retry))
        .route("/trigger", post(actions::trigger))
        .route("/logout", post(auth::logout))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require,
        ));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/login", get(auth::login_page).post(auth::login))
        .merge(protected)
        .with_state(state)
}

/// The process answers.
async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready: the first listing (recovery) is done, every store opens and every
/// served link's folders are reachable; 503 with the reasons otherwise.
async fn readyz(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    let ready = state.shared.ready.load(Ordering::Acquire);
    let config = Arc::clone(&state.shared.config);
    let problems = blocking(move || {
        let mut problems = Vec::new();
        for inst in &config.institutions {
            let path = config.store_path(&inst.code);
            if let Err(e) = crate::store::open_read_only(&path) {
                problems.push(format!("store of {}: {e}", inst.code));
            }
        }
        for (link, _, side) in config.served(None) {
            let f = link.folders(side);
            for dir in [&f.inbox, &f.outbox, &f.parked, &f.error, &f.quarantine] {
                if let Err(e) = std::fs::read_dir(dir) {
                    problems.push(format!(
                        "link {} ({side}): folder {}: {e}",
                        link.name,
                        dir.display()
                    ));
                }
            }
        }
        problems
    })
    .await;
    let mut problems = match problems {
        Ok(p) => p,
        Err(r) => return r,
    };
    if !ready {
        problems.insert(
            0,
            "the first listing (recovery of what a previous run left) is not done yet".to_owned(),
        );
    }
    if problems.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready:\n{}\n", problems.join("\n")),
        )
            .into_response()
    }
}

/// Runs a write on the daemon's worker, in its turn among the files and
/// jobs (a store keeps one writer); a stopping daemon is a 503, a panic a
/// 500.
pub(crate) async fn on_worker<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Response> {
    let caught = move || std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    match state.shared.worker.run(caught).await {
        Ok(Ok(done)) => Ok(done),
        Ok(Err(_)) => {
            tracing::error!(target: "stxd::http", "a console request failed");
            Err((StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response())
        }
        Err(stopping) => {
            Err((StatusCode::SERVICE_UNAVAILABLE, format!("{stopping}\n")).into_response())
        }
    }
}

/// Runs `f` on the blocking pool (reads of the stores and folders); a
/// panic or a cancelled task is a 500.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Response> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        tracing::error!(target: "stxd::http", error = %e, "a console request failed");
        (StatusCode::INTERNAL_SERVER_ERROR, "internal error\n").into_response()
    })
}
