//! The payload producer: what every kind's export streams, and what it
//! reports. The export protocol (`export`) drives any [`Producer`]; each kind
//! implements it in its own module (`seatplan`, `catalogue`, `contingent`,
//! `sales`), which depends on this one and on nothing else of `outbound`.

use std::io::Write;

use rusqlite::Connection;

use crate::config::Link;
use crate::domain::DomainError;
use crate::domain::export::{ExportError, Report, Scope};
use crate::domain::setup::{self, LinkFacts};
use crate::format::Kind;
use crate::store::Role;

/// What a producer wrote.
#[derive(Debug)]
pub struct Produced {
    /// Records written, as the payload's reader will count them.
    pub records: u64,
    pub report: Report,
}

/// Streams one kind of payload for a link out of the store.
pub trait Producer {
    fn kind(&self) -> Kind;

    /// The payload format version it writes (the manifest's
    /// `format-version`).
    fn format_version(&self) -> u32 {
        1
    }

    /// Writes the whole payload into `out` (already buffered and hashed).
    /// `conn` is the export's write transaction.
    fn produce(
        &self,
        conn: &Connection,
        link: &Link,
        out: &mut dyn Write,
    ) -> Result<Produced, ExportError>;
}

/// The manager's view of a link.
pub fn scope(link: &Link) -> Scope<'_> {
    Scope {
        distributor: link.distributor.as_str(),
        login: &link.login,
        products: link.products.as_deref(),
    }
}

/// Refuses an export whose failure would come later, at the peer, while the
/// manager's setup for `link` has an error: in the words of `stxd check`
/// ([`setup::require_ready`]), code `setup`.
pub fn require_ready(conn: &Connection, link: &Link, what: &str) -> Result<(), ExportError> {
    setup::require_ready(conn, Role::Manager, &LinkFacts::from(link), what).map_err(|e| match e {
        DomainError::Unready {
            object,
            problem,
            fix,
        } => ExportError::Setup {
            code: "setup",
            problem: format!("{object}: {problem}"),
            fix,
        },
        other => ExportError::BadData {
            object: format!("setup of link {}", link.name),
            problem: other.to_string(),
        },
    })
}
