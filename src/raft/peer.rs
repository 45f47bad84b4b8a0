//! The peer gRPC service (server side of the peer port): leader-only calls relayed by
//! followers, and client proposals forwarded by followers of earlier builds (this
//! build forwards on raft streams, see `stream`, as Raft's own messages travel).
//!
//! Invariant: the protobuf layer only frames bytes; payloads are bincode-encoded
//! kuberaft messages, with the one encoding defined here.

use std::sync::Arc;

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tonic::{Request, Response, Status};

use super::fault::FaultSwitch;
use super::proto::peer_server::{Peer, PeerServer};
use super::proto::Frame;
use super::{NodeId, Proposal, ProposalResult};

/// Why the leader could not take a forwarded proposal or call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ForwardError {
    /// The receiver is not the leader; it believes `leader` is (if known).
    #[error("not the leader (leader: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    /// The proposal may or may not have been committed: leadership changed under it.
    #[error("etcdserver: leader changed")]
    LeaderChanged,
    /// The receiver is shutting down or failed.
    #[error("{0}")]
    Unavailable(String),
    /// The call was understood and refused; the text is the client-facing error.
    #[error("{0}")]
    Rejected(String),
}

/// What the store answers to forwarded proposals (raft streams, or gRPC from earlier
/// builds) and relayed leader-only calls (gRPC).
#[tonic::async_trait]
pub trait PeerHandler: Send + Sync + 'static {
    /// Proposes a batch that a follower forwarded; answers once it is applied here.
    async fn forward(&self, proposal: Proposal) -> Result<ProposalResult, ForwardError>;
    /// Answers a leader-only call (encoded by the caller's store layer).
    async fn call(&self, payload: Bytes) -> Result<Bytes, ForwardError>;
}

/// bincode with a fixed configuration: the peer protocol's encoding.
pub fn encode<T: Serialize>(value: &T) -> Result<Bytes, Status> {
    let mut buf = Vec::new();
    encode_into(value, &mut buf)?;
    Ok(Bytes::from(buf))
}

/// As [`encode`], appending to `buf` (behind a frame header, say).
pub fn encode_into<T: Serialize>(value: &T, buf: &mut Vec<u8>) -> Result<(), Status> {
    bincode::serde::encode_into_std_write(value, buf, bincode::config::standard())
        .map(|_| ())
        .map_err(|e| Status::internal(format!("encoding peer message: {e}")))
}

/// Decodes a peer payload; a malformed payload is the sender's fault.
pub fn decode<T: DeserializeOwned>(payload: &[u8]) -> Result<T, Status> {
    bincode::serde::decode_from_slice(payload, bincode::config::standard())
        .map(|(value, _)| value)
        .map_err(|e| Status::invalid_argument(format!("malformed peer message: {e}")))
}

/// The tonic service over the store's handler.
pub struct PeerService {
    handler: Arc<dyn PeerHandler>,
    fault: FaultSwitch,
}

impl PeerService {
    pub fn new(handler: Arc<dyn PeerHandler>, fault: FaultSwitch) -> PeerServer<PeerService> {
        PeerServer::new(PeerService { handler, fault })
            .max_decoding_message_size(MAX_PEER_MESSAGE)
            .max_encoding_message_size(MAX_PEER_MESSAGE)
    }

    fn check_fault(&self) -> Result<(), Status> {
        if self.fault.isolated() {
            return Err(Status::unavailable(
                "peer traffic is blocked by fault injection",
            ));
        }
        Ok(())
    }
}

/// Upper bound for one peer message (a batch of entries or a snapshot chunk).
pub const MAX_PEER_MESSAGE: usize = 256 << 20;

#[tonic::async_trait]
impl Peer for PeerService {
    async fn forward(&self, req: Request<Frame>) -> Result<Response<Frame>, Status> {
        self.check_fault()?;
        let proposal: Proposal = decode(&req.get_ref().payload)?;
        let res = self.handler.forward(proposal).await;
        Ok(Response::new(Frame {
            payload: encode(&res)?,
        }))
    }

    async fn call(&self, req: Request<Frame>) -> Result<Response<Frame>, Status> {
        self.check_fault()?;
        let payload = req.into_inner().payload;
        let res = self.handler.call(payload).await;
        Ok(Response::new(Frame {
            payload: encode(&res)?,
        }))
    }
}
