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
//! performance's allotted seats, the report itself, and the distributor's
//! mapping rows of the kinds it translates, read once each: 16 bytes a row,
//! a venue's seats included).
//!
//! Codes of differences (stable): `missing-at-manager`, `file-rejected`,
//! `rejected-at-manager`, `unknown-at-distributor`, `not-marked-exported`,
//! `amount-differs`, `line-differs`, `ticket-missing`, `state-differs`,
//! `unmapped`, `seat-missing-at-distributor`, `seat-extra-at-distributor`,
//! `zone-quantity-differs`, `version-differs`, `contingent-unknown-at-manager`,
//! `pending-account-mismatch`, `pending-account-vs-tickets` (the account is
//! read from the tickets through the lines that booked them: a ticket whose
//! line is gone). In flight:
//! `not-exported`, `not-yet-applied`, `version-not-applied`, `ack-pending`.
//! Resolved (not differences): `line-accepted`, `line-dismissed`. Cancelled
//! performances, apart ([`Report::cancelled`]): `tickets-to-refund`,
//! `all-refunded`.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{Connection, OptionalExtension};

use super::{DomainError, mapping};
use crate::ident::TechId;

mod cancelled;
mod figures;
mod lines;
mod pending;
mod report;
mod resolved;

pub use report::{
    Amount, Cancelled, DistributorSide, Item, ManagerSide, PendingAccount, Report, Row, Sides, Sum,
    Versions, format_amount, format_amounts, format_sums,
};

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
    resolved: Vec<Item>,
    in_flight_money: BTreeMap<String, i64>,
    unmapped_seen: BTreeSet<(&'static str, i64)>,
    /// The distributor's mapping read back, each kind once.
    ids: mapping::ManagerIds<'c>,
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
        resolved: Vec::new(),
        in_flight_money: BTreeMap::new(),
        unmapped_seen: BTreeSet::new(),
        ids: mapping::ManagerIds::new(distributor, manager_code),
    };
    r.manager_figures()?;
    let versions = r.contingents()?;
    r.lines()?;
    let pending_account = r.pending_account()?;
    let (rows, totals) = r.rows()?;
    let cancelled = r.cancelled()?;
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
        resolved: r.resolved,
        cancelled,
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

    /// The manager id a distributor's local object stands for: the one
    /// filled mapping row naming it (none, or several, is `None`).
    fn manager_id(&mut self, kind: &str, local: i64) -> Result<Option<i64>, DomainError> {
        let Some(kind) = crate::store::mapping::MappingKind::parse(kind) else {
            return Ok(None);
        };
        match self.ids.get(kind, local) {
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
    m.free += a.m.free;
    d.in_contingent += a.d.in_contingent;
    d.sold += a.d.sold;
    d.refunded += a.d.refunded;
    d.free += a.d.free;
    d.not_exported += a.d.not_exported;
}

/// A count from SQL (never negative there).
fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
