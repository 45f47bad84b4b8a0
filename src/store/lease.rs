//! Leases: grants and revocations go through Raft; keep-alives and expiry are the
//! leader's business, on the leader's clock, as in etcd.
//!
//! Invariants: only a member that believes it leads revokes expired leases, and it
//! does so through Raft (a deposed leader's revocation is just a proposal like any
//! other); when a member becomes leader every lease gets its full TTL again (etcd's
//! `Promote`), so a leader change never expires a lease early.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{Header, LeaderCall, LeaderReply, Store, StoreError};
use crate::mvcc::{Lease, LeaseId, MvccError, Request, Response};
use crate::server::Shutdown;

/// etcd's largest lease TTL.
const MAX_LEASE_TTL: i64 = 9_000_000_000;

/// The leader's view of lease deadlines.
pub struct Lessor {
    /// etcd's minimum TTL: 1.5 election timeouts, rounded up to whole seconds.
    min_ttl: i64,
    state: Mutex<LessorState>,
}

#[derive(Default)]
struct LessorState {
    /// True while this member acts as the lease primary (the leader).
    primary: bool,
    deadlines: HashMap<LeaseId, Instant>,
    /// Revocations proposed and not yet applied.
    revoking: HashMap<LeaseId, Instant>,
}

impl Lessor {
    pub fn new(election_timeout: Duration) -> Lessor {
        let millis = election_timeout.as_millis() as i64 * 3 / 2;
        let min_ttl = ((millis + 999) / 1000).max(1);
        Lessor {
            min_ttl,
            state: Mutex::new(LessorState::default()),
        }
    }

    /// The TTL a grant of `requested` seconds gets.
    pub fn effective_ttl(&self, requested: i64) -> i64 {
        requested.max(self.min_ttl)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LessorState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Becomes primary: every known lease gets a full TTL from now.
    fn promote(&self, leases: &[Lease], now: Instant) {
        let mut st = self.lock();
        st.primary = true;
        st.deadlines = leases
            .iter()
            .map(|l| (l.id, now + Duration::from_secs(l.ttl.max(0) as u64)))
            .collect();
        st.revoking.clear();
    }

    fn demote(&self) {
        let mut st = self.lock();
        st.primary = false;
        st.deadlines.clear();
        st.revoking.clear();
    }

    fn is_primary(&self) -> bool {
        self.lock().primary
    }

    /// Aligns deadlines with the applied leases (grants get a full TTL, revoked ones go)
    /// and returns the leases whose deadline passed and whose revocation is not already
    /// under way.
    fn expired(&self, leases: &[Lease], now: Instant) -> Vec<LeaseId> {
        let mut st = self.lock();
        let live: HashMap<LeaseId, i64> = leases.iter().map(|l| (l.id, l.ttl)).collect();
        st.deadlines.retain(|id, _| live.contains_key(id));
        st.revoking.retain(|id, at| {
            live.contains_key(id) && now.duration_since(*at) < Duration::from_secs(5)
        });
        for (id, ttl) in &live {
            st.deadlines
                .entry(*id)
                .or_insert_with(|| now + Duration::from_secs((*ttl).max(0) as u64));
        }
        let expired: Vec<LeaseId> = st
            .deadlines
            .iter()
            .filter(|(id, deadline)| **deadline <= now && !st.revoking.contains_key(id))
            .map(|(id, _)| *id)
            .collect();
        for id in &expired {
            st.revoking.insert(*id, now);
        }
        expired
    }

    /// Renews a lease that exists with `ttl`; returns the TTL granted.
    fn renew(&self, id: LeaseId, ttl: i64, now: Instant) -> i64 {
        let mut st = self.lock();
        st.deadlines
            .insert(id, now + Duration::from_secs(ttl.max(0) as u64));
        ttl
    }

    /// Seconds left, rounded as etcd does (down), if the lease is tracked.
    fn remaining(&self, id: LeaseId, now: Instant) -> Option<i64> {
        let st = self.lock();
        st.deadlines
            .get(&id)
            .map(|d| d.saturating_duration_since(now).as_secs() as i64)
    }
}

/// A lease id nobody else proposes: the member id's low bits and the clock.
fn new_lease_id(member: u64, attempt: u64) -> LeaseId {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    let id = ((member & 0x7fff) << 48) | (micros.wrapping_add(attempt) & 0xffff_ffff_ffff);
    (id as i64).max(1)
}

impl Store {
    /// etcd's LeaseGrant; `id` 0 lets the store choose.
    pub async fn lease_grant(
        &self,
        ttl: i64,
        id: LeaseId,
    ) -> Result<(Header, LeaseId, i64), StoreError> {
        if ttl > MAX_LEASE_TTL {
            return Err(StoreError::LeaseTtlTooLarge);
        }
        let ttl = self.inner.lessor.effective_ttl(ttl);
        for attempt in 0..8 {
            let lease_id = if id != 0 {
                id
            } else {
                new_lease_id(self.inner.id, attempt)
            };
            let req = Request::LeaseGrant { id: lease_id, ttl };
            self.check_quota(&req).await?;
            let applied = self.propose(req).await?;
            match applied.result {
                Ok(Response::LeaseGrant { id, ttl }) => {
                    if self.inner.lessor.is_primary() {
                        self.inner.lessor.renew(id, ttl, Instant::now());
                    }
                    return Ok((self.header_at(applied.revision), id, ttl));
                }
                Err(MvccError::LeaseExists) if id == 0 => continue,
                Err(e) => return Err(e.into()),
                Ok(other) => {
                    return Err(StoreError::Internal(format!(
                        "unexpected lease grant result {other:?}"
                    )))
                }
            }
        }
        Err(StoreError::Internal(
            "could not choose a free lease id".into(),
        ))
    }

    /// etcd's LeaseRevoke: deletes the lease and its keys.
    pub async fn lease_revoke(&self, id: LeaseId) -> Result<Header, StoreError> {
        let applied = self.propose(Request::LeaseRevoke { id }).await?;
        applied.result?;
        Ok(self.header_at(applied.revision))
    }

    /// One keep-alive: renews the lease on the leader; returns its TTL, 0 if the lease
    /// does not exist (etcd answers so rather than with an error).
    pub async fn lease_keep_alive(&self, id: LeaseId) -> Result<i64, StoreError> {
        match self.call_leader(LeaderCall::LeaseKeepAlive { id }).await? {
            LeaderReply::Ttl(ttl) => Ok(ttl),
            other => Err(StoreError::Internal(format!(
                "unexpected keep-alive reply {other:?}"
            ))),
        }
    }

    /// etcd's LeaseTimeToLive: (remaining TTL, granted TTL, attached keys); remaining is
    /// -1 when the lease does not exist.
    pub async fn lease_time_to_live(
        &self,
        id: LeaseId,
        keys: bool,
    ) -> Result<(Header, i64, i64, Vec<bytes::Bytes>), StoreError> {
        self.linearize().await?;
        let Some(lease) = self.inner.mvcc.lease(id) else {
            return Ok((self.header(), -1, 0, Vec::new()));
        };
        let remaining = match self.call_leader(LeaderCall::LeaseRemaining { id }).await? {
            LeaderReply::Ttl(ttl) => ttl,
            other => {
                return Err(StoreError::Internal(format!(
                    "unexpected time-to-live reply {other:?}"
                )))
            }
        };
        let keys = if keys {
            self.inner.mvcc.lease_keys(id)
        } else {
            Vec::new()
        };
        Ok((self.header(), remaining, lease.ttl, keys))
    }

    /// etcd's LeaseLeases.
    pub async fn leases(&self) -> Result<(Header, Vec<LeaseId>), StoreError> {
        self.linearize().await?;
        Ok((
            self.header(),
            self.inner.mvcc.leases().into_iter().map(|l| l.id).collect(),
        ))
    }

    /// Leader side of a keep-alive.
    pub(super) fn local_keep_alive(&self, id: LeaseId) -> Result<i64, StoreError> {
        if !self.inner.lessor.is_primary() {
            return Err(StoreError::NotLeader);
        }
        match self.inner.mvcc.lease(id) {
            Some(lease) => Ok(self.inner.lessor.renew(id, lease.ttl, Instant::now())),
            None => Ok(0),
        }
    }

    /// Leader side of a remaining-TTL query.
    pub(super) fn local_remaining(&self, id: LeaseId) -> Result<i64, StoreError> {
        if !self.inner.lessor.is_primary() {
            return Err(StoreError::NotLeader);
        }
        let now = Instant::now();
        match self.inner.mvcc.lease(id) {
            None => Ok(-1),
            Some(lease) => Ok(self.inner.lessor.remaining(id, now).unwrap_or(lease.ttl)),
        }
    }
}

/// The leader's expiry loop: promotes on leadership, demotes on loss, and proposes
/// revocation of expired leases.
pub(super) async fn run_expiry(store: Store, mut shutdown: Shutdown) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait() => return,
        }
        let lessor = &store.inner.lessor;
        let leading = store.is_leader();
        if !leading {
            if lessor.is_primary() {
                lessor.demote();
            }
            continue;
        }
        let leases = store.inner.mvcc.leases();
        let now = Instant::now();
        if !lessor.is_primary() {
            // Make sure everything the previous leader committed is applied first.
            if store.linearize().await.is_err() {
                continue;
            }
            lessor.promote(&store.inner.mvcc.leases(), Instant::now());
            continue;
        }
        for id in lessor.expired(&leases, now) {
            let store = store.clone();
            tokio::spawn(async move {
                tracing::debug!(lease = id, "lease expired: revoking");
                match store.lease_revoke(id).await {
                    Ok(_) | Err(StoreError::Mvcc(MvccError::LeaseNotFound)) => {
                        metrics::counter!("etcd_debugging_server_lease_expired_total").increment(1);
                    }
                    Err(e) => {
                        tracing::warn!(lease = id, error = %e, "revoking an expired lease failed")
                    }
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_ttl_follows_the_election_timeout() {
        let lessor = Lessor::new(Duration::from_millis(1000));
        assert_eq!(lessor.effective_ttl(1), 2);
        assert_eq!(lessor.effective_ttl(60), 60);
    }

    #[test]
    fn expiry_is_reported_once_and_promotion_restarts_ttls() {
        let lessor = Lessor::new(Duration::from_millis(1000));
        let t0 = Instant::now();
        let leases = vec![Lease { id: 7, ttl: 5 }];
        lessor.promote(&leases, t0);
        assert!(lessor
            .expired(&leases, t0 + Duration::from_secs(4))
            .is_empty());
        assert_eq!(
            lessor.expired(&leases, t0 + Duration::from_secs(6)),
            vec![7]
        );
        // Already being revoked: not reported again.
        assert!(lessor
            .expired(&leases, t0 + Duration::from_secs(7))
            .is_empty());
        // A new leader starts every lease over.
        lessor.promote(&leases, t0 + Duration::from_secs(7));
        assert!(lessor
            .expired(&leases, t0 + Duration::from_secs(11))
            .is_empty());
        assert_eq!(lessor.remaining(7, t0 + Duration::from_secs(8)), Some(4));
    }

    #[test]
    fn renewal_moves_the_deadline() {
        let lessor = Lessor::new(Duration::from_millis(1000));
        let t0 = Instant::now();
        let leases = vec![Lease { id: 1, ttl: 3 }];
        lessor.promote(&leases, t0);
        lessor.renew(1, 3, t0 + Duration::from_secs(2));
        assert!(lessor
            .expired(&leases, t0 + Duration::from_secs(4))
            .is_empty());
        assert_eq!(
            lessor.expired(&leases, t0 + Duration::from_secs(6)),
            vec![1]
        );
    }
}
