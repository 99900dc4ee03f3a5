//! The storage-independent hash chain: entries, their canonical bytes and hash, and a streaming
//! verifier that names the first bad entry.
//!
//! # Format invariants
//!
//! - An entry has exactly eight members: `actor`, `details`, `eventType`, `hash`, `prevHash`,
//!   `seq`, `subject`, `time`. `actor` and `subject` are a string or `null` (never absent).
//! - `seq` is the 0-based position of the entry in the log, which is also its Merkle leaf index.
//!   It is at most [`MAX_SEQ`] (2^53 - 1) so that it is exact in every JSON implementation.
//! - `prevHash` is the `hash` of the entry with `seq - 1`, or [`GENESIS_PREV_HASH`] (64 `0`s) for
//!   `seq` 0.
//! - `hash` = lowercase hex of SHA-256 over the RFC 8785 (JCS) bytes of the entry *without* its
//!   `hash` member (the seven other members).
//! - The Merkle leaf of an entry is `SHA-256(0x00 || raw 32 bytes of hash)` (see
//!   [`Entry::leaf_hash`] for why).
//! - Serialized form (one JSONL line, see [`Entry::canonical_line`]): the JCS bytes of the full
//!   entry. A line is valid only if it is byte-for-byte that form, so every entry has exactly one
//!   valid encoding and no parser differential (duplicate keys, escapes, whitespace, `1.0` vs `1`)
//!   can hide in a hashed line.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::merkle::{self, Frontier, Hash};
use crate::canonical::jcs;
use crate::clock::rfc3339_millis;
use crate::{Error, Result};

/// `prevHash` of the first entry (`seq` 0): 64 ASCII zeros.
pub const GENESIS_PREV_HASH: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// Largest allowed `seq`: 2^53 - 1, the largest integer every JSON implementation reads exactly.
pub const MAX_SEQ: u64 = (1 << 53) - 1;

/// Longest accepted serialized entry, in bytes, excluding the newline. Longer lines are
/// [`ProblemKind::Malformed`], which bounds the memory a hostile file can make a verifier use.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// One audit log entry. See the [module docs](self) for the invariants.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Entry {
    /// 0-based position in the log; also the Merkle leaf index.
    pub seq: u64,
    /// When the entry was written, RFC 3339 UTC with milliseconds (`2026-05-28T00:00:00.123Z`).
    pub time: String,
    /// What happened, e.g. `identity.created`.
    pub event_type: String,
    /// The agent id that acted, if any.
    pub actor: Option<String>,
    /// What was acted on, if anything.
    pub subject: Option<String>,
    /// Event-specific payload (any JSON value; hashed in its JCS form).
    pub details: serde_json::Value,
    /// `hash` of the previous entry, or [`GENESIS_PREV_HASH`].
    pub prev_hash: String,
    /// Lowercase hex SHA-256 of the canonical entry without this member.
    pub hash: String,
}

/// The caller-supplied part of an entry; [`Entry::seal`] adds `seq`, `time` and the hashes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewEntry {
    pub event_type: String,
    pub actor: Option<String>,
    pub subject: Option<String>,
    pub details: serde_json::Value,
}

/// The seven hashed members (the entry without `hash`). JCS sorts keys, so field order here is
/// irrelevant.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    seq: u64,
    time: &'a str,
    event_type: &'a str,
    actor: &'a Option<String>,
    subject: &'a Option<String>,
    details: &'a serde_json::Value,
    prev_hash: &'a str,
}

impl Entry {
    /// Builds the entry that follows `prev` (or the genesis entry when `prev` is `None`):
    /// `seq = prev.seq + 1`, `prevHash = prev.hash`, `time` = `time` with milliseconds, and
    /// `hash` computed over the canonical body.
    ///
    /// Errors if `prev.hash` is not 64 lowercase hex or `seq` would exceed [`MAX_SEQ`].
    pub fn seal(prev: Option<&Entry>, new: NewEntry, time: DateTime<Utc>) -> Result<Entry> {
        let (seq, prev_hash) = match prev {
            None => (0, GENESIS_PREV_HASH.to_string()),
            Some(p) => {
                parse_hex32(&p.hash).ok_or_else(|| {
                    Error::invalid(
                        "previous audit entry",
                        format!("hash {:?} is not 64 lowercase hex", p.hash),
                    )
                })?;
                if p.seq >= MAX_SEQ {
                    return Err(Error::State(format!(
                        "the audit log is full: seq cannot exceed {MAX_SEQ}"
                    )));
                }
                (p.seq + 1, p.hash.clone())
            }
        };
        let mut entry = Entry {
            seq,
            time: rfc3339_millis(time),
            event_type: new.event_type,
            actor: new.actor,
            subject: new.subject,
            details: new.details,
            prev_hash,
            hash: String::new(),
        };
        entry.hash = entry.expected_hash()?;
        Ok(entry)
    }

    /// The canonical bytes that are hashed: RFC 8785 JCS of the entry without `hash`.
    pub fn canonical_body(&self) -> Result<Vec<u8>> {
        jcs(&Body {
            seq: self.seq,
            time: &self.time,
            event_type: &self.event_type,
            actor: &self.actor,
            subject: &self.subject,
            details: &self.details,
            prev_hash: &self.prev_hash,
        })
    }

    /// The serialized form stored in a JSONL log (without the trailing `\n`): RFC 8785 JCS of the
    /// full entry, including `hash`.
    pub fn canonical_line(&self) -> Result<Vec<u8>> {
        jcs(self)
    }

    /// What `hash` must be: lowercase hex SHA-256 of [`canonical_body`](Entry::canonical_body).
    /// Always recomputed through the generic JCS serializer (the strict path).
    pub fn expected_hash(&self) -> Result<String> {
        Ok(hex::encode(Sha256::digest(self.canonical_body()?)))
    }

    /// The Merkle leaf hash of this entry: `SHA-256(0x00 || h)` where `h` is the 32 raw bytes of
    /// the stored `hash` member.
    ///
    /// Why the entry hash and not the full canonical entry: the entry hash already commits to
    /// every member (including `prevHash`, so to the whole history), it makes the leaf a fixed
    /// one-block hash, and a database that stores only the `hash` column can rebuild the tree and
    /// serve proofs without re-canonicalizing entries. An independent verifier recomputes `hash`
    /// from the entry (one JCS + SHA-256) and then the leaf. The leaf is only meaningful for an
    /// entry whose `hash` verifies, which the [`ChainVerifier`] checks first.
    pub fn leaf_hash(&self) -> Result<Hash> {
        let h = parse_hex32(&self.hash).ok_or_else(|| {
            Error::invalid(
                "audit entry",
                format!("hash {:?} is not 64 lowercase hex", self.hash),
            )
        })?;
        Ok(merkle::leaf_hash(&h))
    }

    /// Parses one serialized line strictly: valid JSON of the entry schema **and** byte-for-byte
    /// equal to its canonical form ([`canonical_line`](Entry::canonical_line)). Does not check the
    /// hash or the chain.
    pub fn from_line(line: &[u8]) -> std::result::Result<Entry, String> {
        let entry: Entry =
            serde_json::from_slice(line).map_err(|e| format!("not an audit entry: {e}"))?;
        let canonical = entry.canonical_line().map_err(|e| e.to_string())?;
        if canonical != line {
            return Err(
                "not in canonical form (every line must be the RFC 8785 JCS bytes of its entry)"
                    .into(),
            );
        }
        Ok(entry)
    }
}

/// An entry's canonical body with its two chain-position members (`prevHash`, `seq`) left open.
///
/// Canonicalizing `details` is most of the cost of hashing an entry, and it does not depend on
/// where the entry lands in the chain. A server builds the template on the request's thread and
/// its single chain writer only fills in the position: two short byte strings and one SHA-256.
///
/// Invariant (tested against [`Entry::expected_hash`] over arbitrary members): for every
/// `seq ≤ MAX_SEQ` and 32-byte `prev`, [`BodyTemplate::hash`] is the raw SHA-256 of the JCS body
/// of the entry with those members. It holds because JCS sorts the top-level keys as `actor`,
/// `details`, `eventType`, `prevHash`, `seq`, `subject`, `time`: `prevHash` and `seq` are adjacent
/// and only `subject` and `time` (strings or `null`, whose quotes are always escaped) follow them,
/// so the last occurrence of the placeholder text is the top-level one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyTemplate {
    /// Canonical bytes up to and including `"prevHash":"`.
    head: Vec<u8>,
    /// Canonical bytes from the member after `seq` (`,"subject":...}`) to the end.
    tail: Vec<u8>,
}

impl BodyTemplate {
    /// The template of an entry with these members (`time` as stored, RFC 3339 with milliseconds).
    pub fn new(
        time: &str,
        event_type: &str,
        actor: &Option<String>,
        subject: &Option<String>,
        details: &serde_json::Value,
    ) -> Result<Self> {
        let body = jcs(&Body {
            seq: 0,
            time,
            event_type,
            actor,
            subject,
            details,
            prev_hash: GENESIS_PREV_HASH,
        })?;
        let open = b",\"prevHash\":\"";
        let mut placeholder = open.to_vec();
        placeholder.extend_from_slice(GENESIS_PREV_HASH.as_bytes());
        placeholder.extend_from_slice(b"\",\"seq\":0");
        let at = body
            .windows(placeholder.len())
            .rposition(|w| w == placeholder.as_slice())
            .ok_or_else(|| {
                Error::invalid("audit entry body", "no top-level prevHash/seq members")
            })?;
        Ok(BodyTemplate {
            head: body[..at + open.len()].to_vec(),
            tail: body[at + placeholder.len()..].to_vec(),
        })
    }

    /// The template of an entry whose `details` are already serialized, without parsing them:
    /// `None` when `details` is not provably canonical JCS (then build it with
    /// [`BodyTemplate::new`] from the parsed value). For canonical `details` both constructors
    /// give the same template.
    pub fn from_canonical_details(
        time: &str,
        event_type: &str,
        actor: &Option<String>,
        subject: &Option<String>,
        details: &[u8],
    ) -> Result<Option<Self>> {
        if !fastline::canonical_value(details) {
            return Ok(None);
        }
        let mut head = Vec::with_capacity(details.len() + 128);
        head.extend_from_slice(b"{\"actor\":");
        head.extend_from_slice(&jcs(actor)?);
        head.extend_from_slice(b",\"details\":");
        head.extend_from_slice(details);
        head.extend_from_slice(b",\"eventType\":");
        head.extend_from_slice(&jcs(&event_type)?);
        head.extend_from_slice(b",\"prevHash\":\"");
        let mut tail = Vec::with_capacity(96);
        tail.extend_from_slice(b",\"subject\":");
        tail.extend_from_slice(&jcs(subject)?);
        tail.extend_from_slice(b",\"time\":");
        tail.extend_from_slice(&jcs(&time)?);
        tail.push(b'}');
        Ok(Some(BodyTemplate { head, tail }))
    }

    /// Raw SHA-256 of the canonical body with `seq` and `prevHash` = hex of `prev` (all zeros,
    /// i.e. [`GENESIS_PREV_HASH`], for a well-formed `seq` 0).
    pub fn hash(&self, seq: u64, prev: &Hash) -> Result<Hash> {
        if seq > MAX_SEQ {
            return Err(Error::State(format!(
                "the audit log is full: seq cannot exceed {MAX_SEQ}"
            )));
        }
        let mut prev_hex = [0u8; 64];
        hex::encode_to_slice(prev, &mut prev_hex).expect("64 hex digits for 32 bytes");
        let mut h = Sha256::new();
        h.update(&self.head);
        h.update(prev_hex);
        h.update(b"\",\"seq\":");
        h.update(seq.to_string().as_bytes());
        h.update(&self.tail);
        Ok(h.finalize().into())
    }
}

/// Decodes exactly 64 lowercase hex digits.
pub(crate) fn parse_hex32(s: &str) -> Option<Hash> {
    parse_hex32_bytes(s.as_bytes())
}

/// Lowercase hex digit values; 0xff marks every other byte.
const HEX_VALUE: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Branch-free decoding of exactly 64 lowercase hex digits (this runs twice per entry on the
/// verification hot path).
fn parse_hex32_bytes(s: &[u8]) -> Option<Hash> {
    let s: &[u8; 64] = s.try_into().ok()?;
    let mut out = [0u8; 32];
    let mut bad = 0u8;
    for i in 0..32 {
        let hi = HEX_VALUE[s[2 * i] as usize];
        let lo = HEX_VALUE[s[2 * i + 1] as usize];
        bad |= hi | lo;
        out[i] = (hi << 4) | (lo & 0x0f);
    }
    // Valid digits are < 16, so bit 4..7 set anywhere means an invalid byte.
    (bad & 0xf0 == 0).then_some(out)
}

/// What the verifier needs from one entry: its claimed position and links, the hash it claims and
/// the hash it actually has, and its Merkle leaf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryDigest {
    pub seq: u64,
    pub prev_hash: Hash,
    /// The stored `hash` member.
    pub stored: Hash,
    /// SHA-256 of the canonical body as recomputed by the verifier.
    pub computed: Hash,
}

impl EntryDigest {
    /// Digest of an in-memory entry (strict: re-canonicalizes through JCS). `Err` is the reason
    /// the entry is malformed.
    pub fn of_entry(e: &Entry) -> std::result::Result<EntryDigest, String> {
        if e.seq > MAX_SEQ {
            return Err(format!("seq {} exceeds the maximum {MAX_SEQ}", e.seq));
        }
        let prev_hash = parse_hex32(&e.prev_hash)
            .ok_or_else(|| format!("prevHash {:?} is not 64 lowercase hex", e.prev_hash))?;
        let stored = parse_hex32(&e.hash)
            .ok_or_else(|| format!("hash {:?} is not 64 lowercase hex", e.hash))?;
        let body = e.canonical_body().map_err(|err| err.to_string())?;
        Ok(EntryDigest {
            seq: e.seq,
            prev_hash,
            stored,
            computed: Sha256::digest(body).into(),
        })
    }

    /// Digest of one serialized line (without its `\n`). `Err` is the reason the line is
    /// malformed.
    ///
    /// With `strict == false` the line first goes through the *fast path*: a validator that
    /// accepts only lines it can prove to be canonical JCS of an entry (no whitespace, members in
    /// the fixed order, strings without `\/`, `\u` escapes only for control characters other than
    /// `\b\f\n\r\t`, lowercase hex, object keys plain ASCII and strictly increasing, numbers only
    /// in the form JCS prints them (the ECMAScript form of their double), nesting ≤ 32). For such a line, removing
    /// the member `"hash":"<64 hex>",` yields exactly the canonical body, so the hash is computed
    /// over the line's own bytes with no parsing into `serde_json::Value` and no re-serialization.
    /// Anything the fast path cannot prove canonical (floats, non-ASCII keys, deep nesting,
    /// errors) falls back to the strict path, which decides: parse, re-canonicalize, compare
    /// byte-for-byte, re-hash. Both paths therefore accept exactly the same lines with the same
    /// digest (property-tested in this module).
    pub fn of_line(line: &[u8], strict: bool) -> std::result::Result<EntryDigest, String> {
        if line.len() > MAX_LINE_BYTES {
            return Err(format!(
                "line is {} bytes, longer than the {MAX_LINE_BYTES}-byte limit",
                line.len()
            ));
        }
        if !strict && let Some(d) = fastline::digest(line) {
            return Ok(d);
        }
        let entry = Entry::from_line(line)?;
        Self::of_entry(&entry)
    }
}

/// What is wrong with a log, as found by the verifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProblemKind {
    /// The line is not a canonical audit entry (bad JSON, wrong members, non-canonical bytes,
    /// bad hex, too long, incomplete last line).
    Malformed,
    /// The stored `hash` is not the hash of the entry's content: the entry was edited.
    HashMismatch,
    /// `prevHash` does not equal the previous entry's `hash`.
    PrevHashMismatch,
    /// `seq` is larger than its position: entries are missing (deleted) or reordered.
    SequenceGap,
    /// `seq` is smaller than its position: an entry was inserted or entries were reordered.
    SequenceOutOfOrder,
    /// The log has fewer entries than a checkpoint covers.
    Truncated,
    /// The first `treeSize` entries do not have the checkpoint's Merkle root.
    HistoryRewritten,
    /// The checkpoint itself is malformed, its signature does not verify, or it is not signed by
    /// the trusted key.
    CheckpointInvalid,
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ProblemKind::Malformed => "MALFORMED",
            ProblemKind::HashMismatch => "HASH_MISMATCH",
            ProblemKind::PrevHashMismatch => "PREV_HASH_MISMATCH",
            ProblemKind::SequenceGap => "SEQUENCE_GAP",
            ProblemKind::SequenceOutOfOrder => "SEQUENCE_OUT_OF_ORDER",
            ProblemKind::Truncated => "TRUNCATED",
            ProblemKind::HistoryRewritten => "HISTORY_REWRITTEN",
            ProblemKind::CheckpointInvalid => "CHECKPOINT_INVALID",
        };
        f.write_str(s)
    }
}

/// The first thing wrong with a log.
///
/// `seq` is the sequence number the offending position *should* hold (its 0-based index, so for
/// a file `line == seq + 1`); for [`ProblemKind::Truncated`] it is the first missing `seq`. It
/// is `None` when no single entry can be blamed (rewritten history, bad checkpoint). `line` is
/// the 1-based line number in a JSONL file (`None` for entries pushed as values).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    pub seq: Option<u64>,
    pub line: Option<u64>,
    pub kind: ProblemKind,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.seq) {
            (Some(l), Some(s)) => write!(f, "line {l} (seq {s}): ")?,
            (None, Some(s)) => write!(f, "seq {s}: ")?,
            (Some(l), None) => write!(f, "line {l}: ")?,
            (None, None) => {}
        }
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Problem {}

/// The state of a verified chain prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainSummary {
    /// Number of entries verified.
    pub size: u64,
    /// `hash` of the last verified entry (`None` for an empty log).
    pub head_hash: Option<String>,
    /// Merkle root of the verified entries.
    pub root: Hash,
    /// The root when the size was the one requested with [`ChainVerifier::remember_root_at`].
    pub root_at: Option<(u64, Hash)>,
    /// All leaf hashes, if requested with [`ChainVerifier::keep_leaves`] (else empty).
    pub leaves: Vec<Hash>,
}

impl ChainSummary {
    /// Compares the verified log with a checkpoint's `(tree_size, root)` (whose signature the
    /// caller has checked).
    ///
    /// - fewer entries than `tree_size` → [`ProblemKind::Truncated`];
    /// - root of the first `tree_size` entries ≠ `root` → [`ProblemKind::HistoryRewritten`];
    /// - when leaves were kept, additionally builds the RFC 9162 consistency proof from
    ///   `tree_size` to `size` and verifies it against `root` and the current root; the proof is
    ///   returned (empty when sizes are equal).
    pub fn check_checkpoint(
        &self,
        tree_size: u64,
        root: &Hash,
    ) -> std::result::Result<Vec<Hash>, Problem> {
        if self.size < tree_size {
            return Err(Problem {
                seq: Some(self.size),
                line: None,
                kind: ProblemKind::Truncated,
                message: format!(
                    "the log has {} entries but the checkpoint covers {tree_size}: entries {}..={} were removed",
                    self.size,
                    self.size,
                    tree_size - 1
                ),
            });
        }
        let rewritten = |detail: &str| Problem {
            seq: None,
            line: None,
            kind: ProblemKind::HistoryRewritten,
            message: format!(
                "the first {tree_size} entries do not have the checkpoint's root {} ({detail}); some entry before seq {tree_size} was changed, or the log was rebuilt",
                hex::encode(root)
            ),
        };
        let prefix_root = match self.root_at {
            Some((size, r)) if size == tree_size => r,
            _ if tree_size == 0 => merkle::EMPTY_ROOT,
            _ => return Err(rewritten("root at that size was not recorded")),
        };
        if prefix_root != *root {
            return Err(rewritten(&format!(
                "they hash to {}",
                hex::encode(prefix_root)
            )));
        }
        if self.leaves.len() as u64 != self.size {
            return Ok(Vec::new());
        }
        let proof = merkle::consistency_proof(&self.leaves, tree_size)
            .map_err(|e| rewritten(&e.to_string()))?;
        if !merkle::verify_consistency(tree_size, self.size, root, &self.root, &proof) {
            return Err(rewritten("consistency proof does not verify"));
        }
        Ok(proof)
    }
}

/// Streaming verifier of a chain, fed entries in log order (lines of a file, or rows of a
/// database ordered by `seq`). Memory is O(log n) unless leaves are kept.
///
/// Checks per entry, in this order, stopping at the first failure:
/// 1. well-formed and canonical ([`ProblemKind::Malformed`]);
/// 2. stored `hash` = recomputed hash ([`ProblemKind::HashMismatch`]);
/// 3. `seq` = position ([`ProblemKind::SequenceGap`] / [`ProblemKind::SequenceOutOfOrder`]);
/// 4. `prevHash` = previous `hash` ([`ProblemKind::PrevHashMismatch`]).
///
/// After a push returns `Err`, every later push returns the same `Err`; [`size`](Self::size)
/// and [`finish`](Self::finish) describe the valid prefix before it.
#[derive(Debug, Default)]
pub struct ChainVerifier {
    strict: bool,
    line: u64,
    head: Option<Hash>,
    head_prev: Hash,
    frontier: Frontier,
    keep_leaves: bool,
    leaves: Vec<Hash>,
    watch: Option<u64>,
    root_at: Option<(u64, Hash)>,
    failed: Option<Problem>,
}

impl ChainVerifier {
    /// A verifier for a log starting at `seq` 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Re-canonicalize every line through the generic JCS serializer instead of the fast path.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Keep every leaf hash (32 bytes per entry) so that proofs can be built afterwards.
    pub fn keep_leaves(mut self, keep: bool) -> Self {
        self.keep_leaves = keep;
        self
    }

    /// Record the Merkle root when the verified size reaches `size` (e.g. a checkpoint's size).
    pub fn remember_root_at(mut self, size: u64) -> Self {
        self.watch = Some(size);
        if size == 0 {
            self.root_at = Some((0, merkle::EMPTY_ROOT));
        }
        self
    }

    /// Whether the next line goes through the strict path: always for the first line of a log,
    /// so that each verification run cross-checks the serializer on at least one entry.
    fn line_is_strict(&self) -> bool {
        self.strict || self.frontier.size() == 0
    }

    /// Verifies the next line of a JSONL log (without its `\n`).
    pub fn push_line(&mut self, line: &[u8]) -> std::result::Result<(), Problem> {
        if let Some(p) = &self.failed {
            return Err(p.clone());
        }
        let digest = EntryDigest::of_line(line, self.line_is_strict());
        self.push_digest(digest, true)
    }

    /// Verifies the next entry given as a value (e.g. a database row). Always strict.
    pub fn push_entry(&mut self, entry: &Entry) -> std::result::Result<(), Problem> {
        if let Some(p) = &self.failed {
            return Err(p.clone());
        }
        self.push_digest(EntryDigest::of_entry(entry), false)
    }

    /// Records that the next line is malformed for a reason only the caller knows (e.g. an
    /// incomplete last line), and returns the problem.
    pub fn reject_line(&mut self, reason: String) -> Problem {
        if let Some(p) = &self.failed {
            return p.clone();
        }
        self.line += 1;
        self.fail(ProblemKind::Malformed, reason, true)
    }

    /// Verifies the next entry from a precomputed digest (`Err` = reason it is malformed). This
    /// is how callers split the expensive per-line work over threads: digests are independent,
    /// only this step is sequential. `is_line` says whether the input was a file line (counts
    /// lines for [`Problem::line`]).
    pub fn push_digest(
        &mut self,
        digest: std::result::Result<EntryDigest, String>,
        is_line: bool,
    ) -> std::result::Result<(), Problem> {
        if let Some(p) = &self.failed {
            return Err(p.clone());
        }
        if is_line {
            self.line += 1;
        }
        let expected = self.frontier.size();
        let d = match digest {
            Ok(d) => d,
            Err(reason) => return Err(self.fail(ProblemKind::Malformed, reason, is_line)),
        };
        if d.computed != d.stored {
            let msg = format!(
                "stored hash {} but the entry's content hashes to {}: the entry was modified after it was written",
                hex::encode(d.stored),
                hex::encode(d.computed)
            );
            return Err(self.fail(ProblemKind::HashMismatch, msg, is_line));
        }
        if d.seq != expected {
            let (kind, msg) = if d.seq > expected {
                (
                    ProblemKind::SequenceGap,
                    format!(
                        "expected seq {expected}, found seq {}: entries {expected}..={} are missing (deleted) or entries were reordered",
                        d.seq,
                        d.seq - 1
                    ),
                )
            } else if d.seq + 1 == expected && self.head.is_some() && d.prev_hash == self.head_prev
            {
                let here = if is_line {
                    format!("line {}", self.line)
                } else {
                    "this entry".into()
                };
                let before = if is_line {
                    format!("line {}", self.line - 1)
                } else {
                    "the previous entry".into()
                };
                (
                    ProblemKind::SequenceOutOfOrder,
                    format!(
                        "expected seq {expected}, found seq {}: {before} and {here} both claim seq {} after the same predecessor; one of them was inserted",
                        d.seq, d.seq
                    ),
                )
            } else {
                (
                    ProblemKind::SequenceOutOfOrder,
                    format!(
                        "expected seq {expected}, found seq {}: an entry was inserted before this one or entries were reordered",
                        d.seq
                    ),
                )
            };
            return Err(self.fail(kind, msg, is_line));
        }
        let want_prev = self.head.unwrap_or([0u8; 32]);
        if d.prev_hash != want_prev {
            let msg = if self.head.is_none() {
                format!(
                    "the first entry must have prevHash {GENESIS_PREV_HASH}, found {}",
                    hex::encode(d.prev_hash)
                )
            } else {
                format!(
                    "prevHash {} is not the hash {} of seq {}: seq {} was replaced or modified and re-hashed, or this entry was forged",
                    hex::encode(d.prev_hash),
                    hex::encode(want_prev),
                    expected - 1,
                    expected - 1
                )
            };
            return Err(self.fail(ProblemKind::PrevHashMismatch, msg, is_line));
        }
        let leaf = merkle::leaf_hash(&d.stored);
        self.frontier.push(leaf);
        if self.keep_leaves {
            self.leaves.push(leaf);
        }
        self.head_prev = d.prev_hash;
        self.head = Some(d.stored);
        if self.watch == Some(self.frontier.size()) {
            self.root_at = Some((self.frontier.size(), self.frontier.root()));
        }
        Ok(())
    }

    fn fail(&mut self, kind: ProblemKind, message: String, is_line: bool) -> Problem {
        let p = Problem {
            seq: Some(self.frontier.size()),
            line: is_line.then_some(self.line),
            kind,
            message,
        };
        self.failed = Some(p.clone());
        p
    }

    /// Number of entries verified so far (the valid prefix).
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// Merkle root of the entries verified so far (the valid prefix), without consuming the
    /// verifier (incremental verification keeps it and pushes later entries).
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// The first problem found, if any.
    pub fn problem(&self) -> Option<&Problem> {
        self.failed.as_ref()
    }

    /// Summary of the valid prefix.
    pub fn finish(self) -> ChainSummary {
        ChainSummary {
            size: self.frontier.size(),
            head_hash: self.head.map(hex::encode),
            root: self.frontier.root(),
            root_at: self.root_at,
            leaves: self.leaves,
        }
    }
}

/// The fast path of [`EntryDigest::of_line`]: a validator for canonical entry lines that never
/// builds a `serde_json::Value`. It returns `None` whenever it cannot *prove* the line canonical;
/// it never rejects on its own.
mod fastline {
    use sha2::{Digest, Sha256};

    use super::{EntryDigest, MAX_SEQ, parse_hex32_bytes};

    const MAX_DEPTH: u32 = 32;

    struct Cursor<'a> {
        b: &'a [u8],
        i: usize,
    }

    impl<'a> Cursor<'a> {
        fn lit(&mut self, s: &[u8]) -> Option<()> {
            if self.b.get(self.i..self.i + s.len())? == s {
                self.i += s.len();
                Some(())
            } else {
                None
            }
        }

        fn peek(&self) -> Option<u8> {
            self.b.get(self.i).copied()
        }

        /// A canonical JCS string; returns its raw (escaped) content.
        fn string(&mut self) -> Option<&'a [u8]> {
            self.lit(b"\"")?;
            let start = self.i;
            loop {
                // Skip the plain run up to the next quote or backslash in one SIMD search; the run
                // must not contain raw control characters.
                let rest = self.b.get(self.i..)?;
                let run = memchr::memchr2(b'"', b'\\', rest)?;
                if rest[..run].iter().fold(false, |acc, &c| acc | (c < 0x20)) {
                    return None;
                }
                self.i += run;
                let c = self.peek()?;
                match c {
                    b'"' => {
                        let s = &self.b[start..self.i];
                        self.i += 1;
                        return Some(s);
                    }
                    b'\\' => {
                        let e = *self.b.get(self.i + 1)?;
                        match e {
                            b'"' | b'\\' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 2,
                            b'u' => {
                                let h = self.b.get(self.i + 2..self.i + 6)?;
                                if h[0] != b'0' || h[1] != b'0' || !matches!(h[2], b'0' | b'1') {
                                    return None;
                                }
                                let lo = match h[3] {
                                    b'0'..=b'9' => h[3] - b'0',
                                    b'a'..=b'f' => h[3] - b'a' + 10,
                                    _ => return None,
                                };
                                let v = ((h[2] - b'0') << 4) | lo;
                                if matches!(v, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) {
                                    return None;
                                }
                                self.i += 6;
                            }
                            _ => return None,
                        }
                    }
                    0x00..=0x1f => return None,
                    _ => self.i += 1,
                }
            }
        }

        fn null_or_string(&mut self) -> Option<()> {
            if self.peek()? == b'n' {
                self.lit(b"null")
            } else {
                self.string().map(|_| ())
            }
        }

        /// A non-negative integer in canonical form, at most `MAX_SEQ`.
        fn uint(&mut self) -> Option<u64> {
            self.uint_upto(MAX_SEQ)
        }

        /// A number exactly as JCS prints it: the ECMAScript form of the double it denotes
        /// (RFC 8785 §3.2.2.3), which is valid JSON; so `-0`, `1.0`, `1E3`, `+1` and integers
        /// beyond 2^53 that do not survive the double are refused.
        fn number(&mut self) -> Option<()> {
            let start = self.i;
            while matches!(
                self.peek(),
                Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
            ) {
                self.i += 1;
            }
            let token = std::str::from_utf8(&self.b[start..self.i]).ok()?;
            let value: f64 = token.parse().ok()?;
            if !value.is_finite() {
                return None;
            }
            (ryu_js::Buffer::new().format_finite(value) == token).then_some(())
        }

        /// Canonical decimal digits (no leading zero) of a value at most `max` (< 10^16).
        fn uint_upto(&mut self, max: u64) -> Option<u64> {
            let start = self.i;
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.i += 1;
            }
            let digits = &self.b[start..self.i];
            if digits.is_empty() || digits.len() > 16 || (digits.len() > 1 && digits[0] == b'0') {
                return None;
            }
            let mut v: u64 = 0;
            for d in digits {
                v = v * 10 + u64::from(d - b'0');
            }
            (v <= max).then_some(v)
        }

        fn value(&mut self, depth: u32) -> Option<()> {
            if depth > MAX_DEPTH {
                return None;
            }
            match self.peek()? {
                b'n' => self.lit(b"null"),
                b't' => self.lit(b"true"),
                b'f' => self.lit(b"false"),
                b'"' => self.string().map(|_| ()),
                b'-' | b'0'..=b'9' => self.number(),
                b'[' => {
                    self.i += 1;
                    if self.peek()? == b']' {
                        self.i += 1;
                        return Some(());
                    }
                    loop {
                        self.value(depth + 1)?;
                        match self.peek()? {
                            b',' => self.i += 1,
                            b']' => {
                                self.i += 1;
                                return Some(());
                            }
                            _ => return None,
                        }
                    }
                }
                b'{' => {
                    self.i += 1;
                    if self.peek()? == b'}' {
                        self.i += 1;
                        return Some(());
                    }
                    let mut prev: Option<&[u8]> = None;
                    loop {
                        let key = self.string()?;
                        // Byte order equals UTF-16 order only for unescaped ASCII keys.
                        if key.iter().any(|&c| c == b'\\' || c >= 0x80) {
                            return None;
                        }
                        if let Some(p) = prev
                            && p >= key
                        {
                            return None;
                        }
                        prev = Some(key);
                        self.lit(b":")?;
                        self.value(depth + 1)?;
                        match self.peek()? {
                            b',' => self.i += 1,
                            b'}' => {
                                self.i += 1;
                                return Some(());
                            }
                            _ => return None,
                        }
                    }
                }
                _ => None,
            }
        }
    }

    /// Whether `b` is provably the canonical JCS form of one JSON value (the same rules as a
    /// line's `details`; see [`super::EntryDigest::of_line`]). `false` does not mean it is not
    /// canonical, only that this validator cannot prove it.
    pub(super) fn canonical_value(b: &[u8]) -> bool {
        if std::str::from_utf8(b).is_err() {
            return false;
        }
        let mut c = Cursor { b, i: 0 };
        c.value(0).is_some() && c.i == b.len()
    }

    /// See [`super::EntryDigest::of_line`].
    pub(super) fn digest(line: &[u8]) -> Option<EntryDigest> {
        std::str::from_utf8(line).ok()?;
        let mut c = Cursor { b: line, i: 0 };
        c.lit(b"{\"actor\":")?;
        c.null_or_string()?;
        c.lit(b",\"details\":")?;
        c.value(0)?;
        c.lit(b",\"eventType\":")?;
        c.string()?;
        c.lit(b",")?;
        let hash_start = c.i;
        c.lit(b"\"hash\":\"")?;
        let stored = parse_hex32_bytes(line.get(c.i..c.i + 64)?)?;
        c.i += 64;
        c.lit(b"\",")?;
        let hash_end = c.i;
        c.lit(b"\"prevHash\":\"")?;
        let prev_hash = parse_hex32_bytes(line.get(c.i..c.i + 64)?)?;
        c.i += 64;
        c.lit(b"\",\"seq\":")?;
        let seq = c.uint()?;
        c.lit(b",\"subject\":")?;
        c.null_or_string()?;
        c.lit(b",\"time\":")?;
        c.string()?;
        c.lit(b"}")?;
        if c.i != line.len() {
            return None;
        }
        // The canonical body is the line without the member `"hash":"<64 hex>",`.
        let mut h = Sha256::new();
        h.update(&line[..hash_start]);
        h.update(&line[hash_end..]);
        Some(EntryDigest {
            seq,
            prev_hash,
            stored,
            computed: h.finalize().into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;
    use serde_json::json;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 28, 0, 0, 0).single().unwrap()
    }

    fn sample(details: serde_json::Value) -> Entry {
        let genesis = Entry::seal(
            None,
            NewEntry {
                event_type: "identity.created".into(),
                actor: Some("agent-1".into()),
                subject: None,
                details: json!({}),
            },
            t0(),
        )
        .unwrap();
        Entry::seal(
            Some(&genesis),
            NewEntry {
                event_type: "action.executed".into(),
                actor: Some("agent-1".into()),
                subject: Some("mcp:fs".into()),
                details,
            },
            t0(),
        )
        .unwrap()
    }

    #[test]
    fn genesis_and_hash_definition() {
        let e = Entry::seal(
            None,
            NewEntry {
                event_type: "identity.created".into(),
                actor: None,
                subject: None,
                details: json!({"b": 1, "a": "x"}),
            },
            t0(),
        )
        .unwrap();
        assert_eq!(e.seq, 0);
        assert_eq!(e.prev_hash, GENESIS_PREV_HASH);
        assert_eq!(e.time, "2026-05-28T00:00:00.000Z");
        let body = String::from_utf8(e.canonical_body().unwrap()).unwrap();
        assert_eq!(
            body,
            r#"{"actor":null,"details":{"a":"x","b":1},"eventType":"identity.created","prevHash":"0000000000000000000000000000000000000000000000000000000000000000","seq":0,"subject":null,"time":"2026-05-28T00:00:00.000Z"}"#
        );
        assert_eq!(e.hash, hex::encode(Sha256::digest(body.as_bytes())));
        let line = String::from_utf8(e.canonical_line().unwrap()).unwrap();
        assert_eq!(
            line,
            body.replace(
                ",\"prevHash\"",
                &format!(",\"hash\":\"{}\",\"prevHash\"", e.hash)
            )
        );
        let mut raw = [0u8; 33];
        raw[1..].copy_from_slice(&hex::decode(&e.hash).unwrap());
        assert_eq!(e.leaf_hash().unwrap(), <Hash>::from(Sha256::digest(raw)));
    }

    #[test]
    fn fast_path_agrees_on_known_lines() {
        let e =
            sample(json!({"n": [1, -2, 9007199254740992_u64, true, null], "s": "q\"\\\n\u{1}é"}));
        let line = e.canonical_line().unwrap();
        let fast = fastline::digest(&line).expect("fast path accepts canonical line");
        assert_eq!(fast, EntryDigest::of_entry(&e).unwrap());
        // Fractions in their canonical form take the fast path too.
        let f = sample(json!({"x": 0.5, "y": -1.5e-7, "z": 1e21}));
        let fl = f.canonical_line().unwrap();
        assert_eq!(
            fastline::digest(&fl).expect("canonical numbers"),
            EntryDigest::of_entry(&f).unwrap()
        );
        // Non-canonical variants are rejected by both paths.
        let s = String::from_utf8(line).unwrap();
        for bad in [
            s.replacen("{\"actor\"", "{ \"actor\"", 1),
            s.replacen("\"n\":[1,", "\"n\":[1.0,", 1),
            s.replacen("\"n\":", "\"m\":0,\"n\":", 1)
                .replacen("\"m\":0,", "\"z\":0,", 1),
            s.replacen("\"s\":", "\"s\":1,\"s\":", 1),
            s.replacen("\\u0001", "\\u0001\\/", 1),
            s.replace(
                "\"subject\":\"mcp:fs\"",
                "\"subject\":\"mcp:fs\",\"extra\":1",
            ),
        ] {
            assert!(fastline::digest(bad.as_bytes()).is_none(), "{bad}");
            assert!(EntryDigest::of_line(bad.as_bytes(), true).is_err(), "{bad}");
        }
    }

    fn arb_json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            (-1e6f64..1e6).prop_map(serde_json::Value::from),
            "[ -~\\n\\t\\u{0}-\\u{1f}é€😀\"\\\\/]{0,8}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                prop::collection::btree_map("[a-zA-Z_é😀\\n]{0,4}", inner, 0..4)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    #[test]
    fn typical_details_take_the_fast_template() {
        let details = json!({"clientAddr": "10.0.0.1", "orgId": null,
            "payload": {"actionId": "0190", "n": [1, -2, 9007199254740992_u64], "s": "é\"\\\n\u{1}"}});
        let (actor, subject) = (Some("agent:a".to_string()), None);
        let slow =
            BodyTemplate::new("2026-05-28T00:00:00.123Z", "e", &actor, &subject, &details).unwrap();
        let text = jcs(&details).unwrap();
        let fast = BodyTemplate::from_canonical_details(
            "2026-05-28T00:00:00.123Z",
            "e",
            &actor,
            &subject,
            &text,
        );
        assert_eq!(fast.unwrap(), Some(slow));
        // Proven canonical: numbers in their JCS (ECMAScript) form, fractions included. Not
        // provable: whitespace, unsorted keys, other number spellings, trailing bytes, escapes
        // JCS does not write.
        for (text, provable) in [
            (&b"[0.62]"[..], true),
            (b"[-1.5e-7]", true),
            (b"[1e+21]", true),
            (b"[9007199254740992]", true),
            (b"[0]", true),
            (b"{ \"a\":1}", false),
            (b"{\"b\":1,\"a\":2}", false),
            (b"[1.50]", false),
            (b"[1E3]", false),
            (b"[-0]", false),
            (b"[+1]", false),
            (b"[.5]", false),
            (b"[1e21]", false),
            (b"[9007199254740993]", false),
            (b"[1e400]", false),
            (b"{}x", false),
            (b"\"\\u00e9\"", false),
        ] {
            let t = BodyTemplate::from_canonical_details("t", "e", &None, &None, text).unwrap();
            assert_eq!(t.is_some(), provable, "{}", String::from_utf8_lossy(text));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// A template filled in at any position hashes exactly like the strict path, whatever the
        /// members hold (including `details` that contain the chain-position members' text).
        #[test]
        fn body_template_hashes_like_the_entry(
            details in arb_json(),
            seq in prop_oneof![Just(0u64), Just(1u64), Just(9u64), Just(10u64), Just(MAX_SEQ), 0..MAX_SEQ],
            prev in any::<[u8; 32]>(),
            actor in proptest::option::of("[ -~é\"\\\\]{0,12}"),
            subject in proptest::option::of("[ -~é\"\\\\]{0,12}"),
        ) {
            let placeholder = json!({"a": 1, "prevHash": GENESIS_PREV_HASH, "seq": 0, "subject": null});
            for details in [details.clone(), json!({"x": details, "y": placeholder})] {
                let e = Entry {
                    seq,
                    time: "2026-05-28T00:00:00.123Z".into(),
                    event_type: "action.verified".into(),
                    actor: actor.clone(),
                    subject: subject.clone(),
                    details,
                    prev_hash: hex::encode(prev),
                    hash: String::new(),
                };
                let t = BodyTemplate::new(&e.time, &e.event_type, &e.actor, &e.subject, &e.details).unwrap();
                prop_assert_eq!(hex::encode(t.hash(seq, &prev).unwrap()), e.expected_hash().unwrap());
                // From serialized details: canonical ones give the same template; anything else
                // (here serde_json's own output, which differs for floats and key order of
                // non-ASCII keys) is either proven canonical or refused, never mis-hashed.
                for text in [jcs(&e.details).unwrap(), serde_json::to_vec(&e.details).unwrap()] {
                    let fast = BodyTemplate::from_canonical_details(&e.time, &e.event_type, &e.actor, &e.subject, &text).unwrap();
                    if let Some(fast) = fast {
                        prop_assert_eq!(&fast, &t);
                    }
                }
            }
        }

        /// The fast path accepts only lines the strict path accepts, with the same digest, and it
        /// accepts typical canonical lines; mutated bytes never make the two paths disagree.
        #[test]
        fn fast_and_strict_paths_agree(details in arb_json(), pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
            let e = sample(details);
            let line = e.canonical_line().unwrap();
            let strict = EntryDigest::of_line(&line, true);
            prop_assert_eq!(strict.as_ref().ok(), Some(&EntryDigest::of_entry(&e).unwrap()));
            if let Some(fast) = fastline::digest(&line) {
                prop_assert_eq!(Some(&fast), strict.as_ref().ok());
            }
            let mut mutated = line.clone();
            let i = pos.index(mutated.len());
            mutated[i] = byte;
            if let Some(fast) = fastline::digest(&mutated) {
                prop_assert_eq!(Some(fast), EntryDigest::of_line(&mutated, true).ok());
            }
            let mut removed = line.clone();
            removed.remove(i);
            if let Some(fast) = fastline::digest(&removed) {
                prop_assert_eq!(Some(fast), EntryDigest::of_line(&removed, true).ok());
            }
        }
    }
}
