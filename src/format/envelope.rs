//! The envelope: a manifest written beside every payload, last, that makes the
//! file self-describing, complete and authenticated.
//!
//! A Fichier SecuTix file is a pair: the payload (`<base>.xml` or `<base>.csv`,
//! plain XML or CSV any tool opens) and its manifest (`<base>.stx`), where
//! `<base>` is `<link>.<KIND>.<sequence, 8 digits>`. The writer publishes the
//! payload first and the manifest last, so a manifest's presence means "the
//! pair is complete". The manifest is a short UTF-8 text of `key: value` lines
//! in a fixed order; its last line is an HMAC-SHA256, keyed by the link's
//! shared secret, over every byte before that line. Since the manifest holds
//! the payload's size and SHA-256, the HMAC authenticates the payload too.
//!
//! This module renders and checks manifests, and streams a payload through its
//! size and digest check. It does not open files by name, move them, or know
//! the store: the inbound stages do that and call it in the order
//! [`authenticate`] (HMAC first, constant time) → [`Manifest::expect`] (kind,
//! version, link, parties, names) → [`check_payload`] (size, digest); the
//! record count is checked by the payload reader at its end.

use std::io::{self, Read, Write};

use hmac::Mac;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub use super::secret::{RetiredKey, Secret};
use super::{FORMAT_VERSION, FormatError, Kind, Position};

/// Largest manifest accepted, in bytes (a real one is about 500).
pub const MANIFEST_MAX: usize = 4096;
/// Version of the manifest layout itself (the first line).
pub const MANIFEST_VERSION: u32 = 1;
use crate::exchange::FileName;
/// Extension of manifest files.
pub use crate::exchange::MANIFEST_EXT;

/// Buffer size for streaming payloads: a multiple of libssh2's 30,000-byte
/// packets and large enough to keep SHA-256 busy.
pub const STREAM_BUFFER: usize = 240_000;

/// The keys of a manifest, in the order they must appear.
const KEYS: [&str; 15] = [
    "stx-manifest",
    "kind",
    "format-version",
    "link",
    "sender",
    "recipient",
    "login",
    "sequence",
    "created",
    "payload",
    "records",
    "bytes",
    "sha256",
    "key-id",
    "hmac-sha256",
];

/// What a manifest says about its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub kind: Kind,
    pub format_version: u32,
    /// The link's name, e.g. `opera-tourism`.
    pub link: String,
    /// Institution code of the writer.
    pub sender: String,
    /// Institution code of the reader.
    pub recipient: String,
    /// The link's login, `OPERATOR@DISTRIBUTOR` (the manager's external sales
    /// interface login), the same in both directions.
    pub login: String,
    /// Per link and kind, from 1, no gaps.
    pub sequence: u64,
    /// UTC, whole seconds.
    pub created: OffsetDateTime,
    /// The payload's file name.
    pub payload: String,
    /// Records the payload holds, as its reader counts them.
    pub records: u64,
    /// The payload's size in bytes.
    pub bytes: u64,
    pub sha256: [u8; 32],
}

/// What the receiving side expects of a manifest.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    pub link: &'a str,
    pub sender: &'a str,
    pub recipient: &'a str,
    pub login: &'a str,
    /// `None` accepts any kind (inspection).
    pub kind: Option<Kind>,
}

impl Manifest {
    /// The payload's expected name.
    pub fn payload_name(link: &str, kind: Kind, sequence: u64) -> String {
        FileName::payload(link, kind, sequence).to_string()
    }

    /// The manifest's expected name.
    pub fn manifest_name(&self) -> String {
        FileName::manifest(&self.link, self.kind, self.sequence).to_string()
    }

    /// The canonical manifest text, signed with `secret`.
    pub fn render(&self, secret: &Secret) -> String {
        let created = self
            .created
            .replace_nanosecond(0)
            .unwrap_or(self.created)
            .format(&Rfc3339)
            .unwrap_or_default();
        let body = format!(
            "stx-manifest: {MANIFEST_VERSION}\nkind: {}\nformat-version: {}\nlink: {}\nsender: {}\nrecipient: {}\nlogin: {}\nsequence: {}\ncreated: {created}\npayload: {}\nrecords: {}\nbytes: {}\nsha256: {}\nkey-id: {}\n",
            self.kind,
            self.format_version,
            self.link,
            self.sender,
            self.recipient,
            self.login,
            self.sequence,
            self.payload,
            self.records,
            self.bytes,
            hex::encode(self.sha256),
            secret.key_id(),
        );
        let mut mac = secret.mac();
        mac.update(body.as_bytes());
        let tag = hex::encode(mac.finalize().into_bytes());
        format!("{body}hmac-sha256: {tag}\n")
    }

    /// Checks what the receiver expects: kind, version, link, parties and the
    /// names. Call after [`authenticate`]; `manifest_file` is the manifest's
    /// own file name.
    pub fn expect(&self, want: &Expect<'_>, manifest_file: &str) -> Result<(), FormatError> {
        let err = |code, problem: String| {
            Err(FormatError::new(
                manifest_file,
                Position::File,
                code,
                problem,
            ))
        };
        let max = super::max_format_version(self.kind);
        if !(FORMAT_VERSION..=max).contains(&self.format_version) {
            return err(
                "envelope-version",
                format!(
                    "expected format version {FORMAT_VERSION} to {max} for {}, found {}: upgrade stxd on this side or ask the sender to write version {max} at most",
                    self.kind.as_str(),
                    self.format_version
                ),
            );
        }
        if let Some(kind) = want.kind
            && self.kind != kind
        {
            return err(
                "envelope-kind",
                format!("expected a {kind} file, found {}", self.kind),
            );
        }
        for (code, what, expected, found) in [
            ("envelope-link", "link", want.link, &self.link),
            (
                "envelope-recipient",
                "recipient",
                want.recipient,
                &self.recipient,
            ),
            ("envelope-sender", "sender", want.sender, &self.sender),
            ("envelope-login", "login", want.login, &self.login),
        ] {
            if expected != found {
                return err(
                    code,
                    format!("expected {what} {expected:?}, found {found:?}"),
                );
            }
        }
        let payload = Self::payload_name(&self.link, self.kind, self.sequence);
        if self.payload != payload {
            return err(
                "envelope-name",
                format!(
                    "expected payload name {payload:?}, found {:?}",
                    self.payload
                ),
            );
        }
        let name = self.manifest_name();
        if file_name(manifest_file) != name {
            return err(
                "envelope-name",
                format!(
                    "expected the manifest to be named {name:?} (from its link, kind and sequence), found {:?}",
                    file_name(manifest_file)
                ),
            );
        }
        Ok(())
    }
}

/// Decodes lower-case hex only, so every manifest has one spelling.
fn lower_hex(s: &str) -> Option<Vec<u8>> {
    if s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        hex::decode(s).ok()
    } else {
        None
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Reads the `link:` line of a manifest without authenticating it, to choose
/// the secret to authenticate it with (inspection of a file found anywhere).
pub fn peek_link(manifest: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(manifest.get(..MANIFEST_MAX.min(manifest.len()))?).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("link: "))
        .map(str::to_owned)
}

/// Authenticates a manifest and parses it. The HMAC is checked (in constant
/// time) before any field is interpreted; `file` names the manifest in errors.
pub fn authenticate(manifest: &[u8], file: &str, secret: &Secret) -> Result<Manifest, FormatError> {
    let at_line = |line: usize, code: &'static str, problem: String| {
        FormatError::new(file, Position::line(line as u64), code, problem)
    };
    let (values, signed_len) = layout(manifest, file, &at_line)?;
    check_hmac(manifest, &values, signed_len, secret, &at_line)?;
    interpret(&values, &at_line)
}

/// Checks the manifest's layout, not its values: size, ASCII text ending
/// with a line break, one `key: value` line per key of [`KEYS`], in order.
/// Returns the values and the length of the signed part (everything before
/// the hmac-sha256 line).
fn layout<'m>(
    manifest: &'m [u8],
    file: &str,
    at_line: &dyn Fn(usize, &'static str, String) -> FormatError,
) -> Result<(Vec<&'m str>, usize), FormatError> {
    if manifest.is_empty() {
        return Err(FormatError::new(
            file,
            Position::File,
            "envelope-empty",
            "expected a manifest, found an empty file",
        ));
    }
    if manifest.len() > MANIFEST_MAX {
        return Err(FormatError::new(
            file,
            Position::File,
            "envelope-too-large",
            format!(
                "expected a manifest of at most {MANIFEST_MAX} bytes, found {} bytes",
                manifest.len()
            ),
        ));
    }
    let text = std::str::from_utf8(manifest).map_err(|e| {
        FormatError::new(
            file,
            Position::byte(e.valid_up_to() as u64),
            "envelope-syntax",
            "expected ASCII text, found invalid UTF-8",
        )
    })?;
    if !text.ends_with('\n') {
        return Err(at_line(
            text.lines().count(),
            "envelope-truncated",
            "expected the manifest to end with a line break after its hmac-sha256 line: the manifest is truncated".into(),
        ));
    }
    // Split into `key: value` lines; check the layout, not the values yet.
    let mut values: Vec<&str> = Vec::with_capacity(KEYS.len());
    let mut signed_len = 0usize;
    for (i, line) in text.split_terminator('\n').enumerate() {
        let n = i + 1;
        let Some(&key) = KEYS.get(i) else {
            return Err(at_line(
                n,
                "envelope-syntax",
                format!(
                    "expected the manifest to end after hmac-sha256, found {:?}",
                    crate::ident::shorten(line)
                ),
            ));
        };
        if line.contains('\r') || !line.is_ascii() || line.chars().any(char::is_control) {
            return Err(at_line(
                n,
                "envelope-syntax",
                "expected printable ASCII with LF line ends".into(),
            ));
        }
        let Some(value) = line.strip_prefix(key).and_then(|r| r.strip_prefix(": ")) else {
            return Err(at_line(
                n,
                "envelope-syntax",
                format!(
                    "expected \"{key}: …\", found {:?}",
                    crate::ident::shorten(line)
                ),
            ));
        };
        if value.is_empty() || value.trim() != value {
            return Err(at_line(
                n,
                "envelope-syntax",
                format!("expected a value for {key} without surrounding spaces"),
            ));
        }
        if key == "hmac-sha256" {
            signed_len = text.len() - line.len() - 1;
        }
        values.push(value);
    }
    if values.len() != KEYS.len() {
        return Err(at_line(
            values.len() + 1,
            "envelope-truncated",
            format!(
                "expected \"{}: …\", found the end of the manifest: the manifest is truncated",
                KEYS[values.len()]
            ),
        ));
    }
    Ok((values, signed_len))
}

/// Checks the key id, then the HMAC of the signed part, before anything
/// else of the manifest is trusted.
fn check_hmac(
    manifest: &[u8],
    values: &[&str],
    signed_len: usize,
    secret: &Secret,
    at_line: &dyn Fn(usize, &'static str, String) -> FormatError,
) -> Result<(), FormatError> {
    // Key id, then the HMAC, before trusting anything else.
    let hmac_line = KEYS.len();
    let (key_id, tag) = (values[13], values[14]);
    let tag = match lower_hex(tag) {
        Some(t) if t.len() == 32 => t,
        _ => {
            return Err(at_line(
                hmac_line,
                "envelope-syntax",
                "expected hmac-sha256 to be 64 hexadecimal digits (the manifest may be truncated)"
                    .into(),
            ));
        }
    };
    let Some(key) = secret.key_with_id(key_id) else {
        if let Some(old) = secret.retired_key(key_id) {
            return Err(at_line(
                hmac_line - 1,
                "envelope-key-retired",
                format!(
                    "signed with key {key_id:?}, a retired secret of this link: {}",
                    old.why
                ),
            ));
        }
        let also = secret.accepted_key_ids();
        let accepted = if also.is_empty() {
            format!("this link's secret has key id {:?}", secret.key_id())
        } else {
            format!(
                "this link accepts key ids {:?} (its secret) and {} (a secret rotation in progress)",
                secret.key_id(),
                also.iter()
                    .map(|id| format!("{id:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        return Err(at_line(
            hmac_line - 1,
            "envelope-key-id",
            format!(
                "signed with key {key_id:?}, but {accepted}: check that both sides use the same shared secret (the virtual operator's password); if the peer rotated it, install the new one here with stxd link rotate-secret --from FILE, then stxd retry this file"
            ),
        ));
    };
    let mut mac = key.mac();
    mac.update(&manifest[..signed_len]);
    if mac.verify_slice(&tag).is_err() {
        return Err(at_line(
            hmac_line,
            "envelope-hmac",
            "the HMAC does not match the manifest: it was altered, or not written by this link's peer"
                .into(),
        ));
    }
    Ok(())
}

/// Interprets the fields of an authenticated manifest.
fn interpret(
    values: &[&str],
    at_line: &dyn Fn(usize, &'static str, String) -> FormatError,
) -> Result<Manifest, FormatError> {
    // Authenticated: interpret the fields.
    let number = |i: usize| -> Result<u64, FormatError> {
        let v = values[i];
        let ok = v.bytes().all(|b| b.is_ascii_digit()) && (v == "0" || !v.starts_with('0'));
        ok.then(|| v.parse::<u64>().ok()).flatten().ok_or_else(|| {
            at_line(
                i + 1,
                "envelope-syntax",
                format!("expected {} to be a whole number, found {v:?}", KEYS[i]),
            )
        })
    };
    let manifest_version = number(0)?;
    if manifest_version != u64::from(MANIFEST_VERSION) {
        return Err(at_line(
            1,
            "envelope-version",
            format!("expected manifest version {MANIFEST_VERSION}, found {manifest_version}"),
        ));
    }
    let kind: Kind = values[1]
        .parse()
        .map_err(|e: crate::exchange::Unknown| at_line(2, "envelope-kind", e.to_string()))?;
    let format_version = u32::try_from(number(2)?).unwrap_or(u32::MAX);
    let sequence = number(7)?;
    if sequence == 0 {
        return Err(at_line(
            8,
            "envelope-syntax",
            "expected sequence ≥ 1, found 0".into(),
        ));
    }
    let created = OffsetDateTime::parse(values[8], &Rfc3339)
        .ok()
        .filter(|t| t.offset().is_utc() && t.nanosecond() == 0)
        .ok_or_else(|| {
            at_line(
                9,
                "envelope-syntax",
                format!("expected created as UTC RFC 3339 with whole seconds (2026-11-28T15:20:00Z), found {:?}", values[8]),
            )
        })?;
    let sha256: [u8; 32] = lower_hex(values[12])
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| {
            at_line(
                13,
                "envelope-syntax",
                "expected sha256 to be 64 hexadecimal digits".into(),
            )
        })?;
    Ok(Manifest {
        kind,
        format_version,
        link: values[3].to_owned(),
        sender: values[4].to_owned(),
        recipient: values[5].to_owned(),
        login: values[6].to_owned(),
        sequence,
        created,
        payload: values[9].to_owned(),
        records: number(10)?,
        bytes: number(11)?,
        sha256,
    })
}

/// Streams a payload and checks its size and SHA-256 against the manifest,
/// with a fixed buffer whatever the size. Stops early if the payload is longer
/// than announced or longer than `max_bytes`.
pub fn check_payload(
    manifest: &Manifest,
    payload: &mut impl Read,
    file: &str,
    max_bytes: u64,
) -> Result<(), FormatError> {
    if manifest.bytes > max_bytes {
        return Err(FormatError::new(
            file,
            Position::File,
            "envelope-too-large",
            format!(
                "the manifest announces {} bytes, more than the limit of {max_bytes} bytes",
                manifest.bytes
            ),
        ));
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; STREAM_BUFFER];
    let mut total: u64 = 0;
    loop {
        let n = match payload.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(FormatError::new(
                    file,
                    Position::byte(total),
                    super::READ_FAILED,
                    format!("read failed: {e}"),
                ));
            }
        };
        total += n as u64;
        if total > manifest.bytes {
            return Err(FormatError::new(
                file,
                Position::byte(manifest.bytes),
                "envelope-size",
                format!(
                    "expected {} bytes as the manifest says, found more: the payload was altered or replaced",
                    manifest.bytes
                ),
            ));
        }
        hasher.update(&buf[..n]);
    }
    if total < manifest.bytes {
        return Err(FormatError::new(
            file,
            Position::byte(total),
            "envelope-size",
            format!(
                "expected {} bytes as the manifest says, found {total}: the payload is truncated",
                manifest.bytes
            ),
        ));
    }
    let digest: [u8; 32] = hasher.finalize().into();
    if digest != manifest.sha256 {
        return Err(FormatError::new(
            file,
            Position::File,
            "envelope-digest",
            format!(
                "expected SHA-256 {}, found {}: the payload was altered",
                hex::encode(manifest.sha256),
                hex::encode(digest)
            ),
        ));
    }
    Ok(())
}

/// The record count a reader found at the payload's end, against the
/// manifest's.
pub fn check_count(manifest: &Manifest, found: u64, file: &str) -> Result<(), FormatError> {
    if found == manifest.records {
        Ok(())
    } else {
        Err(FormatError::new(
            file,
            Position::File,
            "envelope-count",
            format!(
                "expected {} records as the manifest says, found {found}",
                manifest.records
            ),
        ))
    }
}

/// A writer that counts and hashes what passes through it, so a payload's
/// size and digest come from the same single pass that writes it.
pub struct Sealing<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Sealing<W> {
    pub fn new(inner: W) -> Sealing<W> {
        Sealing {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// The inner writer, the byte count and the SHA-256 of all bytes written.
    pub fn finish(self) -> (W, u64, [u8; 32]) {
        (self.inner, self.bytes, self.hasher.finalize().into())
    }
}

impl<W: Write> Write for Sealing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::new(b"0123456789abcdef0123456789abcdef".to_vec())
    }

    fn sample(payload: &[u8]) -> Manifest {
        Manifest {
            kind: Kind::Sales,
            format_version: FORMAT_VERSION,
            link: "opera-tourism".into(),
            sender: "TOURISM".into(),
            recipient: "OPERA".into(),
            login: "TOURISM_OPE@TOURISM".into(),
            sequence: 42,
            created: time::macros::datetime!(2026-11-28 15:20:00 UTC),
            payload: Manifest::payload_name("opera-tourism", Kind::Sales, 42),
            records: 3,
            bytes: payload.len() as u64,
            sha256: Sha256::digest(payload).into(),
        }
    }

    fn expect() -> Expect<'static> {
        Expect {
            link: "opera-tourism",
            sender: "TOURISM",
            recipient: "OPERA",
            login: "TOURISM_OPE@TOURISM",
            kind: Some(Kind::Sales),
        }
    }

    const NAME: &str = "opera-tourism.SALES.00000042.stx";

    #[test]
    fn rendered_manifest_authenticates_and_round_trips() {
        let m = sample(b"payload");
        let text = m.render(&secret());
        let back = authenticate(text.as_bytes(), NAME, &secret()).unwrap();
        assert_eq!(back, m);
        back.expect(&expect(), NAME).unwrap();
        assert_eq!(back.render(&secret()), text);
        check_payload(&back, &mut &b"payload"[..], "p", u64::MAX).unwrap();
    }

    #[test]
    fn any_changed_manifest_byte_is_refused() {
        let text = sample(b"payload").render(&secret()).into_bytes();
        for i in 0..text.len() {
            for flip in [0x01u8, 0x20, 0x80] {
                let mut bad = text.clone();
                bad[i] ^= flip;
                assert!(
                    authenticate(&bad, NAME, &secret()).is_err(),
                    "byte {i} ^ {flip:#x} accepted"
                );
            }
        }
    }

    #[test]
    fn truncated_manifest_is_refused_at_every_length() {
        let text = sample(b"payload").render(&secret()).into_bytes();
        for len in 0..text.len() {
            assert!(
                authenticate(&text[..len], NAME, &secret()).is_err(),
                "{len}"
            );
        }
    }

    #[test]
    fn another_key_is_told_apart_from_tampering() {
        let text = sample(b"p").render(&Secret::new(b"another secret of 32 bytes......".to_vec()));
        let e = authenticate(text.as_bytes(), NAME, &secret()).unwrap_err();
        assert_eq!(e.code, "envelope-key-id");
        assert_eq!(e.position, Position::line(14));
    }

    #[test]
    fn a_rotation_accepts_the_keys_given_and_names_retired_ones() {
        let old = secret();
        let new = Secret::new(b"the new secret of 32 bytes......".to_vec());
        let by_old = sample(b"p").render(&old);
        let by_new = sample(b"p").render(&new);
        // The new secret signs, and also accepts the previous one.
        let keys = new.clone().also_accepting(old.clone());
        authenticate(by_old.as_bytes(), NAME, &keys).unwrap();
        authenticate(by_new.as_bytes(), NAME, &keys).unwrap();
        let signed = sample(b"p").render(&keys);
        assert!(
            signed.contains(&format!("key-id: {}\n", new.key_id())),
            "signs with the new key"
        );
        // Once the overlap ended, the previous key is named as retired.
        let after = new
            .clone()
            .retired(old.key_id(), "its overlap ended: the fix".into());
        let e = authenticate(by_old.as_bytes(), NAME, &after).unwrap_err();
        assert_eq!(e.code, "envelope-key-retired");
        assert!(e.problem.contains(&old.key_id()), "{}", e.problem);
        assert!(e.problem.ends_with("the fix"), "{}", e.problem);
        // A key neither accepted nor retired is unknown, and the message
        // lists the accepted ones.
        let other = sample(b"p").render(&Secret::new(b"a third secret of 32 bytes......".to_vec()));
        let e = authenticate(other.as_bytes(), NAME, &keys).unwrap_err();
        assert_eq!(e.code, "envelope-key-id");
        assert!(e.problem.contains(&old.key_id()), "{}", e.problem);
        // A key accepted beside the signing one does not verify a tag made
        // with another key under its id.
        let mut forged = by_old.clone();
        let at = forged.find("hmac-sha256: ").unwrap() + 13;
        forged.replace_range(
            at..at + 2,
            if &forged[at..at + 2] == "00" {
                "11"
            } else {
                "00"
            },
        );
        assert_eq!(
            authenticate(forged.as_bytes(), NAME, &keys)
                .unwrap_err()
                .code,
            "envelope-hmac"
        );
    }

    #[test]
    fn expectations_name_what_differs() {
        let m = sample(b"p");
        let code = |e: Expect<'_>, name: &str| m.expect(&e, name).unwrap_err().code;
        assert_eq!(
            code(
                Expect {
                    kind: Some(Kind::Catalogue),
                    ..expect()
                },
                NAME
            ),
            "envelope-kind"
        );
        assert_eq!(
            code(
                Expect {
                    recipient: "TOURISM",
                    ..expect()
                },
                NAME
            ),
            "envelope-recipient"
        );
        assert_eq!(
            code(
                Expect {
                    link: "other",
                    ..expect()
                },
                NAME
            ),
            "envelope-link"
        );
        assert_eq!(
            code(expect(), "opera-tourism.SALES.00000041.stx"),
            "envelope-name"
        );
    }

    #[test]
    fn payload_size_and_digest_are_checked() {
        let m = sample(b"payload");
        let code = |p: &[u8]| {
            check_payload(&m, &mut &p[..], "p", u64::MAX)
                .unwrap_err()
                .code
        };
        assert_eq!(code(b"payloa"), "envelope-size");
        assert_eq!(code(b"payload!"), "envelope-size");
        assert_eq!(code(b"PAYLOAD"), "envelope-digest");
        let e = check_payload(&m, &mut &b"payload"[..], "p", 3).unwrap_err();
        assert_eq!(e.code, "envelope-too-large");
    }

    #[test]
    fn sealing_counts_and_hashes_what_it_writes() {
        let mut w = Sealing::new(Vec::new());
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (out, n, digest) = w.finish();
        assert_eq!((out.as_slice(), n), (&b"hello world"[..], 11));
        assert_eq!(digest, <[u8; 32]>::from(Sha256::digest(b"hello world")));
    }
}
