//! The SQL shared by both backends, written once.
//!
//! The same statements run on SQLite and PostgreSQL: `$n` placeholders (both accept them),
//! `RETURNING`, `ON CONFLICT`, integer millisecond times. [`impl_store!`] expands to a full
//! [`crate::Store`] implementation for one backend's pool type.
//!
//! Concurrency: every transaction begins with a write (so SQLite takes its write lock up front
//! and never fails a read-to-write upgrade), and single-use tokens are consumed with one
//! conditional `UPDATE ... WHERE used_at IS NULL`, which is atomic on both backends.

macro_rules! user_cols {
    () => {
        "u.id, u.org_id, u.email, u.password_hash, u.role, u.active, \
    u.must_change_password, u.failed_logins, u.failed_window_start, u.locked_until, u.totp_enabled, \
    u.totp_secret, u.totp_pending_secret, u.totp_last_step, u.created_by, u.created_at, u.updated_at"
    };
}
pub(crate) use user_cols;

macro_rules! api_key_cols {
    () => {
        "id, org_id, owner_id, name, prefix, role, created_at, \
    expires_at, revoked_at, last_used_at, use_count, last_client_addr"
    };
}
pub(crate) use api_key_cols;

/// Row shape of [`crate::Principal`] queries.
#[derive(sqlx::FromRow)]
pub(crate) struct PrincipalRow {
    #[sqlx(flatten)]
    pub user: crate::User,
    pub org_require_2fa_admins: bool,
}

impl From<PrincipalRow> for crate::Principal {
    fn from(r: PrincipalRow) -> Self {
        crate::Principal {
            user: r.user,
            org_require_2fa_admins: r.org_require_2fa_admins,
        }
    }
}

macro_rules! impl_store {
    ($store:ty, $conn:ty, $db:ty, $backend:literal) => {
        use uuid::Uuid;
        use $crate::model::*;
        use $crate::sql::{api_key_cols, user_cols, PrincipalRow};
        use $crate::{Error, Result};

        /// Appends one audit record to its organization's chain on the transaction's connection.
        /// The single seam through which every security event is recorded; see
        /// [`append_audits_on`].
        async fn append_audit_on(conn: &mut $conn, rec: &AuditRecord) -> Result<()> {
            append_audits_on(conn, std::slice::from_ref(rec)).await
        }

        /// Appends a batch of audit records, in order, to their organizations' chains (group
        /// commit: one head lock + one head write per chain, multi-row inserts).
        ///
        /// Invariants: runs inside the caller's transaction, so the entries commit or roll back
        /// with the change they record (fail closed); must be the transaction's last write (the
        /// head row lock is then held only until commit, and no lock is taken after it, so there
        /// is no lock-order cycle with other rows); chains are locked in ascending id order, so two
        /// batches spanning the same chains cannot deadlock. The head is locked by the first
        /// statement (an upsert), which on PostgreSQL takes the row lock (several replicas keep one
        /// linear chain: the lock is in the database) and on SQLite is a write, so the
        /// transaction holds the database write lock before it reads the head.
        #[allow(dead_code)]
        async fn append_audits_on(conn: &mut $conn, recs: &[AuditRecord]) -> Result<()> {
            let batch: Vec<_> = recs.iter().map($crate::audit_chain::ChainRecord::plain).collect();
            append_chain_records_on(conn, &batch).await
        }

        /// [`append_audits_on`] for records that may come with their bodies prepared.
        #[allow(dead_code)]
        async fn append_chain_records_on(
            conn: &mut $conn,
            batch: &[$crate::audit_chain::ChainRecord<'_>],
        ) -> Result<()> {
            use $crate::audit_chain::{chain_of, plan, ChainHead};
            // Invalidations first: the head lock below must stay the transaction's last write.
            let events: Vec<_> = batch.iter().filter_map(|c| $crate::actions::cache_event_of(c.rec)).collect();
            for chunk in events.chunks(1000) {
                let mut qb = sqlx::QueryBuilder::<$db>::new($crate::write_sql::CACHE_EVENT_INTO);
                qb.push_values(chunk, |mut b, e| {
                    b.push_bind(e.org_id)
                        .push_bind(e.kind.as_str())
                        .push_bind(e.key.clone())
                        .push_bind(e.at);
                });
                qb.build().execute(&mut *conn).await?;
            }
            // Trust evidence counters, also before the head lock (see `crate::activity`): one row
            // per (agent, day), upserted in ascending (agent, day) order.
            let activity = $crate::activity::aggregate_activity(batch.iter().map(|c| c.rec));
            for chunk in activity.chunks(500) {
                let mut qb = sqlx::QueryBuilder::<$db>::new($crate::write_sql::ACTIVITY_INTO);
                qb.push_values(chunk, |mut b, d| {
                    b.push_bind(d.agent_id.clone())
                        .push_bind(d.day)
                        .push_bind(d.org_id)
                        .push_bind(d.decisions)
                        .push_bind(d.violations)
                        .push_bind(d.results_ok)
                        .push_bind(d.results_failed)
                        .push_bind(d.key_proofs)
                        .push_bind(d.key_proof_failures)
                        .push_bind(d.challenges_passed)
                        .push_bind(d.last_key_proof_at)
                        .push_bind(d.last_activity_at);
                });
                qb.push($crate::write_sql::ACTIVITY_ON_CONFLICT);
                qb.build().execute(&mut *conn).await?;
            }
            let mut chains: std::collections::BTreeMap<Uuid, Vec<usize>> = Default::default();
            for (i, c) in batch.iter().enumerate() {
                chains.entry(chain_of(c.rec.org_id)).or_default().push(i);
            }
            for (chain, idx) in chains {
                let updated_at = idx.iter().map(|&i| batch[i].rec.at).max().unwrap_or(0);
                let (size, head_hash, frontier): (i64, Vec<u8>, Vec<u8>) = sqlx::query_as($crate::write_sql::AUDIT_HEAD_LOCK)
                .bind(chain)
                .bind(vec![0u8; 32])
                .bind(Vec::<u8>::new())
                .bind(updated_at)
                .fetch_one(&mut *conn)
                .await?;
                let head = ChainHead::from_columns(size, &head_hash, &frontier)?;
                let planned = plan(head, batch, &idx)?;
                if $backend == "postgres" && planned.entries.len() <= 1000 && planned.nodes.len() <= 1000 {
                    // One round trip instead of three: the entries, the closed subtrees and the
                    // new head in one data-modifying statement (the head row is already locked
                    // by this transaction, so nothing new is locked out of order).
                    let mut qb = sqlx::QueryBuilder::<$db>::new("WITH e AS (");
                    push_entry_rows(&mut qb, chain, batch, &planned.entries);
                    qb.push(")");
                    if !planned.nodes.is_empty() {
                        qb.push(", n AS (");
                        push_node_rows(&mut qb, chain, &planned.nodes);
                        qb.push(")");
                    }
                    qb.push(" UPDATE audit_heads SET size = ")
                        .push_bind(planned.head.size as i64)
                        .push(", head_hash = ")
                        .push_bind(planned.head.head_hash.to_vec())
                        .push(", frontier = ")
                        .push_bind(planned.head.frontier_bytes())
                        .push(", updated_at = ")
                        .push_bind(updated_at)
                        .push(" WHERE org_id = ")
                        .push_bind(chain);
                    qb.build().execute(&mut *conn).await?;
                    continue;
                }
                for chunk in planned.entries.chunks(1000) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new("");
                    push_entry_rows(&mut qb, chain, batch, chunk);
                    qb.build().execute(&mut *conn).await?;
                }
                for chunk in planned.nodes.chunks(1000) {
                    let mut qb = sqlx::QueryBuilder::<$db>::new("");
                    push_node_rows(&mut qb, chain, chunk);
                    qb.build().execute(&mut *conn).await?;
                }
                sqlx::query($crate::write_sql::AUDIT_HEAD_UPDATE)
                    .bind(chain)
                    .bind(planned.head.size as i64)
                    .bind(planned.head.head_hash.to_vec())
                    .bind(planned.head.frontier_bytes())
                    .bind(updated_at)
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        }

        /// `INSERT INTO audit_entries ... VALUES` with one row per planned entry.
        fn push_entry_rows(
            qb: &mut sqlx::QueryBuilder<$db>,
            chain: Uuid,
            batch: &[$crate::audit_chain::ChainRecord<'_>],
            entries: &[$crate::audit_chain::PlannedEntry],
        ) {
            qb.push($crate::write_sql::AUDIT_ENTRY_INTO);
            qb.push_values(entries, |mut b, p| {
                let r = batch[p.index].rec;
                b.push_bind(Uuid::now_v7())
                    .push_bind(chain)
                    .push_bind(r.at)
                    .push_bind(r.event_type.clone())
                    .push_bind(r.actor.clone())
                    .push_bind(r.subject.clone())
                    .push_bind(p.payload.clone())
                    .push_bind(r.client_addr.clone())
                    .push_bind(p.seq as i64)
                    .push_bind(p.prev.to_vec())
                    .push_bind(p.hash.to_vec());
            });
        }

        /// `INSERT INTO audit_nodes ... VALUES` with one row per closed subtree.
        fn push_node_rows(
            qb: &mut sqlx::QueryBuilder<$db>,
            chain: Uuid,
            nodes: &[(aim_core::audit::merkle::SubtreeId, aim_core::audit::merkle::Hash)],
        ) {
            qb.push($crate::write_sql::AUDIT_NODE_INTO);
            qb.push_values(nodes, |mut b, ((level, i), h)| {
                b.push_bind(chain)
                    .push_bind($crate::write_sql::closed_at(*level, *i))
                    .push_bind(i64::from(*level))
                    .push_bind(*i as i64)
                    .push_bind(h.to_vec());
            });
        }

        /// The head of a chain without locking it (an empty head when the chain has no entry).
        async fn read_head(conn: &mut $conn, chain: Uuid) -> Result<AuditHead> {
            let row: Option<(i64, Vec<u8>, Vec<u8>, i64, i64)> = sqlx::query_as(
                "SELECT size, head_hash, frontier, checkpoint_size, checkpoint_at FROM audit_heads WHERE org_id = $1",
            )
            .bind(chain)
            .fetch_optional(&mut *conn)
            .await?;
            let (head, cp_size, cp_at) = match row {
                Some((size, h, f, cs, ca)) => ($crate::audit_chain::ChainHead::from_columns(size, &h, &f)?, cs, ca),
                None => ($crate::audit_chain::ChainHead::empty(), 0, 0),
            };
            Ok(AuditHead {
                org_id: chain,
                size: head.size,
                head_hash: head.head_hash,
                root: head.root(),
                checkpoint_size: u64::try_from(cp_size).unwrap_or(0),
                checkpoint_at: cp_at,
            })
        }

        /// Runs `f` (a pure function of perfect-subtree hashes) over the subtrees of a chain:
        /// once to learn which subtrees it reads (the shape does not depend on the values), then
        /// once more over their hashes. O(log n) rows. A subtree of
        /// [`crate::audit_chain::STORED_MIN_LEVEL`] or more is an `audit_nodes` row (point
        /// lookups); a smaller one is computed from the entries it covers: each such subtree lies
        /// in one aligned block of 2^`STORED_MIN_LEVEL` entries, and each block is one range read
        /// of the `(org_id, seq)` index. Rows of lower levels written before are not read.
        async fn with_nodes<T>(
            conn: &mut $conn,
            chain: Uuid,
            f: impl Fn(&mut dyn FnMut(aim_core::audit::merkle::SubtreeId) -> [u8; 32]) -> T,
        ) -> Result<T> {
            use aim_core::audit::merkle::{leaf_hash, root};
            use $crate::audit_chain::STORED_MIN_LEVEL;
            const BLOCK: u64 = 1 << STORED_MIN_LEVEL;
            let mut ids = Vec::new();
            f(&mut |id| {
                ids.push(id);
                [0u8; 32]
            });
            ids.sort_unstable();
            ids.dedup();
            let (stored, computed): (Vec<_>, Vec<_>) = ids.into_iter().partition(|(level, _)| *level >= STORED_MIN_LEVEL);
            let mut found = std::collections::HashMap::with_capacity(stored.len() + computed.len());
            for chunk in stored.chunks(200) {
                // One primary-key point lookup per subtree, joined with UNION ALL: both planners
                // use the index for each arm (an OR list can degrade to a scan of the org's nodes).
                let mut qb = sqlx::QueryBuilder::<$db>::new("");
                for (n, (level, i)) in chunk.iter().enumerate() {
                    if n > 0 {
                        qb.push(" UNION ALL ");
                    }
                    qb.push("SELECT level, idx, hash FROM audit_nodes WHERE org_id = ")
                        .push_bind(chain)
                        .push(" AND closed_at = ")
                        .push_bind($crate::write_sql::closed_at(*level, *i))
                        .push(" AND level = ")
                        .push_bind(i64::from(*level));
                }
                let rows: Vec<(i64, i64, Option<Vec<u8>>)> = qb.build_query_as().fetch_all(&mut *conn).await?;
                for (level, i, h) in rows {
                    let h: [u8; 32] = h
                        .and_then(|h| h.try_into().ok())
                        .ok_or_else(|| Error::Corrupt(format!("audit hash of level {level} index {i} is not 32 bytes")))?;
                    found.insert((level as u8, i as u64), h);
                }
            }
            // Leaves by seq, one range read per aligned block the computed subtrees lie in.
            let mut blocks: Vec<u64> = computed.iter().map(|(level, i)| (i << level) / BLOCK).collect();
            blocks.sort_unstable();
            blocks.dedup();
            let mut leaves = std::collections::HashMap::with_capacity(blocks.len() * BLOCK as usize);
            for chunk in blocks.chunks(50) {
                let mut qb = sqlx::QueryBuilder::<$db>::new("");
                for (n, b) in chunk.iter().enumerate() {
                    if n > 0 {
                        qb.push(" UNION ALL ");
                    }
                    let start = i64::try_from(b * BLOCK).unwrap_or(i64::MAX);
                    qb.push("SELECT seq, hash FROM audit_entries WHERE org_id = ")
                        .push_bind(chain)
                        .push(" AND seq >= ")
                        .push_bind(start)
                        .push(" AND seq < ")
                        .push_bind(start.saturating_add(BLOCK as i64));
                }
                let rows: Vec<(i64, Option<Vec<u8>>)> = qb.build_query_as().fetch_all(&mut *conn).await?;
                for (seq, h) in rows {
                    let h: [u8; 32] = h
                        .and_then(|h| h.try_into().ok())
                        .ok_or_else(|| Error::Corrupt(format!("audit entry {seq}: hash is not 32 bytes")))?;
                    leaves.insert(seq as u64, leaf_hash(&h));
                }
            }
            for (level, i) in computed {
                let first = i << level;
                let covered: Option<Vec<_>> = (first..first + (1u64 << level)).map(|seq| leaves.get(&seq).copied()).collect();
                if let Some(covered) = covered {
                    found.insert((level, i), root(&covered));
                }
            }
            let mut missing = None;
            let out = f(&mut |id| match found.get(&id) {
                Some(h) => *h,
                None => {
                    missing.get_or_insert(id);
                    [0u8; 32]
                }
            });
            match missing {
                Some((level, i)) => Err(Error::Corrupt(format!("audit Merkle node level {level} index {i} is missing"))),
                None => Ok(out),
            }
        }

        /// Reads the head and refuses sizes beyond it.
        async fn head_covering(conn: &mut $conn, chain: Uuid, size: u64, what: &str) -> Result<AuditHead> {
            let head = read_head(conn, chain).await?;
            if size > head.size {
                return Err(Error::Invalid(format!("{what} {size} is larger than the log ({} entries)", head.size)));
            }
            Ok(head)
        }

        async fn insert_org_and_admin(
            conn: &mut $conn,
            org: &Organization,
            admin: &NewUser,
            audit: &AuditRecord,
        ) -> Result<()> {
            sqlx::query("INSERT INTO organizations (id, name, require_2fa_admins, created_at, enforcement_mode) VALUES ($1, $2, $3, $4, $5)")
                .bind(org.id)
                .bind(&org.name)
                .bind(org.require_2fa_admins)
                .bind(org.created_at)
                .bind(&org.enforcement_mode)
                .execute(&mut *conn)
                .await?;
            insert_user(conn, admin).await?;
            append_audit_on(conn, audit).await
        }

        async fn insert_user(conn: &mut $conn, u: &NewUser) -> Result<()> {
            sqlx::query(
                "INSERT INTO users (id, org_id, email, password_hash, role, must_change_password, created_by, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
            )
            .bind(u.id)
            .bind(u.org_id)
            .bind(&u.email)
            .bind(&u.password_hash)
            .bind(u.role.as_str())
            .bind(u.must_change_password)
            .bind(u.created_by)
            .bind(u.created_at)
            .execute(&mut *conn)
            .await
            .map_err(|e| match Error::from(e) {
                Error::Conflict { .. } => Error::Conflict { what: "user with this email" },
                other => other,
            })?;
            Ok(())
        }

        async fn fetch_user(conn: &mut $conn, org_id: Uuid, id: Uuid) -> Result<Option<User>> {
            Ok(sqlx::query_as::<_, User>(concat!("SELECT ", user_cols!(), " FROM users u WHERE u.org_id = $1 AND u.id = $2"))
            .bind(org_id)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?)
        }

        #[async_trait::async_trait]
        impl $crate::Store for $store {
            fn backend(&self) -> &'static str {
                $backend
            }

            fn commits_block_caller(&self) -> bool {
                $backend == "sqlite"
            }

            async fn ping(&self) -> Result<()> {
                sqlx::query("SELECT 1").execute(self.writer()).await?;
                Ok(())
            }

            async fn close(&self) {
                self.pool.close().await;
                self.writer().close().await;
                self.close_maintenance().await;
            }

            async fn bootstrap(&self, org: &Organization, admin: &NewUser, audit: &AuditRecord) -> Result<Option<()>> {
                let mut tx = self.writer().begin().await?;
                let claimed = sqlx::query(
                    "INSERT INTO server_meta (key, value) VALUES ('bootstrapped', $1) ON CONFLICT (key) DO NOTHING",
                )
                .bind(org.id.to_string())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if claimed == 0 {
                    tx.rollback().await?;
                    return Ok(None);
                }
                insert_org_and_admin(&mut tx, org, admin, audit).await?;
                tx.commit().await?;
                Ok(Some(()))
            }

            async fn create_org_with_admin(&self, org: &Organization, admin: &NewUser, audit: &AuditRecord) -> Result<()> {
                let mut tx = self.writer().begin().await?;
                insert_org_and_admin(&mut tx, org, admin, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn get_org(&self, id: Uuid) -> Result<Option<Organization>> {
                Ok(sqlx::query_as::<_, Organization>(
                    "SELECT id, name, require_2fa_admins, created_at, enforcement_mode FROM organizations WHERE id = $1",
                )
                .bind(id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn set_org_require_2fa_admins(&self, id: Uuid, value: bool, audit: &AuditRecord) -> Result<Option<Organization>> {
                let mut tx = self.writer().begin().await?;
                let org = sqlx::query_as::<_, Organization>(
                    "UPDATE organizations SET require_2fa_admins = $2 WHERE id = $1 \
                     RETURNING id, name, require_2fa_admins, created_at, enforcement_mode",
                )
                .bind(id)
                .bind(value)
                .fetch_optional(&mut *tx)
                .await?;
                if org.is_some() {
                    append_audit_on(&mut tx, audit).await?;
                }
                tx.commit().await?;
                Ok(org)
            }

            async fn create_user(&self, user: &NewUser, audit: &AuditRecord) -> Result<User> {
                let mut tx = self.writer().begin().await?;
                insert_user(&mut tx, user).await?;
                append_audit_on(&mut tx, audit).await?;
                let created = fetch_user(&mut tx, user.org_id, user.id)
                    .await?
                    .ok_or_else(|| Error::Corrupt("user vanished after insert".into()))?;
                tx.commit().await?;
                Ok(created)
            }

            async fn get_user(&self, org_id: Uuid, id: Uuid) -> Result<Option<User>> {
                let mut conn = self.pool.acquire().await?;
                fetch_user(&mut conn, org_id, id).await
            }

            async fn find_user_by_email(&self, email: &str) -> Result<Option<User>> {
                Ok(sqlx::query_as::<_, User>(concat!("SELECT ", user_cols!(), " FROM users u WHERE u.email = $1"))
                    .bind(email)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn principal_for_session(&self, user_id: Uuid, session_id: Uuid) -> Result<Option<Principal>> {
                Ok(sqlx::query_as::<_, PrincipalRow>(concat!("SELECT ", user_cols!(), ", o.require_2fa_admins AS org_require_2fa_admins \
                     FROM users u \
                     JOIN organizations o ON o.id = u.org_id \
                     JOIN sessions s ON s.id = $2 AND s.user_id = u.id AND s.revoked_at IS NULL \
                     WHERE u.id = $1"))
                .bind(user_id)
                .bind(session_id)
                .fetch_optional(&self.pool)
                .await?
                .map(Into::into))
            }

            async fn principal_for_user(&self, user_id: Uuid) -> Result<Option<Principal>> {
                Ok(sqlx::query_as::<_, PrincipalRow>(concat!("SELECT ", user_cols!(), ", o.require_2fa_admins AS org_require_2fa_admins \
                     FROM users u JOIN organizations o ON o.id = u.org_id WHERE u.id = $1"))
                .bind(user_id)
                .fetch_optional(&self.pool)
                .await?
                .map(Into::into))
            }

            async fn list_users(&self, org_id: Uuid, page: PageRequest) -> Result<Vec<User>> {
                Ok(sqlx::query_as::<_, User>(concat!("SELECT ", user_cols!(), " FROM users u WHERE u.org_id = $1 AND u.id > $2 ORDER BY u.id LIMIT $3"))
                .bind(org_id)
                .bind(page.cursor())
                .bind(page.clamped_limit())
                .fetch_all(&self.pool)
                .await?)
            }

            async fn count_active_admins(&self, org_id: Uuid) -> Result<i64> {
                let (n,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM users WHERE org_id = $1 AND role = 'admin' AND active = TRUE",
                )
                .bind(org_id)
                .fetch_one(&self.pool)
                .await?;
                Ok(n)
            }

            async fn set_user_role(&self, org_id: Uuid, id: Uuid, role: Role, now: i64, audit: &AuditRecord) -> Result<Option<User>> {
                let mut tx = self.writer().begin().await?;
                let n = sqlx::query("UPDATE users SET role = $3, updated_at = $4 WHERE org_id = $1 AND id = $2")
                    .bind(org_id)
                    .bind(id)
                    .bind(role.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n == 0 {
                    return Ok(None);
                }
                append_audit_on(&mut tx, audit).await?;
                let user = fetch_user(&mut tx, org_id, id).await?;
                tx.commit().await?;
                Ok(user)
            }

            async fn set_user_active(&self, org_id: Uuid, id: Uuid, active: bool, now: i64, audit: &AuditRecord) -> Result<Option<User>> {
                let mut tx = self.writer().begin().await?;
                let n = sqlx::query("UPDATE users SET active = $3, updated_at = $4 WHERE org_id = $1 AND id = $2")
                    .bind(org_id)
                    .bind(id)
                    .bind(active)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n == 0 {
                    return Ok(None);
                }
                if !active {
                    sqlx::query(
                        "UPDATE sessions SET revoked_at = $2, revoked_reason = 'user deactivated' \
                         WHERE user_id = $1 AND revoked_at IS NULL",
                    )
                    .bind(id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                append_audit_on(&mut tx, audit).await?;
                let user = fetch_user(&mut tx, org_id, id).await?;
                tx.commit().await?;
                Ok(user)
            }

            async fn delete_user(&self, org_id: Uuid, id: Uuid, audit: &AuditRecord) -> Result<bool> {
                let mut tx = self.writer().begin().await?;
                let n = sqlx::query("DELETE FROM users WHERE org_id = $1 AND id = $2")
                    .bind(org_id)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if n == 0 {
                    return Ok(false);
                }
                append_audit_on(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn set_password(&self, user_id: Uuid, password_hash: &str, keep_session: Option<Uuid>, now: i64, audit: &AuditRecord) -> Result<()> {
                let mut tx = self.writer().begin().await?;
                sqlx::query(
                    "UPDATE users SET password_hash = $2, must_change_password = FALSE, updated_at = $3, \
                     failed_logins = 0, failed_window_start = NULL, locked_until = NULL WHERE id = $1",
                )
                .bind(user_id)
                .bind(password_hash)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE sessions SET revoked_at = $2, revoked_reason = 'password changed' \
                     WHERE user_id = $1 AND revoked_at IS NULL AND id <> $3",
                )
                .bind(user_id)
                .bind(now)
                .bind(keep_session.unwrap_or(Uuid::nil()))
                .execute(&mut *tx)
                .await?;
                append_audit_on(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn record_login_failure(&self, user_id: Uuid, now: i64, policy: LockoutPolicy, audit: &AuditRecord) -> Result<FailureOutcome> {
                // SET expressions read the row as it was before the UPDATE (both backends).
                const STALE: &str = "(failed_window_start IS NULL OR failed_window_start < $2 - $3)";
                let count = format!("(CASE WHEN {STALE} THEN 1 ELSE failed_logins + 1 END)");
                let sql = format!(
                    "UPDATE users SET \
                       failed_logins = CASE WHEN {count} >= $4 THEN 0 ELSE {count} END, \
                       failed_window_start = CASE WHEN {count} >= $4 THEN NULL WHEN {STALE} THEN $2 ELSE failed_window_start END, \
                       locked_until = CASE WHEN {count} >= $4 THEN $2 + $5 ELSE locked_until END \
                     WHERE id = $1 RETURNING locked_until"
                );
                let mut tx = self.writer().begin().await?;
                // Built only from the constants above; every value is a bound parameter.
                let row: Option<(Option<i64>,)> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(user_id)
                    .bind(now)
                    .bind(policy.window_ms)
                    .bind(policy.max_failures)
                    .bind(policy.lock_ms)
                    .fetch_optional(&mut *tx)
                    .await?;
                append_audit_on(&mut tx, audit).await?;
                let just_locked = match row {
                    Some((Some(until),)) if until == now + policy.lock_ms => Some(until),
                    _ => None,
                };
                if let Some(until) = just_locked {
                    let lock = AuditRecord {
                        event_type: "auth.account.locked".into(),
                        payload: serde_json::json!({ "lockedUntil": until }),
                        ..audit.clone()
                    };
                    append_audit_on(&mut tx, &lock).await?;
                }
                tx.commit().await?;
                Ok(FailureOutcome { locked_until: just_locked })
            }

            async fn append_audit(&self, audit: &AuditRecord) -> Result<()> {
                let mut tx = self.writer().begin().await?;
                append_audit_on(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn create_session(&self, session: &Session, token: &NewRefreshToken, audit: &AuditRecord) -> Result<()> {
                let mut tx = self.writer().begin().await?;
                sqlx::query("UPDATE users SET failed_logins = 0, failed_window_start = NULL WHERE id = $1")
                    .bind(session.user_id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("INSERT INTO sessions (id, org_id, user_id, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(session.id)
                    .bind(session.org_id)
                    .bind(session.user_id)
                    .bind(session.created_at)
                    .execute(&mut *tx)
                    .await?;
                insert_refresh(&mut tx, token).await?;
                append_audit_on(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn rotate_refresh_token(&self, token_hash: &[u8], next: &NewRefreshToken, now: i64, audit_reuse: &AuditRecord) -> Result<RefreshOutcome> {
                let mut tx = self.writer().begin().await?;
                let used: Option<(Uuid,)> = sqlx::query_as(
                    "UPDATE refresh_tokens SET used_at = $2 \
                     WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 \
                       AND session_id IN (SELECT id FROM sessions WHERE revoked_at IS NULL) \
                     RETURNING session_id",
                )
                .bind(token_hash)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some((session_id,)) = used {
                    let next = NewRefreshToken { session_id, ..next.clone() };
                    insert_refresh(&mut tx, &next).await?;
                    let session = fetch_session(&mut tx, session_id).await?;
                    tx.commit().await?;
                    return Ok(RefreshOutcome::Rotated { session });
                }
                // Not live: find out whether it is a retired token being replayed.
                let replayed: Option<(Uuid,)> = sqlx::query_as(
                    "SELECT session_id FROM refresh_tokens WHERE token_hash = $1 AND used_at IS NOT NULL",
                )
                .bind(token_hash)
                .fetch_optional(&mut *tx)
                .await?;
                let Some((session_id,)) = replayed else {
                    tx.rollback().await?;
                    return Ok(RefreshOutcome::Invalid);
                };
                sqlx::query(
                    "UPDATE sessions SET revoked_at = $2, revoked_reason = 'refresh token reuse' \
                     WHERE id = $1 AND revoked_at IS NULL",
                )
                .bind(session_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                let session = fetch_session(&mut tx, session_id).await?;
                let audit = AuditRecord {
                    org_id: Some(session.org_id),
                    actor: format!("user:{}", session.user_id),
                    subject: Some(format!("session:{}", session.id)),
                    ..audit_reuse.clone()
                };
                append_audit_on(&mut tx, &audit).await?;
                tx.commit().await?;
                Ok(RefreshOutcome::Reused { session })
            }

            async fn revoke_session(&self, user_id: Uuid, session_id: Uuid, now: i64, reason: &str, audit: &AuditRecord) -> Result<bool> {
                let mut tx = self.writer().begin().await?;
                let n = sqlx::query(
                    "UPDATE sessions SET revoked_at = $3, revoked_reason = $4 \
                     WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
                )
                .bind(session_id)
                .bind(user_id)
                .bind(now)
                .bind(reason)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n > 0 {
                    append_audit_on(&mut tx, audit).await?;
                }
                tx.commit().await?;
                Ok(n > 0)
            }

            async fn session_for_refresh_token(&self, token_hash: &[u8]) -> Result<Option<Session>> {
                Ok(sqlx::query_as::<_, Session>(
                    "SELECT s.id, s.org_id, s.user_id, s.created_at, s.revoked_at, s.revoked_reason \
                     FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE r.token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn set_totp_pending(&self, user_id: Uuid, sealed: &[u8], now: i64) -> Result<()> {
                sqlx::query("UPDATE users SET totp_pending_secret = $2, updated_at = $3 WHERE id = $1")
                    .bind(user_id)
                    .bind(sealed)
                    .bind(now)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn enable_totp(&self, user_id: Uuid, expected_pending: &[u8], step: i64, recovery_hashes: &[Vec<u8>], now: i64, audit: &AuditRecord) -> Result<bool> {
                let mut tx = self.writer().begin().await?;
                let n = sqlx::query(
                    "UPDATE users SET totp_secret = totp_pending_secret, totp_pending_secret = NULL, \
                     totp_enabled = TRUE, totp_last_step = $3, updated_at = $4 \
                     WHERE id = $1 AND totp_pending_secret = $2",
                )
                .bind(user_id)
                .bind(expected_pending)
                .bind(step)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n == 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                for h in recovery_hashes {
                    sqlx::query("INSERT INTO recovery_codes (id, user_id, code_hash) VALUES ($1, $2, $3)")
                        .bind(Uuid::now_v7())
                        .bind(user_id)
                        .bind(h)
                        .execute(&mut *tx)
                        .await?;
                }
                append_audit_on(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn disable_totp(&self, user_id: Uuid, now: i64, audit: &AuditRecord) -> Result<()> {
                let mut tx = self.writer().begin().await?;
                sqlx::query(
                    "UPDATE users SET totp_enabled = FALSE, totp_secret = NULL, totp_pending_secret = NULL, \
                     updated_at = $2 WHERE id = $1",
                )
                .bind(user_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                append_audit_on(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn consume_totp_step(&self, user_id: Uuid, step: i64) -> Result<bool> {
                let n = sqlx::query(
                    "UPDATE users SET totp_last_step = $2 \
                     WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)",
                )
                .bind(user_id)
                .bind(step)
                .execute(self.writer())
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            async fn consume_recovery_code(&self, user_id: Uuid, code_hash: &[u8], now: i64) -> Result<bool> {
                let n = sqlx::query(
                    "UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
                )
                .bind(user_id)
                .bind(code_hash)
                .bind(now)
                .execute(self.writer())
                .await?
                .rows_affected();
                Ok(n >= 1)
            }

            async fn remaining_recovery_codes(&self, user_id: Uuid) -> Result<i64> {
                let (n,): (i64,) = sqlx::query_as(
                    "SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL",
                )
                .bind(user_id)
                .fetch_one(&self.pool)
                .await?;
                Ok(n)
            }

            async fn create_api_key(&self, key: &NewApiKey, audit: &AuditRecord) -> Result<ApiKey> {
                let mut tx = self.writer().begin().await?;
                let created = sqlx::query_as::<_, ApiKey>(concat!("INSERT INTO api_keys (id, org_id, owner_id, name, prefix, key_hash, role, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING ", api_key_cols!()))
                .bind(key.id)
                .bind(key.org_id)
                .bind(key.owner_id)
                .bind(&key.name)
                .bind(&key.prefix)
                .bind(&key.key_hash)
                .bind(key.role.as_str())
                .bind(key.created_at)
                .bind(key.expires_at)
                .fetch_one(&mut *tx)
                .await?;
                append_audit_on(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(created)
            }

            async fn find_api_key_by_hash(&self, key_hash: &[u8]) -> Result<Option<ApiKey>> {
                Ok(sqlx::query_as::<_, ApiKey>(concat!("SELECT ", api_key_cols!(), " FROM api_keys WHERE key_hash = $1"))
                    .bind(key_hash)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn touch_api_key(&self, id: Uuid, now: i64, client_addr: Option<&str>) -> Result<()> {
                sqlx::query(
                    "UPDATE api_keys SET last_used_at = $2, use_count = use_count + 1, last_client_addr = $3 WHERE id = $1",
                )
                .bind(id)
                .bind(now)
                .bind(client_addr)
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn get_api_key(&self, org_id: Uuid, id: Uuid) -> Result<Option<ApiKey>> {
                Ok(sqlx::query_as::<_, ApiKey>(concat!("SELECT ", api_key_cols!(), " FROM api_keys WHERE org_id = $1 AND id = $2"))
                .bind(org_id)
                .bind(id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn list_api_keys(&self, org_id: Uuid, owner: Option<Uuid>, page: PageRequest) -> Result<Vec<ApiKey>> {
                let q = match owner {
                    Some(owner) => sqlx::query_as::<_, ApiKey>(concat!("SELECT ", api_key_cols!(), " FROM api_keys WHERE org_id = $1 AND owner_id = $4 AND id > $2 ORDER BY id LIMIT $3"))
                    .bind(org_id)
                    .bind(page.cursor())
                    .bind(page.clamped_limit())
                    .bind(owner)
                    .fetch_all(&self.pool)
                    .await?,
                    None => sqlx::query_as::<_, ApiKey>(concat!("SELECT ", api_key_cols!(), " FROM api_keys WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3"))
                    .bind(org_id)
                    .bind(page.cursor())
                    .bind(page.clamped_limit())
                    .fetch_all(&self.pool)
                    .await?,
                };
                Ok(q)
            }

            async fn revoke_api_key(&self, org_id: Uuid, id: Uuid, now: i64, audit: &AuditRecord) -> Result<bool> {
                let mut tx = self.writer().begin().await?;
                let n = sqlx::query(
                    "UPDATE api_keys SET revoked_at = $3 WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL",
                )
                .bind(org_id)
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if n > 0 {
                    append_audit_on(&mut tx, audit).await?;
                }
                tx.commit().await?;
                Ok(n > 0)
            }

            async fn rotate_api_key(&self, org_id: Uuid, id: Uuid, new_prefix: &str, new_hash: &[u8], now: i64, audit: &AuditRecord) -> Result<Option<ApiKey>> {
                let mut tx = self.writer().begin().await?;
                let key = sqlx::query_as::<_, ApiKey>(concat!("UPDATE api_keys SET prefix = $3, key_hash = $4, use_count = 0, last_used_at = NULL, last_client_addr = NULL \
                     WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $5) \
                     RETURNING ", api_key_cols!()))
                .bind(org_id)
                .bind(id)
                .bind(new_prefix)
                .bind(new_hash)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                if key.is_some() {
                    append_audit_on(&mut tx, audit).await?;
                }
                tx.commit().await?;
                Ok(key)
            }

            async fn list_jwt_keys(&self, since: i64) -> Result<Vec<JwtKey>> {
                Ok(sqlx::query_as::<_, JwtKey>(
                    "SELECT kid, algorithm, private_sealed, public_key, created_at FROM jwt_keys \
                     WHERE created_at >= $1 ORDER BY created_at DESC",
                )
                .bind(since)
                .fetch_all(&self.pool)
                .await?)
            }

            async fn insert_jwt_key(&self, key: &JwtKey, audit: &AuditRecord) -> Result<()> {
                let mut tx = self.writer().begin().await?;
                sqlx::query(
                    "INSERT INTO jwt_keys (kid, algorithm, private_sealed, public_key, created_at) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(&key.kid)
                .bind(&key.algorithm)
                .bind(&key.private_sealed)
                .bind(&key.public_key)
                .bind(key.created_at)
                .execute(&mut *tx)
                .await?;
                append_audit_on(&mut tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn list_audit(&self, org_id: Uuid, page: PageRequest) -> Result<Vec<AuditRow>> {
                Ok(sqlx::query_as::<_, AuditRow>(
                    "SELECT id, org_id, at, event_type, actor, subject, payload, client_addr, seq, prev_hash, hash FROM audit_entries \
                     WHERE org_id = $1 AND id > $2 ORDER BY id LIMIT $3",
                )
                .bind(org_id)
                .bind(page.cursor())
                .bind(page.clamped_limit())
                .fetch_all(&self.pool)
                .await?)
            }

            async fn append_audits(&self, audits: &[AuditRecord]) -> Result<()> {
                let mut tx = self.writer().begin().await?;
                append_audits_on(&mut tx, audits).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn audit_head(&self, org_id: Uuid) -> Result<AuditHead> {
                let mut conn = self.pool.acquire().await?;
                read_head(&mut conn, org_id).await
            }

            async fn list_audit_chain(&self, org_id: Uuid, from_seq: u64, limit: u32) -> Result<Vec<AuditRow>> {
                if let Some(rows) = self.list_audit_chain_direct(org_id, from_seq, limit).await? {
                    return Ok(rows);
                }
                Ok(sqlx::query_as::<_, AuditRow>(
                    "SELECT id, org_id, at, event_type, actor, subject, payload, client_addr, seq, prev_hash, hash FROM audit_entries \
                     WHERE org_id = $1 AND seq >= $2 ORDER BY seq LIMIT $3",
                )
                .bind(org_id)
                .bind(i64::try_from(from_seq).unwrap_or(i64::MAX))
                .bind(i64::from(limit.clamp(1, 1000)))
                .fetch_all(&self.pool)
                .await?)
            }

            async fn audit_root(&self, org_id: Uuid, size: u64) -> Result<[u8; 32]> {
                let mut conn = self.pool.acquire().await?;
                head_covering(&mut conn, org_id, size, "tree size").await?;
                with_nodes(&mut conn, org_id, |get| aim_core::audit::merkle::root_from_subtrees(size, get)).await
            }

            async fn audit_inclusion(&self, org_id: Uuid, index: u64, tree_size: u64) -> Result<InclusionProofRow> {
                if index >= tree_size {
                    return Err(Error::Invalid(format!("index {index} is not below treeSize {tree_size}")));
                }
                let mut conn = self.pool.acquire().await?;
                head_covering(&mut conn, org_id, tree_size, "treeSize").await?;
                let (leaf, path) = with_nodes(&mut conn, org_id, |get| {
                    let leaf = get((0, index));
                    let path = aim_core::audit::merkle::inclusion_proof_from_subtrees(index, tree_size, get);
                    (leaf, path)
                })
                .await?;
                let audit_path = path.map_err(|e| Error::Invalid(e.to_string()))?;
                Ok(InclusionProofRow { leaf_hash: leaf, audit_path })
            }

            async fn audit_consistency(&self, org_id: Uuid, from: u64, to: u64) -> Result<Vec<[u8; 32]>> {
                if from > to {
                    return Err(Error::Invalid(format!("from {from} is larger than to {to}")));
                }
                let mut conn = self.pool.acquire().await?;
                head_covering(&mut conn, org_id, to, "to").await?;
                with_nodes(&mut conn, org_id, |get| aim_core::audit::merkle::consistency_proof_from_subtrees(from, to, get))
                    .await?
                    .map_err(|e| Error::Invalid(e.to_string()))
            }

            async fn get_org_key(&self, org_id: Uuid) -> Result<Option<OrgKeyRow>> {
                Ok(sqlx::query_as::<_, OrgKeyRow>(
                    "SELECT org_id, key_id, public_key, private_sealed, created_at FROM org_keys WHERE org_id = $1",
                )
                .bind(org_id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn insert_org_key(&self, key: &OrgKeyRow) -> Result<OrgKeyRow> {
                let mut tx = self.writer().begin().await?;
                sqlx::query(
                    "INSERT INTO org_keys (org_id, key_id, public_key, private_sealed, created_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (org_id) DO NOTHING",
                )
                .bind(key.org_id)
                .bind(&key.key_id)
                .bind(&key.public_key)
                .bind(&key.private_sealed)
                .bind(key.created_at)
                .execute(&mut *tx)
                .await?;
                let stored = sqlx::query_as::<_, OrgKeyRow>(
                    "SELECT org_id, key_id, public_key, private_sealed, created_at FROM org_keys WHERE org_id = $1",
                )
                .bind(key.org_id)
                .fetch_one(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(stored)
            }

            async fn insert_checkpoint(&self, cp: &StoredCheckpoint) -> Result<()> {
                let mut tx = self.writer().begin().await?;
                sqlx::query(
                    "INSERT INTO audit_checkpoints (org_id, tree_size, created_at, body) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (org_id, tree_size) DO NOTHING",
                )
                .bind(cp.org_id)
                .bind(cp.tree_size)
                .bind(cp.created_at)
                .bind(&cp.body)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "UPDATE audit_heads SET checkpoint_size = $2, checkpoint_at = $3 WHERE org_id = $1 AND checkpoint_size < $2",
                )
                .bind(cp.org_id)
                .bind(cp.tree_size)
                .bind(cp.created_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn latest_checkpoint(&self, org_id: Uuid) -> Result<Option<StoredCheckpoint>> {
                Ok(sqlx::query_as::<_, StoredCheckpoint>(
                    "SELECT org_id, tree_size, created_at, body FROM audit_checkpoints WHERE org_id = $1 \
                     ORDER BY tree_size DESC LIMIT 1",
                )
                .bind(org_id)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn audit_chains_due(&self, min_new: u64, signed_before: i64) -> Result<Vec<Uuid>> {
                let rows: Vec<(Uuid,)> = sqlx::query_as(
                    "SELECT org_id FROM audit_heads WHERE size > checkpoint_size \
                     AND (size - checkpoint_size >= $1 OR checkpoint_at <= $2)",
                )
                .bind(i64::try_from(min_new).unwrap_or(i64::MAX))
                .bind(signed_before)
                .fetch_all(&self.pool)
                .await?;
                Ok(rows.into_iter().map(|(id,)| id).collect())
            }

            fn pool_stats(&self) -> PoolStats {
                let size = self.pool.size();
                let idle = u32::try_from(self.pool.num_idle()).unwrap_or(u32::MAX);
                PoolStats {
                    size,
                    idle: idle.min(size),
                    max: self.pool.options().get_max_connections(),
                }
            }

            async fn list_sealed(
                &self,
                column: SealedColumn,
                after: Option<&SealedRow>,
                limit: u32,
            ) -> Result<Vec<SealedValue>> {
                let limit = i64::from(limit.clamp(1, 1000));
                match column {
                    SealedColumn::UserTotpSecret | SealedColumn::UserTotpPendingSecret => {
                        let sql = if column == SealedColumn::UserTotpSecret {
                            "SELECT id, totp_secret FROM users WHERE totp_secret IS NOT NULL AND id > $1 ORDER BY id LIMIT $2"
                        } else {
                            "SELECT id, totp_pending_secret FROM users WHERE totp_pending_secret IS NOT NULL AND id > $1 ORDER BY id LIMIT $2"
                        };
                        let after = match after {
                            Some(SealedRow::User(id)) => *id,
                            _ => Uuid::nil(),
                        };
                        let rows: Vec<(Uuid, Vec<u8>)> = sqlx::query_as(sql)
                            .bind(after)
                            .bind(limit)
                            .fetch_all(&self.pool)
                            .await?;
                        Ok(rows
                            .into_iter()
                            .map(|(id, sealed)| SealedValue { column, row: SealedRow::User(id), sealed })
                            .collect())
                    }
                    SealedColumn::JwtPrivateKey => {
                        let after = match after {
                            Some(SealedRow::JwtKey(kid)) => kid.clone(),
                            _ => String::new(),
                        };
                        let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
                            "SELECT kid, private_sealed FROM jwt_keys WHERE kid > $1 ORDER BY kid LIMIT $2",
                        )
                        .bind(after)
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await?;
                        Ok(rows
                            .into_iter()
                            .map(|(kid, sealed)| SealedValue { column, row: SealedRow::JwtKey(kid), sealed })
                            .collect())
                    }
                    SealedColumn::AlertRouteSecret => {
                        let after = match after {
                            Some(SealedRow::AlertRoute(id)) => *id,
                            _ => Uuid::nil(),
                        };
                        let rows: Vec<(Uuid, Vec<u8>)> = sqlx::query_as(
                            "SELECT id, secret FROM alert_routes WHERE secret IS NOT NULL AND id > $1 ORDER BY id LIMIT $2",
                        )
                        .bind(after)
                        .bind(limit)
                        .fetch_all(&self.pool)
                        .await?;
                        Ok(rows
                            .into_iter()
                            .map(|(id, sealed)| SealedValue { column, row: SealedRow::AlertRoute(id), sealed })
                            .collect())
                    }
                }
            }

            async fn replace_sealed(
                &self,
                column: SealedColumn,
                row: &SealedRow,
                old: &[u8],
                new: &[u8],
            ) -> Result<bool> {
                let done = match (column, row) {
                    (SealedColumn::UserTotpSecret, SealedRow::User(id)) => {
                        sqlx::query("UPDATE users SET totp_secret = $1 WHERE id = $2 AND totp_secret = $3")
                            .bind(new).bind(*id).bind(old).execute(self.writer()).await?
                    }
                    (SealedColumn::UserTotpPendingSecret, SealedRow::User(id)) => {
                        sqlx::query("UPDATE users SET totp_pending_secret = $1 WHERE id = $2 AND totp_pending_secret = $3")
                            .bind(new).bind(*id).bind(old).execute(self.writer()).await?
                    }
                    (SealedColumn::JwtPrivateKey, SealedRow::JwtKey(kid)) => {
                        sqlx::query("UPDATE jwt_keys SET private_sealed = $1 WHERE kid = $2 AND private_sealed = $3")
                            .bind(new).bind(kid.as_str()).bind(old).execute(self.writer()).await?
                    }
                    (SealedColumn::AlertRouteSecret, SealedRow::AlertRoute(id)) => {
                        sqlx::query("UPDATE alert_routes SET secret = $1 WHERE id = $2 AND secret = $3")
                            .bind(new).bind(*id).bind(old).execute(self.writer()).await?
                    }
                    _ => return Err(Error::Corrupt(format!("row {row:?} is not in {}", column.name()))),
                };
                Ok(done.rows_affected() == 1)
            }
        }

        async fn insert_refresh(conn: &mut $conn, t: &NewRefreshToken) -> Result<()> {
            sqlx::query(
                "INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(t.id)
            .bind(t.session_id)
            .bind(&t.token_hash)
            .bind(t.created_at)
            .bind(t.expires_at)
            .execute(&mut *conn)
            .await?;
            Ok(())
        }

        async fn fetch_session(conn: &mut $conn, id: Uuid) -> Result<Session> {
            sqlx::query_as::<_, Session>(
                "SELECT id, org_id, user_id, created_at, revoked_at, revoked_reason FROM sessions WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| Error::Corrupt("refresh token without session".into()))
        }
    };
}

pub(crate) use impl_store;
