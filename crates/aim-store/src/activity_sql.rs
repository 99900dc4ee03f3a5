//! The SQL of [`crate::TrustStore`], written once for both backends (same conventions as
//! [`crate::sql`]); expanded next to `impl_store!` so it reuses that backend's `append_audit_on`.
//! The counters themselves are written by `append_audits_on` (see [`crate::activity`]).

macro_rules! trust_history_cols {
    () => {
        "id, org_id, agent_id, at, previous_score, new_score, delta, level, reason, actor, factors"
    };
}
pub(crate) use trust_history_cols;

macro_rules! impl_trust_store {
    ($store:ident) => {
        mod trust_store_impl {
            use super::append_audit_on;
            use uuid::Uuid;
            use $crate::activity::*;
            use $crate::activity_sql::trust_history_cols;
            use $crate::model::AuditRecord;
            use $crate::Result;

            #[async_trait::async_trait]
            impl TrustStore for super::$store {
                async fn activity_evidence(
                    &self,
                    org_id: Uuid,
                    agent_id: &str,
                    w: &ActivityWindows,
                ) -> Result<ActivityEvidence> {
                    // $1 agent, $2 org, $3 first day of 90, $4 of 30, $5 of 7, $6 due_from,
                    // $7 due_expired_by, $8 DUE_SAMPLE. SUM of BIGINT is NUMERIC on PostgreSQL:
                    // cast back. An approval ends at or after its creation, so `created_at <= $7`
                    // only narrows the index range.
                    Ok(sqlx::query_as::<_, ActivityEvidence>(
                        "SELECT \
                         CAST(COALESCE(SUM(CASE WHEN day >= $4 THEN key_proofs ELSE 0 END), 0) AS BIGINT) AS key_proofs_30d, \
                         CAST(COALESCE(SUM(CASE WHEN day >= $4 THEN key_proof_failures ELSE 0 END), 0) AS BIGINT) AS key_proof_failures_30d, \
                         CAST(COALESCE(SUM(challenges_passed), 0) AS BIGINT) AS challenges_passed_90d, \
                         CAST(COALESCE(SUM(CASE WHEN day >= $4 THEN decisions ELSE 0 END), 0) AS BIGINT) AS decisions_30d, \
                         CAST(COALESCE(SUM(CASE WHEN day >= $4 THEN violations ELSE 0 END), 0) AS BIGINT) AS violations_30d, \
                         CAST(COALESCE(SUM(CASE WHEN day >= $5 THEN results_ok ELSE 0 END), 0) AS BIGINT) AS results_ok_7d, \
                         CAST(COALESCE(SUM(CASE WHEN day >= $5 THEN results_failed ELSE 0 END), 0) AS BIGINT) AS results_failed_7d, \
                         (SELECT a.last_key_proof_at FROM agent_activity a WHERE a.agent_id = $1 AND a.org_id = $2 \
                            AND a.last_key_proof_at IS NOT NULL ORDER BY a.day DESC LIMIT 1) AS last_key_proof_at, \
                         (SELECT a.last_activity_at FROM agent_activity a WHERE a.agent_id = $1 AND a.org_id = $2 \
                            AND a.last_activity_at IS NOT NULL ORDER BY a.day DESC LIMIT 1) AS last_activity_at, \
                         (SELECT COUNT(*) FROM (SELECT d.result FROM action_decisions d \
                            WHERE d.org_id = $2 AND d.agent_id = $1 AND d.status = 'approved' \
                            AND d.created_at >= $6 AND d.created_at <= $7 AND d.expires_at <= $7 \
                            ORDER BY d.created_at DESC LIMIT $8) due) AS results_due, \
                         (SELECT COUNT(due.result) FROM (SELECT d.result FROM action_decisions d \
                            WHERE d.org_id = $2 AND d.agent_id = $1 AND d.status = 'approved' \
                            AND d.created_at >= $6 AND d.created_at <= $7 AND d.expires_at <= $7 \
                            ORDER BY d.created_at DESC LIMIT $8) due) AS results_present \
                         FROM agent_activity WHERE agent_id = $1 AND org_id = $2 AND day >= $3",
                    )
                    .bind(agent_id)
                    .bind(org_id)
                    .bind(w.day_90)
                    .bind(w.day_30)
                    .bind(w.day_7)
                    .bind(w.due_from)
                    .bind(w.due_expired_by)
                    .bind(DUE_SAMPLE)
                    .fetch_one(&self.pool)
                    .await?)
                }

                async fn last_trust_change(
                    &self,
                    org_id: Uuid,
                    agent_id: &str,
                ) -> Result<Option<TrustChange>> {
                    Ok(sqlx::query_as::<_, TrustChange>(concat!(
                        "SELECT ",
                        trust_history_cols!(),
                        " FROM trust_history WHERE org_id = $1 AND agent_id = $2 ORDER BY id DESC LIMIT 1"
                    ))
                    .bind(org_id)
                    .bind(agent_id)
                    .fetch_optional(&self.pool)
                    .await?)
                }

                async fn insert_trust_change(&self, c: &TrustChange, audit: &AuditRecord) -> Result<()> {
                    let mut tx = self.writer().begin().await?;
                    sqlx::query(concat!(
                        "INSERT INTO trust_history (",
                        trust_history_cols!(),
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                    ))
                    .bind(c.id)
                    .bind(c.org_id)
                    .bind(&c.agent_id)
                    .bind(c.at)
                    .bind(c.previous_score)
                    .bind(c.new_score)
                    .bind(c.delta)
                    .bind(&c.level)
                    .bind(&c.reason)
                    .bind(&c.actor)
                    .bind(&c.factors)
                    .execute(&mut *tx)
                    .await?;
                    append_audit_on(&mut tx, audit).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn list_trust_history(
                    &self,
                    org_id: Uuid,
                    agent_id: &str,
                    before: Option<Uuid>,
                    limit: u32,
                ) -> Result<Vec<TrustChange>> {
                    // Uuid::max() as "no cursor" keeps one statement for both cases.
                    Ok(sqlx::query_as::<_, TrustChange>(concat!(
                        "SELECT ",
                        trust_history_cols!(),
                        " FROM trust_history WHERE org_id = $1 AND agent_id = $2 AND id < $3 ORDER BY id DESC LIMIT $4"
                    ))
                    .bind(org_id)
                    .bind(agent_id)
                    .bind(before.unwrap_or(Uuid::max()))
                    .bind(i64::from(limit.clamp(1, 500)))
                    .fetch_all(&self.pool)
                    .await?)
                }

                async fn list_audit_chain_orgs(&self, after: Option<Uuid>, limit: u32) -> Result<Vec<Uuid>> {
                    let sql = if after.is_some() {
                        "SELECT org_id FROM audit_heads WHERE org_id > $1 ORDER BY org_id LIMIT $2"
                    } else {
                        "SELECT org_id FROM audit_heads WHERE org_id >= $1 ORDER BY org_id LIMIT $2"
                    };
                    let rows: Vec<(Uuid,)> = sqlx::query_as(sql)
                    .bind(after.unwrap_or(Uuid::nil()))
                    .bind(i64::from(limit.clamp(1, 1000)))
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(rows.into_iter().map(|(id,)| id).collect())
                }
            }
        }
    };
}
pub(crate) use impl_trust_store;
