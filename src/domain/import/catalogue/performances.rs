//! Performances: each created or updated through the mapping, its changes
//! listed.

use rusqlite::OptionalExtension;

use super::super::Change;
use super::{CatalogueImport, diff_text};
use crate::domain::DomainError;
use crate::format::catalogue;
use crate::store::mapping::MappingKind;
use crate::store::runs::{self, Level};

impl CatalogueImport<'_> {
    pub(super) fn performance(
        &mut self,
        p: &catalogue::Performance,
        locals: Option<&[i64]>,
    ) -> Result<(), DomainError> {
        let location = format!("performance {}", p.code);
        let Some(&[activity, configuration]) = locals else {
            self.performances.insert(p.id.get(), None);
            return self.skip(
                &location,
                "its activity or configuration is ignored in the mapping",
            );
        };
        let lc = match self.lcs.get(&p.logical_configuration.get()) {
            Some(Some(lc)) => *lc,
            Some(None) => {
                self.performances.insert(p.id.get(), None);
                return self.skip(&location, "its logical configuration is skipped");
            }
            None => {
                return Err(DomainError::refused(
                    "undeclared-reference",
                    location,
                    format!(
                        "it names logical configuration {}, which the file does not declare",
                        p.logical_configuration
                    ),
                ));
            }
        };
        let tx = self.tx;
        let lc_conf: i64 = tx
            .prepare_cached("SELECT configuration FROM logical_configuration WHERE id = ?1")?
            .query_row([lc], |r| r.get(0))?;
        if lc_conf != configuration {
            return Err(DomainError::refused(
                "configuration-mismatch",
                location,
                format!(
                    "it is on configuration {} but its logical configuration {} is on another configuration",
                    p.configuration, p.logical_configuration
                ),
            ));
        }
        let start = p
            .start
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| {
                DomainError::refused(
                    "bad-date",
                    location.clone(),
                    format!("its start cannot be written as RFC 3339: {e}"),
                )
            })?;
        let (local, change) =
            self.upsert_performance(p, &location, activity, configuration, lc, &start)?;
        // A changed logical configuration is validated on its own: its
        // performances wait for it (the point of sale checks its state), not
        // their products.
        self.fill(
            MappingKind::Performance,
            p.id,
            &p.code,
            p.name.as_str(),
            local,
        )?;
        self.performances
            .insert(p.id.get(), Some((local, p.code.as_str().to_owned())));
        self.summary.add(change);
        Ok(())
    }

    /// Creates the local performance of a manager performance, or updates
    /// it (each difference an info message, the performance marked changed);
    /// returns its local id and what happened.
    fn upsert_performance(
        &mut self,
        p: &catalogue::Performance,
        location: &str,
        activity: i64,
        configuration: i64,
        lc: i64,
        start: &str,
    ) -> Result<(i64, Change), DomainError> {
        let tx = self.tx;
        let existing = self.local_of(MappingKind::Performance, p.id)?;
        type PerfRow = (String, String, i64, String, i64, i64, String);
        let row: Option<PerfRow> = match existing {
            Some(id) => tx
                .prepare_cached(
                    "SELECT code, name, activity, start, configuration, logical_configuration, state
                     FROM performance WHERE id = ?1",
                )?
                .query_row([id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
                })
                .optional()?,
            None => None,
        };
        let found = match (existing, row) {
            (Some(id), Some((code, name, act, st, conf, plc, state))) => {
                let mut diffs = Vec::new();
                diff_text(&mut diffs, "code", &code, p.code.as_str());
                diff_text(&mut diffs, "name", &name, p.name.as_str());
                diff_text(&mut diffs, "start", &st, start);
                if act != activity {
                    diffs.push(format!("activity {act} → {activity}"));
                }
                if conf != configuration || plc != lc {
                    diffs.push("configuration changed".to_owned());
                }
                let new_state = p.state.as_str();
                // A state alone is not a commercial change to validate: the
                // performance follows it at once (the point of sale sells
                // only performances in operation).
                if state != new_state {
                    self.state_followed(location, &state, new_state)?;
                }
                if diffs.is_empty() && state != new_state {
                    tx.prepare_cached("UPDATE performance SET state = ?2 WHERE id = ?1")?
                        .execute((id, new_state))?;
                    (id, Change::Updated)
                } else if diffs.is_empty() {
                    (id, Change::Unchanged)
                } else {
                    tx.prepare_cached(
                        "UPDATE performance SET code = ?2, name = ?3, activity = ?4, start = ?5,
                             configuration = ?6, logical_configuration = ?7, state = ?8
                         WHERE id = ?1",
                    )?
                    .execute((
                        id,
                        p.code.as_str(),
                        p.name.as_str(),
                        activity,
                        &start,
                        configuration,
                        lc,
                        p.state.as_str(),
                    ))?;
                    for d in &diffs {
                        self.changed(location, d)?;
                    }
                    self.changed_performances
                        .insert(id, format!("{location}: {}", diffs.join(", ")));
                    (id, Change::Updated)
                }
            }
            _ => {
                tx.prepare_cached(
                    "INSERT INTO performance (code, name, activity, start, configuration,
                         logical_configuration, state)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute((
                    p.code.as_str(),
                    p.name.as_str(),
                    activity,
                    &start,
                    configuration,
                    lc,
                    p.state.as_str(),
                ))?;
                (tx.last_insert_rowid(), Change::Created)
            }
        };
        Ok(found)
    }

    /// Says that a performance follows the manager's new state: a warning
    /// when it stops selling, with what the distributor has to do.
    fn state_followed(&mut self, location: &str, from: &str, to: &str) -> Result<(), DomainError> {
        let (level, code, then) = match to {
            "cancelled" => (
                Level::Warning,
                "performance-cancelled",
                "no longer sold; refund its tickets (stxd sale list --performance P --to-refund, stxd sale refund --performance P --all)",
            ),
            "closed" => (Level::Warning, "performance-closed", "no longer sold"),
            "in_operation" => (Level::Info, "performance-state", "on sale"),
            _ => (Level::Info, "performance-state", "not on sale"),
        };
        runs::message(
            self.tx,
            self.ctx.run,
            level,
            code,
            Some(location),
            &format!("{location}: state {from} → {to} by the manager: {then}"),
        )?;
        Ok(())
    }
}
