//! Type checking of untyped objects against the k8s-openapi types: a JSON object is
//! decoded into the kind's Rust type and encoded back. A field of the wrong type is a
//! decode error (400); fields the type does not know are reported by path, so the
//! caller can warn (fieldValidation=Warn), refuse (Strict) or drop them (Ignore).
//!
//! Invariant: the returned object is exactly what the typed form serializes, so
//! stored objects never carry fields the kind does not define.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

/// Decodes `obj` as `T` and back; returns the result and the unknown field paths.
pub fn roundtrip<T: DeserializeOwned + Serialize>(
    obj: Value,
) -> Result<(Value, Vec<String>), String> {
    let typed: T =
        serde_json::from_value(obj.clone()).map_err(|e| decode_message(&e.to_string()))?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    let mut unknown = Vec::new();
    diff_unknown(&obj, &back, "", &mut unknown);
    Ok((back, unknown))
}

/// serde's messages name Rust types; keep them but phrase them as upstream's decoder
/// does ("json: cannot unmarshal ...").
fn decode_message(e: &str) -> String {
    format!("json: {e}")
}

/// Paths (`spec.foo`, `spec.containers[0].bar`) present in `orig` but not in `back`.
fn diff_unknown(orig: &Value, back: &Value, path: &str, out: &mut Vec<String>) {
    match (orig, back) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match b.get(k) {
                    Some(bv) => diff_unknown(v, bv, &p, out),
                    None => {
                        if !is_empty(v) && !(path.is_empty() && (k == "apiVersion" || k == "kind"))
                        {
                            out.push(p);
                        }
                    }
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (x, y)) in a.iter().zip(b.iter()).enumerate() {
                diff_unknown(x, y, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// Values a typed round trip may legitimately drop: null, and empty optional values.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Removes the paths from `obj` (used when unknown fields are ignored but the object
/// was not round-tripped, e.g. custom resources).
pub fn drop_paths(obj: &mut Value, paths: &[String]) {
    for p in paths {
        let mut cur = &mut *obj;
        let parts: Vec<&str> = p.split('.').collect();
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let (key, index) = match part.split_once('[') {
                Some((k, rest)) => (k, rest.trim_end_matches(']').parse::<usize>().ok()),
                None => (*part, None),
            };
            let Some(map) = cur.as_object_mut() else {
                break;
            };
            if last && index.is_none() {
                map.remove(key);
                break;
            }
            let Some(next) = map.get_mut(key) else { break };
            cur = match index {
                Some(i) => match next.get_mut(i) {
                    Some(v) => v,
                    None => break,
                },
                None => next,
            };
        }
    }
}

/// A strategy building block: the typed schema of a kind.
pub struct Typed<T>(PhantomData<fn() -> T>);

impl<T> Default for Typed<T> {
    fn default() -> Self {
        Typed(PhantomData)
    }
}

impl<T: DeserializeOwned + Serialize> Typed<T> {
    pub fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        roundtrip::<T>(obj)
    }
}

/// An empty JSON object.
pub fn empty() -> Value {
    Value::Object(Map::new())
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use serde_json::json;

    #[test]
    fn unknown_fields_are_reported_and_dropped() {
        let obj = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "bogus": 1},
            "data": {"k": "v"},
            "extra": {"x": 1},
            "binaryData": null
        });
        let (back, unknown) = roundtrip::<ConfigMap>(obj).expect("decodes");
        assert_eq!(
            unknown,
            vec!["extra".to_owned(), "metadata.bogus".to_owned()]
        );
        assert!(back.get("extra").is_none());
        assert_eq!(back["data"]["k"], "v");
    }

    #[test]
    fn wrong_types_are_decode_errors() {
        let err = roundtrip::<ConfigMap>(json!({"metadata": {"name": "a"}, "data": {"k": 1}}))
            .unwrap_err();
        assert!(err.starts_with("json: "), "{err}");
    }

    #[test]
    fn drop_paths_removes_nested_fields() {
        let mut obj = json!({"spec": {"a": 1, "list": [{"x": 1, "y": 2}]}});
        drop_paths(&mut obj, &["spec.a".into(), "spec.list[0].y".into()]);
        assert_eq!(obj, json!({"spec": {"list": [{"x": 1}]}}));
    }
}
