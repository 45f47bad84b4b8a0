//! The process's metrics registry and Prometheus exporter. Subsystems record their
//! own metrics (with the `metrics` macros, under etcd's and kube-apiserver's names)
//! next to their code; this module installs the recorder, refreshes the figures that
//! are sampled rather than counted (Raft state, process resources) and renders text.
//!
//! Invariant: one recorder per process. Tests that run several members in one process
//! share it, so they must not assert on per-member values read from it.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Latency buckets (seconds) shared by every histogram: 0.5 ms to 60 s.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024, 2.048,
    4.096, 8.192, 16.384, 32.768, 60.0,
];

/// Installs the recorder once; later calls are no-ops.
pub fn init() {
    HANDLE.get_or_init(|| {
        let builder = match PrometheusBuilder::new().set_buckets(BUCKETS) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "metrics buckets rejected");
                PrometheusBuilder::new()
            }
        };
        match builder.install_recorder() {
            Ok(handle) => Some(handle),
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed");
                None
            }
        }
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
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command name (which may contain spaces) start after ')'.
        if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // utime and stime are fields 14 and 15 of stat (1-based), 12 and 13 here.
            if let (Some(u), Some(s)) = (fields.get(11), fields.get(12)) {
                if let (Ok(u), Ok(s)) = (u.parse::<f64>(), s.parse::<f64>()) {
                    metrics::gauge!("process_cpu_seconds_total").set((u + s) / 100.0);
                }
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

/// Records a duration in seconds into a histogram.
pub fn observe_seconds(name: &'static str, d: Duration) {
    metrics::histogram!(name).record(d.as_secs_f64());
}
