//! The client side of the peer port: openraft's `RaftNetworkFactory`, each connection
//! its own raft stream (see `stream`), and `PeerClients`, which the store uses to
//! forward proposals (on raft streams; over gRPC to a leader of an earlier build) and
//! leader-only calls (gRPC).
//!
//! Invariant: one HTTP/2 connection per peer URL for gRPC; a raft stream serves one
//! openraft connection or one forward at a time and is kept for reuse only while
//! connected; a forward is written at most once; an unreachable peer is reported as
//! `Unreachable` so openraft backs off instead of spinning; with a `Durability` set,
//! no AppendEntries tells a follower a commit index beyond what this member has
//! synced (see `log_store`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use rustls::ClientConfig;
use serde::de::DeserializeOwned;
use tonic::transport::{Channel, Endpoint};

use super::fault::FaultSwitch;
use super::log_store::Durability;
use super::peer::{decode, encode, ForwardError, MAX_PEER_MESSAGE};
use super::proto::peer_client::PeerClient as GrpcClient;
use super::proto::Frame;
use super::stream::{IdleStreams, Kind, RaftStream};
use super::{Member, NodeId, Proposal, ProposalResult, TypeConfig};
use crate::tls::Connector;

/// A failed peer request, before openraft's or the store's error shapes.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The peer could not be reached (connection refused, reset, DNS...).
    #[error("peer {url} unreachable: {message}")]
    Unreachable { url: String, message: String },
    /// The request reached the peer and failed there, or its answer was malformed.
    #[error("peer {url}: {message}")]
    Failed { url: String, message: String },
    #[error("peer {url}: timed out after {timeout:?}")]
    Timeout { url: String, timeout: Duration },
}

/// Cached connections to peers, keyed by peer URL.
#[derive(Clone)]
pub struct PeerClients {
    /// HTTP/2 for the gRPC channels.
    connector: Connector,
    /// HTTP/1.1 for raft streams, which upgrade from an HTTP/1.1 request.
    stream_connector: Connector,
    fault: FaultSwitch,
    channels: Arc<Mutex<HashMap<String, GrpcClient<Channel>>>>,
    idle: IdleStreams,
}

impl PeerClients {
    pub fn new(tls: Option<Arc<ClientConfig>>, fault: FaultSwitch) -> Self {
        PeerClients {
            connector: Connector::new(tls.clone()),
            stream_connector: Connector::http1(tls),
            fault,
            channels: Arc::new(Mutex::new(HashMap::new())),
            idle: IdleStreams::default(),
        }
    }

    /// A client for `url`, connecting lazily on first use.
    pub fn client(&self, url: &str) -> Result<PeerClient, PeerError> {
        let mut channels = self.channels.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(grpc) = channels.get(url) {
            return Ok(self.peer_client(url, grpc.clone()));
        }
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| PeerError::Failed {
                url: url.to_owned(),
                message: format!("invalid peer URL: {e}"),
            })?
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(10))
            .keep_alive_timeout(Duration::from_secs(5))
            .initial_stream_window_size(Some(1 << 20))
            .initial_connection_window_size(Some(8 << 20));
        let channel = endpoint.connect_with_connector_lazy(self.connector.clone());
        let grpc = GrpcClient::new(channel)
            .max_decoding_message_size(MAX_PEER_MESSAGE)
            .max_encoding_message_size(MAX_PEER_MESSAGE);
        channels.insert(url.to_owned(), grpc.clone());
        Ok(self.peer_client(url, grpc))
    }

    fn peer_client(&self, url: &str, grpc: GrpcClient<Channel>) -> PeerClient {
        PeerClient {
            url: url.to_owned(),
            grpc,
            stream_connector: self.stream_connector.clone(),
            idle: self.idle.clone(),
            fault: self.fault.clone(),
        }
    }

    /// A client for the first peer URL of `member`.
    pub fn member(&self, member: &Member) -> Result<PeerClient, PeerError> {
        let url = member.peer_urls.first().ok_or_else(|| PeerError::Failed {
            url: String::new(),
            message: format!("member {} has no peer URL", member.name),
        })?;
        self.client(url)
    }
}

/// One peer's client.
#[derive(Clone)]
pub struct PeerClient {
    url: String,
    grpc: GrpcClient<Channel>,
    stream_connector: Connector,
    idle: IdleStreams,
    fault: FaultSwitch,
}

type Call =
    fn(
        GrpcClient<Channel>,
        tonic::Request<Frame>,
    ) -> futures::future::BoxFuture<'static, Result<tonic::Response<Frame>, tonic::Status>>;

impl PeerClient {
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A stream for Raft's own messages to this peer: an idle one, or a new one that
    /// connects on first use.
    pub fn raft_stream(&self) -> RaftStream {
        self.idle.take(&self.url).unwrap_or_else(|| {
            RaftStream::new(
                self.url.clone(),
                self.stream_connector.clone(),
                self.fault.clone(),
            )
        })
    }

    /// Gives back a stream taken with [`PeerClient::raft_stream`] for reuse.
    pub fn release(&self, stream: RaftStream) {
        self.idle.put(stream);
    }

    async fn round_trip<T: DeserializeOwned>(
        &self,
        call: Call,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<T, PeerError> {
        if self.fault.isolated() {
            return Err(PeerError::Unreachable {
                url: self.url.clone(),
                message: "peer traffic is blocked by fault injection".into(),
            });
        }
        let request = tonic::Request::new(Frame { payload });
        let fut = call(self.grpc.clone(), request);
        let started = std::time::Instant::now();
        let response = match tokio::time::timeout(timeout, fut).await {
            Err(_) => {
                return Err(PeerError::Timeout {
                    url: self.url.clone(),
                    timeout,
                })
            }
            Ok(Err(status)) => return Err(status_error(&self.url, status)),
            Ok(Ok(response)) => response,
        };
        metrics::histogram!("etcd_network_peer_round_trip_time_seconds", "To" => self.url.clone())
            .record(started.elapsed().as_secs_f64());
        decode(&response.get_ref().payload).map_err(|status| PeerError::Failed {
            url: self.url.clone(),
            message: status.message().to_owned(),
        })
    }

    /// Forwards a batch of proposals to the peer (the leader) on a raft stream, at
    /// most once: `Unreachable` means it was not delivered, `Failed` or `Timeout` that
    /// it may have been. A leader whose streams do not take forwards (an earlier
    /// build) gets it over gRPC, as that build expects.
    pub async fn forward(
        &self,
        proposal: &Proposal,
        timeout: Duration,
    ) -> Result<Result<ProposalResult, ForwardError>, PeerError> {
        let mut stream = self.raft_stream();
        let started = std::time::Instant::now();
        // A frozen peer accepts the connection and never answers the upgrade.
        let takes = tokio::time::timeout(timeout, stream.takes_forwards())
            .await
            .map_err(|_| PeerError::Timeout {
                url: self.url.clone(),
                timeout,
            })??;
        let left = timeout.saturating_sub(started.elapsed());
        let (transport, answer) = if takes {
            (
                "stream",
                stream.request(Kind::Forward, proposal, left).await,
            )
        } else {
            ("grpc", self.forward_grpc(proposal, left).await)
        };
        metrics::counter!("kuberaft_peer_forwards_total", "To" => self.url.clone(), "transport" => transport)
            .increment(1);
        self.release(stream);
        answer
    }

    async fn forward_grpc(
        &self,
        proposal: &Proposal,
        timeout: Duration,
    ) -> Result<Result<ProposalResult, ForwardError>, PeerError> {
        let payload = encode(proposal).map_err(|s| PeerError::Failed {
            url: self.url.clone(),
            message: s.message().to_owned(),
        })?;
        self.round_trip(
            |mut c, r| Box::pin(async move { c.forward(r).await }),
            payload,
            timeout,
        )
        .await
    }

    /// Sends a leader-only call, encoded by the store layer.
    pub async fn call(
        &self,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Result<Bytes, ForwardError>, PeerError> {
        self.round_trip(
            |mut c, r| Box::pin(async move { c.call(r).await }),
            payload,
            timeout,
        )
        .await
    }
}

fn status_error(url: &str, status: tonic::Status) -> PeerError {
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled => {
            PeerError::Unreachable {
                url: url.to_owned(),
                message: status.message().to_owned(),
            }
        }
        _ => PeerError::Failed {
            url: url.to_owned(),
            message: status.message().to_owned(),
        },
    }
}

/// openraft's network factory.
#[derive(Clone)]
pub struct Network {
    clients: PeerClients,
    durability: Option<Durability>,
}

impl Network {
    pub fn new(clients: PeerClients) -> Self {
        Network {
            clients,
            durability: None,
        }
    }

    /// Holds each AppendEntries until the commit index it carries is synced in the
    /// local log: required when the log store acknowledges the leader's own entries
    /// before syncing them.
    pub fn with_durability(mut self, durability: Durability) -> Self {
        self.durability = Some(durability);
        self
    }
}

/// openraft's connection to one target member. It takes a raft stream on first use
/// and gives it back when dropped: a replication connection holds one for its life,
/// the short-lived ones (a heartbeat round, a vote) borrow an idle one.
pub struct Connection {
    target: NodeId,
    peer: Result<PeerClient, String>,
    stream: Option<RaftStream>,
    durability: Option<Durability>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let (Ok(peer), Some(stream)) = (&self.peer, self.stream.take()) {
            peer.release(stream);
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, node: &Member) -> Connection {
        Connection {
            target,
            peer: self.clients.member(node).map_err(|e| e.to_string()),
            stream: None,
            durability: self.durability.clone(),
        }
    }
}

impl Connection {
    async fn send<Req, Resp, E>(
        &mut self,
        kind: Kind,
        rpc: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, Member, E>>
    where
        Req: serde::Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let peer = self.peer.as_ref().map_err(|e| {
            RPCError::Unreachable(Unreachable::new(&std::io::Error::other(e.clone())))
        })?;
        let stream = self.stream.get_or_insert_with(|| peer.raft_stream());
        let res: Result<Resp, E> =
            stream
                .request(kind, rpc, option.hard_ttl())
                .await
                .map_err(|e| match e {
                    PeerError::Unreachable { .. } => RPCError::Unreachable(Unreachable::new(&e)),
                    other => RPCError::Network(NetworkError::new(&other)),
                })?;
        res.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        if let (Some(d), Some(commit)) = (&self.durability, rpc.leader_commit) {
            // Usually long done: the commit needed a follower's round trip, which
            // includes its own fdatasync.
            match tokio::time::timeout(option.hard_ttl(), d.wait(commit.index)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(RPCError::Unreachable(Unreachable::new(&e))),
                Err(_) => {
                    let e = std::io::Error::other(format!(
                        "entry {} not synced locally within {:?}",
                        commit.index,
                        option.hard_ttl()
                    ));
                    return Err(RPCError::Unreachable(Unreachable::new(&e)));
                }
            }
        }
        self.send(Kind::AppendEntries, &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, Member, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.send(Kind::InstallSnapshot, &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, Member, RaftError<NodeId>>> {
        self.send(Kind::Vote, &rpc, &option).await
    }

    fn backoff(&self) -> Backoff {
        // A restarted member is retried promptly; a dead one costs a connect attempt
        // every 200 ms.
        Backoff::new(std::iter::repeat(Duration::from_millis(200)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_forward_to_a_frozen_leader_times_out() {
        // Accepts connections (the kernel does) and never answers anything.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let clients = PeerClients::new(None, FaultSwitch::default());
        let client = clients.client(&url).expect("client");
        let proposal = Proposal { requests: vec![] };
        let forward = client.forward(&proposal, Duration::from_millis(300));
        // A deadline for the test only: without the forward's own timeout it would
        // wait for the upgrade's answer for ever.
        let err = tokio::time::timeout(Duration::from_secs(60), forward)
            .await
            .expect("the forward gave up by itself")
            .expect_err("no answer");
        assert!(matches!(err, PeerError::Timeout { .. }), "{err}");
        drop(listener);
    }
}
