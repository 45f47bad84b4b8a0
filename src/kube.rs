//! Assembles and starts the Kubernetes API of a replica: PKI, storage backend,
//! registry, admission, authentication, authorization, the HTTPS server and the
//! leader's controllers.
//!
//! Invariant: the API reaches data only through the `Storage` trait — the embedded
//! store of this replica, or external etcd endpoints with `--etcd-servers`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::apiserver::{self, ApiServer, Health};
use crate::config::{Config, KubeConfig};
use crate::node::NodeError;
use crate::pki::{self, PkiPaths, PkiRequest};
use crate::registry::store::Api;
use crate::registry::{kinds, ApiConfig, Hooks, Registry};
use crate::server::Shutdown;
use crate::storage::embedded::Embedded;
use crate::storage::Storage;
use crate::store::Store;
use crate::tls::{self, ClientAuth};

/// Readiness from the replicated store (see `store::readiness`): a leader is known
/// and still holds a quorum, and a linearizable read completed recently.
struct StoreHealth {
    store: Store,
}

#[async_trait::async_trait]
impl Health for StoreHealth {
    async fn ready_checks(&self) -> Vec<(&'static str, Option<String>)> {
        let ready = self.store.readiness();
        let shutdown = self
            .store
            .is_draining()
            .then(|| "process is shutting down".to_owned());
        vec![
            ("etcd", ready.read),
            ("etcd-readiness", ready.leader),
            ("shutdown", shutdown),
        ]
    }
}

/// The URL clients reach the API at, for the admin kubeconfig.
fn server_url(kube: &KubeConfig, bound: SocketAddr) -> String {
    let host = match kube.advertise_address.unwrap_or(bound.ip()) {
        ip if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        ip => ip,
    };
    match host {
        IpAddr::V6(v6) => format!("https://[{v6}]:{}", bound.port()),
        IpAddr::V4(v4) => format!("https://{v4}:{}", bound.port()),
    }
}

/// Starts the API; returns where it listens and the admin kubeconfig's path.
pub async fn start(
    config: &Config,
    kube: &KubeConfig,
    store: Store,
    listener: Option<TcpListener>,
    shutdown: Shutdown,
    tasks: &mut Vec<JoinHandle<()>>,
) -> Result<(SocketAddr, PathBuf), NodeError> {
    let listener = match listener {
        Some(l) => l,
        None => TcpListener::bind(kube.bind)
            .await
            .map_err(|source| NodeError::Bind {
                addr: kube.bind,
                source,
            })?,
    };
    let bound = listener
        .local_addr()
        .map_err(|e| NodeError::Kube(e.to_string()))?;

    // PKI: complete whatever is missing (a shared --cert-dir is never overwritten).
    let paths = PkiPaths::new(&kube.cert_dir);
    let mut hosts = pki::default_hosts(Some(IpAddr::V4(kube.service_cidr.nth(1))));
    hosts.extend(kube.tls_sans.iter().cloned());
    if let Some(a) = kube.advertise_address {
        hosts.push(a.to_string());
    }
    if !bound.ip().is_unspecified() {
        hosts.push(bound.ip().to_string());
    }
    let url = server_url(kube, bound);
    pki::ensure(
        &paths,
        &PkiRequest {
            hosts,
            server: url.clone(),
        },
    )?;
    // The admin kubeconfig next to the data, pointing at this replica.
    let kubeconfig_path = config.data_dir.join("admin.kubeconfig");
    if !kubeconfig_path.exists() {
        let read = |p: PathBuf| {
            std::fs::read_to_string(&p)
                .map_err(|e| NodeError::Kube(format!("{}: {e}", p.display())))
        };
        let text = pki::kubeconfig(
            &url,
            &read(paths.ca_cert())?,
            &read(paths.admin_cert())?,
            &read(paths.admin_key())?,
            "kubernetes-admin",
        );
        std::fs::create_dir_all(&config.data_dir).map_err(|e| NodeError::Kube(e.to_string()))?;
        std::fs::write(&kubeconfig_path, text).map_err(|e| NodeError::Kube(e.to_string()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ =
                std::fs::set_permissions(&kubeconfig_path, std::fs::Permissions::from_mode(0o600));
        }
    }
    let ca_pem =
        std::fs::read_to_string(paths.ca_cert()).map_err(|e| NodeError::Kube(e.to_string()))?;

    // Storage: this replica's store, or external etcd.
    let storage: Arc<dyn Storage> = if kube.etcd_servers.is_empty() {
        Arc::new(Embedded::new(store.clone()))
    } else {
        let tls = match &kube.etcd_cafile {
            Some(ca) => {
                let identity = match (&kube.etcd_certfile, &kube.etcd_keyfile) {
                    (Some(c), Some(k)) => Some((c.as_path(), k.as_path())),
                    _ => None,
                };
                Some(tls::client_config(ca, identity)?)
            }
            None => None,
        };
        Arc::new(
            crate::storage::etcd::Etcd::new(crate::storage::etcd::EtcdOptions {
                endpoints: kube.etcd_servers.clone(),
                tls,
                timeout: std::time::Duration::from_secs(10),
            })
            .map_err(|e| NodeError::Kube(e.to_string()))?,
        )
    };
    let storage: Arc<dyn Storage> = Arc::new(crate::storage::instrumented::Instrumented::new(
        storage,
        &kube.etcd_prefix,
    ));
    let root = kube.etcd_prefix.clone();
    let admission = crate::admission::Chain::from_names(
        &kube.enable_admission_plugins,
        &kube.disable_admission_plugins,
        storage.clone(),
        &root,
    )
    .map_err(NodeError::Kube)?;
    let api = Api {
        registry: Registry::new(kinds::all()),
        storage: storage.clone(),
        root: root.clone(),
        admission: Arc::new(admission),
        hooks: Arc::new(Hooks {
            storage: storage.clone(),
            root,
            config: Arc::new(ApiConfig {
                service_cidr: kube.service_cidr,
                node_port_range: kube.node_port_range,
                event_ttl_seconds: kube.event_ttl.as_secs() as i64,
                delete_collection_workers: kube.delete_collection_workers,
            }),
        }),
    };
    let authorizers: Vec<Box<dyn crate::authz::Authorizer>> = kube
        .authorization_mode
        .iter()
        .map(|m| -> Box<dyn crate::authz::Authorizer> {
            match m.as_str() {
                "AlwaysDeny" => Box::new(crate::authz::AlwaysDeny),
                _ => Box::new(crate::authz::AlwaysAllow),
            }
        })
        .collect();
    let authn = crate::authn::build_with(&kube.authn, &paths, Some(Arc::new(api.clone())))
        .map_err(NodeError::Kube)?;
    let external = url.trim_start_matches("https://").to_owned();
    let oidc = crate::authn::oidc_router(&authn, &external);
    let audit = match &kube.audit_log_path {
        Some(path) => Some(Arc::new(
            crate::apiserver::audit::AuditLog::open(path).map_err(|e| {
                NodeError::Kube(format!("--audit-log-path {}: {e}", path.display()))
            })?,
        )),
        None => None,
    };
    let server = Arc::new(ApiServer {
        api: api.clone(),
        authn,
        authz: crate::authz::Chain { authorizers },
        read_only: Semaphore::new(kube.max_requests_inflight),
        mutating: Semaphore::new(kube.max_mutating_requests_inflight),
        request_timeout: kube.request_timeout,
        server_address: bound.to_string(),
        health: Arc::new(StoreHealth {
            store: store.clone(),
        }),
        shutdown: shutdown.clone(),
        extra: Some(crate::apiserver::openapi::router(Arc::new(api.registry.clone())).merge(oidc)),
        audit,
    });
    let cert = kube
        .tls_cert_file
        .clone()
        .unwrap_or_else(|| paths.serving_cert());
    let key = kube
        .tls_private_key_file
        .clone()
        .unwrap_or_else(|| paths.serving_key());
    let client_ca = kube
        .client_ca_file
        .clone()
        .unwrap_or_else(|| paths.ca_cert());
    let tls = tls::server_config(&cert, &key, &ClientAuth::Optional(client_ca))?;
    tasks.push(tokio::spawn(crate::server::serve_with(
        listener,
        Some(tls),
        apiserver::router(server),
        shutdown.clone(),
        crate::server::ServeOptions {
            repair_authority: false,
            goaway_chance: config.goaway_chance,
        },
    )));
    let leader_store = store.clone();
    let controllers = crate::controllers::Controllers {
        api,
        ca_pem,
        compaction_interval: kube.compaction_interval,
        should_run: Arc::new(move || leader_store.is_leader()),
        advertise: (
            kube.advertise_address
                .unwrap_or(if bound.ip().is_unspecified() {
                    IpAddr::V4(Ipv4Addr::LOCALHOST)
                } else {
                    bound.ip()
                }),
            bound.port(),
        ),
    };
    tasks.push(tokio::spawn(controllers.run(shutdown)));
    tracing::info!(address = %bound, kubeconfig = %kubeconfig_path.display(), "Kubernetes API serving");
    Ok((bound, kubeconfig_path))
}
