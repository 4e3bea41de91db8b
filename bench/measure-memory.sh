#!/usr/bin/env bash
# Memory per live session actor: RSS growth of a release server while N sessions each have a
# live (idle, not yet passivated) actor, divided by N. An upper bound: it includes the
# allocator's slack and per-session HTTP/DB work done while creating them.
# The notification feed (the newest ORCH_NOTIFICATION_CACHE committed notifications, 8192 by
# default) fills up while the sessions are created; it is a fixed cost of about 2 MiB, not a
# per-actor one, so it is off here unless ORCH_NOTIFICATION_CACHE is set.
# Usage: bash bench/measure-memory.sh [DATABASE_URL]   (needs wrk; default: a temp SQLite file)
# ORCH_BINARY=path measures another build (default: target/release/orchestrator).
set -euo pipefail
cd "$(dirname "$0")/.."
url="${1:-sqlite:///tmp/orch-mem-$$.db}"
port=18097
ORCH_NOTIFICATION_CACHE="${ORCH_NOTIFICATION_CACHE:-0}" \
ORCH_SESSION_IDLE_SECS=3600 DATABASE_URL="$url" ORCH_LISTEN=127.0.0.1:$port RUST_LOG=error \
    "${ORCH_BINARY:-./target/release/orchestrator}" & pid=$!
trap 'kill $pid 2>/dev/null; rm -f /tmp/orch-mem-$$.db*' EXIT
sleep 1
curl -s -X POST localhost:$port/v1/sessions/warmup/events -H "Content-Type: application/json" \
    -d '{"event_type":"x","timestamp":"2026-11-22T10:00:00Z"}' >/dev/null
rss() { awk '/VmRSS/ {print $2}' /proc/$pid/status; }
before=$(rss)
live_before=$(curl -s localhost:$port/metrics | awk '/^orchestrator_live_session_actors/ {print $2}')
wrk -t2 -c64 -d8s -s bench/wrk-new-sessions.lua http://127.0.0.1:$port >/dev/null
sleep 1
after=$(rss)
live=$(curl -s localhost:$port/metrics | awk '/^orchestrator_live_session_actors/ {print $2}')
n=$((live - live_before))
echo "live session actors: $n"
echo "RSS before: ${before} KiB, after: ${after} KiB"
echo "per live session actor: $(( (after - before) * 1024 / n )) bytes"
