//! etcd's KV service: Range, Put, DeleteRange, Txn, Compact.

use tonic::{Request, Response, Status};

use super::proto::etcdserverpb as pb;
use super::{convert, error::status, observe};
use crate::store::Store;

pub struct KvService {
    pub store: Store,
}

#[tonic::async_trait]
impl pb::kv_server::Kv for KvService {
    async fn range(
        &self,
        req: Request<pb::RangeRequest>,
    ) -> Result<Response<pb::RangeResponse>, Status> {
        observe("KV", "Range", async {
            let r = convert::range_request(req.into_inner())?;
            let (h, resp) = self.store.range(r).await.map_err(status)?;
            Ok(Response::new(convert::range_response(h, resp)))
        })
        .await
    }

    async fn put(&self, req: Request<pb::PutRequest>) -> Result<Response<pb::PutResponse>, Status> {
        observe("KV", "Put", async {
            let (h, resp) = self
                .store
                .put(convert::put_request(req.into_inner()))
                .await
                .map_err(status)?;
            Ok(Response::new(convert::put_response(h, resp)))
        })
        .await
    }

    async fn delete_range(
        &self,
        req: Request<pb::DeleteRangeRequest>,
    ) -> Result<Response<pb::DeleteRangeResponse>, Status> {
        observe("KV", "DeleteRange", async {
            let (h, resp) = self
                .store
                .delete_range(convert::delete_request(req.into_inner()))
                .await
                .map_err(status)?;
            Ok(Response::new(convert::delete_response(h, resp)))
        })
        .await
    }

    async fn txn(&self, req: Request<pb::TxnRequest>) -> Result<Response<pb::TxnResponse>, Status> {
        observe("KV", "Txn", async {
            let r = convert::txn_request(req.into_inner())?;
            let (h, resp) = self.store.txn(r).await.map_err(status)?;
            Ok(Response::new(convert::txn_response(h, resp)))
        })
        .await
    }

    async fn compact(
        &self,
        req: Request<pb::CompactionRequest>,
    ) -> Result<Response<pb::CompactionResponse>, Status> {
        observe("KV", "Compact", async {
            let h = self
                .store
                .compact(req.get_ref().revision)
                .await
                .map_err(status)?;
            Ok(Response::new(pb::CompactionResponse {
                header: convert::header(h),
            }))
        })
        .await
    }
}
