//! The second week between two servers (issue 13's play): two daemons as in
//! `two_servers.rs` (the manager OPERA an SFTP client of the share the
//! distributor TOURISM's folder is, over a real sshd, then ProFTPD), after
//! the first use: a price change mid-sale (a sale made at the old price
//! before the new catalogue arrived is booked at it, one after at the new
//! price), an invitation (a free tariff), a secret rotation with files
//! flowing both ways across the overlap, a performance closed and one
//! cancelled while the distributor, not told yet, still sells them (one
//! late line accepted, one dismissed), the cancelled performance's tickets
//! refunded in one command. At the end the reconciliation is consistent on
//! both sides, no rejected line is left open, every ticket of the cancelled
//! performance is refunded, and the distributor lists the manager's
//! resolutions.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::servers::Kind;
use crate::two_daemons::{LINK, OPERA, SalesExport, Servers, TOURISM, eventually, json};
use crate::util::Daemon;

on_both_servers!(a_second_week_between_two_servers_ends_consistent);

struct Play<'a> {
    s: &'a Servers,
    logs: [&'a Daemon; 2],
}

impl Play<'_> {
    fn wait(&self, what: &str, done: impl FnMut() -> bool) {
        eventually(what, &self.logs, done);
    }

    /// Waits until the side holding `store` applied `n` files of `kind`.
    fn applied(&self, store: &str, kind: &str, n: i64) {
        let sql = format!(
            "SELECT count(*) FROM file_journal WHERE kind = '{kind}' AND direction = 'in'
              AND state = 'applied'"
        );
        self.wait(&format!("{n} {kind} file(s) applied in {store}"), || {
            self.s.count(store, &sql) >= n
        });
        assert_eq!(self.s.count(store, &sql), n, "{kind} files applied");
    }

    /// Asks the manager's daemon to run `job` (an export).
    fn m_trigger(&self, job: &str) {
        self.s
            .m(&["trigger", job, "--link", LINK, "--wait", "60"])
            .expect_code(0);
    }

    /// Asks the distributor's daemon to send its sales file.
    fn d_send_sales(&self) {
        self.s
            .d(&["trigger", "export-sales", "--link", LINK, "--wait", "60"])
            .expect_code(0);
    }

    /// Sells one place at the distributor; returns (line id, amount).
    fn sell(&self, performance: &str, place: &[&str], tariff: &str, audience: &str) -> (i64, i64) {
        let args = [
            &["--json", "sale", "sell", "--performance", performance][..],
            place,
            &["--tariff", tariff, "--audience", audience],
        ]
        .concat();
        let sold = json(self.s.d(&args).expect_code(0));
        (
            sold["line"]["line"].as_i64().unwrap(),
            sold["line"]["amount"].as_i64().unwrap(),
        )
    }

    /// (line, amount, rate version, state) of the manager's tickets.
    fn tickets(&self) -> Vec<String> {
        self.s.rows(
            OPERA,
            "SELECT line, amount, coalesce(rate_version, 0), state FROM ticket ORDER BY line",
        )
    }

    fn rotate(&self, side: &str, extra: &[&str]) -> Value {
        let args = [
            &["--json", "link", "rotate-secret", "--link", LINK][..],
            extra,
        ]
        .concat();
        let run = if side == "m" {
            self.s.m(&args)
        } else {
            self.s.d(&args)
        };
        json(run.expect_code(0))
    }

    /// The key id of the manifest `name`, wherever it was archived.
    fn key_id_of(&self, name: &str) -> String {
        let found = find(self.s.root(), name)
            .unwrap_or_else(|| panic!("{name}: not found under the sandbox"));
        let relative = found.strip_prefix(self.s.root()).unwrap();
        self.s.key_id(relative.to_str().unwrap())
    }
}

/// The first file named `name` under `dir` (dot-files aside).
fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find(&path, name) {
                return Some(found);
            }
        } else if entry.file_name().to_str() == Some(name) {
            return Some(path);
        }
    }
    None
}

fn name(kind: &str, seq: u32) -> String {
    format!("{LINK}.{kind}.{seq:08}.stx")
}

/// Times are whole seconds and a sale in the second of a state change
/// counts as before it.
fn next_second() {
    std::thread::sleep(std::time::Duration::from_millis(1100));
}

fn a_second_week_between_two_servers_ends_consistent(kind: Kind) {
    let sshd = crate::servers::start(kind);
    let servers = Servers::with(sshd.as_ref(), SalesExport::OnDemand);
    let s = &servers;
    let mut manager = s.daemon("manager.toml");
    let mut distributor = s.daemon("distributor.toml");
    let play = Play {
        s,
        logs: [&manager, &distributor],
    };
    first_use(&play);
    let old_sale = price_change_mid_sale(&play);
    let (old_key, new_key) = rotation_staged_and_promoted_by_the_manager(&play);
    let (late_closed, late_cancelled, cancelled) = late_sales_resolved(&play);
    refunds_of_the_cancelled_performance(&play, &cancelled, late_cancelled);
    // Files crossed the overlap both ways: the manager's catalogue and
    // contingent signed with the new key, the distributor's sales with the
    // old one until it promoted too.
    assert_eq!(play.key_id_of(&name("SALES", 2)), old_key);
    assert_eq!(play.key_id_of(&name("CATALOGUE", 3)), new_key);
    assert_eq!(play.key_id_of(&name("CONTINGENT", 2)), new_key);
    assert_eq!(play.key_id_of(&name("SALES", 4)), new_key);

    for daemon in [&manager, &distributor] {
        daemon.signal(libc::SIGTERM);
    }
    assert_eq!(manager.wait_exit(), Some(0), "{}", manager.log());
    assert_eq!(distributor.wait_exit(), Some(0), "{}", distributor.log());
    the_end(s, old_sale, late_closed, late_cancelled, &cancelled);
}

/// First use #1 to #3 as in `two_servers.rs`: seat plan and catalogue,
/// mappings, validation, then contingents on 1701 (seats and standing
/// places) and 1702 (seats).
fn first_use(p: &Play) {
    let s = p.s;
    p.m_trigger("export-seatplan");
    p.m_trigger("export-catalogue");
    p.wait("seat plan and catalogue parked at the distributor", || {
        s.manifests("share/to-distributor/parked").len() == 2
    });
    s.d(&["mapping", "import", "samples/tourism/mapping.csv"])
        .expect_code(0);
    p.applied(TOURISM, "CATALOGUE", 1);
    s.d(&["catalogue", "validate", "--all"]).expect_code(0);
    s.d(&["catalogue", "assign-profile", "1", "GUICHET"])
        .expect_code(0);
    for (performance, places) in [
        ("1701", ["--seats", "PARTERRE:A:1-10"]),
        ("1701", ["--zone", "FOSSE"]),
        ("1702", ["--seats", "PARTERRE:B:1-6"]),
    ] {
        let mut args = vec![
            "contingent",
            "allocate",
            "--link",
            LINK,
            "--performance",
            performance,
        ];
        args.extend(places);
        if places[0] == "--zone" {
            args.extend(["--quantity", "5"]);
        }
        s.m(&args).expect_code(0);
    }
    p.m_trigger("export-contingent");
    p.applied(TOURISM, "CONTINGENT", 1);
}

/// A:1 sold at 85.00 before the new prices arrive, reported after them:
/// booked at 85.00 in rate table version 1. Then, the new version
/// validated, A:2 at 90.00, an invitation at 0 and three more sales.
/// Returns A:1's line.
fn price_change_mid_sale(p: &Play) -> i64 {
    let s = p.s;
    let (a1, amount) = p.sell("TRAV0115", &["--seat", "PARTERRE:A:1"], "NORMAL", "ADULT");
    assert_eq!(amount, 8500);
    // `samples/payloads/catalogue-price-change.xml`: category 1, full
    // price, adult from 85.00 to 90.00 EUR; reduced, child from 32.50 to
    // free (an invitation).
    s.m(&[
        "load",
        "OPERA",
        "samples/payloads/catalogue-price-change.xml",
    ])
    .expect_code(0);
    assert_eq!(
        s.rows(OPERA, "SELECT version FROM rate_table WHERE id = 1801"),
        ["2"]
    );
    p.m_trigger("export-catalogue");
    p.applied(TOURISM, "CATALOGUE", 2);
    // The changed rate table waits for validation at the distributor; its
    // sale made before keeps its version.
    assert_eq!(
        s.rows(
            TOURISM,
            "SELECT state FROM rate_table WHERE code = 'TRAV-RT'"
        ),
        ["to_validate"]
    );
    assert_eq!(
        s.rows(TOURISM, "SELECT id, amount, rate_version FROM sale_line"),
        [format!("{a1}|8500|1")]
    );
    p.d_send_sales();
    p.applied(OPERA, "SALES", 1);
    assert_eq!(p.tickets(), [format!("{a1}|8500|1|valid")]);

    s.d(&["catalogue", "validate", "--rate-table", "TRAV-RT"])
        .expect_code(0);
    let sold = [
        p.sell("TRAV0115", &["--seat", "PARTERRE:A:2"], "NORMAL", "ADULT"),
        // The invitation.
        p.sell("TRAV0115", &["--seat", "PARTERRE:A:3"], "REDUIT", "CHILD"),
        p.sell("TRAV0115", &["--zone", "FOSSE"], "NORMAL", "ADULT"),
        p.sell("TRAV0117", &["--seat", "PARTERRE:B:1"], "NORMAL", "ADULT"),
        p.sell("TRAV0117", &["--seat", "PARTERRE:B:2"], "REDUIT", "ADULT"),
    ];
    let amounts: Vec<i64> = sold.iter().map(|(_, a)| *a).collect();
    assert_eq!(amounts, [9000, 0, 2500, 9000, 6500]);
    a1
}

/// The manager stages a new secret, the distributor stages the same one,
/// the manager promotes it; the distributor's next sales file, still signed
/// with the old key, is booked. Returns (old key id, new key id).
fn rotation_staged_and_promoted_by_the_manager(p: &Play) -> (String, String) {
    let s = p.s;
    let old = stxd::config::read_secret(&s.root().join("manager/secret.key"))
        .unwrap()
        .key_id();
    let staged = p.rotate("m", &["--stage"]);
    let new = staged["key_id"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    let handover = s.root().join("handover.key");
    std::fs::copy(s.root().join("manager/secret.key.next"), &handover).unwrap();
    set_private(&handover);
    let theirs = p.rotate("d", &["--stage", "--from", handover.to_str().unwrap()]);
    assert_eq!(theirs["key_id"], new.as_str());
    let promoted = p.rotate("m", &[]);
    assert_eq!(promoted["signing"], true, "{promoted}");
    assert_eq!(promoted["previous"]["key_id"], old.as_str(), "{promoted}");

    p.d_send_sales();
    p.applied(OPERA, "SALES", 2);
    assert_eq!(
        s.rows(
            OPERA,
            "SELECT amount, rate_version, state FROM ticket WHERE line > (SELECT min(line) FROM ticket)
              ORDER BY line"
        ),
        ["9000|2|valid", "0|2|valid", "2500|2|valid", "9000|2|valid", "6500|2|valid"]
    );
    (old, new)
}

fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The manager closes 1701 and cancels 1702; the distributor, not told
/// yet, sells one seat of each, both rejected. The manager accepts the late
/// sale of the closed performance and dismisses the one of the cancelled
/// performance; the states and the resolutions reach the distributor.
/// Returns (accepted line, dismissed line, the cancelled performance's
/// lines the distributor must refund).
fn late_sales_resolved(p: &Play) -> (i64, i64, Vec<i64>) {
    let s = p.s;
    let booked_on_1702: Vec<i64> = s
        .rows(
            OPERA,
            "SELECT line FROM ticket WHERE performance = 1702 ORDER BY line",
        )
        .iter()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(booked_on_1702.len(), 2);
    next_second();
    for (verb, performance) in [("close", "TRAV0115"), ("cancel", "TRAV0117")] {
        s.m(&["performance", verb, performance, "--link", LINK])
            .expect_code(0);
    }
    next_second();
    let (closed, _) = p.sell("TRAV0115", &["--seat", "PARTERRE:A:4"], "NORMAL", "ADULT");
    let (cancelled, _) = p.sell("TRAV0117", &["--seat", "PARTERRE:B:3"], "NORMAL", "ADULT");
    p.d_send_sales();
    p.applied(OPERA, "SALES", 3);
    assert_eq!(
        s.rows(
            OPERA,
            "SELECT line, status, code FROM sales_line WHERE status = 'rejected' ORDER BY line"
        ),
        [
            format!("{closed}|rejected|performance-closed"),
            format!("{cancelled}|rejected|performance-cancelled"),
        ]
    );
    // An accepted line on a cancelled performance is refused: it must be
    // dismissed.
    let refused = s.m(&[
        "sales",
        "resolve",
        &cancelled.to_string(),
        "--accept",
        "--reason",
        "the customer insists",
    ]);
    refused.expect_code(1);
    for (line, decision, reason) in [
        (
            closed,
            "--accept",
            "sold at the box office before the doors closed",
        ),
        (
            cancelled,
            "--dismiss",
            "sold after the cancellation: refund the customer",
        ),
    ] {
        s.m(&[
            "sales",
            "resolve",
            &line.to_string(),
            decision,
            "--reason",
            reason,
            "--by",
            "ops",
        ])
        .expect_code(0);
    }
    assert_eq!(
        s.rows(
            OPERA,
            &format!("SELECT amount, state FROM ticket WHERE line = {closed}")
        ),
        ["9000|valid"],
        "the accepted line is booked at the new price"
    );
    // The states travel in the catalogue, the resolutions in the contingent
    // file; the distributor stops selling both at once.
    p.m_trigger("export-catalogue");
    p.m_trigger("export-contingent");
    p.applied(TOURISM, "CATALOGUE", 3);
    p.applied(TOURISM, "CONTINGENT", 2);
    assert_eq!(
        s.rows(
            TOURISM,
            "SELECT code, state FROM performance WHERE code IN ('TRAV0115', 'TRAV0117') ORDER BY code"
        ),
        ["TRAV0115|closed", "TRAV0117|cancelled"]
    );
    for (performance, seat, why) in [
        ("TRAV0115", "PARTERRE:A:5", "it is closed"),
        ("TRAV0117", "PARTERRE:B:4", "it is cancelled"),
    ] {
        let run = s.d(&[
            "sale",
            "sell",
            "--performance",
            performance,
            "--seat",
            seat,
            "--tariff",
            "NORMAL",
            "--audience",
            "ADULT",
        ]);
        run.expect_code(1);
        assert!(
            run.stdout().contains(why),
            "{}{}",
            run.stdout(),
            run.stderr()
        );
    }
    let mut to_refund = booked_on_1702;
    to_refund.push(cancelled);
    (closed, cancelled, to_refund)
}

/// The distributor lists the cancelled performance's tickets and refunds
/// them in one command, having promoted the new secret: the refunds travel
/// signed with it; the refund of the dismissed sale is closed by the
/// manager and the distributor told.
fn refunds_of_the_cancelled_performance(p: &Play, lines: &[i64], dismissed: i64) {
    let s = p.s;
    let listed = json(
        s.d(&[
            "--json",
            "sale",
            "list",
            "--performance",
            "TRAV0117",
            "--to-refund",
        ])
        .expect_code(0),
    );
    let ids: Vec<i64> = listed["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, lines, "{listed:#}");
    // The manager's reconciliation shows the cancelled performance apart:
    // two tickets still to refund, three sales still active at the
    // distributor (the dismissed one included).
    let theirs = s.root().join(TOURISM);
    let report = json(&s.m(&[
        "--json",
        "report",
        "reconcile",
        "--link",
        LINK,
        "--distributor-store",
        theirs.to_str().unwrap(),
    ]));
    assert_eq!(
        report["cancelled"],
        serde_json::json!([{
            "performance": 1702,
            "performance_code": "TRAV0117",
            "cancelled_at": report["cancelled"][0]["cancelled_at"],
            "to_refund": 2,
            "refunded": 0,
            "active_at_distributor": 3,
        }]),
        "{report:#}"
    );
    assert!(
        report["cancelled"][0]["cancelled_at"].is_string(),
        "{report:#}"
    );
    let done = json(
        s.d(&[
            "--json",
            "sale",
            "refund",
            "--performance",
            "TRAV0117",
            "--all",
        ])
        .expect_code(0),
    );
    assert_eq!(done["refunds"].as_array().unwrap().len(), 3, "{done:#}");

    let promoted = p.rotate("d", &[]);
    assert_eq!(promoted["signing"], true, "{promoted}");
    p.d_send_sales();
    p.applied(OPERA, "SALES", 4);
    assert_eq!(
        s.rows(
            OPERA,
            "SELECT line, amount, state FROM ticket WHERE performance = 1702 ORDER BY line"
        ),
        [
            format!("{}|9000|cancelled", lines[0]),
            format!("{}|6500|cancelled", lines[1]),
        ]
    );
    let refund = s.rows(
        TOURISM,
        &format!("SELECT id FROM sale_line WHERE refund_of = {dismissed}"),
    );
    assert_eq!(refund.len(), 1);
    assert_eq!(
        s.rows(
            OPERA,
            &format!(
                "SELECT operation, decision, by_user, code FROM sales_line_resolution
                  WHERE line = {}",
                refund[0]
            )
        ),
        ["REFUND|dismissed|stxd|refund-of-unbooked-sale"]
    );
    // That resolution is told too (a contingent file of one RESOLUTION
    // line: nothing for the distributor to acknowledge).
    p.m_trigger("export-contingent");
    p.applied(TOURISM, "CONTINGENT", 3);
}

/// Both daemons stopped: the reconciliation on each server, with the other
/// side's store, is consistent; nothing is left to resolve or refund; the
/// distributor lists the manager's resolutions; the money adds up.
fn the_end(s: &Servers, old_sale: i64, accepted: i64, dismissed: i64, refunded: &[i64]) {
    let theirs = s.root().join(TOURISM);
    let ours = s.root().join(OPERA);
    let at_manager = json(&s.m(&[
        "--json",
        "report",
        "reconcile",
        "--link",
        LINK,
        "--distributor-store",
        theirs.to_str().unwrap(),
    ]));
    let at_distributor = json(&s.d(&[
        "--json",
        "report",
        "reconcile",
        "--link",
        LINK,
        "--manager-store",
        ours.to_str().unwrap(),
    ]));
    for report in [&at_manager, &at_distributor] {
        assert_eq!(report["consistent"], true, "{report:#}");
        assert_eq!(report["differences"], Value::Array(vec![]), "{report:#}");
        assert_eq!(report["in_flight"], Value::Array(vec![]), "{report:#}");
        let totals = &report["totals"];
        // Sold: A:1, A:2, A:3, FOSSE, B:1, B:2 and the accepted A:4; the
        // two of 1702 refunded; one invitation.
        assert_eq!(totals["manager"]["sold"], 7, "{report:#}");
        assert_eq!(totals["manager"]["refunded"], 2, "{report:#}");
        assert_eq!(totals["manager"]["free"], 1, "{report:#}");
        assert_eq!(totals["distributor"]["free"], 1, "{report:#}");
        let resolved: Vec<&str> = report["resolved"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["code"].as_str().unwrap())
            .collect();
        assert_eq!(resolved.len(), 3, "{report:#}");
        // The cancelled performance apart: every ticket refunded.
        let cancelled = &report["cancelled"];
        assert_eq!(cancelled.as_array().unwrap().len(), 1, "{report:#}");
        assert_eq!(cancelled[0]["performance"], 1702, "{report:#}");
        assert_eq!(cancelled[0]["to_refund"], 0, "{report:#}");
        assert_eq!(cancelled[0]["refunded"], 2, "{report:#}");
        assert_eq!(cancelled[0]["active_at_distributor"], 0, "{report:#}");
    }
    // The pending account: 85.00 at the old price, 90.00 + 0 + 25.00 at
    // the new ones, 90.00 accepted; 1702's two tickets refunded.
    assert_eq!(
        s.count(OPERA, "SELECT sum(amount) FROM pending_account_entry"),
        8500 + 9000 + 2500 + 9000
    );
    assert_eq!(
        s.rows(
            OPERA,
            &format!("SELECT amount, rate_version, state FROM ticket WHERE line = {old_sale}")
        ),
        ["8500|1|valid"]
    );
    let text = s.m(&[
        "report",
        "reconcile",
        "--link",
        LINK,
        "--distributor-store",
        theirs.to_str().unwrap(),
    ]);
    text.expect_code(0);
    assert!(
        text.stdout().contains(
            "cancelled: all-refunded: performance 1702 TRAV0117 cancelled at 20"
        ) && text.stdout().contains(
            "0 ticket(s) still to refund at the manager (2 refunded), 0 sale(s) still active at the distributor"
        ),
        "{}",
        text.stdout()
    );
    // No rejected line left open.
    let rejects = s.m(&["sales", "rejects", "--link", LINK]);
    rejects.expect_code(0);
    assert_eq!(rejects.stdout().lines().count(), 1, "{}", rejects.stdout());
    assert_eq!(
        s.count(
            OPERA,
            "SELECT count(*) FROM sales_line l WHERE l.status = 'rejected' AND NOT EXISTS
               (SELECT 1 FROM sales_line_resolution r WHERE r.link = l.link AND r.line = l.line)"
        ),
        0
    );
    // Every ticket of the cancelled performance refunded, none left to.
    assert_eq!(
        s.count(
            OPERA,
            "SELECT count(*) FROM ticket WHERE performance = 1702 AND state = 'valid'"
        ),
        0
    );
    let none = json(
        s.d(&[
            "--json",
            "sale",
            "list",
            "--performance",
            "TRAV0117",
            "--to-refund",
        ])
        .expect_code(0),
    );
    assert_eq!(none["lines"], Value::Array(vec![]), "{none:#}");
    // The distributor lists the manager's resolutions.
    let disputed = json(
        s.d(&["--json", "sale", "list", "--disputed"])
            .expect_code(0),
    );
    let got: Vec<String> = disputed["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            format!(
                "{}|{}",
                l["id"],
                l["resolution"]["decision"].as_str().unwrap()
            )
        })
        .collect();
    let refund_of_dismissed = s.rows(
        TOURISM,
        &format!("SELECT id FROM sale_line WHERE refund_of = {dismissed}"),
    );
    assert_eq!(
        got,
        [
            format!("{accepted}|accepted"),
            format!("{dismissed}|dismissed"),
            format!("{}|dismissed", refund_of_dismissed[0]),
        ],
        "{disputed:#}"
    );
    assert_eq!(refunded.len(), 3);
    // Nothing went to error/ or quarantine on either side.
    for dir in [
        "share/to-distributor/error",
        "share/to-manager/error",
        "manager/exchange/inbox/error",
    ] {
        assert!(s.manifests(dir).is_empty(), "{dir}: {:?}", s.manifests(dir));
    }
}
