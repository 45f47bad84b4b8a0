//! What an API server alone must keep true, run by the replica that leads: the
//! system namespaces exist; a terminating namespace is emptied and then removed; every
//! namespace has a `default` ServiceAccount and the `kube-root-ca.crt` ConfigMap; the
//! store's history is compacted periodically, as kube-apiserver compacts etcd.
//!
//! Invariants: every action is an ordinary API write (through admission and CAS), so
//! two replicas doing the same chore at once cannot corrupt anything; chores only run
//! while `should_run()` says this replica leads.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::authn::UserInfo;
use crate::registry::store::{Api, Ctx, DeleteOptions, ListOptions};
use crate::registry::{meta, Resource};
use crate::server::Shutdown;

/// The namespaces that always exist.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

fn system_ctx() -> Ctx {
    Ctx::new(UserInfo {
        name: "system:apiserver".into(),
        groups: vec!["system:masters".into()],
        ..Default::default()
    })
}

fn resource(api: &Api, group: &str, resource: &str) -> Option<Arc<Resource>> {
    api.registry
        .all()
        .iter()
        .find(|r| r.group == group && r.resource == resource)
        .cloned()
}

/// Creates `obj` unless it exists.
async fn ensure(api: &Api, res: &Resource, ns: Option<&str>, obj: Value) {
    let ctx = system_ctx();
    match api.create(res, res.storage_version(), &ctx, ns, obj).await {
        Ok(_) => {}
        Err(e) if e.code == 409 => {}
        Err(e) => tracing::debug!(resource = res.resource, error = %e, "could not ensure object"),
    }
}

/// The next item of an optional watch; pending forever when there is none.
async fn next_event(stream: &mut Option<crate::storage::WatchStream>) -> Option<()> {
    use futures::StreamExt;
    match stream {
        Some(s) => s.next().await.map(|_| ()),
        None => std::future::pending().await,
    }
}

/// The chores, with what they need.
pub struct Controllers {
    pub api: Api,
    /// The cluster CA in PEM, published as kube-root-ca.crt.
    pub ca_pem: String,
    pub compaction_interval: Duration,
    /// True while this replica should run the chores (it leads).
    pub should_run: Arc<dyn Fn() -> bool + Send + Sync>,
    /// Where this replica serves the API, for the `kubernetes` Service's endpoints.
    pub advertise: (std::net::IpAddr, u16),
}

impl Controllers {
    /// Runs the chores until shutdown. Shutdown interrupts a chore half-way: every
    /// chore is idempotent and the next leader repeats it.
    pub async fn run(self, shutdown: Shutdown) {
        let mut stop = shutdown.clone();
        tokio::select! {
            _ = self.chores(shutdown) => {}
            _ = stop.wait() => {}
        }
    }

    async fn chores(self, mut shutdown: Shutdown) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_compaction = tokio::time::Instant::now();
        let mut compact_target: Option<i64> = None;
        let mut ticks: u64 = 0;
        let mut repair = crate::registry::kinds::services::AllocationRepair::default();
        // Namespace changes wake the loop at once, so a new namespace has its default
        // ServiceAccount before its first pod arrives.
        let ns_prefix = crate::storage::keys::list_prefix(&self.api.root, "namespaces", None);
        let mut ns_events = self.api.storage.watch(&ns_prefix, 0).await.ok();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                event = next_event(&mut ns_events) => {
                    if event.is_none() {
                        ns_events = self.api.storage.watch(&ns_prefix, 0).await.ok();
                    }
                }
                _ = shutdown.wait() => return,
            }
            if !(self.should_run)() {
                continue;
            }
            self.system_namespaces().await;
            if ticks % 10 == 0 {
                let (ip, port) = self.advertise;
                crate::registry::kinds::services::ensure_kubernetes_service(&self.api, ip, port)
                    .await;
                crate::registry::kinds::scheduling::bootstrap(&self.api).await;
                crate::registry::kinds::rbac::bootstrap(&self.api).await;
            }
            if ticks % 30 == 0 {
                self.count_objects().await;
            }
            if ticks % 60 == 30 {
                if let Err(e) = repair.run_once(&self.api).await {
                    tracing::warn!(error = %e, "service allocation repair failed");
                }
            }
            ticks += 1;
            self.namespaces().await;
            if !self.compaction_interval.is_zero()
                && last_compaction.elapsed() >= self.compaction_interval
            {
                last_compaction = tokio::time::Instant::now();
                // Compact to the revision seen one interval ago, as kube-apiserver does.
                if let Some(rev) = compact_target {
                    if let Err(e) = self.api.storage.compact(rev).await {
                        tracing::warn!(error = %e, "compaction failed");
                    } else {
                        tracing::info!(revision = rev, "compacted history");
                    }
                }
                compact_target = self.api.storage.current_revision().await.ok();
            }
        }
    }

    /// Object counts per resource (`apiserver_resource_objects`, and the older
    /// `apiserver_storage_objects`).
    async fn count_objects(&self) {
        for res in self.api.registry.all() {
            if !res.has_verb("list") {
                continue;
            }
            let prefix =
                crate::storage::keys::list_prefix(&self.api.root, res.storage_prefix, None);
            if let Ok(n) = self.api.storage.count(&prefix).await {
                metrics::gauge!("apiserver_resource_objects", "group" => res.group, "resource" => res.resource)
                    .set(n as f64);
                let qualified = if res.group.is_empty() {
                    res.resource.to_owned()
                } else {
                    format!("{}.{}", res.resource, res.group)
                };
                metrics::gauge!("apiserver_storage_objects", "resource" => qualified).set(n as f64);
            }
        }
    }

    async fn system_namespaces(&self) {
        let Some(ns) = resource(&self.api, "", "namespaces") else {
            return;
        };
        for name in SYSTEM_NAMESPACES {
            let key =
                crate::storage::keys::object_key(&self.api.root, ns.storage_prefix, None, name);
            if matches!(
                self.api
                    .storage
                    .get(&key, crate::storage::ReadMode::Any)
                    .await,
                Ok(Some(_))
            ) {
                continue;
            }
            ensure(&self.api, &ns, None, json!({"metadata": {"name": name}})).await;
        }
    }

    /// Per namespace: default ServiceAccount and root CA for active ones; emptying and
    /// finalizing for terminating ones.
    async fn namespaces(&self) {
        let Some(ns_res) = resource(&self.api, "", "namespaces") else {
            return;
        };
        let Ok(page) = self
            .api
            .list(&ns_res, "v1", None, &ListOptions::default())
            .await
        else {
            return;
        };
        let sa = resource(&self.api, "", "serviceaccounts");
        let cm = resource(&self.api, "", "configmaps");
        for ns in page.items {
            let name = meta::name(&ns).to_owned();
            if meta::deletion_timestamp(&ns).is_some() {
                self.empty_and_finalize(&ns_res, &name).await;
                continue;
            }
            if let Some(sa) = &sa {
                let key = crate::storage::keys::object_key(
                    &self.api.root,
                    sa.storage_prefix,
                    Some(&name),
                    "default",
                );
                if !matches!(
                    self.api
                        .storage
                        .get(&key, crate::storage::ReadMode::Any)
                        .await,
                    Ok(Some(_))
                ) {
                    ensure(
                        &self.api,
                        sa,
                        Some(&name),
                        json!({"metadata": {"name": "default", "namespace": name}}),
                    )
                    .await;
                }
            }
            if let Some(cm) = &cm {
                let key = crate::storage::keys::object_key(
                    &self.api.root,
                    cm.storage_prefix,
                    Some(&name),
                    "kube-root-ca.crt",
                );
                if !matches!(
                    self.api
                        .storage
                        .get(&key, crate::storage::ReadMode::Any)
                        .await,
                    Ok(Some(_))
                ) {
                    ensure(
                        &self.api,
                        cm,
                        Some(&name),
                        json!({
                            "metadata": {"name": "kube-root-ca.crt", "namespace": name,
                                "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}},
                            "data": {"ca.crt": self.ca_pem},
                        }),
                    )
                    .await;
                }
            }
        }
    }

    /// Deletes everything in a terminating namespace; once it is empty, removes the
    /// `kubernetes` finalizer so the namespace goes.
    async fn empty_and_finalize(&self, ns_res: &Resource, name: &str) {
        let ctx = system_ctx();
        let mut remaining = 0usize;
        for res in self.api.registry.all() {
            if !res.namespaced || !res.has_verb("list") {
                continue;
            }
            let listed = self
                .api
                .list(
                    res,
                    res.storage_version(),
                    Some(name),
                    &ListOptions::default(),
                )
                .await;
            let Ok(page) = listed else { continue };
            for obj in page.items {
                remaining += 1;
                if meta::deletion_timestamp(&obj).is_some() {
                    continue;
                }
                let opts = DeleteOptions {
                    propagation_policy: Some("Background".into()),
                    ..Default::default()
                };
                let _ = self
                    .api
                    .delete(
                        res,
                        res.storage_version(),
                        &ctx,
                        Some(name),
                        meta::name(&obj),
                        &opts,
                    )
                    .await;
            }
        }
        if remaining > 0 {
            return;
        }
        let result = self
            .api
            .modify(
                ns_res,
                "v1",
                &ctx,
                None,
                name,
                crate::registry::store::Part::Finalize,
                |mut ns| {
                    if let Some(f) = ns
                        .pointer_mut("/spec/finalizers")
                        .and_then(Value::as_array_mut)
                    {
                        f.retain(|x| x != "kubernetes");
                    }
                    Ok(ns)
                },
            )
            .await;
        match result {
            Ok(_) => tracing::info!(namespace = name, "namespace emptied and finalized"),
            Err(e) if e.code == 404 => {}
            Err(e) => {
                tracing::debug!(namespace = name, error = %e, "finalizing namespace deferred")
            }
        }
    }
}
