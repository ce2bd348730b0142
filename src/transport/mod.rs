//! Transports: how files reach a folder and leave it.
//!
//! [`local`] holds the file-system rules every stage obeys (safe opening,
//! never replacing a file, durable folder changes). [`sftp`] keeps a side's
//! local inbox and outbox in step with a share on the peer's server, on
//! those rules. Transports move bytes; they never interpret them.

pub mod local;
pub mod sftp;
