//! Encryption of secret columns at rest: AES-256-GCM under a versioned key ring.
//!
//! Sealed blob layout (all integers big-endian):
//! `0x01 (format) | key version (u32) | nonce (12 bytes) | ciphertext || tag (16 bytes)`.
//! The additional authenticated data is a caller-chosen context (e.g. `totp:<user id>`), so a
//! sealed value copied into another row or column does not open.
//!
//! The master key comes from `AIM_MASTER_KEY` (base64 of 32 bytes) or from the key file, created
//! with mode 0600 on first start. The file holds one `v<N>:<base64 of 32 bytes>` line per key
//! version: the highest version seals new values, every listed version opens old ones.
//! `AIM_MASTER_KEY` holds either one bare base64 key (version 1) or the same versioned form,
//! entries separated by commas or whitespace (`v1:<b64>,v2:<b64>`).
//!
//! Rotation (`opena2a server rotate-key`, [`crate::key_rotation`]) appends a version to the file;
//! a running server picks it up without restart: it reloads the file every minute and whenever it
//! meets a value sealed with a version it does not know yet.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::error::Error;
use crate::secrets::random_bytes;

const FORMAT: u8 = 1;
const HEADER: usize = 1 + 4 + 12;

type Keys = BTreeMap<u32, Zeroizing<[u8; 32]>>;

/// The versioned set of data-encryption keys.
pub struct KeyRing {
    keys: RwLock<Keys>,
    /// The key file the ring was read from (`None`: environment or ephemeral; never reloaded).
    file: Option<PathBuf>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("versions", &self.versions())
            .finish()
    }
}

/// The key version a sealed blob names, if it has the sealed format.
pub fn sealed_version(sealed: &[u8]) -> Option<u32> {
    if sealed.len() < HEADER + 16 || sealed[0] != FORMAT {
        return None;
    }
    let mut v = [0u8; 4];
    v.copy_from_slice(&sealed[1..5]);
    Some(u32::from_be_bytes(v))
}

impl KeyRing {
    /// Loads the ring from `AIM_MASTER_KEY` (if given) or the key file, creating the file with a
    /// fresh random key (mode 0600) when it does not exist.
    pub fn load(master_key: Option<&SecretString>, file: &Path) -> Result<KeyRing, Error> {
        if let Some(k) = master_key {
            return Ok(KeyRing {
                keys: RwLock::new(parse_env_ring(k.expose_secret())?),
                file: None,
            });
        }
        if !file.exists() {
            create_key_file(file)?;
        }
        Ok(KeyRing {
            keys: RwLock::new(read_key_file(file)?),
            file: Some(file.to_path_buf()),
        })
    }

    /// A ring with one random key (tests).
    pub fn ephemeral() -> KeyRing {
        KeyRing {
            keys: RwLock::new(BTreeMap::from([(1, random_bytes::<32>())])),
            file: None,
        }
    }

    /// Known key versions, ascending.
    pub fn versions(&self) -> Vec<u32> {
        self.read().keys().copied().collect()
    }

    /// The version new values are sealed with.
    pub fn current_version(&self) -> Option<u32> {
        self.read().keys().next_back().copied()
    }

    /// Whether the ring came from a key file (and can be rotated by appending to it).
    pub fn key_file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// Re-reads the key file (no-op for an environment or ephemeral ring). Versions are only ever
    /// added by a reload, never dropped, so values a running server could open stay openable
    /// until it restarts.
    pub fn reload(&self) -> Result<(), Error> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let fresh = read_key_file(file)?;
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        for (v, k) in fresh {
            keys.entry(v).or_insert(k);
        }
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.keys.read().unwrap_or_else(|p| p.into_inner())
    }

    fn current(&self) -> Result<(u32, Zeroizing<[u8; 32]>), Error> {
        self.read()
            .iter()
            .next_back()
            .map(|(v, k)| (*v, k.clone()))
            .ok_or_else(|| Error::Crypto("empty key ring".into()))
    }

    fn key(&self, version: u32) -> Option<Zeroizing<[u8; 32]>> {
        if let Some(k) = self.read().get(&version) {
            return Some(k.clone());
        }
        // Perhaps `rotate-key` added it since: look at the file once.
        if self.file.is_some() {
            if let Err(e) = self.reload() {
                tracing::warn!(error = %e, "cannot reload the master key file");
            }
            return self.read().get(&version).cloned();
        }
        None
    }

    /// Encrypts `plaintext` under the newest key, bound to `context`.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let (version, key) = self.current()?;
        let cipher =
            Aes256Gcm::new_from_slice(&key[..]).map_err(|e| Error::Crypto(e.to_string()))?;
        let nonce_bytes = random_bytes::<12>();
        let nonce = aes_gcm::Nonce::try_from(&nonce_bytes[..])
            .map_err(|_| Error::Crypto("nonce length".into()))?;
        let ct = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| Error::Crypto("encryption failed".into()))?;
        let mut out = Vec::with_capacity(HEADER + ct.len());
        out.push(FORMAT);
        out.extend_from_slice(&version.to_be_bytes());
        out.extend_from_slice(&nonce_bytes[..]);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Decrypts a sealed blob; fails if the key version is unknown, the context differs or the
    /// blob was modified.
    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, Error> {
        if sealed.len() < HEADER + 16 || sealed[0] != FORMAT {
            return Err(Error::Crypto("sealed value has an unknown format".into()));
        }
        let mut v = [0u8; 4];
        v.copy_from_slice(&sealed[1..5]);
        let version = u32::from_be_bytes(v);
        let key = self.key(version).ok_or_else(|| {
            Error::Crypto(format!(
                "sealed with key version {version}, which the key ring lacks"
            ))
        })?;
        let cipher =
            Aes256Gcm::new_from_slice(&key[..]).map_err(|e| Error::Crypto(e.to_string()))?;
        let nonce = aes_gcm::Nonce::try_from(&sealed[5..HEADER])
            .map_err(|_| Error::Crypto("nonce length".into()))?;
        cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: &sealed[HEADER..],
                    aad: context.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| {
                Error::Crypto("sealed value does not open (wrong key, context or tampered)".into())
            })
    }
}

fn parse_env_ring(value: &str) -> Result<Keys, Error> {
    let bad = |e: String| Error::Config(format!("AIM_MASTER_KEY: {e}"));
    let value = value.trim();
    if !value.contains(':') {
        return Ok(BTreeMap::from([(1, decode_key(value).map_err(bad)?)]));
    }
    let mut keys = BTreeMap::new();
    for entry in value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|e| !e.is_empty())
    {
        let (version, key) = parse_versioned(entry)
            .ok_or_else(|| bad("expected v<N>:<base64 of 32 bytes>[,v<M>:…]".into()))?;
        keys.insert(version, key);
    }
    if keys.is_empty() {
        return Err(bad("no key".into()));
    }
    Ok(keys)
}

fn parse_versioned(entry: &str) -> Option<(u32, Zeroizing<[u8; 32]>)> {
    let (v, k) = entry.split_once(':')?;
    let version: u32 = v.strip_prefix('v')?.parse().ok()?;
    if version == 0 {
        return None;
    }
    Some((version, decode_key(k).ok()?))
}

fn read_key_file(file: &Path) -> Result<Keys, Error> {
    check_permissions(file)?;
    let text = Zeroizing::new(
        std::fs::read_to_string(file)
            .map_err(|e| Error::Io(format!("cannot read {}: {e}", file.display())))?,
    );
    let mut keys = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (version, key) = parse_versioned(line).ok_or_else(|| {
            Error::Config(format!(
                "{} line {}: expected v<N>:<base64 of 32 bytes>",
                file.display(),
                n + 1
            ))
        })?;
        keys.insert(version, key);
    }
    if keys.is_empty() {
        return Err(Error::Config(format!("{} holds no key", file.display())));
    }
    Ok(keys)
}

/// Appends a fresh random key as the next version to the key file (atomically: a private
/// temporary file renamed over the old one). Returns the new version.
pub fn add_version_to_file(file: &Path) -> Result<u32, Error> {
    let keys = read_key_file(file)?;
    let next = keys.keys().next_back().copied().unwrap_or(0) + 1;
    let mut text = Zeroizing::new(String::from(
        "# AIM server master key ring. Keep secret; back it up.\n",
    ));
    for (v, k) in &keys {
        text.push_str(&format!("v{v}:{}\n", STANDARD.encode(&k[..])));
    }
    let fresh = random_bytes::<32>();
    text.push_str(&format!("v{next}:{}\n", STANDARD.encode(&fresh[..])));
    write_key_file(file, text.as_bytes())?;
    Ok(next)
}

/// Rewrites the key file keeping only versions `>= keep_from`. Callers must first make sure no
/// stored value is sealed with an older version ([`crate::key_rotation`] does).
pub fn retire_versions_below(file: &Path, keep_from: u32) -> Result<Vec<u32>, Error> {
    let keys = read_key_file(file)?;
    if !keys.keys().any(|v| *v >= keep_from) {
        return Err(Error::Config("refusing to retire every key version".into()));
    }
    let mut text = Zeroizing::new(String::from(
        "# AIM server master key ring. Keep secret; back it up.\n",
    ));
    let mut retired = Vec::new();
    for (v, k) in &keys {
        if *v >= keep_from {
            text.push_str(&format!("v{v}:{}\n", STANDARD.encode(&k[..])));
        } else {
            retired.push(*v);
        }
    }
    write_key_file(file, text.as_bytes())?;
    Ok(retired)
}

fn write_key_file(file: &Path, bytes: &[u8]) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::Io(format!("cannot write {}: {e}", file.display()));
    let dir = file.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(io)?;
    }
    tmp.write_all(bytes).map_err(io)?;
    tmp.as_file().sync_all().map_err(io)?;
    tmp.persist(file).map_err(|e| io(e.error))?;
    Ok(())
}

fn decode_key(b64: &str) -> Result<Zeroizing<[u8; 32]>, String> {
    let raw = Zeroizing::new(
        STANDARD
            .decode(b64.trim())
            .map_err(|_| "not base64".to_string())?,
    );
    let arr: [u8; 32] = raw
        .as_slice()
        .try_into()
        .map_err(|_| format!("{} bytes, expected 32", raw.len()))?;
    Ok(Zeroizing::new(arr))
}

fn create_key_file(file: &Path) -> Result<(), Error> {
    let io = |e: std::io::Error| Error::Io(format!("cannot create {}: {e}", file.display()));
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let key = random_bytes::<32>();
    let line = Zeroizing::new(format!(
        "# AIM server master key ring. Keep secret; back it up.\nv1:{}\n",
        STANDARD.encode(&key[..])
    ));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(file).map_err(io)?;
    f.write_all(line.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(())
}

#[cfg(unix)]
fn check_permissions(file: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(file)
        .map_err(|e| Error::Io(format!("cannot stat {}: {e}", file.display())))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::Config(format!(
            "{} is accessible by group or others (mode {mode:o}); run `chmod 600 {}`",
            file.display(),
            file.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_file: &Path) -> Result<(), Error> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_binding() {
        let ring = KeyRing::ephemeral();
        let s = ring.seal("totp:1", b"secret").unwrap();
        assert_eq!(&ring.open("totp:1", &s).unwrap()[..], b"secret");
        assert!(
            ring.open("totp:2", &s).is_err(),
            "context binds the value to its row"
        );
        let mut t = s.clone();
        let last = t.len() - 1;
        t[last] ^= 1;
        assert!(ring.open("totp:1", &t).is_err(), "tampering is detected");
        assert!(
            KeyRing::ephemeral().open("totp:1", &s).is_err(),
            "another key does not open it"
        );
        assert!(ring.open("totp:1", &[1, 2, 3]).is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("sub").join("master.key");
        let a = KeyRing::load(None, &f).unwrap();
        let s = a.seal("c", b"x").unwrap();
        let b = KeyRing::load(None, &f).unwrap();
        assert_eq!(&b.open("c", &s).unwrap()[..], b"x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
                0o600
            );
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(
                KeyRing::load(None, &f).is_err(),
                "a readable key file is refused"
            );
        }
    }

    #[test]
    fn env_master_key_must_be_32_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let short = SecretString::from(STANDARD.encode([0u8; 16]));
        assert!(KeyRing::load(Some(&short), &dir.path().join("k")).is_err());
        let good = SecretString::from(STANDARD.encode([7u8; 32]));
        assert!(KeyRing::load(Some(&good), &dir.path().join("k")).is_ok());
        assert!(
            !dir.path().join("k").exists(),
            "no key file when the env key is given"
        );
    }

    #[test]
    fn env_ring_accepts_a_versioned_list() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (STANDARD.encode([1u8; 32]), STANDARD.encode([2u8; 32]));
        let old =
            KeyRing::load(Some(&SecretString::from(a.clone())), &dir.path().join("k")).unwrap();
        let sealed_v1 = old.seal("c", b"x").unwrap();
        let both = SecretString::from(format!("v1:{a}, v2:{b}"));
        let ring = KeyRing::load(Some(&both), &dir.path().join("k")).unwrap();
        assert_eq!(ring.versions(), vec![1, 2]);
        assert_eq!(&ring.open("c", &sealed_v1).unwrap()[..], b"x");
        assert_eq!(sealed_version(&ring.seal("c", b"y").unwrap()), Some(2));
        for bad in ["v0:{a}", "v1:short", "x1:{a}", "v1:{a},garbage"] {
            let v = SecretString::from(bad.replace("{a}", &a));
            assert!(
                KeyRing::load(Some(&v), &dir.path().join("k")).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn file_rotation_adds_and_retires_versions_and_running_rings_reload() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("master.key");
        let running = KeyRing::load(None, &f).unwrap();
        let v1 = running.seal("c", b"one").unwrap();
        assert_eq!(add_version_to_file(&f).unwrap(), 2);
        let rotated = KeyRing::load(None, &f).unwrap();
        let v2 = rotated.seal("c", b"two").unwrap();
        assert_eq!(sealed_version(&v2), Some(2));
        // The running ring has not reloaded yet, but opens v2 by reloading on demand.
        assert_eq!(running.versions(), vec![1]);
        assert_eq!(&running.open("c", &v2).unwrap()[..], b"two");
        assert_eq!(running.current_version(), Some(2));
        assert!(
            retire_versions_below(&f, 3).is_err(),
            "never retire every version"
        );
        assert_eq!(retire_versions_below(&f, 2).unwrap(), vec![1]);
        let fresh = KeyRing::load(None, &f).unwrap();
        assert_eq!(fresh.versions(), vec![2]);
        assert!(fresh.open("c", &v1).is_err(), "v1 is gone from the file");
        assert_eq!(
            &running.open("c", &v1).unwrap()[..],
            b"one",
            "kept in memory"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }
}
