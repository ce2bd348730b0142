//! Logical configurations and their seat categories: each created or
//! updated through the mapping, its changes listed, and the seat categories
//! it no longer names closed.

use rusqlite::OptionalExtension;

use super::super::Change;
use super::{CatalogueImport, OpenLc, diff_text};
use crate::domain::DomainError;
use crate::format::catalogue;
use crate::store::mapping::MappingKind;
use crate::store::runs;
use crate::store::runs::Level;
use std::collections::HashSet;

impl CatalogueImport<'_> {
    pub(super) fn logical_configuration(
        &mut self,
        l: &catalogue::LogicalConfiguration,
        locals: Option<&[i64]>,
    ) -> Result<(), DomainError> {
        let location = format!("logical configuration {}", l.code);
        let Some(&[configuration]) = locals else {
            self.lcs.insert(l.id.get(), None);
            return self.skip(
                &location,
                &format!(
                    "its configuration {} is ignored in the mapping",
                    l.configuration
                ),
            );
        };
        let tx = self.tx;
        let existing = self.local_of(MappingKind::LogicalConfiguration, l.id)?;
        let row: Option<(String, String, i64)> = match existing {
            Some(id) => tx
                .prepare_cached(
                    "SELECT code, name, configuration FROM logical_configuration WHERE id = ?1",
                )?
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?,
            None => None,
        };
        let (local, created, diffs) = match (existing, row) {
            (Some(id), Some((code, name, conf))) => {
                let mut diffs = Vec::new();
                diff_text(&mut diffs, "code", &code, l.code.as_str());
                diff_text(&mut diffs, "name", &name, l.name.as_str());
                if conf != configuration {
                    diffs.push(format!("configuration {conf} → {configuration}"));
                }
                if !diffs.is_empty() {
                    tx.prepare_cached(
                        "UPDATE logical_configuration SET code = ?2, name = ?3, configuration = ?4
                         WHERE id = ?1",
                    )?
                    .execute((
                        id,
                        l.code.as_str(),
                        l.name.as_str(),
                        configuration,
                    ))?;
                }
                (id, false, diffs)
            }
            _ => {
                tx.prepare_cached(
                    "INSERT INTO logical_configuration (code, name, configuration, state)
                     VALUES (?1, ?2, ?3, 'to_validate')",
                )?
                .execute((l.code.as_str(), l.name.as_str(), configuration))?;
                (tx.last_insert_rowid(), true, Vec::new())
            }
        };
        self.fill(
            MappingKind::LogicalConfiguration,
            l.id,
            &l.code,
            l.name.as_str(),
            local,
        )?;
        self.lcs.insert(l.id.get(), Some(local));
        self.lc = Some(OpenLc {
            manager: l.id,
            local,
            code: l.code.as_str().to_owned(),
            created,
            diffs,
            seen: HashSet::new(),
            seats: std::collections::HashMap::new(),
        });
        Ok(())
    }

    pub(super) fn logical_seat_category(
        &mut self,
        l: &catalogue::LogicalSeatCategory,
        locals: Option<&[i64]>,
    ) -> Result<(), DomainError> {
        let location = format!("logical seat category {}", l.code);
        let Some(open) = self
            .lc
            .as_mut()
            .filter(|o| o.manager == l.logical_configuration)
        else {
            if self.lcs.get(&l.logical_configuration.get()) == Some(&None) {
                self.logical_categories.insert(l.id.get(), None);
                return self.skip(&location, "its logical configuration is skipped");
            }
            return Err(DomainError::refused(
                "parent-not-read",
                location,
                format!(
                    "its logical configuration {} was not read before it",
                    l.logical_configuration
                ),
            ));
        };
        let Some(&[category]) = locals else {
            self.logical_categories.insert(l.id.get(), None);
            let code = self
                .refs
                .code_of(MappingKind::SeatCategory, l.seat_category);
            return self.skip(
                &location,
                &format!("its seat category {code} is ignored in the mapping"),
            );
        };
        let tx = self.tx;
        let lc = open.local;
        let existing: Option<(i64, String, i64)> = tx
            .prepare_cached(
                "SELECT id, name, seat_category FROM logical_seat_category
                 WHERE logical_configuration = ?1 AND code = ?2 ORDER BY id LIMIT 1",
            )?
            .query_row((lc, l.code.as_str()), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let change = match existing {
            Some((id, name, sc)) => {
                open.seen.insert(id);
                self.logical_categories.insert(l.id.get(), Some(id));
                let mut diffs = Vec::new();
                diff_text(
                    &mut diffs,
                    &format!("{location} name"),
                    &name,
                    l.name.as_str(),
                );
                if sc != category {
                    diffs.push(format!("{location} seat category {sc} → {category}"));
                }
                tx.prepare_cached(
                    "UPDATE logical_seat_category SET manager_id = ?2 WHERE id = ?1 AND manager_id IS NOT ?2",
                )?
                .execute((id, l.id.get()))?;
                if diffs.is_empty() {
                    Change::Unchanged
                } else {
                    tx.prepare_cached(
                        "UPDATE logical_seat_category SET name = ?2, seat_category = ?3 WHERE id = ?1",
                    )?
                    .execute((id, l.name.as_str(), category))?;
                    open.diffs.extend(diffs);
                    Change::Updated
                }
            }
            None => {
                tx.prepare_cached(
                    "INSERT INTO logical_seat_category (logical_configuration, code, name, seat_category, manager_id)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute((lc, l.code.as_str(), l.name.as_str(), category, l.id.get()))?;
                open.seen.insert(tx.last_insert_rowid());
                self.logical_categories
                    .insert(l.id.get(), Some(tx.last_insert_rowid()));
                if !open.created {
                    open.diffs.push(format!("{location} added"));
                }
                Change::Created
            }
        };
        self.summary.add(change);
        Ok(())
    }

    pub(super) fn close_lc(&mut self) -> Result<(), DomainError> {
        let Some(mut open) = self.lc.take() else {
            return Ok(());
        };
        let tx = self.tx;
        {
            let mut st = tx.prepare_cached(
                "SELECT id, code FROM logical_seat_category WHERE logical_configuration = ?1 ORDER BY id",
            )?;
            let rows = st.query_map([open.local], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })?;
            for row in rows {
                let (id, code) = row?;
                if !open.seen.contains(&id) {
                    // Kept: later data (contingents, sales) may name it.
                    runs::message(
                        tx,
                        self.ctx.run,
                        Level::Warning,
                        "withdrawn",
                        Some(&format!("logical seat category {code}")),
                        &format!(
                            "logical seat category {code} of logical configuration {} is no longer sent by the manager; kept",
                            open.code
                        ),
                    )?;
                }
            }
        }
        self.replace_seats(&mut open)?;
        let location = format!("logical configuration {}", open.code);
        if open.created {
            self.pending("logical_configuration", open.local, &["new".to_owned()])?;
            self.summary.add(Change::Created);
        } else if open.diffs.is_empty() {
            self.summary.add(Change::Unchanged);
        } else {
            tx.prepare_cached(
                "UPDATE logical_configuration SET state = 'to_validate' WHERE id = ?1",
            )?
            .execute([open.local])?;
            for d in &open.diffs {
                self.changed(&location, d)?;
            }
            self.pending("logical_configuration", open.local, &open.diffs)?;
            self.summary.add(Change::Updated);
        }
        open.diffs.clear();
        Ok(())
    }
}
