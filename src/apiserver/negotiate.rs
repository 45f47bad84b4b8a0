//! Content negotiation: request bodies in JSON or YAML (and patch media types);
//! responses as JSON or YAML, as a `Table` (`;as=Table;g=meta.k8s.io;v=v1`) or as
//! `PartialObjectMetadata[List]`; gzip for large responses when the client accepts it.
//!
//! Invariant: a body in a media type we cannot read is refused with 415 before any
//! work is done; a response the client cannot accept is refused with 406.

use std::io::Write;

use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;

use super::status::ApiError;

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

pub const SUPPORTED_BODIES: &str = "application/json, application/yaml, application/vnd.kubernetes.protobuf";
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
        return Err(ApiError::too_large("Request entity too large: limit is 3145728"));
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
        BodyType::Protobuf => Err(ApiError::unsupported_media_type(
            "application/vnd.kubernetes.protobuf",
            SUPPORTED_BODIES,
        )),
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

/// What the client asked the response to be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Json,
    Yaml,
    Table { include_object: IncludeObject },
    PartialMetadata,
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
    for part in accept.split(',') {
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
        let json_like = matches!(mt.as_str(), "application/json" | "*/*" | "application/*" | "");
        if !as_kind.is_empty() {
            if !json_like || group != "meta.k8s.io" || !matches!(version, "v1" | "v1beta1") {
                continue;
            }
            match as_kind {
                "Table" => return Ok(Output::Table { include_object: include }),
                "PartialObjectMetadata" | "PartialObjectMetadataList" => return Ok(Output::PartialMetadata),
                _ => continue,
            }
        }
        if json_like {
            return Ok(Output::Json);
        }
        if matches!(mt.as_str(), "application/yaml" | "application/x-yaml" | "text/yaml") {
            return Ok(Output::Yaml);
        }
    }
    Err(ApiError::not_acceptable(
        "application/json, application/yaml, application/vnd.kubernetes.protobuf",
    ))
}

/// Encodes a response body; gzip when large and accepted.
pub fn respond(code: u16, body: &Value, output: &Output, request_headers: &HeaderMap, warnings: &[String]) -> Response {
    let (bytes, content_type) = match output {
        Output::Yaml => (
            serde_saphyr::to_string(body).map(String::into_bytes).unwrap_or_default(),
            "application/yaml",
        ),
        _ => (serde_json::to_vec(body).unwrap_or_default(), "application/json"),
    };
    raw(code, bytes, content_type, request_headers, warnings)
}

/// Sends already-encoded bytes.
pub fn raw(code: u16, bytes: Vec<u8>, content_type: &str, request_headers: &HeaderMap, warnings: &[String]) -> Response {
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
        h.insert(http::header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
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
        h.insert(http::header::ACCEPT, HeaderValue::from_str(accept).expect("header"));
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
        assert_eq!(output(&headers("application/yaml"), None).expect("ok"), Output::Yaml);
        assert_eq!(
            output(&headers("application/vnd.kubernetes.protobuf, application/json"), None).expect("ok"),
            Output::Json
        );
        assert_eq!(output(&headers("text/html"), None).unwrap_err().code, 406);
    }

    #[test]
    fn bodies() {
        let mut h = HeaderMap::new();
        h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(body_type(&h).unwrap_err().code, 415);
        assert_eq!(parse_body(b"{nope", BodyType::Json).unwrap_err().code, 400);
        let v = parse_body(b"kind: ConfigMap\ndata:\n  a: b\n", BodyType::Yaml).expect("yaml");
        assert_eq!(v["data"]["a"], "b");
        assert_eq!(parse_body(&vec![b' '; MAX_BODY + 1], BodyType::Json).unwrap_err().code, 413);
    }
}
