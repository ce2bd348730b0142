//! The domain layer: the business rules of both roles, over the store.
//!
//! The CLI and the pipelines call these functions and never write SQL of their
//! own. [`load`] puts master data (seat plans, catalogue objects, the setup
//! file) into an institution's store; [`setup`] checks that the setup the
//! manual requires is present and says what is missing. Each function works
//! inside a transaction or on a connection the caller provides, so the caller
//! decides what commits together.

pub mod catalogue;
pub mod contingent;
pub mod export;
pub mod import;
pub mod load;
pub mod mapping;
pub mod reconcile;
pub mod reintegration;
pub mod selling;
pub mod setup;

use rusqlite::Connection;

use crate::store::StoreError;

/// Whether `table` holds a row with this `id` (one query, the statement
/// cached per table).
fn exists(conn: &Connection, table: &'static str, id: i64) -> Result<bool, rusqlite::Error> {
    conn.prepare_cached(&format!("SELECT 1 FROM {table} WHERE id = ?1"))?
        .exists([id])
}

/// Why a business operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// A record names an object that is not in the store.
    #[error(
        "{object} names {kind} {id}, which is not loaded; load it first (seat plan, then catalogue, then setup)"
    )]
    Missing {
        object: String,
        kind: String,
        id: i64,
    },
    /// A record contradicts data already in the store or itself.
    #[error("{object}: {problem}")]
    Invalid { object: String, problem: String },
    /// The setup file was refused; nothing of it was loaded.
    #[error("setup file {file} refused ({} problem(s)): {}; fix them and load it again", problems.len(), problems.join("; "))]
    Setup { file: String, problems: Vec<String> },
    /// A master-data file is malformed (named, with the position).
    #[error(transparent)]
    Format(#[from] crate::format::FormatError),
    #[error("cannot read {file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
}
