//! The organization log key and signed checkpoints of the verifiable audit log
//! (`docs/server-audit.md`).
//!
//! - Each organization has one Ed25519 **log key**, created on first use, stored in `org_keys`
//!   with the private half sealed by the server key ring (AAD `org_key:<org id>:<key id>`, so a
//!   sealed key moved to another organization's row does not open). Replicas racing to create it
//!   converge on the first one stored. [`AppState::org_signing_key`] is the entry point other
//!   features use to sign on behalf of an organization (e.g. ATX credentials).
//! - A **checkpoint** is `aim_core::audit::Checkpoint` over `(tree size, root)` of the
//!   organization's chain, signed with that key. One is made when a chain has
//!   `audit_checkpoint_every` entries not covered by a checkpoint, or when entries were added and
//!   the newest checkpoint is `audit_checkpoint_interval_secs` old (checked by a background task
//!   every second), and on demand (`GET /api/v1/audit/checkpoint`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aim_core::audit::Checkpoint;
use aim_store::{OrgKeyRow, StoredCheckpoint};
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::error::Error;
use crate::secrets::random_bytes;
use crate::state::AppState;

/// An organization's log signing key, opened.
pub struct OrgSigningKey {
    pub org_id: Uuid,
    /// `org-` + first 16 hex digits of SHA-256(public key).
    pub key_id: String,
    pub signing: SigningKey,
    pub public: VerifyingKey,
}

impl std::fmt::Debug for OrgSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrgSigningKey")
            .field("org_id", &self.org_id)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// Cache of opened organization keys (keys never change once created, so the cache needs no
/// invalidation).
#[derive(Default)]
pub struct OrgKeys {
    cache: Mutex<HashMap<Uuid, Arc<OrgSigningKey>>>,
}

fn aad(org_id: Uuid, key_id: &str) -> String {
    format!("org_key:{org_id}:{key_id}")
}

fn open_row(state: &AppState, row: &OrgKeyRow) -> Result<OrgSigningKey, Error> {
    let seed = state
        .ring
        .open(&aad(row.org_id, &row.key_id), &row.private_sealed)?;
    let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
        seed.as_slice()
            .try_into()
            .map_err(|_| Error::Crypto("organization log key is not 32 bytes".into()))?,
    );
    let signing = SigningKey::from_bytes(&seed);
    let public = signing.verifying_key();
    if public.as_bytes().as_slice() != row.public_key.as_slice() {
        return Err(Error::Crypto(
            "organization log key does not match its stored public key".into(),
        ));
    }
    Ok(OrgSigningKey {
        org_id: row.org_id,
        key_id: row.key_id.clone(),
        signing,
        public,
    })
}

impl AppState {
    /// The organization's log signing key, created (and stored sealed) on first use.
    pub async fn org_signing_key(&self, org_id: Uuid) -> Result<Arc<OrgSigningKey>, Error> {
        let mut cache = self.org_keys.cache.lock().await;
        if let Some(k) = cache.get(&org_id) {
            return Ok(k.clone());
        }
        let row = match self.store.get_org_key(org_id).await? {
            Some(row) => row,
            None => {
                let seed = random_bytes::<32>();
                let public = SigningKey::from_bytes(&seed).verifying_key();
                let key_id = format!(
                    "org-{}",
                    &hex::encode(Sha256::digest(public.as_bytes()))[..16]
                );
                let row = OrgKeyRow {
                    org_id,
                    private_sealed: self.ring.seal(&aad(org_id, &key_id), &seed[..])?,
                    key_id,
                    public_key: public.as_bytes().to_vec(),
                    created_at: self.now_ms(),
                };
                self.store.insert_org_key(&row).await?
            }
        };
        let key = Arc::new(open_row(self, &row)?);
        cache.insert(org_id, key.clone());
        Ok(key)
    }

    /// A checkpoint covering the organization's whole log now: the stored newest one when it
    /// already does, else a new one (signed and stored).
    pub async fn audit_checkpoint(&self, org_id: Uuid) -> Result<Checkpoint, Error> {
        let head = self.store.audit_head(org_id).await?;
        if let Some(latest) = self.store.latest_checkpoint(org_id).await?
            && latest.tree_size as u64 == head.size
        {
            return serde_json::from_str(&latest.body)
                .map_err(|e| Error::Crypto(format!("stored checkpoint is not valid JSON: {e}")));
        }
        let key = self.org_signing_key(org_id).await?;
        let cp = Checkpoint::sign(
            &key.signing,
            &key.key_id,
            head.size,
            &head.root,
            self.clock.now(),
        );
        let body = serde_json::to_string(&cp)
            .map_err(|e| Error::Crypto(format!("checkpoint serialization: {e}")))?;
        self.store
            .insert_checkpoint(&StoredCheckpoint {
                org_id,
                tree_size: i64::try_from(head.size).unwrap_or(i64::MAX),
                created_at: self.now_ms(),
                body,
            })
            .await?;
        Ok(cp)
    }

    /// Signs a checkpoint for every chain that is due (see the module docs). Returns how many.
    pub async fn checkpoint_due_chains(&self) -> Result<usize, Error> {
        let every = self.config.audit_checkpoint_every;
        let interval_ms = i64::try_from(
            self.config
                .audit_checkpoint_interval_secs
                .saturating_mul(1000),
        )
        .unwrap_or(i64::MAX);
        let due = self
            .store
            .audit_chains_due(every, self.now_ms().saturating_sub(interval_ms))
            .await?;
        for org in &due {
            self.audit_checkpoint(*org).await?;
        }
        Ok(due.len())
    }
}

/// The background checkpointer (one tick per second).
pub fn spawn_checkpointer(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            if let Err(e) = state.checkpoint_due_chains().await {
                tracing::warn!(error = %e, "audit checkpoint failed");
            }
        }
    })
}
