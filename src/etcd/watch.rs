//! etcd's Watch service: one bidirectional stream carries many watchers.
//!
//! Invariants: a watcher's `created` response precedes its events; its events arrive in
//! revision order with nothing skipped, or it is cancelled with the compact revision;
//! a progress response (watch id -1) goes out only when every watcher of the stream is
//! synced, after every event already sent for them.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

use super::convert;
use super::proto::etcdserverpb as pb;
use crate::mvcc::{KeyRange, WatchHandle, WatchMsg, WatchSpec};
use crate::store::Store;

pub struct WatchService {
    pub store: Store,
    /// Interval of progress notifications for watchers that asked for them.
    pub progress_interval: Duration,
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchResponse, Status>> + Send>>;

/// Largest events payload per response when a watcher accepts fragments.
const FRAGMENT_BYTES: usize = 1536 * 1024;

#[derive(Clone, Copy, Default)]
struct Flags {
    prev_kv: bool,
    fragment: bool,
    progress_notify: bool,
}

fn requires_leader<T>(req: &Request<T>) -> bool {
    req.metadata()
        .get("hasleader")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "true")
}

#[tonic::async_trait]
impl pb::watch_server::Watch for WatchService {
    async fn watch(
        &self,
        req: Request<Streaming<pb::WatchRequest>>,
    ) -> Result<Response<WatchStream>, Status> {
        let need_leader = requires_leader(&req);
        if need_leader && self.store.leader().is_none() {
            return Err(Status::unavailable("etcdserver: no leader"));
        }
        let input = req.into_inner();
        let (out_tx, out_rx) = mpsc::channel::<Result<pb::WatchResponse, Status>>(256);
        let (hub_tx, hub_rx) = mpsc::channel::<WatchMsg>(1024);
        let flags: Arc<Mutex<HashMap<i64, Flags>>> = Arc::default();
        let store = self.store.clone();
        tokio::spawn(serve_stream(
            store.clone(),
            input,
            out_tx,
            hub_tx,
            flags.clone(),
            self.progress_interval,
            need_leader,
        ));
        metrics::counter!("grpc_server_started_total", "grpc_type" => "bidi_stream", "grpc_service" => "etcdserverpb.Watch", "grpc_method" => "Watch").increment(1);
        Ok(Response::new(Box::pin(Outgoing {
            store,
            control: out_rx,
            hub: hub_rx,
            flags,
            pending: VecDeque::new(),
            control_open: true,
            hub_open: true,
        })))
    }
}

/// The gRPC response stream of one Watch call: the replies of `serve_stream`
/// (created, canceled, errors) and the hub's messages, converted as they are polled,
/// so an event goes from the hub to the HTTP/2 stream without a task in between.
///
/// Control replies are taken first: `serve_stream` queues a watcher's `created`
/// before registering it with the hub, so it is always ahead of the watcher's events.
/// The stream ends when both sides are closed.
struct Outgoing {
    store: Store,
    control: mpsc::Receiver<Result<pb::WatchResponse, Status>>,
    hub: mpsc::Receiver<WatchMsg>,
    flags: Arc<Mutex<HashMap<i64, Flags>>>,
    pending: VecDeque<pb::WatchResponse>,
    control_open: bool,
    hub_open: bool,
}

impl Stream for Outgoing {
    type Item = Result<pb::WatchResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(r) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(r)));
            }
            if this.control_open {
                match this.control.poll_recv(cx) {
                    Poll::Ready(Some(item)) => return Poll::Ready(Some(item)),
                    Poll::Ready(None) => this.control_open = false,
                    Poll::Pending => {}
                }
            }
            if this.hub_open {
                match this.hub.poll_recv(cx) {
                    Poll::Ready(Some(msg)) => {
                        this.pending = responses(&this.store, &this.flags, msg).into();
                        continue;
                    }
                    Poll::Ready(None) => this.hub_open = false,
                    Poll::Pending => {}
                }
            }
            if !this.control_open && !this.hub_open {
                return Poll::Ready(None);
            }
            return Poll::Pending;
        }
    }
}

/// The responses for one hub message (none for a watcher already cancelled).
fn responses(
    store: &Store,
    flags: &Mutex<HashMap<i64, Flags>>,
    msg: WatchMsg,
) -> Vec<pb::WatchResponse> {
    match msg {
        WatchMsg::Events {
            tag,
            revision,
            events,
        } => {
            let f = flags
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&tag)
                .copied();
            let Some(f) = f else { return Vec::new() };
            let header = convert::header(store.header_at(revision));
            let events: Vec<_> = events
                .into_iter()
                .map(|e| convert::event(e, f.prev_kv))
                .collect();
            metrics::counter!("etcd_debugging_mvcc_events_total").increment(events.len() as u64);
            fragments(header, tag, events, f.fragment)
        }
        WatchMsg::Progress { revision } => vec![pb::WatchResponse {
            header: convert::header(store.header_at(revision)),
            watch_id: -1,
            ..Default::default()
        }],
        WatchMsg::Compacted {
            tag,
            compact_revision,
        } => {
            flags.lock().unwrap_or_else(|p| p.into_inner()).remove(&tag);
            vec![pb::WatchResponse {
                header: convert::header(store.header()),
                watch_id: tag,
                canceled: true,
                compact_revision,
                cancel_reason: "etcdserver: mvcc: required revision has been compacted".into(),
                ..Default::default()
            }]
        }
    }
}

/// Splits events into several responses marked `fragment` when the watcher allows it
/// and they would be too large for one.
fn fragments(
    header: Option<pb::ResponseHeader>,
    tag: i64,
    events: Vec<crate::etcd::proto::mvccpb::Event>,
    allow: bool,
) -> Vec<pb::WatchResponse> {
    use prost::Message;
    let whole = pb::WatchResponse {
        header,
        watch_id: tag,
        events,
        ..Default::default()
    };
    if !allow || whole.encoded_len() <= FRAGMENT_BYTES {
        return vec![whole];
    }
    let mut out = Vec::new();
    let mut current = Vec::new();
    let mut size = 0;
    for ev in whole.events {
        let len = ev.encoded_len();
        if size + len > FRAGMENT_BYTES && !current.is_empty() {
            out.push(pb::WatchResponse {
                header,
                watch_id: tag,
                fragment: true,
                events: std::mem::take(&mut current),
                ..Default::default()
            });
            size = 0;
        }
        size += len;
        current.push(ev);
    }
    out.push(pb::WatchResponse {
        header,
        watch_id: tag,
        fragment: false,
        events: current,
        ..Default::default()
    });
    out
}

/// Reads the client's requests: creates and cancels watchers, answers progress
/// requests, sends periodic progress notifications, watches for leader loss.
async fn serve_stream(
    store: Store,
    mut input: Streaming<pb::WatchRequest>,
    out: mpsc::Sender<Result<pb::WatchResponse, Status>>,
    hub_tx: mpsc::Sender<WatchMsg>,
    flags: Arc<Mutex<HashMap<i64, Flags>>>,
    progress_interval: Duration,
    need_leader: bool,
) {
    let mut watchers: HashMap<i64, WatchHandle> = HashMap::new();
    let mut next_id: i64 = 0;
    let mut progress_pending = false;
    let mut progress_tick = tokio::time::interval(progress_interval);
    progress_tick.tick().await;
    // Polled only while a progress request waits or the client asked for a leader,
    // so an idle watch stream costs no timer wake-ups.
    let mut retry_tick = tokio::time::interval(Duration::from_millis(100));
    retry_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let leader_grace = store.options().election_timeout * 3;
    let mut leaderless_since: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            msg = input.next() => {
                let Some(Ok(msg)) = msg else { break };
                match msg.request_union {
                    Some(pb::watch_request::RequestUnion::CreateRequest(c)) => {
                        let id = if c.watch_id != 0 {
                            c.watch_id
                        } else {
                            while watchers.contains_key(&next_id) {
                                next_id += 1;
                            }
                            next_id
                        };
                        if watchers.contains_key(&id) {
                            let _ = out.send(Ok(pb::WatchResponse {
                                header: convert::header(store.header()),
                                watch_id: id,
                                created: true,
                                canceled: true,
                                cancel_reason: "mvcc: duplicate watch ID provided".into(),
                                ..Default::default()
                            })).await;
                            continue;
                        }
                        let key = if c.key.is_empty() { bytes::Bytes::from_static(&[0]) } else { c.key };
                        let spec = WatchSpec {
                            range: KeyRange::new(key, c.range_end),
                            start_revision: c.start_revision,
                            filter_put: c.filters.contains(&(pb::watch_create_request::FilterType::Noput as i32)),
                            filter_delete: c.filters.contains(&(pb::watch_create_request::FilterType::Nodelete as i32)),
                        };
                        flags.lock().unwrap_or_else(|p| p.into_inner()).insert(id, Flags {
                            prev_kv: c.prev_kv,
                            fragment: c.fragment,
                            progress_notify: c.progress_notify,
                        });
                        // `created` goes out before the hub can send anything for it.
                        if out.send(Ok(pb::WatchResponse {
                            header: convert::header(store.header()),
                            watch_id: id,
                            created: true,
                            ..Default::default()
                        })).await.is_err() {
                            break;
                        }
                        let handle = store.hub().watch(spec, id, hub_tx.clone());
                        watchers.insert(id, handle);
                    }
                    Some(pb::watch_request::RequestUnion::CancelRequest(c)) => {
                        if let Some(h) = watchers.remove(&c.watch_id) {
                            h.cancel();
                            flags.lock().unwrap_or_else(|p| p.into_inner()).remove(&c.watch_id);
                            let _ = out.send(Ok(pb::WatchResponse {
                                header: convert::header(store.header()),
                                watch_id: c.watch_id,
                                canceled: true,
                                ..Default::default()
                            })).await;
                        }
                    }
                    Some(pb::watch_request::RequestUnion::ProgressRequest(_)) => {
                        let handles: Vec<&WatchHandle> = watchers.values().collect();
                        progress_pending = !store.hub().request_progress(&handles, &hub_tx);
                    }
                    None => {}
                }
            }
            _ = retry_tick.tick(), if progress_pending || need_leader => {
                if progress_pending {
                    let handles: Vec<&WatchHandle> = watchers.values().collect();
                    progress_pending = !store.hub().request_progress(&handles, &hub_tx);
                }
                if need_leader {
                    if store.leader().is_some() {
                        leaderless_since = None;
                    } else {
                        let since = *leaderless_since.get_or_insert_with(tokio::time::Instant::now);
                        if since.elapsed() >= leader_grace {
                            let _ = out.send(Err(Status::unavailable("etcdserver: no leader"))).await;
                            break;
                        }
                    }
                }
            }
            _ = progress_tick.tick() => {
                let wanted: Vec<i64> = flags.lock().unwrap_or_else(|p| p.into_inner())
                    .iter().filter(|(_, f)| f.progress_notify).map(|(id, _)| *id).collect();
                for id in wanted {
                    if let Some(h) = watchers.get(&id) {
                        store.hub().notify_progress(h);
                    }
                }
            }
        }
    }
    for (_, h) in watchers {
        h.cancel();
    }
}
