//! The manifest parser and verifier (`stxd::format::envelope`) on any
//! bytes, with a fixed secret: the samples' demo key, so that the valid
//! sample manifests authenticate.
//!
//! The input is a manifest, then optionally a NUL byte and a payload. The
//! manifest is checked twice:
//!
//! 1. as it is (`authenticate`): almost every input stops at the layout or
//!    the HMAC, as a forged or altered manifest does;
//! 2. re-signed: when it has an `hmac-sha256: ` line, that line's value is
//!    replaced by the right tag for the bytes before it, so the fuzzer
//!    reaches what only an authenticated manifest meets (the interpretation
//!    of every field, `expect`, `check_payload` against the payload part,
//!    `check_count`).
//!
//! Nothing may panic; every refusal names the manifest or payload file.
#![no_main]

use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::Sha256;
use stxd::format::envelope::{self, Expect, Secret};
use stxd::format::{FormatError, Limits};

const KEY: &[u8] = include_bytes!("../../samples/exchange/demo.key");
const MANIFEST: &str = "fuzz.stx";
const PAYLOAD: &str = "fuzz.payload";

fn check_error(e: &FormatError, file: &str) {
    assert_eq!(e.file, file, "error does not name the file: {e}");
    assert!(!e.code.is_empty() && !e.problem.is_empty(), "{e}");
    let _ = e.to_string();
}

/// `manifest` with the value of its first `hmac-sha256: ` line replaced by
/// the HMAC of everything before that line (as `Manifest::render` signs),
/// keeping what follows the value.
fn resign(manifest: &[u8]) -> Option<Vec<u8>> {
    const KEY_LINE: &[u8] = b"hmac-sha256: ";
    let start = (0..manifest.len())
        .find(|&i| (i == 0 || manifest[i - 1] == b'\n') && manifest[i..].starts_with(KEY_LINE))?;
    let value = start + KEY_LINE.len();
    let end = manifest[value..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(manifest.len(), |p| value + p);
    let mut mac = Hmac::<Sha256>::new_from_slice(KEY).expect("HMAC takes any key");
    mac.update(&manifest[..start]);
    let tag = hex::encode(mac.finalize().into_bytes());
    let mut out = manifest[..value].to_vec();
    out.extend_from_slice(tag.as_bytes());
    out.extend_from_slice(&manifest[end..]);
    Some(out)
}

fn check(manifest: &[u8], payload: &[u8], secret: &Secret) {
    let _ = envelope::peek_link(manifest);
    let m = match envelope::authenticate(manifest, MANIFEST, secret) {
        Ok(m) => m,
        Err(e) => return check_error(&e, MANIFEST),
    };
    // What an authenticated manifest says is rendered back the same way.
    let _ = m.manifest_name();
    let want = Expect {
        link: "opera-tourism",
        sender: "TOURISM",
        recipient: "OPERA",
        login: "TOURISM_OPE@TOURISM",
        kind: None,
    };
    if let Err(e) = m.expect(&want, MANIFEST) {
        check_error(&e, MANIFEST);
    }
    let max = Limits::default().max_file_bytes;
    match envelope::check_payload(&m, &mut &payload[..], PAYLOAD, max) {
        Ok(()) => assert_eq!(payload.len() as u64, m.bytes),
        Err(e) => check_error(&e, PAYLOAD),
    }
    if let Err(e) = envelope::check_count(&m, payload.len() as u64, PAYLOAD) {
        check_error(&e, PAYLOAD);
    }
}

fuzz_target!(|data: &[u8]| {
    let secret = Secret::new(KEY.to_vec());
    let (manifest, payload) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    check(manifest, payload, &secret);
    if let Some(signed) = resign(manifest) {
        check(&signed, payload, &secret);
    }
});
