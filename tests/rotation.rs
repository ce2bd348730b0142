//! Secret rotation (`stxd link rotate-secret`) between two servers, each
//! with its own config, store and copy of the link's secret, sharing the
//! link's folders: staged on both sides, promoted on one, files signed with
//! either key accepted both ways during the overlap; after it, the old key
//! refused with its key id and the fix, the file in `error/` and the store
//! unchanged, and `stxd check` saying so.

use std::path::{Path, PathBuf};

use crate::util::{Run, Sandbox, local_side_toml, manifests};

struct Sides {
    sb: Sandbox,
}

impl Sides {
    /// The demo link with the manager's files under `m/` and the
    /// distributor's under `d/` (state, secret), both on the folders of
    /// `share/`, the same secret copied to both; first use played.
    fn new() -> Sides {
        let sb = Sandbox::new();
        let root = sb.path();
        let share = root.join("share");
        std::fs::create_dir_all(&share).unwrap();
        let samples = |files: &[&str]| {
            files
                .iter()
                .map(|f| format!("\"{}\"", root.join("samples").join(f).display()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (side, code, role, load) in [
            (
                "m",
                "OPERA",
                "manager",
                samples(&[
                    "opera/seatplan.xml",
                    "opera/catalogue.xml",
                    "opera/setup.toml",
                ]),
            ),
            (
                "d",
                "TOURISM",
                "distributor",
                samples(&["tourism/reference.xml", "tourism/setup.toml"]),
            ),
        ] {
            let dir = root.join(side);
            std::fs::create_dir_all(&dir).unwrap();
            let toml = local_side_toml(&dir, code, role, &load, &share);
            std::fs::write(root.join(format!("{side}.toml")), toml).unwrap();
        }
        stxd::config::generate_secret(&root.join("m/secret.key")).unwrap();
        copy_private(&root.join("m/secret.key"), &root.join("d/secret.key"));
        let sides = Sides { sb };
        sides.m(&["init"]).expect_code(0);
        sides.d(&["init"]).expect_code(0);
        sides
            .d(&["mapping", "import", "samples/tourism/mapping.csv"])
            .expect_code(0);
        sides
            .m(&["export", "seatplan", "--link", "opera-tourism"])
            .expect_code(0);
        sides
            .m(&["export", "catalogue", "--link", "opera-tourism"])
            .expect_code(0);
        sides.d(&["process"]).expect_code(0);
        sides.d(&["catalogue", "validate", "--all"]).expect_code(0);
        sides
            .d(&["catalogue", "assign-profile", "1", "GUICHET"])
            .expect_code(0);
        sides
    }

    fn root(&self) -> &Path {
        self.sb.path()
    }

    fn m(&self, args: &[&str]) -> Run {
        self.sb.stxd(&[&["--config", "m.toml"], args].concat())
    }

    fn d(&self, args: &[&str]) -> Run {
        self.sb.stxd(&[&["--config", "d.toml"], args].concat())
    }

    fn json(run: &Run) -> serde_json::Value {
        run.expect_code(0);
        serde_json::from_str(&run.stdout()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout()))
    }

    fn rotate(&self, side: &str, extra: &[&str]) -> serde_json::Value {
        let args = [
            &["--json", "link", "rotate-secret", "--link", "opera-tourism"],
            extra,
        ]
        .concat();
        Self::json(&if side == "m" {
            self.m(&args)
        } else {
            self.d(&args)
        })
    }

    /// Sells `seat` at the distributor and exports the sales file; returns
    /// the key id its manifest is signed with.
    fn sell_and_send(&self, seat: &str) -> String {
        self.d(&[
            "sale",
            "sell",
            "--performance",
            "1",
            "--tariff",
            "NORMAL",
            "--audience",
            "ADULT",
            "--seat",
            seat,
        ])
        .expect_code(0);
        self.d(&["export", "sales", "--link", "opera-tourism"])
            .expect_code(0);
        self.newest_key_id("to-manager", "SALES")
    }

    /// The key id of the newest manifest of `kind` in `share/<folder>`.
    fn newest_key_id(&self, folder: &str, kind: &str) -> String {
        let dir = self.root().join("share").join(folder);
        let mut names = manifests(&dir, kind);
        names.sort();
        let name = names
            .last()
            .unwrap_or_else(|| panic!("no {kind} in {folder}"));
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("key-id: "))
            .unwrap()
            .to_owned()
    }

    fn tickets(&self) -> i64 {
        let conn =
            rusqlite::Connection::open(self.root().join("m/state-OPERA/OPERA.sqlite")).unwrap();
        conn.query_row("SELECT count(*) FROM ticket", [], |r| r.get(0))
            .unwrap()
    }
}

fn copy_private(from: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::copy(from, to).unwrap();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn key_id(path: &Path) -> String {
    stxd::config::read_secret(path).unwrap().key_id()
}

#[test]
fn a_rotation_on_two_servers_accepts_both_keys_during_the_overlap_then_only_the_new_one() {
    let s = Sides::new();
    let root = s.root().to_owned();
    let old = key_id(&root.join("m/secret.key"));

    // The manager stages a new secret; the distributor stages the same one
    // from the copy it was sent.
    let staged = s.rotate("m", &["--stage"]);
    let new = staged["key_id"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(staged["signing"], false);
    let handover: PathBuf = root.join("handover.key");
    copy_private(&root.join("m/secret.key.next"), &handover);
    let theirs = s.rotate("d", &["--stage", "--from", handover.to_str().unwrap()]);
    assert_eq!(theirs["key_id"], new.as_str());
    let check = s.d(&["check"]);
    check.expect_code(0);
    assert!(check.stdout().contains("staged"), "{}", check.stdout());

    // The manager rotates: it signs with the new key, the distributor
    // (staged) accepts it.
    let rotated = s.rotate("m", &[]);
    assert_eq!(rotated["signing"], true);
    assert_eq!(rotated["previous"]["key_id"], old.as_str());
    s.m(&crate::util::allot_args("PARTERRE:A:1-4"))
        .expect_code(0);
    s.m(&["export", "contingent", "--link", "opera-tourism"])
        .expect_code(0);
    assert_eq!(s.newest_key_id("to-distributor", "CONTINGENT"), new);
    s.d(&["process"]).expect_code(0);

    // The distributor still signs with the old key: accepted in the overlap.
    assert_eq!(s.sell_and_send("PARTERRE:A:1"), old);
    s.m(&["process"]).expect_code(0);
    assert_eq!(s.tickets(), 1);
    let check = s.m(&["check"]);
    check.expect_code(0);
    assert!(
        check.stdout().contains("rotation in progress") && check.stdout().contains(&old),
        "{}",
        check.stdout()
    );

    // Eight days later (the default overlap is 7), a file signed with the
    // old key is refused: error/ with a reason naming the key id and the
    // fix, nothing booked.
    assert_eq!(s.sell_and_send("PARTERRE:A:2"), old);
    let previous = root.join("m/secret.key.previous");
    let eight_days_ago =
        std::time::SystemTime::now() - std::time::Duration::from_secs(8 * 24 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&previous)
        .unwrap()
        .set_modified(eight_days_ago)
        .unwrap();
    s.m(&["process"]).expect_code(1);
    assert_eq!(s.tickets(), 1, "the store is unchanged");
    let error = root.join("share/to-manager/error");
    let refused = manifests(&error, "SALES");
    assert_eq!(refused.len(), 1, "{refused:?}");
    let reason = std::fs::read_to_string(error.join(format!("{}.reason", refused[0]))).unwrap();
    for part in [
        "envelope-key-retired",
        old.as_str(),
        new.as_str(),
        "secret_overlap_days",
        "stxd link rotate-secret",
    ] {
        assert!(reason.contains(part), "{part:?} not in {reason}");
    }
    let check = s.m(&["check"]);
    check.expect_code(0);
    assert!(
        check.stdout().contains("retired since") && check.stdout().contains(&old),
        "{}",
        check.stdout()
    );
    // The fix the reason names: a longer overlap, and the file retried.
    let config = std::fs::read_to_string(root.join("m.toml")).unwrap();
    std::fs::write(
        root.join("m.toml"),
        config.replace("secret_file = ", "secret_overlap_days = 30\nsecret_file = "),
    )
    .unwrap();
    // The overlap runs again: another rotation is refused (exit 1) and
    // changes nothing.
    let again = s.m(&["link", "rotate-secret", "--link", "opera-tourism"]);
    again.expect_code(1);
    assert!(
        again.stderr().contains("rotation is in progress"),
        "{}",
        again.stderr()
    );
    assert!(!root.join("m/secret.key.next").exists());
    s.m(&["retry", "--link", "opera-tourism"]).expect_code(0);
    s.m(&["process"]).expect_code(0);
    assert_eq!(s.tickets(), 2);

    // The distributor rotates too: the manager takes its new-key files.
    s.rotate("d", &[]);
    assert_eq!(s.sell_and_send("PARTERRE:A:3"), new);
    s.m(&["process"]).expect_code(0);
    assert_eq!(s.tickets(), 3);
}

#[test]
fn a_file_signed_with_a_key_not_yet_installed_names_the_rotation_fix() {
    let s = Sides::new();
    // The manager rotates at once, the distributor has nothing staged.
    s.rotate("m", &[]);
    s.m(&crate::util::allot_args("PARTERRE:A:1-2"))
        .expect_code(0);
    s.m(&["export", "contingent", "--link", "opera-tourism"])
        .expect_code(0);
    s.d(&["process"]).expect_code(1);
    let error = s.root().join("share/to-distributor/error");
    let refused = manifests(&error, "CONTINGENT");
    assert_eq!(refused.len(), 1, "{refused:?}");
    let reason = std::fs::read_to_string(error.join(format!("{}.reason", refused[0]))).unwrap();
    assert!(
        reason.contains("envelope-key-id") && reason.contains("rotate-secret --from"),
        "{reason}"
    );
    // Installing the new secret there, then retrying, applies the file.
    let handover = s.root().join("handover.key");
    copy_private(&s.root().join("m/secret.key"), &handover);
    s.rotate("d", &["--from", handover.to_str().unwrap()]);
    s.d(&["retry", "--link", "opera-tourism"]).expect_code(0);
    s.d(&["process"]).expect_code(0);
    assert!(manifests(&error, "CONTINGENT").is_empty());
}

#[test]
fn the_same_slot_demo_rotates_in_one_command() {
    let sb = Sandbox::new();
    sb.first_use_done();
    let before = sb.demo_secret().key_id();
    let done = sb.json(&["link", "rotate-secret", "--link", "opera-tourism"]);
    assert_eq!(done["previous"]["key_id"], before.as_str());
    assert_ne!(sb.demo_secret().key_id(), before);
    sb.allot("PARTERRE:A:1-2");
    sb.stxd(&["export", "contingent", "--link", "opera-tourism"])
        .expect_code(0);
    sb.stxd(&["process"]).expect_code(0);
    sb.sell("PARTERRE:A:1");
    sb.stxd(&["export", "sales", "--link", "opera-tourism"])
        .expect_code(0);
    sb.stxd(&["process"]).expect_code(0);
    // An unknown link is a usage error.
    sb.stxd(&["link", "rotate-secret", "--link", "nope"])
        .expect_code(2);
}

#[test]
fn a_rotation_killed_before_its_last_step_is_finished_by_running_it_again() {
    // Every crash point before the new secret takes the old one's name:
    // placing the staged secret, placing the previous one, their fsyncs,
    // the rename itself.
    for (syscall, nth) in [
        ("linkat", 1),
        ("linkat", 2),
        ("fsync", 1),
        ("fsync", 2),
        ("fsync", 3),
        ("fsync", 4),
        ("fsync", 5),
        ("rename,renameat,renameat2", 1),
    ] {
        let sb = Sandbox::new();
        sb.ready();
        let before = sb.demo_secret().key_id();
        let args = ["link", "rotate-secret", "--link", "opera-tourism"];
        let run = sb.stxd_killed_at(syscall, nth, &args);
        assert!(
            run.killed(),
            "{syscall} #{nth}: not killed: {}",
            run.stderr()
        );
        // The link works as it was (the old secret signs), and says a new
        // one is staged.
        assert_eq!(sb.demo_secret().key_id(), before, "{syscall} #{nth}");
        sb.stxd(&["check"]).expect_code(0);
        let done = sb.json(&args);
        assert_eq!(
            done["previous"]["key_id"],
            before.as_str(),
            "{syscall} #{nth}"
        );
        assert_ne!(sb.demo_secret().key_id(), before, "{syscall} #{nth}");
        let left: Vec<_> = std::fs::read_dir(sb.path().join("var/secrets"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        let mut left = left;
        left.sort();
        assert_eq!(
            left,
            ["opera-tourism.key", "opera-tourism.key.previous"],
            "{syscall} #{nth}"
        );
    }
}
