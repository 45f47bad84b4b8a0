//! The one error type of `kuberaft drill`: what stops a drill before it can report.
//! Failures of single requests during a scenario are not errors of the drill: they
//! are counted in the scenario's figures, and a broken invariant (a lost write, a
//! missed watch event) is a result, reported and turned into a non-zero exit at the
//! end.

use std::path::PathBuf;

/// Why a drill could not run (or, for `Violations`, why it did not pass).
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// The flags describe no runnable drill.
    #[error("invalid arguments: {0}")]
    InvalidArgs(String),
    /// The run directory of `cluster/up.sh` is missing or incomplete.
    #[error("cluster run directory {path}: {reason}")]
    RunDir { path: PathBuf, reason: String },
    /// TLS material of the cluster's PKI could not be loaded.
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// Controlling a member (signal, restart, fault switch) failed.
    #[error("member m{member}: {reason}")]
    Member { member: usize, reason: String },
    /// The cluster did not reach a state the drill waits for before its deadline.
    #[error("timed out after {seconds}s waiting for {what}")]
    Timeout { what: String, seconds: u64 },
    /// A request the drill itself needs (not part of the measured load) failed.
    #[error("{0}")]
    Request(String),
    /// Printing the report failed.
    #[error("writing the report: {0}")]
    Io(#[from] std::io::Error),
    /// The drill ran, and invariants were broken in these scenarios.
    #[error("invariants violated in: {}", .0.join(", "))]
    Violations(Vec<String>),
}
