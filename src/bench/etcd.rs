//! `kuberaft bench etcd`: the flags, and the run of one workload against any etcd v3
//! endpoints (real etcd or kuberaft), ending in one JSON line on stdout.
//!
//! Invariant: clients are spread round-robin over `--conns` connections, connections
//! round-robin over the endpoints (as etcd's own benchmark tool does), and nothing done
//! before the measured phase (connecting, preparing keys, creating watches) is timed.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use super::connect::{connect_all, normalize_endpoints, TlsFiles};
use super::error::BenchError;
use super::{kv, watch};

/// Flags of `kuberaft bench etcd`.
#[derive(clap::Args, Debug, Clone)]
pub struct EtcdArgs {
    /// etcd v3 client URLs, comma separated: http://host:port or https://host:port
    /// (a bare host:port means http).
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
    pub endpoints: Vec<String>,
    /// What each operation is.
    #[arg(long, value_enum)]
    pub workload: Workload,
    /// Concurrent clients, each with one request in flight (closed loop).
    #[arg(long, default_value_t = 1)]
    pub clients: usize,
    /// HTTP/2 connections shared by the clients.
    #[arg(long, default_value_t = 1)]
    pub conns: usize,
    /// Stop after this many operations (watch-fanout: this many puts).
    #[arg(long, conflicts_with = "duration")]
    pub total: Option<u64>,
    /// Stop after this long, e.g. `10s`, `500ms` or `10` (seconds). Default 10s when
    /// --total is not given.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Minimum key length in bytes (keys are a prefix plus a zero-padded index).
    #[arg(long, default_value_t = 8)]
    pub key_size: usize,
    /// Value length in bytes. Default 256, or 1024 for list-prefix.
    #[arg(long)]
    pub val_size: Option<usize>,
    /// Distinct keys that put, range and range-serializable pick from at random
    /// (range workloads write them all before measuring).
    #[arg(long, default_value_t = 10_000)]
    pub key_space: u64,
    /// list-prefix: keys under the listed prefix.
    #[arg(long, default_value_t = 500)]
    pub list_keys: u64,
    /// watch-fanout: number of watch streams.
    #[arg(long, default_value_t = 100)]
    pub watchers: usize,
    /// watch-fanout: puts per second by the single writer.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// watch-fanout: watch a prefix and put to --key-space keys under it, instead of
    /// watching and putting one key.
    #[arg(long)]
    pub watch_prefix: bool,
    /// Per-request timeout; a request that takes longer counts as an error.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub timeout: Duration,
    /// CA bundle (PEM) that verifies https:// endpoints.
    #[arg(long)]
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM) for https:// endpoints that require one.
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of --cert.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Name of the system under test, copied into the result as "target".
    #[arg(long)]
    pub label: Option<String>,
}

/// The etcd workloads.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// Put of a random key of the key space.
    Put,
    /// Kubernetes update shape: each client owns a key and sends
    /// Txn(mod_revision == last seen → Put, else Get).
    TxnPut,
    /// Linearizable Range of one random, existing key.
    Range,
    /// Serializable (local) Range of one random, existing key.
    RangeSerializable,
    /// Linearizable Range of a whole prefix of --list-keys keys.
    ListPrefix,
    /// --watchers watch streams on one key (or prefix), one writer at --rate puts/s;
    /// latency is event receipt minus put send, per watcher per event.
    WatchFanout,
}

impl Workload {
    /// The name used on the command line and in the result line.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Put => "put",
            Workload::TxnPut => "txn-put",
            Workload::Range => "range",
            Workload::RangeSerializable => "range-serializable",
            Workload::ListPrefix => "list-prefix",
            Workload::WatchFanout => "watch-fanout",
        }
    }
}

/// How long the measured phase lasts.
#[derive(Clone, Copy, Debug)]
pub enum Stop {
    /// After this many operations.
    Total(u64),
    /// After this much time.
    Duration(Duration),
}

impl EtcdArgs {
    /// The value size, with the workload's default.
    pub fn value_size(&self) -> usize {
        self.val_size.unwrap_or(match self.workload {
            Workload::ListPrefix => 1024,
            _ => 256,
        })
    }

    /// The stop condition, with the default of 10 seconds.
    pub fn stop(&self) -> Stop {
        match (self.total, self.duration) {
            (Some(total), _) => Stop::Total(total),
            (None, Some(d)) => Stop::Duration(d),
            (None, None) => Stop::Duration(Duration::from_secs(10)),
        }
    }

    fn validate(&self) -> Result<(), BenchError> {
        let bad = |m: &str| Err(BenchError::InvalidArgs(m.to_owned()));
        if self.clients == 0 {
            return bad("--clients must be at least 1");
        }
        if self.conns == 0 {
            return bad("--conns must be at least 1");
        }
        if self.total == Some(0) {
            return bad("--total must be at least 1");
        }
        if self.duration == Some(Duration::ZERO) {
            return bad("--duration must be positive");
        }
        if self.timeout.is_zero() {
            return bad("--timeout must be positive");
        }
        if self.workload == Workload::WatchFanout {
            if self.watchers == 0 {
                return bad("--watchers must be at least 1");
            }
            if !(self.rate.is_finite() && self.rate > 0.0) {
                return bad("--rate must be a positive number");
            }
            if self.value_size() < watch::STAMP_LEN {
                return bad("watch-fanout needs --val-size of at least 8 (the send time)");
            }
        }
        Ok(())
    }
}

/// Runs one workload and prints its result line on stdout.
pub async fn run(args: EtcdArgs) -> Result<(), BenchError> {
    args.validate()?;
    let endpoints = normalize_endpoints(&args.endpoints)?;
    let tls = TlsFiles {
        cacert: args.cacert.clone(),
        cert: args.cert.clone(),
        key: args.key.clone(),
    };
    let conns = if args.workload == Workload::WatchFanout {
        args.conns.min(args.watchers)
    } else {
        args.conns.min(args.clients)
    };
    tracing::info!(
        workload = args.workload.name(),
        endpoints = %endpoints.join(","),
        conns,
        "bench: connecting"
    );
    let channels = connect_all(&endpoints, conns, &tls, args.timeout).await?;
    let report = match args.workload {
        Workload::WatchFanout => watch::run(&args, &endpoints, channels).await?,
        _ => kv::run(&args, &endpoints, channels).await?,
    };
    let line = report.to_line()?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")?;
    stdout.flush()?;
    Ok(())
}

/// Parses `10`, `2.5`, `10s`, `500ms` or `1m` into a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 10s, 500ms or 1m"))?;
    Duration::try_from_secs_f64(value * scale).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("-1s").is_err());
    }
}
