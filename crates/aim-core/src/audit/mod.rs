//! The tamper-evident audit log: a SHA-256 hash chain whose entries are also the leaves of an
//! RFC 9162 Merkle tree, with signed checkpoints.
//!
//! - [`merkle`]: tree hash, inclusion/consistency proofs, frontier (pure).
//! - [`chain`]: entries, their canonical bytes and hashes, streaming verification (pure).
//! - [`checkpoint`]: signed tree heads.
//! - [`file`]: the local JSONL store (`aim-core/audit.jsonl`).
//!
//! `merkle`, `chain` and `checkpoint` know nothing about where entries live, so the server stores
//! the same entries in a database and verifies them with the same code.

pub mod chain;
pub mod checkpoint;
pub mod file;
pub mod merkle;
