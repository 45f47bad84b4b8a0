//! Key-value operations of the store: validation with etcd's rules, linearizable or
//! serializable reads, and writes through Raft.
//!
//! Invariant: a request that fails validation is never proposed, so it leaves no trace
//! in the log or the store.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::{Header, Store, StoreError};
use crate::mvcc::{
    AlarmAction, AlarmMember, AlarmType, Applied, DeleteRangeRequest, DeleteRangeResponse,
    KeyRange, PutRequest, PutResponse, RangeRequest, RangeResponse, Request, RequestOp, Response,
    Revision, TxnRequest, TxnResponse,
};
use crate::raft::proposer::approximate_size;

impl Store {
    /// etcd's Range: linearizable unless `serializable`.
    pub async fn range(
        &self,
        mut req: RangeRequest,
    ) -> Result<(Header, RangeResponse), StoreError> {
        if req.range.key.is_empty() {
            return Err(StoreError::EmptyKey);
        }
        if !req.serializable {
            self.linearize().await?;
        }
        let current = self.inner.mvcc.current_revision();
        if req.revision <= 0 {
            req.revision = current;
        }
        let resp = self.inner.mvcc.range(&req)?;
        Ok((self.header_at(current), resp))
    }

    pub async fn put(&self, req: PutRequest) -> Result<(Header, PutResponse), StoreError> {
        check_put(&req)?;
        let applied = self.propose_write(Request::Put(req)).await?;
        match applied.result? {
            Response::Put(r) => Ok((self.header_at(applied.revision), r)),
            other => Err(unexpected(&other)),
        }
    }

    pub async fn delete_range(
        &self,
        req: DeleteRangeRequest,
    ) -> Result<(Header, DeleteRangeResponse), StoreError> {
        if req.range.key.is_empty() {
            return Err(StoreError::EmptyKey);
        }
        let applied = self.propose_write(Request::DeleteRange(req)).await?;
        match applied.result? {
            Response::DeleteRange(r) => Ok((self.header_at(applied.revision), r)),
            other => Err(unexpected(&other)),
        }
    }

    /// etcd's Txn. A txn that cannot write is served as a read (linearizable unless
    /// every range in it is serializable); anything else goes through Raft.
    pub async fn txn(&self, req: TxnRequest) -> Result<(Header, TxnResponse), StoreError> {
        check_txn(&req, self.inner.options.max_txn_ops)?;
        if req.is_read_only() {
            if !all_ranges_serializable(&req) {
                self.linearize().await?;
            }
            let (revision, resp) = self.inner.mvcc.read_txn(&req)?;
            return Ok((self.header_at(revision), resp));
        }
        let applied = self.propose_write(Request::Txn(req)).await?;
        match applied.result? {
            Response::Txn(r) => Ok((self.header_at(applied.revision), r)),
            other => Err(unexpected(&other)),
        }
    }

    /// Compacts history before `revision`; returns once applied here.
    pub async fn compact(&self, revision: Revision) -> Result<Header, StoreError> {
        let applied = self.propose(Request::Compact { revision }).await?;
        applied.result?;
        Ok(self.header_at(applied.revision))
    }

    /// Proposes one request and waits for its result.
    pub(super) async fn propose(&self, req: Request) -> Result<Applied, StoreError> {
        let mut applied = self.inner.proposer.propose(vec![req]).await?;
        applied
            .pop()
            .ok_or_else(|| StoreError::Internal("proposal applied without a result".into()))
    }

    /// Checks size and space quota, then proposes.
    async fn propose_write(&self, req: Request) -> Result<Applied, StoreError> {
        if approximate_size(&req) > self.inner.options.max_request_bytes {
            return Err(StoreError::RequestTooLarge);
        }
        self.check_quota(&req).await?;
        self.propose(req).await
    }

    /// etcd's backend quota: a write that may grow a store over the quota raises the
    /// NOSPACE alarm (through Raft, for every member to see) and is refused.
    pub(super) async fn check_quota(&self, req: &Request) -> Result<(), StoreError> {
        let quota = self.inner.options.quota_backend_bytes;
        if quota == 0 || !req.may_grow() {
            return Ok(());
        }
        let size = self.inner.mvcc.size_on_disk() + approximate_size(req) as u64;
        if size <= quota {
            return Ok(());
        }
        let alarm = AlarmMember {
            member_id: self.inner.id,
            alarm: AlarmType::NoSpace,
        };
        if !self.inner.mvcc.alarms().contains(&alarm) {
            tracing::warn!(
                size,
                quota,
                "database space exceeded: raising NOSPACE alarm"
            );
            let _ = self
                .propose(Request::Alarm {
                    action: AlarmAction::Activate,
                    alarm,
                })
                .await;
        }
        Err(crate::mvcc::MvccError::NoSpace.into())
    }
}

fn unexpected(resp: &Response) -> StoreError {
    StoreError::Internal(format!("unexpected apply response {resp:?}"))
}

fn check_put(req: &PutRequest) -> Result<(), StoreError> {
    if req.key.is_empty() {
        return Err(StoreError::EmptyKey);
    }
    if req.ignore_value && !req.value.is_empty() {
        return Err(StoreError::ValueProvided);
    }
    if req.ignore_lease && req.lease != 0 {
        return Err(StoreError::LeaseProvided);
    }
    Ok(())
}

/// etcd's txn checks: op counts, keys present, and no key written twice in a branch.
pub(crate) fn check_txn(req: &TxnRequest, max_ops: usize) -> Result<(), StoreError> {
    if req.compare.len() > max_ops || req.success.len() > max_ops || req.failure.len() > max_ops {
        return Err(StoreError::TooManyOps);
    }
    for c in &req.compare {
        if c.range.key.is_empty() {
            return Err(StoreError::EmptyKey);
        }
    }
    for branch in [&req.success, &req.failure] {
        for op in branch.iter() {
            match op {
                RequestOp::Range(r) if r.range.key.is_empty() => return Err(StoreError::EmptyKey),
                RequestOp::Put(p) => check_put(p)?,
                RequestOp::DeleteRange(d) if d.range.key.is_empty() => {
                    return Err(StoreError::EmptyKey)
                }
                RequestOp::Txn(t) => check_txn(t, max_ops)?,
                _ => {}
            }
        }
        check_no_duplicates(branch)?;
    }
    Ok(())
}

/// A branch may not put the same key twice, nor put a key it also deletes (etcd's
/// `checkIntervals`), counting nested txns' branches.
fn check_no_duplicates(ops: &[RequestOp]) -> Result<(), StoreError> {
    let mut puts = BTreeSet::new();
    let mut deletes: Vec<KeyRange> = Vec::new();
    collect_writes(ops, &mut puts, &mut deletes)?;
    for key in &puts {
        if deletes.iter().any(|d| d.contains(key)) {
            return Err(StoreError::DuplicateKey);
        }
    }
    Ok(())
}

fn collect_writes(
    ops: &[RequestOp],
    puts: &mut BTreeSet<Bytes>,
    deletes: &mut Vec<KeyRange>,
) -> Result<(), StoreError> {
    for op in ops {
        match op {
            RequestOp::Put(p) => {
                if !puts.insert(p.key.clone()) {
                    return Err(StoreError::DuplicateKey);
                }
            }
            RequestOp::DeleteRange(d) => deletes.push(d.range.clone()),
            RequestOp::Txn(t) => {
                // Only one of a nested txn's branches runs, so each is checked against
                // the outer writes separately.
                for branch in [&t.success, &t.failure] {
                    let mut p = puts.clone();
                    let mut d = deletes.clone();
                    collect_writes(branch, &mut p, &mut d)?;
                    for key in &p {
                        if d.iter().any(|r| r.contains(key)) {
                            return Err(StoreError::DuplicateKey);
                        }
                    }
                }
            }
            RequestOp::Range(_) => {}
        }
    }
    Ok(())
}

fn all_ranges_serializable(req: &TxnRequest) -> bool {
    req.success
        .iter()
        .chain(req.failure.iter())
        .all(|op| match op {
            RequestOp::Range(r) => r.serializable,
            RequestOp::Txn(t) => all_ranges_serializable(t),
            _ => true,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &'static str) -> RequestOp {
        RequestOp::Put(PutRequest {
            key: Bytes::from_static(key.as_bytes()),
            value: Bytes::from_static(b"v"),
            ..Default::default()
        })
    }

    fn txn(success: Vec<RequestOp>) -> TxnRequest {
        TxnRequest {
            compare: vec![],
            success,
            failure: vec![],
        }
    }

    #[test]
    fn duplicate_puts_in_a_branch_are_refused() {
        assert_eq!(
            check_txn(&txn(vec![put("a"), put("a")]), 128),
            Err(StoreError::DuplicateKey)
        );
        assert_eq!(check_txn(&txn(vec![put("a"), put("b")]), 128), Ok(()));
    }

    #[test]
    fn put_inside_a_deleted_range_is_refused() {
        let del = RequestOp::DeleteRange(DeleteRangeRequest {
            range: KeyRange::prefix(Bytes::from_static(b"a")),
            prev_kv: false,
        });
        assert_eq!(
            check_txn(&txn(vec![del, put("ab")]), 128),
            Err(StoreError::DuplicateKey)
        );
    }

    #[test]
    fn nested_txn_duplicates_are_refused() {
        let nested = RequestOp::Txn(txn(vec![put("a")]));
        assert_eq!(
            check_txn(&txn(vec![put("a"), nested]), 128),
            Err(StoreError::DuplicateKey)
        );
    }

    #[test]
    fn too_many_ops_are_refused() {
        let ops: Vec<RequestOp> = (0..129)
            .map(|i| {
                RequestOp::Range(RangeRequest {
                    range: KeyRange::new(Bytes::from(format!("k{i}")), Bytes::new()),
                    ..Default::default()
                })
            })
            .collect();
        assert_eq!(check_txn(&txn(ops), 128), Err(StoreError::TooManyOps));
    }

    #[test]
    fn empty_keys_are_refused() {
        assert_eq!(
            check_txn(&txn(vec![put("")]), 128),
            Err(StoreError::EmptyKey)
        );
    }
}
