//! Master data loaded into a store: seat plan and catalogue XML (the
//! exchange payloads without their envelope) streamed record by record, and
//! setup TOML files, in one transaction (`stxd load`, and a new store's
//! `load` files).

use std::path::PathBuf;

use crate::domain::DomainError;
use crate::domain::load;
use crate::format::{FormatError, Position};
use crate::store::Store;
use crate::transport;
use crate::transport::progress::Watch;

/// Loads master-data files into a store in one transaction; returns what was
/// loaded, per object kind.
pub fn load(store: &mut Store, files: &[PathBuf]) -> Result<Loaded, DomainError> {
    load_watched(store, files, &Watch::none())
}

/// [`load()`], `watch` hearing how far each XML file is read (a one-shot
/// command's progress bar).
pub fn load_watched(
    store: &mut Store,
    files: &[PathBuf],
    watch: &Watch,
) -> Result<Loaded, DomainError> {
    store.write(|tx| load_files(tx, files, watch))
}

/// What [`load()`] loaded, per object kind, in first-seen order.
pub type Loaded = Vec<(String, u64)>;

/// Loads master-data files, in the order given, inside the caller's
/// transaction: seat plan and catalogue XML (the exchange payloads, without
/// envelope; the root element tells which) streamed record by record, and
/// setup TOML files. Any error names its file and position; the caller's
/// transaction then commits nothing.
fn load_files(
    tx: &rusqlite::Transaction<'_>,
    paths: &[PathBuf],
    watch: &Watch,
) -> Result<Loaded, DomainError> {
    let limits = crate::format::Limits::default();
    let mut loaded: Loaded = Vec::new();
    let mut count = |what: &str, n: u64| match loaded.iter_mut().find(|(w, _)| w == what) {
        Some((_, total)) => *total += n,
        None => loaded.push((what.to_owned(), n)),
    };
    for path in paths {
        let name = path.display().to_string();
        if path.extension().is_some_and(|e| e == "toml") {
            let summary = load::setup_file(tx, path)?;
            count("setup objects", summary.objects as u64);
            continue;
        }
        let io = |source| DomainError::Io {
            file: name.clone(),
            source,
        };
        let opened = transport::local::open_regular(path, limits.max_file_bytes);
        let (file, len) = opened.map_err(|e| match e {
            transport::local::OpenError::Refused { code, problem } => {
                DomainError::Format(FormatError::new(&name, Position::File, code, problem))
            }
            transport::local::OpenError::Io(source) => io(source),
        })?;
        let mut counted = watch.reader(file, &name, len);
        counted.pass("load");
        let mut input = std::io::BufReader::new(counted);
        match xml_root(&mut input).map_err(io)? {
            Some("seatplan") => {
                for item in crate::format::seatplan::Reader::new(input, &name, limits) {
                    load::seatplan_item(tx, &item?)?;
                    count("seat plan records", 1);
                }
                load::seatplan_done(tx, &name)?;
            }
            Some("catalogue") => {
                for (n, item) in
                    crate::format::catalogue::Reader::new(input, &name, limits).enumerate()
                {
                    // A content refusal names the record (the N-th element).
                    load::catalogue_item(tx, &item?).map_err(|e| match e {
                        DomainError::Content(_) => e.locate(&name, || {
                            crate::format::Position::record(n as u64 + 1, "catalogue record")
                        }),
                        e => e,
                    })?;
                    count("catalogue records", 1);
                }
                load::catalogue_done(tx)?;
            }
            _ => {
                return Err(DomainError::Format(FormatError::new(
                    &name,
                    Position::File,
                    "bad-root",
                    "expected master data: a <seatplan> or <catalogue> XML document, or a setup .toml file",
                )));
            }
        }
    }
    Ok(loaded)
}

/// Peeks at the start of an XML document (without consuming it) for the name
/// of its root element.
fn xml_root(input: &mut impl std::io::BufRead) -> std::io::Result<Option<&'static str>> {
    let head = input.fill_buf()?;
    let head = &head[..head.len().min(512)];
    let text = String::from_utf8_lossy(head);
    let mut rest = text.as_ref();
    // Skip the declaration, comments and DOCTYPE constructs (the reader then
    // refuses the latter with its precise reason).
    while let Some(i) = rest.find('<') {
        rest = &rest[i..];
        if rest.starts_with("<?") || rest.starts_with("<!") {
            rest = &rest[1..];
            continue;
        }
        return Ok(["seatplan", "catalogue"]
            .into_iter()
            .find(|root| rest[1..].starts_with(root)));
    }
    Ok(None)
}
