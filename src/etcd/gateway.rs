//! etcd's JSON gateway on the client port (grpc-gateway conventions as etcd 3.x serves
//! them): POST /v3/kv/range, /v3/kv/put, /v3/kv/deleterange, /v3/kv/txn,
//! /v3/kv/compaction, /v3/lease/grant, /v3/lease/revoke, /v3/lease/timetolive,
//! /v3/maintenance/status, /v3/cluster/member/list and the streaming /v3/watch.
//! Bytes are base64, 64-bit integers are decimal strings, field names are the proto
//! names; defaults are omitted.
//!
//! Invariant: the gateway converts JSON to the same store calls the gRPC services
//! make, so both faces answer alike; a malformed body is a 400 with grpc-gateway's
//! error shape {"error","code","message"}.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;
use serde_json::{json, Map, Value};

use crate::mvcc::{
    self, Compare, CompareResult, CompareTarget, DeleteRangeRequest, KeyRange, PutRequest,
    RangeRequest, RequestOp, ResponseOp, SortOrder, SortTarget, TxnRequest, WatchMsg, WatchSpec,
};
use crate::store::{Header, Store, StoreError};

pub fn router(store: Store) -> axum::Router {
    axum::Router::new()
        .route("/v3/kv/range", post(range))
        .route("/v3/kv/put", post(put))
        .route("/v3/kv/deleterange", post(delete_range))
        .route("/v3/kv/txn", post(txn))
        .route("/v3/kv/compaction", post(compaction))
        .route("/v3/lease/grant", post(lease_grant))
        .route("/v3/lease/revoke", post(lease_revoke))
        .route("/v3/kv/lease/revoke", post(lease_revoke))
        .route("/v3/lease/timetolive", post(lease_ttl))
        .route("/v3/kv/lease/timetolive", post(lease_ttl))
        .route("/v3/maintenance/status", post(status))
        .route("/v3/cluster/member/list", post(member_list))
        .route("/v3/watch", post(watch))
        .with_state(store)
}

/// A gateway error: HTTP status plus grpc-gateway's JSON body.
struct GwError {
    http: StatusCode,
    grpc: i32,
    message: String,
}

impl IntoResponse for GwError {
    fn into_response(self) -> Response {
        (
            self.http,
            axum::Json(json!({"error": self.message, "code": self.grpc, "message": self.message})),
        )
            .into_response()
    }
}

fn bad(message: impl Into<String>) -> GwError {
    GwError {
        http: StatusCode::BAD_REQUEST,
        grpc: 3,
        message: message.into(),
    }
}

fn store_err(e: StoreError) -> GwError {
    let status = super::error::status(e);
    let http = match status.code() {
        tonic::Code::InvalidArgument
        | tonic::Code::OutOfRange
        | tonic::Code::FailedPrecondition => StatusCode::BAD_REQUEST,
        tonic::Code::NotFound => StatusCode::NOT_FOUND,
        tonic::Code::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        tonic::Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    GwError {
        http,
        grpc: status.code() as i32,
        message: status.message().to_owned(),
    }
}

type GwResult = Result<axum::Json<Value>, GwError>;

fn parse(body: &Bytes) -> Result<Value, GwError> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| bad(format!("invalid character in request body: {e}")))?;
    if !v.is_object() {
        return Err(bad("request body must be a JSON object"));
    }
    Ok(v)
}

fn bytes_field(v: &Value, name: &str) -> Result<bytes::Bytes, GwError> {
    match v.get(name) {
        None | Some(Value::Null) => Ok(bytes::Bytes::new()),
        Some(Value::String(s)) => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map(bytes::Bytes::from)
            .map_err(|_| bad(format!("field {name}: illegal base64 data"))),
        Some(_) => Err(bad(format!("field {name} must be a base64 string"))),
    }
}

fn int_field(v: &Value, name: &str) -> Result<i64, GwError> {
    match v.get(name) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| bad(format!("field {name} is not an integer"))),
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| bad(format!("field {name} is not an integer"))),
        Some(_) => Err(bad(format!("field {name} must be an integer"))),
    }
}

fn bool_field(v: &Value, name: &str) -> bool {
    v.get(name).and_then(Value::as_bool).unwrap_or(false)
}

fn b64(b: &[u8]) -> Value {
    json!(base64::engine::general_purpose::STANDARD.encode(b))
}

/// Inserts `value` unless it is a default (proto3 JSON omits defaults).
fn put_nonzero(m: &mut Map<String, Value>, key: &str, value: i64) {
    if value != 0 {
        m.insert(key.to_owned(), json!(value.to_string()));
    }
}

fn header_json(h: Header) -> Value {
    json!({
        "cluster_id": h.cluster_id.to_string(),
        "member_id": h.member_id.to_string(),
        "revision": h.revision.to_string(),
        "raft_term": h.raft_term.to_string(),
    })
}

fn kv_json(kv: &mvcc::KeyValue) -> Value {
    let mut m = Map::new();
    m.insert("key".into(), b64(&kv.key));
    put_nonzero(&mut m, "create_revision", kv.create_revision);
    put_nonzero(&mut m, "mod_revision", kv.mod_revision);
    put_nonzero(&mut m, "version", kv.version);
    if !kv.value.is_empty() {
        m.insert("value".into(), b64(&kv.value));
    }
    put_nonzero(&mut m, "lease", kv.lease);
    Value::Object(m)
}

fn range_req(v: &Value) -> Result<RangeRequest, GwError> {
    let sort_order = match v
        .get("sort_order")
        .and_then(Value::as_str)
        .unwrap_or("NONE")
    {
        "NONE" => SortOrder::None,
        "ASCEND" => SortOrder::Ascend,
        "DESCEND" => SortOrder::Descend,
        other => return Err(bad(format!("unknown sort_order {other:?}"))),
    };
    let sort_target = match v
        .get("sort_target")
        .and_then(Value::as_str)
        .unwrap_or("KEY")
    {
        "KEY" => SortTarget::Key,
        "VERSION" => SortTarget::Version,
        "CREATE" => SortTarget::Create,
        "MOD" => SortTarget::Mod,
        "VALUE" => SortTarget::Value,
        other => return Err(bad(format!("unknown sort_target {other:?}"))),
    };
    Ok(RangeRequest {
        range: KeyRange::new(bytes_field(v, "key")?, bytes_field(v, "range_end")?),
        limit: int_field(v, "limit")?,
        revision: int_field(v, "revision")?,
        sort_order,
        sort_target,
        serializable: bool_field(v, "serializable"),
        keys_only: bool_field(v, "keys_only"),
        count_only: bool_field(v, "count_only"),
        min_mod_revision: int_field(v, "min_mod_revision")?,
        max_mod_revision: int_field(v, "max_mod_revision")?,
        min_create_revision: int_field(v, "min_create_revision")?,
        max_create_revision: int_field(v, "max_create_revision")?,
    })
}

fn range_resp_json(r: &mvcc::RangeResponse) -> Map<String, Value> {
    let mut m = Map::new();
    if !r.kvs.is_empty() {
        m.insert(
            "kvs".into(),
            Value::Array(r.kvs.iter().map(kv_json).collect()),
        );
    }
    if r.more {
        m.insert("more".into(), json!(true));
    }
    put_nonzero(&mut m, "count", r.count);
    m
}

fn put_req(v: &Value) -> Result<PutRequest, GwError> {
    Ok(PutRequest {
        key: bytes_field(v, "key")?,
        value: bytes_field(v, "value")?,
        lease: int_field(v, "lease")?,
        prev_kv: bool_field(v, "prev_kv"),
        ignore_value: bool_field(v, "ignore_value"),
        ignore_lease: bool_field(v, "ignore_lease"),
    })
}

fn delete_req(v: &Value) -> Result<DeleteRangeRequest, GwError> {
    Ok(DeleteRangeRequest {
        range: KeyRange::new(bytes_field(v, "key")?, bytes_field(v, "range_end")?),
        prev_kv: bool_field(v, "prev_kv"),
    })
}

fn compare(v: &Value) -> Result<Compare, GwError> {
    let result = match v.get("result").and_then(Value::as_str).unwrap_or("EQUAL") {
        "EQUAL" => CompareResult::Equal,
        "GREATER" => CompareResult::Greater,
        "LESS" => CompareResult::Less,
        "NOT_EQUAL" => CompareResult::NotEqual,
        other => return Err(bad(format!("unknown compare result {other:?}"))),
    };
    let target = match v.get("target").and_then(Value::as_str).unwrap_or("VERSION") {
        "VERSION" => CompareTarget::Version(int_field(v, "version")?),
        "CREATE" => CompareTarget::Create(int_field(v, "create_revision")?),
        "MOD" => CompareTarget::Mod(int_field(v, "mod_revision")?),
        "VALUE" => CompareTarget::Value(bytes_field(v, "value")?),
        "LEASE" => CompareTarget::Lease(int_field(v, "lease")?),
        other => return Err(bad(format!("unknown compare target {other:?}"))),
    };
    Ok(Compare {
        result,
        target,
        range: KeyRange::new(bytes_field(v, "key")?, bytes_field(v, "range_end")?),
    })
}

fn ops(v: &Value, name: &str) -> Result<Vec<RequestOp>, GwError> {
    let mut out = Vec::new();
    for op in v.get(name).and_then(Value::as_array).into_iter().flatten() {
        out.push(if let Some(r) = op.get("request_range") {
            RequestOp::Range(range_req(r)?)
        } else if let Some(p) = op.get("request_put") {
            RequestOp::Put(put_req(p)?)
        } else if let Some(d) = op.get("request_delete_range") {
            RequestOp::DeleteRange(delete_req(d)?)
        } else if let Some(t) = op.get("request_txn") {
            RequestOp::Txn(txn_req(t)?)
        } else {
            return Err(bad("request op is empty"));
        });
    }
    Ok(out)
}

fn txn_req(v: &Value) -> Result<TxnRequest, GwError> {
    Ok(TxnRequest {
        compare: v
            .get("compare")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(compare)
            .collect::<Result<_, _>>()?,
        success: ops(v, "success")?,
        failure: ops(v, "failure")?,
    })
}

fn txn_resp_json(h: Header, r: &mvcc::TxnResponse) -> Value {
    let responses: Vec<Value> = r
        .responses
        .iter()
        .map(|op| match op {
            ResponseOp::Range(rr) => {
                let mut m = range_resp_json(rr);
                m.insert("header".into(), header_json(h));
                json!({"response_range": m})
            }
            ResponseOp::Put(p) => {
                let mut m = Map::new();
                m.insert("header".into(), header_json(h));
                if let Some(prev) = &p.prev_kv {
                    m.insert("prev_kv".into(), kv_json(prev));
                }
                json!({"response_put": m})
            }
            ResponseOp::DeleteRange(d) => {
                let mut m = Map::new();
                m.insert("header".into(), header_json(h));
                put_nonzero(&mut m, "deleted", d.deleted);
                json!({"response_delete_range": m})
            }
            ResponseOp::Txn(t) => json!({"response_txn": txn_resp_json(h, t)}),
        })
        .collect();
    let mut m = Map::new();
    m.insert("header".into(), header_json(h));
    if r.succeeded {
        m.insert("succeeded".into(), json!(true));
    }
    if !responses.is_empty() {
        m.insert("responses".into(), Value::Array(responses));
    }
    Value::Object(m)
}

async fn range(State(store): State<Store>, body: Bytes) -> GwResult {
    let v = parse(&body)?;
    let (h, r) = store.range(range_req(&v)?).await.map_err(store_err)?;
    let mut m = range_resp_json(&r);
    m.insert("header".into(), header_json(h));
    Ok(axum::Json(Value::Object(m)))
}

async fn put(State(store): State<Store>, body: Bytes) -> GwResult {
    let v = parse(&body)?;
    let (h, r) = store.put(put_req(&v)?).await.map_err(store_err)?;
    let mut m = Map::new();
    m.insert("header".into(), header_json(h));
    if let Some(prev) = &r.prev_kv {
        m.insert("prev_kv".into(), kv_json(prev));
    }
    Ok(axum::Json(Value::Object(m)))
}

async fn delete_range(State(store): State<Store>, body: Bytes) -> GwResult {
    let v = parse(&body)?;
    let (h, r) = store
        .delete_range(delete_req(&v)?)
        .await
        .map_err(store_err)?;
    let mut m = Map::new();
    m.insert("header".into(), header_json(h));
    put_nonzero(&mut m, "deleted", r.deleted);
    if !r.prev_kvs.is_empty() {
        m.insert(
            "prev_kvs".into(),
            Value::Array(r.prev_kvs.iter().map(kv_json).collect()),
        );
    }
    Ok(axum::Json(Value::Object(m)))
}

async fn txn(State(store): State<Store>, body: Bytes) -> GwResult {
    let v = parse(&body)?;
    let (h, r) = store.txn(txn_req(&v)?).await.map_err(store_err)?;
    Ok(axum::Json(txn_resp_json(h, &r)))
}

async fn compaction(State(store): State<Store>, body: Bytes) -> GwResult {
    let v = parse(&body)?;
    let h = store
        .compact(int_field(&v, "revision")?)
        .await
        .map_err(store_err)?;
    Ok(axum::Json(json!({"header": header_json(h)})))
}

async fn lease_grant(State(store): State<Store>, body: Bytes) -> GwResult {
    let v = parse(&body)?;
    let (h, id, ttl) = store
        .lease_grant(int_field(&v, "TTL")?, int_field(&v, "ID")?)
        .await
        .map_err(store_err)?;
    Ok(axum::Json(
        json!({"header": header_json(h), "ID": id.to_string(), "TTL": ttl.to_string()}),
    ))
}

async fn lease_revoke(State(store): State<Store>, body: Bytes) -> GwResult {
    let v = parse(&body)?;
    let h = store
        .lease_revoke(int_field(&v, "ID")?)
        .await
        .map_err(store_err)?;
    Ok(axum::Json(json!({"header": header_json(h)})))
}

async fn lease_ttl(State(store): State<Store>, body: Bytes) -> GwResult {
    let v = parse(&body)?;
    let id = int_field(&v, "ID")?;
    let (h, ttl, granted, keys) = store
        .lease_time_to_live(id, bool_field(&v, "keys"))
        .await
        .map_err(store_err)?;
    let mut m = Map::new();
    m.insert("header".into(), header_json(h));
    m.insert("ID".into(), json!(id.to_string()));
    m.insert("TTL".into(), json!(ttl.to_string()));
    put_nonzero(&mut m, "grantedTTL", granted);
    if !keys.is_empty() {
        m.insert(
            "keys".into(),
            Value::Array(keys.iter().map(|k| b64(k)).collect()),
        );
    }
    Ok(axum::Json(Value::Object(m)))
}

async fn status(State(store): State<Store>) -> GwResult {
    let s = store.status();
    Ok(axum::Json(json!({
        "header": header_json(s.header),
        "version": s.version,
        "dbSize": s.db_size.to_string(),
        "leader": s.leader.to_string(),
        "raftIndex": s.raft_index.to_string(),
        "raftTerm": s.raft_term.to_string(),
        "raftAppliedIndex": s.raft_applied_index.to_string(),
        "dbSizeInUse": s.db_size_in_use.to_string(),
    })))
}

async fn member_list(State(store): State<Store>) -> GwResult {
    let members: Vec<Value> = store
        .members()
        .iter()
        .map(|m| {
            let mut o = json!({
                "ID": m.id.to_string(),
                "name": m.member.name,
                "peerURLs": m.member.peer_urls,
                "clientURLs": m.member.client_urls,
            });
            if m.is_learner {
                o["isLearner"] = json!(true);
            }
            o
        })
        .collect();
    Ok(axum::Json(
        json!({"header": header_json(store.header()), "members": members}),
    ))
}

/// POST /v3/watch with one `create_request`: a stream of `{"result": WatchResponse}`
/// JSON lines (the first one `created`), until the client goes away.
async fn watch(State(store): State<Store>, body: Bytes) -> Result<Response, GwError> {
    let v = parse(&body)?;
    let c = v
        .get("create_request")
        .ok_or_else(|| bad("the gateway watch takes a create_request"))?;
    let key = bytes_field(c, "key")?;
    let spec = WatchSpec {
        range: KeyRange::new(
            if key.is_empty() {
                bytes::Bytes::from_static(&[0])
            } else {
                key
            },
            bytes_field(c, "range_end")?,
        ),
        start_revision: int_field(c, "start_revision")?,
        filter_put: false,
        filter_delete: false,
    };
    let prev_kv = bool_field(c, "prev_kv");
    let (hub_tx, mut hub_rx) = tokio::sync::mpsc::channel::<WatchMsg>(256);
    let handle = store.hub().watch(spec, 0, hub_tx);
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    let created = json!({"result": {"header": header_json(store.header()), "created": true}});
    tokio::spawn(async move {
        let _handle = handle;
        let line = |v: Value| Bytes::from(format!("{v}\n"));
        if tx.send(Ok(line(created))).await.is_err() {
            return;
        }
        while let Some(msg) = hub_rx.recv().await {
            let out = match msg {
                WatchMsg::Events {
                    revision, events, ..
                } => {
                    let evs: Vec<Value> = events
                        .iter()
                        .map(|e| {
                            let mut ev = json!({"kv": kv_json(&e.kv)});
                            if e.kind == mvcc::EventKind::Delete {
                                ev["type"] = json!("DELETE");
                            }
                            if prev_kv {
                                if let Some(p) = &e.prev_kv {
                                    ev["prev_kv"] = kv_json(p);
                                }
                            }
                            ev
                        })
                        .collect();
                    json!({"result": {"header": header_json(store.header_at(revision)), "events": evs}})
                }
                WatchMsg::Progress { revision } => {
                    json!({"result": {"header": header_json(store.header_at(revision))}})
                }
                WatchMsg::Compacted {
                    compact_revision, ..
                } => json!({"result": {
                    "header": header_json(store.header()),
                    "canceled": true,
                    "compact_revision": compact_revision.to_string(),
                    "cancel_reason": "etcdserver: mvcc: required revision has been compacted"
                }}),
            };
            if tx.send(Ok(line(out))).await.is_err() {
                return;
            }
        }
    });
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    Ok((
        StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}
