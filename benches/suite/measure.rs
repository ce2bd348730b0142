//! Running one contestant: a child process timed, its peak memory taken
//! from the kernel when it is reaped (`wait4`), and the figures summarised.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// What one run of a contestant cost.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    pub secs: f64,
    /// Peak resident set size of the child, KiB (`ru_maxrss`).
    pub rss_kib: u64,
    /// Bytes the run added to its database (0 when not measured).
    pub store_bytes: u64,
}

/// Runs `cmd` to its end; panics (the suite stops) when it fails, with its
/// output, so a figure is never taken from a run that did not do the work.
pub fn run(cmd: &mut Command) -> Sample {
    run_exiting(cmd, &[0])
}

/// [`run`], the command's success being one of the exit `codes`.
pub fn run_exiting(cmd: &mut Command, codes: &[i32]) -> Sample {
    let what = format!("{cmd:?}");
    let out = tempfile::tempfile().expect("temp file");
    let err = tempfile::tempfile().expect("temp file");
    cmd.stdin(std::process::Stdio::null())
        .stdout(out.try_clone().expect("clone"))
        .stderr(err.try_clone().expect("clone"));
    let start = Instant::now();
    // Reaped below by wait4, which std's Child::wait cannot replace (it
    // gives no resource usage).
    #[allow(clippy::zombie_processes)]
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    #[allow(unsafe_code)]
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child's pid, writing into the two locals
    // above, which outlive the call. std offers no rusage of one child.
    #[allow(unsafe_code)]
    let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(
        reaped,
        pid,
        "wait4 {what}: {}",
        std::io::Error::last_os_error()
    );
    let ok = libc::WIFEXITED(status) && codes.contains(&libc::WEXITSTATUS(status));
    if !ok {
        let read = |mut f: std::fs::File| {
            use std::io::{Read, Seek};
            let mut s = String::new();
            f.rewind().ok();
            f.read_to_string(&mut s).ok();
            s
        };
        panic!("{what} failed ({status}):\n{}\n{}", read(out), read(err));
    }
    Sample {
        secs,
        rss_kib: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        store_bytes: 0,
    }
}

/// The median run by time (the upper one of an even count), with the
/// largest peak memory of all runs.
pub fn median(samples: &[Sample]) -> Sample {
    let mut sorted = samples.to_vec();
    sorted.sort_by(|a, b| a.secs.total_cmp(&b.secs));
    let mut m = sorted[sorted.len() / 2];
    m.rss_kib = samples.iter().map(|s| s.rss_kib).max().unwrap_or(0);
    m
}

/// Size of a SQLite database with its WAL, bytes.
pub fn db_bytes(db: &Path) -> u64 {
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    size(db) + size(Path::new(&wal))
}

/// Copies the tree `from` to `to` (files and folders; modes kept).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Percentile `p` (0–100) of `values`, nearest rank.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}
