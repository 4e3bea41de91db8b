#!/usr/bin/env bash
# Throughput and server CPU per stored event, measured with wrk (light: a heavier load
# generator on the same two cores takes the CPU the server needs).
#
# Each round starts the server on a fresh database at RUST_LOG=warn, runs wrk with SCRIPT,
# and reads from the server itself how many events it stored (/metrics) and how much CPU it
# used (user + system, /proc/PID/stat), and on PostgreSQL the database's own CPU (every
# postgres process). It prints one row per round and the medians.
#
# Usage: bash bench/wrk-run.sh BINARY DATABASE_URL SCRIPT CONNECTIONS SECONDS ROUNDS
#   e.g. bash bench/wrk-run.sh target/release/orchestrator sqlite:///tmp/wrk.db \
#            bench/wrk-events.lua 256 15 3
# A SQLite URL's file is deleted before each round; a PostgreSQL URL's database is dropped and
# created again through psql (connecting to the same cluster's `postgres` database).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 6 ] || { sed -n 2,14p "$0" >&2; exit 2; }
binary="$1"; url="$2"; script="$3"; connections="$4"; seconds="$5"; rounds="$6"
port=18480
ticks=$(getconf CLK_TCK)

source bench/fresh-database.sh
stored() { curl -s "localhost:$port/metrics" | awk '/^orchestrator_events_stored_total/ {print $2}'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# PostgreSQL's own CPU (every postgres process; its backends live as long as the pool's
# connections), so a run on PostgreSQL shows the database's cost per event too.
db_ticks() { cat /proc/[0-9]*/stat 2>/dev/null | awk '$2 == "(postgres)" {s += $14 + $15} END {print s + 0}'; }

rows=()
echo "| round | events/s | p50 ms | p99 ms | server CPU µs/event | errors | PostgreSQL CPU µs/event |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for round in $(seq 1 "$rounds"); do
    fresh_database "$url"
    DATABASE_URL="$url" ORCH_LISTEN="127.0.0.1:$port" RUST_LOG=warn "$binary" & pid=$!
    trap 'kill $pid 2>/dev/null || true' EXIT
    for _ in $(seq 1 100); do curl -sf "localhost:$port/readyz" >/dev/null && break; sleep 0.1; done
    events_before=$(stored); cpu_before=$(cpu_ticks $pid); db_before=$(db_ticks); started=$(date +%s.%N)
    out=$(wrk -t2 -c"$connections" -d"${seconds}s" --latency -s "$script" "http://127.0.0.1:$port")
    ended=$(date +%s.%N); cpu_after=$(cpu_ticks $pid); db_after=$(db_ticks); events_after=$(stored)
    kill $pid; wait $pid 2>/dev/null || true
    row=$(python3 - "$out" "$events_before" "$events_after" "$cpu_before" "$cpu_after" \
        "$started" "$ended" "$ticks" "$round" "$db_before" "$db_after" <<'PY'
import re, sys
out, e0, e1, c0, c1, t0, t1, hz, rnd, d0, d1 = sys.argv[1:]
events = float(e1) - float(e0)
def ms(label):
    m = re.search(r"^\s*%s%%\s+([\d.]+)(us|ms|s)" % label, out, re.M)
    if not m: return float("nan")
    return float(m[1]) * {"us": 0.001, "ms": 1, "s": 1000}[m[2]]
errors = sum(int(x) for x in re.findall(r"(?:Non-2xx or 3xx responses|connect|read|write|timeout) (\d+)", out))
cpu_us = (float(c1) - float(c0)) / float(hz) * 1e6 / max(events, 1)
db_us = (float(d1) - float(d0)) / float(hz) * 1e6 / max(events, 1)
print(f"{rnd} {events / (float(t1) - float(t0)):.0f} {ms('50'):.1f} {ms('99'):.1f} {cpu_us:.1f} {errors} {db_us:.1f}")
PY
)
    rows+=("$row")
    set -- $row
    echo "| $1 | $2 | $3 | $4 | $5 | $6 | $7 |"
done
printf '%s\n' "${rows[@]}" | python3 -c '
import statistics, sys
rows = [list(map(float, l.split()[1:])) for l in sys.stdin if l.strip()]
med = [statistics.median(c) for c in zip(*rows)]
print(f"| median | {med[0]:.0f} | {med[1]:.1f} | {med[2]:.1f} | {med[3]:.1f} | {med[4]:.0f} | {med[5]:.1f} |")'
