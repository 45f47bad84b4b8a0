//! coordination.k8s.io/v1 kinds: leases (leader election and node heartbeats).
//!
//! Invariant: upstream v1.33 validation (pkg/apis/coordination/validation) with its
//! messages and field paths; a lease carries no generation, as upstream's strategy
//! never sets one.

use std::sync::Arc;

use k8s_openapi::api::coordination::v1 as api;
use serde_json::{json, Value};

use super::apps::decode_filled;
use crate::apiserver::status::{forbidden, invalid_value, not_supported, Cause};
use crate::registry::validation::NameRule;
use crate::registry::{age, meta, Column, Resource, Strategy, AGE_COLUMN, ALL_VERBS};

pub fn resources() -> Vec<Resource> {
    vec![Resource {
        group: "coordination.k8s.io",
        versions: &["v1"],
        kind: "Lease",
        resource: "leases",
        singular: "lease",
        namespaced: true,
        short_names: &[],
        categories: &[],
        storage_prefix: "leases",
        subresources: &[],
        verbs: ALL_VERBS,
        name_rule: NameRule::Subdomain,
        strategy: Arc::new(Leases),
    }]
}

struct Leases;

impl Strategy for Leases {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        decode_filled::<api::Lease>(obj, &[("/metadata", json!({}), true)])
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        if let Some(d) = obj
            .pointer("/spec/leaseDurationSeconds")
            .and_then(Value::as_i64)
        {
            if d <= 0 {
                out.push(invalid_value(
                    "spec.leaseDurationSeconds",
                    &json!(d),
                    "must be greater than 0",
                ));
            }
        }
        if let Some(t) = obj
            .pointer("/spec/leaseTransitions")
            .and_then(Value::as_i64)
        {
            if t < 0 {
                out.push(invalid_value(
                    "spec.leaseTransitions",
                    &json!(t),
                    "must be greater than or equal to 0",
                ));
            }
        }
        let strategy = obj.pointer("/spec/strategy").and_then(Value::as_str);
        if let Some(s) = strategy {
            if s != "OldestEmulationVersion" {
                out.push(not_supported(
                    "spec.strategy",
                    &json!(s),
                    &["OldestEmulationVersion"],
                ));
            }
        }
        if obj
            .pointer("/spec/preferredHolder")
            .and_then(Value::as_str)
            .is_some_and(|p| !p.is_empty())
            && strategy.is_none()
        {
            out.push(forbidden(
                "spec.preferredHolder",
                "preferredHolder is only allowed if strategy is set",
            ));
        }
        out
    }

    /// Upstream's lease strategy keeps no generation; the generic store sets one for
    /// every object with a spec, so it is dropped here, after the store's bump.
    fn canonicalize(&self, obj: &mut Value) {
        meta::remove(obj, "generation");
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new("Holder", "string", "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field."),
            AGE_COLUMN,
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        vec![
            json!(obj
                .pointer("/spec/holderIdentity")
                .and_then(Value::as_str)
                .unwrap_or("")),
            json!(age(obj)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_validate_and_print_their_holder() {
        let l = json!({"metadata": {"name": "x", "generation": 1}, "spec": {"holderIdentity": "node-1", "leaseDurationSeconds": 40}});
        assert!(Leases.validate(&l).is_empty());
        assert_eq!(Leases.cells(&l)[0], "node-1");
        let bad = json!({"spec": {"leaseDurationSeconds": 0, "preferredHolder": "a"}});
        let fields: Vec<String> = Leases.validate(&bad).into_iter().map(|c| c.field).collect();
        assert_eq!(
            fields,
            vec!["spec.leaseDurationSeconds", "spec.preferredHolder"]
        );
        let mut c = l.clone();
        Leases.canonicalize(&mut c);
        assert!(c["metadata"].get("generation").is_none());
    }
}
