//! The `kuberaft` command line: a thin dispatcher over the library.

use clap::{Parser, Subcommand};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// mimalloc returns freed memory to the kernel; glibc's malloc kept a replica at 2 GB
/// resident after a large DELETE on a collection had freed it (docs/benchmarks.md).
/// Built without transparent huge pages, which would count whole 2 MiB pages as
/// resident from the start.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "kuberaft",
    version,
    about = "Kubernetes API server with its own Raft-replicated, etcd-compatible store"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a subcommand, kuberaft serves (as etcd does), taking `serve`'s flags.
    #[command(flatten)]
    serve: Box<kuberaft::config::ServeArgs>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a replica (the default command).
    Serve(Box<kuberaft::config::ServeArgs>),
    /// Load generators: etcd v3 workloads against any etcd endpoints.
    Bench(Box<kuberaft::bench::BenchArgs>),
    /// Create (or complete) one PKI for a multi-replica cluster: CA, serving, peer and
    /// admin certificates, service-account keys and the admin kubeconfig.
    Certs {
        /// Directory for the PKI (replicas started with --cert-dir use it).
        #[arg(long)]
        cert_dir: std::path::PathBuf,
        /// Extra host names and IPs the serving and peer certificates must name.
        #[arg(long, value_delimiter = ',')]
        hosts: Vec<String>,
        /// The API server URL the admin kubeconfig points at (e.g. the load balancer).
        #[arg(long, default_value = "https://127.0.0.1:6443")]
        server: String,
    },
    /// Failover drills against a local cluster started by `cluster/up.sh`: faults
    /// under load, then checks that no acknowledged write or watch event was lost.
    Drill(Box<kuberaft::drill::DrillArgs>),
    /// Snapshot files saved with `etcdctl snapshot save`.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// Build a new member's data directory from a snapshot file (every member of the
    /// new cluster restores the same file, then starts with --initial-cluster-state new).
    Restore {
        /// The file `etcdctl snapshot save` wrote.
        file: std::path::PathBuf,
        /// The new member's flags: --name, --data-dir, --initial-cluster,
        /// --initial-cluster-token, --initial-advertise-peer-urls.
        #[command(flatten)]
        member: Box<kuberaft::config::ServeArgs>,
    },
}

/// openraft 0.9.25 logs an ERROR for every peer that fails to answer a leadership
/// confirmation round (`raft_core.rs`, line 383), and the leader runs one such round
/// per batch of linearizable reads: with one member down that was about 800 lines a
/// second under read load. The replication task already reports the down peer a few
/// times a second, so these are dropped (`tests/etcd_faults.rs` checks, and notices
/// if an openraft upgrade moves the line).
fn is_read_round_noise(meta: &tracing::Metadata<'_>) -> bool {
    *meta.level() == tracing::Level::ERROR
        && meta.target() == "openraft::core::raft_core"
        && meta.line() == Some(383)
        && meta
            .file()
            .is_some_and(|f| f.ends_with("core/raft_core.rs"))
}

/// Installs the log subscriber: `RUST_LOG` (default `info,openraft=warn`) to stderr,
/// less openraft's read-round noise.
fn init_logging() {
    let env = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn"));
    // The noise filter must carry the level filter's hint: without one the global
    // maximum level is TRACE, and every `log::trace!` of sled and every debug span of
    // openraft reaches the filters (a fifth of put/1's throughput).
    let max_level = env
        .max_level_hint()
        .unwrap_or(tracing_subscriber::filter::LevelFilter::TRACE);
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(env)
                .with_filter(
                    filter_fn(|meta| !is_read_round_noise(meta)).with_max_level_hint(max_level),
                ),
        )
        .init();
}

fn main() -> anyhow::Result<()> {
    init_logging();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Some(Command::Bench(args)) => runtime.block_on(kuberaft::bench::run(*args))?,
        Some(Command::Serve(args)) => runtime.block_on(serve(*args))?,
        Some(Command::Drill(args)) => runtime.block_on(kuberaft::drill::run(*args))?,
        Some(Command::Certs {
            cert_dir,
            hosts,
            server,
        }) => {
            let mut all = kuberaft::pki::default_hosts(Some(std::net::IpAddr::V4(
                std::net::Ipv4Addr::new(10, 96, 0, 1),
            )));
            all.extend(hosts);
            let paths = kuberaft::pki::PkiPaths::new(&cert_dir);
            kuberaft::pki::ensure(&paths, &kuberaft::pki::PkiRequest { hosts: all, server })?;
            println!(
                "PKI in {} (admin kubeconfig: {})",
                cert_dir.display(),
                paths.admin_kubeconfig().display()
            );
        }
        Some(Command::Snapshot(SnapshotCommand::Restore { file, member })) => {
            let config = member.validate()?;
            let id = kuberaft::node::restore(&file, &config)?;
            println!(
                "restored {} into {} as member {:x} of cluster {:x}; start it with --initial-cluster-state new",
                file.display(),
                config.data_dir.display(),
                id.member_id,
                id.cluster_id
            );
        }
        None => runtime.block_on(serve(*cli.serve))?,
    }
    Ok(())
}

async fn serve(args: kuberaft::config::ServeArgs) -> anyhow::Result<()> {
    let config = args.validate()?;
    let stop = kuberaft::node::StopOptions {
        delay: config.shutdown_delay,
        drain_timeout: config.shutdown_grace,
    };
    let node = kuberaft::node::Node::start(config, Default::default()).await?;
    print_instructions(&node);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: shutting down"),
        _ = term.recv() => tracing::info!("terminated: shutting down"),
    }
    node.shutdown_with(&stop).await;
    Ok(())
}

/// Tells the user where things are, as `cargo run --release` is the first thing they run.
fn print_instructions(node: &kuberaft::node::Node) {
    let etcd = node
        .client_addrs
        .first()
        .map(|a| format!("http://{a}"))
        .unwrap_or_default();
    match &node.kube {
        Some((addr, kubeconfig)) => eprintln!(
            "\nkuberaft is serving.\n  Kubernetes API: https://{addr}\n    export KUBECONFIG={}\n    kubectl get namespaces\n  etcd API: {etcd}\n    ETCDCTL_API=3 etcdctl --endpoints {etcd} endpoint status -w table\n",
            std::fs::canonicalize(kubeconfig)
                .unwrap_or_else(|_| kubeconfig.clone())
                .display()
        ),
        None => eprintln!("\nkuberaft is serving the etcd API on {etcd}\n"),
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::filter::LevelFilter;

    /// The global maximum level decides whether a disabled `trace!` costs a branch or
    /// a trip through the filters; at TRACE, put/1 lost a fifth of its throughput.
    #[test]
    fn logging_keeps_the_global_level_at_the_filter() {
        if std::env::var_os("RUST_LOG").is_some() {
            println!("skipped: RUST_LOG is set, so the level is the caller's choice");
            return;
        }
        super::init_logging();
        assert_eq!(LevelFilter::current(), LevelFilter::INFO);
    }
}
