//! The execution log: one run per import, export or check, with its counts and
//! every message an operator needs to read (the manual's "logs d'exécution").
//!
//! A run is started in its own write (so it survives a rolled-back apply),
//! messages are added as work goes, and it is finished with a status and the
//! record counts. This module stores and lists runs; it decides nothing.

use std::fmt;

use rusqlite::{Connection, OptionalExtension, Transaction};

use super::{StoreError, now};

/// The outcome of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunStatus {
    Running,
    /// Everything applied.
    Ok,
    /// Applied, with some records rejected.
    Partial,
    /// Nothing applied.
    Failed,
    /// Waiting (pending mappings); resumes by itself.
    Parked,
}

impl RunStatus {
    pub const ALL: [RunStatus; 5] = [
        RunStatus::Running,
        RunStatus::Ok,
        RunStatus::Partial,
        RunStatus::Failed,
        RunStatus::Parked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Ok => "ok",
            RunStatus::Partial => "partial",
            RunStatus::Failed => "failed",
            RunStatus::Parked => "parked",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|v| v.as_str() == s)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How much a message matters to the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warning,
    Info,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Info => "info",
        }
    }

    pub fn parse(s: &str) -> Option<Level> {
        [Level::Error, Level::Warning, Level::Info]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Record counts of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: u64,
    pub ok: u64,
    pub rejected: u64,
}

impl Counts {
    /// A run about one thing, done: an allotment, a sale, a state change.
    pub const ONE_OK: Counts = Counts {
        total: 1,
        ok: 1,
        rejected: 0,
    };
}

/// A run as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub id: i64,
    /// What ran: `import-sales`, `export-catalogue`, `check`…
    pub kind: String,
    pub link: Option<String>,
    pub file: Option<String>,
    pub started: String,
    pub ended: Option<String>,
    pub status: RunStatus,
    pub counts: Counts,
}

/// One message of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub seq: u32,
    pub level: Level,
    /// Stable kebab-case code (`bad-amount`, `pending-mapping`).
    pub code: String,
    /// Where: `line 12, field amount`, a file name, an object.
    pub location: Option<String>,
    pub text: String,
}

/// A run with its messages in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDetail {
    pub run: Run,
    pub messages: Vec<Message>,
}

/// Which runs to list; `None` fields do not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter<'a> {
    pub kind: Option<&'a str>,
    pub link: Option<&'a str>,
    pub status: Option<RunStatus>,
    /// Runs started at or after this timestamp (same format as [`super::now`]).
    pub since: Option<&'a str>,
    /// At most this many, newest first; `None` = 100.
    pub limit: Option<u32>,
}

fn to_sql(n: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(n).map_err(|_| StoreError::Invalid(format!("{what} {n} is too large")))
}

/// Starts a run and returns its id.
pub fn start(
    tx: &Transaction<'_>,
    kind: &str,
    link: Option<&str>,
    file: Option<&str>,
) -> Result<i64, StoreError> {
    if kind.is_empty() || kind.len() > 40 {
        return Err(StoreError::Invalid(format!(
            "expected a run kind of 1 to 40 bytes, found {:?}",
            crate::ident::shorten(kind)
        )));
    }
    tx.prepare_cached(
        "INSERT INTO run (kind, link, file, started, status) VALUES (?1, ?2, ?3, ?4, 'running')",
    )?
    .execute((kind, link, file, now()))?;
    Ok(tx.last_insert_rowid())
}

/// Adds a message to a run and returns its number within the run (1, 2, …).
pub fn message(
    tx: &Transaction<'_>,
    run: i64,
    level: Level,
    code: &str,
    location: Option<&str>,
    text: &str,
) -> Result<u32, StoreError> {
    if code.is_empty() || code.len() > 64 {
        return Err(StoreError::Invalid(format!(
            "expected a message code of 1 to 64 bytes, found {:?}",
            crate::ident::shorten(code)
        )));
    }
    let exists: Option<i64> = tx
        .prepare_cached("SELECT id FROM run WHERE id = ?1")?
        .query_row([run], |r| r.get(0))
        .optional()?;
    if exists.is_none() {
        return Err(StoreError::NotFound {
            what: "run",
            id: run,
        });
    }
    let seq: i64 = tx
        .prepare_cached("SELECT coalesce(max(seq), 0) + 1 FROM run_message WHERE run = ?1")?
        .query_row([run], |r| r.get(0))?;
    tx.prepare_cached(
        "INSERT INTO run_message (run, seq, level, code, location, text) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute((run, seq, level.as_str(), code, location, text))?;
    u32::try_from(seq).map_err(|_| StoreError::Corrupt(format!("message number {seq}")))
}

/// Records a refused action as a failed run with one error message, in one
/// call: the execution log of everything refused (a file rejected whole, an
/// allocation or a sale refused). Returns the run.
pub fn failed(
    tx: &Transaction<'_>,
    kind: &str,
    link: Option<&str>,
    file: Option<&str>,
    code: &str,
    location: Option<&str>,
    text: &str,
) -> Result<i64, StoreError> {
    let run = start(tx, kind, link, file)?;
    message(tx, run, Level::Error, code, location, text)?;
    finish(
        tx,
        run,
        RunStatus::Failed,
        Counts {
            total: 1,
            ok: 0,
            rejected: 1,
        },
    )?;
    Ok(run)
}

/// Ends a running run with its outcome and counts. Refuses `Running` as an
/// outcome and a run already finished.
pub fn finish(
    tx: &Transaction<'_>,
    run: i64,
    status: RunStatus,
    counts: Counts,
) -> Result<(), StoreError> {
    if status == RunStatus::Running {
        return Err(StoreError::Invalid(
            "a run cannot finish as running; give its outcome".to_owned(),
        ));
    }
    let n = tx
        .prepare_cached(
            "UPDATE run SET status = ?2, ended = ?3, records_total = ?4, records_ok = ?5,
                 records_rejected = ?6
             WHERE id = ?1 AND status = 'running'",
        )?
        .execute((
            run,
            status.as_str(),
            now(),
            to_sql(counts.total, "record count")?,
            to_sql(counts.ok, "record count")?,
            to_sql(counts.rejected, "record count")?,
        ))?;
    if n == 0 {
        let exists: Option<String> = tx
            .prepare_cached("SELECT status FROM run WHERE id = ?1")?
            .query_row([run], |r| r.get(0))
            .optional()?;
        return Err(match exists {
            None => StoreError::NotFound {
                what: "run",
                id: run,
            },
            Some(s) => StoreError::Invalid(format!("run {run} is already finished ({s})")),
        });
    }
    Ok(())
}

const COLUMNS: &str =
    "id, kind, link, file, started, ended, status, records_total, records_ok, records_rejected";

fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Run, StoreError>> {
    let status: String = r.get(6)?;
    let count = |i: usize| -> rusqlite::Result<Result<u64, StoreError>> {
        let v: i64 = r.get(i)?;
        Ok(u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("record count {v}"))))
    };
    let (total, ok, rejected) = (count(7)?, count(8)?, count(9)?);
    let built = (|| {
        Ok(Run {
            id: r.get(0)?,
            kind: r.get(1)?,
            link: r.get(2)?,
            file: r.get(3)?,
            started: r.get(4)?,
            ended: r.get(5)?,
            status: RunStatus::parse(&status)
                .ok_or_else(|| StoreError::Corrupt(format!("run status {status:?}")))?,
            counts: Counts {
                total: total?,
                ok: ok?,
                rejected: rejected?,
            },
        })
    })();
    Ok(built)
}

/// Runs matching `filter`, newest first.
pub fn list(conn: &Connection, filter: &Filter<'_>) -> Result<Vec<Run>, StoreError> {
    let mut st = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM run
         WHERE (?1 IS NULL OR kind = ?1) AND (?2 IS NULL OR link = ?2)
           AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR started >= ?4)
         ORDER BY started DESC, id DESC LIMIT ?5"
    ))?;
    let rows = st.query_map(
        (
            filter.kind,
            filter.link,
            filter.status.map(RunStatus::as_str),
            filter.since,
            i64::from(filter.limit.unwrap_or(100)),
        ),
        run_row,
    )?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r??);
    }
    Ok(out)
}

/// The id of the newest run (0 when none): runs begun later have higher
/// ids (`stxd trigger` reads what a job it asked for logged after it).
pub fn last_id(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT coalesce(max(id), 0) FROM run")?
        .query_row([], |r| r.get(0))?)
}

/// One run with its messages, or `None`.
pub fn get(conn: &Connection, id: i64) -> Result<Option<RunDetail>, StoreError> {
    let run = conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM run WHERE id = ?1"))?
        .query_row([id], run_row)
        .optional()?
        .transpose()?;
    let Some(run) = run else {
        return Ok(None);
    };
    let mut st = conn.prepare_cached(
        "SELECT seq, level, code, location, text FROM run_message WHERE run = ?1 ORDER BY seq",
    )?;
    let rows = st.query_map([id], |r| {
        let seq: i64 = r.get(0)?;
        let level: String = r.get(1)?;
        Ok((seq, level, r.get(2)?, r.get(3)?, r.get(4)?))
    })?;
    let mut messages = Vec::new();
    for row in rows {
        let (seq, level, code, location, text) = row?;
        messages.push(Message {
            seq: u32::try_from(seq)
                .map_err(|_| StoreError::Corrupt(format!("message number {seq}")))?,
            level: Level::parse(&level)
                .ok_or_else(|| StoreError::Corrupt(format!("message level {level:?}")))?,
            code,
            location,
            text,
        });
    }
    Ok(Some(RunDetail { run, messages }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Role, Store};

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(&dir.path().join("d.db"), "TOURISM", Role::Distributor).unwrap();
        (dir, s)
    }

    #[test]
    fn start_message_finish_get() {
        let (_d, mut s) = store();
        let id = s
            .write(|tx| {
                start(
                    tx,
                    "import-catalogue",
                    Some("opera-tourism"),
                    Some("C_1.xml"),
                )
            })
            .unwrap();
        s.write(|tx| -> Result<(), StoreError> {
            assert_eq!(
                message(
                    tx,
                    id,
                    Level::Error,
                    "pending-mapping",
                    Some("line 3"),
                    "season 1001"
                )?,
                1
            );
            assert_eq!(message(tx, id, Level::Info, "parked", None, "waiting")?, 2);
            finish(
                tx,
                id,
                RunStatus::Parked,
                Counts {
                    total: 10,
                    ok: 0,
                    rejected: 0,
                },
            )
        })
        .unwrap();
        let d = s.read(|c| get(c, id)).unwrap().unwrap();
        assert_eq!(d.run.status, RunStatus::Parked);
        assert_eq!(d.run.counts.total, 10);
        assert!(d.run.ended.is_some());
        assert_eq!(d.messages.len(), 2);
        assert_eq!(d.messages[0].code, "pending-mapping");
        assert_eq!(d.messages[0].location.as_deref(), Some("line 3"));
        assert_eq!(d.messages[1].level, Level::Info);
        assert!(s.read(|c| get(c, id + 1)).unwrap().is_none());
    }

    #[test]
    fn finish_twice_or_as_running_is_refused() {
        let (_d, mut s) = store();
        let id = s.write(|tx| start(tx, "check", None, None)).unwrap();
        let err = s
            .write(|tx| finish(tx, id, RunStatus::Running, Counts::default()))
            .unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)));
        s.write(|tx| finish(tx, id, RunStatus::Ok, Counts::default()))
            .unwrap();
        let err = s
            .write(|tx| finish(tx, id, RunStatus::Failed, Counts::default()))
            .unwrap_err();
        assert!(err.to_string().contains("already finished"), "{err}");
        let err = s
            .write(|tx| finish(tx, 77, RunStatus::Ok, Counts::default()))
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }));
        let err = s
            .write(|tx| message(tx, 77, Level::Info, "x", None, "y"))
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound { .. }));
    }

    #[test]
    fn list_filters_and_orders_newest_first() {
        let (_d, mut s) = store();
        let a = s
            .write(|tx| start(tx, "import-sales", Some("l1"), None))
            .unwrap();
        let b = s
            .write(|tx| start(tx, "export-catalogue", Some("l2"), None))
            .unwrap();
        let c = s
            .write(|tx| start(tx, "import-sales", Some("l2"), None))
            .unwrap();
        s.write(|tx| finish(tx, a, RunStatus::Failed, Counts::default()))
            .unwrap();
        let ids = |f: Filter<'_>| -> Vec<i64> {
            s.read(|conn| list(conn, &f))
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect()
        };
        assert_eq!(ids(Filter::default()), vec![c, b, a]);
        assert_eq!(
            ids(Filter {
                kind: Some("import-sales"),
                ..Filter::default()
            }),
            vec![c, a]
        );
        assert_eq!(
            ids(Filter {
                link: Some("l2"),
                status: Some(RunStatus::Running),
                ..Filter::default()
            }),
            vec![c, b]
        );
        assert_eq!(
            ids(Filter {
                status: Some(RunStatus::Failed),
                ..Filter::default()
            }),
            vec![a]
        );
        assert_eq!(
            ids(Filter {
                limit: Some(1),
                ..Filter::default()
            }),
            vec![c]
        );
        assert!(
            ids(Filter {
                since: Some("9999-01-01T00:00:00.000000Z"),
                ..Filter::default()
            })
            .is_empty()
        );
    }
}
