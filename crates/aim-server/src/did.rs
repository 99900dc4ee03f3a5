//! `did:web` identifiers of this server and its agents, and agent DID documents.
//!
//! The provider DID is `did:web:` + the host of `public_url` (a port's `:` percent-encoded as
//! `%3A`) + its path segments joined by `:`. An agent's DID appends `:agents:<agent id>`, which a
//! did:web resolver maps to `<public_url>/agents/<agent id>/did.json` — the route serving the
//! document.

use aim_core::keys::PublicKey;
use aim_store::Agent;
use serde_json::{Value, json};

/// The provider (issuer) DID for a public base URL such as `https://aim.example.com:8443/base`.
pub fn provider_did(public_url: &str) -> String {
    let rest = public_url
        .strip_prefix("https://")
        .or_else(|| public_url.strip_prefix("http://"))
        .unwrap_or(public_url)
        .trim_end_matches('/');
    let mut parts = rest.split('/');
    let host = parts.next().unwrap_or_default().replace(':', "%3A");
    let mut did = format!("did:web:{host}");
    for seg in parts.filter(|s| !s.is_empty()) {
        did.push(':');
        did.push_str(seg);
    }
    did
}

/// The DID of agent `id` at this provider.
pub fn agent_did(public_url: &str, id: &str) -> String {
    format!("{}:agents:{id}", provider_did(public_url))
}

fn method(did: &str, version: i64, key: &[u8]) -> Option<Value> {
    let pk = PublicKey::from_bytes(key).ok()?;
    let multibase = pk.did_key().strip_prefix("did:key:")?.to_string();
    Some(json!({
        "id": format!("{did}#key-{version}"),
        "type": "Ed25519VerificationKey2020",
        "controller": did,
        "publicKeyMultibase": multibase,
    }))
}

/// The DID document of an agent: its current key (`#key-<version>`) and, during a rotation grace
/// period, the previous key (`#key-<version-1>`), both usable for authentication.
pub fn agent_document(public_url: &str, agent: &Agent, now: i64) -> Value {
    let did = agent_did(public_url, &agent.id);
    let mut methods: Vec<Value> = Vec::new();
    if let Some(m) = method(&did, agent.key_version, &agent.public_key) {
        methods.push(m);
    }
    if let Some(prev) = agent.grace_key(now)
        && let Some(m) = method(&did, agent.key_version - 1, prev)
    {
        methods.push(m);
    }
    let ids: Vec<Value> = methods.iter().map(|m| m["id"].clone()).collect();
    json!({
        "@context": [
            "https://www.w3.org/ns/did/v1",
            "https://w3id.org/security/suites/ed25519-2020/v1"
        ],
        "id": did,
        "controller": provider_did(public_url),
        "verificationMethod": methods,
        "authentication": ids,
        "assertionMethod": ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_web_forms() {
        assert_eq!(
            provider_did("https://aim.example.com"),
            "did:web:aim.example.com"
        );
        assert_eq!(
            provider_did("http://127.0.0.1:8080/"),
            "did:web:127.0.0.1%3A8080"
        );
        assert_eq!(
            agent_did("https://h.example:8443/aim/x", "aim_a"),
            "did:web:h.example%3A8443:aim:x:agents:aim_a"
        );
    }
}
