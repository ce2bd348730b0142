//! The data the suite runs on, generated at the chosen scale: the demo's
//! configuration and stores (`stxd init`, `stxd check`), the manager's
//! venue grown by a block of numbered seats, performances of it allotted
//! whole to the link with a large standing zone, and SALES files sealed with
//! the link's own secret, as the distributor would send them.

use std::path::{Path, PathBuf};
use std::process::Command;

use stxd::format::Kind;
use stxd::format::sales::{Line, Operation, OrderRef, Place, Ticket, Writer};
use stxd::ident::{Code, TechId};
use stxd::money::Currency;
use stxd::outbound::{Header, publish};

pub const LINK: &str = "opera-tourism";
/// The bench block, its rows and seats (ids far above the demo's).
const BLOCK: i64 = 9_900_001;
const FIRST_ROW: i64 = 9_910_000;
const FIRST_SEAT: i64 = 20_000_000;
const SEATS_PER_ROW: u64 = 100;
/// The first bench performance (copies of the demo's 1701).
pub const FIRST_PERF: i64 = 100_000;
/// The demo's standing zone, allotted in a large quantity.
const ZONE: i64 = 3201;

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `stxd ARGS…` in `dir` on its `stxd.toml` (named, so that a config
/// installed on the machine is never read), as a command to run.
pub fn stxd(bin: &Path, dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .current_dir(dir)
        .env("STXD_CONFIG", CONFIG)
        .env_remove("STXD_FAILPOINT")
        .env("STXD_LOG", "warn");
    cmd
}

/// The sandbox's config: the demo's, moved to the sandbox's root with its
/// paths made relative to that root (`"var/state"` for `"../var/state"`).
/// Relative to the config's folder or to the working directory (the
/// sandbox, for every command), they then name the same files: a baseline
/// binary from before paths were resolved from the config's folder reads
/// the same sandbox as this one.
pub const CONFIG: &str = "stxd.toml";

/// The demo's config, its paths relative to the sandbox, and its console
/// on a free port of its own: a daemon the latency run starts must not
/// find the demo's port taken by another stxd on the machine.
fn root_config(dir: &Path) {
    let text = std::fs::read_to_string(repo().join("config/stxd.toml")).expect("demo config");
    let demo = "listen = \"127.0.0.1:8470\"";
    assert!(text.contains(demo), "the demo config's console: {demo}");
    let port = crate::sshd::free_port();
    let text = text
        .replace("\"../", "\"")
        .replace(demo, &format!("listen = \"127.0.0.1:{port}\""));
    std::fs::write(dir.join(CONFIG), text).expect("sandbox config");
}

/// The manager's store in a sandbox.
pub fn manager_db(dir: &Path) -> PathBuf {
    dir.join("var/state/OPERA.sqlite")
}

/// The distributor's store in a sandbox.
pub fn distributor_db(dir: &Path) -> PathBuf {
    dir.join("var/state/TOURISM.sqlite")
}

/// The distributor's inbox on the link (the manager's outbox).
pub fn distributor_inbox(dir: &Path) -> PathBuf {
    dir.join("var/exchange").join(LINK).join("to-distributor")
}

/// The payload (`.xml` or `.csv`) of the one file of `kind` waiting in
/// the distributor's inbox.
pub fn waiting_payload(dir: &Path, kind: &str) -> PathBuf {
    std::fs::read_dir(distributor_inbox(dir))
        .expect("the distributor's inbox")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            name.contains(&format!(".{kind}.")) && !name.ends_with(".stx")
        })
        .unwrap_or_else(|| panic!("no {kind} file waits in the distributor's inbox"))
}

/// From a [`base`] sandbox, the distributor's side ready to apply the
/// grown venue: its mapping table filled (the demo's), the manager's seat
/// plan and catalogue exported into its inbox, not applied yet.
pub fn distributor(bin: &Path, base: &Path, dir: &Path) {
    crate::measure::copy_tree(base, dir);
    for args in [
        &["mapping", "import", "samples/tourism/mapping.csv"][..],
        &["export", "seatplan", "--link", LINK][..],
        &["export", "catalogue", "--link", LINK][..],
    ] {
        crate::measure::run(&mut stxd(bin, dir, args));
    }
}

/// From a [`distributor`] sandbox whose seat plan and catalogue were
/// applied: every bench performance marked as never exported at the
/// manager, then its contingent exported whole into the distributor's
/// inbox (every bench performance × the venue's seats, and its standing
/// zone).
/// Returns the export's time, seconds.
pub fn contingent(bin: &Path, dir: &Path) -> f64 {
    let conn = rusqlite::Connection::open(manager_db(dir)).expect("open the manager's store");
    conn.execute(
        &format!(
            "UPDATE allotment SET exported = 0, acknowledged = 0 WHERE performance >= {FIRST_PERF}"
        ),
        [],
    )
    .expect("unexport the bench performances");
    drop(conn);
    crate::measure::run(&mut stxd(
        bin,
        dir,
        &["export", "contingent", "--link", LINK],
    ))
    .secs
}

/// The manager's inbox on the link.
pub fn manager_inbox(dir: &Path) -> PathBuf {
    dir.join("var/exchange").join(LINK).join("to-manager")
}

/// A sandbox with the demo's config and samples, its stores created and
/// checked, and the manager's venue grown to `seats` numbered seats over
/// `performances` allotted performances.
pub fn base(bin: &Path, dir: &Path, seats: u64, performances: u64) {
    std::fs::create_dir_all(dir).expect("sandbox");
    root_config(dir);
    crate::measure::copy_tree(&repo().join("samples"), &dir.join("samples"));
    for args in [&["init"][..], &["check"][..]] {
        crate::measure::run(&mut stxd(bin, dir, args));
    }
    let rows = seats.div_ceil(SEATS_PER_ROW);
    let sql = format!(
        "BEGIN;
         INSERT INTO block (id, configuration, code, name) VALUES ({BLOCK}, 3101, 'BENCH', 'Bench block');
         WITH RECURSIVE r(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM r WHERE i + 1 < {rows})
         INSERT INTO seat_row (id, block, code) SELECT {FIRST_ROW} + i, {BLOCK}, 'R' || i FROM r;
         WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < {seats})
         INSERT INTO seat (id, row, number, seat_category)
           SELECT {FIRST_SEAT} + i, {FIRST_ROW} + i / {SEATS_PER_ROW}, CAST(i % {SEATS_PER_ROW} + 1 AS TEXT), 2001 FROM s;
         WITH RECURSIVE p(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM p WHERE i + 1 < {performances})
         INSERT INTO performance (id, code, name, activity, start, configuration, logical_configuration, state)
           SELECT {FIRST_PERF} + i, 'B' || i, 'Bench ' || i, activity, start, configuration,
                  logical_configuration, state FROM p, performance WHERE id = 1701;
         INSERT INTO product_performance (product, performance)
           SELECT pp.product, p.id FROM product_performance pp, performance p
            WHERE pp.performance = 1701 AND p.id >= {FIRST_PERF};
         INSERT INTO allotment (link, performance, version, exported, acknowledged)
           SELECT '{LINK}', id, 1, 1, 1 FROM performance WHERE id >= {FIRST_PERF};
         INSERT INTO allotment_seat (performance, seat, link, state)
           SELECT p.id, s.id, '{LINK}', 'allotted' FROM performance p, seat s
            WHERE p.id >= {FIRST_PERF} AND s.id >= {FIRST_SEAT} ORDER BY p.id, s.id;
         INSERT INTO allotment_zone (performance, zone, link, quantity)
           SELECT id, {ZONE}, '{LINK}', 1000000000 FROM performance WHERE id >= {FIRST_PERF};
         COMMIT;"
    );
    let conn = rusqlite::Connection::open(manager_db(dir)).expect("open the manager's store");
    conn.execute_batch(&sql).expect("grow the venue");
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("checkpoint");
}

/// The shape of a generated SALES file.
#[derive(Debug, Clone, Copy)]
pub enum Shape {
    /// 96% numbered seats over the bench performances, 3% standing zone,
    /// 1% refunds of earlier sales; four lines per order.
    Mixed { seats: u64 },
    /// Every line a place of the standing zone of one performance.
    Standing,
    /// Line `n` sells seat `n - 1` of the bench performances.
    Seated { seats: u64 },
}

/// Seals a SALES file of lines `first..first + lines` into `dir` as
/// `sequence` of the link, with the link's secret from `sandbox`; returns
/// the manifest's and the payload's paths.
pub fn sales_file(
    sandbox: &Path,
    dir: &Path,
    (sequence, first, lines): (u64, u64, u64),
    shape: Shape,
) -> (PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).expect("create dir");
    let (secret, header) = sealing(sandbox, Kind::Sales, 1, sequence);
    let manifest = publish(dir, &header, &secret, |out| {
        let mut w = Writer::new(out)?;
        let mut recent: Vec<Ticket> = Vec::with_capacity(100);
        let mut seated = 0u64;
        let mut standing = 0u64;
        for line in first..first + lines {
            let t = match shape {
                Shape::Standing => standing_sale(line, 0),
                Shape::Seated { seats } => seated_sale(line, line - 1, seats),
                Shape::Mixed { seats } => {
                    let m = line % 100;
                    if m < 3 {
                        standing += 1;
                        let perfs = (lines * 96 / 100).div_ceil(seats).max(1);
                        standing_sale(line, standing % perfs)
                    } else if m == 50 && recent.len() > 40 {
                        refund(line, &recent[recent.len() - 40])
                    } else {
                        seated += 1;
                        seated_sale(line, seated - 1, seats)
                    }
                }
            };
            if t.operation == Operation::Sale {
                if recent.len() == 100 {
                    recent.remove(0);
                }
                recent.push(t.clone());
            }
            w.write(&Line::Ticket(Box::new(t)))?;
        }
        let (_, n) = w.finish()?;
        Ok(n)
    })
    .expect("publish");
    let m = dir.join(manifest.manifest_name());
    let payload = dir.join(manifest.manifest_name().replace(".stx", ".csv"));
    (m, payload)
}

/// The link's secret from `sandbox`, and the header of file `sequence` of
/// `kind` as its sender on the link writes it (sales from the distributor,
/// the rest from the manager).
fn sealing(
    sandbox: &Path,
    kind: Kind,
    format_version: u32,
    sequence: u64,
) -> (stxd::format::envelope::Secret, Header) {
    let secret = stxd::config::read_secret(&sandbox.join("var/secrets/opera-tourism.key"))
        .expect("the link's secret");
    let (sender, recipient) = match kind {
        Kind::Sales => ("TOURISM", "OPERA"),
        _ => ("OPERA", "TOURISM"),
    };
    let header = Header {
        format_version,
        kind,
        link: LINK.into(),
        sender: sender.into(),
        recipient: recipient.into(),
        login: "TOURISM_OPE@TOURISM".into(),
        sequence,
        created: time::OffsetDateTime::now_utc(),
    };
    (secret, header)
}

fn id(v: i64) -> TechId {
    TechId::new(v).expect("id")
}

fn ticket(line: u64, performance: i64, place: Place, category: i64, amount: i64) -> Ticket {
    let start = time::macros::datetime!(2026-12-01 08:00:00 UTC);
    Ticket {
        rate_version: None,
        logical_seat_category: None,
        line,
        operation: Operation::Sale,
        time: start + time::Duration::seconds((line % 40_000) as i64),
        order: OrderRef::new(&format!("T-{:09}", (line - 1) / 4)).expect("order"),
        refund_of: None,
        performance: id(performance),
        place,
        seat_category: id(category),
        tariff_type: id(1201),
        audience_subcategory: id(1301),
        amount,
        currency: Currency::new("EUR").expect("currency"),
        vat_code: id(1101),
    }
}

/// The `n`-th seat sold (0-based): performance after performance, each
/// sold whole, seat after seat.
fn seated_sale(line: u64, n: u64, seats: u64) -> Ticket {
    let perf = FIRST_PERF + (n / seats) as i64;
    let seat = n % seats;
    let place = Place::Seat {
        block: id(BLOCK),
        row: Code::new(&format!("R{}", seat / SEATS_PER_ROW)).expect("row"),
        seat: Code::new(&(seat % SEATS_PER_ROW + 1).to_string()).expect("seat"),
    };
    ticket(line, perf, place, 2001, 8500)
}

fn standing_sale(line: u64, perf: u64) -> Ticket {
    let place = Place::Zone { zone: id(ZONE) };
    ticket(line, FIRST_PERF + perf as i64, place, 2004, 2500)
}

fn refund(line: u64, of: &Ticket) -> Ticket {
    Ticket {
        line,
        operation: Operation::Refund,
        refund_of: Some(of.line),
        ..of.clone()
    }
}

/// Seals into `dir`, as catalogue `sequence` of the link, the demo's
/// catalogue (`samples/payloads/catalogue-v2.xml`) grown to about `bytes`
/// bytes by performances of its first one, each with its own id, code and
/// name; returns the manifest's and the payload's paths. What a season of
/// many performances sends, for the verify + parse workload.
pub fn big_catalogue(sandbox: &Path, dir: &Path, sequence: u64, bytes: u64) -> (PathBuf, PathBuf) {
    use stxd::format::catalogue::{Item, Reader, Writer as CatalogueWriter};
    std::fs::create_dir_all(dir).expect("create dir");
    let (secret, header) = sealing(sandbox, Kind::Catalogue, 2, sequence);
    let sample = std::fs::read(repo().join("samples/payloads/catalogue-v2.xml")).expect("sample");
    let items: Vec<Item> = Reader::new(&sample[..], "catalogue-v2.xml", Default::default())
        .collect::<Result<_, _>>()
        .expect("the sample catalogue reads");
    // One performance element is about 220 bytes.
    let performances = (bytes / 220).max(1);
    let manifest = publish(dir, &header, &secret, |out| {
        let mut w = CatalogueWriter::new_v2(out)?;
        let mut grown = false;
        for item in &items {
            w.write(item)?;
            if let (Item::Performance(first), false) = (item, grown) {
                grown = true;
                for i in 0..performances {
                    let mut p = first.clone();
                    p.id = id(FIRST_PERF + 1_000_000 + i as i64);
                    p.code = Code::new(&format!("G{i}")).expect("code");
                    p.name =
                        stxd::ident::Name::new(&format!("{} ({i})", first.name)).expect("name");
                    w.write(&Item::Performance(p))?;
                }
            }
        }
        let (_, n) = w.finish()?;
        Ok(n)
    })
    .expect("publish");
    let m = dir.join(manifest.manifest_name());
    let payload = dir.join(&manifest.payload);
    (m, payload)
}
