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

/// Opens an institution's store, creating it (and loading the config's
/// `load` files into it, all or nothing) when it does not exist yet.
pub fn open_store(config: &Config, inst: &Institution) -> Result<Store, AppError> {
    create_private_dir(&config.state_dir)?;
    let path = config.store_path(&inst.code);
    let is_new = !path.exists();
    let mut store = Store::open(&path, inst.code.as_str(), inst.role).map_err(|source| {
        AppError::OpenStore {
            institution: inst.code.to_string(),
            source: Box::new(source),
        }
    })?;
    if is_new && !inst.load.is_empty() {
        if let Err(source) = load(&mut store, &inst.load) {
            drop(store);
            remove_store_files(&path);
            return Err(AppError::Bootstrap {
                institution: inst.code.to_string(),
                source: Box::new(source),
            });
        }
        info!(institution = %inst.code, files = inst.load.len(), "store created and master data loaded");
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
