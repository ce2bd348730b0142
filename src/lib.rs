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
//! Before claim, a file is judged by the folder it is in
//! ([`app::placement`]): one not for that folder (an unknown link, another
//! link's name, a kind the folder's side does not receive, sequence 0) is
//! set aside whole into the inbox's `quarantine/` with its `.reason`, and
//! `stxd retry` puts a file of `error/` or `quarantine/` back.
//!
//! Outbound: `export` (the domain selects and streams the records) →
//! `publish` (payload, then manifest, durable, never replacing a file).
//!
//! # Layout
//!
//! Dependencies point down this list; nothing imports a module above it
//! (`tests/layers.rs` checks every `crate::` path of `src/` against it).
//!
//! - [`cli`]: the `stxd` command line; parses, prints, picks exit codes.
//! - [`http`]: the ops console of `stxd run` (`[http]`): health checks,
//!   Prometheus metrics and server-rendered pages over the same `app`,
//!   `status` and `domain` calls as the CLI; started as the daemon's
//!   sidecar.
//! - [`daemon`]: `stxd run`: signals, folder watching, trigger files and
//!   the periodic listing around the [`app`] flows (no business rule of its
//!   own); one `Daemon` whose methods are its loop's steps, a file per
//!   role under `daemon/`.
//! - [`status`]: `stxd status`: what each link did last and what waits,
//!   read from the stores read-only while the daemon runs.
//! - [`systemd`]: `sd_notify` (READY, STOPPING, WATCHDOG, STATUS) for
//!   `Type=notify` units; a no-op elsewhere.
//! - [`alert`]: tells people a link is stuck (a command or a webhook per
//!   `[[alert]]`), once per incident and when it clears, from threads of
//!   its own so that no delivery delays a file.
//! - [`app`]: opens what the config names (stores, secrets, folders) and
//!   runs the flows; the one code path of the CLI and the daemon; a file per
//!   role under `app/` (stores, load, check, listing, poll, jobs, inspect,
//!   exports), its errors typed ([`app::AppError`]).
//! - [`inbound`]: the stages of an incoming file: claim, verify, parse,
//!   apply, archive.
//! - [`outbound`]: export and publish of outgoing files.
//! - [`report`]: the reconciliation report rendered as text, CSV and one
//!   self-contained HTML page (no store, no file of its own).
//! - [`domain`]: the business rules of both roles (master data, setup check,
//!   mapping table, imports, exports, validation) over the store.
//! - [`transport`]: the file-system rules (safe open, no-replace placement,
//!   durable folder changes), SFTP shares (push the outbox, pull the
//!   inbox, over one kept session per link side), and the counting reader
//!   that tells a command's progress bar how far a file was read.
//! - [`config`]: the TOML configuration, validated whole; secrets from files.
//! - [`schedule`]: cron lines, job names and fire times (pure: `now` is
//!   passed in); the config validates `[[schedule]]` with it.
//! - [`store`]: SQLite, one database per institution: schema and migrations,
//!   file journal, execution logs (runs).
//! - [`format`](mod@format): the four payloads' streaming readers and writers, and the
//!   signed envelope.
//! - [`state_lock`]: one daemon per state directory (`stxd.lock`, held
//!   exclusively), and the probe `stxd status` and `stxd trigger` make of
//!   it.
//! - [`retrying`]: the files the daemon tries again later after a failure,
//!   recorded in the state directory for `stxd status`.
//! - [`reading`]: the file the daemon has been reading for long, recorded
//!   there too; both records are written by its helpers.
//! - [`backoff`]: waits that double after each failure, up to a cap (SFTP
//!   shares, alert deliveries, files failing for a cause outside them).
//! - [`failpoint`]: named crash points for the crash harness (off unless
//!   `STXD_FAILPOINT` arms one).
//! - [`exchange`]: the vocabulary every layer shares: kinds of file, the
//!   two roles, typed file names (built and parsed only there).
//! - [`ident`], [`money`]: identifiers (technical id, code, name) and amounts
//!   in integer minor units with a currency.

pub mod alert;
pub mod app;
pub mod backoff;
pub mod cli;
pub mod config;
pub mod daemon;
pub mod domain;
pub mod exchange;
pub mod failpoint;
pub mod format;
pub mod http;
pub mod ident;
pub mod inbound;
pub mod money;
pub mod outbound;
pub mod reading;
pub mod report;
pub mod retrying;
pub mod schedule;
pub mod state_lock;
pub mod status;
pub mod store;
pub mod systemd;
pub mod transport;
