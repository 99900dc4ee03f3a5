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
//! - **Incremental verification** ([`ChainStates`]): before it signs, the checkpointer verifies
//!   the entries appended since the last verified size (hashes, `seq`, links, and that the
//!   verified entries' Merkle root equals the head's) and signs exactly the tree it verified — it
//!   never signs a tree it did not verify. The verifier state (O(log n) per organization) stays
//!   in memory; a process start verifies every chain from 0 once in the background
//!   (the first thing [`spawn_checkpointer`] does). [`AppState::chain_intact`] reports the result (`None`
//!   until a chain was verified once); a chain found broken stays broken for the life of the
//!   process. Entries already verified are not re-read, so a later edit of such a row is found
//!   by the next process start or by `GET /api/v1/audit/verify` (full pass), not here.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use aim_core::audit::{ChainVerifier, Checkpoint};
use aim_store::{OrgKeyRow, StoredCheckpoint, audit_chain};
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::error::{ApiError, Error};
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

/// Rows read per page when verifying.
const VERIFY_PAGE: u32 = 1000;

/// Entries verified between two yields to the runtime.
const YIELD_EVERY: usize = 64;

const UNKNOWN: u8 = 0;
const INTACT: u8 = 1;
const BROKEN: u8 = 2;

/// One organization's verification state.
struct OrgChain {
    /// [`UNKNOWN`] until the first verification, then [`INTACT`] or [`BROKEN`] (final).
    intact: AtomicU8,
    /// The verifier over the prefix verified so far; one verification at a time per chain.
    verifier: Mutex<ChainVerifier>,
}

/// Incremental verifiers of the organizations' chains (see the module docs).
#[derive(Default)]
pub struct ChainStates {
    orgs: std::sync::Mutex<HashMap<Uuid, Arc<OrgChain>>>,
    /// Audit rows read by verification since the process started (observability and tests).
    rows_read: AtomicU64,
}

impl ChainStates {
    fn org(&self, org_id: Uuid) -> Arc<OrgChain> {
        let mut orgs = self.orgs.lock().unwrap_or_else(|p| p.into_inner());
        orgs.entry(org_id)
            .or_insert_with(|| {
                Arc::new(OrgChain {
                    intact: AtomicU8::new(UNKNOWN),
                    verifier: Mutex::new(ChainVerifier::new().strict(true)),
                })
            })
            .clone()
    }

    /// Whether the organization's chain verified up to its last verified size: `None` until it
    /// was verified once in this process.
    pub fn chain_intact(&self, org_id: Uuid) -> Option<bool> {
        let orgs = self.orgs.lock().unwrap_or_else(|p| p.into_inner());
        match orgs.get(&org_id)?.intact.load(Ordering::Acquire) {
            INTACT => Some(true),
            BROKEN => Some(false),
            _ => None,
        }
    }

    /// Audit rows read by verification since the process started.
    pub fn rows_read(&self) -> u64 {
        self.rows_read.load(Ordering::Relaxed)
    }
}

/// A verified prefix of a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub size: u64,
    pub root: [u8; 32],
}

impl AppState {
    /// Whether the organization's chain verified (see [`ChainStates::chain_intact`]).
    pub fn chain_intact(&self, org_id: Uuid) -> Option<bool> {
        self.chains.chain_intact(org_id)
    }

    /// Verifies the organization's entries appended since the last verified size, up to the
    /// head read now. `Some` with the verified tree when the chain is intact (its size and root
    /// are the head's), `None` when it is broken (then forever, in this process).
    pub async fn verify_chain(&self, org_id: Uuid) -> Result<Option<Verified>, Error> {
        let org = self.chains.org(org_id);
        let mut v = org.verifier.lock().await;
        if org.intact.load(Ordering::Acquire) == BROKEN {
            return Ok(None);
        }
        let head = self.store.audit_head(org_id).await?;
        let mut broken = false;
        while !broken && v.size() < head.size {
            let rows = self
                .store
                .list_audit_chain(org_id, v.size(), VERIFY_PAGE)
                .await?;
            self.chains
                .rows_read
                .fetch_add(rows.len() as u64, Ordering::Relaxed);
            if rows.is_empty() {
                break;
            }
            for (i, r) in rows.iter().enumerate() {
                // Entries committed after the head was read are for the next round.
                if r.seq.is_some_and(|s| s >= 0 && s as u64 >= head.size) {
                    break;
                }
                // A page is ~10–20 ms of hashing: give the runtime's worker back regularly so
                // that requests queued on it are not held for the whole page.
                if i > 0 && i % YIELD_EVERY == 0 {
                    tokio::task::yield_now().await;
                }
                let pushed = v.push_digest(audit_chain::digest_of_row(r), false);
                if let Err(p) = pushed {
                    tracing::error!(org = %org_id, seq = ?p.seq, kind = ?p.kind, problem = %p.message,
                        "audit chain does not verify");
                    broken = true;
                    break;
                }
                if v.size() == head.size {
                    break;
                }
            }
        }
        if !broken && (v.size() != head.size || v.root() != head.root) {
            tracing::error!(org = %org_id, verified = v.size(), head = head.size,
                "audit chain does not match its head (entries removed or the head rewritten)");
            broken = true;
        }
        if broken {
            org.intact.store(BROKEN, Ordering::Release);
            return Ok(None);
        }
        org.intact.store(INTACT, Ordering::Release);
        Ok(Some(Verified {
            size: v.size(),
            root: v.root(),
        }))
    }

    /// Verifies every organization's chain from the last verified size (from 0 after a start).
    /// Returns how many chains were verified.
    pub async fn verify_all_chains(&self) -> Result<usize, Error> {
        let mut after = None;
        let mut n = 0;
        loop {
            let orgs = self.store.list_audit_chain_orgs(after, 1000).await?;
            for org in &orgs {
                self.verify_chain(*org).await?;
                n += 1;
            }
            match orgs.last() {
                Some(last) if orgs.len() == 1000 => after = Some(*last),
                _ => return Ok(n),
            }
        }
    }

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
    ///
    /// The tree signed is the one [`AppState::verify_chain`] just verified; a chain that does
    /// not verify gets no checkpoint (409 `audit_chain_broken`).
    pub async fn audit_checkpoint(&self, org_id: Uuid) -> Result<Checkpoint, Error> {
        let Some(head) = self.verify_chain(org_id).await? else {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "audit_chain_broken",
                "the organization's audit chain does not verify, so no checkpoint is signed; \
                 GET /api/v1/audit/verify reports the first problem",
            )
            .into());
        };
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
        let mut signed = 0;
        for org in &due {
            match self.audit_checkpoint(*org).await {
                Ok(_) => signed += 1,
                // Logged by the verifier; other chains are still checkpointed.
                Err(Error::Api(e)) if e.code == "audit_chain_broken" => {}
                Err(e) => return Err(e),
            }
        }
        Ok(signed)
    }
}

/// The background checkpointer: first verifies every chain from 0 (the start-up verification),
/// then ticks once per second.
pub fn spawn_checkpointer(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        match state.verify_all_chains().await {
            Ok(n) => tracing::info!(chains = n, "audit chains verified at start-up"),
            Err(e) => tracing::warn!(error = %e, "start-up audit chain verification failed"),
        }
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            if let Err(e) = state.checkpoint_due_chains().await {
                tracing::warn!(error = %e, "audit checkpoint failed");
            }
        }
    })
}
