//! The two SFTP server implementations the SFTP tests run against, behind
//! one trait: OpenSSH's sshd ([`crate::sshd`]) and ProFTPD's `mod_sftp`
//! ([`crate::proftpd`]). [`on_both_servers!`] turns each case `fn(Kind)` of
//! a test file into one `#[test]` per server (`on_sshd::case`,
//! `on_proftpd::case`), so a filter picks a server and a failure names it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::proftpd::Proftpd;
use crate::sshd::{Sshd, set_mode};
use crate::util::unique;

pub use crate::sshd::{current_user, wait_listening};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sshd,
    Proftpd,
}

/// What a client needs to reach a running test server, and its controls.
pub trait SftpServer {
    fn port(&self) -> u16;
    /// The account the client key logs in as.
    fn user(&self) -> String;
    /// The authorized client's private key (0600).
    fn client_key(&self) -> PathBuf;
    /// A known_hosts file holding the server's host key for its port.
    fn client_known_hosts(&self) -> PathBuf;
    /// The server's private host key (its `.pub` beside it).
    fn host_key(&self) -> PathBuf;
    /// Writes `file` as a known_hosts naming `[127.0.0.1]:port` with the
    /// public half of `key`.
    fn write_known_hosts_for(&self, file: &Path, port: u16, key: &Path);
    fn stop(&mut self);
    fn resume(&mut self);
    fn log(&self) -> String;
    /// Lets `account` log in with the client key.
    fn admit(&mut self, account: &Account);
    /// Restarts the server refusing renames in `dir` (`None`: allowed
    /// again), as a share whose admin forbids them.
    fn refuse_renames(&mut self, dir: Option<&Path>);
    /// The ProFTPD behind it, to change its config.
    fn as_proftpd(&mut self) -> Option<&mut Proftpd> {
        None
    }
}

/// Starts a server of this kind with its defaults.
pub fn start(kind: Kind) -> Box<dyn SftpServer> {
    match kind {
        Kind::Sshd => Box::new(Sshd::start()),
        Kind::Proftpd => Box::new(Proftpd::start()),
    }
}

impl SftpServer for Sshd {
    fn port(&self) -> u16 {
        Sshd::port(self)
    }
    fn user(&self) -> String {
        current_user()
    }
    fn client_key(&self) -> PathBuf {
        Sshd::client_key(self)
    }
    fn client_known_hosts(&self) -> PathBuf {
        Sshd::client_known_hosts(self)
    }
    fn host_key(&self) -> PathBuf {
        self.dir().join("host_ed25519")
    }
    fn write_known_hosts_for(&self, file: &Path, port: u16, key: &Path) {
        Sshd::write_known_hosts_for(self, file, port, key);
    }
    fn stop(&mut self) {
        Sshd::stop(self);
    }
    fn resume(&mut self) {
        Sshd::resume(self);
    }
    fn log(&self) -> String {
        Sshd::log(self)
    }
    fn admit(&mut self, _: &Account) {
        // A real account: sshd reads the one authorized_keys file with the
        // account's rights.
        set_mode(self.dir(), 0o755);
        set_mode(&self.dir().join("authorized_keys"), 0o644);
    }
    fn refuse_renames(&mut self, dir: Option<&Path>) {
        // sftp-server's request filter (`-P`) holds for the whole server,
        // `dir` included; both of its renames are refused.
        let refused: &[&str] = if dir.is_some() {
            &["rename", "posix-rename"]
        } else {
            &[]
        };
        self.deny_requests(refused);
    }
}

impl SftpServer for Proftpd {
    fn port(&self) -> u16 {
        Proftpd::port(self)
    }
    fn user(&self) -> String {
        crate::proftpd::USER.into()
    }
    fn client_key(&self) -> PathBuf {
        Proftpd::client_key(self)
    }
    fn client_known_hosts(&self) -> PathBuf {
        Proftpd::client_known_hosts(self)
    }
    fn host_key(&self) -> PathBuf {
        Proftpd::host_key(self)
    }
    fn write_known_hosts_for(&self, file: &Path, port: u16, key: &Path) {
        Proftpd::write_known_hosts_for(self, file, port, key);
    }
    fn stop(&mut self) {
        Proftpd::stop(self);
    }
    fn resume(&mut self) {
        Proftpd::resume(self);
    }
    fn log(&self) -> String {
        Proftpd::log(self)
    }
    fn admit(&mut self, account: &Account) {
        Proftpd::admit(self, account);
    }
    fn refuse_renames(&mut self, dir: Option<&Path>) {
        Proftpd::refuse_renames(self, dir);
    }
    fn as_proftpd(&mut self) -> Option<&mut Proftpd> {
        Some(self)
    }
}

/// A local account made for one test (`useradd`), removed on drop.
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Its password, when it has one (key logins work either way).
    pub password: Option<String>,
}

impl Account {
    pub fn create() -> Account {
        Account::with_password(None)
    }

    /// An account whose password is `password` (`None`: no password works,
    /// yet the account is not locked, which sshd would refuse even a key
    /// login).
    pub fn with_password(password: Option<&str>) -> Account {
        let name = format!("stxt{}", unique() % 1_000_000_000);
        let hash = password.map_or_else(|| "*".to_owned(), crate::proftpd::crypt);
        let status = Command::new("useradd")
            .args([
                "--no-create-home",
                "--user-group",
                "--password",
                &hash,
                "--shell",
            ])
            .arg("/usr/sbin/nologin")
            .arg(&name)
            .status()
            .expect("useradd (run the tests as root: they create a throwaway account)");
        assert!(status.success(), "useradd {name} failed: run as root");
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").arg(flag).arg(&name).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        Account {
            name,
            uid,
            gid,
            password: password.map(str::to_owned),
        }
    }

    pub fn owns(&self, path: &Path) {
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid)).expect("chown");
    }
}

impl Drop for Account {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).status();
    }
}

/// One `#[test]` per server for each case `fn(Kind)` named.
macro_rules! on_both_servers {
    ($($case:ident),* $(,)?) => {
        mod on_sshd {
            $(
                #[test]
                fn $case() {
                    super::$case(crate::servers::Kind::Sshd)
                }
            )*
        }
        mod on_proftpd {
            $(
                #[test]
                fn $case() {
                    super::$case(crate::servers::Kind::Proftpd)
                }
            )*
        }
    };
}
