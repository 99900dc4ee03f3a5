//! The organization's policy set (docs/POLICY.md, "Server"): the version in force, the
//! append-only history, saving a new version, and a dry-run validation.
//!
//! Invariants:
//! - Nothing is stored unless `aim_policy::validate` compiled it (Cedar parse + validation against
//!   the AIM schema, or governance YAML translated and validated): the version in force always
//!   compiles.
//! - Versions are append-only (`Store::insert_policy_version`), each saved with its
//!   `policy.updated` audit record in one transaction; that record's `policy.*` type makes the
//!   audit append write the organization's cache invalidation.
//! - An organization that never saved a set runs `authz::DEFAULT_POLICY`, reported as version 0.

use aim_policy::{PolicyBundle, PolicyLanguage};
use aim_store::{PolicyLanguageName, PolicyVersion};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::error::{ApiError, Error};
use crate::rbac::Action;
use crate::routes::{ApiJson, ApiQuery};
use crate::state::{AppState, ms_to_rfc3339};

/// Largest accepted policy source, in bytes (413 `policy_too_large` above).
pub const MAX_POLICY_SOURCE: usize = 256 * 1024;

/// Request-body limit of the routes that carry a policy source (the source, JSON-escaped, plus
/// room for the envelope); the rest of the API keeps `routes::MAX_BODY`.
pub const MAX_POLICY_BODY: usize = 2 * MAX_POLICY_SOURCE;

fn language_of(l: PolicyLanguageName) -> PolicyLanguage {
    match l {
        PolicyLanguageName::Cedar => PolicyLanguage::Cedar,
        PolicyLanguageName::GovernanceYaml => PolicyLanguage::GovernanceYaml,
    }
}

/// Compiles off the async workers (a large set takes a while); client mistakes → 400
/// `invalid_policy` carrying Cedar's/the YAML parser's message.
async fn compile(source: String, language: PolicyLanguageName) -> Result<PolicyBundle, Error> {
    if source.len() > MAX_POLICY_SOURCE {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "policy_too_large",
            format!("policy source must be at most {MAX_POLICY_SOURCE} bytes"),
        )
        .into());
    }
    let compiled =
        tokio::task::spawn_blocking(move || aim_policy::validate(&source, language_of(language)))
            .await
            .map_err(|e| Error::Io(format!("policy compilation task: {e}")))?;
    compiled.map_err(|e| match e {
        aim_policy::Error::Internal(m) => Error::Io(format!("policy engine: {m}")),
        other => ApiError::new(StatusCode::BAD_REQUEST, "invalid_policy", other.to_string()).into(),
    })
}

/// A stored version with its source, policy ids and warnings.
fn body_of(v: &PolicyVersion, policies: &[String], warnings: &[String]) -> Value {
    json!({
        "version": v.version,
        "language": v.language,
        "source": v.source,
        "digest": v.digest,
        "policies": policies,
        "warnings": warnings,
        "createdBy": v.created_by,
        "createdAt": ms_to_rfc3339(v.created_at),
        "default": false,
    })
}

/// A stored version, with its policy ids and warnings recomputed from the source.
async fn version_json(v: &PolicyVersion) -> Value {
    match compile(v.source.clone(), v.language).await {
        Ok(b) => body_of(v, b.policy_names(), b.warnings()),
        // Stored sets compiled when saved; an engine upgrade could refuse one later. Say so.
        Err(e) => body_of(v, &[], &[format!("this version no longer compiles: {e}")]),
    }
}

/// `GET /api/v1/policies` (managers, admins): the set in force; version 0 = the built-in default.
pub async fn current(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, Error> {
    caller.authorize(Action::PoliciesRead)?;
    match state.store.current_policy(caller.org_id()).await? {
        Some(v) => Ok(Json(version_json(&v).await)),
        None => {
            let b = compile(
                crate::authz::DEFAULT_POLICY.to_string(),
                PolicyLanguageName::Cedar,
            )
            .await?;
            Ok(Json(json!({
                "version": 0,
                "language": PolicyLanguageName::Cedar,
                "source": crate::authz::DEFAULT_POLICY,
                "digest": b.version(),
                "policies": b.policy_names(),
                "warnings": b.warnings(),
                "createdBy": null,
                "createdAt": null,
                "default": true,
            })))
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicySource {
    language: PolicyLanguageName,
    source: String,
}

/// `PUT /api/v1/policies {language, source}` (admins): compiles, then stores the next version
/// → 201 with it. Invalid → 400 `invalid_policy`, nothing stored.
pub async fn save(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<PolicySource>,
) -> Result<(StatusCode, Json<Value>), Error> {
    caller.authorize(Action::PoliciesUpdate)?;
    let bundle = compile(req.source.clone(), req.language).await?;
    let org = caller.org_id();
    let audit = state.audit(
        Some(org),
        "policy.updated",
        caller.actor(),
        Some(format!("org:{org}")),
        json!({
            "language": req.language,
            "digest": bundle.version(),
            "policies": bundle.policy_names(),
        }),
        caller.client_addr.clone(),
    );
    let stored = state
        .store
        .insert_policy_version(
            org,
            req.language,
            &req.source,
            bundle.version(),
            &caller.actor(),
            state.now_ms(),
            &audit,
        )
        .await
        .map_err(|e| match e {
            aim_store::Error::Conflict { .. } => Error::from(ApiError::new(
                StatusCode::CONFLICT,
                "policy_conflict",
                "another policy version was saved at the same moment; retry",
            )),
            other => other.into(),
        })?;
    Ok((
        StatusCode::CREATED,
        Json(body_of(&stored, bundle.policy_names(), bundle.warnings())),
    ))
}

/// `POST /api/v1/policies/validate {language, source}` (managers, admins): dry run, stores
/// nothing → `{valid: true, digest, policies, warnings}` or 400 `invalid_policy`.
pub async fn validate(
    caller: Caller,
    ApiJson(req): ApiJson<PolicySource>,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::PoliciesValidate)?;
    let b = compile(req.source, req.language).await?;
    Ok(Json(json!({
        "valid": true,
        "digest": b.version(),
        "policies": b.policy_names(),
        "warnings": b.warnings(),
    })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct VersionsQuery {
    before: Option<i64>,
    limit: Option<u32>,
}

/// `GET /api/v1/policies/versions?before=&limit=` (managers, admins): newest first, without
/// sources → `{items, nextBefore}`.
pub async fn versions(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<VersionsQuery>,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::PolicyVersionsList)?;
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let rows = state
        .store
        .list_policy_versions(caller.org_id(), q.before, limit)
        .await?;
    let next = if rows.len() >= limit as usize {
        rows.last().map(|v| v.version)
    } else {
        None
    };
    let items: Vec<Value> = rows
        .iter()
        .map(|v| {
            json!({
                "version": v.version,
                "language": v.language,
                "digest": v.digest,
                "createdBy": v.created_by,
                "createdAt": ms_to_rfc3339(v.created_at),
            })
        })
        .collect();
    Ok(Json(json!({ "items": items, "nextBefore": next })))
}

/// `GET /api/v1/policies/versions/{version}` (managers, admins): one stored version with its
/// source.
pub async fn version(
    State(state): State<AppState>,
    caller: Caller,
    Path(version): Path<String>,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::PolicyVersionsRead)?;
    let n: i64 = version
        .parse()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| ApiError::bad_request("version must be a positive integer"))?;
    let v = state
        .store
        .get_policy_version(caller.org_id(), n)
        .await?
        .ok_or_else(|| ApiError::not_found("policy version"))?;
    Ok(Json(version_json(&v).await))
}
