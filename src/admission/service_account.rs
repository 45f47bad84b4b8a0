//! ServiceAccount admission for pods: defaults `spec.serviceAccountName` to
//! "default", refuses pods whose service account does not exist, and mounts the
//! projected API-access volume (token, cluster CA, namespace) into every container
//! unless automounting is turned off.
//!
//! Invariant: only pod creates are touched; a pod that already names the volume or
//! mounts the token path is left as it is.

use std::sync::Arc;

use serde_json::{json, Value};

use super::{is_pod, stored_object, Attributes, Mutating, Operation, Validating};
use crate::apiserver::status::ApiError;
use crate::registry::meta;
use crate::storage::{keys, Storage};

const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

pub struct ServiceAccount {
    storage: Arc<dyn Storage>,
    root: String,
}

impl ServiceAccount {
    pub fn new(storage: Arc<dyn Storage>, root: &str) -> Self {
        ServiceAccount {
            storage,
            root: root.to_owned(),
        }
    }

    fn applies(attrs: &Attributes<'_>) -> bool {
        attrs.operation == Operation::Create && is_pod(attrs)
    }

    async fn service_account(&self, ns: &str, name: &str) -> Result<Option<Value>, ApiError> {
        let key = keys::object_key(&self.root, "serviceaccounts", Some(ns), name);
        stored_object(self.storage.as_ref(), &key).await
    }
}

#[async_trait::async_trait]
impl Mutating for ServiceAccount {
    fn name(&self) -> &'static str {
        "ServiceAccount"
    }

    async fn admit(
        &self,
        attrs: &Attributes<'_>,
        obj: &mut Value,
        _old: Option<&Value>,
    ) -> Result<(), ApiError> {
        if !Self::applies(attrs) {
            return Ok(());
        }
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return Ok(());
        };
        let sa = spec
            .get("serviceAccountName")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .or_else(|| {
                spec.get("serviceAccount")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
            })
            .unwrap_or("default")
            .to_owned();
        spec.insert("serviceAccountName".into(), json!(sa));
        spec.insert("serviceAccount".into(), json!(sa));
        let automount_pod = spec
            .get("automountServiceAccountToken")
            .and_then(Value::as_bool);
        let automount_sa = self
            .service_account(attrs.namespace, &sa)
            .await?
            .and_then(|s| {
                s.get("automountServiceAccountToken")
                    .and_then(Value::as_bool)
            });
        if automount_pod.or(automount_sa) == Some(false) {
            return Ok(());
        }
        let volumes = spec.entry("volumes").or_insert_with(|| json!([]));
        let Some(volumes) = volumes.as_array_mut() else {
            return Ok(());
        };
        let existing = volumes.iter().find_map(|v| {
            let name = v.get("name").and_then(Value::as_str)?;
            name.starts_with("kube-api-access-")
                .then(|| name.to_owned())
        });
        let volume_name = match existing {
            Some(n) => n,
            None => {
                let n = format!("kube-api-access-{}", meta::random_suffix());
                volumes.push(json!({
                    "name": n,
                    "projected": {
                        "defaultMode": 420,
                        "sources": [
                            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
                        ]
                    }
                }));
                n
            }
        };
        for list in ["containers", "initContainers"] {
            let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
                continue;
            };
            for c in containers {
                let Some(c) = c.as_object_mut() else { continue };
                let mounts = c.entry("volumeMounts").or_insert_with(|| json!([]));
                let Some(mounts) = mounts.as_array_mut() else {
                    continue;
                };
                let mounted = mounts
                    .iter()
                    .any(|m| m.get("mountPath").and_then(Value::as_str) == Some(MOUNT_PATH));
                if !mounted {
                    mounts.push(
                        json!({"name": volume_name, "readOnly": true, "mountPath": MOUNT_PATH}),
                    );
                }
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Validating for ServiceAccount {
    fn name(&self) -> &'static str {
        "ServiceAccount"
    }

    async fn validate(
        &self,
        attrs: &Attributes<'_>,
        obj: &Value,
        _old: Option<&Value>,
    ) -> Result<(), ApiError> {
        if !Self::applies(attrs) {
            return Ok(());
        }
        let sa = obj
            .pointer("/spec/serviceAccountName")
            .and_then(Value::as_str)
            .unwrap_or("default");
        if self.service_account(attrs.namespace, sa).await?.is_none() {
            return Err(ApiError::forbidden_message(format!(
                "pods \"{}\" is forbidden: error looking up service account {}/{sa}: serviceaccount \"{sa}\" not found",
                attrs.name, attrs.namespace
            )));
        }
        Ok(())
    }
}
