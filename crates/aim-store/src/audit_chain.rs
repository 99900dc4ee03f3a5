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

use aim_core::audit::chain::EntryDigest;
use aim_core::audit::merkle::{self, Frontier, Hash, SubtreeId};
use aim_core::audit::{BodyTemplate, Entry};
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

/// What a record hashes to and stores, computed without knowing its chain position: the
/// canonical body with `prevHash`/`seq` open and the payload column. Built on the request's
/// thread ([`crate::DecisionWrite::prepare`]) so that the chain's single writer only fills in
/// the position. Invariant: describes the record it was prepared from, unchanged since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedAudit {
    template: BodyTemplate,
    payload: String,
}

impl PreparedAudit {
    /// Prepares `rec` (canonical JSON of its entry body and of its payload). The payload column
    /// is stored in its RFC 8785 form, so that its entry body can be hashed again (by the
    /// verifiers) without parsing it.
    pub fn of(rec: &AuditRecord) -> Result<Self> {
        let payload = aim_core::canonical::jcs_value_string(&rec.payload)
            .map_err(|e| Error::Invalid(format!("audit payload: {e}")))?;
        let template = template(
            rec.org_id,
            rec.at,
            &rec.event_type,
            &rec.actor,
            &rec.subject,
            rec.client_addr.as_deref(),
            &payload,
            || Ok(rec.payload.clone()),
        )?;
        Ok(PreparedAudit { template, payload })
    }
}

/// The body template of an entry from its columns. `payload` is the column text; when the
/// details it makes are provably canonical (the usual case since payloads are stored in JCS
/// form, see [`PreparedAudit::of`]) they are spliced in without parsing, else `parsed` provides
/// the value for the generic JCS path. Both give the same bytes (`aim_core::audit::BodyTemplate`).
#[allow(clippy::too_many_arguments)]
fn template(
    org_id: Option<Uuid>,
    at: i64,
    event_type: &str,
    actor: &str,
    subject: &Option<String>,
    client_addr: Option<&str>,
    payload: &str,
    parsed: impl FnOnce() -> std::result::Result<serde_json::Value, String>,
) -> Result<BodyTemplate> {
    let hashing =
        |err: aim_core::Error| Error::Invalid(format!("audit record cannot be hashed: {err}"));
    let time = time_of(at)?;
    let actor = Some(actor.to_string());
    let org = org_id.filter(|o| !o.is_nil());
    let client = serde_json::to_string(&client_addr)
        .map_err(|e| Error::Invalid(format!("audit client address: {e}")))?;
    let org = match org {
        Some(o) => format!("\"{o}\""),
        None => "null".to_string(),
    };
    let mut spliced = String::with_capacity(payload.len() + client.len() + org.len() + 40);
    spliced.push_str("{\"clientAddr\":");
    spliced.push_str(&client);
    spliced.push_str(",\"orgId\":");
    spliced.push_str(&org);
    spliced.push_str(",\"payload\":");
    spliced.push_str(payload);
    spliced.push('}');
    if let Some(t) =
        BodyTemplate::from_canonical_details(&time, event_type, &actor, subject, spliced.as_bytes())
            .map_err(hashing)?
    {
        return Ok(t);
    }
    let payload = parsed().map_err(Error::Invalid)?;
    let details = details(org_id, &payload, client_addr);
    BodyTemplate::new(&time, event_type, &actor, subject, &details).map_err(hashing)
}

/// The digest a stored row verifies with (its stored `seq`, `prevHash`, `hash`, and the hash of
/// the entry its columns make), through [`template`]'s fast path when the payload column is
/// canonical. `Err` is the reason the row cannot be read as an entry. Same result as
/// `EntryDigest::of_entry(&entry_of_row(row)?)`.
pub fn digest_of_row(row: &AuditRow) -> std::result::Result<EntryDigest, String> {
    let seq = row
        .seq
        .and_then(|s| u64::try_from(s).ok())
        .ok_or("row has no sequence number")?;
    let raw32 = |v: &Option<Vec<u8>>, what: &str| -> std::result::Result<Hash, String> {
        v.as_deref()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("row has no 32-byte {what}"))
    };
    let prev_hash = raw32(&row.prev_hash, "prevHash")?;
    let stored = raw32(&row.hash, "hash")?;
    let max = aim_core::audit::chain::MAX_SEQ;
    if seq > max {
        return Err(format!("seq {seq} exceeds the maximum {max}"));
    }
    let t = template(
        row.org_id,
        row.at,
        &row.event_type,
        &row.actor,
        &row.subject,
        row.client_addr.as_deref(),
        &row.payload,
        || serde_json::from_str(&row.payload).map_err(|e| format!("payload is not JSON: {e}")),
    )
    .map_err(|e| match e {
        Error::Invalid(reason) => reason,
        other => other.to_string(),
    })?;
    let computed = t.hash(seq, &prev_hash).map_err(|e| e.to_string())?;
    Ok(EntryDigest {
        seq,
        prev_hash,
        stored,
        computed,
    })
}

/// A record queued for its chain, with its [`PreparedAudit`] when the caller made one.
#[derive(Debug, Clone, Copy)]
pub struct ChainRecord<'a> {
    pub rec: &'a AuditRecord,
    pub prepared: Option<&'a PreparedAudit>,
}

impl<'a> ChainRecord<'a> {
    /// A record the writer prepares itself.
    pub fn plain(rec: &'a AuditRecord) -> Self {
        ChainRecord {
            rec,
            prepared: None,
        }
    }
}

/// One entry of a [`Planned`] append.
#[derive(Debug)]
pub struct PlannedEntry {
    /// Index of the record in the caller's batch.
    pub index: usize,
    pub seq: u64,
    /// Raw `prevHash` and `hash`.
    pub prev: Hash,
    pub hash: Hash,
    /// The `payload` column (RFC 8785 JSON of the record's payload).
    pub payload: String,
}

/// What appending a batch to one chain writes.
#[derive(Debug)]
pub struct Planned {
    /// In chain order.
    pub entries: Vec<PlannedEntry>,
    /// Perfect subtrees of [`STORED_MIN_LEVEL`] or more closed by the batch. Smaller subtrees
    /// are not stored: a leaf is `leaf_hash` of its entry's `hash` column, and a subtree below
    /// that level is computed from the (at most 2^(`STORED_MIN_LEVEL` − 1)) entries it covers.
    pub nodes: Vec<(SubtreeId, Hash)>,
    pub head: ChainHead,
}

/// The smallest level of Merkle subtree the append stores (a subtree of 16 leaves). Below it a
/// proof computes subtrees from the entries: at most one aligned block of 16 entries per
/// computed subtree, read in one range of the `(org_id, seq)` index. With every level stored the
/// log wrote about one subtree row per entry; from level 4 up, about one per eight entries
/// (docs/BENCHMARKS.md). Rows of lower levels written before are left in place and not read.
pub const STORED_MIN_LEVEL: u8 = 4;

/// Appends `batch[i]` for each `i` of `indices` to `head`, in order. Records without a
/// [`PreparedAudit`] are prepared here.
pub fn plan(mut head: ChainHead, batch: &[ChainRecord], indices: &[usize]) -> Result<Planned> {
    let mut entries = Vec::with_capacity(indices.len());
    let mut nodes = Vec::with_capacity(indices.len());
    for &i in indices {
        let owned;
        let prepared = match batch[i].prepared {
            Some(p) => p,
            None => {
                owned = PreparedAudit::of(batch[i].rec)?;
                &owned
            }
        };
        let seq = head.size;
        let hash = prepared
            .template
            .hash(seq, &head.head_hash)
            .map_err(|err| Error::Invalid(format!("audit record cannot be hashed: {err}")))?;
        let leaf = merkle::leaf_hash(&hash);
        nodes.extend(
            merkle::closed_subtrees(&head.frontier, leaf)
                .ok_or_else(|| corrupt("frontier size differs from chain size"))?
                .into_iter()
                .filter(|((level, _), _)| *level >= STORED_MIN_LEVEL),
        );
        head.frontier.push(leaf);
        entries.push(PlannedEntry {
            index: i,
            seq,
            prev: head.head_hash,
            hash,
            payload: prepared.payload.clone(),
        });
        head.head_hash = hash;
        head.size += 1;
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
    use aim_core::audit::chain::GENESIS_PREV_HASH;
    use proptest::prelude::*;

    /// The strict path's entry for a record at position `seq` after an entry whose hash is
    /// `prev` (what the planned hashes are checked against).
    fn seal(rec: &AuditRecord, seq: u64, prev: &Hash) -> Result<Entry> {
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

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// A row's digest through the spliced fast path equals the strict one (parse, JCS,
        /// SHA-256) for any payload text, canonical or not, and a prepared record hashes like its
        /// sealed entry.
        #[test]
        fn row_digests_and_prepared_records_match_the_strict_path(
            payload in prop_oneof![
                // serde_json's own output of assorted values (canonical when keys are ASCII and
                // numbers integers)...
                "[a-z\"\\\\é😀\u{1}\n ]{0,6}".prop_map(|k| serde_json::json!({k.clone(): [1, -2, k], "a": {"z": null, "b": 1.5}}).to_string()),
                "[a-z]{0,3}".prop_map(|k| serde_json::json!({"n": 9007199254740993_u64, "m": {k: true}}).to_string()),
                // ...and arbitrary texts (whitespace, duplicate keys, escapes, not JSON at all).
                "[{}\\[\\]\":, a-c0-9.eE\\\\u-]{0,24}",
            ],
            org in prop_oneof![Just(None), Just(Some(Uuid::nil())), Just(Some(Uuid::from_u128(7)))],
            client in proptest::option::of("[ -~]{0,8}"),
            subject in proptest::option::of("[ -~é]{0,8}"),
            seq in 0u64..5,
            prev in any::<[u8; 32]>(),
            stored in any::<[u8; 32]>(),
        ) {
            let row = AuditRow {
                id: Uuid::nil(),
                org_id: org,
                at: 1_780_000_000_123,
                event_type: "agent.action.verified".into(),
                actor: "agent:a\"b".into(),
                subject,
                payload: payload.clone(),
                client_addr: client,
                seq: Some(seq as i64),
                prev_hash: Some(prev.to_vec()),
                hash: Some(stored.to_vec()),
            };
            let strict = entry_of_row(&row).and_then(|e| EntryDigest::of_entry(&e));
            let fast = digest_of_row(&row);
            // Same digest, or the same reason the row is not an entry.
            prop_assert_eq!(strict, fast);
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(&payload) {
                let rec = AuditRecord {
                    org_id: row.org_id,
                    at: row.at,
                    event_type: row.event_type.clone(),
                    actor: row.actor.clone(),
                    subject: row.subject.clone(),
                    payload: value,
                    client_addr: row.client_addr.clone(),
                };
                let p = PreparedAudit::of(&rec).unwrap();
                let prev = if seq == 0 { [0; 32] } else { prev };
                let e = seal(&rec, seq, &prev).unwrap();
                prop_assert_eq!(hex::encode(p.template.hash(seq, &prev).unwrap()), e.hash);
            }
        }
    }

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
    fn payloads_are_stored_in_canonical_form() {
        // serde_json keeps insertion order in this workspace (`preserve_order`): the column must
        // not depend on it.
        let mut r = rec(1);
        r.payload = serde_json::from_str(r#"{"b": 1, "a": {"d": [true], "c": "é"}}"#).unwrap();
        assert_eq!(
            PreparedAudit::of(&r).unwrap().payload,
            r#"{"a":{"c":"é","d":[true]},"b":1}"#
        );
    }

    #[test]
    fn planned_entries_verify_with_aim_core_and_resume_from_a_head() {
        let recs: Vec<AuditRecord> = (0..40).map(rec).collect();
        // Odd records come prepared (as from a request thread), even ones are prepared by `plan`.
        let prepared: Vec<PreparedAudit> =
            recs.iter().map(|r| PreparedAudit::of(r).unwrap()).collect();
        let batch: Vec<ChainRecord> = recs
            .iter()
            .zip(&prepared)
            .enumerate()
            .map(|(i, (rec, p))| ChainRecord {
                rec,
                prepared: (i % 2 == 1).then_some(p),
            })
            .collect();
        let first = plan(ChainHead::empty(), &batch, &[0, 1, 2, 3, 4]).unwrap();
        let cols = ChainHead::from_columns(
            first.head.size as i64,
            &first.head.head_hash,
            &first.head.frontier_bytes(),
        )
        .unwrap();
        assert_eq!(cols, first.head);
        let rest: Vec<usize> = (5..40).collect();
        let second = plan(cols, &batch, &rest).unwrap();
        let mut v = ChainVerifier::new();
        let mut leaves = Vec::new();
        for p in first.entries.iter().chain(&second.entries) {
            leaves.push(merkle::leaf_hash(&p.hash));
            // The entry the strict path seals at that position is the one planned.
            let e = seal(&recs[p.index], p.seq, &p.prev).unwrap();
            assert_eq!(e.hash, hex::encode(p.hash));
            assert_eq!(
                p.payload,
                aim_core::canonical::jcs_string(&recs[p.index].payload).unwrap()
            );
            v.push_entry(&e).unwrap();
        }
        let summary = v.finish();
        assert_eq!(summary.size, 40);
        assert_eq!(summary.root, second.head.root());
        // Every closed subtree of 16 leaves or more was produced exactly once, with its hash
        // (40 leaves close two of 16 and one of 32), and nothing smaller: those are computed
        // from the entries.
        let mut closed: Vec<(SubtreeId, Hash)> =
            first.nodes.iter().chain(&second.nodes).copied().collect();
        for ((level, i), h) in &closed {
            assert!(*level >= STORED_MIN_LEVEL);
            let first = (*i as usize) << level;
            assert_eq!(*h, merkle::root(&leaves[first..first + (1 << level)]));
        }
        closed.sort_unstable();
        closed.dedup();
        assert_eq!(
            closed.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            vec![(4, 0), (4, 1), (5, 0)]
        );
        assert!(
            ChainHead::from_columns(3, &[0; 32], &[0; 32]).is_err(),
            "3 needs two roots"
        );
    }
}
