//! `stxd status`: what each link did last and what is waiting, for ops.
//!
//! Takes a validated [`Config`] and the time to judge "the last 24 hours"
//! by; returns a [`Status`]: per link and side served by this config, the
//! last file in and out per kind (from the file journal), pending mappings,
//! parked files, the files in `error/` now (however old: a refused file
//! waits there for ops until removed), errors of the last 24 hours (failed
//! runs, and files put in `error/`), files waiting in the inbox and outbox, whether a daemon holds
//! the state lock, and the next scheduled runs. It only reads: stores are
//! opened read-only (WAL lets it read beside a running daemon), a missing
//! store is reported, never created, and the daemon's lock is probed
//! ([`state_lock::probe`]) without being held.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;
use time::OffsetDateTime;

use crate::config::{Config, Link, Transport};
use crate::exchange::{FileName, Part};
use crate::format::Kind;
use crate::state_lock::{self, Probe};
use crate::store::journal::Direction;
use crate::store::{self, Role, StoreError};

/// How far back errors are reported.
pub const ERROR_WINDOW: time::Duration = time::Duration::hours(24);

/// Everything `stxd status` shows. Serialised as the stable `--json` object.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// When this status was taken (RFC 3339, UTC).
    pub generated: String,
    pub state_dir: PathBuf,
    pub daemon: DaemonState,
    pub links: Vec<LinkStatus>,
    /// The next runs of the configured schedules, soonest first.
    pub next_runs: Vec<NextRun>,
}

/// Whether a daemon holds `<state_dir>/stxd.lock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DaemonState {
    pub running: bool,
    /// The holder's pid, as it wrote it in the lock file.
    pub pid: Option<u32>,
    /// Why the lock could not be probed (then `running` is false).
    pub problem: Option<String>,
    /// The file the running daemon has been reading for more than a second,
    /// its store locked until it is applied ([`crate::reading`]).
    pub reading: Option<crate::reading::Reading>,
    /// The files the running daemon tries again later after a failure
    /// ([`crate::retrying`]).
    pub retrying: Vec<crate::retrying::RetryingFile>,
}

/// One side of one link served by this config.
#[derive(Debug, Clone, Serialize)]
pub struct LinkStatus {
    pub link: String,
    pub side: Role,
    pub institution: String,
    /// `local` or `sftp`.
    pub transport: &'static str,
    /// Why the store could not be read (the store-based fields are then empty).
    pub problem: Option<String>,
    /// The last file received, per kind this side receives.
    pub last_in: Vec<LastFile>,
    /// The last file sent, per kind this side sends.
    pub last_out: Vec<LastFile>,
    /// Mappings waiting to be filled (distributor side only).
    pub pending_mappings: Option<u64>,
    /// Complete files waiting in the inbox.
    pub inbox: Folder,
    /// Inbox files that wait for something, and what: a missing earlier
    /// sequence, or their kind's apply window.
    pub held: Vec<Held>,
    /// Files waiting for mappings in `parked/`.
    pub parked: Folder,
    /// Files published and not yet taken by the peer (or the transport).
    pub outbox: Folder,
    /// The refused files in `error/` now, whenever they were put there:
    /// each waits for ops (read its `.reason`, then remove it).
    pub error: Folder,
    /// What needs someone now: the files in `error/` and in `quarantine/`,
    /// plus the inbox files held (a missing earlier sequence, a setup to
    /// fix, an apply window…).
    pub attention: usize,
    pub errors_24h: Errors,
    /// Stray, foreign and misrouted files set aside from the inbox into
    /// `quarantine/`, with their reasons (until `stxd retry` or ops remove
    /// them).
    pub quarantine: Vec<SetAside>,
}

/// A file set aside into `quarantine/`, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetAside {
    /// The manifest's name in `quarantine/` (an archive suffix included).
    pub file: String,
    /// The stable code: unknown-link, other-link, wrong-folder,
    /// sequence-zero.
    pub code: Option<String>,
    pub reason: Option<String>,
    /// When it was set aside (RFC 3339, UTC).
    pub at: Option<String>,
}

/// The last journaled file of a kind and direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LastFile {
    pub kind: &'static str,
    /// `None` when no file of this kind went this way yet.
    pub file: Option<JournaledFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JournaledFile {
    pub sequence: u64,
    pub name: String,
    /// applied, parked, ignored, rejected (in); prepared, published (out).
    pub state: String,
    /// When it reached that state.
    pub time: String,
}

/// The manifests in a folder.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Folder {
    pub path: PathBuf,
    pub count: usize,
    pub files: Vec<String>,
    /// Other files stxd never takes from this folder: a payload without
    /// its manifest, a name that is not a manifest name (`notes.txt`).
    /// Dot-names (files being written) and folders are not listed.
    pub others: Vec<String>,
    /// Why the folder could not be listed.
    pub problem: Option<String>,
}

/// An inbox file that waits, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Held {
    pub file: String,
    pub reason: String,
}

/// What went wrong in the window.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Errors {
    /// Failed runs on this link (rejected files, failed exports), newest first.
    pub runs: Vec<FailedRun>,
    /// Manifests whose `.reason` was written into `error/` in the window.
    pub files: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedRun {
    pub run: i64,
    /// import-catalogue, export-sales…
    pub kind: String,
    pub file: Option<String>,
    pub started: String,
    /// The first error message's code and text.
    pub code: Option<String>,
    pub reason: Option<String>,
}

/// One upcoming run of a schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NextRun {
    pub job: String,
    pub link: String,
    /// RFC 3339, UTC.
    pub at: String,
}

/// Takes the status of every link of `config` (or only `link`), judging
/// "the last 24 hours" from `now`. Errors only for an unknown link; a store
/// or folder that cannot be read is reported in the result.
pub fn collect(config: &Config, link: Option<&str>, now: OffsetDateTime) -> Result<Status, String> {
    if let Some(name) = link {
        config.require_link(name)?;
    }
    let links = config
        .served(link)
        .map(|(l, inst, side)| link_status(config, l, side, &inst.code, now))
        .collect();
    let next_runs: Vec<NextRun> = crate::app::next_runs(config, now)
        .into_iter()
        .map(|r| NextRun {
            job: r.job,
            link: r.link,
            at: store::format_timestamp(r.at),
        })
        .collect();
    Ok(Status {
        generated: store::format_timestamp(now),
        state_dir: config.state_dir.clone(),
        daemon: daemon_state(&config.state_dir),
        links,
        next_runs,
    })
}

fn link_status(
    config: &Config,
    link: &Link,
    side: Role,
    institution: &crate::ident::Code,
    now: OffsetDateTime,
) -> LinkStatus {
    let since = now - ERROR_WINDOW;
    let folders = link.folders(side);
    let mut status = LinkStatus {
        link: link.name.clone(),
        side,
        institution: institution.to_string(),
        transport: match link.transport {
            Transport::Local { .. } => "local",
            Transport::Sftp { .. } => "sftp",
        },
        problem: None,
        last_in: Vec::new(),
        last_out: Vec::new(),
        pending_mappings: None,
        inbox: folder(&folders.inbox),
        held: Vec::new(),
        parked: folder(&folders.parked),
        outbox: folder(&folders.outbox),
        error: error_folder(&folders.error),
        attention: 0,
        errors_24h: Errors {
            runs: Vec::new(),
            files: reasons_since(&folders.error, since),
        },
        quarantine: set_aside(&folders.quarantine),
    };
    let path = config.store_path(institution);
    if !path.exists() {
        status.problem = Some(format!(
            "no store yet at {}: run `stxd check` or start the daemon",
            path.display()
        ));
        return status;
    }
    let read = store::open_read_only(&path).and_then(|conn| {
        read_store(&conn, link, side, since, &mut status)?;
        status.held = held(&conn, config, link, side, &status.inbox.files, now)?;
        Ok(())
    });
    if let Err(e) = read {
        status.problem = Some(format!("cannot read the store: {e}"));
    }
    status.attention = status.error.count + status.quarantine.len() + status.held.len();
    status
}

fn read_store(
    conn: &Connection,
    link: &Link,
    side: Role,
    since: OffsetDateTime,
    status: &mut LinkStatus,
) -> Result<(), StoreError> {
    // One snapshot for every query.
    let tx = conn.unchecked_transaction()?;
    for kind in Kind::ALL {
        let direction = if kind.sender() == side {
            Direction::Out
        } else {
            Direction::In
        };
        let last = LastFile {
            kind: kind.as_str(),
            file: last_file(&tx, &link.name, kind, direction)?,
        };
        match direction {
            Direction::In => status.last_in.push(last),
            Direction::Out => status.last_out.push(last),
        }
    }
    if side == Role::Distributor {
        let n: i64 = tx
            .prepare_cached(
                "SELECT count(*) FROM mapping WHERE manager = ?1 AND status = 'pending'",
            )?
            .query_row([link.manager.as_str()], |r| r.get(0))?;
        status.pending_mappings = Some(u64::try_from(n).unwrap_or(0));
    }
    status.errors_24h.runs = failed_runs(&tx, &link.name, &store::format_timestamp(since))?;
    Ok(())
}

/// Why the inbox's files of this side wait, if they do: an earlier
/// sequence missing (the daemon holds the file until it comes), a setup
/// the next file needs and the store lacks, or an apply window of their
/// kind (`[[schedule]] job = "apply-<kind>"`).
fn held(
    conn: &Connection,
    config: &Config,
    link: &Link,
    side: Role,
    files: &[String],
    now: OffsetDateTime,
) -> Result<Vec<Held>, StoreError> {
    let mut out = Vec::new();
    for file in files {
        let Ok(crate::exchange::FileName {
            link: name,
            kind,
            sequence: seq,
            ..
        }) = crate::exchange::FileName::parse_manifest(file)
        else {
            continue;
        };
        if name != link.name || kind.sender() == side {
            continue;
        }
        let expected = crate::store::journal::next_in(conn, &link.name, kind)?;
        let reason = if seq > expected {
            Some(format!(
                "waits for {kind} sequence {expected}, not received yet (sequence gap)"
            ))
        } else if let Some(problem) = unready(conn, link, kind, file) {
            Some(format!("held for setup: {problem}"))
        } else {
            crate::schedule::apply_window(&config.schedules, &link.name, kind, now).map(|next| {
                crate::app::WindowHeld {
                    file: file.into(),
                    link: link.name.clone(),
                    kind,
                    next,
                }
                .reason()
            })
        };
        if let Some(reason) = reason {
            out.push(Held {
                file: file.clone(),
                reason,
            });
        }
    }
    Ok(out)
}

/// Why the store is not ready to apply the next file of `kind` (a sales
/// file at a manager whose booking setup is incomplete), in the words the
/// apply would hold it with; `None` when ready.
fn unready(conn: &Connection, link: &Link, kind: Kind, file: &str) -> Option<String> {
    if kind != Kind::Sales {
        return None;
    }
    let ctx = crate::domain::reintegration::Context {
        link: &link.name,
        login: &link.login,
        distributor: link.distributor.as_str(),
        file,
        run: 0,
    };
    match crate::domain::reintegration::setup(conn, &ctx) {
        Err(e @ crate::domain::DomainError::Unready { .. }) => Some(e.to_string()),
        _ => None,
    }
}

/// A link's file of a kind and direction that changed last (by index:
/// `file_journal_last`, migration 19).
const LAST_FILE: &str = "SELECT sequence, file_name, state, updated FROM file_journal
     WHERE link = ?1 AND kind = ?2 AND direction = ?3
     ORDER BY updated DESC, sequence DESC LIMIT 1";

fn last_file(
    conn: &Connection,
    link: &str,
    kind: Kind,
    direction: Direction,
) -> Result<Option<JournaledFile>, StoreError> {
    let row = conn
        .prepare_cached(LAST_FILE)?
        .query_row((link, kind.as_str(), direction.as_str()), |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .optional()?;
    row.map(|(sequence, name, state, time)| {
        let sequence = u64::try_from(sequence)
            .map_err(|_| StoreError::Corrupt(format!("journal sequence {sequence}")))?;
        Ok(JournaledFile {
            sequence,
            name,
            state,
            time,
        })
    })
    .transpose()
}

fn failed_runs(conn: &Connection, link: &str, since: &str) -> Result<Vec<FailedRun>, StoreError> {
    let mut st = conn.prepare_cached(
        "SELECT r.id, r.kind, r.file, r.started,
                (SELECT code FROM run_message m WHERE m.run = r.id AND m.level = 'error' ORDER BY seq LIMIT 1),
                (SELECT text FROM run_message m WHERE m.run = r.id AND m.level = 'error' ORDER BY seq LIMIT 1)
         FROM run r
         WHERE r.link = ?1 AND r.status = 'failed' AND r.started >= ?2
         ORDER BY r.started DESC, r.id DESC LIMIT 100",
    )?;
    let rows = st.query_map((link, since), |r| {
        Ok(FailedRun {
            run: r.get(0)?,
            kind: r.get(1)?,
            file: r.get(2)?,
            started: r.get(3)?,
            code: r.get(4)?,
            reason: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What the file journal says of a received manifest: its state and the
/// run that put it there (the console's Files page links each file to it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Received {
    /// applied, ignored, parked (the journal's state); refused (a file of
    /// `error/`).
    pub state: String,
    pub run: Option<i64>,
}

/// What the store says of the manifests in the folders of one link side,
/// each list in the order given; `None` for a name that is not a manifest
/// of the link or that the store does not know.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FileRuns {
    pub parked: Vec<Option<Received>>,
    pub error: Vec<Option<Received>>,
    pub done: Vec<Option<Received>>,
}

/// [`FileRuns`] of `side` of `link` for these names of `parked/`,
/// `error/` and `done/` (as they sit there, an archive suffix allowed),
/// read in one snapshot of the side's store. A parked or done file is read
/// from the file journal; a refused file from the newest failed run of its
/// name, since it keeps no journal row (its sequence stays free for the
/// good copy).
pub fn file_runs(
    config: &Config,
    link: &Link,
    side: Role,
    parked: &[String],
    error: &[String],
    done: &[String],
) -> Result<FileRuns, String> {
    let inst = match side {
        Role::Manager => &link.manager,
        Role::Distributor => &link.distributor,
    };
    let read = |e: StoreError| format!("cannot read the store of {inst}: {e}");
    let conn = store::open_read_only(&config.store_path(inst)).map_err(read)?;
    let tx = conn.unchecked_transaction().map_err(|e| read(e.into()))?;
    // The manifests of this link among `names`, each looked up by `find`.
    let each = |names: &[String],
                find: &dyn Fn(&FileName) -> Result<Option<Received>, StoreError>|
     -> Result<Vec<Option<Received>>, String> {
        names
            .iter()
            .map(|name| match crate::inbound::archive::unslotted(name) {
                Some((n, _)) if n.link == link.name && n.part == Part::Manifest => {
                    find(&n).map_err(read)
                }
                _ => Ok(None),
            })
            .collect()
    };
    let journaled = |n: &FileName| -> Result<Option<Received>, StoreError> {
        let entry = store::journal::lookup(&tx, &link.name, n.kind, Direction::In, n.sequence)?;
        Ok(entry.map(|e| Received {
            state: e.state.to_string(),
            run: e.run_id,
        }))
    };
    let refused = |n: &FileName| -> Result<Option<Received>, StoreError> {
        Ok(failed_run_of(&tx, &link.name, n)?.map(|run| Received {
            state: "refused".to_owned(),
            run: Some(run),
        }))
    };
    Ok(FileRuns {
        parked: each(parked, &journaled)?,
        error: each(error, &refused)?,
        done: each(done, &journaled)?,
    })
}

/// The newest failed run of a link (`?1`) that handled a file, named by
/// its manifest or its payload (`?2`, `?3`); by index: `run_failed_file`,
/// migration 19.
const FAILED_RUN_OF: &str =
    "SELECT id FROM run WHERE link = ?1 AND file IN (?2, ?3) AND status = 'failed'
     ORDER BY id DESC LIMIT 1";

/// The newest failed run of `link` that handled the pair of `file` (a run
/// names the manifest when the refusal came before the payload was read,
/// the payload after).
fn failed_run_of(
    conn: &Connection,
    link: &str,
    file: &FileName,
) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .prepare_cached(FAILED_RUN_OF)?
        .query_row(
            (
                link,
                file.to_manifest().to_string(),
                file.to_payload().to_string(),
            ),
            |r| r.get(0),
        )
        .optional()?)
}

/// The manifests in `dir` (a `done/` folder: an archive suffix allowed),
/// newest first by modification time, then by name; a missing folder has
/// none. Payloads, `.reason` files and dot-names are not listed.
pub fn archived_newest_first(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(SystemTime, String)> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().to_str()?.to_owned();
            let (n, _) = crate::inbound::archive::unslotted(&name)?;
            if n.part != Part::Manifest || name.starts_with('.') {
                return None;
            }
            let modified = e.metadata().ok()?.modified().ok()?;
            Some((modified, name))
        })
        .collect();
    found.sort_unstable_by(|a, b| b.cmp(a));
    found.into_iter().map(|(_, n)| n).collect()
}

/// The complete files waiting in `dir` (a missing folder is empty).
fn folder(dir: &Path) -> Folder {
    let mut out = Folder {
        path: dir.to_owned(),
        ..Folder::default()
    };
    match crate::app::waiting_files(dir) {
        Ok(files) => {
            out.count = files.len();
            out.files = files
                .iter()
                .map(|f| crate::inbound::claim::display_name(f))
                .collect();
            out.others = others(dir, &out.files);
        }
        Err(e) => out.problem = Some(format!("cannot list {}: {e}", dir.display())),
    }
    out
}

/// The regular files of `dir` that are neither a waiting manifest nor the
/// payload beside one, nor a dot-name: what sits there and is never taken.
/// Sorted; a folder that cannot be listed has none.
fn others(dir: &Path, manifests: &[String]) -> Vec<String> {
    let stems: Vec<&str> = manifests
        .iter()
        .filter_map(|m| m.strip_suffix(".stx"))
        .collect();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<String> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            if e.file_type().ok()?.is_dir() {
                return None;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            let stem = name.rsplit_once('.').map_or(name.as_str(), |(s, _)| s);
            let ours = name.starts_with('.') || manifests.contains(&name) || stems.contains(&stem);
            (!ours).then_some(name)
        })
        .collect();
    found.sort();
    found
}

/// The manifests in `error/` now, sorted (a missing folder is empty): the
/// `.reason` and payload beside each are not counted; anything else is
/// among `others`.
fn error_folder(dir: &Path) -> Folder {
    let mut out = Folder {
        path: dir.to_owned(),
        ..Folder::default()
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return out,
        Err(e) => {
            out.problem = Some(format!("cannot list {}: {e}", dir.display()));
            return out;
        }
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            e.file_type().ok()?.is_file().then_some(())?;
            e.file_name().into_string().ok()
        })
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    out.files = names
        .iter()
        .filter(|n| crate::exchange::FileName::parse_manifest(n).is_ok())
        .cloned()
        .collect();
    out.count = out.files.len();
    out.others = others(dir, &out.files)
        .into_iter()
        .filter(|n| {
            !n.strip_suffix(".reason")
                .is_some_and(|m| out.files.iter().any(|f| f == m))
        })
        .collect();
    out
}

/// The manifests of `error/` whose `.reason` was written at or after `since`.
fn reasons_since(dir: &Path, since: OffsetDateTime) -> Vec<String> {
    let since = SystemTime::from(since);
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(SystemTime, String)> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().into_string().ok()?;
            let manifest = name.strip_suffix(".reason")?.to_owned();
            if manifest.starts_with('.') {
                return None;
            }
            let meta = e.metadata().ok()?;
            let at = meta.modified().ok()?;
            (meta.is_file() && at >= since).then_some((at, manifest))
        })
        .collect();
    found.sort_by(|a, b| b.cmp(a));
    found.into_iter().map(|(_, n)| n).collect()
}

/// The files set aside in `dir`, read from their `.reason` files, oldest
/// first (a missing folder has none).
fn set_aside(dir: &Path) -> Vec<SetAside> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<SetAside> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            let name = e.file_name().into_string().ok()?;
            let manifest = name.strip_suffix(".reason")?.to_owned();
            if manifest.starts_with('.') || !e.file_type().ok()?.is_file() {
                return None;
            }
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            let field = |key: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(key))
                    .map(str::to_owned)
            };
            Some(SetAside {
                file: manifest,
                code: field("code: "),
                reason: field("reason: "),
                at: field("at: "),
            })
        })
        .collect();
    found.sort_by(|a, b| (&a.at, &a.file).cmp(&(&b.at, &b.file)));
    found
}

/// Whether a daemon holds `<state_dir>/stxd.lock`, probed without holding
/// it ([`state_lock::probe`]).
pub fn daemon_state(state_dir: &Path) -> DaemonState {
    match state_lock::probe(state_dir) {
        Probe::Free => DaemonState {
            running: false,
            pid: None,
            problem: None,
            reading: None,
            retrying: Vec::new(),
        },
        Probe::Held { pid } => DaemonState {
            running: true,
            pid,
            problem: None,
            reading: crate::reading::current(state_dir, pid, time::OffsetDateTime::now_utc()),
            retrying: crate::retrying::current(state_dir, pid),
        },
        Probe::Unknown { problem } => DaemonState {
            running: false,
            pid: None,
            problem: Some(problem),
            reading: None,
            retrying: Vec::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state_lock::lock as lock_state_dir;

    /// The two reads `stxd status` makes for each link find their rows by
    /// index, not by reading every file or run of the link: their cost
    /// does not grow with the store's history.
    #[test]
    fn a_links_last_file_and_a_files_failed_run_are_read_by_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("T.sqlite");
        drop(crate::store::Store::open(&path, "T", crate::store::Role::Manager).unwrap());
        let conn = crate::store::open_read_only(&path).unwrap();
        let plan = crate::store::query_plan(&conn, LAST_FILE, ("a-b", "SALES", "in"));
        assert_eq!(
            plan,
            [
                "SEARCH file_journal USING INDEX file_journal_last (link=? AND kind=? AND direction=?)"
            ]
        );
        let plan = crate::store::query_plan(&conn, FAILED_RUN_OF, ("a-b", "f.stx", "f.csv"));
        assert!(
            plan[0].starts_with("SEARCH run USING")
                && plan[0].ends_with("INDEX run_failed_file (link=? AND file=?)"),
            "{plan:?}"
        );
    }

    #[test]
    fn a_daemon_holding_the_lock_is_seen_with_its_pid_and_the_lock_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        assert_eq!(
            daemon_state(&state),
            DaemonState {
                running: false,
                pid: None,
                problem: None,
                reading: None,
                retrying: Vec::new(),
            }
        );
        let lock = lock_state_dir(&state).unwrap();
        let seen = daemon_state(&state);
        assert!(seen.running, "{seen:?}");
        assert_eq!(seen.pid, Some(std::process::id()));
        assert_eq!(seen.reading, None);
        // What the daemon (this process) says it is reading.
        let reading = crate::reading::Reading {
            pid: std::process::id(),
            file: "opera-tourism.SALES.00000001.csv".into(),
            pass: "parse".into(),
            percent: 40,
            read_bytes: 40,
            bytes: 100,
            seconds: 20,
            at: crate::store::now(),
        };
        crate::reading::write(&state, &reading).unwrap();
        assert_eq!(daemon_state(&state).reading, Some(reading));
        drop(lock);
        assert!(!daemon_state(&state).running);
        assert_eq!(daemon_state(&state).reading, None, "no daemon, no reading");
        // The probe left nothing held: a daemon can take the lock.
        lock_state_dir(&state).expect("lock free after probing");
    }

    fn temp_config(dir: &Path) -> Config {
        let text = format!(
            r#"
state_dir = "{d}/state"
[[institution]]
code = "OPERA"
role = "manager"
[[link]]
name = "opera-tourism"
manager = "OPERA"
distributor = "TOURISM"
login = "TOURISM_OPE@TOURISM"
secret_file = "{d}/s.key"
transport = {{ kind = "local", dir = "{d}/x" }}
"#,
            d = dir.display()
        );
        crate::config::parse(&text, "t").unwrap()
    }

    #[test]
    fn a_failed_run_counts_for_24_hours_judged_from_the_given_now() {
        let dir = tempfile::tempdir().unwrap();
        let config = temp_config(dir.path());
        let status = collect(&config, None, OffsetDateTime::now_utc()).unwrap();
        let [side] = status.links.as_slice() else {
            panic!("one side served: {status:?}")
        };
        assert!(side.problem.as_deref().unwrap().contains("no store yet"));
        assert!(
            !config.store_path(&config.institutions[0].code).exists(),
            "status creates nothing"
        );

        let inst = &config.institutions[0];
        let mut store = crate::app::open_store(&config, inst).unwrap();
        store
            .write(|tx| {
                crate::store::runs::failed(
                    tx,
                    "import-sales",
                    Some("opera-tourism"),
                    Some("opera-tourism_SALES_4.stx"),
                    "bad-hmac",
                    None,
                    "the signature does not match",
                )
            })
            .unwrap();
        drop(store);
        let now = OffsetDateTime::now_utc();
        let status = collect(&config, Some("opera-tourism"), now).unwrap();
        let side = &status.links[0];
        assert_eq!(side.problem, None);
        assert_eq!(side.side, Role::Manager);
        let [run] = side.errors_24h.runs.as_slice() else {
            panic!("one failed run: {side:?}")
        };
        assert_eq!(run.kind, "import-sales");
        assert_eq!(run.code.as_deref(), Some("bad-hmac"));
        assert_eq!(run.reason.as_deref(), Some("the signature does not match"));
        assert_eq!(side.pending_mappings, None, "manager side");
        let kinds: Vec<_> = side.last_in.iter().map(|l| l.kind).collect();
        assert_eq!(kinds, ["SALES"]);
        assert!(side.last_in[0].file.is_none());
        assert_eq!(side.last_out.len(), 3);

        let later = now + ERROR_WINDOW + time::Duration::minutes(1);
        let status = collect(&config, None, later).unwrap();
        assert!(
            status.links[0].errors_24h.runs.is_empty(),
            "out of the window"
        );

        let e = collect(&config, Some("nope"), now).unwrap_err();
        assert!(
            e.contains("not in the config (it has: opera-tourism)"),
            "{e}"
        );
    }

    #[test]
    fn reasons_are_counted_only_inside_the_window() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("l_SALES_3.stx.reason"), "x").unwrap();
        std::fs::write(dir.path().join("l_SALES_3.stx"), "x").unwrap();
        std::fs::write(dir.path().join(".tmp.reason"), "x").unwrap();
        let now = OffsetDateTime::now_utc();
        assert_eq!(
            reasons_since(dir.path(), now - ERROR_WINDOW),
            vec!["l_SALES_3.stx".to_owned()]
        );
        // Judged from a day and a minute later, it is out of the window.
        let later = now + ERROR_WINDOW + time::Duration::minutes(1);
        assert!(reasons_since(dir.path(), later - ERROR_WINDOW).is_empty());
        assert!(reasons_since(&dir.path().join("missing"), now).is_empty());
    }
}
