//! Fast failover: a follower that has not heard from a leader for one election
//! timeout asks the other voters whether they have not either, and the one with the
//! most complete log among a silent majority campaigns at once.
//!
//! openraft 0.9 campaigns on its own timer: after the leader lease plus a random
//! timeout (between `et + 2 hb` and `2 et` of silence), plus 2 × `et` more on a member
//! that once lost an election to a longer log. That spread made a leader SIGKILL cost
//! 1.3–6.6 s. This module adds what etcd gets from PreVote: a poll before the
//! campaign, so that the member elected first is one the others will vote for.
//!
//! Invariants: it only ever calls openraft's `trigger().elect()`, so every safety rule
//! (vote and log checks on the voters, the leader lease) is still openraft's; it
//! campaigns only when a majority of voters, itself included, has been silent for a
//! full election timeout — so their leases have expired and a live leader that a
//! majority still hears is never disturbed; openraft's own timer stays on as the
//! fallback.

use std::time::Duration;

use futures::future::join_all;
use openraft::ServerState;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::call::{LeaderCall, LeaderReply};
use super::Store;
use crate::raft::{LogId, NodeId};
use crate::server::Shutdown;

/// One member's answer to the pre-campaign poll.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Silence {
    /// How long since this member last heard from a leader or granted a vote, in
    /// milliseconds; 0 while it leads; `u64::MAX` when it never has since it started.
    pub millis: u64,
    /// The last entry of its log.
    pub last_log: Option<LogId>,
}

impl Store {
    /// How long this member has heard from no leader (see [`Silence::millis`]).
    async fn silent_millis(&self) -> Option<u64> {
        let (leads, since) = self
            .raft()
            .with_raft_state(|st| {
                (
                    st.server_state == ServerState::Leader,
                    st.vote_last_modified(),
                )
            })
            .await
            .ok()?;
        Some(match (leads, since) {
            (true, _) => 0,
            (false, Some(t)) => Instant::now().saturating_duration_since(t).as_millis() as u64,
            (false, None) => u64::MAX,
        })
    }

    /// This member's silence (see [`Silence`]).
    pub(super) async fn silence(&self) -> Option<Silence> {
        let millis = self.silent_millis().await?;
        let last_log = self.inner.log.last_log_id().await.ok()?;
        Some(Silence { millis, last_log })
    }

    /// Polls the other voters; campaigns when a majority (this member included) has
    /// been silent for `timeout` and no silent voter has a more complete log (ties go
    /// to the lowest member id). Returns whether it campaigned.
    async fn campaign_if_silent_majority(&self, timeout: Duration) -> bool {
        let threshold = timeout.as_millis() as u64;
        // The common case, a leader heard from, costs no log read and no poll.
        let Some(millis) = self.silent_millis().await.filter(|m| *m > threshold) else {
            return false;
        };
        let Ok(last_log) = self.inner.log.last_log_id().await else {
            return false;
        };
        let mine = Silence { millis, last_log };
        let voters: Vec<_> = self
            .members()
            .into_iter()
            .filter(|m| !m.is_learner)
            .collect();
        if !voters.iter().any(|m| m.id == self.member_id()) {
            return false;
        }
        let others = voters.iter().filter(|m| m.id != self.member_id());
        let poll = timeout / 10;
        let answers = join_all(others.map(|m| async move {
            let reply = self.ask(&m.member, LeaderCall::Silence, poll).await;
            match reply {
                Ok(LeaderReply::Silence(s)) => Some((m.id, s)),
                _ => None,
            }
        }))
        .await;
        let answers: Vec<(NodeId, Silence)> = answers.into_iter().flatten().collect();
        if !should_campaign(self.member_id(), &mine, &answers, voters.len(), threshold) {
            return false;
        }
        tracing::info!(
            silent_ms = mine.millis,
            answers = answers.len(),
            voters = voters.len(),
            "no leader heard from by a majority: campaigning"
        );
        metrics::counter!("kuberaft_raft_fast_campaigns_total").increment(1);
        self.raft().trigger().elect().await.is_ok()
    }
}

/// The poll's verdict for member `me`, silent for `mine.millis`, given the other
/// voters' answers (`voters` counts every voter, `me` included): campaign when the
/// voters silent for longer than `threshold` ms make a majority with `me`, and none of
/// them has a more complete log, or an equal one and a lower id.
fn should_campaign(
    me: NodeId,
    mine: &Silence,
    answers: &[(NodeId, Silence)],
    voters: usize,
    threshold: u64,
) -> bool {
    // Strictly longer than the lease: a voter refuses a vote until its lease (one
    // election timeout since it last heard a leader) has run out.
    if mine.millis <= threshold {
        return false;
    }
    let silent: Vec<&(NodeId, Silence)> = answers
        .iter()
        .filter(|(id, s)| *id != me && s.millis > threshold)
        .collect();
    if (silent.len() + 1) * 2 <= voters {
        return false;
    }
    !silent
        .iter()
        .any(|(id, s)| s.last_log > mine.last_log || (s.last_log == mine.last_log && *id < me))
}

/// Runs the poll every twentieth of an election timeout on every voter, backing off
/// for one election timeout after each campaign it starts.
pub(super) async fn run_fast_failover(store: Store, mut shutdown: Shutdown) {
    let timeout = store.options().election_timeout;
    let mut tick = tokio::time::interval((timeout / 20).max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait() => return,
        }
        if store.is_leader() || store.is_draining() || !store.elections_enabled() {
            continue;
        }
        if store.campaign_if_silent_majority(timeout).await {
            tokio::select! {
                _ = tokio::time::sleep(timeout) => {}
                _ = shutdown.wait() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::CommittedLeaderId;

    fn log(term: u64, index: u64) -> Option<LogId> {
        Some(LogId::new(CommittedLeaderId::new(term, 0), index))
    }

    fn silence(millis: u64, last_log: Option<LogId>) -> Silence {
        Silence { millis, last_log }
    }

    const ET: u64 = 1000;

    #[test]
    fn a_member_that_still_hears_the_leader_never_campaigns() {
        let mine = silence(ET, log(2, 10));
        let others = [(2, silence(ET * 5, log(2, 9))), (3, silence(ET * 5, None))];
        assert!(!should_campaign(1, &mine, &others, 3, ET));
    }

    #[test]
    fn a_silent_minority_does_not_campaign() {
        let mine = silence(ET + 1, log(2, 10));
        // Of five voters only this one and one other stopped hearing the leader; a
        // third is unreachable (no answer).
        let others = [
            (2, silence(ET + 1, log(2, 9))),
            (3, silence(10, log(2, 10))),
        ];
        assert!(!should_campaign(1, &mine, &others, 5, ET));
        // With the third answering silent too, the three make a majority.
        let others = [
            (2, silence(ET + 1, log(2, 9))),
            (3, silence(10, log(2, 10))),
            (4, silence(u64::MAX, log(1, 3))),
        ];
        assert!(should_campaign(1, &mine, &others, 5, ET));
    }

    #[test]
    fn the_most_complete_log_campaigns_first_and_ties_go_to_the_lowest_id() {
        let longer = silence(ET + 1, log(2, 11));
        let shorter = silence(ET + 1, log(2, 10));
        // A higher term beats a higher index.
        let newer_term = silence(ET + 1, log(3, 5));
        assert!(should_campaign(3, &longer, &[(1, shorter.clone())], 3, ET));
        assert!(!should_campaign(1, &shorter, &[(3, longer.clone())], 3, ET));
        assert!(!should_campaign(1, &longer, &[(2, newer_term)], 3, ET));
        assert!(should_campaign(1, &longer, &[(2, longer.clone())], 3, ET));
        assert!(!should_campaign(2, &longer, &[(1, longer.clone())], 3, ET));
        // A member that hears the leader does not rank: it will not vote anyway.
        assert!(should_campaign(
            2,
            &shorter,
            &[(1, silence(5, log(9, 99))), (3, silence(ET + 1, log(2, 1)))],
            3,
            ET
        ));
    }
}
