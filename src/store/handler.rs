//! The store's side of the peer port: forwarded proposals and leader-only calls, and
//! `call_leader`, which sends such a call to whoever leads (this member included).
//!
//! Invariant: a member answers leader-only calls only while it believes it leads;
//! otherwise it says `NotLeader` and the caller retries against the new leader.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{LeaderCall, LeaderReply, Store, StoreError};
use crate::raft::peer::{decode, encode, ForwardError, PeerHandler};
use crate::raft::proposer::ProposeError;
use crate::raft::{Proposal, ProposalResult};

/// Serves the peer port's Forward and Call on behalf of a store.
pub struct Handler {
    store: Store,
}

impl Handler {
    pub fn new(store: Store) -> Handler {
        Handler { store }
    }
}

fn forward_error(e: StoreError) -> ForwardError {
    match e {
        StoreError::NotLeader => ForwardError::NotLeader { leader: None },
        StoreError::Propose(ProposeError::LeaderChanged) => ForwardError::LeaderChanged,
        StoreError::Propose(ProposeError::NoLeader) | StoreError::Stopped => {
            ForwardError::Unavailable(e.to_string())
        }
        other => ForwardError::Rejected(other.to_string()),
    }
}

#[tonic::async_trait]
impl PeerHandler for Handler {
    async fn forward(&self, proposal: Proposal) -> Result<ProposalResult, ForwardError> {
        if !self.store.is_leader() {
            return Err(ForwardError::NotLeader {
                leader: self.store.leader(),
            });
        }
        let deadline = Instant::now() + self.store.options().request_timeout;
        self.store
            .inner
            .proposer
            .propose_forwarded(proposal.requests, deadline)
            .await
            .map_err(|e| match e {
                ProposeError::NotLeader => ForwardError::NotLeader {
                    leader: self.store.leader(),
                },
                e => forward_error(e.into()),
            })
    }

    async fn call(&self, payload: Bytes) -> Result<Bytes, ForwardError> {
        let call: LeaderCall =
            decode(&payload).map_err(|s| ForwardError::Rejected(s.message().to_owned()))?;
        let reply = self.store.answer(call).await.map_err(forward_error)?;
        encode(&reply).map_err(|s| ForwardError::Rejected(s.message().to_owned()))
    }
}

impl Store {
    /// Answers a leader-only call here.
    async fn answer(&self, call: LeaderCall) -> Result<LeaderReply, StoreError> {
        match call {
            // Calls addressed to this member whatever its role.
            LeaderCall::Campaign => self.campaign(true).await.map(|_| LeaderReply::Done),
            LeaderCall::CampaignNow => self.campaign(false).await.map(|_| LeaderReply::Done),
            LeaderCall::ReleaseLease => self.release_lease().await.map(|_| LeaderReply::Done),
            LeaderCall::PauseElections { millis } => {
                self.pause_elections(Duration::from_millis(millis));
                Ok(LeaderReply::Done)
            }
            LeaderCall::ClusterInfo => Ok(LeaderReply::ClusterInfo {
                cluster_id: self.cluster_id(),
            }),
            LeaderCall::Silence => self
                .silence()
                .await
                .map(LeaderReply::Silence)
                .ok_or(StoreError::Stopped),
            call => {
                if !self.is_leader() {
                    return Err(StoreError::NotLeader);
                }
                match call {
                    LeaderCall::ReadIndex => self
                        .inner
                        .reads
                        .read_index()
                        .await
                        .map(LeaderReply::ReadIndex),
                    LeaderCall::LeaseKeepAlive { id } => {
                        self.local_keep_alive(id).map(LeaderReply::Ttl)
                    }
                    LeaderCall::LeaseRemaining { id } => {
                        self.local_remaining(id).map(LeaderReply::Ttl)
                    }
                    LeaderCall::AddMember {
                        id,
                        member,
                        learner,
                    } => self
                        .local_add_member(id, member, learner)
                        .await
                        .map(|_| LeaderReply::Done),
                    LeaderCall::RemoveMember { id } => self
                        .local_remove_member(id)
                        .await
                        .map(|_| LeaderReply::Done),
                    LeaderCall::PromoteMember { id } => self
                        .local_promote_member(id)
                        .await
                        .map(|_| LeaderReply::Done),
                    LeaderCall::UpdateMember { id, member } => self
                        .local_update_member(id, member)
                        .await
                        .map(|_| LeaderReply::Done),
                    LeaderCall::MoveLeader { target } => self
                        .local_move_leader(target)
                        .await
                        .map(|_| LeaderReply::Done),
                    LeaderCall::Campaign
                    | LeaderCall::CampaignNow
                    | LeaderCall::ReleaseLease
                    | LeaderCall::PauseElections { .. }
                    | LeaderCall::ClusterInfo
                    | LeaderCall::Silence => {
                        Err(StoreError::Internal("unreachable leader call".into()))
                    }
                }
            }
        }
    }

    /// Sends `call` to the leader (answering it here when this member leads), retrying
    /// while leadership moves, up to the leader-wait budget.
    pub(super) async fn call_leader(&self, call: LeaderCall) -> Result<LeaderReply, StoreError> {
        let deadline = Instant::now() + self.options().request_timeout;
        let leader_wait = self.options().election_timeout * 2;
        let mut leaderless_since: Option<Instant> = None;
        let mut metrics = self.raft().metrics();
        loop {
            let now = Instant::now();
            let (leader, member) = {
                let m = metrics.borrow_and_update();
                let leader = m.current_leader;
                (
                    leader,
                    leader.and_then(|l| m.membership_config.membership().get_node(&l).cloned()),
                )
            };
            match leader {
                None => {
                    if now.duration_since(*leaderless_since.get_or_insert(now)) >= leader_wait {
                        return Err(ProposeError::NoLeader.into());
                    }
                }
                Some(l) if l == self.member_id() => match Box::pin(self.answer(call.clone())).await
                {
                    Err(StoreError::NotLeader) => {}
                    other => return other,
                },
                Some(_) => {
                    leaderless_since = None;
                    let Some(member) = member else {
                        return Err(ProposeError::NoLeader.into());
                    };
                    let client = self
                        .inner
                        .peers
                        .member(&member)
                        .map_err(|e| StoreError::Internal(e.to_string()))?;
                    let payload =
                        encode(&call).map_err(|s| StoreError::Internal(s.message().to_owned()))?;
                    match client
                        .call(payload, deadline.saturating_duration_since(now))
                        .await
                    {
                        Ok(Ok(bytes)) => {
                            return decode(&bytes)
                                .map_err(|s| StoreError::Internal(s.message().to_owned()));
                        }
                        Ok(Err(ForwardError::NotLeader { .. }))
                        | Ok(Err(ForwardError::Unavailable(_))) => {}
                        Ok(Err(ForwardError::LeaderChanged)) => {
                            return Err(ProposeError::LeaderChanged.into())
                        }
                        Ok(Err(ForwardError::Rejected(text))) => return Err(rejected(text)),
                        Err(crate::raft::network::PeerError::Unreachable { .. }) => {}
                        Err(crate::raft::network::PeerError::Timeout { .. }) => {
                            return Err(ProposeError::Timeout.into())
                        }
                        Err(e) => return Err(StoreError::Internal(e.to_string())),
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(ProposeError::Timeout.into());
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), metrics.changed()).await;
        }
    }
}

/// Maps a leader's refusal text back to the store error it came from, so clients see
/// the same error whichever member they asked.
fn rejected(text: String) -> StoreError {
    let known = [
        StoreError::MemberNotFound,
        StoreError::PeerUrlExists,
        StoreError::MemberExists,
        StoreError::MemberNotLearner,
        StoreError::LearnerNotReady,
        StoreError::UnhealthyCluster,
        StoreError::BadLeaderTransferee,
        StoreError::Mvcc(crate::mvcc::MvccError::LeaseNotFound),
        StoreError::Mvcc(crate::mvcc::MvccError::NoSpace),
    ];
    known
        .into_iter()
        .find(|e| e.to_string() == text)
        .unwrap_or(StoreError::InvalidArgument(text))
}
