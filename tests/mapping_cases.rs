//! Mapping behaviour from data files: each `tests/mapping_cases/*.toml` is a
//! case (mapping rows + catalogue files in steps → expected objects, or
//! "parked: missing …"). The format is documented in
//! `tests/mapping_cases/README.md`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use stxd::domain::DomainError;
use stxd::domain::import::Outcome;
use stxd::store::Store;

use crate::import::{
    distributor, import_catalogue, import_seatplan, map, map_catalogue_references,
    map_seat_categories, messages, missing_keys, seatplan_items,
};
use crate::util::repo;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    description: String,
    #[serde(default = "yes")]
    seatplan: bool,
    #[serde(default = "demo")]
    mappings: String,
    step: Vec<Step>,
}

fn yes() -> bool {
    true
}

fn demo() -> String {
    "demo".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    #[serde(default)]
    set: Vec<Set>,
    #[serde(default)]
    sql: Vec<String>,
    xml: Option<String>,
    #[serde(default)]
    replace: Vec<(String, String)>,
    #[serde(default)]
    drop: Vec<String>,
    expect: String,
    #[serde(default)]
    missing: Vec<String>,
    error: Option<String>,
    summary: Option<BTreeMap<String, u64>>,
    #[serde(default)]
    messages: Vec<String>,
    #[serde(default)]
    no_messages: Vec<String>,
    #[serde(default)]
    check: Vec<Check>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Set {
    kind: String,
    manager_id: i64,
    /// A local code, or `pending`, or `ignored`.
    to: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Check {
    sql: String,
    rows: Vec<String>,
}

fn set_status(store: &mut Store, kind: &str, manager_id: i64, status: &str) {
    store
        .write(|tx| -> Result<(), DomainError> {
            tx.execute(
                "INSERT INTO mapping (manager, kind, manager_id, manager_code, manager_label, local_id,
                     status, first_seen, last_seen)
                 VALUES ('OPERA', ?1, ?2, 'PRESET', '(set by the test)', NULL, ?3, 'now', 'now')
                 ON CONFLICT (manager, kind, manager_id) DO UPDATE SET local_id = NULL, status = ?3",
                (kind, manager_id, status),
            )?;
            Ok(())
        })
        .unwrap();
}

fn rows(store: &Store, sql: &str) -> Result<Vec<String>, String> {
    store
        .read(|c| -> Result<Vec<String>, DomainError> {
            let mut st = c.prepare(sql)?;
            let n = st.column_count();
            let mut out = Vec::new();
            let mut q = st.query([])?;
            while let Some(r) = q.next()? {
                let mut cells = Vec::new();
                for i in 0..n {
                    cells.push(match r.get_ref(i)? {
                        rusqlite::types::ValueRef::Null => "NULL".to_owned(),
                        rusqlite::types::ValueRef::Integer(v) => v.to_string(),
                        rusqlite::types::ValueRef::Real(v) => v.to_string(),
                        rusqlite::types::ValueRef::Text(t) => {
                            String::from_utf8_lossy(t).into_owned()
                        }
                        rusqlite::types::ValueRef::Blob(_) => "BLOB".to_owned(),
                    });
                }
                out.push(cells.join("|"));
            }
            Ok(out)
        })
        .map_err(|e| format!("check {sql:?}: {e}"))
}

/// Runs one case; returns every failed expectation.
fn run_case(path: &Path, base: &str) -> Vec<String> {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let text = std::fs::read_to_string(path).unwrap();
    let case: Case = match toml::from_str(&text) {
        Ok(c) => c,
        Err(e) => return vec![format!("{name}: bad case file: {e}")],
    };
    let mut failures = Vec::new();
    let mut fail = |step: usize, what: String| {
        failures.push(format!("{name} step {step} ({}): {what}", case.description))
    };

    let dir = tempfile::tempdir().unwrap();
    let mut store = distributor(dir.path());
    match case.mappings.as_str() {
        "demo" | "seat_categories" => map_seat_categories(&mut store),
        "none" => {}
        other => return vec![format!("{name}: unknown mappings {other:?}")],
    }
    if case.seatplan {
        match import_seatplan(&mut store, &seatplan_items()) {
            Ok((Outcome::Applied(_), _)) => {}
            other => return vec![format!("{name}: the seat plan did not apply: {other:?}")],
        }
    }
    if case.mappings == "demo" {
        map_catalogue_references(&mut store);
    }

    for (i, step) in case.step.iter().enumerate() {
        let n = i + 1;
        for s in &step.set {
            match s.to.as_str() {
                "pending" | "ignored" => set_status(&mut store, &s.kind, s.manager_id, &s.to),
                code => map(&mut store, &s.kind, s.manager_id, code),
            }
        }
        for sql in &step.sql {
            store
                .write(|tx| -> Result<(), DomainError> { Ok(tx.execute_batch(sql)?) })
                .unwrap_or_else(|e| panic!("{name} step {n}: {sql}: {e}"));
        }
        let mut xml = step.xml.clone().unwrap_or_else(|| base.to_owned());
        for (from, to) in &step.replace {
            if !xml.contains(from.as_str()) {
                fail(n, format!("replace: {from:?} is not in the file"));
            }
            xml = xml.replace(from.as_str(), to);
        }
        if !step.drop.is_empty() {
            xml = xml
                .lines()
                .filter(|l| !step.drop.iter().any(|d| l.contains(d.as_str())))
                .collect::<Vec<_>>()
                .join("\n");
        }
        let items = crate::import::catalogue_items(xml.as_bytes(), &format!("{name}#{n}"));
        let file = format!("opera-tourism.CATALOGUE.{n:08}.xml");
        let result = import_catalogue(&mut store, &items, &file);
        let run = match (&result, step.expect.as_str()) {
            (Ok((Outcome::Applied(s), run)), "applied") => {
                if let Some(want) = &step.summary {
                    let got = BTreeMap::from([
                        ("created".to_owned(), s.created),
                        ("updated".to_owned(), s.updated),
                        ("unchanged".to_owned(), s.unchanged),
                        ("suspended".to_owned(), s.suspended),
                        ("skipped".to_owned(), s.skipped),
                    ]);
                    for (k, v) in want {
                        if got.get(k) != Some(v) {
                            fail(
                                n,
                                format!("summary {k}: expected {v}, got {:?} ({s:?})", got.get(k)),
                            );
                        }
                    }
                }
                Some(*run)
            }
            (Ok((Outcome::Parked(m), run)), "parked") => {
                let mut want = step.missing.clone();
                want.sort();
                let got = missing_keys(m);
                if got != want {
                    fail(n, format!("missing: expected {want:?}, got {got:?}"));
                }
                Some(*run)
            }
            (Err(e), "error") => {
                let want = step.error.as_deref().unwrap_or("");
                if !e.to_string().contains(want) {
                    fail(n, format!("error: expected {want:?} in {e}"));
                }
                None
            }
            (other, want) => {
                fail(n, format!("expected {want}, got {other:?}"));
                None
            }
        };
        if let Some(run) = run {
            let msgs = messages(&store, run);
            for m in &step.messages {
                let (code, text) = m.split_once(": ").unwrap_or((m.as_str(), ""));
                if !msgs.iter().any(|g| g.code == code && g.text.contains(text)) {
                    let got: Vec<String> = msgs
                        .iter()
                        .map(|g| format!("{}: {}", g.code, g.text))
                        .collect();
                    fail(n, format!("no message {m:?} among {got:#?}"));
                }
            }
            for code in &step.no_messages {
                if let Some(g) = msgs.iter().find(|g| &g.code == code) {
                    fail(n, format!("unexpected message {}: {}", g.code, g.text));
                }
            }
        }
        for c in &step.check {
            match rows(&store, &c.sql) {
                Ok(got) if got == c.rows => {}
                Ok(got) => fail(
                    n,
                    format!("check {:?}: expected {:?}, got {got:?}", c.sql, c.rows),
                ),
                Err(e) => fail(n, e),
            }
        }
    }
    failures
}

#[test]
fn every_mapping_case_behaves_as_its_file_says() {
    let dir = repo().join("tests/mapping_cases");
    let base = std::fs::read_to_string(dir.join("base.xml")).unwrap();
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 20,
        "expected at least 20 cases, found {}",
        cases.len()
    );
    let failures: Vec<String> = cases.iter().flat_map(|c| run_case(c, &base)).collect();
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
