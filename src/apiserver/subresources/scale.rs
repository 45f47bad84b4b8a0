//! The `scale` subresource of deployments, replicasets, statefulsets and
//! replicationcontrollers: an autoscaling/v1 `Scale` view of the parent (its
//! `spec.replicas`, `status.replicas` and pod selector as a label-selector string).
//!
//! Invariant: a PUT or PATCH changes only the parent's `spec.replicas`, through the
//! generic store's read-modify-write (`Api::modify`), so it is a compare-and-swap:
//! a Scale carrying a stale `metadata.resourceVersion` is a 409 and nothing is
//! written; the parent's own validation and hooks run as for any update.

use axum::response::Response;
use serde_json::{json, Map, Value};

use crate::apiserver::handlers::Request;
use crate::apiserver::negotiate::{self, BodyType, Output};
use crate::apiserver::status::{invalid_value, ApiError, Subject};
use crate::apiserver::{patch, strategic};
use crate::registry::kinds::apps::label_selector_string;
use crate::registry::store::{Api, Part};
use crate::registry::{meta, Resource};

/// How a parent kind keeps its pod selector.
#[derive(Clone, Copy)]
enum SelectorShape {
    /// metav1.LabelSelector (apps/v1 workloads).
    LabelSelector,
    /// A plain label map (core/v1 ReplicationController).
    Map,
}

fn shape(res: &Resource) -> Option<SelectorShape> {
    match (res.group, res.resource) {
        ("apps", "deployments" | "replicasets" | "statefulsets") => {
            Some(SelectorShape::LabelSelector)
        }
        ("", "replicationcontrollers") => Some(SelectorShape::Map),
        _ => None,
    }
}

/// The Scale of a parent object (upstream's scaleFrom<Kind>).
fn scale_of(shape: SelectorShape, parent: &Value) -> Value {
    let mut md = Map::new();
    for f in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = meta::metadata(parent)
            .and_then(|m| m.get(f))
            .filter(|v| !v.is_null())
        {
            md.insert(f.into(), v.clone());
        }
    }
    let replicas = parent
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let mut spec = Map::new();
    if replicas != 0 {
        spec.insert("replicas".into(), json!(replicas));
    }
    let selector = match (shape, parent.pointer("/spec/selector")) {
        (_, None | Some(Value::Null)) => String::new(),
        (SelectorShape::LabelSelector, Some(sel)) => label_selector_string(sel),
        (SelectorShape::Map, Some(sel)) => {
            let parts: Vec<String> = sel
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect();
            parts.join(",")
        }
    };
    let mut status = Map::new();
    status.insert(
        "replicas".into(),
        json!(parent
            .pointer("/status/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(0)),
    );
    if !selector.is_empty() {
        status.insert("selector".into(), json!(selector));
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": Value::Object(md),
        "spec": Value::Object(spec),
        "status": Value::Object(status),
    })
}

/// Type-checks a Scale sent by a client: autoscaling/v1 `Scale` (or untyped).
fn check_scale(body: &Value) -> Result<(), ApiError> {
    let (av, kind) = (meta::api_version(body), meta::kind(body));
    if (!av.is_empty() && av != "autoscaling/v1") || (!kind.is_empty() && kind != "Scale") {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({av}) does not match the expected API version (autoscaling/v1)"
        )));
    }
    crate::registry::typed::roundtrip::<k8s_openapi::api::autoscaling::v1::Scale>(body.clone())
        .map(|_| ())
        .map_err(|e| ApiError::bad_request(format!("error decoding request body: {e}")))
}

/// ValidateScale: replicas must not be negative.
fn validate_scale(scale: &Value, name: &str) -> Result<i64, ApiError> {
    let replicas = scale
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    if replicas < 0 {
        return Err(ApiError::invalid(
            "Scale",
            "autoscaling",
            name,
            vec![invalid_value(
                "spec.replicas",
                &json!(replicas),
                "must be greater than or equal to 0",
            )],
        ));
    }
    Ok(replicas)
}

/// What a write does to the current Scale.
enum Change {
    Replace(Value),
    JsonPatch(json_patch::Patch),
    MergePatch(Value),
    StrategicPatch(Value),
}

impl Change {
    fn apply(&self, name: &str, mut scale: Value) -> Result<Value, ApiError> {
        match self {
            Change::Replace(body) => return Ok(body.clone()),
            Change::JsonPatch(p) => {
                // A patch does not pin the revision unless it sets one.
                meta::remove(&mut scale, "resourceVersion");
                json_patch::patch(&mut scale, p).map_err(|e| {
                    ApiError::invalid(
                        "Scale",
                        "autoscaling",
                        name,
                        vec![crate::apiserver::status::Cause {
                            reason: "FieldValueInvalid",
                            message: e.to_string(),
                            field: String::new(),
                        }],
                    )
                })?;
            }
            Change::MergePatch(p) => {
                meta::remove(&mut scale, "resourceVersion");
                patch::merge_patch(&mut scale, p);
            }
            Change::StrategicPatch(p) => {
                meta::remove(&mut scale, "resourceVersion");
                strategic::apply(&mut scale, p, "autoscaling", "v1", "Scale")
                    .map_err(ApiError::bad_request)?;
            }
        }
        check_scale(&scale)?;
        Ok(scale)
    }
}

fn change_of(req: &Request<'_>) -> Result<Change, ApiError> {
    if req.info.verb == "update" {
        let body = negotiate::parse_body(&req.body, negotiate::body_type(req.headers)?)?;
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the object provided is not a JSON object",
            ));
        }
        check_scale(&body)?;
        let name = meta::name(&body);
        if !name.is_empty() && name != req.info.name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({name}) does not match the name on the URL ({})",
                req.info.name
            )));
        }
        let ns = meta::namespace(&body);
        if !ns.is_empty() && ns != req.info.namespace {
            return Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            ));
        }
        return Ok(Change::Replace(body));
    }
    let ty = negotiate::patch_type(req.headers)?;
    if req.body.len() > negotiate::MAX_BODY {
        return Err(ApiError::too_large(
            "Request entity too large: limit is 3145728",
        ));
    }
    let doc = match ty {
        BodyType::ApplyPatch => negotiate::parse_body(&req.body, BodyType::Yaml)?,
        _ => negotiate::parse_body(&req.body, BodyType::Json)?,
    };
    match ty {
        BodyType::JsonPatch => serde_json::from_value(doc)
            .map(Change::JsonPatch)
            .map_err(|e| {
                ApiError::bad_request(format!(
                    "the server rejected our request due to an error in our request: {e}"
                ))
            }),
        _ if !doc.is_object() => Err(ApiError::bad_request("the patch is not a JSON object")),
        BodyType::MergePatch => Ok(Change::MergePatch(doc)),
        _ => Ok(Change::StrategicPatch(doc)),
    }
}

pub async fn serve(
    api: &Api,
    res: &Resource,
    version: &str,
    ns: Option<&str>,
    req: Request<'_>,
    out: &Output,
) -> Result<Response, ApiError> {
    let Some(shape) = shape(res) else {
        return Err(ApiError::not_found_path());
    };
    let name = req.info.name.clone();
    let stored = match req.info.verb.as_str() {
        "get" => {
            let rv = req.query.get("resourceVersion").unwrap_or("");
            api.get(res, version, ns, &name, rv).await?
        }
        "update" | "patch" => {
            let change = change_of(&req)?;
            let subject = Subject::new(res.group, res.resource, &name);
            api.modify(res, version, &req.ctx, ns, &name, Part::Main, |mut current: Value| {
                let scale = change.apply(&name, scale_of(shape, &current))?;
                let replicas = validate_scale(&scale, &name)?;
                let uid = meta::uid(&scale);
                if !uid.is_empty() && uid != meta::uid(&current) {
                    return Err(ApiError::conflict(
                        &subject,
                        &format!(
                            "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                            meta::uid(&current)
                        ),
                    ));
                }
                // The Scale's resourceVersion (if any) pins the parent's write.
                match meta::resource_version(&scale) {
                    "" => meta::remove(&mut current, "resourceVersion"),
                    rv => meta::set(&mut current, "resourceVersion", json!(rv)),
                }
                let spec = current
                    .as_object_mut()
                    .map(|m| m.entry("spec").or_insert_with(|| json!({})));
                if let Some(Value::Object(spec)) = spec {
                    spec.insert("replicas".into(), json!(replicas));
                }
                Ok(current)
            })
            .await?
        }
        _ => return Err(ApiError::method_not_allowed(req.method.as_str())),
    };
    let scale = scale_of(shape, &stored);
    Ok(negotiate::respond(
        200,
        &scale,
        out,
        req.headers,
        &req.ctx.take_warnings(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_mirror_their_parents() {
        let d = json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u", "resourceVersion": "7", "labels": {"a": "b"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"replicas": 2}
        });
        let s = scale_of(SelectorShape::LabelSelector, &d);
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"], json!({"replicas": 2, "selector": "app=web"}));
        assert_eq!(s["metadata"]["resourceVersion"], "7");
        assert!(s["metadata"].get("labels").is_none());
        let rc = json!({"metadata": {"name": "r"}, "spec": {"replicas": 0, "selector": {"b": "2", "a": "1"}}});
        let s = scale_of(SelectorShape::Map, &rc);
        assert_eq!(s["spec"], json!({}));
        assert_eq!(s["status"]["selector"], "a=1,b=2");
    }

    #[test]
    fn negative_replicas_are_invalid() {
        let e = validate_scale(&json!({"spec": {"replicas": -1}}), "web").unwrap_err();
        assert_eq!(e.code, 422);
        assert_eq!(e.message, "Scale.autoscaling \"web\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0");
        assert!(check_scale(&json!({"apiVersion": "apps/v1", "kind": "Scale"})).is_err());
        assert!(check_scale(
            &json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "spec": {"replicas": 2}})
        )
        .is_ok());
    }
}
