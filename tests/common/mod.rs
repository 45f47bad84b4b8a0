//! Test harness: real kuberaft members as child processes on free loopback ports in
//! temporary directories, with helpers to kill, pause, restart and wait on them.
//!
//! Invariant: nothing here sleeps to wait for state; every wait polls with a deadline
//! and fails the test with what it was waiting for.

#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use etcd_client::Client;

pub mod kube;

/// A free loopback port for a member to listen on, never handed out twice by this
/// process. It comes from below the kernel's ephemeral range: a port from port 0 is
/// free only until the next outgoing connection of any process takes it, and with
/// many members dialling their peers one did, and a member failed to bind.
pub fn free_port() -> u16 {
    use std::collections::BTreeSet;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::Mutex;
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000u16, ephemeral_low.max(10_001));
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..1000 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(given.len());
        let port = low + (h.finish() % u64::from(high - low)) as u16;
        if !given.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.insert(port);
            return port;
        }
    }
    panic!("no free loopback port in {low}..{high}");
}

/// Polls `check` until it returns Some or `timeout` passes.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub struct Member {
    pub name: String,
    pub client_port: u16,
    pub peer_port: u16,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub extra_args: Vec<String>,
    child: Option<Child>,
}

impl Member {
    pub fn client_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.client_port)
    }

    pub fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().map(|s| s.is_none()).unwrap_or(false),
            None => false,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL: no shutdown path runs.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for exit.
    pub fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(c.id(), "TERM");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn pause(&self) {
        if let Some(pid) = self.pid() {
            signal(pid, "STOP");
        }
    }

    pub fn resume(&self) {
        if let Some(pid) = self.pid() {
            signal(pid, "CONT");
        }
    }

    pub async fn client(&self) -> Client {
        connect(&[self.client_url()]).await
    }

    /// The last 30 lines of the member's log, less backtrace frames (a member that
    /// exited with an error prints one under the error, which must stay in view).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let frame = |l: &&str| {
            let t = l.trim_start();
            t.starts_with("at ")
                || t.split_once(": ")
                    .is_some_and(|(n, _)| n.parse::<u32>().is_ok())
        };
        let lines: Vec<&str> = text.lines().filter(|l| !frame(l)).collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

pub async fn connect(endpoints: &[String]) -> Client {
    let opts = etcd_client::ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_timeout(Duration::from_secs(10));
    wait_for("etcd client connection", Duration::from_secs(20), || {
        let opts = opts.clone();
        async move { Client::connect(endpoints, Some(opts)).await.ok() }
    })
    .await
}

pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub members: Vec<Member>,
    pub token: String,
}

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kuberaft"))
}

impl Cluster {
    /// Starts `n` members of a new cluster.
    pub async fn start(n: usize) -> Cluster {
        Self::start_with(n, &[]).await
    }

    pub async fn start_with(n: usize, extra: &[&str]) -> Cluster {
        let mut cluster = Self::unstarted(n, extra);
        cluster.start_all().await;
        cluster
    }

    /// Starts every member of a cluster made by `unstarted` and waits for a leader.
    pub async fn start_all(&mut self) {
        for i in 0..self.members.len() {
            self.spawn(i, "new");
        }
        self.wait_leader().await;
    }

    /// The members of a new cluster, none started yet (their data directories do not
    /// exist yet either).
    pub fn unstarted(n: usize, extra: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().expect("temp dir");
        let token = format!("test-{}", free_port());
        let members: Vec<Member> = (0..n)
            .map(|i| {
                let name = format!("m{i}");
                Member {
                    data_dir: dir.path().join(&name),
                    log: dir.path().join(format!("{name}.log")),
                    name,
                    client_port: free_port(),
                    peer_port: free_port(),
                    extra_args: extra.iter().map(|s| s.to_string()).collect(),
                    child: None,
                }
            })
            .collect();
        Cluster {
            dir,
            members,
            token,
        }
    }

    pub fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}={}", m.name, m.peer_url()))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Starts (or restarts) member `i` as a child process.
    pub fn spawn(&mut self, i: usize, state: &str) {
        let initial = self.initial_cluster();
        let m = &mut self.members[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&m.log)
            .expect("log file");
        let child = Command::new(binary())
            .arg("serve")
            .args(["--name", &m.name])
            .arg("--data-dir")
            .arg(&m.data_dir)
            .args(["--listen-client-urls", &m.client_url()])
            .args(["--listen-peer-urls", &m.peer_url()])
            .args(["--initial-cluster", &initial])
            .args(["--initial-cluster-state", state])
            .args(["--initial-cluster-token", &self.token])
            .args(["--heartbeat-interval", "100", "--election-timeout", "1000"])
            .args(["--secure-port", "0"])
            .args(&m.extra_args)
            .env("RUST_LOG", "info,openraft=warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn kuberaft");
        m.child = Some(child);
    }

    /// Adds a member record for a process not yet started (for member add tests).
    pub fn add_member_record(&mut self, name: &str) -> usize {
        let m = Member {
            data_dir: self.dir.path().join(name),
            log: self.dir.path().join(format!("{name}.log")),
            name: name.to_owned(),
            client_port: free_port(),
            peer_port: free_port(),
            extra_args: Vec::new(),
            child: None,
        };
        self.members.push(m);
        self.members.len() - 1
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url()).collect()
    }

    /// Waits until every running member agrees on one leader; returns its index.
    pub async fn wait_leader(&mut self) -> usize {
        let running: Vec<usize> = (0..self.members.len())
            .filter(|&i| self.members[i].is_running())
            .collect();
        let urls: Vec<(usize, String)> = running
            .iter()
            .map(|&i| (i, self.members[i].client_url()))
            .collect();
        let ids = wait_for(
            "a leader agreed by all running members",
            Duration::from_secs(30),
            || {
                let urls = urls.clone();
                async move {
                    let mut leader = None;
                    let mut ids = Vec::new();
                    for (i, url) in &urls {
                        let mut c = Client::connect([url.as_str()], None).await.ok()?;
                        let s = c.status().await.ok()?;
                        if s.leader() == 0 || leader.is_some_and(|l| l != s.leader()) {
                            return None;
                        }
                        leader = Some(s.leader());
                        ids.push((*i, s.header().map(|h| h.member_id()).unwrap_or(0)));
                    }
                    let leader = leader?;
                    // A stale answer may still name a member that died: keep waiting.
                    ids.iter().find(|(_, id)| *id == leader).map(|(i, _)| *i)
                }
            },
        )
        .await;
        ids
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            m.resume();
            m.kill();
        }
        if std::thread::panicking() {
            for m in &self.members {
                eprintln!("---- log of {} ----\n{}", m.name, m.log_tail());
            }
        }
    }
}
