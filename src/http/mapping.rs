//! The mapping table page: the rows of a link's manager (pending first,
//! filtered by kind), each settable to one of the local codes that exist,
//! ignorable or reset; a change goes through `stxd mapping`'s code path
//! ([`app::change_mapping`]): recorded as a run marked "via console", then
//! the link's parked files resumed, and the answer says which.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use axum::{Extension, Form};

use super::auth::{Principal, csrf_refused};
use super::page::{answered, csrf_field, esc, refusal, shown, url};
use super::{AppState, blocking, on_worker};
use crate::app;
use crate::config::{Config, Link};
use crate::domain::mapping::{self as domain, Filter, LocalCode};
use crate::exchange::Role;
use crate::ident::TechId;
use crate::store::mapping::{MappingKind, MappingStatus};

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct Params {
    link: Option<String>,
    kind: Option<String>,
}

/// The links whose distributor this config serves (their mapping tables).
pub(crate) fn links(config: &Config) -> Vec<&Link> {
    config
        .served(None)
        .filter(|(_, _, side)| *side == Role::Distributor)
        .map(|(l, _, _)| l)
        .collect()
}

pub(crate) async fn page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<Params>,
) -> Response {
    let config = Arc::clone(&state.shared.config);
    let csrf = p.csrf.clone();
    let body = blocking(move || render(&config, &q, &csrf)).await;
    shown("Mapping table", &p.csrf, body)
}

fn render(config: &Config, q: &Params, csrf: &str) -> String {
    let links = links(config);
    let Some(link) = (match q.link.as_deref() {
        Some(name) => links.iter().copied().find(|l| l.name == name),
        None => links.first().copied(),
    }) else {
        return "<p>No link whose distributor this config serves: no mapping table here.</p>"
            .to_owned();
    };
    let kind = match q.kind.as_deref().filter(|k| !k.is_empty()) {
        Some(k) => match domain::parse_kind(k) {
            Ok(k) => Some(k),
            Err(e) => {
                return format!("<p class=\"err\">{}</p>", esc(&e.to_string()));
            }
        },
        None => None,
    };
    let mut out = String::new();
    out.push_str("<form method=\"get\" action=\"/mapping\">Link <select name=\"link\">");
    for l in &links {
        let sel = if l.name == link.name { " selected" } else { "" };
        out.push_str(&format!(
            "<option{sel} value=\"{n}\">{n}</option>",
            n = esc(&l.name)
        ));
    }
    out.push_str("</select> Kind <select name=\"kind\"><option value=\"\">all</option>");
    for k in MappingKind::ALL {
        let sel = if Some(k) == kind { " selected" } else { "" };
        out.push_str(&format!(
            "<option{sel} value=\"{k}\">{k}</option>",
            k = k.as_str()
        ));
    }
    out.push_str("</select> <button type=\"submit\">Filter</button></form>");
    match table(config, link, kind, csrf) {
        Ok(t) => {
            out.push_str(&t);
            out.push_str(&super::mapping_csv::forms(link, csrf));
        }
        Err(e) => out.push_str(&format!(
            "<p class=\"err\">Cannot read the store of {}: {}</p>",
            esc(link.distributor.as_str()),
            esc(&e)
        )),
    }
    out
}

fn table(
    config: &Config,
    link: &Link,
    kind: Option<MappingKind>,
    csrf: &str,
) -> Result<String, String> {
    let conn = crate::store::open_read_only(&config.store_path(&link.distributor))
        .map_err(|e| e.to_string())?;
    let manager = link.manager.to_string();
    let filter = Filter {
        manager: Some(&manager),
        kind,
        status: None,
    };
    let mut rows = domain::list(&conn, &filter).map_err(|e| e.to_string())?;
    // Pending first, then the table's own order.
    rows.sort_by_key(|r| r.status != MappingStatus::Pending);
    let mut codes: HashMap<MappingKind, Vec<LocalCode>> = HashMap::new();
    let pending = rows
        .iter()
        .filter(|r| r.status == MappingStatus::Pending)
        .count();
    let mut out = format!(
        "<p>{} row(s) of manager {}, <strong id=\"pending-count\">{pending}</strong> pending.</p>",
        rows.len(),
        esc(&manager)
    );
    out.push_str("<table><tr><th>kind</th><th>manager id</th><th>code</th><th>label</th><th>status</th><th>local</th><th>change</th></tr>");
    for r in &rows {
        let by_hand = domain::is_mapped_by_hand(r.kind);
        if by_hand && !codes.contains_key(&r.kind) {
            let list = domain::local_codes(&conn, r.kind).map_err(|e| e.to_string())?;
            codes.insert(r.kind, list);
        }
        let local = match (&r.local_code, r.local_id) {
            (Some(c), _) => esc(c),
            (None, Some(id)) => format!("<span class=\"bad\">BROKEN({id})</span>"),
            (None, None) => "-".to_owned(),
        };
        let class = if r.status == MappingStatus::Pending {
            " class=\"pending\""
        } else {
            ""
        };
        let actions = if by_hand {
            actions(
                link,
                r,
                codes.get(&r.kind).map_or(&[][..], Vec::as_slice),
                csrf,
            )
        } else {
            "automatic".to_owned()
        };
        out.push_str(&format!(
            "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{local}</td><td>{actions}</td></tr>",
            r.kind.as_str(),
            r.manager_id,
            esc(&r.manager_code),
            esc(&r.manager_label),
            r.status.as_str()
        ));
    }
    out.push_str("</table>");
    Ok(out)
}

/// The set (from the local codes that exist), ignore and unset forms of a
/// row.
fn actions(link: &Link, r: &domain::Row, codes: &[LocalCode], csrf: &str) -> String {
    let id = format!("{}-{}", r.kind.as_str(), r.manager_id);
    let hidden = |action: &str| {
        format!(
            "{}<input type=\"hidden\" name=\"link\" value=\"{}\"><input type=\"hidden\" name=\"kind\" value=\"{}\"><input type=\"hidden\" name=\"manager_id\" value=\"{}\"><input type=\"hidden\" name=\"action\" value=\"{action}\">",
            csrf_field(csrf),
            esc(&link.name),
            r.kind.as_str(),
            r.manager_id
        )
    };
    let mut options = String::new();
    for c in codes {
        let sel = if r.local_code.as_deref() == Some(c.code.as_str()) {
            " selected"
        } else {
            ""
        };
        let name = c
            .name
            .as_deref()
            .map(|n| format!(" · {n}"))
            .unwrap_or_default();
        options.push_str(&format!(
            "<option{sel} value=\"{}\">{}{}</option>",
            esc(&c.code),
            esc(&c.code),
            esc(&name)
        ));
    }
    let set = if codes.is_empty() {
        "no local code of this kind yet (stxd load)".to_owned()
    } else {
        format!(
            "<form class=\"inline\" method=\"post\" action=\"/mapping/change\">{}<select name=\"local_code\" id=\"code-{id}\">{options}</select> <button type=\"submit\" id=\"set-{id}\">Set</button></form>",
            hidden("set")
        )
    };
    let ignore = format!(
        " <form class=\"inline\" method=\"post\" action=\"/mapping/change\">{}<button type=\"submit\" id=\"ignore-{id}\">Ignore</button></form>",
        hidden("ignore")
    );
    let unset = if r.status == MappingStatus::Pending {
        String::new()
    } else {
        format!(
            " <form class=\"inline\" method=\"post\" action=\"/mapping/change\">{}<button type=\"submit\" id=\"unset-{id}\">Unset</button></form>",
            hidden("unset")
        )
    };
    format!("{set}{ignore}{unset}")
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct ChangeForm {
    #[serde(default)]
    csrf: String,
    link: String,
    kind: String,
    manager_id: String,
    action: String,
    #[serde(default)]
    local_code: String,
}

/// One change, then the parked files resumed; the page says what changed
/// and which files resumed.
pub(crate) async fn change(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Form(form): Form<ChangeForm>,
) -> Response {
    if let Some(r) = csrf_refused(&p, &form.csrf) {
        return r;
    }
    let config = Arc::clone(&state.shared.config);
    let back = format!(
        "<p><a id=\"back\" href=\"/mapping?link={}\">Back to the mapping table</a></p>",
        url(&form.link)
    );
    let done = on_worker(&state, move || apply(&config, &form)).await;
    let done = done.map(|r| r.map_err(|problem| refusal(&problem)));
    answered(&p.csrf, "Mapping changed", &back, done)
}

fn apply(config: &Config, form: &ChangeForm) -> Result<String, String> {
    let link = links(config)
        .into_iter()
        .find(|l| l.name == form.link)
        .ok_or_else(|| format!("no link {} whose distributor this config serves", form.link))?;
    let kind = domain::parse_kind(&form.kind).map_err(|e| e.to_string())?;
    let id = TechId::parse(&form.manager_id).map_err(|e| format!("manager id: {e}"))?;
    let code = form.local_code.clone();
    let result = match form.action.as_str() {
        "set" => app::change_mapping(
            config,
            link,
            "mapping-set",
            Some(app::VIA_CONSOLE),
            kind,
            id,
            |tx, m, k, i| domain::set(tx, m, k, i, &code),
        ),
        "ignore" => app::change_mapping(
            config,
            link,
            "mapping-ignore",
            Some(app::VIA_CONSOLE),
            kind,
            id,
            domain::ignore,
        ),
        "unset" => app::change_mapping(
            config,
            link,
            "mapping-unset",
            Some(app::VIA_CONSOLE),
            kind,
            id,
            domain::unset,
        ),
        other => {
            return Err(format!(
                "unknown action {other:?}: expected set, ignore or unset"
            ));
        }
    };
    let done = result
        .map_err(|e| app::chain(&e))?
        .map_err(|e| e.to_string())?;
    let mut out = format!(
        "<p class=\"note\" id=\"changed\">{} (run {})</p>",
        esc(&done.change.to_string()),
        done.run
    );
    out.push_str(&describe_resumed(&done.resumed));
    Ok(out)
}

/// What became of the parked files tried again after a change, file by
/// file (`applied`, `parked` again…).
pub(crate) fn describe_resumed(resumed: &[app::Handled]) -> String {
    let mut out = String::new();
    if resumed.is_empty() {
        out.push_str("<p id=\"resumed\">No parked file was waiting.</p>");
    } else {
        out.push_str("<p>Parked files tried again:</p><ul id=\"resumed\">");
        for h in resumed {
            let (state, detail, run) = h.describe();
            let name = crate::inbound::claim::display_name(&h.file);
            let run = run.map(|r| format!(" (run {r})")).unwrap_or_default();
            out.push_str(&format!(
                "<li><span class=\"resumed-state\">{}</span>: {} of {}{}: {}</li>",
                esc(state),
                esc(&name.to_string()),
                esc(&h.institution),
                run,
                esc(&detail)
            ));
        }
        out.push_str("</ul>");
    }
    out
}
