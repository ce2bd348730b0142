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

use super::refs::{Refs, finish_refs, info, mapped_local, summary_message};
use super::savepoint::Savepoint;
use super::seen::FileIds;
use super::{Context, Outcome, Summary};
use crate::domain::DomainError;
use crate::domain::mapping::{FileMappings, Resolved, Seen};
use crate::format::{Position, catalogue};
use crate::ident::{Code, TechId};
use crate::store::mapping::MappingKind;

mod configurations;
mod logical;
mod performances;
mod products;
mod rates;

/// The logical configuration being read (its seat categories follow it).
struct OpenLc {
    manager: TechId,
    local: i64,
    code: String,
    created: bool,
    diffs: Vec<String>,
    seen: HashSet<i64>,
    /// Local seat → local logical seat category, from its seat ranges.
    seats: HashMap<i64, i64>,
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
    /// Local (logical seat category, tariff type, audience) keys.
    seen_logical: HashSet<(i64, i64, i64)>,
}

/// The product being read (its performance references follow it).
struct OpenProduct {
    local: i64,
    code: String,
    created: bool,
    was_suspended: bool,
    /// Differences of the product itself (code, name, activity, rate
    /// table, sent again after its withdrawal): it returns to to_validate.
    diffs: Vec<String>,
    /// Performances added or changed: their links wait for validation.
    links: Vec<String>,
    performances: HashSet<i64>,
}

/// Imports a `CATALOGUE` file at the distributor through the mapping table.
pub struct CatalogueImport<'t> {
    tx: &'t Transaction<'t>,
    ctx: Context<'t>,
    savepoint: Savepoint<'t>,
    refs: Refs,
    /// The ids the file declared.
    ids: FileIds<'t>,
    /// The look-ups and fills of the objects it creates.
    maps: FileMappings<'t>,
    summary: Summary,
    lc: Option<OpenLc>,
    rt: Option<OpenRt>,
    product: Option<OpenProduct>,
    /// Manager id → local id (None: skipped) of the objects of this file.
    lcs: HashMap<i64, Option<i64>>,
    performances: HashMap<i64, Option<(i64, String)>>,
    rate_tables: HashMap<i64, Option<i64>>,
    /// Manager id → local id (None: skipped) of the logical seat categories.
    logical_categories: HashMap<i64, Option<i64>>,
    /// Local ids of the performances whose own data changed in this file,
    /// with what changed (their product links wait for validation).
    changed_performances: HashMap<i64, String>,
    /// Manager ids of the products of this file.
    products: HashSet<i64>,
    /// The code of the last rate table read (for messages, even when parked).
    rt_code: String,
    /// The record being applied, 1-based (positions in refusals).
    record: u64,
}

impl<'t> CatalogueImport<'t> {
    pub fn new(
        tx: &'t Transaction<'t>,
        ctx: Context<'t>,
    ) -> Result<CatalogueImport<'t>, DomainError> {
        let ids = FileIds::new(tx)?;
        Ok(CatalogueImport {
            tx,
            ctx,
            savepoint: Savepoint::open(tx, "catalogue_import")?,
            refs: Refs::default(),
            ids,
            maps: FileMappings::new(tx),
            summary: Summary::default(),
            lc: None,
            rt: None,
            product: None,
            lcs: HashMap::new(),
            performances: HashMap::new(),
            rate_tables: HashMap::new(),
            logical_categories: HashMap::new(),
            changed_performances: HashMap::new(),
            products: HashSet::new(),
            rt_code: String::new(),
            record: 0,
        })
    }

    /// Takes the next record of the file. A refusal names the file and the
    /// record (its rank in the file, and what it is); an id the file
    /// declared before is refused (`duplicate-id`).
    pub fn item(&mut self, item: &catalogue::Item) -> Result<(), DomainError> {
        use catalogue::Item;
        self.record += 1;
        let declared = match item {
            Item::Season(x) => Some(("season", x.id, &x.code)),
            Item::VatCode(x) => Some(("vat code", x.id, &x.code)),
            Item::TariffType(x) => Some(("tariff type", x.id, &x.code)),
            Item::AudienceSubcategory(x) => Some(("audience subcategory", x.id, &x.code)),
            Item::SeatCategory(x) => Some(("seat category", x.id, &x.code)),
            Item::Activity(x) => Some(("activity", x.id, &x.code)),
            Item::LogicalConfiguration(x) => Some(("logical configuration", x.id, &x.code)),
            Item::LogicalSeatCategory(x) => Some(("logical seat category", x.id, &x.code)),
            Item::Performance(x) => Some(("performance", x.id, &x.code)),
            Item::RateTable(x) => Some(("rate table", x.id, &x.code)),
            Item::Product(x) => Some(("product", x.id, &x.code)),
            Item::Price(_)
            | Item::LogicalPrice(_)
            | Item::SeatRange(_)
            | Item::PerformanceRef(_) => None,
        };
        // What the record is, in words: built only for a refusal.
        let what = || match (declared, item) {
            (Some((kind, id, code)), _) => format!("{kind} {code}, id {id}"),
            (None, Item::Price(p)) => format!(
                "price of rate table {} for seat category {}, tariff type {}, audience subcategory {}",
                p.rate_table, p.seat_category, p.tariff_type, p.audience_subcategory
            ),
            (None, Item::LogicalPrice(p)) => format!(
                "logical price of rate table {} for logical seat category {}, tariff type {}, audience subcategory {}",
                p.rate_table, p.logical_seat_category, p.tariff_type, p.audience_subcategory
            ),
            (None, Item::SeatRange(r)) => format!(
                "seat range {} {} {}-{} of logical configuration {}",
                r.block, r.row, r.from, r.to, r.logical_configuration
            ),
            (None, Item::PerformanceRef(r)) => {
                format!("performance {} of product {}", r.performance, r.product)
            }
            (None, _) => String::new(),
        };
        let (file, record) = (self.ctx.file, self.record);
        if let Some((kind, id, _)) = declared {
            self.ids.declare(file, kind, id.get(), record, what)?;
        }
        self.apply(item)
            .map_err(|e| e.locate(file, || Position::record(record, what())))
    }

    fn apply(&mut self, item: &catalogue::Item) -> Result<(), DomainError> {
        use catalogue::Item;
        // Close the group a record does not belong to.
        if !matches!(item, Item::LogicalSeatCategory(_) | Item::SeatRange(_)) {
            self.close_lc()?;
        }
        if !matches!(item, Item::Price(_) | Item::LogicalPrice(_)) {
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
            Item::SeatRange(r) => self.seat_range(r),
            Item::Performance(p) => self.performance(p, locals.as_deref()),
            Item::RateTable(r) => self.rate_table(r),
            Item::Price(p) => self.price(p, locals.as_deref()),
            Item::LogicalPrice(p) => self.logical_price(p, locals.as_deref()),
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
            Item::LogicalPrice(p) => {
                let by = || format!("logical price of rate table {}", self.rt_code);
                vec![
                    refs.need(MappingKind::TariffType, p.tariff_type, &by)?,
                    refs.need(
                        MappingKind::AudienceSubcategory,
                        p.audience_subcategory,
                        &by,
                    )?,
                ]
            }
            Item::RateTable(_) | Item::PerformanceRef(_) | Item::SeatRange(_) => Vec::new(),
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

    /// Keeps the differences of an object that is (or stays) to validate,
    /// for `stxd catalogue list` until it is validated (`kind` is the
    /// object's table).
    fn pending(&self, kind: &str, local: i64, differences: &[String]) -> Result<(), DomainError> {
        let now = crate::store::now();
        let mut st = self.tx.prepare_cached(
            "INSERT INTO catalogue_change (kind, object, difference, file, at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for d in differences {
            let d: String = d.chars().take(2000).collect();
            st.execute((kind, local, &d, self.ctx.file, &now))?;
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

    fn local_of(&mut self, kind: MappingKind, id: TechId) -> Result<Option<i64>, DomainError> {
        mapped_local(&mut self.maps, self.ctx.manager, kind, id)
    }

    fn fill(
        &mut self,
        kind: MappingKind,
        id: TechId,
        code: &Code,
        label: &str,
        local: i64,
    ) -> Result<(), DomainError> {
        self.maps.fill(
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
