//! Master-data loading: seat-plan and catalogue records and the setup file, into
//! one institution's store.
//!
//! Every function works inside the transaction the caller gives, so several
//! files load all or nothing. Loading upserts by technical id: loading the same
//! data again changes nothing, loading changed data updates it, and nothing is
//! ever deleted here (objects may already be referenced by orders). References
//! are checked as each record arrives, so the order is the documents' order:
//! the seat plan before the catalogue (logical configurations and performances
//! name configurations), the catalogue before the setup file (profiles name
//! activities, products and audience subcategories). A missing reference is a
//! [`DomainError::Missing`] naming both objects.
//!
//! The setup file format is documented key by key in `samples/README.md`
//! (section "Setup file") and by the raw types below.

use std::collections::HashSet;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension, Transaction};
use serde::Deserialize;

use super::DomainError;
use crate::format::{catalogue, seatplan};
use crate::ident::{Code, Name, TechId};
use crate::store::Role;

/// Largest setup file read, in bytes.
pub const SETUP_MAX_BYTES: u64 = 4 << 20;

// ------------------------------------------------------------------ helpers

fn exists(conn: &Connection, table: &'static str, id: i64) -> Result<bool, DomainError> {
    let sql = format!("SELECT 1 FROM {table} WHERE id = ?1");
    Ok(conn.prepare_cached(&sql)?.exists([id])?)
}

/// Fails with "`object` names `kind` `id`, which is not loaded" when absent.
fn require(
    conn: &Connection,
    table: &'static str,
    id: TechId,
    object: impl FnOnce() -> String,
) -> Result<(), DomainError> {
    if exists(conn, table, id.get())? {
        Ok(())
    } else {
        Err(DomainError::Missing {
            object: object(),
            kind: table.replace('_', " "),
            id: id.get(),
        })
    }
}

/// The role recorded in the store.
pub fn store_role(conn: &Connection) -> Result<Role, DomainError> {
    let role: String = conn
        .prepare_cached("SELECT role FROM institution WHERE id = 1")?
        .query_row([], |r| r.get(0))?;
    role.parse().map_err(|e: crate::exchange::Unknown| {
        DomainError::Store(crate::store::StoreError::Corrupt(format!(
            "institution role: {e}"
        )))
    })
}

/// The institution code recorded in the store.
pub fn store_institution(conn: &Connection) -> Result<String, DomainError> {
    Ok(conn
        .prepare_cached("SELECT code FROM institution WHERE id = 1")?
        .query_row([], |r| r.get(0))?)
}

/// The state a catalogue object (logical configuration, rate table, product)
/// gets when first loaded: the manager's own objects are active; at the
/// distributor nothing sells before someone validates it.
fn initial_state(role: Role) -> &'static str {
    match role {
        Role::Manager => "active",
        Role::Distributor => "to_validate",
    }
}

fn date_text(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Upserts a (id, code, name) object into `table`.
fn upsert_reference(
    tx: &Transaction<'_>,
    table: &'static str,
    id: TechId,
    code: &Code,
    name: &Name,
) -> Result<(), DomainError> {
    let sql = format!(
        "INSERT INTO {table} (id, code, name) VALUES (?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET code = excluded.code, name = excluded.name
         WHERE code IS NOT excluded.code OR name IS NOT excluded.name"
    );
    tx.prepare_cached(&sql)?
        .execute((id.get(), code.as_str(), name.as_str()))?;
    Ok(())
}

// ---------------------------------------------------------------- seat plan

/// Loads one seat-plan record (upsert by id).
pub fn seatplan_item(tx: &Transaction<'_>, item: &seatplan::Item) -> Result<(), DomainError> {
    use seatplan::Item;
    match item {
        Item::SeatCategory(c) => upsert_reference(tx, "seat_category", c.id, &c.code, &c.name),
        Item::Venue(v) => upsert_reference(tx, "venue", v.id, &v.code, &v.name),
        Item::Configuration(c) => {
            require(tx, "venue", c.venue, || format!("configuration {}", c.id))?;
            tx.prepare_cached(
                "INSERT INTO configuration (id, venue, code, name) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET venue = excluded.venue, code = excluded.code,
                     name = excluded.name
                 WHERE venue IS NOT excluded.venue OR code IS NOT excluded.code
                     OR name IS NOT excluded.name",
            )?
            .execute((c.id.get(), c.venue.get(), c.code.as_str(), c.name.as_str()))?;
            Ok(())
        }
        Item::Zone(z) => {
            let who = || format!("zone {}", z.id);
            require(tx, "configuration", z.configuration, who)?;
            require(tx, "seat_category", z.seat_category, who)?;
            tx.prepare_cached(
                "INSERT INTO zone (id, configuration, code, name, seat_category, capacity)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (id) DO UPDATE SET configuration = excluded.configuration,
                     code = excluded.code, name = excluded.name,
                     seat_category = excluded.seat_category, capacity = excluded.capacity
                 WHERE configuration IS NOT excluded.configuration OR code IS NOT excluded.code
                     OR name IS NOT excluded.name OR seat_category IS NOT excluded.seat_category
                     OR capacity IS NOT excluded.capacity",
            )?
            .execute((
                z.id.get(),
                z.configuration.get(),
                z.code.as_str(),
                z.name.as_str(),
                z.seat_category.get(),
                i64::from(z.capacity),
            ))?;
            Ok(())
        }
        Item::Block(b) => {
            require(tx, "configuration", b.configuration, || {
                format!("block {}", b.id)
            })?;
            tx.prepare_cached(
                "INSERT INTO block (id, configuration, code, name) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET configuration = excluded.configuration,
                     code = excluded.code, name = excluded.name
                 WHERE configuration IS NOT excluded.configuration OR code IS NOT excluded.code
                     OR name IS NOT excluded.name",
            )?
            .execute((
                b.id.get(),
                b.configuration.get(),
                b.code.as_str(),
                b.name.as_str(),
            ))?;
            Ok(())
        }
        Item::Row(r) => {
            require(tx, "block", r.block, || format!("row {}", r.id))?;
            let clash: Option<i64> = tx
                .prepare_cached(
                    "SELECT id FROM seat_row WHERE block = ?1 AND code = ?2 AND id <> ?3",
                )?
                .query_row((r.block.get(), r.code.as_str(), r.id.get()), |x| x.get(0))
                .optional()?;
            if let Some(other) = clash {
                return Err(DomainError::Invalid {
                    object: format!("row {} {}", r.id, r.code),
                    problem: format!(
                        "block {} already has row {other} with the code {}",
                        r.block, r.code
                    ),
                });
            }
            tx.prepare_cached(
                "INSERT INTO seat_row (id, block, code) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET block = excluded.block, code = excluded.code
                 WHERE block IS NOT excluded.block OR code IS NOT excluded.code",
            )?
            .execute((r.id.get(), r.block.get(), r.code.as_str()))?;
            Ok(())
        }
        Item::Seat(s) => {
            let who = || format!("seat {}", s.id);
            require(tx, "seat_row", s.row, who)?;
            require(tx, "seat_category", s.seat_category, who)?;
            let clash: Option<i64> = tx
                .prepare_cached("SELECT id FROM seat WHERE row = ?1 AND number = ?2 AND id <> ?3")?
                .query_row((s.row.get(), s.number.as_str(), s.id.get()), |x| x.get(0))
                .optional()?;
            if let Some(other) = clash {
                return Err(DomainError::Invalid {
                    object: format!("seat {} {}", s.id, s.number),
                    problem: format!(
                        "row {} already has seat {other} with the number {}",
                        s.row, s.number
                    ),
                });
            }
            tx.prepare_cached(
                "INSERT INTO seat (id, row, number, seat_category) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET row = excluded.row, number = excluded.number,
                     seat_category = excluded.seat_category
                 WHERE row IS NOT excluded.row OR number IS NOT excluded.number
                     OR seat_category IS NOT excluded.seat_category",
            )?
            .execute((
                s.id.get(),
                s.row.get(),
                s.number.as_str(),
                s.seat_category.get(),
            ))?;
            Ok(())
        }
    }
}

// ---------------------------------------------------------------- catalogue

/// Loads one catalogue record (upsert by id). Logical configurations, rate
/// tables and products get their initial state on first load (`active` at the
/// manager, `to_validate` at the distributor); a reload never changes a state.
pub fn catalogue_item(tx: &Transaction<'_>, item: &catalogue::Item) -> Result<(), DomainError> {
    use catalogue::Item;
    match item {
        Item::Season(s) => {
            if s.start > s.end {
                return Err(DomainError::Invalid {
                    object: format!("season {}", s.id),
                    problem: format!(
                        "it ends ({}) before it starts ({})",
                        date_text(s.end),
                        date_text(s.start)
                    ),
                });
            }
            tx.prepare_cached(
                "INSERT INTO season (id, code, name, start_date, end_date) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (id) DO UPDATE SET code = excluded.code, name = excluded.name,
                     start_date = excluded.start_date, end_date = excluded.end_date
                 WHERE code IS NOT excluded.code OR name IS NOT excluded.name
                     OR start_date IS NOT excluded.start_date OR end_date IS NOT excluded.end_date",
            )?
            .execute((
                s.id.get(),
                s.code.as_str(),
                s.name.as_str(),
                date_text(s.start),
                date_text(s.end),
            ))?;
            Ok(())
        }
        Item::VatCode(v) => {
            if v.rate_bp > 10_000 {
                return Err(DomainError::Invalid {
                    object: format!("VAT code {}", v.id),
                    problem: format!(
                        "expected a rate from 0 to 10000 hundredths of a percent, found {}",
                        v.rate_bp
                    ),
                });
            }
            tx.prepare_cached(
                "INSERT INTO vat_code (id, code, name, rate_bp) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET code = excluded.code, name = excluded.name,
                     rate_bp = excluded.rate_bp
                 WHERE code IS NOT excluded.code OR name IS NOT excluded.name
                     OR rate_bp IS NOT excluded.rate_bp",
            )?
            .execute((
                v.id.get(),
                v.code.as_str(),
                v.name.as_str(),
                i64::from(v.rate_bp),
            ))?;
            Ok(())
        }
        Item::TariffType(r) => upsert_reference(tx, "tariff_type", r.id, &r.code, &r.name),
        Item::AudienceSubcategory(r) => {
            upsert_reference(tx, "audience_subcategory", r.id, &r.code, &r.name)
        }
        Item::SeatCategory(r) => upsert_reference(tx, "seat_category", r.id, &r.code, &r.name),
        Item::Activity(a) => {
            let who = || format!("activity {}", a.id);
            require(tx, "season", a.season, who)?;
            require(tx, "vat_code", a.vat_code, who)?;
            tx.prepare_cached(
                "INSERT INTO activity (id, code, name, season, vat_code) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (id) DO UPDATE SET code = excluded.code, name = excluded.name,
                     season = excluded.season, vat_code = excluded.vat_code
                 WHERE code IS NOT excluded.code OR name IS NOT excluded.name
                     OR season IS NOT excluded.season OR vat_code IS NOT excluded.vat_code",
            )?
            .execute((
                a.id.get(),
                a.code.as_str(),
                a.name.as_str(),
                a.season.get(),
                a.vat_code.get(),
            ))?;
            Ok(())
        }
        Item::LogicalConfiguration(l) => {
            require(tx, "configuration", l.configuration, || {
                format!("logical configuration {}", l.id)
            })?;
            let state = initial_state(store_role(tx)?);
            tx.prepare_cached(
                "INSERT INTO logical_configuration (id, code, name, configuration, state)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (id) DO UPDATE SET code = excluded.code, name = excluded.name,
                     configuration = excluded.configuration
                 WHERE code IS NOT excluded.code OR name IS NOT excluded.name
                     OR configuration IS NOT excluded.configuration",
            )?
            .execute((
                l.id.get(),
                l.code.as_str(),
                l.name.as_str(),
                l.configuration.get(),
                state,
            ))?;
            Ok(())
        }
        Item::LogicalSeatCategory(l) => {
            let who = || format!("logical seat category {}", l.id);
            require(tx, "logical_configuration", l.logical_configuration, who)?;
            require(tx, "seat_category", l.seat_category, who)?;
            tx.prepare_cached(
                "INSERT INTO logical_seat_category (id, logical_configuration, code, name, seat_category)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (id) DO UPDATE SET logical_configuration = excluded.logical_configuration,
                     code = excluded.code, name = excluded.name, seat_category = excluded.seat_category
                 WHERE logical_configuration IS NOT excluded.logical_configuration
                     OR code IS NOT excluded.code OR name IS NOT excluded.name
                     OR seat_category IS NOT excluded.seat_category",
            )?
            .execute((
                l.id.get(),
                l.logical_configuration.get(),
                l.code.as_str(),
                l.name.as_str(),
                l.seat_category.get(),
            ))?;
            Ok(())
        }
        Item::Performance(p) => {
            let who = || format!("performance {}", p.id);
            require(tx, "activity", p.activity, who)?;
            require(tx, "configuration", p.configuration, who)?;
            let lc_conf: Option<i64> = tx
                .prepare_cached("SELECT configuration FROM logical_configuration WHERE id = ?1")?
                .query_row([p.logical_configuration.get()], |r| r.get(0))
                .optional()?;
            match lc_conf {
                None => {
                    return Err(DomainError::Missing {
                        object: who(),
                        kind: "logical configuration".to_owned(),
                        id: p.logical_configuration.get(),
                    });
                }
                Some(c) if c != p.configuration.get() => {
                    return Err(DomainError::Invalid {
                        object: who(),
                        problem: format!(
                            "it is on configuration {} but its logical configuration {} is on configuration {c}",
                            p.configuration, p.logical_configuration
                        ),
                    });
                }
                Some(_) => {}
            }
            let start = p
                .start
                .format(&time::format_description::well_known::Rfc3339)
                .map_err(|e| DomainError::Invalid {
                    object: who(),
                    problem: format!("its start cannot be written as RFC 3339: {e}"),
                })?;
            tx.prepare_cached(
                "INSERT INTO performance (id, code, name, activity, start, configuration,
                     logical_configuration, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (id) DO UPDATE SET code = excluded.code, name = excluded.name,
                     activity = excluded.activity, start = excluded.start,
                     configuration = excluded.configuration,
                     logical_configuration = excluded.logical_configuration, state = excluded.state
                 WHERE code IS NOT excluded.code OR name IS NOT excluded.name
                     OR activity IS NOT excluded.activity OR start IS NOT excluded.start
                     OR configuration IS NOT excluded.configuration
                     OR logical_configuration IS NOT excluded.logical_configuration
                     OR state IS NOT excluded.state",
            )?
            .execute((
                p.id.get(),
                p.code.as_str(),
                p.name.as_str(),
                p.activity.get(),
                start,
                p.configuration.get(),
                p.logical_configuration.get(),
                p.state.as_str(),
            ))?;
            Ok(())
        }
        Item::RateTable(r) => {
            let state = initial_state(store_role(tx)?);
            tx.prepare_cached(
                "INSERT INTO rate_table (id, code, name, currency, state) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (id) DO UPDATE SET code = excluded.code, name = excluded.name,
                     currency = excluded.currency
                 WHERE code IS NOT excluded.code OR name IS NOT excluded.name
                     OR currency IS NOT excluded.currency",
            )?
            .execute((
                r.id.get(),
                r.code.as_str(),
                r.name.as_str(),
                r.currency.as_str(),
                state,
            ))?;
            Ok(())
        }
        Item::Price(p) => {
            let who = || {
                format!(
                    "price of rate table {} (seat category {}, tariff type {}, audience subcategory {})",
                    p.rate_table, p.seat_category, p.tariff_type, p.audience_subcategory
                )
            };
            require(tx, "rate_table", p.rate_table, who)?;
            require(tx, "seat_category", p.seat_category, who)?;
            require(tx, "tariff_type", p.tariff_type, who)?;
            require(tx, "audience_subcategory", p.audience_subcategory, who)?;
            if !(0..=crate::money::AMOUNT_MAX).contains(&p.amount) {
                return Err(DomainError::Invalid {
                    object: who(),
                    problem: format!(
                        "expected an amount from 0 to {} minor units, found {}",
                        crate::money::AMOUNT_MAX,
                        p.amount
                    ),
                });
            }
            tx.prepare_cached(
                "INSERT INTO price (rate_table, seat_category, tariff_type, audience_subcategory, amount)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (rate_table, seat_category, tariff_type, audience_subcategory)
                 DO UPDATE SET amount = excluded.amount WHERE amount IS NOT excluded.amount",
            )?
            .execute((
                p.rate_table.get(),
                p.seat_category.get(),
                p.tariff_type.get(),
                p.audience_subcategory.get(),
                p.amount,
            ))?;
            Ok(())
        }
        Item::Product(p) => {
            let who = || format!("product {}", p.id);
            require(tx, "activity", p.activity, who)?;
            require(tx, "rate_table", p.rate_table, who)?;
            let state = initial_state(store_role(tx)?);
            tx.prepare_cached(
                "INSERT INTO product (id, code, name, activity, rate_table, state)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (id) DO UPDATE SET code = excluded.code, name = excluded.name,
                     activity = excluded.activity, rate_table = excluded.rate_table
                 WHERE code IS NOT excluded.code OR name IS NOT excluded.name
                     OR activity IS NOT excluded.activity OR rate_table IS NOT excluded.rate_table",
            )?
            .execute((
                p.id.get(),
                p.code.as_str(),
                p.name.as_str(),
                p.activity.get(),
                p.rate_table.get(),
                state,
            ))?;
            Ok(())
        }
        Item::PerformanceRef(r) => {
            let who = || format!("product {}", r.product);
            require(tx, "product", r.product, who)?;
            require(tx, "performance", r.performance, who)?;
            tx.prepare_cached(
                "INSERT INTO product_performance (product, performance) VALUES (?1, ?2)
                 ON CONFLICT DO NOTHING",
            )?
            .execute((r.product.get(), r.performance.get()))?;
            Ok(())
        }
    }
}

// --------------------------------------------------------------- setup file

/// The setup file as written (see `samples/README.md`, "Setup file").
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSetup {
    institution: String,
    role: Role,
    #[serde(default)]
    sales_channel: Vec<RawSalesChannel>,
    #[serde(default)]
    point_of_sale: Vec<RawPointOfSale>,
    #[serde(default)]
    payment_method: Vec<RawPaymentMethod>,
    #[serde(default)]
    contact: Vec<RawContact>,
    #[serde(default)]
    external_sales_interface: Vec<RawExternalSalesInterface>,
    #[serde(default)]
    contingent: Vec<RawContingent>,
    #[serde(default)]
    activity_profile: Vec<RawActivityProfile>,
    #[serde(default)]
    product_profile: Vec<RawProductProfile>,
    #[serde(default)]
    external_manager: Vec<RawExternalManager>,
    #[serde(default)]
    virtual_operator: Vec<RawVirtualOperator>,
    #[serde(default)]
    sales_profile: Vec<RawSalesProfile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSalesChannel {
    id: i64,
    code: String,
    name: String,
    kind: String,
    in_operation: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPointOfSale {
    id: i64,
    code: String,
    name: String,
    channel: i64,
    in_operation: bool,
    payment_methods: Vec<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPaymentMethod {
    id: i64,
    code: String,
    name: String,
    allows_pending_account: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContact {
    id: i64,
    code: String,
    name: String,
    pending_account_authorised: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExternalSalesInterface {
    id: i64,
    login: String,
    url: String,
    channel: i64,
    distributor: String,
    contact: Option<i64>,
    point_of_sale: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContingent {
    id: i64,
    code: String,
    name: String,
    channel: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawActivityProfile {
    id: i64,
    code: String,
    name: String,
    channel: i64,
    activities: Vec<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProductProfile {
    id: i64,
    code: String,
    name: String,
    channel: i64,
    products: Vec<i64>,
    #[serde(default)]
    audience_subcategories: Vec<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExternalManager {
    id: i64,
    code: String,
    name: String,
    url: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVirtualOperator {
    login: String,
    external_manager: i64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSalesProfile {
    id: i64,
    code: String,
    name: String,
    #[serde(default)]
    products: Vec<i64>,
}

/// The kinds of sales channel the setup file accepts.
pub const CHANNEL_KINDS: [&str; 5] = ["stx_file", "box_office", "internet", "call_centre", "other"];

/// What a setup file loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupSummary {
    pub institution: String,
    pub role: Role,
    /// Objects upserted (list members not counted).
    pub objects: usize,
}

/// Collects every problem of a setup file, so the operator sees them all at once.
struct Problems {
    list: Vec<String>,
}

impl Problems {
    fn push(&mut self, p: String) {
        self.list.push(p);
    }

    fn id(&mut self, at: &str, field: &str, v: i64) -> Option<i64> {
        match TechId::new(v) {
            Ok(t) => Some(t.get()),
            Err(e) => {
                self.push(format!("{at}: {field}: {e}"));
                None
            }
        }
    }

    fn ids(&mut self, at: &str, field: &str, vs: &[i64]) -> Option<Vec<i64>> {
        let mut out = Vec::with_capacity(vs.len());
        let mut seen = HashSet::new();
        let mut ok = true;
        for &v in vs {
            match self.id(at, field, v) {
                Some(i) if seen.insert(i) => out.push(i),
                Some(i) => {
                    self.push(format!("{at}: {field}: {i} is listed twice"));
                    ok = false;
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    /// The id, code and name every setup object carries, each checked (a
    /// problem is listed for each bad one).
    fn identity(
        &mut self,
        at: &str,
        id: i64,
        code: &str,
        name: &str,
    ) -> (Option<i64>, Option<String>, Option<String>) {
        (
            self.id(at, "id", id),
            self.code(at, "code", code),
            self.name(at, name),
        )
    }

    fn code(&mut self, at: &str, field: &str, v: &str) -> Option<String> {
        match Code::new(v) {
            Ok(c) => Some(c.as_str().to_owned()),
            Err(e) => {
                self.push(format!("{at}: {field}: {e}"));
                None
            }
        }
    }

    fn name(&mut self, at: &str, v: &str) -> Option<String> {
        match Name::new(v) {
            Ok(n) => Some(n.as_str().to_owned()),
            Err(e) => {
                self.push(format!("{at}: name: {e}"));
                None
            }
        }
    }

    fn url(&mut self, at: &str, v: &str) -> Option<String> {
        let ok = (v.starts_with("http://") || v.starts_with("https://"))
            && v.len() <= 200
            && !v.chars().any(|c| c.is_whitespace() || c.is_control());
        if ok {
            Some(v.to_owned())
        } else {
            self.push(format!(
                "{at}: url: expected an http:// or https:// URL of at most 200 bytes without spaces, found {:?}",
                crate::ident::shorten(v)
            ));
            None
        }
    }

    /// A login: letters, digits, `_ - .`, and `@` when `at_sign`.
    fn login(&mut self, at: &str, v: &str, at_sign: bool) -> Option<String> {
        let ok = (1..=64).contains(&v.len())
            && v.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') || (at_sign && c == '@')
            });
        if ok {
            Some(v.to_owned())
        } else {
            let allowed = if at_sign {
                "A-Z a-z 0-9 _ - . @"
            } else {
                "A-Z a-z 0-9 _ - ."
            };
            self.push(format!(
                "{at}: login: expected 1 to 64 characters among {allowed}, found {:?}",
                crate::ident::shorten(v)
            ));
            None
        }
    }

    /// Records a problem when the object is not in the store.
    fn present(
        &mut self,
        tx: &Transaction<'_>,
        at: &str,
        field: &str,
        table: &'static str,
        id: i64,
    ) -> Result<bool, DomainError> {
        if exists(tx, table, id)? {
            Ok(true)
        } else {
            self.push(format!(
                "{at}: {field} names {} {id}, which is not loaded",
                table.replace('_', " ")
            ));
            Ok(false)
        }
    }

    fn all_present(
        &mut self,
        tx: &Transaction<'_>,
        at: &str,
        field: &str,
        table: &'static str,
        ids: &[i64],
    ) -> Result<bool, DomainError> {
        let mut ok = true;
        for &id in ids {
            ok &= self.present(tx, at, field, table, id)?;
        }
        Ok(ok)
    }
}

/// Names an entry of a section for messages: `[[sales_channel]] #1 (id 5001)`.
fn at(section: &str, n: usize, id: impl std::fmt::Display) -> String {
    format!("[[{section}]] #{} ({id})", n + 1)
}

/// Tracks ids already seen in a section of the file.
fn first_time(seen: &mut HashSet<String>, p: &mut Problems, at: &str, key: String) -> bool {
    if seen.insert(key.clone()) {
        true
    } else {
        p.push(format!("{at}: {key} appears twice in the file"));
        false
    }
}

/// Replaces the members of a list table for one owner.
fn replace_list(
    tx: &Transaction<'_>,
    table: &'static str,
    owner_col: &'static str,
    member_col: &'static str,
    owner: i64,
    members: &[i64],
) -> Result<(), DomainError> {
    tx.prepare_cached(&format!("DELETE FROM {table} WHERE {owner_col} = ?1"))?
        .execute([owner])?;
    let mut ins = tx.prepare_cached(&format!(
        "INSERT INTO {table} ({owner_col}, {member_col}) VALUES (?1, ?2)"
    ))?;
    for &m in members {
        ins.execute([owner, m])?;
    }
    Ok(())
}

/// Reads and loads a setup file (TOML) into the store of the transaction: all
/// of it, or nothing with every problem listed.
pub fn setup_file(tx: &Transaction<'_>, path: &Path) -> Result<SetupSummary, DomainError> {
    let file = path.display().to_string();
    let refuse = |p: String| DomainError::Setup {
        file: file.clone(),
        problems: vec![p],
    };
    let meta = std::fs::metadata(path).map_err(|e| refuse(format!("cannot read it: {e}")))?;
    if !meta.is_file() {
        return Err(refuse("it is not a regular file".to_owned()));
    }
    if meta.len() > SETUP_MAX_BYTES {
        return Err(refuse(format!(
            "it is {} bytes, more than the {SETUP_MAX_BYTES} accepted",
            meta.len()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| refuse(format!("cannot read it: {e}")))?;
    setup_str(tx, &text, &file)
}

/// Loads setup TOML already in memory; `file` names it in messages.
pub fn setup_str(
    tx: &Transaction<'_>,
    text: &str,
    file: &str,
) -> Result<SetupSummary, DomainError> {
    let raw: RawSetup = toml::from_str(text).map_err(|e| {
        let line = e
            .span()
            .and_then(|s| text.get(..s.start))
            .map(|before| before.matches('\n').count() + 1);
        let msg = e.message().trim().to_owned();
        DomainError::Setup {
            file: file.to_owned(),
            problems: vec![match line {
                Some(l) => format!("line {l}: {msg}"),
                None => msg,
            }],
        }
    })?;
    let mut p = Problems { list: Vec::new() };
    let role = store_role(tx)?;
    let institution = store_institution(tx)?;
    if raw.institution != institution {
        p.push(format!(
            "institution is {:?} but this store belongs to {institution}; load the setup file of {institution}",
            crate::ident::shorten(&raw.institution)
        ));
    }
    if raw.role != role {
        p.push(format!(
            "role is {} but this store is a {role}'s; load the setup file of a {role}",
            raw.role
        ));
    }
    let foreign: Vec<(&str, bool)> = match role {
        Role::Manager => vec![
            ("external_manager", !raw.external_manager.is_empty()),
            ("virtual_operator", !raw.virtual_operator.is_empty()),
            ("sales_profile", !raw.sales_profile.is_empty()),
        ],
        Role::Distributor => vec![
            ("sales_channel", !raw.sales_channel.is_empty()),
            ("point_of_sale", !raw.point_of_sale.is_empty()),
            ("payment_method", !raw.payment_method.is_empty()),
            ("contact", !raw.contact.is_empty()),
            (
                "external_sales_interface",
                !raw.external_sales_interface.is_empty(),
            ),
            ("contingent", !raw.contingent.is_empty()),
            ("activity_profile", !raw.activity_profile.is_empty()),
            ("product_profile", !raw.product_profile.is_empty()),
        ],
    };
    for (section, present) in foreign {
        if present {
            p.push(format!(
                "[[{section}]] is a section of a {}'s setup; this store is a {role}'s, remove it",
                role.peer()
            ));
        }
    }
    if !p.list.is_empty() {
        return Err(DomainError::Setup {
            file: file.to_owned(),
            problems: p.list,
        });
    }

    let mut objects = 0usize;
    let mut seen = HashSet::new();

    for (n, o) in raw.payment_method.iter().enumerate() {
        let at = at("payment_method", n, format!("id {}", o.id));
        let (id, code, name) = p.identity(&at, o.id, &o.code, &o.name);
        let (Some(id), Some(code), Some(name)) = (id, code, name) else {
            continue;
        };
        if !first_time(&mut seen, &mut p, &at, format!("payment method {id}")) {
            continue;
        }
        tx.prepare_cached(
            "INSERT INTO payment_method (id, code, name, allows_pending_account) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET code = excluded.code, name = excluded.name,
                 allows_pending_account = excluded.allows_pending_account
             WHERE code IS NOT excluded.code OR name IS NOT excluded.name
                 OR allows_pending_account IS NOT excluded.allows_pending_account",
        )?
        .execute((id, code, name, o.allows_pending_account))?;
        objects += 1;
    }

    for (n, o) in raw.contact.iter().enumerate() {
        let at = at("contact", n, format!("id {}", o.id));
        let (id, code, name) = p.identity(&at, o.id, &o.code, &o.name);
        let (Some(id), Some(code), Some(name)) = (id, code, name) else {
            continue;
        };
        if !first_time(&mut seen, &mut p, &at, format!("contact {id}")) {
            continue;
        }
        tx.prepare_cached(
            "INSERT INTO contact (id, code, name, pending_account_authorised) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET code = excluded.code, name = excluded.name,
                 pending_account_authorised = excluded.pending_account_authorised
             WHERE code IS NOT excluded.code OR name IS NOT excluded.name
                 OR pending_account_authorised IS NOT excluded.pending_account_authorised",
        )?
        .execute((id, code, name, o.pending_account_authorised))?;
        objects += 1;
    }

    for (n, o) in raw.sales_channel.iter().enumerate() {
        let at = at("sales_channel", n, format!("id {}", o.id));
        let (id, code, name) = p.identity(&at, o.id, &o.code, &o.name);
        let kind_ok = CHANNEL_KINDS.contains(&o.kind.as_str());
        if !kind_ok {
            p.push(format!(
                "{at}: kind: expected one of {}, found {:?}",
                CHANNEL_KINDS.join(", "),
                crate::ident::shorten(&o.kind)
            ));
        }
        let (Some(id), Some(code), Some(name), true) = (id, code, name, kind_ok) else {
            continue;
        };
        if !first_time(&mut seen, &mut p, &at, format!("sales channel {id}")) {
            continue;
        }
        tx.prepare_cached(
            "INSERT INTO sales_channel (id, code, name, kind, in_operation) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO UPDATE SET code = excluded.code, name = excluded.name,
                 kind = excluded.kind, in_operation = excluded.in_operation
             WHERE code IS NOT excluded.code OR name IS NOT excluded.name
                 OR kind IS NOT excluded.kind OR in_operation IS NOT excluded.in_operation",
        )?
        .execute((id, code, name, o.kind.as_str(), o.in_operation))?;
        objects += 1;
    }

    for (n, o) in raw.point_of_sale.iter().enumerate() {
        let at = at("point_of_sale", n, format!("id {}", o.id));
        let (id, code, name) = p.identity(&at, o.id, &o.code, &o.name);
        let channel = p.id(&at, "channel", o.channel);
        let methods = p.ids(&at, "payment_methods", &o.payment_methods);
        let (Some(id), Some(code), Some(name), Some(channel), Some(methods)) =
            (id, code, name, channel, methods)
        else {
            continue;
        };
        let refs = p.present(tx, &at, "channel", "sales_channel", channel)?
            & p.all_present(tx, &at, "payment_methods", "payment_method", &methods)?;
        if !refs || !first_time(&mut seen, &mut p, &at, format!("point of sale {id}")) {
            continue;
        }
        tx.prepare_cached(
            "INSERT INTO point_of_sale (id, code, name, channel, in_operation) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (id) DO UPDATE SET code = excluded.code, name = excluded.name,
                 channel = excluded.channel, in_operation = excluded.in_operation
             WHERE code IS NOT excluded.code OR name IS NOT excluded.name
                 OR channel IS NOT excluded.channel OR in_operation IS NOT excluded.in_operation",
        )?
        .execute((id, code, name, channel, o.in_operation))?;
        replace_list(
            tx,
            "point_of_sale_payment_method",
            "point_of_sale",
            "payment_method",
            id,
            &methods,
        )?;
        objects += 1;
    }

    // Contingents and profiles: (id, code, name, channel) plus lists.
    for (n, o) in raw.contingent.iter().enumerate() {
        let at = at("contingent", n, format!("id {}", o.id));
        let (id, code, name) = p.identity(&at, o.id, &o.code, &o.name);
        let channel = p.id(&at, "channel", o.channel);
        let (Some(id), Some(code), Some(name), Some(channel)) = (id, code, name, channel) else {
            continue;
        };
        if !p.present(tx, &at, "channel", "sales_channel", channel)?
            || !first_time(&mut seen, &mut p, &at, format!("contingent {id}"))
        {
            continue;
        }
        upsert_on_channel(tx, "contingent", id, &code, &name, channel)?;
        objects += 1;
    }

    for (n, o) in raw.activity_profile.iter().enumerate() {
        let at = at("activity_profile", n, format!("id {}", o.id));
        let (id, code, name) = p.identity(&at, o.id, &o.code, &o.name);
        let channel = p.id(&at, "channel", o.channel);
        let list = p.ids(&at, "activities", &o.activities);
        let (Some(id), Some(code), Some(name), Some(channel), Some(list)) =
            (id, code, name, channel, list)
        else {
            continue;
        };
        let refs = p.present(tx, &at, "channel", "sales_channel", channel)?
            & p.all_present(tx, &at, "activities", "activity", &list)?;
        if !refs || !first_time(&mut seen, &mut p, &at, format!("activity profile {id}")) {
            continue;
        }
        upsert_on_channel(tx, "activity_profile", id, &code, &name, channel)?;
        replace_list(
            tx,
            "activity_profile_activity",
            "activity_profile",
            "activity",
            id,
            &list,
        )?;
        objects += 1;
    }

    for (n, o) in raw.product_profile.iter().enumerate() {
        let at = at("product_profile", n, format!("id {}", o.id));
        let (id, code, name) = p.identity(&at, o.id, &o.code, &o.name);
        let channel = p.id(&at, "channel", o.channel);
        let products = p.ids(&at, "products", &o.products);
        let audiences = p.ids(&at, "audience_subcategories", &o.audience_subcategories);
        let (Some(id), Some(code), Some(name), Some(channel), Some(products), Some(audiences)) =
            (id, code, name, channel, products, audiences)
        else {
            continue;
        };
        let refs = p.present(tx, &at, "channel", "sales_channel", channel)?
            & p.all_present(tx, &at, "products", "product", &products)?
            & p.all_present(
                tx,
                &at,
                "audience_subcategories",
                "audience_subcategory",
                &audiences,
            )?;
        if !refs || !first_time(&mut seen, &mut p, &at, format!("product profile {id}")) {
            continue;
        }
        upsert_on_channel(tx, "product_profile", id, &code, &name, channel)?;
        replace_list(
            tx,
            "product_profile_product",
            "product_profile",
            "product",
            id,
            &products,
        )?;
        replace_list(
            tx,
            "product_profile_audience",
            "product_profile",
            "audience_subcategory",
            id,
            &audiences,
        )?;
        objects += 1;
    }

    for (n, o) in raw.external_sales_interface.iter().enumerate() {
        let at = at("external_sales_interface", n, format!("id {}", o.id));
        let id = p.id(&at, "id", o.id);
        let login = p.login(&at, &o.login, true);
        let url = p.url(&at, &o.url);
        let channel = p.id(&at, "channel", o.channel);
        let distributor = p.code(&at, "distributor", &o.distributor);
        let contact = o.contact.map(|c| p.id(&at, "contact", c));
        let pos = o.point_of_sale.map(|c| p.id(&at, "point_of_sale", c));
        let (Some(id), Some(login), Some(url), Some(channel), Some(distributor)) =
            (id, login, url, channel, distributor)
        else {
            continue;
        };
        let (Some(contact), Some(pos)) = (
            contact.map_or(Some(None), |c| c.map(Some)),
            pos.map_or(Some(None), |c| c.map(Some)),
        ) else {
            continue;
        };
        let mut refs = p.present(tx, &at, "channel", "sales_channel", channel)?;
        if let Some(c) = contact {
            refs &= p.present(tx, &at, "contact", "contact", c)?;
        }
        if let Some(s) = pos {
            refs &= p.present(tx, &at, "point_of_sale", "point_of_sale", s)?;
        }
        let clash: Option<i64> = tx
            .prepare_cached(
                "SELECT id FROM external_sales_interface WHERE login = ?1 AND id <> ?2",
            )?
            .query_row((login.as_str(), id), |r| r.get(0))
            .optional()?;
        if let Some(other) = clash {
            p.push(format!(
                "{at}: login {login} is already used by external sales interface {other}"
            ));
            continue;
        }
        if !refs
            || !first_time(
                &mut seen,
                &mut p,
                &at,
                format!("external sales interface {id}"),
            )
        {
            continue;
        }
        tx.prepare_cached(
            "INSERT INTO external_sales_interface (id, login, url, channel, distributor, contact, point_of_sale)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (id) DO UPDATE SET login = excluded.login, url = excluded.url,
                 channel = excluded.channel, distributor = excluded.distributor,
                 contact = excluded.contact, point_of_sale = excluded.point_of_sale
             WHERE login IS NOT excluded.login OR url IS NOT excluded.url
                 OR channel IS NOT excluded.channel OR distributor IS NOT excluded.distributor
                 OR contact IS NOT excluded.contact OR point_of_sale IS NOT excluded.point_of_sale",
        )?
        .execute((id, login, url, channel, distributor, contact, pos))?;
        objects += 1;
    }

    for (n, o) in raw.external_manager.iter().enumerate() {
        let at = at("external_manager", n, format!("id {}", o.id));
        let (id, code, name) = p.identity(&at, o.id, &o.code, &o.name);
        let url = match &o.url {
            Some(u) => p.url(&at, u).map(Some),
            None => Some(None),
        };
        let (Some(id), Some(code), Some(name), Some(url)) = (id, code, name, url) else {
            continue;
        };
        let clash: Option<i64> = tx
            .prepare_cached("SELECT id FROM external_manager WHERE code = ?1 AND id <> ?2")?
            .query_row((code.as_str(), id), |r| r.get(0))
            .optional()?;
        if let Some(other) = clash {
            p.push(format!(
                "{at}: code {code} is already used by external manager {other}"
            ));
            continue;
        }
        if !first_time(&mut seen, &mut p, &at, format!("external manager {id}")) {
            continue;
        }
        tx.prepare_cached(
            "INSERT INTO external_manager (id, code, name, url) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET code = excluded.code, name = excluded.name, url = excluded.url
             WHERE code IS NOT excluded.code OR name IS NOT excluded.name OR url IS NOT excluded.url",
        )?
        .execute((id, code, name, url))?;
        objects += 1;
    }

    for (n, o) in raw.virtual_operator.iter().enumerate() {
        let at = at(
            "virtual_operator",
            n,
            format!("login {:?}", crate::ident::shorten(&o.login)),
        );
        let login = p.login(&at, &o.login, false);
        let em = p.id(&at, "external_manager", o.external_manager);
        let (Some(login), Some(em)) = (login, em) else {
            continue;
        };
        if !p.present(tx, &at, "external_manager", "external_manager", em)?
            || !first_time(&mut seen, &mut p, &at, format!("virtual operator {login}"))
        {
            continue;
        }
        tx.prepare_cached(
            "INSERT INTO virtual_operator (external_manager, login) VALUES (?1, ?2)
             ON CONFLICT (login) DO UPDATE SET external_manager = excluded.external_manager
             WHERE external_manager IS NOT excluded.external_manager",
        )?
        .execute((em, login))?;
        objects += 1;
    }

    for (n, o) in raw.sales_profile.iter().enumerate() {
        let at = at("sales_profile", n, format!("id {}", o.id));
        let (id, code, name) = p.identity(&at, o.id, &o.code, &o.name);
        let products = p.ids(&at, "products", &o.products);
        let (Some(id), Some(code), Some(name), Some(products)) = (id, code, name, products) else {
            continue;
        };
        if !p.all_present(tx, &at, "products", "product", &products)?
            || !first_time(&mut seen, &mut p, &at, format!("sales profile {id}"))
        {
            continue;
        }
        tx.prepare_cached(
            "INSERT INTO sales_profile (id, code, name) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET code = excluded.code, name = excluded.name
             WHERE code IS NOT excluded.code OR name IS NOT excluded.name",
        )?
        .execute((id, code, name))?;
        replace_list(
            tx,
            "sales_profile_product",
            "sales_profile",
            "product",
            id,
            &products,
        )?;
        objects += 1;
    }

    if !p.list.is_empty() {
        return Err(DomainError::Setup {
            file: file.to_owned(),
            problems: p.list,
        });
    }
    Ok(SetupSummary {
        institution,
        role,
        objects,
    })
}

/// Upserts an (id, code, name, channel) object: contingents and profiles.
fn upsert_on_channel(
    tx: &Transaction<'_>,
    table: &'static str,
    id: i64,
    code: &str,
    name: &str,
    channel: i64,
) -> Result<(), DomainError> {
    tx.prepare_cached(&format!(
        "INSERT INTO {table} (id, code, name, channel) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET code = excluded.code, name = excluded.name,
             channel = excluded.channel
         WHERE code IS NOT excluded.code OR name IS NOT excluded.name
             OR channel IS NOT excluded.channel"
    ))?
    .execute((id, code, name, channel))?;
    Ok(())
}
