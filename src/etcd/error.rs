//! Maps store errors to gRPC statuses with etcd's codes and texts, so etcd clients
//! recognise them (clientv3 turns known texts back into typed errors).

use tonic::{Code, Status};

use crate::mvcc::MvccError;
use crate::raft::proposer::ProposeError;
use crate::store::StoreError;

pub fn status(e: StoreError) -> Status {
    let code = match &e {
        StoreError::Mvcc(m) => match m {
            MvccError::Compacted { .. } | MvccError::FutureRevision => Code::OutOfRange,
            MvccError::LeaseNotFound => Code::NotFound,
            MvccError::LeaseExists => Code::FailedPrecondition,
            MvccError::KeyNotFound => Code::InvalidArgument,
            MvccError::NoSpace => Code::ResourceExhausted,
            MvccError::Corrupt(_) => Code::DataLoss,
            MvccError::Storage(_) => Code::Internal,
        },
        StoreError::Propose(p) => match p {
            ProposeError::NoLeader
            | ProposeError::LeaderChanged
            | ProposeError::Timeout
            | ProposeError::NotLeader
            | ProposeError::Stopped => Code::Unavailable,
            ProposeError::Rejected(_) => Code::FailedPrecondition,
        },
        StoreError::EmptyKey
        | StoreError::RequestTooLarge
        | StoreError::TooManyOps
        | StoreError::DuplicateKey
        | StoreError::ValueProvided
        | StoreError::LeaseProvided
        | StoreError::InvalidArgument(_) => Code::InvalidArgument,
        StoreError::LeaseTtlTooLarge => Code::OutOfRange,
        StoreError::MemberNotFound => Code::NotFound,
        StoreError::PeerUrlExists
        | StoreError::MemberExists
        | StoreError::MemberNotLearner
        | StoreError::LearnerNotReady
        | StoreError::BadLeaderTransferee
        | StoreError::NotLeader => Code::FailedPrecondition,
        StoreError::UnhealthyCluster | StoreError::Stopped => Code::Unavailable,
        StoreError::Internal(_) => Code::Internal,
    };
    Status::new(code, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etcd_texts_and_codes() {
        let s = status(StoreError::Mvcc(MvccError::Compacted {
            compact_revision: 3,
        }));
        assert_eq!(s.code(), Code::OutOfRange);
        assert_eq!(
            s.message(),
            "etcdserver: mvcc: required revision has been compacted"
        );
        let s = status(StoreError::Propose(ProposeError::NoLeader));
        assert_eq!(
            (s.code(), s.message()),
            (Code::Unavailable, "etcdserver: no leader")
        );
        let s = status(StoreError::RequestTooLarge);
        assert_eq!(
            (s.code(), s.message()),
            (Code::InvalidArgument, "etcdserver: request is too large")
        );
    }
}
