//! `stxd retry`: files refused (`error/`) or set aside (`quarantine/`) put
//! back into their inbox for another try once their cause is fixed. Each
//! retry is a run `retry` of the receiving side's store whose message quotes
//! the file's old `.reason` (recorded before anything moves); the `.reason`
//! is removed and the pair goes through the normal pipeline at the next
//! listing (or `stxd process`). A retry cut by a crash is finished by
//! running it again.

use std::path::{Path, PathBuf};

use super::{AppError, VIA_CODE, open_side};
use crate::config::{Config, Link};
use crate::exchange::{FileName, Role};
use crate::inbound::archive::{self, Pair};
use crate::store::runs;

/// One file put back into its inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retried {
    pub institution: String,
    pub link: String,
    /// Where it was (the manifest in `error/` or `quarantine/`).
    pub from: PathBuf,
    /// The manifest in the inbox now.
    pub to: PathBuf,
    /// The run recording the retry.
    pub run: i64,
    /// The old `.reason`'s `code:` and `reason:` lines, if it had one.
    pub old_reason: Option<String>,
}

/// A file to retry: its archived pair and the side it goes back to.
struct Candidate<'c> {
    pair: Pair,
    name: FileName,
    link: &'c Link,
    side: Role,
}

/// Puts `files` (manifests or payloads, at any slot, in an `error/` or
/// `quarantine/` folder of a served side) back into their inboxes. Every
/// file is checked before any moves: one not in such a folder refuses the
/// whole command ([`AppError::NotRetryable`]). When `via` is given, each
/// retry's run says through what it was asked (the console), in the same
/// transaction as the run.
pub fn retry_files(
    config: &Config,
    files: &[PathBuf],
    via: Option<&str>,
) -> Result<Vec<Retried>, AppError> {
    let candidates = files
        .iter()
        .map(|f| candidate(config, f))
        .collect::<Result<Vec<_>, _>>()?;
    candidates
        .iter()
        .map(|c| put_back(config, c, via))
        .collect()
}

/// Puts every file of the `error/` and `quarantine/` folders of `link`'s
/// served sides back into their inboxes, in apply order.
pub fn retry_link(config: &Config, link: &str) -> Result<Vec<Retried>, AppError> {
    config.require_link(link).map_err(AppError::UnknownLink)?;
    let mut found: Vec<Candidate<'_>> = Vec::new();
    for (l, _, side) in config.served(Some(link)) {
        let folders = l.folders(side);
        for dir in [&folders.error, &folders.quarantine] {
            for (name, slot) in archived_manifests(dir)? {
                found.push(Candidate {
                    pair: archive::archived(dir, &name, slot),
                    name,
                    link: l,
                    side,
                });
            }
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found.iter().map(|c| put_back(config, c, None)).collect()
}

/// The manifests archived in `dir` (a missing folder has none).
fn archived_manifests(dir: &Path) -> Result<Vec<(FileName, u32)>, AppError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(AppError::List {
                dir: dir.to_owned(),
                source,
            });
        }
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| AppError::List {
            dir: dir.to_owned(),
            source,
        })?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if let Some((n, slot)) = archive::unslotted(&name)
            && n.part == crate::exchange::Part::Manifest
            && entry.file_type().is_ok_and(|t| t.is_file())
        {
            out.push((n, slot));
        }
    }
    Ok(out)
}

/// Checks that `file` is an archived manifest or payload in an `error/` or
/// `quarantine/` folder of a side this config serves.
fn candidate<'c>(config: &'c Config, file: &Path) -> Result<Candidate<'c>, AppError> {
    let refuse = |problem: &str| AppError::NotRetryable {
        file: file.to_owned(),
        problem: problem.to_owned(),
    };
    let (name, slot) = file
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(archive::unslotted)
        .ok_or_else(|| refuse("not the name of a Fichier SecuTix file (manifest or payload, with its archive suffix if any)"))?;
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let pair = archive::archived(dir, &name, slot);
    let (link, side) = config
        .served(None)
        .find(|(l, _, side)| {
            let f = l.folders(*side);
            pair.is_in(&f.error) || pair.is_in(&f.quarantine)
        })
        .map(|(l, _, side)| (l, side))
        .ok_or_else(|| refuse("not in an error/ or quarantine/ folder of a link this config serves: only refused or set-aside files are retried"))?;
    if !std::fs::symlink_metadata(&pair.manifest).is_ok_and(|m| m.is_file()) {
        return Err(refuse(&format!(
            "its manifest {} is not there",
            pair.manifest.display()
        )));
    }
    Ok(Candidate {
        pair,
        name,
        link,
        side,
    })
}

/// Records the run quoting the pair's old reason, then moves the pair back
/// ([`archive::restore_pair`]: the reason removed first).
fn put_back(config: &Config, c: &Candidate<'_>, via: Option<&str>) -> Result<Retried, AppError> {
    let inbox = c.link.folders(c.side).inbox;
    let reason_file = archive::reason_path(&c.pair.manifest);
    let old_reason = std::fs::read_to_string(&reason_file).ok().map(|text| {
        text.lines()
            .filter(|l| l.starts_with("code: ") || l.starts_with("reason: "))
            .collect::<Vec<_>>()
            .join("; ")
    });
    let (link, inst, mut store) = open_side(config, &c.link.name, c.side)?;
    let file = c.name.to_manifest().to_string();
    let text = match &old_reason {
        Some(r) => format!(
            "{} put back into the inbox for another try; its earlier reason: {r}",
            c.pair.manifest.display()
        ),
        None => format!(
            "{} put back into the inbox for another try (it had no .reason)",
            c.pair.manifest.display()
        ),
    };
    // The run first: it keeps the old reason's words, whose file goes
    // first in the move.
    let run = store.write(|tx| -> Result<i64, crate::store::StoreError> {
        let run = runs::start(tx, "retry", Some(&link.name), Some(&file))?;
        if let Some(via) = via {
            runs::message(tx, run, runs::Level::Info, VIA_CODE, None, via)?;
        }
        runs::message(tx, run, runs::Level::Info, "retry", None, &text)?;
        runs::finish(tx, run, runs::RunStatus::Ok, runs::Counts::ONE_OK)?;
        Ok(run)
    })?;
    let to = archive::restore_pair(&c.pair, &inbox).map_err(|source| AppError::Retry {
        file: c.pair.manifest.clone(),
        inbox: inbox.clone(),
        source,
    })?;
    info!(file = %file, link = %link.name, run, from = %c.pair.manifest.display(),
        "file put back into the inbox for another try");
    Ok(Retried {
        institution: inst.code.to_string(),
        link: link.name.clone(),
        from: c.pair.manifest.clone(),
        to,
        run,
        old_reason,
    })
}
