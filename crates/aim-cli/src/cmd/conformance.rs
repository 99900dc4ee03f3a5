//! `opena2a conformance` (in progress).

use crate::ctx::{Ctx, Outcome};

#[derive(Debug, clap::Subcommand)]
pub enum ConformanceCmd {}

pub fn run(_ctx: &Ctx, cmd: ConformanceCmd) -> anyhow::Result<Outcome> {
    match cmd {}
}
