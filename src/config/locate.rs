//! Which config file a command reads, and the folder its relative paths
//! start from.
//!
//! The order, first match wins: the file named by `--config` or
//! `$STXD_CONFIG`; with `--demo`, the demo of the source tree; the system's
//! `/etc/stxd/stxd.toml`; the demo of the source tree when the command runs
//! from it (a clone of stxd: `Cargo.toml` of the `stxd` package beside
//! `config/stxd.toml`). Anything else is an error that says what to do: a
//! production server never runs the demo by surprise.

use std::fmt;
use std::path::{Path, PathBuf};

/// The system-wide config, installed by the package.
pub const SYSTEM: &str = "/etc/stxd/stxd.toml";

/// The demo's file, relative to the root of the source tree.
pub const DEMO: &str = "config/stxd.toml";

/// The config a command reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The file, as absolute path.
    pub path: PathBuf,
    /// Why this file: named, the system's, or the demo.
    pub origin: Origin,
}

/// How the file was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `--config FILE` or `$STXD_CONFIG`.
    Named,
    /// `/etc/stxd/stxd.toml`.
    System,
    /// The source tree's demo (`--demo`, or run from the source tree with
    /// no other config).
    Demo,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if self.origin == Origin::Demo {
            f.write_str(" (the demo of the source tree)")?;
        }
        Ok(())
    }
}

/// No config could be chosen; the message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LocateError(String);

/// Chooses the config file. `named` is `--config` or `$STXD_CONFIG`,
/// `demo` is `--demo`, `cwd` the working folder, `system` the system-wide
/// path ([`SYSTEM`], a parameter for the tests).
pub fn locate(
    named: Option<&Path>,
    demo: bool,
    cwd: &Path,
    system: &Path,
) -> Result<Located, LocateError> {
    if let Some(path) = named {
        if demo {
            return Err(LocateError(
                "--demo and --config (or $STXD_CONFIG) name two configs: give one".into(),
            ));
        }
        return Ok(Located {
            path: cwd.join(path),
            origin: Origin::Named,
        });
    }
    let in_tree = source_tree(cwd);
    if demo {
        return in_tree
            .map(|path| Located {
                path,
                origin: Origin::Demo,
            })
            .ok_or_else(|| {
                LocateError(format!(
                    "--demo runs from the source tree (a clone of stxd, where {DEMO} and the samples it loads are); {} is not one",
                    cwd.display()
                ))
            });
    }
    if system.exists() {
        return Ok(Located {
            path: system.to_path_buf(),
            origin: Origin::System,
        });
    }
    if let Some(path) = in_tree {
        return Ok(Located {
            path,
            origin: Origin::Demo,
        });
    }
    Err(LocateError(format!(
        "no config: none named (--config FILE or $STXD_CONFIG) and {} does not exist. \
         Install one there (the package's template, or config/production.toml), or run \
         the demo from a clone of stxd (cargo run -- run)",
        system.display()
    )))
}

/// The demo's path when `dir` is the root of stxd's source tree.
fn source_tree(dir: &Path) -> Option<PathBuf> {
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).ok()?;
    let ours = manifest
        .lines()
        .map(str::trim)
        .any(|l| l.replace(' ', "") == "name=\"stxd\"");
    let demo = dir.join(DEMO);
    (ours && demo.is_file()).then_some(demo)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(with_manifest: bool, with_demo: bool) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        if with_manifest {
            std::fs::write(
                dir.path().join("Cargo.toml"),
                "[package]\nname = \"stxd\"\nversion = \"0.1.0\"\n",
            )
            .unwrap();
        }
        if with_demo {
            std::fs::create_dir(dir.path().join("config")).unwrap();
            std::fs::write(dir.path().join(DEMO), "").unwrap();
        }
        dir
    }

    #[test]
    fn a_named_file_wins_and_is_made_absolute() {
        let dir = tree(true, true);
        let system = dir.path().join("etc.toml");
        std::fs::write(&system, "").unwrap();
        let got = locate(Some(Path::new("a/b.toml")), false, dir.path(), &system).unwrap();
        assert_eq!(got.path, dir.path().join("a/b.toml"));
        assert_eq!(got.origin, Origin::Named);
        let abs = locate(Some(Path::new("/x/y.toml")), false, dir.path(), &system).unwrap();
        assert_eq!(abs.path, Path::new("/x/y.toml"));
        let both = locate(Some(Path::new("a.toml")), true, dir.path(), &system);
        assert!(both.unwrap_err().0.contains("give one"));
    }

    #[test]
    fn the_system_file_comes_before_the_demo_unless_demo_is_asked() {
        let dir = tree(true, true);
        let system = dir.path().join("etc.toml");
        std::fs::write(&system, "").unwrap();
        let got = locate(None, false, dir.path(), &system).unwrap();
        assert_eq!(
            (got.path.as_path(), got.origin),
            (system.as_path(), Origin::System)
        );
        let demo = locate(None, true, dir.path(), &system).unwrap();
        assert_eq!(demo.path, dir.path().join(DEMO));
        assert_eq!(demo.origin, Origin::Demo);
        assert!(demo.to_string().ends_with("(the demo of the source tree)"));
    }

    #[test]
    fn the_demo_runs_only_from_the_source_tree() {
        let absent = Path::new("/nonexistent/stxd.toml");
        let clone = tree(true, true);
        let got = locate(None, false, clone.path(), absent).unwrap();
        assert_eq!(got.origin, Origin::Demo);

        for (manifest, demo) in [(false, true), (true, false), (false, false)] {
            let dir = tree(manifest, demo);
            let e = locate(None, false, dir.path(), absent).unwrap_err();
            assert!(e.0.starts_with("no config:"), "{e}");
            assert!(e.0.contains("/nonexistent/stxd.toml"), "{e}");
            let e = locate(None, true, dir.path(), absent).unwrap_err();
            assert!(e.0.contains("source tree"), "{e}");
        }
        // Another package's manifest is not stxd's tree.
        let other = tree(false, true);
        std::fs::write(
            other.path().join("Cargo.toml"),
            "[package]\nname = \"stxd-fork-tools\"\n",
        )
        .unwrap();
        assert!(locate(None, false, other.path(), absent).is_err());
    }
}
