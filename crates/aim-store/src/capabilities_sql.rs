//! The SQL of [`crate::CapabilityStore`], written once for both backends (same conventions as
//! [`crate::sql`]); expanded next to `impl_store!` so it reuses that backend's `append_audit_on`.

macro_rules! request_cols {
    () => {
        "id, org_id, agent_id, capability, reason, status, requested_by, created_at, decided_by, \
         decided_at, note"
    };
}
pub(crate) use request_cols;

macro_rules! impl_capability_store {
    ($store:ident, $conn:ty, $db:ty) => {
        mod capability_store_impl {
            use super::append_audit_on;
            use uuid::Uuid;
            use $crate::actions::CapabilityRequest;
            use $crate::agents::{Agent, AgentStatus, Capabilities};
            use $crate::agents_sql::agent_cols;
            use $crate::capabilities::*;
            use $crate::capabilities_sql::request_cols;
            use $crate::model::AuditRecord;
            use $crate::Result;

            /// Writes the agent row (changing nothing but `updated_at`) so that the transaction
            /// holds it until commit: a row lock on PostgreSQL, the write lock on SQLite. Returns
            /// the row as it is now (the latest committed grant set).
            async fn lock_agent(
                conn: &mut $conn,
                org_id: Uuid,
                id: &str,
                now: i64,
            ) -> Result<Option<Agent>> {
                Ok(sqlx::query_as::<_, Agent>(concat!(
                    "UPDATE agents SET updated_at = $3 WHERE org_id = $1 AND id = $2 RETURNING ",
                    agent_cols!()
                ))
                .bind(org_id)
                .bind(id)
                .bind(now)
                .fetch_optional(&mut *conn)
                .await?)
            }

            async fn set_grants(
                conn: &mut $conn,
                org_id: Uuid,
                id: &str,
                grants: &Capabilities,
            ) -> Result<Agent> {
                Ok(sqlx::query_as::<_, Agent>(concat!(
                    "UPDATE agents SET capabilities = $3 WHERE org_id = $1 AND id = $2 RETURNING ",
                    agent_cols!()
                ))
                .bind(org_id)
                .bind(id)
                .bind(grants.to_json())
                .fetch_one(&mut *conn)
                .await?)
            }

            impl super::$store {
                /// One read-modify-write of an agent's grant set; `change` returns the new set,
                /// or `None` when there is nothing to do.
                async fn change_grants(
                    &self,
                    org_id: Uuid,
                    agent_id: &str,
                    now: i64,
                    audit: &AuditRecord,
                    change: impl FnOnce(&[String]) -> Option<Vec<String>> + Send,
                ) -> Result<GrantChange> {
                    let mut tx = self.writer().begin().await?;
                    let Some(agent) = lock_agent(&mut tx, org_id, agent_id, now).await? else {
                        tx.rollback().await?;
                        return Ok(GrantChange::NotFound);
                    };
                    if agent.status == AgentStatus::Revoked {
                        tx.rollback().await?;
                        return Ok(GrantChange::AgentRevoked);
                    }
                    let Some(next) = change(&agent.capabilities.0) else {
                        tx.rollback().await?;
                        return Ok(GrantChange::Unchanged(agent));
                    };
                    let agent = set_grants(&mut tx, org_id, agent_id, &Capabilities(next)).await?;
                    append_audit_on(&mut tx, audit).await?;
                    tx.commit().await?;
                    Ok(GrantChange::Changed(agent))
                }
            }

            #[async_trait::async_trait]
            impl CapabilityStore for super::$store {
                async fn grant_capability(
                    &self,
                    org_id: Uuid,
                    agent_id: &str,
                    grant: &str,
                    now: i64,
                    audit: &AuditRecord,
                ) -> Result<GrantChange> {
                    self.change_grants(org_id, agent_id, now, audit, |have| {
                        if have.iter().any(|g| g == grant) {
                            None
                        } else {
                            let mut next = have.to_vec();
                            next.push(grant.to_string());
                            Some(next)
                        }
                    })
                    .await
                }

                async fn revoke_capability(
                    &self,
                    org_id: Uuid,
                    agent_id: &str,
                    grant: &str,
                    now: i64,
                    audit: &AuditRecord,
                ) -> Result<GrantChange> {
                    self.change_grants(org_id, agent_id, now, audit, |have| {
                        if have.iter().any(|g| g == grant) {
                            Some(have.iter().filter(|g| *g != grant).cloned().collect())
                        } else {
                            None
                        }
                    })
                    .await
                }

                async fn get_capability_request(
                    &self,
                    org_id: Uuid,
                    id: Uuid,
                ) -> Result<Option<CapabilityRequest>> {
                    Ok(sqlx::query_as::<_, CapabilityRequest>(concat!(
                        "SELECT ",
                        request_cols!(),
                        " FROM capability_requests WHERE org_id = $1 AND id = $2"
                    ))
                    .bind(org_id)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
                }

                async fn list_capability_requests(
                    &self,
                    org_id: Uuid,
                    f: &RequestFilter,
                ) -> Result<Vec<CapabilityRequest>> {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(concat!(
                        "SELECT ",
                        request_cols!(),
                        " FROM capability_requests WHERE org_id = "
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
                        .build_query_as::<CapabilityRequest>()
                        .fetch_all(&self.pool)
                        .await?)
                }

                async fn decide_capability_request(
                    &self,
                    org_id: Uuid,
                    id: Uuid,
                    approve: bool,
                    by: Uuid,
                    note: Option<&str>,
                    now: i64,
                    audit: &AuditRecord,
                ) -> Result<RequestDecision> {
                    let mut tx = self.writer().begin().await?;
                    let decided = sqlx::query_as::<_, CapabilityRequest>(concat!(
                        "UPDATE capability_requests SET status = $3, decided_by = $4, decided_at = $5, \
                         note = $6 WHERE org_id = $1 AND id = $2 AND status = 'pending' RETURNING ",
                        request_cols!()
                    ))
                    .bind(org_id)
                    .bind(id)
                    .bind(if approve { "approved" } else { "denied" })
                    .bind(by)
                    .bind(now)
                    .bind(note)
                    .fetch_optional(&mut *tx)
                    .await?;
                    let Some(req) = decided else {
                        tx.rollback().await?;
                        return Ok(match self.get_capability_request(org_id, id).await? {
                            Some(r) => RequestDecision::NotPending(r),
                            None => RequestDecision::NotFound,
                        });
                    };
                    // Approval changes the grant set (lock the row first); a denial only reads it.
                    let agent = if approve {
                        lock_agent(&mut tx, org_id, &req.agent_id, now).await?
                    } else {
                        sqlx::query_as::<_, Agent>(concat!(
                            "SELECT ",
                            agent_cols!(),
                            " FROM agents WHERE org_id = $1 AND id = $2"
                        ))
                        .bind(org_id)
                        .bind(&req.agent_id)
                        .fetch_optional(&mut *tx)
                        .await?
                    };
                    let Some(mut agent) = agent else {
                        // The foreign key makes this impossible; refuse rather than guess.
                        tx.rollback().await?;
                        return Ok(RequestDecision::NotFound);
                    };
                    if approve {
                        if agent.status == AgentStatus::Revoked {
                            tx.rollback().await?;
                            return Ok(RequestDecision::AgentRevoked);
                        }
                        if !agent.capabilities.0.iter().any(|g| *g == req.capability) {
                            let mut next = agent.capabilities.0.clone();
                            next.push(req.capability.clone());
                            agent = set_grants(&mut tx, org_id, &req.agent_id, &Capabilities(next))
                                .await?;
                        }
                    }
                    append_audit_on(&mut tx, audit).await?;
                    tx.commit().await?;
                    Ok(RequestDecision::Done(req, agent))
                }
            }
        }
    };
}
pub(crate) use impl_capability_store;
