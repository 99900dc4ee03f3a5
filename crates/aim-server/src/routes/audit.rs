//! Reading the organization's security events.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::error::Error;
use crate::rbac::Action;
use crate::routes::{ApiQuery, PageQuery, page_json};
use crate::state::{AppState, ms_to_rfc3339};

/// `GET /api/v1/audit/entries?after=&limit=` (admins, managers).
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<PageQuery>,
) -> Result<Json<Value>, Error> {
    caller.authorize(Action::AuditRead)?;
    let page = q.page();
    let rows = state.store.list_audit(caller.org_id(), page).await?;
    let last = rows.last().map(|r| r.id);
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.id,
                "at": ms_to_rfc3339(r.at),
                "eventType": r.event_type,
                "actor": r.actor,
                "subject": r.subject,
                "payload": serde_json::from_str::<Value>(&r.payload).unwrap_or(Value::Null),
                "clientAddr": r.client_addr,
            })
        })
        .collect();
    Ok(Json(page_json(items, last, page.clamped_limit() as usize)))
}
