//! The Kubernetes protobuf encoding (`application/vnd.kubernetes.protobuf`) of built-in
//! kinds, transcoded to and from the server's JSON objects (`serde_json::Value` in
//! k8s-openapi shapes), which stay the one internal and stored form.
//!
//! Wire form, as k8s.io/apimachinery writes it: the 4 bytes `k8s\0`, then a
//! `runtime.Unknown` {TypeMeta typeMeta = 1 {apiVersion = 1; kind = 2}; bytes raw = 2;
//! contentEncoding = 3; contentType = 4} whose `raw` is the object as its kind's message
//! (`k8s.io.api.core.v1.Namespace`, lists as `<Kind>List`, errors as meta.v1.Status).
//! A watch stream is a sequence of frames, each a 4-byte big-endian length and a bare
//! meta.v1.WatchEvent {type = 1; RawExtension object = 2 {raw = 1}} whose object.raw is
//! an enveloped object.
//!
//! The transcoder is generic: one walk over the wire format driven by a schema table
//! of every message (field number, wire type, JSON name, label, required), and the
//! JSON forms of the well-known types (Time, MicroTime, Duration, Quantity,
//! IntOrString, RawExtension, FieldsV1, JSONSchemaPropsOr*, `bytes` as base64, Go
//! embedded structs as `inline` fields).
//!
//! Why a committed table (`schema.txt`) rather than prost types or a build step:
//! the field numbers live only in the generated protobuf bindings (k8s-pb) and the JSON
//! names only in k8s-openapi's serde code; joining them needs both crates' sources.
//! `tools/gen-proto-schema` does that join (std-only generator `tools/proto_schema.rs`)
//! and writes a 210 KiB text table that is parsed once at first use. Decoding into
//! k8s-pb's prost types would add ~40 s of compile time for 1,250 types and still need
//! a generated per-field mapping to JSON; a build step would need k8s-pb (a dependency
//! compiled only to get its sources unpacked) on every build. The table is regenerated
//! after a k8s-openapi upgrade (a unit test checks it names the k8s-openapi version in
//! Cargo.lock).
//!
//! JSON semantics of decoding follow Go's. Go's marshalers write every plain field,
//! zero values included, and a pointer field only when set, and the wire cannot tell
//! the two apart; `zero_omitted.txt` (from the Go API types, `tools/gen-zero-omitted`)
//! lists the plain scalars tagged `omitempty`, whose zero value therefore means unset
//! and is left out (`paused: false`, `restartPolicy: ""`), while pointer fields keep
//! theirs (`replicas: 0`, `automountServiceAccountToken: false`,
//! `storageClassName: ""`). For messages that list does not cover, empty strings of
//! optional fields are left out and other zeros kept.
//!
//! Invariant: for every JSON object the server can hold for a built-in kind,
//! `decode(encode(obj)) == obj` up to zero values Go's JSON omits; malformed input is
//! an `Error`, never a panic.

mod decode;
mod encode;
mod schema;
mod wellknown;
mod wire;

use serde_json::Value;

use schema::{schema, Special};
use wire::{put_bytes, put_nested, Reader, LEN};

/// The protobuf media type.
pub const MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// The media type of a protobuf watch stream.
pub const WATCH_MEDIA_TYPE: &str = "application/vnd.kubernetes.protobuf;stream=watch";

/// The envelope's first four bytes.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// Deepest message nesting decoded or encoded (CRD schemas nest a few levels per
/// property; nothing real comes close).
const MAX_DEPTH: u32 = 100;

/// Why a protobuf body could not be read or an object could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The bytes are not a valid encoding.
    #[error("{}", with_path(path, message))]
    Malformed { path: String, message: String },
    /// The object does not fit its kind's message.
    #[error("{}", with_path(path, message))]
    Encode { path: String, message: String },
    /// The envelope names a kind without a protobuf message.
    #[error("no kind \"{kind}\" is registered for version \"{api_version}\"")]
    UnknownKind { api_version: String, kind: String },
    #[error("the protobuf schema table is unusable: {0}")]
    Schema(String),
}

fn with_path(path: &str, message: &str) -> String {
    if path.is_empty() {
        message.to_owned()
    } else {
        format!("{path}: {message}")
    }
}

impl Error {
    fn malformed(message: impl Into<String>) -> Self {
        Error::Malformed {
            path: String::new(),
            message: message.into(),
        }
    }

    fn encode(message: impl Into<String>) -> Self {
        Error::Encode {
            path: String::new(),
            message: message.into(),
        }
    }

    /// The same error, one field further out (`spec` + `replicas` → `spec.replicas`).
    fn within(self, field: &str) -> Self {
        let prefix = |path: String| {
            if path.is_empty() {
                field.to_owned()
            } else {
                format!("{field}.{path}")
            }
        };
        match self {
            Error::Malformed { path, message } => Error::Malformed {
                path: prefix(path),
                message,
            },
            Error::Encode { path, message } => Error::Encode {
                path: prefix(path),
                message,
            },
            other => other,
        }
    }
}

/// Whether objects of this kind have a protobuf form (built-in kinds; not custom
/// resources, not Table).
pub fn supports(api_version: &str, kind: &str) -> bool {
    schema()
        .ok()
        .and_then(|s| {
            s.kind(api_version, kind)
                .map(|i| s.message(i).special == Special::None)
        })
        .unwrap_or(false)
}

/// Whether `bytes` start with the protobuf envelope's magic.
pub fn is_enveloped(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// Decodes an enveloped object into its JSON form, `apiVersion` and `kind` included.
pub fn decode(bytes: &[u8]) -> Result<Value, Error> {
    decode_nested(bytes, 0)
}

fn decode_nested(bytes: &[u8], depth: u32) -> Result<Value, Error> {
    let body = bytes.strip_prefix(MAGIC.as_slice()).ok_or_else(|| {
        Error::malformed("the body does not start with the protobuf envelope k8s\\x00")
    })?;
    let s = schema()?;
    let (mut api_version, mut kind, mut raw, mut encoding) =
        (String::new(), String::new(), &[][..], String::new());
    let mut r = Reader::new(body);
    while let Some((tag, wire)) = r.key()? {
        match (tag, wire) {
            (1, LEN) => {
                let mut tm = Reader::new(r.bytes()?);
                while let Some((tag, wire)) = tm.key()? {
                    match (tag, wire) {
                        (1, LEN) => api_version = String::from_utf8_lossy(tm.bytes()?).into_owned(),
                        (2, LEN) => kind = String::from_utf8_lossy(tm.bytes()?).into_owned(),
                        _ => tm.skip(wire)?,
                    }
                }
            }
            (2, LEN) => raw = r.bytes()?,
            (3, LEN) => encoding = String::from_utf8_lossy(r.bytes()?).into_owned(),
            (4, LEN) => r.skip(LEN)?,
            (1..=4, _) => {
                return Err(Error::malformed(
                    "runtime.Unknown field with the wrong wire type",
                ))
            }
            _ => r.skip(wire)?,
        }
    }
    if !encoding.is_empty() {
        return Err(Error::malformed(format!(
            "unsupported contentEncoding {encoding:?}"
        )));
    }
    if kind.is_empty() {
        return Err(Error::malformed(
            "Object 'Kind' is missing in the protobuf envelope",
        ));
    }
    let unknown = || Error::UnknownKind {
        api_version: api_version.clone(),
        kind: kind.clone(),
    };
    let idx = s.kind(&api_version, &kind).ok_or_else(unknown)?;
    if s.message(idx).special != Special::None {
        return Err(unknown());
    }
    let Value::Object(mut obj) = decode::message(s, idx, raw, depth)? else {
        return Err(unknown());
    };
    obj.insert("apiVersion".into(), Value::String(api_version));
    obj.insert("kind".into(), Value::String(kind));
    Ok(Value::Object(obj))
}

/// Encodes an object (its `apiVersion` and `kind` name the message) with the envelope.
pub fn encode(obj: &Value) -> Result<Vec<u8>, Error> {
    let field = |name: &str| obj.get(name).and_then(Value::as_str).unwrap_or("");
    let (api_version, kind) = (field("apiVersion"), field("kind"));
    let s = schema()?;
    let idx = s
        .kind(api_version, kind)
        .filter(|i| s.message(*i).special == Special::None)
        .ok_or_else(|| Error::UnknownKind {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
        })?;
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(MAGIC);
    put_nested::<Error>(&mut out, 1, |b| {
        put_bytes(b, 1, api_version.as_bytes());
        put_bytes(b, 2, kind.as_bytes());
        Ok(())
    })?;
    put_nested(&mut out, 2, |b| encode::message(s, idx, obj, b, 0))?;
    put_bytes(&mut out, 3, b"");
    put_bytes(&mut out, 4, b"");
    Ok(out)
}

/// One watch frame: the 4-byte big-endian length, then a WatchEvent whose object is
/// the enveloped `obj`.
pub fn encode_watch_event(event_type: &str, obj: &Value) -> Result<Vec<u8>, Error> {
    let object = encode(obj)?;
    let mut frame = Vec::with_capacity(object.len() + event_type.len() + 16);
    frame.extend_from_slice(&[0; 4]);
    put_bytes(&mut frame, 1, event_type.as_bytes());
    put_nested::<Error>(&mut frame, 2, |b| {
        put_bytes(b, 1, &object);
        Ok(())
    })?;
    let len = u32::try_from(frame.len() - 4)
        .map_err(|_| Error::encode("watch event larger than 4 GiB"))?;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    Ok(frame)
}

/// Reads one WatchEvent message (a frame without its length): the event type and the
/// decoded object.
pub fn decode_watch_event(message: &[u8]) -> Result<(String, Value), Error> {
    let s = schema()?;
    let ev = decode::message(s, s.watch_event, message, 0)?;
    let event_type = ev
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let object = ev.get("object").cloned().unwrap_or(Value::Null);
    Ok((event_type, object))
}

/// Encodes `obj` as message `path` (`api/core/v1/Pod`) without the envelope.
pub fn encode_message(path: &str, obj: &Value) -> Result<Vec<u8>, Error> {
    let s = schema()?;
    let idx = s
        .by_path(path)
        .ok_or_else(|| Error::Schema(format!("no message {path}")))?;
    let mut out = Vec::new();
    encode::message(s, idx, obj, &mut out, 0)?;
    Ok(out)
}

/// Decodes message `path` without the envelope.
pub fn decode_message(path: &str, bytes: &[u8]) -> Result<Value, Error> {
    let s = schema()?;
    let idx = s
        .by_path(path)
        .ok_or_else(|| Error::Schema(format!("no message {path}")))?;
    decode::message(s, idx, bytes, 0)
}

#[cfg(test)]
mod tests;
