//! Transcoder tests: JSON → protobuf → JSON identity for a synthetic object of every
//! message in the table and for hand-written objects of the common kinds; JSON names
//! checked against k8s-openapi's types; Go-style encodings (empty strings written,
//! zero times) and malformed input.

use base64::Engine as _;
use serde_json::{json, Value};

use super::schema::{schema, Label, Schema, Special, Ty};
use super::wire::{put_bytes, put_key, put_nested, put_varint, VARINT};
use super::*;

/// An object with every field of message `idx` set to a non-zero value of its type.
fn sample(s: &Schema, idx: u16, depth: u32) -> Value {
    let m = s.message(idx);
    match m.special {
        Special::Time => return json!("2024-01-02T03:04:05Z"),
        Special::MicroTime => return json!("2024-01-02T03:04:05.123456Z"),
        Special::Duration => return json!("1m30.5s"),
        Special::Quantity => return json!("250m"),
        Special::IntOrString => {
            return if depth % 2 == 0 {
                json!(8080)
            } else {
                json!("http")
            }
        }
        Special::RawJson => return json!({"a": [1, "x", null, {"b": true}]}),
        Special::StringList => return json!(["a", "b"]),
        Special::SchemaOrBool => return json!(true),
        Special::SchemaOrStringArray => return json!(["x", "y"]),
        Special::SchemaOrArray => return json!({"type": "string"}),
        Special::None => {}
    }
    let mut out = serde_json::Map::new();
    fill(s, idx, depth, &mut out);
    Value::Object(out)
}

fn fill(s: &Schema, idx: u16, depth: u32, out: &mut serde_json::Map<String, Value>) {
    for f in &s.message(idx).fields {
        let one = |n: u32| -> Option<Value> {
            Some(match f.ty {
                Ty::String => json!(format!("{}-{n}", f.json)),
                Ty::Bytes => json!(if n == 0 { "aGVsbG8=" } else { "AAEC/w==" }),
                Ty::Bool => json!(n == 0),
                Ty::Int32 => json!(7 - 9 * i64::from(n)),
                Ty::Int64 => json!(-9_000_000_000i64 + i64::from(n)),
                Ty::Double => json!(1.5 + f64::from(n)),
                Ty::Message(i) if depth < 5 => sample(s, i, depth + 1 + n),
                Ty::Message(_) => return None,
            })
        };
        match f.label {
            Label::Inline => {
                if let Ty::Message(i) = f.ty {
                    fill(s, i, depth + 1, out);
                }
            }
            Label::One => {
                if let Some(v) = one(0) {
                    out.insert(f.json.into(), v);
                }
            }
            Label::Repeated => {
                if let (Some(a), Some(b)) = (one(0), one(1)) {
                    out.insert(f.json.into(), json!([a, b]));
                }
            }
            Label::Map => {
                if let (Some(a), Some(b)) = (one(0), one(1)) {
                    out.insert(f.json.into(), json!({"k1": a, "k.2/x": b}));
                }
            }
        }
    }
}

#[test]
fn the_table_loads_and_names_the_locked_k8s_openapi() {
    let s = schema().expect("schema");
    assert!(s.messages.len() > 1000, "{}", s.messages.len());
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"))
        .expect("Cargo.lock");
    let mut lines = lock.lines();
    let mut locked = None;
    while let Some(l) = lines.next() {
        if l == "name = \"k8s-openapi\"" {
            locked = lines.next().map(|v| {
                v.trim_start_matches("version = ")
                    .trim_matches('"')
                    .to_owned()
            });
        }
    }
    let locked = locked.expect("k8s-openapi in Cargo.lock");
    assert!(
        s.sources.contains(&format!("k8s-openapi {locked}").as_str()),
        "schema.txt was generated from {:?}; run tools/gen-proto-schema after upgrading k8s-openapi to {locked}",
        s.sources
    );
    for (av, kind) in [
        ("v1", "Pod"),
        ("v1", "ConfigMapList"),
        ("apps/v1", "Deployment"),
        ("rbac.authorization.k8s.io/v1", "ClusterRole"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ("authentication.k8s.io/v1", "TokenRequest"),
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview"),
        ("flowcontrol.apiserver.k8s.io/v1", "FlowSchema"),
        ("apiregistration.k8s.io/v1", "APIService"),
        ("apps/v1", "DeleteOptions"),
        ("v1", "Status"),
    ] {
        assert!(supports(av, kind), "{av} {kind}");
    }
    // The Go field list covers the common structs and names real fields.
    for path in [
        "api/core/v1/Container",
        "api/core/v1/PodSpec",
        "api/apps/v1/DeploymentSpec",
        "apimachinery/pkg/apis/meta/v1/ObjectMeta",
    ] {
        let m = s.message(s.by_path(path).expect(path));
        assert!(m.go_known, "{path} is not in zero_omitted.txt");
        assert!(m.fields.iter().any(|f| f.zero_omitted), "{path}");
    }
    let covered = s.messages.iter().filter(|m| m.go_known).count();
    assert!(covered > 900, "only {covered} messages have Go field data");
    for (av, kind) in [
        ("example.com/v1", "Widget"),
        ("apps.example.com/v1", "Deployment"),
        ("meta.k8s.io/v1", "Table"),
        ("v1", "Time"),
    ] {
        assert!(!supports(av, kind), "{av} {kind}");
    }
}

#[test]
fn every_message_round_trips_a_full_sample() {
    let s = schema().expect("schema");
    let mut checked = 0;
    for (i, m) in s.messages.iter().enumerate() {
        let v = sample(s, i as u16, 0);
        let bytes =
            encode_message(m.path, &v).unwrap_or_else(|e| panic!("{}: encode: {e}", m.path));
        let back =
            decode_message(m.path, &bytes).unwrap_or_else(|e| panic!("{}: decode: {e}", m.path));
        assert_eq!(back, v, "{} does not round-trip", m.path);
        checked += 1;
    }
    assert_eq!(checked, s.messages.len());
}

/// The JSON names of the table are k8s-openapi's: a full sample of each kind passes
/// its k8s-openapi type without unknown fields.
#[test]
fn json_names_match_k8s_openapi() {
    use crate::registry::typed::roundtrip;
    use k8s_openapi::api;
    let s = schema().expect("schema");
    let mut problems = Vec::new();
    let mut check =
        |unknown: Result<(Value, Vec<String>), String>, av: &str, kind: &str| match unknown {
            Err(e) => problems.push(format!("{av} {kind}: {e}")),
            Ok((_, unknown)) => {
                // Fields newer (1.34, 1.35) than the k8s-openapi module we build with (v1_33).
                let newer = [
                    "allocatedResources",
                    "resources",
                    "declaredFeatures",
                    "fileKeyRef",
                    "restartPolicyRules",
                    "hostnameOverride",
                    "workloadRef",
                    "extendedResourceClaimStatus",
                    "observedGeneration",
                ];
                for p in unknown {
                    let last = p
                        .rsplit('.')
                        .next()
                        .unwrap_or("")
                        .split('[')
                        .next()
                        .unwrap_or("");
                    if !newer.contains(&last) {
                        problems.push(format!("{av} {kind}: {p}"));
                    }
                }
            }
        };
    macro_rules! check {
        ($t:ty, $av:expr, $kind:expr) => {{
            let idx = s
                .kind($av, $kind)
                .unwrap_or_else(|| panic!("{} {}", $av, $kind));
            check(roundtrip::<$t>(sample(s, idx, 0)), $av, $kind);
        }};
    }
    check!(api::core::v1::Pod, "v1", "Pod");
    check!(api::core::v1::Service, "v1", "Service");
    check!(api::core::v1::Secret, "v1", "Secret");
    check!(api::core::v1::ConfigMap, "v1", "ConfigMap");
    check!(api::core::v1::Node, "v1", "Node");
    check!(api::core::v1::PersistentVolume, "v1", "PersistentVolume");
    check!(
        api::core::v1::PersistentVolumeClaim,
        "v1",
        "PersistentVolumeClaim"
    );
    check!(api::core::v1::Event, "v1", "Event");
    check!(api::core::v1::Endpoints, "v1", "Endpoints");
    check!(api::core::v1::ServiceAccount, "v1", "ServiceAccount");
    check!(api::core::v1::Namespace, "v1", "Namespace");
    check!(api::core::v1::LimitRange, "v1", "LimitRange");
    check!(api::core::v1::ResourceQuota, "v1", "ResourceQuota");
    check!(api::apps::v1::Deployment, "apps/v1", "Deployment");
    check!(api::apps::v1::StatefulSet, "apps/v1", "StatefulSet");
    check!(api::apps::v1::DaemonSet, "apps/v1", "DaemonSet");
    check!(
        api::apps::v1::ControllerRevision,
        "apps/v1",
        "ControllerRevision"
    );
    check!(api::batch::v1::CronJob, "batch/v1", "CronJob");
    check!(
        api::autoscaling::v2::HorizontalPodAutoscaler,
        "autoscaling/v2",
        "HorizontalPodAutoscaler"
    );
    check!(api::autoscaling::v1::Scale, "autoscaling/v1", "Scale");
    check!(
        api::networking::v1::Ingress,
        "networking.k8s.io/v1",
        "Ingress"
    );
    check!(
        api::networking::v1::NetworkPolicy,
        "networking.k8s.io/v1",
        "NetworkPolicy"
    );
    check!(
        api::rbac::v1::ClusterRole,
        "rbac.authorization.k8s.io/v1",
        "ClusterRole"
    );
    check!(
        api::rbac::v1::RoleBinding,
        "rbac.authorization.k8s.io/v1",
        "RoleBinding"
    );
    check!(
        api::policy::v1::PodDisruptionBudget,
        "policy/v1",
        "PodDisruptionBudget"
    );
    check!(api::policy::v1::Eviction, "policy/v1", "Eviction");
    check!(
        api::coordination::v1::Lease,
        "coordination.k8s.io/v1",
        "Lease"
    );
    check!(api::events::v1::Event, "events.k8s.io/v1", "Event");
    check!(
        api::discovery::v1::EndpointSlice,
        "discovery.k8s.io/v1",
        "EndpointSlice"
    );
    check!(
        api::storage::v1::StorageClass,
        "storage.k8s.io/v1",
        "StorageClass"
    );
    check!(
        api::certificates::v1::CertificateSigningRequest,
        "certificates.k8s.io/v1",
        "CertificateSigningRequest"
    );
    check!(
        api::authentication::v1::TokenRequest,
        "authentication.k8s.io/v1",
        "TokenRequest"
    );
    check!(
        api::authentication::v1::TokenReview,
        "authentication.k8s.io/v1",
        "TokenReview"
    );
    check!(
        api::authorization::v1::SubjectAccessReview,
        "authorization.k8s.io/v1",
        "SubjectAccessReview"
    );
    check!(
        api::authorization::v1::SelfSubjectAccessReview,
        "authorization.k8s.io/v1",
        "SelfSubjectAccessReview"
    );
    check!(
        api::admissionregistration::v1::ValidatingWebhookConfiguration,
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration"
    );
    check!(
        api::admissionregistration::v1::ValidatingAdmissionPolicy,
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicy"
    );
    check!(
        api::flowcontrol::v1::FlowSchema,
        "flowcontrol.apiserver.k8s.io/v1",
        "FlowSchema"
    );
    check!(
        api::scheduling::v1::PriorityClass,
        "scheduling.k8s.io/v1",
        "PriorityClass"
    );
    check!(
        api::node::v1::RuntimeClass,
        "node.k8s.io/v1",
        "RuntimeClass"
    );
    check!(k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition, "apiextensions.k8s.io/v1", "CustomResourceDefinition");
    check!(
        k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService,
        "apiregistration.k8s.io/v1",
        "APIService"
    );
    assert!(
        problems.is_empty(),
        "fields unknown to k8s-openapi:\n{}",
        problems.join("\n")
    );
}

/// Representative objects as clients and the server write them.
fn representative() -> Vec<Value> {
    vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo", "uid": "0b3c", "resourceVersion": "12",
            "creationTimestamp": "2024-05-06T07:08:09Z", "labels": {"kubernetes.io/metadata.name": "demo"}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": "demo"},
            "data": {"a": "1", "empty": "", "multi": "line\nline"}, "binaryData": {"bin": "AAEC/w=="}, "immutable": false}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "demo"}, "type": "Opaque",
            "data": {"p": "cQ==", "zero": "", "bin": "/+7dzLuqmYh3ZlVEMyIRAA=="}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "demo", "generation": 3,
                "labels": {"app": "web"}, "annotations": {"deployment.kubernetes.io/revision": "2"},
                "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "apps/v1", "time": "2024-05-06T07:08:09Z",
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}],
                "ownerReferences": [{"apiVersion": "v1", "kind": "Foo", "name": "o", "uid": "u", "controller": true, "blockOwnerDeletion": false}]},
            "spec": {"replicas": 0, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                    "containers": [{"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m"}},
                        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"}, "periodSeconds": 10, "failureThreshold": 3},
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "app", "key": "a", "optional": true}}}],
                        "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": true}],
                        "securityContext": {"runAsUser": 0, "allowPrivilegeEscalation": false}}],
                    "volumes": [{"name": "data", "configMap": {"name": "app", "defaultMode": 420}}, {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}],
                    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "automountServiceAccountToken": false,
                    "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 0}]}}},
            "status": {"observedGeneration": 3, "replicas": 2, "conditions": [{"type": "Available", "status": "True",
                "lastUpdateTime": "2024-05-06T07:08:09Z", "lastTransitionTime": "2024-05-06T07:08:09Z", "reason": "MinimumReplicasAvailable", "message": "ok"}]}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "demo"},
            "spec": {"type": "ClusterIP", "clusterIP": "10.0.0.10", "clusterIPs": ["10.0.0.10"], "ipFamilies": ["IPv4"],
                "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}, {"name": "named", "port": 81, "targetPort": "http"}],
                "selector": {"app": "web"}, "sessionAffinity": "None"}, "status": {"loadBalancer": {}}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "demo", "deletionGracePeriodSeconds": 0},
            "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sh", "-c", "sleep 1"],
                "readinessProbe": {"exec": {"command": ["true"]}}, "startupProbe": {"tcpSocket": {"port": 80}}}],
                "securityContext": {"supplementalGroups": [1, 2, 3], "fsGroup": 0},
                "volumes": [{"name": "sec", "secret": {"secretName": "s", "items": [{"key": "p", "path": "p"}]}},
                    {"name": "proj", "projected": {"sources": [{"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}]}}]},
            "status": {"phase": "Running", "podIP": "10.1.0.5", "podIPs": [{"ip": "10.1.0.5"}], "startTime": "2024-05-06T07:08:09Z",
                "containerStatuses": [{"name": "c", "ready": true, "restartCount": 0, "image": "busybox", "imageID": "", "started": true,
                    "state": {"running": {"startedAt": "2024-05-06T07:08:10Z"}}}]}}),
        json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e.1", "namespace": "demo"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "demo"}, "reason": "Started", "message": "started",
            "count": 2, "type": "Normal", "eventTime": "2024-05-06T07:08:09.123456Z", "firstTimestamp": "2024-05-06T07:08:09Z",
            "source": {"component": "kubelet"}, "reportingComponent": "kubelet", "reportingInstance": "n1"}),
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l", "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40, "renewTime": "2024-05-06T07:08:09.000001Z", "leaseTransitions": 0}}),
        json!({"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "r", "namespace": "demo"},
            "data": {"spec": {"template": {"$patch": "replace", "spec": {"containers": [{"name": "c"}]}}}}, "revision": 4}),
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h", "namespace": "demo"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 5,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "AverageValue", "averageValue": "1.5"}}}]}}),
        json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "metadata": {},
            "spec": {"user": "jane", "groups": ["dev"], "extra": {"scopes": ["a", "b"], "empty": []},
                "resourceAttributes": {"namespace": "demo", "verb": "get", "resource": "pods"}},
            "status": {"allowed": false, "denied": true, "reason": "no"}}),
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "metadata": {"name": "default", "namespace": "demo"},
            "spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": 3600,
                "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "u"}},
            "status": {"token": "eyJ...", "expirationTimestamp": "2024-05-06T08:08:09Z"}}),
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList", "shortNames": ["wd"]},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
                    "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "required": ["size"], "properties": {
                            "size": {"type": "integer", "minimum": 1, "maximum": 10.5, "default": 3},
                            "mode": {"type": "string", "enum": ["a", "b"], "pattern": "^[ab]$"},
                            "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                            "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                            "closed": {"type": "object", "additionalProperties": false},
                            "deps": {"type": "object", "dependencies": {"a": ["b"], "c": {"required": ["d"]}}},
                            "ref": {"$ref": "#/definitions/x", "x-kubernetes-validations": [{"rule": "self.size > 0", "message": "m"}]}}},
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}],
                "conversion": {"strategy": "None"}},
            "status": {"acceptedNames": {"plural": "widgets", "kind": "Widget"}, "storedVersions": ["v1"]}}),
        json!({"apiVersion": "v1", "kind": "ConfigMapList", "metadata": {"resourceVersion": "99", "continue": "abc", "remainingItemCount": 3},
            "items": [{"metadata": {"name": "a"}, "data": {"x": "y"}}, {"metadata": {"name": "b"}}]}),
        json!({"apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure", "message": "nope", "reason": "Invalid", "code": 422,
            "details": {"name": "x", "kind": "configmaps", "causes": [{"reason": "FieldValueRequired", "message": "Required value", "field": "data"}], "retryAfterSeconds": 1}}),
        json!({"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0, "propagationPolicy": "Background",
            "preconditions": {"uid": "u", "resourceVersion": "5"}, "dryRun": ["All"]}),
    ]
}

#[test]
fn representative_objects_round_trip() {
    for obj in representative() {
        let bytes = encode(&obj).unwrap_or_else(|e| panic!("{}: {e}", obj["kind"]));
        assert!(bytes.starts_with(b"k8s\0"));
        let back = decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", obj["kind"]));
        assert_eq!(back, obj, "{}", obj["kind"]);
        // Go's encoder writes the same bytes for the same object: ours is deterministic.
        assert_eq!(encode(&back).expect("again"), bytes);
    }
}

#[test]
fn secret_bytes_survive_exactly() {
    let all: Vec<u8> = (0..=255).collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&all);
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"all": b64}});
    let bytes = encode(&secret).expect("encode");
    // The raw bytes, not their base64 text, are on the wire.
    assert!(bytes.windows(all.len()).any(|w| w == all.as_slice()));
    assert_eq!(decode(&bytes).expect("decode")["data"]["all"], json!(b64));
    let bad = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"x": "not base64!"}});
    let e = encode(&bad).unwrap_err();
    assert!(e.to_string().starts_with("data.x: illegal base64"), "{e}");
}

/// What Go's generated marshalers write for `kubectl create namespace demo`: every
/// non-pointer string, the zero time as an empty message, empty spec and status.
#[test]
fn go_style_zero_values_decode_like_upstream_json() {
    let mut meta = Vec::new();
    put_bytes(&mut meta, 1, b"demo");
    for tag in [2, 3, 4, 5, 6] {
        put_bytes(&mut meta, tag, b"");
    }
    put_key(&mut meta, 7, VARINT);
    put_varint(&mut meta, 0);
    put_bytes(&mut meta, 8, b"");
    let mut ns = Vec::new();
    put_bytes(&mut ns, 1, &meta);
    put_bytes(&mut ns, 2, b"");
    put_bytes(&mut ns, 3, b"");
    let mut env = b"k8s\0".to_vec();
    put_nested::<Error>(&mut env, 1, |b| {
        put_bytes(b, 1, b"v1");
        put_bytes(b, 2, b"Namespace");
        Ok(())
    })
    .expect("typeMeta");
    put_bytes(&mut env, 2, &ns);
    put_bytes(&mut env, 3, b"");
    put_bytes(&mut env, 4, b"");
    let v = decode(&env).expect("decode");
    assert_eq!(
        v,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}, "spec": {}, "status": {}})
    );
    // A required string keeps its empty value (Container.name), a plain optional one
    // (image) and plain optional booleans (stdin) do not.
    let mut c = Vec::new();
    put_bytes(&mut c, 1, b"");
    put_bytes(&mut c, 2, b"");
    put_key(&mut c, 16, VARINT);
    put_varint(&mut c, 0);
    assert_eq!(
        decode_message("api/core/v1/Container", &c).expect("container"),
        json!({"name": ""})
    );
    // Zero values of pointer fields are values: replicas 0 (DeploymentSpec.replicas = 1),
    // automountServiceAccountToken false (PodSpec = 21), storageClassName "" (PVC spec = 5);
    // a plain field's zero is not (DeploymentSpec.paused = 7, PodSpec.hostNetwork = 11).
    let mut spec = Vec::new();
    put_key(&mut spec, 1, VARINT);
    put_varint(&mut spec, 0);
    put_key(&mut spec, 7, VARINT);
    put_varint(&mut spec, 0);
    assert_eq!(
        decode_message("api/apps/v1/DeploymentSpec", &spec).expect("spec"),
        json!({"replicas": 0})
    );
    let mut pod = Vec::new();
    put_key(&mut pod, 21, VARINT);
    put_varint(&mut pod, 0);
    put_key(&mut pod, 11, VARINT);
    put_varint(&mut pod, 0);
    assert_eq!(
        decode_message("api/core/v1/PodSpec", &pod).expect("pod spec"),
        json!({"automountServiceAccountToken": false})
    );
    let mut pvc = Vec::new();
    put_bytes(&mut pvc, 5, b"");
    assert_eq!(
        decode_message("api/core/v1/PersistentVolumeClaimSpec", &pvc).expect("pvc spec"),
        json!({"storageClassName": ""})
    );
}

#[test]
fn watch_frames_are_length_prefixed_events_around_enveloped_objects() {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "7"}});
    let frame = encode_watch_event("ADDED", &cm).expect("frame");
    let len = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
    assert_eq!(len, frame.len() - 4);
    let (ty, obj) = decode_watch_event(&frame[4..]).expect("event");
    assert_eq!(ty, "ADDED");
    assert_eq!(obj, cm);
    // The object inside is enveloped.
    assert!(frame.windows(4).any(|w| w == b"k8s\0"));
}

#[test]
fn malformed_input_is_an_error_not_a_panic() {
    let good = encode(&representative()[3]).expect("deployment");
    assert!(decode(&good[..good.len() - 3]).is_err());
    assert!(decode(b"k8s\0").is_err(), "no kind");
    assert!(decode(b"{\"kind\":\"Pod\"}").is_err());
    let unknown = {
        let mut env = b"k8s\0".to_vec();
        put_nested::<Error>(&mut env, 1, |b| {
            put_bytes(b, 1, b"example.com/v1");
            put_bytes(b, 2, b"Widget");
            Ok(())
        })
        .expect("typeMeta");
        env
    };
    assert!(matches!(decode(&unknown), Err(Error::UnknownKind { .. })));
    // A string field sent as a varint.
    let mut wrong = b"k8s\0".to_vec();
    put_nested::<Error>(&mut wrong, 1, |b| {
        put_bytes(b, 1, b"v1");
        put_bytes(b, 2, b"ConfigMap");
        Ok(())
    })
    .expect("typeMeta");
    put_nested::<Error>(&mut wrong, 2, |b| {
        put_nested::<Error>(b, 1, |m| {
            put_key(m, 1, VARINT);
            put_varint(m, 5);
            Ok(())
        })
    })
    .expect("raw");
    let e = decode(&wrong).unwrap_err();
    assert_eq!(e.to_string(), "metadata.name: unexpected wire type 0");
    // Deep nesting through a recursive message (JSONSchemaProps.not = 28) stops at
    // MAX_DEPTH; shallower nesting decodes.
    let props = "apiextensions_apiserver/pkg/apis/apiextensions/v1/JsonSchemaProps";
    let nest = |levels: usize| {
        let mut deep = Vec::new();
        for _ in 0..levels {
            let mut outer = Vec::new();
            put_bytes(&mut outer, 28, &deep);
            deep = outer;
        }
        deep
    };
    assert!(decode_message(props, &nest(50)).is_ok());
    let e = decode_message(props, &nest(100_000)).unwrap_err();
    assert!(e.to_string().contains("too deep"), "{e}");
    // Mutations of a valid encoding never panic.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..3000 {
        let mut b = good.clone();
        for _ in 0..3 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = 4 + (seed as usize) % (b.len() - 4);
            b[at] = (seed >> 32) as u8;
        }
        let _ = decode(&b);
    }
}

/// Timings for the report: `cargo test --release protobuf::tests::timings -- --ignored --nocapture`.
#[test]
#[ignore = "prints timings; run by hand"]
fn timings() {
    use std::time::Instant;
    let deployment = representative()[3].clone();
    let data: serde_json::Map<String, Value> = (0..16)
        .map(|i| (format!("key-{i:02}"), json!("x".repeat(52))))
        .collect();
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "namespace": "demo", "uid": "8d3e5c1a-0000-4000-8000-000000000000", "resourceVersion": "123", "creationTimestamp": "2024-05-06T07:08:09Z"}, "data": data});
    for (name, obj) in [("1-KiB ConfigMap", cm), ("Deployment", deployment)] {
        let json_len = serde_json::to_vec(&obj).expect("json").len();
        let bytes = encode(&obj).expect("encode");
        let n = 20_000u32;
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(encode(std::hint::black_box(&obj)).expect("encode"));
        }
        let enc = t.elapsed() / n;
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(decode(std::hint::black_box(&bytes)).expect("decode"));
        }
        let dec = t.elapsed() / n;
        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(serde_json::to_vec(std::hint::black_box(&obj)).expect("json"));
        }
        let json_enc = t.elapsed() / n;
        println!("{name}: json {json_len} B, protobuf {} B; encode {enc:?}, decode {dec:?} (serde_json encode {json_enc:?})", bytes.len());
    }
}
