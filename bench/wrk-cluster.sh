#!/usr/bin/env bash
# Cluster overhead with wrk on PostgreSQL: NODES nodes (1 or more) on one fresh database, with
# wrk posting either straight to the first node (PROXY=direct) or through nginx running the
# shipped deploy/cluster-proxy.conf in front of all of them (PROXY=nginx; addresses changed,
# nothing else). Prints events/s, latency, and CPU per stored event of the nodes together,
# nginx and PostgreSQL. On one machine, several nodes share its cores: this measures what the
# cluster costs (forwarding, the shared notification counter, announcing commits), not how it
# scales.
#
# Usage: bash bench/wrk-cluster.sh BINARY DATABASE_URL NODES PROXY SCRIPT CONNECTIONS SECONDS
#   e.g. bash bench/wrk-cluster.sh target/release/orchestrator \
#            postgres://postgres@localhost:5432/wrk_bench 3 nginx bench/wrk-events.lua 64 10
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 7 ] || { sed -n 2,12p "$0" >&2; exit 2; }
binary="$1"; url="$2"; nodes="$3"; proxy="$4"; script="$5"; connections="$6"; seconds="$7"
base_port=18500
proxy_port=18499
ticks=$(getconf CLK_TCK)
work="$(mktemp -d /tmp/orch-wrk-cluster.XXXXXX)"

source bench/fresh-database.sh
ticks_of() { local s=0; for p in "$@"; do s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo $s; }
by_name() { cat /proc/[0-9]*/stat 2>/dev/null | awk -v n="($1)" '$2 == n {s += $14 + $15} END {print s + 0}'; }
stored() {
    local total=0
    for i in $(seq 1 "$nodes"); do
        total=$((total + $(curl -s "localhost:$((base_port + i))/metrics" | awk '/^orchestrator_events_stored_total/ {printf "%d", $2}')))
    done
    echo $total
}

fresh_database "$url"
pids=()
cleanup() {
    kill "${pids[@]}" 2>/dev/null || true
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
for i in $(seq 1 "$nodes"); do
    DATABASE_URL="$url" ORCH_LISTEN="127.0.0.1:$((base_port + i))" ORCH_NODE_ID="bench-$i" \
        RUST_LOG=warn "$binary" & pids+=($!)
done
for i in $(seq 1 "$nodes"); do
    for _ in $(seq 1 100); do curl -sf "localhost:$((base_port + i))/readyz" >/dev/null && break; sleep 0.1; done
done
# Until the partitions have spread (each node holds its share).
share=$((256 / nodes))
for _ in $(seq 1 300); do
    low=$(for i in $(seq 1 "$nodes"); do curl -s "localhost:$((base_port + i))/metrics" | awk '/^orchestrator_partitions_owned/ {print $2}'; done | sort -n | head -1)
    [ "${low%.*}" -ge "$share" ] && break
    sleep 0.1
done

target="http://127.0.0.1:$((base_port + 1))"
if [ "$proxy" = nginx ]; then
    conf="$(sed "s/listen 8080;/listen 127.0.0.1:$proxy_port;/" deploy/cluster-proxy.conf)"
    upstreams=""
    for i in $(seq 1 "$nodes"); do upstreams+="    server 127.0.0.1:$((base_port + i)) max_fails=0;\n"; done
    # The shipped upstream block lists three nodes; this run's nodes replace them.
    printf '%s\n' "$conf" | awk -v ups="$upstreams" '
        /^    server orchestrator-1:8080/ { printf "%s", ups; next }
        /^    server orchestrator-[0-9]+:8080/ { next }
        { print }' > "$work/cluster-proxy.conf"
    cat > "$work/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/error.log warn;
events { worker_connections 4096; }
http { access_log off; client_body_temp_path $work/body; proxy_temp_path $work/proxy; include $work/cluster-proxy.conf; }
EOF
    /usr/sbin/nginx -e "$work/error.log" -p "$work" -c "$work/nginx.conf"
    sleep 0.3
    target="http://127.0.0.1:$proxy_port"
fi

events_before=$(stored); nodes_before=$(ticks_of "${pids[@]}"); nginx_before=$(by_name nginx)
db_before=$(by_name postgres); started=$(date +%s.%N)
out=$(wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$script" "$target")
ended=$(date +%s.%N); nodes_after=$(ticks_of "${pids[@]}"); nginx_after=$(by_name nginx)
db_after=$(by_name postgres); events_after=$(stored)
python3 - "$out" "$events_before" "$events_after" "$started" "$ended" "$ticks" \
    "$nodes_before" "$nodes_after" "$nginx_before" "$nginx_after" "$db_before" "$db_after" \
    "$nodes" "$proxy" <<'PY'
import re, sys
out, e0, e1, t0, t1, hz, n0, n1, x0, x1, d0, d1, nodes, proxy = sys.argv[1:]
events = max(float(e1) - float(e0), 1)
def ms(label):
    m = re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s)" % label, out, re.M)
    return float(m[1]) * {"us": 0.001, "ms": 1, "s": 1000}[m[2]] if m else float("nan")
errors = sum(int(x) for x in re.findall(r"(?:Non-2xx or 3xx responses|connect|read|write|timeout) (\d+)", out))
per = lambda a, b: (float(b) - float(a)) / float(hz) * 1e6 / events
print(f"{nodes} {proxy} {events / (float(t1) - float(t0)):.0f} {ms('50'):.1f} {ms('99'):.1f} "
      f"{per(n0, n1):.1f} {per(x0, x1):.1f} {per(d0, d1):.1f} {errors}")
PY
