//! Standard output of every command, through [`stdout`]: a reader that goes away (`stxd … | head -1`) ends the output quietly, never a panic.
//!
//! `println!` panics when standard output is a closed pipe (`failed
//! printing to stdout: Broken pipe`, exit 101). Every command writes
//! through [`Out`] instead (the `outln!` and `out!` macros of `cli`): the
//! first write refused with `BrokenPipe` marks the output as *cut*, and that
//! write and every later one are dropped, so the command finishes what it
//! was doing (a change it made is never cut halfway by its own printing)
//! and [`crate::cli::main`] exits with [`super::EXIT_PIPE`] (141, as a shell
//! reports a program killed by SIGPIPE), without a message. Any other write
//! error (a full disk behind `> file`) is kept and reported once at the end
//! as a runtime failure (exit 3).

use std::io::{ErrorKind, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

/// The reader of standard output went away.
static CUT: AtomicBool = AtomicBool::new(false);
/// The first other error writing standard output.
static FAILED: Mutex<Option<String>> = Mutex::new(None);

/// Standard output, locked while the value lives.
pub(crate) struct Out(std::io::StdoutLock<'static>);

/// Standard output for a command's results; see the module docs.
pub(crate) fn stdout() -> Out {
    Out(std::io::stdout().lock())
}

/// Whether standard output was closed by its reader.
pub(crate) fn cut() -> bool {
    CUT.load(Ordering::Relaxed)
}

/// The first write error other than a closed pipe, if any.
pub(crate) fn failed() -> Option<String> {
    FAILED.lock().map_or(None, |f| f.clone())
}

fn given_up() -> bool {
    cut() || FAILED.lock().map_or(true, |f| f.is_some())
}

/// Records `e`; the caller then reports the write as done.
fn record(e: &std::io::Error) {
    if e.kind() == ErrorKind::BrokenPipe {
        CUT.store(true, Ordering::Relaxed);
    } else if let Ok(mut f) = FAILED.lock() {
        f.get_or_insert_with(|| format!("cannot write to standard output: {e}"));
    }
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if given_up() {
            return Ok(buf.len());
        }
        match self.0.write(buf) {
            Err(e) if e.kind() == ErrorKind::Interrupted => Err(e),
            Err(e) => {
                record(&e);
                Ok(buf.len())
            }
            ok => ok,
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if given_up() {
            return Ok(());
        }
        if let Err(e) = self.0.flush() {
            record(&e);
        }
        Ok(())
    }
}
