//! The drill's write load through the load balancer: REST creates of ConfigMaps
//! (HTTPS, admin client certificate) and etcd puts (gRPC, one connection per client),
//! each client paced, with a per-request timeout.
//!
//! Like grpc-go (under etcd's Go client and kube-apiserver), the etcd clients retry
//! transparently a request the server provably never processed: hyper refused to
//! hand it to a connection that was closing, or the server's GOAWAY named a last
//! stream below it (`never_processed`). Anything else is not retried.
//!
//! Invariant: a write is recorded as acknowledged only when the server answered it
//! with success (201 with a resourceVersion; a PutResponse with a revision); every
//! other outcome is recorded as a failure with its reason, and each name or key is
//! written by one request only, so "acknowledged but absent" means lost.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::cluster::channel;
use super::session::{Session, Target};
use crate::etcd::proto::etcdserverpb::kv_client::KvClient;
use crate::etcd::proto::etcdserverpb::PutRequest;

/// One acknowledged write.
#[derive(Clone, Debug)]
pub struct Ack {
    /// When the acknowledgement arrived.
    pub at: Instant,
    /// ConfigMap name or etcd key.
    pub key: String,
    /// The resourceVersion / revision the server answered.
    pub revision: i64,
}

/// One failed request.
#[derive(Clone, Debug)]
pub struct Failure {
    pub at: Instant,
    pub reason: String,
}

/// What one load saw.
#[derive(Debug, Default)]
pub struct Record {
    pub acks: Vec<Ack>,
    pub failures: Vec<Failure>,
}

impl Record {
    fn merge(&mut self, other: Record) {
        self.acks.extend(other.acks);
        self.failures.extend(other.failures);
    }
}

/// How a load runs.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Concurrent clients, each with one request in flight.
    pub clients: usize,
    /// Writes per second over all clients; 0 means as fast as they can.
    pub rate: f64,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl LoadOptions {
    fn interval(&self) -> Option<Duration> {
        (self.rate > 0.0).then(|| Duration::from_secs_f64(self.clients as f64 / self.rate))
    }
}

/// A running load; [`Load::stop`] ends it and returns what it saw.
pub struct Load {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<Record>>,
}

impl Load {
    /// ConfigMap creates `drill-<client>-<n>` in namespace `ns`.
    pub fn kube(target: Target, ns: &str, opts: &LoadOptions) -> Load {
        let (stop, rx) = watch::channel(false);
        let tasks = (0..opts.clients)
            .map(|c| {
                tokio::spawn(kube_client(
                    Session::new(target.clone()),
                    format!("/api/v1/namespaces/{ns}/configmaps"),
                    c,
                    opts.clone(),
                    rx.clone(),
                ))
            })
            .collect();
        Load { stop, tasks }
    }

    /// Puts of `<prefix><client>/<n>` to the etcd endpoint `url`.
    pub fn etcd(url: &str, prefix: &str, opts: &LoadOptions) -> Load {
        let (stop, rx) = watch::channel(false);
        let tasks = (0..opts.clients)
            .map(|c| {
                tokio::spawn(etcd_client(
                    url.to_owned(),
                    format!("{prefix}{c:02}/"),
                    opts.clone(),
                    rx.clone(),
                ))
            })
            .collect();
        Load { stop, tasks }
    }

    /// Stops every client (each finishes its request in flight) and merges records.
    pub async fn stop(self) -> (Record, Instant) {
        let _ = self.stop.send(true);
        let mut all = Record::default();
        for t in self.tasks {
            if let Ok(r) = t.await {
                all.merge(r);
            }
        }
        all.acks.sort_by_key(|a| a.at);
        all.failures.sort_by_key(|f| f.at);
        (all, Instant::now())
    }
}

/// Paces one client: waits until its next slot, or returns false once stopped.
async fn next_slot(
    tick: &mut Option<tokio::time::Interval>,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    if *stop.borrow() {
        return false;
    }
    if let Some(t) = tick {
        tokio::select! {
            _ = t.tick() => {}
            _ = stop.changed() => return false,
        }
    }
    !*stop.borrow()
}

fn pacer(opts: &LoadOptions) -> Option<tokio::time::Interval> {
    opts.interval().map(|i| {
        let mut t = tokio::time::interval(i);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    })
}

async fn kube_client(
    mut session: Session,
    path: String,
    client: usize,
    opts: LoadOptions,
    mut stop: watch::Receiver<bool>,
) -> Record {
    let mut record = Record::default();
    let mut tick = pacer(&opts);
    let mut n = 0u64;
    while next_slot(&mut tick, &mut stop).await {
        let name = format!("drill-{client}-{n}");
        n += 1;
        let body = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name},
            "data": {"client": client.to_string(), "n": n.to_string()},
        });
        let outcome = session
            .call(Method::POST, &path, Some(&body), opts.timeout)
            .await;
        let at = Instant::now();
        match outcome {
            Ok(a) if a.status == StatusCode::CREATED => {
                let json = a.json();
                match json["metadata"]["resourceVersion"]
                    .as_str()
                    .and_then(|rv| rv.parse().ok())
                {
                    Some(revision) => record.acks.push(Ack {
                        at,
                        key: name,
                        revision,
                    }),
                    None => record.failures.push(Failure {
                        at,
                        reason: "201 without a resourceVersion".into(),
                    }),
                }
            }
            Ok(a) => {
                let json = a.json();
                let message = json["message"].as_str().unwrap_or("");
                record.failures.push(Failure {
                    at,
                    reason: format!("HTTP {}: {message}", a.status.as_u16()),
                });
            }
            Err(e) => {
                record.failures.push(Failure {
                    at,
                    reason: e.to_string(),
                });
                // A refused connection fails at once: do not spin.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    record
}

async fn etcd_client(
    url: String,
    prefix: String,
    opts: LoadOptions,
    mut stop: watch::Receiver<bool>,
) -> Record {
    let mut record = Record::default();
    let mut tick = pacer(&opts);
    let mut kv: Option<KvClient<tonic::transport::Channel>> = None;
    let mut n = 0u64;
    while next_slot(&mut tick, &mut stop).await {
        let key = format!("{prefix}{n:08}");
        n += 1;
        let client = match &mut kv {
            Some(c) => c,
            None => match channel(&url) {
                Ok(ch) => kv.insert(KvClient::new(ch)),
                Err(e) => {
                    record.failures.push(Failure {
                        at: Instant::now(),
                        reason: e.to_string(),
                    });
                    break;
                }
            },
        };
        let put = PutRequest {
            key: Bytes::from(key.clone()),
            value: Bytes::from(n.to_string()),
            ..Default::default()
        };
        let outcome = tokio::time::timeout(opts.timeout, async {
            loop {
                match client.put(put.clone()).await {
                    Err(status) if never_processed(&status) => {
                        tracing::debug!(key = %key, "put never processed; sending it again");
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    other => return other,
                }
            }
        })
        .await;
        let at = Instant::now();
        match outcome {
            Ok(Ok(resp)) => match resp.into_inner().header {
                Some(h) => record.acks.push(Ack {
                    at,
                    key,
                    revision: h.revision,
                }),
                None => record.failures.push(Failure {
                    at,
                    reason: "PutResponse without a header".into(),
                }),
            },
            Ok(Err(status)) => {
                record.failures.push(Failure {
                    at,
                    reason: failure_reason(&status),
                });
                // A new connection lets the load balancer pick a healthy member.
                kv = None;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(_) => {
                record.failures.push(Failure {
                    at,
                    reason: "timeout".into(),
                });
                kv = None;
            }
        }
    }
    record
}

/// The status with its innermost cause: tonic says only "h2 protocol error: http2
/// error" where h2 knows whether the stream was refused, reset or the connection went
/// away, and with which reason.
fn failure_reason(status: &tonic::Status) -> String {
    let mut innermost = None;
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        innermost = Some(e.to_string());
        source = e.source();
    }
    match innermost {
        Some(cause) if !status.message().contains(&cause) => {
            format!("{:?}: {} ({cause})", status.code(), status.message())
        }
        _ => format!("{:?}: {}", status.code(), status.message()),
    }
}

/// Whether a failed call provably never reached the server's handlers: hyper's
/// `Canceled` error, which its HTTP/2 client raises only for a request it did not
/// hand to the connection ("connection was not ready", or queued when the connection
/// closed); or h2's error for a stream the server's GOAWAY refused (RFC 9113 §6.8:
/// streams above the GOAWAY's last stream id were not processed; h2 gives that error
/// only to those and to streams opened after the GOAWAY arrived).
fn never_processed(status: &tonic::Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_canceled() {
                return true;
            }
        }
        if let Some(h) = e.downcast_ref::<h2::Error>() {
            return h.is_go_away() && h.is_remote();
        }
        source = e.source();
    }
    false
}
