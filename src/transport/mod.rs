//! Transports: how files reach a folder and leave it.
//!
//! [`local`] holds the file-system rules every stage obeys (safe opening,
//! never replacing a file, durable folder changes). Later transports (SFTP
//! shares, folder watching) build on it. Transports move bytes; they never
//! interpret them.

pub mod local;
