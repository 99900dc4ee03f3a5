//! `opena2a mcp pin --server URL` and `opena2a mcp attest --server URL`: the AIM server's side of
//! MCP attestation (docs/MCP.md, "Server").
//!
//! - pin: with a user credential (API key or access token), registers the MCP server by name if
//!   the organization does not know it yet, then pins the manifest just scanned.
//! - attest: as a local identity registered as an agent, sends a signed attestation of the
//!   manifest just scanned; the agent's private key never leaves this machine (it signs the
//!   request here, docs/agents.md "Signed requests").

use aim_core::keys::{KeyPair, encode_base64};
use aim_mcp::manifest::Manifest;
use anyhow::{Context as _, anyhow};
use serde_json::{Value, json};

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn base(server: &str) -> String {
    server.trim_end_matches('/').to_string()
}

fn failure(what: &str, status: u16, v: &Value) -> anyhow::Error {
    anyhow!(
        "{what} failed ({status}): {}",
        v["message"]
            .as_str()
            .unwrap_or("unexpected answer from the server")
    )
}

async fn send(rb: reqwest::RequestBuilder, server: &str) -> anyhow::Result<(u16, Value)> {
    let resp = rb
        .send()
        .await
        .with_context(|| format!("cannot reach the AIM server at {server}"))?;
    let status = resp.status().as_u16();
    Ok((status, resp.json::<Value>().await.unwrap_or(Value::Null)))
}

fn with_credential(rb: reqwest::RequestBuilder, key: &str) -> reqwest::RequestBuilder {
    if key.starts_with("aim_live_") {
        rb.header("x-api-key", key)
    } else {
        rb.bearer_auth(key)
    }
}

/// Registers `name` on the AIM server when missing and pins `manifest`; returns the server as the
/// AIM server describes it.
pub fn pin(server: &str, key: &str, name: &str, manifest: &Manifest) -> anyhow::Result<Value> {
    runtime()?.block_on(async {
        let http = reqwest::Client::new();
        let b = base(server);
        let (s, list) = send(
            with_credential(http.get(format!("{b}/api/v1/mcp-servers")), key),
            &b,
        )
        .await?;
        if s != 200 {
            return Err(failure("listing MCP servers", s, &list));
        }
        let existing = list["servers"]
            .as_array()
            .and_then(|a| a.iter().find(|x| x["name"] == name))
            .and_then(|x| x["id"].as_str())
            .map(str::to_string);
        let id = match existing {
            Some(id) => id,
            None => {
                let (s, v) = send(
                    with_credential(http.post(format!("{b}/api/v1/mcp-servers")), key)
                        .json(&json!({ "name": name })),
                    &b,
                )
                .await?;
                if s != 201 {
                    return Err(failure("registering the MCP server", s, &v));
                }
                v["id"]
                    .as_str()
                    .ok_or_else(|| anyhow!("the server answered without an id"))?
                    .to_string()
            }
        };
        let (s, v) = send(
            with_credential(http.put(format!("{b}/api/v1/mcp-servers/{id}/pin")), key)
                .json(&json!({ "manifest": manifest })),
            &b,
        )
        .await?;
        if s != 200 {
            return Err(failure("pinning", s, &v));
        }
        Ok(v)
    })
}

fn fresh_nonce() -> String {
    use rand::Rng as _;
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    encode_base64(&bytes)
}

/// Sends a signed attestation of `manifest` for the MCP server `name` as the agent of `kp`;
/// returns the AIM server's answer (with the drift report when the manifest differs from the
/// pin).
pub fn attest(
    server: &str,
    kp: &KeyPair,
    name: &str,
    manifest: &Manifest,
) -> anyhow::Result<Value> {
    runtime()?.block_on(async {
        let b = base(server);
        let agent = aim_core::keys::agent_id_for(&kp.public().to_bytes());
        let path = format!("/api/v1/agents/{agent}/mcp-attestations");
        let body = serde_json::to_vec(&json!({ "serverName": name, "manifest": manifest }))?;
        let now = chrono::Utc::now().timestamp();
        let headers = aim_core::request_signing::sign_request(
            kp,
            &agent,
            "POST",
            &path,
            now,
            &fresh_nonce(),
            &body,
        )?;
        let mut rb = reqwest::Client::new()
            .post(format!("{b}{path}"))
            .header("content-type", "application/json")
            .body(body);
        for (n, v) in headers {
            rb = rb.header(n, v);
        }
        let (s, v) = send(rb, &b).await?;
        if s != 201 {
            return Err(failure("the attestation", s, &v));
        }
        Ok(v)
    })
}
