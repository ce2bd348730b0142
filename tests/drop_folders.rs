//! Drop folders against the real daemon (`stxd run` as a child process):
//! files written slowly or by a hostile writer, 1,000 files at once, hostile
//! entries (symlinks, FIFOs, directories, hard links, odd names), SIGTERM and
//! SIGKILL in the middle of a large file, a file whose reads keep failing;
//! and the per-file log span. Every assertion reads real outcomes: the
//! manager's SQLite store (read-only) and the folders. Waits poll with
//! generous deadlines.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags};
use stxd::format::Kind;

use crate::util::{Daemon, Sandbox, Tmpfs, repo, seal};

const POLL: Duration = Duration::from_millis(50);

/// The manager's inbox of the demo link (the distributor's SALES files).
pub(crate) fn inbox(sb: &Sandbox) -> PathBuf {
    sb.path().join("var/exchange/opera-tourism/to-manager")
}

/// A folder outside every configured folder, where files are prepared.
fn outside(sb: &Sandbox, name: &str) -> PathBuf {
    let dir = sb.path().join("outside").join(name);
    std::fs::create_dir_all(&dir).expect("create outside dir");
    dir
}

/// Lists every `scan_seconds` = 1 instead of the demo's 5.
fn fast_listing(sb: &Sandbox) {
    let path = sb.path().join("config/stxd.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    let fast = text.replace("scan_seconds = 5", "scan_seconds = 1");
    assert_ne!(fast, text, "the demo config lists every 5 s");
    std::fs::write(&path, fast).expect("write config");
}

/// Stores created, and seats 1–4 of row A of block 3301 (1701) plus 10
/// places of zone 3201 allotted to the link: the sample SALES file books.
pub(crate) fn manager_ready(sb: &Sandbox) {
    sb.ready();
    sb.allot("3301:A:1-4");
    sb.stxd(&[
        "contingent",
        "allocate",
        "--link",
        "opera-tourism",
        "--performance",
        "1701",
        "--zone",
        "3201",
        "--quantity",
        "10",
    ])
    .expect_code(0);
}

pub(crate) const SALES_HEADER: &str = "line;operation;time;order;refund_of;performance;block;row;seat;zone;seat_category;tariff_type;audience_subcategory;amount;currency;vat_code;contingent_version\n";

/// `pairs` sales of seat 3301 A1 of 1701, each refunded by the next line:
/// every line books (a refund frees the seat for the next sale).
fn sale_refund_pairs(pairs: u64) -> (Vec<u8>, u64) {
    let mut out = SALES_HEADER.as_bytes().to_vec();
    for k in 1..=pairs {
        let (sale, refund) = (2 * k - 1, 2 * k);
        writeln!(
            out,
            "{sale};SALE;2026-12-01T10:15:00Z;T-{k:07};;1701;3301;A;1;;2001;1201;1301;8500;EUR;1101;"
        )
        .expect("write");
        writeln!(
            out,
            "{refund};REFUND;2026-12-01T11:00:00Z;T-{k:07};{sale};1701;3301;A;1;;2001;1201;1301;8500;EUR;1101;"
        )
        .expect("write");
    }
    (out, 2 * pairs)
}

/// The sample SALES payload (2 sales, 1 refund, 1 zone sale, 2 ACKs).
pub(crate) fn sample_sales() -> (Vec<u8>, u64) {
    let bytes = std::fs::read(repo().join("samples/payloads/sales.csv")).expect("sample");
    let records = bytes.iter().filter(|b| **b == b'\n').count() as u64 - 1;
    (bytes, records)
}

/// Seals SALES file `seq` into `dir` with the demo link's secret; returns
/// (manifest, payload) paths.
pub(crate) fn sealed(
    sb: &Sandbox,
    dir: &Path,
    seq: u64,
    payload: &[u8],
    records: u64,
) -> (PathBuf, PathBuf) {
    let m = seal(dir, &sb.demo_secret(), Kind::Sales, seq, payload, records);
    (dir.join(m.manifest_name()), dir.join(&m.payload))
}

/// Puts a copy of `src` into `dir` the way a careful writer does: written
/// under a dot-name ending in `.part`, synced, then renamed.
#[allow(
    clippy::disallowed_methods,
    reason = "a writer's own temporary name renamed to the final one: what the daemon must cope with"
)]
fn put(src: &Path, dir: &Path) {
    let name = src
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let tmp = dir.join(format!(".{name}.part"));
    let mut f = std::fs::File::create(&tmp).expect("create");
    f.write_all(&std::fs::read(src).expect("read"))
        .expect("write");
    f.sync_all().expect("sync");
    std::fs::rename(&tmp, dir.join(&name)).expect("rename");
}

/// Drops a prepared pair: payload first, manifest last.
fn drop_pair(pair: &(PathBuf, PathBuf), dir: &Path) {
    put(&pair.1, dir);
    put(&pair.0, dir);
}

/// The `.stx` names in `dir`.
pub(crate) fn manifests(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".stx"))
        .collect();
    names.sort();
    names
}

#[track_caller]
pub(crate) fn wait_until(what: &str, deadline: Duration, daemon: &Daemon, ok: impl Fn() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(
            start.elapsed() < deadline,
            "{what}: not after {deadline:?}; daemon log:\n{}",
            tail(&daemon.log())
        );
        std::thread::sleep(POLL);
    }
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// The manager's store, read-only.
pub(crate) fn opera(sb: &Sandbox) -> Connection {
    Connection::open_with_flags(
        sb.path().join("var/state/OPERA.sqlite"),
        OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open OPERA read-only")
}

pub(crate) fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).expect(sql)
}

/// (sequence, state) of every inbound SALES file the journal holds, in
/// journal order.
pub(crate) fn journal(sb: &Sandbox) -> Vec<(i64, String)> {
    let conn = opera(sb);
    let mut stmt = conn
        .prepare(
            "SELECT sequence, state FROM file_journal
              WHERE link = 'opera-tourism' AND kind = 'SALES' AND direction = 'in' ORDER BY id",
        )
        .expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

pub(crate) fn stop(mut daemon: Daemon) {
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(), Some(0), "{}", tail(&daemon.log()));
}

#[test]
fn a_file_written_slowly_is_taken_only_once_its_manifest_is_there() {
    let sb = Sandbox::new();
    fast_listing(&sb);
    manager_ready(&sb);
    let daemon = Daemon::start_with(&sb, "info,stxd=debug");
    let inbox = inbox(&sb);
    let (payload, records) = sample_sales();
    let pair = sealed(&sb, &outside(&sb, "one"), 1, &payload, records);
    let bytes = std::fs::read(&pair.1).expect("payload");

    // The payload arrives in 8 chunks over ~2.4 s under its final name,
    // while the daemon lists every second and gets an event per write.
    let target = inbox.join(pair.1.file_name().expect("name"));
    let mut f = std::fs::File::create(&target).expect("create payload");
    for chunk in bytes.chunks(bytes.len().div_ceil(8)) {
        f.write_all(chunk).expect("write");
        f.sync_all().expect("sync");
        std::thread::sleep(Duration::from_millis(300));
        assert!(target.exists(), "the payload was moved before its manifest");
        assert!(manifests(&inbox.join("error")).is_empty());
        assert!(manifests(&inbox.join("done")).is_empty());
    }
    drop(f);
    assert!(
        !daemon.log().contains("file taken"),
        "a payload without manifest was taken:\n{}",
        daemon.log()
    );
    // The manifest last, under a temporary name then renamed.
    put(&pair.0, &inbox);
    let done = inbox.join("done");
    // The archive links each name into done/ before unlinking it from the
    // inbox: wait for the move to finish, not only to start.
    wait_until("the file applied", Duration::from_secs(30), &daemon, || {
        manifests(&done).len() == 1 && manifests(&inbox).is_empty()
    });
    assert!(done.join(pair.1.file_name().expect("name")).exists());
    assert_eq!(journal(&sb), vec![(1, "applied".to_owned())]);
    let conn = opera(&sb);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM sales_line WHERE status = 'booked'"
        ),
        4
    );
    assert!(manifests(&inbox.join("error")).is_empty());
    stop(daemon);
}

#[test]
fn a_manifest_dropped_before_its_payload_is_complete_is_rejected_whole() {
    let sb = Sandbox::new();
    fast_listing(&sb);
    manager_ready(&sb);
    let daemon = Daemon::start_with(&sb, "info,stxd=debug");
    let inbox = inbox(&sb);
    let (payload, records) = sample_sales();
    let pair = sealed(&sb, &outside(&sb, "one"), 1, &payload, records);
    let bytes = std::fs::read(&pair.1).expect("payload");

    // A hostile writer: half the payload, then the manifest under its
    // final name, then the rest of the payload slowly.
    let target = inbox.join(pair.1.file_name().expect("name"));
    let mut f = std::fs::File::create(&target).expect("create payload");
    let (first, rest) = bytes.split_at(bytes.len() / 2);
    f.write_all(first).expect("write");
    f.sync_all().expect("sync");
    std::fs::write(
        inbox.join(pair.0.file_name().expect("name")),
        std::fs::read(&pair.0).expect("manifest"),
    )
    .expect("write manifest");
    let error = inbox.join("error");
    wait_until(
        "the file rejected",
        Duration::from_secs(30),
        &daemon,
        // The reason is written first, then the pair moves: wait for the
        // move's end (the manifest has left the inbox).
        || {
            error
                .join("opera-tourism.SALES.00000001.stx.reason")
                .exists()
                && manifests(&inbox).is_empty()
        },
    );
    // The writer goes on: its handle follows the file into error/.
    for chunk in rest.chunks(rest.len().div_ceil(4)) {
        f.write_all(chunk).expect("write");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(f);
    let reason = std::fs::read_to_string(error.join("opera-tourism.SALES.00000001.stx.reason"))
        .expect("reason");
    assert!(reason.contains("code: envelope-"), "{reason}");
    assert!(error.join(pair.1.file_name().expect("name")).exists());
    assert!(manifests(&inbox).is_empty());
    // Nothing applied, not even half.
    let conn = opera(&sb);
    assert_eq!(count(&conn, "SELECT count(*) FROM sales_line"), 0);
    assert_eq!(count(&conn, "SELECT count(*) FROM ticket"), 0);
    assert!(
        journal(&sb).iter().all(|(_, state)| state != "applied"),
        "{:?}",
        journal(&sb)
    );
    let log = daemon.log();
    assert!(log.contains("file rejected"), "{log}");
    // The sender drops the complete file again: it applies.
    drop_pair(&pair, &inbox);
    wait_until(
        "the complete file applied",
        Duration::from_secs(30),
        &daemon,
        || manifests(&inbox.join("done")).len() == 1,
    );
    assert_eq!(journal(&sb), vec![(1, "applied".to_owned())]);
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM sales_line WHERE status = 'booked'"
        ),
        4
    );
    stop(daemon);
}

/// A small deterministic generator for shuffling (xorshift64*).
fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        let r = seed.wrapping_mul(0x2545_f491_4f6c_dd1d);
        items.swap(i, (r % (i as u64 + 1)) as usize);
    }
}

/// The daemon's peak resident memory so far (`VmHWM`), in KiB.
pub(crate) fn peak_rss_kib(daemon: &Daemon) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", daemon.pid())).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// 1,000 files in CI; `STXD_LOAD_FILES=10000` for the load figure of
/// docs/reliability.md.
#[test]
fn a_thousand_files_dropped_at_once_apply_exactly_once_in_sequence_order() {
    let n: u64 = std::env::var("STXD_LOAD_FILES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let sb = Sandbox::new();
    sb.ready();
    let staging = outside(&sb, "many");
    // Cheap files: SALES files without lines, sequences 1..=N.
    let mut pairs: Vec<(PathBuf, PathBuf)> = (1..=n)
        .map(|seq| sealed(&sb, &staging, seq, SALES_HEADER.as_bytes(), 0))
        .collect();
    let seed = (crate::util::unique() as u64) | 1;
    shuffle(&mut pairs, seed);
    let daemon = Daemon::start(&sb);
    let inbox = inbox(&sb);
    let start = Instant::now();
    for pair in &pairs {
        drop_pair(pair, &inbox);
    }
    let done = inbox.join("done");
    wait_until(
        &format!("{n} files applied (shuffle seed {seed})"),
        Duration::from_secs(300 * n.div_ceil(1000)),
        &daemon,
        || manifests(&done).len() == n as usize,
    );
    let peak = peak_rss_kib(&daemon);
    eprintln!(
        "{n} files dropped in random order (seed {seed}) applied in {:?}; daemon peak RSS {peak} KiB",
        start.elapsed()
    );
    // Flat: the daemon holds a listing's paths, not the files; well under
    // what a leak of one payload per file would reach.
    assert!(peak < 96 * 1024, "peak RSS {peak} KiB for {n} files");
    stop(daemon);
    assert!(manifests(&inbox).is_empty(), "inbox emptied");
    assert!(
        manifests(&inbox.join("error")).is_empty(),
        "no file rejected"
    );
    let payloads = std::fs::read_dir(&done)
        .expect("done")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".csv"))
        })
        .count();
    assert_eq!(
        payloads, n as usize,
        "every payload archived beside its manifest"
    );
    let expected: Vec<(i64, String)> = (1..=n as i64).map(|s| (s, "applied".to_owned())).collect();
    assert_eq!(journal(&sb), expected, "journal order = sequence order");
    // Applied in sequence order: the runs were started in that order too.
    let conn = opera(&sb);
    let mut stmt = conn
        .prepare(
            "SELECT f.sequence FROM file_journal f JOIN run r ON r.id = f.run_id
              WHERE f.direction = 'in' ORDER BY r.id",
        )
        .expect("prepare");
    let by_run: Vec<i64> = stmt
        .query_map([], |r| r.get(0))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    assert_eq!(by_run, (1..=n as i64).collect::<Vec<_>>());
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM run WHERE kind = 'import-sales'"
        ),
        n as i64,
        "one run per file, none failed"
    );
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: mkfifo on a NUL-terminated path this test owns.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

#[test]
fn hostile_entries_are_refused_and_a_valid_file_dropped_after_them_applies() {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let sb = Sandbox::new();
    fast_listing(&sb);
    manager_ready(&sb);
    let daemon = Daemon::start(&sb);
    let inbox = inbox(&sb);
    let (payload, records) = sample_sales();
    let valid = sealed(&sb, &outside(&sb, "valid"), 1, &payload, records);
    let valid_bytes = (
        std::fs::read(&valid.0).expect("m"),
        std::fs::read(&valid.1).expect("p"),
    );
    let passwd = std::fs::read("/etc/passwd").expect("/etc/passwd");
    let name = |seq: u64, ext: &str| format!("opera-tourism.SALES.{seq:08}.{ext}");

    // Symlinks to a valid pair outside the folders, and to /etc/passwd.
    // (Payloads first, as a writer would: the manifest marks completeness.)
    std::os::unix::fs::symlink(&valid.1, inbox.join(name(1, "csv"))).expect("symlink");
    std::os::unix::fs::symlink(&valid.0, inbox.join(name(1, "stx"))).expect("symlink");
    std::os::unix::fs::symlink("/etc/passwd", inbox.join(name(2, "stx"))).expect("symlink");
    // A FIFO (reading it would block forever) and a directory.
    mkfifo(&inbox.join(name(3, "stx")));
    std::fs::create_dir(inbox.join(name(4, "stx"))).expect("mkdir");
    // A valid pair whose manifest is hard-linked from outside.
    let linked = sealed(&sb, &outside(&sb, "linked"), 5, &payload, records);
    put(&linked.1, &inbox);
    std::fs::hard_link(&linked.0, inbox.join(name(5, "stx"))).expect("hard link");
    // Odd names holding a valid manifest's bytes.
    let odd = [
        "-opera-tourism.SALES.00000006.stx",
        "opera-tourism..SALES.00000006.stx",
        "..opera-tourism.SALES.00000006.stx",
        ".opera-tourism.SALES.00000006.stx",
        "opera-tourism.SALES.00000006.stx.part",
    ];
    for n in odd {
        std::fs::write(inbox.join(n), &valid_bytes.0).expect("write odd");
    }
    let error = inbox.join("error");
    for seq in [1, 2, 3, 5] {
        let reason = error.join(format!("{}.reason", name(seq, "stx")));
        wait_until(
            &format!("{} refused", name(seq, "stx")),
            Duration::from_secs(30),
            &daemon,
            || reason.exists(),
        );
    }
    daemon.wait_log("opera-tourism.SALES.00000004.stx");
    for n in &odd[..2] {
        daemon.wait_log(n);
    }

    // The valid file, dropped after them, applies.
    drop_pair(&valid, &inbox);
    let done = inbox.join("done");
    wait_until(
        "the valid file applied",
        Duration::from_secs(30),
        &daemon,
        || manifests(&done) == vec![name(1, "stx")],
    );
    let mut daemon = daemon;
    assert!(daemon.running(), "{}", daemon.log());
    assert_eq!(journal(&sb), vec![(1, "applied".to_owned())]);
    assert_eq!(
        count(
            &opera(&sb),
            "SELECT count(*) FROM sales_line WHERE status = 'booked'"
        ),
        4
    );

    // Where each refused entry ended, and why.
    let reason = |seq: u64| {
        std::fs::read_to_string(error.join(format!("{}.reason", name(seq, "stx")))).expect("reason")
    };
    assert!(reason(1).contains("code: symlink"), "{}", reason(1));
    assert!(reason(2).contains("code: symlink"), "{}", reason(2));
    assert!(reason(3).contains("code: not-regular"), "{}", reason(3));
    assert!(reason(5).contains("code: hard-link"), "{}", reason(5));
    for (seq, ext) in [(1, "stx"), (1, "csv"), (2, "stx")] {
        let meta = std::fs::symlink_metadata(error.join(name(seq, ext))).expect("moved link");
        assert!(meta.file_type().is_symlink(), "the link itself was moved");
    }
    let fifo = std::fs::symlink_metadata(error.join(name(3, "stx"))).expect("moved fifo");
    assert!(fifo.file_type().is_fifo());
    assert!(
        error.join(name(5, "csv")).exists(),
        "the pair moved together"
    );
    // The directory stays in the inbox, logged once as held.
    assert!(inbox.join(name(4, "stx")).is_dir());
    let log = daemon.log();
    let held = log
        .lines()
        .filter(|l| l.contains("file held in the inbox") && l.contains(&name(4, "stx")))
        .count();
    assert_eq!(held, 1, "{log}");
    // Odd names are never taken nor moved; the misnamed `.stx` ones are
    // logged once each, the temporary names not at all.
    for n in odd {
        assert_eq!(
            std::fs::read(inbox.join(n)).expect("still there"),
            valid_bytes.0,
            "{n}"
        );
    }
    for n in &odd[..2] {
        let lines = log
            .lines()
            .filter(|l| l.contains(&format!("file={n} ")))
            .count();
        assert_eq!(lines, 1, "{n}:\n{log}");
    }
    for n in &odd[2..] {
        assert!(!log.contains(n), "{n}:\n{log}");
    }
    // Every refusal names its file.
    for seq in [1, 2, 3, 5] {
        assert!(
            log.lines()
                .any(|l| l.contains("file rejected") && l.contains(&name(seq, "stx"))),
            "{}:\n{log}",
            name(seq, "stx")
        );
    }
    // Nothing outside the folders was touched.
    assert_eq!(std::fs::read(&valid.0).expect("outside"), valid_bytes.0);
    assert_eq!(std::fs::read(&valid.1).expect("outside"), valid_bytes.1);
    assert_eq!(std::fs::read("/etc/passwd").expect("/etc/passwd"), passwd);
    let outside_link = std::fs::metadata(&linked.0).expect("outside link");
    assert_eq!(outside_link.nlink(), 2, "outside name + the one in error/");
    stop(daemon);
}

/// The state of the big file in the store: (lines, tickets, journal).
fn big_state(sb: &Sandbox) -> (i64, i64, Vec<(i64, String)>) {
    let conn = opera(sb);
    (
        count(&conn, "SELECT count(*) FROM sales_line"),
        count(&conn, "SELECT count(*) FROM ticket"),
        journal(sb),
    )
}

/// Sale/refund pairs of the big file: enough for its apply to take more
/// than a second in a debug build.
const BIG_PAIRS: u64 = 10_000;

fn big_file(sb: &Sandbox) -> (PathBuf, PathBuf) {
    let (payload, records) = sale_refund_pairs(BIG_PAIRS);
    sealed(sb, &outside(sb, "big"), 1, &payload, records)
}

/// Asserts the big file is either not started or fully applied, and the
/// journal agrees; true when applied.
#[track_caller]
fn none_or_all(sb: &Sandbox) -> bool {
    let all = (2 * BIG_PAIRS) as i64;
    match big_state(sb) {
        (0, 0, j) if j.is_empty() => false,
        (lines, tickets, j) if lines == all && tickets == all / 2 => {
            assert_eq!(j, vec![(1, "applied".to_owned())]);
            true
        }
        other => panic!("the store is between before and after the file: {other:?}"),
    }
}

fn restart_until_applied(sb: &Sandbox, pair: &(PathBuf, PathBuf)) {
    let daemon = Daemon::start(sb);
    let done = inbox(sb).join("done");
    let name = pair
        .0
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    wait_until(
        "the big file applied",
        Duration::from_secs(300),
        &daemon,
        || manifests(&done) == vec![name.clone()],
    );
    stop(daemon);
    assert!(none_or_all(sb), "applied after the restart");
    assert!(manifests(&inbox(sb)).is_empty());
    assert!(manifests(&inbox(sb).join("error")).is_empty());
}

#[test]
fn sigterm_in_the_middle_of_a_large_file_leaves_it_unstarted_or_fully_applied() {
    let sb = Sandbox::new();
    manager_ready(&sb);
    let pair = big_file(&sb);
    let mut daemon = Daemon::start_with(&sb, "info,stxd=debug");
    drop_pair(&pair, &inbox(&sb));
    daemon.wait_log("applying");
    let signalled = Instant::now();
    daemon.signal(libc::SIGTERM);
    assert_eq!(daemon.wait_exit(), Some(0), "{}", tail(&daemon.log()));
    let applied = none_or_all(&sb);
    // For the record (not asserted: it depends on the machine): where the
    // signal fell.
    let log = daemon.log();
    let mid = log
        .find("stopping")
        .zip(log.find("file handled"))
        .is_some_and(|(s, h)| s < h);
    eprintln!(
        "SIGTERM {} the big file's apply; exit after {:?}; the file was {}",
        if mid { "fell during" } else { "came after" },
        signalled.elapsed(),
        if applied {
            "fully applied"
        } else {
            "not started"
        }
    );
    drop(daemon);
    restart_until_applied(&sb, &pair);
}

#[test]
fn sigkill_in_the_middle_of_a_large_file_then_a_restart_applies_it_once() {
    let sb = Sandbox::new();
    manager_ready(&sb);
    let pair = big_file(&sb);
    let mut daemon = Daemon::start_with(&sb, "info,stxd=debug");
    drop_pair(&pair, &inbox(&sb));
    daemon.wait_log("applying");
    daemon.signal(libc::SIGKILL);
    assert_eq!(daemon.wait_exit(), None, "killed by the signal");
    let applied = none_or_all(&sb);
    eprintln!(
        "after SIGKILL the big file was {}",
        if applied {
            "fully applied"
        } else {
            "not started"
        }
    );
    drop(daemon);
    restart_until_applied(&sb, &pair);
}

#[test]
fn a_command_waiting_for_the_store_names_the_large_file_the_daemon_is_applying() {
    let sb = Sandbox::new();
    manager_ready(&sb);
    // Long enough to be applied for seconds after that second (600,000
    // lines: about 7 s on the development machine, where 200,000 once
    // left too little of a margin).
    let (payload, records) = sale_refund_pairs(30 * BIG_PAIRS);
    let pair = sealed(&sb, &outside(&sb, "big"), 1, &payload, records);
    let daemon = Daemon::start(&sb);
    drop_pair(&pair, &inbox(&sb));
    // A second into applying it (its parse pass), the daemon records the
    // file for status and for the commands that wait for its store.
    let record = sb.path().join("var/state/reading.json");
    wait_until(
        "the daemon's record of the file it applies",
        Duration::from_secs(300),
        &daemon,
        || std::fs::read_to_string(&record).is_ok_and(|r| r.contains("\"pass\":\"parse\"")),
    );
    let started = Instant::now();
    let run = sb.stxd(&["export", "seatplan", "--link", "opera-tourism"]);
    run.expect_code(0);
    let said = run.stderr();
    assert!(
        said.contains("stxd: waiting for the store")
            && said.contains(
                "OPERA.sqlite: the daemon is reading opera-tourism.SALES.00000001.csv for "
            )
            && said.contains("nothing written yet"),
        "{said}"
    );
    // The export went on once the file was applied, whole.
    let done = inbox(&sb).join("done");
    assert_eq!(manifests(&done).len(), 1, "{}", tail(&daemon.log()));
    assert_eq!(big_state(&sb).0, 60 * BIG_PAIRS as i64);
    eprintln!("the export waited {:?} for the file", started.elapsed());
    assert!(!record.exists(), "the record goes with the pass");
    stop(daemon);
}

#[test]
fn json_logs_carry_the_file_span() {
    let sb = Sandbox::new();
    let path = sb.path().join("config/stxd.toml");
    let text = std::fs::read_to_string(&path).expect("config");
    std::fs::write(
        &path,
        text.replace("format = \"human\"", "format = \"json\""),
    )
    .expect("config");
    manager_ready(&sb);
    let (payload, records) = sample_sales();
    let pair = sealed(&sb, &inbox(&sb), 1, &payload, records);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_stxd"))
        .args(["process", &pair.0.display().to_string()])
        .current_dir(sb.path())
        .env("STXD_CONFIG", "config/stxd.toml")
        .env("STXD_LOG", "debug")
        .output()
        .expect("run stxd process");
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let objects: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let in_span: Vec<&serde_json::Value> = objects
        .iter()
        .filter(|o| o["span"]["name"] == "file")
        .collect();
    assert!(!in_span.is_empty(), "{stderr}");
    for o in &in_span {
        assert_eq!(o["span"]["file"], "opera-tourism.SALES.00000001.stx", "{o}");
        assert_eq!(o["span"]["link"], "opera-tourism", "{o}");
        assert_eq!(o["span"]["kind"], "SALES", "{o}");
        assert_eq!(o["span"]["seq"], 1, "{o}");
    }
    // Once the run is started, the span carries it.
    let handled = in_span
        .iter()
        .find(|o| o["fields"]["message"] == "file handled")
        .unwrap_or_else(|| panic!("no 'file handled' line: {stderr}"));
    assert!(
        handled["span"]["run"].as_i64().is_some_and(|r| r > 0),
        "{handled}"
    );
    assert_eq!(handled["fields"]["outcome"], "applied");
}

/// A folder or a dangling symlink under a payload's name: the pair is
/// refused whole, both names end in `error/` beside the `.reason`, the
/// inbox is empty, and `stxd status` counts the file in error.
#[test]
fn a_folder_or_dangling_link_as_the_payload_is_refused_whole() {
    for odd in ["folder", "dangling-link"] {
        let sb = Sandbox::new();
        sb.ready();
        sb.stxd(&["export", "seatplan", "--link", "opera-tourism"])
            .expect_code(0);
        let dir = sb.path().join("var/exchange/opera-tourism/to-distributor");
        let payload = dir.join("opera-tourism.SEATPLAN.00000001.xml");
        std::fs::remove_file(&payload).unwrap();
        match odd {
            "folder" => std::fs::create_dir(&payload).unwrap(),
            _ => std::os::unix::fs::symlink(dir.join("nowhere"), &payload).unwrap(),
        }
        let run = sb.stxd(&["process"]);
        run.expect_code(1);
        assert!(run.stdout().contains("rejected"), "{odd}: {}", run.stdout());
        let error = dir.join("error");
        assert!(
            error.join("opera-tourism.SEATPLAN.00000001.stx").exists(),
            "{odd}"
        );
        assert!(
            std::fs::symlink_metadata(error.join("opera-tourism.SEATPLAN.00000001.xml")).is_ok(),
            "{odd}: the payload stayed behind"
        );
        assert!(
            error
                .join("opera-tourism.SEATPLAN.00000001.stx.reason")
                .exists(),
            "{odd}"
        );
        assert_eq!(manifests(&dir), Vec::<String>::new(), "{odd}");
        assert!(std::fs::symlink_metadata(&payload).is_err(), "{odd}");
        // A second run finds nothing left to do.
        sb.stxd(&["process"]).expect_code(0);
        let status = sb.stxd(&["status"]);
        assert!(
            status.stdout().contains("1 file put in error/"),
            "{odd}: {}",
            status.stdout()
        );
    }
}

/// The attempts the daemon's log shows for a failing file: the time of
/// each (the line's timestamp) and the next try it announced.
fn attempts(log: &str) -> Vec<(time::OffsetDateTime, String)> {
    use time::format_description::well_known::Rfc3339;
    log.lines()
        .filter(|l| l.contains("file not processed") || l.contains("file still failing"))
        .map(|l| {
            let stamp = l.split_whitespace().next().unwrap_or_default();
            let at = time::OffsetDateTime::parse(stamp, &Rfc3339)
                .unwrap_or_else(|e| panic!("no timestamp ({e}): {l}"));
            // The line's last field.
            let next = l
                .split("next_try=")
                .nth(1)
                .unwrap_or_else(|| panic!("no next_try: {l}"))
                .trim();
            (at, next.to_owned())
        })
        .collect()
}

/// Every read of a payload fails (`EIO` injected by strace into the
/// running daemon, listing every second): the file stays in the inbox and
/// is tried again after one listing period, then two, four, eight, not at
/// every listing; touched, it is tried at the next listing and its waits
/// start again; once the fault is gone it applies once.
#[test]
fn a_file_that_keeps_failing_is_tried_less_often_and_at_once_when_touched() {
    let sb = Sandbox::new();
    manager_ready(&sb);
    fast_listing(&sb);
    let (payload, records) = sample_sales();
    let (manifest, payload) = sealed(&sb, &inbox(&sb), 1, &payload, records);
    let strace = "/usr/bin/strace";
    assert!(
        Path::new(strace).exists(),
        "strace injects the read failures: apt-get install strace, as CI does"
    );
    let payload_arg = payload.display().to_string();
    let wrapper = [
        strace,
        "-f",
        "-qq",
        "-o",
        "/dev/null",
        "-P",
        &payload_arg,
        "-e",
        "trace=read",
        "-e",
        "inject=read:error=EIO",
    ];
    let filter = "info,stxd::daemon=debug";
    let mut daemon = Daemon::spawn_via(&sb, &wrapper, &[], filter, &[]);
    daemon.wait_log("ready");
    daemon.wait_log_n("file still failing", 3);
    let log = daemon.log();
    let seen = attempts(&log);
    let next: Vec<&str> = seen.iter().map(|(_, n)| n.as_str()).take(4).collect();
    assert_eq!(
        next,
        ["in 1 s", "in 2 s", "in 4 s", "in 8 s"],
        "{}",
        tail(&log)
    );
    // Each try came no sooner than the wait announced before it.
    for (k, pair) in seen.windows(2).take(3).enumerate() {
        let gap = pair[1].0 - pair[0].0;
        let wait = time::Duration::seconds(1 << k);
        assert!(
            gap >= wait - time::Duration::milliseconds(50),
            "try {} came {gap} after the one before, its wait was {wait}:\n{}",
            k + 2,
            tail(&log)
        );
    }
    // Listings in between passed the file by.
    assert!(
        log.contains("file not tried at this listing"),
        "{}",
        tail(&log)
    );
    assert!(
        log.matches("file not processed").count() == 1,
        "said once as an error"
    );
    // `stxd status` and the console say why it waits, and until when.
    let status = sb.stxd(&["status"]);
    let said = status.stdout();
    let why = "opera-tourism.SALES.00000001.stx: not processed now (";
    assert!(
        said.contains(why)
            && said.contains("failure(s) in a row, code io): opera-tourism.SALES.00000001.csv: byte 0: read failed: Input/output error")
            && said.contains("; tried again at "),
        "{said}"
    );
    let (code, page) = crate::console::Console::of(&sb).get("/");
    assert_eq!(code, 200, "{page}");
    assert!(
        page.contains("id=\"retrying\"") && page.contains(why),
        "{page}"
    );
    // Touched: tried at the next listing, long before its 8 s are over,
    // and its waits start again.
    let fourth = seen[3].0;
    std::fs::File::options()
        .write(true)
        .open(&manifest)
        .expect("open the manifest")
        .set_modified(std::time::SystemTime::now())
        .expect("touch the manifest");
    daemon.wait_log_n("file still failing", 4);
    let log = daemon.log();
    let (fifth, next) = attempts(&log)[4].clone();
    assert_eq!(next, "in 1 s", "{}", tail(&log));
    assert!(
        fifth - fourth < time::Duration::seconds(8),
        "touched, the file waited {} after its fourth try:\n{}",
        fifth - fourth,
        tail(&log)
    );
    // Stopped: nothing applied, nothing refused, the pair where it was.
    let stxd = daemon.children();
    assert_eq!(stxd.len(), 1, "strace runs stxd: {stxd:?}");
    // SAFETY: kill(2) on the daemon this test started (strace's child).
    assert_eq!(unsafe { libc::kill(stxd[0], libc::SIGTERM) }, 0);
    daemon.wait_exit();
    assert!(
        !sb.stxd(&["status"]).stdout().contains(why),
        "no daemon, nothing it tries"
    );
    assert_eq!(manifests(&inbox(&sb)), ["opera-tourism.SALES.00000001.stx"]);
    assert!(payload.exists());
    assert!(manifests(&inbox(&sb).join("error")).is_empty());
    assert_eq!(journal(&sb), Vec::<(i64, String)>::new());
    // The fault gone, the file applies once.
    sb.stxd(&["process"]).expect_code(0);
    assert_eq!(journal(&sb), [(1, "applied".to_owned())]);
    assert_eq!(
        count(
            &opera(&sb),
            "SELECT count(*) FROM sales_line WHERE status = 'booked'"
        ),
        4
    );
}

/// The manager's store on a full disk (a small tmpfs, filled but for
/// 256 KiB once the daemon runs): a big SALES file's apply fails for it,
/// nothing of it is written, it is not refused and stays in the inbox;
/// once space is freed the daemon's next try applies it once.
#[test]
fn a_store_on_a_full_disk_keeps_the_file_waiting_and_applies_it_once_space_is_freed() {
    let sb = Sandbox::new();
    let state = sb.path().join("var/state");
    std::fs::create_dir_all(&state).expect("state folder");
    let disk = Tmpfs::mount(&state, "16m");
    manager_ready(&sb);
    fast_listing(&sb);
    let pair = big_file(&sb);
    let daemon = Daemon::start_with(&sb, "info,stxd::daemon=debug");
    let filler = state.join("filler");
    let room = 256 << 10;
    std::fs::write(
        &filler,
        vec![0u8; usize::try_from(disk.free() - room).expect("size")],
    )
    .expect("fill the disk");
    drop_pair(&pair, &inbox(&sb));
    daemon.wait_log_n("file still failing", 1);
    let log = daemon.log();
    let failed = log
        .lines()
        .find(|l| l.contains("file not processed now"))
        .unwrap_or_else(|| panic!("no failure said:\n{}", tail(&log)));
    assert!(
        failed.contains("opera-tourism.SALES.00000001.stx")
            && failed.contains("full")
            && failed.contains("next_try=in 1 s"),
        "{failed}"
    );
    eprintln!("the daemon said: {failed}");
    assert!(!log.contains("file rejected"), "{}", tail(&log));
    assert_eq!(big_state(&sb), (0, 0, Vec::new()), "nothing of it written");
    assert_eq!(manifests(&inbox(&sb)), ["opera-tourism.SALES.00000001.stx"]);
    assert!(manifests(&inbox(&sb).join("error")).is_empty());
    // Space freed: the next try applies it, once.
    std::fs::remove_file(&filler).expect("free the disk");
    let done = inbox(&sb).join("done");
    wait_until(
        "the big file applied once space is freed",
        Duration::from_secs(300),
        &daemon,
        || manifests(&done) == ["opera-tourism.SALES.00000001.stx"],
    );
    // Applied: the record of files tried again later goes at the end of
    // that listing.
    wait_until(
        "nothing tried again later",
        Duration::from_secs(60),
        &daemon,
        || !state.join("retrying.json").exists(),
    );
    stop(daemon);
    assert!(none_or_all(&sb), "applied");
    assert!(manifests(&inbox(&sb)).is_empty());
    assert!(manifests(&inbox(&sb).join("error")).is_empty());
}
