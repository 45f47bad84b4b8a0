//! A service account's `token` subresource: the TokenRequest API (POST
//! serviceaccounts/{name}/token with an authentication.k8s.io/v1 TokenRequest), which
//! `kubectl create token` calls. It returns a signed, audience-scoped JWT for the
//! service account, optionally bound to a pod, secret or node.
//!
//! Invariant: a token is issued only for a service account (and bound object) that
//! exists now, with the UID in the token; nothing is written to storage.

use axum::response::Response;
use k8s_openapi::api::authentication::v1::TokenRequest;
use serde_json::{json, Value};

use crate::apiserver::handlers::Request;
use crate::apiserver::negotiate::{self, Output};
use crate::apiserver::status::{invalid_value, ApiError, Subject};
use crate::apiserver::ApiServer;
use crate::authn::service_account::{
    now_unix, Binding, ObjectRef, EXTENDED_EXPIRATION_SECONDS, WARN_ONLY_EXPIRATION_SECONDS,
};
use crate::registry::store::{Api, FieldValidation};
use crate::registry::typed::roundtrip;
use crate::registry::{meta, Resource};

const GROUP: &str = "authentication.k8s.io";
const KIND: &str = "TokenRequest";
/// Upstream's defaulted and minimum token lifetimes.
const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
const MIN_EXPIRATION_SECONDS: i64 = 600;

/// POST serviceaccounts/{name}/token.
pub async fn create(
    server: &ApiServer,
    res: &Resource,
    ns: Option<&str>,
    req: Request<'_>,
    out: &Output,
) -> Result<Response, ApiError> {
    if req.info.verb != "create" {
        return Err(ApiError::method_not_allowed(req.method.as_str()));
    }
    // Without an issuer the subresource is not served (as upstream).
    let Some(sas) = server.authn.service_accounts() else {
        return Err(ApiError::not_found_path());
    };
    let namespace = ns.ok_or_else(|| ApiError::bad_request("namespace is required"))?;
    let name = req.info.name.as_str();
    let mut request = decode(&req)?;

    // The body's name and namespace, when set, must be the service account's.
    let body_name = meta::name(&request).to_owned();
    if !body_name.is_empty() && body_name != name {
        return Err(ApiError::invalid(
            KIND,
            GROUP,
            name,
            vec![invalid_value(
                "metadata.name",
                &json!(body_name),
                "must match the service account name if specified",
            )],
        ));
    }
    let body_ns = meta::namespace(&request).to_owned();
    if !body_ns.is_empty() && body_ns != namespace {
        return Err(ApiError::invalid(
            KIND,
            GROUP,
            name,
            vec![invalid_value(
                "metadata.namespace",
                &json!(body_ns),
                "must match the service account namespace if specified",
            )],
        ));
    }

    let api = &server.api;
    let sa = api.get(res, "v1", Some(namespace), name, "").await?;
    let mut audiences = strings(request.pointer("/spec/audiences"));
    if audiences.is_empty() {
        audiences = sas.api_audiences().to_vec();
    }
    let now = now_unix();
    meta::set(&mut request, "name", json!(meta::name(&sa)));
    meta::set(&mut request, "namespace", json!(meta::namespace(&sa)));
    meta::set(&mut request, "creationTimestamp", json!(rfc3339(now)));
    let mut expiration = request
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(DEFAULT_EXPIRATION_SECONDS);
    let mut causes = Vec::new();
    if expiration < MIN_EXPIRATION_SECONDS {
        causes.push(invalid_value(
            "spec.expirationSeconds",
            &json!(expiration),
            "may not specify a duration less than 10 minutes",
        ));
    }
    if expiration > 1 << 32 {
        causes.push(invalid_value(
            "spec.expirationSeconds",
            &json!(expiration),
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid(KIND, GROUP, "", causes));
    }

    let binding = bind(
        api,
        namespace,
        name,
        request.pointer("/spec/boundObjectRef"),
    )
    .await?;

    let max = sas.max_expiration_seconds();
    if max > 0 && expiration > max {
        req.ctx.warn(format!(
            "requested expiration of {expiration} seconds shortened to {max} seconds"
        ));
        expiration = max;
    }
    // A kubelet's projected token (pod-bound, for the API audiences, asking 3607s)
    // lives a year and only warns after the requested time.
    let mut lifetime = expiration;
    let mut warn_after = 0;
    if sas.extend_expiration()
        && binding.pod.is_some()
        && expiration == WARN_ONLY_EXPIRATION_SECONDS
        && audiences.iter().all(|a| sas.api_audiences().contains(a))
    {
        warn_after = expiration;
        lifetime = EXTENDED_EXPIRATION_SECONDS;
    }
    let issued = sas
        .issue(&sa, &binding, lifetime, warn_after, &audiences, now)
        .map_err(|e| ApiError::internal(format!("failed to generate token: {e}")))?;
    tracing::debug!(
        serviceaccount = %format!("{namespace}/{name}"),
        credential_id = %format!("JTI={}", issued.jti),
        "issued service account token"
    );
    if let Some(spec) = request.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("audiences".into(), json!(audiences));
        spec.insert("expirationSeconds".into(), json!(expiration));
    }
    if let Some(m) = request.as_object_mut() {
        m.insert(
            "status".into(),
            json!({"token": issued.token, "expirationTimestamp": rfc3339(now + expiration)}),
        );
    }
    Ok(negotiate::respond(
        201,
        &request,
        out,
        req.headers,
        &req.ctx.take_warnings(),
    ))
}

/// The request body as an authentication.k8s.io/v1 TokenRequest (status dropped,
/// unknown fields handled per `fieldValidation`).
fn decode(req: &Request<'_>) -> Result<Value, ApiError> {
    let ty = negotiate::body_type(req.headers)?;
    let mut body = negotiate::parse_body(&req.body, ty)?;
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the object provided is not a JSON object",
        ));
    }
    let want = format!("{GROUP}/v1");
    let (av, kind) = (
        meta::api_version(&body).to_owned(),
        meta::kind(&body).to_owned(),
    );
    if (!av.is_empty() && av != want) || (!kind.is_empty() && kind != KIND) {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version ({want})"
        )));
    }
    if let Some(m) = body.as_object_mut() {
        m.remove("status");
    }
    meta::set_type(&mut body, &want, KIND);
    if body.get("spec").is_none_or(Value::is_null) {
        if let Some(m) = body.as_object_mut() {
            m.insert("spec".into(), json!({}));
        }
    }
    let (obj, unknown) = roundtrip::<TokenRequest>(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}")))?;
    match req.ctx.field_validation {
        FieldValidation::Strict if !unknown.is_empty() => {
            let list: Vec<String> = unknown
                .iter()
                .map(|u| format!("unknown field \"{u}\""))
                .collect();
            return Err(ApiError::bad_request(format!(
                "strict decoding error: {}",
                list.join(", ")
            )));
        }
        FieldValidation::Warn => {
            for u in &unknown {
                req.ctx.warn(format!("unknown field \"{u}\""));
            }
        }
        _ => {}
    }
    Ok(obj)
}

/// Resolves `spec.boundObjectRef` to the objects the token names.
async fn bind(
    api: &Api,
    namespace: &str,
    sa_name: &str,
    bound: Option<&Value>,
) -> Result<Binding, ApiError> {
    let Some(r) = bound.filter(|v| !v.is_null()) else {
        return Ok(Binding::default());
    };
    let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let (api_version, kind, name, want_uid) = (s("apiVersion"), s("kind"), s("name"), s("uid"));
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g.to_owned(), v.to_owned()),
        None => (String::new(), api_version.clone()),
    };
    let mut binding = Binding::default();
    let uid = match (group.as_str(), kind.as_str()) {
        ("", "Pod") => {
            let pod = get_core(api, "pods", Some(namespace), &name, "").await?;
            let runs_as = pod
                .pointer("/spec/serviceAccountName")
                .and_then(Value::as_str)
                .unwrap_or("");
            if runs_as != sa_name {
                return Err(ApiError::bad_request(format!(
                    "cannot bind token for serviceaccount {sa_name:?} to pod running with different serviceaccount name."
                )));
            }
            // The node the pod runs on goes into the token too (its UID when known).
            let node_name = pod
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !node_name.is_empty() {
                let node = match get_core(api, "nodes", None, node_name, "0").await {
                    Ok(n) => Ok(n),
                    Err(_) => get_core(api, "nodes", None, node_name, "").await,
                };
                binding.node = Some(match node {
                    Ok(n) => ObjectRef::of(&n),
                    Err(e) if e.code == 404 => ObjectRef {
                        name: node_name.to_owned(),
                        uid: String::new(),
                    },
                    Err(e) => return Err(ApiError::internal(e.message)),
                });
            }
            let r = ObjectRef::of(&pod);
            binding.pod = Some(r.clone());
            r.uid
        }
        ("", "Node") => {
            let node = get_core(api, "nodes", None, &name, "").await?;
            let r = ObjectRef::of(&node);
            binding.node = Some(r.clone());
            r.uid
        }
        ("", "Secret") => {
            let secret = get_core(api, "secrets", Some(namespace), &name, "").await?;
            let r = ObjectRef::of(&secret);
            binding.secret = Some(r.clone());
            r.uid
        }
        _ => {
            return Err(ApiError::bad_request(format!(
                "cannot bind token to object of type {group}/{version}, Kind={kind}"
            )))
        }
    };
    if !want_uid.is_empty() && want_uid != uid {
        return Err(ApiError::conflict(
            &Subject::new(&group, &kind, &name),
            &format!(
                "the UID in the bound object reference ({want_uid}) does not match the UID in record. The object might have been deleted and then recreated"
            ),
        ));
    }
    Ok(binding)
}

async fn get_core(
    api: &Api,
    resource: &str,
    ns: Option<&str>,
    name: &str,
    resource_version: &str,
) -> Result<Value, ApiError> {
    let res = api
        .registry
        .lookup("", "v1", resource)
        .ok_or_else(|| ApiError::not_found(&Subject::new("", resource, name)))?;
    api.get(&res, "v1", ns, name, resource_version).await
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}
