//! The process's metrics registry and Prometheus exporter. Subsystems record their
//! own metrics (with the `metrics` macros, under etcd's and kube-apiserver's names)
//! next to their code; this module installs the recorder, gives every family its help
//! text and upstream buckets, refreshes the figures that are sampled rather than
//! counted (process resources) and renders text. `docs/metrics.md` lists every family;
//! `tests/observability.rs` checks that list, the dashboards and the alerts against a
//! real scrape.
//!
//! Invariant: one recorder per process. Tests that run several members in one process
//! share it, so they must not assert on per-member values read from it. A counter or
//! histogram without labels exists from `init()` on (at zero), as a Go client's does,
//! so `rate()` and `increase()` see it before its first event.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Latency buckets (seconds) of every histogram not listed in `OVERRIDES`: 0.5 ms to
/// 60 s, doubling; they include etcd's `ExponentialBuckets(0.001, 2, 14)`.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048,
    4.096, 8.192, 16.384, 32.768, 60.0,
];

/// kube-apiserver's request and storage latency buckets (seconds).
const APISERVER_LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

/// kube-apiserver's response size buckets (bytes): `ExponentialBuckets(1000, 10, 8)`.
const RESPONSE_SIZE_BUCKETS: &[f64] = &[1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10];

/// Requests per Raft entry.
const BATCH_SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// Histograms whose buckets differ from `BUCKETS`.
const OVERRIDES: &[(&str, &[f64])] = &[
    (
        "apiserver_request_duration_seconds",
        APISERVER_LATENCY_BUCKETS,
    ),
    ("etcd_request_duration_seconds", APISERVER_LATENCY_BUCKETS),
    ("apiserver_response_sizes", RESPONSE_SIZE_BUCKETS),
    ("kuberaft_proposal_batch_size", BATCH_SIZE_BUCKETS),
];

/// What kind of family a name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every family this process exports: name, kind, help text (upstream's where the
/// name is upstream's), and whether it exists without labels from `init()` on.
const FAMILIES: &[(&str, Kind, &str, bool)] = &[
    // ---- Kubernetes API (kube-apiserver's names) ----
    ("apiserver_request_total", Kind::Counter, "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.", false),
    ("apiserver_request_duration_seconds", Kind::Histogram, "Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.", false),
    ("apiserver_response_sizes", Kind::Histogram, "Response size distribution in bytes for each group, version, verb, resource, subresource, scope and component.", false),
    ("apiserver_current_inflight_requests", Kind::Gauge, "Maximal number of currently used inflight request limit of this apiserver per request kind in last second.", false),
    ("apiserver_longrunning_requests", Kind::Gauge, "Gauge of all active long-running apiserver requests broken out by verb, group, version, resource, scope and component.", false),
    ("apiserver_dropped_requests_total", Kind::Counter, "Number of requests dropped with 'Try again later' response.", false),
    ("apiserver_goaway_total", Kind::Counter, "Number of HTTP/2 connections closed with GOAWAY (--goaway-chance).", true),
    ("apiserver_watch_events_total", Kind::Counter, "Number of events sent in watch clients.", false),
    ("apiserver_resource_objects", Kind::Gauge, "Number of stored objects at the time of last check split by kind.", false),
    ("apiserver_storage_objects", Kind::Gauge, "Number of stored objects at the time of last check split by kind (deprecated name of apiserver_resource_objects).", false),
    ("authentication_attempts", Kind::Counter, "Counter of authenticated attempts.", false),
    ("authentication_duration_seconds", Kind::Histogram, "Authentication duration in seconds broken out by result.", false),
    ("etcd_request_duration_seconds", Kind::Histogram, "Etcd request latency in seconds for each operation and object type.", false),
    ("etcd_requests_total", Kind::Counter, "Etcd request counts for each operation and object type.", false),
    ("etcd_request_errors_total", Kind::Counter, "Etcd failed request counts for each operation and object type.", false),
    // ---- etcd face: gRPC (go-grpc-prometheus' names) and HTTP ----
    ("grpc_server_started_total", Kind::Counter, "Total number of RPCs started on the server.", false),
    ("grpc_server_handled_total", Kind::Counter, "Total number of RPCs completed on the server, regardless of success or failure.", false),
    ("etcd_server_health_success", Kind::Counter, "The total number of successful health checks.", true),
    ("etcd_server_health_failures", Kind::Counter, "The total number of failed health checks.", true),
    // ---- store, MVCC and watch (etcd's names) ----
    ("etcd_mvcc_db_total_size_in_bytes", Kind::Gauge, "Total size of the underlying database physically allocated in bytes.", false),
    ("etcd_server_quota_backend_bytes", Kind::Gauge, "Current backend storage quota size in bytes.", false),
    ("etcd_debugging_mvcc_current_revision", Kind::Gauge, "The current revision of store.", false),
    ("etcd_debugging_mvcc_compact_revision", Kind::Gauge, "The revision of the last compaction in store.", false),
    ("etcd_debugging_mvcc_watcher_total", Kind::Gauge, "Total number of watchers.", false),
    ("etcd_debugging_mvcc_slow_watcher_total", Kind::Counter, "Number of watchers moved to catch-up because they fell behind.", true),
    ("etcd_debugging_mvcc_events_total", Kind::Counter, "Total number of events sent by this member.", true),
    ("etcd_debugging_server_lease_expired_total", Kind::Counter, "The total number of expired leases.", true),
    ("etcd_disk_backend_commit_duration_seconds", Kind::Histogram, "The latency distributions of commit called by backend.", true),
    // ---- Raft (etcd's names, kuberaft_ where etcd has none) ----
    ("etcd_server_has_leader", Kind::Gauge, "Whether or not a leader exists. 1 is existence, 0 is not.", false),
    ("etcd_server_is_leader", Kind::Gauge, "Whether or not this member is a leader. 1 if is, 0 otherwise.", false),
    ("etcd_server_is_learner", Kind::Gauge, "Whether or not this member is a learner. 1 if is, 0 otherwise.", false),
    ("etcd_server_term", Kind::Gauge, "The current Raft term of this member.", false),
    ("etcd_server_apply_index", Kind::Gauge, "The Raft log index this member's state machine has applied.", false),
    ("etcd_server_leader_changes_seen_total", Kind::Counter, "The number of leader changes seen.", true),
    ("etcd_server_proposals_pending", Kind::Gauge, "The current number of pending proposals to commit.", true),
    ("etcd_server_proposals_committed_total", Kind::Counter, "The total number of client proposals committed through this member.", true),
    ("etcd_server_proposals_applied_total", Kind::Counter, "The total number of Raft entries applied by this member.", true),
    ("etcd_server_proposals_failed_total", Kind::Counter, "The total number of failed proposals seen.", true),
    ("etcd_disk_wal_fsync_duration_seconds", Kind::Histogram, "The latency distributions of fsync called by WAL.", true),
    ("etcd_disk_wal_write_bytes_total", Kind::Counter, "Total number of bytes written in WAL.", true),
    ("etcd_network_peer_round_trip_time_seconds", Kind::Histogram, "Round-Trip-Time histogram between peers.", false),
    ("etcd_debugging_snap_save_total_num", Kind::Counter, "The total number of snapshots this member built.", true),
    ("etcd_debugging_snap_save_total_duration_seconds", Kind::Histogram, "The total latency distributions of save called by snapshot.", true),
    ("etcd_snap_db_save_total_duration_seconds", Kind::Histogram, "The total latency distributions of v3 snapshot save (installing a snapshot received from the leader).", true),
    ("kuberaft_raft_commit_index", Kind::Gauge, "The highest Raft log index this member knows to be committed.", false),
    ("kuberaft_raft_last_log_index", Kind::Gauge, "The last Raft log index in this member's log.", false),
    ("kuberaft_raft_fast_campaigns_total", Kind::Counter, "Elections this member started because a majority of voters had heard from no leader for an election timeout.", true),
    ("kuberaft_raft_follower_lag_entries", Kind::Gauge, "On the leader: log entries each member's log is behind the leader's.", false),
    ("kuberaft_proposal_batch_size", Kind::Histogram, "Client requests carried by one Raft entry.", false),
    ("kuberaft_proposal_duration_seconds", Kind::Histogram, "Time from submitting a batch to Raft until it is applied locally.", false),
    // ---- process (Prometheus client_golang's names) ----
    ("process_cpu_seconds_total", Kind::Gauge, "Total user and system CPU time spent in seconds.", false),
    ("process_resident_memory_bytes", Kind::Gauge, "Resident memory size in bytes.", false),
    ("process_virtual_memory_bytes", Kind::Gauge, "Virtual memory size in bytes.", false),
    ("process_open_fds", Kind::Gauge, "Number of open file descriptors.", false),
    ("process_max_fds", Kind::Gauge, "Maximum number of open file descriptors.", false),
    ("process_start_time_seconds", Kind::Gauge, "Start time of the process since unix epoch in seconds.", false),
];

/// Installs the recorder once; later calls are no-ops.
pub fn init() {
    HANDLE.get_or_init(|| {
        let handle = match builder().install_recorder() {
            Ok(handle) => handle,
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed");
                return None;
            }
        };
        describe_families();
        Some(handle)
    });
}

/// Renders every metric in Prometheus' text format.
pub fn render() -> String {
    init();
    sample_process();
    match HANDLE.get() {
        Some(Some(h)) => h.render(),
        _ => String::new(),
    }
}

/// Records a duration in seconds into a histogram.
pub fn observe_seconds(name: &'static str, d: Duration) {
    metrics::histogram!(name).record(d.as_secs_f64());
}

fn builder() -> PrometheusBuilder {
    let mut builder = match PrometheusBuilder::new().set_buckets(BUCKETS) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "metrics buckets rejected");
            return PrometheusBuilder::new();
        }
    };
    for (name, buckets) in OVERRIDES {
        builder = match builder.set_buckets_for_metric(Matcher::Full((*name).to_owned()), buckets) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, metric = name, "metrics buckets rejected");
                return PrometheusBuilder::new();
            }
        };
    }
    builder
}

/// Gives every family its help text and registers the label-free ones at zero.
fn describe_families() {
    for &(name, kind, help, at_zero) in FAMILIES {
        match kind {
            Kind::Counter => {
                metrics::describe_counter!(name, help);
                if at_zero {
                    metrics::counter!(name).increment(0);
                }
            }
            Kind::Gauge => {
                metrics::describe_gauge!(name, help);
                if at_zero {
                    metrics::gauge!(name).increment(0.0);
                }
            }
            Kind::Histogram => {
                metrics::describe_histogram!(name, help);
                if at_zero {
                    // Registering the handle makes the family render with empty buckets.
                    let _ = metrics::histogram!(name);
                }
            }
        }
    }
    // The two request kinds are a closed set: both exist before the first 429.
    for kind in ["readOnly", "mutating"] {
        metrics::counter!("apiserver_dropped_requests_total", "request_kind" => kind).increment(0);
    }
    if let Some(start) = process_start_time() {
        metrics::gauge!("process_start_time_seconds").set(start);
    }
}

/// Clock ticks per second of /proc's times (USER_HZ, 100 on every Linux platform).
const TICKS_PER_SECOND: f64 = 100.0;

/// Samples process figures from /proc (Linux).
fn sample_process() {
    let page = 4096.0;
    if let Ok(statm) = std::fs::read_to_string("/proc/self/statm") {
        let mut parts = statm.split_whitespace();
        if let (Some(vsz), Some(rss)) = (parts.next(), parts.next()) {
            if let (Ok(vsz), Ok(rss)) = (vsz.parse::<f64>(), rss.parse::<f64>()) {
                metrics::gauge!("process_virtual_memory_bytes").set(vsz * page);
                metrics::gauge!("process_resident_memory_bytes").set(rss * page);
            }
        }
    }
    if let Some(fields) = stat_fields() {
        // utime and stime are fields 14 and 15 of stat (1-based), 12 and 13 here.
        if let (Some(u), Some(s)) = (fields.get(11), fields.get(12)) {
            if let (Ok(u), Ok(s)) = (u.parse::<f64>(), s.parse::<f64>()) {
                metrics::gauge!("process_cpu_seconds_total").set((u + s) / TICKS_PER_SECOND);
            }
        }
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        metrics::gauge!("process_open_fds").set(dir.count() as f64);
    }
    if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
        if let Some(line) = limits.lines().find(|l| l.starts_with("Max open files")) {
            if let Some(soft) = line
                .split_whitespace()
                .nth(3)
                .and_then(|v| v.parse::<f64>().ok())
            {
                metrics::gauge!("process_max_fds").set(soft);
            }
        }
    }
}

/// The fields of /proc/self/stat after the command name (which may contain spaces),
/// so field N (1-based, as proc(5) numbers them) is at index N - 3.
fn stat_fields() -> Option<Vec<String>> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// Seconds since the epoch at which this process started: boot time (`btime` of
/// /proc/stat) plus the process's start in ticks after boot (field 22 of its stat).
fn process_start_time() -> Option<f64> {
    let since_boot: f64 = stat_fields()?.get(19)?.parse().ok()?;
    let proc_stat = std::fs::read_to_string("/proc/stat").ok()?;
    let btime: f64 = proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(btime + since_boot / TICKS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_unique_and_named_as_prometheus_requires() {
        let mut seen = std::collections::BTreeSet::new();
        for (name, kind, help, _) in FAMILIES {
            assert!(seen.insert(*name), "{name} listed twice");
            assert!(!help.is_empty(), "{name} has no help");
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{name} is not snake_case"
            );
            if *kind == Kind::Counter && name.ends_with("_total") {
                continue;
            }
            // Only upstream's own exceptions may be counters without `_total`.
            if *kind == Kind::Counter {
                assert!(
                    matches!(
                        *name,
                        "authentication_attempts"
                            | "etcd_server_health_success"
                            | "etcd_server_health_failures"
                            | "etcd_debugging_snap_save_total_num"
                    ),
                    "counter {name} lacks _total"
                );
            }
        }
        for (name, _) in OVERRIDES {
            assert!(
                FAMILIES
                    .iter()
                    .any(|(n, k, _, _)| n == name && *k == Kind::Histogram),
                "bucket override for {name}, which is not a listed histogram"
            );
        }
    }

    #[test]
    fn process_start_time_is_in_the_past() {
        let start = process_start_time().expect("readable /proc");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after epoch")
            .as_secs_f64();
        assert!(
            start <= now + 1.0 && start > now - 86_400.0 * 365.0,
            "{start} vs {now}"
        );
    }
}
