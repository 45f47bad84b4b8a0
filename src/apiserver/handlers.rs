//! The REST verbs on resources: get, list, watch, create, update, patch, delete and
//! deletecollection, plus the status subresource — each a thin translation between
//! HTTP (query, body, media types) and the generic store.
//!
//! Invariant: handlers decide nothing about data; they parse, call the store once,
//! and encode the answer (or the store's error) in the negotiated form.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{json, Value};

use super::negotiate::{self, BodyType, IncludeObject, Output};
use super::query::{body_dry_run, delete_options_body, Query};
use super::request_info::RequestInfo;
use super::status::ApiError;
use super::{patch, table};
use crate::registry::store::{Api, Ctx, ListPage, Part, WatchEvent, BOOKMARK_INTERVAL};
use crate::registry::{meta, Resource};

/// Everything a verb handler needs about the request.
pub struct Request<'a> {
    pub info: &'a RequestInfo,
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    pub query: &'a Query,
    pub body: bytes::Bytes,
    pub ctx: Ctx,
    pub shutdown: crate::server::Shutdown,
}

fn list_meta(page: &ListPage) -> Value {
    let mut m = json!({"resourceVersion": page.resource_version.to_string()});
    if !page.continue_token.is_empty() {
        m["continue"] = json!(page.continue_token);
    }
    if let Some(r) = page.remaining {
        if r > 0 {
            m["remainingItemCount"] = json!(r);
        }
    }
    m
}

fn namespace_of<'a>(res: &Resource, info: &'a RequestInfo) -> Option<&'a str> {
    (res.namespaced && !info.namespace.is_empty()).then_some(info.namespace.as_str())
}

/// Encodes one object in the negotiated form.
fn object_response(
    code: u16,
    obj: &Value,
    res: &Resource,
    out: &Output,
    req: &Request<'_>,
) -> Response {
    let warnings = req.ctx.take_warnings();
    match out {
        Output::Table { include_object } => {
            let rv = meta::resource_version(obj).to_owned();
            let t = table::table(
                res,
                std::slice::from_ref(obj),
                json!({"resourceVersion": rv}),
                *include_object,
            );
            negotiate::respond(code, &t, out, req.headers, &warnings)
        }
        Output::PartialMetadata => {
            negotiate::respond(code, &table::partial(obj), out, req.headers, &warnings)
        }
        _ => negotiate::respond(code, obj, out, req.headers, &warnings),
    }
}

/// Dispatches a resource request to its verb.
pub async fn serve(
    server: &super::ApiServer,
    res: Arc<Resource>,
    mut req: Request<'_>,
) -> Result<Response, ApiError> {
    let api = &server.api;
    let info = req.info;
    let version = info.api_version.clone();
    let out = negotiate::output(req.headers, req.query.get("includeObject"))?;
    let ns = namespace_of(&res, info).map(str::to_owned);
    let ns = ns.as_deref();
    if res.namespaced
        && info.namespace.is_empty()
        && !matches!(info.verb.as_str(), "list" | "watch")
    {
        return Err(ApiError::not_found_path());
    }
    let sub = info.subresource.as_str();
    if !sub.is_empty() && !res.has_subresource(sub) {
        return Err(ApiError::not_found_path());
    }
    let part = if sub == "status" {
        Part::Status
    } else {
        Part::Main
    };
    let verb_allowed = match sub {
        "" => res.has_verb(&info.verb),
        "status" => matches!(info.verb.as_str(), "get" | "update" | "patch"),
        _ => true,
    };
    if !verb_allowed {
        return Err(ApiError::method_not_allowed(req.method.as_str()));
    }
    if !sub.is_empty() && sub != "status" {
        return super::subresources::serve(server, res, &version, ns, req, &out).await;
    }
    if let Some(resp) = super::reviews::serve(server, &res, &req, &out).await {
        return resp;
    }
    match info.verb.as_str() {
        "get" => {
            let obj = api
                .get(
                    &res,
                    &version,
                    ns,
                    &info.name,
                    req.query.get("resourceVersion").unwrap_or(""),
                )
                .await?;
            Ok(object_response(200, &obj, &res, &out, &req))
        }
        "list" => {
            let opts = req.query.list_options()?;
            let page = api.list(&res, &version, ns, &opts).await?;
            let lm = list_meta(&page);
            let body = match &out {
                Output::Table { include_object } => {
                    table::table(&res, &page.items, lm, *include_object)
                }
                Output::PartialMetadata => table::partial_list(&page.items, lm),
                _ => json!({
                    "kind": format!("{}List", res.kind),
                    "apiVersion": res.api_version(&version),
                    "metadata": lm,
                    "items": page.items,
                }),
            };
            Ok(negotiate::respond(200, &body, &out, req.headers, &[]))
        }
        "watch" => watch(api, res, version, ns.map(str::to_owned), req, out).await,
        "create" => {
            let ty = negotiate::body_type(req.headers)?;
            let body = negotiate::parse_body(&req.body, ty)?;
            let obj = api.admit_body(&res, &version, &req.ctx, body)?;
            let created = api.create(&res, &version, &req.ctx, ns, obj).await?;
            Ok(object_response(201, &created, &res, &out, &req))
        }
        "update" => {
            let ty = negotiate::body_type(req.headers)?;
            let body = negotiate::parse_body(&req.body, ty)?;
            let obj = api.admit_body(&res, &version, &req.ctx, body)?;
            let (stored, created) = api
                .update(&res, &version, &req.ctx, ns, &info.name, obj, part)
                .await?;
            Ok(object_response(
                if created { 201 } else { 200 },
                &stored,
                &res,
                &out,
                &req,
            ))
        }
        "patch" => {
            let ty = negotiate::patch_type(req.headers)?;
            if req.body.len() > negotiate::MAX_BODY {
                return Err(ApiError::too_large(
                    "Request entity too large: limit is 3145728",
                ));
            }
            let stored = patch::patch(api, &res, &version, &req, ns, part, ty).await?;
            Ok(object_response(200, &stored, &res, &out, &req))
        }
        "delete" => {
            let mut opts = req.query.delete_options()?;
            if !req.body.is_empty() {
                let body = negotiate::parse_body(&req.body, BodyType::Json)?;
                opts = delete_options_body(opts, &body);
                req.ctx.dry_run |= body_dry_run(&body)?;
            }
            let (obj, gone) = api
                .delete(&res, &version, &req.ctx, ns, &info.name, &opts)
                .await?;
            // Upstream answers 202 for a kept object only after `orphanDependents:
            // false` (kept for compatibility); a terminating pod or namespace is 200.
            let accepted = !gone && opts.orphan_dependents == Some(false);
            Ok(object_response(
                if accepted { 202 } else { 200 },
                &obj,
                &res,
                &out,
                &req,
            ))
        }
        "deletecollection" => {
            let list = req.query.list_options()?;
            let mut opts = req.query.delete_options()?;
            if !req.body.is_empty() {
                let body = negotiate::parse_body(&req.body, BodyType::Json)?;
                opts = delete_options_body(opts, &body);
                req.ctx.dry_run |= body_dry_run(&body)?;
            }
            let page = api
                .delete_collection(&res, &version, &req.ctx, ns, &list, &opts)
                .await?;
            let body = json!({
                "kind": format!("{}List", res.kind),
                "apiVersion": res.api_version(&version),
                "metadata": {"resourceVersion": page.resource_version.to_string()},
                "items": page.items,
            });
            Ok(negotiate::respond(
                200,
                &body,
                &out,
                req.headers,
                &req.ctx.take_warnings(),
            ))
        }
        _ => Err(ApiError::method_not_allowed(req.method.as_str())),
    }
}

/// Watch: a chunked stream of `{"type": ..., "object": ...}` lines, or of
/// length-prefixed protobuf WatchEvents when protobuf is negotiated.
async fn watch(
    api: &Api,
    res: Arc<Resource>,
    version: String,
    ns: Option<String>,
    req: Request<'_>,
    out: Output,
) -> Result<Response, ApiError> {
    let opts = req.query.list_options()?;
    let name = (!req.info.name.is_empty()).then(|| req.info.name.clone());
    let bookmarks = req.query.flag("allowWatchBookmarks")?;
    let send_initial = req.query.opt_flag("sendInitialEvents")?;
    if send_initial == Some(true) && opts.resource_version_match != "NotOlderThan" {
        return Err(ApiError::invalid(
            "ListOptions",
            "meta.k8s.io",
            "",
            vec![crate::apiserver::status::forbidden(
                "resourceVersionMatch",
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            )],
        ));
    }
    let timeout = req
        .query
        .int("timeoutSeconds")?
        .filter(|t| *t > 0)
        .map(|t| Duration::from_secs(t as u64))
        .unwrap_or(Duration::from_secs(1800));
    let proto = negotiate::watch_protobuf(&out, &res.api_version(&version), res.kind)?
        .then(|| res.api_version(&version));
    let is_proto = proto.is_some();
    let stream = api
        .watch(
            res.clone(),
            version.clone(),
            ns,
            name,
            opts,
            send_initial,
            bookmarks,
        )
        .await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(64);
    let yaml = out == Output::Yaml;
    let table_out = match &out {
        Output::Table { include_object } => Some(*include_object),
        _ => None,
    };
    let mut shutdown = req.shutdown.clone();
    tokio::spawn(async move {
        tokio::pin!(stream);
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(BOOKMARK_INTERVAL);
        tick.tick().await;
        let mut last_rv = String::new();
        loop {
            let ev = tokio::select! {
                ev = stream.next() => match ev { Some(ev) => ev, None => break },
                _ = &mut deadline => break,
                _ = shutdown.wait() => break,
                _ = tick.tick() => {
                    if !bookmarks || last_rv.is_empty() { continue; }
                    let Ok(rv) = last_rv.parse::<i64>() else { continue };
                    crate::registry::store::bookmark(&res, &version, rv)
                }
            };
            if ev.kind != "ERROR" {
                last_rv = meta::resource_version(&ev.object).to_owned();
            }
            let is_error = ev.kind == "ERROR";
            let line = encode_event(&res, ev, table_out, yaml, proto.as_deref());
            metrics::counter!("apiserver_watch_events_total", "group" => res.group, "version" => version.clone(), "resource" => res.resource).increment(1);
            if tx.send(Ok(line)).await.is_err() || is_error {
                break;
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let content_type = if is_proto {
        negotiate::protobuf::WATCH_MEDIA_TYPE
    } else if yaml {
        "application/yaml"
    } else {
        "application/json"
    };
    let mut resp = (http::StatusCode::OK, body).into_response();
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache, private"),
    );
    Ok(resp)
}

fn encode_event(
    res: &Resource,
    ev: WatchEvent,
    table_out: Option<IncludeObject>,
    yaml: bool,
    proto_api_version: Option<&str>,
) -> bytes::Bytes {
    if let Some(api_version) = proto_api_version {
        let mut object = ev.object;
        if object.get("kind").is_none() {
            meta::set_type(&mut object, api_version, res.kind);
        }
        return negotiate::protobuf_watch_frame(ev.kind, &object);
    }
    let object = match (table_out, ev.kind) {
        (Some(include), "ADDED" | "MODIFIED" | "DELETED") => {
            let rv = meta::resource_version(&ev.object).to_owned();
            table::table(
                res,
                std::slice::from_ref(&ev.object),
                json!({"resourceVersion": rv}),
                include,
            )
        }
        _ => ev.object,
    };
    let frame = json!({"type": ev.kind, "object": object});
    if yaml {
        let mut s = serde_saphyr::to_string(&frame).unwrap_or_default();
        s.push_str("---\n");
        bytes::Bytes::from(s)
    } else {
        let mut v = serde_json::to_vec(&frame).unwrap_or_default();
        v.push(b'\n');
        bytes::Bytes::from(v)
    }
}
