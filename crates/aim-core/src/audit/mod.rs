//! The tamper-evident audit log: a SHA-256 hash chain of canonical JSON entries, whose entries are
//! also the leaves of an RFC 9162 Merkle tree, with Ed25519-signed checkpoints.
//!
//! - [`merkle`]: RFC 9162 tree hashing, inclusion and consistency proofs, compact frontier (pure).
//! - [`chain`]: entries, their canonical bytes and hashes, and the streaming [`chain::ChainVerifier`]
//!   (storage independent: the server feeds it database rows).
//! - [`checkpoint`]: signed `(tree size, root)` statements.
//! - [`file`]: the local JSONL log of the `opena2a` CLI.
//!
//! The byte-level format is specified in `docs/audit-format.md`.

pub mod chain;
pub mod checkpoint;
pub mod file;
pub mod merkle;

pub use chain::{BodyTemplate, ChainVerifier, Entry, NewEntry, Problem, ProblemKind};
pub use checkpoint::Checkpoint;
pub use file::{AuditFile, InclusionProof, VerifyReport};
