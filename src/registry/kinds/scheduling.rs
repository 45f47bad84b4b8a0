//! scheduling.k8s.io/v1 kinds: priorityclasses, and the bootstrap of the two system
//! priority classes kube-apiserver creates at start (its
//! `scheduling/bootstrap-system-priority-classes` post-start hook).
//!
//! Invariants: upstream v1.33 defaults (pkg/apis/scheduling/v1/defaults.go),
//! validation messages and field paths (pkg/apis/scheduling/validation) and printer
//! columns; names with the `system-` prefix are only the two known system classes with
//! their exact values; `value` and `preemptionPolicy` never change after creation; at
//! most one class is `globalDefault` (upstream's Priority admission plugin).

use std::sync::Arc;

use k8s_openapi::api::scheduling::v1 as api;
use serde_json::{json, Value};

use super::apps::decode_filled;
use super::pods::str_at;
use crate::apiserver::status::{forbidden, not_supported, required, ApiError, Cause};
use crate::authn::UserInfo;
use crate::registry::store::{immutable, Api, Ctx};
use crate::registry::validation::NameRule;
use crate::registry::{age, meta, Column, Hooks, Resource, Strategy, AGE_COLUMN, ALL_VERBS};
use crate::storage::{keys, ReadMode, Storage};

pub const GROUP: &str = "scheduling.k8s.io";

/// The name prefix reserved for the system classes.
pub const SYSTEM_PREFIX: &str = "system-";

/// The highest value a user-defined class may have (HighestUserDefinablePriority).
pub const HIGHEST_USER_DEFINABLE_PRIORITY: i64 = 1_000_000_000;

/// The system priority classes: name, value, description (SystemPriorityClasses()).
pub const SYSTEM_CLASSES: [(&str, i64, &str); 2] = [
    (
        "system-node-critical",
        2_000_001_000,
        "Used for system critical pods that must not be moved from their current node.",
    ),
    (
        "system-cluster-critical",
        2_000_000_000,
        "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.",
    ),
];

pub fn resources() -> Vec<Resource> {
    vec![Resource {
        group: GROUP,
        versions: &["v1"],
        kind: "PriorityClass",
        resource: "priorityclasses",
        singular: "priorityclass",
        namespaced: false,
        short_names: &["pc"],
        categories: &[],
        storage_prefix: "priorityclasses",
        subresources: &[],
        verbs: ALL_VERBS,
        name_rule: NameRule::Subdomain,
        strategy: Arc::new(PriorityClasses),
    }]
}

/// Creates the system priority classes that do not exist yet, as kube-apiserver's
/// post-start hook does. Idempotent; failures are logged and left to the next call.
pub async fn bootstrap(api: &Api) {
    let Some(res) = api.registry.lookup(GROUP, "v1", "priorityclasses") else {
        return;
    };
    let ctx = Ctx::new(UserInfo {
        name: "system:apiserver".into(),
        groups: vec!["system:masters".into()],
        ..Default::default()
    });
    for (name, value, description) in SYSTEM_CLASSES {
        match api.get(&res, "v1", None, name, "").await {
            Ok(_) => continue,
            Err(e) if e.code == 404 => {}
            Err(e) => {
                tracing::debug!(class = name, error = %e, "could not read a system priority class");
                continue;
            }
        }
        let obj = json!({
            "apiVersion": "scheduling.k8s.io/v1",
            "kind": "PriorityClass",
            "metadata": {"name": name},
            "value": value,
            "description": description,
        });
        match api.create(&res, "v1", &ctx, None, obj).await {
            Ok(_) => tracing::info!(class = name, "created system priority class"),
            Err(e) if e.code == 409 => {}
            Err(e) => {
                tracing::warn!(class = name, error = %e, "could not create a system priority class")
            }
        }
    }
}

/// IsKnownSystemPriorityClass: Ok when `name` is a system class with its exact value
/// and globalDefault false, else upstream's reason.
pub fn known_system_class(name: &str, value: i64, global_default: bool) -> Result<(), String> {
    let Some((n, v, _)) = SYSTEM_CLASSES.iter().find(|(n, _, _)| *n == name) else {
        return Err(format!("{name} is not a known system priority class"));
    };
    if *v != value {
        return Err(format!("value of {n} PriorityClass must be {v}"));
    }
    if global_default {
        return Err(format!("globalDefault of {n} PriorityClass must be false"));
    }
    Ok(())
}

/// ValidatePreemptionPolicy (core validation), shared with pods' preemptionPolicy.
pub fn validate_preemption_policy(v: &Value, path: &str) -> Vec<Cause> {
    match v.as_str().unwrap_or_default() {
        "PreemptLowerPriority" | "Never" => Vec::new(),
        "" => vec![required(path, "")],
        _ => vec![not_supported(path, v, &["PreemptLowerPriority", "Never"])],
    }
}

struct PriorityClasses;

fn value_of(obj: &Value) -> i64 {
    obj.get("value").and_then(Value::as_i64).unwrap_or(0)
}

/// The stored PriorityClasses marked `globalDefault` (normally at most one), read
/// consistently.
pub async fn default_classes(storage: &dyn Storage, root: &str) -> Result<Vec<Value>, ApiError> {
    let prefix = keys::list_prefix(root, "priorityclasses", None);
    let page = storage
        .list(&prefix, "", 0, ReadMode::Consistent)
        .await
        .map_err(|e| ApiError::internal(format!("failed to get default priority class: {e}")))?;
    Ok(page
        .kvs
        .iter()
        .filter_map(|kv| serde_json::from_slice::<Value>(&kv.value).ok())
        .filter(global_default)
        .collect())
}

fn global_default(obj: &Value) -> bool {
    obj.get("globalDefault")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

impl PriorityClasses {
    /// The Priority admission plugin's rule: no second globalDefault class.
    async fn only_one_default(&self, hooks: &Hooks, obj: &Value) -> Result<(), ApiError> {
        if !global_default(obj) {
            return Ok(());
        }
        let name = meta::name(obj);
        for other in default_classes(hooks.storage.as_ref(), &hooks.root).await? {
            if meta::name(&other) != name {
                return Err(ApiError::forbidden_message(format!(
                    "priorityclasses.{GROUP} \"{name}\" is forbidden: PriorityClass {} is marked as default. Only one default can exist",
                    meta::name(&other)
                )));
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Strategy for PriorityClasses {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        decode_filled::<api::PriorityClass>(
            obj,
            &[("/metadata", json!({}), true), ("/value", json!(0), true)],
        )
    }

    /// SetDefaults_PriorityClass.
    fn default(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            if m.get("preemptionPolicy").is_none_or(Value::is_null) {
                m.insert("preemptionPolicy".into(), json!("PreemptLowerPriority"));
            }
        }
    }

    /// ValidatePriorityClass.
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        let name = meta::name(obj);
        let value = value_of(obj);
        if name.starts_with(SYSTEM_PREFIX) {
            if let Err(e) = known_system_class(name, value, global_default(obj)) {
                out.push(forbidden(
                    "metadata.name",
                    &format!("priority class names with '{SYSTEM_PREFIX}' prefix are reserved for system use only. error: {e}"),
                ));
            }
        } else if value > HIGHEST_USER_DEFINABLE_PRIORITY {
            out.push(forbidden(
                "value",
                &format!(
                    "maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"
                ),
            ));
        }
        if let Some(p) = obj.get("preemptionPolicy").filter(|p| !p.is_null()) {
            out.extend(validate_preemption_policy(p, "preemptionPolicy"));
        }
        out
    }

    /// ValidatePriorityClass plus ValidatePriorityClassUpdate.
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut out = self.validate(new);
        if value_of(new) != value_of(old) {
            out.push(forbidden("value", "may not be changed in an update."));
        }
        let (a, b) = (new.get("preemptionPolicy"), old.get("preemptionPolicy"));
        if a != b {
            out.push(immutable("preemptionPolicy", a.unwrap_or(&Value::Null)));
        }
        out
    }

    async fn before_create(
        &self,
        hooks: &Hooks,
        obj: &mut Value,
        _dry_run: bool,
    ) -> Result<(), ApiError> {
        self.only_one_default(hooks, obj).await
    }

    async fn before_update(
        &self,
        hooks: &Hooks,
        new: &mut Value,
        _old: &Value,
        _dry_run: bool,
    ) -> Result<(), ApiError> {
        self.only_one_default(hooks, new).await
    }

    fn columns(&self) -> Vec<Column> {
        vec![
            Column::new("Value", "integer", "value represents the integer value of this priority class. This is the actual priority that pods receive when they have the name of this class in their pod spec."),
            Column::new("Global-Default", "boolean", "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class. Only one PriorityClass can be marked as `globalDefault`. However, if more than one PriorityClasses exists with their `globalDefault` field set to true, the smallest value of such global default PriorityClasses will be used as the default priority."),
            AGE_COLUMN,
            Column::new("PreemptionPolicy", "string", "preemptionPolicy is the Policy for preempting pods with lower priority. One of Never, PreemptLowerPriority. Defaults to PreemptLowerPriority if unset."),
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        vec![
            json!(value_of(obj)),
            json!(global_default(obj)),
            json!(age(obj)),
            json!(str_at(obj, "/preemptionPolicy")),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pc(name: &str, value: i64) -> Value {
        json!({"metadata": {"name": name}, "value": value})
    }

    #[test]
    fn defaults_and_system_prefix() {
        let mut p = pc("high", 1000);
        PriorityClasses.default(&mut p);
        assert_eq!(p["preemptionPolicy"], "PreemptLowerPriority");
        assert!(PriorityClasses.validate(&p).is_empty());

        let mut sys = pc("system-node-critical", 2_000_001_000);
        PriorityClasses.default(&mut sys);
        assert!(PriorityClasses.validate(&sys).is_empty());

        let wrong = pc("system-node-critical", 5);
        let causes = PriorityClasses.validate(&wrong);
        assert_eq!(causes[0].field, "metadata.name");
        assert_eq!(causes[0].message, "Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: value of system-node-critical PriorityClass must be 2000001000");

        let unknown = PriorityClasses.validate(&pc("system-mine", 5));
        assert!(unknown[0]
            .message
            .ends_with("system-mine is not a known system priority class"));

        let too_high = PriorityClasses.validate(&pc("big", 1_000_000_001));
        assert_eq!(too_high[0].field, "value");
        assert_eq!(
            too_high[0].message,
            "Forbidden: maximum allowed value of a user defined priority is 1000000000"
        );
    }

    #[test]
    fn preemption_policy_and_immutability() {
        let mut bad = pc("a", 1);
        bad["preemptionPolicy"] = json!("Sometimes");
        let c = PriorityClasses.validate(&bad);
        assert_eq!(c[0].field, "preemptionPolicy");
        assert_eq!(
            c[0].message,
            "Unsupported value: \"Sometimes\": supported values: \"PreemptLowerPriority\", \"Never\""
        );
        let mut old = pc("a", 1);
        PriorityClasses.default(&mut old);
        let mut new = pc("a", 2);
        new["preemptionPolicy"] = json!("Never");
        let fields: Vec<String> = PriorityClasses
            .validate_update(&new, &old)
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(fields, ["value", "preemptionPolicy"]);
    }

    #[test]
    fn cells_match_columns() {
        let mut p = pc("high", 7);
        p["globalDefault"] = json!(true);
        PriorityClasses.default(&mut p);
        let cells = PriorityClasses.cells(&p);
        assert_eq!(cells.len(), PriorityClasses.columns().len());
        assert_eq!(cells[0], 7);
        assert_eq!(cells[1], true);
        assert_eq!(cells[3], "PreemptLowerPriority");
    }
}
