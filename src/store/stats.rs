//! Counts read from a store for the console's `/metrics`: what the journal,
//! the sales lines and the run log hold now. Read-only queries of the
//! counts the store keeps in the transactions that write the rows
//! (migrations 18 and 19), never of every row: a scrape costs a few rows
//! whatever the store's history, and the counts cannot drift from the rows
//! they count.

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

/// The journal counted by link, kind, direction and state (none at 0).
pub fn journal_counts(conn: &Connection) -> Result<Vec<JournalCount>, StoreError> {
    let mut st = conn.prepare(
        "SELECT link, kind, direction, state, files FROM file_journal_count WHERE files > 0
         ORDER BY 1, 2, 3, 4",
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
        "SELECT link, kind, (julianday(ended) - 2440587.5) * 86400.0 FROM run_last_success
         ORDER BY 1, 2",
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

/// How long the finished file imports (`import-<kind>` runs) took, as a
/// histogram: what Prometheus' histogram holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Durations {
    /// (upper bound in seconds, imports in this bucket alone), by bound;
    /// the last bound is infinite.
    pub buckets: Vec<(f64, u64)>,
    /// Every import's seconds, summed.
    pub sum: f64,
}

impl Durations {
    /// Every import counted.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|(_, n)| n).sum()
    }

    /// Adds `other`'s imports to these (another store's, with the same
    /// bounds; a bound only one has is kept in its place).
    pub fn add(&mut self, other: &Durations) {
        for &(le, n) in &other.buckets {
            match self.buckets.binary_search_by(|(b, _)| b.total_cmp(&le)) {
                Ok(i) => self.buckets[i].1 += n,
                Err(i) => self.buckets.insert(i, (le, n)),
            }
        }
        self.sum += other.sum;
    }
}

/// The import durations the store keeps as runs end (migration 19).
pub fn import_durations(conn: &Connection) -> Result<Durations, StoreError> {
    let mut st = conn.prepare("SELECT le, runs, seconds FROM import_duration ORDER BY le")?;
    let mut rows = st.query([])?;
    let mut d = Durations::default();
    while let Some(r) = rows.next()? {
        d.buckets
            .push((r.get(0)?, r.get::<_, i64>(1)?.max(0) as u64));
        d.sum += r.get::<_, f64>(2)?;
    }
    Ok(d)
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
                let durations = import_durations(c)?;
                assert_eq!(durations.count(), 1);
                assert!(durations.sum < 60.0, "{durations:?}");
                assert!(journal_counts(c)?.is_empty());
                assert!(sales_line_counts(c)?.is_empty());
                Ok(())
            })
            .unwrap();
    }
}
