//! `stxd init`: creates what a config names and is missing (the state
//! folder, each institution's store, the exchange folders of each side it
//! serves, on request the secrets of same-slot links, and the console's
//! token when `[http]` is set) and says what it
//! created. `stxd run` does the same at start; `stxd check` only reads.

use std::fmt;
use std::path::{Path, PathBuf};

use super::{AppError, open_store};
use crate::config::{self, Config, Link, Transport};

/// One thing [`init`] created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// An institution's store, migrated, with its `load` files loaded.
    Store {
        institution: String,
        path: PathBuf,
        loaded: usize,
    },
    /// An exchange folder, with its mode.
    Folder { path: PathBuf, mode: u32 },
    /// A same-slot link's shared secret, mode 600.
    Secret { link: String, path: PathBuf },
    /// The console's bearer token (`[http] token_file`), mode 600.
    HttpToken { path: PathBuf },
}

impl fmt::Display for Created {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Created::Store {
                institution,
                path,
                loaded,
            } => write!(
                f,
                "store of {institution}: {} ({loaded} load file(s) loaded)",
                path.display()
            ),
            Created::Folder { path, mode } => {
                write!(f, "folder {} (mode {mode:o})", path.display())
            }
            Created::Secret { link, path } => {
                write!(f, "secret of link {link}: {} (mode 600)", path.display())
            }
            Created::HttpToken { path } => {
                write!(f, "console token: {} (mode 600)", path.display())
            }
        }
    }
}

/// The mode of a local link's exchange folders: the peer's account, a
/// member of the folder's group, writes, reads and deletes there; new
/// entries keep the group (setgid).
pub const SHARED_FOLDER_MODE: u32 = 0o2770;

/// The mode of the folders only stxd uses (an SFTP link's local side).
pub const PRIVATE_FOLDER_MODE: u32 = 0o700;

/// Creates every store, exchange folder and (with `generate_secrets`, or
/// where a link's `generate_secret` says so) same-slot secret the config
/// names and that is missing. Never changes what exists. A secret is only
/// generated for a link whose two sides this config serves: a link with
/// another server shares the peer's password, which stxd cannot invent.
pub fn init(config: &Config, generate_secrets: bool) -> Result<Vec<Created>, AppError> {
    let mut created = Vec::new();
    for inst in &config.institutions {
        let path = config.store_path(&inst.code);
        if path.exists() {
            continue;
        }
        drop(open_store(config, inst)?);
        created.push(Created::Store {
            institution: inst.code.to_string(),
            path,
            loaded: inst.load.len(),
        });
    }
    for (link, _, side) in config.served(None) {
        let folders = link.folders(side);
        let mode = folder_mode(link);
        for dir in [
            &folders.inbox,
            &folders.outbox,
            &folders.done,
            &folders.error,
            &folders.parked,
            &folders.quarantine,
        ] {
            if let Some(path) = make_folder(dir, mode)? {
                created.push(Created::Folder { path, mode });
            }
        }
    }
    for link in &config.links {
        if let Some(c) = secret(config, link, generate_secrets)? {
            created.push(c);
        }
    }
    // The console's token: a random one, as for a same-slot secret.
    if let Some(http) = &config.http {
        let made = config::generate_secret(&http.token_file).map_err(|e| AppError::HttpToken {
            source: config::SecretError::Io(http.token_file.clone(), e),
        })?;
        if made {
            created.push(Created::HttpToken {
                path: http.token_file.clone(),
            });
        }
    }
    Ok(created)
}

fn folder_mode(link: &Link) -> u32 {
    match link.transport {
        Transport::Local { .. } => SHARED_FOLDER_MODE,
        Transport::Sftp { .. } => PRIVATE_FOLDER_MODE,
    }
}

/// Creates `dir` and its missing parents with `mode` (exactly: the umask
/// does not apply); `None` when it existed. Each folder is made under a
/// temporary name beside it, given its mode, then renamed into place: a
/// kill at any instant leaves either no folder or one with its mode, never
/// one with the umask's mode that a later `init` would take as done. A
/// temporary folder a kill left is removed and made again.
fn make_folder(dir: &Path, mode: u32) -> Result<Option<PathBuf>, AppError> {
    use std::os::unix::fs::PermissionsExt;
    if dir.exists() {
        return Ok(None);
    }
    let err = |source| AppError::CreateDir {
        dir: dir.to_owned(),
        source,
    };
    if let Some(parent) = dir.parent()
        && !parent.as_os_str().is_empty()
        && !parent.exists()
    {
        make_folder(parent, mode)?;
    }
    let name = dir
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let temp = dir.with_file_name(format!(".{name}.init"));
    match std::fs::remove_dir(&temp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(err(e)),
        _ => {}
    }
    std::fs::create_dir(&temp).map_err(err)?;
    std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(mode)).map_err(err)?;
    match crate::transport::local::rename_new(&temp, dir).map_err(err)? {
        crate::transport::local::Placed::Linked => Ok(Some(dir.to_owned())),
        // Made meanwhile by someone else: theirs stands.
        _ => {
            let _ = std::fs::remove_dir(&temp);
            Ok(None)
        }
    }
}

fn secret(config: &Config, link: &Link, asked: bool) -> Result<Option<Created>, AppError> {
    let same_slot = config.institution(link.manager.as_str()).is_some()
        && config.institution(link.distributor.as_str()).is_some();
    if !(link.generate_secret || asked && same_slot) {
        return Ok(None);
    }
    let made = config::generate_secret(&link.secret_file).map_err(|e| AppError::Secret {
        link: link.name.clone(),
        source: config::SecretError::Io(link.secret_file.clone(), e),
    })?;
    Ok(made.then(|| Created::Secret {
        link: link.name.clone(),
        path: link.secret_file.clone(),
    }))
}
