//! The embedded SQLite backend (default).

use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A [`crate::Store`] on one SQLite file, in WAL mode with foreign keys enforced.
///
/// Invariant: every write holds ONE dedicated connection (`writer`), the store's write lock;
/// decision batches commit on the store's batch connection while they hold it
/// ([`crate::sqlite_batch`]), everything else on `writer` itself. The `pool` of readers is
/// opened read-only, so a write routed to it fails loudly instead of competing.
/// SQLite admits one writer at a time: with writers on several connections, a transaction that
/// finds the lock taken sleeps in the busy handler (1, 2, 5, 10, … ms) instead of queueing, and
/// every connection whose file another one changed starts its next transaction on a cold page
/// cache. Queueing on the one-connection pool wakes the next writer as soon as the previous
/// commits, and the writer's cache stays warm. Readers see committed data only (WAL snapshots).
///
/// Invariant: WAL checkpoints (copying committed pages back into the database file and syncing
/// it) run on a third connection, `maint`, in a background task every [`WAL_CHECKPOINT_EVERY`]
/// (`PRAGMA wal_checkpoint(PASSIVE)`, which never blocks the writer or readers). The writer's own
/// automatic checkpoint stays on as a backstop at [`WAL_BACKSTOP_PAGES`] so the WAL stays bounded
/// even if the background task falls behind; it then only copies what the task has not.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    writer: SqlitePool,
    /// The checkpoint connection; the background task holds only a [`Weak`] and ends when the
    /// last clone of the store is dropped.
    maint: Arc<SqlitePool>,
    /// Where decision batches commit, with their statements compiled once.
    batch: Arc<crate::sqlite_batch::BatchConnection>,
}

/// When a commit on SQLite is durable (`PRAGMA synchronous` of the connections that write).
///
/// Both modes keep every committed transaction across a crash of the server process. They
/// differ on an operating-system crash or power loss: with [`SqliteDurability::Full`] the WAL is
/// synced at every commit, so a request answered after its commit (every audited write) is never
/// lost; with [`SqliteDurability::Normal`] the WAL is synced only at checkpoints, so the commits
/// made since the last one can be lost (SQLite's documented trade-off for WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteDurability {
    /// `synchronous = FULL` (the default).
    #[default]
    Full,
    /// `synchronous = NORMAL`.
    Normal,
}

impl SqliteDurability {
    /// The `PRAGMA synchronous` value.
    pub fn pragma(self) -> &'static str {
        match self {
            SqliteDurability::Full => "FULL",
            SqliteDurability::Normal => "NORMAL",
        }
    }

    fn sqlx(self) -> SqliteSynchronous {
        match self {
            SqliteDurability::Full => SqliteSynchronous::Full,
            SqliteDurability::Normal => SqliteSynchronous::Normal,
        }
    }
}

impl FromStr for SqliteDurability {
    type Err = crate::Error;

    /// `full` or `normal` (any case).
    fn from_str(s: &str) -> crate::Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "full" => Ok(SqliteDurability::Full),
            "normal" => Ok(SqliteDurability::Normal),
            _ => Err(crate::Error::Invalid(format!(
                "SQLite durability must be \"full\" or \"normal\", not {s:?}"
            ))),
        }
    }
}

/// How often the background task checkpoints the WAL.
pub const WAL_CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// WAL size (pages) at which the writer checkpoints by itself (SQLite's default is 1,000; with
/// the background task it is only reached when that task falls behind).
pub const WAL_BACKSTOP_PAGES: u32 = 16_384;

/// Size (bytes) a WAL file is truncated to after it was reset (bounds the file on disk).
pub(crate) const WAL_SIZE_LIMIT: u64 = 64 * 1024 * 1024;

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://PATH`, `sqlite:PATH` or a plain
    /// path) and applies migrations. On Unix a newly created file is restricted to its owner.
    /// `max_connections` bounds the read-only connections; the writer is one more.
    pub async fn connect(url: &str, max_connections: u32) -> crate::Result<Self> {
        Self::connect_with(url, max_connections, SqliteDurability::default()).await
    }

    /// [`SqliteStore::connect`] with the given durability of commits.
    pub async fn connect_with(
        url: &str,
        max_connections: u32,
        durability: SqliteDurability,
    ) -> crate::Result<Self> {
        let url = if url.starts_with("sqlite:") {
            url.to_string()
        } else {
            format!("sqlite://{url}")
        };
        let opts = SqliteConnectOptions::from_str(&url)
            .map_err(|e| crate::Error::Location(e.to_string()))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(durability.sqlx())
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let path = opts.get_filename().to_path_buf();
        // No ping before handing out a connection (sqlx's default): a SQLite connection is a
        // file handle in this process, and the ping is a round trip to the connection's worker
        // thread on every acquire — once per decision batch on the writer.
        let writer = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .min_connections(1)
            .max_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(
                opts.clone()
                    .pragma("wal_autocheckpoint", WAL_BACKSTOP_PAGES.to_string())
                    .pragma("journal_size_limit", WAL_SIZE_LIMIT.to_string())
                    // Statement journals (the undo log of one statement inside a transaction,
                    // e.g. a multi-row insert that may hit a conflict) stay in memory instead of
                    // spilling to a temporary file on every batch.
                    .pragma("temp_store", "MEMORY"),
            )
            .await?;
        restrict_permissions(&path);
        MIGRATOR.run(&writer).await?;
        let maint = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .min_connections(0)
            .max_connections(1)
            .connect_with(opts.clone().pragma("wal_autocheckpoint", "0"))
            .await?;
        let pool = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(max_connections.max(1))
            .connect_with(opts.read_only(true))
            .await?;
        let maint = Arc::new(maint);
        spawn_wal_checkpointer(Arc::downgrade(&maint), writer.clone());
        Ok(SqliteStore {
            pool,
            writer,
            maint,
            batch: Arc::new(crate::sqlite_batch::BatchConnection::new(path, durability)),
        })
    }

    /// One passive WAL checkpoint on the checkpoint connection (what the background task runs):
    /// `(wal pages, pages copied into the database file)`; `busy` checkpoints count as done.
    pub async fn checkpoint_wal(&self) -> crate::Result<(i64, i64)> {
        checkpoint_on(&self.maint).await
    }

    /// The one connection every write goes through (see the type's invariant).
    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    /// Decision batches whose ops all have a synchronous form run on the calling thread
    /// ([`crate::sqlite_batch`]); `None` sends the batch down the sqlx path.
    async fn commit_decisions_direct(
        &self,
        items: &[crate::DecisionWrite],
    ) -> crate::Result<Option<Vec<crate::DecisionOutcome>>> {
        if !crate::sqlite_batch::applies(items) {
            return Ok(None);
        }
        crate::sqlite_batch::commit(&self.writer, &self.batch, items)
            .await
            .map(Some)
    }

    /// Never overlaps batches: SQLite has one writer at a time (`committing` is handed back and
    /// called after the whole batch).
    async fn commit_decisions_overlapped(
        &self,
        _items: &[crate::DecisionWrite],
        committing: Box<dyn FnOnce() + Send>,
    ) -> crate::Result<Result<Vec<crate::DecisionOutcome>, Box<dyn FnOnce() + Send>>> {
        Ok(Err(committing))
    }

    /// Audit chain pages are read on the calling thread ([`crate::sqlite_audit_read`]).
    async fn list_audit_chain_direct(
        &self,
        org_id: uuid::Uuid,
        from_seq: u64,
        limit: u32,
    ) -> crate::Result<Option<Vec<crate::AuditRow>>> {
        crate::sqlite_audit_read::list_audit_chain(&self.pool, org_id, from_seq, limit)
            .await
            .map(Some)
    }

    /// Closes the checkpoint connection (the background task then ends) and the batch
    /// connection.
    async fn close_maintenance(&self) {
        self.maint.close().await;
        self.batch.close();
    }
}

async fn checkpoint_on(pool: &SqlitePool) -> crate::Result<(i64, i64)> {
    let (_busy, log, copied): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await?;
    Ok((log, copied))
}

/// The background checkpointer (see [`SqliteStore`]). Ends when the store is dropped or closed.
fn spawn_wal_checkpointer(maint: Weak<SqlitePool>, writer: SqlitePool) {
    tokio::spawn(async move {
        let mut failures = 0u32;
        loop {
            tokio::time::sleep(WAL_CHECKPOINT_EVERY).await;
            let Some(pool) = maint.upgrade() else { break };
            if writer.is_closed() || pool.is_closed() {
                break;
            }
            match checkpoint_on(&pool).await {
                Ok(_) => failures = 0,
                Err(e) => {
                    failures += 1;
                    // The writer's backstop keeps the WAL bounded meanwhile.
                    if failures == 1 || failures.is_multiple_of(300) {
                        tracing::warn!(error = %e, failures, "background WAL checkpoint failed");
                    }
                }
            }
        }
    });
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Closing the store closes every connection, the batch connection included: the last
    /// one to close checkpoints and removes the WAL file.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn close_closes_the_batch_connection_too() {
        let db = crate::testing::TestDb::sqlite().unwrap();
        let store = crate::connect(&db.url, 2).await.unwrap();
        let org = uuid::Uuid::now_v7();
        let item = crate::DecisionWrite {
            nonce: Some(crate::NonceClaim {
                signed_at: 1_767_225_600,
                org_id: org,
                agent_id: "aim_x".into(),
                nonce: "n1".into(),
                expires_at: 1_767_225_900_000,
            }),
            audit: crate::AuditRecord {
                org_id: Some(org),
                at: 1_767_225_600_000,
                event_type: "agent.heartbeat".into(),
                actor: "agent:aim_x".into(),
                subject: None,
                payload: serde_json::json!({}),
                client_addr: None,
            },
            replay_audit: None,
            op: crate::DecisionOp::None,
            prepared: None,
        };
        // A batch of plain records commits on the batch connection.
        assert_eq!(
            store.commit_decisions(&[item]).await.unwrap(),
            vec![crate::DecisionOutcome::Committed]
        );
        let path = db.url.trim_start_matches("sqlite://").to_string();
        let wal = std::path::PathBuf::from(format!("{path}-wal"));
        assert!(wal.exists(), "WAL in use while the store is open");
        store.close().await;
        assert!(!wal.exists(), "a connection stayed open after close");
    }

    /// The durability setting reaches both connections that commit (the sqlx writer and the
    /// batch connection); `full` is the default.
    #[tokio::test]
    async fn durability_applies_to_every_writing_connection() {
        assert_eq!(SqliteDurability::default(), SqliteDurability::Full);
        assert_eq!(
            "NORMAL".parse::<SqliteDurability>().unwrap(),
            SqliteDurability::Normal
        );
        assert!("off".parse::<SqliteDurability>().is_err());
        for (durability, want) in [(SqliteDurability::Full, 2), (SqliteDurability::Normal, 1)] {
            let db = crate::testing::TestDb::sqlite().unwrap();
            let store = SqliteStore::connect_with(&db.url, 2, durability)
                .await
                .unwrap();
            let writer: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(&store.writer)
                .await
                .unwrap();
            assert_eq!(writer, want, "{durability:?} on the writer");
            assert_eq!(
                store.batch.synchronous().unwrap(),
                want,
                "{durability:?} on the batch connection"
            );
            crate::Store::close(&store).await;
        }
    }

    #[tokio::test]
    async fn audit_nodes_are_rekeyed_by_the_size_that_closed_them() {
        let db = crate::testing::TestDb::sqlite().unwrap();
        let opts = SqliteConnectOptions::from_str(&db.url)
            .unwrap()
            .create_if_missing(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .unwrap();
        crate::check_nodes_rekey!(pool, MIGRATOR);
    }
}
