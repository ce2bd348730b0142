//! The CSV writer: [`CsvWriter`] takes a payload's fields line by line and
//! writes the canonical form (header in canonical order, `;`, LF, a final
//! newline, no quoting), refusing any value that would need quoting; it
//! returns the output and the number of data lines.

use std::fmt::{self, Write as _};
use std::io::Write;

use crate::format::WriteError;
use crate::ident::shorten;

/// Writes the canonical form: header in canonical order, `;`, no quoting,
/// LF, a final newline. One `write_all` per line; wrap `out` in a
/// `BufWriter` for files.
pub struct CsvWriter<W: Write> {
    out: W,
    columns: &'static [&'static str],
    buf: String,
    fields: usize,
    lines: u64,
}

impl<W: Write> CsvWriter<W> {
    /// Writes the header.
    pub fn new(mut out: W, columns: &'static [&'static str]) -> Result<CsvWriter<W>, WriteError> {
        let mut header = columns.join(";");
        header.push('\n');
        out.write_all(header.as_bytes())?;
        Ok(CsvWriter {
            out,
            columns,
            buf: String::new(),
            fields: 0,
            lines: 0,
        })
    }

    /// Writes no header: for lines taken one at a time ([`CsvWriter::take_line`]).
    pub fn headless(out: W, columns: &'static [&'static str]) -> CsvWriter<W> {
        CsvWriter {
            out,
            columns,
            buf: String::new(),
            fields: 0,
            lines: 0,
        }
    }

    fn separate(&mut self) {
        if self.fields > 0 {
            self.buf.push(';');
        }
        self.fields += 1;
    }

    /// Appends a field; refuses a value that would need quoting or that the
    /// reader refuses (`;`, `"`, control characters, U+FEFF).
    pub fn field(&mut self, value: impl fmt::Display) -> Result<(), WriteError> {
        self.separate();
        let start = self.buf.len();
        // Writing to a String cannot fail.
        let _ = write!(self.buf, "{value}");
        let written = self.buf.get(start..).unwrap_or("");
        if let Some(c) = written
            .chars()
            .find(|c| matches!(c, ';' | '"' | '\u{feff}') || c.is_control())
        {
            let col = self.columns.get(self.fields - 1).copied().unwrap_or("?");
            let problem = format!("value {:?} of {col} contains {c:?}", shorten(written));
            self.buf.clear();
            self.fields = 0;
            return Err(WriteError::Invalid(problem));
        }
        Ok(())
    }

    /// Appends an empty field.
    pub fn empty(&mut self) {
        self.separate();
    }

    /// Ends the line and writes it.
    pub fn end_line(&mut self) -> Result<(), WriteError> {
        self.check_fields()?;
        self.buf.push('\n');
        let r = self.out.write_all(self.buf.as_bytes());
        self.buf.clear();
        self.fields = 0;
        r?;
        self.lines += 1;
        Ok(())
    }

    /// Ends the line and returns it, without its line end, instead of
    /// writing it.
    pub fn take_line(&mut self) -> Result<String, WriteError> {
        self.check_fields()?;
        self.fields = 0;
        self.lines += 1;
        Ok(std::mem::take(&mut self.buf))
    }

    fn check_fields(&mut self) -> Result<(), WriteError> {
        if self.fields != self.columns.len() {
            let problem = format!(
                "line has {} fields, the header {}",
                self.fields,
                self.columns.len()
            );
            self.buf.clear();
            self.fields = 0;
            return Err(WriteError::Invalid(problem));
        }
        Ok(())
    }

    /// Data lines written so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Flushes and returns the output and the number of data lines written.
    pub fn finish(mut self) -> Result<(W, u64), WriteError> {
        self.out.flush()?;
        Ok((self.out, self.lines))
    }
}
