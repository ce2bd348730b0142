//! Random kills of SFTP pushes and pulls, against both servers: the real
//! `stxd poll` of the SFTP client side killed by SIGKILL 1 to 4 times per
//! trial, at a random instant, at one of the transport's failpoints or on
//! entry to the N-th call of a system call (strace), with the server
//! restarted between some of the runs; then polled until it
//! succeeds and the receiver processes what it got. Whatever the kills:
//! every file of the workload applied exactly once (journal and import
//! runs), nothing in `error/`, no pair split between the outbox and
//! `sent/`, nothing left on the share, no temporary file anywhere.
//!
//! `STXD_SFTP_CRASH_TRIALS` trials per server (4 by default) from
//! `STXD_SFTP_CRASH_SEED` on (each trial's seed is printed with any
//! failure, to replay it alone); the figures of a run are printed at the
//! end (`--nocapture`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::servers::{Kind, SftpServer};
use crate::util::SftpSides;

const LINK: &str = "opera-tourism";

on_both_servers!(random_kills_of_sftp_pushes_and_pulls_lose_and_duplicate_nothing);

/// The files of the workload, by kind: one pair each.
const KINDS: [&str; 3] = ["SEATPLAN", "CATALOGUE", "CONTINGENT"];

const PUSH_POINTS: [&str; 3] = [
    "sftp.push.payload-renamed",
    "sftp.push.manifest-renamed",
    "sftp.push.sent-linked",
];
const PULL_POINTS: [&str; 2] = ["sftp.pull.placed", "sftp.pull.first-removed"];

/// The system calls a run can be killed at, each with about how many of
/// them a trial's first poll makes (`strace -f -c` on the workload) and a
/// weight. The client's requests leave by `sendto` and their answers come
/// back by `recvfrom`, so a kill there falls between two requests, or
/// after a request the server carried out and before its answer is read
/// (a remote rename or removal done that the client never learnt of). A
/// count past what the run makes does not kill; a later poll of a trial
/// makes fewer.
type Calls = &'static [(&'static str, u64, u64)];
const PUSH_CALLS: Calls = &[
    ("sendto", 60, 4),
    ("recvfrom", 280, 2),
    ("fsync", 7, 2),
    ("linkat", 6, 2),
    ("unlink", 6, 1),
];
/// The distributor's poll also applies what it pulled (its store's writes).
const PULL_CALLS: Calls = &[
    ("sendto", 800, 3),
    ("recvfrom", 2900, 2),
    ("fsync", 38, 2),
    ("renameat2", 6, 2),
    ("unlink", 20, 1),
    ("pwrite64", 390, 1),
];

/// xorshift64*, seeded by splitmix64.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().map_or(default, |v| {
        let v = v.trim();
        let parsed = match v.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16),
            None => v.parse(),
        };
        parsed.unwrap_or_else(|e| panic!("{name}={v}: {e}"))
    })
}

#[derive(Debug, Default)]
struct Tally {
    trials: u64,
    runs: u64,
    /// Runs killed at a random instant (the process was still running).
    killed_at_random: u64,
    /// Runs that ended before their random instant came.
    finished_first: u64,
    killed_at_failpoint: u64,
    /// Failpoints armed that the run never reached.
    failpoint_not_reached: u64,
    killed_at_syscall: u64,
    /// System-call counts past what the run made.
    syscall_not_reached: u64,
    restarts: u64,
}

fn random_kills_of_sftp_pushes_and_pulls_lose_and_duplicate_nothing(kind: Kind) {
    let trials = env_number("STXD_SFTP_CRASH_TRIALS", 4);
    let base = env_number("STXD_SFTP_CRASH_SEED", 0x5F7D_0000);
    let mut server = crate::servers::start(kind);
    let mut tally = Tally::default();
    let started = Instant::now();
    for seed in base..base + trials {
        trial(server.as_mut(), seed, &mut tally);
        tally.trials += 1;
    }
    eprintln!(
        "sftp crash trials on {kind:?}, seeds {base:#x}..{:#x}: {tally:?}; no finding; {:.0} s",
        base + trials,
        started.elapsed().as_secs_f64()
    );
}

/// One trial: the workload exported, the client's polls killed, then
/// finished and checked.
fn trial(server: &mut dyn SftpServer, seed: u64, tally: &mut Tally) {
    let mut rng = Rng::new(seed);
    let client = if rng.below(2) == 0 {
        "manager"
    } else {
        "distributor"
    };
    // Shown with a failure (or with --nocapture): the seed to replay.
    eprintln!("trial {seed:#x}: the {client} is the SFTP client");
    let sides = SftpSides::new(server, client);
    let at = |what: &str| format!("seed {seed:#x} ({client} is the client): {what}");
    sides
        .manager(&[
            "contingent",
            "allocate",
            "--link",
            LINK,
            "--performance",
            "1701",
            "--seats",
            "PARTERRE:A:1-10",
        ])
        .expect_code(0);
    for kind in ["seatplan", "catalogue", "contingent"] {
        sides
            .manager(&["export", kind, "--link", LINK])
            .expect_code(0);
    }
    let (points, calls): (&[&str], Calls) = if client == "manager" {
        (&PUSH_POINTS, PUSH_CALLS)
    } else {
        (&PULL_POINTS, PULL_CALLS)
    };
    for _ in 0..1 + rng.below(4) {
        if rng.below(4) == 0 {
            server.stop();
            server.resume();
            tally.restarts += 1;
        }
        tally.runs += 1;
        let mode = rng.below(4);
        if mode == 0 {
            let point = points[usize::try_from(rng.below(points.len() as u64)).unwrap()];
            let run = sides.client_env(&["poll", "--link", LINK], &[("STXD_FAILPOINT", point)]);
            if run.killed() {
                tally.killed_at_failpoint += 1;
            } else {
                tally.failpoint_not_reached += 1;
            }
        } else if mode == 1 {
            let (call, nth) = syscall(&mut rng, calls);
            let config = format!("{client}.toml");
            let run = sides.sandbox.stxd_killed_at(
                call,
                nth,
                &["--config", &config, "poll", "--link", LINK],
            );
            eprintln!(
                "  poll at {call}#{nth}: {}",
                if run.killed() {
                    "killed"
                } else {
                    "not reached"
                }
            );
            if run.killed() {
                tally.killed_at_syscall += 1;
            } else {
                tally.syscall_not_reached += 1;
            }
        } else if killed_at(&sides, Duration::from_millis(rng.below(300))) {
            tally.killed_at_random += 1;
        } else {
            tally.finished_first += 1;
        }
    }
    // Polled until a run succeeds (a restarted server, a kill's leftovers).
    let mut ok = false;
    for _ in 0..5 {
        let run = sides.client_env(&["poll", "--link", LINK], &[]);
        if run.code() == 0 {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(ok, "{}", at("no poll succeeded after the kills"));
    if client == "manager" {
        sides
            .distributor(&["process", "--link", LINK])
            .expect_code(0);
    }
    check(&sides, client, &at);
}

/// A system call of `calls` picked by weight, and which of its calls to
/// kill at (1-based).
fn syscall(rng: &mut Rng, calls: Calls) -> (&'static str, u32) {
    let total: u64 = calls.iter().map(|c| c.2).sum();
    let mut at = rng.below(total);
    for &(call, max, weight) in calls {
        if at < weight {
            return (call, u32::try_from(1 + rng.below(max)).unwrap());
        }
        at -= weight;
    }
    unreachable!("the weights cover the range")
}

/// Runs the client's `stxd poll`, SIGKILLed after `delay` unless it ended
/// first; whether it was killed.
fn killed_at(sides: &SftpSides, delay: Duration) -> bool {
    let config = format!("{}.toml", sides.client);
    let mut child = Command::new(env!("CARGO_BIN_EXE_stxd"))
        .args(["--config", &config, "poll", "--link", LINK])
        .current_dir(sides.root())
        .env_remove("STXD_CONFIG")
        .env_remove("STXD_FAILPOINT")
        .env("STXD_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run stxd");
    let deadline = Instant::now() + delay;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let killed = matches!(child.try_wait(), Ok(None));
    let _ = child.kill();
    let _ = child.wait();
    killed
}

/// Every entry of a folder (dot-names and folders too), sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn files(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| dir.join(n).is_file())
        .collect()
}

/// The end state of a trial, whatever the kills.
fn check(sides: &SftpSides, client: &str, at: &dyn Fn(&str) -> String) {
    let store = sides.root().join("state-TOURISM/TOURISM.sqlite");
    let conn = stxd::store::open_read_only(&store).expect("the receiver's store");
    let mut st = conn
        .prepare(
            "SELECT kind, sequence, state FROM file_journal WHERE direction = 'in' ORDER BY kind",
        )
        .unwrap();
    let journal: Vec<(String, i64, String)> = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut expected: Vec<(String, i64, String)> = KINDS
        .iter()
        .map(|k| ((*k).to_owned(), 1, "applied".to_owned()))
        .collect();
    expected.sort();
    assert_eq!(journal, expected, "{}", at("the receiver's journal"));
    let imports: i64 = conn
        .query_row(
            "SELECT count(*) FROM run WHERE kind LIKE 'import-%' AND status = 'ok'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(imports, 3, "{}", at("one import run per file"));

    let share = sides.root().join("share");
    let (inbox, outbox) = if client == "manager" {
        (share.join("to-distributor"), sides.client_dir("outbox"))
    } else {
        (sides.client_dir("inbox"), share.join("to-distributor"))
    };
    assert_eq!(
        files(&inbox.join("error")),
        Vec::<String>::new(),
        "{}",
        at("error/")
    );
    // Nothing waits or lingers, temporary files included.
    let folders: Vec<String> = names(&inbox)
        .into_iter()
        .filter(|n| !inbox.join(n).is_dir())
        .collect();
    assert_eq!(
        folders,
        Vec::<String>::new(),
        "{}",
        at("the receiving folder")
    );
    if client == "manager" {
        assert_eq!(files(&outbox), Vec::<String>::new(), "{}", at("the outbox"));
        let sent = files(&outbox.join("sent"));
        assert_eq!(sent.len(), 6, "{}", at("sent/ holds every pair"));
    } else {
        assert_eq!(names(&outbox), Vec::<String>::new(), "{}", at("the share"));
    }
}
