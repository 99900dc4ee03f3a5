//! Filesystem primitives for secret-bearing files.
//!
//! Invariants:
//! - [`atomic_write`] never leaves a half-written file: it writes a temporary file in the same
//!   directory, fsyncs it, renames it over the target and fsyncs the directory. A crash leaves
//!   either the old content or the new content (plus, at worst, a stray `.tmp-*` file).
//! - Directories created by [`ensure_private_dir`] are mode 0700; secret files are 0600.
//! - [`check_private`] refuses a secret file (or its directory) that group or others can access,
//!   as ssh does for private keys.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// Mode of private directories.
pub const DIR_MODE: u32 = 0o700;
/// Mode of secret files.
pub const SECRET_FILE_MODE: u32 = 0o600;
/// Mode of public files (public keys, metadata).
pub const PUBLIC_FILE_MODE: u32 = 0o644;

/// Creates `dir` and its missing parents with mode 0700. Existing directories are left as they are.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(DIR_MODE);
    }
    builder
        .create(dir)
        .map_err(|e| Error::io("cannot create directory", dir, e))
}

/// Atomically replaces `path` with `bytes`, with the given unix mode.
pub fn atomic_write(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = parent_of(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(permissions(mode))
        .tempfile_in(&dir)
        .map_err(|e| Error::io("cannot create temporary file in", &dir, e))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| Error::io("cannot write", tmp.path().to_path_buf(), e))?;
    tmp.persist(path)
        .map_err(|e| Error::io("cannot replace", path, e.error))?;
    sync_dir(&dir)
}

/// Writes `bytes` to a new file at `path` with the given mode, fsyncs it; fails if it exists.
/// Used inside a staging directory that is renamed into place as a whole.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts
        .open(path)
        .map_err(|e| Error::io("cannot create", path, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::io("cannot write", path, e))
}

/// fsyncs a directory so that renames and creations inside it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("cannot sync directory", dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Fails with [`Error::InsecurePermissions`] if `path` (a secret file) or its directory is
/// accessible by group or others.
pub fn check_private(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = parent_of(path);
        for (p, wanted) in [(path, SECRET_FILE_MODE), (dir.as_path(), DIR_MODE)] {
            let md = fs::metadata(p).map_err(|e| Error::io("cannot read", p, e))?;
            let mode = md.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                return Err(Error::InsecurePermissions {
                    path: p.to_path_buf(),
                    mode,
                    wanted,
                });
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Reads a whole file as UTF-8, refusing files over `max` bytes (input files are small; a huge
/// one is a mistake or an attack).
pub fn read_text(path: &Path, max: u64) -> Result<String> {
    let md = fs::metadata(path).map_err(|e| Error::io("cannot read", path, e))?;
    if md.len() > max {
        return Err(Error::invalid(
            "file",
            format!(
                "{} is {} bytes, more than the {max} allowed",
                path.display(),
                md.len()
            ),
        ));
    }
    let bytes = fs::read(path).map_err(|e| Error::io("cannot read", path, e))?;
    String::from_utf8(bytes)
        .map_err(|_| Error::invalid("file", format!("{} is not UTF-8 text", path.display())))
}

/// An exclusive advisory lock on a lock file, released on drop. Serialises state-changing
/// operations of concurrent `opena2a` processes on one data root.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Blocks until the lock at `path` is held.
    pub fn acquire(path: &Path) -> Result<Self> {
        ensure_private_dir(&parent_of(path))?;
        let mut opts = OpenOptions::new();
        opts.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(SECRET_FILE_MODE);
        }
        let file = opts
            .open(path)
            .map_err(|e| Error::io("cannot open lock file", path, e))?;
        file.lock().map_err(|e| Error::io("cannot lock", path, e))?;
        Ok(DirLock { _file: file })
    }
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(unix)]
fn permissions(mode: u32) -> fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    fs::Permissions::from_mode(mode)
}

#[cfg(not(unix))]
fn permissions(_mode: u32) -> fs::Permissions {
    fs::metadata(".")
        .map(|m| m.permissions())
        .unwrap_or_else(|_| unreachable!())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn atomic_write_replaces_whole_file_with_mode() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        atomic_write(&p, b"one", 0o600).unwrap();
        atomic_write(&p, b"two-longer", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two-longer");
        assert_eq!(mode(&p), 0o600);
        // no temp files left behind
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn private_dir_is_0700_and_checks_reject_loose_modes() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("a/b");
        ensure_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let f = dir.join("secret");
        write_new(&f, b"x", 0o600).unwrap();
        check_private(&f).unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            check_private(&f),
            Err(Error::InsecurePermissions { .. })
        ));
        fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let err = check_private(&f).unwrap_err();
        assert!(err.to_string().contains("chmod 700"), "{err}");
    }

    #[test]
    fn write_new_refuses_to_overwrite() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        write_new(&p, b"a", 0o600).unwrap();
        assert!(write_new(&p, b"b", 0o600).is_err());
        assert_eq!(fs::read(&p).unwrap(), b"a");
    }
}
