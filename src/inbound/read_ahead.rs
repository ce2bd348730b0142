//! The payload as the parse stage reads it: hashed again on the way, and
//! for a large payload read and hashed on a thread of its own.
//!
//! [`parse`](super::parse) compares the size and SHA-256 of the bytes it
//! parsed with the verified ones at the end, so a payload changed between
//! verification and parsing applies nothing. That second digest costs about
//! a tenth of a seat plan's parse. [`ReadAhead`] hands the parser chunks of
//! the payload that a second thread reads and hashes a few chunks ahead, so
//! the parser's thread only parses; a payload under [`THREAD_FROM`] bytes
//! (most files a daemon sees) is read and hashed inline, where a thread
//! would cost more than it saves, and so is any payload when no thread can
//! be started.
//!
//! The digest is told ([`Tap::finish`]) only once the parser has been handed
//! the end of the payload, and so is the payload's watcher ([`Tally`]: the
//! progress bar, the daemon's record of the file it reads) told of each
//! chunk and of the end: the reading thread being ahead never counts.

use std::io::{self, BufRead, Read};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;

use sha2::{Digest, Sha256};

use crate::format::envelope::STREAM_BUFFER;
use crate::transport::progress::{Counted, Tally};

/// From this many bytes, a payload is read on a thread of its own.
pub const THREAD_FROM: u64 = 1 << 20;

/// Chunks read ahead of the parser, at most.
const AHEAD: usize = 4;

/// What the reading side hands over next.
enum Chunk {
    /// A buffer and how many of its bytes were read.
    Bytes(Vec<u8>, usize),
    /// The end of the payload: its size and SHA-256.
    End(u64, [u8; 32]),
    Failed(io::Error),
}

/// Reads the payload a chunk at a time and hashes each chunk read.
struct Producer<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Producer<R> {
    /// The next chunk, read into `buf`.
    fn produce(&mut self, mut buf: Vec<u8>) -> Chunk {
        loop {
            match self.inner.read(&mut buf) {
                Ok(0) => {
                    let digest = std::mem::take(&mut self.hasher).finalize();
                    return Chunk::End(self.bytes, digest.into());
                }
                Ok(n) => {
                    self.hasher.update(&buf[..n]);
                    self.bytes += n as u64;
                    return Chunk::Bytes(buf, n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Chunk::Failed(e),
            }
        }
    }
}

enum Source<R> {
    Inline(Producer<R>),
    Thread {
        /// Dropped first when the reader goes, so the thread stops.
        chunks: Option<Receiver<Chunk>>,
        /// Buffers read already, handed back to be read into again.
        spent: Sender<Vec<u8>>,
        thread: Option<JoinHandle<()>>,
    },
}

/// Where the parser stands in the payload.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Reading,
    Ended,
    Failed(io::ErrorKind),
}

/// The payload, hashed as it is read, as a [`BufRead`] for the parser.
pub struct ReadAhead<R> {
    source: Source<R>,
    current: Vec<u8>,
    /// `current[at..len]` is what the parser has not consumed yet.
    at: usize,
    len: usize,
    state: State,
    end: Arc<OnceLock<(u64, [u8; 32])>>,
    /// Told of what the parser is handed, as it is.
    tally: Tally,
}

/// The size and SHA-256 of what a [`ReadAhead`] handed over, once it
/// handed over the end.
#[derive(Clone)]
pub struct Tap(Arc<OnceLock<(u64, [u8; 32])>>);

impl Tap {
    /// The payload's size and SHA-256, or `None` while the parser has not
    /// been handed its end.
    pub fn finish(&self) -> Option<(u64, [u8; 32])> {
        self.0.get().copied()
    }
}

impl<R: Read + Send + 'static> ReadAhead<R> {
    /// `payload`, `bytes` long as far as the caller knows, read on a thread
    /// of its own from [`THREAD_FROM`] bytes.
    pub fn new(payload: Counted<R>, bytes: u64) -> (ReadAhead<R>, Tap) {
        ReadAhead::with_threshold(payload, bytes, THREAD_FROM)
    }

    fn with_threshold(payload: Counted<R>, bytes: u64, thread_from: u64) -> (ReadAhead<R>, Tap) {
        let (inner, tally) = payload.into_parts();
        let producer = Producer {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        };
        let source = if bytes >= thread_from {
            spawn(producer)
        } else {
            Source::Inline(producer)
        };
        let end = Arc::new(OnceLock::new());
        let reader = ReadAhead {
            source,
            current: Vec::new(),
            at: 0,
            len: 0,
            state: State::Reading,
            end: Arc::clone(&end),
            tally,
        };
        (reader, Tap(end))
    }
}

/// The reading thread, given the producer once it runs; inline when no
/// thread can be started.
fn spawn<R: Read + Send + 'static>(producer: Producer<R>) -> Source<R> {
    let (give, given) = mpsc::sync_channel::<Producer<R>>(1);
    let (chunks_tx, chunks) = mpsc::sync_channel::<Chunk>(AHEAD);
    let (spent, spent_rx) = mpsc::channel::<Vec<u8>>();
    let started = std::thread::Builder::new()
        .name("stxd-read".to_owned())
        .spawn(move || read_ahead(&given, &chunks_tx, &spent_rx));
    let thread = match started {
        Ok(thread) => thread,
        Err(e) => {
            tracing::warn!(error = %e, "no thread to read the payload ahead: it is read inline");
            return Source::Inline(producer);
        }
    };
    if let Err(mpsc::SendError(producer)) = give.send(producer) {
        // The thread ended before taking it (it cannot, short of a panic).
        let _ = thread.join();
        return Source::Inline(producer);
    }
    Source::Thread {
        chunks: Some(chunks),
        spent,
        thread: Some(thread),
    }
}

/// The reading thread: chunk after chunk until the end, a failure, or the
/// parser's side going away.
fn read_ahead<R: Read>(
    given: &Receiver<Producer<R>>,
    chunks: &SyncSender<Chunk>,
    spent: &Receiver<Vec<u8>>,
) {
    let Ok(mut producer) = given.recv() else {
        return;
    };
    loop {
        let buf = spent.try_recv().unwrap_or_else(|_| vec![0; STREAM_BUFFER]);
        let chunk = producer.produce(buf);
        let last = !matches!(chunk, Chunk::Bytes(..));
        if chunks.send(chunk).is_err() || last {
            return;
        }
    }
}

impl<R: Read> ReadAhead<R> {
    /// The next chunk into `current`; `false` at the end.
    fn next_chunk(&mut self) -> io::Result<bool> {
        match self.state {
            State::Reading => {}
            State::Ended => return Ok(false),
            State::Failed(kind) => {
                return Err(io::Error::new(kind, "the payload's read failed earlier"));
            }
        }
        let buf = std::mem::take(&mut self.current);
        let chunk = match &mut self.source {
            Source::Inline(producer) => {
                let buf = if buf.is_empty() {
                    vec![0; STREAM_BUFFER]
                } else {
                    buf
                };
                producer.produce(buf)
            }
            Source::Thread { chunks, spent, .. } => {
                if !buf.is_empty() {
                    // The thread may have ended: the buffer is dropped then.
                    let _ = spent.send(buf);
                }
                chunks
                    .as_ref()
                    .and_then(|c| c.recv().ok())
                    .unwrap_or_else(|| {
                        Chunk::Failed(io::Error::other(
                            "the thread reading the payload ended before its end",
                        ))
                    })
            }
        };
        match chunk {
            Chunk::Bytes(buf, n) => {
                self.tally.read(&buf[..n]);
                self.current = buf;
                self.at = 0;
                self.len = n;
                Ok(true)
            }
            Chunk::End(bytes, digest) => {
                self.tally.read(&[]);
                self.state = State::Ended;
                let _ = self.end.set((bytes, digest));
                Ok(false)
            }
            Chunk::Failed(e) => {
                self.state = State::Failed(e.kind());
                Err(e)
            }
        }
    }
}

impl<R: Read> BufRead for ReadAhead<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.at == self.len && !self.next_chunk()? {
            return Ok(&[]);
        }
        Ok(&self.current[self.at..self.len])
    }

    fn consume(&mut self, amt: usize) {
        self.at = (self.at + amt).min(self.len);
    }
}

impl<R: Read> Read for ReadAhead<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R> Drop for ReadAhead<R> {
    /// Stops the reading thread and waits for it, so the payload is closed
    /// once the parser is gone.
    fn drop(&mut self) {
        if let Source::Thread { chunks, thread, .. } = &mut self.source {
            drop(chunks.take());
            if let Some(thread) = thread.take() {
                let _ = thread.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::progress::{Progress, Watch};
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A payload that fails after `fail_at` bytes (if given) and says when
    /// it is dropped.
    struct Payload {
        bytes: io::Cursor<Vec<u8>>,
        fail_at: Option<u64>,
        dropped: Arc<AtomicBool>,
    }

    impl Read for Payload {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let at = self.bytes.position();
            match self.fail_at {
                Some(f) if at >= f => Err(io::Error::new(io::ErrorKind::InvalidData, "bad disk")),
                Some(f) => {
                    let room = usize::try_from(f - at).unwrap().min(buf.len());
                    self.bytes.read(&mut buf[..room])
                }
                None => self.bytes.read(buf),
            }
        }
    }

    impl Drop for Payload {
        fn drop(&mut self) {
            self.dropped.store(true, Ordering::SeqCst);
        }
    }

    fn payload(len: usize, fail_at: Option<u64>) -> (Counted<Payload>, Vec<u8>, Arc<AtomicBool>) {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let dropped = Arc::new(AtomicBool::new(false));
        let p = Payload {
            bytes: io::Cursor::new(bytes.clone()),
            fail_at,
            dropped: Arc::clone(&dropped),
        };
        (Watch::none().reader(p, "p", len as u64), bytes, dropped)
    }

    /// Both ways of reading: inline and on a thread.
    const WAYS: [(&str, u64); 2] = [("inline", u64::MAX), ("thread", 0)];

    #[test]
    fn every_byte_is_handed_over_in_order_and_hashed_once_the_end_is_reached() {
        let sizes = [
            0,
            1,
            STREAM_BUFFER - 1,
            STREAM_BUFFER,
            7 * STREAM_BUFFER + 13,
        ];
        for (way, from) in WAYS {
            for len in sizes {
                let (p, bytes, _) = payload(len, None);
                let (mut r, tap) = ReadAhead::with_threshold(p, len as u64, from);
                assert!(matches!(
                    (&r.source, way),
                    (Source::Inline(_), "inline") | (Source::Thread { .. }, "thread")
                ));
                // Odd reads, so they straddle the chunks.
                let mut got = Vec::new();
                let mut small = [0u8; 1000];
                loop {
                    let n = r.read(&mut small).unwrap();
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&small[..n]);
                    if got.len() < bytes.len() {
                        assert_eq!(tap.finish(), None, "{way} {len}: told before the end");
                    }
                }
                assert!(got == bytes, "{way} {len}: bytes differ");
                let digest: [u8; 32] = Sha256::digest(&bytes).into();
                assert_eq!(tap.finish(), Some((len as u64, digest)), "{way} {len}");
                // Past the end, the end again.
                assert_eq!(r.read(&mut small).unwrap(), 0);
            }
        }
    }

    /// What a watcher heard, in order.
    #[derive(Default)]
    struct Heard(Mutex<Vec<String>>);

    impl Progress for Arc<Heard> {
        fn start(&self, _file: &str, what: &'static str, _bytes: u64) {
            self.0.lock().unwrap().push(format!("start {what}"));
        }
        fn advance(&self, bytes: u64, _lines: u64) {
            self.0.lock().unwrap().push(format!("+{bytes}"));
        }
        fn finish(&self) {
            self.0.lock().unwrap().push("finish".to_owned());
        }
    }

    #[test]
    fn a_reader_ahead_of_the_parser_tells_no_digest_and_no_end_until_the_parser_ends() {
        // The whole payload fits in the chunks read ahead: the thread has
        // read it all long before the parser asks for its last chunk.
        let len = 3 * STREAM_BUFFER;
        let heard = Arc::new(Heard::default());
        let (p, _, _) = payload(len, None);
        let (inner, _) = p.into_parts();
        let mut p = Watch::new(Arc::clone(&heard)).reader(inner, "p", len as u64);
        p.pass("parse");
        let (mut r, tap) = ReadAhead::with_threshold(p, len as u64, 0);
        assert_eq!(r.fill_buf().unwrap().len(), STREAM_BUFFER);
        let Source::Thread { thread, .. } = &r.source else {
            panic!("read inline");
        };
        let ends = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !thread.as_ref().unwrap().is_finished() {
            assert!(std::time::Instant::now() < ends, "the thread never ended");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        r.consume(STREAM_BUFFER);
        assert_eq!(tap.finish(), None);
        let chunk = format!("+{STREAM_BUFFER}");
        assert_eq!(*heard.0.lock().unwrap(), ["start parse", chunk.as_str()]);
        io::copy(&mut r, &mut io::sink()).unwrap();
        assert!(tap.finish().is_some());
        let told = ["start parse", &chunk, &chunk, &chunk, "finish"];
        assert_eq!(*heard.0.lock().unwrap(), told);
        drop(r);
        assert_eq!(*heard.0.lock().unwrap(), told, "the end is told once");
    }

    #[test]
    fn a_failed_read_comes_after_the_bytes_before_it_and_stays() {
        for (way, from) in WAYS {
            let fail_at = 2 * STREAM_BUFFER as u64 + 5;
            let (p, bytes, _) = payload(5 * STREAM_BUFFER, Some(fail_at));
            let (mut r, tap) = ReadAhead::with_threshold(p, bytes.len() as u64, from);
            let mut got = Vec::new();
            let e = r.read_to_end(&mut got).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{way}");
            assert_eq!(got.len() as u64, fail_at, "{way}");
            assert!(got[..] == bytes[..got.len()], "{way}");
            let again = r.fill_buf().unwrap_err();
            assert_eq!(again.kind(), io::ErrorKind::InvalidData, "{way}");
            assert_eq!(tap.finish(), None, "{way}");
        }
    }

    #[test]
    fn dropping_the_reader_midway_closes_the_payload_before_it_returns() {
        for (way, from) in WAYS {
            let len = 20 * STREAM_BUFFER;
            let (p, _, dropped) = payload(len, None);
            let (mut r, _tap) = ReadAhead::with_threshold(p, len as u64, from);
            assert!(!r.fill_buf().unwrap().is_empty());
            // The thread is blocked handing over a full queue by now, or
            // about to be.
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert!(!dropped.load(Ordering::SeqCst), "{way}");
            drop(r);
            assert!(dropped.load(Ordering::SeqCst), "{way}: payload still open");
        }
    }
}
