//! Membership as etcd's Cluster API shows it (list, add, remove, update, promote) and
//! leadership transfer, on top of openraft's joint-consensus membership changes.
//!
//! Invariants: a member added through the API joins as a learner and votes only once
//! it holds the log (promoted by the leader when caught up, or by MemberPromote);
//! membership changes are Raft log entries, so every member sees the same list.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::ChangeMembers;

use super::{LeaderCall, LeaderReply, Store, StoreError};
use crate::raft::proposer::ProposeError;
use crate::raft::{Member, NodeId};
use crate::server::Shutdown;

/// A member as the Cluster API reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    pub id: NodeId,
    pub member: Member,
    pub is_learner: bool,
}

/// How far (in log entries) a learner may trail the leader and still be promoted.
const PROMOTION_LAG: u64 = 64;

/// How long the transfer target waits for the votes of one campaign before it
/// campaigns again in a higher term: a vote round on a LAN takes milliseconds.
const CAMPAIGN_ROUND: Duration = Duration::from_millis(50);

impl Store {
    /// The membership as this member last applied it.
    pub fn members(&self) -> Vec<MemberInfo> {
        let metrics = self.raft().metrics();
        let m = metrics.borrow();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        membership
            .nodes()
            .map(|(id, member)| MemberInfo {
                id: *id,
                member: member.clone(),
                is_learner: !voters.contains(id),
            })
            .collect()
    }

    /// etcd's MemberList; `linearizable` waits for a read index first.
    pub async fn member_list(&self, linearizable: bool) -> Result<Vec<MemberInfo>, StoreError> {
        if linearizable {
            self.linearize().await?;
        }
        Ok(self.members())
    }

    /// etcd's MemberAdd: the id derives from the peer URLs and the cluster id.
    pub async fn member_add(
        &self,
        peer_urls: Vec<String>,
        learner: bool,
    ) -> Result<MemberInfo, StoreError> {
        if peer_urls.is_empty() {
            return Err(StoreError::InvalidArgument(
                "etcdserver: member peer URLs are not provided".into(),
            ));
        }
        let id = super::id::added_member_id(&peer_urls, self.cluster_id());
        let member = Member {
            name: String::new(),
            peer_urls,
            client_urls: Vec::new(),
            join_as_voter: !learner,
        };
        self.call_leader(LeaderCall::AddMember {
            id,
            member: member.clone(),
            learner,
        })
        .await?;
        Ok(MemberInfo {
            id,
            member,
            is_learner: true,
        })
    }

    pub async fn member_remove(&self, id: NodeId) -> Result<(), StoreError> {
        self.call_leader(LeaderCall::RemoveMember { id })
            .await
            .map(|_| ())
    }

    pub async fn member_promote(&self, id: NodeId) -> Result<(), StoreError> {
        self.call_leader(LeaderCall::PromoteMember { id })
            .await
            .map(|_| ())
    }

    /// etcd's MemberUpdate: new peer URLs for a member.
    pub async fn member_update(
        &self,
        id: NodeId,
        peer_urls: Vec<String>,
    ) -> Result<(), StoreError> {
        let mut member = self
            .members()
            .into_iter()
            .find(|m| m.id == id)
            .ok_or(StoreError::MemberNotFound)?
            .member;
        member.peer_urls = peer_urls;
        self.call_leader(LeaderCall::UpdateMember { id, member })
            .await
            .map(|_| ())
    }

    /// etcd's MoveLeader.
    pub async fn move_leader(&self, target: NodeId) -> Result<(), StoreError> {
        self.call_leader(LeaderCall::MoveLeader { target })
            .await
            .map(|_| ())
    }

    fn find_member(&self, id: NodeId) -> Result<MemberInfo, StoreError> {
        self.members()
            .into_iter()
            .find(|m| m.id == id)
            .ok_or(StoreError::MemberNotFound)
    }

    /// True if the leader's replication to `id` is within `PROMOTION_LAG` entries.
    fn caught_up(&self, id: NodeId) -> bool {
        let metrics = self.raft().metrics();
        let m = metrics.borrow();
        let last = m.last_log_index.unwrap_or(0);
        let matched = replicated(&m, id);
        matched + PROMOTION_LAG >= last && matched > 0
    }

    async fn change(
        &self,
        changes: ChangeMembers<NodeId, Member>,
        retain: bool,
    ) -> Result<(), StoreError> {
        let deadline = Instant::now() + self.options().request_timeout;
        loop {
            // A membership entry is a message to every follower: during a leadership
            // transfer it would renew their leases, so it waits for the transfer to
            // end (and then usually finds this member no longer leads).
            if self.inner.hold.load(Ordering::SeqCst) {
                if Instant::now() >= deadline {
                    return Err(ProposeError::Timeout.into());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
            match self.raft().change_membership(changes.clone(), retain).await {
                Ok(_) => return Ok(()),
                Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
                    ChangeMembershipError::InProgress(_),
                ))) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                    return Err(StoreError::NotLeader)
                }
                Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
                    return Err(StoreError::InvalidArgument(format!("etcdserver: {e}")))
                }
                Err(RaftError::Fatal(_)) => return Err(StoreError::Stopped),
            }
        }
    }

    pub(super) async fn local_add_member(
        &self,
        id: NodeId,
        member: Member,
        _learner: bool,
    ) -> Result<(), StoreError> {
        let members = self.members();
        if members.iter().any(|m| {
            m.member
                .peer_urls
                .iter()
                .any(|u| member.peer_urls.contains(u))
        }) {
            return Err(StoreError::PeerUrlExists);
        }
        if members.iter().any(|m| m.id == id) {
            return Err(StoreError::MemberExists);
        }
        let deadline = Instant::now() + self.options().request_timeout;
        loop {
            match self.raft().add_learner(id, member.clone(), false).await {
                Ok(_) => return Ok(()),
                Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
                    ChangeMembershipError::InProgress(_),
                ))) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))) => {
                    return Err(StoreError::NotLeader)
                }
                Err(e) => return Err(StoreError::InvalidArgument(format!("etcdserver: {e}"))),
            }
        }
    }

    pub(super) async fn local_remove_member(&self, id: NodeId) -> Result<(), StoreError> {
        let info = self.find_member(id)?;
        if info.is_learner {
            self.change(ChangeMembers::RemoveNodes(BTreeSet::from([id])), false)
                .await
        } else {
            self.change(ChangeMembers::RemoveVoters(BTreeSet::from([id])), false)
                .await
        }
    }

    pub(super) async fn local_promote_member(&self, id: NodeId) -> Result<(), StoreError> {
        let info = self.find_member(id)?;
        if !info.is_learner {
            return Err(StoreError::MemberNotLearner);
        }
        if !self.caught_up(id) {
            return Err(StoreError::LearnerNotReady);
        }
        self.change(ChangeMembers::AddVoterIds(BTreeSet::from([id])), true)
            .await
    }

    pub(super) async fn local_update_member(
        &self,
        id: NodeId,
        member: Member,
    ) -> Result<(), StoreError> {
        self.find_member(id)?;
        self.change(
            ChangeMembers::SetNodes(BTreeMap::from([(id, member)])),
            true,
        )
        .await
    }

    /// Leadership transfer. openraft 0.9 has no TimeoutNow message, and a follower
    /// refuses its vote while the current leader's lease holds. The target needs a
    /// majority of votes: its own, this leader's (a leader's lease does not bind its
    /// own vote) and, with more than three voters, those of `majority - 2` followers,
    /// which release their vote from the lease by starting a campaign they cannot win
    /// (`release_lease`). The fallback holds proposals and heartbeats here and lets the
    /// target campaign once every lease ran out.
    pub(super) async fn local_move_leader(&self, target: NodeId) -> Result<(), StoreError> {
        if target == self.member_id() {
            return Ok(());
        }
        let info = self
            .find_member(target)
            .map_err(|_| StoreError::BadLeaderTransferee)?;
        if info.is_learner || !self.caught_up(target) {
            return Err(StoreError::BadLeaderTransferee);
        }
        let pause = self.options().election_timeout * 4;
        let helpers = self.lease_releasers(target);
        if self.fast_transfer(&info, &helpers, pause).await {
            return Ok(());
        }
        self.pause_other_voters(target, pause).await;
        let hold = HoldGuard::new(self.inner.hold.clone());
        self.raft().runtime_config().heartbeat(false);
        self.pause_elections(pause);
        let campaign = self.send_to(&info.member, LeaderCall::Campaign).await;
        self.raft().runtime_config().heartbeat(true);
        drop(hold);
        campaign?;
        if self
            .sees_leader(target, self.options().election_timeout * 3)
            .await
        {
            return Ok(());
        }
        Err(StoreError::Internal(
            "etcdserver: request timed out, leader transfer took too long".into(),
        ))
    }

    /// Asks every voter but this member and the transfer target not to start
    /// elections for `pause`.
    async fn pause_other_voters(&self, target: NodeId, pause: Duration) {
        let others: Vec<MemberInfo> = self
            .members()
            .into_iter()
            .filter(|m| !m.is_learner && m.id != target && m.id != self.member_id())
            .collect();
        for other in &others {
            let _ = self
                .send_to(
                    &other.member,
                    LeaderCall::PauseElections {
                        millis: pause.as_millis() as u64,
                    },
                )
                .await;
        }
    }

    /// Waits up to `within` until this member sees `target` lead.
    async fn sees_leader(&self, target: NodeId, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let mut metrics = self.raft().metrics();
        loop {
            if metrics.borrow_and_update().current_leader == Some(target) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            let _ = tokio::time::timeout(Duration::from_millis(10), metrics.changed()).await;
        }
    }

    /// The followers whose votes a transfer to `target` needs beyond the target's
    /// own and this leader's: `majority - 2` of the voters, the most caught-up first
    /// (a member that is down, and so far behind, could not vote). None among three.
    fn lease_releasers(&self, target: NodeId) -> Vec<MemberInfo> {
        let me = self.member_id();
        let metrics = self.raft().metrics().borrow().clone();
        let voters: Vec<MemberInfo> = self
            .members()
            .into_iter()
            .filter(|m| !m.is_learner)
            .collect();
        let needed = (voters.len() / 2 + 1).saturating_sub(2);
        let mut others: Vec<(u64, MemberInfo)> = voters
            .into_iter()
            .filter(|m| m.id != me && m.id != target)
            .map(|m| (replicated(&metrics, m.id), m))
            .collect();
        others.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.id.cmp(&b.1.id)));
        others.into_iter().take(needed).map(|(_, m)| m).collect()
    }

    /// The quick handover: hold proposals until the target has every entry, have the
    /// `helpers` release their votes from the lease, then let the target campaign at
    /// once. Its own vote, this leader's and the helpers' elect it, with no wait for
    /// the other followers' leases (etcd's TimeoutNow has the same effect). The
    /// helpers' logs are prefixes of this leader's, which the target holds, so they
    /// grant it. False when the target did not take over in time (e.g. this leader was
    /// elected less than a lease ago and refused the vote), so the caller falls back
    /// to the lease-waiting handover.
    async fn fast_transfer(
        &self,
        target: &MemberInfo,
        helpers: &[MemberInfo],
        pause: Duration,
    ) -> bool {
        self.pause_other_voters(target.id, pause).await;
        let hold = HoldGuard::new(self.inner.hold.clone());
        let mut metrics = self.raft().metrics();
        let deadline = Instant::now() + self.options().election_timeout / 2;
        loop {
            let synced = {
                let m = metrics.borrow_and_update();
                replicated(&m, target.id) >= m.last_log_index.unwrap_or(0)
            };
            if synced {
                break;
            }
            if Instant::now() >= deadline {
                return false;
            }
            let _ = tokio::time::timeout(Duration::from_millis(10), metrics.changed()).await;
        }
        self.pause_elections(pause);
        for helper in helpers {
            if self
                .send_to(&helper.member, LeaderCall::ReleaseLease)
                .await
                .is_err()
            {
                return false;
            }
        }
        if self
            .send_to(&target.member, LeaderCall::CampaignNow)
            .await
            .is_err()
        {
            return false;
        }
        drop(hold);
        // The target answered once it leads; wait for this member to see it too.
        self.sees_leader(target.id, self.options().election_timeout)
            .await
    }

    /// Sends a call to one specific member.
    async fn send_to(&self, member: &Member, call: LeaderCall) -> Result<(), StoreError> {
        self.ask(member, call, self.options().request_timeout)
            .await
            .map(|_| ())
    }

    /// Sends `call` to `member` itself (whatever its role) and decodes its answer.
    pub(super) async fn ask(
        &self,
        member: &Member,
        call: LeaderCall,
        timeout: Duration,
    ) -> Result<LeaderReply, StoreError> {
        let client = self
            .inner
            .peers
            .member(member)
            .map_err(|e| StoreError::Internal(e.to_string()))?;
        let payload = crate::raft::peer::encode(&call)
            .map_err(|s| StoreError::Internal(s.message().to_owned()))?;
        match client.call(payload, timeout).await {
            Ok(Ok(bytes)) => crate::raft::peer::decode(&bytes)
                .map_err(|s| StoreError::Internal(s.message().to_owned())),
            Ok(Err(e)) => Err(StoreError::Internal(e.to_string())),
            Err(e) => Err(StoreError::Internal(e.to_string())),
        }
    }

    /// Transfer target: campaign, after waiting out the old leader's lease on the
    /// other voters when `wait_lease`. Among more than three voters the helpers (see
    /// `release_lease`) campaigned one term above the leader's, and a vote in the same
    /// term for another member is refused, so the first campaign starts two terms up.
    /// It campaigns again, a term higher, until it leads or the deadline passes.
    pub(super) async fn campaign(&self, wait_lease: bool) -> Result<(), StoreError> {
        if wait_lease {
            let lease = self.options().election_timeout + Duration::from_millis(100);
            tokio::time::sleep(lease).await;
        } else if self.members().iter().filter(|m| !m.is_learner).count() > 3 {
            // A campaign that is replaced at once: commands reach Raft in order.
            self.elect().await?;
        }
        let deadline = Instant::now() + self.options().election_timeout * 2;
        let mut metrics = self.raft().metrics();
        while Instant::now() < deadline {
            self.elect().await?;
            let round = Instant::now() + CAMPAIGN_ROUND;
            while Instant::now() < round.min(deadline) {
                if metrics.borrow_and_update().current_leader == Some(self.member_id()) {
                    return Ok(());
                }
                let _ = tokio::time::timeout(Duration::from_millis(10), metrics.changed()).await;
            }
        }
        Err(ProposeError::Timeout.into())
    }

    /// Transfer helper: start a campaign. It cannot win (the target and the
    /// followers still under the lease refuse it), but it leaves this member's vote
    /// uncommitted, which frees it from the old leader's lease: the target's campaign,
    /// in a higher term, gets it at once.
    pub(super) async fn release_lease(&self) -> Result<(), StoreError> {
        if self.is_leader() {
            return Err(StoreError::Internal(
                "a leader does not release its lease".into(),
            ));
        }
        self.elect().await
    }

    /// Starts a campaign of this member now (whatever the leader lease says).
    async fn elect(&self) -> Result<(), StoreError> {
        self.raft()
            .trigger()
            .elect()
            .await
            .map_err(|_| StoreError::Stopped)
    }

    /// Keeps this member from starting elections for `duration`.
    pub(super) fn pause_elections(&self, duration: Duration) {
        let store = self.clone();
        self.set_elections(false);
        tokio::spawn(async move {
            tokio::time::sleep(duration).await;
            // A draining member stays out of elections for good.
            if !store.is_draining() {
                store.set_elections(true);
            }
        });
    }
}

/// The last log index the leader knows `id` holds (0 if none, or not leading).
fn replicated(m: &crate::raft::Metrics, id: NodeId) -> u64 {
    m.replication
        .as_ref()
        .and_then(|r| r.get(&id).cloned())
        .flatten()
        .map(|l| l.index)
        .unwrap_or(0)
}

/// Holds proposals on this member while alive (during a leadership transfer).
struct HoldGuard(Arc<AtomicBool>);

impl HoldGuard {
    fn new(flag: Arc<AtomicBool>) -> Self {
        flag.store(true, Ordering::SeqCst);
        HoldGuard(flag)
    }
}

impl Drop for HoldGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// Membership chores: the leader promotes caught-up learners that joined as voters;
/// every member publishes its name and client URLs into its membership record.
pub(super) async fn run_member_duties(store: Store, mut shutdown: Shutdown) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait() => return,
        }
        if store.is_leader() {
            for m in store.members() {
                if m.is_learner && m.member.join_as_voter && store.caught_up(m.id) {
                    match store.local_promote_member(m.id).await {
                        Ok(()) => {
                            tracing::info!(member = m.id, "promoted caught-up learner to voter")
                        }
                        Err(e) => tracing::debug!(member = m.id, error = %e, "promotion deferred"),
                    }
                }
            }
        }
        let me = store.inner.advertised.clone();
        if let Ok(current) = store.find_member(store.member_id()) {
            let mut wanted = current.member.clone();
            wanted.name = me.name.clone();
            wanted.client_urls = me.client_urls.clone();
            if !current.is_learner {
                wanted.join_as_voter = false;
            }
            if wanted != current.member && store.leader().is_some() {
                match store
                    .call_leader(LeaderCall::UpdateMember {
                        id: store.member_id(),
                        member: wanted,
                    })
                    .await
                {
                    Ok(_) => tracing::info!("published member attributes"),
                    Err(e) => tracing::debug!(error = %e, "publishing member attributes deferred"),
                }
            }
        }
    }
}
