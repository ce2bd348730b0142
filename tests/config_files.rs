//! Every config file shipped under `config/` is valid.

use std::path::Path;

use crate::util::repo;

fn toml_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            toml_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "toml") {
            out.push(path);
        }
    }
}

#[test]
fn every_shipped_config_is_valid() {
    let mut files = Vec::new();
    toml_files(&repo().join("config"), &mut files);
    assert!(files.len() >= 3, "{files:?}");
    for file in files {
        if let Err(e) = stxd::config::load(&file) {
            panic!("{e}");
        }
    }
}

/// `stxd ARGS…` run from `cwd` with no config named.
fn stxd_in(cwd: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_stxd"))
        .args(args)
        .current_dir(cwd)
        .env_remove("STXD_CONFIG")
        .env("STXD_LOG", "warn")
        .output()
        .expect("run stxd")
}

const SYSTEM: &str = "/etc/stxd/stxd.toml";

#[test]
fn outside_the_source_tree_with_no_config_nothing_runs_and_the_error_says_what_to_do() {
    let empty = tempfile::tempdir().unwrap();
    let out = stxd_in(empty.path(), &["check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if Path::new(SYSTEM).exists() {
        // A machine with stxd installed: the system's config is the one.
        let status = stxd_in(empty.path(), &["status"]);
        let text = String::from_utf8_lossy(&status.stdout);
        assert!(text.starts_with(&format!("config: {SYSTEM}\n")), "{text}");
    } else {
        assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
        assert!(stderr.contains("no config"), "{stderr}");
        assert!(stderr.contains("--config FILE"), "{stderr}");
        assert!(stderr.contains(SYSTEM), "{stderr}");
        let demo = stxd_in(empty.path(), &["--demo", "check"]);
        let demo_err = String::from_utf8_lossy(&demo.stderr);
        assert_eq!(demo.status.code(), Some(2), "{demo_err}");
        assert!(demo_err.contains("source tree"), "{demo_err}");
    }
    // Nothing was created in the working folder either way.
    let left: Vec<_> = std::fs::read_dir(empty.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    // The commands that make the starting files need no config.
    let template = stxd_in(empty.path(), &["template", "manager", "--dir", "setup"]);
    assert_eq!(
        template.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&template.stderr)
    );
    assert!(empty.path().join("setup").read_dir().unwrap().count() >= 3);
    let secret = stxd_in(empty.path(), &["secret", "new", "link.key"]);
    assert_eq!(
        secret.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&secret.stderr)
    );
    assert!(empty.path().join("link.key").is_file());
}

#[test]
fn from_the_source_tree_the_demo_runs_and_status_says_so() {
    if Path::new(SYSTEM).exists() {
        // The system's config comes first; `--demo` still picks the demo.
        let out = stxd_in(&repo(), &["--demo", "--json", "status"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(
            v["config"]
                .as_str()
                .unwrap()
                .ends_with("(the demo of the source tree)")
        );
        return;
    }
    let out = stxd_in(&repo(), &["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let demo = repo().join("config/stxd.toml");
    assert!(
        text.starts_with(&format!(
            "config: {} (the demo of the source tree)\n",
            demo.display()
        )),
        "{text}"
    );
    // The demo's relative paths start from config/: its state is the
    // clone's var/, written without `config/..`.
    let state = std::fs::canonicalize(repo()).unwrap().join("var/state");
    assert!(
        text.contains(&format!("state {}\n", state.display())),
        "{text}"
    );
}

#[test]
fn relative_paths_of_a_named_config_resolve_from_its_folder_not_the_working_one() {
    let sb = crate::util::Sandbox::new();
    let elsewhere = tempfile::tempdir().unwrap();
    let config = sb.path().join("config/stxd.toml");
    let out = stxd_in(
        elsewhere.path(),
        &["--config", config.to_str().unwrap(), "init"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(sb.path().join("var/state/OPERA.sqlite").is_file());
    assert!(sb.path().join("var/secrets/opera-tourism.key").is_file());
    assert!(
        sb.path()
            .join("var/exchange/opera-tourism/to-manager")
            .is_dir()
    );
    let left: Vec<_> = std::fs::read_dir(elsewhere.path()).unwrap().collect();
    assert!(left.is_empty(), "created in the working folder: {left:?}");

    // `status --json` names the file it read.
    let status = stxd_in(
        elsewhere.path(),
        &["--config", config.to_str().unwrap(), "--json", "status"],
    );
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["config"].as_str(), config.to_str());
}
