//! The sections of a distributor's setup file: external managers, virtual
//! operators, sales profiles.
//!
//! One function per section: each takes the section's entries as written,
//! checks every value and reference (problems go to [`Problems`], the entry
//! is then skipped), upserts the good entries in the caller's transaction
//! and returns how many it upserted.

use std::collections::HashSet;

use rusqlite::{OptionalExtension, Transaction};

use super::problems::{Problems, at, first_time, replace_list};
use super::raw::{RawExternalManager, RawSalesProfile, RawVirtualOperator};
use crate::domain::DomainError;

/// Upserts the `[[external_manager]]` entries (each code used once); returns how many.
pub(super) fn external_managers(
    tx: &Transaction<'_>,
    p: &mut Problems,
    seen: &mut HashSet<String>,
    list: &[RawExternalManager],
) -> Result<usize, DomainError> {
    let mut objects = 0usize;
    for (n, o) in list.iter().enumerate() {
        let at = at("external_manager", n, format!("id {}", o.id));
        let (id, code, name) = p.identity(&at, o.id, &o.code, &o.name);
        let url = match &o.url {
            Some(u) => p.url(&at, u).map(Some),
            None => Some(None),
        };
        let (Some(id), Some(code), Some(name), Some(url)) = (id, code, name, url) else {
            continue;
        };
        let clash: Option<i64> = tx
            .prepare_cached("SELECT id FROM external_manager WHERE code = ?1 AND id <> ?2")?
            .query_row((code.as_str(), id), |r| r.get(0))
            .optional()?;
        if let Some(other) = clash {
            p.push(format!(
                "{at}: code {code} is already used by external manager {other}"
            ));
            continue;
        }
        if !first_time(seen, p, &at, format!("external manager {id}")) {
            continue;
        }
        tx.prepare_cached(
            "INSERT INTO external_manager (id, code, name, url) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET code = excluded.code, name = excluded.name, url = excluded.url
             WHERE code IS NOT excluded.code OR name IS NOT excluded.name OR url IS NOT excluded.url",
        )?
        .execute((id, code, name, url))?;
        objects += 1;
    }
    Ok(objects)
}

/// Upserts the `[[virtual_operator]]` entries; returns how many.
pub(super) fn virtual_operators(
    tx: &Transaction<'_>,
    p: &mut Problems,
    seen: &mut HashSet<String>,
    list: &[RawVirtualOperator],
) -> Result<usize, DomainError> {
    let mut objects = 0usize;
    for (n, o) in list.iter().enumerate() {
        let at = at(
            "virtual_operator",
            n,
            format!("login {:?}", crate::ident::shorten(&o.login)),
        );
        let login = p.login(&at, &o.login, false);
        let em = p.id(&at, "external_manager", o.external_manager);
        let (Some(login), Some(em)) = (login, em) else {
            continue;
        };
        if !p.present(tx, &at, "external_manager", "external_manager", em)?
            || !first_time(seen, p, &at, format!("virtual operator {login}"))
        {
            continue;
        }
        tx.prepare_cached(
            "INSERT INTO virtual_operator (external_manager, login) VALUES (?1, ?2)
             ON CONFLICT (login) DO UPDATE SET external_manager = excluded.external_manager
             WHERE external_manager IS NOT excluded.external_manager",
        )?
        .execute((em, login))?;
        objects += 1;
    }
    Ok(objects)
}

/// Upserts the `[[sales_profile]]` entries and their products; returns how many.
pub(super) fn sales_profiles(
    tx: &Transaction<'_>,
    p: &mut Problems,
    seen: &mut HashSet<String>,
    list: &[RawSalesProfile],
) -> Result<usize, DomainError> {
    let mut objects = 0usize;
    for (n, o) in list.iter().enumerate() {
        let at = at("sales_profile", n, format!("id {}", o.id));
        let (id, code, name) = p.identity(&at, o.id, &o.code, &o.name);
        let products = p.ids(&at, "products", &o.products);
        let (Some(id), Some(code), Some(name), Some(products)) = (id, code, name, products) else {
            continue;
        };
        if !p.all_present(tx, &at, "products", "product", &products)?
            || !first_time(seen, p, &at, format!("sales profile {id}"))
        {
            continue;
        }
        tx.prepare_cached(
            "INSERT INTO sales_profile (id, code, name) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET code = excluded.code, name = excluded.name
             WHERE code IS NOT excluded.code OR name IS NOT excluded.name",
        )?
        .execute((id, code, name))?;
        replace_list(
            tx,
            "sales_profile_product",
            "sales_profile",
            "product",
            id,
            &products,
        )?;
        objects += 1;
    }
    Ok(objects)
}
