//! The sections of a manager's setup file: payment methods, contacts, sales
//! channels, points of sale, contingents, activity and product profiles,
//! external sales interfaces.
//!
//! One function per section: each takes the section's entries as written,
//! checks every value and reference (problems go to [`Problems`], the entry
//! is then skipped), upserts the good entries in the caller's transaction
//! and returns how many it upserted.

use std::collections::HashSet;

use rusqlite::{OptionalExtension, Transaction};

use super::CHANNEL_KINDS;
use super::problems::{Problems, at, first_time, replace_list, upsert_on_channel};
use super::raw::{
    RawActivityProfile, RawContact, RawContingent, RawExternalSalesInterface, RawPaymentMethod,
    RawPointOfSale, RawProductProfile, RawSalesChannel,
};
use crate::domain::DomainError;

/// Upserts the `[[payment_method]]` entries; returns how many.
pub(super) fn payment_methods(
    tx: &Transaction<'_>,
    p: &mut Problems,
    seen: &mut HashSet<String>,
    list: &[RawPaymentMethod],
) -> Result<usize, DomainError> {
    let mut objects = 0usize;
    for (n, o) in list.iter().enumerate() {
        let at = at("payment_method", n, format!("id {}", o.id));
        let (id, code, name) = p.identity(&at, o.id, &o.code, &o.name);
        let (Some(id), Some(code), Some(name)) = (id, code, name) else {
            continue;
        };
        if !first_time(seen, p, &at, format!("payment method {id}")) {
            continue;
        }
        tx.prepare_cached(
            "INSERT INTO payment_method (id, code, name, allows_pending_account) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET code = excluded.code, name = excluded.name,
                 allows_pending_account = excluded.allows_pending_account
             WHERE code IS NOT excluded.code OR name IS NOT excluded.name
                 OR allows_pending_account IS NOT excluded.allows_pending_account",
        )?
        .execute((id, code, name, o.allows_pending_account))?;
        objects += 1;
    }
    Ok(objects)
}

/// Upserts the `[[contact]]` entries; returns how many.
pub(super) fn contacts(
    tx: &Transaction<'_>,
    p: &mut Problems,
    seen: &mut HashSet<String>,
    list: &[RawContact],
) -> Result<usize, DomainError> {
    let mut objects = 0usize;
    for (n, o) in list.iter().enumerate() {
        let at = at("contact", n, format!("id {}", o.id));
        let (id, code, name) = p.identity(&at, o.id, &o.code, &o.name);
        let (Some(id), Some(code), Some(name)) = (id, code, name) else {
            continue;
        };
        if !first_time(seen, p, &at, format!("contact {id}")) {
            continue;
        }
        tx.prepare_cached(
            "INSERT INTO contact (id, code, name, pending_account_authorised) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET code = excluded.code, name = excluded.name,
                 pending_account_authorised = excluded.pending_account_authorised
             WHERE code IS NOT excluded.code OR name IS NOT excluded.name
                 OR pending_account_authorised IS NOT excluded.pending_account_authorised",
        )?
        .execute((id, code, name, o.pending_account_authorised))?;
        objects += 1;
    }
    Ok(objects)
}

/// Upserts the `[[sales_channel]]` entries (a kind among [`CHANNEL_KINDS`]); returns how many.
pub(super) fn sales_channels(
    tx: &Transaction<'_>,
    p: &mut Problems,
    seen: &mut HashSet<String>,
    list: &[RawSalesChannel],
) -> Result<usize, DomainError> {
    let mut objects = 0usize;
    for (n, o) in list.iter().enumerate() {
        let at = at("sales_channel", n, format!("id {}", o.id));
        let (id, code, name) = p.identity(&at, o.id, &o.code, &o.name);
        let kind_ok = CHANNEL_KINDS.contains(&o.kind.as_str());
        if !kind_ok {
            p.push(format!(
                "{at}: kind: expected one of {}, found {:?}",
                CHANNEL_KINDS.join(", "),
                crate::ident::shorten(&o.kind)
            ));
        }
        let (Some(id), Some(code), Some(name), true) = (id, code, name, kind_ok) else {
            continue;
        };
        if !first_time(seen, p, &at, format!("sales channel {id}")) {
            continue;
        }
        tx.prepare_cached(
            "INSERT INTO sales_channel (id, code, name, kind, in_operation) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO UPDATE SET code = excluded.code, name = excluded.name,
                 kind = excluded.kind, in_operation = excluded.in_operation
             WHERE code IS NOT excluded.code OR name IS NOT excluded.name
                 OR kind IS NOT excluded.kind OR in_operation IS NOT excluded.in_operation",
        )?
        .execute((id, code, name, o.kind.as_str(), o.in_operation))?;
        objects += 1;
    }
    Ok(objects)
}

/// Upserts the `[[point_of_sale]]` entries and their payment methods; returns how many.
pub(super) fn points_of_sale(
    tx: &Transaction<'_>,
    p: &mut Problems,
    seen: &mut HashSet<String>,
    list: &[RawPointOfSale],
) -> Result<usize, DomainError> {
    let mut objects = 0usize;
    for (n, o) in list.iter().enumerate() {
        let at = at("point_of_sale", n, format!("id {}", o.id));
        let (id, code, name) = p.identity(&at, o.id, &o.code, &o.name);
        let channel = p.id(&at, "channel", o.channel);
        let methods = p.ids(&at, "payment_methods", &o.payment_methods);
        let (Some(id), Some(code), Some(name), Some(channel), Some(methods)) =
            (id, code, name, channel, methods)
        else {
            continue;
        };
        let refs = p.present(tx, &at, "channel", "sales_channel", channel)?
            & p.all_present(tx, &at, "payment_methods", "payment_method", &methods)?;
        if !refs || !first_time(seen, p, &at, format!("point of sale {id}")) {
            continue;
        }
        tx.prepare_cached(
            "INSERT INTO point_of_sale (id, code, name, channel, in_operation) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO UPDATE SET code = excluded.code, name = excluded.name,
                 channel = excluded.channel, in_operation = excluded.in_operation
             WHERE code IS NOT excluded.code OR name IS NOT excluded.name
                 OR channel IS NOT excluded.channel OR in_operation IS NOT excluded.in_operation",
        )?
        .execute((id, code, name, channel, o.in_operation))?;
        replace_list(
            tx,
            "point_of_sale_payment_method",
            "point_of_sale",
            "payment_method",
            id,
            &methods,
        )?;
        objects += 1;
    }
    Ok(objects)
}

/// Upserts the `[[contingent]]` entries (id, code, name, channel); returns how many.
pub(super) fn contingents(
    tx: &Transaction<'_>,
    p: &mut Problems,
    seen: &mut HashSet<String>,
    list: &[RawContingent],
) -> Result<usize, DomainError> {
    let mut objects = 0usize;
    for (n, o) in list.iter().enumerate() {
        let at = at("contingent", n, format!("id {}", o.id));
        let (id, code, name) = p.identity(&at, o.id, &o.code, &o.name);
        let channel = p.id(&at, "channel", o.channel);
        let (Some(id), Some(code), Some(name), Some(channel)) = (id, code, name, channel) else {
            continue;
        };
        if !p.present(tx, &at, "channel", "sales_channel", channel)?
            || !first_time(seen, p, &at, format!("contingent {id}"))
        {
            continue;
        }
        upsert_on_channel(tx, "contingent", id, &code, &name, channel)?;
        objects += 1;
    }
    Ok(objects)
}

/// Upserts the `[[activity_profile]]` entries and their activities; returns how many.
pub(super) fn activity_profiles(
    tx: &Transaction<'_>,
    p: &mut Problems,
    seen: &mut HashSet<String>,
    list: &[RawActivityProfile],
) -> Result<usize, DomainError> {
    let mut objects = 0usize;
    for (n, o) in list.iter().enumerate() {
        let at = at("activity_profile", n, format!("id {}", o.id));
        let (id, code, name) = p.identity(&at, o.id, &o.code, &o.name);
        let channel = p.id(&at, "channel", o.channel);
        let list = p.ids(&at, "activities", &o.activities);
        let (Some(id), Some(code), Some(name), Some(channel), Some(list)) =
            (id, code, name, channel, list)
        else {
            continue;
        };
        let refs = p.present(tx, &at, "channel", "sales_channel", channel)?
            & p.all_present(tx, &at, "activities", "activity", &list)?;
        if !refs || !first_time(seen, p, &at, format!("activity profile {id}")) {
            continue;
        }
        upsert_on_channel(tx, "activity_profile", id, &code, &name, channel)?;
        replace_list(
            tx,
            "activity_profile_activity",
            "activity_profile",
            "activity",
            id,
            &list,
        )?;
        objects += 1;
    }
    Ok(objects)
}

/// Upserts the `[[product_profile]]` entries, their products and audience subcategories; returns how many.
pub(super) fn product_profiles(
    tx: &Transaction<'_>,
    p: &mut Problems,
    seen: &mut HashSet<String>,
    list: &[RawProductProfile],
) -> Result<usize, DomainError> {
    let mut objects = 0usize;
    for (n, o) in list.iter().enumerate() {
        let at = at("product_profile", n, format!("id {}", o.id));
        let (id, code, name) = p.identity(&at, o.id, &o.code, &o.name);
        let channel = p.id(&at, "channel", o.channel);
        let products = p.ids(&at, "products", &o.products);
        let audiences = p.ids(&at, "audience_subcategories", &o.audience_subcategories);
        let (Some(id), Some(code), Some(name), Some(channel), Some(products), Some(audiences)) =
            (id, code, name, channel, products, audiences)
        else {
            continue;
        };
        let refs = p.present(tx, &at, "channel", "sales_channel", channel)?
            & p.all_present(tx, &at, "products", "product", &products)?
            & p.all_present(
                tx,
                &at,
                "audience_subcategories",
                "audience_subcategory",
                &audiences,
            )?;
        if !refs || !first_time(seen, p, &at, format!("product profile {id}")) {
            continue;
        }
        upsert_on_channel(tx, "product_profile", id, &code, &name, channel)?;
        replace_list(
            tx,
            "product_profile_product",
            "product_profile",
            "product",
            id,
            &products,
        )?;
        replace_list(
            tx,
            "product_profile_audience",
            "product_profile",
            "audience_subcategory",
            id,
            &audiences,
        )?;
        objects += 1;
    }
    Ok(objects)
}

/// Upserts the `[[external_sales_interface]]` entries (each login used once); returns how many.
pub(super) fn external_sales_interfaces(
    tx: &Transaction<'_>,
    p: &mut Problems,
    seen: &mut HashSet<String>,
    list: &[RawExternalSalesInterface],
) -> Result<usize, DomainError> {
    let mut objects = 0usize;
    for (n, o) in list.iter().enumerate() {
        let at = at("external_sales_interface", n, format!("id {}", o.id));
        let id = p.id(&at, "id", o.id);
        let login = p.login(&at, &o.login, true);
        let url = p.url(&at, &o.url);
        let channel = p.id(&at, "channel", o.channel);
        let distributor = p.code(&at, "distributor", &o.distributor);
        let contact = o.contact.map(|c| p.id(&at, "contact", c));
        let pos = o.point_of_sale.map(|c| p.id(&at, "point_of_sale", c));
        let (Some(id), Some(login), Some(url), Some(channel), Some(distributor)) =
            (id, login, url, channel, distributor)
        else {
            continue;
        };
        let (Some(contact), Some(pos)) = (
            contact.map_or(Some(None), |c| c.map(Some)),
            pos.map_or(Some(None), |c| c.map(Some)),
        ) else {
            continue;
        };
        let mut refs = p.present(tx, &at, "channel", "sales_channel", channel)?;
        if let Some(c) = contact {
            refs &= p.present(tx, &at, "contact", "contact", c)?;
        }
        if let Some(s) = pos {
            refs &= p.present(tx, &at, "point_of_sale", "point_of_sale", s)?;
        }
        let clash: Option<i64> = tx
            .prepare_cached(
                "SELECT id FROM external_sales_interface WHERE login = ?1 AND id <> ?2",
            )?
            .query_row((login.as_str(), id), |r| r.get(0))
            .optional()?;
        if let Some(other) = clash {
            p.push(format!(
                "{at}: login {login} is already used by external sales interface {other}"
            ));
            continue;
        }
        if !refs || !first_time(seen, p, &at, format!("external sales interface {id}")) {
            continue;
        }
        tx.prepare_cached(
            "INSERT INTO external_sales_interface (id, login, url, channel, distributor, contact, point_of_sale)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (id) DO UPDATE SET login = excluded.login, url = excluded.url,
                 channel = excluded.channel, distributor = excluded.distributor,
                 contact = excluded.contact, point_of_sale = excluded.point_of_sale
             WHERE login IS NOT excluded.login OR url IS NOT excluded.url
                 OR channel IS NOT excluded.channel OR distributor IS NOT excluded.distributor
                 OR contact IS NOT excluded.contact OR point_of_sale IS NOT excluded.point_of_sale",
        )?
        .execute((id, login, url, channel, distributor, contact, pos))?;
        objects += 1;
    }
    Ok(objects)
}
