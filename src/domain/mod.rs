//! The domain layer: the business rules of both roles, over the store.
//!
//! The CLI and the pipelines call these functions and never write SQL of their
//! own. Each function works inside a transaction or on a connection the
//! caller provides, so the caller decides what commits together; none reads
//! a config, and only [`load`] reads a file (the setup file it is given).
//!
//! - [`load`]: master data (seat plans, catalogue objects, the setup file)
//!   into an institution's store.
//! - [`setup`]: the setup check: what the manual's first use requires, what
//!   is missing and the fix.
//! - [`mapping`]: the distributor's mapping table (manager object ↔ local
//!   object): resolution for the imports, the ops commands, the CSV round trip.
//! - [`import`]: the distributor's imports of seat plans and catalogues,
//!   through the mapping table, all or nothing, parked while a mapping lacks.
//! - [`catalogue`]: the distributor's validation of the imported catalogue and
//!   its sales profiles (what makes a product sellable).
//! - [`export`]: the manager's seat plan and catalogue exports of one link.
//! - [`lifecycle`]: the manager's performances cancelled or closed, and the
//!   rule that refuses a sale made after that or after the start.
//! - [`contingent`]: the manager's contingents (allotments) of a link, their
//!   versioned snapshots and the safe shrink.
//! - [`selling`]: the distributor's side of the contingents: their import,
//!   the point of sale (sell, refund) and the sales export.
//! - [`reintegration`]: the manager's booking of the distributor's sales,
//!   exactly once, and the rejected lines.
//! - [`orders`]: the manager's view of the reintegrated orders, their
//!   tickets and sources, and a link's pending account.
//! - [`reconcile`]: the manager's and the distributor's records of a link
//!   side by side, every difference named.
//!
//! Unit tests build their stores with the `fixtures` module (test builds
//! only).

pub mod catalogue;
pub mod contingent;
pub mod export;
#[cfg(test)]
mod fixtures;
pub mod import;
pub mod lifecycle;
pub mod load;
pub mod mapping;
pub mod orders;
pub mod reconcile;
pub mod reintegration;
pub mod selling;
pub mod setup;

use rusqlite::{Connection, Statement};

use crate::store::StoreError;

/// The statement in `slot`, prepared from `sql` the first time: what an
/// import runs at every line is held for the file, where the statement
/// cache would look it up by its text each time.
fn held<'s, 't>(
    slot: &'s mut Option<Statement<'t>>,
    conn: &'t Connection,
    sql: &str,
) -> rusqlite::Result<&'s mut Statement<'t>> {
    let st = match slot.take() {
        Some(st) => st,
        None => conn.prepare(sql)?,
    };
    Ok(slot.insert(st))
}

/// Whether `table` holds a row with this `id` (one query, the statement
/// cached per table).
fn exists(conn: &Connection, table: &'static str, id: i64) -> Result<bool, rusqlite::Error> {
    conn.prepare_cached(&format!("SELECT 1 FROM {table} WHERE id = ?1"))?
        .exists([id])
}

impl DomainError {
    /// A content refusal of `file` at `position` (see [`DomainError::Content`]).
    pub fn content(
        file: &str,
        position: crate::format::Position,
        code: &'static str,
        problem: impl Into<String>,
    ) -> DomainError {
        DomainError::Content(crate::format::FormatError::new(
            file, position, code, problem,
        ))
    }

    /// A content refusal made where the file and the position are not known
    /// (a helper deep in an importer): the importer's [`DomainError::locate`]
    /// fills them in.
    pub fn refused(
        code: &'static str,
        object: impl std::fmt::Display,
        problem: impl std::fmt::Display,
    ) -> DomainError {
        DomainError::content(
            "",
            crate::format::Position::File,
            code,
            format!("{object}: {problem}"),
        )
    }

    /// Gives a refusal the file and the position of the record being
    /// applied: a [`DomainError::refused`] gets them, and an
    /// [`DomainError::Invalid`] becomes a content refusal with the generic
    /// code `refused`. Other errors pass unchanged.
    pub fn locate(
        self,
        file: &str,
        position: impl FnOnce() -> crate::format::Position,
    ) -> DomainError {
        match self {
            DomainError::Content(mut f) if f.file.is_empty() => {
                f.file = file.to_owned();
                f.position = position();
                DomainError::Content(f)
            }
            DomainError::Invalid { object, problem } => {
                DomainError::content(file, position(), "refused", format!("{object}: {problem}"))
            }
            e => e,
        }
    }
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
    /// The store lacks, or has out of operation, an object the operation
    /// needs: a setup to fix, not bad input. A file that needs it waits in
    /// its inbox, its sequence not consumed.
    #[error("{object}: {problem}; fix: {fix}")]
    Unready {
        object: String,
        problem: String,
        fix: String,
    },
    /// A master-data file is malformed (named, with the position).
    #[error(transparent)]
    Format(#[from] crate::format::FormatError),
    /// An exchanged file's content breaks a rule the importer checks (a
    /// duplicate id, a seat still held, a version out of range…): the whole
    /// file is refused, with a stable code, the file and the position.
    #[error("{0}")]
    Content(crate::format::FormatError),
    #[error("cannot read {file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database error: {}", crate::store::sql_words(.0))]
    Sql(#[from] rusqlite::Error),
}
