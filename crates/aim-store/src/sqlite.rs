//! The embedded SQLite backend (default).

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A [`crate::Store`] on one SQLite file, in WAL mode with foreign keys enforced.
///
/// Invariant: every write goes through ONE dedicated connection (`writer`); the `pool` of
/// readers is opened read-only, so a write routed to it fails loudly instead of competing.
/// SQLite admits one writer at a time: with writers on several connections, a transaction that
/// finds the lock taken sleeps in the busy handler (1, 2, 5, 10, … ms) instead of queueing, and
/// every connection whose file another one changed starts its next transaction on a cold page
/// cache. Queueing on the one-connection pool wakes the next writer as soon as the previous
/// commits, and the writer's cache stays warm. Readers see committed data only (WAL snapshots).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://PATH`, `sqlite:PATH` or a plain
    /// path) and applies migrations. On Unix a newly created file is restricted to its owner.
    /// `max_connections` bounds the read-only connections; the writer is one more.
    pub async fn connect(url: &str, max_connections: u32) -> crate::Result<Self> {
        let url = if url.starts_with("sqlite:") {
            url.to_string()
        } else {
            format!("sqlite://{url}")
        };
        let opts = SqliteConnectOptions::from_str(&url)
            .map_err(|e| crate::Error::Location(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let path = opts.get_filename().to_path_buf();
        let writer = SqlitePoolOptions::new()
            .min_connections(1)
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts.clone())
            .await?;
        restrict_permissions(&path);
        MIGRATOR.run(&writer).await?;
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect_with(opts.read_only(true))
            .await?;
        Ok(SqliteStore { pool, writer })
    }

    /// The one connection every write goes through (see the type's invariant).
    fn writer(&self) -> &SqlitePool {
        &self.writer
    }
}

#[cfg(unix)]
fn restrict_permissions(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    for p in [
        path.to_path_buf(),
        path.with_extension("db-wal"),
        path.with_extension("db-shm"),
    ] {
        if p.exists()
            && let Err(e) = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600))
        {
            tracing::warn!(path = %p.display(), error = %e, "cannot restrict database file permissions");
        }
    }
}

#[cfg(not(unix))]
fn restrict_permissions(_path: &std::path::Path) {}

crate::sql::impl_store!(SqliteStore, sqlx::SqliteConnection, sqlx::Sqlite, "sqlite");
crate::agents_sql::impl_agent_store!(SqliteStore, sqlx::SqliteConnection, sqlx::Sqlite);
crate::actions_sql::impl_action_store!(SqliteStore, sqlx::SqliteConnection, sqlx::Sqlite);
crate::activity_sql::impl_trust_store!(SqliteStore);
crate::mcp_sql::impl_mcp_store!(SqliteStore);
crate::monitoring_sql::impl_monitor_store!(SqliteStore, sqlx::SqliteConnection, sqlx::Sqlite);
crate::capabilities_sql::impl_capability_store!(SqliteStore, sqlx::SqliteConnection, sqlx::Sqlite);
