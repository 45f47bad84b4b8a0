//! Debian's etcdctl against members started with etcd's TLS flags (mutual TLS on the
//! client and peer ports of a three-member cluster, certificates from `kuberaft
//! certs`), and the space quota: `--quota-backend-bytes` raises the NOSPACE alarm,
//! writes get etcd's "database space exceeded" while reads and deletes go on, and
//! after a restart with a larger quota and `alarm disarm` writes resume with nothing
//! acknowledged lost.
//!
//! Invariant: real processes, real sockets, real etcdctl; the test is skipped, with
//! the reason printed, only when etcdctl is not installed.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{binary, free_port};

fn have_etcdctl() -> bool {
    Command::new("etcdctl").arg("version").output().is_ok()
}

/// Kills the member processes however the test ends.
struct Members(Vec<Child>);

impl Drop for Members {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(args: &[String], log: &Path) -> Child {
    let log = std::fs::File::create(log).expect("log file");
    Command::new(binary())
        .arg("serve")
        .args(args)
        .env("RUST_LOG", "info,openraft=warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn kuberaft")
}

fn etcdctl(endpoint: &str, tls: &[String], args: &[&str]) -> Output {
    Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", endpoint, "--command-timeout=5s"])
        .args(tls)
        .args(args)
        .output()
        .expect("run etcdctl")
}

/// `etcdctl put KEY` with the value on standard input (values over 128 KiB do not fit
/// in one command-line argument).
fn put_stdin(endpoint: &str, key: &str, value: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["--endpoints", endpoint, "--command-timeout=5s", "put", key])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run etcdctl");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(value.as_bytes())
        .expect("write value");
    child.wait_with_output().expect("etcdctl output")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "etcdctl failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_healthy(endpoint: &str, tls: &[String], logs: &[PathBuf]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = etcdctl(endpoint, tls, &["endpoint", "health"]);
        if out.status.success() {
            return;
        }
        if Instant::now() > deadline {
            let tails: Vec<String> = logs
                .iter()
                .map(|l| std::fs::read_to_string(l).unwrap_or_default())
                .collect();
            panic!(
                "{endpoint} never became healthy: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                tails.join("\n---\n")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn mutual_tls_on_client_and_peer_ports() {
    if !have_etcdctl() {
        eprintln!("skipping: etcdctl is not installed (apt-get install etcd-client)");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let pki = dir.path().join("pki");
    let certs = Command::new(binary())
        .args(["certs", "--cert-dir"])
        .arg(&pki)
        .args(["--hosts", "127.0.0.1,localhost"])
        .output()
        .expect("kuberaft certs");
    assert!(
        certs.status.success(),
        "{}",
        String::from_utf8_lossy(&certs.stderr)
    );
    let f = |name: &str| pki.join(name).to_string_lossy().into_owned();

    let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
    let cluster = ports
        .iter()
        .enumerate()
        .map(|(i, (_, peer))| format!("m{i}=https://127.0.0.1:{peer}"))
        .collect::<Vec<_>>()
        .join(",");
    let mut logs = Vec::new();
    let mut members = Members(Vec::new());
    for (i, (client, peer)) in ports.iter().enumerate() {
        let log = dir.path().join(format!("m{i}.log"));
        let args: Vec<String> = [
            "--name".to_owned(),
            format!("m{i}"),
            "--data-dir".to_owned(),
            dir.path()
                .join(format!("m{i}"))
                .to_string_lossy()
                .into_owned(),
            "--secure-port".to_owned(),
            "0".to_owned(),
            "--listen-client-urls".to_owned(),
            format!("https://127.0.0.1:{client}"),
            "--advertise-client-urls".to_owned(),
            format!("https://127.0.0.1:{client}"),
            "--listen-peer-urls".to_owned(),
            format!("https://127.0.0.1:{peer}"),
            "--initial-advertise-peer-urls".to_owned(),
            format!("https://127.0.0.1:{peer}"),
            "--initial-cluster".to_owned(),
            cluster.clone(),
            "--cert-file".to_owned(),
            f("apiserver.crt"),
            "--key-file".to_owned(),
            f("apiserver.key"),
            "--trusted-ca-file".to_owned(),
            f("ca.crt"),
            "--client-cert-auth".to_owned(),
            "--peer-cert-file".to_owned(),
            f("peer.crt"),
            "--peer-key-file".to_owned(),
            f("peer.key"),
            "--peer-trusted-ca-file".to_owned(),
            f("ca.crt"),
            "--peer-client-cert-auth".to_owned(),
            "--heartbeat-interval".to_owned(),
            "100".to_owned(),
            "--election-timeout".to_owned(),
            "1000".to_owned(),
        ]
        .into();
        members.0.push(spawn(&args, &log));
        logs.push(log);
    }
    let tls = vec![
        format!("--cacert={}", f("ca.crt")),
        format!("--cert={}", f("admin.crt")),
        format!("--key={}", f("admin.key")),
    ];
    let endpoints: Vec<String> = ports
        .iter()
        .map(|(c, _)| format!("https://127.0.0.1:{c}"))
        .collect();
    for e in &endpoints {
        wait_healthy(e, &tls, &logs);
    }

    // Writes through one member (forwarded over the TLS peer port when it follows)
    // are read back through every member.
    ok(etcdctl(
        &endpoints[0],
        &tls,
        &["put", "tls-key", "over-tls"],
    ));
    for e in &endpoints {
        let got = ok(etcdctl(e, &tls, &["get", "tls-key", "--print-value-only"]));
        assert_eq!(got.trim(), "over-tls", "read through {e}");
    }
    // Every member lists its https peer and client URLs (client URLs appear once each
    // member has published its attributes through Raft).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let members_out = ok(etcdctl(&endpoints[1], &tls, &["member", "list"]));
        if members_out.matches("https://127.0.0.1:").count() == 6 {
            break;
        }
        assert!(Instant::now() < deadline, "{members_out}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // No client certificate: refused by --client-cert-auth.
    let no_cert = etcdctl(
        &endpoints[0],
        &[format!("--cacert={}", f("ca.crt"))],
        &["get", "tls-key"],
    );
    assert!(
        !no_cert.status.success(),
        "a client without a certificate was served"
    );
    // A server the client does not trust: refused by the client.
    let untrusted = etcdctl(&endpoints[0], &[], &["get", "tls-key"]);
    assert!(!untrusted.status.success(), "TLS was not required");
    // Plain HTTP on a TLS port: no answer.
    let plain = etcdctl(
        &format!("http://127.0.0.1:{}", ports[0].0),
        &[],
        &["get", "tls-key"],
    );
    assert!(
        !plain.status.success(),
        "plain HTTP was served on the TLS port"
    );
}

fn single_member_args(dir: &Path, client: u16, peer: u16, quota: Option<u64>) -> Vec<String> {
    let mut args: Vec<String> = [
        "--name",
        "q0",
        "--secure-port",
        "0",
        "--heartbeat-interval",
        "100",
        "--election-timeout",
        "1000",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend([
        "--data-dir".to_owned(),
        dir.join("q0").to_string_lossy().into_owned(),
        "--listen-client-urls".to_owned(),
        format!("http://127.0.0.1:{client}"),
        "--advertise-client-urls".to_owned(),
        format!("http://127.0.0.1:{client}"),
        "--listen-peer-urls".to_owned(),
        format!("http://127.0.0.1:{peer}"),
        "--initial-advertise-peer-urls".to_owned(),
        format!("http://127.0.0.1:{peer}"),
        "--initial-cluster".to_owned(),
        format!("q0=http://127.0.0.1:{peer}"),
    ]);
    if let Some(q) = quota {
        args.extend(["--quota-backend-bytes".to_owned(), q.to_string()]);
    }
    args
}

fn db_size(endpoint: &str) -> u64 {
    let status = ok(etcdctl(
        endpoint,
        &[],
        &["endpoint", "status", "-w", "json"],
    ));
    let v: serde_json::Value = serde_json::from_str(&status).expect("status json");
    v[0]["Status"]["dbSize"].as_u64().expect("dbSize")
}

#[test]
fn space_quota_raises_nospace_and_writes_resume_after_disarm() {
    if !have_etcdctl() {
        eprintln!("skipping: etcdctl is not installed (apt-get install etcd-client)");
        return;
    }
    let dir = tempfile::tempdir().expect("tmp");
    let (client, peer) = (free_port(), free_port());
    let endpoint = format!("http://127.0.0.1:{client}");
    let log = dir.path().join("q0.log");

    // Learn the empty store's size, then restart with a quota 2 MiB above it.
    let mut member = Members(vec![spawn(
        &single_member_args(dir.path(), client, peer, None),
        &log,
    )]);
    wait_healthy(&endpoint, &[], std::slice::from_ref(&log));
    let quota = db_size(&endpoint) + (2 << 20);
    drop(member);
    member = Members(vec![spawn(
        &single_member_args(dir.path(), client, peer, Some(quota)),
        &log,
    )]);
    wait_healthy(&endpoint, &[], std::slice::from_ref(&log));

    let value = "v".repeat(256 * 1024);
    let mut acked = Vec::new();
    let mut refused = None;
    for i in 0..200 {
        let key = format!("big-{i:03}");
        let out = put_stdin(&endpoint, &key, &value);
        if out.status.success() {
            acked.push(key);
        } else {
            refused = Some(String::from_utf8_lossy(&out.stderr).into_owned());
            break;
        }
    }
    let refused = refused.expect("the quota never refused a write");
    assert!(
        refused.contains("etcdserver: mvcc: database space exceeded"),
        "{refused}"
    );
    assert!(!acked.is_empty(), "the quota left no room at all");
    let alarms = ok(etcdctl(&endpoint, &[], &["alarm", "list"]));
    assert!(alarms.contains("alarm:NOSPACE"), "{alarms}");
    // Under the alarm: small writes refused too, reads and deletes served.
    let small = etcdctl(&endpoint, &[], &["put", "small", "x"]);
    assert!(
        !small.status.success(),
        "a write was accepted under NOSPACE"
    );
    let got = ok(etcdctl(
        &endpoint,
        &[],
        &["get", &acked[0], "--print-value-only"],
    ));
    assert_eq!(got.trim().len(), value.len());
    ok(etcdctl(&endpoint, &[], &["del", &acked[0]]));
    let deleted = acked.remove(0);

    // The default quota (2 GiB) and `alarm disarm`: writes resume, nothing
    // acknowledged lost.
    drop(member);
    let _member = Members(vec![spawn(
        &single_member_args(dir.path(), client, peer, None),
        &log,
    )]);
    wait_healthy(&endpoint, &[], std::slice::from_ref(&log));
    ok(etcdctl(&endpoint, &[], &["alarm", "disarm"]));
    ok(etcdctl(&endpoint, &[], &["put", "small", "x"]));
    let keys = ok(etcdctl(
        &endpoint,
        &[],
        &["get", "big-", "--prefix", "--keys-only"],
    ));
    for k in &acked {
        assert!(keys.contains(k.as_str()), "acknowledged {k} lost");
    }
    assert!(
        !keys.contains(deleted.as_str()),
        "the delete under NOSPACE was lost"
    );
}
