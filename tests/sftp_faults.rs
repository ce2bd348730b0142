//! SFTP faults of the share and its server rather than the network: a
//! server without OpenSSH's extensions, a full share or local disk,
//! permissions and renames denied, password logins, hashed and rotated host
//! keys, another client writing the same name, a payload rewritten by the
//! peer while it is downloaded, and the no-replace rename the push relies
//! on. Each: nothing lost, nothing duplicated, no partial
//! file taken, recovery once the fault clears, and a message that names the
//! fix. The faults of the share log in as a non-root account the test creates
//! ([`Fixture::as_account`]), owning the share as a deployment's account
//! does ([`Fixture::owned`]) unless the test withholds it.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::proftpd::{Options, Proftpd};
use crate::servers::{Account, Kind};
use crate::sftp::{Fixture, bytes, failed, files, moved, names, pair, poll, sha};
use crate::sshd::{keygen, set_mode};
use crate::util::{Daemon, Reach, SftpSides, Tmpfs};

const LINK: &str = "opera-tourism";
const NO_FSYNC: &str = "does not support fsync@openssh.com";

on_both_servers!(
    a_password_login_works_and_a_wrong_or_open_password_file_is_permanent,
    permissions_denied_on_the_share_are_permanent_name_the_fix_and_clear_once_granted,
    a_share_refusing_renames_shows_no_final_name_and_pushes_once_allowed,
    another_client_writing_the_same_name_meanwhile_is_never_overwritten,
    a_payload_rewritten_by_the_peer_while_downloading_is_not_taken_and_is_pulled_whole_once_rewritten,
    a_full_disk_refuses_the_upload_whole_and_the_push_resumes_once_space_is_freed,
    a_full_local_disk_refuses_the_download_whole_and_the_pull_resumes_once_space_is_freed,
    hashed_known_hosts_entries_are_matched_and_still_catch_a_changed_key,
    a_rotated_host_key_is_accepted_while_the_old_one_is_still_listed,
    a_plain_sftp_rename_never_replaces_an_existing_file,
);

/// Asserts that `file` on the share was written by the fixture's account,
/// not by root.
fn written_by_account(f: &Fixture, file: &Path) {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata(file).expect("uploaded file").uid();
    assert_eq!(
        uid,
        f.account().uid,
        "{} owned by uid {uid}",
        file.display()
    );
    assert_ne!(uid, 0);
}

/// The names of a folder that are not dot-names (temporary files).
fn finals(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .collect()
}

#[test]
fn a_server_without_fsync_or_posix_rename_gets_every_file_with_one_warning() {
    let server = Proftpd::start_with(&Options {
        without: vec!["fsync", "posixRename"],
        ..Options::default()
    });
    // Push: the manager is the SFTP client; two pairs, four uploads.
    let sides = SftpSides::new(&server, "manager");
    for kind in ["seatplan", "catalogue"] {
        sides
            .manager(&["export", kind, "--link", LINK])
            .expect_code(0);
    }
    let run = sides.manager(&["poll", "--link", LINK]);
    run.expect_code(0);
    assert_eq!(
        run.stderr().matches(NO_FSYNC).count(),
        1,
        "{}",
        run.stderr()
    );
    assert!(
        run.stderr().contains("remote_fsync = \"required\""),
        "{}",
        run.stderr()
    );
    assert_eq!(files(&sides.share("to-distributor")).len(), 4);
    assert_eq!(files(&sides.client_dir("outbox")), Vec::<String>::new());
    sides
        .distributor(&["process", "--link", LINK])
        .expect_code(0);
    let share = sides.share("to-distributor");
    assert_eq!(files(&share), Vec::<String>::new());
    assert_eq!(files(&share.join("error")), Vec::<String>::new());
    assert_eq!(
        files(&share.join("done")).len() + files(&share.join("parked")).len(),
        4
    );

    // Pull: the distributor is the SFTP client.
    let sides = SftpSides::new(&server, "distributor");
    sides
        .manager(&["export", "seatplan", "--link", LINK])
        .expect_code(0);
    let run = sides.distributor(&["--json", "poll", "--link", LINK]);
    run.expect_code(0);
    assert!(run.stdout().contains("applied"), "{}", run.stdout());
    assert_eq!(
        names(&sides.share("to-distributor")),
        Vec::<String>::new(),
        "pulled and removed"
    );
    assert_eq!(files(&sides.client_dir("inbox").join("done")).len(), 2);
}

#[test]
fn the_daemon_warns_once_per_session_of_a_server_without_fsync() {
    let server = Proftpd::start_with(&Options {
        without: vec!["fsync"],
        ..Options::default()
    });
    let sides = SftpSides::new(&server, "manager");
    let config = sides.root().join("manager.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("\n[daemon]\nscan_seconds = 1\n");
    std::fs::write(&config, text).unwrap();
    let daemon = Daemon::start_args(&sides.sandbox, &["--config", "manager.toml"], "info");
    // Two pushes, one after the other, over the daemon's kept session.
    for (n, kind) in ["seatplan", "catalogue"].into_iter().enumerate() {
        sides
            .manager(&["export", kind, "--link", LINK])
            .expect_code(0);
        daemon.wait_log_n("pair pushed", n + 1);
    }
    let log = daemon.log();
    assert_eq!(log.matches("sftp session opened").count(), 1, "{log}");
    assert_eq!(log.matches(NO_FSYNC).count(), 1, "{log}");
    assert_eq!(files(&sides.share("to-distributor")).len(), 4);
    daemon.signal(libc::SIGTERM);
}

#[test]
fn remote_fsync_required_refuses_a_server_without_it_and_names_the_setting() {
    let server = Proftpd::start_with(&Options {
        without: vec!["fsync"],
        ..Options::default()
    });
    let mut reach = Reach::of(&server);
    reach.extra = "remote_fsync = \"required\"".into();
    let sides = SftpSides::reaching(&reach, "manager");
    sides
        .manager(&["export", "seatplan", "--link", LINK])
        .expect_code(0);
    let outbox = sides.client_dir("outbox");
    let waiting = files(&outbox);
    assert_eq!(waiting.len(), 2);
    let run = sides.manager(&["poll", "--link", LINK]);
    assert_ne!(run.code(), 0, "{}", run.stderr());
    let text = run.stderr();
    assert!(
        text.contains("does not support fsync@openssh.com")
            && text.contains("remote_fsync is \"required\"")
            && text.contains("remote_fsync = \"auto\""),
        "{text}"
    );
    // Nothing under a final name on the share, the pair still waits.
    assert_eq!(finals(&sides.share("to-distributor")), Vec::<String>::new());
    assert_eq!(files(&outbox), waiting);

    // The setting relaxed: the pair goes, with the one warning.
    let config = sides.root().join("manager.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        text.replace("remote_fsync = \"required\"", "remote_fsync = \"auto\""),
    )
    .unwrap();
    let run = sides.manager(&["poll", "--link", LINK]);
    run.expect_code(0);
    assert_eq!(
        run.stderr().matches(NO_FSYNC).count(),
        1,
        "{}",
        run.stderr()
    );
    assert_eq!(names(&sides.share("to-distributor")), {
        let mut w = waiting.clone();
        w.sort();
        w
    });
    sides
        .distributor(&["process", "--link", LINK])
        .expect_code(0);
    assert_eq!(files(&sides.share("to-distributor/done")).len(), 2);
}

#[test]
fn a_full_share_refuses_the_upload_whole_and_the_push_resumes_once_space_is_freed() {
    let mut f = Fixture::owned_on(Box::new(Proftpd::start_with(&Options {
        max_store: Some(1 << 20),
        ..Options::default()
    })));
    let payload = bytes(3 << 20, 5);
    let (p, m) = pair(&f.outbox(), "CONTINGENT", "csv", 1, &payload);
    let remote = f.share("to-distributor");
    for _ in 0..2 {
        let e = failed(poll(&f.good_config()));
        assert!(!e.is_permanent(), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("full or over a quota") && text.contains("free space"),
            "{text}"
        );
        // No partial file at all, the pair still waits.
        assert_eq!(names(&remote), Vec::<String>::new());
        assert_eq!(files(&f.outbox()), vec![p.clone(), m.clone()]);
    }
    f.sshd
        .as_proftpd()
        .expect("proftpd")
        .reconfigure(&Options::default());
    let got = moved(poll(&f.good_config()));
    assert_eq!(got.pushed, vec![m.clone()]);
    assert_eq!(names(&remote), vec![p.clone(), m]);
    assert_eq!(sha(&std::fs::read(remote.join(&p)).unwrap()), sha(&payload));
    written_by_account(&f, &remote.join(&p));
    assert_eq!(files(&f.outbox()), Vec::<String>::new());
}

fn a_password_login_works_and_a_wrong_or_open_password_file_is_permanent(kind: Kind) {
    let account = Account::with_password(Some("s3cret words"));
    let f = Fixture::as_account(crate::servers::start(kind), account);
    f.hand_over_share();
    let file = f.root.path().join("password");
    std::fs::write(&file, "s3cret words\n").unwrap();
    set_mode(&file, 0o600);
    let mut reach = f.reach();
    reach.auth = format!("password_file = \"{}\"", file.display());
    let config = f.config_with(&reach);

    std::fs::write(&file, "wrong\n").unwrap();
    let (_, m) = pair(&f.outbox(), "CONTINGENT", "csv", 1, b"c");
    let e = failed(poll(&config));
    assert!(e.is_permanent(), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("refused the password in {}", file.display())),
        "{e}"
    );
    set_mode(&file, 0o644);
    std::fs::write(&file, "s3cret words\n").unwrap();
    let e = failed(poll(&config));
    assert!(e.is_permanent(), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("chmod 600 {}", file.display())),
        "{e}"
    );
    assert_eq!(names(&f.share("to-distributor")), Vec::<String>::new());

    set_mode(&file, 0o600);
    let got = moved(poll(&config));
    assert_eq!(got.pushed, vec![m.clone()]);
    written_by_account(&f, &f.share("to-distributor").join(&m));
}

fn permissions_denied_on_the_share_are_permanent_name_the_fix_and_clear_once_granted(kind: Kind) {
    // The account may walk to the share; its folders are root's.
    let f = Fixture::as_account(crate::servers::start(kind), Account::create());
    let account = f.account();
    let config = f.good_config();
    let (out, inn) = (f.share("to-distributor"), f.share("to-manager"));
    let (p, m) = pair(&f.outbox(), "CONTINGENT", "csv", 1, b"contingent");
    let (rp, rm) = pair(&inn, "SALES", "csv", 1, b"sales");
    for name in [&rp, &rm] {
        set_mode(&inn.join(name), 0o600);
    }
    let rights = "check the account's rights on the share";

    // Write and read denied: both named, nothing moves, nothing partial.
    let e = failed(poll(&config));
    assert!(e.is_permanent(), "{e}\n{}", f.sshd.log());
    assert!(
        e.to_string().contains("permission denied") && e.to_string().contains(rights),
        "{e}"
    );
    assert_eq!(names(&out), Vec::<String>::new());
    assert_eq!(files(&f.outbox()), vec![p.clone(), m.clone()]);
    assert_eq!(names(&f.inbox()), Vec::<String>::new());
    assert_eq!(names(&inn), vec![rp.clone(), rm.clone()]);

    // Write granted: the push goes; the read is still refused.
    account.owns(&out);
    let e = failed(poll(&config));
    assert!(
        e.is_permanent() && e.to_string().contains("cannot open"),
        "{e}"
    );
    assert_eq!(names(&out), vec![p.clone(), m.clone()]);
    written_by_account(&f, &out.join(&p));
    assert_eq!(files(&f.outbox()), Vec::<String>::new());
    assert_eq!(names(&f.inbox()), Vec::<String>::new());

    // Read granted, delete denied: the pair is taken once, whole, and the
    // originals stay until they can go.
    for name in [&rp, &rm] {
        set_mode(&inn.join(name), 0o644);
    }
    for _ in 0..2 {
        let e = failed(poll(&config));
        assert!(e.is_permanent(), "{e}");
        assert!(
            e.to_string().contains("cannot remove the pulled") && e.to_string().contains(rights),
            "{e}"
        );
        assert_eq!(names(&f.inbox()), vec![rp.clone(), rm.clone()]);
        assert_eq!(names(&inn), vec![rp.clone(), rm.clone()]);
    }
    assert_eq!(std::fs::read(f.inbox().join(&rp)).unwrap(), b"sales");

    // Delete granted: the originals go, the inbox still holds one copy.
    account.owns(&inn);
    let got = moved(poll(&config));
    assert_eq!(got.pulled, vec![rm.clone()]);
    assert_eq!(names(&inn), Vec::<String>::new());
    assert_eq!(names(&f.inbox()), vec![rp, rm]);
}

/// ProFTPD refuses them in the folder (`<Limit RNFR RNTO>`), sshd's
/// sftp-server refuses the requests (`-P rename,posix-rename`): the share's
/// own permissions cannot, since a folder that lets the account create its
/// temporary file lets it rename that file too.
fn a_share_refusing_renames_shows_no_final_name_and_pushes_once_allowed(kind: Kind) {
    let mut f = Fixture::owned(kind);
    let out = f.share("to-distributor");
    f.sshd.refuse_renames(Some(&out));
    let payload = bytes(100_000, 1);
    let (p, m) = pair(&f.outbox(), "CONTINGENT", "csv", 1, &payload);
    let e = failed(poll(&f.good_config()));
    assert!(e.is_permanent(), "{e}");
    assert!(
        e.to_string().contains("rename into place")
            && e.to_string().contains("check the account's rights"),
        "{e}"
    );
    assert_eq!(finals(&out), Vec::<String>::new());
    assert_eq!(files(&f.outbox()), vec![p.clone(), m.clone()]);

    f.sshd.refuse_renames(None);
    let got = moved(poll(&f.good_config()));
    assert_eq!(got.pushed, vec![m.clone()]);
    assert_eq!(names(&out), vec![p.clone(), m]);
    assert_eq!(sha(&std::fs::read(out.join(&p)).unwrap()), sha(&payload));
    written_by_account(&f, &out.join(&p));
}

fn a_full_disk_refuses_the_upload_whole_and_the_push_resumes_once_space_is_freed(kind: Kind) {
    let f = Fixture::owned(kind);
    let remote = f.share("to-distributor");
    let _disk = Tmpfs::mount(&remote, "4m");
    // The small filesystem is the share's folder now: the account's too.
    f.account().owns(&remote);
    // Everything taken but 512 KiB, by a file that is not the link's.
    let filler = remote.join(".filler");
    std::fs::write(&filler, vec![0u8; (4 << 20) - (512 << 10)]).unwrap();
    let payload = bytes(2 << 20, 8);
    let (p, m) = pair(&f.outbox(), "CONTINGENT", "csv", 1, &payload);
    for _ in 0..2 {
        let e = failed(poll(&f.good_config()));
        assert!(!e.is_permanent(), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("full or over a quota") && text.contains("free space"),
            "{text}"
        );
        // Not even a partial temporary file is left to take the space.
        assert_eq!(names(&remote), vec![".filler".to_owned()]);
        assert_eq!(files(&f.outbox()), vec![p.clone(), m.clone()]);
    }
    std::fs::remove_file(&filler).unwrap();
    let got = moved(poll(&f.good_config()));
    assert_eq!(got.pushed, vec![m.clone()]);
    assert_eq!(names(&remote), vec![p.clone(), m]);
    assert_eq!(sha(&std::fs::read(remote.join(&p)).unwrap()), sha(&payload));
    written_by_account(&f, &remote.join(&p));
}

fn a_full_local_disk_refuses_the_download_whole_and_the_pull_resumes_once_space_is_freed(
    kind: Kind,
) {
    let f = Fixture::new(kind);
    let remote = f.share("to-manager");
    let payload = bytes(2 << 20, 5);
    let (p, m) = pair(&remote, "SALES", "csv", 1, &payload);
    let inbox = f.inbox();
    std::fs::create_dir_all(&inbox).unwrap();
    let _disk = Tmpfs::mount(&inbox, "4m");
    // Everything taken but 512 KiB, by a file no listing takes.
    let filler = inbox.join(".filler");
    std::fs::write(&filler, vec![0u8; (4 << 20) - (512 << 10)]).unwrap();
    for _ in 0..2 {
        let e = failed(poll(&f.good_config()));
        assert!(!e.is_permanent(), "{e}");
        let text = e.to_string();
        let download = inbox.join(format!(".{p}.stxd-download"));
        assert!(
            text.contains(&format!(
                "cannot write {}: No space left on device",
                download.display()
            )) && text.contains("check the local folder (space, permissions)"),
            "{text}"
        );
        // Not even a partial download is left to take the space, and the
        // pair is still on the share.
        assert_eq!(files(&inbox), vec![".filler".to_owned()]);
        assert_eq!(names(&remote), vec![p.clone(), m.clone()]);
    }
    std::fs::remove_file(&filler).unwrap();
    let got = moved(poll(&f.good_config()));
    assert_eq!(got.pulled, vec![m.clone()]);
    assert_eq!(files(&inbox), vec![p.clone(), m]);
    assert_eq!(sha(&std::fs::read(inbox.join(&p)).unwrap()), sha(&payload));
    assert_eq!(names(&remote), Vec::<String>::new());
}

fn another_client_writing_the_same_name_meanwhile_is_never_overwritten(kind: Kind) {
    let f = Fixture::owned(kind);
    let remote = f.share("to-distributor");
    let payload = bytes(8 << 20, 3);
    let (p, m) = pair(&f.outbox(), "CONTINGENT", "csv", 1, &payload);
    // The other client: once this side's upload has begun, it places its
    // own file under the same final name (written aside, then linked in
    // without replacing anything).
    let other = {
        let (remote, p) = (remote.clone(), p.clone());
        std::thread::spawn(move || {
            let part = remote.join(format!(".{p}.part"));
            let deadline = Instant::now() + Duration::from_secs(60);
            while !part.exists() {
                assert!(Instant::now() < deadline, "the upload never began");
                std::thread::sleep(Duration::from_millis(1));
            }
            let theirs = remote.join(".theirs.tmp");
            std::fs::write(&theirs, "their bytes").unwrap();
            std::fs::hard_link(&theirs, remote.join(&p))
                .expect("the other client came too late: the upload was already in place");
            std::fs::remove_file(&theirs).unwrap();
        })
    };
    let got = moved(poll(&f.good_config()));
    other.join().expect("the other client");
    assert_eq!(got.pushed, Vec::<String>::new());
    assert_eq!(got.alerts.len(), 1, "{got:?}");
    assert!(
        got.alerts[0].contains("already exists")
            && got.alerts[0].contains("nothing was overwritten")
            && got.alerts[0].contains("compare both with the peer"),
        "{got:?}"
    );
    // Their file intact, no manifest of ours beside it, no temporary file.
    assert_eq!(
        std::fs::read_to_string(remote.join(&p)).unwrap(),
        "their bytes"
    );
    assert_eq!(names(&remote), vec![p.clone()]);
    assert_eq!(files(&f.outbox()), vec![p.clone(), m.clone()]);

    // Once a person settled it with the peer (their file removed), the pair
    // goes whole.
    std::fs::remove_file(remote.join(&p)).unwrap();
    let got = moved(poll(&f.good_config()));
    assert_eq!(got.pushed, vec![m.clone()]);
    assert_eq!(names(&remote), vec![p.clone(), m]);
    assert_eq!(sha(&std::fs::read(remote.join(&p)).unwrap()), sha(&payload));
    written_by_account(&f, &remote.join(&p));
}

fn a_payload_rewritten_by_the_peer_while_downloading_is_not_taken_and_is_pulled_whole_once_rewritten(
    kind: Kind,
) {
    let f = Fixture::new(kind);
    let remote = f.share("to-manager");
    let payload = bytes(64 << 20, 9);
    let (p, m) = pair(&remote, "SALES", "csv", 1, &payload);
    let inbox = f.inbox();
    // The peer: once this side's download has begun, it rewrites the
    // payload in place (truncated, then its first MiB written again), as a
    // tool that does not write aside and rename would.
    let peer = {
        let (remote, inbox, p) = (remote.clone(), inbox.clone(), p.clone());
        let first = payload[..1 << 20].to_vec();
        std::thread::spawn(move || {
            let part = inbox.join(format!(".{p}.stxd-download"));
            let deadline = Instant::now() + Duration::from_secs(60);
            while !part.exists() {
                assert!(Instant::now() < deadline, "the download never began");
                std::thread::sleep(Duration::from_millis(1));
            }
            std::fs::write(remote.join(&p), &first).unwrap();
        })
    };
    let e = failed(poll(&f.good_config()));
    peer.join().expect("the peer");
    assert!(!e.is_permanent(), "{e}");
    let text = e.to_string();
    let listed = payload.len();
    assert!(
        text.contains(&format!(
            "{p} changed while downloading (listed with {listed} bytes, read "
        )) && text.contains("retried at the next poll"),
        "{text}"
    );
    // Nothing of it taken: no partial download, no name in the inbox, the
    // pair left on the share as the peer left it.
    assert_eq!(names(&inbox), Vec::<String>::new());
    assert_eq!(names(&remote), vec![p.clone(), m.clone()]);
    assert_eq!(std::fs::metadata(remote.join(&p)).unwrap().len(), 1 << 20);

    // Once the peer wrote the whole payload again, the pair comes whole.
    std::fs::write(remote.join(&p), &payload).unwrap();
    let got = moved(poll(&f.good_config()));
    assert_eq!(got.pulled, vec![m.clone()]);
    assert_eq!(files(&inbox), vec![p.clone(), m]);
    assert_eq!(sha(&std::fs::read(inbox.join(&p)).unwrap()), sha(&payload));
    assert_eq!(names(&remote), Vec::<String>::new());
}

fn hashed_known_hosts_entries_are_matched_and_still_catch_a_changed_key(kind: Kind) {
    let f = Fixture::owned(kind);
    let hash = |file: &Path| {
        let status = Command::new("ssh-keygen")
            .arg("-q")
            .arg("-H")
            .arg("-f")
            .arg(file)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("ssh-keygen -H");
        assert!(status.success());
        let text = std::fs::read_to_string(file).unwrap();
        assert!(text.starts_with("|1|"), "{text}");
    };
    let hashed = f.root.path().join("hashed_known_hosts");
    std::fs::copy(f.sshd.client_known_hosts(), &hashed).unwrap();
    hash(&hashed);
    let (_, m) = pair(&f.outbox(), "CONTINGENT", "csv", 1, b"c");
    let config = f.config(f.sshd.port(), &f.sshd.client_key(), &hashed);
    assert_eq!(moved(poll(&config)).pushed, vec![m.clone()]);
    written_by_account(&f, &f.share("to-distributor").join(&m));
    // `stxd check` takes a hashed file as naming the server too.
    let report = stxd::app::check(&config).unwrap();
    assert!(
        !report
            .links
            .iter()
            .any(|x| x.object.contains("known_hosts")),
        "{:?}",
        report.links
    );

    let other = f.root.path().join("other_host_key");
    keygen(&other);
    let changed = f.root.path().join("hashed_changed");
    f.sshd
        .write_known_hosts_for(&changed, f.sshd.port(), &other);
    hash(&changed);
    let e = failed(poll(&f.config(
        f.sshd.port(),
        &f.sshd.client_key(),
        &changed,
    )));
    let text = e.to_string();
    assert!(
        e.is_permanent()
            && text.contains("host key changed")
            && text.contains(&changed.display().to_string())
            && text.contains("check with the peer's admin before changing the file"),
        "{text}"
    );
}

fn a_rotated_host_key_is_accepted_while_the_old_one_is_still_listed(kind: Kind) {
    let f = Fixture::owned(kind);
    let old = f.root.path().join("old_ed25519");
    keygen(&old);
    let old_ecdsa = f.root.path().join("old_ecdsa");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ecdsa", "-N", "", "-f"])
        .arg(&old_ecdsa)
        .status()
        .unwrap();
    assert!(status.success());
    let line = |key: &Path| {
        let file = f.root.path().join("one_line");
        f.sshd.write_known_hosts_for(&file, f.sshd.port(), key);
        std::fs::read_to_string(file).unwrap()
    };
    let (old, old_ecdsa, new) = (line(&old), line(&old_ecdsa), line(&f.sshd.host_key()));
    for (i, lines) in [
        [old.clone(), old_ecdsa.clone(), new.clone()],
        [new.clone(), old.clone(), old_ecdsa.clone()],
        [old_ecdsa, new, old],
    ]
    .into_iter()
    .enumerate()
    {
        let file = f.root.path().join(format!("rotated_{i}"));
        std::fs::write(&file, lines.concat()).unwrap();
        let seq = u32::try_from(i).unwrap() + 1;
        let (_, m) = pair(&f.outbox(), "CONTINGENT", "csv", seq, b"c");
        let config = f.config(f.sshd.port(), &f.sshd.client_key(), &file);
        assert_eq!(moved(poll(&config)).pushed, vec![m.clone()], "order {i}");
        written_by_account(&f, &f.share("to-distributor").join(&m));
    }
}

/// What the push relies on instead of `posix-rename@openssh.com`: a plain
/// SFTP rename (protocol 3, as libssh2 speaks it) onto an existing name
/// fails and leaves both files as they were, on both servers.
fn a_plain_sftp_rename_never_replaces_an_existing_file(kind: Kind) {
    let f = Fixture::new(kind);
    let dir = f.share("to-distributor");
    std::fs::write(dir.join("a"), "a").unwrap();
    std::fs::write(dir.join("b"), "b").unwrap();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", f.sshd.port())).unwrap();
    let mut session = ssh2::Session::new().unwrap();
    session.set_tcp_stream(tcp);
    session.handshake().unwrap();
    session
        .userauth_pubkey_file(&f.sshd.user(), None, &f.sshd.client_key(), None)
        .unwrap();
    let sftp = session.sftp().unwrap();
    let result = sftp.rename(&dir.join("a"), &dir.join("b"), None);
    assert!(result.is_err(), "{kind:?}: the rename replaced b");
    assert_eq!(std::fs::read_to_string(dir.join("a")).unwrap(), "a");
    assert_eq!(std::fs::read_to_string(dir.join("b")).unwrap(), "b");
    // Onto a free name it works.
    sftp.rename(&dir.join("a"), &dir.join("c"), None).unwrap();
    assert_eq!(std::fs::read_to_string(dir.join("c")).unwrap(), "a");
}
