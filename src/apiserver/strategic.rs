//! Strategic merge patch, Kubernetes' list-aware JSON merge for built-in kinds: lists
//! with a merge key (containers by `name`, volume mounts by `mountPath`, ...) merge
//! element by element; directives `$patch` (replace/delete/merge), `$retainKeys`,
//! `$deleteFromPrimitiveList/<f>` and `$setElementOrder/<f>` are honoured — what
//! `kubectl apply` and `kubectl edit` send.
//!
//! Invariant: merge keys and strategies come from the OpenAPI extension table (one
//! table for the documents and the server: upstream's `patchStrategy`/`patchMergeKey`
//! per type and field); a list without a merge strategy is replaced, as upstream does
//! for atomic lists.

use serde_json::{Map, Value};

/// The patch semantics of one schema position: the kind and the path to it.
#[derive(Clone, Copy)]
struct Schema<'a> {
    group: &'a str,
    version: &'a str,
    kind: &'a str,
}

impl Schema<'_> {
    /// How list field `field` under `parent` merges: `Some(Some(key))` by merge key,
    /// `Some(None)` as a set of primitives, `None` atomically (replaced). The facts are
    /// the OpenAPI extension table's (upstream's `patchStrategy`/`patchMergeKey`).
    fn list_strategy(&self, parent: &[String], field: &str) -> Option<Option<&'static str>> {
        let f = crate::apiserver::openapi::patch_meta::field_at(
            self.group,
            self.version,
            self.kind,
            parent,
            field,
        )?;
        if !f.strategy.split(',').any(|s| s == "merge") {
            return None;
        }
        Some((!f.merge_key.is_empty()).then_some(f.merge_key))
    }
}

/// How a list field of a kind merges (and, for `managed.rs`, how its items are owned).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListKind {
    /// Items are objects identified by this merge key (containers by `name`).
    Map(&'static str),
    /// Items are primitives, merged as a set.
    Set,
    /// The list is one value, replaced whole.
    Atomic,
}

/// How list field `field` under the field path `parent` of `group`/`version`/`kind`
/// merges.
pub fn list_kind(
    group: &str,
    version: &str,
    kind: &str,
    parent: &[String],
    field: &str,
) -> ListKind {
    let schema = Schema {
        group,
        version,
        kind,
    };
    match schema.list_strategy(parent, field) {
        Some(Some(key)) => ListKind::Map(key),
        Some(None) => ListKind::Set,
        None => ListKind::Atomic,
    }
}

/// Applies `patch` to `target` (an object of `group`/`version`/`kind`) in place.
pub fn apply(
    target: &mut Value,
    patch: &Value,
    group: &str,
    version: &str,
    kind: &str,
) -> Result<(), String> {
    let schema = Schema {
        group,
        version,
        kind,
    };
    let merged = merge_value(schema, Some(target.clone()), patch, &[])?;
    *target = merged.unwrap_or(Value::Null);
    Ok(())
}

/// Merges `patch` into `orig`; None means "delete this value".
fn merge_value(
    schema: Schema<'_>,
    orig: Option<Value>,
    patch: &Value,
    path: &[String],
) -> Result<Option<Value>, String> {
    match patch {
        Value::Object(p) => {
            match p.get("$patch").and_then(Value::as_str) {
                Some("delete") => return Ok(None),
                Some("replace") => {
                    let mut clean = p.clone();
                    strip_directives(&mut clean);
                    return Ok(Some(Value::Object(clean)));
                }
                Some("merge") | None => {}
                Some(other) => return Err(format!("unknown patch type {other:?}")),
            }
            let mut out = match orig {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            };
            let mut orders = Vec::new();
            let mut retain: Option<Vec<String>> = None;
            for (k, v) in p {
                if k == "$patch" {
                    continue;
                }
                if k == "$retainKeys" {
                    retain = Some(
                        v.as_array()
                            .map(|a| {
                                a.iter()
                                    .filter_map(|s| s.as_str().map(str::to_owned))
                                    .collect()
                            })
                            .unwrap_or_default(),
                    );
                    continue;
                }
                if let Some(field) = k.strip_prefix("$setElementOrder/") {
                    orders.push((field.to_owned(), v.clone()));
                    continue;
                }
                if let Some(field) = k.strip_prefix("$deleteFromPrimitiveList/") {
                    if let (Some(Value::Array(list)), Some(remove)) =
                        (out.get_mut(field), v.as_array())
                    {
                        list.retain(|x| !remove.contains(x));
                    }
                    continue;
                }
                if v.is_null() {
                    out.remove(k);
                    continue;
                }
                let mut child_path = path.to_vec();
                child_path.push(k.clone());
                let merged = match v {
                    Value::Array(items) => merge_list(schema, out.remove(k), items, path, k)?,
                    Value::Object(_) => merge_value(schema, out.remove(k), v, &child_path)?,
                    other => Some(other.clone()),
                };
                match merged {
                    Some(m) => {
                        out.insert(k.clone(), m);
                    }
                    None => {
                        out.remove(k);
                    }
                }
            }
            for (field, order) in orders {
                if let (Some(Value::Array(list)), Some(order)) =
                    (out.get_mut(&field), order.as_array())
                {
                    let key = schema.list_strategy(path, &field).flatten();
                    reorder(list, order, key);
                }
            }
            if let Some(keep) = retain {
                out.retain(|k, _| keep.contains(k));
            }
            Ok(Some(Value::Object(out)))
        }
        other => Ok(Some(other.clone())),
    }
}

/// Merges list field `field` (patch `items`) into the original list.
fn merge_list(
    schema: Schema<'_>,
    orig: Option<Value>,
    items: &[Value],
    parent: &[String],
    field: &str,
) -> Result<Option<Value>, String> {
    let Some(strategy) = schema.list_strategy(parent, field) else {
        // Atomic list: replaced, minus directive-only elements.
        let mut clean: Vec<Value> = items.to_vec();
        for item in &mut clean {
            if let Value::Object(m) = item {
                strip_directives(m);
            }
        }
        return Ok(Some(Value::Array(clean)));
    };
    let mut list = match orig {
        Some(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    // `[{"$patch": "replace"}, ...]` replaces the whole list.
    if items
        .iter()
        .any(|i| i.get("$patch").and_then(Value::as_str) == Some("replace"))
    {
        let rest: Vec<Value> = items
            .iter()
            .filter(|i| i.get("$patch").is_none())
            .cloned()
            .collect();
        return Ok(Some(Value::Array(rest)));
    }
    match strategy {
        None => {
            // Primitive list with merge strategy: union, keeping order.
            for item in items {
                if !list.contains(item) {
                    list.push(item.clone());
                }
            }
        }
        Some(key) => {
            let mut child_path = parent.to_vec();
            child_path.push(field.to_owned());
            for item in items {
                let Some(id) = item.get(key) else {
                    return Err(format!(
                        "map: {item} does not contain declared merge key: {key}"
                    ));
                };
                let pos = list.iter().position(|e| e.get(key) == Some(id));
                if item.get("$patch").and_then(Value::as_str) == Some("delete") {
                    if let Some(p) = pos {
                        list.remove(p);
                    }
                    continue;
                }
                match pos {
                    Some(p) => {
                        let orig = std::mem::take(&mut list[p]);
                        match merge_value(schema, Some(orig), item, &child_path)? {
                            Some(m) => list[p] = m,
                            None => {
                                list.remove(p);
                            }
                        }
                    }
                    None => {
                        if let Some(m) = merge_value(schema, None, item, &child_path)? {
                            list.push(m);
                        }
                    }
                }
            }
        }
    }
    Ok(Some(Value::Array(list)))
}

/// Orders `list` as `order` says (by merge key, or by value for primitives); elements
/// not named keep their relative order after the named ones.
fn reorder(list: &mut [Value], order: &[Value], key: Option<&str>) {
    let ident = |v: &Value| -> Value {
        match key {
            Some(k) => v.get(k).cloned().unwrap_or(Value::Null),
            None => v.clone(),
        }
    };
    let rank = |v: &Value| -> usize {
        let id = ident(v);
        order
            .iter()
            .position(|o| ident(o) == id)
            .unwrap_or(usize::MAX)
    };
    list.sort_by_key(|v| rank(v));
}

fn strip_directives(m: &mut Map<String, Value>) {
    m.retain(|k, _| !k.starts_with('$'));
    for v in m.values_mut() {
        match v {
            Value::Object(inner) => strip_directives(inner),
            Value::Array(items) => {
                for i in items {
                    if let Value::Object(inner) = i {
                        strip_directives(inner);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Resource;
    use serde_json::json;

    fn res(resource: &str) -> Resource {
        crate::registry::kinds::all()
            .into_iter()
            .find(|r| r.resource == resource)
            .expect("registered")
    }

    fn smp_on(resource: &str, orig: Value, patch: Value) -> Value {
        let r = res(resource);
        let mut t = orig;
        apply(&mut t, &patch, r.group, r.storage_version(), r.kind).expect("patch applies");
        t
    }

    fn smp(orig: Value, patch: Value) -> Value {
        smp_on("deployments", orig, patch)
    }

    #[test]
    fn containers_merge_by_name() {
        let orig = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "a:1", "ports": [{"containerPort": 80}]},
            {"name": "b", "image": "b:1"}
        ]}}}});
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "a", "image": "a:2"}]
        }}}});
        let out = smp(orig, patch);
        let cs = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(cs[0]["image"], "a:2");
        assert_eq!(
            cs[0]["ports"][0]["containerPort"], 80,
            "unpatched fields survive"
        );
        assert_eq!(cs[1]["name"], "b");
    }

    #[test]
    fn directives() {
        let orig = json!({"metadata": {"finalizers": ["x", "y"]}, "spec": {"containers": [{"name": "a"}, {"name": "b"}]}, "data": {"k": "v", "drop": "1"}});
        let patch = json!({
            "metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]},
            "spec": {"containers": [{"name": "b", "$patch": "delete"}]},
            "data": {"drop": null}
        });
        let out = smp_on("pods", orig, patch);
        assert_eq!(out["metadata"]["finalizers"], json!(["y"]));
        assert_eq!(out["spec"]["containers"], json!([{"name": "a"}]));
        assert_eq!(out["data"], json!({"k": "v"}));
        let out = smp(
            json!({"spec": {"a": 1, "b": 2}}),
            json!({"spec": {"$patch": "replace", "c": 3}}),
        );
        assert_eq!(out["spec"], json!({"c": 3}));
        let out = smp(
            json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}),
            json!({"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}}),
        );
        assert_eq!(out["spec"]["strategy"], json!({"type": "Recreate"}));
    }

    #[test]
    fn atomic_lists_are_replaced() {
        let out = smp(
            json!({"spec": {"tolerations": [{"key": "a"}, {"key": "b"}]}}),
            json!({"spec": {"tolerations": [{"key": "c"}]}}),
        );
        assert_eq!(out["spec"]["tolerations"], json!([{"key": "c"}]));
    }
}
