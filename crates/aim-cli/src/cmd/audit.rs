//! `opena2a audit` (in progress).

use crate::ctx::{Ctx, Outcome};

#[derive(Debug, clap::Subcommand)]
pub enum AuditCmd {}

pub fn run(_ctx: &Ctx, cmd: AuditCmd) -> anyhow::Result<Outcome> {
    match cmd {}
}
