//! `opena2a agent …`: talk to an AIM server on behalf of a local identity.
//!
//! `agent register` registers the identity's PUBLIC key (the private key never leaves this
//! machine) and completes the AIP proof of possession in one step: register → challenge → sign
//! locally with `aim_core::aip::respond` → verify. Plain HTTP client for now (`reqwest`); the
//! typed `aim-client` crate will replace it.

use aim_core::aip::{self, Challenge};
use anyhow::{Context as _, anyhow, bail};
use serde_json::{Value, json};

use crate::ctx::{self, Ctx, Outcome};

#[derive(Debug, clap::Subcommand)]
pub enum AgentCmd {
    /// Register a local identity with an AIM server and prove possession of its key.
    Register {
        /// Server base URL, e.g. http://127.0.0.1:8080.
        #[arg(long, value_name = "URL")]
        server: String,
        /// Agent name on the server (unique in the organization).
        #[arg(long)]
        name: String,
        /// Local identity (id or name) whose key to register [default: the identity named NAME].
        #[arg(long, value_name = "ID|NAME")]
        identity: Option<String>,
        /// API key (or an access token) to authenticate with.
        #[arg(long, env = "AIM_API_KEY", hide_env_values = true, value_name = "KEY")]
        api_key: String,
    },
}

pub fn run(ctx: &Ctx, cmd: AgentCmd) -> anyhow::Result<Outcome> {
    match cmd {
        AgentCmd::Register {
            server,
            name,
            identity,
            api_key,
        } => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(register(ctx, &server, &name, identity.as_deref(), &api_key))
        }
    }
}

struct Api<'a> {
    http: reqwest::Client,
    base: String,
    key: &'a str,
}

impl Api<'_> {
    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        let mut rb = self.http.post(format!("{}{path}", self.base)).json(body);
        rb = if self.key.starts_with("aim_live_") {
            rb.header("x-api-key", self.key)
        } else {
            rb.bearer_auth(self.key)
        };
        let resp = rb
            .send()
            .await
            .with_context(|| format!("cannot reach the AIM server at {}", self.base))?;
        let status = resp.status().as_u16();
        let v = resp.json::<Value>().await.unwrap_or(Value::Null);
        Ok((status, v))
    }
}

fn server_error(what: &str, status: u16, v: &Value) -> anyhow::Error {
    anyhow!(
        "{what} failed ({status}): {}",
        v["message"]
            .as_str()
            .unwrap_or("unexpected answer from the server")
    )
}

async fn register(
    ctx: &Ctx,
    server: &str,
    name: &str,
    identity: Option<&str>,
    key: &str,
) -> anyhow::Result<Outcome> {
    let store = ctx.store();
    let id = store.find(identity.unwrap_or(name))?;
    let kp = store.load_keypair(&id, &ctx.keyring())?;
    let api = Api {
        http: reqwest::Client::new(),
        base: server.trim_end_matches('/').to_string(),
        key,
    };
    let (s, agent) = api
        .post(
            "/api/v1/agents",
            &json!({ "name": name, "publicKey": id.public_key, "capabilities": id.capabilities }),
        )
        .await?;
    if s != 201 {
        return Err(server_error("registration", s, &agent));
    }
    let agent_id = agent["id"]
        .as_str()
        .ok_or_else(|| anyhow!("the server answered without an agent id"))?
        .to_string();
    if agent_id != aim_core::keys::agent_id_for(&kp.public().to_bytes()) {
        bail!("the server named the agent {agent_id}, which is not the id of this key");
    }
    let (s, c) = api
        .post(&format!("/api/v1/agents/{agent_id}/challenge"), &json!({}))
        .await?;
    if s != 200 {
        return Err(server_error("challenge", s, &c));
    }
    let challenge: Challenge =
        serde_json::from_value(c).context("the server's challenge is not an AIP challenge")?;
    if challenge.agent_did != agent["did"].as_str().unwrap_or_default() {
        bail!(
            "the challenge names {}, not this agent",
            challenge.agent_did
        );
    }
    let key_id = format!("{}#key-{}", challenge.agent_did, agent["keyVersion"]);
    let response = aip::respond(&challenge, &kp, &key_id, ctx::now());
    let (s, v) = api
        .post(
            &format!("/api/v1/agents/{agent_id}/verify"),
            &serde_json::to_value(&response)?,
        )
        .await?;
    ctx.record(
        "agent.registered",
        Some(&id.id),
        Some(&agent_id),
        json!({"server": api.base, "did": challenge.agent_did, "verified": s == 200}),
    )?;
    if s != 200 {
        if ctx.json {
            ctx.print_json(&json!({"registered": true, "verified": false, "agentId": agent_id, "code": v["code"], "message": v["message"]}));
        } else {
            eprintln!(
                "Registered {agent_id} but the proof of possession was rejected: {} {}",
                v["code"].as_str().unwrap_or_default(),
                v["message"].as_str().unwrap_or_default()
            );
        }
        return Ok(Outcome::Negative);
    }
    if ctx.json {
        ctx.print_json(&v["agent"]);
    } else {
        println!(
            "Registered and verified {name} as {agent_id}\n  DID: {}\n  status: {}",
            challenge.agent_did,
            v["agent"]["status"].as_str().unwrap_or_default()
        );
    }
    Ok(Outcome::Success)
}
