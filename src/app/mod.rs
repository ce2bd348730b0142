//! The application: opens what a config names (stores, secrets, folders)
//! and runs the flows across it.
//!
//! Takes a validated [`Config`](crate::config::Config); returns open
//! stores, secrets and reports. One-shot CLI commands and the daemon both
//! start here, so a store is created, bootstrapped and checked the same way
//! whoever asks. Business rules stay in [`crate::domain`]; this module only
//! wires config, store and domain together, one role per file:
//!
//! - `stores`: an institution's store (created and bootstrapped on first
//!   use), the side of a link a command acts for, a link's secret;
//! - `load`: master data loaded into a store (`stxd load`, `load` files);
//! - `check`: `stxd check`;
//! - `listing`: the files waiting in a folder, the folders to list, the
//!   one-shot pipeline over files, apply windows;
//! - `poll`: SFTP shares kept per link side, and one poll of a share;
//! - `jobs`: one job run now, trigger files, next runs;
//! - `inspect`: `stxd inspect`;
//! - `exports`: committed exports placed after an interruption;
//! - `mapping`: one change to a mapping table recorded as a run, a CSV
//!   imported whole, parked files resumed after either (the CLI's and the
//!   console's path), and the run of an action asked through the console;
//! - `catalogue`: a product validated or assigned from the console, its
//!   run marked with who asked;
//! - `retry`: refused or set-aside files put back into their inbox;
//! - `sales`: a rejected sales line resolved (`stxd sales resolve`, the
//!   console's sales page);
//! - `error`: [`AppError`], and [`chain`] to print one with its causes.
//!
//! Everything is re-exported here: callers name `app::open_store`,
//! `app::run_job`…, not the file it lives in.

// The application's log macros, in scope in every file of it (defined
// before the modules): tracing's, with the one target `stxd::app` whichever
// file writes the line.
macro_rules! debug { ($($arg:tt)+) => { tracing::debug!(target: "stxd::app", $($arg)+) }; }
macro_rules! info { ($($arg:tt)+) => { tracing::info!(target: "stxd::app", $($arg)+) }; }
macro_rules! warn { ($($arg:tt)+) => { tracing::warn!(target: "stxd::app", $($arg)+) }; }
macro_rules! error { ($($arg:tt)+) => { tracing::error!(target: "stxd::app", $($arg)+) }; }

mod catalogue;
mod check;
mod error;
mod exports;
mod init;
mod inspect;
mod jobs;
mod listing;
mod load;
mod mapping;
mod poll;
mod retry;
mod sales;
mod stores;

pub use catalogue::{assign_product, validate_object, validate_product};
pub use check::{CheckReport, check};
pub use error::{AppError, chain};
pub use exports::{Finished, finish_exports};
pub use init::{Created, init};
pub use inspect::{Inspection, inspect, inspection_secret};
pub use jobs::{
    JobDone, TriggerWritten, expected_sequence, next_runs, reconcile, run_job, write_trigger,
};
pub use listing::{
    BusyStores, Handled, Placement, WindowHeld, folders_to_scan, manifest_path_of,
    parked_worth_retrying, placement, process_files, process_files_watched, process_listed, resume,
    scan, split_by_window, waiting_files,
};
pub use load::{Loaded, load, load_watched};
pub use mapping::{
    MappingChanged, MappingImported, VIA_CODE, VIA_CONSOLE, change_mapping, import_mapping,
    record_action,
};
pub use poll::{PollReport, Shares, SidePoll, Synced, poll, poll_with};
pub use retry::{Retried, retry_files, retry_link};
pub use sales::{ResolveRefused, resolve_line};
pub use stores::{link_secret, open_every_store, open_side, open_store};

use stores::require_secret;
