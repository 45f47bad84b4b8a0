//! `kuberaft bench k8s`: Kubernetes API workloads (ConfigMap create, get, update,
//! delete, paginated LIST, watch event latency, resident memory) over HTTP/2 with the
//! admin client certificate, each run ending in one JSON line on stdout.
//!
//! Invariant: every object a run creates carries the label
//! `kuberaft-bench-run=<tag>` unique to the run, so measurement never depends on what
//! else is in the namespace, and cleanup (a label-selected deletecollection, skipped
//! with --keep) removes exactly the run's objects. Preparation (prefill, connecting,
//! opening watches) is never inside a measured interval.

mod crud;
mod http;
mod kubeconfig;
mod list;
mod shared;
mod watch;

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::error::BenchError;
use super::etcd::{parse_duration, EtcdArgs};
pub(crate) use super::report::{ms, round};
use super::report::{Figures, Measured};
use shared::Ctx;

/// Flags of `kuberaft bench k8s`.
#[derive(clap::Args, Debug, Clone)]
pub struct K8sArgs {
    /// kubeconfig to take the server URL, CA and client certificate from (its
    /// current context). The admin one is `<data-dir>/admin.kubeconfig`.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// API server URL; overrides the kubeconfig's. Default https://127.0.0.1:6443.
    #[arg(long)]
    pub server: Option<String>,
    /// CA bundle (PEM) verifying the server, when no --kubeconfig is given.
    #[arg(long)]
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM), when no --kubeconfig is given.
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of --cert.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// What to measure; `all` runs every workload in turn, one line each.
    #[arg(long, value_enum, default_value = "all")]
    pub workload: K8sWorkload,
    /// Concurrent clients of create/get/update/delete/store-txn-put, each with one
    /// request in flight; a comma-separated list runs each count in turn.
    #[arg(long, value_delimiter = ',', default_value = "16")]
    pub clients: Vec<usize>,
    /// HTTP/2 connections shared by the clients. Default min(clients, 4); watchers get
    /// at least one connection per 250 watches.
    #[arg(long)]
    pub conns: Option<usize>,
    /// Length of each measured closed-loop phase and of the watch-latency writer.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub duration: Duration,
    /// Objects prefilled before measuring. Default: get/update 1000, delete 10000
    /// (delete also stops when they run out), list 10000, memory 100000.
    #[arg(long)]
    pub objects: Option<u64>,
    /// list: the `limit` of each page.
    #[arg(long, default_value_t = 500)]
    pub page_size: u64,
    /// list: how many full paginated LISTs are timed.
    #[arg(long, default_value_t = 3)]
    pub list_repeats: usize,
    /// watch-latency: number of watches on the namespace.
    #[arg(long, default_value_t = 1000)]
    pub watchers: usize,
    /// watch-latency: creates per second by the single writer.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Namespace of the benchmark objects; created when missing.
    #[arg(long, default_value = "bench-k8s")]
    pub namespace: String,
    /// Bytes of data in each ConfigMap (one key).
    #[arg(long, default_value_t = 1024)]
    pub value_size: usize,
    /// Concurrent creates while prefilling.
    #[arg(long, default_value_t = 32)]
    pub prefill_clients: usize,
    /// Per-request timeout; a request that takes longer counts as an error.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub timeout: Duration,
    /// Leave the run's objects in place.
    #[arg(long)]
    pub keep: bool,
    /// Name of the system under test, copied into the result as "target".
    #[arg(long)]
    pub label: Option<String>,
    /// store-txn-put (and `all`): etcd v3 client URLs of the same server, for the
    /// store-level txn-put figure next to the API's.
    #[arg(long, value_delimiter = ',')]
    pub etcd_endpoints: Vec<String>,
    /// CA (PEM) for https:// --etcd-endpoints.
    #[arg(long)]
    pub etcd_cacert: Option<PathBuf>,
    /// Client certificate (PEM) for --etcd-endpoints.
    #[arg(long)]
    pub etcd_cert: Option<PathBuf>,
    /// Private key (PEM) of --etcd-cert.
    #[arg(long)]
    pub etcd_key: Option<PathBuf>,
}

/// The Kubernetes workloads.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum K8sWorkload {
    /// POST of a new ConfigMap with a unique name.
    Create,
    /// GET of a random prefilled ConfigMap.
    Get,
    /// PUT of a prefilled ConfigMap with the resourceVersion last seen (client-go's
    /// Update); each client owns its objects, so conflicts mean a server bug.
    Update,
    /// DELETE of prefilled ConfigMaps, each once.
    Delete,
    /// Full LIST of --objects ConfigMaps, paginated by --page-size (limit/continue).
    List,
    /// --watchers watches on the namespace; per event, receipt minus the create's
    /// response.
    WatchLatency,
    /// process_resident_memory_bytes before and after prefilling --objects.
    Memory,
    /// `bench etcd --workload txn-put` against --etcd-endpoints, for comparison.
    StoreTxnPut,
    /// Every workload: the closed-loop ones at each --clients count, then list,
    /// watch-latency and memory (store-txn-put only with --etcd-endpoints).
    All,
}

impl K8sWorkload {
    /// The name used on the command line and in the result line.
    pub fn name(self) -> &'static str {
        match self {
            K8sWorkload::Create => "create",
            K8sWorkload::Get => "get",
            K8sWorkload::Update => "update",
            K8sWorkload::Delete => "delete",
            K8sWorkload::List => "list",
            K8sWorkload::WatchLatency => "watch-latency",
            K8sWorkload::Memory => "memory",
            K8sWorkload::StoreTxnPut => "store-txn-put",
            K8sWorkload::All => "all",
        }
    }
}

/// The result line of one `bench k8s` workload.
#[derive(Debug, Serialize)]
pub struct K8sReport {
    /// Workload name as given to --workload.
    pub workload: &'static str,
    /// Free-form name of the system under test (--label).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The API server URL.
    pub server: String,
    /// Counts and latencies (pages for list, delivered events for watch-latency,
    /// prefill creates for memory; missed events count as errors).
    #[serde(flatten)]
    pub figures: Figures,
    /// Bytes of data in each ConfigMap.
    pub value_size: usize,
    /// Workload-specific figures.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Figures of single workloads; the ones a workload does not produce are omitted.
#[derive(Debug, Default, Serialize)]
pub struct Extra {
    /// Objects prefilled (delete: available to delete).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objects: Option<u64>,
    /// Seconds the prefill took (not part of duration_s).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefill_s: Option<f64>,
    /// HTTP method and shape of each operation, e.g. `PUT with resourceVersion`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<&'static str>,
    /// update: 409 Conflict answers (counted in errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conflicts: Option<u64>,
    /// Requests that hit --timeout (counted in errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeouts: Option<u64>,
    /// list: the limit of each page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u64>,
    /// list: pages of one full LIST.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages: Option<u64>,
    /// list: items returned by one full LIST (the whole namespace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<u64>,
    /// list: wall time of each full LIST, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list_runs_ms: Option<Vec<f64>>,
    /// list: fastest full LIST.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list_best_ms: Option<f64>,
    /// list: median full LIST.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list_median_ms: Option<f64>,
    /// watch-latency: watches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watchers: Option<usize>,
    /// watch-latency: target creates per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// watch-latency: creates acknowledged to the writer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creates: Option<u64>,
    /// watch-latency: watcher×event pairs never delivered (counted in errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_missed: Option<u64>,
    /// watch-latency: events received before their create's response (latency 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_before_response: Option<u64>,
    /// watch-latency: median of receipt minus the create's send.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_send_p50_ms: Option<f64>,
    /// watch-latency: 99th percentile of receipt minus the create's send.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_send_p99_ms: Option<f64>,
    /// memory: server RSS before the prefill.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_before_bytes: Option<u64>,
    /// memory: server RSS after the prefill.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_after_bytes: Option<u64>,
    /// memory: RSS after, in MiB.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_after_mib: Option<f64>,
    /// memory: (after − before) / objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rss_bytes_per_object: Option<f64>,
}

impl K8sReport {
    /// Assembles a report; counts and latencies come from `measured`.
    pub fn new(
        workload: K8sWorkload,
        ctx: &Ctx,
        clients: usize,
        conns: usize,
        measured: &Measured,
        extra: Extra,
    ) -> Self {
        K8sReport {
            workload: workload.name(),
            target: ctx.args.label.clone(),
            server: ctx.server.base.clone(),
            figures: Figures::new(clients, conns, measured),
            value_size: ctx.args.value_size,
            extra,
        }
    }
}

impl K8sArgs {
    fn validate(&self) -> Result<(), BenchError> {
        let bad = |m: &str| Err(BenchError::InvalidArgs(m.to_owned()));
        if self.clients.is_empty() || self.clients.contains(&0) {
            return bad("--clients must be at least 1");
        }
        if self.conns == Some(0) {
            return bad("--conns must be at least 1");
        }
        if self.duration.is_zero() || self.timeout.is_zero() {
            return bad("--duration and --timeout must be positive");
        }
        if self.page_size == 0 || self.list_repeats == 0 || self.prefill_clients == 0 {
            return bad("--page-size, --list-repeats and --prefill-clients must be at least 1");
        }
        if self.watchers == 0 || !(self.rate.is_finite() && self.rate > 0.0) {
            return bad("--watchers must be at least 1 and --rate positive");
        }
        if self.objects == Some(0) {
            return bad("--objects must be at least 1");
        }
        if self.workload == K8sWorkload::StoreTxnPut && self.etcd_endpoints.is_empty() {
            return bad("store-txn-put needs --etcd-endpoints");
        }
        Ok(())
    }

    /// The prefill size of `workload`, with its default.
    pub fn objects_for(&self, workload: K8sWorkload) -> u64 {
        self.objects.unwrap_or(match workload {
            K8sWorkload::Get | K8sWorkload::Update => 1_000,
            K8sWorkload::Memory => 100_000,
            _ => 10_000,
        })
    }

    /// Connections for `clients` concurrent requests.
    pub fn conns_for(&self, clients: usize) -> usize {
        self.conns.unwrap_or(clients.min(4)).max(1)
    }
}

/// Runs the selected workload(s), printing one result line each on stdout.
pub async fn run(args: K8sArgs) -> Result<(), BenchError> {
    args.validate()?;
    let ctx = Arc::new(Ctx::new(args).await?);
    let closed_loop = [
        K8sWorkload::Create,
        K8sWorkload::Get,
        K8sWorkload::Update,
        K8sWorkload::Delete,
    ];
    let mut plan: Vec<(K8sWorkload, usize)> = Vec::new();
    let clients = ctx.args.clients.clone();
    match ctx.args.workload {
        K8sWorkload::All => {
            for &c in &clients {
                plan.extend(closed_loop.iter().map(|&w| (w, c)));
                if !ctx.args.etcd_endpoints.is_empty() {
                    plan.push((K8sWorkload::StoreTxnPut, c));
                }
            }
            plan.push((K8sWorkload::List, 1));
            plan.push((K8sWorkload::WatchLatency, ctx.args.watchers));
            plan.push((K8sWorkload::Memory, ctx.args.prefill_clients));
        }
        K8sWorkload::List => plan.push((K8sWorkload::List, 1)),
        K8sWorkload::WatchLatency => plan.push((K8sWorkload::WatchLatency, ctx.args.watchers)),
        K8sWorkload::Memory => plan.push((K8sWorkload::Memory, ctx.args.prefill_clients)),
        w => plan.extend(clients.iter().map(|&c| (w, c))),
    }
    for (workload, clients) in plan {
        if workload == K8sWorkload::StoreTxnPut {
            super::etcd::run(store_txn_put_args(&ctx.args, clients)).await?;
            continue;
        }
        let run = ctx.next_run();
        tracing::info!(workload = workload.name(), clients, tag = %run.tag, "bench k8s: run");
        let result = match workload {
            K8sWorkload::List => list::run_list(&ctx, &run).await,
            K8sWorkload::Memory => list::run_memory(&ctx, &run).await,
            K8sWorkload::WatchLatency => watch::run(&ctx, &run).await,
            w => crud::run(&ctx, &run, w, clients).await,
        };
        if !ctx.args.keep {
            ctx.cleanup(&run).await;
        }
        print_line(&result?)?;
    }
    Ok(())
}

/// The `bench etcd` arguments of the store-level txn-put run.
fn store_txn_put_args(args: &K8sArgs, clients: usize) -> EtcdArgs {
    EtcdArgs {
        endpoints: args.etcd_endpoints.clone(),
        workload: super::etcd::Workload::TxnPut,
        clients,
        conns: args.conns_for(clients),
        total: None,
        duration: Some(args.duration),
        key_size: 8,
        val_size: Some(args.value_size),
        key_space: 10_000,
        list_keys: 500,
        watchers: 1,
        rate: 1.0,
        watch_prefix: false,
        timeout: args.timeout,
        cacert: args.etcd_cacert.clone(),
        cert: args.etcd_cert.clone(),
        key: args.etcd_key.clone(),
        label: args.label.clone(),
    }
}

fn print_line(report: &K8sReport) -> Result<(), BenchError> {
    let line = serde_json::to_string(report)?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()?;
    Ok(())
}
