//! `opena2a mcp …`: discover MCP servers in client configs, probe them, sign and verify their
//! manifests, pin them and detect drift. A thin layer over `aim_mcp` (see docs/MCP.md).
//!
//! Exit codes: `discover` 1 when a config could not be read; `scan` 1 when a server could not be
//! probed; `verify-manifest` 1 when the signature is rejected; `diff` 1 on drift; 2 for usage
//! and input errors.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use aim_mcp::discovery::{self, DiscoveryEnv, DiscoveryReport, ServerEntry};
use aim_mcp::manifest::Manifest;
use aim_mcp::probe::{ProbeOptions, ProbeResult};

use crate::ctx::{Ctx, Outcome};

/// Which client configs to read.
#[derive(Debug, Clone, Args)]
pub struct Sources {
    /// Project directory whose workspace configs (.vscode/, .cursor/, .mcp.json, .gemini/) are
    /// read too (default: the current directory).
    #[arg(long, value_name = "DIR")]
    workspace: Option<PathBuf>,
    /// Read only this config file (any client's format) instead of the known locations.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// Which server, when several clients define one with the same name.
#[derive(Debug, Clone, Args)]
pub struct Select {
    /// The server's name in the client config.
    name: String,
    /// Only servers of this client (claude-desktop, claude-code, cursor, windsurf, vscode,
    /// gemini-cli, file).
    #[arg(long)]
    client: Option<String>,
    /// Seconds the whole MCP session may take.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    #[command(flatten)]
    sources: Sources,
}

#[derive(Debug, Subcommand)]
pub enum McpCmd {
    /// List the MCP servers configured in Claude Desktop, Claude Code, Cursor, Windsurf, VS Code
    /// and Gemini CLI (env var names only, never values).
    Discover {
        #[command(flatten)]
        sources: Sources,
    },
    /// Connect to discovered servers over MCP and list their tools, resources and prompts
    /// (never calls a tool).
    Scan {
        /// Only these servers (default: every enabled server).
        names: Vec<String>,
        /// Seconds each server's MCP session may take.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        /// Only servers of this client.
        #[arg(long)]
        client: Option<String>,
        /// Also probe servers the config marks disabled.
        #[arg(long)]
        include_disabled: bool,
        #[command(flatten)]
        sources: Sources,
    },
    /// Print (or write) the canonical manifest of one server.
    Manifest {
        #[command(flatten)]
        select: Select,
        /// Write the manifest to FILE instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Sign a manifest with a local identity (Ed25519 over RFC 8785 bytes).
    SignManifest {
        /// The signing identity (id or name).
        #[arg(long, value_name = "ID|NAME")]
        identity: String,
        /// A manifest file (from `opena2a mcp manifest --out`).
        #[arg(
            long,
            value_name = "FILE",
            conflicts_with = "scan",
            required_unless_present = "scan"
        )]
        manifest: Option<PathBuf>,
        /// Scan this server now and sign what it offers.
        #[arg(long, value_name = "NAME")]
        scan: Option<String>,
        /// Only servers of this client (with --scan).
        #[arg(long)]
        client: Option<String>,
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        #[command(flatten)]
        sources: Sources,
        /// Write the signed manifest to FILE instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Verify a signed manifest; prints VALID (exit 0) or INVALID with reasons (exit 1).
    VerifyManifest {
        file: PathBuf,
        /// The key the signer must have: base64 of the raw key, or a PEM/base64 file.
        #[arg(long, value_name = "BASE64|PATH", conflicts_with = "identity")]
        public_key: Option<String>,
        /// The signer must be this local identity (id or name), with its current key.
        #[arg(long, value_name = "ID|NAME")]
        identity: Option<String>,
    },
    /// Scan a server and pin its manifest under $OPENA2A_HOME/aim-mcp/pins/ (audited); with
    /// --server also on that AIM server (registering the MCP server by name when new).
    Pin {
        #[command(flatten)]
        select: Select,
        /// AIM server base URL to pin on as well, e.g. http://127.0.0.1:8080.
        #[arg(long, value_name = "URL", requires = "api_key")]
        server: Option<String>,
        /// API key (or an access token) of a manager or admin, for --server.
        #[arg(long, env = "AIM_API_KEY", hide_env_values = true, value_name = "KEY")]
        api_key: Option<String>,
    },
    /// Scan a server and send the AIM server a signed attestation of what it offers, as the
    /// agent of a local identity (the answer says whether it matches the pin, with the drift).
    Attest {
        #[command(flatten)]
        select: Select,
        /// AIM server base URL.
        #[arg(long, value_name = "URL")]
        server: String,
        /// Local identity (id or name) registered as the agent.
        #[arg(long, value_name = "ID|NAME")]
        identity: String,
    },
    /// Scan a server and compare with its pin; exit 1 on drift (audited).
    Diff {
        #[command(flatten)]
        select: Select,
    },
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn discover_from(sources: &Sources) -> anyhow::Result<DiscoveryReport> {
    if let Some(f) = &sources.config {
        return Ok(discovery::discover_file(f));
    }
    let ws = match &sources.workspace {
        Some(w) => Some(w.clone()),
        None => std::env::current_dir().ok(),
    };
    Ok(discovery::discover(&DiscoveryEnv::from_process(ws)?))
}

fn client_matches(s: &ServerEntry, client: Option<&str>) -> bool {
    client.is_none_or(|c| s.client.as_str() == c)
}

fn select<'a>(
    report: &'a DiscoveryReport,
    name: &str,
    client: Option<&str>,
) -> anyhow::Result<&'a ServerEntry> {
    let found: Vec<&ServerEntry> = report
        .servers
        .iter()
        .filter(|s| s.name == name && client_matches(s, client))
        .collect();
    match found.as_slice() {
        [] => {
            let broken = report
                .errors
                .iter()
                .find(|e| e.server.as_deref() == Some(name));
            match broken {
                Some(e) => bail!(
                    "server {name} in {} cannot be used: {}",
                    e.config_path.display(),
                    e.error
                ),
                None => bail!(
                    "no MCP server named {name} in the client configs (see `opena2a mcp discover`)"
                ),
            }
        }
        [one] => Ok(one),
        [first, rest @ ..] => {
            let same = rest.iter().all(|s| {
                s.transport == first.transport
                    && s.launch.command == first.launch.command
                    && s.launch.args == first.launch.args
                    && s.launch.url == first.launch.url
            });
            if same {
                Ok(first)
            } else {
                let clients: Vec<&str> = found.iter().map(|s| s.client.as_str()).collect();
                bail!(
                    "{name} is defined differently by several clients ({}); choose one with --client",
                    clients.join(", ")
                )
            }
        }
    }
}

fn source_of(s: &ServerEntry) -> String {
    format!("{} {}", s.client.as_str(), s.config_path.display())
}

fn probe_one(s: &ServerEntry, timeout: u64) -> anyhow::Result<ProbeResult> {
    let opts = ProbeOptions {
        timeout: Duration::from_secs(timeout.max(1)),
        ..ProbeOptions::default()
    };
    runtime()?
        .block_on(aim_mcp::probe::probe(s.transport, &s.launch, &opts))
        .with_context(|| format!("probing {}", s.name))
}

fn scan_manifest(sel: &Select) -> anyhow::Result<(ServerEntry, Manifest)> {
    let report = discover_from(&sel.sources)?;
    let s = select(&report, &sel.name, sel.client.as_deref())?.clone();
    let m = probe_one(&s, sel.timeout)?.manifest()?;
    Ok((s, m))
}

fn caps(m: &Manifest) -> Vec<&'static str> {
    m.capabilities().into_iter().map(|c| c.as_str()).collect()
}

fn print_discovery(ctx: &Ctx, r: &DiscoveryReport) {
    if ctx.json {
        ctx.print_json(&serde_json::to_value(r).unwrap_or(Value::Null));
        return;
    }
    if r.servers.is_empty() {
        println!(
            "No MCP servers found ({} config files read).",
            r.configs_read.len()
        );
    }
    for s in &r.servers {
        let target = match (&s.command, &s.url) {
            (Some(c), _) => format!("{c} {}", s.args.join(" ")),
            (_, Some(u)) => u.clone(),
            _ => String::new(),
        };
        let kind = s
            .classification
            .as_ref()
            .map(|c| c.kind)
            .unwrap_or("unknown");
        let transport = serde_json::to_value(s.transport)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        println!(
            "{:<20} {:<14} {:<16} {:<10} {}{}",
            s.name,
            s.client.as_str(),
            transport,
            kind,
            target.trim_end(),
            if s.disabled { "  (disabled)" } else { "" }
        );
        if !s.env_names.is_empty() {
            println!("{:<20} env: {}", "", s.env_names.join(", "));
        }
        if !s.header_names.is_empty() {
            println!("{:<20} headers: {}", "", s.header_names.join(", "));
        }
        println!("{:<20} {} ({})", "", s.config_path.display(), s.scope);
    }
    for e in &r.errors {
        let what = e
            .server
            .as_deref()
            .map(|s| format!(" server {s}"))
            .unwrap_or_default();
        eprintln!(
            "error: {} {}{what}: {}",
            e.client.as_str(),
            e.config_path.display(),
            e.error
        );
    }
}

fn scan(
    ctx: &Ctx,
    names: &[String],
    timeout: u64,
    client: Option<&str>,
    include_disabled: bool,
    sources: &Sources,
) -> anyhow::Result<Outcome> {
    let report = discover_from(sources)?;
    let mut targets: Vec<ServerEntry> = Vec::new();
    if names.is_empty() {
        targets.extend(
            report
                .servers
                .iter()
                .filter(|s| client_matches(s, client) && (include_disabled || !s.disabled))
                .cloned(),
        );
    } else {
        for n in names {
            targets.push(select(&report, n, client)?.clone());
        }
    }
    let opts = ProbeOptions {
        timeout: Duration::from_secs(timeout.max(1)),
        ..ProbeOptions::default()
    };
    let bar = (!ctx.json && targets.len() > 1 && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(targets.len() as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}") {
            b.set_style(style);
        }
        b
    });
    let rt = runtime()?;
    let results: Vec<(ServerEntry, Result<ProbeResult, String>)> = rt.block_on(async {
        let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(4));
        let mut set = tokio::task::JoinSet::new();
        for (i, s) in targets.iter().cloned().enumerate() {
            let sem = sem.clone();
            let opts = opts.clone();
            set.spawn(async move {
                let _permit = sem.acquire_owned().await;
                let r = aim_mcp::probe::probe(s.transport, &s.launch, &opts)
                    .await
                    .map_err(|e| e.to_string());
                (i, s, r)
            });
        }
        let mut out = Vec::new();
        while let Some(joined) = set.join_next().await {
            if let Ok(item) = joined {
                if let Some(b) = &bar {
                    b.set_message(item.1.name.clone());
                    b.inc(1);
                }
                out.push(item);
            }
        }
        out.sort_by_key(|(i, _, _)| *i);
        out.into_iter().map(|(_, s, r)| (s, r)).collect()
    });
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let mut failed = false;
    let mut rows = Vec::new();
    for (s, r) in &results {
        let row = match r
            .as_ref()
            .map_err(String::clone)
            .and_then(|p| p.manifest().map(|m| (p, m)).map_err(|e| e.to_string()))
        {
            Ok((p, m)) => {
                let surface = m.surface_hash()?;
                let structural = m.structural_hash()?;
                if !ctx.json {
                    println!(
                        "{:<20} ok     {} {}  tools {}  resources {}  prompts {}  [{}]  {}",
                        s.name,
                        m.server.name,
                        m.server.version,
                        count(&m.tools),
                        count(&m.resources),
                        count(&m.prompts),
                        caps(&m).join(", "),
                        surface
                    );
                }
                json!({"name": s.name, "client": s.client, "configPath": s.config_path,
                       "status": "ok", "protocolVersion": p.protocol_version,
                       "manifestHash": surface, "structuralHash": structural,
                       "capabilities": caps(&m),
                       "toolCapabilities": m.tool_capabilities(), "manifest": m})
            }
            Err(e) => {
                failed = true;
                if !ctx.json {
                    println!("{:<20} FAILED {e}", s.name);
                }
                json!({"name": s.name, "client": s.client, "configPath": s.config_path,
                       "status": "error", "error": e})
            }
        };
        rows.push(row);
    }
    if ctx.json {
        ctx.print_json(&json!({"servers": rows, "configErrors": report.errors}));
    } else if results.is_empty() {
        println!("No MCP servers to scan (see `opena2a mcp discover`).");
    }
    Ok(if failed {
        Outcome::Negative
    } else {
        Outcome::Success
    })
}

fn count<T>(l: &Option<Vec<T>>) -> String {
    l.as_ref()
        .map(|v| v.len().to_string())
        .unwrap_or_else(|| "-".into())
}

fn write_or_print(out: Option<&Path>, text: &str) -> anyhow::Result<()> {
    crate::ctx::write_output(out, &format!("{text}\n"), aim_core::fsio::PUBLIC_FILE_MODE)
}

pub fn run(ctx: &Ctx, cmd: McpCmd) -> anyhow::Result<Outcome> {
    match cmd {
        McpCmd::Discover { sources } => {
            let r = discover_from(&sources)?;
            print_discovery(ctx, &r);
            Ok(if r.errors.is_empty() {
                Outcome::Success
            } else {
                Outcome::Negative
            })
        }
        McpCmd::Scan {
            names,
            timeout,
            client,
            include_disabled,
            sources,
        } => scan(
            ctx,
            &names,
            timeout,
            client.as_deref(),
            include_disabled,
            &sources,
        ),
        McpCmd::Manifest { select, out } => {
            let (_, m) = scan_manifest(&select)?;
            write_or_print(out.as_deref(), &serde_json::to_string_pretty(&m)?)?;
            Ok(Outcome::Success)
        }
        McpCmd::SignManifest {
            identity,
            manifest,
            scan,
            client,
            timeout,
            sources,
            out,
        } => {
            let store = ctx.store();
            let id = store.find(&identity)?;
            let m: Manifest = match (manifest, scan) {
                (Some(f), None) => {
                    let m: Manifest = crate::ctx::read_json_file("MCP manifest", &f)?;
                    m.check_format()?;
                    m
                }
                (None, Some(name)) => {
                    scan_manifest(&Select {
                        name,
                        client,
                        timeout,
                        sources,
                    })?
                    .1
                }
                _ => bail!("give exactly one of --manifest or --scan"),
            };
            let kp = store.load_keypair(&id, &ctx.keyring())?;
            let doc = aim_mcp::signed::sign(
                &m,
                &kp,
                &id.id,
                &id.did,
                &id.current_key_id(),
                crate::ctx::now(),
            )?;
            ctx.record(
                "mcp.manifest_signed",
                Some(&id.id),
                Some(&m.server.name),
                json!({"manifestHash": doc.manifest_hash, "structuralHash": doc.structural_hash,
                       "capabilities": doc.capabilities, "keyId": doc.signer.key_id}),
            )?;
            write_or_print(out.as_deref(), &serde_json::to_string_pretty(&doc)?)?;
            Ok(Outcome::Success)
        }
        McpCmd::VerifyManifest {
            file,
            public_key,
            identity,
        } => {
            let text = aim_core::fsio::read_text(&file, 64 * 1024 * 1024)?;
            let doc = aim_mcp::signed::parse(&text)?;
            let expected = match (public_key, identity) {
                (Some(k), _) => Some(super::identity::read_public_key(&k)?),
                (None, Some(i)) => Some(ctx.store().find(&i)?.current_key()?),
                (None, None) => None,
            };
            let v = aim_mcp::signed::verify(&doc, expected.as_ref())?;
            if ctx.json {
                ctx.print_json(&json!({"valid": v.valid, "reasons": v.reasons, "signerId": v.signer_id,
                                       "manifestHash": v.manifest_hash, "keyPinned": expected.is_some()}));
            } else if v.valid {
                println!("VALID: signed by {} ({})", v.signer_id, v.manifest_hash);
                if expected.is_none() {
                    println!(
                        "note: no expected key given; this proves integrity, not who the signer is"
                    );
                }
            } else {
                println!("INVALID: {}", v.reasons.join("; "));
            }
            Ok(if v.valid {
                Outcome::Success
            } else {
                Outcome::Negative
            })
        }
        McpCmd::Pin {
            select,
            server,
            api_key,
        } => {
            aim_mcp::pin::validate_name(&select.name)?;
            let (s, m) = scan_manifest(&select)?;
            let remote = match (&server, &api_key) {
                (Some(url), Some(key)) => Some(super::mcp_server::pin(url, key, &select.name, &m)?),
                _ => None,
            };
            let store = aim_mcp::pin::PinStore::new(&ctx.home);
            let previous = store.load(&select.name).ok();
            let pin = store.save(&select.name, &source_of(&s), &m, crate::ctx::now())?;
            ctx.record(
                "mcp.pinned",
                None,
                Some(&select.name),
                json!({"source": pin.source, "manifestHash": pin.manifest_hash,
                       "structuralHash": pin.structural_hash, "capabilities": caps(&m),
                       "replaced": previous.map(|p| p.manifest_hash)}),
            )?;
            if ctx.json {
                ctx.print_json(&json!({"name": pin.name, "manifestHash": pin.manifest_hash,
                    "structuralHash": pin.structural_hash, "pinnedAt": pin.pinned_at,
                    "path": store.path_of(&select.name)?, "capabilities": caps(&m),
                    "server": remote}));
            } else {
                println!(
                    "pinned {} {} ({} tools) {}",
                    pin.name,
                    pin.manifest_hash,
                    count(&m.tools),
                    pin.source
                );
                if let Some(r) = &remote {
                    println!(
                        "pinned on the AIM server as {} (confidence {})",
                        r["id"].as_str().unwrap_or("?"),
                        r["confidence"]
                    );
                }
            }
            Ok(Outcome::Success)
        }
        McpCmd::Attest {
            select,
            server,
            identity,
        } => {
            let store = ctx.store();
            let id = store.find(&identity)?;
            let kp = store.load_keypair(&id, &ctx.keyring())?;
            let (_, m) = scan_manifest(&select)?;
            let v = super::mcp_server::attest(&server, &kp, &select.name, &m)?;
            ctx.record(
                "mcp.attested",
                Some(&id.id),
                Some(&select.name),
                json!({"server": server, "manifestHash": v["manifestHash"],
                       "matchesPin": v["matchesPin"], "drift": v["drift"]["maxSeverity"]}),
            )?;
            let drifted = v["matchesPin"] == json!(false);
            if ctx.json {
                ctx.print_json(&v);
            } else if drifted {
                println!(
                    "attested {} {}: DIFFERS from the pin ({} severity, {} changes)",
                    select.name,
                    v["manifestHash"].as_str().unwrap_or("?"),
                    v["drift"]["maxSeverity"].as_str().unwrap_or("?"),
                    v["drift"]["changeCount"]
                );
            } else {
                println!(
                    "attested {} {} (matches pin: {})",
                    select.name,
                    v["manifestHash"].as_str().unwrap_or("?"),
                    v["matchesPin"]
                );
            }
            Ok(if drifted {
                Outcome::Negative
            } else {
                Outcome::Success
            })
        }
        McpCmd::Diff { select } => {
            let store = aim_mcp::pin::PinStore::new(&ctx.home);
            let pin = store.load(&select.name)?;
            let (_, current) = scan_manifest(&select)?;
            let d = aim_mcp::drift::diff(&pin.manifest, &current)?;
            if d.drifted {
                ctx.record(
                    "mcp.drift_detected",
                    None,
                    Some(&select.name),
                    json!({"maxSeverity": d.max_severity, "pinnedHash": d.pinned_hash,
                           "currentHash": d.current_hash,
                           "changes": d.changes.iter().map(|c| json!({"severity": c.severity, "kind": c.kind, "name": c.name, "change": c.change})).collect::<Vec<_>>()}),
                )?;
            }
            if ctx.json {
                ctx.print_json(&serde_json::to_value(&d)?);
            } else if !d.drifted {
                println!(
                    "no drift: {} matches the pin of {}",
                    d.current_hash, pin.pinned_at
                );
            } else {
                println!(
                    "DRIFT in {} (pinned {}): {} -> {}",
                    select.name, pin.pinned_at, d.pinned_hash, d.current_hash
                );
                for c in &d.changes {
                    let sev = serde_json::to_value(c.severity)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_uppercase))
                        .unwrap_or_default();
                    println!("  {sev:<6} {} {} {}", c.kind, c.name, c.change);
                    if c.change == "description" || c.change == "instructions" {
                        println!(
                            "         - {}",
                            c.before.as_ref().map(Value::to_string).unwrap_or_default()
                        );
                        println!(
                            "         + {}",
                            c.after.as_ref().map(Value::to_string).unwrap_or_default()
                        );
                    }
                }
            }
            Ok(if d.drifted {
                Outcome::Negative
            } else {
                Outcome::Success
            })
        }
    }
}
