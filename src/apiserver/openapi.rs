//! OpenAPI documents, generated from the registry and the k8s-openapi types:
//! `GET /openapi/v2` (Swagger 2.0, one document) and `GET /openapi/v3` (an index of
//! one OpenAPI 3.0 document per group version, `GET /openapi/v3/api/v1?hash=…`), as
//! kubectl reads them for `explain`, client-side `apply` (strategic merge patch
//! metadata) and `--validate` (whether PATCH takes `fieldValidation`).
//!
//! Invariant: documents describe exactly the served resources. They are generated
//! once per server (in the background when the router is built, or by the first
//! request, whichever comes first) and served from memory; each carries the uppercase hex
//! SHA-512 of its bytes as ETag, and the index links each group version by that hash,
//! so a hashed URL always names one immutable document.

mod build;
pub mod extensions;
pub mod kinds;
mod paths;
pub mod patch_meta;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde_json::{json, Map};

use super::negotiate;
use super::query::Query;
use super::status::ApiError;
use crate::registry::Registry;

/// What `/openapi/*` answers in when the client accepts JSON.
const JSON: &str = "application/json";

/// Routes for the OpenAPI documents.
pub fn router(registry: Arc<Registry>) -> axum::Router {
    let service = Arc::new(Service {
        registry,
        documents: tokio::sync::OnceCell::new(),
    });
    // Generate in the background right away, so the first client does not wait.
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        let warm = service.clone();
        runtime.spawn(async move {
            if let Err(e) = warm.documents().await {
                tracing::error!(error = %e.message, "OpenAPI documents could not be generated");
            }
        });
    }
    axum::Router::new()
        .route("/openapi/v2", get(v2))
        .route("/openapi/v3", get(v3_index))
        .route("/openapi/v3/{*group_version}", get(v3_document))
        .with_state(service)
}

/// One encoded document and its ETag (without quotes).
pub struct Document {
    pub bytes: Bytes,
    pub etag: String,
}

impl Document {
    fn new(bytes: Vec<u8>) -> Document {
        let digest = ring::digest::digest(&ring::digest::SHA512, &bytes);
        let etag = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        Document {
            bytes: Bytes::from(bytes),
            etag,
        }
    }
}

/// Every document, encoded.
pub struct Documents {
    pub v2: Document,
    pub v3_index: Document,
    /// By group-version path: `api/v1`, `apis/apps/v1`.
    pub v3: HashMap<String, Document>,
}

impl Documents {
    /// Generates and encodes the documents for what `registry` serves.
    pub fn generate(registry: &Registry) -> Documents {
        let started = Instant::now();
        let generated = build::generate(registry, super::KUBE_VERSION.2);
        let v2 = Document::new(serde_json::to_vec(&generated.v2).unwrap_or_default());
        let mut index = Map::new();
        let mut v3 = HashMap::new();
        let mut v3_bytes = 0;
        for (key, doc) in generated.v3 {
            let d = Document::new(serde_json::to_vec(&doc).unwrap_or_default());
            v3_bytes += d.bytes.len();
            index.insert(
                key.clone(),
                json!({ "serverRelativeURL": format!("/openapi/v3/{key}?hash={}", d.etag) }),
            );
            v3.insert(key, d);
        }
        let v3_index =
            Document::new(serde_json::to_vec(&json!({ "paths": index })).unwrap_or_default());
        tracing::info!(
            elapsed_ms = started.elapsed().as_millis() as u64,
            v2_bytes = v2.bytes.len(),
            v3_documents = v3.len(),
            v3_bytes,
            "OpenAPI documents generated"
        );
        Documents { v2, v3_index, v3 }
    }
}

struct Service {
    registry: Arc<Registry>,
    documents: tokio::sync::OnceCell<Arc<Documents>>,
}

impl Service {
    /// The documents, generated on first use off the async workers.
    async fn documents(&self) -> Result<Arc<Documents>, ApiError> {
        self.documents
            .get_or_try_init(|| async {
                let registry = self.registry.clone();
                tokio::task::spawn_blocking(move || Arc::new(Documents::generate(&registry)))
                    .await
                    .map_err(|e| {
                        ApiError::internal(format!("generating the OpenAPI documents failed: {e}"))
                    })
            })
            .await
            .cloned()
    }
}

/// Whether `Accept` admits JSON (absent, `*/*`, `application/*` or `application/json`).
/// The protobuf encodings of the documents are not produced.
fn accepts_json(headers: &HeaderMap) -> bool {
    let Some(accept) = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
    else {
        return true;
    };
    if accept.trim().is_empty() {
        return true;
    }
    accept.split(',').any(|clause| {
        let mut parts = clause.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let refused = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        !refused && matches!(media.as_str(), "*/*" | "application/*" | JSON)
    })
}

fn not_acceptable() -> Response {
    ApiError::not_acceptable(JSON).into_response()
}

/// Answers with `doc`: 304 when `If-None-Match` names its ETag; gzip when large and
/// accepted; cache headers for a hashed (immutable) URL.
fn serve(doc: &Document, headers: &HeaderMap, immutable: bool) -> Response {
    let quoted = format!("\"{}\"", doc.etag);
    let matches = headers
        .get(http::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == quoted || t.trim() == "*"));
    let mut resp = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        negotiate::raw(200, doc.bytes.to_vec(), JSON, headers, &[])
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&quoted) {
        h.insert(http::header::ETAG, v);
    }
    h.insert(
        http::header::VARY,
        HeaderValue::from_static("Accept, Accept-Encoding"),
    );
    if immutable {
        h.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("public, immutable"),
        );
        if let Ok(v) = HeaderValue::from_str(&http_date_in_a_year()) {
            h.insert(http::header::EXPIRES, v);
        }
    }
    resp
}

/// One year from now as an HTTP date (`Expires` of a hashed document).
fn http_date_in_a_year() -> String {
    let t = time::OffsetDateTime::now_utc() + time::Duration::days(365);
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    t.format(&format).unwrap_or_default()
}

/// `GET /openapi/v2`
async fn v2(State(s): State<Arc<Service>>, headers: HeaderMap) -> Response {
    if !accepts_json(&headers) {
        return not_acceptable();
    }
    match s.documents().await {
        Ok(d) => serve(&d.v2, &headers, false),
        Err(e) => e.into_response(),
    }
}

/// `GET /openapi/v3`: the group versions and the hashed URL of each one's document.
async fn v3_index(State(s): State<Arc<Service>>, headers: HeaderMap) -> Response {
    if !accepts_json(&headers) {
        return not_acceptable();
    }
    match s.documents().await {
        Ok(d) => serve(&d.v3_index, &headers, false),
        Err(e) => e.into_response(),
    }
}

/// `GET /openapi/v3/<group version>[?hash=<etag>]`: a stale hash is redirected to the
/// current one; a current hash makes the answer cacheable forever.
async fn v3_document(
    State(s): State<Arc<Service>>,
    Path(group_version): Path<String>,
    uri: http::Uri,
    headers: HeaderMap,
) -> Response {
    let docs = match s.documents().await {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    let Some(doc) = docs.v3.get(group_version.trim_end_matches('/')) else {
        return ApiError::not_found_path().into_response();
    };
    if !accepts_json(&headers) {
        return not_acceptable();
    }
    let query = Query::parse(uri.query());
    match query.get("hash") {
        Some(hash) if !hash.is_empty() && hash != doc.etag => {
            let location = format!(
                "/openapi/v3/{}?hash={}",
                group_version.trim_end_matches('/'),
                doc.etag
            );
            let mut resp = StatusCode::MOVED_PERMANENTLY.into_response();
            if let Ok(v) = HeaderValue::from_str(&location) {
                resp.headers_mut().insert(http::header::LOCATION, v);
            }
            resp
        }
        Some(hash) if !hash.is_empty() => serve(doc, &headers, true),
        _ => serve(doc, &headers, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::ACCEPT,
            HeaderValue::from_str(v).expect("header"),
        );
        h
    }

    #[test]
    fn json_is_the_only_encoding() {
        assert!(accepts_json(&HeaderMap::new()));
        assert!(accepts_json(&accept("application/json")));
        assert!(accepts_json(&accept(
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf, */*;q=0.5"
        )));
        assert!(!accepts_json(&accept(
            "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
        )));
        assert!(!accepts_json(&accept("application/json;q=0")));
        assert!(!accepts_json(&accept("text/html")));
    }

    #[test]
    fn etags_are_uppercase_sha512() {
        let d = Document::new(b"{}".to_vec());
        assert_eq!(d.etag.len(), 128);
        assert!(d
            .etag
            .chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()));
        assert!(http_date_in_a_year().ends_with(" GMT"));
    }
}
