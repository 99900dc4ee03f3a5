//! Starts the real server on an ephemeral loopback port for integration tests, on SQLite or
//! PostgreSQL, with a clock the test can move.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use aim_core::clock::Clock;
use aim_store::testing::TestDb;
use chrono::{DateTime, Utc};

use crate::{Config, Server};

/// Email of the bootstrap admin of every test server.
pub const ADMIN_EMAIL: &str = "admin@test.local";
/// Password of the bootstrap admin of every test server.
pub const ADMIN_PASSWORD: &str = "Tr0ub4dor&3-correct-horse";

/// A clock tests advance by hand.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// Starts at the real current time.
    pub fn new() -> ManualClock {
        ManualClock(AtomicI64::new(Utc::now().timestamp_millis()))
    }
    /// Current time in Unix seconds.
    pub fn now_secs(&self) -> i64 {
        self.0.load(Ordering::SeqCst) / 1000
    }
    /// Moves time forward.
    pub fn advance(&self, d: Duration) {
        self.0.fetch_add(
            i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Ordering::SeqCst,
        );
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0.load(Ordering::SeqCst)).unwrap_or_default()
    }
}

/// A server under test. Dropping it leaks the server task until the runtime ends; call
/// [`TestServer::stop`] to shut it down cleanly.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub server: Server,
    pub clock: Arc<ManualClock>,
    /// The configuration the server started with (reused by [`TestServer::restart`]).
    config: Config,
    _home: tempfile::TempDir,
    _db: TestDb,
}

impl TestServer {
    /// On SQLite.
    pub async fn sqlite() -> Result<TestServer, crate::Error> {
        let db = TestDb::sqlite().map_err(|e| crate::Error::Io(e.to_string()))?;
        Self::start(db, |_| {}).await
    }

    /// On a fresh PostgreSQL database, or `None` (after a loud SKIPPED line) without
    /// `AIM_TEST_POSTGRES_URL`.
    pub async fn postgres(test: &str) -> Option<Result<TestServer, crate::Error>> {
        let db = TestDb::postgres(test).await?;
        Some(Self::start(db, |_| {}).await)
    }

    /// On `db`, with a configuration hook.
    pub async fn start(
        db: TestDb,
        tweak: impl FnOnce(&mut Config),
    ) -> Result<TestServer, crate::Error> {
        let home = tempfile::tempdir().map_err(|e| crate::Error::Io(e.to_string()))?;
        let mut cfg = Config::for_home(home.path())?;
        cfg.database_url = Some(db.url.clone());
        cfg.database_max_connections = 5;
        cfg.bootstrap_admin_email = ADMIN_EMAIL.into();
        cfg.bootstrap_admin_password = Some(ADMIN_PASSWORD.to_string().into());
        // Rate limits off unless a test turns them on (suites log in many times per second).
        cfg.ops.rate_limit_address_per_minute = 0;
        cfg.ops.rate_limit_credential_per_minute = 0;
        cfg.ops.rate_limit_login_per_minute = 0;
        tweak(&mut cfg);
        let clock = Arc::new(ManualClock::new());
        let server = crate::start(cfg.clone(), clock.clone()).await?;
        let scheme = if server.tls { "https" } else { "http" };
        Ok(TestServer {
            base: format!("{scheme}://{}", server.addr),
            server,
            clock,
            config: cfg,
            _home: home,
            _db: db,
        })
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Shuts the server down and starts a new process state over the same database, home
    /// directory and clock (a server restart: nothing held in memory survives). The new server
    /// listens on a new port; read [`TestServer::base`] again.
    pub async fn restart(self) -> Result<TestServer, crate::Error> {
        let TestServer {
            server,
            clock,
            config,
            _home,
            _db,
            ..
        } = self;
        server.shutdown().await?;
        let server = crate::start(config.clone(), clock.clone()).await?;
        let scheme = if server.tls { "https" } else { "http" };
        Ok(TestServer {
            base: format!("{scheme}://{}", server.addr),
            server,
            clock,
            config,
            _home,
            _db,
        })
    }

    /// Shuts the server down and drops the database.
    pub async fn stop(self) {
        let _ = self.server.shutdown().await;
    }
}
