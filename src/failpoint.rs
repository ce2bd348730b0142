//! Failpoints: named places at which a crash test kills the process.
//!
//! Every multi-step change on disk (an export placed after its commit, an
//! archive move, a trigger claimed, an SFTP push or pull) calls [`hit`] with
//! the name of each boundary between two steps. Nothing happens unless the
//! environment variable `STXD_FAILPOINT` names that point: then the process
//! sends itself SIGKILL there, exactly as a power cut or an OOM kill would
//! stop it (no destructor, no flush, no unwinding). The crash harness
//! (`tests/crash.rs`) uses it to prove that the next start finishes or undoes
//! every step; the pages under `docs/crash-safety/` list the points and
//! what recovery does at each.
//!
//! Syntax: `STXD_FAILPOINT=name` kills at the first hit of `name`;
//! `name:N` at its N-th hit (counted per process); several, comma-separated,
//! arm several points (the first reached kills). Reading the variable once
//! per process keeps the cost of a disarmed point to one atomic load.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

/// The variable that arms failpoints.
pub const ENV: &str = "STXD_FAILPOINT";

/// The armed points: name → the hit that kills (1 = the first).
fn armed() -> &'static Option<HashMap<String, u64>> {
    static ARMED: OnceLock<Option<HashMap<String, u64>>> = OnceLock::new();
    ARMED.get_or_init(|| std::env::var(ENV).ok().and_then(|v| parse(&v)))
}

/// `name[:N][,name[:N]…]`; `None` when nothing valid is armed.
fn parse(value: &str) -> Option<HashMap<String, u64>> {
    let points: HashMap<String, u64> = value
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .filter_map(|p| match p.split_once(':') {
            Some((name, n)) => n.parse().ok().map(|n: u64| (name.to_owned(), n.max(1))),
            None => Some((p.to_owned(), 1)),
        })
        .collect();
    (!points.is_empty()).then_some(points)
}

/// Marks the boundary `name`: kills the process here when armed for this hit.
pub fn hit(name: &'static str) {
    let Some(points) = armed() else { return };
    let Some(&at) = points.get(name) else { return };
    static HITS: Mutex<Option<HashMap<&'static str, u64>>> = Mutex::new(None);
    let n = {
        let mut hits = HITS.lock().unwrap_or_else(PoisonError::into_inner);
        let count = hits
            .get_or_insert_with(HashMap::new)
            .entry(name)
            .or_insert(0);
        *count += 1;
        *count
    };
    if n == at {
        // Say where, on stderr only (a log line could be buffered and lost,
        // which is the point of a crash), then die like a power cut.
        eprintln!("stxd: failpoint {name} (hit {n}): killing the process");
        kill_self();
    }
}

fn kill_self() -> ! {
    // SAFETY: `kill` with our own pid and a valid signal number has no
    // memory-safety preconditions; SIGKILL cannot be caught, so it does not
    // return in practice.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    // Unreachable in practice; abort rather than go on past a crash point.
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_variable_names_points_and_hits() {
        let p = parse("export.committed, archive.payload-moved:3,bad:x,,").unwrap();
        assert_eq!(p.get("export.committed"), Some(&1));
        assert_eq!(p.get("archive.payload-moved"), Some(&3));
        assert!(!p.contains_key("bad"));
        assert_eq!(parse(" , "), None);
        assert_eq!(parse("a:0").unwrap().get("a"), Some(&1));
    }

    #[test]
    fn a_disarmed_point_returns() {
        // The test process does not set the variable: hitting is a no-op.
        hit("export.committed");
    }
}
