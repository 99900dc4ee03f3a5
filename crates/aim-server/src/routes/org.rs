//! The caller's organization and its settings (2FA for admins, enforcement mode).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::error::{ApiError, Error};
use crate::rbac::Action;
use crate::routes::ApiJson;
use crate::state::{AppState, ms_to_rfc3339};

fn org_json(o: &aim_store::Organization) -> Value {
    json!({
        "id": o.id,
        "name": o.name,
        "require2faForAdmins": o.require_2fa_admins,
        "enforcementMode": o.enforcement_mode,
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
    Ok(Json(org_json(&o)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateOrg {
    #[serde(rename = "require2faForAdmins")]
    require_2fa_for_admins: Option<bool>,
    /// `strict` (a policy deny is a deny) or `monitoring` (a policy deny is allowed and alerted).
    enforcement_mode: Option<EnforcementMode>,
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

/// `PATCH /api/v1/org {require2faForAdmins?, enforcementMode?}` (admins). Each setting that
/// changes is written with its own audit record in one transaction (`org.settings_changed`,
/// `org.enforcement_mode_changed {from, to}`); an unchanged value writes nothing.
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
    Ok(Json(org_json(&o)))
}
