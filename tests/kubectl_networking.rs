//! kubectl against one replica for the networking, storage, discovery and
//! events.k8s.io kinds: ingresses (with /status), ingress classes, network policies,
//! endpoint slices, storage classes, CSI drivers, volume attachments (with /status),
//! and the events.k8s.io view of core/v1 events — create, get (upstream's columns),
//! apply, patch, delete, upstream defaults, and validation failures answered with
//! upstream's messages and 422.

mod common;

use common::kube::{header, json_of, phase, row, KubeServer};

fn apply(s: &KubeServer, manifest: &str) -> String {
    let out = s.kubectl_stdin(&["apply", "-f", "-"], manifest);
    assert!(
        out.status.success(),
        "apply failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log_tail()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Creates `manifest` expecting a 422; returns kubectl's stderr (at -v=6, so the
/// response code is in it too).
fn rejected(s: &KubeServer, manifest: &str) -> String {
    let out = s.kubectl_stdin(&["create", "-f", "-", "-v=6"], manifest);
    assert!(
        !out.status.success(),
        "create unexpectedly succeeded:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(err.contains("422 Unprocessable Entity"), "{err}");
    err
}

/// `kubectl patch` expecting a refusal; returns stderr.
fn patch_fails(s: &KubeServer, args: &[&str]) -> String {
    let mut all = vec!["patch"];
    all.extend(args);
    all.push("-v=6");
    let err = s.fails(&all);
    assert!(err.contains("422 Unprocessable Entity"), "{err}");
    err
}

const INGRESSES: &str = "apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: nginx
spec:
  controller: k8s.io/ingress-nginx
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  namespace: default
spec:
  ingressClassName: nginx
  tls:
  - hosts: [web.example.com]
    secretName: web-tls
  rules:
  - host: web.example.com
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port:
              number: 80
";

const NETWORK_POLICY: &str = "apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: db
  namespace: default
spec:
  podSelector:
    matchLabels:
      app: db
  egress:
  - to:
    - ipBlock:
        cidr: 10.0.0.0/8
    ports:
    - port: 5432
";

const ENDPOINT_SLICE: &str = "apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: default
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
ports:
- name: http
  port: 80
endpoints:
- addresses: [10.1.0.1]
  conditions:
    ready: true
- addresses: [10.1.0.2]
";

#[test]
fn networking_and_discovery_kinds() {
    let s = KubeServer::start(&[]);

    phase("discovery lists the kinds with upstream's short names");
    let resources = s.ok(&["api-resources"]);
    for want in [
        "ingressclasses networking.k8s.io/v1 false IngressClass",
        "ingresses ing networking.k8s.io/v1 true Ingress",
        "networkpolicies netpol networking.k8s.io/v1 true NetworkPolicy",
        "endpointslices discovery.k8s.io/v1 true EndpointSlice",
    ] {
        assert!(
            resources
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") == want),
            "{want} missing:\n{resources}"
        );
    }

    phase("apply creates an ingress class and an ingress; get prints upstream's columns");
    let out = apply(&s, INGRESSES);
    assert!(
        out.contains("ingressclass.networking.k8s.io/nginx created"),
        "{out}"
    );
    assert!(
        out.contains("ingress.networking.k8s.io/web created"),
        "{out}"
    );
    let classes = s.ok(&["get", "ingressclasses"]);
    assert_eq!(
        header(&classes),
        "NAME CONTROLLER PARAMETERS AGE",
        "{classes}"
    );
    assert_eq!(
        &row(&classes, "nginx")[..3],
        &["nginx", "k8s.io/ingress-nginx", "<none>"]
    );
    let table = s.ok(&["get", "ing"]);
    assert_eq!(
        header(&table),
        "NAME CLASS HOSTS ADDRESS PORTS AGE",
        "{table}"
    );
    assert_eq!(
        &row(&table, "web")[..5],
        &["web", "nginx", "web.example.com", "80,", "443"],
        "{table}"
    );
    let ing = json_of(&s, &["get", "ingress", "web"]);
    assert_eq!(ing["metadata"]["generation"], 1);
    assert_eq!(ing["status"], serde_json::json!({"loadBalancer": {}}));
    let yaml = s.ok(&["get", "ingress", "web", "-o", "yaml"]);
    assert!(yaml.contains("pathType: Prefix"), "{yaml}");
    let explain = s.ok(&["explain", "ingress.spec"]);
    assert!(explain.contains("ingressClassName"), "{explain}");

    phase("the status subresource sets the address; the main resource keeps it");
    s.ok(&[
        "patch",
        "ingress",
        "web",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"loadBalancer":{"ingress":[{"ip":"10.0.0.5"}]}}}"#,
    ]);
    s.ok(&[
        "patch",
        "ingress",
        "web",
        "--type=merge",
        "-p",
        r#"{"status":{"loadBalancer":{"ingress":[{"ip":"10.9.9.9"}]}},"metadata":{"labels":{"tier":"edge"}}}"#,
    ]);
    let table = s.ok(&["get", "ing", "web"]);
    assert_eq!(row(&table, "web")[3], "10.0.0.5", "{table}");

    phase("re-applying a changed ingress bumps the generation");
    let out = apply(&s, &INGRESSES.replace("number: 80", "number: 8080"));
    assert!(
        out.contains("ingress.networking.k8s.io/web configured"),
        "{out}"
    );
    let ing = json_of(&s, &["get", "ingress", "web"]);
    assert_eq!(ing["metadata"]["generation"], 2);
    assert_eq!(
        ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"]["number"],
        8080
    );

    phase("ingress validation: pathType is required, service ports are checked");
    let no_path_type = "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: bad
  namespace: default
spec:
  rules:
  - host: web.example.com
    http:
      paths:
      - path: /
        backend:
          service:
            name: web
            port:
              number: 80
";
    let err = rejected(&s, no_path_type);
    assert!(
        err.contains("The Ingress \"bad\" is invalid: spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"),
        "{err}"
    );
    let bad_backend = no_path_type
        .replace(
            "      - path: /\n",
            "      - path: relative\n        pathType: Exact\n",
        )
        .replace("number: 80", "name: HTTP");
    let err = rejected(&s, &bad_backend);
    assert!(
        err.contains("spec.rules[0].http.paths[0].path: Invalid value: \"relative\": must be an absolute path"),
        "{err}"
    );
    assert!(
        err.contains(
            "spec.rules[0].http.paths[0].backend.service.port.name: Invalid value: \"HTTP\""
        ),
        "{err}"
    );

    phase("an ingress class's controller is required and immutable");
    let err = rejected(
        &s,
        "apiVersion: networking.k8s.io/v1\nkind: IngressClass\nmetadata:\n  name: empty\nspec: {}\n",
    );
    assert!(
        err.contains("The IngressClass \"empty\" is invalid: spec.controller: Required value"),
        "{err}"
    );
    let err = patch_fails(
        &s,
        &[
            "ingressclass",
            "nginx",
            "--type=merge",
            "-p",
            r#"{"spec":{"controller":"example.com/other"}}"#,
        ],
    );
    assert!(
        err.contains("spec.controller: Invalid value: \"example.com/other\": field is immutable"),
        "{err}"
    );

    phase("an ingress that names no class gets the default class");
    s.ok(&[
        "annotate",
        "ingressclass",
        "nginx",
        "ingressclass.kubernetes.io/is-default-class=true",
    ]);
    s.ok(&[
        "create",
        "ingress",
        "plain",
        "--rule=plain.example.com/=web:80",
    ]);
    let table = s.ok(&["get", "ing", "plain"]);
    assert_eq!(
        &row(&table, "plain")[..3],
        &["plain", "nginx", "plain.example.com"],
        "{table}"
    );

    phase("network policies: defaulted policy types and protocols, the pod selector column");
    let out = apply(&s, NETWORK_POLICY);
    assert!(
        out.contains("networkpolicy.networking.k8s.io/db created"),
        "{out}"
    );
    let table = s.ok(&["get", "netpol"]);
    assert_eq!(header(&table), "NAME POD-SELECTOR AGE", "{table}");
    assert_eq!(&row(&table, "db")[..2], &["db", "app=db"]);
    let np = json_of(&s, &["get", "networkpolicy", "db"]);
    assert_eq!(
        np["spec"]["policyTypes"],
        serde_json::json!(["Ingress", "Egress"])
    );
    assert_eq!(np["spec"]["egress"][0]["ports"][0]["protocol"], "TCP");
    let err = rejected(
        &s,
        &NETWORK_POLICY.replace("name: db", "name: bad").replace(
            "cidr: 10.0.0.0/8",
            "cidr: 10.0.0.0/8\n        except: [192.168.0.0/24]",
        ),
    );
    assert!(
        err.contains("The NetworkPolicy \"bad\" is invalid: spec.egress[0].to[0].ipBlock.except[0]: Invalid value: \"192.168.0.0/24\": must be a strict subset of `cidr`"),
        "{err}"
    );

    phase("endpoint slices: defaults, columns, generation and an immutable address type");
    let out = apply(&s, ENDPOINT_SLICE);
    assert!(
        out.contains("endpointslice.discovery.k8s.io/web-1 created"),
        "{out}"
    );
    let table = s.ok(&["get", "endpointslices"]);
    assert_eq!(
        header(&table),
        "NAME ADDRESSTYPE PORTS ENDPOINTS AGE",
        "{table}"
    );
    assert_eq!(
        &row(&table, "web-1")[..4],
        &["web-1", "IPv4", "80", "10.1.0.1,10.1.0.2"],
        "{table}"
    );
    let eps = json_of(&s, &["get", "endpointslice", "web-1"]);
    assert_eq!(eps["ports"][0]["protocol"], "TCP");
    assert_eq!(eps["metadata"]["generation"], 1);
    s.ok(&[
        "patch",
        "endpointslice",
        "web-1",
        "--type=json",
        "-p",
        r#"[{"op":"add","path":"/endpoints/-","value":{"addresses":["10.1.0.3"]}}]"#,
    ]);
    let eps = json_of(&s, &["get", "endpointslice", "web-1"]);
    assert_eq!(eps["metadata"]["generation"], 2);
    assert_eq!(eps["endpoints"][2]["addresses"][0], "10.1.0.3");
    let err = patch_fails(
        &s,
        &[
            "endpointslice",
            "web-1",
            "--type=merge",
            "-p",
            r#"{"addressType":"FQDN"}"#,
        ],
    );
    assert!(
        err.contains("addressType: Invalid value: \"FQDN\": field is immutable"),
        "{err}"
    );
    let err = rejected(
        &s,
        &ENDPOINT_SLICE
            .replace("name: web-1", "name: bad")
            .replace("[10.1.0.2]", "[127.0.0.1]"),
    );
    assert!(
        err.contains("The EndpointSlice \"bad\" is invalid: endpoints[1].addresses[0]: Invalid value: \"127.0.0.1\": may not be in the loopback range (127.0.0.0/8, ::1/128)"),
        "{err}"
    );

    phase("delete removes each kind");
    for (kind, name) in [
        ("ingress", "web"),
        ("ingress", "plain"),
        ("ingressclass", "nginx"),
        ("networkpolicy", "db"),
        ("endpointslice", "web-1"),
    ] {
        let out = s.ok(&["delete", kind, name]);
        assert!(out.contains("deleted"), "{out}");
        let err = s.fails(&["get", kind, name]);
        assert!(err.contains("NotFound"), "{err}");
    }
}

const STORAGE: &str = "apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: fast
  annotations:
    storageclass.kubernetes.io/is-default-class: \"true\"
provisioner: example.com/fast
parameters:
  type: ssd
allowVolumeExpansion: true
---
apiVersion: storage.k8s.io/v1
kind: CSIDriver
metadata:
  name: csi.example.com
spec:
  podInfoOnMount: true
  tokenRequests:
  - audience: vault
---
apiVersion: storage.k8s.io/v1
kind: VolumeAttachment
metadata:
  name: va-1
spec:
  attacher: csi.example.com
  nodeName: node-1
  source:
    persistentVolumeName: pv-1
";

const CORE_EVENT: &str = "apiVersion: v1
kind: Event
metadata:
  name: web.1
  namespace: default
involvedObject:
  kind: Pod
  name: web
  namespace: default
reason: Started
message: Started container web
type: Normal
source:
  component: kubelet
count: 1
firstTimestamp: \"2025-01-01T00:00:00Z\"
lastTimestamp: \"2025-01-01T00:00:00Z\"
";

const V1_EVENT: &str = "apiVersion: events.k8s.io/v1
kind: Event
metadata:
  name: scaled.1
  namespace: default
eventTime: \"2025-01-01T00:00:00.000000Z\"
reportingController: example.com/scaler
reportingInstance: scaler-1
action: Scale
reason: Scaled
type: Normal
note: scaled up to 3
regarding:
  kind: Deployment
  name: web
  namespace: default
";

#[test]
fn storage_kinds_and_events_k8s_io() {
    let s = KubeServer::start(&[]);

    phase("discovery lists the kinds with upstream's short names");
    let resources = s.ok(&["api-resources"]);
    for want in [
        "storageclasses sc storage.k8s.io/v1 false StorageClass",
        "csidrivers storage.k8s.io/v1 false CSIDriver",
        "volumeattachments storage.k8s.io/v1 false VolumeAttachment",
        "events ev events.k8s.io/v1 true Event",
    ] {
        assert!(
            resources
                .lines()
                .any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") == want),
            "{want} missing:\n{resources}"
        );
    }

    phase("apply creates the storage kinds with upstream's defaults and columns");
    let out = apply(&s, STORAGE);
    for want in [
        "storageclass.storage.k8s.io/fast created",
        "csidriver.storage.k8s.io/csi.example.com created",
        "volumeattachment.storage.k8s.io/va-1 created",
    ] {
        assert!(out.contains(want), "{want} missing:\n{out}");
    }
    let table = s.ok(&["get", "sc"]);
    assert_eq!(
        header(&table),
        "NAME PROVISIONER RECLAIMPOLICY VOLUMEBINDINGMODE ALLOWVOLUMEEXPANSION AGE",
        "{table}"
    );
    let fast = row(&table, "fast");
    assert_eq!(
        &fast[..6],
        &[
            "fast",
            "(default)",
            "example.com/fast",
            "Delete",
            "Immediate",
            "true"
        ],
        "the default class is marked in the NAME column: {table}"
    );
    let sc = json_of(&s, &["get", "storageclass", "fast"]);
    assert_eq!(sc["reclaimPolicy"], "Delete");
    assert_eq!(sc["volumeBindingMode"], "Immediate");

    let table = s.ok(&["get", "csidrivers"]);
    assert_eq!(
        header(&table),
        "NAME ATTACHREQUIRED PODINFOONMOUNT STORAGECAPACITY TOKENREQUESTS REQUIRESREPUBLISH MODES AGE",
        "{table}"
    );
    assert_eq!(
        &row(&table, "csi.example.com")[..7],
        &[
            "csi.example.com",
            "true",
            "true",
            "false",
            "vault",
            "false",
            "Persistent"
        ],
        "{table}"
    );
    let driver = json_of(&s, &["get", "csidriver", "csi.example.com"]);
    assert_eq!(driver["spec"]["fsGroupPolicy"], "ReadWriteOnceWithFSType");
    assert_eq!(driver["spec"]["seLinuxMount"], false);

    let table = s.ok(&["get", "volumeattachments"]);
    assert_eq!(
        header(&table),
        "NAME ATTACHER PV NODE ATTACHED AGE",
        "{table}"
    );
    assert_eq!(
        &row(&table, "va-1")[..5],
        &["va-1", "csi.example.com", "pv-1", "node-1", "false"],
        "{table}"
    );

    phase("a volume attachment's status changes through /status only");
    s.ok(&[
        "patch",
        "volumeattachment",
        "va-1",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"attached":true,"attachmentMetadata":{"device":"/dev/sdb"}}}"#,
    ]);
    let table = s.ok(&["get", "volumeattachment", "va-1"]);
    assert_eq!(row(&table, "va-1")[4], "true", "{table}");
    let err = patch_fails(
        &s,
        &[
            "volumeattachment",
            "va-1",
            "--type=merge",
            "-p",
            r#"{"spec":{"nodeName":"node-2"}}"#,
        ],
    );
    assert!(
        err.contains("The VolumeAttachment \"va-1\" is invalid: spec: Invalid value:")
            && err.contains("field is immutable"),
        "{err}"
    );

    phase("immutable storage fields and upstream's messages");
    let err = patch_fails(
        &s,
        &[
            "sc",
            "fast",
            "--type=merge",
            "-p",
            r#"{"provisioner":"example.com/slow"}"#,
        ],
    );
    assert!(
        err.contains("The StorageClass \"fast\" is invalid: provisioner: Forbidden: updates to provisioner are forbidden."),
        "{err}"
    );
    let out = s.ok(&[
        "patch",
        "sc",
        "fast",
        "--type=merge",
        "-p",
        r#"{"allowVolumeExpansion":false}"#,
    ]);
    assert!(out.contains("patched"), "{out}");
    let err = patch_fails(
        &s,
        &[
            "csidriver",
            "csi.example.com",
            "--type=merge",
            "-p",
            r#"{"spec":{"attachRequired":false}}"#,
        ],
    );
    assert!(
        err.contains("spec.attachedRequired: Invalid value: false: field is immutable"),
        "{err}"
    );

    phase("storage validation failures on create");
    let err = rejected(
        &s,
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: bad\nprovisioner: example.com/x\nreclaimPolicy: Recycle\n",
    );
    assert!(
        err.contains("The StorageClass \"bad\" is invalid: reclaimPolicy: Unsupported value: \"Recycle\": supported values: \"Delete\", \"Retain\""),
        "{err}"
    );
    let err = rejected(
        &s,
        "apiVersion: storage.k8s.io/v1\nkind: CSIDriver\nmetadata:\n  name: bad.example.com\nspec:\n  fsGroupPolicy: Sometimes\n",
    );
    assert!(
        err.contains("spec.fsGroupPolicy: Unsupported value: \"Sometimes\": supported values: \"File\", \"None\", \"ReadWriteOnceWithFSType\""),
        "{err}"
    );
    let err = rejected(
        &s,
        "apiVersion: storage.k8s.io/v1\nkind: VolumeAttachment\nmetadata:\n  name: bad\nspec:\n  attacher: csi.example.com\n  nodeName: node-1\n  source: {}\n",
    );
    assert!(
        err.contains("The VolumeAttachment \"bad\" is invalid: spec.source: Required value: must specify exactly one of inlineVolumeSpec and persistentVolumeName"),
        "{err}"
    );

    phase("events.k8s.io/v1 serves the core/v1 events, and core/v1 reads its events");
    let out = s.kubectl_stdin(&["create", "-f", "-"], CORE_EVENT);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let core_table = s.ok(&["get", "events", "-o", "wide"]);
    let table = s.ok(&["get", "events.events.k8s.io", "-o", "wide"]);
    assert_eq!(header(&table), header(&core_table), "{table}");
    assert_eq!(
        header(&table),
        "LAST SEEN TYPE REASON OBJECT SUBOBJECT SOURCE MESSAGE FIRST SEEN COUNT NAME",
        "{table}"
    );
    let r: Vec<&str> = table
        .lines()
        .find(|l| l.split_whitespace().last() == Some("web.1"))
        .unwrap_or_else(|| panic!("no row web.1 in\n{table}"))
        .split_whitespace()
        .collect();
    assert!(
        r.contains(&"Normal") && r.contains(&"Started") && r.contains(&"pod/web"),
        "{table}"
    );
    let out = s.kubectl_stdin(&["create", "-f", "-"], V1_EVENT);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let core = json_of(&s, &["get", "events", "scaled.1"]);
    assert_eq!(core["message"], "scaled up to 3");
    assert_eq!(core["involvedObject"]["kind"], "Deployment");
    assert_eq!(core["reportingComponent"], "example.com/scaler");
    assert!(core.get("note").is_none(), "{core}");
    let table = s.ok(&["get", "events.events.k8s.io", "scaled.1"]);
    assert!(table.contains("deployment/web"), "{table}");
    // Read through events.k8s.io/v1, a core/v1 event has that group's field names.
    let v1 = json_of(&s, &["get", "events.v1.events.k8s.io", "web.1"]);
    assert_eq!(v1["apiVersion"], "events.k8s.io/v1", "{v1}");
    assert_eq!(v1["regarding"]["kind"], "Pod", "{v1}");
    assert!(v1["note"].is_string(), "{v1}");
    assert!(
        v1.get("involvedObject").is_none() && v1.get("message").is_none(),
        "{v1}"
    );
    let v1 = json_of(&s, &["get", "events.v1.events.k8s.io", "scaled.1"]);
    assert_eq!(v1["note"], "scaled up to 3", "{v1}");

    phase("events.k8s.io/v1 creates get upstream's strict validation");
    let err = rejected(
        &s,
        &V1_EVENT
            .replace("name: scaled.1", "name: bad")
            .replace("type: Normal", "type: Odd")
            .replace("eventTime: \"2025-01-01T00:00:00.000000Z\"\n", ""),
    );
    assert!(
        err.contains(
            "The Event \"bad\" is invalid: \n* eventTime: Required value\n* type: Invalid value: \"\": has invalid value: Odd"
        ),
        "{err}"
    );

    phase("delete removes each kind");
    for (kind, name) in [
        ("volumeattachment", "va-1"),
        ("csidriver", "csi.example.com"),
        ("storageclass", "fast"),
        ("events.events.k8s.io", "scaled.1"),
    ] {
        let out = s.ok(&["delete", kind, name]);
        assert!(out.contains("deleted"), "{out}");
        let err = s.fails(&["get", kind, name]);
        assert!(err.contains("NotFound"), "{err}");
    }
    let err = s.fails(&["get", "events", "scaled.1"]);
    assert!(err.contains("NotFound"), "{err}");
}
