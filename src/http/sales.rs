//! The sales page. At a link's manager: the lines the reintegration
//! rejected, each with *Accept* / *Dismiss* and a reason (`stxd sales
//! resolve`'s code path, [`app::resolve_line`], a run marked "via
//! console"), the resolutions made (read-only) and the reintegrated orders,
//! paged. At a link's distributor: its sale and refund lines with their
//! state (sold, refunded, accepted or dismissed by the manager), paged.
//! Amounts are the domain's, in minor units with their currency, shown
//! without floats.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use axum::{Extension, Form};

use super::auth::{Principal, csrf_refused};
use super::page::{answered, csrf_field, esc, in_words, shown, url};
use super::{AppState, blocking, on_worker};
use crate::app;
use crate::config::{Config, Link};
use crate::domain::orders::{self, OrderFilter, OrderView};
use crate::domain::reintegration::{self as reint, Decision, OVERRIDABLE};
use crate::domain::selling::{self, Filter};
use crate::exchange::Role;
use crate::format::sales::COLUMNS;

/// Rows shown per page (orders, resolutions, sales lines).
const PAGE: usize = 50;

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct Params {
    link: Option<String>,
    page: Option<usize>,
    /// Distributor: only the lines the manager resolved.
    disputed: Option<String>,
}

pub(crate) async fn page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<Params>,
) -> Response {
    let config = Arc::clone(&state.shared.config);
    let csrf = p.csrf.clone();
    let body = blocking(move || render(&config, &q, &csrf)).await;
    shown("Sales", &p.csrf, body)
}

fn render(config: &Config, q: &Params, csrf: &str) -> String {
    let page = q.page.unwrap_or(0);
    let mut out = String::new();
    let mut any = false;
    for (link, _, side) in config.served(q.link.as_deref().filter(|l| !l.is_empty())) {
        any = true;
        let _ = write!(out, "<h2>{} · {side}</h2>", esc(&link.name));
        let done = match side {
            Role::Manager => manager(config, link, page, csrf, &mut out),
            Role::Distributor => distributor(config, link, q, page, &mut out),
        };
        if let Err(e) = done {
            let _ = write!(out, "<p class=\"err\">{}</p>", esc(&e));
        }
    }
    if !any {
        out.push_str("<p>No link of this config is served here.</p>");
    }
    out
}

/// The field of a rejected line's SALES record named `column`.
fn field<'r>(r: &'r reint::Rejected, column: &str) -> &'r str {
    COLUMNS
        .iter()
        .position(|c| *c == column)
        .and_then(|i| r.fields.get(i))
        .map_or("", String::as_str)
}

fn manager(
    config: &Config,
    link: &Link,
    page: usize,
    csrf: &str,
    out: &mut String,
) -> Result<(), String> {
    let conn = crate::store::open_read_only(&config.store_path(&link.manager))
        .map_err(|e| e.to_string())?;
    // Only this page's lines are kept; the others are counted.
    let mut rejected = Vec::new();
    let mut seen = 0usize;
    reint::for_each_rejected(&conn, &link.name, |r| {
        if (page * PAGE..(page + 1) * PAGE).contains(&seen) {
            rejected.push(r);
        }
        seen += 1;
        Ok(())
    })
    .map_err(|e| e.to_string())?;
    let _ = write!(
        out,
        "<h3>Rejected lines (<span id=\"rejected-count\">{seen}</span>)</h3>"
    );
    if !rejected.is_empty() {
        out.push_str("<table><tr><th>line</th><th>operation</th><th>order</th><th>amount (minor units)</th><th>from</th><th>rejected for</th><th>resolve</th></tr>");
    }
    for r in &rejected {
        let line = r.line;
        let accept = if OVERRIDABLE.contains(&r.code.as_str()) {
            format!(
                " <button type=\"submit\" name=\"decision\" value=\"accept\" id=\"accept-{line}\">Accept</button>"
            )
        } else {
            String::new()
        };
        let _ = write!(
            out,
            "<tr class=\"pending\"><td>{line}</td><td>{}</td><td>{}</td><td>{} {}</td><td>{}, {}</td><td><strong>{}</strong>: {}</td>\
<td><form class=\"inline\" method=\"post\" action=\"/sales/resolve\">{}<input type=\"hidden\" name=\"link\" value=\"{}\"><input type=\"hidden\" name=\"line\" value=\"{line}\">\
<input name=\"reason\" id=\"reason-{line}\" size=\"24\" placeholder=\"reason (required)\" required>{accept} <button type=\"submit\" name=\"decision\" value=\"dismiss\" id=\"dismiss-{line}\">Dismiss</button></form></td></tr>",
            esc(&r.operation),
            esc(field(r, "order")),
            esc(field(r, "amount")),
            esc(field(r, "currency")),
            esc(&r.file),
            esc(&r.position),
            esc(&r.code),
            esc(&r.reason),
            csrf_field(csrf),
            esc(&link.name),
        );
    }
    if !rejected.is_empty() {
        out.push_str("</table><p>Only the rules <code>price-differs</code>, <code>no-price</code>, <code>performance-closed</code>, <code>performance-started</code> can be set aside by <em>Accept</em>; any line can be dismissed (closed unbooked).</p>");
    }
    pager(out, link, page, seen);
    let (resolved, total) =
        reint::resolutions(&conn, &link.name, (page * PAGE) as u64, PAGE as u64)
            .map_err(|e| e.to_string())?;
    let _ = write!(out, "<h3>Resolutions ({total})</h3>");
    if !resolved.is_empty() {
        out.push_str("<table id=\"resolutions\"><tr><th>line</th><th>operation</th><th>decision</th><th>rejected for</th><th>set aside</th><th>amount (minor units)</th><th>reason</th><th>by</th><th>at</th><th>run</th></tr>");
        for r in &resolved {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td class=\"decision\">{}</td><td>{}</td><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td><td><a href=\"/runs/{}/{run}\">{run}</a></td></tr>",
                r.line,
                esc(&r.operation),
                esc(&r.decision),
                esc(&r.code),
                esc(r.overridden.as_deref().unwrap_or("-")),
                r.amount,
                esc(&r.currency),
                esc(&r.reason),
                esc(&r.by),
                esc(&r.at),
                url(link.manager.as_str()),
                run = r.run
            );
        }
        out.push_str("</table>");
    }
    pager(
        out,
        link,
        page,
        usize::try_from(total).unwrap_or(usize::MAX),
    );
    let filter = OrderFilter {
        link: Some(&link.name),
        ..OrderFilter::default()
    };
    let found = orders::orders(&conn, &filter).map_err(|e| e.to_string())?;
    let _ = write!(out, "<h3>Reintegrated orders ({})</h3>", found.len());
    for o in found.iter().skip(page * PAGE).take(PAGE) {
        order(o, out);
    }
    pager(out, link, page, found.len());
    Ok(())
}

fn order(o: &OrderView, out: &mut String) {
    let pending: Vec<String> = o
        .pending_account
        .iter()
        .map(|t| format!("{} ({} {})", t.amount, t.minor, t.currency))
        .collect();
    let _ = write!(
        out,
        "<table class=\"order\"><tr><th colspan=\"6\">order {} {} · {} · {} ticket(s), {} valid{} · pending account {}</th></tr>\
<tr><th>ticket</th><th>performance</th><th>place</th><th>tariff, audience</th><th>price</th><th>state</th></tr>",
        o.id,
        esc(&o.reference),
        esc(&o.created),
        o.tickets.len(),
        o.valid,
        if o.to_refund > 0 {
            format!(", {} to refund", o.to_refund)
        } else {
            String::new()
        },
        esc(&if pending.is_empty() {
            "0".to_owned()
        } else {
            pending.join(" + ")
        })
    );
    for t in &o.tickets {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{} ({})</td><td>{} ({})</td><td>{}, {}</td><td>{} <small>({} {})</small></td><td>{}</td></tr>",
            t.id,
            esc(&t.performance_code),
            esc(&t.performance_state),
            esc(&t.place),
            esc(&t.seat_category),
            esc(&t.tariff_type),
            esc(&t.audience_subcategory),
            esc(&t.price),
            t.minor,
            esc(&t.currency),
            if t.to_refund {
                "valid, to refund (performance cancelled)".to_owned()
            } else {
                esc(&t.state)
            }
        );
    }
    out.push_str("</table>");
}

fn distributor(
    config: &Config,
    link: &Link,
    q: &Params,
    page: usize,
    out: &mut String,
) -> Result<(), String> {
    let conn = crate::store::open_read_only(&config.store_path(&link.distributor))
        .map_err(|e| e.to_string())?;
    let disputed = q.disputed.as_deref().is_some_and(|d| !d.is_empty());
    let filter = Filter {
        link: Some(&link.name),
        performance: None,
        unexported: false,
        to_refund: false,
        disputed,
    };
    let lines = selling::list(&conn, &filter).map_err(|e| e.to_string())?;
    let _ = write!(
        out,
        "<h3>Sale and refund lines ({}{})</h3><p><a href=\"/sales?link={l}\">all</a> · <a href=\"/sales?link={l}&amp;disputed=1\">only those the manager resolved</a></p>",
        lines.len(),
        if disputed {
            ", resolved by the manager"
        } else {
            ""
        },
        l = url(&link.name)
    );
    if !lines.is_empty() {
        out.push_str("<table id=\"sale-lines\"><tr><th>line</th><th>operation</th><th>time</th><th>order</th><th>performance</th><th>place</th><th>tariff, audience</th><th>price</th><th>state</th><th>sent</th></tr>");
    }
    for l in lines.iter().skip(page * PAGE).take(PAGE) {
        let class = match &l.resolution {
            Some(r) if r.decision == "dismissed" => " class=\"pending\"",
            _ => "",
        };
        let _ = write!(
            out,
            "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} ({})</td><td>{}, {}</td><td>{} <small>({} {})</small></td><td class=\"state\">{}</td><td>{}</td></tr>",
            l.id,
            esc(&l.operation),
            esc(&l.time),
            esc(&l.order),
            esc(&l.performance),
            esc(&l.place),
            esc(&l.seat_category),
            esc(&l.tariff),
            esc(&l.audience),
            esc(&l.price),
            l.amount,
            esc(&l.currency),
            esc(&l.state()),
            l.exported_in
                .map_or("not sent".to_owned(), |s| format!("in SALES {s}"))
        );
    }
    if !lines.is_empty() {
        out.push_str("</table>");
    }
    pager(out, link, page, lines.len());
    Ok(())
}

/// A link to the next page when `total` rows go beyond this one.
fn pager(out: &mut String, link: &Link, page: usize, total: usize) {
    if total > (page + 1) * PAGE {
        let _ = write!(
            out,
            "<p><a href=\"/sales?link={}&amp;page={}\">next page</a></p>",
            url(&link.name),
            page + 1
        );
    }
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct ResolveForm {
    #[serde(default)]
    csrf: String,
    link: String,
    line: i64,
    /// `accept` or `dismiss`.
    decision: String,
    #[serde(default)]
    reason: String,
}

/// Who a console resolution is recorded as decided by.
const BY: &str = "console";

/// One rejected line accepted or dismissed.
pub(crate) async fn resolve(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Form(form): Form<ResolveForm>,
) -> Response {
    if let Some(r) = csrf_refused(&p, &form.csrf) {
        return r;
    }
    let config = Arc::clone(&state.shared.config);
    let back = format!(
        "<p><a id=\"back\" href=\"/sales?link={}\">Back to the sales page</a></p>",
        url(&form.link)
    );
    let done = on_worker(&state, move || -> Result<String, String> {
        let decision = match form.decision.as_str() {
            "accept" => Decision::Accept {
                also_override: Vec::new(),
            },
            "dismiss" => Decision::Dismiss,
            other => return Err(format!("decision {other:?}: expected accept or dismiss")),
        };
        let link = config.require_link(&form.link)?;
        let r = app::resolve_line(
            &config,
            &link.name,
            form.line,
            &decision,
            &form.reason,
            BY,
            Some(app::VIA_CONSOLE),
        )
        .map_err(|e| app::chain(&e))?
        .map_err(|refused| match refused.run {
            Some(run) => format!("{} (run {run})", refused.error),
            None => refused.error.to_string(),
        })?;
        let what = match r.ticket {
            Some(t) => format!(
                "booked as ticket {t}, {} set aside",
                r.overridden.join(", ")
            ),
            None => "closed without booking; the line stays sold at the distributor".to_owned(),
        };
        Ok(format!(
            "line {} of link {} (rejected {}) {} by {} (run {}): {what}",
            r.line, r.link, r.code, r.decision, r.by, r.run
        ))
    })
    .await;
    answered(&p.csrf, "Line resolved", &back, done.map(in_words))
}
