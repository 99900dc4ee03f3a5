//! `aim-bench`: load generator for a running AIM server.
//!
//! Each workload lives in its own module with its own clap subcommand (`auth` here); add new
//! ones (e.g. agent verification) as sibling modules and enum variants.

mod auth;
mod stats;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "aim-bench",
    version,
    about = "Load generator for the AIM server"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Logins/s, refreshes/s and API-key-authenticated requests/s, with p50/p99 latency.
    Auth(auth::AuthArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.cmd {
        Cmd::Auth(a) => rt.block_on(auth::run(a)),
    }
}
