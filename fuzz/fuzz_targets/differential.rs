//! Differential: random sequences of allocate, release, contingent export
//! and import, sell, refund, sales export and reintegration, performance
//! cancellations, refunds of their tickets, dismissals, price changes and
//! their validation, with delayed, reordered and duplicated deliveries, played on the two stores of a link
//! (the manager's and the distributor's) through the library. The model and
//! its invariants are those of the property test (`tests/interleavings/`):
//! after every step no seat is sold twice or has two holders; once every
//! file is through, both sides' totals are equal, the pending account holds
//! exactly the accepted lines and the reconciliation is consistent. Any
//! broken invariant panics, and libFuzzer keeps the input.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use stxd::format::Kind;
use stxd::store::Role;

#[path = "../../tests/interleavings/model.rs"]
#[allow(
    dead_code,
    reason = "the property test uses parts this target does not"
)]
mod model;

use model::{LINK, MANAGER, Op, Pick, Spot, What, play, universe};

/// At most this many steps per input (each is a store transaction or a
/// file; longer inputs would only slow the search).
const MAX_STEPS: usize = 40;

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(ops) = ops(&mut u) else { return };
    play(template(), &ops);
});

/// The steps an input stands for: a first contingent on its way (so that
/// most inputs sell something), then one step per few bytes.
fn ops(u: &mut Unstructured<'_>) -> Result<Vec<Op>> {
    let mut all = vec![
        Op::Allocate {
            perf: u.choose_index(2)?,
            what: what(u, universe().len())?,
        },
        Op::ExportContingent,
        Op::Deliver {
            kind: Kind::Contingent,
            pick: Pick::Oldest,
        },
    ];
    while !u.is_empty() && all.len() < MAX_STEPS {
        all.push(op(u)?);
    }
    Ok(all)
}

fn op(u: &mut Unstructured<'_>) -> Result<Op> {
    let seats = universe().len();
    let kind = |u: &mut Unstructured<'_>| -> Result<Kind> {
        Ok(if u.arbitrary()? {
            Kind::Contingent
        } else {
            Kind::Sales
        })
    };
    Ok(match u.choose_index(16)? {
        0 => Op::Allocate {
            perf: u.choose_index(2)?,
            what: what(u, seats)?,
        },
        1 => Op::Release {
            perf: u.choose_index(2)?,
            what: what(u, 64)?,
        },
        2 => Op::ExportContingent,
        3 => Op::Deliver {
            kind: Kind::Contingent,
            pick: pick(u)?,
        },
        4 => Op::Sell {
            perf: u.choose_index(2)?,
            seat: match u.choose_index(3)? {
                0 => Spot::Contingent(u.arbitrary()?),
                1 => Spot::Any(u.choose_index(seats)?),
                _ => Spot::Zone,
            },
            reduced: u.arbitrary()?,
            child: u.arbitrary()?,
        },
        5 => Op::Refund(u.arbitrary()?),
        6 => Op::ExportSales,
        7 => Op::Deliver {
            kind: Kind::Sales,
            pick: pick(u)?,
        },
        8 => Op::Duplicate {
            kind: kind(u)?,
            pick: u.arbitrary()?,
        },
        9 => Op::Cancel(u.choose_index(2)?),
        10 => Op::ExportCatalogue,
        11 => Op::Deliver {
            kind: Kind::Catalogue,
            pick: pick(u)?,
        },
        12 => Op::RefundCancelled(u.choose_index(2)?),
        13 => Op::PriceChange(u.choose_index(model::PRICE_SETS.len())?),
        14 => Op::ValidatePrices,
        _ => Op::Dismiss(u.arbitrary()?),
    })
}

fn what(u: &mut Unstructured<'_>, seats: usize) -> Result<What> {
    Ok(if u.ratio(3, 4)? {
        let n = u.int_in_range(1..=3)?;
        let mut picked = Vec::with_capacity(n);
        for _ in 0..n {
            picked.push(u.choose_index(seats)?);
        }
        What::Seats(picked)
    } else {
        What::Zone(u.int_in_range(1..=3)?)
    })
}

fn pick(u: &mut Unstructured<'_>) -> Result<Pick> {
    Ok(if u.arbitrary()? {
        Pick::Oldest
    } else {
        Pick::Any(u.arbitrary()?)
    })
}

/// The first-use-done template every input starts from, made once per
/// process through the library, the way `stxd init`, `mapping import`,
/// `export seatplan|catalogue`, `process`, `catalogue validate --all` and
/// `catalogue assign-profile 1 GUICHET` make it on the demo.
fn template() -> &'static Path {
    static TEMPLATE: OnceLock<tempfile::TempDir> = OnceLock::new();
    TEMPLATE
        .get_or_init(|| {
            restart_calls_the_alarm_interrupts();
            first_use_done()
        })
        .path()
}

/// libFuzzer's timeout is a `SIGALRM` every few seconds whose handler it
/// installs without `SA_RESTART`: a system call the alarm lands in then
/// fails with `EINTR` (a copy of the case's files, a store's lock), and
/// the case panics for the alarm's sake. stxd's own handlers (tokio's)
/// have `SA_RESTART`, so its calls never see that in a real process; the
/// alarm's handler is given the same flag, once libFuzzer installed it
/// (before the first input).
fn restart_calls_the_alarm_interrupts() {
    // SAFETY: sigaction reads and writes the process's action for one
    // signal; the action read back is libFuzzer's own, only its flags
    // changed.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGALRM, std::ptr::null(), &mut action) == 0
            && action.sa_sigaction != libc::SIG_DFL
            && action.sa_sigaction != libc::SIG_IGN
        {
            action.sa_flags |= libc::SA_RESTART;
            libc::sigaction(libc::SIGALRM, &action, std::ptr::null_mut());
        }
    }
}

fn first_use_done() -> tempfile::TempDir {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // Under fuzz/target/, not the system's /tmp: a static is never dropped,
    // so the template outlives the process.
    let dir = tempfile::Builder::new()
        .prefix("differential-template-")
        .tempdir_in(repo.join("fuzz/target"))
        .expect("template dir");
    let root = dir.path();
    for folder in ["config", "samples"] {
        copy(&repo.join(folder), &root.join(folder));
    }
    let config = stxd::config::load(&root.join("config/stxd.toml")).expect("demo config");
    stxd::app::init(&config, true).expect("init");

    let (_, _, mut distributor) =
        stxd::app::open_side(&config, LINK, Role::Distributor).expect("distributor");
    let mapping = root.join("samples/tourism/mapping.csv");
    distributor
        .write(|tx| {
            let file = std::fs::File::open(&mapping).expect("mapping.csv");
            stxd::domain::mapping::import(tx, MANAGER, file, "mapping.csv")
        })
        .expect("mapping imported");
    drop(distributor);

    let (link, _, mut manager) =
        stxd::app::open_side(&config, LINK, Role::Manager).expect("manager");
    let secret = stxd::app::link_secret(link).expect("secret");
    for kind in [Kind::Seatplan, Kind::Catalogue] {
        let now = time::OffsetDateTime::now_utc();
        stxd::outbound::export(&mut manager, link, kind, &secret, now).expect("export");
    }
    drop(manager);

    let inboxes =
        stxd::app::folders_to_scan(&config, Some(LINK), |f| f.inbox.clone()).expect("inboxes");
    let files = stxd::app::scan(&inboxes).expect("listing");
    assert_eq!(files.len(), 2, "seat plan and catalogue waiting: {files:?}");
    stxd::app::process_files(&config, &files).expect("processed");

    let (_, _, mut distributor) =
        stxd::app::open_side(&config, LINK, Role::Distributor).expect("distributor");
    distributor
        .write(|tx| stxd::domain::catalogue::validate(tx, stxd::domain::catalogue::Selection::All))
        .expect("catalogue validated");
    distributor
        .write(|tx| stxd::domain::catalogue::assign_profile(tx, 1, "GUICHET"))
        .expect("profile assigned");
    dir
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}
