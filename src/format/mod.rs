//! The Fichier SecuTix formats, version 1: four payload kinds and the envelope
//! that authenticates them.
//!
//! Each payload module offers a streaming `Reader` (an iterator of records that
//! holds one record at a time) and a streaming `Writer`, and nothing else: no
//! store, no mapping, no business rule. The envelope ([`envelope`]) is checked
//! before any payload byte is parsed. Every rejection is a [`FormatError`] that
//! names the file, the position and what was expected.
//!
//! | kind | payload | module |
//! |---|---|---|
//! | `SEATPLAN` | XML | [`seatplan`] |
//! | `CATALOGUE` | XML | [`catalogue`] |
//! | `CONTINGENT` | CSV | [`contingent`] |
//! | `SALES` | CSV | [`sales`] |
//!
//! `samples/README.md` documents every field of every kind.

pub mod catalogue;
pub mod contingent;
pub mod csv;
pub mod envelope;
pub mod sales;
pub mod seatplan;
mod secret;
pub mod xml;

use std::fmt;

/// The first version of every format; a file says its version in its
/// manifest (`format-version`) and in its payload (the XML root's `version`,
/// the CSV header's columns).
pub const FORMAT_VERSION: u32 = 1;

/// The latest format version of a kind this build reads (and writes):
/// CATALOGUE and SALES have a version 2 (rate table versions), the others
/// only version 1. Every version from 1 up to it is read.
pub fn max_format_version(kind: Kind) -> u32 {
    match kind {
        Kind::Catalogue | Kind::Sales => 2,
        Kind::Seatplan | Kind::Contingent => 1,
    }
}

/// The kinds of file, from the vocabulary at the bottom of the layers.
pub use crate::exchange::Kind;

/// Where in a file a problem was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// The file as a whole (size, digest, record count).
    File,
    /// A line of a text file, 1-based, with the column (field) when known.
    Line { line: u64, field: Option<String> },
    /// A byte offset from the start of the file, 0-based, with the line when
    /// known.
    Byte { offset: u64, line: Option<u64> },
    /// The N-th record of a payload, 1-based, in file order (for XML, the
    /// N-th element inside the root, as the manifest's `records` counts
    /// them), with the record as the importer names it.
    Record { index: u64, what: String },
}

impl Position {
    pub fn line(line: u64) -> Position {
        Position::Line { line, field: None }
    }

    pub fn field(line: u64, field: impl Into<String>) -> Position {
        Position::Line {
            line,
            field: Some(field.into()),
        }
    }

    pub fn byte(offset: u64) -> Position {
        Position::Byte { offset, line: None }
    }

    pub fn record(index: u64, what: impl Into<String>) -> Position {
        Position::Record {
            index,
            what: what.into(),
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::File => f.write_str("whole file"),
            Position::Line { line, field: None } => write!(f, "line {line}"),
            Position::Line {
                line,
                field: Some(c),
            } => write!(f, "line {line}, field {c}"),
            Position::Byte { offset, line: None } => write!(f, "byte {offset}"),
            Position::Byte {
                offset,
                line: Some(l),
            } => write!(f, "line {l} (byte {offset})"),
            Position::Record { index, what } => write!(f, "record {index} ({what})"),
        }
    }
}

/// A file rejected by a reader or by the envelope check: the file, where, a
/// stable short code (for tests, reason files and run logs) and a sentence
/// saying what was expected and what was found.
///
/// Boxed, and read through [`Deref`](std::ops::Deref) as its
/// [`FormatErrorDetail`]: every record a reader yields is a `Result` the
/// size of its larger side, and a rejection is rare.
#[derive(Clone, PartialEq, Eq)]
pub struct FormatError(Box<FormatErrorDetail>);

/// What a [`FormatError`] says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatErrorDetail {
    pub file: String,
    pub position: Position,
    pub code: &'static str,
    pub problem: String,
}

impl std::ops::Deref for FormatError {
    type Target = FormatErrorDetail;

    fn deref(&self) -> &FormatErrorDetail {
        &self.0
    }
}

impl std::ops::DerefMut for FormatError {
    fn deref_mut(&mut self) -> &mut FormatErrorDetail {
        &mut self.0
    }
}

impl fmt::Debug for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file, self.position, self.problem)
    }
}

impl std::error::Error for FormatError {}

/// The code of a payload that could not be read (an I/O error from the
/// disk, not a property of its content): the inbound stages leave such a
/// file where it is and try it again, instead of rejecting it.
pub const READ_FAILED: &str = "read-failed";

impl FormatError {
    /// The payload could not be read ([`READ_FAILED`]): nothing is known
    /// of its content.
    pub fn is_read_failure(&self) -> bool {
        self.code == READ_FAILED
    }

    pub fn new(
        file: impl Into<String>,
        position: Position,
        code: &'static str,
        problem: impl Into<String>,
    ) -> FormatError {
        FormatError(Box::new(FormatErrorDetail {
            file: file.into(),
            position,
            code,
            problem: problem.into(),
        }))
    }
}

/// One step of a payload reader: `next` is the next record (`Ok(None)` at
/// the end). After the end or the first error, the reader is `done` and
/// yields nothing more.
pub(crate) fn stop_after_error<T>(
    done: &mut bool,
    next: Result<Option<T>, FormatError>,
) -> Option<Result<T, FormatError>> {
    let item = next.transpose();
    if !matches!(item, Some(Ok(_))) {
        *done = true;
    }
    item
}

/// Bounds every reader enforces, so hostile input cannot make memory or time
/// grow without limit. Defaults suit real institutions with a wide margin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest payload accepted, in bytes.
    pub max_file_bytes: u64,
    /// Largest single CSV field or XML attribute value, in bytes.
    pub max_field_bytes: usize,
    /// Largest single CSV line or XML tag, in bytes.
    pub max_record_bytes: usize,
    /// Deepest XML element nesting.
    pub max_depth: usize,
    /// Most records in one file.
    pub max_records: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_file_bytes: 4 << 30,
            max_field_bytes: 1024,
            max_record_bytes: 16 * 1024,
            max_depth: 16,
            max_records: 100_000_000,
        }
    }
}

/// A writer refused to write: an I/O failure, or records given in an order the
/// format cannot express (a seat before its row). The second is a bug in the
/// caller, never a property of input.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("write failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot write record: {0}")]
    Invalid(String),
}
