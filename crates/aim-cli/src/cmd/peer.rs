//! `opena2a peer` (in progress).

use crate::ctx::{Ctx, Outcome};

#[derive(Debug, clap::Subcommand)]
pub enum PeerCmd {}

pub fn run(_ctx: &Ctx, cmd: PeerCmd) -> anyhow::Result<Outcome> {
    match cmd {}
}
