//! The benchmark suite: stxd and its anchors side by side, interleaved, on
//! data generated at a chosen scale (docs/performance.md).
//!
//! ```text
//! cargo bench --locked --bench suite -- [SCALE] [--runs N] [--only W,W…]
//! benches/run [SCALE] [--runs N] [--only W,W…]
//! ```
//!
//! SCALE: `small` (CI: seconds, proves the suite works), `100k`, `1m`,
//! `10m` (lines of the main sales file). Workloads, in this order:
//! `sales` (reintegration at the manager vs `sqlite3 .import`,
//! benches/sales_anchor.py and the floor, benches/sales_floor.sql),
//! `standing` (sales on one standing zone at 1×, 2×, 4× lines: linear or
//! not), `seatplan` (verify + parse of the exported seat plan, about 100 MB at
//! `1m` and `10m`, then of a catalogue of as many bytes, the demo's grown
//! by performances, vs `xmllint --stream --noout`), `apply` (the seat plan and the catalogue applied at
//! the distributor vs `xmllint --stream --noout` on both, and the floor:
//! the rows it adds copied in by sqlite3), `contingent` (the whole venue's contingent over every bench
//! performance applied at the distributor vs `sqlite3 .import` of its
//! payload), `sftp` (one large pair pushed, then pulled, by `stxd poll`
//! through a real sshd on 127.0.0.1 vs OpenSSH's `sftp -b` put -f and
//! get -f: both sides sync what they write, as stxd does),
//! `latency` (drop → `done/` with the daemon running vs a
//! one-shot `stxd process`). Each figure is the
//! median of N runs (default 3; 1 at `small`), the contestants taking turns.
//! `STXD_BENCH_BASELINE=/path/to/another/stxd` adds that binary as a
//! contestant (before/after figures in one run); `STXD_BENCH_DIR` is where
//! the data goes (default target/). Speed is reported, never asserted.

mod fixture;
mod measure;
// The tests' real sshd on 127.0.0.1 (its own keys, port and config),
// started by the `sftp` workload.
#[allow(dead_code)]
#[path = "../../tests/sshd.rs"]
mod sshd;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fixture::{Shape, stxd};
use measure::{Sample, median};

struct Scale {
    name: &'static str,
    lines: u64,
    seats: u64,
    /// Seats of the venue whose seat plan `seatplan` and `apply` read:
    /// 1.6M make a seat plan of about 100 MB.
    plan_seats: u64,
    standing: u64,
    latency_files: u64,
    sftp_mib: u64,
}

const SCALES: &[Scale] = &[
    Scale {
        name: "small",
        lines: 2_000,
        seats: 1_000,
        // Not the sales' venue, so that CI builds the seat plan's own.
        plan_seats: 2_000,
        standing: 500,
        latency_files: 20,
        sftp_mib: 4,
    },
    Scale {
        name: "100k",
        lines: 100_000,
        seats: 100_000,
        plan_seats: 100_000,
        standing: 5_000,
        latency_files: 200,
        sftp_mib: 256,
    },
    Scale {
        name: "1m",
        lines: 1_000_000,
        seats: 100_000,
        plan_seats: 1_600_000,
        standing: 10_000,
        latency_files: 200,
        sftp_mib: 256,
    },
    Scale {
        name: "10m",
        lines: 10_000_000,
        seats: 100_000,
        plan_seats: 1_600_000,
        standing: 20_000,
        latency_files: 200,
        sftp_mib: 256,
    },
];

const WORKLOADS: &[&str] = &[
    "sales",
    "standing",
    "seatplan",
    "apply",
    "contingent",
    "sftp",
    "latency",
];

/// The stxd binaries taking part (this build, and the baseline if given),
/// each with its base sandbox (its own schema), all with one link secret.
struct Bins(Vec<(&'static str, PathBuf, PathBuf)>);

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut scale = &SCALES[0];
    let mut runs = None;
    let mut only: Vec<String> = WORKLOADS.iter().map(|w| w.to_string()).collect();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => runs = it.next().and_then(|n| n.parse().ok()),
            "--only" => {
                only = it
                    .next()
                    .map(|w| w.split(',').map(str::to_owned).collect())
                    .unwrap_or_default()
            }
            s => {
                scale = SCALES
                    .iter()
                    .find(|sc| sc.name == s)
                    .unwrap_or_else(|| panic!("unknown scale or option {s}: small, 100k, 1m, 10m"))
            }
        }
    }
    let runs = runs.unwrap_or(if scale.name == "small" { 1 } else { 3 });
    let mut bins = vec![("stxd", PathBuf::from(env!("CARGO_BIN_EXE_stxd")))];
    if let Some(b) = std::env::var_os("STXD_BENCH_BASELINE") {
        bins.push(("baseline", PathBuf::from(b)));
    }
    let root = std::env::var_os("STXD_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| fixture::repo().join("target"));
    std::fs::create_dir_all(&root).expect("bench dir");
    let mut dir = tempfile::tempdir_in(&root).expect("temp dir");
    if keep() {
        dir.disable_cleanup(true);
        println!("data kept in {}", dir.path().display());
    }
    let perfs = (scale.lines * 96 / 100).div_ceil(scale.seats).max(2);
    println!(
        "stxd benchmark suite: scale {} ({} lines, {} seats x {} performances), median of {runs}",
        scale.name, scale.lines, scale.seats, perfs
    );
    let t = Instant::now();
    let bins = bases(&bins, dir.path(), "base", scale.seats, perfs);
    let base = bins.0[0].2.clone();
    // The seat plan's workloads on a venue of their own size, two
    // performances (the catalogue's), when it is not the sales' venue.
    let plans = ["seatplan", "apply"]
        .iter()
        .any(|w| only.iter().any(|o| o == w));
    let (plan_bins, plan_perfs) = if scale.plan_seats == scale.seats || !plans {
        (Bins(bins.0.clone()), perfs)
    } else {
        println!(
            "seat plan's venue: {} seats x 2 performances",
            scale.plan_seats
        );
        let named: Vec<_> = bins.0.iter().map(|(n, b, _)| (*n, b.clone())).collect();
        (bases(&named, dir.path(), "plan", scale.plan_seats, 2), 2)
    };
    println!("setup: {:.1} s", t.elapsed().as_secs_f64());
    for w in WORKLOADS.iter().filter(|w| only.iter().any(|o| o == *w)) {
        match *w {
            "sales" => sales(&bins, dir.path(), &base, scale, runs),
            "standing" => standing(&bins, dir.path(), &base, scale, runs),
            "seatplan" => seatplan(&plan_bins, dir.path(), &plan_bins.0[0].2, runs),
            "apply" => apply(&plan_bins, dir.path(), scale.plan_seats, plan_perfs, runs),
            "contingent" => contingent(&bins, dir.path(), scale, perfs, runs),
            "sftp" => sftp(&bins, dir.path(), &base, scale, runs),
            _ => latency(&bins, dir.path(), scale),
        }
    }
}

/// One base sandbox per binary (`DIR/TAG-i`, each with its own schema),
/// the manager's venue grown to `seats` seats over `perfs` performances;
/// every one holds the first one's link secret.
fn bases(bins: &[(&'static str, PathBuf)], dir: &Path, tag: &str, seats: u64, perfs: u64) -> Bins {
    Bins(
        bins.iter()
            .enumerate()
            .map(|(i, (name, bin))| {
                let base = dir.join(format!("{tag}-{i}"));
                fixture::base(bin, &base, seats, perfs);
                if i > 0 {
                    let key = "var/secrets/opera-tourism.key";
                    std::fs::copy(dir.join(format!("{tag}-0")).join(key), base.join(key))
                        .expect("secret");
                }
                (*name, bin.clone(), base)
            })
            .collect(),
    )
}

fn header() {
    println!(
        "  {:<22} {:>9} {:>12} {:>10} {:>11} {:>9}",
        "contestant", "median s", "lines/s", "peak MiB", "store B/ln", "ratio"
    );
}

fn row(name: &str, s: &Sample, lines: u64, reference: f64) {
    println!(
        "  {:<22} {:>9.3} {:>12.0} {:>10.1} {:>11} {:>9.2}",
        name,
        s.secs,
        lines as f64 / s.secs,
        s.rss_kib as f64 / 1024.0,
        if s.store_bytes > 0 {
            (s.store_bytes / lines.max(1)).to_string()
        } else {
            "-".into()
        },
        s.secs / reference,
    );
}

/// One stxd reintegration of the sealed pair in a fresh copy of the base
/// sandbox; checks that every line was booked.
fn reintegrate(
    bin: &Path,
    scratch: &Path,
    base: &Path,
    pair: &(PathBuf, PathBuf),
    lines: u64,
) -> Sample {
    reintegrate_and(bin, scratch, base, pair, lines, |_| ())
}

/// [`reintegrate`], then `after` on the run's sandbox before it goes.
fn reintegrate_and(
    bin: &Path,
    scratch: &Path,
    base: &Path,
    pair: &(PathBuf, PathBuf),
    lines: u64,
    after: impl FnOnce(&Path),
) -> Sample {
    let run = scratch.join("run");
    let _ = std::fs::remove_dir_all(&run);
    measure::copy_tree(base, &run);
    let inbox = fixture::manager_inbox(&run);
    for f in [&pair.1, &pair.0] {
        std::fs::copy(f, inbox.join(f.file_name().expect("name"))).expect("drop");
    }
    let before = measure::db_bytes(&fixture::manager_db(&run));
    let mut s = measure::run(&mut stxd(bin, &run, &["process"]));
    s.store_bytes = measure::db_bytes(&fixture::manager_db(&run)).saturating_sub(before);
    let conn = rusqlite::Connection::open(fixture::manager_db(&run)).expect("open");
    let booked: u64 = conn
        .query_row(
            "SELECT count(*) FROM sales_line WHERE status = 'booked'",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(
        booked,
        lines,
        "{}: not every line was booked",
        bin.display()
    );
    drop(conn);
    after(&run);
    let _ = std::fs::remove_dir_all(&run);
    s
}

/// A SQLite database's files: the database, its WAL and its shared memory.
fn db_files(db: &Path) -> [PathBuf; 3] {
    ["", "-wal", "-shm"].map(|suffix| {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    })
}

/// Copies the SQLite database `from` (with its WAL, if it has one) to `to`,
/// replacing what was there.
fn copy_db(from: &Path, to: &Path) {
    for (from, to) in db_files(from).iter().zip(db_files(to)) {
        let _ = std::fs::remove_file(&to);
        if from.exists() {
            std::fs::copy(from, &to).expect("copy a store");
        }
    }
}

/// A SALES payload's columns as the sqlite3 anchors declare them.
const SALES_COLUMNS: &str = "line INTEGER, operation TEXT, time TEXT, ord TEXT, refund_of INTEGER,
    performance INTEGER, block INTEGER, row TEXT, seat TEXT, zone INTEGER,
    seat_category INTEGER, tariff_type INTEGER, audience_subcategory INTEGER,
    amount INTEGER, currency TEXT, vat_code INTEGER, contingent_version INTEGER";

fn sqlite_import(scratch: &Path, payload: &Path) -> Sample {
    let db = scratch.join("anchor.sqlite");
    let _ = std::fs::remove_file(&db);
    let mut cmd = Command::new("sqlite3");
    cmd.arg(&db).args([
        &format!("CREATE TABLE sales ({SALES_COLUMNS}, PRIMARY KEY (line, operation))"),
        ".mode csv",
        ".separator ;",
    ]);
    cmd.arg(format!(".import --skip 1 {} sales", payload.display()));
    let mut s = measure::run(&mut cmd);
    s.store_bytes = measure::db_bytes(&db);
    s
}

/// The floor: the payload imported into a temporary table, then the rows
/// stxd writes for it written set-based into a copy of the manager's store
/// (benches/sales_floor.sql: no check, the store's keys and foreign keys
/// enforced); checks that it wrote what stxd writes.
fn sqlite_floor(scratch: &Path, base: &Path, payload: &Path, lines: u64) -> Sample {
    let db = scratch.join("floor.sqlite");
    copy_db(&fixture::manager_db(base), &db);
    let before = measure::db_bytes(&db);
    let script = fixture::repo().join("benches/sales_floor.sql");
    let mut cmd = Command::new("sqlite3");
    cmd.arg(&db).args([
        "PRAGMA foreign_keys = ON",
        &format!("CREATE TEMP TABLE staged ({SALES_COLUMNS})"),
        ".mode csv",
        ".separator ;",
        &format!(".import --skip 1 {} staged", payload.display()),
        &format!(".read {}", script.display()),
    ]);
    let mut s = measure::run(&mut cmd);
    s.store_bytes = measure::db_bytes(&db).saturating_sub(before);
    let conn = rusqlite::Connection::open(&db).expect("open");
    let written: u64 = conn
        .query_row(
            "SELECT count(*) FROM sales_line WHERE status = 'booked' AND ticket IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(written, lines, "the floor did not write every line");
    s
}

fn python_anchor(scratch: &Path, base: &Path, payload: &Path) -> Sample {
    let db = scratch.join("anchor-py.sqlite");
    let _ = std::fs::remove_file(&db);
    let mut cmd = Command::new("python3");
    cmd.arg(fixture::repo().join("benches/sales_anchor.py"))
        .arg(fixture::manager_db(base))
        .arg(payload)
        .arg(&db);
    let mut s = measure::run(&mut cmd);
    s.store_bytes = measure::db_bytes(&db);
    s
}

fn sales(bins: &Bins, scratch: &Path, base: &Path, scale: &Scale, runs: usize) {
    let pair = fixture::sales_file(
        base,
        &scratch.join("sales"),
        (1, 1, scale.lines),
        Shape::Mixed { seats: scale.seats },
    );
    let mib = std::fs::metadata(&pair.1).map(|m| m.len()).unwrap_or(0) as f64 / 1048576.0;
    println!(
        "\nsales reintegration at the manager: {} lines ({mib:.0} MiB), 96% seated, 3% standing, 1% refunds",
        scale.lines
    );
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); bins.0.len() + 3];
    let mut growth = Vec::new();
    for r in 0..runs {
        for (i, (_, bin, own)) in bins.0.iter().enumerate() {
            samples[i].push(reintegrate_and(
                bin,
                scratch,
                own,
                &pair,
                scale.lines,
                |run| {
                    if r == 0 {
                        growth.push(table_growth(own, run, scale.lines));
                    }
                },
            ));
        }
        samples[bins.0.len()].push(sqlite_import(scratch, &pair.1));
        samples[bins.0.len() + 1].push(python_anchor(scratch, base, &pair.1));
        samples[bins.0.len() + 2].push(sqlite_floor(scratch, base, &pair.1, scale.lines));
    }
    let medians: Vec<Sample> = samples.iter().map(|s| median(s)).collect();
    let names: Vec<&str> = bins
        .0
        .iter()
        .map(|b| b.0)
        .chain(["sqlite3 .import", "python anchor", "sqlite3 floor"])
        .collect();
    let reference = medians[bins.0.len()].secs;
    println!("  (ratio: time / sqlite3 .import's time)");
    header();
    for (name, m) in names.iter().zip(&medians) {
        row(name, m, scale.lines, reference);
    }
    println!(
        "  stxd / python anchor: {:.2}",
        medians[0].secs / medians[bins.0.len() + 1].secs
    );
    println!(
        "  stxd / sqlite3 floor (the same rows written set-based, unchecked): {:.2}",
        medians[0].secs / medians[bins.0.len() + 2].secs
    );
    for ((name, _, _), g) in bins.0.iter().zip(&growth) {
        println!("  {name} store growth by table and index, bytes per line: {g}");
    }
}

/// What each table and index of the manager's store grew by, per line
/// (SQLite's dbstat, through the sqlite3 shell), largest first.
fn table_growth(base: &Path, run: &Path, lines: u64) -> String {
    let sizes = |dir: &Path| -> std::collections::BTreeMap<String, i64> {
        let out = Command::new("sqlite3")
            .arg(fixture::manager_db(dir))
            .arg("SELECT name, sum(pgsize) FROM dbstat GROUP BY name")
            .output()
            .expect("sqlite3");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('|'))
            .map(|(n, b)| (n.to_owned(), b.parse().unwrap_or(0)))
            .collect()
    };
    let before = sizes(base);
    let mut grown: Vec<(String, i64)> = sizes(run)
        .into_iter()
        .map(|(n, b)| {
            let d = b - before.get(&n).copied().unwrap_or(0);
            (n, d)
        })
        .filter(|(_, d)| *d * 100 >= lines as i64)
        .collect();
    grown.sort_by_key(|g| -g.1);
    grown
        .iter()
        .map(|(n, d)| format!("{n} {}", d / lines.max(1) as i64))
        .collect::<Vec<_>>()
        .join(", ")
}

fn standing(bins: &Bins, scratch: &Path, base: &Path, scale: &Scale, runs: usize) {
    println!("\nsales on one standing zone: linear when each doubling costs ~2x");
    let sizes = [scale.standing, scale.standing * 2, scale.standing * 4];
    let pairs: Vec<_> = sizes
        .iter()
        .map(|&n| {
            fixture::sales_file(
                base,
                &scratch.join(format!("standing-{n}")),
                (1, 1, n),
                Shape::Standing,
            )
        })
        .collect();
    println!(
        "  {:<22} {:>9} {:>9} {:>9} {:>12} {:>12}",
        "contestant", "1x s", "2x s", "4x s", "2x/1x", "4x/2x"
    );
    for (name, bin, own) in &bins.0 {
        let mut t = Vec::new();
        for (pair, &n) in pairs.iter().zip(&sizes) {
            let s: Vec<Sample> = (0..runs)
                .map(|_| reintegrate(bin, scratch, own, pair, n))
                .collect();
            t.push(median(&s).secs);
        }
        println!(
            "  {:<22} {:>9.3} {:>9.3} {:>9.3} {:>12.2} {:>12.2}",
            name,
            t[0],
            t[1],
            t[2],
            t[1] / t[0],
            t[2] / t[1]
        );
    }
}

fn seatplan(bins: &Bins, scratch: &Path, base: &Path, runs: usize) {
    let run = scratch.join("seatplan");
    measure::copy_tree(base, &run);
    measure::run(&mut stxd(
        &bins.0[0].1,
        &run,
        &["export", "seatplan", "--link", fixture::LINK],
    ));
    let out = run
        .join("var/exchange")
        .join(fixture::LINK)
        .join("to-distributor");
    let find = |ext: &str| {
        std::fs::read_dir(&out)
            .expect("outbox")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == ext))
            .expect("exported seat plan")
    };
    let (manifest, payload) = (find("stx"), find("xml"));
    verify_parse(bins, &run, "seat plan", (&manifest, &payload), runs);
    // A catalogue of about the seat plan's size: a season of many
    // performances.
    let size = std::fs::metadata(&payload).expect("seat plan").len();
    let (manifest, payload) = fixture::big_catalogue(&run, &run.join("catalogue"), 1, size);
    verify_parse(bins, &run, "catalogue", (&manifest, &payload), runs);
    let _ = std::fs::remove_dir_all(&run);
}

/// `stxd inspect` of one sealed file against `xmllint --stream --noout`
/// of its payload, taking turns.
fn verify_parse(
    bins: &Bins,
    run: &Path,
    what: &str,
    (manifest, payload): (&Path, &Path),
    runs: usize,
) {
    let mib = file_mib(&[payload]);
    println!("\n{what} verify + parse: {mib:.1} MiB (stxd inspect vs xmllint --stream --noout)");
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); bins.0.len() + 1];
    for _ in 0..runs {
        for (i, (_, bin, _)) in bins.0.iter().enumerate() {
            let m = manifest.display().to_string();
            samples[i].push(measure::run(&mut stxd(bin, run, &["inspect", &m])));
        }
        let mut x = Command::new("xmllint");
        x.args(["--stream", "--noout"]).arg(payload);
        samples[bins.0.len()].push(measure::run(&mut x));
    }
    let names: Vec<&str> = bins
        .0
        .iter()
        .map(|b| b.0)
        .chain(["xmllint --stream"])
        .collect();
    table(&names, &samples, mib);
}

/// Counts the rows of `table` in the store `db`.
fn count(db: &Path, table: &str) -> u64 {
    rusqlite::Connection::open(db)
        .expect("open")
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .expect("count")
}

/// An anchor: its name, and one run of it.
type Anchor<'a> = (&'a str, Box<dyn FnMut() -> Sample + 'a>);

/// `stxd process` at the distributor, each contestant on a fresh copy of
/// its own sandbox of `states` and checked by `check` (the run's sandbox,
/// the contestant's binary), taking turns with the anchors; prints the
/// figures ([`table_against`] the first anchor, `mib` per run; stxd's
/// ratio to the second anchor, its floor, when there is one) and removes
/// `states`.
fn distributor_race(
    bins: &Bins,
    scratch: &Path,
    states: Vec<PathBuf>,
    runs: usize,
    mut anchors: Vec<Anchor<'_>>,
    check: impl Fn(&Path, &Path),
    mib: f64,
) {
    let n = bins.0.len();
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); n + anchors.len()];
    for _ in 0..runs {
        for (i, ((_, bin, _), state)) in bins.0.iter().zip(&states).enumerate() {
            let run = scratch.join("run");
            let _ = std::fs::remove_dir_all(&run);
            measure::copy_tree(state, &run);
            samples[i].push(measure::run(&mut stxd(bin, &run, &["process"])));
            check(&run, bin);
            let _ = std::fs::remove_dir_all(&run);
        }
        for (j, (_, anchor)) in anchors.iter_mut().enumerate() {
            samples[n + j].push(anchor());
        }
    }
    let names: Vec<&str> = bins
        .0
        .iter()
        .map(|b| b.0)
        .chain(anchors.iter().map(|a| a.0))
        .collect();
    table_against(&names, &samples, mib, n);
    if let Some((floor, _)) = anchors.get(1) {
        println!(
            "  stxd / {floor}: {:.2}",
            median(&samples[0]).secs / median(&samples[n + 1]).secs
        );
    }
    if !keep() {
        for s in states {
            let _ = std::fs::remove_dir_all(s);
        }
    }
}

/// `STXD_BENCH_KEEP` is set: the generated data stays once the suite ends
/// (to profile a run by hand on it).
fn keep() -> bool {
    std::env::var_os("STXD_BENCH_KEEP").is_some()
}

/// Prints one line per contestant: median time, MiB/s of `mib`, peak
/// memory, ratio to the last contestant (the anchor).
fn table(names: &[&str], samples: &[Vec<Sample>], mib: f64) {
    table_against(names, samples, mib, samples.len() - 1);
}

/// [`table`], the ratio to contestant `reference`.
fn table_against(names: &[&str], samples: &[Vec<Sample>], mib: f64, reference: usize) {
    let reference = median(&samples[reference]).secs;
    println!(
        "  {:<22} {:>9} {:>9} {:>10} {:>9}",
        "contestant", "median s", "MiB/s", "peak MiB", "ratio"
    );
    for (name, s) in names.iter().zip(samples) {
        let m = median(s);
        println!(
            "  {:<22} {:>9.3} {:>9.1} {:>10.1} {:>9.2}",
            name,
            m.secs,
            mib / m.secs,
            m.rss_kib as f64 / 1024.0,
            m.secs / reference
        );
    }
}

fn file_mib(paths: &[&Path]) -> f64 {
    paths
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum::<u64>() as f64
        / 1048576.0
}

/// The seat plan and the catalogue of the grown venue applied at the
/// distributor (`stxd process`: verify, parse, map, write its store)
/// against `xmllint --stream --noout` reading both payloads.
fn apply(bins: &Bins, scratch: &Path, seats: u64, perfs: u64, runs: usize) {
    let states: Vec<PathBuf> = bins
        .0
        .iter()
        .enumerate()
        .map(|(i, (_, bin, own))| {
            let d = scratch.join(format!("apply-{i}"));
            fixture::distributor(bin, own, &d);
            d
        })
        .collect();
    let plan = fixture::waiting_payload(&states[0], "SEATPLAN");
    let cat = fixture::waiting_payload(&states[0], "CATALOGUE");
    let mib = file_mib(&[&plan, &cat]);
    println!(
        "\nseat plan + catalogue applied at the distributor: {mib:.1} MiB ({seats} seats, {perfs} performances; stxd process vs xmllint --stream --noout on both)"
    );
    let xmllint = || {
        let mut x = Command::new("xmllint");
        x.args(["--stream", "--noout"]).arg(&plan).arg(&cat);
        measure::run(&mut x)
    };
    let check = |run: &Path, bin: &Path| {
        let applied = count(&fixture::distributor_db(run), "seat");
        assert!(
            applied >= seats,
            "{}: the seat plan was not applied ({applied} seats at the distributor)",
            bin.display()
        );
    };
    // The floor's source: the rows one stxd run added to the store.
    let done = scratch.join("apply-done");
    let _ = std::fs::remove_dir_all(&done);
    measure::copy_tree(&states[0], &done);
    measure::run(&mut stxd(&bins.0[0].1, &done, &["process"]));
    check(&done, &bins.0[0].1);
    let before = scratch.join("apply-before.sqlite");
    copy_db(&fixture::distributor_db(&states[0]), &before);
    let floor = || apply_floor(scratch, &before, &done);
    distributor_race(
        bins,
        scratch,
        states,
        runs,
        vec![
            ("xmllint --stream", Box::new(xmllint)),
            ("sqlite3 floor", Box::new(floor)),
        ],
        check,
        mib,
    );
    let _ = std::fs::remove_dir_all(&done);
    for f in db_files(&before) {
        let _ = std::fs::remove_file(f);
    }
}

/// The floor of the apply: the rows one stxd run added to the
/// distributor's store (`done`) copied, table by table, into a copy of the
/// store before it (`before`, the database) by the sqlite3 shell, in one
/// transaction with the store's keys and foreign keys enforced. No file is
/// read, nothing is mapped or compared: no apply of these files into this
/// store can write faster. The few rows the apply updates (mappings seen
/// again) are left out, in the floor's favour.
fn apply_floor(scratch: &Path, before: &Path, done: &Path) -> Sample {
    let db = scratch.join("apply-floor.sqlite");
    copy_db(before, &db);
    let done_db = fixture::distributor_db(done);
    // Every table that grew, in the order of the schema (parents first).
    let conn = rusqlite::Connection::open(&done_db).expect("open");
    let tables: Vec<(String, bool)> = conn
        .prepare(
            "SELECT name, sql LIKE '%WITHOUT ROWID%' FROM sqlite_schema
              WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY rowid",
        )
        .and_then(|mut st| {
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()
        })
        .expect("the store's tables");
    drop(conn);
    let mut sql = format!(
        "PRAGMA foreign_keys = ON; ATTACH '{}' AS done; BEGIN;",
        done_db.display()
    );
    for (table, without_rowid) in tables {
        if count(&done_db, &table) == count(&db, &table) {
            continue;
        }
        sql.push_str(&if without_rowid {
            format!("INSERT INTO main.\"{table}\" SELECT * FROM done.\"{table}\" EXCEPT SELECT * FROM main.\"{table}\";")
        } else {
            format!(
                "INSERT INTO main.\"{table}\" SELECT * FROM done.\"{table}\"
                  WHERE rowid > (SELECT coalesce(max(rowid), 0) FROM main.\"{table}\");"
            )
        });
    }
    sql.push_str("COMMIT;");
    let mut cmd = Command::new("sqlite3");
    cmd.arg(&db).arg(&sql);
    let s = measure::run(&mut cmd);
    assert_eq!(
        count(&db, "seat"),
        count(&done_db, "seat"),
        "the floor did not write every seat"
    );
    s
}

/// The contingent of every bench performance (the whole venue each)
/// applied at the distributor against `sqlite3 .import` of its payload
/// into a table keyed by place.
fn contingent(bins: &Bins, scratch: &Path, scale: &Scale, perfs: u64, runs: usize) {
    let mut export_secs = Vec::new();
    let states: Vec<PathBuf> = bins
        .0
        .iter()
        .enumerate()
        .map(|(i, (_, bin, own))| {
            let d = scratch.join(format!("contingent-{i}"));
            fixture::distributor(bin, own, &d);
            measure::run(&mut stxd(bin, &d, &["process"]));
            export_secs.push(fixture::contingent(bin, &d));
            d
        })
        .collect();
    let payload = fixture::waiting_payload(&states[0], "CONTINGENT");
    let mib = file_mib(&[&payload]);
    let places = scale.seats * perfs;
    println!(
        "\ncontingent applied at the distributor: {places} seats ({} x {perfs} performances), {mib:.1} MiB (stxd process vs sqlite3 .import)",
        scale.seats
    );
    for ((name, _, _), secs) in bins.0.iter().zip(&export_secs) {
        println!("  ({name}: its export at the manager took {secs:.3} s)");
    }
    let check = |run: &Path, bin: &Path| {
        let seats = count(&fixture::distributor_db(run), "contingent_seat");
        assert!(
            seats >= places,
            "{}: the contingent was not applied ({seats} of {places} seats at the distributor)",
            bin.display()
        );
    };
    let import = || contingent_import(scratch, &payload);
    distributor_race(
        bins,
        scratch,
        states,
        runs,
        vec![("sqlite3 .import", Box::new(import))],
        check,
        mib,
    );
}

/// `sqlite3 .import` of a CONTINGENT payload into a table of its columns
/// keyed by performance and place.
fn contingent_import(scratch: &Path, payload: &Path) -> Sample {
    let db = scratch.join("anchor-contingent.sqlite");
    let _ = std::fs::remove_file(&db);
    let header = std::io::BufRead::lines(std::io::BufReader::new(
        std::fs::File::open(payload).expect("payload"),
    ))
    .next()
    .and_then(Result::ok)
    .expect("the payload's header");
    let columns: Vec<String> = header.split(';').map(|c| format!("\"{c}\" TEXT")).collect();
    let mut cmd = Command::new("sqlite3");
    cmd.arg(&db).args([
        format!(
            "CREATE TABLE contingent ({}, PRIMARY KEY (performance, type, block, row, seat, zone))",
            columns.join(", ")
        ),
        ".mode csv".into(),
        ".separator ;".into(),
        format!(".import --skip 1 {} contingent", payload.display()),
    ]);
    measure::run(&mut cmd)
}

/// A large pair pushed to, then pulled from, a real sshd on 127.0.0.1 by
/// `stxd poll` (the manager as the SFTP client), against OpenSSH's `sftp
/// -b` putting and getting the same payload.
fn sftp(bins: &Bins, scratch: &Path, base: &Path, scale: &Scale, runs: usize) {
    let server = sshd::Sshd::start();
    let root = scratch.join("sftp");
    let (share, local) = (root.join("share"), root.join("client"));
    for d in [
        share.join("to-distributor"),
        share.join("to-manager"),
        local.join("inbox"),
        local.join("outbox"),
    ] {
        std::fs::create_dir_all(&d).expect("sftp folders");
    }
    let user = sshd::current_user();
    std::fs::copy(
        base.join("var/secrets/opera-tourism.key"),
        root.join("secret.key"),
    )
    .expect("secret");
    std::fs::write(
        root.join(fixture::CONFIG),
        format!(
            "state_dir = \"state\"\n[[institution]]\ncode = \"OPERA\"\nrole = \"manager\"\n\n\
             [[link]]\nname = \"{link}\"\nmanager = \"OPERA\"\ndistributor = \"TOURISM\"\n\
             login = \"TOURISM_OPE@TOURISM\"\nsecret_file = \"secret.key\"\n\n[link.transport]\n\
             kind = \"sftp\"\nhost = \"127.0.0.1\"\nport = {port}\nuser = \"{user}\"\n\
             key_file = \"{key}\"\nknown_hosts = \"{hosts}\"\nremote_dir = \"{share}\"\nlocal_dir = \"{local}\"\n",
            link = fixture::LINK,
            port = server.port(),
            key = server.client_key().display(),
            hosts = server.client_known_hosts().display(),
            share = share.display(),
            local = local.display(),
        ),
    )
    .expect("sftp config");
    // The payload: bytes the transport moves without reading them.
    let size = scale.sftp_mib * 1024 * 1024;
    let source = root.join("payload");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&source).expect("payload"));
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..size / 8 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            f.write_all(&x.to_le_bytes()).expect("payload");
        }
    }
    let push_name = format!("{}.SEATPLAN.00000001", fixture::LINK);
    let pull_name = format!("{}.SALES.00000001", fixture::LINK);
    let ssh_args = |batch: &Path| {
        let mut c = Command::new("sftp");
        c.arg("-q")
            .arg("-b")
            .arg(batch)
            .arg("-i")
            .arg(server.client_key())
            .arg("-o")
            .arg(format!(
                "UserKnownHostsFile={}",
                server.client_known_hosts().display()
            ))
            .args(["-o", "BatchMode=yes", "-P"])
            .arg(server.port().to_string())
            .arg(format!("{user}@127.0.0.1"));
        c
    };
    let batch = |name: &str, text: String| {
        let p = root.join(name);
        std::fs::write(&p, text).expect("sftp batch");
        p
    };
    let put = batch(
        "put.batch",
        format!(
            "put -f {} {}\n",
            source.display(),
            share.join("to-distributor/anchor").display()
        ),
    );
    let get = batch(
        "get.batch",
        format!(
            "get -f {} {}\n",
            share.join("to-manager/anchor").display(),
            local.join("anchor").display()
        ),
    );
    let clear = |dir: &Path| {
        for e in std::fs::read_dir(dir).expect("list").filter_map(Result::ok) {
            if e.file_type().is_ok_and(|t| t.is_file()) {
                std::fs::remove_file(e.path()).expect("clear");
            }
        }
    };
    let size_of = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    println!(
        "\nSFTP through OpenSSH sshd on 127.0.0.1: a {} MiB pair pushed, then pulled (stxd poll vs sftp -b put -f / get -f)",
        scale.sftp_mib
    );
    let n = bins.0.len();
    let (mut push, mut pull): (Vec<Vec<Sample>>, Vec<Vec<Sample>>) =
        (vec![Vec::new(); n + 1], vec![Vec::new(); n + 1]);
    for _ in 0..runs {
        for (i, (_, bin, _)) in bins.0.iter().enumerate() {
            let outbox = local.join("outbox");
            std::fs::hard_link(&source, outbox.join(format!("{push_name}.xml"))).expect("pair");
            std::fs::write(outbox.join(format!("{push_name}.stx")), "manifest\n").expect("pair");
            push[i].push(measure::run(&mut stxd(
                bin,
                &root,
                &["poll", "--link", fixture::LINK],
            )));
            let pushed = share.join(format!("to-distributor/{push_name}.xml"));
            assert_eq!(
                size_of(&pushed),
                size,
                "{}: the pushed payload",
                bin.display()
            );
            clear(&share.join("to-distributor"));
            let _ = std::fs::remove_dir_all(outbox.join("sent"));

            let remote = share.join("to-manager");
            std::fs::hard_link(&source, remote.join(format!("{pull_name}.csv"))).expect("pair");
            std::fs::write(remote.join(format!("{pull_name}.stx")), "manifest\n").expect("pair");
            // `stxd poll` then processes its inbox: the pulled manifest, not
            // sealed, is refused at its first line (exit code 1) and the
            // pair goes to `error/`, without reading the payload.
            pull[i].push(measure::run_exiting(
                &mut stxd(bin, &root, &["poll", "--link", fixture::LINK]),
                &[1],
            ));
            let pulled = local.join(format!("inbox/error/{pull_name}.csv"));
            assert_eq!(
                size_of(&pulled),
                size,
                "{}: the pulled payload",
                bin.display()
            );
            let _ = std::fs::remove_dir_all(local.join("inbox/error"));
            clear(&remote);
        }
        push[n].push(measure::run(&mut ssh_args(&put)));
        assert_eq!(
            size_of(&share.join("to-distributor/anchor")),
            size,
            "sftp put"
        );
        place(
            &share.join("to-distributor/anchor"),
            &share.join("to-manager"),
        );
        pull[n].push(measure::run(&mut ssh_args(&get)));
        assert_eq!(size_of(&local.join("anchor")), size, "sftp get");
        clear(&share.join("to-manager"));
        std::fs::remove_file(local.join("anchor")).expect("anchor");
    }
    let mib = scale.sftp_mib as f64;
    for (what, samples, anchor) in [
        ("push", &push, "sftp -b put -f"),
        ("pull", &pull, "sftp -b get -f"),
    ] {
        println!("  {what}:");
        let names: Vec<&str> = bins.0.iter().map(|b| b.0).chain([anchor]).collect();
        table(&names, samples, mib);
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&root);
}

fn latency(bins: &Bins, scratch: &Path, scale: &Scale) {
    let n = scale.latency_files;
    println!("\ndrop -> done/ latency of one-line sales files, {n} files one after the other");
    println!("  {:<30} {:>9} {:>9}", "contestant", "p50 ms", "p99 ms");
    for (name, bin, own) in &bins.0 {
        let run = scratch.join("latency");
        let _ = std::fs::remove_dir_all(&run);
        measure::copy_tree(own, &run);
        let files: Vec<_> = (1..=n)
            .map(|k| {
                fixture::sales_file(
                    &run,
                    &scratch.join(format!("lat-{name}-{k}")),
                    (k, k, 1),
                    Shape::Seated { seats: scale.seats },
                )
            })
            .collect();
        let inbox = fixture::manager_inbox(&run);
        let done = inbox.join("done");
        let log_path = scratch.join("daemon.log");
        let log = std::fs::File::create(&log_path).expect("log");
        let mut daemon = stxd(bin, &run, &["run"])
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start the daemon");
        let mut daemon_ms = Vec::new();
        for (k, (m, p)) in files.iter().enumerate() {
            let watched = Watched {
                daemon: &mut daemon,
                log: &log_path,
            };
            let ms = drop_and_wait(m, p, (&inbox, &done), Duration::from_secs(30), watched);
            // The first file also waits for the daemon to start: not counted.
            if k > 0 {
                daemon_ms.push(ms);
            }
        }
        let _ = daemon.kill();
        let _ = daemon.wait();
        // One-shot: the next files, each dropped then `stxd process`.
        let mut oneshot_ms = Vec::new();
        for k in 0..(n / 4).max(5) {
            let seq = n + 1 + k;
            let (m, p) = fixture::sales_file(
                &run,
                &scratch.join(format!("lat-{name}-{seq}")),
                (seq, seq, 1),
                Shape::Seated { seats: scale.seats },
            );
            for f in [&p, &m] {
                place(f, &inbox);
            }
            oneshot_ms.push(measure::run(&mut stxd(bin, &run, &["process"])).secs * 1000.0);
        }
        for (what, v) in [
            ("daemon", &daemon_ms),
            ("one-shot stxd process", &oneshot_ms),
        ] {
            println!(
                "  {:<30} {:>9.1} {:>9.1}",
                format!("{name}: {what}"),
                measure::percentile(v, 50.0),
                measure::percentile(v, 99.0)
            );
        }
        let _ = std::fs::remove_dir_all(&run);
    }
}

/// The running daemon a latency run waits on, and its log.
struct Watched<'a> {
    daemon: &'a mut std::process::Child,
    log: &'a Path,
}

impl Watched<'_> {
    /// Stops the suite with why the file was not taken: the daemon ended
    /// (a console port already in use, say), or it is still running; the
    /// end of its log in both cases.
    fn fail(&mut self, name: &str, limit: Duration) -> ! {
        let state = match self.daemon.try_wait() {
            Ok(Some(status)) => format!("the daemon ended ({status}) before taking it"),
            _ => format!("the daemon runs, but did not take it within {limit:?}"),
        };
        let log = std::fs::read_to_string(self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "{name} not in done/: {state}; the end of its log ({}):\n{}",
            self.log.display(),
            tail.join("\n")
        );
    }
}

/// Renames the payload then the manifest into the inbox; milliseconds until
/// the manifest is in `done`.
fn drop_and_wait(
    manifest: &Path,
    payload: &Path,
    (inbox, done): (&Path, &Path),
    limit: Duration,
    mut watched: Watched<'_>,
) -> f64 {
    let name = manifest.file_name().expect("name");
    place(payload, inbox);
    let t = Instant::now();
    place(manifest, inbox);
    while !done.join(name).exists() {
        let ended = !matches!(watched.daemon.try_wait(), Ok(None));
        if ended || t.elapsed() >= limit {
            watched.fail(&name.to_string_lossy(), limit);
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    t.elapsed().as_secs_f64() * 1000.0
}

/// Moves `file` into `dir` as a sender does: a new name, never replacing
/// one (a hard link, then the old name removed).
fn place(file: &Path, dir: &Path) {
    std::fs::hard_link(file, dir.join(file.file_name().expect("name"))).expect("drop");
    std::fs::remove_file(file).expect("drop");
}
