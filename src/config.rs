//! One typed configuration for a replica, built from flags named as etcd and
//! kube-apiserver name them, and validated once, before anything starts.
//!
//! Invariant: everything downstream receives a `Config` that passed `validate()`:
//! URLs parse (listen URLs name IP addresses; advertised and initial-cluster URLs may
//! name hosts, as etcd's do), the initial cluster names this member, TLS files come
//! in pairs, and every listener is on a loopback or explicitly given address.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// Flags of `kuberaft serve`.
#[derive(Args, Clone, Debug)]
pub struct ServeArgs {
    // ---- member (etcd's flags) ----
    /// Human-readable name for this member.
    #[arg(long, default_value = "default")]
    pub name: String,
    /// Path to the data directory.
    #[arg(long, default_value = "./data")]
    pub data_dir: PathBuf,
    /// URLs to listen on for client (etcd v3 gRPC and HTTP) traffic.
    #[arg(long, default_value = "http://127.0.0.1:2379", value_delimiter = ',')]
    pub listen_client_urls: Vec<String>,
    /// Client URLs advertised to the rest of the cluster (default: the listen URLs).
    #[arg(long, value_delimiter = ',')]
    pub advertise_client_urls: Vec<String>,
    /// URLs to listen on for peer traffic.
    #[arg(long, default_value = "http://127.0.0.1:2380", value_delimiter = ',')]
    pub listen_peer_urls: Vec<String>,
    /// Peer URLs advertised to the rest of the cluster (default: the listen URLs).
    #[arg(long, value_delimiter = ',')]
    pub initial_advertise_peer_urls: Vec<String>,
    /// Initial cluster configuration for bootstrapping: name=peerURL,name=peerURL,...
    #[arg(long)]
    pub initial_cluster: Option<String>,
    /// `new` to bootstrap a cluster, `existing` to join one.
    #[arg(long, default_value = "new")]
    pub initial_cluster_state: String,
    /// Initial cluster token, distinguishing clusters bootstrapped from the same flags.
    #[arg(long, default_value = "kuberaft-cluster")]
    pub initial_cluster_token: String,
    /// Time (in milliseconds) of a heartbeat interval.
    #[arg(long, default_value_t = 100)]
    pub heartbeat_interval: u64,
    /// Time (in milliseconds) for an election to timeout.
    #[arg(long, default_value_t = 1000)]
    pub election_timeout: u64,
    /// Number of applied Raft entries between snapshots (etcd's default). A snapshot
    /// here dumps the whole store to a file, hundreds of MB on a busy member, and the
    /// dump's writes slow every member's WAL fdatasyncs while it runs: at 10,000, a
    /// busy cluster dumped every 20 s, and a bench round that met a dump had a watch
    /// p99 of 12 ms instead of 3. The cost is a longer log between snapshots: at most
    /// this many entries (each a batch of requests) in the WAL.
    #[arg(long, default_value_t = 100_000)]
    pub snapshot_count: u64,
    /// Entries kept after a snapshot for slow followers to catch up by log; a follower
    /// further behind gets the snapshot.
    #[arg(long, default_value_t = 1_000)]
    pub snapshot_catchup_entries: u64,
    /// Raise an alarm and refuse writes when the database exceeds this size (0 = 2 GiB).
    #[arg(long, default_value_t = 0)]
    pub quota_backend_bytes: u64,
    /// Maximum client request size in bytes the server will accept.
    #[arg(long, default_value_t = 1536 * 1024)]
    pub max_request_bytes: usize,
    /// Maximum number of operations permitted in a transaction.
    #[arg(long, default_value_t = 128)]
    pub max_txn_ops: usize,

    // ---- client TLS (etcd's flags) ----
    /// Path to the client server TLS cert file.
    #[arg(long)]
    pub cert_file: Option<PathBuf>,
    /// Path to the client server TLS key file.
    #[arg(long)]
    pub key_file: Option<PathBuf>,
    /// Path to the client server TLS trusted CA cert file.
    #[arg(long)]
    pub trusted_ca_file: Option<PathBuf>,
    /// Enable client cert authentication.
    #[arg(long)]
    pub client_cert_auth: bool,

    // ---- peer TLS (etcd's flags) ----
    /// Path to the peer server TLS cert file.
    #[arg(long)]
    pub peer_cert_file: Option<PathBuf>,
    /// Path to the peer server TLS key file.
    #[arg(long)]
    pub peer_key_file: Option<PathBuf>,
    /// Path to the peer server TLS trusted CA file.
    #[arg(long)]
    pub peer_trusted_ca_file: Option<PathBuf>,
    /// Enable peer client cert authentication.
    #[arg(long)]
    pub peer_client_cert_auth: bool,

    // ---- Kubernetes API (kube-apiserver's flags) ----
    /// The port on which to serve HTTPS with authentication and authorization; 0
    /// turns the Kubernetes API off.
    #[arg(long, default_value_t = 6443)]
    pub secure_port: u16,
    /// The IP address on which to listen for --secure-port.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_address: std::net::IpAddr,
    /// The address the API server advertises (in the `kubernetes` endpoints and
    /// the serving certificate).
    #[arg(long)]
    pub advertise_address: Option<std::net::IpAddr>,
    /// Directory of the cluster PKI (CA, serving, admin, peer and service-account
    /// keys); created on first start when missing. Default: <data-dir>/pki.
    #[arg(long)]
    pub cert_dir: Option<PathBuf>,
    /// Extra subject alternative names for a generated serving certificate.
    #[arg(long, value_delimiter = ',')]
    pub tls_sans: Vec<String>,
    /// Serving certificate (default: from --cert-dir).
    #[arg(long)]
    pub tls_cert_file: Option<PathBuf>,
    /// Serving key (default: from --cert-dir).
    #[arg(long)]
    pub tls_private_key_file: Option<PathBuf>,
    /// CA for client certificates (default: the cluster CA in --cert-dir).
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,
    /// Allow anonymous requests (to health, version and discovery).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub anonymous_auth: bool,
    /// Ordered authorizers: AlwaysAllow, AlwaysDeny.
    #[arg(long, default_value = "AlwaysAllow", value_delimiter = ',')]
    pub authorization_mode: Vec<String>,
    /// Static bearer tokens: a CSV file of `token,user,uid[,"group1,group2"]` lines.
    #[arg(long)]
    pub token_auth_file: Option<PathBuf>,
    /// Issuer of service-account tokens (repeatable: the first is written into new
    /// tokens, all are accepted).
    #[arg(long, default_value = crate::authn::DEFAULT_ISSUER)]
    pub service_account_issuer: Vec<String>,
    /// PEM file of public keys that verify service-account tokens (repeatable;
    /// default: the signing key's public key).
    #[arg(long)]
    pub service_account_key_file: Vec<PathBuf>,
    /// Private key (PEM) that signs service-account tokens (default: sa.key in
    /// --cert-dir).
    #[arg(long)]
    pub service_account_signing_key_file: Option<PathBuf>,
    /// Longest lifetime of a requested service-account token (e.g. 24h); 0: no limit.
    #[arg(long, default_value = "0s")]
    pub service_account_max_token_expiration: String,
    /// Issue kubelets' pod-bound projected tokens for a year, warning after the
    /// requested lifetime.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub service_account_extend_token_expiration: bool,
    /// jwks_uri of the OIDC discovery document (default:
    /// https://<advertised address>/openid/v1/jwks).
    #[arg(long)]
    pub service_account_jwks_uri: Option<String>,
    /// Audiences of the API (default: the service-account issuers).
    #[arg(long, value_delimiter = ',')]
    pub api_audiences: Vec<String>,
    /// Admission plugins to enable besides the defaults.
    #[arg(long, value_delimiter = ',')]
    pub enable_admission_plugins: Vec<String>,
    /// Admission plugins to disable.
    #[arg(long, value_delimiter = ',')]
    pub disable_admission_plugins: Vec<String>,
    /// Maximum non-mutating requests in flight.
    #[arg(long, default_value_t = 400)]
    pub max_requests_inflight: usize,
    /// Maximum mutating requests in flight.
    #[arg(long, default_value_t = 200)]
    pub max_mutating_requests_inflight: usize,
    /// Deletes a DELETE on a collection runs at once (kube-apiserver's flag and
    /// default). Raise it to empty large namespaces faster.
    #[arg(long, default_value_t = 1)]
    pub delete_collection_workers: usize,
    /// Timeout for requests that are not long-running (e.g. 60s, 1m).
    #[arg(long, default_value = "60s")]
    pub request_timeout: String,
    /// Write one audit.k8s.io/v1 Event per request (Metadata level) to this file as
    /// JSON lines; `-` is standard output. Unset: no audit log.
    #[arg(long)]
    pub audit_log_path: Option<PathBuf>,
    /// CIDR from which Service cluster IPs are allocated.
    #[arg(long, default_value = "10.96.0.0/12")]
    pub service_cluster_ip_range: String,
    /// Port range for NodePort services.
    #[arg(long, default_value = "30000-32767")]
    pub service_node_port_range: String,
    /// How long events are kept (e.g. 1h).
    #[arg(long, default_value = "1h")]
    pub event_ttl: String,
    /// Interval of store compaction (kube-apiserver's --etcd-compaction-interval);
    /// 0 turns it off.
    #[arg(long, default_value = "5m")]
    pub etcd_compaction_interval: String,
    /// Store Kubernetes objects in these external etcd v3 endpoints instead of this
    /// replica's own store.
    #[arg(long, value_delimiter = ',')]
    pub etcd_servers: Vec<String>,
    /// Key prefix of Kubernetes objects in the store.
    #[arg(long, default_value = "/registry")]
    pub etcd_prefix: String,
    /// CA of the external etcd's client port.
    #[arg(long)]
    pub etcd_cafile: Option<PathBuf>,
    /// Client certificate for the external etcd.
    #[arg(long)]
    pub etcd_certfile: Option<PathBuf>,
    /// Client key for the external etcd.
    #[arg(long)]
    pub etcd_keyfile: Option<PathBuf>,

    // ---- graceful shutdown (kube-apiserver's flags) ----
    /// On SIGTERM, how long /readyz fails before the server stops accepting, so load
    /// balancers move away first.
    #[arg(long, default_value = "0s")]
    pub shutdown_delay_duration: String,
    /// How long in-flight requests and watches get to finish after the server stops
    /// accepting.
    #[arg(long, default_value = "30s")]
    pub shutdown_watch_termination_grace_period: String,
    /// Probability (0–0.02) of sending GOAWAY to an HTTP/2 client after a request, so
    /// long-lived clients spread over replicas behind a load balancer.
    #[arg(long, default_value_t = 0.0)]
    pub goaway_chance: f64,

    // ---- tuning ----
    /// Proposal batches in flight at once.
    #[arg(long, default_value_t = 2, hide = true)]
    pub max_inflight_batches: usize,
    /// sled cache size in bytes.
    #[arg(long, default_value_t = 64 << 20, hide = true)]
    pub backend_cache_bytes: u64,
    /// Serves the drills' peer-isolation switch on the client port
    /// (`POST /debug/fault/peer-isolation?on=true`). Never in production.
    #[arg(long, hide = true)]
    pub enable_fault_injection: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

/// A parsed listen URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenUrl {
    pub url: String,
    pub tls: bool,
    pub addr: SocketAddr,
}

/// TLS files for one port.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: Option<PathBuf>,
    pub client_cert_auth: bool,
}

/// A validated replica configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub name: String,
    pub data_dir: PathBuf,
    pub listen_client: Vec<ListenUrl>,
    pub advertise_client_urls: Vec<String>,
    pub listen_peer: Vec<ListenUrl>,
    pub advertise_peer_urls: Vec<String>,
    /// (name, peer URLs) of every initial member, in flag order.
    pub initial_cluster: Vec<(String, Vec<String>)>,
    pub join_existing: bool,
    pub token: String,
    pub heartbeat: Duration,
    pub election_timeout: Duration,
    pub snapshot_count: u64,
    pub snapshot_catchup_entries: u64,
    pub quota_backend_bytes: u64,
    pub max_request_bytes: usize,
    pub max_txn_ops: usize,
    pub client_tls: Option<TlsFiles>,
    pub peer_tls: Option<TlsFiles>,
    pub max_inflight_batches: usize,
    pub backend_cache_bytes: u64,
    pub kube: Option<KubeConfig>,
    pub shutdown_delay: Duration,
    pub shutdown_grace: Duration,
    pub goaway_chance: f64,
    pub enable_fault_injection: bool,
}

/// The Kubernetes API's settings.
#[derive(Clone, Debug)]
pub struct KubeConfig {
    pub bind: SocketAddr,
    pub advertise_address: Option<std::net::IpAddr>,
    pub cert_dir: PathBuf,
    pub tls_sans: Vec<String>,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_private_key_file: Option<PathBuf>,
    pub client_ca_file: Option<PathBuf>,
    pub anonymous_auth: bool,
    /// Authentication: token file, service-account tokens, API audiences.
    pub authn: crate::authn::AuthnOptions,
    pub authorization_mode: Vec<String>,
    pub enable_admission_plugins: Vec<String>,
    pub disable_admission_plugins: Vec<String>,
    pub max_requests_inflight: usize,
    pub max_mutating_requests_inflight: usize,
    pub delete_collection_workers: usize,
    pub request_timeout: Duration,
    pub audit_log_path: Option<PathBuf>,
    pub service_cidr: crate::registry::ipnet_lite::Ipv4Net,
    pub node_port_range: (u16, u16),
    pub event_ttl: Duration,
    pub compaction_interval: Duration,
    pub etcd_servers: Vec<String>,
    pub etcd_prefix: String,
    pub etcd_cafile: Option<PathBuf>,
    pub etcd_certfile: Option<PathBuf>,
    pub etcd_keyfile: Option<PathBuf>,
}

/// Parses a Go-style duration: "90s", "5m", "1h", "1h30m", "250ms", or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, ConfigError> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let bad = || ConfigError(format!("invalid duration {s:?}"));
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push('s');
            chars.next();
        }
        let n: f64 = num.parse().map_err(|_| bad())?;
        num.clear();
        let secs = match unit.as_str() {
            "h" => n * 3600.0,
            "m" => n * 60.0,
            "s" => n,
            "ms" => n / 1000.0,
            _ => return Err(bad()),
        };
        total += Duration::from_secs_f64(secs);
    }
    if !num.is_empty() {
        return Err(bad());
    }
    Ok(total)
}

/// Parses a listen URL, `scheme://ip:port`, into a socket address. As with etcd,
/// a name other than `localhost` is refused: one cannot bind to a name.
pub fn parse_url(url: &str) -> Result<ListenUrl, ConfigError> {
    let (tls, host, port) = url_parts(url)?;
    let ip: std::net::IpAddr = match host.as_str() {
        "localhost" => std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        h => h.parse().map_err(|_| {
            ConfigError(format!(
                "URL {url:?}: host must be an IP address or localhost"
            ))
        })?,
    };
    Ok(ListenUrl {
        url: url.to_owned(),
        tls,
        addr: SocketAddr::new(ip, port),
    })
}

/// Checks a URL others connect to (advertised URLs, `--initial-cluster`, member
/// peer URLs): `scheme://host:port`, where, as with etcd, the host may be a DNS
/// name, resolved at each connection.
pub fn check_advertised_url(url: &str) -> Result<(), ConfigError> {
    url_parts(url).map(|_| ())
}

/// The scheme (true for https), host and port of `url`.
fn url_parts(url: &str) -> Result<(bool, String, u16), ConfigError> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| ConfigError(format!("URL {url:?}: {e}")))?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => {
            return Err(ConfigError(format!(
                "URL {url:?}: scheme must be http or https"
            )))
        }
    };
    let port = uri
        .port_u16()
        .ok_or_else(|| ConfigError(format!("URL {url:?}: no port")))?;
    let host = uri
        .host()
        .ok_or_else(|| ConfigError(format!("URL {url:?}: no host")))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    if host.is_empty() {
        return Err(ConfigError(format!("URL {url:?}: no host")));
    }
    Ok((tls, host, port))
}

fn tls_files(
    cert: &Option<PathBuf>,
    key: &Option<PathBuf>,
    ca: &Option<PathBuf>,
    auth: bool,
    what: &str,
) -> Result<Option<TlsFiles>, ConfigError> {
    match (cert, key) {
        (Some(cert), Some(key)) => {
            if auth && ca.is_none() {
                return Err(ConfigError(format!(
                    "{what} client cert auth needs a trusted CA file"
                )));
            }
            Ok(Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
                ca: ca.clone(),
                client_cert_auth: auth,
            }))
        }
        (None, None) => {
            if auth {
                return Err(ConfigError(format!(
                    "{what} client cert auth needs a cert and key file"
                )));
            }
            Ok(None)
        }
        _ => Err(ConfigError(format!(
            "{what} cert file and key file must be given together"
        ))),
    }
}

impl ServeArgs {
    fn kube_config(&self) -> Result<Option<KubeConfig>, ConfigError> {
        if self.secure_port == 0 {
            return Ok(None);
        }
        for mode in &self.authorization_mode {
            if !matches!(mode.as_str(), "AlwaysAllow" | "AlwaysDeny") {
                return Err(ConfigError(format!(
                    "--authorization-mode: unknown authorization mode {mode:?} (supported: AlwaysAllow, AlwaysDeny)"
                )));
            }
        }
        let (lo, hi) = self
            .service_node_port_range
            .split_once('-')
            .and_then(|(a, b)| Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?)))
            .filter(|(a, b)| a < b)
            .ok_or_else(|| {
                ConfigError(format!(
                    "--service-node-port-range {:?} is not low-high",
                    self.service_node_port_range
                ))
            })?;
        let max_token = parse_duration(&self.service_account_max_token_expiration)?;
        let authn = crate::authn::AuthnOptions {
            anonymous: self.anonymous_auth,
            token_auth_file: self.token_auth_file.clone(),
            service_account_issuers: self.service_account_issuer.clone(),
            service_account_key_files: self.service_account_key_file.clone(),
            service_account_signing_key_file: self.service_account_signing_key_file.clone(),
            service_account_max_token_expiration: (!max_token.is_zero()).then_some(max_token),
            service_account_extend_token_expiration: self.service_account_extend_token_expiration,
            service_account_jwks_uri: self.service_account_jwks_uri.clone(),
            api_audiences: self.api_audiences.clone(),
        };
        authn.validate().map_err(ConfigError)?;
        Ok(Some(KubeConfig {
            bind: SocketAddr::new(self.bind_address, self.secure_port),
            advertise_address: self.advertise_address,
            cert_dir: self
                .cert_dir
                .clone()
                .unwrap_or_else(|| self.data_dir.join("pki")),
            tls_sans: self.tls_sans.clone(),
            tls_cert_file: self.tls_cert_file.clone(),
            tls_private_key_file: self.tls_private_key_file.clone(),
            client_ca_file: self.client_ca_file.clone(),
            anonymous_auth: self.anonymous_auth,
            authn,
            authorization_mode: self.authorization_mode.clone(),
            enable_admission_plugins: self.enable_admission_plugins.clone(),
            disable_admission_plugins: self.disable_admission_plugins.clone(),
            max_requests_inflight: self.max_requests_inflight.max(1),
            max_mutating_requests_inflight: self.max_mutating_requests_inflight.max(1),
            delete_collection_workers: self.delete_collection_workers.max(1),
            request_timeout: parse_duration(&self.request_timeout)?,
            audit_log_path: self.audit_log_path.clone(),
            service_cidr: crate::registry::ipnet_lite::Ipv4Net::parse(
                &self.service_cluster_ip_range,
            )
            .map_err(|e| ConfigError(format!("--service-cluster-ip-range: {e}")))?,
            node_port_range: (lo, hi),
            event_ttl: parse_duration(&self.event_ttl)?,
            compaction_interval: parse_duration(&self.etcd_compaction_interval)?,
            etcd_servers: self.etcd_servers.clone(),
            etcd_prefix: self.etcd_prefix.trim_end_matches('/').to_owned(),
            etcd_cafile: self.etcd_cafile.clone(),
            etcd_certfile: self.etcd_certfile.clone(),
            etcd_keyfile: self.etcd_keyfile.clone(),
        }))
    }

    /// Checks the flags and builds the replica configuration.
    pub fn validate(&self) -> Result<Config, ConfigError> {
        if self.name.is_empty() {
            return Err(ConfigError("--name must not be empty".into()));
        }
        let listen_client = self
            .listen_client_urls
            .iter()
            .map(|u| parse_url(u))
            .collect::<Result<Vec<_>, _>>()?;
        let listen_peer = self
            .listen_peer_urls
            .iter()
            .map(|u| parse_url(u))
            .collect::<Result<Vec<_>, _>>()?;
        if listen_client.is_empty() || listen_peer.is_empty() {
            return Err(ConfigError(
                "need at least one client and one peer listen URL".into(),
            ));
        }
        let advertise_client_urls = if self.advertise_client_urls.is_empty() {
            self.listen_client_urls.clone()
        } else {
            self.advertise_client_urls.clone()
        };
        let advertise_peer_urls = if self.initial_advertise_peer_urls.is_empty() {
            self.listen_peer_urls.clone()
        } else {
            self.initial_advertise_peer_urls.clone()
        };
        for u in advertise_client_urls
            .iter()
            .chain(advertise_peer_urls.iter())
        {
            check_advertised_url(u)?;
        }
        let initial = match &self.initial_cluster {
            Some(s) => s.clone(),
            None => format!(
                "{}={}",
                self.name,
                advertise_peer_urls.join(&format!(",{}=", self.name))
            ),
        };
        let mut initial_cluster: Vec<(String, Vec<String>)> = Vec::new();
        for part in initial.split(',').filter(|p| !p.is_empty()) {
            let (name, url) = part.split_once('=').ok_or_else(|| {
                ConfigError(format!("--initial-cluster entry {part:?} is not name=URL"))
            })?;
            check_advertised_url(url)?;
            match initial_cluster.iter_mut().find(|(n, _)| n == name) {
                Some((_, urls)) => urls.push(url.to_owned()),
                None => initial_cluster.push((name.to_owned(), vec![url.to_owned()])),
            }
        }
        let mine = initial_cluster
            .iter()
            .find(|(n, _)| *n == self.name)
            .ok_or_else(|| {
                ConfigError(format!(
                    "--initial-cluster has no member named {:?}",
                    self.name
                ))
            })?;
        let mut a = mine.1.clone();
        let mut b = advertise_peer_urls.clone();
        a.sort();
        b.sort();
        if a != b {
            return Err(ConfigError(format!(
                "--initial-cluster has {}={:?} but --initial-advertise-peer-urls is {:?}",
                self.name, mine.1, advertise_peer_urls
            )));
        }
        let join_existing = match self.initial_cluster_state.as_str() {
            "new" => false,
            "existing" => true,
            other => {
                return Err(ConfigError(format!(
                    "--initial-cluster-state must be new or existing, not {other:?}"
                )))
            }
        };
        if self.heartbeat_interval == 0 || self.election_timeout < 5 * self.heartbeat_interval {
            return Err(ConfigError(
                "--election-timeout must be at least 5 times --heartbeat-interval".into(),
            ));
        }
        let client_tls = tls_files(
            &self.cert_file,
            &self.key_file,
            &self.trusted_ca_file,
            self.client_cert_auth,
            "client",
        )?;
        let peer_tls = tls_files(
            &self.peer_cert_file,
            &self.peer_key_file,
            &self.peer_trusted_ca_file,
            self.peer_client_cert_auth,
            "peer",
        )?;
        if listen_client.iter().any(|l| l.tls) && client_tls.is_none() {
            return Err(ConfigError(
                "https client URL needs --cert-file and --key-file".into(),
            ));
        }
        if listen_peer.iter().any(|l| l.tls) && peer_tls.is_none() {
            return Err(ConfigError(
                "https peer URL needs --peer-cert-file and --peer-key-file".into(),
            ));
        }
        Ok(Config {
            name: self.name.clone(),
            data_dir: self.data_dir.clone(),
            listen_client,
            advertise_client_urls,
            listen_peer,
            advertise_peer_urls,
            initial_cluster,
            join_existing,
            token: self.initial_cluster_token.clone(),
            heartbeat: Duration::from_millis(self.heartbeat_interval),
            election_timeout: Duration::from_millis(self.election_timeout),
            snapshot_count: self.snapshot_count.max(1),
            snapshot_catchup_entries: self.snapshot_catchup_entries,
            quota_backend_bytes: if self.quota_backend_bytes == 0 {
                2 << 30
            } else {
                self.quota_backend_bytes
            },
            max_request_bytes: self.max_request_bytes,
            max_txn_ops: self.max_txn_ops,
            client_tls,
            peer_tls,
            max_inflight_batches: self.max_inflight_batches.max(1),
            backend_cache_bytes: self.backend_cache_bytes,
            kube: self.kube_config()?,
            shutdown_delay: parse_duration(&self.shutdown_delay_duration)?,
            shutdown_grace: parse_duration(&self.shutdown_watch_termination_grace_period)?,
            enable_fault_injection: self.enable_fault_injection,
            goaway_chance: if (0.0..=0.02).contains(&self.goaway_chance) {
                self.goaway_chance
            } else {
                return Err(ConfigError(
                    "--goaway-chance must be between 0 and 0.02".into(),
                ));
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn parse(args: &[&str]) -> Result<Config, ConfigError> {
        let mut all = vec!["kuberaft"];
        all.extend_from_slice(args);
        Cli::parse_from(all).serve.validate()
    }

    #[test]
    fn defaults_make_a_single_member_cluster() {
        let c = parse(&[]).expect("defaults are valid");
        assert_eq!(
            c.initial_cluster,
            vec![(
                "default".to_owned(),
                vec!["http://127.0.0.1:2380".to_owned()]
            )]
        );
        assert_eq!(
            c.listen_client[0].addr,
            "127.0.0.1:2379".parse().expect("addr")
        );
        assert!(!c.join_existing);
    }

    #[test]
    fn initial_cluster_must_name_this_member_with_its_urls() {
        let err = parse(&[
            "--name",
            "a",
            "--initial-cluster",
            "b=http://127.0.0.1:2380",
        ])
        .unwrap_err();
        assert!(err.0.contains("no member named"), "{err}");
        let err = parse(&[
            "--name",
            "a",
            "--initial-cluster",
            "a=http://127.0.0.1:9999",
        ])
        .unwrap_err();
        assert!(err.0.contains("--initial-advertise-peer-urls"), "{err}");
    }

    #[test]
    fn advertised_urls_may_name_hosts_but_listen_urls_may_not() {
        let c = parse(&[
            "--name",
            "kr-0",
            "--listen-peer-urls",
            "http://0.0.0.0:2380",
            "--initial-advertise-peer-urls",
            "http://kr-0:2380",
            "--advertise-client-urls",
            "http://kr-0.example.org:2379",
            "--initial-cluster",
            "kr-0=http://kr-0:2380,kr-1=http://kr-1:2380,kr-2=http://kr-2:2380",
        ])
        .expect("names in advertised URLs, as etcd allows");
        assert_eq!(c.advertise_peer_urls, ["http://kr-0:2380"]);
        assert_eq!(c.initial_cluster.len(), 3);
        let err = parse(&["--listen-client-urls", "http://kr-0:2379"]).unwrap_err();
        assert!(err.0.contains("host must be an IP address"), "{err}");
        let err = parse(&["--advertise-client-urls", "http://:2379"]).unwrap_err();
        assert!(err.0.contains("http://:2379"), "{err}");
        let err = parse(&["--advertise-client-urls", "http://kr-0"]).unwrap_err();
        assert!(err.0.contains("no port"), "{err}");
    }

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("90s").expect("d"), Duration::from_secs(90));
        assert_eq!(
            parse_duration("1h30m").expect("d"),
            Duration::from_secs(5400)
        );
        assert_eq!(
            parse_duration("250ms").expect("d"),
            Duration::from_millis(250)
        );
        assert_eq!(parse_duration("60").expect("d"), Duration::from_secs(60));
        assert!(parse_duration("5x").is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(parse(&["--listen-client-urls", "tcp://127.0.0.1:1"]).is_err());
        assert!(parse(&["--initial-cluster-state", "maybe"]).is_err());
        assert!(parse(&["--cert-file", "x"]).is_err());
        assert!(parse(&["--election-timeout", "100"]).is_err());
    }
}
