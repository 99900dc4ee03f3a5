//! The on-disk identity store, seed layout:
//!
//! ```text
//! $OPENA2A_HOME/aim-core/
//!   identities/<agent-id>/
//!     private.key    sealed Ed25519 seed (see crate::seal), mode 0600
//!     public.key     PEM SubjectPublicKeyInfo of the current key
//!     identity.json  id, name, DID, current public key, status, capabilities, key history
//!   node/            the data root's own key (signs audit checkpoints, issues challenges)
//!   .lock            advisory lock serialising state changes
//! ```
//!
//! Invariants:
//! - `id` = [`crate::keys::agent_id_for`] of the *inception* key (`keyHistory[0]`); every later key
//!   carries an endorsement signed by the key before it, so the id stays self-certifying across
//!   rotations ([`verify_key_history`]).
//! - Directories are 0700, `private.key` 0600; a private key whose file or directory is readable
//!   by group/others is refused.
//! - Creation builds the whole directory under a staging name and renames it into place, so a
//!   crash never leaves a half-made identity. Rotation writes `private.key.next` first, then commits
//!   by replacing `identity.json`; [`IdentityStore`] rolls an interrupted rotation forward (if
//!   `identity.json` committed) or back (if not) before any other use. Revocation commits in
//!   `identity.json`, then deletes the private key.
//! - Retired and revoked private keys are deleted: only public keys are kept in history.

use std::fs;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};

use crate::clock::rfc3339;
use crate::fsio::{self, DirLock};
use crate::keys::{KeyPair, PublicKey, agent_id_for, decode_base64, encode_base64, is_agent_id};
use crate::seal::{Keyring, SealedKey};
use crate::{Error, Result};

/// `format` member of identity.json.
pub const IDENTITY_FORMAT: &str = "opena2a-identity";
/// Type string of the signed key-rotation statement.
pub const ROTATION_STATEMENT_TYPE: &str = "aim-key-rotation/v1";
/// DID method prefix for agent ids.
pub const AGENT_DID_PREFIX: &str = "did:opena2a:agent:";
const MAX_JSON: u64 = 1024 * 1024;

/// Lifecycle of a local identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Active,
    Revoked,
}

/// Lifecycle of one key in the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    Active,
    Retired,
    Revoked,
}

/// One key an identity has held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRecord {
    /// `<agent-id>#key-<n>`, n counting from 1.
    pub key_id: String,
    /// Base64 of the raw public key.
    pub public_key: String,
    pub status: KeyStatus,
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<String>,
    /// For every key but the first: base64 signature by the previous key over the RFC 8785
    /// bytes of the [`RotationStatement`] whose `rotatedAt` is this record's `createdAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endorsement: Option<String>,
}

/// What a previous key signs to endorse its successor.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RotationStatement<'a> {
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub agent_id: &'a str,
    pub previous_key: &'a str,
    pub new_key: &'a str,
    pub rotated_at: &'a str,
}

/// The content of `identity.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    pub format: String,
    pub version: u32,
    pub id: String,
    pub did: String,
    pub name: String,
    /// Base64 of the current raw public key.
    pub public_key: String,
    pub created_at: String,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_reason: Option<String>,
    #[serde(default)]
    pub capabilities: Vec<String>,
    pub key_history: Vec<KeyRecord>,
}

impl Identity {
    /// The current public key.
    pub fn current_key(&self) -> Result<PublicKey> {
        PublicKey::from_base64(&self.public_key)
    }

    /// The key id of the current key.
    pub fn current_key_id(&self) -> String {
        self.key_history
            .last()
            .map(|k| k.key_id.clone())
            .unwrap_or_else(|| format!("{}#key-1", self.id))
    }
}

/// The DID of an agent id.
pub fn agent_did(agent_id: &str) -> String {
    format!("{AGENT_DID_PREFIX}{agent_id}")
}

/// Checks that `id` is derived from the inception key and that every rotation is endorsed by the
/// key before it, and that the current key is the last one in the history.
pub fn verify_key_history(identity: &Identity) -> std::result::Result<(), String> {
    let first = identity.key_history.first().ok_or("key history is empty")?;
    let inception = PublicKey::from_base64(&first.public_key).map_err(|e| e.to_string())?;
    if agent_id_for(&inception.to_bytes()) != identity.id {
        return Err(format!(
            "id {} is not derived from the inception key {}",
            identity.id, first.public_key
        ));
    }
    if first.endorsement.is_some() {
        return Err("the inception key must not carry an endorsement".into());
    }
    for pair in identity.key_history.windows(2) {
        let (prev, next) = (&pair[0], &pair[1]);
        let prev_key = PublicKey::from_base64(&prev.public_key).map_err(|e| e.to_string())?;
        let sig = next
            .endorsement
            .as_deref()
            .ok_or_else(|| format!("{} has no endorsement by {}", next.key_id, prev.key_id))?;
        let stmt = RotationStatement {
            kind: ROTATION_STATEMENT_TYPE,
            agent_id: &identity.id,
            previous_key: &prev.public_key,
            new_key: &next.public_key,
            rotated_at: &next.created_at,
        };
        let sig = decode_base64("endorsement", sig).map_err(|e| e.to_string())?;
        let ok = prev_key
            .verify_json(&stmt, &sig)
            .map_err(|e| e.to_string())?;
        if !ok {
            return Err(format!(
                "endorsement of {} by {} does not verify",
                next.key_id, prev.key_id
            ));
        }
    }
    let last = identity.key_history.last().ok_or("key history is empty")?;
    if last.public_key != identity.public_key {
        return Err("publicKey is not the last key in the history".into());
    }
    Ok(())
}

/// Validates an identity name: 1-64 characters of `A-Z a-z 0-9 . _ -`, not starting with `.`.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "name",
            format!(
                "{name:?}: use 1-64 characters of A-Z, a-z, 0-9, '.', '_', '-', not starting with '.'"
            ),
        ))
    }
}

/// Validates a declared capability (`namespace:action`, optionally `domain/namespace:action`;
/// lowercase letters, digits, `_ - . / *`).
pub fn validate_capability(cap: &str) -> Result<()> {
    let ok = cap.len() <= 128
        && cap.split_once(':').is_some_and(|(ns, action)| {
            !ns.is_empty()
                && !action.is_empty()
                && !action.contains(':')
                && cap
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-./*:".contains(&b))
        });
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "capability",
            format!("{cap:?}: expected namespace:action, e.g. files:read or db:*"),
        ))
    }
}

/// Readable identities, and the directories that could not be read (with why).
pub type Listing = (Vec<Identity>, Vec<(PathBuf, Error)>);

/// One finding of [`IdentityStore::check`].
#[derive(Debug, Clone, Serialize)]
pub struct CheckItem {
    pub check: &'static str,
    pub ok: bool,
    pub detail: String,
}

/// The local identity store of one data root.
#[derive(Debug, Clone)]
pub struct IdentityStore {
    core_dir: PathBuf,
}

impl IdentityStore {
    /// The store under `$OPENA2A_HOME` (`home`): uses `home/aim-core/`.
    pub fn new(home: &Path) -> Self {
        IdentityStore {
            core_dir: home.join("aim-core"),
        }
    }

    /// `$OPENA2A_HOME/aim-core`.
    pub fn core_dir(&self) -> &Path {
        &self.core_dir
    }

    /// `$OPENA2A_HOME/aim-core/identities`.
    pub fn identities_dir(&self) -> PathBuf {
        self.core_dir.join("identities")
    }

    /// The directory of one identity.
    pub fn dir_of(&self, id: &str) -> PathBuf {
        self.identities_dir().join(id)
    }

    /// Takes the data-root lock (held until the guard drops).
    pub fn lock(&self) -> Result<DirLock> {
        fsio::ensure_private_dir(&self.core_dir)?;
        DirLock::acquire(&self.core_dir.join(".lock"))
    }

    /// Creates a new identity with a fresh key pair.
    pub fn create<R: CryptoRng + ?Sized>(
        &self,
        name: &str,
        capabilities: &[String],
        keyring: &Keyring,
        now: DateTime<Utc>,
        rng: &mut R,
    ) -> Result<Identity> {
        validate_name(name)?;
        for c in capabilities {
            validate_capability(c)?;
        }
        let _lock = self.lock()?;
        let (existing, _) = self.list_unlocked()?;
        if existing.iter().any(|i| i.name == name) {
            return Err(Error::AlreadyExists {
                what: "identity",
                name: name.to_string(),
            });
        }
        let kp = KeyPair::generate(rng);
        let public = kp.public();
        let id = public.agent_id();
        let created_at = rfc3339(now);
        let mut caps = capabilities.to_vec();
        caps.sort();
        caps.dedup();
        let identity = Identity {
            format: IDENTITY_FORMAT.into(),
            version: 1,
            did: agent_did(&id),
            id: id.clone(),
            name: name.to_string(),
            public_key: public.to_base64(),
            created_at: created_at.clone(),
            status: Status::Active,
            revoked_at: None,
            revocation_reason: None,
            capabilities: caps,
            key_history: vec![KeyRecord {
                key_id: format!("{id}#key-1"),
                public_key: public.to_base64(),
                status: KeyStatus::Active,
                created_at,
                retired_at: None,
                endorsement: None,
            }],
        };
        let sealed = keyring.seal(kp.seed().as_ref(), &public.to_base64(), rng)?;

        let parent = self.identities_dir();
        fsio::ensure_private_dir(&parent)?;
        let final_dir = parent.join(&id);
        if final_dir.exists() {
            return Err(Error::AlreadyExists {
                what: "identity",
                name: id,
            });
        }
        let mut tag = [0u8; 8];
        rng.fill_bytes(&mut tag);
        let staging = parent.join(format!(".staging-{}", hex::encode(tag)));
        fsio::ensure_private_dir(&staging)?;
        let write_all = || -> Result<()> {
            fsio::write_new(
                &staging.join("private.key"),
                &to_json(&sealed)?,
                fsio::SECRET_FILE_MODE,
            )?;
            fsio::write_new(
                &staging.join("public.key"),
                public.to_pem()?.as_bytes(),
                fsio::PUBLIC_FILE_MODE,
            )?;
            fsio::write_new(
                &staging.join("identity.json"),
                &to_json(&identity)?,
                fsio::PUBLIC_FILE_MODE,
            )?;
            fsio::sync_dir(&staging)?;
            fs::rename(&staging, &final_dir)
                .map_err(|e| Error::io("cannot move into place", &final_dir, e))?;
            fsio::sync_dir(&parent)
        };
        if let Err(e) = write_all() {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
        Ok(identity)
    }

    /// All identities, plus the directories that could not be read (with why).
    pub fn list(&self) -> Result<Listing> {
        self.list_unlocked()
    }

    fn list_unlocked(&self) -> Result<Listing> {
        let dir = self.identities_dir();
        let mut ok = Vec::new();
        let mut bad = Vec::new();
        let rd = match fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((ok, bad)),
            Err(e) => return Err(Error::io("cannot list", &dir, e)),
        };
        for entry in rd {
            let entry = entry.map_err(|e| Error::io("cannot list", &dir, e))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || !entry.path().is_dir() {
                continue;
            }
            match self.read_identity(&entry.path()) {
                Ok(i) => ok.push(i),
                Err(e) => bad.push((entry.path(), e)),
            }
        }
        ok.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        Ok((ok, bad))
    }

    fn read_identity(&self, dir: &Path) -> Result<Identity> {
        let path = dir.join("identity.json");
        let text = fsio::read_text(&path, MAX_JSON)?;
        let identity: Identity = serde_json::from_str(&text)
            .map_err(|e| Error::invalid("identity.json", format!("{}: {e}", path.display())))?;
        if identity.format != IDENTITY_FORMAT || identity.version != 1 {
            return Err(Error::invalid(
                "identity.json",
                format!(
                    "{}: unknown format {:?} v{}",
                    path.display(),
                    identity.format,
                    identity.version
                ),
            ));
        }
        let dir_name = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        if identity.id != dir_name {
            return Err(Error::invalid(
                "identity.json",
                format!(
                    "{}: id {} does not match its directory",
                    path.display(),
                    identity.id
                ),
            ));
        }
        Ok(identity)
    }

    /// Finds an identity by agent id or by name.
    pub fn find(&self, id_or_name: &str) -> Result<Identity> {
        if is_agent_id(id_or_name) {
            let dir = self.dir_of(id_or_name);
            if dir.is_dir() {
                return self.read_identity(&dir);
            }
        }
        let (all, _) = self.list_unlocked()?;
        let mut matches: Vec<Identity> = all.into_iter().filter(|i| i.name == id_or_name).collect();
        match matches.len() {
            0 => Err(Error::NotFound {
                what: "identity",
                name: id_or_name.to_string(),
            }),
            1 => Ok(matches.remove(0)),
            n => Err(Error::Ambiguous {
                what: "identity",
                name: id_or_name.to_string(),
                count: n,
            }),
        }
    }

    /// Loads and decrypts the current private key of an active identity, checking file modes and
    /// that it matches `identity.json`.
    pub fn load_keypair(&self, identity: &Identity, keyring: &Keyring) -> Result<KeyPair> {
        let _lock = self.lock()?;
        let identity = self.recover(&identity.id)?;
        if identity.status == Status::Revoked {
            return Err(Error::State(format!(
                "identity {} ({}) is revoked; its private key was destroyed",
                identity.name, identity.id
            )));
        }
        self.open_private(
            &self.dir_of(&identity.id).join("private.key"),
            &identity.public_key,
            keyring,
        )
    }

    fn open_private(&self, path: &Path, public_b64: &str, keyring: &Keyring) -> Result<KeyPair> {
        fsio::check_private(path)?;
        let text = fsio::read_text(path, MAX_JSON)?;
        let sealed: SealedKey = serde_json::from_str(&text)
            .map_err(|e| Error::invalid("private key file", format!("{}: {e}", path.display())))?;
        if sealed.public_key != public_b64 {
            return Err(Error::State(format!(
                "{} belongs to another public key than identity.json names",
                path.display()
            )));
        }
        let seed = keyring.open(&sealed, path)?;
        let seed: &[u8; 32] = seed.as_slice().try_into().map_err(|_| Error::Decrypt {
            path: path.to_path_buf(),
        })?;
        let kp = KeyPair::from_seed(seed);
        if kp.public().to_base64() != public_b64 {
            return Err(Error::State(format!(
                "{} does not hold the private half of the recorded public key",
                path.display()
            )));
        }
        Ok(kp)
    }

    /// Rotates an active identity to a fresh key. The old key endorses the new one, is marked
    /// retired in the history, and its private half is deleted.
    pub fn rotate<R: CryptoRng + ?Sized>(
        &self,
        id_or_name: &str,
        keyring: &Keyring,
        now: DateTime<Utc>,
        rng: &mut R,
    ) -> Result<Identity> {
        let found = self.find(id_or_name)?;
        let _lock = self.lock()?;
        let mut identity = self.recover(&found.id)?;
        if identity.status == Status::Revoked {
            return Err(Error::State(format!(
                "identity {} is revoked and cannot be rotated",
                identity.id
            )));
        }
        let dir = self.dir_of(&identity.id);
        let old = self.open_private(&dir.join("private.key"), &identity.public_key, keyring)?;
        let new = KeyPair::generate(rng);
        let new_b64 = new.public().to_base64();
        let at = rfc3339(now);
        let stmt = RotationStatement {
            kind: ROTATION_STATEMENT_TYPE,
            agent_id: &identity.id,
            previous_key: &identity.public_key,
            new_key: &new_b64,
            rotated_at: &at,
        };
        let endorsement = encode_base64(&old.sign_json(&stmt)?);
        // 1. stage the new private key
        let sealed = keyring.seal(new.seed().as_ref(), &new_b64, rng)?;
        fsio::atomic_write(
            &dir.join("private.key.next"),
            &to_json(&sealed)?,
            fsio::SECRET_FILE_MODE,
        )?;
        // 2. commit point: identity.json names the new key
        let n = identity.key_history.len() + 1;
        if let Some(last) = identity.key_history.last_mut() {
            last.status = KeyStatus::Retired;
            last.retired_at = Some(at.clone());
        }
        identity.key_history.push(KeyRecord {
            key_id: format!("{}#key-{n}", identity.id),
            public_key: new_b64.clone(),
            status: KeyStatus::Active,
            created_at: at,
            retired_at: None,
            endorsement: Some(endorsement),
        });
        identity.public_key = new_b64;
        fsio::atomic_write(
            &dir.join("identity.json"),
            &to_json(&identity)?,
            fsio::PUBLIC_FILE_MODE,
        )?;
        // 3. roll forward the derived files
        self.recover(&identity.id)
    }

    /// Revokes an identity (final): status revoked, current key revoked, private key deleted.
    pub fn revoke(
        &self,
        id_or_name: &str,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Identity> {
        let found = self.find(id_or_name)?;
        let _lock = self.lock()?;
        let mut identity = self.recover(&found.id)?;
        if identity.status == Status::Revoked {
            return Err(Error::State(format!(
                "identity {} is already revoked",
                identity.id
            )));
        }
        let at = rfc3339(now);
        identity.status = Status::Revoked;
        identity.revoked_at = Some(at.clone());
        identity.revocation_reason = reason.map(str::to_string);
        if let Some(last) = identity.key_history.last_mut() {
            last.status = KeyStatus::Revoked;
            last.retired_at = Some(at);
        }
        let dir = self.dir_of(&identity.id);
        fsio::atomic_write(
            &dir.join("identity.json"),
            &to_json(&identity)?,
            fsio::PUBLIC_FILE_MODE,
        )?;
        self.recover(&identity.id)
    }

    /// Finishes or undoes an interrupted rotation/revocation of `id` and returns the committed
    /// identity. Caller holds the lock.
    fn recover(&self, id: &str) -> Result<Identity> {
        let dir = self.dir_of(id);
        let identity = self.read_identity(&dir)?;
        let next = dir.join("private.key.next");
        let private = dir.join("private.key");
        let mut changed = false;
        if identity.status == Status::Revoked {
            for p in [&next, &private] {
                if p.exists() {
                    fs::remove_file(p).map_err(|e| Error::io("cannot delete", p, e))?;
                    changed = true;
                }
            }
        } else if next.exists() {
            let text = fsio::read_text(&next, MAX_JSON)?;
            let staged: Option<SealedKey> = serde_json::from_str(&text).ok();
            if staged.is_some_and(|s| s.public_key == identity.public_key) {
                fs::rename(&next, &private)
                    .map_err(|e| Error::io("cannot move into place", &private, e))?;
            } else {
                fs::remove_file(&next).map_err(|e| Error::io("cannot delete", &next, e))?;
            }
            changed = true;
        }
        let pem = identity.current_key()?.to_pem()?;
        let pub_path = dir.join("public.key");
        if fs::read_to_string(&pub_path).ok().as_deref() != Some(pem.as_str()) {
            fsio::atomic_write(&pub_path, pem.as_bytes(), fsio::PUBLIC_FILE_MODE)?;
            changed = true;
        }
        if changed {
            fsio::sync_dir(&dir)?;
        }
        Ok(identity)
    }

    /// Exports the current private key as PKCS#8 PEM (explicit request only).
    pub fn export_pkcs8(
        &self,
        identity: &Identity,
        keyring: &Keyring,
    ) -> Result<zeroize::Zeroizing<String>> {
        self.load_keypair(identity, keyring)?.to_pkcs8_pem()
    }

    /// Verifies an identity end to end: metadata, id derivation and key history, public.key,
    /// file modes, and that the private key decrypts to the recorded public key.
    pub fn check(&self, identity: &Identity, keyring: &Keyring) -> Vec<CheckItem> {
        let dir = self.dir_of(&identity.id);
        let mut out = Vec::new();
        let mut push = |check: &'static str, r: std::result::Result<String, String>| {
            let (ok, detail) = match r {
                Ok(d) => (true, d),
                Err(d) => (false, d),
            };
            out.push(CheckItem { check, ok, detail });
        };
        push(
            "id-derivation",
            verify_key_history(identity).map(|_| {
                format!(
                    "id derives from the inception key; {} rotation(s) endorsed",
                    identity.key_history.len().saturating_sub(1)
                )
            }),
        );
        push(
            "public-key-file",
            fsio::read_text(&dir.join("public.key"), MAX_JSON)
                .and_then(|t| PublicKey::from_pem(&t))
                .map_err(|e| e.to_string())
                .and_then(|k| {
                    if k.to_base64() == identity.public_key {
                        Ok("public.key matches identity.json".into())
                    } else {
                        Err("public.key differs from identity.json".into())
                    }
                }),
        );
        match identity.status {
            Status::Revoked => push(
                "private-key",
                if dir.join("private.key").exists() {
                    Err("identity is revoked but private.key still exists".into())
                } else {
                    Ok("revoked: private key destroyed".into())
                },
            ),
            Status::Active => {
                push(
                    "permissions",
                    fsio::check_private(&dir.join("private.key"))
                        .map(|_| "private.key 0600, directory 0700".into())
                        .map_err(|e| e.to_string()),
                );
                push(
                    "private-key",
                    self.open_private(&dir.join("private.key"), &identity.public_key, keyring)
                        .map(|_| "private.key decrypts to the recorded public key".into())
                        .map_err(|e| e.to_string()),
                );
            }
        }
        out
    }

    /// The data root's node key (created on first use): signs audit checkpoints and issues
    /// challenges. Stored sealed at `aim-core/node/private.key`.
    pub fn node_key<R: CryptoRng + ?Sized>(
        &self,
        keyring: &Keyring,
        rng: &mut R,
    ) -> Result<KeyPair> {
        let _lock = self.lock()?;
        let dir = self.core_dir.join("node");
        let private = dir.join("private.key");
        if private.exists() {
            fsio::check_private(&private)?;
            let text = fsio::read_text(&private, MAX_JSON)?;
            let sealed: SealedKey = serde_json::from_str(&text)
                .map_err(|e| Error::invalid("node key", format!("{}: {e}", private.display())))?;
            let pk = sealed.public_key.clone();
            return self.open_private(&private, &pk, keyring);
        }
        fsio::ensure_private_dir(&dir)?;
        let kp = KeyPair::generate(rng);
        let sealed = keyring.seal(kp.seed().as_ref(), &kp.public().to_base64(), rng)?;
        fsio::atomic_write(
            &dir.join("public.key"),
            kp.public().to_pem()?.as_bytes(),
            fsio::PUBLIC_FILE_MODE,
        )?;
        fsio::atomic_write(&private, &to_json(&sealed)?, fsio::SECRET_FILE_MODE)?;
        Ok(kp)
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>> {
    let mut out = serde_json::to_vec_pretty(v).map_err(|e| Error::invalid("JSON", e))?;
    out.push(b'\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seal::KdfParams;
    use std::os::unix::fs::PermissionsExt;

    fn setup() -> (tempfile::TempDir, IdentityStore, Keyring) {
        let d = tempfile::tempdir().unwrap();
        let home = d.path().join("home");
        let store = IdentityStore::new(&home);
        let ring = Keyring::new(store.core_dir(), None);
        (d, store, ring)
    }

    fn now() -> DateTime<Utc> {
        crate::clock::parse_rfc3339("2026-03-01T12:00:00Z").unwrap()
    }

    #[test]
    fn create_writes_seed_layout_with_modes() {
        let (_d, store, ring) = setup();
        let id = store
            .create(
                "agent-1",
                &["files:read".into()],
                &ring,
                now(),
                &mut rand::rng(),
            )
            .unwrap();
        let dir = store.dir_of(&id.id);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&store.identities_dir()), 0o700);
        assert_eq!(mode(&dir.join("private.key")), 0o600);
        assert!(dir.join("public.key").exists() && dir.join("identity.json").exists());
        assert_eq!(id.id, id.current_key().unwrap().agent_id());
        assert_eq!(id.did, format!("did:opena2a:agent:{}", id.id));
        assert!(
            fs::read_dir(store.identities_dir()).unwrap().all(|e| !e
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with('.'))
        );
        let kp = store.load_keypair(&id, &ring).unwrap();
        assert_eq!(kp.public().to_base64(), id.public_key);
        assert!(store.check(&id, &ring).iter().all(|c| c.ok));
    }

    #[test]
    fn names_are_unique_and_validated() {
        let (_d, store, ring) = setup();
        store
            .create("a", &[], &ring, now(), &mut rand::rng())
            .unwrap();
        assert!(matches!(
            store.create("a", &[], &ring, now(), &mut rand::rng()),
            Err(Error::AlreadyExists { .. })
        ));
        for bad in ["", ".hidden", "has space", "x/y", &"n".repeat(65)] {
            assert!(
                store
                    .create(bad, &[], &ring, now(), &mut rand::rng())
                    .is_err(),
                "{bad:?}"
            );
        }
        assert!(
            store
                .create("b", &["NoColon".into()], &ring, now(), &mut rand::rng())
                .is_err()
        );
    }

    #[test]
    fn rotation_keeps_id_and_chains_endorsements() {
        let (_d, store, ring) = setup();
        let id = store
            .create("r", &[], &ring, now(), &mut rand::rng())
            .unwrap();
        let r1 = store.rotate("r", &ring, now(), &mut rand::rng()).unwrap();
        let r2 = store
            .rotate(&id.id, &ring, now(), &mut rand::rng())
            .unwrap();
        assert_eq!(r2.id, id.id);
        assert_eq!(r2.key_history.len(), 3);
        assert_eq!(r2.key_history[0].status, KeyStatus::Retired);
        assert_eq!(r2.key_history[1].public_key, r1.public_key);
        verify_key_history(&r2).unwrap();
        assert!(
            store.check(&r2, &ring).iter().all(|c| c.ok),
            "{:?}",
            store.check(&r2, &ring)
        );
        assert_eq!(
            store.load_keypair(&r2, &ring).unwrap().public().to_base64(),
            r2.public_key
        );
        // tampering with an endorsement is detected
        let mut forged = r2.clone();
        forged.key_history[2].endorsement = forged.key_history[1].endorsement.clone();
        assert!(verify_key_history(&forged).is_err());
        // substituting the current key is detected
        let mut swapped = r2.clone();
        swapped.public_key = KeyPair::from_seed(&[3; 32]).public().to_base64();
        assert!(verify_key_history(&swapped).is_err());
    }

    #[test]
    fn interrupted_rotation_rolls_back_or_forward() {
        let (_d, store, ring) = setup();
        let id = store
            .create("x", &[], &ring, now(), &mut rand::rng())
            .unwrap();
        let dir = store.dir_of(&id.id);
        // Crash after staging, before commit: a stray .next is discarded.
        let stray = ring.seal(&[8; 32], "OTHER", &mut rand::rng()).unwrap();
        fs::write(
            dir.join("private.key.next"),
            serde_json::to_vec(&stray).unwrap(),
        )
        .unwrap();
        let kp = store.load_keypair(&id, &ring).unwrap();
        assert_eq!(kp.public().to_base64(), id.public_key);
        assert!(!dir.join("private.key.next").exists());
        // Crash after commit: identity.json names the new key, private.key is still old.
        let rotated = store.rotate("x", &ring, now(), &mut rand::rng()).unwrap();
        let committed_json = fs::read(dir.join("identity.json")).unwrap();
        fs::rename(dir.join("private.key"), dir.join("private.key.next")).unwrap();
        let old_sealed = ring
            .seal(&[1; 32], &id.public_key, &mut rand::rng())
            .unwrap();
        fs::write(
            dir.join("private.key"),
            serde_json::to_vec(&old_sealed).unwrap(),
        )
        .unwrap();
        fs::set_permissions(dir.join("private.key"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(
            dir.join("public.key"),
            id.current_key().unwrap().to_pem().unwrap(),
        )
        .unwrap();
        assert_eq!(fs::read(dir.join("identity.json")).unwrap(), committed_json);
        let kp = store.load_keypair(&rotated, &ring).unwrap();
        assert_eq!(kp.public().to_base64(), rotated.public_key);
        assert!(store.check(&rotated, &ring).iter().all(|c| c.ok));
    }

    #[test]
    fn revocation_is_final_and_destroys_the_private_key() {
        let (_d, store, ring) = setup();
        let id = store
            .create("v", &[], &ring, now(), &mut rand::rng())
            .unwrap();
        let r = store.revoke("v", Some("compromised"), now()).unwrap();
        assert_eq!(r.status, Status::Revoked);
        assert!(!store.dir_of(&id.id).join("private.key").exists());
        assert!(matches!(
            store.load_keypair(&r, &ring),
            Err(Error::State(_))
        ));
        assert!(store.rotate("v", &ring, now(), &mut rand::rng()).is_err());
        assert!(store.revoke("v", None, now()).is_err());
        assert!(store.check(&r, &ring).iter().all(|c| c.ok));
    }

    #[test]
    fn loose_permissions_are_refused() {
        let (_d, store, ring) = setup();
        let id = store
            .create("p", &[], &ring, now(), &mut rand::rng())
            .unwrap();
        let dir = store.dir_of(&id.id);
        fs::set_permissions(dir.join("private.key"), fs::Permissions::from_mode(0o644)).unwrap();
        let e = store.load_keypair(&id, &ring).unwrap_err();
        assert!(matches!(e, Error::InsecurePermissions { .. }), "{e}");
        fs::set_permissions(dir.join("private.key"), fs::Permissions::from_mode(0o600)).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o750)).unwrap();
        assert!(matches!(
            store.load_keypair(&id, &ring),
            Err(Error::InsecurePermissions { .. })
        ));
    }

    #[test]
    fn passphrase_sealed_identity_needs_the_passphrase() {
        let (_d, store, _) = setup();
        let fast = KdfParams {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        };
        let with = Keyring::new(store.core_dir(), Some("s3cret pass".into()))
            .with_kdf(fast)
            .unwrap();
        let id = store
            .create("pp", &[], &with, now(), &mut rand::rng())
            .unwrap();
        assert!(store.load_keypair(&id, &with).is_ok());
        let without = Keyring::new(store.core_dir(), None);
        assert!(
            store
                .load_keypair(&id, &without)
                .unwrap_err()
                .to_string()
                .contains("OPENA2A_PASSPHRASE")
        );
        let wrong = Keyring::new(store.core_dir(), Some("nope".into()));
        assert!(matches!(
            store.load_keypair(&id, &wrong),
            Err(Error::Decrypt { .. })
        ));
    }

    #[test]
    fn find_by_name_or_id_and_broken_entries_are_reported() {
        let (_d, store, ring) = setup();
        let a = store
            .create("a", &[], &ring, now(), &mut rand::rng())
            .unwrap();
        assert_eq!(store.find("a").unwrap().id, a.id);
        assert_eq!(store.find(&a.id).unwrap().name, "a");
        assert!(matches!(store.find("zzz"), Err(Error::NotFound { .. })));
        fs::create_dir(store.identities_dir().join("aim_broken")).unwrap();
        fs::write(
            store.identities_dir().join("aim_broken/identity.json"),
            b"{not json",
        )
        .unwrap();
        let (ok, bad) = store.list().unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(bad.len(), 1);
    }

    #[test]
    fn node_key_is_stable() {
        let (_d, store, ring) = setup();
        let a = store.node_key(&ring, &mut rand::rng()).unwrap().public();
        let b = store.node_key(&ring, &mut rand::rng()).unwrap().public();
        assert_eq!(a, b);
    }
}
