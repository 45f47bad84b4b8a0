//! The `pods` subresource handler (served for resources that list it).
//!
//! Invariant: only resources registering this subresource reach this handler.

use axum::response::Response;

use crate::apiserver::handlers::Request;
use crate::apiserver::negotiate::Output;
use crate::apiserver::status::ApiError;
use crate::registry::store::Api;
use crate::registry::Resource;

pub async fn serve(
    _api: &Api,
    _res: &Resource,
    _version: &str,
    _ns: Option<&str>,
    req: Request<'_>,
    _out: &Output,
) -> Result<Response, ApiError> {
    Err(ApiError::method_not_allowed(req.method.as_str()))
}
