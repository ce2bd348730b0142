//! The model of the interleavings, shared by the property test
//! (`tests/interleavings/mod.rs`, proptest) and the differential fuzz target
//! (`fuzz/fuzz_targets/differential.rs`, cargo fuzz), each of which includes
//! this file as a module of its own: random steps of allocate, release,
//! contingent export/import, sell, refund, sales export, reintegration,
//! performance cancellation at the manager (its catalogue sent later),
//! refunds of a cancelled performance's tickets, dismissals of rejected
//! lines, price changes (a new version of La Traviata's rate table at the
//! manager, its catalogue sent later, validated at the distributor when
//! ops get to it), and delayed, reordered and duplicated deliveries, played
//! in-process through the library on a copy of a first-use-done template (a
//! `config/` and `var/` folder). After every step no seat has two holders
//! and none has two valid tickets. Once every file is delivered, ops settle
//! as they would (every line still rejected dismissed, every ticket of a
//! cancelled performance refunded) and every file is delivered again; then
//! no sale of a cancelled performance is left without a matching refund or a
//! resolution told to the distributor, the two sides' totals agree and the
//! pending account holds exactly the accepted lines; every booked line
//! keeps the price and rate table version it was sold at, whatever the
//! prices became since. It uses only the library and the crates both sides
//! have (rusqlite, tempfile).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::Connection;

use stxd::app;
use stxd::config::Config;
use stxd::domain::DomainError;
use stxd::domain::contingent::{self, Places, Ref, SeatRange};
use stxd::domain::mapping::manager_id_of;
use stxd::domain::reconcile::reconcile;
use stxd::domain::selling::{self, Place, Sale};
use stxd::format::Kind;
use stxd::ident::{Code, TechId};
use stxd::inbound::Outcome;
use stxd::outbound::export;
use stxd::outbound::export::Cause;
use stxd::store::mapping::MappingKind;
use stxd::store::{Role, Store};

/// Reads a store with plain SQL.
pub(super) trait Sql {
    fn sql<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, DomainError>;
}

impl Sql for Store {
    fn sql<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, DomainError> {
        self.read(|c| f(c).map_err(DomainError::from))
    }
}

pub(super) const LINK: &str = "opera-tourism";
pub(super) const MANAGER: &str = "OPERA";
/// The manager's performances the cases play on.
const PERFORMANCES: [i64; 2] = [1701, 1702];
/// The manager's standing zone FOSSE.
const ZONE: i64 = 3201;
/// The manager's rate table of La Traviata (both performances).
const RATE_TABLE: i64 = 1801;

/// The prices a price change sets, one set per step: (seat category,
/// tariff type, audience subcategory) → amount. Category 1 (PARTERRE), 2
/// (BALCON) and standing (FOSSE), full and reduced price, adult and child,
/// some of them free (an invitation).
pub(super) const PRICE_SETS: [[(i64, i64, i64, i64); 5]; 4] = [
    [
        (2001, 1201, 1301, 9000),
        (2001, 1202, 1302, 0),
        (2002, 1201, 1301, 6500),
        (2004, 1201, 1301, 3000),
        (2001, 1202, 1301, 7000),
    ],
    [
        (2001, 1201, 1301, 8000),
        (2001, 1202, 1302, 3250),
        (2002, 1201, 1302, 0),
        (2004, 1201, 1301, 2000),
        (2001, 1201, 1302, 4500),
    ],
    [
        (2001, 1201, 1301, 8500),
        (2001, 1202, 1302, 1000),
        (2002, 1201, 1301, 6000),
        (2004, 1201, 1302, 0),
        (2002, 1202, 1301, 5000),
    ],
    [
        (2001, 1201, 1301, 9500),
        (2001, 1202, 1302, 0),
        (2002, 1201, 1301, 7000),
        (2004, 1201, 1301, 2500),
        (2001, 1202, 1301, 6500),
    ],
];

/// The seats the cases play with: PARTERRE rows A–C and BALCON row A, seats
/// 1–6 (few enough that allocations, releases and sales collide).
/// (block code, row code, number, manager seat id).
pub(super) fn universe() -> Vec<(&'static str, &'static str, u32, i64)> {
    let mut seats = Vec::new();
    for (r, row) in ["A", "B", "C"].into_iter().enumerate() {
        for n in 1..=6u32 {
            seats.push(("PARTERRE", row, n, 50001 + 20 * r as i64 + i64::from(n) - 1));
        }
    }
    for n in 1..=6u32 {
        // BALCON A1 follows the 240 seats of PARTERRE.
        seats.push(("BALCON", "A", n, 50241 + i64::from(n) - 1));
    }
    seats
}

/// Copies the folder `from` into `to`, files and subfolders.
fn copy_tree(from: &Path, to: &Path) {
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

/// A fresh copy of a template's `config/` and `var/`, its config's paths
/// made absolute (tests run in parallel threads: the working directory is
/// never changed).
struct Case {
    _dir: tempfile::TempDir,
    config: Config,
}

/// A fresh folder for one case or trial, named `prefix…`: in `/dev/shm`
/// (memory: its many small syncs cost nothing) when it has room for a
/// few cases side by side, else in the system's temporary folder. A
/// container's `/dev/shm` is often 64 MiB, shared with whatever else
/// runs: a case must not fail because it filled up.
pub(crate) fn scratch(prefix: &str) -> tempfile::TempDir {
    static ROOT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let root = ROOT.get_or_init(|| {
        let shm = Path::new("/dev/shm");
        if free_bytes(shm).is_some_and(|free| free >= 1 << 30) {
            shm.to_owned()
        } else {
            std::env::temp_dir()
        }
    });
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(root)
        .unwrap_or_else(|e| panic!("a folder in {}: {e}", root.display()))
}

/// The counts a store keeps as it writes rows (what `/metrics` reads
/// instead of the rows), each beside the same figure read from the rows:
/// (what, kept, from the rows). The import durations are compared by
/// their count; their buckets are checked by the store's unit tests.
const KEPT_COUNTS: [(&str, &str, &str); 4] = [
    (
        "sales lines by link and status",
        "SELECT link || ' ' || status || ' ' || lines FROM sales_line_count
         WHERE lines > 0 ORDER BY 1",
        "SELECT link || ' ' || status || ' ' || count(*) FROM sales_line
         GROUP BY link, status ORDER BY 1",
    ),
    (
        "journaled files by link, kind, direction and state",
        "SELECT link || ' ' || kind || ' ' || direction || ' ' || state || ' ' || files
         FROM file_journal_count WHERE files > 0 ORDER BY 1",
        "SELECT link || ' ' || kind || ' ' || direction || ' ' || state || ' ' || count(*)
         FROM file_journal GROUP BY link, kind, direction, state ORDER BY 1",
    ),
    (
        "last success by link and run kind",
        "SELECT link || ' ' || kind || ' ' || ended FROM run_last_success ORDER BY 1",
        "SELECT link || ' ' || kind || ' ' || max(ended) FROM run
         WHERE status = 'ok' AND link IS NOT NULL GROUP BY link, kind ORDER BY 1",
    ),
    (
        "finished imports",
        "SELECT CAST(total(runs) AS INTEGER) || '' FROM import_duration",
        "SELECT count(*) || '' FROM run WHERE kind LIKE 'import-%' AND status <> 'running'",
    ),
];

/// Where the counts a store keeps disagree with its rows: one line each,
/// naming the figure and both readings; empty when every one agrees.
pub(crate) fn kept_count_disagreements(conn: &Connection) -> Vec<String> {
    let read = |sql: &str| -> Result<Vec<String>, rusqlite::Error> {
        conn.prepare(sql)?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()
    };
    KEPT_COUNTS
        .iter()
        .filter_map(|(what, kept, rows)| match (read(kept), read(rows)) {
            (Ok(k), Ok(r)) if k == r => None,
            (k, r) => Some(format!("{what}: kept {k:?}, from the rows {r:?}")),
        })
        .collect()
}

/// The bytes free for an unprivileged user on the file system of `dir`
/// (`stat -f`); `None` when it cannot be told (no such folder).
pub(crate) fn free_bytes(dir: &Path) -> Option<u64> {
    let out = std::process::Command::new("stat")
        .args(["-f", "--format=%a %S"])
        .arg(dir)
        .output()
        .ok()
        .filter(|out| out.status.success())?;
    let text = String::from_utf8(out.stdout).ok()?;
    let mut n = text.split_whitespace().map(|w| w.parse::<u64>().ok());
    Some(n.next()?? * n.next()??)
}

impl Case {
    fn new(template: &Path) -> Case {
        let dir = scratch("stxd-interleave-");
        let root = dir.path();
        copy_tree(&template.join("config"), &root.join("config"));
        copy_tree(&template.join("var"), &root.join("var"));
        // Its relative paths resolve from the copy's config/ folder.
        let config =
            stxd::config::load(&root.join("config/stxd.toml")).expect("the demo config loads");
        Case { _dir: dir, config }
    }

    fn link(&self) -> &stxd::config::Link {
        self.config.link(LINK).expect("demo link")
    }

    fn open(&self, side: Role) -> Store {
        app::open_side(&self.config, LINK, side)
            .expect("open a side of the demo link")
            .2
    }

    /// The folder where files of `kind` arrive.
    fn inbox(&self, kind: Kind) -> PathBuf {
        let receiver = match kind.sender() {
            Role::Manager => Role::Distributor,
            Role::Distributor => Role::Manager,
        };
        self.link().folders(receiver).inbox
    }
}

/// The manifests of `kind` in `dir`, in sequence order (names are
/// zero-padded).
fn manifests(dir: &Path, kind: Kind) -> Vec<PathBuf> {
    let prefix = format!("{LINK}.{}.", kind.as_str());
    let mut found: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.expect("dir entry").path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".stx"))
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    found.sort();
    found
}

// ------------------------------------------------------------------ the ops

#[derive(Debug, Clone)]
pub(super) enum Pick {
    Oldest,
    Any(usize),
}

/// Where a sale is tried.
#[derive(Debug, Clone)]
pub(super) enum Spot {
    /// An index into the seats of the distributor's contingent (the
    /// sales a point of sale would make).
    Contingent(usize),
    /// An index into [`universe`] (often outside the contingent: refused).
    Any(usize),
    Zone,
}

#[derive(Debug, Clone)]
pub(super) enum What {
    /// Indices into [`universe`].
    Seats(Vec<usize>),
    Zone(u32),
}

#[derive(Debug, Clone)]
pub(super) enum Op {
    Allocate {
        perf: usize,
        what: What,
    },
    /// Seats: indices into the link's allotted seats of the performance.
    Release {
        perf: usize,
        what: What,
    },
    ExportContingent,
    Deliver {
        kind: Kind,
        pick: Pick,
    },
    Sell {
        perf: usize,
        seat: Spot,
        reduced: bool,
        child: bool,
    },
    /// An index into the distributor's active sale lines.
    Refund(usize),
    ExportSales,
    Duplicate {
        kind: Kind,
        pick: usize,
    },
    /// The manager cancels a performance (its catalogue not sent yet).
    Cancel(usize),
    /// The manager sends its catalogue (only after a cancellation).
    ExportCatalogue,
    /// The distributor refunds every valid sale of a performance it knows
    /// is cancelled (refused otherwise).
    RefundCancelled(usize),
    /// The manager dismisses a line still rejected: an index into them.
    Dismiss(usize),
    /// The manager loads new prices for La Traviata's rate table (an index
    /// into [`PRICE_SETS`]): a new rate table version, its catalogue not
    /// sent yet.
    PriceChange(usize),
    /// The distributor's ops validate what waits for validation (a changed
    /// rate table): the new prices sell from then on.
    ValidatePrices,
    /// Waits for the next whole second (times are compared to the second:
    /// a sale in the second of a cancellation is given the benefit of the
    /// doubt). Fixed cases only: it costs a second.
    NextSecond,
}

/// A business refusal is fine (the op is simply not done); anything else is
/// a failure of the test.
#[track_caller]
fn refused_ok<T>(what: &str, r: Result<T, DomainError>) {
    match r {
        Ok(_) | Err(DomainError::Invalid { .. }) => {}
        Err(e) => panic!("{what}: {e}"),
    }
}

pub(super) struct World {
    case: Case,
    pub(super) manager: Store,
    distributor: Store,
    secret: stxd::format::envelope::Secret,
    /// Manager performance id → the distributor's local performance id.
    local_perf: BTreeMap<i64, i64>,
    /// A performance was cancelled or a price changed since the last
    /// catalogue export.
    catalogue_due: bool,
}

impl World {
    fn new(template: &Path) -> World {
        let case = Case::new(template);
        let manager = case.open(Role::Manager);
        let distributor = case.open(Role::Distributor);
        let secret = app::link_secret(case.link()).expect("demo secret");
        let mut local_perf = BTreeMap::new();
        for p in PERFORMANCES {
            let id = TechId::new(p).expect("id");
            let resolved = distributor
                .read(|c| stxd::domain::mapping::lookup(c, MANAGER, MappingKind::Performance, id))
                .expect("lookup");
            let local: i64 = distributor
                .sql(|c| {
                    c.query_row(
                        "SELECT local_id FROM mapping WHERE manager = ?1 AND kind = 'performance' AND manager_id = ?2 AND status = 'filled'",
                        (MANAGER, p),
                        |r| r.get(0),
                    )
                })
                .expect("performance mapped by the catalogue import");
            assert!(resolved.is_some(), "performance {p} mapped");
            local_perf.insert(p, local);
        }
        World {
            case,
            manager,
            distributor,
            secret,
            local_perf,
            catalogue_due: false,
        }
    }

    fn places(what: &What, allotted: &[(&'static str, &'static str, u32, i64)]) -> Places {
        match what {
            What::Zone(q) => Places::Zone {
                zone: Ref::Id(TechId::new(ZONE).expect("id")),
                quantity: *q,
            },
            What::Seats(idx) => {
                let mut ranges: Vec<SeatRange> = idx
                    .iter()
                    .filter_map(|i| allotted.get(i % allotted.len().max(1)))
                    .map(|(block, row, n, _)| SeatRange {
                        block: Ref::Code(Code::new(block).expect("code")),
                        row: Code::new(row).expect("code"),
                        from: *n,
                        to: *n,
                    })
                    .collect();
                ranges.dedup();
                Places::Seats(ranges)
            }
        }
    }

    /// The link's allotted (not held) seats of a manager performance.
    fn allotted(&self, perf: i64) -> Vec<(&'static str, &'static str, u32, i64)> {
        let ids: Vec<i64> = self
            .manager
            .sql(|c| {
                c.prepare(
                    "SELECT seat FROM allotment_seat WHERE link = ?1 AND performance = ?2 AND state = 'allotted' ORDER BY seat",
                )?
                .query_map((LINK, perf), |r| r.get(0))?
                .collect::<Result<Vec<i64>, _>>()
            })
            .expect("allotted seats");
        universe()
            .into_iter()
            .filter(|s| ids.contains(&s.3))
            .collect()
    }

    fn export(&mut self, kind: Kind) {
        let store = match kind.sender() {
            Role::Manager => &mut self.manager,
            Role::Distributor => &mut self.distributor,
        };
        let now = time::OffsetDateTime::now_utc();
        match export(store, self.case.link(), kind, &self.secret, now) {
            Ok(_) => {}
            // "Nothing to send" and other business refusals.
            Err(e) if matches!(*e.cause, Cause::Refused(_)) => {}
            Err(e) => panic!("{kind} export: {e}"),
        }
    }

    /// Processes one delivered file; returns whether it was held.
    fn process(&self, manifest: &Path) -> bool {
        let handled = app::process_files(&self.case.config, &[manifest.to_owned()])
            .expect("process a delivered file");
        let [one] = handled.as_slice() else {
            panic!("one file processed, got {}", handled.len());
        };
        match &one.processed {
            Ok(p) => match &p.outcome {
                Outcome::Applied { .. } | Outcome::AlreadyApplied { .. } => false,
                Outcome::Held { .. } => true,
                Outcome::Parked { missing, .. } => {
                    panic!("{} parked: {missing:?}", manifest.display())
                }
                Outcome::Quarantined { stray, reason } => {
                    panic!("{} quarantined: {stray}: {reason}", manifest.display())
                }
                Outcome::Rejected(e) => panic!("{} rejected: {e}", manifest.display()),
            },
            Err(e) => panic!("{} not processed: {e}", manifest.display()),
        }
    }

    fn deliver(&self, kind: Kind, pick: &Pick) {
        let waiting = manifests(&self.case.inbox(kind), kind);
        let chosen = match pick {
            Pick::Oldest => waiting.first(),
            Pick::Any(i) => waiting.get(i % waiting.len().max(1)),
        };
        if let Some(file) = chosen {
            self.process(file);
        }
    }

    /// Delivers again a file already applied: it must change nothing.
    fn duplicate(&self, kind: Kind, pick: usize) {
        let inbox = self.case.inbox(kind);
        let done = inbox.join("done");
        let applied = manifests(&done, kind);
        let Some(manifest) = applied.get(pick % applied.len().max(1)) else {
            return;
        };
        let stem = manifest
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("file name")
            .to_owned();
        for ext in ["stx", "csv"] {
            let name = format!("{stem}.{ext}");
            std::fs::copy(done.join(&name), inbox.join(&name)).expect("copy the pair back");
        }
        let copy = inbox.join(format!("{stem}.stx"));
        let handled = app::process_files(&self.case.config, &[copy]).expect("process");
        let outcome = handled
            .first()
            .map(|h| h.processed.as_ref().map(|p| &p.outcome));
        assert!(
            matches!(outcome, Some(Ok(Outcome::AlreadyApplied { .. }))),
            "a duplicate of {stem} must be recognised, got {outcome:?}"
        );
    }

    /// Delivers every waiting file of `kind`, oldest first, until none is
    /// left; a file held for ever (a gap that never fills) fails the test.
    fn deliver_all(&self, kind: Kind) {
        loop {
            let waiting = manifests(&self.case.inbox(kind), kind);
            if waiting.is_empty() {
                return;
            }
            let held: Vec<bool> = waiting.iter().map(|f| self.process(f)).collect();
            assert!(
                held.iter().any(|h| !h),
                "every waiting {kind} file is held: {waiting:?}"
            );
        }
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Allocate { perf, what } => {
                let perf = PERFORMANCES[*perf];
                let places = World::places(what, &universe());
                let id = TechId::new(perf).expect("id");
                let r = self
                    .manager
                    .write(|tx| contingent::allocate(tx, LINK, id, places));
                refused_ok("allocate", r);
            }
            Op::Release { perf, what } => {
                let perf = PERFORMANCES[*perf];
                let allotted = self.allotted(perf);
                let places = World::places(what, &allotted);
                if matches!(&places, Places::Seats(r) if r.is_empty()) {
                    return;
                }
                let id = TechId::new(perf).expect("id");
                let r = self
                    .manager
                    .write(|tx| contingent::release(tx, LINK, id, places));
                refused_ok("release", r);
            }
            Op::ExportContingent => self.export(Kind::Contingent),
            Op::ExportSales => self.export(Kind::Sales),
            Op::Deliver { kind, pick } => self.deliver(*kind, pick),
            Op::Duplicate { kind, pick } => self.duplicate(*kind, *pick),
            Op::Sell {
                perf,
                seat,
                reduced,
                child,
            } => {
                let local = self.local_perf[&PERFORMANCES[*perf]];
                let chosen = match seat {
                    Spot::Zone => None,
                    Spot::Any(i) => universe().get(*i).copied(),
                    Spot::Contingent(i) => {
                        let seats = self.contingent_seats(*perf);
                        seats.get(i % seats.len().max(1)).copied()
                    }
                };
                let place = match chosen {
                    Some((block, row, n, _)) => Place::Seat {
                        block: block.to_owned(),
                        row: row.to_owned(),
                        number: n.to_string(),
                    },
                    None => Place::Zone {
                        zone: "FOSSE".to_owned(),
                    },
                };
                let sale = Sale {
                    performance: local.to_string(),
                    place,
                    tariff: if *reduced { "REDUIT" } else { "NORMAL" }.to_owned(),
                    audience: if *child { "CHILD" } else { "ADULT" }.to_owned(),
                    order: None,
                };
                match self.distributor.write(|tx| selling::sell(tx, LINK, &sale)) {
                    Ok(_) => {}
                    Err(e) if e.is_refusal() => {}
                    Err(e) => panic!("sell {sale:?}: {e}"),
                }
            }
            Op::Cancel(perf) => self.cancel(*perf),
            Op::NextSecond => {
                let now = time::OffsetDateTime::now_utc();
                let left = 1_000_000_000 - u64::from(now.nanosecond());
                std::thread::sleep(std::time::Duration::from_nanos(left + 10_000_000));
            }
            Op::ExportCatalogue => {
                if std::mem::take(&mut self.catalogue_due) {
                    self.export(Kind::Catalogue);
                }
            }
            Op::RefundCancelled(perf) => self.refund_cancelled(*perf),
            Op::PriceChange(set) => self.change_prices(*set),
            Op::ValidatePrices => self.validate_prices(),
            Op::Dismiss(i) => {
                let open = self.open_rejects();
                if let Some(line) = open.get(i % open.len().max(1)) {
                    self.dismiss(*line);
                }
            }
            Op::Refund(i) => {
                let active = self.active_lines();
                let Some(line) = active.get(i % active.len().max(1)) else {
                    return;
                };
                let line = *line;
                match self.distributor.write(|tx| selling::refund(tx, line)) {
                    Ok(_) => {}
                    Err(e) => panic!("refund of active line {line}: {e}"),
                }
            }
        }
    }

    /// The universe's seats in the distributor's contingent of a manager
    /// performance, through its mapping.
    fn contingent_seats(&self, perf: usize) -> Vec<(&'static str, &'static str, u32, i64)> {
        let local = self.local_perf[&PERFORMANCES[perf]];
        let ids = self
            .distributor
            .read(|c| -> Result<Vec<i64>, DomainError> {
                let seats: Vec<i64> = c
                    .prepare(
                        "SELECT seat FROM contingent_seat WHERE performance = ?1 ORDER BY seat",
                    )?
                    .query_map([local], |r| r.get(0))?
                    .collect::<Result<_, _>>()?;
                let mut ids = Vec::new();
                for seat in seats {
                    let id =
                        manager_id_of(c, MANAGER, MappingKind::Seat, seat)?.expect("seat mapped");
                    ids.push(id.get());
                }
                Ok(ids)
            })
            .expect("contingent seats");
        universe()
            .into_iter()
            .filter(|s| ids.contains(&s.3))
            .collect()
    }

    fn active_lines(&self) -> Vec<i64> {
        self.distributor
            .sql(|c| {
                c.prepare("SELECT id FROM sale_line WHERE active = 1 ORDER BY id")?
                    .query_map([], |r| r.get(0))?
                    .collect::<Result<Vec<i64>, _>>()
            })
            .expect("active lines")
    }

    /// (manager performance, manager seat) of every active seat sale at the
    /// distributor, through its mapping, but those the manager rejected (a
    /// sale on a cancelled performance: its seat may have left the
    /// allotment meanwhile, and the distributor refunds it once told).
    fn sold_seats(&self) -> Vec<(i64, i64)> {
        let rejected: Vec<i64> = self
            .manager
            .sql(|c| {
                c.prepare("SELECT line FROM sales_line WHERE link = ?1 AND status = 'rejected'")?
                    .query_map([LINK], |r| r.get(0))?
                    .collect::<Result<Vec<i64>, _>>()
            })
            .expect("rejected lines");
        self.distributor
            .read(|c| -> Result<Vec<(i64, i64)>, DomainError> {
                let local: Vec<(i64, i64, i64)> = c
                    .prepare(
                        "SELECT id, performance, seat FROM sale_line WHERE active = 1 AND seat IS NOT NULL ORDER BY id",
                    )?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<Result<_, _>>()?;
                let mut out = Vec::new();
                for (line, perf, seat) in local {
                    if rejected.contains(&line) {
                        continue;
                    }
                    let p = manager_id_of(c, MANAGER, MappingKind::Performance, perf)?
                        .expect("performance mapped");
                    let s = manager_id_of(c, MANAGER, MappingKind::Seat, seat)?
                        .expect("seat mapped");
                    out.push((p.get(), s.get()));
                }
                Ok(out)
            })
            .expect("sold seats")
    }

    /// No seat ever has two holders.
    fn check_holders(&self, after: &Op) {
        for (perf, seat) in self.sold_seats() {
            let held: i64 = self
                .manager
                .sql(|c| {
                    c.query_row(
                        "SELECT (SELECT count(*) FROM allotment_seat WHERE performance = ?1 AND seat = ?2 AND link = ?3)
                              + (SELECT count(*) FROM ticket WHERE performance = ?1 AND seat = ?2 AND link = ?3 AND state = 'valid')",
                        (perf, seat, LINK),
                        |r| r.get(0),
                    )
                })
                .expect("holder query");
            assert!(
                held > 0,
                "after {after:?}: seat {seat} of performance {perf} is sold by the distributor but neither in its allotment nor a valid ticket at the manager"
            );
        }
        let doubles: i64 = self
            .manager
            .sql(|c| {
                c.query_row(
                    "SELECT count(*) FROM (SELECT 1 FROM ticket WHERE state = 'valid' AND seat IS NOT NULL
                      GROUP BY performance, seat HAVING count(*) > 1)",
                    [],
                    |r| r.get(0),
                )
            })
            .expect("doubles query");
        assert_eq!(doubles, 0, "after {after:?}: a seat has two valid tickets");
        let crossed: i64 = self
            .manager
            .sql(|c| {
                c.query_row(
                    "SELECT count(*) FROM allotment_seat a JOIN ticket t
                       ON t.performance = a.performance AND t.seat = a.seat AND t.state = 'valid'
                     WHERE t.link <> a.link",
                    [],
                    |r| r.get(0),
                )
            })
            .expect("crossed query");
        assert_eq!(
            crossed, 0,
            "after {after:?}: a seat is allotted to one link and ticketed to another"
        );
    }

    fn cancel(&mut self, perf: usize) {
        let named = PERFORMANCES[perf].to_string();
        let r = self.manager.write(|tx| {
            stxd::domain::lifecycle::end(tx, LINK, &named, stxd::domain::lifecycle::Ending::Cancel)
        });
        refused_ok("cancel", r);
        self.catalogue_due = true;
    }

    fn refund_cancelled(&mut self, perf: usize) {
        let local = self.local_perf[&PERFORMANCES[perf]].to_string();
        match self
            .distributor
            .write(|tx| selling::refund_performance(tx, LINK, &local))
        {
            Ok(_) => {}
            Err(e) if e.is_refusal() => {}
            Err(e) => panic!("refund of cancelled performance {local}: {e}"),
        }
    }

    /// The manager loads a catalogue fragment with new prices of its rate
    /// table: one more version when a price changed.
    fn change_prices(&mut self, set: usize) {
        let prices: String = PRICE_SETS[set % PRICE_SETS.len()]
            .iter()
            .map(|(category, tariff, audience, amount)| {
                format!(
                    "    <price seatCategory=\"{category}\" tariffType=\"{tariff}\" \
                     audienceSubcategory=\"{audience}\" amount=\"{amount}\"/>\n"
                )
            })
            .collect();
        let fragment = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<catalogue version=\"1\">\n  \
             <rateTable id=\"{RATE_TABLE}\" code=\"TRAV-RT\" name=\"Tarifs La Traviata\" currency=\"EUR\">\n\
             {prices}  </rateTable>\n</catalogue>\n"
        );
        let path = self.case._dir.path().join("prices.xml");
        std::fs::write(&path, fragment).expect("write the price fragment");
        if let Err(e) = app::load(&mut self.manager, &[path]) {
            panic!("price change {set}: {e}");
        }
        self.catalogue_due = true;
    }

    fn validate_prices(&mut self) {
        let r = self.distributor.write(|tx| {
            stxd::domain::catalogue::validate(tx, stxd::domain::catalogue::Selection::All)
        });
        refused_ok("validate", r);
    }

    /// Every booked line keeps the price it was sold at: the manager's
    /// ticket has the distributor's line's amount, currency and rate table
    /// version, and that amount is the price of that version at the
    /// manager (a free ticket at 0 included).
    fn check_prices(&self) {
        let sold: BTreeMap<i64, (i64, String, Option<i64>)> = self
            .distributor
            .sql(|c| {
                c.prepare("SELECT id, amount, currency, rate_version FROM sale_line WHERE operation = 'SALE'")?
                    .query_map([], |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?))))?
                    .collect::<Result<_, _>>()
            })
            .expect("distributor sales");
        let booked: Vec<(i64, i64, String, Option<i64>, bool)> = self
            .manager
            .sql(|c| {
                c.prepare(
                    "SELECT t.line, t.amount, t.currency, t.rate_version,
                            t.rate_version IS NULL OR EXISTS (
                              SELECT 1 FROM rate_table_version_price v
                               WHERE v.rate_table = ?1 AND v.version = t.rate_version
                                 AND v.seat_category = t.seat_category
                                 AND v.tariff_type = t.tariff_type
                                 AND v.audience_subcategory = t.audience_subcategory
                                 AND v.amount = t.amount)
                       FROM ticket t WHERE t.link = ?2 ORDER BY t.line",
                )?
                .query_map((RATE_TABLE, LINK), |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect::<Result<_, _>>()
            })
            .expect("manager tickets");
        for (line, amount, currency, version, priced) in booked {
            let Some((sold_at, sold_in, sold_version)) = sold.get(&line) else {
                panic!("ticket of line {line}: no such sale at the distributor");
            };
            assert_eq!(
                (amount, &currency, version),
                (*sold_at, sold_in, *sold_version),
                "line {line}: booked at the manager vs sold at the distributor (amount, currency, rate version)"
            );
            assert!(
                priced,
                "line {line}: {amount} {currency} is not the price of rate table version {version:?}"
            );
        }
    }

    /// The manager's lines still rejected (no resolution), in line order.
    fn open_rejects(&self) -> Vec<i64> {
        self.manager
            .sql(|c| {
                c.prepare(
                    "SELECT l.line FROM sales_line l WHERE l.status = 'rejected'
                       AND NOT EXISTS (SELECT 1 FROM sales_line_resolution r
                                        WHERE r.link = l.link AND r.line = l.line)
                     ORDER BY l.line",
                )?
                .query_map([], |r| r.get(0))?
                .collect::<Result<Vec<i64>, _>>()
            })
            .expect("open rejects")
    }

    fn dismiss(&mut self, line: i64) {
        let link = self.case.link().clone();
        let ctx = stxd::domain::reintegration::Context {
            link: &link.name,
            login: &link.login,
            distributor: link.distributor.as_str(),
            file: "",
            run: 0,
        };
        let dismiss = stxd::domain::reintegration::Decision::Dismiss;
        let r = self.manager.write(|tx| {
            stxd::domain::reintegration::resolve_line(tx, ctx, line, &dismiss, "model", "ops")
        });
        if let Err(e) = r {
            panic!("dismiss of rejected line {line}: {e}");
        }
    }

    /// Every file delivered, in order, twice round (acks free holds).
    fn flush(&mut self) {
        if std::mem::take(&mut self.catalogue_due) {
            self.export(Kind::Catalogue);
        }
        self.deliver_all(Kind::Catalogue);
        for _ in 0..2 {
            self.export(Kind::Contingent);
            self.deliver_all(Kind::Contingent);
            self.export(Kind::Sales);
            self.deliver_all(Kind::Sales);
        }
    }

    fn check_totals(&self) {
        let sums = |store: &Store, sql: &str| -> Vec<(String, i64, i64)> {
            store
                .sql(|c| {
                    c.prepare(sql)?
                        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                        .collect::<Result<Vec<_>, _>>()
                })
                .expect("sums")
        };
        let tickets = sums(
            &self.manager,
            "SELECT currency, count(*), sum(amount) FROM ticket WHERE state = 'valid' GROUP BY currency ORDER BY currency",
        );
        let sales = sums(
            &self.distributor,
            "SELECT currency, count(*), sum(amount) FROM sale_line WHERE active = 1 GROUP BY currency ORDER BY currency",
        );
        assert_eq!(tickets, sales, "valid tickets vs active sales");
        let pending = sums(
            &self.manager,
            "SELECT currency, count(DISTINCT ticket), sum(amount) FROM pending_account_entry GROUP BY currency
             HAVING sum(amount) <> 0 ORDER BY currency",
        );
        let pending: Vec<(String, i64)> = pending.into_iter().map(|(c, _, a)| (c, a)).collect();
        let valid: Vec<(String, i64)> = tickets
            .iter()
            .filter(|t| t.2 != 0)
            .map(|(c, _, a)| (c.clone(), *a))
            .collect();
        assert_eq!(pending, valid, "pending account vs valid tickets");

        let count = |store: &Store, sql: &str| -> i64 {
            store
                .sql(|c| c.query_row(sql, [], |r| r.get(0)))
                .expect("count")
        };
        assert_eq!(
            count(
                &self.manager,
                "SELECT count(*) FROM ticket WHERE state = 'cancelled'"
            ),
            count(
                &self.distributor,
                "SELECT count(*) FROM sale_line WHERE operation = 'REFUND'"
            ) - count(
                &self.manager,
                "SELECT count(*) FROM sales_line_resolution WHERE code = 'refund-of-unbooked-sale'"
            ),
            "cancelled tickets vs refund lines (less the refunds of sales never booked)"
        );
        // The counts each store keeps (what `/metrics` reads) are those
        // of its rows.
        for store in [&self.manager, &self.distributor] {
            let off = store
                .sql(|c| Ok(kept_count_disagreements(c)))
                .expect("kept counts");
            assert!(off.is_empty(), "kept counts vs the rows: {off:#?}");
        }
        // A line is rejected only on a cancelled performance (a sale made
        // after the cancellation, or its refund), and every one is resolved.
        let rejected: Vec<(i64, String, String)> = self
            .manager
            .sql(|c| {
                c.prepare(
                    "SELECT l.line, l.code, l.reason FROM sales_line l WHERE l.status = 'rejected'
                       AND (l.code NOT IN ('performance-cancelled', 'refund-of-unbooked-sale')
                            OR NOT EXISTS (SELECT 1 FROM sales_line_resolution r
                                            WHERE r.link = l.link AND r.line = l.line))",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<Vec<_>, _>>()
            })
            .expect("rejected lines");
        assert!(
            rejected.is_empty(),
            "lines rejected and left open: {rejected:?}"
        );
        let unsent = count(
            &self.distributor,
            "SELECT count(*) FROM sale_line WHERE exported_in IS NULL",
        );
        assert_eq!(unsent, 0, "every line was exported");

        // The same seats on both sides.
        let mut sold = self.sold_seats();
        sold.sort_unstable();
        let mut ticketed: Vec<(i64, i64)> = self
            .manager
            .sql(|c| {
                c.prepare(
                    "SELECT performance, seat FROM ticket WHERE state = 'valid' AND seat IS NOT NULL ORDER BY performance, seat",
                )?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()
            })
            .expect("ticketed seats");
        ticketed.sort_unstable();
        assert_eq!(sold, ticketed, "sold seats vs valid tickets");

        let report = self
            .manager
            .read(|m| self.distributor.read(|d| reconcile(m, d, LINK, MANAGER)))
            .expect("reconcile");
        assert!(
            report.is_consistent(),
            "reconciliation differences: {:#?}",
            report.differences
        );
    }
}

impl World {
    /// What ops do once everything is through: dismiss every line still
    /// rejected, refund every ticket of a cancelled performance; then every
    /// file through again.
    fn settle(&mut self) {
        for line in self.open_rejects() {
            self.dismiss(line);
        }
        for perf in 0..PERFORMANCES.len() {
            self.refund_cancelled(perf);
        }
        self.flush();
    }

    /// No ticket on a cancelled performance without a matching refund or a
    /// resolution: every valid ticket of one is gone, and each distributor
    /// sale of one is refunded (its ticket cancelled by that refund) or was
    /// never booked and carries the manager's dismissal. Every resolution
    /// reached the distributor, once.
    fn check_cancelled(&self) {
        let count = |store: &Store, sql: &str| -> i64 {
            store
                .sql(|c| c.query_row(sql, [], |r| r.get(0)))
                .expect("count")
        };
        assert_eq!(
            count(
                &self.manager,
                "SELECT count(*) FROM ticket t JOIN performance p ON p.id = t.performance
                  WHERE p.state = 'cancelled' AND t.state = 'valid'"
            ),
            0,
            "valid tickets left on a cancelled performance"
        );
        let sales: Vec<(i64, bool, Option<i64>, Option<String>)> = self
            .distributor
            .sql(|c| {
                c.prepare(
                    "SELECT s.id, s.active, (SELECT f.id FROM sale_line f WHERE f.refund_of = s.id),
                            (SELECT x.decision FROM sale_line_resolution x WHERE x.line = s.id)
                       FROM sale_line s JOIN performance p ON p.id = s.performance
                      WHERE s.operation = 'SALE' AND p.state = 'cancelled' ORDER BY s.id",
                )?
                .query_map([], |r| {
                    Ok((r.get(0)?, r.get::<_, i64>(1)? == 1, r.get(2)?, r.get(3)?))
                })?
                .collect::<Result<Vec<_>, _>>()
            })
            .expect("sales of cancelled performances");
        for (line, active, refund, told) in sales {
            let booked: Option<(String, Option<i64>)> = self
                .manager
                .sql(|c| {
                    c.query_row(
                        "SELECT state, refund_line FROM ticket WHERE link = ?1 AND line = ?2",
                        (LINK, line),
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .map(Some)
                    .or_else(|e| match e {
                        rusqlite::Error::QueryReturnedNoRows => Ok(None),
                        e => Err(e),
                    })
                })
                .expect("ticket of a line");
            match booked {
                Some((state, refunded_by)) => assert!(
                    !active
                        && state == "cancelled"
                        && refunded_by.is_some()
                        && refunded_by == refund,
                    "sale line {line} of a cancelled performance: ticket {state}, refunded by {refunded_by:?}, distributor refund {refund:?}"
                ),
                None => assert_eq!(
                    told.as_deref(),
                    Some("dismissed"),
                    "sale line {line} of a cancelled performance never booked and not dismissed at the distributor"
                ),
            }
        }
        let told_at_manager = count(
            &self.manager,
            "SELECT count(*) FROM sales_line_resolution WHERE told_in IS NOT NULL",
        );
        assert_eq!(
            told_at_manager,
            count(&self.manager, "SELECT count(*) FROM sales_line_resolution"),
            "a resolution never told"
        );
        assert_eq!(
            told_at_manager,
            count(
                &self.distributor,
                "SELECT count(*) FROM sale_line_resolution"
            ),
            "resolutions told vs recorded at the distributor"
        );
    }
}

/// Plays `ops` on a fresh copy of `template`, checking after each step and
/// once every file is through and ops settled; panics on any broken
/// invariant.
pub(super) fn play(template: &Path, ops: &[Op]) -> World {
    let mut world = World::new(template);
    for op in ops {
        world.apply(op);
        world.check_holders(op);
    }
    world.flush();
    world.check_holders(&Op::ExportSales);
    world.settle();
    world.check_holders(&Op::ExportSales);
    world.check_cancelled();
    world.check_totals();
    world.check_prices();
    world
}
