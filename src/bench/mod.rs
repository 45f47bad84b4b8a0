//! `kuberaft bench`: load generators that print exactly one JSON line per run on
//! stdout (progress and diagnostics go to stderr).
//!
//! Invariant: a benchmark only talks to its targets through their public client APIs
//! (the etcd v3 gRPC API for `bench etcd`, the Kubernetes REST API over HTTP/2 for
//! `bench k8s`), so the same command measures real etcd (or kube-apiserver) and
//! kuberaft alike.

mod connect;
mod error;
mod etcd;
mod histogram;
mod k8s;
mod keys;
mod kv;
mod report;
mod watch;

pub use error::BenchError;
pub use etcd::{EtcdArgs, Workload};
pub use histogram::Histogram;
pub use k8s::{K8sArgs, K8sWorkload};

/// Arguments of `kuberaft bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// What to load.
    #[command(subcommand)]
    pub target: BenchTarget,
}

/// The systems `kuberaft bench` can load.
#[derive(clap::Subcommand, Debug)]
pub enum BenchTarget {
    /// etcd v3 workloads against any etcd v3 endpoints (real etcd or kuberaft's).
    Etcd(EtcdArgs),
    /// Kubernetes API workloads (ConfigMaps over HTTP/2) against a kuberaft or
    /// kube-apiserver.
    K8s(K8sArgs),
}

/// Runs the benchmark described by `args` and prints its result line.
pub async fn run(args: BenchArgs) -> Result<(), BenchError> {
    match args.target {
        BenchTarget::Etcd(etcd) => etcd::run(etcd).await,
        BenchTarget::K8s(k8s) => k8s::run(k8s).await,
    }
}
