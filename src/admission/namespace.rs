//! NamespaceLifecycle: nothing is created in a namespace that does not exist or is
//! terminating, and the system namespaces (default, kube-system, kube-public) cannot
//! be deleted.
//!
//! Invariant: a namespace that this member does not see yet is looked up again with a
//! linearizable read before the request is refused.

use std::sync::Arc;

use serde_json::Value;

use super::{stored_object, Attributes, Operation, Validating};
use crate::apiserver::status::{ApiError, Subject};
use crate::registry::meta;
use crate::storage::{keys, Storage};

/// Namespaces that always exist.
pub const IMMORTAL: &[&str] = &["default", "kube-system", "kube-public"];

pub struct NamespaceLifecycle {
    storage: Arc<dyn Storage>,
    root: String,
}

impl NamespaceLifecycle {
    pub fn new(storage: Arc<dyn Storage>, root: &str) -> Self {
        NamespaceLifecycle {
            storage,
            root: root.to_owned(),
        }
    }

    async fn namespace(&self, name: &str) -> Result<Option<Value>, ApiError> {
        let key = keys::object_key(&self.root, "namespaces", None, name);
        stored_object(self.storage.as_ref(), &key).await
    }
}

#[async_trait::async_trait]
impl Validating for NamespaceLifecycle {
    fn name(&self) -> &'static str {
        "NamespaceLifecycle"
    }

    async fn validate(
        &self,
        attrs: &Attributes<'_>,
        _obj: &Value,
        _old: Option<&Value>,
    ) -> Result<(), ApiError> {
        let res = attrs.resource;
        if res.resource == "namespaces" && res.group.is_empty() {
            if attrs.operation == Operation::Delete && IMMORTAL.contains(&attrs.name) {
                return Err(ApiError::forbidden_message(format!(
                    "namespaces \"{}\" is forbidden: this namespace may not be deleted",
                    attrs.name
                )));
            }
            return Ok(());
        }
        if !res.namespaced || attrs.operation != Operation::Create || attrs.namespace.is_empty() {
            return Ok(());
        }
        match self.namespace(attrs.namespace).await? {
            None => Err(ApiError::not_found(&Subject::new(
                "",
                "namespaces",
                attrs.namespace,
            ))),
            Some(ns) => {
                let terminating = meta::deletion_timestamp(&ns).is_some()
                    || ns.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating");
                // Events are still accepted in a terminating namespace, as upstream does.
                if terminating && res.resource != "events" {
                    let subject = if res.group.is_empty() {
                        res.resource.to_owned()
                    } else {
                        format!("{}.{}", res.resource, res.group)
                    };
                    return Err(ApiError::forbidden_message(format!(
                        "{subject} \"{}\" is forbidden: unable to create new content in namespace {} because it is being terminated",
                        attrs.name, attrs.namespace
                    )));
                }
                Ok(())
            }
        }
    }
}
