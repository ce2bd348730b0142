//! Parse: stream a verified payload into records.
//!
//! Takes a [`Verified`] file and returns [`Records`], an iterator that holds
//! one record at a time whatever the file's size. The bytes parsed are hashed
//! again as they are read ([`read_ahead`](super::read_ahead): on a second
//! thread for a large payload); at the end the iterator checks that they are the
//! bytes verified (same size and SHA-256) and that the record count is the
//! manifest's, and yields an error otherwise. A consumer applies records
//! inside a transaction and commits only once the iterator has ended cleanly,
//! so a truncated, swapped or miscounted file applies nothing.

use std::fs::File;

use super::read_ahead::{ReadAhead, Tap};
use super::{InboundError, Verified};
use crate::format::envelope::{self, Manifest};
use crate::format::{FormatError, Kind, Limits, Position, catalogue, contingent, sales, seatplan};

type Input = ReadAhead<File>;

/// One record of any kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Seatplan(seatplan::Item),
    Catalogue(catalogue::Item),
    Contingent(contingent::Line),
    Sales(sales::Line),
}

enum Reader {
    Seatplan(seatplan::Reader<Input>),
    Catalogue(catalogue::Reader<Input>),
    Contingent(contingent::Reader<Input>),
    Sales(sales::Reader<Input>),
}

/// The records of a verified file, in file order.
pub struct Records {
    reader: Reader,
    tap: Tap,
    manifest: Manifest,
    payload_name: String,
    done: bool,
}

pub fn parse(verified: Verified, limits: &Limits) -> Records {
    let mut payload = verified.payload;
    payload.pass("parse");
    let (input, tap) = ReadAhead::new(payload, verified.manifest.bytes);
    let name = verified.payload_name.as_str();
    let reader = match verified.manifest.kind {
        Kind::Seatplan => Reader::Seatplan(seatplan::Reader::new(input, name, *limits)),
        Kind::Catalogue => Reader::Catalogue(catalogue::Reader::new(input, name, *limits)),
        Kind::Contingent => Reader::Contingent(contingent::Reader::new(input, name, *limits)),
        Kind::Sales => Reader::Sales(sales::Reader::new(input, name, *limits)),
    };
    Records {
        reader,
        tap,
        manifest: verified.manifest,
        payload_name: verified.payload_name,
        done: false,
    }
}

impl Records {
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn records(&self) -> u64 {
        match &self.reader {
            Reader::Seatplan(r) => r.records(),
            Reader::Catalogue(r) => r.records(),
            Reader::Contingent(r) => r.records(),
            Reader::Sales(r) => r.records(),
        }
    }

    /// At the end of the payload: the same bytes as verified, and the count
    /// the manifest announced.
    fn check_end(&self) -> Result<(), FormatError> {
        if self.tap.finish() != Some((self.manifest.bytes, self.manifest.sha256)) {
            return Err(FormatError::new(
                &self.payload_name,
                Position::File,
                "changed-while-reading",
                "the payload changed between verification and parsing: nothing was applied; drop the file again",
            ));
        }
        envelope::check_count(&self.manifest, self.records(), &self.payload_name)
    }
}

impl Iterator for Records {
    type Item = Result<Record, InboundError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = match &mut self.reader {
            Reader::Seatplan(r) => r.next().map(|x| x.map(Record::Seatplan)),
            Reader::Catalogue(r) => r.next().map(|x| x.map(Record::Catalogue)),
            Reader::Contingent(r) => r.next().map(|x| x.map(Record::Contingent)),
            Reader::Sales(r) => r.next().map(|x| x.map(Record::Sales)),
        };
        match next {
            Some(Ok(record)) => Some(Ok(record)),
            Some(Err(e)) => {
                self.done = true;
                Some(Err(e.into()))
            }
            None => {
                self.done = true;
                self.check_end().err().map(|e| Err(e.into()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every record of every file is moved at the size of the largest kind:
    /// a sales line's ticket stays boxed, and no kind grows past a seat
    /// plan's few ids and names by accident.
    #[test]
    fn a_record_is_the_size_of_a_few_ids_and_names() {
        let record = std::mem::size_of::<Record>();
        assert!(record <= 96, "a record takes {record} bytes");
        assert!(std::mem::size_of::<sales::Line>() <= 24);
    }
}
