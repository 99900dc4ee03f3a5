//! `opena2a credential` (in progress).

use crate::ctx::{Ctx, Outcome};

#[derive(Debug, clap::Subcommand)]
pub enum CredentialCmd {}

pub fn run(_ctx: &Ctx, cmd: CredentialCmd) -> anyhow::Result<Outcome> {
    match cmd {}
}
