//! The crash harness's workload: a list of steps both institutions play on
//! the demo link, generated from a seed (so a crash-free reference run of
//! the same list gives the expected final stores), and the small fixed
//! workloads of the deterministic cases.
//!
//! The generator keeps a model of what each side holds (seats allotted,
//! sold, refunded; the next sale line id) so that every business step of a
//! crash-free run succeeds: a sale only ever targets a seat or a zone place
//! of the contingent the distributor has applied, a release only seats and
//! places nobody bought, an allocation only seats never allotted before.
//! Steps that cross from one side to the other wait (one-shot `process`, or
//! the daemon applying and the harness waiting on the stores), so the order
//! of business events is the same in every run of a seed.

use std::collections::BTreeSet;
use std::fmt;

/// A tiny xorshift64* generator: deterministic, seedable, no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        // splitmix64 of the seed, so that nearby seeds start far apart and
        // zero is a valid seed.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

/// The demo link.
pub const LINK: &str = "opera-tourism";

/// A performance of the demo: the manager's id and the distributor's code
/// (the catalogue import maps 1701 → TRAV0115, 1702 → TRAV0117).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Perf {
    pub manager_id: u32,
    pub local_code: &'static str,
}

pub const PERFS: [Perf; 2] = [
    Perf {
        manager_id: 1701,
        local_code: "TRAV0115",
    },
    Perf {
        manager_id: 1702,
        local_code: "TRAV0117",
    },
];

/// The numbered block the workloads allot, and its standing zone.
const BLOCK: &str = "PARTERRE";
const ZONE: &str = "FOSSE";
/// Rows and seats per row of PARTERRE the workloads use.
const ROWS: [&str; 8] = ["A", "B", "C", "D", "E", "F", "G", "H"];
const SEATS_PER_ROW: u32 = 20;

/// A place of a performance: a numbered seat (row, number) of PARTERRE or a
/// place of the standing zone FOSSE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Place {
    Seat(&'static str, u32),
    Zone,
}

/// What a contingent change covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Places {
    /// Seats of one row, `from..=to`.
    Range(&'static str, u32, u32),
    /// Single seats (any rows).
    Seats(Vec<(&'static str, u32)>),
    /// Places of the standing zone.
    Zone(u32),
}

/// Which kind of file an export or a wait is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// CONTINGENT files, manager → distributor.
    Contingent,
    /// SALES files, distributor → manager.
    Sales,
}

impl Flow {
    pub fn kind(self) -> &'static str {
        match self {
            Flow::Contingent => "CONTINGENT",
            Flow::Sales => "SALES",
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Flow::Contingent => "contingent",
            Flow::Sales => "sales",
        }
    }
}

/// One step of a workload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Manager: `stxd contingent allocate`.
    Allocate { perf: Perf, places: Places },
    /// Manager: `stxd contingent release` (a shrink).
    Release { perf: Perf, places: Places },
    /// `stxd export contingent|sales` as a one-shot command. `flush`: the
    /// file may legitimately have nothing to send.
    Export { flow: Flow, flush: bool },
    /// `stxd trigger export-…`: the running daemon writes the file; the
    /// harness waits until it is written and applied on the other side.
    Trigger(Flow),
    /// `stxd process`, one-shot (no daemon running).
    Process,
    /// With the daemon running: wait until the receiving side applied
    /// every file of the flow the sender wrote.
    AwaitApplied(Flow),
    /// Distributor: `stxd sale sell`; `line` is the sale line id it gets.
    Sell {
        perf: Perf,
        place: Place,
        tariff: &'static str,
        audience: &'static str,
        line: u64,
    },
    /// Distributor: `stxd sale refund OF`; `line` is the refund's line id.
    Refund { of: u64, line: u64 },
    /// Start `stxd run` (applies files as they arrive from now on).
    StartDaemon,
    /// A copy of an applied SALES file with one byte changed, dropped in the
    /// manager's inbox: it must be rejected into `error/` with its reason.
    DropTampered,
    /// `stxd retry --link`: the refused files of the link put back into
    /// their inbox (the tampered file is refused again).
    Retry,
    /// With the daemon running: wait until the tampered file is in the
    /// manager's `error/` with its `.reason`, and nowhere else.
    AwaitRefused,
}

impl Step {
    /// The `stxd` arguments of a one-shot step.
    pub fn args(&self) -> Vec<String> {
        let s = |v: &[&str]| v.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
        match self {
            Step::Allocate { perf, places } | Step::Release { perf, places } => {
                let verb = if matches!(self, Step::Allocate { .. }) {
                    "allocate"
                } else {
                    "release"
                };
                let mut args = s(&["--json", "contingent", verb, "--link", LINK]);
                args.push("--performance".into());
                args.push(perf.manager_id.to_string());
                match places {
                    Places::Range(row, from, to) => {
                        args.push("--seats".into());
                        args.push(format!("{BLOCK}:{row}:{from}-{to}"));
                    }
                    Places::Seats(seats) => {
                        for (row, n) in seats {
                            args.push("--seats".into());
                            args.push(format!("{BLOCK}:{row}:{n}"));
                        }
                    }
                    Places::Zone(q) => {
                        args.extend(s(&["--zone", ZONE, "--quantity"]));
                        args.push(q.to_string());
                    }
                }
                args
            }
            Step::Export { flow, .. } => s(&["--json", "export", flow.word(), "--link", LINK]),
            Step::Trigger(flow) => {
                let job = format!("export-{}", flow.word());
                // The harness waits for the job itself (and kills the daemon).
                vec![
                    "trigger".into(),
                    job,
                    "--link".into(),
                    LINK.into(),
                    "--no-wait".into(),
                ]
            }
            Step::Process => s(&["--json", "process"]),
            Step::Sell {
                perf,
                place,
                tariff,
                audience,
                ..
            } => {
                let mut args = s(&["--json", "sale", "sell", "--performance", perf.local_code]);
                match place {
                    Place::Seat(row, n) => {
                        args.push("--seat".into());
                        args.push(format!("{BLOCK}:{row}:{n}"));
                    }
                    Place::Zone => args.extend(s(&["--zone", ZONE])),
                }
                args.extend(s(&["--tariff", tariff, "--audience", audience]));
                args
            }
            Step::Refund { of, .. } => vec![
                "--json".into(),
                "sale".into(),
                "refund".into(),
                of.to_string(),
            ],
            Step::Retry => s(&["--json", "retry", "--link", LINK]),
            Step::StartDaemon | Step::AwaitApplied(_) | Step::DropTampered | Step::AwaitRefused => {
                Vec::new()
            }
        }
    }

    /// Whether a step runs a one-shot `stxd` command a kill can target.
    pub fn is_command(&self) -> bool {
        !matches!(
            self,
            Step::StartDaemon | Step::AwaitApplied(_) | Step::DropTampered | Step::AwaitRefused
        )
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let places = |p: &Places| match p {
            Places::Range(r, a, b) => format!("{r}:{a}-{b}"),
            Places::Seats(s) => s
                .iter()
                .map(|(r, n)| format!("{r}:{n}"))
                .collect::<Vec<_>>()
                .join(","),
            Places::Zone(q) => format!("{ZONE}x{q}"),
        };
        match self {
            Step::Allocate { perf, places: p } => {
                write!(f, "allocate {} {}", perf.manager_id, places(p))
            }
            Step::Release { perf, places: p } => {
                write!(f, "release {} {}", perf.manager_id, places(p))
            }
            Step::Export { flow, flush } => write!(
                f,
                "export {}{}",
                flow.word(),
                if *flush { " (flush)" } else { "" }
            ),
            Step::Trigger(flow) => write!(f, "trigger export-{}", flow.word()),
            Step::Process => write!(f, "process"),
            Step::AwaitApplied(flow) => write!(f, "await {} applied", flow.word()),
            Step::Sell {
                perf, place, line, ..
            } => match place {
                Place::Seat(r, n) => write!(f, "sell {} {r}{n} (line {line})", perf.local_code),
                Place::Zone => write!(f, "sell {} {ZONE} (line {line})", perf.local_code),
            },
            Step::Refund { of, line } => write!(f, "refund {of} (line {line})"),
            Step::StartDaemon => write!(f, "start daemon"),
            Step::DropTampered => write!(f, "drop a tampered sales file"),
            Step::Retry => write!(f, "retry the refused files"),
            Step::AwaitRefused => write!(f, "await the tampered file in error/"),
        }
    }
}

/// What the generator knows of one performance.
#[derive(Debug, Default, Clone)]
struct Held {
    /// Seats allotted to the link (and applied by the distributor).
    allotted: BTreeSet<(&'static str, u32)>,
    /// Seats never allotted yet, in order.
    next_row: usize,
    next_seat: u32,
    zone: u32,
    sold: BTreeSet<(&'static str, u32)>,
    zone_sold: u32,
}

impl Held {
    fn fresh_range(&mut self, n: u32) -> Option<Places> {
        loop {
            let row = *ROWS.get(self.next_row)?;
            let from = self.next_seat + 1;
            if from + n - 1 <= SEATS_PER_ROW {
                self.next_seat += n;
                for k in from..from + n {
                    self.allotted.insert((row, k));
                }
                return Some(Places::Range(row, from, from + n - 1));
            }
            self.next_row += 1;
            self.next_seat = 0;
        }
    }

    fn free_seats(&self) -> Vec<(&'static str, u32)> {
        self.allotted.difference(&self.sold).copied().collect()
    }

    fn free_zone(&self) -> u32 {
        self.zone - self.zone_sold
    }
}

/// A sale line as the generator tracks it.
#[derive(Debug, Clone)]
struct Line {
    id: u64,
    perf: usize,
    place: Place,
    active: bool,
}

/// The generator's model of both sides.
struct Model {
    rng: Rng,
    held: [Held; 2],
    lines: Vec<Line>,
    next_line: u64,
    steps: Vec<Step>,
    /// Refunds made so far.
    refunds: u32,
}

impl Model {
    fn new(seed: u64) -> Model {
        Model {
            rng: Rng::new(seed),
            held: [Held::default(), Held::default()],
            lines: Vec::new(),
            next_line: 1,
            steps: Vec::new(),
            refunds: 0,
        }
    }

    fn allocate_seats(&mut self, p: usize, n: u32) -> bool {
        match self.held[p].fresh_range(n) {
            Some(places) => {
                self.steps.push(Step::Allocate {
                    perf: PERFS[p],
                    places,
                });
                true
            }
            None => false,
        }
    }

    fn allocate_zone(&mut self, p: usize, q: u32) {
        self.held[p].zone += q;
        self.steps.push(Step::Allocate {
            perf: PERFS[p],
            places: Places::Zone(q),
        });
    }

    /// A shrink: unsold seats (or unsold zone places) taken back.
    fn release(&mut self, p: usize, zone: bool) -> bool {
        let h = &mut self.held[p];
        if zone && h.free_zone() > 0 {
            let q = h.free_zone().min(2);
            h.zone -= q;
            self.steps.push(Step::Release {
                perf: PERFS[p],
                places: Places::Zone(q),
            });
            return true;
        }
        let free = h.free_seats();
        if free.len() < 2 {
            return false;
        }
        let k = if free.len() > 3 && self.rng.chance(50) {
            2
        } else {
            1
        };
        let mut taken = Vec::new();
        for _ in 0..k {
            let free = h.free_seats();
            let seat = free[(self.rng.next() % free.len() as u64) as usize];
            h.allotted.remove(&seat);
            taken.push(seat);
        }
        taken.sort_unstable();
        self.steps.push(Step::Release {
            perf: PERFS[p],
            places: Places::Seats(taken),
        });
        true
    }

    fn can_sell(&self) -> bool {
        self.held
            .iter()
            .any(|h| !h.free_seats().is_empty() || h.free_zone() > 0)
    }

    fn sell(&mut self) -> bool {
        let open: Vec<usize> = (0..2)
            .filter(|&p| !self.held[p].free_seats().is_empty() || self.held[p].free_zone() > 0)
            .collect();
        if open.is_empty() {
            return false;
        }
        let p = *self.rng.pick(&open);
        let free = self.held[p].free_seats();
        let zone = self.held[p].free_zone() > 0 && (free.is_empty() || self.rng.chance(30));
        let (place, tariff) = if zone {
            self.held[p].zone_sold += 1;
            // The standing zone's category has a full price only.
            (Place::Zone, "NORMAL")
        } else {
            let seat = *self.rng.pick(&free);
            self.held[p].sold.insert(seat);
            let tariff = *self.rng.pick(&["NORMAL", "REDUIT"]);
            (Place::Seat(seat.0, seat.1), tariff)
        };
        let audience = *self.rng.pick(&["ADULT", "CHILD"]);
        let line = self.next_line;
        self.next_line += 1;
        self.lines.push(Line {
            id: line,
            perf: p,
            place,
            active: true,
        });
        self.steps.push(Step::Sell {
            perf: PERFS[p],
            place,
            tariff,
            audience,
            line,
        });
        true
    }

    fn refund(&mut self) -> bool {
        let active: Vec<usize> = (0..self.lines.len())
            .filter(|&i| self.lines[i].active)
            .collect();
        if active.is_empty() {
            return false;
        }
        let i = *self.rng.pick(&active);
        let l = self.lines[i].clone();
        self.lines[i].active = false;
        match l.place {
            Place::Seat(r, n) => {
                self.held[l.perf].sold.remove(&(r, n));
            }
            Place::Zone => self.held[l.perf].zone_sold -= 1,
        }
        let line = self.next_line;
        self.next_line += 1;
        self.steps.push(Step::Refund { of: l.id, line });
        true
    }
}

/// A generated workload.
#[derive(Debug, Clone)]
pub struct Workload {
    pub seed: u64,
    pub steps: Vec<Step>,
}

impl Workload {
    pub fn count(&self, f: impl Fn(&Step) -> bool) -> usize {
        self.steps.iter().filter(|s| f(s)).count()
    }
}

/// Rounds played by one-shot commands before the daemon starts.
const ONE_SHOT_ROUNDS: usize = 9;
/// Rounds played while the daemon runs.
const DAEMON_ROUNDS: usize = 13;
/// Rounds in which the manager changes a contingent whatever the dice say
/// (so every workload has at least this many contingent files), and the
/// rounds of its forced shrinks (seats, then zone places).
const CONTINGENT_ROUNDS: [usize; 7] = [0, 1, 3, 6, 9, 13, 17];
const SEAT_SHRINK_ROUND: usize = 6;
const ZONE_SHRINK_ROUND: usize = 13;

/// The workload of `seed`: 22 rounds (9 with one-shot commands, then 13
/// with the daemon applying files as they arrive, half of the exports by
/// trigger, half one-shot beside it), then a final sales export that
/// acknowledges the last contingent versions.
///
/// Each round: maybe a contingent change (allocations, a shrink) and its
/// export, applied by the distributor; one to three sales and maybe a
/// refund; the sales export, applied by the manager. So ≥ 7 contingent files
/// and ≥ 22 sales files, each carrying new lines and the acknowledgements of
/// the contingent versions applied since the previous one. In one daemon
/// round, a damaged file is dropped by hand, refused, retried and refused
/// again.
pub fn random(seed: u64) -> Workload {
    let mut m = Model::new(seed);
    let tamper_round = ONE_SHOT_ROUNDS + 1 + m.rng.range(0, DAEMON_ROUNDS as u64 - 2) as usize;
    for round in 0..ONE_SHOT_ROUNDS + DAEMON_ROUNDS {
        let daemon = round >= ONE_SHOT_ROUNDS;
        if round == ONE_SHOT_ROUNDS {
            m.steps.push(Step::StartDaemon);
        }
        let forced = CONTINGENT_ROUNDS.contains(&round);
        if forced || !m.can_sell() || m.rng.chance(20) {
            let mut changed = false;
            if round == 0 {
                let n = m.rng.range(4, 6) as u32;
                changed |= m.allocate_seats(0, n);
                let q = m.rng.range(2, 4) as u32;
                m.allocate_zone(0, q);
            } else if round == 1 {
                let n = m.rng.range(3, 5) as u32;
                changed |= m.allocate_seats(1, n);
            } else if round == SEAT_SHRINK_ROUND || round == ZONE_SHRINK_ROUND {
                // A shrink, whatever was sold: fresh seats first if too few
                // are free, taken back in the same contingent version.
                let p = m.rng.range(0, 1) as usize;
                if !(round == ZONE_SHRINK_ROUND && m.release(p, true)) {
                    if m.held[p].free_seats().len() < 2 {
                        m.allocate_seats(p, 3);
                    }
                    let shrunk = m.release(p, false);
                    assert!(shrunk, "workload {seed:#x}: no shrink in round {round}");
                }
                changed = true;
            } else {
                let p = m.rng.range(0, 1) as usize;
                if m.rng.chance(25) && m.held[p].zone < 12 {
                    let q = m.rng.range(1, 3) as u32;
                    m.allocate_zone(p, q);
                    changed = true;
                } else if m.rng.chance(20) {
                    changed |= m.release(p, false);
                }
                if !changed || !m.can_sell() {
                    let n = m.rng.range(2, 5) as u32;
                    changed |= m.allocate_seats(p, n) || m.allocate_seats(1 - p, n);
                }
            }
            if round == 0 {
                changed = true;
            }
            if !m.can_sell() {
                let n = m.rng.range(2, 5) as u32;
                changed |= m.allocate_seats(0, n) || m.allocate_seats(1, n);
            }
            if changed {
                exchange(&mut m, Flow::Contingent, daemon);
            }
        }
        let sells = m.rng.range(1, 3);
        let mut sold = 0;
        for _ in 0..sells {
            if m.sell() {
                sold += 1;
            }
        }
        // Maybe a refund; the last round refunds if none did yet, so that
        // every workload has one (a 30% chance over 22 rounds misses now
        // and then: workload 0x10000291 had none).
        let last = round + 1 == ONE_SHOT_ROUNDS + DAEMON_ROUNDS;
        let refunded = (m.rng.chance(30) || (last && m.refunds == 0)) && m.refund();
        m.refunds += u32::from(refunded);
        assert!(
            sold + u64::from(refunded) > 0,
            "workload {seed:#x}: round {round} has nothing to send"
        );
        exchange(&mut m, Flow::Sales, daemon);
        if round == tamper_round {
            refuse_and_retry(&mut m.steps);
        }
    }
    // The acknowledgement of the last contingent versions (nothing to send
    // when the last sales file carried it already).
    m.steps.push(Step::Export {
        flow: Flow::Sales,
        flush: true,
    });
    m.steps.push(Step::AwaitApplied(Flow::Sales));
    Workload {
        seed,
        steps: m.steps,
    }
}

/// An export and its application on the other side: one-shot export then
/// `process`; with the daemon, a trigger or a one-shot export beside it,
/// then the wait for the daemon to apply the file.
fn exchange(m: &mut Model, flow: Flow, daemon: bool) {
    if !daemon {
        m.steps.push(Step::Export { flow, flush: false });
        m.steps.push(Step::Process);
    } else {
        if m.rng.chance(50) {
            m.steps.push(Step::Trigger(flow));
        } else {
            m.steps.push(Step::Export { flow, flush: false });
        }
        m.steps.push(Step::AwaitApplied(flow));
    }
}

/// With the daemon running: a damaged copy of an applied file dropped by
/// hand, refused, retried by ops (`stxd retry`) and refused again, while
/// the daemon raises its alert.
fn refuse_and_retry(steps: &mut Vec<Step>) {
    steps.extend([
        Step::DropTampered,
        Step::AwaitRefused,
        Step::Retry,
        Step::AwaitRefused,
    ]);
}

/// Shorthands for the fixed workloads.
pub fn sell(perf: usize, row: &'static str, n: u32, line: u64) -> Step {
    Step::Sell {
        perf: PERFS[perf],
        place: Place::Seat(row, n),
        tariff: "NORMAL",
        audience: "ADULT",
        line,
    }
}

pub fn sell_zone(perf: usize, line: u64) -> Step {
    Step::Sell {
        perf: PERFS[perf],
        place: Place::Zone,
        tariff: "NORMAL",
        audience: "CHILD",
        line,
    }
}

pub fn allocate(perf: usize, row: &'static str, from: u32, to: u32) -> Step {
    Step::Allocate {
        perf: PERFS[perf],
        places: Places::Range(row, from, to),
    }
}

pub fn export(flow: Flow) -> Step {
    Step::Export { flow, flush: false }
}

/// The fixed workload of the failpoint cases: every kind of step once or
/// twice, both directions, one-shot then with the daemon (a trigger, a
/// one-shot export beside it), a shrink, a refund and a rejected file.
/// The indices of its steps that the cases target are named below.
pub fn failpoint_cases() -> Workload {
    let steps = vec![
        allocate(0, "A", 1, 6), // 0
        Step::Allocate {
            perf: PERFS[0],
            places: Places::Zone(4),
        }, // 1
        export(Flow::Contingent), // 2
        Step::Process,          // 3
        sell(0, "A", 1, 1),     // 4
        sell_zone(0, 2),        // 5
        export(Flow::Sales),    // 6 = FP_EXPORT_SALES
        Step::Process,          // 7 = FP_PROCESS_SALES
        Step::Release {
            perf: PERFS[0],
            places: Places::Seats(vec![("A", 6)]),
        }, // 8
        export(Flow::Contingent), // 9
        Step::Process,          // 10
        sell(0, "A", 2, 3),     // 11
        Step::Refund { of: 1, line: 4 }, // 12
        export(Flow::Sales),    // 13
        Step::DropTampered,     // 14
        Step::Process,          // 15 = FP_PROCESS_REJECTED
        Step::StartDaemon,      // 16
        sell(0, "A", 3, 5),     // 17
        Step::Trigger(Flow::Sales), // 18 = FP_TRIGGER
        Step::AwaitApplied(Flow::Sales), // 19
        allocate(1, "B", 1, 4), // 20
        export(Flow::Contingent), // 21
        Step::AwaitApplied(Flow::Contingent), // 22
        sell(1, "B", 1, 6),     // 23
        export(Flow::Sales),    // 24
        Step::AwaitApplied(Flow::Sales), // 25
        Step::Export {
            flow: Flow::Sales,
            flush: true,
        }, // 26
        Step::AwaitApplied(Flow::Sales), // 27
        Step::Retry,            // 28 = FP_RETRY
        Step::AwaitRefused,     // 29
    ];
    Workload { seed: 0, steps }
}

/// Step indices of [`failpoint_cases`] the cases arm.
pub const FP_EXPORT_SALES: usize = 6;
pub const FP_PROCESS_SALES: usize = 7;
pub const FP_PROCESS_REJECTED: usize = 15;
pub const FP_TRIGGER: usize = 18;
pub const FP_RETRY: usize = 28;
