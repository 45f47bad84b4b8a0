//! A single kuberaft replica with its Kubernetes API, driven with the real `kubectl`.
//!
//! Invariant: each server gets its own temporary data directory and free ports, so
//! tests run in parallel; waits poll with deadlines.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

pub struct KubeServer {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub client_port: u16,
    pub peer_port: u16,
    pub kubeconfig: PathBuf,
    child: Option<Child>,
    pub log: PathBuf,
}

impl KubeServer {
    /// Starts a replica and waits until `kubectl get --raw /readyz` answers ok.
    pub fn start(extra: &[&str]) -> KubeServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut s = KubeServer {
            port: free_port(),
            client_port: free_port(),
            peer_port: free_port(),
            kubeconfig: dir.path().join("data/admin.kubeconfig"),
            log: dir.path().join("kuberaft.log"),
            dir,
            child: None,
        };
        s.spawn(extra);
        s.wait_ready();
        s
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn spawn(&mut self, extra: &[&str]) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        let child = Command::new(super::binary())
            .arg("serve")
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(["--secure-port", &self.port.to_string()])
            .args([
                "--listen-client-urls",
                &format!("http://127.0.0.1:{}", self.client_port),
            ])
            .args([
                "--listen-peer-urls",
                &format!("http://127.0.0.1:{}", self.peer_port),
            ])
            .args(extra)
            .env("RUST_LOG", "info,openraft=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn kuberaft");
        self.child = Some(child);
    }

    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.kubeconfig.exists() {
                let out = self.kubectl(&["get", "--raw", "/readyz"]);
                if out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ok") {
                    // The controllers create the system namespaces right after start.
                    let ns = self.kubectl(&["get", "namespace", "default", "-o", "name"]);
                    let sa = self.kubectl(&[
                        "get",
                        "serviceaccount",
                        "default",
                        "-n",
                        "default",
                        "-o",
                        "name",
                    ]);
                    if ns.status.success() && sa.status.success() {
                        return;
                    }
                }
            }
            if Instant::now() > deadline {
                panic!("kuberaft did not become ready:\n{}", self.log_tail());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs kubectl with this server's kubeconfig.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .output()
            .expect("run kubectl")
    }

    /// Runs kubectl with `stdin` as input.
    pub fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        child.wait_with_output().expect("kubectl output")
    }

    /// Runs kubectl and returns stdout, failing the test with stderr if it fails.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log_tail()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs kubectl expecting failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for KubeServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Prints a test phase's name, so a failure's output says where it happened.
pub fn phase(what: &str) {
    eprintln!("--- {what}");
}

/// `kubectl <args> -o json`, parsed.
pub fn json_of(s: &KubeServer, args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let out = s.ok(&all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("kubectl {args:?} -o json: {e}\n{out}"))
}

/// The header line of a `kubectl get` table, words separated by single spaces.
pub fn header(table: &str) -> String {
    table
        .lines()
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The words of the table row whose first column is `name`.
pub fn row<'a>(table: &'a str, name: &str) -> Vec<&'a str> {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in\n{table}"))
        .split_whitespace()
        .collect()
}
