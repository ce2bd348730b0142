//! Verify: authenticate a claimed file and check its payload against the
//! manifest, before a single payload byte is parsed.
//!
//! Takes a [`Claimed`] pair, the link's secret and what the receiver expects;
//! returns a [`Verified`] file, rewound and ready to parse. The order is the
//! one of `docs/exactly-once.md`: HMAC (constant time), then kind, version, link, parties
//! and names, then size and SHA-256 (one streaming pass, fixed memory). The
//! sequence (already applied? a gap?) is judged by the apply stage against the
//! journal, in the same transaction that applies the file.

use std::fs::File;
use std::io::{Seek, SeekFrom};

use super::{Claimed, InboundError};
use crate::format::Limits;
use crate::format::envelope::{self, Expect, Manifest, Secret};
use crate::transport::progress::Counted;

/// A file whose manifest is authentic and whose payload matches it.
#[derive(Debug)]
pub struct Verified {
    pub manifest: Manifest,
    pub manifest_name: String,
    pub payload_name: String,
    /// Rewound to the start.
    pub payload: Counted<File>,
}

pub fn verify(
    claimed: Claimed,
    secret: &Secret,
    expect: &Expect<'_>,
    limits: &Limits,
) -> Result<Verified, InboundError> {
    let manifest_name = claimed.manifest_name();
    let payload_name = claimed.payload_name();
    let manifest = envelope::authenticate(&claimed.manifest, &manifest_name, secret)?;
    manifest.expect(expect, &manifest_name)?;
    let mut payload = claimed.payload;
    payload.pass("verify");
    envelope::check_payload(
        &manifest,
        &mut payload,
        &payload_name,
        limits.max_file_bytes,
    )?;
    payload
        .seek(SeekFrom::Start(0))
        .map_err(|source| InboundError::Io {
            file: payload_name.clone(),
            source,
        })?;
    Ok(Verified {
        manifest,
        manifest_name,
        payload_name,
        payload,
    })
}
