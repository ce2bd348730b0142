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

/// Writes `side`'s starting files into `dir` (created if missing). Refuses
/// without writing anything when one of them exists there.
pub(crate) fn run(side: Side, dir: &Path, json: bool) -> anyhow::Result<u8> {
    let files = files(side);
    let taken: Vec<PathBuf> = files
        .iter()
        .map(|(name, _, _)| dir.join(name))
        .filter(|p| p.exists())
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
        std::fs::write(&path, content)
            .with_context(|| format!("cannot write {}", path.display()))?;
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
