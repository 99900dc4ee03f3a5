//! `opena2a server`: runs the AIM server (owned by the aim-server work; placeholder until then).

use crate::ctx::{Ctx, Outcome};

#[derive(Debug, clap::Args)]
pub struct ServerArgs {}

pub fn run(_ctx: &Ctx, _args: ServerArgs) -> anyhow::Result<Outcome> {
    anyhow::bail!("the server is not part of this build yet")
}
