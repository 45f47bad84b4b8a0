//! A `Storage` wrapper that records kube-apiserver's storage metrics:
//! `etcd_request_duration_seconds` and `etcd_requests_total` by operation and type
//! (the resource, from the key), for whichever backend it wraps.
//!
//! Invariant: it only observes; every call is passed through unchanged.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::{Kv, ListResult, ReadMode, Storage, StorageError, WatchStream};

pub struct Instrumented {
    inner: Arc<dyn Storage>,
    root: String,
}

impl Instrumented {
    pub fn new(inner: Arc<dyn Storage>, root: &str) -> Self {
        Instrumented {
            inner,
            root: root.trim_end_matches('/').to_owned(),
        }
    }

    /// The resource a key belongs to: the first segment after the root.
    fn kind(&self, key: &str) -> String {
        key.strip_prefix(&self.root)
            .unwrap_or(key)
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("")
            .to_owned()
    }

    fn observe<T>(
        &self,
        operation: &'static str,
        key: &str,
        started: Instant,
        res: &Result<T, StorageError>,
    ) {
        let ty = self.kind(key);
        metrics::histogram!("etcd_request_duration_seconds", "operation" => operation, "type" => ty.clone())
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("etcd_requests_total", "operation" => operation, "type" => ty)
            .increment(1);
        if res.is_err() {
            metrics::counter!("etcd_request_errors_total", "operation" => operation, "type" => self.kind(key))
                .increment(1);
        }
    }
}

#[async_trait::async_trait]
impl Storage for Instrumented {
    async fn current_revision(&self) -> Result<i64, StorageError> {
        self.inner.current_revision().await
    }

    async fn get(&self, key: &str, mode: ReadMode) -> Result<Option<Kv>, StorageError> {
        let t = Instant::now();
        let r = self.inner.get(key, mode).await;
        self.observe("get", key, t, &r);
        r
    }

    async fn list(
        &self,
        prefix: &str,
        start: &str,
        limit: i64,
        mode: ReadMode,
    ) -> Result<ListResult, StorageError> {
        let t = Instant::now();
        let r = self.inner.list(prefix, start, limit, mode).await;
        self.observe("list", prefix, t, &r);
        r
    }

    async fn count(&self, prefix: &str) -> Result<i64, StorageError> {
        let t = Instant::now();
        let r = self.inner.count(prefix).await;
        self.observe("count", prefix, t, &r);
        r
    }

    async fn create(&self, key: &str, value: Bytes, lease: i64) -> Result<Kv, StorageError> {
        let t = Instant::now();
        let r = self.inner.create(key, value, lease).await;
        self.observe("create", key, t, &r);
        r
    }

    async fn update(
        &self,
        key: &str,
        value: Bytes,
        expected: i64,
        lease: i64,
    ) -> Result<Kv, StorageError> {
        let t = Instant::now();
        let r = self.inner.update(key, value, expected, lease).await;
        self.observe("update", key, t, &r);
        r
    }

    async fn delete(&self, key: &str, expected: Option<i64>) -> Result<Kv, StorageError> {
        let t = Instant::now();
        let r = self.inner.delete(key, expected).await;
        self.observe("delete", key, t, &r);
        r
    }

    async fn watch(&self, prefix: &str, start_revision: i64) -> Result<WatchStream, StorageError> {
        let t = Instant::now();
        let r = self.inner.watch(prefix, start_revision).await;
        self.observe("watch", prefix, t, &r);
        r
    }

    async fn grant_lease(&self, ttl: i64) -> Result<i64, StorageError> {
        self.inner.grant_lease(ttl).await
    }

    async fn compact(&self, revision: i64) -> Result<(), StorageError> {
        let t = Instant::now();
        let r = self.inner.compact(revision).await;
        self.observe("compact", "", t, &r);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nothing;

    #[async_trait::async_trait]
    impl Storage for Nothing {
        async fn current_revision(&self) -> Result<i64, StorageError> {
            Ok(0)
        }
        async fn get(&self, _: &str, _: ReadMode) -> Result<Option<Kv>, StorageError> {
            Ok(None)
        }
        async fn list(
            &self,
            _: &str,
            _: &str,
            _: i64,
            _: ReadMode,
        ) -> Result<ListResult, StorageError> {
            Ok(ListResult::default())
        }
        async fn count(&self, _: &str) -> Result<i64, StorageError> {
            Ok(0)
        }
        async fn create(&self, k: &str, _: Bytes, _: i64) -> Result<Kv, StorageError> {
            Err(StorageError::KeyExists { key: k.into() })
        }
        async fn update(&self, k: &str, _: Bytes, _: i64, _: i64) -> Result<Kv, StorageError> {
            Err(StorageError::NotFound { key: k.into() })
        }
        async fn delete(&self, k: &str, _: Option<i64>) -> Result<Kv, StorageError> {
            Err(StorageError::NotFound { key: k.into() })
        }
        async fn watch(&self, _: &str, _: i64) -> Result<WatchStream, StorageError> {
            Err(StorageError::Unavailable("no".into()))
        }
        async fn grant_lease(&self, _: i64) -> Result<i64, StorageError> {
            Ok(1)
        }
        async fn compact(&self, _: i64) -> Result<(), StorageError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn passes_calls_through_and_names_the_resource() {
        let s = Instrumented::new(Arc::new(Nothing), "/registry");
        assert_eq!(s.kind("/registry/services/specs/default/a"), "services");
        assert_eq!(s.kind("/registry/pods/"), "pods");
        assert!(matches!(
            s.create("/registry/pods/a/b", Bytes::new(), 0).await,
            Err(StorageError::KeyExists { .. })
        ));
        assert_eq!(s.grant_lease(5).await, Ok(1));
    }
}
