//! What every `bench k8s` workload shares: the connected server, the run tag and the
//! objects' names and bodies, the prefill, the error log and the cleanup.
//!
//! Invariant: object `i` of a run is named `kb-<tag>-<i>` and labelled
//! `kuberaft-bench-run=<tag>`; the tag is fresh per run, so runs never collide, even
//! with objects left behind by --keep.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use http::Method;

use super::http::{Answer, CallError, Conn, Server};
use super::{kubeconfig, K8sArgs};
use crate::bench::histogram::Histogram;
use crate::bench::BenchError;

/// The label that marks a run's objects.
pub const RUN_LABEL: &str = "kuberaft-bench-run";
/// Content type of POST and PUT bodies.
pub const JSON: &str = "application/json";
/// Deletecollection of a large run may take long; it gets this timeout.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(600);

/// The benchmark's view of the server, shared by all runs of one invocation.
pub struct Ctx {
    /// The flags.
    pub args: K8sArgs,
    /// Where the API is, and the TLS configuration.
    pub server: Server,
    /// The ConfigMap value: --value-size pseudo-random lowercase letters.
    pub value: String,
    runs: AtomicU32,
    started: u64,
}

/// One workload run.
#[derive(Clone, Debug)]
pub struct Run {
    /// Fresh per run: lowercase hex.
    pub tag: String,
}

impl Run {
    /// Name of object `i`.
    pub fn name(&self, i: u64) -> String {
        format!("kb-{}-{i}", self.tag)
    }
}

impl Ctx {
    /// Reads the credentials, connects once to check the server, and makes sure the
    /// namespace exists.
    pub async fn new(args: K8sArgs) -> Result<Ctx, BenchError> {
        let default_server = "https://127.0.0.1:6443";
        let mut creds = match (&args.kubeconfig, &args.cacert) {
            (Some(path), _) => kubeconfig::from_kubeconfig(path)?,
            (None, Some(ca)) => kubeconfig::from_files(
                args.server.as_deref().unwrap_or(default_server),
                ca,
                args.cert.as_deref(),
                args.key.as_deref(),
            )?,
            (None, None) => {
                return Err(BenchError::InvalidArgs(
                    "give --kubeconfig (e.g. <data-dir>/admin.kubeconfig) or --cacert".into(),
                ))
            }
        };
        if let Some(server) = &args.server {
            creds.server = server.clone();
        }
        let tls = kubeconfig::client_config(&creds)?;
        let server = Server::new(&creds.server, tls, args.timeout)?;
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let value = letters(args.value_size, started | 1);
        let ctx = Ctx {
            args,
            server,
            value,
            runs: AtomicU32::new(0),
            started,
        };
        ctx.ensure_namespace().await?;
        Ok(ctx)
    }

    /// A fresh run tag: the start time in milliseconds (mod 2^32) and a counter.
    pub fn next_run(&self) -> Run {
        let n = self.runs.fetch_add(1, Ordering::Relaxed);
        Run {
            tag: format!("{:08x}{n:x}", self.started & 0xffff_ffff),
        }
    }

    /// Path of the namespace's ConfigMap collection.
    pub fn collection(&self) -> String {
        format!("/api/v1/namespaces/{}/configmaps", self.args.namespace)
    }

    /// Path of one ConfigMap.
    pub fn item(&self, name: &str) -> String {
        format!("{}/{name}", self.collection())
    }

    /// A ConfigMap of `run` as JSON; `revision` is the resourceVersion of an update.
    pub fn body(&self, run: &Run, name: &str, revision: Option<&str>, seq: u64) -> Bytes {
        let mut metadata = serde_json::json!({
            "name": name,
            "namespace": self.args.namespace,
            "labels": { RUN_LABEL: run.tag },
        });
        if let Some(rv) = revision {
            metadata["resourceVersion"] = rv.into();
        }
        let object = serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata,
            "data": { "value": self.value, "seq": seq.to_string() },
        });
        Bytes::from(object.to_string())
    }

    async fn ensure_namespace(&self) -> Result<(), BenchError> {
        let conn = self.server.connect().await?;
        let body = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": { "name": self.args.namespace },
        });
        let answer = self
            .server
            .call(
                &conn,
                Method::POST,
                "/api/v1/namespaces",
                Some((Bytes::from(body.to_string()), JSON)),
            )
            .await
            .map_err(|e| BenchError::Prepare(format!("create namespace: {e}")))?;
        if answer.ok() || answer.status == http::StatusCode::CONFLICT {
            Ok(())
        } else {
            Err(BenchError::Prepare(format!(
                "create namespace {}: {}",
                self.args.namespace,
                answer.describe()
            )))
        }
    }

    /// Creates objects `0..count` of `run` with --prefill-clients concurrent POSTs;
    /// returns their resourceVersions in index order, the latencies and the wall time.
    pub async fn prefill(
        &self,
        run: &Run,
        count: u64,
    ) -> Result<(Vec<String>, Histogram, Duration), BenchError> {
        let concurrency = self.args.prefill_clients;
        let conns = self
            .server
            .connect_many(self.args.conns_for(concurrency))
            .await?;
        tracing::info!(count, concurrency, "bench k8s: prefilling (not measured)");
        let path = self.collection();
        let started = Instant::now();
        let mut creates = futures::stream::iter(0..count)
            .map(|i| {
                let conn = &conns[i as usize % conns.len()];
                let body = self.body(run, &run.name(i), None, 0);
                let path = &path;
                async move {
                    let sent = Instant::now();
                    let answer = create_with_retry(&self.server, conn, path, body)
                        .await
                        .map_err(|e| BenchError::Prepare(format!("prefill create #{i}: {e}")))?;
                    let rv = answer.json()["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    Ok::<_, BenchError>((i, rv, sent.elapsed()))
                }
            })
            .buffer_unordered(concurrency);
        let mut revisions = vec![String::new(); count as usize];
        let mut histogram = Histogram::new();
        while let Some(created) = creates.next().await {
            let (i, rv, latency) = created?;
            histogram.record(latency);
            revisions[i as usize] = rv;
        }
        Ok((revisions, histogram, started.elapsed()))
    }

    /// Deletes every object of `run` (a label-selected deletecollection, repeated until
    /// a LIST finds none, at most 5 times). Failures are logged, never fatal.
    pub async fn cleanup(&self, run: &Run) {
        let mut server = self.server.clone();
        server.timeout = CLEANUP_TIMEOUT;
        let conn = match server.connect().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "bench k8s: cleanup could not connect");
                return;
            }
        };
        let selector = format!(
            "labelSelector={}",
            encode(&format!("{RUN_LABEL}={}", run.tag))
        );
        for _ in 0..5 {
            let path = format!("{}?{selector}", self.collection());
            match server.call(&conn, Method::DELETE, &path, None).await {
                Ok(a) if a.ok() => {}
                Ok(a) => tracing::warn!(answer = %a.describe(), "bench k8s: cleanup"),
                Err(e) => tracing::warn!(error = %e, "bench k8s: cleanup"),
            }
            let probe = format!("{}?{selector}&limit=1", self.collection());
            match server.call(&conn, Method::GET, &probe, None).await {
                Ok(a) if a.ok() => {
                    let empty = a.json()["items"].as_array().is_some_and(|i| i.is_empty());
                    if empty {
                        return;
                    }
                }
                Ok(a) => tracing::warn!(answer = %a.describe(), "bench k8s: cleanup check"),
                Err(e) => tracing::warn!(error = %e, "bench k8s: cleanup check"),
            }
        }
        tracing::warn!(tag = %run.tag, "bench k8s: objects of the run remain after cleanup");
    }
}

/// POST, retried (at most 20 times, 50 ms apart) on 429 and 5xx answers and on
/// transport errors; any other non-2xx answer is returned as an error.
async fn create_with_retry(
    server: &Server,
    conn: &Conn,
    path: &str,
    body: Bytes,
) -> Result<Answer, String> {
    let mut last = String::new();
    for _ in 0..20 {
        match server
            .call(conn, Method::POST, path, Some((body.clone(), JSON)))
            .await
        {
            Ok(a) if a.ok() => return Ok(a),
            Ok(a) if a.status.as_u16() == 429 || a.status.is_server_error() => last = a.describe(),
            Ok(a) => return Err(a.describe()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(last)
}

/// Counts failed requests and prints the first one's answer on stderr.
#[derive(Default)]
pub struct Failures {
    /// Failed requests of any kind.
    pub errors: AtomicU64,
    /// Requests that hit --timeout.
    pub timeouts: AtomicU64,
    /// 409 Conflict answers.
    pub conflicts: AtomicU64,
    printed: AtomicBool,
}

impl Failures {
    /// Records a request that got a non-2xx answer or none.
    pub fn record(&self, what: &str, outcome: &Result<Answer, CallError>) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let text = match outcome {
            Ok(a) => {
                if a.status == http::StatusCode::CONFLICT {
                    self.conflicts.fetch_add(1, Ordering::Relaxed);
                }
                a.describe()
            }
            Err(CallError::Timeout) => {
                self.timeouts.fetch_add(1, Ordering::Relaxed);
                "timed out".to_owned()
            }
            Err(e) => e.to_string(),
        };
        if !self.printed.swap(true, Ordering::Relaxed) {
            eprintln!("bench k8s: first failed request ({what}): {text}");
        }
    }

    /// The error count.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

/// A shared cursor over `0..limit`, handing out each index once.
pub struct Cursor {
    next: AtomicUsize,
    limit: usize,
}

impl Cursor {
    /// A cursor over `0..limit`.
    pub fn new(limit: usize) -> Cursor {
        Cursor {
            next: AtomicUsize::new(0),
            limit,
        }
    }

    /// The next unused index, or None when all are taken.
    pub fn take(&self) -> Option<usize> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        (i < self.limit).then_some(i)
    }
}

/// Reads `process_resident_memory_bytes` from the server's /metrics.
pub async fn resident_memory(server: &Server, conn: &Conn) -> Result<u64, BenchError> {
    let answer = server
        .call(conn, Method::GET, "/metrics", None)
        .await
        .map_err(|e| BenchError::Prepare(format!("GET /metrics: {e}")))?;
    if !answer.ok() {
        return Err(BenchError::Prepare(format!(
            "GET /metrics: {}",
            answer.describe()
        )));
    }
    let text = String::from_utf8_lossy(&answer.body);
    text.lines()
        .filter_map(|l| l.strip_prefix("process_resident_memory_bytes "))
        .find_map(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .ok_or_else(|| BenchError::Prepare("/metrics has no process_resident_memory_bytes".into()))
}

/// Percent-encodes a query parameter value (RFC 3986 unreserved characters stay).
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// xorshift64*: a cheap per-client pseudo-random stream; `state` must be non-zero.
pub fn next_random(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// `len` pseudo-random lowercase letters.
fn letters(len: usize, seed: u64) -> String {
    let mut state = seed | 1;
    (0..len)
        .map(|_| (b'a' + (next_random(&mut state) % 26) as u8) as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode("a=b c+/"), "a%3Db%20c%2B%2F");
        assert_eq!(encode("kb-1_x.y~"), "kb-1_x.y~");
    }
}
