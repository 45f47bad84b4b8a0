//! `Storage` on this replica's own replicated store, in process: the same
//! transactions kube-apiserver sends to etcd, without a network hop.
//!
//! Invariant: each operation is exactly one store request (one Raft proposal for
//! writes), so it is atomic and linearizable like its etcd counterpart.

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;

use super::{
    Event, EventType, Kv, ListResult, ReadMode, Storage, StorageError, WatchItem, WatchStream,
};
use crate::mvcc::{
    self, Compare, CompareResult, CompareTarget, DeleteRangeRequest, EventKind, KeyRange, KeyValue,
    MvccError, PutRequest, RangeRequest, RequestOp, ResponseOp, TxnRequest, WatchMsg, WatchSpec,
};
use crate::raft::proposer::ProposeError;
use crate::store::{Store, StoreError};

/// The embedded backend.
#[derive(Clone)]
pub struct Embedded {
    store: Store,
}

impl Embedded {
    pub fn new(store: Store) -> Self {
        Embedded { store }
    }
}

fn map_err(e: StoreError) -> StorageError {
    match e {
        StoreError::Mvcc(MvccError::Compacted { compact_revision }) => {
            StorageError::Compacted { compact_revision }
        }
        StoreError::Mvcc(MvccError::FutureRevision) => StorageError::FutureRevision,
        StoreError::RequestTooLarge => StorageError::RequestTooLarge,
        StoreError::Propose(ProposeError::Timeout) => StorageError::Timeout(e.to_string()),
        StoreError::Propose(_)
        | StoreError::Stopped
        | StoreError::NotLeader
        | StoreError::UnhealthyCluster => StorageError::Unavailable(e.to_string()),
        other => StorageError::Internal(other.to_string()),
    }
}

fn to_kv(kv: KeyValue) -> Kv {
    Kv {
        key: String::from_utf8_lossy(&kv.key).into_owned(),
        value: kv.value,
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        lease: kv.lease,
    }
}

fn single(key: &str) -> KeyRange {
    KeyRange::new(Bytes::copy_from_slice(key.as_bytes()), Bytes::new())
}

fn get_op(key: &str) -> RequestOp {
    RequestOp::Range(RangeRequest {
        range: single(key),
        ..Default::default()
    })
}

/// The kv a failed compare-and-swap's `else` branch read.
fn current_of(resp: &mvcc::TxnResponse) -> Option<Kv> {
    match resp.responses.first() {
        Some(ResponseOp::Range(r)) => r.kvs.first().cloned().map(to_kv),
        _ => None,
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
impl Storage for Embedded {
    async fn current_revision(&self) -> Result<i64, StorageError> {
        self.store.linearize().await.map_err(map_err)?;
        Ok(self.store.mvcc().current_revision())
    }

    async fn get(&self, key: &str, mode: ReadMode) -> Result<Option<Kv>, StorageError> {
        let (revision, serializable) = read_fields(mode);
        let (_, resp) = self
            .store
            .range(RangeRequest {
                range: single(key),
                revision,
                serializable,
                ..Default::default()
            })
            .await
            .map_err(map_err)?;
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
        let end = mvcc::prefix_end(prefix.as_bytes());
        let from = if start.is_empty() || start < prefix {
            prefix
        } else {
            start
        };
        let (header, resp) = self
            .store
            .range(RangeRequest {
                range: KeyRange::new(Bytes::copy_from_slice(from.as_bytes()), end),
                revision,
                serializable,
                limit,
                ..Default::default()
            })
            .await
            .map_err(map_err)?;
        let returned = resp.kvs.len() as i64;
        Ok(ListResult {
            revision: if revision > 0 {
                revision
            } else {
                header.revision
            },
            more: resp.more,
            remaining: if resp.more { resp.count - returned } else { 0 },
            kvs: resp.kvs.into_iter().map(to_kv).collect(),
        })
    }

    async fn count(&self, prefix: &str) -> Result<i64, StorageError> {
        let (_, resp) = self
            .store
            .range(RangeRequest {
                range: KeyRange::prefix(Bytes::copy_from_slice(prefix.as_bytes())),
                count_only: true,
                ..Default::default()
            })
            .await
            .map_err(map_err)?;
        Ok(resp.count)
    }

    async fn create(&self, key: &str, value: Bytes, lease: i64) -> Result<Kv, StorageError> {
        let txn = TxnRequest {
            compare: vec![Compare {
                result: CompareResult::Equal,
                target: CompareTarget::Create(0),
                range: single(key),
            }],
            success: vec![RequestOp::Put(PutRequest {
                key: Bytes::copy_from_slice(key.as_bytes()),
                value: value.clone(),
                lease,
                ..Default::default()
            })],
            failure: vec![get_op(key)],
        };
        let (header, resp) = self.store.txn(txn).await.map_err(map_err)?;
        if !resp.succeeded {
            return Err(StorageError::KeyExists {
                key: key.to_owned(),
            });
        }
        Ok(Kv {
            key: key.to_owned(),
            value,
            create_revision: header.revision,
            mod_revision: header.revision,
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
        let txn = TxnRequest {
            compare: vec![Compare {
                result: CompareResult::Equal,
                target: CompareTarget::Mod(expected),
                range: single(key),
            }],
            success: vec![RequestOp::Put(PutRequest {
                key: Bytes::copy_from_slice(key.as_bytes()),
                value: value.clone(),
                lease,
                prev_kv: true,
                ..Default::default()
            })],
            failure: vec![get_op(key)],
        };
        let (header, resp) = self.store.txn(txn).await.map_err(map_err)?;
        if !resp.succeeded {
            return Err(StorageError::Conflict {
                key: key.to_owned(),
                current: current_of(&resp),
            });
        }
        let create_revision = match resp.responses.first() {
            Some(ResponseOp::Put(p)) => p
                .prev_kv
                .as_ref()
                .map(|kv| kv.create_revision)
                .unwrap_or(header.revision),
            _ => header.revision,
        };
        Ok(Kv {
            key: key.to_owned(),
            value,
            create_revision,
            mod_revision: header.revision,
            lease,
        })
    }

    async fn delete(&self, key: &str, expected: Option<i64>) -> Result<Kv, StorageError> {
        let delete = RequestOp::DeleteRange(DeleteRangeRequest {
            range: single(key),
            prev_kv: true,
        });
        let compare = match expected {
            Some(rev) => vec![Compare {
                result: CompareResult::Equal,
                target: CompareTarget::Mod(rev),
                range: single(key),
            }],
            None => vec![Compare {
                result: CompareResult::Greater,
                target: CompareTarget::Create(0),
                range: single(key),
            }],
        };
        let txn = TxnRequest {
            compare,
            success: vec![delete],
            failure: vec![get_op(key)],
        };
        let (header, resp) = self.store.txn(txn).await.map_err(map_err)?;
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
        match resp.responses.into_iter().next() {
            Some(ResponseOp::DeleteRange(d)) => match d.prev_kvs.into_iter().next() {
                Some(prev) => {
                    let mut kv = to_kv(prev);
                    kv.mod_revision = header.revision;
                    Ok(kv)
                }
                None => Err(StorageError::NotFound {
                    key: key.to_owned(),
                }),
            },
            _ => Err(StorageError::Internal("delete returned no result".into())),
        }
    }

    async fn watch(&self, prefix: &str, start_revision: i64) -> Result<WatchStream, StorageError> {
        let (tx, rx) = mpsc::channel::<WatchMsg>(1024);
        let handle = self.store.hub().watch(
            WatchSpec {
                range: KeyRange::prefix(Bytes::copy_from_slice(prefix.as_bytes())),
                start_revision,
                filter_put: false,
                filter_delete: false,
            },
            0,
            tx,
        );
        let stream = futures::stream::unfold((rx, handle), |(mut rx, handle)| async move {
            let msg = rx.recv().await?;
            let items: Vec<WatchItem> = match msg {
                WatchMsg::Events {
                    revision, events, ..
                } => {
                    if events.is_empty() {
                        vec![WatchItem::Progress(revision)]
                    } else {
                        events
                            .into_iter()
                            .map(|e| WatchItem::Event(convert_event(e)))
                            .collect()
                    }
                }
                WatchMsg::Progress { revision } => vec![WatchItem::Progress(revision)],
                WatchMsg::Compacted {
                    compact_revision, ..
                } => {
                    vec![WatchItem::Error(StorageError::Compacted {
                        compact_revision,
                    })]
                }
            };
            Some((futures::stream::iter(items), (rx, handle)))
        })
        .flatten();
        Ok(Box::pin(stream))
    }

    async fn grant_lease(&self, ttl: i64) -> Result<i64, StorageError> {
        let (_, id, _) = self.store.lease_grant(ttl, 0).await.map_err(map_err)?;
        Ok(id)
    }

    async fn compact(&self, revision: i64) -> Result<(), StorageError> {
        match self.store.compact(revision).await {
            Ok(_) | Err(StoreError::Mvcc(MvccError::Compacted { .. })) => Ok(()),
            Err(e) => Err(map_err(e)),
        }
    }
}

fn convert_event(e: mvcc::Event) -> Event {
    let key = String::from_utf8_lossy(&e.kv.key).into_owned();
    match e.kind {
        EventKind::Put => Event {
            kind: if e.kv.create_revision == e.kv.mod_revision {
                EventType::Created
            } else {
                EventType::Modified
            },
            key,
            value: e.kv.value,
            prev_value: e.prev_kv.map(|p| p.value),
            revision: e.kv.mod_revision,
        },
        EventKind::Delete => Event {
            kind: EventType::Deleted,
            key,
            value: e
                .prev_kv
                .as_ref()
                .map(|p| p.value.clone())
                .unwrap_or_default(),
            prev_value: e.prev_kv.map(|p| p.value),
            revision: e.kv.mod_revision,
        },
    }
}
