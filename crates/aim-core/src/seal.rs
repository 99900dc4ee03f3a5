//! Encryption of private keys at rest: an AES-256-GCM envelope ("sealed key").
//!
//! The key-encryption key (KEK) comes from, in order:
//! 1. a passphrase (`OPENA2A_PASSPHRASE`), stretched with Argon2id; the parameters and salt are
//!    stored in the envelope;
//! 2. otherwise the data-root key file `$OPENA2A_HOME/aim-core/data.key` (32 random bytes, mode
//!    0600), created on first use.
//!
//! Invariants:
//! - Every header field (format, version, algorithm, public key, KEK description) is bound to the
//!   ciphertext as AES-GCM associated data (its RFC 8785 bytes): changing any of them, or moving
//!   the envelope to another identity, makes decryption fail.
//! - A fresh random 96-bit nonce is used for every seal; a KEK never encrypts more than a handful
//!   of keys, far below GCM's random-nonce limits.
//! - Plaintext secrets and KEKs live only in `Zeroizing` buffers.
//! - Argon2id parameters read from a file are bounded both ways: too weak is refused, and absurdly
//!   large values (a denial-of-service file) are refused before any work is done.

use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use argon2::{Algorithm, Argon2, Params, Version};
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::keys::{decode_base64, encode_base64};
use crate::{Error, Result, fsio};

/// Value of the `format` member of a sealed key.
pub const SEALED_FORMAT: &str = "opena2a-sealed-key";
/// Value of the `format` member of the data-root key file.
pub const DATA_KEY_FORMAT: &str = "opena2a-data-key";
/// Environment variable holding the passphrase.
pub const PASSPHRASE_ENV: &str = "OPENA2A_PASSPHRASE";

/// Argon2id parameters used for new seals (OWASP-recommended order of magnitude).
pub const DEFAULT_KDF: KdfParams = KdfParams {
    memory_kib: 64 * 1024,
    iterations: 3,
    parallelism: 1,
};
const MIN_MEMORY_KIB: u32 = 19 * 1024;
const MAX_MEMORY_KIB: u32 = 1024 * 1024;
const MIN_ITERATIONS: u32 = 2;
const MAX_ITERATIONS: u32 = 16;
const MAX_PARALLELISM: u32 = 16;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

/// How the key-encryption key of an envelope was obtained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "camelCase")]
pub enum Kek {
    /// Argon2id over the passphrase.
    #[serde(rename_all = "camelCase")]
    Passphrase {
        kdf: String,
        #[serde(flatten)]
        params: KdfParams,
        salt: String,
    },
    /// The data-root key file, identified by its key id.
    #[serde(rename_all = "camelCase")]
    KeyFile { key_id: String },
}

/// The sealed form of a private key, as stored in `private.key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SealedKey {
    pub format: String,
    pub version: u32,
    pub algorithm: String,
    /// Base64 of the raw public key this private key belongs to.
    pub public_key: String,
    pub kek: Kek,
    pub cipher: String,
    pub nonce: String,
    pub ciphertext: String,
}

/// The authenticated header: everything except nonce and ciphertext.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Header<'a> {
    format: &'a str,
    version: u32,
    algorithm: &'a str,
    public_key: &'a str,
    kek: &'a Kek,
    cipher: &'a str,
}

impl SealedKey {
    fn aad(&self) -> Result<Vec<u8>> {
        crate::canonical::jcs(&Header {
            format: &self.format,
            version: self.version,
            algorithm: &self.algorithm,
            public_key: &self.public_key,
            kek: &self.kek,
            cipher: &self.cipher,
        })
    }

    /// True when opening this envelope needs the passphrase.
    pub fn needs_passphrase(&self) -> bool {
        matches!(self.kek, Kek::Passphrase { .. })
    }
}

/// Where key-encryption keys come from for one data root.
pub struct Keyring {
    passphrase: Option<Zeroizing<String>>,
    key_file: PathBuf,
    kdf: KdfParams,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("passphrase", &self.passphrase.as_ref().map(|_| "<set>"))
            .field("key_file", &self.key_file)
            .finish()
    }
}

/// The data-root key file's content.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DataKeyFile {
    format: String,
    version: u32,
    key_id: String,
    key: String,
}

impl Keyring {
    /// A keyring for the data root whose `aim-core` directory is `core_dir`, with an optional
    /// passphrase (normally read from [`PASSPHRASE_ENV`] by [`Keyring::from_env`]).
    pub fn new(core_dir: &Path, passphrase: Option<String>) -> Self {
        Keyring {
            passphrase: passphrase.filter(|p| !p.is_empty()).map(Zeroizing::new),
            key_file: core_dir.join("data.key"),
            kdf: DEFAULT_KDF,
        }
    }

    /// [`Keyring::new`] with the passphrase from `OPENA2A_PASSPHRASE`, if set and non-empty.
    pub fn from_env(core_dir: &Path) -> Self {
        Self::new(core_dir, std::env::var(PASSPHRASE_ENV).ok())
    }

    /// Overrides the Argon2id cost for new seals (bounded like parameters read from files).
    pub fn with_kdf(mut self, kdf: KdfParams) -> Result<Self> {
        check_kdf(&kdf)?;
        self.kdf = kdf;
        Ok(self)
    }

    /// True when new seals use the passphrase.
    pub fn uses_passphrase(&self) -> bool {
        self.passphrase.is_some()
    }

    /// Encrypts `secret` (a 32-byte Ed25519 seed) belonging to `public_key`.
    pub fn seal<R: CryptoRng + ?Sized>(
        &self,
        secret: &[u8],
        public_key: &str,
        rng: &mut R,
    ) -> Result<SealedKey> {
        let (kek, kek_bytes) = match &self.passphrase {
            Some(p) => {
                let mut salt = [0u8; 16];
                rng.fill_bytes(&mut salt);
                let kek = Kek::Passphrase {
                    kdf: "argon2id".into(),
                    params: self.kdf,
                    salt: encode_base64(&salt),
                };
                let key = derive(p, &salt, &self.kdf)?;
                (kek, key)
            }
            None => {
                let (key_id, key) = self.data_key(true, rng)?;
                (Kek::KeyFile { key_id }, key)
            }
        };
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        let mut sealed = SealedKey {
            format: SEALED_FORMAT.into(),
            version: 1,
            algorithm: "Ed25519".into(),
            public_key: public_key.into(),
            kek,
            cipher: "AES-256-GCM".into(),
            nonce: encode_base64(&nonce),
            ciphertext: String::new(),
        };
        let aad = sealed.aad()?;
        let cipher = Aes256Gcm::new_from_slice(kek_bytes.as_slice())
            .map_err(|e| Error::Crypto(format!("AES key: {e}")))?;
        let nonce = Nonce::try_from(&nonce[..]).map_err(|e| Error::Crypto(e.to_string()))?;
        let ct = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: secret,
                    aad: &aad,
                },
            )
            .map_err(|_| Error::Crypto("AES-GCM encryption failed".into()))?;
        sealed.ciphertext = encode_base64(&ct);
        Ok(sealed)
    }

    /// Decrypts an envelope. `path` names the file in error messages.
    pub fn open(&self, sealed: &SealedKey, path: &Path) -> Result<Zeroizing<Vec<u8>>> {
        if sealed.format != SEALED_FORMAT || sealed.version != 1 {
            return Err(Error::invalid(
                "sealed key",
                format!(
                    "{}: unsupported format {:?} v{}",
                    path.display(),
                    sealed.format,
                    sealed.version
                ),
            ));
        }
        if sealed.cipher != "AES-256-GCM" || sealed.algorithm != "Ed25519" {
            return Err(Error::invalid(
                "sealed key",
                format!("{}: unsupported cipher or algorithm", path.display()),
            ));
        }
        let kek_bytes = match &sealed.kek {
            Kek::Passphrase { kdf, params, salt } => {
                if kdf != "argon2id" {
                    return Err(Error::invalid(
                        "sealed key",
                        format!("unsupported KDF {kdf:?}"),
                    ));
                }
                check_kdf(params)?;
                let p = self.passphrase.as_ref().ok_or_else(|| {
                    Error::State(format!(
                        "{} is protected by a passphrase; set {PASSPHRASE_ENV}",
                        path.display()
                    ))
                })?;
                derive(p, &decode_base64("salt", salt)?, params)?
            }
            Kek::KeyFile { key_id } => {
                let (file_id, key) = self.data_key(false, &mut rand::rng())?;
                if &file_id != key_id {
                    return Err(Error::State(format!(
                        "{} was sealed with data key {key_id}, but {} holds {file_id}",
                        path.display(),
                        self.key_file.display()
                    )));
                }
                key
            }
        };
        let aad = sealed.aad()?;
        let nonce_bytes = decode_base64("nonce", &sealed.nonce)?;
        let nonce = Nonce::try_from(nonce_bytes.as_slice())
            .map_err(|_| Error::invalid("sealed key", "nonce must be 12 bytes"))?;
        let ct = decode_base64("ciphertext", &sealed.ciphertext)?;
        let cipher = Aes256Gcm::new_from_slice(kek_bytes.as_slice())
            .map_err(|e| Error::Crypto(format!("AES key: {e}")))?;
        cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: &ct,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| Error::Decrypt {
                path: path.to_path_buf(),
            })
    }

    /// Reads (or, when `create`, creates) the data-root key file. Returns (key id, key).
    fn data_key<R: CryptoRng + ?Sized>(
        &self,
        create: bool,
        rng: &mut R,
    ) -> Result<(String, Zeroizing<Vec<u8>>)> {
        let path = &self.key_file;
        if !path.exists() {
            if !create {
                return Err(Error::NotFound {
                    what: "data key file",
                    name: path.display().to_string(),
                });
            }
            let mut key = Zeroizing::new([0u8; 32]);
            rng.fill_bytes(key.as_mut());
            let mut id = [0u8; 8];
            rng.fill_bytes(&mut id);
            let body = Zeroizing::new(
                serde_json::to_string_pretty(&DataKeyFile {
                    format: DATA_KEY_FORMAT.into(),
                    version: 1,
                    key_id: format!("dk_{}", hex::encode(id)),
                    key: encode_base64(key.as_ref()),
                })
                .map_err(|e| Error::Crypto(e.to_string()))?,
            );
            if let Some(dir) = path.parent() {
                fsio::ensure_private_dir(dir)?;
            }
            // create_new: if another process won the race, we use its key below.
            match fsio::write_new(path, body.as_bytes(), fsio::SECRET_FILE_MODE) {
                Ok(()) => {}
                Err(Error::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        fsio::check_private(path)?;
        let text = Zeroizing::new(fsio::read_text(path, 4096)?);
        let file: DataKeyFile = serde_json::from_str(&text)
            .map_err(|e| Error::invalid("data key file", format!("{}: {e}", path.display())))?;
        if file.format != DATA_KEY_FORMAT || file.version != 1 {
            return Err(Error::invalid(
                "data key file",
                format!("{}: unknown format", path.display()),
            ));
        }
        let key = Zeroizing::new(decode_base64("data key", &file.key)?);
        if key.len() != 32 {
            return Err(Error::invalid("data key file", "key must be 32 bytes"));
        }
        Ok((file.key_id, key))
    }
}

fn check_kdf(p: &KdfParams) -> Result<()> {
    if !(MIN_MEMORY_KIB..=MAX_MEMORY_KIB).contains(&p.memory_kib)
        || !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&p.iterations)
        || !(1..=MAX_PARALLELISM).contains(&p.parallelism)
    {
        return Err(Error::invalid(
            "Argon2id parameters",
            format!(
                "memory {} KiB, iterations {}, parallelism {} are outside the accepted range \
                 ({MIN_MEMORY_KIB}-{MAX_MEMORY_KIB} KiB, {MIN_ITERATIONS}-{MAX_ITERATIONS}, 1-{MAX_PARALLELISM})",
                p.memory_kib, p.iterations, p.parallelism
            ),
        ));
    }
    Ok(())
}

fn derive(passphrase: &str, salt: &[u8], p: &KdfParams) -> Result<Zeroizing<Vec<u8>>> {
    let params = Params::new(p.memory_kib, p.iterations, p.parallelism, Some(32))
        .map_err(|e| Error::invalid("Argon2id parameters", e))?;
    let mut out = Zeroizing::new(vec![0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, &mut out)
        .map_err(|e| Error::Crypto(format!("Argon2id: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: KdfParams = KdfParams {
        memory_kib: MIN_MEMORY_KIB,
        iterations: 2,
        parallelism: 1,
    };

    /// Keyrings live in a private `aim-core` directory, as in a real data root.
    fn ring(root: &Path, pass: Option<&str>) -> Keyring {
        Keyring::new(&root.join("aim-core"), pass.map(String::from))
            .with_kdf(FAST)
            .unwrap()
    }

    #[test]
    fn key_file_mode_round_trip_and_file_is_private() {
        let d = tempfile::tempdir().unwrap();
        let r = ring(d.path(), None);
        let s = r.seal(&[9u8; 32], "PK", &mut rand::rng()).unwrap();
        assert!(!s.needs_passphrase());
        assert_eq!(r.open(&s, Path::new("x")).unwrap().as_slice(), &[9u8; 32]);
        fsio::check_private(&d.path().join("aim-core/data.key")).unwrap();
        // The ciphertext does not contain the plaintext.
        assert!(
            !decode_base64("c", &s.ciphertext)
                .unwrap()
                .windows(32)
                .any(|w| w == [9u8; 32])
        );
    }

    #[test]
    fn passphrase_mode_requires_the_right_passphrase() {
        let d = tempfile::tempdir().unwrap();
        let s = ring(d.path(), Some("correct horse"))
            .seal(&[1u8; 32], "PK", &mut rand::rng())
            .unwrap();
        assert!(s.needs_passphrase());
        assert!(
            !d.path().join("aim-core/data.key").exists(),
            "passphrase mode must not create a key file"
        );
        let ok = ring(d.path(), Some("correct horse"))
            .open(&s, Path::new("x"))
            .unwrap();
        assert_eq!(ok.as_slice(), &[1u8; 32]);
        assert!(matches!(
            ring(d.path(), Some("wrong")).open(&s, Path::new("x")),
            Err(Error::Decrypt { .. })
        ));
        assert!(matches!(
            ring(d.path(), None).open(&s, Path::new("x")),
            Err(Error::State(_))
        ));
    }

    #[test]
    fn any_header_change_breaks_decryption() {
        let d = tempfile::tempdir().unwrap();
        let r = ring(d.path(), None);
        let s = r.seal(&[2u8; 32], "PK-A", &mut rand::rng()).unwrap();
        let mut moved = s.clone();
        moved.public_key = "PK-B".into();
        assert!(matches!(
            r.open(&moved, Path::new("x")),
            Err(Error::Decrypt { .. })
        ));
        let mut ct = s.clone();
        let mut bytes = decode_base64("c", &ct.ciphertext).unwrap();
        bytes[0] ^= 1;
        ct.ciphertext = encode_base64(&bytes);
        assert!(matches!(
            r.open(&ct, Path::new("x")),
            Err(Error::Decrypt { .. })
        ));
    }

    #[test]
    fn weak_or_huge_kdf_parameters_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let mut s = ring(d.path(), Some("p"))
            .seal(&[3u8; 32], "PK", &mut rand::rng())
            .unwrap();
        if let Kek::Passphrase { params, .. } = &mut s.kek {
            params.memory_kib = u32::MAX;
        }
        assert!(matches!(
            ring(d.path(), Some("p")).open(&s, Path::new("x")),
            Err(Error::Invalid { .. })
        ));
        assert!(
            Keyring::new(d.path(), None)
                .with_kdf(KdfParams {
                    memory_kib: 8,
                    iterations: 1,
                    parallelism: 1
                })
                .is_err()
        );
    }

    #[test]
    fn data_key_with_loose_permissions_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let r = ring(d.path(), None);
        let s = r.seal(&[4u8; 32], "PK", &mut rand::rng()).unwrap();
        std::fs::set_permissions(
            d.path().join("aim-core/data.key"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert!(matches!(
            r.open(&s, Path::new("x")),
            Err(Error::InsecurePermissions { .. })
        ));
    }
}
