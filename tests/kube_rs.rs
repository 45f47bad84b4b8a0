//! kube-rs against a real replica: typed CRUD through `kube::Api`, and the watcher and
//! reflector of kube-runtime with their resume semantics — a watch the server ends
//! (`timeoutSeconds`) resumes from the last resourceVersion without a relist and
//! without missing or repeating an event; the streaming-list mode
//! (`sendInitialEvents`) delivers the initial state then live events; a watch from a
//! compacted resourceVersion gets 410 Expired, and a watcher in that position relists.
//!
//! Invariant: the client is built from the replica's admin kubeconfig exactly as a
//! user's program would; waits poll with deadlines.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::kube::KubeServer;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube::Client;

async fn client(s: &KubeServer) -> Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(&s.kubeconfig).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("client config");
    Client::try_from(config).expect("client")
}

fn configmap(name: &str, value: &str) -> ConfigMap {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name},
        "data": {"v": value},
    }))
    .expect("configmap")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_crud_through_kube_api() {
    let s = KubeServer::start(&[]);
    let api: Api<ConfigMap> = Api::namespaced(client(&s).await, "default");

    let created = api
        .create(&PostParams::default(), &configmap("typed", "1"))
        .await
        .expect("create");
    let rv = created
        .metadata
        .resource_version
        .clone()
        .expect("resourceVersion");
    assert!(created.metadata.uid.is_some());

    let got = api.get("typed").await.expect("get");
    assert_eq!(
        got.data
            .as_ref()
            .and_then(|d| d.get("v"))
            .map(String::as_str),
        Some("1")
    );

    let patched = api
        .patch(
            "typed",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"v": "2"}})),
        )
        .await
        .expect("merge patch");
    assert_ne!(
        patched.metadata.resource_version.as_deref(),
        Some(rv.as_str())
    );

    // A replace with the stale resourceVersion is a 409 Conflict.
    let mut stale = got.clone();
    stale.data = Some([("v".to_owned(), "3".to_owned())].into());
    let err = api
        .replace("typed", &PostParams::default(), &stale)
        .await
        .expect_err("stale update");
    match err {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 409);
            assert_eq!(status.reason, "Conflict");
        }
        other => panic!("expected a Status, got {other:?}"),
    }

    let err = api.get("absent").await.expect_err("absent");
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 404 && s.reason == "NotFound"));

    let names: Vec<String> = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert!(names.contains(&"typed".to_owned()));

    api.delete("typed", &DeleteParams::default())
        .await
        .expect("delete");
    let err = api.get("typed").await.expect_err("deleted");
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 404));
}

/// Applies watcher events to a set of names until `done` holds, with a deadline.
async fn drive_until(
    stream: &mut (impl futures::Stream<Item = Result<watcher::Event<ConfigMap>, watcher::Error>>
              + Unpin),
    seen: &mut Vec<watcher::Event<ConfigMap>>,
    done: impl Fn(&[watcher::Event<ConfigMap>]) -> bool,
    what: &str,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done(seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "timed out waiting for {what}; events: {}",
            summary(seen)
        );
        match tokio::time::timeout(left, stream.next()).await {
            Ok(Some(Ok(ev))) => seen.push(ev),
            Ok(Some(Err(e))) => panic!("watcher error while waiting for {what}: {e}"),
            Ok(None) => panic!("watcher ended while waiting for {what}"),
            Err(_) => panic!("timed out waiting for {what}; events: {}", summary(seen)),
        }
    }
}

fn name(cm: &ConfigMap) -> String {
    cm.metadata.name.clone().unwrap_or_default()
}

fn summary(events: &[watcher::Event<ConfigMap>]) -> String {
    events
        .iter()
        .map(|e| match e {
            watcher::Event::Init => "Init".to_owned(),
            watcher::Event::InitApply(o) => format!("InitApply({})", name(o)),
            watcher::Event::InitDone => "InitDone".to_owned(),
            watcher::Event::Apply(o) => format!("Apply({})", name(o)),
            watcher::Event::Delete(o) => format!("Delete({})", name(o)),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn applied(events: &[watcher::Event<ConfigMap>]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            watcher::Event::Apply(o) => Some(name(o)),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_resumes_without_relisting_and_reflector_follows() {
    let s = KubeServer::start(&[]);
    let client = client(&s).await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &configmap("before", "0"))
        .await
        .expect("create");

    // The server ends each watch after 1 s; the watcher must resume each time.
    let config = watcher::Config::default().timeout(1);
    let mut stream = watcher(api.clone(), config).boxed();
    let mut seen = Vec::new();
    drive_until(
        &mut stream,
        &mut seen,
        |evs| evs.iter().any(|e| matches!(e, watcher::Event::InitDone)),
        "the initial list",
    )
    .await;
    assert!(
        seen.iter()
            .any(|e| matches!(e, watcher::Event::InitApply(o) if name(o) == "before")),
        "{}",
        summary(&seen)
    );

    // Creates spread over 3 s, so several 1 s server-side watch timeouts fall between
    // them (the pause paces the writes; it waits for no state).
    let mut want = Vec::new();
    for i in 0..6 {
        let n = format!("live-{i}");
        api.create(&PostParams::default(), &configmap(&n, "1"))
            .await
            .expect("create");
        want.push(n);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let expected = want.clone();
    drive_until(
        &mut stream,
        &mut seen,
        move |evs| expected.iter().all(|n| applied(evs).contains(n)),
        "every live create",
    )
    .await;
    let live: Vec<String> = applied(&seen);
    assert_eq!(live, want, "each create once, in order: {}", summary(&seen));
    let inits = seen
        .iter()
        .filter(|e| matches!(e, watcher::Event::Init))
        .count();
    assert_eq!(
        inits,
        1,
        "a resumed watch must not relist: {}",
        summary(&seen)
    );
    drop(stream);

    // A reflector over the same API follows creates and deletes.
    let (reader, writer) = reflector::store::<ConfigMap>();
    let reflect = reflector(writer, watcher(api.clone(), watcher::Config::default()))
        .applied_objects()
        .try_for_each(|_| async { Ok(()) });
    let task = tokio::spawn(reflect);
    reader.wait_until_ready().await.expect("reflector ready");
    api.delete("live-0", &DeleteParams::default())
        .await
        .expect("delete");
    api.create(&PostParams::default(), &configmap("after", "2"))
        .await
        .expect("create");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let names: BTreeSet<String> = reader.state().iter().map(|c| name(c)).collect();
        if names.contains("after") && !names.contains("live-0") {
            assert!(
                names.contains("before") && names.contains("live-5"),
                "{names:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the reflector never caught up: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_lists_and_expired_resource_versions() {
    let s = KubeServer::start(&[]);
    let api: Api<ConfigMap> = Api::namespaced(client(&s).await, "default");
    let first = api
        .create(&PostParams::default(), &configmap("old", "0"))
        .await
        .expect("create");
    let old_rv = first.metadata.resource_version.clone().expect("rv");

    // sendInitialEvents: the initial state, then the initial-events-end bookmark
    // (InitDone), then live events.
    let mut stream = watcher(api.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut seen = Vec::new();
    drive_until(
        &mut stream,
        &mut seen,
        |evs| evs.iter().any(|e| matches!(e, watcher::Event::InitDone)),
        "the streamed initial state",
    )
    .await;
    assert!(
        seen.iter()
            .any(|e| matches!(e, watcher::Event::InitApply(o) if name(o) == "old")),
        "{}",
        summary(&seen)
    );
    api.create(&PostParams::default(), &configmap("streamed", "1"))
        .await
        .expect("create");
    drive_until(
        &mut stream,
        &mut seen,
        |evs| applied(evs).contains(&"streamed".to_owned()),
        "the live create",
    )
    .await;
    drop(stream);

    // client-go's streaming list may send no resourceVersion, or the last one it saw,
    // with resourceVersionMatch=NotOlderThan: both stream the state, then the end
    // bookmark.
    for rv in ["", old_rv.as_str()] {
        let mut events = api
            .watch(&WatchParams::streaming_lists(), rv)
            .await
            .unwrap_or_else(|e| panic!("streaming list from {rv:?}: {e}"))
            .boxed();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        let mut added = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, events.next()).await {
                Ok(Some(Ok(WatchEvent::Added(o)))) => added.push(name(&o)),
                Ok(Some(Ok(WatchEvent::Bookmark(b))))
                    if b.metadata
                        .annotations
                        .contains_key("k8s.io/initial-events-end") =>
                {
                    break
                }
                Ok(Some(Ok(_))) => {}
                other => panic!("streaming list from {rv:?}: {other:?}"),
            }
        }
        assert!(
            added.contains(&"streamed".to_owned()),
            "from {rv:?}: {added:?}"
        );
    }

    // Churn, then compact the history past `old_rv` through the etcd port.
    for i in 0..5 {
        api.patch(
            "old",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"data": {"v": i.to_string()}})),
        )
        .await
        .expect("patch");
    }
    let mut etcd =
        etcd_client::Client::connect([format!("http://127.0.0.1:{}", s.client_port)], None)
            .await
            .expect("etcd client");
    let head = etcd
        .get("/", None)
        .await
        .expect("get")
        .header()
        .expect("header")
        .revision();
    etcd.compact(head, None).await.expect("compact");

    // A raw watch from the compacted resourceVersion: 410 Expired, as a Status event.
    let mut raw = api
        .watch(&WatchParams::default().timeout(5), &old_rv)
        .await
        .expect("watch call")
        .boxed();
    let first = tokio::time::timeout(Duration::from_secs(10), raw.next())
        .await
        .expect("no answer to a watch from a compacted resourceVersion")
        .expect("the watch ended without an event");
    let status = match first {
        Ok(WatchEvent::Error(status)) => status,
        Err(kube::Error::Api(status)) => status,
        Ok(other) => panic!("expected 410 Expired, got {other:?}"),
        Err(e) => panic!("watch error: {e}"),
    };
    assert_eq!(status.code, 410, "{status:?}");
    assert_eq!(status.reason, "Expired");

    // A watcher still lists and watches after the compaction.
    let mut stream = watcher(api.clone(), watcher::Config::default()).boxed();
    let mut seen = Vec::new();
    drive_until(
        &mut stream,
        &mut seen,
        |evs| evs.iter().any(|e| matches!(e, watcher::Event::InitDone)),
        "a fresh list after compaction",
    )
    .await;
    let listed: BTreeSet<String> = seen
        .iter()
        .filter_map(|e| match e {
            watcher::Event::InitApply(o) => Some(name(o)),
            _ => None,
        })
        .collect();
    assert!(
        listed.contains("old") && listed.contains("streamed"),
        "{listed:?}"
    );
}

/// DELETE on a collection (kube's `delete_collection`, what the namespace controller
/// uses): with several workers it deletes exactly the selected objects, answers the
/// list as it was read, leaves an object with a finalizer marked for deletion, and a
/// malformed selector is a 400 that deletes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_collection_deletes_the_selection() {
    let s = KubeServer::start(&["--delete-collection-workers", "4"]);
    let api: Api<ConfigMap> = Api::namespaced(client(&s).await, "default");
    let labelled = |name: &str, set: &str| {
        let mut cm = configmap(name, "x");
        cm.metadata.labels = Some([("set".to_owned(), set.to_owned())].into());
        cm
    };
    for (set, count) in [("a", 40), ("b", 5)] {
        for i in 0..count {
            api.create(
                &PostParams::default(),
                &labelled(&format!("{set}-{i}"), set),
            )
            .await
            .expect("create");
        }
    }
    let mut kept = labelled("a-kept", "a");
    kept.metadata.finalizers = Some(vec!["example.com/keep".into()]);
    api.create(&PostParams::default(), &kept)
        .await
        .expect("create kept");

    let err = api
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("set in (a"),
        )
        .await
        .expect_err("malformed selector");
    assert!(
        matches!(err, kube::Error::Api(ref st) if st.code == 400 && st.reason == "BadRequest"),
        "{err:?}"
    );
    let count = |sel: &'static str| {
        let api = api.clone();
        async move {
            api.list(&ListParams::default().labels(sel))
                .await
                .expect("list")
                .items
        }
    };
    assert_eq!(
        count("set=a").await.len(),
        41,
        "a bad request deleted nothing"
    );

    let answer = api
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("set=a"),
        )
        .await
        .expect("deletecollection");
    let listed = answer.left().expect("the list of deleted objects");
    assert_eq!(listed.items.len(), 41);
    assert!(
        listed
            .items
            .iter()
            .all(|c| c.metadata.deletion_timestamp.is_none()),
        "the answer is the list as read"
    );

    let left = count("set=a").await;
    assert_eq!(left.len(), 1, "only the object with a finalizer remains");
    assert_eq!(left[0].metadata.name.as_deref(), Some("a-kept"));
    assert!(left[0].metadata.deletion_timestamp.is_some());
    assert_eq!(
        count("set=b").await.len(),
        5,
        "objects outside the selection stay"
    );

    api.patch(
        "a-kept",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("drop the finalizer");
    assert!(count("set=a").await.is_empty());
}
