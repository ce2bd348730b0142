//! The catalogue page of a link's distributor: the products imported from
//! the manager, those to validate first, each with its rate table,
//! performances and sales profiles; *Validate* one product and *Assign* one
//! to a sales profile, through `stxd catalogue`'s domain calls
//! ([`app::validate_product`], [`app::assign_product`]), each a run marked
//! "via console".

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Form};

use super::auth::{Principal, button, csrf_refused};
use super::page::{csrf_field, esc, layout, url};
use super::{AppState, blocking};
use crate::app;
use crate::config::{Config, Link};
use crate::domain::catalogue;
use crate::exchange::Role;

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct Params {
    link: Option<String>,
}

/// The link whose distributor's catalogue is shown: the one named, or the
/// first whose distributor this config serves.
fn link_of<'c>(config: &'c Config, name: Option<&str>) -> Option<&'c Link> {
    config
        .served(None)
        .filter(|(l, _, side)| *side == Role::Distributor && name.is_none_or(|n| l.name == n))
        .map(|(l, _, _)| l)
        .next()
}

pub(crate) async fn page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<Params>,
) -> Response {
    let config = Arc::clone(&state.shared.config);
    let csrf = p.csrf.clone();
    let body = blocking(move || render(&config, q.link.as_deref(), &csrf)).await;
    match body {
        Ok(b) => layout("Catalogue", Some(&p.csrf), &b).into_response(),
        Err(r) => r,
    }
}

fn render(config: &Config, link: Option<&str>, csrf: &str) -> String {
    let Some(link) = link_of(config, link) else {
        return "<p>No link whose distributor this config serves: no catalogue here.</p>".into();
    };
    let listed = crate::store::open_read_only(&config.store_path(&link.distributor))
        .map_err(|e| e.to_string())
        .and_then(|c| catalogue::list(&c, false).map_err(|e| e.to_string()));
    let mut products = match listed {
        Ok(p) => p,
        Err(e) => return format!("<p class=\"err\">{}</p>", esc(&e)),
    };
    products.sort_by_key(|p| p.state != "to_validate");
    let mut out = format!(
        "<p>Products of link {} at {}.</p><table><tr><th>id</th><th>code</th><th>name</th><th>state</th><th>rate table</th><th>performances</th><th>profiles</th><th>actions</th></tr>",
        esc(&link.name),
        esc(link.distributor.as_str())
    );
    for p in &products {
        let id = p.id.to_string();
        let validate = if p.state == "to_validate" {
            button(
                csrf,
                "/catalogue/validate",
                &[("link", &link.name), ("product", &id)],
                "Validate",
            )
            .replace("<button ", &format!("<button id=\"validate-{id}\" "))
        } else {
            String::new()
        };
        let assign = format!(
            " <form class=\"inline\" method=\"post\" action=\"/catalogue/assign\">{}<input type=\"hidden\" name=\"link\" value=\"{}\"><input type=\"hidden\" name=\"product\" value=\"{id}\"><input name=\"profile\" id=\"profile-{id}\" size=\"10\" placeholder=\"profile code\"> <button type=\"submit\" id=\"assign-{id}\">Assign</button></form>",
            csrf_field(csrf),
            esc(&link.name)
        );
        let _ = write!(
            out,
            "<tr><td>{id}</td><td>{}</td><td>{}</td><td class=\"state\">{}</td><td>{} {} ({} prices)</td><td>{}</td><td>{}</td><td>{validate}{assign}</td></tr>",
            esc(&p.code),
            esc(&p.name),
            esc(&p.state),
            esc(&p.rate_table.code),
            esc(&p.rate_table.state),
            p.rate_table.prices,
            p.performances.len(),
            esc(&p.profiles.join(", "))
        );
    }
    out.push_str("</table>");
    out
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct ActionForm {
    #[serde(default)]
    csrf: String,
    link: String,
    product: i64,
    #[serde(default)]
    profile: String,
}

pub(crate) async fn validate(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Form(form): Form<ActionForm>,
) -> Response {
    act(state, p, form, false).await
}

pub(crate) async fn assign(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Form(form): Form<ActionForm>,
) -> Response {
    act(state, p, form, true).await
}

async fn act(state: AppState, p: Principal, form: ActionForm, assign: bool) -> Response {
    if let Some(r) = csrf_refused(&p, &form.csrf) {
        return r;
    }
    let config = Arc::clone(&state.shared.config);
    let back = format!(
        "<p><a id=\"back\" href=\"/catalogue?link={}\">Back to the catalogue</a></p>",
        url(&form.link)
    );
    let done = blocking(move || -> Result<String, String> {
        let link = link_of(&config, Some(&form.link))
            .ok_or_else(|| format!("no link {} whose distributor this config serves", form.link))?;
        if assign {
            let a = app::assign_product(
                &config,
                &link.name,
                form.product,
                &form.profile,
                app::VIA_CONSOLE,
            )
            .map_err(|e| app::chain(&e))?
            .map_err(|e| e.to_string())?;
            Ok(format!(
                "product {} {} {} sales profile {} (run {}); {}",
                a.product,
                a.product_code,
                if a.already {
                    "was already in"
                } else {
                    "assigned to"
                },
                a.profile_code,
                a.run,
                if a.sellable {
                    "sellable now"
                } else {
                    "sellable once validated"
                }
            ))
        } else {
            let v = app::validate_product(&config, &link.name, form.product, app::VIA_CONSOLE)
                .map_err(|e| app::chain(&e))?
                .map_err(|e| e.to_string())?;
            if v.refused.is_empty() {
                Ok(format!(
                    "validated {} (run {}): {} rate table(s), {} logical configuration(s)",
                    v.validated
                        .iter()
                        .map(|(id, c)| format!("{id} {c}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    v.run,
                    v.rate_tables,
                    v.logical_configurations
                ))
            } else {
                Err(format!(
                    "nothing validated (run {}): {}",
                    v.run,
                    v.refused
                        .iter()
                        .map(|(_, r)| r.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                ))
            }
        }
    })
    .await;
    match done {
        Ok(Ok(text)) => layout(
            "Catalogue changed",
            Some(&p.csrf),
            &format!("<p class=\"note\" id=\"changed\">{}</p>{back}", esc(&text)),
        )
        .into_response(),
        Ok(Err(e)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            layout(
                "Nothing changed",
                Some(&p.csrf),
                &format!("<p class=\"err\">{}</p>{back}", esc(&e)),
            ),
        )
            .into_response(),
        Err(r) => r,
    }
}
