//! The openraft adapter: type configuration, the log store (our own write-ahead log),
//! the state machine over the MVCC store, the peer network, and the proposer that
//! batches client requests into log entries.
//!
//! Invariant: a client write is acknowledged only after its entry is fdatasynced on a
//! quorum and applied locally; apply is deterministic, so every member holds the same
//! state at the same log index.

pub mod fault;
pub mod log_store;
pub mod network;
pub mod peer;
pub mod proposer;
pub mod proto;
pub mod state_machine;
pub mod stream;
pub mod wal;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::mvcc::{Applied, Request};

/// One Raft log entry's payload: a batch of client requests, applied in order, each
/// with its own revision. Batching many proposals into one entry gives one append,
/// one fsync and one state-machine batch for all of them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub requests: Vec<Request>,
}

impl fmt::Display for Proposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Proposal({} requests)", self.requests.len())
    }
}

/// What applying one `Proposal` gave: one result per request, in order, and the
/// index of the log entry that carried it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalResult {
    pub applied: Vec<Applied>,
    pub index: u64,
}

/// A member as the Raft membership records it (etcd's `Member`, less the id, which is
/// the Raft node id).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
    /// Added as a voter through the Cluster API: the leader promotes this learner once
    /// it has caught up (a member never votes before it holds the log).
    #[serde(default)]
    pub join_as_voter: bool,
}

impl fmt::Display for Member {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.name, self.peer_urls.join(","))
    }
}

openraft::declare_raft_types!(
    /// kuberaft's openraft type configuration.
    pub TypeConfig:
        D = Proposal,
        R = ProposalResult,
        NodeId = u64,
        Node = Member,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type NodeId = u64;
pub type LogId = openraft::LogId<NodeId>;
pub type Vote = openraft::Vote<NodeId>;
pub type Entry = openraft::Entry<TypeConfig>;
pub type StorageError = openraft::StorageError<NodeId>;
pub type Raft = openraft::Raft<TypeConfig>;
pub type Metrics = openraft::RaftMetrics<NodeId, Member>;

/// Completes once Raft's metrics satisfy `cond` (at once if they already do), or
/// never if Raft stops: for racing a wait on a peer against a change of leader.
pub async fn until(raft: &Raft, cond: impl FnMut(&Metrics) -> bool) {
    let mut metrics = raft.metrics();
    // The guard `wait_for` returns is dropped here, so the future stays `Send`.
    if metrics.wait_for(cond).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A leader's last quorum acknowledgement is older than `timeout`. A leader with
/// none yet was just elected: its first round is under way.
pub fn quorum_lost(millis_since_ack: Option<u64>, timeout: std::time::Duration) -> bool {
    millis_since_ack.is_some_and(|ms| u128::from(ms) > timeout.as_millis())
}
