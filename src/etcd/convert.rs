//! Conversions between etcd's wire types and the store's vocabulary, in one place.
//!
//! Invariant: malformed wire input (unknown enum values, a compare without a target)
//! becomes an `InvalidArgument` here; nothing past this file sees protobuf types.

use tonic::Status;

use super::proto::etcdserverpb as pb;
use super::proto::mvccpb;
use crate::mvcc::{
    self, Compare, CompareResult, CompareTarget, DeleteRangeRequest, DeleteRangeResponse, Event,
    EventKind, KeyRange, KeyValue, PutRequest, PutResponse, RangeRequest, RangeResponse, RequestOp,
    ResponseOp, SortOrder, SortTarget, TxnRequest, TxnResponse,
};
use crate::store::{Header, MemberInfo};

pub fn header(h: Header) -> Option<pb::ResponseHeader> {
    Some(pb::ResponseHeader {
        cluster_id: h.cluster_id,
        member_id: h.member_id,
        revision: h.revision,
        raft_term: h.raft_term,
    })
}

pub fn kv(kv: KeyValue) -> mvccpb::KeyValue {
    mvccpb::KeyValue {
        key: kv.key,
        create_revision: kv.create_revision,
        mod_revision: kv.mod_revision,
        version: kv.version,
        value: kv.value,
        lease: kv.lease,
    }
}

pub fn event(ev: Event, with_prev: bool) -> mvccpb::Event {
    mvccpb::Event {
        r#type: match ev.kind {
            EventKind::Put => mvccpb::event::EventType::Put as i32,
            EventKind::Delete => mvccpb::event::EventType::Delete as i32,
        },
        kv: Some(kv(ev.kv)),
        prev_kv: if with_prev { ev.prev_kv.map(kv) } else { None },
    }
}

fn invalid(what: &str) -> Status {
    Status::invalid_argument(format!("etcdserver: {what}"))
}

pub fn range_request(r: pb::RangeRequest) -> Result<RangeRequest, Status> {
    Ok(RangeRequest {
        range: KeyRange::new(r.key, r.range_end),
        limit: r.limit,
        revision: r.revision,
        sort_order: match pb::range_request::SortOrder::try_from(r.sort_order) {
            Ok(pb::range_request::SortOrder::None) => SortOrder::None,
            Ok(pb::range_request::SortOrder::Ascend) => SortOrder::Ascend,
            Ok(pb::range_request::SortOrder::Descend) => SortOrder::Descend,
            Err(_) => return Err(invalid("invalid sort option")),
        },
        sort_target: match pb::range_request::SortTarget::try_from(r.sort_target) {
            Ok(pb::range_request::SortTarget::Key) => SortTarget::Key,
            Ok(pb::range_request::SortTarget::Version) => SortTarget::Version,
            Ok(pb::range_request::SortTarget::Create) => SortTarget::Create,
            Ok(pb::range_request::SortTarget::Mod) => SortTarget::Mod,
            Ok(pb::range_request::SortTarget::Value) => SortTarget::Value,
            Err(_) => return Err(invalid("invalid sort option")),
        },
        serializable: r.serializable,
        keys_only: r.keys_only,
        count_only: r.count_only,
        min_mod_revision: r.min_mod_revision,
        max_mod_revision: r.max_mod_revision,
        min_create_revision: r.min_create_revision,
        max_create_revision: r.max_create_revision,
    })
}

pub fn range_response(h: Header, r: RangeResponse) -> pb::RangeResponse {
    pb::RangeResponse {
        header: header(h),
        kvs: r.kvs.into_iter().map(kv).collect(),
        more: r.more,
        count: r.count,
    }
}

pub fn put_request(r: pb::PutRequest) -> PutRequest {
    PutRequest {
        key: r.key,
        value: r.value,
        lease: r.lease,
        prev_kv: r.prev_kv,
        ignore_value: r.ignore_value,
        ignore_lease: r.ignore_lease,
    }
}

pub fn put_response(h: Header, r: PutResponse) -> pb::PutResponse {
    pb::PutResponse {
        header: header(h),
        prev_kv: r.prev_kv.map(kv),
    }
}

pub fn delete_request(r: pb::DeleteRangeRequest) -> DeleteRangeRequest {
    DeleteRangeRequest {
        range: KeyRange::new(r.key, r.range_end),
        prev_kv: r.prev_kv,
    }
}

pub fn delete_response(h: Header, r: DeleteRangeResponse) -> pb::DeleteRangeResponse {
    pb::DeleteRangeResponse {
        header: header(h),
        deleted: r.deleted,
        prev_kvs: r.prev_kvs.into_iter().map(kv).collect(),
    }
}

fn compare(c: pb::Compare) -> Result<Compare, Status> {
    use pb::compare::{CompareResult as R, CompareTarget as T, TargetUnion as U};
    let result = match R::try_from(c.result) {
        Ok(R::Equal) => CompareResult::Equal,
        Ok(R::Greater) => CompareResult::Greater,
        Ok(R::Less) => CompareResult::Less,
        Ok(R::NotEqual) => CompareResult::NotEqual,
        Err(_) => return Err(invalid("invalid compare result")),
    };
    let target = match (T::try_from(c.target), c.target_union) {
        (Ok(T::Version), Some(U::Version(v))) => CompareTarget::Version(v),
        (Ok(T::Create), Some(U::CreateRevision(v))) => CompareTarget::Create(v),
        (Ok(T::Mod), Some(U::ModRevision(v))) => CompareTarget::Mod(v),
        (Ok(T::Value), Some(U::Value(v))) => CompareTarget::Value(v),
        (Ok(T::Lease), Some(U::Lease(v))) => CompareTarget::Lease(v),
        // proto3 drops zero-valued oneof members on some clients: a missing operand is 0.
        (Ok(T::Version), None) => CompareTarget::Version(0),
        (Ok(T::Create), None) => CompareTarget::Create(0),
        (Ok(T::Mod), None) => CompareTarget::Mod(0),
        (Ok(T::Value), None) => CompareTarget::Value(Default::default()),
        (Ok(T::Lease), None) => CompareTarget::Lease(0),
        _ => return Err(invalid("invalid compare target")),
    };
    Ok(Compare {
        result,
        target,
        range: KeyRange::new(c.key, c.range_end),
    })
}

fn request_op(op: pb::RequestOp) -> Result<RequestOp, Status> {
    use pb::request_op::Request as R;
    match op.request {
        Some(R::RequestRange(r)) => Ok(RequestOp::Range(range_request(r)?)),
        Some(R::RequestPut(r)) => Ok(RequestOp::Put(put_request(r))),
        Some(R::RequestDeleteRange(r)) => Ok(RequestOp::DeleteRange(delete_request(r))),
        Some(R::RequestTxn(r)) => Ok(RequestOp::Txn(txn_request(r)?)),
        None => Err(invalid("request op is empty")),
    }
}

pub fn txn_request(r: pb::TxnRequest) -> Result<TxnRequest, Status> {
    Ok(TxnRequest {
        compare: r
            .compare
            .into_iter()
            .map(compare)
            .collect::<Result<_, _>>()?,
        success: r
            .success
            .into_iter()
            .map(request_op)
            .collect::<Result<_, _>>()?,
        failure: r
            .failure
            .into_iter()
            .map(request_op)
            .collect::<Result<_, _>>()?,
    })
}

fn response_op(h: Header, op: ResponseOp) -> pb::ResponseOp {
    use pb::response_op::Response as R;
    let response = match op {
        ResponseOp::Range(r) => R::ResponseRange(range_response(h, r)),
        ResponseOp::Put(r) => R::ResponsePut(put_response(h, r)),
        ResponseOp::DeleteRange(r) => R::ResponseDeleteRange(delete_response(h, r)),
        ResponseOp::Txn(r) => R::ResponseTxn(txn_response(h, r)),
    };
    pb::ResponseOp {
        response: Some(response),
    }
}

pub fn txn_response(h: Header, r: TxnResponse) -> pb::TxnResponse {
    pb::TxnResponse {
        header: header(h),
        succeeded: r.succeeded,
        responses: r
            .responses
            .into_iter()
            .map(|op| response_op(h, op))
            .collect(),
    }
}

pub fn member(m: &MemberInfo) -> pb::Member {
    pb::Member {
        id: m.id,
        name: m.member.name.clone(),
        peer_ur_ls: m.member.peer_urls.clone(),
        client_ur_ls: m.member.client_urls.clone(),
        is_learner: m.is_learner,
    }
}

pub fn alarm_type(t: i32) -> Result<Option<mvcc::AlarmType>, Status> {
    match pb::AlarmType::try_from(t) {
        Ok(pb::AlarmType::None) => Ok(None),
        Ok(pb::AlarmType::Nospace) => Ok(Some(mvcc::AlarmType::NoSpace)),
        Ok(pb::AlarmType::Corrupt) => Ok(Some(mvcc::AlarmType::Corrupt)),
        Err(_) => Err(invalid("invalid alarm type")),
    }
}

pub fn alarm_member(a: mvcc::AlarmMember) -> pb::AlarmMember {
    pb::AlarmMember {
        member_id: a.member_id,
        alarm: match a.alarm {
            mvcc::AlarmType::NoSpace => pb::AlarmType::Nospace as i32,
            mvcc::AlarmType::Corrupt => pb::AlarmType::Corrupt as i32,
        },
    }
}
