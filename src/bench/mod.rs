//! `kuberaft bench`: load generators that print exactly one JSON line per run on
//! stdout (progress and diagnostics go to stderr).
//!
//! Invariant: a benchmark only talks to its targets through their public client APIs
//! (the etcd v3 gRPC API for `bench etcd`), so the same command measures real etcd and
//! kuberaft alike.

mod connect;
mod error;
mod etcd;
mod histogram;
mod keys;
mod kv;
mod report;
mod watch;

pub use error::BenchError;
pub use etcd::{EtcdArgs, Workload};
pub use histogram::Histogram;

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
}

/// Runs the benchmark described by `args` and prints its result line.
pub async fn run(args: BenchArgs) -> Result<(), BenchError> {
    match args.target {
        BenchTarget::Etcd(etcd) => etcd::run(etcd).await,
    }
}
