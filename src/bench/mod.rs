//! `kuberaft bench`: load generators that print one JSON line per run.

/// Arguments of `kuberaft bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {}

/// Runs the benchmark described by `args`.
pub async fn run(_args: BenchArgs) -> std::io::Result<()> {
    Ok(())
}
