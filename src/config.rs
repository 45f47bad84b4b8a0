//! One typed configuration for a replica, built from flags named as etcd and
//! kube-apiserver name them, and validated once, before anything starts.
//!
//! Invariant: everything downstream receives a `Config` that passed `validate()`:
//! URLs parse, the initial cluster names this member, TLS files come in pairs, and
//! every listener is on a loopback or explicitly given address.

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
    /// Number of applied Raft entries between snapshots (each entry is a batch of
    /// requests here, so fewer are needed than in etcd).
    #[arg(long, default_value_t = 10_000)]
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

    // ---- tuning ----
    /// Proposal batches in flight at once.
    #[arg(long, default_value_t = 2, hide = true)]
    pub max_inflight_batches: usize,
    /// sled cache size in bytes.
    #[arg(long, default_value_t = 64 << 20, hide = true)]
    pub backend_cache_bytes: u64,
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
}

/// Parses `scheme://host:port` into a socket address.
pub fn parse_url(url: &str) -> Result<ListenUrl, ConfigError> {
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
    let host = uri
        .host()
        .ok_or_else(|| ConfigError(format!("URL {url:?}: no host")))?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = uri
        .port_u16()
        .ok_or_else(|| ConfigError(format!("URL {url:?}: no port")))?;
    let ip: std::net::IpAddr = match host {
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
            parse_url(u)?;
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
            parse_url(url)?;
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
    fn bad_values_are_refused() {
        assert!(parse(&["--listen-client-urls", "tcp://127.0.0.1:1"]).is_err());
        assert!(parse(&["--initial-cluster-state", "maybe"]).is_err());
        assert!(parse(&["--cert-file", "x"]).is_err());
        assert!(parse(&["--election-timeout", "100"]).is_err());
    }
}
