//! The byte guard: every byte quick-xml sees went through here first.
//!
//! [`Guard`] wraps the payload's reader and hands its bytes on as a
//! [`BufRead`], checking each one on the way (UTF-8, characters XML forbids,
//! the size of the file and of one event, a UTF-16/UTF-32 layout) and
//! stopping with a [`GuardError`] at an absolute byte offset, so quick-xml
//! never buffers or parses what the formats refuse. It also records where
//! lines start, so an offset maps to a line.

use std::collections::VecDeque;
use std::io::{self, BufRead, Read};

use super::attrs::is_space;
use crate::format::Limits;

const GUARD_BUF: usize = 64 * 1024;

/// An error found by the guard, at an absolute byte offset.
#[derive(Debug, Clone)]
pub(super) struct GuardError {
    pub(super) offset: u64,
    pub(super) code: &'static str,
    pub(super) problem: String,
}

/// A `BufRead` adapter between the input and quick-xml that validates UTF-8,
/// refuses NUL and control characters, enforces the file size and the size of
/// one event (a tag, a text run, a comment) *before* quick-xml buffers it, and
/// records newline offsets so any offset of the current event maps to a line.
pub(super) struct Guard<R> {
    inner: R,
    buf: Box<[u8]>,
    /// Unconsumed bytes are `buf[start..end]`; `buf[start..ready]` are valid
    /// complete characters quick-xml may see.
    start: usize,
    ready: usize,
    end: usize,
    /// Absolute offset of `buf[start]`.
    pub(super) consumed: u64,
    /// Absolute offset of `buf[end]` (bytes read from the input so far).
    read: u64,
    eof: bool,
    started: bool,
    /// UTF-8 decoder: continuation bytes still expected, the range of the
    /// next one, and where the sequence began.
    need: u8,
    lo: u8,
    hi: u8,
    seq_start: u64,
    error: Option<GuardError>,
    /// Start of the current event and the budget for it.
    event_start: u64,
    /// The first byte of the current event that is not whitespace, once
    /// consumed.
    event_mark: Option<u64>,
    max_event: u64,
    max_file: u64,
    /// Line at `base_offset`, and the newlines seen at or after it.
    base_offset: u64,
    base_line: u64,
    newlines: VecDeque<u64>,
}

impl<R: Read> Guard<R> {
    pub(super) fn new(inner: R, limits: &Limits) -> Guard<R> {
        Guard {
            inner,
            buf: vec![0u8; GUARD_BUF].into_boxed_slice(),
            start: 0,
            ready: 0,
            end: 0,
            consumed: 0,
            read: 0,
            eof: false,
            started: false,
            need: 0,
            lo: 0x80,
            hi: 0xBF,
            seq_start: 0,
            error: None,
            event_start: 0,
            event_mark: None,
            max_event: u64::try_from(limits.max_record_bytes).unwrap_or(u64::MAX),
            max_file: limits.max_file_bytes,
            base_offset: 0,
            base_line: 1,
            newlines: VecDeque::new(),
        }
    }

    /// Called before each event: the budget restarts and lines before the
    /// event are forgotten (positions are never asked for earlier bytes).
    pub(super) fn begin_event(&mut self) {
        self.event_start = self.consumed;
        self.event_mark = None;
        while let Some(&nl) = self.newlines.front() {
            if nl >= self.consumed {
                break;
            }
            self.newlines.pop_front();
            self.base_line += 1;
        }
        self.base_offset = self.consumed;
    }

    /// Where the event read since [`Guard::begin_event`] starts: its first
    /// byte that is not whitespace, or where reading stopped if it has none
    /// (the end of the file).
    pub(super) fn event_start(&self) -> u64 {
        self.event_mark.unwrap_or(self.consumed)
    }

    /// 1-based line of an absolute offset at or after the current event start.
    pub(super) fn line_at(&self, offset: u64) -> u64 {
        self.base_line + self.newlines.iter().take_while(|&&nl| nl < offset).count() as u64
    }

    fn fail(&mut self, offset: u64, code: &'static str, problem: String) {
        if self.error.is_none() {
            self.error = Some(GuardError {
                offset,
                code,
                problem,
            });
        }
    }

    /// Reads more input into the buffer and validates it.
    fn refill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.ready -= self.start;
            self.start = 0;
        }
        let room = self.buf.len() - self.end;
        if room == 0 {
            // Cannot happen: at most 3 incomplete bytes stay unready.
            self.fail(self.read, "io", "internal buffer full".to_owned());
            return Ok(());
        }
        let mut n = self.read_at(self.end)?;
        if !self.started {
            // Look at the first four bytes at once for a byte order mark.
            while n > 0 && n < 4 {
                let more = self.read_at(self.end + n)?;
                if more == 0 {
                    break;
                }
                n += more;
            }
        }
        if n == 0 {
            self.eof = true;
            if self.need > 0 {
                let at = self.seq_start;
                self.fail(
                    at,
                    "xml-utf8",
                    "invalid utf-8: the file ends inside a multi-byte character".to_owned(),
                );
            }
            return Ok(());
        }
        let first = self.read;
        let mut stop = self.end + n;
        self.read += n as u64;
        if self.read > self.max_file {
            let over = usize::try_from(self.read - self.max_file).unwrap_or(n);
            stop -= over.min(n);
        }
        let from = self.end;
        self.end += n;
        let over_limit = self.read > self.max_file;
        if !self.started {
            self.started = true;
            if let Some(skip) = self.check_start(from, stop) {
                self.start = skip;
                self.ready = skip;
                self.consumed = skip as u64;
                self.base_offset = self.consumed;
                self.event_start = self.consumed;
                self.seq_start = self.consumed;
            }
        }
        let scan_from = from.max(self.start);
        self.validate(scan_from, stop, first + (scan_from - from) as u64);
        if over_limit {
            let limit = self.max_file;
            self.fail(
                limit,
                "xml-too-large",
                format!("the file is larger than the limit of {limit} bytes"),
            );
        }
        Ok(())
    }

    fn read_at(&mut self, at: usize) -> io::Result<usize> {
        let Some(room) = self.buf.get_mut(at..) else {
            return Ok(0);
        };
        loop {
            match self.inner.read(room) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Looks at the first bytes: UTF-8 byte order mark (skipped), UTF-16 or
    /// UTF-32 (refused). Returns the number of bytes to skip.
    fn check_start(&mut self, from: usize, stop: usize) -> Option<usize> {
        let head = self.buf.get(from..stop).unwrap_or(&[]);
        let utf16 = head.starts_with(&[0xFE, 0xFF])
            || head.starts_with(&[0xFF, 0xFE])
            || head.starts_with(&[0x00, 0x00, 0xFE, 0xFF])
            || head.starts_with(b"<\0")
            || head.starts_with(b"\0<");
        if utf16 {
            self.fail(
                0,
                "xml-encoding",
                "expected utf-8, found a utf-16 or utf-32 byte order mark or layout".to_owned(),
            );
            self.ready = from;
            return None;
        }
        if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
            return Some(from + 3);
        }
        None
    }

    /// Validates `buf[from..stop]` (absolute offset `abs` for `buf[from]`).
    fn validate(&mut self, from: usize, stop: usize, abs: u64) {
        if self.error.is_some() {
            // Nothing after an error is ever shown.
            return;
        }
        let mut i = from;
        // Up to where bytes are looked at one by one: the block in which the
        // fast path below met a byte it leaves to them.
        let mut slow_end = from;
        while i < stop {
            if self.need == 0 && i >= slow_end {
                // The bulk of a payload: blocks of ASCII text, each byte a
                // complete character; only their line ends are recorded.
                let run = text_run(&self.buf, i, stop);
                let first = abs + (i - from) as u64;
                self.newlines.extend(
                    memchr::memchr_iter(b'\n', &self.buf[i..run]).map(|at| first + at as u64),
                );
                i = run;
                self.ready = i;
                if i == stop {
                    break;
                }
                slow_end = (i + TEXT_BLOCK).min(stop);
            }
            let b = self.buf[i];
            let at = abs + (i - from) as u64;
            if self.need > 0 {
                if b < self.lo || b > self.hi {
                    let s = self.seq_start;
                    // `ready` already stops before the sequence.
                    self.fail(s, "xml-utf8", format!("invalid utf-8 byte 0x{b:02x}"));
                    return;
                }
                self.lo = 0x80;
                self.hi = 0xBF;
                self.need -= 1;
                if self.need == 0 {
                    self.ready = i + 1;
                }
                i += 1;
                continue;
            }
            match b {
                b'\n' => {
                    self.newlines.push_back(at);
                }
                b'\t' | b'\r' | 0x20..=0x7E => {}
                0x00 => {
                    self.fail(
                        at,
                        "xml-char",
                        "found a nul byte, which xml forbids".to_owned(),
                    );
                    return;
                }
                0x01..=0x1F | 0x7F => {
                    self.fail(
                        at,
                        "xml-char",
                        format!("found control character 0x{b:02x}, which xml forbids"),
                    );
                    return;
                }
                0xC2..=0xDF => self.begin_seq(at, 1, 0x80, 0xBF),
                0xE0 => self.begin_seq(at, 2, 0xA0, 0xBF),
                0xE1..=0xEC | 0xEE..=0xEF => self.begin_seq(at, 2, 0x80, 0xBF),
                0xED => self.begin_seq(at, 2, 0x80, 0x9F),
                0xF0 => self.begin_seq(at, 3, 0x90, 0xBF),
                0xF1..=0xF3 => self.begin_seq(at, 3, 0x80, 0xBF),
                0xF4 => self.begin_seq(at, 3, 0x80, 0x8F),
                _ => {
                    self.fail(at, "xml-utf8", format!("invalid utf-8 byte 0x{b:02x}"));
                    return;
                }
            }
            if self.need == 0 {
                self.ready = i + 1;
            }
            i += 1;
        }
    }

    fn begin_seq(&mut self, at: u64, need: u8, lo: u8, hi: u8) {
        self.need = need;
        self.lo = lo;
        self.hi = hi;
        self.seq_start = at;
    }

    pub(super) fn take_error(&mut self) -> Option<GuardError> {
        self.error.take()
    }
}

/// What [`text_run`] looks at in one go.
const TEXT_BLOCK: usize = 32;

/// The end of the run of ASCII text bytes (printable, tab, line feed,
/// carriage return) that starts at `from` in `buf[..stop]`, looked at a
/// block of [`TEXT_BLOCK`] bytes at a time (the compiler checks a block in a
/// few vector instructions); the last bytes, fewer than a block, and the
/// block that holds the first other byte are left to the byte-by-byte check.
fn text_run(buf: &[u8], from: usize, stop: usize) -> usize {
    let mut i = from;
    while let Some(block) = buf
        .get(i..i + TEXT_BLOCK)
        .filter(|_| i + TEXT_BLOCK <= stop)
        .and_then(|b| <&[u8; TEXT_BLOCK]>::try_from(b).ok())
    {
        // Without a branch per byte, so that it vectorises.
        let mut other = 0u8;
        for &b in block {
            let printable = b.wrapping_sub(0x20) < 0x5F;
            let space = (b == b'\t') | (b == b'\n') | (b == b'\r');
            other |= u8::from(!(printable | space));
        }
        if other != 0 {
            break;
        }
        i += TEXT_BLOCK;
    }
    i
}

impl<R: Read> Read for Guard<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: Read> BufRead for Guard<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.start >= self.ready {
            if self.error.is_some() {
                return Err(io::Error::other("input refused"));
            }
            if self.eof {
                return Ok(&[]);
            }
            self.refill()?;
        }
        // The budget counts from the event's first byte that is not
        // whitespace; until it comes, the whitespace before it is held to
        // the budget of a text run.
        let begun = self.event_mark.unwrap_or(self.event_start);
        let used = self.consumed - begun;
        if used >= self.max_event {
            let (start, max) = (begun, self.max_event);
            self.fail(
                start,
                "xml-tag-too-large",
                format!("a tag, text run or comment is longer than the limit of {max} bytes"),
            );
            return Err(io::Error::other("input refused"));
        }
        let budget = usize::try_from(self.max_event - used).unwrap_or(usize::MAX);
        let stop = self.ready.min(self.start.saturating_add(budget));
        Ok(&self.buf[self.start..stop])
    }

    fn consume(&mut self, amt: usize) {
        let amt = amt.min(self.ready - self.start);
        if self.event_mark.is_none() {
            let taken = self.buf.get(self.start..self.start + amt).unwrap_or(&[]);
            if let Some(i) = taken.iter().position(|b| !is_space(*b)) {
                self.event_mark = Some(self.consumed + i as u64);
            }
        }
        self.start += amt;
        self.consumed += amt as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::{TEXT_BLOCK, text_run};

    #[test]
    fn a_text_run_stops_before_the_block_of_any_other_byte() {
        let text = |b: u8| matches!(b, 0x20..=0x7E | b'\t' | b'\n' | b'\r');
        let len = 3 * TEXT_BLOCK + 5;
        for b in 0..=u8::MAX {
            for at in (0..len).step_by(7) {
                let mut buf = vec![b'a'; len];
                buf[at] = b;
                for from in [0, 1, 5] {
                    let end = text_run(&buf, from, buf.len());
                    assert!(end >= from && end <= buf.len());
                    assert_eq!((end - from) % TEXT_BLOCK, 0);
                    assert!(buf[from..end].iter().all(|&c| text(c)), "{b:#x} at {at}");
                    if text(b) || at < from {
                        // Only the tail shorter than a block is left.
                        assert!(
                            buf.len() - end < TEXT_BLOCK,
                            "{b:#x} at {at} from {from}: {end}"
                        );
                    } else {
                        assert!(
                            end <= at && at < end + TEXT_BLOCK,
                            "{b:#x} at {at} from {from}: {end}"
                        );
                    }
                }
            }
        }
        // Never past `stop`.
        assert_eq!(text_run(&[b'a'; 80], 0, 70), 2 * TEXT_BLOCK);
    }
}
