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

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use ssh2::{CheckResult, ErrorCode, KnownHostFileKind, MethodType, OpenFlags, OpenType, Session};

use super::local::{self, Placed};
use crate::config::{Link, SftpAuth, Transport};
use crate::failpoint;

/// Transfer buffer: libssh2 moves 30,000-byte packets and reads ahead from
/// the buffer it is given; 8 KiB buffers are several times slower.
pub const BUFFER: usize = 30_000 * 8;
/// The longest wait between two connection attempts.
pub const BACKOFF_CAP: Duration = Duration::from_secs(300);
/// The wait after the first failure (before jitter).
pub const BACKOFF_BASE: Duration = Duration::from_secs(1);
/// Seconds between SSH keepalives on an idle session.
const KEEPALIVE_SECONDS: u32 = 15;
/// SFTP status codes (draft-ietf-secsh-filexfer-02).
const SFTP_NO_SUCH_FILE: i32 = 2;
const SFTP_PERMISSION_DENIED: i32 = 3;
/// `SSH_FX_OP_UNSUPPORTED`: e.g. a server without `fsync@openssh.com`.
const SFTP_OP_UNSUPPORTED: i32 = 8;
/// libssh2 error codes the connection step tells apart.
const LIBSSH2_ERROR_KEX_FAILURE: i32 = -5;
const LIBSSH2_ERROR_FILE: i32 = -16;
const LIBSSH2_ERROR_AUTHENTICATION_FAILED: i32 = -18;

/// How long to wait before connection attempt `attempt + 1` (0 after the
/// first failure): doubling from [`BACKOFF_BASE`], capped at [`BACKOFF_CAP`],
/// then scaled by `0.5 + jitter / 2` (`jitter` in 0..=1, out-of-range values
/// clamped) so that many clients do not retry in step.
pub fn backoff(attempt: u32, jitter: f64) -> Duration {
    let doubled = BACKOFF_BASE.saturating_mul(1u32 << attempt.min(20));
    let capped = doubled.min(BACKOFF_CAP);
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    capped.mul_f64(0.5 + jitter / 2.0)
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

/// Whether retrying can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Network or server trouble: retried later, with backoff.
    Transient,
    /// A person must act (host key, login, key file, permissions).
    Permanent,
}

/// Why a poll of a share failed.
#[derive(Debug, thiserror::Error)]
#[error("link {link}: sftp {address}: {problem}")]
pub struct SftpError {
    pub link: String,
    /// `user@host:port`.
    pub address: String,
    /// What failed, on which path, and what to check.
    pub problem: String,
    pub fault: Fault,
    /// The session cannot be trusted any more: the next poll reconnects.
    lost: bool,
}

impl SftpError {
    pub fn is_permanent(&self) -> bool {
        self.fault == Fault::Permanent
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
        if self.conn.is_none() {
            self.conn = Some(connect(&self.endpoint)?);
        }
        let Some(conn) = &self.conn else {
            return Err(self.err(Fault::Transient, true, "no session".into()));
        };
        let io = Io {
            ep: &self.endpoint,
            sftp: &conn.sftp,
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

fn error(ep: &Endpoint, fault: Fault, lost: bool, problem: String) -> SftpError {
    SftpError {
        link: ep.link.clone(),
        address: ep.address(),
        problem,
        fault,
        lost,
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

/// The most bytes read of a manifest found without its payload: far above
/// any manifest (the envelope caps them at a few KiB); a larger file is no
/// manifest and stays where it is.
const LONE_MANIFEST_MAX: u64 = 64 * 1024;

/// Why a secret file (private key, password) is refused, given its mode and
/// owner and the current user: it must be the user's own and unreadable by
/// anyone else.
pub fn secret_file_problem(path: &Path, mode: u32, owner: u32, me: u32) -> Option<String> {
    if owner != me {
        return Some(format!(
            "{} belongs to user id {owner}, not to stxd's user ({me}): chown it to stxd's user and chmod 600 it",
            path.display()
        ));
    }
    if mode & 0o077 != 0 {
        return Some(format!(
            "{} is readable or writable by others (mode {:o}): run chmod 600 {}",
            path.display(),
            mode & 0o777,
            path.display()
        ));
    }
    None
}

/// Refuses a key or password file that others can read or that belongs to
/// someone else (libssh2 does not check).
#[allow(unsafe_code)]
pub fn check_secret_file(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| {
        format!(
            "cannot read {}: {e}; check the path in the link's transport",
            path.display()
        )
    })?;
    if !meta.is_file() {
        return Err(format!(
            "{} is not a regular file; check the path in the link's transport",
            path.display()
        ));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    match secret_file_problem(path, meta.mode(), meta.uid(), me) {
        Some(problem) => Err(problem),
        None => Ok(()),
    }
}

/// The host key algorithms to accept from `host:port`, from the key types
/// `known_hosts` holds for it (`[host]:port`, or `host` for port 22), so an
/// offered key of another type cannot be negotiated. Hashed entries cannot
/// be matched by name: when only those exist, their types are used (the
/// key itself is still checked). `None` when the file names no key at all.
pub fn pinned_algorithms(known_hosts: &str, host: &str, port: u16) -> Option<String> {
    let wanted = if port == 22 {
        host.to_owned()
    } else {
        format!("[{host}]:{port}")
    };
    let mut named = Vec::new();
    let mut hashed = Vec::new();
    for line in known_hosts.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('@') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(hosts), Some(kind)) = (fields.next(), fields.next()) else {
            continue;
        };
        if hosts.starts_with("|1|") {
            hashed.push(kind);
        } else if hosts.split(',').any(|h| h == wanted) {
            named.push(kind);
        }
    }
    let kinds = if named.is_empty() { hashed } else { named };
    let mut algorithms: Vec<&str> = Vec::new();
    for kind in kinds {
        let names: &[&str] = match kind {
            "ssh-rsa" => &["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
            other => &[other][..],
        };
        for name in names {
            if !algorithms.contains(name) {
                algorithms.push(name);
            }
        }
    }
    (!algorithms.is_empty()).then(|| algorithms.join(","))
}

/// Opens a session: TCP with a timeout, handshake with the pinned host key
/// type, strict known_hosts check, then key (or password) login.
fn connect(ep: &Endpoint) -> Result<Conn, SftpError> {
    let permanent = |problem: String| error(ep, Fault::Permanent, true, problem);
    let transient = |problem: String| error(ep, Fault::Transient, true, problem);
    let secret_file = match &ep.auth {
        SftpAuth::KeyFile(p) | SftpAuth::PasswordFile(p) => p,
    };
    check_secret_file(secret_file).map_err(permanent)?;
    let known = std::fs::read_to_string(&ep.known_hosts).map_err(|e| {
        permanent(format!(
            "cannot read the known_hosts file {}: {e}; check the link's transport.known_hosts",
            ep.known_hosts.display()
        ))
    })?;
    let pinned = pinned_algorithms(&known, &ep.host, ep.port);

    let addrs = (ep.host.as_str(), ep.port).to_socket_addrs().map_err(|e| {
        transient(format!(
            "cannot resolve {}: {e}; check the host name and DNS",
            ep.host
        ))
    })?;
    let mut last = None;
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, ep.connect_timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let Some(stream) = stream else {
        return Err(transient(format!(
            "cannot connect within {}s: {}; check that the server is up and reachable (firewall, port)",
            ep.connect_timeout.as_secs(),
            last.map_or_else(|| "no address".to_owned(), |e| e.to_string())
        )));
    };
    let socket_setup = stream
        .set_read_timeout(Some(ep.io_timeout))
        .and_then(|()| stream.set_write_timeout(Some(ep.io_timeout)))
        .and_then(|()| stream.set_nodelay(true))
        .and_then(|()| stream.try_clone());
    let socket = socket_setup.map_err(|e| transient(format!("cannot set up the socket: {e}")))?;

    let mut session =
        Session::new().map_err(|e| transient(format!("cannot start an ssh session: {e}")))?;
    session.set_timeout(u32::try_from(ep.io_timeout.as_millis()).unwrap_or(u32::MAX));
    if let Some(pref) = &pinned {
        session
            .method_pref(MethodType::HostKey, pref)
            .map_err(|e| permanent(format!("cannot pin the host key type {pref}: {e}")))?;
    }
    session.set_tcp_stream(stream);
    if let Err(e) = session.handshake() {
        return Err(match (e.code(), &pinned) {
            (ErrorCode::Session(LIBSSH2_ERROR_KEX_FAILURE), Some(pref)) => permanent(format!(
                "ssh handshake failed: {e}; the server offers no host key of the type {} holds for it ({pref}): check the server's host key with its admin",
                ep.known_hosts.display()
            )),
            _ => transient(format!(
                "ssh handshake failed: {e}; check that an ssh server listens there"
            )),
        });
    }
    let Some((key, _)) = session.host_key() else {
        return Err(transient("the server sent no host key".into()));
    };
    let mut known_hosts = session
        .known_hosts()
        .map_err(|e| transient(format!("cannot check the host key: {e}")))?;
    known_hosts
        .read_file(&ep.known_hosts, KnownHostFileKind::OpenSSH)
        .map_err(|e| {
            permanent(format!(
                "cannot parse the known_hosts file {}: {e}; expect OpenSSH's format, one `[host]:port type key` line per key",
                ep.known_hosts.display()
            ))
        })?;
    let entry = if ep.port == 22 {
        ep.host.clone()
    } else {
        format!("[{}]:{}", ep.host, ep.port)
    };
    match known_hosts.check_port(&ep.host, ep.port, key) {
        CheckResult::Match => {}
        CheckResult::NotFound => {
            return Err(permanent(format!(
                "the server's host key for {entry} is not in {}: add it (run `ssh-keyscan -p {} -t ed25519 {}` and have a person check the fingerprint with the peer's admin before appending the line); keys are never added automatically",
                ep.known_hosts.display(),
                ep.port,
                ep.host
            )));
        }
        CheckResult::Mismatch => {
            return Err(permanent(format!(
                "the host key changed: the server's key for {entry} differs from the one in {}; possible man-in-the-middle attack: check with the peer's admin before changing the file",
                ep.known_hosts.display()
            )));
        }
        CheckResult::Failure => {
            return Err(permanent(format!(
                "cannot check the server's host key against {}; check the file",
                ep.known_hosts.display()
            )));
        }
    }
    session.set_keepalive(true, KEEPALIVE_SECONDS);

    let login = match &ep.auth {
        SftpAuth::KeyFile(key) => session
            .userauth_pubkey_file(&ep.user, None, key, None)
            .map_err(|e| (e, format!("the key {}", key.display()))),
        SftpAuth::PasswordFile(file) => {
            let password = std::fs::read_to_string(file).map_err(|e| {
                permanent(format!(
                    "cannot read the password file {}: {e}",
                    file.display()
                ))
            })?;
            let password = password.trim_end_matches(['\n', '\r']);
            session
                .userauth_password(&ep.user, password)
                .map_err(|e| (e, format!("the password in {}", file.display())))
        }
    };
    if let Err((e, what)) = login {
        return Err(match e.code() {
            // libssh2 also reports a connection lost while waiting for the
            // server's answer as PUBLICKEY_UNVERIFIED: only a definite
            // refusal (or an unreadable key) is permanent.
            ErrorCode::Session(LIBSSH2_ERROR_AUTHENTICATION_FAILED | LIBSSH2_ERROR_FILE) => {
                permanent(format!(
                    "{} refused {what}: {e}; check that the account exists and that its authorized_keys holds this key's public half (or the password is right)",
                    ep.address()
                ))
            }
            _ => transient(format!("login failed: {e}")),
        });
    }
    if !session.authenticated() {
        return Err(permanent(format!(
            "{} did not accept the login; check the account with the peer's admin",
            ep.address()
        )));
    }
    let sftp = session.sftp().map_err(|e| {
        transient(format!(
            "cannot open the sftp subsystem: {e}; check that the account may use sftp"
        ))
    })?;
    tracing::info!(link = %ep.link, server = %ep.address(), "sftp session opened");
    Ok(Conn {
        sftp,
        session,
        socket,
    })
}

/// What an upload found.
enum Uploaded {
    Done,
    /// The final name holds other bytes: an alert, nothing overwritten.
    Conflict(String),
}

/// The transfers of one poll over an open session.
struct Io<'a> {
    ep: &'a Endpoint,
    sftp: &'a ssh2::Sftp,
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

    /// An SFTP failure on `path`: permission problems need a person; status
    /// errors leave the session usable; anything else drops it.
    fn remote(&self, what: &str, path: &Path, e: ssh2::Error) -> SftpError {
        let (fault, lost, hint) = match e.code() {
            ErrorCode::SFTP(SFTP_PERMISSION_DENIED) => (
                Fault::Permanent,
                false,
                "check the account's rights on the share with the peer's admin",
            ),
            ErrorCode::SFTP(SFTP_OP_UNSUPPORTED) => (
                Fault::Permanent,
                false,
                "the server does not support it (stxd needs OpenSSH's sftp extensions, fsync@openssh.com among them)",
            ),
            ErrorCode::SFTP(_) => (
                Fault::Transient,
                false,
                "check the share (disk space, folders)",
            ),
            ErrorCode::Session(_) => (
                Fault::Transient,
                true,
                "the connection failed; retried later",
            ),
        };
        error(
            self.ep,
            fault,
            lost,
            format!("cannot {what} {}: {e}; {hint}", path.display()),
        )
    }

    /// A failed transfer (read/write through ssh2's `io` traits): the
    /// session is dropped.
    fn stream(&self, what: &str, path: &Path, e: io::Error) -> SftpError {
        error(
            self.ep,
            Fault::Transient,
            true,
            format!(
                "cannot {what} {}: {e}; the connection failed or the server refused; retried later",
                path.display()
            ),
        )
    }

    /// A local file-system failure.
    fn local(&self, what: &str, path: &Path, e: io::Error) -> SftpError {
        error(
            self.ep,
            Fault::Transient,
            false,
            format!(
                "cannot {what} {}: {e}; check the local folder (space, permissions)",
                path.display()
            ),
        )
    }

    fn stat(&self, path: &Path) -> Result<Option<ssh2::FileStat>, SftpError> {
        match self.sftp.stat(path) {
            Ok(stat) => Ok(Some(stat)),
            Err(e) if e.code() == ErrorCode::SFTP(SFTP_NO_SUCH_FILE) => Ok(None),
            Err(e) => Err(self.remote("stat", path, e)),
        }
    }

    /// SHA-256 of a remote file's content.
    fn remote_digest(&self, path: &Path) -> Result<[u8; 32], SftpError> {
        let mut file = self
            .sftp
            .open(path)
            .map_err(|e| self.remote("open", path, e))?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; BUFFER];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| self.stream("read", path, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(hasher.finalize().into())
    }

    /// Pushes every outgoing pair (payload, then manifest) and moves each
    /// pushed pair into `outbox/sent/`. A pair whose manifest `sent/`
    /// already holds as the very file in the outbox (same inode) was pushed
    /// whole before a crash cut [`Io::to_sent`] short: only the move is
    /// finished, nothing is uploaded again (the peer may have taken the
    /// pair off the share meanwhile).
    fn push(&self, job: &Job<'_>, moved: &mut Moved) -> Result<(), SftpError> {
        if job.outgoing.is_empty() {
            return Ok(());
        }
        let folder = remote_path(&self.ep.remote_dir, job.remote_out, "");
        if self.stat(&folder)?.is_none() {
            self.sftp
                .mkdir(&folder, 0o755)
                .map_err(|e| self.remote("create the folder", &folder, e))?;
        }
        'pairs: for pair in job.outgoing {
            if moved_to_sent(job.outbox, pair) {
                tracing::info!(link = %self.ep.link, file = %pair.manifest, "pair pushed before a crash: finishing its move to sent/");
            } else {
                for name in [&pair.payload, &pair.manifest] {
                    let local_path = job.outbox.join(name);
                    let remote = remote_path(&self.ep.remote_dir, job.remote_out, name);
                    match self.upload(&local_path, &remote, name)? {
                        Uploaded::Done => {}
                        Uploaded::Conflict(alert) => {
                            tracing::error!(link = %self.ep.link, file = %name, problem = %alert, "pair not pushed");
                            moved.alerts.push(alert);
                            continue 'pairs;
                        }
                    }
                    if name == &pair.payload {
                        failpoint::hit("sftp.push.payload-renamed");
                    }
                }
                failpoint::hit("sftp.push.manifest-renamed");
            }
            match self.to_sent(job.outbox, pair)? {
                None => {
                    tracing::info!(link = %self.ep.link, file = %pair.manifest, server = %self.ep.address(), "pair pushed");
                    moved.pushed.push(pair.manifest.clone());
                }
                Some(alert) => {
                    tracing::error!(link = %self.ep.link, file = %pair.manifest, problem = %alert, "pair pushed but kept in the outbox");
                    moved.alerts.push(alert);
                }
            }
        }
        Ok(())
    }

    /// Uploads one file under `.<name>.part`, synced and closed, then renames
    /// it to its final name (which libssh2 never overwrites).
    fn upload(&self, local_path: &Path, remote: &Path, name: &str) -> Result<Uploaded, SftpError> {
        let local_digest = file_digest(local_path)
            .map_err(|e| self.local("read the outgoing file", local_path, e))?;
        if self.stat(remote)?.is_some() {
            return self.compare(remote, local_path, &local_digest);
        }
        let part = remote.with_file_name(part_name(name));
        let mut input = File::open(local_path).map_err(|e| self.local("open", local_path, e))?;
        let mut file = self
            .sftp
            .open_mode(
                &part,
                OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE,
                0o640,
                OpenType::File,
            )
            .map_err(|e| self.remote("create", &part, e))?;
        let mut buf = vec![0u8; BUFFER];
        let mut sent = 0u64;
        loop {
            let n = input
                .read(&mut buf)
                .map_err(|e| self.local("read", local_path, e))?;
            if n == 0 {
                break;
            }
            file.write_all(&buf[..n])
                .map_err(|e| self.stream("write", &part, e))?;
            sent += n as u64;
        }
        file.fsync().map_err(|e| self.remote("fsync", &part, e))?;
        file.close().map_err(|e| self.remote("close", &part, e))?;
        drop(file);
        let size = self.stat(&part)?.and_then(|s| s.size);
        if size != Some(sent) {
            return Err(error(
                self.ep,
                Fault::Transient,
                false,
                format!(
                    "{} holds {size:?} bytes after the upload, expected {sent}; the upload is retried",
                    part.display()
                ),
            ));
        }
        if let Err(e) = self.sftp.rename(&part, remote, None) {
            // The final name appeared meanwhile (another attempt's rename):
            // the bytes decide.
            if self.stat(remote)?.is_some() {
                let _ = self.sftp.unlink(&part);
                return self.compare(remote, local_path, &local_digest);
            }
            return Err(self.remote("rename into place", &part, e));
        }
        Ok(Uploaded::Done)
    }

    /// An existing remote final name: done when it holds our bytes.
    fn compare(
        &self,
        remote: &Path,
        local_path: &Path,
        local_digest: &[u8; 32],
    ) -> Result<Uploaded, SftpError> {
        if &self.remote_digest(remote)? == local_digest {
            Ok(Uploaded::Done)
        } else {
            Ok(Uploaded::Conflict(format!(
                "{} already exists on {} with other content than {}: nothing was overwritten and the local pair stays in the outbox; compare both with the peer before doing anything",
                remote.display(),
                self.ep.address(),
                local_path.display()
            )))
        }
    }

    /// Moves a pushed pair into `outbox/sent/` ([`move_to_sent`]). `Some`
    /// alert when `sent/` already holds other bytes under a name.
    fn to_sent(&self, outbox: &Path, pair: &Pair) -> Result<Option<String>, SftpError> {
        move_to_sent(outbox, pair).map_err(|(what, path, e)| self.local(what, &path, e))
    }

    /// Pulls every complete pair this side receives into the inbox, then
    /// removes the remote originals: payload first, manifest last, so a
    /// crash between the two leaves a manifest without its payload, which
    /// the peer's uploads (payload first, manifest last) never show and
    /// which [`Io::lone_manifest`] removes once this side holds the pair.
    fn pull(&self, job: &Job<'_>, moved: &mut Moved) -> Result<(), SftpError> {
        std::fs::create_dir_all(job.inbox).map_err(|e| self.local("create", job.inbox, e))?;
        remove_leftover_parts(job.inbox).map_err(|e| self.local("clean", job.inbox, e))?;
        let folder = remote_path(&self.ep.remote_dir, job.remote_in, "");
        let entries = match self.sftp.readdir(&folder) {
            Ok(entries) => entries,
            Err(e) if e.code() == ErrorCode::SFTP(SFTP_NO_SUCH_FILE) => return Ok(()),
            Err(e) => return Err(self.remote("list", &folder, e)),
        };
        let files: BTreeMap<String, u64> = entries
            .into_iter()
            .filter(|(_, stat)| stat.is_file())
            .filter_map(|(path, stat)| {
                let name = path.file_name()?.to_str()?.to_owned();
                listable(&name).then_some((name, stat.size.unwrap_or(0)))
            })
            .collect();
        for (manifest, &manifest_size) in &files {
            let Some(payload) = (job.accept)(manifest) else {
                continue;
            };
            let Some(&payload_size) = files.get(&payload) else {
                self.lone_manifest(job, manifest, manifest_size, &payload, moved)?;
                continue;
            };
            if payload_size > job.max_bytes || manifest_size > job.max_bytes {
                let alert = format!(
                    "{} on {} is larger than {} bytes: not downloaded, left on the share; ask the peer about it",
                    remote_path(&self.ep.remote_dir, job.remote_in, &payload).display(),
                    self.ep.address(),
                    job.max_bytes
                );
                tracing::error!(link = %self.ep.link, file = %payload, "file too large to pull");
                moved.alerts.push(alert);
                continue;
            }
            let mut placed_all = true;
            for (name, size) in [(&payload, payload_size), (manifest, manifest_size)] {
                let remote = remote_path(&self.ep.remote_dir, job.remote_in, name);
                if let Some(alert) = self.download(&remote, size, job.inbox, name)? {
                    tracing::error!(link = %self.ep.link, file = %name, problem = %alert, "pair not pulled");
                    moved.alerts.push(alert);
                    placed_all = false;
                    break;
                }
            }
            if !placed_all {
                continue;
            }
            local::sync_dir(job.inbox).map_err(|e| self.local("sync", job.inbox, e))?;
            failpoint::hit("sftp.pull.placed");
            // Durable locally: now the originals may go.
            self.remove_remote(job.remote_in, &payload)?;
            failpoint::hit("sftp.pull.first-removed");
            self.remove_remote(job.remote_in, manifest)?;
            tracing::info!(link = %self.ep.link, file = %manifest, server = %self.ep.address(), "pair pulled");
            moved.pulled.push(manifest.clone());
        }
        Ok(())
    }

    /// Removes a pulled file from the share; one already gone (removed by
    /// an earlier run) is fine.
    fn remove_remote(&self, folder: &str, name: &str) -> Result<(), SftpError> {
        let remote = remote_path(&self.ep.remote_dir, folder, name);
        match self.sftp.unlink(&remote) {
            Ok(()) => Ok(()),
            Err(e) if e.code() == ErrorCode::SFTP(SFTP_NO_SUCH_FILE) => Ok(()),
            Err(e) => Err(self.remote("remove the pulled", &remote, e)),
        }
    }

    /// A manifest on the share without its payload: the leftover of a pull
    /// that a crash stopped between its two removals (or of a peer pushing
    /// again a pair this side already took). It is removed when this side
    /// holds that very pair: the inbox has the same manifest bytes and the
    /// payload, or the caller's [`Job::received`] recognises it (the
    /// receiver's journal). Anything else stays, with a warning, for a
    /// person.
    fn lone_manifest(
        &self,
        job: &Job<'_>,
        manifest: &str,
        size: u64,
        payload: &str,
        moved: &mut Moved,
    ) -> Result<(), SftpError> {
        let remote = remote_path(&self.ep.remote_dir, job.remote_in, manifest);
        let bytes = if size <= LONE_MANIFEST_MAX {
            self.read_small(&remote, LONE_MANIFEST_MAX)?
        } else {
            None
        };
        let held = bytes.as_deref().is_some_and(|bytes| {
            inbox_holds(job.inbox, manifest, payload, bytes) || (job.received)(manifest, bytes)
        });
        if !held {
            tracing::warn!(link = %self.ep.link, file = %manifest, payload = %payload, "manifest without its payload on the share; left there");
            return Ok(());
        }
        // The peer may be pushing that pair again right now (its own crash
        // recovery): a payload that appeared since the listing makes it a
        // complete pair, pulled (and found already applied) next time.
        let remote_payload = remote_path(&self.ep.remote_dir, job.remote_in, payload);
        if self.stat(&remote_payload)?.is_some() {
            return Ok(());
        }
        self.remove_remote(job.remote_in, manifest)?;
        tracing::info!(link = %self.ep.link, file = %manifest, server = %self.ep.address(), "manifest left by an interrupted pull removed from the share: this side holds its pair");
        moved.cleaned.push(manifest.to_owned());
        Ok(())
    }

    /// A remote file's content when it holds at most `max` bytes; `None`
    /// when it is larger or gone.
    fn read_small(&self, path: &Path, max: u64) -> Result<Option<Vec<u8>>, SftpError> {
        let mut file = match self.sftp.open(path) {
            Ok(file) => file,
            Err(e) if e.code() == ErrorCode::SFTP(SFTP_NO_SUCH_FILE) => return Ok(None),
            Err(e) => return Err(self.remote("open", path, e)),
        };
        let mut bytes = Vec::new();
        (&mut file)
            .take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| self.stream("read", path, e))?;
        Ok((bytes.len() as u64 <= max).then_some(bytes))
    }

    /// Downloads a remote file to `inbox/.<name>.stxd-download`, checks its size,
    /// syncs it and renames it to `inbox/<name>` (never replacing). `Some`
    /// alert when the inbox holds other bytes under that name.
    fn download(
        &self,
        remote: &Path,
        size: u64,
        inbox: &Path,
        name: &str,
    ) -> Result<Option<String>, SftpError> {
        let part = inbox.join(download_name(name));
        let target = inbox.join(name);
        // A name already held with another size is a conflict without
        // downloading it again (a share polled every few seconds would
        // otherwise fetch the whole file each time).
        if let Ok(meta) = std::fs::symlink_metadata(&target)
            && (!meta.is_file() || meta.len() != size)
        {
            return Ok(Some(format!(
                "{} already holds other content than {} on {} ({} bytes there, {size} on the share): nothing was overwritten and the remote file stays on the share; compare both with the peer",
                target.display(),
                remote.display(),
                self.ep.address(),
                meta.len()
            )));
        }
        let result = self.download_part(remote, size, &part);
        if let Err(e) = result {
            let _ = std::fs::remove_file(&part);
            return Err(e);
        }
        match place_download(&part, &target).map_err(|e| self.local("place", &target, e))? {
            Placed::Linked | Placed::Same => Ok(None),
            Placed::Other => Ok(Some(format!(
                "{} already holds other content than {} on {}: nothing was overwritten and the remote file stays on the share; compare both with the peer",
                target.display(),
                remote.display(),
                self.ep.address()
            ))),
        }
    }

    fn download_part(&self, remote: &Path, size: u64, part: &Path) -> Result<(), SftpError> {
        let mut input = self
            .sftp
            .open(remote)
            .map_err(|e| self.remote("open", remote, e))?;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(part)
            .map_err(|e| self.local("create", part, e))?;
        let mut buf = vec![0u8; BUFFER];
        let mut got = 0u64;
        loop {
            let n = input
                .read(&mut buf)
                .map_err(|e| self.stream("read", remote, e))?;
            if n == 0 {
                break;
            }
            got += n as u64;
            if got > size {
                break;
            }
            out.write_all(&buf[..n])
                .map_err(|e| self.local("write", part, e))?;
        }
        if got != size {
            return Err(error(
                self.ep,
                Fault::Transient,
                false,
                format!(
                    "{} changed while downloading (listed with {size} bytes, read {got}): retried at the next poll",
                    remote.display()
                ),
            ));
        }
        out.sync_all().map_err(|e| self.local("sync", part, e))
    }
}

/// Removes the `.<name>.stxd-download` files a crashed download left in
/// the inbox (only this transport writes that suffix).
fn remove_leftover_parts(inbox: &Path) -> io::Result<()> {
    let mut removed = false;
    for entry in std::fs::read_dir(inbox)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(DOWNLOAD_SUFFIX) && entry.file_type()?.is_file()
        {
            std::fs::remove_file(entry.path())?;
            tracing::info!(file = %entry.path().display(), "leftover partial download removed");
            removed = true;
        }
    }
    if removed {
        local::sync_dir(inbox)?;
    }
    Ok(())
}

fn file_digest(path: &Path) -> io::Result<[u8; 32]> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; BUFFER];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

/// Gives a synced download its final name in the inbox without ever
/// replacing a file ([`local::rename_new`]: the placed file never has two
/// names, which the claim stage would refuse), then drops the temporary
/// name if it is still there (the name was taken: the bytes decide).
fn place_download(part: &Path, target: &Path) -> io::Result<Placed> {
    let placed = local::rename_new(part, target);
    let _ = std::fs::remove_file(part);
    placed
}

/// Whether the inbox holds a pair whose manifest has exactly these bytes
/// (placed by a pull, not yet processed).
fn inbox_holds(inbox: &Path, manifest: &str, payload: &str, bytes: &[u8]) -> bool {
    let regular = |name: &str| {
        std::fs::symlink_metadata(inbox.join(name))
            .ok()
            .filter(|m| m.is_file())
    };
    regular(payload).is_some()
        && regular(manifest).is_some_and(|m| m.len() == bytes.len() as u64)
        && std::fs::read(inbox.join(manifest)).is_ok_and(|held| held == bytes)
}

/// Moves a pushed pair into `outbox/sent/`: links the payload, then the
/// manifest, into `sent/` (never replacing), syncs `sent/`, then unlinks the
/// payload, then the manifest, from the outbox and syncs it. The manifest
/// goes last both ways: while it is in the outbox the pair is listed again
/// and this move finished, and once it is in `sent/` as the same file the
/// push is known complete ([`moved_to_sent`]). A name already gone from the
/// outbox but in `sent/` was moved by a run a crash cut short. `Some` alert
/// when `sent/` already holds other bytes under a name; a local failure as
/// (what failed, on which path, why).
fn move_to_sent(
    outbox: &Path,
    pair: &Pair,
) -> Result<Option<String>, (&'static str, PathBuf, io::Error)> {
    let sent = outbox.join("sent");
    std::fs::create_dir_all(&sent).map_err(|e| ("create", sent.clone(), e))?;
    for name in [&pair.payload, &pair.manifest] {
        let (from, to) = (outbox.join(name), sent.join(name));
        let placed = match local::link_new(&from, &to) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && to.is_file() => Placed::Same,
            placed => placed.map_err(|e| ("move into sent/", from.clone(), e))?,
        };
        match placed {
            Placed::Linked | Placed::Same => {}
            Placed::Other => {
                return Ok(Some(format!(
                    "{} already holds other content than {}: the pushed pair stays in the outbox; compare them",
                    to.display(),
                    from.display()
                )));
            }
        }
    }
    local::sync_dir(&sent).map_err(|e| ("sync", sent.clone(), e))?;
    failpoint::hit("sftp.push.sent-linked");
    for name in [&pair.payload, &pair.manifest] {
        let from = outbox.join(name);
        match std::fs::remove_file(&from) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(("remove", from, e)),
            _ => {}
        }
    }
    local::sync_dir(outbox).map_err(|e| ("sync", outbox.to_owned(), e))?;
    Ok(None)
}

/// Whether `outbox/sent/` holds the pair's manifest as the very file in the
/// outbox (a hard link [`Io::to_sent`] made): the pair was pushed whole and
/// only its move out of the outbox was cut short.
fn moved_to_sent(outbox: &Path, pair: &Pair) -> bool {
    let meta = |p: PathBuf| std::fs::symlink_metadata(p).ok().filter(|m| m.is_file());
    match (
        meta(outbox.join(&pair.manifest)),
        meta(outbox.join("sent").join(&pair.manifest)),
    ) {
        (Some(a), Some(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
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

    fn outbox_pair(outbox: &Path) -> Pair {
        std::fs::create_dir_all(outbox).unwrap();
        let pair = Pair {
            payload: "l.CONTINGENT.00000001.csv".into(),
            manifest: "l.CONTINGENT.00000001.stx".into(),
        };
        std::fs::write(outbox.join(&pair.payload), "payload").unwrap();
        std::fs::write(outbox.join(&pair.manifest), "manifest").unwrap();
        pair
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn a_move_to_sent_cut_short_anywhere_is_finished_by_the_next_one() {
        // What a crash leaves after each step of the move: links into
        // sent/ (payload, manifest), then unlinks from the outbox (payload,
        // manifest).
        for steps in 0..=3 {
            let dir = tempfile::tempdir().unwrap();
            let outbox = dir.path().join("outbox");
            let pair = outbox_pair(&outbox);
            let sent = outbox.join("sent");
            std::fs::create_dir_all(&sent).unwrap();
            let names = [&pair.payload, &pair.manifest];
            for name in names.iter().take(steps.min(2)) {
                std::fs::hard_link(outbox.join(name), sent.join(name)).unwrap();
            }
            if steps == 3 {
                std::fs::remove_file(outbox.join(&pair.payload)).unwrap();
            }
            // Pushed whole is known once the manifest is in sent/.
            assert_eq!(moved_to_sent(&outbox, &pair), steps >= 2, "{steps}");
            assert_eq!(move_to_sent(&outbox, &pair).unwrap(), None, "{steps}");
            assert_eq!(entries(&outbox), ["sent"], "{steps}");
            assert_eq!(
                entries(&sent),
                [pair.payload.clone(), pair.manifest.clone()],
                "{steps}"
            );
            for (name, bytes) in [(&pair.payload, "payload"), (&pair.manifest, "manifest")] {
                let path = sent.join(name);
                assert_eq!(std::fs::read_to_string(&path).unwrap(), bytes);
                assert_eq!(std::fs::metadata(&path).unwrap().nlink(), 1, "{steps}");
            }
        }
    }

    #[test]
    fn only_the_very_manifest_in_sent_marks_a_pair_pushed() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = dir.path().join("outbox");
        let pair = outbox_pair(&outbox);
        std::fs::create_dir_all(outbox.join("sent")).unwrap();
        assert!(!moved_to_sent(&outbox, &pair));
        // Same bytes, another file (a copy): not the mark of a push.
        std::fs::copy(
            outbox.join(&pair.manifest),
            outbox.join("sent").join(&pair.manifest),
        )
        .unwrap();
        assert!(!moved_to_sent(&outbox, &pair));
        // Other bytes in sent/: an alert, the pair stays in the outbox.
        std::fs::write(outbox.join("sent").join(&pair.manifest), "other").unwrap();
        let alert = move_to_sent(&outbox, &pair).unwrap().unwrap();
        assert!(alert.contains("other content"), "{alert}");
        assert_eq!(entries(&outbox).len(), 3);
    }

    #[test]
    fn a_download_gets_its_name_alone_and_never_replaces_one() {
        let dir = tempfile::tempdir().unwrap();
        let (part, target) = (dir.path().join(".f.stxd-download"), dir.path().join("f"));
        std::fs::write(&part, "bytes").unwrap();
        assert_eq!(place_download(&part, &target).unwrap(), Placed::Linked);
        assert!(!part.exists());
        assert_eq!(std::fs::metadata(&target).unwrap().nlink(), 1);
        std::fs::write(&part, "bytes").unwrap();
        assert_eq!(place_download(&part, &target).unwrap(), Placed::Same);
        assert!(!part.exists());
        std::fs::write(&part, "other").unwrap();
        assert_eq!(place_download(&part, &target).unwrap(), Placed::Other);
        assert!(!part.exists());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "bytes");
    }

    #[test]
    fn the_inbox_holds_a_pair_only_with_the_same_manifest_bytes_and_a_payload() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = dir.path();
        std::fs::write(inbox.join("m.stx"), "manifest").unwrap();
        assert!(!inbox_holds(inbox, "m.stx", "m.csv", b"manifest"));
        std::fs::write(inbox.join("m.csv"), "payload").unwrap();
        assert!(inbox_holds(inbox, "m.stx", "m.csv", b"manifest"));
        assert!(!inbox_holds(inbox, "m.stx", "m.csv", b"manifesT"));
        assert!(!inbox_holds(inbox, "m.stx", "m.csv", b"manifest, longer"));
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

    #[test]
    fn secret_files_must_be_private_and_ours() {
        let p = Path::new("/k");
        assert_eq!(secret_file_problem(p, 0o100600, 5, 5), None);
        assert_eq!(secret_file_problem(p, 0o100400, 5, 5), None);
        let open = secret_file_problem(p, 0o100644, 5, 5).unwrap();
        assert!(
            open.contains("chmod 600 /k") && open.contains("644"),
            "{open}"
        );
        assert!(secret_file_problem(p, 0o100640, 5, 5).is_some());
        assert!(secret_file_problem(p, 0o100602, 5, 5).is_some());
        let other = secret_file_problem(p, 0o100600, 0, 5).unwrap();
        assert!(other.contains("user id 0"), "{other}");
    }

    #[test]
    fn host_key_types_are_pinned_from_known_hosts() {
        let file = "# comment\n\
            [127.0.0.1]:2222 ssh-ed25519 AAAA\n\
            other.example,[127.0.0.1]:2223 ecdsa-sha2-nistp256 AAAA\n\
            sftp.example ssh-rsa AAAA\n\
            @revoked [127.0.0.1]:2222 ssh-rsa AAAA\n";
        assert_eq!(
            pinned_algorithms(file, "127.0.0.1", 2222).as_deref(),
            Some("ssh-ed25519")
        );
        assert_eq!(
            pinned_algorithms(file, "127.0.0.1", 2223).as_deref(),
            Some("ecdsa-sha2-nistp256")
        );
        assert_eq!(
            pinned_algorithms(file, "sftp.example", 22).as_deref(),
            Some("rsa-sha2-512,rsa-sha2-256,ssh-rsa")
        );
        assert_eq!(pinned_algorithms(file, "127.0.0.1", 22), None);
        assert_eq!(pinned_algorithms("", "h", 22), None);
        let hashed = "|1|abc=|def= ssh-ed25519 AAAA\n";
        assert_eq!(
            pinned_algorithms(hashed, "h", 22).as_deref(),
            Some("ssh-ed25519")
        );
    }
}
