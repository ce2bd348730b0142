//! Reconciliation of one link: the manager's records against the
//! distributor's, read from both stores, every difference named.
//!
//! Takes two read connections (the manager's store and the distributor's,
//! each on one consistent snapshot) and the link; returns a [`Report`]: per
//! performance × physical seat category (the manager's ids, the distributor's
//! translated through its `mapping` table) the counts and amounts of both
//! sides, the pending-account balance against the distributor's active sales,
//! and two lists: [`Report::differences`] (the records disagree: someone must
//! act) and [`Report::in_flight`] (they disagree only because a file has not
//! travelled yet: lines not exported, a SALES file not yet applied, a
//! contingent version not yet applied or acknowledged). Writes nothing; never
//! reads files or config. Sale lines are compared by a merge of the two sides'
//! line ids in order, so memory holds one line at a time (plus one
//! performance's allotted seats, and the report itself).
//!
//! Codes of differences (stable): `missing-at-manager`, `file-rejected`,
//! `rejected-at-manager`, `unknown-at-distributor`, `not-marked-exported`,
//! `amount-differs`, `line-differs`, `ticket-missing`, `state-differs`,
//! `unmapped`, `seat-missing-at-distributor`, `seat-extra-at-distributor`,
//! `zone-quantity-differs`, `version-differs`, `contingent-unknown-at-manager`,
//! `pending-account-mismatch`, `pending-account-vs-tickets`. In flight:
//! `not-exported`, `not-yet-applied`, `version-not-applied`, `ack-pending`.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use super::{DomainError, mapping};
use crate::ident::TechId;

/// The reconciliation of one link.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub link: String,
    /// The manager's institution code.
    pub manager: String,
    /// The distributor's institution code (from its store).
    pub distributor: String,
    /// One per performance × physical seat category, in id order.
    pub rows: Vec<Row>,
    /// The rows summed.
    pub totals: Sides,
    /// Contingent versions per performance.
    pub versions: Vec<Versions>,
    pub pending_account: PendingAccount,
    /// The records disagree: someone must act.
    pub differences: Vec<Item>,
    /// Not differences: files still travelling.
    pub in_flight: Vec<Item>,
}

impl Report {
    /// No difference (in-flight items alone are not differences).
    pub fn is_consistent(&self) -> bool {
        self.differences.is_empty()
    }
}

/// One performance × physical seat category (the manager's).
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The manager's performance id.
    pub performance: i64,
    pub performance_code: String,
    pub start: String,
    /// The manager's physical seat category id.
    pub seat_category: i64,
    pub seat_category_code: String,
    #[serde(flatten)]
    pub sides: Sides,
}

/// Both sides' figures for a row or the totals.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sides {
    pub manager: ManagerSide,
    pub distributor: DistributorSide,
}

/// The manager's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ManagerSide {
    /// Seats allotted to the link plus zone quantity.
    pub allotted: u64,
    /// Seats and zone places taken back, waiting for the distributor's
    /// acknowledgement.
    pub awaiting_ack: u64,
    /// Seats and zone places given back to the manager unsold, once their
    /// release was acknowledged.
    pub returned: u64,
    /// Tickets booked from the link's lines (valid and cancelled).
    pub sold: u64,
    /// Tickets cancelled by a refund.
    pub refunded: u64,
    /// Sum of the valid tickets, per VAT code and currency.
    pub amounts: Vec<Amount>,
}

/// The distributor's figures.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DistributorSide {
    /// Seats of its contingent plus zone quantity.
    pub in_contingent: u64,
    /// SALE lines.
    pub sold: u64,
    /// REFUND lines.
    pub refunded: u64,
    /// Lines not yet written to a SALES file.
    pub not_exported: u64,
    /// Sum of the active sales, per VAT code and currency.
    pub amounts: Vec<Amount>,
}

/// A sum of money for one VAT code (the manager's id) and currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Amount {
    pub vat_code: i64,
    /// The manager's code of the VAT code.
    pub vat: String,
    pub currency: String,
    /// Minor units.
    pub minor: i64,
}

/// A sum of money in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sum {
    pub currency: String,
    pub minor: i64,
}

/// The pending account ("compte d'attente") of the link at the manager
/// against the distributor's sales.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PendingAccount {
    /// Sum of the link's pending-account entries at the manager.
    pub manager_balance: Vec<Sum>,
    /// Sum of the link's valid tickets at the manager.
    pub manager_valid_tickets: Vec<Sum>,
    /// Sum of the distributor's active sales.
    pub distributor_active_sales: Vec<Sum>,
    /// Sales minus refunds not yet at the manager (not exported, or in a
    /// SALES file not yet applied).
    pub in_flight: Vec<Sum>,
}

/// The contingent versions of one performance.
#[derive(Debug, Clone, Serialize)]
pub struct Versions {
    pub performance: i64,
    pub performance_code: String,
    /// At the manager: the current version, the last exported, the last
    /// acknowledged (0 when the manager has no allotment for it).
    pub version: i64,
    pub exported: i64,
    pub acknowledged: i64,
    /// The version the distributor applied, if any.
    pub applied: Option<i64>,
}

/// A difference or an in-flight item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    /// Stable kebab-case code (see the module doc).
    pub code: &'static str,
    /// The manager's performance id, when the item concerns one.
    pub performance: Option<i64>,
    /// The distributor's line id, when the item concerns one.
    pub line: Option<i64>,
    /// What differs, in words.
    pub detail: String,
}

/// Formats minor units for people: `1,234.50 EUR`, `-12.00 EUR`. Integer
/// arithmetic only.
pub fn format_amount(minor: i64, currency: &str) -> String {
    let abs = minor.unsigned_abs();
    let units = (abs / 100).to_string();
    let mut grouped = String::with_capacity(units.len() + units.len() / 3);
    for (i, c) in units.chars().enumerate() {
        if i > 0 && (units.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let sign = if minor < 0 { "-" } else { "" };
    format!("{sign}{grouped}.{:02} {currency}", abs % 100)
}

/// Formats a list of sums (`85.00 EUR + 12.00 CHF`; `0.00` when empty).
pub fn format_sums(sums: &[Sum]) -> String {
    if sums.is_empty() {
        return "0.00".to_owned();
    }
    sums.iter()
        .map(|s| format_amount(s.minor, &s.currency))
        .collect::<Vec<_>>()
        .join(" + ")
}

/// Formats amounts per VAT code (`TVA55 85.00 EUR; …`; empty when none).
pub fn format_amounts(amounts: &[Amount]) -> String {
    amounts
        .iter()
        .map(|a| format!("{} {}", a.vat, format_amount(a.minor, &a.currency)))
        .collect::<Vec<_>>()
        .join("; ")
}

type Key = (i64, i64);
type Money = BTreeMap<(i64, String), i64>;

#[derive(Default)]
struct Acc {
    m: ManagerSide,
    d: DistributorSide,
    m_amounts: Money,
    d_amounts: Money,
}

/// A distributor's line with its ids as stored (local).
struct DLine {
    id: i64,
    operation: String,
    refund_of: Option<i64>,
    performance: i64,
    seat: Option<i64>,
    zone: Option<i64>,
    seat_category: i64,
    tariff_type: i64,
    audience: i64,
    amount: i64,
    currency: String,
    vat_code: i64,
    active: bool,
    exported_in: Option<i64>,
}

/// A manager's ticket.
struct Ticket {
    id: i64,
    performance: i64,
    seat: Option<i64>,
    zone: Option<i64>,
    seat_category: i64,
    tariff_type: i64,
    audience: i64,
    amount: i64,
    currency: String,
    vat_code: i64,
    state: String,
    refund_line: Option<i64>,
}

const TICKET_COLUMNS: &str = "id, performance, seat, zone, seat_category, tariff_type, audience_subcategory, amount, currency, vat_code, state, refund_line, line";

fn ticket_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Ticket, i64)> {
    Ok((
        Ticket {
            id: r.get(0)?,
            performance: r.get(1)?,
            seat: r.get(2)?,
            zone: r.get(3)?,
            seat_category: r.get(4)?,
            tariff_type: r.get(5)?,
            audience: r.get(6)?,
            amount: r.get(7)?,
            currency: r.get(8)?,
            vat_code: r.get(9)?,
            state: r.get(10)?,
            refund_line: r.get(11)?,
        },
        r.get(12)?,
    ))
}

/// A line as the manager recorded it in `sales_line`.
struct MLine {
    operation: String,
    status: String,
    code: Option<String>,
    reason: Option<String>,
}

/// The work in progress.
struct Recon<'c> {
    m: &'c Connection,
    d: &'c Connection,
    link: &'c str,
    manager_code: &'c str,
    acc: BTreeMap<Key, Acc>,
    differences: Vec<Item>,
    in_flight: Vec<Item>,
    in_flight_money: BTreeMap<String, i64>,
    unmapped_seen: BTreeSet<(&'static str, i64)>,
}

/// Reconciles `link` between the manager's store (`manager`) and the
/// distributor's (`distributor`), whose mapping table names the manager
/// `manager_code`. Reads only; run it on read snapshots of both stores.
pub fn reconcile(
    manager: &Connection,
    distributor: &Connection,
    link: &str,
    manager_code: &str,
) -> Result<Report, DomainError> {
    let distributor_code: String = distributor
        .query_row("SELECT code FROM institution WHERE id = 1", [], |r| {
            r.get(0)
        })
        .optional()?
        .unwrap_or_default();
    let mut r = Recon {
        m: manager,
        d: distributor,
        link,
        manager_code,
        acc: BTreeMap::new(),
        differences: Vec::new(),
        in_flight: Vec::new(),
        in_flight_money: BTreeMap::new(),
        unmapped_seen: BTreeSet::new(),
    };
    r.manager_figures()?;
    let versions = r.contingents()?;
    r.lines()?;
    let pending_account = r.pending_account()?;
    let (rows, totals) = r.rows()?;
    Ok(Report {
        link: link.to_owned(),
        manager: manager_code.to_owned(),
        distributor: distributor_code,
        rows,
        totals,
        versions,
        pending_account,
        differences: r.differences,
        in_flight: r.in_flight,
    })
}

impl Recon<'_> {
    fn acc(&mut self, performance: i64, category: i64) -> &mut Acc {
        self.acc.entry((performance, category)).or_default()
    }

    fn differ(
        &mut self,
        code: &'static str,
        performance: Option<i64>,
        line: Option<i64>,
        detail: String,
    ) {
        self.differences.push(Item {
            code,
            performance,
            line,
            detail,
        });
    }

    fn fly(
        &mut self,
        code: &'static str,
        performance: Option<i64>,
        line: Option<i64>,
        detail: String,
    ) {
        self.in_flight.push(Item {
            code,
            performance,
            line,
            detail,
        });
    }

    /// The manager's counts and amounts, straight from its tables.
    fn manager_figures(&mut self) -> Result<(), DomainError> {
        let m = self.m;
        let mut st = m.prepare(
            "SELECT a.performance, s.seat_category, a.state, count(*)
             FROM allotment_seat a JOIN seat s ON s.id = a.seat
             WHERE a.link = ?1 GROUP BY 1, 2, 3",
        )?;
        let rows = st.query_map([self.link], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        for row in rows {
            let (p, c, state, n) = row?;
            let acc = self.acc(p, c);
            if state == "held" {
                acc.m.awaiting_ack += count(n);
            } else {
                acc.m.allotted += count(n);
            }
        }
        let mut st = m.prepare(
            "SELECT a.performance, z.seat_category, sum(a.quantity), sum(a.held)
             FROM allotment_zone a JOIN zone z ON z.id = a.zone
             WHERE a.link = ?1 GROUP BY 1, 2",
        )?;
        let rows = st.query_map([self.link], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        for row in rows {
            let (p, c, quantity, held) = row?;
            let acc = self.acc(p, c);
            acc.m.allotted += count(quantity);
            acc.m.awaiting_ack += count(held);
        }
        let mut st = m.prepare(
            "SELECT r.performance, coalesce(s.seat_category, z.seat_category), sum(r.quantity)
             FROM allotment_return r
             LEFT JOIN seat s ON s.id = r.seat
             LEFT JOIN zone z ON z.id = r.zone
             WHERE r.link = ?1 GROUP BY 1, 2",
        )?;
        let rows = st.query_map([self.link], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        for row in rows {
            let (p, c, n) = row?;
            self.acc(p, c).m.returned += count(n);
        }
        let mut st = m.prepare(
            "SELECT performance, seat_category, count(*), sum(state = 'cancelled')
             FROM ticket WHERE link = ?1 GROUP BY 1, 2",
        )?;
        let rows = st.query_map([self.link], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        for row in rows {
            let (p, c, sold, cancelled) = row?;
            let acc = self.acc(p, c);
            acc.m.sold += count(sold);
            acc.m.refunded += count(cancelled);
        }
        let mut st = m.prepare(
            "SELECT performance, seat_category, vat_code, currency, sum(amount)
             FROM ticket WHERE link = ?1 AND state = 'valid' GROUP BY 1, 2, 3, 4",
        )?;
        let rows = st.query_map([self.link], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, i64>(4)?,
            ))
        })?;
        for row in rows {
            let (p, c, vat, currency, sum) = row?;
            *self.acc(p, c).m_amounts.entry((vat, currency)).or_default() += sum;
        }
        Ok(())
    }

    /// The manager id a distributor's local object stands for: the one
    /// filled mapping row naming it (none, or several, is `None`).
    fn manager_id(&self, kind: &str, local: i64) -> Result<Option<i64>, DomainError> {
        let Some(kind) = crate::store::mapping::MappingKind::parse(kind) else {
            return Ok(None);
        };
        match mapping::manager_id_of(self.d, self.manager_code, kind, local) {
            Ok(found) => Ok(found.map(TechId::get)),
            // Several manager objects behind one local object: no single answer.
            Err(DomainError::Invalid { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Like [`Self::manager_id`], recording an `unmapped` difference (once
    /// per object) when there is no single manager object.
    fn translate(
        &mut self,
        kind: &'static str,
        local: i64,
        line: Option<i64>,
    ) -> Result<Option<i64>, DomainError> {
        let found = self.manager_id(kind, local)?;
        if found.is_none() && self.unmapped_seen.insert((kind, local)) {
            let what = match line {
                Some(l) => format!("line {l} names "),
                None => String::new(),
            };
            self.differ(
                "unmapped",
                None,
                line,
                format!(
                    "{what}the distributor's {kind} {local}, which no single {} object maps to (mapping table): its figures are left out",
                    self.manager_code
                ),
            );
        }
        Ok(found)
    }

    fn performance_code(&self, performance: i64) -> Result<String, DomainError> {
        Ok(self
            .m
            .prepare_cached("SELECT code FROM performance WHERE id = ?1")?
            .query_row([performance], |r| r.get(0))
            .optional()?
            .unwrap_or_else(|| format!("#{performance}")))
    }

    /// A manager seat for people: `PARTERRE A 1`.
    fn seat_label(&self, seat: i64) -> Result<String, DomainError> {
        Ok(self
            .m
            .prepare_cached(
                "SELECT b.code || ' ' || r.code || ' ' || s.number
                 FROM seat s JOIN seat_row r ON r.id = s.row JOIN block b ON b.id = r.block
                 WHERE s.id = ?1",
            )?
            .query_row([seat], |r| r.get(0))
            .optional()?
            .unwrap_or_else(|| format!("seat {seat}")))
    }

    fn seat_category_of_seat(&self, seat: i64) -> Result<Option<i64>, DomainError> {
        Ok(self
            .m
            .prepare_cached("SELECT seat_category FROM seat WHERE id = ?1")?
            .query_row([seat], |r| r.get(0))
            .optional()?)
    }

    fn seat_category_of_zone(&self, zone: i64) -> Result<Option<i64>, DomainError> {
        Ok(self
            .m
            .prepare_cached("SELECT seat_category FROM zone WHERE id = ?1")?
            .query_row([zone], |r| r.get(0))
            .optional()?)
    }

    /// Contingents: the distributor's places per row, the versions of both
    /// sides, and the places compared when both sides are at one version.
    fn contingents(&mut self) -> Result<Vec<Versions>, DomainError> {
        // manager performance → (version, exported, acknowledged)
        let mut manager: BTreeMap<i64, (i64, i64, i64)> = BTreeMap::new();
        {
            let mut st = self.m.prepare(
                "SELECT performance, version, exported, acknowledged FROM allotment WHERE link = ?1",
            )?;
            let rows = st.query_map([self.link], |r| {
                Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?)))
            })?;
            for row in rows {
                let (p, v) = row?;
                manager.insert(p, v);
            }
        }
        // manager performance → (local performance, applied version)
        let mut applied: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
        {
            let snapshots: Vec<(i64, i64)> = self
                .d
                .prepare("SELECT performance, version FROM contingent_snapshot WHERE link = ?1 ORDER BY performance")?
                .query_map([self.link], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            for (local, version) in snapshots {
                if let Some(p) = self.translate("performance", local, None)? {
                    applied.insert(p, (local, version));
                }
            }
        }
        let performances: BTreeSet<i64> = manager.keys().chain(applied.keys()).copied().collect();
        let mut versions = Vec::new();
        for p in performances {
            let code = self.performance_code(p)?;
            let (version, exported, acknowledged) = manager.get(&p).copied().unwrap_or((0, 0, 0));
            let dist = applied.get(&p).copied();
            versions.push(Versions {
                performance: p,
                performance_code: code.clone(),
                version,
                exported,
                acknowledged,
                applied: dist.map(|(_, v)| v),
            });
            let distributor_seats = match dist {
                Some((local, _)) => Some(self.distributor_places(p, local)?),
                None => None,
            };
            let Some((_, a)) = dist else {
                if version > 0 {
                    let how = if exported < version {
                        format!("version {version} not exported yet (exported: {exported})")
                    } else {
                        format!("version {version} exported, not yet applied at the distributor")
                    };
                    self.fly(
                        "version-not-applied",
                        Some(p),
                        None,
                        format!("performance {p} {code}: contingent {how}"),
                    );
                }
                continue;
            };
            if !manager.contains_key(&p) {
                self.differ(
                    "contingent-unknown-at-manager",
                    Some(p),
                    None,
                    format!("performance {p} {code}: the distributor applied contingent version {a}, the manager has no allotment for this link"),
                );
                continue;
            }
            if a > exported {
                self.differ(
                    "version-differs",
                    Some(p),
                    None,
                    format!("performance {p} {code}: the distributor applied contingent version {a}, the manager exported only version {exported} (current {version})"),
                );
                continue;
            }
            if acknowledged > a {
                self.differ(
                    "version-differs",
                    Some(p),
                    None,
                    format!("performance {p} {code}: the manager recorded the acknowledgement of version {acknowledged}, the distributor applied only version {a}"),
                );
            } else if acknowledged < a {
                self.fly(
                    "ack-pending",
                    Some(p),
                    None,
                    format!("performance {p} {code}: the distributor applied version {a}, its acknowledgement has not reached the manager (acknowledged: {acknowledged}); it travels in the next SALES file"),
                );
            }
            if a < version {
                self.fly(
                    "version-not-applied",
                    Some(p),
                    None,
                    format!("performance {p} {code}: the manager is at contingent version {version} (exported {exported}), the distributor applied version {a}: places compared once it applies it"),
                );
                continue;
            }
            if let Some((seats, zones)) = distributor_seats {
                self.compare_places(p, &code, a, &seats, &zones)?;
            }
        }
        Ok(versions)
    }

    /// The distributor's contingent places of a performance in manager ids,
    /// counted into the rows: (seats, zone → quantity).
    #[allow(clippy::type_complexity)]
    fn distributor_places(
        &mut self,
        performance: i64,
        local_performance: i64,
    ) -> Result<(BTreeSet<i64>, BTreeMap<i64, i64>), DomainError> {
        let locals: Vec<i64> = self
            .d
            .prepare("SELECT seat FROM contingent_seat WHERE performance = ?1 ORDER BY seat")?
            .query_map([local_performance], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let mut seats = BTreeSet::new();
        for local in locals {
            let Some(seat) = self.translate("seat", local, None)? else {
                continue;
            };
            seats.insert(seat);
            match self.seat_category_of_seat(seat)? {
                Some(c) => self.acc(performance, c).d.in_contingent += 1,
                None => self.differ(
                    "unmapped",
                    Some(performance),
                    None,
                    format!("the distributor's seat {local} maps to manager seat {seat}, which the manager does not have"),
                ),
            }
        }
        let zones_local: Vec<(i64, i64)> = self
            .d
            .prepare(
                "SELECT zone, quantity FROM contingent_zone WHERE performance = ?1 ORDER BY zone",
            )?
            .query_map([local_performance], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut zones = BTreeMap::new();
        for (local, quantity) in zones_local {
            let Some(zone) = self.translate("zone", local, None)? else {
                continue;
            };
            *zones.entry(zone).or_default() += quantity;
            match self.seat_category_of_zone(zone)? {
                Some(c) => self.acc(performance, c).d.in_contingent += count(quantity),
                None => self.differ(
                    "unmapped",
                    Some(performance),
                    None,
                    format!("the distributor's zone {local} maps to manager zone {zone}, which the manager does not have"),
                ),
            }
        }
        Ok((seats, zones))
    }

    /// Both sides at one version: the places must be the same.
    fn compare_places(
        &mut self,
        p: i64,
        code: &str,
        version: i64,
        distributor_seats: &BTreeSet<i64>,
        distributor_zones: &BTreeMap<i64, i64>,
    ) -> Result<(), DomainError> {
        let allotted: BTreeSet<i64> = self
            .m
            .prepare("SELECT seat FROM allotment_seat WHERE link = ?1 AND performance = ?2 AND state = 'allotted' ORDER BY seat")?
            .query_map((self.link, p), |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let missing: Vec<i64> = allotted.difference(distributor_seats).copied().collect();
        let extra: Vec<i64> = distributor_seats.difference(&allotted).copied().collect();
        if !missing.is_empty() {
            let labels = self.seat_labels(&missing)?;
            self.differ(
                "seat-missing-at-distributor",
                Some(p),
                None,
                format!("performance {p} {code}: {} seat(s) allotted at the manager are not in the distributor's contingent at version {version}: {labels}", missing.len()),
            );
        }
        if !extra.is_empty() {
            let labels = self.seat_labels(&extra)?;
            self.differ(
                "seat-extra-at-distributor",
                Some(p),
                None,
                format!("performance {p} {code}: {} seat(s) in the distributor's contingent at version {version} are not allotted to the link at the manager: {labels}", extra.len()),
            );
        }
        let zones: BTreeMap<i64, i64> = self
            .m
            .prepare(
                "SELECT zone, quantity FROM allotment_zone WHERE link = ?1 AND performance = ?2",
            )?
            .query_map((self.link, p), |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let all: BTreeSet<i64> = zones
            .keys()
            .chain(distributor_zones.keys())
            .copied()
            .collect();
        for z in all {
            let (mq, dq) = (
                zones.get(&z).copied().unwrap_or(0),
                distributor_zones.get(&z).copied().unwrap_or(0),
            );
            if mq != dq {
                self.differ(
                    "zone-quantity-differs",
                    Some(p),
                    None,
                    format!("performance {p} {code}: zone {z} has {mq} place(s) allotted at the manager, {dq} in the distributor's contingent at version {version}"),
                );
            }
        }
        Ok(())
    }

    fn seat_labels(&self, seats: &[i64]) -> Result<String, DomainError> {
        const SHOWN: usize = 10;
        let mut out = Vec::new();
        for s in seats.iter().take(SHOWN) {
            out.push(self.seat_label(*s)?);
        }
        let mut text = out.join(", ");
        if seats.len() > SHOWN {
            let _ = write!(text, " and {} more", seats.len() - SHOWN);
        }
        Ok(text)
    }

    /// The lines of both sides, merged by line id.
    fn lines(&mut self) -> Result<(), DomainError> {
        let (d, m) = (self.d, self.m);
        let mut d_st = d.prepare(
            "SELECT id, operation, refund_of, performance, seat, zone, seat_category, tariff_type,
                    audience_subcategory, amount, currency, vat_code, active, exported_in
             FROM sale_line WHERE link = ?1 ORDER BY id",
        )?;
        let mut d_rows = d_st.query_map([self.link], |r| {
            Ok(DLine {
                id: r.get(0)?,
                operation: r.get(1)?,
                refund_of: r.get(2)?,
                performance: r.get(3)?,
                seat: r.get(4)?,
                zone: r.get(5)?,
                seat_category: r.get(6)?,
                tariff_type: r.get(7)?,
                audience: r.get(8)?,
                amount: r.get(9)?,
                currency: r.get(10)?,
                vat_code: r.get(11)?,
                active: r.get::<_, i64>(12)? == 1,
                exported_in: r.get(13)?,
            })
        })?;
        let mut m_st = m.prepare(
            "SELECT line FROM sales_line WHERE link = ?1
             UNION SELECT line FROM ticket WHERE link = ?1
             UNION SELECT refund_line FROM ticket WHERE link = ?1 AND refund_line IS NOT NULL
             ORDER BY 1",
        )?;
        let mut m_rows = m_st.query_map([self.link], |r| r.get::<_, i64>(0))?;
        let mut dn = d_rows.next().transpose()?;
        let mut mn = m_rows.next().transpose()?;
        loop {
            let order = match (&dn, mn) {
                (None, None) => break,
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (Some(dl), Some(ml)) => dl.id.cmp(&ml),
            };
            if order != Ordering::Greater {
                if let Some(dl) = dn.take() {
                    self.line(&dl, order == Ordering::Equal)?;
                }
                dn = d_rows.next().transpose()?;
            }
            if order != Ordering::Less {
                if let Some(ml) = mn
                    && order == Ordering::Greater
                {
                    self.manager_only(ml)?;
                }
                mn = m_rows.next().transpose()?;
            }
        }
        Ok(())
    }

    fn sales_line(&self, line: i64) -> Result<Option<MLine>, DomainError> {
        Ok(self
            .m
            .prepare_cached("SELECT operation, status, code, reason FROM sales_line WHERE link = ?1 AND line = ?2")?
            .query_row((self.link, line), |r| {
                Ok(MLine {
                    operation: r.get(0)?,
                    status: r.get(1)?,
                    code: r.get(2)?,
                    reason: r.get(3)?,
                })
            })
            .optional()?)
    }

    fn ticket_by(&self, column: &str, line: i64) -> Result<Option<(Ticket, i64)>, DomainError> {
        let sql = format!("SELECT {TICKET_COLUMNS} FROM ticket WHERE link = ?1 AND {column} = ?2");
        Ok(self
            .m
            .prepare_cached(&sql)?
            .query_row((self.link, line), ticket_of)
            .optional()?)
    }

    /// A line id the manager knows and the distributor does not.
    fn manager_only(&mut self, line: i64) -> Result<(), DomainError> {
        let recorded = self.sales_line(line)?;
        let ticket = self.ticket_by("line", line)?;
        let what = match (&recorded, &ticket) {
            (Some(l), Some((t, _))) => format!(
                "{} line, {}, ticket {} ({})",
                l.operation, l.status, t.id, t.state
            ),
            (Some(l), None) => format!("{} line, {}", l.operation, l.status),
            (None, Some((t, _))) => format!("ticket {} ({})", t.id, t.state),
            (None, None) => match self.ticket_by("refund_line", line)? {
                Some((t, _)) => format!("refund cancelling ticket {}", t.id),
                None => "line".to_owned(),
            },
        };
        let performance = ticket.as_ref().map(|(t, _)| t.performance);
        self.differ(
            "unknown-at-distributor",
            performance,
            Some(line),
            format!("line {line}: {what} at the manager, unknown at the distributor"),
        );
        Ok(())
    }

    /// One distributor line: counted into its row, then compared.
    fn line(&mut self, dl: &DLine, manager_knows: bool) -> Result<(), DomainError> {
        let id = Some(dl.id);
        let performance = self.translate("performance", dl.performance, id)?;
        let category = self.translate("seat_category", dl.seat_category, id)?;
        let vat = self.translate("vat_code", dl.vat_code, id)?;
        if let (Some(p), Some(c)) = (performance, category) {
            let acc = self.acc(p, c);
            if dl.operation == "SALE" {
                acc.d.sold += 1;
                if dl.active
                    && let Some(v) = vat
                {
                    *acc.d_amounts.entry((v, dl.currency.clone())).or_default() += dl.amount;
                }
            } else {
                acc.d.refunded += 1;
            }
            if dl.exported_in.is_none() {
                acc.d.not_exported += 1;
            }
        }
        let signed = if dl.operation == "SALE" {
            dl.amount
        } else {
            -dl.amount
        };
        let Some(sequence) = dl.exported_in else {
            if manager_knows {
                self.differ(
                    "not-marked-exported",
                    performance,
                    id,
                    format!("line {}: known at the manager, but the distributor has not marked it exported", dl.id),
                );
            } else {
                self.fly(
                    "not-exported",
                    performance,
                    id,
                    format!("line {} ({}): not exported yet", dl.id, dl.operation),
                );
                *self.in_flight_money.entry(dl.currency.clone()).or_default() += signed;
            }
            return Ok(());
        };
        let recorded = self.sales_line(dl.id)?;
        if let Some(l) = &recorded
            && l.status == "rejected"
        {
            let code = l.code.as_deref().unwrap_or("rejected");
            let reason = l.reason.as_deref().unwrap_or("no reason recorded");
            self.differ(
                "rejected-at-manager",
                performance,
                id,
                format!("line {} ({}, SALES file {sequence}): rejected at the manager: {code}: {reason}", dl.id, dl.operation),
            );
            return Ok(());
        }
        if dl.operation == "SALE" {
            match self.ticket_by("line", dl.id)? {
                Some((t, _)) => self.compare_sale(dl, &t, recorded.as_ref())?,
                None if recorded.is_some() => self.differ(
                    "ticket-missing",
                    performance,
                    id,
                    format!(
                        "line {} (SALE): recorded as booked at the manager, but it has no ticket",
                        dl.id
                    ),
                ),
                None => self.not_at_manager(dl, sequence, performance, signed)?,
            }
        } else {
            match self.ticket_by("refund_line", dl.id)? {
                Some((t, sale_line)) => self.compare_refund(dl, &t, sale_line, recorded.as_ref())?,
                None if recorded.is_some() => self.differ(
                    "ticket-missing",
                    performance,
                    id,
                    format!("line {} (REFUND): recorded as booked at the manager, but no ticket was cancelled by it", dl.id),
                ),
                None => self.not_at_manager(dl, sequence, performance, signed)?,
            }
        }
        Ok(())
    }

    /// An exported line the manager has not recorded: in flight while its
    /// SALES file has not been applied there.
    fn not_at_manager(
        &mut self,
        dl: &DLine,
        sequence: i64,
        performance: Option<i64>,
        signed: i64,
    ) -> Result<(), DomainError> {
        let state: Option<String> = self
            .m
            .prepare_cached(
                "SELECT state FROM file_journal WHERE link = ?1 AND kind = 'SALES' AND direction = 'in' AND sequence = ?2",
            )?
            .query_row((self.link, sequence), |r| r.get(0))
            .optional()?;
        let id = Some(dl.id);
        match state.as_deref() {
            Some("applied") => self.differ(
                "missing-at-manager",
                performance,
                id,
                format!("line {} ({}): exported in SALES file {sequence}, which the manager applied, but the manager has no record of the line", dl.id, dl.operation),
            ),
            Some("rejected") => self.differ(
                "file-rejected",
                performance,
                id,
                format!("line {} ({}): exported in SALES file {sequence}, which the manager rejected whole (see its error/ reason file): send it again", dl.id, dl.operation),
            ),
            other => {
                let how = match other {
                    Some(s) => format!("{s} at the manager"),
                    None => "not yet received by the manager".to_owned(),
                };
                self.fly(
                    "not-yet-applied",
                    performance,
                    id,
                    format!("line {} ({}): exported in SALES file {sequence}, {how}", dl.id, dl.operation),
                );
                *self.in_flight_money.entry(dl.currency.clone()).or_default() += signed;
            }
        }
        Ok(())
    }

    /// The fields of a distributor line, in manager ids, against a ticket.
    fn field_differences(&mut self, dl: &DLine, t: &Ticket) -> Result<Vec<String>, DomainError> {
        let mut out = Vec::new();
        let mut check = |what: &str, dist: Option<i64>, man: Option<i64>| {
            if dist != man {
                let show = |v: Option<i64>| v.map_or_else(|| "none".to_owned(), |v| v.to_string());
                out.push(format!(
                    "{what} {} at the distributor, {} at the manager",
                    show(dist),
                    show(man)
                ));
            }
        };
        let id = Some(dl.id);
        let performance = self.manager_id("performance", dl.performance)?;
        check("performance", performance, Some(t.performance));
        let seat = match dl.seat {
            Some(s) => self.translate("seat", s, id)?,
            None => None,
        };
        check("seat", seat, t.seat);
        let zone = match dl.zone {
            Some(z) => self.translate("zone", z, id)?,
            None => None,
        };
        check("zone", zone, t.zone);
        let category = self.manager_id("seat_category", dl.seat_category)?;
        check("seat category", category, Some(t.seat_category));
        let tariff = self.translate("tariff_type", dl.tariff_type, id)?;
        check("tariff type", tariff, Some(t.tariff_type));
        let audience = self.translate("audience_subcategory", dl.audience, id)?;
        check("audience subcategory", audience, Some(t.audience));
        let vat = self.manager_id("vat_code", dl.vat_code)?;
        check("VAT code", vat, Some(t.vat_code));
        Ok(out)
    }

    fn amount_differs(&mut self, dl: &DLine, t: &Ticket, performance: Option<i64>) {
        if dl.amount != t.amount || dl.currency != t.currency {
            self.differ(
                "amount-differs",
                performance,
                Some(dl.id),
                format!(
                    "line {} ({}): {} at the distributor, {} at the manager (ticket {})",
                    dl.id,
                    dl.operation,
                    format_amount(dl.amount, &dl.currency),
                    format_amount(t.amount, &t.currency),
                    t.id
                ),
            );
        }
    }

    fn compare_sale(
        &mut self,
        dl: &DLine,
        t: &Ticket,
        recorded: Option<&MLine>,
    ) -> Result<(), DomainError> {
        let p = Some(t.performance);
        if let Some(l) = recorded
            && l.operation != "SALE"
        {
            self.differ(
                "line-differs",
                p,
                Some(dl.id),
                format!(
                    "line {}: a SALE at the distributor, a {} at the manager",
                    dl.id, l.operation
                ),
            );
        }
        let fields = self.field_differences(dl, t)?;
        if !fields.is_empty() {
            self.differ(
                "line-differs",
                p,
                Some(dl.id),
                format!(
                    "line {} (SALE, ticket {}): {}",
                    dl.id,
                    t.id,
                    fields.join("; ")
                ),
            );
        }
        self.amount_differs(dl, t, p);
        if dl.active && t.state == "cancelled" {
            let by = t
                .refund_line
                .map_or_else(String::new, |r| format!(" by refund line {r}"));
            self.differ(
                "state-differs",
                p,
                Some(dl.id),
                format!("line {} (SALE): ticket {} is cancelled at the manager{by}, the sale is active at the distributor", dl.id, t.id),
            );
        }
        Ok(())
    }

    fn compare_refund(
        &mut self,
        dl: &DLine,
        t: &Ticket,
        sale_line: i64,
        recorded: Option<&MLine>,
    ) -> Result<(), DomainError> {
        let p = Some(t.performance);
        if let Some(l) = recorded
            && l.operation != "REFUND"
        {
            self.differ(
                "line-differs",
                p,
                Some(dl.id),
                format!(
                    "line {}: a REFUND at the distributor, a {} at the manager",
                    dl.id, l.operation
                ),
            );
        }
        if dl.refund_of != Some(sale_line) {
            let of = dl
                .refund_of
                .map_or_else(|| "none".to_owned(), |v| v.to_string());
            self.differ(
                "line-differs",
                p,
                Some(dl.id),
                format!("line {} (REFUND): refunds line {of} at the distributor, cancelled ticket {} of line {sale_line} at the manager", dl.id, t.id),
            );
        }
        self.amount_differs(dl, t, p);
        Ok(())
    }

    fn sums(&self, conn: &Connection, sql: &str) -> Result<Vec<Sum>, DomainError> {
        Ok(conn
            .prepare(sql)?
            .query_map([self.link], |r| {
                Ok(Sum {
                    currency: r.get(0)?,
                    minor: r.get(1)?,
                })
            })?
            .collect::<Result<_, _>>()?)
    }

    fn pending_account(&mut self) -> Result<PendingAccount, DomainError> {
        let balance = self.sums(
            self.m,
            "SELECT currency, sum(amount) FROM pending_account_entry WHERE link = ?1 GROUP BY 1 ORDER BY 1",
        )?;
        let tickets = self.sums(
            self.m,
            "SELECT currency, sum(amount) FROM ticket WHERE link = ?1 AND state = 'valid' GROUP BY 1 ORDER BY 1",
        )?;
        let active = self.sums(
            self.d,
            "SELECT currency, sum(amount) FROM sale_line WHERE link = ?1 AND operation = 'SALE' AND active = 1 GROUP BY 1 ORDER BY 1",
        )?;
        let in_flight: Vec<Sum> = self
            .in_flight_money
            .iter()
            .filter(|(_, v)| **v != 0)
            .map(|(c, v)| Sum {
                currency: c.clone(),
                minor: *v,
            })
            .collect();
        let get =
            |list: &[Sum], c: &str| list.iter().find(|s| s.currency == c).map_or(0, |s| s.minor);
        let currencies: BTreeSet<&str> = balance
            .iter()
            .chain(&tickets)
            .chain(&active)
            .chain(&in_flight)
            .map(|s| s.currency.as_str())
            .collect();
        let mut found = Vec::new();
        for c in currencies {
            let (b, t, a, f) = (
                get(&balance, c),
                get(&tickets, c),
                get(&active, c),
                get(&in_flight, c),
            );
            let expected = a.saturating_sub(f);
            if b != expected {
                found.push((
                    "pending-account-mismatch",
                    format!(
                        "pending account in {c}: {} at the manager, the distributor's active sales are {} of which {} not yet at the manager: expected {} (off by {})",
                        format_amount(b, c),
                        format_amount(a, c),
                        format_amount(f, c),
                        format_amount(expected, c),
                        format_amount(b.saturating_sub(expected), c)
                    ),
                ));
            }
            if b != t {
                found.push((
                    "pending-account-vs-tickets",
                    format!(
                        "pending account in {c}: {} at the manager, its valid tickets of the link sum to {}",
                        format_amount(b, c),
                        format_amount(t, c)
                    ),
                ));
            }
        }
        for (code, detail) in found {
            self.differ(code, None, None, detail);
        }
        Ok(PendingAccount {
            manager_balance: balance,
            manager_valid_tickets: tickets,
            distributor_active_sales: active,
            in_flight,
        })
    }

    /// The accumulated rows, labelled, and their totals.
    fn rows(&mut self) -> Result<(Vec<Row>, Sides), DomainError> {
        let acc = std::mem::take(&mut self.acc);
        let mut rows = Vec::with_capacity(acc.len());
        let mut totals = Sides::default();
        let mut m_total = Money::new();
        let mut d_total = Money::new();
        for ((p, c), mut a) in acc {
            let (performance_code, start): (String, String) = self
                .m
                .prepare_cached("SELECT code, start FROM performance WHERE id = ?1")?
                .query_row([p], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?
                .unwrap_or_else(|| (format!("#{p}"), String::new()));
            let seat_category_code = self.code_of("seat_category", c)?;
            for (k, v) in &a.m_amounts {
                *m_total.entry(k.clone()).or_default() += v;
            }
            for (k, v) in &a.d_amounts {
                *d_total.entry(k.clone()).or_default() += v;
            }
            a.m.amounts = self.amounts(&a.m_amounts)?;
            a.d.amounts = self.amounts(&a.d_amounts)?;
            add(&mut totals, &a);
            rows.push(Row {
                performance: p,
                performance_code,
                start,
                seat_category: c,
                seat_category_code,
                sides: Sides {
                    manager: a.m,
                    distributor: a.d,
                },
            });
        }
        totals.manager.amounts = self.amounts(&m_total)?;
        totals.distributor.amounts = self.amounts(&d_total)?;
        Ok((rows, totals))
    }

    fn code_of(&self, table: &str, id: i64) -> Result<String, DomainError> {
        let sql = format!("SELECT code FROM {table} WHERE id = ?1");
        Ok(self
            .m
            .prepare_cached(&sql)?
            .query_row([id], |r| r.get(0))
            .optional()?
            .unwrap_or_else(|| format!("#{id}")))
    }

    fn amounts(&self, money: &Money) -> Result<Vec<Amount>, DomainError> {
        let mut out = Vec::with_capacity(money.len());
        for ((vat, currency), minor) in money {
            out.push(Amount {
                vat_code: *vat,
                vat: self.code_of("vat_code", *vat)?,
                currency: currency.clone(),
                minor: *minor,
            });
        }
        Ok(out)
    }
}

fn add(totals: &mut Sides, a: &Acc) {
    let (m, d) = (&mut totals.manager, &mut totals.distributor);
    m.allotted += a.m.allotted;
    m.awaiting_ack += a.m.awaiting_ack;
    m.returned += a.m.returned;
    m.sold += a.m.sold;
    m.refunded += a.m.refunded;
    d.in_contingent += a.d.in_contingent;
    d.sold += a.d.sold;
    d.refunded += a.d.refunded;
    d.not_exported += a.d.not_exported;
}

/// A count from SQL (never negative there).
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_grouped_by_thousands() {
        assert_eq!(format_amount(0, "EUR"), "0.00 EUR");
        assert_eq!(format_amount(5, "EUR"), "0.05 EUR");
        assert_eq!(format_amount(8500, "EUR"), "85.00 EUR");
        assert_eq!(format_amount(123_450, "EUR"), "1,234.50 EUR");
        assert_eq!(format_amount(100_000_000, "EUR"), "1,000,000.00 EUR");
        assert_eq!(format_amount(-4250, "EUR"), "-42.50 EUR");
        assert_eq!(format_amount(-123_456_789, "CHF"), "-1,234,567.89 CHF");
        assert_eq!(
            format_amount(i64::MIN, "EUR"),
            "-92,233,720,368,547,758.08 EUR"
        );
    }

    #[test]
    fn sums_and_amounts_read_as_lists() {
        assert_eq!(format_sums(&[]), "0.00");
        let s = |c: &str, m| Sum {
            currency: c.into(),
            minor: m,
        };
        assert_eq!(
            format_sums(&[s("CHF", 100), s("EUR", 250)]),
            "1.00 CHF + 2.50 EUR"
        );
        let a = Amount {
            vat_code: 1101,
            vat: "TVA55".into(),
            currency: "EUR".into(),
            minor: 11_000,
        };
        assert_eq!(format_amounts(&[a]), "TVA55 110.00 EUR");
    }
}
