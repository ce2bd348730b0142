//! Crash points of the SFTP transport: the real `stxd poll` killed by
//! SIGKILL at each failpoint of a push or a pull (`STXD_FAILPOINT`), against
//! a real SFTP server on loopback (OpenSSH's sshd, then ProFTPD's
//! `mod_sftp`), then run again without it. Whatever the point,
//! the peer gets each pair exactly once under its final names, no pair is
//! left split between the outbox and `sent/`, no orphan stays on the share,
//! the receiver applies the file once and nothing lands in `error/`.
//!
//! The two servers of the demo link share one sandbox ([`SftpSides`]): the
//! SFTP client pushes or pulls; the other side works on the share's folders
//! directly, as the server's own stxd would.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::servers::{Kind, SftpServer};
use crate::util::{Run, SftpSides};

on_both_servers!(
    a_push_killed_after_the_payload_is_renamed_pushes_the_manifest_next_time,
    a_push_killed_after_both_renames_finds_the_pair_on_the_share_by_its_digest,
    a_push_killed_inside_the_move_to_sent_is_finished_by_the_next_poll,
    a_push_killed_inside_the_move_to_sent_is_not_pushed_again_once_the_peer_took_it,
    a_pair_pushed_again_after_the_peer_took_it_applies_nothing_twice,
    a_pull_killed_once_the_pair_is_placed_pulls_it_again_and_applies_it_once,
    a_pull_killed_between_the_two_remote_removals_leaves_a_manifest_the_next_poll_removes,
    a_pair_pulled_again_after_it_was_applied_applies_nothing_twice,
    a_lone_manifest_of_a_pair_already_applied_is_removed_from_what_the_journal_says,
    a_lone_manifest_this_side_never_received_stays_on_the_share,
);

const LINK: &str = "opera-tourism";
const MANIFEST: &str = "opera-tourism.SEATPLAN.00000001.stx";
const PAYLOAD: &str = "opera-tourism.SEATPLAN.00000001.xml";

/// Every entry of a folder (dot-names and folders included), sorted; none
/// when it does not exist.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The regular files of a folder, sorted.
fn files(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| dir.join(n).is_file())
        .collect()
}

fn pair() -> Vec<String> {
    vec![MANIFEST.to_owned(), PAYLOAD.to_owned()]
}

fn nlink(path: &Path) -> u64 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .nlink()
}

#[track_caller]
fn crashed_at(run: &Run, point: &str) {
    assert!(
        run.killed(),
        "expected SIGKILL at {point}; exit code {}\nstdout:\n{}\nstderr:\n{}",
        run.code(),
        run.stdout(),
        run.stderr()
    );
    assert!(
        run.stderr().contains(&format!("failpoint {point}")),
        "{}",
        run.stderr()
    );
}

/// The inbound journal of an institution: (kind, sequence, state) per row.
fn journal_in(sides: &SftpSides, code: &str) -> Vec<(String, i64, String)> {
    let path = sides
        .root()
        .join(format!("state-{code}"))
        .join(format!("{code}.sqlite"));
    let conn = stxd::store::open_read_only(&path).expect("the receiver's store");
    let mut st = conn
        .prepare(
            "SELECT kind, sequence, state FROM file_journal WHERE direction = 'in' ORDER BY id",
        )
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// Seat-plan imports that applied (runs ended ok) in an institution's store.
fn seatplan_imports(sides: &SftpSides, code: &str) -> i64 {
    let path = sides
        .root()
        .join(format!("state-{code}"))
        .join(format!("{code}.sqlite"));
    let conn = stxd::store::open_read_only(&path).expect("the receiver's store");
    conn.query_row(
        "SELECT count(*) FROM run WHERE kind = 'import-seatplan' AND status = 'ok'",
        [],
        |r| r.get(0),
    )
    .unwrap()
}

/// The distributor applied the seat plan once, from wherever it received
/// it (`inbox`, its done/ and error/ below), and nothing went to error/.
#[track_caller]
fn applied_once(sides: &SftpSides, inbox: &Path) {
    assert_eq!(
        journal_in(sides, "TOURISM"),
        vec![("SEATPLAN".to_owned(), 1, "applied".to_owned())]
    );
    assert_eq!(seatplan_imports(sides, "TOURISM"), 1);
    assert_eq!(files(&inbox.join("done")), pair(), "archived once");
    assert_eq!(files(&inbox.join("error")), Vec::<String>::new());
    assert_eq!(files(inbox), Vec::<String>::new());
}

// ---- push: the manager is the SFTP client and pushes its seat plan ----

/// Exports the manager's seat plan, kills its `stxd poll` at `point`, lets
/// `crashed` check what the crash left, runs the poll again and checks the
/// outcome; then the distributor applies the pair from the share. Returns
/// the sides for more checks.
fn push_crash(sshd: &dyn SftpServer, point: &str, crashed: impl FnOnce(&SftpSides)) -> SftpSides {
    let sides = SftpSides::new(sshd, "manager");
    sides
        .manager(&["export", "seatplan", "--link", LINK])
        .expect_code(0);
    let outbox = sides.client_dir("outbox");
    assert_eq!(files(&outbox), pair());
    let sent_bytes: Vec<Vec<u8>> = pair()
        .iter()
        .map(|n| std::fs::read(outbox.join(n)).unwrap())
        .collect();
    let run = sides.client_env(&["poll", "--link", LINK], &[("STXD_FAILPOINT", point)]);
    crashed_at(&run, point);
    crashed(&sides);

    sides.manager(&["poll", "--link", LINK]).expect_code(0);
    let remote = sides.share("to-distributor");
    assert_eq!(names(&remote), pair(), "one copy, final names, no .part");
    assert_eq!(files(&outbox), Vec::<String>::new(), "nothing left behind");
    assert_eq!(files(&outbox.join("sent")), pair(), "not split");
    for (name, bytes) in pair().iter().zip(&sent_bytes) {
        assert_eq!(&std::fs::read(remote.join(name)).unwrap(), bytes, "{name}");
        assert_eq!(
            &std::fs::read(outbox.join("sent").join(name)).unwrap(),
            bytes
        );
        assert_eq!(nlink(&outbox.join("sent").join(name)), 1, "{name}");
    }
    // Nothing more to push.
    sides.manager(&["poll", "--link", LINK]).expect_code(0);
    assert_eq!(names(&remote), pair());

    sides
        .distributor(&["process", "--link", LINK])
        .expect_code(0);
    applied_once(&sides, &remote);
    sides
}

fn a_push_killed_after_the_payload_is_renamed_pushes_the_manifest_next_time(kind: Kind) {
    let sshd = crate::servers::start(kind);
    push_crash(sshd.as_ref(), "sftp.push.payload-renamed", |sides| {
        let remote = sides.share("to-distributor");
        assert_eq!(names(&remote), vec![PAYLOAD.to_owned()]);
        assert_eq!(files(&sides.client_dir("outbox")), pair());
        assert_eq!(
            files(&sides.client_dir("outbox/sent")),
            Vec::<String>::new()
        );
        // The peer never takes a payload without its manifest.
        sides
            .distributor(&["process", "--link", LINK])
            .expect_code(0);
        assert_eq!(names(&remote), vec![PAYLOAD.to_owned()]);
        assert_eq!(journal_in(sides, "TOURISM"), Vec::new());
        // A later attempt killed while uploading the manifest would also
        // leave its temporary file: the next upload replaces it.
        std::fs::write(remote.join(format!(".{MANIFEST}.part")), "half a manif").unwrap();
    });
}

fn a_push_killed_after_both_renames_finds_the_pair_on_the_share_by_its_digest(kind: Kind) {
    let sshd = crate::servers::start(kind);
    push_crash(sshd.as_ref(), "sftp.push.manifest-renamed", |sides| {
        assert_eq!(names(&sides.share("to-distributor")), pair());
        assert_eq!(files(&sides.client_dir("outbox")), pair());
        assert_eq!(
            files(&sides.client_dir("outbox/sent")),
            Vec::<String>::new()
        );
    });
}

fn a_push_killed_inside_the_move_to_sent_is_finished_by_the_next_poll(kind: Kind) {
    let sshd = crate::servers::start(kind);
    push_crash(sshd.as_ref(), "sftp.push.sent-linked", |sides| {
        let outbox = sides.client_dir("outbox");
        assert_eq!(names(&sides.share("to-distributor")), pair());
        assert_eq!(files(&outbox), pair());
        assert_eq!(files(&outbox.join("sent")), pair());
        for name in pair() {
            assert_eq!(nlink(&outbox.join(&name)), 2, "{name}");
        }
    });
}

fn a_push_killed_inside_the_move_to_sent_is_not_pushed_again_once_the_peer_took_it(kind: Kind) {
    let sshd = crate::servers::start(kind);
    let sides = SftpSides::new(sshd.as_ref(), "manager");
    sides
        .manager(&["export", "seatplan", "--link", LINK])
        .expect_code(0);
    let point = "sftp.push.sent-linked";
    let run = sides.client_env(&["poll", "--link", LINK], &[("STXD_FAILPOINT", point)]);
    crashed_at(&run, point);
    // The peer applies the pair and takes it off the share before the
    // manager runs again: the manager must not upload it a second time.
    let remote = sides.share("to-distributor");
    sides
        .distributor(&["process", "--link", LINK])
        .expect_code(0);
    assert_eq!(files(&remote), Vec::<String>::new());

    sides.manager(&["poll", "--link", LINK]).expect_code(0);
    assert_eq!(
        names(&remote),
        vec!["done".to_owned()],
        "nothing pushed again"
    );
    let outbox = sides.client_dir("outbox");
    assert_eq!(files(&outbox), Vec::<String>::new());
    assert_eq!(files(&outbox.join("sent")), pair());
    for name in pair() {
        assert_eq!(nlink(&outbox.join("sent").join(&name)), 1, "{name}");
    }
    applied_once(&sides, &remote);
}

fn a_pair_pushed_again_after_the_peer_took_it_applies_nothing_twice(kind: Kind) {
    // Killed after both renames: nothing local says the push completed, so
    // once the peer has taken the pair the next poll pushes it again. The
    // receiver's journal makes that copy "already applied".
    let sshd = crate::servers::start(kind);
    let sides = SftpSides::new(sshd.as_ref(), "manager");
    sides
        .manager(&["export", "seatplan", "--link", LINK])
        .expect_code(0);
    let point = "sftp.push.manifest-renamed";
    let run = sides.client_env(&["poll", "--link", LINK], &[("STXD_FAILPOINT", point)]);
    crashed_at(&run, point);
    let remote = sides.share("to-distributor");
    sides
        .distributor(&["process", "--link", LINK])
        .expect_code(0);
    applied_once(&sides, &remote);

    sides.manager(&["poll", "--link", LINK]).expect_code(0);
    assert_eq!(files(&remote), pair(), "the same pair, once");
    assert_eq!(files(&sides.client_dir("outbox")), Vec::<String>::new());
    assert_eq!(files(&sides.client_dir("outbox/sent")), pair());
    let run = sides.distributor(&["process", "--link", LINK]);
    run.expect_code(0);
    assert!(run.stdout().contains("already-applied"), "{}", run.stdout());
    applied_once(&sides, &remote);
}

// ---- pull: the distributor is the SFTP client and pulls the seat plan ----

/// The manager (on the share) exports its seat plan; the distributor's
/// `stxd poll` is killed at `point`; `crashed` checks what the crash left;
/// the next poll pulls (or finds) the pair, cleans the share and applies it
/// once.
fn pull_crash(sshd: &dyn SftpServer, point: &str, crashed: impl FnOnce(&SftpSides)) -> SftpSides {
    let sides = SftpSides::new(sshd, "distributor");
    sides
        .manager(&["export", "seatplan", "--link", LINK])
        .expect_code(0);
    let remote = sides.share("to-distributor");
    assert_eq!(files(&remote), pair());
    let run = sides.client_env(&["poll", "--link", LINK], &[("STXD_FAILPOINT", point)]);
    crashed_at(&run, point);
    let inbox = sides.client_dir("inbox");
    assert_eq!(names(&inbox), pair(), "placed whole, no temporary file");
    for name in pair() {
        assert_eq!(nlink(&inbox.join(&name)), 1, "{name}");
    }
    crashed(&sides);

    let run = sides.distributor(&["--json", "poll", "--link", LINK]);
    run.expect_code(0);
    assert_eq!(
        names(&remote),
        Vec::<String>::new(),
        "no orphan on the share"
    );
    applied_once(&sides, &inbox);
    sides
}

fn a_pull_killed_once_the_pair_is_placed_pulls_it_again_and_applies_it_once(kind: Kind) {
    let sshd = crate::servers::start(kind);
    pull_crash(sshd.as_ref(), "sftp.pull.placed", |sides| {
        assert_eq!(names(&sides.share("to-distributor")), pair());
    });
}

fn a_pull_killed_between_the_two_remote_removals_leaves_a_manifest_the_next_poll_removes(
    kind: Kind,
) {
    let sshd = crate::servers::start(kind);
    pull_crash(sshd.as_ref(), "sftp.pull.first-removed", |sides| {
        // Payload removed first: the orphan is a manifest alone, a state
        // the peer's uploads (payload first) never show.
        assert_eq!(
            names(&sides.share("to-distributor")),
            vec![MANIFEST.to_owned()]
        );
    });
}

fn a_pair_pulled_again_after_it_was_applied_applies_nothing_twice(kind: Kind) {
    let sshd = crate::servers::start(kind);
    let sides = SftpSides::new(sshd.as_ref(), "distributor");
    sides
        .manager(&["export", "seatplan", "--link", LINK])
        .expect_code(0);
    let point = "sftp.pull.placed";
    let run = sides.client_env(&["poll", "--link", LINK], &[("STXD_FAILPOINT", point)]);
    crashed_at(&run, point);
    // The local copy is applied and archived before the next poll, which
    // finds the pair still on the share and pulls it again.
    sides
        .distributor(&["process", "--link", LINK])
        .expect_code(0);
    let inbox = sides.client_dir("inbox");
    applied_once(&sides, &inbox);
    assert_eq!(files(&sides.share("to-distributor")), pair());

    let run = sides.distributor(&["poll", "--link", LINK]);
    run.expect_code(0);
    assert!(run.stdout().contains("already-applied"), "{}", run.stdout());
    assert_eq!(names(&sides.share("to-distributor")), Vec::<String>::new());
    applied_once(&sides, &inbox);
}

fn a_lone_manifest_of_a_pair_already_applied_is_removed_from_what_the_journal_says(kind: Kind) {
    let sshd = crate::servers::start(kind);
    let sides = SftpSides::new(sshd.as_ref(), "distributor");
    sides
        .manager(&["export", "seatplan", "--link", LINK])
        .expect_code(0);
    let point = "sftp.pull.first-removed";
    let run = sides.client_env(&["poll", "--link", LINK], &[("STXD_FAILPOINT", point)]);
    crashed_at(&run, point);
    // Applied and archived first: the inbox no longer holds the pair, the
    // journal does.
    sides
        .distributor(&["process", "--link", LINK])
        .expect_code(0);
    let remote = sides.share("to-distributor");
    assert_eq!(names(&remote), vec![MANIFEST.to_owned()]);

    let run = sides.distributor(&["--json", "poll", "--link", LINK]);
    run.expect_code(0);
    let out: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(
        out["transfers"][0]["cleaned"],
        serde_json::json!([MANIFEST]),
        "{out:#}"
    );
    assert_eq!(names(&remote), Vec::<String>::new());
    applied_once(&sides, &sides.client_dir("inbox"));
}

fn a_lone_manifest_this_side_never_received_stays_on_the_share(kind: Kind) {
    let sshd = crate::servers::start(kind);
    let sides = SftpSides::new(sshd.as_ref(), "distributor");
    sides
        .manager(&["export", "seatplan", "--link", LINK])
        .expect_code(0);
    let remote = sides.share("to-distributor");
    std::fs::remove_file(remote.join(PAYLOAD)).unwrap();

    let run = sides.distributor(&["--json", "poll", "--link", LINK]);
    run.expect_code(0);
    let out: serde_json::Value = serde_json::from_str(&run.stdout()).unwrap();
    assert_eq!(
        out["transfers"][0]["cleaned"],
        serde_json::json!([]),
        "{out:#}"
    );
    assert_eq!(names(&remote), vec![MANIFEST.to_owned()]);
    assert_eq!(journal_in(&sides, "TOURISM"), Vec::new());
    assert_eq!(names(&sides.client_dir("inbox")), Vec::<String>::new());
}
