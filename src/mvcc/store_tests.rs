//! Unit tests of `MvccStore`, one group per rule of etcd's semantics, plus durability
//! (reopen, export/import, foreign directories) and concurrency of reads with apply.
//!
//! Invariant: every test works in its own temporary directory and waits on state with
//! deadlines, never by sleeping.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::*;

pub(super) fn open_tmp() -> (tempfile::TempDir, MvccStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = MvccStore::open(dir.path(), &StoreOptions::default()).expect("open");
    (dir, store)
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn put(k: &str, v: &str) -> Request {
    Request::Put(PutRequest {
        key: b(k),
        value: b(v),
        ..PutRequest::default()
    })
}

fn put_req(k: &str, v: &str) -> PutRequest {
    PutRequest {
        key: b(k),
        value: b(v),
        ..PutRequest::default()
    }
}

fn del(k: &str, end: &str) -> Request {
    Request::DeleteRange(DeleteRangeRequest {
        range: KeyRange::new(b(k), b(end)),
        prev_kv: true,
    })
}

fn one(store: &MvccStore, req: Request) -> Applied {
    let out = store.apply([&req], None).expect("apply");
    out.applied.into_iter().next().expect("one result")
}

fn ok(store: &MvccStore, req: Request) -> Response {
    let a = one(store, req);
    a.result.expect("request succeeds")
}

fn err(store: &MvccStore, req: Request) -> MvccError {
    one(store, req).result.expect_err("request fails")
}

fn get(store: &MvccStore, k: &str) -> Option<KeyValue> {
    let r = store
        .range(&RangeRequest {
            range: KeyRange::new(b(k), Bytes::new()),
            ..RangeRequest::default()
        })
        .expect("range");
    r.kvs.into_iter().next()
}

fn range(store: &MvccStore, req: RangeRequest) -> RangeResponse {
    store.range(&req).expect("range")
}

fn all() -> KeyRange {
    KeyRange::new(&b"\0"[..], &b"\0"[..])
}

fn keys(r: &RangeResponse) -> Vec<String> {
    r.kvs
        .iter()
        .map(|kv| String::from_utf8_lossy(&kv.key).into_owned())
        .collect()
}

fn cmp(k: &str, result: CompareResult, target: CompareTarget) -> Compare {
    Compare {
        result,
        target,
        range: KeyRange::new(b(k), Bytes::new()),
    }
}

fn txn(compare: Vec<Compare>, success: Vec<RequestOp>, failure: Vec<RequestOp>) -> TxnRequest {
    TxnRequest {
        compare,
        success,
        failure,
    }
}

fn txn_resp(r: Response) -> TxnResponse {
    match r {
        Response::Txn(t) => t,
        other => panic!("expected a txn response, got {other:?}"),
    }
}

#[test]
fn fresh_store_starts_at_revision_one() {
    tracing::info!("a fresh store is at revision 1, never compacted, empty");
    let (_d, s) = open_tmp();
    assert_eq!(s.current_revision(), 1);
    assert_eq!(s.compact_revision(), 0);
    let r = range(
        &s,
        RangeRequest {
            range: all(),
            ..RangeRequest::default()
        },
    );
    assert_eq!((r.kvs.len(), r.count, r.more), (0, 0, false));
    assert_eq!(s.meta().expect("meta"), None);
    assert!(s.leases().is_empty() && s.alarms().is_empty());
}

#[test]
fn put_sets_versions_revisions_and_events() {
    let (_d, s) = open_tmp();
    let a = one(&s, put("a", "1"));
    assert_eq!(a.revision, 2);
    let out = s
        .apply(
            [
                &put("a", "2"),
                &Request::Put(PutRequest {
                    prev_kv: true,
                    ..put_req("a", "3")
                }),
            ],
            Some(b"m1"),
        )
        .expect("apply");
    assert_eq!(out.revision, 4);
    assert_eq!(out.applied[0].revision, 3);
    assert_eq!(out.applied[1].revision, 4);
    match &out.applied[1].result {
        Ok(Response::Put(p)) => {
            let prev = p.prev_kv.as_ref().expect("prev_kv asked for");
            assert_eq!(
                (prev.value.as_ref(), prev.version, prev.mod_revision),
                (&b"2"[..], 2, 3)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(out.events.len(), 2);
    let e = &out.events[1];
    assert_eq!(e.kind, EventKind::Put);
    assert_eq!(
        (e.kv.create_revision, e.kv.mod_revision, e.kv.version),
        (2, 4, 3)
    );
    assert_eq!(e.prev_kv.as_ref().map(|p| p.mod_revision), Some(3));
    let kv = get(&s, "a").expect("a");
    assert_eq!(
        (
            kv.value.as_ref(),
            kv.version,
            kv.create_revision,
            kv.mod_revision
        ),
        (&b"3"[..], 3, 2, 4)
    );
    assert_eq!(s.meta().expect("meta").as_deref(), Some(&b"m1"[..]));

    // First put of a generation has no prev_kv in its event.
    let out = s.apply([&put("new", "x")], None).expect("apply");
    assert_eq!(out.events[0].prev_kv, None);
}

#[test]
fn delete_range_counts_and_only_raises_revision_when_it_deletes() {
    let (_d, s) = open_tmp();
    s.apply(
        [
            &put("a", "1"),
            &put("b", "2"),
            &put("c", "3"),
            &put("d", "4"),
        ],
        None,
    )
    .expect("apply");
    assert_eq!(s.current_revision(), 5);
    let a = one(&s, del("x", ""));
    assert_eq!(a.revision, 5, "deleting nothing keeps the revision");
    match a.result {
        Ok(Response::DeleteRange(d)) => assert_eq!(d.deleted, 0),
        other => panic!("{other:?}"),
    }
    let out = s.apply([&del("b", "d")], None).expect("apply");
    assert_eq!(out.revision, 6);
    match &out.applied[0].result {
        Ok(Response::DeleteRange(d)) => {
            assert_eq!(d.deleted, 2);
            let prev: Vec<_> = d.prev_kvs.iter().map(|kv| kv.key.clone()).collect();
            assert_eq!(prev, vec![b("b"), b("c")]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(out.events.len(), 2);
    let e = &out.events[0];
    assert_eq!(e.kind, EventKind::Delete);
    assert_eq!(
        e.kv,
        KeyValue {
            key: b("b"),
            mod_revision: 6,
            ..KeyValue::default()
        }
    );
    assert_eq!(e.prev_kv.as_ref().map(|p| p.value.clone()), Some(b("2")));
    // "\0" as range_end: every key >= key.
    let out = s.apply([&del("a", "\0")], None).expect("apply");
    assert_eq!(out.events.len(), 2, "a and d");
    assert_eq!(
        range(
            &s,
            RangeRequest {
                range: all(),
                ..RangeRequest::default()
            }
        )
        .count,
        0
    );
    // Reads at older revisions still see the deleted keys.
    let old = range(
        &s,
        RangeRequest {
            range: all(),
            revision: 5,
            ..RangeRequest::default()
        },
    );
    assert_eq!(keys(&old), vec!["a", "b", "c", "d"]);
    // A recreated key starts a new generation.
    ok(&s, put("b", "again"));
    let kv = get(&s, "b").expect("b");
    assert_eq!((kv.version, kv.create_revision), (1, 8));
}

#[test]
fn range_limit_count_sort_and_filters() {
    let (_d, s) = open_tmp();
    // rev 2: a, rev 3: b, rev 4: c, rev 5: a again, rev 6: d
    for (k, v) in [("a", "z"), ("b", "y"), ("c", "x"), ("a", "w"), ("d", "v")] {
        ok(&s, put(k, v));
    }
    let base = RangeRequest {
        range: all(),
        ..RangeRequest::default()
    };
    let r = range(
        &s,
        RangeRequest {
            limit: 2,
            ..base.clone()
        },
    );
    assert_eq!(
        (keys(&r), r.more, r.count),
        (vec!["a".into(), "b".into()], true, 4)
    );
    let r = range(
        &s,
        RangeRequest {
            limit: 4,
            ..base.clone()
        },
    );
    assert!(!r.more);
    let r = range(
        &s,
        RangeRequest {
            count_only: true,
            ..base.clone()
        },
    );
    assert_eq!((r.kvs.len(), r.count, r.more), (0, 4, false));
    let r = range(
        &s,
        RangeRequest {
            keys_only: true,
            ..base.clone()
        },
    );
    assert!(r.kvs.iter().all(|kv| kv.value.is_empty() && kv.version > 0));

    let sorted = |order, target| {
        keys(&range(
            &s,
            RangeRequest {
                sort_order: order,
                sort_target: target,
                ..base.clone()
            },
        ))
    };
    assert_eq!(
        sorted(SortOrder::Descend, SortTarget::Key),
        ["d", "c", "b", "a"]
    );
    assert_eq!(
        sorted(SortOrder::None, SortTarget::Value),
        ["d", "a", "c", "b"],
        "non-key target defaults to ascending"
    );
    assert_eq!(
        sorted(SortOrder::Descend, SortTarget::Value),
        ["b", "c", "a", "d"]
    );
    assert_eq!(
        sorted(SortOrder::Ascend, SortTarget::Mod),
        ["b", "c", "a", "d"]
    );
    assert_eq!(
        sorted(SortOrder::Descend, SortTarget::Create),
        ["d", "c", "b", "a"]
    );
    assert_eq!(
        sorted(SortOrder::Descend, SortTarget::Version),
        ["a", "b", "c", "d"],
        "ties keep key order"
    );

    let r = range(
        &s,
        RangeRequest {
            sort_order: SortOrder::Descend,
            sort_target: SortTarget::Mod,
            limit: 1,
            ..base.clone()
        },
    );
    assert_eq!((keys(&r), r.more), (vec!["d".to_string()], true));

    // Filters prune kvs; count stays the number of keys in the range, as etcd counts.
    let r = range(
        &s,
        RangeRequest {
            min_mod_revision: 4,
            ..base.clone()
        },
    );
    assert_eq!(
        (keys(&r), r.count),
        (vec!["a".into(), "c".into(), "d".into()], 4)
    );
    let r = range(
        &s,
        RangeRequest {
            max_create_revision: 3,
            ..base.clone()
        },
    );
    assert_eq!(keys(&r), ["a", "b"]);
    let r = range(
        &s,
        RangeRequest {
            min_create_revision: 3,
            max_mod_revision: 4,
            limit: 1,
            ..base.clone()
        },
    );
    assert_eq!((keys(&r), r.more), (vec!["b".into()], true));

    // Sub-ranges and history.
    let r = range(
        &s,
        RangeRequest {
            range: KeyRange::new(b("b"), b("d")),
            ..RangeRequest::default()
        },
    );
    assert_eq!(keys(&r), ["b", "c"]);
    let r = range(
        &s,
        RangeRequest {
            range: KeyRange::prefix(b("")),
            ..RangeRequest::default()
        },
    );
    assert_eq!(r.count, 4, "empty prefix is everything");
    let r = range(
        &s,
        RangeRequest {
            range: KeyRange::new(b("c"), b("a")),
            ..RangeRequest::default()
        },
    );
    assert_eq!(r.count, 0, "range_end below key is empty");
    let r = range(
        &s,
        RangeRequest {
            revision: 3,
            ..base.clone()
        },
    );
    assert_eq!(keys(&r), ["a", "b"]);
    assert_eq!(r.kvs[0].value, b("z"));
    assert_eq!(
        s.range(&RangeRequest {
            revision: 7,
            ..base.clone()
        }),
        Err(MvccError::FutureRevision)
    );
}

#[test]
fn put_ignore_value_and_lease_need_the_key() {
    let (_d, s) = open_tmp();
    ok(&s, Request::LeaseGrant { id: 5, ttl: 10 });
    let ignore_value = |k: &str| {
        Request::Put(PutRequest {
            ignore_value: true,
            ..put_req(k, "")
        })
    };
    assert_eq!(err(&s, ignore_value("a")), MvccError::KeyNotFound);
    assert_eq!(s.current_revision(), 1);
    ok(
        &s,
        Request::Put(PutRequest {
            lease: 5,
            ..put_req("a", "v1")
        }),
    );
    ok(&s, ignore_value("a"));
    let kv = get(&s, "a").expect("a");
    assert_eq!(
        (kv.value.as_ref(), kv.lease, kv.version),
        (&b"v1"[..], 0, 2),
        "ignore_value with lease 0 detaches"
    );
    ok(
        &s,
        Request::Put(PutRequest {
            lease: 5,
            ..put_req("a", "v2")
        }),
    );
    ok(
        &s,
        Request::Put(PutRequest {
            ignore_lease: true,
            ..put_req("a", "v3")
        }),
    );
    let kv = get(&s, "a").expect("a");
    assert_eq!((kv.value.as_ref(), kv.lease), (&b"v3"[..], 5));
    assert_eq!(s.lease_keys(5), vec![b("a")]);
    assert_eq!(
        err(
            &s,
            Request::Put(PutRequest {
                ignore_lease: true,
                ..put_req("zz", "")
            })
        ),
        MvccError::KeyNotFound
    );
}

#[test]
fn leases_attach_detach_and_revoke_in_one_revision() {
    let (_d, s) = open_tmp();
    assert_eq!(
        err(
            &s,
            Request::Put(PutRequest {
                lease: 9,
                ..put_req("a", "")
            })
        ),
        MvccError::LeaseNotFound
    );
    assert_eq!(
        ok(&s, Request::LeaseGrant { id: 9, ttl: 30 }),
        Response::LeaseGrant { id: 9, ttl: 30 }
    );
    assert_eq!(s.current_revision(), 1, "a grant writes no key");
    assert_eq!(
        err(&s, Request::LeaseGrant { id: 9, ttl: 1 }),
        MvccError::LeaseExists
    );
    ok(&s, Request::LeaseGrant { id: 10, ttl: 5 });
    assert_eq!(
        s.leases(),
        vec![Lease { id: 9, ttl: 30 }, Lease { id: 10, ttl: 5 }]
    );
    for k in ["a", "b", "c"] {
        ok(
            &s,
            Request::Put(PutRequest {
                lease: 9,
                ..put_req(k, "v")
            }),
        );
    }
    ok(
        &s,
        Request::Put(PutRequest {
            lease: 10,
            ..put_req("b", "moved")
        }),
    );
    ok(&s, put("c", "no lease"));
    assert_eq!(s.lease_keys(9), vec![b("a")]);
    assert_eq!(s.lease_keys(10), vec![b("b")]);
    let before = s.current_revision();
    let out = s
        .apply(
            [
                &Request::LeaseRevoke { id: 9 },
                &Request::LeaseRevoke { id: 10 },
            ],
            None,
        )
        .expect("apply");
    assert_eq!(
        out.revision,
        before + 2,
        "each revoke deletes its keys in one revision"
    );
    assert_eq!(
        out.events
            .iter()
            .map(|e| e.kv.mod_revision)
            .collect::<Vec<_>>(),
        vec![before + 1, before + 2]
    );
    assert!(get(&s, "a").is_none() && get(&s, "b").is_none());
    assert!(get(&s, "c").is_some());
    assert!(s.leases().is_empty());
    assert_eq!(
        err(&s, Request::LeaseRevoke { id: 9 }),
        MvccError::LeaseNotFound
    );
    // A lease with no keys revokes without a new revision.
    ok(&s, Request::LeaseGrant { id: 11, ttl: 5 });
    let a = one(&s, Request::LeaseRevoke { id: 11 });
    assert_eq!(
        (a.revision, a.result),
        (before + 2, Ok(Response::LeaseRevoke))
    );
    assert_eq!(
        err(&s, Request::LeaseGrant { id: 0, ttl: 5 }),
        MvccError::LeaseNotFound
    );
}

#[test]
fn txn_compares_follow_etcd_rules() {
    let (_d, s) = open_tmp();
    ok(&s, put("a", "1"));
    ok(&s, put("b", "2"));
    let check = |c: Compare| txn_resp(ok(&s, Request::Txn(txn(vec![c], vec![], vec![])))).succeeded;
    use CompareResult::*;
    use CompareTarget::*;
    assert!(check(cmp("missing", Equal, Version(0))));
    assert!(check(cmp("missing", Equal, Mod(0))));
    assert!(check(cmp("missing", Equal, Create(0))));
    assert!(check(cmp("missing", Equal, Lease(0))));
    assert!(
        !check(cmp("missing", Equal, Value(Bytes::new()))),
        "VALUE on a missing key is false"
    );
    assert!(!check(cmp("missing", NotEqual, Value(b("x")))));
    assert!(check(cmp("a", Equal, Value(b("1")))));
    assert!(check(cmp("a", Greater, Value(b("0")))));
    assert!(check(cmp("a", Less, Mod(3))));
    assert!(check(cmp("a", Equal, Create(2))));
    assert!(check(cmp("b", NotEqual, Version(2))));
    let range_cmp = |end: &str, c: CompareResult, t| Compare {
        result: c,
        target: t,
        range: KeyRange::new(b("a"), b(end)),
    };
    assert!(
        check(range_cmp("c", Greater, Mod(1))),
        "every key in the range passes"
    );
    assert!(!check(range_cmp("c", Equal, Mod(2))), "b fails");
    assert!(!check(range_cmp("\0", Equal, Value(b("1")))));
    let empty = Compare {
        result: Equal,
        target: Version(0),
        range: KeyRange::new(b("x"), b("y")),
    };
    assert!(check(empty.clone()), "empty range compares as a zero kv");
    assert!(!check(Compare {
        target: Value(Bytes::new()),
        ..empty
    }));
    assert_eq!(
        s.current_revision(),
        3,
        "read-only txns do not raise the revision"
    );
}

#[test]
fn txn_branches_nesting_and_read_your_writes() {
    let (_d, s) = open_tmp();
    ok(&s, put("k", "old"));
    let create = |k: &str, v: &str| {
        Request::Txn(txn(
            vec![cmp(k, CompareResult::Equal, CompareTarget::Mod(0))],
            vec![RequestOp::Put(put_req(k, v))],
            vec![RequestOp::Range(RangeRequest {
                range: KeyRange::new(b(k), Bytes::new()),
                ..RangeRequest::default()
            })],
        ))
    };
    let t = txn_resp(ok(&s, create("k", "new")));
    assert!(!t.succeeded);
    match &t.responses[0] {
        ResponseOp::Range(r) => assert_eq!(r.kvs[0].value, b("old")),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.current_revision(), 2);
    let a = one(&s, create("k2", "v"));
    assert_eq!(a.revision, 3);
    assert!(txn_resp(a.result.expect("ok")).succeeded);

    // One revision for all writes; later ops see earlier ones; nested compares see the
    // state before the txn (etcd's compareToPath).
    let t = txn(
        vec![],
        vec![
            RequestOp::Put(put_req("x", "1")),
            RequestOp::Put(put_req("x", "2")),
            RequestOp::Range(RangeRequest {
                range: KeyRange::new(b("x"), Bytes::new()),
                ..RangeRequest::default()
            }),
            RequestOp::Txn(txn(
                vec![cmp("x", CompareResult::Equal, CompareTarget::Version(0))],
                vec![RequestOp::DeleteRange(DeleteRangeRequest {
                    range: KeyRange::new(b("k"), Bytes::new()),
                    prev_kv: false,
                })],
                vec![],
            )),
        ],
        vec![],
    );
    let out = s.apply([&Request::Txn(t)], None).expect("apply");
    assert_eq!(out.revision, 4);
    let t = txn_resp(out.applied[0].result.clone().expect("ok"));
    match &t.responses[2] {
        ResponseOp::Range(r) => {
            assert_eq!(
                (
                    r.kvs[0].value.as_ref(),
                    r.kvs[0].version,
                    r.kvs[0].mod_revision
                ),
                (&b"2"[..], 2, 4)
            );
        }
        other => panic!("{other:?}"),
    }
    match &t.responses[3] {
        ResponseOp::Txn(n) => {
            assert!(n.succeeded, "x did not exist before the txn");
            assert_eq!(
                n.responses,
                vec![ResponseOp::DeleteRange(DeleteRangeResponse {
                    deleted: 1,
                    prev_kvs: vec![]
                })]
            );
        }
        other => panic!("{other:?}"),
    }
    let subs: Vec<_> = out
        .events
        .iter()
        .map(|e| (e.kind, e.kv.mod_revision))
        .collect();
    assert_eq!(
        subs,
        vec![
            (EventKind::Put, 4),
            (EventKind::Put, 4),
            (EventKind::Delete, 4)
        ]
    );
    assert_eq!(
        out.events[1].prev_kv.as_ref().map(|p| p.value.clone()),
        Some(b("1"))
    );
    assert!(get(&s, "k").is_none());
}

#[test]
fn failing_txn_writes_nothing() {
    let (_d, s) = open_tmp();
    ok(&s, put("a", "1"));
    let before = s.hash().expect("hash");
    // A nested put with a missing lease fails the whole txn before anything is written.
    let t = txn(
        vec![],
        vec![
            RequestOp::Put(put_req("b", "1")),
            RequestOp::Txn(txn(
                vec![],
                vec![RequestOp::Put(PutRequest {
                    lease: 77,
                    ..put_req("c", "")
                })],
                vec![],
            )),
        ],
        vec![],
    );
    assert_eq!(err(&s, Request::Txn(t)), MvccError::LeaseNotFound);
    // A put with ignore_value on a key the same txn deleted fails at execution: rolled back.
    let t = txn(
        vec![],
        vec![
            RequestOp::DeleteRange(DeleteRangeRequest {
                range: KeyRange::new(b("a"), Bytes::new()),
                prev_kv: false,
            }),
            RequestOp::Put(PutRequest {
                ignore_value: true,
                ..put_req("a", "")
            }),
        ],
        vec![],
    );
    let out = s
        .apply([&Request::Txn(t), &put("z", "after")], None)
        .expect("apply");
    assert_eq!(out.applied[0].result, Err(MvccError::KeyNotFound));
    assert_eq!(out.applied[0].revision, 2);
    assert_eq!(
        out.applied[1].revision, 3,
        "the next request takes the next revision"
    );
    assert_eq!(out.events.len(), 1);
    assert_eq!(get(&s, "a").map(|kv| kv.version), Some(1));
    assert!(get(&s, "b").is_none());
    // Range checks: a future or compacted revision anywhere on the path fails the txn.
    let t = txn(
        vec![],
        vec![
            RequestOp::Put(put_req("q", "")),
            RequestOp::Range(RangeRequest {
                revision: 99,
                ..RangeRequest::default()
            }),
        ],
        vec![],
    );
    assert_eq!(err(&s, Request::Txn(t)), MvccError::FutureRevision);
    ok(&s, Request::Compact { revision: 2 });
    let t = txn(
        vec![],
        vec![RequestOp::Range(RangeRequest {
            range: all(),
            revision: 1,
            ..RangeRequest::default()
        })],
        vec![],
    );
    assert_eq!(
        err(&s, Request::Txn(t)),
        MvccError::Compacted {
            compact_revision: 2
        }
    );
    assert_ne!(
        s.hash().expect("hash"),
        before,
        "z and the compaction were written"
    );
    assert!(get(&s, "q").is_none());
}

#[test]
fn read_txn_matches_applied_read_only_txn() {
    let (_d, s) = open_tmp();
    ok(&s, put("a", "1"));
    let t = txn(
        vec![cmp("a", CompareResult::Equal, CompareTarget::Value(b("1")))],
        vec![
            RequestOp::Range(RangeRequest {
                range: all(),
                ..RangeRequest::default()
            }),
            RequestOp::Txn(txn(
                vec![cmp("b", CompareResult::Greater, CompareTarget::Version(0))],
                vec![],
                vec![RequestOp::Range(RangeRequest {
                    range: all(),
                    revision: 1,
                    ..RangeRequest::default()
                })],
            )),
        ],
        vec![],
    );
    let (rev, resp) = s.read_txn(&t).expect("read txn");
    assert_eq!(rev, 2);
    assert_eq!(Response::Txn(resp), ok(&s, Request::Txn(t)));
    let writing = txn(vec![], vec![RequestOp::Put(put_req("a", ""))], vec![]);
    assert!(s.read_txn(&writing).is_err());
}

#[test]
fn compaction_rules() {
    let (_d, s) = open_tmp();
    // 2: put a, 3: put a, 4: put b, 5: del b, 6: put c
    ok(&s, put("a", "1"));
    ok(&s, put("a", "2"));
    ok(&s, put("b", "1"));
    ok(&s, del("b", ""));
    ok(&s, put("c", "1"));
    let hash_before = s.hash_kv(0).expect("hash");
    assert_eq!(
        err(&s, Request::Compact { revision: 7 }),
        MvccError::FutureRevision
    );
    assert_eq!(
        one(&s, Request::Compact { revision: 5 }).revision,
        6,
        "compaction keeps the revision"
    );
    assert_eq!(s.compact_revision(), 5);
    assert_eq!(
        err(&s, Request::Compact { revision: 5 }),
        MvccError::Compacted {
            compact_revision: 5
        }
    );
    assert_eq!(
        err(&s, Request::Compact { revision: 3 }),
        MvccError::Compacted {
            compact_revision: 5
        }
    );
    // Reads at the compact revision still work; below fail.
    let at5 = range(
        &s,
        RangeRequest {
            range: all(),
            revision: 5,
            ..RangeRequest::default()
        },
    );
    assert_eq!(keys(&at5), ["a"]);
    assert_eq!(at5.kvs[0].value, b("2"));
    assert_eq!(
        s.range(&RangeRequest {
            range: all(),
            revision: 4,
            ..RangeRequest::default()
        }),
        Err(MvccError::Compacted {
            compact_revision: 5
        })
    );
    // History: only a@3 (kept), c@6 remain; the tombstone at 5 went too.
    let ev = s.events(&all(), 5, 100, 0).expect("events");
    assert_eq!(
        ev.iter().map(|e| e.kv.mod_revision).collect::<Vec<_>>(),
        vec![6]
    );
    assert_eq!(
        s.events(&all(), 4, 100, 0),
        Err(MvccError::Compacted {
            compact_revision: 5
        })
    );
    let h = s.hash_kv(0).expect("hash");
    assert_eq!((h.compact_revision, h.hash_revision), (5, 6));
    assert_ne!(h.hash, hash_before.hash);
    assert_eq!(
        s.hash_kv(4),
        Err(MvccError::Compacted {
            compact_revision: 5
        })
    );
    assert_eq!(s.hash_kv(9), Err(MvccError::FutureRevision));
    // Versions continue after compaction.
    ok(&s, put("a", "3"));
    let kv = get(&s, "a").expect("a");
    assert_eq!((kv.version, kv.create_revision), (3, 2));
    // Compact and write in one batch; the compacted record written by the batch is removed.
    let out = s
        .apply(
            [
                &put("d", "1"),
                &put("d", "2"),
                &Request::Compact { revision: 9 },
                &put("d", "3"),
            ],
            None,
        )
        .expect("apply");
    assert!(out.applied.iter().all(|a| a.result.is_ok()));
    let ev = s.events(&all(), 9, 100, 0).expect("events");
    let revs: Vec<_> = ev.iter().map(|e| e.kv.mod_revision).collect();
    assert_eq!(revs, vec![9, 10]);
    assert_eq!(ev[1].prev_kv.as_ref().map(|p| p.mod_revision), Some(9));
}

#[test]
fn nospace_alarm_blocks_growth_only() {
    let (_d, s) = open_tmp();
    ok(&s, put("a", "1"));
    let alarm = AlarmMember {
        member_id: 3,
        alarm: AlarmType::NoSpace,
    };
    let r = ok(
        &s,
        Request::Alarm {
            action: AlarmAction::Activate,
            alarm,
        },
    );
    assert_eq!(r, Response::Alarm(vec![alarm]));
    assert_eq!(s.alarms(), vec![alarm]);
    assert_eq!(err(&s, put("b", "1")), MvccError::NoSpace);
    assert_eq!(
        err(&s, Request::LeaseGrant { id: 1, ttl: 1 }),
        MvccError::NoSpace
    );
    let t = txn(
        vec![],
        vec![],
        vec![RequestOp::DeleteRange(DeleteRangeRequest {
            range: KeyRange::new(b("a"), Bytes::new()),
            prev_kv: false,
        })],
    );
    assert_eq!(
        err(&s, Request::Txn(t)),
        MvccError::NoSpace,
        "a txn that may write is refused"
    );
    assert_eq!(one(&s, del("a", "")).revision, 3, "deletes are allowed");
    assert_eq!(
        ok(
            &s,
            Request::Alarm {
                action: AlarmAction::Deactivate,
                alarm
            }
        ),
        Response::Alarm(vec![])
    );
    ok(&s, put("b", "1"));
}

#[test]
fn events_respect_range_limit_and_revision_boundaries() {
    let (_d, s) = open_tmp();
    // 2: a, b, c in one txn; 3: a; 4: del a; 5: x
    let t = txn(
        vec![],
        vec![
            RequestOp::Put(put_req("a", "1")),
            RequestOp::Put(put_req("b", "1")),
            RequestOp::Put(put_req("c", "1")),
        ],
        vec![],
    );
    let applied = s
        .apply(
            [
                &Request::Txn(t),
                &put("a", "2"),
                &del("a", ""),
                &put("x", "1"),
            ],
            None,
        )
        .expect("apply");
    let ev = s.events(&all(), 1, 100, 0).expect("events");
    assert_eq!(ev, applied.events, "history equals what apply emitted");
    let ev = s.events(&all(), 2, 100, 2).expect("events");
    assert_eq!(ev.len(), 3, "a limit never splits a revision");
    let ev = s.events(&all(), 3, 100, 1).expect("events");
    assert_eq!(ev.len(), 1);
    let ev = s
        .events(&KeyRange::new(b("a"), Bytes::new()), 1, 4, 0)
        .expect("events");
    let kinds: Vec<_> = ev.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![EventKind::Put, EventKind::Put, EventKind::Delete]
    );
    assert_eq!(ev[2].prev_kv.as_ref().map(|p| p.version), Some(2));
    assert!(s.events(&all(), 6, 100, 0).expect("events").is_empty());
}

#[test]
fn reopen_restores_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (hash, kv_hash, ev) = {
        let s = MvccStore::open(dir.path(), &StoreOptions::default()).expect("open");
        ok(&s, Request::LeaseGrant { id: 4, ttl: 60 });
        ok(
            &s,
            Request::Put(PutRequest {
                lease: 4,
                ..put_req("a", "1")
            }),
        );
        ok(&s, put("b", "1"));
        ok(&s, put("b", "2"));
        ok(&s, del("b", ""));
        ok(&s, put("c", "1"));
        ok(&s, Request::Compact { revision: 4 });
        ok(
            &s,
            Request::Alarm {
                action: AlarmAction::Activate,
                alarm: AlarmMember {
                    member_id: 1,
                    alarm: AlarmType::Corrupt,
                },
            },
        );
        s.apply([], Some(b"meta!")).expect("meta");
        s.sync().expect("sync");
        (
            s.hash().expect("hash"),
            s.hash_kv(0).expect("hash_kv"),
            s.events(&all(), 4, 100, 0).expect("events"),
        )
    };
    let s = MvccStore::open(dir.path(), &StoreOptions::default()).expect("reopen");
    assert_eq!(s.hash().expect("hash"), hash);
    assert_eq!(s.hash_kv(0).expect("hash_kv"), kv_hash);
    assert_eq!((s.current_revision(), s.compact_revision()), (6, 4));
    assert_eq!(s.events(&all(), 4, 100, 0).expect("events"), ev);
    assert_eq!(s.lease_keys(4), vec![b("a")]);
    assert_eq!(s.meta().expect("meta").as_deref(), Some(&b"meta!"[..]));
    assert_eq!(s.alarms().len(), 1);
    let kv = get(&s, "b");
    assert!(kv.is_none());
    ok(&s, put("b", "3"));
    assert_eq!(
        get(&s, "b").map(|kv| (kv.version, kv.create_revision)),
        Some((1, 7))
    );
}

#[test]
fn foreign_directories_refuse_to_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("notes.txt"), b"hello").expect("write");
    let e = MvccStore::open(dir.path(), &StoreOptions::default())
        .err()
        .expect("refused");
    assert!(matches!(e, MvccError::Corrupt(_)), "{e}");
    assert_eq!(
        std::fs::read(dir.path().join("notes.txt")).expect("untouched"),
        b"hello"
    );

    // Files named like sled's but holding garbage.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("conf"), b"garbage").expect("write");
    std::fs::write(dir.path().join("db"), vec![0x5a; 4096]).expect("write");
    let e = MvccStore::open(dir.path(), &StoreOptions::default())
        .err()
        .expect("refused");
    assert!(matches!(e, MvccError::Corrupt(_)), "{e}");
    assert_eq!(
        std::fs::read(dir.path().join("conf")).expect("untouched"),
        b"garbage"
    );

    // A store whose data files vanished is refused, not silently re-created.
    let dir = tempfile::tempdir().expect("tempdir");
    drop(MvccStore::open(dir.path(), &StoreOptions::default()).expect("open"));
    std::fs::remove_file(dir.path().join("db")).expect("remove db");
    let e = MvccStore::open(dir.path(), &StoreOptions::default())
        .err()
        .expect("refused");
    assert!(matches!(e, MvccError::Corrupt(_)), "{e}");

    // Another format version.
    let dir = tempfile::tempdir().expect("tempdir");
    drop(MvccStore::open(dir.path(), &StoreOptions::default()).expect("open"));
    let marker = dir.path().join("KUBERAFT_MVCC");
    let text = std::fs::read_to_string(&marker).expect("marker");
    std::fs::write(&marker, text.replace("format 1", "format 2")).expect("write");
    let e = MvccStore::open(dir.path(), &StoreOptions::default())
        .err()
        .expect("refused");
    assert!(e.to_string().contains("format version 2"), "{e}");

    // A missing directory is created.
    let dir = tempfile::tempdir().expect("tempdir");
    let nested = dir.path().join("a/b");
    let s = MvccStore::open(&nested, &StoreOptions::default()).expect("open creates");
    assert_eq!(s.current_revision(), 1);
}

#[test]
fn an_export_point_dumps_its_state_while_apply_goes_on() {
    let (_d, s) = open_tmp();
    ok(&s, Request::LeaseGrant { id: 7, ttl: 30 });
    for i in 0..40 {
        ok(&s, put(&format!("k{:02}", i % 9), &"v".repeat(i * 50)));
    }
    ok(&s, del("k04", ""));
    // A call that writes no record leaves the blob without records last.
    s.apply([], Some(b"at-the-point")).expect("meta");
    let mut expected = Vec::new();
    s.export(&mut expected).expect("export");
    let (point_hash, point_kv) = (s.hash().expect("hash"), s.hash_kv(0).expect("hash_kv"));

    let point = s.export_point().expect("export point");
    // Apply goes on: new blobs, the last one replaced, leases and alarms changed...
    for i in 0..30 {
        ok(&s, put(&format!("k{:02}", i % 5), "later"));
    }
    ok(&s, Request::LeaseRevoke { id: 7 });
    ok(&s, Request::LeaseGrant { id: 8, ttl: 5 });
    // ...and a compaction, which waits for the point before rewriting history.
    let compactor = {
        let s = s.clone();
        std::thread::spawn(move || s.apply([&Request::Compact { revision: 30 }], None))
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.applies_waiting_for_exports() == 0 {
        assert!(
            Instant::now() < deadline,
            "the compaction never met the fence"
        );
        std::thread::yield_now();
    }
    let mut dump = Vec::new();
    point.write(&mut dump).expect("write the point");
    assert!(
        dump == expected,
        "the dump differs from an export at the point"
    );
    let compacted = compactor.join().expect("compactor");
    assert!(compacted.expect("compact").applied[0].result.is_ok());
    assert_eq!(s.compact_revision(), 30);

    let (_d2, restored) = open_tmp();
    restored.import(&mut dump.as_slice()).expect("import");
    assert_eq!(restored.hash().expect("hash"), point_hash);
    assert_eq!(restored.hash_kv(0).expect("hash_kv"), point_kv);
    assert_eq!(
        restored.meta().expect("meta").as_deref(),
        Some(&b"at-the-point"[..])
    );
    assert!(restored.lease(7).is_some() && restored.lease(8).is_none());
}

#[test]
fn export_import_round_trip_and_rejects_damage() {
    let (_d1, a) = open_tmp();
    ok(&a, Request::LeaseGrant { id: 1, ttl: 9 });
    for i in 0..50 {
        let k = format!("k{:02}", i % 7);
        ok(
            &a,
            Request::Put(PutRequest {
                lease: if i % 3 == 0 { 1 } else { 0 },
                ..put_req(&k, &"v".repeat(i * 10))
            }),
        );
    }
    ok(&a, del("k03", ""));
    ok(&a, Request::Compact { revision: 20 });
    a.apply([], Some(b"meta-a")).expect("meta");
    let mut dump = Vec::new();
    let n = a.export(&mut dump).expect("export");
    assert_eq!(n, dump.len() as u64);

    let (d2, b2) = open_tmp();
    ok(&b2, put("other", "state"));
    b2.import(&mut dump.as_slice()).expect("import");
    assert_eq!(b2.hash().expect("hash"), a.hash().expect("hash"));
    assert_eq!(
        b2.hash_kv(0).expect("hash_kv"),
        a.hash_kv(0).expect("hash_kv")
    );
    assert_eq!(
        b2.hash_kv(25).expect("hash_kv"),
        a.hash_kv(25).expect("hash_kv")
    );
    let full = RangeRequest {
        range: all(),
        ..RangeRequest::default()
    };
    assert_eq!(b2.range(&full), a.range(&full));
    assert_eq!(b2.lease_keys(1), a.lease_keys(1));
    assert_eq!(b2.meta().expect("meta").as_deref(), Some(&b"meta-a"[..]));
    assert!(get(&b2, "other").is_none());

    // Damage anywhere is refused and the state stays.
    let before = b2.hash().expect("hash");
    for at in [0, 20, dump.len() / 2, dump.len() - 1] {
        let mut bad = dump.clone();
        bad[at] ^= 0x40;
        assert!(
            matches!(b2.import(&mut bad.as_slice()), Err(MvccError::Corrupt(_))),
            "flip at {at}"
        );
    }
    assert!(
        b2.import(&mut &dump[..dump.len() - 5]).is_err(),
        "truncated"
    );
    assert_eq!(b2.hash().expect("hash"), before);

    // The imported store keeps working, imports again, and survives a reopen.
    ok(&b2, put("after", "import"));
    b2.import(&mut dump.as_slice()).expect("second import");
    ok(&b2, put("after", "second"));
    let h = b2.hash().expect("hash");
    drop(b2);
    let b3 = MvccStore::open(d2.path(), &StoreOptions::default()).expect("reopen");
    assert_eq!(b3.hash().expect("hash"), h);
    assert_eq!(get(&b3, "after").map(|kv| kv.value), Some(b("second")));
}

#[test]
fn readers_never_see_part_of_a_batch() {
    tracing::info!("readers racing apply and compaction see whole batches or Compacted");
    let (_d, s) = open_tmp();
    let stop = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for _ in 0..2 {
        let (s, stop) = (s.clone(), stop.clone());
        readers.push(std::thread::spawn(move || {
            let mut checked = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let r = s
                    .range(&RangeRequest {
                        range: KeyRange::prefix(b("k")),
                        ..RangeRequest::default()
                    })
                    .expect("range");
                // Every batch writes the same value to all 8 keys.
                if let Some(first) = r.kvs.first() {
                    assert_eq!(r.kvs.len(), 8);
                    assert!(
                        r.kvs
                            .iter()
                            .all(|kv| kv.value == first.value
                                && kv.mod_revision == first.mod_revision)
                    );
                }
                let rev = s.current_revision() - 1;
                match s.range(&RangeRequest {
                    range: KeyRange::prefix(b("k")),
                    revision: rev,
                    ..RangeRequest::default()
                }) {
                    Ok(r) => assert!(r.kvs.is_empty() || r.kvs.len() == 8),
                    Err(MvccError::Compacted { .. }) => {}
                    Err(e) => panic!("{e}"),
                }
                checked += 1;
            }
            checked
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut i = 0;
    while Instant::now() < deadline {
        i += 1;
        let v = format!("{i}");
        let t = txn(
            vec![],
            (0..8)
                .map(|k| RequestOp::Put(put_req(&format!("k{k}"), &v)))
                .collect(),
            vec![],
        );
        let mut reqs = vec![Request::Txn(t)];
        if i % 10 == 0 {
            reqs.push(Request::Compact {
                revision: s.current_revision(),
            });
        }
        s.apply(reqs.iter(), None).expect("apply");
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        assert!(r.join().expect("reader panicked") > 0);
    }
}

#[test]
fn readers_racing_import_see_one_whole_state() {
    tracing::info!("reads during imports answer from the old or the new state, never a mix");
    let dumps: Vec<Vec<u8>> = ["one", "two"]
        .iter()
        .map(|v| {
            let (_d, src) = open_tmp();
            let reqs: Vec<Request> = (0..20).map(|k| put(&format!("k{k:02}"), v)).collect();
            src.apply(reqs.iter(), None).expect("apply");
            let mut dump = Vec::new();
            src.export(&mut dump).expect("export");
            dump
        })
        .collect();
    let (_d, s) = open_tmp();
    s.import(&mut dumps[0].as_slice()).expect("import");
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (s, stop) = (s.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut seen = std::collections::BTreeSet::new();
            while !stop.load(Ordering::Relaxed) {
                let r = s
                    .range(&RangeRequest {
                        range: KeyRange::prefix(b("k")),
                        ..RangeRequest::default()
                    })
                    .expect("range");
                assert_eq!(r.kvs.len(), 20);
                let first = r.kvs[0].value.clone();
                assert!(r.kvs.iter().all(|kv| kv.value == first));
                seen.insert(first);
            }
            seen.len()
        })
    };
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut imports = 0;
    while Instant::now() < deadline || imports < 4 {
        s.import(&mut dumps[imports % 2].as_slice())
            .expect("import");
        imports += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let seen = reader.join().expect("reader panicked");
    assert!(seen >= 1, "the reader read");
    drop(s);
}

/// Throughput figures (best of several rounds, the machine is shared); run with
/// `cargo test --release --lib mvcc::store_tests::perf -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark; prints figures"]
fn perf() {
    let (_d, s) = open_tmp();
    let value = Bytes::from(vec![7u8; 1024]);
    let mut reqs: Vec<Request> = Vec::with_capacity(64);
    let mut n = 0u64;
    let mut best = Duration::MAX;
    for _round in 0..6 {
        let start = Instant::now();
        for _ in 0..100 {
            reqs.clear();
            for _ in 0..64 {
                n += 1;
                reqs.push(Request::Put(PutRequest {
                    key: Bytes::from(format!("/registry/pods/ns/pod-{:05}", n % 5000)),
                    value: value.clone(),
                    ..PutRequest::default()
                }));
            }
            s.apply(reqs.iter(), Some(b"meta")).expect("apply");
        }
        best = best.min(start.elapsed() / 100);
    }
    println!("apply 64 x 1 KiB puts (5000 keys, overwrites): {best:?} per batch");

    let req = RangeRequest {
        range: KeyRange::prefix(b("/registry/pods/ns/")),
        limit: 500,
        ..RangeRequest::default()
    };
    let mut best = Duration::MAX;
    for _round in 0..5 {
        let start = Instant::now();
        for _ in 0..40 {
            let r = s.range(&req).expect("range");
            assert_eq!(r.kvs.len(), 500);
        }
        best = best.min(start.elapsed() / 40);
    }
    println!("range 500 x 1 KiB: {best:?} per range");

    let start = Instant::now();
    let r = s
        .range(&RangeRequest {
            range: KeyRange::prefix(b("/registry/pods/")),
            count_only: true,
            ..RangeRequest::default()
        })
        .expect("count");
    println!("count {} keys: {:?}", r.count, start.elapsed());
    let revisions = s.current_revision();
    let start = Instant::now();
    s.apply(
        [&Request::Compact {
            revision: revisions,
        }],
        None,
    )
    .expect("compact");
    println!("compact {} revisions: {:?}", revisions - 1, start.elapsed());
    let start = Instant::now();
    s.sync().expect("sync");
    println!(
        "sync: {:?}; size on disk {} MiB",
        start.elapsed(),
        s.size_on_disk() >> 20
    );
    let mut dump = Vec::new();
    let start = Instant::now();
    let bytes = s.export(&mut dump).expect("export");
    println!("export {} MiB: {:?}", bytes >> 20, start.elapsed());
    let (_d2, t) = open_tmp();
    let start = Instant::now();
    t.import(&mut dump.as_slice()).expect("import");
    println!("import: {:?}", start.elapsed());
    let dir = tempfile::tempdir().expect("tempdir");
    let start = Instant::now();
    drop(MvccStore::open(dir.path(), &StoreOptions::default()).expect("open"));
    println!("open a fresh store: {:?}", start.elapsed());
}

/// Process-wide counters from `/proc/self/io` and `/proc/self/stat`: bytes handed to
/// `write(2)`, bytes the kernel counted as sent to storage, and CPU time of every thread
/// (sled's flusher and io threads included).
#[derive(Clone, Copy, Debug)]
struct ProcCost {
    wchar: u64,
    write_bytes: u64,
    cpu: Duration,
}

fn proc_cost() -> ProcCost {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let field = |name: &str| {
        io.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<u64> = after
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    ProcCost {
        wchar: field("wchar:"),
        write_bytes: field("write_bytes:"),
        // USER_HZ is 100 on every Linux we run on.
        cpu: Duration::from_millis(ticks * 10),
    }
}

/// CPU time of the calling thread (time it ran, not time it waited for a core), from
/// `/proc/thread-self/schedstat`.
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = stat
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

fn overwrite_batch(n: usize, next: &mut u64, keys: u64, value: &Bytes) -> Vec<Request> {
    (0..n)
        .map(|_| {
            *next += 1;
            Request::Put(PutRequest {
                key: Bytes::from(format!("/registry/pods/ns/pod-{:05}", *next % keys)),
                value: value.clone(),
                ..PutRequest::default()
            })
        })
        .collect()
}

/// What the state machine stores with every batch: a last-applied log id and membership.
const BENCH_META: [u8; 48] = [3u8; 48];
const BENCH_KEYS: u64 = 10_000;

/// A store holding `BENCH_KEYS` keys with `value`; returns the next key counter.
fn bench_store(value: &Bytes) -> (tempfile::TempDir, MvccStore, u64) {
    let (d, s) = open_tmp();
    let mut next = 0u64;
    for _ in 0..(BENCH_KEYS / 100) {
        let reqs = overwrite_batch(100, &mut next, BENCH_KEYS, value);
        s.apply(reqs.iter(), Some(&BENCH_META)).expect("fill");
    }
    s.sync().expect("sync");
    (d, s, next)
}

/// Apply time per batch of overwrites (so every put loads its previous version). Run
/// alone: `cargo test --release --lib mvcc::store_tests::write_cost -- --ignored
/// --nocapture --test-threads=1`.
#[test]
#[ignore = "benchmark; prints figures"]
fn write_cost_apply() {
    for value_len in [256usize, 1024] {
        let value = Bytes::from(vec![7u8; value_len]);
        let (_d, s, mut next) = bench_store(&value);
        for batch in [1usize, 14, 64] {
            let rounds = 7;
            let per_round = (2000 / batch).max(20);
            let (mut wall, mut cpu) = (Vec::new(), Vec::new());
            for _ in 0..rounds {
                let batches: Vec<Vec<Request>> = (0..per_round)
                    .map(|_| overwrite_batch(batch, &mut next, BENCH_KEYS, &value))
                    .collect();
                let (start, start_cpu) = (Instant::now(), thread_cpu());
                for reqs in &batches {
                    s.apply(reqs.iter(), Some(&BENCH_META)).expect("apply");
                }
                cpu.push((thread_cpu() - start_cpu) / per_round as u32);
                wall.push(start.elapsed() / per_round as u32);
            }
            wall.sort();
            cpu.sort();
            println!(
                "apply {batch:>2} x {value_len:>4} B overwrites: CPU median {:?} best {:?}, \
                 wall median {:?} best {:?} per batch",
                cpu[rounds / 2],
                cpu[0],
                wall[rounds / 2],
                wall[0]
            );
        }
    }
}

/// Bytes written to disk and CPU (all threads) per put under a sustained apply loop of
/// batches of 14 overwrites, with sled's periodic flush running: once as fast as apply
/// goes, once paced at 4000 puts/s (about a follower's rate under the cluster benchmark;
/// the pause is pacing, not waiting for state).
#[test]
#[ignore = "benchmark; prints figures"]
fn write_cost_disk() {
    const BATCH: usize = 14;
    for (value_len, paced, puts) in [
        (256usize, false, 100_000usize),
        (1024, false, 100_000),
        (256, true, 40_000),
    ] {
        let value = Bytes::from(vec![7u8; value_len]);
        let (_d, s, mut next) = bench_store(&value);
        let batches: Vec<Vec<Request>> = (0..puts / BATCH)
            .map(|_| overwrite_batch(BATCH, &mut next, BENCH_KEYS, &value))
            .collect();
        let puts = (batches.len() * BATCH) as u64;
        let pace = Duration::from_secs(1) * BATCH as u32 / 4000;
        let before = proc_cost();
        let start = Instant::now();
        let mut busy = Duration::ZERO;
        for (i, reqs) in batches.iter().enumerate() {
            if paced {
                let due = start + pace * i as u32;
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            let t = Instant::now();
            s.apply(reqs.iter(), Some(&BENCH_META)).expect("apply");
            busy += t.elapsed();
        }
        s.sync().expect("sync");
        let after = proc_cost();
        println!(
            "{puts} puts of {value_len} B, batches of {BATCH}{}: {} B written/put \
             ({} B passed to write(2)/put), CPU {:.1} us/put (all threads), apply \
             {:.1} us/put, size on disk {} MiB",
            if paced { ", paced 4000/s" } else { "" },
            (after.write_bytes - before.write_bytes) / puts,
            (after.wchar - before.wchar) / puts,
            (after.cpu - before.cpu).as_secs_f64() * 1e6 / puts as f64,
            busy.as_secs_f64() * 1e6 / puts as f64,
            s.size_on_disk() >> 20
        );
    }
}

/// Apply of batches of 64 overwrites of 256 B for a few seconds, for a profiler:
/// `perf record --call-graph dwarf <test binary> mvcc::store_tests::apply_profile --ignored`.
#[test]
#[ignore = "benchmark; for profiling"]
fn apply_profile() {
    let value = Bytes::from(vec![7u8; 256]);
    let (_d, s, mut next) = bench_store(&value);
    let batches: Vec<Vec<Request>> = (0..2000)
        .map(|_| overwrite_batch(64, &mut next, BENCH_KEYS, &value))
        .collect();
    let start = Instant::now();
    for reqs in &batches {
        s.apply(reqs.iter(), Some(&BENCH_META)).expect("apply");
    }
    println!(
        "{:?} per batch of 64",
        start.elapsed() / batches.len() as u32
    );
}
