//! `stxd catalogue …`: the distributor reviews, validates and puts on sale the
//! products its catalogue imports created. Calls [`crate::domain::catalogue`]
//! on the distributor institution of a link; decides nothing itself.

use std::io::Write;

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;

use super::{EXIT_FINDINGS, EXIT_OK, EXIT_USAGE, Refused, names};
use crate::app;
use crate::config::{Config, Institution};
use crate::domain::DomainError;
use crate::domain::catalogue::{self, ProductRow, Selection};
use crate::store::mapping::MappingKind;
use crate::store::{Role, Store};

#[derive(Debug, Subcommand)]
pub enum CatalogueCommand {
    /// List the products imported from the manager, with their rate table,
    /// performances and sales profiles.
    List {
        /// Only the products waiting for validation.
        #[arg(long)]
        to_validate: bool,
        /// The link (default: the only link whose distributor is in the config).
        #[arg(long, value_name = "LINK")]
        link: Option<String>,
    },
    /// Validate objects, all or nothing: products (each with its rate
    /// table, the logical configurations of its performances and its links
    /// to them), or only rate tables or logical configurations.
    Validate {
        /// Products: local id or code (see `catalogue list`), or the
        /// manager's product id.
        #[arg(
            value_name = "PRODUCT",
            required_unless_present_any = ["all", "rate_table", "logical_configuration"],
            conflicts_with = "all"
        )]
        ids: Vec<String>,
        /// Every object waiting for validation.
        #[arg(long)]
        all: bool,
        /// Only these rate tables (local id or code, or the manager's id).
        #[arg(long, value_name = "RATE_TABLE", conflicts_with_all = ["all", "ids", "logical_configuration"])]
        rate_table: Vec<String>,
        /// Only these logical configurations (local id or code, or the
        /// manager's id).
        #[arg(long, value_name = "LOGICAL_CONFIGURATION", conflicts_with_all = ["all", "ids"])]
        logical_configuration: Vec<String>,
        /// The link (default: the only link whose distributor is in the config).
        #[arg(long, value_name = "LINK")]
        link: Option<String>,
    },
    /// Assign a product to a sales profile (code or id): validated products
    /// in a profile are sellable.
    AssignProfile {
        /// The product: local id or code (see `catalogue list`), or the
        /// manager's product id.
        product: String,
        /// The sales profile: code or id.
        profile: String,
        /// The link (default: the only link whose distributor is in the config).
        #[arg(long, value_name = "LINK")]
        link: Option<String>,
    },
}

/// Runs a `catalogue` subcommand.
pub fn run(config: &Config, json: bool, cmd: CatalogueCommand) -> anyhow::Result<u8> {
    let link = match &cmd {
        CatalogueCommand::List { link, .. }
        | CatalogueCommand::Validate { link, .. }
        | CatalogueCommand::AssignProfile { link, .. } => link.clone(),
    };
    let link = match config
        .distributor_link(link.as_deref())
        .map(|l| l.name.clone())
    {
        Ok(l) => l,
        Err(e) => {
            eprintln!("stxd: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    let (link, inst, mut store) = app::open_side(config, &link, Role::Distributor)?;
    let manager = link.manager.to_string();
    let mut out = super::out::stdout();
    match cmd {
        CatalogueCommand::List { to_validate, .. } => {
            list(&mut out, json, inst, &store, to_validate)
        }
        CatalogueCommand::Validate {
            ids,
            all,
            rate_table,
            logical_configuration,
            ..
        } => {
            let (kind, keys) = if !rate_table.is_empty() {
                (MappingKind::RateTable, rate_table)
            } else if !logical_configuration.is_empty() {
                (MappingKind::LogicalConfiguration, logical_configuration)
            } else {
                (MappingKind::Product, ids)
            };
            let ids = keys
                .iter()
                .map(|p| object_id(&store, &manager, kind, p))
                .collect::<anyhow::Result<Vec<i64>>>()?;
            let selection = match kind {
                _ if all => Selection::All,
                MappingKind::RateTable => Selection::RateTables(&ids),
                MappingKind::LogicalConfiguration => Selection::LogicalConfigurations(&ids),
                _ => Selection::Ids(&ids),
            };
            validate(&mut out, json, &mut store, selection)
        }
        CatalogueCommand::AssignProfile {
            product, profile, ..
        } => {
            let product = product_id(&store, &manager, &product)?;
            assign_profile(&mut out, json, &mut store, product, &profile)
        }
    }
}

/// The local id of a product named by local id, code or the manager's id
/// (names.rs); a number that names none is handed on for the domain to
/// refuse; a code that names none is refused here (exit 1).
fn product_id(store: &Store, manager: &str, key: &str) -> anyhow::Result<i64> {
    if let Some(id) = store.read(|c| names::local_id(c, manager, MappingKind::Product, key))? {
        return Ok(id);
    }
    key.trim().parse::<i64>().map_err(|_| {
        Refused::err(format!(
            "product {key:?}: no local product has this code (or it names several): see stxd catalogue list"
        ))
    })
}

/// The local id of a rate table or logical configuration named by local
/// id, code (unique) or the manager's id; of a product as [`product_id`].
fn object_id(store: &Store, manager: &str, kind: MappingKind, key: &str) -> anyhow::Result<i64> {
    if kind == MappingKind::Product {
        return product_id(store, manager, key);
    }
    let table = kind.local_table();
    let by_code: Vec<i64> = store.read(|c| -> anyhow::Result<Vec<i64>> {
        Ok(c.prepare(&format!(
            "SELECT id FROM {table} WHERE code = ?1 ORDER BY id LIMIT 2"
        ))?
        .query_map([key.trim()], |r| r.get(0))?
        .collect::<Result<_, _>>()?)
    })?;
    if let [id] = by_code[..] {
        return Ok(id);
    }
    if let Some(id) = store.read(|c| names::local_id(c, manager, kind, key))? {
        return Ok(id);
    }
    key.trim().parse::<i64>().map_err(|_| {
        Refused::err(format!(
            "{key:?}: no local {} has this code (or several have it): see stxd catalogue list",
            table.replace('_', " ")
        ))
    })
}

/// `catalogue list`: the imported products, one block each.
fn list(
    out: &mut impl Write,
    json: bool,
    inst: &Institution,
    store: &Store,
    to_validate: bool,
) -> anyhow::Result<u8> {
    let rows = store.read(|c| catalogue::list(c, to_validate))?;
    if json {
        writeln!(
            out,
            "{:#}",
            json!({"institution": inst.code.as_str(), "products": rows})
        )?;
    } else if rows.is_empty() {
        writeln!(
            out,
            "{}: no product{}",
            inst.code,
            if to_validate { " to validate" } else { "" }
        )?;
    } else {
        for p in &rows {
            write_product(out, p)?;
        }
    }
    Ok(EXIT_OK)
}

/// One product of `catalogue list`, with its rate table, performances and
/// sales profiles.
fn write_product(out: &mut impl Write, p: &ProductRow) -> std::io::Result<()> {
    writeln!(out, "{:>6}  {:<8} {:<12} {}", p.id, p.code, p.state, p.name)?;
    writeln!(
        out,
        "        rate table {} {} ({}, {} prices)",
        p.rate_table.id, p.rate_table.code, p.rate_table.state, p.rate_table.prices
    )?;
    for f in &p.performances {
        writeln!(
            out,
            "        performance {} {} {} ({}, logical configuration {} {}){}",
            f.id,
            f.code,
            f.start,
            f.state,
            f.logical_configuration,
            f.logical_configuration_state,
            if f.validated { "" } else { " to validate" }
        )?;
    }
    for c in &p.changes {
        writeln!(
            out,
            "        to validate: {}: {} ({})",
            c.object, c.difference, c.file
        )?;
    }
    writeln!(
        out,
        "        sales profiles: {}",
        if p.profiles.is_empty() {
            "none".to_owned()
        } else {
            p.profiles.join(", ")
        }
    )
}

/// `catalogue validate`: all the products selected, or none.
fn validate(
    out: &mut impl Write,
    json: bool,
    store: &mut Store,
    selection: Selection<'_>,
) -> anyhow::Result<u8> {
    let v = store.write(|tx| catalogue::validate(tx, selection))?;
    if json {
        writeln!(out, "{:#}", json!(v))?;
    } else if v.refused.is_empty() {
        for (id, code) in &v.validated {
            writeln!(out, "validated: product {id} {code}")?;
        }
        for object in &v.objects {
            writeln!(out, "validated: {object}")?;
        }
        writeln!(
            out,
            "{} product(s), {} rate table(s), {} logical configuration(s), {} performance link(s) validated (run {})",
            v.validated.len(),
            v.rate_tables,
            v.logical_configurations,
            v.performances,
            v.run
        )?;
    } else {
        for (_, reason) in &v.refused {
            writeln!(out, "refused: {reason}")?;
        }
        writeln!(out, "nothing validated (run {})", v.run)?;
    }
    Ok(if v.refused.is_empty() {
        EXIT_OK
    } else {
        EXIT_FINDINGS
    })
}

/// `catalogue assign-profile`: a product into a sales profile; a refusal
/// exits 1 with its reason.
fn assign_profile(
    out: &mut impl Write,
    json: bool,
    store: &mut Store,
    product: i64,
    profile: &str,
) -> anyhow::Result<u8> {
    match store.write(|tx| catalogue::assign_profile(tx, product, profile)) {
        Ok(a) => {
            if json {
                writeln!(out, "{:#}", json!(a))?;
            } else {
                writeln!(
                    out,
                    "product {} {} {} sales profile {} {}; {} (run {})",
                    a.product,
                    a.product_code,
                    if a.already {
                        "was already in"
                    } else {
                        "assigned to"
                    },
                    a.profile,
                    a.profile_code,
                    if a.sellable {
                        "sellable"
                    } else {
                        "not sellable until validated"
                    },
                    a.run
                )?;
            }
            Ok(EXIT_OK)
        }
        Err(e @ DomainError::Invalid { .. }) => {
            if json {
                writeln!(
                    out,
                    "{:#}",
                    json!({"assigned": false, "reason": e.to_string()})
                )?;
            } else {
                eprintln!("stxd: not assigned: {e}");
            }
            Ok(EXIT_FINDINGS)
        }
        Err(e) => Err(e).context("cannot assign the product"),
    }
}
