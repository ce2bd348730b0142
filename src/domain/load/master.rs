//! Master data: seat-plan and catalogue records, loaded one at a time into
//! the store of the caller's transaction.
//!
//! [`seatplan_item`] and [`catalogue_item`] take one record as the format
//! readers yield it and upsert it by technical id, checking that every object
//! it names is already loaded ([`DomainError::Missing`] otherwise).

use rusqlite::{OptionalExtension, Transaction};

use super::{relabel, require, store_role};
use crate::domain::DomainError;
use crate::format::{catalogue, seatplan};
use crate::ident::{Code, Name, TechId};
use crate::store::Role;

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

/// Loads one seat-plan record (upsert by id).
pub fn seatplan_item(tx: &Transaction<'_>, item: &seatplan::Item) -> Result<(), DomainError> {
    use seatplan::Item;
    match item {
        Item::SeatCategory(c) => upsert_reference(tx, "seat_category", c.id, &c.code, &c.name),
        Item::Venue(v) => upsert_reference(tx, "venue", v.id, &v.code, &v.name),
        Item::Configuration(c) => configuration(tx, c),
        Item::Zone(z) => zone(tx, z),
        Item::Block(b) => block(tx, b),
        Item::Row(r) => row(tx, r),
        Item::Seat(s) => seat(tx, s),
    }
}

/// A configuration, of a loaded venue.
fn configuration(tx: &Transaction<'_>, c: &seatplan::Configuration) -> Result<(), DomainError> {
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

/// A zone, of a loaded configuration and seat category.
fn zone(tx: &Transaction<'_>, z: &seatplan::Zone) -> Result<(), DomainError> {
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

/// A block, of a loaded configuration.
fn block(tx: &Transaction<'_>, b: &seatplan::Block) -> Result<(), DomainError> {
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

/// A row, of a loaded block. A code another row of the block carries is
/// set aside for the file to relabel that row ([`super::relabel`]).
fn row(tx: &Transaction<'_>, r: &seatplan::Row) -> Result<(), DomainError> {
    require(tx, "block", r.block, || format!("row {}", r.id))?;
    relabel::free(tx, relabel::ROW, r.block.get(), r.code.as_str(), r.id.get())?;
    tx.prepare_cached(
        "INSERT INTO seat_row (id, block, code) VALUES (?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET block = excluded.block, code = excluded.code
         WHERE block IS NOT excluded.block OR code IS NOT excluded.code",
    )?
    .execute((r.id.get(), r.block.get(), r.code.as_str()))?;
    Ok(())
}

/// A seat, of a loaded row and seat category. A number another seat of the
/// row carries is set aside for the file to renumber that seat.
fn seat(tx: &Transaction<'_>, s: &seatplan::Seat) -> Result<(), DomainError> {
    let who = || format!("seat {}", s.id);
    require(tx, "seat_row", s.row, who)?;
    require(tx, "seat_category", s.seat_category, who)?;
    relabel::free(
        tx,
        relabel::SEAT,
        s.row.get(),
        s.number.as_str(),
        s.id.get(),
    )?;
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

/// Loads one catalogue record (upsert by id). Logical configurations, rate
/// tables and products get their initial state on first load (`active` at the
/// manager, `to_validate` at the distributor); a reload never changes a state.
pub fn catalogue_item(tx: &Transaction<'_>, item: &catalogue::Item) -> Result<(), DomainError> {
    use catalogue::Item;
    match item {
        Item::Season(s) => season(tx, s),
        Item::VatCode(v) => vat_code(tx, v),
        Item::TariffType(r) => upsert_reference(tx, "tariff_type", r.id, &r.code, &r.name),
        Item::AudienceSubcategory(r) => {
            upsert_reference(tx, "audience_subcategory", r.id, &r.code, &r.name)
        }
        Item::SeatCategory(r) => upsert_reference(tx, "seat_category", r.id, &r.code, &r.name),
        Item::Activity(a) => activity(tx, a),
        Item::LogicalConfiguration(l) => logical_configuration(tx, l),
        Item::LogicalSeatCategory(l) => logical_seat_category(tx, l),
        Item::SeatRange(r) => super::logical::seat_range(tx, r),
        Item::Performance(p) => performance(tx, p),
        Item::RateTable(r) => rate_table(tx, r),
        Item::Price(p) => price(tx, p),
        Item::LogicalPrice(p) => super::logical::logical_price(tx, p),
        Item::Product(p) => product(tx, p),
        Item::PerformanceRef(r) => performance_ref(tx, r),
    }
}

/// A season, which must not end before it starts.
fn season(tx: &Transaction<'_>, s: &catalogue::Season) -> Result<(), DomainError> {
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

/// A VAT code, its rate in hundredths of a percent (at most 100 %).
fn vat_code(tx: &Transaction<'_>, v: &catalogue::VatCode) -> Result<(), DomainError> {
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

/// An activity, on a loaded season and VAT code.
fn activity(tx: &Transaction<'_>, a: &catalogue::Activity) -> Result<(), DomainError> {
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

/// A logical configuration, on a loaded configuration; its state is set on first load only.
fn logical_configuration(
    tx: &Transaction<'_>,
    l: &catalogue::LogicalConfiguration,
) -> Result<(), DomainError> {
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
    // Sent whole: its seat ranges follow it and are all it has.
    tx.prepare_cached("DELETE FROM logical_seat WHERE logical_configuration = ?1")?
        .execute([l.id.get()])?;
    Ok(())
}

/// A logical seat category, of a loaded logical configuration and seat category.
fn logical_seat_category(
    tx: &Transaction<'_>,
    l: &catalogue::LogicalSeatCategory,
) -> Result<(), DomainError> {
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

/// A performance, on a loaded activity and configuration, whose logical configuration is on the same configuration.
fn performance(tx: &Transaction<'_>, p: &catalogue::Performance) -> Result<(), DomainError> {
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

/// A rate table; its state is set on first load only.
fn rate_table(tx: &Transaction<'_>, r: &catalogue::RateTable) -> Result<(), DomainError> {
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

/// A price's amount: 0 (an invitation) to [`crate::money::AMOUNT_MAX`]
/// minor units; `who` names the price in the refusal.
pub(super) fn price_amount(amount: i64, who: impl Fn() -> String) -> Result<(), DomainError> {
    if (0..=crate::money::AMOUNT_MAX).contains(&amount) {
        return Ok(());
    }
    Err(DomainError::Invalid {
        object: who(),
        problem: format!(
            "expected an amount from 0 to {} minor units, found {amount}",
            crate::money::AMOUNT_MAX
        ),
    })
}

/// A price cell of a loaded rate table, seat category, tariff type and audience subcategory.
fn price(tx: &Transaction<'_>, p: &catalogue::Price) -> Result<(), DomainError> {
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
    price_amount(p.amount, who)?;
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

/// A product, of a loaded activity and rate table; its state is set on first load only.
fn product(tx: &Transaction<'_>, p: &catalogue::Product) -> Result<(), DomainError> {
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

/// A product's link to a loaded performance.
fn performance_ref(tx: &Transaction<'_>, r: &catalogue::PerformanceRef) -> Result<(), DomainError> {
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
