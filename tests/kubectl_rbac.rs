//! kubectl against one replica for the policy and extension kinds: the bootstrap RBAC
//! policy, `kubectl create role|rolebinding|clusterrole|clusterrolebinding` with
//! upstream's columns and validation (roleRef immutable), certificate signing requests
//! approved and denied with `kubectl certificate`, webhook configurations with their
//! defaults, validating admission policies and bindings, and a CustomResourceDefinition
//! applied and waited on until Established.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use common::kube::{header, json_of, phase, row, KubeServer};
use serde_json::Value;

/// `kubectl apply -f -`: (success, stdout, stderr).
fn apply(s: &KubeServer, manifest: &str) -> (bool, String, String) {
    let out = s.kubectl_stdin(&["apply", "-f", "-"], manifest);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn apply_ok(s: &KubeServer, manifest: &str) -> String {
    let (ok, out, err) = apply(s, manifest);
    assert!(ok, "apply failed:\n{err}\n{manifest}\n{}", s.log_tail());
    out
}

fn apply_fails(s: &KubeServer, manifest: &str) -> String {
    let (ok, out, err) = apply(s, manifest);
    assert!(!ok, "apply unexpectedly succeeded:\n{out}\n{manifest}");
    err
}

/// Polls `kubectl args` until it succeeds; returns its stdout.
fn eventually_ok(s: &KubeServer, args: &[&str], timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let out = s.kubectl(args);
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(
            Instant::now() < deadline,
            "kubectl {args:?} still failing after {timeout:?}:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A PEM PKCS#10 request signed by a fresh key.
fn csr_pem() -> String {
    let key = rcgen::KeyPair::generate().expect("key pair");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "jane");
    params
        .serialize_request(&key)
        .expect("csr")
        .pem()
        .expect("pem")
}

fn csr_manifest(name: &str, request_pem: &str) -> String {
    let request = base64::engine::general_purpose::STANDARD.encode(request_pem);
    format!(
        "apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata:
  name: {name}
spec:
  request: {request}
  signerName: example.com/signer
  expirationSeconds: 86400
  usages:
  - client auth
"
    )
}

fn rbac(s: &KubeServer) {
    phase("the bootstrap policy appears shortly after start");
    let admin = eventually_ok(
        s,
        &["get", "clusterrole", "cluster-admin", "-o", "json"],
        Duration::from_secs(30),
    );
    let admin: Value = serde_json::from_str(&admin).expect("json");
    assert_eq!(
        admin["metadata"]["labels"]["kubernetes.io/bootstrapping"],
        "rbac-defaults"
    );
    assert_eq!(
        admin["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"],
        "true"
    );
    assert_eq!(admin["rules"][0]["verbs"], serde_json::json!(["*"]));
    assert_eq!(
        admin["rules"][1]["nonResourceURLs"],
        serde_json::json!(["*"])
    );
    let binding = eventually_ok(
        s,
        &[
            "get",
            "clusterrolebinding",
            "system:public-info-viewer",
            "-o",
            "wide",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(
        &row(&binding, "system:public-info-viewer")[..2],
        &[
            "system:public-info-viewer",
            "ClusterRole/system:public-info-viewer"
        ],
        "{binding}"
    );
    assert!(
        binding.contains("system:authenticated, system:unauthenticated"),
        "{binding}"
    );
    let roles = s.ok(&["get", "clusterroles"]);
    assert_eq!(header(&roles), "NAME CREATED AT", "{roles}");
    for name in [
        "admin",
        "edit",
        "view",
        "system:discovery",
        "system:basic-user",
    ] {
        row(&roles, name);
    }
    let view = json_of(s, &["get", "clusterrole", "view"]);
    assert_eq!(
        view["aggregationRule"]["clusterRoleSelectors"][0]["matchLabels"]
            ["rbac.authorization.k8s.io/aggregate-to-view"],
        "true"
    );

    phase("kubectl create role and rolebinding, with upstream's columns");
    let out = s.ok(&[
        "create",
        "role",
        "pod-reader",
        "--verb=get,list",
        "--resource=pods",
        "-n",
        "default",
    ]);
    assert!(
        out.contains("role.rbac.authorization.k8s.io/pod-reader created"),
        "{out}"
    );
    let table = s.ok(&["get", "roles", "-n", "default"]);
    assert_eq!(header(&table), "NAME CREATED AT", "{table}");
    let created = row(&table, "pod-reader")[1];
    assert!(created.ends_with('Z') && created.contains('T'), "{table}");
    s.ok(&[
        "create",
        "rolebinding",
        "read-pods",
        "--role=pod-reader",
        "--user=jane",
        "--group=devs",
        "--serviceaccount=default:robot",
        "-n",
        "default",
    ]);
    let wide = s.ok(&[
        "get",
        "rolebinding",
        "read-pods",
        "-n",
        "default",
        "-o",
        "wide",
    ]);
    assert_eq!(
        header(&wide),
        "NAME ROLE AGE USERS GROUPS SERVICEACCOUNTS",
        "{wide}"
    );
    let r = row(&wide, "read-pods");
    assert_eq!(r[1], "Role/pod-reader", "{wide}");
    assert_eq!(&r[3..], &["jane", "devs", "default:robot"], "{wide}");
    let rb = json_of(s, &["get", "rolebinding", "read-pods", "-n", "default"]);
    assert_eq!(rb["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
    assert_eq!(rb["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");

    phase("the roleRef of a binding cannot change");
    let err = s.fails(&[
        "patch",
        "rolebinding",
        "read-pods",
        "-n",
        "default",
        "--type=merge",
        "-p",
        r#"{"roleRef":{"name":"other"}}"#,
    ]);
    assert!(
        err.contains("roleRef: Invalid value: rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"Role\", Name:\"other\"}: cannot change roleRef"),
        "{err}"
    );

    phase("kubectl create clusterrole and clusterrolebinding");
    s.ok(&[
        "create",
        "clusterrole",
        "node-reader",
        "--verb=get",
        "--resource=nodes",
        "--non-resource-url=/metrics",
    ]);
    let cr = json_of(s, &["get", "clusterrole", "node-reader"]);
    assert_eq!(
        cr["rules"][1]["nonResourceURLs"],
        serde_json::json!(["/metrics"])
    );
    s.ok(&[
        "create",
        "clusterrolebinding",
        "read-nodes",
        "--clusterrole=node-reader",
        "--serviceaccount=kube-system:monitor",
    ]);
    let wide = s.ok(&["get", "clusterrolebinding", "read-nodes", "-o", "wide"]);
    let r = row(&wide, "read-nodes");
    assert_eq!(r[1], "ClusterRole/node-reader", "{wide}");
    assert_eq!(r.last(), Some(&"kube-system:monitor"), "{wide}");

    phase("validation: rules need verbs, URLs only in cluster roles, SA subjects need a namespace");
    let err = apply_fails(
        s,
        "apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: bad
  namespace: default
rules:
- apiGroups: [\"\"]
  resources: [pods]
- verbs: [get]
  nonResourceURLs: [/healthz]
",
    );
    for want in [
        "The Role \"bad\" is invalid",
        "rules[0].verbs: Required value: verbs must contain at least one value",
        "rules[1].nonResourceURLs: Invalid value: []string{\"/healthz\"}: namespaced rules cannot apply to non-resource URLs",
    ] {
        assert!(err.contains(want), "{want} missing:\n{err}");
    }
    let err = apply_fails(
        s,
        "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: bad
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: x
subjects:
- kind: ServiceAccount
  name: robot
",
    );
    for want in [
        "The ClusterRoleBinding \"bad\" is invalid",
        "roleRef.kind: Unsupported value: \"Role\": supported values: \"ClusterRole\"",
        "subjects[0].namespace: Required value",
    ] {
        assert!(err.contains(want), "{want} missing:\n{err}");
    }
}

fn certificates(s: &KubeServer) {
    phase("a CSR is created Pending and approved with kubectl certificate approve");
    apply_ok(s, &csr_manifest("jane", &csr_pem()));
    let table = s.ok(&["get", "csr"]);
    assert_eq!(
        header(&table),
        "NAME AGE SIGNERNAME REQUESTOR REQUESTEDDURATION CONDITION",
        "{table}"
    );
    let r = row(&table, "jane");
    assert_eq!(r[2], "example.com/signer", "{table}");
    assert_eq!(
        r[3], "kubernetes-admin",
        "the requestor is the creating user: {table}"
    );
    assert_eq!(&r[r.len() - 2..], &["24h", "Pending"], "{table}");
    let out = s.ok(&["certificate", "approve", "jane"]);
    assert!(
        out.contains("certificatesigningrequest.certificates.k8s.io/jane approved"),
        "{out}"
    );
    let table = s.ok(&["get", "csr", "jane"]);
    assert_eq!(row(&table, "jane").last(), Some(&"Approved"), "{table}");
    let csr = json_of(s, &["get", "csr", "jane"]);
    assert_eq!(csr["spec"]["username"], "kubernetes-admin");
    assert_eq!(
        csr["spec"]["groups"],
        serde_json::json!(["system:masters", "system:authenticated"])
    );
    let cond = &csr["status"]["conditions"][0];
    assert_eq!(cond["type"], "Approved");
    assert_eq!(cond["status"], "True");
    assert_eq!(cond["reason"], "KubectlApprove");
    assert!(cond["lastTransitionTime"].is_string(), "{csr}");
    let err = s.fails(&["certificate", "deny", "jane"]);
    assert!(err.contains("is already Approved"), "{err}");

    phase("kubectl certificate deny");
    apply_ok(s, &csr_manifest("joe", &csr_pem()));
    s.ok(&["certificate", "deny", "joe"]);
    let table = s.ok(&["get", "csr", "joe"]);
    assert_eq!(row(&table, "joe").last(), Some(&"Denied"), "{table}");

    phase("the spec of a CSR cannot be changed, and a bad request is refused");
    s.ok(&[
        "patch",
        "csr",
        "joe",
        "--type=merge",
        "-p",
        r#"{"spec":{"signerName":"example.com/other"}}"#,
    ]);
    assert_eq!(
        s.ok(&["get", "csr", "joe", "-o", "jsonpath={.spec.signerName}"]),
        "example.com/signer"
    );
    let err = apply_fails(s, &csr_manifest("garbage", "not a pem"));
    assert!(
        err.contains("The CertificateSigningRequest \"garbage\" is invalid: spec.request: Invalid value: []byte{0x6e, 0x6f, 0x74"),
        "{err}"
    );
    assert!(
        err.contains("PEM block type must be CERTIFICATE REQUEST"),
        "{err}"
    );
    let err = apply_fails(s, &csr_manifest("short", &csr_pem()).replace("86400", "60"));
    assert!(
        err.contains("spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 600 seconds (10 minutes)"),
        "{err}"
    );
}

const WEBHOOK: &str = "apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: check
webhooks:
- name: check.example.com
  clientConfig:
    service:
      name: checker
      namespace: default
  rules:
  - operations: [CREATE]
    apiGroups: [\"\"]
    apiVersions: [v1]
    resources: [pods]
  sideEffects: None
  admissionReviewVersions: [v1]
";

fn admission(s: &KubeServer) {
    phase("webhook configurations get upstream's defaults");
    apply_ok(s, WEBHOOK);
    let yaml = s.ok(&[
        "get",
        "validatingwebhookconfiguration",
        "check",
        "-o",
        "yaml",
    ]);
    for want in [
        "failurePolicy: Fail",
        "matchPolicy: Equivalent",
        "namespaceSelector: {}",
        "objectSelector: {}",
        "timeoutSeconds: 10",
        "scope: '*'",
        "port: 443",
    ] {
        assert!(yaml.contains(want), "{want} missing:\n{yaml}");
    }
    let table = s.ok(&["get", "validatingwebhookconfigurations"]);
    assert_eq!(header(&table), "NAME WEBHOOKS AGE", "{table}");
    assert_eq!(row(&table, "check")[1], "1", "{table}");
    apply_ok(
        s,
        &WEBHOOK
            .replace(
                "ValidatingWebhookConfiguration",
                "MutatingWebhookConfiguration",
            )
            .replace("name: check\n", "name: mutate\n"),
    );
    let m = json_of(s, &["get", "mutatingwebhookconfiguration", "mutate"]);
    assert_eq!(m["webhooks"][0]["reinvocationPolicy"], "Never");
    assert_eq!(m["metadata"]["generation"], 1);

    phase("webhook validation: sideEffects required, names qualified");
    let err = apply_fails(
        s,
        &WEBHOOK
            .replace("name: check\n", "name: bad\n")
            .replace("check.example.com", "short.name")
            .replace("  sideEffects: None\n", ""),
    );
    for want in [
        "The ValidatingWebhookConfiguration \"bad\" is invalid",
        "webhooks[0].name: Invalid value: \"short.name\": should be a domain with at least three segments separated by dots",
        "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun",
    ] {
        assert!(err.contains(want), "{want} missing:\n{err}");
    }
}

const POLICY: &str = "apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata:
  name: replicas
spec:
  paramKind:
    apiVersion: v1
    kind: ConfigMap
  matchConstraints:
    resourceRules:
    - apiGroups: [apps]
      apiVersions: [v1]
      operations: [CREATE, UPDATE]
      resources: [deployments]
  validations:
  - expression: object.spec.replicas <= 5
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: replicas
spec:
  policyName: replicas
  validationActions: [Deny]
  paramRef:
    name: limits
    namespace: default
    parameterNotFoundAction: Deny
";

fn policies(s: &KubeServer) {
    phase("validating admission policies and bindings are stored with defaults and columns");
    apply_ok(s, POLICY);
    let table = s.ok(&["get", "validatingadmissionpolicies"]);
    assert_eq!(header(&table), "NAME VALIDATIONS PARAMKIND AGE", "{table}");
    assert_eq!(
        &row(&table, "replicas")[1..3],
        &["1", "v1/ConfigMap"],
        "{table}"
    );
    let p = json_of(s, &["get", "validatingadmissionpolicy", "replicas"]);
    assert_eq!(p["spec"]["failurePolicy"], "Fail");
    assert_eq!(p["spec"]["matchConstraints"]["matchPolicy"], "Equivalent");
    assert_eq!(
        p["spec"]["matchConstraints"]["resourceRules"][0]["scope"],
        "*"
    );
    let table = s.ok(&["get", "validatingadmissionpolicybindings"]);
    assert_eq!(header(&table), "NAME POLICYNAME PARAMREF AGE", "{table}");
    assert_eq!(
        &row(&table, "replicas")[1..3],
        &["replicas", "default/limits"],
        "{table}"
    );
    let err = apply_fails(
        s,
        "apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata:
  name: bad
spec:
  validationActions: [Deny, Warn]
",
    );
    for want in [
        "The ValidatingAdmissionPolicyBinding \"bad\" is invalid",
        "spec.policyName: Required value",
        "must not contain both Deny and Warn",
    ] {
        assert!(err.contains(want), "{want} missing:\n{err}");
    }
}

const CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: widgets
    kind: Widget
    shortNames: [wg]
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size:
                type: integer
";

fn crds(s: &KubeServer) {
    phase("a CRD is applied and becomes Established");
    let out = apply_ok(s, CRD);
    assert!(
        out.contains("customresourcedefinition.apiextensions.k8s.io/widgets.example.com created"),
        "{out}"
    );
    let out = s.ok(&[
        "wait",
        "--for",
        "condition=established",
        "crd/widgets.example.com",
        "--timeout=30s",
    ]);
    assert!(out.contains("condition met"), "{out}");
    let table = s.ok(&["get", "crd"]);
    assert_eq!(header(&table), "NAME CREATED AT", "{table}");
    row(&table, "widgets.example.com");
    let crd = json_of(s, &["get", "crds", "widgets.example.com"]);
    assert_eq!(crd["spec"]["names"]["listKind"], "WidgetList");
    assert_eq!(crd["spec"]["names"]["singular"], "widget");
    assert_eq!(crd["status"]["acceptedNames"]["kind"], "Widget");
    assert_eq!(crd["status"]["storedVersions"], serde_json::json!(["v1"]));

    phase("CRD validation: the name is <plural>.<group>, the root schema is an object");
    let err = apply_fails(
        s,
        &CRD.replace("name: widgets.example.com", "name: gadgets.example.com")
            .replace(
                "        type: object\n        properties:\n          spec:",
                "        properties:\n          spec:",
            ),
    );
    assert!(
        err.contains("metadata.name: Invalid value: \"gadgets.example.com\": must be spec.names.plural+\".\"+spec.group"),
        "{err}"
    );
    assert!(
        err.contains(
            "spec.validation.openAPIV3Schema.type: Required value: must not be empty at the root"
        ),
        "{err}"
    );
}

#[test]
fn policy_and_extension_kinds() {
    let s = KubeServer::start(&[]);

    phase("api-resources lists the kinds with upstream's short names and categories");
    let out = s.ok(&["api-resources", "-o", "wide"]);
    let csr = row(&out, "certificatesigningrequests");
    assert_eq!(csr[1], "csr", "{out}");
    let crd = row(&out, "customresourcedefinitions");
    assert_eq!(crd[1], "crd,crds", "{out}");
    assert!(crd.contains(&"api-extensions"), "{out}");
    row(&out, "clusterrolebindings");
    row(&out, "validatingadmissionpolicies");

    rbac(&s);
    certificates(&s);
    admission(&s);
    policies(&s);
    crds(&s);
}
