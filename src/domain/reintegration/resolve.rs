//! A rejected sales line resolved by the manager's ops (`stxd sales
//! resolve`): *accepted*, booked through the same code path as a SALES file
//! with only the named rules set aside, or *dismissed*, closed without
//! booking. Either way one run in the execution log and one
//! `sales_line_resolution` row: who, when, why.
//!
//! # What may be overridden
//!
//! Only rules about the terms of a sale whose seat is still the link's:
//! [`OVERRIDABLE`], the price (`price-differs`, `no-price`: the ticket is
//! booked at the line's amount, which goes to the pending account) and a
//! late sale (`performance-closed`, `performance-started`). Never the rules
//! that keep a seat sold once and the contingent whole, nor those about
//! what does not exist or cannot happen ([`NEVER_OVERRIDDEN`]: a seat sold
//! twice, a seat or zone place outside the contingent, a cancelled
//! performance, unknown objects, the channel's permissions, the VAT code,
//! every refund rule). A line booked already (a duplicate) is never
//! rejected, so never resolved. Accepting sets aside the rule the line was
//! rejected for and those named with `--override`; any other rule the line
//! breaks still refuses it, and nothing changes.

use rusqlite::{OptionalExtension, Transaction};
use serde::Serialize;

use super::{Context, SalesImport, Stop};
use crate::domain::DomainError;
use crate::format::sales::{self, Line, Operation, Ticket};
use crate::store::now;
use crate::store::runs::{self, Counts, Level, RunStatus};

/// The rules an accepted line may set aside.
pub const OVERRIDABLE: [&str; 4] = [
    "price-differs",
    "no-price",
    "performance-closed",
    "performance-started",
];

/// The rules no resolution sets aside (a line rejected for one of them can
/// only be dismissed, or fixed and sent again).
pub const NEVER_OVERRIDDEN: [&str; 23] = [
    "seat-sold-twice",
    "seat-not-in-contingent",
    "zone-not-in-contingent",
    "zone-quantity-exhausted",
    "performance-cancelled",
    "unknown-performance",
    "unknown-seat-category",
    "unknown-tariff-type",
    "unknown-audience-subcategory",
    "unknown-vat-code",
    "unknown-seat",
    "unknown-zone",
    "seat-category-differs",
    "logical-category-differs",
    "product-not-on-channel",
    "audience-not-allowed",
    "vat-code-differs",
    "refund-unknown-sale",
    "refund-twice",
    "refund-differs",
    "refund-amount-differs",
    "already-booked",
    "already-booked-differs",
];

/// What to do with a rejected line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Book it, setting aside the rule it was rejected for and these.
    Accept { also_override: Vec<String> },
    /// Close it without booking.
    Dismiss,
}

/// A line resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resolution {
    pub link: String,
    /// The distributor's line id.
    pub line: i64,
    /// `accepted` or `dismissed`.
    pub decision: &'static str,
    /// The rule the line was rejected for.
    pub code: String,
    /// Accepted: the rules set aside (the first is `code`).
    pub overridden: Vec<String>,
    pub reason: String,
    pub by: String,
    pub at: String,
    pub run: i64,
    /// Accepted SALE: the ticket booked.
    pub ticket: Option<i64>,
}

/// The rejected line as recorded.
struct Recorded {
    operation: String,
    file: String,
    /// The line's number in its file (0: not known).
    position: u64,
    code: String,
    record: String,
}

/// Resolves the rejected line `line` of the link `ctx` names (`ctx.file`
/// and `ctx.run` are ignored: the line's file and a new run are used).
/// Refusals (`DomainError::Invalid`) change nothing: the caller logs them.
pub fn resolve_line(
    tx: &Transaction<'_>,
    ctx: Context<'_>,
    line: i64,
    decision: &Decision,
    reason: &str,
    by: &str,
) -> Result<Resolution, DomainError> {
    let object = format!("line id {line} of link {}", ctx.link);
    let invalid = |problem: String| DomainError::Invalid {
        object: object.clone(),
        problem,
    };
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(invalid("expected a reason of 1 to 500 characters".into()));
    }
    let rec = recorded(tx, ctx.link, line, &invalid)?;
    let ticket = parse_record(&rec.record, &object)?;
    let overrides = match decision {
        Decision::Dismiss => Vec::new(),
        Decision::Accept { also_override } => overrides(&rec, also_override, &invalid)?,
    };
    let run = runs::start(tx, "resolve-line", Some(ctx.link), Some(&rec.file))?;
    let ctx = Context {
        file: &rec.file,
        run,
        ..ctx
    };
    let (decision, booked) = if overrides.is_empty() {
        ("dismissed", None)
    } else {
        let booked = book(tx, ctx, &ticket, rec.position, &overrides, &invalid)?;
        ("accepted", Some(booked))
    };
    let overridden: Vec<String> = booked
        .as_ref()
        .map(|b| b.1.iter().map(|s| (*s).to_owned()).collect())
        .unwrap_or_default();
    let at = now();
    tx.prepare_cached(
        "INSERT INTO sales_line_resolution
             (link, line, decision, code, overridden, reason, by_user, at, run, operation, amount, currency)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(rusqlite::params![
        ctx.link,
        line,
        decision,
        rec.code,
        (decision == "accepted").then(|| overridden.join(",")),
        reason,
        by,
        at,
        run,
        rec.operation,
        ticket.amount,
        ticket.currency.as_str(),
    ])?;
    let what = match decision {
        "accepted" => format!("booked, {} set aside", overridden.join(", ")),
        _ => "closed without booking".to_owned(),
    };
    runs::message(
        tx,
        run,
        Level::Info,
        if decision == "accepted" {
            "line-accepted"
        } else {
            "line-dismissed"
        },
        Some(&format!("line {}", rec.position)),
        &format!(
            "{object} (rejected {}) {decision} by {by}: {what}; reason: {reason}",
            rec.code
        ),
    )?;
    runs::finish(tx, run, RunStatus::Ok, Counts::ONE_OK)?;
    Ok(Resolution {
        link: ctx.link.to_owned(),
        line,
        decision,
        code: rec.code,
        overridden,
        reason: reason.to_owned(),
        by: by.to_owned(),
        at,
        run,
        ticket: booked.and_then(|b| b.0),
    })
}

/// The line, rejected and not resolved yet.
fn recorded(
    tx: &Transaction<'_>,
    link: &str,
    line: i64,
    invalid: &dyn Fn(String) -> DomainError,
) -> Result<Recorded, DomainError> {
    let found: Option<(String, String, String, i64, Option<String>, String)> = tx
        .prepare_cached(
            "SELECT l.operation, l.status, coalesce(r.file, '?'), l.position, l.code, l.record
             FROM sales_line l JOIN run r ON r.id = l.run
             WHERE l.link = ?1 AND l.line = ?2",
        )?
        .query_row((link, line), |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })
        .optional()?;
    let Some((operation, status, file, position, code, record)) = found else {
        return Err(invalid(
            "no such line was received (stxd sales rejects lists the rejected ones)".into(),
        ));
    };
    let done: Option<(String, String, String)> = tx
        .prepare_cached(
            "SELECT decision, by_user, at FROM sales_line_resolution WHERE link = ?1 AND line = ?2",
        )?
        .query_row((link, line), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    if let Some((decision, by, at)) = done {
        return Err(invalid(format!(
            "already resolved: {decision} by {by} at {at}"
        )));
    }
    let position = u64::try_from(position).unwrap_or(0);
    match (status.as_str(), code) {
        ("rejected", Some(code)) => Ok(Recorded {
            operation,
            file,
            position,
            code,
            record,
        }),
        _ => Err(invalid(format!(
            "is {status} (from {file}, line {position}), not rejected: nothing to resolve"
        ))),
    }
}

/// The rules an accept sets aside: the line's own, then those named; each
/// one of [`OVERRIDABLE`], and only for a SALE.
fn overrides(
    rec: &Recorded,
    also: &[String],
    invalid: &dyn Fn(String) -> DomainError,
) -> Result<Vec<&'static str>, DomainError> {
    if rec.operation != "SALE" {
        return Err(invalid(format!(
            "is a {} line rejected {}: no refund rule can be overridden; dismiss it, or have the distributor fix and send it again",
            rec.operation, rec.code
        )));
    }
    let mut list = Vec::new();
    for code in std::iter::once(&rec.code).chain(also) {
        let Some(known) = OVERRIDABLE.iter().find(|c| **c == code.as_str()) else {
            return Err(invalid(format!(
                "rule {code} can never be overridden (only {} can): dismiss the line (stxd sales resolve --dismiss), or have the distributor fix and send it again",
                OVERRIDABLE.join(", ")
            )));
        };
        if !list.contains(known) {
            list.push(*known);
        }
    }
    Ok(list)
}

/// Books the line through the reintegration with `overrides` set aside;
/// returns its ticket and the rules actually set aside.
fn book(
    tx: &Transaction<'_>,
    ctx: Context<'_>,
    ticket: &Ticket,
    position: u64,
    overrides: &[&'static str],
    invalid: &dyn Fn(String) -> DomainError,
) -> Result<(Option<i64>, Vec<&'static str>), DomainError> {
    let mut import = SalesImport::new(tx, ctx)?;
    import.overrides = overrides.to_vec();
    import.line(&Line::Ticket(Box::new(ticket.clone())), position)?;
    let overridden: Vec<&'static str> = import.overridden.iter().map(|(c, _)| *c).collect();
    let outcome = import.finish()?;
    if outcome.rejected > 0 || outcome.booked != 1 {
        let again: Option<(Option<String>, Option<String>)> = tx
            .prepare_cached("SELECT code, reason FROM sales_line WHERE link = ?1 AND line = ?2")?
            .query_row((ctx.link, sql_line(ticket)?), |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?;
        let (code, why) = again.unwrap_or_default();
        let code = code.unwrap_or_default();
        let hint = if OVERRIDABLE.contains(&code.as_str()) {
            format!("; to accept it anyway add --override {code}")
        } else {
            "; that rule can never be overridden: dismiss the line instead".to_owned()
        };
        return Err(invalid(format!(
            "still refused with {} set aside: {code}: {}{hint}",
            overrides.join(", "),
            why.unwrap_or_default()
        )));
    }
    let id: Option<i64> = tx
        .prepare_cached(
            "SELECT ticket FROM sales_line WHERE link = ?1 AND line = ?2 AND operation = 'SALE'",
        )?
        .query_row((ctx.link, sql_line(ticket)?), |r| r.get(0))
        .optional()?
        .flatten();
    Ok((id, overridden))
}

fn sql_line(t: &Ticket) -> Result<i64, DomainError> {
    super::sql_id(t.line)
}

/// The recorded canonical line read back as a ticket.
fn parse_record(record: &str, object: &str) -> Result<Ticket, DomainError> {
    let text = format!("{}\n{record}\n", sales::COLUMNS.join(";"));
    let mut reader = sales::Reader::new(text.as_bytes(), object, crate::format::Limits::default());
    match reader.next() {
        Some(Ok(Line::Ticket(t))) if t.operation == Operation::Sale || t.refund_of.is_some() => {
            Ok(*t)
        }
        Some(Err(e)) => Err(DomainError::Invalid {
            object: object.to_owned(),
            problem: format!("its recorded line cannot be read back: {e}"),
        }),
        _ => Err(DomainError::Invalid {
            object: object.to_owned(),
            problem: "its recorded line is not a ticket line".into(),
        }),
    }
}

impl SalesImport<'_> {
    /// A rejection a resolution sets aside (recorded, then the booking goes
    /// on), or the rejection itself.
    pub(super) fn set_aside(&mut self, stop: Stop) -> Result<(), Stop> {
        match stop {
            Stop::Reject { code, reason } if self.overrides.contains(&code) => {
                self.overridden.push((code, reason));
                Ok(())
            }
            other => Err(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_rule_is_both_overridable_and_never_overridden() {
        for code in OVERRIDABLE {
            assert!(!NEVER_OVERRIDDEN.contains(&code), "{code}");
        }
    }
}
