//! The integration tests: one binary, one module per area (ripgrep's layout).

// The tests call libc where std has no API, to signal the daemon and to
// build hostile file-system entries (FIFOs): never in the library.
#![allow(unsafe_code)]

mod dismissed;
mod util;
// Before the files that use its on_both_servers! macro.
#[macro_use]
mod servers;

mod alert;
mod busy_store;
mod catalogue_changes;
mod cli;
mod cli_edges;
mod config_files;
mod console;
mod contingent_manager;
mod crash;
mod crash_archive;
mod crash_export;
mod crash_init;
mod crash_sftp;
mod crash_sftp_trials;
mod daemon;
mod drop_folders;
mod duplicates;
mod envelope;
mod exchange_samples;
mod export;
mod first_use;
mod foreign_owner;
mod free_tariff;
mod golden_csv;
mod golden_xml;
mod import;
mod interleavings;
mod layers;
mod lifecycle;
mod linearity;
mod load;
mod logical_seats;
mod lossfs;
mod mapping_cases;
mod mapping_cli;
mod orders;
mod proftpd;
mod progress;
mod reconcile;
mod reintegration;
mod resolve;
mod retention;
mod rotation;
mod schedules;
mod seat_changes;
mod second_week;
mod secret;
mod selling;
mod setup_hold;
mod sftp;
mod sftp_faults;
mod sshd;
mod status;
mod store_domain;
mod strays;
mod systemd;
mod two_daemons;
mod two_servers;
