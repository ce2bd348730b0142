//! The progress bar of the one-shot commands that read big files (`stxd
//! process`, `load`, `inspect`): bytes and lines of each pass over a file
//! of [`MIN_BYTES`] or more, drawn on standard error only when it is a
//! terminal; nothing at all otherwise (a pipe, a file, the journal), so
//! scripts and logs see exactly what they saw before.
//!
//! It is a [`Progress`] watcher handed down to the code that opens the
//! files ([`crate::transport::progress`]); the stages never draw anything.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::transport::progress::{Progress, Watch};

/// Files smaller than this (4 MiB) are read without a bar: they take well
/// under a second.
pub(crate) const MIN_BYTES: u64 = 4 << 20;

/// A watcher drawing a bar on a terminal, or nobody when standard error is
/// not one.
pub(crate) fn watch() -> Watch {
    if std::io::stderr().is_terminal() {
        Watch::new(Bar::default())
    } else {
        Watch::none()
    }
}

/// The bar of the pass under way, if its file is big enough.
#[derive(Default)]
struct Bar {
    current: Mutex<Option<Pass>>,
}

struct Pass {
    bar: ProgressBar,
    lines: u64,
}

impl Progress for Bar {
    fn start(&self, file: &str, what: &'static str, bytes: u64) {
        let Ok(mut current) = self.current.lock() else {
            return;
        };
        if let Some(old) = current.take() {
            old.bar.finish_and_clear();
        }
        if bytes < MIN_BYTES {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(bytes), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{prefix} [{bar:30}] {binary_bytes}/{binary_total_bytes}, {msg} ({binary_bytes_per_sec}, {eta} left)",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(format!("{what} {file}"));
        bar.set_message("0 lines");
        *current = Some(Pass { bar, lines: 0 });
    }

    fn advance(&self, bytes: u64, lines: u64) {
        if let Ok(mut current) = self.current.lock()
            && let Some(pass) = current.as_mut()
        {
            pass.lines += lines;
            pass.bar.set_message(format!("{} lines", pass.lines));
            pass.bar.inc(bytes);
        }
    }

    fn finish(&self) {
        if let Ok(mut current) = self.current.lock()
            && let Some(pass) = current.take()
        {
            pass.bar.finish_and_clear();
        }
    }
}
