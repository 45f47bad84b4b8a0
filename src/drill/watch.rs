//! A resuming watch on the drill's ConfigMaps through the load balancer, as
//! client-go's reflector runs one: after any disconnect (or no data for a while, the
//! member may be paused) it watches again from the last resourceVersion it saw; a
//! 410 Gone makes it relist and continue from the list's resourceVersion.
//!
//! Invariant: resourceVersions seen on the stream only grow; an event at or below
//! the last one is counted as out of order, and every object name is recorded as seen
//! either from an ADDED event or from a relist, so the caller can tell exactly which
//! acknowledged creates the watcher never learned about.

use std::collections::HashSet;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::session::{Session, Target};

/// What the watcher saw.
#[derive(Debug, Default)]
pub struct WatchRecord {
    /// Names from ADDED events.
    pub seen: HashSet<String>,
    /// Names learned from relists after a 410.
    pub relisted: HashSet<String>,
    /// Events received (ADDED, MODIFIED, DELETED).
    pub events: u64,
    /// Events at or below the resourceVersion already seen.
    pub out_of_order: u64,
    /// Times the watch was opened again.
    pub reconnects: u64,
    /// Times it had to relist (410 Gone).
    pub relists: u64,
}

/// A running watcher.
pub struct Watcher {
    stop: watch::Sender<bool>,
    task: JoinHandle<WatchRecord>,
    last: Arc<AtomicI64>,
}

/// How long a watch may stay silent while writes run before it is reopened.
const IDLE: Duration = Duration::from_secs(2);

impl Watcher {
    /// Watches ConfigMaps in `ns` from `resource_version`.
    pub fn start(target: Target, ns: &str, resource_version: i64) -> Watcher {
        let (stop, rx) = watch::channel(false);
        let last = Arc::new(AtomicI64::new(resource_version));
        let task = tokio::spawn(run(target, ns.to_owned(), last.clone(), rx));
        Watcher { stop, task, last }
    }

    /// The last resourceVersion seen (event, bookmark or relist).
    pub fn last_revision(&self) -> i64 {
        self.last.load(Ordering::Relaxed)
    }

    pub async fn stop(self) -> WatchRecord {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }
}

async fn run(
    target: Target,
    ns: String,
    last: Arc<AtomicI64>,
    mut stop: watch::Receiver<bool>,
) -> WatchRecord {
    let mut record = WatchRecord::default();
    let mut first = true;
    while !*stop.borrow() {
        if !first {
            record.reconnects += 1;
        }
        first = false;
        let rv = last.load(Ordering::Relaxed);
        let path = format!(
            "/api/v1/namespaces/{ns}/configmaps?watch=1&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=600"
        );
        let mut session = Session::new(target.clone());
        let resp = match session.open_stream(&path, Duration::from_secs(1)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "watch: open failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if resp.status() == StatusCode::GONE {
            relist(&target, &ns, &last, &mut record).await;
            continue;
        }
        if resp.status() != StatusCode::OK {
            tracing::debug!(status = %resp.status(), "watch: refused");
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let mut body = resp.into_body();
        let mut buf: Vec<u8> = Vec::new();
        loop {
            let frame = tokio::select! {
                _ = stop.changed() => return record,
                f = tokio::time::timeout(IDLE, body.frame()) => f,
            };
            let Ok(Some(Ok(frame))) = frame else {
                break;
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            buf.extend_from_slice(&data);
            let mut gone = false;
            while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=pos).collect();
                match serde_json::from_slice::<Value>(&line) {
                    Ok(ev) => gone |= handle(&ev, &last, &mut record),
                    Err(e) => tracing::warn!(error = %e, "watch: undecodable line"),
                }
            }
            if gone {
                relist(&target, &ns, &last, &mut record).await;
                break;
            }
        }
    }
    record
}

/// Applies one watch event; true when the server said 410 Gone.
fn handle(ev: &Value, last: &AtomicI64, record: &mut WatchRecord) -> bool {
    let object = &ev["object"];
    let rv: i64 = object["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    match ev["type"].as_str().unwrap_or("") {
        kind @ ("ADDED" | "MODIFIED" | "DELETED") => {
            record.events += 1;
            if rv <= last.load(Ordering::Relaxed) {
                record.out_of_order += 1;
            } else {
                last.store(rv, Ordering::Relaxed);
            }
            if kind == "ADDED" {
                if let Some(name) = object["metadata"]["name"].as_str() {
                    record.seen.insert(name.to_owned());
                }
            }
            false
        }
        "BOOKMARK" => {
            if rv > last.load(Ordering::Relaxed) {
                last.store(rv, Ordering::Relaxed);
            }
            false
        }
        "ERROR" => object["code"].as_i64() == Some(410),
        _ => false,
    }
}

/// Lists the namespace (consistent read) and continues from the list's revision.
async fn relist(target: &Target, ns: &str, last: &AtomicI64, record: &mut WatchRecord) {
    record.relists += 1;
    let mut session = Session::new(target.clone());
    let path = format!("/api/v1/namespaces/{ns}/configmaps");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        match session
            .call(Method::GET, &path, None, Duration::from_secs(5))
            .await
        {
            Ok(a) if a.status == StatusCode::OK => {
                let list = a.json();
                for item in list["items"].as_array().into_iter().flatten() {
                    if let Some(name) = item["metadata"]["name"].as_str() {
                        record.relisted.insert(name.to_owned());
                    }
                }
                if let Some(rv) = list["metadata"]["resourceVersion"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                {
                    last.store(rv, Ordering::Relaxed);
                }
                return;
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}
