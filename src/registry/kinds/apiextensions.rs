//! apiextensions.k8s.io/v1 kinds: customresourcedefinitions (+status). Definitions are
//! stored, validated and reported Established; the custom resources they define are
//! not served yet.
//!
//! Invariants: upstream v1.33 defaults (apiextensions v1 defaults.go), validation
//! messages and field paths (pkg/apis/apiextensions/validation, with the structural
//! schema's type rules but no CEL), the default table (Name, Created At); a created
//! definition's status has its names accepted, is Established, and lists its storage
//! version in storedVersions — what upstream's naming and establishing controllers
//! write moments after creation, written here with the object itself.

use std::sync::Arc;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as api;
use serde_json::{json, Value};

use super::apps::invalid_raw;
use super::pods::{arr_at, str_at};
use crate::apiserver::status::{forbidden, invalid_value, not_supported, required, Cause};
use crate::registry::store::immutable;
use crate::registry::typed::roundtrip;
use crate::registry::validation::{dns1035_label, dns1123_subdomain, NameRule};
use crate::registry::{meta, Column, Resource, Strategy, AGE_COLUMN, ALL_VERBS};

pub const GROUP: &str = "apiextensions.k8s.io";

pub fn resources() -> Vec<Resource> {
    vec![Resource {
        group: GROUP,
        versions: &["v1"],
        kind: "CustomResourceDefinition",
        resource: "customresourcedefinitions",
        singular: "customresourcedefinition",
        namespaced: false,
        short_names: &["crd", "crds"],
        categories: &["api-extensions"],
        storage_prefix: "apiextensions.k8s.io/customresourcedefinitions",
        subresources: &["status"],
        verbs: ALL_VERBS,
        name_rule: NameRule::Subdomain,
        strategy: Arc::new(CustomResourceDefinitions),
    }]
}

/// The name of the version marked `storage: true` (the first, if several are).
pub fn storage_version(crd: &Value) -> Option<&str> {
    arr_at(crd, "/spec/versions")
        .iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .map(|v| str_at(v, "/name"))
}

/// True when the definition has its Established condition True.
pub fn is_established(crd: &Value) -> bool {
    arr_at(crd, "/status/conditions")
        .iter()
        .any(|c| str_at(c, "/type") == "Established" && str_at(c, "/status") == "True")
}

struct CustomResourceDefinitions;

/// ValidateCustomResourceDefinitionNames.
fn validate_names(names: &Value, path: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    for f in ["plural", "singular"] {
        let v = str_at(names, &format!("/{f}"));
        let errs = dns1035_label(v);
        if !v.is_empty() && !errs.is_empty() {
            out.push(invalid_value(
                &format!("{path}.{f}"),
                &json!(v),
                &errs.join(","),
            ));
        }
    }
    for f in ["kind", "listKind"] {
        let v = str_at(names, &format!("/{f}"));
        let errs = dns1035_label(&v.to_lowercase());
        if !v.is_empty() && !errs.is_empty() {
            out.push(invalid_value(
                &format!("{path}.{f}"),
                &json!(v),
                &format!(
                    "may have mixed case, but should otherwise match: {}",
                    errs.join(",")
                ),
            ));
        }
    }
    for (i, s) in arr_at(names, "/shortNames").iter().enumerate() {
        let v = s.as_str().unwrap_or_default();
        let errs = dns1035_label(v);
        if !errs.is_empty() {
            out.push(invalid_value(
                &format!("{path}.shortNames[{i}]"),
                s,
                &errs.join(","),
            ));
        }
    }
    let (kind, list_kind) = (str_at(names, "/kind"), str_at(names, "/listKind"));
    if !kind.is_empty() && kind == list_kind {
        out.push(invalid_value(
            &format!("{path}.listKind"),
            &json!(list_kind),
            "kind and listKind may not be the same",
        ));
    }
    for (i, c) in arr_at(names, "/categories").iter().enumerate() {
        let errs = dns1035_label(c.as_str().unwrap_or_default());
        if !errs.is_empty() {
            out.push(invalid_value(
                &format!("{path}.categories[{i}]"),
                c,
                &errs.join(","),
            ));
        }
    }
    out
}

/// Where a schema level sits (for the structural type rule's message).
#[derive(Clone, Copy, PartialEq)]
enum Level {
    Root,
    Item,
    Field,
}

fn flag(s: &Value, key: &str) -> bool {
    s.get(key).and_then(Value::as_bool) == Some(true)
}

/// The structural schema rules on `type` (ValidateStructural's type checks) and the
/// schema features v1 forbids, recursively.
fn validate_schema(s: &Value, path: &str, level: Level, out: &mut Vec<Cause>) {
    let ty = str_at(s, "/type");
    let open =
        flag(s, "x-kubernetes-int-or-string") || flag(s, "x-kubernetes-preserve-unknown-fields");
    if flag(s, "x-kubernetes-embedded-resource") && ty != "object" {
        if ty.is_empty() {
            out.push(required(
                &format!("{path}.type"),
                "must be object if x-kubernetes-embedded-resource is true",
            ));
        } else {
            out.push(invalid_value(
                &format!("{path}.type"),
                &json!(ty),
                "must be object if x-kubernetes-embedded-resource is true",
            ));
        }
    } else if ty.is_empty() && !open {
        let msg = match level {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        out.push(required(&format!("{path}.type"), msg));
    }
    if level == Level::Root && !ty.is_empty() && ty != "object" {
        out.push(invalid_value(
            &format!("{path}.type"),
            &json!(ty),
            "must be object at the root",
        ));
    }
    let types = ["array", "boolean", "integer", "number", "object", "string"];
    if !ty.is_empty() && ty != "null" && !types.contains(&ty) {
        out.push(not_supported(&format!("{path}.type"), &json!(ty), &types));
    }
    if ty == "null" {
        out.push(forbidden(
            &format!("{path}.type"),
            "type cannot be set to null, use nullable as an alternative",
        ));
    }
    if flag(s, "uniqueItems") {
        out.push(forbidden(
            &format!("{path}.uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    for (key, what) in [
        ("patternProperties", "patternProperties is not supported"),
        ("definitions", "definitions is not supported"),
        ("dependencies", "dependencies is not supported"),
        ("$ref", "$ref is not supported"),
        ("additionalItems", "additionalItems is not supported"),
    ] {
        if s.get(key).is_some_and(|v| !v.is_null()) {
            out.push(forbidden(&format!("{path}.{key}"), what));
        }
    }
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        if s.get("additionalProperties")
            .is_some_and(|a| a.is_object() || a == &json!(false))
            && !props.is_empty()
        {
            out.push(forbidden(
                &format!("{path}.additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
        for (k, p) in props {
            validate_schema(p, &format!("{path}.properties[{k}]"), Level::Field, out);
        }
    }
    if let Some(a) = s.get("additionalProperties").filter(|a| a.is_object()) {
        validate_schema(
            a,
            &format!("{path}.additionalProperties"),
            Level::Field,
            out,
        );
    }
    match s.get("items") {
        Some(Value::Array(_)) => out.push(forbidden(
            &format!("{path}.items"),
            "items must be a schema object and not an array",
        )),
        Some(i @ Value::Object(_)) => {
            validate_schema(i, &format!("{path}.items"), Level::Item, out)
        }
        _ => {}
    }
}

fn validate_spec(obj: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    let spec = obj.get("spec").cloned().unwrap_or(json!({}));
    let group = str_at(&spec, "/group");
    if group.is_empty() {
        out.push(required("spec.group", ""));
    } else {
        let errs = dns1123_subdomain(group);
        if !errs.is_empty() {
            out.push(invalid_value("spec.group", &json!(group), &errs.join(",")));
        } else if group.split('.').count() < 2 {
            out.push(invalid_value(
                "spec.group",
                &json!(group),
                "should be a domain with at least one dot",
            ));
        }
    }
    match str_at(&spec, "/scope") {
        "" => out.push(required("spec.scope", "")),
        "Cluster" | "Namespaced" => {}
        other => out.push(not_supported(
            "spec.scope",
            &json!(other),
            &["Cluster", "Namespaced"],
        )),
    }
    let versions = arr_at(&spec, "/versions");
    let schema_of = |v: &Value| {
        v.pointer("/schema/openAPIV3Schema")
            .filter(|s| !s.is_null())
            .cloned()
    };
    // Identical per-version schemas are validated once, at the internal version's
    // top-level `spec.validation`, as upstream converts them.
    let identical = versions
        .first()
        .is_some_and(|f| versions.iter().all(|v| schema_of(v) == schema_of(f)));
    let top = versions.first().and_then(schema_of).filter(|_| identical);
    if top.is_none() {
        for (i, v) in versions.iter().enumerate() {
            if schema_of(v).is_none() {
                out.push(required(
                    &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                    "",
                ));
            }
        }
    }
    let mut storage = 0;
    let mut seen = std::collections::HashSet::new();
    let mut unique = true;
    for (i, v) in versions.iter().enumerate() {
        if flag(v, "storage") {
            storage += 1;
        }
        let name = str_at(v, "/name");
        unique &= seen.insert(name);
        let errs = dns1035_label(name);
        if !errs.is_empty() {
            out.push(invalid_value(
                &format!("spec.versions[{i}].name"),
                &json!(name),
                &errs.join(","),
            ));
        }
        if top.is_none() {
            if let Some(s) = schema_of(v) {
                validate_schema(
                    &s,
                    &format!("spec.versions[{i}].schema.openAPIV3Schema"),
                    Level::Root,
                    &mut out,
                );
            }
        }
    }
    let shown = "[]apiextensions.CustomResourceDefinitionVersion{...}";
    if !unique {
        out.push(invalid_raw(
            "spec.versions",
            shown,
            "must contain unique version names",
        ));
    }
    if storage != 1 {
        out.push(invalid_raw(
            "spec.versions",
            shown,
            "must have exactly one version marked as storage version",
        ));
    }
    for f in ["plural", "singular", "kind", "listKind"] {
        if str_at(&spec, &format!("/names/{f}")).is_empty() {
            out.push(required(&format!("spec.names.{f}"), ""));
        }
    }
    out.extend(validate_names(
        spec.get("names").unwrap_or(&Value::Null),
        "spec.names",
    ));
    if let Some(s) = top {
        validate_schema(&s, "spec.validation.openAPIV3Schema", Level::Root, &mut out);
    }
    let strategy = str_at(&spec, "/conversion/strategy");
    match strategy {
        "None" | "" => {}
        "Webhook" => {
            if spec
                .pointer("/conversion/webhook")
                .is_none_or(Value::is_null)
            {
                out.push(required(
                    "spec.conversion.webhook",
                    "required when strategy is set to Webhook",
                ));
            }
        }
        other => out.push(not_supported(
            "spec.conversion.strategy",
            &json!(other),
            &["None", "Webhook"],
        )),
    }
    out
}

/// ValidateCustomResourceDefinitionStoredVersions.
fn validate_stored_versions(obj: &Value) -> Vec<Cause> {
    let stored = arr_at(obj, "/status/storedVersions");
    let shown = || {
        let parts: Vec<String> = stored
            .iter()
            .map(|s| format!("{:?}", s.as_str().unwrap_or_default()))
            .collect();
        format!("[]string{{{}}}", parts.join(", "))
    };
    if stored.is_empty() {
        return vec![invalid_raw(
            "status.storedVersions",
            &shown(),
            "must have at least one stored version",
        )];
    }
    let mut out = Vec::new();
    let names: Vec<&str> = arr_at(obj, "/spec/versions")
        .iter()
        .map(|v| str_at(v, "/name"))
        .collect();
    if let Some(sv) = storage_version(obj) {
        if !stored.iter().any(|s| s.as_str() == Some(sv)) {
            out.push(invalid_raw(
                "status.storedVersions",
                &shown(),
                &format!("must have the storage version {sv}"),
            ));
        }
    }
    for (i, s) in stored.iter().enumerate() {
        let v = s.as_str().unwrap_or_default();
        if !names.contains(&v) {
            out.push(invalid_value(
                &format!("status.storedVersions[{i}]"),
                s,
                &format!("missing from spec.versions; {v} was previously a storage version, and must remain in spec.versions until a storage migration ensures no data remains persisted in {v} and removes {v} from status.storedVersions"),
            ));
        }
    }
    out
}

/// Accepts the spec's names and reports the definition Established, keeping the
/// transition time of conditions that already held.
fn accept(obj: &mut Value, old: Option<&Value>) {
    let names = obj.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let now = meta::now_rfc3339();
    let since = |t: &str| {
        old.and_then(|o| {
            arr_at(o, "/status/conditions")
                .iter()
                .find(|c| str_at(c, "/type") == t && str_at(c, "/status") == "True")
                .map(|c| json!(str_at(c, "/lastTransitionTime")))
        })
        .unwrap_or_else(|| json!(now))
    };
    let conditions = json!([
        {"type": "NamesAccepted", "status": "True", "lastTransitionTime": since("NamesAccepted"),
         "reason": "NoConflicts", "message": "no conflicts found"},
        {"type": "Established", "status": "True", "lastTransitionTime": since("Established"),
         "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
    ]);
    let mut stored: Vec<Value> = old
        .map(|o| arr_at(o, "/status/storedVersions").to_vec())
        .unwrap_or_default();
    if let Some(sv) = storage_version(obj) {
        if !stored.iter().any(|s| s.as_str() == Some(sv)) {
            stored.push(json!(sv));
        }
    }
    if let Some(m) = obj.as_object_mut() {
        m.insert(
            "status".into(),
            json!({"acceptedNames": names, "conditions": conditions, "storedVersions": stored}),
        );
    }
}

impl Strategy for CustomResourceDefinitions {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        roundtrip::<api::CustomResourceDefinition>(obj)
    }

    /// SetDefaults_CustomResourceDefinitionSpec (+ the conversion webhook's port).
    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return;
        };
        if let Some(names) = spec.get_mut("names").and_then(Value::as_object_mut) {
            let kind = names
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            let empty = |k: &str| {
                names
                    .get(k)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty()
            };
            let (no_singular, no_list_kind) = (empty("singular"), empty("listKind"));
            if no_singular {
                names.insert("singular".into(), json!(kind.to_lowercase()));
            }
            if no_list_kind && !kind.is_empty() {
                names.insert("listKind".into(), json!(format!("{kind}List")));
            }
        }
        if spec.get("conversion").is_none_or(Value::is_null) {
            spec.insert("conversion".into(), json!({"strategy": "None"}));
        }
        if let Some(svc) = spec
            .get_mut("conversion")
            .and_then(|c| c.pointer_mut("/webhook/clientConfig/service"))
            .and_then(Value::as_object_mut)
        {
            if svc.get("port").is_none_or(Value::is_null) {
                svc.insert("port".into(), json!(443));
            }
        }
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        accept(obj, None);
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        accept(new, Some(old));
    }

    /// ValidateCustomResourceDefinition.
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        let name = meta::name(obj);
        let want = format!(
            "{}.{}",
            str_at(obj, "/spec/names/plural"),
            str_at(obj, "/spec/group")
        );
        if !name.is_empty() && name != want {
            out.push(invalid_value(
                "metadata.name",
                &json!(name),
                "must be spec.names.plural+\".\"+spec.group",
            ));
        }
        out.extend(validate_spec(obj));
        out.extend(validate_names(
            obj.pointer("/status/acceptedNames").unwrap_or(&Value::Null),
            "status.acceptedNames",
        ));
        out.extend(validate_stored_versions(obj));
        out
    }

    /// ValidateCustomResourceDefinitionUpdate.
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut out = self.validate(new);
        let mut same = |ptr: &str, field: &str| {
            let (a, b) = (new.pointer(ptr), old.pointer(ptr));
            if a != b {
                out.push(immutable(field, a.unwrap_or(&Value::Null)));
            }
        };
        if is_established(old) {
            same("/spec/scope", "spec.scope");
            same("/spec/names/kind", "spec.names.kind");
        }
        same("/spec/group", "spec.group");
        same("/spec/names/plural", "spec.names.plural");
        out
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> Vec<Cause> {
        validate_names(
            new.pointer("/status/acceptedNames").unwrap_or(&Value::Null),
            "status.acceptedNames",
        )
    }

    fn allow_unconditional_update(&self) -> bool {
        false
    }

    fn columns(&self) -> Vec<Column> {
        vec![Column {
            name: "Created At",
            kind: "date",
            ..AGE_COLUMN
        }]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        vec![json!(meta::str_field(obj, "creationTimestamp"))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({"metadata": {"name": "widgets.example.com"}, "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wg"]},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}}}}]}})
    }

    #[test]
    fn definitions_are_defaulted_and_established() {
        let s = CustomResourceDefinitions;
        let mut c = crd();
        s.default(&mut c);
        assert_eq!(c["spec"]["names"]["singular"], "widget");
        assert_eq!(c["spec"]["names"]["listKind"], "WidgetList");
        assert_eq!(c["spec"]["conversion"]["strategy"], "None");
        s.prepare_for_create(&mut c);
        assert!(is_established(&c));
        assert_eq!(c["status"]["storedVersions"], json!(["v1"]));
        assert_eq!(c["status"]["acceptedNames"]["kind"], "Widget");
        assert!(s.validate(&c).is_empty(), "{:?}", s.validate(&c));
        roundtrip::<api::CustomResourceDefinition>(c).expect("typed");
    }

    #[test]
    fn validation_reads_like_upstream() {
        let s = CustomResourceDefinitions;
        let mut c = crd();
        c["metadata"]["name"] = json!("gadgets.example.com");
        c["spec"]["versions"][0]["storage"] = json!(false);
        c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            .as_object_mut()
            .expect("obj")
            .remove("type");
        s.default(&mut c);
        s.prepare_for_create(&mut c);
        let causes = s.validate(&c);
        let got: Vec<(&str, &str)> = causes
            .iter()
            .map(|c| (c.field.as_str(), c.message.as_str()))
            .collect();
        assert_eq!(got[0].0, "metadata.name");
        assert!(got.contains(&(
            "spec.versions",
            "Invalid value: []apiextensions.CustomResourceDefinitionVersion{...}: must have exactly one version marked as storage version"
        )));
        assert!(got.contains(&(
            "spec.validation.openAPIV3Schema.properties[spec].type",
            "Required value: must not be empty for specified object fields"
        )));
        let mut changed = crd();
        s.default(&mut changed);
        s.prepare_for_create(&mut changed);
        let mut new = changed.clone();
        new["spec"]["scope"] = json!("Cluster");
        let fields: Vec<String> = s
            .validate_update(&new, &changed)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(fields, ["spec.scope"]);
    }
}
