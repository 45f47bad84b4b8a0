//! The one error type of `kuberaft bench`: everything that stops a run before it can
//! print its result line. Failures of single requests during a run are not errors of
//! the run: they are counted in the result.

use std::path::PathBuf;

/// Why a benchmark run could not produce its result.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The flags describe no runnable benchmark.
    #[error("invalid arguments: {0}")]
    InvalidArgs(String),
    /// An endpoint URL could not be parsed or used.
    #[error("endpoint {endpoint}: {reason}")]
    Endpoint {
        /// The endpoint as given on the command line.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Connecting to an endpoint failed.
    #[error("connect to {endpoint}: {source}")]
    Connect {
        /// The endpoint as given on the command line.
        endpoint: String,
        /// The transport error.
        #[source]
        source: tonic::transport::Error,
    },
    /// A connection was established but its first request failed.
    #[error("probe of {endpoint}: {status}")]
    Probe {
        /// The endpoint as given on the command line.
        endpoint: String,
        /// The status of the probing Range.
        status: Box<tonic::Status>,
    },
    /// A TLS file could not be read or parsed.
    #[error("TLS file {path}: {reason}")]
    TlsFile {
        /// The file named by --cacert, --cert or --key.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the TLS configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// Preparing keys before the measured phase failed.
    #[error("prepare: {0}")]
    Prepare(String),
    /// The watch-fanout workload could not set up its watchers.
    #[error("watch setup: {0}")]
    WatchSetup(String),
    /// Writing the result line failed.
    #[error("write result: {0}")]
    Output(#[from] std::io::Error),
    /// Encoding the result line failed.
    #[error("encode result: {0}")]
    Encode(#[from] serde_json::Error),
}
