//! Products and the performances they name: each created or updated
//! through the mapping, and the products the catalogue no longer lists
//! suspended.

use rusqlite::OptionalExtension;

use super::super::Change;
use super::{CatalogueImport, OpenProduct, diff_text};
use crate::domain::DomainError;
use crate::format::catalogue;
use crate::store::mapping::MappingKind;
use crate::store::runs;
use crate::store::runs::Level;
use std::collections::HashSet;

impl CatalogueImport<'_> {
    pub(super) fn product(
        &mut self,
        p: &catalogue::Product,
        locals: Option<&[i64]>,
    ) -> Result<(), DomainError> {
        let location = format!("product {}", p.code);
        let Some(&[activity]) = locals else {
            let code = self.refs.code_of(MappingKind::Activity, p.activity);
            return self.skip(
                &location,
                &format!("its activity {code} is ignored in the mapping"),
            );
        };
        let rate_table = match self.rate_tables.get(&p.rate_table.get()) {
            Some(Some(rt)) => *rt,
            _ => {
                return Err(DomainError::refused(
                    "undeclared-reference",
                    location,
                    format!(
                        "it names rate table {}, which the file does not declare",
                        p.rate_table
                    ),
                ));
            }
        };
        let tx = self.tx;
        let existing = self.local_of(MappingKind::Product, p.id)?;
        let row: Option<(String, String, i64, i64, String)> = match existing {
            Some(id) => tx
                .prepare_cached(
                    "SELECT code, name, activity, rate_table, state FROM product WHERE id = ?1",
                )?
                .query_row([id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .optional()?,
            None => None,
        };
        let open =
            match (existing, row) {
                (Some(id), Some((code, name, act, rt, state))) => {
                    let mut diffs = Vec::new();
                    diff_text(&mut diffs, "code", &code, p.code.as_str());
                    diff_text(&mut diffs, "name", &name, p.name.as_str());
                    if act != activity {
                        diffs.push(format!("activity {act} → {activity}"));
                    }
                    if rt != rate_table {
                        diffs.push(format!("rate table {rt} → {rate_table}"));
                    }
                    let was_suspended = state == "suspended";
                    if was_suspended {
                        diffs.push("sent again by the manager after its withdrawal".to_owned());
                    }
                    if !diffs.is_empty() {
                        tx.prepare_cached(
                        "UPDATE product SET code = ?2, name = ?3, activity = ?4, rate_table = ?5
                         WHERE id = ?1",
                    )?
                    .execute((id, p.code.as_str(), p.name.as_str(), activity, rate_table))?;
                    }
                    OpenProduct {
                        local: id,
                        code: p.code.as_str().to_owned(),
                        created: false,
                        was_suspended,
                        diffs,
                        links: Vec::new(),
                        performances: HashSet::new(),
                    }
                }
                _ => {
                    tx.prepare_cached(
                        "INSERT INTO product (code, name, activity, rate_table, state)
                     VALUES (?1, ?2, ?3, ?4, 'to_validate')",
                    )?
                    .execute((
                        p.code.as_str(),
                        p.name.as_str(),
                        activity,
                        rate_table,
                    ))?;
                    OpenProduct {
                        local: tx.last_insert_rowid(),
                        code: p.code.as_str().to_owned(),
                        created: true,
                        was_suspended: false,
                        diffs: Vec::new(),
                        links: Vec::new(),
                        performances: HashSet::new(),
                    }
                }
            };
        self.fill(
            MappingKind::Product,
            p.id,
            &p.code,
            p.name.as_str(),
            open.local,
        )?;
        self.product = Some(open);
        Ok(())
    }

    pub(super) fn performance_ref(
        &mut self,
        r: &catalogue::PerformanceRef,
    ) -> Result<(), DomainError> {
        let Some(open) = self.product.as_mut() else {
            // The product was skipped (ignored activity): so is its link.
            self.summary.skipped += 1;
            return Ok(());
        };
        let location = format!("product {}", open.code);
        let (perf, perf_code) = match self.performances.get(&r.performance.get()) {
            Some(Some((id, code))) => (*id, code.clone()),
            Some(None) => {
                let why = format!("its performance {} is skipped", r.performance);
                return self.skip(&location, &why);
            }
            None => {
                return Err(DomainError::refused(
                    "undeclared-reference",
                    location,
                    format!(
                        "it names performance {}, which the file does not declare",
                        r.performance
                    ),
                ));
            }
        };
        open.performances.insert(perf);
        let tx = self.tx;
        // A new link waits for validation; the product's other
        // performances keep selling.
        let n = tx
            .prepare_cached(
                "INSERT INTO product_performance (product, performance, validated) VALUES (?1, ?2, 0)
                 ON CONFLICT DO NOTHING",
            )?
            .execute((open.local, perf))?;
        if n > 0 {
            if !open.created {
                open.links.push(format!("performance {perf_code} added"));
            }
            self.summary.add(Change::Created);
        } else {
            self.summary.add(Change::Unchanged);
        }
        if let Some(why) = self.changed_performances.get(&perf) {
            tx.prepare_cached(
                "UPDATE product_performance SET validated = 0 WHERE product = ?1 AND performance = ?2",
            )?
            .execute((open.local, perf))?;
            open.links.push(why.clone());
        }
        Ok(())
    }

    pub(super) fn close_product(&mut self) -> Result<(), DomainError> {
        let Some(open) = self.product.take() else {
            return Ok(());
        };
        let tx = self.tx;
        let stale: Vec<(i64, String)> = {
            let mut st = tx.prepare_cached(
                "SELECT pp.performance, p.code FROM product_performance pp
                 JOIN performance p ON p.id = pp.performance
                 WHERE pp.product = ?1 ORDER BY pp.performance",
            )?;
            let rows = st.query_map([open.local], |r| Ok((r.get(0)?, r.get(1)?)))?;
            let mut stale = Vec::new();
            for row in rows {
                let (perf, code): (i64, String) = row?;
                if !open.performances.contains(&perf) {
                    stale.push((perf, code));
                }
            }
            stale
        };
        let location = format!("product {}", open.code);
        for (perf, code) in stale {
            tx.prepare_cached(
                "DELETE FROM product_performance WHERE product = ?1 AND performance = ?2",
            )?
            .execute((open.local, perf))?;
            // Nothing to validate: the product no longer sells it.
            self.changed(
                &location,
                &format!(
                    "performance {code} removed: no longer sold by product {}",
                    open.code
                ),
            )?;
        }
        if !open.created && !open.links.is_empty() {
            for d in &open.links {
                self.changed(
                    &location,
                    &format!("{d}: to validate; its other performances keep selling"),
                )?;
            }
            self.pending("product", open.local, &open.links)?;
        }
        if open.created {
            self.pending("product", open.local, &["new".to_owned()])?;
            self.summary.add(Change::Created);
        } else if open.diffs.is_empty() {
            self.summary.add(Change::Unchanged);
        } else {
            tx.prepare_cached("UPDATE product SET state = 'to_validate' WHERE id = ?1")?
                .execute([open.local])?;
            for d in &open.diffs {
                self.changed(&location, d)?;
            }
            self.pending("product", open.local, &open.diffs)?;
            self.changed(
                &location,
                &format!(
                    "product {} returns to to_validate{}",
                    open.code,
                    if open.was_suspended {
                        " (it was suspended)"
                    } else {
                        ""
                    }
                ),
            )?;
            self.summary.add(Change::Updated);
        }
        Ok(())
    }

    /// Suspends the products mapped before and absent from this snapshot.
    pub(super) fn suspend_withdrawn(&mut self) -> Result<(), DomainError> {
        let tx = self.tx;
        let mapped: Vec<(i64, i64, String)> = {
            let mut st = tx.prepare_cached(
                "SELECT m.manager_id, p.id, p.code FROM mapping m JOIN product p ON p.id = m.local_id
                 WHERE m.manager = ?1 AND m.kind = 'product' AND m.status = 'filled'
                     AND p.state <> 'suspended'
                 ORDER BY m.manager_id",
            )?;
            let rows = st.query_map([self.ctx.manager], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (manager_id, local, code): (i64, i64, String) = row?;
                if !self.products.contains(&manager_id) {
                    out.push((manager_id, local, code));
                }
            }
            out
        };
        for (manager_id, local, code) in mapped {
            tx.prepare_cached("UPDATE product SET state = 'suspended' WHERE id = ?1")?
                .execute([local])?;
            runs::message(
                tx,
                self.ctx.run,
                Level::Warning,
                "withdrawn",
                Some(&format!("product {code}")),
                &format!(
                    "product {code} (manager id {manager_id}) is no longer in the manager's catalogue: suspended (kept, not sellable)"
                ),
            )?;
            self.summary.suspended += 1;
        }
        Ok(())
    }
}
