//! The Kubernetes protobuf encoding end to end: kubectl's typed commands (which send
//! protobuf bodies and prefer protobuf answers) against one replica, and raw HTTPS
//! requests checked with an independent decoder of the wire format (`k8s\0` envelope,
//! runtime.Unknown, the kinds' field numbers, length-prefixed watch frames).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use common::kube::KubeServer;
use serde_json::Value;

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

fn phase(what: &str) {
    eprintln!("--- {what}");
}

#[test]
fn kubectl_typed_commands_speak_protobuf() {
    let s = KubeServer::start(&[]);

    phase("create namespace sends a protobuf body and reads a protobuf answer");
    let out = s.kubectl(&["create", "namespace", "demo", "-v=8"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}\n{}", s.log_tail());
    assert!(
        log.contains(&format!("Content-Type: {PROTOBUF}")),
        "kubectl did not send protobuf:\n{log}"
    );
    assert!(log.contains("201 Created"), "{log}");
    assert_eq!(
        s.ok(&["get", "namespace", "demo", "-o", "jsonpath={.status.phase}"]),
        "Active"
    );
    // Go writes every optional string, empty ones included; they stay unset here.
    let ns: Value =
        serde_json::from_str(&s.ok(&["get", "namespace", "demo", "-o", "json"])).expect("json");
    let meta = ns["metadata"].as_object().expect("metadata");
    for unset in ["generateName", "namespace", "selfLink"] {
        assert!(!meta.contains_key(unset), "{unset} in {meta:?}");
    }

    phase("configmaps, secrets and service accounts");
    s.ok(&[
        "create",
        "configmap",
        "x",
        "-n",
        "demo",
        "--from-literal=a=b",
    ]);
    assert_eq!(
        s.ok(&["get", "cm", "x", "-n", "demo", "-o", "jsonpath={.data.a}"]),
        "b"
    );
    s.ok(&[
        "create",
        "secret",
        "generic",
        "s",
        "-n",
        "demo",
        "--from-literal=p=q",
    ]);
    assert_eq!(
        s.ok(&[
            "get",
            "secret",
            "s",
            "-n",
            "demo",
            "-o",
            "jsonpath={.data.p}"
        ]),
        "cQ=="
    );
    let all: Vec<u8> = (0..=255u8).rev().collect();
    let file = s.dir.path().join("bin");
    std::fs::write(&file, &all).expect("write");
    let from_file = format!("--from-file=bin={}", file.display());
    s.ok(&["create", "secret", "generic", "b", "-n", "demo", &from_file]);
    assert_eq!(
        s.ok(&[
            "get",
            "secret",
            "b",
            "-n",
            "demo",
            "-o",
            "jsonpath={.data.bin}"
        ]),
        base64::engine::general_purpose::STANDARD.encode(&all),
        "binary secret data must survive byte for byte"
    );
    s.ok(&["create", "serviceaccount", "sa1", "-n", "demo"]);
    assert_eq!(
        s.ok(&["get", "sa", "sa1", "-n", "demo", "-o", "name"])
            .trim(),
        "serviceaccount/sa1"
    );

    phase("create deployment: Go's plain zero values stay unset, pointer zeros are values");
    s.ok(&[
        "create",
        "deployment",
        "web",
        "--image=nginx",
        "--replicas=0",
        "-n",
        "demo",
    ]);
    let d: Value =
        serde_json::from_str(&s.ok(&["get", "deploy", "web", "-n", "demo", "-o", "json"]))
            .expect("json");
    assert_eq!(d["spec"]["replicas"], 0, "{d}");
    let spec = d["spec"].as_object().expect("spec");
    assert!(
        !spec.contains_key("paused") && !spec.contains_key("minReadySeconds"),
        "{d}"
    );
    let pod = d["spec"]["template"]["spec"].as_object().expect("pod spec");
    assert!(!pod.contains_key("hostNetwork"), "{d}");
    let c = pod["containers"][0].as_object().expect("container");
    assert!(!c.contains_key("stdin") && !c.contains_key("tty"), "{d}");
    assert_eq!(c["image"], "nginx");

    phase("errors come back as Status whatever the encoding");
    let err = s.fails(&["create", "namespace", "demo"]);
    assert!(
        err.contains("AlreadyExists") || err.contains("already exists"),
        "{err}"
    );
}

#[test]
fn raw_protobuf_requests_responses_and_watches() {
    let s = KubeServer::start(&[]);
    let client = Https::new(&s);
    s.ok(&["create", "namespace", "demo"]);
    s.ok(&[
        "create",
        "configmap",
        "x",
        "-n",
        "demo",
        "--from-literal=a=b",
    ]);

    phase("GET with Accept protobuf answers a k8s\\0-enveloped Namespace");
    let r = client.request(
        "GET",
        "/api/v1/namespaces/demo",
        &[("Accept", PROTOBUF)],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("content-type"), Some(PROTOBUF));
    let (av, kind, raw) = envelope(&r.body);
    assert_eq!((av.as_str(), kind.as_str()), ("v1", "Namespace"));
    assert_eq!(name_of(&raw), "demo");

    phase("a list is a ConfigMapList message of ConfigMap items");
    let r = client.request(
        "GET",
        "/api/v1/namespaces/demo/configmaps",
        &[(
            "Accept",
            "application/vnd.kubernetes.protobuf, application/json",
        )],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let (_, kind, raw) = envelope(&r.body);
    assert_eq!(kind, "ConfigMapList");
    let items: Vec<Vec<u8>> = fields(&raw)
        .into_iter()
        .filter(|f| f.0 == 2)
        .map(|f| f.1)
        .collect();
    // Items are ConfigMap messages (x, and the controllers' kube-root-ca.crt).
    let x = items
        .iter()
        .find(|i| name_of(i) == "x")
        .expect("configmap x in the list");
    let data: Vec<(String, Vec<u8>)> = fields(x)
        .into_iter()
        .filter(|f| f.0 == 2)
        .map(|f| {
            let e = fields(&f.1);
            (
                String::from_utf8_lossy(&e[0].1).into_owned(),
                e[1].1.clone(),
            )
        })
        .collect();
    assert_eq!(data, vec![("a".to_owned(), b"b".to_vec())]);

    phase("create with a protobuf body built here");
    let cm = envelope_of(
        "v1",
        "ConfigMap",
        &cat(&[
            msg(1, &msg(1, b"from-raw")),
            msg(2, &cat(&[msg(1, b"k"), msg(2, b"v")])),
        ]),
    );
    let r = client.request(
        "POST",
        "/api/v1/namespaces/demo/configmaps",
        &[("Content-Type", PROTOBUF), ("Accept", PROTOBUF)],
        &cm,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let (_, kind, raw) = envelope(&r.body);
    assert_eq!(
        (kind.as_str(), name_of(&raw).as_str()),
        ("ConfigMap", "from-raw")
    );
    assert_eq!(
        s.ok(&[
            "get",
            "cm",
            "from-raw",
            "-n",
            "demo",
            "-o",
            "jsonpath={.data.k}"
        ]),
        "v"
    );

    phase("a malformed protobuf body is a 400 Status");
    for bad in [
        &b"k8s\0\x0a\xff\xff"[..],
        b"not protobuf at all",
        b"k8s\0\x0a\x04\x0a\x02v1",
    ] {
        let r = client.request(
            "POST",
            "/api/v1/namespaces/demo/configmaps",
            &[("Content-Type", PROTOBUF), ("Accept", "application/json")],
            bad,
        );
        assert_eq!(r.status, 400, "{bad:?}: {}", r.text());
        let status: Value = serde_json::from_slice(&r.body).expect("Status");
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["reason"], "BadRequest");
    }

    phase("a protobuf watch streams length-prefixed WatchEvents around enveloped objects");
    let mut watch = client.open(
        "GET",
        "/api/v1/namespaces/demo/configmaps?watch=1&timeoutSeconds=60",
        &[(
            "Accept",
            "application/vnd.kubernetes.protobuf, application/json",
        )],
    );
    assert_eq!(watch.status, 200);
    assert_eq!(
        watch.header("content-type"),
        Some("application/vnd.kubernetes.protobuf;stream=watch")
    );
    let mut seen = Vec::new();
    while !seen.contains(&"from-raw".to_owned()) || !seen.contains(&"x".to_owned()) {
        let (ty, obj) = watch.event();
        assert_eq!(ty, "ADDED");
        seen.push(name_of(&envelope(&obj).2));
    }
    s.ok(&[
        "create",
        "configmap",
        "live",
        "-n",
        "demo",
        "--from-literal=z=1",
    ]);
    let (ty, obj) = watch.event();
    assert_eq!(ty, "ADDED");
    let (av, kind, raw) = envelope(&obj);
    assert_eq!(
        (av.as_str(), kind.as_str(), name_of(&raw).as_str()),
        ("v1", "ConfigMap", "live")
    );
}

/// Needs apiserver/mod.rs to answer errors through `negotiate::error_response`.
#[test]
fn errors_are_protobuf_status_when_protobuf_is_negotiated() {
    let s = KubeServer::start(&[]);
    let client = Https::new(&s);
    let r = client.request(
        "GET",
        "/api/v1/namespaces/default/configmaps/nope",
        &[(
            "Accept",
            "application/vnd.kubernetes.protobuf, application/json",
        )],
        b"",
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.header("content-type"), Some(PROTOBUF), "{}", r.text());
    let (av, kind, raw) = envelope(&r.body);
    assert_eq!((av.as_str(), kind.as_str()), ("v1", "Status"));
    // meta.v1.Status: status = 2, reason = 4, code = 6.
    let f = fields(&raw);
    let get = |n: u64| {
        f.iter()
            .find(|x| x.0 == n)
            .map(|x| x.1.clone())
            .unwrap_or_default()
    };
    assert_eq!(get(2), b"Failure");
    assert_eq!(get(4), b"NotFound");
    assert_eq!(f.iter().find(|x| x.0 == 6).map(|x| x.2), Some(404));
}

// ---------------------------------------------------------------------------
// An independent reader and writer of the wire format.

/// The fields of a message: (number, bytes for length-delimited, varint value).
fn fields(mut b: &[u8]) -> Vec<(u64, Vec<u8>, u64)> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b);
        match key & 7 {
            0 => out.push((key >> 3, Vec::new(), varint(&mut b))),
            2 => {
                let n = varint(&mut b) as usize;
                out.push((key >> 3, b[..n].to_vec(), 0));
                b = &b[n..];
            }
            w => panic!("unexpected wire type {w}"),
        }
    }
    out
}

fn varint(b: &mut &[u8]) -> u64 {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = b[0];
        *b = &b[1..];
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            break;
        }
    }
    v
}

/// (apiVersion, kind, raw) of a `k8s\0` + runtime.Unknown body.
fn envelope(body: &[u8]) -> (String, String, Vec<u8>) {
    assert!(
        body.starts_with(b"k8s\0"),
        "not enveloped: {:?}",
        &body[..body.len().min(16)]
    );
    let f = fields(&body[4..]);
    let tm = fields(&f.iter().find(|x| x.0 == 1).expect("typeMeta").1);
    let text = |n: u64| {
        String::from_utf8_lossy(&tm.iter().find(|x| x.0 == n).expect("field").1).into_owned()
    };
    let raw = f
        .iter()
        .find(|x| x.0 == 2)
        .map(|x| x.1.clone())
        .unwrap_or_default();
    (text(1), text(2), raw)
}

/// metadata (1) → name (1) of an object message.
fn name_of(raw: &[u8]) -> String {
    let meta = fields(raw)
        .into_iter()
        .find(|x| x.0 == 1)
        .expect("metadata")
        .1;
    let name = fields(&meta)
        .into_iter()
        .find(|x| x.0 == 1)
        .expect("name")
        .1;
    String::from_utf8(name).expect("utf-8")
}

fn msg(n: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put_varint(&mut out, (n << 3) | 2);
    put_varint(&mut out, body.len() as u64);
    out.extend_from_slice(body);
    out
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn envelope_of(api_version: &str, kind: &str, raw: &[u8]) -> Vec<u8> {
    let tm = cat(&[msg(1, api_version.as_bytes()), msg(2, kind.as_bytes())]);
    cat(&[b"k8s\0".to_vec(), msg(1, &tm), msg(2, raw)])
}

// ---------------------------------------------------------------------------
// A minimal HTTPS/1.1 client with the admin kubeconfig's client certificate.

struct Https {
    config: Arc<rustls::ClientConfig>,
    port: u16,
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A response whose body is still arriving (a watch).
struct Stream {
    status: u16,
    headers: Vec<(String, String)>,
    tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    /// Raw bytes after the headers not yet de-chunked.
    pending: Vec<u8>,
    /// De-chunked body bytes not yet consumed.
    body: Vec<u8>,
}

impl Stream {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The next watch frame: (type, object.raw).
    fn event(&mut self) -> (String, Vec<u8>) {
        loop {
            if self.body.len() >= 4 {
                let n = u32::from_be_bytes([self.body[0], self.body[1], self.body[2], self.body[3]])
                    as usize;
                if self.body.len() >= 4 + n {
                    let frame: Vec<u8> = self.body.drain(..4 + n).skip(4).collect();
                    let f = fields(&frame);
                    let ty = String::from_utf8_lossy(&f.iter().find(|x| x.0 == 1).expect("type").1)
                        .into_owned();
                    let ext = fields(&f.iter().find(|x| x.0 == 2).expect("object").1);
                    let raw = ext.iter().find(|x| x.0 == 1).expect("raw").1.clone();
                    return (ty, raw);
                }
            }
            // De-chunk what has arrived: <hex size>\r\n<data>\r\n.
            if let Some(eol) = find(&self.pending, b"\r\n") {
                let size = usize::from_str_radix(
                    std::str::from_utf8(&self.pending[..eol])
                        .expect("size")
                        .trim(),
                    16,
                )
                .expect("chunk size");
                assert!(size > 0, "the watch ended early");
                if self.pending.len() >= eol + 2 + size + 2 {
                    self.body
                        .extend_from_slice(&self.pending[eol + 2..eol + 2 + size]);
                    self.pending.drain(..eol + 2 + size + 2);
                    continue;
                }
            }
            let mut buf = [0u8; 16384];
            let n = self.tls.read(&mut buf).expect("read watch");
            assert!(n > 0, "the watch closed");
            self.pending.extend_from_slice(&buf[..n]);
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Https {
    fn new(s: &KubeServer) -> Https {
        let text = std::fs::read_to_string(&s.kubeconfig).expect("kubeconfig");
        let kc: Value = serde_saphyr::from_str(&text).expect("kubeconfig yaml");
        let pem = |v: &Value| {
            base64::engine::general_purpose::STANDARD
                .decode(v.as_str().expect("base64 field"))
                .expect("base64")
        };
        let ca = pem(&kc["clusters"][0]["cluster"]["certificate-authority-data"]);
        let cert = pem(&kc["users"][0]["user"]["client-certificate-data"]);
        let key = pem(&kc["users"][0]["user"]["client-key-data"]);
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pemfile::certs(&mut ca.as_slice()) {
            roots.add(c.expect("ca cert")).expect("add ca");
        }
        let chain: Vec<_> = rustls_pemfile::certs(&mut cert.as_slice())
            .map(|c| c.expect("client cert"))
            .collect();
        let key = rustls_pemfile::private_key(&mut key.as_slice())
            .expect("key")
            .expect("a private key");
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .expect("client auth");
        Https {
            config: Arc::new(config),
            port: s.port,
        }
    }

    /// Sends a request and reads the status line and headers.
    fn open(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Stream {
        self.send(method, path, headers, b"")
    }

    fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Stream {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").expect("server name");
        let conn = rustls::ClientConnection::new(self.config.clone(), name).expect("tls");
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        tls.write_all(req.as_bytes()).expect("write");
        tls.write_all(body).expect("write body");
        tls.flush().expect("flush");
        let mut raw = Vec::new();
        let end = loop {
            if let Some(end) = find(&raw, b"\r\n\r\n") {
                break end;
            }
            let mut buf = [0u8; 4096];
            let n = tls.read(&mut buf).expect("read headers");
            assert!(n > 0, "connection closed before the headers");
            raw.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|c| c.parse().ok())
            .expect("status line");
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Stream {
            status,
            headers,
            tls,
            pending: raw[end + 4..].to_vec(),
            body: Vec::new(),
        }
    }

    /// A whole request and response (the server closes the connection after it).
    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
        let mut st = self.send(method, path, headers, body);
        let mut rest = std::mem::take(&mut st.pending);
        let _ = st.tls.read_to_end(&mut rest);
        let chunked = st.header("transfer-encoding") == Some("chunked");
        let body = if chunked {
            let mut out = Vec::new();
            let mut b = rest.as_slice();
            while let Some(eol) = find(b, b"\r\n") {
                let size =
                    usize::from_str_radix(std::str::from_utf8(&b[..eol]).expect("size").trim(), 16)
                        .expect("chunk");
                if size == 0 {
                    break;
                }
                out.extend_from_slice(&b[eol + 2..eol + 2 + size]);
                b = &b[eol + 2 + size + 2..];
            }
            out
        } else {
            rest
        };
        Reply {
            status: st.status,
            headers: st.headers,
            body,
        }
    }
}
