//! The failover drills in their CI form: a three-replica cluster behind HAProxy,
//! started by `cluster/up.sh` in a temporary run directory, then `kuberaft drill
//! --short --json` against it. Asserts for every scenario: zero acknowledged writes
//! lost (REST and etcd), a resumed watch that missed nothing and saw nothing out of
//! order, convergence (same HashKV on every member), no split brain, and the
//! scenario's own checks (e.g. the paused leader stepped down, the partitioned
//! minority refused writes and linearizable reads).
//!
//! Invariant: the cluster is torn down with `cluster/down.sh` however the test ends;
//! the test is skipped, with the reason printed, only when haproxy is not installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs cluster/down.sh on drop, so no replica outlives the test.
struct Teardown {
    run: PathBuf,
}

impl Drop for Teardown {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo().join("cluster/down.sh"))
            .env("KUBERAFT_RUN_DIR", &self.run)
            .output();
    }
}

fn logs(run: &Path) -> String {
    let mut out = String::new();
    for i in 0..3 {
        let text = std::fs::read_to_string(run.join(format!("m{i}.log"))).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        out.push_str(&format!(
            "--- m{i}.log (tail)\n{}\n",
            lines[lines.len().saturating_sub(25)..].join("\n")
        ));
    }
    out
}

#[test]
fn short_drills_lose_nothing_and_converge() {
    if Command::new("haproxy").arg("-v").output().is_err() {
        eprintln!("skipping the drills: haproxy is not installed (apt-get install haproxy)");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let run = dir.path().join("run");
    let _teardown = Teardown { run: run.clone() };

    let up = Command::new("bash")
        .arg(repo().join("cluster/up.sh"))
        .args(["--bin", env!("CARGO_BIN_EXE_kuberaft")])
        .env("KUBERAFT_RUN_DIR", &run)
        .output()
        .expect("run cluster/up.sh");
    assert!(
        up.status.success(),
        "cluster/up.sh failed:\n{}\n{}",
        String::from_utf8_lossy(&up.stderr),
        logs(&run)
    );
    for i in 0..3 {
        let start = std::fs::read_to_string(run.join(format!("m{i}.start"))).expect("start script");
        assert!(
            start.contains("--enable-fault-injection")
                && start.contains("--shutdown-delay-duration"),
            "m{i}.start lacks the drill flags:\n{start}"
        );
    }

    let drill = Command::new(env!("CARGO_BIN_EXE_kuberaft"))
        .args(["drill", "--short", "--json"])
        .env("KUBERAFT_RUN_DIR", &run)
        .env("RUST_LOG", "info,openraft=warn")
        .output()
        .expect("run kuberaft drill");
    let stderr = String::from_utf8_lossy(&drill.stderr);
    let report: Value = serde_json::from_slice(&drill.stdout).unwrap_or_else(|e| {
        panic!(
            "drill printed no JSON report ({e}):\n{}\n{stderr}\n{}",
            String::from_utf8_lossy(&drill.stdout),
            logs(&run)
        )
    });
    eprintln!("{stderr}");

    let scenarios = report["scenarios"].as_array().expect("scenarios");
    let names: Vec<&str> = scenarios
        .iter()
        .filter_map(|s| s["scenario"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "leader-kill",
            "follower-kill",
            "leader-pause",
            "leader-partition",
            "rolling-restart",
            "kill-all"
        ]
    );
    for s in scenarios {
        let name = s["scenario"].as_str().unwrap_or("?");
        for load in ["rest", "etcd"] {
            assert!(
                s[load]["acknowledged"].as_u64().unwrap_or(0) > 0,
                "{name}: the {load} load acknowledged nothing: {s:#}"
            );
            assert_eq!(
                s[load]["lost"], 0,
                "{name}: acknowledged {load} writes lost: {s:#}"
            );
        }
        assert_eq!(
            s["watch"]["missed"], 0,
            "{name}: the watch missed events: {s:#}"
        );
        assert_eq!(
            s["watch"]["out_of_order"], 0,
            "{name}: watch out of order: {s:#}"
        );
        assert!(s["converge_ms"].is_u64(), "{name}: did not converge: {s:#}");
        assert_eq!(
            s["split_brain"],
            Value::Array(vec![]),
            "{name}: split brain: {s:#}"
        );
        for c in s["checks"].as_array().expect("checks") {
            assert_eq!(c["ok"], true, "{name}: check failed: {c:#}");
        }
        assert_eq!(s["passed"], true, "{name}: {s:#}");
    }
    assert_eq!(report["passed"], true);
    assert!(
        drill.status.success(),
        "drill exited with {}: {stderr}",
        drill.status
    );
}
