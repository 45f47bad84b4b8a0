//! The closed-loop workloads create, get, update and delete: `clients` tasks, each
//! with one request in flight, spread round-robin over the connections, for
//! --duration (delete also stops when the prefilled objects run out).
//!
//! Invariant: a request is either one successful op (its latency recorded) or one
//! error (non-2xx or no answer), never both; only requests sent before the deadline
//! are counted.

use std::sync::Arc;
use std::time::Instant;

use http::Method;

use super::http::Conn;
use super::shared::{next_random, Ctx, Cursor, Failures, Run, JSON};
use super::{round, Extra, K8sReport, K8sWorkload};
use crate::bench::histogram::Histogram;
use crate::bench::report::Measured;
use crate::bench::BenchError;

/// What each client of an update run owns: object indexes and their last
/// resourceVersions.
type Owned = Vec<(u64, String)>;

/// Runs one closed-loop workload with `clients` clients and returns its report.
pub async fn run(
    ctx: &Arc<Ctx>,
    run: &Run,
    workload: K8sWorkload,
    clients: usize,
) -> Result<K8sReport, BenchError> {
    let objects = match workload {
        K8sWorkload::Create => 0,
        K8sWorkload::Update => ctx.args.objects_for(workload).max(clients as u64),
        w => ctx.args.objects_for(w),
    };
    let (revisions, prefill_s) = if objects > 0 {
        let (revisions, _, took) = ctx.prefill(run, objects).await?;
        (revisions, Some(round(took.as_secs_f64(), 3)))
    } else {
        (Vec::new(), None)
    };
    let mut owned: Vec<Owned> = vec![Vec::new(); clients];
    if workload == K8sWorkload::Update {
        for (i, rv) in revisions.into_iter().enumerate() {
            owned[i % clients].push((i as u64, rv));
        }
    }
    let conns = ctx.server.connect_many(ctx.args.conns_for(clients)).await?;
    let failures = Arc::new(Failures::default());
    let cursor = Arc::new(Cursor::new(objects as usize));
    tracing::info!(
        workload = workload.name(),
        clients,
        conns = conns.len(),
        "bench k8s: measuring"
    );
    let started = Instant::now();
    let deadline = started + ctx.args.duration;
    let mut tasks = Vec::with_capacity(clients);
    for (id, mine) in owned.into_iter().enumerate() {
        let client = Client {
            id: id as u64,
            ctx: Arc::clone(ctx),
            run: run.clone(),
            conn: conns[id % conns.len()].clone(),
            failures: Arc::clone(&failures),
            cursor: Arc::clone(&cursor),
            objects,
            owned: mine,
            rng: (id as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
        };
        tasks.push(tokio::spawn(client.run(workload, deadline)));
    }
    let mut histogram = Histogram::new();
    for task in tasks {
        match task.await {
            Ok(h) => histogram.merge(&h),
            Err(e) => {
                tracing::error!(error = %e, "bench k8s: a client task failed");
                failures
                    .errors
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }
    let duration_s = started.elapsed().as_secs_f64();
    let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let extra = Extra {
        objects: (objects > 0).then_some(objects),
        prefill_s,
        request: Some(match workload {
            K8sWorkload::Create => "POST new ConfigMap",
            K8sWorkload::Get => "GET random prefilled ConfigMap",
            K8sWorkload::Update => "PUT whole ConfigMap with last resourceVersion",
            _ => "DELETE prefilled ConfigMap",
        }),
        conflicts: (workload == K8sWorkload::Update).then(|| load(&failures.conflicts)),
        timeouts: Some(load(&failures.timeouts)),
        ..Extra::default()
    };
    Ok(K8sReport::new(
        workload,
        ctx,
        clients,
        conns.len(),
        &Measured {
            histogram,
            errors: failures.errors(),
            duration_s,
        },
        extra,
    ))
}

/// One closed-loop client.
struct Client {
    id: u64,
    ctx: Arc<Ctx>,
    run: Run,
    conn: Conn,
    failures: Arc<Failures>,
    cursor: Arc<Cursor>,
    objects: u64,
    owned: Owned,
    rng: u64,
}

impl Client {
    async fn run(mut self, workload: K8sWorkload, deadline: Instant) -> Histogram {
        let mut histogram = Histogram::new();
        let mut seq = 0u64;
        while Instant::now() < deadline {
            seq += 1;
            let (method, path, body, slot) = match workload {
                K8sWorkload::Create => {
                    let name = format!("{}-c{}-{seq}", self.run.name(0), self.id);
                    let body = self.ctx.body(&self.run, &name, None, seq);
                    (
                        Method::POST,
                        self.ctx.collection(),
                        Some((body, JSON)),
                        None,
                    )
                }
                K8sWorkload::Get => {
                    let i = next_random(&mut self.rng) % self.objects;
                    (Method::GET, self.ctx.item(&self.run.name(i)), None, None)
                }
                K8sWorkload::Update => {
                    let slot = (seq as usize - 1) % self.owned.len().max(1);
                    let Some((i, rv)) = self.owned.get(slot) else {
                        break;
                    };
                    let name = self.run.name(*i);
                    let body = self.ctx.body(&self.run, &name, Some(rv), seq);
                    (
                        Method::PUT,
                        self.ctx.item(&name),
                        Some((body, JSON)),
                        Some(slot),
                    )
                }
                _ => {
                    let Some(i) = self.cursor.take() else {
                        break;
                    };
                    (
                        Method::DELETE,
                        self.ctx.item(&self.run.name(i as u64)),
                        None,
                        None,
                    )
                }
            };
            let sent = Instant::now();
            let outcome = self.ctx.server.call(&self.conn, method, &path, body).await;
            let latency = sent.elapsed();
            match &outcome {
                Ok(answer) if answer.ok() => {
                    histogram.record(latency);
                    if let Some(slot) = slot {
                        let rv = answer.json()["metadata"]["resourceVersion"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned();
                        self.owned[slot].1 = rv;
                    }
                }
                _ => {
                    self.failures.record(workload.name(), &outcome);
                    if let Some(slot) = slot {
                        self.refresh(slot).await;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            }
        }
        histogram
    }

    /// After a failed update: re-reads the object's resourceVersion (not timed).
    async fn refresh(&mut self, slot: usize) {
        let name = self.run.name(self.owned[slot].0);
        let path = self.ctx.item(&name);
        if let Ok(answer) = self
            .ctx
            .server
            .call(&self.conn, Method::GET, &path, None)
            .await
        {
            if let Some(rv) = answer.json()["metadata"]["resourceVersion"].as_str() {
                self.owned[slot].1 = rv.to_owned();
            }
        }
    }
}
