//! Inbound: a Fichier SecuTix file from arrival to its records.
//!
//! The stages and the type each one returns, data moving forward only:
//!
//! `Candidate` (a manifest path) → [`claim`] → [`Claimed`] (both files opened
//! safely, manifest read) → [`verify`] → [`Verified`] (HMAC, expectations,
//! size and digest checked) → [`parse`] → [`Records`] (a streaming iterator
//! that re-hashes what it parses and checks the record count at its end).
//!
//! Mapping, applying (one store transaction with the journal row) and
//! archiving follow in the catalogue and sales flows; they take [`Records`].
//! This module never writes to the store nor moves files.

pub mod claim;
pub mod parse;
pub mod verify;

pub use claim::Claimed;
pub use parse::{Record, Records};
pub use verify::Verified;

use crate::format::FormatError;

/// Why an inbound file did not get through a stage, and what happens next.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    /// The file is bad: it goes to `error/` with this reason; retrying cannot
    /// help.
    #[error(transparent)]
    Rejected(#[from] FormatError),
    /// The file could not be read now (I/O, permissions being fixed, disk):
    /// retry later; the file stays where it is.
    #[error("{file}: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
}

impl InboundError {
    /// A permanent error rejects the file; a transient one is retried.
    pub fn is_permanent(&self) -> bool {
        matches!(self, InboundError::Rejected(_))
    }

    /// The stable code of the reason (`io` for transient errors).
    pub fn code(&self) -> &'static str {
        match self {
            InboundError::Rejected(e) => e.code,
            InboundError::Io { .. } => "io",
        }
    }
}
