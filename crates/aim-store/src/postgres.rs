//! The PostgreSQL backend (selected by a `postgres://` URL).

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A [`crate::Store`] on a PostgreSQL database. Several server replicas may share one database:
/// migrations take an advisory lock, bootstrap is claimed by a unique row, and single-use tokens
/// are consumed by conditional updates.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` and applies migrations.
    pub async fn connect(url: &str, max_connections: u32) -> crate::Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(PgStore { pool })
    }

    /// Where writes go: the same pool as reads (PostgreSQL queues writers itself and shares its
    /// buffer cache between connections; compare `SqliteStore`).
    fn writer(&self) -> &PgPool {
        &self.pool
    }

    /// Every decision batch takes the sqlx path (compare `SqliteStore`).
    async fn commit_decisions_direct(
        &self,
        _items: &[crate::DecisionWrite],
    ) -> crate::Result<Option<Vec<crate::DecisionOutcome>>> {
        Ok(None)
    }

    /// Audit chain pages take the sqlx path (compare `SqliteStore`).
    async fn list_audit_chain_direct(
        &self,
        _org_id: uuid::Uuid,
        _from_seq: u64,
        _limit: u32,
    ) -> crate::Result<Option<Vec<crate::AuditRow>>> {
        Ok(None)
    }

    /// Nothing besides the pool to close (compare `SqliteStore`).
    async fn close_maintenance(&self) {}
}

crate::sql::impl_store!(PgStore, sqlx::PgConnection, sqlx::Postgres, "postgres");
crate::agents_sql::impl_agent_store!(PgStore, sqlx::PgConnection, sqlx::Postgres);
crate::actions_sql::impl_action_store!(PgStore, sqlx::PgConnection, sqlx::Postgres);
crate::activity_sql::impl_trust_store!(PgStore);
crate::mcp_sql::impl_mcp_store!(PgStore);
crate::monitoring_sql::impl_monitor_store!(PgStore, sqlx::PgConnection, sqlx::Postgres);
crate::capabilities_sql::impl_capability_store!(PgStore, sqlx::PgConnection, sqlx::Postgres);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn audit_nodes_are_rekeyed_by_the_size_that_closed_them() {
        let Some(db) = crate::testing::TestDb::postgres("audit_nodes_rekey").await else {
            return;
        };
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&db.url)
            .await
            .unwrap();
        crate::check_nodes_rekey!(pool, MIGRATOR);
        pool.close().await;
    }
}
