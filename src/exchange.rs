//! The exchange's vocabulary, at the bottom of the layers: the four [`Kind`]s
//! of file, the two [`Role`]s of a link, and a file's typed name
//! ([`FileName`]: link, kind, sequence and which half of the pair).
//!
//! Formats, store, transports and pipelines all speak of these; this module
//! imports nothing of the crate, so none of them has to import another to
//! share a word. A file name is built and parsed here and nowhere else.

use std::fmt;
use std::str::FromStr;

/// A word that is not one of the vocabulary's, with what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected {expected}, found {found:?}")]
pub struct Unknown {
    pub expected: &'static str,
    pub found: String,
}

fn unknown(expected: &'static str, found: &str) -> Unknown {
    Unknown {
        expected,
        found: shorten(found),
    }
}

/// At most 64 characters of untrusted text, for messages.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// The four kinds of Fichier SecuTix file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Seatplan,
    Catalogue,
    Contingent,
    Sales,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Seatplan,
        Kind::Catalogue,
        Kind::Contingent,
        Kind::Sales,
    ];

    /// The name written in envelopes and file names.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Seatplan => "SEATPLAN",
            Kind::Catalogue => "CATALOGUE",
            Kind::Contingent => "CONTINGENT",
            Kind::Sales => "SALES",
        }
    }

    /// Which side writes files of this kind: the manager sends seat plans,
    /// catalogues and contingents; the distributor sends sales.
    pub fn sender(self) -> Role {
        match self {
            Kind::Seatplan | Kind::Catalogue | Kind::Contingent => Role::Manager,
            Kind::Sales => Role::Distributor,
        }
    }

    /// The side that receives and applies files of this kind.
    pub fn receiver(self) -> Role {
        self.sender().peer()
    }

    /// The payload's file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Kind::Seatplan | Kind::Catalogue => "xml",
            Kind::Contingent | Kind::Sales => "csv",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Kind {
    type Err = Unknown;
    fn from_str(s: &str) -> Result<Kind, Unknown> {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| unknown("one of SEATPLAN, CATALOGUE, CONTINGENT, SALES", s))
    }
}

/// Which side of the interface an institution plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Owns the products, seat plans and seats.
    Manager,
    /// Sells the manager's products.
    Distributor,
}

impl Role {
    /// The other side of a link.
    pub fn peer(self) -> Role {
        match self {
            Role::Manager => Role::Distributor,
            Role::Distributor => Role::Manager,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Manager => "manager",
            Role::Distributor => "distributor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Unknown;
    fn from_str(s: &str) -> Result<Role, Unknown> {
        match s {
            "manager" => Ok(Role::Manager),
            "distributor" => Ok(Role::Distributor),
            _ => Err(unknown("a role among manager, distributor", s)),
        }
    }
}

/// The extension of a manifest, the half of a pair written last.
pub const MANIFEST_EXT: &str = "stx";

/// Which half of a pair a name designates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    /// `<link>.<KIND>.<seq>.stx`: the signed envelope, written last.
    Manifest,
    /// `<link>.<KIND>.<seq>.<xml|csv>`: the payload, its extension given by
    /// the kind.
    Payload,
}

/// A file name of the exchange: `<link>.<KIND>.<8-digit sequence>.<ext>`.
/// Ordered by kind, then sequence (the order files apply in), then link.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileName {
    pub link: String,
    pub kind: Kind,
    pub sequence: u64,
    pub part: Part,
}

impl FileName {
    /// The manifest name of a link's file.
    pub fn manifest(link: &str, kind: Kind, sequence: u64) -> FileName {
        FileName {
            link: link.to_owned(),
            kind,
            sequence,
            part: Part::Manifest,
        }
    }

    /// The payload name of a link's file.
    pub fn payload(link: &str, kind: Kind, sequence: u64) -> FileName {
        FileName {
            part: Part::Payload,
            ..FileName::manifest(link, kind, sequence)
        }
    }

    /// The other half of the same pair.
    pub fn pair(&self) -> FileName {
        FileName {
            part: match self.part {
                Part::Manifest => Part::Payload,
                Part::Payload => Part::Manifest,
            },
            ..self.clone()
        }
    }

    /// This name's manifest (itself when it is one).
    pub fn to_manifest(&self) -> FileName {
        FileName {
            part: Part::Manifest,
            ..self.clone()
        }
    }

    /// This name's payload (itself when it is one).
    pub fn to_payload(&self) -> FileName {
        FileName {
            part: Part::Payload,
            ..self.clone()
        }
    }

    /// `<link>.<KIND>.<sequence>`: the stem both halves share.
    pub fn stem(&self) -> String {
        format!("{}.{}.{:08}", self.link, self.kind, self.sequence)
    }

    /// The extension of this half.
    pub fn extension(&self) -> &'static str {
        match self.part {
            Part::Manifest => MANIFEST_EXT,
            Part::Payload => self.kind.extension(),
        }
    }

    /// Whether `link` is a link name a file name may carry: 1 to 32
    /// characters among `a-z`, `0-9` and `-`, not starting with `-`.
    pub fn valid_link(link: &str) -> bool {
        !link.is_empty()
            && link.len() <= 32
            && !link.starts_with('-')
            && link
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    }

    /// Parses a name of either half, or says what such a name looks like.
    pub fn parse(name: &str) -> Result<FileName, BadName> {
        let bad = || BadName {
            found: shorten(name),
        };
        let mut parts = name.rsplitn(4, '.');
        let (Some(ext), Some(seq), Some(kind), Some(link)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let kind: Kind = kind.parse().map_err(|_| bad())?;
        let part = if ext == MANIFEST_EXT {
            Part::Manifest
        } else if ext == kind.extension() {
            Part::Payload
        } else {
            return Err(bad());
        };
        if !FileName::valid_link(link) || seq.len() != 8 || !seq.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(bad());
        }
        let sequence: u64 = seq.parse().map_err(|_| bad())?;
        Ok(FileName {
            link: link.to_owned(),
            kind,
            sequence,
            part,
        })
    }

    /// Parses a manifest name only.
    pub fn parse_manifest(name: &str) -> Result<FileName, BadName> {
        match FileName::parse(name) {
            Ok(n) if n.part == Part::Manifest => Ok(n),
            _ => Err(BadName {
                found: shorten(name),
            }),
        }
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.stem(), self.extension())
    }
}

impl PartialOrd for FileName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for FileName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.kind, self.sequence, &self.link, self.part).cmp(&(
            other.kind,
            other.sequence,
            &other.link,
            other.part,
        ))
    }
}

/// A name that is not an exchange file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "expected a name <link>.<KIND>.<8-digit sequence>.{MANIFEST_EXT} (or the payload's .xml or .csv), e.g. opera-tourism.SALES.00000001.{MANIFEST_EXT}, found {found:?}"
)]
pub struct BadName {
    pub found: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_pair_up() {
        let m = FileName::parse("opera-tourism.SALES.00000042.stx").unwrap();
        assert_eq!(m, FileName::manifest("opera-tourism", Kind::Sales, 42));
        assert_eq!(m.to_string(), "opera-tourism.SALES.00000042.stx");
        assert_eq!(m.pair().to_string(), "opera-tourism.SALES.00000042.csv");
        assert_eq!(
            FileName::parse("a.SEATPLAN.00000001.xml").unwrap().pair(),
            FileName::manifest("a", Kind::Seatplan, 1)
        );
        assert!(FileName::parse_manifest("a.SEATPLAN.00000001.xml").is_err());
    }

    #[test]
    fn only_the_pattern_is_a_name() {
        for bad in [
            "opera-tourism.SALES.42.stx",
            "opera-tourism.sales.00000042.stx",
            "../x.SALES.00000042.stx",
            "-x.SALES.00000042.stx",
            ".opera-tourism.SALES.00000042.stx",
            "opera-tourism.SALES.00000042.stx.part",
            "opera-tourism.SALES.00000042.xml",
            "Opera.SALES.00000042.stx",
            "SALES.00000042.stx",
            "",
        ] {
            assert!(FileName::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn names_sort_in_apply_order() {
        let mut names: Vec<FileName> = [
            "b.SALES.00000002.stx",
            "a.SEATPLAN.00000009.stx",
            "a.SALES.00000010.stx",
            "a.CATALOGUE.00000001.stx",
        ]
        .iter()
        .map(|n| FileName::parse(n).unwrap())
        .collect();
        names.sort();
        let sorted: Vec<String> = names.iter().map(ToString::to_string).collect();
        assert_eq!(
            sorted,
            [
                "a.SEATPLAN.00000009.stx",
                "a.CATALOGUE.00000001.stx",
                "b.SALES.00000002.stx",
                "a.SALES.00000010.stx"
            ]
        );
    }

    #[test]
    fn words_parse_or_say_what_was_expected() {
        assert_eq!("SALES".parse::<Kind>(), Ok(Kind::Sales));
        assert!(
            "sales"
                .parse::<Kind>()
                .unwrap_err()
                .to_string()
                .contains("SEATPLAN")
        );
        for r in [Role::Manager, Role::Distributor] {
            assert_eq!(r.to_string().parse::<Role>(), Ok(r));
        }
        assert!("Manager".parse::<Role>().is_err());
        assert_eq!(Kind::Sales.receiver(), Role::Manager);
    }
}
