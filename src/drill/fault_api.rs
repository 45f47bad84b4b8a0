//! The replica's side of the drills: an HTTP switch on the etcd client port that
//! cuts the member's peer traffic (`POST /debug/fault/peer-isolation?on=true|false`,
//! `GET` shows the state), served only by members started with the hidden flag
//! `--enable-fault-injection`.
//!
//! Invariant: without the flag the route does not exist (404), so a production member
//! cannot be partitioned through its client port.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Json;

use crate::raft::fault::FaultSwitch;

/// The path of the switch.
pub const PEER_ISOLATION_PATH: &str = "/debug/fault/peer-isolation";

/// Routes to merge into the client port's router when fault injection is enabled.
pub fn router(fault: FaultSwitch) -> axum::Router {
    axum::Router::new()
        .route(PEER_ISOLATION_PATH, get(show).post(set))
        .with_state(fault)
}

async fn show(State(fault): State<FaultSwitch>) -> impl IntoResponse {
    Json(serde_json::json!({"isolated": fault.isolated()}))
}

async fn set(
    State(fault): State<FaultSwitch>,
    Query(query): Query<HashMap<String, String>>,
) -> impl IntoResponse {
    let on = match query.get("on").map(String::as_str) {
        Some("true") => true,
        Some("false") => false,
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                Json(serde_json::json!({"error": "on must be true or false"})),
            )
        }
    };
    fault.set_isolated(on);
    (
        StatusCode::OK,
        Json(serde_json::json!({"isolated": fault.isolated()})),
    )
}
