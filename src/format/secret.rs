//! A link's shared secret as the envelope uses it: the key that signs, the
//! keys also accepted during a secret rotation, the key ids retired, and the
//! public key id that names each. Takes bytes (the config layer reads them
//! from files); never reads a file, never knows the time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub(super) type HmacSha256 = Hmac<Sha256>;

/// A link's shared secret (the distributor's virtual operator password). Kept
/// out of `Debug` output.
///
/// During a secret rotation it also carries the other keys a receiver still
/// (or already) accepts: the previous secret during its overlap, a new one
/// staged but not yet signing ([`Secret::also_accepting`]); and the key ids
/// of secrets no longer accepted, to tell "signed with a retired key" apart
/// from "signed with an unknown key" ([`Secret::retired`]). Signing always
/// uses the secret itself; the config layer decides what is accepted when.
#[derive(Clone)]
pub struct Secret {
    key: Vec<u8>,
    accepted: Vec<Secret>,
    retired: Vec<RetiredKey>,
}

/// A key id a receiver no longer accepts, and why, in a sentence that ends
/// with the fix (`config` writes it: when the overlap ended, what to do).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetiredKey {
    pub key_id: String,
    pub why: String,
}

impl Secret {
    /// At least 16 bytes: a shorter secret is refused by the config check.
    pub const MIN_LEN: usize = 16;

    pub fn new(bytes: Vec<u8>) -> Secret {
        Secret {
            key: bytes,
            accepted: Vec::new(),
            retired: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.key.is_empty()
    }

    /// This secret, also accepting manifests signed with `other` (the
    /// previous secret during its overlap, or a new one staged). A key equal
    /// to this one, or already accepted, adds nothing.
    pub fn also_accepting(mut self, other: Secret) -> Secret {
        let id = other.key_id();
        if id != self.key_id() && !self.accepted.iter().any(|s| s.key_id() == id) {
            self.accepted.push(Secret::new(other.key));
        }
        self
    }

    /// This secret, refusing manifests signed with `key_id` with `why`
    /// rather than as an unknown key.
    pub fn retired(mut self, key_id: String, why: String) -> Secret {
        self.retired.push(RetiredKey { key_id, why });
        self
    }

    /// The key ids this secret accepts besides its own, in the order given.
    pub fn accepted_key_ids(&self) -> Vec<String> {
        self.accepted.iter().map(Secret::key_id).collect()
    }

    /// The retired key whose id is `key_id`.
    pub(super) fn retired_key(&self, key_id: &str) -> Option<&RetiredKey> {
        self.retired.iter().find(|r| r.key_id == key_id)
    }

    /// The key (this one, or one it also accepts) whose id is `key_id`.
    pub(super) fn key_with_id(&self, key_id: &str) -> Option<&Secret> {
        std::iter::once(self)
            .chain(&self.accepted)
            .find(|s| s.key_id() == key_id)
    }

    /// A public fingerprint of the key, written in manifests so that "signed
    /// with another key" is told apart from "altered": 8 hex digits of
    /// HMAC(secret, "stxd key id v1").
    pub fn key_id(&self) -> String {
        let mut mac = self.mac();
        mac.update(b"stxd key id v1");
        hex::encode(&mac.finalize().into_bytes()[..4])
    }

    pub(super) fn mac(&self) -> HmacSha256 {
        // HMAC accepts keys of any length.
        <HmacSha256 as Mac>::new_from_slice(&self.key).unwrap_or_else(|_| unreachable!())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret(key id {}", self.key_id())?;
        for other in &self.accepted {
            write!(f, ", also accepting {}", other.key_id())?;
        }
        for old in &self.retired {
            write!(f, ", retired {}", old.key_id)?;
        }
        f.write_str(")")
    }
}
