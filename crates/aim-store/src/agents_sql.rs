//! The SQL of [`crate::AgentStore`], written once for both backends (same conventions as
//! [`crate::sql`]). [`impl_agent_store!`] is expanded next to `impl_store!` so it reuses that
//! backend's `append_audit_on`: every change and its audit record share one transaction.

macro_rules! agent_cols {
    () => {
        "id, org_id, name, owner_id, status, capabilities, public_key, key_version, previous_key, \
    previous_key_valid_until, created_at, updated_at, verified_at, revoked_at"
    };
}
pub(crate) use agent_cols;

macro_rules! impl_agent_store {
    ($store:ident, $conn:ty, $db:ty) => {
        pub(crate) mod agent_store_impl {
            use super::{append_audit_on, append_chain_records_on};
            use uuid::Uuid;
            use $crate::actions::NewAction;
            use $crate::agents::*;
            use $crate::agents_sql::agent_cols;
            use $crate::model::AuditRecord;
            use $crate::{Error, Result};

            async fn fetch_agent(
                conn: &mut $conn,
                org_id: Uuid,
                id: &str,
            ) -> Result<Option<Agent>> {
                Ok(sqlx::query_as::<_, Agent>(concat!(
                    "SELECT ",
                    agent_cols!(),
                    " FROM agents WHERE org_id = $1 AND id = $2"
                ))
                .bind(org_id)
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?)
            }

            /// Decision rows per statement (14 binds each; both backends allow far more binds).
            const ACTION_CHUNK: usize = 200;
            /// Nonce claims per statement.
            const NONCE_CHUNK: usize = 500;

            /// Inserts decision rows in one statement.
            async fn insert_actions(conn: &mut $conn, actions: &[&NewAction]) -> Result<()> {
                let mut qb = sqlx::QueryBuilder::<$db>::new($crate::write_sql::ACTION_INTO);
                qb.push_values(actions, |mut b, a| {
                    b.push_bind(a.id)
                        .push_bind(a.org_id)
                        .push_bind(a.agent_id.clone())
                        .push_bind(a.capability.clone())
                        .push_bind(a.resource.clone())
                        .push_bind(a.context.clone())
                        .push_bind(a.risk_level.clone())
                        .push_bind(a.status.as_str())
                        .push_bind(a.reason.clone())
                        .push_bind(a.matched_policies.to_json())
                        .push_bind(a.approvers.to_json())
                        .push_bind(a.policy_version.clone())
                        .push_bind(a.created_at)
                        .push_bind(a.expires_at);
                });
                qb.build().execute(&mut *conn).await?;
                Ok(())
            }

            /// Applies a request's row change; false when its precondition does not hold.
            pub(crate) async fn apply_op(conn: &mut $conn, op: &DecisionOp) -> Result<bool> {
                match op {
                    DecisionOp::None => Ok(true),
                    DecisionOp::InsertAction(a) => {
                        insert_actions(conn, &[&**a]).await?;
                        Ok(true)
                    }
                    DecisionOp::ActionResult { org_id, action_id, agent_id, result, detail, at } => {
                        Ok(sqlx::query($crate::write_sql::ACTION_RESULT_UPDATE)
                        .bind(org_id)
                        .bind(action_id)
                        .bind(agent_id)
                        .bind(result.as_str())
                        .bind(at)
                        .bind(detail)
                        .execute(&mut *conn)
                        .await?
                        .rows_affected()
                            == 1)
                    }
                    DecisionOp::CapabilityRequest(r) => {
                        Ok(sqlx::query(
                            "INSERT INTO capability_requests (id, org_id, agent_id, capability, reason, status, \
                             requested_by, created_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7) \
                             ON CONFLICT DO NOTHING",
                        )
                        .bind(r.id)
                        .bind(r.org_id)
                        .bind(&r.agent_id)
                        .bind(&r.capability)
                        .bind(&r.reason)
                        .bind(&r.requested_by)
                        .bind(r.created_at)
                        .execute(&mut *conn)
                        .await?
                        .rows_affected()
                            == 1)
                    }
                    DecisionOp::CreateMcpServer(m) => Ok(sqlx::query(
                        "INSERT INTO mcp_servers (id, org_id, name, public_key, pinned_hash, pinned_manifest, \
                         pinned_signed, pinned_at, pinned_by, drift_at, drift_hash, drift_severity, created_at, \
                         created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(m.id)
                    .bind(m.org_id)
                    .bind(&m.name)
                    .bind(&m.public_key)
                    .bind(&m.pinned_hash)
                    .bind(&m.pinned_manifest)
                    .bind(m.pinned_signed)
                    .bind(m.pinned_at)
                    .bind(&m.pinned_by)
                    .bind(m.drift_at)
                    .bind(&m.drift_hash)
                    .bind(&m.drift_severity)
                    .bind(m.created_at)
                    .bind(&m.created_by)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected()
                        == 1),
                    DecisionOp::McpAttestation(a) => {
                        let inserted = sqlx::query(
                            "INSERT INTO mcp_attestations (id, org_id, server_id, agent_id, manifest_hash, \
                             capabilities, matches_pin, at) SELECT $1, $2, $3, $4, $5, $6, $7, $8 \
                             WHERE EXISTS (SELECT 1 FROM mcp_servers WHERE id = $3 AND org_id = $2)",
                        )
                        .bind(a.id)
                        .bind(a.org_id)
                        .bind(a.server_id)
                        .bind(&a.agent_id)
                        .bind(&a.manifest_hash)
                        .bind(&a.capabilities)
                        .bind(a.matches_pin)
                        .bind(a.at)
                        .execute(&mut *conn)
                        .await?
                        .rows_affected()
                            == 1;
                        if !inserted {
                            return Ok(false);
                        }
                        sqlx::query(
                            "INSERT INTO mcp_usage (org_id, agent_id, server_id, day, uses, first_at, last_at) \
                             VALUES ($1, $2, $3, $4, 1, $5, $5) ON CONFLICT (agent_id, server_id, day) DO UPDATE \
                             SET uses = mcp_usage.uses + 1, last_at = CASE WHEN excluded.last_at > mcp_usage.last_at \
                             THEN excluded.last_at ELSE mcp_usage.last_at END",
                        )
                        .bind(a.org_id)
                        .bind(&a.agent_id)
                        .bind(a.server_id)
                        .bind(a.at.div_euclid($crate::activity::DAY_MS))
                        .bind(a.at)
                        .execute(&mut *conn)
                        .await?;
                        if let Some(sev) = &a.drift_severity {
                            sqlx::query(
                                "UPDATE mcp_servers SET drift_at = $1, drift_hash = $2, drift_severity = $3 \
                                 WHERE id = $4 AND org_id = $5",
                            )
                            .bind(a.at)
                            .bind(&a.manifest_hash)
                            .bind(sev)
                            .bind(a.server_id)
                            .bind(a.org_id)
                            .execute(&mut *conn)
                            .await?;
                        }
                        Ok(true)
                    }
                }
            }

            #[async_trait::async_trait]
            impl AgentStore for super::$store {
                async fn create_agent(&self, a: &NewAgent, audit: &AuditRecord) -> Result<Agent> {
                    let mut tx = self.writer().begin().await?;
                    let agent = sqlx::query_as::<_, Agent>(concat!(
                        "INSERT INTO agents (id, org_id, name, owner_id, status, capabilities, public_key, \
                         key_version, created_at, updated_at, verified_at) \
                         VALUES ($1, $2, $3, $4, $8, $5, $6, 1, $7, $7, $9) RETURNING ",
                        agent_cols!()
                    ))
                    .bind(&a.id)
                    .bind(a.org_id)
                    .bind(&a.name)
                    .bind(a.owner_id)
                    .bind(a.capabilities.to_json())
                    .bind(&a.public_key)
                    .bind(a.created_at)
                    .bind(if a.key_proven { "active" } else { "pending" })
                    .bind(a.key_proven.then_some(a.created_at))
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(|e| match Error::from(e) {
                        Error::Conflict { .. } => Error::Conflict {
                            what: "agent with this key or name",
                        },
                        other => other,
                    })?;
                    sqlx::query(
                        "INSERT INTO agent_keys (agent_id, version, public_key, created_at) VALUES ($1, 1, $2, $3)",
                    )
                    .bind(&a.id)
                    .bind(&a.public_key)
                    .bind(a.created_at)
                    .execute(&mut *tx)
                    .await?;
                    for r in &a.pending_requests {
                        sqlx::query(
                            "INSERT INTO capability_requests (id, org_id, agent_id, capability, reason, status, \
                             requested_by, created_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7)",
                        )
                        .bind(r.id)
                        .bind(a.org_id)
                        .bind(&a.id)
                        .bind(&r.capability)
                        .bind(&r.reason)
                        .bind(&r.requested_by)
                        .bind(r.created_at)
                        .execute(&mut *tx)
                        .await?;
                    }
                    append_audit_on(&mut tx, audit).await?;
                    tx.commit().await?;
                    Ok(agent)
                }

                async fn get_agent(&self, org_id: Uuid, id: &str) -> Result<Option<Agent>> {
                    let mut conn = self.pool.acquire().await?;
                    fetch_agent(&mut conn, org_id, id).await
                }

                async fn find_agent(&self, id: &str) -> Result<Option<Agent>> {
                    Ok(sqlx::query_as::<_, Agent>(concat!(
                        "SELECT ",
                        agent_cols!(),
                        " FROM agents WHERE id = $1"
                    ))
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
                }

                async fn get_agent_by_name(&self, org_id: Uuid, name: &str) -> Result<Option<Agent>> {
                    Ok(sqlx::query_as::<_, Agent>(concat!(
                        "SELECT ",
                        agent_cols!(),
                        " FROM agents WHERE org_id = $1 AND name = $2"
                    ))
                    .bind(org_id)
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?)
                }

                async fn list_agents(
                    &self,
                    org_id: Uuid,
                    after: Option<&str>,
                    limit: u32,
                ) -> Result<Vec<Agent>> {
                    Ok(sqlx::query_as::<_, Agent>(concat!(
                        "SELECT ",
                        agent_cols!(),
                        " FROM agents WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3"
                    ))
                    .bind(org_id)
                    .bind(after.unwrap_or(""))
                    .bind(i64::from(limit.clamp(1, 500)))
                    .fetch_all(&self.pool)
                    .await?)
                }

                async fn list_agent_keys(&self, org_id: Uuid, id: &str) -> Result<Vec<AgentKey>> {
                    Ok(sqlx::query_as::<_, AgentKey>(
                        "SELECT k.agent_id, k.version, k.public_key, k.created_at, k.retired_at, k.valid_until \
                         FROM agent_keys k JOIN agents a ON a.id = k.agent_id \
                         WHERE a.org_id = $1 AND k.agent_id = $2 ORDER BY k.version",
                    )
                    .bind(org_id)
                    .bind(id)
                    .fetch_all(&self.pool)
                    .await?)
                }

                #[allow(clippy::too_many_arguments)]
                async fn transition_agent(
                    &self,
                    org_id: Uuid,
                    id: &str,
                    from: &[AgentStatus],
                    to: AgentStatus,
                    now: i64,
                    audit: &AuditRecord,
                ) -> Result<Transition> {
                    // Up to three source states, padded by repetition; `revoked` is never a source.
                    if from.is_empty() || from.len() > 3 {
                        return Err(Error::Corrupt("one to three source states".into()));
                    }
                    let pick = |i: usize| from.get(i).or(from.first()).map(|s| s.as_str()).unwrap_or("");
                    let mut tx = self.writer().begin().await?;
                    let changed = sqlx::query_as::<_, Agent>(concat!(
                        "UPDATE agents SET status = $3, updated_at = $4, \
                         revoked_at = CASE WHEN $3 = 'revoked' THEN $4 ELSE revoked_at END \
                         WHERE org_id = $1 AND id = $2 AND status <> 'revoked' AND status IN ($5, $6, $7) \
                         RETURNING ",
                        agent_cols!()
                    ))
                    .bind(org_id)
                    .bind(id)
                    .bind(to.as_str())
                    .bind(now)
                    .bind(pick(0))
                    .bind(pick(1))
                    .bind(pick(2))
                    .fetch_optional(&mut *tx)
                    .await?;
                    match changed {
                        Some(agent) => {
                            append_audit_on(&mut tx, audit).await?;
                            tx.commit().await?;
                            Ok(Transition::Done(agent))
                        }
                        None => {
                            let current = fetch_agent(&mut tx, org_id, id).await?;
                            tx.rollback().await?;
                            Ok(match current {
                                Some(a) => Transition::NotAllowed(a.status),
                                None => Transition::NotFound,
                            })
                        }
                    }
                }

                #[allow(clippy::too_many_arguments)]
                async fn rotate_agent_key(
                    &self,
                    org_id: Uuid,
                    id: &str,
                    expected_current: &[u8],
                    new_key: &[u8],
                    grace_until: i64,
                    now: i64,
                    audit: &AuditRecord,
                ) -> Result<Option<Agent>> {
                    let mut tx = self.writer().begin().await?;
                    let rotated = sqlx::query_as::<_, Agent>(concat!(
                        "UPDATE agents SET previous_key = public_key, previous_key_valid_until = $5, \
                         public_key = $4, key_version = key_version + 1, updated_at = $6 \
                         WHERE org_id = $1 AND id = $2 AND public_key = $3 AND status = 'active' \
                         RETURNING ",
                        agent_cols!()
                    ))
                    .bind(org_id)
                    .bind(id)
                    .bind(expected_current)
                    .bind(new_key)
                    .bind(grace_until)
                    .bind(now)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(|e| match Error::from(e) {
                        Error::Conflict { .. } => Error::Conflict {
                            what: "agent with this key",
                        },
                        other => other,
                    })?;
                    let Some(agent) = rotated else {
                        tx.rollback().await?;
                        return Ok(None);
                    };
                    sqlx::query(
                        "UPDATE agent_keys SET retired_at = $3, valid_until = $4 \
                         WHERE agent_id = $1 AND version = $2",
                    )
                    .bind(id)
                    .bind(agent.key_version - 1)
                    .bind(now)
                    .bind(grace_until)
                    .execute(&mut *tx)
                    .await?;
                    // A key retired earlier loses what was left of its grace period.
                    sqlx::query(
                        "UPDATE agent_keys SET valid_until = $3 \
                         WHERE agent_id = $1 AND version < $2 AND valid_until > $3",
                    )
                    .bind(id)
                    .bind(agent.key_version - 1)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "INSERT INTO agent_keys (agent_id, version, public_key, created_at) VALUES ($1, $2, $3, $4)",
                    )
                    .bind(id)
                    .bind(agent.key_version)
                    .bind(new_key)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    append_audit_on(&mut tx, audit).await?;
                    tx.commit().await?;
                    Ok(Some(agent))
                }

                async fn insert_challenge(&self, c: &StoredChallenge) -> Result<()> {
                    sqlx::query(
                        "INSERT INTO agent_challenges (nonce, org_id, agent_id, body, expires_at) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(&c.nonce)
                    .bind(c.org_id)
                    .bind(&c.agent_id)
                    .bind(&c.body)
                    .bind(c.expires_at)
                    .execute(self.writer())
                    .await?;
                    Ok(())
                }

                async fn get_challenge(&self, nonce: &str) -> Result<Option<StoredChallenge>> {
                    Ok(sqlx::query_as::<_, StoredChallenge>(
                        "SELECT nonce, org_id, agent_id, body, expires_at, used_at FROM agent_challenges WHERE nonce = $1",
                    )
                    .bind(nonce)
                    .fetch_optional(&self.pool)
                    .await?)
                }

                async fn accept_challenge(
                    &self,
                    org_id: Uuid,
                    agent_id: &str,
                    nonce: &str,
                    now: i64,
                    audit: &AuditRecord,
                ) -> Result<Option<Agent>> {
                    let mut tx = self.writer().begin().await?;
                    let n = sqlx::query(
                        "UPDATE agent_challenges SET used_at = $4 \
                         WHERE nonce = $3 AND org_id = $1 AND agent_id = $2 AND used_at IS NULL AND expires_at > $4",
                    )
                    .bind(org_id)
                    .bind(agent_id)
                    .bind(nonce)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if n == 0 {
                        tx.rollback().await?;
                        return Ok(None);
                    }
                    sqlx::query(
                        "UPDATE agents SET status = 'active', verified_at = $3, updated_at = $3 \
                         WHERE org_id = $1 AND id = $2 AND status = 'pending'",
                    )
                    .bind(org_id)
                    .bind(agent_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    append_audit_on(&mut tx, audit).await?;
                    let agent = fetch_agent(&mut tx, org_id, agent_id).await?;
                    tx.commit().await?;
                    Ok(agent)
                }

                async fn commit_decisions(
                    &self,
                    items: &[DecisionWrite],
                ) -> Result<Vec<DecisionOutcome>> {
                    let mut out = Vec::with_capacity(items.len());
                    if items.is_empty() {
                        return Ok(out);
                    }
                    if let Some(done) = self.commit_decisions_direct(items).await? {
                        return Ok(done);
                    }
                    let mut tx = self.writer().begin().await?;
                    // Nonce claims in key order (see `claims_in_key_order`), in one statement per
                    // chunk; `RETURNING` names the fresh ones.
                    let (mut fresh, claims) = $crate::agents::claims_in_key_order(items);
                    for chunk in claims.chunks(NONCE_CHUNK) {
                        let mut qb = sqlx::QueryBuilder::<$db>::new($crate::write_sql::NONCE_INTO);
                        qb.push_values(chunk, |mut b, &i| {
                            let c = items[i].nonce.as_ref().expect("claims hold items with a nonce");
                            b.push_bind(c.signed_at)
                                .push_bind(c.org_id)
                                .push_bind(c.agent_id.clone())
                                .push_bind(c.nonce.clone())
                                .push_bind(c.expires_at);
                        });
                        qb.push($crate::write_sql::NONCE_ON_CONFLICT);
                        qb.push(" RETURNING signed_at, org_id, agent_id, nonce");
                        let inserted: std::collections::HashSet<(i64, Uuid, String, String)> = qb
                            .build_query_as::<(i64, Uuid, String, String)>()
                            .fetch_all(&mut *tx)
                            .await?
                            .into_iter()
                            .collect();
                        for &i in chunk {
                            let c = items[i].nonce.as_ref().expect("claims hold items with a nonce");
                            fresh[i] = inserted.contains(&(c.signed_at, c.org_id, c.agent_id.clone(), c.nonce.clone()));
                        }
                    }
                    // Decision rows of the fresh requests in one statement per chunk (they have no
                    // precondition); every other op in item order.
                    let actions: Vec<&NewAction> = items
                        .iter()
                        .zip(&fresh)
                        .filter_map(|(item, f)| match &item.op {
                            DecisionOp::InsertAction(a) if *f => Some(&**a),
                            _ => None,
                        })
                        .collect();
                    for chunk in actions.chunks(ACTION_CHUNK) {
                        insert_actions(&mut tx, chunk).await?;
                    }
                    // Outcome reports first, in (org, decision) order (see `reports_in_key_order`).
                    let mut reported = std::collections::HashSet::new();
                    for i in $crate::agents::reports_in_key_order(items, &fresh) {
                        if apply_op(&mut tx, &items[i].op).await? {
                            reported.insert(i);
                        }
                    }
                    let mut records = Vec::with_capacity(items.len());
                    for (i, (item, fresh)) in items.iter().zip(fresh).enumerate() {
                        let applied = fresh
                            && match item.op {
                                DecisionOp::InsertAction(_) => true,
                                DecisionOp::ActionResult { .. } => reported.contains(&i),
                                _ => apply_op(&mut tx, &item.op).await?,
                            };
                        if fresh && !applied {
                            out.push(DecisionOutcome::Conflict);
                        } else if fresh {
                            records.push(item.chain_record());
                            out.push(DecisionOutcome::Committed);
                        } else {
                            if let Some(r) = &item.replay_audit {
                                records.push($crate::audit_chain::ChainRecord::plain(r));
                            }
                            out.push(DecisionOutcome::Replayed);
                        }
                    }
                    // One head lock and one head write per chain for the whole group.
                    append_chain_records_on(&mut tx, &records).await?;
                    tx.commit().await?;
                    Ok(out)
                }

                async fn commit_decisions_then(
                    &self,
                    items: &[DecisionWrite],
                    committing: Box<dyn FnOnce() + Send>,
                ) -> Result<Vec<DecisionOutcome>> {
                    match self.commit_decisions_overlapped(items, committing).await? {
                        Ok(out) => Ok(out),
                        Err(committing) => {
                            let out = self.commit_decisions(items).await;
                            if out.is_ok() {
                                committing();
                            }
                            out
                        }
                    }
                }

                async fn prune_agent_nonces(&self, now: i64, signed_before: i64) -> Result<u64> {
                    let mut tx = self.writer().begin().await?;
                    let a = sqlx::query("DELETE FROM agent_nonces WHERE signed_at < $1 AND expires_at <= $2")
                        .bind(signed_before)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    let b = sqlx::query("DELETE FROM agent_challenges WHERE expires_at <= $1")
                        .bind(now - 86_400_000)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    tx.commit().await?;
                    Ok(a + b)
                }
            }
        }
    };
}

pub(crate) use impl_agent_store;
