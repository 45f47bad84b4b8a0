//! The etcd v3 face of the store: KV, Watch, Lease, Cluster and Maintenance over
//! gRPC, plus the HTTP endpoints etcd serves on its client port (/health, /version,
//! /metrics, and the JSON gateway under /v3/).
//!
//! Invariant: this layer only converts and maps errors; every decision about data is
//! the store's.

mod cluster;
mod convert;
mod error;
mod gateway;
mod http;
mod kv;
mod lease;
mod maintenance;
pub mod proto;
mod watch;

use std::future::Future;
use std::time::Duration;

use tonic::service::Routes;
use tonic::Status;

use crate::store::Store;
use proto::etcdserverpb as pb;

/// The client-port router: etcd's gRPC services and HTTP endpoints on one port.
pub fn router(store: Store, progress_interval: Duration) -> axum::Router {
    let max = store.options().max_request_bytes.max(2 << 20) * 4;
    let mut builder = Routes::builder();
    builder
        .add_service(
            pb::kv_server::KvServer::new(kv::KvService {
                store: store.clone(),
            })
            .max_decoding_message_size(max)
            .max_encoding_message_size(usize::MAX),
        )
        .add_service(
            pb::watch_server::WatchServer::new(watch::WatchService {
                store: store.clone(),
                progress_interval,
            })
            .max_decoding_message_size(max)
            .max_encoding_message_size(usize::MAX),
        )
        .add_service(pb::lease_server::LeaseServer::new(lease::LeaseService {
            store: store.clone(),
        }))
        .add_service(pb::cluster_server::ClusterServer::new(
            cluster::ClusterService {
                store: store.clone(),
            },
        ))
        .add_service(
            pb::maintenance_server::MaintenanceServer::new(maintenance::MaintenanceService {
                store: store.clone(),
            })
            .max_encoding_message_size(usize::MAX),
        );
    let routes = builder.routes();
    routes
        .into_axum_router()
        .merge(http::router(store.clone()))
        .merge(gateway::router(store))
}

/// Runs a unary handler, counting it in go-grpc-prometheus' metric names.
async fn observe<T>(
    service: &'static str,
    method: &'static str,
    fut: impl Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    let labels = [
        ("grpc_type", "unary"),
        ("grpc_service", grpc_service(service)),
        ("grpc_method", method),
    ];
    metrics::counter!("grpc_server_started_total", &labels).increment(1);
    let res = fut.await;
    let code = match &res {
        Ok(_) => "OK".to_owned(),
        Err(s) => format!("{:?}", s.code()),
    };
    metrics::counter!(
        "grpc_server_handled_total",
        "grpc_type" => "unary",
        "grpc_service" => grpc_service(service),
        "grpc_method" => method,
        "grpc_code" => code
    )
    .increment(1);
    res
}

fn grpc_service(service: &'static str) -> &'static str {
    match service {
        "KV" => "etcdserverpb.KV",
        "Lease" => "etcdserverpb.Lease",
        "Cluster" => "etcdserverpb.Cluster",
        "Maintenance" => "etcdserverpb.Maintenance",
        "Watch" => "etcdserverpb.Watch",
        other => other,
    }
}
