//! Validation shared by every kind: names (DNS-1123 subdomains and labels, DNS-1035
//! labels), label and annotation syntax and sizes, and the generic ObjectMeta rules —
//! with upstream's error texts, since clients and users match on them.
//!
//! Invariant: validation only reads; it never changes the object.

use serde_json::Value;

use super::meta;
use crate::apiserver::status::{forbidden, invalid_value, required, too_long, Cause};

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

fn is_label_char(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'
}

/// RFC 1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn dns1123_label(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let mut errs = Vec::new();
    if b.len() > 63 {
        errs.push("must be no more than 63 characters".to_owned());
    }
    let ok = !b.is_empty()
        && b.iter().all(|c| is_label_char(*c))
        && b[0] != b'-'
        && b[b.len() - 1] != b'-';
    if !ok {
        errs.push(DNS1123_LABEL_MSG.to_owned());
    }
    errs
}

/// RFC 1123 subdomain: dot-separated labels, at most 253 characters.
pub fn dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push("must be no more than 253 characters".to_owned());
    }
    let ok = !s.is_empty()
        && s.split('.').all(|part| {
            let b = part.as_bytes();
            !b.is_empty()
                && b.iter().all(|c| is_label_char(*c))
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        });
    if !ok {
        errs.push(DNS1123_SUBDOMAIN_MSG.to_owned());
    }
    errs
}

/// RFC 1035 label: starts with a letter.
pub fn dns1035_label(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let mut errs = Vec::new();
    if b.len() > 63 {
        errs.push("must be no more than 63 characters".to_owned());
    }
    let ok = !b.is_empty()
        && b[0].is_ascii_lowercase()
        && b.iter().all(|c| is_label_char(*c))
        && b[b.len() - 1] != b'-';
    if !ok {
        errs.push(DNS1035_LABEL_MSG.to_owned());
    }
    errs
}

/// A name usable as one path segment (what most kinds accept with a subdomain check).
pub fn path_segment_name(s: &str) -> Vec<String> {
    if s == "." || s == ".." {
        return vec![format!("may not be '{s}'")];
    }
    for bad in ["/", "%"] {
        if s.contains(bad) {
            return vec![format!("may not contain '{bad}'")];
        }
    }
    Vec::new()
}

fn qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A qualified name (label and annotation keys): `[prefix/]name`.
pub fn qualified_name(s: &str) -> Vec<String> {
    let (prefix, name) = match s.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, s),
    };
    let mut errs = Vec::new();
    if let Some(p) = prefix {
        if p.is_empty() {
            errs.push("prefix part must be non-empty".to_owned());
        } else {
            errs.extend(
                dns1123_subdomain(p)
                    .into_iter()
                    .map(|e| format!("prefix part {e}")),
            );
        }
    }
    if !qualified_name_part(name) {
        errs.push("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')".to_owned());
    }
    errs
}

/// A label value: empty, or up to 63 characters like a qualified name part.
pub fn label_value(s: &str) -> Vec<String> {
    if s.is_empty() || qualified_name_part(s) {
        Vec::new()
    } else {
        vec!["a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".to_owned()]
    }
}

/// Labels: keys are qualified names, values label values.
pub fn labels(field: &str, labels: Option<&serde_json::Map<String, Value>>) -> Vec<Cause> {
    let mut out = Vec::new();
    for (k, v) in labels.into_iter().flatten() {
        for e in qualified_name(k) {
            out.push(invalid_value(field, &Value::String(k.clone()), &e));
        }
        match v.as_str() {
            Some(s) => {
                for e in label_value(s) {
                    out.push(invalid_value(&format!("{field}[{k}]"), v, &e));
                }
            }
            None => out.push(invalid_value(
                &format!("{field}[{k}]"),
                v,
                "must be a string",
            )),
        }
    }
    out
}

/// Annotations: qualified-name keys, total size at most 256 KiB.
pub fn annotations(
    field: &str,
    annotations: Option<&serde_json::Map<String, Value>>,
) -> Vec<Cause> {
    let mut out = Vec::new();
    let mut total = 0usize;
    for (k, v) in annotations.into_iter().flatten() {
        for e in qualified_name(&k.to_lowercase()) {
            out.push(invalid_value(field, &Value::String(k.clone()), &e));
        }
        total += k.len() + v.as_str().map(str::len).unwrap_or(0);
    }
    if total > 256 * 1024 {
        out.push(too_long(field, 256 * 1024));
    }
    out
}

/// How a kind's names are checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameRule {
    Subdomain,
    Label,
    Dns1035,
    PathSegment,
}

impl NameRule {
    pub fn check(self, name: &str) -> Vec<String> {
        match self {
            NameRule::Subdomain => dns1123_subdomain(name),
            NameRule::Label => dns1123_label(name),
            NameRule::Dns1035 => dns1035_label(name),
            NameRule::PathSegment => path_segment_name(name),
        }
    }
}

/// The ObjectMeta rules every kind shares: name (or generateName), namespace present
/// exactly for namespaced kinds, labels, annotations, finalizer names.
pub fn object_meta(obj: &Value, namespaced: bool, rule: NameRule) -> Vec<Cause> {
    let mut out = Vec::new();
    let name = meta::name(obj);
    if name.is_empty() {
        if meta::generate_name(obj).is_empty() {
            out.push(required(
                "metadata.name",
                "name or generateName is required",
            ));
        }
    } else {
        for e in rule.check(name) {
            out.push(invalid_value(
                "metadata.name",
                &Value::String(name.to_owned()),
                &e,
            ));
        }
    }
    let ns = meta::namespace(obj);
    if namespaced {
        if ns.is_empty() {
            out.push(required("metadata.namespace", ""));
        } else {
            for e in dns1123_label(ns) {
                out.push(invalid_value(
                    "metadata.namespace",
                    &Value::String(ns.to_owned()),
                    &e,
                ));
            }
        }
    } else if !ns.is_empty() {
        out.push(forbidden("metadata.namespace", "not allowed on this type"));
    }
    let m = meta::metadata(obj);
    out.extend(labels(
        "metadata.labels",
        m.and_then(|m| m.get("labels")).and_then(Value::as_object),
    ));
    out.extend(annotations(
        "metadata.annotations",
        m.and_then(|m| m.get("annotations"))
            .and_then(Value::as_object),
    ));
    for (i, f) in meta::finalizers(obj).iter().enumerate() {
        for e in qualified_name(f) {
            out.push(invalid_value(
                &format!("metadata.finalizers[{i}]"),
                &Value::String(f.clone()),
                &e,
            ));
        }
    }
    out
}

/// Fields of ObjectMeta that may not change on update.
pub fn object_meta_update(new: &Value, old: &Value) -> Vec<Cause> {
    let mut out = Vec::new();
    for (field, path) in [
        ("name", "metadata.name"),
        ("namespace", "metadata.namespace"),
        ("uid", "metadata.uid"),
        ("creationTimestamp", "metadata.creationTimestamp"),
    ] {
        let a = meta::str_field(new, field);
        let b = meta::str_field(old, field);
        if a != b && !(field == "creationTimestamp" && a.is_empty()) {
            out.push(invalid_value(
                path,
                &Value::String(a.to_owned()),
                "field is immutable",
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names() {
        assert!(dns1123_subdomain("a.b-c.d").is_empty());
        assert!(!dns1123_subdomain("Bad_Name").is_empty());
        assert!(!dns1123_subdomain("-a").is_empty());
        assert!(dns1123_label("abc-1").is_empty());
        assert!(!dns1123_label("a.b").is_empty());
        assert!(!dns1035_label("1abc").is_empty());
        assert!(!dns1123_label(&"a".repeat(64)).is_empty());
    }

    #[test]
    fn labels_and_meta() {
        assert!(qualified_name("app.kubernetes.io/name").is_empty());
        assert!(!qualified_name("/x").is_empty());
        assert!(label_value("").is_empty());
        assert!(!label_value("-x").is_empty());
        let causes = object_meta(
            &json!({"metadata": {"name": "ok", "labels": {"a": "-bad"}}}),
            true,
            NameRule::Subdomain,
        );
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, vec!["metadata.namespace", "metadata.labels[a]"]);
        let causes = object_meta(&json!({"metadata": {}}), false, NameRule::Subdomain);
        assert_eq!(causes[0].reason, "FieldValueRequired");
    }
}
