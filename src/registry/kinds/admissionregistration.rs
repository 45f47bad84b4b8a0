//! admissionregistration.k8s.io/v1 kinds: validatingwebhookconfigurations,
//! mutatingwebhookconfigurations, validatingadmissionpolicies (+status) and
//! validatingadmissionpolicybindings. They are stored and served; no admission
//! plugin calls the webhooks or evaluates the policies yet.
//!
//! Invariants: upstream v1.33 defaults (pkg/apis/admissionregistration/v1/defaults.go),
//! validation messages and field paths (pkg/apis/admissionregistration/validation,
//! without CEL compilation) and printer columns; webhook configurations carry a
//! generation that moves when their webhooks change, as upstream's strategy keeps it.

use std::sync::Arc;

use k8s_openapi::api::admissionregistration::v1 as api;
use serde_json::{json, Map, Value};

use super::apps::{invalid_raw, label_selector_string, object_at, validate_label_selector};
use super::pods::{arr_at, str_at};
use crate::apiserver::status::{
    duplicate, forbidden, invalid_value, not_supported, required, Cause,
};
use crate::registry::typed::roundtrip;
use crate::registry::validation::{
    dns1035_label, dns1123_subdomain, path_segment_name, qualified_name, NameRule,
};
use crate::registry::{age, meta, Column, Resource, Strategy, AGE_COLUMN, ALL_VERBS};

pub const GROUP: &str = "admissionregistration.k8s.io";

/// The admission review versions this server's webhooks would accept.
pub const ACCEPTED_REVIEW_VERSIONS: &[&str] = &["v1", "v1beta1"];

pub fn resources() -> Vec<Resource> {
    let resource = |kind: &'static str,
                    resource: &'static str,
                    singular: &'static str,
                    subresources: &'static [&'static str],
                    strategy: Arc<dyn Strategy>| Resource {
        group: GROUP,
        versions: &["v1"],
        kind,
        resource,
        singular,
        namespaced: false,
        short_names: &[],
        categories: &["api-extensions"],
        storage_prefix: resource,
        subresources,
        verbs: ALL_VERBS,
        name_rule: NameRule::Subdomain,
        strategy,
    };
    vec![
        resource(
            "MutatingWebhookConfiguration",
            "mutatingwebhookconfigurations",
            "mutatingwebhookconfiguration",
            &[],
            Arc::new(WebhookConfigurations { mutating: true }),
        ),
        resource(
            "ValidatingAdmissionPolicy",
            "validatingadmissionpolicies",
            "validatingadmissionpolicy",
            &["status"],
            Arc::new(Policies),
        ),
        resource(
            "ValidatingAdmissionPolicyBinding",
            "validatingadmissionpolicybindings",
            "validatingadmissionpolicybinding",
            &[],
            Arc::new(PolicyBindings),
        ),
        resource(
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
            "validatingwebhookconfiguration",
            &[],
            Arc::new(WebhookConfigurations { mutating: false }),
        ),
    ]
}

// ---------------------------------------------------------------------------------
// Defaults.
// ---------------------------------------------------------------------------------

fn default_str(m: &mut Map<String, Value>, key: &str, value: &str) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.into(), json!(value));
    }
}

fn default_selector(m: &mut Map<String, Value>, key: &str) {
    if m.get(key).is_none_or(Value::is_null) {
        m.insert(key.into(), json!({}));
    }
}

/// SetDefaults_Rule on every rule of a list.
fn default_rules(rules: Option<&mut Value>) {
    if let Some(list) = rules.and_then(Value::as_array_mut) {
        for r in list.iter_mut().filter_map(Value::as_object_mut) {
            default_str(r, "scope", "*");
        }
    }
}

/// SetDefaults_MatchResources (and the rules inside).
fn default_match_resources(m: &mut Map<String, Value>) {
    default_str(m, "matchPolicy", "Equivalent");
    default_selector(m, "namespaceSelector");
    default_selector(m, "objectSelector");
    default_rules(m.get_mut("resourceRules"));
    default_rules(m.get_mut("excludeResourceRules"));
}

/// SetDefaults_ValidatingWebhook / SetDefaults_MutatingWebhook.
fn default_webhook(w: &mut Map<String, Value>, mutating: bool) {
    default_str(w, "failurePolicy", "Fail");
    default_str(w, "matchPolicy", "Equivalent");
    default_selector(w, "namespaceSelector");
    default_selector(w, "objectSelector");
    if w.get("timeoutSeconds").is_none_or(Value::is_null) {
        w.insert("timeoutSeconds".into(), json!(10));
    }
    if mutating {
        default_str(w, "reinvocationPolicy", "Never");
    }
    default_rules(w.get_mut("rules"));
    if let Some(svc) = w
        .get_mut("clientConfig")
        .and_then(|c| c.get_mut("service"))
        .and_then(Value::as_object_mut)
    {
        if svc.get("port").is_none_or(Value::is_null) {
            svc.insert("port".into(), json!(443));
        }
    }
}

// ---------------------------------------------------------------------------------
// Validation building blocks.
// ---------------------------------------------------------------------------------

/// Go's `%#v` of a `[]string`.
fn go_string_slice(v: &[Value]) -> String {
    let parts: Vec<String> = v
        .iter()
        .map(|s| format!("{:?}", s.as_str().unwrap_or_default()))
        .collect();
    format!("[]string{{{}}}", parts.join(", "))
}

fn strings(v: &[Value]) -> Vec<&str> {
    v.iter().map(|s| s.as_str().unwrap_or_default()).collect()
}

/// IsFullyQualifiedName.
fn fully_qualified_name(path: &str, name: &str) -> Vec<Cause> {
    if name.is_empty() {
        return vec![required(path, "")];
    }
    let errs = dns1123_subdomain(name);
    if !errs.is_empty() {
        return vec![invalid_value(path, &json!(name), &errs.join(","))];
    }
    if name.split('.').count() < 3 {
        return vec![invalid_value(
            path,
            &json!(name),
            "should be a domain with at least three segments separated by dots",
        )];
    }
    Vec::new()
}

/// validateResources (subresources allowed).
fn validate_resources(resources: &[Value], path: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    if resources.is_empty() {
        out.push(required(path, ""));
    }
    let mut with_wildcard_sub = std::collections::HashSet::new();
    let mut sub_with_wildcard_res = std::collections::HashSet::new();
    let (mut double, mut single, mut plain) = (false, false, false);
    for (i, r) in strings(resources).into_iter().enumerate() {
        let p = format!("{path}[{i}]");
        if r.is_empty() {
            out.push(required(&p, ""));
            continue;
        }
        double |= r == "*/*";
        single |= r == "*";
        let Some((res, sub)) = r.split_once('/') else {
            plain = r != "*";
            continue;
        };
        if with_wildcard_sub.contains(res) {
            out.push(invalid_value(
                &p,
                &json!(r),
                &format!("if '{res}/*' is present, must not specify {r}"),
            ));
        }
        if sub_with_wildcard_res.contains(sub) {
            out.push(invalid_value(
                &p,
                &json!(r),
                &format!("if '*/{sub}' is present, must not specify {r}"),
            ));
        }
        if sub == "*" {
            with_wildcard_sub.insert(res.to_owned());
        }
        if res == "*" {
            sub_with_wildcard_res.insert(sub.to_owned());
        }
    }
    if resources.len() > 1 && double {
        out.push(invalid_raw(
            path,
            &go_string_slice(resources),
            "if '*/*' is present, must not specify other resources",
        ));
    }
    if single && plain {
        out.push(invalid_raw(
            path,
            &go_string_slice(resources),
            "if '*' is present, must not specify other resources without subresources",
        ));
    }
    out
}

/// validateRuleWithOperations (and validateRule inside).
fn validate_rule_with_operations(rule: &Value, path: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    let ops = arr_at(rule, "/operations");
    if ops.is_empty() {
        out.push(required(&format!("{path}.operations"), ""));
    }
    if ops.len() > 1 && strings(ops).contains(&"*") {
        out.push(invalid_raw(
            &format!("{path}.operations"),
            &go_string_slice(ops),
            "if '*' is present, must not specify other operations",
        ));
    }
    for (i, op) in ops.iter().enumerate() {
        let supported = ["*", "CONNECT", "CREATE", "DELETE", "UPDATE"];
        if !supported.contains(&op.as_str().unwrap_or_default()) {
            out.push(not_supported(
                &format!("{path}.operations[{i}]"),
                op,
                &supported,
            ));
        }
    }
    let groups = arr_at(rule, "/apiGroups");
    if groups.is_empty() {
        out.push(required(&format!("{path}.apiGroups"), ""));
    }
    if groups.len() > 1 && strings(groups).contains(&"*") {
        out.push(invalid_raw(
            &format!("{path}.apiGroups"),
            &go_string_slice(groups),
            "if '*' is present, must not specify other API groups",
        ));
    }
    let versions = arr_at(rule, "/apiVersions");
    if versions.is_empty() {
        out.push(required(&format!("{path}.apiVersions"), ""));
    }
    if versions.len() > 1 && strings(versions).contains(&"*") {
        out.push(invalid_raw(
            &format!("{path}.apiVersions"),
            &go_string_slice(versions),
            "if '*' is present, must not specify other API versions",
        ));
    }
    for (i, v) in strings(versions).into_iter().enumerate() {
        if v.is_empty() {
            out.push(required(&format!("{path}.apiVersions[{i}]"), ""));
        }
    }
    out.extend(validate_resources(
        arr_at(rule, "/resources"),
        &format!("{path}.resources"),
    ));
    if let Some(scope) = rule.get("scope").and_then(Value::as_str) {
        let supported = ["*", "Cluster", "Namespaced"];
        if !supported.contains(&scope) {
            out.push(not_supported(
                &format!("{path}.scope"),
                &json!(scope),
                &supported,
            ));
        }
    }
    out
}

/// ValidateWebhookURL (https forced).
fn validate_webhook_url(path: &str, url: &str) -> Vec<Cause> {
    const FORM: &str = "; desired format: https://host[/path]";
    let mut out = Vec::new();
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (s, r),
        None => ("", ""),
    };
    let (rest, fragment) = rest.split_once('#').unwrap_or((rest, ""));
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let authority = rest.split('/').next().unwrap_or("");
    let (user, host) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if scheme != "https" {
        out.push(invalid_value(
            path,
            &json!(scheme),
            &format!("'https' is the only allowed URL scheme{FORM}"),
        ));
    }
    if host.is_empty() {
        out.push(invalid_value(
            path,
            &json!(host),
            &format!("host must be specified{FORM}"),
        ));
    }
    if let Some(u) = user {
        out.push(invalid_value(
            path,
            &json!(u),
            "user information is not permitted in the URL",
        ));
    }
    if !fragment.is_empty() {
        out.push(invalid_value(
            path,
            &json!(fragment),
            "fragments are not permitted in the URL",
        ));
    }
    if !query.is_empty() {
        out.push(invalid_value(
            path,
            &json!(query),
            "query parameters are not permitted in the URL",
        ));
    }
    out
}

/// ValidateWebhookService.
fn validate_webhook_service(path: &str, svc: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    if str_at(svc, "/name").is_empty() {
        out.push(required(
            &format!("{path}.name"),
            "service name is required",
        ));
    }
    if str_at(svc, "/namespace").is_empty() {
        out.push(required(
            &format!("{path}.namespace"),
            "service namespace is required",
        ));
    }
    let port = svc.get("port").and_then(Value::as_i64).unwrap_or(443);
    if !(1..=65535).contains(&port) {
        out.push(invalid_value(
            &format!("{path}.port"),
            &json!(port),
            "port is not valid: must be between 1 and 65535, inclusive",
        ));
    }
    let Some(p) = svc.get("path").and_then(Value::as_str) else {
        return out;
    };
    let field = format!("{path}.path");
    if p.is_empty() || p == "/" {
        return out;
    }
    if p == "//" {
        out.push(invalid_value(
            &field,
            &json!(p),
            "segment[0] may not be empty",
        ));
        return out;
    }
    if !p.starts_with('/') {
        out.push(invalid_value(&field, &json!(p), "must start with a '/'"));
    }
    let check = p.get(1..).unwrap_or("");
    let check = check.strip_suffix('/').unwrap_or(check);
    for (i, step) in check.split('/').enumerate() {
        if step.is_empty() {
            out.push(invalid_value(
                &field,
                &json!(p),
                &format!("segment[{i}] may not be empty"),
            ));
            continue;
        }
        for e in dns1123_subdomain(step) {
            out.push(invalid_value(
                &field,
                &json!(p),
                &format!("segment[{i}]: {e}"),
            ));
        }
    }
    out
}

/// validateAdmissionReviewVersions.
fn validate_review_versions(versions: &[Value], path: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    if versions.is_empty() {
        return vec![required(
            path,
            &format!(
                "must specify one of {}",
                ACCEPTED_REVIEW_VERSIONS.join(", ")
            ),
        )];
    }
    let mut seen = std::collections::HashSet::new();
    let mut accepted = false;
    for (i, v) in strings(versions).into_iter().enumerate() {
        let p = format!("{path}[{i}]");
        if !seen.insert(v) {
            out.push(invalid_value(&p, &json!(v), "duplicate version"));
            continue;
        }
        for e in dns1035_label(v) {
            out.push(invalid_value(&p, &json!(v), &e));
        }
        accepted |= ACCEPTED_REVIEW_VERSIONS.contains(&v);
    }
    if !accepted {
        out.push(invalid_raw(
            path,
            &go_string_slice(versions),
            &format!(
                "must include at least one of {}",
                ACCEPTED_REVIEW_VERSIONS.join(", ")
            ),
        ));
    }
    out
}

/// validateMatchConditions (without compiling the CEL expressions).
fn validate_match_conditions(list: &[Value], path: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, c) in list.iter().enumerate() {
        let p = format!("{path}[{i}]");
        if str_at(c, "/expression").trim().is_empty() {
            out.push(required(&format!("{p}.expression"), ""));
        }
        let name = str_at(c, "/name");
        if name.is_empty() {
            out.push(required(&format!("{p}.name"), ""));
        } else {
            for e in qualified_name(name) {
                out.push(invalid_value(&format!("{p}.name"), &json!(name), &e));
            }
            if !names.insert(name) {
                out.push(duplicate(&format!("{p}.name"), &json!(name)));
            }
        }
    }
    out
}

fn one_of(obj: &Value, key: &str, path: &str, supported: &[&str]) -> Vec<Cause> {
    match obj.get(key).and_then(Value::as_str) {
        Some(v) if !supported.contains(&v) => {
            vec![not_supported(
                &format!("{path}.{key}"),
                &json!(v),
                supported,
            )]
        }
        _ => Vec::new(),
    }
}

/// validateValidatingWebhook / validateMutatingWebhook.
fn validate_webhook(hook: &Value, mutating: bool, path: &str) -> Vec<Cause> {
    let mut out = fully_qualified_name(&format!("{path}.name"), str_at(hook, "/name"));
    for (i, r) in arr_at(hook, "/rules").iter().enumerate() {
        out.extend(validate_rule_with_operations(
            r,
            &format!("{path}.rules[{i}]"),
        ));
    }
    out.extend(one_of(hook, "failurePolicy", path, &["Fail", "Ignore"]));
    out.extend(one_of(hook, "matchPolicy", path, &["Equivalent", "Exact"]));
    if mutating {
        out.extend(one_of(
            hook,
            "reinvocationPolicy",
            path,
            &["IfNeeded", "Never"],
        ));
    }
    // The typed form serializes a missing sideEffects as "".
    match hook.get("sideEffects").and_then(Value::as_str) {
        None | Some("") => out.push(required(
            &format!("{path}.sideEffects"),
            "must specify one of None, NoneOnDryRun",
        )),
        Some(s) if s != "None" && s != "NoneOnDryRun" => out.push(not_supported(
            &format!("{path}.sideEffects"),
            &json!(s),
            &["None", "NoneOnDryRun"],
        )),
        _ => {}
    }
    if let Some(t) = hook.get("timeoutSeconds").and_then(Value::as_i64) {
        if !(1..=30).contains(&t) {
            out.push(invalid_value(
                &format!("{path}.timeoutSeconds"),
                &json!(t),
                "the timeout value must be between 1 and 30 seconds",
            ));
        }
    }
    for sel in ["namespaceSelector", "objectSelector"] {
        if let Some(s) = hook.get(sel).filter(|s| !s.is_null()) {
            out.extend(validate_label_selector(s, &format!("{path}.{sel}")));
        }
    }
    let cc = hook.get("clientConfig").cloned().unwrap_or(json!({}));
    let url = cc.get("url").and_then(Value::as_str);
    let svc = cc.get("service").filter(|s| !s.is_null());
    match (url, svc) {
        (Some(u), None) => out.extend(validate_webhook_url(&format!("{path}.clientConfig.url"), u)),
        (None, Some(s)) => out.extend(validate_webhook_service(
            &format!("{path}.clientConfig.service"),
            s,
        )),
        _ => out.push(required(
            &format!("{path}.clientConfig"),
            "exactly one of url or service is required",
        )),
    }
    out.extend(validate_match_conditions(
        arr_at(hook, "/matchConditions"),
        &format!("{path}.matchConditions"),
    ));
    out
}

/// validateMatchResources.
fn validate_match_resources(m: &Value, path: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    match m.get("matchPolicy").and_then(Value::as_str) {
        None => out.push(required(&format!("{path}.matchPolicy"), "")),
        Some(p) if p != "Equivalent" && p != "Exact" => out.push(not_supported(
            &format!("{path}.matchPolicy"),
            &json!(p),
            &["Equivalent", "Exact"],
        )),
        _ => {}
    }
    for sel in ["namespaceSelector", "objectSelector"] {
        match m.get(sel).filter(|s| !s.is_null()) {
            None => out.push(required(&format!("{path}.{sel}"), "")),
            Some(s) => out.extend(validate_label_selector(s, &format!("{path}.{sel}"))),
        }
    }
    for list in ["resourceRules", "excludeResourceRules"] {
        for (i, r) in arr_at(m, &format!("/{list}")).iter().enumerate() {
            let p = format!("{path}.{list}[{i}]");
            let mut names = std::collections::HashSet::new();
            for (j, n) in strings(arr_at(r, "/resourceNames")).into_iter().enumerate() {
                for e in path_segment_name(n) {
                    out.push(invalid_value(
                        &format!("{p}.resourceNames[{j}]"),
                        &json!(n),
                        &e,
                    ));
                }
                if !names.insert(n) {
                    out.push(duplicate(&format!("{p}.resourceNames[{j}]"), &json!(n)));
                }
            }
            out.extend(validate_rule_with_operations(r, &p));
        }
    }
    out
}

// ---------------------------------------------------------------------------------
// Webhook configurations.
// ---------------------------------------------------------------------------------

struct WebhookConfigurations {
    mutating: bool,
}

impl Strategy for WebhookConfigurations {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        if self.mutating {
            roundtrip::<api::MutatingWebhookConfiguration>(obj)
        } else {
            roundtrip::<api::ValidatingWebhookConfiguration>(obj)
        }
    }

    fn default(&self, obj: &mut Value) {
        if let Some(list) = obj.get_mut("webhooks").and_then(Value::as_array_mut) {
            for w in list.iter_mut().filter_map(Value::as_object_mut) {
                default_webhook(w, self.mutating);
            }
        }
    }

    /// Generation starts at 1 (upstream's strategy sets it; the object has no spec).
    fn prepare_for_create(&self, obj: &mut Value) {
        meta::set(obj, "generation", json!(1));
    }

    /// Any change to the webhooks moves the generation.
    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        if new.get("webhooks") != old.get("webhooks") {
            meta::set(new, "generation", json!(meta::generation(old) + 1));
        }
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        let mut names = std::collections::HashSet::new();
        for (i, hook) in arr_at(obj, "/webhooks").iter().enumerate() {
            let p = format!("webhooks[{i}]");
            out.extend(validate_webhook(hook, self.mutating, &p));
            out.extend(validate_review_versions(
                arr_at(hook, "/admissionReviewVersions"),
                &format!("{p}.admissionReviewVersions"),
            ));
            let name = str_at(hook, "/name");
            if !name.is_empty() && !names.insert(name) {
                out.push(duplicate(&format!("{p}.name"), &json!(name)));
            }
        }
        out
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new(
                "Webhooks",
                "integer",
                "Webhooks indicates the number of webhooks registered in this configuration",
            ),
            AGE_COLUMN,
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        vec![json!(arr_at(obj, "/webhooks").len()), json!(age(obj))]
    }
}

// ---------------------------------------------------------------------------------
// ValidatingAdmissionPolicies and their bindings.
// ---------------------------------------------------------------------------------

struct Policies;

impl Strategy for Policies {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        roundtrip::<api::ValidatingAdmissionPolicy>(obj)
    }

    /// SetDefaults_ValidatingAdmissionPolicySpec and SetDefaults_MatchResources.
    fn default(&self, obj: &mut Value) {
        if let Some(spec) = object_at(obj, &["spec"]) {
            default_str(spec, "failurePolicy", "Fail");
            if let Some(m) = spec
                .get_mut("matchConstraints")
                .and_then(Value::as_object_mut)
            {
                default_match_resources(m);
            }
        }
    }

    /// The status starts empty (Go serializes the zero struct as `{}`).
    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            m.insert("status".into(), json!({}));
        }
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        if let Some(m) = new.as_object_mut() {
            match old.get("status") {
                Some(s) => m.insert("status".into(), s.clone()),
                None => m.remove("status"),
            };
        }
    }

    /// validateValidatingAdmissionPolicySpec (no CEL compilation).
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        let spec = obj.get("spec").cloned().unwrap_or(json!({}));
        match spec.get("failurePolicy").and_then(Value::as_str) {
            None => out.push(required("spec.failurePolicy", "")),
            Some(p) if p != "Fail" && p != "Ignore" => out.push(not_supported(
                "spec.failurePolicy",
                &json!(p),
                &["Fail", "Ignore"],
            )),
            _ => {}
        }
        if let Some(pk) = spec.get("paramKind").filter(|p| !p.is_null()) {
            if str_at(pk, "/apiVersion").is_empty() {
                out.push(required("spec.paramKind.apiVersion", ""));
            }
            let kind = str_at(pk, "/kind");
            if kind.is_empty() {
                out.push(required("spec.paramKind.kind", ""));
            } else {
                let errs = dns1035_label(&kind.to_lowercase());
                if !errs.is_empty() {
                    out.push(invalid_value(
                        "spec.paramKind.kind",
                        &json!(kind),
                        &format!(
                            "may have mixed case, but should otherwise match: {}",
                            errs.join(",")
                        ),
                    ));
                }
            }
        }
        match spec.get("matchConstraints").filter(|m| !m.is_null()) {
            None => out.push(required("spec.matchConstraints", "")),
            Some(m) => {
                out.extend(validate_match_resources(m, "spec.matchConstraints"));
                if arr_at(m, "/resourceRules").is_empty() {
                    out.push(required("spec.matchConstraints.resourceRules", ""));
                }
            }
        }
        out.extend(validate_match_conditions(
            arr_at(&spec, "/matchConditions"),
            "spec.matchConditions",
        ));
        let validations = arr_at(&spec, "/validations");
        if validations.is_empty() && arr_at(&spec, "/auditAnnotations").is_empty() {
            let msg = "validations or auditAnnotations must contain at least one item";
            out.push(required("spec.validations", msg));
            out.push(required("spec.auditAnnotations", msg));
        }
        for (i, v) in validations.iter().enumerate() {
            let p = format!("spec.validations[{i}]");
            if str_at(v, "/expression").trim().is_empty() {
                out.push(required(
                    &format!("{p}.expression"),
                    "expression is not specified",
                ));
            }
            let msg = str_at(v, "/message");
            if !msg.is_empty() && msg.trim().is_empty() {
                out.push(invalid_value(
                    &format!("{p}.message"),
                    &json!(msg),
                    "message must be non-empty if specified",
                ));
            } else if msg.trim().contains(['\n', '\r']) {
                out.push(invalid_value(
                    &format!("{p}.message"),
                    &json!(msg),
                    "message must not contain line breaks",
                ));
            }
            out.extend(one_of(
                v,
                "reason",
                &p,
                &[
                    "Forbidden",
                    "Invalid",
                    "RequestEntityTooLarge",
                    "Unauthorized",
                ],
            ));
        }
        out
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new(
                "Validations",
                "integer",
                "Validations indicates the number of validation rules defined in this configuration",
            ),
            Column::new(
                "ParamKind",
                "string",
                "ParamKind specifies the kind of resources used to parameterize this policy",
            ),
            AGE_COLUMN,
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let param_kind = match obj.pointer("/spec/paramKind").filter(|p| !p.is_null()) {
            Some(pk) => format!("{}/{}", str_at(pk, "/apiVersion"), str_at(pk, "/kind")),
            None => "<unset>".into(),
        };
        vec![
            json!(arr_at(obj, "/spec/validations").len()),
            json!(param_kind),
            json!(age(obj)),
        ]
    }
}

struct PolicyBindings;

impl Strategy for PolicyBindings {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        roundtrip::<api::ValidatingAdmissionPolicyBinding>(obj)
    }

    fn default(&self, obj: &mut Value) {
        if let Some(m) = obj
            .pointer_mut("/spec/matchResources")
            .and_then(Value::as_object_mut)
        {
            default_match_resources(m);
        }
    }

    /// validateValidatingAdmissionPolicyBindingSpec.
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        let spec = obj.get("spec").cloned().unwrap_or(json!({}));
        let policy = str_at(&spec, "/policyName");
        if policy.is_empty() {
            out.push(required("spec.policyName", ""));
        } else {
            for e in dns1123_subdomain(policy) {
                out.push(invalid_value("spec.policyName", &json!(policy), &e));
            }
        }
        if let Some(pr) = spec.get("paramRef").filter(|p| !p.is_null()) {
            let name = str_at(pr, "/name");
            let selector = pr.get("selector").filter(|s| !s.is_null());
            if !name.is_empty() {
                for e in path_segment_name(name) {
                    out.push(invalid_value("spec.paramRef.name", &json!(name), &e));
                }
                if selector.is_some() {
                    out.push(forbidden(
                        "spec.paramRef.name",
                        "name and selector are mutually exclusive",
                    ));
                }
            }
            let ns = str_at(pr, "/namespace");
            for e in path_segment_name(ns) {
                out.push(invalid_value("spec.paramRef.namespace", &json!(ns), &e));
            }
            if let Some(sel) = selector {
                out.extend(validate_label_selector(sel, "spec.paramRef.selector"));
                if !name.is_empty() {
                    out.push(forbidden(
                        "spec.paramRef.selector",
                        "name and selector are mutually exclusive",
                    ));
                }
            }
            if name.is_empty() && selector.is_none() {
                out.push(required(
                    "spec.paramRef",
                    "one of name or selector must be specified",
                ));
            }
            match str_at(pr, "/parameterNotFoundAction") {
                "" => out.push(required("spec.paramRef.parameterNotFoundAction", "")),
                "Deny" | "Allow" => {}
                other => out.push(not_supported(
                    "spec.paramRef.parameterNotFoundAction",
                    &json!(other),
                    &["Deny", "Allow"],
                )),
            }
        }
        if let Some(m) = spec.get("matchResources").filter(|m| !m.is_null()) {
            // upstream's field path, spelling included.
            out.extend(validate_match_resources(m, "spec.matchResouces"));
        }
        let actions = arr_at(&spec, "/validationActions");
        let mut seen = std::collections::HashSet::new();
        for (i, a) in strings(actions).into_iter().enumerate() {
            let p = format!("spec.validationActions[{i}]");
            if !["Audit", "Deny", "Warn"].contains(&a) {
                out.push(not_supported(&p, &json!(a), &["Audit", "Deny", "Warn"]));
            }
            if !seen.insert(a) {
                out.push(duplicate(&p, &json!(a)));
            }
        }
        if seen.contains("Deny") && seen.contains("Warn") {
            out.push(invalid_raw(
                "spec.validationActions",
                &format!(
                    "[]admissionregistration.ValidationAction{{{}}}",
                    strings(actions)
                        .iter()
                        .map(|a| format!("{a:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)",
            ));
        }
        if seen.is_empty() {
            out.push(required(
                "spec.validationActions",
                "at least one validation action is required",
            ));
        }
        out
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new(
                "PolicyName",
                "string",
                "PolicyName indicates the policy definition which the policy binding binded to",
            ),
            Column::new(
                "ParamRef",
                "string",
                "ParamRef indicates the param resource which sets the configration param",
            ),
            AGE_COLUMN,
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let param = match obj.pointer("/spec/paramRef").filter(|p| !p.is_null()) {
            None => "<unset>".to_owned(),
            Some(pr) => {
                let name = str_at(pr, "/name");
                if !name.is_empty() {
                    match str_at(pr, "/namespace") {
                        "" => format!("*/{name}"),
                        ns => format!("{ns}/{name}"),
                    }
                } else if let Some(sel) = pr.get("selector").filter(|s| !s.is_null()) {
                    label_selector_string(sel)
                } else {
                    "<unset>".to_owned()
                }
            }
        };
        vec![
            json!(str_at(obj, "/spec/policyName")),
            json!(param),
            json!(age(obj)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook() -> Value {
        json!({"metadata": {"name": "c"}, "webhooks": [{
            "name": "check.example.com",
            "clientConfig": {"service": {"name": "svc", "namespace": "ns"}},
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"]}],
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"]}]})
    }

    #[test]
    fn webhooks_get_upstream_defaults() {
        let s = WebhookConfigurations { mutating: true };
        let mut c = hook();
        s.default(&mut c);
        let w = &c["webhooks"][0];
        assert_eq!(w["failurePolicy"], "Fail");
        assert_eq!(w["matchPolicy"], "Equivalent");
        assert_eq!(w["namespaceSelector"], json!({}));
        assert_eq!(w["objectSelector"], json!({}));
        assert_eq!(w["timeoutSeconds"], 10);
        assert_eq!(w["reinvocationPolicy"], "Never");
        assert_eq!(w["rules"][0]["scope"], "*");
        assert_eq!(w["clientConfig"]["service"]["port"], 443);
        assert!(s.validate(&c).is_empty(), "{:?}", s.validate(&c));
        assert_eq!(s.cells(&c)[0], 1);
    }

    #[test]
    fn webhook_validation_reads_like_upstream() {
        let s = WebhookConfigurations { mutating: false };
        let mut c = hook();
        c["webhooks"][0]["name"] = json!("short.name");
        c["webhooks"][0]
            .as_object_mut()
            .expect("obj")
            .remove("sideEffects");
        c["webhooks"][0]["clientConfig"]["url"] = json!("https://x");
        c["webhooks"][0]["admissionReviewVersions"] = json!([]);
        let first = c["webhooks"][0].clone();
        c["webhooks"].as_array_mut().expect("list").push(first);
        s.default(&mut c);
        let causes = s.validate(&c);
        let got: Vec<(String, String)> = causes
            .iter()
            .take(4)
            .map(|c| (c.field.clone(), c.message.clone()))
            .collect();
        assert_eq!(got[0].0, "webhooks[0].name");
        assert_eq!(
            got[0].1,
            "Invalid value: \"short.name\": should be a domain with at least three segments separated by dots"
        );
        assert_eq!(
            got[1],
            (
                "webhooks[0].sideEffects".into(),
                "Required value: must specify one of None, NoneOnDryRun".into()
            )
        );
        assert_eq!(
            got[2],
            (
                "webhooks[0].clientConfig".into(),
                "Required value: exactly one of url or service is required".into()
            )
        );
        assert_eq!(got[3].0, "webhooks[0].admissionReviewVersions");
        assert!(causes
            .iter()
            .any(|c| c.field == "webhooks[1].name" && c.reason == "FieldValueDuplicate"));
    }

    #[test]
    fn policies_and_bindings() {
        let mut p = json!({"metadata": {"name": "p"}, "spec": {
            "matchConstraints": {"resourceRules": [{"operations": ["CREATE"], "apiGroups": ["apps"], "apiVersions": ["v1"], "resources": ["deployments"]}]},
            "validations": [{"expression": "object.spec.replicas <= 5"}]}});
        Policies.default(&mut p);
        assert_eq!(p["spec"]["failurePolicy"], "Fail");
        assert_eq!(p["spec"]["matchConstraints"]["matchPolicy"], "Equivalent");
        assert!(
            Policies.validate(&p).is_empty(),
            "{:?}",
            Policies.validate(&p)
        );
        assert_eq!(Policies.cells(&p)[1], "<unset>");
        let empty = json!({"spec": {"failurePolicy": "Fail"}});
        let fields: Vec<String> = Policies
            .validate(&empty)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(
            fields,
            [
                "spec.matchConstraints",
                "spec.validations",
                "spec.auditAnnotations"
            ]
        );
        let b = json!({"spec": {"policyName": "p", "validationActions": ["Deny", "Warn"],
            "paramRef": {"name": "x", "namespace": "ns", "parameterNotFoundAction": "Deny"}}});
        let c = PolicyBindings.validate(&b);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].field, "spec.validationActions");
        assert_eq!(PolicyBindings.cells(&b)[1], "ns/x");
    }
}
