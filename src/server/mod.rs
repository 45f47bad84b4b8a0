//! Our own accept loop: TCP (+ rustls when configured) → hyper (HTTP/1.1 and HTTP/2,
//! chosen per connection) → an axum router, which may carry tonic gRPC services.
//!
//! Invariant: a verified client certificate chain is attached to every request of its
//! connection as a [`PeerCertificates`] extension, so handlers can authenticate by x509;
//! servers bind only the listener they are given (tests pass port-0 listeners).

mod authority;

pub use authority::AuthorityFix;

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

/// Signals servers to stop accepting and to finish their connections gracefully.
#[derive(Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

/// The owner's side of [`Shutdown`].
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

impl ShutdownTrigger {
    pub fn new() -> (ShutdownTrigger, Shutdown) {
        let (tx, rx) = watch::channel(false);
        (ShutdownTrigger { tx }, Shutdown { rx })
    }

    pub fn trigger(&self) {
        let _ = self.tx.send(true);
    }
}

impl Shutdown {
    /// Completes once shutdown has been triggered (or the trigger was dropped).
    pub async fn wait(&mut self) {
        let _ = self.rx.wait_for(|stop| *stop).await;
    }

    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
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
                    let io = TokioIo::new(AuthorityFix::new(tcp));
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
                        TokioIo::new(tcp),
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
                            TokioIo::new(AuthorityFix::new(stream)),
                            router,
                            certs,
                            remote,
                            conn_shutdown,
                            goaway,
                        )
                        .await
                    } else {
                        serve_connection(
                            TokioIo::new(stream),
                            router,
                            certs,
                            remote,
                            conn_shutdown,
                            goaway,
                        )
                        .await
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
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let goaway = Arc::new(tokio::sync::Notify::new());
    let signal = goaway.clone();
    let service = tower::ServiceExt::map_request(
        router,
        move |mut req: http::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(certs.clone());
            req.extensions_mut().insert(RemoteAddr(remote));
            req
        },
    );
    let service = tower::ServiceExt::map_response(service, move |resp| {
        if goaway_chance > 0.0 && chance(goaway_chance) {
            signal.notify_one();
        }
        resp
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
            metrics::counter!("apiserver_goaway_total").increment(1);
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
