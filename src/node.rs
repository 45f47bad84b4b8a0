//! Wires one replica together: data directory and identity, the MVCC store, the
//! write-ahead log, Raft, the proposer, the store API, the peer and client servers;
//! owns startup (bootstrap or join) and shutdown.
//!
//! Invariants: a data directory belongs to one member of one cluster (its identity
//! file says which, and a mismatch refuses to start); servers bind only the listeners
//! the config names (or that a test hands in, already bound).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::{Config, TlsFiles};
use crate::mvcc::{MvccStore, StoreOptions as MvccOptions, WatchHub};
use crate::raft::fault::FaultSwitch;
use crate::raft::log_store::LogStore;
use crate::raft::network::{Network, PeerClients};
use crate::raft::peer::PeerService;
use crate::raft::proposer::{Proposer, ProposerOptions, Route};
use crate::raft::state_machine::StateMachine;
use crate::raft::stream::StreamServer;
use crate::raft::wal::WalOptions;
use crate::raft::{Member, NodeId, Raft};
use crate::server::{self, Shutdown, ShutdownTrigger};
use crate::store::{self, Handler, LeaderCall, LeaderReply, Store, StoreOptions};
use crate::tls::{self, ClientAuth};

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("data directory {path}: {message}")]
    DataDir { path: PathBuf, message: String },
    #[error("{0}")]
    Storage(String),
    #[error("TLS: {0}")]
    Tls(#[from] tls::TlsError),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("raft: {0}")]
    Raft(String),
    #[error("joining the cluster: {0}")]
    Join(String),
    #[error("PKI: {0}")]
    Pki(#[from] crate::pki::PkiError),
    #[error("Kubernetes API: {0}")]
    Kube(String),
}

/// Format of the identity file; bump on incompatible layout changes.
const IDENTITY_FORMAT: u32 = 1;

/// Who this data directory belongs to.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Identity {
    pub format: u32,
    pub name: String,
    pub member_id: NodeId,
    pub cluster_id: u64,
}

/// The paths of a data directory, laid out as etcd lays out its own.
pub struct DataDir {
    pub root: PathBuf,
}

impl DataDir {
    pub fn member(&self) -> PathBuf {
        self.root.join("member")
    }
    pub fn identity(&self) -> PathBuf {
        self.member().join("identity.json")
    }
    pub fn wal(&self) -> PathBuf {
        self.member().join("wal")
    }
    pub fn snap(&self) -> PathBuf {
        self.member().join("snap")
    }
    pub fn db(&self) -> PathBuf {
        self.snap().join("db")
    }

    /// Reads the identity; None for a directory that was never initialized.
    pub fn read_identity(&self) -> Result<Option<Identity>, NodeError> {
        let path = self.identity();
        match std::fs::read(&path) {
            Ok(bytes) => {
                let id: Identity =
                    serde_json::from_slice(&bytes).map_err(|e| NodeError::DataDir {
                        path: path.clone(),
                        message: format!("unreadable identity file: {e}"),
                    })?;
                if id.format != IDENTITY_FORMAT {
                    return Err(NodeError::DataDir {
                        path,
                        message: format!("identity format {} is not {IDENTITY_FORMAT}", id.format),
                    });
                }
                Ok(Some(id))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let member = self.member();
                if member.exists()
                    && std::fs::read_dir(&member)
                        .map(|mut d| d.next().is_some())
                        .unwrap_or(true)
                {
                    return Err(NodeError::DataDir {
                        path: member,
                        message: "has data but no identity file: not a kuberaft member directory (refusing to use it)"
                            .into(),
                    });
                }
                Ok(None)
            }
            Err(e) => Err(NodeError::DataDir {
                path,
                message: e.to_string(),
            }),
        }
    }

    /// Writes the identity durably (temp file, fsync, rename, fsync directory).
    pub fn write_identity(&self, id: &Identity) -> Result<(), NodeError> {
        let err = |e: std::io::Error| NodeError::DataDir {
            path: self.identity(),
            message: e.to_string(),
        };
        std::fs::create_dir_all(self.member()).map_err(err)?;
        let tmp = self.member().join("identity.json.tmp");
        let bytes = serde_json::to_vec_pretty(id).map_err(|e| err(std::io::Error::other(e)))?;
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(err)?;
            f.write_all(&bytes).map_err(err)?;
            f.sync_all().map_err(err)?;
        }
        std::fs::rename(&tmp, self.identity()).map_err(err)?;
        std::fs::File::open(self.member())
            .and_then(|d| d.sync_all())
            .map_err(err)
    }
}

/// Listeners a caller bound already (tests bind port 0).
#[derive(Default)]
pub struct Listeners {
    pub client: Vec<TcpListener>,
    pub peer: Vec<TcpListener>,
    pub kube: Option<TcpListener>,
}

/// A running replica.
pub struct Node {
    pub store: Store,
    pub identity: Identity,
    pub fault: FaultSwitch,
    pub client_addrs: Vec<SocketAddr>,
    pub peer_addrs: Vec<SocketAddr>,
    /// Where the Kubernetes API listens, and its admin kubeconfig.
    pub kube: Option<(SocketAddr, PathBuf)>,
    trigger: ShutdownTrigger,
    shutdown: Shutdown,
    tasks: Vec<JoinHandle<()>>,
    peer_trigger: ShutdownTrigger,
    peer_tasks: Vec<JoinHandle<()>>,
}

/// openraft's timing from etcd's flags. A follower of a live leader campaigns after
/// the leader lease (openraft: `election_timeout_max`) plus a random timeout in
/// `[min, max]`; with `max = --election-timeout` and `min` two heartbeats that is
/// between `et + 2 hb` and `2 et` of silence — etcd's `[et, 2 et)` — and the window is
/// wide enough that two followers rarely split the vote.
fn raft_config(config: &Config) -> Result<openraft::Config, NodeError> {
    let et = config.election_timeout.as_millis() as u64;
    let hb = config.heartbeat.as_millis() as u64;
    let rc = openraft::Config {
        cluster_name: config.token.clone(),
        heartbeat_interval: hb,
        election_timeout_min: (hb * 2).min(et.saturating_sub(1)).max(1),
        election_timeout_max: et,
        install_snapshot_timeout: 10_000,
        max_payload_entries: 64,
        replication_lag_threshold: 5_000,
        snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(config.snapshot_count),
        snapshot_max_chunk_size: 4 << 20,
        max_in_snapshot_log_to_keep: config.snapshot_catchup_entries,
        purge_batch_size: 256,
        ..Default::default()
    };
    rc.validate().map_err(|e| NodeError::Raft(e.to_string()))
}

/// Server and client TLS configurations of the peer port.
type PeerTls = (
    Option<Arc<rustls::ServerConfig>>,
    Option<Arc<rustls::ClientConfig>>,
);

fn peer_tls(files: &Option<TlsFiles>) -> Result<PeerTls, NodeError> {
    let Some(f) = files else {
        return Ok((None, None));
    };
    let auth = match (&f.ca, f.client_cert_auth) {
        (Some(ca), true) => ClientAuth::Required(ca.clone()),
        (Some(ca), false) => ClientAuth::Optional(ca.clone()),
        (None, _) => ClientAuth::None,
    };
    let server = tls::server_config(&f.cert, &f.key, &auth)?;
    let client = match &f.ca {
        Some(ca) => Some(tls::client_config(ca, Some((&f.cert, &f.key)))?),
        None => None,
    };
    Ok((Some(server), client))
}

fn client_tls(files: &Option<TlsFiles>) -> Result<Option<Arc<rustls::ServerConfig>>, NodeError> {
    let Some(f) = files else { return Ok(None) };
    let auth = match (&f.ca, f.client_cert_auth) {
        (Some(ca), true) => ClientAuth::Required(ca.clone()),
        (Some(ca), false) => ClientAuth::Optional(ca.clone()),
        (None, _) => ClientAuth::None,
    };
    Ok(Some(tls::server_config(&f.cert, &f.key, &auth)?))
}

async fn bind_all(
    urls: &[crate::config::ListenUrl],
    given: Vec<TcpListener>,
) -> Result<Vec<TcpListener>, NodeError> {
    if !given.is_empty() {
        return Ok(given);
    }
    let mut out = Vec::new();
    for u in urls {
        let l = TcpListener::bind(u.addr)
            .await
            .map_err(|source| NodeError::Bind {
                addr: u.addr,
                source,
            })?;
        out.push(l);
    }
    Ok(out)
}

/// Learns the cluster id from any reachable member of `--initial-cluster` (joining).
async fn discover_cluster(config: &Config, peers: &PeerClients) -> Result<u64, NodeError> {
    let payload = crate::raft::peer::encode(&LeaderCall::ClusterInfo)
        .map_err(|s| NodeError::Join(s.message().to_owned()))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        for (name, urls) in &config.initial_cluster {
            if *name == config.name {
                continue;
            }
            for url in urls {
                let Ok(client) = peers.client(url) else {
                    continue;
                };
                if let Ok(Ok(bytes)) = client.call(payload.clone(), Duration::from_secs(2)).await {
                    if let Ok(LeaderReply::ClusterInfo { cluster_id }) =
                        crate::raft::peer::decode(&bytes)
                    {
                        return Ok(cluster_id);
                    }
                }
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(NodeError::Join(
                "no member of --initial-cluster answered (is this member added with `etcdctl member add`?)".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

impl Node {
    /// Starts a replica. With `listeners` empty, binds the configured URLs.
    pub async fn start(config: Config, listeners: Listeners) -> Result<Node, NodeError> {
        crate::metrics::init();
        let dir = DataDir {
            root: config.data_dir.clone(),
        };
        let (peer_server_tls, peer_client_tls) = peer_tls(&config.peer_tls)?;
        let client_server_tls = client_tls(&config.client_tls)?;
        let fault = FaultSwitch::default();
        let peers = PeerClients::new(peer_client_tls, fault.clone());

        // Bind first: a member whose ports are taken must not touch its data.
        let client_listeners = bind_all(&config.listen_client, listeners.client).await?;
        let peer_listeners = bind_all(&config.listen_peer, listeners.peer).await?;

        // Identity: who this directory belongs to.
        let existing = dir.read_identity()?;
        let initial_ids: Vec<(NodeId, &String, &Vec<String>)> = config
            .initial_cluster
            .iter()
            .map(|(name, urls)| (store::member_id(urls, &config.token), name, urls))
            .collect();
        let (identity, bootstrap) = match existing {
            Some(id) => {
                if id.name != config.name {
                    return Err(NodeError::DataDir {
                        path: dir.identity(),
                        message: format!("belongs to member {:?}, not {:?}", id.name, config.name),
                    });
                }
                (id, false)
            }
            None if config.join_existing => {
                let cluster_id = discover_cluster(&config, &peers).await?;
                let member_id = store::added_member_id(&config.advertise_peer_urls, cluster_id);
                let id = Identity {
                    format: IDENTITY_FORMAT,
                    name: config.name.clone(),
                    member_id,
                    cluster_id,
                };
                dir.write_identity(&id)?;
                (id, false)
            }
            None => {
                let ids: Vec<NodeId> = initial_ids.iter().map(|(id, _, _)| *id).collect();
                let mine = store::member_id(&config.advertise_peer_urls, &config.token);
                let id = Identity {
                    format: IDENTITY_FORMAT,
                    name: config.name.clone(),
                    member_id: mine,
                    cluster_id: store::cluster_id(&ids, &config.token),
                };
                dir.write_identity(&id)?;
                (id, true)
            }
        };
        let bootstrap = bootstrap || !config.join_existing;

        for d in [dir.wal(), dir.snap()] {
            std::fs::create_dir_all(&d).map_err(|e| NodeError::DataDir {
                path: d.clone(),
                message: e.to_string(),
            })?;
        }
        let mvcc = MvccStore::open(
            &dir.db(),
            &MvccOptions {
                cache_capacity_bytes: config.backend_cache_bytes,
            },
        )
        .map_err(|e| NodeError::Storage(e.to_string()))?;
        let log_store = LogStore::open(&dir.wal(), WalOptions::default())
            .map_err(|e| NodeError::Storage(e.to_string()))?
            .sync_in_parallel_as(identity.member_id);
        let durability = log_store.durability();
        let log_reader = log_store.reader();
        let hub = WatchHub::new(mvcc.clone());
        let sm = StateMachine::new(mvcc.clone(), Arc::new(hub.clone()), &dir.snap())
            .map_err(|e| NodeError::Storage(e.to_string()))?
            .with_durability(durability.clone());
        let applied = sm.applied_index();
        let raft = Raft::new(
            identity.member_id,
            Arc::new(raft_config(&config)?),
            Network::new(peers.clone()).with_durability(durability),
            log_store,
            sm,
        )
        .await
        .map_err(|e| NodeError::Raft(e.to_string()))?;

        let hold = Arc::new(AtomicBool::new(false));
        let proposer = Proposer::spawn(Route {
            id: identity.member_id,
            raft: raft.clone(),
            peers: peers.clone(),
            options: Arc::new(ProposerOptions {
                max_inflight: config.max_inflight_batches,
                quorum_timeout: config.election_timeout,
                ..Default::default()
            }),
            applied: applied.clone(),
            hold: hold.clone(),
        });
        let advertised = Member {
            name: config.name.clone(),
            peer_urls: config.advertise_peer_urls.clone(),
            client_urls: config.advertise_client_urls.clone(),
            join_as_voter: false,
        };
        let store = Store::new(store::Parts {
            id: identity.member_id,
            cluster_id: identity.cluster_id,
            raft: raft.clone(),
            mvcc: mvcc.clone(),
            hub,
            proposer,
            peers: peers.clone(),
            applied,
            options: StoreOptions {
                quota_backend_bytes: config.quota_backend_bytes,
                max_request_bytes: config.max_request_bytes,
                max_txn_ops: config.max_txn_ops,
                election_timeout: config.election_timeout,
                request_timeout: Duration::from_secs(7),
                scratch_dir: dir.snap(),
            },
            hold,
            advertised,
            log: log_reader,
        });

        let (trigger, shutdown) = ShutdownTrigger::new();
        // The peer port closes last: until every client request is answered this
        // member keeps replicating and applying, which a forwarded write waits for.
        let (peer_trigger, peer_shutdown) = ShutdownTrigger::new();
        let mut tasks = Vec::new();
        let mut peer_tasks = Vec::new();
        let peer_handler = Arc::new(Handler::new(store.clone()));
        let peer_router =
            tonic::service::Routes::new(PeerService::new(peer_handler.clone(), fault.clone()))
                .into_axum_router()
                .merge(
                    StreamServer::new(
                        raft.clone(),
                        peer_handler,
                        fault.clone(),
                        peer_shutdown.clone(),
                    )
                    .router(),
                );
        let mut peer_addrs = Vec::new();
        for l in peer_listeners {
            peer_addrs.push(
                l.local_addr()
                    .map_err(|e| NodeError::Storage(e.to_string()))?,
            );
            peer_tasks.push(tokio::spawn(server::serve(
                l,
                peer_server_tls.clone(),
                peer_router.clone(),
                peer_shutdown.clone(),
            )));
        }

        if bootstrap
            && !raft
                .is_initialized()
                .await
                .map_err(|e| NodeError::Raft(e.to_string()))?
        {
            let members: BTreeMap<NodeId, Member> = initial_ids
                .iter()
                .map(|(id, name, urls)| {
                    (
                        *id,
                        Member {
                            name: (*name).clone(),
                            peer_urls: (*urls).clone(),
                            // Every member must propose the very same initial
                            // membership (they all write it at log index 0), so only
                            // what --initial-cluster says goes in; client URLs are
                            // published by each member once it runs.
                            client_urls: Vec::new(),
                            join_as_voter: false,
                        },
                    )
                })
                .collect();
            match raft.initialize(members).await {
                Ok(()) => tracing::info!(member = identity.member_id, "bootstrapped a new cluster"),
                // Another member's initialization reached us first: that is fine.
                Err(e) => tracing::info!(error = %e, "cluster already initialized"),
            }
        }

        let mut client_router = crate::etcd::router(store.clone(), Duration::from_secs(600));
        if config.enable_fault_injection {
            tracing::warn!("fault injection enabled: the peer-isolation switch is served");
            client_router = client_router.merge(crate::drill::fault_api::router(fault.clone()));
        }
        let mut client_addrs = Vec::new();
        for l in client_listeners {
            client_addrs.push(
                l.local_addr()
                    .map_err(|e| NodeError::Storage(e.to_string()))?,
            );
            tasks.push(tokio::spawn(server::serve_with(
                l,
                client_server_tls.clone(),
                client_router.clone(),
                shutdown.clone(),
                server::ServeOptions {
                    repair_authority: true,
                    goaway_chance: 0.0,
                },
            )));
        }
        store.spawn_background(shutdown.clone());
        tasks.push(tokio::spawn(sample_raft_metrics(
            store.clone(),
            shutdown.clone(),
        )));
        let kube = match &config.kube {
            Some(kube) => Some(
                crate::kube::start(
                    &config,
                    kube,
                    store.clone(),
                    listeners.kube,
                    shutdown.clone(),
                    &mut tasks,
                )
                .await?,
            ),
            None => None,
        };
        tracing::info!(
            name = %config.name,
            member = format!("{:x}", identity.member_id),
            cluster = format!("{:x}", identity.cluster_id),
            client = ?client_addrs,
            peer = ?peer_addrs,
            "member started"
        );
        Ok(Node {
            store,
            identity,
            fault,
            client_addrs,
            peer_addrs,
            kube,
            trigger,
            shutdown,
            tasks,
            peer_trigger,
            peer_tasks,
        })
    }

    /// A handle that completes when shutdown is triggered.
    pub fn shutdown_signal(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Stops at once: servers, Raft, and makes the state machine durable.
    pub async fn stop(self) {
        self.shutdown_with(&StopOptions::default()).await
    }

    /// A graceful stop (SIGTERM): fail readiness first and wait `delay` so load
    /// balancers move away, hand leadership to the most caught-up voter, then stop
    /// accepting, let in-flight requests finish and end watches (clients reconnect
    /// elsewhere), and stop Raft.
    pub async fn shutdown_with(self, opts: &StopOptions) {
        self.store.begin_draining();
        self.trigger.drain();
        // A member on its way out never campaigns: once its peer port closes it would
        // stop hearing the leader and, with elections on, keep raising the term.
        self.store.set_elections(false);
        if !opts.delay.is_zero() {
            tracing::info!(delay = ?opts.delay, "shutting down: readiness failing, waiting for load balancers");
            tokio::time::sleep(opts.delay).await;
        }
        if self.store.is_leader() {
            if let Some(target) = self.store.best_successor() {
                tracing::info!(
                    target = format!("{target:x}"),
                    "handing over leadership before shutdown"
                );
                let transfer = self.store.move_leader(target);
                match tokio::time::timeout(Duration::from_secs(10), transfer).await {
                    Ok(Ok(())) => tracing::info!("leadership handed over"),
                    Ok(Err(e)) => tracing::warn!(error = %e, "leadership transfer failed"),
                    Err(_) => tracing::warn!("leadership transfer timed out"),
                }
            }
        }
        self.trigger.trigger();
        let deadline = tokio::time::Instant::now() + opts.drain_timeout;
        let mut pending = Vec::new();
        for (i, mut t) in self.tasks.into_iter().enumerate() {
            if tokio::time::timeout_at(deadline, &mut t).await.is_err() {
                pending.push(i);
                t.abort();
            }
        }
        self.peer_trigger.trigger();
        for mut t in self.peer_tasks {
            if tokio::time::timeout_at(deadline, &mut t).await.is_err() {
                t.abort();
            }
        }
        if !pending.is_empty() {
            tracing::warn!(
                ?pending,
                "in-flight requests did not finish in time; stopping anyway"
            );
        }
        if let Err(e) = self.store.raft().shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
        let mvcc = self.store.mvcc().clone();
        let _ = tokio::task::spawn_blocking(move || mvcc.sync()).await;
    }
}

/// How a graceful stop proceeds (`--shutdown-delay-duration`,
/// `--shutdown-watch-termination-grace-period`).
#[derive(Clone, Debug)]
pub struct StopOptions {
    pub delay: Duration,
    pub drain_timeout: Duration,
}

impl Default for StopOptions {
    fn default() -> Self {
        StopOptions {
            delay: Duration::ZERO,
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// Samples Raft state into etcd's metric names.
async fn sample_raft_metrics(store: Store, mut shutdown: Shutdown) {
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    let mut metrics_rx = store.raft().metrics();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait() => return,
        }
        let m = metrics_rx.borrow_and_update().clone();
        let has_leader = m.current_leader.is_some();
        metrics::gauge!("etcd_server_has_leader").set(f64::from(u8::from(has_leader)));
        metrics::gauge!("etcd_server_is_leader")
            .set(f64::from(u8::from(m.current_leader == Some(m.id))));
        metrics::gauge!("etcd_server_is_learner").set(f64::from(u8::from(
            !m.membership_config
                .membership()
                .voter_ids()
                .any(|v| v == m.id),
        )));
        metrics::gauge!("etcd_server_term").set(m.current_term as f64);
        metrics::gauge!("kuberaft_raft_last_log_index").set(m.last_log_index.unwrap_or(0) as f64);
        metrics::gauge!("etcd_server_apply_index")
            .set(m.last_applied.map(|l| l.index).unwrap_or(0) as f64);
        metrics::gauge!("etcd_mvcc_db_total_size_in_bytes").set(store.mvcc().size_on_disk() as f64);
        metrics::gauge!("etcd_debugging_mvcc_current_revision")
            .set(store.mvcc().current_revision() as f64);
        metrics::gauge!("etcd_debugging_mvcc_compact_revision")
            .set(store.mvcc().compact_revision() as f64);
        if let Some(repl) = &m.replication {
            let last = m.last_log_index.unwrap_or(0);
            for (id, matched) in repl {
                let lag = last.saturating_sub(matched.map(|l| l.index).unwrap_or(0));
                metrics::gauge!("kuberaft_raft_follower_lag_entries", "member" => format!("{id:x}")).set(lag as f64);
            }
        }
    }
}

/// True if `path` holds nothing (or does not exist).
pub fn is_empty_dir(path: &Path) -> bool {
    std::fs::read_dir(path)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
}

/// `kuberaft snapshot restore`: builds a fresh data directory for one member of a new
/// cluster from a file saved by `etcdctl snapshot save`. Every member of the new
/// cluster is restored from the same file, then started with
/// `--initial-cluster-state new`.
pub fn restore(snapshot: &Path, config: &Config) -> Result<Identity, NodeError> {
    let dir = DataDir {
        root: config.data_dir.clone(),
    };
    if dir.member().exists() && !is_empty_dir(&dir.member()) {
        return Err(NodeError::DataDir {
            path: dir.member(),
            message: "already holds a member; restore needs an empty data directory".into(),
        });
    }
    let (offset, len) =
        store::verify_snapshot_file(snapshot).map_err(|message| NodeError::DataDir {
            path: snapshot.to_owned(),
            message,
        })?;
    let ids: Vec<NodeId> = config
        .initial_cluster
        .iter()
        .map(|(_, urls)| store::member_id(urls, &config.token))
        .collect();
    let identity = Identity {
        format: IDENTITY_FORMAT,
        name: config.name.clone(),
        member_id: store::member_id(&config.advertise_peer_urls, &config.token),
        cluster_id: store::cluster_id(&ids, &config.token),
    };
    dir.write_identity(&identity)?;
    for d in [dir.wal(), dir.snap()] {
        std::fs::create_dir_all(&d).map_err(|e| NodeError::DataDir {
            path: d.clone(),
            message: e.to_string(),
        })?;
    }
    let mvcc = MvccStore::open(&dir.db(), &MvccOptions::default())
        .map_err(|e| NodeError::Storage(e.to_string()))?;
    let mut file = std::fs::File::open(snapshot).map_err(|e| NodeError::Storage(e.to_string()))?;
    {
        use std::io::{Read, Seek};
        file.seek(std::io::SeekFrom::Start(offset))
            .map_err(|e| NodeError::Storage(e.to_string()))?;
        let mut body = std::io::BufReader::new(file.take(len));
        mvcc.import(&mut body)
            .map_err(|e| NodeError::Storage(e.to_string()))?;
    }
    crate::raft::state_machine::reset_applied_state(&mvcc)
        .map_err(|e| NodeError::Storage(e.to_string()))?;
    mvcc.sync().map_err(|e| NodeError::Storage(e.to_string()))?;
    Ok(identity)
}
