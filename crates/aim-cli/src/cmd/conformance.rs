//! `opena2a conformance`: run AIP / ATX / ATP fixture suites against aim-core.
//!
//! Exit codes: 0 when every fixture found matched its expected verdict, 1 when at least one
//! fixture did not match, 2 when a fixture could not be decided (malformed) or no fixture was
//! found.

use std::path::PathBuf;

use aim_core::standards::conformance::{self, FileResult};
use anyhow::bail;

use crate::ctx::{Ctx, Outcome};

#[derive(Debug, clap::Subcommand)]
pub enum ConformanceCmd {
    /// Run every fixture found under the given files or directories (recursively).
    Run {
        /// Fixture files or directories (e.g. `conformance/`).
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Also list files that were skipped as non-fixtures.
        #[arg(long)]
        verbose: bool,
    },
}

pub fn run(ctx: &Ctx, cmd: ConformanceCmd) -> anyhow::Result<Outcome> {
    match cmd {
        ConformanceCmd::Run { paths, verbose } => run_suites(ctx, &paths, verbose),
    }
}

fn run_suites(ctx: &Ctx, paths: &[PathBuf], verbose: bool) -> anyhow::Result<Outcome> {
    let report = conformance::run(paths)?;
    if ctx.json {
        ctx.print_json(&serde_json::to_value(&report)?);
    } else {
        for r in &report.results {
            match r {
                FileResult::Decided(o) => {
                    let mark = if o.matched { "PASS" } else { "FAIL" };
                    println!(
                        "{mark}  {:<3}  {:<62}  expected {:<28} observed {}",
                        o.suite,
                        o.name,
                        o.expected.to_string(),
                        o.observed
                    );
                    if !o.matched || verbose {
                        println!("        {}", o.reason);
                    }
                    for n in &o.notes {
                        println!("        {n}");
                    }
                }
                FileResult::Error { path, error } => println!("ERROR {path}: {error}"),
                FileResult::Skipped { path, why } => {
                    if verbose {
                        println!("skip  {path}: {why}");
                    }
                }
            }
        }
        println!();
        for (suite, c) in &report.suites {
            println!(
                "{suite}: {} fixtures, {} matched, {} mismatched",
                c.fixtures, c.matched, c.mismatched
            );
        }
        println!(
            "summary: {} passed, {} failed, {} errors ({} non-fixture files skipped)",
            report.total.matched, report.total.mismatched, report.errors, report.skipped
        );
    }
    if report.errors > 0 {
        let first = report.results.iter().find_map(|r| match r {
            FileResult::Error { path, error } => Some(format!("{path}: {error}")),
            _ => None,
        });
        bail!(
            "{} fixture(s) could not be decided (first: {})",
            report.errors,
            first.unwrap_or_default()
        );
    }
    if report.total.fixtures == 0 {
        bail!("no fixtures found under the given path(s)");
    }
    Ok(if report.all_matched() {
        Outcome::Success
    } else {
        Outcome::Negative
    })
}
