//! stxd: the Fichier SecuTix inter-institution interface.
//!
//! A *manager* institution (owns products, seat plans and seats) and a
//! *distributor* (resells them) exchange signed batch files over folders and
//! SFTP shares: seat plans, catalogues and contingents go to the distributor,
//! sales and refunds come back and are booked exactly once.
//!
//! # Flows
//!
//! Inbound, one file at a time, each stage returning the type the next takes:
//!
//! ```text
//! folder ─ claim ─▶ Claimed ─ verify ─▶ Verified ─ parse ─▶ Records
//!        ─ apply (map through the mapping table, journal, one transaction) ─▶ Outcome
//!        ─ archive ─▶ done/ | parked/ | error/ + .reason
//! ```
//!
//! Outbound: `export` (the domain selects and streams the records) →
//! `publish` (payload, then manifest, durable, never replacing a file).
//!
//! # Layout
//!
//! Dependencies point down this list; nothing imports a module above it.
//!
//! - [`cli`]: the `stxd` command line; parses, prints, picks exit codes.
//! - [`daemon`]: `stxd run`: signals, folder watching and the periodic
//!   listing around the [`app`] flows (no business rule of its own).
//! - [`status`]: `stxd status`: what each link did last and what waits,
//!   read from the stores read-only while the daemon runs.
//! - [`systemd`]: `sd_notify` (READY, STOPPING, WATCHDOG, STATUS) for
//!   `Type=notify` units; a no-op elsewhere.
//! - [`app`]: opens what the config names (stores, secrets, folders) and
//!   runs the flows; the one code path of the CLI and the daemon.
//! - [`inbound`]: the stages of an incoming file: claim, verify, parse,
//!   apply, archive.
//! - [`outbound`]: export and publish of outgoing files.
//! - [`domain`]: the business rules of both roles (master data, setup check,
//!   mapping table, imports, exports, validation) over the store.
//! - [`store`]: SQLite, one database per institution: schema and migrations,
//!   file journal, execution logs (runs).
//! - [`format`](mod@format): the four payloads' streaming readers and writers, and the
//!   signed envelope.
//! - [`transport`]: the file-system rules (safe open, no-replace placement,
//!   durable folder changes) and SFTP shares (push the outbox, pull the
//!   inbox, over one kept session per link side).
//! - [`schedule`]: cron lines, job names and fire times (pure: `now` is
//!   passed in); the config validates `[[schedule]]` with it.
//! - [`config`]: the TOML configuration, validated whole; secrets from files.
//! - [`failpoint`]: named crash points for the crash harness (off unless
//!   `STXD_FAILPOINT` arms one).
//! - [`exchange`]: the vocabulary every layer shares: kinds of file, the
//!   two roles, typed file names (built and parsed only there).
//! - [`ident`], [`money`]: identifiers (technical id, code, name) and amounts
//!   in integer minor units with a currency.

pub mod app;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod domain;
pub mod exchange;
pub mod failpoint;
pub mod format;
pub mod ident;
pub mod inbound;
pub mod money;
pub mod outbound;
pub mod schedule;
pub mod status;
pub mod store;
pub mod systemd;
pub mod transport;
