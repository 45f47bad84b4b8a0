//! The watch-latency workload: --watchers watches on the run's objects (a label
//! selector on the namespace's ConfigMaps, from the resourceVersion of a LIST), then
//! one writer creates ConfigMaps at --rate for --duration. Per watcher and event the
//! latency is the event's receipt minus the create's response (0 when the event came
//! first); receipt minus the create's send is reported too.
//!
//! Invariant: every watch has its response head (200) before the first create, so
//! each watcher can see every create; a watcher×create pair never seen within the
//! drain time counts as one missed event.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::sync::{mpsc, watch};

use super::http::Conn;
use super::shared::{encode, Ctx, Failures, Run, JSON, RUN_LABEL};
use super::{ms, Extra, K8sReport, K8sWorkload};
use crate::bench::histogram::Histogram;
use crate::bench::report::Measured;
use crate::bench::BenchError;

/// Watches per HTTP/2 connection, well below the server's 1000 concurrent streams.
const WATCHES_PER_CONN: usize = 250;
/// How long watchers get, after the last create, to deliver every event.
const DRAIN: Duration = Duration::from_secs(10);

/// What a watcher saw: the object index of each event and when it arrived.
type Seen = Vec<(u64, Instant)>;

/// Runs watch-latency and returns its report.
pub async fn run(ctx: &Arc<Ctx>, run: &Run) -> Result<K8sReport, BenchError> {
    let watchers = ctx.args.watchers;
    let conn_count = ctx
        .args
        .conns_for(watchers)
        .max(watchers.div_ceil(WATCHES_PER_CONN));
    let conns = ctx.server.connect_many(conn_count).await?;
    let writer_conn = ctx.server.connect().await?;
    let selector = encode(&format!("{RUN_LABEL}={}", run.tag));
    let revision = list_revision(ctx, &writer_conn, &selector).await?;
    let path = format!(
        "{}?watch=1&resourceVersion={revision}&labelSelector={selector}",
        ctx.collection()
    );
    let needle = Arc::new(format!("\"name\":\"kb-{}-", run.tag).into_bytes());

    tracing::info!(
        watchers,
        conns = conn_count,
        "bench k8s: opening watches (not measured)"
    );
    let (stop_tx, stop_rx) = watch::channel(Stop::Running);
    let (ready_tx, mut ready_rx) = mpsc::channel::<Result<(), String>>(watchers);
    let mut tasks = Vec::with_capacity(watchers);
    for id in 0..watchers {
        let watcher = Watcher {
            ctx: Arc::clone(ctx),
            conn: conns[id % conns.len()].clone(),
            path: path.clone(),
            needle: Arc::clone(&needle),
        };
        tasks.push(tokio::spawn(watcher.run(ready_tx.clone(), stop_rx.clone())));
    }
    drop(ready_tx);
    let open_deadline = Instant::now() + ctx.args.timeout;
    for _ in 0..watchers {
        match tokio::time::timeout_at(open_deadline.into(), ready_rx.recv()).await {
            Ok(Some(Ok(()))) => {}
            Ok(Some(Err(e))) => return Err(BenchError::WatchSetup(e)),
            Ok(None) => return Err(BenchError::WatchSetup("a watcher ended early".into())),
            Err(_) => {
                return Err(BenchError::WatchSetup(
                    "opening the watches timed out".into(),
                ))
            }
        }
    }

    tracing::info!(watchers, rate = ctx.args.rate, "bench k8s: measuring");
    let failures = Failures::default();
    let started = Instant::now();
    let writes = write(ctx, run, &writer_conn, &failures).await;
    let duration_s = started.elapsed().as_secs_f64();
    let creates = writes.iter().filter(|w| w.is_some()).count() as u64;
    // Ignoring the send error: it means every watcher already stopped.
    let _ = stop_tx.send(Stop::After(creates));
    let drain_deadline = Instant::now() + DRAIN;
    let mut seen_all: Vec<Seen> = Vec::with_capacity(watchers);
    let mut abort = false;
    for task in tasks {
        if !abort {
            let waited = tokio::time::timeout_at(drain_deadline.into(), async {
                while !task.is_finished() {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await;
            if waited.is_err() {
                abort = true;
                let _ = stop_tx.send(Stop::Now);
            }
        }
        match task.await {
            Ok(seen) => seen_all.push(seen),
            Err(e) => tracing::error!(error = %e, "bench k8s: a watcher task failed"),
        }
    }

    let mut from_response = Histogram::new();
    let mut from_send = Histogram::new();
    let mut before_response = 0u64;
    for seen in &seen_all {
        for &(index, at) in seen {
            let Some(Some((sent, answered))) = writes.get(index as usize) else {
                continue;
            };
            if at < *answered {
                before_response += 1;
            }
            from_response.record(at.saturating_duration_since(*answered));
            from_send.record(at.saturating_duration_since(*sent));
        }
    }
    let expected = creates.saturating_mul(watchers as u64);
    let missed = expected.saturating_sub(from_response.count());
    let extra = Extra {
        request: Some("GET ?watch=1&resourceVersion=<list rv>; writer POSTs"),
        watchers: Some(watchers),
        rate: Some(ctx.args.rate),
        creates: Some(creates),
        events_missed: Some(missed),
        events_before_response: Some(before_response),
        from_send_p50_ms: Some(ms(from_send.quantile_ns(0.5))),
        from_send_p99_ms: Some(ms(from_send.quantile_ns(0.99))),
        ..Extra::default()
    };
    Ok(K8sReport::new(
        K8sWorkload::WatchLatency,
        ctx,
        watchers,
        conn_count,
        &Measured {
            histogram: from_response,
            errors: failures.errors() + missed,
            duration_s,
        },
        extra,
    ))
}

/// What the watchers are told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// The writer is still creating.
    Running,
    /// Stop once this many events were seen.
    After(u64),
    /// Stop now.
    Now,
}

/// The resourceVersion of an (empty) LIST of the run's objects.
async fn list_revision(ctx: &Ctx, conn: &Conn, selector: &str) -> Result<String, BenchError> {
    let path = format!("{}?labelSelector={selector}&limit=1", ctx.collection());
    let answer = ctx
        .server
        .call(conn, Method::GET, &path, None)
        .await
        .map_err(|e| BenchError::WatchSetup(format!("LIST for the start revision: {e}")))?;
    if !answer.ok() {
        return Err(BenchError::WatchSetup(format!(
            "LIST for the start revision: {}",
            answer.describe()
        )));
    }
    answer.json()["metadata"]["resourceVersion"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| BenchError::WatchSetup("the LIST has no resourceVersion".into()))
}

/// Creates objects `0, 1, …` at --rate for --duration; entry `i` is the send and
/// response instants of create `i`, None when it failed.
async fn write(
    ctx: &Ctx,
    run: &Run,
    conn: &Conn,
    failures: &Failures,
) -> Vec<Option<(Instant, Instant)>> {
    let deadline = Instant::now() + ctx.args.duration;
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / ctx.args.rate));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut writes = Vec::new();
    let mut i = 0u64;
    loop {
        ticks.tick().await;
        if Instant::now() >= deadline {
            break;
        }
        let body: Bytes = ctx.body(run, &run.name(i), None, i);
        let sent = Instant::now();
        let outcome = ctx
            .server
            .call(conn, Method::POST, &ctx.collection(), Some((body, JSON)))
            .await;
        let answered = Instant::now();
        match &outcome {
            Ok(a) if a.ok() => writes.push(Some((sent, answered))),
            _ => {
                failures.record("watch-latency create", &outcome);
                writes.push(None);
            }
        }
        i += 1;
    }
    writes
}

/// One watch stream.
struct Watcher {
    ctx: Arc<Ctx>,
    conn: Conn,
    path: String,
    /// `"name":"kb-<tag>-`: what precedes the object index in an event line.
    needle: Arc<Vec<u8>>,
}

impl Watcher {
    async fn run(
        self,
        ready: mpsc::Sender<Result<(), String>>,
        mut stop: watch::Receiver<Stop>,
    ) -> Seen {
        let mut seen = Seen::new();
        let body = match self.ctx.server.open_stream(&self.conn, &self.path).await {
            Ok(response) if response.status().is_success() => response.into_body(),
            Ok(response) => {
                let status = response.status();
                let text = match response.into_body().collect().await {
                    Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
                    Err(e) => e.to_string(),
                };
                let _ = ready.send(Err(format!("watch: {status}: {text}"))).await;
                return seen;
            }
            Err(e) => {
                let _ = ready.send(Err(format!("watch: {e}"))).await;
                return seen;
            }
        };
        if ready.send(Ok(())).await.is_err() {
            return seen;
        }
        drop(ready);
        self.read(body, &mut seen, &mut stop).await;
        seen
    }

    /// Reads event lines until told to stop, or the stream ends.
    async fn read(&self, mut body: Incoming, seen: &mut Seen, stop: &mut watch::Receiver<Stop>) {
        let mut buffer: Vec<u8> = Vec::new();
        loop {
            let state = *stop.borrow_and_update();
            match state {
                Stop::Now => return,
                Stop::After(n) if seen.len() as u64 >= n => return,
                _ => {}
            }
            let frame = tokio::select! {
                frame = body.frame() => frame,
                changed = stop.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    continue;
                }
            };
            let data = match frame {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => data,
                    Err(_) => continue,
                },
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "bench k8s: watch stream failed");
                    return;
                }
                None => {
                    tracing::warn!("bench k8s: watch stream ended");
                    return;
                }
            };
            let at = Instant::now();
            buffer.extend_from_slice(&data);
            while let Some(end) = buffer.iter().position(|&b| b == b'\n') {
                if let Some(index) = index_after(&buffer[..end], &self.needle) {
                    seen.push((index, at));
                } else if buffer.starts_with(b"{\"type\":\"ERROR\"") {
                    tracing::warn!(event = %String::from_utf8_lossy(&buffer[..end]), "bench k8s: watch error event");
                }
                buffer.drain(..=end);
            }
        }
    }
}

/// The object index in an event line: the decimal digits right after `needle`.
fn index_after(line: &[u8], needle: &[u8]) -> Option<u64> {
    let at = line.windows(needle.len()).position(|w| w == needle)? + needle.len();
    let digits = &line[at..];
    let len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&digits[..len]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_lines_yield_the_object_index() {
        let needle = br#""name":"kb-1a2-"#;
        let line =
            br#"{"type":"ADDED","object":{"metadata":{"name":"kb-1a2-42","namespace":"n"}}}"#;
        assert_eq!(index_after(line, needle), Some(42));
        assert_eq!(
            index_after(br#"{"metadata":{"name":"kb-1a2-x"}}"#, needle),
            None
        );
        assert_eq!(
            index_after(br#"{"metadata":{"name":"other-7"}}"#, needle),
            None
        );
    }
}
