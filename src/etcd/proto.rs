//! The generated etcd v3 wire types and service stubs (from `proto/etcd`, our own
//! description of etcd's published API). Only the etcd face and the benchmark client
//! use these; everything else speaks `mvcc` types.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

pub mod mvccpb {
    tonic::include_proto!("mvccpb");
}

pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
}
