//! One storage suite over every backend the Kubernetes layer can use: the embedded
//! store (in process), another kuberaft's etcd port, and Debian's real etcd 3.4.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use kuberaft::storage::etcd::{Etcd, EtcdOptions};
use kuberaft::storage::{EventType, ReadMode, Storage, StorageError, WatchItem};

fn phase(what: &str) {
    eprintln!("--- {what}");
}

async fn next_event(stream: &mut kuberaft::storage::WatchStream) -> WatchItem {
    loop {
        let item = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("watch item within 10 s")
            .expect("watch stream open");
        if !matches!(item, WatchItem::Progress(_)) {
            return item;
        }
    }
}

/// The contract every backend must keep.
async fn suite(s: Arc<dyn Storage>, name: &str) {
    let p = format!("/registry/suite-{name}/");
    let key = |k: &str| format!("{p}{k}");

    phase(&format!("{name}: create, get, duplicate create"));
    let a = s
        .create(&key("a"), Bytes::from_static(b"1"), 0)
        .await
        .expect("create");
    assert_eq!(a.create_revision, a.mod_revision);
    let got = s
        .get(&key("a"), ReadMode::Consistent)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(got.value, Bytes::from_static(b"1"));
    assert_eq!(got.mod_revision, a.mod_revision);
    assert!(matches!(
        s.create(&key("a"), Bytes::from_static(b"x"), 0).await,
        Err(StorageError::KeyExists { .. })
    ));
    assert!(s
        .get(&key("missing"), ReadMode::Any)
        .await
        .expect("get")
        .is_none());

    phase(&format!("{name}: compare-and-swap update and delete"));
    let watch_from = a.mod_revision;
    let b = s
        .update(&key("a"), Bytes::from_static(b"2"), a.mod_revision, 0)
        .await
        .expect("update");
    assert!(b.mod_revision > a.mod_revision);
    assert_eq!(b.create_revision, a.create_revision);
    match s
        .update(&key("a"), Bytes::from_static(b"3"), a.mod_revision, 0)
        .await
    {
        Err(StorageError::Conflict {
            current: Some(cur), ..
        }) => assert_eq!(cur.value, Bytes::from_static(b"2")),
        other => panic!("expected a conflict with the current object, got {other:?}"),
    }
    assert!(matches!(
        s.delete(&key("a"), Some(a.mod_revision)).await,
        Err(StorageError::Conflict { .. })
    ));
    let deleted = s
        .delete(&key("a"), Some(b.mod_revision))
        .await
        .expect("delete");
    assert_eq!(deleted.value, Bytes::from_static(b"2"));
    assert!(matches!(
        s.delete(&key("a"), None).await,
        Err(StorageError::NotFound { .. })
    ));

    phase(&format!("{name}: list pages, counts, historical reads"));
    for i in 0..7 {
        s.create(&key(&format!("l{i}")), Bytes::from(format!("v{i}")), 0)
            .await
            .expect("create");
    }
    let page = s.list(&p, "", 3, ReadMode::Consistent).await.expect("list");
    assert_eq!(page.kvs.len(), 3);
    assert!(page.more);
    assert_eq!(page.remaining, 4);
    let next_start = format!("{}\u{0}", page.kvs[2].key);
    let page2 = s
        .list(&p, &next_start, 10, ReadMode::Exact(page.revision))
        .await
        .expect("page 2");
    assert_eq!(page2.kvs.len(), 4);
    assert!(!page2.more);
    assert_eq!(s.count(&p).await.expect("count"), 7);

    phase(&format!(
        "{name}: watch from a revision sees every change with prev values"
    ));
    let mut w = s.watch(&p, watch_from + 1).await.expect("watch");
    match next_event(&mut w).await {
        WatchItem::Event(e) => {
            assert_eq!(e.kind, EventType::Modified);
            assert_eq!(e.value, Bytes::from_static(b"2"));
            assert_eq!(e.prev_value, Some(Bytes::from_static(b"1")));
        }
        other => panic!("expected the update, got {other:?}"),
    }
    match next_event(&mut w).await {
        WatchItem::Event(e) => {
            assert_eq!(e.kind, EventType::Deleted);
            assert_eq!(
                e.value,
                Bytes::from_static(b"2"),
                "a delete carries the deleted object"
            );
        }
        other => panic!("expected the delete, got {other:?}"),
    }
    match next_event(&mut w).await {
        WatchItem::Event(e) => assert_eq!(e.kind, EventType::Created),
        other => panic!("expected a create, got {other:?}"),
    }

    phase(&format!("{name}: leases and compaction"));
    let lease = s.grant_lease(60).await.expect("lease");
    assert!(lease > 0);
    let leased = s
        .create(&key("ev"), Bytes::from_static(b"e"), lease)
        .await
        .expect("create leased");
    assert_eq!(leased.lease, lease);
    let now = s.current_revision().await.expect("revision");
    s.compact(now).await.expect("compact");
    s.compact(now).await.expect("compacting again is fine");
    let mut old = s
        .watch(&p, watch_from)
        .await
        .expect("watch an old revision");
    match next_event(&mut old).await {
        WatchItem::Error(StorageError::Compacted { .. }) => {}
        other => panic!("expected compacted, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_backend() {
    let dir = tempfile::tempdir().expect("tmp");
    let client = common::free_port();
    let peer = common::free_port();
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: kuberaft::config::ServeArgs,
    }
    let data = dir.path().join("data");
    let args = Cli::parse_from([
        "kuberaft",
        "--data-dir",
        data.to_str().expect("utf-8 path"),
        "--listen-client-urls",
        &format!("http://127.0.0.1:{client}"),
        "--listen-peer-urls",
        &format!("http://127.0.0.1:{peer}"),
        "--secure-port",
        "0",
    ]);
    let config = args.serve.validate().expect("config");
    let node = kuberaft::node::Node::start(config, Default::default())
        .await
        .expect("start");
    common::wait_for("a leader", Duration::from_secs(20), || {
        let leader = node.store.leader();
        async move { leader.map(|_| ()) }
    })
    .await;
    suite(
        Arc::new(kuberaft::storage::embedded::Embedded::new(
            node.store.clone(),
        )),
        "embedded",
    )
    .await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_kuberafts_etcd_port() {
    let cluster = common::Cluster::start(1).await;
    let s = Etcd::new(EtcdOptions {
        endpoints: cluster.endpoints(),
        tls: None,
        timeout: Duration::from_secs(10),
    })
    .expect("client");
    suite(Arc::new(s), "kuberaft").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_etcd() {
    if std::process::Command::new("etcd")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: Debian's etcd is not installed (apt-get install etcd-server); .ci/run installs it");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let client = common::free_port();
    let peer = common::free_port();
    let mut child = std::process::Command::new("etcd")
        .args(["--name", "e0", "--data-dir"])
        .arg(dir.path().join("etcd"))
        .args([
            "--listen-client-urls",
            &format!("http://127.0.0.1:{client}"),
        ])
        .args([
            "--advertise-client-urls",
            &format!("http://127.0.0.1:{client}"),
        ])
        .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
        .args([
            "--initial-advertise-peer-urls",
            &format!("http://127.0.0.1:{peer}"),
        ])
        .args(["--initial-cluster", &format!("e0=http://127.0.0.1:{peer}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start etcd");
    let endpoint = format!("http://127.0.0.1:{client}");
    let s = Etcd::new(EtcdOptions {
        endpoints: vec![endpoint.clone()],
        tls: None,
        timeout: Duration::from_secs(10),
    })
    .expect("client");
    let probe = s.clone();
    common::wait_for("etcd to answer", Duration::from_secs(20), || {
        let probe = probe.clone();
        async move { probe.current_revision().await.ok() }
    })
    .await;
    suite(Arc::new(s), "etcd").await;
    let _ = child.kill();
    let _ = child.wait();
}
