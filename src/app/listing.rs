//! The files waiting in a link's folders and their processing: the
//! complete pairs of a folder in apply order, the folders to list, the
//! one-shot pipeline over a list of files (`stxd process`, `stxd resume`,
//! the daemon's listings and jobs), and the files held back for their
//! kind's apply window.

use std::path::{Path, PathBuf};

use super::{AppError, open_side, require_secret};
use crate::config::{self, Config};
use crate::exchange::{FileName, Role};
use crate::format::envelope;
use crate::format::{Kind, Limits};
use crate::inbound::{self, InboundError, Outcome, Stray};
use crate::transport::progress::Watch;

/// The manifest of a Fichier SecuTix file, given the manifest or its
/// payload (any other path is returned as it is, for claim to refuse).
pub fn manifest_path_of(file: &Path) -> PathBuf {
    match file
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| FileName::parse(n).ok())
    {
        Some(name) => file.with_file_name(name.to_manifest().to_string()),
        None => file.to_owned(),
    }
}

/// The complete pairs waiting in a folder (manifests present), in the order
/// they must apply: by kind, then sequence. Dot-names and temporary names are
/// never listed; only names following the manifest pattern are.
pub fn waiting_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found: Vec<((Kind, u64), PathBuf)> = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        match FileName::parse_manifest(&name) {
            Ok(n) => found.push(((n.kind, n.sequence), entry.path())),
            Err(problem) if name.ends_with(envelope::MANIFEST_EXT) => {
                misnamed(&entry.path(), &problem.to_string())
            }
            // Anything else (a payload, a temporary name) is not ours to take.
            Err(_) => {}
        }
    }
    found.sort();
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

/// Warns, once per process and path, about a `.stx` entry whose name is not
/// a manifest name (a leading `-`, `..`, another link pattern): it is never
/// taken, never read and never moved; ops rename or remove it.
fn misnamed(path: &Path, problem: &str) {
    use std::collections::HashSet;
    use std::sync::{Mutex, PoisonError};
    static WARNED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
    let mut warned = WARNED.lock().unwrap_or_else(PoisonError::into_inner);
    let warned = warned.get_or_insert_with(HashSet::new);
    if warned.len() > 1024 {
        // Forget the entries that left their folder, so the set stays small.
        warned.retain(|p| std::fs::symlink_metadata(p).is_ok());
    }
    if warned.insert(path.to_owned()) {
        warn!(
            file = %inbound::claim::display_name(path),
            folder = %path.parent().map(|d| d.display().to_string()).unwrap_or_default(),
            problem,
            "entry ignored: not a manifest name; it is never taken, rename or remove it"
        );
    }
}

/// One file handled by [`process_files`].
#[derive(Debug)]
pub struct Handled {
    pub institution: String,
    pub file: PathBuf,
    pub processed: Result<inbound::Processed, InboundError>,
}

impl Handled {
    /// What became of the file, for people: its state (applied, parked,
    /// held…), a sentence, and its run when it has one.
    pub fn describe(&self) -> (&'static str, String, Option<i64>) {
        let h = self;
        match &h.processed {
            Err(e) => (
                "retry",
                format!("not processed now, will be retried: {e}"),
                None,
            ),
            Ok(p) => match &p.outcome {
                Outcome::Applied { run, summary } => ("applied", summary.to_string(), Some(*run)),
                Outcome::AlreadyApplied { sequence } => (
                    "already-applied",
                    format!(
                        "sequence {sequence} was applied before with the same content: nothing done"
                    ),
                    None,
                ),
                Outcome::Parked { run, missing } => (
                    "parked",
                    format!(
                        "{} mapping(s) pending ({}); fill them (stxd mapping list --pending) and it resumes",
                        missing.len(),
                        missing
                            .iter()
                            .map(|m| format!("{} {} {}", m.kind, m.manager_id, m.code))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    Some(*run),
                ),
                Outcome::Held { hold, reason } => ("held", format!("{hold}: {reason}"), None),
                Outcome::Quarantined { stray, reason } => (
                    "quarantined",
                    format!(
                        "{stray}: {reason} (set aside into {}; stxd retry puts it back)",
                        p.location.display()
                    ),
                    None,
                ),
                Outcome::Rejected(e) => (
                    "rejected",
                    format!("{e} (moved to {})", p.location.display()),
                    None,
                ),
            },
        }
    }
}

/// Processes Fichier SecuTix files through the inbound stages. A file in
/// an inbox (or parked folder) of a side this config serves is given to that
/// side when its name fits the folder, else set aside into the folder's
/// `quarantine/` ([`placement`]); a file elsewhere (given by hand) goes to
/// the institution of this config that receives it on the link its manifest
/// names.
pub fn process_files(config: &Config, files: &[PathBuf]) -> Result<Vec<Handled>, AppError> {
    process_files_watched(config, files, &|| false, &Watch::none())
}

/// The stores that stayed busy for a file of one listing (another process
/// held the write lock past the timeout): that listing does not try their
/// other files, each of which would only wait as long again.
#[derive(Debug, Default)]
pub struct BusyStores(Vec<String>);

/// [`process_files`] for a listing handed over a few files at a time (the
/// daemon's, which reports each file before taking the next): `busy`
/// carries the stores found busy from one call to the next, `watch` hears
/// how far each payload is read.
pub fn process_listed(
    config: &Config,
    files: &[PathBuf],
    watch: &Watch,
    busy: &mut BusyStores,
) -> Result<Vec<Handled>, AppError> {
    process_files_in(config, files, &|| false, watch, busy)
}

/// [`process_files`], stopping between two files once `stop` says so (a
/// daemon shutting down: the files not reached stay where they are),
/// `watch` hearing how far each payload is read (a one-shot command's
/// progress bar, the daemon's progress lines).
pub fn process_files_watched(
    config: &Config,
    files: &[PathBuf],
    stop: &dyn Fn() -> bool,
    watch: &Watch,
) -> Result<Vec<Handled>, AppError> {
    process_files_in(config, files, stop, watch, &mut BusyStores::default())
}

fn process_files_in(
    config: &Config,
    files: &[PathBuf],
    stop: &dyn Fn() -> bool,
    watch: &Watch,
    busy: &mut BusyStores,
) -> Result<Vec<Handled>, AppError> {
    let limits = Limits::default();
    let reading = inbound::Reading {
        limits: &limits,
        payload_grace: std::time::Duration::from_secs(config.daemon.payload_grace_seconds),
        watch,
    };
    let mut handled = Vec::new();
    for file in files {
        if stop() {
            break;
        }
        let manifest = manifest_path_of(file);
        let name = inbound::claim::display_name(&manifest);
        let parsed = FileName::parse_manifest(&name).map_err(|problem| AppError::NotAManifest {
            file: manifest.clone(),
            problem,
        })?;
        let (link_name, side) = match placement(config, &manifest, &parsed) {
            Placement::Served { link, side } => (link.name.clone(), side),
            Placement::Stray {
                link,
                side,
                stray,
                reason,
            } => {
                let inst = served_institution(config, link, side)
                    .map(|i| i.code.to_string())
                    .unwrap_or_default();
                let processed =
                    inbound::quarantine(&manifest, &link.folders(side).quarantine, stray, reason);
                handled.push(Handled {
                    institution: inst,
                    file: manifest,
                    processed,
                });
                continue;
            }
            Placement::Elsewhere => {
                let link =
                    config
                        .link(&parsed.link)
                        .ok_or_else(|| AppError::LinkNotConfigured {
                            file: name.clone(),
                            link: parsed.link.clone(),
                        })?;
                (link.name.clone(), parsed.kind.receiver())
            }
        };
        let (link, inst, mut store) = open_side(config, &link_name, side)?;
        let institution = inst.code.to_string();
        let processed = if busy.0.contains(&institution) {
            Err(InboundError::StoreBusy {
                institution: institution.clone(),
            })
        } else {
            let secret = require_secret(link)?;
            let processed = inbound::process(&mut store, link, side, &secret, &manifest, &reading);
            if processed.as_ref().is_err_and(InboundError::is_busy) {
                busy.0.push(institution.clone());
            }
            processed
        };
        handled.push(Handled {
            institution,
            file: manifest,
            processed,
        });
    }
    Ok(handled)
}

/// Where a listed manifest sits, and whether its name belongs there.
#[derive(Debug)]
pub enum Placement<'c> {
    /// In an inbox (or parked folder) of a side this config serves, named
    /// for that folder's link and for a kind that side receives.
    Served { link: &'c config::Link, side: Role },
    /// In such a folder, but not for it: an unknown link, another link's
    /// name, a kind the folder's side does not receive (or a side this
    /// config does not serve), sequence 0. Set aside into the folder's
    /// `quarantine/`, the reason and its words given.
    Stray {
        link: &'c config::Link,
        side: Role,
        stray: Stray,
        reason: String,
    },
    /// In no inbox nor parked folder of this config (a file given by hand
    /// from elsewhere): routed by its name.
    Elsewhere,
}

/// Judges a manifest by the folder it is in ([`Placement`]). Several sides
/// may share one inbox (both sides of an SFTP link served here): the side
/// whose link and received kind the name carries is the one.
pub fn placement<'c>(config: &'c Config, manifest: &Path, name: &FileName) -> Placement<'c> {
    let pair = inbound::archive::Pair::of(manifest);
    let here: Vec<(&config::Link, Role)> = config
        .served(None)
        .filter(|(l, _, side)| {
            let f = l.folders(*side);
            pair.is_in(&f.inbox) || pair.is_in(&f.parked)
        })
        .map(|(l, _, side)| (l, side))
        .collect();
    let Some(&(first, first_side)) = here.first() else {
        return Placement::Elsewhere;
    };
    if let Some(&(link, side)) = here
        .iter()
        .find(|(l, side)| l.name == name.link && name.kind.receiver() == *side)
    {
        if name.sequence == 0 {
            return Placement::Stray {
                link,
                side,
                stray: Stray::SequenceZero,
                reason: format!(
                    "sequence 0 is never sent (sequences start at 1): not a file of link {}",
                    link.name
                ),
            };
        }
        return Placement::Served { link, side };
    }
    let (link, side) = here
        .iter()
        .copied()
        .find(|(l, _)| l.name == name.link)
        .unwrap_or((first, first_side));
    let (stray, reason) = if config.link(&name.link).is_none() {
        (
            Stray::UnknownLink,
            format!(
                "named for link {:?}, which is not in this config; found in the {side}'s inbox of link {}",
                name.link, link.name
            ),
        )
    } else if name.link != link.name {
        (
            Stray::OtherLink,
            format!(
                "named for link {}, found in the {side}'s inbox of link {}: each link's files go to its own folders",
                name.link, link.name
            ),
        )
    } else {
        let receiver = name.kind.receiver();
        let served = config
            .served(Some(&link.name))
            .any(|(_, _, s)| s == receiver);
        (
            Stray::WrongFolder,
            format!(
                "{} files go to the {receiver}{}; this is the {side}'s inbox of link {}",
                name.kind,
                if served {
                    ""
                } else {
                    ", a side this config does not serve"
                },
                link.name
            ),
        )
    };
    Placement::Stray {
        link,
        side,
        stray,
        reason,
    }
}

/// The institution this config serves on `side` of `link`.
fn served_institution<'c>(
    config: &'c Config,
    link: &'c config::Link,
    side: Role,
) -> Option<&'c config::Institution> {
    config
        .served(Some(&link.name))
        .find(|(_, _, s)| *s == side)
        .map(|(_, i, _)| i)
}

/// The inboxes (or, for `resume`, the parked folders) of every side of
/// `link` (or of every link) served by this config.
pub fn folders_to_scan(
    config: &Config,
    link: Option<&str>,
    pick: impl Fn(&config::Folders) -> PathBuf,
) -> Result<Vec<PathBuf>, AppError> {
    if let Some(name) = link {
        config.require_link(name).map_err(AppError::UnknownLink)?;
    }
    Ok(config
        .served(link)
        .map(|(l, _, side)| pick(&l.folders(side)))
        .collect())
}

/// Every complete file waiting in the scanned folders, in apply order:
/// each folder's in sequence order, the folders taken in turn (the first
/// file of each, then the second of each…), so that a link with a backlog
/// delays another by at most one file, never by its whole queue.
pub fn scan(dirs: &[PathBuf]) -> Result<Vec<PathBuf>, AppError> {
    let mut queues = Vec::with_capacity(dirs.len());
    for dir in dirs {
        let files = waiting_files(dir).map_err(|source| AppError::List {
            dir: dir.clone(),
            source,
        })?;
        queues.push(files.into_iter());
    }
    Ok(in_turn(queues))
}

/// One item of each queue in turn until all are empty.
fn in_turn<T>(mut queues: Vec<std::vec::IntoIter<T>>) -> Vec<T> {
    let mut out = Vec::with_capacity(queues.iter().map(ExactSizeIterator::len).sum());
    while !queues.is_empty() {
        queues.retain_mut(|q| match q.next() {
            Some(item) => {
                out.push(item);
                true
            }
            None => false,
        });
    }
    out
}

/// Retries the parked files of `link` (or of every link), in sequence
/// order: called by `stxd resume` and after mappings are filled.
pub fn resume(config: &Config, link: Option<&str>) -> Result<Vec<Handled>, AppError> {
    let dirs = folders_to_scan(config, link, |f| f.parked.clone())?;
    process_files(config, &scan(&dirs)?)
}

/// The parked files worth applying again, in their order: those that
/// would only park again (every mapping their last run found missing is
/// missing still, [`inbound::parks_again`]) are left out, so that a change
/// to the store that fills none of them (a sale, an export) costs no
/// reading of their payload and no new parked run. The daemon's retries
/// after such changes go through here; `stxd resume`, the daemon's start
/// and an explicit request retry every parked file.
pub fn parked_worth_retrying(config: &Config, files: Vec<PathBuf>) -> Vec<PathBuf> {
    let limits = Limits::default();
    files
        .into_iter()
        .filter(|file| {
            let manifest = manifest_path_of(file);
            let name = inbound::claim::display_name(&manifest);
            let Ok(parsed) = FileName::parse_manifest(&name) else {
                return true;
            };
            let Placement::Served { link, side } = placement(config, &manifest, &parsed) else {
                return true;
            };
            let Some(inst) = served_institution(config, link, side) else {
                return true;
            };
            let (Ok(secret), Ok(conn)) = (
                require_secret(link),
                crate::store::open_read_only(&config.store_path(&inst.code)),
            ) else {
                return true;
            };
            let again = inbound::parks_again(&conn, (link, side), &secret, &manifest, &limits);
            if again {
                debug!(file = %name, "parked file not retried: every mapping it waits for is still missing");
            }
            !again
        })
        .collect()
}

/// A file held in its folder until the next apply window of its kind on its
/// link (`[[schedule]] job = "apply-<kind>"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowHeld {
    pub file: PathBuf,
    pub link: String,
    pub kind: Kind,
    /// When the window opens next (`None`: its schedule never fires again;
    /// only a trigger opens it).
    pub next: Option<time::OffsetDateTime>,
}

impl WindowHeld {
    /// The reason, for logs: names the window and its next time.
    pub fn reason(&self) -> String {
        let job = crate::schedule::Job::Apply(self.kind);
        match self.next {
            Some(at) => format!(
                "waits for the apply window {job}, next at {}, on link {} (or drop the trigger {job} in the link's control folder)",
                crate::store::format_timestamp(at),
                self.link
            ),
            None => format!(
                "waits for the apply window {job} of link {}, which does not fire again: drop the trigger {job} in the link's control folder",
                self.link
            ),
        }
    }
}

/// Splits listed files into those to process now and those held for an
/// apply window. The daemon and a `poll` job hold; `stxd process` does not
/// call this (ops forcing a file apply it at once). A file whose archive move
/// a crash cut is never held: finishing that move applies nothing, and a
/// pair must not stay split until the window opens.
pub fn split_by_window(
    config: &Config,
    files: Vec<PathBuf>,
    now: time::OffsetDateTime,
) -> (Vec<PathBuf>, Vec<WindowHeld>) {
    let mut ready = Vec::new();
    let mut held = Vec::new();
    let unfinished = |file: &Path, link: &str, kind: Kind| {
        config.link(link).is_some_and(|l| {
            let folders = l.folders(kind.sender().peer());
            inbound::recover::unfinished(&inbound::archive::Pair::of(file), &folders)
        })
    };
    for file in files {
        let name = inbound::claim::display_name(&file);
        match FileName::parse_manifest(&name) {
            // Set aside at once: a stray waits for no window.
            Ok(n) if matches!(placement(config, &file, &n), Placement::Stray { .. }) => {
                ready.push(file)
            }
            Ok(FileName { link, kind, .. }) => {
                match crate::schedule::apply_window(&config.schedules, &link, kind, now) {
                    Some(_) if unfinished(&file, &link, kind) => ready.push(file),
                    Some(next) => held.push(WindowHeld {
                        file,
                        link,
                        kind,
                        next,
                    }),
                    None => ready.push(file),
                }
            }
            // Refused later with its reason by the inbound stages.
            Err(_) => ready.push(file),
        }
    }
    (ready, held)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_served_in_turn_each_in_its_own_order() {
        let queues = vec![
            vec!["a1", "a2", "a3", "a4"].into_iter(),
            vec![].into_iter(),
            vec!["b1"].into_iter(),
            vec!["c1", "c2"].into_iter(),
        ];
        assert_eq!(in_turn(queues), ["a1", "b1", "c1", "a2", "c2", "a3", "a4"]);
        assert!(in_turn::<u8>(Vec::new()).is_empty());
    }

    /// The distributor TOURISM only (a two-server setup), on a local link.
    fn distributor_only(dir: &Path) -> Config {
        let text = format!(
            r#"
state_dir = "{d}/state"
[[institution]]
code = "TOURISM"
role = "distributor"
[[link]]
name = "opera-tourism"
manager = "OPERA"
distributor = "TOURISM"
login = "TOURISM_OPE@TOURISM"
secret_file = "{d}/s.key"
transport = {{ kind = "local", dir = "{d}/x" }}
"#,
            d = dir.display()
        );
        config::parse(&text, "t").expect("config")
    }

    fn judge<'c>(config: &'c Config, file: &Path) -> Placement<'c> {
        let name = FileName::parse_manifest(&inbound::claim::display_name(file)).expect("name");
        placement(config, file, &name)
    }

    #[test]
    fn a_file_is_judged_by_the_folder_it_is_in() {
        let dir = tempfile::tempdir().expect("dir");
        let config = distributor_only(dir.path());
        let inbox = config.links[0].folders(Role::Distributor).inbox;
        // Its own kind, its own link: served.
        assert!(matches!(
            judge(&config, &inbox.join("opera-tourism.CATALOGUE.00000001.stx")),
            Placement::Served {
                side: Role::Distributor,
                ..
            }
        ));
        // Sales go to the manager, a side this config does not serve.
        let Placement::Stray { stray, reason, .. } =
            judge(&config, &inbox.join("opera-tourism.SALES.00000001.stx"))
        else {
            panic!("a SALES file in the distributor's inbox is a stray")
        };
        assert_eq!(stray.code(), "wrong-folder");
        assert!(
            reason.contains("a side this config does not serve"),
            "{reason}"
        );
        // Another link's name, an unknown one, sequence 0.
        let code_of = |name: &str| match judge(&config, &inbox.join(name)) {
            Placement::Stray { stray, .. } => stray.code(),
            other => panic!("{name}: {other:?}"),
        };
        assert_eq!(code_of("zz.CATALOGUE.00000001.stx"), "unknown-link");
        assert_eq!(
            code_of("opera-tourism.CATALOGUE.00000000.stx"),
            "sequence-zero"
        );
        // A file outside every folder of the config is routed by its name.
        assert!(matches!(
            judge(
                &config,
                &dir.path().join("opera-tourism.SALES.00000001.stx")
            ),
            Placement::Elsewhere
        ));
    }
}
