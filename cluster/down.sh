#!/usr/bin/env bash
# Stops the cluster started by cluster/up.sh (in cluster/.run, or $KUBERAFT_RUN_DIR)
# and removes what up.sh created there (`--keep` keeps data and logs). Replicas get
# SIGCONT (a drill may have paused one) and SIGTERM, then SIGKILL after 20 s.
set -euo pipefail
run=${KUBERAFT_RUN_DIR:-$(cd "$(dirname "$0")" && pwd)/.run}
[ -d "$run" ] || { echo "down.sh: no cluster in $run"; exit 0; }
for pidfile in "$run"/m*.pid "$run"/haproxy.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill -CONT "$pid" 2>/dev/null || true
    kill -TERM "$pid" 2>/dev/null || true
done
deadline=$((SECONDS + 20))
for pidfile in "$run"/m*.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
done
if [ "${1:-}" = "--keep" ]; then
    rm -f "$run"/env "$run"/*.pid
    echo "down.sh: stopped; data kept in $run"
else
    # Only what up.sh wrote: the run directory may be one the caller chose.
    rm -rf "$run"/m[0-9]* "$run"/pki "$run"/env "$run"/haproxy.cfg "$run"/haproxy.pid \
        "$run"/admin.kubeconfig
    rmdir "$run" 2>/dev/null || true
    echo "down.sh: stopped and removed the cluster in $run"
fi
