//! The `kuberaft` command line: a thin dispatcher over the library.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "kuberaft", version, about = "Kubernetes API server with its own Raft-replicated, etcd-compatible store")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Load generators: etcd v3 workloads against any etcd endpoints.
    Bench(kuberaft::bench::BenchArgs),
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Some(Command::Bench(args)) => runtime.block_on(kuberaft::bench::run(args))?,
        None => anyhow::bail!("serve is not wired yet"),
    }
    Ok(())
}
