//! The write requests the state machine applies (etcd's `InternalRaftRequest`) and
//! their results.
//!
//! A `Request` carries everything apply needs: ids and times were chosen by the
//! proposer, so applying the same requests in the same order gives the same state on
//! every member.

use serde::{Deserialize, Serialize};

use super::error::MvccError;
use super::types::*;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    Put(PutRequest),
    DeleteRange(DeleteRangeRequest),
    Txn(TxnRequest),
    /// Drop history before `revision` (etcd's compaction is always physical here).
    Compact {
        revision: Revision,
    },
    /// Grant a lease; the proposer chose the id (never 0).
    LeaseGrant {
        id: LeaseId,
        ttl: i64,
    },
    /// Revoke a lease and delete every key attached to it, in one revision.
    LeaseRevoke {
        id: LeaseId,
    },
    Alarm {
        action: AlarmAction,
        alarm: AlarmMember,
    },
}

impl Request {
    /// True if applying the request may create or change keys (what a NOSPACE alarm
    /// forbids). Deletes, revokes, compactions and alarms are always allowed.
    pub fn may_grow(&self) -> bool {
        match self {
            Request::Put(_) | Request::LeaseGrant { .. } => true,
            Request::Txn(t) => !t.is_read_only(),
            _ => false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Put(PutResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
    Compact,
    LeaseGrant {
        id: LeaseId,
        ttl: i64,
    },
    LeaseRevoke,
    /// The alarms active after the change.
    Alarm(Vec<AlarmMember>),
}

/// The outcome of applying one request: the store revision once it was applied
/// (the response header's revision) and the response or a deterministic error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub revision: Revision,
    pub result: Result<Response, MvccError>,
}
