//! Every config file shipped under `config/` is valid.

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

#[test]
fn the_embedded_config_is_the_shipped_default() {
    let shipped = std::fs::read_to_string(repo().join("config/stxd.toml")).unwrap();
    assert_eq!(stxd::config::EMBEDDED, shipped);
}
