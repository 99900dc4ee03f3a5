//! How a server audit record becomes an entry of its organization's hash chain, and how the
//! Merkle subtrees that close with it are computed. Pure: the SQL lives in [`crate::sql`].
//!
//! Every rule (canonical bytes, entry hash, leaf hash, node hash, proofs) is `aim_core::audit`'s;
//! this module only maps columns to an [`Entry`]:
//!
//! | entry member | from |
//! |---|---|
//! | `seq` | position in the organization's chain (gapless, from 0) |
//! | `time` | `at` (Unix ms) as RFC 3339 UTC with milliseconds |
//! | `eventType`, `actor`, `subject` | the columns of the same name |
//! | `details` | `{"clientAddr": client_addr or null, "orgId": org id or null, "payload": payload}` |
//! | `prevHash`, `hash` | hex of the 32-byte columns |
//!
//! Invariants: one chain per organization; system events (no organization) form the chain of
//! [`SYSTEM_CHAIN`] (the nil UUID), stored with that `org_id` and shown with `orgId: null`.

use aim_core::audit::Entry;
use aim_core::audit::chain::GENESIS_PREV_HASH;
use aim_core::audit::merkle::{self, Frontier, Hash, SubtreeId};
use uuid::Uuid;

use crate::model::{AuditRecord, AuditRow};
use crate::{Error, Result};

/// Chain id of events that belong to no organization.
pub const SYSTEM_CHAIN: Uuid = Uuid::nil();

/// The chain an audit record is appended to.
pub fn chain_of(org_id: Option<Uuid>) -> Uuid {
    org_id.unwrap_or(SYSTEM_CHAIN)
}

/// The state of one chain as kept in `audit_heads`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// Number of entries.
    pub size: u64,
    /// `hash` of the last entry (all zeros when empty, the genesis `prevHash`).
    pub head_hash: Hash,
    /// Merkle frontier after `size` leaves.
    pub frontier: Frontier,
}

impl ChainHead {
    pub fn empty() -> Self {
        ChainHead {
            size: 0,
            head_hash: [0; 32],
            frontier: Frontier::new(),
        }
    }

    /// Rebuilds a head from its columns.
    pub fn from_columns(size: i64, head_hash: &[u8], frontier: &[u8]) -> Result<Self> {
        let size = u64::try_from(size).map_err(|_| corrupt("negative chain size"))?;
        let head_hash: Hash = head_hash
            .try_into()
            .map_err(|_| corrupt("head hash is not 32 bytes"))?;
        if !frontier.len().is_multiple_of(32) {
            return Err(corrupt("frontier is not a multiple of 32 bytes"));
        }
        let nodes = frontier
            .chunks_exact(32)
            .map(|c| c.try_into().expect("32-byte chunk"))
            .collect();
        let frontier =
            Frontier::from_parts(size, nodes).map_err(|e| corrupt(&format!("frontier: {e}")))?;
        Ok(ChainHead {
            size,
            head_hash,
            frontier,
        })
    }

    /// The frontier as one column value.
    pub fn frontier_bytes(&self) -> Vec<u8> {
        self.frontier.nodes().concat()
    }

    /// The Merkle root of the chain.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }
}

fn corrupt(what: &str) -> Error {
    Error::Corrupt(format!("audit chain: {what}"))
}

/// The `details` member of the entry of a record.
pub fn details(
    org_id: Option<Uuid>,
    payload: &serde_json::Value,
    client_addr: Option<&str>,
) -> serde_json::Value {
    let org = org_id.filter(|o| !o.is_nil());
    serde_json::json!({ "clientAddr": client_addr, "orgId": org, "payload": payload })
}

fn time_of(at: i64) -> Result<String> {
    chrono::DateTime::from_timestamp_millis(at)
        .map(aim_core::clock::rfc3339_millis)
        .ok_or_else(|| Error::Invalid(format!("audit time {at} ms is out of range")))
}

/// The entry a record becomes at position `seq` after an entry whose hash is `prev`.
pub fn seal(rec: &AuditRecord, seq: u64, prev: &Hash) -> Result<Entry> {
    let mut e = Entry {
        seq,
        time: time_of(rec.at)?,
        event_type: rec.event_type.clone(),
        actor: Some(rec.actor.clone()),
        subject: rec.subject.clone(),
        details: details(rec.org_id, &rec.payload, rec.client_addr.as_deref()),
        prev_hash: if seq == 0 {
            GENESIS_PREV_HASH.to_string()
        } else {
            hex::encode(prev)
        },
        hash: String::new(),
    };
    e.hash = e
        .expected_hash()
        .map_err(|err| Error::Invalid(format!("audit record cannot be hashed: {err}")))?;
    Ok(e)
}

/// The entry a stored row claims to be (stored `seq`, `prevHash`, `hash`; everything else
/// recomputed from the columns), for verification. A row that cannot even be read as an entry
/// (missing chain columns, payload not JSON) is reported as the reason string.
pub fn entry_of_row(row: &AuditRow) -> std::result::Result<Entry, String> {
    let seq = row
        .seq
        .and_then(|s| u64::try_from(s).ok())
        .ok_or("row has no sequence number")?;
    let hex32 = |v: &Option<Vec<u8>>, what: &str| match v {
        Some(b) if b.len() == 32 => Ok(hex::encode(b)),
        _ => Err(format!("row has no 32-byte {what}")),
    };
    let payload: serde_json::Value =
        serde_json::from_str(&row.payload).map_err(|e| format!("payload is not JSON: {e}"))?;
    Ok(Entry {
        seq,
        time: time_of(row.at).map_err(|e| e.to_string())?,
        event_type: row.event_type.clone(),
        actor: Some(row.actor.clone()),
        subject: row.subject.clone(),
        details: details(row.org_id, &payload, row.client_addr.as_deref()),
        prev_hash: hex32(&row.prev_hash, "prevHash")?,
        hash: hex32(&row.hash, "hash")?,
    })
}

/// What appending a batch to one chain writes.
#[derive(Debug)]
pub struct Planned {
    /// `(record index in the batch, entry)`, in chain order.
    pub entries: Vec<(usize, Entry, Hash)>,
    /// Perfect subtrees closed by the batch (level 0 = leaves).
    pub nodes: Vec<(SubtreeId, Hash)>,
    pub head: ChainHead,
}

/// Appends `records` (indices into the caller's batch) to `head`, in order.
pub fn plan(mut head: ChainHead, batch: &[AuditRecord], indices: &[usize]) -> Result<Planned> {
    let mut entries = Vec::with_capacity(indices.len());
    let mut nodes = Vec::with_capacity(indices.len() * 2);
    for &i in indices {
        let e = seal(&batch[i], head.size, &head.head_hash)?;
        let leaf = e.leaf_hash().map_err(|err| corrupt(&err.to_string()))?;
        nodes.extend(
            merkle::closed_subtrees(&head.frontier, leaf)
                .ok_or_else(|| corrupt("frontier size differs from chain size"))?,
        );
        head.frontier.push(leaf);
        let raw: Hash = hex::decode(&e.hash)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| corrupt("entry hash is not hex"))?;
        head.head_hash = raw;
        head.size += 1;
        entries.push((i, e, raw));
    }
    Ok(Planned {
        entries,
        nodes,
        head,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use aim_core::audit::ChainVerifier;

    fn rec(i: i64) -> AuditRecord {
        AuditRecord {
            org_id: Some(Uuid::from_u128(7)),
            at: 1_780_000_000_000 + i,
            event_type: "auth.login.succeeded".into(),
            actor: format!("user:{i}"),
            subject: None,
            payload: serde_json::json!({ "n": i }),
            client_addr: Some("127.0.0.1".into()),
        }
    }

    #[test]
    fn planned_entries_verify_with_aim_core_and_resume_from_a_head() {
        let batch: Vec<AuditRecord> = (0..13).map(rec).collect();
        let first = plan(ChainHead::empty(), &batch, &[0, 1, 2, 3, 4]).unwrap();
        let cols = ChainHead::from_columns(
            first.head.size as i64,
            &first.head.head_hash,
            &first.head.frontier_bytes(),
        )
        .unwrap();
        assert_eq!(cols, first.head);
        let rest: Vec<usize> = (5..13).collect();
        let second = plan(cols, &batch, &rest).unwrap();
        let mut v = ChainVerifier::new();
        for (_, e, _) in first.entries.iter().chain(&second.entries) {
            v.push_entry(e).unwrap();
        }
        let summary = v.finish();
        assert_eq!(summary.size, 13);
        assert_eq!(summary.root, second.head.root());
        // Every leaf and every closed subtree was produced exactly once.
        let leaves = first
            .nodes
            .iter()
            .chain(&second.nodes)
            .filter(|((l, _), _)| *l == 0)
            .count();
        assert_eq!(leaves, 13);
        assert!(
            ChainHead::from_columns(3, &[0; 32], &[0; 32]).is_err(),
            "3 needs two roots"
        );
    }
}
