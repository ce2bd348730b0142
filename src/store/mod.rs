//! The SQLite store: one database per institution.
//!
//! [`Store::open`] creates or opens the database of one institution in one role,
//! sets the pragmas that make a commit durable (WAL, `synchronous=FULL`), runs the
//! schema migrations ([`schema::MIGRATIONS`]) and refuses a database that belongs
//! to another institution or role. All writes go through [`Store::write`] (one
//! `BEGIN IMMEDIATE` transaction, committed only when the closure succeeds); reads
//! through [`Store::read`] (one consistent snapshot). The typed bookkeeping APIs of
//! the exchange live in [`journal`] (which file of which link was applied) and
//! [`runs`] (the execution log). This module holds no business rule: what a file
//! does to the data is decided by `crate::domain`.

pub mod in_hand;
pub mod journal;
pub mod mapping;
pub mod runs;
pub mod schema;
mod schema_compact;
mod schema_counts;
mod schema_history;
mod schema_ledger;
mod schema_logical;
mod schema_mapping;
mod schema_orders;
mod schema_prices;
mod schema_tickets;
pub mod stats;
pub mod wait;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::ident::{Code, IdentError};

/// How long a writer waits for another connection's lock before giving up,
/// unless its process waits with a [`wait::Patience`] (a command).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A SQLite error in words. Its busy timeout gets words of its own: a
/// writer gave up after [`wait::limit`] because another connection held
/// the store's write lock (the daemon applying a large file holds it for
/// as long as that takes); what to do is wait, not fix anything.
pub fn sql_words(e: &rusqlite::Error) -> String {
    if is_busy(e) {
        busy_words("held its write lock")
    } else {
        e.to_string()
    }
}

/// The words of a store that stayed busy: another process `did` for
/// longer than this process waits ([`wait::limit`]).
fn busy_words(did: &str) -> String {
    format!(
        "the store is busy: another process {did} for over {} (the daemon applying a large file, or another stxd command); this step wrote nothing, try again once that is done",
        wait::words(wait::limit())
    )
}

/// SQLite's busy timeout ran out: another connection held the write lock
/// all along. In WAL mode only a transaction's start waits for it, so the
/// transaction never began.
pub fn is_busy(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
}

/// `PRAGMA application_id` of every stxd database ("STXD" in ASCII), so a
/// database of another program is never migrated by mistake.
pub const APPLICATION_ID: i32 = 0x5354_5844;

/// The roles of a link, from the vocabulary at the bottom of the layers.
pub use crate::exchange::Role;

/// Why the store refused or failed; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid institution code for the store: {0}")]
    InstitutionCode(IdentError),
    #[error(
        "cannot create the database {path}: its folder {parent} does not exist; create it or fix the store path"
    )]
    NoFolder { path: PathBuf, parent: PathBuf },
    #[error(
        "cannot open the database {path}: {source}; check the path, its permissions and the space left on its disk"
    )]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "{path} is not an stxd database (application id {found:#x}); point the configuration at the institution's own database"
    )]
    NotStxd { path: PathBuf, found: i32 },
    #[error(
        "cannot set up the database {path}: {what}; put the database on a local file system that supports WAL"
    )]
    Pragma { path: PathBuf, what: String },
    #[error(
        "the database {path} has schema version {found}, newer than this stxd knows ({known}); upgrade stxd"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error(
        "migration {version} ({name}) of {path} failed: {source}; the database was left at version {previous}"
    )]
    Migration {
        path: PathBuf,
        version: i64,
        previous: i64,
        name: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the database {path} belongs to institution {found}, not {expected}; point the configuration at {expected}'s own database"
    )]
    WrongInstitution {
        path: PathBuf,
        found: String,
        expected: String,
    },
    #[error(
        "the database {path} of institution {institution} is a {found}'s database, not a {expected}'s; fix the role in the configuration or use another database"
    )]
    WrongRole {
        path: PathBuf,
        institution: String,
        found: Role,
        expected: Role,
    },
    #[error(
        "file {kind} {direction} sequence {sequence} of link {link} is already journaled as {state}; look it up before recording it"
    )]
    JournalDuplicate {
        link: String,
        kind: String,
        direction: String,
        sequence: u64,
        state: String,
    },
    #[error("{what} {id} does not exist")]
    NotFound { what: &'static str, id: i64 },
    #[error("invalid value: {0}")]
    Invalid(String),
    #[error("unexpected value in the database: {0}; the database may have been edited by hand")]
    Corrupt(String),
    #[error("database error: {}", sql_words(.0))]
    Sql(#[from] rusqlite::Error),
    /// Another process kept a change of the store in hand (between its
    /// commit and its file step, `in_hand`) past [`wait::limit`].
    #[error("{}", busy_words("was applying or placing a file of it"))]
    InHand,
}

/// The database of one institution, opened in one role. Holds the single writer
/// connection; wrap it in a mutex to share it between threads.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
    institution: Code,
    role: Role,
}

impl StoreError {
    /// The store stayed busy past [`wait::limit`] ([`is_busy`], [`StoreError::InHand`]).
    pub fn is_busy(&self) -> bool {
        match self {
            StoreError::Sql(e) => is_busy(e),
            StoreError::InHand => true,
            _ => false,
        }
    }
}

impl Store {
    /// Opens (creating when absent) the database at `path` for `institution` in
    /// `role`, migrating it to the current schema.
    pub fn open(path: &Path, institution: &str, role: Role) -> Result<Store, StoreError> {
        let code = Code::new(institution).map_err(StoreError::InstitutionCode)?;
        let owned = path.to_path_buf();
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
            && !parent.is_dir()
        {
            return Err(StoreError::NoFolder {
                path: owned,
                parent: parent.to_path_buf(),
            });
        }
        let open_err = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        conn.set_prepared_statement_cache_capacity(128);

        let app_id: i32 = conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .map_err(open_err)?;
        if app_id != 0 && app_id != APPLICATION_ID {
            return Err(StoreError::NotStxd {
                path: owned,
                found: app_id,
            });
        }
        set_pragmas(&conn, path)?;
        schema::migrate(&mut conn, path)?;

        let mut store = Store {
            conn,
            path: owned,
            institution: code,
            role,
        };
        store.claim_institution()?;
        Ok(store)
    }

    /// Records the institution and role on a new database; checks them on an
    /// existing one. An existing one is only read: opening a store never
    /// waits for another process's write (the daemon applying a large file
    /// holds the lock for as long as that takes). A new one is claimed in
    /// one write transaction, so two processes creating the same database
    /// at once cannot both claim it.
    fn claim_institution(&mut self) -> Result<(), StoreError> {
        let (code, role) = (self.institution.to_string(), self.role);
        let select = "SELECT code, role FROM institution WHERE id = 1";
        let claimed = self.read(|conn| -> Result<Option<(String, String)>, StoreError> {
            Ok(conn
                .query_row(select, [], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?)
        })?;
        let (found, found_role) = match claimed {
            Some(claimed) => claimed,
            None => self.write(|tx| -> Result<(String, String), StoreError> {
                tx.execute(
                    "INSERT INTO institution (id, code, role, created) VALUES (1, ?1, ?2, ?3)
                     ON CONFLICT (id) DO NOTHING",
                    (code.as_str(), role.as_str(), now()),
                )?;
                Ok(tx.query_row(select, [], |r| Ok((r.get(0)?, r.get(1)?)))?)
            })?,
        };
        if found != self.institution.as_str() {
            return Err(StoreError::WrongInstitution {
                path: self.path.clone(),
                found,
                expected: code,
            });
        }
        let found_role =
            Role::from_str(&found_role).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        if found_role != self.role {
            return Err(StoreError::WrongRole {
                path: self.path.clone(),
                institution: found,
                found: found_role,
                expected: self.role,
            });
        }
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the store with everything in its main file: the write-ahead
    /// log checkpointed into it (synced) and removed, so that the file alone
    /// can be renamed into place (a store built under a temporary name).
    pub fn close(self) -> Result<(), StoreError> {
        let path = self.path;
        let err = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(err)?;
        self.conn.close().map_err(|(_, e)| err(e))
    }

    pub fn institution(&self) -> &Code {
        &self.institution
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction and commits only when it
    /// returns `Ok`; on `Err` (or a panic) everything it wrote is rolled back.
    ///
    /// When another process holds the write lock, the transaction's start
    /// waits [`BUSY_TIMEOUT`], or, in a process that waits patiently (a
    /// command, [`wait`]), up to its limit, telling it every [`wait::STEP`].
    /// A start that gives up began nothing.
    pub fn write<T, E>(&mut self, f: impl FnOnce(&Transaction<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let sql = |e| E::from(StoreError::Sql(e));
        let patience = wait::patience();
        let started = std::time::Instant::now();
        let tx = loop {
            if let Some(p) = patience {
                let left = p.limit.saturating_sub(started.elapsed());
                self.conn.busy_timeout(left.min(wait::STEP)).map_err(sql)?;
            }
            let e = match self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
            {
                Ok(tx) => break tx,
                Err(e) => e,
            };
            match patience {
                Some(p) if is_busy(&e) && started.elapsed() < p.limit => {
                    (p.notice)(&self.path, started.elapsed());
                }
                Some(_) => {
                    self.conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
                    return Err(sql(e));
                }
                None => return Err(sql(e)),
            }
        };
        if patience.is_some() {
            // The transaction's own statements wait as any other writer's.
            tx.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
        }
        let value = f(&tx)?;
        tx.commit().map_err(sql)?;
        Ok(value)
    }

    /// Runs `f` on one consistent snapshot (a deferred transaction that is
    /// rolled back at the end, so a read can never leave a write behind).
    pub fn read<T, E>(&self, f: impl FnOnce(&Connection) -> Result<T, E>) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(|e| E::from(StoreError::Sql(e)))?;
        let value = f(&tx);
        // A read-only transaction has nothing to undo; a failure to end it
        // surfaces on the next statement anyway.
        let _ = tx.rollback();
        value
    }
}

/// Opens an existing stxd database read-only, for reports that must not
/// write (nor migrate, nor create) while a daemon writes it: WAL lets this
/// connection read consistent snapshots beside the writer. Refuses a file of
/// another program and a schema newer than this build.
pub fn open_read_only(path: &Path) -> Result<Connection, StoreError> {
    use rusqlite::OpenFlags;
    let open_err = |source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    };
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(open_err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    let app_id: i32 = conn
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(open_err)?;
    if app_id != APPLICATION_ID {
        return Err(StoreError::NotStxd {
            path: path.to_path_buf(),
            found: app_id,
        });
    }
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(open_err)?;
    if version > schema::latest() {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found: version,
            known: schema::latest(),
        });
    }
    Ok(conn)
}

fn set_pragmas(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    let pragma_err = |what: String| StoreError::Pragma {
        path: path.to_path_buf(),
        what,
    };
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(|e| pragma_err(format!("journal_mode=WAL failed: {e}")))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(pragma_err(format!(
            "journal_mode=WAL was refused (the mode is {mode})"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| pragma_err(format!("synchronous=FULL failed: {e}")))?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(|e| pragma_err(format!("foreign_keys=ON failed: {e}")))?;
    let fk: i64 = conn
        .pragma_query_value(None, "foreign_keys", |r| r.get(0))
        .map_err(|e| pragma_err(format!("foreign_keys query failed: {e}")))?;
    if fk != 1 {
        return Err(pragma_err("foreign keys cannot be enabled".to_owned()));
    }
    Ok(())
}

/// The current time as stored: RFC 3339 in UTC with microseconds, fixed width so
/// text order is time order.
pub fn now() -> String {
    format_timestamp(time::OffsetDateTime::now_utc())
}

/// Formats a timestamp the way [`now`] does.
pub fn format_timestamp(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// An instant as the ticket table keeps it: microseconds since 1970-01-01
/// UTC (8 bytes instead of 27 characters of text).
pub fn unix_micros(t: time::OffsetDateTime) -> i64 {
    // i64 microseconds span ±292,000 years; a time parsed from a file has a
    // four-digit year.
    i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

/// Formats microseconds since 1970-01-01 UTC the way [`now`] does; `None`
/// beyond the years `time` can represent.
pub fn format_unix_micros(micros: i64) -> Option<String> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .ok()
        .map(format_timestamp)
}

/// The query planner's steps for `sql` (`EXPLAIN QUERY PLAN`'s detail
/// column): a test of a read that must find its rows by index reads it here.
#[cfg(test)]
pub(crate) fn query_plan(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Vec<String> {
    conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .unwrap()
        .query_map(params, |r| r.get(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_existing_store_opens_and_checks_its_owner_beside_another_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sqlite");
        drop(Store::open(&path, "TOURISM", Role::Distributor).unwrap());
        let other = Connection::open(&path).unwrap();
        other
            .execute_batch("BEGIN IMMEDIATE; UPDATE institution SET created = created;")
            .unwrap();
        let store = Store::open(&path, "TOURISM", Role::Distributor).unwrap();
        assert_eq!(store.institution().as_str(), "TOURISM");
        let wrong = Store::open(&path, "TOURISM", Role::Manager).unwrap_err();
        assert!(matches!(wrong, StoreError::WrongRole { .. }), "{wrong}");
        let wrong = Store::open(&path, "OPERA", Role::Distributor).unwrap_err();
        assert!(
            matches!(wrong, StoreError::WrongInstitution { .. }),
            "{wrong}"
        );
        // A writer still waits for the lock, and says why it gave up.
        let mut store = store;
        store.conn.busy_timeout(Duration::from_millis(50)).unwrap();
        let busy = store
            .write(|tx| -> Result<(), StoreError> {
                tx.execute("UPDATE institution SET created = created", [])?;
                Ok(())
            })
            .unwrap_err();
        assert!(busy.to_string().contains("the store is busy"), "{busy}");
        other.execute_batch("ROLLBACK").unwrap();
        store
            .write(|tx| -> Result<(), StoreError> {
                tx.execute("UPDATE institution SET created = created", [])?;
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn unix_micros_round_trip_through_the_stored_text() {
        let t = time::macros::datetime!(2026-11-30 09:15:00.250001 UTC);
        assert_eq!(unix_micros(t), 1_796_030_100_250_001);
        assert_eq!(
            format_unix_micros(1_796_030_100_250_001).as_deref(),
            Some("2026-11-30T09:15:00.250001Z")
        );
        assert_eq!(format_unix_micros(i64::MAX), None);
    }

    #[test]
    fn role_round_trips() {
        for r in [Role::Manager, Role::Distributor] {
            assert_eq!(Role::from_str(&r.to_string()).ok(), Some(r));
        }
        assert!(Role::from_str("Manager").is_err());
        assert_eq!(
            serde_json::to_string(&Role::Distributor).unwrap(),
            "\"distributor\""
        );
    }

    #[test]
    fn timestamps_are_fixed_width_utc() {
        let t = time::macros::datetime!(2037-01-15 20:00:00.5 +01:00);
        assert_eq!(format_timestamp(t), "2037-01-15T19:00:00.500000Z");
        assert_eq!(now().len(), 27);
    }

    /// The SQLite compiled in carries the build settings of
    /// `.cargo/config.toml`: no allocation statistics and no page cache
    /// shared by all connections, each behind a global lock (see
    /// docs/performance.md, "SQLite's build"). Built without them, from a
    /// folder whose cargo settings are not this repository's, stxd works
    /// but is slower; this says so.
    #[test]
    fn the_bundled_sqlite_is_built_without_global_memory_bookkeeping() {
        let conn = Connection::open_in_memory().unwrap();
        let options: Vec<String> = conn
            .prepare("PRAGMA compile_options")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "SQLite keeps allocation statistics: {options:?}"
        );
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "SQLite shares one page cache group between connections: {options:?}"
        );
    }

    #[test]
    fn open_refuses_missing_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope").join("x.db");
        let err = Store::open(&path, "OPERA", Role::Manager).unwrap_err();
        assert!(matches!(err, StoreError::NoFolder { .. }), "{err}");
        assert!(err.to_string().contains("does not exist"));
    }

    #[test]
    fn open_refuses_bad_institution_code() {
        let dir = tempfile::tempdir().unwrap();
        let err =
            Store::open(&dir.path().join("x.db"), "TOO LONG CODE", Role::Manager).unwrap_err();
        assert!(matches!(err, StoreError::InstitutionCode(_)), "{err}");
    }

    #[test]
    fn open_refuses_a_foreign_sqlite_database() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.db");
        {
            let c = Connection::open(&path).unwrap();
            c.pragma_update(None, "application_id", 42).unwrap();
            c.execute_batch("CREATE TABLE t (x)").unwrap();
        }
        let err = Store::open(&path, "OPERA", Role::Manager).unwrap_err();
        assert!(
            matches!(err, StoreError::NotStxd { found: 42, .. }),
            "{err}"
        );
    }

    #[test]
    fn read_cannot_leave_a_write_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("x.db"), "OPERA", Role::Manager).unwrap();
        store
            .read(|c| -> Result<(), StoreError> {
                c.execute(
                    "INSERT INTO season (id, code, name, start_date, end_date) VALUES (1, 'S', 'S', '2026-01-01', '2026-02-01')",
                    [],
                )?;
                Ok(())
            })
            .unwrap();
        let n: i64 = store
            .read(|c| -> Result<i64, StoreError> {
                Ok(c.query_row("SELECT count(*) FROM season", [], |r| r.get(0))?)
            })
            .unwrap();
        assert_eq!(n, 0);
    }
}
