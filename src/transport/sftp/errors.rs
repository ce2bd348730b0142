//! What went wrong and whether retrying can help: [`SftpError`] and its
//! [`Fault`], and how SFTP, stream and local failures of a poll map to them.

use std::io;
use std::path::Path;

use ssh2::ErrorCode;

use super::{Endpoint, Io};

/// SFTP status codes (draft-ietf-secsh-filexfer-02).
pub(super) const SFTP_NO_SUCH_FILE: i32 = 2;
pub(super) const SFTP_PERMISSION_DENIED: i32 = 3;
/// `SSH_FX_OP_UNSUPPORTED`: e.g. a server without `fsync@openssh.com`.
pub(super) const SFTP_OP_UNSUPPORTED: i32 = 8;

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
    pub(super) lost: bool,
}

impl SftpError {
    pub fn is_permanent(&self) -> bool {
        self.fault == Fault::Permanent
    }
}

pub(super) fn error(ep: &Endpoint, fault: Fault, lost: bool, problem: String) -> SftpError {
    SftpError {
        link: ep.link.clone(),
        address: ep.address(),
        problem,
        fault,
        lost,
    }
}

impl Io<'_> {
    /// An SFTP failure on `path`: permission problems need a person; status
    /// errors leave the session usable; anything else drops it.
    pub(super) fn remote(&self, what: &str, path: &Path, e: ssh2::Error) -> SftpError {
        let (fault, lost, hint) = match e.code() {
            ErrorCode::SFTP(SFTP_PERMISSION_DENIED) => (
                Fault::Permanent,
                false,
                "check the account's rights on the share with the peer's admin",
            ),
            ErrorCode::SFTP(SFTP_OP_UNSUPPORTED) => (
                Fault::Permanent,
                false,
                "the server does not support this operation; ask the peer's admin",
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
    pub(super) fn stream(&self, what: &str, path: &Path, e: io::Error) -> SftpError {
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
    pub(super) fn local(&self, what: &str, path: &Path, e: io::Error) -> SftpError {
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
}
