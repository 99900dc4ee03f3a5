//! `opena2a policy`: evaluate and validate local policy files offline, with the same engine
//! (`aim-policy`) the server uses for action verification.
//!
//! Exit codes of `policy check`: 0 allow (also a monitoring-mode override, which is printed as an
//! alert), 1 deny, 3 approval required, 2 error (unreadable or invalid policy, malformed agent or
//! context, bad capability). `policy validate`: 0 valid, 1 invalid (Cedar's or the YAML parser's
//! message is printed), 2 unreadable file or unknown extension.
//!
//! Neither command writes to the audit log: they decide nothing that is executed.

use std::path::{Path, PathBuf};

use aim_policy::{
    Agent, Capability, Effect, EnforcementMode, Engine, PolicyLanguage, Request, RequestContext,
    RiskLevel,
};
use anyhow::{Context, anyhow, bail};
use serde_json::json;

use crate::ctx::{self, Ctx, Outcome};

#[derive(Debug, clap::Subcommand)]
pub enum PolicyCmd {
    /// Decide one request against a local policy file (.cedar or .yaml/.yml).
    Check(CheckArgs),
    /// Check that a policy file parses and validates against the AIM schema.
    Validate {
        /// The policy file (.cedar, or governance .yaml/.yml).
        file: PathBuf,
    },
    /// Print the Cedar schema of AIM (entity and context types; actions are capabilities).
    Schema,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The policy file: Cedar (.cedar) or AIP governance YAML (.yaml/.yml).
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// The agent as JSON: {"id", "name"?, "type"?, "trustScore", "tags"?, "owner"?,
    /// "capabilities"?}. With "capabilities", grants are checked first (no grant → deny).
    #[arg(
        long,
        value_name = "JSON",
        conflicts_with = "agent_file",
        required_unless_present = "agent_file"
    )]
    agent: Option<String>,
    /// A file holding the agent JSON (`-` = stdin).
    #[arg(long, value_name = "FILE")]
    agent_file: Option<PathBuf>,
    /// The capability asked for, `[domain/]namespace:action`.
    #[arg(long, value_name = "CAP")]
    capability: String,
    /// The resource acted on.
    #[arg(long, value_name = "RESOURCE")]
    resource: String,
    /// Context JSON: {"time"?: RFC 3339 (default now), "riskLevel"?: low|medium|high|critical
    /// (default medium), "clientAddress"?: IP, "mcpServer"?}.
    #[arg(long, value_name = "JSON")]
    context: Option<String>,
    /// Enforcement mode: strict (default) or monitoring.
    #[arg(long, value_name = "MODE", default_value = "strict")]
    mode: String,
}

/// `--context` as given on the command line: everything optional.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ContextArg {
    time: Option<chrono::DateTime<chrono::Utc>>,
    risk_level: Option<RiskLevel>,
    client_address: Option<std::net::IpAddr>,
    mcp_server: Option<String>,
}

pub fn run(ctx: &Ctx, cmd: PolicyCmd) -> anyhow::Result<Outcome> {
    match cmd {
        PolicyCmd::Check(args) => check(ctx, args),
        PolicyCmd::Validate { file } => validate(ctx, &file),
        PolicyCmd::Schema => {
            print!("{}", aim_policy::schema::BASE_SCHEMA);
            Ok(Outcome::Success)
        }
    }
}

fn read_policy(path: &Path) -> anyhow::Result<(String, PolicyLanguage)> {
    let lang = PolicyLanguage::from_path(path).ok_or_else(|| {
        anyhow!(
            "{}: unknown policy format; name the file .cedar, .yaml or .yml",
            path.display()
        )
    })?;
    let text = aim_core::fsio::read_text(path, 4 * 1024 * 1024)
        .with_context(|| format!("cannot read policy file {}", path.display()))?;
    Ok((text, lang))
}

fn check(ctx: &Ctx, a: CheckArgs) -> anyhow::Result<Outcome> {
    let mode: EnforcementMode = a.mode.parse()?;
    let (text, lang) = read_policy(&a.policy)?;
    let engine = Engine::compile(&text, lang, mode)
        .with_context(|| format!("policy file {}", a.policy.display()))?;
    let agent: Agent = match (&a.agent, &a.agent_file) {
        (Some(j), None) => {
            serde_json::from_str(j).map_err(|e| anyhow!("--agent is not a valid agent: {e}"))?
        }
        (None, Some(f)) => ctx::read_json_file("agent", f)?,
        _ => bail!("give exactly one of --agent or --agent-file"),
    };
    let c: ContextArg = match &a.context {
        Some(j) => {
            serde_json::from_str(j).map_err(|e| anyhow!("--context is not a valid context: {e}"))?
        }
        None => ContextArg::default(),
    };
    let req = Request {
        agent,
        capability: Capability::parse(&a.capability)?,
        resource: a.resource,
        context: RequestContext {
            time: c.time.unwrap_or_else(ctx::now),
            risk_level: c.risk_level.unwrap_or(RiskLevel::Medium),
            client_address: c.client_address,
            mcp_server: c.mcp_server,
        },
    };
    let d = engine.evaluate(&req)?;
    if ctx.json {
        ctx.print_json(&serde_json::to_value(&d)?);
    } else {
        let word = match d.effect {
            Effect::Allow => "ALLOW",
            Effect::Deny => "DENY",
            Effect::RequireApproval => "REQUIRE_APPROVAL",
        };
        println!("{word} {} on {}", req.capability, req.resource);
        if d.alert {
            println!("ALERT: monitoring mode allowed a policy denial");
        }
        for r in &d.reasons {
            println!("  reason: {}", r.message);
        }
        if !d.matched_policies.is_empty() {
            println!("  matched: {}", d.matched_policies.join(", "));
        }
        for e in &d.errors {
            println!("  error: {e}");
        }
        if !d.approvers.is_empty() {
            println!("  approvers: {}", d.approvers.join(", "));
        }
        for o in &d.obligations {
            println!("  obligation: {}", serde_json::to_string(o)?);
        }
        println!("  policy version: {}", d.policy_version);
    }
    Ok(match d.effect {
        Effect::Allow => Outcome::Success,
        Effect::Deny => Outcome::Negative,
        Effect::RequireApproval => Outcome::ApprovalRequired,
    })
}

fn validate(ctx: &Ctx, file: &Path) -> anyhow::Result<Outcome> {
    let (text, lang) = read_policy(file)?;
    match aim_policy::validate(&text, lang) {
        Ok(b) => {
            if ctx.json {
                ctx.print_json(&json!({
                    "valid": true,
                    "format": b.format(),
                    "version": b.version(),
                    "policies": b.policy_names(),
                    "warnings": b.warnings(),
                    "cedar": b.cedar_text(),
                }));
            } else {
                println!(
                    "VALID {} ({} policies, {})",
                    file.display(),
                    b.policy_names().len(),
                    b.version()
                );
                for w in b.warnings() {
                    println!("  warning: {w}");
                }
            }
            Ok(Outcome::Success)
        }
        Err(e) => {
            if ctx.json {
                ctx.print_json(&json!({"valid": false, "error": e.to_string()}));
            } else {
                println!("INVALID {}: {e}", file.display());
            }
            Ok(Outcome::Negative)
        }
    }
}
