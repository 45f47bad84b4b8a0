//! Subresources other than status, dispatched by resource and name: a namespace's
//! `finalize`, `scale` (workloads), a pod's `binding` and `eviction`, a service
//! account's `token`, a certificate signing request's `approval`.
//!
//! Invariant: a subresource writes only the part of the object it owns, through the
//! generic store's read-modify-write (so it is a compare-and-swap like any update).

mod approval;
mod finalize;
mod pods;
mod scale;
mod token;

use std::sync::Arc;

use axum::response::Response;

use super::handlers::Request;
use super::negotiate::Output;
use super::status::ApiError;
use crate::registry::Resource;

pub async fn serve(
    server: &super::ApiServer,
    res: Arc<Resource>,
    version: &str,
    ns: Option<&str>,
    req: Request<'_>,
    out: &Output,
) -> Result<Response, ApiError> {
    let api = &server.api;
    match req.info.subresource.as_str() {
        "finalize" if res.resource == "namespaces" => {
            finalize::serve(api, &res, version, ns, req, out).await
        }
        "scale" => scale::serve(api, &res, version, ns, req, out).await,
        "binding" | "eviction" if res.resource == "pods" => {
            pods::serve(api, &res, version, ns, req, out).await
        }
        "approval" if res.resource == "certificatesigningrequests" => {
            approval::serve(api, &res, version, req, out).await
        }
        "token" if res.resource == "serviceaccounts" => {
            token::create(server, &res, ns, req, out).await
        }
        _ => Err(ApiError::not_found_path()),
    }
}
