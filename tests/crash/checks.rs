//! The crash harness's checks after a run: the business tables of both
//! stores row by row against the crash-free reference (by natural keys;
//! timestamps, surrogate ids, runs and the file journal left out),
//! `PRAGMA integrity_check`, the counts each store keeps against its rows,
//! `stxd report reconcile`, and the exchange folders (nothing left in an
//! inbox, `parked/` or `error/`, no temporary name, no pair split between
//! two folders, every expected file in `done/`). Each failure is
//! classified: lost, duplicated, half-applied, stuck, other.

use std::collections::BTreeMap;
use std::path::Path;

use super::world::{Class, Finding, World, names, open_ro};

/// A business table as the checks see it: its name, the store, and a query
/// whose first column is the natural key and second the compared values
/// (both built with `||`, so a row compares as two strings).
struct Table {
    name: &'static str,
    store: &'static str,
    sql: &'static str,
}

/// Every business table compared. Keys are natural: link and line, link and
/// order reference, performance and seat… Values leave out what a crash may
/// change without harm (times, surrogate ids, file positions).
const TABLES: &[Table] = &[
    Table {
        name: "allotment",
        store: "OPERA",
        sql: "SELECT link || '/' || performance,
                     'version ' || version || ' exported ' || exported || ' acknowledged ' || acknowledged
              FROM allotment",
    },
    Table {
        name: "allotment_seat",
        store: "OPERA",
        sql: "SELECT performance || '/' || seat, link || ' ' || state || ' ' || ifnull(released_in, '-')
              FROM allotment_seat",
    },
    Table {
        name: "allotment_zone",
        store: "OPERA",
        sql: "SELECT performance || '/' || zone || '/' || link,
                     'quantity ' || quantity || ' held ' || held || ' until ' || ifnull(held_until, '-')
              FROM allotment_zone",
    },
    Table {
        name: "allotment_return",
        store: "OPERA",
        sql: "SELECT link || '/' || performance || '/' || ifnull(seat, '-') || '/' || ifnull(zone, '-') || '/v' || version,
                     'quantity ' || quantity
              FROM allotment_return",
    },
    Table {
        name: "sales_order",
        store: "OPERA",
        sql: "SELECT link || '/' || reference,
                     channel || ' ' || point_of_sale || ' ' || payment_method || ' ' || contact
              FROM sales_order",
    },
    Table {
        name: "ticket",
        store: "OPERA",
        sql: "SELECT t.link || '/line ' || t.line,
                     o.reference || ' perf ' || t.performance || ' seat ' || ifnull(t.seat, '-') || ' zone ' || ifnull(t.zone, '-')
                     || ' cat ' || t.seat_category || ' tariff ' || t.tariff_type || ' audience ' || t.audience_subcategory
                     || ' ' || t.amount || ' ' || t.currency || ' vat ' || t.vat_code || ' ' || t.state
                     || ' refund ' || ifnull(t.refund_line, '-')
              FROM ticket t JOIN sales_order o ON o.id = t.sales_order",
    },
    Table {
        name: "sales_line",
        store: "OPERA",
        sql: "SELECT link || '/line ' || line, operation || ' ' || status || ' ' || ifnull(code, '-')
              FROM sales_line",
    },
    Table {
        name: "pending_account_entry",
        store: "OPERA",
        sql: "SELECT t.link || '/line ' || t.line || ' ' || p.amount || ' ' || p.currency, ''
              FROM pending_account_entry p JOIN ticket t ON t.id = p.ticket",
    },
    Table {
        name: "contingent_snapshot",
        store: "TOURISM",
        sql: "SELECT link || '/perf ' || performance, 'version ' || version || ' ack sent ' || ifnull(ack_sent, '-')
              FROM contingent_snapshot",
    },
    Table {
        name: "contingent_seat",
        store: "TOURISM",
        sql: "SELECT performance || '/' || seat, '' FROM contingent_seat",
    },
    Table {
        name: "contingent_zone",
        store: "TOURISM",
        sql: "SELECT performance || '/' || zone, 'quantity ' || quantity FROM contingent_zone",
    },
    Table {
        name: "sale_line",
        store: "TOURISM",
        sql: "SELECT link || '/line ' || id,
                     operation || ' ' || order_ref || ' refund of ' || ifnull(refund_of, '-') || ' product ' || product
                     || ' perf ' || performance || ' seat ' || ifnull(seat, '-') || ' zone ' || ifnull(zone, '-')
                     || ' cat ' || seat_category || ' tariff ' || tariff_type || ' audience ' || audience_subcategory
                     || ' ' || amount || ' ' || currency || ' vat ' || vat_code || ' active ' || active
                     || CASE WHEN exported_in IS NULL THEN ' not sent' ELSE ' sent' END
              FROM sale_line",
    },
];

/// The folders whose file names are compared with the reference (relative
/// to the link's exchange folder).
const ARCHIVES: [&str; 8] = [
    "to-distributor/done",
    "to-distributor/parked",
    "to-distributor/error",
    "to-distributor/quarantine",
    "to-manager/done",
    "to-manager/parked",
    "to-manager/error",
    "to-manager/quarantine",
];

/// What the checks compare: every business row and the archive folders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// table → key → values (several for a key that repeats).
    pub rows: BTreeMap<&'static str, BTreeMap<String, Vec<String>>>,
    /// archive folder → file names.
    pub folders: BTreeMap<&'static str, Vec<String>>,
    /// `stxd report reconcile --json`'s in-flight items (codes and lines).
    pub in_flight: Vec<String>,
    /// Tables that could not be read (a finding of their own).
    pub unreadable: Vec<String>,
}

impl Snapshot {
    pub fn count(&self, table: &str) -> usize {
        self.rows
            .get(table)
            .map_or(0, |t| t.values().map(Vec::len).sum())
    }
}

/// Reads the business rows and folders of a finished run. A table that
/// cannot be read is left empty and named in `unreadable`.
pub fn snapshot(world: &World) -> Snapshot {
    let mut rows = BTreeMap::new();
    let mut unreadable = Vec::new();
    for t in TABLES {
        match read_table(world, t) {
            Ok(table) => {
                rows.insert(t.name, table);
            }
            Err(e) => {
                unreadable.push(format!("{} {}: {e}", t.store, t.name));
                rows.insert(t.name, BTreeMap::new());
            }
        }
    }
    let exchange = world.exchange();
    let folders = ARCHIVES
        .iter()
        .map(|f| (*f, names(&exchange.join(f))))
        .collect();
    Snapshot {
        rows,
        folders,
        in_flight: Vec::new(),
        unreadable,
    }
}

fn read_table(world: &World, t: &Table) -> Result<BTreeMap<String, Vec<String>>, String> {
    let conn = open_ro(&world.db(t.store)).ok_or("cannot open the store")?;
    let mut stmt = conn.prepare(t.sql).map_err(|e| e.to_string())?;
    let mut table: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let found = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(|e| e.to_string())?;
    for row in found {
        let (k, v) = row.map_err(|e| e.to_string())?;
        table.entry(k).or_default().push(v);
    }
    for v in table.values_mut() {
        v.sort();
    }
    Ok(table)
}

/// Every check of a finished run against the reference's snapshot; the
/// findings, classified. `snapshot.in_flight` is filled from the report.
pub fn check(world: &mut World, reference: &Snapshot) -> (Snapshot, Vec<Finding>) {
    let mut findings = Vec::new();
    let mut found = |class: Class, text: String| findings.push(Finding { class, text });
    let mut snap = snapshot(world);
    for u in &snap.unreadable {
        found(Class::Other, format!("cannot read {u}"));
    }

    // Business rows, by natural key.
    for (table, expected) in &reference.rows {
        let got = &snap.rows[table];
        for (key, want) in expected {
            match got.get(key) {
                None => found(
                    Class::Lost,
                    format!("{table} {key}: missing (reference: {})", want.join(" | ")),
                ),
                Some(have) if have.len() > want.len() => found(
                    Class::Duplicated,
                    format!(
                        "{table} {key}: {} rows, reference {}",
                        have.len(),
                        want.len()
                    ),
                ),
                Some(have) if have.len() < want.len() => found(
                    Class::Lost,
                    format!(
                        "{table} {key}: {} rows, reference {}",
                        have.len(),
                        want.len()
                    ),
                ),
                Some(have) if have != want => found(
                    Class::HalfApplied,
                    format!(
                        "{table} {key}: {} (reference: {})",
                        have.join(" | "),
                        want.join(" | ")
                    ),
                ),
                Some(_) => {}
            }
        }
        for (key, have) in got {
            if !expected.contains_key(key) {
                found(
                    Class::Duplicated,
                    format!("{table} {key}: not in the reference: {}", have.join(" | ")),
                );
            }
        }
    }

    // The stores themselves.
    for inst in ["OPERA", "TOURISM"] {
        let verdict = open_ro(&world.db(inst))
            .and_then(|c| {
                c.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
                    .ok()
            })
            .unwrap_or_else(|| "cannot be read".to_owned());
        if verdict != "ok" {
            found(Class::Other, format!("{inst}: integrity_check: {verdict}"));
        }
        // The counts the store keeps as it writes (what `/metrics` reads),
        // against its rows: a crash between the two would part them.
        if let Some(c) = open_ro(&world.db(inst)) {
            for off in crate::interleavings::model::kept_count_disagreements(&c) {
                found(Class::Other, format!("{inst}: {off}"));
            }
        }
    }

    // The reconciliation of both sides.
    let ran = world.command(
        &[
            "--json".to_owned(),
            "report".to_owned(),
            "reconcile".to_owned(),
            "--link".to_owned(),
            super::workload::LINK.to_owned(),
        ],
        None,
    );
    let doc = ran.json();
    let items = |section: &str| -> Vec<String> {
        doc[section]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|i| {
                        format!(
                            "{} line {} perf {}: {}",
                            i["code"].as_str().unwrap_or("?"),
                            i["line"],
                            i["performance"],
                            i["detail"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let differences = items("differences");
    snap.in_flight = items("in_flight");
    if ran.code() != Some(0) || !differences.is_empty() || doc["consistent"] != true {
        found(
            Class::Other,
            format!(
                "report reconcile: exit {:?}, differences: {differences:#?}{}",
                ran.code(),
                if doc.is_null() {
                    format!("\n{}{}", ran.stdout, ran.stderr)
                } else {
                    String::new()
                }
            ),
        );
    }
    if snap.in_flight != reference.in_flight {
        found(
            Class::Stuck,
            format!(
                "report reconcile: in flight {:?}, reference {:?}",
                snap.in_flight, reference.in_flight
            ),
        );
    }

    // The folders.
    for text in folder_problems(&world.exchange()) {
        found(Class::Stuck, text);
    }
    let control = world.control();
    for n in names(&control) {
        found(
            Class::Stuck,
            format!("trigger file left: {}", control.join(n).display()),
        );
    }
    for (folder, want) in &reference.folders {
        // done/ is checked against the journals below: which file carried
        // which line may differ from the reference when a killed export
        // was not run again (its lines then ride in the next file).
        if folder.ends_with("done") {
            continue;
        }
        let have = &snap.folders[folder];
        for n in want.iter().filter(|n| !have.contains(n)) {
            found(Class::Stuck, format!("{folder}/{n}: expected, missing"));
        }
        for n in have.iter().filter(|n| !want.contains(n)) {
            found(Class::Stuck, format!("{folder}/{n}: not in the reference"));
        }
    }
    for (class, text) in delivery_problems(world) {
        found(class, text);
    }
    (snap, findings)
}

/// One journal row: sequence, state, file name.
type Journaled = Vec<(i64, String, String)>;

fn journal(
    world: &World,
    institution: &str,
    kind: &str,
    direction: &str,
) -> Result<Journaled, String> {
    let conn = open_ro(&world.db(institution)).ok_or("cannot open the store")?;
    let mut stmt = conn
        .prepare(
            "SELECT sequence, state, file_name FROM file_journal
             WHERE link = ?1 AND kind = ?2 AND direction = ?3 ORDER BY sequence",
        )
        .map_err(|e| e.to_string())?;
    let rows = stmt
        .query_map((super::workload::LINK, kind, direction), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .map_err(|e| e.to_string())?;
    rows.collect::<Result<_, _>>().map_err(|e| e.to_string())
}

/// Every file a sender journaled is published, applied by the receiver and
/// archived in its `done/` (both files of the pair); the receiver applied
/// nothing the sender does not know (a file whose sequence the sender
/// rolled back: half of a change on each side); `done/` holds no second
/// copy of a name (`NAME.1`: the same sequence again with other bytes).
fn delivery_problems(world: &World) -> Vec<(Class, String)> {
    let mut problems = Vec::new();
    let flows = [
        ("SEATPLAN", "OPERA", "TOURISM", "to-distributor"),
        ("CATALOGUE", "OPERA", "TOURISM", "to-distributor"),
        ("CONTINGENT", "OPERA", "TOURISM", "to-distributor"),
        ("SALES", "TOURISM", "OPERA", "to-manager"),
    ];
    for (kind, sender, receiver, inbox) in flows {
        let (out, inn) = match (
            journal(world, sender, kind, "out"),
            journal(world, receiver, kind, "in"),
        ) {
            (Ok(o), Ok(i)) => (o, i),
            (o, i) => {
                problems.push((
                    Class::Other,
                    format!(
                        "cannot read the {kind} journals: {:?} {:?}",
                        o.err(),
                        i.err()
                    ),
                ));
                continue;
            }
        };
        let done = world.exchange().join(inbox).join("done");
        let in_done = names(&done);
        for (seq, state, file) in &out {
            if state != "published" {
                problems.push((
                    Class::Stuck,
                    format!("{sender} {kind} {seq}: {state} at the sender, never published"),
                ));
            }
            match inn.iter().find(|(s, ..)| s == seq) {
                Some((_, st, _)) if st == "applied" || st == "ignored" => {}
                Some((_, st, _)) => problems.push((
                    Class::Stuck,
                    format!("{receiver} {kind} {seq}: {st} at the receiver"),
                )),
                None => problems.push((
                    Class::Stuck,
                    format!("{kind} {seq}: sent by {sender}, never applied by {receiver}"),
                )),
            }
            let manifest = match file.rsplit_once('.') {
                Some((stem, _)) => format!("{stem}.stx"),
                None => format!("{file}.stx"),
            };
            for name in [file, &manifest] {
                if !in_done.contains(name) {
                    problems.push((
                        Class::Stuck,
                        format!("{inbox}/done/{name}: expected, missing"),
                    ));
                }
            }
        }
        for (seq, st, file) in &inn {
            if !out.iter().any(|(s, ..)| s == seq) {
                problems.push((
                    Class::HalfApplied,
                    format!(
                        "{kind} {seq} ({file}): {st} by {receiver}, unknown to {sender}'s journal"
                    ),
                ));
            }
        }
        let infix = format!(".{kind}.");
        for n in in_done.iter().filter(|n| n.contains(&infix)) {
            let last = n.rsplit('.').next().unwrap_or("");
            if last.chars().all(|c| c.is_ascii_digit()) {
                problems.push((
                    Class::Duplicated,
                    format!("{inbox}/done/{n}: a second file under a name already archived"),
                ));
            }
        }
    }
    problems
}

/// What the folders of a link must never hold at rest: a file in an inbox
/// (or an outbox: here they are the same folders), anything in `parked/`,
/// a temporary name, a manifest without its payload or a payload without
/// its manifest in the same folder. (`error/` and `quarantine/` are
/// compared with the reference, which holds what a workload rejects on
/// purpose.)
pub fn folder_problems(exchange: &Path) -> Vec<String> {
    let mut problems = Vec::new();
    let mut dirs = vec![exchange.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut here = Vec::new();
        for e in entries.flatten() {
            let path = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                dirs.push(path);
                continue;
            }
            here.push(e.file_name().to_string_lossy().into_owned());
        }
        let rel = dir
            .strip_prefix(exchange)
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let depth = dir
            .strip_prefix(exchange)
            .map_or(0, |p| p.components().count());
        for n in &here {
            if n.starts_with('.') || n.contains(".part") || n.ends_with(".tmp") {
                problems.push(format!("{rel}/{n}: temporary file left"));
            } else if depth == 1 {
                problems.push(format!("{rel}/{n}: left in the inbox"));
            } else if rel.ends_with("parked") {
                problems.push(format!("{rel}/{n}: left in parked/"));
            }
        }
        // Pairs: every manifest beside its payload, and back.
        for n in &here {
            if n.starts_with('.') || n.ends_with(".reason") {
                continue;
            }
            if let Some(stem) = n.strip_suffix(".stx") {
                let has_payload = ["csv", "xml"]
                    .iter()
                    .any(|ext| here.contains(&format!("{stem}.{ext}")));
                if !has_payload {
                    problems.push(format!("{rel}/{n}: manifest without its payload here"));
                }
            } else if let Some((stem, ext)) = n.rsplit_once('.')
                && (ext == "csv" || ext == "xml")
                && !here.contains(&format!("{stem}.stx"))
            {
                problems.push(format!("{rel}/{n}: payload without its manifest here"));
            }
        }
    }
    problems.sort();
    problems
}
