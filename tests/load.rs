//! Many links in one daemon: a link with a backlog delays the others by at
//! most one file, because each listing serves the folders in turn.

use std::path::PathBuf;
use std::time::Duration;

use stxd::format::Kind;
use stxd::outbound::publish;

use crate::drop_folders::{SALES_HEADER, count, opera, stop, wait_until};
use crate::util::{Daemon, Sandbox, header};

const LINKS: usize = 100;
const BACKLOG: u64 = 30;

fn link_name(k: usize) -> String {
    if k == 0 {
        "opera-tourism".to_owned()
    } else {
        format!("opera-tourism-{k:03}")
    }
}

/// The demo config with `LINKS - 1` more links between the same two
/// institutions, each on its own folder, all sharing the demo's secret.
fn many_links(sb: &Sandbox) {
    let path = sb.path().join("config/stxd.toml");
    let mut text = std::fs::read_to_string(&path).expect("config");
    for k in 1..LINKS {
        text.push_str(&format!(
            "\n[[link]]\nname = \"{name}\"\nmanager = \"OPERA\"\ndistributor = \"TOURISM\"\n\
             login = \"TOURISM_OPE@TOURISM\"\nsecret_file = \"../var/secrets/opera-tourism.key\"\n\
             transport = {{ kind = \"local\", dir = \"../var/exchange/{name}\" }}\n",
            name = link_name(k)
        ));
    }
    std::fs::write(&path, text).expect("write config");
}

/// Seals an empty SALES file `seq` of link `k` into that link's manager
/// inbox (payload first, manifest last, as `publish` does).
fn drop_sales(sb: &Sandbox, k: usize, seq: u64) -> PathBuf {
    let inbox = sb
        .path()
        .join("var/exchange")
        .join(link_name(k))
        .join("to-manager");
    let mut h = header(Kind::Sales, seq);
    h.link = link_name(k);
    let m = publish(&inbox, &h, &sb.demo_secret(), |w| {
        std::io::Write::write_all(w, SALES_HEADER.as_bytes())?;
        Ok(0)
    })
    .expect("publish");
    inbox.join(m.manifest_name())
}

fn done(sb: &Sandbox, k: usize) -> PathBuf {
    sb.path()
        .join("var/exchange")
        .join(link_name(k))
        .join("to-manager/done")
}

#[test]
fn a_hundred_links_are_served_in_turn_not_behind_one_links_backlog() {
    let sb = Sandbox::new();
    many_links(&sb);
    sb.ready();
    // Waiting before the daemon starts, so that its first listing sees
    // them all: a backlog on the first link, one file on each other link.
    let mut backlog = Vec::new();
    for seq in 1..=BACKLOG {
        backlog.push(drop_sales(&sb, 0, seq));
    }
    let singles: Vec<PathBuf> = (1..LINKS).map(|k| drop_sales(&sb, k, 1)).collect();
    let daemon = Daemon::start(&sb);
    let total = BACKLOG as i64 + LINKS as i64 - 1;
    wait_until(
        "every file applied",
        Duration::from_secs(300),
        &daemon,
        || {
            count(
                &opera(&sb),
                "SELECT count(*) FROM file_journal WHERE direction = 'in' AND state = 'applied'",
            ) == total
        },
    );
    stop(daemon);
    for (k, manifest) in singles.iter().enumerate() {
        let name = manifest.file_name().expect("name");
        assert!(done(&sb, k + 1).join(name).is_file(), "{name:?} in done/");
    }
    // The order they were applied in: each other link's file before the
    // backlog's second one.
    let conn = opera(&sb);
    let mut stmt = conn
        .prepare(
            "SELECT f.link, f.sequence FROM file_journal f JOIN run r ON r.id = f.run_id
              WHERE f.direction = 'in' ORDER BY r.id",
        )
        .expect("prepare");
    let order: Vec<(String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    assert_eq!(order.len() as i64, total);
    let second = order
        .iter()
        .position(|(l, s)| l == "opera-tourism" && *s == 2)
        .expect("backlog's second file applied");
    let last_other = order
        .iter()
        .rposition(|(l, _)| l != "opera-tourism")
        .expect("other links applied");
    assert!(
        last_other < second,
        "another link's file (at {last_other}) waited behind the backlog's second file (at {second}): {order:?}"
    );
    // The backlog itself stays in sequence order.
    let backlog_order: Vec<i64> = order
        .iter()
        .filter(|(l, _)| l == "opera-tourism")
        .map(|(_, s)| *s)
        .collect();
    assert_eq!(backlog_order, (1..=BACKLOG as i64).collect::<Vec<_>>());
    assert_eq!(backlog.len() as u64, BACKLOG);
}
