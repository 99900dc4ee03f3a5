//! The SQL of [`crate::ActionStore`], written once for both backends (same conventions as
//! [`crate::sql`]); expanded next to `impl_store!` so it reuses that backend's `append_audit_on`.

macro_rules! action_cols {
    () => {
        "id, org_id, agent_id, capability, resource, context, risk_level, status, reason, \
         matched_policies, approvers, policy_version, created_at, expires_at, decided_by, decided_at, result, \
         result_at, result_detail"
    };
}
pub(crate) use action_cols;

macro_rules! impl_action_store {
    ($store:ident, $conn:ty, $db:ty) => {
        mod action_store_impl {
            use super::{append_audit_on, append_audits_on};
            use uuid::Uuid;
            use $crate::actions::*;
            use $crate::actions_sql::action_cols;
            use $crate::model::{AuditRecord, Organization};
            use $crate::Result;

            #[async_trait::async_trait]
            impl ActionStore for super::$store {
                async fn get_action(&self, org_id: Uuid, id: Uuid) -> Result<Option<ActionDecision>> {
                    Ok(sqlx::query_as::<_, ActionDecision>(concat!(
                        "SELECT ",
                        action_cols!(),
                        " FROM action_decisions WHERE org_id = $1 AND id = $2"
                    ))
                    .bind(org_id)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
                }

                async fn find_action(&self, id: Uuid) -> Result<Option<ActionDecision>> {
                    Ok(sqlx::query_as::<_, ActionDecision>(concat!(
                        "SELECT ",
                        action_cols!(),
                        " FROM action_decisions WHERE id = $1"
                    ))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
                }

                async fn list_actions(
                    &self,
                    org_id: Uuid,
                    f: &ActionFilter,
                ) -> Result<Vec<ActionDecision>> {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(concat!(
                        "SELECT ",
                        action_cols!(),
                        " FROM action_decisions WHERE org_id = "
                    ));
                    qb.push_bind(org_id);
                    if let Some(a) = &f.agent_id {
                        qb.push(" AND agent_id = ").push_bind(a.clone());
                    }
                    if let Some(s) = f.status {
                        qb.push(" AND status = ").push_bind(s.as_str());
                    }
                    if let Some(b) = f.before {
                        qb.push(" AND id < ").push_bind(b);
                    }
                    qb.push(" ORDER BY id DESC LIMIT ")
                        .push_bind(i64::from(f.limit.clamp(1, 500)));
                    Ok(qb
                        .build_query_as::<ActionDecision>()
                        .fetch_all(&self.pool)
                        .await?)
                }

                async fn decide_action(
                    &self,
                    org_id: Uuid,
                    id: Uuid,
                    approve: bool,
                    by: Uuid,
                    now: i64,
                    approved_until: i64,
                    audit: &AuditRecord,
                ) -> Result<Change<ActionDecision>> {
                    let mut tx = self.writer().begin().await?;
                    let (status, expires) = if approve {
                        ("approved", approved_until)
                    } else {
                        ("denied", now)
                    };
                    let row = sqlx::query_as::<_, ActionDecision>(concat!(
                        "UPDATE action_decisions SET status = $3, decided_by = $4, decided_at = $5, \
                         expires_at = $6 WHERE org_id = $1 AND id = $2 AND status = 'pending' \
                         AND expires_at > $5 RETURNING ",
                        action_cols!()
                    ))
                    .bind(org_id)
                    .bind(id)
                    .bind(status)
                    .bind(by)
                    .bind(now)
                    .bind(expires)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(row) = row else {
                        drop(tx);
                        return Ok(match self.get_action(org_id, id).await? {
                            Some(a) => Change::NotAllowed(a),
                            None => Change::NotFound,
                        });
                    };
                    append_audit_on(&mut tx, audit).await?;
                    tx.commit().await?;
                    Ok(Change::Done(row))
                }

                async fn expire_actions(&self, now: i64, limit: u32) -> Result<Vec<ActionDecision>> {
                    let mut tx = self.writer().begin().await?;
                    let ids: Vec<(Uuid,)> = sqlx::query_as(
                        "SELECT id FROM action_decisions WHERE status = 'pending' AND expires_at <= $1 \
                         ORDER BY expires_at LIMIT $2",
                    )
                    .bind(now)
                    .bind(i64::from(limit.clamp(1, 10_000)))
                    .fetch_all(&mut *tx)
                    .await?;
                    let mut expired = Vec::with_capacity(ids.len());
                    for (id,) in ids {
                        // Conditional: an approval committed meanwhile wins.
                        if let Some(row) = sqlx::query_as::<_, ActionDecision>(concat!(
                            "UPDATE action_decisions SET status = 'expired', decided_at = $2 \
                             WHERE id = $1 AND status = 'pending' AND expires_at <= $2 RETURNING ",
                            action_cols!()
                        ))
                        .bind(id)
                        .bind(now)
                        .fetch_optional(&mut *tx)
                        .await?
                        {
                            expired.push(row);
                        }
                    }
                    let audits: Vec<AuditRecord> = expired
                        .iter()
                        .map(|a| AuditRecord {
                            org_id: Some(a.org_id),
                            at: now,
                            event_type: "agent.action.expired".into(),
                            actor: "system".into(),
                            subject: Some(format!("agent:{}", a.agent_id)),
                            payload: serde_json::json!({
                                "actionId": a.id,
                                "capability": a.capability,
                                "resource": a.resource,
                                "deadline": a.expires_at,
                            }),
                            client_addr: None,
                        })
                        .collect();
                    append_audits_on(&mut tx, &audits).await?;
                    tx.commit().await?;
                    Ok(expired)
                }

                async fn set_enforcement_mode(
                    &self,
                    org_id: Uuid,
                    mode: &str,
                    audit: &AuditRecord,
                ) -> Result<Option<Organization>> {
                    let mut tx = self.writer().begin().await?;
                    let org = sqlx::query_as::<_, Organization>(
                        "UPDATE organizations SET enforcement_mode = $2 WHERE id = $1 \
                         RETURNING id, name, require_2fa_admins, created_at, enforcement_mode",
                    )
                    .bind(org_id)
                    .bind(mode)
                    .fetch_optional(&mut *tx)
                    .await?;
                    if org.is_some() {
                        append_audit_on(&mut tx, audit).await?;
                    }
                    tx.commit().await?;
                    Ok(org)
                }

                async fn get_sdk_settings(&self, org_id: Uuid) -> Result<SdkSettings> {
                    let row: Option<(bool, String)> = sqlx::query_as(
                        "SELECT server_generated_keys, registration_capabilities FROM sdk_settings \
                         WHERE org_id = $1",
                    )
                    .bind(org_id)
                    .fetch_optional(&self.pool)
                    .await?;
                    Ok(match row {
                        None => SdkSettings::default(),
                        Some((keys, caps)) => SdkSettings {
                            server_generated_keys: keys,
                            declared_capabilities: caps.parse()?,
                        },
                    })
                }

                async fn set_sdk_settings(
                    &self,
                    org_id: Uuid,
                    settings: &SdkSettings,
                    audit: &AuditRecord,
                ) -> Result<()> {
                    let mut tx = self.writer().begin().await?;
                    sqlx::query(
                        "INSERT INTO sdk_settings (org_id, server_generated_keys, registration_capabilities) \
                         VALUES ($1, $2, $3) ON CONFLICT (org_id) DO UPDATE SET \
                         server_generated_keys = excluded.server_generated_keys, \
                         registration_capabilities = excluded.registration_capabilities",
                    )
                    .bind(org_id)
                    .bind(settings.server_generated_keys)
                    .bind(settings.declared_capabilities.as_str())
                    .execute(&mut *tx)
                    .await?;
                    append_audit_on(&mut tx, audit).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn insert_policy_version(
                    &self,
                    org_id: Uuid,
                    language: PolicyLanguageName,
                    source: &str,
                    digest: &str,
                    created_by: &str,
                    now: i64,
                    audit: &AuditRecord,
                ) -> Result<PolicyVersion> {
                    let mut tx = self.writer().begin().await?;
                    let (next,): (i64,) = sqlx::query_as(
                        "SELECT COALESCE(MAX(version), 0) + 1 FROM org_policies WHERE org_id = $1",
                    )
                    .bind(org_id)
                    .fetch_one(&mut *tx)
                    .await?;
                    let row = sqlx::query_as::<_, PolicyVersion>(
                        "INSERT INTO org_policies (org_id, version, language, source, digest, created_by, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7) \
                         RETURNING org_id, version, language, source, digest, created_by, created_at",
                    )
                    .bind(org_id)
                    .bind(next)
                    .bind(language.as_str())
                    .bind(source)
                    .bind(digest)
                    .bind(created_by)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| match $crate::Error::from(e) {
                        $crate::Error::Conflict { .. } => $crate::Error::Conflict {
                            what: "policy version (saved concurrently; retry)",
                        },
                        other => other,
                    })?;
                    let mut audit = audit.clone();
                    if let Some(obj) = audit.payload.as_object_mut() {
                        obj.insert("version".into(), next.into());
                    }
                    append_audit_on(&mut tx, &audit).await?;
                    tx.commit().await?;
                    Ok(row)
                }

                async fn current_policy(&self, org_id: Uuid) -> Result<Option<PolicyVersion>> {
                    Ok(sqlx::query_as::<_, PolicyVersion>(
                        "SELECT org_id, version, language, source, digest, created_by, created_at \
                         FROM org_policies WHERE org_id = $1 ORDER BY version DESC LIMIT 1",
                    )
                    .bind(org_id)
                    .fetch_optional(&self.pool)
                    .await?)
                }

                async fn get_policy_version(
                    &self,
                    org_id: Uuid,
                    version: i64,
                ) -> Result<Option<PolicyVersion>> {
                    Ok(sqlx::query_as::<_, PolicyVersion>(
                        "SELECT org_id, version, language, source, digest, created_by, created_at \
                         FROM org_policies WHERE org_id = $1 AND version = $2",
                    )
                    .bind(org_id)
                    .bind(version)
                    .fetch_optional(&self.pool)
                    .await?)
                }

                async fn list_policy_versions(
                    &self,
                    org_id: Uuid,
                    before: Option<i64>,
                    limit: u32,
                ) -> Result<Vec<PolicyVersion>> {
                    Ok(sqlx::query_as::<_, PolicyVersion>(
                        "SELECT org_id, version, language, source, digest, created_by, created_at \
                         FROM org_policies WHERE org_id = $1 AND version < $2 ORDER BY version DESC LIMIT $3",
                    )
                    .bind(org_id)
                    .bind(before.unwrap_or(i64::MAX))
                    .bind(i64::from(limit.clamp(1, 500)))
                    .fetch_all(&self.pool)
                    .await?)
                }

                async fn cache_events_since(&self, since: i64) -> Result<Vec<CacheEvent>> {
                    let rows: Vec<(Uuid, String, String, i64)> = sqlx::query_as(
                        "SELECT org_id, kind, key, at FROM cache_events WHERE at >= $1 ORDER BY seq LIMIT 10000",
                    )
                    .bind(since)
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(rows
                        .into_iter()
                        .filter_map(|(org_id, kind, key, at)| {
                            let kind = match kind.as_str() {
                                "agent" => CacheKind::Agent,
                                "org" => CacheKind::Org,
                                _ => return None,
                            };
                            Some(CacheEvent { org_id, kind, key, at })
                        })
                        .collect())
                }

                async fn prune_cache_events(&self, before: i64) -> Result<u64> {
                    Ok(sqlx::query("DELETE FROM cache_events WHERE at < $1")
                        .bind(before)
                        .execute(self.writer())
                        .await?
                        .rows_affected())
                }
            }
        }
    };
}
pub(crate) use impl_action_store;
