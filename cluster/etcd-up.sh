#!/usr/bin/env bash
# Starts a 3-member etcd 3.4 cluster (Debian's /usr/bin/etcd) on loopback, for
# comparisons with kuberaft only; tests never use it.
#
#   cluster/etcd-up.sh [start] [DIR]   start; data, logs and pids go to DIR (default: a
#                                      new temporary directory); prints the client
#                                      endpoints, comma separated, on stdout
#   cluster/etcd-up.sh stop DIR        stop the members started in DIR (a temporary
#                                      DIR made by start is removed)
#
# Invariant: members run with etcd's default durability (fsync of WAL and backend on),
# listen on free loopback ports only, and every pid started is recorded in DIR/pids so
# `stop` ends exactly those processes.
set -euo pipefail

ETCD=${ETCD:-/usr/bin/etcd}
ETCDCTL=${ETCDCTL:-/usr/bin/etcdctl}
MEMBERS=3

die() { echo "etcd-up: $*" >&2; exit 1; }

# Prints a loopback TCP port that no socket uses and that is not in $TAKEN.
TAKEN=" "
free_port() {
  local port
  for _ in $(seq 1 200); do
    port=$(( 20000 + RANDOM % 40000 ))
    [[ $TAKEN == *" $port "* ]] && continue
    # Any socket on the port (a listener, or a client connection in TIME_WAIT) makes
    # a later bind fail.
    if [[ -z $(ss -Htan "sport = :$port" 2>/dev/null) ]]; then
      TAKEN+="$port "
      echo "$port"
      return 0
    fi
  done
  die "no free port found"
}

start() {
  local dir=${1:-}
  [[ -x $ETCD ]] || die "$ETCD not found (apt-get install etcd-server)"
  [[ -x $ETCDCTL ]] || die "$ETCDCTL not found (apt-get install etcd-client)"
  if [[ -z $dir ]]; then
    dir=$(mktemp -d "${TMPDIR:-/tmp}/etcd-up.XXXXXX")
    touch "$dir/.etcd-up-tmp"
  else
    mkdir -p "$dir"
    [[ -e $dir/pids ]] && die "$dir/pids exists: stop that cluster first ($0 stop $dir)"
  fi
  dir=$(cd "$dir" && pwd)
  if [[ $(stat -f -c %T "$dir") == tmpfs ]]; then
    echo "etcd-up: warning: $dir is on tmpfs, so fsync costs nothing there" >&2
  fi

  local -a client peer
  local cluster="" i
  for i in $(seq 0 $((MEMBERS - 1))); do
    client[i]=$(free_port)
    peer[i]=$(free_port)
    cluster+="${cluster:+,}m$i=http://127.0.0.1:${peer[i]}"
  done
  local token="etcd-up-$$-$RANDOM"
  : > "$dir/pids"
  local endpoints=""
  for i in $(seq 0 $((MEMBERS - 1))); do
    "$ETCD" --name "m$i" --data-dir "$dir/m$i" \
      --listen-client-urls "http://127.0.0.1:${client[i]}" \
      --advertise-client-urls "http://127.0.0.1:${client[i]}" \
      --listen-peer-urls "http://127.0.0.1:${peer[i]}" \
      --initial-advertise-peer-urls "http://127.0.0.1:${peer[i]}" \
      --initial-cluster "$cluster" --initial-cluster-token "$token" \
      --initial-cluster-state new >"$dir/m$i.log" 2>&1 &
    echo $! >> "$dir/pids"
    endpoints+="${endpoints:+,}http://127.0.0.1:${client[i]}"
  done
  echo "$endpoints" > "$dir/endpoints"

  local deadline=$((SECONDS + 30))
  until ETCDCTL_API=3 "$ETCDCTL" --endpoints="$endpoints" --command-timeout=2s \
      endpoint health >/dev/null 2>&1; do
    if (( SECONDS >= deadline )); then
      stop "$dir" || true
      die "cluster not healthy within 30s; logs in $dir/m*.log"
    fi
    sleep 0.3
  done
  echo "etcd-up: 3 members healthy, data and logs in $dir; stop with: $0 stop $dir" >&2
  echo "$endpoints"
}

stop() {
  local dir=${1:-}
  [[ -n $dir && -f $dir/pids ]] || die "usage: $0 stop DIR (DIR/pids not found)"
  local pid
  while read -r pid; do
    [[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null || true
  done < "$dir/pids"
  for _ in $(seq 1 50); do
    local alive=0
    while read -r pid; do
      [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null && alive=1
    done < "$dir/pids"
    (( alive == 0 )) && break
    sleep 0.1
  done
  while read -r pid; do
    [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null || true
  done < "$dir/pids"
  rm -f "$dir/pids"
  if [[ -e $dir/.etcd-up-tmp ]]; then
    rm -rf "$dir"
    echo "etcd-up: stopped and removed $dir" >&2
  else
    echo "etcd-up: stopped; data kept in $dir" >&2
  fi
}

case "${1:-start}" in
  start) shift || true; start "${1:-}" ;;
  stop) shift; stop "${1:-}" ;;
  -h|--help) sed -n '2,14p' "$0" ;;
  *) start "$1" ;;
esac
