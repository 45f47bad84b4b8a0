//! kuberaft: a Kubernetes API server that carries its own Raft-replicated,
//! etcd-compatible storage. Modules in reading order, from the bottom up.

/// etcd semantics on sled: revisions, ranges, txns, compaction, leases, watch hub.
pub mod mvcc;
/// openraft adapter: write-ahead log, state machine, peer network, proposer.
pub mod raft;
/// The replicated store API (etcd's "etcdserver"): reads, writes, leases, members.
pub mod store;
/// The etcd v3 gRPC face and client-port HTTP endpoints.
pub mod etcd;
/// The Kubernetes storage interface and its backends (embedded store, external etcd).
pub mod storage;
/// The resource catalog: kinds, strategies, and the generic REST store.
pub mod registry;
/// Who is asking: client certificates, tokens, anonymous.
pub mod authn;
/// May they: the authorizer chain.
pub mod authz;
/// Admission plugins (mutating and validating).
pub mod admission;
/// The Kubernetes API over HTTPS: filter chain, verbs, discovery, encodings.
pub mod apiserver;
/// What an API server keeps true by itself: system namespaces, namespace deletion,
/// default service accounts, compaction.
pub mod controllers;
/// Starts a replica's Kubernetes API.
pub mod kube;
/// The cluster PKI and kubeconfigs.
pub mod pki;
/// One typed configuration from etcd- and kube-apiserver-style flags.
pub mod config;
/// TLS material and rustls configurations (ring provider only).
pub mod tls;
/// Our accept loop: TCP + rustls + hyper, serving axum/tonic routers.
pub mod server;
/// Metrics recorder and Prometheus exporter.
pub mod metrics;
/// Wires one replica together; startup and shutdown.
pub mod node;
/// `kuberaft bench`: load generators against etcd v3 endpoints.
pub mod bench;
/// `kuberaft drill`: failover drills against a running local cluster.
pub mod drill;
