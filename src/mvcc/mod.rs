//! etcd's multi-version key-value semantics on sled: one global revision, per-key
//! create/mod revisions and versions, ranges, transactions, compaction, leases,
//! alarms, hashes and a watch hub fed by apply.
//!
//! Invariant: deterministic. Nothing here reads the wall clock or the network; the
//! same requests applied in the same order give the same records (and hashes) on every
//! member, however they are grouped into apply calls.

mod cache;
mod error;
mod hash;
mod index;
mod request;
mod schema;
mod store;
mod types;

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod store_tests;
mod watch;

pub use error::MvccError;
pub use request::{Applied, Request, Response};
pub use store::{ApplyOutput, ExportPoint, HashKv, MvccStore, StoreOptions};
pub use types::*;
pub use watch::{WatchHandle, WatchHub, WatchMsg, WatchSpec};
