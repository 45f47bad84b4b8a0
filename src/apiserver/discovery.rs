//! Discovery: /api, /apis, /api/v1, /apis/<group>, /apis/<group>/<version>, and the
//! aggregated discovery documents (apidiscovery.k8s.io v2 and v2beta1) that kubectl
//! 1.32 asks for by `Accept`.
//!
//! Invariant: every document is derived from the registry, so discovery never lists a
//! resource the server does not serve, nor misses one it does.

use serde_json::{json, Value};

use crate::registry::{Registry, Resource};

/// What a subresource of `parent` served at `version` is: (group, version, kind, verbs).
pub fn subresource_info<'a>(
    parent: &Resource,
    version: &'a str,
    sub: &str,
) -> (&'static str, &'a str, &'static str, Vec<&'static str>) {
    let rw = vec!["get", "patch", "update"];
    match sub {
        "status" | "approval" | "ephemeralcontainers" | "resize" => {
            (parent.group, version, parent.kind, rw)
        }
        "scale" => ("autoscaling", "v1", "Scale", rw),
        "binding" => ("", "v1", "Binding", vec!["create"]),
        "eviction" => ("policy", "v1", "Eviction", vec!["create"]),
        "token" => (
            "authentication.k8s.io",
            "v1",
            "TokenRequest",
            vec!["create"],
        ),
        "finalize" => ("", "v1", "Namespace", vec!["update"]),
        "log" => ("", "v1", "Pod", vec!["get"]),
        _ => (parent.group, version, parent.kind, vec!["get"]),
    }
}

/// GET /api
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn group_json(name: &str, versions: &[&str]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
        .collect();
    json!({
        "name": name,
        "versions": vs,
        "preferredVersion": vs.first().cloned().unwrap_or(json!({})),
    })
}

/// GET /apis
pub fn api_group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .into_iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| group_json(g, &vs))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// GET /apis/<group>
pub fn api_group(registry: &Registry, group: &str) -> Option<Value> {
    let (_, vs) = registry
        .groups()
        .into_iter()
        .find(|(g, _)| *g == group && !g.is_empty())?;
    let mut g = group_json(group, &vs);
    g["kind"] = json!("APIGroup");
    g["apiVersion"] = json!("v1");
    Some(g)
}

/// GET /api/v1 or /apis/<group>/<version>
pub fn api_resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut resources = Vec::new();
    for r in registry.in_group_version(group, version) {
        resources.push(json!({
            "name": r.resource,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs,
            "shortNames": r.short_names,
            "categories": r.categories,
        }));
        for sub in r.subresources {
            let (g, v, kind, verbs) = subresource_info(r, version, sub);
            let mut entry = json!({
                "name": format!("{}/{sub}", r.resource),
                "singularName": "",
                "namespaced": r.namespaced,
                "kind": kind,
                "verbs": verbs,
            });
            if g != r.group || v != version {
                entry["group"] = json!(g);
                entry["version"] = json!(v);
            }
            resources.push(entry);
        }
    }
    if resources.is_empty() {
        return None;
    }
    let gv = crate::registry::meta::group_version(group, version);
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}),
    )
}

/// The aggregated discovery document for /api (`legacy`) or /apis.
pub fn aggregated(registry: &Registry, legacy: bool, api_version: &str) -> Value {
    let mut items = Vec::new();
    for (group, versions) in registry.groups() {
        if group.is_empty() != legacy {
            continue;
        }
        let mut vs = Vec::new();
        for version in &versions {
            let mut resources = Vec::new();
            for r in registry.in_group_version(group, version) {
                let subresources: Vec<Value> = r
                    .subresources
                    .iter()
                    .map(|sub| {
                        let (g, v, kind, verbs) = subresource_info(r, version, sub);
                        json!({
                            "subresource": sub,
                            "responseKind": {"group": g, "version": v, "kind": kind},
                            "verbs": verbs,
                        })
                    })
                    .collect();
                let mut entry = json!({
                    "resource": r.resource,
                    "responseKind": {"group": group, "version": version, "kind": r.kind},
                    "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                    "singularResource": r.singular,
                    "verbs": r.verbs,
                });
                if !r.short_names.is_empty() {
                    entry["shortNames"] = json!(r.short_names);
                }
                if !r.categories.is_empty() {
                    entry["categories"] = json!(r.categories);
                }
                if !subresources.is_empty() {
                    entry["subresources"] = json!(subresources);
                }
                resources.push(entry);
            }
            vs.push(json!({"version": version, "resources": resources, "freshness": "Current"}));
        }
        let metadata = if legacy {
            json!({"creationTimestamp": null})
        } else {
            json!({"name": group, "creationTimestamp": null})
        };
        items.push(json!({"metadata": metadata, "versions": vs}));
    }
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": api_version,
        "metadata": {},
        "items": items,
    })
}

/// The aggregated discovery version the client accepts, if any.
pub fn wants_aggregated(accept: &str) -> Option<&'static str> {
    for part in accept.split(',') {
        let p = part.replace(' ', "");
        if p.contains("as=APIGroupDiscoveryList") && p.contains("g=apidiscovery.k8s.io") {
            if p.contains("v=v2beta1") {
                return Some("v2beta1");
            }
            if p.contains("v=v2") {
                return Some("v2");
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_follow_the_registry() {
        let reg = Registry::new(crate::registry::kinds::all());
        let v1 = api_resource_list(&reg, "", "v1").expect("core v1");
        let names: Vec<&str> = v1["resources"]
            .as_array()
            .map(|a| a.iter().filter_map(|r| r["name"].as_str()).collect())
            .unwrap_or_default();
        assert!(names.contains(&"configmaps"));
        assert!(names.contains(&"namespaces/finalize"));
        let agg = aggregated(&reg, true, "apidiscovery.k8s.io/v2");
        assert_eq!(agg["items"][0]["versions"][0]["version"], "v1");
        assert_eq!(
            wants_aggregated("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"),
            Some("v2")
        );
        assert_eq!(wants_aggregated("application/json"), None);
    }
}
