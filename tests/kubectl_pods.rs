//! kubectl against one replica: pods (run, get, describe, field selectors, validation,
//! immutability, binding, eviction, the Priority and DefaultTolerationSeconds
//! admission plugins), podtemplates, replicationcontrollers, `get all`,
//! and the cluster kinds (nodes, persistentvolumes, persistentvolumeclaims,
//! limitranges, resourcequotas, events) through create, get, describe and delete.

mod common;

use common::kube::KubeServer;

fn phase(what: &str) {
    eprintln!("--- {what}");
}

/// `kubectl <args> -f -` with `yaml` on stdin; returns (success, stdout, stderr).
fn with_stdin(s: &KubeServer, args: &[&str], yaml: &str) -> (bool, String, String) {
    let out = s.kubectl_stdin(args, yaml);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn apply(s: &KubeServer, yaml: &str) -> String {
    let (ok, out, err) = with_stdin(s, &["apply", "-f", "-"], yaml);
    assert!(ok, "apply failed:\n{err}\n{}", s.log_tail());
    out
}

/// The first data row of a table, split on whitespace.
fn row(table: &str) -> Vec<String> {
    table
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[test]
fn pods_templates_and_replication_controllers() {
    let s = KubeServer::start(&[]);

    phase("kubectl run creates a pending pod with upstream's defaults");
    s.ok(&["run", "nginx", "--image=nginx"]);
    let out = s.ok(&["get", "pods"]);
    assert!(out.starts_with("NAME"), "{out}");
    for col in ["READY", "STATUS", "RESTARTS", "AGE"] {
        assert!(
            out.lines().next().unwrap_or_default().contains(col),
            "{col} missing:\n{out}"
        );
    }
    assert_eq!(&row(&out)[..4], ["nginx", "0/1", "Pending", "0"], "{out}");
    let spec = |path: &str| s.ok(&["get", "pod", "nginx", "-o", &format!("jsonpath={{{path}}}")]);
    assert_eq!(spec(".spec.restartPolicy"), "Always");
    assert_eq!(spec(".spec.dnsPolicy"), "ClusterFirst");
    assert_eq!(spec(".spec.schedulerName"), "default-scheduler");
    assert_eq!(spec(".spec.terminationGracePeriodSeconds"), "30");
    assert_eq!(spec(".spec.enableServiceLinks"), "true");
    assert_eq!(spec(".spec.containers[0].imagePullPolicy"), "Always");
    assert_eq!(
        spec(".spec.containers[0].terminationMessagePath"),
        "/dev/termination-log"
    );
    assert_eq!(spec(".spec.containers[0].terminationMessagePolicy"), "File");
    assert_eq!(spec(".status.phase"), "Pending");
    assert_eq!(spec(".status.qosClass"), "BestEffort");
    let wide = s.ok(&["get", "pods", "-o", "wide"]);
    assert!(
        wide.contains("NOMINATED NODE") && wide.contains("READINESS GATES"),
        "{wide}"
    );
    assert!(wide.contains("<none>"), "{wide}");

    phase("a guaranteed pod with ports and probes gets its QoS class and probe defaults");
    apply(
        &s,
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: sized\n  labels:\n    app: sized\nspec:\n  restartPolicy: Never\n  containers:\n  - name: app\n    image: nginx:1.25\n    ports:\n    - containerPort: 80\n    readinessProbe:\n      httpGet:\n        port: 80\n    resources:\n      limits:\n        cpu: 500m\n        memory: 64Mi\n",
    );
    let sized = |path: &str| s.ok(&["get", "pod", "sized", "-o", &format!("jsonpath={{{path}}}")]);
    assert_eq!(sized(".status.qosClass"), "Guaranteed");
    assert_eq!(sized(".spec.containers[0].resources.requests.cpu"), "500m");
    assert_eq!(sized(".spec.containers[0].imagePullPolicy"), "IfNotPresent");
    assert_eq!(sized(".spec.containers[0].ports[0].protocol"), "TCP");
    assert_eq!(
        sized(".spec.containers[0].readinessProbe.periodSeconds"),
        "10"
    );
    assert_eq!(
        sized(".spec.containers[0].readinessProbe.httpGet.scheme"),
        "HTTP"
    );

    phase("field selectors: status.phase, spec.restartPolicy, and unsupported fields");
    let pending = s.ok(&[
        "get",
        "pods",
        "--field-selector",
        "status.phase=Pending",
        "-o",
        "name",
    ]);
    assert_eq!(pending.lines().count(), 2, "{pending}");
    let running = s.kubectl(&[
        "get",
        "pods",
        "--field-selector",
        "status.phase=Running",
        "-o",
        "name",
    ]);
    assert!(running.status.success());
    assert!(String::from_utf8_lossy(&running.stdout).trim().is_empty());
    let never = s.ok(&[
        "get",
        "pods",
        "--field-selector",
        "spec.restartPolicy=Never",
        "-o",
        "name",
    ]);
    assert_eq!(never.trim(), "pod/sized");
    let err = s.fails(&["get", "pods", "--field-selector", "spec.bogus=x"]);
    assert!(
        err.contains("field label not supported: spec.bogus"),
        "{err}"
    );

    phase("describe pod shows status, QoS and containers");
    let d = s.ok(&["describe", "pod", "nginx"]);
    for want in [
        "Name:",
        "nginx",
        "Status:",
        "Pending",
        "QoS Class:",
        "BestEffort",
        "Containers:",
        "Image:",
    ] {
        assert!(d.contains(want), "{want} missing:\n{d}");
    }

    phase("invalid pods are refused with upstream's field paths");
    let bad = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\nspec:\n  containers:\n  - name: app\n    image: nginx\n  - name: app\n";
    let (ok, _, err) = with_stdin(&s, &["create", "-f", "-"], bad);
    assert!(!ok);
    assert!(err.contains("The Pod \"bad\" is invalid"), "{err}");
    assert!(
        err.contains("spec.containers[1].name: Duplicate value: \"app\""),
        "{err}"
    );
    assert!(
        err.contains("spec.containers[1].image: Required value"),
        "{err}"
    );
    let bad_policy = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\nspec:\n  restartPolicy: Sometimes\n  containers:\n  - name: app\n    image: nginx\n    ports:\n    - containerPort: 70000\n";
    let (ok, _, err) = with_stdin(&s, &["create", "-f", "-"], bad_policy);
    assert!(!ok);
    assert!(
        err.contains("spec.restartPolicy: Unsupported value: \"Sometimes\""),
        "{err}"
    );
    assert!(err.contains("spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"), "{err}");
    s.fails(&["get", "pod", "bad"]);

    phase("pod specs are immutable except images");
    let err = s.fails(&[
        "patch",
        "pod",
        "nginx",
        "-p",
        "{\"spec\":{\"restartPolicy\":\"Never\"}}",
    ]);
    assert!(
        err.contains("pod updates may not change fields other than `spec.containers[*].image`"),
        "{err}"
    );
    assert!(err.contains("spec: Forbidden"), "{err}");
    s.ok(&["set", "image", "pod/nginx", "nginx=nginx:1.25"]);
    assert_eq!(spec(".spec.containers[0].image"), "nginx:1.25");
    s.ok(&["label", "pod", "nginx", "tier=web"]);
    assert_eq!(spec(".metadata.labels.tier"), "web");

    phase("binding assigns a node once");
    let binding = r#"{"apiVersion":"v1","kind":"Binding","metadata":{"name":"nginx"},"target":{"apiVersion":"v1","kind":"Node","name":"node-1"}}"#;
    let path = s.dir.path().join("binding.json");
    std::fs::write(&path, binding).expect("write binding");
    let path = path.to_string_lossy().into_owned();
    let out = s.ok(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/pods/nginx/binding",
        "-f",
        &path,
    ]);
    assert!(out.contains("\"status\":\"Success\""), "{out}");
    assert_eq!(spec(".spec.nodeName"), "node-1");
    assert!(spec(".status.conditions[0].type").contains("PodScheduled"));
    let err = s.fails(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/pods/nginx/binding",
        "-f",
        &path,
    ]);
    assert!(err.contains("already assigned to node \"node-1\""), "{err}");
    let on_node = s.ok(&[
        "get",
        "pods",
        "--field-selector",
        "spec.nodeName=node-1",
        "-o",
        "name",
    ]);
    assert_eq!(on_node.trim(), "pod/nginx");
    let err = s.fails(&[
        "patch",
        "pod",
        "nginx",
        "-p",
        "{\"spec\":{\"nodeName\":\"node-2\"}}",
    ]);
    assert!(err.contains("pod updates may not change fields"), "{err}");

    phase("a status update (as a kubelet sends) shows in the table and field selectors");
    let status = r#"{"status":{"phase":"Running","podIP":"10.244.0.7","podIPs":[{"ip":"10.244.0.7"}],"conditions":[{"type":"Ready","status":"True"}],"containerStatuses":[{"name":"nginx","image":"nginx:1.25","imageID":"","ready":true,"restartCount":2,"state":{"running":{"startedAt":"2026-01-01T00:00:00Z"}},"lastState":{"terminated":{"exitCode":1,"finishedAt":"2026-01-01T00:00:00Z"}}}]}}"#;
    s.ok(&[
        "patch",
        "pod",
        "nginx",
        "--subresource=status",
        "--type=merge",
        "-p",
        status,
    ]);
    let out = s.ok(&["get", "pod", "nginx", "-o", "wide"]);
    let cells = row(&out);
    assert_eq!(cells[..4], ["nginx", "1/1", "Running", "2"], "{out}");
    assert!(
        out.contains("ago)") && out.contains("10.244.0.7") && out.contains("node-1"),
        "{out}"
    );
    let by_ip = s.ok(&[
        "get",
        "pods",
        "--field-selector",
        "status.podIP=10.244.0.7",
        "-o",
        "name",
    ]);
    assert_eq!(by_ip.trim(), "pod/nginx");
    assert_eq!(
        spec(".spec.nodeName"),
        "node-1",
        "a status update keeps the spec"
    );

    phase("eviction of a running, ready pod asks its PodDisruptionBudget");
    apply(
        &s,
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: web\nspec:\n  minAvailable: 1\n  selector:\n    matchLabels:\n      run: nginx\n",
    );
    let budget = |allowed: i64| {
        s.ok(&[
            "patch",
            "pdb",
            "web",
            "--subresource=status",
            "--type=merge",
            "-p",
            &format!(r#"{{"status":{{"observedGeneration":1,"disruptionsAllowed":{allowed},"desiredHealthy":1,"currentHealthy":1,"expectedPods":1}}}}"#),
        ]);
    };
    budget(0);
    let evict = |body: &str| {
        let path = s.dir.path().join("evict-nginx.json");
        std::fs::write(&path, body).expect("write eviction");
        s.kubectl(&[
            "create",
            "--raw",
            "/api/v1/namespaces/default/pods/nginx/eviction",
            "-f",
            &path.to_string_lossy(),
        ])
    };
    let nginx_eviction = r#"{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"nginx","namespace":"default"}}"#;
    let out = evict(nginx_eviction);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "evicted past a budget allowing none");
    assert!(
        err.contains("Cannot evict pod as it would violate the pod's disruption budget"),
        "{err}"
    );
    assert_eq!(spec(".metadata.name"), "nginx", "the pod stays");
    budget(1);
    let dry = r#"{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"nginx","namespace":"default"},"deleteOptions":{"dryRun":["All"]}}"#;
    assert!(evict(dry).status.success());
    assert_eq!(spec(".metadata.name"), "nginx", "a dry run evicts nothing");
    let pdb = |path: &str| s.ok(&["get", "pdb", "web", "-o", &format!("jsonpath={{{path}}}")]);
    assert_eq!(
        pdb(".status.disruptionsAllowed"),
        "1",
        "nor takes a disruption"
    );
    let out = evict(nginx_eviction);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(pdb(".status.disruptionsAllowed"), "0");
    assert!(pdb(".status.disruptedPods.nginx").ends_with('Z'));

    phase("a scheduled pod is deleted gracefully: it terminates until its kubelet is done");
    assert_eq!(
        spec(".metadata.deletionGracePeriodSeconds"),
        "30",
        "the eviction marked the pod with its terminationGracePeriodSeconds"
    );
    let marked = spec(".metadata.deletionTimestamp");
    let out = s.ok(&["get", "pod", "nginx"]);
    assert_eq!(row(&out)[2], "Terminating", "{out}");
    s.ok(&["delete", "pod", "nginx", "--wait=false"]);
    assert_eq!(
        spec(".metadata.deletionTimestamp"),
        marked,
        "a second delete without a shorter period changes nothing"
    );
    s.ok(&["label", "pod", "nginx", "stopping=yes"]);
    assert_eq!(
        spec(".metadata.labels.stopping"),
        "yes",
        "an update inside the grace period keeps the pod"
    );
    s.ok(&["delete", "pod", "nginx", "--grace-period=5", "--wait=false"]);
    assert_eq!(spec(".metadata.deletionGracePeriodSeconds"), "5");
    s.ok(&[
        "delete",
        "pod",
        "nginx",
        "--grace-period=60",
        "--wait=false",
    ]);
    assert_eq!(
        spec(".metadata.deletionGracePeriodSeconds"),
        "5",
        "a longer period does not extend the deadline"
    );
    let shortened = spec(".metadata.deletionTimestamp");
    assert!(
        shortened < marked,
        "a shorter period moves the deadline earlier: {shortened} against {marked}"
    );
    let out = s.ok(&["delete", "pod", "nginx", "--grace-period=0", "--force"]);
    assert!(out.contains("force deleted"), "{out}");
    let err = s.fails(&["get", "pod", "nginx"]);
    assert!(err.contains("not found"), "{err}");
    s.ok(&["run", "nginx", "--image=nginx"]);

    phase("eviction deletes the pod");
    let eviction = r#"{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"sized","namespace":"default"}}"#;
    let epath = s.dir.path().join("eviction.json");
    std::fs::write(&epath, eviction).expect("write eviction");
    let out = s.ok(&[
        "create",
        "--raw",
        "/api/v1/namespaces/default/pods/sized/eviction",
        "-f",
        &epath.to_string_lossy(),
    ]);
    assert!(out.contains("Success"), "{out}");
    let err = s.fails(&["get", "pod", "sized"]);
    assert!(err.contains("pods \"sized\" not found"), "{err}");

    phase("podtemplates: create, get, describe, delete");
    apply(
        &s,
        "apiVersion: v1\nkind: PodTemplate\nmetadata:\n  name: tmpl\ntemplate:\n  metadata:\n    labels:\n      app: tmpl\n  spec:\n    containers:\n    - name: web\n      image: nginx:1.25\n",
    );
    let out = s.ok(&["get", "podtemplates"]);
    assert!(
        out.contains("CONTAINERS") && out.contains("POD LABELS"),
        "{out}"
    );
    assert_eq!(
        row(&out),
        ["tmpl", "web", "nginx:1.25", "app=tmpl"],
        "{out}"
    );
    assert_eq!(
        s.ok(&[
            "get",
            "podtemplate",
            "tmpl",
            "-o",
            "jsonpath={.template.spec.restartPolicy}"
        ]),
        "Always"
    );
    assert!(s.ok(&["describe", "podtemplate", "tmpl"]).contains("tmpl"));
    s.ok(&["delete", "podtemplate", "tmpl"]);
    s.fails(&["get", "podtemplate", "tmpl"]);

    phase("replicationcontrollers: defaults from the template, columns, scale, validation");
    apply(
        &s,
        "apiVersion: v1\nkind: ReplicationController\nmetadata:\n  name: rc1\nspec:\n  replicas: 2\n  template:\n    metadata:\n      labels:\n        app: rc1\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.25\n",
    );
    let out = s.ok(&["get", "rc", "rc1", "-o", "wide"]);
    assert!(out.contains("DESIRED") && out.contains("SELECTOR"), "{out}");
    assert_eq!(row(&out)[..4], ["rc1", "2", "0", "0"], "{out}");
    assert!(out.contains("app=rc1"), "{out}");
    assert_eq!(
        s.ok(&["get", "rc", "rc1", "-o", "jsonpath={.metadata.labels.app}"]),
        "rc1"
    );
    assert!(s.ok(&["describe", "rc", "rc1"]).contains("Replicas:"));
    let mismatch = "apiVersion: v1\nkind: ReplicationController\nmetadata:\n  name: rc2\nspec:\n  selector:\n    app: other\n  template:\n    metadata:\n      labels:\n        app: rc2\n    spec:\n      containers:\n      - name: web\n        image: nginx\n";
    let (ok, _, err) = with_stdin(&s, &["create", "-f", "-"], mismatch);
    assert!(!ok);
    assert!(
        err.contains("spec.template.metadata.labels")
            && err.contains("`selector` does not match template `labels`"),
        "{err}"
    );

    phase("kubectl get all lists pods, services and replicationcontrollers");
    apply(&s, "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector:\n    app: rc1\n  ports:\n  - port: 80\n");
    let all = s.ok(&["get", "all"]);
    for want in ["pod/nginx", "replicationcontroller/rc1", "service/web"] {
        assert!(all.contains(want), "{want} missing:\n{all}");
    }
    s.ok(&["delete", "rc", "rc1"]);
    s.ok(&["delete", "pod", "nginx"]);
    let err = s.fails(&["get", "pod", "nginx"]);
    assert!(err.contains("not found"), "{err}");
}

#[test]
fn nodes_volumes_limits_quotas_and_events() {
    let s = KubeServer::start(&[]);

    phase("nodes: create, status subresource, cordon, field selector, describe, delete");
    apply(&s, "apiVersion: v1\nkind: Node\nmetadata:\n  name: node-1\n  labels:\n    node-role.kubernetes.io/worker: \"\"\n");
    let out = s.ok(&["get", "nodes"]);
    assert!(
        out.lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .eq(["NAME", "STATUS", "ROLES", "AGE", "VERSION"]),
        "{out}"
    );
    assert_eq!(row(&out)[..3], ["node-1", "Unknown", "worker"], "{out}");
    let status = r#"{"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"ready","lastHeartbeatTime":"2026-01-01T00:00:00Z","lastTransitionTime":"2026-01-01T00:00:00Z"}],"nodeInfo":{"kubeletVersion":"v1.33.0","architecture":"amd64","bootID":"","containerRuntimeVersion":"containerd://2.0.0","kernelVersion":"6.1.0","kubeProxyVersion":"","machineID":"","operatingSystem":"linux","osImage":"Debian GNU/Linux 12","systemUUID":""},"addresses":[{"type":"InternalIP","address":"10.0.0.5"}]}}"#;
    s.ok(&[
        "patch",
        "node",
        "node-1",
        "--subresource=status",
        "--type=merge",
        "-p",
        status,
    ]);
    let out = s.ok(&["get", "node", "node-1", "-o", "wide"]);
    assert_eq!(row(&out)[..2], ["node-1", "Ready"], "{out}");
    assert!(
        out.contains("v1.33.0") && out.contains("10.0.0.5") && out.contains("containerd://2.0.0"),
        "{out}"
    );
    s.ok(&["cordon", "node-1"]);
    assert_eq!(
        row(&s.ok(&["get", "node", "node-1"]))[1],
        "Ready,SchedulingDisabled"
    );
    let cordoned = s.ok(&[
        "get",
        "nodes",
        "--field-selector",
        "spec.unschedulable=true",
        "-o",
        "name",
    ]);
    assert_eq!(cordoned.trim(), "node/node-1");
    let d = s.ok(&["describe", "node", "node-1"]);
    assert!(
        d.contains("Unschedulable:      true") && d.contains("KubeletReady"),
        "{d}"
    );
    let (ok, _, err) = with_stdin(
        &s,
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: tainted\nspec:\n  taints:\n  - key: k\n    effect: Sometimes\n",
    );
    assert!(!ok);
    assert!(
        err.contains("spec.taints[0].effect: Unsupported value: \"Sometimes\""),
        "{err}"
    );
    s.ok(&["delete", "node", "node-1"]);
    s.fails(&["get", "node", "node-1"]);

    phase("persistentvolumes and claims: defaults, columns, immutability");
    apply(
        &s,
        "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: pv1\nspec:\n  capacity:\n    storage: 1Gi\n  accessModes: [ReadWriteOnce]\n  hostPath:\n    path: /data\n",
    );
    let out = s.ok(&["get", "pv"]);
    assert!(
        out.contains("RECLAIM POLICY") && out.contains("STORAGECLASS"),
        "{out}"
    );
    assert_eq!(
        row(&out)[..5],
        ["pv1", "1Gi", "RWO", "Retain", "Pending"],
        "{out}"
    );
    assert_eq!(
        s.ok(&["get", "pv", "pv1", "-o", "jsonpath={.spec.volumeMode}"]),
        "Filesystem"
    );
    let err = s.fails(&[
        "patch",
        "pv",
        "pv1",
        "-p",
        "{\"spec\":{\"hostPath\":{\"path\":\"/other\"}}}",
    ]);
    assert!(
        err.contains("spec.persistentvolumesource: Forbidden"),
        "{err}"
    );
    assert!(s.ok(&["describe", "pv", "pv1"]).contains("Reclaim Policy:"));
    let (ok, _, err) = with_stdin(
        &s,
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: PersistentVolume\nmetadata:\n  name: pv2\nspec: {}\n",
    );
    assert!(!ok);
    assert!(
        err.contains("spec.accessModes: Required value")
            && err.contains("spec.capacity: Required value"),
        "{err}"
    );
    apply(
        &s,
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: claim\nspec:\n  accessModes: [ReadWriteOnce]\n  resources:\n    requests:\n      storage: 1Gi\n",
    );
    let out = s.ok(&["get", "pvc"]);
    assert_eq!(row(&out)[..2], ["claim", "Pending"], "{out}");
    assert_eq!(
        s.ok(&["get", "pvc", "claim", "-o", "jsonpath={.spec.volumeMode}"]),
        "Filesystem"
    );
    let err = s.fails(&[
        "patch",
        "pvc",
        "claim",
        "-p",
        "{\"spec\":{\"accessModes\":[\"ReadWriteMany\"]}}",
    ]);
    assert!(err.contains("spec is immutable after creation"), "{err}");
    assert!(s.ok(&["describe", "pvc", "claim"]).contains("Status:"));
    s.ok(&["delete", "pvc", "claim"]);
    s.ok(&["delete", "pv", "pv1"]);
    assert!(s.ok(&["get", "pv,pvc", "-o", "name"]).trim().is_empty());

    phase("limitranges: defaults from max, default table, validation");
    apply(
        &s,
        "apiVersion: v1\nkind: LimitRange\nmetadata:\n  name: lr\nspec:\n  limits:\n  - type: Container\n    max:\n      cpu: \"2\"\n",
    );
    let out = s.ok(&["get", "limits"]);
    assert!(out.contains("CREATED AT"), "{out}");
    assert_eq!(
        s.ok(&[
            "get",
            "limitrange",
            "lr",
            "-o",
            "jsonpath={.spec.limits[0].defaultRequest.cpu}"
        ]),
        "2"
    );
    assert!(s.ok(&["describe", "limits", "lr"]).contains("Container"));
    let (ok, _, err) = with_stdin(
        &s,
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: LimitRange\nmetadata:\n  name: bad\nspec:\n  limits:\n  - type: Container\n    max:\n      cpu: \"1\"\n    min:\n      cpu: \"2\"\n",
    );
    assert!(!ok);
    assert!(
        err.contains("min value 2 is greater than max value 1"),
        "{err}"
    );
    s.ok(&["delete", "limits", "lr"]);

    phase("resourcequotas: status starts empty, columns, status subresource");
    apply(&s, "apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: q\nspec:\n  hard:\n    pods: \"10\"\n    limits.cpu: \"4\"\n");
    let out = s.ok(&["get", "quota"]);
    assert!(
        out.lines().next().unwrap_or_default().contains("REQUEST"),
        "{out}"
    );
    s.ok(&[
        "patch",
        "quota",
        "q",
        "--subresource=status",
        "--type=merge",
        "-p",
        "{\"status\":{\"hard\":{\"pods\":\"10\",\"limits.cpu\":\"4\"},\"used\":{\"pods\":\"1\"}}}",
    ]);
    let out = s.ok(&["get", "quota", "q"]);
    assert!(
        out.contains("pods: 1/10") && out.contains("limits.cpu: 0/4"),
        "{out}"
    );
    assert!(s.ok(&["describe", "quota", "q"]).contains("pods"));
    s.ok(&["delete", "quota", "q"]);

    phase("events: create, columns, field selectors, describe, delete");
    apply(
        &s,
        "apiVersion: v1\nkind: Event\nmetadata:\n  name: nginx.1\ninvolvedObject:\n  kind: Pod\n  name: nginx\n  namespace: default\nreason: Scheduled\ntype: Normal\nmessage: Successfully assigned default/nginx to node-1\nsource:\n  component: default-scheduler\nfirstTimestamp: \"2026-01-01T00:00:00Z\"\nlastTimestamp: \"2026-01-01T00:00:00Z\"\ncount: 1\n",
    );
    let out = s.ok(&["get", "ev"]);
    assert_eq!(
        out.lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
        "LAST SEEN TYPE REASON OBJECT MESSAGE",
        "events print LAST SEEN first and no NAME column, as upstream:\n{out}"
    );
    let wide = s.ok(&["get", "ev", "-o", "wide"]);
    let header: Vec<&str> = wide
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(
        header.last(),
        Some(&"NAME"),
        "-o wide ends with NAME:\n{wide}"
    );
    assert!(wide.contains("nginx.1"), "{wide}");
    assert!(
        out.contains("pod/nginx") && out.contains("Successfully assigned"),
        "{out}"
    );
    let sel = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.name=nginx,reason=Scheduled,source=default-scheduler",
        "-o",
        "name",
    ]);
    assert_eq!(sel.trim(), "event/nginx.1");
    let none = s.ok(&[
        "get",
        "events",
        "--field-selector",
        "type=Warning",
        "-o",
        "name",
    ]);
    assert!(none.trim().is_empty(), "{none}");
    assert!(s.ok(&["describe", "ev", "nginx.1"]).contains("Scheduled"));
    let (ok, _, err) = with_stdin(
        &s,
        &["create", "-f", "-"],
        "apiVersion: v1\nkind: Event\nmetadata:\n  name: wrong\ninvolvedObject:\n  kind: Pod\n  name: x\n  namespace: kube-system\nreason: R\n",
    );
    assert!(!ok);
    assert!(
        err.contains("involvedObject.namespace") && err.contains("does not match event.namespace"),
        "{err}"
    );
    s.ok(&["delete", "ev", "nginx.1"]);
    s.fails(&["get", "ev", "nginx.1"]);
}

#[test]
fn priority_and_default_toleration_admission() {
    let s = KubeServer::start(&[]);

    phase("a plain pod gets priority 0 and five minutes of not-ready/unreachable tolerance");
    s.ok(&["run", "plain", "--image=nginx"]);
    let get_in = |ns: &str, name: &str, path: &str| {
        s.ok(&[
            "-n",
            ns,
            "get",
            "pod",
            name,
            "-o",
            &format!("jsonpath={{{path}}}"),
        ])
    };
    let get = |name: &str, path: &str| get_in("default", name, path);
    assert_eq!(get("plain", ".spec.priority"), "0");
    assert_eq!(
        get("plain", ".spec.preemptionPolicy"),
        "PreemptLowerPriority"
    );
    let tolerations = get(
        "plain",
        r#".spec.tolerations[*]['key','effect','tolerationSeconds']"#,
    );
    for want in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        assert!(tolerations.contains(want), "{want} missing: {tolerations}");
    }
    assert_eq!(tolerations.matches("NoExecute").count(), 2, "{tolerations}");
    assert_eq!(tolerations.matches("300").count(), 2, "{tolerations}");

    phase("a pod that tolerates not-ready itself keeps its own toleration");
    apply(
        &s,
        "apiVersion: v1
kind: Pod
metadata: {name: tolerant}
spec:
  containers: [{name: c, image: nginx}]
  tolerations:
  - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 30}
",
    );
    let tolerations = get("tolerant", r#".spec.tolerations[*].tolerationSeconds"#);
    assert_eq!(
        tolerations, "30 300",
        "the own toleration first, then unreachable's default"
    );

    phase("a priority class name resolves to its value and preemption policy");
    apply(
        &s,
        "apiVersion: v1
kind: Pod
metadata: {name: critical, namespace: kube-system}
spec:
  priorityClassName: system-node-critical
  containers: [{name: c, image: nginx}]
",
    );
    assert_eq!(
        get_in("kube-system", "critical", ".spec.priority"),
        "2000001000"
    );
    assert_eq!(
        get_in("kube-system", "critical", ".spec.preemptionPolicy"),
        "PreemptLowerPriority"
    );

    phase("a global default class applies to pods that name none");
    apply(
        &s,
        "apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: everyday}
value: 1000
globalDefault: true
preemptionPolicy: Never
",
    );
    let (ok, _, err) = with_stdin(
        &s,
        &["create", "-f", "-"],
        "apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: second}
value: 5
globalDefault: true
",
    );
    assert!(!ok);
    assert!(
        err.contains("PriorityClass everyday is marked as default. Only one default can exist"),
        "{err}"
    );
    s.ok(&["run", "defaulted", "--image=nginx"]);
    assert_eq!(get("defaulted", ".spec.priorityClassName"), "everyday");
    assert_eq!(get("defaulted", ".spec.priority"), "1000");
    assert_eq!(get("defaulted", ".spec.preemptionPolicy"), "Never");

    phase("a missing class, or a priority that disagrees with the class, is refused with 403");
    let (ok, _, err) = with_stdin(
        &s,
        &["create", "-f", "-"],
        "apiVersion: v1
kind: Pod
metadata: {name: nosuch}
spec:
  priorityClassName: no-such-class
  containers: [{name: c, image: nginx}]
",
    );
    assert!(!ok);
    assert!(
        err.contains(
            r#"pods "nosuch" is forbidden: no PriorityClass with name no-such-class was found"#
        ),
        "{err}"
    );
    let (ok, _, err) = with_stdin(
        &s,
        &["create", "-f", "-"],
        "apiVersion: v1
kind: Pod
metadata: {name: selfmade}
spec:
  priorityClassName: everyday
  priority: 7
  containers: [{name: c, image: nginx}]
",
    );
    assert!(!ok);
    assert!(
        err.contains("the integer value of priority (7) must not be provided in pod spec; priority admission controller computed 1000 from the given PriorityClass name"),
        "{err}"
    );
    assert!(
        err.contains("Forbidden") || err.contains("forbidden"),
        "{err}"
    );
    let out = s.fails(&["get", "pod", "nosuch"]);
    assert!(
        out.contains("NotFound") || out.contains("not found"),
        "nothing stored: {out}"
    );
}
