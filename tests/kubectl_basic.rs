//! kubectl against one replica: namespaces, configmaps and secrets through create,
//! get (tables and -o yaml/json), apply, label, patch, delete, and errors.

mod common;

use common::kube::KubeServer;

fn phase(what: &str) {
    eprintln!("--- {what}");
}

#[test]
fn kubectl_everyday_work_on_configmaps_and_namespaces() {
    let s = KubeServer::start(&[]);

    phase("system namespaces exist and print as a table");
    let out = s.ok(&["get", "namespaces"]);
    assert!(out.starts_with("NAME"), "{out}");
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert!(out.contains(ns), "{ns} missing:\n{out}");
    }
    assert!(out.contains("Active"));

    phase("create a namespace and a configmap imperatively");
    s.ok(&["create", "namespace", "demo"]);
    s.ok(&[
        "create",
        "configmap",
        "app",
        "-n",
        "demo",
        "--from-literal=a=1",
        "--from-literal=b=2",
    ]);
    let out = s.ok(&["get", "configmap", "app", "-n", "demo"]);
    assert!(
        out.contains("DATA") && out.contains("app") && out.contains('2'),
        "{out}"
    );
    let yaml = s.ok(&["get", "cm", "app", "-n", "demo", "-o", "yaml"]);
    assert!(yaml.contains("a: \"1\""), "{yaml}");
    assert!(yaml.contains("resourceVersion:"));
    assert!(yaml.contains("uid:"));

    phase("apply creates, then reports unchanged, then configured");
    let manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\n  namespace: demo\ndata:\n  k: v1\n";
    let out = s.kubectl_stdin(&["apply", "-f", "-"], manifest);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("configmap/applied created"));
    let out = s.kubectl_stdin(&["apply", "-f", "-"], manifest);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("configmap/applied unchanged"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = s.kubectl_stdin(
        &["apply", "-f", "-"],
        &manifest
            .replace("v1", "v2")
            .replace("apiVersion: v2", "apiVersion: v1"),
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("configmap/applied configured"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        s.ok(&[
            "get",
            "cm",
            "applied",
            "-n",
            "demo",
            "-o",
            "jsonpath={.data.k}"
        ]),
        "v2"
    );

    phase("label, annotate, selectors, patch");
    s.ok(&["label", "cm", "app", "-n", "demo", "tier=web"]);
    s.ok(&["annotate", "cm", "app", "-n", "demo", "note=hello"]);
    let out = s.ok(&["get", "cm", "-n", "demo", "-l", "tier=web", "-o", "name"]);
    assert_eq!(out.trim(), "configmap/app");
    let out = s.ok(&[
        "get",
        "cm",
        "-n",
        "demo",
        "--field-selector",
        "metadata.name=applied",
        "-o",
        "name",
    ]);
    assert_eq!(out.trim(), "configmap/applied");
    s.ok(&[
        "patch",
        "cm",
        "app",
        "-n",
        "demo",
        "--type=merge",
        "-p",
        "{\"data\":{\"c\":\"3\"}}",
    ]);
    s.ok(&[
        "patch",
        "cm",
        "app",
        "-n",
        "demo",
        "--type=json",
        "-p",
        "[{\"op\":\"remove\",\"path\":\"/data/a\"}]",
    ]);
    assert_eq!(
        s.ok(&["get", "cm", "app", "-n", "demo", "-o", "jsonpath={.data}"]),
        "{\"b\":\"2\",\"c\":\"3\"}"
    );

    phase("secrets keep data base64 and hide it in tables");
    s.ok(&[
        "create",
        "secret",
        "generic",
        "pw",
        "-n",
        "demo",
        "--from-literal=password=s3cret",
    ]);
    assert_eq!(
        s.ok(&[
            "get",
            "secret",
            "pw",
            "-n",
            "demo",
            "-o",
            "jsonpath={.data.password}"
        ]),
        "czNjcmV0"
    );
    let out = s.ok(&["get", "secret", "pw", "-n", "demo"]);
    assert!(out.contains("Opaque"), "{out}");

    phase("errors come back as Status with upstream messages");
    let err = s.fails(&["get", "cm", "nope", "-n", "demo"]);
    assert!(err.contains("configmaps \"nope\" not found"), "{err}");
    let err = s.fails(&["create", "configmap", "app", "-n", "demo"]);
    assert!(err.contains("already exists"), "{err}");
    let err = s.fails(&["create", "configmap", "Bad_Name", "-n", "demo"]);
    assert!(
        err.contains("is invalid") && err.contains("metadata.name"),
        "{err}"
    );
    let err = s.fails(&["create", "configmap", "x", "-n", "missing-ns"]);
    assert!(err.contains("namespaces \"missing-ns\" not found"), "{err}");
    let err = s.fails(&["delete", "namespace", "kube-system"]);
    assert!(err.contains("may not be deleted"), "{err}");

    phase("delete --dry-run=server (dryRun in the DeleteOptions body) removes nothing");
    let out = s.ok(&["delete", "cm", "app", "-n", "demo", "--dry-run=server"]);
    assert!(out.contains("(server dry run)"), "{out}");
    let out = s.ok(&["delete", "cm", "--all", "-n", "demo", "--dry-run=server"]);
    assert!(out.contains("(server dry run)"), "{out}");
    let names = s.ok(&["get", "cm", "-n", "demo", "-o", "name"]);
    assert!(names.contains("configmap/app"), "{names}");
    assert!(names.contains("configmap/kube-root-ca.crt"), "{names}");

    phase("delete a configmap, then the namespace: it empties and goes");
    s.ok(&["delete", "cm", "app", "-n", "demo"]);
    s.fails(&["get", "cm", "app", "-n", "demo"]);
    s.ok(&["delete", "namespace", "demo", "--timeout=60s"]);
    let err = s.fails(&["get", "namespace", "demo"]);
    assert!(err.contains("not found"), "{err}");
}
