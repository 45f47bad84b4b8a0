//! Leader-only requests that a follower relays to the leader over the peer port, and
//! their answers.
//!
//! Invariant: these never change replicated state by themselves; anything that does
//! (membership, lease revocation) still goes through Raft on the leader.

use serde::{Deserialize, Serialize};

use super::election::Silence;
use crate::mvcc::LeaseId;
use crate::raft::{Member, NodeId};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum LeaderCall {
    /// A log index whose application makes a read linearizable.
    ReadIndex,
    /// Renew a lease; answers its TTL (0 when the lease does not exist).
    LeaseKeepAlive {
        id: LeaseId,
    },
    /// Remaining TTL of a lease in seconds (-1 when it does not exist).
    LeaseRemaining {
        id: LeaseId,
    },
    AddMember {
        id: NodeId,
        member: Member,
        learner: bool,
    },
    RemoveMember {
        id: NodeId,
    },
    PromoteMember {
        id: NodeId,
    },
    /// Replace a member's record (peer URLs, or its name and client URLs once started).
    UpdateMember {
        id: NodeId,
        member: Member,
    },
    /// Hand leadership to `target`.
    MoveLeader {
        target: NodeId,
    },
    /// Sent by the leader to the transfer target: campaign once the leader lease
    /// expired.
    Campaign,
    /// Sent by the leader to the other voters during a transfer: do not start
    /// elections for a while.
    PauseElections {
        millis: u64,
    },
    /// Who are you: the cluster id, for members joining an existing cluster.
    ClusterInfo,
    /// Sent by the leader to the transfer target: campaign at once. The leader itself
    /// grants the vote (a leader's lease does not bind its own vote), and so do the
    /// followers it sent `ReleaseLease`; with the target's own that makes a majority.
    CampaignNow,
    /// Sent by a follower that heard from no leader for an election timeout, to every
    /// voter: how long since you did, and how complete is your log (see `election`).
    Silence,
    /// Sent by the leader during a transfer among more than three voters to the
    /// followers whose votes the target needs: start a campaign (which cannot win),
    /// so that your vote is no longer bound by the leader's lease.
    ReleaseLease,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum LeaderReply {
    ReadIndex(u64),
    Ttl(i64),
    Done,
    ClusterInfo { cluster_id: u64 },
    Silence(Silence),
}
