//! The one server configuration.
//!
//! Precedence: command-line flags > `AIM_*` environment variables > TOML file (`--config`) >
//! defaults. Every key is documented in `docs/server-config.md`; no secret has a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

use crate::error::Error;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The resolved server configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (`listen`, `AIM_LISTEN`, `--listen`). Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Data root (`home`, `OPENA2A_HOME`, `--home`). Default `~/.opena2a`.
    pub home: PathBuf,
    /// Database URL (`database_url`, `AIM_DATABASE_URL`, `--database-url`). Default: SQLite at
    /// `$OPENA2A_HOME/aim-server/aim.db`. A `postgres://` URL selects PostgreSQL.
    pub database_url: Option<String>,
    /// Database pool size. Default 10.
    pub database_max_connections: u32,
    /// When a SQLite commit is durable (`sqlite_durability`, `AIM_SQLITE_DURABILITY`): `full`
    /// (default; the WAL is synced at every commit, so an answered request survives a power
    /// loss) or `normal` (synced at checkpoints; commits survive a crash of the server process
    /// only). PostgreSQL ignores it.
    pub sqlite_durability: aim_store::sqlite::SqliteDurability,
    /// JWT `iss` claim. Default `aim-server`.
    pub jwt_issuer: String,
    /// JWT `aud` claim. Default `aim-api`.
    pub jwt_audience: String,
    /// Access token lifetime in seconds. Default 900 (15 minutes).
    pub access_token_ttl_secs: u64,
    /// Refresh token lifetime in seconds. Default 2 592 000 (30 days).
    pub refresh_token_ttl_secs: u64,
    /// A new JWT signing key is created when the newest one is older than this. Default 30 days.
    pub jwt_key_rotation_secs: u64,
    /// Email of the first admin, used once on first start. Default `admin@localhost`.
    pub bootstrap_admin_email: String,
    /// Password of the first admin (env `AIM_BOOTSTRAP_ADMIN_PASSWORD` only). When absent a
    /// one-time password is generated and printed once to stderr.
    pub bootstrap_admin_password: Option<SecretString>,
    /// Name of the first organization. Default `default`.
    pub bootstrap_org_name: String,
    /// Master key for encrypting secret columns (env `AIM_MASTER_KEY`, base64 of 32 bytes). When
    /// absent, the key file is used (created 0600 on first start).
    pub master_key: Option<SecretString>,
    /// Master key file. Default `$OPENA2A_HOME/aim-server/master.key`.
    pub master_key_file: PathBuf,
    /// Lockout: failures allowed in the window. Default 5.
    pub lockout_max_failures: u32,
    /// Lockout: counting window in seconds. Default 900.
    pub lockout_window_secs: u64,
    /// Lockout: lock duration in seconds. Default 1800.
    pub lockout_duration_secs: u64,
    /// TOTP issuer shown in authenticator apps. Default `AIM`.
    pub totp_issuer: String,
    /// Log format. Default `text`.
    pub log_format: LogFormat,
    /// `tracing` filter. Default `info`.
    pub log_level: String,
    /// A signed audit checkpoint is made once an organization's log has this many entries not
    /// covered by one (`audit_checkpoint_every`, `AIM_AUDIT_CHECKPOINT_EVERY`). Default 1000.
    pub audit_checkpoint_every: u64,
    /// ... or once the newest checkpoint is this old and entries were added since
    /// (`audit_checkpoint_interval_secs`, `AIM_AUDIT_CHECKPOINT_INTERVAL_SECS`). Default 60.
    pub audit_checkpoint_interval_secs: u64,
    /// Public base URL of this server (`public_url`, `AIM_PUBLIC_URL`), e.g.
    /// `https://aim.example.com`. Agent DIDs (`did:web`) are derived from its host and path.
    /// Default: `http://` + the bound listen address.
    pub public_url: Option<String>,
    /// After a key rotation the previous agent key stays valid this many seconds
    /// (`agent_key_grace_secs`, `AIM_AGENT_KEY_GRACE_SECS`). Default 604 800 (7 days).
    pub agent_key_grace_secs: u64,
    /// Signed agent requests are accepted when their timestamp is within this many seconds of the
    /// server clock, either way (`signed_request_window_secs`, `AIM_SIGNED_REQUEST_WINDOW_SECS`).
    /// Default 300.
    pub signed_request_window_secs: u64,
    /// Largest number of signed-request writes committed in one transaction by the group-commit
    /// writer (`decision_batch_max`, `AIM_DECISION_BATCH_MAX`). Default 256.
    pub decision_batch_max: u32,
    /// Microseconds at most the SQLite group-commit writer waits for more writes before
    /// committing a batch that is not full, only under concurrent load (at least 32 open client
    /// connections and a previous batch of more than one) and only while writes keep arriving;
    /// a lone request is never delayed, the PostgreSQL writer never waits
    /// (`decision_batch_linger_us`, `AIM_DECISION_BATCH_LINGER_US`), 0 (never wait) to 100 000.
    /// Default 1 000 (docs/agents.md "Lingering under load").
    pub decision_batch_linger_us: u64,
    /// Transport security, rate limits and metrics access (`docs/operations.md`).
    pub ops: OpsConfig,
    /// Action verification: approvals, trust thresholds, agent rate limit, caches (`docs/agents.md`).
    pub decisions: DecisionConfig,
    /// Validity of an ATX credential issued by `GET /api/v1/agents/{id}/credential`
    /// (`credential_ttl_secs`, `AIM_CREDENTIAL_TTL_SECS`), 60 to 31 536 000. Default 86 400 (24 h).
    pub credential_ttl_secs: u64,
    /// How long an agent's trust score is reused on the decision path before it is recomputed
    /// (`trust_cache_ttl_secs`, `AIM_TRUST_CACHE_TTL_SECS`), 0 (no reuse) to 3600. Default 30.
    pub trust_cache_ttl_secs: u64,
    /// Security monitoring and alert delivery (`docs/monitoring.md`).
    pub monitor: MonitorConfig,
}

/// Settings of the security monitor and the alert delivery worker.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// How often each replica analyses new audit entries and sends due alerts
    /// (`monitor_interval_ms`, `AIM_MONITOR_INTERVAL_MS`, at least 10). Default 1000.
    pub interval_ms: u64,
    /// Attempts per alert delivery before it is dead-lettered (`alert_max_attempts`,
    /// `AIM_ALERT_MAX_ATTEMPTS`, 1 to 20). Default 6.
    pub alert_max_attempts: u32,
    /// Backoff base and cap between attempts (`alert_retry_base_ms`, `alert_retry_max_ms`).
    /// Defaults 2000 and 300 000.
    pub alert_retry_base_ms: u64,
    pub alert_retry_max_ms: u64,
    /// Timeout of one webhook POST (`alert_webhook_timeout_secs`). Default 10.
    pub webhook_timeout_secs: u64,
    /// Accept `http://` webhook URLs (`alert_webhook_allow_http`, `AIM_ALERT_WEBHOOK_ALLOW_HTTP`).
    /// Default false: webhooks must be `https://`.
    pub webhook_allow_http: bool,
    /// Let webhooks reach loopback, private, link-local and other non-public addresses
    /// (`alert_webhook_allow_private`, `AIM_ALERT_WEBHOOK_ALLOW_PRIVATE`). Default false: a
    /// webhook URL may only lead to public unicast addresses (`aim_alerts::destination`).
    pub webhook_allow_private: bool,
    /// SMTP relay for email routes (`smtp_*`, `AIM_SMTP_*`); `None` when `smtp_host` is unset
    /// (email routes are then refused).
    pub smtp: Option<aim_alerts::email::SmtpConfig>,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            interval_ms: 1000,
            alert_max_attempts: 6,
            alert_retry_base_ms: 2000,
            alert_retry_max_ms: 300_000,
            webhook_timeout_secs: 10,
            webhook_allow_http: false,
            webhook_allow_private: false,
            smtp: None,
        }
    }
}

/// Settings of the action-verification path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionConfig {
    /// Verifications per agent and capability per minute (0 = unlimited).
    pub rate_limit_agent_action_per_minute: u32,
    /// How long a `pending` decision waits for a human before it expires.
    pub approval_timeout_secs: u64,
    /// How long an `approved` decision may be acted on (and its outcome reported).
    pub approval_validity_secs: u64,
    /// Minimum trust score (0–100) per risk level: low, medium, high, critical.
    pub trust_thresholds: [u32; 4],
    /// How often each replica applies the invalidation log to its caches.
    pub cache_sync_interval_ms: u64,
    /// Longest time an agent row stays cached without being re-read.
    pub agent_cache_ttl_secs: u64,
    /// Most agent rows cached per process.
    pub agent_cache_capacity: u32,
}

impl Default for DecisionConfig {
    fn default() -> Self {
        DecisionConfig {
            rate_limit_agent_action_per_minute: 600,
            approval_timeout_secs: 900,
            approval_validity_secs: 300,
            trust_thresholds: [0, 25, 50, 75],
            cache_sync_interval_ms: 500,
            agent_cache_ttl_secs: 60,
            agent_cache_capacity: 100_000,
        }
    }
}

/// Operations settings: TLS, rate limits, trusted proxies, metrics access.
#[derive(Debug, Clone)]
pub struct OpsConfig {
    /// PEM certificate chain (`tls_cert`, `AIM_TLS_CERT`, `--tls-cert`).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key (`tls_key`, `AIM_TLS_KEY`, `--tls-key`).
    pub tls_key: Option<PathBuf>,
    /// Generate (once) and use a self-signed certificate under the data root
    /// (`tls_self_signed`, `AIM_TLS_SELF_SIGNED`, `--tls-self-signed`). Default false.
    pub tls_self_signed: bool,
    /// Allow plain HTTP on a non-loopback address (`insecure_http`, `AIM_INSECURE_HTTP`,
    /// `--insecure-http`). Default false.
    pub insecure_http: bool,
    /// Requests per minute per client address; 0 disables. Default 600.
    pub rate_limit_address_per_minute: u32,
    /// Requests per minute per authenticated credential (user or API key); 0 disables.
    /// Default 1200.
    pub rate_limit_credential_per_minute: u32,
    /// Login attempts per minute per client address; 0 disables. Default 10.
    pub rate_limit_login_per_minute: u32,
    /// Direct peers whose `X-Forwarded-For`/`Forwarded` headers are believed. Default none.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Bearer token for `GET /metrics` (env `AIM_METRICS_TOKEN` only). Without it, only loopback
    /// peers may read the metrics.
    pub metrics_token: Option<SecretString>,
}

impl Default for OpsConfig {
    fn default() -> Self {
        OpsConfig {
            tls_cert: None,
            tls_key: None,
            tls_self_signed: false,
            insecure_http: false,
            rate_limit_address_per_minute: 600,
            rate_limit_credential_per_minute: 1200,
            rate_limit_login_per_minute: 10,
            trusted_proxies: Vec::new(),
            metrics_token: None,
        }
    }
}

/// The TOML file: every key optional, unknown keys rejected (typos must not silently fall back to
/// defaults).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub home: Option<PathBuf>,
    pub database_url: Option<String>,
    pub database_max_connections: Option<u32>,
    pub sqlite_durability: Option<String>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    pub access_token_ttl_secs: Option<u64>,
    pub refresh_token_ttl_secs: Option<u64>,
    pub jwt_key_rotation_secs: Option<u64>,
    pub bootstrap_admin_email: Option<String>,
    pub bootstrap_org_name: Option<String>,
    pub master_key_file: Option<PathBuf>,
    pub lockout_max_failures: Option<u32>,
    pub lockout_window_secs: Option<u64>,
    pub lockout_duration_secs: Option<u64>,
    pub totp_issuer: Option<String>,
    pub log_format: Option<LogFormat>,
    pub log_level: Option<String>,
    pub audit_checkpoint_every: Option<u64>,
    pub audit_checkpoint_interval_secs: Option<u64>,
    pub public_url: Option<String>,
    pub agent_key_grace_secs: Option<u64>,
    pub signed_request_window_secs: Option<u64>,
    pub decision_batch_max: Option<u32>,
    pub decision_batch_linger_us: Option<u64>,
    pub credential_ttl_secs: Option<u64>,
    pub trust_cache_ttl_secs: Option<u64>,
    pub monitor_interval_ms: Option<u64>,
    pub alert_max_attempts: Option<u32>,
    pub alert_retry_base_ms: Option<u64>,
    pub alert_retry_max_ms: Option<u64>,
    pub alert_webhook_timeout_secs: Option<u64>,
    pub alert_webhook_allow_http: Option<bool>,
    pub alert_webhook_allow_private: Option<bool>,
    pub smtp_host: Option<String>,
    pub smtp_port: Option<u16>,
    pub smtp_security: Option<String>,
    pub smtp_username: Option<String>,
    pub smtp_from: Option<String>,
    pub smtp_ca_cert: Option<PathBuf>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_self_signed: Option<bool>,
    pub insecure_http: Option<bool>,
    pub rate_limit_address_per_minute: Option<u32>,
    pub rate_limit_credential_per_minute: Option<u32>,
    pub rate_limit_login_per_minute: Option<u32>,
    pub trusted_proxies: Option<Vec<String>>,
    pub rate_limit_agent_action_per_minute: Option<u32>,
    pub approval_timeout_secs: Option<u64>,
    pub approval_validity_secs: Option<u64>,
    pub trust_threshold_low: Option<u32>,
    pub trust_threshold_medium: Option<u32>,
    pub trust_threshold_high: Option<u32>,
    pub trust_threshold_critical: Option<u32>,
    pub cache_sync_interval_ms: Option<u64>,
    pub agent_cache_ttl_secs: Option<u64>,
    pub agent_cache_capacity: Option<u32>,
}

/// Values given on the command line (highest precedence).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub listen: Option<String>,
    pub home: Option<PathBuf>,
    pub database_url: Option<String>,
    pub log_format: Option<LogFormat>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub tls_self_signed: bool,
    pub insecure_http: bool,
}

impl Config {
    /// Resolves the configuration from flags, the process environment and the optional file.
    pub fn load(flags: &Overrides) -> Result<Config, Error> {
        Self::load_with_env(flags, &|k| std::env::var(k).ok())
    }

    /// As [`Config::load`], with an explicit environment (tests).
    pub fn load_with_env(
        flags: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, Error> {
        let file = match &flags.config_file {
            Some(p) => read_file(p)?,
            None => FileConfig::default(),
        };
        let e = |k: &str| env(k).filter(|v| !v.is_empty());
        let home = flags
            .home
            .clone()
            .or_else(|| e("OPENA2A_HOME").map(PathBuf::from))
            .or(file.home)
            .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".opena2a")))
            .ok_or_else(|| {
                Error::Config("neither OPENA2A_HOME nor HOME is set; pass --home DIR".into())
            })?;
        let listen_s = flags
            .listen
            .clone()
            .or_else(|| e("AIM_LISTEN"))
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_s.parse().map_err(|_| {
            Error::Config(format!(
                "listen address {listen_s:?} is not ADDR:PORT (e.g. 127.0.0.1:8080)"
            ))
        })?;
        let num = |key: &str, file_v: Option<u64>, default: u64| -> Result<u64, Error> {
            match e(key) {
                Some(v) => v.parse::<u64>().map_err(|_| {
                    Error::Config(format!("{key}={v:?} is not a non-negative integer"))
                }),
                None => Ok(file_v.unwrap_or(default)),
            }
        };
        let small = |key: &str, file_v: Option<u32>, default: u32| -> Result<u32, Error> {
            let v = num(key, file_v.map(u64::from), u64::from(default))?;
            u32::try_from(v).map_err(|_| Error::Config(format!("{key} is too large")))
        };
        let log_format = match (flags.log_format, e("AIM_LOG_FORMAT")) {
            (Some(f), _) => f,
            (None, Some(v)) => match v.as_str() {
                "json" => LogFormat::Json,
                "text" => LogFormat::Text,
                other => {
                    return Err(Error::Config(format!(
                        "AIM_LOG_FORMAT={other:?}: use text or json"
                    )));
                }
            },
            (None, None) => file.log_format.unwrap_or_default(),
        };
        let bool_of = |key: &str, file_v: Option<bool>| -> Result<bool, Error> {
            match e(key).as_deref() {
                Some("1" | "true" | "yes") => Ok(true),
                Some("0" | "false" | "no") => Ok(false),
                Some(v) => Err(Error::Config(format!("{key}={v:?}: use true or false"))),
                None => Ok(file_v.unwrap_or(false)),
            }
        };
        let proxies = match e("AIM_TRUSTED_PROXIES") {
            Some(v) => v
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            None => file.trusted_proxies.clone().unwrap_or_default(),
        };
        let defaults = OpsConfig::default();
        let ops = OpsConfig {
            tls_cert: flags
                .tls_cert
                .clone()
                .or_else(|| e("AIM_TLS_CERT").map(PathBuf::from))
                .or(file.tls_cert.clone()),
            tls_key: flags
                .tls_key
                .clone()
                .or_else(|| e("AIM_TLS_KEY").map(PathBuf::from))
                .or(file.tls_key.clone()),
            tls_self_signed: flags.tls_self_signed
                || bool_of("AIM_TLS_SELF_SIGNED", file.tls_self_signed)?,
            insecure_http: flags.insecure_http || bool_of("AIM_INSECURE_HTTP", file.insecure_http)?,
            rate_limit_address_per_minute: small(
                "AIM_RATE_LIMIT_ADDRESS_PER_MINUTE",
                file.rate_limit_address_per_minute,
                defaults.rate_limit_address_per_minute,
            )?,
            rate_limit_credential_per_minute: small(
                "AIM_RATE_LIMIT_CREDENTIAL_PER_MINUTE",
                file.rate_limit_credential_per_minute,
                defaults.rate_limit_credential_per_minute,
            )?,
            rate_limit_login_per_minute: small(
                "AIM_RATE_LIMIT_LOGIN_PER_MINUTE",
                file.rate_limit_login_per_minute,
                defaults.rate_limit_login_per_minute,
            )?,
            trusted_proxies: crate::client_ip::parse_cidrs(&proxies)?,
            metrics_token: e("AIM_METRICS_TOKEN").map(SecretString::from),
        };
        let d = DecisionConfig::default();
        let threshold = |key: &str, file_v: Option<u32>, default: u32| -> Result<u32, Error> {
            let v = small(key, file_v, default)?;
            if v > 100 {
                return Err(Error::Config(format!("{key}={v}: a trust score is 0-100")));
            }
            Ok(v)
        };
        let decisions = DecisionConfig {
            rate_limit_agent_action_per_minute: small(
                "AIM_RATE_LIMIT_AGENT_ACTION_PER_MINUTE",
                file.rate_limit_agent_action_per_minute,
                d.rate_limit_agent_action_per_minute,
            )?,
            approval_timeout_secs: num(
                "AIM_APPROVAL_TIMEOUT_SECS",
                file.approval_timeout_secs,
                d.approval_timeout_secs,
            )?,
            approval_validity_secs: num(
                "AIM_APPROVAL_VALIDITY_SECS",
                file.approval_validity_secs,
                d.approval_validity_secs,
            )?,
            trust_thresholds: [
                threshold(
                    "AIM_TRUST_THRESHOLD_LOW",
                    file.trust_threshold_low,
                    d.trust_thresholds[0],
                )?,
                threshold(
                    "AIM_TRUST_THRESHOLD_MEDIUM",
                    file.trust_threshold_medium,
                    d.trust_thresholds[1],
                )?,
                threshold(
                    "AIM_TRUST_THRESHOLD_HIGH",
                    file.trust_threshold_high,
                    d.trust_thresholds[2],
                )?,
                threshold(
                    "AIM_TRUST_THRESHOLD_CRITICAL",
                    file.trust_threshold_critical,
                    d.trust_thresholds[3],
                )?,
            ],
            cache_sync_interval_ms: num(
                "AIM_CACHE_SYNC_INTERVAL_MS",
                file.cache_sync_interval_ms,
                d.cache_sync_interval_ms,
            )?
            .max(10),
            agent_cache_ttl_secs: num(
                "AIM_AGENT_CACHE_TTL_SECS",
                file.agent_cache_ttl_secs,
                d.agent_cache_ttl_secs,
            )?,
            agent_cache_capacity: small(
                "AIM_AGENT_CACHE_CAPACITY",
                file.agent_cache_capacity,
                d.agent_cache_capacity,
            )?,
        };
        let md = MonitorConfig::default();
        let smtp = match e("AIM_SMTP_HOST").or(file.smtp_host.clone()) {
            None => None,
            Some(host) => {
                let security = match e("AIM_SMTP_SECURITY")
                    .or(file.smtp_security.clone())
                    .as_deref()
                {
                    None | Some("starttls") => aim_alerts::email::SmtpSecurity::StartTls,
                    Some("tls") => aim_alerts::email::SmtpSecurity::Tls,
                    Some("none") => aim_alerts::email::SmtpSecurity::None,
                    Some(other) => {
                        return Err(Error::Config(format!(
                            "smtp_security {other:?}: use starttls, tls or none"
                        )));
                    }
                };
                let port = num("AIM_SMTP_PORT", file.smtp_port.map(u64::from), 587)?;
                let ca_cert_pem = match e("AIM_SMTP_CA_CERT")
                    .map(PathBuf::from)
                    .or(file.smtp_ca_cert.clone())
                {
                    Some(p) => Some(std::fs::read_to_string(&p).map_err(|err| {
                        Error::Config(format!("smtp_ca_cert {}: {err}", p.display()))
                    })?),
                    None => None,
                };
                Some(aim_alerts::email::SmtpConfig {
                    host,
                    port: u16::try_from(port)
                        .map_err(|_| Error::Config(format!("smtp_port {port} is not a port")))?,
                    security,
                    username: e("AIM_SMTP_USERNAME").or(file.smtp_username.clone()),
                    password: e("AIM_SMTP_PASSWORD"),
                    from: e("AIM_SMTP_FROM")
                        .or(file.smtp_from.clone())
                        .unwrap_or_else(|| "AIM <aim@localhost>".into()),
                    ca_cert_pem,
                    timeout_secs: 15,
                })
            }
        };
        let monitor = MonitorConfig {
            interval_ms: num(
                "AIM_MONITOR_INTERVAL_MS",
                file.monitor_interval_ms,
                md.interval_ms,
            )?
            .max(10),
            alert_max_attempts: small(
                "AIM_ALERT_MAX_ATTEMPTS",
                file.alert_max_attempts,
                md.alert_max_attempts,
            )?,
            alert_retry_base_ms: num(
                "AIM_ALERT_RETRY_BASE_MS",
                file.alert_retry_base_ms,
                md.alert_retry_base_ms,
            )?,
            alert_retry_max_ms: num(
                "AIM_ALERT_RETRY_MAX_MS",
                file.alert_retry_max_ms,
                md.alert_retry_max_ms,
            )?,
            webhook_timeout_secs: num(
                "AIM_ALERT_WEBHOOK_TIMEOUT_SECS",
                file.alert_webhook_timeout_secs,
                md.webhook_timeout_secs,
            )?
            .max(1),
            webhook_allow_http: bool_of(
                "AIM_ALERT_WEBHOOK_ALLOW_HTTP",
                file.alert_webhook_allow_http,
            )?,
            webhook_allow_private: bool_of(
                "AIM_ALERT_WEBHOOK_ALLOW_PRIVATE",
                file.alert_webhook_allow_private,
            )?,
            smtp,
        };
        if !(1..=20).contains(&monitor.alert_max_attempts) {
            return Err(Error::Config(
                "alert_max_attempts must be between 1 and 20".into(),
            ));
        }
        let cfg = Config {
            ops,
            decisions,
            listen,
            database_url: flags
                .database_url
                .clone()
                .or_else(|| e("AIM_DATABASE_URL"))
                .or(file.database_url),
            database_max_connections: small(
                "AIM_DATABASE_MAX_CONNECTIONS",
                file.database_max_connections,
                10,
            )?,
            sqlite_durability: match e("AIM_SQLITE_DURABILITY").or(file.sqlite_durability) {
                None => aim_store::sqlite::SqliteDurability::default(),
                Some(v) => v.parse().map_err(|_| {
                    Error::Config(format!(
                        "sqlite_durability must be \"full\" or \"normal\", not {v:?}"
                    ))
                })?,
            },
            jwt_issuer: e("AIM_JWT_ISSUER")
                .or(file.jwt_issuer)
                .unwrap_or_else(|| "aim-server".into()),
            jwt_audience: e("AIM_JWT_AUDIENCE")
                .or(file.jwt_audience)
                .unwrap_or_else(|| "aim-api".into()),
            access_token_ttl_secs: num(
                "AIM_ACCESS_TOKEN_TTL_SECS",
                file.access_token_ttl_secs,
                900,
            )?,
            refresh_token_ttl_secs: num(
                "AIM_REFRESH_TOKEN_TTL_SECS",
                file.refresh_token_ttl_secs,
                30 * 86_400,
            )?,
            jwt_key_rotation_secs: num(
                "AIM_JWT_KEY_ROTATION_SECS",
                file.jwt_key_rotation_secs,
                30 * 86_400,
            )?,
            bootstrap_admin_email: e("AIM_BOOTSTRAP_ADMIN_EMAIL")
                .or(file.bootstrap_admin_email)
                .unwrap_or_else(|| "admin@localhost".into())
                .trim()
                .to_lowercase(),
            bootstrap_admin_password: e("AIM_BOOTSTRAP_ADMIN_PASSWORD").map(SecretString::from),
            bootstrap_org_name: e("AIM_BOOTSTRAP_ORG_NAME")
                .or(file.bootstrap_org_name)
                .unwrap_or_else(|| "default".into()),
            master_key: e("AIM_MASTER_KEY").map(SecretString::from),
            master_key_file: e("AIM_MASTER_KEY_FILE")
                .map(PathBuf::from)
                .or(file.master_key_file)
                .unwrap_or_else(|| home.join("aim-server").join("master.key")),
            lockout_max_failures: small("AIM_LOCKOUT_MAX_FAILURES", file.lockout_max_failures, 5)?,
            lockout_window_secs: num("AIM_LOCKOUT_WINDOW_SECS", file.lockout_window_secs, 900)?,
            lockout_duration_secs: num(
                "AIM_LOCKOUT_DURATION_SECS",
                file.lockout_duration_secs,
                1800,
            )?,
            totp_issuer: e("AIM_TOTP_ISSUER")
                .or(file.totp_issuer)
                .unwrap_or_else(|| "AIM".into()),
            log_format,
            log_level: e("AIM_LOG_LEVEL")
                .or(file.log_level)
                .unwrap_or_else(|| "info".into()),
            audit_checkpoint_every: num(
                "AIM_AUDIT_CHECKPOINT_EVERY",
                file.audit_checkpoint_every,
                1000,
            )?,
            audit_checkpoint_interval_secs: num(
                "AIM_AUDIT_CHECKPOINT_INTERVAL_SECS",
                file.audit_checkpoint_interval_secs,
                60,
            )?,
            public_url: e("AIM_PUBLIC_URL")
                .or(file.public_url)
                .map(|u| u.trim_end_matches('/').to_string()),
            agent_key_grace_secs: num(
                "AIM_AGENT_KEY_GRACE_SECS",
                file.agent_key_grace_secs,
                7 * 86_400,
            )?,
            signed_request_window_secs: num(
                "AIM_SIGNED_REQUEST_WINDOW_SECS",
                file.signed_request_window_secs,
                300,
            )?,
            decision_batch_max: small("AIM_DECISION_BATCH_MAX", file.decision_batch_max, 256)?,
            decision_batch_linger_us: num(
                "AIM_DECISION_BATCH_LINGER_US",
                file.decision_batch_linger_us,
                1_000,
            )?,
            credential_ttl_secs: num("AIM_CREDENTIAL_TTL_SECS", file.credential_ttl_secs, 86_400)?,
            trust_cache_ttl_secs: num("AIM_TRUST_CACHE_TTL_SECS", file.trust_cache_ttl_secs, 30)?,
            monitor,
            home,
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// A configuration with defaults for tests and embedding: listens on an ephemeral loopback
    /// port, SQLite under `home`.
    pub fn for_home(home: &Path) -> Result<Config, Error> {
        let flags = Overrides {
            home: Some(home.to_path_buf()),
            listen: Some("127.0.0.1:0".into()),
            ..Default::default()
        };
        Self::load_with_env(&flags, &|_| None)
    }

    /// The database URL actually used (default SQLite file under the data root).
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.clone(),
            None => format!(
                "sqlite://{}",
                self.home.join("aim-server").join("aim.db").display()
            ),
        }
    }

    fn validate(&self) -> Result<(), Error> {
        if self.access_token_ttl_secs == 0 || self.access_token_ttl_secs > 86_400 {
            return Err(Error::Config(
                "access_token_ttl_secs must be between 1 and 86400".into(),
            ));
        }
        if self.refresh_token_ttl_secs < self.access_token_ttl_secs {
            return Err(Error::Config(
                "refresh_token_ttl_secs must not be shorter than access_token_ttl_secs".into(),
            ));
        }
        if self.jwt_key_rotation_secs < self.access_token_ttl_secs {
            return Err(Error::Config(
                "jwt_key_rotation_secs must not be shorter than access_token_ttl_secs".into(),
            ));
        }
        if self.lockout_max_failures == 0 {
            return Err(Error::Config(
                "lockout_max_failures must be at least 1".into(),
            ));
        }
        if self.signed_request_window_secs == 0 || self.signed_request_window_secs > 3600 {
            return Err(Error::Config(
                "signed_request_window_secs must be between 1 and 3600".into(),
            ));
        }
        if !(60..=31_536_000).contains(&self.credential_ttl_secs) {
            return Err(Error::Config(
                "credential_ttl_secs must be between 60 and 31536000".into(),
            ));
        }
        if self.trust_cache_ttl_secs > 3600 {
            return Err(Error::Config(
                "trust_cache_ttl_secs must be between 0 and 3600".into(),
            ));
        }
        if self.decision_batch_linger_us > 100_000 {
            return Err(Error::Config(
                "decision_batch_linger_us must be between 0 and 100000".into(),
            ));
        }
        if self.decision_batch_max == 0 {
            return Err(Error::Config(
                "decision_batch_max must be at least 1".into(),
            ));
        }
        if let Some(u) = &self.public_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            return Err(Error::Config(
                "public_url must start with http:// or https://".into(),
            ));
        }
        if self.ops.tls_cert.is_some() != self.ops.tls_key.is_some() {
            return Err(Error::Config(
                "tls_cert and tls_key must be given together".into(),
            ));
        }
        if self.ops.tls_self_signed && self.ops.tls_cert.is_some() {
            return Err(Error::Config(
                "give either tls_cert/tls_key or tls_self_signed, not both".into(),
            ));
        }
        if let Some(url) = &self.database_url {
            let ok = url.starts_with("postgres://")
                || url.starts_with("postgresql://")
                || url.starts_with("sqlite:");
            if !ok {
                return Err(Error::Config(
                    "database_url must start with postgres://, postgresql:// or sqlite:".into(),
                ));
            }
        }
        if self.audit_checkpoint_every == 0 || self.audit_checkpoint_interval_secs == 0 {
            return Err(Error::Config(
                "audit_checkpoint_every and audit_checkpoint_interval_secs must be at least 1"
                    .into(),
            ));
        }
        Ok(())
    }
}

fn read_file(p: &Path) -> Result<FileConfig, Error> {
    let text = std::fs::read_to_string(p)
        .map_err(|e| Error::Config(format!("cannot read {}: {e}", p.display())))?;
    toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", p.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| (*v).to_string())
        }
    }

    #[test]
    fn defaults() {
        let c = Config::load_with_env(&Overrides::default(), &env_of(&[("HOME", "/h")])).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.home, PathBuf::from("/h/.opena2a"));
        assert_eq!(
            c.effective_database_url(),
            "sqlite:///h/.opena2a/aim-server/aim.db"
        );
        assert_eq!(c.access_token_ttl_secs, 900);
        assert_eq!(c.lockout_max_failures, 5);
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("aim.toml");
        std::fs::write(
            &f,
            "listen = \"127.0.0.1:1\"\naccess_token_ttl_secs = 60\njwt_issuer = \"file\"\n",
        )
        .unwrap();
        let env = env_of(&[
            ("HOME", "/h"),
            ("AIM_LISTEN", "127.0.0.1:2"),
            ("AIM_JWT_ISSUER", "env"),
        ]);
        let c = Config::load_with_env(
            &Overrides {
                config_file: Some(f.clone()),
                ..Default::default()
            },
            &env,
        )
        .unwrap();
        assert_eq!(c.listen.port(), 2, "env beats file");
        assert_eq!(c.jwt_issuer, "env");
        assert_eq!(c.access_token_ttl_secs, 60, "file beats default");
        let flags = Overrides {
            config_file: Some(f),
            listen: Some("127.0.0.1:3".into()),
            ..Default::default()
        };
        let c = Config::load_with_env(&flags, &env).unwrap();
        assert_eq!(c.listen.port(), 3, "flag beats env");
    }

    #[test]
    fn bad_values_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("aim.toml");
        std::fs::write(&f, "lisen = \"x\"\n").unwrap();
        let err = Config::load_with_env(
            &Overrides {
                config_file: Some(f),
                ..Default::default()
            },
            &env_of(&[("HOME", "/h")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("lisen"), "{err}");
        let err = Config::load_with_env(
            &Overrides::default(),
            &env_of(&[("HOME", "/h"), ("AIM_LISTEN", "nope")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("ADDR:PORT"), "{err}");
        let err = Config::load_with_env(
            &Overrides::default(),
            &env_of(&[("HOME", "/h"), ("AIM_DATABASE_URL", "mysql://x")]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("postgres://"), "{err}");
        let err = Config::load_with_env(
            &Overrides::default(),
            &env_of(&[("HOME", "/h"), ("AIM_ACCESS_TOKEN_TTL_SECS", "-1")]),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("AIM_ACCESS_TOKEN_TTL_SECS"),
            "{err}"
        );
    }

    #[test]
    fn sqlite_durability_defaults_to_full_and_rejects_other_values() {
        use aim_store::sqlite::SqliteDurability;
        fn load(v: Option<&'static str>) -> Result<Config, Error> {
            let env = move |k: &str| match k {
                "HOME" => Some("/h".to_string()),
                "AIM_SQLITE_DURABILITY" => v.map(str::to_string),
                _ => None,
            };
            Config::load_with_env(&Overrides::default(), &env)
        }
        assert_eq!(
            load(None).unwrap().sqlite_durability,
            SqliteDurability::Full
        );
        assert_eq!(
            load(Some("normal")).unwrap().sqlite_durability,
            SqliteDurability::Normal
        );
        assert_eq!(
            load(Some("FULL")).unwrap().sqlite_durability,
            SqliteDurability::Full
        );
        let err = load(Some("off")).unwrap_err();
        assert!(err.to_string().contains("sqlite_durability"), "{err}");
        // The file key too.
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("aim.toml");
        std::fs::write(&f, "sqlite_durability = \"normal\"\n").unwrap();
        let c = Config::load_with_env(
            &Overrides {
                config_file: Some(f),
                ..Default::default()
            },
            &env_of(&[("HOME", "/h")]),
        )
        .unwrap();
        assert_eq!(c.sqlite_durability, SqliteDurability::Normal);
    }

    #[test]
    fn secrets_are_not_in_debug_output() {
        let env = env_of(&[
            ("HOME", "/h"),
            ("AIM_BOOTSTRAP_ADMIN_PASSWORD", "hunter2-hunter2"),
            ("AIM_MASTER_KEY", "c2VjcmV0"),
        ]);
        let c = Config::load_with_env(&Overrides::default(), &env).unwrap();
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("hunter2") && !dbg.contains("c2VjcmV0"),
            "{dbg}"
        );
    }

    #[test]
    fn ops_keys_from_env_file_and_flags() {
        let c = Config::load_with_env(&Overrides::default(), &env_of(&[("HOME", "/h")])).unwrap();
        assert_eq!(c.ops.rate_limit_address_per_minute, 600);
        assert_eq!(c.ops.rate_limit_login_per_minute, 10);
        assert_eq!(c.ops.rate_limit_credential_per_minute, 1200);
        assert!(!c.ops.tls_self_signed && !c.ops.insecure_http && c.ops.trusted_proxies.is_empty());

        let c = Config::load_with_env(
            &Overrides::default(),
            &env_of(&[
                ("HOME", "/h"),
                ("AIM_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7"),
                ("AIM_TLS_SELF_SIGNED", "true"),
                ("AIM_RATE_LIMIT_LOGIN_PER_MINUTE", "0"),
                ("AIM_METRICS_TOKEN", "tok"),
            ]),
        )
        .unwrap();
        assert_eq!(c.ops.trusted_proxies.len(), 2);
        assert!(c.ops.tls_self_signed);
        assert_eq!(c.ops.rate_limit_login_per_minute, 0);
        assert!(c.ops.metrics_token.is_some());

        for bad in [
            &[("HOME", "/h"), ("AIM_TRUSTED_PROXIES", "10.0.0.0/33")][..],
            &[("HOME", "/h"), ("AIM_TLS_SELF_SIGNED", "maybe")][..],
            &[("HOME", "/h"), ("AIM_TLS_CERT", "/c.pem")][..],
            &[("HOME", "/h"), ("AIM_RATE_LIMIT_ADDRESS_PER_MINUTE", "-1")][..],
        ] {
            let pairs: Vec<(String, String)> = bad
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let env = move |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            assert!(
                Config::load_with_env(&Overrides::default(), &env).is_err(),
                "{bad:?}"
            );
        }

        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("aim.toml");
        std::fs::write(
            &f,
            "trusted_proxies = [\"127.0.0.1\"]\ninsecure_http = true\nrate_limit_credential_per_minute = 7\n",
        )
        .unwrap();
        let flags = Overrides {
            config_file: Some(f),
            tls_self_signed: true,
            ..Default::default()
        };
        let c = Config::load_with_env(&flags, &env_of(&[("HOME", "/h")])).unwrap();
        assert!(c.ops.insecure_http && c.ops.tls_self_signed);
        assert_eq!(c.ops.rate_limit_credential_per_minute, 7);
        assert_eq!(c.ops.trusted_proxies[0].to_string(), "127.0.0.1/32");
    }
}
