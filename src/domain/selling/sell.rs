//! The point of sale at the distributor: sells and refunds the places of a
//! contingent at the validated rate table's prices, and lists the lines.
//!
//! [`sell`] takes a [`Sale`] (local codes or ids) and returns a
//! [`SaleReceipt`], or a [`SaleRefusal`] naming why nothing was written: the
//! product selling the performance must be validated and in a sales profile,
//! the place in the contingent and free, and the rate table must price it.
//! [`refund`] takes a sale's line id and writes the REFUND line. Each change
//! records a run (`sale-sell`, `sale-refund`) in the caller's transaction;
//! [`log_refusal`] records a refused attempt in a failed run. The lines,
//! listed for people, are in `lines`.

use std::fmt;

use rusqlite::{Connection, OptionalExtension, Transaction};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::lines::view_of;
use crate::domain::DomainError;
use crate::format::sales::OrderRef;
use crate::money::{Currency, Money};
use crate::store::runs::{self, Counts, Level, RunStatus};

/// Where the sold ticket sits, as the point of sale names it (local codes or
/// ids).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Seat {
        /// The block's code or id.
        block: String,
        row: String,
        number: String,
    },
    Zone {
        /// The zone's code or id.
        zone: String,
    },
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::Seat { block, row, number } => write!(f, "seat {block}:{row}:{number}"),
            Place::Zone { zone } => write!(f, "zone {zone}"),
        }
    }
}

/// A sale at the point of sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sale {
    /// The local performance's id or code.
    pub performance: String,
    pub place: Place,
    /// The local tariff type's code (or id).
    pub tariff: String,
    /// The local audience subcategory's code (or id).
    pub audience: String,
    /// The order the ticket belongs to; `None`: a new order `T-<line id>`.
    pub order: Option<OrderRef>,
}

/// A line written: a sale or a refund.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SaleReceipt {
    pub line: i64,
    pub operation: &'static str,
    pub run: i64,
    pub order: String,
    pub time: String,
    pub performance: String,
    pub product: String,
    /// `PARTERRE A 1` or `FOSSE`.
    pub place: String,
    pub seat_category: String,
    /// The seat's logical seat category (its code) when its logical
    /// configuration gives it one: the category it was priced in.
    pub logical_seat_category: Option<String>,
    pub tariff: String,
    pub audience: String,
    /// Minor units of `currency`.
    pub amount: i64,
    pub currency: String,
    /// `85.00 EUR`.
    pub price: String,
    /// For a refund: the sale line it cancels.
    pub refund_of: Option<i64>,
}

/// Why a sale or a refund was refused; nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum SaleRefusal {
    #[error(
        "unknown performance {0:?}: expected a local performance id or code (stxd catalogue list)"
    )]
    UnknownPerformance(String),
    #[error("performance {performance} cannot be sold: {reason}")]
    NotSellable { performance: String, reason: String },
    #[error(
        "performance {0} has no contingent here: the manager has not allotted seats to this link yet, or its CONTINGENT file is not imported"
    )]
    NoContingent(String),
    #[error("{place} of performance {performance}: {problem}")]
    UnknownPlace {
        performance: String,
        place: String,
        problem: String,
    },
    #[error(
        "seat {seat} is outside the contingent of performance {performance}: only the seats the manager allotted can be sold"
    )]
    SeatOutside { performance: String, seat: String },
    #[error("seat {seat} of performance {performance} is already sold (line {line})")]
    SeatSold {
        performance: String,
        seat: String,
        line: i64,
    },
    #[error("zone {zone} is not in the contingent of performance {performance}")]
    ZoneOutside { performance: String, zone: String },
    #[error(
        "zone {zone} of performance {performance} is exhausted: {sold} place(s) sold of the {quantity} allotted"
    )]
    ZoneExhausted {
        performance: String,
        zone: String,
        quantity: i64,
        sold: i64,
    },
    #[error("unknown tariff type {0:?}: expected a local tariff type code (e.g. NORMAL)")]
    UnknownTariff(String),
    #[error(
        "unknown audience subcategory {0:?}: expected a local audience subcategory code (e.g. ADULT)"
    )]
    UnknownAudience(String),
    #[error(
        "no price in rate table {rate_table} for seat category {seat_category}, tariff {tariff}, audience {audience}: this combination is not sold (a seat given a logical seat category is priced by that category's prices only)"
    )]
    NoPrice {
        rate_table: String,
        seat_category: String,
        tariff: String,
        audience: String,
    },
    #[error("no sale line {0}: expected the id of a sale (stxd sale list)")]
    UnknownLine(i64),
    #[error("line {0} is a refund; only a sale can be refunded")]
    RefundOfRefund(i64),
    #[error("sale line {line} is already refunded (refund line {refund})")]
    AlreadyRefunded { line: i64, refund: i64 },
    #[error(
        "performance {performance} is {state}, not cancelled: only the tickets of a cancelled performance are refunded all at once (refund one with stxd sale refund LINE)"
    )]
    NotCancelled { performance: String, state: String },
    #[error(transparent)]
    Domain(#[from] DomainError),
}

impl From<rusqlite::Error> for SaleRefusal {
    fn from(e: rusqlite::Error) -> Self {
        SaleRefusal::Domain(DomainError::Sql(e))
    }
}

impl From<crate::store::StoreError> for SaleRefusal {
    fn from(e: crate::store::StoreError) -> Self {
        SaleRefusal::Domain(DomainError::Store(e))
    }
}

impl SaleRefusal {
    /// Stable short code, for run logs and `--json`.
    pub fn code(&self) -> &'static str {
        match self {
            SaleRefusal::UnknownPerformance(_) => "unknown-performance",
            SaleRefusal::NotSellable { .. } => "not-sellable",
            SaleRefusal::NoContingent(_) => "no-contingent",
            SaleRefusal::UnknownPlace { .. } => "unknown-place",
            SaleRefusal::SeatOutside { .. } => "seat-outside-contingent",
            SaleRefusal::SeatSold { .. } => "seat-sold",
            SaleRefusal::ZoneOutside { .. } => "zone-outside-contingent",
            SaleRefusal::ZoneExhausted { .. } => "zone-exhausted",
            SaleRefusal::UnknownTariff(_) => "unknown-tariff",
            SaleRefusal::UnknownAudience(_) => "unknown-audience",
            SaleRefusal::NoPrice { .. } => "no-price",
            SaleRefusal::UnknownLine(_) => "unknown-line",
            SaleRefusal::RefundOfRefund(_) => "refund-of-refund",
            SaleRefusal::AlreadyRefunded { .. } => "already-refunded",
            SaleRefusal::NotCancelled { .. } => "not-cancelled",
            SaleRefusal::Domain(_) => "database",
        }
    }

    /// A business refusal (as opposed to a database failure).
    pub fn is_refusal(&self) -> bool {
        !matches!(self, SaleRefusal::Domain(_))
    }
}

/// A row found by id, else by code; `configuration` limits it to one venue
/// configuration (blocks, zones).
pub(super) fn by_id_or_code(
    conn: &Connection,
    table: &str,
    key: &str,
    configuration: Option<i64>,
) -> Result<Option<(i64, String)>, rusqlite::Error> {
    let scope = if configuration.is_some() {
        "AND configuration = ?2"
    } else {
        "AND ?2 IS NULL"
    };
    if let Ok(id) = key.parse::<i64>() {
        let found = conn
            .prepare_cached(&format!(
                "SELECT id, code FROM {table} WHERE id = ?1 {scope}"
            ))?
            .query_row((id, configuration), |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if found.is_some() {
            return Ok(found);
        }
    }
    conn.prepare_cached(&format!(
        "SELECT id, code FROM {table} WHERE code = ?1 {scope} ORDER BY id LIMIT 1"
    ))?
    .query_row((key, configuration), |r| Ok((r.get(0)?, r.get(1)?)))
    .optional()
}

/// The moment of a line: now, UTC, whole seconds, RFC 3339 with `Z`.
fn line_time() -> Result<String, DomainError> {
    let now = OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    now.format(&Rfc3339).map_err(|e| DomainError::Invalid {
        object: "clock".to_owned(),
        problem: e.to_string(),
    })
}

/// The next line id (the caller holds the write lock).
fn next_line(tx: &Transaction<'_>) -> Result<i64, rusqlite::Error> {
    tx.prepare_cached("SELECT coalesce(max(id), 0) + 1 FROM sale_line")?
        .query_row([], |r| r.get(0))
}

/// The performance of a sale and what sells it: the product (validated, in a
/// sales profile) and its validated rate table.
struct Offer {
    perf: i64,
    perf_code: String,
    activity: i64,
    configuration: i64,
    logical_configuration: i64,
    product: i64,
    product_code: String,
    rate_table: i64,
    rate_code: String,
    currency: String,
}

/// The place of a sale, in the contingent and free: the seat or the zone,
/// its seat category and its label (`PARTERRE A 1` or `FOSSE`).
struct Spot {
    seat: Option<i64>,
    zone: Option<i64>,
    category: i64,
    /// The seat's logical seat category (id, code), if its logical
    /// configuration gives it one.
    logical: Option<(i64, String)>,
    label: String,
}

/// What the line costs: the local tariff type and audience (with their
/// codes), the seat category's code, the amount and the VAT code.
struct Priced {
    tariff: i64,
    tariff_code: String,
    audience: i64,
    audience_code: String,
    category_code: String,
    amount: i64,
    vat_code: i64,
    currency: Currency,
}

/// Sells one ticket on `link`'s contingent; see the module docs.
pub fn sell(tx: &Transaction<'_>, link: &str, sale: &Sale) -> Result<SaleReceipt, SaleRefusal> {
    let offer = offer(tx, &sale.performance)?;

    // Its contingent on this link.
    let snapshot: Option<i64> = tx
        .prepare_cached(
            "SELECT version FROM contingent_snapshot WHERE performance = ?1 AND link = ?2",
        )?
        .query_row((offer.perf, link), |r| r.get(0))
        .optional()?;
    if snapshot.is_none() {
        return Err(SaleRefusal::NoContingent(offer.perf_code));
    }

    // Tariff and audience.
    let Some((tariff, tariff_code)) = by_id_or_code(tx, "tariff_type", &sale.tariff, None)? else {
        return Err(SaleRefusal::UnknownTariff(sale.tariff.clone()));
    };
    let Some((audience, audience_code)) =
        by_id_or_code(tx, "audience_subcategory", &sale.audience, None)?
    else {
        return Err(SaleRefusal::UnknownAudience(sale.audience.clone()));
    };

    let spot = spot(tx, &offer, &sale.place)?;
    let category_code: String = tx
        .prepare_cached("SELECT code FROM seat_category WHERE id = ?1")?
        .query_row([spot.category], |r| r.get(0))?;

    // The price, from the validated rate table: of the seat's logical seat
    // category when it has one (the priced one), else of its physical one.
    let amount: Option<i64> = match &spot.logical {
        Some((logical, _)) => tx
            .prepare_cached(
                "SELECT amount FROM logical_price WHERE rate_table = ?1
                   AND logical_seat_category = ?2 AND tariff_type = ?3
                   AND audience_subcategory = ?4",
            )?
            .query_row((offer.rate_table, logical, tariff, audience), |r| r.get(0))
            .optional()?,
        None => tx
            .prepare_cached(
                "SELECT amount FROM price WHERE rate_table = ?1 AND seat_category = ?2
                   AND tariff_type = ?3 AND audience_subcategory = ?4",
            )?
            .query_row((offer.rate_table, spot.category, tariff, audience), |r| {
                r.get(0)
            })
            .optional()?,
    };
    let Some(amount) = amount else {
        return Err(SaleRefusal::NoPrice {
            rate_table: offer.rate_code,
            seat_category: match &spot.logical {
                Some((_, code)) => format!("{category_code} (logical seat category {code})"),
                None => category_code,
            },
            tariff: tariff_code,
            audience: audience_code,
        });
    };
    let vat_code: i64 = tx
        .prepare_cached("SELECT vat_code FROM activity WHERE id = ?1")?
        .query_row([offer.activity], |r| r.get(0))?;
    let currency = Currency::new(&offer.currency).map_err(|e| DomainError::Invalid {
        object: format!("rate table {}", offer.rate_code),
        problem: e.to_string(),
    })?;
    let priced = Priced {
        tariff,
        tariff_code,
        audience,
        audience_code,
        category_code,
        amount,
        vat_code,
        currency,
    };
    write_sale(tx, link, sale.order.as_ref(), offer, spot, priced)
}

/// The performance a sale names (id or code), in operation, and the first
/// of its products that is sellable, with its rate table, validated.
fn offer(tx: &Transaction<'_>, key: &str) -> Result<Offer, SaleRefusal> {
    // The performance.
    let Some((perf, perf_code)) = by_id_or_code(tx, "performance", key, None)? else {
        return Err(SaleRefusal::UnknownPerformance(key.to_owned()));
    };
    let (activity, configuration, logical_configuration, state): (i64, i64, i64, String) = tx
        .prepare_cached(
            "SELECT activity, configuration, logical_configuration, state FROM performance
             WHERE id = ?1",
        )?
        .query_row([perf], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    let not_sellable = |reason: String| SaleRefusal::NotSellable {
        performance: perf_code.clone(),
        reason,
    };
    if state != "in_operation" {
        return Err(not_sellable(format!(
            "it is {state}, expected in_operation"
        )));
    }
    // The manager refuses a sale made at or after the start
    // (`performance-started`): the point of sale does not make one.
    if let Some(window) = crate::domain::lifecycle::SaleWindow::load(tx, perf)?
        && window.started_by(OffsetDateTime::now_utc())
    {
        return Err(not_sellable(format!(
            "it started at {}; a performance is sold until its start",
            window.start()
        )));
    }

    // The product selling it: validated and in a sales profile.
    let products: Vec<(i64, String, String)> = tx
        .prepare_cached(
            "SELECT p.id, p.code, p.state FROM product p
               JOIN product_performance pp ON pp.product = p.id
             WHERE pp.performance = ?1 ORDER BY p.id",
        )?
        .query_map([perf], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    // The first product that sells it (validated, in a sales profile, its
    // link to the performance and the performance's logical configuration
    // validated); else why the first one does not.
    let mut product = None;
    let mut first_reason = None;
    for (id, code, _) in &products {
        match crate::domain::catalogue::not_sellable(tx, *id, perf)? {
            None => {
                product = Some((*id, code.clone()));
                break;
            }
            Some(reason) => {
                first_reason.get_or_insert(reason);
            }
        }
    }
    let Some((product, product_code)) = product else {
        let reason = first_reason
            .unwrap_or_else(|| "no product sells it; import the manager's catalogue".to_owned());
        return Err(not_sellable(reason));
    };
    let (rate_table, rate_code, rate_state, currency): (i64, String, String, String) = tx
        .prepare_cached(
            "SELECT r.id, r.code, r.state, r.currency FROM product p
               JOIN rate_table r ON r.id = p.rate_table WHERE p.id = ?1",
        )?
        .query_row([product], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
    if rate_state != "validated" {
        return Err(not_sellable(format!(
            "rate table {rate_code} is {rate_state}, not validated: run stxd catalogue validate"
        )));
    }
    Ok(Offer {
        perf,
        perf_code,
        activity,
        configuration,
        logical_configuration,
        product,
        product_code,
        rate_table,
        rate_code,
        currency,
    })
}

/// The place of a sale: in the performance's venue configuration, in its
/// contingent and free.
fn spot(tx: &Transaction<'_>, offer: &Offer, place: &Place) -> Result<Spot, SaleRefusal> {
    let perf = offer.perf;
    let configuration = offer.configuration;
    let perf_code = offer.perf_code.clone();
    // The place: in the contingent, free.
    let unknown = |problem: String| SaleRefusal::UnknownPlace {
        performance: perf_code.clone(),
        place: place.to_string(),
        problem,
    };
    let (seat, zone, category, label) = match place {
        Place::Seat { block, row, number } => {
            let Some((block_id, block_code)) =
                by_id_or_code(tx, "block", block, Some(configuration))?
            else {
                return Err(unknown(format!(
                    "no block {block:?} in the performance's venue configuration"
                )));
            };
            let found: Option<(i64, i64)> = tx
                .prepare_cached(
                    "SELECT s.id, s.seat_category FROM seat s JOIN seat_row r ON r.id = s.row
                     WHERE r.block = ?1 AND r.code = ?2 AND s.number = ?3",
                )?
                .query_row((block_id, row.as_str(), number.as_str()), |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            let Some((seat_id, category)) = found else {
                return Err(unknown(format!(
                    "block {block_code} has no seat {number} in row {row}"
                )));
            };
            let label = format!("{block_code} {row} {number}");
            let sold: Option<i64> = tx
                .prepare_cached(
                    "SELECT id FROM sale_line WHERE performance = ?1 AND seat = ?2 AND active = 1",
                )?
                .query_row((perf, seat_id), |r| r.get(0))
                .optional()?;
            if let Some(line) = sold {
                return Err(SaleRefusal::SeatSold {
                    performance: perf_code,
                    seat: label,
                    line,
                });
            }
            let allotted = tx
                .prepare_cached(
                    "SELECT 1 FROM contingent_seat WHERE performance = ?1 AND seat = ?2",
                )?
                .exists((perf, seat_id))?;
            if !allotted {
                return Err(SaleRefusal::SeatOutside {
                    performance: perf_code,
                    seat: label,
                });
            }
            (Some(seat_id), None, category, label)
        }
        Place::Zone { zone } => {
            let Some((zone_id, zone_code)) = by_id_or_code(tx, "zone", zone, Some(configuration))?
            else {
                return Err(unknown(format!(
                    "no zone {zone:?} in the performance's venue configuration"
                )));
            };
            let category: i64 = tx
                .prepare_cached("SELECT seat_category FROM zone WHERE id = ?1")?
                .query_row([zone_id], |r| r.get(0))?;
            let quantity: Option<i64> = tx
                .prepare_cached(
                    "SELECT quantity FROM contingent_zone WHERE performance = ?1 AND zone = ?2",
                )?
                .query_row((perf, zone_id), |r| r.get(0))
                .optional()?;
            let Some(quantity) = quantity else {
                return Err(SaleRefusal::ZoneOutside {
                    performance: perf_code,
                    zone: zone_code,
                });
            };
            let sold: i64 = tx
                .prepare_cached(
                    "SELECT count(*) FROM sale_line WHERE performance = ?1 AND zone = ?2 AND active = 1",
                )?
                .query_row((perf, zone_id), |r| r.get(0))?;
            if sold >= quantity {
                return Err(SaleRefusal::ZoneExhausted {
                    performance: perf_code,
                    zone: zone_code,
                    quantity,
                    sold,
                });
            }
            (None, Some(zone_id), category, zone_code)
        }
    };
    let logical = match seat {
        Some(seat) => logical_of(tx, offer.logical_configuration, seat)?,
        None => None,
    };
    Ok(Spot {
        seat,
        zone,
        category,
        logical,
        label,
    })
}

/// The logical seat category (id, code) `logical_configuration` gives
/// `seat`, if any: one lookup by primary key.
fn logical_of(
    tx: &Transaction<'_>,
    logical_configuration: i64,
    seat: i64,
) -> Result<Option<(i64, String)>, rusqlite::Error> {
    tx.prepare_cached(
        "SELECT c.id, c.code FROM logical_seat s
           JOIN logical_seat_category c ON c.id = s.logical_seat_category
          WHERE s.logical_configuration = ?1 AND s.seat = ?2",
    )?
    .query_row((logical_configuration, seat), |r| {
        Ok((r.get(0)?, r.get(1)?))
    })
    .optional()
}

/// Writes the sale line and its run (`sale-sell`) and returns the receipt;
/// a seat sold meanwhile (the partial unique index) is refused.
fn write_sale(
    tx: &Transaction<'_>,
    link: &str,
    order: Option<&OrderRef>,
    offer: Offer,
    spot: Spot,
    priced: Priced,
) -> Result<SaleReceipt, SaleRefusal> {
    let Offer {
        perf,
        perf_code,
        product,
        product_code,
        currency,
        ..
    } = offer;
    let Spot {
        seat,
        zone,
        category,
        logical,
        label: place_label,
    } = spot;
    let (logical_id, logical_code) = logical.unzip();
    let Priced {
        tariff,
        tariff_code,
        audience,
        audience_code,
        category_code,
        amount,
        vat_code,
        currency: currency_checked,
    } = priced;
    // Write the line, with its run.
    let line = next_line(tx)?;
    let order = match order {
        Some(o) => o.as_str().to_owned(),
        None => format!("T-{line:06}"),
    };
    let time = line_time()?;
    let run = runs::start(tx, "sale-sell", Some(link), None)?;
    let inserted = tx
        .prepare_cached(
            "INSERT INTO sale_line (id, link, operation, time, order_ref, refund_of, product,
                 performance, seat, zone, seat_category, tariff_type, audience_subcategory,
                 amount, currency, vat_code, active, exported_in, rate_version,
                 logical_seat_category)
             VALUES (?1, ?2, 'SALE', ?3, ?4, NULL, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 1, NULL,
                 (SELECT r.version FROM product p JOIN rate_table r ON r.id = p.rate_table
                  WHERE p.id = ?5), ?15)",
        )?
        .execute(rusqlite::params![
            line, link, time, order, product, perf, seat, zone, category, tariff, audience, amount,
            currency, vat_code, logical_id
        ]);
    if let Err(e) = inserted {
        // The partial unique index: a seat has one active sale.
        if let (Some(seat_id), rusqlite::Error::SqliteFailure(f, _)) = (seat, &e)
            && f.code == rusqlite::ErrorCode::ConstraintViolation
        {
            let other: i64 = tx
                .prepare_cached(
                    "SELECT id FROM sale_line WHERE performance = ?1 AND seat = ?2 AND active = 1",
                )?
                .query_row((perf, seat_id), |r| r.get(0))?;
            return Err(SaleRefusal::SeatSold {
                performance: perf_code,
                seat: place_label,
                line: other,
            });
        }
        return Err(e.into());
    }
    let price = Money {
        minor: amount,
        currency: currency_checked,
    };
    runs::message(
        tx,
        run,
        Level::Info,
        "sold",
        Some(&format!("line {line}")),
        &format!(
            "performance {perf_code}, {place_label} ({category_code}{}), {tariff_code} {audience_code}: {price}, order {order}",
            logical_code
                .as_ref()
                .map(|c| format!(", logical {c}"))
                .unwrap_or_default()
        ),
    )?;
    runs::finish(tx, run, RunStatus::Ok, Counts::ONE_OK)?;
    Ok(SaleReceipt {
        line,
        operation: "SALE",
        run,
        order,
        time,
        performance: perf_code,
        product: product_code,
        place: place_label,
        seat_category: category_code,
        logical_seat_category: logical_code,
        tariff: tariff_code,
        audience: audience_code,
        amount,
        currency,
        price: price.to_string(),
        refund_of: None,
    })
}

/// Refunds a sale: a REFUND line repeating it, and the sale made inactive
/// (its seat or zone place is sellable again while the contingent holds it).
pub fn refund(tx: &Transaction<'_>, line_id: i64) -> Result<SaleReceipt, SaleRefusal> {
    let found: Option<(String, String, i64)> = tx
        .prepare_cached("SELECT link, operation, active FROM sale_line WHERE id = ?1")?
        .query_row([line_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let Some((link, operation, active)) = found else {
        return Err(SaleRefusal::UnknownLine(line_id));
    };
    if operation != "SALE" {
        return Err(SaleRefusal::RefundOfRefund(line_id));
    }
    if active == 0 {
        let refund: i64 = tx
            .prepare_cached("SELECT id FROM sale_line WHERE refund_of = ?1")?
            .query_row([line_id], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        return Err(SaleRefusal::AlreadyRefunded {
            line: line_id,
            refund,
        });
    }
    let line = next_line(tx)?;
    let time = line_time()?;
    let run = runs::start(tx, "sale-refund", Some(&link), None)?;
    tx.prepare_cached(
        "INSERT INTO sale_line (id, link, operation, time, order_ref, refund_of, product,
             performance, seat, zone, seat_category, tariff_type, audience_subcategory,
             amount, currency, vat_code, active, exported_in, rate_version,
             logical_seat_category)
         SELECT ?1, link, 'REFUND', ?2, order_ref, id, product, performance, seat, zone,
             seat_category, tariff_type, audience_subcategory, amount, currency, vat_code, 0, NULL,
             rate_version, logical_seat_category
         FROM sale_line WHERE id = ?3",
    )?
    .execute((line, &time, line_id))?;
    tx.prepare_cached("UPDATE sale_line SET active = 0 WHERE id = ?1")?
        .execute([line_id])?;
    let view = view_of(tx, line)?;
    runs::message(
        tx,
        run,
        Level::Info,
        "refunded",
        Some(&format!("line {line}")),
        &format!(
            "refund of line {line_id}: performance {}, {}: {}, order {}",
            view.performance, view.place, view.price, view.order
        ),
    )?;
    runs::finish(tx, run, RunStatus::Ok, Counts::ONE_OK)?;
    Ok(SaleReceipt {
        line,
        operation: "REFUND",
        run,
        order: view.order,
        time,
        performance: view.performance,
        product: view.product,
        place: view.place,
        seat_category: view.seat_category,
        logical_seat_category: tx
            .prepare_cached(
                "SELECT c.code FROM sale_line l
                   JOIN logical_seat_category c ON c.id = l.logical_seat_category
                  WHERE l.id = ?1",
            )?
            .query_row([line], |r| r.get(0))
            .optional()?,
        tariff: view.tariff,
        audience: view.audience,
        amount: view.amount,
        currency: view.currency,
        price: view.price,
        refund_of: Some(line_id),
    })
}

/// Records a refused sale or refund in a failed run (in the caller's own
/// transaction: the refused one wrote nothing).
pub fn log_refusal(
    tx: &Transaction<'_>,
    kind: &str,
    link: Option<&str>,
    what: &str,
    refusal: &SaleRefusal,
) -> Result<i64, DomainError> {
    let text = refusal.to_string();
    Ok(runs::failed(
        tx,
        kind,
        link,
        None,
        refusal.code(),
        Some(what),
        &text,
    )?)
}
