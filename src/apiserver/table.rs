//! `meta.k8s.io/v1` Table and PartialObjectMetadata renderings, which `kubectl get`
//! asks for: the columns come from the kind's strategy, the rows carry the object's
//! metadata (or the whole object, or nothing, per `includeObject`).
//!
//! Invariant: every row has exactly one cell per column definition.

use serde_json::{json, Value};

use super::negotiate::IncludeObject;
use crate::registry::{Resource, NAME_COLUMN};

fn column_json(c: &crate::registry::Column) -> Value {
    json!({
        "name": c.name,
        "type": c.kind,
        "format": c.format,
        "description": c.description,
        "priority": c.priority,
    })
}

/// The PartialObjectMetadata form of an object.
pub fn partial(obj: &Value) -> Value {
    json!({
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj.get("metadata").cloned().unwrap_or(json!({})),
    })
}

/// A list as PartialObjectMetadataList.
pub fn partial_list(items: &[Value], list_meta: Value) -> Value {
    json!({
        "kind": "PartialObjectMetadataList",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "items": items.iter().map(partial).collect::<Vec<_>>(),
    })
}

/// A Table of `items`.
pub fn table(res: &Resource, items: &[Value], list_meta: Value, include: IncludeObject) -> Value {
    let name_first = res.strategy.name_first();
    let mut columns = Vec::new();
    if name_first {
        columns.push(column_json(&NAME_COLUMN));
    }
    columns.extend(res.strategy.columns().iter().map(column_json));
    if !name_first {
        columns.push(column_json(&NAME_COLUMN.wide()));
    }
    let rows: Vec<Value> = items
        .iter()
        .map(|obj| {
            let name = json!(res.strategy.name_cell(obj));
            let mut cells = Vec::new();
            if name_first {
                cells.push(name.clone());
            }
            cells.extend(res.strategy.cells(obj));
            if !name_first {
                cells.push(name);
            }
            let mut row = json!({"cells": cells});
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => row["object"] = partial(obj),
                IncludeObject::Object => row["object"] = obj.clone(),
            }
            row
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_match_columns() {
        let res = crate::registry::kinds::all()
            .into_iter()
            .find(|r| r.resource == "configmaps")
            .expect("configmaps");
        let obj = json!({"metadata": {"name": "a", "creationTimestamp": "2020-01-01T00:00:00Z"}, "data": {"x": "1"}});
        let t = table(
            &res,
            &[obj],
            json!({"resourceVersion": "5"}),
            IncludeObject::Metadata,
        );
        let ncols = t["columnDefinitions"].as_array().map(Vec::len).unwrap_or(0);
        let ncells = t["rows"][0]["cells"].as_array().map(Vec::len).unwrap_or(0);
        assert_eq!(ncols, ncells);
        assert_eq!(t["rows"][0]["cells"][0], "a");
        assert_eq!(t["rows"][0]["cells"][1], 1);
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
    }
}
