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

    /// Decision batches write each kind of row with one array statement
    /// ([`crate::postgres_batch`]); batches holding other ops take the generic sqlx path.
    async fn commit_decisions_direct(
        &self,
        items: &[crate::DecisionWrite],
    ) -> crate::Result<Option<Vec<crate::DecisionOutcome>>> {
        if !crate::postgres_batch::applies(items) {
            return Ok(None);
        }
        crate::postgres_batch::commit(&self.pool, items)
            .await
            .map(Some)
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

    /// Two writers (two replicas, or one server's overlapping batches) whose batches claim the
    /// same nonces in opposite orders — each a replay of the other, as an attacker replaying
    /// captured requests across replicas would send them — must not deadlock: PostgreSQL would
    /// abort one transaction and fail every request of its batch. Each nonce is claimed once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn crossed_replays_in_two_batches_do_not_deadlock() {
        let Some(db) = crate::testing::TestDb::postgres("crossed_replays").await else {
            return;
        };
        let a = crate::connect(&db.url, 2).await.unwrap();
        let b = crate::connect(&db.url, 2).await.unwrap();
        let org = uuid::Uuid::now_v7();
        let item = |n: usize| crate::DecisionWrite {
            nonce: Some(crate::NonceClaim {
                signed_at: 1_700_000_000,
                org_id: org,
                agent_id: "aim_crossed".into(),
                nonce: format!("nonce-{n:06}-abcdefgh"),
                expires_at: 1_700_000_300_000,
            }),
            audit: crate::AuditRecord {
                org_id: None,
                at: 1_700_000_000_000,
                event_type: "test.crossed".into(),
                actor: "system".into(),
                subject: None,
                payload: serde_json::json!({ "n": n }),
                client_addr: None,
            },
            replay_audit: None,
            op: crate::DecisionOp::None,
            prepared: None,
        };
        for round in 0..5 {
            let base = round * 400;
            let up: Vec<_> = (base..base + 400).map(item).collect();
            let down: Vec<_> = (base..base + 400).rev().map(item).collect();
            let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
            let (ba, bb) = (barrier.clone(), barrier);
            let (sa, sb) = (a.clone(), b.clone());
            let ta = tokio::spawn(async move {
                ba.wait().await;
                sa.commit_decisions(&up).await
            });
            let tb = tokio::spawn(async move {
                bb.wait().await;
                sb.commit_decisions(&down).await
            });
            let (ra, rb) = (ta.await.unwrap(), tb.await.unwrap());
            let ra = ra.unwrap_or_else(|e| panic!("round {round}: first batch failed: {e}"));
            let rb = rb.unwrap_or_else(|e| panic!("round {round}: second batch failed: {e}"));
            let committed = ra
                .iter()
                .chain(rb.iter())
                .filter(|o| **o == crate::DecisionOutcome::Committed)
                .count();
            assert_eq!(
                committed, 400,
                "round {round}: every nonce claimed exactly once"
            );
        }
        a.close().await;
        b.close().await;
    }

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
