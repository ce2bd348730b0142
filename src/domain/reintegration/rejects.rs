//! The rejected lines of a link: their columns, read one by one, and
//! written as a CSV for `stxd sales rejects`.

use super::super::DomainError;
use crate::format::sales;
use crate::store::StoreError;
use rusqlite::Connection;
use std::borrow::Cow;
use std::io::Write;

/// The columns of `stxd sales rejects`: the SALES columns
/// ([`sales::COLUMNS`]), then where the line came from and why it was
/// rejected.
pub const REJECT_COLUMNS: [&str; sales::COLUMNS.len() + 4] = {
    const WHY: [&str; 4] = ["file", "position", "code", "reason"];
    let mut all = [""; sales::COLUMNS.len() + WHY.len()];
    let mut i = 0;
    while i < sales::COLUMNS.len() {
        all[i] = sales::COLUMNS[i];
        i += 1;
    }
    let mut j = 0;
    while j < WHY.len() {
        all[i + j] = WHY[j];
        j += 1;
    }
    all
};

/// A rejected line of a link, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub line: u64,
    pub operation: String,
    pub file: String,
    pub position: String,
    pub code: String,
    pub reason: String,
    /// The SALES columns of the line, in [`sales::COLUMNS`] order.
    pub fields: Vec<String>,
    pub updated: String,
}

/// Calls `f` with each rejected line of `link` not resolved yet (`stxd sales
/// resolve`), by line id; returns how many.
pub fn for_each_rejected(
    conn: &Connection,
    link: &str,
    mut f: impl FnMut(Rejected) -> Result<(), DomainError>,
) -> Result<u64, DomainError> {
    let mut st = conn.prepare_cached(
        "SELECT l.line, l.operation, coalesce(run.file, '?'), 'line ' || l.position, l.code, l.reason,
                l.record, run.started
           FROM sales_line l JOIN run ON run.id = l.run
          WHERE l.link = ?1 AND l.status = 'rejected'
            AND NOT EXISTS (SELECT 1 FROM sales_line_resolution r WHERE r.link = l.link AND r.line = l.line)
          ORDER BY l.line",
    )?;
    let mut rows = st.query([link])?;
    let mut n = 0u64;
    while let Some(r) = rows.next()? {
        let line: i64 = r.get(0)?;
        let record: String = r.get(6)?;
        let mut fields: Vec<String> = record.split(';').map(str::to_owned).collect();
        fields.resize(sales::COLUMNS.len(), String::new());
        f(Rejected {
            line: u64::try_from(line)
                .map_err(|_| StoreError::Corrupt(format!("sales line id {line}")))?,
            operation: r.get(1)?,
            file: r.get(2)?,
            position: r.get(3)?,
            code: r.get::<_, Option<String>>(4)?.unwrap_or_default(),
            reason: r.get::<_, Option<String>>(5)?.unwrap_or_default(),
            fields,
            updated: r.get(7)?,
        })?;
        n += 1;
    }
    Ok(n)
}

/// Writes the rejected lines of `link` as a CSV for ops (`;`, UTF-8 with a
/// byte order mark, LF line ends, quoted where needed, every cell a
/// spreadsheet would read as a formula neutralised with a leading `'`), one
/// line at a time. Returns the number of lines written.
pub fn export_rejects(conn: &Connection, link: &str, out: impl Write) -> Result<u64, DomainError> {
    let io = |source: std::io::Error| DomainError::Io {
        file: "the rejected lines export".to_owned(),
        source,
    };
    let mut out = out;
    out.write_all(b"\xEF\xBB\xBF").map_err(io)?;
    let mut w = csv::WriterBuilder::new()
        .delimiter(b';')
        .terminator(csv::Terminator::Any(b'\n'))
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(out);
    let csv_err = |e: csv::Error| io(std::io::Error::other(e));
    w.write_record(REJECT_COLUMNS).map_err(csv_err)?;
    let n = for_each_rejected(conn, link, |r| {
        let cells: Vec<Cow<'_, str>> = r
            .fields
            .iter()
            .map(String::as_str)
            .chain([
                r.file.as_str(),
                r.position.as_str(),
                r.code.as_str(),
                r.reason.as_str(),
            ])
            .map(crate::domain::mapping::neutralise)
            .collect();
        w.write_record(cells.iter().map(|c| c.as_bytes()))
            .map_err(csv_err)
    })?;
    w.flush().map_err(io)?;
    Ok(n)
}

/// A rejected line the manager's ops resolved (`stxd sales resolve`), as
/// recorded: read-only, for people.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Resolved {
    pub line: i64,
    pub operation: String,
    /// `accepted` or `dismissed`.
    pub decision: String,
    /// The rule the line was rejected for.
    pub code: String,
    /// Accepted: the rules set aside, comma-separated.
    pub overridden: Option<String>,
    pub reason: String,
    pub by: String,
    pub at: String,
    pub run: i64,
    /// The line's amount in minor units of `currency`.
    pub amount: i64,
    pub currency: String,
}

/// The resolutions of `link`, newest first: at most `limit` from the
/// `offset`-th, and how many there are in all.
pub fn resolutions(
    conn: &Connection,
    link: &str,
    offset: u64,
    limit: u64,
) -> Result<(Vec<Resolved>, u64), DomainError> {
    let total: i64 = conn
        .prepare_cached("SELECT count(*) FROM sales_line_resolution WHERE link = ?1")?
        .query_row([link], |r| r.get(0))?;
    let mut st = conn.prepare_cached(
        "SELECT line, operation, decision, code, overridden, reason, by_user, at, run, amount, currency
           FROM sales_line_resolution WHERE link = ?1
          ORDER BY at DESC, line DESC LIMIT ?2 OFFSET ?3",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    let rows = st.query_map(rusqlite::params![link, limit, offset], |r| {
        Ok(Resolved {
            line: r.get(0)?,
            operation: r.get(1)?,
            decision: r.get(2)?,
            code: r.get(3)?,
            overridden: r.get(4)?,
            reason: r.get(5)?,
            by: r.get(6)?,
            at: r.get(7)?,
            run: r.get(8)?,
            amount: r.get(9)?,
            currency: r.get(10)?,
        })
    })?;
    let list = rows.collect::<Result<Vec<_>, _>>()?;
    Ok((list, u64::try_from(total).unwrap_or(0)))
}
