//! Secret and token files: read only when private, generated when allowed.
//!
//! A link's secret and an SFTP password ([`read_secret`]) or an alert's
//! bearer token ([`read_token`]) come from files only their owner can read;
//! [`generate_secret`] creates a link's secret when its config allows it.

use std::path::{Path, PathBuf};

use crate::format::envelope::Secret;

/// Why a secret file was refused.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error(
        "secret file {0} is missing: write the link's shared secret (the virtual operator's password) there, readable by stxd's user only (chmod 600)"
    )]
    Missing(PathBuf),
    #[error("cannot read secret file {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("secret file {path} is readable by others (mode {mode:o}): run chmod 600 {path}")]
    Permissions { path: PathBuf, mode: u32 },
    #[error("secret file {0} is not a regular file")]
    NotRegular(PathBuf),
    #[error("secret in {0} is shorter than {min} bytes: use a long random value (e.g. head -c 32 /dev/urandom | base64)", min = Secret::MIN_LEN)]
    TooShort(PathBuf),
    #[error("token file {0}: {1}")]
    BadToken(PathBuf, &'static str),
}

/// Reads a secret (a link's shared secret, an SFTP password) from a file that
/// only its owner can read. A single trailing line break is not part of it.
pub fn read_secret(path: &Path) -> Result<Secret, SecretError> {
    read_secret_bytes(path).map(Secret::new)
}

/// Reads a bearer token (an `[[alert]]`'s `webhook_token_file`) from a file
/// that only its owner can read: printable ASCII without spaces, as an HTTP
/// header carries it. A single trailing line break is not part of it.
pub fn read_token(path: &Path) -> Result<String, SecretError> {
    let bytes = read_private(path)?;
    if bytes.is_empty() {
        return Err(SecretError::BadToken(path.to_owned(), "the file is empty"));
    }
    if !bytes.iter().all(|b| b.is_ascii_graphic()) {
        return Err(SecretError::BadToken(
            path.to_owned(),
            "expected printable ASCII without spaces or line breaks",
        ));
    }
    String::from_utf8(bytes)
        .map_err(|_| SecretError::BadToken(path.to_owned(), "expected printable ASCII"))
}

/// The bytes of a regular file that neither its group nor others can read,
/// without one trailing line break.
fn read_private(path: &Path) -> Result<Vec<u8>, SecretError> {
    use std::os::unix::fs::MetadataExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SecretError::Missing(path.to_owned()));
        }
        Err(e) => return Err(SecretError::Io(path.to_owned(), e)),
    };
    if !meta.file_type().is_file() {
        return Err(SecretError::NotRegular(path.to_owned()));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SecretError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    let mut bytes = std::fs::read(path).map_err(|e| SecretError::Io(path.to_owned(), e))?;
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    Ok(bytes)
}

/// Creates a random secret file (32 random bytes, hex, mode exactly 0600
/// whatever the umask, never overwriting): for a link whose config allows
/// it (`stxd init`), or by hand (`stxd secret new`). Missing parent folders
/// are created private (0700). Returns `false` when the file already
/// existed (a dangling symlink counts), leaving it untouched.
pub fn generate_secret(path: &Path) -> std::io::Result<bool> {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(std::io::Error::other)?;
    write_secret(path, hex::encode(raw).as_bytes())
}

/// Writes `secret` (and a line break) to a new file `path`, mode 0600,
/// never replacing one: the folder is created if missing. Returns `false`
/// when the file already existed (it is left as it was).
pub fn write_secret(path: &Path, secret: &[u8]) -> std::io::Result<bool> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
    }
    if std::fs::symlink_metadata(path).is_ok() {
        return Ok(false);
    }
    // Written whole under a temporary name, synced, then given its final
    // name (never replacing one) and the folder synced: a crash leaves the
    // secret complete or absent, never short.
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidInput, "no file name"))?;
    let tmp = dir.join(format!(".{}.part", name.to_string_lossy()));
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    // Exactly 0600: the umask may have taken bits from `mode` above.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(secret)?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    drop(file);
    let placed = match std::fs::hard_link(&tmp, path) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(e) => return Err(e),
    };
    std::fs::remove_file(&tmp)?;
    std::fs::File::open(&dir)?.sync_all()?;
    Ok(placed)
}

/// The bytes of a secret file, checked as [`read_secret`] checks them
/// (private, long enough), to copy them elsewhere.
pub(super) fn read_secret_bytes(path: &Path) -> Result<Vec<u8>, SecretError> {
    let bytes = read_private(path)?;
    if bytes.len() < Secret::MIN_LEN {
        return Err(SecretError::TooShort(path.to_owned()));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        assert!(matches!(read_secret(&path), Err(SecretError::Missing(_))));
        assert!(generate_secret(&path).unwrap());
        assert!(!generate_secret(&path).unwrap(), "never overwrites");
        let s = read_secret(&path).unwrap();
        assert_eq!(s.len(), 64);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            read_secret(&path),
            Err(SecretError::Permissions { .. })
        ));
        std::fs::write(dir.path().join("short"), "abc\n").unwrap();
        std::fs::set_permissions(
            dir.path().join("short"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        assert!(matches!(
            read_secret(&dir.path().join("short")),
            Err(SecretError::TooShort(_))
        ));
    }
}
