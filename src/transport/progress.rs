//! Watching a file being read: the [`Progress`] observer a command passes
//! down to the code that opens the file, and the [`Counted`] reader that
//! tells it how many bytes and lines went by.
//!
//! The stages never report progress themselves and never learn who
//! watches: the layer that opens a file wraps it in [`Watch::reader`], and
//! whoever reads it (a digest pass, a parser) moves the count along. A
//! reader that reads the file in one place and hands its bytes over in
//! another (the parse's read-ahead thread) takes the [`Tally`] apart and
//! moves it where the bytes are used. The command line draws a progress bar
//! from it on a terminal; the daemon records the file it reads for `stxd
//! status` (`daemon::progress`); with nobody watching ([`Watch::none`]) a
//! read costs one branch more.

use std::io::{self, Read, Seek, SeekFrom};
use std::sync::Arc;

/// Someone watching files being read, one pass at a time.
pub trait Progress: Send + Sync {
    /// A pass over `file` (`bytes` long) begins; `what` says which
    /// (`verify`, `parse`, `load`).
    fn start(&self, file: &str, what: &'static str, bytes: u64);
    /// `bytes` more bytes were read, holding `lines` line ends.
    fn advance(&self, bytes: u64, lines: u64);
    /// The pass ended: the whole file was read, or the reader was dropped.
    fn finish(&self);
}

/// The observer passed down, or nobody.
#[derive(Clone, Default)]
pub struct Watch(Option<Arc<dyn Progress>>);

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Watch(observed)"
        } else {
            "Watch(none)"
        })
    }
}

impl Watch {
    /// Nobody watches: reads are not counted.
    pub fn none() -> Watch {
        Watch(None)
    }

    /// `progress` watches every file opened with [`Watch::reader`].
    pub fn new(progress: impl Progress + 'static) -> Watch {
        Watch(Some(Arc::new(progress)))
    }

    /// `inner`, the file named `file` (`bytes` long), counted as it is
    /// read. No pass has begun: the reader's user names it with
    /// [`Counted::pass`] (a first read without one begins an unnamed pass).
    pub fn reader<R>(&self, inner: R, file: &str, bytes: u64) -> Counted<R> {
        Counted {
            inner,
            tally: Tally {
                file: file.to_owned(),
                bytes,
                progress: self.0.clone(),
                open: false,
            },
        }
    }
}

/// A reader that tells its [`Watch`] every read: bytes, and line ends
/// (`\n`) among them.
#[derive(Debug)]
pub struct Counted<R> {
    inner: R,
    tally: Tally,
}

/// What the [`Watch`] of one file hears: the pass open on it, and the bytes
/// read. A pass still open when the tally goes is finished then.
pub struct Tally {
    file: String,
    bytes: u64,
    progress: Option<Arc<dyn Progress>>,
    /// A pass was announced and not finished.
    open: bool,
}

impl std::fmt::Debug for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tally")
            .field("file", &self.file)
            .field("bytes", &self.bytes)
            .field("watched", &self.progress.is_some())
            .finish()
    }
}

impl Tally {
    /// A new pass over the file begins (after a rewind, say): `what` names
    /// it for the watcher.
    pub fn pass(&mut self, what: &'static str) {
        if let Some(p) = &self.progress {
            if self.open {
                p.finish();
            }
            p.start(&self.file, what, self.bytes);
            self.open = true;
        }
    }

    /// `read` came off the file (nothing: its end, which ends the pass).
    pub fn read(&mut self, read: &[u8]) {
        if let Some(p) = &self.progress {
            if !self.open {
                p.start(&self.file, "read", self.bytes);
                self.open = true;
            }
            if read.is_empty() {
                self.end();
            } else {
                let lines = read.iter().filter(|&&b| b == b'\n').count();
                p.advance(read.len() as u64, lines as u64);
            }
        }
    }

    fn end(&mut self) {
        if let Some(p) = &self.progress
            && self.open
        {
            p.finish();
            self.open = false;
        }
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        self.end();
    }
}

impl<R> Counted<R> {
    /// A new pass over the file begins (after a rewind, say): `what` names
    /// it for the watcher.
    pub fn pass(&mut self, what: &'static str) {
        self.tally.pass(what);
    }

    /// The reader inside.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The reader inside and its tally apart, for a reader that reads the
    /// file in one place and hands its bytes over in another: the tally
    /// goes where the bytes are used.
    pub fn into_parts(self) -> (R, Tally) {
        (self.inner, self.tally)
    }
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.tally.read(&buf[..n]);
        Ok(n)
    }
}

impl<R: Seek> Seek for Counted<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records every call, as a test's watcher.
    #[derive(Default)]
    struct Seen(Mutex<Vec<String>>);

    impl Progress for Arc<Seen> {
        fn start(&self, file: &str, what: &'static str, bytes: u64) {
            self.0
                .lock()
                .unwrap()
                .push(format!("start {what} {file} {bytes}"));
        }
        fn advance(&self, bytes: u64, lines: u64) {
            self.0
                .lock()
                .unwrap()
                .push(format!("+{bytes} bytes {lines} lines"));
        }
        fn finish(&self) {
            self.0.lock().unwrap().push("finish".into());
        }
    }

    /// A reader handing out at most `chunk` bytes per read.
    struct Chunks<'a>(&'a [u8], usize);

    impl Read for Chunks<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(buf.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn counts_bytes_and_line_ends_of_each_read_and_ends_the_pass_at_eof() {
        let seen = Arc::new(Seen::default());
        let watch = Watch::new(seen.clone());
        let text = b"a;b\nc;d\n\nlast line without end";
        let mut reader = watch.reader(Chunks(text, 5), "f.csv", text.len() as u64);
        reader.pass("parse");
        let (mut out, mut buf) = (Vec::new(), [0u8; 64]);
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, text, "the bytes pass through unchanged");
        let calls = seen.0.lock().unwrap().clone();
        assert_eq!(calls[0], format!("start parse f.csv {}", text.len()));
        assert_eq!(calls.last().unwrap(), "finish");
        let (mut bytes, mut lines) = (0, 0);
        for c in &calls[1..calls.len() - 1] {
            let words: Vec<&str> = c.split(' ').collect();
            bytes += words[0].trim_start_matches('+').parse::<u64>().unwrap();
            lines += words[2].parse::<u64>().unwrap();
        }
        assert_eq!((bytes, lines), (text.len() as u64, 3));
        assert_eq!(
            calls.len(),
            1 + text.len().div_ceil(5) + 1,
            "one call per read of 5 bytes: {calls:?}"
        );
        drop(reader);
        assert_eq!(
            seen.0.lock().unwrap().len(),
            calls.len(),
            "a pass ends once"
        );
    }

    #[test]
    fn a_second_pass_after_a_rewind_starts_again_and_a_drop_ends_it() {
        let seen = Arc::new(Seen::default());
        let watch = Watch::new(seen.clone());
        let data = b"x\ny\nz\n".to_vec();
        let mut reader = watch.reader(io::Cursor::new(data), "p.xml", 6);
        reader.pass("verify");
        io::copy(&mut reader, &mut io::sink()).unwrap();
        reader.seek(SeekFrom::Start(0)).unwrap();
        reader.pass("parse");
        let mut two = [0u8; 2];
        reader.read_exact(&mut two).unwrap();
        drop(reader);
        assert_eq!(
            *seen.0.lock().unwrap(),
            [
                "start verify p.xml 6",
                "+6 bytes 3 lines",
                "finish",
                "start parse p.xml 6",
                "+2 bytes 1 lines",
                "finish",
            ]
        );
    }

    #[test]
    fn nobody_watching_reads_the_same_bytes() {
        let data = b"a\nb\n";
        let mut reader = Watch::none().reader(&data[..], "f", 4);
        reader.pass("parse");
        let mut out = String::new();
        reader.read_to_string(&mut out).unwrap();
        assert_eq!(out, "a\nb\n");
    }
}
