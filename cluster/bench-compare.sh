#!/usr/bin/env bash
# Runs the etcd workload matrix of `kuberaft bench etcd` against two targets,
# interleaved per workload (A, B, A, B, ...), so slow drift of the machine hits both
# alike. Comparisons only; tests never use it.
#
#   ETCD_ENDPOINTS=http://127.0.0.1:2379,... \
#   KUBERAFT_ENDPOINTS=http://127.0.0.1:3379,... \
#   cluster/bench-compare.sh [RESULTS_FILE]
#
# Environment (all optional except at least one endpoint list):
#   ETCD_ENDPOINTS, KUBERAFT_ENDPOINTS   comma-separated client URLs; unset = skipped
#   ETCD_LABEL, KUBERAFT_LABEL           "target" names (default etcd-3.4, kuberaft)
#   ETCD_FLAGS, KUBERAFT_FLAGS           extra bench flags, e.g. "--cacert ca.crt"
#   BENCH_BIN     the kuberaft binary (default target/release/kuberaft, built if absent)
#   RUN_SECS      seconds per run (default 5)
#   ROUNDS        runs per workload and target (default 2)
#   BENCH_CONNS   connections per run (default min(clients, 6))
#   WORKLOADS     regex on "workload/clients" to run part of the matrix, e.g. '^put/'
#
# Before the runs, leadership in every plain-http target is moved to the member of
# its first endpoint (see lead_first).
#
# Invariant: every run's JSON line is appended to the results file as printed by the
# bench; the markdown table is computed from that file only (mean ops/s, p50 and p99
# over the rounds, the ops/s spread, errors summed).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
results=${1:-$root/target/bench-compare-$(date +%Y%m%d-%H%M%S).jsonl}
bin=${BENCH_BIN:-$root/target/release/kuberaft}
run_secs=${RUN_SECS:-5}
rounds=${ROUNDS:-2}
filter=${WORKLOADS:-.}

command -v jq >/dev/null || { echo "bench-compare: jq is needed (apt-get install jq)" >&2; exit 1; }

# Targets: name|endpoints|extra flags
targets=()
if [[ -n ${ETCD_ENDPOINTS:-} ]]; then
  targets+=("${ETCD_LABEL:-etcd-3.4}|$ETCD_ENDPOINTS|${ETCD_FLAGS:-}")
else
  echo "bench-compare: skipping etcd: ETCD_ENDPOINTS is unset (start one with cluster/etcd-up.sh)" >&2
fi
if [[ -n ${KUBERAFT_ENDPOINTS:-} ]]; then
  targets+=("${KUBERAFT_LABEL:-kuberaft}|$KUBERAFT_ENDPOINTS|${KUBERAFT_FLAGS:-}")
else
  echo "bench-compare: skipping kuberaft: KUBERAFT_ENDPOINTS is unset" >&2
fi
if (( ${#targets[@]} == 0 )); then
  echo "bench-compare: no target to run" >&2
  exit 1
fi

if [[ ! -x $bin ]]; then
  echo "bench-compare: building $bin" >&2
  (cd "$root" && cargo build --release --bin kuberaft) >&2
fi

# The matrix: workload/clients (watch-fanout: watchers).
matrix=(
  put/1 put/16 put/64
  txn-put/16 txn-put/64
  range/16 range/64
  range-serializable/16 range-serializable/64
  list-prefix/16
  watch-fanout/100
)

# Single-connection runs (put/1) talk to the first endpoint only, and a request that
# reaches a follower costs a forwarding hop in etcd and kuberaft alike: make the
# first endpoint's member the leader in every target, so both are measured in the
# same role. Needs plain-http endpoints (etcdctl gets no TLS flags here).
lead_first() {
  local endpoints=$1 first status me leader
  first=${endpoints%%,*}
  command -v etcdctl >/dev/null || { echo "bench-compare: no etcdctl; leaving leadership where it is" >&2; return 0; }
  # -w fields: member ids are 64-bit, more than jq's numbers hold exactly.
  status=$(ETCDCTL_API=3 etcdctl --endpoints "$first" endpoint status -w fields 2>/dev/null) || {
    echo "bench-compare: cannot read the status of $first; leaving leadership where it is" >&2; return 0; }
  me=$(awk -F' : ' '$1=="\"MemberID\"" {print $2}' <<<"$status")
  leader=$(awk -F' : ' '$1=="\"Leader\"" {print $2}' <<<"$status")
  if [[ -n $me && $me != "$leader" ]]; then
    ETCDCTL_API=3 etcdctl --endpoints "$endpoints" move-leader "$(printf '%x' "$me")" >&2 ||
      echo "bench-compare: move-leader to $first failed; leaving leadership where it is" >&2
  fi
}
for target in "${targets[@]}"; do
  IFS='|' read -r label endpoints extra <<<"$target"
  if [[ $endpoints == *https://* ]]; then
    echo "bench-compare: $label uses TLS; not moving its leadership" >&2
  else
    lead_first "$endpoints"
  fi
done

mkdir -p "$(dirname "$results")"
: > "$results"
echo "bench-compare: ${#targets[@]} target(s), $rounds round(s) of ${run_secs}s per workload; results in $results" >&2

for entry in "${matrix[@]}"; do
  [[ $entry =~ $filter ]] || continue
  workload=${entry%/*}
  clients=${entry#*/}
  conns=${BENCH_CONNS:-$(( clients < 6 ? clients : 6 ))}
  if [[ $workload == watch-fanout ]]; then
    shape=(--watchers "$clients")
  else
    shape=(--clients "$clients")
  fi
  for round in $(seq 1 "$rounds"); do
    for target in "${targets[@]}"; do
      IFS='|' read -r label endpoints extra <<<"$target"
      echo "bench-compare: $workload clients=$clients conns=$conns target=$label round=$round load=$(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$results.log" >&2
      # shellcheck disable=SC2086 # extra flags are split on purpose
      if line=$("$bin" bench etcd --endpoints "$endpoints" --workload "$workload" \
          "${shape[@]}" --conns "$conns" --duration "${run_secs}s" --label "$label" \
          $extra 2>>"$results.log"); then
        echo "$line" | tee -a "$results" >&2
      else
        echo "bench-compare: run failed (see $results.log)" >&2
      fi
    done
  done
done

echo
echo "Machine: $(nproc) CPUs, load average at the end $(cut -d' ' -f1-3 /proc/loadavg); ${run_secs}s per run; raw lines in $results"
echo
echo "| workload | clients | target | runs | ops/s | ops/s min-max | p50 ms | p99 ms | errors |"
echo "|---|---:|---|---:|---:|---:|---:|---:|---:|"
jq -rs '
  group_by([.workload, .clients, .target])
  | sort_by(.[0].workload as $w
      | (["put","txn-put","range","range-serializable","list-prefix","watch-fanout"]
         | index($w)), .[0].clients, .[0].target)
  | .[]
  | (map(.ops_per_sec) | add / length) as $ops
  | (map(.p50_ms) | add / length) as $p50
  | (map(.p99_ms) | add / length) as $p99
  | "| \(.[0].workload) | \(.[0].clients) | \(.[0].target // "-") | \(length) | \($ops | floor) | \(map(.ops_per_sec) | min | floor)-\(map(.ops_per_sec) | max | floor) | \($p50 * 100 | round / 100) | \($p99 * 100 | round / 100) | \(map(.errors) | add) |"
' "$results"
