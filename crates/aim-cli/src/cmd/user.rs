//! `opena2a user …`: the organization's users (admins; managers may list), and the caller's own
//! account (`me`, `change-password`).

use aim_client::{Client, NewUser, Role, UserUpdate};
use anyhow::bail;
use serde_json::json;
use uuid::Uuid;

use crate::cmd::login::{PASSWORD_ENV, new_password, secret_from_env_or_prompt, stdin_line};
use crate::ctx::{Ctx, Outcome};
use crate::session::{self, Auth, RemoteArgs, explain};

#[derive(Debug, clap::Subcommand)]
pub enum UserCmd {
    /// Lists the users of your organization.
    List {
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Creates a user. Without --password-stdin the server generates a one-time password
    /// (shown once) that must be changed at first login.
    Create {
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long)]
        email: String,
        /// viewer, member, manager or admin.
        #[arg(long)]
        role: Role,
        /// Read the new user's password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Changes a user's role.
    SetRole {
        #[command(flatten)]
        remote: RemoteArgs,
        /// User id or email.
        user: String,
        /// viewer, member, manager or admin.
        role: Role,
    },
    /// Deactivates a user (its sessions and API keys stop working).
    Deactivate {
        #[command(flatten)]
        remote: RemoteArgs,
        /// User id or email.
        user: String,
    },
    /// Reactivates a user.
    Activate {
        #[command(flatten)]
        remote: RemoteArgs,
        /// User id or email.
        user: String,
    },
    /// Deletes a user with its sessions, API keys and recovery codes.
    Delete {
        #[command(flatten)]
        remote: RemoteArgs,
        /// User id or email.
        user: String,
    },
    /// Shows the logged-in account.
    Me {
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Changes your password (current from $AIM_PASSWORD or a prompt, new from
    /// $AIM_NEW_PASSWORD or a prompt; --password-stdin reads current then new, one per line).
    ChangePassword {
        #[command(flatten)]
        remote: RemoteArgs,
        #[arg(long)]
        password_stdin: bool,
    },
}

async fn resolve(client: &Client, user: &str) -> anyhow::Result<Uuid> {
    if let Ok(id) = Uuid::parse_str(user) {
        return Ok(id);
    }
    let wanted = user.trim().to_lowercase();
    let all = client.all_users().await.map_err(explain)?;
    match all.into_iter().find(|u| u.email == wanted) {
        Some(u) => Ok(u.id),
        None => bail!("no user with email {user:?} in your organization"),
    }
}

fn print_user(ctx: &Ctx, u: &aim_client::User, what: &str) {
    if ctx.json {
        ctx.print_json(&json!(u));
    } else {
        println!(
            "{what} {} ({}) role={} active={}",
            u.email, u.id, u.role, u.active
        );
    }
}

pub fn run(ctx: &Ctx, cmd: UserCmd) -> anyhow::Result<Outcome> {
    let rt = session::runtime()?;
    match cmd {
        UserCmd::List { remote } => {
            let (client, _) = session::connect(ctx, &remote)?;
            let users = rt.block_on(client.all_users()).map_err(explain)?;
            if ctx.json {
                ctx.print_json(&json!(users));
            } else {
                println!(
                    "{:<36}  {:<32}  {:<7}  {:<6}  2FA",
                    "ID", "EMAIL", "ROLE", "ACTIVE"
                );
                for u in users {
                    println!(
                        "{:<36}  {:<32}  {:<7}  {:<6}  {}",
                        u.id,
                        u.email,
                        u.role,
                        if u.active { "yes" } else { "no" },
                        if u.totp_enabled { "on" } else { "off" }
                    );
                }
            }
        }
        UserCmd::Create {
            remote,
            email,
            role,
            password_stdin,
        } => {
            let password = if password_stdin {
                Some(stdin_line("password")?)
            } else {
                None
            };
            let (client, _) = session::connect(ctx, &remote)?;
            let new = NewUser {
                email,
                role,
                password: password.map(|p| secrecy::ExposeSecret::expose_secret(&p).to_string()),
            };
            let created = rt.block_on(client.create_user(&new)).map_err(explain)?;
            if ctx.json {
                ctx.print_json(&json!(created));
            } else {
                print_user(ctx, &created.user, "Created");
                if let Some(otp) = &created.one_time_password {
                    println!(
                        "One-time password (shown once; must be changed at first login): {otp}"
                    );
                }
            }
        }
        UserCmd::SetRole { remote, user, role } => {
            let (client, _) = session::connect(ctx, &remote)?;
            let u = rt.block_on(async {
                let id = resolve(&client, &user).await?;
                let upd = UserUpdate {
                    role: Some(role),
                    active: None,
                };
                client.update_user(id, &upd).await.map_err(explain)
            })?;
            print_user(ctx, &u, "Updated");
        }
        UserCmd::Deactivate { remote, user } => set_active(ctx, &rt, &remote, &user, false)?,
        UserCmd::Activate { remote, user } => set_active(ctx, &rt, &remote, &user, true)?,
        UserCmd::Delete { remote, user } => {
            let (client, _) = session::connect(ctx, &remote)?;
            let id = rt.block_on(async {
                let id = resolve(&client, &user).await?;
                client.delete_user(id).await.map_err(explain)?;
                anyhow::Ok(id)
            })?;
            if ctx.json {
                ctx.print_json(&json!({ "deleted": true, "id": id }));
            } else {
                println!("Deleted user {id}.");
            }
        }
        UserCmd::Me { remote } => {
            let (client, _) = session::connect(ctx, &remote)?;
            let me = rt.block_on(client.me()).map_err(explain)?;
            if ctx.json {
                ctx.print_json(&json!(me));
            } else {
                println!(
                    "{} ({}) role={} 2FA={}{}",
                    me.email,
                    me.id,
                    me.role,
                    if me.totp_enabled { "on" } else { "off" },
                    if me.password_change_required {
                        " — password change required: run `opena2a user change-password`"
                    } else {
                        ""
                    }
                );
            }
        }
        UserCmd::ChangePassword {
            remote,
            password_stdin,
        } => {
            let (client, auth) = session::connect(ctx, &remote)?;
            if matches!(auth, Auth::ApiKey) {
                bail!(
                    "change-password needs a login session, not an API key: unset AIM_API_KEY and run `opena2a login`"
                );
            }
            let (current, new) = if password_stdin {
                (stdin_line("current password")?, stdin_line("new password")?)
            } else {
                (
                    secret_from_env_or_prompt(PASSWORD_ENV, "Current password: ")?,
                    new_password()?,
                )
            };
            rt.block_on(client.change_password(&current, &new))
                .map_err(explain)?;
            if ctx.json {
                ctx.print_json(&json!({ "passwordChanged": true }));
            } else {
                println!("Password changed. Your other sessions were ended.");
            }
        }
    }
    Ok(Outcome::Success)
}

fn set_active(
    ctx: &Ctx,
    rt: &tokio::runtime::Runtime,
    remote: &RemoteArgs,
    user: &str,
    active: bool,
) -> anyhow::Result<()> {
    let (client, _) = session::connect(ctx, remote)?;
    let u = rt.block_on(async {
        let id = resolve(&client, user).await?;
        let upd = UserUpdate {
            role: None,
            active: Some(active),
        };
        client.update_user(id, &upd).await.map_err(explain)
    })?;
    print_user(ctx, &u, if active { "Activated" } else { "Deactivated" });
    Ok(())
}
