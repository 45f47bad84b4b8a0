//! Our own accept loop: TCP (+ rustls when configured) → hyper (HTTP/1.1 and HTTP/2,
//! chosen per connection) → an axum router, which may carry tonic gRPC services.
//!
//! Invariant: a verified client certificate chain is attached to every request of its
//! connection as a [`PeerCertificates`] extension, so handlers can authenticate by x509;
//! servers bind only the listener they are given (tests pass port-0 listeners).

mod authority;
mod coalesce;

pub use authority::AuthorityFix;
use coalesce::Coalesce;

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::CertificateDer;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// The client certificate chain a TLS connection presented (leaf first), if any.
#[derive(Clone, Debug, Default)]
pub struct PeerCertificates(pub Arc<Vec<CertificateDer<'static>>>);

/// The remote address of the connection a request came on.
#[derive(Clone, Copy, Debug)]
pub struct RemoteAddr(pub std::net::SocketAddr);

/// Signals servers to drain, then to stop accepting and finish their connections
/// gracefully.
#[derive(Clone)]
pub struct Shutdown {
    rx: watch::Receiver<Phase>,
}

/// Where a server is in its shutdown; only ever moves forward.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Serving,
    /// Readiness fails and clients are moved away: each HTTP/1 response carries
    /// `Connection: close`, each HTTP/2 connection gets GOAWAY after a response.
    Draining,
    Stopped,
}

/// The owner's side of [`Shutdown`].
pub struct ShutdownTrigger {
    tx: watch::Sender<Phase>,
}

impl ShutdownTrigger {
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(Phase::Serving);
        (ShutdownTrigger { tx }, Shutdown { rx })
    }

    /// Starts moving clients away while still serving them.
    pub fn drain(&self) {
        self.tx.send_if_modified(|p| {
            let changed = *p < Phase::Draining;
            *p = (*p).max(Phase::Draining);
            changed
        });
    }

    pub fn trigger(&self) {
        let _ = self.tx.send(Phase::Stopped);
    }
}

impl Shutdown {
    /// Completes once shutdown has been triggered (or the trigger was dropped).
    pub async fn wait(&mut self) {
        let _ = self.rx.wait_for(|p| *p == Phase::Stopped).await;
    }

    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow() == Phase::Stopped
    }

    /// True once the server drains (or has stopped).
    pub fn is_draining(&self) -> bool {
        *self.rx.borrow() >= Phase::Draining
    }
}

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` fires; then stops accepting and lets
/// open connections finish their in-flight requests.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    router: axum::Router,
    shutdown: Shutdown,
) {
    serve_with(listener, tls, router, shutdown, ServeOptions::default()).await
}

/// Per-listener behaviour.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServeOptions {
    /// Repair HTTP/2 requests whose `:authority` carries a scheme (etcdctl 3.4 sends
    /// `http://host:port`) before hyper sees them.
    pub repair_authority: bool,
    /// After each response, close the connection gracefully (GOAWAY for HTTP/2) with
    /// this probability, so clients spread over replicas (`--goaway-chance`).
    pub goaway_chance: f64,
}

/// As [`serve`], with options.
pub async fn serve_with(
    listener: TcpListener,
    tls: Option<Arc<ServerConfig>>,
    router: axum::Router,
    mut shutdown: Shutdown,
    opts: ServeOptions,
) {
    let repair_authority = opts.repair_authority;
    let goaway = opts.goaway_chance;
    let acceptor = tls.map(TlsAcceptor::from);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait() => break,
        };
        let (tcp, remote) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let router = router.clone();
        let conn_shutdown = shutdown.clone();
        connections.spawn(async move {
            match acceptor {
                None if repair_authority => {
                    let io = AuthorityFix::new(tcp);
                    serve_connection(
                        io,
                        router,
                        PeerCertificates::default(),
                        remote,
                        conn_shutdown,
                        goaway,
                    )
                    .await
                }
                None => {
                    serve_connection(
                        tcp,
                        router,
                        PeerCertificates::default(),
                        remote,
                        conn_shutdown,
                        goaway,
                    )
                    .await
                }
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(e)) => {
                                tracing::debug!(%remote, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%remote, "TLS handshake timed out");
                                return;
                            }
                        };
                    let certs = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
                        .unwrap_or_default();
                    let certs = PeerCertificates(Arc::new(certs));
                    if repair_authority {
                        serve_connection(
                            AuthorityFix::new(stream),
                            router,
                            certs,
                            remote,
                            conn_shutdown,
                            goaway,
                        )
                        .await
                    } else {
                        serve_connection(stream, router, certs, remote, conn_shutdown, goaway).await
                    }
                }
            }
        });
        // Reap finished connection tasks so the set does not grow without bound.
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    while connections.join_next().await.is_some() {}
}

async fn serve_connection<I>(
    io: I,
    router: axum::Router,
    certs: PeerCertificates,
    remote: std::net::SocketAddr,
    mut shutdown: Shutdown,
    goaway_chance: f64,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(Coalesce::new(io));
    let goaway = Arc::new(tokio::sync::Notify::new());
    let signal = goaway.clone();
    let draining = shutdown.clone();
    let service = tower::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(certs.clone());
        req.extensions_mut().insert(RemoteAddr(remote));
        let http1 = req.version() < http::Version::HTTP_2;
        let answer = tower::ServiceExt::oneshot(router.clone(), req);
        let signal = signal.clone();
        let draining = draining.clone();
        async move {
            let mut resp = answer.await?;
            // Moving a client away: an HTTP/1 response says `Connection: close`, so
            // the client never reuses a connection we are about to close (closing an
            // idle keep-alive connection races with the client's next request); an
            // HTTP/2 connection gets GOAWAY, which tells the client which streams
            // were not processed.
            let rebalance = goaway_chance > 0.0 && chance(goaway_chance);
            if draining.is_draining() || rebalance {
                if rebalance {
                    metrics::counter!("apiserver_goaway_total").increment(1);
                }
                if http1 {
                    resp.headers_mut().insert(
                        http::header::CONNECTION,
                        http::HeaderValue::from_static("close"),
                    );
                } else {
                    signal.notify_one();
                }
            }
            Ok::<_, std::convert::Infallible>(resp)
        }
    });
    let service = TowerToHyperService::new(service);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http2()
        .max_concurrent_streams(1000)
        .initial_stream_window_size(1 << 20)
        .initial_connection_window_size(8 << 20);
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    tokio::select! {
        res = conn.as_mut() => {
            if let Err(e) = res {
                tracing::trace!(error = %e, "connection ended with an error");
            }
        }
        _ = shutdown.wait() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
        _ = goaway.notified() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// True with probability `p` (a cheap per-thread xorshift; not for secrets).
fn chance(p: f64) -> bool {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64 | 1)
                .unwrap_or(0x9e37_79b9_7f4a_7c15),
        );
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64 <= p
    })
}
