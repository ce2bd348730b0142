//! What the daemon tells the [`Alerter`] about the files in its folders:
//! the incidents of a file (refused, parked, held, a sequence gap), keyed
//! `<prefix>:<link>:<manifest name>`, and the sweep after each listing
//! that raises the files found in `error/` (put there by a CLI command or
//! before a restart) and resolves the incidents whose file left its folder.
//! The alerter sends from its own threads: nothing here waits on a
//! delivery.

use std::collections::BTreeSet;
use std::path::Path;

use crate::alert::{self, Alerter, Event, Incident};
use crate::config::{Config, Folders};
use crate::exchange::FileName;

/// The incident of `event` on the file named `file` (a manifest name): its
/// key, link and receiving side filled from the name when it parses.
pub(super) fn file_incident(event: Event, file: &str, summary: impl Into<String>) -> Incident {
    let parsed = FileName::parse_manifest(file).ok();
    let link = parsed.as_ref().map_or("", |n| n.link.as_str());
    let mut incident = Incident::new(event, alert::key(event, &[link, file]), summary).file(file);
    if let Some(n) = &parsed {
        incident = incident.link(&n.link).side(n.kind.receiver());
    }
    incident
}

/// The key of `event` on the file named `file` (see [`file_incident`]).
pub(super) fn file_key(event: Event, file: &str) -> String {
    let link = FileName::parse_manifest(file)
        .map(|n| n.link)
        .unwrap_or_default();
    alert::key(event, &[&link, file])
}

/// After a listing: raises every file in an `error/` folder not already
/// open, and resolves the file incidents whose file is no longer where it
/// waited (`error/`, `parked/`, the inbox) or whose link this config no
/// longer serves.
pub(super) fn sweep(config: &Config, alerter: &Alerter) {
    let folders: Vec<(String, Folders)> = config
        .served(None)
        .map(|(link, _, side)| (link.name.clone(), link.folders(side)))
        .collect();
    let open: BTreeSet<String> = alerter
        .open_keys(&format!("{}:", alert::key(Event::FileRefused, &[])))
        .into_iter()
        .collect();
    let mut present = BTreeSet::new();
    for (_, f) in &folders {
        for name in manifests(&f.error) {
            let incident = file_incident(
                Event::FileRefused,
                &name,
                format!(
                    "file {name} is in error/: read its .reason, fix, then remove or resend it"
                ),
            )
            .code("in-error")
            .fix(format!(
                "read {}, ask the sender for a corrected file, then remove the file from error/",
                f.error.join(format!("{name}.reason")).display()
            ));
            if !open.contains(&incident.key) {
                alerter.raise(incident);
            }
            present.insert(file_key(Event::FileRefused, &name));
        }
    }
    for key in open {
        if !present.contains(&key) {
            alerter.resolve(&key);
        }
    }
    let waiting: [(Event, WaitDir); 3] = [
        (Event::FileParked, |f| &f.parked),
        (Event::FileHeld, |f| &f.inbox),
        (Event::SequenceGap, |f| &f.inbox),
    ];
    for (event, dir) in waiting {
        for key in alerter.open_keys(&format!("{}:", alert::key(event, &[]))) {
            let still = key
                .split_once(':')
                .and_then(|(_, rest)| rest.split_once(':'))
                .is_some_and(|(link, file)| {
                    folders
                        .iter()
                        .any(|(l, f)| l == link && dir(f).join(file).is_file())
                });
            if !still {
                alerter.resolve(&key);
            }
        }
    }
}

/// The folder where a file with an incident waits.
type WaitDir = fn(&Folders) -> &Path;

/// The manifest names in `dir` (none if it cannot be listed).
fn manifests(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| FileName::parse_manifest(name).is_ok())
        .collect()
}
