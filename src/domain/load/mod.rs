//! Master-data loading: seat-plan and catalogue records and the setup file, into
//! one institution's store.
//!
//! Every function works inside the transaction the caller gives, so several
//! files load all or nothing. Loading upserts by technical id: loading the same
//! data again changes nothing, loading changed data updates it, and nothing is
//! ever deleted here (objects may already be referenced by orders). References
//! are checked as each record arrives, so the order is the documents' order:
//! the seat plan before the catalogue (logical configurations and performances
//! name configurations), the catalogue before the setup file (profiles name
//! activities, products and audience subcategories). A missing reference is a
//! [`DomainError::Missing`] naming both objects.
//!
//! The setup file format is documented key by key in `samples/README.md`
//! (section "Setup file") and by the raw types of the `setup` module.
//!
//! A seat plan may move labels between rows and seats (a renumbering, a
//! swap): a label another object still carries is set aside until the file
//! reaches that object, and [`seatplan_done`], called once the file is read,
//! refuses a file that left an object without a label.
//!
//! One file per part: `master` (seat plan and catalogue records), `relabel`
//! (labels moving inside a seat plan) and `setup` (the setup file, one
//! function per section); this module holds the store helpers they share and
//! re-exports their public items.

mod logical;
mod master;
pub mod rate_versions;
mod relabel;
mod setup;

pub use master::{catalogue_item, seatplan_item};
pub use rate_versions::catalogue_done;
pub use relabel::seatplan_done;
pub use setup::{CHANNEL_KINDS, SETUP_MAX_BYTES, SetupSummary, setup_file, setup_str};

use rusqlite::Connection;

use super::{DomainError, exists};
use crate::ident::TechId;
use crate::store::Role;

/// Fails with "`object` names `kind` `id`, which is not loaded" when absent.
fn require(
    conn: &Connection,
    table: &'static str,
    id: TechId,
    object: impl FnOnce() -> String,
) -> Result<(), DomainError> {
    if exists(conn, table, id.get())? {
        Ok(())
    } else {
        Err(DomainError::Missing {
            object: object(),
            kind: table.replace('_', " "),
            id: id.get(),
        })
    }
}

/// The role recorded in the store.
pub fn store_role(conn: &Connection) -> Result<Role, DomainError> {
    let role: String = conn
        .prepare_cached("SELECT role FROM institution WHERE id = 1")?
        .query_row([], |r| r.get(0))?;
    role.parse().map_err(|e: crate::exchange::Unknown| {
        DomainError::Store(crate::store::StoreError::Corrupt(format!(
            "institution role: {e}"
        )))
    })
}

/// The institution code recorded in the store.
pub fn store_institution(conn: &Connection) -> Result<String, DomainError> {
    Ok(conn
        .prepare_cached("SELECT code FROM institution WHERE id = 1")?
        .query_row([], |r| r.get(0))?)
}
