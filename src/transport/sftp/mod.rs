//! An SFTP share as a transport: one side's local outbox and inbox kept in
//! step with the folders of a share on the peer's server.
//!
//! Takes an [`Endpoint`] (who to reach, how to authenticate, which host key
//! to expect) and, per poll, a [`Job`]: the complete pairs waiting in the
//! local outbox (listed by the caller), the remote folders to push to and
//! pull from, and a name filter for the files this side receives. Returns
//! what moved ([`Moved`]) or an [`SftpError`] that says whether retrying can
//! help. It moves bytes and never interprets them: which names are files of
//! the link is the caller's filter; verifying and applying is the inbound
//! pipeline's job, on the local inbox.
//!
//! The rules (`docs/exactly-once.md`): a file is visible under its final
//! name only when complete (written under `.<name>.part`, synced, then
//! renamed or linked), payload first and manifest last; nothing is ever
//! overwritten (a final name holding the same bytes means "already done",
//! other bytes are an alert for a person); the remote original of a pulled
//! pair is removed only once the local pair is durable (the receiver's
//! journal is idempotent on digest, so a pair pulled twice applies once),
//! payload first and manifest last, and a manifest a crash left alone there
//! is removed once this side holds its pair; a pushed pair leaves the outbox
//! for `outbox/sent/` only once both remote files are in place. What each
//! crash point leaves and what the next poll does: `docs/crash-safety/sftp.md`.
//! Unknown or changed host keys and refused logins are
//! permanent faults; network faults are transient and retried after a
//! capped, jittered backoff ([`backoff`]).
//!
//! Blocking: every call here does network I/O; the daemon runs it on a
//! blocking thread. One [`Share`] holds one session, reused across polls.
//! Each link side's failed connection attempts and bytes moved are counted
//! in this process ([`traffic_counts`], for the console's `/metrics`).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ssh2::{ErrorCode, Session};

use super::local;
use crate::config::{Link, RemoteFsync, SftpAuth, Transport};

mod connect;
mod counters;
mod errors;
mod pull;
mod push;

use connect::connect;
pub use connect::{check_secret_file, pinned_algorithms, secret_file_problem};
pub use counters::{TrafficCount, traffic_counts};
pub use errors::{Fault, SftpError};
use errors::{SFTP_NO_SUCH_FILE, error};

/// Transfer buffer: libssh2 moves 30,000-byte packets and keeps as many in
/// flight as the buffer it is given holds; 8 KiB buffers are several times
/// slower, and 32 packets beat 8 (`docs/performance.md`, "SFTP, third
/// measure").
pub const BUFFER: usize = 30_000 * 32;
/// The longest wait between two connection attempts.
pub const BACKOFF_CAP: Duration = Duration::from_secs(300);
/// The wait after the first failure (before jitter).
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);

/// How long to wait before connection attempt `attempt + 1` (0 after the
/// first failure): doubling from [`BACKOFF_BASE`], capped at [`BACKOFF_CAP`],
/// then scaled by `0.5 + jitter / 2` (`jitter` in 0..=1, out-of-range values
/// clamped) so that many clients do not retry in step.
pub fn backoff(attempt: u32, jitter: f64) -> Duration {
    crate::backoff::doubling(BACKOFF_BASE, attempt, BACKOFF_CAP, jitter)
}

/// Who to reach and how: the SFTP transport of one link.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub link: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub auth: SftpAuth,
    pub known_hosts: PathBuf,
    /// Absolute path of the share on the server.
    pub remote_dir: String,
    pub connect_timeout: Duration,
    pub io_timeout: Duration,
    pub remote_fsync: RemoteFsync,
}

impl Endpoint {
    /// The endpoint of a link whose transport is SFTP.
    pub fn of(link: &Link) -> Option<Endpoint> {
        match &link.transport {
            Transport::Local { .. } => None,
            Transport::Sftp {
                host,
                port,
                user,
                auth,
                known_hosts,
                remote_dir,
                connect_timeout,
                io_timeout,
                remote_fsync,
                ..
            } => Some(Endpoint {
                link: link.name.clone(),
                host: host.clone(),
                port: *port,
                user: user.clone(),
                auth: auth.clone(),
                known_hosts: known_hosts.clone(),
                remote_dir: remote_dir.clone(),
                connect_timeout: *connect_timeout,
                io_timeout: *io_timeout,
                remote_fsync: *remote_fsync,
            }),
        }
    }

    /// `user@host:port`, as errors name the server.
    pub fn address(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }

    /// Whether two endpoints reach the same share the same way (a reload
    /// that changes any of it needs a new session).
    fn same_as(&self, other: &Endpoint) -> bool {
        format!("{self:?}") == format!("{other:?}")
    }
}

/// One complete pair waiting in the outbox, by file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub payload: String,
    pub manifest: String,
}

/// One poll's work on a share.
pub struct Job<'a> {
    /// The side this poll works for (the counters' label).
    pub side: crate::exchange::Role,
    /// The local outbox and the complete pairs the caller found in it.
    pub outbox: &'a Path,
    pub outgoing: &'a [Pair],
    /// The share's folder (under `remote_dir`) to push to (`to-<peer>`).
    pub remote_out: &'a str,
    /// The share's folder to pull from (`to-<this side>`).
    pub remote_in: &'a str,
    /// The local inbox pulled pairs are placed in.
    pub inbox: &'a Path,
    /// The payload name of a manifest this side receives, `None` for any
    /// other name (another link's file, a stray file).
    pub accept: &'a dyn Fn(&str) -> Option<String>,
    /// Files larger than this are not downloaded (an alert instead).
    pub max_bytes: u64,
    /// Whether this side already received the file of a manifest, given
    /// its name and bytes (the receiver's journal: same link, kind,
    /// sequence and payload digest). Asked only about a manifest found on
    /// the share without its payload: when true, it is removed there.
    pub received: &'a dyn Fn(&str, &[u8]) -> bool,
}

/// What one poll moved; alerts are files left where they were for a person
/// to look at (conflicting names, oversized files), each in words.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Moved {
    /// Manifests of the pairs pushed (now in `outbox/sent/`).
    pub pushed: Vec<String>,
    /// Manifests of the pairs pulled (now in the inbox).
    pub pulled: Vec<String>,
    /// Manifests removed from the share because this side already held
    /// their pair (left there by a pull a crash interrupted).
    pub cleaned: Vec<String>,
    pub alerts: Vec<String>,
}

/// A share and its session, kept across polls, with the backoff state.
pub struct Share {
    endpoint: Endpoint,
    conn: Option<Conn>,
    failures: u32,
    retry_at: Option<Instant>,
}

struct Conn {
    // Declared first, dropped first: the SFTP channel before its session.
    sftp: ssh2::Sftp,
    session: Session,
    /// A handle on the socket to shut it down before dropping a broken
    /// session (whose goodbye could otherwise wait for the timeout).
    socket: TcpStream,
    /// The server answered that it has no `fsync@openssh.com`: uploads of
    /// this session go without it (warned once, when found).
    no_fsync: std::cell::Cell<bool>,
}

impl Conn {
    fn close(self, clean: bool) {
        if !clean {
            let _ = self.socket.shutdown(std::net::Shutdown::Both);
        }
        drop(self);
    }
}

impl Share {
    pub fn new(endpoint: Endpoint) -> Share {
        Share {
            endpoint,
            conn: None,
            failures: 0,
            retry_at: None,
        }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// Takes a (possibly reloaded) endpoint; a changed one drops the session
    /// and the backoff.
    pub fn update(&mut self, endpoint: &Endpoint) {
        if !self.endpoint.same_as(endpoint) {
            *self = Share::new(endpoint.clone());
        }
    }

    /// When the next attempt is allowed, if a failure put it off.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Consecutive failed polls.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether the backoff lets a poll run at `now`.
    pub fn due(&self, now: Instant) -> bool {
        self.retry_at.is_none_or(|at| now >= at)
    }

    /// Whether a session is open.
    pub fn connected(&self) -> bool {
        self.conn.is_some()
    }

    /// Pushes the outbox's pairs, then pulls the pairs waiting for this
    /// side, over the kept session (reconnecting when it is gone). A failure
    /// sets the next attempt at `now + backoff(failures, jitter)`; a success
    /// resets the backoff. Pairs handled before a failure stay handled.
    pub fn sync(&mut self, job: &Job<'_>, now: Instant, jitter: f64) -> Result<Moved, SftpError> {
        let mut moved = Moved::default();
        let reused = self.conn.is_some();
        let mut result = self.sync_inner(job, &mut moved);
        // A kept session may have died while idle (a NAT or firewall
        // forgets it; a keepalive write still succeeds): when it fails
        // before moving anything, one fresh connection is tried at once.
        if reused
            && moved == Moved::default()
            && matches!(&result, Err(e) if e.lost && !e.is_permanent())
        {
            if let Some(conn) = self.conn.take() {
                conn.close(false);
            }
            tracing::debug!(link = %self.endpoint.link, "kept session failed: reconnecting once");
            result = self.sync_inner(job, &mut moved);
        }
        // The backoff counts from the failure, not from the poll's start.
        let now = now.max(Instant::now());
        match result {
            Ok(()) => {
                self.failures = 0;
                self.retry_at = None;
                Ok(moved)
            }
            Err(e) => {
                if e.lost
                    && let Some(conn) = self.conn.take()
                {
                    conn.close(false);
                }
                self.retry_at = Some(now + backoff(self.failures, jitter));
                self.failures = self.failures.saturating_add(1);
                Err(e)
            }
        }
    }

    fn sync_inner(&mut self, job: &Job<'_>, moved: &mut Moved) -> Result<(), SftpError> {
        if let Some(conn) = &self.conn
            && conn.session.keepalive_send().is_err()
            && let Some(conn) = self.conn.take()
        {
            conn.close(false);
        }
        let traffic = counters::traffic(&self.endpoint.link, job.side);
        if self.conn.is_none() {
            match connect(&self.endpoint) {
                Ok(conn) => self.conn = Some(conn),
                Err(e) => {
                    traffic.connection_failed();
                    return Err(e);
                }
            }
        }
        let Some(conn) = &self.conn else {
            return Err(self.err(Fault::Transient, true, "no session".into()));
        };
        let io = Io {
            ep: &self.endpoint,
            sftp: &conn.sftp,
            no_fsync: &conn.no_fsync,
            traffic: &traffic,
        };
        io.check_remote_dir()?;
        // A push that fails on the share (a folder the account may not
        // write, a pair missing its payload) must not stop incoming files:
        // the pull runs unless the session itself is gone.
        let pushed = io.push(job, moved);
        if matches!(&pushed, Err(e) if e.lost) {
            return pushed;
        }
        let pulled = io.pull(job, moved);
        pushed.and(pulled)
    }

    fn err(&self, fault: Fault, lost: bool, problem: String) -> SftpError {
        error(&self.endpoint, fault, lost, problem)
    }
}

/// `remote_dir/folder/name`, without doubled slashes; empty parts skipped.
pub fn remote_path(remote_dir: &str, folder: &str, name: &str) -> PathBuf {
    let mut path = remote_dir.trim_end_matches('/').to_owned();
    for part in [folder, name] {
        if !part.is_empty() {
            path.push('/');
            path.push_str(part);
        }
    }
    if path.is_empty() {
        path.push('/');
    }
    PathBuf::from(path)
}

/// Whether a listed name may be a finished file at all: no dot-names (our
/// and the peer's temporary files), no `.part` names, nothing with a path
/// separator or control character.
pub fn listable(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.ends_with(".part")
        && !name.contains('/')
        && !name.chars().any(char::is_control)
}

/// The temporary name a file is written under before it gets `name`.
pub fn part_name(name: &str) -> String {
    format!(".{name}.part")
}

/// The temporary name of a download in the local inbox: a suffix only this
/// transport writes, so the clean-up after a crash never removes the
/// `.<name>.part` of someone copying a file in by hand.
pub fn download_name(name: &str) -> String {
    format!(".{name}{DOWNLOAD_SUFFIX}")
}

const DOWNLOAD_SUFFIX: &str = ".stxd-download";

/// The transfers of one poll over an open session.
struct Io<'a> {
    ep: &'a Endpoint,
    sftp: &'a ssh2::Sftp,
    no_fsync: &'a std::cell::Cell<bool>,
    /// Where the bytes moved are counted.
    traffic: &'a counters::Traffic,
}

impl Io<'_> {
    /// The share itself must exist: a misspelt `remote_dir` would otherwise
    /// look like a share with nothing to pull, for ever.
    fn check_remote_dir(&self) -> Result<(), SftpError> {
        let dir = Path::new(&self.ep.remote_dir);
        match self.stat(dir)? {
            Some(stat) if stat.is_dir() => Ok(()),
            Some(_) => Err(error(
                self.ep,
                Fault::Permanent,
                false,
                format!(
                    "remote_dir {} on {} is not a folder; check the link's transport.remote_dir",
                    dir.display(),
                    self.ep.address()
                ),
            )),
            None => Err(error(
                self.ep,
                Fault::Permanent,
                false,
                format!(
                    "remote_dir {} does not exist on {} (as the account sees it: inside a chroot, the path starts at the chroot); check the link's transport.remote_dir with the peer's admin",
                    dir.display(),
                    self.ep.address()
                ),
            )),
        }
    }

    fn stat(&self, path: &Path) -> Result<Option<ssh2::FileStat>, SftpError> {
        match self.sftp.stat(path) {
            Ok(stat) => Ok(Some(stat)),
            Err(e) if e.code() == ErrorCode::SFTP(SFTP_NO_SUCH_FILE) => Ok(None),
            Err(e) => Err(self.remote("stat", path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        assert_eq!(backoff(0, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(0, 0.0), Duration::from_millis(500));
        assert_eq!(backoff(3, 1.0), Duration::from_secs(8));
        assert_eq!(backoff(8, 1.0), Duration::from_secs(256));
        assert_eq!(backoff(9, 1.0), BACKOFF_CAP);
        assert_eq!(backoff(u32::MAX, 1.0), BACKOFF_CAP);
        assert_eq!(backoff(u32::MAX, 0.0), BACKOFF_CAP / 2);
        assert_eq!(backoff(2, f64::NAN), Duration::from_secs(2));
        assert_eq!(backoff(2, 7.0), Duration::from_secs(4));
        for attempt in 0..40 {
            assert!(backoff(attempt, 0.5) <= BACKOFF_CAP);
            assert!(backoff(attempt + 1, 1.0) >= backoff(attempt, 1.0));
        }
    }

    #[test]
    fn remote_paths_join_without_doubled_slashes() {
        assert_eq!(
            remote_path("/srv/stx/", "to-manager", "a.stx"),
            PathBuf::from("/srv/stx/to-manager/a.stx")
        );
        assert_eq!(
            remote_path("/srv/stx", "to-manager", ""),
            PathBuf::from("/srv/stx/to-manager")
        );
        assert_eq!(remote_path("/", "to-x", "f"), PathBuf::from("/to-x/f"));
        assert_eq!(remote_path("/", "", ""), PathBuf::from("/"));
    }

    #[test]
    fn only_finished_plain_names_are_listable() {
        assert!(listable("opera-tourism.SALES.00000001.stx"));
        for bad in [
            "",
            ".opera-tourism.SALES.00000001.stx.part",
            ".hidden",
            "x.stx.part",
            "a/b",
            "a\nb",
        ] {
            assert!(!listable(bad), "{bad:?}");
        }
        assert_eq!(part_name("a.csv"), ".a.csv.part");
    }
}
