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
//! - **One read for verification and monitoring** (`VerifiedTail`): the security monitor has
//!   the verifier verify up to the end of its next page ([`AppState::verify_ahead`]) and takes
//!   the rows verification read ([`AppState::take_verified_rows`]), so each entry is read from
//!   the store once for both. Only verified rows at or after the monitor's cursor are held.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use aim_core::audit::{ChainVerifier, Checkpoint};
use aim_store::{AuditRow, OrgKeyRow, StoredCheckpoint, audit_chain};
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
    /// Rows verified and not yet handed to the security monitor (see [`VerifiedTail`]).
    tail: std::sync::Mutex<VerifiedTail>,
    /// Rows handed to the security monitor from `tail` since the process started.
    rows_handed: AtomicU64,
}

/// At most this many verified rows wait for the security monitor, over all organizations
/// (about 1 KB each: ~16 MB at most, reached only when verification runs a second or more ahead
/// of the monitor at full load).
pub const TAIL_MAX_ROWS: usize = 16_384;

/// Verified rows waiting for the security monitor, so that each audit entry is read from the
/// store once for verification and analysis together instead of once for each.
///
/// Invariants:
/// - every row held passed [`AppState::verify_chain`]'s checks (hash, `seq`, link) when it was
///   read; per organization the rows are contiguous in `seq`, ascending;
/// - at most [`TAIL_MAX_ROWS`] rows in total: an organization's oldest rows are dropped first,
///   and other organizations' rows are dropped when one organization needs the room;
/// - a row is handed out at most once ([`AppState::take_verified_rows`]); rows the monitor no
///   longer needs (below its cursor, e.g. analysed by another replica) are dropped when it asks.
#[derive(Default)]
struct VerifiedTail {
    orgs: HashMap<Uuid, std::collections::VecDeque<AuditRow>>,
    rows: usize,
    /// Per organization, the first `seq` the monitor has not taken yet (its cursor when it last
    /// asked). Rows below it, and rows of organizations the monitor has not asked about (e.g.
    /// the history verified at start-up), are not kept.
    wanted: HashMap<Uuid, i64>,
}

impl VerifiedTail {
    /// Appends `rows` (verified, contiguous, ascending) to the organization's tail: starts it
    /// anew when they do not follow its last row.
    fn push(&mut self, org_id: Uuid, rows: Vec<AuditRow>) {
        let (Some(first), Some(&wanted)) =
            (rows.first().and_then(|r| r.seq), self.wanted.get(&org_id))
        else {
            return;
        };
        // Rows the monitor already has are not kept, and only the newest TAIL_MAX_ROWS can be.
        let below_wanted = usize::try_from(wanted.saturating_sub(first)).unwrap_or(0);
        let skip = below_wanted.max(rows.len().saturating_sub(TAIL_MAX_ROWS));
        if skip >= rows.len() {
            return;
        }
        let first = first + skip as i64;
        if self.rows + (rows.len() - skip) > TAIL_MAX_ROWS {
            // Other organizations' rows go first (they are read from the store when needed).
            let others: usize = self
                .orgs
                .iter()
                .filter(|(o, _)| **o != org_id)
                .map(|(_, t)| t.len())
                .sum();
            self.orgs.retain(|o, _| *o == org_id);
            self.rows -= others;
        }
        let tail = self.orgs.entry(org_id).or_default();
        let before = tail.len();
        if tail.back().and_then(|r| r.seq) != Some(first - 1) {
            tail.clear();
        }
        tail.extend(rows.into_iter().skip(skip));
        self.rows = self.rows - before + tail.len();
        while self.rows > TAIL_MAX_ROWS && tail.pop_front().is_some() {
            self.rows -= 1;
        }
    }

    /// Hands out up to `max` rows of the organization's tail from `seq = from` on, each below
    /// `below`; drops the rows before `from`. Empty when the tail does not hold `from`.
    fn take(&mut self, org_id: Uuid, from: i64, max: usize, below: i64) -> Vec<AuditRow> {
        self.want(org_id, from);
        let Some(tail) = self.orgs.get_mut(&org_id) else {
            return Vec::new();
        };
        let before = tail.len();
        while tail.front().and_then(|r| r.seq).is_some_and(|s| s < from) {
            tail.pop_front();
        }
        let mut out = Vec::new();
        if tail.front().and_then(|r| r.seq) == Some(from) {
            while out.len() < max && tail.front().and_then(|r| r.seq).is_some_and(|s| s < below) {
                out.extend(tail.pop_front());
            }
        }
        self.rows -= before - tail.len();
        if tail.is_empty() {
            self.orgs.remove(&org_id);
        }
        if let Some(last) = out.last().and_then(|r| r.seq) {
            self.want(org_id, last + 1);
        }
        out
    }

    /// Records that the monitor's cursor for the organization is at `from`.
    fn want(&mut self, org_id: Uuid, from: i64) {
        self.wanted.insert(org_id, from);
    }
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

    /// Verified rows handed to the security monitor (which then did not read them from the
    /// store) since the process started.
    pub fn rows_handed(&self) -> u64 {
        self.rows_handed.load(Ordering::Relaxed)
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
        self.verify_locked(org_id, &org, &mut v, u64::MAX).await
    }

    /// Verifies the organization's entries up to `upto` (or the head, if lower) for the security
    /// monitor, whose cursor is at `from`, so that the rows it analyses next are read once for
    /// both ([`AppState::take_verified_rows`]). Does nothing while another verification runs
    /// (e.g. the start-up pass) or when the verifier is more than `upto - from` entries behind
    /// `from` (the monitor does not wait for a long catch-up; it reads the store instead).
    pub async fn verify_ahead(&self, org_id: Uuid, from: u64, upto: u64) -> Result<(), Error> {
        let org = self.chains.org(org_id);
        self.chains
            .tail
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .want(org_id, i64::try_from(from).unwrap_or(i64::MAX));
        let Ok(mut v) = org.verifier.try_lock() else {
            return Ok(());
        };
        if v.size().saturating_add(upto.saturating_sub(from)) < from || v.size() >= upto {
            return Ok(());
        }
        self.verify_locked(org_id, &org, &mut v, upto).await?;
        Ok(())
    }

    /// Up to `max` verified rows of the organization from `seq = from` on, each below `below`,
    /// that verification read and kept for the monitor (see `VerifiedTail`); each is handed
    /// out once. Empty when they are not held (the caller reads the store).
    pub fn take_verified_rows(
        &self,
        org_id: Uuid,
        from: u64,
        max: u32,
        below: i64,
    ) -> Vec<AuditRow> {
        let rows = self
            .chains
            .tail
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take(
                org_id,
                i64::try_from(from).unwrap_or(i64::MAX),
                max as usize,
                below,
            );
        self.chains
            .rows_handed
            .fetch_add(rows.len() as u64, Ordering::Relaxed);
        rows
    }

    /// [`AppState::verify_chain`] up to `upto` (the head when lower), with the verifier locked.
    /// The head's root is compared only when the head is reached; a prefix that does not
    /// verify, or entries missing below the target, mark the chain broken.
    async fn verify_locked(
        &self,
        org_id: Uuid,
        org: &OrgChain,
        v: &mut ChainVerifier,
        upto: u64,
    ) -> Result<Option<Verified>, Error> {
        if org.intact.load(Ordering::Acquire) == BROKEN {
            return Ok(None);
        }
        let head = self.store.audit_head(org_id).await?;
        let target = head.size.min(upto);
        let mut broken = false;
        while !broken && v.size() < target {
            let limit = u32::try_from((target - v.size()).min(u64::from(VERIFY_PAGE)))
                .unwrap_or(VERIFY_PAGE);
            let mut rows = self.store.list_audit_chain(org_id, v.size(), limit).await?;
            self.chains
                .rows_read
                .fetch_add(rows.len() as u64, Ordering::Relaxed);
            if rows.is_empty() {
                break;
            }
            let mut verified = 0;
            for (i, r) in rows.iter().enumerate() {
                // Entries committed after the head was read are for the next round.
                if r.seq.is_some_and(|s| s >= 0 && s as u64 >= target) {
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
                verified = i + 1;
                if v.size() == target {
                    break;
                }
            }
            rows.truncate(verified);
            if verified == 0 {
                // The next entry is missing below the target (found just below).
                break;
            }
            self.chains
                .tail
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(org_id, rows);
        }
        if !broken && (v.size() != target || (target == head.size && v.root() != head.root)) {
            tracing::error!(org = %org_id, verified = v.size(), head = head.size,
                "audit chain does not match its head (entries removed or the head rewritten)");
            broken = true;
        }
        if broken {
            org.intact.store(BROKEN, Ordering::Release);
            return Ok(None);
        }
        // A prefix's root is not the head's: the chain's state stays as it was.
        if target == head.size {
            org.intact.store(INTACT, Ordering::Release);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(org: Uuid, seqs: std::ops::Range<i64>) -> Vec<AuditRow> {
        seqs.map(|seq| AuditRow {
            id: Uuid::now_v7(),
            org_id: Some(org),
            at: seq,
            event_type: "test".into(),
            actor: "system".into(),
            subject: None,
            payload: "{}".into(),
            client_addr: None,
            seq: Some(seq),
            prev_hash: None,
            hash: None,
        })
        .collect()
    }

    fn seqs(rows: &[AuditRow]) -> Vec<i64> {
        rows.iter().map(|r| r.seq.unwrap()).collect()
    }

    #[test]
    fn keeps_only_rows_the_monitor_asked_for() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let mut t = VerifiedTail::default();
        // Start-up verification of history nobody asked for: nothing kept.
        t.push(a, rows(a, 0..100));
        assert_eq!(t.rows, 0);
        // The monitor is at 50: rows below it are not kept.
        t.want(a, 50);
        t.push(a, rows(a, 40..60));
        assert_eq!(t.rows, 10);
        t.push(a, rows(a, 60..70));
        // Handed out from the cursor, below the head given, once.
        assert_eq!(seqs(&t.take(a, 50, 100, 65)), (50..65).collect::<Vec<_>>());
        assert_eq!(seqs(&t.take(a, 65, 3, 1000)), vec![65, 66, 67]);
        assert!(
            t.take(a, 65, 100, 1000).is_empty(),
            "65..68 were handed out"
        );
        assert_eq!(t.rows, 2);
        // Another organization: nothing held for it.
        assert!(t.take(b, 0, 100, 1000).is_empty());
        // Rows before the cursor (analysed elsewhere) are dropped when it moves past them.
        assert!(t.take(a, 69, 100, 1000).len() == 1 && t.rows == 0);
        assert!(t.orgs.is_empty(), "an emptied organization holds nothing");
    }

    #[test]
    fn a_gap_restarts_the_tail() {
        let a = Uuid::now_v7();
        let mut t = VerifiedTail::default();
        t.want(a, 0);
        t.push(a, rows(a, 0..10));
        t.push(a, rows(a, 20..25));
        assert_eq!(t.rows, 5);
        assert!(t.take(a, 0, 100, 1000).is_empty(), "0..10 were dropped");
        t.want(a, 20);
        assert_eq!(
            seqs(&t.take(a, 20, 100, 1000)),
            (20..25).collect::<Vec<_>>()
        );
    }

    #[test]
    fn holds_at_most_the_maximum() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let max = TAIL_MAX_ROWS as i64;
        let mut t = VerifiedTail::default();
        t.want(a, 0);
        t.want(b, 0);
        t.push(a, rows(a, 0..max - 10));
        t.push(b, rows(b, 0..10));
        assert_eq!(t.rows, TAIL_MAX_ROWS);
        // One organization needs room: the others' rows go first, then its own oldest.
        t.push(a, rows(a, max - 10..max + 10));
        assert_eq!(t.rows, TAIL_MAX_ROWS);
        assert!(!t.orgs.contains_key(&b));
        assert!(t.take(a, 0, 100, i64::MAX).is_empty(), "0..10 were dropped");
        let held = t.take(a, 10, u32::MAX as usize, i64::MAX);
        assert_eq!(held.len(), TAIL_MAX_ROWS);
        assert_eq!(held.last().unwrap().seq, Some(max + 9));
        // A single push larger than the maximum keeps its newest rows.
        t.push(a, rows(a, max + 10..3 * max));
        assert_eq!(t.rows, TAIL_MAX_ROWS);
        assert_eq!(t.orgs[&a].front().unwrap().seq, Some(2 * max));
    }
}
