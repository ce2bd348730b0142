//! The catalogue page of a link's distributor: the products imported from
//! the manager, those to validate first, each with its rate table,
//! performances, sales profiles and the differences from the last
//! validated version (what the import kept in `catalogue_change`);
//! *Validate* per object (a product with what it needs, a rate table or a
//! logical configuration on its own) and *Assign* a product to a sales
//! profile, through `stxd catalogue`'s domain calls
//! ([`app::validate_object`], [`app::assign_product`]), each a run marked
//! "via console".

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use axum::{Extension, Form};

use super::auth::{Principal, button, csrf_refused};
use super::page::{answered, csrf_field, esc, in_words, shown, url};
use super::{AppState, blocking, on_worker};
use crate::app;
use crate::config::{Config, Link};
use crate::domain::catalogue::{self, Selection};
use crate::store::mapping::MappingKind;

#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct Params {
    link: Option<String>,
}

/// The link whose distributor's catalogue is shown: the one named, or the
/// first whose distributor this config serves.
fn link_of<'c>(config: &'c Config, name: Option<&str>) -> Option<&'c Link> {
    super::mapping::links(config)
        .into_iter()
        .find(|l| name.is_none_or(|n| l.name == n))
}

pub(crate) async fn page(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<Params>,
) -> Response {
    let config = Arc::clone(&state.shared.config);
    let csrf = p.csrf.clone();
    let body = blocking(move || render(&config, q.link.as_deref(), &csrf)).await;
    shown("Catalogue", &p.csrf, body)
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
        "<p>Products of link {} at {}.</p><table><tr><th>id</th><th>code</th><th>name</th><th>state</th><th>rate table</th><th>performances</th><th>profiles</th><th>differences from the last validated version</th><th>validate, assign</th></tr>",
        esc(&link.name),
        esc(link.distributor.as_str())
    );
    let lcs = logical_configuration_ids(config, link);
    for p in &products {
        product_row(link, p, &lcs, csrf, &mut out);
    }
    out.push_str("</table>");
    out
}

/// The local ids of the logical configurations, by code (a code several
/// share is left out: it gets no button of its own).
fn logical_configuration_ids(config: &Config, link: &Link) -> HashMap<String, Option<i64>> {
    let mut ids: HashMap<String, Option<i64>> = HashMap::new();
    let listed = crate::store::open_read_only(&config.store_path(&link.distributor))
        .map_err(|e| e.to_string())
        .and_then(|c| {
            crate::domain::mapping::local_codes(&c, MappingKind::LogicalConfiguration)
                .map_err(|e| e.to_string())
        });
    for c in listed.unwrap_or_default() {
        ids.entry(c.code)
            .and_modify(|id| *id = None)
            .or_insert(Some(c.id));
    }
    ids
}

/// A *Validate* button for one object (`product`, `rate_table`,
/// `logical_configuration`) of local id `id`.
fn validate_button(link: &Link, csrf: &str, object: &str, id: i64, label: &str) -> String {
    let id = id.to_string();
    button(
        csrf,
        "/catalogue/validate",
        &[("link", &link.name), ("object", object), ("id", &id)],
        label,
    )
    .replace(
        "<button ",
        &format!("<button id=\"validate-{object}-{id}\" "),
    )
}

/// One product: its state, rate table, performances, profiles, the
/// differences waiting for validation, and the buttons that validate each
/// object on its own.
fn product_row(
    link: &Link,
    p: &catalogue::ProductRow,
    lcs: &HashMap<String, Option<i64>>,
    csrf: &str,
    out: &mut String,
) {
    let id = p.id.to_string();
    let mut validate = String::new();
    if p.state == "to_validate" {
        validate.push_str(
            &button(
                csrf,
                "/catalogue/validate",
                &[("link", &link.name), ("product", &id)],
                "Validate",
            )
            .replace("<button ", &format!("<button id=\"validate-{id}\" ")),
        );
    }
    if p.rate_table.state == "to_validate" {
        validate.push_str(&validate_button(
            link,
            csrf,
            "rate_table",
            p.rate_table.id,
            &format!("Validate rate table {}", p.rate_table.code),
        ));
    }
    let mut seen = Vec::new();
    for f in &p.performances {
        if f.logical_configuration_state == "to_validate"
            && !seen.contains(&&f.logical_configuration)
        {
            seen.push(&f.logical_configuration);
            if let Some(Some(lc)) = lcs.get(&f.logical_configuration) {
                validate.push_str(&validate_button(
                    link,
                    csrf,
                    "logical_configuration",
                    *lc,
                    &format!("Validate logical configuration {}", f.logical_configuration),
                ));
            }
        }
    }
    let assign = format!(
        " <form class=\"inline\" method=\"post\" action=\"/catalogue/assign\">{}<input type=\"hidden\" name=\"link\" value=\"{}\"><input type=\"hidden\" name=\"product\" value=\"{id}\"><input name=\"profile\" id=\"profile-{id}\" size=\"10\" placeholder=\"profile code\"> <button type=\"submit\" id=\"assign-{id}\">Assign</button></form>",
        csrf_field(csrf),
        esc(&link.name)
    );
    let mut perfs = String::new();
    for f in &p.performances {
        let _ = write!(
            perfs,
            "<li>{} {} ({}, logical configuration {} {}){}</li>",
            esc(&f.code),
            esc(&f.start),
            esc(&f.state),
            esc(&f.logical_configuration),
            esc(&f.logical_configuration_state),
            if f.validated {
                ""
            } else {
                " <em>to validate</em>"
            }
        );
    }
    let mut changes = String::new();
    if !p.changes.is_empty() {
        changes.push_str("<ul class=\"changes\">");
        for c in &p.changes {
            let _ = write!(
                changes,
                "<li><strong>{}</strong>: {} <small>({})</small></li>",
                esc(&c.object),
                esc(&c.difference),
                esc(&c.file)
            );
        }
        changes.push_str("</ul>");
    }
    let class = if validate.is_empty() {
        ""
    } else {
        " class=\"pending\""
    };
    let _ = write!(
        out,
        "<tr{class}><td>{id}</td><td>{}</td><td>{}</td><td class=\"state\">{}</td><td>{} {} ({} prices)</td><td><ul>{perfs}</ul></td><td>{}</td><td>{changes}</td><td>{validate}{assign}</td></tr>",
        esc(&p.code),
        esc(&p.name),
        esc(&p.state),
        esc(&p.rate_table.code),
        esc(&p.rate_table.state),
        p.rate_table.prices,
        esc(&p.profiles.join(", "))
    );
}

#[derive(Debug, serde::Deserialize)]
pub(crate) struct ActionForm {
    #[serde(default)]
    csrf: String,
    link: String,
    /// The product to validate or assign (local id).
    #[serde(default)]
    product: Option<i64>,
    /// Validate: what `id` is (`product`, `rate_table`,
    /// `logical_configuration`); a product when absent.
    #[serde(default)]
    object: String,
    #[serde(default)]
    id: Option<i64>,
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
    let done = on_worker(&state, move || -> Result<String, String> {
        let link = link_of(&config, Some(&form.link))
            .ok_or_else(|| format!("no link {} whose distributor this config serves", form.link))?;
        if assign {
            let product = form.product.ok_or("expected a product")?;
            let a = app::assign_product(
                &config,
                &link.name,
                product,
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
            let id = form
                .id
                .or(form.product)
                .ok_or("expected the id of the object to validate")?;
            let ids = [id];
            let selection = match form.object.as_str() {
                "" | "product" => Selection::Ids(&ids),
                "rate_table" => Selection::RateTables(&ids),
                "logical_configuration" => Selection::LogicalConfigurations(&ids),
                other => {
                    return Err(format!(
                        "object {other:?}: expected product, rate_table or logical_configuration"
                    ));
                }
            };
            let v = app::validate_object(&config, &link.name, selection, app::VIA_CONSOLE)
                .map_err(|e| app::chain(&e))?
                .map_err(|e| e.to_string())?;
            if v.refused.is_empty() {
                Ok(format!(
                    "validated {} (run {}): {} rate table(s), {} logical configuration(s)",
                    v.validated
                        .iter()
                        .map(|(id, c)| format!("product {id} {c}"))
                        .chain(v.objects.iter().cloned())
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
    answered(&p.csrf, "Catalogue changed", &back, done.map(in_words))
}
