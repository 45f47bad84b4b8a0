//! etcd's multi-version key-value semantics on sled: one global revision, per-key
//! create/mod revisions and versions, ranges, transactions, compaction, leases,
//! alarms, hashes and a watch hub fed by apply.
//!
//! Invariant: deterministic. Nothing here reads the wall clock or the network; the
//! same requests applied in the same order give the same bytes on every member.

mod error;
mod request;
mod types;

pub use error::MvccError;
pub use request::{Applied, Request, Response};
pub use types::*;
