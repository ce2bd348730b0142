//! `samples/exchange/`: signed pairs an operator can inspect. Valid pairs of
//! every kind verify and parse (sequence 1: format version 1; sequence 2:
//! the payloads of issue 13, CATALOGUE and SALES in format version 2 and a
//! CONTINGENT with `RESOLUTION` lines); each invalid pair is rejected with the code
//! and position in its `expected` file. `STXD_WRITE_SAMPLES=1 cargo test
//! exchange_samples` writes them again (deterministically) from the payload
//! samples.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use stxd::format::envelope::{Expect, Secret};
use stxd::format::{Kind, Limits};
use stxd::inbound::{self, InboundError};

use crate::util::{copy_tree, repo, seal, valid_payloads};

fn exchange() -> PathBuf {
    repo().join("samples/exchange")
}

/// The demo key, as a test reads it (git does not keep the 0600 mode).
fn demo_secret(dir: &Path) -> Secret {
    let key = dir.join("demo.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    stxd::config::read_secret(&key).unwrap()
}

fn expect(kind: Kind) -> Expect<'static> {
    let (sender, recipient) = match kind {
        Kind::Sales => ("TOURISM", "OPERA"),
        _ => ("OPERA", "TOURISM"),
    };
    Expect {
        link: "opera-tourism",
        sender,
        recipient,
        login: "TOURISM_OPE@TOURISM",
        kind: Some(kind),
    }
}

fn read_all(manifest: &Path, kind: Kind, secret: &Secret) -> Result<u64, InboundError> {
    let limits = Limits::default();
    let claimed = inbound::claim::claim(manifest, &limits)?;
    let verified = inbound::verify::verify(claimed, secret, &expect(kind), &limits)?;
    let mut n = 0;
    for record in inbound::parse::parse(verified, &limits) {
        record?;
        n += 1;
    }
    Ok(n)
}

fn records(kind: Kind, bytes: &[u8]) -> u64 {
    use stxd::format::{catalogue, contingent, sales, seatplan};
    let l = Limits::default();
    let n = match kind {
        Kind::Seatplan => seatplan::Reader::new(bytes, "s", l).count(),
        Kind::Catalogue => catalogue::Reader::new(bytes, "s", l).count(),
        Kind::Contingent => contingent::Reader::new(bytes, "s", l).count(),
        Kind::Sales => sales::Reader::new(bytes, "s", l).count(),
    };
    n as u64
}

/// The invalid cases: a name, what to do to a valid SALES pair, the expected code.
type Damage = fn(&Path, &str, &str);

fn cases() -> Vec<(&'static str, Damage)> {
    fn edit(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
        let mut bytes = std::fs::read(path).unwrap();
        f(&mut bytes);
        std::fs::write(path, bytes).unwrap();
    }
    vec![
        ("payload-truncated", |d, _m, p| {
            edit(&d.join(p), |b| b.truncate(b.len() - 10))
        }),
        ("payload-altered", |d, _m, p| {
            edit(&d.join(p), |b| {
                let i = b.len() - 20;
                b[i] = if b[i] == b'1' { b'2' } else { b'1' };
            })
        }),
        ("payload-missing", |d, _m, p| {
            std::fs::remove_file(d.join(p)).unwrap()
        }),
        ("manifest-truncated", |d, m, _p| {
            edit(&d.join(m), |b| b.truncate(b.len() - 30))
        }),
        ("manifest-altered", |d, m, _p| {
            let text = std::fs::read_to_string(d.join(m)).unwrap();
            std::fs::write(d.join(m), text.replace("records: 6", "records: 7")).unwrap();
        }),
    ]
}

/// The second valid pair of each kind that changed in issue 13: (kind,
/// payload sample, manifest format version).
fn second_payloads() -> Vec<(Kind, &'static str, u32)> {
    vec![
        (Kind::Catalogue, "samples/payloads/catalogue-v2.xml", 2),
        (
            Kind::Contingent,
            "samples/payloads/contingent-resolutions.csv",
            1,
        ),
        (Kind::Sales, "samples/payloads/sales-v2.csv", 2),
    ]
}

fn write_samples() {
    let dir = exchange();
    let secret = demo_secret(&dir);
    let valid = dir.join("valid");
    let _ = std::fs::remove_dir_all(&valid);
    for (kind, path) in valid_payloads() {
        let bytes = std::fs::read(path).unwrap();
        seal(&valid, &secret, kind, 1, &bytes, records(kind, &bytes));
    }
    for (kind, path, format_version) in second_payloads() {
        let bytes = std::fs::read(repo().join(path)).unwrap();
        let header = stxd::outbound::Header {
            format_version,
            ..crate::util::header(kind, 2)
        };
        stxd::outbound::publish(&valid, &header, &secret, |w| {
            w.write_all(&bytes)?;
            Ok(records(kind, &bytes))
        })
        .unwrap();
    }
    let invalid = dir.join("invalid");
    let _ = std::fs::remove_dir_all(&invalid);
    let sales = std::fs::read(repo().join("samples/payloads/sales.csv")).unwrap();
    for (name, damage) in cases() {
        let case = invalid.join(name);
        let m = seal(
            &case,
            &secret,
            Kind::Sales,
            1,
            &sales,
            records(Kind::Sales, &sales),
        );
        damage(&case, &m.manifest_name(), &m.payload);
        let e = read_all(&case.join(m.manifest_name()), Kind::Sales, &secret).unwrap_err();
        let InboundError::Rejected(f) = e else {
            panic!("{e}")
        };
        std::fs::write(
            case.join("expected"),
            format!("code: {}\nposition: {}\n", f.code, f.position),
        )
        .unwrap();
    }
    // Signed with another key.
    let case = invalid.join("other-key");
    let other = Secret::new(b"not the demo secret, another link's".to_vec());
    seal(
        &case,
        &other,
        Kind::Sales,
        1,
        &sales,
        records(Kind::Sales, &sales),
    );
    std::fs::write(
        case.join("expected"),
        "code: envelope-key-id\nposition: line 14\n",
    )
    .unwrap();
    // Announces one record more than the payload holds: found at the end of parsing.
    let case = invalid.join("count-mismatch");
    seal(
        &case,
        &secret,
        Kind::Sales,
        1,
        &sales,
        records(Kind::Sales, &sales) + 1,
    );
    std::fs::write(
        case.join("expected"),
        "code: envelope-count\nposition: whole file\n",
    )
    .unwrap();
    // Correctly signed, but addressed to the distributor.
    let case = invalid.join("wrong-recipient");
    std::fs::create_dir_all(&case).unwrap();
    let header = stxd::outbound::Header {
        recipient: "TOURISM".into(),
        ..crate::util::header(Kind::Sales, 1)
    };
    stxd::outbound::publish(&case, &header, &secret, |w| {
        w.write_all(&sales)?;
        Ok(records(Kind::Sales, &sales))
    })
    .unwrap();
    std::fs::write(
        case.join("expected"),
        "code: envelope-recipient\nposition: whole file\n",
    )
    .unwrap();
}

#[test]
fn exchange_samples_verify_or_fail_as_expected() {
    if std::env::var_os("STXD_WRITE_SAMPLES").is_some() {
        write_samples();
    }
    // Work on a copy: the demo key's mode has to be set.
    let tmp = tempfile::tempdir().unwrap();
    copy_tree(&exchange(), tmp.path());
    let secret = demo_secret(tmp.path());

    let mut valid = 0;
    for (kind, _) in valid_payloads() {
        let manifest = tmp
            .path()
            .join(format!("valid/opera-tourism.{kind}.00000001.stx"));
        let n = read_all(&manifest, kind, &secret).unwrap_or_else(|e| panic!("{e}"));
        assert!(n > 0);
        valid += 1;
    }
    assert_eq!(valid, 4);
    for (kind, path, format_version) in second_payloads() {
        let manifest = tmp
            .path()
            .join(format!("valid/opera-tourism.{kind}.00000002.stx"));
        let n = read_all(&manifest, kind, &secret).unwrap_or_else(|e| panic!("{e}"));
        let bytes = std::fs::read(repo().join(path)).unwrap();
        assert_eq!(n, records(kind, &bytes), "{path}");
        let text = std::fs::read_to_string(&manifest).unwrap();
        assert!(
            text.contains(&format!("\nformat-version: {format_version}\n")),
            "{text}"
        );
        // The pair holds the sample byte for byte.
        let ext = if kind == Kind::Catalogue {
            "xml"
        } else {
            "csv"
        };
        let payload = manifest.with_extension(ext);
        assert_eq!(std::fs::read(payload).unwrap(), bytes, "{path}");
    }

    let mut invalid = 0;
    for entry in std::fs::read_dir(tmp.path().join("invalid")).unwrap() {
        let case = entry.unwrap().path();
        let expected = std::fs::read_to_string(case.join("expected")).unwrap();
        let e = read_all(
            &case.join("opera-tourism.SALES.00000001.stx"),
            Kind::Sales,
            &secret,
        )
        .expect_err(&format!("{} accepted", case.display()));
        let InboundError::Rejected(f) = e else {
            panic!("{e}")
        };
        assert_eq!(
            format!("code: {}\nposition: {}\n", f.code, f.position),
            expected,
            "{}",
            case.display()
        );
        invalid += 1;
    }
    assert_eq!(invalid, cases().len() + 3);
}
