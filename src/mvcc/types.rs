//! The vocabulary of the MVCC store: key-values, events and the read and write
//! requests with etcd's v3 semantics, free of any wire encoding.
//!
//! These types are what the Raft log carries and what the etcd face converts to and
//! from protobuf; they never name sled, tonic or openraft.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// The store's one global revision counter, raised by every write transaction.
pub type Revision = i64;

/// A lease identifier; 0 means "no lease".
pub type LeaseId = i64;

/// A member identifier (etcd's 64-bit member ID, also the Raft node id).
pub type MemberId = u64;

/// One version of one key, as etcd's `mvccpb.KeyValue`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    pub key: Bytes,
    /// Revision of the put that created the key's current generation.
    pub create_revision: Revision,
    /// Revision of the last write to the key.
    pub mod_revision: Revision,
    /// Number of puts since the key was created; reset to 0 by a delete.
    pub version: i64,
    pub value: Bytes,
    pub lease: LeaseId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    Put,
    Delete,
}

/// A change to one key, emitted by apply in revision order.
///
/// For a delete, `kv` holds the key and the deleting revision as `mod_revision`, with
/// every other field zero, exactly as etcd reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub kv: KeyValue,
    /// The key's previous version, if it had one (always filled by apply and by
    /// history reads; a watcher that did not ask for it drops it).
    pub prev_kv: Option<KeyValue>,
}

/// A key range in etcd's convention: an empty `range_end` is the single key `key`;
/// `range_end == "\0"` means every key `>= key`; otherwise `[key, range_end)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRange {
    pub key: Bytes,
    pub range_end: Bytes,
}

impl KeyRange {
    pub fn new(key: impl Into<Bytes>, range_end: impl Into<Bytes>) -> Self {
        KeyRange {
            key: key.into(),
            range_end: range_end.into(),
        }
    }

    /// The range of every key that starts with `prefix` (etcdctl's `--prefix`).
    pub fn prefix(prefix: impl Into<Bytes>) -> Self {
        let key: Bytes = prefix.into();
        let range_end = prefix_end(&key);
        KeyRange { key, range_end }
    }

    pub fn is_single_key(&self) -> bool {
        self.range_end.is_empty()
    }

    /// True if `k` falls in this range.
    pub fn contains(&self, k: &[u8]) -> bool {
        if self.range_end.is_empty() {
            return k == self.key.as_ref();
        }
        if k < self.key.as_ref() {
            return false;
        }
        self.range_end.as_ref() == [0] || k < self.range_end.as_ref()
    }

    /// The exclusive upper bound, `None` when the range is unbounded above.
    pub fn end_bound(&self) -> Option<&[u8]> {
        if self.range_end.as_ref() == [0] {
            None
        } else {
            Some(&self.range_end)
        }
    }
}

/// The smallest key greater than every key that starts with `prefix`;
/// `"\0"` (everything) when no such key exists (empty or all-0xff prefix).
pub fn prefix_end(prefix: &[u8]) -> Bytes {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Bytes::from(end);
        }
    }
    Bytes::from_static(&[0])
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortOrder {
    #[default]
    None,
    Ascend,
    Descend,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortTarget {
    #[default]
    Key,
    Version,
    Create,
    Mod,
    Value,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeRequest {
    pub range: KeyRange,
    /// At most this many kvs; 0 = no limit.
    pub limit: i64,
    /// Read at this revision; 0 or less = the current revision.
    pub revision: Revision,
    pub sort_order: SortOrder,
    pub sort_target: SortTarget,
    /// Serve from local state without a read index (not linearizable).
    pub serializable: bool,
    pub keys_only: bool,
    pub count_only: bool,
    /// Filters; 0 = no filter.
    pub min_mod_revision: Revision,
    pub max_mod_revision: Revision,
    pub min_create_revision: Revision,
    pub max_create_revision: Revision,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeResponse {
    pub kvs: Vec<KeyValue>,
    /// More kvs matched than `limit` allowed.
    pub more: bool,
    /// Number of kvs that matched, before `limit`.
    pub count: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutRequest {
    pub key: Bytes,
    pub value: Bytes,
    pub lease: LeaseId,
    pub prev_kv: bool,
    /// Keep the current value (the key must exist).
    pub ignore_value: bool,
    /// Keep the current lease (the key must exist).
    pub ignore_lease: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutResponse {
    pub prev_kv: Option<KeyValue>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRangeRequest {
    pub range: KeyRange,
    pub prev_kv: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteRangeResponse {
    pub deleted: i64,
    pub prev_kvs: Vec<KeyValue>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareResult {
    Equal,
    Greater,
    Less,
    NotEqual,
}

/// What a compare looks at, with the operand it is compared against.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CompareTarget {
    Version(i64),
    Create(Revision),
    Mod(Revision),
    Value(Bytes),
    Lease(LeaseId),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compare {
    pub result: CompareResult,
    pub target: CompareTarget,
    /// The key, or with a non-empty `range_end` every key in the range (all must pass).
    pub range: KeyRange,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestOp {
    Range(RangeRequest),
    Put(PutRequest),
    DeleteRange(DeleteRangeRequest),
    Txn(TxnRequest),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseOp {
    Range(RangeResponse),
    Put(PutResponse),
    DeleteRange(DeleteRangeResponse),
    Txn(TxnResponse),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnRequest {
    pub compare: Vec<Compare>,
    pub success: Vec<RequestOp>,
    pub failure: Vec<RequestOp>,
}

impl TxnRequest {
    /// True if no branch (recursively) writes: such a txn is served as a read.
    pub fn is_read_only(&self) -> bool {
        fn ops_read_only(ops: &[RequestOp]) -> bool {
            ops.iter().all(|op| match op {
                RequestOp::Range(_) => true,
                RequestOp::Txn(t) => t.is_read_only(),
                RequestOp::Put(_) | RequestOp::DeleteRange(_) => false,
            })
        }
        ops_read_only(&self.success) && ops_read_only(&self.failure)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnResponse {
    pub succeeded: bool,
    pub responses: Vec<ResponseOp>,
}

/// A granted lease as the state machine records it. Remaining time is not state:
/// the leader's lessor tracks expiry with its own clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub id: LeaseId,
    /// The TTL in seconds the lease was granted with.
    pub ttl: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AlarmType {
    NoSpace,
    Corrupt,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AlarmMember {
    pub member_id: MemberId,
    pub alarm: AlarmType,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlarmAction {
    Activate,
    Deactivate,
}
