//! The generated peer-protocol frame and service stubs (from `proto/peer/peer.proto`).

#![allow(clippy::all, clippy::pedantic, missing_docs)]

tonic::include_proto!("kuberaft.peer");
