//! Generates the OpenAPI documents from the registry: definitions from the k8s-openapi
//! types' schemars schemas (named as upstream's), `<Kind>List` definitions, the
//! `x-kubernetes-*` extensions k8s-openapi leaves out, the group-version-kind of every
//! top-level kind, and the paths of every served resource.
//!
//! Invariant: a document describes exactly what the registry serves; every `$ref` in
//! a document resolves inside that document.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
use schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

use super::extensions;
use super::kinds;
use super::paths::{self, gvk, Dialect, Endpoint, SubKind};
use crate::registry::{Registry, Resource};

const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";
const V2_REF: &str = "#/definitions/";
const V3_REF: &str = "#/components/schemas/";

/// The generated documents.
pub struct Generated {
    /// The Swagger 2.0 document (`/openapi/v2`).
    pub v2: Value,
    /// The OpenAPI 3.0 documents by group-version path (`api/v1`, `apis/apps/v1`), in
    /// discovery order.
    pub v3: Vec<(String, Value)>,
}

/// One served resource version and its definitions.
struct Served<'a> {
    resource: &'a Resource,
    version: &'static str,
    definition: String,
    list: Option<String>,
    sub_kinds: Vec<SubKind>,
}

impl Served<'_> {
    fn endpoint(&self) -> Endpoint<'_> {
        Endpoint {
            resource: self.resource,
            version: self.version,
            definition: &self.definition,
            list_definition: self.list.as_deref(),
            sub_kinds: self
                .sub_kinds
                .iter()
                .map(|s| SubKind {
                    subresource: s.subresource,
                    gvk: s.gvk.clone(),
                    definition: s.definition.clone(),
                })
                .collect(),
        }
    }
}

/// Generates every document for what `registry` serves.
pub fn generate(registry: &Registry, kube_version: &str) -> Generated {
    let settings = SchemaSettings::draft07().with(|s| {
        s.definitions_path = "/definitions".into();
        s.meta_schema = None;
        s.transforms = Vec::new();
    });
    let mut generator = settings.into_generator();
    let mut kinds_of: BTreeMap<String, BTreeSet<(String, String, String)>> = BTreeMap::new();
    let mut mark = |def: &str, g: &str, v: &str, k: &str| {
        kinds_of.entry(def.to_owned()).or_default().insert((
            g.to_owned(),
            v.to_owned(),
            k.to_owned(),
        ));
    };

    let mut served: Vec<Served> = Vec::new();
    for r in registry.all() {
        for v in r.versions {
            let Some(k) = kinds::lookup(r.group, v, r.kind) else {
                tracing::warn!(
                    group = r.group,
                    version = v,
                    kind = r.kind,
                    "no OpenAPI schema for kind"
                );
                continue;
            };
            let definition = (k.define)(&mut generator);
            mark(&definition, r.group, v, r.kind);
            let list = r.has_verb("list").then(|| format!("{definition}List"));
            if let Some(l) = &list {
                mark(l, r.group, v, &format!("{}List", r.kind));
            }
            let mut sub_kinds = Vec::new();
            for sub in r.subresources {
                let Some((g, sv, sk)) = kinds::subresource_kind(sub) else {
                    continue;
                };
                let Some(k) = kinds::lookup(g, sv, sk) else {
                    continue;
                };
                let d = (k.define)(&mut generator);
                mark(&d, g, sv, sk);
                sub_kinds.push(SubKind {
                    subresource: sub,
                    gvk: gvk(g, sv, sk),
                    definition: d,
                });
            }
            served.push(Served {
                resource: r,
                version: v,
                definition,
                list,
                sub_kinds,
            });
        }
    }
    generator.subschema_for::<meta::Status>();
    generator.subschema_for::<meta::DeleteOptions>();
    generator.subschema_for::<meta::WatchEvent<ConfigMap>>();
    generator.subschema_for::<meta::Patch>();
    generator.subschema_for::<meta::APIResourceList>();
    generator.subschema_for::<meta::ListMeta>();
    let mut definitions = generator.take_definitions(false);

    for s in &served {
        if let Some(list) = &s.list {
            if !definitions.contains_key(list) {
                let schema = list_schema(s.resource, &s.definition, &definitions);
                definitions.insert(list.clone(), schema);
            }
        }
    }
    extensions::apply(&mut definitions);

    // The group versions served, in discovery order.
    let mut group_versions: Vec<(&'static str, &'static str)> = Vec::new();
    for (g, versions) in registry.groups() {
        for v in versions {
            group_versions.push((g, v));
        }
    }
    mark(
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
        "",
        "v1",
        "Status",
    );
    for (g, v) in std::iter::once(&("", "v1")).chain(group_versions.iter()) {
        mark(
            "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
            g,
            v,
            "DeleteOptions",
        );
        mark(
            "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent",
            g,
            v,
            "WatchEvent",
        );
    }
    for (def, set) in &kinds_of {
        if let Some(Value::Object(d)) = definitions.get_mut(def) {
            let list: Vec<Value> = set.iter().map(|(g, v, k)| gvk(g, v, k)).collect();
            d.insert("x-kubernetes-group-version-kind".into(), Value::Array(list));
        }
    }

    let info = json!({ "title": "Kubernetes", "version": kube_version });
    let bearer = json!({
        "description": "Bearer Token authentication",
        "in": "header",
        "name": "authorization",
        "type": "apiKey",
    });

    // Swagger 2.0: everything in one document.
    let mut v2_paths = BTreeMap::new();
    for (g, v) in &group_versions {
        paths::add_resource_list(&mut v2_paths, g, v, Dialect::V2);
    }
    for s in &served {
        paths::add_resource(&mut v2_paths, &s.endpoint(), Dialect::V2);
    }
    let v2 = json!({
        "swagger": "2.0",
        "info": info,
        "paths": v2_paths,
        "definitions": definitions,
        "securityDefinitions": { "BearerToken": bearer },
        "security": [{ "BearerToken": [] }],
    });

    // OpenAPI 3.0: one document per group version, with the schemas it reaches.
    let mut schemas: Map<String, Value> = definitions
        .iter()
        .map(|(k, v)| (k.clone(), to_v3(v)))
        .collect();
    extensions::apply_v3(&mut schemas);
    let mut v3 = Vec::new();
    for (g, v) in &group_versions {
        let mut gv_paths = BTreeMap::new();
        paths::add_resource_list(&mut gv_paths, g, v, Dialect::V3);
        for s in served
            .iter()
            .filter(|s| s.resource.group == *g && s.version == *v)
        {
            paths::add_resource(&mut gv_paths, &s.endpoint(), Dialect::V3);
        }
        let paths_value = serde_json::to_value(&gv_paths).unwrap_or(Value::Null);
        let reached = closure(&paths_value, &schemas);
        let key = paths::prefix(g, v).trim_start_matches('/').to_owned();
        v3.push((
            key,
            json!({
                "openapi": "3.0.0",
                "info": info,
                "paths": paths_value,
                "components": {
                    "schemas": reached,
                    "securitySchemes": { "BearerToken": bearer },
                },
                "security": [{ "BearerToken": [] }],
            }),
        ));
    }
    Generated { v2, v3 }
}

/// The `<Kind>List` definition of a kind (k8s-openapi has one generic `List<T>`).
fn list_schema(r: &Resource, item: &str, definitions: &Map<String, Value>) -> Value {
    let own = |field: &str| -> Value {
        definitions
            .get(item)
            .and_then(|d| d.get("properties"))
            .and_then(|p| p.get(field))
            .cloned()
            .unwrap_or_else(|| json!({ "type": "string" }))
    };
    json!({
        "description": format!("{}List is a list of {} objects.", r.kind, r.kind),
        "type": "object",
        "properties": {
            "apiVersion": own("apiVersion"),
            "items": {
                "description": format!("List of {}.", r.resource),
                "type": "array",
                "items": { "$ref": format!("{V2_REF}{item}") },
            },
            "kind": own("kind"),
            "metadata": {
                "$ref": format!("{V2_REF}{LIST_META}"),
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
            },
        },
        "required": ["items"],
    })
}

/// A Swagger 2.0 schema in OpenAPI 3.0 form: references point into
/// `components/schemas`, and a reference with siblings (a description) becomes
/// `allOf: [{$ref}]` beside them, as upstream's v3 documents write it.
fn to_v3(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out: Map<String, Value> =
                m.iter().map(|(k, x)| (k.clone(), to_v3(x))).collect();
            if let Some(Value::String(r)) = out.get("$ref") {
                let r = match r.strip_prefix(V2_REF) {
                    Some(name) => format!("{V3_REF}{name}"),
                    None => r.clone(),
                };
                if out.len() > 1 {
                    out.remove("$ref");
                    out.insert("allOf".into(), json!([{ "$ref": r }]));
                } else {
                    out.insert("$ref".into(), r.into());
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(to_v3).collect()),
        other => other.clone(),
    }
}

/// The schemas reachable from the references in `root`, by name.
fn closure(root: &Value, schemas: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    let mut pending = Vec::new();
    collect_refs(root, &mut pending);
    while let Some(name) = pending.pop() {
        if out.contains_key(&name) {
            continue;
        }
        let Some(schema) = schemas.get(&name) else {
            continue;
        };
        collect_refs(schema, &mut pending);
        out.insert(name, schema.clone());
    }
    out
}

fn collect_refs(v: &Value, into: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("$ref", Value::String(r)) => {
                        if let Some(name) = r.strip_prefix(V3_REF) {
                            into.push(name.to_owned());
                        }
                    }
                    _ => collect_refs(x, into),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, into)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Registry {
        Registry::new(crate::registry::kinds::all())
    }

    /// Every `$ref` in `doc` names a definition present under `defs`.
    fn refs_resolve(doc: &Value, defs: &Map<String, Value>, prefix: &str) {
        fn walk(v: &Value, defs: &Map<String, Value>, prefix: &str) {
            match v {
                Value::Object(m) => {
                    for (k, x) in m {
                        if let ("$ref", Value::String(r)) = (k.as_str(), x) {
                            let name = r.strip_prefix(prefix).expect("local reference");
                            assert!(defs.contains_key(name), "dangling reference {r}");
                        } else {
                            walk(x, defs, prefix);
                        }
                    }
                }
                Value::Array(a) => a.iter().for_each(|x| walk(x, defs, prefix)),
                _ => {}
            }
        }
        walk(doc, defs, prefix);
    }

    #[test]
    fn documents_describe_the_registry() {
        let reg = registry();
        let g = generate(&reg, "v1.33.0");
        let defs = g.v2["definitions"].as_object().expect("definitions");
        refs_resolve(&g.v2, defs, V2_REF);
        for r in reg.all() {
            for v in r.versions {
                let k = kinds::lookup(r.group, v, r.kind).expect("schema row");
                let name = (k.define)(&mut schemars::SchemaGenerator::default());
                let d = &defs[&name];
                let gvks = d["x-kubernetes-group-version-kind"]
                    .as_array()
                    .expect("gvk");
                assert!(gvks.contains(&gvk(r.group, v, r.kind)), "{name}: {gvks:?}");
            }
        }
        let cm = &defs["io.k8s.api.core.v1.ConfigMap"];
        assert_eq!(
            cm["x-kubernetes-group-version-kind"],
            json!([{"group": "", "kind": "ConfigMap", "version": "v1"}])
        );
        let meta = &defs["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"];
        assert_eq!(
            meta["ownerReferences"]["x-kubernetes-patch-merge-key"],
            "uid"
        );
        assert_eq!(meta["finalizers"]["x-kubernetes-patch-strategy"], "merge");
        assert_eq!(
            defs["io.k8s.api.core.v1.ConfigMapList"]["properties"]["items"]["items"]["$ref"],
            "#/definitions/io.k8s.api.core.v1.ConfigMap"
        );
        let patch = &g.v2["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"];
        assert_eq!(patch["x-kubernetes-action"], "patch");
        assert!(patch["consumes"]
            .as_array()
            .expect("consumes")
            .contains(&json!("application/strategic-merge-patch+json")));
        assert!(patch["parameters"]
            .as_array()
            .expect("params")
            .iter()
            .any(|p| p["name"] == "fieldValidation"));

        let (key, core) = g.v3.iter().find(|(k, _)| k == "api/v1").expect("api/v1");
        assert_eq!(key, "api/v1");
        let schemas = core["components"]["schemas"].as_object().expect("schemas");
        refs_resolve(core, schemas, V3_REF);
        let data = &schemas["io.k8s.api.core.v1.ConfigMap"]["properties"]["metadata"];
        assert_eq!(
            data["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
        );
        assert!(data.get("description").is_some());
        let op = &core["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"];
        assert!(op["requestBody"]["content"]
            .get("application/strategic-merge-patch+json")
            .is_some());
        assert_eq!(
            op["x-kubernetes-group-version-kind"],
            gvk("", "v1", "ConfigMap")
        );
        assert!(op["parameters"]
            .as_array()
            .expect("params")
            .iter()
            .any(|p| p["name"] == "fieldValidation" && p["in"] == "query"));
        assert!(
            schemas.get("io.k8s.api.apps.v1.Deployment").is_none(),
            "other groups stay out of api/v1"
        );
    }
}
