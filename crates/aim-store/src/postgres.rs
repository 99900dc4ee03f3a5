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
        crate::postgres_batch::commit(&self.pool, items, None)
            .await
            .map(Some)
    }

    /// [`crate::AgentStore::commit_decisions_then`] on the array path: `committing` is called
    /// just before COMMIT. `Err(committing)` hands it back for batches of the generic path.
    async fn commit_decisions_overlapped(
        &self,
        items: &[crate::DecisionWrite],
        committing: Box<dyn FnOnce() + Send>,
    ) -> crate::Result<Result<Vec<crate::DecisionOutcome>, Box<dyn FnOnce() + Send>>> {
        if items.is_empty() || !crate::postgres_batch::applies(items) {
            return Ok(Err(committing));
        }
        crate::postgres_batch::commit(&self.pool, items, Some(committing))
            .await
            .map(Ok)
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

    /// Commits `up` on `a` and `down` on `b` at the same moment (two writers, as two replicas
    /// would); panics if either batch fails.
    async fn at_once(
        a: &std::sync::Arc<dyn crate::Store>,
        b: &std::sync::Arc<dyn crate::Store>,
        up: Vec<crate::DecisionWrite>,
        down: Vec<crate::DecisionWrite>,
        round: usize,
    ) -> (Vec<crate::DecisionOutcome>, Vec<crate::DecisionOutcome>) {
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
        (
            ra.unwrap_or_else(|e| panic!("round {round}: first batch failed: {e}")),
            rb.unwrap_or_else(|e| panic!("round {round}: second batch failed: {e}")),
        )
    }

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
            let (ra, rb) = at_once(&a, &b, up, down, round).await;
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

    /// Outcome reports on the same decisions, sent to two writers in opposite orders, must not
    /// deadlock either (each report locks its decision's row): each decision takes one report.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn crossed_outcome_reports_in_two_batches_do_not_deadlock() {
        let Some(db) = crate::testing::TestDb::postgres("crossed_reports").await else {
            return;
        };
        let a = crate::connect(&db.url, 2).await.unwrap();
        let b = crate::connect(&db.url, 2).await.unwrap();
        let org = uuid::Uuid::now_v7();
        let agent = "aim_reporter";
        let now = 1_700_000_000_000;
        let admin = crate::NewUser {
            id: uuid::Uuid::now_v7(),
            org_id: org,
            email: "admin@crossed.test".into(),
            password_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".into(),
            role: crate::Role::Admin,
            must_change_password: false,
            created_by: None,
            created_at: now,
        };
        let organization = crate::Organization {
            id: org,
            name: "crossed".into(),
            require_2fa_admins: false,
            created_at: now,
            enforcement_mode: "strict".into(),
        };
        let record = |event: &str| crate::AuditRecord {
            org_id: Some(org),
            at: now,
            event_type: event.into(),
            actor: format!("agent:{agent}"),
            subject: Some(format!("agent:{agent}")),
            payload: serde_json::json!({}),
            client_addr: Some("127.0.0.1".into()),
        };
        a.create_org_with_admin(&organization, &admin, &record("org.created"))
            .await
            .unwrap();
        let item = |nonce: String, op: crate::DecisionOp| crate::DecisionWrite {
            nonce: Some(crate::NonceClaim {
                signed_at: now / 1000,
                org_id: org,
                agent_id: agent.into(),
                nonce,
                expires_at: now + 300_000,
            }),
            audit: record("agent.action.result"),
            replay_audit: None,
            op,
            prepared: None,
        };
        let ids: Vec<uuid::Uuid> = (0..300).map(|_| uuid::Uuid::now_v7()).collect();
        let decisions: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(n, id)| {
                let row = crate::testing::decision_row(
                    *id,
                    org,
                    agent,
                    crate::ActionStatus::Approved,
                    now,
                );
                item(
                    format!("decide-{n}"),
                    crate::DecisionOp::InsertAction(Box::new(row)),
                )
            })
            .collect();
        assert!(
            a.commit_decisions(&decisions)
                .await
                .unwrap()
                .iter()
                .all(|o| *o == crate::DecisionOutcome::Committed)
        );
        let report = |side: &str, n: usize| {
            item(
                format!("{side}-{n}"),
                crate::DecisionOp::ActionResult {
                    org_id: org,
                    action_id: ids[n],
                    agent_id: agent.into(),
                    result: crate::ActionResult::Success,
                    detail: Some(side.into()),
                    at: now + 1,
                },
            )
        };
        // A batch holding another kind of op (here an MCP server registration) takes the
        // generic write path: rounds 0 and 1 test the array path, round 2 the generic one.
        let mcp = |side: &str| {
            item(
                format!("mcp-{side}"),
                crate::DecisionOp::CreateMcpServer(Box::new(crate::McpServerRow {
                    id: uuid::Uuid::now_v7(),
                    org_id: org,
                    name: format!("server-{side}"),
                    public_key: None,
                    pinned_hash: None,
                    pinned_manifest: None,
                    pinned_signed: false,
                    pinned_at: None,
                    pinned_by: None,
                    drift_at: None,
                    drift_hash: None,
                    drift_severity: None,
                    created_at: now,
                    created_by: "test".into(),
                })),
            )
        };
        for round in 0..3 {
            let range = round * 100..round * 100 + 100;
            let mut up: Vec<_> = range.clone().map(|n| report("up", n)).collect();
            let mut down: Vec<_> = range.rev().map(|n| report("down", n)).collect();
            if round == 2 {
                up.insert(0, mcp("up"));
                down.insert(0, mcp("down"));
            }
            let (ra, rb) = at_once(&a, &b, up, down, round).await;
            let applied = ra
                .iter()
                .chain(rb.iter())
                .filter(|o| **o == crate::DecisionOutcome::Committed)
                .count();
            let mcp_items = if round == 2 { 2 } else { 0 };
            assert_eq!(
                applied,
                100 + mcp_items,
                "round {round}: each decision takes one report"
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
