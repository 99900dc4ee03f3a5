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

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

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

/// The versioned set of data-encryption keys.
pub struct KeyRing {
    keys: BTreeMap<u32, Zeroizing<[u8; 32]>>,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("versions", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl KeyRing {
    /// Loads the ring from `AIM_MASTER_KEY` (if given) or the key file, creating the file with a
    /// fresh random key (mode 0600) when it does not exist.
    pub fn load(master_key: Option<&SecretString>, file: &Path) -> Result<KeyRing, Error> {
        if let Some(k) = master_key {
            let key = decode_key(k.expose_secret())
                .map_err(|e| Error::Config(format!("AIM_MASTER_KEY: {e}")))?;
            return Ok(KeyRing {
                keys: BTreeMap::from([(1, key)]),
            });
        }
        if !file.exists() {
            create_key_file(file)?;
        }
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
            let bad = || {
                Error::Config(format!(
                    "{} line {}: expected v<N>:<base64 of 32 bytes>",
                    file.display(),
                    n + 1
                ))
            };
            let (v, k) = line.split_once(':').ok_or_else(bad)?;
            let version: u32 = v
                .strip_prefix('v')
                .and_then(|v| v.parse().ok())
                .ok_or_else(bad)?;
            keys.insert(version, decode_key(k).map_err(|_| bad())?);
        }
        if keys.is_empty() {
            return Err(Error::Config(format!("{} holds no key", file.display())));
        }
        Ok(KeyRing { keys })
    }

    /// A ring with one random key (tests).
    pub fn ephemeral() -> KeyRing {
        KeyRing {
            keys: BTreeMap::from([(1, random_bytes::<32>())]),
        }
    }

    fn current(&self) -> Result<(u32, &[u8; 32]), Error> {
        self.keys
            .iter()
            .next_back()
            .map(|(v, k)| (*v, &**k))
            .ok_or_else(|| Error::Crypto("empty key ring".into()))
    }

    /// Encrypts `plaintext` under the newest key, bound to `context`.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let (version, key) = self.current()?;
        let cipher = Aes256Gcm::new_from_slice(key).map_err(|e| Error::Crypto(e.to_string()))?;
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
        let key = self.keys.get(&version).ok_or_else(|| {
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
}
