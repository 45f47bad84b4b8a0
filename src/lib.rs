//! kuberaft: a Kubernetes API server that carries its own Raft-replicated,
//! etcd-compatible storage. Modules in reading order, from the bottom up.

/// `kuberaft bench`: load generators against etcd v3 endpoints.
pub mod bench;
/// One typed configuration from etcd- and kube-apiserver-style flags.
pub mod config;
/// The etcd v3 gRPC face and client-port HTTP endpoints.
pub mod etcd;
/// Metrics recorder and Prometheus exporter.
pub mod metrics;
/// etcd semantics on sled: revisions, ranges, txns, compaction, leases, watch hub.
pub mod mvcc;
/// Wires one replica together; startup and shutdown.
pub mod node;
/// openraft adapter: write-ahead log, state machine, peer network, proposer.
pub mod raft;
/// Our accept loop: TCP + rustls + hyper, serving axum/tonic routers.
pub mod server;
/// The replicated store API (etcd's "etcdserver"): reads, writes, leases, members.
pub mod store;
/// TLS material and rustls configurations (ring provider only).
pub mod tls;
