//! JSON → protobuf: writes a JSON object as its kind's message, fields in tag order
//! and map entries in key order, as Go's generated marshalers do.
//!
//! Invariant: JSON fields the message does not define are dropped (the object is what
//! the Go type would hold); a value of the wrong JSON type for its field is an error
//! naming the field, never a silently wrong encoding.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::schema::{Field, Label, Message, Schema, Special, Ty};
use super::wire::{put_bytes, put_key, put_nested, put_varint, FIXED64, VARINT};
use super::{wellknown, Error, MAX_DEPTH};

/// Appends message `idx` built from `v` (without key or length).
pub fn message(
    s: &Schema,
    idx: u16,
    v: &Value,
    buf: &mut Vec<u8>,
    depth: u32,
) -> Result<(), Error> {
    if depth > MAX_DEPTH {
        return Err(Error::encode("object nesting too deep"));
    }
    let m = s.message(idx);
    match m.special {
        Special::None => match v {
            Value::Object(obj) => fields(s, m, obj, buf, depth),
            Value::Null => Ok(()),
            _ => Err(Error::encode(format!(
                "expected an object, got {}",
                kind_of(v)
            ))),
        },
        Special::Time | Special::MicroTime => {
            let text = v
                .as_str()
                .ok_or_else(|| Error::encode("expected an RFC 3339 time string"))?;
            let (seconds, nanos) = wellknown::parse_time(text, m.special == Special::MicroTime)?;
            put_key(buf, 1, VARINT);
            put_varint(buf, seconds as u64);
            put_key(buf, 2, VARINT);
            put_varint(buf, i64::from(nanos) as u64);
            Ok(())
        }
        Special::Duration => {
            let text = v
                .as_str()
                .ok_or_else(|| Error::encode("expected a duration string"))?;
            put_key(buf, 1, VARINT);
            put_varint(buf, wellknown::parse_duration(text)? as u64);
            Ok(())
        }
        Special::Quantity => {
            let text = match v {
                Value::String(t) => t.clone(),
                Value::Number(n) => n.to_string(),
                _ => return Err(Error::encode("expected a quantity")),
            };
            put_bytes(buf, 1, text.as_bytes());
            Ok(())
        }
        Special::IntOrString => {
            let (ty, int, text) = match v {
                Value::Number(_) => (0u64, i64::from(int32(v)?), ""),
                Value::String(t) => (1, 0, t.as_str()),
                _ => return Err(Error::encode("expected an integer or a string")),
            };
            put_key(buf, 1, VARINT);
            put_varint(buf, ty);
            put_key(buf, 2, VARINT);
            put_varint(buf, int as u64);
            put_bytes(buf, 3, text.as_bytes());
            Ok(())
        }
        Special::RawJson => {
            if !v.is_null() {
                let raw = serde_json::to_vec(v).map_err(|e| Error::encode(e.to_string()))?;
                put_bytes(buf, 1, &raw);
            }
            Ok(())
        }
        Special::StringList => {
            for item in v
                .as_array()
                .ok_or_else(|| Error::encode("expected an array of strings"))?
            {
                put_bytes(buf, 1, string(item)?.as_bytes());
            }
            Ok(())
        }
        Special::SchemaOrArray | Special::SchemaOrBool | Special::SchemaOrStringArray => {
            schema_or(s, m, v, buf, depth)
        }
    }
}

fn fields(
    s: &Schema,
    m: &Message,
    obj: &Map<String, Value>,
    buf: &mut Vec<u8>,
    depth: u32,
) -> Result<(), Error> {
    for f in &m.fields {
        field(s, f, obj, buf, depth).map_err(|e| e.within(f.json))?;
    }
    Ok(())
}

fn field(
    s: &Schema,
    f: &Field,
    obj: &Map<String, Value>,
    buf: &mut Vec<u8>,
    depth: u32,
) -> Result<(), Error> {
    if f.label == Label::Inline {
        // An embedded struct: its fields come from the same object; Go always writes it.
        let Ty::Message(i) = f.ty else { return Ok(()) };
        if depth + 1 > MAX_DEPTH {
            return Err(Error::encode("object nesting too deep"));
        }
        return put_nested(buf, f.tag, |b| fields(s, s.message(i), obj, b, depth + 1));
    }
    let Some(v) = obj.get(f.json).filter(|v| !v.is_null()) else {
        return Ok(());
    };
    match f.label {
        Label::One | Label::Inline => value(s, f.tag, f.ty, v, buf, depth),
        Label::Repeated => {
            let items = v
                .as_array()
                .ok_or_else(|| Error::encode(format!("expected an array, got {}", kind_of(v))))?;
            for item in items {
                value(s, f.tag, f.ty, item, buf, depth)?;
            }
            Ok(())
        }
        Label::Map => {
            let map = v
                .as_object()
                .ok_or_else(|| Error::encode(format!("expected an object, got {}", kind_of(v))))?;
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for k in keys {
                let item = &map[k];
                if item.is_null() {
                    continue;
                }
                put_nested(buf, f.tag, |b| {
                    put_bytes(b, 1, k.as_bytes());
                    value(s, 2, f.ty, item, b, depth)
                })
                .map_err(|e| e.within(k))?;
            }
            Ok(())
        }
    }
}

/// Writes one value of type `ty` as field `tag`.
fn value(
    s: &Schema,
    tag: u32,
    ty: Ty,
    v: &Value,
    buf: &mut Vec<u8>,
    depth: u32,
) -> Result<(), Error> {
    match ty {
        Ty::String => put_bytes(buf, tag, string(v)?.as_bytes()),
        Ty::Bytes => {
            let text = v
                .as_str()
                .ok_or_else(|| Error::encode("expected a base64 string"))?;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(text)
                .map_err(|e| Error::encode(format!("illegal base64 data: {e}")))?;
            put_bytes(buf, tag, &raw);
        }
        Ty::Bool => {
            let b = v
                .as_bool()
                .ok_or_else(|| Error::encode(format!("expected a boolean, got {}", kind_of(v))))?;
            put_key(buf, tag, VARINT);
            put_varint(buf, u64::from(b));
        }
        Ty::Int32 => {
            put_key(buf, tag, VARINT);
            put_varint(buf, i64::from(int32(v)?) as u64);
        }
        Ty::Int64 => {
            put_key(buf, tag, VARINT);
            put_varint(buf, int64(v)? as u64);
        }
        Ty::Double => {
            let f = v
                .as_f64()
                .ok_or_else(|| Error::encode(format!("expected a number, got {}", kind_of(v))))?;
            put_key(buf, tag, FIXED64);
            buf.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Ty::Message(i) => put_nested(buf, tag, |b| message(s, i, v, b, depth + 1))?,
    }
    Ok(())
}

/// JSONSchemaPropsOr{Array,Bool,StringArray}, as their Go UnmarshalJSON reads them.
fn schema_or(
    s: &Schema,
    m: &Message,
    v: &Value,
    buf: &mut Vec<u8>,
    depth: u32,
) -> Result<(), Error> {
    let schema_idx = m
        .fields
        .iter()
        .find_map(|f| match f.ty {
            Ty::Message(i) => Some(i),
            _ => None,
        })
        .ok_or_else(|| Error::Schema(format!("{} has no schema field", m.path)))?;
    match (m.special, v) {
        (Special::SchemaOrBool, Value::Bool(b)) => {
            put_key(buf, 1, VARINT);
            put_varint(buf, u64::from(*b));
            Ok(())
        }
        (Special::SchemaOrBool, Value::Object(_)) => {
            put_key(buf, 1, VARINT);
            put_varint(buf, 1);
            put_nested(buf, 2, |b| message(s, schema_idx, v, b, depth + 1))
        }
        (Special::SchemaOrArray | Special::SchemaOrStringArray, Value::Object(_)) => {
            put_nested(buf, 1, |b| message(s, schema_idx, v, b, depth + 1))
        }
        (Special::SchemaOrArray, Value::Array(items)) => {
            for item in items {
                put_nested(buf, 2, |b| message(s, schema_idx, item, b, depth + 1))?;
            }
            Ok(())
        }
        (Special::SchemaOrStringArray, Value::Array(items)) => {
            for item in items {
                put_bytes(buf, 2, string(item)?.as_bytes());
            }
            Ok(())
        }
        _ => Err(Error::encode(format!(
            "unexpected {} for {}",
            kind_of(v),
            m.path
        ))),
    }
}

fn string(v: &Value) -> Result<&str, Error> {
    v.as_str()
        .ok_or_else(|| Error::encode(format!("expected a string, got {}", kind_of(v))))
}

fn int64(v: &Value) -> Result<i64, Error> {
    if let Some(i) = v.as_i64() {
        return Ok(i);
    }
    match v.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(f as i64),
        _ => Err(Error::encode(format!(
            "expected an integer, got {}",
            kind_of(v)
        ))),
    }
}

fn int32(v: &Value) -> Result<i32, Error> {
    let i = int64(v)?;
    i32::try_from(i).map_err(|_| Error::encode(format!("{i} is out of range for int32")))
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
