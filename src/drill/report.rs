//! The figures of a drill, per scenario: longest client-visible write gap and failed
//! requests per load, acknowledged writes lost, watch events missed, time to
//! converge, leadership; printed as a table and as JSON.
//!
//! Invariant: a scenario passes only when no acknowledged write is lost, the watch
//! missed nothing and saw nothing out of order, the members converged (same HashKV),
//! no term had two leaders, and every scenario-specific check held; targets (write
//! gap, failed requests) are reported beside that, not folded into it.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use serde::Serialize;

/// The figures of one load (REST or etcd).
#[derive(Clone, Debug, Default, Serialize)]
pub struct LoadFigures {
    /// Writes the server acknowledged.
    pub acknowledged: usize,
    /// Requests that failed (timeout, connection error, error status).
    pub failed: usize,
    /// Longest time without any acknowledged write, in milliseconds.
    pub longest_gap_ms: u64,
    /// When that gap began, in milliseconds since the loads started.
    pub longest_gap_from_ms: u64,
    /// Acknowledged writes absent afterwards. Must be 0.
    pub lost: usize,
    /// Failure reasons and how often each occurred.
    pub failures: BTreeMap<String, usize>,
    /// When the first failures happened, in milliseconds since the loads started (at
    /// most 20), to place them on the timeline.
    pub failed_at_ms: Vec<u64>,
}

/// The resumed watch's figures.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WatchFigures {
    pub events: u64,
    /// Acknowledged creates the watcher never learned about. Must be 0.
    pub missed: usize,
    /// Events at or below a resourceVersion already seen. Must be 0.
    pub out_of_order: u64,
    pub reconnects: u64,
    pub relists: u64,
}

/// A named yes/no finding with its evidence.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

impl Check {
    pub fn new(name: &str, ok: bool, detail: impl Into<String>) -> Check {
        Check {
            name: name.to_owned(),
            ok,
            detail: detail.into(),
        }
    }
}

/// One scenario's result.
#[derive(Clone, Debug, Serialize)]
pub struct ScenarioReport {
    pub scenario: String,
    pub description: String,
    pub duration_ms: u64,
    pub rest: LoadFigures,
    pub etcd: LoadFigures,
    pub watch: WatchFigures,
    /// From the end of the fault (restart, resume, heal) until every member was
    /// ready and had the same HashKV at a revision past every earlier write.
    pub converge_ms: Option<u64>,
    pub converge_detail: String,
    /// What the drill did and saw, in milliseconds since the loads started.
    pub timeline: Vec<String>,
    pub leader_changes: usize,
    /// Terms with two leaders. Must be empty.
    pub split_brain: Vec<String>,
    /// Scenario-specific invariants (must hold).
    pub checks: Vec<Check>,
    /// Goals from the HA issue (reported; `--strict` makes them gate too).
    pub targets: Vec<Check>,
    pub passed: bool,
}

impl ScenarioReport {
    /// Recomputes `passed` from the invariants.
    pub fn judge(&mut self) {
        self.passed = self.rest.lost == 0
            && self.etcd.lost == 0
            && self.watch.missed == 0
            && self.watch.out_of_order == 0
            && self.converge_ms.is_some()
            && self.split_brain.is_empty()
            && self.checks.iter().all(|c| c.ok);
    }

    pub fn targets_met(&self) -> bool {
        self.targets.iter().all(|c| c.ok)
    }
}

/// The whole drill.
#[derive(Clone, Debug, Serialize)]
pub struct DrillReport {
    pub members: usize,
    pub short: bool,
    pub rest_clients: usize,
    pub etcd_clients: usize,
    pub request_timeout_ms: u64,
    pub scenarios: Vec<ScenarioReport>,
    pub passed: bool,
}

/// Longest stretch of `start..end` without an acknowledgement at `acks` (sorted),
/// and when it began.
pub fn longest_gap(
    acks: impl Iterator<Item = Instant>,
    start: Instant,
    end: Instant,
) -> (Duration, Instant) {
    let mut longest = (Duration::ZERO, start);
    let mut prev = start;
    for at in acks.chain(std::iter::once(end)) {
        let gap = at.saturating_duration_since(prev);
        if gap > longest.0 {
            longest = (gap, prev);
        }
        prev = prev.max(at);
    }
    longest
}

/// Counts failure reasons, shortened so that similar ones group together.
pub fn group_failures<'a>(reasons: impl Iterator<Item = &'a str>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in reasons {
        let short: String = r.chars().take(90).collect();
        *out.entry(short).or_insert(0) += 1;
    }
    out
}

fn ms(v: u64) -> String {
    format!("{v}ms")
}

/// Prints the table.
pub fn print_table(out: &mut dyn Write, report: &DrillReport) -> std::io::Result<()> {
    writeln!(
        out,
        "{:<17} {:>9} {:>6} {:>5} {:>9} {:>6} {:>5} {:>7} {:>7} {:>9} {:>7}  RESULT",
        "SCENARIO",
        "REST-GAP",
        "FAILED",
        "LOST",
        "ETCD-GAP",
        "FAILED",
        "LOST",
        "MISSED",
        "RECONN",
        "CONVERGE",
        "LEADERS",
    )?;
    for s in &report.scenarios {
        let verdict = match (s.passed, s.targets_met()) {
            (true, true) => "ok".to_owned(),
            (true, false) => {
                let missed: Vec<&str> = s
                    .targets
                    .iter()
                    .filter(|t| !t.ok)
                    .map(|t| t.name.as_str())
                    .collect();
                format!("ok (target missed: {})", missed.join(", "))
            }
            (false, _) => "FAIL".to_owned(),
        };
        writeln!(
            out,
            "{:<17} {:>9} {:>6} {:>5} {:>9} {:>6} {:>5} {:>7} {:>7} {:>9} {:>7}  {}",
            s.scenario,
            ms(s.rest.longest_gap_ms),
            s.rest.failed,
            s.rest.lost,
            ms(s.etcd.longest_gap_ms),
            s.etcd.failed,
            s.etcd.lost,
            s.watch.missed,
            s.watch.reconnects,
            s.converge_ms.map(ms).unwrap_or_else(|| "never".into()),
            s.leader_changes,
            verdict,
        )?;
    }
    for s in &report.scenarios {
        for c in s.checks.iter().chain(&s.targets) {
            writeln!(
                out,
                "  {:<17} {} {}: {}",
                s.scenario,
                if c.ok { "✓" } else { "✗" },
                c.name,
                c.detail
            )?;
        }
        if !s.split_brain.is_empty() {
            writeln!(
                out,
                "  {:<17} ✗ split brain: {}",
                s.scenario,
                s.split_brain.join("; ")
            )?;
        }
        if s.converge_ms.is_none() {
            writeln!(
                out,
                "  {:<17} ✗ did not converge: {}",
                s.scenario, s.converge_detail
            )?;
        }
    }
    writeln!(
        out,
        "{} members, {} REST + {} etcd clients through the load balancer, {} ms request timeout: {}",
        report.members,
        report.rest_clients,
        report.etcd_clients,
        report.request_timeout_ms,
        if report.passed { "PASSED" } else { "FAILED" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_covers_edges_and_middle() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let acks = [at(100), at(150), at(900), at(1000)];
        assert_eq!(
            longest_gap(acks.into_iter(), t0, at(1100)),
            (Duration::from_millis(750), at(150))
        );
        // No acknowledgement at all: the whole window is one gap.
        assert_eq!(
            longest_gap(std::iter::empty(), t0, at(500)),
            (Duration::from_millis(500), t0)
        );
    }

    #[test]
    fn a_lost_write_fails_the_scenario() {
        let mut s = ScenarioReport {
            scenario: "x".into(),
            description: String::new(),
            duration_ms: 0,
            rest: LoadFigures::default(),
            etcd: LoadFigures::default(),
            watch: WatchFigures::default(),
            converge_ms: Some(10),
            converge_detail: String::new(),
            timeline: vec![],
            leader_changes: 0,
            split_brain: vec![],
            checks: vec![],
            targets: vec![Check::new("gap", false, "3s")],
            passed: false,
        };
        s.judge();
        assert!(s.passed, "a missed target alone does not fail");
        s.etcd.lost = 1;
        s.judge();
        assert!(!s.passed);
    }
}
