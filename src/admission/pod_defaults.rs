//! Two of kube-apiserver's default pod admission plugins:
//!
//! - **DefaultTolerationSeconds** adds `node.kubernetes.io/not-ready` and
//!   `node.kubernetes.io/unreachable` NoExecute tolerations of 300 s to pods that do
//!   not tolerate those taints already, so a pod on a failed node is evicted after
//!   five minutes rather than never.
//! - **Priority** resolves `spec.priorityClassName` (or the class marked
//!   `globalDefault`) into `spec.priority` and `spec.preemptionPolicy`, refusing a pod
//!   that names a missing class or states a different value itself.
//!
//! Invariant: both act on pod creates and updates of the pod itself (no
//! subresource); DefaultTolerationSeconds only ever adds tolerations, so applying it
//! again changes nothing; Priority computes from the stored classes only.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{is_pod, stored_object, Attributes, Mutating, Operation};
use crate::apiserver::status::ApiError;
use crate::registry::kinds::scheduling;
use crate::registry::meta;
use crate::storage::{keys, Storage};

/// kube-apiserver's `--default-not-ready-toleration-seconds` and
/// `--default-unreachable-toleration-seconds` defaults.
const DEFAULT_TOLERATION_SECONDS: u64 = 300;
const NOT_READY: &str = "node.kubernetes.io/not-ready";
const UNREACHABLE: &str = "node.kubernetes.io/unreachable";

/// `pods "name" is forbidden: why`, as upstream's admission.NewForbidden says it.
fn forbidden(attrs: &Attributes<'_>, why: String) -> ApiError {
    ApiError::forbidden_message(format!("pods \"{}\" is forbidden: {why}", attrs.name))
}

pub struct DefaultTolerationSeconds;

#[async_trait::async_trait]
impl Mutating for DefaultTolerationSeconds {
    fn name(&self) -> &'static str {
        "DefaultTolerationSeconds"
    }

    async fn admit(
        &self,
        attrs: &Attributes<'_>,
        obj: &mut Value,
        _old: Option<&Value>,
    ) -> Result<(), ApiError> {
        if !matches!(attrs.operation, Operation::Create | Operation::Update) || !is_pod(attrs) {
            return Ok(());
        }
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return Ok(());
        };
        let tolerates = |tolerations: &[Value], key: &str| {
            tolerations.iter().any(|t| {
                let k = t["key"].as_str().unwrap_or("");
                let effect = t["effect"].as_str().unwrap_or("");
                (k == key || k.is_empty()) && (effect == "NoExecute" || effect.is_empty())
            })
        };
        let existing = spec
            .get("tolerations")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut added = Vec::new();
        for key in [NOT_READY, UNREACHABLE] {
            if !tolerates(&existing, key) {
                added.push(json!({
                    "key": key,
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": DEFAULT_TOLERATION_SECONDS,
                }));
            }
        }
        if !added.is_empty() {
            let mut all = existing;
            all.extend(added);
            spec.insert("tolerations".into(), Value::Array(all));
        }
        Ok(())
    }
}

pub struct Priority {
    storage: Arc<dyn Storage>,
    root: String,
}

impl Priority {
    pub fn new(storage: Arc<dyn Storage>, root: &str) -> Self {
        Priority {
            storage,
            root: root.to_owned(),
        }
    }

    async fn class(&self, name: &str) -> Result<Option<Value>, ApiError> {
        let key = keys::object_key(&self.root, "priorityclasses", None, name);
        stored_object(self.storage.as_ref(), &key).await
    }

    /// The class marked `globalDefault`, if any.
    async fn default_class(&self) -> Result<Option<Value>, ApiError> {
        let defaults = scheduling::default_classes(self.storage.as_ref(), &self.root).await?;
        Ok(defaults.into_iter().next())
    }
}

#[async_trait::async_trait]
impl Mutating for Priority {
    fn name(&self) -> &'static str {
        "Priority"
    }

    async fn admit(
        &self,
        attrs: &Attributes<'_>,
        obj: &mut Value,
        _old: Option<&Value>,
    ) -> Result<(), ApiError> {
        // Updates cannot change the priority fields (pod validation keeps them).
        if attrs.operation != Operation::Create || !is_pod(attrs) {
            return Ok(());
        }
        let named = obj["spec"]["priorityClassName"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let class = if named.is_empty() {
            self.default_class().await?
        } else {
            match self.class(&named).await? {
                Some(c) => Some(c),
                None => {
                    return Err(forbidden(
                        attrs,
                        format!("no PriorityClass with name {named} was found"),
                    ))
                }
            }
        };
        let (name, value, policy) = match &class {
            Some(c) => (
                meta::name(c).to_owned(),
                c["value"].as_i64().unwrap_or(0),
                c["preemptionPolicy"]
                    .as_str()
                    .unwrap_or("PreemptLowerPriority")
                    .to_owned(),
            ),
            None => (String::new(), 0, "PreemptLowerPriority".to_owned()),
        };
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return Ok(());
        };
        if let Some(given) = spec.get("priority").and_then(Value::as_i64) {
            if given != value {
                return Err(forbidden(
                    attrs,
                    format!("the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {value} from the given PriorityClass name"),
                ));
            }
        }
        if let Some(given) = spec.get("preemptionPolicy").and_then(Value::as_str) {
            if given != policy {
                return Err(forbidden(
                    attrs,
                    format!("the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name"),
                ));
            }
        }
        if !name.is_empty() {
            spec.insert("priorityClassName".into(), json!(name));
        }
        spec.insert("priority".into(), json!(value));
        spec.insert("preemptionPolicy".into(), json!(policy));
        Ok(())
    }
}
