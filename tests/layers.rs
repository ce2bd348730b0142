//! The layering `src/lib.rs` promises, checked: every `crate::<module>`
//! path in the library's code (comments and unit tests left out) names a
//! module at or below its own in the crate doc's `# Layout` list; and the
//! size rules of `src/`: files of at most 900 lines, functions of at most
//! 120, `use super::*;` only in a `mod tests`.

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

/// Most lines a file of `src/` may have, its unit tests included.
const MAX_FILE_LINES: usize = 900;
/// Most lines a `fn` may span, from its `fn` line to its closing brace.
const MAX_FN_LINES: usize = 120;

/// Offenders of the size rules that are known and waiting for their fix,
/// each as the key [`size_offenders`] gives it. Remove an entry with its
/// fix: an entry that matches nothing fails the test.
const ALLOWLIST: &[&str] = &[];

/// `text` with its comments and its string and character literals blanked
/// (line breaks kept), so that what is left is code: braces, keywords.
fn code_only(text: &str) -> String {
    let src: Vec<char> = text.chars().collect();
    let mut out = src.clone();
    let n = src.len();
    let blank = |out: &mut Vec<char>, from: usize, to: usize| {
        for c in &mut out[from..to.min(n)] {
            if *c != '\n' {
                *c = ' ';
            }
        }
    };
    let at = |i: usize, s: &str| {
        s.chars()
            .enumerate()
            .all(|(k, c)| src.get(i + k) == Some(&c))
    };
    let ident = |i: usize| i > 0 && (src[i - 1].is_alphanumeric() || src[i - 1] == '_');
    let mut i = 0;
    while i < n {
        if at(i, "//") {
            let end = (i..n).find(|&j| src[j] == '\n').unwrap_or(n);
            blank(&mut out, i, end);
            i = end;
        } else if at(i, "/*") {
            let (mut depth, mut j) = (0, i);
            while j < n {
                if at(j, "/*") {
                    depth += 1;
                    j += 2;
                } else if at(j, "*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if (src[i] == 'r' || at(i, "br")) && !ident(i) && raw_string(&src, i).is_some() {
            let end = raw_string(&src, i).unwrap_or(n);
            blank(&mut out, i, end);
            i = end;
        } else if src[i] == '"' {
            let mut j = i + 1;
            while j < n && src[j] != '"' {
                j += if src[j] == '\\' { 2 } else { 1 };
            }
            blank(&mut out, i, j + 1);
            i = j + 1;
        } else if src[i] == '\'' && at(i + 1, "\\") {
            let end = (i + 3..n).find(|&j| src[j] == '\'').unwrap_or(n);
            blank(&mut out, i, end + 1);
            i = end + 1;
        } else if src[i] == '\'' && src.get(i + 2) == Some(&'\'') {
            blank(&mut out, i, i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    out.into_iter().collect()
}

/// The end (one past its closing quote and hashes) of the raw string
/// literal `r"…"`, `r#"…"#`, `br"…"`… that starts at `i`, if one does.
fn raw_string(src: &[char], i: usize) -> Option<usize> {
    let mut j = i + if src[i] == 'b' { 2 } else { 1 };
    let hashes = src[j..].iter().take_while(|&&c| c == '#').count();
    j += hashes;
    if src.get(j) != Some(&'"') {
        return None;
    }
    let close: Vec<char> = std::iter::once('"')
        .chain(std::iter::repeat_n('#', hashes))
        .collect();
    (j + 1..src.len())
        .find(|&k| src[k..].starts_with(&close))
        .map(|k| k + close.len())
}

/// The offset of the `}` closing the `{` at `open` in code-only `chars`.
fn closing(chars: &[char], open: usize) -> usize {
    let mut depth = 0;
    for (i, &c) in chars.iter().enumerate().skip(open) {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => {}
        }
    }
    chars.len()
}

/// The name of the function a code-only line declares (`pub(crate) async
/// fn name(…`), if it declares one.
fn declared_fn(line: &str) -> Option<&str> {
    let mut rest = line.trim_start();
    if let Some(after) = rest.strip_prefix("pub") {
        rest = match after.strip_prefix('(') {
            Some(scope) => &scope[scope.find(')')? + 1..],
            None => after,
        };
        rest = rest.trim_start();
    }
    loop {
        let stripped = ["const ", "async ", "unsafe ", "extern "]
            .iter()
            .find_map(|q| rest.strip_prefix(q));
        match stripped {
            Some(after) => rest = after.trim_start(),
            None => break,
        }
    }
    let after = rest.strip_prefix("fn ")?;
    let end = after
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(after.len());
    Some(&after[..end])
}

/// The size offenders of one file, `rel` its path from the repository:
/// (key, what to print), the key being `file <rel>`, `fn <rel> <name>` or
/// `glob <rel>` as the [`ALLOWLIST`] names it.
fn size_offenders(rel: &str, text: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let lines = text.lines().count();
    if lines > MAX_FILE_LINES {
        found.push((
            format!("file {rel}"),
            format!("{rel}: {lines} lines (at most {MAX_FILE_LINES})"),
        ));
    }
    let code: Vec<char> = code_only(text).chars().collect();
    let mut starts = vec![0];
    starts.extend(
        code.iter()
            .enumerate()
            .filter(|(_, c)| **c == '\n')
            .map(|(i, _)| i + 1),
    );
    let line_of = |offset: usize| starts.partition_point(|&s| s <= offset);
    let code_lines: Vec<String> = starts
        .iter()
        .map(|&s| code[s..].iter().take_while(|&&c| c != '\n').collect())
        .collect();
    let mut test_mods = Vec::new();
    for (n, line) in code_lines.iter().enumerate() {
        let head = line.trim_start();
        let head = head.strip_prefix("pub(crate) ").unwrap_or(head);
        if head.starts_with("mod tests {") {
            let open = starts[n] + line.find('{').unwrap_or(0);
            test_mods.push(line_of(open)..=line_of(closing(&code, open)));
        }
        if let Some(name) = declared_fn(line) {
            let mut depth = 0i32;
            let open = code[starts[n]..].iter().enumerate().find_map(|(k, &c)| {
                match c {
                    '(' | '[' => depth += 1,
                    ')' | ']' => depth -= 1,
                    ';' if depth == 0 => return Some(None),
                    '{' if depth == 0 => return Some(Some(starts[n] + k)),
                    _ => {}
                }
                None
            });
            if let Some(Some(open)) = open {
                let span = line_of(closing(&code, open)) - n;
                if span > MAX_FN_LINES {
                    found.push((
                        format!("fn {rel} {name}"),
                        format!(
                            "{rel}:{}: fn {name} spans {span} lines (at most {MAX_FN_LINES})",
                            n + 1
                        ),
                    ));
                }
            }
        }
    }
    let is_tests_file = rel.ends_with("/tests.rs");
    for (n, line) in code_lines.iter().enumerate() {
        let in_tests = is_tests_file || test_mods.iter().any(|m| m.contains(&(n + 1)));
        if line.trim() == "use super::*;" && !in_tests {
            found.push((
                format!("glob {rel}"),
                format!(
                    "{rel}:{}: use super::*; outside a mod tests (name what it takes)",
                    n + 1
                ),
            ));
        }
    }
    found
}

#[test]
fn files_and_functions_stay_short_and_imports_explicit() {
    let mut files = Vec::new();
    sources(&repo().join("src"), &mut files);
    files.sort();
    let mut offenders = Vec::new();
    let mut allowed = Vec::new();
    for file in files {
        let rel = file
            .strip_prefix(repo())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&file).unwrap();
        for (key, what) in size_offenders(&rel, &text) {
            if ALLOWLIST.contains(&key.as_str()) {
                allowed.push(key);
            } else {
                offenders.push(what);
            }
        }
    }
    let stale: Vec<_> = ALLOWLIST
        .iter()
        .filter(|k| !allowed.iter().any(|a| a == *k))
        .collect();
    assert!(
        offenders.is_empty(),
        "split these (or, for a file you may not change, add its key to ALLOWLIST):\n{}",
        offenders.join("\n")
    );
    assert!(
        stale.is_empty(),
        "ALLOWLIST entries that match nothing any more, remove them: {stale:?}"
    );
}

#[test]
fn the_size_scanner_sees_code_only() {
    let body = "    let x = 1;\n".repeat(MAX_FN_LINES);
    let text = format!(
        "// fn commented() {{\nconst S: &str = \"{{ fn in_a_string() {{\";\nconst R: &str = r#\"}}\"#;\nconst C: char = '{{';\n\npub(crate) async fn long<'a>(x: [u8; 2]) {{\n{body}}}\n\nfn short() {{\n    use super::*;\n}}\n\nfn declared();\n\n#[cfg(test)]\nmod tests {{\n    use super::*;\n}}\n"
    );
    let found: Vec<_> = size_offenders("src/x.rs", &text)
        .into_iter()
        .map(|(key, what)| format!("{key} | {what}"))
        .collect();
    assert_eq!(
        found,
        [
            format!(
                "fn src/x.rs long | src/x.rs:6: fn long spans {} lines (at most {MAX_FN_LINES})",
                MAX_FN_LINES + 2
            ),
            format!(
                "glob src/x.rs | src/x.rs:{}: use super::*; outside a mod tests (name what it takes)",
                MAX_FN_LINES + 10
            ),
        ]
    );
    let fits = format!(
        "fn fits() {{\n{}}}\n",
        "    let x = 1;\n".repeat(MAX_FN_LINES - 2)
    );
    assert_eq!(size_offenders("src/y.rs", &fits), Vec::new());
}
