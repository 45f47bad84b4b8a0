//! policy/v1 kinds: poddisruptionbudgets.
//!
//! Invariant: upstream v1.33 validation (pkg/apis/policy/validation) with its
//! messages and field paths, status reset on create (Go's zero status, whose
//! counters are always serialized) and kept on main-resource updates, and the
//! printers' columns.

use std::sync::Arc;

use k8s_openapi::api::policy::v1 as api;
use serde_json::{json, Value};

use super::apps::{
    decode_filled, int_at, int_or_string, keep_status, not_more_than_100_percent,
    positive_int_or_percent, reset_status, validate_label_selector,
};
use crate::apiserver::status::{invalid_value, not_supported, Cause};
use crate::registry::validation::NameRule;
use crate::registry::{age, Column, Resource, Strategy, AGE_COLUMN, ALL_VERBS};

pub fn resources() -> Vec<Resource> {
    vec![Resource {
        group: "policy",
        versions: &["v1"],
        kind: "PodDisruptionBudget",
        resource: "poddisruptionbudgets",
        singular: "poddisruptionbudget",
        namespaced: true,
        short_names: &["pdb"],
        categories: &[],
        storage_prefix: "poddisruptionbudgets",
        subresources: &["status"],
        verbs: ALL_VERBS,
        name_rule: NameRule::Subdomain,
        strategy: Arc::new(PodDisruptionBudgets),
    }]
}

struct PodDisruptionBudgets;

impl Strategy for PodDisruptionBudgets {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        decode_filled::<api::PodDisruptionBudget>(obj, &[("/metadata", json!({}), true)])
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        reset_status(
            obj,
            json!({"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}),
        );
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_status(new, old);
    }

    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        let spec = obj.get("spec").cloned().unwrap_or_else(|| json!({}));
        let min = spec.get("minAvailable").filter(|v| !v.is_null());
        let max = spec.get("maxUnavailable").filter(|v| !v.is_null());
        if min.is_some() && max.is_some() {
            out.push(invalid_value(
                "spec",
                &spec,
                "minAvailable and maxUnavailable cannot be both set",
            ));
        }
        for (v, f) in [(min, "spec.minAvailable"), (max, "spec.maxUnavailable")] {
            out.extend(positive_int_or_percent(v, f));
            out.extend(not_more_than_100_percent(v, f));
        }
        if let Some(sel) = spec.get("selector").filter(|s| !s.is_null()) {
            out.extend(validate_label_selector(sel, "spec.selector"));
        }
        if let Some(p) = spec
            .get("unhealthyPodEvictionPolicy")
            .and_then(Value::as_str)
        {
            if p != "AlwaysAllow" && p != "IfHealthyBudget" {
                out.push(not_supported(
                    "spec.unhealthyPodEvictionPolicy",
                    &json!(p),
                    &["AlwaysAllow", "IfHealthyBudget"],
                ));
            }
        }
        out
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        for f in [
            "disruptionsAllowed",
            "currentHealthy",
            "desiredHealthy",
            "expectedPods",
        ] {
            let n = int_at(new, &format!("/status/{f}"));
            if n < 0 {
                out.push(invalid_value(
                    &format!("status.{f}"),
                    &json!(n),
                    "must be greater than or equal to 0",
                ));
            }
        }
        out
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new(
                "Min Available",
                "string",
                "The minimum number of pods that must be available.",
            ),
            Column::new(
                "Max Unavailable",
                "string",
                "The maximum number of pods that may be unavailable.",
            ),
            Column::new(
                "Allowed Disruptions",
                "integer",
                "Calculated number of pods that may be disrupted at this time.",
            ),
            AGE_COLUMN,
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let show = |p: &str| {
            obj.pointer(p)
                .filter(|v| !v.is_null())
                .map(int_or_string)
                .unwrap_or_else(|| "N/A".into())
        };
        vec![
            json!(show("/spec/minAvailable")),
            json!(show("/spec/maxUnavailable")),
            json!(int_at(obj, "/status/disruptionsAllowed")),
            json!(age(obj)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_are_validated_and_printed() {
        let pdb = json!({"metadata": {"name": "web"}, "spec": {"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}}}});
        assert!(PodDisruptionBudgets.validate(&pdb).is_empty());
        let cells = PodDisruptionBudgets.cells(&pdb);
        assert_eq!(cells.len(), PodDisruptionBudgets.columns().len());
        assert_eq!(cells[0], "50%");
        assert_eq!(cells[1], "N/A");
        let both = json!({"spec": {"minAvailable": 1, "maxUnavailable": "150%"}});
        let causes = PodDisruptionBudgets.validate(&both);
        assert!(causes
            .iter()
            .any(|c| c.field == "spec" && c.message.contains("cannot be both set")));
        assert!(causes
            .iter()
            .any(|c| c.field == "spec.maxUnavailable" && c.message.contains("100%")));
    }
}
