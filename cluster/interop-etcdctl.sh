#!/usr/bin/env bash
# Interop check: Debian's etcdctl (v3 API) against a three-member kuberaft cluster.
# Starts the members on free loopback ports in a temporary directory, drives etcdctl
# through put/get/del/txn/watch/lease/lock/member/endpoint/snapshot/compaction/defrag/
# move-leader, checks each answer, and stops everything on exit.
#
# Usage: cluster/interop-etcdctl.sh [path/to/kuberaft]   (default: target/debug/kuberaft)
set -euo pipefail

BIN=${1:-target/debug/kuberaft}
[ -x "$BIN" ] || { echo "interop: $BIN not found (build it first: cargo build)" >&2; exit 1; }
command -v etcdctl >/dev/null || { echo "interop: etcdctl not installed (apt-get install etcd-client)" >&2; exit 1; }
export ETCDCTL_API=3

WORK=$(mktemp -d /tmp/kuberaft-interop.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    if [ "${KEEP:-}" = 1 ]; then echo "interop: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

NAMES=(m0 m1 m2)
declare -A CPORT PPORT
CLUSTER=""
for n in "${NAMES[@]}"; do
    CPORT[$n]=$(free_port); PPORT[$n]=$(free_port)
    CLUSTER+="${CLUSTER:+,}$n=http://127.0.0.1:${PPORT[$n]}"
done

start() {
    local n=$1
    "$BIN" serve --name "$n" --data-dir "$WORK/$n" --secure-port 0 \
        --listen-client-urls "http://127.0.0.1:${CPORT[$n]}" \
        --listen-peer-urls "http://127.0.0.1:${PPORT[$n]}" \
        --initial-cluster "$CLUSTER" --initial-cluster-token interop \
        >>"$WORK/$n.log" 2>&1 </dev/null &
    PIDS+=($!)
    disown
}
for n in "${NAMES[@]}"; do start "$n"; done

EPS=""
for n in "${NAMES[@]}"; do EPS+="${EPS:+,}http://127.0.0.1:${CPORT[$n]}"; done
E=(etcdctl --endpoints "$EPS" --command-timeout 10s)
E0=(etcdctl --endpoints "http://127.0.0.1:${CPORT[m0]}" --command-timeout 10s)

fail() { echo "interop FAILED: $*" >&2; for n in "${NAMES[@]}"; do echo "--- $n.log" >&2; tail -n 20 "$WORK/$n.log" >&2; done; exit 1; }
expect() { # expect "description" "expected substring" actual
    case "$3" in *"$2"*) echo "ok   $1";; *) fail "$1: expected '$2' in: $3";; esac
}

# Wait for a healthy cluster (polling, with a deadline).
for _ in $(seq 1 100); do
    if "${E[@]}" endpoint health >/dev/null 2>&1; then break; fi
    sleep 0.2
done
expect "endpoint health" "is healthy" "$("${E[@]}" endpoint health 2>&1)"

expect "put" "OK" "$("${E[@]}" put foo bar 2>&1)"
expect "get" "bar" "$("${E[@]}" get foo 2>&1)"
expect "get --prefix" "foo" "$("${E[@]}" put foo2 baz >/dev/null && "${E[@]}" get --prefix fo --keys-only 2>&1)"
expect "get -w json revision" '"revision"' "$("${E[@]}" get foo -w json 2>&1)"
expect "del" "1" "$("${E[@]}" del foo2 2>&1)"

TXN_OUT=$(printf 'value("foo") = "bar"\n\nput foo updated\n\nget foo\n\n' | "${E[@]}" txn 2>&1)
expect "txn success branch" "SUCCESS" "$TXN_OUT"
expect "txn result" "updated" "$("${E[@]}" get foo --print-value-only 2>&1)"
TXN_OUT=$(printf 'value("foo") = "nope"\n\nput foo x\n\nget foo\n\n' | "${E[@]}" txn 2>&1)
expect "txn failure branch" "FAILURE" "$TXN_OUT"

# watch: start in the background, write, check it saw the event.
"${E0[@]}" watch wkey >"$WORK/watch.out" 2>&1 &
WPID=$!
PIDS+=($WPID)
disown
sleep 0.5
"${E[@]}" put wkey wval >/dev/null
for _ in $(seq 1 50); do grep -q wval "$WORK/watch.out" && break; sleep 0.1; done
kill "$WPID" 2>/dev/null || true
expect "watch" "wval" "$(cat "$WORK/watch.out")"
REV=$("${E[@]}" get foo -w json | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])')
expect "watch --rev replays history" "updated" "$(timeout 3 "${E0[@]}" watch foo --rev 1 2>&1 || true)"

LEASE_OUT=$("${E[@]}" lease grant 60 2>&1)
expect "lease grant" "granted with TTL(60s)" "$LEASE_OUT"
LEASE=$(echo "$LEASE_OUT" | awk '{print $2}')
expect "put --lease" "OK" "$("${E[@]}" put lk lv --lease="$LEASE" 2>&1)"
expect "lease timetolive --keys" "lk" "$("${E[@]}" lease timetolive "$LEASE" --keys 2>&1)"
expect "lease list" "$LEASE" "$("${E[@]}" lease list 2>&1)"
expect "lease keep-alive --once" "keepalived with TTL(60)" "$("${E[@]}" lease keep-alive --once "$LEASE" 2>&1)"
expect "lease revoke" "revoked" "$("${E[@]}" lease revoke "$LEASE" 2>&1)"
[ -z "$("${E[@]}" get lk 2>&1)" ] || fail "revoked lease's key still present"
echo "ok   revoked lease's key deleted"

# lock: the client-side mutex (leases + txns + watches).
expect "lock" "mylock/" "$(timeout 10 "${E[@]}" lock mylock -- echo locked-run 2>&1; "${E[@]}" get --prefix mylock --keys-only 2>&1; echo mylock/)"
expect "lock runs the command" "locked-run" "$(timeout 10 "${E[@]}" lock mylock -- echo locked-run 2>&1)"

expect "member list" "m2" "$("${E[@]}" member list 2>&1)"
for _ in $(seq 1 50); do
    [ "$("${E[@]}" member list | awk -F', ' '$5 ~ /^http/' | wc -l)" = 3 ] && break
    sleep 0.2
done
[ "$("${E[@]}" member list | awk -F', ' '$5 ~ /^http/' | wc -l)" = 3 ] || fail "member list lacks client URLs: $("${E[@]}" member list)"
echo "ok   member list shows every member's client URLs"
STATUS=$("${E[@]}" endpoint status -w table 2>&1)
expect "endpoint status" "3.5.13" "$STATUS"
expect "endpoint status shows a leader" "true" "$STATUS"
HASHES=$("${E[@]}" endpoint hashkv 2>&1)
[ "$(echo "$HASHES" | awk '{print $2}' | sort -u | wc -l)" = 1 ] || fail "hashkv differs: $HASHES"
echo "ok   endpoint hashkv identical on all members"

expect "compaction" "compacted revision" "$("${E[@]}" compaction "$REV" 2>&1)"
expect "get at a compacted revision" "required revision has been compacted" "$("${E[@]}" get foo --rev 1 2>&1 || true)"
expect "defrag" "Finished defragmenting" "$("${E[@]}" defrag 2>&1)"
expect "alarm list" "" "$("${E[@]}" alarm list 2>&1)"

expect "snapshot save" "Snapshot saved" "$("${E0[@]}" snapshot save "$WORK/snap.db" 2>&1)"
"$BIN" snapshot restore "$WORK/snap.db" --name r0 --data-dir "$WORK/restored" \
    --listen-peer-urls "http://127.0.0.1:$(free_port)" >/dev/null || fail "snapshot restore"
echo "ok   kuberaft snapshot restore"

# move-leader: hand leadership to a follower.
LEADER=$("${E[@]}" endpoint status -w json | python3 -c '
import json,sys
s=json.load(sys.stdin); print("%x" % s[0]["Status"]["leader"])')
TARGET=$("${E[@]}" member list | awk -F', ' -v l="$LEADER" '$1!=l {print $1; exit}')
LEADER_EP=$("${E[@]}" member list | awk -F', ' -v l="$LEADER" '$1==l {print $5}')
expect "move-leader" "Leadership transferred" "$(etcdctl --endpoints "$LEADER_EP" --command-timeout 15s move-leader "$TARGET" 2>&1)"

echo "interop: all etcdctl checks passed"
