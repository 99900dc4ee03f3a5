//! HTTP routes. Each handler: extract + authorize → work → persist through the store → respond.

pub mod actions;
pub mod agents;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod capabilities;
pub mod credentials;
pub mod health;
pub mod mcp;
pub mod monitoring;
pub mod org;
pub mod policies;
pub mod sdk;
pub mod users;

use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::routing::{delete, get, post, put};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// Largest accepted request body.
pub const MAX_BODY: usize = 64 * 1024;

/// Builds the application router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/api/v1/auth/login", post(auth::login))
        .route("/api/v1/auth/refresh", post(auth::refresh))
        .route("/api/v1/auth/logout", post(auth::logout))
        .route("/api/v1/auth/me", get(auth::me))
        .route("/api/v1/auth/change-password", post(auth::change_password))
        .route("/api/v1/auth/jwks", get(auth::jwks))
        .route("/api/v1/auth/totp/enroll", post(auth::totp_enroll))
        .route("/api/v1/auth/totp/confirm", post(auth::totp_confirm))
        .route("/api/v1/auth/totp/disable", post(auth::totp_disable))
        .route("/api/v1/org", get(org::get_org).patch(org::update_org))
        .route("/api/v1/users", get(users::list).post(users::create))
        .route(
            "/api/v1/users/{id}",
            get(users::get_user)
                .patch(users::update)
                .delete(users::delete),
        )
        .route(
            "/api/v1/api-keys",
            get(api_keys::list).post(api_keys::create),
        )
        .route(
            "/api/v1/api-keys/{id}",
            get(api_keys::get_key).delete(api_keys::revoke),
        )
        .route("/api/v1/api-keys/{id}/rotate", post(api_keys::rotate))
        .route("/api/v1/audit/entries", get(audit::list))
        .route("/api/v1/audit/verify", get(audit::verify))
        .route("/api/v1/audit/checkpoint", get(audit::checkpoint))
        .route("/api/v1/audit/proof/inclusion", get(audit::inclusion))
        .route("/api/v1/audit/proof/consistency", get(audit::consistency))
        .route("/api/v1/agents", get(agents::list).post(agents::register))
        .route("/api/v1/agents/{id}", get(agents::get_agent))
        .route("/api/v1/agents/{id}/suspend", post(agents::suspend))
        .route("/api/v1/agents/{id}/activate", post(agents::activate))
        .route("/api/v1/agents/{id}/revoke", post(agents::revoke))
        .route("/api/v1/agents/{id}/challenge", post(agents::challenge))
        .route("/api/v1/agents/{id}/verify", post(agents::verify))
        .route("/api/v1/agents/{id}/heartbeat", post(agents::heartbeat))
        .route("/api/v1/agents/{id}/rotate-key", post(agents::rotate_key))
        .route("/agents/{id}/did.json", get(agents::did_document))
        .route("/.well-known/aip", get(agents::well_known))
        .route("/api/v1/agents/{id}/trust", get(credentials::get_trust))
        .route(
            "/api/v1/agents/{id}/trust/history",
            get(credentials::get_trust_history),
        )
        .route(
            "/api/v1/agents/{id}/credential",
            get(credentials::get_credential),
        )
        .route("/api/v1/agents/{id}/actions/verify", post(actions::verify))
        .route(
            "/api/v1/agents/{id}/actions/{action_id}",
            get(actions::agent_get),
        )
        .route(
            "/api/v1/agents/{id}/actions/{action_id}/result",
            post(actions::report_result),
        )
        .route("/api/v1/actions", get(actions::list))
        .route("/api/v1/actions/{id}", get(actions::get_one))
        .route("/api/v1/actions/{id}/approve", post(actions::approve))
        .route("/api/v1/actions/{id}/deny", post(actions::deny))
        .route(
            "/api/v1/policies",
            get(policies::current)
                .put(policies::save)
                .layer(DefaultBodyLimit::max(policies::MAX_POLICY_BODY)),
        )
        .route(
            "/api/v1/policies/validate",
            post(policies::validate).layer(DefaultBodyLimit::max(policies::MAX_POLICY_BODY)),
        )
        .route("/api/v1/policies/versions", get(policies::versions))
        .route(
            "/api/v1/policies/versions/{version}",
            get(policies::version),
        )
        .route(
            "/api/v1/agents/{id}/capabilities",
            get(capabilities::list).post(capabilities::grant),
        )
        .route(
            "/api/v1/agents/{id}/capabilities/{capability}",
            delete(capabilities::revoke),
        )
        .route(
            "/api/v1/agents/{id}/capability-requests",
            post(capabilities::request),
        )
        .route(
            "/api/v1/capability-requests",
            get(capabilities::list_requests),
        )
        .route(
            "/api/v1/capability-requests/{id}",
            get(capabilities::get_request),
        )
        .route(
            "/api/v1/capability-requests/{id}/approve",
            post(capabilities::approve),
        )
        .route(
            "/api/v1/capability-requests/{id}/deny",
            post(capabilities::deny),
        )
        .route("/api/v1/mcp-servers", get(mcp::list).post(mcp::register))
        .route("/api/v1/mcp-servers/{id}", get(mcp::get_one))
        .route("/api/v1/mcp-servers/{id}/pin", put(mcp::pin))
        .route("/api/v1/agents/{id}/mcp-attestations", post(mcp::attest))
        .route("/api/v1/agents/{id}/mcp-connections", get(mcp::connections))
        // aim-sdk 2.0.3 wire format (docs/COMPATIBILITY.md)
        .route("/api/v1/public/agents/register", post(sdk::register))
        .route("/api/v1/sdk-api/verifications", post(sdk::verify))
        .route("/api/v1/sdk-api/verifications/{id}", get(sdk::poll))
        .route(
            "/api/v1/sdk-api/verifications/{id}/result",
            post(sdk::report_result),
        )
        .route("/api/v1/sdk-api/agents/{id}", get(sdk::get_agent))
        .route(
            "/api/v1/sdk-api/agents/{id}/capabilities",
            get(sdk::list_capabilities).post(sdk::declare_capability),
        )
        .route(
            "/api/v1/sdk-api/agents/{id}/capabilities/register",
            post(sdk::declare_capability),
        )
        .route(
            "/api/v1/sdk-api/agents/{id}/capability-requests",
            get(sdk::list_requests).post(sdk::request_capability),
        )
        .route(
            "/api/v1/sdk-api/agents/{id}/mcp-servers",
            get(sdk::list_mcp).post(sdk::register_mcp),
        )
        .route(
            "/api/v1/sdk-api/agents/{id}/mcp-servers/by-name",
            get(sdk::mcp_by_name),
        )
        .route("/api/v1/anomalies", get(monitoring::list_anomalies))
        .route("/api/v1/incidents", get(monitoring::list_incidents))
        .route("/api/v1/incidents/{id}", get(monitoring::get_incident))
        .route(
            "/api/v1/incidents/{id}/acknowledge",
            post(monitoring::acknowledge_incident),
        )
        .route(
            "/api/v1/incidents/{id}/resolve",
            post(monitoring::resolve_incident),
        )
        .route("/api/v1/alerts", get(monitoring::list_alerts))
        .route("/api/v1/alerts/{id}", get(monitoring::get_alert))
        .route(
            "/api/v1/alerts/{id}/acknowledge",
            post(monitoring::acknowledge_alert),
        )
        .route(
            "/api/v1/alerts/{id}/resolve",
            post(monitoring::resolve_alert),
        )
        .route(
            "/api/v1/alert-routes",
            get(monitoring::list_routes).post(monitoring::create_route),
        )
        .route(
            "/api/v1/alert-routes/{id}",
            get(monitoring::get_route)
                .patch(monitoring::update_route)
                .delete(monitoring::delete_route),
        )
        .route(
            "/api/v1/alert-routes/{id}/test",
            post(monitoring::test_route),
        )
        .route("/api/v1/openapi.json", get(crate::openapi::serve))
        .route("/metrics", get(crate::metrics::handler))
        // Operations layers (crate::ops_layers). A `route_layer` sees the matched route and
        // covers every route above.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::ops_layers::route,
        ))
        .fallback(|| async { ApiError::not_found("route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::ops_layers::request,
        ))
        .with_state(state)
}

/// JSON body extractor whose every rejection (syntax, type, missing content type) is a 400 with
/// the API's error shape.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // The text first (content type, size, syntax), then U+0000, then the shape: each
        // rejection as `axum::Json` words it.
        let raw =
            match axum::Json::<Box<serde_json::value::RawValue>>::from_request(req, state).await {
                Ok(axum::Json(raw)) => raw,
                Err(rej) => return Err(json_rejection(rej)),
            };
        if encodes_nul(raw.get().as_bytes()) {
            return Err(ApiError::bad_request(NUL_REFUSED));
        }
        match axum::Json::<T>::from_bytes(raw.get().as_bytes()) {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rej) => Err(json_rejection(rej)),
        }
    }
}

/// Why a request whose JSON carries U+0000 is refused. No field of the API needs the
/// character, and PostgreSQL text cannot hold it: accepted, it would fail the transaction it is
/// written in — on the hot path a whole batch of other agents' decisions (503 for every one).
/// Refused with 400 before anything is written, on both stores alike.
pub(crate) const NUL_REFUSED: &str =
    "strings in the request body must not contain the character U+0000";

/// Parses a request body as JSON: 400 when it is not JSON of the expected shape or when a
/// string in it (key or value) is U+0000-bearing ([`NUL_REFUSED`]).
pub(crate) fn request_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let v = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))?;
    if encodes_nul(body) {
        return Err(ApiError::bad_request(NUL_REFUSED));
    }
    Ok(v)
}

/// Whether the JSON text `body` encodes U+0000 in a string.
///
/// Exact for any text a JSON parser accepted: JSON carries U+0000 only as the escape `\u0000`
/// (a raw control character inside a string is a syntax error, and a backslash outside a
/// string too), and escapes are read left to right, so the second backslash of `\\` is never read as the start of one.
pub(crate) fn encodes_nul(body: &[u8]) -> bool {
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'\\' {
            if body.get(i + 1) == Some(&b'u') && body.get(i + 2..i + 6) == Some(b"0000".as_slice())
            {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

fn json_rejection(rej: JsonRejection) -> ApiError {
    match rej {
        JsonRejection::BytesRejection(_)
            if rej.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
        {
            ApiError::new(rej.status(), "payload_too_large", "request body too large")
        }
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::bad_request("expected Content-Type: application/json")
        }
        JsonRejection::JsonSyntaxError(_) => {
            ApiError::bad_request("request body is not valid JSON")
        }
        other => ApiError::bad_request(format!("invalid request body: {}", other.body_text())),
    }
}

/// Query-string extractor mapping rejections to 400. (A `%00` — U+0000 — never reaches it:
/// `ops_layers::request` refuses such URIs first.)
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(rej) => Err(query_rejection(rej)),
        }
    }
}

fn query_rejection(rej: QueryRejection) -> ApiError {
    ApiError::bad_request(format!("invalid query string: {}", rej.body_text()))
}

/// Parses a path id.
pub fn parse_id(s: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(s).map_err(|_| ApiError::bad_request("id is not a UUID"))
}

/// `?after=<id>&limit=<n>` (keyset pagination).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    pub after: Option<Uuid>,
    pub limit: Option<u32>,
}

impl PageQuery {
    pub fn page(&self) -> aim_store::PageRequest {
        aim_store::PageRequest {
            after: self.after,
            limit: self.limit.unwrap_or(100),
        }
    }
}

/// `{"items": [...], "nextAfter": id|null}`: pass `nextAfter` as `after` to get the next page.
pub fn page_json<T: serde::Serialize>(
    items: Vec<T>,
    last: Option<Uuid>,
    requested: usize,
) -> serde_json::Value {
    let next = if items.len() >= requested { last } else { None };
    serde_json::json!({ "items": items, "nextAfter": next })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has_nul(v: &serde_json::Value) -> bool {
        match v {
            serde_json::Value::String(s) => s.contains('\0'),
            serde_json::Value::Array(a) => a.iter().any(has_nul),
            serde_json::Value::Object(o) => o.iter().any(|(k, v)| k.contains('\0') || has_nul(v)),
            _ => false,
        }
    }

    #[test]
    fn nul_is_found_only_where_a_string_encodes_it() {
        for (text, nul) in [
            (r#"{"a":"\u0000"}"#, true),
            (r#"{"\u0000":1}"#, true),
            (r#"{"a":"x\u00001"}"#, true),
            (r#"{"a":"\\\u0000"}"#, true),
            // An escaped backslash followed by the letters u0000: no U+0000.
            (r#"{"a":"\\u0000"}"#, false),
            (r#"{"a":"\\\\u0000"}"#, false),
            (r#"{"a":"\u0001","b":"\u00a0"}"#, false),
            (r#"{"a":"u0000"}"#, false),
            (r#"{"a":"\u000"}"#, false),
        ] {
            assert_eq!(encodes_nul(text.as_bytes()), nul, "{text}");
            // Where the text is JSON, the parser agrees.
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
                assert_eq!(has_nul(&v), nul, "{text}");
            }
        }
    }

    #[test]
    fn request_json_refuses_nul_and_malformed_bodies() {
        #[derive(Debug, Deserialize)]
        struct Body {
            #[allow(dead_code)]
            resource: String,
        }
        assert!(request_json::<Body>(br#"{"resource":"f"}"#).is_ok());
        let e = request_json::<Body>(br#"{"resource":"f\u0000"}"#).unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
        assert!(e.message.contains("U+0000"), "{}", e.message);
        let e = request_json::<Body>(br#"{"resource":1}"#).unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::BAD_REQUEST);
    }
}
