//! The envelope end to end: sealed sample files of every kind verify and
//! parse; any single changed byte, in the manifest or the payload, is rejected
//! by verification, before a single record is parsed.

use std::path::Path;

use proptest::prelude::*;
use stxd::format::Limits;
use stxd::format::envelope::Expect;
use stxd::inbound::{self, InboundError};

use crate::util::{seal, test_secret, valid_payloads};

fn expect(kind: stxd::format::Kind) -> Expect<'static> {
    let (sender, recipient) = match kind {
        stxd::format::Kind::Sales => ("TOURISM", "OPERA"),
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

/// Claim + verify only: what runs before any parsing.
fn verify(manifest: &Path, kind: stxd::format::Kind) -> Result<inbound::Verified, InboundError> {
    let limits = Limits::default();
    let claimed = inbound::claim::claim(manifest, &limits)?;
    inbound::verify::verify(claimed, &test_secret(), &expect(kind), &limits)
}

/// Claim, verify and parse every record.
fn read_all(manifest: &Path, kind: stxd::format::Kind) -> Result<u64, InboundError> {
    let verified = verify(manifest, kind)?;
    let mut n = 0;
    for record in inbound::parse::parse(verified, &Limits::default()) {
        record?;
        n += 1;
    }
    Ok(n)
}

/// Counts a payload's records with its own reader, to seal it honestly.
fn count(kind: stxd::format::Kind, bytes: &[u8]) -> u64 {
    use stxd::format::{Kind, catalogue, contingent, sales, seatplan};
    let l = Limits::default();
    match kind {
        Kind::Seatplan => seatplan::Reader::new(bytes, "s", l)
            .map(Result::unwrap)
            .count(),
        Kind::Catalogue => catalogue::Reader::new(bytes, "s", l)
            .map(Result::unwrap)
            .count(),
        Kind::Contingent => contingent::Reader::new(bytes, "s", l)
            .map(Result::unwrap)
            .count(),
        Kind::Sales => sales::Reader::new(bytes, "s", l)
            .map(Result::unwrap)
            .count(),
    }
    .try_into()
    .unwrap()
}

#[test]
fn sealed_samples_verify_and_parse_completely() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (kind, path)) in valid_payloads().into_iter().enumerate() {
        let bytes = std::fs::read(&path).unwrap();
        let n = count(kind, &bytes);
        assert!(n > 0, "{}", path.display());
        let m = seal(dir.path(), &test_secret(), kind, i as u64 + 1, &bytes, n);
        assert_eq!(
            read_all(&dir.path().join(m.manifest_name()), kind).unwrap(),
            n
        );
    }
}

#[test]
fn a_wrong_record_count_is_caught_at_the_end_of_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let (kind, path) = valid_payloads().pop().unwrap();
    let bytes = std::fs::read(path).unwrap();
    let n = count(kind, &bytes);
    let m = seal(dir.path(), &test_secret(), kind, 1, &bytes, n + 1);
    let e = read_all(&dir.path().join(m.manifest_name()), kind).unwrap_err();
    assert_eq!(e.code(), "envelope-count", "{e}");
}

/// A payload of a few MiB (read on a thread of its own by the parse) is
/// verified as a small one: a byte changed at the start, the middle or the
/// end, a payload cut short or made longer, are refused at the same
/// position; an intact one comes back rewound, and parses whole.
#[test]
fn a_large_payload_is_verified_as_a_small_one() {
    use stxd::format::{Kind, Position};
    use stxd::inbound::read_ahead::THREAD_FROM;

    let dir = tempfile::tempdir().unwrap();
    let small = 8 * 1024;
    let big = usize::try_from(THREAD_FROM).unwrap() * 3 + 12_345;
    let mut sequence = 0;
    for bytes in [small, big] {
        let (payload, lines) = crate::util::sales_payload(bytes);
        let len = payload.len();
        let flip = |at: usize| {
            let mut p = payload.clone();
            p[at] ^= 0x01;
            p
        };
        let cases: [(&str, Vec<u8>, &str, Position); 6] = [
            ("the first byte", flip(0), "envelope-digest", Position::File),
            (
                "a middle byte",
                flip(len / 2),
                "envelope-digest",
                Position::File,
            ),
            (
                "the last byte",
                flip(len - 1),
                "envelope-digest",
                Position::File,
            ),
            (
                "one byte less",
                payload[..len - 1].to_vec(),
                "envelope-size",
                Position::byte(len as u64 - 1),
            ),
            (
                "one byte more",
                [&payload[..], b"\n"].concat(),
                "envelope-size",
                Position::byte(len as u64),
            ),
            (
                "half of it",
                payload[..len / 2].to_vec(),
                "envelope-size",
                Position::byte((len / 2) as u64),
            ),
        ];
        // The intact payload sealed as the link's next file.
        let mut sealed = || {
            sequence += 1;
            seal(
                dir.path(),
                &test_secret(),
                Kind::Sales,
                sequence,
                &payload,
                lines,
            )
        };
        for (what, changed, code, position) in cases {
            let m = sealed();
            std::fs::write(dir.path().join(&m.payload), &changed).unwrap();
            let e = verify(&dir.path().join(m.manifest_name()), Kind::Sales).unwrap_err();
            assert_eq!(e.code(), code, "{len} bytes, {what}: {e}");
            assert_eq!(e.position(), Some(&position), "{len} bytes, {what}: {e}");
        }
        let m = sealed();
        assert_eq!(
            read_all(&dir.path().join(m.manifest_name()), Kind::Sales).unwrap(),
            lines,
            "{len} bytes"
        );
    }
}

/// A payload changed after its verification, in place (the handle the
/// stages read sees it), is caught at the end of its parse, whether it was
/// read inline (a small file) or on a thread of its own (from 1 MiB).
#[test]
fn a_payload_changed_between_verification_and_parsing_applies_nothing() {
    use std::io::{Seek, SeekFrom, Write};
    use stxd::format::Kind;
    use stxd::inbound::read_ahead::THREAD_FROM;

    let dir = tempfile::tempdir().unwrap();
    let small = 8 * 1024;
    let big = usize::try_from(THREAD_FROM).unwrap() * 3;
    for (sequence, bytes) in [(1, small), (2, big)] {
        let (payload, lines) = crate::util::sales_payload(bytes);
        let m = seal(
            dir.path(),
            &test_secret(),
            Kind::Sales,
            sequence,
            &payload,
            lines,
        );
        let verified = verify(&dir.path().join(m.manifest_name()), Kind::Sales).unwrap();
        // The last line's amount, 85.00 made 86.00: the file still parses.
        let at = payload.windows(6).rposition(|w| w == b";8500;").unwrap() + 2;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(dir.path().join(&m.payload))
            .unwrap();
        file.seek(SeekFrom::Start(at as u64)).unwrap();
        file.write_all(b"6").unwrap();
        drop(file);
        let mut read = 0;
        let mut errors = Vec::new();
        for record in inbound::parse::parse(verified, &Limits::default()) {
            match record {
                Ok(_) => read += 1,
                Err(e) => errors.push(e.code()),
            }
        }
        assert_eq!(errors, ["changed-while-reading"], "{bytes} bytes");
        assert_eq!(
            read, lines,
            "{bytes} bytes: every line read before the end's check"
        );
    }
}

#[test]
fn a_missing_payload_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (kind, path) = valid_payloads().pop().unwrap();
    let bytes = std::fs::read(path).unwrap();
    let m = seal(
        dir.path(),
        &test_secret(),
        kind,
        1,
        &bytes,
        count(kind, &bytes),
    );
    std::fs::remove_file(dir.path().join(&m.payload)).unwrap();
    let e = verify(&dir.path().join(m.manifest_name()), kind).unwrap_err();
    assert_eq!(e.code(), "missing-payload");
    assert!(e.to_string().contains(&m.payload), "{e}");
}

#[test]
fn a_file_for_another_link_or_of_another_kind_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (kind, path) = valid_payloads().pop().unwrap();
    let bytes = std::fs::read(path).unwrap();
    let m = seal(
        dir.path(),
        &test_secret(),
        kind,
        1,
        &bytes,
        count(kind, &bytes),
    );
    let limits = Limits::default();
    let manifest = dir.path().join(m.manifest_name());
    let claimed = inbound::claim::claim(&manifest, &limits).unwrap();
    let other = Expect {
        kind: Some(stxd::format::Kind::Catalogue),
        ..expect(kind)
    };
    let e = inbound::verify::verify(claimed, &test_secret(), &other, &limits).unwrap_err();
    assert_eq!(e.code(), "envelope-kind");
    let claimed = inbound::claim::claim(&manifest, &limits).unwrap();
    let other = Expect {
        recipient: "TOURISM",
        ..expect(kind)
    };
    let e = inbound::verify::verify(claimed, &test_secret(), &other, &limits).unwrap_err();
    assert_eq!(e.code(), "envelope-recipient");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    /// One random byte changed anywhere in the pair of any kind is rejected
    /// before parsing starts (the store is never reached).
    #[test]
    fn any_single_byte_change_is_rejected_before_parsing(
        which in 0usize..4,
        position in any::<prop::sample::Index>(),
        flip in 1u8..=255,
    ) {
        let (kind, path) = valid_payloads().swap_remove(which);
        let bytes = std::fs::read(&path).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let m = seal(dir.path(), &test_secret(), kind, 1, &bytes, count(kind, &bytes));
        let manifest_path = dir.path().join(m.manifest_name());
        let payload_path = dir.path().join(&m.payload);
        let manifest_len = std::fs::metadata(&manifest_path).unwrap().len() as usize;
        let at = position.index(manifest_len + bytes.len());
        let (target, offset) = if at < manifest_len {
            (&manifest_path, at)
        } else {
            (&payload_path, at - manifest_len)
        };
        let mut content = std::fs::read(target).unwrap();
        content[offset] ^= flip;
        std::fs::write(target, &content).unwrap();
        let result = verify(&manifest_path, kind);
        prop_assert!(result.is_err(), "byte {at} ^ {flip:#04x} of {} passed verification", path.display());
        prop_assert!(result.unwrap_err().is_permanent());
    }
}

/// The manifest's `format-version`: CATALOGUE and SALES are read in
/// versions 1 and 2, SEATPLAN and CONTINGENT in version 1 only; anything
/// else is `envelope-version`.
#[test]
fn format_version_2_is_read_for_catalogue_and_sales_only() {
    use stxd::format::Kind;
    let dir = tempfile::tempdir().unwrap();
    let seal_v = |kind: Kind, sequence: u64, version: u32, bytes: &[u8]| {
        let header = stxd::outbound::Header {
            format_version: version,
            ..crate::util::header(kind, sequence)
        };
        let n = count(kind, bytes);
        stxd::outbound::publish(dir.path(), &header, &test_secret(), |w| {
            w.write_all(bytes)?;
            Ok(n)
        })
        .unwrap()
    };
    let sales_v2 =
        std::fs::read(crate::util::repo().join("samples/payloads/sales-v2.csv")).unwrap();
    let m = seal_v(Kind::Sales, 1, 2, &sales_v2);
    assert_eq!(
        read_all(&dir.path().join(m.manifest_name()), Kind::Sales).unwrap(),
        4 + 2
    );
    let catalogue_v2 =
        std::fs::read(crate::util::repo().join("samples/payloads/catalogue-v2.xml")).unwrap();
    let m = seal_v(Kind::Catalogue, 1, 2, &catalogue_v2);
    assert_eq!(
        read_all(&dir.path().join(m.manifest_name()), Kind::Catalogue).unwrap(),
        50
    );
    let contingent =
        std::fs::read(crate::util::repo().join("samples/payloads/contingent.csv")).unwrap();
    let m = seal_v(Kind::Contingent, 1, 2, &contingent);
    let e = read_all(&dir.path().join(m.manifest_name()), Kind::Contingent).unwrap_err();
    assert_eq!(e.code(), "envelope-version", "{e}");
    let m = seal_v(Kind::Sales, 2, 3, &sales_v2);
    let e = read_all(&dir.path().join(m.manifest_name()), Kind::Sales).unwrap_err();
    assert_eq!(e.code(), "envelope-version", "{e}");
    assert!(
        e.to_string()
            .contains("expected format version 1 to 2 for SALES"),
        "{e}"
    );
}
