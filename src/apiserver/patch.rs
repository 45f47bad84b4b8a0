//! PATCH: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge patch
//! (Kubernetes' list-aware merge, `strategic.rs`) and apply patches, each applied to
//! the current object inside the store's read-modify-write loop.
//!
//! Invariant: the patched object goes through the same type check and strategy hooks
//! as a PUT; a patch that fails leaves the stored object untouched.

use serde_json::Value;

use super::handlers::Request;
use super::managed;
use super::negotiate::{self, BodyType};
use super::status::{forbidden, ApiError, Subject};
use super::strategic;
use crate::registry::store::{Api, Part};
use crate::registry::Resource;

/// RFC 7386 merge patch.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// An apply configuration is an object, not a patch: no strategic-merge directives
/// (`$patch`, `$retainKeys`, …), and no managedFields of its own (upstream's answers).
fn check_apply_body(doc: &Value) -> Result<(), ApiError> {
    fn directive(v: &Value, path: &str) -> Option<String> {
        match v {
            Value::Object(m) => m.iter().find_map(|(k, v)| {
                let here = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if k.starts_with('$') {
                    Some(here)
                } else {
                    directive(v, &here)
                }
            }),
            Value::Array(items) => items.iter().find_map(|i| directive(i, path)),
            _ => None,
        }
    }
    if let Some(field) = directive(doc, "") {
        return Err(ApiError::bad_request(format!(
            "strict decoding error: unknown field \"{field}\""
        )));
    }
    if doc
        .pointer("/metadata/managedFields")
        .is_some_and(|m| !m.is_null())
    {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    Ok(())
}

/// Applies a PATCH request; returns the stored object.
pub async fn patch(
    api: &Api,
    res: &Resource,
    version: &str,
    req: &Request<'_>,
    ns: Option<&str>,
    part: Part,
    ty: BodyType,
) -> Result<Value, ApiError> {
    let name = req.info.name.clone();
    let patch_doc: Value = match ty {
        BodyType::ApplyPatch => negotiate::parse_body(&req.body, BodyType::Yaml)?,
        _ => negotiate::parse_body(&req.body, BodyType::Json)?,
    };
    let json_patch: Option<json_patch::Patch> = match ty {
        BodyType::JsonPatch => Some(serde_json::from_value(patch_doc.clone()).map_err(|e| {
            ApiError::bad_request(format!(
                "the server rejected our request due to an error in our request: {e}"
            ))
        })?),
        _ => None,
    };
    if matches!(
        ty,
        BodyType::MergePatch | BodyType::StrategicMergePatch | BodyType::ApplyPatch
    ) && !patch_doc.is_object()
    {
        return Err(ApiError::bad_request("the patch is not a JSON object"));
    }
    if req.ctx.force && ty != BodyType::ApplyPatch {
        return Err(ApiError::invalid(
            "PatchOptions",
            "meta.k8s.io",
            "",
            vec![forbidden(
                "force",
                "may not be specified for non-apply patch",
            )],
        ));
    }
    if ty == BodyType::ApplyPatch {
        check_apply_body(&patch_doc)?;
    }
    if ty == BodyType::ApplyPatch && part == Part::Main {
        // Server-side apply of an object that does not exist creates it.
        match api.get(res, version, ns, &name, "").await {
            Err(e) if e.code == 404 => {
                let mut obj = api.admit_body(res, version, &req.ctx, patch_doc.clone())?;
                managed::record_apply_create(
                    &mut obj,
                    &req.ctx.field_manager,
                    &res.api_version(version),
                    managed::Kind {
                        group: res.group,
                        version,
                        kind: res.kind,
                    },
                );
                match api.create(res, version, &req.ctx, ns, obj).await {
                    // Created meanwhile by another writer: apply to that.
                    Err(e) if e.reason == "AlreadyExists" => {}
                    other => return other,
                }
            }
            Err(e) => return Err(e),
            Ok(_) => {}
        }
    }
    let kind = res.kind;
    let ctx = &req.ctx;
    api.modify(res, version, ctx, ns, &name, part, |current| {
        let mut target = current;
        // A patch sees the current resourceVersion (a JSON patch may `test` it), and
        // pins the write to a revision only if it sets another one.
        let read_at = crate::registry::meta::resource_version(&target).to_owned();
        match ty {
            BodyType::JsonPatch => {
                let p = json_patch
                    .as_ref()
                    .ok_or_else(|| ApiError::internal("missing JSON patch"))?;
                json_patch::patch(&mut target, p).map_err(|e| {
                    ApiError::invalid(
                        kind,
                        res.group,
                        &name,
                        vec![crate::apiserver::status::Cause {
                            reason: "FieldValueInvalid",
                            message: e.to_string(),
                            field: String::new(),
                        }],
                    )
                })?;
            }
            BodyType::MergePatch => merge_patch(&mut target, &patch_doc),
            BodyType::StrategicMergePatch => {
                strategic::apply(&mut target, &patch_doc, res.group, version, res.kind)
                    .map_err(ApiError::bad_request)?;
            }
            BodyType::ApplyPatch => {
                let kind = managed::Kind {
                    group: res.group,
                    version,
                    kind: res.kind,
                };
                managed::apply(
                    &mut target,
                    &patch_doc,
                    &ctx.field_manager,
                    &res.api_version(version),
                    ctx.force,
                    kind,
                )
                .map_err(|e| match e {
                    managed::ApplyError::Invalid(why) => ApiError::bad_request(why),
                    managed::ApplyError::Conflicts(list) => {
                        let list: Vec<(String, String)> =
                            list.into_iter().map(|c| (c.manager, c.field)).collect();
                        ApiError::apply_conflict(
                            &Subject::new(res.group, res.resource, &name),
                            &list,
                        )
                    }
                })?;
            }
            _ => {
                return Err(ApiError::unsupported_media_type(
                    "",
                    negotiate::SUPPORTED_PATCHES,
                ))
            }
        }
        if crate::registry::meta::resource_version(&target) == read_at {
            crate::registry::meta::remove(&mut target, "resourceVersion");
        }
        api.admit_body(res, version, ctx, target)
    })
    .await
}
