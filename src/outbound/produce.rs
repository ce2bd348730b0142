//! The payload producer: what every kind's export streams, and what it
//! reports. The export protocol (`export`) drives any [`Producer`]; each kind
//! implements it in its own module (`seatplan`, `catalogue`, `contingent`,
//! `sales`), which depends on this one and on nothing else of `outbound`.

use std::io::Write;

use rusqlite::Connection;

use crate::config::Link;
use crate::domain::export::{ExportError, Report, Scope};
use crate::format::Kind;

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
