//! The caller's organization and its settings (2FA for admins, enforcement mode, aim-sdk
//! compatibility).

use aim_store::{DeclaredCapabilities, SdkSettings};
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::error::{ApiError, Error};
use crate::rbac::Action;
use crate::routes::ApiJson;
use crate::state::{AppState, ms_to_rfc3339};

fn org_json(o: &aim_store::Organization, sdk: &SdkSettings) -> Value {
    json!({
        "id": o.id,
        "name": o.name,
        "require2faForAdmins": o.require_2fa_admins,
        "enforcementMode": o.enforcement_mode,
        "sdk": {
            "serverGeneratedKeys": sdk.server_generated_keys,
            "declaredCapabilities": sdk.declared_capabilities.as_str(),
        },
        "createdAt": ms_to_rfc3339(o.created_at),
    })
}

/// `GET /api/v1/org`.
pub async fn get_org(State(state): State<AppState>, caller: Caller) -> Result<Json<Value>, Error> {
    caller.authorize(Action::OrgRead)?;
    let o = state
        .store
        .get_org(caller.org_id())
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    let sdk = state.store.get_sdk_settings(o.id).await?;
    Ok(Json(org_json(&o, &sdk)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateOrg {
    #[serde(rename = "require2faForAdmins")]
    require_2fa_for_admins: Option<bool>,
    /// `strict` (a policy deny is a deny) or `monitoring` (a policy deny is allowed and alerted).
    enforcement_mode: Option<EnforcementMode>,
    /// aim-sdk compatibility settings (docs/COMPATIBILITY.md).
    sdk: Option<SdkPatch>,
}

/// `sdk` of `PATCH /api/v1/org`: each field optional.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SdkPatch {
    /// Whether aim-sdk registration may generate an agent's key pair on the server.
    server_generated_keys: Option<bool>,
    /// `grant` or `request`: what happens to capabilities declared at aim-sdk registration.
    declared_capabilities: Option<DeclaredCapabilities>,
}

/// The two enforcement modes (stored as their names; the database checks the set too).
#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EnforcementMode {
    Strict,
    Monitoring,
}

impl EnforcementMode {
    fn as_str(self) -> &'static str {
        match self {
            EnforcementMode::Strict => "strict",
            EnforcementMode::Monitoring => "monitoring",
        }
    }
}

/// `PATCH /api/v1/org {require2faForAdmins?, enforcementMode?, sdk?}` (admins). Each setting that
/// changes is written with its own audit record in one transaction (`org.settings_changed`,
/// `org.enforcement_mode_changed {from, to}`, `org.sdk_settings_changed {from, to}`); an unchanged
/// value writes nothing.
pub async fn update_org(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(req): ApiJson<UpdateOrg>,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::OrgUpdate)?;
    let org = caller.org_id();
    let mut o = state
        .store
        .get_org(org)
        .await?
        .ok_or_else(|| ApiError::not_found("organization"))?;
    if let Some(v) = req.require_2fa_for_admins
        && v != o.require_2fa_admins
    {
        let a = state.audit(
            Some(org),
            "org.settings_changed",
            caller.actor(),
            Some(format!("org:{org}")),
            json!({ "require2faForAdmins": v }),
            caller.client_addr.clone(),
        );
        o = state
            .store
            .set_org_require_2fa_admins(org, v, &a)
            .await?
            .ok_or_else(|| ApiError::not_found("organization"))?;
    }
    if let Some(mode) = req.enforcement_mode
        && mode.as_str() != o.enforcement_mode
    {
        let a = state.audit(
            Some(org),
            "org.enforcement_mode_changed",
            caller.actor(),
            Some(format!("org:{org}")),
            json!({ "from": o.enforcement_mode, "to": mode.as_str() }),
            caller.client_addr.clone(),
        );
        o = state
            .store
            .set_enforcement_mode(org, mode.as_str(), &a)
            .await?
            .ok_or_else(|| ApiError::not_found("organization"))?;
    }
    let mut sdk = state.store.get_sdk_settings(org).await?;
    if let Some(p) = req.sdk {
        let next = SdkSettings {
            server_generated_keys: p.server_generated_keys.unwrap_or(sdk.server_generated_keys),
            declared_capabilities: p.declared_capabilities.unwrap_or(sdk.declared_capabilities),
        };
        if next != sdk {
            let view = |s: &SdkSettings| {
                json!({
                    "serverGeneratedKeys": s.server_generated_keys,
                    "declaredCapabilities": s.declared_capabilities.as_str(),
                })
            };
            let a = state.audit(
                Some(org),
                "org.sdk_settings_changed",
                caller.actor(),
                Some(format!("org:{org}")),
                json!({ "from": view(&sdk), "to": view(&next) }),
                caller.client_addr.clone(),
            );
            state.store.set_sdk_settings(org, &next, &a).await?;
            sdk = next;
        }
    }
    Ok(Json(org_json(&o, &sdk)))
}
