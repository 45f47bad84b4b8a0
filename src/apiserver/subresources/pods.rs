//! A pod's `binding` and `eviction` subresources (POST only).
//!
//! `binding` assigns a pending pod to a node, as the scheduler does: it sets
//! `spec.nodeName` (which no ordinary update may change), merges the binding's
//! annotations and marks the pod PodScheduled — with one compare-and-swap on the stored
//! pod, so of two concurrent bindings exactly one wins and the other gets 409.
//! `eviction` deletes the pod through the ordinary delete path (admission,
//! preconditions, DeleteOptions from the Eviction body).
//!
//! Invariant: a pod is bound at most once; a refused binding or eviction writes
//! nothing.

use axum::response::Response;
use serde_json::{json, Value};

use crate::apiserver::handlers::Request;
use crate::apiserver::negotiate::{self, Output};
use crate::apiserver::query::delete_options_body;
use crate::apiserver::status::{not_supported, required, ApiError, Subject};
use crate::registry::meta;
use crate::registry::store::{storage_error, Api, DeleteOptions};
use crate::registry::Resource;
use crate::storage::{keys, ReadMode, StorageError};

pub async fn serve(
    api: &Api,
    res: &Resource,
    version: &str,
    ns: Option<&str>,
    req: Request<'_>,
    out: &Output,
) -> Result<Response, ApiError> {
    if req.info.verb != "create" {
        return Err(ApiError::method_not_allowed(req.method.as_str()));
    }
    let ty = negotiate::body_type(req.headers)?;
    let body = negotiate::parse_body(&req.body, ty)?;
    if !body.is_object() {
        return Err(ApiError::bad_request(
            "the object provided is not a JSON object",
        ));
    }
    match req.info.subresource.as_str() {
        "binding" => binding(api, res, version, ns, req, out, body).await,
        "eviction" => eviction(api, res, version, ns, req, out, body).await,
        _ => Err(ApiError::not_found_path()),
    }
}

/// The `Status` a successful binding or eviction answers with.
fn success() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
}

fn binding_conflict(name: &str, why: &str) -> ApiError {
    ApiError::conflict(&Subject::new("", "pods/binding", name), why)
}

async fn binding(
    api: &Api,
    res: &Resource,
    version: &str,
    ns: Option<&str>,
    req: Request<'_>,
    out: &Output,
    body: Value,
) -> Result<Response, ApiError> {
    let name = req.info.name.clone();
    let kind = meta::kind(&body);
    if !kind.is_empty() && kind != "Binding" {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind (Binding)"
        )));
    }
    if meta::name(&body) != name {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Binding object",
        ));
    }
    let target_kind = body
        .pointer("/target/kind")
        .and_then(Value::as_str)
        .unwrap_or("");
    let target = body
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let mut causes = Vec::new();
    if !target_kind.is_empty() && target_kind != "Node" {
        causes.push(not_supported(
            "target.kind",
            &json!(target_kind),
            &["Node", "<empty>"],
        ));
    }
    if target.is_empty() {
        causes.push(required("target.name", ""));
    }
    if !causes.is_empty() {
        return Err(ApiError::invalid("Binding", "", &name, causes));
    }
    let want_uid = meta::uid(&body).to_owned();
    let want_rv = meta::resource_version(&body).to_owned();
    let annotations = meta::metadata(&body)
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let key = keys::object_key(&api.root, res.storage_prefix, ns, &name);
    for _ in 0..16 {
        let current = api
            .storage
            .get(&key, ReadMode::Consistent)
            .await
            .map_err(|e| storage_error(res, &name, e))?
            .ok_or_else(|| ApiError::not_found(&Subject::new("", "pods", &name)))?;
        let mut pod = api.stored_form(res, &current)?;
        if !want_uid.is_empty() && want_uid != meta::uid(&pod) {
            return Err(binding_conflict(
                &name,
                &format!(
                    "Precondition failed: UID in precondition: {want_uid}, UID in object meta: {}",
                    meta::uid(&pod)
                ),
            ));
        }
        if !want_rv.is_empty() && want_rv != current.mod_revision.to_string() {
            return Err(binding_conflict(
                &name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {want_rv}, ResourceVersion in object meta: {}",
                    current.mod_revision
                ),
            ));
        }
        if meta::deletion_timestamp(&pod).is_some() {
            return Err(binding_conflict(
                &name,
                &format!("pod {name} is being deleted, cannot be assigned to a host"),
            ));
        }
        let bound = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !bound.is_empty() {
            return Err(binding_conflict(
                &name,
                &format!("pod {name} is already assigned to node \"{bound}\""),
            ));
        }
        if pod
            .pointer("/spec/schedulingGates")
            .and_then(Value::as_array)
            .is_some_and(|g| !g.is_empty())
        {
            return Err(binding_conflict(
                &name,
                &format!("pod {name} has non-empty .spec.schedulingGates"),
            ));
        }
        assign(&mut pod, &target, &annotations);
        if req.ctx.dry_run {
            return Ok(negotiate::respond(201, &success(), out, req.headers, &[]));
        }
        meta::remove(&mut pod, "resourceVersion");
        meta::set_type(&mut pod, &res.api_version(version), res.kind);
        let bytes = serde_json::to_vec(&pod).map_err(|e| ApiError::internal(e.to_string()))?;
        match api
            .storage
            .update(&key, bytes.into(), current.mod_revision, current.lease)
            .await
        {
            Ok(_) => return Ok(negotiate::respond(201, &success(), out, req.headers, &[])),
            Err(StorageError::Conflict { .. }) => continue,
            Err(e) => return Err(storage_error(res, &name, e)),
        }
    }
    Err(binding_conflict(&name, "too many concurrent updates"))
}

/// Sets the node, merges annotations and marks the pod scheduled.
fn assign(pod: &mut Value, node: &str, annotations: &serde_json::Map<String, Value>) {
    if let Some(m) = pod.as_object_mut() {
        let spec = m.entry("spec").or_insert_with(|| json!({}));
        if let Some(s) = spec.as_object_mut() {
            s.insert("nodeName".into(), json!(node));
        }
    }
    if !annotations.is_empty() {
        let md = meta::metadata_mut(pod);
        let existing = md.entry("annotations").or_insert_with(|| json!({}));
        if let Some(a) = existing.as_object_mut() {
            for (k, v) in annotations {
                a.insert(k.clone(), v.clone());
            }
        }
    }
    let Some(m) = pod.as_object_mut() else { return };
    let status = m.entry("status").or_insert_with(|| json!({}));
    let Some(status) = status.as_object_mut() else {
        return;
    };
    let conditions = status.entry("conditions").or_insert_with(|| json!([]));
    let Some(list) = conditions.as_array_mut() else {
        return;
    };
    let now = meta::now_rfc3339();
    match list
        .iter_mut()
        .find(|c| c.get("type").and_then(Value::as_str) == Some("PodScheduled"))
    {
        Some(c) => {
            if c.get("status").and_then(Value::as_str) != Some("True") {
                c["lastTransitionTime"] = json!(now);
            }
            c["status"] = json!("True");
            if let Some(cm) = c.as_object_mut() {
                cm.remove("reason");
                cm.remove("message");
            }
        }
        None => {
            list.push(json!({"type": "PodScheduled", "status": "True", "lastTransitionTime": now}))
        }
    }
}

async fn eviction(
    api: &Api,
    res: &Resource,
    version: &str,
    ns: Option<&str>,
    req: Request<'_>,
    out: &Output,
    body: Value,
) -> Result<Response, ApiError> {
    let name = req.info.name.clone();
    let kind = meta::kind(&body);
    if !kind.is_empty() && kind != "Eviction" {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind (Eviction)"
        )));
    }
    if meta::name(&body) != name {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Eviction object",
        ));
    }
    let empty = json!({});
    let delete_body = body.get("deleteOptions").unwrap_or(&empty);
    let opts = delete_options_body(DeleteOptions::default(), delete_body);
    let mut ctx = req.ctx;
    let dry = delete_body
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|d| d.iter().any(|v| v == "All"));
    ctx.dry_run |= dry;
    // PodDisruptionBudgets are consulted here once the policy group serves them.
    api.delete(res, version, &ctx, ns, &name, &opts).await?;
    Ok(negotiate::respond(
        201,
        &success(),
        out,
        req.headers,
        &ctx.take_warnings(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_sets_node_annotations_and_condition() {
        let mut pod = json!({"metadata": {"name": "p", "annotations": {"a": "1"}}, "spec": {}, "status": {"phase": "Pending"}});
        let mut ann = serde_json::Map::new();
        ann.insert("b".into(), json!("2"));
        assign(&mut pod, "node-1", &ann);
        assert_eq!(pod["spec"]["nodeName"], "node-1");
        assert_eq!(pod["metadata"]["annotations"], json!({"a": "1", "b": "2"}));
        assert_eq!(pod["status"]["conditions"][0]["type"], "PodScheduled");
        assert_eq!(pod["status"]["conditions"][0]["status"], "True");
    }
}
