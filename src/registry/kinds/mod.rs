//! The built-in kinds, one file per API area, and the list of every resource the
//! server registers.
//!
//! Invariant: each kind's upstream facts (names, scope, storage prefix, short names,
//! categories, subresources) are written once, next to its strategy.

pub mod admissionregistration;
pub mod apiextensions;
pub mod apps;
pub mod auth;
pub mod autoscaling;
pub mod batch;
pub mod certificates;
pub mod cluster;
pub mod coordination;
pub mod core;
pub mod discovery;
pub mod events;
pub mod networking;
pub mod pods;
pub mod policy;
pub mod rbac;
pub mod scheduling;
pub mod services;
pub mod storage;

use super::Resource;

/// Every built-in resource, in discovery order (core/v1 first, then the groups in
/// kube-apiserver's order).
pub fn all() -> Vec<Resource> {
    let mut out = Vec::new();
    out.extend(core::resources());
    out.extend(pods::resources());
    out.extend(services::resources());
    out.extend(cluster::resources());
    out.extend(apps::resources());
    out.extend(events::resources());
    out.extend(auth::resources());
    out.extend(autoscaling::resources());
    out.extend(batch::resources());
    out.extend(certificates::resources());
    out.extend(networking::resources());
    out.extend(policy::resources());
    out.extend(rbac::resources());
    out.extend(storage::resources());
    out.extend(admissionregistration::resources());
    out.extend(apiextensions::resources());
    out.extend(scheduling::resources());
    out.extend(coordination::resources());
    out.extend(discovery::resources());
    out
}

/// The field paths of validation causes, for the kinds' unit tests.
#[cfg(test)]
pub(crate) fn cause_fields(causes: &[crate::apiserver::status::Cause]) -> Vec<&str> {
    causes.iter().map(|c| c.field.as_str()).collect()
}
