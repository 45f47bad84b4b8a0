//! The result of one benchmark run: exactly one JSON object, printed as one line on
//! stdout.
//!
//! Invariant: field order is fixed (common fields first, then workload parameters), and
//! latencies are milliseconds rounded to the microsecond.

use serde::Serialize;

use super::histogram::Histogram;

/// The result line of `kuberaft bench etcd`.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Workload name as given to --workload.
    pub workload: &'static str,
    /// Free-form name of the system under test (--label), e.g. `etcd-3.4`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The endpoints, comma separated.
    pub endpoints: String,
    /// Counts and latencies.
    #[serde(flatten)]
    pub figures: Figures,
    /// Workload parameters.
    #[serde(flatten)]
    pub params: Params,
}

/// Parameters that shaped the run; the ones a workload does not use are omitted.
#[derive(Debug, Default, Serialize)]
pub struct Params {
    /// Length of each key in bytes.
    pub key_size: usize,
    /// Length of each value in bytes.
    pub val_size: usize,
    /// Number of distinct keys the clients pick from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_space: Option<u64>,
    /// Keys returned by each list-prefix Range.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list_keys: Option<u64>,
    /// Watch streams of watch-fanout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watchers: Option<usize>,
    /// Target put rate of the watch-fanout writer, per second.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Puts acknowledged to the watch-fanout writer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub puts: Option<u64>,
    /// txn-put transactions whose compare failed (counted in ops, not errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub txn_conflicts: Option<u64>,
    /// Operations that hit --timeout (included in errors).
    pub timeouts: u64,
    /// The per-request timeout, in seconds.
    pub timeout_s: f64,
}

/// Fills the counting and latency fields of a report from a merged histogram.
pub struct Measured {
    /// Successful operations and their latencies.
    pub histogram: Histogram,
    /// Failed operations.
    pub errors: u64,
    /// Wall time of the measured phase, in seconds.
    pub duration_s: f64,
}

/// The figures every result line carries, in this order.
#[derive(Debug, Serialize)]
pub struct Figures {
    /// Concurrent clients (watchers for the watch workloads).
    pub clients: usize,
    /// HTTP/2 connections.
    pub conns: usize,
    /// Successful operations (delivered events for the watch workloads).
    pub ops: u64,
    /// Failed or timed-out operations (plus missed events for the watch workloads).
    pub errors: u64,
    /// Wall time of the measured phase.
    pub duration_s: f64,
    /// `ops / duration_s`.
    pub ops_per_sec: f64,
    /// Latency quantiles of successful operations.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest latency, exact.
    pub max_ms: f64,
}

impl Figures {
    /// The figures of one measured phase.
    pub fn new(clients: usize, conns: usize, measured: &Measured) -> Self {
        let h = &measured.histogram;
        let ops = h.count();
        let ops_per_sec = if measured.duration_s > 0.0 {
            ops as f64 / measured.duration_s
        } else {
            0.0
        };
        Figures {
            clients,
            conns,
            ops,
            errors: measured.errors,
            duration_s: round(measured.duration_s, 3),
            ops_per_sec: round(ops_per_sec, 1),
            p50_ms: ms(h.quantile_ns(0.50)),
            p90_ms: ms(h.quantile_ns(0.90)),
            p99_ms: ms(h.quantile_ns(0.99)),
            max_ms: ms(h.max_ns()),
        }
    }
}

impl Report {
    /// Assembles the report of one run.
    pub fn new(
        workload: &'static str,
        target: Option<String>,
        endpoints: &[String],
        clients: usize,
        conns: usize,
        measured: &Measured,
        params: Params,
    ) -> Self {
        Report {
            workload,
            target,
            endpoints: endpoints.join(","),
            figures: Figures::new(clients, conns, measured),
            params,
        }
    }

    /// The report as one JSON line, without the trailing newline.
    pub fn to_line(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

/// Nanoseconds as milliseconds rounded to the microsecond.
pub(crate) fn ms(ns: u64) -> f64 {
    round(ns as f64 / 1e6, 3)
}

/// `x` rounded to `decimals` places.
pub(crate) fn round(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_with_fixed_field_order() {
        let mut histogram = Histogram::new();
        histogram.record_ns(1_500_000);
        let measured = Measured {
            histogram,
            errors: 2,
            duration_s: 0.5,
        };
        let params = Params {
            key_size: 8,
            val_size: 256,
            key_space: Some(10),
            ..Params::default()
        };
        let line = Report::new(
            "put",
            Some("etcd-3.4".into()),
            &["http://a:1".into()],
            1,
            1,
            &measured,
            params,
        )
        .to_line()
        .expect("encodes");
        assert!(!line.contains('\n'));
        assert!(line.starts_with(r#"{"workload":"put","target":"etcd-3.4","endpoints":"http://a:1","clients":1,"conns":1,"ops":1,"errors":2,"duration_s":0.5,"ops_per_sec":2.0,"p50_ms":1.5"#), "{line}");
        assert!(
            line.contains(r#""key_space":10"#) && !line.contains("watchers"),
            "{line}"
        );
    }
}
