#!/usr/bin/env bash
# Local against a loopback Ballista cluster (one scheduler, two executors), on one
# warehouse: the comparison's six questions, each timed by `kpidb bench` (one warm-up,
# then the median of RUNS) in one process per engine.
#
#   benches/cluster/run.sh WAREHOUSE [RUNS]
#
# Uses the release binary (KPIDB_BIN to choose another). Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA="${1:?usage: benches/cluster/run.sh WAREHOUSE [RUNS]}"
RUNS="${2:-5}"
BIN="${KPIDB_BIN:-${CARGO_TARGET_DIR:-target}/release/kpidb}"
[ -x "$BIN" ] || cargo build --release
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$WORK"' EXIT

. benches/cluster/start.sh
start_cluster

median() { python3 -c 'import json,sys; print("%.1f" % json.load(sys.stdin)["median_ms"])'; }
echo "| question | local ms | loopback cluster ms | cluster / local |"
echo "|---|---:|---:|---:|"
for file in benches/compare/questions/*.kpidb.sql; do
    q="$(basename "$file" .kpidb.sql)"
    local_ms="$("$BIN" --data "$DATA" bench "$file" --runs "$RUNS" | median)"
    cluster_ms="$("$BIN" --data "$DATA" --cluster "$URL" bench "$file" --runs "$RUNS" | median)"
    ratio="$(python3 -c "print('%.2f' % ($cluster_ms / $local_ms))")"
    echo "| $q | $local_ms | $cluster_ms | $ratio |"
done
