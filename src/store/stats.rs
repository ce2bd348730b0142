//! Counts read from a store for the console's `/metrics`: what the journal,
//! the sales lines and the run log hold now (read-only queries; nothing
//! here is kept beside the store, so nothing can drift from it).

use rusqlite::Connection;

use super::StoreError;

/// Journaled files of one link, kind, direction and state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalCount {
    pub link: String,
    /// SEATPLAN, CATALOGUE, CONTINGENT, SALES.
    pub kind: String,
    /// `in` or `out`.
    pub direction: String,
    /// applied, ignored, parked, rejected (in); prepared, published (out).
    pub state: String,
    pub count: u64,
}

/// The journal counted by link, kind, direction and state.
pub fn journal_counts(conn: &Connection) -> Result<Vec<JournalCount>, StoreError> {
    let mut st = conn.prepare(
        "SELECT link, kind, direction, state, count(*) FROM file_journal GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4",
    )?;
    let rows = st
        .query_map([], |r| {
            Ok(JournalCount {
                link: r.get(0)?,
                kind: r.get(1)?,
                direction: r.get(2)?,
                state: r.get(3)?,
                count: r.get::<_, i64>(4)?.max(0) as u64,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Sales lines of a link by status (`booked`, `rejected`): the manager's.
/// Read from the count the store keeps as it writes them (migration 18),
/// not from the lines: a few rows, however many lines a link has sent.
pub fn sales_line_counts(conn: &Connection) -> Result<Vec<(String, String, u64)>, StoreError> {
    let mut st = conn.prepare(
        "SELECT link, status, lines FROM sales_line_count WHERE lines > 0 ORDER BY 1, 2",
    )?;
    let rows = st
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)?.max(0) as u64))
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The last successful run of each kind and link: (link, kind, end in Unix
/// seconds). Runs of no link are left out.
pub fn last_successes(conn: &Connection) -> Result<Vec<(String, String, f64)>, StoreError> {
    let mut st = conn.prepare(
        "SELECT link, kind, (julianday(max(ended)) - 2440587.5) * 86400.0 FROM run \
         WHERE status = 'ok' AND link IS NOT NULL AND ended IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2",
    )?;
    let rows = st
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get::<_, Option<f64>>(2)?))
        })?
        .filter_map(|r| match r {
            Ok((l, k, Some(t))) => Some(Ok((l, k, t))),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Calls `each` with the duration in seconds of every finished file
/// import (`import-<kind>` runs), streamed.
pub fn import_durations(conn: &Connection, mut each: impl FnMut(f64)) -> Result<(), StoreError> {
    let mut st = conn.prepare(
        "SELECT (julianday(ended) - julianday(started)) * 86400.0 FROM run \
         WHERE kind LIKE 'import-%' AND ended IS NOT NULL",
    )?;
    let mut rows = st.query([])?;
    while let Some(r) = rows.next()? {
        if let Some(d) = r.get::<_, Option<f64>>(0)? {
            each(d.max(0.0));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_come_from_the_tables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("T.sqlite");
        let mut store =
            super::super::Store::open(&path, "T", super::super::Role::Distributor).unwrap();
        store
            .write(|tx| -> Result<(), StoreError> {
                let run = super::super::runs::start(tx, "import-sales", Some("l"), None)?;
                super::super::runs::finish(
                    tx,
                    run,
                    super::super::runs::RunStatus::Ok,
                    super::super::runs::Counts::ONE_OK,
                )
            })
            .unwrap();
        store
            .read(|c| -> Result<(), StoreError> {
                let last = last_successes(c)?;
                assert_eq!(last.len(), 1);
                assert_eq!(
                    (last[0].0.as_str(), last[0].1.as_str()),
                    ("l", "import-sales")
                );
                let now = time::OffsetDateTime::now_utc().unix_timestamp() as f64;
                assert!((last[0].2 - now).abs() < 60.0, "{} vs {now}", last[0].2);
                let mut n = 0;
                import_durations(c, |d| {
                    assert!(d < 60.0);
                    n += 1
                })?;
                assert_eq!(n, 1);
                assert!(journal_counts(c)?.is_empty());
                assert!(sales_line_counts(c)?.is_empty());
                Ok(())
            })
            .unwrap();
    }
}
