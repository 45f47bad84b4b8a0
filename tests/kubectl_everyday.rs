//! The kubectl commands of everyday work not covered elsewhere — `edit`, `diff`,
//! `get -w`, `--chunk-size` — and what bad input gets over the wire: malformed JSON and
//! YAML (400), a kind or apiVersion that does not match the URL (400), bodies over
//! 3 MiB (413), unknown media types (415), each as a `Status` with code and reason, and
//! nothing stored after any of them.
//!
//! Invariant: every step runs the real kubectl (or curl with the admin certificate,
//! where kubectl cannot send the bad request) against a real replica.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::kube::KubeServer;
use serde_json::Value;

fn phase(what: &str) {
    eprintln!("--- {what}");
}

/// curl with the admin client certificate; returns (HTTP code, body).
fn curl(s: &KubeServer, method: &str, path: &str, content_type: &str, body: &[u8]) -> (u16, Value) {
    let pki = s.data_dir().join("pki");
    let body_file = s.dir.path().join("curl-body");
    std::fs::write(&body_file, body).expect("write body");
    let out = Command::new("curl")
        .args(["-sS", "-o", "-", "-w", "\n%{http_code}", "-X", method])
        .arg("--cacert")
        .arg(pki.join("ca.crt"))
        .arg("--cert")
        .arg(pki.join("admin.crt"))
        .arg("--key")
        .arg(pki.join("admin.key"))
        .args(["-H", &format!("Content-Type: {content_type}")])
        .arg("--data-binary")
        .arg(format!("@{}", body_file.display()))
        .arg(format!("https://127.0.0.1:{}{path}", s.port))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').expect("curl printed the code");
    let code: u16 = code.trim().parse().expect("http code");
    let body = serde_json::from_str(body).unwrap_or(Value::String(body.to_owned()));
    (code, body)
}

fn configmap_names(s: &KubeServer) -> Vec<String> {
    let list: Value =
        serde_json::from_str(&s.ok(&["get", "configmaps", "-o", "json"])).expect("list json");
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["metadata"]["name"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn edit_diff_watch_and_chunked_lists() {
    let s = KubeServer::start(&[]);

    phase("edit: the editor's change is saved, a no-op edit changes nothing");
    s.ok(&[
        "create",
        "configmap",
        "edited",
        "--from-literal=colour=blue",
    ]);
    let editor = s.dir.path().join("editor.sh");
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i 's/colour: blue/colour: green/' \"$1\"\n",
    )
    .expect("editor");
    Command::new("chmod")
        .arg("+x")
        .arg(&editor)
        .status()
        .expect("chmod");
    let edit = Command::new("kubectl")
        .env("KUBECONFIG", &s.kubeconfig)
        .env("KUBE_EDITOR", &editor)
        .args(["edit", "configmap", "edited"])
        .output()
        .expect("kubectl edit");
    assert!(
        edit.status.success(),
        "kubectl edit failed: {}",
        String::from_utf8_lossy(&edit.stderr)
    );
    assert!(String::from_utf8_lossy(&edit.stdout).contains("configmap/edited edited"));
    assert_eq!(
        s.ok(&[
            "get",
            "configmap",
            "edited",
            "-o",
            "jsonpath={.data.colour}"
        ]),
        "green"
    );
    let rv_before = s.ok(&[
        "get",
        "configmap",
        "edited",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    let noop = Command::new("kubectl")
        .env("KUBECONFIG", &s.kubeconfig)
        .env("KUBE_EDITOR", "true")
        .args(["edit", "configmap", "edited"])
        .output()
        .expect("kubectl edit");
    assert!(String::from_utf8_lossy(&noop.stderr).contains("Edit cancelled, no changes made"));
    assert_eq!(
        s.ok(&[
            "get",
            "configmap",
            "edited",
            "-o",
            "jsonpath={.metadata.resourceVersion}"
        ]),
        rv_before
    );

    phase("diff: exit 1 and a unified diff when the object would change, 0 when not");
    let manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: edited\n  namespace: default\ndata:\n  colour: red\n";
    let diff = Command::new("kubectl")
        .env("KUBECONFIG", &s.kubeconfig)
        .args(["diff", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .expect("stdin")
                .write_all(manifest.as_bytes())?;
            c.wait_with_output()
        })
        .expect("kubectl diff");
    let out = String::from_utf8_lossy(&diff.stdout);
    assert_eq!(
        diff.status.code(),
        Some(1),
        "diff: {out} {}",
        String::from_utf8_lossy(&diff.stderr)
    );
    assert!(
        out.contains("-  colour: green") && out.contains("+  colour: red"),
        "{out}"
    );
    assert_eq!(
        s.ok(&[
            "get",
            "configmap",
            "edited",
            "-o",
            "jsonpath={.data.colour}"
        ]),
        "green",
        "diff must not change the object (it is a server-side dry run)"
    );

    phase("get -w: the watch prints the object, then each change");
    let mut watch = Command::new("kubectl")
        .env("KUBECONFIG", &s.kubeconfig)
        .args([
            "get",
            "configmaps",
            "-w",
            "--output-watch-events",
            "-o",
            "custom-columns=EVENT:.type,NAME:.object.metadata.name,COLOUR:.object.data.colour",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kubectl get -w");
    let (tx, rx) = mpsc::channel();
    let stdout = watch.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let wait_for = |want: &str, seen: &mut Vec<String>| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if seen
                .iter()
                .any(|l| l.split_whitespace().collect::<Vec<_>>().join(" ") == want)
            {
                return;
            }
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
                seen.push(line);
            }
        }
        panic!("the watch never printed {want:?}; it printed {seen:?}");
    };
    wait_for("ADDED edited green", &mut seen);
    s.ok(&[
        "create",
        "configmap",
        "watched",
        "--from-literal=colour=grey",
    ]);
    wait_for("ADDED watched grey", &mut seen);
    s.ok(&[
        "patch",
        "configmap",
        "watched",
        "-p",
        r#"{"data":{"colour":"white"}}"#,
    ]);
    wait_for("MODIFIED watched white", &mut seen);
    s.ok(&["delete", "configmap", "watched"]);
    wait_for("DELETED watched white", &mut seen);
    let _ = watch.kill();
    let _ = watch.wait();

    phase("--chunk-size: a list is fetched in pages and still complete");
    for i in 0..23 {
        s.ok(&["create", "configmap", &format!("page-{i:02}")]);
    }
    let chunked = s.kubectl(&["get", "configmaps", "--chunk-size=5", "-o", "name", "-v=6"]);
    assert!(chunked.status.success());
    let names = String::from_utf8_lossy(&chunked.stdout);
    let pages: Vec<&str> = names.lines().filter(|l| l.contains("page-")).collect();
    assert_eq!(pages.len(), 23, "every object, once: {names}");
    let log = String::from_utf8_lossy(&chunked.stderr);
    let requests = log.matches("limit=5").count();
    assert!(
        requests >= 5 && log.contains("continue="),
        "kubectl paged with limit=5 and continue tokens: {log}"
    );
}

#[test]
fn bad_input_gets_a_status_and_stores_nothing() {
    let s = KubeServer::start(&[]);
    let path = "/api/v1/namespaces/default/configmaps";
    let before = configmap_names(&s);

    phase("malformed JSON and YAML: 400 BadRequest");
    let (code, status) = curl(
        &s,
        "POST",
        path,
        "application/json",
        b"{\"kind\": \"ConfigMap\",",
    );
    assert_eq!(code, 400, "{status}");
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "BadRequest");
    assert_eq!(status["code"], 400);
    let (code, status) = curl(
        &s,
        "POST",
        path,
        "application/yaml",
        b"kind: [ConfigMap\n  bad: :",
    );
    assert_eq!(code, 400, "{status}");
    assert_eq!(status["reason"], "BadRequest");

    phase("a kind or apiVersion that does not match the URL: 400");
    let secret = br#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"wrong-kind"}}"#;
    let (code, status) = curl(&s, "POST", path, "application/json", secret);
    assert_eq!(code, 400, "{status}");
    assert_eq!(status["reason"], "BadRequest");
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("Secret") || message.contains("kind"),
        "{message}"
    );
    let version =
        br#"{"apiVersion":"apps/v1","kind":"ConfigMap","metadata":{"name":"wrong-version"}}"#;
    let (code, status) = curl(&s, "POST", path, "application/json", version);
    assert_eq!(code, 400, "{status}");

    phase("a body over 3 MiB: 413 RequestEntityTooLarge");
    let mut big =
        br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"too-big"},"data":{"x":""#
            .to_vec();
    big.extend(std::iter::repeat_n(b'a', 3 * 1024 * 1024 + 1));
    big.extend(br#""}}"#);
    let (code, status) = curl(&s, "POST", path, "application/json", &big);
    assert_eq!(code, 413, "{status}");
    assert_eq!(status["reason"], "RequestEntityTooLarge");

    phase("an unknown media type: 415 UnsupportedMediaType");
    let ok_body = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"odd-type"}}"#;
    let (code, status) = curl(&s, "POST", path, "text/csv", ok_body);
    assert_eq!(code, 415, "{status}");
    assert_eq!(status["reason"], "UnsupportedMediaType");

    phase("an invalid object: 422 with field causes");
    let invalid = br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}"#;
    let (code, status) = curl(&s, "POST", path, "application/json", invalid);
    assert_eq!(code, 422, "{status}");
    assert_eq!(status["reason"], "Invalid");
    assert_eq!(status["details"]["causes"][0]["field"], "metadata.name");

    phase("nothing was stored");
    assert_eq!(configmap_names(&s), before);
    let (code, _) = curl(&s, "POST", path, "application/json", ok_body);
    assert_eq!(code, 201, "the same server still creates a good object");
}
