//! The setup file: the objects of an institution's own setup (sales
//! channels, points of sale, profiles, external managers…) that the manual
//! requires before the first exchange, in TOML.
//!
//! [`setup_file`] and [`setup_str`] take the file (or its text) and the
//! caller's transaction and return a [`SetupSummary`]; a file with any
//! problem loads nothing and is refused with every problem listed
//! ([`DomainError::Setup`]). The format is documented key by key in
//! `samples/README.md` (section "Setup file") and by the raw types
//! (`raw`). The file is read whole ([`SETUP_MAX_BYTES`] at most), checked
//! against the store (its institution and role), then section by section:
//! `manager` holds the manager's sections, `distributor` the distributor's,
//! `problems` what they share.

mod distributor;
mod manager;
mod problems;
mod raw;

use std::collections::HashSet;
use std::path::Path;

use rusqlite::Transaction;

use self::problems::Problems;
use self::raw::RawSetup;
use super::{store_institution, store_role};
use crate::domain::DomainError;
use crate::store::Role;

/// Largest setup file read, in bytes.
pub const SETUP_MAX_BYTES: u64 = 4 << 20;

/// The kinds of sales channel the setup file accepts.
pub const CHANNEL_KINDS: [&str; 5] = ["stx_file", "box_office", "internet", "call_centre", "other"];

/// What a setup file loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupSummary {
    pub institution: String,
    pub role: Role,
    /// Objects upserted (list members not counted).
    pub objects: usize,
}

/// Reads and loads a setup file (TOML) into the store of the transaction: all
/// of it, or nothing with every problem listed.
pub fn setup_file(tx: &Transaction<'_>, path: &Path) -> Result<SetupSummary, DomainError> {
    let file = path.display().to_string();
    let refuse = |p: String| DomainError::Setup {
        file: file.clone(),
        problems: vec![p],
    };
    let meta = std::fs::metadata(path).map_err(|e| refuse(format!("cannot read it: {e}")))?;
    if !meta.is_file() {
        return Err(refuse("it is not a regular file".to_owned()));
    }
    if meta.len() > SETUP_MAX_BYTES {
        return Err(refuse(format!(
            "it is {} bytes, more than the {SETUP_MAX_BYTES} accepted",
            meta.len()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| refuse(format!("cannot read it: {e}")))?;
    setup_str(tx, &text, &file)
}

/// Loads setup TOML already in memory; `file` names it in messages.
pub fn setup_str(
    tx: &Transaction<'_>,
    text: &str,
    file: &str,
) -> Result<SetupSummary, DomainError> {
    let raw = parse(text, file)?;
    let role = store_role(tx)?;
    let institution = store_institution(tx)?;
    check_owner(&raw, role, &institution, file)?;

    let mut p = Problems { list: Vec::new() };
    let mut seen = HashSet::new();
    let mut objects = 0usize;
    objects += manager::payment_methods(tx, &mut p, &mut seen, &raw.payment_method)?;
    objects += manager::contacts(tx, &mut p, &mut seen, &raw.contact)?;
    objects += manager::sales_channels(tx, &mut p, &mut seen, &raw.sales_channel)?;
    objects += manager::points_of_sale(tx, &mut p, &mut seen, &raw.point_of_sale)?;
    objects += manager::contingents(tx, &mut p, &mut seen, &raw.contingent)?;
    objects += manager::activity_profiles(tx, &mut p, &mut seen, &raw.activity_profile)?;
    objects += manager::product_profiles(tx, &mut p, &mut seen, &raw.product_profile)?;
    objects +=
        manager::external_sales_interfaces(tx, &mut p, &mut seen, &raw.external_sales_interface)?;
    objects += distributor::external_managers(tx, &mut p, &mut seen, &raw.external_manager)?;
    objects += distributor::virtual_operators(tx, &mut p, &mut seen, &raw.virtual_operator)?;
    objects += distributor::sales_profiles(tx, &mut p, &mut seen, &raw.sales_profile)?;

    if !p.list.is_empty() {
        return Err(DomainError::Setup {
            file: file.to_owned(),
            problems: p.list,
        });
    }
    Ok(SetupSummary {
        institution,
        role,
        objects,
    })
}

/// Reads the TOML; a syntax or type error is refused with its line.
fn parse(text: &str, file: &str) -> Result<RawSetup, DomainError> {
    toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .and_then(|s| text.get(..s.start))
            .map(|before| before.matches('\n').count() + 1);
        let msg = e.message().trim().to_owned();
        DomainError::Setup {
            file: file.to_owned(),
            problems: vec![match line {
                Some(l) => format!("line {l}: {msg}"),
                None => msg,
            }],
        }
    })
}

/// The file must be this store's: its institution, its role, and no section
/// of the other role. Refused with every mismatch listed.
fn check_owner(
    raw: &RawSetup,
    role: Role,
    institution: &str,
    file: &str,
) -> Result<(), DomainError> {
    let mut p = Problems { list: Vec::new() };
    if raw.institution != institution {
        p.push(format!(
            "institution is {:?} but this store belongs to {institution}; load the setup file of {institution}",
            crate::ident::shorten(&raw.institution)
        ));
    }
    if raw.role != role {
        p.push(format!(
            "role is {} but this store is a {role}'s; load the setup file of a {role}",
            raw.role
        ));
    }
    let foreign: Vec<(&str, bool)> = match role {
        Role::Manager => vec![
            ("external_manager", !raw.external_manager.is_empty()),
            ("virtual_operator", !raw.virtual_operator.is_empty()),
            ("sales_profile", !raw.sales_profile.is_empty()),
        ],
        Role::Distributor => vec![
            ("sales_channel", !raw.sales_channel.is_empty()),
            ("point_of_sale", !raw.point_of_sale.is_empty()),
            ("payment_method", !raw.payment_method.is_empty()),
            ("contact", !raw.contact.is_empty()),
            (
                "external_sales_interface",
                !raw.external_sales_interface.is_empty(),
            ),
            ("contingent", !raw.contingent.is_empty()),
            ("activity_profile", !raw.activity_profile.is_empty()),
            ("product_profile", !raw.product_profile.is_empty()),
        ],
    };
    for (section, present) in foreign {
        if present {
            p.push(format!(
                "[[{section}]] is a section of a {}'s setup; this store is a {role}'s, remove it",
                role.peer()
            ));
        }
    }
    if !p.list.is_empty() {
        return Err(DomainError::Setup {
            file: file.to_owned(),
            problems: p.list,
        });
    }
    Ok(())
}
