//! `opena2a`: the AIM command line. A thin clap layer; all logic lives in the libraries.
//!
//! Exit codes (a contract scripts rely on): 0 success, 1 negative verdict (invalid signature,
//! broken chain, rejected response), 2 usage or input error, 3 approval required (`policy check`). Errors go to stderr as one sentence.

mod cmd;
mod ctx;

use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::ctx::{Ctx, Outcome};

/// AIM — Agent Identity Management: cryptographic identity, authorization and audit for AI agents.
#[derive(Debug, Parser)]
#[command(name = "opena2a", version, about, propagate_version = true)]
struct Cli {
    /// Data root (default: $OPENA2A_HOME, else ~/.opena2a).
    #[arg(long, global = true, value_name = "DIR")]
    home: Option<std::path::PathBuf>,

    /// Machine-readable JSON output (stable keys, see docs/CLI.md).
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create, inspect, sign with, rotate and revoke local agent identities.
    #[command(subcommand)]
    Identity(cmd::identity::IdentityCmd),
    /// Pin other agents' public keys (standalone peer trust).
    #[command(subcommand)]
    Peer(cmd::peer::PeerCmd),
    /// Inspect, verify, checkpoint and prove the tamper-evident local audit log.
    #[command(subcommand)]
    Audit(cmd::audit::AuditCmd),
    /// Run the AIM server (HTTP API + dashboard).
    Server(cmd::server::ServerArgs),
    /// Run AIP / ATX / ATP conformance fixtures against this implementation.
    #[command(subcommand)]
    Conformance(cmd::conformance::ConformanceCmd),
    /// Verify ATX agent credentials.
    #[command(subcommand)]
    Credential(cmd::credential::CredentialCmd),
    /// Evaluate and validate local policy files (Cedar or AIP governance YAML) offline.
    #[command(subcommand)]
    Policy(cmd::policy::PolicyCmd),
    /// Print shell completions.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ctx = match Ctx::new(cli.home, cli.json) {
        Ok(c) => c,
        Err(e) => return ctx::report_error(&e),
    };
    let result = match cli.command {
        Command::Identity(c) => cmd::identity::run(&ctx, c),
        Command::Peer(c) => cmd::peer::run(&ctx, c),
        Command::Audit(c) => cmd::audit::run(&ctx, c),
        Command::Server(a) => cmd::server::run(&ctx, a),
        Command::Conformance(c) => cmd::conformance::run(&ctx, c),
        Command::Credential(c) => cmd::credential::run(&ctx, c),
        Command::Policy(c) => cmd::policy::run(&ctx, c),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "opena2a",
                &mut std::io::stdout(),
            );
            Ok(Outcome::Success)
        }
    };
    match result {
        Ok(o) => o.exit_code(),
        Err(e) => ctx::report_error(&e),
    }
}
