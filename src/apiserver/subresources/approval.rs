//! A CertificateSigningRequest's `approval` subresource: reads the request, or writes
//! its status.conditions (Approved/Denied) — what `kubectl certificate approve|deny`
//! PUTs.
//!
//! Invariant: a write changes only status.conditions, through the generic store's
//! read-modify-write with the status hooks (so the CSR strategy's condition rules and
//! timestamps apply), and honours the body's resourceVersion as a precondition.

use axum::response::Response;
use serde_json::{json, Value};

use crate::apiserver::handlers::Request;
use crate::apiserver::negotiate::{self, Output};
use crate::apiserver::patch;
use crate::apiserver::status::ApiError;
use crate::registry::store::{Api, Part};
use crate::registry::{meta, Resource};

pub async fn serve(
    api: &Api,
    res: &Resource,
    version: &str,
    req: Request<'_>,
    out: &Output,
) -> Result<Response, ApiError> {
    let name = req.info.name.clone();
    match req.info.verb.as_str() {
        "get" => {
            let obj = api.get(res, version, None, &name, "").await?;
            Ok(negotiate::respond(200, &obj, out, req.headers, &[]))
        }
        "update" => {
            let ty = negotiate::body_type(req.headers)?;
            let body = negotiate::parse_body(&req.body, ty)?;
            let body = api.admit_body(res, version, &req.ctx, body)?;
            if meta::name(&body) != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({}) does not match the name on the URL ({name})",
                    meta::name(&body)
                )));
            }
            let pinned = meta::resource_version(&body).to_owned();
            let conditions = body
                .pointer("/status/conditions")
                .cloned()
                .unwrap_or(Value::Null);
            let stored = api
                .modify(
                    res,
                    version,
                    &req.ctx,
                    None,
                    &name,
                    Part::Approval,
                    move |mut current: Value| {
                        if !pinned.is_empty() {
                            meta::set(&mut current, "resourceVersion", json!(pinned));
                        }
                        if let Some(m) = current.as_object_mut() {
                            let status = m.entry("status").or_insert_with(|| json!({}));
                            if !status.is_object() {
                                *status = json!({});
                            }
                            if let Some(s) = status.as_object_mut() {
                                match &conditions {
                                    Value::Null => s.remove("conditions"),
                                    c => s.insert("conditions".into(), c.clone()),
                                };
                            }
                        }
                        Ok(current)
                    },
                )
                .await?;
            Ok(negotiate::respond(
                200,
                &stored,
                out,
                req.headers,
                &req.ctx.take_warnings(),
            ))
        }
        "patch" => {
            let ty = negotiate::patch_type(req.headers)?;
            let stored = patch::patch(api, res, version, &req, None, Part::Approval, ty).await?;
            Ok(negotiate::respond(200, &stored, out, req.headers, &[]))
        }
        _ => Err(ApiError::method_not_allowed(req.method.as_str())),
    }
}
