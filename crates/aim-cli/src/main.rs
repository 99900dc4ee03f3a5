//! `opena2a`: the AIM command line. A thin clap layer; all logic lives in the libraries.
//!
//! Exit codes (a contract scripts rely on): 0 success, 1 negative verdict (invalid signature,
//! broken chain, rejected response), 2 usage or input error, 3 approval required (`policy check`). Errors go to stderr as one sentence.

mod cmd;
mod ctx;
mod session;

/// mimalloc instead of the system allocator: with glibc malloc, the server's Argon2id work areas
/// (19 MiB each, allocated on Tokio's blocking threads) were kept in per-thread arenas and the
/// resident set grew to ~500 MiB under a login load; mimalloc returns them (docs/BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Register local identities with an AIM server (proof of possession in one step).
    #[command(subcommand)]
    Agent(cmd::agent::AgentCmd),
    /// Log in to an AIM server; the session is saved for the admin commands.
    Login(cmd::login::LoginArgs),
    /// End the saved session (on the server and locally).
    Logout(cmd::login::LogoutArgs),
    /// Manage the organization's users, and your own password.
    #[command(subcommand)]
    User(cmd::user::UserCmd),
    /// Manage API keys on the server.
    #[command(subcommand)]
    ApiKey(cmd::api_key::ApiKeyCmd),
    /// Show and change your organization's settings on the server.
    #[command(subcommand)]
    Org(cmd::org::OrgCmd),
    /// Discover, probe, sign, pin and diff MCP servers (docs/MCP.md).
    #[command(subcommand)]
    Mcp(cmd::mcp::McpCmd),
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
        Command::Agent(c) => cmd::agent::run(&ctx, c),
        Command::Login(a) => cmd::login::login(&ctx, a),
        Command::Logout(a) => cmd::login::logout(&ctx, a),
        Command::User(c) => cmd::user::run(&ctx, c),
        Command::ApiKey(c) => cmd::api_key::run(&ctx, c),
        Command::Org(c) => cmd::org::run(&ctx, c),
        Command::Mcp(c) => cmd::mcp::run(&ctx, c),
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
