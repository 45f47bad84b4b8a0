//! The etcd v3 face of the store: KV, Watch, Lease, Cluster and Maintenance over
//! gRPC, plus the HTTP endpoints etcd serves on its client port.

pub mod proto;
