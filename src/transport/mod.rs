//! Transports: how files reach a folder and leave it.
//!
//! [`local`] holds the file-system rules every stage obeys (safe opening,
//! never replacing a file, durable folder changes). [`sftp`] keeps a side's
//! local inbox and outbox in step with a share on the peer's server, on
//! those rules. [`progress`] counts the bytes and lines of a file as it is
//! read, for whoever watches (the command line's progress bar).
//! Transports move bytes; they never interpret them.

pub mod local;
pub mod progress;
pub mod sftp;
