//! Upstream's list, map and patch semantics per field, which k8s-openapi's schemas
//! leave out: `x-kubernetes-list-type`, `x-kubernetes-list-map-keys`,
//! `x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key` and
//! `x-kubernetes-map-type`, keyed by definition name and JSON field name.
//!
//! The rows restate the `+listType`, `+listMapKey`, `+mapType`, `+structType` markers and
//! the `patchStrategy`/`patchMergeKey` struct tags of the v1.33 Go API types
//! (k8s.io/api, k8s.io/apimachinery meta/v1, k8s.io/apiextensions-apiserver v1), fields
//! of inlined structs included. Invariant: one row per (definition, field); a field
//! without a row has none of these extensions, and a list without a merge key is
//! atomic for strategic merge patch.

/// The extensions of one field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    /// `x-kubernetes-list-type`: "atomic", "set" or "map" ("" = none).
    pub list_type: &'static str,
    /// `x-kubernetes-list-map-keys`.
    pub map_keys: &'static [&'static str],
    /// `x-kubernetes-patch-strategy`: "merge", "retainKeys", "merge,retainKeys" ("" = none).
    pub strategy: &'static str,
    /// `x-kubernetes-patch-merge-key` ("" = none).
    pub merge_key: &'static str,
    /// `x-kubernetes-map-type` of a map or struct field ("" = none).
    pub map_type: &'static str,
}

const fn f(
    name: &'static str,
    list_type: &'static str,
    map_keys: &'static [&'static str],
    strategy: &'static str,
    merge_key: &'static str,
    map_type: &'static str,
) -> Field {
    Field {
        name,
        list_type,
        map_keys,
        strategy,
        merge_key,
        map_type,
    }
}

/// Definitions whose whole object is atomic (`x-kubernetes-map-type: atomic`).
pub const ATOMIC_TYPES: &[&str] = &[
    "io.k8s.api.admissionregistration.v1.MatchResources",
    "io.k8s.api.admissionregistration.v1.NamedRuleWithOperations",
    "io.k8s.api.admissionregistration.v1.ParamKind",
    "io.k8s.api.admissionregistration.v1.ParamRef",
    "io.k8s.api.admissionregistration.v1.Variable",
    "io.k8s.api.autoscaling.v1.CrossVersionObjectReference",
    "io.k8s.api.core.v1.ConfigMapKeySelector",
    "io.k8s.api.core.v1.EndpointAddress",
    "io.k8s.api.core.v1.EndpointPort",
    "io.k8s.api.core.v1.LocalObjectReference",
    "io.k8s.api.core.v1.NodeSelector",
    "io.k8s.api.core.v1.NodeSelectorTerm",
    "io.k8s.api.core.v1.ObjectFieldSelector",
    "io.k8s.api.core.v1.ObjectReference",
    "io.k8s.api.core.v1.ResourceFieldSelector",
    "io.k8s.api.core.v1.ScopeSelector",
    "io.k8s.api.core.v1.SecretKeySelector",
    "io.k8s.api.core.v1.SecretReference",
    "io.k8s.api.core.v1.TopologySelectorTerm",
    "io.k8s.api.core.v1.TypedLocalObjectReference",
    "io.k8s.api.discovery.v1.EndpointPort",
    "io.k8s.api.networking.v1.ServiceBackendPort",
    "io.k8s.api.rbac.v1.RoleRef",
    "io.k8s.api.rbac.v1.Subject",
    "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
    "io.k8s.apimachinery.pkg.apis.meta.v1.OwnerReference",
];

/// Per-definition field extensions, sorted by definition name.
pub const FIELDS: &[(&str, &[Field])] = &[
    (
        "io.k8s.api.admissionregistration.v1.MatchResources",
        &[
            f("excludeResourceRules", "atomic", &[], "", "", ""),
            f("resourceRules", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.admissionregistration.v1.MutatingWebhook",
        &[
            f("admissionReviewVersions", "atomic", &[], "", "", ""),
            f("matchConditions", "map", &["name"], "merge", "name", ""),
            f("rules", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.admissionregistration.v1.MutatingWebhookConfiguration",
        &[f("webhooks", "map", &["name"], "merge", "name", "")],
    ),
    (
        "io.k8s.api.admissionregistration.v1.NamedRuleWithOperations",
        &[
            f("apiGroups", "atomic", &[], "", "", ""),
            f("apiVersions", "atomic", &[], "", "", ""),
            f("operations", "atomic", &[], "", "", ""),
            f("resourceNames", "atomic", &[], "", "", ""),
            f("resources", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.admissionregistration.v1.Rule",
        &[
            f("apiGroups", "atomic", &[], "", "", ""),
            f("apiVersions", "atomic", &[], "", "", ""),
            f("resources", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.admissionregistration.v1.RuleWithOperations",
        &[
            f("apiGroups", "atomic", &[], "", "", ""),
            f("apiVersions", "atomic", &[], "", "", ""),
            f("operations", "atomic", &[], "", "", ""),
            f("resources", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.admissionregistration.v1.TypeChecking",
        &[f("expressionWarnings", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicyBindingSpec",
        &[f("validationActions", "set", &[], "", "", "")],
    ),
    (
        "io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicySpec",
        &[
            f("auditAnnotations", "atomic", &[], "", "", ""),
            f("matchConditions", "map", &["name"], "merge", "name", ""),
            f("validations", "atomic", &[], "", "", ""),
            f("variables", "map", &["name"], "merge", "name", ""),
        ],
    ),
    (
        "io.k8s.api.admissionregistration.v1.ValidatingAdmissionPolicyStatus",
        &[f("conditions", "map", &["type"], "", "", "")],
    ),
    (
        "io.k8s.api.admissionregistration.v1.ValidatingWebhook",
        &[
            f("admissionReviewVersions", "atomic", &[], "", "", ""),
            f("matchConditions", "map", &["name"], "merge", "name", ""),
            f("rules", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.admissionregistration.v1.ValidatingWebhookConfiguration",
        &[f("webhooks", "map", &["name"], "merge", "name", "")],
    ),
    (
        "io.k8s.api.apps.v1.DaemonSetStatus",
        &[f("conditions", "map", &["type"], "merge", "type", "")],
    ),
    (
        "io.k8s.api.apps.v1.DeploymentSpec",
        &[f("strategy", "", &[], "retainKeys", "", "")],
    ),
    (
        "io.k8s.api.apps.v1.DeploymentStatus",
        &[f("conditions", "map", &["type"], "merge", "type", "")],
    ),
    (
        "io.k8s.api.apps.v1.ReplicaSetStatus",
        &[f("conditions", "map", &["type"], "merge", "type", "")],
    ),
    (
        "io.k8s.api.apps.v1.StatefulSetSpec",
        &[f("volumeClaimTemplates", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.apps.v1.StatefulSetStatus",
        &[f("conditions", "map", &["type"], "merge", "type", "")],
    ),
    (
        "io.k8s.api.authentication.v1.TokenRequestSpec",
        &[f("audiences", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.authentication.v1.TokenReviewSpec",
        &[f("audiences", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.authentication.v1.TokenReviewStatus",
        &[f("audiences", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.authentication.v1.UserInfo",
        &[f("groups", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.authorization.v1.FieldSelectorAttributes",
        &[f("requirements", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.authorization.v1.LabelSelectorAttributes",
        &[f("requirements", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.authorization.v1.NonResourceRule",
        &[
            f("nonResourceURLs", "atomic", &[], "", "", ""),
            f("verbs", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.authorization.v1.ResourceRule",
        &[
            f("apiGroups", "atomic", &[], "", "", ""),
            f("resourceNames", "atomic", &[], "", "", ""),
            f("resources", "atomic", &[], "", "", ""),
            f("verbs", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.authorization.v1.SubjectAccessReviewSpec",
        &[f("groups", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.authorization.v1.SubjectRulesReviewStatus",
        &[
            f("nonResourceRules", "atomic", &[], "", "", ""),
            f("resourceRules", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.autoscaling.v2.HPAScalingRules",
        &[f("policies", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec",
        &[f("metrics", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerStatus",
        &[
            f("conditions", "map", &["type"], "merge", "type", ""),
            f("currentMetrics", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.batch.v1.CronJobStatus",
        &[f("active", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.batch.v1.JobStatus",
        &[f("conditions", "atomic", &[], "merge", "type", "")],
    ),
    (
        "io.k8s.api.batch.v1.PodFailurePolicy",
        &[f("rules", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.batch.v1.PodFailurePolicyOnExitCodesRequirement",
        &[f("values", "set", &[], "", "", "")],
    ),
    (
        "io.k8s.api.batch.v1.PodFailurePolicyRule",
        &[f("onPodConditions", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.batch.v1.SuccessPolicy",
        &[f("rules", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.batch.v1.UncountedTerminatedPods",
        &[
            f("failed", "set", &[], "", "", ""),
            f("succeeded", "set", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.certificates.v1.CertificateSigningRequestSpec",
        &[
            f("groups", "atomic", &[], "", "", ""),
            f("request", "atomic", &[], "", "", ""),
            f("usages", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.certificates.v1.CertificateSigningRequestStatus",
        &[
            f("certificate", "atomic", &[], "", "", ""),
            f("conditions", "map", &["type"], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.core.v1.AvoidPods",
        &[f("preferAvoidPods", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.Capabilities",
        &[
            f("add", "atomic", &[], "", "", ""),
            f("drop", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.core.v1.CephFSPersistentVolumeSource",
        &[f("monitors", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.CephFSVolumeSource",
        &[f("monitors", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.ComponentStatus",
        &[f("conditions", "map", &["type"], "merge", "type", "")],
    ),
    (
        "io.k8s.api.core.v1.ConfigMapProjection",
        &[f("items", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.ConfigMapVolumeSource",
        &[f("items", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.Container",
        &[
            f("args", "atomic", &[], "", "", ""),
            f("command", "atomic", &[], "", "", ""),
            f("env", "map", &["name"], "merge", "name", ""),
            f("envFrom", "atomic", &[], "", "", ""),
            f(
                "ports",
                "map",
                &["containerPort", "protocol"],
                "merge",
                "containerPort",
                "",
            ),
            f("resizePolicy", "atomic", &[], "", "", ""),
            f(
                "volumeDevices",
                "map",
                &["devicePath"],
                "merge",
                "devicePath",
                "",
            ),
            f(
                "volumeMounts",
                "map",
                &["mountPath"],
                "merge",
                "mountPath",
                "",
            ),
        ],
    ),
    (
        "io.k8s.api.core.v1.ContainerImage",
        &[f("names", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.ContainerStatus",
        &[
            f(
                "allocatedResourcesStatus",
                "map",
                &["name"],
                "merge",
                "name",
                "",
            ),
            f(
                "volumeMounts",
                "map",
                &["mountPath"],
                "merge",
                "mountPath",
                "",
            ),
        ],
    ),
    (
        "io.k8s.api.core.v1.DownwardAPIProjection",
        &[f("items", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.DownwardAPIVolumeSource",
        &[f("items", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.EndpointSubset",
        &[
            f("addresses", "atomic", &[], "", "", ""),
            f("notReadyAddresses", "atomic", &[], "", "", ""),
            f("ports", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.core.v1.Endpoints",
        &[f("subsets", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainer",
        &[
            f("args", "atomic", &[], "", "", ""),
            f("command", "atomic", &[], "", "", ""),
            f("env", "map", &["name"], "merge", "name", ""),
            f("envFrom", "atomic", &[], "", "", ""),
            f(
                "ports",
                "map",
                &["containerPort", "protocol"],
                "merge",
                "containerPort",
                "",
            ),
            f("resizePolicy", "atomic", &[], "", "", ""),
            f(
                "volumeDevices",
                "map",
                &["devicePath"],
                "merge",
                "devicePath",
                "",
            ),
            f(
                "volumeMounts",
                "map",
                &["mountPath"],
                "merge",
                "mountPath",
                "",
            ),
        ],
    ),
    (
        "io.k8s.api.core.v1.EphemeralContainerCommon",
        &[
            f("args", "atomic", &[], "", "", ""),
            f("command", "atomic", &[], "", "", ""),
            f("env", "map", &["name"], "merge", "name", ""),
            f("envFrom", "atomic", &[], "", "", ""),
            f(
                "ports",
                "map",
                &["containerPort", "protocol"],
                "merge",
                "containerPort",
                "",
            ),
            f("resizePolicy", "atomic", &[], "", "", ""),
            f(
                "volumeDevices",
                "map",
                &["devicePath"],
                "merge",
                "devicePath",
                "",
            ),
            f(
                "volumeMounts",
                "map",
                &["mountPath"],
                "merge",
                "mountPath",
                "",
            ),
        ],
    ),
    (
        "io.k8s.api.core.v1.ExecAction",
        &[f("command", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.FCVolumeSource",
        &[
            f("targetWWNs", "atomic", &[], "", "", ""),
            f("wwids", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.core.v1.HTTPGetAction",
        &[f("httpHeaders", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.HostAlias",
        &[f("hostnames", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.ISCSIPersistentVolumeSource",
        &[f("portals", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.ISCSIVolumeSource",
        &[f("portals", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.LimitRangeSpec",
        &[f("limits", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.LinuxContainerUser",
        &[f("supplementalGroups", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.LoadBalancerIngress",
        &[f("ports", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.LoadBalancerStatus",
        &[f("ingress", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.NamespaceSpec",
        &[f("finalizers", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.NamespaceStatus",
        &[f("conditions", "map", &["type"], "merge", "type", "")],
    ),
    (
        "io.k8s.api.core.v1.NodeAffinity",
        &[f(
            "preferredDuringSchedulingIgnoredDuringExecution",
            "atomic",
            &[],
            "",
            "",
            "",
        )],
    ),
    (
        "io.k8s.api.core.v1.NodeSelector",
        &[f("nodeSelectorTerms", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.NodeSelectorRequirement",
        &[f("values", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.NodeSelectorTerm",
        &[
            f("matchExpressions", "atomic", &[], "", "", ""),
            f("matchFields", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.core.v1.NodeSpec",
        &[
            f("podCIDRs", "set", &[], "merge", "", ""),
            f("taints", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.core.v1.NodeStatus",
        &[
            f("addresses", "map", &["type"], "merge", "type", ""),
            f("conditions", "map", &["type"], "merge", "type", ""),
            f("images", "atomic", &[], "", "", ""),
            f("runtimeHandlers", "atomic", &[], "", "", ""),
            f("volumesAttached", "atomic", &[], "", "", ""),
            f("volumesInUse", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.core.v1.PersistentVolumeClaimSpec",
        &[f("accessModes", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.PersistentVolumeClaimStatus",
        &[
            f("accessModes", "atomic", &[], "", "", ""),
            f("allocatedResourceStatuses", "", &[], "", "", "granular"),
            f("conditions", "map", &["type"], "merge", "type", ""),
        ],
    ),
    (
        "io.k8s.api.core.v1.PersistentVolumeSpec",
        &[
            f("accessModes", "atomic", &[], "", "", ""),
            f("mountOptions", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.core.v1.PodAffinity",
        &[
            f(
                "preferredDuringSchedulingIgnoredDuringExecution",
                "atomic",
                &[],
                "",
                "",
                "",
            ),
            f(
                "requiredDuringSchedulingIgnoredDuringExecution",
                "atomic",
                &[],
                "",
                "",
                "",
            ),
        ],
    ),
    (
        "io.k8s.api.core.v1.PodAffinityTerm",
        &[
            f("matchLabelKeys", "atomic", &[], "", "", ""),
            f("mismatchLabelKeys", "atomic", &[], "", "", ""),
            f("namespaces", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.core.v1.PodAntiAffinity",
        &[
            f(
                "preferredDuringSchedulingIgnoredDuringExecution",
                "atomic",
                &[],
                "",
                "",
                "",
            ),
            f(
                "requiredDuringSchedulingIgnoredDuringExecution",
                "atomic",
                &[],
                "",
                "",
                "",
            ),
        ],
    ),
    (
        "io.k8s.api.core.v1.PodDNSConfig",
        &[
            f("nameservers", "atomic", &[], "", "", ""),
            f("options", "atomic", &[], "", "", ""),
            f("searches", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.core.v1.PodExecOptions",
        &[f("command", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.PodPortForwardOptions",
        &[f("ports", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.PodSecurityContext",
        &[
            f("supplementalGroups", "atomic", &[], "", "", ""),
            f("sysctls", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.core.v1.PodSpec",
        &[
            f("containers", "map", &["name"], "merge", "name", ""),
            f("ephemeralContainers", "map", &["name"], "merge", "name", ""),
            f("hostAliases", "map", &["ip"], "merge", "ip", ""),
            f("imagePullSecrets", "map", &["name"], "merge", "name", ""),
            f("initContainers", "map", &["name"], "merge", "name", ""),
            f("nodeSelector", "", &[], "", "", "atomic"),
            f("readinessGates", "atomic", &[], "", "", ""),
            f(
                "resourceClaims",
                "map",
                &["name"],
                "merge,retainKeys",
                "name",
                "",
            ),
            f("schedulingGates", "map", &["name"], "merge", "name", ""),
            f("tolerations", "atomic", &[], "", "", ""),
            f(
                "topologySpreadConstraints",
                "map",
                &["topologyKey", "whenUnsatisfiable"],
                "merge",
                "topologyKey",
                "",
            ),
            f("volumes", "map", &["name"], "merge,retainKeys", "name", ""),
        ],
    ),
    (
        "io.k8s.api.core.v1.PodStatus",
        &[
            f("conditions", "map", &["type"], "merge", "type", ""),
            f("containerStatuses", "atomic", &[], "", "", ""),
            f("ephemeralContainerStatuses", "atomic", &[], "", "", ""),
            f("hostIPs", "atomic", &[], "merge", "ip", ""),
            f("initContainerStatuses", "atomic", &[], "", "", ""),
            f("podIPs", "map", &["ip"], "merge", "ip", ""),
            f(
                "resourceClaimStatuses",
                "map",
                &["name"],
                "merge,retainKeys",
                "name",
                "",
            ),
        ],
    ),
    (
        "io.k8s.api.core.v1.ProjectedVolumeSource",
        &[f("sources", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.RBDPersistentVolumeSource",
        &[f("monitors", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.RBDVolumeSource",
        &[f("monitors", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.ReplicationControllerSpec",
        &[f("selector", "", &[], "", "", "atomic")],
    ),
    (
        "io.k8s.api.core.v1.ReplicationControllerStatus",
        &[f("conditions", "map", &["type"], "merge", "type", "")],
    ),
    (
        "io.k8s.api.core.v1.ResourceQuotaSpec",
        &[f("scopes", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.ResourceRequirements",
        &[f("claims", "map", &["name"], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.ResourceStatus",
        &[f("resources", "map", &["resourceID"], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.ScopeSelector",
        &[f("matchExpressions", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.ScopedResourceSelectorRequirement",
        &[f("values", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.SecretProjection",
        &[f("items", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.SecretVolumeSource",
        &[f("items", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.ServiceAccount",
        &[
            f("imagePullSecrets", "atomic", &[], "", "", ""),
            f("secrets", "map", &["name"], "merge", "name", ""),
        ],
    ),
    (
        "io.k8s.api.core.v1.ServiceSpec",
        &[
            f("clusterIPs", "atomic", &[], "", "", ""),
            f("externalIPs", "atomic", &[], "", "", ""),
            f("ipFamilies", "atomic", &[], "", "", ""),
            f("loadBalancerSourceRanges", "atomic", &[], "", "", ""),
            f("ports", "map", &["port", "protocol"], "merge", "port", ""),
            f("selector", "", &[], "", "", "atomic"),
        ],
    ),
    (
        "io.k8s.api.core.v1.ServiceStatus",
        &[f("conditions", "map", &["type"], "merge", "type", "")],
    ),
    (
        "io.k8s.api.core.v1.TopologySelectorLabelRequirement",
        &[f("values", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.TopologySelectorTerm",
        &[f("matchLabelExpressions", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.core.v1.TopologySpreadConstraint",
        &[f("matchLabelKeys", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.discovery.v1.Endpoint",
        &[f("addresses", "set", &[], "", "", "")],
    ),
    (
        "io.k8s.api.discovery.v1.EndpointHints",
        &[
            f("forNodes", "atomic", &[], "", "", ""),
            f("forZones", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.discovery.v1.EndpointSlice",
        &[
            f("endpoints", "atomic", &[], "", "", ""),
            f("ports", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.flowcontrol.v1.FlowSchemaSpec",
        &[f("rules", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.flowcontrol.v1.FlowSchemaStatus",
        &[f("conditions", "map", &["type"], "merge", "type", "")],
    ),
    (
        "io.k8s.api.flowcontrol.v1.NonResourcePolicyRule",
        &[
            f("nonResourceURLs", "set", &[], "", "", ""),
            f("verbs", "set", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.flowcontrol.v1.PolicyRulesWithSubjects",
        &[
            f("nonResourceRules", "atomic", &[], "", "", ""),
            f("resourceRules", "atomic", &[], "", "", ""),
            f("subjects", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.flowcontrol.v1.PriorityLevelConfigurationStatus",
        &[f("conditions", "map", &["type"], "merge", "type", "")],
    ),
    (
        "io.k8s.api.flowcontrol.v1.ResourcePolicyRule",
        &[
            f("apiGroups", "set", &[], "", "", ""),
            f("namespaces", "set", &[], "", "", ""),
            f("resources", "set", &[], "", "", ""),
            f("verbs", "set", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.networking.v1.HTTPIngressRuleValue",
        &[f("paths", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.networking.v1.IPBlock",
        &[f("except", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.networking.v1.IngressLoadBalancerIngress",
        &[f("ports", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.networking.v1.IngressLoadBalancerStatus",
        &[f("ingress", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.networking.v1.IngressSpec",
        &[
            f("rules", "atomic", &[], "", "", ""),
            f("tls", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.networking.v1.IngressTLS",
        &[f("hosts", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.networking.v1.NetworkPolicyEgressRule",
        &[
            f("ports", "atomic", &[], "", "", ""),
            f("to", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.networking.v1.NetworkPolicyIngressRule",
        &[
            f("from", "atomic", &[], "", "", ""),
            f("ports", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.networking.v1.NetworkPolicySpec",
        &[
            f("egress", "atomic", &[], "", "", ""),
            f("ingress", "atomic", &[], "", "", ""),
            f("policyTypes", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.networking.v1.ServiceCIDRSpec",
        &[f("cidrs", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.networking.v1.ServiceCIDRStatus",
        &[f("conditions", "map", &["type"], "merge", "type", "")],
    ),
    (
        "io.k8s.api.node.v1.Scheduling",
        &[
            f("nodeSelector", "", &[], "", "", "atomic"),
            f("tolerations", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.policy.v1.PodDisruptionBudgetSpec",
        &[f("selector", "", &[], "replace", "", "")],
    ),
    (
        "io.k8s.api.policy.v1.PodDisruptionBudgetStatus",
        &[f("conditions", "map", &["type"], "merge", "type", "")],
    ),
    (
        "io.k8s.api.rbac.v1.AggregationRule",
        &[f("clusterRoleSelectors", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.rbac.v1.ClusterRole",
        &[f("rules", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.rbac.v1.ClusterRoleBinding",
        &[f("subjects", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.rbac.v1.PolicyRule",
        &[
            f("apiGroups", "atomic", &[], "", "", ""),
            f("nonResourceURLs", "atomic", &[], "", "", ""),
            f("resourceNames", "atomic", &[], "", "", ""),
            f("resources", "atomic", &[], "", "", ""),
            f("verbs", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.rbac.v1.Role",
        &[f("rules", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.rbac.v1.RoleBinding",
        &[f("subjects", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.storage.v1.CSIDriverSpec",
        &[
            f("tokenRequests", "atomic", &[], "", "", ""),
            f("volumeLifecycleModes", "set", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.api.storage.v1.CSINodeDriver",
        &[f("topologyKeys", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.api.storage.v1.CSINodeSpec",
        &[f("drivers", "map", &["name"], "merge", "name", "")],
    ),
    (
        "io.k8s.api.storage.v1.StorageClass",
        &[
            f("allowedTopologies", "atomic", &[], "", "", ""),
            f("mountOptions", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.ConversionRequest",
        &[f("objects", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.ConversionResponse",
        &[f("convertedObjects", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionNames",
        &[
            f("categories", "atomic", &[], "", "", ""),
            f("shortNames", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionSpec",
        &[f("versions", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus",
        &[
            f("conditions", "map", &["type"], "", "", ""),
            f("storedVersions", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionVersion",
        &[
            f("additionalPrinterColumns", "atomic", &[], "", "", ""),
            f("selectableFields", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps",
        &[
            f("allOf", "atomic", &[], "", "", ""),
            f("anyOf", "atomic", &[], "", "", ""),
            f("enum", "atomic", &[], "", "", ""),
            f("oneOf", "atomic", &[], "", "", ""),
            f("required", "atomic", &[], "", "", ""),
            f("x-kubernetes-list-map-keys", "atomic", &[], "", "", ""),
            f(
                "x-kubernetes-validations",
                "map",
                &["rule"],
                "merge",
                "rule",
                "",
            ),
        ],
    ),
    (
        "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.WebhookConversion",
        &[f("conversionReviewVersions", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroup",
        &[
            f("serverAddressByClientCIDRs", "atomic", &[], "", "", ""),
            f("versions", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList",
        &[f("groups", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.APIResource",
        &[
            f("categories", "atomic", &[], "", "", ""),
            f("shortNames", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList",
        &[f("resources", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.APIVersions",
        &[
            f("serverAddressByClientCIDRs", "atomic", &[], "", "", ""),
            f("versions", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ApplyOptions",
        &[f("dryRun", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.CreateOptions",
        &[f("dryRun", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
        &[f("dryRun", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.FieldSelectorRequirement",
        &[f("values", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector",
        &[f("matchExpressions", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelectorRequirement",
        &[f("values", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
        &[
            f("finalizers", "set", &[], "merge", "", ""),
            f("managedFields", "atomic", &[], "", "", ""),
            f("ownerReferences", "map", &["uid"], "merge", "uid", ""),
        ],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.PatchOptions",
        &[f("dryRun", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.RootPaths",
        &[f("paths", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
        &[f("details", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.StatusDetails",
        &[f("causes", "atomic", &[], "", "", "")],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.Table",
        &[
            f("columnDefinitions", "atomic", &[], "", "", ""),
            f("rows", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.TableRow",
        &[
            f("cells", "atomic", &[], "", "", ""),
            f("conditions", "atomic", &[], "", "", ""),
        ],
    ),
    (
        "io.k8s.apimachinery.pkg.apis.meta.v1.UpdateOptions",
        &[f("dryRun", "atomic", &[], "", "", "")],
    ),
];

use serde_json::{json, Map, Value};

const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
/// Definitions that hold arbitrary JSON.
const FREE_FORM: &[&str] = &[
    "io.k8s.apimachinery.pkg.runtime.RawExtension",
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON",
];

/// The extensions upstream declares for `field` of `definition`, if any.
pub fn field(definition: &str, field: &str) -> Option<&'static Field> {
    let i = FIELDS
        .binary_search_by(|(d, _)| (*d).cmp(definition))
        .ok()?;
    FIELDS[i].1.iter().find(|f| f.name == field)
}

/// Adds the extensions to Swagger 2.0 `definitions` in place: per-field list, map and
/// patch semantics, atomic types, and the int-or-string, quantity and free-form types
/// as upstream's v2 document types them.
pub fn apply(definitions: &mut Map<String, Value>) {
    optional_metadata(definitions);
    for (def, fields) in FIELDS {
        let Some(props) = definitions
            .get_mut(*def)
            .and_then(|d| d.get_mut("properties"))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        for f in fields.iter() {
            let Some(Value::Object(p)) = props.get_mut(f.name) else {
                continue;
            };
            if !f.list_type.is_empty() {
                p.insert("x-kubernetes-list-type".into(), f.list_type.into());
            }
            if !f.map_keys.is_empty() {
                p.insert("x-kubernetes-list-map-keys".into(), json!(f.map_keys));
            }
            if !f.strategy.is_empty() {
                p.insert("x-kubernetes-patch-strategy".into(), f.strategy.into());
            }
            if !f.merge_key.is_empty() {
                p.insert("x-kubernetes-patch-merge-key".into(), f.merge_key.into());
            }
            if !f.map_type.is_empty() {
                p.insert("x-kubernetes-map-type".into(), f.map_type.into());
            }
        }
    }
    for def in ATOMIC_TYPES {
        if let Some(Value::Object(d)) = definitions.get_mut(*def) {
            d.insert("x-kubernetes-map-type".into(), "atomic".into());
        }
    }
    if let Some(Value::Object(d)) = definitions.get_mut(INT_OR_STRING) {
        d.insert("type".into(), "string".into());
        d.insert("format".into(), "int-or-string".into());
    }
    if let Some(Value::Object(d)) = definitions.get_mut(QUANTITY) {
        d.insert("type".into(), "string".into());
    }
    for def in FREE_FORM {
        if let Some(Value::Object(d)) = definitions.get_mut(*def) {
            d.insert("x-kubernetes-preserve-unknown-fields".into(), true.into());
        }
    }
}

/// `metadata` is never required upstream (`json:"metadata,omitempty"` on every kind
/// and list), though the Rust types hold it unconditionally: kubectl's schema
/// validation would otherwise refuse a TokenReview or review without one.
fn optional_metadata(definitions: &mut Map<String, Value>) {
    for def in definitions.values_mut() {
        let Some(required) = def.get_mut("required").and_then(Value::as_array_mut) else {
            continue;
        };
        required.retain(|r| r != "metadata");
        if required.is_empty() {
            if let Some(d) = def.as_object_mut() {
                d.remove("required");
            }
        }
    }
}

/// Rewrites the int-or-string and quantity definitions of an OpenAPI 3.0 document the
/// way upstream's v3 documents type them (alternatives, no single `type`).
pub fn apply_v3(schemas: &mut Map<String, Value>) {
    optional_metadata(schemas);
    if let Some(Value::Object(d)) = schemas.get_mut(INT_OR_STRING) {
        d.remove("type");
        d.insert(
            "oneOf".into(),
            json!([{"type": "integer"}, {"type": "string"}]),
        );
    }
    if let Some(Value::Object(d)) = schemas.get_mut(QUANTITY) {
        d.remove("type");
        d.insert(
            "oneOf".into(),
            json!([{"type": "string"}, {"type": "number"}]),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_for_lookup() {
        assert!(FIELDS.windows(2).all(|w| w[0].0 < w[1].0));
        let c = field("io.k8s.api.core.v1.PodSpec", "containers").expect("containers");
        assert_eq!(
            (c.strategy, c.merge_key, c.list_type),
            ("merge", "name", "map")
        );
        let p = field("io.k8s.api.core.v1.Container", "ports").expect("ports");
        assert_eq!(p.merge_key, "containerPort");
        assert_eq!(p.map_keys, &["containerPort", "protocol"]);
        let p = field("io.k8s.api.core.v1.ServiceSpec", "ports").expect("ports");
        assert_eq!(p.merge_key, "port");
        let t = field("io.k8s.api.core.v1.PodSpec", "tolerations").expect("tolerations");
        assert_eq!((t.list_type, t.strategy), ("atomic", ""));
        let fin = field(
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            "finalizers",
        )
        .expect("finalizers");
        assert_eq!(
            (fin.list_type, fin.strategy, fin.merge_key),
            ("set", "merge", "")
        );
        let v = field("io.k8s.api.core.v1.PodSpec", "volumes").expect("volumes");
        assert_eq!(v.strategy, "merge,retainKeys");
        assert!(field("io.k8s.api.core.v1.PodSpec", "nodeName").is_none());
    }

    #[test]
    fn rows_name_fields_the_schemas_have() {
        let mut generator = schemars::SchemaGenerator::default();
        for k in super::super::kinds::KINDS {
            (k.define)(&mut generator);
        }
        let defs = generator.definitions();
        let mut checked = 0;
        for (def, fields) in FIELDS {
            let Some(d) = defs.get(*def) else { continue };
            for f in fields.iter() {
                assert!(
                    d["properties"].get(f.name).is_some(),
                    "{def} has no field {}",
                    f.name
                );
                checked += 1;
            }
        }
        assert!(checked > 200, "{checked} rows checked");
        for def in ATOMIC_TYPES {
            if let Some(d) = defs.get(*def) {
                assert!(d.is_object(), "{def}");
            }
        }
    }
}
