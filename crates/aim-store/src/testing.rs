//! Throw-away databases for tests (used by this crate's suite and by `aim-server`'s).
//!
//! PostgreSQL tests read the admin URL from `AIM_TEST_POSTGRES_URL`; each [`TestDb`] creates its
//! own database with a random name and drops it (with `FORCE`) when dropped, so parallel runs never
//! collide. When the variable is absent, [`TestDb::postgres`] prints a loud `SKIPPED` line and
//! returns `None`.

use sqlx::Connection;

/// Environment variable naming the PostgreSQL server tests may create databases on.
pub const PG_ENV: &str = "AIM_TEST_POSTGRES_URL";

/// A database that lives as long as this value.
#[derive(Debug)]
pub struct TestDb {
    /// URL to give to [`crate::connect`] or the server config.
    pub url: String,
    admin_url: Option<String>,
    name: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    /// A fresh SQLite file in a temporary directory.
    pub fn sqlite() -> std::io::Result<TestDb> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("aim.db");
        Ok(TestDb {
            url: format!("sqlite://{}", path.display()),
            admin_url: None,
            name: String::new(),
            _dir: Some(dir),
        })
    }

    /// A fresh PostgreSQL database, or `None` (after printing `SKIPPED`) when `AIM_TEST_POSTGRES_URL`
    /// is not set. Panics if the variable is set but the server cannot be used: a configured but
    /// broken database must fail the run, not skip it.
    pub async fn postgres(test: &str) -> Option<TestDb> {
        let Ok(admin_url) = std::env::var(PG_ENV) else {
            // Written to the real stderr (not `eprintln!`, which the test harness captures), so the
            // skip is visible in every run.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED: {PG_ENV} not set ({test} on PostgreSQL did not run)"
            );
            return None;
        };
        let name = format!("aim_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("{PG_ENV} is set but PostgreSQL is unreachable: {e}"));
        // `name` is generated here from a UUID: no injection possible.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        let _ = conn.close().await;
        let url = with_database(&admin_url, &name);
        Some(TestDb {
            url,
            admin_url: Some(admin_url),
            name,
            _dir: None,
        })
    }
}

/// Replaces the database name (path) of a PostgreSQL URL, keeping its query string.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{host_part}/{db}?{q}"),
        None => format!("{host_part}/{db}"),
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some(admin_url) = self.admin_url.take() else {
            return;
        };
        let name = std::mem::take(&mut self.name);
        // Drop may run inside a runtime: do the async work on a private thread and runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&mut conn)
                        .await
                    {
                        eprintln!("warning: cannot drop test database {name}: {e}");
                    }
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

/// Runs one raw SQL statement on the database at `url`, with `$1` bound to `org` (tests use it to
/// tamper with stored rows, as an attacker with database access would). Returns the rows changed.
/// `sql` must be a literal written by the test.
pub async fn execute_for_org(url: &str, sql: &'static str, org: uuid::Uuid) -> crate::Result<u64> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let mut conn = sqlx::PgConnection::connect(url).await?;
        let n = sqlx::query(sql)
            .bind(org)
            .execute(&mut conn)
            .await?
            .rows_affected();
        let _ = conn.close().await;
        Ok(n)
    } else {
        let mut conn = sqlx::SqliteConnection::connect(url).await?;
        let n = sqlx::query(sql)
            .bind(org)
            .execute(&mut conn)
            .await?
            .rows_affected();
        let _ = conn.close().await;
        Ok(n)
    }
}

/// Reads an organization's whole chain in `seq` order, verifies it with `aim_core` (strict), and
/// checks it against the stored head and root: one linear chain, no gap. Returns the leaves.
/// Panics (it is a test helper) when anything does not hold.
pub async fn verify_chain(
    s: &dyn crate::Store,
    org: uuid::Uuid,
) -> Vec<aim_core::audit::merkle::Hash> {
    let mut v = aim_core::audit::ChainVerifier::new()
        .strict(true)
        .keep_leaves(true);
    let mut from = 0;
    loop {
        let rows = s.list_audit_chain(org, from, 1000).await.unwrap();
        for r in &rows {
            v.push_entry(&crate::audit_chain::entry_of_row(r).unwrap())
                .unwrap();
        }
        if rows.len() < 1000 {
            break;
        }
        from += 1000;
    }
    let sum = v.finish();
    let head = s.audit_head(org).await.unwrap();
    assert_eq!(sum.size, head.size, "one linear chain, no gap");
    assert_eq!(sum.root, head.root);
    assert_eq!(s.audit_root(org, sum.size).await.unwrap(), sum.root);
    sum.leaves
}

/// A fresh decision row as the decision path writes it (no approver, no reported result): `id`
/// of `agent_id` in `org_id`, `status`, created at `created_at`, valid a minute; fixed
/// capability `db:read`, resource `r`, risk `low`. Tests override fields with `..`.
pub fn decision_row(
    id: uuid::Uuid,
    org_id: uuid::Uuid,
    agent_id: &str,
    status: crate::ActionStatus,
    created_at: i64,
) -> crate::ActionDecision {
    crate::ActionDecision {
        id,
        org_id,
        agent_id: agent_id.into(),
        capability: "db:read".into(),
        resource: "r".into(),
        context: "{}".into(),
        risk_level: "low".into(),
        status,
        reason: "test".into(),
        matched_policies: crate::JsonStrings(vec![]),
        approvers: crate::JsonStrings(vec![]),
        policy_version: "0".into(),
        created_at,
        expires_at: created_at + 60_000,
        decided_by: None,
        decided_at: None,
        result: None,
        result_at: None,
        result_detail: None,
    }
}

/// A migrated store on a fresh SQLite file (keep the [`TestDb`] alive as long as the store).
pub async fn sqlite_store() -> (TestDb, std::sync::Arc<dyn crate::Store>) {
    let db = TestDb::sqlite().expect("temporary SQLite file");
    let store = crate::connect(&db.url, 4).await.expect("open SQLite store");
    (db, store)
}

/// A migrated store on a fresh PostgreSQL database, or `None` (after a loud `SKIPPED`) without
/// `AIM_TEST_POSTGRES_URL`.
pub async fn postgres_store(test: &str) -> Option<(TestDb, std::sync::Arc<dyn crate::Store>)> {
    let db = TestDb::postgres(test).await?;
    let store = crate::connect(&db.url, 4)
        .await
        .expect("open PostgreSQL store");
    Some((db, store))
}

/// Generates `sqlite::NAME` and `postgres::NAME` tests running each listed
/// `async fn NAME(s: &dyn Store)` on a fresh store of that backend.
#[macro_export]
macro_rules! store_suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let (_db, store) = $crate::testing::sqlite_store().await;
                    super::$name(&*store).await;
                    store.close().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some((_db, store)) =
                        $crate::testing::postgres_store(stringify!($name)).await
                    else {
                        return;
                    };
                    super::$name(&*store).await;
                    store.close().await;
                }
            )*
        }
    };
}

/// On `$pool` (a fresh database of either backend): migrates to the schema before
/// [`NODES_REKEYED`], stores old-shape Merkle nodes (each hash `[level; 32]`), runs every
/// migration of `$migrator`, and checks that each node got `closed_at = (idx + 1) << level` with
/// its hash and that a row whose key disagrees with its `(level, idx)` is refused.
#[cfg(test)]
#[macro_export]
macro_rules! check_nodes_rekey {
    ($pool:expr, $migrator:expr) => {{
        let pool = &$pool;
        $crate::testing::migrations_before(&$migrator, $crate::testing::NODES_REKEYED)
            .run(pool)
            .await
            .unwrap();
        let org = uuid::Uuid::now_v7();
        for (level, idx) in [(0i64, 0i64), (0, 6), (1, 0), (2, 1), (3, 2)] {
            sqlx::query(
                "INSERT INTO audit_nodes (org_id, level, idx, hash) VALUES ($1, $2, $3, $4)",
            )
            .bind(org)
            .bind(level)
            .bind(idx)
            .bind(vec![level as u8; 32])
            .execute(pool)
            .await
            .unwrap();
        }
        $migrator.run(pool).await.unwrap();
        let rows: Vec<(i64, i64, i64, Vec<u8>)> = sqlx::query_as(
            "SELECT closed_at, level, idx, hash FROM audit_nodes WHERE org_id = $1 ORDER BY closed_at, level",
        )
        .bind(org)
        .fetch_all(pool)
        .await
        .unwrap();
        let keys: Vec<(i64, i64, i64)> = rows.iter().map(|r| (r.0, r.1, r.2)).collect();
        assert_eq!(keys, vec![(1, 0, 0), (2, 1, 0), (7, 0, 6), (8, 2, 1), (24, 3, 2)]);
        assert!(rows.iter().all(|r| r.3 == vec![r.1 as u8; 32]), "hashes kept");
        // A row whose key disagrees with its (level, idx) is refused.
        let bad = sqlx::query(
            "INSERT INTO audit_nodes (org_id, closed_at, level, idx, hash) VALUES ($1, 9, 0, 9, $2)",
        )
        .bind(org)
        .bind(vec![0u8; 32])
        .execute(pool)
        .await;
        assert!(bad.is_err(), "CHECK (closed_at = (idx + 1) << level)");
    }};
}

/// The migration that re-keyed `audit_nodes` by `closed_at` (tested on both backends).
#[cfg(test)]
pub(crate) const NODES_REKEYED: i64 = 20261209000000;

/// The migrations of `m` before `version` (an older server's schema). Uses `Migrator`'s
/// `doc(hidden)` fields, which sqlx keeps public for its macro: tests only.
#[cfg(test)]
pub(crate) fn migrations_before(
    m: &sqlx::migrate::Migrator,
    version: i64,
) -> sqlx::migrate::Migrator {
    let mut older = sqlx::migrate::Migrator::DEFAULT;
    older.migrations = m
        .migrations
        .iter()
        .filter(|x| x.version < version)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    older
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            super::with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            super::with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            super::with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }
}
