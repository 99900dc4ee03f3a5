//! MCP (Model Context Protocol) server attestation for AIM.
//!
//! - [`discovery`]: read the MCP client configurations a user has (Claude Desktop, Claude Code,
//!   Cursor, Windsurf, VS Code, Gemini CLI) for macOS, Windows and Linux layouts, from an explicit
//!   [`discovery::DiscoveryEnv`] so every layout is testable on any OS. Env var and header
//!   *values* never leave this module.
//! - [`catalog`]: classification of common servers (filesystem, postgres, github, …).
//! - [`probe`]: speak MCP (JSON-RPC 2.0) for real over stdio and streamable HTTP; never calls a
//!   tool; a spawned child is always killed and reaped.
//! - [`manifest`]: the canonical capability manifest, its surface and structural hashes, and the
//!   mapping of tools to capability classes.
//! - [`signed`]: Ed25519-signed manifests over RFC 8785 bytes.
//! - [`drift`]: precise diff of two manifests with severities; [`pin`]: the local pin store.
//!
//! Everything a server needs (hashing, classification, signature verification, diff) is pure and
//! synchronous; only [`probe`] does I/O on the network or spawns processes.

pub mod catalog;
pub mod discovery;
pub mod drift;
pub mod error;
pub mod jsonc;
pub mod manifest;
pub mod pin;
pub mod probe;
pub mod signed;

pub use error::{Error, Result};
