//! The watch-fanout workload: `--watchers` watch streams on one key (or one prefix),
//! one writer putting at a steady `--rate`; each delivered event's latency is its
//! receipt time minus the send time of the put that made it, per watcher per event.
//!
//! Invariant: the send time travels inside the value (its first 8 bytes, nanoseconds
//! since the run's base instant, little endian), and sender and receivers read the
//! same monotonic clock of this process, so no table of send times is kept. The writer
//! starts only after every watcher has its `created` response.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tonic::transport::Channel;

use super::error::BenchError;
use super::etcd::{EtcdArgs, Stop};
use super::histogram::Histogram;
use super::keys::KeySet;
use super::kv::random_bytes;
use super::report::{Measured, Params, Report};
use crate::etcd::proto::etcdserverpb::{
    kv_client::KvClient, watch_client::WatchClient, watch_request, PutRequest, WatchCreateRequest,
    WatchRequest,
};

/// Bytes at the start of each value that carry the put's send time.
pub const STAMP_LEN: usize = 8;
/// Interval of the progress lines on stderr.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);
/// How often the drain phase checks whether every event has arrived.
const DRAIN_POLL: Duration = Duration::from_millis(5);

/// Runs watch-fanout over the connected `channels` and returns its report.
pub async fn run(
    args: &EtcdArgs,
    endpoints: &[String],
    channels: Vec<Channel>,
) -> Result<Report, BenchError> {
    let base = Instant::now();
    let key_count = if args.watch_prefix { args.key_space } else { 1 };
    let keys = KeySet::new("w/", key_count, args.key_size)?;
    let (watch_key, range_end) = if args.watch_prefix {
        keys.prefix_range()
    } else {
        (keys.key(0), Bytes::new())
    };
    let create = WatchRequest {
        request_union: Some(watch_request::RequestUnion::CreateRequest(
            WatchCreateRequest {
                key: watch_key,
                range_end,
                ..WatchCreateRequest::default()
            },
        )),
    };

    let received = Arc::new(AtomicU64::new(0));
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::channel(args.watchers);
    tracing::info!(
        watchers = args.watchers,
        "bench: creating watches (not measured)"
    );
    let watchers: Vec<_> = (0..args.watchers)
        .map(|i| {
            let watcher = Watcher {
                client: WatchClient::new(channels[i % channels.len()].clone()),
                base,
                received: Arc::clone(&received),
            };
            tokio::spawn(watcher.run(create.clone(), ready_tx.clone(), shutdown_rx.clone()))
        })
        .collect();
    drop(ready_tx);
    for _ in 0..args.watchers {
        match tokio::time::timeout(args.timeout, ready_rx.recv()).await {
            Ok(Some(Ok(()))) => {}
            Ok(Some(Err(reason))) => return Err(BenchError::WatchSetup(reason)),
            Ok(None) => return Err(BenchError::WatchSetup("a watcher ended early".into())),
            Err(_) => return Err(BenchError::WatchSetup("watch creation timed out".into())),
        }
    }

    let stop = args.stop();
    tracing::info!(
        watchers = args.watchers,
        rate = args.rate,
        ?stop,
        "bench: measuring"
    );
    let started = Instant::now();
    let writer = write(
        args,
        &keys,
        KvClient::new(channels[0].clone()),
        base,
        stop,
        &received,
    )
    .await;

    // Drain: wait until every acknowledged put reached every watcher, or --timeout.
    let expected = writer.puts.saturating_mul(args.watchers as u64);
    let drain_deadline = Instant::now() + args.timeout;
    while received.load(Ordering::Relaxed) < expected && Instant::now() < drain_deadline {
        tokio::time::sleep(DRAIN_POLL).await;
    }
    let duration_s = started.elapsed().as_secs_f64();
    // Ignoring the send error: it means every watcher already stopped.
    let _ = shutdown_tx.send(true);

    let mut histogram = Histogram::new();
    let mut stream_errors = 0;
    for task in watchers {
        match task.await {
            Ok(outcome) => {
                histogram.merge(&outcome.histogram);
                stream_errors += outcome.errors;
            }
            Err(join) => {
                tracing::error!(%join, "bench: a watcher task failed");
                stream_errors += 1;
            }
        }
    }
    let missed = expected.saturating_sub(histogram.count());
    if missed > 0 {
        tracing::warn!(
            missed,
            expected,
            "bench: events not delivered within --timeout"
        );
    }
    let measured = Measured {
        histogram,
        errors: writer.errors + stream_errors + missed,
        duration_s,
    };
    let params = Params {
        key_size: keys.key_len(),
        val_size: args.value_size(),
        key_space: args.watch_prefix.then_some(key_count),
        watchers: Some(args.watchers),
        rate: Some(args.rate),
        puts: Some(writer.puts),
        timeouts: writer.timeouts,
        timeout_s: args.timeout.as_secs_f64(),
        ..Params::default()
    };
    Ok(Report::new(
        "watch-fanout",
        args.label.clone(),
        endpoints,
        args.watchers,
        channels.len(),
        &measured,
        params,
    ))
}

/// What the writer did.
struct Written {
    puts: u64,
    errors: u64,
    timeouts: u64,
}

/// Puts at `args.rate` until the stop condition, each value stamped with its send time.
async fn write(
    args: &EtcdArgs,
    keys: &KeySet,
    mut kv: KvClient<Channel>,
    base: Instant,
    stop: Stop,
    received: &AtomicU64,
) -> Written {
    let padding = random_bytes(args.value_size() - STAMP_LEN, 0x3a7c);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    let mut last_log = started;
    let mut written = Written {
        puts: 0,
        errors: 0,
        timeouts: 0,
    };
    for seq in 0u64.. {
        let more = match stop {
            Stop::Total(total) => seq < total,
            Stop::Duration(d) => started.elapsed() < d,
        };
        if !more {
            break;
        }
        tick.tick().await;
        let mut value = BytesMut::with_capacity(STAMP_LEN + padding.len());
        value.put_u64_le(nanos_since(base));
        value.extend_from_slice(&padding);
        let request = PutRequest {
            key: keys.key(seq),
            value: value.freeze(),
            ..PutRequest::default()
        };
        match tokio::time::timeout(args.timeout, kv.put(request)).await {
            Ok(Ok(_)) => written.puts += 1,
            Ok(Err(status)) => {
                written.errors += 1;
                if written.errors <= 5 {
                    tracing::warn!(%status, "bench: put failed");
                }
            }
            Err(_) => {
                written.errors += 1;
                written.timeouts += 1;
            }
        }
        if last_log.elapsed() >= PROGRESS_EVERY {
            last_log = Instant::now();
            tracing::info!(
                elapsed_s = started.elapsed().as_secs(),
                puts = written.puts,
                events = received.load(Ordering::Relaxed),
                errors = written.errors,
                "bench: progress"
            );
        }
    }
    written
}

/// What one watcher measured.
struct WatcherOutcome {
    histogram: Histogram,
    errors: u64,
}

/// One watch stream.
struct Watcher {
    client: WatchClient<Channel>,
    base: Instant,
    received: Arc<AtomicU64>,
}

impl Watcher {
    /// Creates the watch, reports readiness once, then records every event until
    /// shutdown. The request side stays open: etcd ends a watch stream whose client
    /// half-closes.
    async fn run(
        mut self,
        create: WatchRequest,
        ready: mpsc::Sender<Result<(), String>>,
        mut shutdown: watch::Receiver<bool>,
    ) -> WatcherOutcome {
        let mut outcome = WatcherOutcome {
            histogram: Histogram::new(),
            errors: 0,
        };
        let requests = futures::stream::iter([create]).chain(futures::stream::pending());
        let mut stream = match self.client.watch(requests).await {
            Ok(response) => response.into_inner(),
            Err(status) => {
                // Ignoring the send error: the run already gave up waiting.
                let _ = ready.send(Err(format!("watch: {status}"))).await;
                outcome.errors += 1;
                return outcome;
            }
        };
        let created = match stream.message().await {
            Ok(Some(response)) if response.created && !response.canceled => Ok(()),
            Ok(Some(response)) => Err(format!(
                "first watch response is not `created`: canceled={} reason={:?}",
                response.canceled, response.cancel_reason
            )),
            Ok(None) => Err("watch stream ended before `created`".to_owned()),
            Err(status) => Err(format!("watch: {status}")),
        };
        let failed = created.is_err();
        // Ignoring the send error: the run already gave up waiting.
        let _ = ready.send(created).await;
        drop(ready);
        if failed {
            outcome.errors += 1;
            return outcome;
        }
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                message = stream.message() => match message {
                    Ok(Some(response)) => {
                        if response.canceled {
                            tracing::warn!(reason = %response.cancel_reason, "bench: watch canceled");
                            outcome.errors += 1;
                            break;
                        }
                        let now = nanos_since(self.base);
                        let mut delivered = 0;
                        for event in &response.events {
                            let stamp = event
                                .kv
                                .as_ref()
                                .and_then(|kv| kv.value.get(..STAMP_LEN))
                                .and_then(|s| <[u8; STAMP_LEN]>::try_from(s).ok())
                                .map(u64::from_le_bytes);
                            match stamp {
                                Some(sent) => {
                                    outcome.histogram.record_ns(now.saturating_sub(sent));
                                    delivered += 1;
                                }
                                None => outcome.errors += 1,
                            }
                        }
                        self.received.fetch_add(delivered, Ordering::Relaxed);
                    }
                    Ok(None) => {
                        tracing::warn!("bench: watch stream ended by the server");
                        outcome.errors += 1;
                        break;
                    }
                    Err(status) => {
                        tracing::warn!(%status, "bench: watch stream failed");
                        outcome.errors += 1;
                        break;
                    }
                }
            }
        }
        outcome
    }
}

fn nanos_since(base: Instant) -> u64 {
    u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX)
}
