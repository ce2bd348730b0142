//! The progress bar of the one-shot commands that read big files (`stxd
//! process`, `load`, `inspect`): bytes and lines of each pass over a file
//! of [`MIN_BYTES`] or more, drawn on standard error only when it is a
//! terminal; nothing at all otherwise (a pipe, a file, the journal), so
//! scripts and logs see exactly what they saw before.
//!
//! It is a [`Progress`] watcher handed down to the code that opens the
//! files ([`crate::transport::progress`]); the stages never draw anything.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

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
    /// Line ends read so far, shown by the bar's `{lines}` key.
    lines: Arc<AtomicU64>,
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
        let lines = Arc::new(AtomicU64::new(0));
        let shown = lines.clone();
        let bar = ProgressBar::with_draw_target(Some(bytes), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            // The bar takes what the terminal's width leaves; the rest fits
            // 80 columns for the names stxd gives.
            "{prefix} [{wide_bar}] {binary_bytes}/{binary_total_bytes} {lines} lines {eta}",
        ) {
            bar.set_style(
                style
                    .with_key(
                        "lines",
                        move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = write!(w, "{}", shown.load(Ordering::Relaxed));
                        },
                    )
                    .progress_chars("=> "),
            );
        }
        bar.set_prefix(format!("{what} {file}"));
        *current = Some(Pass { bar, lines });
    }

    fn advance(&self, bytes: u64, lines: u64) {
        if let Ok(current) = self.current.lock()
            && let Some(pass) = current.as_ref()
        {
            // Counted first, then drawn (at most 20 times a second).
            pass.lines.fetch_add(lines, Ordering::Relaxed);
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
