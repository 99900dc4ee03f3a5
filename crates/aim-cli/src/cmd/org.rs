//! `opena2a org …`: the caller's organization and its settings.

use serde_json::json;

use crate::ctx::{Ctx, Outcome};
use crate::session::{self, RemoteArgs, explain};

#[derive(Debug, clap::Subcommand)]
pub enum OrgCmd {
    /// Shows your organization.
    Show {
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Changes organization settings (admins).
    Set {
        #[command(flatten)]
        remote: RemoteArgs,
        /// Require TOTP for every admin (admins without it must enroll before anything else).
        #[arg(long, value_name = "BOOL")]
        require_2fa_for_admins: Option<bool>,
    },
}

pub fn run(ctx: &Ctx, cmd: OrgCmd) -> anyhow::Result<Outcome> {
    let rt = session::runtime()?;
    let org = match cmd {
        OrgCmd::Show { remote } => {
            let (client, _) = session::connect(ctx, &remote)?;
            rt.block_on(client.get_org()).map_err(explain)?
        }
        OrgCmd::Set {
            remote,
            require_2fa_for_admins,
        } => {
            let (client, _) = session::connect(ctx, &remote)?;
            rt.block_on(client.update_org(require_2fa_for_admins))
                .map_err(explain)?
        }
    };
    if ctx.json {
        ctx.print_json(&json!(org));
    } else {
        println!(
            "{} ({}) require2faForAdmins={} created {}",
            org.name, org.id, org.require2fa_for_admins, org.created_at
        );
    }
    Ok(Outcome::Success)
}
