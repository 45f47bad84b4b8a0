//! Field ownership, `metadata.managedFields`: which manager set which fields, in
//! upstream's FieldsV1 form (`f:` fields, `k:` keyed list items, `v:` set members,
//! `.` for a list item itself). Server-side apply uses it to detect conflicts with
//! other managers and to remove fields a manager stopped applying; every other write
//! (create, update, patch) moves the fields it changed to its manager.
//!
//! Invariants: a field path is owned by the managers whose sets hold it, and an entry
//! whose set becomes empty is dropped; an apply changes no field another manager owns
//! with a different value unless forced (then the field changes owner); an apply
//! removes a field only if the applying manager owned it alone and no longer applies
//! it. List semantics (keyed, set, atomic) are the strategic-merge table's.

use std::collections::BTreeSet;

use serde_json::{json, Map, Value};

use super::strategic::{list_kind, ListKind};
use crate::registry::meta;

/// One field: the FieldsV1 keys from the object's root.
pub type Path = Vec<String>;

/// The kind a field set is about (for its lists' semantics).
#[derive(Clone, Copy)]
pub struct Kind<'a> {
    pub group: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
}

/// A field another manager owns with a different value than the applied one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The owning manager as upstream prints it: `"kubectl-create" using apps/v1`.
    pub manager: String,
    /// The field as upstream prints it: `.spec.containers[name="web"].image`.
    pub field: String,
}

/// Metadata fields the server owns: never in a field set.
const SERVER_METADATA: &[&str] = &[
    "name",
    "namespace",
    "generateName",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

/// Every field of `obj` a manager can own (status excluded: it has its own writers).
pub fn leaves(obj: &Value, kind: Kind<'_>) -> BTreeSet<Path> {
    let mut out = BTreeSet::new();
    let Some(root) = obj.as_object() else {
        return out;
    };
    for (k, v) in root {
        match k.as_str() {
            "apiVersion" | "kind" | "status" => continue,
            "metadata" => {
                let Some(md) = v.as_object() else { continue };
                let mut path = vec!["f:metadata".to_owned()];
                let mut names = vec!["metadata".to_owned()];
                for (f, v) in md {
                    if !SERVER_METADATA.contains(&f.as_str()) {
                        walk_field(f, v, kind, &mut names, &mut path, &mut out);
                    }
                }
            }
            _ => {
                let mut path = Vec::new();
                let mut names = Vec::new();
                walk_field(k, v, kind, &mut names, &mut path, &mut out);
            }
        }
    }
    out
}

fn walk_object(
    m: &Map<String, Value>,
    kind: Kind<'_>,
    names: &mut Vec<String>,
    path: &mut Path,
    out: &mut BTreeSet<Path>,
) {
    if m.is_empty() {
        out.insert(path.clone());
        return;
    }
    for (k, v) in m {
        walk_field(k, v, kind, names, path, out);
    }
}

fn walk_field(
    field: &str,
    v: &Value,
    kind: Kind<'_>,
    names: &mut Vec<String>,
    path: &mut Path,
    out: &mut BTreeSet<Path>,
) {
    path.push(format!("f:{field}"));
    match v {
        Value::Object(m) => {
            names.push(field.to_owned());
            walk_object(m, kind, names, path, out);
            names.pop();
        }
        Value::Array(items) => match list_kind(kind.group, kind.version, kind.kind, names, field) {
            ListKind::Map(key) if items.iter().all(|i| i.get(key).is_some()) => {
                names.push(field.to_owned());
                for item in items {
                    let id = item.get(key).cloned().unwrap_or(Value::Null);
                    path.push(format!("k:{}", json!({ key: id })));
                    path.push(".".to_owned());
                    out.insert(path.clone());
                    path.pop();
                    if let Some(m) = item.as_object() {
                        for (k, v) in m {
                            walk_field(k, v, kind, names, path, out);
                        }
                    }
                    path.pop();
                }
                names.pop();
            }
            ListKind::Set => {
                for item in items {
                    path.push(format!("v:{item}"));
                    out.insert(path.clone());
                    path.pop();
                }
                if items.is_empty() {
                    out.insert(path.clone());
                }
            }
            _ => {
                out.insert(path.clone());
            }
        },
        _ => {
            out.insert(path.clone());
        }
    }
    path.pop();
}

/// The FieldsV1 document of a set of fields.
pub fn fields_v1(set: &BTreeSet<Path>) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for seg in path {
            let next = node
                .entry(seg.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(m) = next else { break };
            node = m;
        }
    }
    Value::Object(root)
}

/// The fields a FieldsV1 document names. A `.` counts only under a list item: older
/// entries of this server put one under every object, meaning nothing more.
pub fn from_fields_v1(doc: &Value) -> BTreeSet<Path> {
    fn walk(node: &Map<String, Value>, path: &mut Path, out: &mut BTreeSet<Path>) {
        let children: Vec<(&String, &Value)> = node.iter().filter(|(k, _)| *k != ".").collect();
        let item = path
            .last()
            .is_some_and(|s| s.starts_with("k:") || s.starts_with("v:") || s.starts_with("i:"));
        if node.contains_key(".") && item {
            path.push(".".to_owned());
            out.insert(path.clone());
            path.pop();
        }
        if children.is_empty() && !node.contains_key(".") && !path.is_empty() {
            out.insert(path.clone());
        }
        for (k, v) in children {
            path.push(k.clone());
            match v.as_object() {
                Some(m) => walk(m, path, out),
                None => {
                    out.insert(path.clone());
                }
            }
            path.pop();
        }
    }
    let mut out = BTreeSet::new();
    if let Some(m) = doc.as_object() {
        walk(m, &mut Vec::new(), &mut out);
    }
    out
}

/// Which list item a `k:` (key) or `v:` (value) segment names, parsed once per lookup.
/// A segment that does not parse, or an empty key, names no item.
enum Item {
    Key(Map<String, Value>),
    Value(Value),
    None,
}

impl Item {
    fn parse(seg: &str) -> Item {
        if let Some(key) = seg.strip_prefix("k:") {
            match serde_json::from_str::<Value>(key) {
                Ok(Value::Object(want)) if !want.is_empty() => Item::Key(want),
                _ => Item::None,
            }
        } else if let Some(v) = seg.strip_prefix("v:") {
            serde_json::from_str(v).map_or(Item::None, Item::Value)
        } else {
            Item::None
        }
    }

    fn matches(&self, item: &Value) -> bool {
        match self {
            Item::Key(want) => want.iter().all(|(k, v)| item.get(k) == Some(v)),
            Item::Value(want) => item == want,
            Item::None => false,
        }
    }
}

/// Is `path` a key field of a keyed list item (`…/k:{"name":"web"}/f:name`)?
fn is_item_key(path: &[String]) -> bool {
    let [.., item, field] = path else {
        return false;
    };
    match (Item::parse(item), field.strip_prefix("f:")) {
        (Item::Key(keys), Some(name)) => keys.contains_key(name),
        _ => false,
    }
}

/// The value at `path` in `obj`.
pub fn value_at<'v>(obj: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut cur = obj;
    for seg in path {
        if seg == "." {
            continue;
        }
        cur = if let Some(f) = seg.strip_prefix("f:") {
            cur.get(f)?
        } else if let Some(i) = seg.strip_prefix("i:") {
            cur.get(i.parse::<usize>().ok()?)?
        } else {
            let want = Item::parse(seg);
            cur.as_array()?.iter().find(|i| want.matches(i))?
        };
    }
    Some(cur)
}

/// Removes the field at `path` from `obj` (a list item for a path ending in `.`).
fn remove_at(obj: &mut Value, path: &[String]) {
    let path = match path.last().map(String::as_str) {
        Some(".") => &path[..path.len() - 1],
        _ => path,
    };
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for seg in parent {
        let next = if let Some(f) = seg.strip_prefix("f:") {
            cur.get_mut(f)
        } else if let Some(i) = seg.strip_prefix("i:") {
            i.parse::<usize>().ok().and_then(|i| cur.get_mut(i))
        } else {
            let want = Item::parse(seg);
            cur.as_array_mut()
                .and_then(|a| a.iter_mut().find(|i| want.matches(i)))
        };
        match next {
            Some(n) => cur = n,
            None => return,
        }
    }
    if let Some(f) = last.strip_prefix("f:") {
        if let Some(m) = cur.as_object_mut() {
            m.remove(f);
        }
    } else if let Some(items) = cur.as_array_mut() {
        let want = Item::parse(last);
        items.retain(|i| !want.matches(i));
    }
}

/// A path as upstream prints it: `.spec.containers[name="web"].image`.
pub fn display(path: &[String]) -> String {
    let mut out = String::new();
    for seg in path {
        if let Some(f) = seg.strip_prefix("f:") {
            out.push('.');
            out.push_str(f);
        } else if let Some(k) = seg.strip_prefix("k:") {
            let keys = serde_json::from_str::<Map<String, Value>>(k).unwrap_or_default();
            let parts: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
            out.push_str(&format!("[{}]", parts.join(",")));
        } else if let Some(v) = seg.strip_prefix("v:") {
            out.push_str(&format!("[={v}]"));
        } else if let Some(i) = seg.strip_prefix("i:") {
            out.push_str(&format!("[{i}]"));
        }
    }
    out
}

fn entry_str<'e>(e: &'e Value, field: &str) -> &'e str {
    e.get(field).and_then(Value::as_str).unwrap_or("")
}

fn entry_set(e: &Value) -> BTreeSet<Path> {
    e.get("fieldsV1").map(from_fields_v1).unwrap_or_default()
}

fn entry(manager: &str, operation: &str, api_version: &str, set: &BTreeSet<Path>) -> Value {
    json!({
        "manager": manager,
        "operation": operation,
        "apiVersion": api_version,
        "time": meta::now_rfc3339(),
        "fieldsType": "FieldsV1",
        "fieldsV1": fields_v1(set),
    })
}

fn printed_manager(e: &Value) -> String {
    let name = format!("{:?}", entry_str(e, "manager"));
    if entry_str(e, "operation") == "Update" {
        format!("{name} using {}", entry_str(e, "apiVersion"))
    } else {
        name
    }
}

fn take_entries(obj: &mut Value) -> Vec<Value> {
    match meta::metadata_mut(obj).remove("managedFields") {
        Some(Value::Array(list)) => list,
        _ => Vec::new(),
    }
}

fn put_entries(obj: &mut Value, entries: Vec<Value>) {
    if !entries.is_empty() {
        meta::metadata_mut(obj).insert("managedFields".into(), Value::Array(entries));
    }
}

/// Puts `replacement` (the writer's entry) at `own`, or appends it; drops entries left
/// empty; stores the list in `obj`.
fn store_entries(
    obj: &mut Value,
    mut entries: Vec<Value>,
    own: Option<usize>,
    replacement: Option<Value>,
) {
    if let Some(e) = replacement {
        match own {
            Some(i) => entries[i] = e,
            None => entries.push(e),
        }
    }
    entries.retain(|e| !entry_set(e).is_empty());
    put_entries(obj, entries);
}

/// Drops `paths` from every entry but those `keep` selects, and entries left empty.
fn disown(entries: &mut Vec<Value>, paths: &BTreeSet<Path>, keep: impl Fn(&Value) -> bool) {
    entries.retain_mut(|e| {
        if keep(e) || paths.is_empty() {
            return true;
        }
        let mut set = entry_set(e);
        let before = set.len();
        set.retain(|p| !paths.contains(p));
        if set.len() != before {
            if let Some(m) = e.as_object_mut() {
                m.insert("fieldsV1".into(), fields_v1(&set));
            }
        }
        !set.is_empty()
    });
}

/// Why an apply was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum ApplyError {
    /// Fields other managers own with other values (a 409 for the client).
    Conflicts(Vec<Conflict>),
    /// The configuration does not merge (e.g. a list item without its key).
    Invalid(String),
}

/// Server-side apply of `config` by `manager` onto `live`, in place: conflicts (unless
/// `force`), removal of fields the manager stopped applying, the merge, and the
/// manager's Apply entry.
pub fn apply(
    live: &mut Value,
    config: &Value,
    manager: &str,
    api_version: &str,
    force: bool,
    kind: Kind<'_>,
) -> Result<(), ApplyError> {
    let mut entries = take_entries(live);
    let applied = leaves(config, kind);
    let mine = |e: &Value| entry_str(e, "manager") == manager;

    let mut conflicts = Vec::new();
    let mut taken = BTreeSet::new();
    for e in entries.iter().filter(|e| !mine(e)) {
        for p in entry_set(e).intersection(&applied) {
            // A list item or set member is owned by presence: it has no value to differ.
            let presence = p.last().is_some_and(|s| s == "." || s.starts_with("v:"));
            if !presence && value_at(config, p) != value_at(live, p) {
                conflicts.push(Conflict {
                    manager: printed_manager(e),
                    field: display(p),
                });
                taken.insert(p.clone());
            }
        }
    }
    if !conflicts.is_empty() && !force {
        put_entries(live, entries);
        return Err(ApplyError::Conflicts(conflicts));
    }
    let is_own_apply = |e: &Value| mine(e) && entry_str(e, "operation") == "Apply";
    disown(&mut entries, &taken, is_own_apply);
    let own_apply = entries.iter().position(is_own_apply);

    // Fields this manager applied before and no longer does, unless another owns
    // them (or, for a list item, anything inside it). An item's key fields go only
    // with the item: a surviving item keeps its identity.
    let before = own_apply
        .map(|i| entry_set(&entries[i]))
        .unwrap_or_default();
    let others: BTreeSet<Path> = entries
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != own_apply)
        .flat_map(|(_, e)| entry_set(e))
        .collect();
    let mut dropped: Vec<&Path> = before
        .iter()
        .filter(|p| !applied.contains(*p) && !is_item_key(p))
        .filter(|p| {
            let scope = match p.last().map(String::as_str) {
                Some(".") => &p[..p.len() - 1],
                _ => &p[..],
            };
            // Paths sharing the prefix `scope` sort right after it.
            !others
                .range(scope.to_vec()..)
                .next()
                .is_some_and(|o| o.starts_with(scope))
        })
        .collect();
    // Deepest first, so a removed item does not hide a field inside it.
    dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in dropped {
        remove_at(live, p);
    }

    // An apply that changes nothing keeps its entry as it was (its time included),
    // so the write is a no-op, as upstream's is. Only a repeated apply can be one.
    let repeated = taken.is_empty()
        && own_apply.is_some_and(|i| {
            before == applied && entry_str(&entries[i], "apiVersion") == api_version
        });
    let unmerged = repeated.then(|| live.clone());
    // `config` carries no managedFields (`patch.rs` refuses them); on error `live` is
    // left as it was.
    super::strategic::apply(live, config, kind.group, kind.version, kind.kind)
        .map_err(ApplyError::Invalid)?;
    let same = unmerged.is_some_and(|u| u == *live);
    let own = (!same).then(|| entry(manager, "Apply", api_version, &applied));
    store_entries(live, entries, own_apply, own);
    Ok(())
}

/// Do `a` and `b` differ in a field a manager can own (outside status and the
/// server's metadata)?
fn differs(a: &Value, b: &Value) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a != b;
    };
    let outside = |k: &String| k != "status" && k != "metadata";
    if a.keys()
        .filter(|k| outside(k))
        .ne(b.keys().filter(|k| outside(k)))
        || a.iter().any(|(k, v)| outside(k) && b.get(k) != Some(v))
    {
        return true;
    }
    let empty = Map::new();
    let ma = a
        .get("metadata")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mb = b
        .get("metadata")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let owned = |(k, _): &(&String, &Value)| !SERVER_METADATA.contains(&k.as_str());
    ma.iter().filter(owned).ne(mb.iter().filter(owned))
}

/// Records the creation of `obj` by an apply of `manager`: it owns what it applied.
pub fn record_apply_create(obj: &mut Value, manager: &str, api_version: &str, kind: Kind<'_>) {
    take_entries(obj);
    let set = leaves(obj, kind);
    put_entries(obj, vec![entry(manager, "Apply", api_version, &set)]);
}

/// Records a create or update by `manager` (any write but an apply): the fields it
/// changed become its own and leave every other manager, in its Update entry.
pub fn record_update(
    old: Option<&Value>,
    new: &mut Value,
    manager: &str,
    api_version: &str,
    kind: Kind<'_>,
) {
    let mut entries = match old {
        Some(o) => {
            let sent = take_entries(new);
            let kept = o
                .pointer("/metadata/managedFields")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            // A client that sends no entries keeps the stored ones; one that sends
            // others sets them (kubectl moves client-side-apply ownership over to
            // server-side apply this way); `[{}]` clears them, as upstream allows.
            if sent.len() == 1 && sent[0].as_object().is_some_and(Map::is_empty) {
                Vec::new()
            } else if sent.is_empty() {
                kept
            } else {
                sent.into_iter().filter(Value::is_object).collect()
            }
        }
        None => {
            take_entries(new);
            Vec::new()
        }
    };
    if old.is_some_and(|o| !differs(o, new)) {
        // A status or no-op write: no owned field changed (the common case on the
        // update path, e.g. kubelet status and lease renewals).
        put_entries(new, entries);
        return;
    }
    let now = leaves(new, kind);
    let (changed, removed): (BTreeSet<Path>, BTreeSet<Path>) = match old {
        Some(o) => (
            now.iter()
                .filter(|p| {
                    // An item's `.` changes hands only when the item is added.
                    if p.last().is_some_and(|l| l == ".") {
                        value_at(o, p).is_none()
                    } else {
                        value_at(o, p) != value_at(new, p)
                    }
                })
                .cloned()
                .collect(),
            leaves(o, kind).difference(&now).cloned().collect(),
        ),
        None => (now.clone(), BTreeSet::new()),
    };
    if changed.is_empty() && removed.is_empty() {
        put_entries(new, entries);
        return;
    }
    let is_own =
        |e: &Value| entry_str(e, "manager") == manager && entry_str(e, "operation") == "Update";
    let gone: BTreeSet<Path> = changed.union(&removed).cloned().collect();
    disown(&mut entries, &gone, is_own);
    let own = entries.iter().position(is_own);
    let mut set = match own {
        Some(i) => entry_set(&entries[i]),
        None => BTreeSet::new(),
    };
    set.retain(|p| !removed.contains(p));
    set.extend(changed);
    let updated = entry(manager, "Update", api_version, &set);
    store_entries(new, entries, own, Some(updated));
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPLOY: Kind<'static> = Kind {
        group: "apps",
        version: "v1",
        kind: "Deployment",
    };

    fn deploy(replicas: i64, image: &str, labels: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "labels": labels},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                {"name": "web", "image": image}
            ]}}}
        })
    }

    fn managers(obj: &Value) -> Vec<(String, String)> {
        obj.pointer("/metadata/managedFields")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .map(|e| {
                        (
                            entry_str(e, "manager").to_owned(),
                            entry_str(e, "operation").to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn fields_v1_round_trips_with_keyed_items() {
        let set = leaves(&deploy(2, "nginx", json!({"app": "web"})), DEPLOY);
        let doc = fields_v1(&set);
        assert_eq!(
            doc["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"],
            json!({".": {}, "f:image": {}, "f:name": {}})
        );
        assert_eq!(doc["f:metadata"], json!({"f:labels": {"f:app": {}}}));
        assert_eq!(from_fields_v1(&doc), set);
        let image: Path = ["f:spec", "f:template", "f:spec", "f:containers"]
            .iter()
            .map(|s| s.to_string())
            .chain(["k:{\"name\":\"web\"}".to_owned(), "f:image".to_owned()])
            .collect();
        assert_eq!(
            display(&image),
            ".spec.template.spec.containers[name=\"web\"].image"
        );
    }

    #[test]
    fn apply_conflicts_with_another_manager_unless_forced() {
        let mut live = deploy(2, "nginx", json!({"app": "web"}));
        record_update(None, &mut live, "kubectl-create", "apps/v1", DEPLOY);
        let config = deploy(3, "nginx", json!({"app": "web"}));
        let conflicts = apply(
            &mut live.clone(),
            &config,
            "kubectl",
            "apps/v1",
            false,
            DEPLOY,
        )
        .expect_err("replicas differ");
        assert_eq!(
            conflicts,
            ApplyError::Conflicts(vec![Conflict {
                manager: "\"kubectl-create\" using apps/v1".into(),
                field: ".spec.replicas".into()
            }])
        );
        apply(&mut live, &config, "kubectl", "apps/v1", true, DEPLOY).expect("forced");
        assert_eq!(live["spec"]["replicas"], 3);
        let create = live["metadata"]["managedFields"]
            .as_array()
            .and_then(|l| {
                l.iter()
                    .find(|e| entry_str(e, "manager") == "kubectl-create")
            })
            .cloned()
            .expect("kubectl-create keeps the fields it still owns");
        assert!(!entry_set(&create).contains(&vec!["f:spec".to_owned(), "f:replicas".to_owned()]));
    }

    #[test]
    fn apply_removes_what_it_no_longer_applies_but_not_what_others_own() {
        let mut live =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}});
        apply(
            &mut live,
            &deploy(2, "nginx", json!({"app": "web", "tier": "front"})),
            "kubectl",
            "apps/v1",
            false,
            DEPLOY,
        )
        .expect("first apply");
        // Another manager sets a label of its own.
        let before = live.clone();
        live["metadata"]["labels"]["team"] = json!("a");
        record_update(Some(&before), &mut live, "labeler", "apps/v1", DEPLOY);
        apply(
            &mut live,
            &deploy(2, "nginx", json!({"app": "web"})),
            "kubectl",
            "apps/v1",
            false,
            DEPLOY,
        )
        .expect("second apply");
        assert_eq!(
            live["metadata"]["labels"],
            json!({"app": "web", "team": "a"})
        );
        assert_eq!(
            managers(&live),
            [
                ("kubectl".to_owned(), "Apply".to_owned()),
                ("labeler".to_owned(), "Update".to_owned())
            ]
        );
    }

    #[test]
    fn an_item_another_manager_touched_keeps_its_key_when_no_longer_applied() {
        let two = |sidecar: bool| {
            let mut d = deploy(1, "nginx", json!({"app": "web"}));
            if sidecar {
                d["spec"]["template"]["spec"]["containers"]
                    .as_array_mut()
                    .expect("containers")
                    .push(json!({"name": "sidecar", "image": "envoy:1"}));
            }
            d
        };
        let mut live =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}});
        apply(&mut live, &two(true), "kubectl", "apps/v1", false, DEPLOY).expect("apply");
        // `kubectl set image` changes the sidecar's image, and only that: the item's
        // `.` stays with the applier, the image moves.
        let before = live.clone();
        live["spec"]["template"]["spec"]["containers"][1]["image"] = json!("envoy:2");
        record_update(Some(&before), &mut live, "kubectl-set", "apps/v1", DEPLOY);
        let setter = live["metadata"]["managedFields"][1].clone();
        assert_eq!(entry_str(&setter, "manager"), "kubectl-set");
        assert_eq!(entry_set(&setter).len(), 1, "{setter}");

        apply(&mut live, &two(false), "kubectl", "apps/v1", false, DEPLOY).expect("apply");
        let containers = &live["spec"]["template"]["spec"]["containers"];
        assert_eq!(
            containers[1],
            json!({"name": "sidecar", "image": "envoy:2"}),
            "the item survives with its key and the other manager's field"
        );
        apply(&mut live, &two(false), "kubectl", "apps/v1", false, DEPLOY)
            .expect("later applies still work");
        assert!(!Item::parse("k:{}").matches(&json!({"name": "x"})));
    }

    #[test]
    fn an_update_takes_the_fields_it_changes() {
        let mut live = deploy(2, "nginx", json!({"app": "web"}));
        record_update(None, &mut live, "a", "apps/v1", DEPLOY);
        let before = live.clone();
        live["spec"]["replicas"] = json!(5);
        record_update(Some(&before), &mut live, "b", "apps/v1", DEPLOY);
        let entries = live["metadata"]["managedFields"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let replicas = vec!["f:spec".to_owned(), "f:replicas".to_owned()];
        assert!(!entry_set(&entries[0]).contains(&replicas));
        assert_eq!(entry_set(&entries[1]), BTreeSet::from([replicas]));
    }
}
