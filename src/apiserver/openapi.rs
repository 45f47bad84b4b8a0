//! OpenAPI documents, generated from the registry and the k8s-openapi types:
//! `GET /openapi/v2` (Swagger 2.0, one document, in JSON or in gnostic's protobuf
//! form as client-go's discovery asks for it) and `GET /openapi/v3` (an index of
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
mod gnostic;
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

/// The media types of the v2 document's protobuf form: the one client-go asks for,
/// and the spelling without `@` that the answer carries (Go's media-type parser,
/// which client-go runs on `Content-Type`, refuses an `@`).
const V2_PROTOBUF: [&str; 2] = [
    "application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf",
];

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
    /// The v2 document as an `openapi.v2.Document` protobuf message.
    pub v2_protobuf: Document,
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
        let v2_protobuf = Document::new(gnostic::encode_document(&generated.v2));
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
            v2_protobuf_bytes = v2_protobuf.bytes.len(),
            v3_documents = v3.len(),
            v3_bytes,
            "OpenAPI documents generated"
        );
        Documents {
            v2,
            v2_protobuf,
            v3_index,
            v3,
        }
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
fn accepts_json(headers: &HeaderMap) -> bool {
    preferred(headers, &[JSON]).is_some()
}

/// The first media type of `offers` that `Accept` admits, in the client's order of
/// preference (highest `q` first, then as listed); `*/*` and `application/*` admit
/// the first offer. No `Accept` admits the first offer too.
fn preferred(headers: &HeaderMap, offers: &[&'static str]) -> Option<&'static str> {
    let Some(accept) = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .filter(|a| !a.trim().is_empty())
    else {
        return offers.first().copied();
    };
    let mut clauses: Vec<(f32, usize, String)> = accept
        .split(',')
        .enumerate()
        .map(|(i, clause)| {
            let mut parts = clause.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q=")?.trim().parse::<f32>().ok())
                .next()
                .unwrap_or(1.0);
            (q, i, media)
        })
        .filter(|(q, _, _)| *q > 0.0)
        .collect();
    clauses.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    clauses
        .iter()
        .find_map(|(_, _, media)| match media.as_str() {
            "*/*" | "application/*" => offers.first().copied(),
            m => offers.iter().copied().find(|o| *o == m),
        })
}

fn not_acceptable() -> Response {
    ApiError::not_acceptable(JSON).into_response()
}

/// Answers with `doc`: 304 when `If-None-Match` names its ETag; gzip when large and
/// accepted; cache headers for a hashed (immutable) URL.
fn serve(doc: &Document, media: &str, headers: &HeaderMap, immutable: bool) -> Response {
    let quoted = format!("\"{}\"", doc.etag);
    let matches = headers
        .get(http::header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == quoted || t.trim() == "*"));
    let mut resp = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        negotiate::raw(200, doc.bytes.to_vec(), media, headers, &[])
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

/// `GET /openapi/v2`, in JSON or protobuf as `Accept` prefers.
async fn v2(State(s): State<Arc<Service>>, headers: HeaderMap) -> Response {
    let Some(media) = preferred(&headers, &[JSON, V2_PROTOBUF[0], V2_PROTOBUF[1]]) else {
        return ApiError::not_acceptable(&format!("{JSON}, {}", V2_PROTOBUF[0])).into_response();
    };
    match s.documents().await {
        Ok(d) if media == JSON => serve(&d.v2, media, &headers, false),
        Ok(d) => serve(&d.v2_protobuf, V2_PROTOBUF[1], &headers, false),
        Err(e) => e.into_response(),
    }
}

/// `GET /openapi/v3`: the group versions and the hashed URL of each one's document.
async fn v3_index(State(s): State<Arc<Service>>, headers: HeaderMap) -> Response {
    if !accepts_json(&headers) {
        return not_acceptable();
    }
    match s.documents().await {
        Ok(d) => serve(&d.v3_index, JSON, &headers, false),
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
        Some(hash) if !hash.is_empty() => serve(doc, JSON, &headers, true),
        _ => serve(doc, JSON, &headers, false),
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
    fn v2_is_served_in_the_encoding_accept_prefers() {
        let offers = [JSON, V2_PROTOBUF[0], V2_PROTOBUF[1]];
        assert_eq!(preferred(&HeaderMap::new(), &offers), Some(JSON));
        assert_eq!(
            preferred(&accept(V2_PROTOBUF[0]), &offers),
            Some(V2_PROTOBUF[0])
        );
        assert_eq!(
            preferred(
                &accept(&format!("application/json;q=0.5, {}", V2_PROTOBUF[1])),
                &offers
            ),
            Some(V2_PROTOBUF[1])
        );
        assert_eq!(preferred(&accept("text/html"), &offers), None);
    }

    #[test]
    fn v3_is_json_only() {
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
