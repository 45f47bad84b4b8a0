//! etcd's Cluster service: member list, add, remove, update, promote.

use tonic::{Request, Response, Status};

use super::proto::etcdserverpb as pb;
use super::{convert, error::status, observe};
use crate::store::Store;

pub struct ClusterService {
    pub store: Store,
}

impl ClusterService {
    fn members(&self) -> Vec<pb::Member> {
        self.store.members().iter().map(convert::member).collect()
    }
}

#[tonic::async_trait]
impl pb::cluster_server::Cluster for ClusterService {
    async fn member_add(
        &self,
        req: Request<pb::MemberAddRequest>,
    ) -> Result<Response<pb::MemberAddResponse>, Status> {
        observe("Cluster", "MemberAdd", async {
            let r = req.into_inner();
            for url in &r.peer_ur_ls {
                crate::config::check_advertised_url(url)
                    .map_err(|e| Status::invalid_argument(e.to_string()))?;
            }
            let added = self
                .store
                .member_add(r.peer_ur_ls, r.is_learner)
                .await
                .map_err(status)?;
            let mut member = convert::member(&added);
            member.is_learner = r.is_learner;
            Ok(Response::new(pb::MemberAddResponse {
                header: convert::header(self.store.header()),
                member: Some(member),
                members: self.members(),
            }))
        })
        .await
    }

    async fn member_remove(
        &self,
        req: Request<pb::MemberRemoveRequest>,
    ) -> Result<Response<pb::MemberRemoveResponse>, Status> {
        observe("Cluster", "MemberRemove", async {
            self.store
                .member_remove(req.get_ref().id)
                .await
                .map_err(status)?;
            Ok(Response::new(pb::MemberRemoveResponse {
                header: convert::header(self.store.header()),
                members: self.members(),
            }))
        })
        .await
    }

    async fn member_update(
        &self,
        req: Request<pb::MemberUpdateRequest>,
    ) -> Result<Response<pb::MemberUpdateResponse>, Status> {
        observe("Cluster", "MemberUpdate", async {
            let r = req.into_inner();
            for url in &r.peer_ur_ls {
                crate::config::check_advertised_url(url)
                    .map_err(|e| Status::invalid_argument(e.to_string()))?;
            }
            self.store
                .member_update(r.id, r.peer_ur_ls)
                .await
                .map_err(status)?;
            Ok(Response::new(pb::MemberUpdateResponse {
                header: convert::header(self.store.header()),
                members: self.members(),
            }))
        })
        .await
    }

    async fn member_list(
        &self,
        req: Request<pb::MemberListRequest>,
    ) -> Result<Response<pb::MemberListResponse>, Status> {
        observe("Cluster", "MemberList", async {
            let members = self
                .store
                .member_list(req.get_ref().linearizable)
                .await
                .map_err(status)?;
            Ok(Response::new(pb::MemberListResponse {
                header: convert::header(self.store.header()),
                members: members.iter().map(convert::member).collect(),
            }))
        })
        .await
    }

    async fn member_promote(
        &self,
        req: Request<pb::MemberPromoteRequest>,
    ) -> Result<Response<pb::MemberPromoteResponse>, Status> {
        observe("Cluster", "MemberPromote", async {
            self.store
                .member_promote(req.get_ref().id)
                .await
                .map_err(status)?;
            Ok(Response::new(pb::MemberPromoteResponse {
                header: convert::header(self.store.header()),
                members: self.members(),
            }))
        })
        .await
    }
}
