//! `kuberaft drill`: failover drills against a running local cluster (the run
//! directory of `cluster/up.sh`), through its load balancer. Each scenario runs a
//! REST write load, an etcd write load and a resuming watch, injects a fault (leader
//! or follower SIGKILL, leader SIGSTOP, leader partition, rolling restart, kill -9 of
//! all), recovers, waits for convergence and checks every acknowledged write; the
//! figures are printed as a table and, with `--json`, as JSON on stdout.
//!
//! Invariant: a drill only talks to the cluster through its public ports and the
//! processes' signals, and it exits non-zero when any scenario lost an acknowledged
//! write, missed a watch event, saw two leaders in one term or did not converge.

mod cluster;
mod error;
pub mod fault_api;
mod session;
mod load;
mod monitor;
mod report;
mod scenario;
mod watch;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::Method;

pub use error::DrillError;
pub use report::{DrillReport, ScenarioReport};
pub use scenario::Scenario;

use cluster::Cluster;
use load::LoadOptions;
use scenario::{Ctx, Timing};

/// Flags of `kuberaft drill`.
#[derive(clap::Args, Debug, Clone)]
pub struct DrillArgs {
    /// The run directory `cluster/up.sh` wrote (ports, pids, start scripts, PKI).
    #[arg(long, env = "KUBERAFT_RUN_DIR", default_value = "cluster/.run")]
    pub run_dir: PathBuf,
    /// Scenarios to run, in this order.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = Scenario::ALL.to_vec())]
    pub scenarios: Vec<Scenario>,
    /// The CI form: short phases (warmup 1s, hold 3s, settle 2s).
    #[arg(long)]
    pub short: bool,
    /// Load before each fault (default 3s, 1s with --short).
    #[arg(long, value_parser = duration)]
    pub warmup: Option<Duration>,
    /// How long a fault lasts: a member down, paused or isolated (default 5s, 3s with
    /// --short; must exceed the election timeout).
    #[arg(long, value_parser = duration)]
    pub hold: Option<Duration>,
    /// Load after the recovery (default 5s, 2s with --short).
    #[arg(long, value_parser = duration)]
    pub settle: Option<Duration>,
    /// Longest wait for the members to converge after a recovery.
    #[arg(long, value_parser = duration, default_value = "60s")]
    pub converge_timeout: Duration,
    /// Concurrent REST clients (ConfigMap creates over HTTPS, one connection each).
    #[arg(long, default_value_t = 4)]
    pub rest_clients: usize,
    /// REST creates per second over all REST clients (0: unpaced).
    #[arg(long, default_value_t = 100.0)]
    pub rest_rate: f64,
    /// Concurrent etcd clients (puts over gRPC, one connection each).
    #[arg(long, default_value_t = 16)]
    pub etcd_clients: usize,
    /// etcd puts per second over all etcd clients (0: unpaced).
    #[arg(long, default_value_t = 800.0)]
    pub etcd_rate: f64,
    /// Per-request timeout of both loads.
    #[arg(long, value_parser = duration, default_value = "1s")]
    pub timeout: Duration,
    /// Print the report as JSON on stdout (the table goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Keep the drill's namespaces and etcd keys afterwards.
    #[arg(long)]
    pub keep: bool,
    /// Also fail when a target is missed (write gap after a leader kill over 2 s,
    /// failed requests during a rolling restart).
    #[arg(long)]
    pub strict: bool,
}

fn duration(s: &str) -> Result<Duration, String> {
    crate::config::parse_duration(s).map_err(|e| e.to_string())
}

/// Runs the drill `args` describes and prints its report.
pub async fn run(args: DrillArgs) -> Result<(), DrillError> {
    let short = args.short;
    let pick = |v: Option<Duration>, full: u64, short_ms: u64| {
        v.unwrap_or(Duration::from_millis(if short { short_ms } else { full }))
    };
    let timing = Timing {
        warmup: pick(args.warmup, 3000, 1000),
        hold: pick(args.hold, 5000, 3000),
        settle: pick(args.settle, 5000, 2000),
        converge_timeout: args.converge_timeout,
    };
    if args.rest_clients == 0 || args.etcd_clients == 0 {
        return Err(DrillError::InvalidArgs(
            "client counts must be at least 1".into(),
        ));
    }
    let cluster = Arc::new(Cluster::open(&args.run_dir)?);
    if cluster.len() < 3 {
        return Err(DrillError::InvalidArgs(format!(
            "the cluster has {} members; failover needs at least 3",
            cluster.len()
        )));
    }
    if args.scenarios.contains(&Scenario::LeaderPartition) {
        check_fault_injection(&cluster).await?;
    }
    let run_id = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        .to_string();
    let ctx = Ctx {
        cluster: cluster.clone(),
        timing,
        rest: LoadOptions {
            clients: args.rest_clients,
            rate: args.rest_rate,
            timeout: args.timeout,
        },
        etcd: LoadOptions {
            clients: args.etcd_clients,
            rate: args.etcd_rate,
            timeout: args.timeout,
        },
        run_id,
    };
    let mut scenarios = Vec::new();
    for s in &args.scenarios {
        tracing::info!(scenario = s.name(), "scenario starts");
        let report = scenario::run(&ctx, *s).await?;
        tracing::info!(
            scenario = s.name(),
            passed = report.passed,
            rest_gap_ms = report.rest.longest_gap_ms,
            etcd_gap_ms = report.etcd.longest_gap_ms,
            converge_ms = ?report.converge_ms,
            "scenario done"
        );
        scenarios.push(report);
    }
    if !args.keep {
        cleanup(&ctx, &args.scenarios).await;
    }
    let report = DrillReport {
        members: cluster.len(),
        short,
        rest_clients: args.rest_clients,
        etcd_clients: args.etcd_clients,
        request_timeout_ms: args.timeout.as_millis() as u64,
        passed: scenarios.iter().all(|s| s.passed),
        scenarios,
    };
    if args.json {
        report::print_table(&mut std::io::stderr(), &report)?;
        let json = serde_json::to_string_pretty(&report)
            .map_err(|e| DrillError::Io(std::io::Error::other(e)))?;
        println!("{json}");
    } else {
        report::print_table(&mut std::io::stdout(), &report)?;
    }
    let failed: Vec<String> = report
        .scenarios
        .iter()
        .filter(|s| !s.passed || (args.strict && !s.targets_met()))
        .map(|s| s.scenario.clone())
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(DrillError::Violations(failed))
    }
}

/// Fails early when the members do not serve the fault switch.
async fn check_fault_injection(cluster: &Cluster) -> Result<(), DrillError> {
    for i in 0..cluster.len() {
        let mut s = session::Session::new(session::Target::plain(cluster::loopback(
            cluster.members[i].client,
        )));
        let answer = s
            .call(
                Method::GET,
                fault_api::PEER_ISOLATION_PATH,
                None,
                Duration::from_secs(2),
            )
            .await;
        if !matches!(&answer, Ok(a) if a.status.is_success()) {
            return Err(DrillError::InvalidArgs(format!(
                "leader-partition needs members started with --enable-fault-injection \
                 (cluster/up.sh passes it); m{i} answered {answer:?}. Leave it out with --scenarios"
            )));
        }
    }
    Ok(())
}

/// Deletes the drill's namespaces and etcd keys (best effort).
async fn cleanup(ctx: &Ctx, scenarios: &[Scenario]) {
    let lb = ctx.cluster.kube_lb();
    let mut s = session::Session::new(lb);
    for sc in scenarios {
        let path = format!("/api/v1/namespaces/{}", ctx.namespace(*sc));
        if let Err(e) = s
            .call(Method::DELETE, &path, None, Duration::from_secs(10))
            .await
        {
            tracing::warn!(error = %e, path, "cleanup");
        }
    }
    let root = ctx.etcd_root();
    let Ok(ch) = cluster::channel(&ctx.cluster.etcd_lb_url()) else {
        return;
    };
    let mut kv = crate::etcd::proto::etcdserverpb::kv_client::KvClient::new(ch);
    let req = crate::etcd::proto::etcdserverpb::DeleteRangeRequest {
        key: bytes::Bytes::from(root.clone()),
        range_end: bytes::Bytes::from(scenario::prefix_end(root.as_bytes())),
        ..Default::default()
    };
    if let Err(e) = tokio::time::timeout(Duration::from_secs(30), kv.delete_range(req)).await {
        tracing::warn!(error = %e, "cleanup of etcd keys");
    }
}
