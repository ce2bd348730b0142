//! The crash harness's runner: one private copy of the demo after first use,
//! the real `stxd` binary run on it step by step (one-shot commands and a
//! daemon), and the kills: at a named failpoint (`STXD_FAILPOINT`), at the
//! N-th call of a system call (`strace -e inject=…:signal=KILL:when=N`), or
//! at a random instant (SIGKILL from a timer) for the daemon.
//!
//! A world can also live on [`LossFs`], an in-memory file system that
//! remembers what a disk would keep: there a kill can be a power cut, every
//! process dies with the power and the world goes on from what survived.
//!
//! After a kill the step is recovered as an operator would: a killed
//! business command is rerun only if the store shows it did not commit, a
//! killed export or `process` is rerun, a dead daemon is restarted. Every
//! wait is on a condition (a store row, a folder emptied) with a deadline;
//! a wait that times out is a finding ("stuck"), never a test hang.

use std::fmt;
use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use rusqlite::{Connection, OpenFlags};
use serde_json::Value;

use super::workload::{Flow, LINK, Perf, Step, Workload};
use crate::lossfs::{LossFs, Losses, Tree};
use crate::util::{Sandbox, copy_tree};

/// Where strace is; the harness fails loudly without it.
pub const STRACE: &str = "/usr/bin/strace";
/// How long a wait for the daemon may take before it is a finding. Only an
/// upper bound: a passing wait ends as soon as its condition holds.
const WAIT: Duration = Duration::from_secs(60);
/// How long a published file may take to be applied once the receiver's
/// inbox is empty (a file that went to `error/` never will). Generous: on a
/// loaded machine a daemon may take seconds to get to its next listing.
const WAIT_GONE: Duration = Duration::from_secs(10);
/// How long one command may run before it is killed as hung.
const COMMAND_DEADLINE: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(20);
/// Where the trial's alert command appends each notification (in the
/// trial's folder, the daemon's working directory).
const ALERTS: &str = "alerts.jsonl";
/// The `[[alert]]` every trial's config has: each notification appended to
/// [`ALERTS`] by a command, as an ops team's script would, whole line at
/// once: a command killed with the daemon that ran it writes its line or
/// nothing (a cut line without its newline would glue the next
/// notification to it, and both would be unreadable). The command syncs the
/// file and its folder before it exits, as a receiver that must keep every
/// notification through a power cut would: stxd counts an alert delivered
/// once the command succeeded.
const ALERT_TABLE: &str = r#"
[[alert]]
name = "trial"
command = ["/bin/sh", "-c", "line=$(cat); printf '%s\n' \"$line\" >> alerts.jsonl && sync alerts.jsonl ."]
events = ["file-refused"]
"#;

// ------------------------------------------------------------------ kills

/// How a process is killed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kill {
    /// `STXD_FAILPOINT=name:hit`: the process kills itself at the hit-th
    /// passage of the named point (no kill if it never gets there).
    Failpoint { name: &'static str, hit: u32 },
    /// `strace -f -e inject=call:signal=KILL:when=N`: SIGKILL on entering the
    /// N-th call of `call` (the call does not happen).
    Syscall { call: &'static str, when: u32 },
    /// SIGKILL to the daemon `delay_ms` after the step ends.
    Random { delay_ms: u64 },
    /// The power cut on entry to the `nth` durability call (fsync,
    /// fdatasync, a folder's fsync) of any process from the step's start to
    /// its end, the daemon's included ([`LossFs::arm`]); what was not
    /// durable then is lost as `losses` says (None: everything not synced;
    /// Some(seed): a seeded part of it). Only in a world on [`LossFs`].
    PowerCut { nth: u64, losses: Option<u64> },
}

impl fmt::Display for Kill {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kill::Failpoint { name, hit } => write!(f, "failpoint {name}:{hit}"),
            Kill::Syscall { call, when } => write!(f, "syscall {call}#{when}"),
            Kill::Random { delay_ms } => write!(f, "random +{delay_ms}ms"),
            Kill::PowerCut { nth, losses: None } => {
                write!(f, "power cut at durability call #{nth}, all unsynced lost")
            }
            Kill::PowerCut {
                nth,
                losses: Some(seed),
            } => write!(f, "power cut at durability call #{nth}, losses {seed:#x}"),
        }
    }
}

/// The four kinds, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillKind {
    Failpoint,
    Syscall,
    Random,
    PowerCut,
}

impl Kill {
    pub fn kind(&self) -> KillKind {
        match self {
            Kill::Failpoint { .. } => KillKind::Failpoint,
            Kill::Syscall { .. } => KillKind::Syscall,
            Kill::Random { .. } => KillKind::Random,
            Kill::PowerCut { .. } => KillKind::PowerCut,
        }
    }
}

/// Which process a planned kill aims at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The step's one-shot command.
    Command,
    /// The daemon: restarted armed just before the step (failpoint,
    /// syscall), or killed by a timer once the step ends (random).
    Daemon,
}

/// When a killed export is run again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// At once.
    Now,
    /// Once the wall clock shows another second (its bytes then differ:
    /// the manifest's creation time).
    NextSecond,
    /// Not by the harness: the workload's next steps do.
    Never,
}

/// A kill of the schedule.
#[derive(Debug, Clone)]
pub struct Planned {
    pub step: usize,
    pub target: Target,
    pub kill: Kill,
    /// A failpoint armed in every process started from this step on, until
    /// one dies there (a recovery point: reached by whichever process
    /// recovers first).
    pub sticky: bool,
    pub retry: Retry,
}

impl Planned {
    pub fn command(step: usize, kill: Kill) -> Planned {
        Planned {
            step,
            target: Target::Command,
            kill,
            sticky: false,
            retry: Retry::Now,
        }
    }

    pub fn daemon(step: usize, kill: Kill) -> Planned {
        Planned {
            target: Target::Daemon,
            ..Planned::command(step, kill)
        }
    }
}

// --------------------------------------------------------------- findings

/// What a failed check means for the business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// In the reference, missing in the trial (a line, a version).
    Lost,
    /// More in the trial than in the reference.
    Duplicated,
    /// The same object in both, in another state (part of a change applied).
    HalfApplied,
    /// Files left behind: inbox, `parked/`, `error/`, temporary names, split
    /// pairs, expected files missing from `done/`, waits that never ended.
    Stuck,
    /// Anything else: integrity, reconciliation, a refused step.
    Other,
}

impl Class {
    pub const ALL: [Class; 5] = [
        Class::Lost,
        Class::Duplicated,
        Class::HalfApplied,
        Class::Stuck,
        Class::Other,
    ];

    pub fn word(self) -> &'static str {
        match self {
            Class::Lost => "lost",
            Class::Duplicated => "duplicated",
            Class::HalfApplied => "half-applied",
            Class::Stuck => "stuck",
            Class::Other => "other",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Finding {
    pub class: Class,
    pub text: String,
}

// --------------------------------------------------------------- template

/// The demo after first use #1 and #2 (stores created, seat plan and
/// catalogue applied, product validated and sellable), made once per test
/// process and copied for each run.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<tempfile::TempDir> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            let sb = Sandbox::new();
            sb.first_use_done();
            let config = sb.path().join("config/stxd.toml");
            let mut text = std::fs::read_to_string(&config).expect("demo config");
            text.push_str(ALERT_TABLE);
            std::fs::write(&config, text).expect("trial config");
            let dir = tempfile::Builder::new()
                .prefix("crash-template-")
                .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
                .expect("template dir");
            for sub in ["config", "samples", "var"] {
                copy_tree(&sb.path().join(sub), &dir.path().join(sub));
            }
            dir
        })
        .path()
}

/// Fails loudly when strace is missing: the syscall kills are part of the
/// harness, never skipped.
pub fn require_strace() {
    assert!(
        Path::new(STRACE).is_file(),
        "{STRACE} is missing: the crash harness kills stxd at system calls with strace; install it (apt-get install strace; .ci/run does)"
    );
}

// ---------------------------------------------------------------- daemon

struct Daemon {
    child: Arc<Mutex<Child>>,
    log: PathBuf,
    /// The schedule entry this incarnation was armed for.
    armed: Option<(usize, Kill)>,
    under_strace: bool,
    killed_by_us: Arc<AtomicBool>,
    cancel: Arc<AtomicBool>,
    timer: Option<(usize, std::thread::JoinHandle<()>)>,
}

impl Daemon {
    fn pid(&self) -> i32 {
        let child = self.child.lock().unwrap_or_else(PoisonError::into_inner);
        i32::try_from(child.id()).expect("pid")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The stxd process itself (strace's child when wrapped).
    fn stxd_pid(&self) -> Option<i32> {
        let pid = self.pid();
        if !self.under_strace {
            return Some(pid);
        }
        tracee_of(pid)
    }
}

/// The child strace started (the traced stxd).
fn tracee_of(pid: i32) -> Option<i32> {
    let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    children.split_whitespace().next()?.parse().ok()
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) on a process (or, negative, a process group) this
    // harness spawned and has not reaped yet.
    unsafe {
        libc::kill(pid, sig);
    }
}

// ------------------------------------------------------------------ world

/// What one command did.
pub struct Ran {
    pub status: ExitStatus,
    /// Run under strace, which reports its tracee's SIGKILL by exiting 137
    /// or by dying the same way.
    pub traced: bool,
    pub stdout: String,
    pub stderr: String,
    /// The power was cut while it ran (where, [`LossFs::cut_at`]): it died
    /// with the machine (killed, or failed on the disk gone), and what it
    /// did after the cut is lost.
    pub cut: Option<String>,
}

impl Ran {
    pub fn killed(&self) -> bool {
        self.cut.is_some()
            || self.status.signal() == Some(libc::SIGKILL)
            || (self.traced && self.status.code() == Some(128 + libc::SIGKILL))
    }

    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or(Value::Null)
    }

    /// The failpoint that killed the process, from its last words.
    pub fn failpoint(&self) -> Option<String> {
        failpoint_in(&self.stderr)
    }

    fn brief(&self) -> String {
        let mut s = format!(
            "{}: {}{}",
            self.status,
            self.stdout.trim(),
            self.stderr.trim()
        );
        s.truncate(600);
        s
    }
}

fn failpoint_in(text: &str) -> Option<String> {
    let at = text.rfind("stxd: failpoint ")?;
    text[at + "stxd: failpoint ".len()..]
        .split_whitespace()
        .next()
        .map(str::to_owned)
}

/// Counts of one run.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    /// Kills that happened, by kind (failpoint, syscall, random, power cut).
    pub kills: [u64; 4],
    /// Kills planned, by kind.
    pub planned: [u64; 4],
    pub daemon_starts: u64,
}

fn slot(kind: KillKind) -> usize {
    match kind {
        KillKind::Failpoint => 0,
        KillKind::Syscall => 1,
        KillKind::Random => 2,
        KillKind::PowerCut => 3,
    }
}

/// One run of a workload in its own copy of the demo.
pub struct World {
    /// The file system the world lives on when it takes power cuts, mounted
    /// on `dir` (declared first: unmounted before `dir` is removed).
    fs: Option<LossFs>,
    /// Durability calls of the file systems unmounted by power cuts.
    calls_before: u64,
    /// The schedule entry of the power cut armed for the step running.
    power_plan: Option<usize>,
    /// Durability calls each step of the workload made (on [`LossFs`]).
    pub calls_by_step: Vec<u64>,
    dir: tempfile::TempDir,
    daemon: Option<Daemon>,
    daemon_wanted: bool,
    incarnation: u32,
    sticky: Option<(usize, &'static str)>,
    last_start: SystemTime,
    pub tally: Tally,
    pub findings: Vec<Finding>,
    /// What happened to each planned kill, by schedule index.
    pub fate: Vec<Option<String>>,
    /// The step being run and the schedule, for messages.
    step: usize,
    /// Each export step's outcome ("written 7", "nothing to send"…).
    pub exports: Vec<String>,
    /// The last sequence of each flow (contingent, sales) the sender's
    /// journal showed after the previous export or trigger step: one
    /// higher at the next export step means the daemon exported meanwhile
    /// (a taken trigger run again at its restart), so that step may find
    /// nothing to send.
    sent_seen: [Option<i64>; 2],
}

impl World {
    pub fn new() -> World {
        let dir = crate::interleavings::model::scratch("stxd-crash-");
        for sub in ["config", "samples", "var"] {
            copy_tree(&template().join(sub), &dir.path().join(sub));
        }
        crate::util::own_console_port(&dir.path().join("config/stxd.toml"));
        World {
            fs: None,
            calls_before: 0,
            power_plan: None,
            calls_by_step: Vec::new(),
            dir,
            daemon: None,
            daemon_wanted: false,
            incarnation: 0,
            sticky: None,
            last_start: SystemTime::now(),
            tally: Tally::default(),
            findings: Vec::new(),
            fate: Vec::new(),
            step: 0,
            exports: Vec::new(),
            sent_seen: [None; 2],
        }
    }

    /// A world on [`LossFs`], holding the same copy of the demo, all of it
    /// on "disk" (durable) to begin with.
    pub fn on_lossfs() -> World {
        let mut world = World::new();
        let tree = Tree::read(world.path()).expect("the trial's folder read in");
        world.fs = Some(
            LossFs::mount(world.path(), tree)
                .unwrap_or_else(|e| panic!("the power-cut trials need FUSE: {e}")),
        );
        world
    }

    /// Durability calls made so far on the world's [`LossFs`].
    pub fn durability_calls(&self) -> u64 {
        self.calls_before + self.fs.as_ref().map_or(0, LossFs::durability_calls)
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Keeps the folder after the run (for a failing trial to be looked at).
    pub fn keep(self) -> PathBuf {
        let mut me = self;
        me.kill_daemon();
        if let Some(fs) = me.fs.take() {
            // What the file system holds now, written over the folder it hid.
            let tree = fs.unmount().expect("unmount the trial's file system");
            for entry in std::fs::read_dir(me.path()).expect("the trial's folder") {
                let path = entry.expect("entry").path();
                let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
            }
            tree.write(me.path())
                .expect("the trial's files written out");
        }
        let dir = std::mem::replace(
            &mut me.dir,
            tempfile::Builder::new()
                .prefix("stxd-crash-void-")
                .tempdir()
                .expect("dir"),
        );
        dir.keep()
    }

    pub fn db(&self, institution: &str) -> PathBuf {
        self.path().join(format!("var/state/{institution}.sqlite"))
    }

    pub fn exchange(&self) -> PathBuf {
        self.path().join("var/exchange").join(LINK)
    }

    /// The receiving side's inbox of a flow.
    pub fn inbox(&self, flow: Flow) -> PathBuf {
        self.exchange().join(match flow {
            Flow::Contingent => "to-distributor",
            Flow::Sales => "to-manager",
        })
    }

    pub fn control(&self) -> PathBuf {
        self.path().join("var/state/control").join(LINK)
    }

    pub fn find(&mut self, class: Class, text: impl Into<String>) {
        let text = format!("step #{}: {}", self.step, text.into());
        self.findings.push(Finding { class, text });
    }

    // ------------------------------------------------------------ commands

    fn failpoint_env(&self, kill: Option<&Kill>) -> Option<String> {
        let mut points = Vec::new();
        if let Some(Kill::Failpoint { name, hit }) = kill {
            points.push(format!("{name}:{hit}"));
        }
        if let Some((_, name)) = self.sticky {
            points.push(name.to_owned());
        }
        (!points.is_empty()).then(|| points.join(","))
    }

    fn base(&self, kill: Option<&Kill>) -> Command {
        let bin = env!("CARGO_BIN_EXE_stxd");
        let mut cmd = match kill {
            Some(Kill::Syscall { call, when }) => {
                let mut c = Command::new(STRACE);
                c.args(["-f", "-o", "/dev/null", "-e"])
                    .arg(format!("trace={call}"))
                    .arg("-e")
                    .arg(format!("inject={call}:signal=KILL:when={when}"))
                    .arg(bin);
                c
            }
            _ => Command::new(bin),
        };
        cmd.current_dir(self.path())
            .env("STXD_CONFIG", "config/stxd.toml")
            .env_remove(stxd::failpoint::ENV)
            .env("NO_COLOR", "1")
            .process_group(0);
        if let Some(points) = self.failpoint_env(kill) {
            cmd.env(stxd::failpoint::ENV, points);
        }
        cmd
    }

    /// Runs `stxd ARGS` to its end (killed as hung past a deadline).
    pub fn command(&mut self, args: &[String], kill: Option<&Kill>) -> Ran {
        let out_path = self.path().join("cmd.out");
        let err_path = self.path().join("cmd.err");
        let out = std::fs::File::create(&out_path).expect("stdout file");
        let err = std::fs::File::create(&err_path).expect("stderr file");
        let mut cmd = self.base(kill);
        cmd.args(args)
            .env("STXD_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        self.last_start = SystemTime::now();
        let mut child = cmd.spawn().expect("spawn stxd");
        let mut cut_down = false;
        // The command holds the output files open: closed now, so that a
        // power cut can unmount the file system they are on.
        drop(cmd);
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break status;
            }
            if self.power_plan.is_some() && self.fs.as_ref().is_some_and(|fs| fs.cut_at().is_some())
            {
                // The power is off: the command dies with the machine.
                signal(-i32::try_from(child.id()).expect("pid"), libc::SIGKILL);
                cut_down = true;
                break child.wait().expect("wait");
            }
            if start.elapsed() > COMMAND_DEADLINE {
                signal(-i32::try_from(child.id()).expect("pid"), libc::SIGKILL);
                let status = child.wait().expect("wait");
                self.find(
                    Class::Stuck,
                    format!("stxd {} hung for {COMMAND_DEADLINE:?}", args.join(" ")),
                );
                break status;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
        let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        Ran {
            status,
            traced: matches!(kill, Some(Kill::Syscall { .. })),
            stdout,
            stderr,
            // A command that ended well after a cut ended before it: every
            // call to the disk fails once the power is off.
            cut: self
                .restore_if_cut()
                .filter(|_| cut_down || !status.success()),
        }
    }

    /// Arms the power cut of schedule entry `k` for the step about to run.
    fn arm_power_cut(&mut self, k: usize, nth: u64, losses: Option<u64>) {
        if let Some(fs) = &self.fs {
            fs.arm(nth, losses.map_or(Losses::All, Losses::Seeded));
            self.power_plan = Some(k);
        }
    }

    /// If the armed power cut fell: every process dies (the daemon too; a
    /// command is killed by [`World::command`], which watches), the file
    /// system is unmounted and mounted again holding what survived (the
    /// machine boots); where the cut fell. Counted for its schedule entry.
    fn restore_if_cut(&mut self) -> Option<String> {
        let at = self.fs.as_ref()?.cut_at()?;
        self.kill_daemon();
        let fs = self.fs.take().expect("the file system");
        self.calls_before += fs.durability_calls();
        let survivors = fs.unmount().expect("unmount after the power cut");
        self.fs =
            Some(LossFs::mount(self.path(), survivors).expect("mount what survived the power cut"));
        self.tally.kills[slot(KillKind::PowerCut)] += 1;
        if let Some(k) = self.power_plan.take() {
            self.fate[k] = Some(format!("power cut at {at} (step #{})", self.step));
        }
        Some(at)
    }

    /// Ends the step's power cut: taken if it fell, else disarmed (not
    /// reached).
    fn end_power_cut(&mut self) {
        self.restore_if_cut();
        if let Some(fs) = &self.fs {
            fs.disarm();
        }
        self.power_plan = None;
    }

    /// Counts a command's death by SIGKILL; true if it was killed.
    fn account(&mut self, ran: &Ran, plan: Option<(usize, &Planned)>) -> bool {
        if !ran.killed() {
            if let Some((k, p)) = plan
                && p.target == Target::Command
                && self.fate[k].is_none()
            {
                self.fate[k] = Some("not reached".to_owned());
            }
            return false;
        }
        let point = ran.failpoint();
        if ran.cut.is_some() {
            // Counted where the world was restored.
            return true;
        }
        let kind = match (&point, plan.map(|(_, p)| &p.kill)) {
            (Some(_), _) => KillKind::Failpoint,
            (None, Some(Kill::Syscall { .. })) => KillKind::Syscall,
            _ => {
                self.find(
                    Class::Other,
                    format!("killed by SIGKILL without a planned kill: {}", ran.brief()),
                );
                return true;
            }
        };
        self.tally.kills[slot(kind)] += 1;
        let what = match &point {
            Some(p) => format!("killed at failpoint {p}"),
            None => "killed at the system call".to_owned(),
        };
        if let (Some(p), Some((k, name))) = (&point, self.sticky)
            && p == name
        {
            self.fate[k] = Some(format!("{what} (step #{})", self.step));
            self.sticky = None;
        } else if let Some((k, _)) = plan {
            self.fate[k] = Some(what);
        }
        true
    }

    // ------------------------------------------------------------- daemon

    fn start_daemon(&mut self, armed: Option<(usize, &Kill)>) {
        self.incarnation += 1;
        self.tally.daemon_starts += 1;
        let log = self
            .path()
            .join(format!("daemon-{:02}.log", self.incarnation));
        let err = std::fs::File::create(&log).expect("daemon log");
        let kill = armed.map(|(_, k)| k);
        let mut cmd = self.base(kill);
        cmd.arg("run")
            .env("STXD_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err);
        let child = cmd.spawn().expect("spawn stxd run");
        self.daemon = Some(Daemon {
            child: Arc::new(Mutex::new(child)),
            log,
            armed: armed.map(|(k, kill)| (k, kill.clone())),
            under_strace: matches!(kill, Some(Kill::Syscall { .. })),
            killed_by_us: Arc::new(AtomicBool::new(false)),
            cancel: Arc::new(AtomicBool::new(false)),
            timer: None,
        });
    }

    /// Notices a daemon that died, and counts its kill.
    fn reap(&mut self) {
        let Some(d) = &self.daemon else { return };
        let status = {
            let mut child = d.child.lock().unwrap_or_else(PoisonError::into_inner);
            child.try_wait().expect("try_wait")
        };
        let Some(status) = status else { return };
        let d = self.daemon.take().expect("daemon");
        d.cancel.store(true, Ordering::SeqCst);
        let log = d.log();
        if d.killed_by_us.load(Ordering::SeqCst) {
            self.tally.kills[slot(KillKind::Random)] += 1;
            if let Some((k, _)) = d.timer {
                self.fate[k] = Some("killed the daemon".to_owned());
            }
        } else if status.signal() == Some(libc::SIGKILL)
            || (d.under_strace && status.code() == Some(128 + libc::SIGKILL))
        {
            let point = failpoint_in(&log);
            let kind = if point.is_some() {
                KillKind::Failpoint
            } else if d.under_strace {
                KillKind::Syscall
            } else {
                self.find(Class::Other, "the daemon died of SIGKILL nobody planned");
                return;
            };
            self.tally.kills[slot(kind)] += 1;
            let what = match &point {
                Some(p) => format!("killed the daemon at failpoint {p} (step #{})", self.step),
                None => format!("killed the daemon at the system call (step #{})", self.step),
            };
            match (&point, self.sticky) {
                (Some(p), Some((k, name))) if p == name => {
                    self.fate[k] = Some(what);
                    self.sticky = None;
                }
                _ => {
                    if let Some((k, _)) = d.armed {
                        self.fate[k] = Some(what);
                    }
                }
            }
        } else if self.daemon_wanted
            && log.contains("cannot start the console")
            && log.contains("Address already in use")
        {
            // While the daemon was down, another process of the test run
            // (a trial or a test binding a free port of the ephemeral
            // range) took its console's port: the environment's doing, not
            // stxd's, which refused to start with that message as it
            // should. The console gets a new port; `keep_daemon` starts
            // the daemon again.
            crate::util::own_console_port(&self.path().join("config/stxd.toml"));
        } else if self.daemon_wanted {
            let tail: String = log
                .lines()
                .rev()
                .take(15)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            self.find(
                Class::Other,
                format!("the daemon exited by itself ({status}):\n{tail}"),
            );
        }
    }

    /// Restarts a daemon that should run and does not (unarmed, but with a
    /// sticky failpoint if one waits).
    fn keep_daemon(&mut self) {
        self.reap();
        if self.daemon_wanted && self.daemon.is_none() {
            self.start_daemon(None);
        }
    }

    /// SIGTERM, then waits for the exit (SIGKILL past the deadline).
    fn stop_daemon(&mut self) {
        // Not before it is up: a signal that arrives before stxd installs
        // its handlers kills it instead of stopping it.
        self.wait_until(WAIT, |w| {
            w.daemon
                .as_ref()
                .is_none_or(|d| d.log().contains("first listing done"))
        });
        self.reap();
        let Some(d) = self.daemon.take() else { return };
        d.cancel.store(true, Ordering::SeqCst);
        if let Some(pid) = d.stxd_pid() {
            signal(pid, libc::SIGTERM);
        }
        let start = Instant::now();
        let status = loop {
            let done = {
                let mut child = d.child.lock().unwrap_or_else(PoisonError::into_inner);
                child.try_wait().expect("try_wait")
            };
            if let Some(status) = done {
                break Some(status);
            }
            if start.elapsed() > Duration::from_secs(30) {
                break None;
            }
            std::thread::sleep(POLL);
        };
        match status {
            Some(s) if s.success() => {}
            Some(s)
                if s.signal() == Some(libc::SIGKILL)
                    || (d.under_strace && s.code() == Some(128 + libc::SIGKILL)) =>
            {
                // Died at an armed point while stopping: counted as a kill.
                self.daemon = Some(d);
                self.reap();
            }
            other => {
                signal(-d.pid(), libc::SIGKILL);
                let mut child = d.child.lock().unwrap_or_else(PoisonError::into_inner);
                let _ = child.wait();
                self.findings.push(Finding {
                    class: Class::Other,
                    text: format!(
                        "step #{}: the daemon did not stop cleanly on SIGTERM ({other:?})",
                        self.step
                    ),
                });
            }
        }
    }

    fn kill_daemon(&mut self) {
        if let Some(d) = self.daemon.take() {
            d.cancel.store(true, Ordering::SeqCst);
            signal(-d.pid(), libc::SIGKILL);
            let mut child = d.child.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = child.wait();
        }
    }

    /// SIGKILL to the daemon `delay` after now, from a timer thread (the
    /// child is locked while it is killed, so never a reaped pid).
    fn kill_daemon_later(&mut self, k: usize, delay: Duration) {
        self.keep_daemon();
        let Some(d) = &mut self.daemon else { return };
        let pid = d.stxd_pid();
        let child = Arc::clone(&d.child);
        let cancel = Arc::clone(&d.cancel);
        let killed = Arc::clone(&d.killed_by_us);
        let handle = std::thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < delay {
                if cancel.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(1).min(delay));
            }
            let mut child = child.lock().unwrap_or_else(PoisonError::into_inner);
            if cancel.load(Ordering::SeqCst) || !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            killed.store(true, Ordering::SeqCst);
            match pid {
                Some(pid) => signal(pid, libc::SIGKILL),
                None => {
                    let _ = child.kill();
                }
            }
        });
        if let Some((_, old)) = d.timer.replace((k, handle)) {
            let _ = old.join();
        }
    }

    /// Waits until `cond` holds, restarting a dead daemon meanwhile; false
    /// (and nothing else) past the deadline.
    fn wait_until(&mut self, deadline: Duration, mut cond: impl FnMut(&World) -> bool) -> bool {
        let start = Instant::now();
        loop {
            self.restore_if_cut();
            self.keep_daemon();
            if cond(self) {
                return true;
            }
            if start.elapsed() > deadline {
                return false;
            }
            std::thread::sleep(POLL);
        }
    }

    // ------------------------------------------------------------ reading

    /// One number from a store (read-only; None if it cannot be read now).
    pub fn number(
        &self,
        institution: &str,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Option<i64> {
        let conn = open_ro(&self.db(institution))?;
        conn.query_row(sql, params, |r| r.get::<_, Option<i64>>(0))
            .ok()
            .map(|v| v.unwrap_or(0))
    }

    fn allotment_version(&self, perf: Perf) -> i64 {
        self.number(
            "OPERA",
            "SELECT max(version) FROM allotment WHERE link = ?1 AND performance = ?2",
            (LINK, perf.manager_id),
        )
        .unwrap_or(-1)
    }

    fn sender(flow: Flow) -> &'static str {
        match flow {
            Flow::Contingent => "OPERA",
            Flow::Sales => "TOURISM",
        }
    }

    fn receiver(flow: Flow) -> &'static str {
        match flow {
            Flow::Contingent => "TOURISM",
            Flow::Sales => "OPERA",
        }
    }

    /// The last sequence of the flow the sender journaled (any state).
    fn sent_up_to(&self, flow: Flow) -> Option<i64> {
        self.number(
            Self::sender(flow),
            "SELECT max(sequence) FROM file_journal WHERE link = ?1 AND kind = ?2 AND direction = 'out'",
            (LINK, flow.kind()),
        )
    }

    /// Whether the sender's last file of the flow is marked published.
    fn last_out_published(&self, flow: Flow) -> bool {
        self.number(
            Self::sender(flow),
            "SELECT state = 'published' FROM file_journal WHERE link = ?1 AND kind = ?2 AND direction = 'out' ORDER BY sequence DESC LIMIT 1",
            (LINK, flow.kind()),
        ) == Some(1)
    }

    /// The last sequence of the flow the receiver applied.
    fn applied_up_to(&self, flow: Flow) -> Option<i64> {
        self.number(
            Self::receiver(flow),
            "SELECT max(sequence) FROM file_journal WHERE link = ?1 AND kind = ?2 AND direction = 'in' AND state IN ('applied', 'ignored')",
            (LINK, flow.kind()),
        )
    }

    /// Manifests of the flow waiting at the root of its inbox.
    fn waiting(&self, flow: Flow) -> usize {
        let infix = format!(".{}.", flow.kind());
        names(&self.inbox(flow))
            .iter()
            .filter(|n| n.ends_with(".stx") && n.contains(&infix))
            .count()
    }

    /// Whatever the sender has written of the flow is applied by the
    /// receiver and out of its inbox.
    fn caught_up(&self, flow: Flow) -> bool {
        if self.waiting(flow) > 0 {
            return false;
        }
        match (self.sent_up_to(flow), self.applied_up_to(flow)) {
            (Some(s), Some(a)) => a >= s,
            _ => false,
        }
    }

    /// The export a trigger asked for is done: nothing left to send.
    fn nothing_to_send(&self, flow: Flow) -> bool {
        match flow {
            Flow::Contingent => self.number(
                "OPERA",
                "SELECT count(*) FROM allotment WHERE link = ?1 AND exported < version",
                [LINK],
            ) == Some(0),
            Flow::Sales => {
                self.number(
                    "TOURISM",
                    "SELECT count(*) FROM sale_line WHERE link = ?1 AND exported_in IS NULL",
                    [LINK],
                ) == Some(0)
                    && self.number(
                        "TOURISM",
                        "SELECT count(*) FROM contingent_snapshot WHERE link = ?1 AND (ack_sent IS NULL OR ack_sent < version)",
                        [LINK],
                    ) == Some(0)
            }
        }
    }

    fn triggers_left(&self) -> Vec<String> {
        names(&self.control())
            .into_iter()
            .filter(|n| !n.starts_with('.'))
            .collect()
    }

    /// Waits until the flow is applied on the other side; a finding if not.
    fn await_applied(&mut self, flow: Flow) -> bool {
        let mut gone_since: Option<Instant> = None;
        let ok = self.wait_until(WAIT, |w| {
            if w.caught_up(flow) {
                return true;
            }
            // Inbox empty, the sender's last file published but not applied:
            // it went elsewhere (error/); give up soon. (A file still
            // prepared waits for the daemon's next listing to place it.)
            if w.waiting(flow) == 0 && w.daemon.is_some() && w.last_out_published(flow) {
                let since = *gone_since.get_or_insert_with(Instant::now);
                return since.elapsed() > WAIT_GONE;
            }
            gone_since = None;
            false
        });
        if ok && self.caught_up(flow) {
            return true;
        }
        let (s, a) = (self.sent_up_to(flow), self.applied_up_to(flow));
        self.find(
            Class::Stuck,
            format!(
                "{} files not applied: the sender wrote up to {s:?}, the receiver applied up to {a:?}, {} waiting in the inbox",
                flow.kind(),
                self.waiting(flow)
            ),
        );
        false
    }

    // -------------------------------------------------------------- steps

    /// Plays a workload with a kill schedule, then settles: a daemon that
    /// ran is restarted if it died since its last start, left to recover
    /// and apply what waits, and stopped.
    pub fn play(&mut self, workload: &Workload, schedule: &[Planned]) {
        self.fate = vec![None; schedule.len()];
        for p in schedule {
            self.tally.planned[slot(p.kill.kind())] += 1;
        }
        for (i, step) in workload.steps.iter().enumerate() {
            self.step = i;
            let plans: Vec<(usize, &Planned)> = schedule
                .iter()
                .enumerate()
                .filter(|(_, p)| p.step == i)
                .collect();
            for &(k, p) in &plans {
                if p.sticky
                    && let Kill::Failpoint { name, .. } = p.kill
                {
                    self.sticky = Some((k, name));
                }
            }
            // A daemon armed for this step starts before it.
            let armed = plans.iter().copied().find(|(_, p)| {
                !p.sticky && p.target == Target::Daemon && p.kill.kind() != KillKind::Random
            });
            if let Some((k, p)) = armed {
                if !matches!(step, Step::StartDaemon) {
                    self.stop_daemon();
                }
                self.daemon_wanted = true;
                self.start_daemon(Some((k, &p.kill)));
            } else if matches!(step, Step::StartDaemon) {
                self.daemon_wanted = true;
                self.keep_daemon();
            }
            let on_command = plans
                .iter()
                .copied()
                .find(|(_, p)| !p.sticky && p.target == Target::Command);
            let started = Instant::now();
            let calls = self.durability_calls();
            if let Some((k, p)) = on_command
                && let Kill::PowerCut { nth, losses } = p.kill
            {
                self.arm_power_cut(k, nth, losses);
            }
            self.exec(step, on_command);
            self.end_power_cut();
            self.calls_by_step.push(self.durability_calls() - calls);
            if verbose() {
                eprintln!(
                    "  #{i:3} {step}: {} ms, {} durability calls",
                    started.elapsed().as_millis(),
                    self.durability_calls() - calls
                );
            }
            for &(k, p) in &plans {
                if let (Target::Daemon, Kill::Random { delay_ms }) = (p.target, &p.kill) {
                    self.kill_daemon_later(k, Duration::from_millis(*delay_ms));
                }
            }
        }
        let started = Instant::now();
        self.settle();
        if verbose() {
            eprintln!("  settle: {} ms", started.elapsed().as_millis());
        }
        for f in &mut self.fate {
            f.get_or_insert_with(|| "not reached".to_owned());
        }
    }

    fn settle(&mut self) {
        self.step = usize::MAX;
        if let Some(d) = &mut self.daemon {
            d.cancel.store(true, Ordering::SeqCst);
            if let Some((_, t)) = d.timer.take() {
                let _ = t.join();
            }
        }
        if !self.daemon_wanted {
            return;
        }
        // A daemon that has been through every crash finishes what waits:
        // the current one if it is still up, else a fresh one, ready once it
        // has recovered.
        self.keep_daemon();
        let ready = self.wait_until(WAIT, |w| {
            w.daemon
                .as_ref()
                .is_some_and(|d| d.log().contains("first listing done"))
        });
        if !ready {
            self.find(Class::Stuck, "the daemon never said ready after a restart");
        }
        for flow in [Flow::Contingent, Flow::Sales] {
            self.await_applied(flow);
        }
        if !self.wait_until(WAIT, |w| w.triggers_left().is_empty()) {
            let left = self.triggers_left();
            self.find(Class::Stuck, format!("trigger files never taken: {left:?}"));
        }
        // The daemon told the alert command of every refused file (again
        // after a restart: the sweep after each listing raises what is in
        // error/, so a kill between refusing and alerting loses nothing).
        for file in self.unalerted_refusals() {
            self.find(
                Class::Other,
                format!("{file} is in error/ but no file-refused alert was delivered"),
            );
        }
        self.daemon_wanted = false;
        self.stop_daemon();
        self.reap();
    }

    /// How many times a killed command is run again before giving up.
    const ATTEMPTS: usize = 5;

    /// Runs a command until it is not killed (the first run with the
    /// planned kill, the others without, but with a sticky point armed);
    /// `done` says, after a kill, whether the killed run already did the
    /// work (then it is not run again). The last run, unless `done` ended
    /// it; `None` if the plan says not to retry.
    fn until_alive(
        &mut self,
        args: &[String],
        plan: Option<(usize, &Planned)>,
        done: &dyn Fn(&World) -> bool,
    ) -> Option<Ran> {
        let mut kill = plan.map(|(_, p)| p.kill.clone());
        let mut plan = plan;
        for _ in 0..Self::ATTEMPTS {
            let ran = self.command(args, kill.as_ref());
            if !self.account(&ran, plan) {
                return Some(ran);
            }
            if done(self) {
                return None;
            }
            match plan.map_or(Retry::Now, |(_, p)| p.retry) {
                Retry::Never => return None,
                Retry::NextSecond => self.next_second(),
                Retry::Now => {}
            }
            kill = None;
            plan = None;
        }
        self.find(
            Class::Other,
            format!(
                "stxd {} killed {} times in a row",
                args.join(" "),
                Self::ATTEMPTS
            ),
        );
        None
    }

    fn exec(&mut self, step: &Step, plan: Option<(usize, &Planned)>) {
        let args = step.args();
        match step {
            Step::Allocate { perf, .. } | Step::Release { perf, .. } => {
                let perf = *perf;
                let before = self.allotment_version(perf);
                self.business(step, &args, plan, &move |w: &World| {
                    w.allotment_version(perf) > before
                });
            }
            Step::Sell { line, .. } => {
                let line = *line;
                self.business(step, &args, plan, &move |w: &World| {
                    w.number(
                        "TOURISM",
                        "SELECT count(*) FROM sale_line WHERE id = ?1 AND operation = 'SALE'",
                        [line],
                    ) == Some(1)
                });
            }
            Step::Refund { of, line } => {
                let (of, line) = (*of, *line);
                self.business(step, &args, plan, &move |w: &World| {
                    w.number(
                        "TOURISM",
                        "SELECT count(*) FROM sale_line WHERE id = ?1 AND refund_of = ?2",
                        [line, of],
                    ) == Some(1)
                });
            }
            Step::Export { flow, flush } => {
                let kills = self.tally.kills.iter().sum::<u64>();
                match self.until_alive(&args, plan, &|_| false) {
                    Some(ran) => {
                        let killed = self.tally.kills.iter().sum::<u64>() > kills;
                        // Looked at after the command: the running daemon may
                        // have sent the lines meanwhile (a taken trigger it
                        // runs again after a restart races this one-shot for
                        // the store, and either may win). A one-shot that
                        // found nothing to send wrote nothing, so a higher
                        // sequence is the daemon's.
                        let by_daemon = self.sent_up_to(*flow) > self.sent_seen[flow_index(*flow)];
                        self.judge_export(*flow, *flush || killed || by_daemon, &ran);
                    }
                    None => self
                        .exports
                        .push(format!("{} killed, not retried", flow.kind())),
                }
                self.sent_seen[flow_index(*flow)] = self.sent_up_to(*flow);
            }
            Step::Trigger(flow) => {
                if let Some(ran) = self.until_alive(&args, plan, &|_| false) {
                    self.expect_ok(step, &ran);
                }
                let flow = *flow;
                let done = self.wait_until(WAIT, |w| {
                    w.triggers_left().is_empty() && w.nothing_to_send(flow) && w.caught_up(flow)
                });
                if !done {
                    let left = self.triggers_left();
                    self.find(
                        Class::Stuck,
                        format!(
                            "triggered export-{} not done within {WAIT:?} (triggers left: {left:?})",
                            flow.word()
                        ),
                    );
                    // Go on as ops would: export by hand.
                    if left.is_empty() {
                        let ran = self.command(&super::workload::export(flow).args(), None);
                        self.judge_export(flow, true, &ran);
                    }
                    self.await_applied(flow);
                }
                self.sent_seen[flow_index(flow)] = self.sent_up_to(flow);
            }
            Step::Process => {
                // 1: a file rejected (it is in error/, which the checks see).
                if let Some(ran) = self.until_alive(&args, plan, &|_| false)
                    && !matches!(ran.code(), Some(0 | 1))
                {
                    self.find(Class::Other, format!("process failed: {}", ran.brief()));
                }
            }
            Step::AwaitApplied(flow) => {
                self.await_applied(*flow);
            }
            Step::StartDaemon => {}
            Step::DropTampered => self.drop_tampered(),
            Step::Retry => {
                // 1: nothing to retry (the daemon holds the file being
                // refused again, after a retry killed once it moved it).
                if let Some(ran) = self.until_alive(&args, plan, &|_| false)
                    && !matches!(ran.code(), Some(0 | 1))
                {
                    self.find(Class::Other, format!("retry failed: {}", ran.brief()));
                }
            }
            Step::AwaitRefused => {
                if !self.wait_until(WAIT, World::tampered_refused) {
                    let inbox = names(&self.inbox(Flow::Sales));
                    let error = names(&self.inbox(Flow::Sales).join("error"));
                    self.find(
                        Class::Stuck,
                        format!(
                            "the tampered file is not refused within {WAIT:?} (inbox {inbox:?}, error/ {error:?})"
                        ),
                    );
                }
            }
        }
    }

    /// The tampered SALES file (see [`World::drop_tampered`]) is in the
    /// manager's `error/`, whole and with its `.reason`, and no longer in
    /// the inbox.
    fn tampered_refused(&self) -> bool {
        let stem = format!("{LINK}.SALES.00000001.");
        let inbox = self.inbox(Flow::Sales);
        !names(&inbox).iter().any(|n| n.starts_with(&stem))
            && names(&inbox.join("error"))
                .iter()
                .any(|n| n.starts_with(&stem) && n.ends_with(".reason"))
            // Only the tampered pair's own problems (a manifest in error/
            // without its payload…): a killed export's staged copies may
            // wait in the same folder for the next export of the kind,
            // which the end of the trial checks.
            && !super::checks::folder_problems(&self.exchange())
                .iter()
                .any(|p| p.contains(&stem))
    }

    /// The files in an `error/` folder of the link that the alert command
    /// has not been told of (an `open` file-refused notification naming
    /// the manifest), once the running daemon had `WAIT` to deliver.
    fn unalerted_refusals(&mut self) -> Vec<String> {
        let refused = |w: &World| {
            let mut found = Vec::new();
            for side in ["to-distributor", "to-manager"] {
                let dir = w.exchange().join(side).join("error");
                for n in names(&dir) {
                    // `<manifest>[.<slot>].reason`: the manifest's own name.
                    let Some(head) = n.strip_suffix(".reason") else {
                        continue;
                    };
                    let name = match head.rsplit_once('.') {
                        Some((manifest, slot)) if slot.bytes().all(|b| b.is_ascii_digit()) => {
                            manifest
                        }
                        _ => head,
                    };
                    found.push(name.to_owned());
                }
            }
            found
        };
        let missing = |w: &World| -> Vec<String> {
            let told = w.alerts_opened();
            refused(w)
                .into_iter()
                .filter(|f| !told.contains(f))
                .collect()
        };
        let _ = self.wait_until(WAIT, |w| missing(w).is_empty());
        missing(self)
    }

    /// The files named by the `open` file-refused notifications the alert
    /// command wrote (one JSON object per line in `alerts.jsonl`; a line
    /// cut by a kill is skipped).
    fn alerts_opened(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.path().join(ALERTS)).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["event"] == "file-refused" && v["state"] == "open")
            .filter_map(|v| v["file"].as_str().map(str::to_owned))
            .collect()
    }

    /// A business command: run; if killed, look whether it committed before
    /// running it again; it must end done.
    fn business(
        &mut self,
        step: &Step,
        args: &[String],
        plan: Option<(usize, &Planned)>,
        committed: &dyn Fn(&World) -> bool,
    ) {
        if let Some(ran) = self.until_alive(args, plan, committed) {
            self.expect_ok(step, &ran);
        }
        if !committed(self) {
            self.find(Class::Other, format!("{step}: not done after it ran"));
        }
    }

    fn expect_ok(&mut self, step: &Step, ran: &Ran) {
        if ran.code() != Some(0) {
            self.find(Class::Other, format!("{step} failed: {}", ran.brief()));
        }
    }

    fn judge_export(&mut self, flow: Flow, may_be_empty: bool, ran: &Ran) {
        let doc = ran.json();
        match (ran.code(), doc["code"].as_str()) {
            (Some(0), _) => {
                let seq = doc["sequence"].as_u64().unwrap_or(0);
                self.exports.push(format!("{} {seq}", flow.kind()));
            }
            (Some(1), Some("nothing-to-send")) if may_be_empty => {
                self.exports.push(format!("{} nothing", flow.kind()));
            }
            _ => {
                self.exports.push(format!("{} refused", flow.kind()));
                self.find(
                    Class::Other,
                    format!("export {} refused: {}", flow.word(), ran.brief()),
                );
            }
        }
    }

    fn next_second(&mut self) {
        let second = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        };
        let start = second(self.last_start);
        let ok = self.wait_until(Duration::from_secs(3), |_| {
            second(SystemTime::now()) > start
        });
        assert!(ok, "the wall clock did not move on");
    }

    /// A copy of the manager's first applied SALES pair, one payload byte
    /// changed, dropped in its inbox as an operator re-dropping a damaged
    /// file would.
    fn drop_tampered(&mut self) {
        let inbox = self.inbox(Flow::Sales);
        let done = inbox.join("done");
        let stem = format!("{LINK}.SALES.00000001");
        let (payload, manifest) = match (
            std::fs::read(done.join(format!("{stem}.csv"))),
            std::fs::read(done.join(format!("{stem}.stx"))),
        ) {
            (Ok(p), Ok(m)) => (p, m),
            _ => {
                self.find(
                    Class::Stuck,
                    format!("{stem} is not in done/: no copy of it to tamper with"),
                );
                return;
            }
        };
        let mut payload = payload;
        let i = payload.len() / 2;
        payload[i] ^= 0x01;
        for (ext, bytes) in [("csv", &payload), ("stx", &manifest)] {
            let path = inbox.join(format!("{stem}.{ext}"));
            if let Err(e) = write_new(&path, bytes) {
                self.find(
                    Class::Stuck,
                    format!("cannot drop the tampered {}: {e}", path.display()),
                );
                return;
            }
        }
    }

    /// A panic-free summary of the daemon logs (for a failing trial).
    pub fn daemon_logs_tail(&self, lines: usize) -> String {
        let mut out = String::new();
        for n in 1..=self.incarnation {
            let path = self.path().join(format!("daemon-{n:02}.log"));
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(lines).collect();
            out.push_str(&format!("--- daemon #{n}\n"));
            for l in tail.into_iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.kill_daemon();
    }
}

/// `STXD_CRASH_VERBOSE=1`: every step and its duration on stderr.
fn verbose() -> bool {
    static VERBOSE: OnceLock<bool> = OnceLock::new();
    *VERBOSE.get_or_init(|| std::env::var_os("STXD_CRASH_VERBOSE").is_some())
}

fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    f.write_all(bytes)
}

/// A read-only connection (the harness never writes a store).
pub fn open_ro(path: &Path) -> Option<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .ok()?;
    conn.busy_timeout(Duration::from_secs(10)).ok()?;
    Some(conn)
}

/// The names in a folder (none if it does not exist).
pub fn names(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            e.file_type()
                .ok()?
                .is_file()
                .then(|| e.file_name().to_string_lossy().into_owned())
        })
        .collect();
    names.sort();
    names
}

/// The index of a flow in per-flow arrays.
fn flow_index(flow: Flow) -> usize {
    match flow {
        Flow::Contingent => 0,
        Flow::Sales => 1,
    }
}
