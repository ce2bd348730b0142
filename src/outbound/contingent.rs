//! The `CONTINGENT` payload producer: the manager's allotments to one link,
//! as snapshots (one per performance, each with its version).
//!
//! Takes the export's write transaction and the link; streams
//! [`domain::snapshot`] of one performance (the manual's "from the seat
//! plan") or of every performance the link has an allotment for (its "from
//! Tools / external sales") into the contingent writer. The snapshots mark
//! the versions exported in that same transaction, so the marks commit with
//! the file's journal row or not at all. Nothing to export is refused with
//! the reason.
//!
//! Every CONTINGENT file also carries, after its snapshots, the resolutions
//! of the link's lines the distributor was not told yet (RESOLUTION lines,
//! [`reintegration::tell`]), marked with the file's sequence in the same
//! transaction; a resolution alone is a reason to send a file. Without one,
//! the file is written with the version 1 header.

use std::io::Write;

use rusqlite::Connection;

use super::produce::{Produced, Producer, require_ready};
use crate::config::Link;
use crate::domain::contingent as domain;
use crate::domain::export::ExportError;
use crate::domain::reintegration;
use crate::format::{Kind, contingent};
use crate::store::journal;

/// The `CONTINGENT` payload of one performance (`Some`, by id or code) or of
/// every performance of the link with an allotment (`None`), or only of
/// those changed since their last export (`changed_only`).
#[derive(Debug, Clone, Default)]
pub struct ContingentPayload {
    pub performance: Option<String>,
    pub changed_only: bool,
}

impl ContingentPayload {
    /// Every performance of the link that has an allotment (`stxd export
    /// contingent`: ops sending everything again).
    pub fn all() -> ContingentPayload {
        ContingentPayload::default()
    }

    /// One performance, by technical id or code.
    pub fn one(performance: impl Into<String>) -> ContingentPayload {
        ContingentPayload {
            performance: Some(performance.into()),
            changed_only: false,
        }
    }

    /// The performances whose allotment changed since it was last exported
    /// (the `export-contingent` job); nothing changed is refused as
    /// `nothing-to-send`, so a schedule never repeats a snapshot.
    pub fn changed() -> ContingentPayload {
        ContingentPayload {
            performance: None,
            changed_only: true,
        }
    }
}

impl Producer for ContingentPayload {
    fn kind(&self) -> Kind {
        Kind::Contingent
    }

    fn produce(
        &self,
        conn: &Connection,
        link: &Link,
        out: &mut dyn Write,
    ) -> Result<Produced, ExportError> {
        require_ready(conn, link, "contingent export")?;
        let sequence = journal::next_out(conn, &link.name, Kind::Contingent)?;
        let untold = reintegration::untold(conn, &link.name)?;
        let performances = match &self.performance {
            Some(named) => {
                let id = domain::performance_id(conn, named).map_err(|e| ExportError::Setup {
                    code: "unknown-performance",
                    problem: e.to_string(),
                    fix: "name the performance by its technical id or code".to_owned(),
                })?;
                vec![id]
            }
            None => {
                let all =
                    domain::performances(conn, &link.name).map_err(|e| ExportError::BadData {
                        object: format!("allotments of link {}", link.name),
                        problem: e.to_string(),
                    })?;
                if all.is_empty() && untold == 0 {
                    return Err(ExportError::Setup {
                        code: "no-allotment",
                        problem: format!(
                            "link {} has no allotment on any performance: nothing to export",
                            link.name
                        ),
                        fix: "allot seats or zone places first (stxd contingent allocate)"
                            .to_owned(),
                    });
                }
                if !self.changed_only || all.is_empty() {
                    all
                } else {
                    let changed = domain::changed_performances(conn, &link.name).map_err(|e| {
                        ExportError::BadData {
                            object: format!("allotments of link {}", link.name),
                            problem: e.to_string(),
                        }
                    })?;
                    if changed.is_empty() && untold == 0 {
                        return Err(ExportError::NothingToSend {
                            problem: format!(
                                "every contingent of link {} was already exported at its current version",
                                link.name
                            ),
                            fix: "allocate or release places first; `stxd export contingent` sends them all again".to_owned(),
                        });
                    }
                    changed
                }
            }
        };
        let mut writer = if untold > 0 {
            contingent::Writer::with_resolutions(out)?
        } else {
            contingent::Writer::new(out)?
        };
        let mut snapshots = Vec::with_capacity(performances.len());
        for p in performances {
            snapshots.push(domain::snapshot(conn, &link.name, p, &mut |line| {
                writer.write(line)
            })?);
        }
        let told = if untold > 0 {
            reintegration::tell(conn, &link.name, sequence, &mut |line| writer.write(line))?
        } else {
            0
        };
        let (_, records) = writer.finish()?;
        let mut report = domain::report_of(&snapshots);
        if told > 0 {
            report.included.push(("resolutions".to_owned(), told));
        }
        Ok(Produced { records, report })
    }
}
