#!/usr/bin/env bash
# Noisy neighbours: scope B's throughput (single-event POSTs, wrk, 32 connections) while scope
# A sends one hostile pattern at a time, against B's quiet throughput in the same run.
#
# Patterns: nul (events whose conversation_id holds a NUL, 4 connections), big (PUTs of 4 MiB
# metadata and interactions with 4 MiB payloads, one at a time), next (commands/next on a
# session holding QUEUED queued commands, 4 connections), unknown (reads of sessions that do
# not exist, 32 connections), trickle (200 requests trickling their bodies).
#
# Usage: bash bench/noisy-neighbour.sh BINARY DATABASE_URL [SECONDS] [QUEUED]
#   e.g. bash bench/noisy-neighbour.sh target/release/orchestrator sqlite:///tmp/noisy.db 10 20000
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n 2,11p "$0" >&2; exit 2; }
binary="$1"; url="$2"; seconds="${3:-10}"; queued="${4:-20000}"
port=18481
base="http://127.0.0.1:$port"
source bench/fresh-database.sh

fresh_database "$url"
DATABASE_URL="$url" ORCH_LISTEN="127.0.0.1:$port" ORCH_API_KEYS="key-a:alpha,key-b:beta" \
    RUST_LOG=error "$binary" & pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "$base/readyz" >/dev/null && break; sleep 0.1; done

# The session with many queued commands, for the `next` pattern (batches of parallel POSTs).
curl -sf -X PUT -H "Authorization: Bearer key-a" "$base/v1/sessions/queue" >/dev/null
seq 1 "$queued" | xargs -P 16 -I{} curl -s -o /dev/null -X POST -H "Authorization: Bearer key-a" \
    -H "Content-Type: application/json" "$base/v1/sessions/queue/commands" \
    -d '{"interaction_id": "c{}", "payload": {"run": "true"}}'

big_loop() {
    local metadata; metadata=$(python3 -c 'import json; print(json.dumps({"metadata": {"blob": "x" * ((4 << 20) - 1024)}}))')
    local i=0
    while :; do
        i=$((i + 1))
        printf '%s' "$metadata" | curl -s -o /dev/null -X PUT -H "Authorization: Bearer key-a" \
            -H "Content-Type: application/json" --data-binary @- "$base/v1/sessions/big-$i"
        printf '%s' "$metadata" | sed 's/"metadata"/"payload"/; s/^{/{"kind": "q", "timeout_ms": 86400000, /' \
            | curl -s -o /dev/null -X POST -H "Authorization: Bearer key-a" \
            -H "Content-Type: application/json" --data-binary @- "$base/v1/sessions/big-$i/interactions"
    done
}

scope_b() {  # prints: events/s non-2xx
    local out
    out=$(KEY=key-b SCOPE_TAG="b$1" wrk -t1 -c32 -d"${seconds}s" -s bench/wrk-scope.lua "$base")
    local rate errors
    rate=$(awk '/^Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
    errors=$(awk '/Non-2xx/ {n += $5} /Socket errors/ {gsub(",", ""); n += $4 + $6 + $8 + $10}
                  END {print n + 0}' <<<"$out")
    echo "$rate $errors"
}

rss() { awk '/VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$pid/status"; }

echo "| scope A sends | scope B events/s | of quiet | scope B non-2xx | server RSS MiB after |"
echo "| --- | --- | --- | --- | --- |"
read -r quiet quiet_errors < <(scope_b quiet)
echo "| nothing (quiet) | $quiet | 100 % | $quiet_errors | $(rss) |"
for pattern in nul big next unknown trickle; do
    case "$pattern" in
        nul|next) KEY=key-a NOISE=$pattern wrk -t1 -c4 -d"$((seconds + 2))s" -s bench/wrk-noisy.lua "$base" >/dev/null & noise=$! ;;
        unknown) KEY=key-a NOISE=unknown wrk -t1 -c32 -d"$((seconds + 2))s" -s bench/wrk-noisy.lua "$base" >/dev/null & noise=$! ;;
        big) big_loop & noise=$! ;;
        trickle) python3 bench/trickle.py "$port" key-a 200 "$((seconds + 2))" >/dev/null & noise=$! ;;
    esac
    sleep 1
    read -r rate errors < <(scope_b "$pattern")
    kill "$noise" 2>/dev/null || true
    wait "$noise" 2>/dev/null || true
    echo "| $pattern | $rate | $(( rate * 100 / (quiet > 0 ? quiet : 1) )) % | $errors | $(rss) |"
done
