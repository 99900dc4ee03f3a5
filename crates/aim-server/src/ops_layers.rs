//! The operations middleware, as two layers: one around every request (client address,
//! metrics) and one around every matched route (route tag, per-address rate limit, cache sync
//! after a change). Each was its own `from_fn` layer; merged, a request pays for two (each
//! layer clones its inner service and boxes a future per request).
//!
//! Order (outermost first), as when they were separate layers:
//! 1. request layer: start the clock, resolve the client address ([`crate::client_ip`]), refuse
//!    a URI encoding U+0000, otherwise run the rest; count and time the answer under its route
//!    tag ([`crate::metrics`]);
//! 2. route layer: note the matched route; refuse over the address quota
//!    ([`crate::ratelimit::by_address`]) — the refusal is tagged and counted but runs nothing;
//!    otherwise run the handler and, when it may have changed cached state and succeeded,
//!    apply the invalidation log before answering ([`crate::authz::sync_after_change`]).

use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// Layer around every request (matched or not).
///
/// A URI whose path or query encodes U+0000 (`%00`; a URI cannot carry the raw byte) is refused
/// here with 400 for every route: no id, name or filter of the API holds the character, and
/// PostgreSQL text cannot, so a lookup with it failed with 500 (see `routes::NUL_REFUSED` for
/// bodies).
pub async fn request(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    crate::client_ip::resolve(&state, &mut req);
    let resp = if encodes_nul(req.uri()) {
        crate::error::ApiError::bad_request("the URI must not contain the character U+0000 (%00)")
            .into_response()
    } else {
        next.run(req).await
    };
    crate::metrics::track(&state, method.as_str(), &resp, start);
    resp
}

/// Layer around every matched route.
pub async fn route(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = crate::metrics::matched_route(&req);
    let mut resp = match crate::ratelimit::by_address(&state, &req) {
        Some(refusal) => refusal,
        None => {
            let change = crate::authz::may_change(req.method(), req.uri().path());
            let resp = next.run(req).await;
            crate::authz::sync_after_change(&state, change, resp.status().is_success()).await;
            resp
        }
    };
    crate::metrics::tag_route(&mut resp, route);
    resp
}

/// Whether the path or query of `uri` percent-encodes U+0000.
fn encodes_nul(uri: &axum::http::Uri) -> bool {
    uri.path().contains("%00") || uri.query().is_some_and(|q| q.contains("%00"))
}
