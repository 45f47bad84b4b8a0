//! OIDC discovery for the service-account issuer: `/.well-known/openid-configuration`
//! and `/openid/v1/jwks` (the public keys that verify service-account tokens), so
//! relying parties outside the cluster can validate its tokens.
//!
//! Invariant: both documents are rendered once from the configured keys; they are
//! served only when the issuer is an https URL without query or fragment, as upstream
//! requires (otherwise the routes are absent and the paths answer 404).

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::service_account::ServiceAccounts;
use super::Chain;

/// The discovery document's path.
pub const OPENID_CONFIG_PATH: &str = "/.well-known/openid-configuration";
/// The key set's path.
pub const JWKS_PATH: &str = "/openid/v1/jwks";
/// How long clients may cache the documents (upstream: the key cache age, 1h).
const MAX_AGE_SECONDS: u32 = 3600;

/// The issuer's discovery document; `external_address` (host:port) builds the default
/// `jwks_uri` when `--service-account-jwks-uri` is not set.
pub fn openid_configuration(
    sas: &ServiceAccounts,
    external_address: &str,
) -> Result<Value, String> {
    let issuer = sas.issuer();
    if issuer.is_empty() {
        return Err("empty issuer URL".into());
    }
    let uri: http::Uri = issuer
        .parse()
        .map_err(|e| format!("issuer URL {issuer:?}: {e}"))?;
    if uri.scheme_str() != Some("https") {
        return Err(format!("issuer URL must use https scheme, got: {issuer}"));
    }
    if uri.query().is_some() {
        return Err(format!("issuer URL may not include a query, got: {issuer}"));
    }
    if issuer.contains('#') {
        return Err(format!(
            "issuer URL may not include a fragment, got: {issuer}"
        ));
    }
    let jwks_uri = match sas.jwks_uri() {
        Some(u) => {
            if !u.starts_with("https://") {
                return Err(format!("jwksURI requires https scheme, parsed as: {u}"));
            }
            u.to_owned()
        }
        None if external_address.is_empty() => {
            return Err(
                "either the JWKS URI or the default external address, or both, must be set".into(),
            )
        }
        None => format!("https://{external_address}{JWKS_PATH}"),
    };
    if sas.public_keys().is_empty() {
        return Err("no keys provided for validating keyset".into());
    }
    let mut algs: Vec<&str> = sas.public_keys().iter().map(|k| k.alg().name()).collect();
    algs.sort_unstable();
    algs.dedup();
    Ok(json!({
        "issuer": issuer,
        "jwks_uri": jwks_uri,
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algs,
    }))
}

/// The JSON Web Key Set of the verification keys.
pub fn jwks(sas: &ServiceAccounts) -> Value {
    let keys: Vec<Value> = sas.public_keys().iter().map(|k| k.jwk()).collect();
    json!({ "keys": keys })
}

/// Routes for the two documents, for `ApiServer.extra`; empty when the chain has no
/// service-account issuer or the issuer cannot be discovered (logged once).
pub fn oidc_router(chain: &Chain, external_address: &str) -> axum::Router {
    let Some(sas) = chain.service_accounts() else {
        return axum::Router::new();
    };
    let config = match openid_configuration(sas, external_address) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "service account issuer discovery is disabled");
            return axum::Router::new();
        }
    };
    let config = bytes::Bytes::from(serde_json::to_vec(&config).unwrap_or_default());
    let keys = bytes::Bytes::from(serde_json::to_vec(&jwks(sas)).unwrap_or_default());
    axum::Router::new()
        .route(
            OPENID_CONFIG_PATH,
            axum::routing::get(move || {
                let body = config.clone();
                async move { document(body, "application/json") }
            }),
        )
        .route(
            JWKS_PATH,
            axum::routing::get(move || {
                let body = keys.clone();
                async move { document(body, "application/jwk-set+json") }
            }),
        )
}

fn document(body: bytes::Bytes, content_type: &'static str) -> Response {
    let mut resp = (http::StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={MAX_AGE_SECONDS}")) {
        h.insert(header::CACHE_CONTROL, v);
    }
    resp
}
