//! Linearizable reads: a read index obtained from the leader (which confirms its
//! leadership with a quorum round), shared by every read that arrived before the round
//! started.
//!
//! Invariant: a read is only ever given an index from a round that began after the
//! read arrived, so the index covers every write acknowledged before the read. A round
//! asked of a leader that is replaced meanwhile is asked again of the successor. While
//! a leadership transfer holds this leader, no round starts here: a round's heartbeats
//! would renew the followers' leases and make them refuse the transfer target's vote.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::{LeaderCall, LeaderReply, StoreError};
use crate::raft::network::PeerClients;
use crate::raft::proposer::ProposeError;
use crate::raft::{until, NodeId, Raft};

type Waiter = oneshot::Sender<Result<u64, StoreError>>;

#[derive(Default)]
struct Queue {
    round_running: bool,
    waiting: Vec<Waiter>,
}

pub(super) struct ReadIndex {
    id: NodeId,
    raft: Raft,
    peers: PeerClients,
    /// Set while a leadership transfer holds this member (see `cluster.rs`).
    hold: Arc<AtomicBool>,
    queue: Arc<Mutex<Queue>>,
}

impl ReadIndex {
    pub fn new(id: NodeId, raft: Raft, peers: PeerClients, hold: Arc<AtomicBool>) -> Self {
        ReadIndex {
            id,
            raft,
            peers,
            hold,
            queue: Arc::new(Mutex::new(Queue::default())),
        }
    }

    /// An index such that once it is applied locally, a local read is linearizable.
    pub async fn read_index(&self) -> Result<u64, StoreError> {
        let (tx, rx) = oneshot::channel();
        let start_round = {
            let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
            q.waiting.push(tx);
            !std::mem::replace(&mut q.round_running, true)
        };
        if start_round {
            let queue = self.queue.clone();
            let fetch = Fetch {
                id: self.id,
                raft: self.raft.clone(),
                peers: self.peers.clone(),
                hold: self.hold.clone(),
            };
            tokio::spawn(async move {
                loop {
                    let waiters = {
                        let mut q = queue.lock().unwrap_or_else(|p| p.into_inner());
                        if q.waiting.is_empty() {
                            q.round_running = false;
                            return;
                        }
                        std::mem::take(&mut q.waiting)
                    };
                    let res = fetch.once().await;
                    for w in waiters {
                        let _ = w.send(res.clone());
                    }
                }
            });
        }
        rx.await.unwrap_or(Err(StoreError::Stopped))
    }
}

struct Fetch {
    id: NodeId,
    raft: Raft,
    peers: PeerClients,
    hold: Arc<AtomicBool>,
}

impl Fetch {
    /// One round: locally on the leader, else asked of the leader.
    async fn once(&self) -> Result<u64, StoreError> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
        let mut metrics = self.raft.metrics();
        loop {
            let (leader, member) = {
                let m = metrics.borrow_and_update();
                let leader = m.current_leader;
                (
                    leader,
                    leader.and_then(|l| m.membership_config.membership().get_node(&l).cloned()),
                )
            };
            match leader {
                // Wait for the transfer to end; then this member leads no more, or
                // the transfer failed and it answers.
                Some(l) if l == self.id && self.hold.load(Ordering::SeqCst) => {}
                Some(l) if l == self.id => match self.raft.get_read_log_id().await {
                    Ok((read, _applied)) => return Ok(read.map(|l| l.index).unwrap_or(0)),
                    Err(e) => tracing::debug!(error = %e, "read index on the leader failed"),
                },
                Some(_) => {
                    if let Some(member) = member {
                        let client = self
                            .peers
                            .member(&member)
                            .map_err(|e| StoreError::Internal(e.to_string()))?;
                        let payload = crate::raft::peer::encode(&LeaderCall::ReadIndex)
                            .map_err(|s| StoreError::Internal(s.message().to_owned()))?;
                        let remaining =
                            deadline.saturating_duration_since(tokio::time::Instant::now());
                        // A leader that stops answering is replaced within about an
                        // election timeout: ask the successor then instead of waiting
                        // out the call (asking again is safe for a read).
                        let replaced = until(&self.raft, |m| m.current_leader != leader);
                        let answer = tokio::select! {
                            answer = client.call(payload, remaining) => answer,
                            _ = replaced => continue,
                        };
                        match answer {
                            Ok(Ok(bytes)) => {
                                let reply: Result<LeaderReply, _> =
                                    crate::raft::peer::decode(&bytes);
                                match reply {
                                    Ok(LeaderReply::ReadIndex(index)) => return Ok(index),
                                    other => {
                                        tracing::debug!(reply = ?other.ok(), "unexpected read index reply")
                                    }
                                }
                            }
                            Ok(Err(e)) => tracing::debug!(error = %e, "leader refused read index"),
                            Err(e) => tracing::debug!(error = %e, "read index request failed"),
                        }
                    }
                }
                None => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(if leader.is_none() {
                    ProposeError::NoLeader.into()
                } else {
                    ProposeError::Timeout.into()
                });
            }
            let _ =
                tokio::time::timeout(std::time::Duration::from_millis(50), metrics.changed()).await;
        }
    }
}
