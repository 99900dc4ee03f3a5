//! The SQL of [`crate::McpStore`], written once for both backends (same conventions as
//! [`crate::sql`]); expanded next to `impl_store!` so it reuses that backend's `append_audit_on`.
//! The attestation write itself is `apply_op` of the signed-request writer (`agents_sql.rs`).

macro_rules! mcp_server_cols {
    () => {
        "id, org_id, name, public_key, pinned_hash, pinned_manifest, pinned_signed, pinned_at, \
         pinned_by, drift_at, drift_hash, drift_severity, created_at, created_by"
    };
}
pub(crate) use mcp_server_cols;

macro_rules! impl_mcp_store {
    ($store:ident) => {
        mod mcp_store_impl {
            use super::append_audit_on;
            use uuid::Uuid;
            use $crate::mcp::*;
            use $crate::mcp_sql::mcp_server_cols;
            use $crate::model::AuditRecord;
            use $crate::{Error, Result};

            #[async_trait::async_trait]
            impl McpStore for super::$store {
                async fn create_mcp_server(&self, s: &McpServerRow, audit: &AuditRecord) -> Result<()> {
                    let mut tx = self.writer().begin().await?;
                    sqlx::query(concat!(
                        "INSERT INTO mcp_servers (",
                        mcp_server_cols!(),
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
                    ))
                    .bind(s.id)
                    .bind(s.org_id)
                    .bind(&s.name)
                    .bind(&s.public_key)
                    .bind(&s.pinned_hash)
                    .bind(&s.pinned_manifest)
                    .bind(s.pinned_signed)
                    .bind(s.pinned_at)
                    .bind(&s.pinned_by)
                    .bind(s.drift_at)
                    .bind(&s.drift_hash)
                    .bind(&s.drift_severity)
                    .bind(s.created_at)
                    .bind(&s.created_by)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| match Error::from(e) {
                        Error::Conflict { .. } => Error::Conflict {
                            what: "MCP server with this name",
                        },
                        other => other,
                    })?;
                    append_audit_on(&mut tx, audit).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn get_mcp_server(&self, org_id: Uuid, id: Uuid) -> Result<Option<McpServerRow>> {
                    Ok(sqlx::query_as::<_, McpServerRow>(concat!(
                        "SELECT ",
                        mcp_server_cols!(),
                        " FROM mcp_servers WHERE org_id = $1 AND id = $2"
                    ))
                    .bind(org_id)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
                }

                async fn get_mcp_server_by_name(
                    &self,
                    org_id: Uuid,
                    name: &str,
                ) -> Result<Option<McpServerRow>> {
                    Ok(sqlx::query_as::<_, McpServerRow>(concat!(
                        "SELECT ",
                        mcp_server_cols!(),
                        " FROM mcp_servers WHERE org_id = $1 AND name = $2"
                    ))
                    .bind(org_id)
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?)
                }

                async fn list_mcp_servers(&self, org_id: Uuid) -> Result<Vec<McpServerRow>> {
                    Ok(sqlx::query_as::<_, McpServerRow>(concat!(
                        "SELECT ",
                        mcp_server_cols!(),
                        " FROM mcp_servers WHERE org_id = $1 ORDER BY name LIMIT 1000"
                    ))
                    .bind(org_id)
                    .fetch_all(&self.pool)
                    .await?)
                }

                async fn pin_mcp_server(
                    &self,
                    org_id: Uuid,
                    id: Uuid,
                    hash: &str,
                    manifest: &str,
                    signed: bool,
                    by: &str,
                    at: i64,
                    audit: &AuditRecord,
                ) -> Result<bool> {
                    let mut tx = self.writer().begin().await?;
                    let done = sqlx::query(
                        "UPDATE mcp_servers SET pinned_hash = $1, pinned_manifest = $2, pinned_signed = $3, \
                         pinned_at = $4, pinned_by = $5, drift_at = NULL, drift_hash = NULL, \
                         drift_severity = NULL WHERE org_id = $6 AND id = $7",
                    )
                    .bind(hash)
                    .bind(manifest)
                    .bind(signed)
                    .bind(at)
                    .bind(by)
                    .bind(org_id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                    if done.rows_affected() != 1 {
                        tx.rollback().await?;
                        return Ok(false);
                    }
                    append_audit_on(&mut tx, audit).await?;
                    tx.commit().await?;
                    Ok(true)
                }

                async fn mcp_attesters(
                    &self,
                    org_id: Uuid,
                    server_id: Uuid,
                    since: i64,
                ) -> Result<Vec<AttesterRow>> {
                    Ok(sqlx::query_as::<_, AttesterRow>(
                        "SELECT a.agent_id, a.manifest_hash, a.matches_pin, a.at, \
                         (SELECT h.new_score FROM trust_history h WHERE h.org_id = a.org_id \
                          AND h.agent_id = a.agent_id ORDER BY h.id DESC LIMIT 1) AS trust_score \
                         FROM mcp_attestations a WHERE a.org_id = $1 AND a.server_id = $2 AND a.at >= $3 \
                         AND a.id = (SELECT b.id FROM mcp_attestations b WHERE b.server_id = a.server_id \
                          AND b.agent_id = a.agent_id ORDER BY b.at DESC, b.id DESC LIMIT 1) \
                         ORDER BY a.agent_id LIMIT 10000",
                    )
                    .bind(org_id)
                    .bind(server_id)
                    .bind(since)
                    .fetch_all(&self.pool)
                    .await?)
                }

                async fn mcp_connections(
                    &self,
                    org_id: Uuid,
                    agent_id: &str,
                    since_day: i64,
                ) -> Result<Vec<ConnectionRow>> {
                    Ok(sqlx::query_as::<_, ConnectionRow>(
                        "SELECT u.server_id, s.name AS server_name, CAST(SUM(u.uses) AS BIGINT) AS uses, \
                         CAST(COUNT(*) AS BIGINT) AS days, MIN(u.first_at) AS first_at, MAX(u.last_at) AS last_at \
                         FROM mcp_usage u JOIN mcp_servers s ON s.id = u.server_id \
                         WHERE u.org_id = $1 AND u.agent_id = $2 AND u.day >= $3 \
                         GROUP BY u.server_id, s.name ORDER BY s.name LIMIT 1000",
                    )
                    .bind(org_id)
                    .bind(agent_id)
                    .bind(since_day)
                    .fetch_all(&self.pool)
                    .await?)
                }
            }
        }
    };
}

pub(crate) use impl_mcp_store;
