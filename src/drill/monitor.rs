//! Watches leadership during a scenario: every member's status, polled on its own
//! client port every 100 ms by one task per member (a paused member only slows its
//! own poller), recording who claims to lead in which term.
//!
//! Invariant: two different members claiming leadership of the same term is split
//! brain (Raft forbids it); a stale leader of an older term answering while a newer
//! one leads is not, as long as it cannot commit, which the loss check covers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::cluster::Cluster;

/// What the monitor saw.
#[derive(Clone, Debug, Default)]
pub struct Leadership {
    /// Term → members that claimed leadership in it.
    pub claims: BTreeMap<u64, BTreeSet<usize>>,
    /// (when first seen, member, term) of each leadership claim, in order.
    pub leaders: Vec<(Instant, usize, u64)>,
}

impl Leadership {
    /// Terms in which more than one member claimed leadership.
    pub fn split_brain(&self) -> Vec<String> {
        self.claims
            .iter()
            .filter(|(_, m)| m.len() > 1)
            .map(|(t, m)| format!("term {t}: {m:?}"))
            .collect()
    }

    /// Leadership changes seen (new (member, term) claims after the first).
    pub fn changes(&self) -> usize {
        self.leaders.len().saturating_sub(1)
    }

    /// The first claim after `after` by a member other than `old` (or by `old` in a
    /// later term than `old_term`).
    pub fn new_leader_after(&self, after: Instant, old: usize, old_term: u64) -> Option<Instant> {
        self.leaders
            .iter()
            .find(|(at, m, t)| *at >= after && (*m != old || *t > old_term))
            .map(|(at, _, _)| *at)
    }

    fn record(&mut self, at: Instant, member: usize, term: u64) {
        if self.claims.entry(term).or_default().insert(member) {
            self.leaders.push((at, member, term));
            self.leaders.sort_by_key(|(at, _, _)| *at);
        }
    }
}

/// A running monitor.
pub struct Monitor {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    seen: Arc<Mutex<Leadership>>,
}

impl Monitor {
    pub fn start(cluster: Arc<Cluster>) -> Monitor {
        let (stop, rx) = watch::channel(false);
        let seen = Arc::new(Mutex::new(Leadership::default()));
        let tasks = (0..cluster.len())
            .map(|i| {
                let cluster = cluster.clone();
                let seen = seen.clone();
                let mut rx = rx.clone();
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(Duration::from_millis(100));
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    loop {
                        tokio::select! {
                            _ = tick.tick() => {}
                            _ = rx.changed() => return,
                        }
                        let Some(s) = cluster.status(i).await.filter(|s| s.is_leader()) else {
                            continue;
                        };
                        if let Ok(mut seen) = seen.lock() {
                            seen.record(Instant::now(), i, s.term);
                        }
                    }
                })
            })
            .collect();
        Monitor { stop, tasks, seen }
    }

    pub async fn stop(self) -> Leadership {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}
