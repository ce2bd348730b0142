//! The guard between the input and the `csv` crate: bounded, strict
//! physical lines.
//!
//! [`Guard`] wraps the payload's [`BufRead`] and passes its bytes on
//! unchanged, counting them per physical line and per file, and stops with a
//! [`GuardError`] (code, line, field) at the first byte that breaks a limit
//! or a rule of the dialect the `csv` crate would accept silently: a bare CR,
//! mixed line ends, a blank line, text after a closing quote, an unclosed
//! quote, a line break inside quotes. A leading byte order mark is dropped.

use std::fmt;
use std::io::{self, BufRead, Read};

use crate::format::Limits;

/// The UTF-8 byte order mark, accepted once at the very start of a file.
const BOM: [u8; 3] = [0xEF, 0xBB, 0xBF];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ends {
    Lf,
    CrLf,
}

impl fmt::Display for Ends {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ends::Lf => "LF",
            Ends::CrLf => "CRLF",
        })
    }
}

/// The bytes the guard looks at one by one (LF, CR, `"`, `;`); every other
/// byte only counts.
const SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    t[b'\n' as usize] = true;
    t[b'\r' as usize] = true;
    t[b'"' as usize] = true;
    t[b';' as usize] = true;
    t
};

/// Where the lexer is within a field, mirroring the `csv` crate's reading
/// (so both agree where fields start and end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quote {
    FieldStart,
    Unquoted,
    Quoted,
    /// A `"` seen inside a quoted field: either the closing quote or the
    /// first half of a doubled one.
    Closing,
}

/// A problem the guard found; the field is an index (the header may not be
/// known yet) that [`CsvReader`](super::CsvReader) turns into a column name.
#[derive(Debug, Clone)]
pub(super) struct GuardError {
    /// `None`: the file as a whole.
    pub(super) line: Option<u64>,
    pub(super) field: Option<usize>,
    pub(super) code: &'static str,
    pub(super) problem: String,
}

/// Byte-level state of the guard, apart from the input so the input's buffer
/// can be borrowed while it changes.
#[derive(Debug)]
pub(super) struct Lexer {
    max_record_bytes: usize,
    max_file_bytes: u64,
    total: u64,
    /// Current physical line, 1-based.
    line: u64,
    /// Bytes of the current line so far, terminator included.
    line_bytes: usize,
    /// Field index within the current line, 0-based.
    field: usize,
    quote: Quote,
    /// The previous byte was a CR outside quotes.
    cr: bool,
    ends: Option<Ends>,
    pub(super) error: Option<GuardError>,
}

impl Lexer {
    fn fail(&self, field: bool, code: &'static str, problem: String) -> GuardError {
        GuardError {
            line: Some(self.line),
            field: field.then_some(self.field),
            code,
            problem,
        }
    }

    /// Copies bytes from `src` to `out` until one is full or a line ends
    /// (so the `csv` reader never holds more than the line it is reading).
    /// Returns how many bytes were taken; on a problem, records it in
    /// `self.error`. Runs of ordinary bytes are taken in one step.
    fn scan(&mut self, src: &[u8], out: &mut [u8]) -> usize {
        let end = src.len().min(out.len());
        let (Some(src_part), Some(out_part)) = (src.get(..end), out.get_mut(..end)) else {
            return 0;
        };
        let mut i = 0;
        while i < end {
            // A plain loop: this is the hot path, and iterator adaptors are
            // slow in unoptimised (test) builds. `j < end` bounds the index.
            let mut j = i;
            while j < end && !SPECIAL[usize::from(src_part[j])] {
                j += 1;
            }
            let run = j - i;
            if run > 0 {
                if let Err(e) = self.ordinary(run, src_part.get(i).copied().unwrap_or(0)) {
                    self.error = Some(e);
                    return i;
                }
                if let (Some(dst), Some(from)) =
                    (out_part.get_mut(i..i + run), src_part.get(i..i + run))
                {
                    dst.copy_from_slice(from);
                }
                i += run;
            }
            let Some(&b) = src_part.get(i) else {
                break;
            };
            // Keep a CR that ends the available input for the next call, so
            // it is judged together with the byte after it.
            if b == b'\r' && i > 0 && i + 1 == src.len() {
                return i;
            }
            if let Err(e) = self.step(b) {
                self.error = Some(e);
                return i;
            }
            if let Some(o) = out_part.get_mut(i) {
                *o = b;
            }
            i += 1;
            if b == b'\n' {
                return i;
            }
        }
        end
    }

    /// `run` bytes that are neither a line end, a quote nor a separator,
    /// the first being `first`: only counters and the quote state change.
    fn ordinary(&mut self, run: usize, first: u8) -> Result<(), GuardError> {
        self.total += run as u64;
        if self.total > self.max_file_bytes {
            return Err(self.file_too_large());
        }
        if self.cr {
            return Err(self.bare_cr());
        }
        self.line_bytes += run;
        if self.line_bytes > self.max_record_bytes {
            return Err(self.too_long());
        }
        match self.quote {
            Quote::FieldStart => self.quote = Quote::Unquoted,
            Quote::Closing => return Err(self.after_closing_quote(first)),
            Quote::Unquoted | Quote::Quoted => {}
        }
        Ok(())
    }

    fn file_too_large(&self) -> GuardError {
        GuardError {
            line: None,
            field: None,
            code: "csv-file-too-large",
            problem: format!(
                "the payload is larger than the limit of {} bytes",
                self.max_file_bytes
            ),
        }
    }

    fn bare_cr(&self) -> GuardError {
        self.fail(
            false,
            "csv-line-ends",
            "found a carriage return (CR) not followed by a line feed (LF); line ends must be LF or CRLF".into(),
        )
    }

    fn too_long(&self) -> GuardError {
        self.fail(
            true,
            "csv-too-long",
            format!(
                "the line is longer than the limit of {} bytes",
                self.max_record_bytes
            ),
        )
    }

    fn after_closing_quote(&self, b: u8) -> GuardError {
        self.fail(
            true,
            "csv-quote",
            format!(
                "expected ';' or the end of the line after a closing quote, found {:?}",
                char::from(b)
            ),
        )
    }

    /// One byte that is [`SPECIAL`].
    fn step(&mut self, b: u8) -> Result<(), GuardError> {
        self.total += 1;
        if self.total > self.max_file_bytes {
            return Err(self.file_too_large());
        }
        if self.cr && b != b'\n' {
            return Err(self.bare_cr());
        }
        self.line_bytes += 1;
        if self.line_bytes > self.max_record_bytes {
            return Err(self.too_long());
        }
        match b {
            b'\n' => {
                if self.quote == Quote::Quoted {
                    return Err(self.line_break());
                }
                let ends = if self.cr { Ends::CrLf } else { Ends::Lf };
                match self.ends {
                    None => self.ends = Some(ends),
                    Some(first) if first != ends => {
                        return Err(self.fail(
                            false,
                            "csv-line-ends",
                            format!("expected {first} line ends as on line 1, found {ends}"),
                        ));
                    }
                    Some(_) => {}
                }
                if self.line_bytes == 1 + usize::from(self.cr) {
                    return Err(self.fail(
                        false,
                        "csv-blank-line",
                        "expected a record, found a blank line".into(),
                    ));
                }
                self.line += 1;
                self.line_bytes = 0;
                self.field = 0;
                self.quote = Quote::FieldStart;
                self.cr = false;
            }
            b'\r' => {
                if self.quote == Quote::Quoted {
                    return Err(self.line_break());
                }
                self.cr = true;
            }
            b'"' => {
                self.quote = match self.quote {
                    Quote::FieldStart | Quote::Closing => Quote::Quoted,
                    Quote::Quoted => Quote::Closing,
                    // A quote inside an unquoted field is a plain character,
                    // as for the csv crate; no value of ours accepts it, so
                    // the field's parser refuses it with its column.
                    Quote::Unquoted => Quote::Unquoted,
                };
            }
            // b';'
            _ => {
                if self.quote != Quote::Quoted {
                    self.field += 1;
                    self.quote = Quote::FieldStart;
                }
            }
        }
        Ok(())
    }

    fn line_break(&self) -> GuardError {
        self.fail(
            true,
            "csv-line-break",
            "found a line break inside a quoted field (or a quote never closed on its line); fields may not span lines".into(),
        )
    }

    /// End of input: nothing may be left open.
    fn finish(&mut self) {
        if self.error.is_some() {
            return;
        }
        if self.cr {
            self.error = Some(self.fail(
                false,
                "csv-line-ends",
                "the file ends with a carriage return (CR) not followed by a line feed (LF)".into(),
            ));
        } else if self.quote == Quote::Quoted {
            self.error = Some(self.fail(
                true,
                "csv-unclosed-quote",
                "the file ends inside a quoted field: expected a closing quote".into(),
            ));
        }
    }
}

/// How the first bytes (a possible BOM) are handled.
#[derive(Debug)]
enum Head {
    Unread,
    /// First bytes that were not a BOM, to pass on before the rest.
    Replay {
        buf: [u8; 3],
        pos: usize,
        len: usize,
    },
    Done,
}

/// A [`Read`] over the caller's [`BufRead`] that delivers at most one
/// physical line per call and fails as soon as a line, or the file, passes
/// its limit, or breaks the quoting and line-end rules, without buffering the
/// offending line.
#[derive(Debug)]
pub(super) struct Guard<R> {
    inner: R,
    head: Head,
    pub(super) lex: Lexer,
}

impl<R: BufRead> Guard<R> {
    pub(super) fn new(inner: R, limits: &Limits) -> Guard<R> {
        Guard {
            inner,
            head: Head::Unread,
            lex: Lexer {
                max_record_bytes: limits.max_record_bytes,
                max_file_bytes: limits.max_file_bytes,
                total: 0,
                line: 1,
                line_bytes: 0,
                field: 0,
                quote: Quote::FieldStart,
                cr: false,
                ends: None,
                error: None,
            },
        }
    }

    /// Reads until `buf` is full or the input ends.
    fn fill(&mut self, buf: &mut [u8; 3]) -> io::Result<usize> {
        let mut len = 0;
        while len < buf.len() {
            let avail = self.inner.fill_buf()?;
            if avail.is_empty() {
                break;
            }
            let take = avail.len().min(buf.len() - len);
            if let (Some(dst), Some(src)) = (buf.get_mut(len..len + take), avail.get(..take)) {
                dst.copy_from_slice(src);
            }
            self.inner.consume(take);
            len += take;
        }
        Ok(len)
    }

    /// Drops a leading BOM. The `csv` crate would silently drop a BOM at the
    /// start of what it is given too, so a second one is refused here rather
    /// than left for it to swallow.
    fn read_head(&mut self) -> io::Result<()> {
        let mut buf = [0u8; 3];
        let mut len = self.fill(&mut buf)?;
        if len == BOM.len() && buf == BOM {
            self.lex.total += BOM.len() as u64;
            len = self.fill(&mut buf)?;
            if len == BOM.len() && buf == BOM {
                self.lex.error = Some(self.lex.fail(
                    true,
                    "csv-bom",
                    "found a second byte order mark (U+FEFF); one is allowed as the first bytes of the file".into(),
                ));
            }
        }
        self.head = Head::Replay { buf, pos: 0, len };
        Ok(())
    }

    fn stopped() -> io::Error {
        io::Error::other("csv input refused by the guard")
    }
}

impl<R: BufRead> Read for Guard<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.lex.error.is_some() {
            return Err(Self::stopped());
        }
        if out.is_empty() {
            return Ok(0);
        }
        if let Head::Unread = self.head {
            self.read_head()?;
            if self.lex.error.is_some() {
                return Err(Self::stopped());
            }
        }
        if let Head::Replay { buf, pos, len } = &mut self.head {
            let src = buf.get(*pos..*len).unwrap_or(&[]);
            let n = self.lex.scan(src, out);
            *pos += n;
            if *pos >= *len {
                self.head = Head::Done;
            }
            if self.lex.error.is_some() {
                return Err(Self::stopped());
            }
            if n > 0 {
                return Ok(n);
            }
        }
        let avail = self.inner.fill_buf()?;
        let n = if avail.is_empty() {
            self.lex.finish();
            0
        } else {
            let n = self.lex.scan(avail, out);
            self.inner.consume(n);
            n
        };
        if self.lex.error.is_some() {
            return Err(Self::stopped());
        }
        Ok(n)
    }
}
