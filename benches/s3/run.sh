#!/usr/bin/env bash
# The comparison's six questions on a warehouse in an S3-compatible bucket (a moto
# server on loopback) next to the same warehouse on local disk, and on a loopback
# cluster (one scheduler, two executors) reading the bucket: each question timed by
# `kpidb bench` (one warm-up, then the median of RUNS) in one process per engine,
# plus the cold start (a fresh process's first query, wall time).
#
#   benches/s3/run.sh [SCALE] [RUNS]      # SCALE: city, 1m, 10m, … (default 10m)
#
# Uses the release binary (KPIDB_BIN to choose another) and moto from KPIDB_PYTHON
# (default ~/.cache/kpidb/venv/bin/python, made by .ci/run). Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/../.."
SCALE="${1:-10m}"
RUNS="${2:-5}"
BIN="${KPIDB_BIN:-${CARGO_TARGET_DIR:-target}/release/kpidb}"
PY="${KPIDB_PYTHON:-$HOME/.cache/kpidb/venv/bin/python}"
[ -x "$BIN" ] || cargo build --release
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$WORK"' EXIT

PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$PY" -m moto.server -H 127.0.0.1 -p "$PORT" >"$WORK/moto.log" 2>&1 &
for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/" && break
    sleep 0.2
done
curl -s -X PUT "http://127.0.0.1:$PORT/bench" >/dev/null
export AWS_ENDPOINT_URL="http://127.0.0.1:$PORT" AWS_ALLOW_HTTP=true AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench
LOCAL="$WORK/local"
BUCKET="s3://bench/wh"
if [ "$SCALE" = city ]; then scale=(); else scale=(--scale "$SCALE"); fi
"$BIN" gen-sample --out "$LOCAL" "${scale[@]}" >/dev/null
"$BIN" gen-sample --out "$BUCKET" "${scale[@]}" >/dev/null

. benches/cluster/start.sh
start_cluster

cold() {
    python3 - "$BIN" "$1" <<'EOF'
import subprocess, sys, time
start = time.perf_counter()
subprocess.run([sys.argv[1], "--data", sys.argv[2], "query", "--format", "csv",
                "SELECT count(*) FROM dept_scores"], check=True, capture_output=True)
print("%.1f" % ((time.perf_counter() - start) * 1000))
EOF
}
median() { python3 -c 'import json,sys; print("%.1f" % json.load(sys.stdin)["median_ms"])'; }
ratio() { python3 -c "print('%.2f' % ($1 / $2))"; }

echo "| question | local ms | bucket ms | bucket / local | cluster on bucket ms | cluster / local |"
echo "|---|---:|---:|---:|---:|---:|"
local_ms="$(cold "$LOCAL")"
bucket_ms="$(cold "$BUCKET")"
echo "| cold start (first query of a new process) | $local_ms | $bucket_ms | $(ratio "$bucket_ms" "$local_ms") | | |"
for file in benches/compare/questions/*.kpidb.sql; do
    q="$(basename "$file" .kpidb.sql)"
    local_ms="$("$BIN" --data "$LOCAL" bench "$file" --runs "$RUNS" | median)"
    bucket_ms="$("$BIN" --data "$BUCKET" bench "$file" --runs "$RUNS" | median)"
    cluster_ms="$("$BIN" --data "$BUCKET" --cluster "$URL" bench "$file" --runs "$RUNS" | median)"
    echo "| $q | $local_ms | $bucket_ms | $(ratio "$bucket_ms" "$local_ms") | $cluster_ms | $(ratio "$cluster_ms" "$local_ms") |"
done
