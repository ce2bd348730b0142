//! The stores and secrets a config names: an institution's store opened
//! (created, and bootstrapped from its `load` files, on first use), the
//! store of the side of a link a command acts for, and a link's shared
//! secret (generated on first use when the config allows it).

use std::path::{Path, PathBuf};

use super::AppError;
use super::load::load;
use crate::config::{self, Config, Institution, Link};
use crate::format::envelope::Secret;
use crate::store::{Role, Store};
use crate::transport::local::{self, Placed};

/// Opens an institution's store, creating it (and loading the config's
/// `load` files into it, all or nothing) when it does not exist yet.
///
/// A new store is built whole under a temporary name beside its final one
/// (migrated, its `load` files loaded, its log checkpointed into the file),
/// then renamed into place without replacing anything: a crash at any
/// instant leaves either no store (the next start builds it again and
/// removes the leftover) or a complete one, never a store without its
/// master data that the next start would take as made.
pub fn open_store(config: &Config, inst: &Institution) -> Result<Store, AppError> {
    create_private_dir(&config.state_dir)?;
    let path = config.store_path(&inst.code);
    if !path.exists() {
        create_store(&path, inst)?;
    }
    Store::open(&path, inst.code.as_str(), inst.role).map_err(|source| AppError::OpenStore {
        institution: inst.code.to_string(),
        source: Box::new(source),
    })
}

/// Opens every store of the config (creating a missing one), which brings
/// each to this version's schema; returns why any could not be. The daemon
/// does so at its start, while systemd gives the start more time: a
/// migration that rewrites a large table then runs there, not in the first
/// listing that happens to open that store, nor in a command run beside the
/// daemon. A store that cannot be opened now (another process holding it
/// through a pending migration, a file that is not a store) stops nothing
/// else: its files wait, as they would at any listing.
pub fn open_every_store(config: &Config) -> Vec<AppError> {
    config
        .institutions
        .iter()
        .filter_map(|inst| open_store(config, inst).err())
        .collect()
}

/// Builds `path`'s store under `.<name>.creating.<pid>` and renames it into
/// place (see [`open_store`]). Another process that placed the store first
/// wins: this one's copy is dropped.
fn create_store(path: &Path, inst: &Institution) -> Result<(), AppError> {
    let open_err = |source| AppError::OpenStore {
        institution: inst.code.to_string(),
        source: Box::new(source),
    };
    let io_err = |source: std::io::Error| AppError::CreateDir {
        dir: path.to_owned(),
        source,
    };
    remove_dead_builds(path);
    let temp = build_name(path, std::process::id());
    remove_store_files(&temp);
    let mut store = Store::open(&temp, inst.code.as_str(), inst.role).map_err(open_err)?;
    if !inst.load.is_empty() {
        if let Err(source) = load(&mut store, &inst.load) {
            drop(store);
            remove_store_files(&temp);
            return Err(AppError::Bootstrap {
                institution: inst.code.to_string(),
                source: Box::new(source),
            });
        }
        info!(institution = %inst.code, files = inst.load.len(), "store created and master data loaded");
    }
    if let Err(e) = store.close() {
        remove_store_files(&temp);
        return Err(open_err(e));
    }
    let placed = local::rename_new(&temp, path).map_err(io_err)?;
    if placed != Placed::Linked {
        // Another stxd placed the store meanwhile: it is the store.
        remove_store_files(&temp);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    local::sync_dir(dir).map_err(io_err)
}

/// The temporary name under which process `pid` builds `path`'s store:
/// `.<name>.creating.<pid>`.
fn build_name(path: &Path, pid: u32) -> PathBuf {
    path.with_file_name(format!("{}{pid}", build_prefix(path)))
}

fn build_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map_or_else(|| "store".into(), |n| n.to_string_lossy());
    format!(".{name}.creating.")
}

/// Removes the builds of `path`'s store left by processes that died
/// (killed while building): those whose pid no longer runs.
fn remove_dead_builds(path: &Path) {
    let (Some(dir), prefix) = (path.parent(), build_prefix(path)) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        // `<prefix><pid>`, and its `-wal`, `-shm` and `-journal`.
        let Some(pid) = name
            .strip_prefix(&prefix)
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            remove_store_files(&build_name(path, pid));
        }
    }
}

fn remove_store_files(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

fn create_private_dir(dir: &Path) -> Result<(), AppError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| AppError::CreateDir {
            dir: dir.to_owned(),
            source,
        })
}

/// The institution of this config playing `side` on `link`, with its store
/// open. Errors say what is missing from the config.
pub fn open_side<'c>(
    config: &'c Config,
    link: &str,
    side: Role,
) -> Result<(&'c Link, &'c Institution, Store), AppError> {
    let link = config.require_link(link).map_err(AppError::UnknownLink)?;
    let code = match side {
        Role::Manager => &link.manager,
        Role::Distributor => &link.distributor,
    };
    let Some(inst) = config.institution(code.as_str()) else {
        return Err(AppError::SideNotServed {
            link: link.name.clone(),
            side,
            code: code.to_string(),
        });
    };
    let store = open_store(config, inst)?;
    Ok((link, inst, store))
}

/// The secret of a link: generated first when the config allows it and it is
/// missing. It signs with the link's current secret and, during a secret
/// rotation, also accepts the staged and the previous one (until its
/// overlap ends), as [`config::rotation::link_keys`] reads them now.
pub fn link_secret(link: &Link) -> Result<Secret, config::SecretError> {
    if link.generate_secret {
        match config::generate_secret(&link.secret_file) {
            Ok(true) => {
                info!(link = %link.name, file = %link.secret_file.display(), "shared secret generated")
            }
            Ok(false) => {}
            Err(e) => return Err(config::SecretError::Io(link.secret_file.clone(), e)),
        }
    }
    config::rotation::link_keys(link, time::OffsetDateTime::now_utc()).map(|keys| keys.secret)
}

/// [`link_secret`], its error naming the link: for the flows that need the
/// secret to go on.
pub(super) fn require_secret(link: &Link) -> Result<Secret, AppError> {
    link_secret(link).map_err(|source| AppError::Secret {
        link: link.name.clone(),
        source,
    })
}
