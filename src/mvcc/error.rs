//! Errors of the MVCC layer. The deterministic ones (same on every member for the same
//! request) travel inside apply results; `Storage` and `Corrupt` are local faults.
//!
//! Display texts are etcd's, so the etcd face can pass them through unchanged.

use serde::{Deserialize, Serialize};

use super::types::Revision;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum MvccError {
    #[error("etcdserver: mvcc: required revision has been compacted")]
    Compacted { compact_revision: Revision },
    #[error("etcdserver: mvcc: required revision is a future revision")]
    FutureRevision,
    #[error("etcdserver: requested lease not found")]
    LeaseNotFound,
    #[error("etcdserver: lease already exists")]
    LeaseExists,
    #[error("etcdserver: key not found")]
    KeyNotFound,
    #[error("etcdserver: mvcc: database space exceeded")]
    NoSpace,
    /// The backend failed to read or write; the member must not go on applying.
    #[error("etcdserver: storage error: {0}")]
    Storage(String),
    /// The data on disk is not what this version of kuberaft wrote.
    #[error("data directory is corrupt or foreign: {0}")]
    Corrupt(String),
}

impl MvccError {
    /// True for faults of this member rather than answers to the request.
    pub fn is_local_fault(&self) -> bool {
        matches!(self, MvccError::Storage(_) | MvccError::Corrupt(_))
    }
}

impl From<sled::Error> for MvccError {
    fn from(e: sled::Error) -> Self {
        match e {
            sled::Error::Corruption { .. } => MvccError::Corrupt(e.to_string()),
            other => MvccError::Storage(other.to_string()),
        }
    }
}
