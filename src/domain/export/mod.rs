//! The manager's exports: what one link's `stx_file` channel may sell, as
//! catalogue and seat-plan records.
//!
//! Takes a read connection (the caller's transaction) and the link's
//! [`Scope`]; pushes records one at a time into the caller's `emit` closure,
//! in the document order the formats require, and returns a [`Report`]: what
//! was emitted per record type and every object left out, with its reason.
//! Nothing is written to the store and no file is touched here: the outbound
//! export streams `emit` into a payload writer.
//!
//! The selection (shared by both exports): the external sales interface whose
//! login is the link's names the channel, which must be of kind `stx_file` and
//! in operation. A product is exported when it is in one of the channel's
//! product profiles, in the link's product list (when the link has one), its
//! activity in one of the channel's activity profiles, it and its rate table
//! are active, at least one of its performances is in operation and its rate
//! table has a price for at least one audience subcategory its profiles
//! allow. Only prices of allowed audience subcategories are exported; a
//! profile without audience subcategories allows them all. The reference
//! objects exported are exactly those the exported records name.
//!
//! A selection that leaves no product is refused ([`ExportError::NothingToSell`]):
//! a catalogue is a full snapshot, so an empty one would withdraw every
//! product at the distributor, which is never what a link restricted to the
//! wrong products means.
//!
//! Memory holds id sets (products, performances, configurations, reference
//! ids), never a table's rows: every table is read with a prepared statement
//! in id order while records are emitted.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{Connection, OptionalExtension};

use crate::format::WriteError;
use crate::ident::{Code, Name, TechId};

mod catalogue_records;
mod seatplan_records;
mod selection;

pub use catalogue_records::catalogue;
pub use seatplan_records::seatplan;

/// Which link the export is for, as the manager's store knows it.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The distributor's institution code.
    pub distributor: &'a str,
    /// `OPERATOR@DISTRIBUTOR`: the external sales interface's login.
    pub login: &'a str,
    /// The link's product list (manager ids), when it is restricted.
    pub products: Option<&'a [TechId]>,
}

/// An object left out of an export, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Exclusion {
    /// `product 1902 CARM-BIL`, `performance 1703 TRAV0120`…
    pub object: String,
    pub reason: String,
}

/// What an export emitted and what it left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// Records emitted per type (`products`, `seats`…), in first-emitted order.
    pub included: Vec<(String, u64)>,
    pub excluded: Vec<Exclusion>,
}

impl Report {
    /// One more record of type `label`.
    pub(super) fn count(&mut self, label: &str) {
        match self.included.iter_mut().find(|(l, _)| l == label) {
            Some((_, n)) => *n += 1,
            None => self.included.push((label.to_owned(), 1)),
        }
    }

    fn exclude(&mut self, object: impl Into<String>, reason: impl Into<String>) {
        self.excluded.push(Exclusion {
            object: object.into(),
            reason: reason.into(),
        });
    }

    /// Records emitted of one type (0 when none).
    pub fn included(&self, label: &str) -> u64 {
        self.included
            .iter()
            .find(|(l, _)| l == label)
            .map_or(0, |(_, n)| *n)
    }

    /// Records emitted in all.
    pub fn total(&self) -> u64 {
        self.included.iter().map(|(_, n)| n).sum()
    }
}

/// Why an export was refused. Nothing was emitted when the setup or the
/// selection is refused; a write or data error may come after some records.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The setup does not allow the export: the message says what to fix.
    #[error("{problem}; {fix}")]
    Setup {
        code: &'static str,
        problem: String,
        fix: String,
    },
    /// Nothing changed since the last export of the kind (no contingent
    /// changed, no new sale): the normal answer of a schedule between two
    /// changes, not a failure.
    #[error("{problem}; {fix}")]
    NothingToSend { problem: String, fix: String },
    /// Every product was left out; the report says why, object by object.
    #[error(
        "nothing to sell: every product was left out ({} exclusion(s), see the run's log); fix the channel's profiles, the performances' states or the link's product list",
        .0.excluded.len()
    )]
    NothingToSell(Report),
    /// A stored value cannot be written (the database was edited by hand?).
    #[error("{object}: {problem}; fix it in the master data and load it again")]
    BadData { object: String, problem: String },
    #[error(transparent)]
    Write(#[from] WriteError),
    #[error("database error: {}", crate::store::sql_words(.0))]
    Sql(#[from] rusqlite::Error),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl ExportError {
    /// Stable short code, for run logs.
    pub fn code(&self) -> &'static str {
        match self {
            ExportError::Setup { code, .. } => code,
            ExportError::NothingToSend { .. } => "nothing-to-send",
            ExportError::NothingToSell(_) => "nothing-to-sell",
            ExportError::BadData { .. } => "bad-data",
            ExportError::Write(_) => "write-failed",
            ExportError::Sql(_) | ExportError::Store(_) => "database",
        }
    }

    /// The exclusions behind a refusal, when there are some.
    pub fn report(&self) -> Option<&Report> {
        match self {
            ExportError::NothingToSell(r) => Some(r),
            _ => None,
        }
    }
}

// ------------------------------------------------------------------ helpers

/// A stored value the export cannot write.
pub(super) fn bad(object: impl Into<String>, problem: impl Into<String>) -> ExportError {
    ExportError::BadData {
        object: object.into(),
        problem: problem.into(),
    }
}

fn id(v: i64, object: &str) -> Result<TechId, ExportError> {
    TechId::new(v).map_err(|e| bad(object, e.to_string()))
}

fn code(v: &str, object: &str) -> Result<Code, ExportError> {
    Code::new(v).map_err(|e| bad(object, e.to_string()))
}

fn name(v: &str, object: &str) -> Result<Name, ExportError> {
    Name::new(v).map_err(|e| bad(object, e.to_string()))
}

fn date(v: &str, object: &str) -> Result<time::Date, ExportError> {
    time::Date::parse(v, time::macros::format_description!("[year]-[month]-[day]")).map_err(|e| {
        bad(
            object,
            format!("expected a date YYYY-MM-DD, found {v:?}: {e}"),
        )
    })
}

fn emit_with<T>(
    emit: &mut dyn FnMut(&T) -> Result<(), WriteError>,
    report: &mut Report,
    label: &str,
    item: &T,
) -> Result<(), ExportError> {
    emit(item)?;
    report.count(label);
    Ok(())
}

/// The audience subcategories a product (or a rate table) may be sold to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Audiences {
    All,
    Only(BTreeSet<i64>),
}

impl Audiences {
    fn allows(&self, a: i64) -> bool {
        match self {
            Audiences::All => true,
            Audiences::Only(s) => s.contains(&a),
        }
    }

    fn intersect(&self, other: &Audiences) -> Audiences {
        match (self, other) {
            (Audiences::All, x) | (x, Audiences::All) => x.clone(),
            (Audiences::Only(a), Audiences::Only(b)) => {
                Audiences::Only(a.intersection(b).copied().collect())
            }
        }
    }
}

/// A `kind id CODE` label for an object of `table`, read from the store.
fn label(conn: &Connection, table: &'static str, v: i64) -> Result<String, ExportError> {
    let what = table.replace('_', " ");
    let sql = format!("SELECT code FROM {table} WHERE id = ?1");
    let c: Option<String> = conn
        .prepare_cached(&sql)?
        .query_row([v], |r| r.get(0))
        .optional()?;
    Ok(match c {
        Some(c) => format!("{what} {v} {c}"),
        None => format!("{what} {v}"),
    })
}

/// The link's channel, as found through its external sales interface.
struct Channel {
    id: i64,
    label: String,
}

/// What the channel sells to this link.
struct Selection {
    channel: Channel,
    /// Exported products, in id order.
    products: BTreeSet<i64>,
    /// Exported performances of each exported product.
    product_performances: BTreeMap<i64, Vec<i64>>,
    performances: BTreeSet<i64>,
    activities: BTreeSet<i64>,
    /// Exported rate tables and the audience subcategories their exported
    /// prices may have.
    rate_tables: BTreeMap<i64, Audiences>,
    /// Audience subcategories allowed for at least one exported product.
    allowed_audiences: Audiences,
    /// Activities of the channel's activity profiles.
    profile_activities: BTreeSet<i64>,
    /// Performances already named in the report.
    reported_performances: BTreeSet<i64>,
    report: Report,
}

#[cfg(test)]
mod tests;
