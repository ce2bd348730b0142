//! Who may use the console: the bearer token of `[http] token_file`, given
//! as `Authorization: Bearer <token>` or once on the login page for a
//! session cookie (`HttpOnly`, `SameSite=Strict`); compared in constant
//! time. A write also needs the CSRF token its form carries: an HMAC of
//! the session (or of the bearer) under a key drawn at start, so a page of
//! another site can neither read nor forge it.

use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;

use super::AppState;
use super::page::{csrf_field, esc, layout};

/// The session cookie's name.
const COOKIE: &str = "stxd_session";
/// How long a login lasts.
const SESSION: Duration = Duration::from_secs(12 * 3600);

/// Who asked, as the handlers see it: the CSRF token its forms carry.
#[derive(Debug, Clone)]
pub(crate) struct Principal {
    pub(crate) csrf: String,
}

/// The CSRF token of a principal (`bearer`, or `session:<id>`).
fn csrf_of(state: &AppState, principal: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&state.csrf_key).expect("any key length");
    mac.update(principal.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The session id of the request's cookie, if any.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// Who the request is from: the bearer or a live session.
fn principal(state: &AppState, headers: &HeaderMap) -> Option<String> {
    if let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let given = auth.strip_prefix("Bearer ")?;
        return same(given.trim(), &state.token).then(|| "bearer".to_owned());
    }
    let id = session_cookie(headers)?;
    let mut sessions = state.sessions.lock().unwrap_or_else(|p| p.into_inner());
    let now = Instant::now();
    sessions.retain(|_, until| *until > now);
    // Compared in constant time against each live session.
    let known = sessions.keys().any(|k| same(k, &id));
    known.then(|| format!("session:{id}"))
}

/// Lets a request with the token or a session through (with its
/// [`Principal`]); any other gets 401 and a pointer to the login page.
pub(crate) async fn require(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    match principal(&state, req.headers()) {
        Some(p) => {
            let csrf = csrf_of(&state, &p);
            req.extensions_mut().insert(Principal { csrf });
            next.run(req).await
        }
        None => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"stxd\"")],
            layout(
                "Login needed",
                None,
                "<p>This page needs the console's token: <a href=\"/login\">log in</a>, or send <code>Authorization: Bearer &lt;token&gt;</code>.</p>",
            ),
        )
            .into_response(),
    }
}

/// Refuses (403) a write whose form lacks the principal's CSRF token.
pub(crate) fn csrf_refused(p: &Principal, given: &str) -> Option<Response> {
    if same(given, &p.csrf) {
        None
    } else {
        Some((
            StatusCode::FORBIDDEN,
            layout(
                "Refused",
                None,
                "<p class=\"err\">This form's CSRF token is missing or wrong: reload the page and submit it again.</p>",
            ),
        )
            .into_response())
    }
}

/// The login form.
pub(crate) async fn login_page() -> Response {
    login_form(StatusCode::OK, "")
}

fn login_form(status: StatusCode, problem: &str) -> Response {
    let body = format!(
        "{problem}<form method=\"post\" action=\"/login\"><label>Token <input type=\"password\" name=\"token\" id=\"token\" autocomplete=\"off\"></label> <button type=\"submit\" id=\"login\">Log in</button></form>\
<p>The token is in the file named by <code>[http] token_file</code>.</p>"
    );
    (status, layout("Log in", None, &body)).into_response()
}

#[derive(serde::Deserialize)]
pub(crate) struct Login {
    #[serde(default)]
    token: String,
}

/// Checks the token; a session cookie and the links page when right.
pub(crate) async fn login(
    State(state): State<AppState>,
    axum::Form(form): axum::Form<Login>,
) -> Response {
    if !same(form.token.trim(), &state.token) {
        return login_form(
            StatusCode::UNAUTHORIZED,
            "<p class=\"err\">Wrong token.</p>",
        );
    }
    let mut raw = [0u8; 32];
    if getrandom::fill(&mut raw).is_err() {
        return (StatusCode::INTERNAL_SERVER_ERROR, "no random numbers\n").into_response();
    }
    let id = hex::encode(raw);
    state
        .sessions
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(id.clone(), Instant::now() + SESSION);
    let secure = if state.tls { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}",
        SESSION.as_secs()
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

#[derive(serde::Deserialize)]
pub(crate) struct Csrf {
    #[serde(default)]
    csrf: String,
}

/// Ends the session (the CSRF token required like any write).
pub(crate) async fn logout(
    State(state): State<AppState>,
    axum::Extension(p): axum::Extension<Principal>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<Csrf>,
) -> Response {
    if let Some(r) = csrf_refused(&p, &form.csrf) {
        return r;
    }
    if let Some(id) = session_cookie(&headers) {
        state
            .sessions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
    }
    let cookie = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}

/// A form's submit button with its CSRF field, as one inline form.
pub(crate) fn button(csrf: &str, action: &str, fields: &[(&str, &str)], label: &str) -> String {
    let hidden: String = fields
        .iter()
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                esc(k),
                esc(v)
            )
        })
        .collect();
    format!(
        "<form class=\"inline\" method=\"post\" action=\"{}\">{}{hidden}<button type=\"submit\">{}</button></form>",
        esc(action),
        csrf_field(csrf),
        esc(label)
    )
}
