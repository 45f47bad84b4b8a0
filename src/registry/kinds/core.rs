//! core/v1 kinds: namespaces, configmaps, secrets, serviceaccounts.
//!
//! Invariant: defaulting and validation follow upstream's core/v1 rules for these
//! kinds (names, data keys, sizes, immutability), with upstream's messages.

use std::sync::Arc;

use k8s_openapi::api::core::v1 as api;
use serde_json::{json, Value};

use crate::apiserver::status::{forbidden, invalid_value, too_long, Cause};
use crate::registry::typed::roundtrip;
use crate::registry::validation::NameRule;
use crate::registry::{age, meta, Column, Resource, Strategy, AGE_COLUMN, ALL_VERBS};

pub fn resources() -> Vec<Resource> {
    vec![
        Resource {
            group: "",
            versions: &["v1"],
            kind: "Namespace",
            resource: "namespaces",
            singular: "namespace",
            namespaced: false,
            short_names: &["ns"],
            categories: &[],
            storage_prefix: "namespaces",
            subresources: &["status", "finalize"],
            verbs: &[
                "create", "delete", "get", "list", "patch", "update", "watch",
            ],
            name_rule: NameRule::Label,
            strategy: Arc::new(Namespaces),
        },
        Resource {
            group: "",
            versions: &["v1"],
            kind: "ConfigMap",
            resource: "configmaps",
            singular: "configmap",
            namespaced: true,
            short_names: &["cm"],
            categories: &[],
            storage_prefix: "configmaps",
            subresources: &[],
            verbs: ALL_VERBS,
            name_rule: NameRule::Subdomain,
            strategy: Arc::new(ConfigMaps),
        },
        Resource {
            group: "",
            versions: &["v1"],
            kind: "Secret",
            resource: "secrets",
            singular: "secret",
            namespaced: true,
            short_names: &[],
            categories: &[],
            storage_prefix: "secrets",
            subresources: &[],
            verbs: ALL_VERBS,
            name_rule: NameRule::Subdomain,
            strategy: Arc::new(Secrets),
        },
        Resource {
            group: "",
            versions: &["v1"],
            kind: "ServiceAccount",
            resource: "serviceaccounts",
            singular: "serviceaccount",
            namespaced: true,
            short_names: &["sa"],
            categories: &[],
            storage_prefix: "serviceaccounts",
            subresources: &["token"],
            verbs: ALL_VERBS,
            name_rule: NameRule::Subdomain,
            strategy: Arc::new(ServiceAccounts),
        },
    ]
}

struct Namespaces;

impl Strategy for Namespaces {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        roundtrip::<api::Namespace>(obj)
    }

    fn default(&self, obj: &mut Value) {
        let name = meta::name(obj).to_owned();
        if !name.is_empty() {
            let labels = meta::metadata_mut(obj)
                .entry("labels")
                .or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
        }
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            m.insert("status".into(), json!({"phase": "Active"}));
            let spec = m.entry("spec").or_insert_with(|| json!({}));
            if let Some(s) = spec.as_object_mut() {
                let fins = s.entry("finalizers").or_insert_with(|| json!([]));
                if let Some(list) = fins.as_array_mut() {
                    if !list.iter().any(|f| f == "kubernetes") {
                        list.push(json!("kubernetes"));
                    }
                }
            }
        }
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        // spec.finalizers change only through /finalize; status only through /status.
        if let Some(m) = new.as_object_mut() {
            m.insert(
                "status".into(),
                old.get("status").cloned().unwrap_or(json!({})),
            );
            m.insert("spec".into(), old.get("spec").cloned().unwrap_or(json!({})));
        }
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        if let Some(fins) = obj.pointer("/spec/finalizers").and_then(Value::as_array) {
            for (i, f) in fins.iter().enumerate() {
                let s = f.as_str().unwrap_or_default();
                if !crate::registry::validation::qualified_name(s).is_empty() {
                    out.push(invalid_value(
                        &format!("spec.finalizers[{i}]"),
                        f,
                        "name is neither a standard finalizer name nor is it fully qualified",
                    ));
                }
            }
        }
        out
    }

    fn pending_finalization(&self, obj: &Value) -> bool {
        obj.pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty())
    }

    fn mark_deleting(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            let status = m.entry("status").or_insert_with(|| json!({}));
            if let Some(s) = status.as_object_mut() {
                s.insert("phase".into(), json!("Terminating"));
            }
        }
    }

    fn field(&self, obj: &Value, field: &str) -> Option<String> {
        match field {
            "status.phase" => obj
                .pointer("/status/phase")
                .and_then(Value::as_str)
                .map(str::to_owned),
            _ => None,
        }
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &["status.phase"]
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new("Status", "string", "The status of the namespace"),
            AGE_COLUMN,
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        vec![
            obj.pointer("/status/phase").cloned().unwrap_or(json!("")),
            json!(age(obj)),
        ]
    }
}

/// upstream's IsConfigMapKey: `[-._a-zA-Z0-9]+`, not "." or "..", at most 253 bytes.
fn config_key_errors(key: &str) -> Vec<String> {
    let mut out = Vec::new();
    if key.len() > 253 {
        out.push("must be no more than 253 characters".to_owned());
    }
    if key.is_empty()
        || !key
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    {
        out.push("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')".to_owned());
    }
    if key == "." || key == ".." {
        out.push(format!("must not be '{key}'"));
    }
    out
}

/// Keys of `data` and `binaryData`: valid config keys, not in both, total ≤ 1 MiB.
fn validate_data(obj: &Value, kind: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    let mut total = 0usize;
    let data = obj.get("data").and_then(Value::as_object);
    let binary = obj.get("binaryData").and_then(Value::as_object);
    for (field, map) in [("data", data), ("binaryData", binary)] {
        for (k, v) in map.into_iter().flatten() {
            for e in config_key_errors(k) {
                out.push(invalid_value(&format!("{field}[{k}]"), &json!(k), &e));
            }
            total += k.len() + v.as_str().map(str::len).unwrap_or(0);
        }
    }
    if let (Some(d), Some(b)) = (data, binary) {
        for k in d.keys() {
            if b.contains_key(k) {
                out.push(invalid_value(
                    &format!("data[{k}]"),
                    &json!(k),
                    "duplicate of key present in binaryData",
                ));
            }
        }
    }
    if total > 1 << 20 {
        out.push(too_long("", 1 << 20));
        if let Some(last) = out.last_mut() {
            last.message = format!("Too long: must have at most 1048576 bytes ({kind} data)");
        }
    }
    out
}

/// Objects marked `immutable: true` keep their data and cannot become mutable.
fn validate_immutable(new: &Value, old: &Value, fields: &[&str]) -> Vec<Cause> {
    let mut out = Vec::new();
    if old.get("immutable").and_then(Value::as_bool) == Some(true) {
        if new.get("immutable").and_then(Value::as_bool) != Some(true) {
            out.push(forbidden(
                "immutable",
                "field is immutable when `immutable` is set",
            ));
        }
        for f in fields {
            if new.get(*f) != old.get(*f) {
                out.push(forbidden(f, "field is immutable when `immutable` is set"));
            }
        }
    }
    out
}

fn data_count(obj: &Value) -> usize {
    ["data", "binaryData"]
        .iter()
        .filter_map(|f| obj.get(*f).and_then(Value::as_object))
        .map(|m| m.len())
        .sum()
}

struct ConfigMaps;

impl Strategy for ConfigMaps {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        roundtrip::<api::ConfigMap>(obj)
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        validate_data(obj, "ConfigMap")
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut out = validate_data(new, "ConfigMap");
        out.extend(validate_immutable(new, old, &["data", "binaryData"]));
        out
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new("Data", "integer", "Data contains the configuration data."),
            AGE_COLUMN,
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        vec![json!(data_count(obj)), json!(age(obj))]
    }
}

struct Secrets;

impl Secrets {
    /// Moves `stringData` into `data` (base64), as upstream does on every write.
    fn merge_string_data(obj: &mut Value) {
        use base64::Engine;
        let Some(m) = obj.as_object_mut() else { return };
        let Some(Value::Object(sd)) = m.remove("stringData") else {
            return;
        };
        let data = m.entry("data").or_insert_with(|| json!({}));
        if let Some(d) = data.as_object_mut() {
            for (k, v) in sd {
                let s = v.as_str().unwrap_or_default();
                d.insert(
                    k,
                    json!(base64::engine::general_purpose::STANDARD.encode(s.as_bytes())),
                );
            }
        }
    }
}

impl Strategy for Secrets {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        roundtrip::<api::Secret>(obj)
    }

    fn default(&self, obj: &mut Value) {
        Self::merge_string_data(obj);
        if let Some(m) = obj.as_object_mut() {
            if m.get("type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                m.insert("type".into(), json!("Opaque"));
            }
        }
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = validate_data(obj, "Secret");
        let ty = obj.get("type").and_then(Value::as_str).unwrap_or("");
        let has = |k: &str| {
            obj.pointer(&format!("/data/{}", k.replace('/', "~1")))
                .is_some()
        };
        match ty {
            "kubernetes.io/service-account-token"
                if meta::metadata(obj)
                    .and_then(|m| m.get("annotations"))
                    .and_then(|a| a.get("kubernetes.io/service-account.name"))
                    .is_none() =>
            {
                out.push(crate::apiserver::status::required(
                    "metadata.annotations[kubernetes.io/service-account.name]",
                    "",
                ));
            }
            "kubernetes.io/dockercfg" if !has(".dockercfg") => {
                out.push(crate::apiserver::status::required("data[.dockercfg]", ""))
            }
            "kubernetes.io/dockerconfigjson" if !has(".dockerconfigjson") => out.push(
                crate::apiserver::status::required("data[.dockerconfigjson]", ""),
            ),
            "kubernetes.io/tls" => {
                for k in ["tls.crt", "tls.key"] {
                    if !has(k) {
                        out.push(crate::apiserver::status::required(
                            &format!("data[{k}]"),
                            "",
                        ));
                    }
                }
            }
            "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
                out.push(crate::apiserver::status::required("data[username]", ""))
            }
            "kubernetes.io/ssh-auth" if !has("ssh-privatekey") => out.push(
                crate::apiserver::status::required("data[ssh-privatekey]", ""),
            ),
            _ => {}
        }
        out
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut out = self.validate(new);
        if new.get("type") != old.get("type") {
            out.push(invalid_value(
                "type",
                new.get("type").unwrap_or(&Value::Null),
                "field is immutable",
            ));
        }
        out.extend(validate_immutable(new, old, &["data"]));
        out
    }

    fn field(&self, obj: &Value, field: &str) -> Option<String> {
        match field {
            "type" => obj.get("type").and_then(Value::as_str).map(str::to_owned),
            _ => None,
        }
    }

    fn selectable_fields(&self) -> &'static [&'static str] {
        &["type"]
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new(
                "Type",
                "string",
                "Used to facilitate programmatic handling of secret data.",
            ),
            Column::new("Data", "string", "Data contains the secret data."),
            AGE_COLUMN,
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        vec![
            obj.get("type").cloned().unwrap_or(json!("")),
            json!(data_count(obj)),
            json!(age(obj)),
        ]
    }
}

struct ServiceAccounts;

impl Strategy for ServiceAccounts {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        roundtrip::<api::ServiceAccount>(obj)
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new("Secrets", "string", "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use."),
            AGE_COLUMN,
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let n = obj
            .get("secrets")
            .and_then(Value::as_array)
            .map(Vec::len)
            .unwrap_or(0);
        vec![json!(n), json!(age(obj))]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keys_follow_upstream() {
        assert!(config_key_errors("a.b-c_D").is_empty());
        assert!(!config_key_errors("a/b").is_empty());
        assert!(!config_key_errors("..").is_empty());
        let causes = validate_data(
            &json!({"data": {"a": "1"}, "binaryData": {"a": "MQ=="}}),
            "ConfigMap",
        );
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "data[a]");
    }

    #[test]
    fn secrets_fold_string_data_and_default_type() {
        let mut s = json!({"stringData": {"user": "admin"}});
        Secrets.default(&mut s);
        assert_eq!(s["data"]["user"], "YWRtaW4=");
        assert_eq!(s["type"], "Opaque");
        assert!(s.get("stringData").is_none());
        let tls = json!({"type": "kubernetes.io/tls", "data": {"tls.crt": "eA=="}});
        let causes = Secrets.validate(&tls);
        assert_eq!(causes[0].field, "data[tls.key]");
    }

    #[test]
    fn immutable_configmaps_keep_their_data() {
        let old = json!({"immutable": true, "data": {"a": "1"}});
        let new = json!({"immutable": true, "data": {"a": "2"}});
        let causes = ConfigMaps.validate_update(&new, &old);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "data");
    }
}
