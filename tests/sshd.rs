//! A real OpenSSH sshd on 127.0.0.1 for the SFTP tests (the recipe of
//! `docs/dependencies.md`),
//! and a TCP proxy that injects network faults between client and server.
//!
//! Each [`Sshd`] lives in its own temp dir with its own host key, client
//! key, authorized_keys and known_hosts (the tests' throwaway accounts,
//! `stxt*`, may also log in with their password), listens on a free port, and is
//! killed by its pid on drop (never by name). A missing sshd fails the test
//! with the package to install: these tests never skip.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const SSHD: &str = "/usr/sbin/sshd";

/// A running sshd and the files a client needs to reach it.
pub struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    /// SFTP requests the server refuses (`internal-sftp -P`), comma-separated.
    denied: String,
}

/// Generates an unencrypted Ed25519 key pair at `path` (+ `.pub`), 0600.
pub fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("ssh-keygen (install openssh-client)");
    assert!(status.success(), "ssh-keygen failed for {}", path.display());
}

/// A port nobody listens on right now, below the kernel's ephemeral range.
pub fn free_port() -> u16 {
    // A port the kernel hands out for an outgoing connection (or a bind to
    // port 0) is one of its ephemeral range: a server restarting on such a
    // port, or started a moment after it was chosen, may find it taken by a
    // connection of another test running beside. Ports below that range
    // are only ever taken on purpose: the first free one from a starting
    // point that differs between calls and processes.
    static CALLS: AtomicU64 = AtomicU64::new(0);
    const FIRST: u16 = 10_000;
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    let span = u64::from(ephemeral.saturating_sub(FIRST));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    let start = u64::from(std::process::id())
        .wrapping_mul(7_919)
        .wrapping_add(CALLS.fetch_add(1, Ordering::Relaxed).wrapping_mul(104_729))
        .wrapping_add(nanos);
    for i in 0..span {
        let port = FIRST + u16::try_from((start.wrapping_add(i)) % span).expect("below the range");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

fn public_key(path: &Path) -> String {
    let text = std::fs::read_to_string(path.with_extension("pub")).expect("public key");
    // "type base64 comment" → "type base64"
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Waits until a server this test started has written `pid_file` and
/// accepts connections on `port`; fails with its log if it exits or
/// takes more than 30 s.
pub fn wait_listening(
    name: &str,
    child: &mut std::process::Child,
    pid_file: &Path,
    port: u16,
    log: &dyn Fn() -> String,
) {
    use std::time::{Duration, Instant};
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if pid_file.exists() && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{name} exited with {status}: {}", log());
        }
        assert!(Instant::now() < deadline, "{name} did not start: {}", log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The name of the user the tests run as (sshd logs in real accounts).
#[allow(unsafe_code)]
pub fn current_user() -> String {
    // SAFETY: geteuid has no preconditions; getpwuid's result is read at once.
    let name = unsafe {
        let pw = libc::getpwuid(libc::geteuid());
        assert!(!pw.is_null(), "no passwd entry for the test's user");
        std::ffi::CStr::from_ptr((*pw).pw_name)
    };
    name.to_string_lossy().into_owned()
}

impl Sshd {
    /// Starts sshd; the client key is authorized, known_hosts holds the host
    /// key for `[127.0.0.1]:PORT`.
    pub fn start() -> Sshd {
        assert!(
            Path::new(SSHD).exists(),
            "{SSHD} is missing: install openssh-server (apt-get install -y openssh-server); the SFTP tests need a real sshd"
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        std::fs::create_dir_all("/run/sshd")
            .expect("create /run/sshd (sshd's privilege separation dir; run as root)");
        keygen(&d.join("host_ed25519"));
        keygen(&d.join("client_ed25519"));
        std::fs::write(
            d.join("authorized_keys"),
            public_key(&d.join("client_ed25519")) + "\n",
        )
        .expect("authorized_keys");
        set_mode(&d.join("authorized_keys"), 0o600);
        let mut sshd = Sshd {
            dir,
            port: free_port(),
            child: None,
            denied: String::new(),
        };
        sshd.configure();
        sshd.write_known_hosts(&sshd.client_known_hosts(), &sshd.dir().join("host_ed25519"));
        sshd.resume();
        sshd
    }

    /// Writes sshd_config for this server's port, keys and refused
    /// requests, and has `sshd -t` check it.
    fn configure(&self) {
        let d = self.dir();
        let port = self.port;
        let sftp = if self.denied.is_empty() {
            "internal-sftp".to_owned()
        } else {
            format!("internal-sftp -P {}", self.denied)
        };
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nAddressFamily inet\nHostKey {d}/host_ed25519\n\
             HostKeyAlgorithms ssh-ed25519\nPidFile {d}/sshd.pid\nAuthorizedKeysFile {d}/authorized_keys\n\
             StrictModes no\nPubkeyAuthentication yes\nAuthenticationMethods publickey\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
             PermitRootLogin prohibit-password\nDisableForwarding yes\nPermitTTY no\n\
             Subsystem sftp {sftp}\nForceCommand {sftp}\n\
             MaxStartups 100:30:200\nLoginGraceTime 10\n\
             Match User stxt*\n  PasswordAuthentication yes\n  AuthenticationMethods publickey password\n",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).expect("sshd_config");
        let check = Command::new(SSHD)
            .arg("-t")
            .arg("-f")
            .arg(d.join("sshd_config"))
            .output()
            .expect("run sshd -t");
        assert!(
            check.status.success(),
            "sshd -t refused the config: {}",
            String::from_utf8_lossy(&check.stderr)
        );
    }

    /// Restarts the server refusing the SFTP requests named (sftp-server's
    /// `-P`, which answers them "permission denied"); none: all allowed.
    pub fn deny_requests(&mut self, requests: &[&str]) {
        self.stop();
        self.denied = requests.join(",");
        self.configure();
        self.resume();
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The authorized client's private key (0600).
    pub fn client_key(&self) -> PathBuf {
        self.dir().join("client_ed25519")
    }

    /// A known_hosts file holding the server's real host key.
    pub fn client_known_hosts(&self) -> PathBuf {
        self.dir().join("known_hosts")
    }

    /// Writes `file` as a known_hosts naming `[127.0.0.1]:PORT` with the
    /// public half of `key`.
    pub fn write_known_hosts(&self, file: &Path, key: &Path) {
        self.write_known_hosts_for(file, self.port, key);
    }

    /// The same for another port (a proxy in front of this server).
    pub fn write_known_hosts_for(&self, file: &Path, port: u16, key: &Path) {
        std::fs::write(file, format!("[127.0.0.1]:{port} {}\n", public_key(key)))
            .expect("known_hosts");
    }

    /// (Re)starts sshd on the same port, keys and config; waits until it
    /// accepts connections.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "sshd already running");
        let _ = std::fs::remove_file(self.dir().join("sshd.pid"));
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-f")
            .arg(self.dir().join("sshd_config"))
            .arg("-E")
            .arg(self.dir().join("sshd.log"))
            .stdin(Stdio::null())
            .spawn()
            .expect("start sshd");
        let mut child = child;
        let pid_file = self.dir().join("sshd.pid");
        wait_listening("sshd", &mut child, &pid_file, self.port, &|| self.log());
        self.child = Some(child);
    }

    /// Stops the listening sshd (by its pid); sessions already open are
    /// ended by the proxy, not here.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// What the proxy does to the connections it accepts from now on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forwards everything.
    None,
    /// Cuts both sides once the connection carried this many bytes (both
    /// directions counted).
    CutAfter(u64),
    /// Forwards nothing (the peer's timeouts must fire).
    Stall,
}

/// A TCP proxy on 127.0.0.1 in front of `upstream`, one thread per
/// direction per connection.
pub struct Proxy {
    port: u16,
    fault: Arc<Mutex<Fault>>,
    stop: Arc<AtomicBool>,
    /// Connections cut by a fault so far.
    cuts: Arc<AtomicU64>,
}

impl Proxy {
    pub fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let fault = Arc::new(Mutex::new(Fault::None));
        let stop = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicU64::new(0));
        let (f, s, c) = (fault.clone(), stop.clone(), cuts.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let fault = *f.lock().expect("fault lock");
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                connect_pair(client, server, fault, c.clone());
            }
        });
        Proxy {
            port,
            fault,
            stop,
            cuts,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Sets the fault for the next connections.
    pub fn set(&self, fault: Fault) {
        *self.fault.lock().expect("fault lock") = fault;
    }

    pub fn cuts(&self) -> u64 {
        self.cuts.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn connect_pair(client: TcpStream, server: TcpStream, fault: Fault, cuts: Arc<AtomicU64>) {
    let carried = Arc::new(AtomicU64::new(0));
    let cut = Arc::new(AtomicBool::new(false));
    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    for (from, to) in [(client, server), (s2, c2)] {
        let (carried, cut, cuts) = (carried.clone(), cut.clone(), cuts.clone());
        std::thread::spawn(move || pump(from, to, fault, &carried, &cut, &cuts));
    }
}

fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    fault: Fault,
    carried: &AtomicU64,
    cut: &AtomicBool,
    cuts: &AtomicU64,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        match fault {
            Fault::Stall => continue,
            Fault::CutAfter(limit) => {
                let before = carried.fetch_add(n as u64, Ordering::SeqCst);
                if before + n as u64 > limit {
                    let allowed = limit.saturating_sub(before) as usize;
                    let _ = to.write_all(&buf[..allowed.min(n)]);
                    if !cut.swap(true, Ordering::SeqCst) {
                        cuts.fetch_add(1, Ordering::SeqCst);
                    }
                    break;
                }
            }
            Fault::None => {}
        }
        if cut.load(Ordering::SeqCst) || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
