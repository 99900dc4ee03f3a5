//! The caller's organization and its settings.

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
    json!({ "id": o.id, "name": o.name, "require2faForAdmins": o.require_2fa_admins, "createdAt": ms_to_rfc3339(o.created_at) })
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
}

/// `PATCH /api/v1/org {require2faForAdmins}` (admins).
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
    Ok(Json(org_json(&o)))
}
