//! The layering `src/lib.rs` promises, checked: every `crate::<module>`
//! path in the library's code (comments and unit tests left out) names a
//! module at or below its own in the crate doc's `# Layout` list.

use std::collections::HashMap;
use std::path::Path;

use crate::util::repo;

/// Module name → rank in the layout list (0 = top).
fn ranks() -> HashMap<String, usize> {
    let lib = std::fs::read_to_string(repo().join("src/lib.rs")).unwrap();
    let mut ranks = HashMap::new();
    let bullets = lib.lines().filter_map(|l| l.strip_prefix("//! - "));
    for (rank, bullet) in bullets.enumerate() {
        let head = bullet.split(':').next().unwrap_or("");
        let mut rest = head;
        while let Some(start) = rest.find("[`") {
            let after = &rest[start + 2..];
            let end = after.find('`').unwrap();
            ranks.insert(after[..end].to_owned(), rank);
            rest = &after[end..];
        }
    }
    ranks
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The `crate::<name>` paths of a file's code.
fn uses(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or("");
    let mut found = Vec::new();
    for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            let name: String = rest[at + 7..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect();
            found.push(name);
            rest = &rest[at + 7..];
        }
    }
    found
}

#[test]
fn no_module_imports_one_above_it_in_the_layout() {
    let ranks = ranks();
    assert!(ranks.len() >= 20, "layout list not found: {ranks:?}");
    let src = repo().join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut upward = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        if rel == "lib.rs" || rel == "main.rs" {
            continue;
        }
        let module = rel.split('/').next().unwrap().trim_end_matches(".rs");
        let own = *ranks
            .get(module)
            .unwrap_or_else(|| panic!("module {module} is missing from src/lib.rs's layout list"));
        for dep in uses(&std::fs::read_to_string(&file).unwrap()) {
            match ranks.get(&dep) {
                Some(&r) if r < own => upward.push(format!("{rel} imports crate::{dep}")),
                _ => {}
            }
        }
    }
    upward.sort();
    upward.dedup();
    assert_eq!(
        upward,
        Vec::<String>::new(),
        "imports pointing up the layout"
    );
}

#[test]
fn the_layout_names_every_module_of_the_crate() {
    let ranks = ranks();
    let lib = std::fs::read_to_string(repo().join("src/lib.rs")).unwrap();
    for line in lib.lines() {
        if let Some(name) = line
            .strip_prefix("pub mod ")
            .and_then(|l| l.strip_suffix(';'))
        {
            assert!(ranks.contains_key(name), "{name} is not in the layout list");
        }
    }
}
