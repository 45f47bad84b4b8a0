//! The etcd v3 API of a three-member cluster, driven by the `etcd-client` crate:
//! every RPC, through leader and followers, with etcd's answers to bad input.

mod common;

use std::time::Duration;

use common::{connect, wait_for, Cluster};
use etcd_client::{
    Compare, CompareOp, DeleteOptions, GetOptions, LeaseTimeToLiveOptions, PutOptions, SortOrder,
    SortTarget, Txn, TxnOp, WatchFilterType, WatchOptions,
};

fn msg(e: etcd_client::Error) -> String {
    e.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_semantics_through_every_member() {
    let cluster = Cluster::start(3).await;
    let mut c: Vec<_> = Vec::new();
    for m in &cluster.members {
        c.push(m.client().await);
    }

    tracing_like("writes through any member are linearizable reads everywhere");
    let put = c[1].put("k1", "v1", None).await.expect("put via member 1");
    let rev1 = put.header().expect("header").revision();
    for (i, client) in c.iter_mut().enumerate() {
        let got = client.get("k1", None).await.expect("get");
        assert_eq!(got.kvs().len(), 1, "member {i} sees the write");
        assert_eq!(got.kvs()[0].value(), b"v1");
        assert_eq!(got.kvs()[0].mod_revision(), rev1);
        assert_eq!(got.kvs()[0].create_revision(), rev1);
        assert_eq!(got.kvs()[0].version(), 1);
    }

    tracing_like("put with prev_kv and versions");
    let put = c[2]
        .put("k1", "v2", Some(PutOptions::new().with_prev_key()))
        .await
        .expect("put again");
    assert_eq!(put.prev_key().expect("prev kv").value(), b"v1");
    let got = c[0].get("k1", None).await.expect("get");
    assert_eq!(got.kvs()[0].version(), 2);
    assert_eq!(got.kvs()[0].create_revision(), rev1);

    tracing_like("historical read at the first revision");
    let old = c[0]
        .get("k1", Some(GetOptions::new().with_revision(rev1)))
        .await
        .expect("historical get");
    assert_eq!(old.kvs()[0].value(), b"v1");

    tracing_like("prefix, limit, count, keys-only, count-only, sort");
    for i in 0..10 {
        c[i % 3]
            .put(format!("p/{i:02}"), format!("val{i}"), None)
            .await
            .expect("put prefix key");
    }
    let page = c[0]
        .get("p/", Some(GetOptions::new().with_prefix().with_limit(4)))
        .await
        .expect("limited prefix get");
    assert_eq!(page.kvs().len(), 4);
    assert!(page.more());
    assert_eq!(page.count(), 10);
    let keys = c[1]
        .get("p/", Some(GetOptions::new().with_prefix().with_keys_only()))
        .await
        .expect("keys only");
    assert!(keys.kvs().iter().all(|kv| kv.value().is_empty()));
    let count = c[2]
        .get(
            "p/",
            Some(GetOptions::new().with_prefix().with_count_only()),
        )
        .await
        .expect("count only");
    assert_eq!(count.count(), 10);
    assert!(count.kvs().is_empty());
    let desc = c[0]
        .get(
            "p/",
            Some(
                GetOptions::new()
                    .with_prefix()
                    .with_sort(SortTarget::Key, SortOrder::Descend),
            ),
        )
        .await
        .expect("sorted");
    assert_eq!(desc.kvs()[0].key(), b"p/09");
    let from_key = c[0]
        .get("p/05", Some(GetOptions::new().with_from_key()))
        .await
        .expect("from key");
    assert_eq!(
        from_key.kvs().first().map(|kv| kv.key().to_vec()),
        Some(b"p/05".to_vec())
    );

    tracing_like("serializable reads on a follower");
    let ser = c[2]
        .get(
            "p/",
            Some(GetOptions::new().with_prefix().with_serializable()),
        )
        .await
        .expect("serializable get");
    assert!(ser.count() <= 10);

    tracing_like("a write is applied on the member that acknowledged it (read your writes)");
    for (i, client) in c.iter_mut().enumerate() {
        for n in 0..30 {
            let key = format!("ryw/{i}");
            let put = client
                .put(key.as_str(), n.to_string(), None)
                .await
                .expect("put");
            let rev = put.header().expect("header").revision();
            let got = client
                .get(key.as_str(), Some(GetOptions::new().with_serializable()))
                .await
                .expect("serializable get");
            let kv = got.kvs().first().expect("the key just written");
            assert_eq!(
                (kv.value_str().expect("utf-8"), kv.mod_revision()),
                (n.to_string().as_str(), rev),
                "member {i} acknowledged a write it has not applied"
            );
        }
    }

    tracing_like("delete range with prev kvs");
    let del = c[1]
        .delete(
            "p/0",
            Some(DeleteOptions::new().with_prefix().with_prev_key()),
        )
        .await
        .expect("delete prefix");
    assert_eq!(del.deleted(), 10);
    assert_eq!(del.prev_kvs().len(), 10);
    let del = c[1]
        .delete("nothing-here", None)
        .await
        .expect("delete missing");
    assert_eq!(del.deleted(), 0);

    tracing_like("txn: the Kubernetes update shape, then its failure branch");
    let cur = c[0].get("k1", None).await.expect("get").kvs()[0].mod_revision();
    let txn = Txn::new()
        .when([Compare::mod_revision("k1", CompareOp::Equal, cur)])
        .and_then([TxnOp::put("k1", "v3", None)])
        .or_else([TxnOp::get("k1", None)]);
    let ok = c[1].txn(txn.clone()).await.expect("txn");
    assert!(ok.succeeded());
    let stale = c[2].txn(txn).await.expect("txn with stale revision");
    assert!(!stale.succeeded());
    match &stale.op_responses()[0] {
        etcd_client::TxnOpResponse::Get(g) => assert_eq!(g.kvs()[0].value(), b"v3"),
        other => panic!("expected a get response, got {other:?}"),
    }
    let create = Txn::new()
        .when([Compare::create_revision("new-key", CompareOp::Equal, 0)])
        .and_then([TxnOp::put("new-key", "x", None)]);
    assert!(c[0].txn(create.clone()).await.expect("create").succeeded());
    assert!(!c[0].txn(create).await.expect("create again").succeeded());
    let read_only = Txn::new()
        .when([Compare::value("new-key", CompareOp::Equal, "x")])
        .and_then([TxnOp::get("new-key", None)]);
    assert!(c[2]
        .txn(read_only)
        .await
        .expect("read-only txn")
        .succeeded());
    let nested = Txn::new().and_then([TxnOp::txn(
        Txn::new()
            .when([Compare::version("new-key", CompareOp::Greater, 0)])
            .and_then([TxnOp::put("nested", "y", None)]),
    )]);
    c[1].txn(nested).await.expect("nested txn");
    assert_eq!(
        c[0].get("nested", None).await.expect("get").kvs()[0].value(),
        b"y"
    );

    tracing_like("compaction and etcd's compacted/future revision errors");
    let current = c[0]
        .get("k1", None)
        .await
        .expect("get")
        .header()
        .expect("h")
        .revision();
    c[0].compact(current - 1, None).await.expect("compact");
    let err = c[1]
        .get("k1", Some(GetOptions::new().with_revision(rev1)))
        .await
        .expect_err("compacted read fails");
    assert!(msg(err).contains("required revision has been compacted"));
    let err = c[2]
        .get("k1", Some(GetOptions::new().with_revision(current + 1000)))
        .await
        .expect_err("future read fails");
    assert!(msg(err).contains("required revision is a future revision"));
    let err = c[0]
        .compact(current - 1, None)
        .await
        .expect_err("compacting twice fails");
    assert!(msg(err).contains("required revision has been compacted"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_etcd_errors_and_leaves_nothing() {
    let cluster = Cluster::start(3).await;
    let mut c = connect(&cluster.endpoints()).await;
    let before = c
        .get("x", None)
        .await
        .expect("get")
        .header()
        .expect("h")
        .revision();

    let err = c.put("", "v", None).await.expect_err("empty key");
    assert!(msg(err).contains("etcdserver: key is not provided"));

    let big = vec![b'x'; 1536 * 1024 + 1];
    let err = c.put("big", big, None).await.expect_err("too large");
    assert!(
        msg(err).contains("etcdserver: request is too large"),
        "got error"
    );

    let ops: Vec<TxnOp> = (0..129)
        .map(|i| TxnOp::put(format!("t{i}"), "v", None))
        .collect();
    let err = c
        .txn(Txn::new().and_then(ops))
        .await
        .expect_err("too many ops");
    assert!(msg(err).contains("etcdserver: too many operations in txn request"));

    let dup = Txn::new().and_then([TxnOp::put("d", "1", None), TxnOp::put("d", "2", None)]);
    let err = c.txn(dup).await.expect_err("duplicate keys");
    assert!(msg(err).contains("etcdserver: duplicate key given in txn request"));

    let err = c
        .put("l", "v", Some(PutOptions::new().with_lease(424242)))
        .await
        .expect_err("unknown lease");
    assert!(msg(err).contains("etcdserver: requested lease not found"));

    let err = c
        .put("missing", "", Some(PutOptions::new().with_ignore_value()))
        .await
        .expect_err("ignore value on a missing key");
    assert!(msg(err).contains("etcdserver: key not found"));

    tracing_like("none of it was written");
    let after = c
        .get("x", None)
        .await
        .expect("get")
        .header()
        .expect("h")
        .revision();
    assert_eq!(before, after, "failed requests raised the revision");
    for key in ["big", "t0", "d", "l", "missing"] {
        assert!(
            c.get(key, None).await.expect("get").kvs().is_empty(),
            "{key} was written"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_grant_keepalive_ttl_revoke_and_expire() {
    let cluster = Cluster::start(3).await;
    let mut c = connect(&[cluster.members[1].client_url()]).await;

    let lease = c.lease_grant(60, None).await.expect("grant");
    assert_eq!(lease.ttl(), 60);
    c.put(
        "leased/a",
        "1",
        Some(PutOptions::new().with_lease(lease.id())),
    )
    .await
    .expect("put with lease");
    c.put(
        "leased/b",
        "2",
        Some(PutOptions::new().with_lease(lease.id())),
    )
    .await
    .expect("put with lease");
    let ttl = c
        .lease_time_to_live(lease.id(), Some(LeaseTimeToLiveOptions::new().with_keys()))
        .await
        .expect("ttl");
    assert_eq!(ttl.granted_ttl(), 60);
    assert!(ttl.ttl() > 50 && ttl.ttl() <= 60, "remaining {}", ttl.ttl());
    assert_eq!(ttl.keys().len(), 2);
    let (mut keeper, mut stream) = c.lease_keep_alive(lease.id()).await.expect("keep alive");
    keeper.keep_alive().await.expect("send keep alive");
    let resp = stream
        .message()
        .await
        .expect("keep alive reply")
        .expect("a reply");
    assert_eq!(resp.ttl(), 60);
    let leases = c.leases().await.expect("leases");
    assert!(leases.leases().iter().any(|l| l.id() == lease.id()));

    c.lease_revoke(lease.id()).await.expect("revoke");
    let left = c
        .get("leased/", Some(GetOptions::new().with_prefix()))
        .await
        .expect("get");
    assert!(left.kvs().is_empty(), "revoked lease's keys are gone");
    let ttl = c
        .lease_time_to_live(lease.id(), None)
        .await
        .expect("ttl of revoked");
    assert_eq!(ttl.ttl(), -1);
    let err = c.lease_revoke(lease.id()).await.expect_err("revoke twice");
    assert!(msg(err).contains("etcdserver: requested lease not found"));

    tracing_like("an expired lease deletes its keys with DELETE events");
    let short = c.lease_grant(2, None).await.expect("grant short");
    let start = c
        .put("exp/k", "v", Some(PutOptions::new().with_lease(short.id())))
        .await
        .expect("put")
        .header()
        .expect("h")
        .revision();
    let mut watch = c
        .watch(
            "exp/k",
            Some(WatchOptions::new().with_start_revision(start + 1)),
        )
        .await
        .expect("watch");
    let deleted = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let resp = watch
                .message()
                .await
                .expect("watch message")
                .expect("stream open");
            if let Some(ev) = resp.events().first() {
                return ev.event_type();
            }
        }
    })
    .await
    .expect("lease expiry within 15 s");
    assert_eq!(deleted, etcd_client::EventType::Delete);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_history_filters_progress_cancel_and_compaction() {
    let cluster = Cluster::start(3).await;
    let mut c = connect(&[cluster.members[0].client_url()]).await;
    let first = c
        .put("w/a", "1", None)
        .await
        .expect("put")
        .header()
        .expect("h")
        .revision();
    c.put("w/a", "2", None).await.expect("put");
    c.delete("w/a", None).await.expect("delete");
    c.put("w/b", "3", None).await.expect("put");

    tracing_like("replay from history with prev kv, on a follower");
    let mut f = connect(&[cluster.members[2].client_url()]).await;
    let mut w = f
        .watch(
            "w/",
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_start_revision(first)
                    .with_prev_key(),
            ),
        )
        .await
        .expect("watch");
    let mut events = Vec::new();
    while events.len() < 4 {
        let resp = tokio::time::timeout(Duration::from_secs(10), w.message())
            .await
            .expect("events in time")
            .expect("message")
            .expect("open");
        for ev in resp.events() {
            events.push((
                ev.event_type(),
                ev.kv().map(|k| k.value().to_vec()),
                ev.prev_kv().map(|k| k.value().to_vec()),
            ));
        }
    }
    use etcd_client::EventType::{Delete, Put};
    assert_eq!(events[0], (Put, Some(b"1".to_vec()), None));
    assert_eq!(events[1], (Put, Some(b"2".to_vec()), Some(b"1".to_vec())));
    assert_eq!(events[2], (Delete, Some(Vec::new()), Some(b"2".to_vec())));
    assert_eq!(events[3], (Put, Some(b"3".to_vec()), None));

    tracing_like("NOPUT filter: only deletes");
    let mut d = c
        .watch(
            "w/",
            Some(
                WatchOptions::new()
                    .with_prefix()
                    .with_filters([WatchFilterType::NoPut]),
            ),
        )
        .await
        .expect("watch deletes");
    c.put("w/c", "4", None).await.expect("put");
    c.delete("w/c", None).await.expect("delete");
    let ev = loop {
        let resp = tokio::time::timeout(Duration::from_secs(10), d.message())
            .await
            .expect("in time")
            .expect("message")
            .expect("open");
        if let Some(ev) = resp.events().first() {
            break ev.event_type();
        }
    };
    assert_eq!(ev, Delete);

    tracing_like("progress request answers with watch id -1 once synced");
    d.request_progress().await.expect("request progress");
    let progress = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let resp = d.message().await.expect("message").expect("open");
            if resp.watch_id() == -1 && resp.events().is_empty() {
                return resp.header().expect("header").revision();
            }
        }
    })
    .await
    .expect("progress in time");
    assert!(progress >= first + 5);

    tracing_like("cancel");
    let id = {
        let mut id = None;
        // The first watcher on this stream was created with an automatic id.
        d.watch("other", None).await.expect("second watcher");
        while id.is_none() {
            let resp = d.message().await.expect("message").expect("open");
            if resp.created() {
                id = Some(resp.watch_id());
            }
        }
        id.expect("id")
    };
    d.cancel(id).await.expect("cancel");
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let resp = d.message().await.expect("message").expect("open");
            if resp.canceled() && resp.watch_id() == id {
                return;
            }
        }
    })
    .await
    .expect("cancel confirmation in time");

    tracing_like("a compacted start revision cancels with the compact revision");
    let now = c
        .put("w/z", "9", None)
        .await
        .expect("put")
        .header()
        .expect("h")
        .revision();
    c.compact(now, None).await.expect("compact");
    let mut old = c
        .watch(
            "w/",
            Some(WatchOptions::new().with_prefix().with_start_revision(first)),
        )
        .await
        .expect("watch compacted");
    let compact = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let resp = old.message().await.expect("message").expect("open");
            if resp.canceled() {
                return resp.compact_revision();
            }
        }
    })
    .await
    .expect("cancel in time");
    assert_eq!(compact, now);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_status_hashkv_alarm_defrag_snapshot() {
    let cluster = Cluster::start(3).await;
    let mut c = connect(&[cluster.members[0].client_url()]).await;
    for i in 0..20 {
        c.put(format!("m/{i}"), "v", None).await.expect("put");
    }
    let rev = c
        .get("m/0", None)
        .await
        .expect("get")
        .header()
        .expect("h")
        .revision();

    tracing_like("every member reports status and the same HashKV at one revision");
    let mut hashes = Vec::new();
    for m in &cluster.members {
        let mut mc = m.client().await;
        let status = mc.status().await.expect("status");
        assert_eq!(status.version(), "3.5.13");
        assert!(status.leader() != 0);
        assert!(status.raft_index() > 0);
        let h = wait_for(
            "member applied the revision",
            Duration::from_secs(10),
            || {
                let mut mc = mc.clone();
                async move { mc.hash_kv(rev).await.ok().map(|h| h.hash()) }
            },
        )
        .await;
        hashes.push(h);
    }
    assert!(
        hashes.windows(2).all(|w| w[0] == w[1]),
        "hashes differ: {hashes:?}"
    );

    tracing_like("alarm list is empty; defragment answers");
    let alarms = c
        .alarm(
            etcd_client::AlarmAction::Get,
            etcd_client::AlarmType::None,
            None,
        )
        .await
        .expect("alarm list");
    assert!(alarms.alarms().is_empty());
    c.defragment().await.expect("defrag");

    tracing_like("snapshot stream ends with a SHA-256 of what came before");
    let mut stream = c.snapshot().await.expect("snapshot");
    let mut data = Vec::new();
    while let Some(chunk) = stream.message().await.expect("chunk") {
        data.extend_from_slice(chunk.blob());
    }
    assert_eq!(
        data.len() % 512,
        32,
        "page-aligned body plus checksum, as etcdctl checks"
    );
    kuberaft::store::verify_snapshot(&data).expect("checksum verifies");
}

/// Marks a test phase in the output.
fn tracing_like(phase: &str) {
    eprintln!("--- {phase}");
}

/// One HTTP/1.1 request over a plain TCP connection; returns (status, body).
fn http_post(port: u16, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let code = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_gateway_speaks_grpc_gateway_json() {
    let cluster = Cluster::start(1).await;
    let port = cluster.members[0].client_port;
    tracing_like("put and range with base64 keys and string integers");
    // key "foo", value "bar"
    let (code, body) = http_post(port, "/v3/kv/put", r#"{"key":"Zm9v","value":"YmFy"}"#);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"revision\":\""), "{body}");
    let (code, body) = http_post(port, "/v3/kv/range", r#"{"key":"Zm9v"}"#);
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["kvs"][0]["value"], "YmFy");
    assert_eq!(v["count"], "1");
    tracing_like("txn, lease grant, delete");
    let (code, body) = http_post(
        port,
        "/v3/kv/txn",
        r#"{"compare":[{"key":"Zm9v","result":"EQUAL","target":"VALUE","value":"YmFy"}],"success":[{"request_put":{"key":"Zm9v","value":"YmF6"}}]}"#,
    );
    assert_eq!(code, 200);
    assert!(body.contains("\"succeeded\":true"), "{body}");
    let (code, body) = http_post(port, "/v3/lease/grant", r#"{"TTL":30}"#);
    assert_eq!(code, 200);
    assert!(body.contains("\"TTL\":\"30\""), "{body}");
    let (code, body) = http_post(port, "/v3/kv/deleterange", r#"{"key":"Zm9v"}"#);
    assert_eq!(code, 200);
    assert!(body.contains("\"deleted\":\"1\""), "{body}");
    tracing_like("bad input gets a grpc-gateway error");
    let (code, body) = http_post(port, "/v3/kv/put", r#"{"key":"!!notbase64","value":"x"}"#);
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("\"code\":3"));
    let (code, body) = http_post(port, "/v3/kv/put", r#"{"value":"YmFy"}"#);
    assert_eq!(code, 400);
    assert!(body.contains("etcdserver: key is not provided"), "{body}");
}

/// One plain HTTP/1.0 exchange; returns the status line and the body.
fn http_exchange(port: u16, request: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    s.write_all(request.as_bytes()).expect("send request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read answer");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").expect("HTTP head");
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, body.to_owned())
}

/// The sum of one member's samples of `metric` whose labels contain `label` (may be
/// empty).
fn metric_sum(client_port: u16, metric: &str, label: &str) -> f64 {
    let (status, body) = http_exchange(client_port, "GET /metrics HTTP/1.0\r\n\r\n");
    assert!(status.contains(" 200 "), "/metrics: {status}");
    body.lines()
        .filter_map(|l| l.strip_prefix(metric)?.strip_prefix('{'))
        .filter(|labels| labels.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The sum over peers of `kuberaft_raft_stream_connects_total` on one member.
fn stream_connects(client_port: u16) -> f64 {
    metric_sum(client_port, "kuberaft_raft_stream_connects_total", "")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raft_streams_are_reused_and_refuse_bad_upgrades() {
    let mut cluster = Cluster::start(3).await;
    let leader = cluster.wait_leader().await;
    let mut c = cluster.members[leader].client().await;
    c.put("k", "v", None).await.expect("put");

    tracing_like("each linearizable read is a heartbeat round on a stream already open");
    let port = cluster.members[leader].client_port;
    let before = stream_connects(port);
    assert!(
        before >= 2.0,
        "the leader opened streams to both followers: {before}"
    );
    for _ in 0..200 {
        let got = c.get("k", None).await.expect("linearizable get");
        assert_eq!(got.kvs().len(), 1);
    }
    let opened = stream_connects(port) - before;
    assert!(
        opened < 10.0,
        "200 read-index rounds opened {opened} raft streams"
    );

    tracing_like("a follower forwards its clients' writes on raft streams");
    let follower = (leader + 1) % 3;
    let mut f = cluster.members[follower].client().await;
    for i in 0..20 {
        f.put(format!("fwd{i}"), "v", None)
            .await
            .expect("put via a follower");
    }
    let port = cluster.members[follower].client_port;
    let forwards = "kuberaft_peer_forwards_total";
    let on_streams = metric_sum(port, forwards, "transport=\"stream\"");
    let over_grpc = metric_sum(port, forwards, "transport=\"grpc\"");
    assert!(on_streams >= 20.0, "forwards counted: {on_streams}");
    assert_eq!(over_grpc, 0.0, "no forward went over gRPC");
    let got = c.get("fwd19", None).await.expect("get on the leader");
    assert_eq!(got.kvs().len(), 1, "the forwarded write is on the leader");

    tracing_like("the stream endpoint answers anything but its upgrade with 400");
    let (status, body) = http_exchange(
        cluster.members[leader].peer_port,
        "GET /raft/stream HTTP/1.0\r\n\r\n",
    );
    assert!(status.contains(" 400 "), "{status}");
    assert_eq!(body, "expected Upgrade: kuberaft-raft/1");
    let (status, body) = http_exchange(
        cluster.members[leader].peer_port,
        "GET /raft/stream HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n\r\n",
    );
    assert!(status.contains(" 400 "), "{status}");
    assert_eq!(body, "expected Upgrade: kuberaft-raft/1");
}
