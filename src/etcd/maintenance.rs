//! etcd's Maintenance service: Alarm, Status, Defragment, Hash, HashKV, Snapshot,
//! MoveLeader. Downgrade is answered as not supported.

use std::pin::Pin;

use futures::Stream;
use tonic::{Request, Response, Status};

use super::proto::etcdserverpb as pb;
use super::{convert, error::status, observe};
use crate::mvcc::{AlarmAction, AlarmMember};
use crate::store::Store;

pub struct MaintenanceService {
    pub store: Store,
}

type SnapshotStream = Pin<Box<dyn Stream<Item = Result<pb::SnapshotResponse, Status>> + Send>>;

#[tonic::async_trait]
impl pb::maintenance_server::Maintenance for MaintenanceService {
    async fn alarm(
        &self,
        req: Request<pb::AlarmRequest>,
    ) -> Result<Response<pb::AlarmResponse>, Status> {
        observe("Maintenance", "Alarm", async {
            use pb::alarm_request::AlarmAction as A;
            let r = req.into_inner();
            let action = A::try_from(r.action)
                .map_err(|_| Status::invalid_argument("etcdserver: invalid alarm action"))?;
            let alarm_type = convert::alarm_type(r.alarm)?;
            let (header, alarms) = match (action, alarm_type) {
                (A::Get, _) => (self.store.header(), self.store.alarms()),
                (_, None) => {
                    return Err(Status::invalid_argument(
                        "etcdserver: alarm type must be set",
                    ));
                }
                (A::Activate, Some(alarm)) | (A::Deactivate, Some(alarm)) => {
                    let act = if action == A::Activate {
                        AlarmAction::Activate
                    } else {
                        AlarmAction::Deactivate
                    };
                    let member = AlarmMember {
                        member_id: r.member_id,
                        alarm,
                    };
                    self.store.alarm(act, member).await.map_err(status)?
                }
            };
            let alarms = match (action, alarm_type) {
                (A::Get, Some(t)) => alarms.into_iter().filter(|a| a.alarm == t).collect(),
                _ => alarms,
            };
            Ok(Response::new(pb::AlarmResponse {
                header: convert::header(header),
                alarms: alarms.into_iter().map(convert::alarm_member).collect(),
            }))
        })
        .await
    }

    async fn status(
        &self,
        _req: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        observe("Maintenance", "Status", async {
            let s = self.store.status();
            Ok(Response::new(pb::StatusResponse {
                header: convert::header(s.header),
                version: s.version.to_owned(),
                db_size: s.db_size,
                leader: s.leader,
                raft_index: s.raft_index,
                raft_term: s.raft_term,
                raft_applied_index: s.raft_applied_index,
                errors: s.errors,
                db_size_in_use: s.db_size_in_use,
                is_learner: s.is_learner,
            }))
        })
        .await
    }

    async fn defragment(
        &self,
        _req: Request<pb::DefragmentRequest>,
    ) -> Result<Response<pb::DefragmentResponse>, Status> {
        observe("Maintenance", "Defragment", async {
            let h = self.store.defragment().await.map_err(status)?;
            Ok(Response::new(pb::DefragmentResponse {
                header: convert::header(h),
            }))
        })
        .await
    }

    async fn hash(
        &self,
        _req: Request<pb::HashRequest>,
    ) -> Result<Response<pb::HashResponse>, Status> {
        observe("Maintenance", "Hash", async {
            let (h, hash) = self.store.hash().map_err(status)?;
            Ok(Response::new(pb::HashResponse {
                header: convert::header(h),
                hash,
            }))
        })
        .await
    }

    async fn hash_kv(
        &self,
        req: Request<pb::HashKvRequest>,
    ) -> Result<Response<pb::HashKvResponse>, Status> {
        observe("Maintenance", "HashKV", async {
            let (h, hash) = self.store.hash_kv(req.get_ref().revision).map_err(status)?;
            Ok(Response::new(pb::HashKvResponse {
                header: convert::header(h),
                hash: hash.hash,
                compact_revision: hash.compact_revision,
                hash_revision: hash.hash_revision,
            }))
        })
        .await
    }

    async fn snapshot(
        &self,
        _req: Request<pb::SnapshotRequest>,
    ) -> Result<Response<SnapshotStream>, Status> {
        let chunks = self.store.snapshot();
        let header = convert::header(self.store.header());
        let out = futures::stream::unfold(Some(chunks), move |state| async move {
            let mut chunks = state?;
            match chunks.recv().await {
                Some(Ok((blob, remaining_bytes))) => Some((
                    Ok(pb::SnapshotResponse {
                        header,
                        remaining_bytes,
                        blob,
                        version: crate::store::ETCD_VERSION.to_owned(),
                    }),
                    Some(chunks),
                )),
                Some(Err(e)) => Some((Err(status(e)), None)),
                None => None,
            }
        });
        Ok(Response::new(Box::pin(out)))
    }

    async fn move_leader(
        &self,
        req: Request<pb::MoveLeaderRequest>,
    ) -> Result<Response<pb::MoveLeaderResponse>, Status> {
        observe("Maintenance", "MoveLeader", async {
            self.store
                .move_leader(req.get_ref().target_id)
                .await
                .map_err(status)?;
            Ok(Response::new(pb::MoveLeaderResponse {
                header: convert::header(self.store.header()),
            }))
        })
        .await
    }

    async fn downgrade(
        &self,
        _req: Request<pb::DowngradeRequest>,
    ) -> Result<Response<pb::DowngradeResponse>, Status> {
        Err(Status::unimplemented(
            "etcdserver: downgrade is not supported",
        ))
    }
}
