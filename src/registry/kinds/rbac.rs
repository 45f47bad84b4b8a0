//! rbac.authorization.k8s.io/v1 kinds: roles, rolebindings (namespaced),
//! clusterroles, clusterrolebindings (cluster), and the bootstrap of upstream's default
//! policy (kube-apiserver's `rbac/bootstrap-roles` post-start hook).
//!
//! Invariants: upstream v1.33 defaults (pkg/apis/rbac/v1/defaults.go), validation
//! messages and field paths (pkg/apis/rbac/validation) and printer columns; a binding's
//! roleRef never changes after creation; bootstrap only creates what is missing, so an
//! operator's edits to a default object survive restarts.

use std::sync::Arc;

use k8s_openapi::api::rbac::v1 as api;
use serde_json::{json, Value};

use super::apps::{invalid_raw, validate_label_selector};
use super::pods::{arr_at, str_at};
use crate::apiserver::status::{not_supported, required, Cause};
use crate::authn::UserInfo;
use crate::registry::store::{Api, Ctx};
use crate::registry::typed::roundtrip;
use crate::registry::validation::{dns1123_subdomain, path_segment_name, NameRule};
use crate::registry::{age, meta, Column, Resource, Strategy, AGE_COLUMN, ALL_VERBS};

pub const GROUP: &str = "rbac.authorization.k8s.io";

/// The label every bootstrap policy object carries.
pub const BOOTSTRAP_LABEL: (&str, &str) = ("kubernetes.io/bootstrapping", "rbac-defaults");

/// The annotation that lets the server reconcile a bootstrap object.
pub const AUTOUPDATE_ANNOTATION: (&str, &str) =
    ("rbac.authorization.kubernetes.io/autoupdate", "true");

pub fn resources() -> Vec<Resource> {
    let resource = |kind: &'static str,
                    resource: &'static str,
                    singular: &'static str,
                    namespaced: bool,
                    strategy: Arc<dyn Strategy>| Resource {
        group: GROUP,
        versions: &["v1"],
        kind,
        resource,
        singular,
        namespaced,
        short_names: &[],
        categories: &[],
        storage_prefix: resource,
        subresources: &[],
        verbs: ALL_VERBS,
        name_rule: NameRule::PathSegment,
        strategy,
    };
    vec![
        resource(
            "ClusterRoleBinding",
            "clusterrolebindings",
            "clusterrolebinding",
            false,
            Arc::new(Bindings { cluster: true }),
        ),
        resource(
            "ClusterRole",
            "clusterroles",
            "clusterrole",
            false,
            Arc::new(Roles { cluster: true }),
        ),
        resource(
            "RoleBinding",
            "rolebindings",
            "rolebinding",
            true,
            Arc::new(Bindings { cluster: false }),
        ),
        resource(
            "Role",
            "roles",
            "role",
            true,
            Arc::new(Roles { cluster: false }),
        ),
    ]
}

// ---------------------------------------------------------------------------------
// Validation shared by the four kinds.
// ---------------------------------------------------------------------------------

/// Go's `%#v` of a `[]string` (how upstream prints list values in errors).
fn go_string_slice(v: &[Value]) -> String {
    let parts: Vec<String> = v
        .iter()
        .map(|s| format!("{:?}", s.as_str().unwrap_or_default()))
        .collect();
    format!("[]string{{{}}}", parts.join(", "))
}

/// ValidatePolicyRule.
pub fn validate_policy_rule(rule: &Value, namespaced: bool, path: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    if arr_at(rule, "/verbs").is_empty() {
        out.push(required(
            &format!("{path}.verbs"),
            "verbs must contain at least one value",
        ));
    }
    let urls = arr_at(rule, "/nonResourceURLs");
    if !urls.is_empty() {
        let field = format!("{path}.nonResourceURLs");
        if namespaced {
            out.push(invalid_raw(
                &field,
                &go_string_slice(urls),
                "namespaced rules cannot apply to non-resource URLs",
            ));
        }
        if !arr_at(rule, "/apiGroups").is_empty()
            || !arr_at(rule, "/resources").is_empty()
            || !arr_at(rule, "/resourceNames").is_empty()
        {
            out.push(invalid_raw(
                &field,
                &go_string_slice(urls),
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        }
        return out;
    }
    if arr_at(rule, "/apiGroups").is_empty() {
        out.push(required(
            &format!("{path}.apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if arr_at(rule, "/resources").is_empty() {
        out.push(required(
            &format!("{path}.resources"),
            "resource rules must supply at least one resource",
        ));
    }
    out
}

/// ValidateRoleBindingSubject.
pub fn validate_subject(subject: &Value, namespaced: bool, path: &str) -> Vec<Cause> {
    let mut out = Vec::new();
    let name = str_at(subject, "/name");
    let api_group = str_at(subject, "/apiGroup");
    if name.is_empty() {
        out.push(required(&format!("{path}.name"), ""));
    }
    match str_at(subject, "/kind") {
        "ServiceAccount" => {
            if !name.is_empty() {
                for e in dns1123_subdomain(name) {
                    out.push(crate::apiserver::status::invalid_value(
                        &format!("{path}.name"),
                        &json!(name),
                        &e,
                    ));
                }
            }
            if !api_group.is_empty() {
                out.push(not_supported(
                    &format!("{path}.apiGroup"),
                    &json!(api_group),
                    &[""],
                ));
            }
            if !namespaced && str_at(subject, "/namespace").is_empty() {
                out.push(required(&format!("{path}.namespace"), ""));
            }
        }
        "User" | "Group" => {
            if api_group != GROUP {
                out.push(not_supported(
                    &format!("{path}.apiGroup"),
                    &json!(api_group),
                    &[GROUP],
                ));
            }
        }
        other => out.push(not_supported(
            &format!("{path}.kind"),
            &json!(other),
            &["ServiceAccount", "User", "Group"],
        )),
    }
    out
}

/// Go's `%#v` of an internal rbac.RoleRef.
fn role_ref_go(obj: &Value) -> String {
    format!(
        "rbac.RoleRef{{APIGroup:{:?}, Kind:{:?}, Name:{:?}}}",
        str_at(obj, "/roleRef/apiGroup"),
        str_at(obj, "/roleRef/kind"),
        str_at(obj, "/roleRef/name"),
    )
}

/// rbac.SubjectsStrings: users, groups and service accounts ("ns:name") of a binding.
fn subjects_strings(obj: &Value) -> (String, String, String) {
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for s in arr_at(obj, "/subjects") {
        let name = str_at(s, "/name").to_owned();
        match str_at(s, "/kind") {
            "ServiceAccount" => {
                let ns = str_at(s, "/namespace");
                if ns.is_empty() {
                    sas.push(name);
                } else {
                    sas.push(format!("{ns}:{name}"));
                }
            }
            "User" => users.push(name),
            "Group" => groups.push(name),
            _ => {}
        }
    }
    (users.join(", "), groups.join(", "), sas.join(", "))
}

// ---------------------------------------------------------------------------------
// Roles and ClusterRoles.
// ---------------------------------------------------------------------------------

struct Roles {
    cluster: bool,
}

impl Strategy for Roles {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        if self.cluster {
            roundtrip::<api::ClusterRole>(obj)
        } else {
            roundtrip::<api::Role>(obj)
        }
    }

    /// ValidateRole / ValidateClusterRole.
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        for (i, rule) in arr_at(obj, "/rules").iter().enumerate() {
            out.extend(validate_policy_rule(
                rule,
                !self.cluster,
                &format!("rules[{i}]"),
            ));
        }
        if self.cluster {
            if let Some(agg) = obj.get("aggregationRule").filter(|a| !a.is_null()) {
                let selectors = arr_at(agg, "/clusterRoleSelectors");
                if selectors.is_empty() {
                    out.push(required(
                        "aggregationRule.clusterRoleSelectors",
                        "at least one clusterRoleSelector required if aggregationRule is non-nil",
                    ));
                }
                for (i, sel) in selectors.iter().enumerate() {
                    out.extend(validate_label_selector(
                        sel,
                        &format!("aggregationRule.clusterRoleSelectors[{i}]"),
                    ));
                }
            }
        }
        out
    }

    fn columns(&self) -> Vec<Column> {
        vec![Column {
            name: "Created At",
            kind: "date",
            ..AGE_COLUMN
        }]
    }

    /// The creation time in RFC 3339, UTC (printRole / printClusterRole).
    fn cells(&self, obj: &Value) -> Vec<Value> {
        vec![json!(meta::str_field(obj, "creationTimestamp"))]
    }
}

// ---------------------------------------------------------------------------------
// RoleBindings and ClusterRoleBindings.
// ---------------------------------------------------------------------------------

struct Bindings {
    cluster: bool,
}

impl Strategy for Bindings {
    fn decode(&self, obj: Value) -> Result<(Value, Vec<String>), String> {
        if self.cluster {
            roundtrip::<api::ClusterRoleBinding>(obj)
        } else {
            roundtrip::<api::RoleBinding>(obj)
        }
    }

    /// SetDefaults_RoleBinding / SetDefaults_ClusterRoleBinding / SetDefaults_Subject.
    fn default(&self, obj: &mut Value) {
        if let Some(r) = obj.get_mut("roleRef").and_then(Value::as_object_mut) {
            if r.get("apiGroup")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
            {
                r.insert("apiGroup".into(), json!(GROUP));
            }
        }
        if let Some(subjects) = obj.get_mut("subjects").and_then(Value::as_array_mut) {
            for s in subjects.iter_mut().filter_map(Value::as_object_mut) {
                let empty = s
                    .get("apiGroup")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty();
                let kind = s.get("kind").and_then(Value::as_str).unwrap_or("");
                if empty && (kind == "User" || kind == "Group") {
                    s.insert("apiGroup".into(), json!(GROUP));
                }
            }
        }
    }

    /// ValidateRoleBinding / ValidateClusterRoleBinding.
    fn validate(&self, obj: &Value) -> Vec<Cause> {
        let mut out = Vec::new();
        let api_group = str_at(obj, "/roleRef/apiGroup");
        if api_group != GROUP {
            out.push(not_supported(
                "roleRef.apiGroup",
                &json!(api_group),
                &[GROUP],
            ));
        }
        let kind = str_at(obj, "/roleRef/kind");
        if self.cluster {
            if kind != "ClusterRole" {
                out.push(not_supported(
                    "roleRef.kind",
                    &json!(kind),
                    &["ClusterRole"],
                ));
            }
        } else if kind != "Role" && kind != "ClusterRole" {
            out.push(not_supported(
                "roleRef.kind",
                &json!(kind),
                &["Role", "ClusterRole"],
            ));
        }
        let name = str_at(obj, "/roleRef/name");
        if name.is_empty() {
            out.push(required("roleRef.name", ""));
        } else {
            for e in path_segment_name(name) {
                out.push(crate::apiserver::status::invalid_value(
                    "roleRef.name",
                    &json!(name),
                    &e,
                ));
            }
        }
        for (i, s) in arr_at(obj, "/subjects").iter().enumerate() {
            out.extend(validate_subject(
                s,
                !self.cluster,
                &format!("subjects[{i}]"),
            ));
        }
        out
    }

    /// ValidateRoleBindingUpdate: the roleRef is immutable.
    fn validate_update(&self, new: &Value, old: &Value) -> Vec<Cause> {
        let mut out = self.validate(new);
        if new.get("roleRef") != old.get("roleRef") {
            out.push(invalid_raw(
                "roleRef",
                &role_ref_go(new),
                "cannot change roleRef",
            ));
        }
        out
    }

    fn columns(&self) -> Vec<Column> {
        let role = if self.cluster {
            "RoleRef can only reference a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error. This field is immutable."
        } else {
            "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the RoleRef cannot be resolved, the Authorizer must return an error. This field is immutable."
        };
        let (users, groups, sas) = if self.cluster {
            (
                "Users in the clusterRoleBinding",
                "Groups in the clusterRoleBinding",
                "ServiceAccounts in the clusterRoleBinding",
            )
        } else {
            (
                "Users in the roleBinding",
                "Groups in the roleBinding",
                "ServiceAccounts in the roleBinding",
            )
        };
        vec![
            Column::new("Role", "string", role),
            AGE_COLUMN,
            Column::new("Users", "string", users).wide(),
            Column::new("Groups", "string", groups).wide(),
            Column::new("ServiceAccounts", "string", sas).wide(),
        ]
    }

    fn cells(&self, obj: &Value) -> Vec<Value> {
        let (users, groups, sas) = subjects_strings(obj);
        vec![
            json!(format!(
                "{}/{}",
                str_at(obj, "/roleRef/kind"),
                str_at(obj, "/roleRef/name")
            )),
            json!(age(obj)),
            json!(users),
            json!(groups),
            json!(sas),
        ]
    }
}

// ---------------------------------------------------------------------------------
// Bootstrap policy (plugin/pkg/auth/authorizer/rbac/bootstrappolicy).
// ---------------------------------------------------------------------------------

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];

fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Value {
    json!({"verbs": verbs, "apiGroups": groups, "resources": resources})
}

fn url_rule(verbs: &[&str], urls: &[&str]) -> Value {
    json!({"verbs": verbs, "nonResourceURLs": urls})
}

/// The rules of `system:aggregate-to-view`.
fn view_rules() -> Vec<Value> {
    vec![
        rule(
            READ,
            &[""],
            &[
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
            ],
        ),
        rule(
            READ,
            &[""],
            &[
                "bindings",
                "events",
                "limitranges",
                "namespaces/status",
                "pods/log",
                "pods/status",
                "replicationcontrollers/status",
                "resourcequotas",
                "resourcequotas/status",
            ],
        ),
        rule(READ, &[""], &["namespaces"]),
        rule(READ, &["discovery.k8s.io"], &["endpointslices"]),
        rule(
            READ,
            &["apps"],
            &[
                "controllerrevisions",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
            ],
        ),
        rule(
            READ,
            &["autoscaling"],
            &[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ],
        ),
        rule(
            READ,
            &["batch"],
            &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
        ),
        rule(
            READ,
            &["policy"],
            &["poddisruptionbudgets", "poddisruptionbudgets/status"],
        ),
        rule(
            READ,
            &["networking.k8s.io"],
            &["ingresses", "ingresses/status", "networkpolicies"],
        ),
    ]
}

/// The rules of `system:aggregate-to-edit`.
fn edit_rules() -> Vec<Value> {
    vec![
        rule(&["impersonate"], &[""], &["serviceaccounts"]),
        rule(
            WRITE,
            &[""],
            &[
                "pods",
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
            ],
        ),
        rule(&["create"], &[""], &["pods/eviction"]),
        rule(
            WRITE,
            &[""],
            &[
                "configmaps",
                "endpoints",
                "events",
                "persistentvolumeclaims",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "secrets",
                "serviceaccounts",
                "services",
                "services/proxy",
            ],
        ),
        rule(&["create"], &[""], &["serviceaccounts/token"]),
        rule(
            WRITE,
            &["apps"],
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale",
            ],
        ),
        rule(WRITE, &["autoscaling"], &["horizontalpodautoscalers"]),
        rule(WRITE, &["batch"], &["cronjobs", "jobs"]),
        rule(WRITE, &["policy"], &["poddisruptionbudgets"]),
        rule(
            WRITE,
            &["networking.k8s.io"],
            &["ingresses", "networkpolicies"],
        ),
        rule(
            &[
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ],
            &["coordination.k8s.io"],
            &["leases"],
        ),
        rule(
            READ,
            &[""],
            &[
                "secrets",
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
                "services/proxy",
            ],
        ),
    ]
}

/// The rules of `system:aggregate-to-admin`.
fn admin_rules() -> Vec<Value> {
    vec![
        rule(
            &["create"],
            &["authorization.k8s.io"],
            &["localsubjectaccessreviews"],
        ),
        rule(
            &[
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ],
            &[GROUP],
            &["rolebindings", "roles"],
        ),
    ]
}

fn labelled(extra: &[(&str, &str)]) -> Value {
    let mut labels = serde_json::Map::new();
    labels.insert(BOOTSTRAP_LABEL.0.into(), json!(BOOTSTRAP_LABEL.1));
    for (k, v) in extra {
        labels.insert((*k).into(), json!(v));
    }
    Value::Object(labels)
}

fn cluster_role(
    name: &str,
    labels: &[(&str, &str)],
    rules: Vec<Value>,
    aggregate: Option<&str>,
) -> Value {
    let mut role = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {
            "name": name,
            "labels": labelled(labels),
            "annotations": {AUTOUPDATE_ANNOTATION.0: AUTOUPDATE_ANNOTATION.1},
        },
        "rules": rules,
    });
    if let Some(label) = aggregate {
        role["aggregationRule"] =
            json!({"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]});
    }
    role
}

fn cluster_role_binding(name: &str, role: &str, groups: &[&str]) -> Value {
    let subjects: Vec<Value> = groups
        .iter()
        .map(|g| json!({"kind": "Group", "apiGroup": GROUP, "name": g}))
        .collect();
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {
            "name": name,
            "labels": labelled(&[]),
            "annotations": {AUTOUPDATE_ANNOTATION.0: AUTOUPDATE_ANNOTATION.1},
        },
        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": role},
        "subjects": subjects,
    })
}

const TO_ADMIN: &str = "rbac.authorization.k8s.io/aggregate-to-admin";
const TO_EDIT: &str = "rbac.authorization.k8s.io/aggregate-to-edit";
const TO_VIEW: &str = "rbac.authorization.k8s.io/aggregate-to-view";

/// The default cluster roles. admin, edit and view carry upstream's aggregation rules
/// and, since no aggregation controller runs, the rules aggregation would give them.
pub fn bootstrap_cluster_roles() -> Vec<Value> {
    let view = view_rules();
    let edit: Vec<Value> = edit_rules().into_iter().chain(view.clone()).collect();
    let admin: Vec<Value> = admin_rules().into_iter().chain(edit.clone()).collect();
    vec![
        cluster_role(
            "cluster-admin",
            &[],
            vec![rule(&["*"], &["*"], &["*"]), url_rule(&["*"], &["*"])],
            None,
        ),
        cluster_role(
            "system:discovery",
            &[],
            vec![url_rule(
                &["get"],
                &[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
            )],
            None,
        ),
        cluster_role(
            "system:basic-user",
            &[],
            vec![
                rule(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
                rule(
                    &["create"],
                    &["authentication.k8s.io"],
                    &["selfsubjectreviews"],
                ),
            ],
            None,
        ),
        cluster_role(
            "system:public-info-viewer",
            &[],
            vec![url_rule(
                &["get"],
                &["/healthz", "/livez", "/readyz", "/version", "/version/"],
            )],
            None,
        ),
        cluster_role("admin", &[], admin, Some(TO_ADMIN)),
        cluster_role("edit", &[(TO_ADMIN, "true")], edit, Some(TO_EDIT)),
        cluster_role("view", &[(TO_EDIT, "true")], view.clone(), Some(TO_VIEW)),
        cluster_role(
            "system:aggregate-to-admin",
            &[(TO_ADMIN, "true")],
            admin_rules(),
            None,
        ),
        cluster_role(
            "system:aggregate-to-edit",
            &[(TO_EDIT, "true")],
            edit_rules(),
            None,
        ),
        cluster_role("system:aggregate-to-view", &[(TO_VIEW, "true")], view, None),
    ]
}

/// The default cluster role bindings.
pub fn bootstrap_cluster_role_bindings() -> Vec<Value> {
    vec![
        cluster_role_binding("cluster-admin", "cluster-admin", &["system:masters"]),
        cluster_role_binding(
            "system:discovery",
            "system:discovery",
            &["system:authenticated"],
        ),
        cluster_role_binding(
            "system:basic-user",
            "system:basic-user",
            &["system:authenticated"],
        ),
        cluster_role_binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            &["system:authenticated", "system:unauthenticated"],
        ),
    ]
}

/// Creates the bootstrap RBAC policy objects that do not exist yet, as
/// kube-apiserver's post-start hook does. Idempotent; failures are logged and left to
/// the next call.
pub async fn bootstrap(api: &Api) {
    let ctx = Ctx::new(UserInfo {
        name: "system:apiserver".into(),
        groups: vec!["system:masters".into()],
        ..Default::default()
    });
    for (resource, objects) in [
        ("clusterroles", bootstrap_cluster_roles()),
        ("clusterrolebindings", bootstrap_cluster_role_bindings()),
    ] {
        let Some(res) = api.registry.lookup(GROUP, "v1", resource) else {
            continue;
        };
        for obj in objects {
            let name = meta::name(&obj).to_owned();
            match api.get(&res, "v1", None, &name, "").await {
                Ok(_) => continue,
                Err(e) if e.code == 404 => {}
                Err(e) => {
                    tracing::debug!(resource, name = %name, error = %e, "could not read a bootstrap RBAC object");
                    continue;
                }
            }
            match api.create(&res, "v1", &ctx, None, obj).await {
                Ok(_) => tracing::info!(resource, name = %name, "created bootstrap RBAC object"),
                Err(e) if e.code == 409 => {}
                Err(e) => {
                    tracing::warn!(resource, name = %name, error = %e, "could not create a bootstrap RBAC object")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::registry::kinds::cause_fields as fields;

    #[test]
    fn rules_need_verbs_and_resources() {
        let role = Roles { cluster: false };
        let r = json!({"metadata": {"name": "r"}, "rules": [{"apiGroups": [""], "resources": ["pods"]}]});
        let c = role.validate(&r);
        assert_eq!(fields(&c), ["rules[0].verbs"]);
        assert_eq!(
            c[0].message,
            "Required value: verbs must contain at least one value"
        );
        let urls = json!({"rules": [{"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]});
        let c = role.validate(&urls);
        assert_eq!(c[0].field, "rules[0].nonResourceURLs");
        assert_eq!(
            c[0].message,
            "Invalid value: []string{\"/healthz\"}: namespaced rules cannot apply to non-resource URLs"
        );
        assert!(Roles { cluster: true }.validate(&urls).is_empty());
        let agg = json!({"aggregationRule": {"clusterRoleSelectors": []}});
        assert_eq!(
            fields(&Roles { cluster: true }.validate(&agg)),
            ["aggregationRule.clusterRoleSelectors"]
        );
    }

    #[test]
    fn bindings_default_validate_and_keep_their_role() {
        let b = Bindings { cluster: true };
        let mut crb = json!({"metadata": {"name": "x"}, "roleRef": {"kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "jane"}, {"kind": "ServiceAccount", "name": "default"}]});
        b.default(&mut crb);
        assert_eq!(crb["roleRef"]["apiGroup"], GROUP);
        assert_eq!(crb["subjects"][0]["apiGroup"], GROUP);
        assert!(crb["subjects"][1].get("apiGroup").is_none());
        assert_eq!(fields(&b.validate(&crb)), ["subjects[1].namespace"]);
        let mut role_kind = crb.clone();
        role_kind["roleRef"]["kind"] = json!("Role");
        let c = b.validate(&role_kind);
        assert_eq!(
            c[0].message,
            "Unsupported value: \"Role\": supported values: \"ClusterRole\""
        );
        let mut changed = crb.clone();
        changed["roleRef"]["name"] = json!("edit");
        let c = b.validate_update(&changed, &crb);
        let last = c.last().expect("a cause");
        assert_eq!(last.field, "roleRef");
        assert_eq!(last.message, "Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"ClusterRole\", Name:\"edit\"}: cannot change roleRef");
    }

    #[test]
    fn binding_cells_and_bootstrap_objects() {
        let b = Bindings { cluster: false };
        let rb = json!({"metadata": {"name": "x"}, "roleRef": {"kind": "Role", "name": "r"},
            "subjects": [{"kind": "User", "name": "a"}, {"kind": "Group", "name": "g"},
                         {"kind": "ServiceAccount", "name": "s", "namespace": "n"}]});
        let cells = b.cells(&rb);
        assert_eq!(cells.len(), b.columns().len());
        assert_eq!(cells[0], "Role/r");
        assert_eq!(cells[2], "a");
        assert_eq!(cells[3], "g");
        assert_eq!(cells[4], "n:s");
        let roles = Roles { cluster: true };
        for r in bootstrap_cluster_roles() {
            assert!(roles.validate(&r).is_empty(), "{}", meta::name(&r));
            roundtrip::<api::ClusterRole>(r).expect("typed");
        }
        let crb = Bindings { cluster: true };
        for r in bootstrap_cluster_role_bindings() {
            assert!(crb.validate(&r).is_empty(), "{}", meta::name(&r));
        }
    }
}
