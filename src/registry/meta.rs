//! Accessors for the parts of an object every kind shares (`apiVersion`, `kind`,
//! `metadata`), on the untyped JSON form the generic machinery works with.
//!
//! Invariant: reads never panic on malformed objects (missing or mistyped fields read
//! as absent); writes create `metadata` when it is missing.

use serde_json::{Map, Value};

pub fn metadata(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

pub fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.is_object() {
        *obj = Value::Object(Map::new());
    }
    let map = obj.as_object_mut().expect("object ensured above");
    let meta = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut().expect("object ensured above")
}

pub fn str_field<'a>(obj: &'a Value, field: &str) -> &'a str {
    metadata(obj)
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub fn name(obj: &Value) -> &str {
    str_field(obj, "name")
}

pub fn namespace(obj: &Value) -> &str {
    str_field(obj, "namespace")
}

pub fn uid(obj: &Value) -> &str {
    str_field(obj, "uid")
}

pub fn resource_version(obj: &Value) -> &str {
    str_field(obj, "resourceVersion")
}

pub fn generate_name(obj: &Value) -> &str {
    str_field(obj, "generateName")
}

pub fn deletion_timestamp(obj: &Value) -> Option<&str> {
    metadata(obj)
        .and_then(|m| m.get("deletionTimestamp"))
        .and_then(Value::as_str)
}

/// The grace period a marked object still waits on: its positive
/// `deletionGracePeriodSeconds` (0 or absent: none).
pub fn deletion_grace_waiting(obj: &Value) -> Option<i64> {
    metadata(obj)
        .and_then(|m| m.get("deletionGracePeriodSeconds"))
        .and_then(Value::as_i64)
        .filter(|g| *g > 0)
}

pub fn labels(obj: &Value) -> Option<&Map<String, Value>> {
    metadata(obj)
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object)
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    metadata(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

pub fn generation(obj: &Value) -> i64 {
    metadata(obj)
        .and_then(|m| m.get("generation"))
        .and_then(Value::as_i64)
        .unwrap_or(0)
}

pub fn set(obj: &mut Value, field: &str, value: Value) {
    metadata_mut(obj).insert(field.to_owned(), value);
}

pub fn remove(obj: &mut Value, field: &str) {
    metadata_mut(obj).remove(field);
}

pub fn set_resource_version(obj: &mut Value, rv: i64) {
    set(obj, "resourceVersion", Value::String(rv.to_string()));
}

pub fn api_version(obj: &Value) -> &str {
    obj.get("apiVersion").and_then(Value::as_str).unwrap_or("")
}

pub fn kind(obj: &Value) -> &str {
    obj.get("kind").and_then(Value::as_str).unwrap_or("")
}

/// Sets `apiVersion` and `kind` as the first keys are set on output.
pub fn set_type(obj: &mut Value, api_version: &str, kind: &str) {
    if let Some(map) = obj.as_object_mut() {
        map.insert("apiVersion".into(), Value::String(api_version.to_owned()));
        map.insert("kind".into(), Value::String(kind.to_owned()));
    }
}

/// `group/version`, or `version` for the core group.
pub fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    }
}

/// The current time as RFC 3339 with second precision (metav1.Time).
pub fn now_rfc3339() -> String {
    format_rfc3339(time::OffsetDateTime::now_utc(), false)
}

/// `seconds` from now, as RFC 3339 with second precision: a graceful deletion's
/// deletionTimestamp.
pub fn rfc3339_in(seconds: i64) -> String {
    format_rfc3339(moved(time::OffsetDateTime::now_utc(), seconds), false)
}

/// The RFC 3339 time `ts` moved by `seconds`; None when `ts` is not RFC 3339.
pub fn shift_rfc3339(ts: &str, seconds: i64) -> Option<String> {
    let t = time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).ok()?;
    Some(format_rfc3339(moved(t, seconds), false))
}

/// `t` moved by `seconds`, saturating at the ends of the years 0..=9999 (a client may
/// ask for any int64 grace period).
fn moved(t: time::OffsetDateTime, seconds: i64) -> time::OffsetDateTime {
    let first = time::macros::datetime!(0000-01-01 00:00:00 UTC);
    let last = time::macros::datetime!(9999-12-31 23:59:59 UTC);
    match t.checked_add(time::Duration::seconds(seconds)) {
        Some(m) => m.clamp(first, last),
        None if seconds < 0 => first,
        None => last,
    }
}

/// The current time with microseconds (metav1.MicroTime).
pub fn now_rfc3339_micro() -> String {
    format_rfc3339(time::OffsetDateTime::now_utc(), true)
}

/// `t` in UTC as Go writes metav1.Time (`2006-01-02T15:04:05Z`) or, with `micro`,
/// metav1.MicroTime (`2006-01-02T15:04:05.000000Z`).
pub fn format_rfc3339(t: time::OffsetDateTime, micro: bool) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let seconds = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    if micro {
        format!("{seconds}.{:06}Z", t.microsecond())
    } else {
        format!("{seconds}Z")
    }
}

/// A random version-4 UUID.
pub fn new_uid() -> String {
    let mut b = [0u8; 16];
    // ring's system RNG; a failure here is an OS failure.
    let rng = ring::rand::SystemRandom::new();
    if ring::rand::SecureRandom::fill(&rng, &mut b).is_err() {
        let nanos = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as u128;
        b.copy_from_slice(&nanos.to_le_bytes());
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    )
}

/// The random suffix of a generated name: 5 characters from upstream's alphabet
/// (no vowels, no confusable characters).
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut b = [0u8; 5];
    let rng = ring::rand::SystemRandom::new();
    let _ = ring::rand::SecureRandom::fill(&rng, &mut b);
    b.iter()
        .map(|x| ALPHABET[*x as usize % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_tolerate_malformed_objects() {
        let bad = json!({"metadata": "nope"});
        assert_eq!(name(&bad), "");
        assert!(labels(&bad).is_none());
        let mut obj = json!(null);
        set(&mut obj, "name", json!("x"));
        assert_eq!(name(&obj), "x");
    }

    #[test]
    fn uids_and_suffixes_have_the_right_shape() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(new_uid(), u);
        let s = random_suffix();
        assert_eq!(s.len(), 5);
        assert!(s.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }

    #[test]
    fn deletion_deadlines_move_by_seconds() {
        assert_eq!(
            shift_rfc3339("2026-11-30T23:59:50Z", 25).as_deref(),
            Some("2026-12-01T00:00:15Z")
        );
        assert_eq!(
            shift_rfc3339("2026-11-30T10:00:30+01:00", -25).as_deref(),
            Some("2026-11-30T09:00:05Z")
        );
        assert_eq!(shift_rfc3339("yesterday", 1), None);
        assert_eq!(rfc3339_in(i64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(
            shift_rfc3339("2026-11-30T00:00:00Z", i64::MIN).as_deref(),
            Some("0000-01-01T00:00:00Z")
        );
        assert!(rfc3339_in(30) > now_rfc3339());
    }
}
