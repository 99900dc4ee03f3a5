//! Decision batches on PostgreSQL with one statement text per kind of row, whatever the batch
//! size.
//!
//! The generic sqlx path ([`crate::agents_sql`]) writes a batch with multi-row `VALUES` lists:
//! every batch size is a different statement text, so on the server's pooled connections each
//! size is parsed, described and planned again (sqlx keeps 100 statements per connection; a
//! batch writes five kinds of rows, each in any size up to the batch maximum), and a 32-row decision insert carries 448
//! parameters through PostgreSQL's parser and planner. Measured under load (docs/BENCHMARKS.md,
//! 2026-12-07): planning, parsing and analysis were 13 % of the database's CPU and the writer's
//! statements took 1.1–1.4 ms each for ~31 rows.
//!
//! Here each kind of row is one statement over arrays (`UNNEST`), bound as one parameter per
//! column ([`crate::write_sql`]`::PG_*`): parsed and planned once per connection, the same
//! outcomes as the generic path, in the same order of writes and locks.
//!
//! Invariants (shared with the generic path):
//! - nonce claims are inserted in key order `(signed_at, org, agent, nonce)` — `WITH
//!   ORDINALITY ... ORDER BY` keeps the arrays' order — so two writers (replicas) claiming the
//!   same keys, replays of each other's requests, wait for each other instead of deadlocking;
//! - a claim repeated inside the batch is a replay of its first occurrence;
//! - outcome reports update their decisions in `(org, decision)` order (of two reports on one
//!   decision in a batch, the earlier item applies);
//! - trust counters are upserted in ascending `(agent, day)` order, before the chain heads;
//! - per chain, in ascending id order, the head is locked, then the entries, closed subtrees and
//!   new head are written: the head lock is the transaction's last lock taken;
//! - everything commits in one transaction or not at all (fail closed).

use std::collections::{BTreeMap, HashSet};
use std::sync::LazyLock;

use sqlx::PgPool;
use uuid::Uuid;

use crate::agents::{DecisionOp, DecisionOutcome, DecisionWrite};
use crate::audit_chain::{ChainHead, ChainRecord, chain_of, plan};
use crate::write_sql::*;
use crate::{Error, Result};

/// Whether every op of `items` has an array form here (decisions, outcome reports and records
/// without a row change); other batches take the generic path.
pub(crate) fn applies(items: &[DecisionWrite]) -> bool {
    items.iter().all(|i| {
        matches!(
            i.op,
            DecisionOp::None | DecisionOp::InsertAction(_) | DecisionOp::ActionResult { .. }
        )
    })
}

/// [`PG_ACTIVITY`] with the counters' conflict rule.
static ACTIVITY_UPSERT: LazyLock<String> =
    LazyLock::new(|| format!("{PG_ACTIVITY}{ACTIVITY_ON_CONFLICT}"));

/// Commits `items` in one transaction on a connection of `pool`, with the outcomes of
/// [`crate::AgentStore::commit_decisions`].
pub(crate) async fn commit(
    pool: &PgPool,
    items: &[DecisionWrite],
    committing: Option<Box<dyn FnOnce() + Send>>,
) -> Result<Vec<DecisionOutcome>> {
    let mut tx = pool.begin().await?;
    let fresh = claim_nonces(&mut tx, items).await?;
    insert_actions(&mut tx, items, &fresh).await?;
    let reported = report_results(&mut tx, items, &fresh).await?;
    let mut out = Vec::with_capacity(items.len());
    let mut records = Vec::with_capacity(items.len());
    for (i, (item, fresh)) in items.iter().zip(fresh).enumerate() {
        if !fresh {
            if let Some(r) = &item.replay_audit {
                records.push(ChainRecord::plain(r));
            }
            out.push(DecisionOutcome::Replayed);
            continue;
        }
        let applied = match &item.op {
            DecisionOp::None | DecisionOp::InsertAction(_) => true,
            DecisionOp::ActionResult { .. } => reported.contains(&i),
            _ => {
                return Err(Error::Invalid(
                    "op without an array form (see postgres_batch::applies)".into(),
                ));
            }
        };
        if applied {
            records.push(item.chain_record());
            out.push(DecisionOutcome::Committed);
        } else {
            out.push(DecisionOutcome::Conflict);
        }
    }
    append_records(&mut tx, &records).await?;
    if let Some(f) = committing {
        f();
    }
    tx.commit().await?;
    Ok(out)
}

/// Claims the batch's nonces in key order ([`crate::agents::claims_in_key_order`]); `fresh[i]`
/// is false for a replayed item.
async fn claim_nonces(conn: &mut sqlx::PgConnection, items: &[DecisionWrite]) -> Result<Vec<bool>> {
    let (mut fresh, first) = crate::agents::claims_in_key_order(items);
    if first.is_empty() {
        return Ok(fresh);
    }
    let n = first.len();
    let (mut signed_at, mut org, mut agent, mut nonce, mut expires) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for &i in &first {
        let c = items[i]
            .nonce
            .as_ref()
            .expect("claims hold items with a nonce");
        signed_at.push(c.signed_at);
        org.push(c.org_id);
        agent.push(c.agent_id.as_str());
        nonce.push(c.nonce.as_str());
        expires.push(c.expires_at);
    }
    let inserted: HashSet<(i64, Uuid, String, String)> =
        sqlx::query_as::<_, (i64, Uuid, String, String)>(PG_NONCE_CLAIMS)
            .bind(&signed_at)
            .bind(&org)
            .bind(&agent)
            .bind(&nonce)
            .bind(&expires)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
    for &i in &first {
        let c = items[i]
            .nonce
            .as_ref()
            .expect("claims hold items with a nonce");
        fresh[i] = inserted.contains(&(c.signed_at, c.org_id, c.agent_id.clone(), c.nonce.clone()));
    }
    Ok(fresh)
}

/// Records the outcome reports of the fresh items; returns the indices of those that applied
/// (an approved decision of the reporting agent with no outcome yet). The rows are updated in
/// `(org, action)` order, so two batches (replicas) reporting on the same decisions lock them in
/// one order; of two reports on one decision in a batch, the earlier item applies.
async fn report_results(
    conn: &mut sqlx::PgConnection,
    items: &[DecisionWrite],
    fresh: &[bool],
) -> Result<HashSet<usize>> {
    let mut applied = HashSet::new();
    for i in crate::agents::reports_in_key_order(items, fresh) {
        // The generic path's update of one report (the same statement and binds).
        if crate::postgres::agent_store_impl::apply_op(&mut *conn, &items[i].op).await? {
            applied.insert(i);
        }
    }
    Ok(applied)
}

/// Inserts the decision rows of the fresh items in one statement.
async fn insert_actions(
    conn: &mut sqlx::PgConnection,
    items: &[DecisionWrite],
    fresh: &[bool],
) -> Result<()> {
    let actions: Vec<&crate::actions::NewAction> = items
        .iter()
        .zip(fresh)
        .filter_map(|(item, f)| match &item.op {
            DecisionOp::InsertAction(a) if *f => Some(&**a),
            _ => None,
        })
        .collect();
    if actions.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&crate::actions::NewAction) -> &str| -> Vec<&str> {
        actions.iter().map(|a| f(a)).collect()
    };
    let matched: Vec<String> = actions
        .iter()
        .map(|a| a.matched_policies.to_json())
        .collect();
    let approvers: Vec<String> = actions.iter().map(|a| a.approvers.to_json()).collect();
    sqlx::query(PG_ACTIONS)
        .bind(actions.iter().map(|a| a.id).collect::<Vec<_>>())
        .bind(actions.iter().map(|a| a.org_id).collect::<Vec<_>>())
        .bind(col(|a| &a.agent_id))
        .bind(col(|a| &a.capability))
        .bind(col(|a| &a.resource))
        .bind(col(|a| &a.context))
        .bind(col(|a| &a.risk_level))
        .bind(col(|a| a.status.as_str()))
        .bind(col(|a| &a.reason))
        .bind(&matched)
        .bind(&approvers)
        .bind(col(|a| &a.policy_version))
        .bind(actions.iter().map(|a| a.created_at).collect::<Vec<_>>())
        .bind(actions.iter().map(|a| a.expires_at).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Appends `recs` to their chains: cache invalidations and trust counters first, then per chain
/// (ascending id) the head lock and one statement with the entries, subtrees and new head.
async fn append_records(conn: &mut sqlx::PgConnection, recs: &[ChainRecord<'_>]) -> Result<()> {
    let events: Vec<_> = recs
        .iter()
        .filter_map(|c| crate::actions::cache_event_of(c.rec))
        .collect();
    if !events.is_empty() {
        let mut qb = sqlx::QueryBuilder::<sqlx::Postgres>::new(CACHE_EVENT_INTO);
        qb.push_values(&events, |mut b, e| {
            b.push_bind(e.org_id)
                .push_bind(e.kind.as_str())
                .push_bind(e.key.clone())
                .push_bind(e.at);
        });
        qb.build().execute(&mut *conn).await?;
    }
    let activity = crate::activity::aggregate_activity(recs.iter().map(|c| c.rec));
    if !activity.is_empty() {
        let num = |f: fn(&crate::activity::ActivityDelta) -> i64| -> Vec<i64> {
            activity.iter().map(f).collect()
        };
        sqlx::query(ACTIVITY_UPSERT.as_str())
            .bind(
                activity
                    .iter()
                    .map(|d| d.agent_id.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(num(|d| d.day))
            .bind(activity.iter().map(|d| d.org_id).collect::<Vec<_>>())
            .bind(num(|d| d.decisions))
            .bind(num(|d| d.violations))
            .bind(num(|d| d.results_ok))
            .bind(num(|d| d.results_failed))
            .bind(num(|d| d.key_proofs))
            .bind(num(|d| d.key_proof_failures))
            .bind(num(|d| d.challenges_passed))
            .bind(
                activity
                    .iter()
                    .map(|d| d.last_key_proof_at)
                    .collect::<Vec<_>>(),
            )
            .bind(
                activity
                    .iter()
                    .map(|d| d.last_activity_at)
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *conn)
            .await?;
    }
    let mut chains: BTreeMap<Uuid, Vec<usize>> = BTreeMap::new();
    for (i, c) in recs.iter().enumerate() {
        chains.entry(chain_of(c.rec.org_id)).or_default().push(i);
    }
    for (chain, idx) in chains {
        let updated_at = idx.iter().map(|&i| recs[i].rec.at).max().unwrap_or(0);
        let (size, head_hash, frontier): (i64, Vec<u8>, Vec<u8>) = sqlx::query_as(AUDIT_HEAD_LOCK)
            .bind(chain)
            .bind(vec![0u8; 32])
            .bind(Vec::<u8>::new())
            .bind(updated_at)
            .fetch_one(&mut *conn)
            .await?;
        let head = ChainHead::from_columns(size, &head_hash, &frontier)?;
        let planned = plan(head, recs, &idx)?;
        let e = &planned.entries;
        let rec = |p: &crate::audit_chain::PlannedEntry| recs[p.index].rec;
        sqlx::query(PG_CHAIN_APPEND)
            .bind(chain)
            .bind(e.iter().map(|_| Uuid::now_v7()).collect::<Vec<_>>())
            .bind(e.iter().map(|p| rec(p).at).collect::<Vec<_>>())
            .bind(
                e.iter()
                    .map(|p| rec(p).event_type.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(e.iter().map(|p| rec(p).actor.as_str()).collect::<Vec<_>>())
            .bind(
                e.iter()
                    .map(|p| rec(p).subject.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(e.iter().map(|p| p.payload.as_str()).collect::<Vec<_>>())
            .bind(
                e.iter()
                    .map(|p| rec(p).client_addr.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(e.iter().map(|p| p.seq as i64).collect::<Vec<_>>())
            .bind(e.iter().map(|p| p.prev.to_vec()).collect::<Vec<_>>())
            .bind(e.iter().map(|p| p.hash.to_vec()).collect::<Vec<_>>())
            .bind(
                planned
                    .nodes
                    .iter()
                    .map(|((l, i), _)| closed_at(*l, *i))
                    .collect::<Vec<_>>(),
            )
            .bind(
                planned
                    .nodes
                    .iter()
                    .map(|((l, _), _)| i64::from(*l))
                    .collect::<Vec<_>>(),
            )
            .bind(
                planned
                    .nodes
                    .iter()
                    .map(|((_, i), _)| *i as i64)
                    .collect::<Vec<_>>(),
            )
            .bind(
                planned
                    .nodes
                    .iter()
                    .map(|(_, h)| h.to_vec())
                    .collect::<Vec<_>>(),
            )
            .bind(planned.head.size as i64)
            .bind(planned.head.head_hash.to_vec())
            .bind(planned.head.frontier_bytes())
            .bind(updated_at)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
