//! Pages of an audit chain read on SQLite without a thread hand-off per row.
//!
//! Every appended entry is read back twice while the server runs: by the checkpointer's
//! incremental chain verifier and by the monitor (pages of up to 1,000 rows). Through sqlx each
//! row of a SQLite result is produced on the connection's worker thread and handed to the
//! calling task one at a time: under load sqlx's SQLite threads used 0.16 cores, 0.08 with this
//! module (docs/BENCHMARKS.md). Here a page takes a read-only pool connection, locks its handle once
//! ([`sqlx::sqlite::LockedSqliteHandle`]) and steps the query through rusqlite on the calling
//! thread.
//!
//! Invariants:
//! - the calling thread blocks for one page (at most 1,000 rows): on Tokio's
//!   multi-threaded runtime the read runs inside [`tokio::task::block_in_place`], so the
//!   runtime's other tasks move to another worker meanwhile; elsewhere (a current-thread runtime
//!   in a test or a CLI) it runs inline;
//! - the connection is one of the read-only pool's, so nothing here can write;
//! - the rusqlite view of the handle never outlives the lock (both live in [`list_audit_chain`]'s
//!   scope and the view is dropped first); rusqlite does not close a handle it did not open, and
//!   its one statement is finalized before the view is dropped.

use rusqlite::{Connection, Row, params};
use sqlx::SqlitePool;
use uuid::Uuid;

use crate::model::AuditRow;
use crate::{Error, Result};

/// The same columns and order as the sqlx path of [`crate::Store::list_audit_chain`].
const PAGE_SQL: &str = "SELECT id, org_id, at, event_type, actor, subject, payload, client_addr, \
     seq, prev_hash, hash FROM audit_entries WHERE org_id = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3";

/// Entries of `org_id`'s chain with `seq >= from_seq`, in `seq` order, at most `limit`
/// (clamped to 1..=1000 like the sqlx path).
pub(crate) async fn list_audit_chain(
    pool: &SqlitePool,
    org_id: Uuid,
    from_seq: u64,
    limit: u32,
) -> Result<Vec<AuditRow>> {
    let mut conn = pool.acquire().await?;
    let mut locked = conn.lock_handle().await?;
    let raw = locked.as_raw_handle();
    let from = i64::try_from(from_seq).unwrap_or(i64::MAX);
    let limit = i64::from(limit.clamp(1, 1000));
    let read = || {
        // SAFETY: `raw` is the open connection handle of `locked`, which gives this thread
        // exclusive use of it until `locked` is dropped (sqlx's worker waits on the same lock).
        // `db` is dropped at the end of this closure, before `locked`, and rusqlite neither
        // closes nor keeps a handle it was given this way.
        let db = unsafe { Connection::from_handle(raw.as_ptr()) }.map_err(read_err)?;
        let rows = page(&db, org_id, from, limit);
        drop(db);
        rows
    };
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    let out = if multi_thread {
        tokio::task::block_in_place(read)
    } else {
        read()
    };
    drop(locked);
    out
}

fn page(db: &Connection, org_id: Uuid, from: i64, limit: i64) -> Result<Vec<AuditRow>> {
    let mut stmt = db.prepare(PAGE_SQL).map_err(read_err)?;
    let rows = stmt
        .query_map(params![org_id.as_bytes(), from, limit], row_of)
        .map_err(read_err)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(read_err)?;
    Ok(rows)
}

fn uuid_of(bytes: &[u8], idx: usize) -> rusqlite::Result<Uuid> {
    Uuid::from_slice(bytes).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Blob, Box::new(e))
    })
}

fn row_of(r: &Row<'_>) -> rusqlite::Result<AuditRow> {
    let id: Vec<u8> = r.get(0)?;
    let org: Option<Vec<u8>> = r.get(1)?;
    Ok(AuditRow {
        id: uuid_of(&id, 0)?,
        org_id: org.as_deref().map(|b| uuid_of(b, 1)).transpose()?,
        at: r.get(2)?,
        event_type: r.get(3)?,
        actor: r.get(4)?,
        subject: r.get(5)?,
        payload: r.get(6)?,
        client_addr: r.get(7)?,
        seq: r.get(8)?,
        prev_hash: r.get(9)?,
        hash: r.get(10)?,
    })
}

fn read_err(e: rusqlite::Error) -> Error {
    Error::Database(sqlx::Error::Protocol(format!("sqlite: {e}")))
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

    use super::*;
    use crate::model::AuditRecord;
    use crate::testing::TestDb;

    /// The sqlx query the direct read replaces, for comparison.
    async fn via_sqlx(pool: &SqlitePool, org: Uuid, from: i64, limit: i64) -> Vec<AuditRow> {
        sqlx::query_as::<_, AuditRow>(PAGE_SQL)
            .bind(org)
            .bind(from)
            .bind(limit.clamp(1, 1000))
            .fetch_all(pool)
            .await
            .unwrap()
    }

    async fn same_rows_as_sqlx() {
        let db = TestDb::sqlite().unwrap();
        let store = crate::connect(&db.url, 2).await.unwrap();
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let rec = |org: Uuid, i: i64| AuditRecord {
            org_id: Some(org),
            at: 1_000 + i,
            event_type: format!("test.e{i}"),
            actor: "system".into(),
            subject: (i % 2 == 0).then(|| format!("agent:é{i}")),
            payload: serde_json::json!({"i": i, "s": "ünïcode \u{1F600}", "f": 0.5}),
            client_addr: (i % 3 == 0).then(|| "192.0.2.7".to_string()),
        };
        let mut recs: Vec<AuditRecord> = (0..7).map(|i| rec(a, i)).collect();
        recs.extend((0..3).map(|i| rec(b, i)));
        store.append_audits(&recs).await.unwrap();

        let opts = SqliteConnectOptions::from_str(&db.url)
            .unwrap()
            .read_only(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .unwrap();
        for (org, from, limit) in [(a, 0, 1000), (a, 2, 3), (a, 6, 0), (a, 7, 5), (b, 0, 2000)] {
            let direct = list_audit_chain(&pool, org, from, limit).await.unwrap();
            let expected =
                via_sqlx(&pool, org, i64::try_from(from).unwrap(), i64::from(limit)).await;
            assert_eq!(direct, expected, "org {org} from {from} limit {limit}");
        }
        let all = list_audit_chain(&pool, a, 0, 1000).await.unwrap();
        assert_eq!(all.len(), 7);
        assert!(all.iter().any(|r| r.subject.is_none()) && all.iter().any(|r| r.subject.is_some()));
        assert!(all.iter().any(|r| r.client_addr.is_some()));
        assert!(
            all.iter()
                .all(|r| r.hash.as_ref().is_some_and(|h| h.len() == 32))
        );
        // Nothing past the end, and a missing chain is empty rather than an error.
        assert!(
            list_audit_chain(&pool, a, u64::MAX, 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            list_audit_chain(&pool, Uuid::nil(), 0, 10)
                .await
                .unwrap()
                .is_empty()
        );
        pool.close().await;
        store.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn same_rows_as_sqlx_on_the_multi_threaded_runtime() {
        same_rows_as_sqlx().await;
    }

    #[tokio::test]
    async fn same_rows_as_sqlx_on_a_current_thread_runtime() {
        same_rows_as_sqlx().await;
    }
}
