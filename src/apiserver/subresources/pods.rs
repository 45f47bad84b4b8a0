//! A pod's `binding` and `eviction` subresources (POST only).
//!
//! `binding` assigns a pending pod to a node, as the scheduler does: it sets
//! `spec.nodeName` (which no ordinary update may change), merges the binding's
//! annotations and marks the pod PodScheduled — with one compare-and-swap on the stored
//! pod, so of two concurrent bindings exactly one wins and the other gets 409.
//! `eviction` deletes the pod through the ordinary delete path (admission,
//! preconditions, DeleteOptions from the Eviction body) once the pod's
//! PodDisruptionBudget allows it, taking one allowed disruption from the budget's
//! status as upstream's eviction REST does (429 while the budget allows none).
//!
//! Invariant: a pod is bound at most once; a refused binding or eviction writes
//! nothing.

use axum::response::Response;
use serde_json::{json, Value};

use crate::apiserver::handlers::Request;
use crate::apiserver::negotiate::{self, Output};
use crate::apiserver::query::{body_dry_run, delete_options_body};
use crate::apiserver::status::{not_supported, required, ApiError, Cause, Subject};
use crate::registry::meta;
use crate::registry::selector::LabelSelector;
use crate::registry::store::{storage_error, Api, Ctx, DeleteOptions, ListOptions, Part};
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
    ctx.dry_run |= body_dry_run(delete_body)?;
    let pod = api.get(res, version, ns, &name, "").await?;
    take_disruption(api, &ctx, ns.unwrap_or_default(), &pod).await?;
    api.delete(res, version, &ctx, ns, &name, &opts).await?;
    Ok(negotiate::respond(
        201,
        &success(),
        out,
        req.headers,
        &ctx.take_warnings(),
    ))
}

/// Upstream's `DisruptedPods` bound: past it the budget's controller is behind.
const MAX_DISRUPTED_PODS: usize = 2000;

/// Checks the PodDisruptionBudget that selects `pod` and takes one disruption from
/// it (recording the pod in `status.disruptedPods`), as upstream's eviction does.
/// Pods that are not running (or already terminating) and budgets that let
/// unhealthy pods go are not counted.
async fn take_disruption(api: &Api, ctx: &Ctx, ns: &str, pod: &Value) -> Result<(), ApiError> {
    let phase = pod
        .pointer("/status/phase")
        .and_then(Value::as_str)
        .unwrap_or("");
    if matches!(phase, "Succeeded" | "Failed" | "Pending")
        || pod.pointer("/metadata/deletionTimestamp").is_some()
    {
        return Ok(());
    }
    let Some(pdb_res) = api.registry.lookup("policy", "v1", "poddisruptionbudgets") else {
        return Ok(());
    };
    let labels = pod.pointer("/metadata/labels").and_then(Value::as_object);
    let budgets = api
        .list(&pdb_res, "v1", Some(ns), &ListOptions::default())
        .await?;
    let matching: Vec<&Value> = budgets
        .items
        .iter()
        .filter(|pdb| match pdb.pointer("/spec/selector") {
            // policy/v1: an empty selector selects every pod of the namespace; none
            // selects none.
            None | Some(Value::Null) => false,
            Some(sel) => LabelSelector::from_json(sel).is_ok_and(|s| s.matches(labels)),
        })
        .collect();
    let pdb = match matching.as_slice() {
        [] => return Ok(()),
        [one] => *one,
        _ => {
            return Err(ApiError::internal(
                "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            ))
        }
    };
    let ready = pod
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    if !ready {
        let policy = pdb
            .pointer("/spec/unhealthyPodEvictionPolicy")
            .and_then(Value::as_str)
            .unwrap_or("IfHealthyBudget");
        let int = |p: &str| pdb.pointer(p).and_then(Value::as_i64).unwrap_or(0);
        let healthy_enough = int("/status/desiredHealthy") > 0
            && int("/status/currentHealthy") >= int("/status/desiredHealthy");
        if policy == "AlwaysAllow" || healthy_enough {
            return Ok(());
        }
    }
    let pdb_name = meta::name(pdb).to_owned();
    let pod_name = meta::name(pod).to_owned();
    api.modify(
        &pdb_res,
        "v1",
        ctx,
        Some(ns),
        &pdb_name,
        Part::Status,
        |mut pdb| {
            decrement(&mut pdb, &pdb_name, &pod_name)?;
            Ok(pdb)
        },
    )
    .await?;
    Ok(())
}

/// upstream's `checkAndDecrement` on one budget.
fn decrement(pdb: &mut Value, pdb_name: &str, pod_name: &str) -> Result<(), ApiError> {
    let int = |p: &str| pdb.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let refuse = |message: String| {
        let mut e = ApiError::too_many_requests(0);
        e.message = "Cannot evict pod as it would violate the pod's disruption budget.".into();
        e.retry_after = None;
        if let Some(d) = e.details.as_mut() {
            d.retry_after_seconds = None;
            d.causes.push(Cause {
                reason: "DisruptionBudget",
                message,
                field: String::new(),
            });
        }
        e
    };
    if int("/status/observedGeneration") < int("/metadata/generation") {
        return Err(refuse(format!(
            "The disruption budget {pdb_name} is still being processed by the server."
        )));
    }
    let allowed = int("/status/disruptionsAllowed");
    if allowed < 0 {
        return Err(ApiError::forbidden_message(
            "pdb disruptions allowed is negative",
        ));
    }
    let disrupted = pdb
        .pointer("/status/disruptedPods")
        .and_then(Value::as_object)
        .map_or(0, |m| m.len());
    if disrupted > MAX_DISRUPTED_PODS {
        return Err(ApiError::forbidden_message(
            "DisruptedPods map too big - too many evictions not confirmed by PDB controller",
        ));
    }
    if allowed == 0 {
        return Err(refuse(format!(
            "The disruption budget {pdb_name} needs {} healthy pods and has {} currently",
            int("/status/desiredHealthy"),
            int("/status/currentHealthy")
        )));
    }
    let status = pdb
        .as_object_mut()
        .map(|m| m.entry("status").or_insert_with(|| json!({})));
    if let Some(Value::Object(status)) = status {
        status.insert("disruptionsAllowed".into(), json!(allowed - 1));
        let pods = status.entry("disruptedPods").or_insert_with(|| json!({}));
        if let Some(pods) = pods.as_object_mut() {
            pods.insert(pod_name.to_owned(), json!(meta::now_rfc3339()));
        }
    }
    Ok(())
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

    #[test]
    fn a_budget_gives_one_disruption_at_a_time() {
        let mut pdb = json!({"metadata": {"name": "b", "generation": 1},
            "status": {"observedGeneration": 1, "disruptionsAllowed": 1, "desiredHealthy": 2, "currentHealthy": 3}});
        decrement(&mut pdb, "b", "p1").expect("one allowed");
        assert_eq!(pdb["status"]["disruptionsAllowed"], 0);
        assert!(pdb["status"]["disruptedPods"]["p1"].is_string());
        let e = decrement(&mut pdb, "b", "p2").expect_err("none left");
        assert_eq!(e.code, 429);
        assert_eq!(
            e.message,
            "Cannot evict pod as it would violate the pod's disruption budget."
        );
        let causes = &e.details.as_ref().expect("details").causes;
        assert_eq!(causes[0].reason, "DisruptionBudget");
        assert_eq!(
            causes[0].message,
            "The disruption budget b needs 2 healthy pods and has 3 currently"
        );
        let mut stale = json!({"metadata": {"generation": 2}, "status": {"observedGeneration": 1, "disruptionsAllowed": 5}});
        let e = decrement(&mut stale, "b", "p").expect_err("not yet observed");
        assert_eq!(e.code, 429);
    }
}
