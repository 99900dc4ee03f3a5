//! The tamper-evident audit log: a SHA-256 hash chain of canonical JSON entries, whose entries are
//! also the leaves of an RFC 9162 Merkle tree, with Ed25519-signed checkpoints.
//!
//! - [`merkle`]: RFC 9162 tree hashing, inclusion and consistency proofs, compact frontier (pure).
//!
//! The byte-level format is specified in `docs/audit-format.md`.

pub mod merkle;
