//! `stxd secret new FILE`: writes a fresh random link secret (the virtual
//! operator's password both sides share) to a new file, mode 0600, through
//! [`config::generate_secret`] (temporary name, fsync, no-replace link,
//! folder fsync). Never replaces a file: an existing one is refused (exit 1)
//! and left as it was.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::json;

use super::EXIT_OK;
use super::exit::Refused;
use crate::config;

/// `stxd secret …`
#[derive(Debug, Subcommand)]
pub(crate) enum SecretCommand {
    /// Write a new random link secret (32 random bytes, hex) to FILE, mode
    /// 0600, owned by whoever runs this (run it as the stxd user). Refuses
    /// (exit 1) when FILE exists. Copy it to the peer's server over a
    /// secure channel: both sides' `secret_file` must hold the same bytes.
    New {
        /// The secret file to create, e.g. /etc/stxd/secrets/LINK.key (the
        /// link's `secret_file`); missing folders are created, mode 700.
        file: PathBuf,
    },
}

pub(crate) fn run(json: bool, cmd: SecretCommand) -> anyhow::Result<u8> {
    match cmd {
        SecretCommand::New { file } => new(&file, json),
    }
}

fn new(file: &Path, json: bool) -> anyhow::Result<u8> {
    // The path as the config must name it (absolute), whatever the
    // working directory was.
    let path = std::path::absolute(file).unwrap_or_else(|_| file.to_owned());
    if file.as_os_str().is_empty() || path.file_name().is_none() {
        return Err(Refused::err(format!(
            "{}: not a file name: give the secret file's path, e.g. /etc/stxd/secrets/LINK.key",
            file.display()
        )));
    }
    let created = config::generate_secret(&path).map_err(|e| {
        anyhow::Error::new(e).context(format!("cannot write the secret file {}", path.display()))
    })?;
    if !created {
        return Err(Refused::err(format!(
            "{} exists already and is never replaced: remove it first if it is no link's secret, or choose another name",
            path.display()
        )));
    }
    if json {
        outln!(
            "{:#}",
            json!({"created": path.display().to_string(), "mode": "600"})
        );
    } else {
        outln!("created secret {} (mode 600)", path.display());
        outln!(
            "next: name it in the link's secret_file, and copy it to the peer's server over a secure channel (both sides hold the same bytes, chmod 600)"
        );
    }
    Ok(EXIT_OK)
}
