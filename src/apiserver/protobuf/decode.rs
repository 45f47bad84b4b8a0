//! Protobuf → JSON: walks an encoded message with its schema entry and builds the
//! JSON object Go's `encoding/json` would write for the decoded Go struct.
//!
//! Invariant: unknown field numbers are skipped (as Go's generated code does); a known
//! field with the wrong wire type, a truncated field, invalid JSON inside a raw field
//! or nesting deeper than `MAX_DEPTH` is an error, never a panic.

use base64::Engine as _;
use serde_json::{Map, Number, Value};

use super::schema::{Field, Label, Message, Schema, Special, Ty};
use super::wire::{Reader, FIXED64, LEN, VARINT};
use super::{wellknown, Error, MAX_DEPTH};

/// Decodes message `idx`; `Value::Null` stands for a value JSON omits (a zero Time, an
/// empty RawExtension).
pub fn message(s: &Schema, idx: u16, bytes: &[u8], depth: u32) -> Result<Value, Error> {
    if depth > MAX_DEPTH {
        return Err(Error::malformed("message nesting too deep"));
    }
    let m = s.message(idx);
    match m.special {
        Special::None => {
            let mut out = Map::new();
            fields_into(s, m, bytes, depth, &mut out)?;
            Ok(Value::Object(out))
        }
        Special::Time | Special::MicroTime => {
            // Upstream marshals the zero time as an empty message.
            if bytes.is_empty() {
                return Ok(Value::Null);
            }
            let (mut seconds, mut nanos) = (0i64, 0i32);
            scan(bytes, |tag, wire, r| match tag {
                1 => {
                    seconds = varint(r, wire)? as i64;
                    Ok(())
                }
                2 => {
                    nanos = varint(r, wire)? as i64 as i32;
                    Ok(())
                }
                _ => r.skip(wire),
            })?;
            wellknown::format_time(seconds, nanos, m.special == Special::MicroTime)
                .map(Value::String)
        }
        Special::Duration => {
            let mut d = 0i64;
            scan(bytes, |tag, wire, r| match tag {
                1 => {
                    d = varint(r, wire)? as i64;
                    Ok(())
                }
                _ => r.skip(wire),
            })?;
            Ok(Value::String(wellknown::format_duration(d)))
        }
        Special::Quantity => {
            let mut q = None;
            scan(bytes, |tag, wire, r| match tag {
                1 => {
                    q = Some(string(r, wire)?);
                    Ok(())
                }
                _ => r.skip(wire),
            })?;
            Ok(Value::String(q.unwrap_or_else(|| "0".into())))
        }
        Special::IntOrString => {
            let (mut ty, mut int, mut text) = (0i64, 0i32, String::new());
            scan(bytes, |tag, wire, r| match tag {
                1 => {
                    ty = varint(r, wire)? as i64;
                    Ok(())
                }
                2 => {
                    int = varint(r, wire)? as i64 as i32;
                    Ok(())
                }
                3 => {
                    text = string(r, wire)?;
                    Ok(())
                }
                _ => r.skip(wire),
            })?;
            Ok(if ty == 1 {
                Value::String(text)
            } else {
                Value::from(int)
            })
        }
        Special::RawJson => {
            let mut raw: &[u8] = &[];
            scan(bytes, |tag, wire, r| match tag {
                1 => {
                    raw = len(r, wire)?;
                    Ok(())
                }
                _ => r.skip(wire),
            })?;
            raw_json(raw, depth)
        }
        Special::StringList => {
            let mut items = Vec::new();
            scan(bytes, |tag, wire, r| match tag {
                1 => {
                    items.push(Value::String(string(r, wire)?));
                    Ok(())
                }
                _ => r.skip(wire),
            })?;
            Ok(Value::Array(items))
        }
        Special::SchemaOrArray | Special::SchemaOrBool | Special::SchemaOrStringArray => {
            schema_or(s, m, bytes, depth)
        }
    }
}

/// Decodes the fields of a plain message into `out` (also used for embedded structs,
/// whose fields share the parent's object).
fn fields_into(
    s: &Schema,
    m: &Message,
    bytes: &[u8],
    depth: u32,
    out: &mut Map<String, Value>,
) -> Result<(), Error> {
    let mut r = Reader::new(bytes);
    while let Some((tag, wire)) = r.key()? {
        let Some(f) = m.field(tag) else {
            r.skip(wire)?;
            continue;
        };
        field(s, f, m.go_known, &mut r, wire, depth, out).map_err(|e| e.within(f.json))?;
    }
    Ok(())
}

#[allow(
    clippy::too_many_arguments,
    reason = "one decoding step's whole context"
)]
fn field(
    s: &Schema,
    f: &Field,
    go_known: bool,
    r: &mut Reader<'_>,
    wire: u8,
    depth: u32,
    out: &mut Map<String, Value>,
) -> Result<(), Error> {
    match f.label {
        Label::Inline => {
            let Ty::Message(i) = f.ty else {
                return Err(Error::malformed("embedded field is not a message"));
            };
            let b = len(r, wire)?;
            if depth + 1 > MAX_DEPTH {
                return Err(Error::malformed("message nesting too deep"));
            }
            fields_into(s, s.message(i), b, depth + 1, out)
        }
        Label::One => {
            let v = value(s, f.ty, r, wire, depth)?;
            if v.is_null() || (is_zero(&v) && omits_zero(f, go_known)) {
                out.remove(f.json);
            } else {
                out.insert(f.json.to_owned(), v);
            }
            Ok(())
        }
        Label::Repeated => {
            let Some(Value::Array(items)) = slot(out, f.json, || Value::Array(Vec::new())) else {
                return Ok(());
            };
            let packable = matches!(f.ty, Ty::Bool | Ty::Int32 | Ty::Int64 | Ty::Double);
            if packable && wire == LEN {
                let mut p = Reader::new(r.bytes()?);
                let inner = if f.ty == Ty::Double { FIXED64 } else { VARINT };
                while !p.at_end() {
                    items.push(value(s, f.ty, &mut p, inner, depth)?);
                }
            } else {
                items.push(value(s, f.ty, r, wire, depth)?);
            }
            Ok(())
        }
        Label::Map => {
            let entry = len(r, wire)?;
            let (mut key, mut val) = (String::new(), None);
            scan(entry, |tag, wire, er| match tag {
                1 => {
                    key = string(er, wire)?;
                    Ok(())
                }
                2 => {
                    val = Some(value(s, f.ty, er, wire, depth)?);
                    Ok(())
                }
                _ => er.skip(wire),
            })?;
            let val = match val {
                Some(v) => v,
                None => zero(s, f.ty, depth)?,
            };
            if let Some(Value::Object(map)) = slot(out, f.json, || Value::Object(Map::new())) {
                map.insert(key, val);
            }
            Ok(())
        }
    }
}

/// Go writes every plain (non-pointer) field, so its zero value on the wire means what
/// Go's JSON means by leaving it out: unset. Pointer and required fields keep zeros
/// (`replicas: 0`, `automountServiceAccountToken: false`). For a message the Go field
/// list does not cover, empty strings and bytes of optional fields count as unset.
fn omits_zero(f: &Field, go_known: bool) -> bool {
    if f.ty == Ty::Bytes || !go_known {
        return !f.required && matches!(f.ty, Ty::String | Ty::Bytes);
    }
    f.zero_omitted
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        _ => false,
    }
}

/// The array or object under `key` that a repeated or map field accumulates into,
/// made by `empty` at the field's first element (the key is allocated once, not per
/// element).
fn slot<'m>(
    out: &'m mut Map<String, Value>,
    key: &str,
    empty: fn() -> Value,
) -> Option<&'m mut Value> {
    let fresh = empty();
    let same_shape = out
        .get(key)
        .is_some_and(|v| std::mem::discriminant(v) == std::mem::discriminant(&fresh));
    if !same_shape {
        out.insert(key.to_owned(), fresh);
    }
    out.get_mut(key)
}

/// One value of type `ty` at the reader.
fn value(s: &Schema, ty: Ty, r: &mut Reader<'_>, wire: u8, depth: u32) -> Result<Value, Error> {
    Ok(match ty {
        Ty::String => Value::String(string(r, wire)?),
        Ty::Bytes => Value::String(base64::engine::general_purpose::STANDARD.encode(len(r, wire)?)),
        Ty::Bool => Value::Bool(varint(r, wire)? != 0),
        Ty::Int32 => Value::from(varint(r, wire)? as i64 as i32),
        Ty::Int64 => Value::from(varint(r, wire)? as i64),
        Ty::Double => {
            if wire != FIXED64 {
                return Err(wrong_wire(wire));
            }
            double(f64::from_bits(r.fixed64()?))?
        }
        Ty::Message(i) => message(s, i, len(r, wire)?, depth + 1)?,
    })
}

/// The value of a map entry that omits its value field.
fn zero(s: &Schema, ty: Ty, depth: u32) -> Result<Value, Error> {
    Ok(match ty {
        Ty::String | Ty::Bytes => Value::String(String::new()),
        Ty::Bool => Value::Bool(false),
        Ty::Int32 | Ty::Int64 | Ty::Double => Value::from(0),
        Ty::Message(i) => message(s, i, &[], depth + 1)?,
    })
}

/// Go writes a float64 that holds an integer without a fraction.
fn double(f: f64) -> Result<Value, Error> {
    if !f.is_finite() {
        return Err(Error::malformed("a double is not finite"));
    }
    if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 {
        return Ok(Value::from(f as i64));
    }
    Number::from_f64(f)
        .map(Value::Number)
        .ok_or_else(|| Error::malformed("a double is not finite"))
}

/// The JSON a raw field holds: JSON text, or an enveloped protobuf object.
fn raw_json(raw: &[u8], depth: u32) -> Result<Value, Error> {
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    if raw.starts_with(super::MAGIC) {
        return super::decode_nested(raw, depth + 1);
    }
    serde_json::from_slice(raw).map_err(|e| Error::malformed(format!("raw field is not JSON: {e}")))
}

/// JSONSchemaPropsOr{Array,Bool,StringArray}, as their Go MarshalJSON writes them.
fn schema_or(s: &Schema, m: &Message, bytes: &[u8], depth: u32) -> Result<Value, Error> {
    let schema_idx = m
        .fields
        .iter()
        .find_map(|f| match f.ty {
            Ty::Message(i) => Some(i),
            _ => None,
        })
        .ok_or_else(|| Error::Schema(format!("{} has no schema field", m.path)))?;
    let (mut schema, mut list, mut allows) = (None, Vec::new(), false);
    let schema_tag = if m.special == Special::SchemaOrBool {
        2
    } else {
        1
    };
    scan(bytes, |tag, wire, r| {
        if tag == schema_tag {
            schema = Some(message(s, schema_idx, len(r, wire)?, depth + 1)?);
            return Ok(());
        }
        match (m.special, tag) {
            (Special::SchemaOrArray, 2) => {
                list.push(message(s, schema_idx, len(r, wire)?, depth + 1)?);
                Ok(())
            }
            (Special::SchemaOrStringArray, 2) => {
                list.push(Value::String(string(r, wire)?));
                Ok(())
            }
            (Special::SchemaOrBool, 1) => {
                allows = varint(r, wire)? != 0;
                Ok(())
            }
            _ => r.skip(wire),
        }
    })?;
    Ok(match m.special {
        Special::SchemaOrBool => schema.unwrap_or(Value::Bool(allows)),
        _ if !list.is_empty() => Value::Array(list),
        _ => schema.unwrap_or(Value::Null),
    })
}

/// Calls `f` for every field of a message.
fn scan<'a>(
    bytes: &'a [u8],
    mut f: impl FnMut(u32, u8, &mut Reader<'a>) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut r = Reader::new(bytes);
    while let Some((tag, wire)) = r.key()? {
        f(tag, wire, &mut r)?;
    }
    Ok(())
}

fn wrong_wire(wire: u8) -> Error {
    Error::malformed(format!("unexpected wire type {wire}"))
}

fn varint(r: &mut Reader<'_>, wire: u8) -> Result<u64, Error> {
    if wire != VARINT {
        return Err(wrong_wire(wire));
    }
    r.varint()
}

fn len<'a>(r: &mut Reader<'a>, wire: u8) -> Result<&'a [u8], Error> {
    if wire != LEN {
        return Err(wrong_wire(wire));
    }
    r.bytes()
}

/// Go does not check UTF-8 in proto2 strings; its JSON encoder writes U+FFFD for
/// invalid bytes, and so do we.
fn string(r: &mut Reader<'_>, wire: u8) -> Result<String, Error> {
    Ok(String::from_utf8_lossy(len(r, wire)?).into_owned())
}
