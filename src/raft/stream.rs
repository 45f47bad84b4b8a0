//! Raft's own messages (AppendEntries, Vote, InstallSnapshot) and the client writes a
//! follower forwards to the leader, over long-lived streams between members, as
//! etcd's rafthttp streams them: an HTTP/1.1 upgrade on the peer port's
//! `/raft/stream`, then length-prefixed bincode frames, one request and its answer at a
//! time.
//!
//! A gRPC call costs a hop through tonic's buffer task and hyper's connection task on
//! each side, HTTP/2 framing and a spawned task per stream; openraft sends one message
//! at a time per follower, and a follower has few forwarded batches in flight, so a
//! plain request/response stream owned by the sending task carries the same traffic
//! with none of that.
//!
//! Frames: a request is `len: u32 BE | kind: u8 | bincode body` (`len` counts kind and
//! body), an answer `len: u32 BE | bincode body`, where the body is openraft's
//! `Result<Response, RaftError>`, or for a forward `Result<ProposalResult,
//! ForwardError>`. Neither may exceed [`MAX_PEER_MESSAGE`].
//!
//! Invariants: a stream has at most one request in flight, and any error or timeout
//! drops it, so a late answer is never taken for the next request's; a request that
//! must not take effect twice (a forward) is never sent again once written, and a
//! stream that breaks after it was written reports `Failed` (the outcome is unknown),
//! not `Unreachable` (certainly not delivered); a member whose peer port is shutting
//! down, or which fault injection isolates, closes its streams and refuses new ones.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};

use super::fault::FaultSwitch;
use super::network::PeerError;
use super::peer::{decode, encode_into, PeerHandler, MAX_PEER_MESSAGE};
use super::Raft;
use crate::server::Shutdown;
use crate::tls::{Connector, MaybeTlsStream};

/// The path a sender upgrades on.
pub const PATH: &str = "/raft/stream";
/// The protocol named in `Upgrade:`; a new frame layout gets a new name.
const PROTOCOL: &str = "kuberaft-raft/1";
/// A header of the upgrade's answer: this end's streams take `Kind::Forward`. Earlier
/// builds speak the same protocol without it, and take forwards over gRPC only.
const FORWARDS_HEADER: &str = "kuberaft-forwards";
/// Read buffer of each end of a stream: a typical AppendEntries in one read.
const READ_BUFFER: usize = 64 << 10;

/// What a request frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    AppendEntries = 1,
    Vote = 2,
    InstallSnapshot = 3,
    /// A batch of client writes a follower forwards to the leader.
    Forward = 4,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        match b {
            1 => Some(Kind::AppendEntries),
            2 => Some(Kind::Vote),
            3 => Some(Kind::InstallSnapshot),
            4 => Some(Kind::Forward),
            _ => None,
        }
    }

    /// A client's write, which must not take effect twice: once written it is never
    /// sent again, and a member answers it even while its peer port shuts down.
    /// openraft tolerates its own messages twice.
    fn is_client_write(self) -> bool {
        self == Kind::Forward
    }
}

/// Encodes one frame: the length, then `prefix` (a request's kind), then `value`.
fn frame<T: Serialize>(prefix: &[u8], value: &T) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; 4];
    buf.extend_from_slice(prefix);
    encode_into(value, &mut buf).map_err(|s| s.message().to_owned())?;
    let len = u32::try_from(buf.len() - 4)
        .ok()
        .filter(|&n| n as usize <= MAX_PEER_MESSAGE)
        .ok_or_else(|| format!("peer message of {} bytes is too large", buf.len()))?;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf)
}

/// Reads one frame's `len` bytes; `None` on a clean end of stream before it.
async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_PEER_MESSAGE {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("peer frame of {len} bytes exceeds the limit of {MAX_PEER_MESSAGE}"),
        ));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    Ok(Some(body))
}

/// The sending side, used by one openraft connection at a time (a replication
/// stream for its whole life; a heartbeat round, a vote or a forward borrows an idle
/// one, see [`IdleStreams`]); it connects lazily, and again after any failure.
pub struct RaftStream {
    url: String,
    connector: Connector,
    fault: FaultSwitch,
    /// Reads are buffered; each frame is written whole, in one call.
    io: Option<BufReader<MaybeTlsStream>>,
    /// Whether the peer said, when `io` connected, that it takes forwards.
    forwards: bool,
}

impl RaftStream {
    pub fn new(url: String, connector: Connector, fault: FaultSwitch) -> Self {
        RaftStream {
            url,
            connector,
            fault,
            io: None,
            forwards: false,
        }
    }

    /// Whether the peer takes `Kind::Forward` on its streams; connects first if need
    /// be (nothing is sent but the upgrade).
    pub async fn takes_forwards(&mut self) -> Result<bool, PeerError> {
        self.check_isolation()?;
        if self.io.is_none() {
            let io = self.connect().await?;
            self.io = Some(io);
        }
        Ok(self.forwards)
    }

    /// Fault injection's isolation: the connection goes, nothing is sent.
    fn check_isolation(&mut self) -> Result<(), PeerError> {
        if self.fault.isolated() {
            self.io = None;
            return Err(self.unreachable("peer traffic is blocked by fault injection".into()));
        }
        Ok(())
    }

    /// True while the stream holds a live connection (it has answered, and nothing
    /// failed since).
    pub fn is_connected(&self) -> bool {
        self.io.is_some()
    }

    /// Sends `rpc` and decodes the answer, all within `timeout`. A Raft message whose
    /// reused stream broke is sent again on a new one; a client write once written is
    /// not, and a stream that breaks before answering it is `Failed` (it may have taken
    /// effect).
    pub async fn request<Req: Serialize, Resp: DeserializeOwned>(
        &mut self,
        kind: Kind,
        rpc: &Req,
        timeout: Duration,
    ) -> Result<Resp, PeerError> {
        self.check_isolation()?;
        let request = frame(&[kind as u8], rpc).map_err(|m| self.failed(m))?;
        let started = Instant::now();
        // The exchange holds the connection while it runs: an error or the timeout
        // cancelling it drops the connection with it.
        let answer = match tokio::time::timeout(timeout, self.exchange(&request, kind)).await {
            Ok(answer) => answer?,
            Err(_) => {
                return Err(PeerError::Timeout {
                    url: self.url.clone(),
                    timeout,
                })
            }
        };
        metrics::histogram!("etcd_network_peer_round_trip_time_seconds", "To" => self.url.clone())
            .record(started.elapsed().as_secs_f64());
        decode(&answer).map_err(|status| {
            self.io = None;
            self.failed(status.message().to_owned())
        })
    }

    /// Writes the request and reads its answer. A stream that was idle may have been
    /// closed by a restarted peer: a failure on a reused stream is retried once on a
    /// new one, unless the request was written and must not be sent twice.
    async fn exchange(&mut self, request: &[u8], kind: Kind) -> Result<Vec<u8>, PeerError> {
        if let Some(io) = self.io.take() {
            match self.exchange_on(io, request).await {
                Err(broke) if broke.may_resend(kind) => {
                    tracing::debug!(peer = %self.url, error = %broke.message(), "raft stream broke; reconnecting")
                }
                answered => return answered.map_err(|b| self.broke(b, kind)),
            }
        }
        let io = self.connect().await?;
        self.exchange_on(io, request)
            .await
            .map_err(|b| self.broke(b, kind))
    }

    /// The error for an exchange of `kind` that broke: `Unreachable` when the request
    /// was certainly not acted on or may be sent again, `Failed` (outcome unknown) for
    /// a client write the peer may have taken.
    fn broke(&self, broke: Broke, kind: Kind) -> PeerError {
        let resend = broke.may_resend(kind);
        let message = broke.message().to_owned();
        if resend {
            self.unreachable(message)
        } else {
            self.failed(message)
        }
    }

    /// One request on `io`, which is kept for the next one only if it answered.
    async fn exchange_on(
        &mut self,
        mut io: BufReader<MaybeTlsStream>,
        request: &[u8],
    ) -> Result<Vec<u8>, Broke> {
        let written = async {
            io.get_mut().write_all(request).await?;
            io.get_mut().flush().await
        }
        .await;
        if let Err(e) = written {
            // The peer cannot act on part of a frame.
            return Err(Broke::Unsent(e.to_string()));
        }
        match read_frame(&mut io).await {
            Ok(Some(answer)) => {
                self.io = Some(io);
                Ok(answer)
            }
            Ok(None) => Err(Broke::Unanswered(
                "peer closed the raft stream before answering".into(),
            )),
            Err(e) => Err(Broke::Unanswered(e.to_string())),
        }
    }

    /// Connects (TLS for `https://`) and upgrades to the frame protocol, noting whether
    /// the peer takes forwards.
    async fn connect(&mut self) -> Result<BufReader<MaybeTlsStream>, PeerError> {
        let uri: http::Uri = self
            .url
            .parse()
            .map_err(|e| self.failed(format!("invalid peer URL: {e}")))?;
        let host = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .unwrap_or_default();
        let io = tower::ServiceExt::oneshot(self.connector.clone(), uri)
            .await
            .map_err(|e| self.unreachable(e.to_string()))?
            .into_inner();
        let mut io = BufReader::with_capacity(READ_BUFFER, io);
        let hello = format!(
            "GET {PATH} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: {PROTOCOL}\r\n\r\n"
        );
        let answer = async {
            io.get_mut().write_all(hello.as_bytes()).await?;
            io.get_mut().flush().await?;
            read_head(&mut io).await
        }
        .await
        .map_err(|e| self.unreachable(e.to_string()))?;
        if !answer.starts_with("HTTP/1.1 101") {
            let status = answer.lines().next().unwrap_or_default().to_owned();
            // The peer is up but takes no raft traffic (isolated, stopping, or not
            // speaking this protocol): openraft backs off, as from a dead peer.
            return Err(self.unreachable(format!("raft stream refused: {status}")));
        }
        self.forwards = answer.lines().any(|line| {
            line.split_once(':').is_some_and(|(name, value)| {
                name.trim().eq_ignore_ascii_case(FORWARDS_HEADER) && value.trim() == "1"
            })
        });
        metrics::counter!("kuberaft_raft_stream_connects_total", "To" => self.url.clone())
            .increment(1);
        Ok(io)
    }

    fn unreachable(&self, message: String) -> PeerError {
        PeerError::Unreachable {
            url: self.url.clone(),
            message,
        }
    }

    fn failed(&self, message: String) -> PeerError {
        PeerError::Failed {
            url: self.url.clone(),
            message,
        }
    }
}

/// How an exchange on one connection failed.
enum Broke {
    /// Before the whole request was written: the peer did not act on it.
    Unsent(String),
    /// After: the peer may have acted on it.
    Unanswered(String),
}

impl Broke {
    /// Whether the request may go out again on a new connection: it was not acted on,
    /// or it is a Raft message (openraft tolerates duplicates).
    fn may_resend(&self, kind: Kind) -> bool {
        matches!(self, Broke::Unsent(_)) || !kind.is_client_write()
    }

    fn message(&self) -> &str {
        match self {
            Broke::Unsent(m) | Broke::Unanswered(m) => m,
        }
    }
}

/// Idle connected streams by peer URL. openraft opens a connection per read-index
/// heartbeat round and per election's vote, and a follower's forwards come and go;
/// taking an idle stream spares each of them a TCP (and TLS) handshake, and the peer
/// ports a TIME_WAIT socket per round.
#[derive(Clone, Default)]
pub struct IdleStreams {
    streams: Arc<Mutex<HashMap<String, Vec<RaftStream>>>>,
}

/// Most idle streams kept per peer: rounds and forwards rarely overlap more than this.
const MAX_IDLE_PER_PEER: usize = 4;

impl IdleStreams {
    /// An idle stream to `url`, if one is kept.
    pub fn take(&self, url: &str) -> Option<RaftStream> {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        streams.get_mut(url).and_then(Vec::pop)
    }

    /// Keeps `stream` for reuse if it is connected and there is room.
    pub fn put(&self, stream: RaftStream) {
        if !stream.is_connected() {
            return;
        }
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        let idle = streams.entry(stream.url.clone()).or_default();
        if idle.len() < MAX_IDLE_PER_PEER {
            idle.push(stream);
        }
    }
}

/// Reads an HTTP response head (through the empty line), at most 8 KiB.
async fn read_head<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<String> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        let n = r.read_until(b'\n', &mut head).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "peer closed the connection during the raft stream upgrade",
            ));
        }
        if head.len() > 8 << 10 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "oversized answer to the raft stream upgrade",
            ));
        }
        if matches!(&head[before..], b"\r\n" | b"\n") {
            return Ok(String::from_utf8_lossy(&head).into_owned());
        }
    }
}

/// The receiving side, mounted on the peer port's router.
pub struct StreamServer {
    raft: Raft,
    /// Takes forwarded writes.
    handler: Arc<dyn PeerHandler>,
    fault: FaultSwitch,
    shutdown: Shutdown,
}

impl StreamServer {
    pub fn new(
        raft: Raft,
        handler: Arc<dyn PeerHandler>,
        fault: FaultSwitch,
        shutdown: Shutdown,
    ) -> Self {
        StreamServer {
            raft,
            handler,
            fault,
            shutdown,
        }
    }

    /// The route that upgrades a request to a raft stream.
    pub fn router(self) -> axum::Router {
        axum::Router::new()
            .route(PATH, axum::routing::get(upgrade))
            .with_state(Arc::new(self))
    }

    /// Answers frames until the sender closes, a frame is malformed, or this member
    /// stops or is isolated.
    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(&self, io: S) {
        let mut io = BufReader::with_capacity(READ_BUFFER, io);
        let mut shutdown = self.shutdown.clone();
        loop {
            let request = tokio::select! {
                r = read_frame(&mut io) => r,
                _ = shutdown.wait() => return,
            };
            let body = match request {
                Ok(Some(body)) => body,
                Ok(None) => return,
                Err(e) => {
                    tracing::debug!(error = %e, "raft stream read failed");
                    return;
                }
            };
            if self.fault.isolated() {
                return;
            }
            // A forward is a client's write: it runs to its answer (bounded by the
            // request timeout), as the peer port outlives client requests. Raft's
            // messages stop with the port.
            let client_write = body
                .first()
                .and_then(|&b| Kind::from_byte(b))
                .is_some_and(Kind::is_client_write);
            let answer = if client_write {
                self.answer(&body).await
            } else {
                tokio::select! {
                    a = self.answer(&body) => a,
                    _ = shutdown.wait() => return,
                }
            };
            let answer = match answer {
                Ok(answer) => answer,
                Err(e) => {
                    tracing::warn!(error = %e, "closing a raft stream");
                    return;
                }
            };
            if let Err(e) = async {
                io.get_mut().write_all(&answer).await?;
                io.get_mut().flush().await
            }
            .await
            {
                tracing::debug!(error = %e, "raft stream write failed");
                return;
            }
        }
    }

    /// Hands one request to openraft (or a forward to the store) and frames its answer.
    async fn answer(&self, body: &[u8]) -> Result<Vec<u8>, String> {
        let (&kind, rpc) = body.split_first().ok_or("empty raft frame")?;
        let raft = &self.raft;
        match Kind::from_byte(kind) {
            Some(Kind::AppendEntries) => frame(&[], &raft.append_entries(parse(rpc)?).await),
            Some(Kind::Vote) => frame(&[], &raft.vote(parse(rpc)?).await),
            Some(Kind::InstallSnapshot) => frame(&[], &raft.install_snapshot(parse(rpc)?).await),
            Some(Kind::Forward) => frame(&[], &self.handler.forward(parse(rpc)?).await),
            None => Err(format!("unknown raft frame kind {kind}")),
        }
    }
}

/// Decodes a request body; a malformed one closes the stream.
fn parse<T: DeserializeOwned>(rpc: &[u8]) -> Result<T, String> {
    decode(rpc).map_err(|s| s.message().to_owned())
}

/// `GET /raft/stream` with `Upgrade: kuberaft-raft/1`: 101, then frames.
async fn upgrade(State(server): State<Arc<StreamServer>>, mut req: Request) -> Response {
    let wanted = req
        .headers()
        .get(http::header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(PROTOCOL.as_bytes()));
    if !wanted {
        return (
            http::StatusCode::BAD_REQUEST,
            format!("expected Upgrade: {PROTOCOL}"),
        )
            .into_response();
    }
    if server.fault.isolated() || server.shutdown.is_triggered() {
        return (
            http::StatusCode::SERVICE_UNAVAILABLE,
            "peer traffic is not served",
        )
            .into_response();
    }
    let pending = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match pending.await {
            Ok(upgraded) => server.serve(TokioIo::new(upgraded)).await,
            Err(e) => tracing::debug!(error = %e, "raft stream upgrade failed"),
        }
    });
    (
        http::StatusCode::SWITCHING_PROTOCOLS,
        [
            (http::header::CONNECTION.as_str(), "Upgrade"),
            (http::header::UPGRADE.as_str(), PROTOCOL),
            (FORWARDS_HEADER, "1"),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::BufReader;
    use tokio::net::TcpListener;

    use super::*;

    const SHORT: Duration = Duration::from_secs(5);

    /// A peer that upgrades, then answers each request frame with its body's length,
    /// closing every connection after `per_conn` answers (never, if 0, it answers
    /// nothing and holds the connection). Counts connections.
    async fn fake_peer(per_conn: usize, status: &'static str) -> (String, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let conns = Arc::new(AtomicUsize::new(0));
        let counter = conns.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut io = BufReader::new(tcp);
                    let head = read_head(&mut io).await.expect("request head");
                    assert!(head.starts_with("GET /raft/stream HTTP/1.1\r\n"), "{head}");
                    assert!(head.contains("Upgrade: kuberaft-raft/1\r\n"), "{head}");
                    let answer = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
                    io.get_mut()
                        .write_all(answer.as_bytes())
                        .await
                        .expect("write");
                    if per_conn == 0 {
                        std::future::pending::<()>().await;
                    }
                    for _ in 0..per_conn {
                        let Ok(Some(body)) = read_frame(&mut io).await else {
                            return;
                        };
                        let answer: Result<u64, String> = Ok(body.len() as u64);
                        let bytes = frame(&[], &answer).expect("frame");
                        io.get_mut().write_all(&bytes).await.expect("write");
                    }
                });
            }
        });
        (url, conns)
    }

    fn stream(url: &str) -> RaftStream {
        RaftStream::new(
            url.to_owned(),
            Connector::http1(None),
            FaultSwitch::default(),
        )
    }

    #[tokio::test]
    async fn requests_reuse_one_stream() {
        let (url, conns) = fake_peer(100, "101 Switching Protocols").await;
        let mut s = stream(&url);
        for n in 0..3u64 {
            let got: Result<u64, String> = s.request(Kind::Vote, &n, SHORT).await.expect("answer");
            // kind byte + one-byte bincode varint
            assert_eq!(got, Ok(2));
        }
        assert_eq!(conns.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn idle_streams_keep_only_live_connections() {
        let (url, conns) = fake_peer(100, "101 Switching Protocols").await;
        let idle = IdleStreams::default();
        idle.put(stream(&url));
        assert!(
            idle.take(&url).is_none(),
            "a stream never connected is not kept"
        );

        for _ in 0..3 {
            let mut s = idle.take(&url).unwrap_or_else(|| stream(&url));
            let got: Result<u64, String> =
                s.request(Kind::Vote, &1u64, SHORT).await.expect("answer");
            assert_eq!(got, Ok(2));
            idle.put(s);
        }
        assert_eq!(
            conns.load(Ordering::SeqCst),
            1,
            "one connection served all three"
        );
        for _ in 0..2 * MAX_IDLE_PER_PEER {
            let mut s = stream(&url);
            let _: Result<u64, String> = s.request(Kind::Vote, &1u64, SHORT).await.expect("answer");
            idle.put(s);
        }
        let kept = std::iter::from_fn(|| idle.take(&url)).count();
        assert_eq!(kept, MAX_IDLE_PER_PEER);
    }

    #[tokio::test]
    async fn a_stream_the_peer_closed_is_replaced_within_the_request() {
        let (url, conns) = fake_peer(1, "101 Switching Protocols").await;
        let mut s = stream(&url);
        for _ in 0..3 {
            let got: Result<u64, String> = s
                .request(Kind::AppendEntries, &"x".repeat(300), SHORT)
                .await
                .expect("answer");
            // kind byte + three-byte bincode length + the string
            assert_eq!(got, Ok(1 + 3 + 300));
        }
        assert_eq!(conns.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_forward_is_never_written_twice() {
        // The peer answers one request per connection, then closes it.
        let (url, conns) = fake_peer(1, "101 Switching Protocols").await;
        let mut s = stream(&url);
        let got: Result<u64, String> = s
            .request(Kind::Forward, &1u64, SHORT)
            .await
            .expect("answer");
        assert_eq!(got, Ok(2));
        // Written on the stream the peer closed: it may have been taken, so it is not
        // sent again, and the outcome is unknown.
        let err = s
            .request::<_, Result<u64, String>>(Kind::Forward, &1u64, SHORT)
            .await
            .expect_err("the peer closed the stream");
        assert!(matches!(err, PeerError::Failed { .. }), "{err}");
        assert_eq!(conns.load(Ordering::SeqCst), 1, "nothing was resent");
        // The broken stream was dropped: the next forward connects afresh.
        let got: Result<u64, String> = s
            .request(Kind::Forward, &1u64, SHORT)
            .await
            .expect("answer");
        assert_eq!(got, Ok(2));
        assert_eq!(conns.load(Ordering::SeqCst), 2);
        // Never connected: certainly not delivered.
        let mut dead = stream("http://127.0.0.1:1");
        let err = dead
            .request::<_, Result<u64, String>>(Kind::Forward, &1u64, SHORT)
            .await
            .expect_err("nothing listens there");
        assert!(matches!(err, PeerError::Unreachable { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_peer_takes_forwards_only_if_its_upgrade_says_so() {
        let (url, _) = fake_peer(1, "101 Switching Protocols\r\nKuberaft-Forwards: 1").await;
        assert!(stream(&url).takes_forwards().await.expect("connects"));
        // An earlier build: the same protocol, without the header.
        let (url, conns) = fake_peer(1, "101 Switching Protocols").await;
        let mut s = stream(&url);
        assert!(!s.takes_forwards().await.expect("connects"));
        // The connection made to ask is the one the next request uses.
        let got: Result<u64, String> = s.request(Kind::Vote, &1u64, SHORT).await.expect("answer");
        assert_eq!(got, Ok(2));
        assert_eq!(conns.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_refused_upgrade_is_a_clear_error() {
        let (url, _) = fake_peer(1, "404 Not Found").await;
        let err = stream(&url)
            .request::<_, Result<u64, String>>(Kind::Vote, &1u64, SHORT)
            .await
            .expect_err("refused");
        assert!(
            matches!(&err, PeerError::Unreachable { message, .. } if message == "raft stream refused: HTTP/1.1 404 Not Found"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_silent_peer_times_out_and_the_stream_is_dropped() {
        let (url, conns) = fake_peer(0, "101 Switching Protocols").await;
        let mut s = stream(&url);
        for attempt in 1..=2 {
            let err = s
                .request::<_, Result<u64, String>>(Kind::Vote, &1u64, Duration::from_millis(200))
                .await
                .expect_err("no answer");
            assert!(matches!(err, PeerError::Timeout { .. }), "{err}");
            assert!(s.io.is_none());
            assert_eq!(conns.load(Ordering::SeqCst), attempt);
        }
    }

    #[tokio::test]
    async fn an_unreachable_or_isolated_peer_is_unreachable() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        drop(listener);
        let err = stream(&url)
            .request::<_, Result<u64, String>>(Kind::Vote, &1u64, SHORT)
            .await
            .expect_err("refused");
        assert!(matches!(err, PeerError::Unreachable { .. }), "{err}");

        let (url, conns) = fake_peer(100, "101 Switching Protocols").await;
        let fault = FaultSwitch::default();
        let mut s = RaftStream::new(url, Connector::http1(None), fault.clone());
        fault.set_isolated(true);
        let err = s
            .request::<_, Result<u64, String>>(Kind::Vote, &1u64, SHORT)
            .await
            .expect_err("isolated");
        assert!(matches!(err, PeerError::Unreachable { .. }), "{err}");
        assert_eq!(conns.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn frames_over_the_limit_are_refused_before_reading_them() {
        let mut header = ((MAX_PEER_MESSAGE + 1) as u32).to_be_bytes().to_vec();
        header.extend_from_slice(b"more");
        let err = read_frame(&mut header.as_slice())
            .await
            .expect_err("oversized");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("exceeds the limit"), "{err}");

        let empty: &[u8] = &[];
        assert!(read_frame(&mut { empty })
            .await
            .expect("clean end")
            .is_none());
        let cut: &[u8] = &[0, 0, 0, 9, 1];
        assert!(read_frame(&mut { cut }).await.is_err());
    }
}
