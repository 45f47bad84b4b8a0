//! kubectl against one replica for the workload kinds: deployments (create, get
//! columns, upstream defaults, scale with and without preconditions, apply, set
//! image, validation), statefulsets, daemonsets, jobs and cronjobs, horizontal pod
//! autoscalers read in autoscaling/v1 and v2, pod disruption budgets and leases.

mod common;

use common::kube::{header, json_of, phase, row, KubeServer};
use serde_json::Value;

fn apply(s: &KubeServer, manifest: &str) -> (bool, String, String) {
    let out = s.kubectl_stdin(&["apply", "-f", "-"], manifest);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const API_DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: default
spec:
  replicas: 2
  selector:
    matchLabels:
      app: api
  template:
    metadata:
      labels:
        app: api
    spec:
      containers:
      - name: api
        image: nginx:1.25
        ports:
        - containerPort: 80
";

#[test]
fn deployments_create_scale_apply_and_validate() {
    let s = KubeServer::start(&[]);

    phase("kubectl create deployment prints upstream's columns");
    let out = s.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=2",
    ]);
    assert!(out.contains("deployment.apps/web created"), "{out}");
    let table = s.ok(&["get", "deployments"]);
    assert_eq!(
        header(&table),
        "NAME READY UP-TO-DATE AVAILABLE AGE",
        "{table}"
    );
    assert_eq!(
        &row(&table, "web")[..4],
        &["web", "0/2", "0", "0"],
        "{table}"
    );
    let wide = s.ok(&["get", "deploy", "web", "-o", "wide"]);
    assert_eq!(
        header(&wide),
        "NAME READY UP-TO-DATE AVAILABLE AGE CONTAINERS IMAGES SELECTOR",
        "{wide}"
    );
    assert_eq!(
        &row(&wide, "web")[5..],
        &["nginx", "nginx", "app=web"],
        "{wide}"
    );

    phase("-o yaml/json shows the apps/v1 and pod template defaults, and an empty status");
    let yaml = s.ok(&["get", "deploy", "web", "-o", "yaml"]);
    for want in [
        "maxSurge: 25%",
        "maxUnavailable: 25%",
        "type: RollingUpdate",
        "revisionHistoryLimit: 10",
        "progressDeadlineSeconds: 600",
    ] {
        assert!(yaml.contains(want), "{want} missing:\n{yaml}");
    }
    let d = json_of(&s, &["get", "deploy", "web"]);
    let pod = &d["spec"]["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Always");
    assert_eq!(pod["dnsPolicy"], "ClusterFirst");
    assert_eq!(pod["terminationGracePeriodSeconds"], 30);
    assert_eq!(pod["schedulerName"], "default-scheduler");
    assert_eq!(pod["securityContext"], serde_json::json!({}));
    assert_eq!(pod["containers"][0]["imagePullPolicy"], "Always");
    assert_eq!(
        pod["containers"][0]["terminationMessagePath"],
        "/dev/termination-log"
    );
    assert_eq!(pod["containers"][0]["terminationMessagePolicy"], "File");
    assert_eq!(d["metadata"]["generation"], 1);
    assert_eq!(d["status"], serde_json::json!({}));

    phase("kubectl scale goes through deployments/scale and bumps the generation");
    let out = s.ok(&["scale", "deployment", "web", "--replicas=3"]);
    assert!(out.contains("deployment.apps/web scaled"), "{out}");
    let d = json_of(&s, &["get", "deploy", "web"]);
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(d["metadata"]["generation"], 2);
    let scale: Value = serde_json::from_str(&s.ok(&[
        "get",
        "--raw",
        "/apis/apps/v1/namespaces/default/deployments/web/scale",
    ]))
    .expect("scale json");
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["spec"]["replicas"], 3);
    assert_eq!(scale["status"]["selector"], "app=web");
    assert_eq!(
        scale["metadata"]["resourceVersion"],
        d["metadata"]["resourceVersion"]
    );

    phase("--current-replicas is a precondition");
    let err = s.fails(&[
        "scale",
        "deployment",
        "web",
        "--current-replicas=2",
        "--replicas=5",
    ]);
    assert!(err.contains("Expected replicas to be 2, was 3"), "{err}");
    s.ok(&[
        "scale",
        "deployment",
        "web",
        "--current-replicas=3",
        "--replicas=4",
    ]);
    assert_eq!(
        s.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "4"
    );

    s.ok(&[
        "scale",
        "deployment",
        "web",
        "--replicas=7",
        "--dry-run=server",
    ]);
    assert_eq!(
        s.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "4"
    );

    phase("a Scale with a stale resourceVersion is a conflict and changes nothing");
    let stale = r#"{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"web","namespace":"default","resourceVersion":"1"},"spec":{"replicas":9}}"#;
    let out = s.kubectl_stdin(
        &[
            "replace",
            "--raw",
            "/apis/apps/v1/namespaces/default/deployments/web/scale",
            "-f",
            "-",
        ],
        stale,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "stale scale accepted");
    assert!(err.contains("the object has been modified"), "{err}");
    assert_eq!(
        s.ok(&["get", "deploy", "web", "-o", "jsonpath={.spec.replicas}"]),
        "4"
    );
    let negative = r#"{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"web","namespace":"default"},"spec":{"replicas":-1}}"#;
    let out = s.kubectl_stdin(
        &[
            "replace",
            "--raw",
            "/apis/apps/v1/namespaces/default/deployments/web/scale",
            "-f",
            "-",
        ],
        negative,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("spec.replicas"),
        "{err}"
    );

    phase("status is written only through /status and kept by main updates");
    s.ok(&[
        "patch",
        "deploy",
        "web",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"replicas":4,"readyReplicas":1}}"#,
    ]);
    s.ok(&["label", "deploy", "web", "tier=front"]);
    let table = s.ok(&["get", "deploy", "web"]);
    assert_eq!(row(&table, "web")[1], "1/4", "{table}");
    s.ok(&[
        "patch",
        "deploy",
        "web",
        "--type=merge",
        "-p",
        r#"{"status":{"readyReplicas":4}}"#,
    ]);
    assert_eq!(
        s.ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.status.readyReplicas}"
        ]),
        "1"
    );

    phase("apply creates, reports unchanged, then configured with a new generation");
    let (ok, out, err) = apply(&s, API_DEPLOYMENT);
    assert!(
        ok && out.contains("deployment.apps/api created"),
        "{out}{err}"
    );
    let (ok, out, err) = apply(&s, API_DEPLOYMENT);
    assert!(
        ok && out.contains("deployment.apps/api unchanged"),
        "{out}{err}"
    );
    let (ok, out, err) = apply(&s, &API_DEPLOYMENT.replace("nginx:1.25", "nginx:1.26"));
    assert!(
        ok && out.contains("deployment.apps/api configured"),
        "{out}{err}"
    );
    let d = json_of(&s, &["get", "deploy", "api"]);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.26"
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["protocol"],
        "TCP"
    );
    assert_eq!(d["metadata"]["generation"], 2);

    phase("kubectl set image patches the container by name");
    let out = s.ok(&["set", "image", "deployment/web", "nginx=nginx:1.27"]);
    assert!(out.contains("image updated"), "{out}");
    assert_eq!(
        s.ok(&[
            "get",
            "deploy",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}"
        ]),
        "nginx:1.27"
    );

    phase("validation: selector/labels mismatch, immutable selector, negative replicas");
    let bad = API_DEPLOYMENT
        .replace("name: api\n  namespace", "name: bad\n  namespace")
        .replace(
            "      labels:\n        app: api",
            "      labels:\n        app: other",
        );
    let (ok, _, err) = apply(&s, &bad);
    assert!(!ok, "mismatched selector accepted");
    assert!(
        err.contains("is invalid") && err.contains("spec.template.metadata.labels"),
        "{err}"
    );
    assert!(
        err.contains("`selector` does not match template `labels`"),
        "{err}"
    );
    let err = s.fails(&["patch", "deploy", "api", "--type=merge", "-p", r#"{"spec":{"selector":{"matchLabels":{"app":"api","x":"y"}},"template":{"metadata":{"labels":{"x":"y"}}}}}"#]);
    assert!(
        err.contains("spec.selector") && err.contains("field is immutable"),
        "{err}"
    );
    let err = s.fails(&["scale", "deployment", "api", "--replicas=-1"]);
    assert!(!err.is_empty());
    let (ok, _, err) = apply(&s, &API_DEPLOYMENT.replace("replicas: 2", "replicas: -2"));
    assert!(
        !ok && err.contains("spec.replicas") && err.contains("must be greater than or equal to 0"),
        "{err}"
    );

    phase("statefulsets and replicasets scale too; daemonsets print their columns");
    let sts = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: db\nspec:\n  serviceName: db\n  selector:\n    matchLabels:\n      app: db\n  template:\n    metadata:\n      labels:\n        app: db\n    spec:\n      containers:\n      - name: db\n        image: postgres:16\n";
    let (ok, out, err) = apply(&s, sts);
    assert!(ok, "{out}{err}");
    s.ok(&["scale", "statefulset", "db", "--replicas=3"]);
    let table = s.ok(&["get", "sts"]);
    assert_eq!(header(&table), "NAME READY AGE", "{table}");
    assert_eq!(row(&table, "db")[1], "0/3", "{table}");
    let st = json_of(&s, &["get", "sts", "db"]);
    assert_eq!(
        st["spec"]["updateStrategy"]["rollingUpdate"]["partition"],
        0
    );
    assert_eq!(st["spec"]["podManagementPolicy"], "OrderedReady");
    let err = s.fails(&[
        "patch",
        "sts",
        "db",
        "--type=merge",
        "-p",
        r#"{"spec":{"serviceName":"other"}}"#,
    ]);
    assert!(
        err.contains("updates to statefulset spec for fields other than"),
        "{err}"
    );
    let rs = sts
        .replace("StatefulSet", "ReplicaSet")
        .replace("  serviceName: db\n", "")
        .replace("name: db\nspec", "name: cache\nspec");
    let (ok, out, err) = apply(&s, &rs);
    assert!(ok, "{out}{err}");
    s.ok(&["scale", "rs", "cache", "--replicas=2"]);
    let table = s.ok(&["get", "rs"]);
    assert_eq!(header(&table), "NAME DESIRED CURRENT READY AGE", "{table}");
    assert_eq!(&row(&table, "cache")[1..4], &["2", "0", "0"], "{table}");
    let rc = "apiVersion: v1\nkind: ReplicationController\nmetadata:\n  name: legacy\nspec:\n  replicas: 1\n  selector:\n    app: legacy\n  template:\n    metadata:\n      labels:\n        app: legacy\n    spec:\n      containers:\n      - name: c\n        image: busybox\n";
    let (ok, out, err) = apply(&s, rc);
    assert!(ok, "{out}{err}");
    s.ok(&["scale", "rc", "legacy", "--replicas=3"]);
    let scale: Value = serde_json::from_str(&s.ok(&[
        "get",
        "--raw",
        "/api/v1/namespaces/default/replicationcontrollers/legacy/scale",
    ]))
    .expect("scale json");
    assert_eq!(scale["spec"]["replicas"], 3, "{scale}");
    assert_eq!(scale["status"]["selector"], "app=legacy", "{scale}");
    let ds = sts
        .replace("StatefulSet", "DaemonSet")
        .replace("  serviceName: db\n", "")
        .replace("name: db\nspec", "name: agent\nspec");
    let (ok, out, err) = apply(&s, &ds);
    assert!(ok, "{out}{err}");
    let table = s.ok(&["get", "ds"]);
    assert_eq!(
        header(&table),
        "NAME DESIRED CURRENT READY UP-TO-DATE AVAILABLE NODE SELECTOR AGE",
        "{table}"
    );
    assert_eq!(
        &row(&table, "agent")[1..7],
        &["0", "0", "0", "0", "0", "<none>"],
        "{table}"
    );
    let ds = json_of(&s, &["get", "ds", "agent"]);
    assert_eq!(
        ds["metadata"]["annotations"]["deprecated.daemonset.template.generation"],
        "1"
    );
    let err = s.fails(&["scale", "ds", "agent", "--replicas=2"]);
    assert!(!err.is_empty());
}

#[test]
fn jobs_and_cronjobs() {
    let s = KubeServer::start(&[]);

    phase("kubectl create job generates the selector and labels");
    let out = s.ok(&[
        "create",
        "job",
        "pi",
        "--image=perl",
        "--",
        "perl",
        "-e",
        "print 1",
    ]);
    assert!(out.contains("job.batch/pi created"), "{out}");
    let table = s.ok(&["get", "jobs"]);
    assert_eq!(
        header(&table),
        "NAME STATUS COMPLETIONS DURATION AGE",
        "{table}"
    );
    assert_eq!(
        &row(&table, "pi")[..3],
        &["pi", "Running", "0/1"],
        "{table}"
    );
    let j = json_of(&s, &["get", "job", "pi"]);
    let uid = j["metadata"]["uid"].as_str().expect("uid").to_owned();
    assert_eq!(
        j["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
        uid.as_str()
    );
    let labels = &j["spec"]["template"]["metadata"]["labels"];
    assert_eq!(labels["job-name"], "pi");
    assert_eq!(labels["batch.kubernetes.io/job-name"], "pi");
    assert_eq!(labels["controller-uid"], uid.as_str());
    assert_eq!(
        j["metadata"]["labels"]["batch.kubernetes.io/job-name"],
        "pi"
    );
    assert_eq!(j["spec"]["backoffLimit"], 6);
    assert_eq!(j["spec"]["completionMode"], "NonIndexed");
    assert_eq!(j["spec"]["suspend"], false);
    assert_eq!(j["spec"]["template"]["spec"]["restartPolicy"], "Never");
    let out = s.ok(&[
        "get",
        "jobs",
        "-l",
        "batch.kubernetes.io/job-name=pi",
        "-o",
        "name",
    ]);
    assert_eq!(out.trim(), "job.batch/pi");

    phase("a job's template is immutable; restartPolicy Always is refused");
    let err = s.fails(&["set", "image", "job/pi", "pi=perl:5"]);
    assert!(
        err.contains("spec.template") && err.contains("field is immutable"),
        "{err}"
    );
    let job = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: forever\nspec:\n  template:\n    spec:\n      restartPolicy: Always\n      containers:\n      - name: c\n        image: busybox\n";
    let out = s.kubectl_stdin(&["create", "-f", "-"], job);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("spec.template.spec.restartPolicy"),
        "{err}"
    );

    phase("cronjobs print their schedule and reject bad ones");
    let out = s.ok(&[
        "create",
        "cronjob",
        "tick",
        "--image=busybox",
        "--schedule=*/5 * * * *",
        "--",
        "date",
    ]);
    assert!(out.contains("cronjob.batch/tick created"), "{out}");
    let table = s.ok(&["get", "cj"]);
    assert_eq!(
        header(&table),
        "NAME SCHEDULE TIMEZONE SUSPEND ACTIVE LAST SCHEDULE AGE",
        "{table}"
    );
    let r = row(&table, "tick");
    assert_eq!(
        &r[..9],
        &["tick", "*/5", "*", "*", "*", "*", "<none>", "False", "0"],
        "{table}"
    );
    let c = json_of(&s, &["get", "cronjob", "tick"]);
    assert_eq!(c["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(c["spec"]["successfulJobsHistoryLimit"], 3);
    assert_eq!(c["spec"]["failedJobsHistoryLimit"], 1);
    assert_eq!(
        c["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"],
        "OnFailure"
    );
    assert_eq!(
        c["spec"]["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"],
        "ClusterFirst"
    );
    let err = s.fails(&[
        "create",
        "cronjob",
        "bad",
        "--image=busybox",
        "--schedule=every minute",
    ]);
    assert!(
        err.contains("is invalid") && err.contains("spec.schedule"),
        "{err}"
    );
    assert!(err.contains("expected exactly 5 fields, found 2"), "{err}");
    let err = s.fails(&[
        "create",
        "cronjob",
        "late",
        "--image=busybox",
        "--schedule=0 25 * * *",
    ]);
    assert!(
        err.contains("end of range (25) above maximum (23)"),
        "{err}"
    );
    let err = s.fails(&[
        "patch",
        "cj",
        "tick",
        "--type=merge",
        "-p",
        r#"{"spec":{"timeZone":"Mars/Olympus"}}"#,
    ]);
    assert!(err.contains("spec.timeZone"), "{err}");
    s.ok(&[
        "patch",
        "cj",
        "tick",
        "--type=merge",
        "-p",
        r#"{"spec":{"timeZone":"Etc/UTC","suspend":true}}"#,
    ]);
    let r = s.ok(&["get", "cj", "tick"]);
    assert_eq!(&row(&r, "tick")[6..8], &["Etc/UTC", "True"], "{r}");
}

#[test]
fn autoscalers_budgets_leases_and_get_all() {
    let s = KubeServer::start(&[]);
    s.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=2",
    ]);

    phase("kubectl autoscale creates an HPA readable in autoscaling/v1 and v2");
    let out = s.ok(&[
        "autoscale",
        "deployment",
        "web",
        "--min=1",
        "--max=3",
        "--cpu-percent=50",
    ]);
    assert!(
        out.contains("horizontalpodautoscaler.autoscaling/web autoscaled"),
        "{out}"
    );
    let table = s.ok(&["get", "hpa"]);
    assert_eq!(
        header(&table),
        "NAME REFERENCE TARGETS MINPODS MAXPODS REPLICAS AGE",
        "{table}"
    );
    assert_eq!(
        &row(&table, "web")[..7],
        &[
            "web",
            "Deployment/web",
            "cpu:",
            "<unknown>/50%",
            "1",
            "3",
            "0"
        ],
        "{table}"
    );
    // kubectl 1.32's short-name expansion drops the version of `hpa.v1.autoscaling`
    // (client-go restmapper/shortcut.go), so v1 is read by the full resource name.
    let v1 = json_of(
        &s,
        &["get", "horizontalpodautoscalers.v1.autoscaling", "web"],
    );
    assert_eq!(v1["apiVersion"], "autoscaling/v1");
    assert_eq!(v1["spec"]["targetCPUUtilizationPercentage"], 50);
    assert_eq!(v1["spec"]["minReplicas"], 1);
    assert_eq!(v1["status"]["currentReplicas"], 0);
    let v2 = s.ok(&["get", "hpa.v2.autoscaling", "web", "-o", "yaml"]);
    for want in [
        "apiVersion: autoscaling/v2",
        "averageUtilization: 50",
        "type: Utilization",
        "name: cpu",
        "type: Resource",
    ] {
        assert!(v2.contains(want), "{want} missing:\n{v2}");
    }
    assert!(s
        .ok(&["get", "hpa.v1.autoscaling"])
        .contains("Deployment/web"));

    phase("v2-only metrics ride through v1 in the annotation and come back");
    let patch = r#"[{"op":"add","path":"/spec/metrics/-","value":{"type":"Resource","resource":{"name":"memory","target":{"type":"AverageValue","averageValue":"100Mi"}}}}]"#;
    s.ok(&[
        "patch",
        "hpa.v2.autoscaling",
        "web",
        "--type=json",
        "-p",
        patch,
    ]);
    let v1 = json_of(
        &s,
        &["get", "horizontalpodautoscalers.v1.autoscaling", "web"],
    );
    let ann = v1["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/metrics"]
        .as_str()
        .unwrap_or("");
    assert!(ann.contains("memory") && ann.contains("100Mi"), "{v1}");
    s.ok(&[
        "label",
        "horizontalpodautoscalers.v1.autoscaling",
        "web",
        "team=a",
    ]);
    let v2 = json_of(&s, &["get", "hpa.v2.autoscaling", "web"]);
    assert_eq!(
        v2["spec"]["metrics"].as_array().map(Vec::len),
        Some(2),
        "{v2}"
    );
    assert_eq!(v2["metadata"]["labels"]["team"], "a");
    assert!(
        v2["metadata"]
            .get("annotations")
            .and_then(|a| a.get("autoscaling.alpha.kubernetes.io/metrics"))
            .is_none(),
        "{v2}"
    );
    // A write through v1 puts the annotation's metrics first and the CPU target
    // last, as upstream's conversion does.
    let table = s.ok(&["get", "hpa", "web"]);
    assert!(
        table.contains("memory: <unknown>/100Mi, cpu: <unknown>/50%"),
        "{table}"
    );
    let err = s.fails(&[
        "patch",
        "hpa",
        "web",
        "--type=merge",
        "-p",
        r#"{"spec":{"maxReplicas":0}}"#,
    ]);
    assert!(err.contains("spec.maxReplicas"), "{err}");

    phase("pod disruption budgets");
    s.ok(&[
        "create",
        "pdb",
        "web-pdb",
        "--selector=app=web",
        "--min-available=1",
    ]);
    let table = s.ok(&["get", "pdb"]);
    assert_eq!(
        header(&table),
        "NAME MIN AVAILABLE MAX UNAVAILABLE ALLOWED DISRUPTIONS AGE",
        "{table}"
    );
    assert_eq!(
        &row(&table, "web-pdb")[..4],
        &["web-pdb", "1", "N/A", "0"],
        "{table}"
    );
    let err = s.fails(&[
        "patch",
        "pdb",
        "web-pdb",
        "--type=merge",
        "-p",
        r#"{"spec":{"maxUnavailable":"10%"}}"#,
    ]);
    assert!(
        err.contains("minAvailable and maxUnavailable cannot be both set"),
        "{err}"
    );

    phase("leases");
    let lease = "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: leader\nspec:\n  holderIdentity: node-a\n  leaseDurationSeconds: 15\n";
    let (ok, out, err) = apply(&s, lease);
    assert!(ok, "{out}{err}");
    let table = s.ok(&["get", "leases"]);
    assert_eq!(header(&table), "NAME HOLDER AGE", "{table}");
    assert_eq!(row(&table, "leader")[1], "node-a", "{table}");
    let (ok, _, err) = apply(&s, &lease.replace("15", "0"));
    assert!(!ok && err.contains("spec.leaseDurationSeconds"), "{err}");

    phase("kubectl get all lists the workload kinds");
    s.ok(&["create", "job", "once", "--image=busybox"]);
    s.ok(&[
        "create",
        "cronjob",
        "tick",
        "--image=busybox",
        "--schedule=@hourly",
    ]);
    let all = s.ok(&["get", "all"]);
    for want in [
        "deployment.apps/web",
        "horizontalpodautoscaler.autoscaling/web",
        "job.batch/once",
        "cronjob.batch/tick",
    ] {
        assert!(all.contains(want), "{want} missing:\n{all}");
    }
    assert!(!all.contains("poddisruptionbudget"), "{all}");
    assert!(!all.contains("lease"), "{all}");
}
