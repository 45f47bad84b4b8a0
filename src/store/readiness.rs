//! Readiness as load balancers and `/readyz` see it, kept current by a probe so a
//! health check answers at once instead of waiting on Raft.
//!
//! A member is ready when it knows a leader; when it leads, a quorum acknowledged it
//! within one election timeout (as etcd's CheckQuorum: a leader cut off from the
//! majority stops taking clients at once instead of holding them for the rest of its
//! term); and a linearizable read (read index from the leader, then local apply)
//! completed within the grace period, so a member that cannot read (cut off, or far
//! behind while it catches up) is not ready.
//!
//! Invariant: the grace period (two election timeouts) outlasts an election, so when
//! a leader stops answering, the members that will elect its successor stay in the
//! load balancer meanwhile: marking every member unready at once would only refuse
//! the clients that are about to be served, then hold them for the checks to rise.

use std::time::{Duration, Instant};

use super::Store;
use crate::raft::quorum_lost;

/// How often the probe reads.
const PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// How long one probe read may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The probe's last findings.
#[derive(Default)]
pub(super) struct Probe {
    last_read: Option<Instant>,
    last_error: Option<String>,
}

/// Why a member is not ready, per check; `None` where the check passes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// A leader is known and, on the leader, a quorum still acknowledges it.
    pub leader: Option<String>,
    /// A linearizable read completed within the grace period.
    pub read: Option<String>,
}

impl Readiness {
    /// The first failing check's reason.
    pub fn reason(&self) -> Option<&str> {
        self.leader.as_deref().or(self.read.as_deref())
    }
}

impl Store {
    /// This member's readiness now (no Raft round trip).
    pub fn readiness(&self) -> Readiness {
        let et = self.options().election_timeout;
        let leader = match self.leader() {
            None => Some("RAFT NO LEADER".to_owned()),
            Some(l) if l == self.member_id() => {
                let since_ack = self.raft().metrics().borrow().millis_since_quorum_ack;
                quorum_lost(since_ack, et).then(|| {
                    format!(
                        "leader has not heard from a quorum of members for more than {} ms",
                        et.as_millis()
                    )
                })
            }
            Some(_) => None,
        };
        let probe = self.inner.probe.lock().unwrap_or_else(|p| p.into_inner());
        let read = read_stale(probe.last_read, Instant::now(), 2 * et).then(|| {
            probe
                .last_error
                .clone()
                .unwrap_or_else(|| "no linearizable read has completed yet".to_owned())
        });
        Readiness { leader, read }
    }

    fn record_probe(&self, outcome: Result<(), String>) {
        let mut probe = self.inner.probe.lock().unwrap_or_else(|p| p.into_inner());
        match outcome {
            Ok(()) => {
                probe.last_read = Some(Instant::now());
                probe.last_error = None;
            }
            Err(e) => probe.last_error = Some(e),
        }
    }
}

/// Reads linearizably every `PROBE_INTERVAL` until shutdown, recording the outcome
/// for [`Store::readiness`].
pub(super) async fn run_probe(store: Store, mut shutdown: crate::server::Shutdown) {
    let mut tick = tokio::time::interval(PROBE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait() => return,
        }
        let outcome = match tokio::time::timeout(PROBE_TIMEOUT, store.linearize()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out waiting for a read index".to_owned()),
        };
        store.record_probe(outcome);
    }
}

/// No read completed within `grace` before `now`.
fn read_stale(last: Option<Instant>, now: Instant, grace: Duration) -> bool {
    last.is_none_or(|t| now.saturating_duration_since(t) > grace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_without_quorum_acks_is_not_ready() {
        let et = Duration::from_millis(1000);
        assert!(!quorum_lost(Some(0), et));
        assert!(!quorum_lost(Some(1000), et));
        assert!(quorum_lost(Some(1001), et));
        assert!(
            !quorum_lost(None, et),
            "just elected: the first round is under way"
        );
    }

    #[test]
    fn reads_go_stale_after_the_grace_period() {
        let read_at = Instant::now();
        let grace = Duration::from_secs(2);
        assert!(read_stale(None, read_at, grace));
        assert!(!read_stale(Some(read_at), read_at, grace));
        let later = |ms| read_at + Duration::from_millis(ms);
        assert!(!read_stale(Some(read_at), later(1500), grace));
        assert!(read_stale(Some(read_at), later(2500), grace));
    }
}
