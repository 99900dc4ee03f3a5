//! `opena2a peer …`: pin other agents' public keys (standalone peer trust).

use serde_json::json;

use crate::cmd::identity::read_public_key;
use crate::ctx::{self, Ctx, Outcome};

#[derive(Debug, clap::Subcommand)]
pub enum PeerCmd {
    /// Pin a peer's public key under a local name.
    Add {
        name: String,
        /// The peer's public key: base64 of the 32 raw bytes, or a file (PEM or base64).
        #[arg(long, value_name = "FILE|BASE64")]
        public_key: String,
        /// The peer's agent id, if it differs from the one derived from this key (after rotations).
        #[arg(long)]
        agent_id: Option<String>,
    },
    /// List pinned peers.
    List,
    /// Unpin a peer.
    Remove { name: String },
}

pub fn run(ctx: &Ctx, cmd: PeerCmd) -> anyhow::Result<Outcome> {
    let store = ctx.store();
    let peers = aim_core::peer::PeerStore::new(store.core_dir());
    match cmd {
        PeerCmd::Add {
            name,
            public_key,
            agent_id,
        } => {
            let key = read_public_key(&public_key)?;
            let p = {
                let _lock = store.lock()?;
                peers.add(&name, key, agent_id.as_deref(), ctx::now())?
            };
            ctx.record(
                "peer.pinned",
                None,
                Some(&p.agent_id),
                json!({"name": p.name, "publicKey": p.public_key, "did": p.did}),
            )?;
            if ctx.json {
                ctx.print_json(&serde_json::to_value(&p)?);
            } else {
                println!("Pinned {} = {} ({})", p.name, p.public_key, p.agent_id);
            }
        }
        PeerCmd::List => {
            let all = peers.list()?;
            if ctx.json {
                ctx.print_json(&serde_json::to_value(&all)?);
            } else if all.is_empty() {
                println!(
                    "No pinned peers. Pin one with: opena2a peer add NAME --public-key FILE|BASE64"
                );
            } else {
                println!("{:<24} {:<38} PUBLIC KEY", "NAME", "AGENT ID");
                for p in &all {
                    println!("{:<24} {:<38} {}", p.name, p.agent_id, p.public_key);
                }
            }
        }
        PeerCmd::Remove { name } => {
            let p = {
                let _lock = store.lock()?;
                peers.remove(&name)?
            };
            ctx.record(
                "peer.removed",
                None,
                Some(&p.agent_id),
                json!({"name": p.name, "publicKey": p.public_key}),
            )?;
            if ctx.json {
                ctx.print_json(&json!({"removed": p.name, "agentId": p.agent_id}));
            } else {
                println!("Removed peer {}", p.name);
            }
        }
    }
    Ok(Outcome::Success)
}
