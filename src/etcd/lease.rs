//! etcd's Lease service: grant, revoke, keep-alive streams, time-to-live, list.
//!
//! Invariant: a keep-alive stream answers each request in order; an unknown lease
//! gets TTL 0 (etcd's answer), never a stream error.

use std::pin::Pin;

use futures::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::proto::etcdserverpb as pb;
use super::{convert, error::status, observe};
use crate::store::Store;

pub struct LeaseService {
    pub store: Store,
}

type KeepAliveStream =
    Pin<Box<dyn Stream<Item = Result<pb::LeaseKeepAliveResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::lease_server::Lease for LeaseService {
    async fn lease_grant(
        &self,
        req: Request<pb::LeaseGrantRequest>,
    ) -> Result<Response<pb::LeaseGrantResponse>, Status> {
        observe("Lease", "LeaseGrant", async {
            let r = req.into_inner();
            let (h, id, ttl) = self.store.lease_grant(r.ttl, r.id).await.map_err(status)?;
            Ok(Response::new(pb::LeaseGrantResponse {
                header: convert::header(h),
                id,
                ttl,
                error: String::new(),
            }))
        })
        .await
    }

    async fn lease_revoke(
        &self,
        req: Request<pb::LeaseRevokeRequest>,
    ) -> Result<Response<pb::LeaseRevokeResponse>, Status> {
        observe("Lease", "LeaseRevoke", async {
            let h = self
                .store
                .lease_revoke(req.get_ref().id)
                .await
                .map_err(status)?;
            Ok(Response::new(pb::LeaseRevokeResponse {
                header: convert::header(h),
            }))
        })
        .await
    }

    async fn lease_keep_alive(
        &self,
        req: Request<Streaming<pb::LeaseKeepAliveRequest>>,
    ) -> Result<Response<KeepAliveStream>, Status> {
        let mut input = req.into_inner();
        let (tx, rx) = mpsc::channel(16);
        let store = self.store.clone();
        tokio::spawn(async move {
            while let Some(msg) = input.next().await {
                let Ok(msg) = msg else { return };
                let reply = match store.lease_keep_alive(msg.id).await {
                    Ok(ttl) => Ok(pb::LeaseKeepAliveResponse {
                        header: convert::header(store.header()),
                        id: msg.id,
                        ttl,
                    }),
                    Err(e) => Err(status(e)),
                };
                let failed = reply.is_err();
                if tx.send(reply).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn lease_time_to_live(
        &self,
        req: Request<pb::LeaseTimeToLiveRequest>,
    ) -> Result<Response<pb::LeaseTimeToLiveResponse>, Status> {
        observe("Lease", "LeaseTimeToLive", async {
            let r = req.into_inner();
            let (h, ttl, granted, keys) = self
                .store
                .lease_time_to_live(r.id, r.keys)
                .await
                .map_err(status)?;
            Ok(Response::new(pb::LeaseTimeToLiveResponse {
                header: convert::header(h),
                id: r.id,
                ttl,
                granted_ttl: granted,
                keys,
            }))
        })
        .await
    }

    async fn lease_leases(
        &self,
        _req: Request<pb::LeaseLeasesRequest>,
    ) -> Result<Response<pb::LeaseLeasesResponse>, Status> {
        observe("Lease", "LeaseLeases", async {
            let (h, ids) = self.store.leases().await.map_err(status)?;
            Ok(Response::new(pb::LeaseLeasesResponse {
                header: convert::header(h),
                leases: ids.into_iter().map(|id| pb::LeaseStatus { id }).collect(),
            }))
        })
        .await
    }
}
