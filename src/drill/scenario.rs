//! The failover scenarios and the run of one: loads and a resuming watch through the
//! load balancer, the fault and its recovery, convergence under load, then the
//! verification of every acknowledged write.
//!
//! Invariant: every scenario starts from a converged cluster with an agreed leader
//! and ends with its loads, watch and monitor stopped, whatever happened in between;
//! figures come only from what clients and members answered.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};
use serde_json::json;

use super::cluster::{channel, Cluster};
use super::error::DrillError;
use super::load::{Ack, Load, LoadOptions, Record};
use super::monitor::Monitor;
use super::report::{
    group_failures, longest_gap, Check, LoadFigures, ScenarioReport, WatchFigures,
};
use super::session::{Session, Target};
use super::watch::Watcher;
use crate::etcd::proto::etcdserverpb::kv_client::KvClient;
use crate::etcd::proto::etcdserverpb::{PutRequest, RangeRequest};

/// A failover scenario.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// SIGKILL the leader, restart it after the hold time.
    LeaderKill,
    /// SIGKILL a follower, restart it after the hold time.
    FollowerKill,
    /// SIGSTOP the leader past the election timeout, then SIGCONT: it must step down.
    LeaderPause,
    /// Cut the leader's peer traffic (fault injection), then heal: the minority side
    /// must refuse writes and linearizable reads.
    LeaderPartition,
    /// SIGTERM each member in turn (followers first), restarting it and waiting until
    /// it caught up before the next.
    RollingRestart,
    /// SIGKILL every member at once, then restart them all.
    KillAll,
}

impl Scenario {
    pub const ALL: [Scenario; 6] = [
        Scenario::LeaderKill,
        Scenario::FollowerKill,
        Scenario::LeaderPause,
        Scenario::LeaderPartition,
        Scenario::RollingRestart,
        Scenario::KillAll,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::LeaderKill => "leader-kill",
            Scenario::FollowerKill => "follower-kill",
            Scenario::LeaderPause => "leader-pause",
            Scenario::LeaderPartition => "leader-partition",
            Scenario::RollingRestart => "rolling-restart",
            Scenario::KillAll => "kill-all",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Scenario::LeaderKill => "SIGKILL the leader under load, restart it",
            Scenario::FollowerKill => "SIGKILL a follower under load, restart it",
            Scenario::LeaderPause => "SIGSTOP the leader past the election timeout, SIGCONT",
            Scenario::LeaderPartition => "isolate the leader from its peers, heal",
            Scenario::RollingRestart => "SIGTERM and restart each member in turn",
            Scenario::KillAll => "SIGKILL every member, restart all",
        }
    }
}

/// Phase lengths of a scenario.
#[derive(Clone, Debug)]
pub struct Timing {
    /// Load before the fault.
    pub warmup: Duration,
    /// How long a fault lasts (a member down, paused or isolated).
    pub hold: Duration,
    /// Load after the recovery (at least until the members converged).
    pub settle: Duration,
    /// Longest wait for convergence.
    pub converge_timeout: Duration,
}

/// What a scenario's run needs.
pub struct Ctx {
    pub cluster: Arc<Cluster>,
    pub timing: Timing,
    pub rest: LoadOptions,
    pub etcd: LoadOptions,
    /// Distinguishes this drill's namespaces and keys from earlier runs'.
    pub run_id: String,
}

impl Ctx {
    pub fn namespace(&self, s: Scenario) -> String {
        format!("drill-{}-{}", self.run_id, s.name())
    }

    pub fn etcd_prefix(&self, s: Scenario) -> String {
        format!("{}{}/", self.etcd_root(), s.name())
    }

    pub fn etcd_root(&self) -> String {
        format!("/drill/{}/", self.run_id)
    }
}

/// What the fault phase reports back.
struct Outcome {
    fault_at: Instant,
    /// What was done when.
    steps: Vec<(Instant, String)>,
    recovered_at: Instant,
    /// The leader when the fault began, and its term.
    old_leader: Option<(usize, u64)>,
    checks: Vec<Check>,
}

/// Runs one scenario and returns its figures.
pub async fn run(ctx: &Ctx, scenario: Scenario) -> Result<ScenarioReport, DrillError> {
    let cluster = &ctx.cluster;
    let begin = Instant::now();
    tracing::info!(
        scenario = scenario.name(),
        "waiting for a converged cluster"
    );
    cluster
        .wait_converged(0, Duration::from_secs(60))
        .await
        .map_err(|why| DrillError::Timeout {
            what: format!("a converged cluster before {} ({why})", scenario.name()),
            seconds: 60,
        })?;
    let ns = ctx.namespace(scenario);
    let lb = cluster.kube_lb();
    call_until_ok(
        &lb,
        Method::POST,
        "/api/v1/namespaces",
        Some(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})),
    )
    .await?;
    let list = call_until_ok(
        &lb,
        Method::GET,
        &format!("/api/v1/namespaces/{ns}/configmaps"),
        None,
    )
    .await?;
    let start_rv: i64 = list["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| DrillError::Request("list without a resourceVersion".into()))?;

    tracing::info!(scenario = scenario.name(), "loads and watch running");
    let watcher = Watcher::start(lb.clone(), &ns, start_rv);
    let monitor = Monitor::start(cluster.clone());
    let t0 = Instant::now();
    let rest = Load::kube(lb.clone(), &ns, &ctx.rest);
    let etcd = Load::etcd(
        &cluster.etcd_lb_url(),
        &ctx.etcd_prefix(scenario),
        &ctx.etcd,
    );
    tokio::time::sleep(ctx.timing.warmup).await;

    let acted = act(ctx, scenario).await;
    // Convergence is measured under load, from the recovery until it holds.
    let converge: Result<u64, String> = match &acted {
        Ok(outcome) => {
            let min_rev = max_revision(cluster).await;
            tracing::info!(
                scenario = scenario.name(),
                min_rev,
                "recovered; waiting for convergence"
            );
            let wait = async {
                cluster
                    .wait_converged(min_rev, ctx.timing.converge_timeout)
                    .await
                    .map(|_| outcome.recovered_at.elapsed().as_millis() as u64)
            };
            let (_, c) = tokio::join!(tokio::time::sleep(ctx.timing.settle), wait);
            c
        }
        Err(e) => Err(e.to_string()),
    };
    let (rest_rec, rest_end) = rest.stop().await;
    let (etcd_rec, etcd_end) = etcd.stop().await;
    let leadership = monitor.stop().await;
    let max_rest_rv = rest_rec.acks.iter().map(|a| a.revision).max().unwrap_or(0);
    let caught_up = wait_until(Duration::from_secs(10), || {
        watcher.last_revision() >= max_rest_rv
    })
    .await;
    let watch_rec = watcher.stop().await;
    let outcome = acted?;

    tracing::info!(scenario = scenario.name(), "verifying acknowledged writes");
    let final_state = cluster
        .wait_same_revision(Duration::from_secs(10))
        .await
        .and(cluster.wait_converged(0, Duration::from_secs(10)).await);
    let rest_present = list_names(&lb, &ns).await?;
    let etcd_present = range_keys(&cluster.etcd_lb_url(), &ctx.etcd_prefix(scenario)).await?;

    let rest_fig = figures(&rest_rec, t0, rest_end, |a| {
        rest_present.contains_key(&a.key)
    });
    let etcd_fig = figures(&etcd_rec, t0, etcd_end, |a| {
        etcd_present.contains_key(&a.key)
    });
    let missed: Vec<&Ack> = rest_rec
        .acks
        .iter()
        .filter(|a| !watch_rec.seen.contains(&a.key) && !watch_rec.relisted.contains(&a.key))
        .collect();
    if let Some(m) = missed.first() {
        tracing::warn!(first = %m.key, revision = m.revision, count = missed.len(), "watch missed acknowledged creates");
    }
    let mut checks = outcome.checks;
    if let Some((old, term)) = outcome.old_leader {
        let detail = match leadership.new_leader_after(outcome.fault_at, old, term) {
            Some(at) => format!(
                "after {} ms",
                at.saturating_duration_since(outcome.fault_at).as_millis()
            ),
            None => "no new leadership claim seen".into(),
        };
        if matches!(
            scenario,
            Scenario::LeaderKill | Scenario::LeaderPause | Scenario::LeaderPartition
        ) {
            let ok = leadership
                .new_leader_after(outcome.fault_at, old, term)
                .is_some();
            checks.push(Check::new("new leader elected", ok, detail));
        }
    }
    checks.push(Check::new(
        "watch caught up",
        caught_up,
        format!("with the last acknowledged create (resourceVersion {max_rest_rv})"),
    ));
    checks.push(match &final_state {
        Ok(rev) => Check::new(
            "same revision and HashKV at the end",
            true,
            format!("revision {rev}"),
        ),
        Err(why) => Check::new("same revision and HashKV at the end", false, why.clone()),
    });
    let mut targets = Vec::new();
    match scenario {
        Scenario::LeaderKill => {
            let worst = rest_fig.longest_gap_ms.max(etcd_fig.longest_gap_ms);
            targets.push(Check::new(
                "writes resume within 2 s",
                worst <= 2000,
                format!("longest gap {worst} ms"),
            ));
        }
        Scenario::RollingRestart => {
            let failed = rest_fig.failed + etcd_fig.failed;
            targets.push(Check::new(
                "zero failed requests",
                failed == 0,
                format!("{failed} failed"),
            ));
        }
        _ => {}
    }
    let mut events: Vec<(Instant, String)> = outcome.steps.clone();
    for (at, member, term) in &leadership.leaders {
        events.push((*at, format!("m{member} leads term {term}")));
    }
    if let Ok(ms) = &converge {
        events.push((
            outcome.recovered_at + Duration::from_millis(*ms),
            "converged".into(),
        ));
    }
    events.sort_by_key(|(at, _)| *at);
    let timeline: Vec<String> = events
        .iter()
        .map(|(at, what)| {
            format!(
                "+{} ms: {what}",
                at.saturating_duration_since(t0).as_millis()
            )
        })
        .collect();
    let (converge_ms, converge_detail) = match converge {
        Ok(ms) => (Some(ms), String::new()),
        Err(why) => (None, why),
    };
    let mut report = ScenarioReport {
        scenario: scenario.name().to_owned(),
        description: scenario.description().to_owned(),
        duration_ms: begin.elapsed().as_millis() as u64,
        rest: rest_fig,
        etcd: etcd_fig,
        watch: WatchFigures {
            events: watch_rec.events,
            missed: missed.len(),
            out_of_order: watch_rec.out_of_order,
            reconnects: watch_rec.reconnects,
            relists: watch_rec.relists,
        },
        converge_ms,
        converge_detail,
        timeline,
        leader_changes: leadership.changes(),
        split_brain: leadership.split_brain(),
        checks,
        targets,
        passed: false,
    };
    report.judge();
    Ok(report)
}

/// The fault and its recovery.
async fn act(ctx: &Ctx, scenario: Scenario) -> Result<Outcome, DrillError> {
    let c = &ctx.cluster;
    let hold = ctx.timing.hold;
    let leader = c.wait_leader(Duration::from_secs(10)).await?;
    let term = c.status(leader).await.map(|s| s.term).unwrap_or(0);
    let mut checks = Vec::new();
    let mut steps: Vec<(Instant, String)> = Vec::new();
    let mut step = |what: String| {
        tracing::info!(scenario = scenario.name(), "{what}");
        steps.push((Instant::now(), what));
    };
    let fault_at = Instant::now();
    match scenario {
        Scenario::LeaderKill | Scenario::FollowerKill => {
            let victim = if scenario == Scenario::LeaderKill {
                leader
            } else {
                (leader + 1) % c.len()
            };
            c.signal(victim, "KILL")?;
            step(format!("SIGKILL m{victim} (leader m{leader}, term {term})"));
            c.wait_exit(victim, Duration::from_secs(5)).await?;
            tokio::time::sleep(hold).await;
            c.start(victim).await?;
            step(format!("m{victim} restarted"));
        }
        Scenario::LeaderPause => {
            c.signal(leader, "STOP")?;
            step(format!("SIGSTOP m{leader} (leader, term {term})"));
            tokio::time::sleep(hold).await;
            c.signal(leader, "CONT")?;
            step(format!("SIGCONT m{leader}"));
            checks.push(stepped_down(c, leader, term).await);
        }
        Scenario::LeaderPartition => {
            c.set_isolated(leader, true).await?;
            step(format!(
                "m{leader} (leader, term {term}) cut off from its peers"
            ));
            let others: Vec<usize> = (0..c.len()).filter(|i| *i != leader).collect();
            let elected =
                wait_majority_leader(c, &others, leader, hold + Duration::from_secs(5)).await;
            if let Some((m, _)) = elected {
                step(format!("majority elected m{m}"));
            }
            checks.push(Check::new(
                "majority elected a new leader",
                elected.is_some(),
                match elected {
                    Some((m, at)) => format!(
                        "m{m} after {} ms",
                        at.saturating_duration_since(fault_at).as_millis()
                    ),
                    None => "none".into(),
                },
            ));
            checks.push(minority_refuses(ctx, leader).await);
            let ready = c.readiness(leader).await;
            checks.push(Check::new(
                "cut-off leader is not ready",
                ready.is_err(),
                match ready {
                    Ok(()) => format!("m{leader} answers /readyz with 200"),
                    Err(why) => format!("m{leader}: {why}"),
                },
            ));
            step(format!("probed m{leader} directly"));
            let left = hold.saturating_sub(fault_at.elapsed());
            tokio::time::sleep(left).await;
            c.set_isolated(leader, false).await?;
            step(format!("m{leader} healed"));
            checks.push(stepped_down(c, leader, term).await);
        }
        Scenario::RollingRestart => {
            let order: Vec<usize> = (0..c.len())
                .filter(|i| *i != leader)
                .chain(std::iter::once(leader))
                .collect();
            let mut done = Vec::new();
            for i in order {
                let role = if i == leader { " (leader)" } else { "" };
                let t = Instant::now();
                c.signal(i, "TERM")?;
                step(format!("SIGTERM m{i}{role}"));
                c.wait_exit(i, Duration::from_secs(60)).await?;
                let stopped = t.elapsed();
                step(format!("m{i} exited"));
                c.start(i).await?;
                step(format!("m{i} restarted"));
                let min_rev = max_revision(c).await;
                c.wait_converged(min_rev, ctx.timing.converge_timeout)
                    .await
                    .map_err(|why| DrillError::Timeout {
                        what: format!("m{i} to catch up after its restart ({why})"),
                        seconds: ctx.timing.converge_timeout.as_secs(),
                    })?;
                step(format!("m{i} caught up"));
                done.push(format!(
                    "m{i}{role}: stopped in {} ms, caught up {} ms later",
                    stopped.as_millis(),
                    (t.elapsed() - stopped).as_millis()
                ));
            }
            checks.push(Check::new("every member restarted", true, done.join("; ")));
        }
        Scenario::KillAll => {
            for i in 0..c.len() {
                c.signal(i, "KILL")?;
            }
            step("SIGKILL every member".into());
            for i in 0..c.len() {
                c.wait_exit(i, Duration::from_secs(5)).await?;
            }
            tokio::time::sleep(hold.min(Duration::from_secs(1))).await;
            for i in 0..c.len() {
                c.start(i).await?;
            }
            step("every member restarted".into());
        }
    }
    Ok(Outcome {
        fault_at,
        steps,
        recovered_at: Instant::now(),
        old_leader: Some((leader, term)),
        checks,
    })
}

/// Polls the former leader until its old term is over: it names a leader in a
/// later term. That leader may be itself: with the most complete log it can
/// legitimately win a later election (a split vote while it was away makes that
/// likely on a slow machine); what must never happen is leading on in `old_term`.
async fn stepped_down(c: &Cluster, old: usize, old_term: u64) -> Check {
    let t = Instant::now();
    let deadline = t + Duration::from_secs(10);
    loop {
        if let Some(s) = c.status(old).await {
            if s.leader != 0 && s.term > old_term {
                let how = if s.is_leader() {
                    "was elected again"
                } else {
                    "follows"
                };
                return Check::new(
                    "old leader stepped down",
                    true,
                    format!(
                        "m{old} {how} in term {} after {} ms",
                        s.term,
                        t.elapsed().as_millis()
                    ),
                );
            }
        }
        if Instant::now() >= deadline {
            return Check::new(
                "old leader stepped down",
                false,
                format!(
                    "m{old} still in term {old_term} or names no leader: {:?}",
                    c.status(old).await
                ),
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the members in `side` agree on a leader among them other than `old`.
async fn wait_majority_leader(
    c: &Cluster,
    side: &[usize],
    old: usize,
    timeout: Duration,
) -> Option<(usize, Instant)> {
    let deadline = Instant::now() + timeout;
    loop {
        let statuses = futures::future::join_all(side.iter().map(|i| c.status(*i))).await;
        let leader_ids: HashSet<u64> = statuses.iter().flatten().map(|s| s.leader).collect();
        if statuses.iter().all(|s| s.is_some()) && leader_ids.len() == 1 {
            let id = leader_ids.into_iter().next().unwrap_or(0);
            if let Some(pos) = statuses
                .iter()
                .position(|s| s.is_some_and(|s| s.id == id && s.is_leader()))
            {
                if side[pos] != old {
                    return Some((side[pos], Instant::now()));
                }
            }
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends a write and a linearizable read of each API straight to the isolated
/// member; none may succeed.
async fn minority_refuses(ctx: &Ctx, member: usize) -> Check {
    let c = &ctx.cluster;
    let timeout = Duration::from_secs(2);
    let url = c.client_url(member);
    let key = format!("{}minority-probe", ctx.etcd_root());
    let etcd_put = async {
        let mut kv = KvClient::new(channel(&url).ok()?);
        let put = PutRequest {
            key: Bytes::from(key.clone()),
            value: Bytes::from_static(b"must-not-be-acknowledged"),
            ..Default::default()
        };
        tokio::time::timeout(timeout, kv.put(put)).await.ok()?.ok()
    };
    let etcd_read = async {
        let mut kv = KvClient::new(channel(&url).ok()?);
        let range = RangeRequest {
            key: Bytes::from(key.clone()),
            ..Default::default()
        };
        tokio::time::timeout(timeout, kv.range(range))
            .await
            .ok()?
            .ok()
    };
    let ns = ctx.namespace(Scenario::LeaderPartition);
    let kube = c.kube_member(member);
    let kube_create = async {
        let mut s = Session::new(kube.clone());
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "minority-probe"}});
        let path = format!("/api/v1/namespaces/{ns}/configmaps");
        s.call(Method::POST, &path, Some(&body), timeout)
            .await
            .ok()
            .filter(|a| a.status.is_success())
    };
    let kube_read = async {
        let mut s = Session::new(kube.clone());
        let path = format!("/api/v1/namespaces/{ns}/configmaps?limit=1");
        s.call(Method::GET, &path, None, timeout)
            .await
            .ok()
            .filter(|a| a.status.is_success())
    };
    let (p, r, kc, kr) = tokio::join!(etcd_put, etcd_read, kube_create, kube_read);
    let answered: Vec<&str> = [
        (p.is_some(), "etcd put"),
        (r.is_some(), "etcd linearizable range"),
        (kc.is_some(), "REST create"),
        (kr.is_some(), "REST consistent list"),
    ]
    .iter()
    .filter(|(ok, _)| *ok)
    .map(|(_, what)| *what)
    .collect();
    Check::new(
        "minority refuses writes and linearizable reads",
        answered.is_empty(),
        if answered.is_empty() {
            format!("m{member}: etcd put, etcd range, REST create and REST list all refused")
        } else {
            format!("m{member} answered: {}", answered.join(", "))
        },
    )
}

/// The highest revision any member reports.
async fn max_revision(c: &Cluster) -> i64 {
    c.statuses()
        .await
        .iter()
        .flatten()
        .map(|s| s.revision)
        .max()
        .unwrap_or(0)
}

async fn wait_until(timeout: Duration, check: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !check() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

fn figures(
    rec: &Record,
    start: Instant,
    end: Instant,
    present: impl Fn(&Ack) -> bool,
) -> LoadFigures {
    let (gap, from) = longest_gap(rec.acks.iter().map(|a| a.at), start, end);
    LoadFigures {
        acknowledged: rec.acks.len(),
        failed: rec.failures.len(),
        longest_gap_ms: gap.as_millis() as u64,
        longest_gap_from_ms: from.saturating_duration_since(start).as_millis() as u64,
        lost: rec.acks.iter().filter(|a| !present(a)).count(),
        failures: group_failures(rec.failures.iter().map(|f| f.reason.as_str())),
        failed_at_ms: {
            let mut at: Vec<u64> = rec
                .failures
                .iter()
                .map(|f| f.at.saturating_duration_since(start).as_millis() as u64)
                .collect();
            at.sort_unstable();
            at.truncate(20);
            at
        },
    }
}

/// A setup request through the load balancer, retried until it succeeds (or 409:
/// already done) within 30 s.
pub async fn call_until_ok(
    target: &Target,
    method: Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value, DrillError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut s = Session::new(target.clone());
    let mut last = String::new();
    while Instant::now() < deadline {
        match s
            .call(method.clone(), path, body.as_ref(), Duration::from_secs(5))
            .await
        {
            Ok(a) if a.status.is_success() || a.status == StatusCode::CONFLICT => {
                return Ok(a.json())
            }
            Ok(a) => last = format!("HTTP {}: {}", a.status, String::from_utf8_lossy(&a.body)),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(DrillError::Request(format!("{method} {path}: {last}")))
}

/// Names (and resourceVersions) of the ConfigMaps in `ns`, by a consistent list.
async fn list_names(lb: &Target, ns: &str) -> Result<HashMap<String, i64>, DrillError> {
    let list = call_until_ok(
        lb,
        Method::GET,
        &format!("/api/v1/namespaces/{ns}/configmaps"),
        None,
    )
    .await?;
    Ok(list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| {
            let m = &i["metadata"];
            Some((
                m["name"].as_str()?.to_owned(),
                m["resourceVersion"].as_str()?.parse().ok()?,
            ))
        })
        .collect())
}

/// Keys (and mod revisions) under `prefix`, by linearizable paged ranges.
async fn range_keys(url: &str, prefix: &str) -> Result<HashMap<String, i64>, DrillError> {
    let mut out = HashMap::new();
    let end = prefix_end(prefix.as_bytes());
    let mut from = prefix.as_bytes().to_vec();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut kv = KvClient::new(channel(url)?).max_decoding_message_size(64 << 20);
        let req = RangeRequest {
            key: Bytes::from(from.clone()),
            range_end: Bytes::from(end.clone()),
            limit: 5000,
            keys_only: true,
            ..Default::default()
        };
        let resp = match tokio::time::timeout(Duration::from_secs(10), kv.range(req)).await {
            Ok(Ok(r)) => r.into_inner(),
            other => {
                if Instant::now() >= deadline {
                    return Err(DrillError::Request(format!("range {prefix}: {other:?}")));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        for kv in &resp.kvs {
            out.insert(
                String::from_utf8_lossy(&kv.key).into_owned(),
                kv.mod_revision,
            );
        }
        match resp.kvs.last() {
            Some(last) if resp.more => {
                from = last.key.to_vec();
                from.push(0);
            }
            _ => return Ok(out),
        }
    }
}

/// etcd's range end for a prefix: the prefix with its last byte incremented.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}
