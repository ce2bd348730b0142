//! `stxd inspect`: a Fichier SecuTix file found anywhere claimed, verified
//! and parsed without being applied, through the inbound stages' own code,
//! with the link (and so the secret) taken from its manifest.

use std::path::Path;

use super::manifest_path_of;
use crate::config::{self, Config, Link};
use crate::format::envelope::{self, Expect, Secret};
use crate::format::{FormatError, Limits, Position};
use crate::inbound::{self, InboundError, Record};
use crate::transport::progress::Watch;

/// The secret to verify a file found anywhere: `--secret-file` when given,
/// else the secret of the configured link the manifest names.
pub fn inspection_secret<'c>(
    config: &'c Config,
    link_name: &str,
    secret_file: Option<&Path>,
    manifest_name: &str,
) -> Result<(Secret, Option<&'c Link>), InboundError> {
    let link = config.link(link_name);
    let refuse = |code, problem: String| {
        InboundError::Rejected(FormatError::new(
            manifest_name,
            Position::File,
            code,
            problem,
        ))
    };
    let secret = match (secret_file, link) {
        (Some(path), _) => config::read_secret(path),
        (None, Some(link)) => config::rotation::link_keys(link, time::OffsetDateTime::now_utc())
            .map(|keys| keys.secret),
        (None, None) => {
            return Err(refuse(
                "unknown-link",
                format!(
                    "link {link_name:?} is not in the config: pass --secret-file to verify the file with its secret"
                ),
            ));
        }
    };
    let secret = secret.map_err(|e| refuse("no-secret", e.to_string()))?;
    Ok((secret, link))
}

/// What `stxd inspect` found in a valid file.
#[derive(Debug)]
pub struct Inspection {
    pub manifest: crate::format::envelope::Manifest,
    /// Records per type, in first-seen order.
    pub counts: Vec<(&'static str, u64)>,
}

/// Claims, verifies and parses a Fichier SecuTix file found anywhere (given
/// its manifest or its payload), without applying it: the inbound stages'
/// code path, with the link taken from the manifest; `watch` hears how far
/// the payload is read.
pub fn inspect(
    config: &Config,
    file: &Path,
    secret_file: Option<&Path>,
    watch: &Watch,
) -> Result<Inspection, InboundError> {
    let limits = Limits::default();
    let claimed = inbound::claim::claim_watched(&manifest_path_of(file), &limits, watch)?;
    let manifest_name = claimed.manifest_name();
    let link_name = envelope::peek_link(&claimed.manifest).unwrap_or_default();
    let (secret, link) = inspection_secret(config, &link_name, secret_file, &manifest_name)?;
    // Authenticated first, so the kind that picks the expectations is trusted.
    let announced = envelope::authenticate(&claimed.manifest, &manifest_name, &secret)?;
    let expect = match link {
        Some(link) => link.expectation(announced.kind),
        None => Expect {
            link: &announced.link,
            sender: &announced.sender,
            recipient: &announced.recipient,
            login: &announced.login,
            kind: Some(announced.kind),
        },
    };
    let verified = inbound::verify::verify(claimed, &secret, &expect, &limits)?;
    let mut records = inbound::parse::parse(verified, &limits);
    let manifest = records.manifest().clone();
    let mut counts: Vec<(&'static str, u64)> = Vec::new();
    for record in records.by_ref() {
        let label = record_label(&record?);
        // Records mostly follow their like (a seat after a seat): the last
        // type counted is tried first.
        match counts.last_mut() {
            Some((l, n)) if *l == label => *n += 1,
            _ => match counts.iter_mut().find(|(l, _)| *l == label) {
                Some((_, n)) => *n += 1,
                None => counts.push((label, 1)),
            },
        }
    }
    Ok(Inspection { manifest, counts })
}

/// What [`inspect`] counts a record as.
fn record_label(record: &Record) -> &'static str {
    use crate::format::{catalogue, contingent, sales, seatplan};
    match record {
        Record::Seatplan(i) => match i {
            seatplan::Item::SeatCategory(_) => "seat categories",
            seatplan::Item::Venue(_) => "venues",
            seatplan::Item::Configuration(_) => "configurations",
            seatplan::Item::Zone(_) => "zones",
            seatplan::Item::Block(_) => "blocks",
            seatplan::Item::Row(_) => "rows",
            seatplan::Item::Seat(_) => "seats",
        },
        Record::Catalogue(i) => match i {
            catalogue::Item::Season(_) => "seasons",
            catalogue::Item::VatCode(_) => "VAT codes",
            catalogue::Item::TariffType(_) => "tariff types",
            catalogue::Item::AudienceSubcategory(_) => "audience subcategories",
            catalogue::Item::SeatCategory(_) => "seat categories",
            catalogue::Item::Activity(_) => "activities",
            catalogue::Item::LogicalConfiguration(_) => "logical configurations",
            catalogue::Item::LogicalSeatCategory(_) => "logical seat categories",
            catalogue::Item::SeatRange(_) => "seat ranges",
            catalogue::Item::Performance(_) => "performances",
            catalogue::Item::RateTable(_) => "rate tables",
            catalogue::Item::Price(_) => "prices",
            catalogue::Item::LogicalPrice(_) => "logical prices",
            catalogue::Item::Product(_) => "products",
            catalogue::Item::PerformanceRef(_) => "product performances",
        },
        Record::Contingent(l) => match l {
            contingent::Line::Performance { .. } => "performances",
            contingent::Line::Seat { .. } => "seats",
            contingent::Line::Zone { .. } => "zones",
            contingent::Line::Resolution { .. } => "resolutions",
        },
        Record::Sales(l) => match l {
            sales::Line::Ticket(t) if t.operation == sales::Operation::Sale => "sales",
            sales::Line::Ticket(_) => "refunds",
            sales::Line::Ack(_) => "acknowledgements",
        },
    }
}
