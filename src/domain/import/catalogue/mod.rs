//! The CATALOGUE import at the distributor: logical configurations, rate
//! tables, performances and products created or updated through the mapping
//! table, as a full snapshot of what the link sells.
//!
//! [`CatalogueImport`] takes the file's records one at a time inside the
//! caller's transaction and returns the [`Outcome`] at `finish`; the rules
//! (states, changes, withdrawn products) are in the parent module's
//! documentation.

use std::collections::{HashMap, HashSet};

use rusqlite::{OptionalExtension, Transaction};

use super::refs::{Refs, finish_refs, info, kind_words, summary_message};
use super::savepoint::Savepoint;
use super::{Change, Context, Outcome, Summary};
use crate::domain::DomainError;
use crate::domain::mapping::{self, Resolved, Seen};
use crate::format::catalogue;
use crate::ident::{Code, TechId};
use crate::money::Money;
use crate::store::mapping::MappingKind;
use crate::store::runs::{self, Level};

/// The logical configuration being read (its seat categories follow it).
struct OpenLc {
    manager: TechId,
    local: i64,
    code: String,
    created: bool,
    diffs: Vec<String>,
    seen: HashSet<i64>,
}

/// The rate table being read (its prices follow it).
struct OpenRt {
    manager: TechId,
    local: i64,
    code: String,
    currency: crate::money::Currency,
    created: bool,
    diffs: Vec<String>,
    /// Local (seat category, tariff type, audience) keys of this file.
    seen: HashSet<(i64, i64, i64)>,
}

/// The product being read (its performance references follow it).
struct OpenProduct {
    local: i64,
    code: String,
    created: bool,
    was_suspended: bool,
    rate_table: i64,
    diffs: Vec<String>,
    performances: HashSet<i64>,
}

/// Imports a `CATALOGUE` file at the distributor through the mapping table.
pub struct CatalogueImport<'t> {
    tx: &'t Transaction<'t>,
    ctx: Context<'t>,
    savepoint: Savepoint<'t>,
    refs: Refs,
    summary: Summary,
    lc: Option<OpenLc>,
    rt: Option<OpenRt>,
    product: Option<OpenProduct>,
    /// Manager id → local id (None: skipped) of the objects of this file.
    lcs: HashMap<i64, Option<i64>>,
    performances: HashMap<i64, Option<(i64, String)>>,
    rate_tables: HashMap<i64, Option<i64>>,
    /// Local ids of objects that changed in this file, with what changed.
    changed_lcs: HashMap<i64, String>,
    changed_performances: HashMap<i64, String>,
    changed_rate_tables: HashMap<i64, String>,
    /// Manager ids of the products of this file.
    products: HashSet<i64>,
    /// The code of the last rate table read (for messages, even when parked).
    rt_code: String,
}

impl<'t> CatalogueImport<'t> {
    pub fn new(
        tx: &'t Transaction<'t>,
        ctx: Context<'t>,
    ) -> Result<CatalogueImport<'t>, DomainError> {
        Ok(CatalogueImport {
            tx,
            ctx,
            savepoint: Savepoint::open(tx, "catalogue_import")?,
            refs: Refs::default(),
            summary: Summary::default(),
            lc: None,
            rt: None,
            product: None,
            lcs: HashMap::new(),
            performances: HashMap::new(),
            rate_tables: HashMap::new(),
            changed_lcs: HashMap::new(),
            changed_performances: HashMap::new(),
            changed_rate_tables: HashMap::new(),
            products: HashSet::new(),
            rt_code: String::new(),
        })
    }

    /// Takes the next record of the file.
    pub fn item(&mut self, item: &catalogue::Item) -> Result<(), DomainError> {
        use catalogue::Item;
        // Close the group a record does not belong to.
        if !matches!(item, Item::LogicalSeatCategory(_)) {
            self.close_lc()?;
        }
        if !matches!(item, Item::Price(_)) {
            self.close_rt()?;
        }
        if !matches!(item, Item::PerformanceRef(_)) {
            self.close_product()?;
        }
        match item {
            Item::Product(p) => {
                self.products.insert(p.id.get());
            }
            Item::RateTable(r) => self.rt_code = r.code.as_str().to_owned(),
            _ => {}
        }
        let needs = self.references(item)?;
        if self.refs.any_missing() {
            return Ok(());
        }
        let locals: Option<Vec<i64>> = needs
            .iter()
            .map(|r| match r {
                Resolved::Local(id) => Some(*id),
                _ => None,
            })
            .collect();
        match item {
            Item::Season(_)
            | Item::VatCode(_)
            | Item::TariffType(_)
            | Item::AudienceSubcategory(_)
            | Item::SeatCategory(_)
            | Item::Activity(_) => Ok(()),
            Item::LogicalConfiguration(l) => self.logical_configuration(l, locals.as_deref()),
            Item::LogicalSeatCategory(l) => self.logical_seat_category(l, locals.as_deref()),
            Item::Performance(p) => self.performance(p, locals.as_deref()),
            Item::RateTable(r) => self.rate_table(r),
            Item::Price(p) => self.price(p, locals.as_deref()),
            Item::Product(p) => self.product(p, locals.as_deref()),
            Item::PerformanceRef(r) => self.performance_ref(r),
        }
    }

    /// Records the references a record declares and looks up those it
    /// needs (recorded even once the file is parked); returns what the
    /// needed ones resolve to, in the record's order.
    fn references(&mut self, item: &catalogue::Item) -> Result<Vec<Resolved>, DomainError> {
        use catalogue::Item;
        let tx = self.tx;
        let ctx = self.ctx;
        // References: recorded even once the file is parked.
        let k = MappingKind::SeatCategory;
        let refs = &mut self.refs;
        let needs: Vec<Resolved> = match item {
            Item::Season(s) => vec![refs.see(
                tx,
                &ctx,
                MappingKind::Season,
                s.id,
                &s.code,
                s.name.as_str(),
            )?],
            Item::VatCode(v) => vec![refs.see(
                tx,
                &ctx,
                MappingKind::VatCode,
                v.id,
                &v.code,
                v.name.as_str(),
            )?],
            Item::TariffType(r) => vec![refs.see(
                tx,
                &ctx,
                MappingKind::TariffType,
                r.id,
                &r.code,
                r.name.as_str(),
            )?],
            Item::AudienceSubcategory(r) => vec![refs.see(
                tx,
                &ctx,
                MappingKind::AudienceSubcategory,
                r.id,
                &r.code,
                r.name.as_str(),
            )?],
            Item::SeatCategory(r) => vec![refs.see(tx, &ctx, k, r.id, &r.code, r.name.as_str())?],
            Item::Activity(a) => {
                let by = || format!("activity {}", a.code);
                refs.need(MappingKind::Season, a.season, &by)?;
                refs.need(MappingKind::VatCode, a.vat_code, &by)?;
                vec![refs.see(
                    tx,
                    &ctx,
                    MappingKind::Activity,
                    a.id,
                    &a.code,
                    a.name.as_str(),
                )?]
            }
            Item::LogicalConfiguration(l) => vec![refs.need_external(
                tx,
                &ctx,
                MappingKind::Configuration,
                l.configuration,
                &|| format!("logical configuration {}", l.code),
            )?],
            Item::LogicalSeatCategory(l) => vec![refs.need(k, l.seat_category, &|| {
                format!("logical seat category {}", l.code)
            })?],
            Item::Performance(p) => {
                let by = || format!("performance {}", p.code);
                vec![
                    refs.need(MappingKind::Activity, p.activity, &by)?,
                    refs.need_external(tx, &ctx, MappingKind::Configuration, p.configuration, &by)?,
                ]
            }
            Item::Price(p) => {
                let key = format!(
                    "price {}/{}/{}",
                    refs.code_of(k, p.seat_category),
                    refs.code_of(MappingKind::TariffType, p.tariff_type),
                    refs.code_of(MappingKind::AudienceSubcategory, p.audience_subcategory)
                );
                let rt = &self.rt_code;
                let by = || format!("{key} of rate table {rt}");
                vec![
                    refs.need(k, p.seat_category, &by)?,
                    refs.need(MappingKind::TariffType, p.tariff_type, &by)?,
                    refs.need(
                        MappingKind::AudienceSubcategory,
                        p.audience_subcategory,
                        &by,
                    )?,
                ]
            }
            Item::Product(p) => vec![refs.need(MappingKind::Activity, p.activity, &|| {
                format!("product {}", p.code)
            })?],
            Item::RateTable(_) | Item::PerformanceRef(_) => Vec::new(),
        };
        Ok(needs)
    }

    fn skip(&mut self, location: &str, why: &str) -> Result<(), DomainError> {
        self.summary.skipped += 1;
        info(
            self.tx,
            &self.ctx,
            "skipped",
            location,
            &format!("skipped: {why}"),
        )
    }

    fn changed(&self, location: &str, text: &str) -> Result<(), DomainError> {
        info(self.tx, &self.ctx, "changed", location, text)
    }

    fn logical_configuration(
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
        });
        Ok(())
    }

    fn logical_seat_category(
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
                return self.skip(&location, "its logical configuration is skipped");
            }
            return Err(DomainError::Invalid {
                object: location,
                problem: format!(
                    "its logical configuration {} was not read before it",
                    l.logical_configuration
                ),
            });
        };
        let Some(&[category]) = locals else {
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
                    "INSERT INTO logical_seat_category (logical_configuration, code, name, seat_category)
                     VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute((lc, l.code.as_str(), l.name.as_str(), category))?;
                open.seen.insert(tx.last_insert_rowid());
                if !open.created {
                    open.diffs.push(format!("{location} added"));
                }
                Change::Created
            }
        };
        self.summary.add(change);
        Ok(())
    }

    fn close_lc(&mut self) -> Result<(), DomainError> {
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
        let location = format!("logical configuration {}", open.code);
        if open.created {
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
            self.changed_lcs
                .insert(open.local, format!("{location} changed"));
            self.summary.add(Change::Updated);
        }
        open.diffs.clear();
        Ok(())
    }

    fn performance(
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
                return Err(DomainError::Invalid {
                    object: location,
                    problem: format!(
                        "it names logical configuration {}, which the file does not declare",
                        p.logical_configuration
                    ),
                });
            }
        };
        let tx = self.tx;
        let lc_conf: i64 = tx
            .prepare_cached("SELECT configuration FROM logical_configuration WHERE id = ?1")?
            .query_row([lc], |r| r.get(0))?;
        if lc_conf != configuration {
            return Err(DomainError::Invalid {
                object: location,
                problem: format!(
                    "it is on configuration {} but its logical configuration {} is on another configuration",
                    p.configuration, p.logical_configuration
                ),
            });
        }
        let start = p
            .start
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| DomainError::Invalid {
                object: location.clone(),
                problem: format!("its start cannot be written as RFC 3339: {e}"),
            })?;
        let (local, change) =
            self.upsert_performance(p, &location, activity, configuration, lc, &start)?;
        if let Some(reason) = self.changed_lcs.get(&lc).cloned() {
            self.changed_performances.entry(local).or_insert(reason);
        }
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
                diff_text(&mut diffs, "state", &state, p.state.as_str());
                if act != activity {
                    diffs.push(format!("activity {act} → {activity}"));
                }
                if conf != configuration || plc != lc {
                    diffs.push("configuration changed".to_owned());
                }
                if diffs.is_empty() {
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

    fn rate_table(&mut self, r: &catalogue::RateTable) -> Result<(), DomainError> {
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
        });
        Ok(())
    }

    fn price(&mut self, p: &catalogue::Price, locals: Option<&[i64]>) -> Result<(), DomainError> {
        let k = MappingKind::SeatCategory;
        let key = format!(
            "{}/{}/{}",
            self.refs.code_of(k, p.seat_category),
            self.refs.code_of(MappingKind::TariffType, p.tariff_type),
            self.refs
                .code_of(MappingKind::AudienceSubcategory, p.audience_subcategory)
        );
        let Some(open) = self.rt.as_mut().filter(|o| o.manager == p.rate_table) else {
            return Err(DomainError::Invalid {
                object: format!("price {key}"),
                problem: format!("its rate table {} was not read before it", p.rate_table),
            });
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
            return Err(DomainError::Invalid {
                object: location,
                problem: "another price of this rate table maps to the same local seat category, tariff type and audience subcategory; map them to distinct local objects or ignore one".to_owned(),
            });
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

    fn close_rt(&mut self) -> Result<(), DomainError> {
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
        let location = format!("rate table {}", open.code);
        if open.created {
            self.summary.add(Change::Created);
        } else if open.diffs.is_empty() {
            self.summary.add(Change::Unchanged);
        } else {
            tx.prepare_cached("UPDATE rate_table SET state = 'to_validate' WHERE id = ?1")?
                .execute([open.local])?;
            for d in &open.diffs {
                self.changed(&location, d)?;
            }
            self.changed_rate_tables.insert(
                open.local,
                format!("{location} changed: {}", open.diffs.join("; ")),
            );
            self.summary.add(Change::Updated);
        }
        Ok(())
    }

    fn product(
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
                return Err(DomainError::Invalid {
                    object: location,
                    problem: format!(
                        "it names rate table {}, which the file does not declare",
                        p.rate_table
                    ),
                });
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
                        rate_table,
                        diffs,
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
                        rate_table,
                        diffs: Vec::new(),
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

    fn performance_ref(&mut self, r: &catalogue::PerformanceRef) -> Result<(), DomainError> {
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
                return Err(DomainError::Invalid {
                    object: location,
                    problem: format!(
                        "it names performance {}, which the file does not declare",
                        r.performance
                    ),
                });
            }
        };
        open.performances.insert(perf);
        let tx = self.tx;
        let n = tx
            .prepare_cached(
                "INSERT INTO product_performance (product, performance) VALUES (?1, ?2)
                 ON CONFLICT DO NOTHING",
            )?
            .execute((open.local, perf))?;
        if n > 0 {
            if !open.created {
                open.diffs.push(format!("performance {perf_code} added"));
            }
            self.summary.add(Change::Created);
        } else {
            self.summary.add(Change::Unchanged);
        }
        if let Some(why) = self.changed_performances.get(&perf) {
            open.diffs.push(why.clone());
        }
        Ok(())
    }

    fn close_product(&mut self) -> Result<(), DomainError> {
        let Some(mut open) = self.product.take() else {
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
        for (perf, code) in stale {
            tx.prepare_cached(
                "DELETE FROM product_performance WHERE product = ?1 AND performance = ?2",
            )?
            .execute((open.local, perf))?;
            open.diffs.push(format!("performance {code} removed"));
        }
        if let Some(why) = self.changed_rate_tables.get(&open.rate_table) {
            open.diffs.push(why.clone());
        }
        let location = format!("product {}", open.code);
        if open.created {
            self.summary.add(Change::Created);
        } else if open.diffs.is_empty() {
            self.summary.add(Change::Unchanged);
        } else {
            tx.prepare_cached("UPDATE product SET state = 'to_validate' WHERE id = ?1")?
                .execute([open.local])?;
            for d in &open.diffs {
                self.changed(&location, d)?;
            }
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
    fn suspend_withdrawn(&mut self) -> Result<(), DomainError> {
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

    /// Ends the file: applied (withdrawn products suspended), or parked
    /// (rolled back but for the pending rows and the run messages).
    pub fn finish(mut self) -> Result<Outcome, DomainError> {
        if !self.refs.any_missing() {
            self.close_lc()?;
            self.close_rt()?;
            self.close_product()?;
            self.suspend_withdrawn()?;
        }
        finish_refs(self.tx, &self.ctx, &mut self.savepoint, &self.refs)?;
        if self.refs.any_missing() {
            return Ok(Outcome::Parked(self.refs.missing()));
        }
        summary_message(self.tx, &self.ctx, &self.summary)?;
        Ok(Outcome::Applied(self.summary))
    }

    fn local_of(&self, kind: MappingKind, id: TechId) -> Result<Option<i64>, DomainError> {
        Ok(
            match mapping::lookup(self.tx, self.ctx.manager, kind, id)? {
                Some(Resolved::Local(local)) => Some(local),
                _ => None,
            },
        )
    }

    fn fill(
        &self,
        kind: MappingKind,
        id: TechId,
        code: &Code,
        label: &str,
        local: i64,
    ) -> Result<(), DomainError> {
        mapping::fill_auto(
            self.tx,
            &Seen {
                manager: self.ctx.manager,
                kind,
                manager_id: id,
                code,
                label,
                file: self.ctx.file,
            },
            local,
        )
    }

    /// The manager's code of the object a local id stands for (the local
    /// code when several or none map to it).
    fn manager_code(&self, kind: MappingKind, local: i64) -> Result<String, DomainError> {
        let code: Option<String> = self
            .tx
            .prepare_cached(
                "SELECT manager_code FROM mapping WHERE manager = ?1 AND kind = ?2 AND local_id = ?3
                 ORDER BY manager_id LIMIT 1",
            )?
            .query_row((self.ctx.manager, kind.as_str(), local), |r| r.get(0))
            .optional()?;
        Ok(code.unwrap_or_else(|| local.to_string()))
    }
}

fn diff_text(diffs: &mut Vec<String>, what: &str, old: &str, new: &str) {
    if old != new {
        diffs.push(format!("{what} {old:?} → {new:?}"));
    }
}
