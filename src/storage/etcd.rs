//! `Storage` on external etcd v3 endpoints (`--etcd-servers`): real etcd, or another
//! kuberaft's client port. The same transactions kube-apiserver sends: create =
//! `Txn(CreateRevision(key) == 0 → Put, else Get)`, update =
//! `Txn(ModRevision(key) == rv → Put, else Get)`, delete likewise.
//!
//! Invariants: one gRPC call per operation (atomic on the server); requests rotate
//! over the endpoints and move to the next one when an endpoint is unavailable; a
//! watch is one etcd watch with `prev_kv`, its compaction answered as `Compacted`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tonic::transport::{Channel, Endpoint};

use super::{
    Event, EventType, Kv, ListResult, ReadMode, Storage, StorageError, WatchItem, WatchStream,
};
use crate::etcd::proto::etcdserverpb as pb;
use crate::etcd::proto::mvccpb;
use crate::tls::Connector;

/// The external-etcd backend.
#[derive(Clone)]
pub struct Etcd {
    channels: Arc<Vec<Channel>>,
    next: Arc<AtomicUsize>,
    timeout: Duration,
}

#[derive(Clone, Debug)]
pub struct EtcdOptions {
    pub endpoints: Vec<String>,
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub timeout: Duration,
}

fn map_status(s: tonic::Status) -> StorageError {
    let msg = s.message().to_owned();
    if msg.contains("required revision has been compacted") {
        return StorageError::Compacted {
            compact_revision: 0,
        };
    }
    if msg.contains("future revision") {
        return StorageError::FutureRevision;
    }
    if msg.contains("request is too large") {
        return StorageError::RequestTooLarge;
    }
    match s.code() {
        tonic::Code::Unavailable | tonic::Code::Cancelled | tonic::Code::Unknown => {
            StorageError::Unavailable(msg)
        }
        tonic::Code::DeadlineExceeded => StorageError::Timeout(msg),
        _ => StorageError::Internal(msg),
    }
}

fn to_kv(kv: mvccpb::KeyValue) -> Kv {
    Kv {
        key: String::from_utf8_lossy(&kv.key).into_owned(),
        value: kv.value,
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        lease: kv.lease,
    }
}

fn key_bytes(key: &str) -> Bytes {
    Bytes::copy_from_slice(key.as_bytes())
}

fn get_op(key: &str) -> pb::RequestOp {
    pb::RequestOp {
        request: Some(pb::request_op::Request::RequestRange(pb::RangeRequest {
            key: key_bytes(key),
            ..Default::default()
        })),
    }
}

fn compare(
    key: &str,
    target: pb::compare::CompareTarget,
    union: pb::compare::TargetUnion,
    result: pb::compare::CompareResult,
) -> pb::Compare {
    pb::Compare {
        result: result as i32,
        target: target as i32,
        key: key_bytes(key),
        target_union: Some(union),
        range_end: Bytes::new(),
    }
}

fn current_of(resp: &pb::TxnResponse) -> Option<Kv> {
    match resp.responses.first().and_then(|r| r.response.as_ref()) {
        Some(pb::response_op::Response::ResponseRange(r)) => r.kvs.first().cloned().map(to_kv),
        _ => None,
    }
}

fn prefix_end(prefix: &str) -> Bytes {
    crate::mvcc::prefix_end(prefix.as_bytes())
}

impl Etcd {
    /// Connects lazily to every endpoint.
    pub fn new(opts: EtcdOptions) -> Result<Etcd, StorageError> {
        if opts.endpoints.is_empty() {
            return Err(StorageError::Internal("no etcd endpoints".into()));
        }
        let mut channels = Vec::new();
        for ep in &opts.endpoints {
            let url = if ep.contains("://") {
                ep.clone()
            } else {
                format!("http://{ep}")
            };
            let endpoint = Endpoint::from_shared(url.clone())
                .map_err(|e| StorageError::Internal(format!("etcd endpoint {url}: {e}")))?
                .connect_timeout(Duration::from_secs(2))
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(10))
                .keep_alive_timeout(Duration::from_secs(5));
            channels.push(endpoint.connect_with_connector_lazy(Connector::new(opts.tls.clone())));
        }
        Ok(Etcd {
            channels: Arc::new(channels),
            next: Arc::new(AtomicUsize::new(0)),
            timeout: opts.timeout,
        })
    }

    /// Runs `call` on one endpoint after another until one is available.
    async fn with_retry<T, F, Fut>(&self, mut call: F) -> Result<T, StorageError>
    where
        F: FnMut(Channel) -> Fut,
        Fut: std::future::Future<Output = Result<T, tonic::Status>>,
    {
        let n = self.channels.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut last = StorageError::Unavailable("no etcd endpoint answered".into());
        for i in 0..n {
            let ch = self.channels[(start + i) % n].clone();
            match tokio::time::timeout(self.timeout, call(ch)).await {
                Err(_) => last = StorageError::Timeout("etcd request timed out".into()),
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(s)) => {
                    let e = map_status(s);
                    // Only an endpoint that could not take the request is retried elsewhere.
                    if !matches!(e, StorageError::Unavailable(_)) {
                        return Err(e);
                    }
                    last = e;
                }
            }
        }
        Err(last)
    }

    async fn range(&self, req: pb::RangeRequest) -> Result<pb::RangeResponse, StorageError> {
        self.with_retry(|ch| {
            let req = req.clone();
            async move {
                pb::kv_client::KvClient::new(ch)
                    .range(req)
                    .await
                    .map(|r| r.into_inner())
            }
        })
        .await
    }

    async fn txn(&self, req: pb::TxnRequest) -> Result<pb::TxnResponse, StorageError> {
        self.with_retry(|ch| {
            let req = req.clone();
            async move {
                pb::kv_client::KvClient::new(ch)
                    .txn(req)
                    .await
                    .map(|r| r.into_inner())
            }
        })
        .await
    }
}

fn read_fields(mode: ReadMode) -> (i64, bool) {
    match mode {
        ReadMode::Consistent => (0, false),
        ReadMode::Exact(rev) => (rev, true),
        ReadMode::Any => (0, true),
    }
}

#[async_trait::async_trait]
impl Storage for Etcd {
    async fn current_revision(&self) -> Result<i64, StorageError> {
        let resp = self
            .range(pb::RangeRequest {
                key: Bytes::from_static(b"/"),
                count_only: true,
                ..Default::default()
            })
            .await?;
        Ok(resp.header.map(|h| h.revision).unwrap_or(0))
    }

    async fn get(&self, key: &str, mode: ReadMode) -> Result<Option<Kv>, StorageError> {
        let (revision, serializable) = read_fields(mode);
        let resp = self
            .range(pb::RangeRequest {
                key: key_bytes(key),
                revision,
                serializable,
                ..Default::default()
            })
            .await?;
        Ok(resp.kvs.into_iter().next().map(to_kv))
    }

    async fn list(
        &self,
        prefix: &str,
        start: &str,
        limit: i64,
        mode: ReadMode,
    ) -> Result<ListResult, StorageError> {
        let (revision, serializable) = read_fields(mode);
        let from = if start.is_empty() || start < prefix {
            prefix
        } else {
            start
        };
        let resp = self
            .range(pb::RangeRequest {
                key: key_bytes(from),
                range_end: prefix_end(prefix),
                limit,
                revision,
                serializable,
                ..Default::default()
            })
            .await?;
        let returned = resp.kvs.len() as i64;
        let header_rev = resp.header.as_ref().map(|h| h.revision).unwrap_or(0);
        Ok(ListResult {
            revision: if revision > 0 { revision } else { header_rev },
            more: resp.more,
            remaining: if resp.more { resp.count - returned } else { 0 },
            kvs: resp.kvs.into_iter().map(to_kv).collect(),
        })
    }

    async fn count(&self, prefix: &str) -> Result<i64, StorageError> {
        let resp = self
            .range(pb::RangeRequest {
                key: key_bytes(prefix),
                range_end: prefix_end(prefix),
                count_only: true,
                ..Default::default()
            })
            .await?;
        Ok(resp.count)
    }

    async fn create(&self, key: &str, value: Bytes, lease: i64) -> Result<Kv, StorageError> {
        use pb::compare::{CompareResult as R, CompareTarget as T, TargetUnion as U};
        let resp = self
            .txn(pb::TxnRequest {
                compare: vec![compare(key, T::Create, U::CreateRevision(0), R::Equal)],
                success: vec![pb::RequestOp {
                    request: Some(pb::request_op::Request::RequestPut(pb::PutRequest {
                        key: key_bytes(key),
                        value: value.clone(),
                        lease,
                        ..Default::default()
                    })),
                }],
                failure: vec![get_op(key)],
            })
            .await?;
        if !resp.succeeded {
            return Err(StorageError::KeyExists {
                key: key.to_owned(),
            });
        }
        let rev = resp.header.map(|h| h.revision).unwrap_or(0);
        Ok(Kv {
            key: key.to_owned(),
            value,
            create_revision: rev,
            mod_revision: rev,
            lease,
        })
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: i64,
        lease: i64,
    ) -> Result<Kv, StorageError> {
        use pb::compare::{CompareResult as R, CompareTarget as T, TargetUnion as U};
        let resp = self
            .txn(pb::TxnRequest {
                compare: vec![compare(key, T::Mod, U::ModRevision(expected), R::Equal)],
                success: vec![pb::RequestOp {
                    request: Some(pb::request_op::Request::RequestPut(pb::PutRequest {
                        key: key_bytes(key),
                        value: value.clone(),
                        lease,
                        prev_kv: true,
                        ..Default::default()
                    })),
                }],
                failure: vec![get_op(key)],
            })
            .await?;
        if !resp.succeeded {
            return Err(StorageError::Conflict {
                key: key.to_owned(),
                current: current_of(&resp),
            });
        }
        let rev = resp.header.as_ref().map(|h| h.revision).unwrap_or(0);
        let create_revision = match resp.responses.first().and_then(|r| r.response.as_ref()) {
            Some(pb::response_op::Response::ResponsePut(p)) => p
                .prev_kv
                .as_ref()
                .map(|kv| kv.create_revision)
                .unwrap_or(rev),
            _ => rev,
        };
        Ok(Kv {
            key: key.to_owned(),
            value,
            create_revision,
            mod_revision: rev,
            lease,
        })
    }

    async fn delete(&self, key: &str, expected: Option<i64>) -> Result<Kv, StorageError> {
        use pb::compare::{CompareResult as R, CompareTarget as T, TargetUnion as U};
        let cmp = match expected {
            Some(rev) => compare(key, T::Mod, U::ModRevision(rev), R::Equal),
            None => compare(key, T::Create, U::CreateRevision(0), R::Greater),
        };
        let resp = self
            .txn(pb::TxnRequest {
                compare: vec![cmp],
                success: vec![pb::RequestOp {
                    request: Some(pb::request_op::Request::RequestDeleteRange(
                        pb::DeleteRangeRequest {
                            key: key_bytes(key),
                            prev_kv: true,
                            ..Default::default()
                        },
                    )),
                }],
                failure: vec![get_op(key)],
            })
            .await?;
        if !resp.succeeded {
            return match current_of(&resp) {
                None => Err(StorageError::NotFound {
                    key: key.to_owned(),
                }),
                current => Err(StorageError::Conflict {
                    key: key.to_owned(),
                    current,
                }),
            };
        }
        let rev = resp.header.as_ref().map(|h| h.revision).unwrap_or(0);
        match resp.responses.into_iter().next().and_then(|r| r.response) {
            Some(pb::response_op::Response::ResponseDeleteRange(d)) => {
                match d.prev_kvs.into_iter().next() {
                    Some(prev) => {
                        let mut kv = to_kv(prev);
                        kv.mod_revision = rev;
                        Ok(kv)
                    }
                    None => Err(StorageError::NotFound {
                        key: key.to_owned(),
                    }),
                }
            }
            _ => Err(StorageError::Internal("delete returned no result".into())),
        }
    }

    async fn watch(&self, prefix: &str, start_revision: i64) -> Result<WatchStream, StorageError> {
        let (req_tx, req_rx) = mpsc::channel::<pb::WatchRequest>(4);
        let create = pb::WatchRequest {
            request_union: Some(pb::watch_request::RequestUnion::CreateRequest(
                pb::WatchCreateRequest {
                    key: key_bytes(prefix),
                    range_end: prefix_end(prefix),
                    start_revision,
                    prev_kv: true,
                    progress_notify: true,
                    ..Default::default()
                },
            )),
        };
        req_tx
            .send(create)
            .await
            .map_err(|_| StorageError::Internal("watch request channel closed".into()))?;
        let n = self.channels.len();
        let ch = self.channels[self.next.fetch_add(1, Ordering::Relaxed) % n].clone();
        let mut stream = pb::watch_client::WatchClient::new(ch)
            .watch(tokio_stream::wrappers::ReceiverStream::new(req_rx))
            .await
            .map_err(map_status)?
            .into_inner();
        let (tx, rx) = mpsc::channel::<WatchItem>(1024);
        tokio::spawn(async move {
            // Keeps the request side open for the life of the watch.
            let _req_tx = req_tx;
            loop {
                let msg = match stream.message().await {
                    Ok(Some(m)) => m,
                    Ok(None) => return,
                    Err(s) => {
                        let _ = tx.send(WatchItem::Error(map_status(s))).await;
                        return;
                    }
                };
                if msg.canceled {
                    let e = if msg.compact_revision > 0 {
                        StorageError::Compacted {
                            compact_revision: msg.compact_revision,
                        }
                    } else {
                        StorageError::Unavailable(msg.cancel_reason.clone())
                    };
                    let _ = tx.send(WatchItem::Error(e)).await;
                    return;
                }
                if msg.created {
                    continue;
                }
                if msg.events.is_empty() {
                    if let Some(h) = msg.header {
                        if tx.send(WatchItem::Progress(h.revision)).await.is_err() {
                            return;
                        }
                    }
                    continue;
                }
                for ev in msg.events {
                    let Some(kv) = ev.kv else { continue };
                    let prev = ev.prev_kv;
                    let item = if ev.r#type == mvccpb::event::EventType::Delete as i32 {
                        Event {
                            kind: EventType::Deleted,
                            key: String::from_utf8_lossy(&kv.key).into_owned(),
                            value: prev.as_ref().map(|p| p.value.clone()).unwrap_or_default(),
                            prev_value: prev.map(|p| p.value),
                            revision: kv.mod_revision,
                        }
                    } else {
                        Event {
                            kind: if kv.create_revision == kv.mod_revision {
                                EventType::Created
                            } else {
                                EventType::Modified
                            },
                            key: String::from_utf8_lossy(&kv.key).into_owned(),
                            value: kv.value,
                            prev_value: prev.map(|p| p.value),
                            revision: kv.mod_revision,
                        }
                    };
                    if tx.send(WatchItem::Event(item)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
    }

    async fn grant_lease(&self, ttl: i64) -> Result<i64, StorageError> {
        self.with_retry(|ch| async move {
            pb::lease_client::LeaseClient::new(ch)
                .lease_grant(pb::LeaseGrantRequest { ttl, id: 0 })
                .await
                .map(|r| r.into_inner().id)
        })
        .await
    }

    async fn compact(&self, revision: i64) -> Result<(), StorageError> {
        let res = self
            .with_retry(|ch| async move {
                pb::kv_client::KvClient::new(ch)
                    .compact(pb::CompactionRequest {
                        revision,
                        physical: false,
                    })
                    .await
                    .map(|_| ())
            })
            .await;
        match res {
            Ok(()) | Err(StorageError::Compacted { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
