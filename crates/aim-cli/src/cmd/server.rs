//! `opena2a server`: runs the AIM server (a thin layer over `aim_server`).

use std::path::PathBuf;

use crate::ctx::{Ctx, Outcome};

#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// TOML configuration file (keys documented in docs/server-config.md).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [env: AIM_LISTEN] [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// Database URL: postgres://… for PostgreSQL [env: AIM_DATABASE_URL]
    /// [default: SQLite at $OPENA2A_HOME/aim-server/aim.db].
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// Log as JSON lines instead of text [env: AIM_LOG_FORMAT=json].
    #[arg(long)]
    pub log_json: bool,
}

pub fn run(ctx: &Ctx, args: ServerArgs) -> anyhow::Result<Outcome> {
    let flags = aim_server::config::Overrides {
        config_file: args.config,
        listen: args.listen,
        home: Some(ctx.home.clone()),
        database_url: args.database_url,
        log_format: args.log_json.then_some(aim_server::config::LogFormat::Json),
    };
    let config = aim_server::Config::load(&flags)?;
    aim_server::init_logging(&config);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("aim-server")
        .build()?;
    rt.block_on(aim_server::run(config))?;
    Ok(Outcome::Success)
}
