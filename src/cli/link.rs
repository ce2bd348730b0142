//! `stxd link …`: what concerns a link as a whole: `rotate-secret`, the
//! change of its shared secret (the virtual operator's password).
//!
//! Parses arguments and calls [`crate::config::rotation::rotate`], which
//! writes the secret files; prints what changed and what to do next on the
//! peer's side. No rule lives here.

use clap::Subcommand;
use serde_json::json;

use super::{EXIT_OK, EXIT_USAGE, Refused};
use crate::config::Config;
use crate::config::rotation::{self, RotateError, show_time};

#[derive(Debug, Subcommand)]
pub enum LinkCommand {
    /// Rotate the link's shared secret: a new secret is staged beside the
    /// old one in `<secret_file>.next` (accepted, not yet signing), then,
    /// unless --stage, takes `secret_file`'s place: this side signs with it
    /// from then on and still accepts the old one, kept in
    /// `<secret_file>.previous`, for the link's `secret_overlap_days`. On
    /// two servers: stage on one side, copy the staged file to the other
    /// and stage it there with --from, then rotate each side
    /// (docs/secret-rotation.md). Running it again after a crash finishes
    /// the rotation.
    RotateSecret {
        /// The link whose secret to rotate.
        #[arg(long, value_name = "LINK")]
        link: String,
        /// The new secret is this file's (the one the peer generated),
        /// rather than a new random one.
        #[arg(long, value_name = "FILE")]
        from: Option<std::path::PathBuf>,
        /// Only stage the new secret: accepted, but this side keeps signing
        /// with the current one until rotate-secret runs without --stage.
        #[arg(long)]
        stage: bool,
    },
}

/// Runs a `stxd link` command; returns the exit code.
pub fn run(config: &Config, json: bool, cmd: LinkCommand) -> anyhow::Result<u8> {
    match cmd {
        LinkCommand::RotateSecret { link, from, stage } => {
            let link = match config.require_link(&link) {
                Ok(link) => link,
                Err(problem) => {
                    eprintln!("stxd: {problem}");
                    return Ok(EXIT_USAGE);
                }
            };
            let now = time::OffsetDateTime::now_utc();
            let done = match rotation::rotate(link, from.as_deref(), stage, now) {
                Ok(done) => done,
                Err(e @ RotateError::Secret(_)) => {
                    eprintln!("stxd: link {}: {e}", link.name);
                    return Ok(EXIT_USAGE);
                }
                Err(e) if e.is_refusal() => {
                    return Err(Refused::err(format!("link {}: {e}", link.name)));
                }
                Err(e) => return Err(anyhow::Error::new(e).context(format!("link {}", link.name))),
            };
            tracing::info!(link = %link.name, key_id = %done.new.key_id, staged = stage, "link secret rotated");
            print(&link.name, &done, json);
            Ok(EXIT_OK)
        }
    }
}

fn print(link: &str, done: &rotation::Rotated, json: bool) {
    if json {
        let previous = done.previous.as_ref().map(|(file, until)| {
            json!({
                "key_id": file.key_id,
                "file": file.path.display().to_string(),
                "accepted_until": show_time(*until),
            })
        });
        let doc = json!({
            "link": link,
            "key_id": done.new.key_id,
            "file": done.new.path.display().to_string(),
            "written": done.written,
            "signing": done.previous.is_some(),
            "previous": previous,
        });
        outln!("{doc:#}");
        return;
    }
    match &done.previous {
        None => {
            outln!(
                "link {link}: new secret staged in {} (key id {}): accepted, not signing yet",
                done.new.path.display(),
                done.new.key_id
            );
            outln!(
                "next: copy it to the peer (private, mode 600) and run there stxd link rotate-secret --link {link} --stage --from FILE; then stxd link rotate-secret --link {link} on each side"
            );
        }
        Some((previous, until)) => {
            outln!(
                "link {link}: now signing with key id {} ({})",
                done.new.key_id,
                done.new.path.display()
            );
            outln!(
                "the previous secret (key id {}, {}) is accepted until {}",
                previous.key_id,
                previous.path.display(),
                show_time(*until)
            );
        }
    }
}
