#!/usr/bin/env bash
# Brings up a local kuberaft cluster: N replicas (default 3, `--members 5` for five) on
# loopback ports with one PKI from `kuberaft certs`, mTLS between peers, and Debian's
# HAProxy in front (TCP mode, health-checked on /readyz) with one frontend for the
# Kubernetes API and one for the etcd face. State lives in cluster/.run/ (or in
# $KUBERAFT_RUN_DIR, so tests can run several clusters side by side):
#   admin.kubeconfig   points at the load balancer
#   env                ports and endpoints (sourced by status.sh, down.sh, drills)
#   m<i>/, m<i>.log    data and logs of each replica; haproxy.cfg, haproxy.pid
#   m<i>.start         starts replica i again exactly as up.sh did (restarts, drills)
#   m<i>.pid           its pid, rewritten by m<i>.start
# Replicas run with --shutdown-delay-duration 2s (on SIGTERM /readyz fails for 2 s
# first, so HAProxy moves away before they stop accepting) and, when the binary has
# it, --enable-fault-injection (the peer-isolation switch `kuberaft drill` uses;
# `--no-fault-injection` leaves it off).
#
# Usage: cluster/up.sh [--members N] [--bin PATH] [--no-fault-injection] [-- extra kuberaft flags...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
run=${KUBERAFT_RUN_DIR:-$root/cluster/.run}
members=3
bin=""
faults=1
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --members) members=$2; shift 2 ;;
        --bin) bin=$2; shift 2 ;;
        --no-fault-injection) faults=0; shift ;;
        --) shift; extra=("$@"); break ;;
        *) echo "up.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
if [ -z "$bin" ]; then
    for candidate in "$root/target/release/kuberaft" "$root/target/debug/kuberaft"; do
        [ -x "$candidate" ] && { bin=$candidate; break; }
    done
fi
[ -x "${bin:-}" ] || { echo "up.sh: no kuberaft binary (cargo build --release)" >&2; exit 1; }
command -v haproxy >/dev/null || { echo "up.sh: haproxy is not installed (apt-get install haproxy)" >&2; exit 1; }
if [ -f "$run/env" ]; then
    echo "up.sh: a cluster is already running (cluster/down.sh first)" >&2
    exit 1
fi
mkdir -p "$run"
run=$(cd "$run" && pwd)
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
# Hidden flags do not show in --help: ask clap whether it accepts the flag.
if [ $faults = 1 ] && "$bin" serve --enable-fault-injection --help >/dev/null 2>&1; then
    extra=(--enable-fault-injection "${extra[@]}")
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

lb_kube=$(free_port); lb_etcd=$(free_port)
"$bin" certs --cert-dir "$run/pki" --hosts 127.0.0.1,localhost --server "https://127.0.0.1:$lb_kube" >/dev/null

declare -a kube client peer
cluster=""
for i in $(seq 0 $((members - 1))); do
    kube[i]=$(free_port); client[i]=$(free_port); peer[i]=$(free_port)
    cluster+="${cluster:+,}m$i=https://127.0.0.1:${peer[i]}"
done

{
    echo "BIN=$bin"
    echo "MEMBERS=$members"
    echo "LB_KUBE_PORT=$lb_kube"
    echo "LB_ETCD_PORT=$lb_etcd"
    echo "INITIAL_CLUSTER=$cluster"
    for i in $(seq 0 $((members - 1))); do
        echo "KUBE_PORT_$i=${kube[i]}"
        echo "CLIENT_PORT_$i=${client[i]}"
        echo "PEER_PORT_$i=${peer[i]}"
    done
    printf 'EXTRA_FLAGS=(%s)\n' "${extra[*]:-}"
} > "$run/env"

# Writes m<i>.start: the replica's exact command line, started in its own session
# (so a Ctrl-C in the shell that ran a drill does not reach it), its pid in m<i>.pid.
write_start_script() { # i state
    local i=$1 state=$2
    local cmd=("$bin" serve --name "m$i" --data-dir "$run/m$i"
        --secure-port "${kube[i]}" --cert-dir "$run/pki"
        --listen-client-urls "http://127.0.0.1:${client[i]}"
        --listen-peer-urls "https://127.0.0.1:${peer[i]}"
        --initial-cluster "$cluster" --initial-cluster-state "$state"
        --initial-cluster-token kuberaft-local
        --peer-cert-file "$run/pki/peer.crt" --peer-key-file "$run/pki/peer.key"
        --peer-trusted-ca-file "$run/pki/ca.crt" --peer-client-cert-auth
        --shutdown-delay-duration 2s
        "${extra[@]}")
    {
        echo '#!/usr/bin/env bash'
        echo "# Starts replica m$i exactly as cluster/up.sh did; its pid goes to m$i.pid."
        echo 'set -euo pipefail'
        printf 'setsid'; printf ' %q' "${cmd[@]}"
        printf ' >>%q 2>&1 </dev/null &\n' "$run/m$i.log"
        printf 'echo $! > %q\n' "$run/m$i.pid"
    } > "$run/m$i.start"
    chmod +x "$run/m$i.start"
}
for i in $(seq 0 $((members - 1))); do
    write_start_script "$i" new
    "$run/m$i.start"
done

{
    cat <<CFG
global
    maxconn 8192
defaults
    mode tcp
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    option redispatch
    retries 2
frontend kube
    bind 127.0.0.1:$lb_kube
    default_backend kube
backend kube
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 500ms fall 2 rise 2 check check-ssl verify none
CFG
    for i in $(seq 0 $((members - 1))); do echo "    server m$i 127.0.0.1:${kube[i]}"; done
    cat <<CFG
frontend etcd
    bind 127.0.0.1:$lb_etcd
    default_backend etcd
backend etcd
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 500ms fall 2 rise 2 check
CFG
    for i in $(seq 0 $((members - 1))); do echo "    server m$i 127.0.0.1:${client[i]}"; done
} > "$run/haproxy.cfg"
haproxy -f "$run/haproxy.cfg" -D -p "$run/haproxy.pid"
cp "$run/pki/admin.kubeconfig" "$run/admin.kubeconfig"

# Wait (with a deadline) until the load balancer answers ready on both frontends.
deadline=$((SECONDS + 60))
until KUBECONFIG="$run/admin.kubeconfig" kubectl get --raw /readyz >/dev/null 2>&1 \
    && ETCDCTL_API=3 etcdctl --endpoints "http://127.0.0.1:$lb_etcd" endpoint health >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
        echo "up.sh: cluster did not become ready in 60s; logs in $run (stop it with cluster/down.sh)" >&2
        exit 1
    fi
    sleep 0.3
done
cat <<MSG
kuberaft cluster of $members replicas is up.
  Kubernetes API (via HAProxy): https://127.0.0.1:$lb_kube
    export KUBECONFIG=$run/admin.kubeconfig
    kubectl get namespaces
  etcd API (via HAProxy):       http://127.0.0.1:$lb_etcd
    ETCDCTL_API=3 etcdctl --endpoints http://127.0.0.1:$lb_etcd member list
  cluster/status.sh   members, leader, revision, health
  cluster/down.sh     stop everything
MSG
