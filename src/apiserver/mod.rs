//! The Kubernetes API over HTTPS: the filter chain every request passes, in
//! kube-apiserver's order, and the routing to discovery, health and resource handlers.
//!
//! Invariant: `handle` is the one entry point; each layer below is one commented step,
//! and a request refused by a layer never reaches the next.

pub mod audit;
pub mod discovery;
pub mod handlers;
pub mod managed;
pub mod negotiate;
pub mod patch;
pub mod protobuf;
pub mod openapi;
pub mod query;
pub mod request_info;
pub mod reviews;
pub mod status;
pub mod strategic;
pub mod subresources;
pub mod table;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::authn::{self, Credentials};
use crate::authz::{self, Decision};
use crate::registry::store::{Api, Ctx};
use crate::server::{PeerCertificates, Shutdown};
use status::{ApiError, Subject};

/// The Kubernetes version this server speaks (kubectl checks the skew).
pub const KUBE_VERSION: (&str, &str, &str) = ("1", "33", "v1.33.0");

/// What readiness and liveness look at.
#[async_trait::async_trait]
pub trait Health: Send + Sync + 'static {
    /// Named checks for /readyz, each None when passing or the reason it fails.
    async fn ready_checks(&self) -> Vec<(&'static str, Option<String>)>;
}

/// The API server's state, shared by every request.
pub struct ApiServer {
    pub api: Api,
    pub authn: authn::Chain,
    pub authz: authz::Chain,
    pub read_only: Semaphore,
    pub mutating: Semaphore,
    pub request_timeout: Duration,
    pub server_address: String,
    pub health: Arc<dyn Health>,
    pub shutdown: Shutdown,
    /// Extra non-resource routes (OpenAPI, OIDC discovery), tried before 404.
    pub extra: Option<axum::Router>,
    /// `--audit-log-path`: one audit.k8s.io/v1 Event per request.
    pub audit: Option<Arc<audit::AuditLog>>,
}

/// The router serving everything through the filter chain.
pub fn router(server: Arc<ApiServer>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(server)
}

fn is_long_running(info: &request_info::RequestInfo) -> bool {
    info.verb == "watch"
        || matches!(
            info.subresource.as_str(),
            "exec" | "attach" | "portforward" | "proxy" | "log"
        )
}

/// Paths anonymous users may read: health, version, OIDC discovery and API discovery
/// documents (/api, /api/v1, /apis, /apis/<group>, /apis/<group>/<version>).
fn is_public_path(path: &str) -> bool {
    let path = path.trim_end_matches('/');
    if matches!(
        path,
        "/healthz"
            | "/livez"
            | "/readyz"
            | "/version"
            | "/.well-known/openid-configuration"
            | "/openid/v1/jwks"
    ) || path.starts_with("/healthz/")
        || path.starts_with("/livez/")
        || path.starts_with("/readyz/")
    {
        return true;
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.first() {
        Some(&"api") => segments.len() <= 2,
        Some(&"apis") => segments.len() <= 3,
        _ => false,
    }
}

/// The filter chain, in kube-apiserver's order (DefaultBuildHandlerChain).
async fn handle(State(s): State<Arc<ApiServer>>, req: Request) -> Response {
    let started = Instant::now();
    // 1. Request info: verb, group, version, namespace, resource, name.
    let info = request_info::parse(req.method(), req.uri().path(), req.uri().query());
    let long_running = is_long_running(&info);
    let running = long_running.then(|| LongRunningGuard::new(&info));
    let audit_id = crate::registry::meta::new_uid();
    // What the audit event needs from the request, taken only when there is a log.
    let arrival = s.audit.as_ref().map(|_| audit::Arrival::of(&req));
    let who = std::sync::OnceLock::new();
    // 2. Panic recovery: a panic below becomes a 500 Status; the process lives on.
    let chained = chain(s.clone(), info.clone(), req, long_running, &who);
    let mut resp = std::panic::AssertUnwindSafe(chained)
        .catch_unwind()
        .await
        .unwrap_or_else(|_| {
            tracing::error!(path = %info.path, "handler panicked");
            ApiError::internal("an unexpected panic occurred while handling the request")
                .into_response()
        });
    if let Ok(v) = http::HeaderValue::from_str(&audit_id) {
        resp.headers_mut().insert("audit-id", v);
    }
    if let (Some(log), Some(arrival)) = (&s.audit, &arrival) {
        log.write(&audit::event(&audit::Record {
            audit_id: &audit_id,
            info: &info,
            arrival,
            user: who.get(),
            code: resp.status().as_u16(),
            long_running,
        }));
    }
    observe(
        &info,
        resp.status().as_u16(),
        started.elapsed(),
        long_running,
        axum::body::HttpBody::size_hint(resp.body()).exact(),
    );
    match running {
        Some(guard) if resp.status() != http::StatusCode::SWITCHING_PROTOCOLS => {
            // A watch runs as long as its body streams: count it until the body ends.
            resp.map(|body| {
                Body::from_stream(futures::StreamExt::map(body.into_data_stream(), move |c| {
                    let _counted = &guard;
                    c
                }))
            })
        }
        _ => resp,
    }
}

async fn chain(
    s: Arc<ApiServer>,
    info: request_info::RequestInfo,
    req: Request,
    long_running: bool,
    who: &std::sync::OnceLock<crate::authn::UserInfo>,
) -> Response {
    // 3. In-flight limits (--max-requests-inflight / --max-mutating-requests-inflight):
    //    429 with Retry-After when saturated; long-running requests are exempt.
    let mutating = matches!(
        info.verb.as_str(),
        "create" | "update" | "patch" | "delete" | "deletecollection"
    );
    let _permit = if long_running {
        None
    } else {
        let sem = if mutating { &s.mutating } else { &s.read_only };
        match sem.try_acquire() {
            Ok(p) => Some(p),
            Err(_) => {
                metrics::counter!("apiserver_dropped_requests_total", "request_kind" => if mutating { "mutating" } else { "readOnly" }).increment(1);
                return ApiError::too_many_requests(1).into_response();
            }
        }
    };
    let kind = if mutating { "mutating" } else { "readOnly" };
    metrics::gauge!("apiserver_current_inflight_requests", "request_kind" => kind).increment(1.0);
    let _inflight = InflightGuard(kind);
    // 4. Authentication: client certificate, bearer token, or anonymous.
    let certs = req.extensions().get::<PeerCertificates>().cloned();
    let bearer = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let authn_started = Instant::now();
    let user = match s
        .authn
        .authenticate_request(&Credentials {
            certs: certs.as_ref(),
            bearer: bearer.as_deref(),
        })
        .await
    {
        Ok(Some(u)) => {
            observe_authn("success", authn_started);
            u
        }
        Ok(None) => {
            observe_authn("failure", authn_started);
            return ApiError::unauthorized().into_response();
        }
        Err(_) => {
            observe_authn("error", authn_started);
            return ApiError::unauthorized().into_response();
        }
    };
    // 5. Audit: who made the request; the event is written once the response starts
    //    (`audit.rs`).
    if s.audit.is_some() {
        let _ = who.set(user.clone());
    }
    tracing::debug!(user = %user.name, verb = %info.verb, path = %info.path, "request received");
    // 6. Authorization: anonymous users see public information only; everyone else
    //    goes through the authorizer chain.
    let decision = if user.name == "system:anonymous" && !is_public_path(&info.path) {
        Decision::Deny(String::new())
    } else {
        s.authz.authorize(&user, &info)
    };
    let denied = match &decision {
        Decision::Allow => None,
        Decision::Deny(why) => Some(why.as_str()),
        Decision::NoOpinion => Some(""),
    };
    if let Some(why) = denied {
        if info.is_resource_request {
            let subject = Subject::new(&info.api_group, &info.resource, &info.name);
            return ApiError::forbidden(&user.name, &info.verb, &subject, &info.namespace, why)
                .into_response();
        }
        return ApiError::forbidden_message(format!(
            "forbidden: User \"{}\" cannot {} path \"{}\"",
            user.name, info.verb, info.path
        ))
        .into_response();
    }
    // 7. Timeout for requests that are not long-running (--request-timeout).
    let dispatch = dispatch(s.clone(), info, req, user);
    if long_running {
        dispatch.await
    } else {
        match tokio::time::timeout(s.request_timeout, dispatch).await {
            Ok(r) => r,
            Err(_) => ApiError::timeout(
                "request did not complete within requested timeout - context deadline exceeded",
            )
            .into_response(),
        }
    }
}

struct InflightGuard(&'static str);

impl Drop for InflightGuard {
    fn drop(&mut self) {
        metrics::gauge!("apiserver_current_inflight_requests", "request_kind" => self.0)
            .decrement(1.0);
    }
}

/// Counts one long-running request in `apiserver_longrunning_requests` while it lives.
struct LongRunningGuard(metrics::Gauge);

impl LongRunningGuard {
    fn new(info: &request_info::RequestInfo) -> Self {
        let gauge = metrics::gauge!(
            "apiserver_longrunning_requests",
            "verb" => reported_verb(info),
            "group" => info.api_group.clone(),
            "version" => info.api_version.clone(),
            "resource" => info.resource.clone(),
            "subresource" => info.subresource.clone(),
            "scope" => scope(info),
            "component" => "apiserver"
        );
        gauge.increment(1.0);
        LongRunningGuard(gauge)
    }
}

impl Drop for LongRunningGuard {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// `authentication_attempts` and `authentication_duration_seconds` by result.
fn observe_authn(result: &'static str, started: Instant) {
    metrics::counter!("authentication_attempts", "result" => result).increment(1);
    metrics::histogram!("authentication_duration_seconds", "result" => result)
        .record(started.elapsed().as_secs_f64());
}

/// The verb label kube-apiserver's metrics report: HTTP-style for writes.
fn reported_verb(info: &request_info::RequestInfo) -> String {
    match info.verb.as_str() {
        "create" => "POST".to_owned(),
        "update" => "PUT".to_owned(),
        "delete" | "deletecollection" => "DELETE".to_owned(),
        "proxy" | "connect" => "CONNECT".to_owned(),
        v => v.to_uppercase(),
    }
}

/// The scope label of kube-apiserver's metrics.
fn scope(info: &request_info::RequestInfo) -> &'static str {
    if !info.is_resource_request {
        ""
    } else if !info.name.is_empty() {
        "resource"
    } else if !info.namespace.is_empty() {
        "namespace"
    } else {
        "cluster"
    }
}

fn observe(
    info: &request_info::RequestInfo,
    code: u16,
    elapsed: Duration,
    long_running: bool,
    size: Option<u64>,
) {
    let verb = reported_verb(info);
    let scope = scope(info);
    // Upstream records response sizes of reads only.
    if let (Some(size), "GET" | "LIST") = (size, verb.as_str()) {
        metrics::histogram!(
            "apiserver_response_sizes",
            "verb" => verb.clone(),
            "group" => info.api_group.clone(),
            "version" => info.api_version.clone(),
            "resource" => info.resource.clone(),
            "subresource" => info.subresource.clone(),
            "scope" => scope,
            "component" => "apiserver"
        )
        .record(size as f64);
    }
    metrics::counter!(
        "apiserver_request_total",
        "verb" => verb.clone(),
        "group" => info.api_group.clone(),
        "version" => info.api_version.clone(),
        "resource" => info.resource.clone(),
        "subresource" => info.subresource.clone(),
        "scope" => scope,
        "component" => "apiserver",
        "code" => code.to_string()
    )
    .increment(1);
    if !long_running {
        metrics::histogram!(
            "apiserver_request_duration_seconds",
            "verb" => verb,
            "group" => info.api_group.clone(),
            "version" => info.api_version.clone(),
            "resource" => info.resource.clone(),
            "subresource" => info.subresource.clone(),
            "scope" => scope,
            "component" => "apiserver"
        )
        .record(elapsed.as_secs_f64());
    }
}

async fn dispatch(
    s: Arc<ApiServer>,
    info: request_info::RequestInfo,
    req: Request,
    user: authn::UserInfo,
) -> Response {
    let (parts, body) = req.into_parts();
    let query = query::Query::parse(parts.uri.query());
    if !info.is_resource_request {
        return non_resource(&s, &info, &parts, Request::from_parts(parts.clone(), body)).await;
    }
    let Some(res) = s
        .api
        .registry
        .lookup(&info.api_group, &info.api_version, &info.resource)
    else {
        return ApiError::not_found_path().into_response();
    };
    let body = match axum::body::to_bytes(body, negotiate::MAX_BODY + 1).await {
        Ok(b) if b.len() <= negotiate::MAX_BODY => b,
        Ok(_) | Err(_) => {
            return ApiError::too_large("Request entity too large: limit is 3145728")
                .into_response();
        }
    };
    let mut ctx = Ctx::new(user);
    let prep = (|| -> Result<(), ApiError> {
        ctx.dry_run = query.dry_run()?;
        ctx.field_validation = query.field_validation()?;
        ctx.field_manager = query.get("fieldManager").unwrap_or("").to_owned();
        ctx.applying = parts.method == http::Method::PATCH
            && negotiate::patch_type(&parts.headers).ok() == Some(negotiate::BodyType::ApplyPatch);
        ctx.force = query.get("force") == Some("true");
        Ok(())
    })();
    if let Err(e) = prep {
        return e.into_response();
    }
    if ctx.field_manager.is_empty() {
        ctx.field_manager = parts
            .headers
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .and_then(|ua| ua.split('/').next())
            .unwrap_or("unknown")
            .to_owned();
    }
    let request = handlers::Request {
        info: &info,
        method: &parts.method,
        headers: &parts.headers,
        query: &query,
        body,
        ctx,
        shutdown: s.shutdown.clone(),
    };
    match handlers::serve(&s, res, request).await {
        Ok(r) => r,
        Err(e) => negotiate::error_response(&e, &parts.headers),
    }
}

fn json_response(body: &Value) -> Response {
    let mut r = (
        http::StatusCode::OK,
        serde_json::to_vec(body).unwrap_or_default(),
    )
        .into_response();
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

async fn non_resource(
    s: &ApiServer,
    info: &request_info::RequestInfo,
    parts: &http::request::Parts,
    req: Request<Body>,
) -> Response {
    let path = info.path.trim_end_matches('/');
    let accept = parts
        .headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    match path {
        "/version" => json_response(&version_info()),
        "/api" | "/apis" => {
            let legacy = path == "/api";
            if let Some(v) = discovery::wants_aggregated(accept) {
                let doc = discovery::aggregated(
                    &s.api.registry,
                    legacy,
                    &format!("apidiscovery.k8s.io/{v}"),
                );
                let mut r = json_response(&doc);
                if let Ok(ct) = http::HeaderValue::from_str(&format!(
                    "application/json;g=apidiscovery.k8s.io;v={v};as=APIGroupDiscoveryList"
                )) {
                    r.headers_mut().insert(http::header::CONTENT_TYPE, ct);
                }
                r.headers_mut()
                    .insert(http::header::VARY, http::HeaderValue::from_static("Accept"));
                return r;
            }
            if legacy {
                json_response(&discovery::api_versions(&s.server_address))
            } else {
                json_response(&discovery::api_group_list(&s.api.registry))
            }
        }
        "/healthz" | "/livez" | "/readyz" => health(s, path, parts.uri.query()).await,
        _ if path.starts_with("/healthz/")
            || path.starts_with("/livez/")
            || path.starts_with("/readyz/") =>
        {
            health(s, path, parts.uri.query()).await
        }
        _ if !info.api_prefix.is_empty() => {
            let doc = if info.api_version.is_empty() {
                discovery::api_group(&s.api.registry, &info.api_group)
            } else {
                discovery::api_resource_list(&s.api.registry, &info.api_group, &info.api_version)
            };
            match doc {
                Some(d) => json_response(&d),
                None => ApiError::not_found_path().into_response(),
            }
        }
        "/metrics" => {
            let mut r = (http::StatusCode::OK, crate::metrics::render()).into_response();
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            r
        }
        _ => match &s.extra {
            Some(router) => {
                let resp = tower::ServiceExt::oneshot(router.clone(), req).await;
                match resp {
                    Ok(r) => r,
                    Err(never) => match never {},
                }
            }
            None => ApiError::not_found_path().into_response(),
        },
    }
}

/// /version
pub fn version_info() -> Value {
    json!({
        "major": KUBE_VERSION.0,
        "minor": KUBE_VERSION.1,
        "emulationMajor": KUBE_VERSION.0,
        "emulationMinor": KUBE_VERSION.1,
        "minCompatibilityMajor": KUBE_VERSION.0,
        "minCompatibilityMinor": "32",
        "gitVersion": KUBE_VERSION.2,
        "gitCommit": env!("CARGO_PKG_VERSION"),
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "kuberaft (rust)",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, if std::env::consts::ARCH == "x86_64" { "amd64" } else { std::env::consts::ARCH }),
    })
}

/// /healthz, /livez, /readyz and their per-check paths, with `?verbose` and
/// `?exclude=`, as upstream answers them.
async fn health(s: &ApiServer, path: &str, query: Option<&str>) -> Response {
    let q = query::Query::parse(query);
    let verbose = q.0.contains_key("verbose");
    let excluded: Vec<String> = query
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.strip_prefix("exclude="))
        .map(str::to_owned)
        .collect();
    let (base, only) = match path.split_once('/').map(|_| path[1..].split_once('/')) {
        Some(Some((b, c))) => (b, Some(c)),
        _ => (path.trim_start_matches('/'), None),
    };
    let mut checks: Vec<(&'static str, Option<String>)> = vec![("ping", None), ("log", None)];
    if base != "livez" {
        checks.extend(s.health.ready_checks().await);
    }
    if base != "readyz" {
        checks.retain(|(name, _)| *name != "shutdown");
    }
    if let Some(c) = only {
        return match checks.iter().find(|(n, _)| *n == c) {
            None => ApiError::not_found_path().into_response(),
            Some((_, None)) => (http::StatusCode::OK, "ok").into_response(),
            Some((n, Some(why))) => (
                http::StatusCode::INTERNAL_SERVER_ERROR,
                format!("internal server error: {n} failed: {why}\n"),
            )
                .into_response(),
        };
    }
    let mut text = String::new();
    let mut failed = false;
    for (name, result) in &checks {
        if excluded.iter().any(|e| e == name) {
            text.push_str(&format!("[+]{name} excluded: ok\n"));
            continue;
        }
        match result {
            None => text.push_str(&format!("[+]{name} ok\n")),
            Some(why) => {
                failed = true;
                text.push_str(&format!("[-]{name} failed: reason withheld\n"));
                tracing::debug!(check = name, reason = %why, "health check failed");
            }
        }
    }
    if failed {
        text.push_str(&format!("{base} check failed\n"));
        return (http::StatusCode::INTERNAL_SERVER_ERROR, text).into_response();
    }
    if verbose {
        text.push_str(&format!("{base} check passed\n"));
        (http::StatusCode::OK, text).into_response()
    } else {
        (http::StatusCode::OK, "ok").into_response()
    }
}
