//! events.k8s.io/v1 events: a second view of the core/v1 events, stored under the
//! same keys (`events/<namespace>/<name>`) in the core/v1 shape, with upstream's
//! field renames between the two (note/message, regarding/involvedObject,
//! reportingController/reportingComponent, deprecatedSource/source,
//! deprecatedFirstTimestamp/firstTimestamp, deprecatedLastTimestamp/lastTimestamp,
//! deprecatedCount/count; the other fields share their names).
//!
//! Invariants: what this resource writes is always in the core/v1 shape, so the
//! core/v1 view reads it unchanged; `convert` turns a stored object into the
//! events.k8s.io shape and leaves one already in that shape alone (both directions
//! are idempotent); requests through this group get upstream's strict validation
//! (ValidateEventCreate/ValidateEventUpdate for events.k8s.io/v1) with its field
//! paths.
//!
//! Known gap: the generic store calls `convert` only when the requested version
//! differs from the storage version, and here both are `v1`; so reads through this
//! group still return the stored core/v1 field names under the events.k8s.io
//! apiVersion (tables and writes are right). Every hook here accepts either shape,
//! so a store that always converts stored objects on read fixes the reads.

use std::sync::Arc;

use k8s_openapi::api::events::v1 as api;
use serde_json::{json, Map, Value};

use super::networking::decode_with;
use super::pods::str_at;
use crate::apiserver::status::{invalid_value, required, Cause};
use crate::registry::validation::{qualified_name, NameRule};
use crate::registry::{Column, Resource, Strategy, ALL_VERBS};

pub const GROUP: &str = "events.k8s.io";

pub fn resources() -> Vec<Resource> {
    vec![Resource {
        group: GROUP,
        versions: &["v1"],
        kind: "Event",
        resource: "events",
        singular: "event",
        namespaced: true,
        short_names: &["ev"],
        categories: &[],
        storage_prefix: "events",
        subresources: &[],
        verbs: ALL_VERBS,
        name_rule: NameRule::Subdomain,
        strategy: Arc::new(Events),
    }]
}

/// (core/v1 name, events.k8s.io/v1 name) of every renamed field.
pub const RENAMES: [(&str, &str); 7] = [
    ("message", "note"),
    ("involvedObject", "regarding"),
    ("reportingComponent", "reportingController"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
];

/// Moves each `from` key to its `to` name; a `to` key already present wins.
fn rename(obj: &mut Map<String, Value>, pairs: impl Iterator<Item = (&'static str, &'static str)>) {
    for (from, to) in pairs {
        if let Some(v) = obj.remove(from) {
            if !obj.contains_key(to) {
                obj.insert(to.to_owned(), v);
            }
        }
    }
}

/// The core/v1 shape of an event (Convert_v1_Event_To_core_Event). Idempotent.
pub fn to_core(mut obj: Value) -> Value {
    if let Some(m) = obj.as_object_mut() {
        rename(m, RENAMES.iter().map(|(core, ev)| (*ev, *core)));
        // The core/v1 type always carries its involved object.
        if m.get("involvedObject").is_none_or(Value::is_null) {
            m.insert("involvedObject".into(), json!({}));
        }
    }
    obj
}

/// The events.k8s.io/v1 shape of an event (Convert_core_Event_To_v1_Event).
/// Idempotent.
pub fn to_events(mut obj: Value) -> Value {
    if let Some(m) = obj.as_object_mut() {
        rename(m, RENAMES.iter().copied());
    }
    obj
}

fn has_time(obj: &Value, field: &str) -> bool {
    obj.get(field)
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
}

/// validateV1EventSeries on a core-shaped event.
fn validate_series(obj: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    if let Some(series) = obj.get("series").filter(|s| s.is_object()) {
        if series.get("count").and_then(Value::as_i64).unwrap_or(0) < 2 {
            out.push(invalid_value(
                "series.count",
                &json!(""),
                "should be at least 2",
            ));
        }
        if !has_time(series, "lastObservedTime") {
            out.push(required("series.lastObservedTime", ""));
        }
    }
    out
}

/// legacyValidateEvent for a request through events.k8s.io (core-shaped event).
fn legacy_validate(obj: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    let ns = crate::registry::meta::namespace(obj);
    let involved_ns = str_at(obj, "/involvedObject/namespace");
    let mismatch = || {
        invalid_value(
            "involvedObject.namespace",
            &json!(involved_ns),
            "does not match event.namespace",
        )
    };
    if !has_time(obj, "eventTime") {
        let ok = if involved_ns.is_empty() {
            ns.is_empty() || ns == "default"
        } else {
            ns == involved_ns
        };
        if !ok {
            out.push(mismatch());
        }
        return out;
    }
    if involved_ns.is_empty() && ns != "default" && ns != "kube-system" {
        out.push(mismatch());
    }
    let controller = str_at(obj, "/reportingComponent");
    if controller.is_empty() {
        out.push(required("reportingController", ""));
    }
    for e in qualified_name(controller) {
        out.push(invalid_value("reportingController", &json!(controller), &e));
    }
    for (field, limit) in [("reportingInstance", 128), ("action", 128), ("reason", 128)] {
        let v = str_at(obj, &format!("/{field}"));
        if v.is_empty() {
            out.push(required(field, ""));
        }
        if v.len() > limit {
            out.push(invalid_value(
                field,
                &json!(""),
                &format!("can have at most {limit} characters"),
            ));
        }
    }
    if str_at(obj, "/message").len() > 1024 {
        out.push(invalid_value(
            "message",
            &json!(""),
            "can have at most 1024 characters",
        ));
    }
    out
}

struct Events;

impl Strategy for Events {
    /// Type-checks the body as an events.k8s.io/v1 Event and returns it in the
    /// core/v1 shape every later hook (and the store) works on. A body already in the
    /// core shape (the current object inside a patch) is first brought back to the
    /// events shape, its events-named fields winning.
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        let obj = if obj.get("involvedObject").is_some() {
            to_events(obj)
        } else {
            obj
        };
        let (typed, unknown) = decode_with::<api::Event>(
            obj,
            &[
                ("/metadata", json!({}), true),
                ("/series/count", json!(0), true),
                (
                    "/series/lastObservedTime",
                    json!("1970-01-01T00:00:00.000000Z"),
                    false,
                ),
            ],
        )?;
        Ok((to_core(typed), unknown))
    }

    /// ValidateEventCreate for events.k8s.io/v1.
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let obj = to_core(obj.clone());
        let mut out = legacy_validate(&obj);
        out.extend(validate_series(&obj));
        if !has_time(&obj, "eventTime") {
            out.push(required("eventTime", ""));
        }
        let ty = str_at(&obj, "/type");
        if ty != "Normal" && ty != "Warning" {
            out.push(invalid_value(
                "type",
                &json!(""),
                &format!("has invalid value: {ty}"),
            ));
        }
        for field in ["firstTimestamp", "lastTimestamp"] {
            if has_time(&obj, field) {
                out.push(invalid_value(field, &json!(""), "needs to be unset"));
            }
        }
        if obj.get("count").and_then(Value::as_i64).unwrap_or(0) != 0 {
            out.push(invalid_value("count", &json!(""), "needs to be unset"));
        }
        if !str_at(&obj, "/source/component").is_empty() || !str_at(&obj, "/source/host").is_empty()
        {
            out.push(invalid_value("source", &json!(""), "needs to be unset"));
        }
        out
    }

    /// ValidateEventUpdate for events.k8s.io/v1: everything but the series and
    /// metadata is immutable.
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let new = to_core(new.clone());
        let old = to_core(old.clone());
        let mut out = legacy_validate(&new);
        if new.get("series") != old.get("series") {
            out.extend(validate_series(&new));
        }
        for (field, path) in [
            ("involvedObject", "involvedObject"),
            ("reason", "reason"),
            ("message", "message"),
            ("source", "source"),
            ("firstTimestamp", "firstTimestamp"),
            ("lastTimestamp", "lastTimestamp"),
            ("count", "count"),
            ("type", "type"),
            ("eventTime", "eventTime"),
            ("action", "action"),
            ("related", "related"),
            ("reportingComponent", "reportingController"),
            ("reportingInstance", "reportingInstance"),
        ] {
            let empty = |v: Option<&Value>| match v {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => s.is_empty(),
                Some(Value::Object(m)) => m.is_empty(),
                Some(Value::Number(n)) => n.as_i64() == Some(0),
                _ => false,
            };
            let (a, b) = (new.get(field), old.get(field));
            if a != b && !(empty(a) && empty(b)) {
                out.push(invalid_value(
                    path,
                    a.unwrap_or(&Value::Null),
                    "field is immutable",
                ));
            }
        }
        out
    }

    fn allow_create_on_update(&self) -> bool {
        true
    }

    /// Stored (core/v1-shaped) objects are served in the events.k8s.io/v1 shape.
    fn convert(&self, obj: Value, _to_version: &str) -> Result<Value, String> {
        Ok(to_events(obj))
    }

    /// printEvent's columns and cells: the core/v1 table of the same event
    /// (upstream serves both groups from one registry and one table convertor).
    fn columns(&self) -> Vec<Column> {
        super::cluster::Events.columns()
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        super::cluster::Events.cells(&to_core(obj.clone()))
    }

    fn name_first(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::registry::kinds::cause_fields as fields;

    fn v1_event() -> Value {
        json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e1", "namespace": "default"},
            "eventTime": "2025-01-01T00:00:00.000000Z",
            "reportingController": "example.com/ctl", "reportingInstance": "ctl-1",
            "action": "Scale", "reason": "Scaled", "type": "Normal", "note": "scaled up",
            "regarding": {"kind": "Deployment", "name": "web", "namespace": "default"}
        })
    }

    #[test]
    fn renames_round_trip_and_are_idempotent() {
        let (core, unknown) = Events.decode(v1_event()).expect("decodes");
        assert!(unknown.is_empty(), "{unknown:?}");
        assert_eq!(core["message"], "scaled up");
        assert_eq!(core["involvedObject"]["name"], "web");
        assert_eq!(core["reportingComponent"], "example.com/ctl");
        assert!(core.get("note").is_none());
        assert_eq!(to_core(core.clone()), core);
        let back = to_events(core.clone());
        assert_eq!(back["note"], "scaled up");
        assert_eq!(back["regarding"]["kind"], "Deployment");
        assert_eq!(back["reportingController"], "example.com/ctl");
        assert_eq!(to_events(back.clone()), back);
        let legacy = to_events(
            json!({"count": 3, "source": {"component": "kubelet"}, "firstTimestamp": "2025-01-01T00:00:00Z"}),
        );
        assert_eq!(legacy["deprecatedCount"], 3);
        assert_eq!(legacy["deprecatedSource"]["component"], "kubelet");
        assert_eq!(legacy["deprecatedFirstTimestamp"], "2025-01-01T00:00:00Z");
        assert!(Events.validate(&core).is_empty());
    }

    #[test]
    fn a_patched_core_shape_keeps_the_events_fields() {
        let mut current = to_core(v1_event());
        current["note"] = json!("patched");
        let (core, unknown) = Events.decode(current).expect("decodes");
        assert!(unknown.is_empty(), "{unknown:?}");
        assert_eq!(core["message"], "patched");
        assert_eq!(core["involvedObject"]["name"], "web");
    }

    #[test]
    fn a_patch_on_the_served_shape_is_stored_in_the_core_shape() {
        let served = to_events(to_core(v1_event()));
        let mut patched = served;
        patched["series"] = json!({"count": 2, "lastObservedTime": "2025-01-01T00:01:00.000000Z"});
        let (core, unknown) = Events.decode(patched).expect("decodes");
        assert!(unknown.is_empty(), "{unknown:?}");
        assert_eq!(core["series"]["count"], 2);
        assert_eq!(core["message"], "scaled up");
        let old = to_core(v1_event());
        assert!(Events.validate_update(&core, &old).is_empty());
    }

    #[test]
    fn strict_validation_uses_upstream_paths() {
        let mut bad = v1_event();
        if let Some(m) = bad.as_object_mut() {
            m.remove("eventTime");
        }
        bad["type"] = json!("Odd");
        bad["deprecatedCount"] = json!(2);
        bad["series"] = json!({"count": 1, "lastObservedTime": "2025-01-01T00:00:00.000000Z"});
        let (core, _) = Events.decode(bad).expect("decodes");
        let causes = Events.validate(&core);
        assert_eq!(
            fields(&causes),
            ["series.count", "eventTime", "type", "count"]
        );
        assert_eq!(
            causes[2].message,
            "Invalid value: \"\": has invalid value: Odd"
        );

        let no_controller = {
            let mut e = v1_event();
            e["reportingController"] = json!("");
            Events.decode(e).expect("decodes").0
        };
        let causes = Events.validate(&no_controller);
        assert_eq!(causes[0].field, "reportingController");
        assert_eq!(causes[0].message, "Required value");

        let old = to_core(v1_event());
        let mut new = old.clone();
        new["message"] = json!("changed");
        let upd = Events.validate_update(&new, &old);
        assert_eq!(fields(&upd), ["message"]);
    }

    #[test]
    fn cells_match_columns() {
        let cells = Events.cells(&to_events(to_core(v1_event())));
        assert_eq!(cells.len(), Events.columns().len());
        assert_eq!(cells[1], "Normal");
        assert_eq!(cells[3], "deployment/web");
        assert_eq!(cells[5], "example.com/ctl, ctl-1");
        assert_eq!(cells[6], "scaled up");
        assert_eq!(cells[8], 1);
    }
}
