//! autoscaling kinds: horizontalpodautoscalers, one object served in autoscaling/v2
//! (preferred and stored) and autoscaling/v1, converted between them as upstream's
//! pkg/apis/autoscaling/v1/conversion.go does.
//!
//! Invariant: a v2 → v1 → v2 round trip loses nothing: v1 shows the CPU utilization
//! target as `targetCPUUtilizationPercentage` and carries every other metric, the
//! current metrics, the conditions and the behavior in upstream's
//! `autoscaling.alpha.kubernetes.io/*` annotations, which v1 → v2 reads back and
//! removes. Defaults, validation and table cells always work on the v2 form.

use std::sync::Arc;

use k8s_openapi::api::autoscaling::{v1, v2};
use serde_json::{json, Map, Value};

use super::apps::{decode_filled, int_at, keep_status, reset_status};
use crate::apiserver::status::{forbidden, invalid_value, not_supported, required, Cause};
use crate::registry::validation::{path_segment_name, NameRule};
use crate::registry::{age, meta, Column, Resource, Strategy, AGE_COLUMN, ALL_VERBS};

pub fn resources() -> Vec<Resource> {
    vec![Resource {
        group: "autoscaling",
        versions: &["v2", "v1"],
        kind: "HorizontalPodAutoscaler",
        resource: "horizontalpodautoscalers",
        singular: "horizontalpodautoscaler",
        namespaced: true,
        short_names: &["hpa"],
        categories: &["all"],
        storage_prefix: "horizontalpodautoscalers",
        subresources: &["status"],
        verbs: ALL_VERBS,
        name_rule: NameRule::Subdomain,
        strategy: Arc::new(HorizontalPodAutoscalers),
    }]
}

/// v1 annotations carrying what v1 has no fields for.
const METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/metrics";
const CURRENT_METRICS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/current-metrics";
const CONDITIONS_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/conditions";
const BEHAVIOR_ANNOTATION: &str = "autoscaling.alpha.kubernetes.io/behavior";
const ROUND_TRIP_ANNOTATIONS: [&str; 4] = [
    METRICS_ANNOTATION,
    CURRENT_METRICS_ANNOTATION,
    CONDITIONS_ANNOTATION,
    BEHAVIOR_ANNOTATION,
];

/// The CPU target autoscaling/v1 implied and v2 states (DefaultCPUUtilization).
const DEFAULT_CPU_UTILIZATION: i64 = 80;

fn cpu_metric(utilization: Value) -> Value {
    json!({"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": utilization}}})
}

fn is_cpu_utilization(m: &Value) -> bool {
    m.get("type").and_then(Value::as_str) == Some("Resource")
        && m.pointer("/resource/name").and_then(Value::as_str) == Some("cpu")
        && m.pointer("/resource/target/averageUtilization")
            .is_some_and(|v| !v.is_null())
}

/// Copies `from[key]` to `to[as_key]` when present and not null.
fn copy(to: &mut Map<String, Value>, as_key: &str, from: Option<&Value>, key: &str) {
    if let Some(v) = from.and_then(|f| f.get(key)).filter(|v| !v.is_null()) {
        to.insert(as_key.to_owned(), v.clone());
    }
}

/// A v1 Quantity field that Go always serializes: the value, or "0".
fn quantity_or_zero(v: Option<&Value>) -> Value {
    v.filter(|v| !v.is_null())
        .cloned()
        .unwrap_or_else(|| json!("0"))
}

fn object_or_empty(v: Option<&Value>) -> Value {
    v.filter(|v| v.is_object())
        .cloned()
        .unwrap_or_else(|| json!({}))
}

/// A v2 MetricSpec in autoscaling/v1's (v2beta1-shaped) annotation form.
fn metric_spec_to_v1(m: &Value) -> Value {
    let ty = m.get("type").and_then(Value::as_str).unwrap_or("");
    let mut src = Map::new();
    let key = match ty {
        "Object" => {
            let o = m.get("object");
            src.insert(
                "target".into(),
                object_or_empty(o.and_then(|o| o.get("describedObject"))),
            );
            copy(
                &mut src,
                "metricName",
                o.and_then(|o| o.get("metric")),
                "name",
            );
            copy(
                &mut src,
                "selector",
                o.and_then(|o| o.get("metric")),
                "selector",
            );
            src.insert(
                "targetValue".into(),
                quantity_or_zero(o.and_then(|o| o.pointer("/target/value"))),
            );
            copy(
                &mut src,
                "averageValue",
                o.and_then(|o| o.get("target")),
                "averageValue",
            );
            "object"
        }
        "Pods" => {
            let p = m.get("pods");
            copy(
                &mut src,
                "metricName",
                p.and_then(|p| p.get("metric")),
                "name",
            );
            copy(
                &mut src,
                "selector",
                p.and_then(|p| p.get("metric")),
                "selector",
            );
            src.insert(
                "targetAverageValue".into(),
                quantity_or_zero(p.and_then(|p| p.pointer("/target/averageValue"))),
            );
            "pods"
        }
        "Resource" | "ContainerResource" => {
            let field = if ty == "Resource" {
                "resource"
            } else {
                "containerResource"
            };
            let r = m.get(field);
            copy(&mut src, "name", r, "name");
            copy(&mut src, "container", r, "container");
            copy(
                &mut src,
                "targetAverageUtilization",
                r.and_then(|r| r.get("target")),
                "averageUtilization",
            );
            copy(
                &mut src,
                "targetAverageValue",
                r.and_then(|r| r.get("target")),
                "averageValue",
            );
            field
        }
        "External" => {
            let e = m.get("external");
            copy(
                &mut src,
                "metricName",
                e.and_then(|e| e.get("metric")),
                "name",
            );
            copy(
                &mut src,
                "metricSelector",
                e.and_then(|e| e.get("metric")),
                "selector",
            );
            copy(
                &mut src,
                "targetValue",
                e.and_then(|e| e.get("target")),
                "value",
            );
            copy(
                &mut src,
                "targetAverageValue",
                e.and_then(|e| e.get("target")),
                "averageValue",
            );
            "external"
        }
        _ => return m.clone(),
    };
    json!({"type": ty, key: Value::Object(src)})
}

/// An autoscaling/v1 annotation MetricSpec in v2 form.
fn metric_spec_to_v2(m: &Value) -> Value {
    let ty = m.get("type").and_then(Value::as_str).unwrap_or("");
    let ident = |name: Option<&Value>, sel: Option<&Value>| {
        let mut id = Map::new();
        id.insert("name".into(), name.cloned().unwrap_or(json!("")));
        if let Some(s) = sel.filter(|s| !s.is_null()) {
            id.insert("selector".into(), s.clone());
        }
        Value::Object(id)
    };
    match ty {
        "Object" => {
            let o = m.get("object").cloned().unwrap_or(json!({}));
            let mut target = Map::new();
            let avg = o.get("averageValue").filter(|v| !v.is_null());
            target.insert(
                "type".into(),
                json!(if avg.is_some() {
                    "AverageValue"
                } else {
                    "Value"
                }),
            );
            target.insert("value".into(), quantity_or_zero(o.get("targetValue")));
            if let Some(a) = avg {
                target.insert("averageValue".into(), a.clone());
            }
            json!({"type": "Object", "object": {
                "describedObject": object_or_empty(o.get("target")),
                "metric": ident(o.get("metricName"), o.get("selector")),
                "target": Value::Object(target),
            }})
        }
        "Pods" => {
            let p = m.get("pods").cloned().unwrap_or(json!({}));
            json!({"type": "Pods", "pods": {
                "metric": ident(p.get("metricName"), p.get("selector")),
                "target": {"type": "AverageValue", "averageValue": quantity_or_zero(p.get("targetAverageValue"))},
            }})
        }
        "Resource" | "ContainerResource" => {
            let field = if ty == "Resource" {
                "resource"
            } else {
                "containerResource"
            };
            let r = m.get(field).cloned().unwrap_or(json!({}));
            let mut target = Map::new();
            let avg = r.get("targetAverageValue").filter(|v| !v.is_null());
            target.insert(
                "type".into(),
                json!(if avg.is_some() {
                    "AverageValue"
                } else {
                    "Utilization"
                }),
            );
            copy(&mut target, "averageValue", Some(&r), "targetAverageValue");
            copy(
                &mut target,
                "averageUtilization",
                Some(&r),
                "targetAverageUtilization",
            );
            let mut src = Map::new();
            copy(&mut src, "name", Some(&r), "name");
            copy(&mut src, "container", Some(&r), "container");
            src.insert("target".into(), Value::Object(target));
            json!({"type": ty, field: Value::Object(src)})
        }
        "External" => {
            let e = m.get("external").cloned().unwrap_or(json!({}));
            let mut target = Map::new();
            let avg = e.get("targetAverageValue").filter(|v| !v.is_null());
            target.insert(
                "type".into(),
                json!(if avg.is_some() {
                    "AverageValue"
                } else {
                    "Value"
                }),
            );
            copy(&mut target, "value", Some(&e), "targetValue");
            copy(&mut target, "averageValue", Some(&e), "targetAverageValue");
            json!({"type": "External", "external": {
                "metric": ident(e.get("metricName"), e.get("metricSelector")),
                "target": Value::Object(target),
            }})
        }
        _ => m.clone(),
    }
}

/// A v2 MetricStatus in autoscaling/v1's annotation form.
fn metric_status_to_v1(m: &Value) -> Value {
    let ty = m.get("type").and_then(Value::as_str).unwrap_or("");
    let mut src = Map::new();
    let key = match ty {
        "Object" => {
            let o = m.get("object");
            src.insert(
                "target".into(),
                object_or_empty(o.and_then(|o| o.get("describedObject"))),
            );
            copy(
                &mut src,
                "metricName",
                o.and_then(|o| o.get("metric")),
                "name",
            );
            copy(
                &mut src,
                "selector",
                o.and_then(|o| o.get("metric")),
                "selector",
            );
            src.insert(
                "currentValue".into(),
                quantity_or_zero(o.and_then(|o| o.pointer("/current/value"))),
            );
            copy(
                &mut src,
                "averageValue",
                o.and_then(|o| o.get("current")),
                "averageValue",
            );
            "object"
        }
        "Pods" => {
            let p = m.get("pods");
            copy(
                &mut src,
                "metricName",
                p.and_then(|p| p.get("metric")),
                "name",
            );
            copy(
                &mut src,
                "selector",
                p.and_then(|p| p.get("metric")),
                "selector",
            );
            src.insert(
                "currentAverageValue".into(),
                quantity_or_zero(p.and_then(|p| p.pointer("/current/averageValue"))),
            );
            "pods"
        }
        "Resource" | "ContainerResource" => {
            let field = if ty == "Resource" {
                "resource"
            } else {
                "containerResource"
            };
            let r = m.get(field);
            copy(&mut src, "name", r, "name");
            copy(&mut src, "container", r, "container");
            copy(
                &mut src,
                "currentAverageUtilization",
                r.and_then(|r| r.get("current")),
                "averageUtilization",
            );
            src.insert(
                "currentAverageValue".into(),
                quantity_or_zero(r.and_then(|r| r.pointer("/current/averageValue"))),
            );
            field
        }
        "External" => {
            let e = m.get("external");
            copy(
                &mut src,
                "metricName",
                e.and_then(|e| e.get("metric")),
                "name",
            );
            copy(
                &mut src,
                "metricSelector",
                e.and_then(|e| e.get("metric")),
                "selector",
            );
            src.insert(
                "currentValue".into(),
                quantity_or_zero(e.and_then(|e| e.pointer("/current/value"))),
            );
            copy(
                &mut src,
                "currentAverageValue",
                e.and_then(|e| e.get("current")),
                "averageValue",
            );
            "external"
        }
        _ => return m.clone(),
    };
    json!({"type": ty, key: Value::Object(src)})
}

/// An autoscaling/v1 annotation MetricStatus in v2 form.
fn metric_status_to_v2(m: &Value) -> Value {
    let ty = m.get("type").and_then(Value::as_str).unwrap_or("");
    let ident = |src: &Value, name: &str, sel: &str| {
        let mut id = Map::new();
        id.insert("name".into(), src.get(name).cloned().unwrap_or(json!("")));
        copy(&mut id, "selector", Some(src), sel);
        Value::Object(id)
    };
    match ty {
        "Object" => {
            let o = m.get("object").cloned().unwrap_or(json!({}));
            let mut current = Map::new();
            current.insert("value".into(), quantity_or_zero(o.get("currentValue")));
            copy(&mut current, "averageValue", Some(&o), "averageValue");
            json!({"type": "Object", "object": {
                "describedObject": object_or_empty(o.get("target")),
                "metric": ident(&o, "metricName", "selector"),
                "current": Value::Object(current),
            }})
        }
        "Pods" => {
            let p = m.get("pods").cloned().unwrap_or(json!({}));
            json!({"type": "Pods", "pods": {
                "metric": ident(&p, "metricName", "selector"),
                "current": {"averageValue": quantity_or_zero(p.get("currentAverageValue"))},
            }})
        }
        "Resource" | "ContainerResource" => {
            let field = if ty == "Resource" {
                "resource"
            } else {
                "containerResource"
            };
            let r = m.get(field).cloned().unwrap_or(json!({}));
            let mut current = Map::new();
            current.insert(
                "averageValue".into(),
                quantity_or_zero(r.get("currentAverageValue")),
            );
            copy(
                &mut current,
                "averageUtilization",
                Some(&r),
                "currentAverageUtilization",
            );
            let mut src = Map::new();
            copy(&mut src, "name", Some(&r), "name");
            copy(&mut src, "container", Some(&r), "container");
            src.insert("current".into(), Value::Object(current));
            json!({"type": ty, field: Value::Object(src)})
        }
        "External" => {
            let e = m.get("external").cloned().unwrap_or(json!({}));
            let mut current = Map::new();
            current.insert("value".into(), quantity_or_zero(e.get("currentValue")));
            copy(
                &mut current,
                "averageValue",
                Some(&e),
                "currentAverageValue",
            );
            json!({"type": "External", "external": {
                "metric": ident(&e, "metricName", "metricSelector"),
                "current": Value::Object(current),
            }})
        }
        _ => m.clone(),
    }
}

/// Keys with their first letter lowered, recursively (upstream marshals the
/// behavior annotation from an untagged internal type: `{"ScaleUp":...}`).
fn lower_first_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    let mut cs = k.chars();
                    let key = match cs.next() {
                        Some(c) => c.to_lowercase().chain(cs).collect(),
                        None => k,
                    };
                    (key, lower_first_keys(v))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(lower_first_keys).collect()),
        other => other,
    }
}

fn parse_annotation(annotations: &Map<String, Value>, key: &str) -> Result<Option<Value>, String> {
    match annotations.get(key).and_then(Value::as_str) {
        None => Ok(None),
        Some(s) => serde_json::from_str(s)
            .map(Some)
            .map_err(|e| format!("annotation {key} is not valid JSON: {e}")),
    }
}

fn annotations_without_round_trip(obj: &Value) -> Map<String, Value> {
    let mut a = meta::metadata(obj)
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for k in ROUND_TRIP_ANNOTATIONS {
        a.remove(k);
    }
    a
}

fn set_annotations(obj: &mut Value, a: Map<String, Value>) {
    if a.is_empty() {
        meta::remove(obj, "annotations");
    } else {
        meta::set(obj, "annotations", Value::Object(a));
    }
}

/// autoscaling/v2 → autoscaling/v1.
pub fn to_v1(obj: &Value) -> Value {
    let mut out = obj.clone();
    let mut annotations = annotations_without_round_trip(obj);
    let spec = obj.get("spec");
    let mut v1_spec = Map::new();
    copy(&mut v1_spec, "scaleTargetRef", spec, "scaleTargetRef");
    copy(&mut v1_spec, "minReplicas", spec, "minReplicas");
    v1_spec.insert(
        "maxReplicas".into(),
        json!(spec.map(|s| int_at(s, "/maxReplicas")).unwrap_or(0)),
    );
    let metrics = spec
        .and_then(|s| s.get("metrics"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    if let Some(cpu) = metrics.iter().find(|m| is_cpu_utilization(m)) {
        v1_spec.insert(
            "targetCPUUtilizationPercentage".into(),
            cpu.pointer("/resource/target/averageUtilization")
                .cloned()
                .unwrap_or(Value::Null),
        );
    }
    let others: Vec<Value> = metrics
        .iter()
        .filter(|m| !is_cpu_utilization(m))
        .map(metric_spec_to_v1)
        .collect();
    if !others.is_empty() {
        annotations.insert(
            METRICS_ANNOTATION.into(),
            json!(Value::Array(others).to_string()),
        );
    }
    if let Some(b) = spec
        .and_then(|s| s.get("behavior"))
        .filter(|b| !b.is_null())
    {
        annotations.insert(BEHAVIOR_ANNOTATION.into(), json!(b.to_string()));
    }
    let status = obj.get("status");
    let mut v1_status = Map::new();
    copy(
        &mut v1_status,
        "observedGeneration",
        status,
        "observedGeneration",
    );
    copy(&mut v1_status, "lastScaleTime", status, "lastScaleTime");
    v1_status.insert(
        "currentReplicas".into(),
        json!(status.map(|s| int_at(s, "/currentReplicas")).unwrap_or(0)),
    );
    v1_status.insert(
        "desiredReplicas".into(),
        json!(status.map(|s| int_at(s, "/desiredReplicas")).unwrap_or(0)),
    );
    let current = status
        .and_then(|s| s.get("currentMetrics"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for m in current {
        if m.get("type").and_then(Value::as_str) == Some("Resource")
            && m.pointer("/resource/name").and_then(Value::as_str) == Some("cpu")
        {
            if let Some(u) = m
                .pointer("/resource/current/averageUtilization")
                .filter(|v| !v.is_null())
            {
                v1_status.insert("currentCPUUtilizationPercentage".into(), u.clone());
            }
        }
    }
    if !current.is_empty() {
        let list: Vec<Value> = current.iter().map(metric_status_to_v1).collect();
        annotations.insert(
            CURRENT_METRICS_ANNOTATION.into(),
            json!(Value::Array(list).to_string()),
        );
    }
    if let Some(conds) = status
        .and_then(|s| s.get("conditions"))
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
    {
        annotations.insert(
            CONDITIONS_ANNOTATION.into(),
            json!(Value::Array(conds.clone()).to_string()),
        );
    }
    if let Some(m) = out.as_object_mut() {
        m.insert("apiVersion".into(), json!("autoscaling/v1"));
        m.insert("spec".into(), Value::Object(v1_spec));
        m.insert("status".into(), Value::Object(v1_status));
    }
    set_annotations(&mut out, annotations);
    out
}

/// autoscaling/v1 → autoscaling/v2.
pub fn to_v2(obj: &Value) -> Result<Value, String> {
    let mut out = obj.clone();
    let raw = meta::metadata(obj)
        .and_then(|m| m.get("annotations"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let spec = obj.get("spec");
    let mut v2_spec = Map::new();
    copy(&mut v2_spec, "scaleTargetRef", spec, "scaleTargetRef");
    copy(&mut v2_spec, "minReplicas", spec, "minReplicas");
    v2_spec.insert(
        "maxReplicas".into(),
        json!(spec.map(|s| int_at(s, "/maxReplicas")).unwrap_or(0)),
    );
    let mut metrics: Vec<Value> = match parse_annotation(&raw, METRICS_ANNOTATION)? {
        Some(Value::Array(list)) => list.iter().map(metric_spec_to_v2).collect(),
        _ => Vec::new(),
    };
    if let Some(cpu) = spec
        .and_then(|s| s.get("targetCPUUtilizationPercentage"))
        .filter(|v| !v.is_null())
    {
        metrics.push(cpu_metric(cpu.clone()));
    }
    if metrics.is_empty() {
        // v1 always implied a CPU target; v2 states it.
        metrics.push(cpu_metric(json!(DEFAULT_CPU_UTILIZATION)));
    }
    v2_spec.insert("metrics".into(), Value::Array(metrics));
    if let Some(b) = parse_annotation(&raw, BEHAVIOR_ANNOTATION)? {
        v2_spec.insert("behavior".into(), lower_first_keys(b));
    }
    let status = obj.get("status");
    let mut v2_status = Map::new();
    copy(
        &mut v2_status,
        "observedGeneration",
        status,
        "observedGeneration",
    );
    copy(&mut v2_status, "lastScaleTime", status, "lastScaleTime");
    if let Some(c) = status
        .and_then(|s| s.get("currentReplicas"))
        .and_then(Value::as_i64)
        .filter(|c| *c != 0)
    {
        v2_status.insert("currentReplicas".into(), json!(c));
    }
    v2_status.insert(
        "desiredReplicas".into(),
        json!(status.map(|s| int_at(s, "/desiredReplicas")).unwrap_or(0)),
    );
    let current = match parse_annotation(&raw, CURRENT_METRICS_ANNOTATION)? {
        Some(Value::Array(list)) => list.iter().map(metric_status_to_v2).collect(),
        _ => match status
            .and_then(|s| s.get("currentCPUUtilizationPercentage"))
            .filter(|v| !v.is_null())
        {
            Some(u) => vec![
                json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": u}}}),
            ],
            None => Vec::new(),
        },
    };
    if !current.is_empty() {
        v2_status.insert("currentMetrics".into(), Value::Array(current));
    }
    if let Some(Value::Array(conds)) = parse_annotation(&raw, CONDITIONS_ANNOTATION)? {
        if !conds.is_empty() {
            v2_status.insert("conditions".into(), Value::Array(conds));
        }
    }
    if let Some(m) = out.as_object_mut() {
        m.insert("apiVersion".into(), json!("autoscaling/v2"));
        m.insert("spec".into(), Value::Object(v2_spec));
        m.insert("status".into(), Value::Object(v2_status));
    }
    set_annotations(&mut out, annotations_without_round_trip(obj));
    Ok(out)
}

/// The v2 HPAScalingRules upstream fills in when `behavior` is given.
fn default_rules(rules: Option<&Value>, scale_up: bool) -> Value {
    let mut r = rules
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if r.get("stabilizationWindowSeconds")
        .is_none_or(Value::is_null)
    {
        r.insert(
            "stabilizationWindowSeconds".into(),
            json!(if scale_up { 0 } else { 300 }),
        );
    }
    if r.get("selectPolicy").is_none_or(Value::is_null) {
        r.insert("selectPolicy".into(), json!("Max"));
    }
    if r.get("policies")
        .and_then(Value::as_array)
        .is_none_or(|p| p.is_empty())
    {
        let policies = if scale_up {
            json!([{"type": "Pods", "value": 4, "periodSeconds": 15}, {"type": "Percent", "value": 100, "periodSeconds": 15}])
        } else {
            json!([{"type": "Percent", "value": 100, "periodSeconds": 15}])
        };
        r.insert("policies".into(), policies);
    }
    Value::Object(r)
}

/// The printers' TARGETS cell (formatHPAMetrics): at most two metrics, then
/// "+ N more...".
fn format_metrics(specs: &[Value], statuses: &[Value]) -> String {
    if specs.is_empty() {
        return "<none>".into();
    }
    let s = |v: Option<&Value>| match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "0".into(),
    };
    let mut list = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let status = statuses.get(i);
        let text = match spec.get("type").and_then(Value::as_str).unwrap_or("") {
            "External" => {
                let current =
                    |f: &str| status.and_then(|st| st.pointer(&format!("/external/current/{f}")));
                if let Some(avg) = spec
                    .pointer("/external/target/averageValue")
                    .filter(|v| !v.is_null())
                {
                    let cur = current("averageValue")
                        .map(|v| s(Some(v)))
                        .unwrap_or("<unknown>".into());
                    format!("{cur}/{} (avg)", s(Some(avg)))
                } else {
                    let cur = status
                        .filter(|st| st.get("external").is_some())
                        .map(|_| s(current("value")))
                        .unwrap_or("<unknown>".into());
                    format!("{cur}/{}", s(spec.pointer("/external/target/value")))
                }
            }
            "Pods" => {
                let cur = status
                    .filter(|st| st.get("pods").is_some())
                    .map(|st| s(st.pointer("/pods/current/averageValue")))
                    .unwrap_or("<unknown>".into());
                format!("{cur}/{}", s(spec.pointer("/pods/target/averageValue")))
            }
            "Object" => {
                if let Some(avg) = spec
                    .pointer("/object/target/averageValue")
                    .filter(|v| !v.is_null())
                {
                    let cur = status
                        .and_then(|st| st.pointer("/object/current/averageValue"))
                        .map(|v| s(Some(v)))
                        .unwrap_or("<unknown>".into());
                    format!("{cur}/{} (avg)", s(Some(avg)))
                } else {
                    let cur = status
                        .filter(|st| st.get("object").is_some())
                        .map(|st| s(st.pointer("/object/current/value")))
                        .unwrap_or("<unknown>".into());
                    format!("{cur}/{}", s(spec.pointer("/object/target/value")))
                }
            }
            ty @ ("Resource" | "ContainerResource") => {
                let field = if ty == "Resource" {
                    "resource"
                } else {
                    "containerResource"
                };
                let name = spec
                    .pointer(&format!("/{field}/name"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let st = status.and_then(|st| st.get(field)).filter(|v| !v.is_null());
                if let Some(avg) = spec
                    .pointer(&format!("/{field}/target/averageValue"))
                    .filter(|v| !v.is_null())
                {
                    let cur = st
                        .map(|st| s(st.pointer("/current/averageValue")))
                        .unwrap_or("<unknown>".into());
                    format!("{name}: {cur}/{}", s(Some(avg)))
                } else {
                    let cur = st
                        .and_then(|st| st.pointer("/current/averageUtilization"))
                        .and_then(Value::as_i64)
                        .map(|u| format!("{u}%"))
                        .unwrap_or("<unknown>".into());
                    let target = spec
                        .pointer(&format!("/{field}/target/averageUtilization"))
                        .and_then(Value::as_i64)
                        .map(|u| format!("{u}%"))
                        .unwrap_or("<auto>".into());
                    format!("{name}: {cur}/{target}")
                }
            }
            _ => "<unknown type>".into(),
        };
        list.push(text);
    }
    let count = list.len();
    if count > 2 {
        list.truncate(2);
        return format!("{} + {} more...", list.join(", "), count - 2);
    }
    list.join(", ")
}

/// A Quantity's sign is positive: no minus and a non-zero digit in its number part.
fn quantity_is_positive(q: &str) -> bool {
    let q = q.trim();
    if q.starts_with('-') {
        return false;
    }
    q.trim_start_matches('+')
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .any(|c| c.is_ascii_digit() && c != '0')
}

struct HorizontalPodAutoscalers;

impl HorizontalPodAutoscalers {
    fn validate_metric_target(t: Option<&Value>, path: &str) -> Vec<Cause> {
        let mut out = Vec::new();
        let t = t.cloned().unwrap_or(json!({}));
        let ty = t.get("type").and_then(Value::as_str).unwrap_or("");
        if ty.is_empty() {
            out.push(required(
                &format!("{path}.type"),
                "must specify a metric target type",
            ));
        }
        if !["Utilization", "Value", "AverageValue"].contains(&ty) {
            out.push(invalid_value(
                &format!("{path}.type"),
                &json!(ty),
                "must be either Utilization, Value, or AverageValue",
            ));
        }
        for f in ["value", "averageValue"] {
            if let Some(q) = t.get(f).and_then(Value::as_str) {
                if !quantity_is_positive(q) {
                    out.push(invalid_value(
                        &format!("{path}.{f}"),
                        &json!(q),
                        "must be positive",
                    ));
                }
            }
        }
        if let Some(u) = t.get("averageUtilization").and_then(Value::as_i64) {
            if u < 1 {
                out.push(invalid_value(
                    &format!("{path}.averageUtilization"),
                    &json!(u),
                    "must be greater than 0",
                ));
            }
        }
        out
    }

    fn validate_metric(m: &Value, path: &str) -> Vec<Cause> {
        const SOURCES: [(&str, &str); 5] = [
            ("Object", "object"),
            ("Pods", "pods"),
            ("Resource", "resource"),
            ("ContainerResource", "containerResource"),
            ("External", "external"),
        ];
        let mut out = Vec::new();
        let ty = m.get("type").and_then(Value::as_str).unwrap_or("");
        let supported: Vec<&str> = SOURCES.iter().map(|(t, _)| *t).collect();
        if ty.is_empty() {
            out.push(required(
                &format!("{path}.type"),
                "must specify a metric source type",
            ));
        }
        let Some((_, expected)) = SOURCES.iter().find(|(t, _)| *t == ty) else {
            out.push(not_supported(
                &format!("{path}.type"),
                &json!(ty),
                &supported,
            ));
            return out;
        };
        let src = m.get(*expected).filter(|v| !v.is_null());
        match src {
            None => out.push(required(
                &format!("{path}.{expected}"),
                "must populate information for the given metric source",
            )),
            Some(src) => {
                let p = format!("{path}.{expected}");
                match ty {
                    "Resource" | "ContainerResource" => {
                        if src
                            .get("name")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .is_empty()
                        {
                            out.push(required(
                                &format!("{p}.name"),
                                "must specify a resource name",
                            ));
                        }
                        if ty == "ContainerResource"
                            && src
                                .get("container")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .is_empty()
                        {
                            out.push(required(
                                &format!("{p}.container"),
                                "must specify a container",
                            ));
                        }
                        let target = src.get("target");
                        out.extend(Self::validate_metric_target(target, &format!("{p}.target")));
                        let has =
                            |f: &str| target.and_then(|t| t.get(f)).is_some_and(|v| !v.is_null());
                        if !has("averageUtilization") && !has("averageValue") {
                            out.push(required(
                                &format!("{p}.target.averageUtilization"),
                                "must set either a target raw value or a target utilization",
                            ));
                        }
                        if has("averageUtilization") && has("averageValue") {
                            out.push(forbidden(
                                &format!("{p}.target.averageValue"),
                                "may not set both a target raw value and a target utilization",
                            ));
                        }
                    }
                    _ => {
                        if src
                            .pointer("/metric/name")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .is_empty()
                        {
                            out.push(required(
                                &format!("{p}.metric.name"),
                                "must specify a metric name",
                            ));
                        }
                        out.extend(Self::validate_metric_target(
                            src.get("target"),
                            &format!("{p}.target"),
                        ));
                    }
                }
            }
        }
        for (_, other) in SOURCES.iter().filter(|(_, f)| f != expected) {
            if m.get(*other).is_some_and(|v| !v.is_null()) {
                out.push(forbidden(
                    &format!("{path}.{other}"),
                    "must populate the given metric source only",
                ));
            }
        }
        out
    }

    fn validate_rules(r: &Value, path: &str) -> Vec<Cause> {
        let mut out = Vec::new();
        if let Some(w) = r.get("stabilizationWindowSeconds").and_then(Value::as_i64) {
            if !(0..=3600).contains(&w) {
                let msg = if w < 0 {
                    "must be greater than or equal to zero"
                } else {
                    "must be less than or equal to 3600"
                };
                out.push(invalid_value(
                    &format!("{path}.stabilizationWindowSeconds"),
                    &json!(w),
                    msg,
                ));
            }
        }
        if let Some(sp) = r.get("selectPolicy").and_then(Value::as_str) {
            if !["Max", "Min", "Disabled"].contains(&sp) {
                out.push(not_supported(
                    &format!("{path}.selectPolicy"),
                    &json!(sp),
                    &["Disabled", "Max", "Min"],
                ));
            }
        }
        let policies = r
            .get("policies")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        if policies.is_empty() {
            out.push(required(
                &format!("{path}.policies"),
                "must specify at least one Policy",
            ));
        }
        for (i, p) in policies.iter().enumerate() {
            let pp = format!("{path}.policies[{i}]");
            let ty = p.get("type").and_then(Value::as_str).unwrap_or("");
            if ty != "Pods" && ty != "Percent" {
                out.push(not_supported(
                    &format!("{pp}.type"),
                    &json!(ty),
                    &["Percent", "Pods"],
                ));
            }
            let v = int_at(p, "/value");
            if v <= 0 {
                out.push(invalid_value(
                    &format!("{pp}.value"),
                    &json!(v),
                    "must be greater than zero",
                ));
            }
            let period = int_at(p, "/periodSeconds");
            if period <= 0 {
                out.push(invalid_value(
                    &format!("{pp}.periodSeconds"),
                    &json!(period),
                    "must be greater than zero",
                ));
            } else if period > 1800 {
                out.push(invalid_value(
                    &format!("{pp}.periodSeconds"),
                    &json!(period),
                    "must be less than or equal to 1800",
                ));
            }
        }
        out
    }

    /// `obj` in v2 form (cells may get v1 objects).
    fn as_v2(&self, obj: &Value) -> Value {
        if meta::api_version(obj) == "autoscaling/v1" {
            to_v2(obj).unwrap_or_else(|_| obj.clone())
        } else {
            obj.clone()
        }
    }
}

impl Strategy for HorizontalPodAutoscalers {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        let fills = [
            ("/metadata", json!({}), true),
            ("/spec/scaleTargetRef", json!({}), true),
            ("/spec/scaleTargetRef/kind", json!(""), true),
            ("/spec/scaleTargetRef/name", json!(""), true),
            ("/spec/maxReplicas", json!(0), true),
        ];
        if meta::api_version(&obj) == "autoscaling/v1" {
            decode_filled::<v1::HorizontalPodAutoscaler>(obj, &fills)
        } else {
            decode_filled::<v2::HorizontalPodAutoscaler>(obj, &fills)
        }
    }

    fn convert(&self, obj: Value, to_version: &str) -> Result<Value, String> {
        // An object without apiVersion is in the storage version.
        let from = match meta::api_version(&obj).rsplit('/').next().unwrap_or("") {
            "" => "v2".to_owned(),
            v => v.to_owned(),
        };
        match (from.as_str(), to_version) {
            (f, t) if f == t => Ok(obj),
            ("v1", "v2") => to_v2(&obj),
            ("v2", "v1") => Ok(to_v1(&obj)),
            (f, t) => Err(format!(
                "no conversion from autoscaling/{f} to autoscaling/{t}"
            )),
        }
    }

    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        if spec.get("minReplicas").is_none_or(Value::is_null) {
            spec.insert("minReplicas".into(), json!(1));
        }
        if spec
            .get("metrics")
            .and_then(Value::as_array)
            .is_none_or(|m| m.is_empty())
        {
            spec.insert(
                "metrics".into(),
                json!([cpu_metric(json!(DEFAULT_CPU_UTILIZATION))]),
            );
        }
        if let Some(b) = spec.get_mut("behavior").filter(|b| b.is_object()) {
            let up = default_rules(b.get("scaleUp"), true);
            let down = default_rules(b.get("scaleDown"), false);
            b["scaleUp"] = up;
            b["scaleDown"] = down;
        }
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        reset_status(obj, json!({"desiredReplicas": 0}));
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_status(new, old);
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        let spec = obj.get("spec").cloned().unwrap_or(json!({}));
        let min = spec.get("minReplicas").and_then(Value::as_i64);
        let max = int_at(&spec, "/maxReplicas");
        if let Some(m) = min.filter(|m| *m < 1) {
            out.push(invalid_value(
                "spec.minReplicas",
                &json!(m),
                "must be greater than or equal to 1",
            ));
        }
        if max < 1 {
            out.push(invalid_value(
                "spec.maxReplicas",
                &json!(max),
                "must be greater than 0",
            ));
        }
        if min.is_some_and(|m| max < m) {
            out.push(invalid_value(
                "spec.maxReplicas",
                &json!(max),
                "must be greater than or equal to `minReplicas`",
            ));
        }
        let mut ref_errs = Vec::new();
        for f in ["kind", "name"] {
            let v = spec
                .pointer(&format!("/scaleTargetRef/{f}"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let field = format!("spec.scaleTargetRef.{f}");
            if v.is_empty() {
                ref_errs.push(required(&field, ""));
            } else {
                for msg in path_segment_name(v) {
                    ref_errs.push(invalid_value(&field, &json!(v), &msg));
                }
            }
        }
        if !ref_errs.is_empty() {
            out.extend(ref_errs);
            return out;
        }
        let metric_errs: Vec<Cause> = spec
            .get("metrics")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
            .flat_map(|(i, m)| Self::validate_metric(m, &format!("spec.metrics[{i}]")))
            .collect();
        if !metric_errs.is_empty() {
            out.extend(metric_errs);
            return out;
        }
        if let Some(b) = spec.get("behavior").filter(|b| !b.is_null()) {
            for (f, p) in [
                ("scaleUp", "spec.behavior.scaleUp"),
                ("scaleDown", "spec.behavior.scaleDown"),
            ] {
                if let Some(r) = b.get(f).filter(|r| !r.is_null()) {
                    out.extend(Self::validate_rules(r, p));
                }
            }
        }
        out
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new("Reference", "string", "reference to scaled resource; horizontal pod autoscaler will learn the current resource consumption and will set the desired number of pods by using its Scale subresource."),
            Column::new("Targets", "string", "metrics contains the specifications for which to use to calculate the desired replica count (the maximum replica count across all metrics will be used).  The desired replica count is calculated multiplying the ratio between the target value and the current value by the current number of pods.  Ergo, metrics used must decrease as the pod count is increased, and vice-versa.  See the individual metric source types for more information about how each type of metric must respond."),
            Column::new("MinPods", "string", "minReplicas is the lower limit for the number of replicas to which the autoscaler can scale down.  It defaults to 1 pod.  minReplicas is allowed to be 0 if the alpha feature gate HPAScaleToZero is enabled and at least one Object or External metric is configured.  Scaling is active as long as at least one metric value is available."),
            Column::new("MaxPods", "string", "maxReplicas is the upper limit for the number of replicas to which the autoscaler can scale up. It cannot be less that minReplicas."),
            Column::new("Replicas", "string", "currentReplicas is current number of replicas of pods managed by this autoscaler, as last seen by the autoscaler."),
            AGE_COLUMN,
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let obj = self.as_v2(obj);
        let kind = obj
            .pointer("/spec/scaleTargetRef/kind")
            .and_then(Value::as_str)
            .unwrap_or("");
        let name = obj
            .pointer("/spec/scaleTargetRef/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let specs = obj
            .pointer("/spec/metrics")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let statuses = obj
            .pointer("/status/currentMetrics")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let min = obj
            .pointer("/spec/minReplicas")
            .and_then(Value::as_i64)
            .map(|m| m.to_string())
            .unwrap_or_else(|| "<unset>".into());
        vec![
            json!(format!("{kind}/{name}")),
            json!(format_metrics(specs, statuses)),
            json!(min),
            json!(int_at(&obj, "/spec/maxReplicas")),
            json!(int_at(&obj, "/status/currentReplicas")),
            json!(age(&obj)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1_hpa() -> Value {
        json!({
            "apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                     "minReplicas": 1, "maxReplicas": 3, "targetCPUUtilizationPercentage": 50}
        })
    }

    #[test]
    fn v1_cpu_target_becomes_a_v2_metric_and_back() {
        let v2 = to_v2(&v1_hpa()).expect("converts");
        assert_eq!(v2["apiVersion"], "autoscaling/v2");
        assert_eq!(v2["spec"]["metrics"], json!([cpu_metric(json!(50))]));
        let back = to_v1(&v2);
        assert_eq!(back["spec"]["targetCPUUtilizationPercentage"], 50);
        assert!(back["metadata"].get("annotations").is_none());
        assert_eq!(
            back["status"],
            json!({"currentReplicas": 0, "desiredReplicas": 0})
        );
    }

    #[test]
    fn other_metrics_ride_in_annotations() {
        let mut v2 = to_v2(&v1_hpa()).expect("converts");
        v2["spec"]["metrics"].as_array_mut().expect("metrics").push(json!({
            "type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue", "averageValue": "100Mi"}}
        }));
        v2["spec"]["behavior"] = json!({"scaleDown": {"stabilizationWindowSeconds": 60}});
        v2["status"] = json!({"desiredReplicas": 2, "currentReplicas": 2, "currentMetrics": [
            {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 30, "averageValue": "100m"}}}
        ], "conditions": [{"type": "AbleToScale", "status": "True"}]});
        let v1 = to_v1(&v2);
        let ann = &v1["metadata"]["annotations"];
        let metrics: Value =
            serde_json::from_str(ann[METRICS_ANNOTATION].as_str().expect("metrics")).expect("json");
        assert_eq!(
            metrics,
            json!([{"type": "Resource", "resource": {"name": "memory", "targetAverageValue": "100Mi"}}])
        );
        assert_eq!(v1["status"]["currentCPUUtilizationPercentage"], 30);
        let again = to_v2(&v1).expect("converts");
        assert_eq!(again["spec"]["metrics"][0]["resource"]["name"], "memory");
        assert_eq!(again["spec"]["metrics"][1], cpu_metric(json!(50)));
        assert_eq!(again["spec"]["behavior"], v2["spec"]["behavior"]);
        assert_eq!(
            again["status"]["currentMetrics"],
            v2["status"]["currentMetrics"]
        );
        assert_eq!(again["status"]["conditions"], v2["status"]["conditions"]);
        assert!(again["metadata"].get("annotations").is_none());
    }

    #[test]
    fn defaults_and_validation() {
        let mut h = to_v2(&json!({"apiVersion": "autoscaling/v1", "metadata": {"name": "x"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 0}})).expect("converts");
        HorizontalPodAutoscalers.default(&mut h);
        assert_eq!(h["spec"]["minReplicas"], 1);
        assert_eq!(h["spec"]["metrics"], json!([cpu_metric(json!(80))]));
        let fields: Vec<String> = HorizontalPodAutoscalers
            .validate(&h)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert!(
            fields.contains(&"spec.maxReplicas".to_owned()),
            "{fields:?}"
        );
        h["spec"]["behavior"] = json!({});
        HorizontalPodAutoscalers.default(&mut h);
        assert_eq!(
            h["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"],
            300
        );
        assert_eq!(
            h["spec"]["behavior"]["scaleUp"]["policies"][0]["type"],
            "Pods"
        );
    }

    #[test]
    fn targets_print_like_kubectl() {
        let specs = vec![cpu_metric(json!(50))];
        assert_eq!(format_metrics(&specs, &[]), "cpu: <unknown>/50%");
        let st = vec![
            json!({"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": 12}}}),
        ];
        assert_eq!(format_metrics(&specs, &st), "cpu: 12%/50%");
        let three = vec![
            cpu_metric(json!(1)),
            cpu_metric(json!(2)),
            cpu_metric(json!(3)),
        ];
        assert_eq!(
            format_metrics(&three, &[]),
            "cpu: <unknown>/1%, cpu: <unknown>/2% + 1 more..."
        );
        let cells = HorizontalPodAutoscalers.cells(&v1_hpa());
        assert_eq!(cells.len(), HorizontalPodAutoscalers.columns().len());
        assert_eq!(cells[0], "Deployment/web");
        assert_eq!(cells[1], "cpu: <unknown>/50%");
    }
}
