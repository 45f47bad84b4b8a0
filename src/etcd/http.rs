//! HTTP endpoints of the client port, as etcd serves them: /health, /livez, /readyz,
//! /version and /metrics.
//!
//! Invariant: /health answers "true" only when a leader is known, a linearizable read
//! succeeds and no alarm is active, as etcd's health check does.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Json;

use crate::store::{Store, ETCD_CLUSTER_VERSION, ETCD_VERSION};

pub fn router(store: Store) -> axum::Router {
    axum::Router::new()
        .route("/health", get(health))
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/version", get(version))
        .route("/metrics", get(metrics))
        .with_state(store)
}

/// Why the member is unhealthy, or None.
async fn check(store: &Store) -> Option<String> {
    if store.is_draining() {
        return Some("SHUTTING DOWN".into());
    }
    if let Some(a) = store.alarms().first() {
        return Some(format!("ALARM {:?}", a.alarm).to_uppercase());
    }
    store.readiness().reason().map(str::to_owned)
}

async fn health(State(store): State<Store>) -> impl IntoResponse {
    let reason = check(&store).await;
    let healthy = reason.is_none();
    metrics::counter!("etcd_server_health_success",).increment(u64::from(healthy));
    metrics::counter!("etcd_server_health_failures").increment(u64::from(!healthy));
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        code,
        Json(
            serde_json::json!({"health": healthy.to_string(), "reason": reason.unwrap_or_default()}),
        ),
    )
}

async fn livez() -> impl IntoResponse {
    (StatusCode::OK, "ok\n")
}

async fn readyz(State(store): State<Store>) -> impl IntoResponse {
    match check(&store).await {
        None => (StatusCode::OK, "ok\n".to_owned()),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        ),
    }
}

async fn version() -> impl IntoResponse {
    Json(serde_json::json!({"etcdserver": ETCD_VERSION, "etcdcluster": ETCD_CLUSTER_VERSION}))
}

async fn metrics() -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        crate::metrics::render(),
    )
}
