//! The `SALES` payload (distributor → manager): a [`Producer`] writing
//! [`domain::selling::export_sales`] (every sale and refund not yet sent, in
//! the manager's ids, then the acknowledgement of each contingent version
//! applied) into the sales writer.
//!
//! The lines are marked with the file's sequence inside the export's
//! transaction: the next sequence of the link's outbound SALES files, read
//! from the journal in that same transaction (which allocates it the same
//! way), so a rolled-back export leaves them unsent.

use std::io::Write;

use rusqlite::Connection;

use super::produce::{Produced, Producer};
use crate::config::Link;
use crate::domain::export::ExportError;
use crate::domain::selling;
use crate::format::{Kind, sales};
use crate::store::journal;

/// The `SALES` payload of a link's distributor.
#[derive(Debug, Clone, Copy)]
pub struct SalesPayload;

impl Producer for SalesPayload {
    fn kind(&self) -> Kind {
        Kind::Sales
    }

    fn format_version(&self) -> u32 {
        2
    }

    fn produce(
        &self,
        conn: &Connection,
        link: &Link,
        out: &mut dyn Write,
    ) -> Result<Produced, ExportError> {
        let sequence = journal::next_out(conn, &link.name, Kind::Sales)?;
        let mut writer = if selling::sales_name_logical(conn, &link.name)? {
            sales::Writer::new_v2_logical(out)?
        } else {
            sales::Writer::new_v2(out)?
        };
        let report = selling::export_sales(
            conn,
            &link.name,
            link.manager.as_str(),
            sequence,
            &mut |line| writer.write(line),
        )?;
        let (_, records) = writer.finish()?;
        Ok(Produced { records, report })
    }
}
