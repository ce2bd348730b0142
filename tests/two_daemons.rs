//! Two daemons on two "servers" in one sandbox, shared by the tests that
//! play the manual between them (`two_servers.rs`, `second_week.rs`): the
//! manager OPERA, an SFTP client of the share, polling every second; the
//! distributor TOURISM, whose local exchange folder is the share a real
//! SFTP server (sshd or ProFTPD, [`crate::servers`]) serves. Each side has
//! its own config, state and copy of the link's secret.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::servers::SftpServer;
use crate::util::{DAEMON_DEADLINE, Daemon, Run, Sandbox};

pub const LINK: &str = "opera-tourism";
/// The manager's store, under the sandbox.
pub const OPERA: &str = "manager/state/OPERA.sqlite";
/// The distributor's store, under the sandbox.
pub const TOURISM: &str = "distributor/state/TOURISM.sqlite";

/// When the distributor's sales file leaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SalesExport {
    /// Its `export-sales` schedule, every two seconds.
    Scheduled,
    /// Only when the test asks (`stxd trigger export-sales`), so that a
    /// sale can wait at the distributor while the manager changes things.
    OnDemand,
}

/// Both servers' folders inside one sandbox (each side only ever touches
/// its own; the share stands for the distributor's disk).
pub struct Servers {
    pub sb: Sandbox,
}

impl Servers {
    pub fn new(sshd: &dyn SftpServer) -> Servers {
        Servers::with(sshd, SalesExport::Scheduled)
    }

    pub fn with(sshd: &dyn SftpServer, sales: SalesExport) -> Servers {
        let sb = Sandbox::new();
        let root = sb.path().to_owned();
        std::fs::create_dir_all(root.join("share")).unwrap();
        // The shared secret, agreed out of band: one file per server.
        for side in ["manager", "distributor"] {
            stxd::config::generate_secret(&root.join(side).join("secret.key")).unwrap();
        }
        std::fs::copy(
            root.join("manager/secret.key"),
            root.join("distributor/secret.key"),
        )
        .unwrap();
        let sample = |f: &str| format!("\"{}\"", root.join("samples").join(f).display());
        let link = |side: &str| {
            format!(
                "[[link]]\nname = \"{LINK}\"\nmanager = \"OPERA\"\ndistributor = \"TOURISM\"\n\
                 login = \"TOURISM_OPE@TOURISM\"\nsecret_file = \"{}\"\n",
                root.join(side).join("secret.key").display()
            )
        };
        let manager = format!(
            "state_dir = \"{state}\"\n[daemon]\nscan_seconds = 1\n\n\
             [[institution]]\ncode = \"OPERA\"\nrole = \"manager\"\nload = [{a}, {b}, {c}]\n\n\
             {link}\n[link.transport]\nkind = \"sftp\"\nhost = \"127.0.0.1\"\nport = {port}\n\
             user = \"{user}\"\nkey_file = \"{key}\"\nknown_hosts = \"{known}\"\n\
             remote_dir = \"{share}\"\nlocal_dir = \"{local}\"\n\n\
             # Fetch and push every second.\n\
             [[schedule]]\nlink = \"{LINK}\"\njob = \"poll\"\ncron = \"* * * * * *\"\n",
            state = root.join("manager/state").display(),
            a = sample("opera/seatplan.xml"),
            b = sample("opera/catalogue.xml"),
            c = sample("opera/setup.toml"),
            link = link("manager"),
            port = sshd.port(),
            user = sshd.user(),
            key = sshd.client_key().display(),
            known = sshd.client_known_hosts().display(),
            share = root.join("share").display(),
            local = root.join("manager/exchange").display(),
        );
        let schedule = match sales {
            SalesExport::Scheduled => format!(
                "# The sales file leaves every two seconds when there is something to send.\n\
                 [[schedule]]\nlink = \"{LINK}\"\njob = \"export-sales\"\ncron = \"*/2 * * * * *\"\n"
            ),
            SalesExport::OnDemand => String::new(),
        };
        let distributor = format!(
            "state_dir = \"{state}\"\n[daemon]\nscan_seconds = 1\n\n\
             [[institution]]\ncode = \"TOURISM\"\nrole = \"distributor\"\nload = [{a}, {b}]\n\n\
             {link}transport = {{ kind = \"local\", dir = \"{share}\" }}\n\n{schedule}",
            state = root.join("distributor/state").display(),
            a = sample("tourism/reference.xml"),
            b = sample("tourism/setup.toml"),
            link = link("distributor"),
            share = root.join("share").display(),
        );
        std::fs::write(root.join("manager.toml"), manager).unwrap();
        std::fs::write(root.join("distributor.toml"), distributor).unwrap();
        Servers { sb }
    }

    pub fn root(&self) -> &Path {
        self.sb.path()
    }

    /// `stxd` on the manager's server.
    pub fn m(&self, args: &[&str]) -> Run {
        self.sb
            .stxd(&[&["--config", "manager.toml"], args].concat())
    }

    /// `stxd` on the distributor's server.
    pub fn d(&self, args: &[&str]) -> Run {
        self.sb
            .stxd(&[&["--config", "distributor.toml"], args].concat())
    }

    pub fn daemon(&self, config: &str) -> Daemon {
        Daemon::start_args(&self.sb, &["--config", config], "info")
    }

    /// The manifests in a folder, sorted.
    pub fn manifests(&self, dir: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.root().join(dir))
            .map(|rd| {
                rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|n| n.ends_with(".stx"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// The `key-id` line of a manifest under the sandbox.
    pub fn key_id(&self, manifest: &str) -> String {
        let text = std::fs::read_to_string(self.root().join(manifest)).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("key-id: "))
            .unwrap_or_else(|| panic!("no key-id in {manifest}: {text}"))
            .to_owned()
    }

    pub fn count(&self, store: &str, sql: &str) -> i64 {
        let path = self.root().join(store);
        let conn =
            rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    /// Rows of a store query (opened read-only), `|`-joined.
    pub fn rows(&self, store: &str, sql: &str) -> Vec<String> {
        let path = self.root().join(store);
        let conn =
            rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
        let mut stmt = conn.prepare(sql).unwrap();
        let n = stmt.column_count();
        stmt.query_map([], |r| {
            let mut cells = Vec::new();
            for i in 0..n {
                cells.push(match r.get::<_, rusqlite::types::Value>(i)? {
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
}

/// Waits until `done()` holds, failing with `what` and both daemons' logs.
#[track_caller]
pub fn eventually(what: &str, logs: &[&Daemon], mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > DAEMON_DEADLINE {
            let logs: Vec<String> = logs.iter().map(|d| d.log()).collect();
            // The whole logs first, then what went wrong in each (its last
            // warnings and errors) and the wait itself: the end of a long
            // failure output is the part a CI summary keeps.
            let summary: Vec<String> = logs.iter().map(|l| complaints(l, 8)).collect();
            panic!(
                "{what}: not after {DAEMON_DEADLINE:?}\n{}\n===== the last warnings and errors of each daemon:\n{}\n{what}: not after {DAEMON_DEADLINE:?}",
                logs.join("\n-----\n"),
                summary.join("\n-----\n")
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The last `n` lines of `log` at WARN or ERROR level.
fn complaints(log: &str, n: usize) -> String {
    let bad: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    bad[bad.len().saturating_sub(n)..].join("\n")
}

/// A command's JSON output (it ran with `--json`).
#[track_caller]
pub fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout())
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", run.stdout(), run.stderr()))
}
