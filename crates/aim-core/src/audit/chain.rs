//! Audit entries, their canonical bytes and hashes, and streaming verification of a chain.
//!
//! An entry is the JSON object
//! `{actor, details, eventType, hash, prevHash, seq, subject, time}` (actor/subject may be null).
//!
//! Invariants:
//! - `hash = hex(SHA-256(JCS(entry without "hash")))`; `prevHash` is the previous entry's `hash`,
//!   or [`GENESIS_PREV_HASH`] for `seq` 0; `seq` counts from 0 without gaps and is the entry's
//!   Merkle leaf index.
//! - The Merkle leaf of an entry is `leaf_hash(raw 32 bytes of its hash)`: the entry hash already
//!   commits to every field (including `prevHash`), so hashing the 32 bytes again is equivalent to
//!   hashing the whole entry, and cheaper.
//! - Stored lines are exactly `JCS(entry)`. [`ChainVerifier::push_line`] rebuilds the canonical
//!   bytes from the line's own members and requires the line to be byte-identical to its canonical
//!   form (`details` is re-canonicalized and compared), so what is verified is exactly what an
//!   independent RFC 8785 implementation would hash.

use std::borrow::Cow;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::merkle::{self, Frontier, Hash};
use crate::clock::rfc3339_millis;
use crate::{Error, Result};

/// `prevHash` of the first entry: 64 zeros.
pub const GENESIS_PREV_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// One audit entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Entry {
    pub seq: u64,
    /// RFC 3339 UTC with milliseconds.
    pub time: String,
    pub event_type: String,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// What a caller records; the chain adds seq, time and hashes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewEntry {
    pub event_type: String,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub details: serde_json::Value,
}

/// The hashed part of an entry (everything but `hash`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    seq: u64,
    time: &'a str,
    event_type: &'a str,
    actor: Option<&'a str>,
    subject: Option<&'a str>,
    details: &'a serde_json::Value,
    prev_hash: &'a str,
}

impl Entry {
    /// Builds the entry that follows `prev` (or the first one) and computes its hash.
    pub fn seal(prev: Option<&Entry>, new: NewEntry, time: DateTime<Utc>) -> Result<Entry> {
        if new.event_type.is_empty() {
            return Err(Error::invalid("audit entry", "event type is empty"));
        }
        let (seq, prev_hash) = match prev {
            Some(p) => (p.seq + 1, p.hash.clone()),
            None => (0, GENESIS_PREV_HASH.to_string()),
        };
        let mut e = Entry {
            seq,
            time: rfc3339_millis(time),
            event_type: new.event_type,
            actor: new.actor,
            subject: new.subject,
            details: new.details,
            prev_hash,
            hash: String::new(),
        };
        e.hash = e.expected_hash()?;
        Ok(e)
    }

    /// RFC 8785 bytes of the entry without its `hash` member: the bytes that are hashed.
    pub fn canonical_body(&self) -> Result<Vec<u8>> {
        crate::canonical::jcs(&Body {
            seq: self.seq,
            time: &self.time,
            event_type: &self.event_type,
            actor: self.actor.as_deref(),
            subject: self.subject.as_deref(),
            details: &self.details,
            prev_hash: &self.prev_hash,
        })
    }

    /// The hash this entry must carry.
    pub fn expected_hash(&self) -> Result<String> {
        Ok(hex::encode(Sha256::digest(self.canonical_body()?)))
    }

    /// The entry's Merkle leaf hash (from its stored `hash`).
    pub fn leaf_hash(&self) -> Result<Hash> {
        Ok(merkle::leaf_hash(&merkle::from_hex(&self.hash)?))
    }

    /// The stored line: `JCS(entry)`, without the trailing newline.
    pub fn to_line(&self) -> Result<String> {
        crate::canonical::jcs_string(self)
    }
}

/// What is wrong with a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProblemKind {
    /// A line is not a well-formed canonical entry.
    Malformed,
    /// An entry's content does not match its hash: it was modified.
    HashMismatch,
    /// An entry does not link to the previous entry's hash.
    PrevHashMismatch,
    /// A sequence number is skipped: entries were deleted.
    SequenceGap,
    /// A sequence number repeats or goes back: entries were inserted or reordered.
    SequenceOutOfOrder,
    /// The log is shorter than a checkpoint says it was.
    Truncated,
    /// The first `treeSize` entries no longer hash to the checkpoint's root.
    HistoryRewritten,
    /// The checkpoint itself is not valid (bad signature, untrusted key, malformed).
    CheckpointInvalid,
}

/// The first problem found, located by sequence number and/or 1-based line number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    pub seq: Option<u64>,
    pub line: Option<u64>,
    pub kind: ProblemKind,
    pub message: String,
}

/// Summary of a verified chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainSummary {
    pub size: u64,
    pub head_hash: Option<String>,
    pub root: Hash,
}

/// Verifies entries one at a time, in order. Memory is O(log n) unless leaves are kept.
#[derive(Debug, Default)]
pub struct ChainVerifier {
    line: u64,
    prev_hash: Option<String>,
    frontier: Frontier,
    leaves: Option<Vec<Hash>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LineEntry<'a> {
    seq: u64,
    #[serde(borrow)]
    time: Cow<'a, str>,
    #[serde(borrow)]
    event_type: Cow<'a, str>,
    #[serde(borrow)]
    actor: Option<Cow<'a, str>>,
    #[serde(borrow)]
    subject: Option<Cow<'a, str>>,
    #[serde(borrow)]
    details: &'a RawValue,
    #[serde(borrow)]
    prev_hash: Cow<'a, str>,
    #[serde(borrow)]
    hash: Cow<'a, str>,
}

/// Appends the canonical JSON form of a string. Takes `&Cow` on purpose: whether the value was
/// borrowed from the line (no escapes) is what tells us it can be copied verbatim.
#[allow(clippy::ptr_arg)]
fn push_str(out: &mut String, s: &Cow<'_, str>) -> std::result::Result<(), String> {
    match s {
        // Borrowed means the source had no escape sequence, so it holds no `"`, `\` or control
        // character, and RFC 8785 writes it verbatim.
        Cow::Borrowed(b) => {
            out.push('"');
            out.push_str(b);
            out.push('"');
        }
        Cow::Owned(o) => out.push_str(&crate::canonical::jcs_string(o).map_err(|e| e.to_string())?),
    }
    Ok(())
}

fn push_opt(out: &mut String, s: &Option<Cow<'_, str>>) -> std::result::Result<(), String> {
    match s {
        Some(s) => push_str(out, s),
        None => {
            out.push_str("null");
            Ok(())
        }
    }
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl ChainVerifier {
    /// A verifier that keeps O(log n) state.
    pub fn new() -> Self {
        Self::default()
    }

    /// A verifier that also keeps every leaf hash (needed for proofs and checkpoint checks).
    pub fn keeping_leaves() -> Self {
        ChainVerifier {
            leaves: Some(Vec::new()),
            ..Self::default()
        }
    }

    fn problem(&self, seq: Option<u64>, kind: ProblemKind, message: String) -> Problem {
        Problem {
            seq,
            line: Some(self.line),
            kind,
            message,
        }
    }

    /// Verifies one stored line (without its newline).
    pub fn push_line(&mut self, line: &str) -> std::result::Result<(), Problem> {
        self.line += 1;
        let e: LineEntry<'_> = serde_json::from_str(line).map_err(|err| {
            self.problem(
                None,
                ProblemKind::Malformed,
                format!("line {} is not an audit entry: {err}", self.line),
            )
        })?;
        let seq = Some(e.seq);
        if !is_hex64(&e.hash) || !is_hex64(&e.prev_hash) {
            return Err(self.problem(
                seq,
                ProblemKind::Malformed,
                "hash and prevHash must be 64 lowercase hex digits".into(),
            ));
        }
        let body = self
            .canonical_body(&e)
            .map_err(|m| self.problem(seq, ProblemKind::Malformed, m))?;
        // The line must be exactly JCS(entry): the body with the hash member in its sorted place.
        let split = body.find(",\"prevHash\":").ok_or_else(|| {
            self.problem(seq, ProblemKind::Malformed, "no prevHash member".into())
        })?;
        let canonical_line = format!(
            "{},\"hash\":\"{}\"{}",
            &body[..split],
            e.hash,
            &body[split..]
        );
        if canonical_line != line {
            return Err(self.problem(
                seq,
                ProblemKind::HashMismatch,
                format!(
                    "entry {} is not in its canonical form: it was edited after it was written",
                    e.seq
                ),
            ));
        }
        let digest = Sha256::digest(body.as_bytes());
        let mut computed = String::with_capacity(64);
        for b in digest {
            let _ = write!(computed, "{b:02x}");
        }
        if computed != e.hash {
            return Err(self.problem(
                seq,
                ProblemKind::HashMismatch,
                format!(
                    "entry {} does not match its hash: its content was modified",
                    e.seq
                ),
            ));
        }
        self.link(e.seq, &e.prev_hash, &e.hash, digest.into())
    }

    /// Verifies one entry held in memory (e.g. read from a database).
    pub fn push(&mut self, entry: &Entry) -> std::result::Result<(), Problem> {
        self.line += 1;
        let seq = Some(entry.seq);
        let expected = entry
            .expected_hash()
            .map_err(|err| self.problem(seq, ProblemKind::Malformed, err.to_string()))?;
        if expected != entry.hash {
            return Err(self.problem(
                seq,
                ProblemKind::HashMismatch,
                format!(
                    "entry {} does not match its hash: its content was modified",
                    entry.seq
                ),
            ));
        }
        let raw = merkle::from_hex(&entry.hash)
            .map_err(|err| self.problem(seq, ProblemKind::Malformed, err.to_string()))?;
        self.link(entry.seq, &entry.prev_hash, &entry.hash, raw)
    }

    fn link(
        &mut self,
        seq: u64,
        prev_hash: &str,
        hash: &str,
        raw_hash: Hash,
    ) -> std::result::Result<(), Problem> {
        let expected_seq = self.frontier.size();
        if seq > expected_seq {
            return Err(self.problem(
                Some(seq),
                ProblemKind::SequenceGap,
                format!(
                    "expected entry {expected_seq} but found {seq}: {} entr{} deleted",
                    seq - expected_seq,
                    if seq - expected_seq == 1 {
                        "y was"
                    } else {
                        "ies were"
                    }
                ),
            ));
        }
        if seq < expected_seq {
            return Err(self.problem(
                Some(seq),
                ProblemKind::SequenceOutOfOrder,
                format!("expected entry {expected_seq} but found {seq}: entries were inserted or reordered"),
            ));
        }
        let want = self.prev_hash.as_deref().unwrap_or(GENESIS_PREV_HASH);
        if prev_hash != want {
            return Err(self.problem(
                Some(seq),
                ProblemKind::PrevHashMismatch,
                format!("entry {seq} does not link to the previous entry's hash (an entry before it was replaced, or it was forged)"),
            ));
        }
        let leaf = merkle::leaf_hash(&raw_hash);
        self.frontier.push(leaf);
        if let Some(l) = &mut self.leaves {
            l.push(leaf);
        }
        self.prev_hash = Some(hash.to_string());
        Ok(())
    }

    fn canonical_body(&self, e: &LineEntry<'_>) -> std::result::Result<String, String> {
        let details_raw = e.details.get();
        let details_value: serde_json::Value =
            serde_json::from_str(details_raw).map_err(|err| err.to_string())?;
        let details =
            crate::canonical::jcs_string(&details_value).map_err(|err| err.to_string())?;
        if details != details_raw {
            return Err(format!(
                "entry {}: details are not in canonical form",
                e.seq
            ));
        }
        let mut out = String::with_capacity(160 + details.len());
        out.push_str("{\"actor\":");
        push_opt(&mut out, &e.actor)?;
        out.push_str(",\"details\":");
        out.push_str(&details);
        out.push_str(",\"eventType\":");
        push_str(&mut out, &e.event_type)?;
        out.push_str(",\"prevHash\":\"");
        out.push_str(&e.prev_hash);
        let _ = write!(out, "\",\"seq\":{},\"subject\":", e.seq);
        push_opt(&mut out, &e.subject)?;
        out.push_str(",\"time\":");
        push_str(&mut out, &e.time)?;
        out.push('}');
        Ok(out)
    }

    /// Entries verified so far.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// The leaves, when created with [`ChainVerifier::keeping_leaves`].
    pub fn leaves(&self) -> Option<&[Hash]> {
        self.leaves.as_deref()
    }

    /// Summary of everything verified so far.
    pub fn summary(&self) -> ChainSummary {
        ChainSummary {
            size: self.frontier.size(),
            head_hash: self.prev_hash.clone(),
            root: self.frontier.root(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t() -> DateTime<Utc> {
        crate::clock::parse_rfc3339("2026-01-02T03:04:05Z").unwrap()
    }

    fn build(n: usize) -> Vec<Entry> {
        let mut out: Vec<Entry> = Vec::new();
        for i in 0..n {
            let e = Entry::seal(
                out.last(),
                NewEntry {
                    event_type: "test.event".into(),
                    actor: (i % 2 == 0).then(|| format!("aim_actor{i}")),
                    subject: None,
                    details: json!({"i": i, "note": "naïve \"quoted\"\n", "nested": {"b": 1, "a": [true, null, 1.5]}}),
                },
                t(),
            )
            .unwrap();
            out.push(e);
        }
        out
    }

    #[test]
    fn first_entry_links_to_genesis_and_hash_is_sha256_of_jcs_body() {
        let e = &build(1)[0];
        assert_eq!(e.seq, 0);
        assert_eq!(e.prev_hash, GENESIS_PREV_HASH);
        let body = String::from_utf8(e.canonical_body().unwrap()).unwrap();
        assert!(
            body.starts_with("{\"actor\":\"aim_actor0\",\"details\":{\"i\":0,"),
            "{body}"
        );
        assert!(!body.contains("\"hash\""));
        assert_eq!(e.hash, hex::encode(Sha256::digest(body.as_bytes())));
        assert_eq!(e.time, "2026-01-02T03:04:05.000Z");
    }

    #[test]
    fn lines_and_entries_verify_identically() {
        let entries = build(10);
        let mut by_line = ChainVerifier::new();
        let mut by_entry = ChainVerifier::new();
        for e in &entries {
            by_line.push_line(&e.to_line().unwrap()).unwrap();
            by_entry.push(e).unwrap();
        }
        assert_eq!(by_line.summary(), by_entry.summary());
        assert_eq!(
            by_line.summary().head_hash.as_deref(),
            Some(entries[9].hash.as_str())
        );
        let leaves: Vec<Hash> = entries.iter().map(|e| e.leaf_hash().unwrap()).collect();
        assert_eq!(by_line.summary().root, merkle::root(&leaves));
    }

    #[test]
    fn non_canonical_lines_are_rejected_even_with_a_matching_hash() {
        let e = &build(1)[0];
        let line = e.to_line().unwrap();
        // pretty-printing the same entry changes no content but is not the stored form
        let pretty =
            serde_json::to_string(&serde_json::from_str::<serde_json::Value>(&line).unwrap())
                .unwrap();
        let spaced = line.replacen("{\"actor\"", "{ \"actor\"", 1);
        for bad in [spaced, pretty.replace(",\"details\"", ", \"details\"")] {
            let err = ChainVerifier::new().push_line(&bad).unwrap_err();
            assert!(
                matches!(err.kind, ProblemKind::HashMismatch | ProblemKind::Malformed),
                "{err:?}"
            );
        }
        assert!(ChainVerifier::new().push_line(&line).is_ok());
    }

    #[test]
    fn each_kind_of_tampering_is_named() {
        let entries = build(5);
        let lines: Vec<String> = entries.iter().map(|e| e.to_line().unwrap()).collect();
        let run = |ls: &[String]| -> std::result::Result<(), Problem> {
            let mut v = ChainVerifier::new();
            for l in ls {
                v.push_line(l)?;
            }
            Ok(())
        };
        let mut modified = lines.clone();
        modified[2] = modified[2].replace("\"i\":2", "\"i\":7");
        let p = run(&modified).unwrap_err();
        assert_eq!(
            (p.kind, p.seq, p.line),
            (ProblemKind::HashMismatch, Some(2), Some(3))
        );

        let mut deleted = lines.clone();
        deleted.remove(1);
        let p = run(&deleted).unwrap_err();
        assert_eq!((p.kind, p.seq), (ProblemKind::SequenceGap, Some(2)));

        let mut swapped = lines.clone();
        swapped.swap(1, 3);
        let p = run(&swapped).unwrap_err();
        assert_eq!((p.kind, p.line), (ProblemKind::SequenceGap, Some(2)));

        let mut dup = lines.clone();
        dup.insert(2, lines[1].clone());
        let p = run(&dup).unwrap_err();
        assert_eq!((p.kind, p.line), (ProblemKind::SequenceOutOfOrder, Some(3)));

        // a forged entry with the right seq and a self-consistent hash but a wrong link
        let mut forged_entry = entries[2].clone();
        forged_entry.prev_hash = "ab".repeat(32);
        forged_entry.hash = forged_entry.expected_hash().unwrap();
        let mut forged = lines.clone();
        forged[2] = forged_entry.to_line().unwrap();
        let p = run(&forged).unwrap_err();
        assert_eq!((p.kind, p.seq), (ProblemKind::PrevHashMismatch, Some(2)));

        let mut garbage = lines.clone();
        garbage[4] = "{\"seq\":4".into();
        assert_eq!(run(&garbage).unwrap_err().kind, ProblemKind::Malformed);
        let mut extra = lines.clone();
        extra[0] = extra[0].replacen('{', "{\"zzz\":1,", 1);
        assert_eq!(run(&extra).unwrap_err().kind, ProblemKind::Malformed);
    }

    #[test]
    fn strings_with_escapes_are_canonicalized_correctly() {
        let e = Entry::seal(
            None,
            NewEntry {
                event_type: "x\u{1}\"y".into(),
                actor: Some("tab\there".into()),
                subject: Some("😀 \\ /".into()),
                details: json!("\u{7f}"),
            },
            t(),
        )
        .unwrap();
        ChainVerifier::new()
            .push_line(&e.to_line().unwrap())
            .unwrap();
    }
}
