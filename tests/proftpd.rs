//! A real ProFTPD with `mod_sftp` on 127.0.0.1 for the SFTP tests: a second
//! server implementation beside OpenSSH's (`tests/sshd.rs`), with the
//! switches of the hosted services stxd meets (extensions turned off, a
//! store size limit, password logins).
//!
//! Each [`Proftpd`] lives in its own temp dir with its own config file,
//! host key, virtual users (`AuthUserFile`, one `<user>.keys` per user in
//! RFC 4716 format), scoreboard and pid file; it runs in the foreground
//! (`-n`) on a free port and is stopped by its pid on drop (never by name).
//! As root, the virtual users take the uid they are given (the test's own
//! by default, or a throwaway account's); as another user, ProFTPD runs as
//! that user and so do its logins. A missing proftpd fails the test with the
//! packages to install: these tests never skip.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::sshd::{free_port, keygen, set_mode};

const PROFTPD: &str = "/usr/sbin/proftpd";
const MOD_SFTP: &str = "/usr/lib/proftpd/mod_sftp.so";

/// The virtual user every [`Proftpd`] has.
pub const USER: &str = "stx";

/// How a [`Proftpd`] differs from the default (every extension on, no size
/// limit, renames allowed). Its users are not options: the key-only
/// [`USER`] with the test's uid, and the accounts [`Proftpd::admit`]ted,
/// kept across [`Proftpd::reconfigure`].
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `mod_sftp` extensions turned off (`fsync`, `posixRename`…).
    pub without: Vec<&'static str>,
    /// `MaxStoreFileSize` in bytes: a larger upload is refused, as a full
    /// disk refuses it.
    pub max_store: Option<u64>,
    /// A folder where renames are refused (`<Limit RNFR RNTO> DenyAll`).
    pub refuse_renames_in: Option<PathBuf>,
}

/// A virtual user: its uid and gid and an optional password (key login
/// always works with the client key).
#[derive(Debug, Clone)]
pub struct VirtualUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub password: Option<String>,
}

/// A running ProFTPD and the files a client needs to reach it.
pub struct Proftpd {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    /// The client's public key in RFC 4716 format (`<user>.keys`).
    rfc4716: Vec<u8>,
    options: Options,
    /// The accounts admitted besides [`USER`].
    admitted: Vec<VirtualUser>,
}

#[allow(unsafe_code)]
pub fn ids() -> (u32, u32) {
    // SAFETY: geteuid and getegid have no preconditions and cannot fail.
    unsafe { (libc::geteuid(), libc::getegid()) }
}

#[allow(unsafe_code)]
fn group_name(gid: u32) -> String {
    // SAFETY: getgrgid has no preconditions; its result is read at once.
    unsafe {
        let gr = libc::getgrgid(gid);
        assert!(!gr.is_null(), "no group entry for gid {gid}");
        std::ffi::CStr::from_ptr((*gr).gr_name)
            .to_string_lossy()
            .into_owned()
    }
}

/// A crypt(3) SHA-512 hash of `password` (perl is part of every Debian).
pub fn crypt(password: &str) -> String {
    let out = Command::new("perl")
        .args(["-e", "print crypt($ARGV[0], q($6$stxdtest$))", password])
        .output()
        .expect("perl (to hash a test password)");
    let hash = String::from_utf8(out.stdout).expect("hash");
    assert!(hash.starts_with("$6$"), "crypt gave {hash:?}");
    hash
}

impl Proftpd {
    pub fn start() -> Proftpd {
        Proftpd::start_with(&Options::default())
    }

    /// Starts ProFTPD with `options`; the client key is authorized for
    /// every user, known_hosts holds the host key for `[127.0.0.1]:PORT`.
    pub fn start_with(options: &Options) -> Proftpd {
        assert!(
            Path::new(PROFTPD).exists() && Path::new(MOD_SFTP).exists(),
            "{PROFTPD} or {MOD_SFTP} is missing: install proftpd-core and proftpd-mod-crypto (apt-get install -y proftpd-core proftpd-mod-crypto); the SFTP tests need a second real server"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        keygen(&d.join("host_ed25519"));
        keygen(&d.join("client_ed25519"));
        let rfc4716 = Command::new("ssh-keygen")
            .arg("-e")
            .arg("-f")
            .arg(d.join("client_ed25519.pub"))
            .output()
            .expect("ssh-keygen -e");
        assert!(rfc4716.status.success(), "ssh-keygen -e failed");
        let port = free_port();
        let mut server = Proftpd {
            dir,
            port,
            child: None,
            rfc4716: rfc4716.stdout,
            options: options.clone(),
            admitted: Vec::new(),
        };
        server.write_known_hosts_for(
            &server.client_known_hosts(),
            port,
            &server.dir().join("host_ed25519"),
        );
        server.configure(options);
        server.resume();
        server
    }

    /// Stops the server, rewrites its config for `options` (same port, keys
    /// and users) and starts it again.
    pub fn reconfigure(&mut self, options: &Options) {
        self.stop();
        self.options = options.clone();
        self.configure(options);
        self.resume();
    }

    /// Adds `account` as a virtual user with its uid, gid and password
    /// (and key login), then restarts with the same options.
    pub fn admit(&mut self, account: &crate::servers::Account) {
        self.admitted.push(VirtualUser {
            name: account.name.clone(),
            uid: account.uid,
            gid: account.gid,
            password: account.password.clone(),
        });
        let options = self.options.clone();
        self.reconfigure(&options);
    }

    /// Restarts with renames refused in `dir` (none: allowed again).
    pub fn refuse_renames(&mut self, dir: Option<&Path>) {
        let mut options = self.options.clone();
        options.refuse_renames_in = dir.map(Path::to_owned);
        self.reconfigure(&options);
    }

    fn configure(&self, options: &Options) {
        let d = self.dir();
        let port = self.port;
        let rfc4716 = &self.rfc4716;
        let (uid, gid) = ids();
        let mut users = vec![VirtualUser {
            name: USER.into(),
            uid,
            gid,
            password: None,
        }];
        users.extend(self.admitted.iter().cloned());
        let mut passwd = String::new();
        let mut group = String::new();
        for u in &users {
            // The test's own user lives in the server's folder; another
            // user's home is `/` (the server's folder is not theirs).
            let home = if u.uid == uid { d } else { Path::new("/") };
            let hash = u.password.as_deref().map_or_else(|| "*".into(), crypt);
            passwd.push_str(&format!(
                "{}:{hash}:{}:{}::{}:/bin/sh\n",
                u.name,
                u.uid,
                u.gid,
                home.display()
            ));
            group.push_str(&format!("g{}::{}:\n", u.gid, u.gid));
            std::fs::write(d.join(format!("{}.keys", u.name)), rfc4716).expect("keys");
        }
        for (name, text) in [("passwd", passwd), ("group", group)] {
            std::fs::write(d.join(name), text).expect("user file");
            set_mode(&d.join(name), 0o600);
        }
        let mut config = format!(
            "ServerType standalone\nServerName \"stxd test\"\nDefaultAddress 127.0.0.1\n\
             SocketBindTight on\nPort {port}\nUseIPv6 off\nUseReverseDNS off\n\
             PidFile {d}/proftpd.pid\nScoreboardFile {d}/proftpd.scoreboard\nDelayTable none\n\
             WtmpLog off\nTransferLog none\nSystemLog {d}/system.log\nControlsEngine off\n\
             RequireValidShell off\nAllowOverwrite off\nMaxLoginAttempts 100\n\
             AuthOrder mod_auth_file.c\nAuthUserFile {d}/passwd\nAuthGroupFile {d}/group\n\
             ModulePath /usr/lib/proftpd\nLoadModule mod_sftp.c\n\
             SFTPEngine on\nSFTPLog {d}/sftp.log\nSFTPHostKey {d}/host_ed25519\n\
             SFTPAuthorizedUserKeys file:{d}/%u.keys\nSFTPAuthMethods publickey password\n",
            d = d.display()
        );
        if uid == 0 {
            // The default user has the test's uid: root when CI runs as root.
            config.push_str("RootLogin on\n");
        } else {
            // Not root: ProFTPD stays the test's user (it cannot switch).
            config.push_str(&format!(
                "User {}\nGroup {}\n",
                crate::servers::current_user(),
                group_name(gid)
            ));
        }
        if !options.without.is_empty() {
            let off: Vec<String> = options.without.iter().map(|x| format!("-{x}")).collect();
            config.push_str(&format!("SFTPExtensions {}\n", off.join(" ")));
        }
        if let Some(max) = options.max_store {
            config.push_str(&format!("MaxStoreFileSize {max} B\n"));
        }
        if let Some(dir) = &options.refuse_renames_in {
            config.push_str(&format!(
                "<Directory {}>\n  <Limit RNFR RNTO>\n    DenyAll\n  </Limit>\n</Directory>\n",
                dir.display()
            ));
        }
        std::fs::write(d.join("proftpd.conf"), config).expect("proftpd.conf");
        let check = Command::new(PROFTPD)
            .arg("-t")
            .arg("-c")
            .arg(d.join("proftpd.conf"))
            .output()
            .expect("run proftpd -t");
        assert!(
            check.status.success(),
            "proftpd -t refused the config: {}",
            String::from_utf8_lossy(&check.stderr)
        );
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn client_key(&self) -> PathBuf {
        self.dir().join("client_ed25519")
    }

    pub fn client_known_hosts(&self) -> PathBuf {
        self.dir().join("known_hosts")
    }

    pub fn host_key(&self) -> PathBuf {
        self.dir().join("host_ed25519")
    }

    pub fn write_known_hosts_for(&self, file: &Path, port: u16, key: &Path) {
        let text = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
        let key: Vec<&str> = text.split_whitespace().take(2).collect();
        std::fs::write(file, format!("[127.0.0.1]:{port} {}\n", key.join(" ")))
            .expect("known_hosts");
    }

    /// (Re)starts ProFTPD in the foreground on the same port and config;
    /// waits until it accepts connections.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "proftpd already running");
        let _ = std::fs::remove_file(self.dir().join("proftpd.pid"));
        let child = Command::new(PROFTPD)
            .arg("-n")
            .arg("-q")
            .arg("-c")
            .arg(self.dir().join("proftpd.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start proftpd");
        let mut child = child;
        let pid_file = self.dir().join("proftpd.pid");
        crate::servers::wait_listening("proftpd", &mut child, &pid_file, self.port, &|| self.log());
        self.child = Some(child);
    }

    /// Stops ProFTPD by its pid: SIGTERM, on which the listener ends its
    /// sessions too, then waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = i32::try_from(child.id()) {
                // SAFETY: kill on our own child's pid, which wait() has not reaped.
                #[allow(unsafe_code)]
                unsafe {
                    libc::kill(pid, libc::SIGTERM);
                }
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The server's own logs (startup and `mod_sftp`'s).
    pub fn log(&self) -> String {
        ["system.log", "sftp.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir().join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Proftpd {
    fn drop(&mut self) {
        self.stop();
    }
}
