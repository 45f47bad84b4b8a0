//! Admission: plugins that may change (mutating) or refuse (validating) a write after
//! authentication and authorization, chosen by `--enable-admission-plugins` /
//! `--disable-admission-plugins`. Mutating plugins run before object validation,
//! validating plugins after it, as upstream orders them.
//!
//! Invariant: a plugin that refuses returns the API error to send; nothing has been
//! written at that point.

mod namespace;
mod pod_defaults;
mod service_account;

use std::sync::Arc;

use serde_json::Value;

pub use namespace::NamespaceLifecycle;
pub use pod_defaults::{DefaultTolerationSeconds, Priority};
pub use service_account::ServiceAccount;

use crate::apiserver::status::ApiError;
use crate::authn::UserInfo;
use crate::registry::Resource;
use crate::storage::{ReadMode, Storage};

/// Whether the request is about a pod itself (no subresource).
fn is_pod(attrs: &Attributes<'_>) -> bool {
    attrs.resource.group.is_empty()
        && attrs.resource.resource == "pods"
        && attrs.subresource.is_empty()
}

/// The object stored at `key`, decoded. Read locally first and, when absent, again
/// with a consistent read: this member may not have applied a recent create yet, and
/// a plugin must not refuse a request over an object that exists.
async fn stored_object(storage: &dyn Storage, key: &str) -> Result<Option<Value>, ApiError> {
    for mode in [ReadMode::Any, ReadMode::Consistent] {
        match storage.get(key, mode).await {
            Ok(Some(kv)) => {
                return serde_json::from_slice(&kv.value)
                    .map(Some)
                    .map_err(|e| ApiError::internal(e.to_string()))
            }
            Ok(None) => continue,
            Err(e) => return Err(ApiError::internal(e.to_string())),
        }
    }
    Ok(None)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

/// What a plugin knows of the request.
pub struct Attributes<'a> {
    pub operation: Operation,
    pub resource: &'a Resource,
    pub subresource: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub user: &'a UserInfo,
    pub dry_run: bool,
}

#[async_trait::async_trait]
pub trait Mutating: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    async fn admit(
        &self,
        attrs: &Attributes<'_>,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError>;
}

#[async_trait::async_trait]
pub trait Validating: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    async fn validate(
        &self,
        attrs: &Attributes<'_>,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError>;
}

/// The configured plugins, in order.
#[derive(Default)]
pub struct Chain {
    pub mutating: Vec<Arc<dyn Mutating>>,
    pub validating: Vec<Arc<dyn Validating>>,
}

/// The plugins enabled when no flag says otherwise (those of kube-apiserver's defaults
/// that this server implements).
pub const DEFAULT_PLUGINS: &[&str] = &[
    "NamespaceLifecycle",
    "ServiceAccount",
    "Priority",
    "DefaultTolerationSeconds",
];

impl Chain {
    /// Builds the chain from plugin names; unknown names are an error.
    pub fn from_names(
        enabled: &[String],
        disabled: &[String],
        storage: Arc<dyn Storage>,
        root: &str,
    ) -> Result<Chain, String> {
        let mut names: Vec<String> = DEFAULT_PLUGINS.iter().map(|s| s.to_string()).collect();
        for n in enabled {
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
        names.retain(|n| !disabled.contains(n));
        let mut chain = Chain::default();
        for n in &names {
            match n.as_str() {
                "NamespaceLifecycle" => chain
                    .validating
                    .push(Arc::new(NamespaceLifecycle::new(storage.clone(), root))),
                "ServiceAccount" => {
                    let sa = Arc::new(ServiceAccount::new(storage.clone(), root));
                    chain.mutating.push(sa.clone());
                    chain.validating.push(sa);
                }
                "Priority" => chain
                    .mutating
                    .push(Arc::new(Priority::new(storage.clone(), root))),
                "DefaultTolerationSeconds" => {
                    chain.mutating.push(Arc::new(DefaultTolerationSeconds))
                }
                // Accepted for compatibility with kube-apiserver command lines; their
                // behaviour belongs to components this server does not run.
                "DefaultStorageClass"
                | "MutatingAdmissionWebhook"
                | "ValidatingAdmissionWebhook"
                | "ValidatingAdmissionPolicy"
                | "ResourceQuota"
                | "LimitRanger"
                | "TaintNodesByCondition"
                | "PersistentVolumeClaimResize"
                | "RuntimeClass"
                | "CertificateApproval"
                | "CertificateSigning"
                | "CertificateSubjectRestriction"
                | "DefaultIngressClass"
                | "StorageObjectInUseProtection"
                | "PodSecurity"
                | "NodeRestriction" => {}
                other => return Err(format!("unknown admission plugin \"{other}\"")),
            }
        }
        Ok(chain)
    }

    pub async fn mutate(
        &self,
        attrs: &Attributes<'_>,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        for p in &self.mutating {
            p.admit(attrs, obj, old).await?;
        }
        Ok(())
    }

    pub async fn validate(
        &self,
        attrs: &Attributes<'_>,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        for p in &self.validating {
            p.validate(attrs, obj, old).await?;
        }
        Ok(())
    }
}
