//! The SQL of [`crate::MonitorStore`], written once for both backends (same conventions as
//! [`crate::sql`]); expanded next to `impl_store!` so it reuses that backend's
//! `append_audit_on` / `append_audits_on`.

macro_rules! incident_cols {
    () => {
        "id, org_id, agent_id, rule, severity, state, first_at, last_at, members, summary, \
         updated_at, updated_by"
    };
}
macro_rules! alert_cols {
    () => {
        "id, org_id, severity, kind, title, agent_id, details, state, created_at, updated_at, \
         updated_by"
    };
}
macro_rules! route_cols {
    () => {
        "id, org_id, name, min_severity, enabled, channel, target, secret, created_at, updated_at"
    };
}
macro_rules! delivery_cols {
    () => {
        "id, org_id, alert_id, route_id, status, attempts, next_attempt_at, lease_until, \
         last_error, last_http_status, updated_at"
    };
}
macro_rules! anomaly_cols {
    () => {
        "id, org_id, agent_id, detector, severity, weight, at, statistic, baseline, threshold, \
         message, event_seq"
    };
}
pub(crate) use {alert_cols, anomaly_cols, delivery_cols, incident_cols, route_cols};

macro_rules! impl_monitor_store {
    ($store:ident, $conn:ty, $db:ty) => {
        mod monitor_store_impl {
            use super::{append_audit_on, append_audits_on};
            use uuid::Uuid;
            use $crate::actions::Change;
            use $crate::model::AuditRecord;
            use $crate::monitoring::*;
            use $crate::monitoring_sql::{
                alert_cols, anomaly_cols, delivery_cols, incident_cols, route_cols,
            };
            use $crate::Result;

            fn limit_of(f: &MonitorFilter) -> i64 {
                i64::from(f.limit.clamp(1, 500))
            }

            /// Moves one row of `table` (incidents or alerts) to `to` when its state is one of
            /// `from`, with `audit`, in one transaction; the row as it is now, `None` when nothing
            /// matched (nothing written).
            #[allow(clippy::too_many_arguments)]
            async fn set_state<T>(
                pool: &sqlx::Pool<$db>,
                table: &'static str,
                cols: &'static str,
                org_id: Uuid,
                id: Uuid,
                from: &[&str],
                to: &str,
                by: &str,
                now: i64,
                audit: &AuditRecord,
            ) -> Result<Option<T>>
            where
                T: for<'r> sqlx::FromRow<'r, <$db as sqlx::Database>::Row> + Send + Unpin,
            {
                let mut tx = pool.begin().await?;
                let mut qb = sqlx::QueryBuilder::<$db>::new("UPDATE ");
                qb.push(table)
                    .push(" SET state = ")
                    .push_bind(to.to_string())
                    .push(", updated_at = ")
                    .push_bind(now)
                    .push(", updated_by = ")
                    .push_bind(by.to_string())
                    .push(" WHERE org_id = ")
                    .push_bind(org_id)
                    .push(" AND id = ")
                    .push_bind(id)
                    .push(" AND state IN (");
                let mut sep = qb.separated(", ");
                for s in from {
                    sep.push_bind(s.to_string());
                }
                qb.push(") RETURNING ").push(cols);
                let row = qb.build_query_as::<T>().fetch_optional(&mut *tx).await?;
                if row.is_some() {
                    append_audit_on(&mut tx, audit).await?;
                    tx.commit().await?;
                } else {
                    tx.rollback().await?;
                }
                Ok(row)
            }

            #[async_trait::async_trait]
            impl MonitorStore for super::$store {
                async fn monitor_backlog(&self, limit: u32) -> Result<Vec<MonitorBacklog>> {
                    let rows: Vec<(Uuid, i64, i64)> = sqlx::query_as(
                        "SELECT h.org_id, COALESCE(c.next_seq, 0), h.size FROM audit_heads h \
                         LEFT JOIN monitor_cursors c ON c.org_id = h.org_id \
                         WHERE h.size > COALESCE(c.next_seq, 0) ORDER BY h.org_id LIMIT $1",
                    )
                    .bind(i64::from(limit.clamp(1, 10_000)))
                    .fetch_all(&self.pool)
                    .await?;
                    Ok(rows
                        .into_iter()
                        .map(|(org_id, next_seq, head_size)| MonitorBacklog {
                            org_id,
                            next_seq,
                            head_size,
                        })
                        .collect())
                }

                async fn monitor_states(
                    &self,
                    org_id: Uuid,
                    agent_ids: &[String],
                ) -> Result<Vec<AgentMonitorState>> {
                    let mut out = Vec::with_capacity(agent_ids.len());
                    for chunk in agent_ids.chunks(200) {
                        let mut qb = sqlx::QueryBuilder::<$db>::new(
                            "SELECT org_id, agent_id, observations, baseline, correlator, updated_at \
                             FROM agent_monitor WHERE org_id = ",
                        );
                        qb.push_bind(org_id).push(" AND agent_id IN (");
                        let mut sep = qb.separated(", ");
                        for a in chunk {
                            sep.push_bind(a.clone());
                        }
                        qb.push(")");
                        out.extend(
                            qb.build_query_as::<AgentMonitorState>()
                                .fetch_all(&self.pool)
                                .await?,
                        );
                    }
                    Ok(out)
                }

                async fn commit_monitor_batch(&self, b: &MonitorBatch) -> Result<bool> {
                    let mut tx = self.writer().begin().await?;
                    let moved = if b.from_seq == 0 {
                        sqlx::query(
                            "INSERT INTO monitor_cursors (org_id, next_seq, updated_at) VALUES ($1, $2, $3) \
                             ON CONFLICT (org_id) DO UPDATE SET next_seq = excluded.next_seq, \
                             updated_at = excluded.updated_at WHERE monitor_cursors.next_seq = 0",
                        )
                        .bind(b.org_id)
                        .bind(b.to_seq)
                        .bind(b.now)
                        .execute(&mut *tx)
                        .await?
                    } else {
                        sqlx::query(
                            "UPDATE monitor_cursors SET next_seq = $1, updated_at = $2 \
                             WHERE org_id = $3 AND next_seq = $4",
                        )
                        .bind(b.to_seq)
                        .bind(b.now)
                        .bind(b.org_id)
                        .bind(b.from_seq)
                        .execute(&mut *tx)
                        .await?
                    };
                    if moved.rows_affected() != 1 {
                        tx.rollback().await?;
                        return Ok(false);
                    }
                    for s in &b.states {
                        sqlx::query(
                            "INSERT INTO agent_monitor (org_id, agent_id, observations, baseline, correlator, updated_at) \
                             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (org_id, agent_id) DO UPDATE SET \
                             observations = excluded.observations, baseline = excluded.baseline, \
                             correlator = excluded.correlator, updated_at = excluded.updated_at",
                        )
                        .bind(s.org_id)
                        .bind(&s.agent_id)
                        .bind(s.observations)
                        .bind(&s.baseline)
                        .bind(&s.correlator)
                        .bind(s.updated_at)
                        .execute(&mut *tx)
                        .await?;
                    }
                    for a in &b.anomalies {
                        sqlx::query(concat!(
                            "INSERT INTO anomalies (",
                            anomaly_cols!(),
                            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                        ))
                        .bind(a.id)
                        .bind(a.org_id)
                        .bind(&a.agent_id)
                        .bind(&a.detector)
                        .bind(&a.severity)
                        .bind(a.weight)
                        .bind(a.at)
                        .bind(a.statistic)
                        .bind(a.baseline)
                        .bind(a.threshold)
                        .bind(&a.message)
                        .bind(a.event_seq)
                        .execute(&mut *tx)
                        .await?;
                    }
                    for i in &b.incidents {
                        sqlx::query(concat!(
                            "INSERT INTO incidents (",
                            incident_cols!(),
                            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                             ON CONFLICT (id) DO UPDATE SET members = excluded.members, \
                             last_at = excluded.last_at, summary = excluded.summary, \
                             updated_at = excluded.updated_at"
                        ))
                        .bind(i.id)
                        .bind(i.org_id)
                        .bind(&i.agent_id)
                        .bind(&i.rule)
                        .bind(&i.severity)
                        .bind(&i.state)
                        .bind(i.first_at)
                        .bind(i.last_at)
                        .bind(&i.members)
                        .bind(&i.summary)
                        .bind(i.updated_at)
                        .bind(&i.updated_by)
                        .execute(&mut *tx)
                        .await?;
                    }
                    for a in &b.alerts {
                        sqlx::query(concat!(
                            "INSERT INTO alerts (",
                            alert_cols!(),
                            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                        ))
                        .bind(a.id)
                        .bind(a.org_id)
                        .bind(&a.severity)
                        .bind(&a.kind)
                        .bind(&a.title)
                        .bind(&a.agent_id)
                        .bind(&a.details)
                        .bind(&a.state)
                        .bind(a.created_at)
                        .bind(a.updated_at)
                        .bind(&a.updated_by)
                        .execute(&mut *tx)
                        .await?;
                    }
                    for d in &b.deliveries {
                        sqlx::query(concat!(
                            "INSERT INTO alert_deliveries (",
                            delivery_cols!(),
                            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
                        ))
                        .bind(d.id)
                        .bind(d.org_id)
                        .bind(d.alert_id)
                        .bind(d.route_id)
                        .bind(&d.status)
                        .bind(d.attempts)
                        .bind(d.next_attempt_at)
                        .bind(d.lease_until)
                        .bind(&d.last_error)
                        .bind(d.last_http_status)
                        .bind(d.updated_at)
                        .execute(&mut *tx)
                        .await?;
                    }
                    if !b.audits.is_empty() {
                        append_audits_on(&mut tx, &b.audits).await?;
                    }
                    tx.commit().await?;
                    Ok(true)
                }

                async fn monitor_evidence(
                    &self,
                    org_id: Uuid,
                    agent_id: &str,
                    since: i64,
                ) -> Result<MonitorEvidence> {
                    let (obs, weight): (Option<i64>, Option<f64>) = sqlx::query_as(
                        "SELECT (SELECT observations FROM agent_monitor WHERE org_id = $1 AND agent_id = $2), \
                         (SELECT CAST(SUM(weight) AS DOUBLE PRECISION) FROM anomalies \
                          WHERE org_id = $1 AND agent_id = $2 AND at >= $3)",
                    )
                    .bind(org_id)
                    .bind(agent_id)
                    .bind(since)
                    .fetch_one(&self.pool)
                    .await?;
                    Ok(MonitorEvidence {
                        baseline_observations: obs.unwrap_or(0),
                        anomaly_weight: weight.unwrap_or(0.0),
                    })
                }

                async fn list_anomalies(
                    &self,
                    org_id: Uuid,
                    f: &MonitorFilter,
                ) -> Result<Vec<AnomalyRow>> {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(concat!(
                        "SELECT ",
                        anomaly_cols!(),
                        " FROM anomalies WHERE org_id = "
                    ));
                    qb.push_bind(org_id);
                    if let Some(a) = &f.agent_id {
                        qb.push(" AND agent_id = ").push_bind(a.clone());
                    }
                    if let Some(b) = f.before {
                        qb.push(" AND id < ").push_bind(b);
                    }
                    qb.push(" ORDER BY id DESC LIMIT ").push_bind(limit_of(f));
                    Ok(qb.build_query_as::<AnomalyRow>().fetch_all(&self.pool).await?)
                }

                async fn get_incident(&self, org_id: Uuid, id: Uuid) -> Result<Option<IncidentRow>> {
                    Ok(sqlx::query_as::<_, IncidentRow>(concat!(
                        "SELECT ",
                        incident_cols!(),
                        " FROM incidents WHERE org_id = $1 AND id = $2"
                    ))
                    .bind(org_id)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
                }

                async fn list_incidents(
                    &self,
                    org_id: Uuid,
                    f: &MonitorFilter,
                ) -> Result<Vec<IncidentRow>> {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(concat!(
                        "SELECT ",
                        incident_cols!(),
                        " FROM incidents WHERE org_id = "
                    ));
                    qb.push_bind(org_id);
                    if let Some(a) = &f.agent_id {
                        qb.push(" AND agent_id = ").push_bind(a.clone());
                    }
                    if let Some(s) = &f.state {
                        qb.push(" AND state = ").push_bind(s.clone());
                    }
                    if let Some(b) = f.before {
                        qb.push(" AND id < ").push_bind(b);
                    }
                    qb.push(" ORDER BY id DESC LIMIT ").push_bind(limit_of(f));
                    Ok(qb.build_query_as::<IncidentRow>().fetch_all(&self.pool).await?)
                }

                async fn set_incident_state(
                    &self,
                    org_id: Uuid,
                    id: Uuid,
                    from: &[&str],
                    to: &str,
                    by: &str,
                    now: i64,
                    audit: &AuditRecord,
                ) -> Result<Change<IncidentRow>> {
                    match set_state(self.writer(), "incidents", incident_cols!(), org_id, id, from, to, by, now, audit).await? {
                        Some(r) => Ok(Change::Done(r)),
                        None => Ok(match self.get_incident(org_id, id).await? {
                            Some(r) => Change::NotAllowed(r),
                            None => Change::NotFound,
                        }),
                    }
                }

                async fn get_alert(&self, org_id: Uuid, id: Uuid) -> Result<Option<AlertRow>> {
                    Ok(sqlx::query_as::<_, AlertRow>(concat!(
                        "SELECT ",
                        alert_cols!(),
                        " FROM alerts WHERE org_id = $1 AND id = $2"
                    ))
                    .bind(org_id)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
                }

                async fn list_alerts(&self, org_id: Uuid, f: &MonitorFilter) -> Result<Vec<AlertRow>> {
                    let mut qb = sqlx::QueryBuilder::<$db>::new(concat!(
                        "SELECT ",
                        alert_cols!(),
                        " FROM alerts WHERE org_id = "
                    ));
                    qb.push_bind(org_id);
                    if let Some(a) = &f.agent_id {
                        qb.push(" AND agent_id = ").push_bind(a.clone());
                    }
                    if let Some(s) = &f.state {
                        qb.push(" AND state = ").push_bind(s.clone());
                    }
                    if let Some(b) = f.before {
                        qb.push(" AND id < ").push_bind(b);
                    }
                    qb.push(" ORDER BY id DESC LIMIT ").push_bind(limit_of(f));
                    Ok(qb.build_query_as::<AlertRow>().fetch_all(&self.pool).await?)
                }

                async fn set_alert_state(
                    &self,
                    org_id: Uuid,
                    id: Uuid,
                    from: &[&str],
                    to: &str,
                    by: &str,
                    now: i64,
                    audit: &AuditRecord,
                ) -> Result<Change<AlertRow>> {
                    match set_state(self.writer(), "alerts", alert_cols!(), org_id, id, from, to, by, now, audit).await? {
                        Some(r) => Ok(Change::Done(r)),
                        None => Ok(match self.get_alert(org_id, id).await? {
                            Some(r) => Change::NotAllowed(r),
                            None => Change::NotFound,
                        }),
                    }
                }

                async fn create_alert_route(&self, r: &AlertRouteRow, audit: &AuditRecord) -> Result<()> {
                    let mut tx = self.writer().begin().await?;
                    sqlx::query(concat!(
                        "INSERT INTO alert_routes (",
                        route_cols!(),
                        ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                    ))
                    .bind(r.id)
                    .bind(r.org_id)
                    .bind(&r.name)
                    .bind(&r.min_severity)
                    .bind(r.enabled)
                    .bind(&r.channel)
                    .bind(&r.target)
                    .bind(&r.secret)
                    .bind(r.created_at)
                    .bind(r.updated_at)
                    .execute(&mut *tx)
                    .await?;
                    append_audit_on(&mut tx, audit).await?;
                    tx.commit().await?;
                    Ok(())
                }

                async fn get_alert_route(&self, org_id: Uuid, id: Uuid) -> Result<Option<AlertRouteRow>> {
                    Ok(sqlx::query_as::<_, AlertRouteRow>(concat!(
                        "SELECT ",
                        route_cols!(),
                        " FROM alert_routes WHERE org_id = $1 AND id = $2"
                    ))
                    .bind(org_id)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await?)
                }

                async fn list_alert_routes(&self, org_id: Uuid) -> Result<Vec<AlertRouteRow>> {
                    Ok(sqlx::query_as::<_, AlertRouteRow>(concat!(
                        "SELECT ",
                        route_cols!(),
                        " FROM alert_routes WHERE org_id = $1 ORDER BY id LIMIT 1000"
                    ))
                    .bind(org_id)
                    .fetch_all(&self.pool)
                    .await?)
                }

                async fn update_alert_route(&self, r: &AlertRouteRow, audit: &AuditRecord) -> Result<bool> {
                    let mut tx = self.writer().begin().await?;
                    let done = sqlx::query(
                        "UPDATE alert_routes SET name = $1, min_severity = $2, enabled = $3, target = $4, \
                         secret = $5, updated_at = $6 WHERE org_id = $7 AND id = $8",
                    )
                    .bind(&r.name)
                    .bind(&r.min_severity)
                    .bind(r.enabled)
                    .bind(&r.target)
                    .bind(&r.secret)
                    .bind(r.updated_at)
                    .bind(r.org_id)
                    .bind(r.id)
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

                async fn delete_alert_route(
                    &self,
                    org_id: Uuid,
                    id: Uuid,
                    audit: &AuditRecord,
                ) -> Result<bool> {
                    let mut tx = self.writer().begin().await?;
                    let done = sqlx::query("DELETE FROM alert_routes WHERE org_id = $1 AND id = $2")
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

                async fn lease_deliveries(
                    &self,
                    now: i64,
                    lease_ms: i64,
                    limit: u32,
                ) -> Result<Vec<DeliveryRow>> {
                    let due: Vec<(Uuid,)> = sqlx::query_as(
                        "SELECT id FROM alert_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 \
                         AND lease_until <= $1 ORDER BY next_attempt_at LIMIT $2",
                    )
                    .bind(now)
                    .bind(i64::from(limit.clamp(1, 1000)))
                    .fetch_all(&self.pool)
                    .await?;
                    let mut out = Vec::with_capacity(due.len());
                    for (id,) in due {
                        let row = sqlx::query_as::<_, DeliveryRow>(concat!(
                            "UPDATE alert_deliveries SET lease_until = $1 WHERE id = $2 \
                             AND status = 'pending' AND lease_until <= $3 RETURNING ",
                            delivery_cols!()
                        ))
                        .bind(now.saturating_add(lease_ms))
                        .bind(id)
                        .bind(now)
                        .fetch_optional(self.writer())
                        .await?;
                        out.extend(row);
                    }
                    Ok(out)
                }

                async fn finish_delivery_attempt(&self, d: &DeliveryRow, o: &AttemptOutcome) -> Result<()> {
                    let mut tx = self.writer().begin().await?;
                    let a = &o.attempt;
                    sqlx::query(
                        "INSERT INTO alert_delivery_attempts (id, org_id, delivery_id, attempt, at, ok, http_status, error) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(a.id)
                    .bind(a.org_id)
                    .bind(a.delivery_id)
                    .bind(a.attempt)
                    .bind(a.at)
                    .bind(a.ok)
                    .bind(a.http_status)
                    .bind(&a.error)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "UPDATE alert_deliveries SET status = $1, attempts = $2, next_attempt_at = $3, \
                         lease_until = 0, last_error = $4, last_http_status = $5, updated_at = $6 \
                         WHERE id = $7 AND org_id = $8",
                    )
                    .bind(&o.status)
                    .bind(a.attempt)
                    .bind(o.next_attempt_at)
                    .bind(&a.error)
                    .bind(a.http_status)
                    .bind(a.at)
                    .bind(d.id)
                    .bind(d.org_id)
                    .execute(&mut *tx)
                    .await?;
                    if let Some(audit) = &o.audit {
                        append_audit_on(&mut tx, audit).await?;
                    }
                    tx.commit().await?;
                    Ok(())
                }

                async fn list_deliveries(&self, org_id: Uuid, alert_id: Uuid) -> Result<Vec<DeliveryRow>> {
                    Ok(sqlx::query_as::<_, DeliveryRow>(concat!(
                        "SELECT ",
                        delivery_cols!(),
                        " FROM alert_deliveries WHERE org_id = $1 AND alert_id = $2 ORDER BY id"
                    ))
                    .bind(org_id)
                    .bind(alert_id)
                    .fetch_all(&self.pool)
                    .await?)
                }

                async fn list_delivery_attempts(
                    &self,
                    org_id: Uuid,
                    delivery_id: Uuid,
                ) -> Result<Vec<DeliveryAttemptRow>> {
                    Ok(sqlx::query_as::<_, DeliveryAttemptRow>(
                        "SELECT id, org_id, delivery_id, attempt, at, ok, http_status, error \
                         FROM alert_delivery_attempts WHERE org_id = $1 AND delivery_id = $2 ORDER BY attempt",
                    )
                    .bind(org_id)
                    .bind(delivery_id)
                    .fetch_all(&self.pool)
                    .await?)
                }
            }
        }
    };
}

pub(crate) use impl_monitor_store;
