//! The manager's performance lifecycle: a performance is cancelled or closed
//! (`stxd performance cancel|close`), and what that means for its sales.
//!
//! [`end`] sets the state of one performance of the manager's store; the
//! store's trigger records when (`performance_state_change`), on this path
//! and every other that changes a state (a master-data load, a catalogue
//! import at the distributor). The state travels to the distributor in the
//! next CATALOGUE file: the export sends cancelled and closed performances
//! with their state, the distributor's import follows it, and its point of
//! sale refuses to sell a performance not in operation.
//!
//! [`sale_timing`] is the rule the reintegration applies to every SALE line:
//! a sale made after its performance was cancelled or closed, or at or
//! after its start, is refused ([`Timing::Refused`], codes
//! `performance-cancelled`, `performance-closed`, `performance-started`); a
//! sale made before the cancellation and reported after it is booked and
//! flagged for refund ([`Timing::ToRefund`]). Times are compared to the
//! second; a sale in the very second of the change is given the benefit of
//! the doubt.

use rusqlite::{Connection, OptionalExtension, Transaction};
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::DomainError;
use crate::store::runs::{self, Counts, Level, RunStatus};

/// What [`end`] does to a performance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// It will not take place: its tickets are to be refunded.
    Cancel,
    /// Its sales are over (it took place, or sales stop before it).
    Close,
}

impl Ending {
    /// The performance's state afterwards.
    pub fn state(self) -> &'static str {
        match self {
            Ending::Cancel => "cancelled",
            Ending::Close => "closed",
        }
    }

    /// The kind of the run that records it.
    pub fn run_kind(self) -> &'static str {
        match self {
            Ending::Cancel => "performance-cancel",
            Ending::Close => "performance-close",
        }
    }
}

/// A state change made by [`end`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateChange {
    pub performance: i64,
    pub code: String,
    pub start: String,
    pub previous: String,
    pub state: String,
    /// When, UTC, RFC 3339.
    pub changed: String,
    pub run: i64,
}

fn invalid(object: String, problem: impl Into<String>) -> DomainError {
    DomainError::Invalid {
        object,
        problem: problem.into(),
    }
}

/// Cancels or closes the performance `named` (technical id or code) of the
/// manager's store, for the link `link` (named in its run). A cancelled
/// performance stays cancelled; a closed one may still be cancelled.
pub fn end(
    tx: &Transaction<'_>,
    link: &str,
    named: &str,
    ending: Ending,
) -> Result<StateChange, DomainError> {
    let id = super::contingent::performance_id(tx, named)?.get();
    let (code, start, previous): (String, String, String) = tx
        .prepare_cached("SELECT code, start, state FROM performance WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    let object = format!("performance {id} {code}");
    let target = ending.state();
    if previous == target {
        return Err(invalid(object, format!("it is already {target}")));
    }
    if previous == "cancelled" {
        return Err(invalid(
            object,
            format!(
                "it is cancelled, expected a performance that can be {target}: a cancellation is final"
            ),
        ));
    }
    tx.prepare_cached("UPDATE performance SET state = ?2 WHERE id = ?1")?
        .execute((id, target))?;
    let (_, changed) = state_change(tx, id)?.ok_or_else(|| {
        DomainError::Store(crate::store::StoreError::Corrupt(format!(
            "{object}: no state change recorded (the store's trigger is missing)"
        )))
    })?;
    let changed = changed
        .format(&Rfc3339)
        .map_err(|e| invalid(object.clone(), e.to_string()))?;
    let run = runs::start(tx, ending.run_kind(), Some(link), None)?;
    let next = match ending {
        Ending::Cancel => {
            "the next catalogue file tells the distributor, which stops selling it and refunds its tickets"
        }
        Ending::Close => "the next catalogue file tells the distributor, which stops selling it",
    };
    runs::message(
        tx,
        run,
        Level::Info,
        &format!("performance-{target}"),
        Some(&object),
        &format!("{object}: {previous} → {target} at {changed}; {next}"),
    )?;
    runs::finish(tx, run, RunStatus::Ok, Counts::ONE_OK)?;
    Ok(StateChange {
        performance: id,
        code,
        start,
        previous,
        state: target.to_owned(),
        changed,
        run,
    })
}

/// Records a refused [`end`] in a failed run (the refused change wrote
/// nothing).
pub fn log_refusal(
    tx: &Transaction<'_>,
    ending: Ending,
    link: &str,
    error: &DomainError,
) -> Result<i64, DomainError> {
    Ok(runs::failed(
        tx,
        ending.run_kind(),
        Some(link),
        None,
        "refused",
        None,
        &error.to_string(),
    )?)
}

/// The state a performance last changed to, and when; `None` when it never
/// changed state since the store records it.
pub fn state_change(
    conn: &Connection,
    performance: i64,
) -> Result<Option<(String, OffsetDateTime)>, DomainError> {
    let row: Option<(String, String)> = conn
        .prepare_cached(
            "SELECT state, changed FROM performance_state_change WHERE performance = ?1",
        )?
        .query_row([performance], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match row {
        None => Ok(None),
        Some((state, changed)) => {
            let at = OffsetDateTime::parse(&changed, &Rfc3339).map_err(|_| {
                DomainError::Store(crate::store::StoreError::Corrupt(format!(
                    "performance {performance}: state change time {changed:?} is not RFC 3339"
                )))
            })?;
            Ok(Some((state, at)))
        }
    }
}

/// What [`sale_timing`] says of a SALE line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Timing {
    /// Sold while the performance was on sale.
    Fine,
    /// Sold before the performance was cancelled: booked, to be refunded.
    ToRefund { cancelled: String },
    /// Sold too late: the line is refused with this code and reason.
    Refused { code: &'static str, reason: String },
}

/// Judges the time of a SALE of `performance` (the manager's store): see
/// the module documentation.
pub fn sale_timing(
    conn: &Connection,
    performance: i64,
    sold: OffsetDateTime,
) -> Result<Timing, DomainError> {
    Ok(match SaleWindow::load(conn, performance)? {
        Some(w) => w.judge(sold),
        None => Timing::Fine,
    })
}

/// What [`sale_timing`] needs of one performance, read once: a file of many
/// lines of the same performance judges each from memory.
#[derive(Debug, Clone)]
pub struct SaleWindow {
    object: String,
    start: String,
    starts: OffsetDateTime,
    state: String,
    /// When it was cancelled or closed (ended performances only).
    change: Option<OffsetDateTime>,
}

impl SaleWindow {
    /// The performance's window; `None` when it is unknown.
    pub fn load(conn: &Connection, performance: i64) -> Result<Option<SaleWindow>, DomainError> {
        let found: Option<(String, String, String)> = conn
            .prepare_cached("SELECT code, start, state FROM performance WHERE id = ?1")?
            .query_row([performance], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let Some((code, start, state)) = found else {
            return Ok(None);
        };
        let object = format!("performance {performance} {code}");
        let ended = state == "cancelled" || state == "closed";
        let change = if ended {
            state_change(conn, performance)?.map(|(_, at)| at)
        } else {
            None
        };
        let starts = OffsetDateTime::parse(&start, &Rfc3339).map_err(|_| {
            DomainError::Store(crate::store::StoreError::Corrupt(format!(
                "{object}: start {start:?} is not RFC 3339"
            )))
        })?;
        Ok(Some(SaleWindow {
            object,
            start,
            starts,
            state,
            change,
        }))
    }

    /// Whether a sale made at `at` comes at or after the start: refused
    /// `performance-started` here, not made at the point of sale.
    pub fn started_by(&self, at: OffsetDateTime) -> bool {
        at >= self.starts
    }

    /// The start, as the catalogue gave it.
    pub fn start(&self) -> &str {
        &self.start
    }

    /// Judges a sale made at `sold`.
    pub fn judge(&self, sold: OffsetDateTime) -> Timing {
        let show = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_else(|_| t.to_string());
        let (object, state) = (&self.object, &self.state);
        if let Some(at) = self.change
            && sold > at
        {
            let code = if state == "cancelled" {
                "performance-cancelled"
            } else {
                "performance-closed"
            };
            return Timing::Refused {
                code,
                reason: format!(
                    "sold at {}, after {object} was {state} at {}: expected a sale made while it was on sale",
                    show(sold),
                    show(at)
                ),
            };
        }
        if self.started_by(sold) {
            return Timing::Refused {
                code: "performance-started",
                reason: format!(
                    "sold at {}, at or after the start of {object} ({}): expected a sale before the performance starts",
                    show(sold),
                    self.start
                ),
            };
        }
        if state == "cancelled" {
            return Timing::ToRefund {
                cancelled: self
                    .change
                    .map_or_else(|| "an unrecorded time".to_owned(), show),
            };
        }
        Timing::Fine
    }
}
