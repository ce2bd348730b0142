//! `stxd template manager|distributor`: writes the commented starting files
//! of one side (setup TOML, seat plan and catalogue XML, mapping CSV) for
//! ops to adapt to their own venue, never replacing a file.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::ValueEnum;
use serde_json::json;

use super::{EXIT_FINDINGS, EXIT_OK};

/// Which side's starting files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Side {
    /// The manager: its setup (channel, point of sale, pending account,
    /// external sales interface, profiles), seat plan and catalogue.
    Manager,
    /// The distributor: its setup (external manager, virtual operator) and
    /// the mapping table's CSV.
    Distributor,
}

/// The files of each side: (file name, content, what to do with it).
fn files(side: Side) -> &'static [(&'static str, &'static str, &'static str)] {
    match side {
        Side::Manager => &[
            (
                "seatplan.xml",
                include_str!("../../samples/opera/seatplan.xml"),
                "your venue's seat plan: categories, venue, configurations, blocks, rows, seats, zones",
            ),
            (
                "catalogue.xml",
                include_str!("../../samples/opera/catalogue.xml"),
                "your season's catalogue: activities, products, performances, prices",
            ),
            (
                "setup.toml",
                include_str!("../../samples/opera/setup.toml"),
                "the manual's setup for the link: stx_file channel, point of sale, pending account, contact, external sales interface, profiles",
            ),
        ],
        Side::Distributor => &[
            (
                "setup.toml",
                include_str!("../../samples/tourism/setup.toml"),
                "the external manager and the virtual operator of the link",
            ),
            (
                "mapping.csv",
                include_str!("../../samples/tourism/mapping.csv"),
                "the mapping table: each manager id and the local code it maps to (stxd mapping import)",
            ),
        ],
    }
}

/// Writes `content` as `path`, whole or not at all and never over another
/// file: under a temporary name, synced, then renamed without replacing (a
/// file that appeared meanwhile is kept and refused, unless it holds the
/// same bytes). Temporary files of runs killed before are removed first.
fn write_new(path: &Path, content: &str) -> std::io::Result<()> {
    use crate::transport::local::{self, Placed};
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "template".into(), |n| n.to_string_lossy().into_owned());
    remove_dead_parts(dir, &name);
    let temp = dir.join(format!(".{name}.{}.part", std::process::id()));
    let written = std::fs::File::create(&temp).and_then(|mut f| {
        f.write_all(content.as_bytes())?;
        f.sync_all()
    });
    let placed = written.and_then(|()| local::rename_new(&temp, path));
    match placed {
        Ok(Placed::Linked) => local::sync_dir(dir),
        Ok(Placed::Same) => std::fs::remove_file(&temp),
        Ok(Placed::Other) => {
            let _ = std::fs::remove_file(&temp);
            Err(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "it appeared meanwhile and is never replaced",
            ))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(e)
        }
    }
}

/// Removes `.<name>.<pid>.part` files in `dir` whose process no longer runs.
fn remove_dead_parts(dir: &Path, name: &str) {
    let prefix = format!(".{name}.");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let pid = file
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix(".part"))
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid
            && !Path::new("/proc").join(pid.to_string()).exists()
        {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Writes `side`'s starting files into `dir` (created if missing). Refuses
/// without writing anything when one of them exists there with other
/// content; one with the same content (a run cut short) is kept.
pub(crate) fn run(side: Side, dir: &Path, json: bool) -> anyhow::Result<u8> {
    let files = files(side);
    let taken: Vec<PathBuf> = files
        .iter()
        .filter(|(name, content, _)| {
            // A file already there with this very content is one a run
            // cut short wrote: kept, and the run finishes the others.
            let path = dir.join(name);
            path.exists() && std::fs::read(&path).ok().as_deref() != Some(content.as_bytes())
        })
        .map(|(name, _, _)| dir.join(name))
        .collect();
    let mut out = super::out::stdout();
    if !taken.is_empty() {
        let names: Vec<String> = taken.iter().map(|p| p.display().to_string()).collect();
        writeln!(
            out,
            "refused: {} exist(s) already and is never replaced; choose another --dir",
            names.join(", ")
        )?;
        return Ok(EXIT_FINDINGS);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::new();
    for (name, content, what) in files {
        let path = dir.join(name);
        write_new(&path, content).with_context(|| format!("cannot write {}", path.display()))?;
        written.push((path, *what));
    }
    let (code, load) = match side {
        Side::Manager => (
            "OPERA",
            "stxd load OPERA seatplan.xml catalogue.xml setup.toml",
        ),
        Side::Distributor => ("TOURISM", "stxd load TOURISM setup.toml"),
    };
    if json {
        let files: Vec<_> = written
            .iter()
            .map(|(p, what)| json!({"file": p.display().to_string(), "what": what}))
            .collect();
        writeln!(out, "{:#}", json!({"written": files}))?;
        return Ok(EXIT_OK);
    }
    for (path, what) in &written {
        writeln!(out, "written {}: {what}", path.display())?;
    }
    writeln!(
        out,
        "next: replace the demo's ids, codes and names ({code}, the opera's) with your own, keeping \
         the structure; then {load} (with your institution code) and stxd check"
    )?;
    if side == Side::Distributor {
        writeln!(
            out,
            "      the mapping table is filled once the manager's catalogue arrived: stxd mapping list --pending, then stxd mapping import mapping.csv"
        )?;
    }
    Ok(EXIT_OK)
}
