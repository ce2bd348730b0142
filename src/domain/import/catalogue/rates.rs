//! Rate tables and their prices: each created or updated through the
//! mapping, and the prices a rate table no longer lists closed.

use rusqlite::OptionalExtension;

use super::super::Change;
use super::super::refs::{info, kind_words};
use super::{CatalogueImport, OpenRt, diff_text};
use crate::domain::DomainError;
use crate::domain::mapping::Resolved;
use crate::format::catalogue;
use crate::money::Money;
use crate::store::mapping::MappingKind;
use std::collections::HashSet;

impl CatalogueImport<'_> {
    pub(super) fn rate_table(&mut self, r: &catalogue::RateTable) -> Result<(), DomainError> {
        let tx = self.tx;
        let existing = self.local_of(MappingKind::RateTable, r.id)?;
        let row: Option<(String, String, String)> = match existing {
            Some(id) => tx
                .prepare_cached("SELECT code, name, currency FROM rate_table WHERE id = ?1")?
                .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .optional()?,
            None => None,
        };
        let (local, created, diffs) = match (existing, row) {
            (Some(id), Some((code, name, currency))) => {
                let mut diffs = Vec::new();
                diff_text(&mut diffs, "code", &code, r.code.as_str());
                diff_text(&mut diffs, "name", &name, r.name.as_str());
                diff_text(&mut diffs, "currency", &currency, r.currency.as_str());
                if !diffs.is_empty() {
                    tx.prepare_cached(
                        "UPDATE rate_table SET code = ?2, name = ?3, currency = ?4 WHERE id = ?1",
                    )?
                    .execute((
                        id,
                        r.code.as_str(),
                        r.name.as_str(),
                        r.currency.as_str(),
                    ))?;
                }
                (id, false, diffs)
            }
            _ => {
                tx.prepare_cached(
                    "INSERT INTO rate_table (code, name, currency, state) VALUES (?1, ?2, ?3, 'to_validate')",
                )?
                .execute((r.code.as_str(), r.name.as_str(), r.currency.as_str()))?;
                (tx.last_insert_rowid(), true, Vec::new())
            }
        };
        // The manager's version of these prices (none from a version 1
        // catalogue): what the sales lines priced with them carry. A new
        // version number is not a change by itself: the prices are compared.
        let version = r.version.map(i64::from);
        let renumbered = tx
            .prepare_cached(
                "UPDATE rate_table SET version = ?2 WHERE id = ?1 AND version IS NOT ?2",
            )?
            .execute((local, version))?;
        if renumbered > 0 && !created {
            info(
                tx,
                &self.ctx,
                "rate-version",
                &format!("rate table {}", r.code),
                &format!(
                    "rate table {}: the manager's version of its prices is now {}",
                    r.code,
                    version.map_or_else(
                        || "none (a version 1 catalogue)".to_owned(),
                        |v| v.to_string()
                    )
                ),
            )?;
        }
        self.fill(
            MappingKind::RateTable,
            r.id,
            &r.code,
            r.name.as_str(),
            local,
        )?;
        self.rate_tables.insert(r.id.get(), Some(local));
        self.rt = Some(OpenRt {
            manager: r.id,
            local,
            code: r.code.as_str().to_owned(),
            currency: r.currency,
            created,
            diffs,
            seen: HashSet::new(),
            seen_logical: HashSet::new(),
        });
        Ok(())
    }

    pub(super) fn price(
        &mut self,
        p: &catalogue::Price,
        locals: Option<&[i64]>,
    ) -> Result<(), DomainError> {
        let k = MappingKind::SeatCategory;
        let key = format!(
            "{}/{}/{}",
            self.refs.code_of(k, p.seat_category),
            self.refs.code_of(MappingKind::TariffType, p.tariff_type),
            self.refs
                .code_of(MappingKind::AudienceSubcategory, p.audience_subcategory)
        );
        let Some(open) = self.rt.as_mut().filter(|o| o.manager == p.rate_table) else {
            return Err(DomainError::refused(
                "parent-not-read",
                format!("price {key}"),
                format!("its rate table {} was not read before it", p.rate_table),
            ));
        };
        let location = format!("price {key} of rate table {}", open.code);
        let Some(&[sc, tt, aud]) = locals else {
            let ignored: Vec<String> = [
                (k, p.seat_category),
                (MappingKind::TariffType, p.tariff_type),
                (MappingKind::AudienceSubcategory, p.audience_subcategory),
            ]
            .into_iter()
            .filter(|&(kind, id)| self.refs.get(kind, id) == Some(Resolved::Ignored))
            .map(|(kind, id)| format!("{} {}", kind_words(kind), self.refs.code_of(kind, id)))
            .collect();
            return self.skip(
                &location,
                &format!(
                    "its {} {} ignored in the mapping",
                    ignored.join(" and "),
                    if ignored.len() > 1 { "are" } else { "is" }
                ),
            );
        };
        if !open.seen.insert((sc, tt, aud)) {
            return Err(DomainError::refused(
                "mapping-collision",
                location,
                "another price of this rate table maps to the same local seat category, tariff type and audience subcategory (or the file gives this price twice); map them to distinct local objects or ignore one",
            ));
        }
        let tx = self.tx;
        let money = |minor| Money {
            minor,
            currency: open.currency,
        };
        let existing: Option<i64> = tx
            .prepare_cached(
                "SELECT amount FROM price WHERE rate_table = ?1 AND seat_category = ?2
                     AND tariff_type = ?3 AND audience_subcategory = ?4",
            )?
            .query_row((open.local, sc, tt, aud), |r| r.get(0))
            .optional()?;
        let change = match existing {
            Some(amount) if amount == p.amount => Change::Unchanged,
            Some(amount) => {
                tx.prepare_cached(
                    "UPDATE price SET amount = ?5 WHERE rate_table = ?1 AND seat_category = ?2
                         AND tariff_type = ?3 AND audience_subcategory = ?4",
                )?
                .execute((open.local, sc, tt, aud, p.amount))?;
                open.diffs.push(format!(
                    "price {key} {} → {}",
                    money(amount),
                    money(p.amount)
                ));
                Change::Updated
            }
            None => {
                tx.prepare_cached(
                    "INSERT INTO price (rate_table, seat_category, tariff_type, audience_subcategory, amount)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?
                .execute((open.local, sc, tt, aud, p.amount))?;
                if !open.created {
                    open.diffs
                        .push(format!("price {key} added: {}", money(p.amount)));
                }
                Change::Created
            }
        };
        self.summary.add(change);
        Ok(())
    }

    pub(super) fn close_rt(&mut self) -> Result<(), DomainError> {
        let Some(mut open) = self.rt.take() else {
            return Ok(());
        };
        let tx = self.tx;
        // Prices no longer sent are removed: a rate table is a snapshot.
        let stale: Vec<(i64, i64, i64, i64)> = {
            let mut st = tx.prepare_cached(
                "SELECT seat_category, tariff_type, audience_subcategory, amount FROM price
                 WHERE rate_table = ?1 ORDER BY seat_category, tariff_type, audience_subcategory",
            )?;
            let rows = st.query_map([open.local], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?;
            let mut stale = Vec::new();
            for row in rows {
                let (sc, tt, aud, amount) = row?;
                if !open.seen.contains(&(sc, tt, aud)) {
                    stale.push((sc, tt, aud, amount));
                }
            }
            stale
        };
        for (sc, tt, aud, amount) in stale {
            tx.prepare_cached(
                "DELETE FROM price WHERE rate_table = ?1 AND seat_category = ?2
                     AND tariff_type = ?3 AND audience_subcategory = ?4",
            )?
            .execute((open.local, sc, tt, aud))?;
            let key = format!(
                "{}/{}/{}",
                self.manager_code(MappingKind::SeatCategory, sc)?,
                self.manager_code(MappingKind::TariffType, tt)?,
                self.manager_code(MappingKind::AudienceSubcategory, aud)?
            );
            open.diffs.push(format!(
                "price {key} removed (was {})",
                Money {
                    minor: amount,
                    currency: open.currency
                }
            ));
        }
        self.stale_logical_prices(&mut open)?;
        let location = format!("rate table {}", open.code);
        if open.created {
            self.pending("rate_table", open.local, &["new".to_owned()])?;
            self.summary.add(Change::Created);
        } else if open.diffs.is_empty() {
            self.summary.add(Change::Unchanged);
        } else {
            tx.prepare_cached("UPDATE rate_table SET state = 'to_validate' WHERE id = ?1")?
                .execute([open.local])?;
            for d in &open.diffs {
                self.changed(&location, d)?;
            }
            self.pending("rate_table", open.local, &open.diffs)?;
            self.summary.add(Change::Updated);
        }
        Ok(())
    }
}
