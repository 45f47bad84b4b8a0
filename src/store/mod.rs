//! The replicated store: the one API the etcd face and the Kubernetes storage layer
//! use (range, put, delete, txn, compact, watch, leases, membership, maintenance).
//! It is what etcd calls the "etcdserver": writes become Raft proposals, linearizable
//! reads wait for a read index, leases expire on the leader's clock.
//!
//! Invariants: every write goes through the proposer (and so through Raft); a read
//! without `serializable` is answered only after this member applied at least the
//! leader's commit index as of the read's arrival; nothing here names sled or tonic.

mod call;
mod cluster;
mod election;
mod error;
mod handler;
mod id;
mod kv;
mod lease;
mod maintenance;
mod read_index;
mod readiness;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use call::{LeaderCall, LeaderReply};
pub use cluster::MemberInfo;
pub use error::StoreError;
pub use handler::Handler;
pub use id::{added_member_id, cluster_id, member_id};
pub use lease::Lessor;
pub use maintenance::{
    verify_snapshot, verify_snapshot_file, Status, ETCD_CLUSTER_VERSION, ETCD_VERSION,
};
pub use readiness::Readiness;

use crate::mvcc::{MvccStore, Revision, WatchHub};
use crate::raft::log_store::LogReader;
use crate::raft::network::PeerClients;
use crate::raft::proposer::Proposer;
use crate::raft::{Member, NodeId, Raft};

/// The response header every etcd answer carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub cluster_id: u64,
    pub member_id: u64,
    pub revision: Revision,
    pub raft_term: u64,
}

/// Limits and timings of the store, from the etcd flags.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    /// `--quota-backend-bytes`: above this database size writes raise a NOSPACE alarm.
    pub quota_backend_bytes: u64,
    /// `--max-request-bytes`.
    pub max_request_bytes: usize,
    /// `--max-txn-ops`.
    pub max_txn_ops: usize,
    /// `--election-timeout`, for lease minimum TTLs and leadership transfer.
    pub election_timeout: Duration,
    /// How long a request may take before "request timed out".
    pub request_timeout: Duration,
    /// Where snapshot downloads are staged.
    pub scratch_dir: std::path::PathBuf,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            quota_backend_bytes: 2 << 30,
            max_request_bytes: 1536 * 1024,
            max_txn_ops: 128,
            election_timeout: Duration::from_millis(1000),
            request_timeout: Duration::from_secs(7),
            scratch_dir: std::env::temp_dir(),
        }
    }
}

/// A cloneable handle to this member's store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    id: NodeId,
    cluster_id: u64,
    raft: Raft,
    mvcc: MvccStore,
    hub: WatchHub,
    proposer: Proposer,
    reads: read_index::ReadIndex,
    lessor: Lessor,
    peers: PeerClients,
    applied: watch::Receiver<u64>,
    options: StoreOptions,
    /// Set while a leadership transfer holds new proposals on this member.
    hold: Arc<AtomicBool>,
    /// This member's own record as it should appear in the membership.
    advertised: Member,
    /// Raft's leader (0 = none) and term, mirrored from its metrics by a task so the
    /// request path never takes the metrics lock.
    leader: AtomicU64,
    term: AtomicU64,
    /// Set when the replica begins a graceful shutdown: readiness fails from then on.
    draining: AtomicBool,
    /// Mirrors openraft's runtime switch for timer-driven elections, which
    /// `election::run_fast_failover` honours too.
    elections: AtomicBool,
    /// This member's Raft log, for the last log id the pre-campaign poll compares.
    log: LogReader,
    /// What the readiness probe last found.
    probe: std::sync::Mutex<readiness::Probe>,
}

/// Everything a store is assembled from (see `node.rs`).
pub struct Parts {
    pub id: NodeId,
    pub cluster_id: u64,
    pub raft: Raft,
    pub mvcc: MvccStore,
    pub hub: WatchHub,
    pub proposer: Proposer,
    pub peers: PeerClients,
    pub applied: watch::Receiver<u64>,
    pub options: StoreOptions,
    /// Shared with the proposer's route: holds proposals during a transfer.
    pub hold: Arc<AtomicBool>,
    pub advertised: Member,
    pub log: LogReader,
}

impl Store {
    pub fn new(parts: Parts) -> Store {
        let reads = read_index::ReadIndex::new(
            parts.id,
            parts.raft.clone(),
            parts.peers.clone(),
            parts.hold.clone(),
        );
        let lessor = Lessor::new(parts.options.election_timeout);
        metrics::gauge!("etcd_server_quota_backend_bytes")
            .set(parts.options.quota_backend_bytes as f64);
        let store = Store {
            inner: Arc::new(Inner {
                id: parts.id,
                cluster_id: parts.cluster_id,
                raft: parts.raft,
                mvcc: parts.mvcc,
                hub: parts.hub,
                proposer: parts.proposer,
                reads,
                lessor,
                peers: parts.peers,
                applied: parts.applied,
                options: parts.options,
                hold: parts.hold,
                advertised: parts.advertised,
                leader: AtomicU64::new(0),
                term: AtomicU64::new(0),
                draining: AtomicBool::new(false),
                elections: AtomicBool::new(true),
                log: parts.log,
                probe: std::sync::Mutex::new(readiness::Probe::default()),
            }),
        };
        store.mirror_raft_state();
        tokio::spawn(track_raft(store.clone()));
        store
    }

    /// Copies leader and term out of Raft's metrics.
    fn mirror_raft_state(&self) {
        let (leader, term) = {
            let m = self.inner.raft.metrics();
            let m = m.borrow();
            (m.current_leader.unwrap_or(0), m.current_term)
        };
        let before = self.inner.leader.swap(leader, Ordering::AcqRel);
        if before != leader && leader != 0 {
            metrics::counter!("etcd_server_leader_changes_seen_total").increment(1);
        }
        self.inner.term.store(term, Ordering::Release);
    }

    /// Starts the background duties: lease expiry, learner promotion and publishing
    /// this member's attributes (on the leader), fast failover and the readiness
    /// probe.
    pub fn spawn_background(&self, shutdown: crate::server::Shutdown) {
        tokio::spawn(lease::run_expiry(self.clone(), shutdown.clone()));
        tokio::spawn(cluster::run_member_duties(self.clone(), shutdown.clone()));
        tokio::spawn(readiness::run_probe(self.clone(), shutdown.clone()));
        tokio::spawn(election::run_fast_failover(self.clone(), shutdown));
    }

    pub fn member_id(&self) -> NodeId {
        self.inner.id
    }

    pub fn cluster_id(&self) -> u64 {
        self.inner.cluster_id
    }

    pub fn raft(&self) -> &Raft {
        &self.inner.raft
    }

    pub fn mvcc(&self) -> &MvccStore {
        &self.inner.mvcc
    }

    pub fn hub(&self) -> &WatchHub {
        &self.inner.hub
    }

    pub fn options(&self) -> &StoreOptions {
        &self.inner.options
    }

    /// The member this one believes leads, if any (may be stale).
    pub fn leader(&self) -> Option<NodeId> {
        match self.inner.leader.load(Ordering::Acquire) {
            0 => None,
            id => Some(id),
        }
    }

    /// Believes it is the leader; may be stale, so writes still go through Raft.
    pub fn is_leader(&self) -> bool {
        self.leader() == Some(self.inner.id)
    }

    /// Marks the replica as shutting down: health checks report not ready from now on
    /// so load balancers stop sending it new connections.
    pub fn begin_draining(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
    }

    pub fn is_draining(&self) -> bool {
        self.inner.draining.load(Ordering::SeqCst)
    }

    /// Turns this member's own campaigning (openraft's timer and the fast failover
    /// poll) on or off; it still votes either way.
    pub fn set_elections(&self, on: bool) {
        self.inner.elections.store(on, Ordering::SeqCst);
        self.inner.raft.runtime_config().elect(on);
    }

    pub fn elections_enabled(&self) -> bool {
        self.inner.elections.load(Ordering::SeqCst)
    }

    /// The voter (other than this member) whose log is most complete, as the leader
    /// sees replication; the one to hand leadership to.
    pub fn best_successor(&self) -> Option<NodeId> {
        let m = self.inner.raft.metrics().borrow().clone();
        let voters: Vec<NodeId> = m.membership_config.membership().voter_ids().collect();
        m.replication
            .as_ref()?
            .iter()
            .filter(|(id, _)| **id != self.inner.id && voters.contains(id))
            .max_by_key(|(_, matched)| matched.map(|l| l.index).unwrap_or(0))
            .map(|(id, _)| *id)
    }

    /// A header at the current revision.
    pub fn header(&self) -> Header {
        self.header_at(self.inner.mvcc.current_revision())
    }

    pub fn header_at(&self, revision: Revision) -> Header {
        Header {
            cluster_id: self.inner.cluster_id,
            member_id: self.inner.id,
            revision,
            raft_term: self.inner.term.load(Ordering::Acquire),
        }
    }

    /// Waits until this member has applied everything committed before the call:
    /// after it returns, a local read is linearizable.
    pub async fn linearize(&self) -> Result<(), StoreError> {
        let index = self.inner.reads.read_index().await?;
        self.wait_applied(index).await
    }

    /// Waits until the local state machine applied `index`.
    pub async fn wait_applied(&self, index: u64) -> Result<(), StoreError> {
        let mut applied = self.inner.applied.clone();
        if *applied.borrow() >= index {
            return Ok(());
        }
        let res = tokio::time::timeout(
            self.inner.options.request_timeout,
            applied.wait_for(|a| *a >= index),
        )
        .await;
        match res.map(|r| r.map(|_| ())) {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(StoreError::Stopped),
            Err(_) => Err(StoreError::Propose(
                crate::raft::proposer::ProposeError::Timeout,
            )),
        }
    }
}

/// Keeps the store's copy of leader and term current. Ends when Raft stops.
async fn track_raft(store: Store) {
    let mut metrics = store.inner.raft.metrics();
    loop {
        store.mirror_raft_state();
        if metrics.changed().await.is_err() {
            return;
        }
    }
}
