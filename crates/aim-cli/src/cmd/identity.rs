//! `opena2a identity` (in progress).

use crate::ctx::{Ctx, Outcome};

#[derive(Debug, clap::Subcommand)]
pub enum IdentityCmd {}

pub fn run(_ctx: &Ctx, cmd: IdentityCmd) -> anyhow::Result<Outcome> {
    match cmd {}
}
