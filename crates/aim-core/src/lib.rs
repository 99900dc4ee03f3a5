//! `aim-core`: the pure domain library of AIM (Agent Identity Management).
//!
//! Synchronous, no network, no database. It touches the filesystem only where the concept *is* a
//! file: the identity store, pinned peers, the replay cache and the local audit log.
//!
//! Modules are named after the concept they implement:
//! - [`keys`]: Ed25519 key pairs, public-key encodings, self-certifying agent ids, sign/verify.
//! - [`canonical`]: RFC 8785 canonical JSON, the bytes that get signed or hashed.
//! - [`seal`]: AES-256-GCM envelope for private keys at rest (Argon2id passphrase or key file).
//! - [`fsio`]: atomic writes and permission checks for secret files.
//! - [`identity`]: the on-disk identity store (`$OPENA2A_HOME/aim-core/identities/<agent-id>/`).
//! - [`peer`]: pinned public keys of other agents (standalone peer trust).
//! - [`pyjson`]: the bytes Python's sorted `json.dumps` produces (what the Python aim-sdk signs).
//! - [`aip`]: AIP §5.1 challenge-response, with a replay cache.
//! - [`audit`]: the SHA-256 hash chain, RFC 9162 Merkle tree, proofs and signed checkpoints.
//! - [`standards`]: AIP / ATX / ATP verification and the fixture-driven conformance runner.
//! - [`anomaly`]: per-agent statistical anomaly detectors (EWMA rates, first use, bursts, origins).
//! - [`correlation`]: sliding-window rules that join security events into incidents.
//! - [`trust`]: the 8-factor trust score computed from evidence (`docs/TRUST.md`).
//! - [`clock`]: injected time.
//! - [`request_signing`]: the canonical bytes and headers of signed agent requests to the server.

pub mod aip;
pub mod anomaly;
pub mod audit;
pub mod canonical;
pub mod clock;
pub mod correlation;
pub mod error;
pub mod fsio;
pub mod identity;
pub mod keys;
pub mod peer;
pub mod pyjson;
pub mod request_signing;
pub mod seal;
pub mod standards;
pub mod trust;

pub use error::{Error, Result};
