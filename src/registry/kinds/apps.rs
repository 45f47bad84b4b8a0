//! apps/v1 kinds: deployments, replicasets, statefulsets, daemonsets and
//! controllerrevisions — and the workload building blocks batch/v1 shares with them
//! (pod template defaulting and validation, label selectors, int-or-percent checks,
//! container cells of the printers).
//!
//! Invariant: each kind has upstream v1.33's defaults (pkg/apis/apps/v1/defaults.go
//! and the core/v1 defaults of its embedded pod template), validation messages and
//! field paths (pkg/apis/apps/validation), status handling (reset on create, kept
//! on main-resource updates, written only through `/status`) and printer columns
//! (pkg/printers/internalversion/printers.go).

use std::sync::Arc;

use k8s_openapi::api::apps::v1 as api;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::apiserver::status::{forbidden, invalid_value, not_supported, required, Cause};
use crate::registry::selector::LabelSelector;
use crate::registry::store::immutable;
use crate::registry::typed::roundtrip;
use crate::registry::validation::{self, NameRule};
use crate::registry::{age, meta, Column, Resource, Strategy, AGE_COLUMN, ALL_VERBS};

pub fn resources() -> Vec<Resource> {
    vec![
        Resource {
            group: "apps",
            versions: &["v1"],
            kind: "Deployment",
            resource: "deployments",
            singular: "deployment",
            namespaced: true,
            short_names: &["deploy"],
            categories: &["all"],
            storage_prefix: "deployments",
            subresources: &["status", "scale"],
            verbs: ALL_VERBS,
            name_rule: NameRule::Subdomain,
            strategy: Arc::new(Deployments),
        },
        Resource {
            group: "apps",
            versions: &["v1"],
            kind: "ReplicaSet",
            resource: "replicasets",
            singular: "replicaset",
            namespaced: true,
            short_names: &["rs"],
            categories: &["all"],
            storage_prefix: "replicasets",
            subresources: &["status", "scale"],
            verbs: ALL_VERBS,
            name_rule: NameRule::Subdomain,
            strategy: Arc::new(ReplicaSets),
        },
        Resource {
            group: "apps",
            versions: &["v1"],
            kind: "StatefulSet",
            resource: "statefulsets",
            singular: "statefulset",
            namespaced: true,
            short_names: &["sts"],
            categories: &["all"],
            storage_prefix: "statefulsets",
            subresources: &["status", "scale"],
            verbs: ALL_VERBS,
            name_rule: NameRule::Subdomain,
            strategy: Arc::new(StatefulSets),
        },
        Resource {
            group: "apps",
            versions: &["v1"],
            kind: "DaemonSet",
            resource: "daemonsets",
            singular: "daemonset",
            namespaced: true,
            short_names: &["ds"],
            categories: &["all"],
            storage_prefix: "daemonsets",
            subresources: &["status"],
            verbs: ALL_VERBS,
            name_rule: NameRule::Subdomain,
            strategy: Arc::new(DaemonSets),
        },
        Resource {
            group: "apps",
            versions: &["v1"],
            kind: "ControllerRevision",
            resource: "controllerrevisions",
            singular: "controllerrevision",
            namespaced: true,
            short_names: &[],
            categories: &[],
            storage_prefix: "controllerrevisions",
            subresources: &[],
            verbs: ALL_VERBS,
            name_rule: NameRule::Subdomain,
            strategy: Arc::new(ControllerRevisions),
        },
    ]
}

// ---------------------------------------------------------------------------------
// Shared workload building blocks (also used by batch/v1).
// ---------------------------------------------------------------------------------

/// Type-checks `obj` as `T` after filling in required fields the typed form cannot
/// do without, so that validation (not the decoder) reports them as upstream does.
/// Each fill is (JSON pointer, placeholder, keep): a kept placeholder stays in the
/// result (Go serializes that zero value too), the others are removed again.
pub(crate) fn decode_filled<T: DeserializeOwned + Serialize>(
    mut obj: Value,
    fills: &[(&str, Value, bool)],
) -> Result<(Value, Vec<String>), String> {
    let mut filled = Vec::new();
    for (ptr, placeholder, keep) in fills {
        let Some((parent, key)) = ptr.rsplit_once('/') else {
            continue;
        };
        let target = if parent.is_empty() {
            Some(&mut obj)
        } else {
            obj.pointer_mut(parent)
        };
        if let Some(Value::Object(m)) = target {
            if m.get(key).is_none_or(Value::is_null) {
                m.insert(key.to_owned(), placeholder.clone());
                if !keep {
                    filled.push(*ptr);
                }
            }
        }
    }
    let (mut back, unknown) = roundtrip::<T>(obj)?;
    for ptr in filled {
        if let Some((parent, key)) = ptr.rsplit_once('/') {
            let target = if parent.is_empty() {
                Some(&mut back)
            } else {
                back.pointer_mut(parent)
            };
            if let Some(Value::Object(m)) = target {
                m.remove(key);
            }
        }
    }
    Ok((back, unknown))
}

/// The object at the key `path`, created (with its parents) as an empty object when
/// missing or null; None when something on the way is not an object.
pub(crate) fn object_at<'a>(
    obj: &'a mut Value,
    path: &[&str],
) -> Option<&'a mut Map<String, Value>> {
    let mut cur = obj;
    for key in path {
        let m = cur.as_object_mut()?;
        let next = m.entry(key.to_string()).or_insert_with(|| json!({}));
        if next.is_null() {
            *next = json!({});
        }
        cur = next;
    }
    cur.as_object_mut()
}

/// Sets `key` in `m` when it is absent, null or an empty string.
pub(crate) fn default_field(m: &mut Map<String, Value>, key: &str, value: Value) {
    let missing = match m.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    };
    if missing {
        m.insert(key.to_owned(), value);
    }
}

/// Defaults the pod template at `path` (e.g. `["spec", "template"]`) with the core/v1
/// pod spec defaults pods.rs applies to pods (SetDefaults_PodSpec and everything
/// inside); a present template without a spec gets Go's zero PodSpec defaulted.
pub(crate) fn default_pod_template(obj: &mut Value, path: &[&str]) {
    if obj.pointer(&format!("/{}", path.join("/"))).is_none() {
        return;
    }
    if let Some(template) = object_at(obj, path) {
        let spec = template.entry("spec").or_insert_with(|| json!({}));
        if spec.is_null() {
            *spec = json!({});
        }
        super::pods::default_pod_spec(spec);
    }
}

/// Renders a value as Go's `%#v` of a `map[string]string` (how upstream prints label
/// maps in errors): `map[string]string{"app":"web"}`.
pub(crate) fn go_string_map(m: Option<&Map<String, Value>>) -> String {
    match m {
        None => "map[string]string(nil)".to_owned(),
        Some(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{:?}:{:?}", k, v.as_str().unwrap_or_default()))
                .collect();
            format!("map[string]string{{{}}}", parts.join(", "))
        }
    }
}

/// An Invalid cause whose value is printed as given (upstream's Stringer values).
pub(crate) fn invalid_raw(field: &str, shown: &str, message: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid",
        message: format!("Invalid value: {shown}: {message}"),
        field: field.to_owned(),
    }
}

/// ValidateNonnegativeField on an optional integer at `ptr`.
pub(crate) fn nonnegative(obj: &Value, ptr: &str, field: &str) -> Vec<Cause> {
    match obj.pointer(ptr).and_then(Value::as_i64) {
        Some(n) if n < 0 => vec![invalid_value(
            field,
            &json!(n),
            "must be greater than or equal to 0",
        )],
        _ => Vec::new(),
    }
}

/// An IntOrString as upstream's String(): "25%" or "1".
pub(crate) fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// ValidatePositiveIntOrPercent.
pub(crate) fn positive_int_or_percent(v: Option<&Value>, field: &str) -> Vec<Cause> {
    match v {
        Some(Value::String(s)) => {
            let ok = s
                .strip_suffix('%')
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if ok {
                Vec::new()
            } else {
                vec![invalid_raw(field, s, "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')")]
            }
        }
        Some(Value::Number(n)) if n.as_i64().unwrap_or(0) < 0 => {
            vec![invalid_value(
                field,
                &Value::Number(n.clone()),
                "must be greater than or equal to 0",
            )]
        }
        _ => Vec::new(),
    }
}

/// getIntOrPercentValue: the number, or the percentage without '%'.
pub(crate) fn int_or_percent_value(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => s.trim_end_matches('%').parse().unwrap_or(0),
        _ => 0,
    }
}

/// IsNotMoreThan100Percent.
pub(crate) fn not_more_than_100_percent(v: Option<&Value>, field: &str) -> Vec<Cause> {
    match v {
        Some(Value::String(s)) if s.ends_with('%') && int_or_percent_value(v) > 100 => {
            vec![invalid_raw(field, s, "must not be greater than 100%")]
        }
        _ => Vec::new(),
    }
}

/// ValidateLabelSelector (strict label values).
pub(crate) fn validate_label_selector(sel: &Value, path: &str) -> Vec<Cause> {
    let mut out = validation::labels(
        &format!("{path}.matchLabels"),
        sel.get("matchLabels").and_then(Value::as_object),
    );
    for (i, e) in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let p = format!("{path}.matchExpressions[{i}]");
        let values = e
            .get("values")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let op = e.get("operator").and_then(Value::as_str).unwrap_or("");
        match op {
            "In" | "NotIn" if values.is_empty() => out.push(required(
                &format!("{p}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if !values.is_empty() => out.push(forbidden(
                &format!("{p}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            other => out.push(invalid_value(
                &format!("{p}.operator"),
                &json!(other),
                "not a valid selector operator",
            )),
        }
        let key = e.get("key").and_then(Value::as_str).unwrap_or("");
        for msg in validation::qualified_name(key) {
            out.push(invalid_value(&format!("{p}.key"), &json!(key), &msg));
        }
        for (j, v) in values.iter().enumerate() {
            for msg in validation::label_value(v.as_str().unwrap_or_default()) {
                out.push(invalid_value(&format!("{p}.values[{j}]"), v, &msg));
            }
        }
    }
    out
}

/// True for a selector with neither matchLabels nor matchExpressions.
pub(crate) fn selector_is_empty(sel: &Value) -> bool {
    let n = |f: &str| match sel.get(f) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    };
    n("matchLabels") + n("matchExpressions") == 0
}

/// A metav1.LabelSelector as upstream's `labels.Selector.String()`: requirements
/// sorted by key, set values sorted (`a=b,tier in (x,y),!gone`); "" when empty.
pub fn label_selector_string(sel: &Value) -> String {
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(ml) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in ml {
            reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or_default())));
        }
    }
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e
            .get("key")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let mut values: Vec<&str> = e
            .get("values")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        values.sort_unstable();
        values.dedup();
        let text = match e.get("operator").and_then(Value::as_str).unwrap_or("") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.clone(),
            "DoesNotExist" => format!("!{key}"),
            _ => continue,
        };
        reqs.push((key, text));
    }
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    reqs.into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(",")
}

/// The printers' selector cell: the selector string, "<invalid>" if it cannot be
/// parsed, and "<none>" when absent.
pub(crate) fn selector_cell(sel: Option<&Value>) -> String {
    match sel {
        None | Some(Value::Null) => "<none>".to_owned(),
        Some(s) if LabelSelector::from_json(s).is_err() => "<invalid>".to_owned(),
        Some(s) => label_selector_string(s),
    }
}

/// upstream's `labels.FormatLabels` of a string map: "k=v,k2=v2" or "<none>".
pub(crate) fn format_labels(m: Option<&Value>) -> String {
    let parts: Vec<String> = m
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    if parts.is_empty() {
        "<none>".to_owned()
    } else {
        parts.join(",")
    }
}

/// The "Containers" and "Images" cells of a pod spec (names and images, comma-joined).
pub(crate) fn container_cells(pod_spec: Option<&Value>) -> (String, String) {
    let cs = pod_spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let names: Vec<&str> = cs
        .iter()
        .map(|c| c.get("name").and_then(Value::as_str).unwrap_or(""))
        .collect();
    let images: Vec<&str> = cs
        .iter()
        .map(|c| c.get("image").and_then(Value::as_str).unwrap_or(""))
        .collect();
    (names.join(","), images.join(","))
}

/// An integer at `ptr`, 0 when absent (Go's zero value).
pub(crate) fn int_at(obj: &Value, ptr: &str) -> i64 {
    obj.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

pub(crate) const CONTAINERS_COLUMN: Column = Column::new(
    "Containers",
    "string",
    "Names of each container in the template.",
)
.wide();
pub(crate) const IMAGES_COLUMN: Column = Column::new(
    "Images",
    "string",
    "Images referenced by each container in the template.",
)
.wide();

/// ValidatePodTemplateSpec (pods.rs's pod template validation) plus the rule that
/// a template holds no ephemeral containers.
pub(crate) fn validate_pod_template(template: Option<&Value>, path: &str) -> Vec<Cause> {
    let mut out = super::pods::validate_pod_template(template, path);
    let ephemeral = template
        .and_then(|t| t.pointer("/spec/ephemeralContainers"))
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if ephemeral {
        out.push(forbidden(
            &format!("{path}.spec.ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    out
}

/// The selector checks every replicated workload shares: required, valid, not empty
/// (`empty selector is invalid for <kind>`), and matching the template's labels.
pub(crate) fn validate_workload_selector(obj: &Value, what: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    let sel = obj.pointer("/spec/selector").filter(|s| !s.is_null());
    let Some(sel) = sel else {
        out.push(required("spec.selector", ""));
        return out;
    };
    out.extend(validate_label_selector(sel, "spec.selector"));
    if selector_is_empty(sel) {
        out.push(invalid_value(
            "spec.selector",
            sel,
            &format!("empty selector is invalid for {what}"),
        ));
        return out;
    }
    out.extend(selector_matches_template(
        sel,
        obj.pointer("/spec/template"),
        "spec.template.metadata.labels",
    ));
    out
}

/// "`selector` does not match template `labels`" when the (valid, non-empty)
/// selector does not select the template's labels.
pub(crate) fn selector_matches_template(
    sel: &Value,
    template: Option<&Value>,
    field: &str,
) -> Vec<Cause> {
    let Ok(parsed) = LabelSelector::from_json(sel) else {
        return vec![invalid_value(
            "spec.selector",
            sel,
            "invalid label selector",
        )];
    };
    let labels = template
        .and_then(|t| t.pointer("/metadata/labels"))
        .and_then(Value::as_object);
    if selector_is_empty(sel) || parsed.matches(labels) {
        return Vec::new();
    }
    vec![invalid_raw(
        field,
        &go_string_map(labels),
        "`selector` does not match template `labels`",
    )]
}

/// The checks ValidatePodTemplateSpecForReplicaSet adds for pods that run forever.
fn restart_always_only(obj: &Value, kind: &str, invalid_deadline: bool) -> Vec<Cause> {
    let mut out = Vec::new();
    let rp = obj
        .pointer("/spec/template/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("");
    if rp != "Always" {
        out.push(not_supported(
            "spec.template.spec.restartPolicy",
            &json!(rp),
            &["Always"],
        ));
    }
    if let Some(ads) = obj
        .pointer("/spec/template/spec/activeDeadlineSeconds")
        .filter(|v| !v.is_null())
    {
        let msg = format!("activeDeadlineSeconds in {kind} is not Supported");
        if invalid_deadline {
            out.push(invalid_value(
                "spec.template.spec.activeDeadlineSeconds",
                ads,
                &msg,
            ));
        } else {
            out.push(forbidden("spec.template.spec.activeDeadlineSeconds", &msg));
        }
    }
    out
}

/// Sets `status` to the Go zero value of the kind's status (reset on create).
pub(crate) fn reset_status(obj: &mut Value, zero: Value) {
    if let Some(m) = obj.as_object_mut() {
        m.insert("status".into(), zero);
    }
}

/// Keeps the stored status on a main-resource update.
pub(crate) fn keep_status(new: &mut Value, old: &Value) {
    if let Some(m) = new.as_object_mut() {
        match old.get("status") {
            Some(s) => m.insert("status".into(), s.clone()),
            None => m.remove("status"),
        };
    }
}

/// The selector may not change after creation (apps/v1 and batch/v1).
pub(crate) fn immutable_selector(new: &Value, old: &Value) -> Vec<Cause> {
    let a = new.pointer("/spec/selector");
    let b = old.pointer("/spec/selector");
    if a != b {
        return vec![immutable("spec.selector", a.unwrap_or(&Value::Null))];
    }
    Vec::new()
}

fn typed<T: DeserializeOwned + Serialize>(obj: Value) -> Result<(Value, Vec<String>), String> {
    decode_filled::<T>(
        obj,
        &[
            ("/metadata", json!({}), true),
            ("/spec/selector", json!({}), false),
            ("/spec/template", json!({}), true),
            ("/spec/template/spec", json!({}), true),
            ("/spec/template/spec/containers", json!([]), true),
        ],
    )
}

// ---------------------------------------------------------------------------------
// Deployments
// ---------------------------------------------------------------------------------

struct Deployments;

impl Deployments {
    fn validate_strategy(obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        let strategy = obj.pointer("/spec/strategy").cloned().unwrap_or(json!({}));
        let ru = strategy.get("rollingUpdate").filter(|v| !v.is_null());
        match strategy.get("type").and_then(Value::as_str).unwrap_or("") {
            "Recreate" => {
                if ru.is_some() {
                    out.push(forbidden(
                        "spec.strategy.rollingUpdate",
                        "may not be specified when strategy `type` is 'Recreate'",
                    ));
                }
            }
            "RollingUpdate" => match ru {
                None => out.push(required(
                    "spec.strategy.rollingUpdate",
                    "this should be defaulted and never be nil",
                )),
                Some(ru) => {
                    let mu = ru.get("maxUnavailable");
                    let ms = ru.get("maxSurge");
                    out.extend(positive_int_or_percent(
                        mu,
                        "spec.strategy.rollingUpdate.maxUnavailable",
                    ));
                    out.extend(positive_int_or_percent(
                        ms,
                        "spec.strategy.rollingUpdate.maxSurge",
                    ));
                    if int_or_percent_value(mu) == 0 && int_or_percent_value(ms) == 0 {
                        out.push(invalid_raw(
                            "spec.strategy.rollingUpdate.maxUnavailable",
                            &mu.map(int_or_string).unwrap_or_else(|| "0".into()),
                            "may not be 0 when `maxSurge` is 0",
                        ));
                    }
                    out.extend(not_more_than_100_percent(
                        mu,
                        "spec.strategy.rollingUpdate.maxUnavailable",
                    ));
                }
            },
            other => out.push(not_supported(
                "spec.strategy",
                &json!(other),
                &["Recreate", "RollingUpdate"],
            )),
        }
        out
    }
}

impl Strategy for Deployments {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        typed::<api::Deployment>(obj)
    }

    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        if spec.get("replicas").is_none_or(Value::is_null) {
            spec.insert("replicas".into(), json!(1));
        }
        let strategy = spec.entry("strategy").or_insert_with(|| json!({}));
        if strategy.is_null() {
            *strategy = json!({});
        }
        if let Some(st) = strategy.as_object_mut() {
            default_field(st, "type", json!("RollingUpdate"));
            if st.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
                let ru = st.entry("rollingUpdate").or_insert_with(|| json!({}));
                if ru.is_null() {
                    *ru = json!({});
                }
                if let Some(ru) = ru.as_object_mut() {
                    for f in ["maxUnavailable", "maxSurge"] {
                        if ru.get(f).is_none_or(Value::is_null) {
                            ru.insert(f.into(), json!("25%"));
                        }
                    }
                }
            }
        }
        if spec.get("revisionHistoryLimit").is_none_or(Value::is_null) {
            spec.insert("revisionHistoryLimit".into(), json!(10));
        }
        if spec
            .get("progressDeadlineSeconds")
            .is_none_or(Value::is_null)
        {
            spec.insert("progressDeadlineSeconds".into(), json!(600));
        }
        default_pod_template(obj, &["spec", "template"]);
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        reset_status(obj, json!({}));
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_status(new, old);
        // Annotations are copied to the replica sets, so changing them is a new
        // generation too (upstream's deploymentStrategy.PrepareForUpdate).
        let annotations = |o: &Value| {
            meta::metadata(o)
                .and_then(|m| m.get("annotations"))
                .cloned()
        };
        if annotations(new) != annotations(old) {
            meta::set(new, "generation", json!(meta::generation(old) + 1));
        }
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = nonnegative(obj, "/spec/replicas", "spec.replicas");
        out.extend(validate_workload_selector(obj, "deployment"));
        out.extend(validate_pod_template(
            obj.pointer("/spec/template"),
            "spec.template",
        ));
        out.extend(restart_always_only(obj, "ReplicaSet", false));
        out.extend(Self::validate_strategy(obj));
        out.extend(nonnegative(
            obj,
            "/spec/minReadySeconds",
            "spec.minReadySeconds",
        ));
        out.extend(nonnegative(
            obj,
            "/spec/revisionHistoryLimit",
            "spec.revisionHistoryLimit",
        ));
        if let Some(pds) = obj
            .pointer("/spec/progressDeadlineSeconds")
            .and_then(Value::as_i64)
        {
            out.extend(nonnegative(
                obj,
                "/spec/progressDeadlineSeconds",
                "spec.progressDeadlineSeconds",
            ));
            if pds <= int_at(obj, "/spec/minReadySeconds") {
                out.push(invalid_value(
                    "spec.progressDeadlineSeconds",
                    &json!(pds),
                    "must be greater than minReadySeconds",
                ));
            }
        }
        out
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut out = self.validate(new);
        out.extend(immutable_selector(new, old));
        out
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new("Ready", "string", "Number of the pod with ready state"),
            Column::new("Up-to-date", "string", "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
            Column::new("Available", "string", "Total number of available non-terminating pods (ready for at least minReadySeconds) targeted by this deployment."),
            AGE_COLUMN,
            CONTAINERS_COLUMN,
            IMAGES_COLUMN,
            Column::new("Selector", "string", "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment. It must match the pod template's labels.").wide(),
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let (containers, images) = container_cells(obj.pointer("/spec/template/spec"));
        vec![
            json!(format!(
                "{}/{}",
                int_at(obj, "/status/readyReplicas"),
                int_at(obj, "/spec/replicas")
            )),
            json!(int_at(obj, "/status/updatedReplicas")),
            json!(int_at(obj, "/status/availableReplicas")),
            json!(age(obj)),
            json!(containers),
            json!(images),
            json!(selector_cell(obj.pointer("/spec/selector"))),
        ]
    }
}

// ---------------------------------------------------------------------------------
// ReplicaSets
// ---------------------------------------------------------------------------------

struct ReplicaSets;

impl Strategy for ReplicaSets {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        typed::<api::ReplicaSet>(obj)
    }

    fn default(&self, obj: &mut Value) {
        if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
            if spec.get("replicas").is_none_or(Value::is_null) {
                spec.insert("replicas".into(), json!(1));
            }
        }
        default_pod_template(obj, &["spec", "template"]);
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        reset_status(obj, json!({"replicas": 0}));
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_status(new, old);
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = nonnegative(obj, "/spec/replicas", "spec.replicas");
        out.extend(nonnegative(
            obj,
            "/spec/minReadySeconds",
            "spec.minReadySeconds",
        ));
        // upstream's ReplicaSet message names deployments, as it always has.
        out.extend(validate_workload_selector(obj, "deployment"));
        out.extend(validate_pod_template(
            obj.pointer("/spec/template"),
            "spec.template",
        ));
        out.extend(restart_always_only(obj, "ReplicaSet", false));
        out
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut out = self.validate(new);
        out.extend(immutable_selector(new, old));
        out
    }

    fn field(&self, obj: &Value, field: &str) -> Option<String> {
        match field {
            "status.replicas" => Some(int_at(obj, "/status/replicas").to_string()),
            _ => None,
        }
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &["status.replicas"]
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new("Desired", "integer", "Replicas is the number of desired pods. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset"),
            Column::new("Current", "integer", "Replicas is the most recently observed number of non-terminating pods. More info: https://kubernetes.io/docs/concepts/workloads/controllers/replicaset"),
            Column::new("Ready", "integer", "The number of non-terminating pods targeted by this ReplicaSet with a Ready Condition."),
            AGE_COLUMN,
            CONTAINERS_COLUMN,
            IMAGES_COLUMN,
            Column::new("Selector", "string", "Selector is a label query over pods that should match the replica count. Label keys and values that must match in order to be controlled by this replica set. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors").wide(),
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let (containers, images) = container_cells(obj.pointer("/spec/template/spec"));
        vec![
            json!(int_at(obj, "/spec/replicas")),
            json!(int_at(obj, "/status/replicas")),
            json!(int_at(obj, "/status/readyReplicas")),
            json!(age(obj)),
            json!(containers),
            json!(images),
            json!(selector_cell(obj.pointer("/spec/selector"))),
        ]
    }
}

// ---------------------------------------------------------------------------------
// StatefulSets
// ---------------------------------------------------------------------------------

struct StatefulSets;

impl StatefulSets {
    fn validate_spec(obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        match obj
            .pointer("/spec/podManagementPolicy")
            .and_then(Value::as_str)
            .unwrap_or("")
        {
            "" => out.push(required("spec.podManagementPolicy", "")),
            "OrderedReady" | "Parallel" => {}
            other => out.push(invalid_value(
                "spec.podManagementPolicy",
                &json!(other),
                "must be 'OrderedReady' or 'Parallel'",
            )),
        }
        let ru = obj
            .pointer("/spec/updateStrategy/rollingUpdate")
            .filter(|v| !v.is_null());
        match obj
            .pointer("/spec/updateStrategy/type")
            .and_then(Value::as_str)
            .unwrap_or("")
        {
            "" => out.push(required("spec.updateStrategy", "")),
            "OnDelete" => {
                if let Some(ru) = ru {
                    out.push(invalid_value(
                        "spec.updateStrategy.rollingUpdate",
                        ru,
                        "only allowed for updateStrategy 'RollingUpdate'",
                    ));
                }
            }
            "RollingUpdate" => {
                if let Some(ru) = ru {
                    out.extend(nonnegative(
                        ru,
                        "/partition",
                        "spec.updateStrategy.rollingUpdate.partition",
                    ));
                    if let Some(mu) = ru.get("maxUnavailable").filter(|v| !v.is_null()) {
                        let f = "spec.updateStrategy.rollingUpdate.maxUnavailable";
                        out.extend(positive_int_or_percent(Some(mu), f));
                        if int_or_percent_value(Some(mu)) == 0 {
                            out.push(invalid_raw(f, &int_or_string(mu), "must be greater than 0"));
                        }
                        out.extend(not_more_than_100_percent(Some(mu), f));
                    }
                }
            }
            other => out.push(invalid_value(
                "spec.updateStrategy",
                &json!(other),
                "must be 'RollingUpdate' or 'OnDelete'",
            )),
        }
        for (f, ptr) in [
            (
                "whenDeleted",
                "/spec/persistentVolumeClaimRetentionPolicy/whenDeleted",
            ),
            (
                "whenScaled",
                "/spec/persistentVolumeClaimRetentionPolicy/whenScaled",
            ),
        ] {
            if let Some(v) = obj.pointer(ptr).and_then(Value::as_str) {
                if v != "Retain" && v != "Delete" {
                    out.push(not_supported(
                        &format!("spec.persistentVolumeClaimRetentionPolicy.{f}"),
                        &json!(v),
                        &["Retain", "Delete"],
                    ));
                }
            }
        }
        out.extend(nonnegative(
            obj,
            "/spec/ordinals/start",
            "spec.ordinals.start",
        ));
        out.extend(nonnegative(obj, "/spec/replicas", "spec.replicas"));
        out.extend(nonnegative(
            obj,
            "/spec/minReadySeconds",
            "spec.minReadySeconds",
        ));
        out.extend(validate_workload_selector(obj, "statefulset"));
        out.extend(validate_pod_template(
            obj.pointer("/spec/template"),
            "spec.template",
        ));
        out.extend(restart_always_only(obj, "StatefulSet", false));
        out
    }
}

impl Strategy for StatefulSets {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        typed::<api::StatefulSet>(obj)
    }

    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        default_field(spec, "podManagementPolicy", json!("OrderedReady"));
        let us = spec.entry("updateStrategy").or_insert_with(|| json!({}));
        if us.is_null() {
            *us = json!({});
        }
        if let Some(us) = us.as_object_mut() {
            if us
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                us.insert("type".into(), json!("RollingUpdate"));
                if us.get("rollingUpdate").is_none_or(Value::is_null) {
                    us.insert("rollingUpdate".into(), json!({}));
                }
            }
            if us.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
                if let Some(Value::Object(ru)) = us.get_mut("rollingUpdate") {
                    if ru.get("partition").is_none_or(Value::is_null) {
                        ru.insert("partition".into(), json!(0));
                    }
                }
            }
        }
        let policy = spec
            .entry("persistentVolumeClaimRetentionPolicy")
            .or_insert_with(|| json!({}));
        if policy.is_null() {
            *policy = json!({});
        }
        if let Some(p) = policy.as_object_mut() {
            default_field(p, "whenDeleted", json!("Retain"));
            default_field(p, "whenScaled", json!("Retain"));
        }
        if spec.get("replicas").is_none_or(Value::is_null) {
            spec.insert("replicas".into(), json!(1));
        }
        if spec.get("revisionHistoryLimit").is_none_or(Value::is_null) {
            spec.insert("revisionHistoryLimit".into(), json!(10));
        }
        default_pod_template(obj, &["spec", "template"]);
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        reset_status(obj, json!({"replicas": 0, "availableReplicas": 0}));
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_status(new, old);
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        Self::validate_spec(obj)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut out = Self::validate_spec(new);
        const MUTABLE: [&str; 7] = [
            "replicas",
            "template",
            "updateStrategy",
            "minReadySeconds",
            "ordinals",
            "revisionHistoryLimit",
            "persistentVolumeClaimRetentionPolicy",
        ];
        let rest = |o: &Value| {
            let mut spec = o
                .get("spec")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            for f in MUTABLE {
                spec.remove(f);
            }
            spec
        };
        if rest(new) != rest(old) {
            out.push(forbidden("spec", "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"));
        }
        out
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new("Ready", "string", "Number of the pod with ready state"),
            AGE_COLUMN,
            CONTAINERS_COLUMN,
            IMAGES_COLUMN,
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let (containers, images) = container_cells(obj.pointer("/spec/template/spec"));
        vec![
            json!(format!(
                "{}/{}",
                int_at(obj, "/status/readyReplicas"),
                int_at(obj, "/spec/replicas")
            )),
            json!(age(obj)),
            json!(containers),
            json!(images),
        ]
    }
}

// ---------------------------------------------------------------------------------
// DaemonSets
// ---------------------------------------------------------------------------------

/// apps/v1 carries the internal templateGeneration in this annotation.
const TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

struct DaemonSets;

impl DaemonSets {
    fn template_generation(obj: &Value) -> i64 {
        meta::metadata(obj)
            .and_then(|m| m.get("annotations"))
            .and_then(|a| a.get(TEMPLATE_GENERATION))
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    fn set_template_generation(obj: &mut Value, g: i64) {
        let md = meta::metadata_mut(obj);
        let ann = md.entry("annotations").or_insert_with(|| json!({}));
        if !ann.is_object() {
            *ann = json!({});
        }
        if let Some(a) = ann.as_object_mut() {
            a.insert(TEMPLATE_GENERATION.into(), json!(g.to_string()));
        }
    }

    fn validate_strategy(obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        let s = obj
            .pointer("/spec/updateStrategy")
            .cloned()
            .unwrap_or(json!({}));
        match s.get("type").and_then(Value::as_str).unwrap_or("") {
            "OnDelete" => {}
            "RollingUpdate" => {
                let Some(ru) = s.get("rollingUpdate").filter(|v| !v.is_null()) else {
                    out.push(required("spec.updateStrategy.rollingUpdate", ""));
                    return out;
                };
                let (mu, ms) = (ru.get("maxUnavailable"), ru.get("maxSurge"));
                let (fu, fs) = (
                    "spec.updateStrategy.rollingUpdate.maxUnavailable",
                    "spec.updateStrategy.rollingUpdate.maxSurge",
                );
                out.extend(positive_int_or_percent(mu, fu));
                out.extend(positive_int_or_percent(ms, fs));
                out.extend(not_more_than_100_percent(mu, fu));
                out.extend(not_more_than_100_percent(ms, fs));
                match (int_or_percent_value(mu) != 0, int_or_percent_value(ms) != 0) {
                    (true, true) => out.push(invalid_raw(
                        fs,
                        &ms.map(int_or_string).unwrap_or_default(),
                        "may not be set when maxUnavailable is non-zero",
                    )),
                    (false, false) => out.push(required(fu, "cannot be 0 when maxSurge is 0")),
                    _ => {}
                }
            }
            other => out.push(not_supported(
                "spec.updateStrategy",
                &json!(other),
                &["RollingUpdate", "OnDelete"],
            )),
        }
        out
    }
}

impl Strategy for DaemonSets {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        typed::<api::DaemonSet>(obj)
    }

    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        let us = spec.entry("updateStrategy").or_insert_with(|| json!({}));
        if us.is_null() {
            *us = json!({});
        }
        if let Some(us) = us.as_object_mut() {
            default_field(us, "type", json!("RollingUpdate"));
            if us.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
                let ru = us.entry("rollingUpdate").or_insert_with(|| json!({}));
                if ru.is_null() {
                    *ru = json!({});
                }
                if let Some(ru) = ru.as_object_mut() {
                    if ru.get("maxUnavailable").is_none_or(Value::is_null) {
                        ru.insert("maxUnavailable".into(), json!(1));
                    }
                    if ru.get("maxSurge").is_none_or(Value::is_null) {
                        ru.insert("maxSurge".into(), json!(0));
                    }
                }
            }
        }
        if spec.get("revisionHistoryLimit").is_none_or(Value::is_null) {
            spec.insert("revisionHistoryLimit".into(), json!(10));
        }
        default_pod_template(obj, &["spec", "template"]);
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        reset_status(
            obj,
            json!({"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0, "numberReady": 0}),
        );
        Self::set_template_generation(obj, 1);
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_status(new, old);
        let mut g = Self::template_generation(old);
        if new.pointer("/spec/template") != old.pointer("/spec/template") {
            g += 1;
        }
        Self::set_template_generation(new, g);
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = validate_workload_selector(obj, "daemonset");
        out.extend(validate_pod_template(
            obj.pointer("/spec/template"),
            "spec.template",
        ));
        out.extend(restart_always_only(obj, "DaemonSet", true));
        out.extend(nonnegative(
            obj,
            "/spec/minReadySeconds",
            "spec.minReadySeconds",
        ));
        out.extend(Self::validate_strategy(obj));
        out.extend(nonnegative(
            obj,
            "/spec/revisionHistoryLimit",
            "spec.revisionHistoryLimit",
        ));
        out
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut out = self.validate(new);
        out.extend(immutable_selector(new, old));
        out
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new("Desired", "integer", "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod). More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"),
            Column::new("Current", "integer", "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod. More info: https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"),
            Column::new("Ready", "integer", "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition."),
            Column::new("Up-to-date", "integer", "The total number of nodes that are running updated daemon pod"),
            Column::new("Available", "integer", "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)"),
            Column::new("Node Selector", "string", "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/"),
            AGE_COLUMN,
            CONTAINERS_COLUMN,
            IMAGES_COLUMN,
            Column::new("Selector", "string", "A label query over pods that are managed by the daemon set. Must match in order to be controlled. It must match the pod template's labels. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors").wide(),
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let (containers, images) = container_cells(obj.pointer("/spec/template/spec"));
        vec![
            json!(int_at(obj, "/status/desiredNumberScheduled")),
            json!(int_at(obj, "/status/currentNumberScheduled")),
            json!(int_at(obj, "/status/numberReady")),
            json!(int_at(obj, "/status/updatedNumberScheduled")),
            json!(int_at(obj, "/status/numberAvailable")),
            json!(format_labels(
                obj.pointer("/spec/template/spec/nodeSelector")
            )),
            json!(age(obj)),
            json!(containers),
            json!(images),
            json!(selector_cell(obj.pointer("/spec/selector"))),
        ]
    }
}

// ---------------------------------------------------------------------------------
// ControllerRevisions
// ---------------------------------------------------------------------------------

struct ControllerRevisions;

impl Strategy for ControllerRevisions {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        decode_filled::<api::ControllerRevision>(
            obj,
            &[
                ("/metadata", json!({}), true),
                ("/revision", json!(0), true),
            ],
        )
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        if obj.get("data").is_none_or(Value::is_null) {
            out.push(required("data", "data is mandatory"));
        }
        out.extend(nonnegative(obj, "/revision", "revision"));
        out
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut out = self.validate(new);
        if new.get("data") != old.get("data") {
            out.push(immutable("data", new.get("data").unwrap_or(&Value::Null)));
        }
        out
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new("Controller", "string", "Controller of the object"),
            Column::new(
                "Revision",
                "string",
                "Revision indicates the revision of the state represented by Data.",
            ),
            AGE_COLUMN,
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let owner = meta::metadata(obj)
            .and_then(|m| m.get("ownerReferences"))
            .and_then(Value::as_array)
            .and_then(|refs| {
                refs.iter()
                    .find(|r| r.get("controller").and_then(Value::as_bool) == Some(true))
            });
        let controller = match owner {
            None => "<none>".to_owned(),
            Some(r) => {
                let kind = r.get("kind").and_then(Value::as_str).unwrap_or("");
                let name = r.get("name").and_then(Value::as_str).unwrap_or("");
                let api_version = r.get("apiVersion").and_then(Value::as_str).unwrap_or("");
                let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
                let gk = if group.is_empty() {
                    kind.to_owned()
                } else {
                    format!("{kind}.{group}")
                };
                if gk.is_empty() {
                    name.to_owned()
                } else {
                    format!("{}/{name}", gk.to_lowercase())
                }
            }
        };
        vec![
            json!(controller),
            json!(int_at(obj, "/revision")),
            json!(age(obj)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(labels: Value, selector: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {
                "selector": selector,
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}
            }
        })
    }

    #[test]
    fn deployments_get_upstream_defaults() {
        let mut d = deployment(
            json!({"app": "web"}),
            json!({"matchLabels": {"app": "web"}}),
        );
        Deployments.default(&mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(
            d["spec"]["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
        );
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Always");
        assert_eq!(pod["dnsPolicy"], "ClusterFirst");
        assert_eq!(pod["terminationGracePeriodSeconds"], 30);
        assert_eq!(pod["schedulerName"], "default-scheduler");
        assert_eq!(pod["securityContext"], json!({}));
        assert_eq!(pod["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(
            pod["containers"][0]["terminationMessagePath"],
            "/dev/termination-log"
        );
        assert_eq!(pod["containers"][0]["terminationMessagePolicy"], "File");
        assert!(
            Deployments.validate(&d).is_empty(),
            "{:?}",
            Deployments.validate(&d)
        );
    }

    #[test]
    fn selector_must_match_template_labels() {
        let mut d = deployment(
            json!({"app": "other"}),
            json!({"matchLabels": {"app": "web"}}),
        );
        Deployments.default(&mut d);
        let causes = Deployments.validate(&d);
        assert_eq!(causes.len(), 1, "{causes:?}");
        assert_eq!(causes[0].field, "spec.template.metadata.labels");
        assert_eq!(
            causes[0].message,
            "Invalid value: map[string]string{\"app\":\"other\"}: `selector` does not match template `labels`"
        );
        let mut d = deployment(json!({"app": "web"}), json!({}));
        Deployments.default(&mut d);
        assert!(Deployments.validate(&d).iter().any(|c| c
            .message
            .contains("empty selector is invalid for deployment")));
    }

    #[test]
    fn a_missing_selector_is_a_validation_error_not_a_decode_error() {
        let mut d = deployment(json!({"app": "web"}), json!(null));
        d["spec"].as_object_mut().expect("spec").remove("selector");
        let (mut back, _) = Deployments.decode(d).expect("decodes");
        assert!(back.pointer("/spec/selector").is_none());
        Deployments.default(&mut back);
        let causes = Deployments.validate(&back);
        assert_eq!(causes[0].field, "spec.selector");
        assert_eq!(causes[0].reason, "FieldValueRequired");
    }

    #[test]
    fn strategies_and_counts_are_checked() {
        let mut d = deployment(
            json!({"app": "web"}),
            json!({"matchLabels": {"app": "web"}}),
        );
        d["spec"]["replicas"] = json!(-1);
        d["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}});
        Deployments.default(&mut d);
        let fields: Vec<String> = Deployments
            .validate(&d)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert!(fields.contains(&"spec.replicas".to_owned()));
        assert!(fields.contains(&"spec.strategy.rollingUpdate.maxUnavailable".to_owned()));
        let mut r = d.clone();
        r["spec"]["strategy"] = json!({"type": "Recreate", "rollingUpdate": {}});
        assert!(
            Deployments
                .validate(&r)
                .iter()
                .any(|c| c.field == "spec.strategy.rollingUpdate"
                    && c.reason == "FieldValueForbidden")
        );
    }

    #[test]
    fn selectors_print_like_upstream() {
        let sel = json!({"matchLabels": {"tier": "web", "app": "x"}, "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "dev"]},
            {"key": "gone", "operator": "DoesNotExist"}
        ]});
        assert_eq!(
            label_selector_string(&sel),
            "app=x,env in (dev,prod),!gone,tier=web"
        );
        assert_eq!(label_selector_string(&json!({})), "");
    }

    #[test]
    fn update_keeps_status_and_selector() {
        let mut old = deployment(
            json!({"app": "web"}),
            json!({"matchLabels": {"app": "web"}}),
        );
        Deployments.default(&mut old);
        old["status"] = json!({"replicas": 2});
        let mut new = old.clone();
        new["status"] = json!({"replicas": 9});
        new["spec"]["selector"] = json!({"matchLabels": {"app": "web", "x": "y"}});
        Deployments.prepare_for_update(&mut new, &old);
        assert_eq!(new["status"]["replicas"], 2);
        assert!(Deployments
            .validate_update(&new, &old)
            .iter()
            .any(|c| c.field == "spec.selector" && c.message.contains("field is immutable")));
    }

    #[test]
    fn statefulsets_default_and_restrict_updates() {
        let mut s = json!({"metadata": {"name": "db"}, "spec": {
            "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}}
        }});
        StatefulSets.default(&mut s);
        assert_eq!(
            s["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(s["spec"]["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            s["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"],
            "Retain"
        );
        assert!(
            StatefulSets.validate(&s).is_empty(),
            "{:?}",
            StatefulSets.validate(&s)
        );
        let mut n = s.clone();
        n["spec"]["replicas"] = json!(3);
        assert!(StatefulSets.validate_update(&n, &s).is_empty());
        n["spec"]["serviceName"] = json!("other");
        assert!(StatefulSets
            .validate_update(&n, &s)
            .iter()
            .any(|c| c.field == "spec" && c.reason == "FieldValueForbidden"));
    }

    #[test]
    fn daemonsets_count_template_generations() {
        let mut d = json!({"metadata": {"name": "agent"}, "spec": {
            "selector": {"matchLabels": {"app": "a"}},
            "template": {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "a", "image": "agent:1"}]}}
        }});
        DaemonSets.default(&mut d);
        assert_eq!(
            d["spec"]["updateStrategy"]["rollingUpdate"],
            json!({"maxSurge": 0, "maxUnavailable": 1})
        );
        DaemonSets.prepare_for_create(&mut d);
        assert_eq!(d["metadata"]["annotations"][TEMPLATE_GENERATION], "1");
        assert!(
            DaemonSets.validate(&d).is_empty(),
            "{:?}",
            DaemonSets.validate(&d)
        );
        let mut n = d.clone();
        n["spec"]["template"]["spec"]["containers"][0]["image"] = json!("agent:2");
        DaemonSets.prepare_for_update(&mut n, &d);
        assert_eq!(n["metadata"]["annotations"][TEMPLATE_GENERATION], "2");
        let cells = DaemonSets.cells(&d);
        assert_eq!(cells.len(), DaemonSets.columns().len());
        assert_eq!(cells[5], "<none>");
    }

    #[test]
    fn rows_match_columns() {
        let mut d = deployment(
            json!({"app": "web"}),
            json!({"matchLabels": {"app": "web"}}),
        );
        Deployments.default(&mut d);
        let cells = Deployments.cells(&d);
        assert_eq!(cells.len(), Deployments.columns().len());
        assert_eq!(cells[0], "0/1");
        assert_eq!(cells[6], "app=web");
        assert_eq!(ReplicaSets.cells(&d).len(), ReplicaSets.columns().len());
        assert_eq!(StatefulSets.cells(&d).len(), StatefulSets.columns().len());
        let cr = json!({"metadata": {"ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "controller": true}]}, "revision": 2});
        assert_eq!(ControllerRevisions.cells(&cr)[0], "statefulset.apps/db");
    }

    #[test]
    fn pod_templates_are_validated_under_their_path() {
        let t = json!({"spec": {"containers": [
            {"name": "a", "image": "x", "ports": [{"containerPort": 70000, "protocol": "TCP"}]},
            {"name": "a", "image": "x"}
        ], "ephemeralContainers": [{"name": "e", "image": "x"}]}});
        let fields: Vec<String> = validate_pod_template(Some(&t), "spec.template")
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert!(
            fields.contains(&"spec.template.spec.containers[0].ports[0].containerPort".to_owned()),
            "{fields:?}"
        );
        assert!(
            fields.contains(&"spec.template.spec.containers[1].name".to_owned()),
            "{fields:?}"
        );
        assert!(
            fields.contains(&"spec.template.spec.ephemeralContainers".to_owned()),
            "{fields:?}"
        );
        let mut d = json!({"spec": {"template": {}}});
        default_pod_template(&mut d, &["spec", "template"]);
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
    }
}
