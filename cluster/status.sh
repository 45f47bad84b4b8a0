#!/usr/bin/env bash
# Shows the local cluster (cluster/.run, or $KUBERAFT_RUN_DIR): members, leader,
# revision, raft index, health and lag.
set -euo pipefail
run=${KUBERAFT_RUN_DIR:-$(cd "$(dirname "$0")" && pwd)/.run}
[ -f "$run/env" ] || { echo "status.sh: no cluster running (cluster/up.sh)"; exit 1; }
# shellcheck disable=SC1091
source "$run/env"
export ETCDCTL_API=3
eps=""
for i in $(seq 0 $((MEMBERS - 1))); do
    port_var=CLIENT_PORT_$i
    eps+="${eps:+,}http://127.0.0.1:${!port_var}"
done
printf '%-5s %-8s %-7s %-10s %-12s %-8s %-8s\n' NAME PID LEADER REVISION RAFT-INDEX HEALTH READYZ
leader_index=0
for i in $(seq 0 $((MEMBERS - 1))); do
    port_var=CLIENT_PORT_$i; kport_var=KUBE_PORT_$i
    ep="http://127.0.0.1:${!port_var}"
    pid=$(cat "$run/m$i.pid" 2>/dev/null || echo -)
    if ! kill -0 "$pid" 2>/dev/null; then
        printf '%-5s %-8s %s\n' "m$i" "$pid" "not running"
        continue
    fi
    json=$(etcdctl --endpoints "$ep" --command-timeout 2s endpoint status -w json 2>/dev/null || echo '[]')
    read -r is_leader rev idx <<<"$(python3 -c '
import json,sys
s=json.load(sys.stdin)
if not s: print("? ? ?"); sys.exit()
st=s[0]["Status"]; h=st["header"]
print("yes" if st["leader"]==h["member_id"] else "no", h["revision"], st["raftIndex"])' <<<"$json")"
    [ "$is_leader" = yes ] && leader_index=$idx
    health=$(curl -s -m 2 "$ep/health" | python3 -c 'import json,sys; print("ok" if json.load(sys.stdin).get("health")=="true" else "FAIL")' 2>/dev/null || echo FAIL)
    readyz=$(curl -sk -m 2 "https://127.0.0.1:${!kport_var}/readyz" || echo FAIL)
    printf '%-5s %-8s %-7s %-10s %-12s %-8s %-8s\n' "m$i" "$pid" "$is_leader" "$rev" "$idx" "$health" "$readyz"
done
echo "load balancer: kube https://127.0.0.1:$LB_KUBE_PORT  etcd http://127.0.0.1:$LB_ETCD_PORT  (leader raft index $leader_index)"
