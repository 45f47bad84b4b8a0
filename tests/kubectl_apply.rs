//! `kubectl apply --server-side` against one replica: field ownership as upstream
//! records it (managedFields with Apply and Update entries), conflicts with fields
//! another manager owns (409 with FieldManagerConflict causes, nothing written),
//! `--force-conflicts`, removal of fields a manager stopped applying while fields
//! other managers own stay; patches that change nothing write nothing, and a JSON
//! patch can `test` the resourceVersion (optimistic concurrency for patches).

mod common;

use common::kube::{json_of, phase, KubeServer};
use serde_json::Value;

fn deployment(replicas: u32, image: &str, labels: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels:\n{labels}spec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: web\n        image: {image}\n"
    )
}

fn managers(obj: &Value) -> Vec<(String, String)> {
    obj["metadata"]["managedFields"]
        .as_array()
        .map(|l| {
            l.iter()
                .map(|e| {
                    (
                        e["manager"].as_str().unwrap_or_default().to_owned(),
                        e["operation"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `kubectl apply --server-side` of `manifest` with `flags`: its output, or its error.
fn ssa(s: &KubeServer, flags: &[&str], manifest: &str) -> Result<String, String> {
    let mut args = vec!["apply", "--server-side"];
    args.extend_from_slice(flags);
    args.extend(["-f", "-"]);
    let out = s.kubectl_stdin(&args, manifest);
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// `what` (e.g. `deployment/web`) with its managedFields.
fn get(s: &KubeServer, what: &str) -> Value {
    json_of(s, &["get", what, "-o", "json", "--show-managed-fields"])
}

#[test]
fn server_side_apply_owns_conflicts_and_removes_fields() {
    let s = KubeServer::start(&[]);

    phase("the first apply creates the object; kubectl owns exactly what it applied");
    let out = ssa(
        &s,
        &[],
        &deployment(2, "nginx:1", "    app: web\n    tier: front\n"),
    )
    .expect("apply");
    assert!(out.contains("serverside-applied"), "{out}");
    let d = get(&s, "deployment/web");
    assert_eq!(managers(&d), [("kubectl".to_owned(), "Apply".to_owned())]);
    let fields = &d["metadata"]["managedFields"][0]["fieldsV1"];
    assert_eq!(fields["f:spec"]["f:replicas"], serde_json::json!({}));
    assert!(
        fields["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"web\"}"]["f:image"]
            .is_object(),
        "the container is a keyed item: {fields}"
    );
    assert!(
        fields["f:spec"].get("f:revisionHistoryLimit").is_none(),
        "defaulted fields belong to no manager: {fields}"
    );

    phase("another manager scales it: it takes .spec.replicas");
    s.ok(&["scale", "deployment", "web", "--replicas=5"]);
    let d = get(&s, "deployment/web");
    assert_eq!(d["spec"]["replicas"], 5);
    assert!(
        managers(&d).contains(&("kubectl".to_owned(), "Update".to_owned()))
            || managers(&d).iter().any(|(_, op)| op == "Update"),
        "{:?}",
        managers(&d)
    );

    phase("applying a different replica count now conflicts, and writes nothing");
    let err = ssa(
        &s,
        &["--field-manager=deployer"],
        &deployment(3, "nginx:1", "    app: web\n    tier: front\n"),
    )
    .expect_err("a conflicting apply succeeded");
    assert!(err.contains("Apply failed with"), "{err}");
    assert!(err.contains(".spec.replicas"), "{err}");
    assert_eq!(
        get(&s, "deployment/web")["spec"]["replicas"],
        5,
        "nothing written"
    );

    phase("an apply configuration with a patch directive is refused");
    let directive = deployment(3, "nginx:1", "    app: web\n").replace(
        "  replicas: 3\n",
        "  replicas: 3\n  $retainKeys: [replicas]\n",
    );
    let err = ssa(&s, &["--field-manager=deployer"], &directive).expect_err("a directive");
    assert!(err.contains("$retainKeys"), "{err}");

    phase("--force-conflicts takes the field");
    ssa(
        &s,
        &["--force-conflicts", "--field-manager=deployer"],
        &deployment(3, "nginx:1", "    app: web\n    tier: front\n"),
    )
    .expect("apply");
    let d = get(&s, "deployment/web");
    assert_eq!(d["spec"]["replicas"], 3);
    assert!(managers(&d).contains(&("deployer".to_owned(), "Apply".to_owned())));

    phase("a label set by another manager survives; a label kubectl stops applying goes");
    s.ok(&["label", "deployment", "web", "team=blue"]);
    ssa(&s, &[], &deployment(3, "nginx:1", "    app: web\n")).expect("apply");
    let labels = get(&s, "deployment/web")["metadata"]["labels"].clone();
    assert_eq!(labels["app"], "web");
    assert_eq!(
        labels["team"], "blue",
        "another manager's label stays: {labels}"
    );
    assert!(
        labels.get("tier").is_some(),
        "deployer still applies tier, so it stays: {labels}"
    );
    ssa(
        &s,
        &["--field-manager=deployer"],
        &deployment(3, "nginx:1", "    app: web\n"),
    )
    .expect("apply");
    let labels = get(&s, "deployment/web")["metadata"]["labels"].clone();
    assert!(
        labels.get("tier").is_none(),
        "no manager applies tier any more: {labels}"
    );
    assert_eq!(labels["team"], "blue");

    phase("the same apply twice changes nothing (no new resourceVersion)");
    let rv = get(&s, "deployment/web")["metadata"]["resourceVersion"].clone();
    ssa(
        &s,
        &["--field-manager=deployer"],
        &deployment(3, "nginx:1", "    app: web\n"),
    )
    .expect("apply");
    assert_eq!(get(&s, "deployment/web")["metadata"]["resourceVersion"], rv);

    phase("a patch that changes nothing keeps the resourceVersion");
    let out = s.ok(&[
        "patch",
        "deployment",
        "web",
        "-p",
        r#"{"spec":{"replicas":3}}"#,
    ]);
    assert!(out.contains("(no change)"), "{out}");
    assert_eq!(get(&s, "deployment/web")["metadata"]["resourceVersion"], rv);

    phase("a JSON patch tests the resourceVersion: current passes, stale fails");
    let rv = rv.as_str().unwrap_or_default().to_owned();
    let guarded = |at: &str, replicas: u32| {
        format!(
            r#"[{{"op":"test","path":"/metadata/resourceVersion","value":"{at}"}},{{"op":"replace","path":"/spec/replicas","value":{replicas}}}]"#
        )
    };
    s.ok(&[
        "patch",
        "deployment",
        "web",
        "--type=json",
        "-p",
        &guarded(&rv, 6),
    ]);
    let d = get(&s, "deployment/web");
    assert_eq!(d["spec"]["replicas"], 6);
    assert_ne!(d["metadata"]["resourceVersion"].as_str(), Some(rv.as_str()));
    let err = s.fails(&[
        "patch",
        "deployment",
        "web",
        "--type=json",
        "-p",
        &guarded(&rv, 7),
    ]);
    assert!(err.contains("/metadata/resourceVersion"), "{err}");
    assert_eq!(
        get(&s, "deployment/web")["spec"]["replicas"],
        6,
        "a failed test writes nothing"
    );
}

#[test]
fn client_side_apply_moves_to_server_side_apply() {
    let s = KubeServer::start(&[]);
    let cm = |data: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n{data}")
    };

    phase("client-side apply first: kubectl-client-side-apply owns the data");
    let out = s.kubectl_stdin(&["apply", "-f", "-"], &cm("  a: \"1\"\n  b: \"2\"\n"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let before = get(&s, "cm/settings");
    assert_eq!(
        managers(&before),
        [("kubectl-client-side-apply".to_owned(), "Update".to_owned())]
    );

    phase("server-side apply without b: kubectl takes the fields over (its JSON patch of managedFields), so b goes");
    ssa(&s, &[], &cm("  a: \"1\"\n")).expect("apply");
    let after = get(&s, "cm/settings");
    assert_eq!(after["data"], serde_json::json!({"a": "1"}), "{after}");
    assert!(
        managers(&after).contains(&("kubectl".to_owned(), "Apply".to_owned())),
        "{:?}",
        managers(&after)
    );
}
