//! `aim-server`: the AIM platform server as a library.
//!
//! [`run`] serves until Ctrl-C/SIGTERM; [`start`] binds and serves in the background and returns
//! a [`Server`] handle (used by the CLI and by [`testkit`]). The binary (`opena2a server`) is a thin
//! layer over these.
//!
//! Modules are named after concepts:
//! - [`config`]: the one configuration struct (file + env + flags).
//! - [`password`]: strength policy, Argon2id hashing.
//! - [`jwt`]: EdDSA access tokens with rotating `kid`-named keys.
//! - [`api_key`]: `aim_live_…` key format and digests.
//! - [`totp`]: RFC 6238 second factor.
//! - [`keyring`]: AES-256-GCM sealing of secret columns.
//! - [`rbac`]: the permission table; [`auth`]: the `Caller` extractor.
//! - [`routes`]: HTTP handlers.
//! - [`agent_auth`]: the signed agent request extractor; [`decision_writer`]: the group-commit
//!   writer every signed request goes through; [`did`]: did:web identifiers and documents.
//! - [`openapi`]: the OpenAPI 3.1 document (`GET /api/v1/openapi.json`).
//! - [`tls`]: TLS 1.3 listener; [`connections`]: the open-connection gauge the writer's linger
//!   reads; [`client_ip`]: trusted-proxy address resolution;
//!   [`ratelimit`]: quotas; [`metrics`]: `GET /metrics`; [`key_rotation`]: master-key rotation.
//! - [`mcp_attestation`]: MCP server confidence from agents' attestations.
//! - [`monitor`]: anomaly detection and event correlation over the audit log; [`alerting`]:
//!   webhook and email delivery of the alerts they raise.

pub mod agent_auth;
pub mod alerting;
pub mod api_key;
pub mod audit_log;
pub mod auth;
pub mod authz;
pub mod config;
pub mod connections;
pub mod decision_writer;
pub mod did;
pub mod error;
pub mod jwt;
pub mod keyring;
pub mod mcp_attestation;
pub mod monitor;
pub mod openapi;
pub mod password;
pub mod rbac;
pub mod routes;
pub mod secrets;
pub mod state;
pub mod testkit;
pub mod totp;
pub mod trust;

pub mod client_ip;
pub mod key_rotation;
pub mod metrics;
pub mod ops_layers;
pub mod ratelimit;
pub mod sdk_auth;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use aim_core::clock::{Clock, SystemClock};
use aim_store::{NewUser, Organization, Role};
use secrecy::ExposeSecret;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub use config::Config;
pub use error::Error;
pub use state::AppState;

/// A running server.
pub struct Server {
    /// The address actually bound (useful with port 0).
    pub addr: SocketAddr,
    /// The application state (tests use the store and key set directly).
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), Error>>,
    rotation: JoinHandle<()>,
    checkpointer: JoinHandle<()>,
    decisions: JoinHandle<()>,
    monitor: JoinHandle<()>,
    /// Whether the server speaks TLS (`https://`).
    pub tls: bool,
}

impl Server {
    /// Stops accepting, finishes in-flight requests, closes the store.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.rotation.abort();
        self.checkpointer.abort();
        self.decisions.abort();
        self.monitor.abort();
        let res = (&mut self.task)
            .await
            .map_err(|e| Error::Io(format!("server task: {e}")))?;
        self.state.store.close().await;
        res
    }

    /// Waits until the server stops by itself (it only does on error).
    pub async fn wait(mut self) -> Result<(), Error> {
        let res = (&mut self.task)
            .await
            .map_err(|e| Error::Io(format!("server task: {e}")));
        self.rotation.abort();
        self.checkpointer.abort();
        self.decisions.abort();
        self.monitor.abort();
        res?
    }
}

/// Opens the store, loads keys, bootstraps on first start.
pub async fn build_state(config: Config, clock: Arc<dyn Clock>) -> Result<AppState, Error> {
    let url = config.effective_database_url();
    if aim_store::backend_name(&url) == "sqlite" {
        let dir = config.home.join("aim-server");
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Io(format!("cannot create {}: {e}", dir.display())))?;
        restrict_dir(&dir);
    }
    let store = aim_store::connect_with(
        &url,
        config.database_max_connections,
        config.sqlite_durability,
    )
    .await?;
    let ring = Arc::new(keyring::KeyRing::load(
        config.master_key.as_ref(),
        &config.master_key_file,
    )?);
    let jwt = jwt::JwtKeys::load(
        store.clone(),
        ring.clone(),
        clock.clone(),
        config.jwt_issuer.clone(),
        config.jwt_audience.clone(),
        config.access_token_ttl_secs,
        config.jwt_key_rotation_secs,
    )
    .await?;
    let metrics = Arc::new(metrics::Metrics::new());
    let writer = decision_writer::DecisionWriter::spawn(
        store.clone(),
        config.decision_batch_max as usize,
        std::time::Duration::from_micros(config.decision_batch_linger_us),
        metrics.writer(),
    )?;
    let config_ops = config.ops.clone();
    let authz = Arc::new(authz::Authz::new(&config.decisions));
    // A bad SMTP setting is a start-up error, not a failure of every alert email.
    let mailer = config
        .monitor
        .smtp
        .as_ref()
        .map(|c| aim_alerts::email::Mailer::new(c).map(Arc::new))
        .transpose()
        .map_err(|e| Error::Config(format!("smtp: {e}")))?;
    let state = AppState::new(state::AppStateParts {
        authz,
        mailer,
        config: Arc::new(config),
        writer,
        store,
        jwt: Arc::new(jwt),
        ring,
        hasher: password::Hasher::new()?,
        clock,
        org_keys: Arc::new(audit_log::OrgKeys::default()),
        chains: Arc::new(audit_log::ChainStates::default()),
        trust_cache: Arc::new(trust::TrustCache::default()),
        limits: Arc::new(ratelimit::RateLimits::new(&config_ops)),
        metrics,
    });
    bootstrap(&state).await?;
    Ok(state)
}

#[cfg(unix)]
fn restrict_dir(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
}

#[cfg(not(unix))]
fn restrict_dir(_dir: &std::path::Path) {}

/// Creates the first organization and admin, once per database. With no configured password, a
/// one-time password is generated and printed once to stderr (not to the log).
async fn bootstrap(state: &AppState) -> Result<(), Error> {
    let cfg = &state.config;
    let email = cfg.bootstrap_admin_email.clone();
    let (password, one_time) = match &cfg.bootstrap_admin_password {
        Some(p) => {
            password::check_policy(p.expose_secret(), &email).map_err(|e| {
                Error::Config(format!("AIM_BOOTSTRAP_ADMIN_PASSWORD: {}", e.message))
            })?;
            (zeroize::Zeroizing::new(p.expose_secret().to_owned()), false)
        }
        None => (secrets::new_one_time_password(), true),
    };
    let now = state.now_ms();
    let org = Organization {
        id: Uuid::now_v7(),
        name: cfg.bootstrap_org_name.clone(),
        require_2fa_admins: false,
        created_at: now,
        enforcement_mode: "strict".into(),
    };
    let admin = NewUser {
        id: Uuid::now_v7(),
        org_id: org.id,
        email: email.clone(),
        password_hash: state.hasher.hash(&password).await?,
        role: Role::Admin,
        must_change_password: one_time,
        created_by: None,
        created_at: now,
    };
    let audit = state.audit(
        Some(org.id),
        "server.bootstrapped",
        "system".into(),
        Some(format!("user:{}", admin.id)),
        serde_json::json!({ "oneTimePassword": one_time }),
        None,
    );
    if state.store.bootstrap(&org, &admin, &audit).await?.is_some() {
        tracing::info!(org = %org.id, admin = %email, "bootstrapped first organization and admin");
        if one_time {
            eprintln!(
                "\n  AIM server first start: organization {:?} and admin {email} created.\n  One-time password (shown once, must be changed at first login): {}\n",
                org.name,
                password.as_str()
            );
        }
    }
    Ok(())
}

/// Binds `config.listen` and serves in the background.
pub async fn start(mut config: Config, clock: Arc<dyn Clock>) -> Result<Server, Error> {
    let listen = config.listen;
    tls::check_plain_http_allowed(&config)?;
    let tls_config = tls::server_config(&config)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Error::Io(format!("cannot listen on {listen}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Io(e.to_string()))?;
    // Agent DIDs need the public URL; without one configured, the bound address is it.
    let scheme = if tls_config.is_some() {
        "https"
    } else {
        "http"
    };
    config
        .public_url
        .get_or_insert_with(|| format!("{scheme}://{addr}"));
    let state = build_state(config, clock).await?;
    let app = routes::router(state.clone()).layer(tower_http::trace::TraceLayer::new_for_http());
    let (tx, rx) = oneshot::channel::<()>();
    let tls = tls_config.is_some();
    let connections = state.writer.connections();
    // `tap_io` (doing nothing) gives the wrapped listeners axum's `ConnectInfo<SocketAddr>`.
    use axum::serve::ListenerExt as _;
    let task = match tls_config {
        None => tokio::spawn(async move {
            axum::serve(
                connections::Counted::new(listener, connections).tap_io(|_| {}),
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
            .map_err(|e| Error::Io(format!("server: {e}")))
        }),
        Some(cfg) => {
            let listener =
                connections::Counted::new(tls::TlsListener::new(listener, cfg), connections)
                    .tap_io(|_| {});
            tokio::spawn(async move {
                axum::serve(
                    listener,
                    app.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .map_err(|e| Error::Io(format!("server: {e}")))
            })
        }
    };
    let jwt = state.jwt.clone();
    let housekeeping = state.clone();
    let limits = state.limits.clone();
    let ring = state.ring.clone();
    let rotation = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            if let Err(e) = jwt.rotate_if_due().await {
                tracing::warn!(error = %e, "JWT key rotation check failed");
            }
            // Bounded memory: forget clients whose quota is full again.
            limits.retain_recent();
            // Pick up master-key versions added by `opena2a server rotate-key`.
            if let Err(e) = ring.reload() {
                tracing::warn!(error = %e, "master key file reload failed");
            }
            // Expired request nonces and old challenges (the timestamp window refuses them anyway):
            // nonces signed more than one window before now.
            let now = housekeeping.now_ms();
            let window_ms = i64::try_from(housekeeping.config.signed_request_window_secs)
                .unwrap_or(i64::MAX)
                .saturating_mul(1000);
            let signed_before = now.saturating_sub(window_ms).div_euclid(1000);
            if let Err(e) = housekeeping
                .store
                .prune_agent_nonces(now, signed_before)
                .await
            {
                tracing::warn!(error = %e, "pruning agent nonces failed");
            }
        }
    });
    let checkpointer = audit_log::spawn_checkpointer(state.clone());
    let decisions = authz::spawn_sync(state.clone());
    let monitor = monitor::spawn(state.clone());
    tracing::info!(%addr, scheme, store = state.store.backend(), "AIM server listening");
    Ok(Server {
        addr,
        state,
        shutdown: Some(tx),
        task,
        rotation,
        checkpointer,
        decisions,
        monitor,
        tls,
    })
}

/// `opena2a server rotate-key`: connects to the configured store and runs
/// [`key_rotation::rotate`].
pub async fn rotate_key(
    config: &Config,
    opts: key_rotation::RotateOptions,
) -> Result<key_rotation::RotateReport, Error> {
    let url = config.effective_database_url();
    if aim_store::backend_name(&url) == "sqlite" {
        let dir = config.home.join("aim-server");
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Io(format!("cannot create {}: {e}", dir.display())))?;
        restrict_dir(&dir);
    }
    let store = aim_store::connect_with(
        &url,
        config.database_max_connections,
        config.sqlite_durability,
    )
    .await?;
    let res = key_rotation::rotate(store.as_ref(), config, opts).await;
    store.close().await;
    res
}

/// Serves until `shutdown` completes.
pub async fn serve(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let server = start(config, Arc::new(SystemClock)).await?;
    tokio::select! {
        () = shutdown => {}
        () = until_finished(&server.task) => {}
    }
    // Either a signal arrived, or the serving task ended by itself (an error, reported here).
    server.shutdown().await
}

async fn until_finished<T>(task: &JoinHandle<T>) {
    while !task.is_finished() {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Serves until Ctrl-C or SIGTERM.
pub async fn run(config: Config) -> Result<(), Error> {
    serve(config, shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

/// Installs the global `tracing` subscriber (text or JSON on stderr). Call once, from the binary.
pub fn init_logging(config: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&config.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.log_format {
        config::LogFormat::Json => builder.json().try_init(),
        config::LogFormat::Text => builder.try_init(),
    };
}
