//! Strategic-merge-patch metadata of the built-in kinds, looked up by field path: the
//! same facts (`extensions::FIELDS`) the OpenAPI documents publish, so the server's
//! merge and kubectl's three-way patch agree.
//!
//! Invariant: a path is walked through the k8s-openapi schemas of the kind (list items
//! and map values are transparent, as in a strategic merge patch); an unknown kind,
//! field or path has no metadata, which means "replace" (atomic).

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

use super::extensions::{self, Field};
use super::kinds;

/// Definition and field name → the definition of the field's value (of its items for
/// a list, of its values for a map), for every built-in kind's schema.
struct Types {
    roots: HashMap<(&'static str, &'static str, &'static str), String>,
    children: HashMap<(String, String), String>,
}

fn types() -> &'static Types {
    static TYPES: OnceLock<Types> = OnceLock::new();
    TYPES.get_or_init(|| {
        let mut generator = schemars::SchemaGenerator::default();
        let mut roots = HashMap::new();
        for k in kinds::KINDS {
            roots.insert((k.group, k.version, k.kind), (k.define)(&mut generator));
        }
        let mut children = HashMap::new();
        for (def, schema) in generator.definitions() {
            let Some(props) = schema.get("properties").and_then(Value::as_object) else {
                continue;
            };
            for (field, prop) in props {
                if let Some(child) = referenced(prop) {
                    children.insert((def.clone(), field.clone()), child);
                }
            }
        }
        Types { roots, children }
    })
}

/// The definition a property refers to, directly or as its items or map values.
fn referenced(prop: &Value) -> Option<String> {
    let target = prop
        .get("$ref")
        .or_else(|| prop.get("items").and_then(|i| i.get("$ref")))
        .or_else(|| prop.get("additionalProperties").and_then(|i| i.get("$ref")))?;
    target.as_str()?.rsplit('/').next().map(str::to_owned)
}

/// The definition name of a built-in kind (`io.k8s.api.apps.v1.Deployment`).
pub fn definition(group: &str, version: &str, kind: &str) -> Option<&'static str> {
    let k = kinds::lookup(group, version, kind)?;
    types()
        .roots
        .get(&(k.group, k.version, k.kind))
        .map(String::as_str)
}

/// The list, map and patch semantics of `field` in the object reached from the root
/// of `group`/`version`/`kind` through the field names in `path` (e.g. `["spec",
/// "template", "spec", "containers"]` and `"ports"` for a Deployment's container
/// ports).
pub fn field_at(
    group: &str,
    version: &str,
    kind: &str,
    path: &[String],
    field: &str,
) -> Option<&'static Field> {
    let t = types();
    let mut def = definition(group, version, kind)?.to_owned();
    for name in path {
        def = t.children.get(&(def, name.clone()))?.clone();
    }
    extensions::field(&def, field)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn walks_kinds_to_their_fields() {
        let c = field_at(
            "apps",
            "v1",
            "Deployment",
            &path(&["spec", "template", "spec"]),
            "containers",
        )
        .expect("containers");
        assert_eq!((c.strategy, c.merge_key), ("merge", "name"));
        let p = field_at(
            "apps",
            "v1",
            "Deployment",
            &path(&["spec", "template", "spec", "containers"]),
            "ports",
        )
        .expect("ports");
        assert_eq!(p.merge_key, "containerPort");
        let p = field_at("", "v1", "Service", &path(&["spec"]), "ports").expect("ports");
        assert_eq!(p.merge_key, "port");
        let f = field_at("", "v1", "ConfigMap", &path(&["metadata"]), "finalizers")
            .expect("finalizers");
        assert_eq!((f.strategy, f.merge_key), ("merge", ""));
        let t = field_at("", "v1", "Pod", &path(&["spec"]), "tolerations").expect("tolerations");
        assert_eq!(t.strategy, "", "tolerations are atomic");
        assert!(field_at("", "v1", "Pod", &path(&["nope"]), "containers").is_none());
        assert_eq!(
            definition("apps", "v1", "Deployment"),
            Some("io.k8s.api.apps.v1.Deployment")
        );
    }
}
