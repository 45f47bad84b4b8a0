//! A namespace's `finalize` subresource: replaces `spec.finalizers`, nothing else.
//!
//! Invariant: the namespace controller removes its finalizer only through here.

use axum::response::Response;
use serde_json::{json, Value};

use crate::apiserver::handlers::Request;
use crate::apiserver::negotiate::{self, Output};
use crate::apiserver::status::ApiError;
use crate::registry::store::{Api, Part};
use crate::registry::Resource;

pub async fn serve(
    api: &Api,
    res: &Resource,
    version: &str,
    ns: Option<&str>,
    req: Request<'_>,
    out: &Output,
) -> Result<Response, ApiError> {
    if req.info.verb != "update" {
        return Err(ApiError::method_not_allowed(req.method.as_str()));
    }
    let ty = negotiate::body_type(req.headers)?;
    let body = negotiate::parse_body(&req.body, ty)?;
    let finalizers = body
        .pointer("/spec/finalizers")
        .cloned()
        .unwrap_or(json!([]));
    let name = req.info.name.clone();
    let stored = api
        .modify(
            res,
            version,
            &req.ctx,
            ns,
            &name,
            Part::Finalize,
            move |mut current: Value| {
                if let Some(spec) = current.get_mut("spec").and_then(Value::as_object_mut) {
                    spec.insert("finalizers".into(), finalizers.clone());
                } else if let Some(m) = current.as_object_mut() {
                    m.insert("spec".into(), json!({"finalizers": finalizers.clone()}));
                }
                Ok(current)
            },
        )
        .await?;
    Ok(negotiate::respond(200, &stored, out, req.headers, &[]))
}
