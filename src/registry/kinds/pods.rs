//! core/v1 workload kinds: pods, podtemplates and replicationcontrollers, with
//! upstream's pod-spec defaulting (`SetDefaults_PodSpec`, `_Container`, `_Probe`, the
//! volume sources), pod-spec validation, the pod update rules, the QoS class, table
//! columns and field selectors. The pod-spec helpers are public so every kind that
//! embeds a pod template can share them.
//!
//! Invariants: defaulting is idempotent (running it twice changes nothing); validation
//! only reads; after creation a pod's spec changes only where upstream allows it
//! (images, activeDeadlineSeconds, added tolerations, removed scheduling gates), and
//! its node only through the `binding` subresource.
//!
//! Deleting a pod removes it at once, whatever `gracePeriodSeconds` says: upstream
//! marks a scheduled pod and waits for its kubelet to confirm termination, and this
//! server runs no kubelet that would ever confirm, so a graceful deletion would never
//! finish (finalizers still hold a pod as they hold any object).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use k8s_openapi::api::core::v1 as api;
use serde_json::{json, Map, Value};

use crate::apiserver::status::{
    duplicate, forbidden, invalid_value, not_supported, required, Cause,
};
use crate::registry::typed::roundtrip;
use crate::registry::validation::{
    dns1123_label, dns1123_subdomain, label_value, labels as validate_labels, qualified_name,
    NameRule,
};
use crate::registry::{age, meta, Column, Resource, Strategy, AGE_COLUMN, ALL_VERBS};

pub fn resources() -> Vec<Resource> {
    vec![
        Resource {
            group: "",
            versions: &["v1"],
            kind: "Pod",
            resource: "pods",
            singular: "pod",
            namespaced: true,
            short_names: &["po"],
            categories: &["all"],
            storage_prefix: "pods",
            subresources: &["status", "binding", "eviction"],
            verbs: ALL_VERBS,
            name_rule: NameRule::Subdomain,
            strategy: Arc::new(Pods),
        },
        Resource {
            group: "",
            versions: &["v1"],
            kind: "PodTemplate",
            resource: "podtemplates",
            singular: "podtemplate",
            namespaced: true,
            short_names: &[],
            categories: &[],
            storage_prefix: "podtemplates",
            subresources: &[],
            verbs: ALL_VERBS,
            name_rule: NameRule::Subdomain,
            strategy: Arc::new(PodTemplates),
        },
        Resource {
            group: "",
            versions: &["v1"],
            kind: "ReplicationController",
            resource: "replicationcontrollers",
            singular: "replicationcontroller",
            namespaced: true,
            short_names: &["rc"],
            categories: &["all"],
            storage_prefix: "controllers",
            subresources: &["status", "scale"],
            verbs: ALL_VERBS,
            name_rule: NameRule::Subdomain,
            strategy: Arc::new(ReplicationControllers),
        },
    ]
}

// ---------------------------------------------------------------------------------
// Small JSON helpers shared by the core/v1 kind files.
// ---------------------------------------------------------------------------------

/// The string at a JSON pointer, "" when absent or not a string.
pub fn str_at<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or("")
}

/// The array at a JSON pointer, empty when absent.
pub fn arr_at<'a>(v: &'a Value, ptr: &str) -> &'a [Value] {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// The object at a JSON pointer, if any.
pub fn map_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a Map<String, Value>> {
    v.pointer(ptr).and_then(Value::as_object)
}

/// True when a field is absent, null, "" or 0 (Go's zero value for what we default).
fn is_unset(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

fn default_field(m: &mut Map<String, Value>, key: &str, value: Value) {
    if is_unset(m.get(key)) {
        m.insert(key.to_owned(), value);
    }
}

/// The object under `key`, created when missing (or not an object).
fn child<'a>(m: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let v = m.entry(key.to_owned()).or_insert_with(|| json!({}));
    if !v.is_object() {
        *v = json!({});
    }
    match v {
        Value::Object(o) => o,
        _ => unreachable!("made an object above"),
    }
}

fn each_object_mut(
    m: &mut Map<String, Value>,
    key: &str,
    mut f: impl FnMut(&mut Map<String, Value>),
) {
    if let Some(list) = m.get_mut(key).and_then(Value::as_array_mut) {
        for item in list {
            if let Some(o) = item.as_object_mut() {
                f(o);
            }
        }
    }
}

/// `labels.FormatLabels`: sorted `k=v` pairs joined by ",", or `<none>`.
pub fn format_labels(m: Option<&Map<String, Value>>) -> String {
    let sorted: BTreeMap<&String, &str> = m
        .into_iter()
        .flatten()
        .map(|(k, v)| (k, v.as_str().unwrap_or("")))
        .collect();
    if sorted.is_empty() {
        return "<none>".into();
    }
    sorted
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// upstream's `field.NotFound`.
pub fn not_found(field: &str, value: &Value) -> Cause {
    let shown = match value {
        Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    };
    Cause {
        reason: "FieldValueNotFound",
        message: format!("Not found: {shown}"),
        field: field.to_owned(),
    }
}

/// `IsValidPortNum`.
pub fn port_num_error(n: i64) -> Option<&'static str> {
    (!(1..=65535).contains(&n)).then_some("must be between 1 and 65535, inclusive")
}

/// `IsValidPortName` (an IANA_SVC_NAME).
pub fn port_name_errors(s: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    if s.len() > 15 {
        out.push("must be no more than 15 characters");
    }
    if s.is_empty()
        || !s
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        out.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    }
    if !s.bytes().any(|c| c.is_ascii_lowercase()) {
        out.push("must contain at least one letter (a-z)");
    }
    if s.contains("--") {
        out.push("must not contain consecutive hyphens");
    }
    if s.starts_with('-') || s.ends_with('-') {
        out.push("must not begin or end with a hyphen");
    }
    out
}

/// The message upstream gives for a malformed IP address.
pub const INVALID_IP: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

/// A port given as a number or an IANA name (probes, targetPort).
fn int_or_name_port(v: &Value, path: &str, out: &mut Vec<Cause>) {
    match v {
        Value::Number(n) => {
            if let Some(e) = port_num_error(n.as_i64().unwrap_or(0)) {
                out.push(invalid_value(path, v, e));
            }
        }
        Value::String(s) => {
            for e in port_name_errors(s) {
                out.push(invalid_value(path, v, e));
            }
        }
        _ => out.push(required(path, "")),
    }
}

// ---------------------------------------------------------------------------------
// Quantities (resource.Quantity), enough to compare and add them.
// ---------------------------------------------------------------------------------

/// The regular expression upstream's decoder names when a quantity does not parse.
pub const QUANTITY_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// A quantity in billionths of a unit (rounded up), or None when it does not parse or
/// does not fit.
pub fn parse_quantity(s: &str) -> Option<i128> {
    let s = s.trim();
    let split = s
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || (*i == 0 && (*c == '+' || *c == '-'))))
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let (negative, digits) = match num.as_bytes().first() {
        Some(b'-') => (true, &num[1..]),
        Some(b'+') => (false, &num[1..]),
        _ => (false, num),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if (int_part.is_empty() && frac_part.is_empty()) || frac_part.contains('.') {
        return None;
    }
    let mut mantissa: i128 = 0;
    for c in int_part.bytes().chain(frac_part.bytes()) {
        mantissa = mantissa
            .checked_mul(10)?
            .checked_add(i128::from(c - b'0'))?;
    }
    // value = mantissa * 10^(exp10) * 2^(exp2), in nano units: exp10 += 9.
    let (mut exp10, exp2): (i32, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        other => {
            let rest = other
                .strip_prefix('e')
                .or_else(|| other.strip_prefix('E'))?;
            let (sign, d) = match rest.as_bytes().first() {
                Some(b'-') => (-1, &rest[1..]),
                Some(b'+') => (1, &rest[1..]),
                _ => (1, rest),
            };
            if d.is_empty() || !d.bytes().all(|c| c.is_ascii_digit()) || d.len() > 4 {
                return None;
            }
            (sign * d.parse::<i32>().ok()?, 0)
        }
    };
    exp10 += 9 - frac_part.len() as i32;
    let mut value = mantissa.checked_mul(1i128.checked_shl(exp2)?)?;
    if exp10 >= 0 {
        value = value.checked_mul(10i128.checked_pow(exp10 as u32)?)?;
    } else {
        let div = 10i128.checked_pow((-exp10) as u32).unwrap_or(i128::MAX);
        value = (value + div - 1) / div;
    }
    Some(if negative { -value } else { value })
}

/// Checks every quantity of a resource map; returns the decode error upstream gives.
pub fn check_quantities(obj: &Value, ptrs: &[&str]) -> Result<(), String> {
    for p in ptrs {
        if let Some(m) = map_at(obj, p) {
            for v in m.values() {
                let ok = match v {
                    Value::String(s) => parse_quantity(s).is_some(),
                    Value::Number(_) => true,
                    _ => false,
                };
                if !ok {
                    return Err(QUANTITY_ERROR.to_owned());
                }
            }
        }
    }
    Ok(())
}

/// A quantity as JSON (string or number) in nano units.
pub fn quantity_of(v: &Value) -> Option<i128> {
    match v {
        Value::String(s) => parse_quantity(s),
        Value::Number(n) => n.as_i64().map(|i| i128::from(i) * 1_000_000_000),
        _ => None,
    }
}

/// A quantity's text as upstream prints it (we keep the user's form).
pub fn quantity_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

// ---------------------------------------------------------------------------------
// Pod spec defaulting.
// ---------------------------------------------------------------------------------

/// The image pull policy upstream defaults from an image reference: Always for an
/// image tagged `latest` or untagged (and undigested), IfNotPresent otherwise.
pub fn default_pull_policy(image: &str) -> &'static str {
    let (name, digest) = match image.split_once('@') {
        Some((n, _)) => (n, true),
        None => (image, false),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    let tag = last.split_once(':').map(|(_, t)| t);
    match (tag, digest) {
        (Some("latest"), _) | (None, false) => "Always",
        _ => "IfNotPresent",
    }
}

fn default_http_get(m: &mut Map<String, Value>) {
    if let Some(h) = m.get_mut("httpGet").and_then(Value::as_object_mut) {
        default_field(h, "path", json!("/"));
        default_field(h, "scheme", json!("HTTP"));
    }
}

fn default_probe(p: &mut Map<String, Value>) {
    default_field(p, "timeoutSeconds", json!(1));
    default_field(p, "periodSeconds", json!(10));
    default_field(p, "successThreshold", json!(1));
    default_field(p, "failureThreshold", json!(3));
    default_http_get(p);
    if let Some(g) = p.get_mut("grpc").and_then(Value::as_object_mut) {
        if g.get("service").is_none_or(Value::is_null) {
            g.insert("service".into(), json!(""));
        }
    }
}

fn default_field_ref(m: &mut Map<String, Value>) {
    if let Some(f) = m.get_mut("fieldRef").and_then(Value::as_object_mut) {
        default_field(f, "apiVersion", json!("v1"));
    }
}

/// SetDefaults_Container and the defaults of what a container holds.
pub fn default_container(c: &mut Map<String, Value>) {
    if is_unset(c.get("imagePullPolicy")) {
        let image = c.get("image").and_then(Value::as_str).unwrap_or("");
        c.insert("imagePullPolicy".into(), json!(default_pull_policy(image)));
    }
    default_field(c, "terminationMessagePath", json!("/dev/termination-log"));
    default_field(c, "terminationMessagePolicy", json!("File"));
    each_object_mut(c, "ports", |p| default_field(p, "protocol", json!("TCP")));
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).and_then(Value::as_object_mut) {
            default_probe(p);
        }
    }
    if let Some(l) = c.get_mut("lifecycle").and_then(Value::as_object_mut) {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = l.get_mut(hook).and_then(Value::as_object_mut) {
                default_http_get(h);
            }
        }
    }
    each_object_mut(c, "env", |e| {
        if let Some(vf) = e.get_mut("valueFrom").and_then(Value::as_object_mut) {
            default_field_ref(vf);
        }
    });
}

/// SetDefaults_Volume and the volume sources' defaults.
pub fn default_volume(v: &mut Map<String, Value>) {
    if !v.iter().any(|(k, val)| k != "name" && !val.is_null()) {
        v.insert("emptyDir".into(), json!({}));
    }
    for src in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = v.get_mut(src).and_then(Value::as_object_mut) {
            if s.get("defaultMode").is_none_or(Value::is_null) {
                s.insert("defaultMode".into(), json!(420));
            }
            each_object_mut(s, "items", default_field_ref);
            each_object_mut(s, "sources", |p| {
                if let Some(t) = p
                    .get_mut("serviceAccountToken")
                    .and_then(Value::as_object_mut)
                {
                    if t.get("expirationSeconds").is_none_or(Value::is_null) {
                        t.insert("expirationSeconds".into(), json!(3600));
                    }
                }
                if let Some(d) = p.get_mut("downwardAPI").and_then(Value::as_object_mut) {
                    each_object_mut(d, "items", default_field_ref);
                }
            });
        }
    }
    if let Some(h) = v.get_mut("hostPath").and_then(Value::as_object_mut) {
        if h.get("type").is_none_or(Value::is_null) {
            h.insert("type".into(), json!(""));
        }
    }
    if let Some(i) = v.get_mut("iscsi").and_then(Value::as_object_mut) {
        default_field(i, "iscsiInterface", json!("default"));
    }
    if let Some(r) = v.get_mut("rbd").and_then(Value::as_object_mut) {
        default_field(r, "pool", json!("rbd"));
        default_field(r, "user", json!("admin"));
        default_field(r, "keyring", json!("/etc/ceph/keyring"));
    }
    if let Some(a) = v.get_mut("azureDisk").and_then(Value::as_object_mut) {
        default_field(a, "cachingMode", json!("ReadWrite"));
        default_field(a, "fsType", json!("ext4"));
        default_field(a, "kind", json!("Shared"));
        if a.get("readOnly").is_none_or(Value::is_null) {
            a.insert("readOnly".into(), json!(false));
        }
    }
    let claim_spec = v
        .get_mut("ephemeral")
        .and_then(|e| e.pointer_mut("/volumeClaimTemplate/spec"))
        .and_then(Value::as_object_mut);
    if let Some(e) = claim_spec {
        default_field(e, "volumeMode", json!("Filesystem"));
    }
}

/// SetDefaults_PodSpec with everything inside the spec (used for pods and templates).
pub fn default_pod_spec(spec: &mut Value) {
    let Some(m) = spec.as_object_mut() else {
        return;
    };
    default_field(m, "dnsPolicy", json!("ClusterFirst"));
    default_field(m, "restartPolicy", json!("Always"));
    if !m.get("securityContext").is_some_and(Value::is_object) {
        m.insert("securityContext".into(), json!({}));
    }
    if m.get("terminationGracePeriodSeconds")
        .is_none_or(Value::is_null)
    {
        m.insert("terminationGracePeriodSeconds".into(), json!(30));
    }
    default_field(m, "schedulerName", json!("default-scheduler"));
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        each_object_mut(m, list, default_container);
    }
    each_object_mut(m, "volumes", default_volume);
}

/// Defaults of a `PodTemplateSpec` (`template` of workloads).
pub fn default_pod_template(template: &mut Value) {
    if let Some(spec) = template.get_mut("spec") {
        default_pod_spec(spec);
    }
}

/// SetDefaults_Pod: the pod-only defaults on top of the spec's.
fn default_pod(obj: &mut Value) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for list in ["containers", "initContainers"] {
        each_object_mut(spec, list, |c| {
            let limits = c
                .get("resources")
                .and_then(|r| r.get("limits"))
                .and_then(Value::as_object)
                .cloned();
            let Some(limits) = limits else { return };
            let requests = child(child(c, "resources"), "requests");
            for (k, v) in limits {
                requests.entry(k).or_insert(v);
            }
        });
    }
    if spec.get("enableServiceLinks").is_none_or(Value::is_null) {
        spec.insert("enableServiceLinks".into(), json!(true));
    }
    if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        for list in ["containers", "initContainers"] {
            each_object_mut(spec, list, |c| {
                each_object_mut(c, "ports", |p| {
                    if is_unset(p.get("hostPort")) {
                        if let Some(cp) = p.get("containerPort").cloned() {
                            p.insert("hostPort".into(), cp);
                        }
                    }
                })
            });
        }
    }
    let mut whole = Value::Object(std::mem::take(spec));
    default_pod_spec(&mut whole);
    if let (Value::Object(w), Some(s)) = (whole, obj.get_mut("spec")) {
        *s = Value::Object(w);
    }
}

/// qos.ComputePodQOS: BestEffort, Burstable or Guaranteed from cpu and memory.
pub fn qos_class(spec: &Value) -> &'static str {
    let mut requests: HashMap<String, i128> = HashMap::new();
    let mut limits: HashMap<String, i128> = HashMap::new();
    let mut guaranteed = true;
    for list in ["/containers", "/initContainers"] {
        for c in arr_at(spec, list) {
            for (k, v) in map_at(c, "/resources/requests").into_iter().flatten() {
                if k != "cpu" && k != "memory" {
                    continue;
                }
                if let Some(q) = quantity_of(v).filter(|q| *q > 0) {
                    *requests.entry(k.clone()).or_insert(0) += q;
                }
            }
            let mut found = HashSet::new();
            for (k, v) in map_at(c, "/resources/limits").into_iter().flatten() {
                if k != "cpu" && k != "memory" {
                    continue;
                }
                if let Some(q) = quantity_of(v).filter(|q| *q > 0) {
                    found.insert(k.as_str());
                    *limits.entry(k.clone()).or_insert(0) += q;
                }
            }
            if !(found.contains("cpu") && found.contains("memory")) {
                guaranteed = false;
            }
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed && requests.iter().any(|(k, r)| limits.get(k) != Some(r)) {
        guaranteed = false;
    }
    if guaranteed && requests.len() == limits.len() {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

// ---------------------------------------------------------------------------------
// Pod spec validation.
// ---------------------------------------------------------------------------------

const VOLUME_SOURCES: &[&str] = &[
    "hostPath",
    "emptyDir",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "gitRepo",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "persistentVolumeClaim",
    "rbd",
    "flexVolume",
    "cinder",
    "cephfs",
    "flocker",
    "downwardAPI",
    "fc",
    "azureFile",
    "configMap",
    "vsphereVolume",
    "quobyte",
    "azureDisk",
    "photonPersistentDisk",
    "projected",
    "portworxVolume",
    "scaleIO",
    "storageos",
    "csi",
    "ephemeral",
    "image",
];

fn dns_label(path: &str, v: &Value, out: &mut Vec<Cause>) {
    for e in dns1123_label(v.as_str().unwrap_or("")) {
        out.push(invalid_value(path, v, &e));
    }
}

fn supported(path: &str, v: Option<&Value>, allowed: &[&str], out: &mut Vec<Cause>) {
    match v.and_then(Value::as_str) {
        None | Some("") => out.push(required(path, "")),
        Some(s) if allowed.contains(&s) => {}
        Some(_) => out.push(not_supported(path, v.unwrap_or(&Value::Null), allowed)),
    }
}

fn non_negative(path: &str, v: Option<&Value>, out: &mut Vec<Cause>) {
    if let Some(n) = v.and_then(Value::as_i64) {
        if n < 0 {
            out.push(invalid_value(
                path,
                &json!(n),
                "must be greater than or equal to 0",
            ));
        }
    }
}

fn validate_volumes(spec: &Value, path: &str, out: &mut Vec<Cause>) -> HashSet<String> {
    let mut names = HashSet::new();
    for (i, v) in arr_at(spec, "/volumes").iter().enumerate() {
        let p = format!("{path}.volumes[{i}]");
        let name = str_at(v, "/name");
        if name.is_empty() {
            out.push(required(&format!("{p}.name"), ""));
        } else {
            dns_label(&format!("{p}.name"), &json!(name), out);
            if !names.insert(name.to_owned()) {
                out.push(duplicate(&format!("{p}.name"), &json!(name)));
            }
        }
        let sources: Vec<&str> = VOLUME_SOURCES
            .iter()
            .copied()
            .filter(|s| v.get(*s).is_some_and(|x| !x.is_null()))
            .collect();
        match sources.as_slice() {
            [] => out.push(required(&p, "must specify a volume type")),
            [_] => {}
            [_, second, ..] => out.push(forbidden(
                &format!("{p}.{second}"),
                "may not specify more than 1 volume type",
            )),
        }
        for (src, field) in [
            ("hostPath", "path"),
            ("persistentVolumeClaim", "claimName"),
            ("nfs", "server"),
            ("nfs", "path"),
            ("csi", "driver"),
        ] {
            if v.get(src).is_some_and(Value::is_object)
                && str_at(v, &format!("/{src}/{field}")).is_empty()
            {
                out.push(required(&format!("{p}.{src}.{field}"), ""));
            }
        }
        if v.get("configMap").is_some_and(Value::is_object)
            && str_at(v, "/configMap/name").is_empty()
        {
            out.push(required(&format!("{p}.configMap.name"), ""));
        }
        if v.get("secret").is_some_and(Value::is_object)
            && str_at(v, "/secret/secretName").is_empty()
        {
            out.push(required(&format!("{p}.secret.secretName"), ""));
        }
    }
    names
}

fn validate_probe(c: &Value, probe: &str, path: &str, out: &mut Vec<Cause>) {
    let Some(p) = c.get(probe).filter(|p| p.is_object()) else {
        return;
    };
    let pp = format!("{path}.{probe}");
    let handlers: Vec<&str> = ["exec", "httpGet", "tcpSocket", "grpc"]
        .into_iter()
        .filter(|h| p.get(*h).is_some_and(|x| !x.is_null()))
        .collect();
    match handlers.as_slice() {
        [] => out.push(required(&pp, "must specify a handler type")),
        [_] => {}
        [_, second, ..] => out.push(forbidden(
            &format!("{pp}.{second}"),
            "may not specify more than 1 handler type",
        )),
    }
    for f in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        non_negative(&format!("{pp}.{f}"), p.get(f), out);
    }
    if probe != "readinessProbe" {
        if let Some(st) = p.get("successThreshold").and_then(Value::as_i64) {
            if st != 1 {
                out.push(invalid_value(
                    &format!("{pp}.successThreshold"),
                    &json!(st),
                    "must be 1",
                ));
            }
        }
    }
    for h in ["httpGet", "tcpSocket"] {
        if let Some(port) = p.pointer(&format!("/{h}/port")) {
            int_or_name_port(port, &format!("{pp}.{h}.port"), out);
        }
    }
    if let Some(port) = p.pointer("/grpc/port") {
        if let Some(e) = port_num_error(port.as_i64().unwrap_or(0)) {
            out.push(invalid_value(&format!("{pp}.grpc.port"), port, e));
        }
    }
}

fn validate_resources(c: &Value, path: &str, out: &mut Vec<Cause>) {
    let limits = map_at(c, "/resources/limits");
    for part in ["limits", "requests"] {
        for (k, v) in map_at(c, &format!("/resources/{part}"))
            .into_iter()
            .flatten()
        {
            let p = format!("{path}.resources.{part}[{k}]");
            for e in qualified_name(k) {
                out.push(invalid_value(
                    &format!("{path}.resources.{part}"),
                    &json!(k),
                    &e,
                ));
            }
            match quantity_of(v) {
                Some(q) if q < 0 => out.push(invalid_value(
                    &p,
                    &json!(quantity_text(v)),
                    "must be greater than or equal to 0",
                )),
                Some(q) if part == "requests" => {
                    if let Some(lim) = limits.and_then(|l| l.get(k)) {
                        if quantity_of(lim).is_some_and(|l| q > l) {
                            out.push(invalid_value(
                                &p,
                                &json!(quantity_text(v)),
                                &format!(
                                    "must be less than or equal to {k} limit of {}",
                                    quantity_text(lim)
                                ),
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

fn validate_env(c: &Value, path: &str, out: &mut Vec<Cause>) {
    for (i, e) in arr_at(c, "/env").iter().enumerate() {
        let p = format!("{path}.env[{i}]");
        let name = str_at(e, "/name");
        if name.is_empty() {
            out.push(required(&format!("{p}.name"), ""));
        } else if !name.bytes().all(|b| (32..=126).contains(&b) && b != b'=') {
            out.push(invalid_value(
                &format!("{p}.name"),
                &json!(name),
                "a valid environment variable name must consist only of printable ASCII characters other than '='",
            ));
        }
        let Some(vf) = e.get("valueFrom").filter(|v| v.is_object()) else {
            continue;
        };
        if !str_at(e, "/value").is_empty() {
            out.push(invalid_value(
                &format!("{p}.valueFrom"),
                &json!(""),
                "may not be specified when `value` is not empty",
            ));
        }
        let sources: Vec<&str> = [
            "fieldRef",
            "resourceFieldRef",
            "configMapKeyRef",
            "secretKeyRef",
        ]
        .into_iter()
        .filter(|s| vf.get(*s).is_some_and(|x| !x.is_null()))
        .collect();
        match sources.len() {
            0 => out.push(invalid_value(
                &format!("{p}.valueFrom"),
                &json!(""),
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            )),
            1 => {}
            _ => out.push(invalid_value(
                &format!("{p}.valueFrom"),
                &json!(""),
                "may not have more than one field specified at a time",
            )),
        }
        for r in ["configMapKeyRef", "secretKeyRef"] {
            if vf.get(r).is_some_and(Value::is_object)
                && str_at(vf, &format!("/{r}/key")).is_empty()
            {
                out.push(required(&format!("{p}.valueFrom.{r}.key"), ""));
            }
        }
        if vf.get("fieldRef").is_some_and(Value::is_object)
            && str_at(vf, "/fieldRef/fieldPath").is_empty()
        {
            out.push(required(&format!("{p}.valueFrom.fieldRef.fieldPath"), ""));
        }
    }
}

fn validate_container(
    c: &Value,
    path: &str,
    volumes: &HashSet<String>,
    host_network: bool,
    out: &mut Vec<Cause>,
) {
    let name = str_at(c, "/name");
    if name.is_empty() {
        out.push(required(&format!("{path}.name"), ""));
    } else {
        dns_label(&format!("{path}.name"), &json!(name), out);
    }
    let mut port_names = HashSet::new();
    for (i, p) in arr_at(c, "/ports").iter().enumerate() {
        let pp = format!("{path}.ports[{i}]");
        let pname = str_at(p, "/name");
        if !pname.is_empty() {
            let errs = port_name_errors(pname);
            for e in &errs {
                out.push(invalid_value(&format!("{pp}.name"), &json!(pname), e));
            }
            if errs.is_empty() && !port_names.insert(pname.to_owned()) {
                out.push(duplicate(&format!("{pp}.name"), &json!(pname)));
            }
        }
        let cp = p.get("containerPort").and_then(Value::as_i64).unwrap_or(0);
        if cp == 0 {
            out.push(required(&format!("{pp}.containerPort"), ""));
        } else if let Some(e) = port_num_error(cp) {
            out.push(invalid_value(&format!("{pp}.containerPort"), &json!(cp), e));
        }
        let hp = p.get("hostPort").and_then(Value::as_i64).unwrap_or(0);
        if hp != 0 {
            if let Some(e) = port_num_error(hp) {
                out.push(invalid_value(&format!("{pp}.hostPort"), &json!(hp), e));
            }
            if host_network && hp != cp {
                out.push(invalid_value(
                    &format!("{pp}.hostPort"),
                    &json!(hp),
                    "must match `containerPort` when `hostNetwork` is true",
                ));
            }
        }
        supported(
            &format!("{pp}.protocol"),
            p.get("protocol"),
            &["SCTP", "TCP", "UDP"],
            out,
        );
    }
    validate_env(c, path, out);
    let mut mount_paths = HashSet::new();
    for (i, m) in arr_at(c, "/volumeMounts").iter().enumerate() {
        let mp = format!("{path}.volumeMounts[{i}]");
        let vname = str_at(m, "/name");
        if vname.is_empty() {
            out.push(required(&format!("{mp}.name"), ""));
        } else if !volumes.contains(vname) {
            out.push(not_found(&format!("{mp}.name"), &json!(vname)));
        }
        let mpath = str_at(m, "/mountPath");
        if mpath.is_empty() {
            out.push(required(&format!("{mp}.mountPath"), ""));
        } else if !mount_paths.insert(mpath.to_owned()) {
            out.push(invalid_value(
                &format!("{mp}.mountPath"),
                &json!(mpath),
                "must be unique",
            ));
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        validate_probe(c, probe, path, out);
    }
    validate_resources(c, path, out);
    if let Some(v) = c.get("imagePullPolicy") {
        supported(
            &format!("{path}.imagePullPolicy"),
            Some(v),
            &["Always", "IfNotPresent", "Never"],
            out,
        );
    }
    if let Some(v) = c.get("terminationMessagePolicy") {
        supported(
            &format!("{path}.terminationMessagePolicy"),
            Some(v),
            &["File", "FallbackToLogsOnError"],
            out,
        );
    }
}

/// ValidatePodSpec (the parts this server checks), for the spec at `path`. `pod` is
/// true for pods themselves (images are required there, not in templates).
pub fn validate_pod_spec(spec: &Value, path: &str, pod: bool) -> Vec<Cause> {
    let mut out = Vec::new();
    let volumes = validate_volumes(spec, path, &mut out);
    let host_network = spec.get("hostNetwork").and_then(Value::as_bool) == Some(true);
    let containers = arr_at(spec, "/containers");
    if containers.is_empty() {
        out.push(required(&format!("{path}.containers"), ""));
    }
    let mut names = HashSet::new();
    for (i, c) in containers.iter().enumerate() {
        let p = format!("{path}.containers[{i}]");
        validate_container(c, &p, &volumes, host_network, &mut out);
        let name = str_at(c, "/name");
        if !name.is_empty() && !names.insert(name.to_owned()) {
            out.push(duplicate(&format!("{p}.name"), &json!(name)));
        }
        if c.get("restartPolicy").is_some_and(|v| !v.is_null()) {
            out.push(forbidden(
                &format!("{p}.restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    for (i, c) in arr_at(spec, "/initContainers").iter().enumerate() {
        let p = format!("{path}.initContainers[{i}]");
        validate_container(c, &p, &volumes, host_network, &mut out);
        let name = str_at(c, "/name");
        if !name.is_empty() && !names.insert(name.to_owned()) {
            out.push(duplicate(&format!("{p}.name"), &json!(name)));
        }
        if let Some(rp) = c.get("restartPolicy").filter(|v| !v.is_null()) {
            supported(
                &format!("{p}.restartPolicy"),
                Some(rp),
                &["Always"],
                &mut out,
            );
        }
        let sidecar = c.get("restartPolicy").and_then(Value::as_str) == Some("Always");
        if !sidecar {
            for f in [
                "lifecycle",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
            ] {
                if c.get(f).is_some_and(|v| !v.is_null()) {
                    out.push(forbidden(
                        &format!("{p}.{f}"),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }
    supported(
        &format!("{path}.restartPolicy"),
        spec.get("restartPolicy"),
        &["Always", "OnFailure", "Never"],
        &mut out,
    );
    supported(
        &format!("{path}.dnsPolicy"),
        spec.get("dnsPolicy"),
        &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"],
        &mut out,
    );
    if str_at(spec, "/dnsPolicy") == "None" && !spec.get("dnsConfig").is_some_and(Value::is_object)
    {
        out.push(required(
            &format!("{path}.dnsConfig"),
            "must provide `dnsConfig` when `dnsPolicy` is None",
        ));
    }
    out.extend(validate_labels(
        &format!("{path}.nodeSelector"),
        map_at(spec, "/nodeSelector"),
    ));
    for (field, v) in [
        ("serviceAccountName", "/serviceAccountName"),
        ("nodeName", "/nodeName"),
    ] {
        let s = str_at(spec, v);
        if !s.is_empty() {
            for e in dns1123_subdomain(s) {
                out.push(invalid_value(&format!("{path}.{field}"), &json!(s), &e));
            }
        }
    }
    for field in ["hostname", "subdomain"] {
        let s = str_at(spec, &format!("/{field}"));
        if !s.is_empty() {
            dns_label(&format!("{path}.{field}"), &json!(s), &mut out);
        }
    }
    if let Some(ads) = spec.get("activeDeadlineSeconds").and_then(Value::as_i64) {
        if !(1..=i64::from(i32::MAX)).contains(&ads) {
            out.push(invalid_value(
                &format!("{path}.activeDeadlineSeconds"),
                &json!(ads),
                "must be between 1 and 2147483647, inclusive",
            ));
        }
    }
    for (i, t) in arr_at(spec, "/tolerations").iter().enumerate() {
        let p = format!("{path}.tolerations[{i}]");
        let key = str_at(t, "/key");
        if !key.is_empty() {
            for e in qualified_name(key) {
                out.push(invalid_value(&format!("{p}.key"), &json!(key), &e));
            }
        }
        match str_at(t, "/operator") {
            "" | "Equal" => {
                if key.is_empty() {
                    out.push(invalid_value(&format!("{p}.operator"), &json!(str_at(t, "/operator")), "operator must be Exists when `key` is empty, which means \"match all values and all keys\""));
                }
                let value = str_at(t, "/value");
                for e in label_value(value) {
                    out.push(invalid_value(&format!("{p}.value"), &json!(value), &e));
                }
            }
            "Exists" => {
                if !str_at(t, "/value").is_empty() {
                    out.push(invalid_value(
                        &format!("{p}.operator"),
                        &json!(str_at(t, "/value")),
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => out.push(not_supported(
                &format!("{p}.operator"),
                &json!(other),
                &["Equal", "Exists"],
            )),
        }
        let effect = str_at(t, "/effect");
        if !effect.is_empty() && !["NoSchedule", "PreferNoSchedule", "NoExecute"].contains(&effect)
        {
            out.push(not_supported(
                &format!("{p}.effect"),
                &json!(effect),
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
        if t.get("tolerationSeconds").is_some_and(|v| !v.is_null()) && effect != "NoExecute" {
            out.push(invalid_value(
                &format!("{p}.effect"),
                &json!(effect),
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
    }
    let mut gates = HashSet::new();
    for (i, g) in arr_at(spec, "/schedulingGates").iter().enumerate() {
        let name = str_at(g, "/name");
        for e in qualified_name(name) {
            out.push(invalid_value(
                &format!("{path}.schedulingGates[{i}].name"),
                &json!(name),
                &e,
            ));
        }
        if !gates.insert(name) {
            out.push(duplicate(
                &format!("{path}.schedulingGates[{i}].name"),
                &json!(name),
            ));
        }
    }
    for (i, g) in arr_at(spec, "/readinessGates").iter().enumerate() {
        let ct = str_at(g, "/conditionType");
        for e in qualified_name(ct) {
            out.push(invalid_value(
                &format!("{path}.readinessGates[{i}].conditionType"),
                &json!(ct),
                &e,
            ));
        }
    }
    if pod {
        // validateContainersOnlyForPod: images are required in pods, not in templates.
        for list in ["containers", "initContainers"] {
            for (i, c) in arr_at(spec, &format!("/{list}")).iter().enumerate() {
                let image = str_at(c, "/image");
                let p = format!("{path}.{list}[{i}].image");
                if image.is_empty() {
                    out.push(required(&p, ""));
                } else if image.trim() != image {
                    out.push(invalid_value(
                        &p,
                        &json!(image),
                        "must not have leading or trailing whitespace",
                    ));
                }
            }
        }
    }
    out
}

/// ValidatePodTemplateSpec at `path` (e.g. `spec.template`).
pub fn validate_pod_template(template: Option<&Value>, path: &str) -> Vec<Cause> {
    let Some(t) = template.filter(|t| t.is_object()) else {
        return vec![required(path, "")];
    };
    let mut out = validate_labels(
        &format!("{path}.metadata.labels"),
        map_at(t, "/metadata/labels"),
    );
    out.extend(crate::registry::validation::annotations(
        &format!("{path}.metadata.annotations"),
        map_at(t, "/metadata/annotations"),
    ));
    let empty = json!({});
    out.extend(validate_pod_spec(
        t.get("spec").unwrap_or(&empty),
        &format!("{path}.spec"),
        false,
    ));
    out
}

/// Go-style field name for the update diff (`restartPolicy` → `RestartPolicy`).
fn go_name(k: &str) -> String {
    let mut c = k.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A short diff of two specs in the spirit of upstream's cmp.Diff: the top-level
/// fields that differ, old with "-" and new with "+".
pub fn spec_diff(type_name: &str, old: &Value, new: &Value) -> String {
    let empty = Map::new();
    let o = old.as_object().unwrap_or(&empty);
    let n = new.as_object().unwrap_or(&empty);
    let keys: BTreeSet<&String> = o.keys().chain(n.keys()).collect();
    let mut lines = vec![format!("  {type_name}{{")];
    let mut same = 0;
    for k in keys {
        match (o.get(k), n.get(k)) {
            (a, b) if a == b => same += 1,
            (a, b) => {
                if same > 0 {
                    lines.push(format!("  \t... // {same} identical fields"));
                    same = 0;
                }
                if let Some(a) = a {
                    lines.push(format!("- \t{}: {},", go_name(k), a));
                }
                if let Some(b) = b {
                    lines.push(format!("+ \t{}: {},", go_name(k), b));
                }
            }
        }
    }
    if same > 0 {
        lines.push(format!("  \t... // {same} identical fields"));
    }
    lines.push("  }".into());
    lines.join("\n") + "\n"
}

const POD_UPDATE_MESSAGE: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// ValidatePodUpdate's spec rules.
fn validate_pod_spec_update(new: &Value, old: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    let empty = json!({});
    let ns = new.get("spec").unwrap_or(&empty);
    let os = old.get("spec").unwrap_or(&empty);
    for list in ["containers", "initContainers"] {
        if arr_at(ns, &format!("/{list}")).len() != arr_at(os, &format!("/{list}")).len() {
            out.push(forbidden(
                &format!("spec.{list}"),
                "pod updates may not add or remove containers",
            ));
            return out;
        }
    }
    match (
        ns.get("activeDeadlineSeconds").and_then(Value::as_i64),
        os.get("activeDeadlineSeconds").and_then(Value::as_i64),
    ) {
        (Some(n), _) if !(0..=i64::from(i32::MAX)).contains(&n) => {
            out.push(invalid_value(
                "spec.activeDeadlineSeconds",
                &json!(n),
                "must be between 0 and 2147483647, inclusive",
            ));
            return out;
        }
        (Some(n), Some(o)) if o < n => {
            out.push(invalid_value(
                "spec.activeDeadlineSeconds",
                &json!(n),
                "must be less than or equal to previous value",
            ));
            return out;
        }
        (None, Some(_)) => out.push(invalid_value(
            "spec.activeDeadlineSeconds",
            &Value::Null,
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    // Tolerations: existing ones stay (their tolerationSeconds may change).
    let strip = |t: &Value| {
        let mut t = t.clone();
        if let Some(m) = t.as_object_mut() {
            m.remove("tolerationSeconds");
        }
        t
    };
    let new_tols: Vec<Value> = arr_at(ns, "/tolerations").iter().map(strip).collect();
    for t in arr_at(os, "/tolerations") {
        if !new_tols.contains(&strip(t)) {
            out.push(forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            break;
        }
    }
    let old_gates: HashSet<&str> = arr_at(os, "/schedulingGates")
        .iter()
        .map(|g| str_at(g, "/name"))
        .collect();
    for g in arr_at(ns, "/schedulingGates") {
        let name = str_at(g, "/name");
        if !old_gates.contains(name) {
            out.push(forbidden(
                "spec.schedulingGates",
                &format!("only deletion is allowed, but found new scheduling gate '{name}'"),
            ));
        }
    }
    if ns == os {
        return out;
    }
    let mut munged = ns.clone();
    if let Some(m) = munged.as_object_mut() {
        for list in ["containers", "initContainers"] {
            let old_list = arr_at(os, &format!("/{list}"));
            if let Some(cs) = m.get_mut(list).and_then(Value::as_array_mut) {
                for (c, oc) in cs.iter_mut().zip(old_list) {
                    if let Some(cm) = c.as_object_mut() {
                        match oc.get("image") {
                            Some(img) => cm.insert("image".into(), img.clone()),
                            None => cm.remove("image"),
                        };
                    }
                }
            }
        }
        for f in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
            match os.get(f) {
                Some(v) => m.insert(f.into(), v.clone()),
                None => m.remove(f),
            };
        }
        let old_grace = os
            .get("terminationGracePeriodSeconds")
            .and_then(Value::as_i64);
        let new_grace = m
            .get("terminationGracePeriodSeconds")
            .and_then(Value::as_i64);
        if old_grace.is_some_and(|g| g < 0) && new_grace == Some(1) {
            m.insert("terminationGracePeriodSeconds".into(), json!(old_grace));
        }
    }
    if munged != *os {
        out.push(forbidden(
            "spec",
            &format!(
                "{POD_UPDATE_MESSAGE}\n{}",
                spec_diff("core.PodSpec", os, &munged)
            ),
        ));
    }
    out
}

// ---------------------------------------------------------------------------------
// Pods.
// ---------------------------------------------------------------------------------

const RESOURCE_PTRS: &[&str] = &["/resources/limits", "/resources/requests"];

fn check_container_quantities(spec: Option<&Value>) -> Result<(), String> {
    let Some(spec) = spec else { return Ok(()) };
    for list in ["/containers", "/initContainers"] {
        for c in arr_at(spec, list) {
            check_quantities(c, RESOURCE_PTRS)?;
        }
    }
    Ok(())
}

struct Pods;

impl Pods {
    /// The pod's first IP (`status.podIPs[0]`, else `status.podIP`).
    fn pod_ip(obj: &Value) -> &str {
        let first = str_at(obj, "/status/podIPs/0/ip");
        if first.is_empty() {
            str_at(obj, "/status/podIP")
        } else {
            first
        }
    }

    /// printPod's STATUS, READY and RESTARTS.
    fn summary(obj: &Value) -> (String, String, String) {
        let init_specs = arr_at(obj, "/spec/initContainers");
        let sidecar = |name: &str| {
            init_specs
                .iter()
                .any(|c| str_at(c, "/name") == name && str_at(c, "/restartPolicy") == "Always")
        };
        let mut total = arr_at(obj, "/spec/containers").len();
        total += init_specs
            .iter()
            .filter(|c| str_at(c, "/restartPolicy") == "Always")
            .count();
        let mut ready = 0;
        let mut restarts = 0i64;
        let mut sidecar_restarts = 0i64;
        let mut last_restart = String::new();
        let mut sidecar_last_restart = String::new();
        let mut reason = str_at(obj, "/status/phase").to_owned();
        if !str_at(obj, "/status/reason").is_empty() {
            reason = str_at(obj, "/status/reason").to_owned();
        }
        let conditions = arr_at(obj, "/status/conditions");
        if conditions.iter().any(|c| {
            str_at(c, "/type") == "PodScheduled" && str_at(c, "/reason") == "SchedulingGated"
        }) {
            reason = "SchedulingGated".into();
        }
        let later = |a: &mut String, b: &str| {
            if b > a.as_str() {
                *a = b.to_owned();
            }
        };
        let mut initializing = false;
        let init_statuses = arr_at(obj, "/status/initContainerStatuses");
        for (i, c) in init_statuses.iter().enumerate() {
            let rc = c.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
            restarts += rc;
            let finished = str_at(c, "/lastState/terminated/finishedAt");
            later(&mut last_restart, finished);
            let name = str_at(c, "/name");
            if sidecar(name) {
                sidecar_restarts += rc;
                later(&mut sidecar_last_restart, finished);
            }
            let terminated = c.pointer("/state/terminated").filter(|t| t.is_object());
            let waiting_reason = str_at(c, "/state/waiting/reason");
            if terminated
                .is_some_and(|t| t.get("exitCode").and_then(Value::as_i64).unwrap_or(0) == 0)
            {
                continue;
            }
            if sidecar(name) && c.get("started").and_then(Value::as_bool) == Some(true) {
                if c.get("ready").and_then(Value::as_bool) == Some(true) {
                    ready += 1;
                }
                continue;
            }
            if let Some(t) = terminated {
                let r = str_at(t, "/reason");
                reason = if !r.is_empty() {
                    format!("Init:{r}")
                } else if t.get("signal").and_then(Value::as_i64).unwrap_or(0) != 0 {
                    format!(
                        "Init:Signal:{}",
                        t.get("signal").and_then(Value::as_i64).unwrap_or(0)
                    )
                } else {
                    format!(
                        "Init:ExitCode:{}",
                        t.get("exitCode").and_then(Value::as_i64).unwrap_or(0)
                    )
                };
            } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
                reason = format!("Init:{waiting_reason}");
            } else {
                reason = format!("Init:{i}/{}", init_specs.len());
            }
            initializing = true;
            break;
        }
        let initialized = conditions
            .iter()
            .any(|c| str_at(c, "/type") == "Initialized" && str_at(c, "/status") == "True");
        if !initializing || initialized {
            restarts = sidecar_restarts;
            last_restart = sidecar_last_restart;
            let mut has_running = false;
            for c in arr_at(obj, "/status/containerStatuses").iter().rev() {
                restarts += c.get("restartCount").and_then(Value::as_i64).unwrap_or(0);
                later(
                    &mut last_restart,
                    str_at(c, "/lastState/terminated/finishedAt"),
                );
                let waiting = str_at(c, "/state/waiting/reason");
                let terminated = c.pointer("/state/terminated").filter(|t| t.is_object());
                if !waiting.is_empty() {
                    reason = waiting.to_owned();
                } else if let Some(t) = terminated {
                    let r = str_at(t, "/reason");
                    reason = if !r.is_empty() {
                        r.to_owned()
                    } else if t.get("signal").and_then(Value::as_i64).unwrap_or(0) != 0 {
                        format!(
                            "Signal:{}",
                            t.get("signal").and_then(Value::as_i64).unwrap_or(0)
                        )
                    } else {
                        format!(
                            "ExitCode:{}",
                            t.get("exitCode").and_then(Value::as_i64).unwrap_or(0)
                        )
                    };
                } else if c.get("ready").and_then(Value::as_bool) == Some(true)
                    && c.pointer("/state/running").is_some_and(Value::is_object)
                {
                    has_running = true;
                    ready += 1;
                }
            }
            if reason == "Completed" && has_running {
                let pod_ready = conditions
                    .iter()
                    .any(|c| str_at(c, "/type") == "Ready" && str_at(c, "/status") == "True");
                reason = if pod_ready {
                    "Running".into()
                } else {
                    "NotReady".into()
                };
            }
        }
        let phase = str_at(obj, "/status/phase");
        if meta::deletion_timestamp(obj).is_some() {
            if str_at(obj, "/status/reason") == "NodeLost" {
                reason = "Unknown".into();
            } else if phase != "Succeeded" && phase != "Failed" {
                reason = "Terminating".into();
            }
        }
        let restarts_text = if restarts != 0 && !last_restart.is_empty() {
            let ago = time::OffsetDateTime::parse(
                &last_restart,
                &time::format_description::well_known::Rfc3339,
            )
            .map(|t| crate::registry::human_duration(time::OffsetDateTime::now_utc() - t))
            .unwrap_or_else(|_| "<unknown>".into());
            format!("{restarts} ({ago} ago)")
        } else {
            restarts.to_string()
        };
        (format!("{ready}/{total}"), reason, restarts_text)
    }
}

impl Strategy for Pods {
    /// The requested period, else the pod's terminationGracePeriodSeconds; none for a
    /// pod no node runs (unscheduled) or one that has finished, as upstream.
    fn grace_period(&self, obj: &Value, requested: Option<i64>) -> Option<i64> {
        let spec = &obj["spec"];
        let unscheduled = spec["nodeName"].as_str().is_none_or(str::is_empty);
        let finished = matches!(
            obj["status"]["phase"].as_str(),
            Some("Failed" | "Succeeded")
        );
        if unscheduled || finished {
            return Some(0);
        }
        let period = requested.or_else(|| spec["terminationGracePeriodSeconds"].as_i64());
        // Negative periods count as 1 s on the delete path, as upstream.
        Some(period.map_or(0, |p| if p < 0 { 1 } else { p }))
    }

    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        check_container_quantities(obj.get("spec"))?;
        roundtrip::<api::Pod>(obj)
    }

    fn default(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            child(m, "spec");
        }
        default_pod(obj);
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        let qos = qos_class(obj.get("spec").unwrap_or(&Value::Null));
        let mut status = json!({"phase": "Pending", "qosClass": qos});
        if !arr_at(obj, "/spec/schedulingGates").is_empty() {
            status["conditions"] = json!([{
                "type": "PodScheduled",
                "status": "False",
                "reason": "SchedulingGated",
                "message": "Scheduling is blocked due to non-empty scheduling gates",
                "lastTransitionTime": meta::now_rfc3339(),
            }]);
        }
        if let Some(m) = obj.as_object_mut() {
            m.insert("status".into(), status);
        }
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        if let Some(m) = new.as_object_mut() {
            m.insert(
                "status".into(),
                old.get("status").cloned().unwrap_or(json!({})),
            );
        }
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let empty = json!({});
        validate_pod_spec(obj.get("spec").unwrap_or(&empty), "spec", true)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut out = self.validate(new);
        out.extend(validate_pod_spec_update(new, old));
        out
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        for (i, ip) in arr_at(new, "/status/podIPs").iter().enumerate() {
            let s = str_at(ip, "/ip");
            if s.parse::<std::net::IpAddr>().is_err() {
                out.push(invalid_value(
                    &format!("status.podIPs[{i}].ip"),
                    &json!(s),
                    INVALID_IP,
                ));
            }
        }
        let first = str_at(new, "/status/podIPs/0/ip");
        let single = str_at(new, "/status/podIP");
        if !single.is_empty() && !first.is_empty() && single != first {
            out.push(invalid_value(
                "status.podIPs[0].ip",
                &json!(first),
                "must be equal to `podIP`",
            ));
        }
        let nominated = str_at(new, "/status/nominatedNodeName");
        if !nominated.is_empty() {
            for e in dns1123_subdomain(nominated) {
                out.push(invalid_value(
                    "status.nominatedNodeName",
                    &json!(nominated),
                    &e,
                ));
            }
        }
        out
    }

    fn field(&self, obj: &Value, field: &str) -> Option<String> {
        Some(match field {
            "spec.nodeName" => str_at(obj, "/spec/nodeName").to_owned(),
            "spec.restartPolicy" => str_at(obj, "/spec/restartPolicy").to_owned(),
            "spec.schedulerName" => str_at(obj, "/spec/schedulerName").to_owned(),
            "spec.serviceAccountName" => str_at(obj, "/spec/serviceAccountName").to_owned(),
            "spec.hostNetwork" => (obj.pointer("/spec/hostNetwork").and_then(Value::as_bool)
                == Some(true))
            .to_string(),
            "status.phase" => str_at(obj, "/status/phase").to_owned(),
            "status.podIP" => Self::pod_ip(obj).to_owned(),
            "status.nominatedNodeName" => str_at(obj, "/status/nominatedNodeName").to_owned(),
            _ => return None,
        })
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ]
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
            Column::new("Status", "string", "The aggregate status of the containers in this pod."),
            Column::new("Restarts", "string", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
            AGE_COLUMN,
            Column::new("IP", "string", "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.").wide(),
            Column::new("Node", "string", "NodeName indicates in which node this pod is scheduled. If empty, this pod is a candidate for scheduling by the scheduler defined in schedulerName.").wide(),
            Column::new("Nominated Node", "string", "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods.").wide(),
            Column::new("Readiness Gates", "string", "If specified, all readiness gates will be evaluated for pod readiness.").wide(),
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let (ready, status, restarts) = Self::summary(obj);
        let or_none = |s: &str| {
            if s.is_empty() {
                "<none>".to_owned()
            } else {
                s.to_owned()
            }
        };
        let gates = arr_at(obj, "/spec/readinessGates");
        let gates_text = if gates.is_empty() {
            "<none>".to_owned()
        } else {
            let conditions = arr_at(obj, "/status/conditions");
            let ok = gates
                .iter()
                .filter(|g| {
                    conditions
                        .iter()
                        .find(|c| str_at(c, "/type") == str_at(g, "/conditionType"))
                        .is_some_and(|c| str_at(c, "/status") == "True")
                })
                .count();
            format!("{ok}/{}", gates.len())
        };
        vec![
            json!(ready),
            json!(status),
            json!(restarts),
            json!(age(obj)),
            json!(or_none(Self::pod_ip(obj))),
            json!(or_none(str_at(obj, "/spec/nodeName"))),
            json!(or_none(str_at(obj, "/status/nominatedNodeName"))),
            json!(gates_text),
        ]
    }
}

/// `layoutContainerCells`: container names and images, comma-joined.
pub fn container_cells(spec: &Value) -> (String, String) {
    let cs = arr_at(spec, "/containers");
    let names: Vec<&str> = cs.iter().map(|c| str_at(c, "/name")).collect();
    let images: Vec<&str> = cs.iter().map(|c| str_at(c, "/image")).collect();
    (names.join(","), images.join(","))
}

// ---------------------------------------------------------------------------------
// PodTemplates.
// ---------------------------------------------------------------------------------

struct PodTemplates;

impl Strategy for PodTemplates {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        check_container_quantities(obj.pointer("/template/spec"))?;
        roundtrip::<api::PodTemplate>(obj)
    }

    fn default(&self, obj: &mut Value) {
        if let Some(t) = obj.get_mut("template") {
            default_pod_template(t);
        }
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        validate_pod_template(obj.get("template"), "template")
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new(
                "Containers",
                "string",
                "Names of each container in the template.",
            ),
            Column::new(
                "Images",
                "string",
                "Images referenced by each container in the template.",
            ),
            Column::new("Pod Labels", "string", "The labels for the pod template."),
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let empty = json!({});
        let (names, images) = container_cells(obj.pointer("/template/spec").unwrap_or(&empty));
        vec![
            json!(names),
            json!(images),
            json!(format_labels(map_at(obj, "/template/metadata/labels"))),
        ]
    }
}

// ---------------------------------------------------------------------------------
// ReplicationControllers.
// ---------------------------------------------------------------------------------

struct ReplicationControllers;

/// Go's `%v` of a string map, as upstream prints it in messages.
fn go_map(m: Option<&Map<String, Value>>) -> String {
    let sorted: BTreeMap<&String, &str> = m
        .into_iter()
        .flatten()
        .map(|(k, v)| (k, v.as_str().unwrap_or("")))
        .collect();
    let pairs: Vec<String> = sorted
        .iter()
        .map(|(k, v)| format!("\"{k}\":\"{v}\""))
        .collect();
    format!("map[string]string{{{}}}", pairs.join(", "))
}

impl Strategy for ReplicationControllers {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        check_container_quantities(obj.pointer("/spec/template/spec"))?;
        roundtrip::<api::ReplicationController>(obj)
    }

    fn default(&self, obj: &mut Value) {
        let labels = obj
            .pointer("/spec/template/metadata/labels")
            .and_then(Value::as_object)
            .cloned();
        let Some(m) = obj.as_object_mut() else { return };
        let spec = child(m, "spec");
        if let Some(labels) = &labels {
            if spec
                .get("selector")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty)
            {
                spec.insert("selector".into(), Value::Object(labels.clone()));
            }
        }
        if spec.get("replicas").is_none_or(Value::is_null) {
            spec.insert("replicas".into(), json!(1));
        }
        if let Some(t) = spec.get_mut("template") {
            default_pod_template(t);
        }
        if let Some(labels) = labels {
            let md = child(m, "metadata");
            if md
                .get("labels")
                .and_then(Value::as_object)
                .is_none_or(Map::is_empty)
            {
                md.insert("labels".into(), Value::Object(labels));
            }
        }
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            m.insert("status".into(), json!({"replicas": 0}));
        }
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        if let Some(m) = new.as_object_mut() {
            m.insert(
                "status".into(),
                old.get("status").cloned().unwrap_or(json!({})),
            );
        }
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        non_negative(
            "spec.minReadySeconds",
            obj.pointer("/spec/minReadySeconds"),
            &mut out,
        );
        let selector = map_at(obj, "/spec/selector");
        if selector.is_none_or(Map::is_empty) {
            out.push(required("spec.selector", ""));
        }
        out.extend(validate_labels("spec.selector", selector));
        non_negative("spec.replicas", obj.pointer("/spec/replicas"), &mut out);
        let template = obj.pointer("/spec/template");
        if let (Some(t), Some(sel)) = (
            template.filter(|t| t.is_object()),
            selector.filter(|s| !s.is_empty()),
        ) {
            let labels = map_at(t, "/metadata/labels");
            let matches = sel
                .iter()
                .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
            if !matches {
                out.push(Cause {
                    reason: "FieldValueInvalid",
                    message: format!(
                        "Invalid value: {}: `selector` does not match template `labels`",
                        go_map(labels)
                    ),
                    field: "spec.template.metadata.labels".into(),
                });
            }
        }
        out.extend(validate_pod_template(template, "spec.template"));
        if let Some(t) = template.filter(|t| t.is_object()) {
            let rp = str_at(t, "/spec/restartPolicy");
            if rp != "Always" && !rp.is_empty() {
                out.push(not_supported(
                    "spec.template.spec.restartPolicy",
                    &json!(rp),
                    &["Always"],
                ));
            }
            if t.pointer("/spec/activeDeadlineSeconds")
                .is_some_and(|v| !v.is_null())
            {
                out.push(forbidden(
                    "spec.template.spec.activeDeadlineSeconds",
                    "activeDeadlineSeconds in ReplicationController is not Supported",
                ));
            }
        }
        out
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        for f in [
            "replicas",
            "fullyLabeledReplicas",
            "readyReplicas",
            "availableReplicas",
            "observedGeneration",
        ] {
            non_negative(
                &format!("status.{f}"),
                new.pointer(&format!("/status/{f}")),
                &mut out,
            );
        }
        out
    }

    fn field(&self, obj: &Value, field: &str) -> Option<String> {
        match field {
            "status.replicas" => Some(
                obj.pointer("/status/replicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(0)
                    .to_string(),
            ),
            _ => None,
        }
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &["status.replicas"]
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new("Desired", "integer", "Replicas is the number of desired replicas. This is a pointer to distinguish between explicit zero and unspecified. Defaults to 1."),
            Column::new("Current", "integer", "Replicas is the most recently observed number of replicas."),
            Column::new("Ready", "integer", "The number of ready replicas for this replication controller."),
            AGE_COLUMN,
            Column::new("Containers", "string", "Names of each container in the template.").wide(),
            Column::new("Images", "string", "Images referenced by each container in the template.").wide(),
            Column::new("Selector", "string", "Selector is a label query over pods that should match the Replicas count.").wide(),
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let int = |p: &str| obj.pointer(p).and_then(Value::as_i64).unwrap_or(0);
        let empty = json!({});
        let (names, images) = container_cells(obj.pointer("/spec/template/spec").unwrap_or(&empty));
        vec![
            json!(int("/spec/replicas")),
            json!(int("/status/replicas")),
            json!(int("/status/readyReplicas")),
            json!(age(obj)),
            json!(names),
            json!(images),
            json!(format_labels(map_at(obj, "/spec/selector"))),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(spec: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "default"}, "spec": spec})
    }

    #[test]
    fn quantities_parse_like_upstream() {
        assert_eq!(parse_quantity("1"), Some(1_000_000_000));
        assert_eq!(parse_quantity("500m"), Some(500_000_000));
        assert_eq!(parse_quantity("0.5"), Some(500_000_000));
        assert_eq!(parse_quantity("1Ki"), Some(1024 * 1_000_000_000));
        assert_eq!(parse_quantity("1e3"), Some(1000 * 1_000_000_000));
        assert_eq!(parse_quantity("1Gi"), parse_quantity("1073741824"));
        assert_eq!(parse_quantity("1n"), Some(1));
        assert!(parse_quantity("abc").is_none());
        assert!(parse_quantity("1Gb").is_none());
        assert!(parse_quantity("").is_none());
    }

    #[test]
    fn pull_policy_follows_the_tag() {
        assert_eq!(default_pull_policy("nginx"), "Always");
        assert_eq!(default_pull_policy("nginx:latest"), "Always");
        assert_eq!(default_pull_policy("nginx:1.25"), "IfNotPresent");
        assert_eq!(default_pull_policy("localhost:5000/nginx"), "Always");
        assert_eq!(default_pull_policy("nginx@sha256:abc"), "IfNotPresent");
    }

    #[test]
    fn pods_get_upstream_defaults_once() {
        let mut p = pod(
            json!({"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}],
            "livenessProbe": {"httpGet": {"port": 80}},
            "resources": {"limits": {"cpu": "1"}}}],
            "volumes": [{"name": "v"}, {"name": "s", "secret": {"secretName": "x"}}]}),
        );
        Pods.default(&mut p);
        let again = {
            let mut q = p.clone();
            Pods.default(&mut q);
            q
        };
        assert_eq!(p, again, "defaulting is idempotent");
        let s = &p["spec"];
        assert_eq!(s["restartPolicy"], "Always");
        assert_eq!(s["dnsPolicy"], "ClusterFirst");
        assert_eq!(s["schedulerName"], "default-scheduler");
        assert_eq!(s["terminationGracePeriodSeconds"], 30);
        assert_eq!(s["securityContext"], json!({}));
        assert_eq!(s["enableServiceLinks"], true);
        let c = &s["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Always");
        assert_eq!(c["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(c["terminationMessagePolicy"], "File");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(c["resources"]["requests"]["cpu"], "1");
        assert_eq!(c["livenessProbe"]["periodSeconds"], 10);
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/");
        assert_eq!(s["volumes"][0]["emptyDir"], json!({}));
        assert_eq!(s["volumes"][1]["secret"]["defaultMode"], 420);
    }

    #[test]
    fn qos_classes() {
        let be = json!({"containers": [{"name": "a"}]});
        assert_eq!(qos_class(&be), "BestEffort");
        let g = json!({"containers": [{"name": "a", "resources": {
            "limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1000m", "memory": "1Gi"}}}]});
        assert_eq!(qos_class(&g), "Guaranteed");
        let b = json!({"containers": [{"name": "a", "resources": {"requests": {"cpu": "100m"}}}]});
        assert_eq!(qos_class(&b), "Burstable");
    }

    #[test]
    fn invalid_pods_name_their_fields() {
        let mut p = pod(
            json!({"containers": [{"name": "a", "image": "x"}, {"name": "a"}], "restartPolicy": "Sometimes"}),
        );
        Pods.default(&mut p);
        let causes = Pods.validate(&p);
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert!(fields.contains(&"spec.containers[1].image"), "{fields:?}");
        assert!(fields.contains(&"spec.containers[1].name"), "{fields:?}");
        assert!(fields.contains(&"spec.restartPolicy"), "{fields:?}");
        let dup = causes
            .iter()
            .find(|c| c.field == "spec.containers[1].name")
            .expect("dup");
        assert_eq!(dup.message, "Duplicate value: \"a\"");
    }

    #[test]
    fn pod_updates_change_only_images() {
        let mut old = pod(json!({"containers": [{"name": "a", "image": "x:1"}]}));
        Pods.default(&mut old);
        let mut image = old.clone();
        image["spec"]["containers"][0]["image"] = json!("x:2");
        assert!(Pods.validate_update(&image, &old).is_empty());
        let mut policy = old.clone();
        policy["spec"]["restartPolicy"] = json!("Never");
        let causes = Pods.validate_update(&policy, &old);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "spec");
        assert!(causes[0]
            .message
            .starts_with("Forbidden: pod updates may not change fields other than"));
        assert!(causes[0].message.contains("RestartPolicy"));
    }

    #[test]
    fn pod_table_reads_like_kubectl() {
        let mut p = pod(json!({"containers": [{"name": "a", "image": "x"}]}));
        Pods.default(&mut p);
        Pods.prepare_for_create(&mut p);
        let cells = Pods.cells(&p);
        assert_eq!(cells.len(), Pods.columns().len());
        assert_eq!(cells[0], "0/1");
        assert_eq!(cells[1], "Pending");
        assert_eq!(cells[2], "0");
        assert_eq!(cells[5], "<none>");
        assert_eq!(p["status"]["qosClass"], "BestEffort");
    }

    #[test]
    fn replication_controllers_default_from_the_template() {
        let mut rc = json!({"metadata": {"name": "r"}, "spec": {"template": {"metadata": {"labels": {"app": "x"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        ReplicationControllers.default(&mut rc);
        assert_eq!(rc["spec"]["selector"], json!({"app": "x"}));
        assert_eq!(rc["metadata"]["labels"], json!({"app": "x"}));
        assert_eq!(rc["spec"]["replicas"], 1);
        assert!(ReplicationControllers.validate(&rc).is_empty());
        rc["spec"]["selector"] = json!({"app": "y"});
        let causes = ReplicationControllers.validate(&rc);
        assert_eq!(causes[0].field, "spec.template.metadata.labels");
    }

    #[test]
    fn only_running_scheduled_pods_are_deleted_gracefully() {
        let mut p = pod(json!({"terminationGracePeriodSeconds": 45}));
        assert_eq!(Pods.grace_period(&p, None), Some(0), "unscheduled");
        p["spec"]["nodeName"] = json!("node-1");
        assert_eq!(
            Pods.grace_period(&p, None),
            Some(45),
            "the pod's own period"
        );
        assert_eq!(Pods.grace_period(&p, Some(3)), Some(3), "the requested one");
        p["spec"]["terminationGracePeriodSeconds"] = json!(-5);
        assert_eq!(
            Pods.grace_period(&p, None),
            Some(1),
            "negative counts as 1 s"
        );
        p["status"] = json!({"phase": "Succeeded"});
        assert_eq!(Pods.grace_period(&p, Some(3)), Some(0), "finished");
        assert_eq!(PodTemplates.grace_period(&p, Some(3)), None, "not a pod");
    }
}
