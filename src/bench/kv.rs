//! The KV workloads (put, txn-put, range, range-serializable, list-prefix): prepare the
//! keys, then run closed-loop clients, each with one request in flight, and merge
//! their latency histograms.
//!
//! Invariant: only the measured phase is timed; a request counts either as one
//! successful op (its latency recorded) or as one error (failed or past --timeout),
//! never both.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use tonic::transport::Channel;
use tonic::Status;

use super::error::BenchError;
use super::etcd::{EtcdArgs, Stop, Workload};
use super::histogram::Histogram;
use super::keys::KeySet;
use super::report::{Measured, Params, Report};
use crate::etcd::proto::etcdserverpb::{
    compare, kv_client::KvClient, request_op, response_op, Compare, DeleteRangeRequest, PutRequest,
    RangeRequest, RequestOp, TxnRequest,
};

/// Puts per preparation transaction, below etcd's default --max-txn-ops of 128.
const PREPARE_BATCH: usize = 100;
/// Bytes per preparation transaction, below etcd's default 1.5 MiB request limit.
const PREPARE_BATCH_BYTES: usize = 1 << 20;
/// Preparation transactions in flight.
const PREPARE_PARALLEL: usize = 8;
/// Pause of a client after a failed request, so an unreachable server is not spun on.
const ERROR_BACKOFF: Duration = Duration::from_millis(10);
/// Failed requests whose reason is logged; later ones are only counted.
const LOGGED_ERRORS: u32 = 5;
/// Interval of the progress lines on stderr.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Runs one KV workload over the connected `channels` and returns its report.
pub async fn run(
    args: &EtcdArgs,
    endpoints: &[String],
    channels: Vec<Channel>,
) -> Result<Report, BenchError> {
    let kvs: Vec<KvClient<Channel>> = channels.into_iter().map(KvClient::new).collect();
    let plan = Arc::new(Plan::new(args)?);
    let start_revisions = prepare(&plan, &kvs, args.clients).await?;

    let stop = args.stop();
    let shared = Arc::new(Shared::default());
    tracing::info!(
        workload = args.workload.name(),
        clients = args.clients,
        conns = kvs.len(),
        ?stop,
        "bench: measuring"
    );
    let started = Instant::now();
    let deadline = match stop {
        Stop::Duration(d) => Some(started + d),
        Stop::Total(_) => None,
    };
    let mut tasks = Vec::with_capacity(args.clients);
    for id in 0..args.clients {
        let client = Client {
            id: id as u64,
            kv: kvs[id % kvs.len()].clone(),
            rng: seed(id as u64),
            last_revision: start_revisions.get(id).copied().unwrap_or(0),
            conflicts: 0,
        };
        tasks.push(tokio::spawn(client.run(
            Arc::clone(&plan),
            Arc::clone(&shared),
            stop,
            deadline,
        )));
    }
    let progress = tokio::spawn(report_progress(Arc::clone(&shared), started));
    let mut histogram = Histogram::new();
    let (mut errors, mut timeouts, mut conflicts) = (0, 0, 0);
    for task in tasks {
        match task.await {
            Ok(outcome) => {
                histogram.merge(&outcome.histogram);
                errors += outcome.errors;
                timeouts += outcome.timeouts;
                conflicts += outcome.conflicts;
            }
            Err(join) => {
                tracing::error!(%join, "bench: a client task failed");
                errors += 1;
            }
        }
    }
    let duration_s = started.elapsed().as_secs_f64();
    progress.abort();

    let measured = Measured {
        histogram,
        errors,
        duration_s,
    };
    let params = Params {
        key_size: plan.keys.key_len(),
        val_size: plan.value.len(),
        key_space: match args.workload {
            Workload::Put | Workload::Range | Workload::RangeSerializable => {
                Some(plan.keys.count())
            }
            _ => None,
        },
        list_keys: (args.workload == Workload::ListPrefix).then_some(plan.keys.count()),
        txn_conflicts: (args.workload == Workload::TxnPut).then_some(conflicts),
        timeouts,
        timeout_s: plan.timeout.as_secs_f64(),
        ..Params::default()
    };
    Ok(Report::new(
        args.workload.name(),
        args.label.clone(),
        endpoints,
        args.clients,
        kvs.len(),
        &measured,
        params,
    ))
}

/// What every client of a run shares, read-only.
struct Plan {
    workload: Workload,
    keys: KeySet,
    value: Bytes,
    timeout: Duration,
}

impl Plan {
    fn new(args: &EtcdArgs) -> Result<Self, BenchError> {
        let keys = match args.workload {
            Workload::Put => KeySet::new("p", args.key_space, args.key_size)?,
            Workload::TxnPut => KeySet::new("t", args.clients as u64, args.key_size)?,
            Workload::Range | Workload::RangeSerializable => {
                KeySet::new("r", args.key_space, args.key_size)?
            }
            Workload::ListPrefix => KeySet::new("l/", args.list_keys, args.key_size)?,
            Workload::WatchFanout => {
                return Err(BenchError::InvalidArgs(
                    "watch-fanout is not a KV workload".into(),
                ))
            }
        };
        Ok(Plan {
            workload: args.workload,
            keys,
            value: random_bytes(args.value_size(), 0x5eed),
            timeout: args.timeout,
        })
    }
}

/// Writes the keys a workload reads or updates; returns, for txn-put, the
/// mod_revision of each client's key (indexed by client id), else nothing.
async fn prepare(
    plan: &Plan,
    kvs: &[KvClient<Channel>],
    clients: usize,
) -> Result<Vec<i64>, BenchError> {
    match plan.workload {
        Workload::Put | Workload::WatchFanout => Ok(Vec::new()),
        Workload::Range | Workload::RangeSerializable => {
            put_all(plan, kvs).await?;
            Ok(Vec::new())
        }
        Workload::ListPrefix => {
            let (key, range_end) = plan.keys.prefix_range();
            let mut kv = kvs[0].clone();
            let request = DeleteRangeRequest {
                key,
                range_end,
                prev_kv: false,
            };
            tokio::time::timeout(plan.timeout, kv.delete_range(request))
                .await
                .map_err(|_| BenchError::Prepare("delete of the list prefix timed out".into()))?
                .map_err(|status| BenchError::Prepare(format!("delete list prefix: {status}")))?;
            put_all(plan, kvs).await?;
            Ok(Vec::new())
        }
        Workload::TxnPut => {
            let revisions = put_all(plan, kvs).await?;
            Ok((0..clients).map(|id| revisions[id]).collect())
        }
    }
}

/// Puts every key of the plan with the plan's value in batched transactions, and
/// returns the mod_revision each key got.
async fn put_all(plan: &Plan, kvs: &[KvClient<Channel>]) -> Result<Vec<i64>, BenchError> {
    let count = plan.keys.count();
    let per_put = plan.keys.key_len() + plan.value.len() + 16;
    let batch = (PREPARE_BATCH_BYTES / per_put).clamp(1, PREPARE_BATCH) as u64;
    let batches = count.div_ceil(batch);
    let started = Instant::now();
    tracing::info!(
        keys = count,
        batches,
        "bench: preparing keys (not measured)"
    );
    let revisions: Vec<(u64, u64, i64)> = futures::stream::iter(0..batches)
        .map(|b| {
            let mut kv = kvs[b as usize % kvs.len()].clone();
            let first = b * batch;
            let last = (first + batch).min(count);
            let success = (first..last)
                .map(|i| RequestOp {
                    request: Some(request_op::Request::RequestPut(PutRequest {
                        key: plan.keys.key(i),
                        value: plan.value.clone(),
                        ..PutRequest::default()
                    })),
                })
                .collect();
            let request = TxnRequest {
                compare: Vec::new(),
                success,
                failure: Vec::new(),
            };
            async move {
                let response = tokio::time::timeout(plan.timeout, kv.txn(request))
                    .await
                    .map_err(|_| BenchError::Prepare(format!("batch {b} timed out")))?
                    .map_err(|status| BenchError::Prepare(format!("batch {b}: {status}")))?
                    .into_inner();
                let revision = response
                    .header
                    .map(|h| h.revision)
                    .ok_or_else(|| BenchError::Prepare("txn response without header".into()))?;
                Ok::<_, BenchError>((first, last, revision))
            }
        })
        .buffered(PREPARE_PARALLEL)
        .try_collect()
        .await?;
    let mut by_key = vec![0; count as usize];
    for (first, last, revision) in revisions {
        by_key[first as usize..last as usize].fill(revision);
    }
    tracing::info!(
        keys = count,
        seconds = started.elapsed().as_secs_f64(),
        "bench: prepared"
    );
    Ok(by_key)
}

/// Counters all clients bump, read by the progress reporter.
#[derive(Default)]
struct Shared {
    issued: AtomicU64,
    done: AtomicU64,
    failed: AtomicU64,
    logged: AtomicU32,
}

impl Shared {
    fn note_failure(&self, reason: &dyn std::fmt::Display) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        if self.logged.fetch_add(1, Ordering::Relaxed) < LOGGED_ERRORS {
            tracing::warn!(%reason, "bench: request failed");
        }
    }
}

/// What one client measured.
struct Outcome {
    histogram: Histogram,
    errors: u64,
    timeouts: u64,
    conflicts: u64,
}

/// One closed-loop client: its connection, its random stream and, for txn-put, the
/// last mod_revision it saw of its own key.
struct Client {
    id: u64,
    kv: KvClient<Channel>,
    rng: u64,
    last_revision: i64,
    conflicts: u64,
}

impl Client {
    async fn run(
        mut self,
        plan: Arc<Plan>,
        shared: Arc<Shared>,
        stop: Stop,
        deadline: Option<Instant>,
    ) -> Outcome {
        let mut histogram = Histogram::new();
        let (mut errors, mut timeouts) = (0, 0);
        loop {
            match (stop, deadline) {
                (Stop::Total(total), _) => {
                    if shared.issued.fetch_add(1, Ordering::Relaxed) >= total {
                        break;
                    }
                }
                (_, Some(deadline)) => {
                    if Instant::now() >= deadline {
                        break;
                    }
                }
                (Stop::Duration(_), None) => break,
            }
            let sent = Instant::now();
            match tokio::time::timeout(plan.timeout, self.op(&plan)).await {
                Ok(Ok(())) => {
                    histogram.record(sent.elapsed());
                    shared.done.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Err(status)) => {
                    errors += 1;
                    shared.note_failure(&status);
                    tokio::time::sleep(ERROR_BACKOFF).await;
                }
                Err(_) => {
                    errors += 1;
                    timeouts += 1;
                    shared.note_failure(&"timed out");
                }
            }
        }
        Outcome {
            histogram,
            errors,
            timeouts,
            conflicts: self.conflicts,
        }
    }

    /// Sends one request of the workload and checks the response's shape.
    async fn op(&mut self, plan: &Plan) -> Result<(), Status> {
        match plan.workload {
            Workload::Put => {
                let request = PutRequest {
                    key: plan.keys.key(self.next_random()),
                    value: plan.value.clone(),
                    ..PutRequest::default()
                };
                self.kv.put(request).await?;
            }
            Workload::Range | Workload::RangeSerializable => {
                let request = RangeRequest {
                    key: plan.keys.key(self.next_random()),
                    serializable: plan.workload == Workload::RangeSerializable,
                    ..RangeRequest::default()
                };
                let response = self.kv.range(request).await?.into_inner();
                if response.kvs.len() != 1 {
                    return Err(Status::data_loss("a prepared key is missing"));
                }
            }
            Workload::ListPrefix => {
                let (key, range_end) = plan.keys.prefix_range();
                let request = RangeRequest {
                    key,
                    range_end,
                    ..RangeRequest::default()
                };
                let response = self.kv.range(request).await?.into_inner();
                if response.kvs.len() as u64 != plan.keys.count() {
                    return Err(Status::data_loss(format!(
                        "list returned {} keys, expected {}",
                        response.kvs.len(),
                        plan.keys.count()
                    )));
                }
            }
            Workload::TxnPut => self.update(plan).await?,
            Workload::WatchFanout => {
                return Err(Status::unimplemented("watch-fanout is not a KV workload"))
            }
        }
        Ok(())
    }

    /// The Kubernetes update: Txn(mod_revision(key) == last seen → Put, else Get).
    async fn update(&mut self, plan: &Plan) -> Result<(), Status> {
        let key = plan.keys.key(self.id);
        let request = TxnRequest {
            compare: vec![Compare {
                result: compare::CompareResult::Equal as i32,
                target: compare::CompareTarget::Mod as i32,
                key: key.clone(),
                range_end: Bytes::new(),
                target_union: Some(compare::TargetUnion::ModRevision(self.last_revision)),
            }],
            success: vec![RequestOp {
                request: Some(request_op::Request::RequestPut(PutRequest {
                    key: key.clone(),
                    value: plan.value.clone(),
                    ..PutRequest::default()
                })),
            }],
            failure: vec![RequestOp {
                request: Some(request_op::Request::RequestRange(RangeRequest {
                    key,
                    ..RangeRequest::default()
                })),
            }],
        };
        let response = self.kv.txn(request).await?.into_inner();
        if response.succeeded {
            self.last_revision = response
                .header
                .map(|h| h.revision)
                .ok_or_else(|| Status::internal("txn response without header"))?;
            return Ok(());
        }
        self.conflicts += 1;
        let current = response
            .responses
            .into_iter()
            .find_map(|r| match r.response {
                Some(response_op::Response::ResponseRange(range)) => range.kvs.into_iter().next(),
                _ => None,
            });
        match current {
            Some(kv) => {
                self.last_revision = kv.mod_revision;
                Ok(())
            }
            None => Err(Status::data_loss(
                "failed txn without the key's current value",
            )),
        }
    }

    /// xorshift64*: a cheap, per-client pseudo-random stream.
    fn next_random(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// A non-zero seed, distinct per client and per run.
fn seed(id: u64) -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    ((id + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ nanos) | 1
}

/// `len` pseudo-random bytes, so values do not compress.
pub fn random_bytes(len: usize, seed: u64) -> Bytes {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

/// Logs done and failed counts every few seconds until aborted.
async fn report_progress(shared: Arc<Shared>, started: Instant) {
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    tick.tick().await;
    let mut last_done = 0;
    loop {
        tick.tick().await;
        let done = shared.done.load(Ordering::Relaxed);
        tracing::info!(
            elapsed_s = started.elapsed().as_secs(),
            ops = done,
            errors = shared.failed.load(Ordering::Relaxed),
            ops_per_sec = (done - last_done) as f64 / PROGRESS_EVERY.as_secs_f64(),
            "bench: progress"
        );
        last_done = done;
    }
}
