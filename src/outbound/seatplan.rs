//! The `SEATPLAN` payload (manager → distributor): a [`Producer`] writing
//! [`domain::seatplan`] (the venues the link's products use) into the seat
//! plan writer.

use std::io::Write;

use rusqlite::Connection;

use super::produce::{Produced, Producer, scope};
use crate::config::Link;
use crate::domain::export as domain;
use crate::format::{Kind, seatplan};

/// The `SEATPLAN` payload: [`domain::seatplan`] into the seat-plan writer.
#[derive(Debug, Clone, Copy)]
pub struct SeatplanPayload;

impl Producer for SeatplanPayload {
    fn kind(&self) -> Kind {
        Kind::Seatplan
    }

    fn produce(
        &self,
        conn: &Connection,
        link: &Link,
        out: &mut dyn Write,
    ) -> Result<Produced, domain::ExportError> {
        let mut writer = seatplan::Writer::new(out)?;
        let report = domain::seatplan(conn, &scope(link), &mut |item| writer.write(item))?;
        let (_, records) = writer.finish()?;
        Ok(Produced { records, report })
    }
}
