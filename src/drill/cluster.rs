//! The cluster a drill runs against, as `cluster/up.sh` describes it in its run
//! directory (`env` with the ports, `m<i>.pid`, `m<i>.start`, `pki/`): member control
//! (signals, restarts exactly as up.sh started them, the peer fault switch) and
//! observation through each member's own ports (status, readiness, HashKV).
//!
//! Invariant: members are only ever observed through their public ports, and a member
//! counts as converged with the others only when every member is ready and they all
//! report the same HashKV at one revision that every member has applied.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use tonic::transport::{Channel, Endpoint};

use super::error::DrillError;
use super::session::{Session, Target};
use crate::etcd::proto::etcdserverpb::maintenance_client::MaintenanceClient;
use crate::etcd::proto::etcdserverpb::{HashKvRequest, StatusRequest};
use crate::tls::Connector;

/// The ports of one member.
#[derive(Clone, Copy, Debug)]
pub struct Ports {
    /// Kubernetes API (HTTPS).
    pub kube: u16,
    /// etcd client port (plain HTTP/2 and HTTP/1.1).
    pub client: u16,
}

/// What a member says about itself (etcd's Maintenance.Status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemberStatus {
    pub id: u64,
    pub leader: u64,
    pub term: u64,
    pub revision: i64,
}

impl MemberStatus {
    pub fn is_leader(&self) -> bool {
        self.leader != 0 && self.leader == self.id
    }
}

/// A local cluster started by `cluster/up.sh`.
pub struct Cluster {
    pub run_dir: PathBuf,
    pub members: Vec<Ports>,
    pub lb_kube: SocketAddr,
    pub lb_etcd: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
}

const PROBE_TIMEOUT: Duration = Duration::from_millis(700);

impl Cluster {
    /// Reads the run directory.
    pub fn open(run_dir: &Path) -> Result<Cluster, DrillError> {
        let bad = |reason: String| DrillError::RunDir {
            path: run_dir.to_owned(),
            reason,
        };
        let env = std::fs::read_to_string(run_dir.join("env")).map_err(|e| {
            bad(format!(
                "reading env: {e} (is a cluster running? cluster/up.sh)"
            ))
        })?;
        let vars: HashMap<&str, &str> = env
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        let port = |key: &str| -> Result<u16, DrillError> {
            vars.get(key)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| bad(format!("env has no valid {key}")))
        };
        let n: usize = vars
            .get("MEMBERS")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| bad("env has no valid MEMBERS".into()))?;
        let mut members = Vec::with_capacity(n);
        for i in 0..n {
            members.push(Ports {
                kube: port(&format!("KUBE_PORT_{i}"))?,
                client: port(&format!("CLIENT_PORT_{i}"))?,
            });
            let start = run_dir.join(format!("m{i}.start"));
            if !start.exists() {
                return Err(bad(format!(
                    "{} is missing (start the cluster with this version of cluster/up.sh)",
                    start.display()
                )));
            }
        }
        let pki = run_dir.join("pki");
        let tls = crate::tls::client_config(
            &pki.join("ca.crt"),
            Some((&pki.join("admin.crt"), &pki.join("admin.key"))),
        )?;
        Ok(Cluster {
            run_dir: run_dir.to_owned(),
            members,
            lb_kube: loopback(port("LB_KUBE_PORT")?),
            lb_etcd: loopback(port("LB_ETCD_PORT")?),
            tls,
        })
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// The Kubernetes API through the load balancer.
    pub fn kube_lb(&self) -> Target {
        Target::tls(self.lb_kube, &self.tls)
    }

    /// Member `i`'s own Kubernetes API.
    pub fn kube_member(&self, i: usize) -> Target {
        Target::tls(loopback(self.members[i].kube), &self.tls)
    }

    /// The etcd API through the load balancer.
    pub fn etcd_lb_url(&self) -> String {
        format!("http://{}", self.lb_etcd)
    }

    /// Member `i`'s own etcd client URL.
    pub fn client_url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.members[i].client)
    }

    /// The pid `m<i>.pid` names.
    pub fn pid(&self, i: usize) -> Result<u32, DrillError> {
        let path = self.run_dir.join(format!("m{i}.pid"));
        std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| DrillError::Member {
                member: i,
                reason: format!("no pid in {}", path.display()),
            })
    }

    /// True while member `i`'s process exists and is not a zombie.
    pub fn is_running(&self, i: usize) -> bool {
        self.pid(i).map(process_alive).unwrap_or(false)
    }

    /// Sends `signal` (KILL, TERM, STOP, CONT) to member `i`.
    pub fn signal(&self, i: usize, signal: &str) -> Result<(), DrillError> {
        let pid = self.pid(i)?;
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()
            .map_err(|e| DrillError::Member {
                member: i,
                reason: format!("running kill: {e}"),
            })?;
        if !status.success() {
            return Err(DrillError::Member {
                member: i,
                reason: format!("kill -{signal} {pid} failed ({status})"),
            });
        }
        tracing::info!(member = i, pid, signal, "signalled");
        Ok(())
    }

    /// Waits until member `i`'s process is gone.
    pub async fn wait_exit(&self, i: usize, timeout: Duration) -> Result<(), DrillError> {
        let deadline = Instant::now() + timeout;
        while self.is_running(i) {
            if Instant::now() >= deadline {
                return Err(DrillError::Timeout {
                    what: format!("m{i} to exit"),
                    seconds: timeout.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Starts member `i` again exactly as up.sh did (`m<i>.start`).
    pub async fn start(&self, i: usize) -> Result<(), DrillError> {
        if self.is_running(i) {
            return Err(DrillError::Member {
                member: i,
                reason: "still running; not starting a second copy".into(),
            });
        }
        let script = self.run_dir.join(format!("m{i}.start"));
        let status = tokio::process::Command::new("bash")
            .arg(&script)
            .stdin(std::process::Stdio::null())
            .status()
            .await
            .map_err(|e| DrillError::Member {
                member: i,
                reason: format!("running {}: {e}", script.display()),
            })?;
        if !status.success() {
            return Err(DrillError::Member {
                member: i,
                reason: format!("{} failed ({status})", script.display()),
            });
        }
        tracing::info!(member = i, pid = self.pid(i).unwrap_or(0), "restarted");
        Ok(())
    }

    /// Cuts (`true`) or restores member `i`'s peer traffic through its fault switch
    /// (members started with `--enable-fault-injection`).
    pub async fn set_isolated(&self, i: usize, on: bool) -> Result<(), DrillError> {
        let mut s = Session::new(Target::plain(loopback(self.members[i].client)));
        let path = format!("/debug/fault/peer-isolation?on={on}");
        let answer = s
            .call(Method::POST, &path, None, Duration::from_secs(2))
            .await
            .map_err(|e| DrillError::Member {
                member: i,
                reason: format!("fault switch: {e}"),
            })?;
        if !answer.status.is_success() {
            return Err(DrillError::Member {
                member: i,
                reason: format!(
                    "fault switch answered {} (started without --enable-fault-injection?)",
                    answer.status
                ),
            });
        }
        tracing::info!(member = i, isolated = on, "peer isolation switched");
        Ok(())
    }

    /// Member `i`'s status, or None when it does not answer in time.
    pub async fn status(&self, i: usize) -> Option<MemberStatus> {
        let mut client = MaintenanceClient::new(channel(&self.client_url(i)).ok()?);
        let resp = tokio::time::timeout(PROBE_TIMEOUT, client.status(StatusRequest {}))
            .await
            .ok()?
            .ok()?
            .into_inner();
        let header = resp.header?;
        Some(MemberStatus {
            id: header.member_id,
            leader: resp.leader,
            term: resp.raft_term,
            revision: header.revision,
        })
    }

    /// Every member's status, in member order.
    pub async fn statuses(&self) -> Vec<Option<MemberStatus>> {
        futures::future::join_all((0..self.len()).map(|i| self.status(i))).await
    }

    /// Member `i`'s HashKV at `revision`.
    pub async fn hash_kv(&self, i: usize, revision: i64) -> Option<u32> {
        let mut client = MaintenanceClient::new(channel(&self.client_url(i)).ok()?);
        let resp = tokio::time::timeout(
            Duration::from_secs(3),
            client.hash_kv(HashKvRequest { revision }),
        )
        .await
        .ok()?
        .ok()?
        .into_inner();
        Some(resp.hash)
    }

    /// True when member `i` answers /readyz with 200 on its etcd client port and on
    /// its Kubernetes port (what the load balancer checks).
    pub async fn ready(&self, i: usize) -> bool {
        let probe = |target: Target| async move {
            let mut s = Session::new(target);
            matches!(
                s.call(Method::GET, "/readyz", None, Duration::from_millis(2500)).await,
                Ok(a) if a.status == http::StatusCode::OK
            )
        };
        let (etcd, kube) = tokio::join!(
            probe(Target::plain(loopback(self.members[i].client))),
            probe(self.kube_member(i))
        );
        etcd && kube
    }

    /// Member `i`'s /readyz answer on its etcd client port: `Ok` when ready, else the
    /// reason it gives (or why it did not answer).
    pub async fn readiness(&self, i: usize) -> Result<(), String> {
        let mut s = Session::new(Target::plain(loopback(self.members[i].client)));
        match s
            .call(Method::GET, "/readyz", None, Duration::from_millis(2500))
            .await
        {
            Ok(a) if a.status == http::StatusCode::OK => Ok(()),
            Ok(a) => Err(String::from_utf8_lossy(&a.body).trim().to_owned()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The member every answering member names as leader, when that member itself
    /// agrees and a majority answered.
    pub async fn leader(&self) -> Option<usize> {
        let statuses = self.statuses().await;
        let answered: Vec<&MemberStatus> = statuses.iter().flatten().collect();
        if answered.len() <= self.len() / 2 {
            return None;
        }
        let leader = answered.first()?.leader;
        if leader == 0 || answered.iter().any(|s| s.leader != leader) {
            return None;
        }
        statuses
            .iter()
            .position(|s| s.is_some_and(|s| s.id == leader && s.is_leader()))
    }

    /// Waits for a leader every member agrees on.
    pub async fn wait_leader(&self, timeout: Duration) -> Result<usize, DrillError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(l) = self.leader().await {
                return Ok(l);
            }
            if Instant::now() >= deadline {
                return Err(DrillError::Timeout {
                    what: "a leader every member agrees on".into(),
                    seconds: timeout.as_secs(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One convergence check: every member is ready, every member has applied at
    /// least `min_revision`, and every member's HashKV at the lowest applied revision
    /// is the same. Returns that revision, or why not.
    pub async fn converged(&self, min_revision: i64) -> Result<i64, String> {
        let (statuses, ready) = tokio::join!(
            self.statuses(),
            futures::future::join_all((0..self.len()).map(|i| self.ready(i)))
        );
        let mut revision = i64::MAX;
        for (i, (s, r)) in statuses.iter().zip(&ready).enumerate() {
            let Some(s) = s else {
                return Err(format!("m{i} does not answer"));
            };
            if !r {
                return Err(format!("m{i} is not ready"));
            }
            revision = revision.min(s.revision);
        }
        if revision < min_revision {
            return Err(format!(
                "a member is at revision {revision} < {min_revision}"
            ));
        }
        let hashes =
            futures::future::join_all((0..self.len()).map(|i| self.hash_kv(i, revision))).await;
        let first = hashes.first().copied().flatten();
        if first.is_none() || hashes.iter().any(|h| *h != first) {
            return Err(format!("HashKV at revision {revision} differs: {hashes:?}"));
        }
        Ok(revision)
    }

    /// Polls [`Cluster::converged`] until it holds or `timeout` passes.
    pub async fn wait_converged(
        &self,
        min_revision: i64,
        timeout: Duration,
    ) -> Result<i64, String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.converged(min_revision).await {
                Ok(r) => return Ok(r),
                Err(why) if Instant::now() >= deadline => return Err(why),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Waits until every member answers the same revision (no writes in flight).
    pub async fn wait_same_revision(&self, timeout: Duration) -> Result<i64, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let statuses = self.statuses().await;
            let revs: Vec<Option<i64>> = statuses.iter().map(|s| s.map(|s| s.revision)).collect();
            if let Some(Some(first)) = revs.first() {
                if revs.iter().all(|r| *r == Some(*first)) {
                    return Ok(*first);
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("revisions differ: {revs:?}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A lazily connected channel to an etcd client URL, plain HTTP/2.
pub fn channel(url: &str) -> Result<Channel, DrillError> {
    let endpoint = Endpoint::from_shared(Bytes::from(url.to_owned()))
        .map_err(|e| DrillError::InvalidArgs(format!("{url}: {e}")))?
        .connect_timeout(Duration::from_secs(1))
        .tcp_nodelay(true);
    Ok(endpoint.connect_with_connector_lazy(Connector::new(None)))
}

pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// True while `pid` exists and is not a zombie (state `Z` in /proc/<pid>/stat).
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
            .unwrap_or(false),
        Err(_) => false,
    }
}
