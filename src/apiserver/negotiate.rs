//! Content negotiation: request bodies in JSON, YAML or the Kubernetes protobuf
//! encoding (and patch media types); responses as JSON, YAML or protobuf, as a `Table`
//! (`;as=Table;g=meta.k8s.io;v=v1`) or as `PartialObjectMetadata[List]` (both JSON
//! only); gzip for large responses when the client accepts it.
//!
//! Invariant: a body in a media type we cannot read is refused with 415 before any
//! work is done; a response the client cannot accept is refused with 406; a protobuf
//! response is sent only for kinds with a protobuf form, else JSON when the client
//! also accepts JSON.

use std::io::Write;

use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;

use super::status::ApiError;

pub use super::protobuf;

/// Largest request body accepted (upstream's 3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Responses larger than this are gzipped when the client accepts gzip (upstream's
/// threshold).
pub const GZIP_THRESHOLD: usize = 128 * 1024;

/// How a request body is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyType {
    Json,
    Yaml,
    Protobuf,
    JsonPatch,
    MergePatch,
    StrategicMergePatch,
    ApplyPatch,
}

pub const SUPPORTED_BODIES: &str =
    "application/json, application/yaml, application/vnd.kubernetes.protobuf";
pub const SUPPORTED_PATCHES: &str = "application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml";

fn media_type(headers: &HeaderMap, name: http::HeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// The body type of a create/update request.
pub fn body_type(headers: &HeaderMap) -> Result<BodyType, ApiError> {
    match media_type(headers, http::header::CONTENT_TYPE).as_str() {
        "" | "application/json" | "*/*" => Ok(BodyType::Json),
        "application/yaml" | "application/x-yaml" | "text/yaml" => Ok(BodyType::Yaml),
        "application/vnd.kubernetes.protobuf" => Ok(BodyType::Protobuf),
        other => Err(ApiError::unsupported_media_type(other, SUPPORTED_BODIES)),
    }
}

/// The body type of a PATCH request.
pub fn patch_type(headers: &HeaderMap) -> Result<BodyType, ApiError> {
    match media_type(headers, http::header::CONTENT_TYPE).as_str() {
        "application/json-patch+json" => Ok(BodyType::JsonPatch),
        "application/merge-patch+json" => Ok(BodyType::MergePatch),
        "application/strategic-merge-patch+json" => Ok(BodyType::StrategicMergePatch),
        "application/apply-patch+yaml" | "application/apply-patch+json" => Ok(BodyType::ApplyPatch),
        other => Err(ApiError::unsupported_media_type(other, SUPPORTED_PATCHES)),
    }
}

/// Parses a request body (JSON, or YAML as a superset of JSON).
pub fn parse_body(bytes: &[u8], ty: BodyType) -> Result<Value, ApiError> {
    if bytes.len() > MAX_BODY {
        return Err(ApiError::too_large(
            "Request entity too large: limit is 3145728",
        ));
    }
    match ty {
        BodyType::Yaml | BodyType::ApplyPatch => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| ApiError::bad_request("the body of the request is not valid UTF-8"))?;
            if text.trim().is_empty() {
                return Err(ApiError::bad_request("the body of the request was empty"));
            }
            serde_saphyr::from_str::<Value>(text)
                .map_err(|e| ApiError::bad_request(format!("error converting YAML to JSON: {e}")))
        }
        BodyType::Protobuf => decode_protobuf(bytes),
        // DELETE bodies are read as JSON whatever their type; client-go's typed
        // clients send protobuf DeleteOptions, recognisable by the envelope's magic.
        _ if protobuf::is_enveloped(bytes) => decode_protobuf(bytes),
        _ => {
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Err(ApiError::bad_request("the body of the request was empty"));
            }
            serde_json::from_slice(bytes).map_err(|e| {
                ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
            })
        }
    }
}

fn decode_protobuf(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::bad_request("the body of the request was empty"));
    }
    protobuf::decode(bytes)
        .map_err(|e| ApiError::bad_request(format!("unable to decode protobuf body: {e}")))
}

/// What the client asked the response to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Json,
    Yaml,
    Table {
        include_object: IncludeObject,
    },
    PartialMetadata,
    /// The Kubernetes protobuf encoding; `json_fallback` when the client also accepts
    /// JSON, which kinds without a protobuf form (custom resources) are sent as.
    Protobuf {
        json_fallback: bool,
    },
}

/// Whether an `Accept` entry takes JSON.
fn accepts_json(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/json" | "*/*" | "application/*" | ""
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

/// Picks the response form from `Accept` (first acceptable wins, as upstream).
pub fn output(headers: &HeaderMap, include_object: Option<&str>) -> Result<Output, ApiError> {
    let accept = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    let include = match include_object {
        Some("None") => IncludeObject::None,
        Some("Object") => IncludeObject::Object,
        _ => IncludeObject::Metadata,
    };
    let parts: Vec<&str> = accept.split(',').collect();
    for (i, part) in parts.iter().enumerate() {
        let mut params = part.split(';').map(str::trim);
        let mt = params.next().unwrap_or("").to_ascii_lowercase();
        let mut as_kind = "";
        let mut group = "";
        let mut version = "";
        for p in params {
            if let Some((k, v)) = p.split_once('=') {
                match k.trim() {
                    "as" => as_kind = v.trim(),
                    "g" => group = v.trim(),
                    "v" => version = v.trim(),
                    _ => {}
                }
            }
        }
        let json_like = accepts_json(&mt);
        if !as_kind.is_empty() {
            if !json_like || group != "meta.k8s.io" || !matches!(version, "v1" | "v1beta1") {
                continue;
            }
            match as_kind {
                "Table" => {
                    return Ok(Output::Table {
                        include_object: include,
                    })
                }
                "PartialObjectMetadata" | "PartialObjectMetadataList" => {
                    return Ok(Output::PartialMetadata)
                }
                _ => continue,
            }
        }
        if json_like {
            return Ok(Output::Json);
        }
        if mt == protobuf::MEDIA_TYPE {
            let json_fallback = parts[i + 1..].iter().any(|p| {
                let mut ps = p.split(';').map(str::trim);
                let mt = ps.next().unwrap_or("").to_ascii_lowercase();
                accepts_json(&mt) && !ps.any(|p| p.starts_with("as="))
            });
            return Ok(Output::Protobuf { json_fallback });
        }
        if matches!(
            mt.as_str(),
            "application/yaml" | "application/x-yaml" | "text/yaml"
        ) {
            return Ok(Output::Yaml);
        }
    }
    Err(ApiError::not_acceptable(
        "application/json, application/yaml, application/vnd.kubernetes.protobuf",
    ))
}

/// Encodes a response body; gzip when large and accepted. For `Output::Protobuf`
/// the body's `apiVersion` and `kind` pick the message.
pub fn respond(
    code: u16,
    body: &Value,
    output: &Output,
    request_headers: &HeaderMap,
    warnings: &[String],
) -> Response {
    if let Output::Protobuf { json_fallback } = output {
        match protobuf::encode(body) {
            Ok(bytes) => return raw(code, bytes, protobuf::MEDIA_TYPE, request_headers, warnings),
            Err(protobuf::Error::UnknownKind { .. }) if *json_fallback => {}
            Err(protobuf::Error::UnknownKind { kind, .. }) => {
                let e = ApiError::not_acceptable("application/json, application/yaml");
                tracing::debug!(%kind, "no protobuf form for the response");
                return e.into_response();
            }
            Err(e) => {
                tracing::error!(error = %e, "encoding a response as protobuf failed");
                return error_response(
                    &ApiError::internal(format!("unable to encode the response as protobuf: {e}")),
                    request_headers,
                );
            }
        }
    }
    let (bytes, content_type) = match output {
        Output::Yaml => (
            serde_saphyr::to_string(body)
                .map(String::into_bytes)
                .unwrap_or_default(),
            "application/yaml",
        ),
        _ => (
            serde_json::to_vec(body).unwrap_or_default(),
            "application/json",
        ),
    };
    raw(code, bytes, content_type, request_headers, warnings)
}

/// Whether the client prefers protobuf (`Accept` lists it before any JSON).
pub fn prefers_protobuf(request_headers: &HeaderMap) -> bool {
    matches!(output(request_headers, None), Ok(Output::Protobuf { .. }))
}

/// The response for a failed request: its `metav1.Status`, as protobuf when the client
/// prefers protobuf, else as `ApiError`'s JSON.
pub fn error_response(e: &ApiError, request_headers: &HeaderMap) -> Response {
    let mut resp = e.clone().into_response();
    if !prefers_protobuf(request_headers) {
        return resp;
    }
    if let Ok(bytes) = protobuf::encode(&e.to_status()) {
        *resp.body_mut() = axum::body::Body::from(bytes);
        let h = resp.headers_mut();
        h.remove(http::header::CONTENT_LENGTH);
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(protobuf::MEDIA_TYPE),
        );
    }
    resp
}

/// The watch frame encoding for a resource: protobuf frames when negotiated and the
/// kind has a protobuf form; Ok(false) for the JSON (or YAML) stream; 406 when the
/// client accepts nothing else.
pub fn watch_protobuf(output: &Output, api_version: &str, kind: &str) -> Result<bool, ApiError> {
    match output {
        Output::Protobuf { json_fallback } => {
            if protobuf::supports(api_version, kind) {
                Ok(true)
            } else if *json_fallback {
                Ok(false)
            } else {
                Err(ApiError::not_acceptable(
                    "application/json, application/yaml",
                ))
            }
        }
        _ => Ok(false),
    }
}

/// One protobuf watch frame (length-prefixed WatchEvent); an event whose object does
/// not encode becomes an ERROR event carrying a 500 Status.
pub fn protobuf_watch_frame(event_type: &str, object: &Value) -> Bytes {
    match protobuf::encode_watch_event(event_type, object) {
        Ok(frame) => Bytes::from(frame),
        Err(e) => {
            tracing::error!(error = %e, "encoding a watch event as protobuf failed");
            let status =
                ApiError::internal(format!("unable to encode the watch event: {e}")).to_status();
            Bytes::from(protobuf::encode_watch_event("ERROR", &status).unwrap_or_default())
        }
    }
}

/// Sends already-encoded bytes.
pub fn raw(
    code: u16,
    bytes: Vec<u8>,
    content_type: &str,
    request_headers: &HeaderMap,
    warnings: &[String],
) -> Response {
    let gzip = bytes.len() > GZIP_THRESHOLD
        && request_headers
            .get(http::header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let (bytes, encoded) = if gzip {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        match enc.write_all(&bytes).and_then(|_| enc.finish()) {
            Ok(z) => (z, true),
            Err(_) => (bytes, false),
        }
    } else {
        (bytes, false)
    };
    let status = http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::OK);
    let mut resp = (status, Bytes::from(bytes)).into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(http::header::CONTENT_TYPE, v);
    }
    if encoded {
        h.insert(
            http::header::CONTENT_ENCODING,
            HeaderValue::from_static("gzip"),
        );
    }
    add_warnings(h, warnings);
    resp
}

/// `Warning: 299 - "text"` headers (RFC 7234), as upstream sends them.
pub fn add_warnings(headers: &mut HeaderMap, warnings: &[String]) {
    for w in warnings {
        let text = w.replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{text}\"")) {
            headers.append(http::header::WARNING, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(accept: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::ACCEPT,
            HeaderValue::from_str(accept).expect("header"),
        );
        h
    }

    #[test]
    fn kubectl_get_asks_for_tables() {
        let h = headers("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json");
        assert_eq!(
            output(&h, None).expect("ok"),
            Output::Table {
                include_object: IncludeObject::Metadata
            }
        );
        assert_eq!(
            output(&headers("application/yaml"), None).expect("ok"),
            Output::Yaml
        );
        assert_eq!(
            output(
                &headers("application/vnd.kubernetes.protobuf, application/json"),
                None
            )
            .expect("ok"),
            Output::Protobuf {
                json_fallback: true
            }
        );
        assert_eq!(
            output(&headers("application/vnd.kubernetes.protobuf"), None).expect("ok"),
            Output::Protobuf {
                json_fallback: false
            }
        );
        assert_eq!(
            output(
                &headers("application/json;as=Table;v=v1;g=meta.k8s.io,application/vnd.kubernetes.protobuf"),
                None
            )
            .expect("ok"),
            Output::Table {
                include_object: IncludeObject::Metadata
            }
        );
        assert_eq!(
            output(
                &headers("application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io,application/json"),
                None
            )
            .expect("ok"),
            Output::Json
        );
        assert_eq!(output(&headers("text/html"), None).unwrap_err().code, 406);
    }

    #[test]
    fn bodies() {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain"),
        );
        assert_eq!(body_type(&h).unwrap_err().code, 415);
        assert_eq!(parse_body(b"{nope", BodyType::Json).unwrap_err().code, 400);
        let v = parse_body(b"kind: ConfigMap\ndata:\n  a: b\n", BodyType::Yaml).expect("yaml");
        assert_eq!(v["data"]["a"], "b");
        assert_eq!(
            parse_body(&vec![b' '; MAX_BODY + 1], BodyType::Json)
                .unwrap_err()
                .code,
            413
        );
    }

    #[test]
    fn protobuf_bodies_decode_and_garbage_is_a_bad_request() {
        let cm = serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "x", "namespace": "default"}, "data": {"a": "b"},
        });
        let bytes = protobuf::encode(&cm).expect("encode");
        assert_eq!(parse_body(&bytes, BodyType::Protobuf).expect("decode"), cm);
        // A protobuf DeleteOptions read where JSON is expected.
        let opts = serde_json::json!({"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Foreground"});
        let bytes = protobuf::encode(&opts).expect("encode");
        assert_eq!(
            parse_body(&bytes, BodyType::Json).expect("decode")["propagationPolicy"],
            "Foreground"
        );
        for bad in [
            &b""[..],
            b"{}",
            b"k8s\0\x0a\x05",
            b"k8s\0\x0a\x04\x0a\x02v1\x12\x00",
        ] {
            let e = parse_body(bad, BodyType::Protobuf).unwrap_err();
            assert_eq!(e.code, 400, "{bad:?}: {e:?}");
        }
    }

    #[test]
    fn errors_are_protobuf_status_when_protobuf_is_preferred() {
        let e = ApiError::not_found_path();
        let resp = error_response(
            &e,
            &headers("application/vnd.kubernetes.protobuf, application/json"),
        );
        assert_eq!(resp.status(), 404);
        assert_eq!(
            resp.headers()[http::header::CONTENT_TYPE],
            protobuf::MEDIA_TYPE
        );
        let resp = error_response(&e, &headers("application/json"));
        assert_eq!(
            resp.headers()[http::header::CONTENT_TYPE],
            "application/json"
        );
    }

    #[test]
    fn responses_fall_back_to_json_for_kinds_without_protobuf() {
        let h = headers("application/vnd.kubernetes.protobuf, application/json");
        let out = output(&h, None).expect("ok");
        let cr = serde_json::json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}});
        let resp = respond(200, &cr, &out, &h, &[]);
        assert_eq!(
            resp.headers()[http::header::CONTENT_TYPE],
            "application/json"
        );
        let only = Output::Protobuf {
            json_fallback: false,
        };
        assert_eq!(respond(200, &cr, &only, &h, &[]).status(), 406);
        let ns =
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"}});
        let resp = respond(200, &ns, &out, &h, &[]);
        assert_eq!(
            resp.headers()[http::header::CONTENT_TYPE],
            protobuf::MEDIA_TYPE
        );
        assert!(watch_protobuf(&out, "v1", "Namespace").expect("ok"));
        assert!(!watch_protobuf(&out, "example.com/v1", "Widget").expect("ok"));
        assert_eq!(
            watch_protobuf(&only, "example.com/v1", "Widget")
                .unwrap_err()
                .code,
            406
        );
    }
}
