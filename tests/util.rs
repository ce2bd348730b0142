//! Test harness: a private folder per test holding a copy of the repository's
//! config and samples, the `stxd` binary run inside it, and helpers to seal
//! payloads into Fichier SecuTix files. Real folders, real SQLite files.

use std::path::{Path, PathBuf};
use std::process::Output;

use stxd::format::Kind;
use stxd::format::envelope::{Manifest, Secret};
use stxd::outbound::{Header, publish};

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A private working directory with `config/` and `samples/` copied in.
pub struct Sandbox {
    dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().expect("temp dir");
        copy_tree(&repo().join("config"), &dir.path().join("config"));
        copy_tree(&repo().join("samples"), &dir.path().join("samples"));
        own_console_port(&dir.path().join("config/stxd.toml"));
        Sandbox { dir }
    }

    /// The port of the sandbox's console (`[http] listen`).
    pub fn console_port(&self) -> u16 {
        let text = std::fs::read_to_string(self.path().join("config/stxd.toml")).unwrap();
        let at = text
            .find("listen = \"127.0.0.1:")
            .expect("an [http] listen")
            + 20;
        text[at..].split('"').next().unwrap().parse().unwrap()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `stxd ARGS…` in the sandbox on its `config/stxd.toml` (named by
    /// `$STXD_CONFIG`, so that a config installed on the test machine is
    /// never read; `--config` in ARGS wins).
    pub fn stxd(&self, args: &[&str]) -> Run {
        self.stxd_env(args, &[])
    }

    /// [`Sandbox::stxd`] with more environment variables (e.g.
    /// `STXD_FAILPOINT`, which makes it kill itself at a named point).
    pub fn stxd_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_stxd"))
            .args(args)
            .current_dir(self.path())
            .env("STXD_CONFIG", "config/stxd.toml")
            .env_remove("STXD_FAILPOINT")
            .env_remove("STXD_BUSY_WAIT")
            .env("STXD_LOG", "warn")
            .envs(env.iter().copied())
            .output()
            .expect("run stxd");
        Run(output)
    }

    /// Runs `stxd ARGS…` under strace, killed with SIGKILL on entry to the
    /// `nth` call of `syscall` (`fsync`, `linkat`, `unlink`…). Fails when
    /// strace is missing: `.ci/run` installs it.
    pub fn stxd_killed_at(&self, syscall: &str, nth: u32, args: &[&str]) -> Run {
        let strace = Path::new("/usr/bin/strace");
        assert!(
            strace.exists(),
            "strace is needed to kill at an exact system call: apt-get install strace"
        );
        let inject = format!("inject={syscall}:signal=KILL:when={nth}");
        let output = std::process::Command::new(strace)
            .args(["-f", "-qq", "-o", "/dev/null", "-e", &inject])
            .arg(env!("CARGO_BIN_EXE_stxd"))
            .args(args)
            .current_dir(self.path())
            .env("STXD_CONFIG", "config/stxd.toml")
            .env_remove("STXD_FAILPOINT")
            .env_remove("STXD_BUSY_WAIT")
            .env("STXD_LOG", "warn")
            .output()
            .expect("run strace");
        Run(output)
    }

    /// `stxd --json ARGS…`, which must succeed, its output parsed.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        json(self, args, 0)
    }

    /// Allots `seats` (`BLOCK:ROW:FROM-TO`) of the demo's performance 1701
    /// to the demo link, at the manager.
    pub fn allot(&self, seats: &str) {
        self.stxd(&allot_args(seats)).expect_code(0);
    }

    /// Sells `seat` of the demo's performance (local id 1) at full adult
    /// price, at the distributor; returns the sales line id.
    pub fn sell(&self, seat: &str) -> i64 {
        let sold = self.json(&[
            "sale",
            "sell",
            "--performance",
            "1",
            "--tariff",
            "NORMAL",
            "--audience",
            "ADULT",
            "--seat",
            seat,
        ]);
        sold["line"]["line"].as_i64().expect("a sales line id")
    }

    /// `stxd init` then `stxd check`, both succeeding: the demo's stores,
    /// folders and secret created, its setup ready.
    pub fn ready(&self) -> &Sandbox {
        self.stxd(&["init"]).expect_code(0);
        self.stxd(&["check"]).expect_code(0);
        self
    }

    /// Plays the manual's first use #1 and #2 on the demo: stores created,
    /// seat plan and catalogue exported and imported through the samples'
    /// mapping, product TRAV-BIL (local id 1) validated and assigned to the
    /// sales profile GUICHET. Ready for contingents and sales.
    pub fn first_use_done(&self) -> &Sandbox {
        self.ready();
        self.stxd(&["mapping", "import", "samples/tourism/mapping.csv"])
            .expect_code(0);
        self.stxd(&["export", "seatplan", "--link", "opera-tourism"])
            .expect_code(0);
        self.stxd(&["export", "catalogue", "--link", "opera-tourism"])
            .expect_code(0);
        self.stxd(&["process"]).expect_code(0);
        self.stxd(&["catalogue", "validate", "--all"])
            .expect_code(0);
        self.stxd(&["catalogue", "assign-profile", "1", "GUICHET"])
            .expect_code(0);
        self
    }

    /// [`Sandbox::first_use_done`], then seats A 1-4 of PARTERRE of 1701
    /// allotted to the demo link, exported and applied at the distributor:
    /// ready to sell them.
    pub fn contingent_applied(&self) -> &Sandbox {
        self.first_use_done();
        self.allot("PARTERRE:A:1-4");
        self.stxd(&["export", "contingent", "--link", "opera-tourism"])
            .expect_code(0);
        self.stxd(&["process"]).expect_code(0);
        self
    }

    /// The demo link's secret, as `stxd check` generates it.
    pub fn demo_secret(&self) -> Secret {
        stxd::config::read_secret(&self.path().join("var/secrets/opera-tourism.key"))
            .expect("demo secret (run `stxd check` first)")
    }
}

/// The result of one `stxd` run.
pub struct Run(pub Output);

impl Run {
    pub fn code(&self) -> i32 {
        self.0.status.code().unwrap_or(-1)
    }

    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }

    /// Whether the process died by SIGKILL (a failpoint or an injected
    /// kill). Under strace, the tracer reports the tracee's death by
    /// exiting 128 + 9 or by dying the same way.
    pub fn killed(&self) -> bool {
        use std::os::unix::process::ExitStatusExt;
        self.0.status.signal() == Some(9) || self.0.status.code() == Some(137)
    }

    /// Asserts the exit code, showing both outputs when it differs.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code(),
            code,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
}

/// Runs `stxd --json ARGS` in `sb`, expects exit code `code`, and parses
/// what it printed.
pub fn json(sb: &Sandbox, args: &[&str], code: i32) -> serde_json::Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let run = sb.stxd(&all);
    run.expect_code(code);
    serde_json::from_str(&run.stdout()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout()))
}

/// Gives the console of a copy of the demo config (`[http] listen =
/// "127.0.0.1:PORT"`) a free port of its own, so that daemons running side
/// by side never share one.
pub fn own_console_port(config: &Path) {
    let text = std::fs::read_to_string(config).expect("demo config");
    let key = "listen = \"127.0.0.1:";
    let Some(at) = text.find(key).map(|i| i + key.len()) else {
        return;
    };
    let end = at + text[at..].find('"').expect("a quoted listen");
    let port = crate::sshd::free_port();
    let text = format!("{}{port}{}", &text[..at], &text[end..]);
    std::fs::write(config, text).expect("demo config");
}

pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A test secret (never used outside tests).
pub fn test_secret() -> Secret {
    Secret::new(b"test secret for the opera-tourism link".to_vec())
}

/// The sending side of the demo link for `kind`.
pub fn header(kind: Kind, sequence: u64) -> Header {
    let (sender, recipient) = match kind {
        Kind::Sales => ("TOURISM", "OPERA"),
        _ => ("OPERA", "TOURISM"),
    };
    Header {
        format_version: 1,
        kind,
        link: "opera-tourism".into(),
        sender: sender.into(),
        recipient: recipient.into(),
        login: "TOURISM_OPE@TOURISM".into(),
        sequence,
        created: time::macros::datetime!(2026-11-28 09:00:00 UTC),
    }
}

/// Seals `payload` (announcing `records`) into `dir` as file `sequence` of
/// `kind` on the demo link.
pub fn seal(
    dir: &Path,
    secret: &Secret,
    kind: Kind,
    sequence: u64,
    payload: &[u8],
    records: u64,
) -> Manifest {
    std::fs::create_dir_all(dir).expect("create dir");
    publish(dir, &header(kind, sequence), secret, |w| {
        w.write_all(payload)?;
        Ok(records)
    })
    .expect("publish")
}

/// A SALES payload of at least `bytes` bytes, and its line count.
pub fn sales_payload(bytes: usize) -> (Vec<u8>, u64) {
    use stxd::format::sales::{Line, Operation, OrderRef, Place, Ticket, Writer};
    use stxd::ident::{Code, TechId};
    use stxd::money::Currency;

    let id = |v| TechId::new(v).expect("id");
    let mut w = Writer::new(Vec::new()).expect("writer");
    let start = time::macros::datetime!(2026-12-01 10:00:00 UTC);
    let mut line = 0u64;
    let mut written = 0usize;
    while written < bytes {
        line += 1;
        w.write(&Line::Ticket(Box::new(Ticket {
            rate_version: None,
            logical_seat_category: None,
            line,
            operation: Operation::Sale,
            time: start + time::Duration::seconds((line % 86_400) as i64),
            order: OrderRef::new(&format!("T-{line:09}")).expect("order"),
            refund_of: None,
            performance: id(1701),
            place: Place::Seat {
                block: id(3301),
                row: Code::new("A").expect("row"),
                seat: Code::new(&(line % 20 + 1).to_string()).expect("seat"),
            },
            seat_category: id(2001),
            tariff_type: id(1201),
            audience_subcategory: id(1301),
            amount: 8500,
            currency: Currency::new("EUR").expect("currency"),
            vat_code: id(1101),
        })))
        .expect("write a line");
        // Each line is longer than 60 bytes.
        written += 60;
    }
    let (payload, lines) = w.finish().expect("finish");
    (payload, lines)
}

/// The valid payload samples of each kind, with their record counts as the
/// readers count them.
pub fn valid_payloads() -> Vec<(Kind, PathBuf)> {
    vec![
        (Kind::Seatplan, repo().join("samples/opera/seatplan.xml")),
        (Kind::Catalogue, repo().join("samples/opera/catalogue.xml")),
        (
            Kind::Contingent,
            repo().join("samples/payloads/contingent.csv"),
        ),
        (Kind::Sales, repo().join("samples/payloads/sales.csv")),
    ]
}

/// How long the daemon helpers wait for something before failing. Only an
/// upper bound: a passing wait ends as soon as its condition holds (seconds
/// at most). A two-daemon wait once timed out at 30 s in CI (a 2-core machine
/// running three tests at a time), for a reason its output did not keep.
pub const DAEMON_DEADLINE: std::time::Duration = std::time::Duration::from_secs(90);
const DAEMON_POLL: std::time::Duration = std::time::Duration::from_millis(50);

/// How long a test waits for the daemon to do something ([`DAEMON_DEADLINE`]).
pub const DEADLINE: std::time::Duration = DAEMON_DEADLINE;
/// How often a waiting test looks again.
pub const POLL: std::time::Duration = DAEMON_POLL;

/// Every path under `dir` (files and folders, recursively), sorted.
pub fn every_path(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path.clone());
            }
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The manifests in `dir` whose name contains `kind`, in any case
/// (`"seatplan"` or `"SEATPLAN"`; `""` for all); none when `dir` is missing.
pub fn manifests(dir: &Path, kind: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let kind = kind.to_lowercase();
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".stx") && n.to_lowercase().contains(&kind))
        .collect()
}

/// Waits until a manifest of `kind` is in `dir`, failing with `log` (the
/// daemon's) after [`DEADLINE`].
#[track_caller]
pub fn wait_for_file(dir: &Path, kind: &str, log: impl Fn() -> String) {
    let start = std::time::Instant::now();
    while manifests(dir, kind).is_empty() {
        assert!(
            start.elapsed() < DEADLINE,
            "no {kind} file in {} after {DEADLINE:?}; daemon log:\n{}",
            dir.display(),
            log()
        );
        std::thread::sleep(POLL);
    }
}

/// Waits until no manifest of `kind` is left in `dir` (an archive move
/// links into its new folder before it unlinks the old name), failing with
/// `log` after [`DEADLINE`].
#[track_caller]
pub fn wait_until_gone(dir: &Path, kind: &str, log: impl Fn() -> String) {
    let start = std::time::Instant::now();
    while !manifests(dir, kind).is_empty() {
        assert!(
            start.elapsed() < DEADLINE,
            "{kind} file still in {} after {DEADLINE:?}; daemon log:\n{}",
            dir.display(),
            log()
        );
        std::thread::sleep(POLL);
    }
}

/// `stxd contingent allocate` of `seats` (`BLOCK:ROW:FROM-TO`) of the
/// demo's performance 1701 to the demo link.
pub fn allot_args(seats: &str) -> [&str; 8] {
    [
        "contingent",
        "allocate",
        "--link",
        "opera-tourism",
        "--performance",
        "1701",
        "--seats",
        seats,
    ]
}

/// A running `stxd run` in a sandbox, its stderr in a log file; killed when
/// dropped so no test leaves it behind.
pub struct Daemon {
    child: std::process::Child,
    log: PathBuf,
}

impl Daemon {
    /// Starts `stxd run` at log level info and waits for "ready".
    pub fn start(sb: &Sandbox) -> Daemon {
        Daemon::start_with(sb, "info")
    }

    /// Starts `stxd run` with this `STXD_LOG` filter and waits for "ready".
    pub fn start_with(sb: &Sandbox, filter: &str) -> Daemon {
        Daemon::start_args(sb, &[], filter)
    }

    /// Starts `stxd ARGS… run` (global options such as `--config FILE`)
    /// with this `STXD_LOG` filter and waits for "ready".
    pub fn start_args(sb: &Sandbox, args: &[&str], filter: &str) -> Daemon {
        let daemon = Daemon::spawn(sb, args, filter, &[]);
        daemon.wait_log("ready");
        daemon
    }

    /// Spawns `stxd ARGS… run` with this `STXD_LOG` filter and these
    /// environment variables (e.g. `NOTIFY_SOCKET`), without waiting for
    /// anything. systemd's variables are only those given.
    pub fn spawn(
        sb: &Sandbox,
        args: &[&str],
        filter: &str,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Daemon {
        Daemon::spawn_via(sb, &[], args, filter, env)
    }

    /// Spawns `WRAPPER… stxd ARGS… run` (`strace` and its options, say):
    /// as [`Daemon::spawn`], the wrapper's children killed with it.
    pub fn spawn_via(
        sb: &Sandbox,
        wrapper: &[&str],
        args: &[&str],
        filter: &str,
        env: &[(&str, &std::ffi::OsStr)],
    ) -> Daemon {
        use std::process::{Command, Stdio};
        let log = sb.path().join(format!("daemon-{}.log", unique()));
        let err = std::fs::File::create(&log).expect("log file");
        let stxd = env!("CARGO_BIN_EXE_stxd");
        let mut cmd = match wrapper.split_first() {
            Some((program, options)) => {
                let mut cmd = Command::new(program);
                cmd.args(options).arg(stxd);
                cmd
            }
            None => Command::new(stxd),
        };
        let child = cmd
            .args(args)
            .arg("run")
            .current_dir(sb.path())
            .env("STXD_CONFIG", "config/stxd.toml")
            .env_remove("NOTIFY_SOCKET")
            .env_remove("WATCHDOG_USEC")
            .env_remove("WATCHDOG_PID")
            .env("STXD_LOG", filter)
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawn stxd run");
        Daemon { child, log }
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid")
    }

    /// The processes the spawned one started (under a wrapper, `stxd`
    /// itself).
    pub fn children(&self) -> Vec<i32> {
        let pid = self.pid();
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on the pid of a child this test spawned and has not reaped.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill failed");
    }

    /// Waits until the log contains `text` (`n`-th occurrence), failing
    /// with the log if it never does.
    #[track_caller]
    pub fn wait_log_n(&self, text: &str, n: usize) {
        let start = std::time::Instant::now();
        while self.log().matches(text).count() < n {
            assert!(
                start.elapsed() < DAEMON_DEADLINE,
                "no {text:?} (x{n}) in the daemon's log after {DAEMON_DEADLINE:?}:\n{}",
                self.log()
            );
            std::thread::sleep(DAEMON_POLL);
        }
    }

    #[track_caller]
    pub fn wait_log(&self, text: &str) {
        self.wait_log_n(text, 1);
    }

    /// Waits for the daemon to exit; its exit code (`None` if killed by a
    /// signal).
    #[track_caller]
    pub fn wait_exit(&mut self) -> Option<i32> {
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            assert!(
                start.elapsed() < DAEMON_DEADLINE,
                "the daemon did not exit:\n{}",
                self.log()
            );
            std::thread::sleep(DAEMON_POLL);
        }
    }

    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // A wrapper killed first could leave its child running. (Only
        // while it runs unreaped is its pid surely still its own.)
        let running = matches!(self.child.try_wait(), Ok(None));
        for pid in self.children().into_iter().filter(|_| running) {
            // SAFETY: kill(2) on a pid read from our child's list of children.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A small tmpfs mounted on a folder for one test, unmounted on drop.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    pub fn mount(dir: &Path, size: &str) -> Tmpfs {
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755")])
            .arg("tmpfs")
            .arg(dir)
            .status()
            .expect("mount (run the tests as root: they mount a small tmpfs)");
        assert!(
            status.success(),
            "mount a tmpfs on {}: run as root",
            dir.display()
        );
        Tmpfs(dir.to_owned())
    }

    /// The bytes free on it.
    pub fn free(&self) -> u64 {
        crate::interleavings::model::free_bytes(&self.0)
            .unwrap_or_else(|| panic!("stat -f {}: the bytes free", self.0.display()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A number unique enough to name a file of this test run.
pub fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// How an SFTP side reaches its server: the port on loopback, the account,
/// the authentication line (`key_file = "…"` or `password_file = "…"`),
/// the known_hosts file and more `[link.transport]` lines (`extra`).
#[derive(Debug, Clone)]
pub struct Reach {
    pub port: u16,
    pub user: String,
    pub auth: String,
    pub known_hosts: PathBuf,
    pub extra: String,
}

impl Reach {
    /// The server's port, account, client key and known_hosts.
    pub fn of(server: &dyn crate::servers::SftpServer) -> Reach {
        Reach {
            port: server.port(),
            user: server.user(),
            auth: Reach::key(&server.client_key()),
            known_hosts: server.client_known_hosts(),
            extra: String::new(),
        }
    }

    /// The `key_file` line of a key.
    pub fn key(key: &Path) -> String {
        format!("key_file = \"{}\"", key.display())
    }
}

/// The config of an institution reaching the demo link's share over SFTP
/// as `reach` says: the share is `share` on the server, this side's inbox
/// and outbox are under `local`. `load` is the TOML list body of its
/// master-data files.
pub fn sftp_side_toml(
    root: &Path,
    code: &str,
    role: &str,
    load: &str,
    reach: &Reach,
    share: &Path,
    local: &Path,
) -> String {
    format!(
        r#"state_dir = "{root}/state-{code}"
[[institution]]
code = "{code}"
role = "{role}"
load = [{load}]

[[link]]
name = "opera-tourism"
manager = "OPERA"
distributor = "TOURISM"
login = "TOURISM_OPE@TOURISM"
secret_file = "{root}/secret.key"

[link.transport]
kind = "sftp"
host = "127.0.0.1"
port = {port}
user = "{user}"
{auth}
known_hosts = "{known_hosts}"
remote_dir = "{share}"
local_dir = "{local}"
connect_timeout_seconds = 5
io_timeout_seconds = 3
{extra}
"#,
        root = root.display(),
        port = reach.port,
        user = reach.user,
        auth = reach.auth,
        known_hosts = reach.known_hosts.display(),
        extra = reach.extra,
        share = share.display(),
        local = local.display(),
    )
}

/// The config of an institution whose side of the demo link is the share's
/// folders themselves (a local transport on `share`): the SFTP server's side.
pub fn local_side_toml(root: &Path, code: &str, role: &str, load: &str, share: &Path) -> String {
    format!(
        "state_dir = \"{r}/state-{code}\"\n[[institution]]\ncode = \"{code}\"\nrole = \"{role}\"\nload = [{load}]\n\n\
         [[link]]\nname = \"opera-tourism\"\nmanager = \"OPERA\"\ndistributor = \"TOURISM\"\nlogin = \"TOURISM_OPE@TOURISM\"\n\
         secret_file = \"{r}/secret.key\"\ntransport = {{ kind = \"local\", dir = \"{s}\" }}\n",
        r = root.display(),
        s = share.display()
    )
}

/// The demo link's two servers in one sandbox, with their master data: one
/// side (`client`, "manager" or "distributor") an SFTP client of `server`
/// with its folders under `client/`, the other working on the share's
/// folders directly (`share/to-distributor`, `share/to-manager`). The
/// distributor's mapping is imported. `manager.toml` and
/// `distributor.toml` are their configs.
pub struct SftpSides {
    pub sandbox: Sandbox,
    pub client: &'static str,
}

impl SftpSides {
    pub fn new(server: &dyn crate::servers::SftpServer, client: &'static str) -> SftpSides {
        SftpSides::reaching(&Reach::of(server), client)
    }

    /// The same, reaching the server as `reach` says.
    pub fn reaching(reach: &Reach, client: &'static str) -> SftpSides {
        assert!(matches!(client, "manager" | "distributor"), "{client}");
        let sandbox = Sandbox::new();
        let root = sandbox.path();
        let share = root.join("share");
        std::fs::create_dir_all(&share).expect("create the share");
        stxd::config::generate_secret(&root.join("secret.key")).expect("secret");
        let samples = |files: &[&str]| {
            files
                .iter()
                .map(|f| format!("\"{}\"", root.join("samples").join(f).display()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let opera_load = samples(&[
            "opera/seatplan.xml",
            "opera/catalogue.xml",
            "opera/setup.toml",
        ]);
        let tourism_load = samples(&["tourism/reference.xml", "tourism/setup.toml"]);
        let sftp_side = |code: &str, role: &str, load: &str| {
            sftp_side_toml(root, code, role, load, reach, &share, &root.join("client"))
        };
        let local_side =
            |code: &str, role: &str, load: &str| local_side_toml(root, code, role, load, &share);
        let (manager, distributor) = if client == "manager" {
            (
                sftp_side("OPERA", "manager", &opera_load),
                local_side("TOURISM", "distributor", &tourism_load),
            )
        } else {
            (
                local_side("OPERA", "manager", &opera_load),
                sftp_side("TOURISM", "distributor", &tourism_load),
            )
        };
        std::fs::write(root.join("manager.toml"), manager).expect("manager.toml");
        std::fs::write(root.join("distributor.toml"), distributor).expect("distributor.toml");
        let sides = SftpSides { sandbox, client };
        sides
            .distributor(&["mapping", "import", "samples/tourism/mapping.csv"])
            .expect_code(0);
        sides
    }

    pub fn root(&self) -> &Path {
        self.sandbox.path()
    }

    /// The share's folder on the server (`to-distributor`, `to-manager`).
    pub fn share(&self, folder: &str) -> PathBuf {
        self.root().join("share").join(folder)
    }

    /// The SFTP client's local folders (`inbox`, `outbox`).
    pub fn client_dir(&self, folder: &str) -> PathBuf {
        self.root().join("client").join(folder)
    }

    /// `stxd --config manager.toml ARGS…`
    pub fn manager(&self, args: &[&str]) -> Run {
        self.sandbox
            .stxd(&[&["--config", "manager.toml"], args].concat())
    }

    /// `stxd --config distributor.toml ARGS…`
    pub fn distributor(&self, args: &[&str]) -> Run {
        self.sandbox
            .stxd(&[&["--config", "distributor.toml"], args].concat())
    }

    /// `stxd --config <the SFTP client's config> ARGS…` with these
    /// environment variables (a failpoint).
    pub fn client_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let config = format!("{}.toml", self.client);
        self.sandbox
            .stxd_env(&[&["--config", config.as_str()], args].concat(), env)
    }
}

/// Rows of a store query, `|`-joined, for exact assertions.
pub fn rows(sb: &Sandbox, db: &str, sql: &str) -> Vec<String> {
    let conn = rusqlite::Connection::open(sb.path().join("var/state").join(db)).unwrap();
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        let mut cells = Vec::new();
        for i in 0..n {
            let v: rusqlite::types::Value = r.get(i)?;
            cells.push(match v {
                rusqlite::types::Value::Null => "NULL".to_owned(),
                rusqlite::types::Value::Integer(i) => i.to_string(),
                rusqlite::types::Value::Text(t) => t,
                other => format!("{other:?}"),
            });
        }
        Ok(cells.join("|"))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}
