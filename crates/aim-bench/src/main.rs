//! `aim-bench`: load generator for a running AIM server.
//!
//! Each workload lives in its own module with its own clap subcommand (`auth`: login, refresh
//! and API-key throughput; `verify`: signed action verification against the raw Ed25519 rate).

mod auth;
mod stats;
mod store;
mod verify;

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
    /// Signed action verifications/s (approved/denied), latency, server CPU and memory, and the
    /// ratio to the raw single-core Ed25519 verification rate measured in the same run.
    Verify(verify::VerifyArgs),
    /// The decision writer alone: batches of decisions committed to a store from one task, as
    /// the server's group-commit writer does, and the raw verify rate of the same run.
    Store(store::StoreArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.cmd {
        Cmd::Auth(a) => rt.block_on(auth::run(a)),
        Cmd::Verify(a) => rt.block_on(verify::run(a)),
        Cmd::Store(a) => rt.block_on(store::run(a)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("aim-bench").chain(args.iter().copied()))
    }

    #[test]
    fn verify_arguments_parse_with_defaults() {
        let Cmd::Verify(a) = parse(&["verify", "--password", "pw"]).unwrap().cmd else {
            panic!("not verify");
        };
        assert_eq!((a.agents, a.concurrency, a.duration), (16, 8, 10));
        assert_eq!(a.deny_ratio, 0.0);
        assert_eq!(a.capability, "files:read");
        assert_eq!(a.pid, None);
        assert_eq!(a.endpoint, verify::Endpoint::Verify);
        let Cmd::Verify(a) = parse(&[
            "verify",
            "--server",
            "http://h:1",
            "--email",
            "e@x",
            "--password",
            "pw",
            "--agents",
            "3",
            "--concurrency",
            "4",
            "--duration",
            "5",
            "--deny-ratio",
            "0.2",
            "--pid",
            "42",
            "--endpoint",
            "heartbeat",
        ])
        .unwrap()
        .cmd
        else {
            panic!("not verify");
        };
        assert_eq!((a.agents, a.concurrency, a.duration), (3, 4, 5));
        assert_eq!((a.deny_ratio, a.pid), (0.2, Some(42)));
        assert_eq!(a.endpoint, verify::Endpoint::Heartbeat);
        assert_eq!((a.server.as_str(), a.email.as_str()), ("http://h:1", "e@x"));
    }

    #[test]
    fn verify_arguments_out_of_range_are_refused() {
        for bad in [
            &["verify", "--password", "p", "--agents", "0"][..],
            &["verify", "--password", "p", "--concurrency", "0"],
            &["verify", "--password", "p", "--duration", "0"],
            &["verify", "--password", "p", "--deny-ratio", "1.01"],
            &["verify", "--password", "p", "--deny-ratio", "-1"],
            &["verify", "--password", "p", "--raw-secs", "0"],
            &["verify", "--password", "p", "--endpoint", "login"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
