//! The OpenAPI documents against the real kubectl: `explain` (OpenAPI v3), client-side
//! `apply` (strategic merge patch metadata from v3, no fallback warnings), `--validate=strict`
//! (kubectl sees `fieldValidation` on PATCH and leaves validation to the server), and the
//! HTTP contract of /openapi/v2 and /openapi/v3 (hashes, ETags, 301/304/406, gzip).

mod common;

use std::io::Read;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::kube::KubeServer;
use serde_json::{json, Value};

fn phase(what: &str) {
    eprintln!("--- {what}");
}

/// A raw HTTPS answer.
struct Http {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Http {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// GETs `path` with the admin client certificate through curl, which leaves the body
/// as sent (no transparent gzip decoding).
fn curl(s: &KubeServer, path: &str, headers: &[&str]) -> Http {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let pki = s.data_dir().join("pki");
    let head = s.dir.path().join(format!("curl-{n}.headers"));
    let body = s.dir.path().join(format!("curl-{n}.body"));
    let mut cmd = Command::new("curl");
    cmd.arg("-sS")
        .arg("--cacert")
        .arg(pki.join("ca.crt"))
        .arg("--cert")
        .arg(pki.join("admin.crt"))
        .arg("--key")
        .arg(pki.join("admin.key"))
        .arg("-D")
        .arg(&head)
        .arg("-o")
        .arg(&body);
    for h in headers {
        cmd.args(["-H", h]);
    }
    cmd.arg(format!("https://127.0.0.1:{}{path}", s.port));
    let out = cmd.output().expect("run curl");
    assert!(
        out.status.success(),
        "curl {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&head).expect("headers");
    let mut lines = text.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Http {
        status,
        headers,
        body: std::fs::read(&body).unwrap_or_default(),
    }
}

/// kubectl with its own cache directory, so no other server's discovery or OpenAPI
/// documents are reused.
fn kubectl(s: &KubeServer, args: &[&str]) -> std::process::Output {
    let cache = s.dir.path().join("kubectl-cache");
    let mut all = vec!["--cache-dir", cache.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    s.kubectl(&all)
}

fn ok(s: &KubeServer, args: &[&str]) -> (String, String) {
    let out = kubectl(s, args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "kubectl {args:?} failed:\n{stderr}\n{}",
        s.log_tail()
    );
    (stdout, stderr)
}

fn fails(s: &KubeServer, args: &[&str]) -> String {
    let out = kubectl(s, args);
    assert!(
        !out.status.success(),
        "kubectl {args:?} unexpectedly succeeded:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs kubectl with `stdin` as the manifest; returns (success, stdout, stderr).
fn with_stdin(s: &KubeServer, args: &[&str], stdin: &str) -> (bool, String, String) {
    let cache = s.dir.path().join("kubectl-cache");
    let mut all = vec!["--cache-dir", cache.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    let out = s.kubectl_stdin(&all, stdin);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Creates a namespace from YAML (`kubectl create namespace` sends protobuf).
fn create_namespace(s: &KubeServer, name: &str) {
    let (good, _, err) = with_stdin(
        s,
        &["create", "-f", "-"],
        &format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"),
    );
    assert!(good, "{err}");
}

fn served(s: &KubeServer, resource: &str) -> bool {
    ok(s, &["api-resources", "-o", "name"])
        .0
        .lines()
        .any(|l| l == resource)
}

/// `kubectl.<version>` beside the `kubectl` on PATH (the machine's dispatcher keeps
/// older releases there).
fn older_kubectl(version: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("kubectl"))
        .find(|k| k.is_file())
        .and_then(|k| std::fs::canonicalize(k).ok())
        .and_then(|k| k.parent().map(|d| d.join(format!("kubectl.{version}"))))
        .filter(|k| k.is_file())
}

/// kubectl's messages when it could not use the v3 document for a patch.
fn assert_no_openapi_fallback(stderr: &str) {
    for bad in [
        "OpenAPI V3 path does not exist",
        "OpenAPI V3 path does not support strategic merge patch",
        "error calculating patch from openapi",
    ] {
        assert!(
            !stderr.contains(bad),
            "kubectl fell back from OpenAPI v3 ({bad}):\n{stderr}"
        );
    }
}

#[test]
fn openapi_documents_over_https() {
    let s = KubeServer::start(&[]);

    phase("the v3 index links every group version by the hash of its document");
    let index = curl(&s, "/openapi/v3", &[]);
    assert_eq!(index.status, 200);
    let paths = index.json()["paths"].clone();
    let url = paths["api/v1"]["serverRelativeURL"]
        .as_str()
        .expect("api/v1 url")
        .to_owned();
    assert!(url.starts_with("/openapi/v3/api/v1?hash="), "{url}");
    let hash = url.rsplit('=').next().expect("hash").to_owned();
    assert_eq!(hash.len(), 128, "SHA-512 in hex");

    phase("a hashed document is immutable and carries its hash as ETag");
    let doc = curl(&s, &url, &["Accept: application/json"]);
    assert_eq!(doc.status, 200);
    assert_eq!(doc.header("cache-control"), Some("public, immutable"));
    assert!(doc.header("expires").is_some_and(|e| e.ends_with("GMT")));
    assert_eq!(doc.header("etag"), Some(format!("\"{hash}\"").as_str()));
    let v3 = doc.json();
    assert_eq!(v3["openapi"], "3.0.0");
    let op = &v3["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"];
    assert_eq!(op["x-kubernetes-action"], "patch");
    assert_eq!(
        op["x-kubernetes-group-version-kind"],
        json!({"group": "", "kind": "ConfigMap", "version": "v1"})
    );
    assert!(op["requestBody"]["content"]["application/strategic-merge-patch+json"].is_object());
    let schemas = &v3["components"]["schemas"];
    assert_eq!(
        schemas["io.k8s.api.core.v1.ConfigMap"]["x-kubernetes-group-version-kind"],
        json!([{"group": "", "kind": "ConfigMap", "version": "v1"}])
    );
    let owners = &schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]["properties"]
        ["ownerReferences"];
    assert_eq!(owners["x-kubernetes-patch-merge-key"], "uid");
    assert_eq!(owners["x-kubernetes-list-map-keys"], json!(["uid"]));

    phase("without a hash the document is the same but not marked immutable");
    let plain = curl(&s, "/openapi/v3/api/v1", &[]);
    assert_eq!(plain.status, 200);
    assert_eq!(plain.body, doc.body);
    assert!(plain.header("cache-control").is_none());

    phase("a stale hash is redirected to the current one; a known ETag gets 304");
    let stale = curl(&s, "/openapi/v3/api/v1?hash=0123", &[]);
    assert_eq!(stale.status, 301);
    assert_eq!(stale.header("location"), Some(url.as_str()));
    let etag = format!("If-None-Match: \"{hash}\"");
    assert_eq!(curl(&s, &url, &[&etag]).status, 304);
    assert_eq!(
        curl(&s, "/openapi/v3/apis/nothing.example.com/v1", &[]).status,
        404
    );

    phase("v2 is one Swagger 2.0 JSON document, gzipped when the client accepts it");
    let v2 = curl(&s, "/openapi/v2", &[]);
    assert_eq!(v2.status, 200);
    assert_eq!(v2.header("content-type"), Some("application/json"));
    assert!(v2.header("content-encoding").is_none());
    let swagger = v2.json();
    assert_eq!(swagger["swagger"], "2.0");
    let defs = &swagger["definitions"];
    assert_eq!(
        defs["io.k8s.api.core.v1.Namespace"]["x-kubernetes-group-version-kind"],
        json!([{"group": "", "kind": "Namespace", "version": "v1"}])
    );
    assert_eq!(
        defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"],
        "int-or-string"
    );
    let gz = curl(&s, "/openapi/v2", &["Accept-Encoding: gzip"]);
    assert_eq!(gz.status, 200);
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(gz.body.as_slice())
        .read_to_end(&mut unzipped)
        .expect("gunzip");
    assert_eq!(unzipped, v2.body);
    eprintln!(
        "/openapi/v2: {} bytes, {} gzipped; /openapi/v3/api/v1: {} bytes",
        v2.body.len(),
        gz.body.len(),
        doc.body.len()
    );

    phase("v2 in protobuf (openapi.v2.Document) when Accept asks for it, as client-go does");
    let pb_type = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
    let pb = curl(&s, "/openapi/v2", &[&format!("Accept: {pb_type}")]);
    assert_eq!(pb.status, 200);
    assert_eq!(
        pb.header("content-type"),
        Some("application/com.github.proto-openapi.spec.v2.v1.0+protobuf"),
        "the spelling Go's media-type parser accepts"
    );
    // Field 1 (swagger, length-delimited): tag 0x0a, length 3, "2.0".
    assert_eq!(
        &pb.body[..5],
        b"\x0a\x032.0",
        "starts with the swagger version"
    );
    assert!(pb.body.len() > 100_000, "{} bytes", pb.body.len());
    let either = curl(
        &s,
        "/openapi/v2",
        &[&format!("Accept: {pb_type};q=0.5, application/json")],
    );
    assert_eq!(either.status, 200);
    assert_eq!(either.body, v2.body);
    assert_eq!(curl(&s, "/openapi/v2", &["Accept: text/html"]).status, 406);

    phase("generation time, as the server logged it");
    let log = std::fs::read_to_string(&s.log).unwrap_or_default();
    let line = log
        .lines()
        .find(|l| l.contains("OpenAPI documents generated"));
    assert!(line.is_some(), "generation is logged once");
    eprintln!("{}", line.unwrap_or_default());
}

#[test]
fn kubectl_explain_reads_the_v3_documents() {
    let s = KubeServer::start(&[]);

    phase("explain a kind: header, description, fields with types");
    let (out, _) = ok(&s, &["explain", "configmap"]);
    assert!(out.contains("KIND:       ConfigMap"), "{out}");
    assert!(out.contains("VERSION:    v1"), "{out}");
    assert!(out.contains("ConfigMap holds configuration data"), "{out}");
    assert!(out.contains("data\t<map[string]string>"), "{out}");
    assert!(out.contains("metadata\t<ObjectMeta>"), "{out}");

    phase("explain --recursive walks references");
    let (out, _) = ok(&s, &["explain", "configmap", "--recursive"]);
    assert!(
        out.contains("  ownerReferences\t<[]OwnerReference>"),
        "{out}"
    );
    assert!(out.contains("    uid\t<string> -required-"), "{out}");

    phase("explain a field path");
    let (out, _) = ok(&s, &["explain", "namespace.spec.finalizers"]);
    assert!(out.contains("FIELD: finalizers <[]string>"), "{out}");
    let err = fails(&s, &["explain", "configmap.nope"]);
    assert!(err.contains("field \"nope\" does not exist"), "{err}");

    if served(&s, "pods") {
        phase("explain pods and their containers");
        let (out, _) = ok(&s, &["explain", "pods"]);
        assert!(out.contains("KIND:       Pod"), "{out}");
        assert!(out.contains("spec\t<PodSpec>"), "{out}");
        let (out, _) = ok(&s, &["explain", "pods.spec.containers"]);
        assert!(out.contains("FIELD: containers <[]Container>"), "{out}");
        assert!(out.contains("image\t<string>"), "{out}");
        assert!(out.contains("name\t<string> -required-"), "{out}");
        let (out, _) = ok(
            &s,
            &["explain", "pods.spec.containers.livenessProbe.httpGet.port"],
        );
        assert!(out.contains("FIELD: port <IntOrString>"), "{out}");
    } else {
        eprintln!("pods are not served by this build yet: their explain checks are skipped");
    }
}

#[test]
fn kubectl_apply_and_validation_use_the_documents() {
    let s = KubeServer::start(&[]);
    create_namespace(&s, "oa");

    phase("apply computes its patch from the v3 metadata: finalizers merge as a set");
    let manifest = |fin: &str, value: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n  namespace: oa\n  finalizers: [{fin}]\ndata:\n  k: {value}\n")
    };
    let (good, _, err) = with_stdin(&s, &["apply", "-f", "-"], &manifest("example.com/a", "v1"));
    assert!(good, "{err}");
    ok(
        &s,
        &[
            "patch",
            "cm",
            "cfg",
            "-n",
            "oa",
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":["example.com/a","example.com/b"]}}"#,
        ],
    );
    // With merge semantics the patch deletes a, adds c and leaves b (set out of band);
    // an atomic list would send [c] alone, which the server's merge would add to [a, b].
    let (good, out, err) = with_stdin(
        &s,
        &["apply", "-f", "-", "-v=8"],
        &manifest("example.com/c", "v2"),
    );
    assert!(good, "{err}");
    assert!(out.contains("configmap/cfg configured"), "{out}");
    assert!(
        err.contains("/openapi/v3/api/v1?hash="),
        "kubectl read the v3 document:\n{err}"
    );
    assert!(
        err.contains("$deleteFromPrimitiveList/finalizers"),
        "patch built with merge semantics:\n{err}"
    );
    assert_no_openapi_fallback(&err);
    let (fin, _) = ok(
        &s,
        &[
            "get",
            "cm",
            "cfg",
            "-n",
            "oa",
            "-o",
            "jsonpath={.metadata.finalizers}",
        ],
    );
    let mut fin: Vec<String> = serde_json::from_str(&fin).expect("finalizers");
    fin.sort();
    assert_eq!(fin, ["example.com/b", "example.com/c"]);
    let (data, _) = ok(
        &s,
        &["get", "cm", "cfg", "-n", "oa", "-o", "jsonpath={.data.k}"],
    );
    assert_eq!(data, "v2");
    ok(
        &s,
        &[
            "patch",
            "cm",
            "cfg",
            "-n",
            "oa",
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":null}}"#,
        ],
    );

    phase(
        "--validate=strict: kubectl leaves validation to the server, which refuses unknown fields",
    );
    let bogus = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bogus\n  namespace: oa\nbogus: true\ndata:\n  k: v\n";
    let (good, _, err) = with_stdin(
        &s,
        &["create", "--validate=strict", "-f", "-", "-v=6"],
        bogus,
    );
    assert!(!good, "an unknown field must fail strict validation");
    assert!(
        err.contains("fieldValidation=Strict"),
        "sent to the server:\n{err}"
    );
    assert!(err.contains("unknown field \"bogus\""), "{err}");
    let (good, _, err) = with_stdin(&s, &["apply", "--validate=strict", "-f", "-"], bogus);
    assert!(
        !good,
        "apply with an unknown field must fail strict validation"
    );
    assert!(err.contains("unknown field \"bogus\""), "{err}");
    phase("a kind: List and a review object validate against the v2 (protobuf) document");
    let (out, _) = ok(&s, &["get", "cm", "-n", "oa", "-o", "yaml"]);
    assert!(out.contains("kind: List"), "{out}");
    let (good, _, err) = with_stdin(&s, &["apply", "-f", "-"], &out);
    assert!(good, "applying a List:\n{err}");
    let (good, out, err) = with_stdin(
        &s,
        &["create", "-f", "-", "-o", "jsonpath={.kind}"],
        "apiVersion: authentication.k8s.io/v1\nkind: TokenReview\nspec:\n  token: not-a-token\n",
    );
    assert!(good, "creating a TokenReview:\n{err}");
    assert_eq!(out, "TokenReview");
    match older_kubectl("1.27") {
        Some(old) => {
            let out = std::process::Command::new(&old)
                .args(["--kubeconfig", s.kubeconfig.to_str().expect("utf-8 path")])
                .args([
                    "--cache-dir",
                    s.dir.path().join("cache-1.27").to_str().expect("utf-8"),
                ])
                .args(["apply", "-f", "-"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .and_then(|mut child| {
                    use std::io::Write;
                    if let Some(mut stdin) = child.stdin.take() {
                        stdin.write_all(manifest("example.com/a", "v27").as_bytes())?;
                    }
                    child.wait_with_output()
                })
                .expect("kubectl 1.27 runs");
            assert!(
                out.status.success(),
                "kubectl 1.27 apply (it reads the v2 document):\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        None => eprintln!("SKIP kubectl 1.27 apply: no kubectl.1.27 beside kubectl on PATH"),
    }

    let (good, _, err) = with_stdin(&s, &["apply", "--validate=false", "-f", "-"], bogus);
    assert!(good, "ignored unknown fields are dropped:\n{err}");
    let (out, _) = ok(&s, &["get", "cm", "bogus", "-n", "oa", "-o", "json"]);
    let cm: Value = serde_json::from_str(&out).expect("json");
    assert!(cm.get("bogus").is_none());
}

#[test]
fn kubectl_apply_merges_deployment_containers_by_name() {
    let s = KubeServer::start(&[]);
    if !served(&s, "deployments.apps") {
        eprintln!("deployments are not served by this build yet: nothing to check");
        return;
    }
    create_namespace(&s, "oa");

    phase("explain reaches into the pod template");
    let (out, _) = ok(&s, &["explain", "deployment.spec.template.spec.containers"]);
    assert!(out.contains("GROUP:      apps"), "{out}");
    assert!(out.contains("KIND:       Deployment"), "{out}");
    assert!(out.contains("FIELD: containers <[]Container>"), "{out}");

    phase("apply a two-container deployment, add a third container out of band");
    let manifest = |image: &str| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: oa\nspec:\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: a\n        image: {image}\n      - name: b\n        image: b:1\n"
        )
    };
    let (good, _, err) = with_stdin(&s, &["apply", "-f", "-"], &manifest("a:1"));
    assert!(good, "{err}");
    ok(
        &s,
        &[
            "patch",
            "deployment",
            "web",
            "-n",
            "oa",
            "-p",
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"s:1"}]}}}}"#,
        ],
    );

    phase("re-apply with one image changed: merged by name, nothing else lost");
    let (good, _, err) = with_stdin(&s, &["apply", "-f", "-", "-v=6"], &manifest("a:2"));
    assert!(good, "{err}");
    assert!(
        err.contains("/openapi/v3/apis/apps/v1?hash="),
        "kubectl read the v3 document:\n{err}"
    );
    assert_no_openapi_fallback(&err);
    let (out, _) = ok(
        &s,
        &[
            "get",
            "deployment",
            "web",
            "-n",
            "oa",
            "-o",
            "jsonpath={range .spec.template.spec.containers[*]}{.name}={.image} {end}",
        ],
    );
    assert_eq!(out.trim(), "a=a:2 b=b:1 sidecar=s:1");
}
