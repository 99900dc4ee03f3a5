//! The embedded SQLite backend (default).

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A [`crate::Store`] on one SQLite file, in WAL mode with foreign keys enforced.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://PATH`, `sqlite:PATH` or a plain
    /// path) and applies migrations. On Unix a newly created file is restricted to its owner.
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
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections.max(1))
            .connect_with(opts)
            .await?;
        restrict_permissions(&path);
        MIGRATOR.run(&pool).await?;
        Ok(SqliteStore { pool })
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
