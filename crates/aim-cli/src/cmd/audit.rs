//! `opena2a audit …`: the tamper-evident local audit log (`$OPENA2A_HOME/aim-core/audit.jsonl`).

use std::io::IsTerminal as _;
use std::path::PathBuf;

use aim_core::audit::checkpoint::Checkpoint;
use serde_json::json;

use crate::ctx::{self, Ctx, Outcome};

#[derive(Debug, clap::Subcommand)]
pub enum AuditCmd {
    /// Show the latest entries.
    Show {
        /// How many entries (from the end).
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Verify the hash chain and Merkle tree; exit 0 intact, 1 broken (names the first bad entry).
    Verify {
        /// A checkpoint saved earlier: also proves the log was not truncated or rewritten since.
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
        /// Verify an AIM server's organization log instead of the local one: download every
        /// entry and recompute offline (credentials: --token, AIM_TOKEN or AIM_API_KEY).
        #[arg(long, value_name = "URL")]
        server: Option<String>,
        /// Access token for --server (default: AIM_TOKEN).
        #[arg(long, value_name = "TOKEN", requires = "server")]
        token: Option<String>,
    },
    /// Write a signed checkpoint (tree size, root hash, time) to keep elsewhere.
    Checkpoint {
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Fetch the AIM server organization log's signed checkpoint instead.
        #[arg(long, value_name = "URL")]
        server: Option<String>,
        /// Access token for --server (default: AIM_TOKEN).
        #[arg(long, value_name = "TOKEN", requires = "server")]
        token: Option<String>,
    },
    /// Print the RFC 9162 inclusion proof of entry SEQ.
    Prove { seq: u64 },
}

pub fn run(ctx: &Ctx, cmd: AuditCmd) -> anyhow::Result<Outcome> {
    use super::audit_server::{self, Remote};
    match cmd {
        AuditCmd::Verify {
            checkpoint,
            server: Some(server),
            token,
        } => return audit_server::verify(ctx, &Remote { server, token }, checkpoint),
        AuditCmd::Checkpoint {
            out,
            server: Some(server),
            token,
        } => return audit_server::checkpoint(ctx, &Remote { server, token }, out),
        _ => {}
    }
    let log = ctx.audit_file()?;
    match cmd {
        AuditCmd::Show { limit } => {
            let entries = log.tail(limit)?;
            if ctx.json {
                ctx.print_json(&serde_json::to_value(&entries)?);
            } else if entries.is_empty() {
                println!("The audit log is empty ({}).", ctx.audit_path().display());
            } else {
                println!(
                    "{:>6}  {:<24}  {:<20}  {:<38}  SUBJECT",
                    "SEQ", "TIME", "EVENT", "ACTOR"
                );
                for e in &entries {
                    println!(
                        "{:>6}  {:<24}  {:<20}  {:<38}  {}",
                        e.seq,
                        e.time,
                        e.event_type,
                        e.actor.as_deref().unwrap_or("-"),
                        e.subject.as_deref().unwrap_or("-")
                    );
                }
            }
            Ok(Outcome::Success)
        }
        AuditCmd::Verify { checkpoint, .. } => {
            let cp: Option<Checkpoint> = match &checkpoint {
                Some(p) => Some(ctx::read_json_file("audit checkpoint", p)?),
                None => None,
            };
            let bar = if !ctx.json && std::io::stderr().is_terminal() {
                let b = indicatif::ProgressBar::new(0);
                b.set_style(
                    indicatif::ProgressStyle::with_template(
                        "verifying {bar:40} {bytes}/{total_bytes} ({eta})",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                Some(b)
            } else {
                None
            };
            let mut progress = |done: u64, total: u64| {
                if let Some(b) = &bar {
                    b.set_length(total);
                    b.set_position(done);
                }
            };
            let report = log.verify(cp.as_ref(), &mut progress)?;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            if ctx.json {
                ctx.print_json(&serde_json::to_value(&report)?);
            } else if report.ok {
                println!(
                    "OK: {} entries, chain intact, Merkle root {}{}",
                    report.entries,
                    report.root_hash,
                    if cp.is_some() {
                        ", consistent with the checkpoint"
                    } else {
                        ""
                    }
                );
            } else if let Some(p) = &report.problem {
                let at = match (p.seq, p.line) {
                    (Some(s), Some(l)) => format!(" at entry {s} (line {l})"),
                    (Some(s), None) => format!(" at entry {s}"),
                    (None, Some(l)) => format!(" at line {l}"),
                    (None, None) => String::new(),
                };
                println!(
                    "BROKEN{at}: {}: {}",
                    serde_json::to_value(p.kind)?.as_str().unwrap_or("?"),
                    p.message
                );
            }
            Ok(if report.ok {
                Outcome::Success
            } else {
                Outcome::Negative
            })
        }
        AuditCmd::Checkpoint { out, .. } => {
            let node = ctx.store().node_key(&ctx.keyring(), &mut rand::rng())?;
            let key_id = node.public().agent_id();
            let cp = log.checkpoint(node.as_dalek(), &key_id, &aim_core::clock::SystemClock)?;
            let text = serde_json::to_string_pretty(&cp)? + "\n";
            ctx::write_output(out.as_deref(), &text, aim_core::fsio::PUBLIC_FILE_MODE)?;
            if let Some(p) = out
                && !ctx.json
            {
                eprintln!(
                    "Wrote checkpoint of {} entries to {}; keep a copy somewhere the log's writer cannot change.",
                    cp.tree_size,
                    p.display()
                );
            }
            Ok(Outcome::Success)
        }
        AuditCmd::Prove { seq } => {
            let proof = log.inclusion_proof(seq)?;
            ctx.print_json(&json!(proof));
            Ok(Outcome::Success)
        }
    }
}
