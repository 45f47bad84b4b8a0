//! The watch hub: fans applied events out to watchers, and catches slow or late
//! watchers up from the store's history.
//!
//! A watcher is either *synced* (it gets events pushed as apply produces them, with a
//! non-blocking send) or *catching up* (a task of its own reads history and waits on
//! the watcher's channel). A synced watcher whose channel is full is moved to catch-up
//! instead of being waited for.
//!
//! Invariants: apply never waits for a watcher; each watcher sees every matching
//! event exactly once, in revision order, from its start revision on, or is told its
//! start was compacted; moving between synced and catching up happens under the hub
//! lock, against the revision the hub last published.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{Event, EventKind, KeyRange, MvccError, MvccStore, Revision};

/// What to watch.
#[derive(Clone, Debug, Default)]
pub struct WatchSpec {
    pub range: KeyRange,
    /// First revision to report; 0 = the next one.
    pub start_revision: Revision,
    /// Drop PUT events (etcd's NOPUT filter).
    pub filter_put: bool,
    /// Drop DELETE events (etcd's NODELETE filter).
    pub filter_delete: bool,
}

/// What a watcher's channel carries. `tag` is the caller's name for the watcher (the
/// etcd watch id), so several watchers can share one channel (one gRPC stream).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchMsg {
    /// Events of one or more revisions, all `<= revision`. Empty `events` is a progress
    /// notification for this watcher: nothing matching up to `revision`.
    Events {
        tag: i64,
        revision: Revision,
        events: Vec<Event>,
    },
    /// Every watcher named in the request was synced at `revision`.
    Progress { revision: Revision },
    /// The watcher's next revision was compacted away; it is cancelled.
    Compacted {
        tag: i64,
        compact_revision: Revision,
    },
}

/// Events read from history per step of a catch-up.
const CATCH_UP_BATCH: usize = 1000;

#[derive(Clone)]
pub struct WatchHub {
    inner: Arc<HubInner>,
}

struct HubInner {
    store: MvccStore,
    next_id: AtomicU64,
    state: Mutex<HubState>,
}

struct HubState {
    /// The newest revision published to the hub.
    current: Revision,
    synced: HashMap<u64, Synced>,
    /// Synced watchers on one key, by key (the common case for etcd clients).
    by_key: HashMap<Bytes, Vec<u64>>,
    /// Synced watchers on ranges.
    ranged: Vec<u64>,
}

struct Synced {
    shared: Arc<Shared>,
    tx: mpsc::Sender<WatchMsg>,
    /// First revision not yet delivered.
    next: Revision,
}

/// What both the handle and the hub know of a watcher.
struct Shared {
    id: u64,
    tag: i64,
    spec: WatchSpec,
    cancelled: AtomicBool,
}

impl Shared {
    fn wants(&self, ev: &Event) -> bool {
        match ev.kind {
            EventKind::Put if self.spec.filter_put => return false,
            EventKind::Delete if self.spec.filter_delete => return false,
            _ => {}
        }
        self.spec.range.contains(&ev.kv.key)
    }
}

/// A registered watcher; dropping it cancels the watch.
pub struct WatchHandle {
    hub: WatchHub,
    shared: Arc<Shared>,
}

impl WatchHandle {
    pub fn tag(&self) -> i64 {
        self.shared.tag
    }

    /// Stops the watch; nothing more is sent for it.
    pub fn cancel(&self) {
        self.shared.cancelled.store(true, Ordering::SeqCst);
        self.hub.remove(self.shared.id);
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl WatchHub {
    pub fn new(store: MvccStore) -> WatchHub {
        let current = store.current_revision();
        WatchHub {
            inner: Arc::new(HubInner {
                store,
                next_id: AtomicU64::new(1),
                state: Mutex::new(HubState {
                    current,
                    synced: HashMap::new(),
                    by_key: HashMap::new(),
                    ranged: Vec::new(),
                }),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The newest revision the hub has published.
    pub fn current_revision(&self) -> Revision {
        self.lock().current
    }

    /// Number of watchers currently synced (for metrics).
    pub fn synced_count(&self) -> usize {
        self.lock().synced.len()
    }

    /// Registers a watcher whose messages go to `tx` tagged `tag`.
    pub fn watch(&self, spec: WatchSpec, tag: i64, tx: mpsc::Sender<WatchMsg>) -> WatchHandle {
        let shared = Arc::new(Shared {
            id: self.inner.next_id.fetch_add(1, Ordering::Relaxed),
            tag,
            spec,
            cancelled: AtomicBool::new(false),
        });
        let handle = WatchHandle {
            hub: self.clone(),
            shared: shared.clone(),
        };
        let mut st = self.lock();
        let start = shared.spec.start_revision;
        if start <= 0 || start > st.current {
            let next = if start <= 0 { st.current + 1 } else { start };
            insert_synced(&mut st, Synced { shared, tx, next });
        } else {
            drop(st);
            self.spawn_catch_up(shared, tx, start);
        }
        metrics::gauge!("etcd_debugging_mvcc_watcher_total").increment(1.0);
        handle
    }

    fn remove(&self, id: u64) {
        let mut st = self.lock();
        if remove_synced(&mut st, id).is_some() {
            metrics::gauge!("etcd_debugging_mvcc_watcher_total").decrement(1.0);
        }
    }

    /// Sends `Progress` on `tx` if every watcher in `tags` that uses `tx` is synced
    /// with nothing pending; returns whether it did. Sent under the hub lock, so it is
    /// ordered after every event already sent for those watchers.
    pub fn request_progress(&self, handles: &[&WatchHandle], tx: &mpsc::Sender<WatchMsg>) -> bool {
        let st = self.lock();
        let all_synced = handles.iter().all(|h| {
            st.synced
                .get(&h.shared.id)
                .is_some_and(|s| s.next > st.current)
        });
        if !all_synced {
            return false;
        }
        tx.try_send(WatchMsg::Progress {
            revision: st.current,
        })
        .is_ok()
    }

    /// Sends an empty `Events` (a progress notification) for one synced watcher.
    pub fn notify_progress(&self, handle: &WatchHandle) -> bool {
        let st = self.lock();
        match st.synced.get(&handle.shared.id) {
            Some(s) if s.next > st.current => {
                s.tx.try_send(WatchMsg::Events {
                    tag: s.shared.tag,
                    revision: st.current,
                    events: Vec::new(),
                })
                .is_ok()
            }
            _ => false,
        }
    }

    /// Publishes events applied up to `revision` (called by apply, after the batch is
    /// durable). Never blocks on a watcher.
    pub fn publish(&self, events: &[Event], revision: Revision) {
        let lagging = {
            let mut lagging = Vec::new();
            let mut st = self.lock();
            st.current = revision;
            let mut targets: HashMap<u64, Vec<Event>> = HashMap::new();
            for ev in events {
                if let Some(ids) = st.by_key.get(&ev.kv.key) {
                    for id in ids {
                        if let Some(w) = st.synced.get(id) {
                            if ev.kv.mod_revision >= w.next && w.shared.wants(ev) {
                                targets.entry(*id).or_default().push(ev.clone());
                            }
                        }
                    }
                }
                for id in &st.ranged {
                    if let Some(w) = st.synced.get(id) {
                        if ev.kv.mod_revision >= w.next && w.shared.wants(ev) {
                            targets.entry(*id).or_default().push(ev.clone());
                        }
                    }
                }
            }
            let mut closed = Vec::new();
            for (id, events) in targets {
                let Some(w) = st.synced.get(&id) else {
                    continue;
                };
                let msg = WatchMsg::Events {
                    tag: w.shared.tag,
                    revision,
                    events,
                };
                match w.tx.try_send(msg) {
                    Ok(()) => {}
                    Err(mpsc::error::TrySendError::Full(_)) => lagging.push(id),
                    Err(mpsc::error::TrySendError::Closed(_)) => closed.push(id),
                }
            }
            for id in closed {
                remove_synced(&mut st, id);
            }
            let mut moved = Vec::new();
            for id in lagging {
                if let Some(w) = remove_synced(&mut st, id) {
                    moved.push(w);
                }
            }
            for w in st.synced.values_mut() {
                w.next = w.next.max(revision + 1);
            }
            moved
        };
        for Synced { shared, tx, next } in lagging {
            metrics::counter!("etcd_debugging_mvcc_slow_watcher_total").increment(1);
            self.spawn_catch_up(shared, tx, next);
        }
    }

    /// The whole state was replaced (snapshot install): every synced watcher catches
    /// up from history from where it was.
    pub fn restored(&self, revision: Revision) {
        let moved: Vec<Synced> = {
            let mut st = self.lock();
            st.current = revision;
            st.by_key.clear();
            st.ranged.clear();
            st.synced.drain().map(|(_, w)| w).collect()
        };
        for w in moved {
            self.spawn_catch_up(w.shared, w.tx, w.next);
        }
    }

    fn spawn_catch_up(&self, shared: Arc<Shared>, tx: mpsc::Sender<WatchMsg>, from: Revision) {
        let hub = self.clone();
        tokio::spawn(async move { hub.catch_up(shared, tx, from).await });
    }

    /// Feeds a watcher from history until it has everything published, then makes it
    /// synced again.
    async fn catch_up(&self, shared: Arc<Shared>, tx: mpsc::Sender<WatchMsg>, mut next: Revision) {
        loop {
            if shared.cancelled.load(Ordering::SeqCst) {
                return;
            }
            let target = {
                let mut st = self.lock();
                if next > st.current {
                    if !shared.cancelled.load(Ordering::SeqCst) {
                        insert_synced(&mut st, Synced { shared, tx, next });
                    }
                    return;
                }
                st.current
            };
            let store = self.inner.store.clone();
            let range = shared.spec.range.clone();
            let read = tokio::task::spawn_blocking(move || {
                store.events(&range, next, target, CATCH_UP_BATCH)
            })
            .await;
            let events = match read {
                Ok(Ok(events)) => events,
                Ok(Err(MvccError::Compacted { compact_revision })) => {
                    let _ = tx
                        .send(WatchMsg::Compacted {
                            tag: shared.tag,
                            compact_revision,
                        })
                        .await;
                    return;
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "watch catch-up could not read history");
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "watch catch-up task failed");
                    return;
                }
            };
            let complete = events.len() < CATCH_UP_BATCH;
            let last = events.last().map(|e| e.kv.mod_revision);
            let wanted: Vec<Event> = events.into_iter().filter(|e| shared.wants(e)).collect();
            let upto = if complete {
                target
            } else {
                last.unwrap_or(target)
            };
            if !wanted.is_empty() {
                // Send revision by revision groups of at most CATCH_UP_BATCH events.
                let msg = WatchMsg::Events {
                    tag: shared.tag,
                    revision: upto,
                    events: wanted,
                };
                if tx.send(msg).await.is_err() {
                    return;
                }
            }
            next = upto + 1;
        }
    }
}

fn insert_synced(st: &mut HubState, w: Synced) {
    let id = w.shared.id;
    if w.shared.spec.range.is_single_key() {
        st.by_key
            .entry(w.shared.spec.range.key.clone())
            .or_default()
            .push(id);
    } else {
        st.ranged.push(id);
    }
    st.synced.insert(id, w);
}

fn remove_synced(st: &mut HubState, id: u64) -> Option<Synced> {
    let w = st.synced.remove(&id)?;
    if w.shared.spec.range.is_single_key() {
        let key = &w.shared.spec.range.key;
        if let Some(ids) = st.by_key.get_mut(key) {
            ids.retain(|i| *i != id);
            if ids.is_empty() {
                st.by_key.remove(key);
            }
        }
    } else {
        st.ranged.retain(|i| *i != id);
    }
    Some(w)
}
