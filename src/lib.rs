//! kuberaft: a Kubernetes API server that carries its own Raft-replicated,
//! etcd-compatible storage. Modules in reading order, from the bottom up.

/// etcd semantics on sled: revisions, ranges, txns, compaction, leases, watch hub.
pub mod mvcc;
/// openraft adapter: write-ahead log, state machine, peer network, proposer.
pub mod raft;
/// The etcd v3 gRPC face and client-port HTTP endpoints.
pub mod etcd;
/// `kuberaft bench`: load generators against etcd v3 endpoints.
pub mod bench;
