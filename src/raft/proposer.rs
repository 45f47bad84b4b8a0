//! The proposer: turns many concurrent client writes into few Raft entries.
//!
//! Every member runs one. Requests queue while earlier batches are in flight; the next
//! batch takes everything queued (up to a size cap) as ONE log entry, so one append, one
//! fdatasync per member and one MVCC batch serve all of them. On the leader a batch goes
//! to `client_write`; on a follower it is forwarded to the leader over the peer port,
//! where it joins the leader's queue for forwarded batches.
//!
//! Forwarded requests share the queue (and the batches) of local ones but are never
//! forwarded again: if the member that received them no longer leads, their senders
//! hear "not leader" and retry against the new leader, while the local requests of the
//! same batch go on to the new leader. Re-forwarding would let two members' batches
//! wait on each other (each holding its in-flight slots) until the request timeout.
//!
//! Invariants: a batch is retried only when it certainly did not commit (openraft
//! answers `ForwardToLeader` only for entries it never appended or truncated; a peer
//! that was unreachable never received it); otherwise the caller gets "leader changed"
//! or "request timed out", as etcd answers when the outcome is unknown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};

use super::network::{PeerClients, PeerError};
use super::peer::ForwardError;
use super::{quorum_lost, until, Metrics, NodeId, Proposal, ProposalResult, Raft};
use crate::mvcc::{Applied, Request};

/// Why a proposal did not produce a result.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    #[error("etcdserver: no leader")]
    NoLeader,
    #[error("etcdserver: leader changed")]
    LeaderChanged,
    #[error("etcdserver: request timed out")]
    Timeout,
    /// A forwarded batch reached a member that does not lead (any more); it was not
    /// appended, so the sender may retry it elsewhere.
    #[error("etcdserver: not leader")]
    NotLeader,
    #[error("etcdserver: server stopped")]
    Stopped,
    #[error("etcdserver: {0}")]
    Rejected(String),
}

/// Tuning of the proposer.
#[derive(Clone, Debug)]
pub struct ProposerOptions {
    /// Batches in flight at once (each one a log entry being replicated).
    pub max_inflight: usize,
    /// Most requests in one batch.
    pub max_batch_requests: usize,
    /// Most (approximate) payload bytes in one batch.
    pub max_batch_bytes: usize,
    /// How long a request may wait in all, queueing and retries included.
    pub request_timeout: Duration,
    /// How long to wait for a leader to be known before answering "no leader".
    pub leader_wait: Duration,
    /// The election timeout: a leader that no quorum acknowledged for this long
    /// refuses writes, as etcd's leader steps down under CheckQuorum.
    pub quorum_timeout: Duration,
}

impl Default for ProposerOptions {
    fn default() -> Self {
        ProposerOptions {
            max_inflight: 2,
            max_batch_requests: 1024,
            max_batch_bytes: 4 << 20,
            request_timeout: Duration::from_secs(7),
            leader_wait: Duration::from_secs(2),
            quorum_timeout: Duration::from_secs(1),
        }
    }
}

struct Unit {
    requests: Vec<Request>,
    /// Forwarded here by a follower: proposed on this member or refused.
    forwarded: bool,
    bytes: usize,
    deadline: Instant,
    reply: oneshot::Sender<Result<ProposalResult, ProposeError>>,
}

/// A cloneable handle to the proposer task.
#[derive(Clone)]
pub struct Proposer {
    tx: mpsc::Sender<Unit>,
    timeout: Duration,
}

/// What a batch needs to reach the leader.
#[derive(Clone)]
pub struct Route {
    pub id: NodeId,
    pub raft: Raft,
    pub peers: PeerClients,
    pub options: Arc<ProposerOptions>,
    /// The index this member's state machine applied last.
    pub applied: watch::Receiver<u64>,
    /// While set, this member holds new batches instead of proposing them (a
    /// leadership transfer is under way).
    pub hold: Arc<std::sync::atomic::AtomicBool>,
}

impl Proposer {
    /// Starts the proposer task.
    pub fn spawn(route: Route) -> Proposer {
        let (tx, rx) = mpsc::channel(16 * 1024);
        let timeout = route.options.request_timeout;
        tokio::spawn(run(rx, route));
        Proposer { tx, timeout }
    }

    /// Proposes `requests` as one unit (kept together and in order inside a batch) and
    /// waits until they are applied locally.
    pub async fn propose(&self, requests: Vec<Request>) -> Result<Vec<Applied>, ProposeError> {
        self.propose_until(requests, Instant::now() + self.timeout)
            .await
    }

    /// As [`Proposer::propose`], with an explicit deadline.
    pub async fn propose_until(
        &self,
        requests: Vec<Request>,
        deadline: Instant,
    ) -> Result<Vec<Applied>, ProposeError> {
        self.enqueue(requests, deadline, false)
            .await
            .map(|r| r.applied)
    }

    /// Proposes a batch a follower forwarded here: on this member only, or
    /// [`ProposeError::NotLeader`] when it does not lead.
    pub async fn propose_forwarded(
        &self,
        requests: Vec<Request>,
        deadline: Instant,
    ) -> Result<ProposalResult, ProposeError> {
        self.enqueue(requests, deadline, true).await
    }

    async fn enqueue(
        &self,
        requests: Vec<Request>,
        deadline: Instant,
        forwarded: bool,
    ) -> Result<ProposalResult, ProposeError> {
        let bytes = requests.iter().map(approximate_size).sum();
        let (reply, rx) = oneshot::channel();
        let unit = Unit {
            requests,
            forwarded,
            bytes,
            deadline,
            reply,
        };
        self.tx
            .send(unit)
            .await
            .map_err(|_| ProposeError::Stopped)?;
        metrics::gauge!("etcd_server_proposals_pending").increment(1.0);
        let res = rx.await.unwrap_or(Err(ProposeError::Stopped));
        metrics::gauge!("etcd_server_proposals_pending").decrement(1.0);
        match &res {
            Ok(_) => metrics::counter!("etcd_server_proposals_committed_total").increment(1),
            Err(_) => metrics::counter!("etcd_server_proposals_failed_total").increment(1),
        }
        res
    }
}

/// A rough payload size, to cap batch sizes.
pub fn approximate_size(request: &Request) -> usize {
    match request {
        Request::Put(p) => p.key.len() + p.value.len() + 32,
        Request::DeleteRange(d) => d.range.key.len() + d.range.range_end.len() + 16,
        Request::Txn(t) => {
            64 * (1 + t.success.len() + t.failure.len() + t.compare.len()) + txn_bytes(t)
        }
        _ => 32,
    }
}

fn txn_bytes(t: &crate::mvcc::TxnRequest) -> usize {
    use crate::mvcc::RequestOp;
    t.success
        .iter()
        .chain(t.failure.iter())
        .map(|op| match op {
            RequestOp::Put(p) => p.key.len() + p.value.len(),
            RequestOp::Txn(inner) => txn_bytes(inner),
            _ => 0,
        })
        .sum()
}

/// Whether a queue's batches may be forwarded to another member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hop {
    /// Client writes made on this member: proposed here or forwarded to the leader.
    AnyLeader,
    /// Batches already forwarded once: proposed here or refused.
    LocalOnly,
}

async fn run(mut rx: mpsc::Receiver<Unit>, route: Route) {
    let permits = Arc::new(Semaphore::new(route.options.max_inflight.max(1)));
    while let Some(first) = rx.recv().await {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        // Everything that queued while we waited for a permit joins this batch.
        let mut units = vec![first];
        let mut count = units[0].requests.len();
        let mut bytes = units[0].bytes;
        while count < route.options.max_batch_requests && bytes < route.options.max_batch_bytes {
            match rx.try_recv() {
                Ok(unit) => {
                    count += unit.requests.len();
                    bytes += unit.bytes;
                    units.push(unit);
                }
                Err(_) => break,
            }
        }
        let route = route.clone();
        tokio::spawn(async move {
            let deadline = units
                .iter()
                .map(|u| u.deadline)
                .max()
                .unwrap_or_else(Instant::now);
            let started = Instant::now();
            submit_units(&route, units, count, deadline).await;
            crate::metrics::observe_seconds(
                "kuberaft_proposal_duration_seconds",
                started.elapsed(),
            );
            drop(permit);
        });
    }
}

/// Where a unit's answer goes once its batch is done.
struct Waiter {
    len: usize,
    forwarded: bool,
    reply: oneshot::Sender<Result<ProposalResult, ProposeError>>,
}

/// Proposes `units` as one batch and answers each. A batch holding forwarded units
/// that this member cannot propose itself is split: the forwarded units are refused
/// with "not leader", the local ones go on as a batch of their own.
async fn submit_units(route: &Route, units: Vec<Unit>, count: usize, deadline: Instant) {
    let mut requests = Vec::with_capacity(count);
    let mut waiters = Vec::with_capacity(units.len());
    for unit in units {
        waiters.push(Waiter {
            len: unit.requests.len(),
            forwarded: unit.forwarded,
            reply: unit.reply,
        });
        requests.extend(unit.requests);
    }
    let hop = if waiters.iter().any(|w| w.forwarded) {
        Hop::LocalOnly
    } else {
        Hop::AnyLeader
    };
    metrics::histogram!("kuberaft_proposal_batch_size").record(requests.len() as f64);
    let proposal = Proposal { requests };
    let res = submit(route, &proposal, deadline, hop).await;
    if !matches!(res, Err(ProposeError::NotLeader)) || waiters.iter().all(|w| w.forwarded) {
        answer(waiters, res);
        return;
    }
    // Never appended: refuse the forwarded units, send the local ones on.
    let mut local_requests = Vec::new();
    let mut local = Vec::new();
    let mut at = 0;
    for w in waiters {
        let end = at + w.len;
        if w.forwarded {
            let _ = w.reply.send(Err(ProposeError::NotLeader));
        } else {
            local_requests.extend_from_slice(&proposal.requests[at..end]);
            local.push(w);
        }
        at = end;
    }
    let local_proposal = Proposal {
        requests: local_requests,
    };
    let res = submit(route, &local_proposal, deadline, Hop::AnyLeader).await;
    answer(local, res);
}

/// Sends each waiter its share of the batch's result, in order.
fn answer(waiters: Vec<Waiter>, res: Result<ProposalResult, ProposeError>) {
    match res {
        Ok(result) => {
            let mut applied = result.applied.into_iter();
            for w in waiters {
                let _ = w.reply.send(Ok(ProposalResult {
                    applied: applied.by_ref().take(w.len).collect(),
                    index: result.index,
                }));
            }
        }
        Err(e) => {
            for w in waiters {
                let _ = w.reply.send(Err(e.clone()));
            }
        }
    }
}

/// How long a forwarded batch still waits for the former leader's answer once
/// another member leads.
const FORMER_LEADER_GRACE: Duration = Duration::from_millis(250);

/// Gets one batch committed and applied, through whichever member leads.
async fn submit(
    route: &Route,
    proposal: &Proposal,
    deadline: Instant,
    hop: Hop,
) -> Result<ProposalResult, ProposeError> {
    let mut metrics = route.raft.metrics();
    let mut leaderless_since: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(ProposeError::Timeout);
        }
        let (leader, leader_member) = {
            let m = metrics.borrow_and_update();
            let leader = m.current_leader;
            let member =
                leader.and_then(|l| m.membership_config.membership().get_node(&l).cloned());
            (leader, member)
        };
        let retry_reason = match leader {
            Some(leader) if leader != route.id && hop == Hop::LocalOnly => {
                return Err(ProposeError::NotLeader)
            }
            None if hop == Hop::LocalOnly => return Err(ProposeError::NotLeader),
            None => {
                let since = *leaderless_since.get_or_insert(now);
                if now.duration_since(since) >= route.options.leader_wait {
                    return Err(ProposeError::NoLeader);
                }
                "no leader"
            }
            Some(leader)
                if leader == route.id && route.hold.load(std::sync::atomic::Ordering::SeqCst) =>
            {
                "leadership transfer under way"
            }
            Some(leader) if leader == route.id => {
                leaderless_since = None;
                // CheckQuorum, as etcd: a leader no quorum has acknowledged for an
                // election timeout is likely cut off and replaced; it answers "no
                // leader" to new writes and "leader changed" to the ones it holds
                // (they may still commit, as after a timeout) instead of holding
                // clients until the request timeout.
                let quorum_timeout = route.options.quorum_timeout;
                let lost = |m: &Metrics| {
                    m.current_leader == Some(route.id)
                        && quorum_lost(m.millis_since_quorum_ack, quorum_timeout)
                };
                if lost(&metrics.borrow()) {
                    return Err(ProposeError::NoLeader);
                }
                let write = route.raft.client_write(proposal.clone());
                let answer = tokio::select! {
                    answer = tokio::time::timeout_at(deadline.into(), write) => answer,
                    _ = until(&route.raft, lost) => return Err(ProposeError::LeaderChanged),
                };
                match answer {
                    Err(_) => return Err(ProposeError::Timeout),
                    Ok(Ok(resp)) => return Ok(resp.data),
                    // Not appended, or appended and truncated: certainly not committed.
                    Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => {
                        if hop == Hop::LocalOnly {
                            return Err(ProposeError::NotLeader);
                        }
                        "leadership moved"
                    }
                    Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e)))) => {
                        return Err(ProposeError::Rejected(e.to_string()))
                    }
                    Ok(Err(RaftError::Fatal(_))) => return Err(ProposeError::Stopped),
                }
            }
            Some(leader) => {
                leaderless_since = None;
                let Some(member) = leader_member else {
                    return Err(ProposeError::NoLeader);
                };
                let client = route
                    .peers
                    .member(&member)
                    .map_err(|e| ProposeError::Rejected(e.to_string()))?;
                let remaining = deadline.saturating_duration_since(now);
                // As etcd: when the leader changes while a forwarded batch waits on
                // it and the former leader does not answer soon after (it is frozen
                // or cut off; one that handed over answers "not leader" at once and
                // the batch goes to its successor), the batch's requests end with
                // "leader changed" (it may still commit, as after a timeout) instead
                // of holding an in-flight slot, and with it every later write of
                // this member, until the old leader answers.
                let forward = client.forward(proposal, remaining);
                tokio::pin!(forward);
                let answer = tokio::select! {
                    answer = &mut forward => answer,
                    _ = until(&route.raft, |m| m.current_leader != Some(leader)) => {
                        match tokio::time::timeout(FORMER_LEADER_GRACE, &mut forward).await {
                            Ok(answer) => answer,
                            Err(_) => return Err(ProposeError::LeaderChanged),
                        }
                    }
                };
                match answer {
                    Ok(Ok(result)) => {
                        // As etcd: answer once this member applied it too, so what
                        // its client reads or watches here next reflects the write.
                        let mut applied = route.applied.clone();
                        let local = applied.wait_for(|a| *a >= result.index);
                        return match tokio::time::timeout_at(deadline.into(), local).await {
                            Ok(Ok(_)) => Ok(result),
                            Ok(Err(_)) => Err(ProposeError::Stopped),
                            Err(_) => Err(ProposeError::Timeout),
                        };
                    }
                    Ok(Err(ForwardError::NotLeader { .. })) => "forwarded to a former leader",
                    Ok(Err(ForwardError::LeaderChanged)) => {
                        return Err(ProposeError::LeaderChanged)
                    }
                    Ok(Err(ForwardError::Unavailable(_))) => "leader unavailable",
                    Ok(Err(ForwardError::Rejected(e))) => return Err(ProposeError::Rejected(e)),
                    // Never delivered: safe to try again once the leader is known.
                    Err(PeerError::Unreachable { .. }) => "leader unreachable",
                    Err(PeerError::Timeout { .. }) => return Err(ProposeError::Timeout),
                    Err(PeerError::Failed { .. }) => return Err(ProposeError::LeaderChanged),
                }
            }
        };
        tracing::debug!(reason = retry_reason, "retrying proposal");
        // Wait for the membership/leader view to change, briefly.
        let wait =
            Duration::from_millis(50).min(deadline.saturating_duration_since(Instant::now()));
        let _ = tokio::time::timeout(wait, metrics.changed()).await;
    }
}
