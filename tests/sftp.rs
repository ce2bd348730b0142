//! The SFTP transport against two real SFTP servers on loopback, OpenSSH's
//! sshd and ProFTPD's `mod_sftp` (each case once per server): push and
//! pull, the pipeline behind them, host-key and login refusals, and network
//! faults injected by a proxy mid-transfer.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use stxd::app::{self, Shares, Synced};
use stxd::config::Config;
use stxd::transport::sftp::Moved;

use crate::servers::{Account, Kind, SftpServer};
use crate::sshd::{Fault, Proxy, free_port, keygen, set_mode};
use crate::util::{Reach, SftpSides, sftp_side_toml};

on_both_servers!(
    a_pushed_pair_lands_under_its_final_names_and_leaves_for_sent,
    a_pulled_pair_lands_in_the_inbox_and_the_remote_original_goes,
    an_exported_seat_plan_travels_over_sftp_and_applies_both_ways,
    unknown_and_changed_host_keys_are_refused,
    a_client_key_the_server_refuses_is_permanent,
    a_key_file_others_can_read_is_refused_before_connecting,
    cuts_mid_download_leave_no_partial_file_and_keep_the_remote_original,
    cuts_mid_upload_never_show_a_partial_final_file,
    a_stalled_connection_times_out_as_a_transient_fault,
    final_names_already_present_are_done_when_equal_and_alerts_otherwise,
    a_kept_share_backs_off_after_a_failure_and_reconnects_when_due,
    a_thousand_pairs_move_in_one_poll_each_way,
    a_missing_remote_dir_is_a_permanent_fault_not_an_empty_share,
    a_pair_that_cannot_be_pushed_does_not_stop_the_pull,
);

const LINK: &str = "opera-tourism";
/// A payload of several SFTP packets and read-ahead windows.
const BIG: usize = 3 * 1024 * 1024 + 12_345;

/// A server, a share folder on it and the client side's folders.
pub(crate) struct Fixture {
    pub(crate) sshd: Box<dyn SftpServer>,
    pub(crate) root: tempfile::TempDir,
    /// The account the client logs in as, when not the server's default
    /// (dropped last: removed once the server stopped).
    account: Option<Account>,
}

impl Fixture {
    pub(crate) fn new(kind: Kind) -> Fixture {
        Fixture::on(crate::servers::start(kind))
    }

    /// The same with a server already started.
    pub(crate) fn on(sshd: Box<dyn SftpServer>) -> Fixture {
        let root = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(root.path().join("share/to-distributor")).unwrap();
        std::fs::create_dir_all(root.path().join("share/to-manager")).unwrap();
        Fixture {
            sshd,
            root,
            account: None,
        }
    }

    /// The client logs in as `account`, a non-root account the test made:
    /// the server admits it and may walk to the share (the folders above
    /// it 0755), whose folders stay root's until [`Fixture::hand_over_share`].
    pub(crate) fn as_account(sshd: Box<dyn SftpServer>, account: Account) -> Fixture {
        let mut f = Fixture::on(sshd);
        f.sshd.admit(&account);
        for dir in [f.root.path().to_owned(), f.root.path().join("share")] {
            set_mode(&dir, 0o755);
        }
        f.account = Some(account);
        f
    }

    /// A deployment's setup: the client logs in as a non-root account made
    /// for the test, which owns the share's folders.
    pub(crate) fn owned(kind: Kind) -> Fixture {
        Fixture::owned_on(crate::servers::start(kind))
    }

    /// The same with a server already started.
    pub(crate) fn owned_on(sshd: Box<dyn SftpServer>) -> Fixture {
        let f = Fixture::as_account(sshd, Account::create());
        f.hand_over_share();
        f
    }

    /// The account the client logs in as (`as_account`, `owned`).
    pub(crate) fn account(&self) -> &Account {
        self.account.as_ref().expect("a fixture with an account")
    }

    /// The share and its folders owned by the fixture's account.
    pub(crate) fn hand_over_share(&self) {
        self.account().owns(&self.root.path().join("share"));
        for folder in ["to-distributor", "to-manager"] {
            self.account().owns(&self.share(folder));
        }
    }

    /// The name the client logs in as.
    pub(crate) fn user(&self) -> String {
        self.account
            .as_ref()
            .map_or_else(|| self.sshd.user(), |a| a.name.clone())
    }

    /// How the client reaches the server: its port, the fixture's account,
    /// the client key and known_hosts.
    pub(crate) fn reach(&self) -> Reach {
        Reach {
            user: self.user(),
            ..Reach::of(self.sshd.as_ref())
        }
    }

    pub(crate) fn share(&self, folder: &str) -> PathBuf {
        self.root.path().join("share").join(folder)
    }

    pub(crate) fn outbox(&self) -> PathBuf {
        self.root.path().join("client/outbox")
    }

    pub(crate) fn inbox(&self) -> PathBuf {
        self.root.path().join("client/inbox")
    }

    /// The manager OPERA as the SFTP client, through `port`.
    pub(crate) fn config(&self, port: u16, key: &Path, known_hosts: &Path) -> Config {
        self.config_with(&Reach {
            port,
            user: self.user(),
            auth: Reach::key(key),
            known_hosts: known_hosts.to_owned(),
            extra: String::new(),
        })
    }

    /// The client's config reaching the server as `reach` says.
    pub(crate) fn config_with(&self, reach: &Reach) -> Config {
        let path = self
            .root
            .path()
            .join(format!("client-{}.toml", crate::util::unique()));
        std::fs::write(
            &path,
            sftp_side_toml(
                self.root.path(),
                "OPERA",
                "manager",
                "",
                reach,
                &self.root.path().join("share"),
                &self.root.path().join("client"),
            ),
        )
        .unwrap();
        stxd::config::load(&path).expect("valid test config")
    }

    /// A known_hosts naming the proxy's port with the server's key.
    fn proxy_known_hosts(&self, proxy: &Proxy) -> PathBuf {
        let file = self
            .root
            .path()
            .join(format!("known_hosts-{}", proxy.port()));
        self.sshd
            .write_known_hosts_for(&file, proxy.port(), &self.sshd.host_key());
        file
    }

    pub(crate) fn good_config(&self) -> Config {
        self.config(
            self.sshd.port(),
            &self.sshd.client_key(),
            &self.sshd.client_known_hosts(),
        )
    }
}

pub(crate) fn bytes(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

pub(crate) fn sha(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Writes a pair (the transport does not read its content) into `dir`.
pub(crate) fn pair(
    dir: &Path,
    kind: &str,
    ext: &str,
    seq: u32,
    payload: &[u8],
) -> (String, String) {
    std::fs::create_dir_all(dir).unwrap();
    let base = format!("{LINK}.{kind}.{seq:08}");
    let (p, m) = (format!("{base}.{ext}"), format!("{base}.stx"));
    std::fs::write(dir.join(&p), payload).unwrap();
    std::fs::write(dir.join(&m), format!("manifest of {base}\n")).unwrap();
    (p, m)
}

pub(crate) fn names(dir: &Path) -> Vec<String> {
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

pub(crate) fn files(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| dir.join(n).is_file())
        .collect()
}

/// The one side's outcome of a one-shot poll.
pub(crate) fn poll(config: &Config) -> Synced {
    let mut report = app::poll(config, LINK).expect("poll");
    assert_eq!(report.sides.len(), 1, "{report:?}");
    report.sides.remove(0).synced
}

#[track_caller]
pub(crate) fn moved(synced: Synced) -> Moved {
    match synced {
        Synced::Moved(m) => m,
        other => panic!("expected a synced share, found {other:?}"),
    }
}

#[track_caller]
pub(crate) fn failed(synced: Synced) -> stxd::transport::sftp::SftpError {
    match synced {
        Synced::Failed(e) => e,
        other => panic!("expected a failed poll, found {other:?}"),
    }
}

fn a_pushed_pair_lands_under_its_final_names_and_leaves_for_sent(kind: Kind) {
    let f = Fixture::new(kind);
    let payload = bytes(BIG, 7);
    let (p, m) = pair(&f.outbox(), "CONTINGENT", "csv", 1, &payload);
    let got = moved(poll(&f.good_config()));
    assert_eq!(got.pushed, vec![m.clone()]);
    assert!(got.alerts.is_empty(), "{got:?}");
    let remote = f.share("to-distributor");
    assert_eq!(names(&remote), vec![p.clone(), m.clone()]);
    assert_eq!(sha(&std::fs::read(remote.join(&p)).unwrap()), sha(&payload));
    assert_eq!(
        std::fs::read(remote.join(&m)).unwrap(),
        std::fs::read(f.outbox().join("sent").join(&m)).unwrap()
    );
    assert_eq!(files(&f.outbox()), Vec::<String>::new());
    assert_eq!(names(&f.outbox().join("sent")), vec![p, m]);
    // Nothing left to do: a second poll moves nothing.
    assert_eq!(moved(poll(&f.good_config())), Moved::default());
}

fn a_pulled_pair_lands_in_the_inbox_and_the_remote_original_goes(kind: Kind) {
    let f = Fixture::new(kind);
    let remote = f.share("to-manager");
    let payload = bytes(BIG, 3);
    let (p, m) = pair(&remote, "SALES", "csv", 1, &payload);
    // Not this side's files, or not finished: all left alone.
    std::fs::write(remote.join(".x.SALES.00000002.csv.part"), "partial").unwrap();
    std::fs::write(remote.join("other.SALES.00000001.stx"), "other link").unwrap();
    std::fs::write(remote.join("other.SALES.00000001.csv"), "other link").unwrap();
    let (lone_payload, _) = pair(&remote, "SALES", "csv", 2, b"x");
    std::fs::remove_file(remote.join(format!("{LINK}.SALES.00000002.stx"))).unwrap();
    let wrong_way = pair(&remote, "CONTINGENT", "csv", 1, b"c");
    // A crash's leftover download goes; a hand copy in progress stays.
    std::fs::create_dir_all(f.inbox()).unwrap();
    std::fs::write(f.inbox().join(format!(".{p}.stxd-download")), "half").unwrap();
    let by_hand = format!(".{LINK}.SALES.00000009.csv.part");
    std::fs::write(f.inbox().join(&by_hand), "copying").unwrap();

    let got = moved(poll(&f.good_config()));
    assert_eq!(got.pulled, vec![m.clone()]);
    assert_eq!(
        files(&f.inbox()),
        vec![by_hand.clone(), p.clone(), m.clone()],
        "the leftover download went, a hand copy in progress is not ours"
    );
    assert_eq!(
        sha(&std::fs::read(f.inbox().join(&p)).unwrap()),
        sha(&payload)
    );
    let mut left = vec![
        ".x.SALES.00000002.csv.part".to_owned(),
        lone_payload,
        wrong_way.0,
        wrong_way.1,
        "other.SALES.00000001.csv".into(),
        "other.SALES.00000001.stx".into(),
    ];
    left.sort();
    assert_eq!(names(&remote), left);
}

fn an_exported_seat_plan_travels_over_sftp_and_applies_both_ways(kind: Kind) {
    let sshd = crate::servers::start(kind);
    for client in ["manager", "distributor"] {
        let sides = SftpSides::new(sshd.as_ref(), client);
        let root = sides.root();
        let share = root.join("share");
        let m = |args: &[&str]| sides.manager(args);
        let d = |args: &[&str]| sides.distributor(args);

        m(&["export", "seatplan", "--link", LINK]).expect_code(0);
        let run = if client == "manager" {
            // The manager pushes; the distributor applies from the share.
            m(&["poll", "--link", LINK]).expect_code(0);
            assert_eq!(
                files(&root.join("client/outbox")),
                Vec::<String>::new(),
                "{client}"
            );
            d(&["process", "--link", LINK])
        } else {
            // The distributor pulls and applies in one go.
            d(&["--json", "poll", "--link", LINK])
        };
        run.expect_code(0);
        assert!(
            run.stdout().contains("applied"),
            "{client}: {}",
            run.stdout()
        );
        assert_eq!(files(&share.join("to-distributor")), Vec::<String>::new());
        let done = if client == "manager" {
            share.join("to-distributor/done")
        } else {
            root.join("client/inbox/done")
        };
        assert_eq!(
            files(&done),
            vec![
                format!("{LINK}.SEATPLAN.00000001.stx"),
                format!("{LINK}.SEATPLAN.00000001.xml")
            ],
            "{client}"
        );
    }
}

fn unknown_and_changed_host_keys_are_refused(kind: Kind) {
    let f = Fixture::new(kind);
    let (_, m) = pair(&f.outbox(), "CONTINGENT", "csv", 1, b"data");
    let empty = f.root.path().join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    let e = failed(poll(&f.config(f.sshd.port(), &f.sshd.client_key(), &empty)));
    assert!(e.is_permanent(), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("is not in") && text.contains("ssh-keyscan -p") && text.contains(LINK),
        "{text}"
    );

    let other = f.root.path().join("other_host_key");
    keygen(&other);
    let changed = f.root.path().join("changed_known_hosts");
    f.sshd
        .write_known_hosts_for(&changed, f.sshd.port(), &other);
    let e = failed(poll(&f.config(
        f.sshd.port(),
        &f.sshd.client_key(),
        &changed,
    )));
    assert!(e.is_permanent(), "{e}");
    assert!(
        e.to_string().contains("host key changed") && e.to_string().contains("man-in-the-middle"),
        "{e}"
    );
    assert!(f.outbox().join(&m).exists());
    assert_eq!(files(&f.share("to-distributor")), Vec::<String>::new());
}

fn a_client_key_the_server_refuses_is_permanent(kind: Kind) {
    let f = Fixture::new(kind);
    let stranger = f.root.path().join("stranger");
    keygen(&stranger);
    let e = failed(poll(&f.config(
        f.sshd.port(),
        &stranger,
        &f.sshd.client_known_hosts(),
    )));
    assert!(e.is_permanent(), "{e}");
    let text = e.to_string();
    assert!(
        text.contains(&format!(
            "{}@127.0.0.1:{} refused",
            f.sshd.user(),
            f.sshd.port()
        )) && text.contains("authorized_keys"),
        "{text}"
    );
}

fn a_key_file_others_can_read_is_refused_before_connecting(kind: Kind) {
    let f = Fixture::new(kind);
    let open = f.root.path().join("open_key");
    std::fs::copy(f.sshd.client_key(), &open).unwrap();
    set_mode(&open, 0o644);
    // Nothing listens on this port: a connection attempt would say so.
    let e = failed(poll(&f.config(
        free_port(),
        &open,
        &f.sshd.client_known_hosts(),
    )));
    assert!(e.is_permanent(), "{e}");
    assert!(
        e.to_string()
            .contains(&format!("chmod 600 {}", open.display())),
        "{e}"
    );
    // `stxd check` (ExecStartPre) says so before the daemon starts, as it
    // does for a known_hosts without the server; a good setup has neither.
    let empty = f.root.path().join("empty_known_hosts");
    std::fs::write(&empty, "").unwrap();
    let report = app::check(&f.config(f.sshd.port(), &open, &empty)).unwrap();
    let problems: Vec<String> = report
        .links
        .iter()
        .filter(|x| x.object.contains("SFTP") || x.object.contains("known_hosts"))
        .map(|x| x.problem.clone())
        .collect();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("chmod 600"), "{problems:?}");
    assert!(problems[1].contains("holds no key for"), "{problems:?}");
    let report = app::check(&f.good_config()).unwrap();
    assert!(
        !report
            .links
            .iter()
            .any(|x| x.object.contains("SFTP") || x.object.contains("known_hosts")),
        "{:?}",
        report.links
    );
}

fn cuts_mid_download_leave_no_partial_file_and_keep_the_remote_original(kind: Kind) {
    let f = Fixture::new(kind);
    let proxy = Proxy::start(f.sshd.port());
    let config = f.config(
        proxy.port(),
        &f.sshd.client_key(),
        &f.proxy_known_hosts(&proxy),
    );
    let remote = f.share("to-manager");
    let payload = bytes(BIG, 9);
    let (p, m) = pair(&remote, "SALES", "csv", 1, &payload);
    for (i, cut) in [3_000u64, 40_000, 700_000, 2_000_000]
        .into_iter()
        .enumerate()
    {
        proxy.set(Fault::CutAfter(cut));
        let e = failed(poll(&config));
        assert!(!e.is_permanent(), "cut at {cut}: {e}");
        assert_eq!(proxy.cuts(), i as u64 + 1, "cut at {cut}");
        assert_eq!(names(&f.inbox()), Vec::<String>::new(), "cut at {cut}");
        assert_eq!(names(&remote), vec![p.clone(), m.clone()], "cut at {cut}");
    }
    // sshd restarted between polls: the next poll reconnects.
    proxy.set(Fault::None);
    let mut sshd = f.sshd;
    sshd.stop();
    let e = failed(poll(&config));
    assert!(!e.is_permanent(), "{e}");
    sshd.resume();
    let got = moved(poll(&config));
    assert_eq!(got.pulled, vec![m.clone()]);
    assert_eq!(
        files(&f.root.path().join("client/inbox")),
        vec![p.clone(), m]
    );
    assert_eq!(
        sha(&std::fs::read(f.root.path().join("client/inbox").join(&p)).unwrap()),
        sha(&payload)
    );
    assert_eq!(names(&remote), Vec::<String>::new());
    drop(sshd);
}

fn cuts_mid_upload_never_show_a_partial_final_file(kind: Kind) {
    let f = Fixture::new(kind);
    let proxy = Proxy::start(f.sshd.port());
    let config = f.config(
        proxy.port(),
        &f.sshd.client_key(),
        &f.proxy_known_hosts(&proxy),
    );
    let payload = bytes(BIG, 11);
    let (p, m) = pair(&f.outbox(), "CONTINGENT", "csv", 1, &payload);
    let remote = f.share("to-distributor");
    for (i, cut) in [3_000u64, 60_000, 900_000, 2_500_000]
        .into_iter()
        .enumerate()
    {
        proxy.set(Fault::CutAfter(cut));
        let e = failed(poll(&config));
        assert!(!e.is_permanent(), "cut at {cut}: {e}");
        assert_eq!(proxy.cuts(), i as u64 + 1, "cut at {cut}");
        // Only our own dot-named temporary file may be there, never a final name.
        let finals: Vec<_> = names(&remote)
            .into_iter()
            .filter(|n| !n.starts_with('.'))
            .collect();
        assert_eq!(finals, Vec::<String>::new(), "cut at {cut}");
        assert_eq!(
            files(&f.outbox()),
            vec![p.clone(), m.clone()],
            "cut at {cut}"
        );
    }
    proxy.set(Fault::None);
    let got = moved(poll(&config));
    assert_eq!(got.pushed, vec![m.clone()]);
    assert_eq!(names(&remote), vec![p.clone(), m]);
    assert_eq!(sha(&std::fs::read(remote.join(&p)).unwrap()), sha(&payload));
    assert_eq!(files(&f.outbox()), Vec::<String>::new());
}

fn a_stalled_connection_times_out_as_a_transient_fault(kind: Kind) {
    let f = Fixture::new(kind);
    let proxy = Proxy::start(f.sshd.port());
    proxy.set(Fault::Stall);
    let known = f.proxy_known_hosts(&proxy);
    let e = failed(poll(&f.config(proxy.port(), &f.sshd.client_key(), &known)));
    assert!(!e.is_permanent(), "{e}");
}

fn final_names_already_present_are_done_when_equal_and_alerts_otherwise(kind: Kind) {
    let f = Fixture::new(kind);
    let remote = f.share("to-distributor");
    // Same bytes already there (a retry after a crash): done.
    let (p1, m1) = pair(&f.outbox(), "CONTINGENT", "csv", 1, b"same");
    std::fs::copy(f.outbox().join(&p1), remote.join(&p1)).unwrap();
    // Other bytes under the payload's name: an alert, nothing overwritten.
    let (p2, m2) = pair(&f.outbox(), "CONTINGENT", "csv", 2, b"ours");
    std::fs::write(remote.join(&p2), "theirs").unwrap();
    // Pull side: the inbox holds other bytes under a pulled name.
    let (p3, m3) = pair(&f.share("to-manager"), "SALES", "csv", 1, b"remote");
    std::fs::create_dir_all(f.inbox()).unwrap();
    std::fs::write(f.inbox().join(&p3), "local").unwrap();

    let got = moved(poll(&f.good_config()));
    assert_eq!(got.pushed, vec![m1.clone()]);
    assert_eq!(got.pulled, Vec::<String>::new());
    assert_eq!(got.alerts.len(), 2, "{got:?}");
    assert!(
        got.alerts[0].contains("already exists")
            && got.alerts[0].contains("nothing was overwritten"),
        "{got:?}"
    );
    assert_eq!(std::fs::read_to_string(remote.join(&p2)).unwrap(), "theirs");
    assert!(!remote.join(&m2).exists());
    assert_eq!(files(&f.outbox()), vec![p2, m2]);
    assert_eq!(names(&remote), {
        let mut v = vec![p1, m1, format!("{LINK}.CONTINGENT.00000002.csv")];
        v.sort();
        v
    });
    assert_eq!(
        std::fs::read_to_string(f.inbox().join(&p3)).unwrap(),
        "local"
    );
    assert_eq!(
        names(&f.share("to-manager")),
        vec![p3, m3],
        "the remote original is kept"
    );
}

fn a_kept_share_backs_off_after_a_failure_and_reconnects_when_due(kind: Kind) {
    let mut f = Fixture::new(kind);
    let config = f.good_config();
    let mut shares = Shares::default();
    let t0 = Instant::now();
    f.sshd.stop();
    let report = app::poll_with(&config, LINK, &mut shares, t0).unwrap();
    assert!(
        matches!(report.sides[0].synced, Synced::Failed(_)),
        "{report:?}"
    );
    let report = app::poll_with(&config, LINK, &mut shares, t0).unwrap();
    assert!(
        matches!(report.sides[0].synced, Synced::Deferred(_)),
        "{report:?}"
    );
    f.sshd.resume();
    let (_, m) = pair(&f.outbox(), "CONTINGENT", "csv", 1, b"later");
    let later = t0 + Duration::from_secs(301);
    let report = app::poll_with(&config, LINK, &mut shares, later).unwrap();
    let Synced::Moved(got) = &report.sides[0].synced else {
        panic!("{report:?}")
    };
    assert_eq!(got.pushed, vec![m]);
    let share = shares.get(LINK, stxd::store::Role::Manager).unwrap();
    assert!(share.connected() && share.failures() == 0);
    // The session is reused by the next poll.
    let report = app::poll_with(&config, LINK, &mut shares, later).unwrap();
    assert!(
        matches!(report.sides[0].synced, Synced::Moved(_)),
        "{report:?}"
    );
}

fn a_thousand_pairs_move_in_one_poll_each_way(kind: Kind) {
    let f = Fixture::new(kind);
    let remote = f.share("to-manager");
    for seq in 1..=1000 {
        pair(
            &remote,
            "SALES",
            "csv",
            seq,
            format!("line {seq}\n").as_bytes(),
        );
        pair(&f.outbox(), "CONTINGENT", "csv", seq, b"c");
    }
    let got = moved(poll(&f.good_config()));
    assert_eq!(got.pulled.len(), 1000);
    assert_eq!(got.pushed.len(), 1000);
    assert!(got.alerts.is_empty(), "{:?}", got.alerts);
    assert_eq!(
        names(&remote),
        Vec::<String>::new(),
        "every original removed"
    );
    assert_eq!(files(&f.inbox()).len(), 2000);
    assert_eq!(
        std::fs::read_to_string(f.inbox().join(format!("{LINK}.SALES.00000777.csv"))).unwrap(),
        "line 777\n"
    );
    assert_eq!(files(&f.share("to-distributor")).len(), 2000);
    assert_eq!(files(&f.outbox()), Vec::<String>::new());
    assert_eq!(files(&f.outbox().join("sent")).len(), 2000);
}

fn a_missing_remote_dir_is_a_permanent_fault_not_an_empty_share(kind: Kind) {
    let f = Fixture::new(kind);
    let config = f.good_config();
    let share = f.root.path().join("share");
    std::fs::remove_dir_all(&share).unwrap();
    let e = failed(poll(&config));
    assert!(e.is_permanent(), "{e}");
    assert!(
        e.to_string().contains("does not exist") && e.to_string().contains("remote_dir"),
        "{e}"
    );
}

fn a_pair_that_cannot_be_pushed_does_not_stop_the_pull(kind: Kind) {
    let f = Fixture::new(kind);
    let (_, incoming) = pair(&f.share("to-manager"), "SALES", "csv", 1, b"line\n");
    // A manifest whose payload is missing from the outbox.
    let (payload, _) = pair(&f.outbox(), "CONTINGENT", "csv", 1, b"c");
    std::fs::remove_file(f.outbox().join(payload)).unwrap();
    let e = failed(poll(&f.good_config()));
    assert!(!e.is_permanent(), "{e}");
    assert!(
        files(&f.inbox()).contains(&incoming),
        "pulled all the same: {:?}",
        files(&f.inbox())
    );
    assert_eq!(names(&f.share("to-manager")), Vec::<String>::new());
}
