//! Observability end to end. A three-member cluster serving the Kubernetes API gets
//! real traffic (kubectl, a kubectl watch, etcd puts and an etcd watch) and is scraped
//! on both ports; then every metric the dashboards (`grafana/dashboards/*.json`) and
//! the alerting rules (`deploy/alerts.yml`) name must be exported, `docs/metrics.md`
//! must list exactly the exported families, the dashboards and provisioning must be
//! well formed, and Debian's promtool must accept `deploy/prometheus.yml`, the rules,
//! and unit tests of the rules.
//!
//! Invariant: the repository's observability files name only metrics the server
//! exports; every wait polls with a deadline.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use etcd_client::WatchOptions;
use serde_json::Value;

fn phase(what: &str) {
    eprintln!("--- {what}");
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// Polls `check` every 100 ms until it returns Some, failing after `timeout`.
fn poll<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------------
// A cluster of replicas that each serve the Kubernetes API.
// ---------------------------------------------------------------------------------

struct Replica {
    secure_port: u16,
    client_port: u16,
    log: PathBuf,
    child: Child,
}

struct KubeCluster {
    _dir: tempfile::TempDir,
    kubeconfig: PathBuf,
    replicas: Vec<Replica>,
}

impl KubeCluster {
    /// Starts `n` members sharing one PKI from `kuberaft certs`, with small snapshot
    /// intervals so snapshots happen during the test.
    fn start(n: usize) -> KubeCluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let pki = dir.path().join("pki");
        let ports: Vec<(u16, u16, u16)> = (0..n)
            .map(|_| {
                (
                    common::free_port(),
                    common::free_port(),
                    common::free_port(),
                )
            })
            .collect();
        let out = Command::new(common::binary())
            .arg("certs")
            .arg("--cert-dir")
            .arg(&pki)
            .args(["--hosts", "127.0.0.1,localhost"])
            .args(["--server", &format!("https://127.0.0.1:{}", ports[0].0)])
            .output()
            .expect("run kuberaft certs");
        assert!(
            out.status.success(),
            "kuberaft certs failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("m{i}=http://127.0.0.1:{}", p.2))
            .collect();
        let initial = initial.join(",");
        let replicas = ports
            .iter()
            .enumerate()
            .map(|(i, &(secure, client, peer))| {
                let log = dir.path().join(format!("m{i}.log"));
                let log_file = std::fs::File::create(&log).expect("log file");
                let child = Command::new(common::binary())
                    .arg("serve")
                    .args(["--name", &format!("m{i}")])
                    .arg("--data-dir")
                    .arg(dir.path().join(format!("m{i}")))
                    .args(["--secure-port", &secure.to_string()])
                    .arg("--cert-dir")
                    .arg(&pki)
                    .args([
                        "--listen-client-urls",
                        &format!("http://127.0.0.1:{client}"),
                    ])
                    .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
                    .args(["--initial-cluster", &initial])
                    .args(["--initial-cluster-state", "new"])
                    .args(["--initial-cluster-token", "observability"])
                    .args(["--snapshot-count", "40"])
                    .env("RUST_LOG", "info,openraft=warn")
                    .stdout(Stdio::null())
                    .stderr(log_file)
                    .spawn()
                    .expect("spawn kuberaft");
                Replica {
                    secure_port: secure,
                    client_port: client,
                    log,
                    child,
                }
            })
            .collect();
        KubeCluster {
            kubeconfig: pki.join("admin.kubeconfig"),
            _dir: dir,
            replicas,
        }
    }

    fn kubectl(&self, i: usize, args: &[&str]) -> Output {
        self.kubectl_command(i, args).output().expect("run kubectl")
    }

    fn kubectl_command(&self, i: usize, args: &[&str]) -> Command {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--server")
            .arg(format!(
                "https://127.0.0.1:{}",
                self.replicas[i].secure_port
            ))
            .args(args);
        cmd
    }

    fn ok(&self, i: usize, args: &[&str]) -> String {
        let out = self.kubectl(i, args);
        assert!(
            out.status.success(),
            "kubectl {args:?} on m{i} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until every member answers /readyz and the leader's controllers made
    /// the default ServiceAccount.
    fn wait_ready(&self) {
        for i in 0..self.replicas.len() {
            poll(&format!("m{i} ready"), Duration::from_secs(90), || {
                let out = self.kubectl(i, &["get", "--raw", "/readyz"]);
                (out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok"))
                    .then_some(())
            });
        }
        poll(
            "the default ServiceAccount",
            Duration::from_secs(60),
            || {
                self.kubectl(0, &["get", "serviceaccount", "default", "-n", "default"])
                    .status
                    .success()
                    .then_some(())
            },
        );
    }

    /// /metrics of the secure port (as the admin user).
    fn scrape_secure(&self, i: usize) -> Scrape {
        Scrape::parse(&self.ok(i, &["get", "--raw", "/metrics"]))
    }

    /// /metrics of the client port (plain HTTP).
    fn scrape_client(&self, i: usize) -> Scrape {
        Scrape::parse(&http_get(self.replicas[i].client_port, "/metrics"))
    }

    fn client_url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.replicas[i].client_port)
    }
}

impl Drop for KubeCluster {
    fn drop(&mut self) {
        for r in &mut self.replicas {
            let _ = r.child.kill();
            let _ = r.child.wait();
        }
        if std::thread::panicking() {
            for (i, r) in self.replicas.iter().enumerate() {
                let text = std::fs::read_to_string(&r.log).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(30)..].join("\n");
                eprintln!("---- log of m{i} ----\n{tail}");
            }
        }
    }
}

/// A GET over plain HTTP/1.1; returns the body of a 200 answer.
fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the client port");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("send request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read answer");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").expect("HTTP head");
    assert!(head.starts_with("HTTP/1.1 200"), "GET {path}: {head}");
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

// ---------------------------------------------------------------------------------
// The Prometheus text format.
// ---------------------------------------------------------------------------------

#[derive(Default)]
struct Scrape {
    /// Family name → type, from `# TYPE` lines.
    types: BTreeMap<String, String>,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut s = Scrape::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut it = rest.split_whitespace();
                if let (Some(name), Some(kind)) = (it.next(), it.next()) {
                    s.types.insert(name.to_owned(), kind.to_owned());
                }
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (head, value) = line.rsplit_once(' ').expect("sample line has a value");
            let value = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().unwrap_or(f64::NAN),
            };
            let (name, labels) = match head.split_once('{') {
                Some((name, labels)) => (name, parse_labels(labels.trim_end_matches('}'))),
                None => (head, BTreeMap::new()),
            };
            s.samples.push((name.to_owned(), labels, value));
        }
        s
    }

    /// The sum of the samples of `name` whose labels include `want`, if any match.
    fn value(&self, name: &str, want: &[(&str, &str)]) -> Option<f64> {
        let matching: Vec<f64> = self
            .samples
            .iter()
            .filter(|(n, labels, _)| {
                n == name
                    && want
                        .iter()
                        .all(|(k, v)| labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| *v)
            .collect();
        (!matching.is_empty()).then(|| matching.iter().sum())
    }

    fn families(&self) -> BTreeSet<String> {
        self.types.keys().cloned().collect()
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut chars = text.chars().peekable();
    loop {
        let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
        if key.is_empty() {
            return labels;
        }
        assert_eq!(chars.next(), Some('"'), "label {key} is quoted");
        let mut value = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(other) => value.push(other),
                    None => break,
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').trim().to_owned(), value);
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
}

// ---------------------------------------------------------------------------------
// Metric names in PromQL.
// ---------------------------------------------------------------------------------

/// Metric names an expression reads: identifiers that are not inside label matchers,
/// ranges, strings or grouping lists, and are not functions, keywords, numbers or
/// Grafana variables.
fn metric_names(expr: &str) -> BTreeSet<String> {
    const GROUPING: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    // Aggregation operators may be followed by `by (...)` instead of `(`.
    const KEYWORDS: &[&str] = &[
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    let b: Vec<char> = expr.chars().collect();
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut out = BTreeSet::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&b, i);
        } else if c == '{' {
            i = skip_group(&b, i, '}');
        } else if c == '[' {
            i = skip_group(&b, i, ']');
        } else if c == '$' {
            i += 1;
            if b.get(i) == Some(&'{') {
                i = skip_group(&b, i, '}');
            } else {
                while i < b.len() && is_ident(b[i]) {
                    i += 1;
                }
            }
        } else if c.is_ascii_digit() || c == '.' {
            while i < b.len() && (is_ident(b[i]) || b[i] == '.') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < b.len() && is_ident(b[i]) {
                i += 1;
            }
            let word: String = b[start..i].iter().collect();
            let mut j = i;
            while j < b.len() && b[j].is_whitespace() {
                j += 1;
            }
            let call = b.get(j) == Some(&'(');
            if GROUPING.contains(&word.as_str()) {
                if call {
                    i = skip_group(&b, j, ')');
                }
            } else if !call && !KEYWORDS.contains(&word.as_str()) {
                out.insert(word);
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Index after the string starting at `start`.
fn skip_string(b: &[char], start: usize) -> usize {
    let quote = b[start];
    let mut i = start + 1;
    while i < b.len() {
        if b[i] == '\\' && quote != '`' {
            i += 2;
            continue;
        }
        if b[i] == quote {
            return i + 1;
        }
        i += 1;
    }
    i
}

/// Index after the `close` that ends the group opening at `start`, skipping strings.
fn skip_group(b: &[char], start: usize, close: char) -> usize {
    let open = b[start];
    let mut depth = 0;
    let mut i = start;
    while i < b.len() {
        let c = b[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(b, i);
            continue;
        }
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return i + 1;
            }
        }
        i += 1;
    }
    i
}

/// Every PromQL expression of a dashboard: panel targets (rows included), annotation
/// queries and `label_values(metric, label)` variables (as the metric).
fn dashboard_exprs(dash: &Value) -> Vec<String> {
    fn panels(list: &Value, out: &mut Vec<String>) {
        for p in list.as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(e) = t["expr"].as_str() {
                    out.push(e.to_owned());
                }
            }
            panels(&p["panels"], out);
        }
    }
    let mut out = Vec::new();
    panels(&dash["panels"], &mut out);
    for a in dash["annotations"]["list"].as_array().into_iter().flatten() {
        if let Some(e) = a["expr"].as_str() {
            out.push(e.to_owned());
        }
    }
    for v in dash["templating"]["list"].as_array().into_iter().flatten() {
        let q = v["query"]["query"].as_str().or(v["query"].as_str());
        if let (Some("query"), Some(q)) = (v["type"].as_str(), q) {
            let inner = q
                .strip_prefix("label_values(")
                .and_then(|r| r.rsplit_once(','))
                .map(|(metric, _)| metric)
                .unwrap_or_else(|| {
                    panic!("variable {} is not label_values(metric, label)", v["name"])
                });
            out.push(inner.to_owned());
        }
    }
    out
}

fn dashboards() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(repo("grafana/dashboards")).expect("grafana/dashboards") {
        let path = entry.expect("dir entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read dashboard");
        let json: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        out.push((path.display().to_string(), json));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[derive(serde::Deserialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(serde::Deserialize)]
struct RuleGroup {
    name: String,
    rules: Vec<Rule>,
}

#[derive(serde::Deserialize)]
struct Rule {
    record: Option<String>,
    alert: Option<String>,
    expr: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

fn alert_rules() -> RuleFile {
    serde_saphyr::from_str(&read("deploy/alerts.yml")).expect("deploy/alerts.yml parses")
}

/// Families `docs/metrics.md` lists: the backquoted first cell of its table rows.
fn documented_families() -> BTreeSet<String> {
    read("docs/metrics.md")
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once('`'))
        .map(|(name, _)| name.to_owned())
        .collect()
}

/// Whether `name` (maybe a histogram's `_bucket`, `_sum` or `_count`) is exported.
fn is_exported(name: &str, families: &BTreeSet<String>) -> bool {
    families.contains(name)
        || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
            name.strip_suffix(suffix)
                .is_some_and(|base| families.contains(base))
        })
}

// ---------------------------------------------------------------------------------
// The tests.
// ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_alerts_and_docs_name_exactly_the_exported_metrics() {
    phase("three members serving the Kubernetes API start and elect a leader");
    let cluster = KubeCluster::start(3);
    cluster.wait_ready();
    let leader = poll(
        "a member that says it leads",
        Duration::from_secs(30),
        || {
            (0..3).find(|&i| {
                cluster.scrape_client(i).value("etcd_server_is_leader", &[]) == Some(1.0)
            })
        },
    );
    let follower = (leader + 1) % 3;

    phase("kubectl traffic: create, a conflicting create, list and get");
    cluster.ok(0, &["create", "configmap", "obs-a", "--from-literal=k=v"]);
    let dup = cluster.kubectl(0, &["create", "configmap", "obs-a", "--from-literal=k=v"]);
    assert!(!dup.status.success(), "a second create must conflict");
    assert!(cluster.ok(0, &["get", "configmaps"]).contains("obs-a"));
    cluster.ok(0, &["get", "configmap", "obs-a", "-o", "json"]);
    cluster.ok(1, &["get", "namespaces"]);

    phase("a kubectl watch counts as long-running while open and sees an event");
    let mut watch = cluster
        .kubectl_command(0, &["get", "configmaps", "-w", "-o", "name"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn kubectl watch");
    let (lines_tx, lines) = mpsc::channel::<String>();
    let stdout = watch.stdout.take().expect("watch stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let first = lines
        .recv_timeout(Duration::from_secs(30))
        .expect("the watch lists first");
    assert!(first.starts_with("configmap/"), "{first}");
    cluster.ok(1, &["create", "configmap", "obs-watch"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .expect("the watch reports obs-watch within 30 s");
        if line.contains("obs-watch") {
            break;
        }
    }
    let watching = [("verb", "WATCH"), ("resource", "configmaps")];
    let open = cluster
        .scrape_secure(0)
        .value("apiserver_longrunning_requests", &watching);
    assert_eq!(open, Some(1.0), "one open configmaps watch on m0");
    let sent = cluster.scrape_secure(0).value(
        "apiserver_watch_events_total",
        &[("resource", "configmaps")],
    );
    assert!(sent.unwrap_or(0.0) >= 1.0, "watch events sent: {sent:?}");
    let _ = watch.kill();
    let _ = watch.wait();
    poll(
        "apiserver_longrunning_requests back to 0 after the watcher left",
        Duration::from_secs(30),
        || {
            (cluster
                .scrape_secure(0)
                .value("apiserver_longrunning_requests", &watching)
                == Some(0.0))
            .then_some(())
        },
    );

    phase("etcd traffic: puts through a follower seen by a watch on the leader");
    let mut watcher = common::connect(&[cluster.client_url(leader)]).await;
    let mut stream = watcher
        .watch("obs/", Some(WatchOptions::new().with_prefix()))
        .await
        .expect("etcd watch");
    let mut writer = common::connect(&[cluster.client_url(follower)]).await;
    for i in 0..60 {
        writer
            .put(format!("obs/k{i}"), "v", None)
            .await
            .expect("etcd put");
    }
    let seen = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            let resp = stream
                .message()
                .await
                .expect("watch message")
                .expect("watch open");
            if let Some(kv) = resp.events().first().and_then(|e| e.kv()) {
                return String::from_utf8_lossy(kv.key()).into_owned();
            }
        }
    })
    .await
    .expect("a watch event within 15 s");
    assert!(seen.starts_with("obs/k"), "{seen}");
    let health = http_get(cluster.replicas[leader].client_port, "/health");
    assert!(health.contains("\"health\":\"true\""), "{health}");

    phase("snapshots are built (every 40 entries) and timed");
    poll(
        "a member that built a snapshot",
        Duration::from_secs(60),
        || {
            (0..3).find(|&i| {
                let s = cluster.scrape_client(i);
                s.value("etcd_debugging_snap_save_total_num", &[])
                    .unwrap_or(0.0)
                    >= 1.0
                    && s.value("etcd_debugging_snap_save_total_duration_seconds_count", &[])
                        .unwrap_or(0.0)
                        >= 1.0
            })
        },
    );

    phase("request, Raft and process figures carry upstream's labels and buckets");
    let m0 = cluster.scrape_secure(0);
    let created = [("verb", "POST"), ("resource", "configmaps")];
    assert!(
        m0.value(
            "apiserver_request_total",
            &[created[0], created[1], ("code", "201")]
        ) >= Some(1.0)
    );
    assert!(
        m0.value(
            "apiserver_request_total",
            &[created[0], created[1], ("code", "409")]
        ) >= Some(1.0),
        "the conflicting create is counted with its code"
    );
    assert!(
        m0.value(
            "apiserver_request_duration_seconds_bucket",
            &[("verb", "LIST"), ("le", "1")]
        )
        .is_some(),
        "the 1 s bucket the latency SLO rules read"
    );
    assert!(
        m0.value(
            "apiserver_response_sizes_bucket",
            &[
                ("verb", "LIST"),
                ("resource", "configmaps"),
                ("le", "10000000000")
            ]
        ) >= Some(1.0),
        "response sizes use upstream's buckets"
    );
    assert!(m0.value("authentication_attempts", &[("result", "success")]) >= Some(1.0));
    assert!(
        m0.value("etcd_request_errors_total", &[("type", "configmaps")]) >= Some(1.0),
        "the conflicting create is a storage error"
    );
    let mut families = BTreeSet::new();
    for i in 0..3 {
        let client = cluster.scrape_client(i);
        let secure = cluster.scrape_secure(i);
        for s in [&client, &secure] {
            assert_eq!(s.value("etcd_server_has_leader", &[]), Some(1.0), "m{i}");
            assert!(
                s.value("kuberaft_raft_commit_index", &[]) >= Some(1.0),
                "m{i}"
            );
            assert_eq!(
                s.value("etcd_server_quota_backend_bytes", &[]),
                Some(f64::from(2u32 << 30)),
                "m{i}"
            );
            assert!(
                s.value("process_start_time_seconds", &[]) > Some(0.0),
                "m{i}"
            );
            assert!(
                s.value("process_resident_memory_bytes", &[]) > Some(0.0),
                "m{i}"
            );
            families.extend(s.families());
        }
        assert!(
            secure.families().contains("apiserver_request_total")
                && client.families().contains("apiserver_request_total"),
            "both ports render the one registry"
        );
    }
    let lead = cluster.scrape_client(leader);
    assert!(
        lead.value("etcd_network_peer_round_trip_time_seconds_count", &[]) > Some(0.0),
        "the leader timed its peer round trips"
    );
    assert!(lead
        .value("kuberaft_raft_follower_lag_entries", &[])
        .is_some());
    families.extend(lead.families());

    phase("every metric the dashboards and alerts name is exported");
    let rules = alert_rules();
    let recorded: BTreeSet<String> = rules
        .groups
        .iter()
        .flat_map(|g| g.rules.iter().filter_map(|r| r.record.clone()))
        .collect();
    // `up` is written by Prometheus for every target; recorded series by the rules.
    let is_known =
        |name: &str| name == "up" || recorded.contains(name) || is_exported(name, &families);
    let mut missing = BTreeSet::new();
    let mut used = BTreeSet::new();
    for (path, dash) in dashboards() {
        for expr in dashboard_exprs(&dash) {
            for name in metric_names(&expr) {
                if !is_known(&name) {
                    missing.insert(format!("{name} (in {path})"));
                }
                used.insert(name);
            }
        }
    }
    for rule in rules.groups.iter().flat_map(|g| &g.rules) {
        for name in metric_names(&rule.expr) {
            if !is_known(&name) {
                missing.insert(format!("{name} (in deploy/alerts.yml)"));
            }
            used.insert(name);
        }
    }
    assert!(missing.is_empty(), "not exported: {missing:#?}");
    assert!(
        used.len() > 40,
        "the tokenizer found only {used:?} in the dashboards and alerts"
    );

    phase("docs/metrics.md lists exactly the exported families");
    let documented = documented_families();
    let undocumented: Vec<&String> = families.difference(&documented).collect();
    let stale: Vec<&String> = documented.difference(&families).collect();
    assert!(
        undocumented.is_empty(),
        "exported but not in docs/metrics.md: {undocumented:?}"
    );
    assert!(
        stale.is_empty(),
        "in docs/metrics.md but not exported: {stale:?}"
    );
}

#[test]
fn dashboards_and_provisioning_are_well_formed() {
    phase("each dashboard parses, has a datasource variable and an instance variable");
    let boards = dashboards();
    let paths: Vec<&String> = boards.iter().map(|(p, _)| p).collect();
    assert!(boards.len() >= 3, "three dashboards: {paths:?}");
    let mut uids = BTreeSet::new();
    for (path, dash) in &boards {
        let uid = dash["uid"].as_str().expect("uid");
        assert!(uids.insert(uid.to_owned()), "{path}: uid {uid} repeated");
        assert!(
            dash["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{path}"
        );
        let vars = dash["templating"]["list"].as_array().expect("templating");
        assert!(
            vars.iter().any(|v| v["name"] == "datasource"
                && v["type"] == "datasource"
                && v["query"] == "prometheus"),
            "{path}: a Prometheus datasource variable"
        );
        assert!(
            vars.iter()
                .any(|v| v["name"] == "instance" && v["type"] == "query"),
            "{path}: an instance variable"
        );

        phase("every panel has a datasource and PromQL targets naming metrics");
        let mut ids = BTreeSet::new();
        let mut stack: Vec<&Value> = dash["panels"].as_array().expect("panels").iter().collect();
        let mut count = 0;
        while let Some(p) = stack.pop() {
            let title = p["title"].as_str().unwrap_or("?");
            let id = p["id"].as_u64().expect("panel id");
            assert!(ids.insert(id), "{path}: panel id {id} repeated");
            let grid = &p["gridPos"];
            assert!(
                grid["w"].as_u64().is_some_and(|w| (1..=24).contains(&w))
                    && grid["h"].as_u64().is_some(),
                "{path}: {title}: gridPos"
            );
            if p["type"] == "row" {
                stack.extend(p["panels"].as_array().into_iter().flatten());
                continue;
            }
            count += 1;
            assert_eq!(
                p["datasource"]["uid"], "${datasource}",
                "{path}: {title}: datasource"
            );
            let targets = p["targets"].as_array().expect("targets");
            assert!(!targets.is_empty(), "{path}: {title}: no targets");
            for t in targets {
                assert_eq!(t["datasource"]["uid"], "${datasource}", "{path}: {title}");
                let expr = t["expr"].as_str().unwrap_or("");
                assert!(
                    !metric_names(expr).is_empty(),
                    "{path}: {title}: expr {expr:?} names no metric"
                );
            }
        }
        assert!(count >= 10, "{path}: only {count} panels");
    }

    phase("every job the dashboards and alerts select is a job of deploy/prometheus.yml");
    let config = read("deploy/prometheus.yml");
    let mut texts: Vec<String> = boards
        .iter()
        .flat_map(|(_, d)| dashboard_exprs(d))
        .collect();
    texts.extend(
        alert_rules()
            .groups
            .into_iter()
            .flat_map(|g| g.rules)
            .map(|r| r.expr),
    );
    let mut jobs = 0;
    for text in &texts {
        for (_, rest) in text
            .match_indices("job=\"")
            .map(|(i, m)| text.split_at(i + m.len()))
        {
            let job = rest.split('"').next().unwrap_or("");
            assert!(
                config.contains(&format!("job_name: {job}\n")),
                "job {job:?} is not scraped by deploy/prometheus.yml"
            );
            jobs += 1;
        }
    }
    assert!(jobs >= 2, "the job selectors were not found");

    phase("provisioning points where docker-compose mounts the dashboards");
    let compose = read("deploy/docker-compose.yml");
    let provider = read("grafana/provisioning/dashboards/kuberaft.yml");
    let datasource = read("grafana/provisioning/datasources/prometheus.yml");
    assert!(compose.contains("../grafana/dashboards:/var/lib/grafana/dashboards"));
    assert!(compose.contains("../grafana/provisioning:/etc/grafana/provisioning"));
    assert!(provider.contains("path: /var/lib/grafana/dashboards"));
    assert!(
        datasource.contains("type: prometheus") && datasource.contains("http://prometheus:9090")
    );
    assert!(compose.contains("./prometheus.yml:/etc/prometheus/prometheus.yml"));
    assert!(compose.contains("./alerts.yml:/etc/prometheus/alerts.yml"));
}

#[test]
fn alerts_have_severity_summary_and_the_required_rules() {
    phase("the alerting rules the operations guide promises exist and are labelled");
    let rules = alert_rules();
    let alerts: Vec<&Rule> = rules
        .groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter(|r| r.alert.is_some())
        .collect();
    for name in [
        "KuberaftNoLeader",
        "KuberaftFrequentLeaderChanges",
        "KuberaftSlowFsync",
        "KuberaftHigh5xxRate",
        "KuberaftLatencySLOBurn",
        "KuberaftMemberDown",
        "KuberaftDatabaseNearQuota",
    ] {
        assert!(
            alerts.iter().any(|r| r.alert.as_deref() == Some(name)),
            "missing alert {name}"
        );
    }
    for r in &alerts {
        let name = r.alert.as_deref().unwrap_or("?");
        assert!(
            matches!(
                r.labels.get("severity").map(String::as_str),
                Some("critical" | "warning")
            ),
            "{name}: severity"
        );
        assert!(r.annotations.contains_key("summary"), "{name}: summary");
    }
    assert!(rules.groups.iter().all(|g| !g.name.is_empty()));
}

/// Unit tests of the alerting rules, run by `promtool test rules` against a copy of
/// deploy/alerts.yml without annotations (so only labels are compared).
const RULE_TESTS: &str = r#"
rule_files:
  - alerts.yml
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
      - series: 'etcd_server_has_leader{instance="kuberaft-0",job="kuberaft-etcd"}'
        values: '1 1 0x10'
      - series: 'etcd_server_has_leader{instance="kuberaft-1",job="kuberaft-etcd"}'
        values: '1x12'
      - series: 'etcd_server_leader_changes_seen_total{instance="kuberaft-1",job="kuberaft-etcd"}'
        values: '0 1 2 3 4 5 5x60'
      - series: 'up{instance="kuberaft-0",job="kuberaft-etcd"}'
        values: '1 0x20'
      - series: 'up{instance="kuberaft-1",job="kuberaft-etcd"}'
        values: '1x20'
      - series: 'up{instance="kuberaft-2",job="kuberaft-etcd"}'
        values: '1 0x20'
    alert_rule_test:
      - eval_time: 30s
        alertname: KuberaftNoLeader
        exp_alerts: []
      - eval_time: 2m
        alertname: KuberaftNoLeader
        exp_alerts:
          - exp_labels: {severity: critical, instance: kuberaft-0, job: kuberaft-etcd}
      - eval_time: 7m
        alertname: KuberaftFrequentLeaderChanges
        exp_alerts:
          - exp_labels: {severity: warning, instance: kuberaft-1, job: kuberaft-etcd}
      - eval_time: 4m
        alertname: KuberaftInsufficientMembers
        exp_alerts:
          - exp_labels: {severity: critical, job: kuberaft-etcd}
      - eval_time: 4m
        alertname: KuberaftMemberDown
        exp_alerts:
          - exp_labels: {severity: warning, instance: kuberaft-0, job: kuberaft-etcd}
          - exp_labels: {severity: warning, instance: kuberaft-2, job: kuberaft-etcd}
  - interval: 1m
    input_series:
      # 100 non-long-running requests a minute, 20 of them over 1 s and 10 failing;
      # a flood of watches that must not count against the latency objective.
      - series: 'apiserver_request_duration_seconds_bucket{instance="kuberaft-0",verb="LIST",le="1"}'
        values: '0+80x120'
      - series: 'apiserver_request_duration_seconds_count{instance="kuberaft-0",verb="LIST"}'
        values: '0+100x120'
      - series: 'apiserver_request_duration_seconds_bucket{instance="kuberaft-0",verb="WATCH",le="1"}'
        values: '0x120'
      - series: 'apiserver_request_duration_seconds_count{instance="kuberaft-0",verb="WATCH"}'
        values: '0+100000x120'
      - series: 'apiserver_request_total{instance="kuberaft-0",verb="LIST",code="200"}'
        values: '0+90x120'
      - series: 'apiserver_request_total{instance="kuberaft-0",verb="LIST",code="500"}'
        values: '0+10x120'
      - series: 'etcd_disk_wal_fsync_duration_seconds_bucket{instance="kuberaft-2",le="0.512"}'
        values: '0x120'
      - series: 'etcd_disk_wal_fsync_duration_seconds_bucket{instance="kuberaft-2",le="1.024"}'
        values: '0+10x120'
      - series: 'etcd_disk_wal_fsync_duration_seconds_bucket{instance="kuberaft-2",le="+Inf"}'
        values: '0+10x120'
      - series: 'etcd_mvcc_db_total_size_in_bytes{instance="kuberaft-1"}'
        values: '1800000000x120'
      - series: 'etcd_server_quota_backend_bytes{instance="kuberaft-1"}'
        values: '2147483648x120'
    alert_rule_test:
      - eval_time: 20m
        alertname: KuberaftLatencySLOBurn
        exp_alerts:
          - exp_labels: {severity: critical, long: 1h, short: 5m}
          - exp_labels: {severity: warning, long: 6h, short: 30m}
      - eval_time: 20m
        alertname: KuberaftHigh5xxRate
        exp_alerts:
          - exp_labels: {severity: warning, instance: kuberaft-0}
      - eval_time: 20m
        alertname: KuberaftSlowFsync
        exp_alerts:
          - exp_labels: {severity: warning, instance: kuberaft-2}
      - eval_time: 20m
        alertname: KuberaftDatabaseNearQuota
        exp_alerts:
          - exp_labels: {severity: warning, instance: kuberaft-1}
  - interval: 1m
    input_series:
      # Fast requests and long watches: watches do not count, so no latency alert.
      - series: 'apiserver_request_duration_seconds_bucket{instance="kuberaft-0",verb="GET",le="1"}'
        values: '0+100x120'
      - series: 'apiserver_request_duration_seconds_count{instance="kuberaft-0",verb="GET"}'
        values: '0+100x120'
      - series: 'apiserver_request_duration_seconds_bucket{instance="kuberaft-0",verb="WATCH",le="1"}'
        values: '0x120'
      - series: 'apiserver_request_duration_seconds_count{instance="kuberaft-0",verb="WATCH"}'
        values: '0+100x120'
    alert_rule_test:
      - eval_time: 60m
        alertname: KuberaftLatencySLOBurn
        exp_alerts: []
"#;

/// deploy/alerts.yml without its `annotations:` blocks.
fn without_annotations(rules: &str) -> String {
    let mut out = String::new();
    let mut skip_deeper_than: Option<usize> = None;
    for line in rules.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(depth) = skip_deeper_than {
            if line.trim().is_empty() || indent > depth {
                continue;
            }
            skip_deeper_than = None;
        }
        if line.trim() == "annotations:" {
            skip_deeper_than = Some(indent);
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

fn promtool(args: &[&str], dir: &Path) -> Output {
    Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool")
}

#[test]
fn promtool_accepts_the_prometheus_config_and_the_rules() {
    if Command::new("promtool").arg("--version").output().is_err() {
        eprintln!("skipped: promtool is not installed (apt-get install prometheus)");
        return;
    }
    let tmp = tempfile::tempdir().expect("temp dir");

    phase("promtool check rules deploy/alerts.yml");
    let out = promtool(&["check", "rules", "alerts.yml"], &repo("deploy"));
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    phase("promtool check config, with the certificate files kuberaft certs writes");
    let config = read("deploy/prometheus.yml");
    let pki = kuberaft::pki::PkiPaths::new(Path::new("/etc/kuberaft/pki"));
    for file in [pki.ca_cert(), pki.admin_cert(), pki.admin_key()] {
        assert!(
            config.contains(&file.display().to_string()),
            "deploy/prometheus.yml names {}",
            file.display()
        );
    }
    // promtool checks that certificate files exist; the compose file mounts them at
    // /etc/kuberaft/pki, so the copy points at placeholders instead.
    let placeholders = tmp.path().join("pki");
    std::fs::create_dir(&placeholders).expect("mkdir");
    for name in ["ca.crt", "admin.crt", "admin.key"] {
        std::fs::write(placeholders.join(name), "").expect("placeholder");
    }
    let copy = config.replace(
        "/etc/kuberaft/pki/",
        &format!("{}/", placeholders.display()),
    );
    std::fs::write(tmp.path().join("prometheus.yml"), copy).expect("write config");
    std::fs::write(tmp.path().join("alerts.yml"), read("deploy/alerts.yml")).expect("rules");
    let out = promtool(&["check", "config", "prometheus.yml"], tmp.path());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 rule files found"), "{text}");

    phase("promtool test rules: each alert fires on its condition and only then");
    let rules_dir = tmp.path().join("rules");
    std::fs::create_dir(&rules_dir).expect("mkdir");
    std::fs::write(
        rules_dir.join("alerts.yml"),
        without_annotations(&read("deploy/alerts.yml")),
    )
    .expect("rules copy");
    std::fs::write(rules_dir.join("alerts_test.yml"), RULE_TESTS).expect("rule tests");
    let out = promtool(&["test", "rules", "alerts_test.yml"], &rules_dir);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_tokenizer_finds_metrics_and_only_metrics() {
    let names = metric_names(
        r#"histogram_quantile(0.99, sum by (instance, le) (rate(etcd_disk_wal_fsync_duration_seconds_bucket{instance=~"$instance", le!="1"}[$__rate_interval]))) > 0.5 and on (instance) up{job="x"} offset 5m"#,
    );
    let expected: BTreeSet<String> = ["etcd_disk_wal_fsync_duration_seconds_bucket", "up"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(names, expected);
    let names = metric_names(
        "scalar(max(etcd_server_apply_index)) - etcd_server_apply_index + kuberaft:x:rate5m * 1e3 + sum by (x) (count without (y) (z))",
    );
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names.contains("z"));
    assert!(names.contains("kuberaft:x:rate5m"));
}
