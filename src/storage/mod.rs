//! The Kubernetes layer's storage interface (the role of k8s.io/apiserver's
//! `storage.Interface`): objects as bytes under keys, versioned by the store revision,
//! with create/update/delete as etcd-style compare-and-swap transactions.
//!
//! Two implementations: `embedded` (this replica's own replicated store, in process)
//! and `etcd` (any etcd v3 endpoint: real etcd or another kuberaft's client port).
//!
//! Invariants: every write is one transaction that either applies or reports why not
//! (AlreadyExists, Conflict with the current object, NotFound) — nothing is ever
//! half-written; `mod_revision` of a returned object is the revision of its last write.

pub mod embedded;
pub mod etcd;
pub mod instrumented;

pub mod keys;

use std::pin::Pin;

use bytes::Bytes;
use futures::Stream;

/// One stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kv {
    pub key: String,
    pub value: Bytes,
    pub create_revision: i64,
    pub mod_revision: i64,
    pub lease: i64,
}

/// A page of a list.
#[derive(Clone, Debug, Default)]
pub struct ListResult {
    pub kvs: Vec<Kv>,
    /// The revision the list was read at.
    pub revision: i64,
    /// More keys follow the last one returned.
    pub more: bool,
    /// How many keys in the range remain after this page (when `more`).
    pub remaining: i64,
}

/// How a list or get reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReadMode {
    /// Linearizable: everything acknowledged before the call is seen.
    #[default]
    Consistent,
    /// At exactly this revision (historical read).
    Exact(i64),
    /// Local and possibly stale (serializable).
    Any,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Created,
    Modified,
    Deleted,
}

/// A change to one key, in revision order.
#[derive(Clone, Debug)]
pub struct Event {
    pub kind: EventType,
    pub key: String,
    /// The new value (for deletes: the deleted object).
    pub value: Bytes,
    /// The previous value, when the key had one.
    pub prev_value: Option<Bytes>,
    /// The revision of this change.
    pub revision: i64,
}

/// What a watch stream yields: events, progress (the store reached a revision with
/// nothing to report), or a terminal error (e.g. compacted).
#[derive(Clone, Debug)]
pub enum WatchItem {
    Event(Event),
    Progress(i64),
    Error(StorageError),
}

pub type WatchStream = Pin<Box<dyn Stream<Item = WatchItem> + Send>>;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error("key not found: {key}")]
    NotFound { key: String },
    #[error("key exists: {key}")]
    KeyExists { key: String },
    /// The compare-and-swap lost: `current` is what is stored now (None if deleted).
    #[error("conflict on {key}")]
    Conflict { key: String, current: Option<Kv> },
    #[error("the requested revision has been compacted (compact revision {compact_revision})")]
    Compacted { compact_revision: i64 },
    #[error("the requested revision is in the future")]
    FutureRevision,
    #[error("request is too large")]
    RequestTooLarge,
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage request timed out: {0}")]
    Timeout(String),
    #[error("storage error: {0}")]
    Internal(String),
}

/// The storage operations the Kubernetes layer needs.
#[async_trait::async_trait]
pub trait Storage: Send + Sync + 'static {
    /// The store's current revision, read linearizably.
    async fn current_revision(&self) -> Result<i64, StorageError>;

    /// One key; `None` if absent.
    async fn get(&self, key: &str, mode: ReadMode) -> Result<Option<Kv>, StorageError>;

    /// Keys with `prefix`, from `start` (inclusive; empty = the prefix itself), at
    /// most `limit` (0 = all).
    async fn list(
        &self,
        prefix: &str,
        start: &str,
        limit: i64,
        mode: ReadMode,
    ) -> Result<ListResult, StorageError>;

    /// Number of keys under `prefix`.
    async fn count(&self, prefix: &str) -> Result<i64, StorageError>;

    /// Creates `key` if absent (`KeyExists` otherwise), attached to `lease` (0 = none).
    async fn create(&self, key: &str, value: Bytes, lease: i64) -> Result<Kv, StorageError>;

    /// Replaces `key` if its mod revision is `expected` (`Conflict` otherwise).
    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: i64,
        lease: i64,
    ) -> Result<Kv, StorageError>;

    /// Deletes `key` if its mod revision is `expected` (any revision when None);
    /// returns what was deleted, with the deleting revision as `mod_revision`.
    async fn delete(&self, key: &str, expected: Option<i64>) -> Result<Kv, StorageError>;

    /// Changes under `prefix` from `start_revision` (0 = from now on), in order.
    async fn watch(&self, prefix: &str, start_revision: i64) -> Result<WatchStream, StorageError>;

    /// A lease of `ttl` seconds, for objects that expire (events).
    async fn grant_lease(&self, ttl: i64) -> Result<i64, StorageError>;

    /// Drops history before `revision`.
    async fn compact(&self, revision: i64) -> Result<(), StorageError>;
}
