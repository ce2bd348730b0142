//! Contingents and selling at the distributor: the seats the manager set
//! aside become sellable, the point of sale sells and refunds them at the
//! validated rate table's prices, and the lines go back to the manager.
//!
//! Three parts, each over the caller's transaction (never reading files or
//! config, never committing):
//!
//! - [`ContingentImport`]: the CONTINGENT file's lines, pushed one at a time
//!   by the inbound pipeline. Each performance's snapshot replaces the one
//!   applied before, unless it is not newer (then it is ignored and logged,
//!   `older-snapshot`). A seat the snapshot takes back but that is sold here
//!   stays sold, only no longer sellable; a zone whose new quantity is below
//!   its sales keeps them (both reported, `kept-sold`).
//! - [`sell`], [`refund`], [`list`]: the point of sale. A sale is refused,
//!   with a [`SaleRefusal`] naming the reason, unless the product selling the
//!   performance is validated and in a sales profile, the place is in the
//!   contingent and free, and the rate table has a price for it. Each change
//!   records a run (`sale-sell`, `sale-refund`) in the same transaction;
//!   [`log_refusal`] records a refused attempt in a failed run.
//! - [`export_sales`]: every line not yet sent, translated to the manager's
//!   ids through the mapping table (reverse lookups, [`manager_id_of`]), then
//!   one ACK per contingent snapshot applied; the lines are marked with the
//!   file's sequence.

use std::fmt;

use rusqlite::{Connection, OptionalExtension, Transaction};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::DomainError;
use super::export::{ExportError, Report};
use super::import::Context;
use super::mapping::{self, Resolved};
use crate::format::sales::{self, OrderRef};
use crate::format::{WriteError, contingent};
use crate::ident::{Code, TechId};
use crate::money::{Currency, Money};
use crate::store::mapping::MappingKind;
use crate::store::runs::{self, Counts, Level, RunStatus};

/// Most seat labels quoted in one `kept-sold` message (the count is exact).
const MAX_LABELS: usize = 20;

// ------------------------------------------------------------ contingents

/// What a CONTINGENT file did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContingentOutcome {
    /// Snapshots applied: manager performance and version.
    pub applied: Vec<(TechId, u64)>,
    /// Snapshots not newer than the one applied: manager performance, the
    /// file's version, the version already applied.
    pub ignored: Vec<(TechId, u64, u64)>,
    /// Places sold here that the applied snapshots no longer hold (seats
    /// taken back, zone places above the new quantity): they stay sold.
    pub kept_sold: u64,
}

/// The snapshot being read.
#[derive(Debug)]
enum Group {
    Apply {
        manager: TechId,
        local: i64,
        version: u64,
        seats: u64,
        places: u64,
    },
    /// Older than the one applied, or of an ignored performance: its lines
    /// are read and dropped.
    Skip(TechId),
}

/// Applies a CONTINGENT file's snapshots, one line at a time.
pub struct ContingentImport<'t> {
    tx: &'t Transaction<'t>,
    ctx: Context<'t>,
    link: &'t str,
    open: Option<Group>,
    outcome: ContingentOutcome,
}

impl<'t> ContingentImport<'t> {
    pub fn new(tx: &'t Transaction<'t>, ctx: Context<'t>, link: &'t str) -> Self {
        ContingentImport {
            tx,
            ctx,
            link,
            open: None,
            outcome: ContingentOutcome::default(),
        }
    }

    pub fn item(&mut self, line: &contingent::Line) -> Result<(), DomainError> {
        match line {
            contingent::Line::Performance {
                performance,
                version,
            } => {
                self.close()?;
                self.open = Some(self.start(*performance, *version)?);
                Ok(())
            }
            contingent::Line::Seat {
                performance,
                block,
                row,
                seat,
                seat_category,
                ..
            } => {
                let local = match self.group(*performance)? {
                    None => return Ok(()),
                    Some(l) => l,
                };
                let (seat_id, category) = self.local_seat(*block, row, seat)?;
                self.check_category(
                    *seat_category,
                    category,
                    &format!("seat {block} {row} {seat}"),
                )?;
                let n = self
                    .tx
                    .prepare_cached(
                        "INSERT INTO contingent_seat (performance, seat) VALUES (?1, ?2)
                         ON CONFLICT DO NOTHING",
                    )?
                    .execute((local, seat_id))?;
                if n == 0 {
                    return Err(DomainError::Invalid {
                        object: format!("{}: seat {block} {row} {seat}", self.ctx.file),
                        problem: format!(
                            "another seat of performance {performance}'s snapshot maps to the same local seat {seat_id}; check the block and row mappings"
                        ),
                    });
                }
                if let Some(Group::Apply { seats, .. }) = &mut self.open {
                    *seats += 1;
                }
                Ok(())
            }
            contingent::Line::Zone {
                performance,
                zone,
                quantity,
                seat_category,
                ..
            } => {
                let local = match self.group(*performance)? {
                    None => return Ok(()),
                    Some(l) => l,
                };
                let object = format!("{}: zone {zone}", self.ctx.file);
                let zone_id = match mapping::lookup(
                    self.tx,
                    self.ctx.manager,
                    MappingKind::Zone,
                    *zone,
                )? {
                    Some(Resolved::Local(id)) => id,
                    _ => {
                        return Err(DomainError::Invalid {
                            object,
                            problem: format!(
                                "zone {zone} is not mapped: import the seat plan first (it maps zones automatically)"
                            ),
                        });
                    }
                };
                let category: i64 = self
                    .tx
                    .prepare_cached("SELECT seat_category FROM zone WHERE id = ?1")?
                    .query_row([zone_id], |r| r.get(0))?;
                self.check_category(*seat_category, category, &format!("zone {zone}"))?;
                let n = self
                    .tx
                    .prepare_cached(
                        "INSERT INTO contingent_zone (performance, zone, quantity) VALUES (?1, ?2, ?3)
                         ON CONFLICT DO NOTHING",
                    )?
                    .execute((local, zone_id, i64::from(*quantity)))?;
                if n == 0 {
                    return Err(DomainError::Invalid {
                        object,
                        problem: format!(
                            "another zone of performance {performance}'s snapshot maps to the same local zone {zone_id}; check the zone mappings"
                        ),
                    });
                }
                if let Some(Group::Apply { places, .. }) = &mut self.open {
                    *places += u64::from(*quantity);
                }
                Ok(())
            }
        }
    }

    /// Ends the last snapshot and returns what the file did.
    pub fn finish(mut self) -> Result<ContingentOutcome, DomainError> {
        self.close()?;
        Ok(std::mem::take(&mut self.outcome))
    }

    /// The local performance a SEAT/ZONE line goes to; `None` when its
    /// snapshot is skipped.
    fn group(&self, performance: TechId) -> Result<Option<i64>, DomainError> {
        match &self.open {
            Some(Group::Apply { manager, local, .. }) if *manager == performance => {
                Ok(Some(*local))
            }
            Some(Group::Skip(manager)) if *manager == performance => Ok(None),
            _ => Err(DomainError::Invalid {
                object: format!("{}: performance {performance}", self.ctx.file),
                problem: "expected its places after its PERFORMANCE line".to_owned(),
            }),
        }
    }

    /// Opens a performance's snapshot: applied (its previous places removed)
    /// or skipped.
    fn start(&mut self, performance: TechId, version: u64) -> Result<Group, DomainError> {
        let location = format!("performance {performance}");
        let local = match mapping::lookup(
            self.tx,
            self.ctx.manager,
            MappingKind::Performance,
            performance,
        )? {
            Some(Resolved::Local(id)) => id,
            Some(Resolved::Ignored) => {
                runs::message(
                    self.tx,
                    self.ctx.run,
                    Level::Warning,
                    "ignored-performance",
                    Some(&location),
                    &format!(
                        "version {version} not applied: performance {performance} is mapped as ignored (its activity is not sold here)"
                    ),
                )?;
                return Ok(Group::Skip(performance));
            }
            _ => {
                return Err(DomainError::Invalid {
                    object: format!("{}: performance {performance}", self.ctx.file),
                    problem: "this performance is not known here: import the catalogue first (it maps performances automatically)".to_owned(),
                });
            }
        };
        let version_sql = i64::try_from(version).map_err(|_| DomainError::Invalid {
            object: format!("{}: performance {performance}", self.ctx.file),
            problem: format!("version {version} is too large"),
        })?;
        let applied: Option<(i64, String)> = self
            .tx
            .prepare_cached("SELECT version, link FROM contingent_snapshot WHERE performance = ?1")?
            .query_row([local], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((applied, link)) = &applied {
            if link != self.link {
                return Err(DomainError::Invalid {
                    object: format!("{}: performance {performance}", self.ctx.file),
                    problem: format!(
                        "its contingent comes from link {link}, not {}; one performance is sold through one link",
                        self.link
                    ),
                });
            }
            if version_sql <= *applied {
                let applied = u64::try_from(*applied).unwrap_or(0);
                runs::message(
                    self.tx,
                    self.ctx.run,
                    Level::Warning,
                    "older-snapshot",
                    Some(&location),
                    &format!("version {version} ignored, version {applied} already applied"),
                )?;
                self.outcome.ignored.push((performance, version, applied));
                return Ok(Group::Skip(performance));
            }
        }
        self.tx
            .prepare_cached("DELETE FROM contingent_seat WHERE performance = ?1")?
            .execute([local])?;
        self.tx
            .prepare_cached("DELETE FROM contingent_zone WHERE performance = ?1")?
            .execute([local])?;
        self.tx
            .prepare_cached(
                "INSERT INTO contingent_snapshot (performance, link, version, applied)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (performance) DO UPDATE SET
                     version = excluded.version, applied = excluded.applied",
            )?
            .execute((local, self.link, version_sql, crate::store::now()))?;
        Ok(Group::Apply {
            manager: performance,
            local,
            version,
            seats: 0,
            places: 0,
        })
    }

    /// Ends the open snapshot: reports what it applied and the sold places
    /// it no longer holds.
    fn close(&mut self) -> Result<(), DomainError> {
        let Some(Group::Apply {
            manager,
            local,
            version,
            seats,
            places,
        }) = self.open.take()
        else {
            return Ok(());
        };
        let location = format!("performance {manager}");
        runs::message(
            self.tx,
            self.ctx.run,
            Level::Info,
            "applied",
            Some(&location),
            &format!("version {version} applied: {seats} seat(s), {places} zone place(s)"),
        )?;
        self.outcome.applied.push((manager, version));

        // Seats sold here that the snapshot no longer holds.
        let mut st = self.tx.prepare_cached(
            "SELECT b.code, r.code, s.number FROM sale_line l
               JOIN seat s ON s.id = l.seat
               JOIN seat_row r ON r.id = s.row
               JOIN block b ON b.id = r.block
             WHERE l.performance = ?1 AND l.active = 1 AND l.seat IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM contingent_seat c
                               WHERE c.performance = l.performance AND c.seat = l.seat)
             ORDER BY b.code, r.code, s.number",
        )?;
        let mut rows = st.query([local])?;
        let mut count = 0u64;
        let mut labels = Vec::new();
        while let Some(r) = rows.next()? {
            count += 1;
            if labels.len() < MAX_LABELS {
                labels.push(format!(
                    "{} {} {}",
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?
                ));
            }
        }
        drop(rows);
        if count > 0 {
            let more = if count > labels.len() as u64 {
                format!(" and {} more", count - labels.len() as u64)
            } else {
                String::new()
            };
            runs::message(
                self.tx,
                self.ctx.run,
                Level::Warning,
                "kept-sold",
                Some(&location),
                &format!(
                    "version {version} takes back {count} seat(s) sold here; they stay sold, and are no longer sellable once refunded: {}{more}",
                    labels.join(", ")
                ),
            )?;
            self.outcome.kept_sold += count;
        }

        // Zones whose new quantity is below what is sold in them.
        let mut st = self.tx.prepare_cached(
            "SELECT z.code, count(*), coalesce(cz.quantity, 0) FROM sale_line l
               JOIN zone z ON z.id = l.zone
               LEFT JOIN contingent_zone cz ON cz.performance = l.performance AND cz.zone = l.zone
             WHERE l.performance = ?1 AND l.active = 1 AND l.zone IS NOT NULL
             GROUP BY l.zone
             HAVING count(*) > coalesce(cz.quantity, 0)
             ORDER BY z.code",
        )?;
        let zones: Vec<(String, i64, i64)> = st
            .query_map([local], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        for (zone, sold, quantity) in zones {
            let excess = u64::try_from(sold - quantity).unwrap_or(0);
            runs::message(
                self.tx,
                self.ctx.run,
                Level::Warning,
                "kept-sold",
                Some(&location),
                &format!(
                    "version {version} gives zone {zone} {quantity} place(s) but {sold} are sold here; the sales stay, no place of it is sellable until refunds bring it below {quantity}"
                ),
            )?;
            self.outcome.kept_sold += excess;
        }
        Ok(())
    }

    /// The local seat of a manager seat: block through the mapping, then the
    /// row code and the seat number.
    fn local_seat(
        &self,
        block: TechId,
        row: &Code,
        seat: &Code,
    ) -> Result<(i64, i64), DomainError> {
        let object = format!("{}: seat {block} {row} {seat}", self.ctx.file);
        let block_id = match mapping::lookup(self.tx, self.ctx.manager, MappingKind::Block, block)?
        {
            Some(Resolved::Local(id)) => id,
            _ => {
                return Err(DomainError::Invalid {
                    object,
                    problem: format!(
                        "block {block} is not mapped: import the seat plan first (it maps blocks automatically)"
                    ),
                });
            }
        };
        let found: Option<(i64, i64)> = self
            .tx
            .prepare_cached(
                "SELECT s.id, s.seat_category FROM seat s JOIN seat_row r ON r.id = s.row
                 WHERE r.block = ?1 AND r.code = ?2 AND s.number = ?3",
            )?
            .query_row((block_id, row.as_str(), seat.as_str()), |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        found.ok_or_else(|| DomainError::Invalid {
            object,
            problem:
                "no such seat in the local seat plan: import the manager's latest seat plan first"
                    .to_owned(),
        })
    }

    /// A place's seat category in the file must be the one of the local
    /// place (through the mapping), else prices would be wrong.
    fn check_category(&self, manager: TechId, local: i64, what: &str) -> Result<(), DomainError> {
        if let Some(Resolved::Local(mapped)) = mapping::lookup(
            self.tx,
            self.ctx.manager,
            MappingKind::SeatCategory,
            manager,
        )? && mapped != local
        {
            return Err(DomainError::Invalid {
                object: format!("{}: {what}", self.ctx.file),
                problem: format!(
                    "expected seat category {manager} to map to the local place's category {local}, found it maps to {mapped}: import the manager's latest seat plan first, or fix the seat_category mapping"
                ),
            });
        }
        Ok(())
    }
}

// ------------------------------------------------------------ selling

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
        "no price in rate table {rate_table} for seat category {seat_category}, tariff {tariff}, audience {audience}: this combination is not sold"
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
fn by_id_or_code(
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

/// Sells one ticket on `link`'s contingent; see the module docs.
pub fn sell(tx: &Transaction<'_>, link: &str, sale: &Sale) -> Result<SaleReceipt, SaleRefusal> {
    // The performance.
    let Some((perf, perf_code)) = by_id_or_code(tx, "performance", &sale.performance, None)? else {
        return Err(SaleRefusal::UnknownPerformance(sale.performance.clone()));
    };
    let (activity, configuration, state): (i64, i64, String) = tx
        .prepare_cached("SELECT activity, configuration, state FROM performance WHERE id = ?1")?
        .query_row([perf], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let not_sellable = |reason: String| SaleRefusal::NotSellable {
        performance: perf_code.clone(),
        reason,
    };
    if state != "in_operation" {
        return Err(not_sellable(format!(
            "it is {state}, expected in_operation"
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
    let mut product = None;
    for (id, code, _) in &products {
        if super::catalogue::is_sellable(tx, *id)? {
            product = Some((*id, code.clone()));
            break;
        }
    }
    let Some((product, product_code)) = product else {
        let reason = match products.first() {
            None => "no product sells it; import the manager's catalogue".to_owned(),
            Some((_, code, state)) if state != "validated" => format!(
                "product {code} is {state}, not validated: review it and run stxd catalogue validate"
            ),
            Some((id, code, _)) => format!(
                "product {code} is in no sales profile: run stxd catalogue assign-profile {id} <PROFILE>"
            ),
        };
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

    // Its contingent on this link.
    let snapshot: Option<i64> = tx
        .prepare_cached(
            "SELECT version FROM contingent_snapshot WHERE performance = ?1 AND link = ?2",
        )?
        .query_row((perf, link), |r| r.get(0))
        .optional()?;
    if snapshot.is_none() {
        return Err(SaleRefusal::NoContingent(perf_code));
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

    // The place: in the contingent, free.
    let unknown = |problem: String| SaleRefusal::UnknownPlace {
        performance: perf_code.clone(),
        place: sale.place.to_string(),
        problem,
    };
    let (seat, zone, category, place_label) = match &sale.place {
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
    let category_code: String = tx
        .prepare_cached("SELECT code FROM seat_category WHERE id = ?1")?
        .query_row([category], |r| r.get(0))?;

    // The price, from the validated rate table.
    let amount: Option<i64> = tx
        .prepare_cached(
            "SELECT amount FROM price WHERE rate_table = ?1 AND seat_category = ?2
               AND tariff_type = ?3 AND audience_subcategory = ?4",
        )?
        .query_row((rate_table, category, tariff, audience), |r| r.get(0))
        .optional()?;
    let Some(amount) = amount else {
        return Err(SaleRefusal::NoPrice {
            rate_table: rate_code,
            seat_category: category_code,
            tariff: tariff_code,
            audience: audience_code,
        });
    };
    let vat_code: i64 = tx
        .prepare_cached("SELECT vat_code FROM activity WHERE id = ?1")?
        .query_row([activity], |r| r.get(0))?;
    let currency_checked = Currency::new(&currency).map_err(|e| DomainError::Invalid {
        object: format!("rate table {rate_code}"),
        problem: e.to_string(),
    })?;

    // Write the line, with its run.
    let line = next_line(tx)?;
    let order = match &sale.order {
        Some(o) => o.as_str().to_owned(),
        None => format!("T-{line:06}"),
    };
    let time = line_time()?;
    let run = runs::start(tx, "sale-sell", Some(link), None)?;
    let inserted = tx
        .prepare_cached(
            "INSERT INTO sale_line (id, link, operation, time, order_ref, refund_of, product,
                 performance, seat, zone, seat_category, tariff_type, audience_subcategory,
                 amount, currency, vat_code, active, exported_in)
             VALUES (?1, ?2, 'SALE', ?3, ?4, NULL, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 1, NULL)",
        )?
        .execute(rusqlite::params![
            line, link, time, order, product, perf, seat, zone, category, tariff, audience, amount,
            currency, vat_code
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
            "performance {perf_code}, {place_label} ({category_code}), {tariff_code} {audience_code}: {price}, order {order}"
        ),
    )?;
    runs::finish(
        tx,
        run,
        RunStatus::Ok,
        Counts {
            total: 1,
            ok: 1,
            rejected: 0,
        },
    )?;
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
             amount, currency, vat_code, active, exported_in)
         SELECT ?1, link, 'REFUND', ?2, order_ref, id, product, performance, seat, zone,
             seat_category, tariff_type, audience_subcategory, amount, currency, vat_code, 0, NULL
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
    runs::finish(
        tx,
        run,
        RunStatus::Ok,
        Counts {
            total: 1,
            ok: 1,
            rejected: 0,
        },
    )?;
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

/// Which lines [`list`] returns.
#[derive(Debug, Clone, Copy, Default)]
pub struct Filter<'a> {
    pub link: Option<&'a str>,
    /// A local performance's id or code.
    pub performance: Option<&'a str>,
    /// Only the lines not yet sent to the manager.
    pub unexported: bool,
}

/// A sale or refund line, with local codes, for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineView {
    pub id: i64,
    pub link: String,
    pub operation: String,
    pub time: String,
    pub order: String,
    pub refund_of: Option<i64>,
    pub product: String,
    pub performance: String,
    pub place: String,
    pub seat_category: String,
    pub tariff: String,
    pub audience: String,
    pub amount: i64,
    pub currency: String,
    pub price: String,
    pub active: bool,
    pub exported_in: Option<i64>,
}

const VIEW_SQL: &str = "SELECT l.id, l.link, l.operation, l.time, l.order_ref, l.refund_of,
        p.code, f.code,
        CASE WHEN l.seat IS NOT NULL THEN b.code || ' ' || r.code || ' ' || s.number ELSE z.code END,
        c.code, t.code, a.code, l.amount, l.currency, l.active, l.exported_in
   FROM sale_line l
   JOIN product p ON p.id = l.product
   JOIN performance f ON f.id = l.performance
   LEFT JOIN seat s ON s.id = l.seat
   LEFT JOIN seat_row r ON r.id = s.row
   LEFT JOIN block b ON b.id = r.block
   LEFT JOIN zone z ON z.id = l.zone
   JOIN seat_category c ON c.id = l.seat_category
   JOIN tariff_type t ON t.id = l.tariff_type
   JOIN audience_subcategory a ON a.id = l.audience_subcategory";

fn view_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LineView> {
    let amount: i64 = r.get(12)?;
    let currency: String = r.get(13)?;
    let price = match Currency::new(&currency) {
        Ok(c) => Money {
            minor: amount,
            currency: c,
        }
        .to_string(),
        Err(_) => format!("{amount} {currency}"),
    };
    Ok(LineView {
        id: r.get(0)?,
        link: r.get(1)?,
        operation: r.get(2)?,
        time: r.get(3)?,
        order: r.get(4)?,
        refund_of: r.get(5)?,
        product: r.get(6)?,
        performance: r.get(7)?,
        place: r.get(8)?,
        seat_category: r.get(9)?,
        tariff: r.get(10)?,
        audience: r.get(11)?,
        amount,
        currency,
        price,
        active: r.get::<_, i64>(14)? == 1,
        exported_in: r.get(15)?,
    })
}

fn view_of(conn: &Connection, line: i64) -> Result<LineView, rusqlite::Error> {
    conn.prepare_cached(&format!("{VIEW_SQL} WHERE l.id = ?1"))?
        .query_row([line], view_row)
}

/// The sale and refund lines, in line order.
pub fn list(conn: &Connection, filter: &Filter<'_>) -> Result<Vec<LineView>, DomainError> {
    let performance = match filter.performance {
        None => None,
        Some(key) => match by_id_or_code(conn, "performance", key, None)? {
            Some((id, _)) => Some(id),
            None => {
                return Err(DomainError::Invalid {
                    object: format!("performance {key:?}"),
                    problem: "expected a local performance id or code (stxd catalogue list)"
                        .to_owned(),
                });
            }
        },
    };
    let sql = format!(
        "{VIEW_SQL} WHERE (?1 IS NULL OR l.link = ?1) AND (?2 IS NULL OR l.performance = ?2)
           AND (?3 = 0 OR l.exported_in IS NULL) ORDER BY l.id"
    );
    let rows = conn
        .prepare(&sql)?
        .query_map(
            (filter.link, performance, i64::from(filter.unexported)),
            view_row,
        )?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

// ------------------------------------------------------------ sales export

/// A stored value the export cannot write.
fn bad(object: impl Into<String>, problem: impl Into<String>) -> ExportError {
    ExportError::BadData {
        object: object.into(),
        problem: problem.into(),
    }
}

/// The manager's id of a local object a line names, or a refusal naming the
/// mapping to fix.
fn manager_id(
    conn: &Connection,
    manager: &str,
    kind: MappingKind,
    local: i64,
    line: &str,
) -> Result<TechId, ExportError> {
    match mapping::manager_id_of(conn, manager, kind, local) {
        Ok(Some(id)) => Ok(id),
        Ok(None) => Err(bad(
            line,
            format!(
                "local {kind} {local} maps to no {manager} object; fill its mapping (stxd mapping list --kind {kind}) and export again"
            ),
        )),
        Err(DomainError::Invalid { object, problem }) => {
            Err(bad(format!("{line}: {object}"), problem))
        }
        Err(DomainError::Sql(e)) => Err(ExportError::Sql(e)),
        Err(DomainError::Store(e)) => Err(ExportError::Store(e)),
        Err(e) => Err(bad(line, e.to_string())),
    }
}

fn label(report: &mut Report, what: &str) {
    match report.included.iter_mut().find(|(l, _)| l == what) {
        Some((_, n)) => *n += 1,
        None => report.included.push((what.to_owned(), 1)),
    }
}

/// Emits the link's sales file: every line not yet exported, in line order,
/// in the manager's ids, then one ACK per contingent snapshot applied; marks
/// the lines `exported_in = sequence`. Nothing at all to send is refused.
pub fn export_sales(
    conn: &Connection,
    link: &str,
    manager: &str,
    sequence: u64,
    emit: &mut dyn FnMut(&sales::Line) -> Result<(), WriteError>,
) -> Result<Report, ExportError> {
    let mut report = Report::default();
    let mut st = conn.prepare(
        "SELECT l.id, l.operation, l.time, l.order_ref, l.refund_of, l.performance,
                l.seat, b.id, r.code, s.number, l.zone, l.seat_category, l.tariff_type,
                l.audience_subcategory, l.amount, l.currency, l.vat_code
           FROM sale_line l
           LEFT JOIN seat s ON s.id = l.seat
           LEFT JOIN seat_row r ON r.id = s.row
           LEFT JOIN block b ON b.id = r.block
          WHERE l.link = ?1 AND l.exported_in IS NULL
          ORDER BY l.id",
    )?;
    let mut rows = st.query([link])?;
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let object = format!("sale line {id}");
        let operation: String = r.get(1)?;
        let operation = match operation.as_str() {
            "SALE" => sales::Operation::Sale,
            "REFUND" => sales::Operation::Refund,
            other => return Err(bad(&object, format!("operation {other:?}"))),
        };
        let time_text: String = r.get(2)?;
        let time = OffsetDateTime::parse(&time_text, &Rfc3339)
            .map_err(|e| bad(&object, format!("time {time_text:?}: {e}")))?;
        let order_text: String = r.get(3)?;
        let order = OrderRef::new(&order_text)
            .ok_or_else(|| bad(&object, format!("order reference {order_text:?}")))?;
        let refund_of: Option<i64> = r.get(4)?;
        let refund_of = refund_of
            .map(|v| u64::try_from(v).map_err(|_| bad(&object, format!("refund_of {v}"))))
            .transpose()?;
        let map = |kind, local: i64| manager_id(conn, manager, kind, local, &object);
        let performance = map(MappingKind::Performance, r.get(5)?)?;
        let seat: Option<i64> = r.get(6)?;
        let place = match seat {
            Some(_) => {
                let block: i64 = r.get(7)?;
                let row: String = r.get(8)?;
                let number: String = r.get(9)?;
                sales::Place::Seat {
                    block: map(MappingKind::Block, block)?,
                    row: Code::new(&row).map_err(|e| bad(&object, e.to_string()))?,
                    seat: Code::new(&number).map_err(|e| bad(&object, e.to_string()))?,
                }
            }
            None => {
                let zone: i64 = r.get(10)?;
                sales::Place::Zone {
                    zone: map(MappingKind::Zone, zone)?,
                }
            }
        };
        let currency: String = r.get(15)?;
        let ticket = sales::Ticket {
            line: u64::try_from(id).map_err(|_| bad(&object, "negative line id"))?,
            operation,
            time,
            order,
            refund_of,
            performance,
            place,
            seat_category: map(MappingKind::SeatCategory, r.get(11)?)?,
            tariff_type: map(MappingKind::TariffType, r.get(12)?)?,
            audience_subcategory: map(MappingKind::AudienceSubcategory, r.get(13)?)?,
            amount: r.get(14)?,
            currency: Currency::new(&currency).map_err(|e| bad(&object, e.to_string()))?,
            vat_code: map(MappingKind::VatCode, r.get(16)?)?,
        };
        emit(&sales::Line::Ticket(ticket))?;
        label(
            &mut report,
            match operation {
                sales::Operation::Sale => "sales",
                sales::Operation::Refund => "refunds",
            },
        );
    }
    drop(rows);

    // Every applied version is acknowledged in every file (the manager
    // takes a repeated acknowledgement as a no-op); a file with no line is
    // written only when one of them was never sent.
    let mut st = conn.prepare(
        "SELECT performance, version, ack_sent FROM contingent_snapshot WHERE link = ?1 ORDER BY performance",
    )?;
    let snapshots: Vec<(i64, i64, Option<i64>)> = st
        .query_map([link], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let lines = !report.included.is_empty();
    let new_ack = snapshots
        .iter()
        .any(|&(_, version, sent)| sent.is_none_or(|s| s < version));
    let mut acks: Vec<(TechId, u64)> = Vec::with_capacity(snapshots.len());
    for (local, version, _) in snapshots {
        let object = format!("contingent of performance {local}");
        let performance = manager_id(conn, manager, MappingKind::Performance, local, &object)?;
        let version =
            u64::try_from(version).map_err(|_| bad(&object, format!("version {version}")))?;
        acks.push((performance, version));
    }
    // The manager's order, whatever the local ids.
    acks.sort();
    for (performance, contingent_version) in acks {
        emit(&sales::Line::Ack(sales::Ack {
            performance,
            contingent_version,
        }))?;
        label(&mut report, "acks");
    }
    if !lines && !new_ack {
        return Err(ExportError::Setup {
            code: "nothing-to-send",
            problem: format!(
                "nothing to send on link {link}: no sale or refund waiting and no contingent version to acknowledge"
            ),
            fix: "sell, refund or import a contingent first".to_owned(),
        });
    }
    let sequence = i64::try_from(sequence).map_err(|_| bad("sales file", "sequence too large"))?;
    conn.prepare_cached(
        "UPDATE sale_line SET exported_in = ?2 WHERE link = ?1 AND exported_in IS NULL",
    )?
    .execute((link, sequence))?;
    conn.prepare_cached("UPDATE contingent_snapshot SET ack_sent = version WHERE link = ?1")?
        .execute([link])?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Role, Store};

    /// A distributor store with one performance, two seats, a zone, a
    /// validated product and the mappings of a few manager objects.
    fn store(dir: &std::path::Path) -> Store {
        let mut s = Store::open(&dir.join("d.sqlite"), "TOURISM", Role::Distributor).unwrap();
        s.write(|tx| -> Result<(), DomainError> {
            tx.execute_batch(
                "INSERT INTO season VALUES (1, 'S', 'S', '2026-01-01', '2026-12-31');
                 INSERT INTO vat_code VALUES (1, 'V', 'V', 550);
                 INSERT INTO tariff_type VALUES (1, 'NORMAL', 'Normal');
                 INSERT INTO audience_subcategory VALUES (1, 'ADULT', 'Adulte');
                 INSERT INTO seat_category VALUES (1, 'PREM', 'Premiere');
                 INSERT INTO seat_category VALUES (2, 'SECONDE', 'Seconde');
                 INSERT INTO activity VALUES (1, 'A', 'A', 1, 1);
                 INSERT INTO venue VALUES (1, 'V', 'V');
                 INSERT INTO configuration VALUES (1, 1, 'C', 'C');
                 INSERT INTO block VALUES (1, 1, 'PARTERRE', 'Parterre');
                 INSERT INTO seat_row VALUES (1, 1, 'A');
                 INSERT INTO seat VALUES (1, 1, '1', 1);
                 INSERT INTO seat VALUES (2, 1, '2', 1);
                 INSERT INTO zone VALUES (1, 1, 'FOSSE', 'Fosse', 2, 150);
                 INSERT INTO logical_configuration VALUES (1, 'L', 'L', 1, 'validated');
                 INSERT INTO performance VALUES (1, 'P1', 'P1', 1, '2027-01-15T20:00:00+01:00', 1, 1, 'in_operation');
                 INSERT INTO rate_table VALUES (1, 'R', 'R', 'EUR', 'validated');
                 INSERT INTO price VALUES (1, 1, 1, 1, 8500);
                 INSERT INTO product VALUES (1, 'X', 'X', 1, 1, 'validated');
                 INSERT INTO product_performance VALUES (1, 1);
                 INSERT INTO sales_profile VALUES (8201, 'GUICHET', 'Guichet');
                 INSERT INTO sales_profile_product VALUES (8201, 1);
                 INSERT INTO mapping (manager, kind, manager_id, manager_code, manager_label,
                     local_id, status, first_seen, last_seen)
                 VALUES ('OPERA', 'performance', 1701, 'P', 'P', 1, 'filled', 'x', 'x'),
                        ('OPERA', 'block', 3301, 'B', 'B', 1, 'filled', 'x', 'x'),
                        ('OPERA', 'zone', 3201, 'Z', 'Z', 1, 'filled', 'x', 'x'),
                        ('OPERA', 'seat_category', 2001, 'C1', 'C1', 1, 'filled', 'x', 'x'),
                        ('OPERA', 'seat_category', 2002, 'C2', 'C2', 2, 'filled', 'x', 'x'),
                        ('OPERA', 'audience_subcategory', 1301, 'A', 'A', 1, 'filled', 'x', 'x'),
                        ('OPERA', 'vat_code', 1101, 'V', 'V', 1, 'filled', 'x', 'x');",
            )?;
            Ok(())
        })
        .unwrap();
        s
    }

    fn import(s: &mut Store, lines: &[contingent::Line]) -> Result<ContingentOutcome, DomainError> {
        s.write(|tx| {
            let run = runs::start(tx, "import-contingent", Some("l"), Some("f"))?;
            let ctx = Context {
                manager: "OPERA",
                file: "f",
                run,
            };
            let mut i = ContingentImport::new(tx, ctx, "l");
            for l in lines {
                i.item(l)?;
            }
            i.finish()
        })
    }

    fn id(v: i64) -> TechId {
        TechId::new(v).unwrap()
    }

    fn seat_line(version: u64, seat: &str, category: i64) -> contingent::Line {
        contingent::Line::Seat {
            performance: id(1701),
            version,
            block: id(3301),
            row: Code::new("A").unwrap(),
            seat: Code::new(seat).unwrap(),
            seat_category: id(category),
        }
    }

    fn perf_line(version: u64) -> contingent::Line {
        contingent::Line::Performance {
            performance: id(1701),
            version,
        }
    }

    #[test]
    fn reverse_lookup_finds_one_none_or_refuses_several() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        s.read(|c| -> Result<(), DomainError> {
            assert_eq!(
                mapping::manager_id_of(c, "OPERA", MappingKind::Block, 1)?,
                Some(id(3301))
            );
            assert_eq!(
                mapping::manager_id_of(c, "OPERA", MappingKind::TariffType, 1)?,
                None
            );
            assert_eq!(
                mapping::manager_id_of(c, "OTHER", MappingKind::Block, 1)?,
                None
            );
            Ok(())
        })
        .unwrap();
        s.write(|tx| -> Result<(), DomainError> {
            tx.execute_batch(
                "INSERT INTO mapping (manager, kind, manager_id, manager_code, manager_label,
                     local_id, status, first_seen, last_seen)
                 VALUES ('OPERA', 'tariff_type', 1201, 'T', 'T', 1, 'filled', 'x', 'x'),
                        ('OPERA', 'tariff_type', 1203, 'G', 'G', 1, 'filled', 'x', 'x')",
            )?;
            Ok(())
        })
        .unwrap();
        let e = s
            .read(|c| mapping::manager_id_of(c, "OPERA", MappingKind::TariffType, 1))
            .unwrap_err();
        assert!(e.to_string().contains("1201, 1203"), "{e}");
    }

    #[test]
    fn a_seat_whose_category_differs_from_the_local_plan_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        let e = import(&mut s, &[perf_line(1), seat_line(1, "1", 2002)]).unwrap_err();
        assert!(e.to_string().contains("seat category 2002"), "{e}");
        let e = import(&mut s, &[perf_line(1), seat_line(1, "9", 2001)]).unwrap_err();
        assert!(e.to_string().contains("no such seat"), "{e}");
        let o = import(&mut s, &[perf_line(1), seat_line(1, "1", 2001)]).unwrap();
        assert_eq!(o.applied, vec![(id(1701), 1)]);
    }

    #[test]
    fn an_export_with_an_unmapped_object_is_refused_and_marks_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = store(dir.path());
        import(&mut s, &[perf_line(1), seat_line(1, "1", 2001)]).unwrap();
        let sale = Sale {
            performance: "P1".into(),
            place: Place::Seat {
                block: "PARTERRE".into(),
                row: "A".into(),
                number: "1".into(),
            },
            tariff: "NORMAL".into(),
            audience: "ADULT".into(),
            order: None,
        };
        let r = s.write(|tx| sell(tx, "l", &sale)).unwrap();
        assert_eq!(
            (r.line, r.price.as_str(), r.order.as_str()),
            (1, "85.00 EUR", "T-000001")
        );
        // The tariff type is not mapped: the export cannot name it.
        let e = s
            .write(|tx| export_sales(tx, "l", "OPERA", 1, &mut |_| Ok(())))
            .unwrap_err();
        assert_eq!(e.code(), "bad-data");
        assert!(e.to_string().contains("local tariff_type 1"), "{e}");
        let unsent = s
            .read(|c| {
                list(
                    c,
                    &Filter {
                        unexported: true,
                        ..Filter::default()
                    },
                )
            })
            .unwrap();
        assert_eq!(unsent.len(), 1);
    }
}
