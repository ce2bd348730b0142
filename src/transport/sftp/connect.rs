//! Opening a session: the secret files checked, TCP with a timeout, the
//! handshake with the pinned host key type, the strict known_hosts check,
//! then key (or password) login.

use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use ssh2::{CheckResult, ErrorCode, KnownHostFileKind, MethodType, Session};

use super::{Conn, Endpoint, Fault, SftpError, error};
use crate::config::SftpAuth;

/// Seconds between SSH keepalives on an idle session.
const KEEPALIVE_SECONDS: u32 = 15;

/// libssh2 error codes the connection step tells apart.
const LIBSSH2_ERROR_KEX_FAILURE: i32 = -5;
const LIBSSH2_ERROR_FILE: i32 = -16;
const LIBSSH2_ERROR_AUTHENTICATION_FAILED: i32 = -18;
const LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED: i32 = -19;

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
pub(super) fn connect(ep: &Endpoint) -> Result<Conn, SftpError> {
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

    let (stream, socket) = open_tcp(ep)?;

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
    check_host_key(ep, &session)?;
    session.set_keepalive(true, KEEPALIVE_SECONDS);

    login(ep, &session)?;
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
        no_fsync: std::cell::Cell::new(false),
    })
}

/// TCP to the first address of the host that answers within the connect
/// timeout, with the I/O timeouts set: the stream for the session and a
/// clone of the socket to shut it down.
fn open_tcp(ep: &Endpoint) -> Result<(TcpStream, TcpStream), SftpError> {
    let transient = |problem: String| error(ep, Fault::Transient, true, problem);
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
    Ok((stream, socket))
}

/// The strict known_hosts check of the key the server sent: unknown,
/// changed or uncheckable keys are permanent faults; nothing is ever added.
fn check_host_key(ep: &Endpoint, session: &Session) -> Result<(), SftpError> {
    let permanent = |problem: String| error(ep, Fault::Permanent, true, problem);
    let transient = |problem: String| error(ep, Fault::Transient, true, problem);
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
    Ok(())
}

/// Key (or password) login; a definite refusal is permanent.
fn login(ep: &Endpoint, session: &Session) -> Result<(), SftpError> {
    let permanent = |problem: String| error(ep, Fault::Permanent, true, problem);
    let transient = |problem: String| error(ep, Fault::Transient, true, problem);
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
        // libssh2 reports both a signed key the server refused (ProFTPD
        // accepts the key's offer, then refuses the signature) and a
        // connection lost while waiting for the answer as
        // PUBLICKEY_UNVERIFIED: the server still answering on the session
        // (its list of login methods) makes it a definite refusal.
        let refused = match e.code() {
            ErrorCode::Session(LIBSSH2_ERROR_AUTHENTICATION_FAILED | LIBSSH2_ERROR_FILE) => true,
            ErrorCode::Session(LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED) => {
                session.auth_methods(&ep.user).is_ok()
            }
            _ => false,
        };
        return Err(if refused {
            permanent(format!(
                "{} refused {what}: {e}; check that the account exists and that its authorized_keys holds this key's public half (or the password is right)",
                ep.address()
            ))
        } else {
            transient(format!("login failed: {e}"))
        });
    }
    if !session.authenticated() {
        return Err(permanent(format!(
            "{} did not accept the login; check the account with the peer's admin",
            ep.address()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
