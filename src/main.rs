//! The `kuberaft` command line: a thin dispatcher over the library.

use clap::{Parser, Subcommand};

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

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,openraft=warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Some(Command::Bench(args)) => runtime.block_on(kuberaft::bench::run(*args))?,
        Some(Command::Serve(args)) => runtime.block_on(serve(*args))?,
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
    let node = kuberaft::node::Node::start(config, Default::default()).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted: shutting down"),
        _ = term.recv() => tracing::info!("terminated: shutting down"),
    }
    node.stop().await;
    Ok(())
}
