//! `aim-store`: the storage contract of the AIM server and its two implementations.
//!
//! - [`Store`] is the contract: every durable read and write the server performs goes through it.
//! - [`sqlite::SqliteStore`] (embedded, the default) and [`postgres::PgStore`] implement it with the
//!   *same* SQL text (written once in [`sql`]); each backend has its own migrations folder
//!   (`migrations/sqlite`, `migrations/postgres`), applied by [`connect`].
//!
//! Invariants every implementation keeps:
//! - Every query on tenant data is scoped by `org_id`: a caller can never read or change a row of
//!   another organization by guessing its id.
//! - Every security-relevant change takes an [`AuditRecord`] and writes it in the **same
//!   transaction** as the change (fail closed: if the audit row cannot be written, the change is
//!   rolled back and the caller gets an error).
//! - Secrets are never stored in clear: passwords as Argon2id PHC strings, refresh tokens, API keys
//!   and recovery codes as SHA-256 digests, TOTP secrets and signing keys as sealed blobs
//!   (encrypted by the server before they reach the store).
//! - Lists are keyset-paginated on the UUIDv7 primary key (`id > cursor ORDER BY id LIMIT n`), so
//!   a page costs the same at row 10 and at row 10 million.

pub mod actions;
mod actions_sql;
pub mod activity;
mod activity_sql;
pub mod agents;
mod agents_sql;
pub mod audit_chain;
pub mod capabilities;
mod capabilities_sql;
pub mod error;
pub mod mcp;
mod mcp_sql;
pub mod model;
pub mod monitoring;
mod monitoring_sql;
pub mod postgres;
mod postgres_batch;
mod sql;
pub mod sqlite;
mod sqlite_audit_read;
mod sqlite_batch;
pub mod store;
pub mod testing;
mod write_sql;

use std::sync::Arc;

pub use actions::*;
pub use activity::{
    ActivityDelta, ActivityEvidence, ActivityWindows, DUE_SAMPLE, TrustChange, TrustStore,
    activity_of, aggregate_activity,
};
pub use agents::*;
pub use capabilities::*;
pub use error::{Error, Result};
pub use mcp::*;
pub use model::*;
pub use monitoring::*;
pub use store::Store;

/// Opens the store named by `url` and applies its migrations.
///
/// `postgres://` / `postgresql://` URLs select PostgreSQL; `sqlite:` URLs (or a plain path)
/// select SQLite, creating the file (mode 0600 on Unix) if missing.
pub async fn connect(url: &str, max_connections: u32) -> Result<Arc<dyn Store>> {
    connect_with(url, max_connections, sqlite::SqliteDurability::default()).await
}

/// [`connect`] with the durability of SQLite commits (PostgreSQL ignores it: its commits follow
/// the server's `synchronous_commit`).
pub async fn connect_with(
    url: &str,
    max_connections: u32,
    sqlite_durability: sqlite::SqliteDurability,
) -> Result<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(
            postgres::PgStore::connect(url, max_connections).await?,
        ))
    } else {
        Ok(Arc::new(
            sqlite::SqliteStore::connect_with(url, max_connections, sqlite_durability).await?,
        ))
    }
}

/// Backend name for a URL (for logs and `/ready`), never including credentials.
pub fn backend_name(url: &str) -> &'static str {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        "postgres"
    } else {
        "sqlite"
    }
}
