//! `opena2a server`: runs the AIM server (a thin layer over `aim_server`), and
//! `opena2a server rotate-key` rotates the master key.

use std::path::PathBuf;

use crate::ctx::{Ctx, Outcome};

#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    #[command(subcommand)]
    pub action: Option<ServerAction>,
    /// TOML configuration file (keys documented in docs/server-config.md).
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// Address to listen on [env: AIM_LISTEN] [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// Database URL: postgres://… for PostgreSQL [env: AIM_DATABASE_URL]
    /// [default: SQLite at $OPENA2A_HOME/aim-server/aim.db].
    #[arg(long, value_name = "URL", global = true)]
    pub database_url: Option<String>,
    /// Log as JSON lines instead of text [env: AIM_LOG_FORMAT=json].
    #[arg(long)]
    pub log_json: bool,
    /// TLS certificate chain, PEM [env: AIM_TLS_CERT]. Needs --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key, PEM [env: AIM_TLS_KEY]. Needs --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve TLS 1.3 with a self-signed certificate generated once under
    /// $OPENA2A_HOME/aim-server/tls/ (local use; clients pin it) [env: AIM_TLS_SELF_SIGNED].
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    pub tls_self_signed: bool,
    /// Allow plain HTTP on a non-loopback address (only behind a TLS-terminating proxy)
    /// [env: AIM_INSECURE_HTTP].
    #[arg(long)]
    pub insecure_http: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum ServerAction {
    /// Add a master-key version and re-encrypt every sealed column to it (safe while the server
    /// runs; running servers pick the new version up from the key file).
    RotateKey(RotateKeyArgs),
}

#[derive(Debug, clap::Args)]
pub struct RotateKeyArgs {
    /// Do not add a version: only re-encrypt values to the newest one (use after adding a
    /// version to AIM_MASTER_KEY, or to finish an interrupted pass).
    #[arg(long)]
    pub reseal_only: bool,
    /// Then remove older versions from the key file (refused while a value still uses one).
    #[arg(long)]
    pub retire_old: bool,
    /// Rows per batch.
    #[arg(long, default_value_t = 200)]
    pub batch: u32,
}

pub fn run(ctx: &Ctx, args: ServerArgs) -> anyhow::Result<Outcome> {
    let flags = aim_server::config::Overrides {
        config_file: args.config,
        listen: args.listen,
        home: Some(ctx.home.clone()),
        database_url: args.database_url,
        log_format: args.log_json.then_some(aim_server::config::LogFormat::Json),
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        tls_self_signed: args.tls_self_signed,
        insecure_http: args.insecure_http,
    };
    let config = aim_server::Config::load(&flags)?;
    aim_server::init_logging(&config);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("aim-server")
        .build()?;
    match args.action {
        None => {
            rt.block_on(aim_server::run(config))?;
        }
        Some(ServerAction::RotateKey(a)) => {
            let opts = aim_server::key_rotation::RotateOptions {
                reseal_only: a.reseal_only,
                retire_old: a.retire_old,
                batch: a.batch,
            };
            let r = rt.block_on(aim_server::rotate_key(&config, opts))?;
            if r.added {
                println!("added master key version v{}", r.version);
            }
            println!(
                "re-encrypted {} of {} sealed value(s) to v{}; {} changed by the server meanwhile; {} still on an older version",
                r.resealed, r.examined, r.version, r.changed_meanwhile, r.remaining_old
            );
            if !r.retired.is_empty() {
                let v: Vec<String> = r.retired.iter().map(|v| format!("v{v}")).collect();
                println!("retired {}", v.join(", "));
            }
        }
    }
    Ok(Outcome::Success)
}
