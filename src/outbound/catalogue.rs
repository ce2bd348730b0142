//! The `CATALOGUE` payload (manager → distributor): a [`Producer`] writing
//! [`domain::catalogue`] (what the link's `stx_file` channel may sell) into
//! the catalogue writer.

use std::io::Write;

use rusqlite::Connection;

use super::produce::{Produced, Producer, require_ready, scope};
use crate::config::Link;
use crate::domain::export as domain;
use crate::format::{Kind, catalogue};

/// The `CATALOGUE` payload: [`domain::catalogue`] into the catalogue writer.
#[derive(Debug, Clone, Copy)]
pub struct CataloguePayload;

impl Producer for CataloguePayload {
    fn kind(&self) -> Kind {
        Kind::Catalogue
    }

    fn format_version(&self) -> u32 {
        2
    }

    fn produce(
        &self,
        conn: &Connection,
        link: &Link,
        out: &mut dyn Write,
    ) -> Result<Produced, domain::ExportError> {
        let mut writer = catalogue::Writer::new_v2(out)?;
        let report = domain::catalogue(conn, &scope(link), &mut |item| writer.write(item))?;
        // After the export's own refusals (each with its specific code):
        // anything else `stxd check` finds refuses it too, code `setup`.
        require_ready(conn, link, "catalogue export")?;
        let (_, records) = writer.finish()?;
        Ok(Produced { records, report })
    }
}
