//! `GET /api/v1/openapi.json`: a valid OpenAPI 3.1 document whose operations are exactly the
//! routes the server serves.
//!
//! "The routes the server serves" is established three ways, so an undocumented route fails:
//! 1. every `.route("PATH", get(..).post(..))` call in the server's source (the router itself);
//! 2. the RBAC table plus the public routes;
//! 3. over HTTP: each documented (method, path) is not answered by the router's fallback, and
//!    every other method on a documented path is answered 405.

use std::collections::BTreeSet;
use std::path::Path;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::common::{Cred, Ctx};

type Route = (String, String);

/// Routes that need no credential (everything else is in `rbac::PERMISSIONS`).
const PUBLIC: &[(&str, &str)] = &[
    ("GET", "/health"),
    ("GET", "/ready"),
    ("POST", "/api/v1/auth/login"),
    ("POST", "/api/v1/auth/refresh"),
    ("GET", "/api/v1/auth/jwks"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/metrics"),
    ("GET", "/agents/{id}/did.json"),
    ("GET", "/.well-known/aip"),
    // Authenticated by the agent's request signature, not by a user credential.
    ("POST", "/api/v1/agents/{id}/heartbeat"),
    ("POST", "/api/v1/agents/{id}/rotate-key"),
    ("POST", "/api/v1/agents/{id}/actions/verify"),
    ("GET", "/api/v1/agents/{id}/actions/{action_id}"),
    ("POST", "/api/v1/agents/{id}/actions/{action_id}/result"),
    ("POST", "/api/v1/agents/{id}/capability-requests"),
    ("POST", "/api/v1/agents/{id}/mcp-attestations"),
    // aim-sdk: the agent's body signature, `X-AIM-*` poll signature or signed headers (an
    // outcome report may carry no credential at all: docs/COMPATIBILITY.md).
    ("POST", "/api/v1/sdk-api/verifications"),
    ("GET", "/api/v1/sdk-api/verifications/{id}"),
    ("POST", "/api/v1/sdk-api/verifications/{id}/result"),
    ("GET", "/api/v1/sdk-api/agents/{id}/capabilities"),
    ("POST", "/api/v1/sdk-api/agents/{id}/capabilities"),
    ("POST", "/api/v1/sdk-api/agents/{id}/capabilities/register"),
    ("GET", "/api/v1/sdk-api/agents/{id}/capability-requests"),
    ("POST", "/api/v1/sdk-api/agents/{id}/capability-requests"),
    ("GET", "/api/v1/sdk-api/agents/{id}/mcp-servers"),
    ("POST", "/api/v1/sdk-api/agents/{id}/mcp-servers"),
    ("GET", "/api/v1/sdk-api/agents/{id}/mcp-servers/by-name"),
];

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete"];

fn documented(doc: &Value) -> BTreeSet<Route> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if item.get(*m).is_some() {
                out.insert((m.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

/// Every `.route(...)` call in the server's sources: (method, path) pairs.
fn routes_in_source() -> BTreeSet<Route> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    let mut sources = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut sources,
    );
    let mut out = BTreeSet::new();
    for src in &sources {
        let mut rest = src.as_str();
        while let Some(i) = rest.find(".route(") {
            let call = &rest[i + ".route(".len()..];
            // The call's argument text, up to the matching parenthesis.
            let mut depth = 1;
            let mut end = call.len();
            for (j, c) in call.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = j;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let args = &call[..end];
            let q1 = args.find('"').expect("route path literal");
            let q2 = q1 + 1 + args[q1 + 1..].find('"').unwrap();
            let path = &args[q1 + 1..q2];
            let handlers = &args[q2 + 1..];
            let mut found = false;
            for m in METHODS {
                let pat = format!("{m}(");
                let mut k = 0;
                while let Some(pos) = handlers[k..].find(&pat) {
                    let at = k + pos;
                    let before = handlers[..at].chars().last().unwrap_or(' ');
                    if !(before.is_alphanumeric() || before == '_' || before == ':') {
                        out.insert((m.to_uppercase(), path.to_string()));
                        found = true;
                    }
                    k = at + pat.len();
                }
            }
            assert!(found, "no method router found in .route({args})");
            rest = &call[end..];
        }
    }
    out
}

fn from_tables() -> BTreeSet<Route> {
    let mut s: BTreeSet<Route> = aim_server::rbac::PERMISSIONS
        .iter()
        .map(|(_, m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    s.extend(PUBLIC.iter().map(|(m, p)| (m.to_string(), p.to_string())));
    s
}

/// Every `$ref` in `v`.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    out.push(x.as_str().unwrap().to_string());
                } else {
                    refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

async fn fetch(ctx: &Ctx) -> Value {
    let (s, doc) = ctx.get("/api/v1/openapi.json", Cred::None).await;
    assert_eq!(s, StatusCode::OK);
    doc
}

async fn document_is_valid_openapi_3_1(ctx: Ctx) {
    let resp = ctx
        .http
        .get(ctx.ts.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let doc = fetch(&ctx).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["info"]["title"].is_string());
    assert!(doc["info"]["version"].is_string());
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes["bearerAuth"]["type"], "http");
    assert_eq!(schemes["bearerAuth"]["scheme"], "bearer");
    assert_eq!(schemes["apiKeyHeader"]["type"], "apiKey");
    assert_eq!(schemes["apiKeyHeader"]["in"], "header");
    assert_eq!(schemes["apiKeyHeader"]["name"], "X-API-Key");

    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut all_refs = Vec::new();
    refs(&doc, &mut all_refs);
    assert!(!all_refs.is_empty());
    for r in &all_refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(schemas.contains_key(name), "dangling $ref {r}");
    }
    let mut op_ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        assert!(path.starts_with('/'), "{path}");
        for m in METHODS {
            let Some(op) = item.get(*m) else { continue };
            assert!(
                op_ids.insert(op["operationId"].as_str().unwrap().to_string()),
                "duplicate operationId on {m} {path}"
            );
            let responses = op["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{m} {path}: no responses");
            for code in responses.keys() {
                assert!(code.parse::<u16>().is_ok(), "{m} {path}: response {code}");
            }
            // Every path template parameter is declared.
            let params: BTreeSet<&str> = op["parameters"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|p| p["in"] == "path")
                        .map(|p| p["name"].as_str().unwrap())
                        .collect()
                })
                .unwrap_or_default();
            let templated: BTreeSet<&str> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .collect();
            assert_eq!(params, templated, "{m} {path}: path parameters");
            // Security requirements name declared schemes; protected routes have one.
            if let Some(sec) = op["security"].as_array() {
                for req in sec {
                    for name in req.as_object().unwrap().keys() {
                        assert!(schemes.contains_key(name), "{m} {path}: scheme {name}");
                    }
                }
            }
            let public = PUBLIC
                .iter()
                .any(|(pm, pp)| pm.eq_ignore_ascii_case(m) && pp == path);
            if !public {
                assert!(
                    op["security"].as_array().is_some_and(|a| !a.is_empty()),
                    "{m} {path}: protected route without security"
                );
            }
        }
    }
    // Request bodies of JSON routes are described.
    assert!(doc["paths"]["/api/v1/auth/login"]["post"]["requestBody"].is_object());
    assert!(doc["paths"]["/api/v1/api-keys"]["post"]["requestBody"].is_object());
    ctx.ts.stop().await;
}

async fn document_covers_exactly_the_served_routes(ctx: Ctx) {
    let doc = fetch(&ctx).await;
    let documented = documented(&doc);
    let source = routes_in_source();
    let tables = from_tables();
    assert!(
        source.len() >= 20,
        "source scan found too little: {source:?}"
    );
    assert!(
        documented == source,
        "OpenAPI document vs. the router's .route() calls: served but undocumented {:?}, \
         documented but not served {:?} (declare routes with #[utoipa::path] in src/openapi.rs)",
        source.difference(&documented).collect::<Vec<_>>(),
        documented.difference(&source).collect::<Vec<_>>(),
    );
    assert!(
        documented == tables,
        "OpenAPI document vs. rbac::PERMISSIONS + public routes: missing {:?}, extra {:?}",
        tables.difference(&documented).collect::<Vec<_>>(),
        documented.difference(&tables).collect::<Vec<_>>(),
    );
    // Over HTTP: documented operations exist; other methods on their paths are 405.
    let paths: BTreeSet<&String> = documented.iter().map(|(_, p)| p).collect();
    let some_id = uuid::Uuid::now_v7().to_string();
    for path in paths {
        let url = path.replace("{id}", &some_id);
        for m in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let method = Method::from_bytes(m.as_bytes()).unwrap();
            let resp = ctx
                .http
                .request(method, ctx.ts.url(&url))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = resp.status();
            if documented.contains(&(m.to_string(), path.clone())) {
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{m} {path}");
                // A 404 is allowed only for a missing resource (the random id), never the
                // router's "route not found".
                if status == StatusCode::NOT_FOUND {
                    let body = resp.text().await.unwrap();
                    assert!(!body.contains("route not found"), "{m} {path}: {body}");
                }
                assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{m} {path}");
            } else {
                assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{m} {path}");
            }
        }
    }
    // An undocumented path is the router's 404.
    let (s, v) = ctx.get("/api/v1/nope", Cred::None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(v["error"], "not_found");
    ctx.ts.stop().await;
}

crate::backends!(
    document_is_valid_openapi_3_1,
    document_covers_exactly_the_served_routes
);
