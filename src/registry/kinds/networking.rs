//! networking.k8s.io/v1 kinds: ingresses (with their status subresource),
//! ingressclasses and networkpolicies — plus the decoding and address helpers the
//! storage, discovery and events kinds share (`decode_with`, CIDR parsing, wildcard
//! DNS names).
//!
//! Invariants: upstream v1.33 defaults (pkg/apis/networking/v1/defaults.go),
//! validation messages and field paths (pkg/apis/networking/validation) and printer
//! columns (printIngress, printIngressClass, printNetworkPolicy); an ingress's status
//! is reset on create and changes only through `/status`; an ingress created with
//! no class (neither `spec.ingressClassName` nor the legacy annotation) gets the
//! newest default class, as upstream's DefaultIngressClass admission plugin does; an
//! ingress class's controller never changes after creation.

use std::net::IpAddr;
use std::sync::Arc;

use k8s_openapi::api::networking::v1 as api;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use super::apps::{
    invalid_raw, keep_status, label_selector_string, reset_status, validate_label_selector,
};
use super::pods::{arr_at, port_name_errors, port_num_error, str_at};
use crate::apiserver::status::{
    forbidden, invalid_value, not_supported, required, too_long, ApiError, Cause,
};
use crate::registry::store::immutable;
use crate::registry::typed::roundtrip;
use crate::registry::validation::{
    dns1035_label, dns1123_label, dns1123_subdomain, path_segment_name, NameRule,
};
use crate::registry::{age, meta, Column, Hooks, Resource, Strategy, AGE_COLUMN, ALL_VERBS};
use crate::storage::{keys, ReadMode};

pub const GROUP: &str = "networking.k8s.io";

pub fn resources() -> Vec<Resource> {
    vec![
        Resource {
            group: GROUP,
            versions: &["v1"],
            kind: "IngressClass",
            resource: "ingressclasses",
            singular: "ingressclass",
            namespaced: false,
            short_names: &[],
            categories: &[],
            storage_prefix: "ingressclasses",
            subresources: &[],
            verbs: ALL_VERBS,
            name_rule: NameRule::Subdomain,
            strategy: Arc::new(IngressClasses),
        },
        Resource {
            group: GROUP,
            versions: &["v1"],
            kind: "Ingress",
            resource: "ingresses",
            singular: "ingress",
            namespaced: true,
            short_names: &["ing"],
            categories: &[],
            storage_prefix: "ingress",
            subresources: &["status"],
            verbs: ALL_VERBS,
            name_rule: NameRule::Subdomain,
            strategy: Arc::new(Ingresses),
        },
        Resource {
            group: GROUP,
            versions: &["v1"],
            kind: "NetworkPolicy",
            resource: "networkpolicies",
            singular: "networkpolicy",
            namespaced: true,
            short_names: &["netpol"],
            categories: &[],
            storage_prefix: "networkpolicies",
            subresources: &[],
            verbs: ALL_VERBS,
            name_rule: NameRule::Subdomain,
            strategy: Arc::new(NetworkPolicies),
        },
    ]
}

// ---------------------------------------------------------------------------------
// Shared helpers (also used by storage.rs, discovery.rs and events.rs).
// ---------------------------------------------------------------------------------

/// Type-checks `obj` as `T` after filling in fields the typed form requires, so that
/// validation (not the decoder) reports them missing, as upstream does. Each fill is
/// (pattern, placeholder, keep): the pattern is a JSON pointer whose `*` segments
/// stand for every element of an array; a kept placeholder stays in the result (Go
/// serializes that zero value too), the others are removed again after the check.
pub(crate) fn decode_with<T: DeserializeOwned + Serialize>(
    mut obj: Value,
    fills: &[(&str, Value, bool)],
) -> Result<(Value, Vec<String>), String> {
    let mut filled = Vec::new();
    for (pattern, placeholder, keep) in fills {
        let segments: Vec<&str> = pattern.split('/').skip(1).collect();
        fill(&mut obj, &segments, "", placeholder, *keep, &mut filled);
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

fn fill(
    v: &mut Value,
    segments: &[&str],
    at: &str,
    placeholder: &Value,
    keep: bool,
    filled: &mut Vec<String>,
) {
    let Some((first, rest)) = segments.split_first() else {
        return;
    };
    if *first == "*" {
        if let Some(items) = v.as_array_mut() {
            for (i, item) in items.iter_mut().enumerate() {
                fill(item, rest, &format!("{at}/{i}"), placeholder, keep, filled);
            }
        }
        return;
    }
    let Some(m) = v.as_object_mut() else {
        return;
    };
    if rest.is_empty() {
        if m.get(*first).is_none_or(Value::is_null) {
            m.insert((*first).to_owned(), placeholder.clone());
            if !keep {
                filled.push(format!("{at}/{first}"));
            }
        }
        return;
    }
    if let Some(next) = m.get_mut(*first) {
        fill(
            next,
            rest,
            &format!("{at}/{first}"),
            placeholder,
            keep,
            filled,
        );
    }
}

/// Drops causes that repeat an earlier one exactly (upstream's aggregate message
/// lists each distinct error once).
pub(crate) fn dedup(causes: Vec<Cause>) -> Vec<Cause> {
    let mut out: Vec<Cause> = Vec::with_capacity(causes.len());
    for c in causes {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// A JSON string as Go's `%q` would print it inside an error.
pub(crate) fn go_quote(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

const WILDCARD_DNS1123_SUBDOMAIN_MSG: &str = "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS subdomain, which must consist of lower case alphanumeric characters, '-' or '.' and end with an alphanumeric character (e.g. '*.example.com', regex used for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/// IsWildcardDNS1123Subdomain: `*.` followed by a DNS-1123 subdomain.
pub(crate) fn wildcard_dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push("must be no more than 253 characters".to_owned());
    }
    let ok = s
        .strip_prefix("*.")
        .is_some_and(|rest| dns1123_subdomain(rest).is_empty());
    if !ok {
        errs.push(WILDCARD_DNS1123_SUBDOMAIN_MSG.to_owned());
    }
    errs
}

/// A DNS name or wildcard name, checked as upstream checks ingress hosts.
fn host_errors(host: &str) -> Vec<String> {
    if host.contains('*') {
        wildcard_dns1123_subdomain(host)
    } else {
        dns1123_subdomain(host)
    }
}

/// The message for a malformed CIDR (IsValidCIDR).
pub(crate) const INVALID_CIDR: &str =
    "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";

/// Parses `addr/len`; returns the network address (host bits cleared) and length.
pub(crate) fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (a, l) = s.split_once('/')?;
    let ip: IpAddr = a.parse().ok()?;
    if l.is_empty() || !l.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let len: u8 = l.parse().ok()?;
    match ip {
        IpAddr::V4(v4) if len <= 32 => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            Some((IpAddr::V4((u32::from(v4) & mask).into()), len))
        }
        IpAddr::V6(v6) if len <= 128 => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            Some((IpAddr::V6((u128::from(v6) & mask).into()), len))
        }
        _ => None,
    }
}

/// True when the network `outer` contains the address `ip`.
fn cidr_contains(outer: (IpAddr, u8), ip: IpAddr) -> bool {
    match (outer.0, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => {
            let mask = if outer.1 == 0 {
                0
            } else {
                u32::MAX << (32 - outer.1)
            };
            u32::from(a) & mask == u32::from(n)
        }
        (IpAddr::V6(n), IpAddr::V6(a)) => {
            let mask = if outer.1 == 0 {
                0
            } else {
                u128::MAX << (128 - outer.1)
            };
            u128::from(a) & mask == u128::from(n)
        }
        _ => false,
    }
}

/// The message for a malformed IP address (IsValidIP).
pub(crate) const INVALID_IP: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

// ---------------------------------------------------------------------------------
// Ingresses.
// ---------------------------------------------------------------------------------

struct Ingresses;

const INGRESS_CLASS_ANNOTATION: &str = "kubernetes.io/ingress.class";

/// The annotation that marks the default ingress class.
pub const DEFAULT_CLASS_ANNOTATION: &str = "ingressclass.kubernetes.io/is-default-class";

/// The default class among `classes` (getDefaultClass): of those annotated as
/// default, the newest; on equal creation times the first by name.
fn default_class(classes: &[Value]) -> Option<String> {
    let mut defaults: Vec<(&str, &str)> = classes
        .iter()
        .filter(|c| {
            meta::metadata(c)
                .and_then(|m| m.get("annotations"))
                .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
                .and_then(Value::as_str)
                == Some("true")
        })
        .map(|c| (meta::str_field(c, "creationTimestamp"), meta::name(c)))
        .collect();
    defaults.sort_by(|a, b| b.0.cmp(a.0).then(a.1.cmp(b.1)));
    defaults.first().map(|(_, name)| (*name).to_owned())
}

/// The maximum width of the Address cell (loadBalancerWidth).
const LOAD_BALANCER_WIDTH: usize = 16;

fn validate_backend(b: &Value, path: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    let resource = b.get("resource").filter(|v| !v.is_null());
    let service = b.get("service").filter(|v| !v.is_null());
    match (resource, service) {
        (Some(_), Some(_)) => {
            out.push(invalid_value(
                path,
                &json!(""),
                "cannot set both resource and service backends",
            ));
        }
        (Some(r), None) => {
            out.extend(validate_typed_local_reference(
                r,
                &format!("{path}.resource"),
            ));
        }
        (None, Some(s)) => {
            let name = str_at(s, "/name");
            let name_path = format!("{path}.service.name");
            if name.is_empty() {
                out.push(required(&name_path, ""));
            } else {
                for e in dns1035_label(name) {
                    out.push(invalid_value(&name_path, &json!(name), &e));
                }
            }
            let port_name = str_at(s, "/port/name");
            let port_number = s
                .pointer("/port/number")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if !port_name.is_empty() && port_number != 0 {
                out.push(invalid_value(
                    path,
                    &json!(""),
                    "cannot set both port name & port number",
                ));
            } else if !port_name.is_empty() {
                for e in port_name_errors(port_name) {
                    out.push(invalid_value(
                        &format!("{path}.service.port.name"),
                        &json!(port_name),
                        e,
                    ));
                }
            } else if port_number != 0 {
                if let Some(e) = port_num_error(port_number) {
                    out.push(invalid_value(
                        &format!("{path}.service.port.number"),
                        &json!(port_number),
                        e,
                    ));
                }
            } else {
                out.push(required(path, "port name or number is required"));
            }
        }
        (None, None) => out.push(invalid_value(
            path,
            &json!(""),
            "resource or service backend is required",
        )),
    }
    out
}

/// validateIngressTypedLocalObjectReference.
fn validate_typed_local_reference(r: &Value, path: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    if let Some(g) = r.get("apiGroup").and_then(Value::as_str) {
        for e in dns1123_subdomain(g) {
            out.push(invalid_value(&format!("{path}.apiGroup"), &json!(g), &e));
        }
    }
    for field in ["kind", "name"] {
        let v = str_at(r, &format!("/{field}"));
        let p = format!("{path}.{field}");
        if v.is_empty() {
            out.push(required(&p, ""));
        } else {
            for e in path_segment_name(v) {
                out.push(invalid_value(&p, &json!(v), &e));
            }
        }
    }
    out
}

fn validate_http_path(p: &Value, path: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    let Some(path_type) = p.get("pathType").and_then(Value::as_str) else {
        out.push(required(
            &format!("{path}.pathType"),
            "pathType must be specified",
        ));
        return out;
    };
    let value = str_at(p, "/path");
    let path_field = format!("{path}.path");
    match path_type {
        "Exact" | "Prefix" => {
            if !value.starts_with('/') {
                out.push(invalid_value(
                    &path_field,
                    &json!(value),
                    "must be an absolute path",
                ));
            }
            if !value.is_empty() {
                for seq in ["//", "/./", "/../", "%2f", "%2F"] {
                    if value.contains(seq) {
                        out.push(invalid_value(
                            &path_field,
                            &json!(value),
                            &format!("must not contain '{seq}'"),
                        ));
                    }
                }
                for suffix in ["/..", "/."] {
                    if value.ends_with(suffix) {
                        out.push(invalid_value(
                            &path_field,
                            &json!(value),
                            &format!("cannot end with '{suffix}'"),
                        ));
                    }
                }
            }
        }
        "ImplementationSpecific" => {
            if !value.is_empty() && !value.starts_with('/') {
                out.push(invalid_value(
                    &path_field,
                    &json!(value),
                    "must be an absolute path",
                ));
            }
        }
        other => out.push(not_supported(
            &format!("{path}.pathType"),
            &json!(other),
            &["Exact", "ImplementationSpecific", "Prefix"],
        )),
    }
    out.extend(validate_backend(
        p.get("backend").unwrap_or(&Value::Null),
        &format!("{path}.backend"),
    ));
    out
}

/// ValidateIngressSpec.
fn validate_ingress_spec(obj: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    let rules = arr_at(obj, "/spec/rules");
    let default_backend = obj.pointer("/spec/defaultBackend").filter(|v| !v.is_null());
    if rules.is_empty() && default_backend.is_none() {
        let shown = if obj.pointer("/spec/rules").is_some_and(Value::is_array) {
            "[]networking.IngressRule{}"
        } else {
            "[]networking.IngressRule(nil)"
        };
        out.push(invalid_raw(
            "spec",
            shown,
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(b) = default_backend {
        out.extend(validate_backend(b, "spec.defaultBackend"));
    }
    for (i, rule) in rules.iter().enumerate() {
        let host = str_at(rule, "/host");
        let host_path = format!("spec.rules[{i}].host");
        if !host.is_empty() {
            if host.parse::<IpAddr>().is_ok() {
                out.push(invalid_value(
                    &host_path,
                    &json!(host),
                    "must be a DNS name, not an IP address",
                ));
            }
            for e in host_errors(host) {
                out.push(invalid_value(&host_path, &json!(host), &e));
            }
        }
        if let Some(http) = rule.get("http").filter(|v| !v.is_null()) {
            let paths = arr_at(http, "/paths");
            let base = format!("spec.rules[{i}].http.paths");
            if paths.is_empty() {
                out.push(required(&base, ""));
            }
            for (j, p) in paths.iter().enumerate() {
                out.extend(validate_http_path(p, &format!("{base}[{j}]")));
            }
        }
    }
    for (i, tls) in arr_at(obj, "/spec/tls").iter().enumerate() {
        for (j, h) in arr_at(tls, "/hosts").iter().enumerate() {
            let host = h.as_str().unwrap_or("");
            for e in host_errors(host) {
                out.push(invalid_value(
                    &format!("spec.tls[{i}].hosts[{j}]"),
                    &json!(host),
                    &e,
                ));
            }
        }
        let secret = str_at(tls, "/secretName");
        if !secret.is_empty() {
            for e in dns1123_subdomain(secret) {
                out.push(invalid_value(
                    &format!("spec.tls[{i}].secretName"),
                    &json!(secret),
                    &e,
                ));
            }
        }
    }
    if let Some(class) = obj
        .pointer("/spec/ingressClassName")
        .and_then(Value::as_str)
    {
        for e in dns1123_subdomain(class) {
            out.push(invalid_value("spec.ingressClassName", &json!(class), &e));
        }
    }
    out
}

/// ValidateIngressLoadBalancerStatus.
fn validate_ingress_status(obj: &Value, old: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    let existing: Vec<&str> = arr_at(old, "/status/loadBalancer/ingress")
        .iter()
        .map(|i| str_at(i, "/ip"))
        .filter(|ip| !ip.is_empty())
        .collect();
    for (i, ing) in arr_at(obj, "/status/loadBalancer/ingress")
        .iter()
        .enumerate()
    {
        let base = format!("status.loadBalancer.ingress[{i}]");
        let ip = str_at(ing, "/ip");
        if !ip.is_empty() && ip.parse::<IpAddr>().is_err() && !existing.contains(&ip) {
            out.push(invalid_value(&format!("{base}.ip"), &json!(ip), INVALID_IP));
        }
        let hostname = str_at(ing, "/hostname");
        if !hostname.is_empty() {
            for e in dns1123_subdomain(hostname) {
                out.push(invalid_value(
                    &format!("{base}.hostname"),
                    &json!(hostname),
                    &e,
                ));
            }
            if hostname.parse::<IpAddr>().is_ok() {
                out.push(invalid_value(
                    &format!("{base}.hostname"),
                    &json!(hostname),
                    "must be a DNS name, not an IP address",
                ));
            }
        }
    }
    out
}

/// The class an ingress asks for: spec.ingressClassName, else the legacy annotation.
fn ingress_class(obj: &Value) -> String {
    if let Some(c) = obj
        .pointer("/spec/ingressClassName")
        .and_then(Value::as_str)
    {
        return c.to_owned();
    }
    meta::metadata(obj)
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(INGRESS_CLASS_ANNOTATION))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| "<none>".to_owned())
}

/// formatHosts: up to three hosts, then `+ N more...`; `*` when none.
fn format_hosts(obj: &Value) -> String {
    const MAX: usize = 3;
    let rules = arr_at(obj, "/spec/rules");
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == MAX {
            more = true;
        }
        let host = str_at(rule, "/host");
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".to_owned();
    }
    let joined = list.join(",");
    if more {
        format!("{joined} + {} more...", rules.len() - MAX)
    } else {
        joined
    }
}

/// ingressLoadBalancerStatusStringer (not wide): sorted unique IPs or hostnames,
/// cut to 16 characters.
fn load_balancer_address(obj: &Value) -> String {
    let mut set: Vec<&str> = arr_at(obj, "/status/loadBalancer/ingress")
        .iter()
        .filter_map(|i| match (str_at(i, "/ip"), str_at(i, "/hostname")) {
            ("", "") => None,
            ("", h) => Some(h),
            (ip, _) => Some(ip),
        })
        .collect();
    set.sort_unstable();
    set.dedup();
    let r = set.join(",");
    if r.len() > LOAD_BALANCER_WIDTH {
        let cut: String = r.chars().take(LOAD_BALANCER_WIDTH - 3).collect();
        format!("{cut}...")
    } else {
        r
    }
}

/// Walks every path of every rule (for the fills of required fields).
const INGRESS_PATHS: &str = "/spec/rules/*/http/paths/*";

#[async_trait::async_trait]
impl Strategy for Ingresses {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        let backend_fills = |prefix: &str| -> Vec<(String, Value, bool)> {
            vec![
                (format!("{prefix}/service/name"), json!(""), true),
                (format!("{prefix}/resource/kind"), json!(""), true),
                (format!("{prefix}/resource/name"), json!(""), true),
            ]
        };
        let mut fills: Vec<(String, Value, bool)> = vec![
            ("/metadata".into(), json!({}), true),
            ("/spec/rules/*/http/paths".into(), json!([]), true),
            (format!("{INGRESS_PATHS}/pathType"), json!(""), false),
            (format!("{INGRESS_PATHS}/backend"), json!({}), true),
            (
                "/status/loadBalancer/ingress/*/ports/*/port".into(),
                json!(0),
                true,
            ),
            (
                "/status/loadBalancer/ingress/*/ports/*/protocol".into(),
                json!(""),
                true,
            ),
        ];
        fills.extend(backend_fills("/spec/defaultBackend"));
        fills.extend(backend_fills(&format!("{INGRESS_PATHS}/backend")));
        let fills: Vec<(&str, Value, bool)> = fills
            .iter()
            .map(|(p, v, k)| (p.as_str(), v.clone(), *k))
            .collect();
        decode_with::<api::Ingress>(obj, &fills)
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        reset_status(obj, json!({"loadBalancer": {}}));
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_status(new, old);
    }

    /// ValidateIngressCreate.
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = validate_ingress_spec(obj);
        let annotation = meta::metadata(obj)
            .and_then(|m| m.get("annotations"))
            .and_then(|a| a.get(INGRESS_CLASS_ANNOTATION))
            .and_then(Value::as_str);
        let class = obj
            .pointer("/spec/ingressClassName")
            .and_then(Value::as_str);
        if let (Some(a), Some(c)) = (annotation, class) {
            if a != c {
                out.push(invalid_value(
                    &format!("annotations.{INGRESS_CLASS_ANNOTATION}"),
                    &json!(a),
                    "must match `ingressClassName` when both are specified",
                ));
            }
        }
        out
    }

    /// ValidateIngressUpdate.
    fn validate_update(&self, new: &Value, _old: &Value) -> Vec<Cause> {
        validate_ingress_spec(new)
    }

    fn validate_status_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        validate_ingress_status(new, old)
    }

    /// The DefaultIngressClass admission plugin: an ingress that names no class gets
    /// the default one, if any.
    async fn before_create(
        &self,
        hooks: &Hooks,
        obj: &mut Value,
        _dry_run: bool,
    ) -> Result<(), ApiError> {
        let has_annotation = meta::metadata(obj)
            .and_then(|m| m.get("annotations"))
            .and_then(|a| a.get(INGRESS_CLASS_ANNOTATION))
            .is_some();
        let has_class = obj
            .pointer("/spec/ingressClassName")
            .is_some_and(|c| !c.is_null());
        if has_class || has_annotation {
            return Ok(());
        }
        let prefix = keys::list_prefix(&hooks.root, "ingressclasses", None);
        let page = hooks
            .storage
            .list(&prefix, "", 0, ReadMode::Consistent)
            .await
            .map_err(|e| {
                ApiError::forbidden_message(format!(
                    "ingresses.{GROUP} \"{}\" is forbidden: failed to list ingress classes: {e}",
                    meta::name(obj)
                ))
            })?;
        let classes: Vec<Value> = page
            .kvs
            .iter()
            .filter_map(|kv| serde_json::from_slice(&kv.value).ok())
            .collect();
        if let Some(class) = default_class(&classes) {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("ingressClassName".into(), json!(class));
            }
        }
        Ok(())
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new(
                "Class",
                "string",
                "The name of the IngressClass resource that should be used for this Ingress",
            ),
            Column::new(
                "Hosts",
                "string",
                "Hosts that incoming requests are matched against before the ingress rule",
            ),
            Column::new(
                "Address",
                "string",
                "Address is a list containing ingress points for the load-balancer",
            ),
            Column::new("Ports", "string", "Ports of TLS configurations that open"),
            AGE_COLUMN,
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let ports = if arr_at(obj, "/spec/tls").is_empty() {
            "80"
        } else {
            "80, 443"
        };
        vec![
            json!(ingress_class(obj)),
            json!(format_hosts(obj)),
            json!(load_balancer_address(obj)),
            json!(ports),
            json!(age(obj)),
        ]
    }
}

// ---------------------------------------------------------------------------------
// IngressClasses.
// ---------------------------------------------------------------------------------

struct IngressClasses;

/// IsDomainPrefixedPath.
fn domain_prefixed_path(path: &str, value: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    let Some((host, rest)) = value
        .split_once('/')
        .filter(|(h, r)| !h.is_empty() && !r.is_empty())
    else {
        out.push(invalid_value(
            path,
            &json!(value),
            "must be a domain-prefixed path (such as \"acme.io/foo\")",
        ));
        return out;
    };
    for e in dns1123_subdomain(host) {
        out.push(invalid_value(path, &json!(host), &e));
    }
    let ok = rest
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/-._~%!$&'()*+,;=:".contains(&b));
    if !ok {
        out.push(invalid_value(
            path,
            &json!(rest),
            "Invalid path (regex used for validation is '[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+')",
        ));
    }
    out
}

/// validateIngressClassParametersReference.
fn validate_class_parameters(p: &Value) -> Vec<Cause> {
    let base = "spec.parameters";
    let mut out = validate_typed_local_reference(p, base);
    let Some(scope) = p.get("scope").and_then(Value::as_str) else {
        out.push(required(&format!("{base}.scope"), ""));
        return out;
    };
    let namespace = p.get("namespace").and_then(Value::as_str);
    match scope {
        "Namespace" => match namespace {
            None => out.push(required(
                &format!("{base}.namespace"),
                "`parameters.scope` is set to 'Namespace'",
            )),
            Some(ns) => {
                for e in dns1123_label(ns) {
                    out.push(invalid_value(&format!("{base}.namespace"), &json!(ns), &e));
                }
            }
        },
        "Cluster" => {
            if namespace.is_some() {
                out.push(forbidden(
                    &format!("{base}.namespace"),
                    "`parameters.scope` is set to 'Cluster'",
                ));
            }
        }
        other => out.push(not_supported(
            &format!("{base}.scope"),
            &json!(other),
            &["Cluster", "Namespace"],
        )),
    }
    out
}

impl Strategy for IngressClasses {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        decode_with::<api::IngressClass>(
            obj,
            &[
                ("/metadata", json!({}), true),
                ("/spec/parameters/kind", json!(""), true),
                ("/spec/parameters/name", json!(""), true),
            ],
        )
    }

    /// SetDefaults_IngressClass.
    fn default(&self, obj: &mut Value) {
        if let Some(p) = obj
            .pointer_mut("/spec/parameters")
            .and_then(Value::as_object_mut)
        {
            if p.get("scope").is_none_or(Value::is_null) {
                p.insert("scope".into(), json!("Cluster"));
            }
        }
    }

    /// validateIngressClassSpec.
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        let controller = str_at(obj, "/spec/controller");
        if controller.is_empty() {
            out.push(required("spec.controller", ""));
        } else {
            if controller.len() > 250 {
                out.push(too_long("spec.controller", 250));
            }
            out.extend(domain_prefixed_path("spec.controller", controller));
        }
        if let Some(p) = obj.pointer("/spec/parameters").filter(|p| !p.is_null()) {
            out.extend(validate_class_parameters(p));
        }
        out
    }

    /// ValidateIngressClassUpdate.
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        let (a, b) = (
            str_at(new, "/spec/controller"),
            str_at(old, "/spec/controller"),
        );
        if a != b {
            out.push(immutable("spec.controller", &json!(a)));
        }
        out.extend(self.validate(new));
        out
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new(
                "Controller",
                "string",
                "Controller that is responsible for handling this class",
            ),
            Column::new(
                "Parameters",
                "string",
                "A reference to a resource with additional parameters",
            ),
            AGE_COLUMN,
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let parameters = match obj.pointer("/spec/parameters").filter(|p| p.is_object()) {
            None => "<none>".to_owned(),
            Some(p) => {
                let mut s = str_at(p, "/kind").to_owned();
                if let Some(g) = p.get("apiGroup").and_then(Value::as_str) {
                    s = format!("{s}.{g}");
                }
                format!("{s}/{}", str_at(p, "/name"))
            }
        };
        vec![
            json!(str_at(obj, "/spec/controller")),
            json!(parameters),
            json!(age(obj)),
        ]
    }
}

// ---------------------------------------------------------------------------------
// NetworkPolicies.
// ---------------------------------------------------------------------------------

struct NetworkPolicies;

/// ValidateNetworkPolicyPort.
fn validate_policy_port(port: &Value, path: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    if let Some(proto) = port.get("protocol").and_then(Value::as_str) {
        if !matches!(proto, "TCP" | "UDP" | "SCTP") {
            out.push(not_supported(
                &format!("{path}.protocol"),
                &json!(proto),
                &["TCP", "UDP", "SCTP"],
            ));
        }
    }
    let end_port = port.get("endPort").and_then(Value::as_i64);
    let end_path = format!("{path}.endPort");
    match port.get("port").filter(|p| !p.is_null()) {
        Some(Value::Number(n)) => {
            let n = n.as_i64().unwrap_or(0);
            if let Some(e) = port_num_error(n) {
                out.push(invalid_value(&format!("{path}.port"), &json!(n), e));
            }
            if let Some(end) = end_port {
                if end < n {
                    out.push(invalid_value(
                        &end_path,
                        &json!(end),
                        "must be greater than or equal to `port`",
                    ));
                }
                if let Some(e) = port_num_error(end) {
                    out.push(invalid_value(&end_path, &json!(end), e));
                }
            }
        }
        Some(Value::String(name)) => {
            if let Some(end) = end_port {
                out.push(invalid_value(
                    &end_path,
                    &json!(end),
                    "may not be specified when `port` is non-numeric",
                ));
            }
            for e in port_name_errors(name) {
                out.push(invalid_value(&format!("{path}.port"), &json!(name), e));
            }
        }
        _ => {
            if let Some(end) = end_port {
                out.push(invalid_value(
                    &end_path,
                    &json!(end),
                    "may not be specified when `port` is not specified",
                ));
            }
        }
    }
    out
}

/// ValidateIPBlock.
fn validate_ip_block(block: &Value, path: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    let cidr = str_at(block, "/cidr");
    if cidr.is_empty() {
        out.push(required(&format!("{path}.cidr"), ""));
        return out;
    }
    let Some(outer) = parse_cidr(cidr) else {
        out.push(invalid_value(
            &format!("{path}.cidr"),
            &json!(cidr),
            INVALID_CIDR,
        ));
        return out;
    };
    for (i, e) in arr_at(block, "/except").iter().enumerate() {
        let s = e.as_str().unwrap_or("");
        let p = format!("{path}.except[{i}]");
        let Some(inner) = parse_cidr(s) else {
            out.push(invalid_value(&p, &json!(s), INVALID_CIDR));
            continue;
        };
        if !cidr_contains(outer, inner.0) || outer.1 >= inner.1 {
            out.push(invalid_value(
                &p,
                &json!(s),
                "must be a strict subset of `cidr`",
            ));
        }
    }
    out
}

/// ValidateNetworkPolicyPeer.
fn validate_peer(peer: &Value, path: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    let mut peers = 0;
    for sel in ["podSelector", "namespaceSelector"] {
        if let Some(s) = peer.get(sel).filter(|s| !s.is_null()) {
            peers += 1;
            out.extend(validate_label_selector(s, &format!("{path}.{sel}")));
        }
    }
    let ip_block = peer.get("ipBlock").filter(|b| !b.is_null());
    if let Some(b) = ip_block {
        peers += 1;
        out.extend(validate_ip_block(b, &format!("{path}.ipBlock")));
    }
    if peers == 0 {
        out.push(required(path, "must specify a peer"));
    } else if peers > 1 && ip_block.is_some() {
        out.push(forbidden(
            path,
            "may not specify both ipBlock and another peer",
        ));
    }
    out
}

impl Strategy for NetworkPolicies {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        decode_with::<api::NetworkPolicy>(
            obj,
            &[
                ("/metadata", json!({}), true),
                ("/spec/ingress/*/from/*/ipBlock/cidr", json!(""), true),
                ("/spec/egress/*/to/*/ipBlock/cidr", json!(""), true),
            ],
        )
    }

    /// SetDefaults_NetworkPolicy and SetDefaults_NetworkPolicyPort; the pod selector
    /// is a value (not a pointer) upstream, so an absent one is the empty selector.
    fn default(&self, obj: &mut Value) {
        let Some(m) = obj.as_object_mut() else {
            return;
        };
        let spec = m.entry("spec").or_insert_with(|| json!({}));
        if spec.is_null() {
            *spec = json!({});
        }
        let Some(spec) = spec.as_object_mut() else {
            return;
        };
        if spec.get("podSelector").is_none_or(Value::is_null) {
            spec.insert("podSelector".into(), json!({}));
        }
        for rules in ["ingress", "egress"] {
            for rule in spec
                .get_mut(rules)
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                for port in rule
                    .get_mut("ports")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    if let Some(p) = port.as_object_mut() {
                        if p.get("protocol").is_none_or(Value::is_null) {
                            p.insert("protocol".into(), json!("TCP"));
                        }
                    }
                }
            }
        }
        let no_types = spec
            .get("policyTypes")
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty);
        if no_types {
            let has_egress = spec
                .get("egress")
                .and_then(Value::as_array)
                .is_some_and(|e| !e.is_empty());
            let types = if has_egress {
                json!(["Ingress", "Egress"])
            } else {
                json!(["Ingress"])
            };
            spec.insert("policyTypes".into(), types);
        }
    }

    /// ValidateNetworkPolicySpec.
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        if let Some(sel) = obj.pointer("/spec/podSelector").filter(|s| !s.is_null()) {
            out.extend(validate_label_selector(sel, "spec.podSelector"));
        }
        for (rules, peers) in [("ingress", "from"), ("egress", "to")] {
            for (i, rule) in arr_at(obj, &format!("/spec/{rules}")).iter().enumerate() {
                let base = format!("spec.{rules}[{i}]");
                for (j, port) in arr_at(rule, "/ports").iter().enumerate() {
                    out.extend(validate_policy_port(port, &format!("{base}.ports[{j}]")));
                }
                for (j, peer) in arr_at(rule, &format!("/{peers}")).iter().enumerate() {
                    out.extend(validate_peer(peer, &format!("{base}.{peers}[{j}]")));
                }
            }
        }
        let types = arr_at(obj, "/spec/policyTypes");
        if types.len() > 2 {
            let shown: Vec<String> = types
                .iter()
                .map(|t| go_quote(t.as_str().unwrap_or("")))
                .collect();
            out.push(invalid_raw(
                "spec.policyTypes",
                &format!("[]networking.PolicyType{{{}}}", shown.join(", ")),
                "may not specify more than two policyTypes",
            ));
            return out;
        }
        for (i, t) in types.iter().enumerate() {
            let s = t.as_str().unwrap_or("");
            if s != "Ingress" && s != "Egress" {
                out.push(not_supported(
                    &format!("spec.policyTypes[{i}]"),
                    t,
                    &["Ingress", "Egress"],
                ));
            }
        }
        out
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new("Pod-Selector", "string", "podSelector selects the pods to which this NetworkPolicy object applies. The array of rules is applied to any pods selected by this field. An empty selector matches all pods in the policy's namespace. Multiple network policies can select the same set of pods. In this case, the ingress rules for each are combined additively. This field is optional. If it is not specified, it defaults to an empty selector."),
            AGE_COLUMN,
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let sel = obj
            .pointer("/spec/podSelector")
            .map(label_selector_string)
            .unwrap_or_default();
        let sel = if sel.is_empty() {
            "<none>".to_owned()
        } else {
            sel
        };
        vec![json!(sel), json!(age(obj))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::registry::kinds::cause_fields as fields;

    #[test]
    fn missing_path_type_is_a_validation_error_not_a_decode_error() {
        let ing = json!({
            "metadata": {"name": "web"},
            "spec": {"rules": [{"host": "example.com", "http": {"paths": [
                {"path": "/", "backend": {"service": {"name": "web", "port": {"number": 80}}}}
            ]}}]}
        });
        let (decoded, unknown) = Ingresses.decode(ing).expect("decodes");
        assert!(unknown.is_empty(), "{unknown:?}");
        assert!(decoded
            .pointer("/spec/rules/0/http/paths/0/pathType")
            .is_none());
        let causes = Ingresses.validate(&decoded);
        assert_eq!(fields(&causes), ["spec.rules[0].http.paths[0].pathType"]);
        assert_eq!(
            causes[0].message,
            "Required value: pathType must be specified"
        );
    }

    #[test]
    fn ingress_rules_backends_and_hosts() {
        let ing = json!({"spec": {"rules": [
            {"host": "*.example.com", "http": {"paths": [
                {"path": "rel", "pathType": "Prefix", "backend": {"service": {"name": "web"}}},
                {"path": "/a//b", "pathType": "Exact", "backend": {"service": {"name": "Web", "port": {"number": 80}}}},
                {"path": "/", "pathType": "Bogus", "backend": {}}
            ]}},
            {"host": "10.0.0.1"}
        ]}});
        let causes = Ingresses.validate(&ing);
        assert_eq!(
            fields(&causes),
            [
                "spec.rules[0].http.paths[0].path",
                "spec.rules[0].http.paths[0].backend",
                "spec.rules[0].http.paths[1].path",
                "spec.rules[0].http.paths[1].backend.service.name",
                "spec.rules[0].http.paths[2].pathType",
                "spec.rules[0].http.paths[2].backend",
                "spec.rules[1].host",
            ]
        );
        assert_eq!(
            causes[0].message,
            "Invalid value: \"rel\": must be an absolute path"
        );
        assert_eq!(
            causes[1].message,
            "Required value: port name or number is required"
        );
        assert_eq!(
            causes[4].message,
            "Unsupported value: \"Bogus\": supported values: \"Exact\", \"ImplementationSpecific\", \"Prefix\""
        );
        assert_eq!(
            causes[6].message,
            "Invalid value: \"10.0.0.1\": must be a DNS name, not an IP address"
        );
        let empty = Ingresses.validate(&json!({"spec": {}}));
        assert_eq!(empty[0].message, "Invalid value: []networking.IngressRule(nil): either `defaultBackend` or `rules` must be specified");
        assert!(!wildcard_dns1123_subdomain("a.*.com").is_empty());
        assert!(wildcard_dns1123_subdomain("*.a.com").is_empty());
    }

    #[test]
    fn ingress_cells() {
        let ing = json!({
            "metadata": {"name": "web", "annotations": {"kubernetes.io/ingress.class": "nginx"}},
            "spec": {"tls": [{"hosts": ["a.com"]}], "rules": [{"host": "a.com"}, {"host": "b.com"}, {}, {"host": "d.com"}, {"host": "e.com"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.168.100.200"}, {"hostname": "lb.example.com"}]}}
        });
        let cells = Ingresses.cells(&ing);
        assert_eq!(cells.len(), Ingresses.columns().len());
        assert_eq!(cells[0], "nginx");
        assert_eq!(cells[1], "a.com,b.com,d.com + 2 more...");
        assert_eq!(cells[2], "192.168.100.2...");
        assert_eq!(cells[3], "80, 443");
        let bare = Ingresses.cells(&json!({"spec": {"ingressClassName": "x"}}));
        assert_eq!(bare[0], "x");
        assert_eq!(bare[1], "*");
        assert_eq!(bare[3], "80");
    }

    #[test]
    fn ingress_classes_default_validate_and_print() {
        let mut c = json!({"spec": {"controller": "example.com/ingress", "parameters": {"kind": "Params", "name": "p", "apiGroup": "k8s.example.com"}}});
        IngressClasses.default(&mut c);
        assert_eq!(c["spec"]["parameters"]["scope"], "Cluster");
        assert!(IngressClasses.validate(&c).is_empty());
        assert_eq!(IngressClasses.cells(&c)[1], "Params.k8s.example.com/p");
        let bad = IngressClasses.validate(&json!({"spec": {"controller": "nginx"}}));
        assert_eq!(
            bad[0].message,
            "Invalid value: \"nginx\": must be a domain-prefixed path (such as \"acme.io/foo\")"
        );
        let missing = IngressClasses.validate(&json!({"spec": {}}));
        assert_eq!(fields(&missing), ["spec.controller"]);
        let mut new = c.clone();
        new["spec"]["controller"] = json!("example.com/other");
        let upd = IngressClasses.validate_update(&new, &c);
        assert_eq!(upd[0].field, "spec.controller");
        assert!(upd[0].message.ends_with("field is immutable"));
    }

    #[test]
    fn network_policies_default_and_validate() {
        let mut np = json!({"spec": {"egress": [{"ports": [{"port": 53}]}]}});
        NetworkPolicies.default(&mut np);
        assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert_eq!(np["spec"]["podSelector"], json!({}));
        assert_eq!(np["spec"]["egress"][0]["ports"][0]["protocol"], "TCP");
        assert!(NetworkPolicies.validate(&np).is_empty());
        assert_eq!(NetworkPolicies.cells(&np)[0], "<none>");

        let bad = json!({"spec": {"podSelector": {"matchLabels": {"app": "web"}},
            "policyTypes": ["Ingress", "Sideways"],
            "ingress": [{"from": [{}, {"ipBlock": {"cidr": "10.0.0.0/16", "except": ["10.1.0.0/24"]}, "podSelector": {}}],
                "ports": [{"protocol": "TCP", "port": "http", "endPort": 90}]}]}});
        let causes = NetworkPolicies.validate(&bad);
        assert_eq!(
            fields(&causes),
            [
                "spec.ingress[0].ports[0].endPort",
                "spec.ingress[0].from[0]",
                "spec.ingress[0].from[1].ipBlock.except[0]",
                "spec.ingress[0].from[1]",
                "spec.policyTypes[1]",
            ]
        );
        assert_eq!(causes[1].message, "Required value: must specify a peer");
        assert_eq!(NetworkPolicies.cells(&bad)[0], "app=web");
    }

    #[test]
    fn the_newest_default_class_wins() {
        let class = |name: &str, created: &str, default: bool| {
            let mut c = json!({"metadata": {"name": name, "creationTimestamp": created}});
            if default {
                c["metadata"]["annotations"] = json!({DEFAULT_CLASS_ANNOTATION: "true"});
            }
            c
        };
        assert_eq!(
            default_class(&[class("a", "2025-01-01T00:00:00Z", false)]),
            None
        );
        let classes = [
            class("old", "2025-01-01T00:00:00Z", true),
            class("newest", "2025-03-01T00:00:00Z", true),
            class("other", "2025-06-01T00:00:00Z", false),
            class("another", "2025-03-01T00:00:00Z", true),
        ];
        assert_eq!(default_class(&classes).as_deref(), Some("another"));
    }

    #[test]
    fn cidrs_parse_and_contain() {
        let outer = parse_cidr("10.0.0.0/8").expect("cidr");
        assert!(cidr_contains(outer, "10.1.2.3".parse().expect("ip")));
        assert!(!cidr_contains(outer, "11.0.0.0".parse().expect("ip")));
        assert!(parse_cidr("10.0.0.0").is_none());
        assert!(parse_cidr("10.0.0.0/33").is_none());
        assert_eq!(parse_cidr("fd00::1/64").map(|c| c.1), Some(64));
    }
}
