//! Decision batches on SQLite, committed without a thread hand-off per statement and without
//! compiling the same statements again for every batch.
//!
//! sqlx runs every SQLite statement on the connection's own worker thread and hands each result
//! back to the calling task; a decision batch is about ten statements, so ten round trips between
//! threads on a machine whose cores are busy serving requests. Measured on the 2-core reference
//! machine (docs/BENCHMARKS.md): the writer connection's thread was on a CPU for a third of the
//! time the batch transactions took; the rest was waiting to be scheduled.
//!
//! Here one batch runs the whole transaction synchronously on the calling thread through
//! rusqlite, with single-row statements kept compiled between batches (`prepare_cached`). A batch
//! compiled its seven statements anew while they lived on a connection borrowed from sqlx for one
//! batch: `sqlite3_prepare` was 16 % of the writer thread's CPU (docs/BENCHMARKS.md). The
//! statements now live on the store's own batch connection ([`BatchConnection`]), opened by
//! rusqlite on the same file and owned here, so its statement cache can outlive a batch and is
//! finalized by rusqlite when the store goes away — never behind sqlx's back.
//!
//! SQLite numbers `$N` parameters in order of first appearance, so statements whose `$N` are not
//! in ascending order are bound by name. The statements' text is shared with the sqlx path
//! ([`crate::write_sql`]); chain planning ([`crate::audit_chain::plan`]), trust counters
//! ([`crate::activity::aggregate_activity`]) and cache events ([`crate::actions::cache_event_of`])
//! are the same functions. Batches holding other ops (capability requests, MCP attestations) take
//! the sqlx path ([`applies`]).
//!
//! Invariants:
//! - one writer at a time: a batch holds the sqlx writer pool's one connection (the store's write
//!   lock, see [`crate::SqliteStore`]) for its whole transaction and commits on the batch
//!   connection meanwhile; nothing else writes on the batch connection, and only this module
//!   touches it, under its mutex;
//! - the calling thread blocks for the batch (a few milliseconds): the server calls this from
//!   the decision writer's own thread, never from a request task;
//! - the transaction is `BEGIN IMMEDIATE`, like every other write of the store;
//! - the batch connection is left outside any transaction: commit, or rollback on every error
//!   (and on unwind, by rusqlite's transaction guard);
//! - the batch connection has the writer's settings (WAL, the same `synchronous`, foreign keys,
//!   in-memory statement journals, the same automatic-checkpoint backstop and WAL size limit).

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{
    Connection, OpenFlags, OptionalExtension, TransactionBehavior, named_params, params,
};
use sqlx::SqlitePool;
use uuid::Uuid;

use crate::agents::{DecisionOp, DecisionOutcome, DecisionWrite};
use crate::audit_chain::{ChainHead, ChainRecord, chain_of, plan};
use crate::write_sql::*;
use crate::{Error, Result};

/// Whether every op of `items` has a synchronous form here (decisions, outcome reports and
/// records without a row change); other batches take the sqlx path.
pub(crate) fn applies(items: &[DecisionWrite]) -> bool {
    items.iter().all(|i| {
        matches!(
            i.op,
            DecisionOp::None | DecisionOp::InsertAction(_) | DecisionOp::ActionResult { .. }
        )
    })
}

/// The connection decision batches commit on: opened lazily on the store's file, kept for the
/// store's lifetime with its compiled statements (see the module's invariants).
#[derive(Debug)]
pub(crate) struct BatchConnection {
    path: PathBuf,
    /// The writer's `synchronous` setting, which this connection must share.
    durability: crate::sqlite::SqliteDurability,
    conn: Mutex<Option<Connection>>,
}

impl BatchConnection {
    /// A batch connection for the database file at `path` (opened at the first batch).
    pub(crate) fn new(path: PathBuf, durability: crate::sqlite::SqliteDurability) -> Self {
        BatchConnection {
            path,
            durability,
            conn: Mutex::new(None),
        }
    }

    /// Closes the connection (finalizing its statements) if it is open; a later batch would
    /// open it again. The store calls this from `close`, after the writer pool — the write
    /// lock every batch holds — is closed, so no batch is running.
    pub(crate) fn close(&self) {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner()).take();
        drop(conn);
    }

    /// `PRAGMA synchronous` of a connection opened as batches open theirs (tests).
    #[cfg(test)]
    pub(crate) fn synchronous(&self) -> Result<i64> {
        self.open()?
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .map_err(sqlite_err)
    }

    fn open(&self) -> Result<Connection> {
        let db = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sqlite_err)?;
        db.busy_timeout(Duration::from_secs(10))
            .map_err(sqlite_err)?;
        db.execute_batch(&format!(
            "PRAGMA foreign_keys = ON; PRAGMA synchronous = {}; PRAGMA temp_store = MEMORY; \
             PRAGMA wal_autocheckpoint = {}; PRAGMA journal_size_limit = {};",
            self.durability.pragma(),
            crate::sqlite::WAL_BACKSTOP_PAGES,
            crate::sqlite::WAL_SIZE_LIMIT
        ))
        .map_err(sqlite_err)?;
        let mode: String = db
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .map_err(sqlite_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Invalid(format!(
                "the batch connection found journal mode {mode}, not wal"
            )));
        }
        Ok(db)
    }
}

/// Commits `items` in one transaction (same outcomes as
/// [`crate::AgentStore::commit_decisions`]): holds `writer`'s one connection, the store's write
/// lock, while the transaction runs on `batch`.
pub(crate) async fn commit(
    writer: &SqlitePool,
    batch: &BatchConnection,
    items: &[DecisionWrite],
) -> Result<Vec<DecisionOutcome>> {
    let write_lock = writer.acquire().await?;
    let mut guard = batch.conn.lock().unwrap_or_else(|p| p.into_inner());
    if guard.is_none() {
        *guard = Some(batch.open()?);
    }
    let db = guard.as_mut().expect("opened above");
    let out = run(db, items);
    if !db.is_autocommit() {
        // `run` ends every path with COMMIT or a rollback; should a rollback itself have failed,
        // the next batch must still start outside any transaction.
        tracing::error!("decision batch left a transaction open; rolling back");
        let _ = db.execute_batch("ROLLBACK");
    }
    drop(guard);
    drop(write_lock);
    out
}

fn sqlite_err(e: rusqlite::Error) -> Error {
    if let rusqlite::Error::SqliteFailure(f, _) = &e
        && f.code == rusqlite::ErrorCode::ConstraintViolation
        && matches!(
            f.extended_code,
            rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        )
    {
        return Error::Conflict { what: "record" };
    }
    Error::Database(sqlx::Error::Protocol(format!("sqlite: {e}")))
}

fn run(db: &mut Connection, items: &[DecisionWrite]) -> Result<Vec<DecisionOutcome>> {
    let tx = db
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_err)?;
    let out = batch(&tx, items)?;
    tx.commit().map_err(sqlite_err)?;
    Ok(out)
}

fn batch(db: &Connection, items: &[DecisionWrite]) -> Result<Vec<DecisionOutcome>> {
    // Nonce claims first: a claim repeated inside the batch is a replay of its first occurrence.
    let mut fresh = vec![true; items.len()];
    {
        let mut claim = db
            .prepare_cached(&format!("{NONCE_INTO}{}{NONCE_ON_CONFLICT}", values_row(5)))
            .map_err(sqlite_err)?;
        let mut seen = HashSet::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            if let Some(c) = &item.nonce {
                fresh[i] =
                    seen.insert((c.signed_at, c.org_id, c.agent_id.as_str(), c.nonce.as_str()))
                        && claim
                            .execute(params![
                                c.signed_at,
                                c.org_id.as_bytes(),
                                c.agent_id,
                                c.nonce,
                                c.expires_at
                            ])
                            .map_err(sqlite_err)?
                            == 1;
            }
        }
    }
    let mut insert_action = None;
    let mut update_result = None;
    let mut out = Vec::with_capacity(items.len());
    let mut records = Vec::with_capacity(items.len());
    for (item, fresh) in items.iter().zip(fresh) {
        if !fresh {
            if let Some(r) = &item.replay_audit {
                records.push(ChainRecord::plain(r));
            }
            out.push(DecisionOutcome::Replayed);
            continue;
        }
        let applied = match &item.op {
            DecisionOp::None => true,
            DecisionOp::InsertAction(a) => {
                if insert_action.is_none() {
                    insert_action = Some(
                        db.prepare_cached(&format!("{ACTION_INTO}{}", values_row(14)))
                            .map_err(sqlite_err)?,
                    );
                }
                let stmt = insert_action.as_mut().expect("prepared above");
                stmt.execute(params![
                    a.id.as_bytes(),
                    a.org_id.as_bytes(),
                    a.agent_id,
                    a.capability,
                    a.resource,
                    a.context,
                    a.risk_level,
                    a.status.as_str(),
                    a.reason,
                    a.matched_policies.to_json(),
                    a.approvers.to_json(),
                    a.policy_version,
                    a.created_at,
                    a.expires_at,
                ])
                .map_err(sqlite_err)?;
                true
            }
            DecisionOp::ActionResult {
                org_id,
                action_id,
                agent_id,
                result,
                detail,
                at,
            } => {
                if update_result.is_none() {
                    update_result = Some(
                        db.prepare_cached(ACTION_RESULT_UPDATE)
                            .map_err(sqlite_err)?,
                    );
                }
                let stmt = update_result.as_mut().expect("prepared above");
                stmt.execute(named_params! {
                    "$1": org_id.as_bytes(),
                    "$2": action_id.as_bytes(),
                    "$3": agent_id,
                    "$4": result.as_str(),
                    "$5": at,
                    "$6": detail,
                })
                .map_err(sqlite_err)?
                    == 1
            }
            _ => {
                return Err(Error::Invalid(
                    "op without a synchronous SQLite form (see sqlite_batch::applies)".into(),
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
    append_audits(db, &records)?;
    Ok(out)
}

/// [`crate::sql`]'s `append_audits_on` for this connection: invalidations and trust counters
/// first, then per chain (ascending id) the head lock, the entries, the closed subtrees and the
/// new head — the head lock stays the transaction's last lock taken.
fn append_audits(db: &Connection, recs: &[ChainRecord]) -> Result<()> {
    let events: Vec<_> = recs
        .iter()
        .filter_map(|c| crate::actions::cache_event_of(c.rec))
        .collect();
    if !events.is_empty() {
        let mut stmt = db
            .prepare_cached(&format!("{CACHE_EVENT_INTO}{}", values_row(4)))
            .map_err(sqlite_err)?;
        for e in &events {
            stmt.execute(params![e.org_id.as_bytes(), e.kind.as_str(), e.key, e.at])
                .map_err(sqlite_err)?;
        }
    }
    let activity = crate::activity::aggregate_activity(recs.iter().map(|c| c.rec));
    if !activity.is_empty() {
        let mut stmt = db
            .prepare_cached(&format!(
                "{ACTIVITY_INTO}{}{ACTIVITY_ON_CONFLICT}",
                values_row(12)
            ))
            .map_err(sqlite_err)?;
        for d in &activity {
            stmt.execute(params![
                d.agent_id,
                d.day,
                d.org_id.as_bytes(),
                d.decisions,
                d.violations,
                d.results_ok,
                d.results_failed,
                d.key_proofs,
                d.key_proof_failures,
                d.challenges_passed,
                d.last_key_proof_at,
                d.last_activity_at,
            ])
            .map_err(sqlite_err)?;
        }
    }
    let mut chains: BTreeMap<Uuid, Vec<usize>> = BTreeMap::new();
    for (i, c) in recs.iter().enumerate() {
        chains.entry(chain_of(c.rec.org_id)).or_default().push(i);
    }
    if chains.is_empty() {
        return Ok(());
    }
    let mut lock = db.prepare_cached(AUDIT_HEAD_LOCK).map_err(sqlite_err)?;
    let mut entry = db
        .prepare_cached(&format!("{AUDIT_ENTRY_INTO}{}", values_row(11)))
        .map_err(sqlite_err)?;
    let mut node = db
        .prepare_cached(&format!("{AUDIT_NODE_INTO}{}", values_row(5)))
        .map_err(sqlite_err)?;
    let mut head_update = db.prepare_cached(AUDIT_HEAD_UPDATE).map_err(sqlite_err)?;
    for (chain, idx) in chains {
        let updated_at = idx.iter().map(|&i| recs[i].rec.at).max().unwrap_or(0);
        let (size, head_hash, frontier): (i64, Vec<u8>, Vec<u8>) = lock
            .query_row(
                params![
                    chain.as_bytes(),
                    [0u8; 32].as_slice(),
                    [0u8; 0].as_slice(),
                    updated_at
                ],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(sqlite_err)?
            .ok_or_else(|| Error::Corrupt("audit head lock returned no row".into()))?;
        let head = ChainHead::from_columns(size, &head_hash, &frontier)?;
        let planned = plan(head, recs, &idx)?;
        for p in &planned.entries {
            let r = recs[p.index].rec;
            entry
                .execute(params![
                    Uuid::now_v7().as_bytes(),
                    chain.as_bytes(),
                    r.at,
                    r.event_type,
                    r.actor,
                    r.subject,
                    p.payload,
                    r.client_addr,
                    p.seq as i64,
                    p.prev.as_slice(),
                    p.hash.as_slice(),
                ])
                .map_err(sqlite_err)?;
        }
        for ((level, i), h) in &planned.nodes {
            node.execute(params![
                chain.as_bytes(),
                closed_at(*level, *i),
                i64::from(*level),
                *i as i64,
                h.as_slice()
            ])
            .map_err(sqlite_err)?;
        }
        head_update
            .execute(named_params! {
                "$1": chain.as_bytes(),
                "$2": planned.head.size as i64,
                "$3": planned.head.head_hash.as_slice(),
                "$4": planned.head.frontier_bytes(),
                "$5": updated_at,
            })
            .map_err(sqlite_err)?;
    }
    Ok(())
}
