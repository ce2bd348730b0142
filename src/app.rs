//! The application: opens what a config names (stores, secrets) and runs the
//! checks across it.
//!
//! Takes a validated [`Config`]; returns open [`Store`]s, secrets and
//! reports. One-shot CLI commands and the daemon both start here, so a store
//! is created, bootstrapped and checked the same way whoever asks. Business
//! rules stay in [`crate::domain`]; this module only wires config, store and
//! domain together.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::config::{self, Config, Institution, Link};
use crate::domain::DomainError;
use crate::domain::load;
use crate::domain::setup::{self, Finding, LinkFacts, Severity};
use crate::exchange::FileName;
use crate::format::envelope::{self, Expect, Secret};
use crate::format::{FormatError, Kind, Limits, Position};
use crate::inbound::{self, InboundError, Record};
use crate::outbound;
use crate::store::{Role, Store};
use crate::transport;

/// Opens an institution's store, creating it (and loading the config's
/// `load` files into it, all or nothing) when it does not exist yet.
pub fn open_store(config: &Config, inst: &Institution) -> anyhow::Result<Store> {
    create_private_dir(&config.state_dir)?;
    let path = config.store_path(&inst.code);
    let is_new = !path.exists();
    let mut store = Store::open(&path, inst.code.as_str(), inst.role)
        .with_context(|| format!("cannot open the store of {}", inst.code))?;
    if is_new && !inst.load.is_empty() {
        if let Err(e) = load(&mut store, &inst.load) {
            drop(store);
            remove_store_files(&path);
            return Err(anyhow::anyhow!(e)).with_context(|| {
                format!(
                    "cannot bootstrap {} from its load files; the new store was removed",
                    inst.code
                )
            });
        }
        tracing::info!(institution = %inst.code, files = inst.load.len(), "store created and master data loaded");
    }
    Ok(store)
}

fn remove_store_files(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

/// The institution of this config playing `side` on `link`, with its store
/// open. Errors say what is missing from the config.
pub fn open_side<'c>(
    config: &'c Config,
    link: &str,
    side: Role,
) -> anyhow::Result<(&'c Link, &'c Institution, Store)> {
    let link = config.require_link(link).map_err(anyhow::Error::msg)?;
    let code = match side {
        Role::Manager => &link.manager,
        Role::Distributor => &link.distributor,
    };
    let Some(inst) = config.institution(code.as_str()) else {
        anyhow::bail!(
            "the {side} {code} of link {} is not served by this config: run this command on the {side}'s server",
            link.name
        );
    };
    let store = open_store(config, inst)?;
    Ok((link, inst, store))
}

/// Loads master-data files into a store in one transaction; returns what was
/// loaded, per object kind.
pub fn load(store: &mut Store, files: &[PathBuf]) -> Result<Loaded, DomainError> {
    store.write(|tx| load_files(tx, files))
}

/// What [`load`] loaded, per object kind, in first-seen order.
pub type Loaded = Vec<(String, u64)>;

/// Loads master-data files, in the order given, inside the caller's
/// transaction: seat plan and catalogue XML (the exchange payloads, without
/// envelope; the root element tells which) streamed record by record, and
/// setup TOML files. Any error names its file and position; the caller's
/// transaction then commits nothing.
fn load_files(tx: &rusqlite::Transaction<'_>, paths: &[PathBuf]) -> Result<Loaded, DomainError> {
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
        let (file, _) = opened.map_err(|e| match e {
            transport::local::OpenError::Refused { code, problem } => {
                DomainError::Format(FormatError::new(&name, Position::File, code, problem))
            }
            transport::local::OpenError::Io(source) => io(source),
        })?;
        let mut input = std::io::BufReader::new(file);
        match xml_root(&mut input).map_err(io)? {
            Some("seatplan") => {
                for item in crate::format::seatplan::Reader::new(input, &name, limits) {
                    load::seatplan_item(tx, &item?)?;
                    count("seat plan records", 1);
                }
            }
            Some("catalogue") => {
                for item in crate::format::catalogue::Reader::new(input, &name, limits) {
                    load::catalogue_item(tx, &item?)?;
                    count("catalogue records", 1);
                }
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

/// The secret of a link: generated first when the config allows it and it is
/// missing.
pub fn link_secret(link: &Link) -> Result<Secret, config::SecretError> {
    if link.generate_secret {
        match config::generate_secret(&link.secret_file) {
            Ok(true) => {
                tracing::info!(link = %link.name, file = %link.secret_file.display(), "shared secret generated")
            }
            Ok(false) => {}
            Err(e) => return Err(config::SecretError::Io(link.secret_file.clone(), e)),
        }
    }
    config::read_secret(&link.secret_file)
}

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

/// The secret to verify a file found anywhere: `--secret-file` when given,
/// else the secret of the configured link the manifest names.
pub fn inspection_secret<'c>(
    config: &'c Config,
    link_name: &str,
    secret_file: Option<&Path>,
    manifest_name: &str,
) -> Result<(Secret, Option<&'c Link>), InboundError> {
    let link = config.link(link_name);
    let refuse = |code, problem: String| {
        InboundError::Rejected(FormatError::new(
            manifest_name,
            Position::File,
            code,
            problem,
        ))
    };
    let secret = match (secret_file, link) {
        (Some(path), _) => config::read_secret(path),
        (None, Some(link)) => config::read_secret(&link.secret_file),
        (None, None) => {
            return Err(refuse(
                "unknown-link",
                format!(
                    "link {link_name:?} is not in the config: pass --secret-file to verify the file with its secret"
                ),
            ));
        }
    };
    let secret = secret.map_err(|e| refuse("no-secret", e.to_string()))?;
    Ok((secret, link))
}

/// Everything `stxd check` found, grouped by where it applies.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// Link-level findings (secrets).
    pub links: Vec<Finding>,
    /// Per institution: code, role and its setup findings.
    pub institutions: Vec<(String, Role, Vec<Finding>)>,
}

impl CheckReport {
    pub fn count(&self, severity: Severity) -> usize {
        self.links
            .iter()
            .chain(self.institutions.iter().flat_map(|(_, _, f)| f))
            .filter(|f| f.severity == severity)
            .count()
    }
}

/// Checks every link's secret and every institution's setup against the
/// manual's checklist. Opens (and on first use creates) the stores.
pub fn check(config: &Config) -> anyhow::Result<CheckReport> {
    let mut report = CheckReport::default();
    for link in &config.links {
        if let Err(e) = link_secret(link) {
            report.links.push(Finding {
                severity: Severity::Error,
                object: format!("link {} shared secret", link.name),
                problem: e.to_string(),
                fix: "write the virtual operator's password to the secret file, readable by stxd's user only".into(),
            });
        }
        report.links.extend(sftp_findings(link));
    }
    for inst in &config.institutions {
        let store = open_store(config, inst)?;
        let facts: Vec<LinkFacts> = config
            .links_of(&inst.code)
            .map(|l| LinkFacts {
                name: l.name.clone(),
                manager: l.manager.to_string(),
                distributor: l.distributor.to_string(),
                login: l.login.clone(),
            })
            .collect();
        let findings = store.read(|conn| {
            Ok::<_, crate::store::StoreError>(setup::check(conn, inst.role, &facts))
        })?;
        report
            .institutions
            .push((inst.code.to_string(), inst.role, findings));
    }
    Ok(report)
}

/// An SFTP link's local prerequisites, checked before any connection: the
/// key (or password) file is private and regular, and `known_hosts` names
/// the server (stxd never adds a host key).
fn sftp_findings(link: &Link) -> Vec<Finding> {
    let Some(ep) = transport::sftp::Endpoint::of(link) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut error = |object: &str, problem: String, fix: &str| {
        found.push(Finding {
            severity: Severity::Error,
            object: format!("link {} {object}", link.name),
            problem,
            fix: fix.to_owned(),
        })
    };
    let secret = match &ep.auth {
        config::SftpAuth::KeyFile(p) | config::SftpAuth::PasswordFile(p) => p,
    };
    if let Err(problem) = transport::sftp::check_secret_file(secret) {
        error(
            "SFTP login",
            problem,
            "give stxd's user its own private key file, mode 600",
        );
    }
    match std::fs::read_to_string(&ep.known_hosts) {
        Err(e) => error(
            "known_hosts",
            format!("cannot read {}: {e}", ep.known_hosts.display()),
            "write the server's host key there (ssh-keyscan, then compare the fingerprint with the peer's admin)",
        ),
        Ok(text) if transport::sftp::pinned_algorithms(&text, &ep.host, ep.port).is_none() => {
            error(
                "known_hosts",
                format!(
                    "{} holds no key for {}",
                    ep.known_hosts.display(),
                    ep.address()
                ),
                "add the server's host key (ssh-keyscan -p PORT HOST), checked with the peer's admin",
            )
        }
        Ok(_) => {}
    }
    found
}

/// What `stxd inspect` found in a valid file.
#[derive(Debug)]
pub struct Inspection {
    pub manifest: crate::format::envelope::Manifest,
    /// Records per type, in first-seen order.
    pub counts: Vec<(&'static str, u64)>,
}

/// Claims, verifies and parses a Fichier SecuTix file found anywhere (given
/// its manifest or its payload), without applying it: the inbound stages'
/// code path, with the link taken from the manifest.
pub fn inspect(
    config: &Config,
    file: &Path,
    secret_file: Option<&Path>,
) -> Result<Inspection, InboundError> {
    let limits = Limits::default();
    let claimed = inbound::claim::claim(&manifest_path_of(file), &limits)?;
    let manifest_name = claimed.manifest_name();
    let link_name = envelope::peek_link(&claimed.manifest).unwrap_or_default();
    let (secret, link) = inspection_secret(config, &link_name, secret_file, &manifest_name)?;
    // Authenticated first, so the kind that picks the expectations is trusted.
    let announced = envelope::authenticate(&claimed.manifest, &manifest_name, &secret)?;
    let expect = match link {
        Some(link) => link.expectation(announced.kind),
        None => Expect {
            link: &announced.link,
            sender: &announced.sender,
            recipient: &announced.recipient,
            login: &announced.login,
            kind: Some(announced.kind),
        },
    };
    let verified = inbound::verify::verify(claimed, &secret, &expect, &limits)?;
    let mut records = inbound::parse::parse(verified, &limits);
    let manifest = records.manifest().clone();
    let mut counts: Vec<(&'static str, u64)> = Vec::new();
    for record in records.by_ref() {
        let label = record_label(&record?);
        match counts.iter_mut().find(|(l, _)| *l == label) {
            Some((_, n)) => *n += 1,
            None => counts.push((label, 1)),
        }
    }
    Ok(Inspection { manifest, counts })
}

fn record_label(record: &Record) -> &'static str {
    use crate::format::{catalogue, contingent, sales, seatplan};
    match record {
        Record::Seatplan(i) => match i {
            seatplan::Item::SeatCategory(_) => "seat categories",
            seatplan::Item::Venue(_) => "venues",
            seatplan::Item::Configuration(_) => "configurations",
            seatplan::Item::Zone(_) => "zones",
            seatplan::Item::Block(_) => "blocks",
            seatplan::Item::Row(_) => "rows",
            seatplan::Item::Seat(_) => "seats",
        },
        Record::Catalogue(i) => match i {
            catalogue::Item::Season(_) => "seasons",
            catalogue::Item::VatCode(_) => "VAT codes",
            catalogue::Item::TariffType(_) => "tariff types",
            catalogue::Item::AudienceSubcategory(_) => "audience subcategories",
            catalogue::Item::SeatCategory(_) => "seat categories",
            catalogue::Item::Activity(_) => "activities",
            catalogue::Item::LogicalConfiguration(_) => "logical configurations",
            catalogue::Item::LogicalSeatCategory(_) => "logical seat categories",
            catalogue::Item::Performance(_) => "performances",
            catalogue::Item::RateTable(_) => "rate tables",
            catalogue::Item::Price(_) => "prices",
            catalogue::Item::Product(_) => "products",
            catalogue::Item::PerformanceRef(_) => "product performances",
        },
        Record::Contingent(l) => match l {
            contingent::Line::Performance { .. } => "performances",
            contingent::Line::Seat { .. } => "seats",
            contingent::Line::Zone { .. } => "zones",
        },
        Record::Sales(l) => match l {
            sales::Line::Ticket(t) if t.operation == sales::Operation::Sale => "sales",
            sales::Line::Ticket(_) => "refunds",
            sales::Line::Ack(_) => "acknowledgements",
        },
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
        tracing::warn!(
            file = %inbound::claim::display_name(path),
            folder = %path.parent().map(|d| d.display().to_string()).unwrap_or_default(),
            problem,
            "entry ignored: not a manifest name; it is never taken, rename or remove it"
        );
    }
}

/// An export that a crash (or a failed placement) left committed but not
/// placed, finished by [`finish_exports`].
#[derive(Debug)]
pub struct Finished {
    pub link: String,
    pub kind: Kind,
    pub sequences: Vec<u64>,
}

/// Places every committed but unplaced export of every link side this config
/// serves, from its recorded content ([`outbound::export::finish_prepared`]):
/// the daemon calls it at each listing, so a one-shot export killed after
/// its commit reaches the peer without waiting for the next export. Each
/// failure is returned with its side; the others go on.
pub fn finish_exports(config: &Config) -> Vec<Result<Finished, anyhow::Error>> {
    let mut out = Vec::new();
    for (link, inst, side) in config.served(None) {
        let kinds: Vec<Kind> = Kind::ALL
            .into_iter()
            .filter(|k| k.sender() == side)
            .collect();
        let mut store = match open_store(config, inst) {
            Ok(s) => s,
            Err(e) => {
                out.push(Err(e.context(format!("link {} ({side})", link.name))));
                continue;
            }
        };
        for kind in kinds {
            match outbound::export::finish_prepared(&mut store, link, kind) {
                Ok(sequences) if sequences.is_empty() => {}
                Ok(sequences) => out.push(Ok(Finished {
                    link: link.name.clone(),
                    kind,
                    sequences,
                })),
                Err(e) => out.push(Err(anyhow::anyhow!(
                    "{kind} export of link {}: {e}",
                    link.name
                ))),
            }
        }
    }
    out
}

/// One file handled by [`process_files`].
#[derive(Debug)]
pub struct Handled {
    pub institution: String,
    pub file: PathBuf,
    pub processed: Result<inbound::Processed, InboundError>,
}

/// Processes Fichier SecuTix files through the inbound stages. Each file is
/// given to the institution of this config that receives it on the link its
/// manifest names.
pub fn process_files(config: &Config, files: &[PathBuf]) -> anyhow::Result<Vec<Handled>> {
    process_files_until(config, files, &|| false)
}

/// [`process_files`], stopping between two files once `stop` says so (a
/// daemon shutting down): the files not reached stay where they are.
pub fn process_files_until(
    config: &Config,
    files: &[PathBuf],
    stop: &dyn Fn() -> bool,
) -> anyhow::Result<Vec<Handled>> {
    let limits = Limits::default();
    let mut handled = Vec::new();
    for file in files {
        if stop() {
            break;
        }
        let manifest = manifest_path_of(file);
        let name = inbound::claim::display_name(&manifest);
        let FileName {
            link: link_name,
            kind,
            ..
        } = FileName::parse_manifest(&name)
            .map_err(|problem| anyhow::anyhow!("{}: {problem}", manifest.display()))?;
        let link = config
            .link(&link_name)
            .with_context(|| format!("{name}: link {link_name:?} is not in the config"))?;
        let side = kind.sender().peer();
        let (link, inst, mut store) = open_side(config, &link.name, side)?;
        let secret = link_secret(link).with_context(|| format!("link {}", link.name))?;
        let processed = inbound::process(&mut store, link, side, &secret, &manifest, &limits);
        handled.push(Handled {
            institution: inst.code.to_string(),
            file: manifest,
            processed,
        });
    }
    Ok(handled)
}

/// The inboxes (or, for `resume`, the parked folders) of every side of
/// `link` (or of every link) served by this config.
pub fn folders_to_scan(
    config: &Config,
    link: Option<&str>,
    pick: impl Fn(&config::Folders) -> PathBuf,
) -> anyhow::Result<Vec<PathBuf>> {
    if let Some(name) = link {
        config.require_link(name).map_err(anyhow::Error::msg)?;
    }
    Ok(config
        .served(link)
        .map(|(l, _, side)| pick(&l.folders(side)))
        .collect())
}

/// Every complete file waiting in the scanned folders, in apply order.
pub fn scan(dirs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for dir in dirs {
        files.extend(waiting_files(dir).with_context(|| format!("cannot list {}", dir.display()))?);
    }
    Ok(files)
}

/// Retries the parked files of `link` (or of every link), in sequence
/// order: called by `stxd resume` and after mappings are filled.
pub fn resume(config: &Config, link: Option<&str>) -> anyhow::Result<Vec<Handled>> {
    let dirs = folders_to_scan(config, link, |f| f.parked.clone())?;
    process_files(config, &scan(&dirs)?)
}

/// The SFTP shares of a process, one per link side, kept across polls so a
/// daemon reuses each session and its backoff (a one-shot command uses a
/// fresh one).
#[derive(Default)]
pub struct Shares {
    shares: std::collections::HashMap<(String, Role), transport::sftp::Share>,
}

impl std::fmt::Debug for Shares {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.shares.keys()).finish()
    }
}

impl Shares {
    /// The share of `link`'s `side`, if a poll created it.
    pub fn get(&self, link: &str, side: Role) -> Option<&transport::sftp::Share> {
        self.shares.get(&(link.to_owned(), side))
    }

    /// Forgets the shares of links no longer in the config (after a reload).
    pub fn retain_links(&mut self, config: &Config) {
        self.shares
            .retain(|(link, _), _| config.link(link).is_some());
    }
}

/// What one poll did for one side of a link.
#[derive(Debug)]
pub enum Synced {
    /// Pushed and pulled (the pulled pairs wait in the inbox).
    Moved(transport::sftp::Moved),
    /// Not attempted: an earlier failure's backoff runs until then.
    Deferred(std::time::Duration),
    Failed(transport::sftp::SftpError),
}

/// One side of a link in a [`PollReport`].
#[derive(Debug)]
pub struct SidePoll {
    pub institution: String,
    pub side: Role,
    pub synced: Synced,
}

/// What [`poll`] did on a link: one entry per side this config serves with
/// an SFTP transport (none for a local transport).
#[derive(Debug)]
pub struct PollReport {
    pub link: String,
    pub sides: Vec<SidePoll>,
}

impl PollReport {
    /// Whether a side failed (deferred sides count: their last try failed).
    pub fn failed(&self) -> bool {
        self.sides
            .iter()
            .any(|s| !matches!(s.synced, Synced::Moved(_)))
    }
}

/// Syncs `link`'s SFTP share once with fresh sessions: see [`poll_with`].
pub fn poll(config: &Config, link: &str) -> anyhow::Result<PollReport> {
    poll_with(
        config,
        link,
        &mut Shares::default(),
        std::time::Instant::now(),
    )
}

/// Syncs `link`'s SFTP share for each side of it this config serves: pushes
/// the complete pairs of the side's outbox (then moves them to
/// `outbox/sent/`), then pulls the pairs the side receives into its inbox,
/// where [`process_files`] takes them. Sessions and backoff live in
/// `shares`; a side whose backoff runs past `now` is deferred. A local
/// transport has nothing to sync. Blocking (network I/O).
pub fn poll_with(
    config: &Config,
    link: &str,
    shares: &mut Shares,
    now: std::time::Instant,
) -> anyhow::Result<PollReport> {
    use transport::sftp::{Endpoint, Job, Pair, Share};
    let link = config.require_link(link).map_err(anyhow::Error::msg)?;
    let mut report = PollReport {
        link: link.name.clone(),
        sides: Vec::new(),
    };
    let Some(endpoint) = Endpoint::of(link) else {
        return Ok(report);
    };
    let limits = Limits::default();
    for (_, inst, side) in config.served(Some(&link.name)) {
        let peer = side.peer();
        let share = shares
            .shares
            .entry((link.name.clone(), side))
            .or_insert_with(|| Share::new(endpoint.clone()));
        share.update(&endpoint);
        let mut record = |synced| {
            report.sides.push(SidePoll {
                institution: inst.code.to_string(),
                side,
                synced,
            })
        };
        if let Some(at) = share.retry_at().filter(|_| !share.due(now)) {
            record(Synced::Deferred(at.saturating_duration_since(now)));
            continue;
        }
        let folders = link.folders(side);
        let outgoing: Vec<Pair> = waiting_files(&folders.outbox)
            .with_context(|| format!("cannot list {}", folders.outbox.display()))?
            .into_iter()
            .filter_map(|manifest| {
                let name = manifest.file_name()?.to_str()?.to_owned();
                let n = FileName::parse_manifest(&name).ok()?;
                (n.link == link.name && n.kind.sender() == side).then(|| Pair {
                    payload: n.to_payload().to_string(),
                    manifest: name,
                })
            })
            .collect();
        let accept = |name: &str| {
            let n = FileName::parse_manifest(name).ok()?;
            (n.link == link.name && n.kind.sender() == peer).then(|| n.to_payload().to_string())
        };
        let received = |name: &str, manifest: &[u8]| received(config, link, inst, name, manifest);
        let (remote_out, remote_in) = (format!("to-{peer}"), format!("to-{side}"));
        let job = Job {
            outbox: &folders.outbox,
            outgoing: &outgoing,
            remote_out: &remote_out,
            remote_in: &remote_in,
            inbox: &folders.inbox,
            accept: &accept,
            max_bytes: limits.max_file_bytes,
            received: &received,
        };
        let synced = match share.sync(&job, now, jitter()) {
            Ok(moved) => Synced::Moved(moved),
            Err(e) => {
                if e.is_permanent() {
                    tracing::error!(link = %link.name, error = %e, "sftp poll failed: a person must act");
                } else {
                    tracing::warn!(link = %link.name, error = %e, retry_in_seconds = share.retry_at().map_or(0, |at| at.saturating_duration_since(now).as_secs()), "sftp poll failed; retried later");
                }
                Synced::Failed(e)
            }
        };
        record(synced);
    }
    Ok(report)
}

/// Whether `inst` (the receiving side of `link`) journaled the file of the
/// manifest `name` (its bytes, as found on a share without its payload):
/// the manifest authenticates with the link's secret, names this link and
/// a kind `inst` receives, and the journal holds that sequence inbound with
/// the same payload digest, in any state (applied, ignored, parked or
/// rejected: this very file was taken, and its copy is in `done/`,
/// `parked/` or `error/`). Read-only; `false` when anything is missing.
fn received(config: &Config, link: &Link, inst: &Institution, name: &str, manifest: &[u8]) -> bool {
    use crate::store::journal::{self, Direction};
    let Ok(secret) = config::read_secret(&link.secret_file) else {
        return false;
    };
    let Ok(m) = envelope::authenticate(manifest, name, &secret) else {
        return false;
    };
    if m.link != link.name
        || m.manifest_name() != name
        || link.side_code(m.kind.sender().peer()) != inst.code.as_str()
    {
        return false;
    }
    let path = config.store_path(&inst.code);
    if !path.exists() {
        return false;
    }
    let found = crate::store::open_read_only(&path)
        .and_then(|conn| journal::lookup(&conn, &link.name, m.kind, Direction::In, m.sequence));
    match found {
        Ok(entry) => entry.is_some_and(|e| e.sha256 == hex::encode(m.sha256)),
        Err(e) => {
            tracing::warn!(link = %link.name, file = %name, error = %e, "cannot read the journal to tell whether a manifest left on the share was received; it stays there");
            false
        }
    }
}

/// A random fraction in 0..1 for backoff jitter (0.5 if no randomness).
fn jitter() -> f64 {
    let mut bytes = [0u8; 4];
    match getrandom::fill(&mut bytes) {
        Ok(()) => f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX),
        Err(_) => 0.5,
    }
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

/// The next fire of every `[[schedule]]` line (for `stxd status`),
/// earliest first.
pub fn next_runs(config: &Config, now: time::OffsetDateTime) -> Vec<crate::schedule::NextRun> {
    crate::schedule::next_runs(&config.schedules, now)
}

/// What [`run_job`] did.
#[derive(Debug)]
pub enum JobDone {
    /// An export wrote its file (boxed: the manifest is large).
    Exported(Box<crate::outbound::export::Exported>),
    /// An export was refused (nothing to sell, setup, a store error): no
    /// sequence used; the run, when logged, says why.
    Refused(crate::outbound::export::ExportError),
    /// A poll or an apply window: the files handled, and (for a poll) the
    /// share's sync and the files left waiting for their apply window.
    Files {
        /// What a poll moved to and from an SFTP share (`None` for an apply
        /// window; no sides for a local transport).
        polled: Option<PollReport>,
        handled: Vec<Handled>,
        held: Vec<WindowHeld>,
    },
}

/// Runs one job on a link now: the code path of `stxd trigger --now`, of
/// trigger files and of schedules alike.
///
/// - `export-<kind>`: the link's next file of that kind, as `stxd export`;
///   a contingent export covers the performances whose allotment changed
///   since its last export (`nothing-to-send` when none did).
/// - `poll`: syncs an SFTP share ([`poll_with`], sessions kept in
///   `shares`), then lists the link's inboxes and processes the complete
///   files, holding those of a kind with an apply window.
/// - `apply-<kind>`: processes the link's parked and waiting files of that
///   kind, in sequence order, window or not.
pub fn run_job(
    config: &Config,
    link_name: &str,
    job: crate::schedule::Job,
    now: time::OffsetDateTime,
    shares: &mut Shares,
    stop: &dyn Fn() -> bool,
) -> anyhow::Result<JobDone> {
    use crate::schedule::Job;
    let link = config.require_link(link_name).map_err(anyhow::Error::msg)?;
    match job {
        Job::Export(kind) => {
            let (link, _, mut store) = open_side(config, &link.name, kind.sender())?;
            let secret = link_secret(link).with_context(|| format!("link {}", link.name))?;
            // A job sends only the contingents that changed: a schedule
            // never repeats a snapshot the distributor already has.
            let result = match kind {
                Kind::Contingent => crate::outbound::export::export_with(
                    &mut store,
                    link,
                    &crate::outbound::contingent::ContingentPayload::changed(),
                    &secret,
                    now,
                ),
                _ => crate::outbound::export(&mut store, link, kind, &secret, now),
            };
            Ok(match result {
                Ok(done) => JobDone::Exported(Box::new(done)),
                Err(e) => JobDone::Refused(e),
            })
        }
        Job::Poll => {
            let polled = poll_with(config, &link.name, shares, std::time::Instant::now())?;
            let dirs = folders_to_scan(config, Some(&link.name), |f| f.inbox.clone())?;
            let (ready, held) = split_by_window(config, scan(&dirs)?, now);
            Ok(JobDone::Files {
                polled: Some(polled),
                handled: process_files_until(config, &ready, stop)?,
                held,
            })
        }
        Job::Apply(kind) => {
            if let Some(side) = job.side()
                && config.institution(link.side_code(side)).is_none()
            {
                anyhow::bail!(
                    "{job} applies files on the {side}'s side of link {}, which this config does not serve",
                    link.name
                );
            }
            let mut dirs = folders_to_scan(config, Some(&link.name), |f| f.parked.clone())?;
            dirs.extend(folders_to_scan(config, Some(&link.name), |f| {
                f.inbox.clone()
            })?);
            let mut files: Vec<(u64, PathBuf)> = scan(&dirs)?
                .into_iter()
                .filter_map(|file| {
                    let name = inbound::claim::display_name(&file);
                    match FileName::parse_manifest(&name) {
                        Ok(n) if n.kind == kind => Some((n.sequence, file)),
                        _ => None,
                    }
                })
                .collect();
            files.sort();
            let files: Vec<PathBuf> = files.into_iter().map(|(_, f)| f).collect();
            Ok(JobDone::Files {
                polled: None,
                handled: process_files_until(config, &files, stop)?,
                held: Vec::new(),
            })
        }
    }
}

/// The sequence of `kind` a receiver on `link` waits for next (the last
/// applied + 1), read from its store: for gap alerts.
pub fn expected_sequence(config: &Config, link: &str, kind: Kind) -> anyhow::Result<u64> {
    let side = kind.sender().peer();
    let (_, _, store) = open_side(config, link, side)?;
    Ok(store.read(|conn| crate::store::journal::next_in(conn, link, kind))?)
}

/// Whether [`write_trigger`] created the file or found it already waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerWritten {
    Created,
    AlreadyWaiting,
}

/// Drops the trigger file of `job` in `link`'s control folder (creating the
/// folder, mode 0700): an empty file created new (never replacing one),
/// synced, and its folder synced. Checks first that the job can run here.
pub fn write_trigger(
    config: &Config,
    link: &str,
    job: crate::schedule::Job,
) -> anyhow::Result<(PathBuf, TriggerWritten)> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let l = config.require_link(link).map_err(anyhow::Error::msg)?;
    if let Some(side) = job.side() {
        let code = l.side_code(side);
        if config.institution(code).is_none() {
            anyhow::bail!(
                "{job} runs on the {side}'s side of link {link}, but the {side} {code} is not served by this config: trigger it on the {side}'s server"
            );
        }
    }
    let dir = config.control_dir(link);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("cannot create the control folder {}", dir.display()))?;
    let path = dir.join(job.name());
    let written = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&path)
    {
        Ok(file) => {
            file.sync_all()
                .with_context(|| format!("cannot sync {}", path.display()))?;
            TriggerWritten::Created
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => TriggerWritten::AlreadyWaiting,
        Err(e) => {
            return Err(e).with_context(|| format!("cannot create the trigger {}", path.display()));
        }
    };
    transport::local::sync_dir(&dir).with_context(|| format!("cannot sync {}", dir.display()))?;
    Ok((path, written))
}
