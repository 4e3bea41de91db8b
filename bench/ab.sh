#!/usr/bin/env bash
# Interleaved A/B of two server binaries with the benchmark tool: this VM's speed drifts by
# ±25 % within an hour, so a before/after comparison only means something when the two builds
# take turns in the same window. Runs A, B, A, B, … ROUNDS times, each on a fresh database,
# and prints the tool's result rows (and the server's commit summary) tagged with the binary.
#
# Usage: bash bench/ab.sh BINARY_A BINARY_B DATABASE_URL ROUNDS [bench flags…]
#   e.g. bash bench/ab.sh /tmp/orch-before target/release/orchestrator sqlite:///tmp/ab.db 3 \
#            --scenario single --connections 256 --seconds 8
# A SQLite URL is deleted before each run; a PostgreSQL URL's database is dropped and created
# again through psql (connecting to the same cluster's `postgres` database).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 4 ] || { sed -n 2,12p "$0" >&2; exit 2; }
a="$1"; b="$2"; url="$3"; rounds="$4"; shift 4
tool=target/release/examples/bench
[ -x "$tool" ] || { echo "build it first: cargo build --release --example bench" >&2; exit 2; }

source bench/fresh-database.sh

for round in $(seq 1 "$rounds"); do
    for side in A B; do
        binary="$a"; [ "$side" = B ] && binary="$b"
        fresh_database "$url"
        "$tool" --database-url "$url" --binary "$binary" "$@" 2>/dev/null \
            | grep -E '^\| [a-z]|^server-side' | grep -v '^| scenario' \
            | sed "s#^#round $round, $side ($(basename "$binary")): #"
    done
done
