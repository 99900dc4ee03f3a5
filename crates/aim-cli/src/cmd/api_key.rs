//! `opena2a api-key …`: create (secret shown once), list, show, revoke, rotate.

use aim_client::{ApiKey, ApiKeyWithSecret, NewApiKey, Role};
use serde_json::json;
use uuid::Uuid;

use crate::ctx::{Ctx, Outcome};
use crate::session::{self, RemoteArgs, explain};

#[derive(Debug, clap::Subcommand)]
pub enum ApiKeyCmd {
    /// Creates a key (managers and admins). The secret is printed once: store it now.
    Create {
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long)]
        name: String,
        /// viewer (default), member, manager or admin; never above your own role.
        #[arg(long)]
        role: Option<Role>,
        /// RFC 3339 expiry, e.g. 2027-01-01T00:00:00Z.
        #[arg(long, value_name = "TIME")]
        expires_at: Option<String>,
    },
    /// Lists keys (managers/admins: every key of the organization; others: their own).
    List {
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Shows one key with its usage.
    Show {
        #[command(flatten)]
        remote: RemoteArgs,
        id: Uuid,
    },
    /// Revokes a key (permanent).
    Revoke {
        #[command(flatten)]
        remote: RemoteArgs,
        id: Uuid,
    },
    /// Replaces a key's secret (printed once); the old secret stops working at once.
    Rotate {
        #[command(flatten)]
        remote: RemoteArgs,
        id: Uuid,
    },
}

fn status(k: &ApiKey) -> &'static str {
    if k.revoked_at.is_some() {
        "revoked"
    } else {
        "active"
    }
}

fn print_secret(ctx: &Ctx, k: &ApiKeyWithSecret, what: &str) {
    if ctx.json {
        ctx.print_json(&json!(k));
    } else {
        println!(
            "{what} API key {} ({}) role={} prefix={}",
            k.api_key.name, k.api_key.id, k.api_key.role, k.api_key.prefix
        );
        println!("Key (shown once, store it now): {}", k.key);
    }
}

fn print_key(ctx: &Ctx, k: &ApiKey) {
    if ctx.json {
        ctx.print_json(&json!(k));
    } else {
        println!("id:          {}", k.id);
        println!("name:        {}", k.name);
        println!("prefix:      {}", k.prefix);
        println!("role:        {}", k.role);
        println!("status:      {}", status(k));
        println!("owner:       {}", k.owner_id);
        println!("created:     {}", k.created_at);
        println!(
            "expires:     {}",
            k.expires_at.as_deref().unwrap_or("never")
        );
        println!(
            "last used:   {}",
            k.last_used_at.as_deref().unwrap_or("never")
        );
        println!("uses:        {}", k.use_count);
        println!(
            "last client: {}",
            k.last_client_addr.as_deref().unwrap_or("-")
        );
    }
}

pub fn run(ctx: &Ctx, cmd: ApiKeyCmd) -> anyhow::Result<Outcome> {
    let rt = session::runtime()?;
    match cmd {
        ApiKeyCmd::Create {
            remote,
            name,
            role,
            expires_at,
        } => {
            let (client, _) = session::connect(ctx, &remote)?;
            let new = NewApiKey {
                name,
                role,
                expires_at,
            };
            let k = rt.block_on(client.create_api_key(&new)).map_err(explain)?;
            print_secret(ctx, &k, "Created");
        }
        ApiKeyCmd::List { remote } => {
            let (client, _) = session::connect(ctx, &remote)?;
            let keys = rt.block_on(client.all_api_keys()).map_err(explain)?;
            if ctx.json {
                ctx.print_json(&json!(keys));
            } else {
                println!(
                    "{:<36}  {:<17}  {:<7}  {:<7}  NAME",
                    "ID", "PREFIX", "ROLE", "STATUS"
                );
                for k in keys {
                    println!(
                        "{:<36}  {:<17}  {:<7}  {:<7}  {}",
                        k.id,
                        k.prefix,
                        k.role,
                        status(&k),
                        k.name
                    );
                }
            }
        }
        ApiKeyCmd::Show { remote, id } => {
            let (client, _) = session::connect(ctx, &remote)?;
            let k = rt.block_on(client.get_api_key(id)).map_err(explain)?;
            print_key(ctx, &k);
        }
        ApiKeyCmd::Revoke { remote, id } => {
            let (client, _) = session::connect(ctx, &remote)?;
            rt.block_on(client.revoke_api_key(id)).map_err(explain)?;
            if ctx.json {
                ctx.print_json(&json!({ "revoked": true, "id": id }));
            } else {
                println!("Revoked API key {id}.");
            }
        }
        ApiKeyCmd::Rotate { remote, id } => {
            let (client, _) = session::connect(ctx, &remote)?;
            let k = rt.block_on(client.rotate_api_key(id)).map_err(explain)?;
            print_secret(ctx, &k, "Rotated");
        }
    }
    Ok(Outcome::Success)
}
