//! Which k8s-openapi type describes each built-in (group, version, kind): the table the
//! OpenAPI documents are generated from.
//!
//! Invariant: one row per group-version-kind; the row's type is the k8s-openapi 0.29
//! (v1.33) type whose schema name is upstream's definition name
//! (`io.k8s.api.core.v1.Pod`, ...). Rows for kinds the registry does not serve are
//! harmless: documents include only what the registry serves.

use k8s_openapi::api::{
    admissionregistration::v1 as admissionregistration, apps::v1 as apps,
    authentication::v1 as authentication, authorization::v1 as authorization,
    autoscaling::v1 as autoscaling_v1, autoscaling::v2 as autoscaling_v2, batch::v1 as batch,
    certificates::v1 as certificates, coordination::v1 as coordination, core::v1 as core,
    discovery::v1 as discovery, events::v1 as events, flowcontrol::v1 as flowcontrol,
    networking::v1 as networking, node::v1 as node, policy::v1 as policy, rbac::v1 as rbac,
    scheduling::v1 as scheduling, storage::v1 as storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use schemars::{JsonSchema, SchemaGenerator};

/// The schema of one kind.
pub struct KindSchema {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    /// Adds the type's definition (and all it references) to the generator and returns
    /// the definition's name.
    pub define: fn(&mut SchemaGenerator) -> String,
}

/// Adds `T`'s definition to `generator`; returns its name.
pub fn define<T: JsonSchema>(generator: &mut SchemaGenerator) -> String {
    generator.subschema_for::<T>();
    T::schema_name().into_owned()
}

macro_rules! kind {
    ($group:literal, $version:literal, $kind:ident, $ty:ty) => {
        KindSchema {
            group: $group,
            version: $version,
            kind: stringify!($kind),
            define: define::<$ty>,
        }
    };
}

/// Every built-in kind the server may serve.
pub const KINDS: &[KindSchema] = &[
    // core/v1
    kind!("", "v1", Namespace, core::Namespace),
    kind!("", "v1", Pod, core::Pod),
    kind!("", "v1", Service, core::Service),
    kind!("", "v1", Endpoints, core::Endpoints),
    kind!("", "v1", ConfigMap, core::ConfigMap),
    kind!("", "v1", Secret, core::Secret),
    kind!("", "v1", ServiceAccount, core::ServiceAccount),
    kind!("", "v1", Node, core::Node),
    kind!("", "v1", Event, core::Event),
    kind!("", "v1", PersistentVolume, core::PersistentVolume),
    kind!("", "v1", PersistentVolumeClaim, core::PersistentVolumeClaim),
    kind!("", "v1", LimitRange, core::LimitRange),
    kind!("", "v1", ResourceQuota, core::ResourceQuota),
    kind!("", "v1", ReplicationController, core::ReplicationController),
    kind!("", "v1", PodTemplate, core::PodTemplate),
    kind!("", "v1", Binding, core::Binding),
    kind!("", "v1", ComponentStatus, core::ComponentStatus),
    // policy/v1
    kind!("policy", "v1", Eviction, policy::Eviction),
    kind!(
        "policy",
        "v1",
        PodDisruptionBudget,
        policy::PodDisruptionBudget
    ),
    // apps/v1
    kind!("apps", "v1", Deployment, apps::Deployment),
    kind!("apps", "v1", ReplicaSet, apps::ReplicaSet),
    kind!("apps", "v1", StatefulSet, apps::StatefulSet),
    kind!("apps", "v1", DaemonSet, apps::DaemonSet),
    kind!("apps", "v1", ControllerRevision, apps::ControllerRevision),
    // batch/v1
    kind!("batch", "v1", Job, batch::Job),
    kind!("batch", "v1", CronJob, batch::CronJob),
    // autoscaling/v1, v2
    kind!(
        "autoscaling",
        "v1",
        HorizontalPodAutoscaler,
        autoscaling_v1::HorizontalPodAutoscaler
    ),
    kind!("autoscaling", "v1", Scale, autoscaling_v1::Scale),
    kind!(
        "autoscaling",
        "v2",
        HorizontalPodAutoscaler,
        autoscaling_v2::HorizontalPodAutoscaler
    ),
    // coordination.k8s.io/v1
    kind!("coordination.k8s.io", "v1", Lease, coordination::Lease),
    // events.k8s.io/v1
    kind!("events.k8s.io", "v1", Event, events::Event),
    // networking.k8s.io/v1
    kind!("networking.k8s.io", "v1", Ingress, networking::Ingress),
    kind!(
        "networking.k8s.io",
        "v1",
        IngressClass,
        networking::IngressClass
    ),
    kind!(
        "networking.k8s.io",
        "v1",
        NetworkPolicy,
        networking::NetworkPolicy
    ),
    // storage.k8s.io/v1
    kind!("storage.k8s.io", "v1", StorageClass, storage::StorageClass),
    kind!("storage.k8s.io", "v1", CSIDriver, storage::CSIDriver),
    kind!("storage.k8s.io", "v1", CSINode, storage::CSINode),
    kind!(
        "storage.k8s.io",
        "v1",
        CSIStorageCapacity,
        storage::CSIStorageCapacity
    ),
    kind!(
        "storage.k8s.io",
        "v1",
        VolumeAttachment,
        storage::VolumeAttachment
    ),
    // scheduling.k8s.io/v1
    kind!(
        "scheduling.k8s.io",
        "v1",
        PriorityClass,
        scheduling::PriorityClass
    ),
    // node.k8s.io/v1
    kind!("node.k8s.io", "v1", RuntimeClass, node::RuntimeClass),
    // discovery.k8s.io/v1
    kind!(
        "discovery.k8s.io",
        "v1",
        EndpointSlice,
        discovery::EndpointSlice
    ),
    // certificates.k8s.io/v1
    kind!(
        "certificates.k8s.io",
        "v1",
        CertificateSigningRequest,
        certificates::CertificateSigningRequest
    ),
    // rbac.authorization.k8s.io/v1
    kind!("rbac.authorization.k8s.io", "v1", Role, rbac::Role),
    kind!(
        "rbac.authorization.k8s.io",
        "v1",
        RoleBinding,
        rbac::RoleBinding
    ),
    kind!(
        "rbac.authorization.k8s.io",
        "v1",
        ClusterRole,
        rbac::ClusterRole
    ),
    kind!(
        "rbac.authorization.k8s.io",
        "v1",
        ClusterRoleBinding,
        rbac::ClusterRoleBinding
    ),
    // admissionregistration.k8s.io/v1
    kind!(
        "admissionregistration.k8s.io",
        "v1",
        ValidatingWebhookConfiguration,
        admissionregistration::ValidatingWebhookConfiguration
    ),
    kind!(
        "admissionregistration.k8s.io",
        "v1",
        MutatingWebhookConfiguration,
        admissionregistration::MutatingWebhookConfiguration
    ),
    kind!(
        "admissionregistration.k8s.io",
        "v1",
        ValidatingAdmissionPolicy,
        admissionregistration::ValidatingAdmissionPolicy
    ),
    kind!(
        "admissionregistration.k8s.io",
        "v1",
        ValidatingAdmissionPolicyBinding,
        admissionregistration::ValidatingAdmissionPolicyBinding
    ),
    // apiextensions.k8s.io/v1
    kind!(
        "apiextensions.k8s.io",
        "v1",
        CustomResourceDefinition,
        apiextensions::CustomResourceDefinition
    ),
    // authentication.k8s.io/v1
    kind!(
        "authentication.k8s.io",
        "v1",
        TokenRequest,
        authentication::TokenRequest
    ),
    kind!(
        "authentication.k8s.io",
        "v1",
        TokenReview,
        authentication::TokenReview
    ),
    kind!(
        "authentication.k8s.io",
        "v1",
        SelfSubjectReview,
        authentication::SelfSubjectReview
    ),
    // authorization.k8s.io/v1
    kind!(
        "authorization.k8s.io",
        "v1",
        SelfSubjectAccessReview,
        authorization::SelfSubjectAccessReview
    ),
    kind!(
        "authorization.k8s.io",
        "v1",
        SelfSubjectRulesReview,
        authorization::SelfSubjectRulesReview
    ),
    kind!(
        "authorization.k8s.io",
        "v1",
        SubjectAccessReview,
        authorization::SubjectAccessReview
    ),
    kind!(
        "authorization.k8s.io",
        "v1",
        LocalSubjectAccessReview,
        authorization::LocalSubjectAccessReview
    ),
    // flowcontrol.apiserver.k8s.io/v1
    kind!(
        "flowcontrol.apiserver.k8s.io",
        "v1",
        FlowSchema,
        flowcontrol::FlowSchema
    ),
    kind!(
        "flowcontrol.apiserver.k8s.io",
        "v1",
        PriorityLevelConfiguration,
        flowcontrol::PriorityLevelConfiguration
    ),
];

/// The schema row of `group`/`version`/`kind`.
pub fn lookup(group: &str, version: &str, kind: &str) -> Option<&'static KindSchema> {
    KINDS
        .iter()
        .find(|k| k.group == group && k.version == version && k.kind == kind)
}

/// The kind a subresource's requests and responses carry, when it is not the parent's:
/// (group, version, kind). `None` for subresources of the parent's own kind (status,
/// finalize, ephemeralcontainers, resize) and for connect subresources.
pub fn subresource_kind(subresource: &str) -> Option<(&'static str, &'static str, &'static str)> {
    match subresource {
        "scale" => Some(("autoscaling", "v1", "Scale")),
        "binding" => Some(("", "v1", "Binding")),
        "eviction" => Some(("policy", "v1", "Eviction")),
        "token" => Some(("authentication.k8s.io", "v1", "TokenRequest")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_names_its_upstream_definition() {
        let mut generator = SchemaGenerator::default();
        for k in KINDS {
            let name = (k.define)(&mut generator);
            assert!(
                name.ends_with(&format!(".{}", k.kind)),
                "{name} for {}",
                k.kind
            );
            let group_part = if k.group.is_empty() {
                "core"
            } else {
                k.group.split('.').next().unwrap_or("")
            };
            assert!(
                name.contains(&format!(".{group_part}.{}.", k.version)),
                "{name} for {}/{}",
                k.group,
                k.version
            );
            assert!(
                generator.definitions().contains_key(&name),
                "{name} defined"
            );
        }
    }

    #[test]
    fn every_registered_kind_has_a_schema() {
        for r in crate::registry::kinds::all() {
            for v in r.versions {
                assert!(
                    lookup(r.group, v, r.kind).is_some(),
                    "no schema row for {}/{v} {}",
                    r.group,
                    r.kind
                );
            }
        }
    }
}
